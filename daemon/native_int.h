/* daemon/native_int.h: private to native.c and native_ops.c. */
#ifndef BKS_NATIVE_INT_H
#define BKS_NATIVE_INT_H

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>

#include "daemon/native.h"
#include "proto/wire.h"

#define FAIL_SLOTS 64

struct fail_slot {
	char ip[64];
	uint64_t since;          /* the window opened at the first counted attempt */
	uint32_t count;
};

typedef struct conn conn;

struct native_srv {
	appl *ap;
	pthread_mutex_t mu;          /* conns, clients, fails */
	pthread_cond_t cv;
	pthread_t th;
	int lfd[CFG_MAX_LISTEN];
	int nlisten;
	int wake[2];
	volatile int stopping;
	conn *conns;
	int nconns;
	int nunauth;                 /* conns not logged in and not evicted */
	int nevicting;               /* conns evicted (shut down) whose thread still runs */
	cfg_client *clients;
	int nclients;
	struct fail_slot fails[FAIL_SLOTS];
	/* limits (from the config) */
	uint32_t max_frame, max_conns, auth_fail_limit, max_unauth, max_unauth_ip;
	uint64_t idle_ms, auth_ms, frame_ms, send_ms, rate_limit;
	uint32_t cdc_min, cdc_avg, cdc_max;
	int zlevel, zlevel_busy;     /* zstd levels of a PUT's new chunks (put_level) */
};

struct conn {
	native_srv *srv;
	int fd;
	char ip[64], peer[80], client[80];
	uint8_t *buf;                /* the frame being read */
	size_t cap;
	uint32_t peer_max;           /* the client's max_payload */
	uint64_t rx, pace_ns;
	uint64_t born_ns;            /* accepted at (bks_now_ns) */
	uint64_t auth_deadline;      /* HELLO sent and AUTH read by then, or closed */
	int authed;                  /* logged in (under srv->mu when it changes) */
	int unauth;                  /* counted in srv->nunauth (under srv->mu) */
	int evicted;                 /* shut down to make room (under srv->mu) */
	int dead;                    /* a send failed mid-frame: the stream is broken */
	conn *next, *prev;
};

/* Send one whole frame (or two pieces of one) within send_timeout; -ETIMEDOUT (logged)
 * when the peer does not take it in time, and from then on every send and read fails:
 * a frame cut in the middle cannot be resumed. */
int conn_send(conn *c, const void *buf, size_t n);
int conn_send2(conn *c, const void *h, size_t hn, const void *p, size_t pn);
/* A frame as n pieces (iov is consumed: its entries change), in as few sendmsg
 * calls as the socket takes: a GET's DATA sent from the store's read-ahead
 * buffers without copying them (store_read_iov). */
struct iovec;
int conn_sendv(conn *c, struct iovec *iov, int n);
int conn_error(conn *c, uint32_t tag, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* 0 with the frame decoded (views into c->buf); -EPROTO after answering a bad frame
 * with ERROR; -ETIMEDOUT, -ECONNRESET, -ECANCELED, -ENOMEM. */
int conn_read_frame(conn *c, wire_hdr *h, wire_msg *m);
void conn_pace(conn *c, uint64_t bytes);
int native_secret_decode(const char *hex, uint8_t *out, size_t cap, size_t *len);

/* native_ops.c: read and serve one request. 0 to go on, -errno to close. */
int conn_serve_one(conn *c);

#endif /* BKS_NATIVE_INT_H */
