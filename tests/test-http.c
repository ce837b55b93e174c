/* test-http: the HTTP client against a fake server in a thread (a Unix socket in a
 * temp dir and 127.0.0.1 on a kernel-chosen port) with canned answers: Content-Length,
 * chunked (sent a byte at a time), close-delimited, silence (the timeout fires),
 * an oversized header block, a malformed status line, bodies over the limit, a
 * truncated body, an early answer to a large upload; the exact request bytes; the
 * connect errors; target parsing; and the response parser on its own.
 * `test-http --seeds DIR` writes canned responses as fuzzing seeds. */
#include <config.h>

#include "tests/testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli/http.h"

static const char *const canned[] = {
	"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n"
	"{\"ok\":true}",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n7;ext=1\r\n, world"
	"\r\n0\r\nX-Trailer: 1\r\n\r\n",
	"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the close",
	"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 404 Not Found\r\ncontent-length: 2\r\n"
	"X-A: 1\r\nx-a: 2\r\n\r\nno",
	"HTTP/1.1 204 No Content\r\nContent-Length: 99\r\n\r\n",
	"HTTP/1.1 200\r\nTransfer-Encoding: Chunked\r\n\r\n000A\r\n0123456789\r\n0\r\n\r\n",
};

static int write_seeds(const char *dir)
{
	char p[512];
	for (size_t i = 0; i < BKS_ARRAY_SIZE(canned); i++) {
		snprintf(p, sizeof(p), "%s/http-%02zu.txt", dir, i);
		FILE *f = fopen(p, "wb");
		if (!f || fwrite(canned[i], 1, strlen(canned[i]), f) != strlen(canned[i]))
			return 1;
		fclose(f);
	}
	return 0;
}

/* ---- the fake server ------------------------------------------------------- */

enum srv_mode {
	SRV_ANSWER, /* read the request (head and Content-Length body), answer, close */
	SRV_SILENT, /* read the request, never answer; close when told */
	SRV_EARLY,  /* answer after the head, then drain the body (a lingering close) */
	SRV_HANGUP, /* read the request, close without a word */
};

struct srv {
	int lfd, stop[2];
	enum srv_mode mode;
	const char *resp;
	size_t resp_len, piece; /* piece: write this many bytes at a time (0: all) */
	char *req;              /* what the client sent */
	size_t req_len, req_cap;
	pthread_t th;
};

static int wait_in(int fd, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	return poll(&p, 1, ms) == 1;
}

static void *serve(void *arg)
{
	struct srv *s = arg;
	char buf[65536];
	size_t need = SIZE_MAX;
	int fd;

	if (!wait_in(s->lfd, 5000) || (fd = accept(s->lfd, NULL, NULL)) < 0)
		return NULL;
	s->req_len = 0;
	while (s->req_len < need && wait_in(fd, 5000)) {
		ssize_t k = recv(fd, buf, sizeof(buf), 0);
		if (k <= 0)
			break;
		if (s->req_len + (size_t)k > s->req_cap) {
			s->req_cap = (s->req_len + (size_t)k) * 2;
			s->req = realloc(s->req, s->req_cap);
		}
		memcpy(s->req + s->req_len, buf, (size_t)k);
		s->req_len += (size_t)k;
		char *end = need == SIZE_MAX ? memmem(s->req, s->req_len, "\r\n\r\n", 4) : NULL;
		if (end) {
			char *cl = memmem(s->req, (size_t)(end - s->req), "Content-Length: ", 16);
			need = (size_t)(end + 4 - s->req) + (cl ? strtoul(cl + 16, NULL, 10) : 0);
			if (s->mode == SRV_EARLY)
				break;
		}
	}
	if (s->mode == SRV_SILENT) {
		wait_in(s->stop[0], 10000);
		char c;
		if (read(s->stop[0], &c, 1) < 0)
			perror("stop pipe");
	} else if (s->mode != SRV_HANGUP) {
		size_t off = 0, piece = s->piece ? s->piece : s->resp_len;
		while (off < s->resp_len) {
			ssize_t k = send(fd, s->resp + off, BKS_MIN(piece, s->resp_len - off),
			                 MSG_NOSIGNAL);
			if (k <= 0)
				break;
			off += (size_t)k;
			if (s->piece)
				usleep(200);
		}
	}
	if (s->mode == SRV_EARLY) {
		shutdown(fd, SHUT_WR);
		while (wait_in(fd, 5000) && recv(fd, buf, sizeof(buf), 0) > 0)
			;
	}
	close(fd);
	return NULL;
}

static int run(struct srv *s, const http_target *t, const char *method, const char *path,
               const char *extra, const void *body, size_t len, http_response *resp,
               bks_err *e)
{
	if (s->resp && !s->resp_len)
		s->resp_len = strlen(s->resp);
	bks_err_clear(e);
	if (pthread_create(&s->th, NULL, serve, s) != 0) {
		perror("pthread_create");
		exit(99);
	}
	int r = http_request(t, method, path, extra, body, len, resp, e);
	if (s->mode == SRV_SILENT && write(s->stop[1], "x", 1) != 1)
		perror("stop pipe");
	pthread_join(s->th, NULL);
	return r;
}

static void srv_set(struct srv *s, enum srv_mode mode, const char *resp, size_t len,
                    size_t piece)
{
	s->mode = mode;
	s->resp = resp;
	s->resp_len = len;
	s->piece = piece;
}

/* ---- tests ----------------------------------------------------------------- */

static void test_exchange(struct srv *su, const http_target *tu, struct srv *st,
                          const http_target *tt)
{
	http_response resp;
	bks_err e = {0};
	const char *body = "{\"name\":\"x\"}";
	char want[256];
	int r;

	srv_set(su, SRV_ANSWER, canned[0], 0, 0);
	r = run(su, tu, "POST", "/v1/array", "Content-Type: application/json\r\n", body,
	        strlen(body), &resp, &e);
	REQUIRE_VOID(r == 0, "unix POST: %d %s", r, e.msg);
	snprintf(want, sizeof(want), "POST /v1/array HTTP/1.1\r\nHost: localhost\r\n"
	         "Content-Length: 12\r\nConnection: close\r\nContent-Type: application/json\r\n"
	         "\r\n%s", body);
	CHECK(su->req_len == strlen(want) && !memcmp(su->req, want, su->req_len),
	      "request bytes: %.*s", (int)su->req_len, su->req);
	CHECK(resp.status == 200 && !strcmp(resp.reason, "OK"), "status %d", resp.status);
	CHECK(resp.body_len == 11 && !strcmp(resp.body, "{\"ok\":true}"), "body %s", resp.body);
	CHECK(http_header(&resp, "content-type") && !strcmp(http_header(&resp, "CONTENT-TYPE"),
	      "application/json") && !http_header(&resp, "x-none"), "header lookup");
	CHECK(resp.nheaders == 2 && !strcmp(resp.headers[1].name, "Content-Length"),
	      "headers in order");
	http_response_free(&resp);
	http_response_free(&resp); /* harmless twice */

	/* The same over TCP; a GET sends no Content-Length. */
	srv_set(st, SRV_ANSWER, canned[0], 0, 0);
	r = run(st, tt, "GET", "/v1/status?x=1", NULL, NULL, 0, &resp, &e);
	CHECK(r == 0 && resp.status == 200 && resp.body_len == 11, "TCP GET: %d %s", r, e.msg);
	snprintf(want, sizeof(want), "GET /v1/status?x=1 HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n"
	         "Connection: close\r\n\r\n", tt->port);
	CHECK(st->req_len == strlen(want) && !memcmp(st->req, want, st->req_len),
	      "TCP request bytes: %.*s", (int)st->req_len, st->req);
	http_response_free(&resp);

	/* A POST without a body says Content-Length: 0. */
	srv_set(su, SRV_ANSWER, canned[0], 0, 0);
	r = run(su, tu, "POST", "/v1/scrub", NULL, NULL, 0, &resp, &e);
	CHECK(r == 0 && memmem(su->req, su->req_len, "Content-Length: 0\r\n", 19),
	      "empty POST: %d %s", r, e.msg);
	http_response_free(&resp);

	/* Chunked, a byte at a time: every state boundary is crossed between reads. */
	srv_set(su, SRV_ANSWER, canned[1], 0, 1);
	r = run(su, tu, "GET", "/", NULL, NULL, 0, &resp, &e);
	CHECK(r == 0 && resp.body_len == 12 && !strcmp(resp.body, "hello, world"),
	      "chunked: %d %s [%s]", r, e.msg, resp.body ? resp.body : "");
	http_response_free(&resp);
	srv_set(st, SRV_ANSWER, canned[1], 0, 0);
	r = run(st, tt, "GET", "/", NULL, NULL, 0, &resp, &e);
	CHECK(r == 0 && !strcmp(resp.body, "hello, world"), "chunked TCP: %d %s", r, e.msg);
	http_response_free(&resp);

	/* Close-delimited. */
	srv_set(su, SRV_ANSWER, canned[2], 0, 3);
	r = run(su, tu, "GET", "/", NULL, NULL, 0, &resp, &e);
	CHECK(r == 0 && resp.body_len == 15 && !strcmp(resp.body, "until the close") &&
	      !strcmp(http_header(&resp, "Content-Type"), "text/plain"),
	      "until close: %d %s", r, e.msg);
	http_response_free(&resp);

	/* 100 Continue skipped; a 404 is a response, not an error; first of two headers. */
	srv_set(st, SRV_ANSWER, canned[3], 0, 0);
	r = run(st, tt, "DELETE", "/v1/disk/3", NULL, NULL, 0, &resp, &e);
	CHECK(r == 0 && resp.status == 404 && !strcmp(resp.reason, "Not Found") &&
	      !strcmp(resp.body, "no") && !strcmp(http_header(&resp, "X-A"), "1"),
	      "404 after 100: %d %s", r, e.msg);
	http_response_free(&resp);

	/* A large upload the server refuses after reading the head: the client reads the
	 * early answer instead of blocking on a full socket buffer. */
	size_t big = 8 << 20;
	char *up = calloc(1, big);
	srv_set(su, SRV_EARLY, "HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\n\r\n",
	        0, 0);
	r = run(su, tu, "PUT", "/v1/blob", NULL, up, big, &resp, &e);
	CHECK(r == 0 && resp.status == 413 && resp.body_len == 0 && resp.body &&
	      !resp.body[0], "early 413: %d %s", r, e.msg);
	http_response_free(&resp);
	free(up);
}

static void test_refusals(struct srv *su, const http_target *tu, struct srv *st,
                          const http_target *tt)
{
	http_response resp;
	bks_err e = {0};
	http_target t;
	int r;

	/* Silence: the timeout fires after about a second. */
	t = *tu;
	t.timeout_ms = 1000;
	srv_set(su, SRV_SILENT, NULL, 0, 0);
	uint64_t t0 = bks_now_ns();
	r = run(su, &t, "GET", "/", NULL, NULL, 0, &resp, &e);
	double secs = (double)(bks_now_ns() - t0) / 1e9;
	CHECK(r == -ETIMEDOUT && strstr(e.msg, "no complete response from ") &&
	      strstr(e.msg, "within 1 s") && secs > 0.9 && secs < 3,
	      "silent server: %d \"%s\" after %.2f s", r, e.msg, secs);
	CHECK(resp.body == NULL && resp.status == 0, "empty response after an error");
	http_response_free(&resp);
	t = *tt;
	t.timeout_ms = 1000;
	srv_set(st, SRV_SILENT, NULL, 0, 0);
	r = run(st, &t, "GET", "/", NULL, NULL, 0, &resp, &e);
	CHECK(r == -ETIMEDOUT, "silent TCP server: %d %s", r, e.msg);

	/* A header block over 64 KiB. */
	size_t cap = 80 << 10, n = 0;
	char *hdr = malloc(cap);
	n += (size_t)snprintf(hdr, cap, "HTTP/1.1 200 OK\r\n");
	for (int i = 0; n < (70 << 10); i++)
		n += (size_t)snprintf(hdr + n, cap - n, "X-Pad-%d: %0100d\r\n", i, 0);
	n += (size_t)snprintf(hdr + n, cap - n, "Content-Length: 0\r\n\r\n");
	srv_set(su, SRV_ANSWER, hdr, n, 0);
	r = run(su, tu, "GET", "/", NULL, NULL, 0, &resp, &e);
	CHECK(r == -EMSGSIZE && strstr(e.msg, "header block larger than 64 KiB"),
	      "big header: %d %s", r, e.msg);
	free(hdr);

	/* Malformed status lines. */
	srv_set(su, SRV_ANSWER, "HTTP/1.1 2OO OK\r\nContent-Length: 0\r\n\r\n", 0, 0);
	r = run(su, tu, "GET", "/", NULL, NULL, 0, &resp, &e);
	CHECK(r == -EPROTO && strstr(e.msg, "malformed status line \"HTTP/1.1 2OO OK\""),
	      "bad status: %d %s", r, e.msg);
	srv_set(st, SRV_ANSWER, "SSH-2.0-OpenSSH_9.2\r\n", 0, 0);
	t0 = bks_now_ns();
	r = run(st, tt, "GET", "/", NULL, NULL, 0, &resp, &e);
	CHECK(r == -EPROTO && strstr(e.msg, "not an HTTP response") &&
	      bks_now_ns() - t0 < 2000000000ull, "not HTTP: %d %s", r, e.msg);

	/* Bodies over the limit, however they are delimited. */
	t = *tu;
	t.max_body = 1000;
	static char lenb[6000], chunked[6000], closeb[6000];
	int k = snprintf(lenb, sizeof(lenb), "HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n");
	memset(lenb + k, 'a', 5000);
	srv_set(su, SRV_ANSWER, lenb, (size_t)k + 5000, 0);
	r = run(su, &t, "GET", "/", NULL, NULL, 0, &resp, &e);
	CHECK(r == -EMSGSIZE && strstr(e.msg, "5000 bytes exceeds the limit of 1000"),
	      "Content-Length over the limit: %d %s", r, e.msg);
	k = snprintf(chunked, sizeof(chunked), "HTTP/1.1 200 OK\r\nTransfer-Encoding: "
	             "chunked\r\n\r\n");
	for (int i = 0; i < 20; i++)
		k += snprintf(chunked + k, sizeof(chunked) - (size_t)k, "64\r\n%0100d\r\n", i);
	k += snprintf(chunked + k, sizeof(chunked) - (size_t)k, "0\r\n\r\n");
	srv_set(su, SRV_ANSWER, chunked, (size_t)k, 0);
	r = run(su, &t, "GET", "/", NULL, NULL, 0, &resp, &e);
	CHECK(r == -EMSGSIZE && strstr(e.msg, "limit of 1000"), "chunked over the limit: %d %s",
	      r, e.msg);
	t.max_body = 2000;
	r = run(su, &t, "GET", "/", NULL, NULL, 0, &resp, &e);
	CHECK(r == 0 && resp.body_len == 2000, "the same within 2000: %d %s", r, e.msg);
	http_response_free(&resp);
	t.max_body = 1000;
	k = snprintf(closeb, sizeof(closeb), "HTTP/1.1 200 OK\r\n\r\n");
	memset(closeb + k, 'c', 1001);
	srv_set(su, SRV_ANSWER, closeb, (size_t)k + 1001, 0);
	r = run(su, &t, "GET", "/", NULL, NULL, 0, &resp, &e);
	CHECK(r == -EMSGSIZE, "close-delimited over the limit: %d %s", r, e.msg);

	/* Truncated answers. */
	srv_set(su, SRV_ANSWER, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12345", 0, 0);
	r = run(su, tu, "GET", "/", NULL, NULL, 0, &resp, &e);
	CHECK(r == -EPROTO && strstr(e.msg, "after 5 of 10 body bytes"), "truncated: %d %s", r,
	      e.msg);
	srv_set(su, SRV_HANGUP, NULL, 0, 0);
	r = run(su, tu, "GET", "/", NULL, NULL, 0, &resp, &e);
	CHECK(r == -EPROTO && strstr(e.msg, "closed without a response"), "hangup: %d %s", r,
	      e.msg);
}

static void test_args(const char *dir)
{
	http_response resp;
	http_target t;
	bks_err e = {0};
	char p[600];
	int r;

	snprintf(p, sizeof(p), "%s/nothere.sock", dir);
	REQUIRE_VOID(http_target_parse(p, &t, &e) == 0, "parse %s: %s", p, e.msg);
	r = http_request(&t, "GET", "/", NULL, NULL, 0, &resp, &e);
	CHECK(r == -ENOENT && strstr(e.msg, p) && strstr(e.msg, "No such file or directory — "
	      "is bkstord running?"), "no socket: %d %s", r, e.msg);

	/* A port nobody listens on. */
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
	socklen_t al = sizeof(a);
	REQUIRE_VOID(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	             getsockname(fd, (struct sockaddr *)&a, &al) == 0, "bind");
	close(fd);
	snprintf(p, sizeof(p), "127.0.0.1:%u", ntohs(a.sin_port));
	REQUIRE_VOID(http_target_parse(p, &t, &e) == 0, "parse %s", p);
	r = http_request(&t, "GET", "/", NULL, NULL, 0, &resp, &e);
	CHECK(r == -ECONNREFUSED && strstr(e.msg, p) && strstr(e.msg, "is bkstord running?"),
	      "refused: %d %s", r, e.msg);

	static const struct { const char *spec; int ok; const char *host; unsigned port; }
	specs[] = {
		{"unix:/run/bkstor/api.sock", 1, NULL, 0}, {"/run/x.sock", 1, NULL, 0},
		{"./rel.sock", 1, NULL, 0}, {"127.0.0.1:8080", 1, "127.0.0.1", 8080},
		{"127.1.2.3:1", 1, "127.1.2.3", 1}, {"[::1]:443", 1, "::1", 443},
		{"localhost:65535", 1, "localhost", 65535}, {"10.0.0.1:80", 0, NULL, 0},
		{"[2001:db8::1]:80", 0, NULL, 0}, {"example.com:80", 0, NULL, 0},
		{"127.0.0.1", 0, NULL, 0}, {"127.0.0.1:0", 0, NULL, 0},
		{"127.0.0.1:65536", 0, NULL, 0}, {"127.0.0.1:80x", 0, NULL, 0},
		{"::1:80", 0, NULL, 0}, {"[::1]80", 0, NULL, 0}, {":80", 0, NULL, 0},
		{"unix:", 0, NULL, 0}, {"", 0, NULL, 0},
	};
	for (size_t i = 0; i < BKS_ARRAY_SIZE(specs); i++) {
		bks_err_clear(&e);
		r = http_target_parse(specs[i].spec, &t, &e);
		CHECK(specs[i].ok ? r == 0 : r == -EINVAL && e.msg[0], "spec \"%s\": %d %s",
		      specs[i].spec, r, e.msg);
		if (r == 0 && specs[i].host)
			CHECK(!strcmp(t.host, specs[i].host) && t.port == specs[i].port &&
			      !t.unix_path[0], "spec \"%s\" host/port", specs[i].spec);
		if (r == 0 && !specs[i].host)
			CHECK(t.unix_path[0] == '/' || t.unix_path[0] == '.', "spec %s path",
			      specs[i].spec);
	}
	CHECK(http_target_parse("10.0.0.1:80", &t, &e) == -EINVAL &&
	      strstr(e.msg, "not a loopback address"), "non-loopback message: %s", e.msg);

	/* Bad requests are refused before connecting. */
	http_target_parse("/nonexistent/x.sock", &t, &e);
	static const struct { const char *m, *path, *extra; } bad[] = {
		{"GET", "/a b", NULL}, {"GET", "a", NULL}, {"GET", "", NULL},
		{"GET", "/\xc3\xa9", NULL}, {"G T", "/", NULL}, {"", "/", NULL},
		{"GET", "/", "X-A: 1"}, {"GET", "/", "X-A: 1\r\nInjected"},
		{"GET", "/", "X-A: 1\nX-B: 2\r\n"}, {"GET", "/", "Host: evil\r\n"},
		{"GET", "/", "content-length: 5\r\n"}, {"GET", "/", "\r\n"},
		{"GET", "/", "X-A 1\r\n"}, {"GET", "/", "X-A: 1\rX\r\n"},
	};
	for (size_t i = 0; i < BKS_ARRAY_SIZE(bad); i++) {
		r = http_request(&t, bad[i].m, bad[i].path, bad[i].extra, NULL, 0, &resp, &e);
		CHECK(r == -EINVAL, "bad request %zu: %d %s", i, r, e.msg);
	}
	CHECK(http_request(&t, "GET", "/", NULL, NULL, 5, &resp, &e) == -EINVAL,
	      "body length without a body");
	memset(t.unix_path, 'x', sizeof(t.unix_path));
	CHECK(http_request(&t, "GET", "/", NULL, NULL, 0, &resp, &e) == -EINVAL,
	      "unterminated socket path");
	memset(&t, 0, sizeof(t));
	CHECK(http_request(&t, "GET", "/", NULL, NULL, 0, &resp, &e) == -EINVAL, "no target");
	snprintf(t.host, sizeof(t.host), "192.168.1.1");
	t.port = 80;
	CHECK(http_request(&t, "GET", "/", NULL, NULL, 0, &resp, &e) == -EINVAL &&
	      strstr(e.msg, "not a loopback address"), "non-loopback request: %s", e.msg);
}

/* The parser on canned bytes. */
static void parse_case(int line, const char *bytes, const char *method, int want,
                       const char *why, const char *body)
{
	http_response resp;
	bks_err e = {0};
	int r = http_parse_response(bytes, strlen(bytes), method, 1000, &resp, &e);
	CHECK(r == want && (!why || strstr(e.msg, why)) &&
	      (!body || (r == 0 && resp.body_len == strlen(body) && !strcmp(resp.body, body))),
	      "line %d: %d \"%s\", want %d \"%s\"", line, r, e.msg, want, why ? why : "");
	http_response_free(&resp);
}
#define OK(b, m, body) parse_case(__LINE__, b, m, 0, NULL, body)
#define BAD(b, code, why) parse_case(__LINE__, b, "GET", code, why, NULL)

static void test_parser(void)
{
	for (size_t i = 0; i < BKS_ARRAY_SIZE(canned); i++)
		OK(canned[i], "GET", NULL);
	OK(canned[1], "GET", "hello, world");
	OK(canned[4], "GET", "");
	OK(canned[5], "GET", "0123456789");
	OK("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", "HEAD", "");
	OK("HTTP/1.1 304 Not Modified\r\n\r\n", "GET", "");
	OK("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nabcdef", "GET", "ab");
	OK("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nab", "GET", "ab");
	OK("HTTP/1.1 200 \r\nX:\r\nY:  spaced  \r\n\r\n", "GET", "");
	OK("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3 ; a=b\r\nabc\r\n0\r\n\r\n",
	   "GET", "abc");

	BAD("", -EPROTO, "closed without a response");
	BAD("HTTP/1.1 200 OK\r\n", -EPROTO, "closed inside the response headers");
	BAD("HTTP/2 200\r\n\r\n", -EPROTO, "malformed status line");
	BAD("HTTP/1.1 200OK\r\n\r\n", -EPROTO, "malformed status line");
	BAD("HTTP/1.1 600 X\r\n\r\n", -EPROTO, "malformed status line");
	BAD("HTTP/1.1 20 X\r\n\r\n", -EPROTO, "malformed status line");
	BAD("http/1.1 200 OK\r\n\r\n", -EPROTO, "not an HTTP response");
	BAD("HTTP/1.1 200 OK\nContent-Length: 0\n\n", -EPROTO, "closed inside");
	BAD("HTTP/1.1 200 OK\r\nA: 1\nB: 2\r\n\r\n", -EPROTO, "bare CR or LF");
	BAD("HTTP/1.1 200 OK\r\nA: 1\r\n folded\r\n\r\n", -EPROTO, "obsolete line folding");
	BAD("HTTP/1.1 200 OK\r\nA : 1\r\n\r\n", -EPROTO, "malformed header line");
	BAD("HTTP/1.1 200 OK\r\n: 1\r\n\r\n", -EPROTO, "malformed header line");
	BAD("HTTP/1.1 200 OK\r\nA: \x01\r\n\r\n", -EPROTO, "control character");
	BAD("HTTP/1.1 101 Switching Protocols\r\n\r\n", -EPROTO, "101");
	BAD("HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n", -EPROTO, "malformed Content-Length");
	BAD("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", -EPROTO, "malformed Content-Length");
	BAD("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n", -EPROTO,
	    "malformed Content-Length");
	BAD("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", -EPROTO,
	    "conflicting Content-Length");
	BAD("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	    -EPROTO, "both Transfer-Encoding and Content-Length");
	BAD("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", -EPROTO,
	    "unsupported Transfer-Encoding");
	BAD("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
	    -EPROTO, "more than one Transfer-Encoding");
	BAD("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nz\r\n", -EPROTO,
	    "malformed chunk size");
	BAD("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\n", -EPROTO,
	    "malformed chunk size");
	BAD("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n", -EPROTO,
	    "chunk data not followed by CRLF");
	BAD("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n", -EPROTO,
	    "malformed chunk size");
	BAD("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\rabc\r\n", -EPROTO,
	    "not ended by CRLF");
	BAD("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n", -EPROTO,
	    "closed inside a chunked body");
	BAD("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n",
	    -EMSGSIZE, "limit of 1000");
	BAD("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3e9\r\n", -EMSGSIZE,
	    "limit of 1000");
	BAD("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nA: 1\n\r\n", -EPROTO,
	    "bare LF");

	/* The incremental parser gives the same answer whatever the split. */
	const char *s = canned[1];
	size_t n = strlen(s);
	for (size_t cut = 0; cut <= n; cut++) {
		http_rx *rx;
		http_response resp;
		bks_err e = {0};
		REQUIRE_VOID(http_rx_new("GET", 0, &rx) == 0, "rx");
		int r1 = http_rx_feed(rx, s, cut, &e);
		int r2 = http_rx_feed(rx, s + cut, n - cut, &e);
		CHECK(r1 == (cut == n) && r2 == 1 && http_rx_take(rx, &resp) == 0 &&
		      !strcmp(resp.body, "hello, world"), "split at %zu: %d %d %s", cut, r1, r2,
		      e.msg);
		http_response_free(&resp);
		http_rx_free(rx);
	}
}

int main(int argc, char **argv)
{
	struct srv su = {0}, st = {0};
	http_target tu = {0}, tt = {0};

	if (argc == 3 && !strcmp(argv[1], "--seeds"))
		return write_seeds(argv[2]);
	const char *dir = tu_tmpdir("http");

	struct sockaddr_un un = {.sun_family = AF_UNIX};
	snprintf(un.sun_path, sizeof(un.sun_path), "%s/api.sock", dir);
	su.lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	REQUIRE(su.lfd >= 0 && bind(su.lfd, (struct sockaddr *)&un, sizeof(un)) == 0 &&
	        listen(su.lfd, 8) == 0, "unix listen on %s", un.sun_path);
	REQUIRE(http_target_parse(un.sun_path, &tu, NULL) == 0, "unix target");

	struct sockaddr_in in = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
	socklen_t inl = sizeof(in);
	st.lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	REQUIRE(st.lfd >= 0 && bind(st.lfd, (struct sockaddr *)&in, sizeof(in)) == 0 &&
	        listen(st.lfd, 8) == 0 && getsockname(st.lfd, (struct sockaddr *)&in, &inl) == 0,
	        "tcp listen");
	snprintf(tt.host, sizeof(tt.host), "127.0.0.1");
	tt.port = ntohs(in.sin_port);
	REQUIRE(pipe(su.stop) == 0 && pipe(st.stop) == 0, "pipes");

	test_exchange(&su, &tu, &st, &tt);
	test_refusals(&su, &tu, &st, &tt);
	test_args(dir);
	test_parser();

	close(su.lfd);
	close(st.lfd);
	free(su.req);
	free(st.req);
	return tu_finish();
}
