/* cli/client_conf.c: see client_conf.h.
 *
 * The grammar is the daemon's (common/ini.c lexes both files) with four keys and no
 * lists, so a line that works in one file reads the same way in the other. The parse stops
 * at the first problem: a half-understood file must not send a secret to the wrong
 * server.
 *
 * The API half decodes strictly by type and leniently by presence: the daemon may
 * be older or newer than bkstorctl, and a missing counter is better shown as 0 than
 * refused, while a string where a number belongs means the two disagree about the
 * document and guessing would print nonsense.
 */
#include <config.h>

#include "cli/client_conf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/ini.h"
#include "storage/arr_json.h"

#define API_PATH_MAX 107 /* sizeof(sun_path) - 1 */

enum ckey { K_SERVER, K_NAME, K_SECRET, K_API, K_COUNT };
static const char *const key_name[K_COUNT] = {"server", "name", "secret", "api_socket"};

void client_conf_defaults(client_conf *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->server, sizeof(c->server), "%s", CLIENT_DEFAULT_SERVER);
	snprintf(c->server_host, sizeof(c->server_host), "127.0.0.1");
	c->server_port = 7070;
	snprintf(c->api_socket, sizeof(c->api_socket), "%s", CLIENT_DEFAULT_API);
}

void client_conf_wipe(client_conf *c)
{
	if (c)
		explicit_bzero(c, sizeof(*c));
}

/* "host:port", "[v6]:port". A host name is allowed (the native protocol
 * authenticates; only the API is loopback-only). */
static int parse_server(const char *v, client_conf *c)
{
	const char *colon, *hs = v, *he;
	char host[256];

	if (v[0] == '[') {
		const char *rb = strchr(v, ']');
		if (!rb || rb[1] != ':')
			return -1;
		hs = v + 1;
		he = rb;
		colon = rb + 1;
	} else {
		colon = strrchr(v, ':');
		if (colon && memchr(v, ':', (size_t)(colon - v)))
			return -1; /* an IPv6 literal must be in brackets */
		he = colon ? colon : v + strlen(v); /* no port: the protocol's */
	}
	size_t hl = (size_t)(he - hs);
	if (hl == 0 || hl >= sizeof(host))
		return -1;
	memcpy(host, hs, hl);
	host[hl] = 0;
	if (v[0] == '[') {
		struct in6_addr a6;
		if (inet_pton(AF_INET6, host, &a6) != 1)
			return -1;
	} else {
		for (size_t i = 0; i < hl; i++)
			if (!isalnum((unsigned char)host[i]) && host[i] != '.' && host[i] != '-')
				return -1;
	}
	const char *p = colon ? colon + 1 : "7070";
	unsigned long port = 0;
	if (!*p || strlen(p) > 5)
		return -1;
	for (; *p; p++) {
		if (!isdigit((unsigned char)*p))
			return -1;
		port = port * 10 + (unsigned long)(*p - '0');
	}
	if (port < 1 || port > 65535)
		return -1;
	size_t vl = strlen(v);
	if (vl >= sizeof(c->server))
		return -1;
	memcpy(c->server, v, vl + 1);
	memcpy(c->server_host, host, hl + 1);
	c->server_port = (uint16_t)port;
	return 0;
}

/* The value of key k; msg receives the reason on failure. A secret is never copied
 * into msg. */
static int set_key(client_conf *c, int k, const char *v, char *msg, size_t cap)
{
	size_t n = strlen(v);

	switch (k) {
	case K_SERVER:
		if (parse_server(v, c) < 0) {
			snprintf(msg, cap, "server '%.64s': want host[:port] or [IPv6]:port, "
			         "with a port of 1..65535", v);
			return -1;
		}
		return 0;
	case K_NAME:
		if (n < 1 || n > 64 || strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVW"
		                          "XYZ0123456789-_.") != n) {
			snprintf(msg, cap, "name must be 1..64 letters, digits, '-', '_' or '.'");
			return -1;
		}
		memcpy(c->name, v, n + 1);
		return 0;
	case K_SECRET:
		if (n < 32 || n > 128 || n % 2 || strspn(v, "0123456789abcdefABCDEF") != n) {
			snprintf(msg, cap, "secret must be 32..128 hex digits (an even count); "
			         "make one with: head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n'");
			return -1;
		}
		/* The daemon refuses such a key anyway (proto/auth.c); say so here. */
		size_t same = 2;
		while (same < n && tolower((unsigned char)v[same]) == tolower((unsigned char)v[0]) &&
		       tolower((unsigned char)v[same + 1]) == tolower((unsigned char)v[1]))
			same += 2;
		if (same == n) {
			snprintf(msg, cap, "secret is one byte value repeated; use a random one");
			return -1;
		}
		memcpy(c->secret, v, n + 1);
		return 0;
	case K_API:
		if (v[0] != '/' || n > API_PATH_MAX) {
			snprintf(msg, cap, "api_socket must be an absolute path of at most %d bytes",
			         API_PATH_MAX);
			return -1;
		}
		memcpy(c->api_socket, v, n + 1);
		return 0;
	}
	return -1;
}

/* One key = value of the file at line lineno. 0, or -1 with msg set. */
static int take_key(client_conf *c, const char *key, const char *value, unsigned lineno,
                    unsigned seen[K_COUNT], char *msg, size_t mcap)
{
	int k = 0;
	while (k < K_COUNT && strcmp(key, key_name[k]))
		k++;
	if (k == K_COUNT) {
		snprintf(msg, mcap, "unknown key '%.64s' (the keys are server, name, secret, "
		         "api_socket)", key);
		return -1;
	}
	if (seen[k]) {
		snprintf(msg, mcap, "%s given twice (first on line %u)", key_name[k], seen[k]);
		return -1;
	}
	seen[k] = lineno;
	if (!value[0]) {
		snprintf(msg, mcap, "%s has no value", key_name[k]);
		return -1;
	}
	return set_key(c, k, value, msg, mcap);
}

int client_conf_parse(const char *text, size_t len, const char *name_for_errors,
                      client_conf *c, bks_err *e)
{
	unsigned seen[K_COUNT] = {0};
	ini *lx = malloc(sizeof(*lx));
	char msg[256];
	int r;

	if (!lx)
		return ini_fail(e, name_for_errors, 0, -ENOMEM, "out of memory");
	ini_init(lx, text, len, name_for_errors, e);
	while ((r = ini_next(lx)) > 0) {
		if (r == INI_SECTION && strcmp(lx->name, "client"))
			snprintf(msg, sizeof(msg), "unknown section [%.64s] (the only one is [client])",
			         lx->name);
		else if (r == INI_SECTION || take_key(c, lx->key, lx->value, lx->line, seen, msg,
		                                      sizeof(msg)) == 0)
			continue;
		r = ini_fail(e, name_for_errors, lx->line, -EINVAL, "%s", msg);
		break;
	}
	ini_wipe(lx);
	free(lx);
	return r < 0 ? r : 0;
}

static void apply_env_api(client_conf *c)
{
	const char *api = getenv(CLIENT_API_ENV);
	if (api && api[0])
		snprintf(c->api_socket, sizeof(c->api_socket), "%s", api);
}

int client_conf_load(const char *path_or_null, client_conf *out, bks_err *e)
{
	const char *path = path_or_null, *env = getenv(CLIENT_CONF_ENV);
	int must_exist = 1, r;
	char *buf;
	size_t len;
	mode_t mode;

	client_conf_defaults(out);
	if (!path || !path[0])
		path = env && env[0] ? env : NULL;
	if (!path) {
		path = CLIENT_CONF_DEFAULT;
		must_exist = 0;
	}
	r = ini_read_file(path, CLIENT_CONF_MAX_FILE, &buf, &len, &mode, e);
	if (r == -ENOENT && !must_exist) {
		bks_err_clear(e);
		apply_env_api(out);
		return 0;
	}
	if (r < 0)
		return r;
	r = client_conf_parse(buf, len, path, out, e);
	if (r < 0)
		goto free_buf;
	snprintf(out->source, sizeof(out->source), "%s", path);
	if (out->secret[0] && (mode & (S_IRGRP | S_IROTH)))
		snprintf(out->warning, sizeof(out->warning), "%s holds a secret and is readable "
		         "by %s (mode %04o): chmod 600 %s", path,
		         (mode & S_IRGRP) && (mode & S_IROTH) ? "group and others"
		         : mode & S_IRGRP ? "its group" : "others",
		         (unsigned)(mode & 07777), path);
	apply_env_api(out);
free_buf:
	if (r < 0)
		explicit_bzero(out->secret, sizeof(out->secret));
	explicit_bzero(buf, len);
	free(buf);
	return r;
}

/* ---- the control API ---------------------------------------------------------- */

void client_clean_str(char *out, size_t cap, const char *s)
{
	arr_json_clean_str(out, cap, s);
}

int client_api_target(const char *api_opt, const char *conf_path, http_target *t,
                      char *warn, size_t cap, bks_err *e)
{
	client_conf *cf = malloc(sizeof(*cf));
	int r;

	if (cap)
		warn[0] = 0;
	if (!cf)
		return bks_fail(e, -ENOMEM, "out of memory");
	r = client_conf_load(conf_path, cf, e);
	if (r == 0) {
		if (cap)
			snprintf(warn, cap, "%s", cf->warning);
		r = http_target_parse(api_opt ? api_opt : cf->api_socket, t, e);
	}
	client_conf_wipe(cf);
	free(cf);
	return r;
}

void client_reply_free(client_reply *rp)
{
	if (!rp)
		return;
	http_response_free(&rp->r);
	jsonp_free(rp->doc);
	memset(rp, 0, sizeof(*rp));
}

static int errno_of_status(int status)
{
	switch (status) {
	case 404: return -ENOENT;
	case 409: return -EBUSY;
	case 400: case 405: case 413: return -EINVAL;
	case 503: return -ESHUTDOWN;
	default: return -EIO;
	}
}

int client_api_call(const http_target *t, const char *method, const char *path,
                    const char *body, client_reply *rp, bks_err *e)
{
	bks_err pe = {0};
	char msg[300];
	int r, pr;

	memset(rp, 0, sizeof(*rp));
	r = http_request(t, method, path, body ? "Content-Type: application/json\r\n" : NULL,
	                 body, body ? strlen(body) : 0, &rp->r, e);
	if (r < 0)
		return r;
	pr = jsonp_parse(rp->r.body, rp->r.body_len, NULL, &rp->doc, NULL, &pe);
	rp->root = pr == 0 ? jsonp_root(rp->doc) : NULL;
	if (rp->r.status < 200 || rp->r.status > 299) {
		const char *err = jsonp_get_str(rp->root, "error", NULL);
		int st = rp->r.status;
		if (err) {
			client_clean_str(msg, sizeof(msg), err);
			r = bks_fail(e, errno_of_status(st), "%s", msg);
		} else {
			client_clean_str(msg, 120, rp->r.body);
			r = bks_fail(e, errno_of_status(st), "bkstord answered %d %s%s%s", st,
			             rp->r.reason, msg[0] ? ": " : "", msg);
		}
		client_reply_free(rp);
		return r;
	}
	if (pr < 0 || jsonp_type(rp->root) != JSONP_OBJECT) {
		r = bks_fail(e, -EPROTO, "the answer of bkstord to %s %s is not a JSON object%s%s",
		             method, path, pr < 0 ? ": " : "", pr < 0 ? bks_errmsg(&pe, pr) : "");
		client_reply_free(rp);
		return r;
	}
	return 0;
}

void client_json_emit(json *j, const char *key, const jsonp_val *v)
{
	int64_t i;
	uint64_t u;
	double x;
	int b;

	switch (jsonp_type(v)) {
	case JSONP_BOOL:
		jsonp_bool(v, &b);
		json_bool(j, key, b);
		break;
	case JSONP_NUMBER:
		if (jsonp_int(v, &i) == 0)
			json_int(j, key, i);
		else if (jsonp_uint(v, &u) == 0)
			json_uint(j, key, u);
		else if (jsonp_double(v, &x) == 0)
			json_double(j, key, x);
		break;
	case JSONP_STRING:
		json_str(j, key, jsonp_str(v, NULL));
		break;
	case JSONP_ARRAY:
		json_arr_begin(j, key);
		for (size_t k = 0; k < jsonp_len(v); k++)
			client_json_emit(j, NULL, jsonp_at(v, k));
		json_arr_end(j);
		break;
	case JSONP_OBJECT:
		json_obj_begin(j, key);
		for (size_t k = 0; k < jsonp_len(v); k++) {
			const jsonp_val *m = jsonp_at(v, k);
			client_json_emit(j, jsonp_key(m, NULL), m);
		}
		json_obj_end(j);
		break;
	default:
		json_null(j, key);
		break;
	}
}
