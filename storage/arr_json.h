/* storage/arr_json.h: the array's status as JSON (bkstorctl --json and the daemon's
 * control API write the same document; docs/api.md). */
#ifndef BKS_ARR_JSON_H
#define BKS_ARR_JSON_H

#include "common/bks.h"
#include "common/json.h"
#include "common/jsonp.h"
#include "storage/array.h"

/* One object (under key, or top-level when key is NULL). */
void arr_status_json(json *j, const char *key, const arr_status *st);
/* One job of st->jobs (a scrub's counters from sc). */
void arr_job_json(json *j, const arr_job_status *jb, const arr_scrub_status *sc);
/* Just its "disks" array (under key). */
void arr_disks_json(json *j, const char *key, const arr_status *st);

const char *arr_role_name(int role);              /* "member", "incoming", "spare" */
const char *arr_scrub_state_name(uint32_t state); /* "running", "paused", "idle" */
int arr_uuid_str_is_zero(const char *u);          /* "" or all zeros */

/* The decoder of what arr_status_json writes (bkstorctl reads the daemon's GET
 * /api/v1/array, "array" of /status), beside its encoder so the two keep the same
 * keys. Numbers and strings that are missing read as zero or empty (an older
 * daemon); the named states (health, each disk's role, last_scrub's state) are
 * required, since a health that is not there must not read as ONLINE. A member of
 * the wrong type, an unknown name or more disks or jobs than an arr_status holds is
 * -EPROTO with the member named ("the array document from bkstord: 'disks[2].size'
 * must be a whole number >= 0"). Strings are cut to their field and cleaned of
 * control characters. "OK" is taken for ONLINE (docs/api.md). */
int arr_status_from_json(const jsonp_val *doc, arr_status *st, bks_err *e);
/* s with control characters replaced by '?', cut to cap (safe on a terminal). */
void arr_json_clean_str(char *out, size_t cap, const char *s);

#endif /* BKS_ARR_JSON_H */
