/* cli/http.c: see http.h.
 *
 * Two halves: the response parser (http_rx), a state machine fed bytes as they come,
 * with no I/O, so it can be fuzzed and tested on canned bytes; and the client, one
 * poll() loop that sends the request and feeds what arrives to the parser until it
 * says the response is complete, the limits or the deadline say stop. Sending and
 * receiving share the loop so a server that answers early (an error before reading
 * a large body) cannot deadlock the client.
 *
 * Framing follows RFC 9112 section 6: no body for HEAD, 1xx, 204 and 304;
 * Transfer-Encoding "chunked" (the only coding accepted); else Content-Length; else
 * until close. A response with both Transfer-Encoding and Content-Length is refused,
 * as are differing Content-Lengths: that ambiguity is how responses get smuggled.
 * Lines must end in CRLF (no bare LF, no obsolete line folding).
 */
#include <config.h>

#include "cli/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

/* ---- response parser ------------------------------------------------------- */

enum rx_state {
	RX_HEAD,          /* collecting the header block */
	RX_LEN,           /* Content-Length body, `remaining` bytes to go */
	RX_CLOSE,         /* body until the connection closes */
	RX_CHUNK_SIZE,    /* hex digits of a chunk size */
	RX_CHUNK_EXT,     /* chunk extensions, ignored, up to CR */
	RX_CHUNK_SIZE_LF, /* the LF of a chunk-size line */
	RX_CHUNK_DATA,    /* `remaining` bytes of chunk data */
	RX_CHUNK_DATA_CR, /* the CRLF after chunk data */
	RX_CHUNK_DATA_LF,
	RX_TRAILER,       /* trailer lines after the last chunk, ignored */
	RX_TRAILER_LF,
	RX_DONE,
	RX_FAILED,
};

#define CHUNK_LINE_MAX 4096 /* a chunk-size line with its extensions */

struct http_rx {
	enum rx_state state;
	int head_only; /* a response to HEAD */
	int err;       /* RX_FAILED: the error every later call returns */
	size_t max_body;
	char hbuf[HTTP_MAX_HEAD];
	size_t hlen;
	http_response resp; /* status, headers and body as they are parsed */
	size_t body_cap;
	uint64_t remaining;
	int ndigits;
	size_t line;     /* bytes of the current chunk-size or trailer line */
	size_t trailers; /* bytes of trailers so far */
};

static int rx_fail(http_rx *rx, bks_err *e, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int rx_fail(http_rx *rx, bks_err *e, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	bks_vfail(e, code, fmt, ap);
	va_end(ap);
	rx->state = RX_FAILED;
	rx->err = code;
	return code;
}

void http_response_free(http_response *r)
{
	if (!r)
		return;
	free(r->body);
	free(r->headers);
	free(r->priv_head);
	memset(r, 0, sizeof(*r));
}

int http_rx_new(const char *method, size_t max_body, http_rx **out)
{
	http_rx *rx = calloc(1, sizeof(*rx));
	*out = NULL;
	if (!rx)
		return -ENOMEM;
	rx->head_only = method && !strcmp(method, "HEAD");
	rx->max_body = max_body ? max_body : HTTP_DEFAULT_MAX_BODY;
	*out = rx;
	return 0;
}

void http_rx_free(http_rx *rx)
{
	if (!rx)
		return;
	http_response_free(&rx->resp);
	free(rx);
}

/* Append body bytes; the body stays NUL-terminated. */
static int body_add(http_rx *rx, bks_err *e, const char *p, size_t n)
{
	http_response *r = &rx->resp;
	if (n > rx->max_body - r->body_len)
		return rx_fail(rx, e, -EMSGSIZE, "response body larger than the limit of %zu "
		               "bytes", rx->max_body);
	if (r->body_len + n + 1 > rx->body_cap) {
		size_t cap = rx->body_cap ? rx->body_cap : 4096;
		while (cap < r->body_len + n + 1)
			cap = cap > rx->max_body / 2 ? rx->max_body + 1 : cap * 2;
		char *b = realloc(r->body, cap);
		if (!b)
			return rx_fail(rx, e, -ENOMEM, "out of memory for a %zu-byte response body",
			               r->body_len + n);
		r->body = b;
		rx->body_cap = cap;
	}
	memcpy(r->body + r->body_len, p, n);
	r->body_len += n;
	r->body[r->body_len] = '\0';
	return 0;
}

static int is_tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* Printable excerpt of a line for a message. */
static const char *excerpt(const char *s, size_t n, char out[64])
{
	size_t k = 0;
	for (size_t i = 0; i < n && k < 60; i++)
		out[k++] = (unsigned char)s[i] >= 0x20 && (unsigned char)s[i] < 0x7f ? s[i] : '?';
	out[k] = '\0';
	return out;
}

static int parse_status(http_rx *rx, bks_err *e, char *line, size_t n)
{
	char ex[64];
	if (n < 12 || memcmp(line, "HTTP/1.", 7) || (line[7] != '0' && line[7] != '1') ||
	    line[8] != ' ' || line[9] < '1' || line[9] > '5' || line[10] < '0' ||
	    line[10] > '9' || line[11] < '0' || line[11] > '9' || (n > 12 && line[12] != ' '))
		return rx_fail(rx, e, -EPROTO, "malformed status line \"%s\"",
		               excerpt(line, n, ex));
	for (size_t i = 13; i < n; i++)
		if ((unsigned char)line[i] < 0x20 && line[i] != '\t')
			return rx_fail(rx, e, -EPROTO, "control character in the status line");
	rx->resp.status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
	rx->resp.reason = n > 12 ? line + 13 : line + 12;
	line[n] = '\0';
	return 0;
}

/* "name: value" at line[0..n): split in place (NULs at the colon and after the
 * trimmed value). */
static int parse_field(http_rx *rx, bks_err *e, char *line, size_t n, http_field *f)
{
	char ex[64];
	size_t c = 0;
	while (c < n && is_tchar((unsigned char)line[c]))
		c++;
	if (c == 0 || c == n || line[c] != ':') {
		if (line[0] == ' ' || line[0] == '\t')
			return rx_fail(rx, e, -EPROTO, "obsolete line folding in the response "
			               "headers");
		return rx_fail(rx, e, -EPROTO, "malformed header line \"%s\"", excerpt(line, n, ex));
	}
	line[c] = '\0';
	size_t v = c + 1, end = n;
	while (v < end && (line[v] == ' ' || line[v] == '\t'))
		v++;
	while (end > v && (line[end - 1] == ' ' || line[end - 1] == '\t'))
		end--;
	for (size_t i = v; i < end; i++)
		if (((unsigned char)line[i] < 0x20 && line[i] != '\t') || line[i] == 0x7f)
			return rx_fail(rx, e, -EPROTO, "control character in response header %s",
			               line);
	line[end] = '\0';
	f->name = line;
	f->value = line + v;
	return 0;
}

/* Content-Length: digits only, no overflow. */
static int parse_length(const char *v, uint64_t *out)
{
	uint64_t n = 0;
	if (!*v)
		return -1;
	for (; *v; v++) {
		if (*v < '0' || *v > '9' || n > (UINT64_MAX - 9) / 10)
			return -1;
		n = n * 10 + (uint64_t)(*v - '0');
	}
	*out = n;
	return 0;
}

/* Choose how the body is delimited (RFC 9112 section 6.3). */
static int framing(http_rx *rx, bks_err *e)
{
	http_response *r = &rx->resp;
	const char *te = NULL, *cl = NULL;
	uint64_t len = 0;

	if (r->status == 101)
		return rx_fail(rx, e, -EPROTO, "unexpected 101 Switching Protocols");
	for (size_t i = 0; i < r->nheaders; i++) {
		const http_field *f = &r->headers[i];
		if (!strcasecmp(f->name, "transfer-encoding")) {
			if (te)
				return rx_fail(rx, e, -EPROTO, "more than one Transfer-Encoding header");
			te = f->value;
		} else if (!strcasecmp(f->name, "content-length")) {
			uint64_t n;
			if (parse_length(f->value, &n) < 0)
				return rx_fail(rx, e, -EPROTO, "malformed Content-Length \"%.40s\"",
				               f->value);
			if (cl && n != len)
				return rx_fail(rx, e, -EPROTO, "conflicting Content-Length headers");
			cl = f->value;
			len = n;
		}
	}
	if (rx->head_only || r->status == 204 || r->status == 304) {
		rx->state = RX_DONE;
		return 0;
	}
	if (te) {
		if (strcasecmp(te, "chunked"))
			return rx_fail(rx, e, -EPROTO, "unsupported Transfer-Encoding \"%.40s\"", te);
		if (cl)
			return rx_fail(rx, e, -EPROTO, "both Transfer-Encoding and Content-Length");
		rx->state = RX_CHUNK_SIZE;
		return 0;
	}
	if (cl) {
		if (len > rx->max_body)
			return rx_fail(rx, e, -EMSGSIZE, "response body of %llu bytes exceeds the "
			               "limit of %zu", (unsigned long long)len, rx->max_body);
		rx->remaining = len;
		rx->state = len ? RX_LEN : RX_DONE;
		return 0;
	}
	rx->state = RX_CLOSE;
	return 0;
}

/* The header block hbuf[0..len), ending in CRLFCRLF, is complete: parse it. */
static int parse_head(http_rx *rx, bks_err *e, size_t len)
{
	http_response *r = &rx->resp;
	size_t nlines = 0;
	int ret;

	for (size_t i = 0; i < len; i++) {
		char c = rx->hbuf[i];
		if (c == '\0')
			return rx_fail(rx, e, -EPROTO, "NUL byte in the response headers");
		if ((c == '\n' && (i == 0 || rx->hbuf[i - 1] != '\r')) ||
		    (c == '\r' && (i + 1 == len || rx->hbuf[i + 1] != '\n')))
			return rx_fail(rx, e, -EPROTO, "bare CR or LF in the response headers");
		nlines += c == '\n';
	}
	/* Interim (1xx) responses before this one are dropped. */
	free(r->headers);
	free(r->priv_head);
	r->headers = NULL;
	r->priv_head = malloc(len);
	r->headers = calloc(nlines, sizeof(*r->headers));
	if (!r->priv_head || !r->headers)
		return rx_fail(rx, e, -ENOMEM, "out of memory");
	memcpy(r->priv_head, rx->hbuf, len);
	r->nheaders = 0;
	char *p = r->priv_head, *end = p + len - 2; /* the last empty line */
	for (int first = 1; p < end; first = 0) {
		char *eol = memchr(p, '\r', (size_t)(end - p));
		size_t n = (size_t)(eol - p);
		*eol = '\0';
		ret = first ? parse_status(rx, e, p, n)
		            : parse_field(rx, e, p, n, &r->headers[r->nheaders++]);
		if (ret < 0)
			return ret;
		p = eol + 2;
	}
	if (r->status >= 100 && r->status < 200 && r->status != 101) {
		rx->hlen = 0; /* wait for the final response */
		return 0;
	}
	return framing(rx, e);
}

/* Header bytes: collect up to the empty line. Returns bytes consumed or an error. */
static long feed_head(http_rx *rx, bks_err *e, const char *p, size_t n)
{
	size_t old = rx->hlen, take = BKS_MIN(n, HTTP_MAX_HEAD - old);
	size_t from = old >= 3 ? old - 3 : 0;
	char ex[64];
	memcpy(rx->hbuf + old, p, take);
	rx->hlen += take;
	if (memcmp(rx->hbuf, "HTTP/", BKS_MIN(rx->hlen, (size_t)5)))
		return rx_fail(rx, e, -EPROTO, "malformed status line \"%s\" (not an HTTP "
		               "response)", excerpt(rx->hbuf, rx->hlen, ex));
	char *end = memmem(rx->hbuf + from, rx->hlen - from, "\r\n\r\n", 4);
	if (!end) {
		if (rx->hlen == HTTP_MAX_HEAD)
			return rx_fail(rx, e, -EMSGSIZE, "response header block larger than %zu KiB",
			               HTTP_MAX_HEAD >> 10);
		return (long)take;
	}
	size_t len = (size_t)(end - rx->hbuf) + 4;
	rx->hlen = len;
	int r = parse_head(rx, e, len);
	return r < 0 ? r : (long)(len - old);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* One step of the chunked decoder. Returns bytes consumed (> 0) or an error. */
static long feed_chunked(http_rx *rx, bks_err *e, const char *p, size_t n)
{
	char c = p[0];
	int d;
	switch (rx->state) {
	case RX_CHUNK_SIZE:
		if ((d = hexval(c)) >= 0) {
			if (rx->remaining > rx->max_body || rx->remaining > (UINT64_MAX >> 4))
				return rx_fail(rx, e, -EMSGSIZE, "response body larger than the limit "
				               "of %zu bytes", rx->max_body);
			rx->remaining = rx->remaining * 16 + (uint64_t)d;
			rx->ndigits++;
		} else if (rx->ndigits && (c == ';' || c == ' ' || c == '\t')) {
			rx->state = RX_CHUNK_EXT;
		} else if (rx->ndigits && c == '\r') {
			rx->state = RX_CHUNK_SIZE_LF;
		} else {
			return rx_fail(rx, e, -EPROTO, "malformed chunk size in a chunked body");
		}
		if (++rx->line > CHUNK_LINE_MAX)
			return rx_fail(rx, e, -EPROTO, "chunk-size line longer than %d bytes",
			               CHUNK_LINE_MAX);
		return 1;
	case RX_CHUNK_EXT:
		if (c == '\r')
			rx->state = RX_CHUNK_SIZE_LF;
		else if ((unsigned char)c < 0x20 && c != '\t')
			return rx_fail(rx, e, -EPROTO, "control character in a chunk extension");
		if (++rx->line > CHUNK_LINE_MAX)
			return rx_fail(rx, e, -EPROTO, "chunk-size line longer than %d bytes",
			               CHUNK_LINE_MAX);
		return 1;
	case RX_CHUNK_SIZE_LF:
		if (c != '\n')
			return rx_fail(rx, e, -EPROTO, "chunk-size line not ended by CRLF");
		rx->line = 0;
		rx->ndigits = 0;
		if (rx->remaining > rx->max_body - rx->resp.body_len)
			return rx_fail(rx, e, -EMSGSIZE, "response body larger than the limit of "
			               "%zu bytes", rx->max_body);
		rx->state = rx->remaining ? RX_CHUNK_DATA : RX_TRAILER;
		return 1;
	case RX_CHUNK_DATA: {
		size_t k = (size_t)BKS_MIN((uint64_t)n, rx->remaining);
		int r = body_add(rx, e, p, k);
		if (r < 0)
			return r;
		rx->remaining -= k;
		if (!rx->remaining)
			rx->state = RX_CHUNK_DATA_CR;
		return (long)k;
	}
	case RX_CHUNK_DATA_CR:
	case RX_CHUNK_DATA_LF:
		if (c != (rx->state == RX_CHUNK_DATA_CR ? '\r' : '\n'))
			return rx_fail(rx, e, -EPROTO, "chunk data not followed by CRLF");
		rx->state = rx->state == RX_CHUNK_DATA_CR ? RX_CHUNK_DATA_LF : RX_CHUNK_SIZE;
		return 1;
	case RX_TRAILER:
		if (c == '\r')
			rx->state = RX_TRAILER_LF;
		else if (c == '\n' || c == '\0')
			return rx_fail(rx, e, -EPROTO, "bare LF or NUL in the trailers");
		else
			rx->line++;
		if (++rx->trailers > HTTP_MAX_HEAD)
			return rx_fail(rx, e, -EMSGSIZE, "trailers larger than %zu KiB",
			               HTTP_MAX_HEAD >> 10);
		return 1;
	case RX_TRAILER_LF:
		if (c != '\n')
			return rx_fail(rx, e, -EPROTO, "trailer line not ended by CRLF");
		rx->state = rx->line ? RX_TRAILER : RX_DONE;
		rx->line = 0;
		return 1;
	default:
		return rx_fail(rx, e, -EPROTO, "parser state %d", rx->state);
	}
}

int http_rx_feed(http_rx *rx, const void *buf, size_t len, bks_err *e)
{
	const char *p = buf;
	while (len > 0 && rx->state != RX_DONE && rx->state != RX_FAILED) {
		long k;
		switch (rx->state) {
		case RX_HEAD:
			k = feed_head(rx, e, p, len);
			break;
		case RX_LEN:
			k = (long)BKS_MIN((uint64_t)len, rx->remaining);
			if (body_add(rx, e, p, (size_t)k) < 0)
				return rx->err;
			if (!(rx->remaining -= (uint64_t)k))
				rx->state = RX_DONE;
			break;
		case RX_CLOSE:
			k = (long)len;
			if (body_add(rx, e, p, len) < 0)
				return rx->err;
			break;
		default:
			k = feed_chunked(rx, e, p, len);
			break;
		}
		if (k < 0)
			return rx->err;
		p += k;
		len -= (size_t)k;
	}
	/* A response without a body is complete once its head is. */
	return rx->state == RX_FAILED ? rx->err : rx->state == RX_DONE;
}

int http_rx_eof(http_rx *rx, bks_err *e)
{
	switch (rx->state) {
	case RX_DONE:
		return 1;
	case RX_FAILED:
		return rx->err;
	case RX_CLOSE:
		rx->state = RX_DONE;
		return 1;
	case RX_HEAD:
		if (rx->hlen == 0)
			return rx_fail(rx, e, -EPROTO, "connection closed without a response");
		return rx_fail(rx, e, -EPROTO, "connection closed inside the response headers");
	case RX_LEN:
		return rx_fail(rx, e, -EPROTO, "connection closed after %zu of %llu body bytes",
		               rx->resp.body_len,
		               (unsigned long long)(rx->resp.body_len + rx->remaining));
	default:
		return rx_fail(rx, e, -EPROTO, "connection closed inside a chunked body (after "
		               "%zu bytes)", rx->resp.body_len);
	}
}

int http_rx_take(http_rx *rx, http_response *resp)
{
	if (rx->state != RX_DONE)
		return -EAGAIN;
	if (!rx->resp.body) {
		rx->resp.body = calloc(1, 1);
		if (!rx->resp.body)
			return -ENOMEM;
	}
	*resp = rx->resp;
	memset(&rx->resp, 0, sizeof(rx->resp));
	rx->body_cap = 0;
	return 0;
}

int http_parse_response(const char *buf, size_t len, const char *method, size_t max_body,
                        http_response *resp, bks_err *e)
{
	http_rx *rx;
	memset(resp, 0, sizeof(*resp));
	int r = http_rx_new(method, max_body, &rx);
	if (r < 0)
		return bks_fail(e, r, "out of memory");
	r = http_rx_feed(rx, buf, len, e);
	if (r == 0)
		r = http_rx_eof(rx, e);
	if (r == 1 && (r = http_rx_take(rx, resp)) < 0)
		bks_fail(e, r, "out of memory");
	http_rx_free(rx);
	return r;
}

const char *http_header(const http_response *resp, const char *name)
{
	for (size_t i = 0; resp && i < resp->nheaders; i++)
		if (!strcasecmp(resp->headers[i].name, name))
			return resp->headers[i].value;
	return NULL;
}

/* ---- client ---------------------------------------------------------------- */

/* host (a loopback literal or "localhost") and port as a socket address; -EINVAL if
 * host is no address literal, -EADDRNOTAVAIL if it is not loopback. */
static int loopback_addr(const char *host, uint16_t port, struct sockaddr_storage *ss,
                         socklen_t *sl)
{
	struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
	const char *h = strcmp(host, "localhost") ? host : "127.0.0.1";

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, h, &a4->sin_addr) == 1) {
		if (ntohl(a4->sin_addr.s_addr) >> 24 != 127)
			return -EADDRNOTAVAIL;
		a4->sin_family = AF_INET;
		a4->sin_port = htons(port);
		*sl = sizeof(*a4);
		return 0;
	}
	if (inet_pton(AF_INET6, h, &a6->sin6_addr) == 1) {
		if (!IN6_IS_ADDR_LOOPBACK(&a6->sin6_addr))
			return -EADDRNOTAVAIL;
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons(port);
		*sl = sizeof(*a6);
		return 0;
	}
	return -EINVAL;
}

static int check_host(const char *host, uint16_t port, bks_err *e)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int r = loopback_addr(host, port, &ss, &sl);
	if (r == -EADDRNOTAVAIL)
		return bks_fail(e, -EINVAL, "%s is not a loopback address: the API has no "
		                "transport security, so it is only reached on this host", host);
	if (r < 0)
		return bks_fail(e, -EINVAL, "\"%s\" is not an IP address literal or localhost",
		                host);
	if (port == 0)
		return bks_fail(e, -EINVAL, "no port for %s", host);
	return 0;
}

int http_target_parse(const char *spec, http_target *t, bks_err *e)
{
	const char *path = NULL, *h, *hend, *colon;
	memset(t, 0, sizeof(*t));
	if (!strncmp(spec, "unix:", 5))
		path = spec + 5;
	else if (spec[0] == '/' || spec[0] == '.')
		path = spec;
	if (path) {
		if (!*path || strlen(path) >= sizeof(t->unix_path))
			return bks_fail(e, -EINVAL, "socket path \"%.60s\" is empty or longer than "
			                "%zu bytes", path, sizeof(t->unix_path) - 1);
		strcpy(t->unix_path, path);
		return 0;
	}
	if (spec[0] == '[') {
		h = spec + 1;
		hend = strchr(h, ']');
		colon = hend ? hend + 1 : NULL;
		if (!hend || *colon != ':')
			return bks_fail(e, -EINVAL, "\"%.60s\": expected [IPv6]:PORT", spec);
	} else {
		h = spec;
		hend = colon = strrchr(spec, ':');
		if (!colon || memchr(h, ':', (size_t)(hend - h)))
			return bks_fail(e, -EINVAL, "\"%.60s\": expected a socket path, HOST:PORT or "
			                "[IPv6]:PORT", spec);
	}
	unsigned long port = 0;
	const char *p = colon + 1;
	for (; *p >= '0' && *p <= '9' && port <= 65535; p++)
		port = port * 10 + (unsigned long)(*p - '0');
	if (p == colon + 1 || *p || port == 0 || port > 65535)
		return bks_fail(e, -EINVAL, "\"%.60s\": bad port \"%s\"", spec, colon + 1);
	if (hend == h || (size_t)(hend - h) >= sizeof(t->host))
		return bks_fail(e, -EINVAL, "\"%.60s\": bad host", spec);
	memcpy(t->host, h, (size_t)(hend - h));
	t->port = (uint16_t)port;
	int r = check_host(t->host, t->port, e);
	if (r < 0)
		memset(t, 0, sizeof(*t));
	return r;
}

static int ms_left(uint64_t deadline)
{
	uint64_t now = bks_now_ns();
	if (now >= deadline)
		return 0;
	uint64_t ms = (deadline - now + 999999) / 1000000;
	return ms > 1000000000 ? 1000000000 : (int)ms;
}

static int timed_out(const http_target *t, const char *name, int connecting, bks_err *e)
{
	double s = (t->timeout_ms > 0 ? t->timeout_ms : HTTP_DEFAULT_TIMEOUT_MS) / 1000.0;
	if (connecting)
		return bks_fail(e, -ETIMEDOUT, "cannot connect to %s: no answer within %g s", name,
		                s);
	return bks_fail(e, -ETIMEDOUT, "no complete response from %s within %g s", name, s);
}

/* A connected non-blocking socket. */
static int open_conn(const http_target *t, const char *name, uint64_t deadline, int *fdp,
                     bks_err *e)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd, err;

	if (t->unix_path[0]) {
		struct sockaddr_un *un = (struct sockaddr_un *)&ss;
		memset(un, 0, sizeof(*un));
		un->sun_family = AF_UNIX;
		memcpy(un->sun_path, t->unix_path, sizeof(un->sun_path) - 1);
		sl = sizeof(*un);
	} else if (loopback_addr(t->host, t->port, &ss, &sl) < 0) {
		return check_host(t->host, t->port, e);
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return bks_fail(e, -errno, "cannot connect to %s: socket: %s", name,
		                strerror(errno));
	for (;;) {
		if (connect(fd, (struct sockaddr *)&ss, sl) == 0)
			break;
		err = errno;
		if (err == EAGAIN && t->unix_path[0]) {
			/* The listen backlog is full: try again until the deadline. */
			int left = ms_left(deadline);
			if (!left)
				goto timeout;
			poll(NULL, 0, BKS_MIN(left, 10));
			continue;
		}
		if (err != EINPROGRESS && err != EINTR)
			goto refused;
		struct pollfd pfd = {.fd = fd, .events = POLLOUT};
		int n;
		do
			n = poll(&pfd, 1, ms_left(deadline));
		while (n < 0 && errno == EINTR);
		if (n == 0)
			goto timeout;
		socklen_t el = sizeof(err);
		if (n < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
			err = errno;
		if (err)
			goto refused;
		break;
	}
	*fdp = fd;
	return 0;

timeout:
	close(fd);
	return timed_out(t, name, 1, e);
refused:
	close(fd);
	if (err == ENOENT || err == ECONNREFUSED)
		return bks_fail(e, -err, "cannot connect to %s: %s — is bkstord running?", name,
		                strerror(err));
	return bks_fail(e, -err, "cannot connect to %s: %s", name, strerror(err));
}

static int check_token(const char *s, size_t max)
{
	size_t n = 0;
	for (; s[n]; n++)
		if (!is_tchar((unsigned char)s[n]) || n >= max)
			return -1;
	return n ? 0 : -1;
}

/* The caller's extra header lines: whole "Name: value\r\n" lines, none of ours. */
static int check_extra(const char *x, bks_err *e)
{
	static const char *const ours[] = {"host", "content-length", "connection",
	                                   "transfer-encoding"};
	while (*x) {
		const char *eol = strstr(x, "\r\n"), *colon = strchr(x, ':');
		if (!eol)
			return bks_fail(e, -EINVAL, "extra headers must be whole lines ending in CRLF");
		size_t n = (size_t)(eol - x), c = 0;
		while (c < n && is_tchar((unsigned char)x[c]))
			c++;
		if (c == 0 || colon != x + c || memchr(x, '\n', n) || memchr(x, '\r', n))
			return bks_fail(e, -EINVAL, "malformed extra header line \"%.*s\"",
			                (int)BKS_MIN(n, (size_t)60), x);
		for (size_t i = 0; i < BKS_ARRAY_SIZE(ours); i++)
			if (c == strlen(ours[i]) && !strncasecmp(x, ours[i], c))
				return bks_fail(e, -EINVAL, "header %.*s is set by the HTTP client",
				                (int)c, x);
		x = eol + 2;
	}
	return 0;
}

static char *build_head(const http_target *t, const char *method, const char *path,
                        const char *extra, int with_len, size_t body_len, size_t *len)
{
	char host[96];
	if (t->unix_path[0])
		snprintf(host, sizeof(host), "localhost");
	else if (strchr(t->host, ':'))
		snprintf(host, sizeof(host), "[%s]:%u", t->host, t->port);
	else
		snprintf(host, sizeof(host), "%s:%u", t->host, t->port);
	size_t cap = strlen(method) + strlen(path) + strlen(host) + strlen(extra) + 128;
	char *h = malloc(cap);
	if (!h)
		return NULL;
	int n = snprintf(h, cap, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, path, host);
	if (with_len)
		n += snprintf(h + n, cap - (size_t)n, "Content-Length: %zu\r\n", body_len);
	n += snprintf(h + n, cap - (size_t)n, "Connection: close\r\n%s\r\n", extra);
	*len = (size_t)n;
	return h;
}

int http_request(const http_target *t, const char *method, const char *path,
                 const char *headers_extra, const void *body, size_t body_len,
                 http_response *resp, bks_err *e)
{
	char name[160], rbuf[16384];
	const char *extra = headers_extra ? headers_extra : "";
	size_t max_body = t->max_body ? t->max_body : HTTP_DEFAULT_MAX_BODY;
	int timeout = t->timeout_ms > 0 ? t->timeout_ms : HTTP_DEFAULT_TIMEOUT_MS;
	uint64_t deadline = bks_now_ns() + (uint64_t)timeout * 1000000;
	bks_err rx_e = {0};
	http_rx *rx = NULL;
	char *head = NULL;
	size_t head_len, sent = 0;
	int fd = -1, r, send_err = 0;

	memset(resp, 0, sizeof(*resp));
	if (t->unix_path[0] && strnlen(t->unix_path, sizeof(t->unix_path)) == sizeof(t->unix_path))
		return bks_fail(e, -EINVAL, "socket path longer than %zu bytes",
		                sizeof(t->unix_path) - 1);
	if (t->unix_path[0])
		snprintf(name, sizeof(name), "%s", t->unix_path);
	else if (t->host[0])
		snprintf(name, sizeof(name), strchr(t->host, ':') ? "[%.*s]:%u" : "%.*s:%u",
		         (int)sizeof(t->host), t->host, t->port);
	else
		return bks_fail(e, -EINVAL, "no API socket or address given");
	if (check_token(method, 32) < 0)
		return bks_fail(e, -EINVAL, "bad HTTP method \"%.40s\"", method);
	size_t plen = 0;
	while (path[plen] && (unsigned char)path[plen] > 0x20 && (unsigned char)path[plen] < 0x7f)
		plen++;
	if (path[0] != '/' || path[plen] || plen > 8192)
		return bks_fail(e, -EINVAL, "bad request path \"%.60s\": it must start with '/' "
		                "and be percent-encoded", path);
	if ((r = check_extra(extra, e)) < 0)
		return r;
	if (!body && body_len)
		return bks_fail(e, -EINVAL, "no body given for %zu bytes", body_len);

	int with_len = body || body_len || !strcmp(method, "POST") || !strcmp(method, "PUT") ||
	               !strcmp(method, "PATCH");
	head = build_head(t, method, path, extra, with_len, body_len, &head_len);
	if (!head || http_rx_new(method, max_body, &rx) < 0) {
		r = bks_fail(e, -ENOMEM, "out of memory");
		goto out;
	}
	if ((r = open_conn(t, name, deadline, &fd, e)) < 0)
		goto out;

	/* Send and receive in one loop until the parser says the response is complete. */
	for (;;) {
		size_t total = head_len + body_len;
		struct pollfd pfd = {.fd = fd, .events = POLLIN | (sent < total ? POLLOUT : 0)};
		int n = poll(&pfd, 1, ms_left(deadline));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = bks_fail(e, -errno, "poll: %s", strerror(errno));
			goto out;
		}
		if (n == 0) {
			r = timed_out(t, name, 0, e);
			goto out;
		}
		if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t k = recv(fd, rbuf, sizeof(rbuf), 0);
			if (k < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			if (k < 0 && !(errno == ECONNRESET && send_err)) {
				r = bks_fail(e, -errno, "reading from %s: %s", name, strerror(errno));
				goto out;
			}
			r = k > 0 ? http_rx_feed(rx, rbuf, (size_t)k, &rx_e) : http_rx_eof(rx, &rx_e);
			if (r < 0 && k <= 0 && send_err) {
				r = bks_fail(e, -send_err, "sending to %s: %s", name, strerror(send_err));
				goto out;
			}
			if (r < 0) {
				r = bks_fail(e, r, "%s (from %s)", rx_e.msg, name);
				goto out;
			}
			if (r == 1)
				break;
			continue;
		}
		if (sent < total && (pfd.revents & POLLOUT)) {
			struct iovec iov[2];
			int niov = 0;
			if (sent < head_len)
				iov[niov++] = (struct iovec){head + sent, head_len - sent};
			if (body_len) {
				size_t off = sent > head_len ? sent - head_len : 0;
				iov[niov++] = (struct iovec){(char *)body + off, body_len - off};
			}
			struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)niov};
			ssize_t k = sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
			if (k >= 0) {
				sent += (size_t)k;
			} else if (errno == EPIPE || errno == ECONNRESET) {
				/* The server stopped reading; it may have answered: read that. */
				send_err = errno;
				sent = total;
			} else if (errno != EAGAIN && errno != EINTR) {
				r = bks_fail(e, -errno, "sending to %s: %s", name, strerror(errno));
				goto out;
			}
		}
	}
	r = http_rx_take(rx, resp);
	if (r < 0)
		r = bks_fail(e, r, "out of memory");
out:
	if (fd >= 0)
		close(fd);
	http_rx_free(rx);
	free(head);
	return r;
}
