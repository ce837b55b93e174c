/* daemon/web.c: the dashboard's listener: the control API over TCP (optionally TLS)
 * behind a login, plus the dashboard's static files built into the binary.
 *
 * Access rules (docs/api.md "Dashboard listener"):
 *   - static files and POST /api/v1/login: anyone;
 *   - every other /api/v1/ request: a session cookie (from login), or for GET only a
 *     read-only API token (Authorization: Bearer ...); else 401;
 *   - every POST with a session: the session's CSRF token in X-CSRF-Token; else 403;
 *   - failed logins: WA_FAIL_LIMIT per source address per minute, then 429.
 * Every reply carries CSP, X-Frame-Options and nosniff; API replies are no-store.
 *
 * Nothing is buffered for a stranger: the first call of the handler sees only the
 * headers, and every request that the rules above refuse is answered there, before
 * its body is read (MHD then closes the connection instead of reading it). Only the
 * login route and requests with a session (POST) or token (GET) get their bodies
 * read, the login's capped at WEB_LOGIN_BODY_MAX, the rest at API_BODY_MAX. */
#include <config.h>

#include "daemon/api_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daemon/cfg_rewrite.h"
#include "daemon/log.h"
#include "web/static_files.h"

#define COOKIE "bks_session"
#define WEB_MAX_RPS 1000
#define WEB_LOGIN_BODY_MAX 4096u /* {"password": ...} */

void web_security_headers(struct MHD_Response *res)
{
	MHD_add_response_header(res, "Content-Security-Policy",
	                        "default-src 'self'; img-src 'self' data:; style-src 'self'; "
	                        "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; "
	                        "base-uri 'none'; form-action 'self'");
	MHD_add_response_header(res, "X-Frame-Options", "DENY");
	MHD_add_response_header(res, "Referrer-Policy", "no-referrer");
}

static void client_ip(struct MHD_Connection *conn, char *out, size_t cap)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	snprintf(out, cap, "?");
	if (!ci || !ci->client_addr)
		return;
	const struct sockaddr *sa = ci->client_addr;
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out,
		          (socklen_t)cap);
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, out,
		          (socklen_t)cap);
}

static enum MHD_Result send_static(struct MHD_Connection *conn, const web_file *f)
{
	struct MHD_Response *res = MHD_create_response_from_buffer(f->len, (void *)f->data,
	                                                           MHD_RESPMEM_PERSISTENT);
	if (!res)
		return MHD_NO;
	MHD_add_response_header(res, "Content-Type", f->type);
	MHD_add_response_header(res, "Cache-Control", "no-cache");
	MHD_add_response_header(res, "X-Content-Type-Options", "nosniff");
	web_security_headers(res);
	enum MHD_Result r = MHD_queue_response(conn, MHD_HTTP_OK, res);
	MHD_destroy_response(res);
	return r;
}

static const web_file *find_static(const char *url)
{
	if (!strcmp(url, "/"))
		url = "/index.html";
	if (url[0] != '/' || strchr(url + 1, '/'))
		return NULL;
	for (size_t i = 0; i < web_nfiles; i++)
		if (!strcmp(web_files[i].name, url + 1))
			return &web_files[i];
	return NULL;
}

static void set_cookie(api *a, reply *rp, const char *id, uint64_t max_age_s)
{
	snprintf(rp->cookie, sizeof(rp->cookie), COOKIE "=%s; Path=/; HttpOnly; "
	         "SameSite=Strict; Max-Age=%llu%s", id, (unsigned long long)max_age_s,
	         a->tls ? "; Secure" : "");
}

static void session_json(reply *rp, const wa_session *s)
{
	reply_begin(rp, MHD_HTTP_OK);
	json_obj_begin(&rp->j, NULL);
	json_bool(&rp->j, "ok", 1);
	json_str(&rp->j, "csrf", s->csrf);
	json_uint(&rp->j, "expires_ns", s->expires_ns);
	json_obj_end(&rp->j);
}

static void do_login(api *a, struct MHD_Connection *conn, struct req *rq, reply *rp)
{
	char ip[64], key[64];
	jsonp *d;
	wa_session s;
	int retry = 0;
	client_ip(conn, ip, sizeof(ip));
	wa_source_key(ip, key, sizeof(key));
	if (api_parse_body(rq, rp, &d) < 0)
		return;
	const char *pw = jsonp_get_str(jsonp_root(d), "password", NULL);
	if (!pw) {
		reply_error(rp, MHD_HTTP_BAD_REQUEST, -EINVAL, "field 'password' must be a string");
		jsonp_free(d);
		return;
	}
	int r = wa_login(&a->wa, key, pw, &s, &retry);
	jsonp_free(d);
	if (r == -EAGAIN) {
		LOG_W("dashboard: login from %s refused: too many failures this minute", ip);
		reply_error(rp, MHD_HTTP_TOO_MANY_REQUESTS, -EBUSY, "too many failed logins; try "
		            "again in %d s", retry);
		rp->retry_after = 1;
		snprintf(rp->retry_after_s, sizeof(rp->retry_after_s), "%d", retry);
	} else if (r == -ENOENT) {
		reply_error(rp, MHD_HTTP_UNAUTHORIZED, -EPERM, "no admin password is set: run "
		            "`bkstorctl passwd` on the appliance");
	} else if (r < 0) {
		LOG_W("dashboard: failed login from %s", ip);
		reply_error(rp, MHD_HTTP_UNAUTHORIZED, -EPERM, "wrong password");
	} else {
		LOG_I("dashboard: admin logged in from %s", ip);
		session_json(rp, &s);
		set_cookie(a, rp, s.id, a->wa.timeout_ns / 1000000000ull);
	}
}

/* Who is asking: 2 a session (s filled), 1 a read-only token, 0 nobody. */
static int who(api *a, struct MHD_Connection *conn, wa_session *s)
{
	const char *id = MHD_lookup_connection_value(conn, MHD_COOKIE_KIND, COOKIE);
	if (id && wa_session_get(&a->wa, id, s) == 0)
		return 2;
	const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
	if (auth && !strncmp(auth, "Bearer ", 7) && wa_token_ok(&a->wa, auth + 7))
		return 1;
	return 0;
}

/* At most WEB_MAX_RPS requests a second: beyond that a request waits its turn (a few
 * ms), so a script polling flat out gets answers but cannot take the CPU from
 * backups on a small head. */
static void pace_request(api *a)
{
	uint64_t gap = 1000000000ull / WEB_MAX_RPS, now = bks_now_ns(), at;
	pthread_mutex_lock(&a->stmu);
	if (a->web_next_ns < now)
		a->web_next_ns = now;
	at = a->web_next_ns;
	a->web_next_ns += gap;
	pthread_mutex_unlock(&a->stmu);
	if (at > now) {
		uint64_t d = BKS_MIN(at - now, 50000000ull);
		struct timespec ts = {(time_t)(d / 1000000000ull), (long)(d % 1000000000ull)};
		nanosleep(&ts, NULL);
	}
}

static void too_many(reply *rp, int retry)
{
	reply_error(rp, MHD_HTTP_TOO_MANY_REQUESTS, -EBUSY, "too many failed logins; try "
	            "again in %d s", retry);
	rp->retry_after = 1;
	snprintf(rp->retry_after_s, sizeof(rp->retry_after_s), "%d", retry);
}

/* The first call, headers only: 1 with the answer in rp when the request is refused
 * (its body is then never read), 0 when its body may be read (*cap: how much). */
static int gate(api *a, struct MHD_Connection *conn, const char *url, const char *method,
                reply *rp, const char **allow, size_t *cap)
{
	const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	                                             MHD_HTTP_HEADER_CONTENT_LENGTH);
	unsigned long long len = cl ? strtoull(cl, NULL, 10) : 0;
	int post = !strcmp(method, "POST");
	wa_session s;
	int retry = 0;

	*cap = API_BODY_MAX;
	if (!strcmp(url, "/api/v1/login")) {
		char ip[64], key[64];
		client_ip(conn, ip, sizeof(ip));
		wa_source_key(ip, key, sizeof(key));
		*cap = WEB_LOGIN_BODY_MAX;
		if (!post) {
			*allow = "POST";
			reply_error(rp, MHD_HTTP_METHOD_NOT_ALLOWED, -EINVAL, "use POST");
		} else if (wa_blocked(&a->wa, key, &retry)) {
			too_many(rp, retry);
		} else if (len > WEB_LOGIN_BODY_MAX) {
			reply_error(rp, MHD_HTTP_CONTENT_TOO_LARGE, -EINVAL, "a login body has at "
			            "most %u bytes", WEB_LOGIN_BODY_MAX);
		} else {
			return 0;
		}
		return 1;
	}
	int w = who(a, conn, &s);
	const char *tok = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-CSRF-Token");
	if (!w)
		reply_error(rp, MHD_HTTP_UNAUTHORIZED, -EPERM, "log in first");
	else if (post && w != 2)
		reply_error(rp, MHD_HTTP_FORBIDDEN, -EPERM, "read-only API tokens cannot change "
		            "anything");
	else if (post && (!tok || strlen(tok) != WA_ID_HEX ||
	                  CRYPTO_memcmp(tok, s.csrf, WA_ID_HEX)))
		reply_error(rp, MHD_HTTP_FORBIDDEN, -EPERM, "missing or wrong CSRF token "
		            "(X-CSRF-Token)");
	else if (len > API_BODY_MAX)
		reply_error(rp, MHD_HTTP_CONTENT_TOO_LARGE, -EINVAL, "request body larger than "
		            "%u bytes", API_BODY_MAX);
	else
		return 0;
	return 1;
}

static enum MHD_Result handle_web(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload, size_t *upload_size, void **con_cls)
{
	api *a = cls;
	struct req *rq;
	reply rp = {.web = 1};
	const char *allow = NULL;
	wa_session s;
	(void)version;

	int get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
	int post = !strcmp(method, "POST");
	if (!*con_cls)
		pace_request(a);
	if (strncmp(url, "/api/", 5)) {
		/* Static files, answered at the first call: no body is ever read. */
		const web_file *f = get ? find_static(url) : NULL;
		if (f)
			return send_static(conn, f);
		reply_error(&rp, MHD_HTTP_NOT_FOUND, -ENOENT, "no such page: %s", url);
		return reply_send(conn, &rp, NULL);
	}
	if (!*con_cls) {
		size_t cap;
		if (gate(a, conn, url, method, &rp, &allow, &cap))
			return reply_send(conn, &rp, allow);
		if (!(rq = calloc(1, sizeof(*rq))))
			return MHD_NO;
		rq->cap = cap;
		rq->abort_over = cap < API_BODY_MAX; /* the login: drop, do not drain */
		*con_cls = rq;
		return MHD_YES;
	}
	int more = api_body(&rq, con_cls, upload, upload_size);
	if (more < 0)
		return MHD_NO;
	if (more)
		return MHD_YES;
	if (!strcmp(url, "/api/v1/login")) {
		if (!post) {
			allow = "POST";
			reply_error(&rp, MHD_HTTP_METHOD_NOT_ALLOWED, -EINVAL, "use POST");
		} else {
			do_login(a, conn, rq, &rp);
		}
		return reply_send(conn, &rp, allow);
	}
	int w = who(a, conn, &s);
	if (!w) {
		reply_error(&rp, MHD_HTTP_UNAUTHORIZED, -EPERM, "log in first");
	} else if (!strcmp(url, "/api/v1/session")) {
		if (w == 2)
			session_json(&rp, &s);
		else
			reply_error(&rp, MHD_HTTP_UNAUTHORIZED, -EPERM, "an API token has no session");
	} else if (post && w != 2) {
		reply_error(&rp, MHD_HTTP_FORBIDDEN, -EPERM, "read-only API tokens cannot change "
		            "anything");
	} else if (post) {
		const char *tok = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-CSRF-Token");
		if (!tok || strlen(tok) != WA_ID_HEX || CRYPTO_memcmp(tok, s.csrf, WA_ID_HEX)) {
			reply_error(&rp, MHD_HTTP_FORBIDDEN, -EPERM, "missing or wrong CSRF token "
			            "(X-CSRF-Token)");
		} else if (!strcmp(url, "/api/v1/logout")) {
			wa_logout(&a->wa, s.id);
			reply_ok(&rp, "logged out");
			set_cookie(a, &rp, "", 0);
		} else if (!strcmp(url, "/api/v1/passwd")) {
			reply_error(&rp, MHD_HTTP_FORBIDDEN, -EPERM, "set the password on the appliance "
			            "(bkstorctl passwd)");
		} else {
			api_dispatch(a, conn, url, method, rq, &rp, &allow);
		}
	} else {
		api_dispatch(a, conn, url, method, rq, &rp, &allow);
	}
	return reply_send(conn, &rp, allow);
}

/* --- the password --- */

void web_passwd(api *a, const jsonp_val *body, reply *rp)
{
	char hash[WA_HASH_MAX];
	bks_err e = {0};
	size_t len = 0;
	const char *pw = NULL;
	if (jsonp_get_strn(body, "password", &pw, &len) < 0) {
		reply_error(rp, MHD_HTTP_BAD_REQUEST, -EINVAL, "field 'password' must be a string");
		return;
	}
	if (len < WA_PASSWORD_MIN || memchr(pw, 0, len)) {
		reply_error(rp, MHD_HTTP_BAD_REQUEST, -EINVAL, "the password must have at least %d "
		            "characters", WA_PASSWORD_MIN);
		return;
	}
	if (wa_hash_password(pw, hash) < 0) {
		reply_error(rp, 0, -EIO, "cannot hash the password");
		return;
	}
	const char *v[1] = {hash};
	int r = cfg_rewrite(a->ap->cfg.source, "web", "admin_password", v, 1, &e);
	if (r < 0) {
		reply_error(rp, 0, r, "%s", bks_errmsg(&e, r));
		return;
	}
	wa_set_hash(&a->wa, hash);
	appl_event_add(a->ap, CFG_LOG_WARN, "the dashboard's admin password was changed; every "
	               "session ended");
	reply_ok(rp, "password set (stored as a PBKDF2 hash in %s)", a->ap->cfg.source);
}

/* --- start / stop --- */

static char *slurp(const char *path, bks_err *e)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	char *b = NULL;
	if (fd < 0 || fstat(fd, &st) < 0 || st.st_size > (1 << 20)) {
		bks_fail(e, -errno ? -errno : -EFBIG, "%s: %s", path, strerror(errno ? errno : EFBIG));
		goto out;
	}
	if ((b = calloc(1, (size_t)st.st_size + 1)) && read(fd, b, (size_t)st.st_size) != st.st_size) {
		bks_fail(e, -EIO, "%s: short read", path);
		free(b);
		b = NULL;
	}
out:
	if (fd >= 0)
		close(fd);
	return b;
}

int web_start(api *a, bks_err *e)
{
	const bks_cfg *c = &a->ap->cfg;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(c->web_listen.port)};
	struct sockaddr_in6 sa6 = {.sin6_family = AF_INET6, .sin6_port = htons(c->web_listen.port)};
	const struct sockaddr *addr = (const struct sockaddr *)&sa;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ERROR_LOG;

	wa_init(&a->wa, c->admin_password, c->session_timeout_s, c->api_tokens, c->napi_tokens);
	if (!c->web_enabled)
		return 0;
	if (c->web_listen.family == CFG_AF_INET6) {
		if (inet_pton(AF_INET6, c->web_listen.host, &sa6.sin6_addr) != 1)
			return bks_fail(e, -EINVAL, "bad [web] listen address %s", c->web_listen.host);
		addr = (const struct sockaddr *)&sa6;
		flags |= MHD_USE_IPv6;
	} else if (inet_pton(AF_INET, c->web_listen.family == CFG_AF_LOCALHOST ? "127.0.0.1"
	                                                                      : c->web_listen.host,
	                     &sa.sin_addr) != 1) {
		return bks_fail(e, -EINVAL, "bad [web] listen address %s", c->web_listen.host);
	}
	if (c->tls_cert[0]) {
		if (!(a->cert = slurp(c->tls_cert, e)) || !(a->key = slurp(c->tls_key, e)))
			return -EINVAL;
		a->tls = 1;
		flags |= MHD_USE_TLS;
	}
	a->web = MHD_start_daemon(flags, c->web_listen.port, NULL, NULL, handle_web, a,
	                          MHD_OPTION_SOCK_ADDR, addr,
	                          MHD_OPTION_NOTIFY_COMPLETED, api_done, NULL,
	                          MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60,
	                          MHD_OPTION_CONNECTION_LIMIT, (unsigned)256,
	                          MHD_OPTION_THREAD_POOL_SIZE, (unsigned)2,
	                          a->tls ? MHD_OPTION_HTTPS_MEM_KEY : MHD_OPTION_END, a->key,
	                          MHD_OPTION_HTTPS_MEM_CERT, a->cert, MHD_OPTION_END);
	if (!a->web)
		return bks_fail(e, -EADDRINUSE, "cannot start the dashboard on %s:%u (in use? TLS "
		                "files valid?)", c->web_listen.host, c->web_listen.port);
	if (!c->admin_password[0])
		LOG_W("dashboard: no admin password set; run `bkstorctl passwd` to allow logins");
	LOG_I("dashboard on %s://%s:%u/", a->tls ? "https" : "http", c->web_listen.host,
	      c->web_listen.port);
	return 0;
}

void web_stop(api *a)
{
	if (a->web)
		MHD_stop_daemon(a->web);
	a->web = NULL;
	wa_destroy(&a->wa);
	free(a->cert);
	free(a->key);
}
