/* daemon/status.c: the status documents of the control API (docs/api.md), shared by
 * the HTTP API and the native protocol's STATUS. */
#include <config.h>

#include "daemon/status.h"

#include <stdlib.h>
#include <string.h>

#include "daemon/iscsi.h"
#include "daemon/nfs.h"
#include "daemon/repl.h"
#include "storage/arr_json.h"

static void capacity_json(json *j, const store_stats *st, const arr_status *as,
                          uint32_t row_bytes)
{
	json_obj_begin(j, "capacity");
	json_uint(j, "logical_bytes", st->logical_bytes);
	json_uint(j, "physical_bytes", st->physical_bytes);
	json_uint(j, "free_bytes", st->rows_free * (uint64_t)row_bytes);
	json_uint(j, "total_bytes", as->capacity_bytes);
	/* The rows kept for commits, the collector and deletes (docs/api.md): new data
	 * gets only what is above them. */
	json_uint(j, "rows_free", st->rows_free);
	json_uint(j, "rows_reserved", st->rows_reserved);
	/* What physical_bytes is made of: rows of chunks and rows of metadata. */
	json_uint(j, "rows_data", st->rows_data);
	json_uint(j, "rows_meta", st->rows_meta);
	json_uint(j, "available_bytes", (st->rows_free > st->rows_reserved
	                                     ? st->rows_free - st->rows_reserved : 0) *
	                                    (uint64_t)row_bytes);
	json_bool(j, "full", st->full);
	if (st->full)
		json_str(j, "full_action", APPL_FULL_ACTION);
	json_double(j, "dedup_ratio", st->dedup_ratio);
	json_double(j, "compression_ratio", st->compression_ratio);
	json_uint(j, "objects", st->objects);
	json_uint(j, "unique_chunks", st->unique_chunks);
	json_uint(j, "stored_bytes", st->stored_bytes);
	json_double(j, "live_fraction", st->live_fraction);
	json_uint(j, "index_ram_bytes", st->index_ram_bytes);
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
	const appl_verify *v = &sn.vf;
	json_obj_begin(j, NULL);
	json_str(j, "kind", "verify");
	json_str(j, "state", st_name[v->state]);
	json_uint(j, "objects", v->objects_total);
	json_uint(j, "objects_done", v->rep.objects);
	json_uint(j, "chunks_checked", v->rep.chunks_checked);
	json_uint(j, "chunks_bad", v->rep.chunks_bad);
	json_uint(j, "objects_damaged", v->rep.objects_damaged);
	json_arr_begin(j, "damaged");
	for (uint64_t i = 0; i < BKS_MIN(v->rep.objects_damaged, (uint64_t)16); i++)
		json_uint(j, NULL, v->rep.damaged_ids[i]);
	json_arr_end(j);
	json_uint(j, "repaired", v->rep.repaired);
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
