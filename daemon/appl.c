/* daemon/appl.c: see appl.h. */
#include <config.h>

#include "daemon/appl.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/log.h"

#define BG_TICK_MS 100
#define GC_STEP_BUDGET_NS (20ull * 1000000ull)     /* per tick, under the lock */
#define VERIFY_STEP_BUDGET_NS (20ull * 1000000ull)

/* --- the appliance lock --- */

/* Only the holder writes the counters, so a relaxed load and store is enough; the
 * status document reads them without the lock (a figure may lag one hold). */
static void stat_add(uint64_t *v, uint64_t d)
{
	__atomic_store_n(v, __atomic_load_n(v, __ATOMIC_RELAXED) + d, __ATOMIC_RELAXED);
}

static void took(appl *ap, uint64_t t_ask, uint64_t t_got)
{
	ap->mu_since_ns = t_got;
	stat_add(&ap->mu_stats.acquisitions, 1);
	if (t_got != t_ask) {
		stat_add(&ap->mu_stats.contended, 1);
		stat_add(&ap->mu_stats.wait_ns, t_got - t_ask);
	}
}

void appl_lock(appl *ap)
{
	uint64_t t0 = bks_now_ns();
	if (pthread_mutex_trylock(&ap->mu) == 0) {
		took(ap, t0, t0);
		return;
	}
	pthread_mutex_lock(&ap->mu);
	took(ap, t0, bks_now_ns());
}

int appl_trylock(appl *ap)
{
	if (pthread_mutex_trylock(&ap->mu) != 0)
		return EBUSY;
	uint64_t t = bks_now_ns();
	took(ap, t, t);
	return 0;
}

void appl_unlock(appl *ap)
{
	uint64_t held = bks_now_ns() - ap->mu_since_ns;
	stat_add(&ap->mu_stats.held_ns, held);
	if (held > ap->mu_stats.max_held_ns)
		__atomic_store_n(&ap->mu_stats.max_held_ns, held, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&ap->mu);
}

void appl_lock_stats_get(appl *ap, appl_lock_stats *out)
{
	out->acquisitions = __atomic_load_n(&ap->mu_stats.acquisitions, __ATOMIC_RELAXED);
	out->contended = __atomic_load_n(&ap->mu_stats.contended, __ATOMIC_RELAXED);
	out->held_ns = __atomic_load_n(&ap->mu_stats.held_ns, __ATOMIC_RELAXED);
	out->wait_ns = __atomic_load_n(&ap->mu_stats.wait_ns, __ATOMIC_RELAXED);
	out->max_held_ns = __atomic_load_n(&ap->mu_stats.max_held_ns, __ATOMIC_RELAXED);
}

/* --- events --- */

void appl_event_add(appl *ap, int level, const char *fmt, ...)
{
	char msg[240];
	va_list va;
	va_start(va, fmt);
	vsnprintf(msg, sizeof(msg), fmt, va);
	va_end(va);
	blog(level, "%s", msg);
	pthread_mutex_lock(&ap->evmu);
	appl_event *ev = &ap->ev[ap->evseq % APPL_EVENTS];
	ev->seq = ap->evseq++;
	ev->time_ns = bks_wall_ns();
	ev->level = level;
	memcpy(ev->msg, msg, sizeof(msg));
	pthread_mutex_unlock(&ap->evmu);
}

int appl_events(appl *ap, uint64_t since, appl_event *out, int max, uint64_t *next)
{
	int n = 0;
	pthread_mutex_lock(&ap->evmu);
	uint64_t first = ap->evseq > APPL_EVENTS ? ap->evseq - APPL_EVENTS : 0;
	if (since < first)
		since = first;
	if (ap->evseq - since > (uint64_t)max)
		since = ap->evseq - (uint64_t)max;
	for (uint64_t s = since; s < ap->evseq; s++)
		out[n++] = ap->ev[s % APPL_EVENTS];
	*next = ap->evseq;
	pthread_mutex_unlock(&ap->evmu);
	return n;
}

static void on_array_event(void *ctx, int level, const char *msg)
{
	int lv = level == ARR_EV_ERR ? CFG_LOG_ERROR : level == ARR_EV_WARN ? CFG_LOG_WARN
	                                                                   : CFG_LOG_INFO;
	appl_event_add(ctx, lv, "%s", msg);
}

/* A row the array's background work left damaged (a scrub's unrecoverable row, a
 * rebuild's undecided one): arr_set_bad_row_fn, from the background thread inside
 * arr_bg_step, under the array's lock, so nothing but a note here. */
static void on_bad_row(void *ctx, uint64_t row)
{
	appl *ap = ctx;
	if (__atomic_fetch_add(&ap->bad_rows, 1, __ATOMIC_ACQ_REL) == 0)
		__atomic_store_n(&ap->bad_row_first, row, __ATOMIC_RELEASE);
}

/* The store learns which of its chunks such a row damaged the way it learns it of
 * any: a verify reads every object's chunks through the array's reconstruction
 * (which still serves a range the checksums accept, writing nothing) and names
 * those that cannot be read right; the verify hook queues them for repair from the
 * replication peer (daemon/repl_repair.c), and the verify's report lists them. So
 * a verify is started here, or, while one runs (it may have passed the row's
 * objects already), as soon as it ends. Background thread, without mu. */
static void bad_rows_verify(appl *ap)
{
	uint64_t n = __atomic_exchange_n(&ap->bad_rows, 0, __ATOMIC_ACQ_REL);
	if (!n)
		return;
	uint64_t first = __atomic_load_n(&ap->bad_row_first, __ATOMIC_ACQUIRE);
	bks_err e = {0};
	if (appl_verify_start(ap, &e) < 0) {
		__atomic_fetch_add(&ap->bad_rows, n, __ATOMIC_ACQ_REL); /* next time round */
		return;
	}
	appl_event_add(ap, CFG_LOG_ERROR, "array: %llu row%s left damaged (row %llu%s): verify "
	               "started to find the chunks that cannot be read right any more (on a "
	               "replication pair they are queued for repair from the peer)",
	               (unsigned long long)n, n == 1 ? "" : "s", (unsigned long long)first,
	               n == 1 ? "" : " first");
}

/* --- throughput --- */

void appl_count_ingest(appl *ap, uint64_t bytes)
{
	__atomic_fetch_add(&ap->ingest_bytes, bytes, __ATOMIC_RELAXED);
}

void appl_count_restore(appl *ap, uint64_t bytes)
{
	__atomic_fetch_add(&ap->restore_bytes, bytes, __ATOMIC_RELAXED);
}

/* Called by the background thread: one sample per elapsed second (under evmu). */
static void history_tick(appl *ap)
{
	uint64_t sec = bks_now_ns() / 1000000000ull;
	pthread_mutex_lock(&ap->evmu);
	if (!ap->hist_sec)
		ap->hist_sec = sec;
	while (ap->hist_sec < sec) {
		uint64_t in = __atomic_load_n(&ap->ingest_bytes, __ATOMIC_RELAXED);
		uint64_t out = __atomic_load_n(&ap->restore_bytes, __ATOMIC_RELAXED);
		ap->hist_sec++;
		/* The whole delta lands in the first missed second; later ones get 0. */
		ap->hist_in[ap->hist_sec % APPL_HISTORY] = in - ap->hist_last_in;
		ap->hist_out[ap->hist_sec % APPL_HISTORY] = out - ap->hist_last_out;
		ap->hist_last_in = in;
		ap->hist_last_out = out;
	}
	pthread_mutex_unlock(&ap->evmu);
}

int appl_history(appl *ap, uint64_t *in, uint64_t *out, int n, uint64_t *sec)
{
	if (n > APPL_HISTORY)
		n = APPL_HISTORY;
	pthread_mutex_lock(&ap->evmu);
	for (int i = 0; i < n; i++) {
		uint64_t s = ap->hist_sec - (uint64_t)(n - 1 - i);
		in[i] = ap->hist_in[s % APPL_HISTORY];
		out[i] = ap->hist_out[s % APPL_HISTORY];
	}
	if (sec)
		*sec = ap->hist_sec;
	pthread_mutex_unlock(&ap->evmu);
	return n;
}

uint64_t appl_history_sec(appl *ap)
{
	pthread_mutex_lock(&ap->evmu);
	uint64_t s = ap->hist_sec;
	pthread_mutex_unlock(&ap->evmu);
	return s;
}

void appl_rates(appl *ap, int secs, double *in_bps, double *out_bps)
{
	uint64_t in[APPL_HISTORY], out[APPL_HISTORY], si = 0, so = 0;
	int n = appl_history(ap, in, out, secs, NULL);
	for (int i = 0; i < n; i++) {
		si += in[i];
		so += out[i];
	}
	*in_bps = n ? (double)si / n : 0;
	*out_bps = n ? (double)so / n : 0;
}

/* --- status snapshot --- */

/* Under appl.mu. */
static void snap_take(appl *ap)
{
	appl_snap n;
	store_get_stats(ap->s, &n.st);
	store_gc_get_stats(ap->s, &n.gs);
	n.vf = ap->vf;
	n.gc_state = ap->gc_state;
	store_space sp;
	store_get_space(ap->s, &sp);
	n.row_bytes = sp.row_bytes;
	n.commits = ap->commits;
	n.last_commit_ns = ap->last_commit_ns;
	n.gc_started_ns = ap->gc_started_ns;
	n.gc_finished_ns = ap->gc_finished_ns;
	store_defer_get_stats(ap->s, &n.ds);
	n.defer_state = ap->defer_state;
	n.defer_rate_bps = ap->defer_rate_bps;
	n.defer_started_ns = ap->defer_started_ns;
	n.defer_finished_ns = ap->defer_finished_ns;
	n.defer_err = ap->defer_err;
	n.defer_errors = ap->defer_errors;
	n.defer_retry_ns = ap->defer_err ? ap->defer_retry_wall_ns : 0;
	n.taken_ns = bks_now_ns();
	pthread_mutex_lock(&ap->snapmu);
	ap->snap = n;
	pthread_mutex_unlock(&ap->snapmu);
}

void appl_snapshot(appl *ap, appl_snap *out)
{
	if (appl_trylock(ap) == 0) {
		snap_take(ap);
		appl_unlock(ap);
	}
	pthread_mutex_lock(&ap->snapmu);
	*out = ap->snap;
	pthread_mutex_unlock(&ap->snapmu);
}

/* --- jobs --- */

int appl_commit(appl *ap, bks_err *e)
{
	appl_lock(ap);
	int r = ns_commit(ap->n, e);
	if (r == 0) {
		ap->commits++;
		ap->last_commit_ns = bks_wall_ns();
	} else {
		ap->commit_errors++;
	}
	appl_unlock(ap);
	return r;
}

/* --- group commit --- */

/* A request waiting in appl_durable; on its stack, in ap->dwait while not done. */
typedef struct appl_dwait {
	struct appl_dwait *next;
	uint64_t seq;
	int done, err;
} appl_dwait;

void appl_durable_init(appl *ap)
{
	pthread_mutex_init(&ap->dmu, NULL);
	pthread_cond_init(&ap->dcv, NULL);
	ap->chg_seq = ap->synced_seq = 0;
	ap->dur_leading = 0;
	ap->dwait = NULL;
	ap->dur_waits = ap->dur_syncs = ap->dur_errors = 0;
}

void appl_durable_destroy(appl *ap)
{
	pthread_mutex_destroy(&ap->dmu);
	pthread_cond_destroy(&ap->dcv);
}

uint64_t appl_change_seq(appl *ap)
{
	return ++ap->chg_seq;
}

/* Run one sync for every change made so far (the leader, holding no lock). Returns
 * its result; *covered gets the newest change it covers. Crash story: the number is
 * read under appl.mu in the same hold that runs ns_sync, and every change is
 * numbered under appl.mu right after it was made, so each change numbered <= covered
 * was in memory before the sync encoded its record; a crash after ns_sync returned
 * finds them in the intent log (replayed at open), one before finds none of the
 * changes this sync covers answered. */
static int lead_sync(appl *ap, uint64_t *covered, bks_err *e)
{
	appl_lock(ap);
	*covered = ap->chg_seq;
	/* Any existing object will do: a sync writes everything changed since the
	 * previous record, whatever object it is asked for. */
	int r = ns_sync(ap->n, ns_root(ap->n), e);
	appl_unlock(ap);
	return r;
}

int appl_durable(appl *ap, uint64_t seq, bks_err *e)
{
	appl_dwait w = {.seq = seq};
	bks_err le = {0};

	if (seq == 0)
		return 0;
	pthread_mutex_lock(&ap->dmu);
	ap->dur_waits++;
	if (ap->synced_seq >= seq) {
		/* A later successful sync covered it already (ours may have failed: the
		 * change is in memory still, and that one wrote it). */
		pthread_mutex_unlock(&ap->dmu);
		return 0;
	}
	w.next = ap->dwait;
	ap->dwait = &w;
	while (!w.done) {
		if (ap->dur_leading) {
			pthread_cond_wait(&ap->dcv, &ap->dmu);
			continue;
		}
		ap->dur_leading = 1;
		pthread_mutex_unlock(&ap->dmu);
		uint64_t covered = 0;
		int r = lead_sync(ap, &covered, &le);
		pthread_mutex_lock(&ap->dmu);
		ap->dur_leading = 0;
		ap->dur_syncs++;
		if (r < 0)
			ap->dur_errors++;
		else if (covered > ap->synced_seq)
			ap->synced_seq = covered;
		/* Everyone this sync covered gets its result, the leader included (its own
		 * change was numbered before it led). */
		for (appl_dwait **pp = &ap->dwait; *pp;) {
			appl_dwait *x = *pp;
			if (x->seq <= covered) {
				x->done = 1;
				x->err = r < 0 ? r : 0;
				*pp = x->next;
			} else {
				pp = &x->next;
			}
		}
		pthread_cond_broadcast(&ap->dcv);
	}
	pthread_mutex_unlock(&ap->dmu);
	if (w.err < 0) {
		if (le.msg[0])
			return bks_fail(e, w.err, "%s", le.msg);
		return bks_fail(e, w.err, "making changes durable: %s", strerror(-w.err));
	}
	return 0;
}

void appl_durable_stats(appl *ap, uint64_t *waits, uint64_t *syncs, uint64_t *errors)
{
	pthread_mutex_lock(&ap->dmu);
	*waits = ap->dur_waits;
	*syncs = ap->dur_syncs;
	*errors = ap->dur_errors;
	pthread_mutex_unlock(&ap->dmu);
}

int appl_gc_start(appl *ap, double min_live, bks_err *e)
{
	int r = 0;
	appl_lock(ap);
	if (ap->gc_state == 1) {
		r = bks_fail(e, -EBUSY, "a garbage collection is already running");
	} else if (((r = ns_flush(ap->n)) < 0 && r != -ENOSPC) ||
	           ((r = store_gc_start(ap->s, min_live)) < 0 && r != -EALREADY)) {
		/* (A full store may have no room to rewrite a directory now: the
		 * collection does not need it, it marks the objects that exist, and
		 * it is what gives the room back.) */
		r = bks_fail(e, r, "cannot start garbage collection: %s", strerror(-r));
	} else {
		/* (-EALREADY: the store started one by itself; this one adopts it.) */
		r = 0;
		ap->gc_state = 1;
		ap->gc_min_live = min_live;
		ap->gc_started_ns = bks_wall_ns();
		ap->gc_finished_ns = 0;
	}
	appl_unlock(ap);
	if (r == 0) {
		appl_event_add(ap, CFG_LOG_INFO, "garbage collection started (compact below %.0f%% "
		               "live)", min_live * 100);
		appl_kick(ap);
	}
	return r;
}

static int count_obj(void *ctx, const store_obj_info *in)
{
	(void)in;
	(*(uint64_t *)ctx)++;
	return 0;
}

const char *appl_repair_from_name(int from)
{
	return from == APPL_REPAIR_FROM_TWIN ? "twin" : "source";
}

/* store_verify_report.on_bad (under mu): to the hook; an event for the first ones. */
static void verify_on_bad(void *ctx, const store_verify_bad *b)
{
	appl *ap = ctx;
	int from = ap->vhook.bad ? ap->vhook.bad(ap->vhook.ctx, b) : 0;
	if (from <= 0)
		return;
	ap->vf.queued_from = from;
	if (ap->vf.queued++ < STORE_VERIFY_BAD) {
		char hx[65];
		for (int i = 0; i < 32; i++)
			snprintf(hx + 2 * i, 3, "%02x", b->fp[i]);
		appl_event_add(ap, CFG_LOG_WARN, "verify: chunk %s (%u bytes, object %llu) is "
		               "damaged beyond what the array repairs: queued for repair from the "
		               "replication %s", hx, b->len, (unsigned long long)b->id,
		               appl_repair_from_name(from));
	}
}

int appl_verify_start(appl *ap, bks_err *e)
{
	int r = 0;
	appl_lock(ap);
	if (ap->vf.state == 1) {
		r = bks_fail(e, -EBUSY, "a verify is already running");
	} else {
		memset(&ap->vf, 0, sizeof(ap->vf));
		ap->vf.state = 1;
		ap->vf.next_id = 1;
		ap->vf.limit = store_id_limit(ap->s);
		store_list(ap->s, count_obj, &ap->vf.objects_total);
		ap->vf.started_ns = bks_wall_ns();
		ap->vf.rep.on_bad = verify_on_bad;
		ap->vf.rep.on_bad_ctx = ap;
		if (ap->vhook.begin)
			ap->vhook.begin(ap->vhook.ctx);
	}
	appl_unlock(ap);
	if (r == 0) {
		appl_event_add(ap, CFG_LOG_INFO, "verify started (%llu objects)",
		               (unsigned long long)ap->vf.objects_total);
		appl_kick(ap);
	}
	return r;
}

/* Bounded slices of GC and verify, under the lock. */
static void jobs_step(appl *ap)
{
	appl_lock(ap);
	uint64_t t0 = bks_now_ns();
	if (ap->gc_state == 1) {
		int r = 1;
		while (r == 1 && bks_now_ns() - t0 < GC_STEP_BUDGET_NS)
			r = store_gc_step(ap->s);
		if (r <= 0) {
			bks_err e = {0};
			int c = r < 0 ? r : ns_commit(ap->n, &e);
			store_gc_stats gs;
			store_gc_get_stats(ap->s, &gs);
			ap->gc_state = 2;
			ap->gc_finished_ns = bks_wall_ns();
			appl_unlock(ap);
			if (c < 0)
				appl_event_add(ap, CFG_LOG_ERROR, "garbage collection failed: %s",
				               r < 0 ? strerror(-r) : bks_errmsg(&e, c));
			else
				appl_event_add(ap, CFG_LOG_INFO, "garbage collection done: %llu rows "
				               "freed, %llu segments compacted, %llu bytes moved, "
				               "%llu metadata rows compacted (%llu blocks moved)",
				               (unsigned long long)gs.rows_freed,
				               (unsigned long long)gs.segments_compacted,
				               (unsigned long long)gs.bytes_moved,
				               (unsigned long long)gs.meta_rows_compacted,
				               (unsigned long long)gs.meta_blocks_moved);
			appl_lock(ap);
		}
	}
	t0 = bks_now_ns();
	while (ap->vf.state == 1 && bks_now_ns() - t0 < VERIFY_STEP_BUDGET_NS) {
		if (ap->vf.next_id >= ap->vf.limit) {
			ap->vf.state = 2;
			ap->vf.finished_ns = bks_wall_ns();
			store_verify_report rep = ap->vf.rep;
			uint64_t queued = ap->vf.queued;
			const char *from = appl_repair_from_name(ap->vf.queued_from);
			if (ap->vhook.end)
				ap->vhook.end(ap->vhook.ctx);
			appl_unlock(ap);
			appl_event_add(ap, rep.objects_damaged ? CFG_LOG_ERROR : CFG_LOG_INFO,
			               "verify done: %llu objects, %llu chunks checked, %llu bad, %llu "
			               "objects damaged, %llu strips repaired%s%s",
			               (unsigned long long)rep.objects,
			               (unsigned long long)rep.chunks_checked,
			               (unsigned long long)rep.chunks_bad,
			               (unsigned long long)rep.objects_damaged,
			               (unsigned long long)rep.repaired,
			               queued ? "; bad chunks queued for repair from the replication "
			                      : "", queued ? from : "");
			appl_lock(ap);
			break;
		}
		store_verify_one(ap->s, ap->vf.next_id++, &ap->vf.rep);
	}
	appl_unlock(ap);
}

const char *appl_defer_state_name(int st)
{
	static const char *const names[] = {"idle", "running", "done", "paused", "waiting"};
	return st >= 0 && st < (int)BKS_ARRAY_SIZE(names) ? names[st] : "idle";
}

/* Deferred compression (dedup/store_defer.c): chunks a busy stream stored raw are
 * compressed in the background, paced like the array's background work: while
 * clients read or write (bytes counted within fg_idle_ms) it waits — its only cost
 * is space, and the stream it would slow down is the one that deferred the work —
 * unless the free rows are below a quarter of the array, then it runs at
 * bg_min_rate; when the foreground is idle, at bg_max_rate (0: unlimited, in slices
 * of DEFER_STEP_BUDGET_NS under the lock, like the collector). The freed rows come
 * back with the next periodic commit. Returns 1 when it wants the next tick at once.
 * A cycle that found no room to move a segment waits for the next commit (the store
 * says so: wait_room; the state says "waiting"). After an error the pass starts over,
 * but not at the next tick: a persistent error (a row the pass cannot write, an index
 * it cannot read) restarted the cycle and added a WARN event every tick, 10 a
 * second. It waits DEFER_BACKOFF_MIN_NS, doubling while the error repeats up to
 * DEFER_BACKOFF_MAX_NS, and reports an error once, again only when another one
 * comes; a cycle that ends, or the pass finishing, clears it. */
#define DEFER_STEP_BUDGET_NS (20ull * 1000000ull)
#define DEFER_STEP_BYTES (4ull << 20)
#define DEFER_BACKOFF_MIN_NS (1000ull * 1000000ull)
#define DEFER_BACKOFF_MAX_NS (60000ull * 1000000ull)
/* Tests only: BKS_TEST_DEFER_ERROR=<errno> fails every step of the pass with that
 * error (tests/test-daemon-defer-error.sh: the back-off and its events), as a
 * persistent error would. Read once (the background thread alone calls this). */
static int defer_test_error(void)
{
	static int v = -1;
	if (v < 0) {
		const char *s = getenv("BKS_TEST_DEFER_ERROR");
		v = s ? atoi(s) : 0;
		v = v > 0 ? v : 0;
	}
	return v;
}
static int defer_job(appl *ap)
{
	uint64_t now = bks_now_ns();
	uint64_t io = __atomic_load_n(&ap->ingest_bytes, __ATOMIC_RELAXED) +
	              __atomic_load_n(&ap->restore_bytes, __ATOMIC_RELAXED);
	if (io != ap->defer_io_seen) {
		ap->defer_io_seen = io;
		ap->defer_fg_ns = now;
	}
	int fg = ap->defer_fg_ns && now - ap->defer_fg_ns < (uint64_t)ap->cfg.fg_idle_ms * 1000000ull;
	appl_lock(ap);
	if (!store_defer_pending(ap->s)) {
		appl_unlock(ap);
		return 0;
	}
	if (ap->defer_err && now < ap->defer_retry_ns) {
		appl_unlock(ap);
		return 0; /* backing off after an error (state: waiting) */
	}
	uint64_t rate = ap->cfg.bg_max_rate;
	if (fg) {
		store_space sp;
		store_get_space(ap->s, &sp);
		if (sp.rows_free * 4 >= sp.rows) {
			store_defer_stats dp;
			store_defer_get_stats(ap->s, &dp);
			if (ap->defer_state == APPL_DEFER_RUNNING || dp.bytes_left) {
				/* A job waiting for the clients has started (its wait counts). */
				if (ap->defer_state != APPL_DEFER_PAUSED) {
					ap->defer_started_ns = bks_wall_ns();
					ap->defer_finished_ns = 0;
				}
				ap->defer_state = dp.wait_room ? APPL_DEFER_WAITING
				                               : APPL_DEFER_PAUSED;
			}
			appl_unlock(ap);
			return 0;
		}
		rate = ap->cfg.bg_min_rate;
	}
	if (rate && ap->defer_tokens_ns > now) {
		appl_unlock(ap);
		return 0; /* paid up to a later time: the next tick */
	}
	if (ap->defer_state != APPL_DEFER_RUNNING && ap->defer_state != APPL_DEFER_PAUSED) {
		ap->defer_started_ns = bks_wall_ns();
		ap->defer_finished_ns = 0;
	}
	ap->defer_state = APPL_DEFER_RUNNING;
	store_defer_stats d0;
	store_defer_get_stats(ap->s, &d0);
	int r = 1;
	/* Rate-limited: one tick's worth (at most a second's); unlimited: a time slice. */
	uint64_t budget = rate ? BKS_MAX(rate / (1000 / BG_TICK_MS), (uint64_t)SEG_HDR_SIZE)
	                       : DEFER_STEP_BYTES;
	uint64_t t0 = bks_now_ns();
	do {
		r = defer_test_error() ? -defer_test_error() : store_defer_step(ap->s, budget);
	} while (r > 0 && !rate && bks_now_ns() - t0 < DEFER_STEP_BUDGET_NS);
	store_defer_stats d1;
	store_defer_get_stats(ap->s, &d1);
	uint64_t read = d1.bytes_read - d0.bytes_read;
	now = bks_now_ns();
	if (rate) {
		if (!ap->defer_tokens_ns || now - ap->defer_tokens_ns > 1000000000ull)
			ap->defer_tokens_ns = now;
		ap->defer_tokens_ns += (uint64_t)((double)read * 1e9 / (double)rate);
	}
	if (!ap->defer_rate_t0 || now - ap->defer_rate_t0 >= 1000000000ull) {
		if (ap->defer_rate_t0)
			ap->defer_rate_bps = (double)(d1.raw_done - ap->defer_rate_b0) * 1e9 /
			                     (double)(now - ap->defer_rate_t0);
		ap->defer_rate_t0 = now;
		ap->defer_rate_b0 = d1.raw_done;
	}
	int finished = r >= 0 && !store_defer_pending(ap->s);
	int err_new = 0, err_gone = 0, room_new = 0;
	uint64_t backoff = 0;
	if (r < 0) {
		/* The store starts the cycle over; this job waits before it does. */
		backoff = ap->defer_err ? BKS_MIN(ap->defer_backoff_ns * 2, DEFER_BACKOFF_MAX_NS)
		                        : DEFER_BACKOFF_MIN_NS;
		err_new = r != ap->defer_err;
		ap->defer_errors++;
		ap->defer_err = r;
		ap->defer_err_cycles = d1.cycles;
		ap->defer_backoff_ns = backoff;
		ap->defer_retry_ns = now + backoff;
		ap->defer_retry_wall_ns = bks_wall_ns() + backoff;
		ap->defer_state = APPL_DEFER_WAITING;
		ap->defer_rate_bps = 0;
	} else if (ap->defer_err && (finished || d1.cycles > ap->defer_err_cycles)) {
		err_gone = ap->defer_err; /* a cycle got past it */
		ap->defer_err = 0;
		ap->defer_backoff_ns = 0;
	}
	if (r >= 0 && !finished && d1.wait_room) {
		room_new = !ap->defer_room_told;
		ap->defer_room_told = 1;
		ap->defer_state = APPL_DEFER_WAITING;
		ap->defer_rate_bps = 0;
	}
	if (d1.segments_done != d0.segments_done || finished)
		ap->defer_room_told = 0; /* progress: a later wait is news again */
	if (finished) {
		/* A cycle that found nothing (the one after every start) stays idle. */
		ap->defer_state = d1.segments_done || d1.noted_bytes ? APPL_DEFER_DONE
		                                                     : APPL_DEFER_IDLE;
		ap->defer_finished_ns = bks_wall_ns();
		if (ap->defer_state == APPL_DEFER_IDLE) /* (not listed as a job that ran) */
			ap->defer_started_ns = ap->defer_finished_ns = 0;
		ap->defer_rate_bps = 0;
	}
	appl_unlock(ap);
	if (err_new)
		appl_event_add(ap, CFG_LOG_WARN, "deferred compression: %s (starts over in %llu s, "
		               "waiting longer while it repeats; reported once)", strerror(-r),
		               (unsigned long long)(backoff / 1000000000ull));
	if (err_gone)
		appl_event_add(ap, CFG_LOG_INFO, "deferred compression: past the error (%s)",
		               strerror(-err_gone));
	if (room_new)
		appl_event_add(ap, CFG_LOG_INFO, "deferred compression waiting: no room to move "
		               "what is left until a commit gives rows back (%llu segments "
		               "skipped so far)", (unsigned long long)d1.segments_skipped);
	if (finished && d1.segments_done)
		appl_event_add(ap, CFG_LOG_INFO, "deferred compression done: %llu segments moved, "
		               "%llu raw bytes now stored in %llu (%llu chunks compressed, %llu "
		               "incompressible)", (unsigned long long)d1.segments_done,
		               (unsigned long long)d1.raw_done, (unsigned long long)d1.stored_after,
		               (unsigned long long)d1.chunks_compressed,
		               (unsigned long long)d1.chunks_incompressible);
	return r > 0 && !rate;
}

static void maybe_commit(appl *ap)
{
	uint64_t now = bks_wall_ns();
	uint64_t every = (uint64_t)ap->cfg.commit_interval_s * 1000000000ull;
	if (now - ap->last_commit_ns < every || now < ap->commit_retry_ns)
		return;
	appl_lock(ap);
	ns_stats nst;
	ns_get_stats(ap->n, &nst);
	int dirty = nst.dirs_dirty || store_is_dirty(ap->s);
	appl_unlock(ap);
	if (!dirty) {
		ap->last_commit_ns = now;
		return;
	}
	bks_err e = {0};
	int r = appl_commit(ap, &e);
	if (r == -ENOSPC) {
		/* Not fatal: the pool stays writable and the commit is retried each
		 * interval; it goes through once the collector has freed rows. */
		ap->commit_retry_ns = now + every;
		if (!ap->commit_enospc)
			appl_event_add(ap, CFG_LOG_ERROR, "commit failed: %s (retried every %u s)",
			               bks_errmsg(&e, r), ap->cfg.commit_interval_s);
		ap->commit_enospc = 1;
	} else if (r < 0) {
		appl_event_add(ap, CFG_LOG_ERROR, "commit failed: %s", bks_errmsg(&e, r));
	} else if (ap->commit_enospc) {
		ap->commit_enospc = 0;
		appl_event_add(ap, CFG_LOG_INFO, "commit succeeded again after the store was full");
	}
}

/* Say once when the store becomes full and when it takes data again. */
static void watch_full(appl *ap)
{
	appl_lock(ap);
	int full = store_space_full(ap->s);
	store_space si;
	store_get_space(ap->s, &si);
	int was = ap->was_full;
	ap->was_full = full;
	appl_unlock(ap);
	if (full && !was)
		appl_event_add(ap, CFG_LOG_WARN, "store %s: %llu rows free, %llu kept for commits "
		               "and garbage collection; %s", APPL_FULL_ACTION,
		               (unsigned long long)si.rows_free, (unsigned long long)si.reserve_total,
		               APPL_FULL_HINT);
	else if (!full && was)
		appl_event_add(ap, CFG_LOG_INFO, "store takes new data again: %llu rows free, %llu "
		               "reserved", (unsigned long long)si.rows_free,
		               (unsigned long long)si.reserve_total);
}

/* A collection starts by itself when the free rows fall below gc_auto_free of the
 * array: part-full rows that commits seal (every few seconds, more often under
 * syncs: NFS CREATE and COMMIT) and garbage from deletes and overwrites would
 * otherwise fill the array until an administrator runs gc. At most one a minute, so
 * an array full of live data does not collect in a loop. That is too slow for a
 * stream of synced creates (two part-full rows per forced commit, every ~20-100
 * syncs: the demo store was full after ~50 000 NFS creates), so the store also
 * starts one by itself at a commit below the same mark, once enough rows were
 * written since the last (store_set_gc_auto), and steps it with the syncs; this
 * thread adopts such a collection, steps it when idle, reports and commits it. */
#define AUTO_GC_GAP_NS (60ull * 1000000000ull)
static void maybe_auto_gc(appl *ap)
{
	double frac = ap->cfg.gc_auto_free;
	uint64_t now = bks_wall_ns();
	appl_lock(ap);
	store_set_gc_auto(ap->s, frac, ap->cfg.gc_min_live); /* (the config reloads) */
	if (frac <= 0) {
		appl_unlock(ap);
		return;
	}
	int idle = ap->gc_state != 1 &&
	           (!ap->gc_finished_ns || now - ap->gc_finished_ns >= AUTO_GC_GAP_NS) &&
	           (!ap->gc_started_ns || now - ap->gc_started_ns >= AUTO_GC_GAP_NS);
	store_space si;
	store_get_space(ap->s, &si);
	uint64_t rows = si.rows;
	store_gc_stats gs;
	store_gc_get_stats(ap->s, &gs);
	int adopt = ap->gc_state != 1 && gs.running;
	if (adopt) {
		ap->gc_state = 1;
		ap->gc_min_live = ap->cfg.gc_min_live;
		ap->gc_started_ns = now;
		ap->gc_finished_ns = 0;
	}
	appl_unlock(ap);
	if (adopt) {
		appl_event_add(ap, CFG_LOG_INFO, "garbage collection started by the store: %llu of "
		               "%llu rows free (gc_auto_free %.0f%%)",
		               (unsigned long long)si.rows_free, (unsigned long long)rows, frac * 100);
		return;
	}
	if (!idle || (double)si.rows_free >= frac * (double)rows)
		return;
	bks_err e = {0};
	if (appl_gc_start(ap, ap->cfg.gc_min_live, &e) == 0)
		appl_event_add(ap, CFG_LOG_INFO, "garbage collection started by itself: %llu of "
		               "%llu rows free (gc_auto_free %.0f%%)",
		               (unsigned long long)si.rows_free, (unsigned long long)rows, frac * 100);
}

static void *bg_main(void *arg)
{
	appl *ap = arg;
	pthread_mutex_lock(&ap->bgmu);
	while (!ap->bg_stop) {
		pthread_mutex_unlock(&ap->bgmu);
		history_tick(ap);
		/* Rebuild, replace and scrub pace themselves (rate floor and cap). */
		int more = arr_bg_step(ap->a, 8);
		bad_rows_verify(ap);
		jobs_step(ap);
		int defer_more = defer_job(ap);
		maybe_commit(ap);
		watch_full(ap);
		maybe_auto_gc(ap);
		/* The snapshot walks the row table: once a second is enough (status
		 * requests refresh it themselves when the lock is free). */
		pthread_mutex_lock(&ap->snapmu);
		uint64_t taken = ap->snap.taken_ns;
		pthread_mutex_unlock(&ap->snapmu);
		if (bks_now_ns() - taken > 1000000000ull) {
			appl_lock(ap);
			snap_take(ap);
			appl_unlock(ap);
		}
		pthread_mutex_lock(&ap->bgmu);
		if (ap->bg_stop)
			break;
		int busy = more > 0 || ap->gc_state == 1 || ap->vf.state == 1 || defer_more;
		if (!busy) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += BG_TICK_MS * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&ap->bgcv, &ap->bgmu, &ts);
		}
	}
	pthread_mutex_unlock(&ap->bgmu);
	return NULL;
}

void appl_kick(appl *ap)
{
	pthread_mutex_lock(&ap->bgmu);
	pthread_cond_broadcast(&ap->bgcv);
	pthread_mutex_unlock(&ap->bgmu);
}

void appl_set_readonly(appl *ap, const char *why)
{
	appl_lock(ap);
	if (why && !ap->ro && ap->ro_fn)
		ap->ro_fn(ap->ro_ctx);
	ap->ro = why != NULL;
	snprintf(ap->ro_why, sizeof(ap->ro_why), "%s", why ? why : "");
	appl_unlock(ap);
}

void appl_on_readonly(appl *ap, void (*fn)(void *ctx), void *ctx)
{
	appl_lock(ap);
	ap->ro_fn = fn;
	ap->ro_ctx = fn ? ctx : NULL;
	appl_unlock(ap);
}

int appl_readonly(appl *ap, char *why, size_t cap)
{
	if (!ap->ro)
		return 0;
	if (why && cap)
		snprintf(why, cap, "%s", ap->ro_why);
	return 1;
}

void appl_reload_pacing(appl *ap)
{
	appl_lock(ap);
	/* Deferred compression reads the rates from ap->cfg at each tick; what it was
	 * paid up to at the old rate is dropped, so a raised rate applies at once. */
	ap->defer_tokens_ns = 0;
	uint64_t lo = ap->cfg.bg_min_rate, hi = ap->cfg.bg_max_rate;
	uint32_t idle = ap->cfg.fg_idle_ms;
	appl_unlock(ap);
	if (ap->a)
		arr_set_pacing(ap->a, lo, hi, idle);
	appl_kick(ap);
}

/* --- open / close --- */

static void array_config(const bks_cfg *c, arr_config *ac, appl *ap)
{
	arr_config_defaults(ac);
	ac->strip_size = c->strip_size;
	ac->name = c->array_name;
	ac->io_err_limit = c->io_err_limit;
	ac->cksum_err_limit = c->cksum_err_limit;
	ac->err_window_s = c->err_window_s;
	ac->io_timeout_ms = c->io_timeout_ms;
	ac->bg_min_bps = c->bg_min_rate;
	ac->bg_max_bps = c->bg_max_rate;
	ac->fg_idle_ms = c->fg_idle_ms;
	ac->ev_fn = on_array_event;
	ac->ev_ctx = ap;
}

static void store_config(const bks_cfg *c, store_params *sp)
{
	store_params_default(sp);
	sp->cdc.min = c->chunk_min;
	sp->cdc.avg = c->chunk_avg;
	sp->cdc.max = c->chunk_max;
	sp->pool.zstd_level = c->zstd_level;
	sp->pool.cache_bytes = c->meta_cache;
	sp->auto_commit_bytes = c->commit_bytes;
	sp->threads = (int)c->threads; /* 0: one per core */
}

static int open_disks(appl *ap, char **paths, int n, disk **d, bks_err *e)
{
	for (int i = 0; i < n; i++) {
		int r = disk_open_on(ap->eng, paths[i], &d[i], e);
		if (r < 0) {
			while (i-- > 0)
				disk_close(d[i]);
			return r;
		}
	}
	return 0;
}

static int array_up(appl *ap, const bks_cfg *c, int create, bks_err *e)
{
	disk *d[CFG_MAX_DISKS + CFG_MAX_SPARES];
	arr_config ac;
	int nd = c->ndisks + c->nspares, r;

	if (c->ndisks == 0)
		return bks_fail(e, -EINVAL, "%s: no disks configured ([array] disks)", c->source);
	array_config(c, &ac, ap);
	char *paths[CFG_MAX_DISKS + CFG_MAX_SPARES];
	for (int i = 0; i < c->ndisks; i++)
		paths[i] = c->disks[i];
	for (int i = 0; i < c->nspares; i++)
		paths[c->ndisks + i] = c->spares[i];
	if ((r = open_disks(ap, paths, nd, d, e)) < 0)
		return r;
	/* Blank disks in the list (a disk a replace released, a new one not yet added)
	 * are left out of the import, with a word in the log. */
	disk *lab[CFG_MAX_DISKS + CFG_MAX_SPARES];
	int nl = 0;
	for (int i = 0; i < nd; i++)
		if (arr_disk_has_label(d[i]))
			lab[nl++] = d[i];
	if (nl > 0) {
		for (int i = 0; i < nd; i++)
			if (!arr_disk_has_label(d[i])) {
				appl_event_add(ap, CFG_LOG_WARN, "disk %s carries no bkstor label: not part "
				               "of the array (add it with bkstorctl disk add-spare)",
				               disk_path(d[i]));
				disk_close(d[i]);
			}
		r = arr_import(&ac, lab, nl, &ap->a, e);
		if (r < 0)
			for (int i = 0; i < nl; i++)
				disk_close(lab[i]);
		return r;
	}
	if (!create) {
		for (int i = 0; i < nd; i++)
			disk_close(d[i]);
		return bks_fail(e, -ENOENT, "none of the %d configured disks carries a bkstor label "
		                "(a new array is made only by bkstord --demo or bkstorctl array create)",
		                nd);
	}
	/* Demo, first start: blank disks become a new array. */
	r = arr_create(&ac, d, c->ndisks, d + c->ndisks, c->nspares, 0, &ap->a, e);
	if (r < 0) {
		for (int i = 0; i < nd; i++)
			disk_close(d[i]);
		return r;
	}
	appl_event_add(ap, CFG_LOG_INFO, "created array %s on %d disks and %d spares",
	               c->array_name, c->ndisks, c->nspares);
	return 1;
}

int appl_open(appl *ap, bks_cfg *cfg, int create, bks_err *e)
{
	store_params sp;
	int r;

	memset(ap, 0, sizeof(*ap));
	pthread_mutex_init(&ap->mu, NULL);
	pthread_mutex_init(&ap->evmu, NULL);
	pthread_mutex_init(&ap->bgmu, NULL);
	pthread_mutex_init(&ap->snapmu, NULL);
	pthread_cond_init(&ap->bgcv, NULL);
	appl_durable_init(ap);
	ap->cfg = *cfg; /* takes ownership */
	memset(cfg, 0, sizeof(*cfg));
	ap->started_ns = bks_wall_ns();
	ap->last_commit_ns = ap->started_ns;
	if ((r = disk_engine_new(&ap->eng)) < 0)
		return bks_fail(e, r, "cannot set up asynchronous I/O: %s", strerror(-r));
	int created = array_up(ap, &ap->cfg, create, e);
	if (created < 0) {
		r = created;
		goto fail;
	}
	store_config(&ap->cfg, &sp);
	if (created) {
		r = store_create(ap->a, &sp, &ap->s, e);
		if (r == 0)
			r = ns_format(ap->s, 0755, e);
		if (r == 0)
			r = store_commit(ap->s, e);
	} else {
		r = store_open(ap->a, &sp, &ap->s, e);
		store_stats st;
		if (r == 0) {
			store_get_stats(ap->s, &st);
			if (st.log_replayed)
				appl_event_add(ap, CFG_LOG_WARN, "replayed %llu intent log records "
				               "after an unclean stop", (unsigned long long)st.log_replayed);
		}
	}
	if (r < 0) {
		if (!ap->s)
			arr_close(ap->a);
		ap->a = NULL;
		goto fail;
	}
	if ((r = ns_open(ap->s, &ap->n, e)) < 0)
		goto fail;
	/* A new demo appliance has the directory its banner's first commands use. */
	if (created && create) {
		ns_attr da;
		if ((r = ns_mkdir_path(ap->n, "/backups", 0755, &da)) < 0 ||
		    (r = ns_commit(ap->n, e)) < 0) {
			bks_fail(e, r, "demo: cannot make /backups: %s", strerror(-r));
			goto fail;
		}
	}
	snap_take(ap);
	arr_set_bad_row_fn(ap->a, on_bad_row, ap);
	if (pthread_create(&ap->bg, NULL, bg_main, ap) != 0) {
		r = bks_fail(e, -EAGAIN, "cannot start the background thread");
		goto fail;
	}
	ap->bg_started = 1;
	return 0;
fail:
	ns_close(ap->n);
	ap->n = NULL;
	store_close(ap->s);
	ap->s = NULL;
	disk_engine_free(ap->eng);
	ap->eng = NULL;
	cfg_free(&ap->cfg);
	return r;
}

int appl_close(appl *ap)
{
	int r = 0;
	if (ap->bg_started) {
		pthread_mutex_lock(&ap->bgmu);
		ap->bg_stop = 1;
		pthread_cond_broadcast(&ap->bgcv);
		pthread_mutex_unlock(&ap->bgmu);
		pthread_join(ap->bg, NULL);
	}
	if (ap->n) {
		bks_err e = {0};
		r = appl_commit(ap, &e);
		if (r < 0)
			LOG_E("final commit failed: %s", bks_errmsg(&e, r));
	}
	ns_close(ap->n);
	store_close(ap->s);
	disk_engine_free(ap->eng);
	cfg_free(&ap->cfg);
	pthread_mutex_destroy(&ap->mu);
	pthread_mutex_destroy(&ap->evmu);
	pthread_mutex_destroy(&ap->bgmu);
	pthread_mutex_destroy(&ap->snapmu);
	pthread_cond_destroy(&ap->bgcv);
	appl_durable_destroy(ap);
	return r;
}
