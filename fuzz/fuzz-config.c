/* fuzz-config: libFuzzer target for the daemon's config parser (daemon/config.c).
 * Properties, beyond "no crash, no leak, no hang":
 *  - a refused input leaves the struct zeroed and a message that starts with the
 *    file name;
 *  - an accepted input satisfies every bound config.h documents (strings set and
 *    printable, lists within limits, sizes in range, chunk order, TLS pairs, ...);
 *  - round trip: the accepted configuration, written back out by a writer here (every
 *    key, strings quoted and escaped, numbers in plain units), parses again to an
 *    equal configuration (cfg_reload_diff finds no change). */
#include <config.h>

#include "fuzz/fuzz.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/bks.h"
#include "daemon/config.h"

static int pow2(uint64_t v) { return v && !(v & (v - 1)); }

static void check_bounds(const bks_cfg *c)
{
	const char *strs[] = {c->array_name, c->api_socket, c->tls_cert, c->tls_key,
	                      c->admin_password, c->pidfile, c->source};
	for (size_t i = 0; i < BKS_ARRAY_SIZE(strs); i++)
		NEED(strs[i] && fuzz_printable(strs[i]));
	NEED(c->array_name[0] && strlen(c->array_name) < 64);
	NEED(c->ndisks >= 0 && c->ndisks <= CFG_MAX_DISKS && !c->disks == !c->ndisks);
	NEED(c->nspares >= 0 && c->nspares <= CFG_MAX_SPARES && !c->spares == !c->nspares);
	NEED(c->ndisks > 0 || c->demo);
	for (int i = 0; i < c->ndisks; i++)
		NEED(c->disks[i][0] == '/' && fuzz_printable(c->disks[i]));
	for (int i = 0; i < c->nspares; i++)
		NEED(c->spares[i][0] == '/' && fuzz_printable(c->spares[i]));
	NEED(pow2(c->strip_size) && c->strip_size >= 65536 && c->strip_size <= 1u << 20);
	NEED(c->io_err_limit >= 1 && c->cksum_err_limit >= 1 && c->err_window_s >= 1);
	NEED(!c->bg_max_rate || (c->bg_min_rate && c->bg_min_rate <= c->bg_max_rate));
	NEED(c->chunk_min >= 64 && c->chunk_min < c->chunk_avg && c->chunk_avg < c->chunk_max &&
	     c->chunk_max <= 1u << 20 && pow2(c->chunk_avg));
	NEED(c->zstd_level >= 0 && c->zstd_level <= 19);
	NEED(c->gc_min_live >= 0 && c->gc_min_live <= 1);
	NEED(c->commit_interval_s >= 1 && c->commit_interval_s <= 3600);
	NEED(c->nnative_listen >= 0 && c->nnative_listen <= CFG_MAX_LISTEN &&
	     !c->native_listen == !c->nnative_listen);
	for (int i = 0; i < c->nnative_listen; i++)
		NEED(c->native_listen[i].port > 0 && c->native_listen[i].host[0]);
	NEED(c->max_frame >= 65536 && c->max_frame <= 64u << 20);
	NEED(c->nclients >= 0 && c->nclients <= CFG_MAX_CLIENTS && !c->clients == !c->nclients);
	for (int i = 0; i < c->nclients; i++)
		NEED(strlen(c->clients[i].secret) >= 32 && strlen(c->clients[i].name) <= 64);
	NEED(c->api_socket[0] == '/' && strlen(c->api_socket) < 108);
	NEED(!c->web_enabled == !c->web_listen.port);
	NEED(!c->tls_cert[0] == !c->tls_key[0]);
	NEED(c->napi_tokens >= 0 && c->napi_tokens <= CFG_MAX_TOKENS &&
	     !c->api_tokens == !c->napi_tokens);
	NEED(c->log_level >= CFG_LOG_ERROR && c->log_level <= CFG_LOG_DEBUG);
	NEED(c->threads <= 1024 && (c->demo == 0 || c->demo == 1));
}

/* A growing text buffer; the fuzzer's writer of a configuration. */
typedef struct wbuf {
	char *p;
	size_t len, cap;
} wbuf;

static void put(wbuf *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(wbuf *w, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	NEED(n >= 0);
	if (w->len + (size_t)n + 1 > w->cap) {
		w->cap = (w->len + (size_t)n + 1) * 2;
		w->p = realloc(w->p, w->cap);
		NEED(w->p);
	}
	va_start(ap, fmt);
	vsnprintf(w->p + w->len, w->cap - w->len, fmt, ap);
	va_end(ap);
	w->len += (size_t)n;
}

static void put_q(wbuf *w, const char *key, const char *s)
{
	put(w, "%s = \"", key);
	for (; *s; s++)
		put(w, *s == '"' || *s == '\\' ? "\\%c" : "%c", *s);
	put(w, "\"\n");
}

static void put_addr(wbuf *w, const char *key, const cfg_addr *a)
{
	if (a->family == CFG_AF_INET6)
		put(w, "%s = [%s]:%u\n", key, a->host, a->port);
	else
		put(w, "%s = %s:%u\n", key, a->host, a->port);
}

static void put_strs(wbuf *w, const char *key, char *const *v, int n)
{
	if (!n)
		put(w, "%s =\n", key); /* the first mention empties the default list */
	for (int i = 0; i < n; i++)
		put_q(w, key, v[i]);
}

static char *write_cfg(const bks_cfg *c)
{
	wbuf w = {0};
	unsigned long long u;
	put(&w, "[array]\n");
	put_q(&w, "name", c->array_name);
	put_strs(&w, "disks", c->disks, c->ndisks);
	put_strs(&w, "spares", c->spares, c->nspares);
	put(&w, "strip_size = %u\nio_timeout_ms = %u\nio_err_limit = %u\ncksum_err_limit = %u\n",
	    c->strip_size, c->io_timeout_ms, c->io_err_limit, c->cksum_err_limit);
	put(&w, "err_window = %us\nfg_idle_ms = %u\n", c->err_window_s, c->fg_idle_ms);
	u = c->bg_min_rate;
	put(&w, "bg_min_rate = %llu/s\n", u);
	u = c->bg_max_rate;
	put(&w, "bg_max_rate = %llu\n", u);
	put(&w, "[store]\nchunk_min = %u\nchunk_avg = %u\nchunk_max = %u\nzstd_level = %d\n",
	    c->chunk_min, c->chunk_avg, c->chunk_max, c->zstd_level);
	u = c->meta_cache;
	put(&w, "meta_cache = %llu\ncommit_interval = %u\n", u, c->commit_interval_s);
	u = c->commit_bytes;
	put(&w, "commit_bytes = %llu\ngc_min_live = %.6f\n[native]\n", u, c->gc_min_live);
	if (!c->nnative_listen)
		put(&w, "listen =\n");
	for (int i = 0; i < c->nnative_listen; i++)
		put_addr(&w, "listen", &c->native_listen[i]);
	u = c->rate_limit;
	put(&w, "max_connections = %u\nidle_timeout = %u\nmax_frame = %u\nrate_limit = %llu\n",
	    c->max_connections, c->idle_timeout_s, c->max_frame, u);
	put(&w, "auth_fail_limit = %u\nauth_timeout = %u\nframe_timeout = %u\n",
	    c->auth_fail_limit, c->auth_timeout_s, c->frame_timeout_s);
	put(&w, "send_timeout = %u\nmax_unauth = %u\nmax_unauth_per_ip = %u\n[clients]\n",
	    c->send_timeout_s, c->max_unauth, c->max_unauth_per_ip);
	for (int i = 0; i < c->nclients; i++)
		put_q(&w, c->clients[i].name, c->clients[i].secret);
	put(&w, "[api]\n");
	put_q(&w, "socket", c->api_socket);
	put(&w, "[web]\n");
	if (c->web_enabled)
		put_addr(&w, "listen", &c->web_listen);
	else
		put(&w, "listen = \"\"\n");
	put_q(&w, "tls_cert", c->tls_cert);
	put_q(&w, "tls_key", c->tls_key);
	put_q(&w, "admin_password", c->admin_password);
	put(&w, "session_timeout = %u\n", c->session_timeout_s);
	put_strs(&w, "api_tokens", c->api_tokens, c->napi_tokens);
	put(&w, "[log]\nlevel = %s\n[daemon]\nthreads = %u\ndemo = %s\n",
	    cfg_log_level_name(c->log_level), c->threads, c->demo ? "on" : "off");
	put_q(&w, "pidfile", c->pidfile);
	return w.p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	bks_cfg c, c2;
	bks_err e = {0};
	char what[512];
	static const bks_cfg zero;

	int r = cfg_parse((const char *)data, size, "fuzz.conf", &c, &e);
	if (r < 0) {
		NEED(r == -EINVAL || r == -ERANGE || r == -EFBIG || r == -ENOMEM);
		NEED(!memcmp(&c, &zero, sizeof(c)));
		NEED(!strncmp(e.msg, "fuzz.conf", 9));
		return 0;
	}
	check_bounds(&c);

	/* Parsing is a function of the text. */
	NEED(cfg_parse((const char *)data, size, "fuzz.conf", &c2, &e) == 0);
	NEED(cfg_reload_diff(&c, &c2, what, sizeof(what)) == 0 && !what[0]);
	cfg_free(&c2);

	/* Round trip through the writer. */
	char *text = write_cfg(&c);
	r = cfg_parse(text, strlen(text), "fuzz-rt.conf", &c2, &e);
	if (r != 0)
		fprintf(stderr, "round trip refused: %s\n---\n%s---\n", e.msg, text);
	NEED(r == 0);
	NEED(cfg_reload_diff(&c, &c2, what, sizeof(what)) == 0 && !what[0]);
	NEED(c.gc_min_live == c2.gc_min_live && c.strip_size == c2.strip_size &&
	     c.ndisks == c2.ndisks && c.nclients == c2.nclients && c.demo == c2.demo);
	free(text);
	cfg_free(&c2);
	cfg_free(&c);
	return 0;
}
