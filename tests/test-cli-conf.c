/* test-cli-conf: bkstorctl's client side of the daemon (cli/client_conf.h): the
 * client configuration (every key, comments, quotes, CRLF, each refusal with its
 * line, secrets never echoed, the permission warning, which file and $BKSTOR_API);
 * the array document decoded back into an arr_status after arr_status_json wrote it
 * (the round trip must be exact) and refused when mistyped; and client_api_call
 * against a fake daemon on a Unix socket (2xx, error replies, bodies that are not
 * JSON objects, no daemon at all). */
#include <config.h>

#include "tests/testutil.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli/client_conf.h"
#include "storage/arr_json.h"

#define SECRET "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

static int parse(const char *text, client_conf *c, bks_err *e)
{
	client_conf_defaults(c);
	bks_err_clear(e);
	return client_conf_parse(text, strlen(text), "t.conf", c, e);
}

static void test_parse_ok(void)
{
	client_conf c;
	bks_err e;
	int r;

	r = parse("", &c, &e);
	CHECK(r == 0 && !strcmp(c.server, CLIENT_DEFAULT_SERVER) && c.server_port == 7070 &&
	      !strcmp(c.server_host, "127.0.0.1") && !strcmp(c.api_socket, CLIENT_DEFAULT_API) &&
	      !c.name[0] && !c.secret[0], "empty file: defaults (%s)", e.msg);

	r = parse("# the demo\r\n[client]  # section\r\n\r\n  server = backup-1.example.com:7171 "
	          "# inline\r\nname=demo.host_1\r\nsecret = " SECRET "\r\n; other comment\r\n"
	          "api_socket = \"/run/x # y/api.sock\"   # quoted\r\n", &c, &e);
	CHECK(r == 0, "full file: %s", e.msg);
	CHECK(!strcmp(c.server_host, "backup-1.example.com") && c.server_port == 7171 &&
	      !strcmp(c.server, "backup-1.example.com:7171"), "server %s", c.server);
	CHECK(!strcmp(c.name, "demo.host_1"), "name '%s'", c.name);
	CHECK(!strcmp(c.secret, SECRET), "secret");
	CHECK(!strcmp(c.api_socket, "/run/x # y/api.sock"), "quoted api_socket '%s'",
	      c.api_socket);

	r = parse("server = [::1]:8000\n", &c, &e);
	CHECK(r == 0 && !strcmp(c.server_host, "::1") && c.server_port == 8000, "[::1]:8000: %s",
	      e.msg);
	r = parse("server = 10.0.0.5\n", &c, &e);
	CHECK(r == 0 && !strcmp(c.server_host, "10.0.0.5") && c.server_port == 7070,
	      "a host without a port takes 7070: %s", e.msg);
	r = parse("api_socket = /a#b\n", &c, &e);
	CHECK(r == 0 && !strcmp(c.api_socket, "/a#b"), "'#' inside a word is not a comment");
	r = parse("api_socket = \"/a \\\"q\\\" \\\\\"\n", &c, &e);
	CHECK(r == 0 && !strcmp(c.api_socket, "/a \"q\" \\"), "escapes in quotes: '%s'",
	      c.api_socket);
	r = parse("secret = " SECRET "\n", &c, &e);
	client_conf_wipe(&c);
	CHECK(r == 0 && !c.secret[0] && !c.api_socket[0], "wipe clears everything");
}

/* text must fail at line `line` with a message containing `has`. */
static void refuse(int lineno, const char *text, int line, const char *has)
{
	client_conf c;
	bks_err e;
	char want[32];
	int r = parse(text, &c, &e);

	snprintf(want, sizeof(want), "t.conf:%d: ", line);
	CHECK(r == -EINVAL, "line %d: accepted: %s", lineno, text);
	CHECK(!strncmp(e.msg, want, strlen(want)) && strstr(e.msg, has),
	      "line %d: message '%s' (want '%s...%s')", lineno, e.msg, want, has);
	CHECK(!strstr(e.msg, "a1b2c3"), "line %d: the secret is echoed: %s", lineno, e.msg);
}

static void test_parse_refusals(void)
{
	static const char nul[] = "name = a\nname\0 = b\n";
	client_conf c;
	bks_err e;

	refuse(__LINE__, "colour = blue\n", 1, "unknown key 'colour'");
	refuse(__LINE__, "name = a\n\nname = b\n", 3, "given twice (first on line 1)");
	refuse(__LINE__, "[daemon]\n", 1, "unknown section [daemon]");
	refuse(__LINE__, "[client\n", 1, "malformed section header");
	refuse(__LINE__, "just words\n", 1, "expected 'key = value'");
	refuse(__LINE__, "name =\n", 1, "name has no value");
	refuse(__LINE__, "name = # nothing\n", 1, "has no value");
	refuse(__LINE__, "name = a b\n", 1, "name must be");
	refuse(__LINE__, "name = aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n", 1,
	       "1..64");
	refuse(__LINE__, "\n\nsecret = a1b2c3\n", 3, "32..128 hex digits");
	refuse(__LINE__, "secret = a1b2c3a1b2c3a1b2c3a1b2c3a1b2c3a1b2c3zz\n", 1, "hex digits");
	refuse(__LINE__, "secret = a1b2c3a1b2c3a1b2c3a1b2c3a1b2c3a1b2c3a\n", 1, "even count");
	refuse(__LINE__, "secret = 0000000000000000000000000000000000000000000000000000000000000000\n",
	       1, "one byte value repeated");
	refuse(__LINE__, "api_socket = run/api.sock\n", 1, "absolute path");
	refuse(__LINE__, "api_socket = /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	       "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n", 1, "107 bytes");
	refuse(__LINE__, "server = ::1:7070\n", 1, "want host[:port]");
	refuse(__LINE__, "server = 127.0.0.1:0\n", 1, "1..65535");
	refuse(__LINE__, "server = 127.0.0.1:65536\n", 1, "1..65535");
	refuse(__LINE__, "server = 127.0.0.1:\n", 1, "server");
	refuse(__LINE__, "server = [nope]:1\n", 1, "server");
	refuse(__LINE__, "server = a_b:1\n", 1, "server");
	refuse(__LINE__, "api_socket = \"/a\n", 1, "no closing");
	refuse(__LINE__, "api_socket = \"/a\" b\n", 1, "after the closing");
	refuse(__LINE__, "api_socket = \"/a\\n\"\n", 1, "may follow");
	refuse(__LINE__, "name = a\x01\n", 1, "control character");

	client_conf_defaults(&c);
	int r = client_conf_parse(nul, sizeof(nul) - 1, "t.conf", &c, &e);
	CHECK(r == -EINVAL && strstr(e.msg, "t.conf:2: control character 0x00"), "NUL: %s", e.msg);
	char *big = malloc(5000);
	memset(big, 'a', 4999);
	big[4999] = 0;
	memcpy(big, "name = ", 7);
	client_conf_defaults(&c);
	r = client_conf_parse(big, 4999, "t.conf", &c, &e);
	CHECK(r == -EINVAL && strstr(e.msg, "longer than 4096"), "long line: %s", e.msg);
	free(big);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");
	if (!f || fputs(text, f) < 0 || fclose(f) != 0 || chmod(path, mode) != 0) {
		perror(path);
		exit(99);
	}
}

static void test_load(const char *dir)
{
	char p_open[512], p_secret[512], p_env[512], p_missing[512];
	client_conf c;
	bks_err e = {0};
	int r;

	snprintf(p_open, sizeof(p_open), "%s/open.conf", dir);
	snprintf(p_secret, sizeof(p_secret), "%s/secret.conf", dir);
	snprintf(p_env, sizeof(p_env), "%s/env.conf", dir);
	snprintf(p_missing, sizeof(p_missing), "%s/missing.conf", dir);
	write_file(p_open, "name = a\napi_socket = /x/api.sock\n", 0644);
	write_file(p_secret, "secret = " SECRET "\n", 0640);
	write_file(p_env, "api_socket = /from/env.sock\n", 0600);
	unsetenv(CLIENT_API_ENV);
	unsetenv(CLIENT_CONF_ENV);

	r = client_conf_load(p_open, &c, &e);
	CHECK(r == 0 && !strcmp(c.api_socket, "/x/api.sock") && !c.warning[0] &&
	      !strcmp(c.source, p_open), "readable file without a secret: no warning (%s)",
	      c.warning);
	r = client_conf_load(p_secret, &c, &e);
	CHECK(r == 0 && strstr(c.warning, "holds a secret") && strstr(c.warning, "its group") &&
	      strstr(c.warning, "chmod 600") && !strstr(c.warning, "0011"),
	      "group-readable secret: warning '%s'", c.warning);
	chmod(p_secret, 0604);
	r = client_conf_load(p_secret, &c, &e);
	CHECK(r == 0 && strstr(c.warning, "by others"), "other-readable: '%s'", c.warning);
	chmod(p_secret, 0600);
	r = client_conf_load(p_secret, &c, &e);
	CHECK(r == 0 && !c.warning[0], "mode 0600: no warning ('%s')", c.warning);

	r = client_conf_load(p_missing, &c, &e);
	CHECK(r == -ENOENT && strstr(e.msg, "missing.conf: open:"), "named file missing: %d %s",
	      r, e.msg);
	r = client_conf_load(dir, &c, &e);
	CHECK(r == -EINVAL && strstr(e.msg, "not a regular file"), "a directory: %s", e.msg);

	setenv(CLIENT_CONF_ENV, p_env, 1);
	r = client_conf_load(NULL, &c, &e);
	CHECK(r == 0 && !strcmp(c.api_socket, "/from/env.sock"), "$BKSTOR_CLIENT: %s",
	      c.api_socket);
	r = client_conf_load(p_open, &c, &e);
	CHECK(r == 0 && !strcmp(c.api_socket, "/x/api.sock"), "a path beats $BKSTOR_CLIENT");
	setenv(CLIENT_CONF_ENV, p_missing, 1);
	r = client_conf_load(NULL, &c, &e);
	CHECK(r == -ENOENT, "$BKSTOR_CLIENT naming a missing file is an error (%d)", r);
	setenv(CLIENT_API_ENV, "127.0.0.1:8080", 1);
	r = client_conf_load(p_env, &c, &e);
	CHECK(r == 0 && !strcmp(c.api_socket, "127.0.0.1:8080"), "$BKSTOR_API overrides: %s",
	      c.api_socket);

	http_target t;
	char warn[200];
	r = client_api_target(NULL, p_env, &t, warn, sizeof(warn), &e);
	CHECK(r == 0 && t.port == 8080 && !t.unix_path[0], "target from $BKSTOR_API");
	r = client_api_target("/opt/api.sock", p_env, &t, warn, sizeof(warn), &e);
	CHECK(r == 0 && !strcmp(t.unix_path, "/opt/api.sock"), "--api beats $BKSTOR_API");
	unsetenv(CLIENT_API_ENV);
	unsetenv(CLIENT_CONF_ENV);

	/* Only the default file may be missing; skip when this host has one. */
	if (access(CLIENT_CONF_DEFAULT, F_OK) != 0) {
		r = client_conf_load(NULL, &c, &e);
		CHECK(r == 0 && !strcmp(c.api_socket, CLIENT_DEFAULT_API) && !c.source[0],
		      "no default file: defaults (%d %s)", r, e.msg);
	}
}

/* ---- the array document ------------------------------------------------------- */

static void sample_status(arr_status *st)
{
	memset(st, 0, sizeof(*st));
	snprintf(st->name, sizeof(st->name), "vault");
	snprintf(st->uuid, sizeof(st->uuid), "7d9dacb5-4952-b39d-b64a-460e2ef0fd18");
	st->health = ARR_REBUILDING;
	snprintf(st->action, sizeof(st->action), "Rebuilding onto a spare; \"no\" action.");
	st->width = 6;
	st->data_strips = 4;
	st->strip_size = 262144;
	st->rows = 16380;
	st->hwm = 1421;
	st->seq = 77;
	st->capacity_bytes = (uint64_t)16380 * 4 * 262144;
	for (int i = 0; i < 8; i++) {
		arr_disk_status *d = &st->disks[st->ndisks++];
		d->slot = i < 6 ? i : i == 6 ? 2 : -1;
		d->role = i < 6 ? ARR_ROLE_MEMBER : i == 6 ? ARR_ROLE_INCOMING : ARR_ROLE_SPARE;
		snprintf(d->state, sizeof(d->state), "%s", i == 2 ? "FAULTED" : i == 6 ? "REBUILDING"
		                                          : i == 7 ? "AVAIL" : "ONLINE");
		if (i != 3)
			snprintf(d->path, sizeof(d->path), "/dev/disk/by-id/wwn-%d ü", i);
		snprintf(d->uuid, sizeof(d->uuid), "00000000-0000-0000-0000-00000000000%d", i + 1);
		if (i == 1)
			snprintf(d->serial, sizeof(d->serial), "WD-%d", i);
		d->size = (uint64_t)4 << 30;
		d->read_errors = (uint64_t)i * 3;
		d->write_errors = i == 2 ? 11 : 0;
		d->cksum_errors = UINT64_MAX - (uint64_t)i;
		d->cursor = i == 6 ? 64 : 0;
		d->rows_total = i == 6 ? 1421 : 0;
	}
	arr_job_status *j = &st->jobs[st->njobs++];
	snprintf(j->kind, sizeof(j->kind), "rebuild");
	snprintf(j->state, sizeof(j->state), "running");
	j->done_rows = 64;
	j->total_rows = 1421;
	j->rate_bps = 123456789.125;
	j->eta_s = -1;
	j = &st->jobs[st->njobs++];
	snprintf(j->kind, sizeof(j->kind), "scrub");
	snprintf(j->state, sizeof(j->state), "paused");
	j->done_rows = 5;
	j->total_rows = 1421;
	j->rate_bps = 0.1;
	j->eta_s = 3.5;
	st->last_scrub.state = ARR_SCRUB_PAUSED;
	st->last_scrub.cursor = 5;
	st->last_scrub.rows_checked = 5;
	st->last_scrub.errors_found = j->errors_found = 2;
	st->last_scrub.repaired = j->repaired = 1;
	st->last_scrub.unrecoverable = j->unrecoverable = 1;
	st->last_scrub.started_ns = 1795680945220521418ull;
}

static int decode_text(const char *text, arr_status *st, bks_err *e)
{
	jsonp *doc;
	int r = jsonp_parse(text, strlen(text), NULL, &doc, NULL, e);
	if (r < 0)
		return r;
	r = arr_status_from_json(jsonp_root(doc), st, e);
	jsonp_free(doc);
	return r;
}

static void test_decode(void)
{
	arr_status *in = calloc(1, sizeof(*in)), *out = calloc(1, sizeof(*out));
	char *text = NULL;
	size_t len = 0;
	bks_err e = {0};
	json j;

	sample_status(in);
	FILE *f = open_memstream(&text, &len);
	json_init(&j, f, 0);
	arr_status_json(&j, NULL, in);
	CHECK(json_finish(&j) == 0 && fclose(f) == 0, "encode");
	int r = decode_text(text, out, &e);
	CHECK(r == 0, "decode: %s", e.msg);
	CHECK(out->ndisks == 8 && out->njobs == 2 && out->disks[7].slot == -1 &&
	      out->disks[6].role == ARR_ROLE_INCOMING && !out->disks[3].path[0] &&
	      out->jobs[0].eta_s == -1 && out->jobs[0].rate_bps == 123456789.125,
	      "fields: ndisks %d njobs %d", out->ndisks, out->njobs);
	CHECK(memcmp(in, out, sizeof(*in)) == 0, "the round trip is exact");
	free(text);

	/* "OK" (docs/api.md's name) and "ONLINE" (arr_health_name's) are both healthy. */
	CHECK(decode_text("{\"health\": \"OK\"}", out, &e) == 0 && out->health == ARR_OK,
	      "health OK: %s", e.msg);
	CHECK(decode_text("{\"name\": \"x\", \"health\": \"FAILED\", \"disks\": [{\"role\": "
	                  "\"spare\"}]}", out, &e) == 0 && !strcmp(out->name, "x") &&
	      out->health == ARR_FAILED && out->ndisks == 1 && out->disks[0].slot == -1 &&
	      !out->rows && !out->disks[0].size, "missing members read as empty: %s", e.msg);
	CHECK(decode_text("{\"health\": \"ONLINE\", \"action\": \"a\\u001b[2Jb\"}", out, &e) ==
	      0 && !strcmp(out->action, "a?[2Jb"), "control characters cleaned: '%s'",
	      out->action);

	static const struct { const char *doc, *msg; } bad[] = {
		{"[]", "not an object"},
		{"{\"name\": \"x\"}", "'health' must be ONLINE"},
		{"{\"health\": \"GREAT\"}", "'health' must be ONLINE, DEGRADED, REBUILDING or FAILED"},
		{"{\"health\": \"OK\", \"rows\": -1}", "'rows' must be a whole number"},
		{"{\"health\": \"OK\", \"rows\": 1.5}", "'rows' must be a whole number"},
		{"{\"health\": \"OK\", \"disks\": {}}", "'disks' must be an array"},
		{"{\"health\": \"OK\", \"disks\": [{\"role\": \"member\"}, {\"role\": \"member\", "
		 "\"size\": \"big\"}]}", "'disks[1].size' must be a whole number"},
		{"{\"health\": \"OK\", \"disks\": [{\"role\": \"boss\"}]}",
		 "'disks[0].role' must be member, incoming or spare"},
		{"{\"health\": \"OK\", \"disks\": [{\"role\": \"spare\", \"slot\": 99}]}",
		 "'disks[0].slot' must be a slot number or null"},
		{"{\"health\": \"OK\", \"disks\": [7]}", "'disks[0]' must be an object"},
		{"{\"health\": \"OK\", \"disks\": [{\"role\": \"spare\", \"path\": 3}]}",
		 "'disks[0].path' must be a string or null"},
		{"{\"health\": \"OK\", \"jobs\": [{}, {}, {}, {}]}", "'jobs' must be a list of at most 3"},
		{"{\"health\": \"OK\", \"jobs\": [{\"eta_s\": \"soon\"}]}",
		 "'jobs[0].eta_s' must be a number or null"},
		{"{\"health\": \"OK\", \"last_scrub\": {\"state\": \"done\"}}",
		 "'last_scrub.state' must be idle, running or paused"},
		{"{\"health\": \"OK\", \"last_scrub\": []}", "'last_scrub' must be an object"},
	};
	for (size_t i = 0; i < BKS_ARRAY_SIZE(bad); i++) {
		bks_err_clear(&e);
		r = decode_text(bad[i].doc, out, &e);
		CHECK(r == -EPROTO && strstr(e.msg, bad[i].msg), "bad[%zu]: %d '%s' (want '%s')", i,
		      r, e.msg, bad[i].msg);
	}
	free(in);
	free(out);
}

/* ---- client_api_call against a fake daemon ---------------------------------------- */

struct fake {
	int lfd;
	const char *answer;
	char req[4096];
	size_t req_len;
};

static void *serve_one(void *arg)
{
	struct fake *f = arg;
	struct pollfd p = {.fd = f->lfd, .events = POLLIN};
	int fd;

	if (poll(&p, 1, 5000) != 1 || (fd = accept(f->lfd, NULL, NULL)) < 0)
		return NULL;
	f->req_len = 0;
	/* The whole request: head, then Content-Length bytes of body. */
	for (;;) {
		p.fd = fd;
		if (poll(&p, 1, 5000) != 1)
			break;
		ssize_t k = recv(fd, f->req + f->req_len, sizeof(f->req) - 1 - f->req_len, 0);
		if (k <= 0)
			break;
		f->req_len += (size_t)k;
		f->req[f->req_len] = 0;
		char *end = strstr(f->req, "\r\n\r\n"), *cl = strstr(f->req, "Content-Length: ");
		if (end && f->req_len >= (size_t)(end + 4 - f->req) +
		                              (cl ? strtoul(cl + 16, NULL, 10) : 0))
			break;
	}
	if (send(fd, f->answer, strlen(f->answer), MSG_NOSIGNAL) < 0)
		perror("send");
	close(fd);
	return NULL;
}

static int ask(struct fake *f, const http_target *t, const char *answer, const char *method,
               const char *body, client_reply *rp, bks_err *e)
{
	pthread_t th;
	f->answer = answer;
	bks_err_clear(e);
	if (pthread_create(&th, NULL, serve_one, f) != 0)
		exit(99);
	int r = client_api_call(t, method, "/api/v1/x", body, rp, e);
	pthread_join(th, NULL);
	return r;
}

#define ANSWER(status, body)                                                               \
	"HTTP/1.1 " status "\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n" body

static void test_call(const char *dir)
{
	struct fake f = {0};
	struct sockaddr_un un = {.sun_family = AF_UNIX};
	http_target t;
	client_reply rp;
	bks_err e = {0};
	int r;

	snprintf(un.sun_path, sizeof(un.sun_path), "%s/api.sock", dir);
	f.lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (f.lfd < 0 || bind(f.lfd, (struct sockaddr *)&un, sizeof(un)) != 0 ||
	    listen(f.lfd, 4) != 0 || http_target_parse(un.sun_path, &t, NULL) != 0) {
		CHECK(0, "listen on %s", un.sun_path);
		return;
	}

	r = ask(&f, &t, ANSWER("200 OK", "{\"ok\": true, \"message\": \"committed\"}"), "POST",
	        "{}", &rp, &e);
	CHECK(r == 0 && jsonp_type(rp.root) == JSONP_OBJECT &&
	      !strcmp(jsonp_get_str(rp.root, "message", ""), "committed"), "200: %d %s", r, e.msg);
	CHECK(strstr(f.req, "POST /api/v1/x HTTP/1.1\r\n") && strstr(f.req, "\r\n\r\n{}") &&
	      strstr(f.req, "Content-Type: application/json\r\n"), "the request: %s", f.req);
	client_reply_free(&rp);

	r = ask(&f, &t, ANSWER("409 Conflict", "{\"error\": \"disk /x: 1.0 GiB, smaller than the "
	        "4.0 GiB this array needs per disk\", \"code\": \"ENOSPC\"}"), "POST", "{}", &rp, &e);
	CHECK(r == -EBUSY && !strcmp(e.msg, "disk /x: 1.0 GiB, smaller than the 4.0 GiB this "
	      "array needs per disk") && !rp.root && !rp.doc, "409: %d '%s'", r, e.msg);
	r = ask(&f, &t, ANSWER("404 Not Found", "{\"error\": \"no disk 'q'\\u001b\"}"), "GET",
	        NULL, &rp, &e);
	CHECK(r == -ENOENT && !strcmp(e.msg, "no disk 'q'?"), "404, cleaned: %d '%s'", r, e.msg);
	CHECK(strstr(f.req, "GET /api/v1/x HTTP/1.1\r\n") && !strstr(f.req, "Content-Type"),
	      "a GET has no body: %s", f.req);
	r = ask(&f, &t, "HTTP/1.1 500 Internal Server Error\r\nConnection: close\r\n\r\nboom\n",
	        "GET", NULL, &rp, &e);
	CHECK(r == -EIO && !strcmp(e.msg, "bkstord answered 500 Internal Server Error: boom?"),
	      "500 without JSON: %d '%s'", r, e.msg);
	r = ask(&f, &t, ANSWER("503 Service Unavailable", "{\"error\": \"shutting down\"}"), "GET",
	        NULL, &rp, &e);
	CHECK(r == -ESHUTDOWN && !strcmp(e.msg, "shutting down"), "503: %d %s", r, e.msg);
	r = ask(&f, &t, ANSWER("200 OK", "[1, 2]"), "GET", NULL, &rp, &e);
	CHECK(r == -EPROTO && strstr(e.msg, "not a JSON object"), "200 array: %d %s", r, e.msg);
	r = ask(&f, &t, ANSWER("200 OK", "{\"a\": 1,}"), "GET", NULL, &rp, &e);
	CHECK(r == -EPROTO && strstr(e.msg, "not a JSON object: offset"), "200 bad JSON: %d %s",
	      r, e.msg);
	r = ask(&f, &t, ANSWER("204 No Content", ""), "GET", NULL, &rp, &e);
	CHECK(r == -EPROTO, "200 without a body: %d %s", r, e.msg);
	client_reply_free(&rp); /* harmless on an empty reply */

	close(f.lfd);
	unlink(un.sun_path);
	r = client_api_call(&t, "GET", "/api/v1/status", NULL, &rp, &e);
	CHECK(r == -ENOENT && strstr(e.msg, "is bkstord running?"), "no daemon: %d %s", r, e.msg);
}

int main(void)
{
	const char *dir = tu_tmpdir("cli-conf");

	test_parse_ok();
	test_parse_refusals();
	test_load(dir);
	test_decode();
	test_call(dir);
	return tu_finish();
}
