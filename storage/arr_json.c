/* storage/arr_json.c: see arr_json.h. */
#include <config.h>

#include "storage/arr_json.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

const char *arr_role_name(int role)
{
	return role == ARR_ROLE_MEMBER ? "member" : role == ARR_ROLE_INCOMING ? "incoming"
	                                                                      : "spare";
}

const char *arr_scrub_state_name(uint32_t s)
{
	return s == ARR_SCRUB_RUNNING ? "running" : s == ARR_SCRUB_PAUSED ? "paused" : "idle";
}

int arr_uuid_str_is_zero(const char *u)
{
	return !u[0] || !strcmp(u, "00000000-0000-0000-0000-000000000000");
}

void arr_job_json(json *jp, const arr_job_status *jb, const arr_scrub_status *sc)
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
	const arr_scrub_status *sc = &st->last_scrub;
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

/* ---- the array document back into an arr_status (bkstorctl, from the daemon) ---- */

void arr_json_clean_str(char *out, size_t cap, const char *s)
{
	size_t o = 0;
	for (; s && *s && o + 1 < cap; s++)
		out[o++] = (unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s;
	if (cap)
		out[o] = 0;
}

typedef struct dec {
	bks_err *e;
	char where[48]; /* "disks[3]." */
	int bad;
} dec;

static void dec_fail(dec *d, const char *key, const char *want)
{
	size_t wl = strlen(d->where);
	if (!key[0] && wl)
		wl--; /* the element itself: "disks[2]" */
	if (!d->bad++)
		bks_fail(d->e, -EPROTO, "the array document from bkstord: '%.*s%s' must be %s",
		         (int)wl, d->where, key, want);
}

static uint64_t dec_u64(dec *d, const jsonp_val *o, const char *key)
{
	uint64_t v = 0;
	const jsonp_val *m = jsonp_get(o, key);
	if (m && jsonp_uint(m, &v) < 0)
		dec_fail(d, key, "a whole number >= 0");
	return v;
}

static double dec_dbl(dec *d, const jsonp_val *o, const char *key, double if_null)
{
	double v = if_null;
	const jsonp_val *m = jsonp_get(o, key);
	if (m && !jsonp_is_null(m) && jsonp_double(m, &v) < 0)
		dec_fail(d, key, "a number or null");
	return v;
}

/* A string (null or missing: ""), cleaned and cut to cap. */
static void dec_str(dec *d, const jsonp_val *o, const char *key, char *out, size_t cap)
{
	const jsonp_val *m = jsonp_get(o, key);
	out[0] = 0;
	if (m && !jsonp_is_null(m)) {
		if (jsonp_type(m) != JSONP_STRING)
			dec_fail(d, key, "a string or null");
		else
			arr_json_clean_str(out, cap, jsonp_str(m, NULL));
	}
}

/* The value v in 0..n) whose name(v) is the member's string; 0 after a failure.
 * The names are the encoder's own (storage/arr_json.c), so the two cannot drift. */
static int dec_enum(dec *d, const jsonp_val *o, const char *key, const char *(*name)(int),
                    int n, const char *alias0)
{
	const char *s = jsonp_get_str(o, key, NULL);
	char want[96];
	size_t l = 0;

	for (int i = 0; s && i < n; i++)
		if (!strcmp(s, name(i)))
			return i;
	if (s && alias0 && !strcmp(s, alias0))
		return 0;
	for (int i = 0; i < n; i++)
		l += (size_t)snprintf(want + l, sizeof(want) - BKS_MIN(l, sizeof(want)), "%s%s",
		                      i == 0 ? "" : i == n - 1 ? " or " : ", ", name(i));
	dec_fail(d, key, want);
	return 0;
}

static const char *scrub_name(int s)
{
	return arr_scrub_state_name((uint32_t)s);
}

static void dec_disk(dec *d, const jsonp_val *o, arr_disk_status *ds)
{
	const jsonp_val *slot = jsonp_get(o, "slot");
	int64_t s = -1;

	memset(ds, 0, sizeof(*ds));
	if (jsonp_type(o) != JSONP_OBJECT) {
		dec_fail(d, "", "an object");
		return;
	}
	if (slot && !jsonp_is_null(slot) &&
	    (jsonp_int(slot, &s) < 0 || s < 0 || s >= ARR_MAX_DISKS))
		dec_fail(d, "slot", "a slot number or null");
	ds->slot = (int)s;
	ds->role = dec_enum(d, o, "role", arr_role_name, 3, NULL);
	dec_str(d, o, "state", ds->state, sizeof(ds->state));
	dec_str(d, o, "path", ds->path, sizeof(ds->path));
	dec_str(d, o, "uuid", ds->uuid, sizeof(ds->uuid));
	dec_str(d, o, "serial", ds->serial, sizeof(ds->serial));
	ds->size = dec_u64(d, o, "size");
	ds->read_errors = dec_u64(d, o, "read_errors");
	ds->write_errors = dec_u64(d, o, "write_errors");
	ds->cksum_errors = dec_u64(d, o, "cksum_errors");
	ds->cursor = dec_u64(d, o, "cursor");
	ds->rows_total = dec_u64(d, o, "rows_total");
}

static void dec_job(dec *d, const jsonp_val *o, arr_job_status *j)
{
	memset(j, 0, sizeof(*j));
	if (jsonp_type(o) != JSONP_OBJECT) {
		dec_fail(d, "", "an object");
		return;
	}
	dec_str(d, o, "kind", j->kind, sizeof(j->kind));
	dec_str(d, o, "state", j->state, sizeof(j->state));
	j->done_rows = dec_u64(d, o, "done_rows");
	j->total_rows = dec_u64(d, o, "total_rows");
	j->rate_bps = dec_dbl(d, o, "rate_bps", 0);
	j->eta_s = dec_dbl(d, o, "eta_s", -1);
	j->errors_found = dec_u64(d, o, "errors_found");
	j->repaired = dec_u64(d, o, "repaired");
	j->unrecoverable = dec_u64(d, o, "unrecoverable");
}

/* dec_enum walks 0..n): the enums must be dense from 0. */
_Static_assert(ARR_SCRUB_IDLE == 0 && ARR_SCRUB_RUNNING == 1 && ARR_SCRUB_PAUSED == 2, "scrub states");
_Static_assert(ARR_OK == 0 && ARR_FAILED == 3, "health values");
_Static_assert(ARR_ROLE_MEMBER == 0 && ARR_ROLE_SPARE == 2, "role values");

int arr_status_from_json(const jsonp_val *o, arr_status *st, bks_err *e)
{
	const jsonp_val *disks = jsonp_get(o, "disks"), *jobs = jsonp_get(o, "jobs");
	const jsonp_val *ls = jsonp_get(o, "last_scrub");
	char want[48];
	dec d = {.e = e};

	memset(st, 0, sizeof(*st));
	if (jsonp_type(o) != JSONP_OBJECT)
		return bks_fail(e, -EPROTO, "the array document from bkstord is not an object");
	dec_str(&d, o, "name", st->name, sizeof(st->name));
	dec_str(&d, o, "uuid", st->uuid, sizeof(st->uuid));
	st->health = dec_enum(&d, o, "health", arr_health_name, 4, "OK");
	dec_str(&d, o, "action", st->action, sizeof(st->action));
	st->width = (int)BKS_MIN(dec_u64(&d, o, "width"), (uint64_t)ARR_MAX_DISKS);
	st->data_strips = (int)BKS_MIN(dec_u64(&d, o, "data_strips"), (uint64_t)ARR_MAX_DISKS);
	st->strip_size = (uint32_t)BKS_MIN(dec_u64(&d, o, "strip_size"), (uint64_t)UINT32_MAX);
	st->rows = dec_u64(&d, o, "rows");
	st->hwm = dec_u64(&d, o, "hwm");
	st->capacity_bytes = dec_u64(&d, o, "capacity_bytes");
	st->seq = dec_u64(&d, o, "seq");
	snprintf(want, sizeof(want), "a list of at most %zu disks", BKS_ARRAY_SIZE(st->disks));
	if (disks && jsonp_type(disks) != JSONP_ARRAY)
		dec_fail(&d, "disks", "an array");
	else if (jsonp_len(disks) > BKS_ARRAY_SIZE(st->disks))
		dec_fail(&d, "disks", want);
	for (size_t i = 0; !d.bad && i < jsonp_len(disks); i++) {
		snprintf(d.where, sizeof(d.where), "disks[%zu].", i);
		dec_disk(&d, jsonp_at(disks, i), &st->disks[st->ndisks++]);
	}
	d.where[0] = 0;
	snprintf(want, sizeof(want), "a list of at most %zu jobs", BKS_ARRAY_SIZE(st->jobs));
	if (jobs && jsonp_type(jobs) != JSONP_ARRAY)
		dec_fail(&d, "jobs", "an array");
	else if (jsonp_len(jobs) > BKS_ARRAY_SIZE(st->jobs))
		dec_fail(&d, "jobs", want);
	for (size_t i = 0; !d.bad && i < jsonp_len(jobs); i++) {
		snprintf(d.where, sizeof(d.where), "jobs[%zu].", i);
		dec_job(&d, jsonp_at(jobs, i), &st->jobs[st->njobs++]);
	}
	d.where[0] = 0;
	if (ls && jsonp_type(ls) != JSONP_OBJECT)
		dec_fail(&d, "last_scrub", "an object");
	snprintf(d.where, sizeof(d.where), "last_scrub.");
	if (ls && !d.bad) {
		arr_scrub_status *sc = &st->last_scrub;
		sc->state = dec_enum(&d, ls, "state", scrub_name, 3, NULL);
		sc->cursor = dec_u64(&d, ls, "cursor");
		sc->rows_checked = dec_u64(&d, ls, "rows_checked");
		sc->errors_found = dec_u64(&d, ls, "errors_found");
		sc->repaired = dec_u64(&d, ls, "repaired");
		sc->unrecoverable = dec_u64(&d, ls, "unrecoverable");
		sc->started_ns = dec_u64(&d, ls, "started_ns");
		sc->finished_ns = dec_u64(&d, ls, "finished_ns");
	}
	return d.bad ? -EPROTO : 0;
}
