/* daemon/repl_ops.c: running replication: the schedule window, the lag alert, the
 * send rate, and the settings an administrator changes at run time (`bkstorctl repl
 * set`). See repl_int.h, docs/config.md "[repl]" and docs/api.md "Replication".
 *
 * Window: the sender asks repl_gate() before it connects, before each entry and
 * before each chunk it sends (the answer is cached for 100 ms). Outside the
 * window it ends the cycle there and closes the connection, mid-file if need be:
 * the chunks that crossed are in the twin's store, so when the window opens the file
 * is offered again and only their fingerprints cross (the same path as a cut
 * connection, docs/architecture.md "Replication"). Waiting for the end of a file
 * instead would let one large file run hours past the window.
 *
 * Bandwidth: the sender's pace (repl_send.c) reads r->bwlimit before each chunk, so
 * a new limit (SIGHUP, or repl_api_set) holds from the next chunk on the connection
 * that is running; no reconnect.
 *
 * Lag alert: on the source, one event when the lag (seconds since the first commit
 * not on the twin, or bytes of files not on it) passes [repl] lag_alert or
 * lag_alert_bytes, and one when it is back under both.
 */
#include <config.h>

#include "daemon/repl_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/cfg_rewrite.h"
#include "daemon/log.h"

#define GATE_EVERY_NS 100000000ull

void repl_ops_config(repl *r, const bks_cfg *c)
{
	cfg_window w;
	char why[160];
	/* The text passed cfg_window_parse when the file was read: this cannot fail. */
	if (cfg_window_parse(c->repl_window ? c->repl_window : "", &w, why, sizeof(why)) < 0)
		memset(&w, 0, sizeof(w));
	pthread_mutex_lock(&r->mu);
	r->window = w;
	r->lag_alert_s = c->repl_lag_alert_s;
	r->lag_alert_bytes = c->repl_lag_alert_bytes;
	pthread_cond_broadcast(&r->scv); /* a sender waiting for the window looks again */
	pthread_mutex_unlock(&r->mu);
}

static void fmt_window(const cfg_window *w, char *out, size_t cap)
{
	size_t n = 0;
	out[0] = 0;
	for (int i = 0; i < w->n && n + 13 < cap; i++)
		n += (size_t)snprintf(out + n, cap - n, "%s%02d:%02d-%02d:%02d", i ? " " : "",
		                      w->start[i] / 60, w->start[i] % 60,
		                      w->end[i] ? w->end[i] / 60 : 24, w->end[i] % 60);
}

int repl_gate(repl *r)
{
	time_t opens = 0;
	uint64_t now = bks_now_ns();
	/* Called before every chunk: look at the clock and the lag ten times a second. */
	if (now - r->gate_ns < GATE_EVERY_NS)
		return r->gated ? REPL_GATED : 0;
	r->gate_ns = now;
	repl_lag_check(r);
	pthread_mutex_lock(&r->mu);
	int open = cfg_window_open(&r->window, time(NULL), &opens);
	if (!open) {
		struct tm tm;
		char hm[8] = "?";
		if (localtime_r(&opens, &tm))
			strftime(hm, sizeof(hm), "%H:%M", &tm);
		snprintf(r->state, sizeof(r->state), "waiting for window (opens %s)", hm);
		if (!r->gated)
			LOG_I("repl: outside the schedule window: sending stops until %s", hm);
	}
	r->gated = !open;
	pthread_mutex_unlock(&r->mu);
	return open ? 0 : REPL_GATED;
}

void repl_lag_check(repl *r)
{
	char b[32], t[32], why[120];
	pthread_mutex_lock(&r->mu);
	uint64_t now = bks_now_ns();
	uint64_t secs = r->dirty_since_ns && now > r->dirty_since_ns
	                    ? (now - r->dirty_since_ns) / 1000000000ull : 0;
	/* Only a paired source lags (a twin commits too: that is not lag). */
	int source = r->pin_fp[0] && (r->ap->cfg.repl_peer_set || r->pin_addr[0]);
	int over_s = source && r->lag_alert_s && secs >= r->lag_alert_s;
	int over_b = source && r->lag_alert_bytes && r->lag_bytes >= r->lag_alert_bytes;
	int over = over_s || over_b, was = r->lag_alerting;
	uint64_t files = r->lag_files, bytes = r->lag_bytes;
	r->lag_alerting = over;
	if (over_s)
		snprintf(why, sizeof(why), "lag_alert %us", r->lag_alert_s);
	else
		snprintf(why, sizeof(why), "lag_alert_bytes %s",
		         bks_fmt_bytes(r->lag_alert_bytes, t, sizeof(t)));
	pthread_mutex_unlock(&r->mu);
	if (over && !was)
		appl_event_add(r->ap, CFG_LOG_WARN, "repl: lag passed the alert threshold (%s): "
		               "%llu s, %llu files, %s not on the twin yet", why,
		               (unsigned long long)secs, (unsigned long long)files,
		               bks_fmt_bytes(bytes, b, sizeof(b)));
	else if (!over && was)
		appl_event_add(r->ap, CFG_LOG_INFO, "repl: lag back under the alert threshold: "
		               "%llu s, %llu files, %s not on the twin yet", (unsigned long long)secs,
		               (unsigned long long)files, bks_fmt_bytes(bytes, b, sizeof(b)));
}

void repl_rate_add(repl *r, uint64_t bytes)
{
	uint64_t s = bks_now_ns() / 1000000000ull;
	size_t i = s % REPL_RATE_SLOTS;
	if (r->rate_sec[i] != s) {
		r->rate_sec[i] = s;
		r->rate_bytes[i] = 0;
	}
	r->rate_bytes[i] += bytes;
}

/* Wire bytes per second over the last REPL_RATE_SPAN whole seconds, or since the
 * first of them that carried bytes (a transfer that began 2 s ago is not averaged
 * with 3 idle seconds). */
static double rate_bps(const repl *r)
{
	uint64_t s = bks_now_ns() / 1000000000ull, sum = 0, first = s;
	for (size_t i = 0; i < REPL_RATE_SLOTS; i++)
		if (r->rate_sec[i] < s && r->rate_sec[i] + REPL_RATE_SPAN >= s &&
		    r->rate_bytes[i]) {
			sum += r->rate_bytes[i];
			first = BKS_MIN(first, r->rate_sec[i]);
		}
	return sum ? (double)sum / (double)(s - first) : 0.0;
}

void repl_ops_status_json(repl *r, json *j)
{
	char w[CFG_MAX_WINDOWS * 13 + 1], hm[8] = "";
	time_t opens = 0;
	int open = cfg_window_open(&r->window, time(NULL), &opens);
	struct tm tm;
	if (!open && localtime_r(&opens, &tm))
		strftime(hm, sizeof(hm), "%H:%M", &tm);
	fmt_window(&r->window, w, sizeof(w));
	const cfg_addr *pa = &r->ap->cfg.repl_peer;
	char addr[sizeof(r->pin_addr) + 16];
	if (r->ap->cfg.repl_peer_set)
		snprintf(addr, sizeof(addr), pa->family == CFG_AF_INET6 ? "[%s]:%u" : "%s:%u",
		         pa->host, pa->port);
	else
		snprintf(addr, sizeof(addr), "%s", r->pin_addr);
	json_str(j, "peer_address", addr[0] ? addr : NULL);
	json_str(j, "window", w);
	json_bool(j, "window_open", open);
	json_str(j, "window_opens", open ? NULL : hm);
	json_uint(j, "lag_alert_s", r->lag_alert_s);
	json_uint(j, "lag_alert_bytes", r->lag_alert_bytes);
	json_bool(j, "lag_alert", r->lag_alerting);
	double rate = rate_bps(r);
	json_double(j, "rate_bps", rate);
	/* What is left: lag.bytes drops a whole file at a time, so while a cycle sends,
	 * the wire bytes since it began count too (a large file half sent). Only the
	 * chunks the twin lacks cross, compressed: an upper bound at the current rate. */
	uint64_t wire = r->tx_wire - r->cycle_wire0, left = r->lag_bytes;
	if (r->send_fd >= 0 && r->cycle_bytes) {
		uint64_t done = r->cycle_bytes - BKS_MIN(r->lag_bytes, r->cycle_bytes);
		left = r->cycle_bytes - BKS_MIN(BKS_MAX(done, wire), r->cycle_bytes);
	}
	if (rate > 0 && left)
		json_double(j, "eta_s", (double)left / rate);
	else
		json_null(j, "eta_s");
	json_uint(j, "cycle_bytes", r->cycle_bytes);
	json_uint(j, "cycle_wire_bytes", wire);
}

/* The [repl] keys `bkstorctl repl set` may change: those SIGHUP applies and that
 * only the sender reads. (delete_delay is not among them: lowering it on the twin
 * is what the delay protects against, so it takes an edit of the file.) */
static const char *const settable[] = {"bwlimit", "window", "lag_alert", "lag_alert_bytes"};

int repl_api_set(repl *r, const char *key, const char *value, json *j, bks_err *e)
{
	bks_cfg c;
	char why[200];
	int reloadable = 0, ok = 0, rc;
	if (!r)
		return bks_fail(e, -ENOTSUP, "replication is not enabled ([repl] enable = yes)");
	for (size_t i = 0; i < BKS_ARRAY_SIZE(settable); i++)
		ok |= !strcmp(key, settable[i]);
	if (!ok)
		return bks_fail(e, -EINVAL, "'%.64s' cannot be set at run time (bwlimit, window, "
		                "lag_alert, lag_alert_bytes)", key);
	cfg_defaults(&c);
	rc = cfg_set_key(&c, "repl", key, value, &reloadable, why, sizeof(why));
	if (rc < 0) {
		cfg_free(&c);
		return bks_fail(e, rc == -ENOMEM ? rc : -EINVAL, "[repl] %s = '%.64s': %s", key,
		                value, why);
	}
	/* The file first: what the daemon runs with must survive a restart. */
	const char *vals[1] = {value};
	rc = cfg_rewrite(r->ap->cfg.source, "repl", key, vals, 1, e);
	if (rc < 0) {
		cfg_free(&c);
		return rc;
	}
	pthread_mutex_lock(&r->mu);
	if (!strcmp(key, "bwlimit"))
		r->bwlimit = c.repl_bwlimit;
	else if (!strcmp(key, "lag_alert"))
		r->lag_alert_s = c.repl_lag_alert_s;
	else if (!strcmp(key, "lag_alert_bytes"))
		r->lag_alert_bytes = c.repl_lag_alert_bytes;
	else
		cfg_window_parse(c.repl_window, &r->window, why, sizeof(why));
	pthread_cond_broadcast(&r->scv);
	json_str(j, "key", key);
	json_str(j, "value", value);
	json_uint(j, "bwlimit_bps", r->bwlimit);
	pthread_mutex_unlock(&r->mu);
	cfg_free(&c);
	appl_event_add(r->ap, CFG_LOG_INFO, "repl: %s set to '%.64s' by the administrator "
	               "(written to %s)", key, value, r->ap->cfg.source);
	repl_lag_check(r);
	return 0;
}
