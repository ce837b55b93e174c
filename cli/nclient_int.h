/* cli/nclient_int.h: private to cli/nclient.c and cli/nclient_put.c. */
#ifndef BKS_NCLIENT_INT_H
#define BKS_NCLIENT_INT_H

#include "cli/nclient.h"

struct ncl {
	int fd;
	int dead;                        /* the connection is unusable (see nclient.h) */
	int timeout_ms;
	uint32_t tag;                    /* the current (last) request's */
	wire_auth_ok srv;
	char srv_name[WIRE_NAME_MAX + 1];
	char peer[300];
	uint8_t *rbuf;                   /* received bytes: [rpos, rend) not yet decoded */
	size_t rcap, rpos, rend;
	uint64_t tx, rx;
};

/* The connection is unusable from now on (a protocol error, a failed write to the
 * GET's destination, ...): shut the socket down so the server drops the request. */
void ncl_kill(ncl *c);
/* Mark the connection dead and record why ("<what> <peer>: <reason>"). Returns r. */
int ncl_fail(ncl *c, bks_err *e, int r, const char *what);
/* A fresh tag for a new request. */
void ncl_next_tag(ncl *c);
/* Send an encoded frame (n from a wire encoder: an error is reported as such). */
int ncl_send_request(ncl *c, const uint8_t *buf, int n, bks_err *e);
/* A DATA or CHUNK frame with the current tag: header and bytes, no copy. */
int ncl_send_bulk(ncl *c, uint8_t type, const void *p, size_t n, bks_err *e);
/* The next frame of the current request (views valid until the next read). The
 * server's ERROR comes back as the error, the connection still usable; a stale
 * FP_NEED of an earlier, failed PUT is dropped. */
int ncl_read_reply(ncl *c, wire_hdr *h, wire_msg *m, bks_err *e);
/* The server answered with the wrong type: the connection is dead. */
int ncl_unexpected(ncl *c, const wire_hdr *h, const char *want, bks_err *e);

#endif /* BKS_NCLIENT_INT_H */
