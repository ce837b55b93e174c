/* daemon/status.h: status documents (docs/api.md) for the API and STATUS. */
#ifndef BKS_DAEMON_STATUS_H
#define BKS_DAEMON_STATUS_H

#include <stddef.h>

#include "common/json.h"
#include "daemon/appl.h"

/* GET /api/v1/status as one JSON object (top level). */
void status_json(appl *ap, json *j, int connections);
/* The "jobs" array (array jobs from as, then gc and verify). */
void status_jobs_json(appl *ap, json *j, const arr_status *as);
/* The "luns" array (daemon/api_lun.c): name, size, mapped bytes, sessions... */
void lun_status_json(appl *ap, json *j);
/* status_json as a malloc'ed string (compact); NULL on failure. */
char *status_text(appl *ap, int connections, size_t *len);

#endif /* BKS_DAEMON_STATUS_H */
