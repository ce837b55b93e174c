/* cli/http.h: a minimal HTTP/1.1 client for bkstorctl to call bkstord's control API,
 * over a Unix-domain socket or TCP on loopback.
 *
 * One request per connection ("Connection: close"), the whole response in memory.
 * The response is read with Content-Length, chunked transfer coding, or until the
 * server closes. Limits keep a broken or hostile server from hurting the CLI: the
 * header block is at most HTTP_MAX_HEAD bytes, the body at most the target's
 * max_body, and the whole exchange (connect, send, receive) must finish within the
 * target's timeout, enforced with poll() so a server that accepts and never answers
 * cannot hang the caller.
 *
 * TCP targets must be loopback addresses: the API has no transport security, so the
 * client refuses to send requests anywhere else.
 *
 * Errors are negative errnos with a message in the bks_err:
 *   -ENOENT, -ECONNREFUSED, ...  cannot connect ("... — is bkstord running?")
 *   -ETIMEDOUT                   no complete response within the timeout
 *   -EPROTO                      a malformed or truncated response
 *   -EMSGSIZE                    header block or body over its limit
 *   -EINVAL                      a bad target, method, path or extra header
 * A response with any status (404, 500, ...) is a success at this level: the caller
 * reads resp->status.
 */
#ifndef BKS_CLI_HTTP_H
#define BKS_CLI_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "common/bks.h"

#define HTTP_DEFAULT_TIMEOUT_MS 30000
#define HTTP_DEFAULT_MAX_BODY ((size_t)64 << 20)
#define HTTP_MAX_HEAD ((size_t)64 << 10) /* the status line and headers, CRLFs included */

/* Where to connect: unix_path when it is not empty, else host and port. host is an
 * IPv4 or IPv6 loopback literal ("127.0.0.1", "::1") or "localhost" (127.0.0.1, not
 * looked up). timeout_ms <= 0 and max_body 0 take the defaults. */
typedef struct http_target {
	char unix_path[108]; /* sizeof(sun_path) */
	char host[64];
	uint16_t port;
	int timeout_ms;
	size_t max_body;
} http_target;

/* Fill t from "unix:/run/bkstor/api.sock", "/run/bkstor/api.sock" (a path: starts
 * with '/' or '.'), "127.0.0.1:8080", "[::1]:8080" or "localhost:8080". Timeout and
 * body limit are reset to their defaults. Returns 0 or -EINVAL. */
int http_target_parse(const char *spec, http_target *t, bks_err *e);

typedef struct http_field {
	const char *name;  /* as the server spelled it */
	const char *value; /* without surrounding whitespace */
} http_field;

/* A response. Every pointer is owned by the response and valid until
 * http_response_free(). */
typedef struct http_response {
	int status;          /* 100..599 (never 1xx: interim responses are skipped) */
	const char *reason;  /* "OK"; may be "" */
	http_field *headers; /* in the order received */
	size_t nheaders;
	char *body;          /* body_len bytes, then a NUL (never NULL after success) */
	size_t body_len;
	char *priv_head;     /* private: storage for reason and headers */
} http_response;

/* Send one request and read the response. method is a token ("GET", "POST"); path
 * starts with '/' and is already percent-encoded (printable ASCII, no spaces).
 * headers_extra is NULL or whole header lines, each ending in CRLF
 * ("Content-Type: application/json\r\n"); Host, Content-Length, Connection and
 * Transfer-Encoding are the client's own and refused there. body may be NULL when
 * body_len is 0. Content-Length is sent when there is a body or the method is POST,
 * PUT or PATCH.
 * Returns 0 with *resp filled (free it with http_response_free), or a negative errno
 * with e filled and *resp empty (freeing it anyway is harmless). */
int http_request(const http_target *t, const char *method, const char *path,
                 const char *headers_extra, const void *body, size_t body_len,
                 http_response *resp, bks_err *e);

/* The value of the first header called name (compared without regard to case), or
 * NULL. */
const char *http_header(const http_response *resp, const char *name);

void http_response_free(http_response *resp); /* accepts NULL and empty responses */

/* The response parser http_request uses, as a pure function over the bytes a server
 * sent before closing the connection: buf[0..len) is the whole stream. method is the
 * request's (a response to HEAD has no body). Returns 0 with *resp filled, -EPROTO
 * (malformed, or truncated: the stream ends before the response does) or -EMSGSIZE.
 * Bytes after a complete response are ignored. */
int http_parse_response(const char *buf, size_t len, const char *method, size_t max_body,
                        http_response *resp, bks_err *e);

/* The same parser fed as bytes arrive (what http_request does; the fuzzer checks that
 * any split of the stream gives the same result as the whole).
 * http_rx_feed returns 1 when the response is complete (later bytes are ignored), 0
 * when it needs more, or a negative errno, after which every call fails the same way.
 * http_rx_eof tells it the connection was closed: 1 if that completes the response
 * (a body delimited by the close), else -EPROTO. http_rx_take moves a complete
 * response into *resp (0) or returns -EAGAIN. */
typedef struct http_rx http_rx;
int http_rx_new(const char *method, size_t max_body, http_rx **out);
int http_rx_feed(http_rx *rx, const void *buf, size_t len, bks_err *e);
int http_rx_eof(http_rx *rx, bks_err *e);
int http_rx_take(http_rx *rx, http_response *resp);
void http_rx_free(http_rx *rx); /* accepts NULL */

#endif /* BKS_CLI_HTTP_H */
