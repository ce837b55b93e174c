/* daemon/api_int.h: private to the control API's files (api.c: the endpoints and the
 * Unix socket; web.c: the dashboard's TCP listener, login, static files). */
#ifndef BKS_API_INT_H
#define BKS_API_INT_H

#include <microhttpd.h>
#include <stdio.h>

#include "common/json.h"
#include "common/jsonp.h"
#include "daemon/api.h"
#include "daemon/web_auth.h"

struct api {
	appl *ap;
	native_srv *ns;
	struct MHD_Daemon *d;    /* the Unix socket */
	int fd;
	char path[108];
	/* the dashboard (web.c) */
	struct MHD_Daemon *web;
	web_auth wa;
	int tls;
	char *cert, *key;        /* PEM, loaded from the config's files */
	/* GET /api/v1/status, kept for STATUS_CACHE_NS: dashboards poll it, monitoring
	 * scripts hammer it; building it touches the array's lock. */
	pthread_mutex_t stmu;
	char *st_text;
	size_t st_len;
	uint64_t st_ns;
	uint64_t web_next_ns;    /* the dashboard's request pacing (under stmu) */
	/* GET /api/v1/throughput: an hour of samples (7200 numbers, the costliest thing a
	 * dashboard polls), built once per second of history (tp_sec: appl_history's
	 * second) and served to every dashboard from here until the next sample. */
	pthread_mutex_t tpmu;
	char *tp_text;
	size_t tp_len;
	uint64_t tp_sec;
};
#define STATUS_CACHE_NS (250ull * 1000000ull)

/* One request: its body, gathered across calls. */
struct req {
	char *body;
	size_t len;
	size_t cap;              /* most body bytes kept; 0 = API_BODY_MAX */
	int too_big;             /* more came: answered 413 at the end */
	int abort_over;          /* more came: close the connection at once instead */
};

/* A reply being built: status and a JSON document in memory. */
typedef struct reply {
	int status;
	char *buf;
	size_t len;
	FILE *f;
	json j;
	int web;                 /* add the dashboard's security headers */
	char cookie[200];        /* Set-Cookie, "" for none */
	int retry_after;
	char retry_after_s[16];
} reply;

void reply_begin(reply *rp, int status);
void reply_error(reply *rp, int status, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void reply_ok(reply *rp, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
enum MHD_Result reply_send(struct MHD_Connection *conn, reply *rp, const char *allow);

int api_body(struct req **rqp, void **con_cls, const char *upload, size_t *upload_size);
int api_parse_body(struct req *rq, reply *rp, jsonp **d);
/* daemon/api_lun.c: GET/POST /api/v1/luns, POST/DELETE /api/v1/luns/NAME. */
void api_luns(api *a, const char *url, const char *method, struct req *rq, reply *rp,
              const char **allow);
/* The dashboard listener's way into api.c's route table, after it has authorized the
 * request (the Unix-socket-only routes are not found from here). */
void api_dispatch(api *a, struct MHD_Connection *conn, const char *url, const char *method,
                  struct req *rq, reply *rp, const char **allow);
void api_done(void *cls, struct MHD_Connection *conn, void **con_cls,
              enum MHD_RequestTerminationCode toe);

/* web.c */
void web_security_headers(struct MHD_Response *res);
/* POST /api/v1/passwd (Unix socket only): set the admin password. */
void web_passwd(api *a, const jsonp_val *body, reply *rp);
int web_start(api *a, bks_err *e);
void web_stop(api *a);

#endif /* BKS_API_INT_H */
