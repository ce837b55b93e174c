/* daemon/appl.h: the appliance: the array, the store and the namespace bkstord runs,
 * the lock that serializes them, the background thread (commits every
 * commit_interval, rebuild/scrub pacing, GC and verify in steps), events and
 * throughput figures. The native server and the control API both work through it.
 *
 * Locking: appl.mu guards the store and the namespace (one caller at a time, as
 * their headers require) and the job state. The array has its own lock; its
 * background work (arr_bg_step) runs on the background thread without appl.mu (the
 * pool's callbacks are safe from there). Hold appl.mu only around store/namespace
 * calls, never across network I/O. Take it with appl_lock/appl_unlock, which count
 * the time it is held and waited for (the status document's "locks"): that is how
 * one sees whether streams queue behind it.
 *
 * Group commit (appl_durable): a request whose answer must wait until its change is
 * durable (an NFS CREATE, an iSCSI SYNCHRONIZE CACHE or FUA write) makes the change
 * under appl.mu, takes its number (appl_change_seq), releases appl.mu and waits in
 * appl_durable for a sync that covers it. The first waiter with no sync running
 * leads: it takes appl.mu, notes the newest change number and syncs everything made
 * so far (ns_sync: the intent log, one record and one round of flushes); the others
 * sleep and are released by the sync that covers them, with its result. Changes
 * made while a sync runs wait for the next one, which takes all of them at once.
 * Lock order: appl.mu, then dmu; nobody holding dmu takes appl.mu.
 */
#ifndef BKS_APPL_H
#define BKS_APPL_H

#include <pthread.h>
#include <stdint.h>

#include "daemon/config.h"
#include "dedup/store.h"
#include "fs/ns.h"
#include "storage/array.h"

#define APPL_EVENTS 256
/* What status, the dashboard and a refused write say when the store is full. */
#define APPL_FULL_ACTION "full: delete backups or add disks"
#define APPL_FULL_HINT "new data is refused; delete backups (bkstorctl rm) and run " \
	"bkstorctl gc, or add disks"

#define APPL_HISTORY 3600 /* seconds of throughput history */

typedef struct appl_event {
	uint64_t seq;
	uint64_t time_ns;
	int level;               /* enum cfg_log_level */
	char msg[240];
} appl_event;

typedef struct appl_verify {
	int state;               /* 0 idle, 1 running, 2 done */
	uint64_t next_id, limit;
	uint64_t objects_total;
	store_verify_report rep;
	uint64_t started_ns, finished_ns;
	uint64_t queued;         /* bad chunks queued for repair (appl_verify_hook) */
	int queued_from;         /* APPL_REPAIR_FROM_*: whom they are wanted from, 0 */
} appl_verify;

/* Whom verify tells about the chunks it finds bad: replication, which gets them again
 * from the peer (daemon/repl_repair.c): a twin's from its source, a source's from its
 * twin. Set and cleared under mu, and every call is made under mu (quick: no I/O):
 * begin when a verify starts; bad for a bad chunk (APPL_REPAIR_FROM_* when it was
 * queued for repair, the first time in this verify, else 0); end when the verify
 * went through every object. */
#define APPL_REPAIR_FROM_SOURCE 1
#define APPL_REPAIR_FROM_TWIN 2
const char *appl_repair_from_name(int from); /* "source", "twin" */
typedef struct appl_verify_hook {
	void (*begin)(void *ctx);
	int (*bad)(void *ctx, const store_verify_bad *b);
	void (*end)(void *ctx);
	void *ctx;
} appl_verify_hook;

/* What the status documents show of the store and the jobs: taken under appl.mu
 * when it is free, else the last one (the API never waits behind an ingest). */
typedef struct appl_snap {
	store_stats st;
	store_gc_stats gs;
	appl_verify vf;
	int gc_state;
	uint32_t row_bytes;
	uint64_t commits, last_commit_ns, gc_started_ns, gc_finished_ns;
	store_defer_stats ds;    /* deferred compression (dedup/store_defer.c) */
	int defer_state;         /* APPL_DEFER_* */
	double defer_rate_bps;   /* raw bytes handled per second, last second */
	uint64_t defer_started_ns, defer_finished_ns;
	int defer_err;           /* the error the pass is backing off from (-errno), or 0 */
	uint64_t defer_retry_ns; /* ... its next try (bks_wall_ns) */
	uint64_t defer_errors;   /* steps that failed since the start */
	uint64_t taken_ns;
} appl_snap;

/* The background compression pass (store.zstd_level_busy = 0): idle (nothing to do
 * and nothing done since the start), running, paused (client I/O within fg_idle_ms:
 * it waits, unless the store is short of rows), done, waiting (for room: a cycle
 * could move nothing, until the next commit; or after an error, until its retry). */
enum { APPL_DEFER_IDLE = 0, APPL_DEFER_RUNNING = 1, APPL_DEFER_DONE = 2,
	APPL_DEFER_PAUSED = 3, APPL_DEFER_WAITING = 4 };
const char *appl_defer_state_name(int st);

/* appl.mu's accounting since the start, nanoseconds of CLOCK_MONOTONIC. */
typedef struct appl_lock_stats {
	uint64_t acquisitions;
	uint64_t contended;      /* acquisitions that had to wait */
	uint64_t held_ns;        /* total time held */
	uint64_t wait_ns;        /* total time waited, over all threads */
	uint64_t max_held_ns;    /* longest single hold */
} appl_lock_stats;

typedef struct appl {
	pthread_mutex_t mu;      /* store, namespace, jobs: appl_lock/appl_unlock */
	uint64_t mu_since_ns;    /* when the holder took mu (under mu) */
	appl_lock_stats mu_stats;/* written under mu, read with relaxed atomics */
	bks_cfg cfg;             /* owned */
	store *s;
	ns *n;
	arr *a;                  /* owned by the store */
	disk_engine *eng;
	uint64_t started_ns;
	int shutting_down;

	/* background thread */
	pthread_t bg;
	int bg_started, bg_stop;
	pthread_mutex_t bgmu;
	pthread_cond_t bgcv;
	uint64_t commits, last_commit_ns, commit_errors;
	int was_full;            /* the store was full at the last look (events) */
	uint64_t commit_retry_ns;/* a commit found no room: not before this (bg thread) */
	int commit_enospc;       /* ... and it was said once (bg thread) */

	/* jobs (under mu) */
	int gc_state;            /* 0 idle, 1 running, 2 done */
	double gc_min_live;
	uint64_t gc_started_ns, gc_finished_ns;
	appl_verify vf;
	appl_verify_hook vhook;
	/* Rows the array's background work left damaged since the last look (atomics:
	 * set from inside arr_bg_step, read by the background thread, which starts a
	 * verify for them) and the first of them. */
	uint64_t bad_rows, bad_row_first;
	/* deferred compression: state and pacing (background thread; state under mu) */
	int defer_state;         /* APPL_DEFER_* */
	uint64_t defer_io_seen;  /* ingest + restore bytes at the last look */
	uint64_t defer_fg_ns;    /* when they last moved (client I/O) */
	uint64_t defer_tokens_ns;/* the bytes read so far are paid for at this time */
	uint64_t defer_started_ns, defer_finished_ns;
	uint64_t defer_rate_t0, defer_rate_b0;
	double defer_rate_bps;
	/* after an error: no step before defer_retry_ns (CLOCK_MONOTONIC), the wait
	 * doubling from DEFER_BACKOFF_MIN_NS to DEFER_BACKOFF_MAX_NS while the error
	 * repeats; defer_err (-errno) was reported once, not again until another */
	uint64_t defer_retry_ns, defer_backoff_ns, defer_retry_wall_ns;
	int defer_err;
	uint64_t defer_err_cycles; /* store cycles when it was met */
	int defer_room_told;     /* the wait for room was reported (until progress) */
	uint64_t defer_errors;   /* steps that failed (since the start) */

	/* events (own lock: the array reports them from any thread) */
	pthread_mutex_t evmu;
	appl_event ev[APPL_EVENTS];
	uint64_t evseq;

	/* throughput: bytes counted by the servers; per-second history */
	uint64_t ingest_bytes, restore_bytes;      /* atomics */
	uint64_t hist_in[APPL_HISTORY], hist_out[APPL_HISTORY];
	uint64_t hist_sec;                         /* last second recorded (monotonic s) */
	uint64_t hist_last_in, hist_last_out;
	int connections;                           /* atomic */

	pthread_mutex_t snapmu;
	appl_snap snap;

	/* group commit (appl_durable) */
	pthread_mutex_t dmu;
	pthread_cond_t dcv;
	uint64_t chg_seq;        /* changes numbered by appl_change_seq (under mu) */
	uint64_t synced_seq;     /* changes <= this are durable (under dmu) */
	int dur_leading;         /* a waiter is running the sync (under dmu) */
	struct appl_dwait *dwait;/* waiters not yet covered (under dmu) */
	uint64_t dur_waits, dur_syncs, dur_errors; /* under dmu */

	struct nfs_srv *nfs;                       /* the NFS server, or NULL (status) */
	struct lun_set *luns;                      /* the LUNs (daemon/lun.h), or NULL */
	struct iscsi_srv *iscsi;                   /* the iSCSI target, or NULL (status) */
	struct repl *repl;                         /* replication, or NULL (status, API) */

	/* Client writes refused (this appliance is a replication twin: daemon/repl.h).
	 * Under mu, so a write that checked it cannot land after it was set. */
	int ro;
	char ro_why[256];        /* the sentence a refused client gets */
	/* Run under mu as client writes stop, before the flag is set (appl_on_readonly):
	 * what a front end accepted and holds (NFS's staged unstable writes) goes to the
	 * store first. */
	void (*ro_fn)(void *ctx);
	void *ro_ctx;
} appl;

/* Open the array named by the configuration (import; in demo mode create it when
 * absent, with a store and a namespace), start the background thread. */
int appl_open(appl *ap, bks_cfg *cfg, int create, bks_err *e);
/* Stop background work, commit, close everything. Returns the final commit's result. */
int appl_close(appl *ap);

/* appl.mu with its accounting: two clock reads per uncontended hold, three when it
 * waits. appl_trylock returns 0 when it took the lock, else EBUSY. Every server
 * (native, NFS, iSCSI LUNs, the API) takes appl.mu through these. */
void appl_lock(appl *ap);
int appl_trylock(appl *ap);
void appl_unlock(appl *ap);
void appl_lock_stats_get(appl *ap, appl_lock_stats *out);

/* Record an event (also logged). */
void appl_event_add(appl *ap, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Copy events with seq >= since into out (up to max); returns the count. */
int appl_events(appl *ap, uint64_t since, appl_event *out, int max, uint64_t *next);

void appl_count_ingest(appl *ap, uint64_t bytes);
void appl_count_restore(appl *ap, uint64_t bytes);
/* Average bytes/s over the last `secs` seconds of history. */
void appl_rates(appl *ap, int secs, double *in_bps, double *out_bps);
/* Per-second history, oldest first: n <= APPL_HISTORY samples each. *sec (if not
 * NULL): the second of the newest sample, which names this history: the same *sec,
 * the same samples. */
int appl_history(appl *ap, uint64_t *in, uint64_t *out, int n, uint64_t *sec);
/* The second of the newest sample (what appl_history's *sec would say now). */
uint64_t appl_history_sec(appl *ap);

/* Jobs (take appl.mu themselves). */
int appl_gc_start(appl *ap, double min_live, bks_err *e);
int appl_verify_start(appl *ap, bks_err *e);
/* Commit now (ns_flush + store_commit) under appl.mu. */
int appl_commit(appl *ap, bks_err *e);
void appl_kick(appl *ap); /* wake the background thread */
/* SIGHUP, after cfg_take_reloadable: the background pacing keys of ap->cfg
 * ([array] bg_min_rate, bg_max_rate, fg_idle_ms) reach the array (rebuild, replace,
 * scrub) and deferred compression, for work already running too. */
void appl_reload_pacing(appl *ap);

/* Client writes: the native protocol's PUT, MKDIR, RENAME and DELETE and every NFS
 * procedure that changes something are refused (-EROFS, NFS3ERR_ROFS) while a reason
 * is set: a replication twin takes its files from its source only. What the
 * appliance writes itself (replication's receiver, delayed deletes, GC, commits) and
 * the LUNs (not replicated) are not affected. appl_set_readonly takes appl.mu; why
 * NULL makes the appliance writable again. appl_readonly: under appl.mu; 1 with the
 * reason copied into why (cap may be 0) while writes are refused, else 0. */
void appl_set_readonly(appl *ap, const char *why);
int appl_readonly(appl *ap, char *why, size_t cap);
/* fn(ctx) runs under appl.mu each time appl_set_readonly makes a writable appliance
 * read-only, before the flag is set: a front end that holds writes it has already
 * answered (NFS UNSTABLE writes not committed) puts them in the store then, so none
 * lands after the flag and none accepted is lost. One hook; fn NULL removes it.
 * Takes appl.mu. */
void appl_on_readonly(appl *ap, void (*fn)(void *ctx), void *ctx);

/* Group commit (see the top). appl_change_seq: under appl.mu, right after a change
 * (of the store or the namespace) that must be durable before its answer; returns
 * its number. appl_durable: without appl.mu; returns once a sync that started after
 * change seq was made has returned: 0, or that sync's error (the same for every
 * request it covered; e gets the message). seq 0 returns 0 at once. The answer is
 * sent only after this returns. */
uint64_t appl_change_seq(appl *ap);
int appl_durable(appl *ap, uint64_t seq, bks_err *e);
/* Figures: requests that waited, syncs run for them, syncs that failed. */
void appl_durable_stats(appl *ap, uint64_t *waits, uint64_t *syncs, uint64_t *errors);
/* Set up / tear down the group commit state (appl_open and appl_close do; a test
 * that builds an appl around its own namespace calls them itself). */
void appl_durable_init(appl *ap);
void appl_durable_destroy(appl *ap);
/* The store/jobs figures for status (fresh when appl.mu is free). */
void appl_snapshot(appl *ap, appl_snap *out);

#endif /* BKS_APPL_H */
