/* daemon/status.c: the status documents of the control API (docs/api.md), shared by
 * the HTTP API and the native protocol's STATUS. */
#include <config.h>

#include "daemon/status.h"

#include <stdlib.h>
#include <string.h>

#include "daemon/iscsi.h"
#include "daemon/nfs.h"
#include "daemon/repl.h"
#include "dedup/store_json.h"
#include "storage/arr_json.h"

/* The store's counters (dedup/store_json.c, the same keys as bkstorctl store stats)
 * and what the array's geometry turns into bytes. */
static void capacity_json(json *j, const store_stats *st, const arr_status *as,
                          uint32_t row_bytes)
{
	json_obj_begin(j, "capacity");
	store_stats_json(j, st);
	json_uint(j, "free_bytes", st->rows_free * (uint64_t)row_bytes);
	json_uint(j, "total_bytes", as->capacity_bytes);
	/* The rows kept for commits, the collector and deletes (docs/api.md): new data
	 * gets only what is above them. */
	json_uint(j, "available_bytes", (st->rows_free > st->rows_reserved
	                                     ? st->rows_free - st->rows_reserved : 0) *
	                                    (uint64_t)row_bytes);
	if (st->full)
		json_str(j, "full_action", APPL_FULL_ACTION);
	json_obj_end(j);
}

void status_jobs_json(appl *ap, json *j, const arr_status *as)
{
	appl_snap sn;
	appl_snapshot(ap, &sn);
	const store_gc_stats gs = sn.gs;
	json_arr_begin(j, "jobs");
	for (int i = 0; i < as->njobs; i++)
		arr_job_json(j, &as->jobs[i], &as->last_scrub);
	static const char *const st_name[] = {"idle", "running", "done"};
	json_obj_begin(j, NULL);
	json_str(j, "kind", "gc");
	json_str(j, "state", st_name[sn.gc_state]);
	json_uint(j, "segments_scanned", gs.segments_scanned);
	json_uint(j, "segments_freed", gs.segments_freed);
	json_uint(j, "segments_compacted", gs.segments_compacted);
	json_uint(j, "bytes_moved", gs.bytes_moved);
	json_uint(j, "rows_freed", gs.rows_freed);
	json_uint(j, "meta_rows_compacted", gs.meta_rows_compacted);
	json_uint(j, "meta_blocks_moved", gs.meta_blocks_moved);
	json_uint(j, "started_ns", sn.gc_started_ns);
	json_uint(j, "finished_ns", sn.gc_finished_ns);
	json_obj_end(j);
	/* Deferred compression (dedup/store_defer.c): chunks stored raw under pressure
	 * and compressed in the background. */
	const store_defer_stats *ds = &sn.ds;
	json_obj_begin(j, NULL);
	json_str(j, "kind", "compress");
	json_str(j, "state", appl_defer_state_name(sn.defer_state));
	json_uint(j, "bytes_left", ds->bytes_left);
	/* After a restart: a lower bound until a cycle has read every header. */
	json_bool(j, "bytes_left_estimate", ds->bytes_left_estimate);
	/* Why "waiting": room (until a commit), or an error (until retry_ns). */
	json_str(j, "waiting_for", sn.defer_state != APPL_DEFER_WAITING ? NULL
	                           : sn.defer_err ? "error" : "room");
	json_str(j, "error", sn.defer_err ? strerror(-sn.defer_err) : NULL);
	json_uint(j, "retry_ns", sn.defer_retry_ns);
	json_uint(j, "errors", sn.defer_errors);
	json_uint(j, "segments_skipped", ds->segments_skipped);
	json_uint(j, "deferred_bytes", ds->noted_bytes);
	json_uint(j, "raw_done", ds->raw_done);
	json_uint(j, "stored_after", ds->stored_after);
	json_uint(j, "bytes_saved", ds->bytes_saved);
	json_uint(j, "segments_done", ds->segments_done);
	json_uint(j, "chunks_compressed", ds->chunks_compressed);
	json_uint(j, "chunks_incompressible", ds->chunks_incompressible);
	json_uint(j, "done_rows", ds->rows_scanned);
	json_uint(j, "total_rows", ds->rows_total);
	json_double(j, "rate_bps", sn.defer_rate_bps);
	json_uint(j, "started_ns", sn.defer_started_ns);
	json_uint(j, "finished_ns", sn.defer_finished_ns);
	json_obj_end(j);
	const appl_verify *v = &sn.vf;
	json_obj_begin(j, NULL);
	json_str(j, "kind", "verify");
	json_str(j, "state", st_name[v->state]);
	store_verify_json(j, &v->rep, v->objects_total);
	/* How many of its bad chunks were queued to be fetched again from the replication
	 * peer (daemon/repl_repair.c): a twin's from its source, a source's from its twin. */
	json_uint(j, "queued_for_repair", v->queued);
	json_str(j, "repair_from", v->queued ? appl_repair_from_name(v->queued_from) : NULL);
	json_uint(j, "started_ns", v->started_ns);
	json_uint(j, "finished_ns", v->finished_ns);
	json_obj_end(j);
	json_arr_end(j);
}

void status_json(appl *ap, json *j, int connections)
{
	arr_status *as = malloc(sizeof(*as));
	store_stats st;
	double in_bps, out_bps;
	if (!as) {
		json_obj_begin(j, NULL);
		json_str(j, "error", "out of memory");
		json_obj_end(j);
		return;
	}
	arr_get_status(ap->a, as);
	appl_snap sn;
	appl_snapshot(ap, &sn);
	st = sn.st;
	uint32_t row_bytes = sn.row_bytes;
	uint64_t commits = sn.commits, last = sn.last_commit_ns;
	appl_rates(ap, 10, &in_bps, &out_bps);

	json_obj_begin(j, NULL);
	json_str(j, "version", PACKAGE_VERSION);
	json_double(j, "uptime_s", (double)(bks_wall_ns() - ap->started_ns) / 1e9);
	json_str(j, "state", ap->shutting_down ? "stopping" : "running");
	json_str(j, "health", arr_health_name(as->health));
	json_str(j, "action", as->action);
	arr_status_json(j, "array", as);
	/* The array's background pacing in effect ([array] keys; SIGHUP changes it). */
	json_obj_begin(j, "pacing");
	json_uint(j, "bg_min_rate", as->bg_min_bps);
	json_uint(j, "bg_max_rate", as->bg_max_bps);
	json_uint(j, "fg_idle_ms", as->fg_idle_ms);
	json_obj_end(j);
	capacity_json(j, &st, as, row_bytes);
	json_obj_begin(j, "throughput");
	json_double(j, "ingest_bps", in_bps);
	json_double(j, "restore_bps", out_bps);
	json_uint(j, "ingest_bytes", __atomic_load_n(&ap->ingest_bytes, __ATOMIC_RELAXED));
	json_uint(j, "restore_bytes", __atomic_load_n(&ap->restore_bytes, __ATOMIC_RELAXED));
	json_obj_end(j);
	json_int(j, "connections", connections);
	appl_lock_stats ls;
	appl_lock_stats_get(ap, &ls);
	json_obj_begin(j, "locks");
	json_obj_begin(j, "appl");
	json_uint(j, "acquisitions", ls.acquisitions);
	json_uint(j, "contended", ls.contended);
	json_uint(j, "held_ns", ls.held_ns);
	json_uint(j, "wait_ns", ls.wait_ns);
	json_uint(j, "max_held_ns", ls.max_held_ns);
	json_obj_end(j);
	json_obj_end(j);
	status_jobs_json(ap, j, as);
	json_uint(j, "commits", commits);
	json_uint(j, "last_commit_ns", commits ? last : 0);
	json_uint(j, "log_syncs", st.log_syncs);
	nfs_status_json(ap->nfs, j);
	lun_status_json(ap, j);
	iscsi_status_json(ap->iscsi, j);
	repl_status_json(ap->repl, j);
	json_obj_end(j);
	free(as);
}

char *status_text(appl *ap, int connections, size_t *len)
{
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);
	json j;
	if (!f)
		return NULL;
	json_init(&j, f, 0);
	status_json(ap, &j, connections);
	int r = json_finish(&j);
	fclose(f);
	if (r < 0) {
		free(buf);
		return NULL;
	}
	return buf;
}
