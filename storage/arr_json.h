/* storage/arr_json.h: the array's status as JSON (bkstorctl --json and the daemon's
 * control API write the same document; docs/api.md). */
#ifndef BKS_ARR_JSON_H
#define BKS_ARR_JSON_H

#include "common/json.h"
#include "storage/array.h"

/* One object (under key, or top-level when key is NULL). */
void arr_status_json(json *j, const char *key, const arr_status *st);
/* One job of st->jobs (a scrub's counters from sc). */
void arr_job_json(json *j, const arr_job_status *jb, const sb_scrub *sc);
/* Just its "disks" array (under key). */
void arr_disks_json(json *j, const char *key, const arr_status *st);

const char *arr_role_name(int role);              /* "member", "incoming", "spare" */
const char *arr_scrub_state_name(uint32_t state); /* "running", "paused", "idle" */
int arr_uuid_str_is_zero(const char *u);          /* "" or all zeros */

#endif /* BKS_ARR_JSON_H */
