/* storage/arr_json.c: see arr_json.h. */
#include <config.h>

#include "storage/arr_json.h"

#include <string.h>

const char *arr_role_name(int role)
{
	return role == ARR_ROLE_MEMBER ? "member" : role == ARR_ROLE_INCOMING ? "incoming"
	                                                                      : "spare";
}

const char *arr_scrub_state_name(uint32_t s)
{
	return s == SCRUB_RUNNING ? "running" : s == SCRUB_PAUSED ? "paused" : "idle";
}

int arr_uuid_str_is_zero(const char *u)
{
	return !u[0] || !strcmp(u, "00000000-0000-0000-0000-000000000000");
}

void arr_job_json(json *jp, const arr_job_status *jb, const sb_scrub *sc)
{
	int scrub = !strcmp(jb->kind, "scrub");
	json_obj_begin(jp, NULL);
	json_str(jp, "kind", jb->kind);
	json_str(jp, "state", jb->state);
	json_uint(jp, "done_rows", jb->done_rows);
	json_uint(jp, "total_rows", jb->total_rows);
	json_double(jp, "rate_bps", jb->rate_bps);
	if (jb->eta_s >= 0)
		json_double(jp, "eta_s", jb->eta_s);
	else
		json_null(jp, "eta_s");
	/* A scrub's counters are those of the scrub as persisted (last_scrub). */
	json_uint(jp, "errors_found", scrub ? sc->errors_found : jb->errors_found);
	json_uint(jp, "repaired", scrub ? sc->repaired : jb->repaired);
	json_uint(jp, "unrecoverable", scrub ? sc->unrecoverable : jb->unrecoverable);
	json_obj_end(jp);
}

void arr_disks_json(json *jp, const char *key, const arr_status *st)
{
	json_arr_begin(jp, key);
	for (int i = 0; i < st->ndisks; i++) {
		const arr_disk_status *d = &st->disks[i];
		json_obj_begin(jp, NULL);
		if (d->slot >= 0)
			json_int(jp, "slot", d->slot);
		else
			json_null(jp, "slot");
		json_str(jp, "role", arr_role_name(d->role));
		json_str(jp, "state", d->state);
		json_str(jp, "path", d->path[0] ? d->path : NULL);
		json_str(jp, "uuid", arr_uuid_str_is_zero(d->uuid) ? NULL : d->uuid);
		json_str(jp, "serial", d->serial[0] ? d->serial : NULL);
		json_uint(jp, "size", d->size);
		json_uint(jp, "read_errors", d->read_errors);
		json_uint(jp, "write_errors", d->write_errors);
		json_uint(jp, "cksum_errors", d->cksum_errors);
		json_uint(jp, "cursor", d->cursor);
		json_uint(jp, "rows_total", d->rows_total);
		json_obj_end(jp);
	}
	json_arr_end(jp);
}

void arr_status_json(json *jp, const char *key, const arr_status *st)
{
	const sb_scrub *sc = &st->last_scrub;
	json_obj_begin(jp, key);
	json_str(jp, "name", st->name);
	json_str(jp, "uuid", st->uuid);
	json_str(jp, "health", arr_health_name(st->health));
	json_str(jp, "action", st->action);
	json_int(jp, "width", st->width);
	json_int(jp, "data_strips", st->data_strips);
	json_uint(jp, "strip_size", st->strip_size);
	json_uint(jp, "rows", st->rows);
	json_uint(jp, "hwm", st->hwm);
	json_uint(jp, "capacity_bytes", st->capacity_bytes);
	json_uint(jp, "seq", st->seq);
	arr_disks_json(jp, "disks", st);
	json_arr_begin(jp, "jobs");
	for (int i = 0; i < st->njobs; i++)
		arr_job_json(jp, &st->jobs[i], sc);
	json_arr_end(jp);
	json_obj_begin(jp, "last_scrub");
	json_str(jp, "state", arr_scrub_state_name(sc->state));
	json_uint(jp, "cursor", sc->cursor);
	json_uint(jp, "rows_checked", sc->rows_checked);
	json_uint(jp, "errors_found", sc->errors_found);
	json_uint(jp, "repaired", sc->repaired);
	json_uint(jp, "unrecoverable", sc->unrecoverable);
	json_uint(jp, "started_ns", sc->started_ns);
	json_uint(jp, "finished_ns", sc->finished_ns);
	json_obj_end(jp);
	json_obj_end(jp);
}
