/* cli/nclient.h: a client of bkstord's native protocol (docs/protocol.md), for
 * bkstorctl and tests. One connection, one request at a time, blocking calls.
 *
 * Every wait (connect, a frame to arrive, the socket to take more bytes) is a poll()
 * bounded by the connection's timeout: a call fails with -ETIMEDOUT only when nothing
 * moved for that long, so a slow but steady 200 GB transfer never times out while a
 * stalled one fails within a minute.
 *
 * Errors: every verb returns 0 or a negative errno and, when e is not NULL, a line
 * for a person:
 *   - the server refused the request (its ERROR): the code mapped back with
 *     wire_code_to_errno() and the server's own text ("put /a: already exists"); the
 *     connection stays usable;
 *   - the connection failed (refused, reset, timed out, a frame that breaks the
 *     protocol): the text says which ("cannot connect to 127.0.0.1:7070: Connection
 *     refused — is bkstord running?"), and the handle is dead: later verbs give
 *     -ENOTCONN. Only ncl_close is left to do.
 *
 * Ownership: the handle owns its socket and buffers. Strings passed in are read
 * during the call only. Paths are canonical absolute paths (ncl_path_norm makes one).
 */
#ifndef BKS_NCLIENT_H
#define BKS_NCLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "common/bks.h"
#include "proto/wire.h"

#define NCL_TIMEOUT_MS_DEFAULT 60000        /* without progress */
#define NCL_MAX_PAYLOAD (4u << 20)          /* what we announce in AUTH */
#define NCL_TOTAL_UNKNOWN UINT64_MAX

typedef struct ncl ncl;

typedef struct ncl_opts {
	const char *host;        /* IPv4 or IPv6 literal (no brackets), or a host name */
	uint16_t port;
	const char *name;        /* client name */
	const char *secret_hex;  /* its shared secret, hex */
	const char *conf;        /* where name and secret came from, for messages; may be NULL */
	int timeout_ms;          /* <= 0: NCL_TIMEOUT_MS_DEFAULT */
} ncl_opts;

/* "host:port", "[v6]:port", "host" (port WIRE_PORT). host gets the name without
 * brackets. 0 or -EINVAL. */
int ncl_addr_parse(const char *spec, char *host, size_t cap, uint16_t *port, bks_err *e);

/* A path as the protocol wants it: "/" prepended when relative, "//" and "." dropped,
 * ".." taken lexically (the namespace has no links), no trailing '/'. 0, or the
 * error wire_path_check gives. */
int ncl_path_norm(const char *in, char *out, size_t cap, bks_err *e);

/* Connect, authenticate (HELLO, AUTH, AUTH_OK with the server's MAC checked: a server
 * that does not know our secret is refused with -EACCES). */
int ncl_connect(const ncl_opts *o, ncl **out, bks_err *e);
void ncl_close(ncl *c); /* accepts NULL */

/* What the server said in AUTH_OK (valid while c is), its name, and "host:port". */
const wire_auth_ok *ncl_server(const ncl *c);
const char *ncl_server_name(const ncl *c);
const char *ncl_peer(const ncl *c);
/* Bytes through the socket so far (headers included). */
void ncl_counters(const ncl *c, uint64_t *tx, uint64_t *rx);

/* Progress of a transfer: bytes so far and the total (NCL_TOTAL_UNKNOWN if not known).
 * Called after every frame; throttle in the callback. */
typedef void (*ncl_progress_fn)(void *ctx, uint64_t done, uint64_t total);

typedef struct ncl_put_opts {
	uint32_t flags;          /* WIRE_PUT_OVERWRITE | WIRE_PUT_PARENTS */
	int dedup;               /* source-side dedup (DATA when the server does not offer it) */
	ncl_progress_fn progress;
	void *ctx;
} ncl_put_opts;

typedef struct ncl_put_result {
	wire_put_ok ok;          /* the server's PUT_OK */
	uint64_t payload_sent;   /* file bytes that crossed the wire (DATA or CHUNK) */
	uint64_t chunks_sent;    /* dedup: CHUNK frames */
	uint64_t wire_sent;      /* all bytes sent for this PUT, headers and lists included */
	int dedup;               /* the dedup exchange was used */
	int retries;             /* dedup: restarts after EAGAIN */
} ncl_put_result;

/* Store what fd yields until EOF at path. Mode, owner and mtime come from fstat(fd)
 * when it is a regular file (size known: size_hint and progress total), else 0644,
 * our uid/gid and now. With dedup the stream is cut with the server's FastCDC
 * parameters and only chunks the server lacks are sent; a PUT the server refuses
 * with EAGAIN (a chunk collected meanwhile) is started again when fd can seek back. */
int ncl_put(ncl *c, int fd, const char *path, const ncl_put_opts *o, ncl_put_result *res,
            bks_err *e);

typedef struct ncl_get_result {
	uint64_t size;           /* the file's size */
	uint64_t length;         /* bytes received (= GET_OK length, checked with END) */
	uint64_t id;
} ncl_get_result;

/* Write length bytes (WIRE_LEN_ALL: to the end) of path from offset to fd. The END's
 * count and digest (XXH3-128, wire_digest) are checked against what arrived
 * (-EBADMSG on a mismatch). A failed write to fd ends the connection (the protocol
 * has no abort for GET). Into a regular file, writeback of what was written starts
 * every 8 MiB (sync_file_range), so the caller's fsync at the end is short. */
int ncl_get(ncl *c, const char *path, uint64_t offset, uint64_t length, int fd,
            ncl_progress_fn progress, void *ctx, ncl_get_result *res, bks_err *e);

int ncl_stat(ncl *c, const char *path, wire_attr *out, bks_err *e);

/* One LIST entry, name NUL-terminated (valid during the callback). */
typedef struct ncl_entry {
	uint8_t type;            /* enum wire_ftype */
	uint32_t mode;
	uint64_t size, id;
	int64_t mtime_ns;
	char name[WIRE_NAME_MAX + 1];
} ncl_entry;
/* Return 0 to go on; a non-zero value stops the callbacks (the rest of the listing
 * is read and dropped) and ncl_list returns it. */
typedef int (*ncl_list_fn)(void *ctx, const ncl_entry *ent);
int ncl_list(ncl *c, const char *path, ncl_list_fn fn, void *ctx, uint64_t *count,
             bks_err *e);

int ncl_mkdir(ncl *c, const char *path, uint32_t mode, int parents, bks_err *e);
int ncl_rename(ncl *c, const char *from, const char *to, int noreplace, bks_err *e);
int ncl_delete(ncl *c, const char *path, int recursive, bks_err *e);
/* *json: malloc'd NUL-terminated JSON text (free it), *len its length. */
int ncl_status(ncl *c, char **json, size_t *len, bks_err *e);
int ncl_ping(ncl *c, uint64_t *rtt_ns, bks_err *e);

#endif /* BKS_NCLIENT_H */
