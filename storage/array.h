/* storage/array.h: the RAID-6 array over raw disks, with global hot spares.
 *
 * An arr owns its disks. Data is written in whole rows (k = N-2 data strips plus P
 * and Q, left-symmetric) and a row is never modified while it is referenced, so there
 * is no read-modify-write and no write hole. Reads fetch only the strips they need
 * and fall back to reconstruction on an I/O error or a checksum mismatch reported by
 * the caller's verifier, then rewrite the bad strip in place.
 *
 * Durability: arr_commit() flushes every disk, writes the next superblock slot on
 * every present disk, and flushes again; import picks the newest slot that a majority
 * of the present members agree on. A crash at any instant leaves the last completed
 * commit intact (a commit in flight may or may not survive, never half).
 *
 * Threads: every verb takes the array's lock, so any thread may call any verb.
 * arr_bg_step() does a bounded slice of background work (rebuild, replace, scrub)
 * and returns, so foreground I/O interleaves with it.
 *
 * Errors: 0 or -errno; the verbs that a person triggers take a bks_err that receives
 * a one-line reason ("disk /x: 1.0 GiB, smaller than the 4.0 GiB members need").
 */
#ifndef BKS_ARRAY_H
#define BKS_ARRAY_H

#include <stddef.h>
#include <stdint.h>

#include "common/bks.h"
#include "storage/arr_limits.h"
#include "storage/disk.h"

typedef struct arr arr;

/* Events (a disk faulted, a spare claimed, a rebuild done): one line, for the log. */
enum arr_event_level { ARR_EV_INFO = 0, ARR_EV_WARN = 1, ARR_EV_ERR = 2 };
typedef void (*arr_event_fn)(void *ctx, int level, const char *msg);

typedef struct arr_config {
	uint32_t strip_size;      /* 64 KiB..1 MiB, power of two; default 256 KiB */
	const char *name;         /* array name, shown by show/status */
	/* Error thresholds: a disk with this many I/O (or checksum) errors within
	 * err_window_s seconds is FAULTED (ZFS's fault manager uses 10 in 600 s). */
	uint32_t io_err_limit;
	uint32_t cksum_err_limit;
	uint32_t err_window_s;
	/* A request slower than this counts as an error toward io_err_limit (a disk
	 * that answers, but too slowly, is failing). 0 = never. */
	uint32_t io_timeout_ms;
	/* Background work (rebuild, replace, scrub) in bytes/s read from disks: never
	 * slower than bg_min_bps while foreground I/O runs, up to bg_max_bps when idle.
	 * 0 = unlimited. */
	uint64_t bg_min_bps;
	uint64_t bg_max_bps;
	uint32_t fg_idle_ms;      /* foreground is "idle" after this long without I/O */
	int no_auto_spare;        /* import only: do not claim spares (read-only look) */
	arr_event_fn ev_fn;       /* events from create/import on (arr_set_event_fn changes it) */
	void *ev_ctx;
} arr_config;

void arr_config_defaults(arr_config *c);

/* Create a new array on member disks (4..32) and optional spares. Each disk is
 * checked (size, not part of another array unless force, write/read-back of the
 * label area) and labelled. On success the array owns every disk; on failure the
 * caller keeps them and nothing was written to any disk that failed a check. */
int arr_create(const arr_config *cfg, disk **members, int nmembers, disk **spares,
               int nspares, int force, arr **out, bks_err *e);

/* Assemble an array from whatever disks are given (members, spares, strays, blank
 * disks). Refuses a set that mixes arrays, duplicates a disk, holds a damaged label,
 * or lacks enough members (more than two slots unavailable); comes up DEGRADED with
 * one or two missing. Strays and blank disks (no label at all) are set aside with
 * a warning event naming them. On success every given disk is owned by the array
 * (strays and blank disks are closed); on failure none is. */
int arr_import(const arr_config *cfg, disk **disks, int ndisks, arr **out, bks_err *e);

/* Flush and close. Does not commit: uncommitted rows are simply not referenced. */
void arr_close(arr *a); /* accepts NULL */

/* Geometry. */
int arr_width(const arr *a);          /* N */
int arr_data_strips(const arr *a);    /* k = N - 2 */
uint32_t arr_strip_size(const arr *a);
size_t arr_row_bytes(const arr *a);   /* k * strip_size: data per row */
uint64_t arr_rows(const arr *a);      /* rows in the array */

/* Write nrows whole rows starting at row: data holds nrows * arr_row_bytes() bytes,
 * DISK_ALIGN-aligned. Returns 0, or -EROFS when more than two slots are unavailable
 * (the array refuses writes rather than store what it cannot protect), -ERANGE past
 * the end, -EIO if the write could not be made redundant. */
int arr_write_rows(arr *a, uint64_t row, uint32_t nrows, const void *data, bks_err *e);

/* The caller's check of bytes it reads (e.g. a chunk's xxh3). Returns 1 if the bytes
 * are right. Called with the range [off, off+len) of the row's data. */
typedef int (*arr_verify_fn)(void *ctx, uint64_t row, size_t off, const void *buf,
                             size_t len);

/* Read len bytes at offset off of row's data. Any alignment. A strip on a missing
 * disk is reconstructed over the range only (the same bytes of the survivors). On
 * EIO, a vanished disk, or (with verify) a mismatch, the row is reconstructed, the
 * bad strip is rewritten in place, and the right bytes are returned. -EIO when the
 * data cannot be reconstructed (never wrong bytes). */
int arr_read(arr *a, uint64_t row, size_t off, void *buf, size_t len);
int arr_read_verify(arr *a, uint64_t row, size_t off, void *buf, size_t len,
                    arr_verify_fn verify, void *ctx);

/* Several reads in one batch, for read-ahead (dedup/store.h, "Reading"): every
 * strip of every range is requested before any is waited for, so the rows a
 * sequential restore needs next are in flight on every disk at once (queue depth
 * = rows per disk). Ranges: off, len and buf DISK_ALIGN multiples (-EINVAL
 * otherwise), straight into buf (O_DIRECT, no copy). A range that meets an I/O error
 * or a missing disk is read again through the recovery of arr_read (reconstruct,
 * repair). No verifier: the caller checks what it got and re-reads a range that
 * fails its check with arr_read_verify. Each range's result is in its result field;
 * returns the first error. Safe from any thread (the array's lock, as every verb). */
typedef struct arr_rd {
	uint64_t row;
	size_t off, len;
	void *buf;
	int result;               /* out: 0 or -errno */
} arr_rd;
#define ARR_RD_MAX 16         /* ranges per call */
int arr_read_many(arr *a, arr_rd *v, int n);

/* Durably record root (the upper layer's metadata root, <= ARR_ROOT_MAX bytes) with
 * the array state. Every row written before the call is durable when it returns. */
int arr_commit(arr *a, const void *root, size_t root_len, bks_err *e);
/* The root of the last commit; returns its length. */
size_t arr_root(arr *a, void *buf, size_t cap);
uint64_t arr_seq(const arr *a); /* last committed sequence number */

/* Which rows hold live data (the dedup store knows). Without it, every row below the
 * high-water mark is live. Rebuild, replace and scrub touch live rows only. */
typedef int (*arr_live_fn)(void *ctx, uint64_t row);
void arr_set_live_fn(arr *a, arr_live_fn fn, void *ctx);
/* Change the background pacing (arr_cfg bg_min_bps, bg_max_bps, fg_idle_ms) of a
 * running array: bkstord's SIGHUP. A rebuild, replace or scrub under way goes on at
 * the new rate from its next step; a pacing sleep in progress (at a low rate, a step
 * can owe tens of seconds) ends at once, and no debt from the old rate is kept. */
void arr_set_pacing(arr *a, uint64_t bg_min_bps, uint64_t bg_max_bps, uint32_t fg_idle_ms);
/* Data checksums for scrub: with it, scrub verifies each live row's data (verify is
 * called with the whole row data) and uses it to find a bad strip that P/Q alone
 * cannot locate. Scrub rewrites a silently bad strip only when these checksums prove
 * the row it writes: without them (or for a row they do not cover) a mismatch is
 * reported and counted unrecoverable, even when P/Q name one strip, because several
 * strips damaged alike look exactly like one (storage/array_bg.c, scrub_row). */
void arr_set_scrub_verify(arr *a, arr_verify_fn fn, void *ctx);
/* Rows the background work leaves damaged: a scrub's unrecoverable row (too many
 * strips lost, or a mismatch nothing proves a repair for), a rebuild's row that
 * could not be decided. Called with the row, under the array's lock, from
 * arr_bg_step (the callback must not call the array); the event and the counters
 * say the same. So the layer above can find what it kept there and get it again
 * (on a replication pair: from the peer). */
typedef void (*arr_bad_row_fn)(void *ctx, uint64_t row);
void arr_set_bad_row_fn(arr *a, arr_bad_row_fn fn, void *ctx);

void arr_set_event_fn(arr *a, arr_event_fn fn, void *ctx);

/* The intent log area: ARR_LOG_SIZE bytes outside the rows on every disk, for records
 * the layer above must make durable before its next commit (storage/ilog.h).
 * arr_ilog_write first makes every row written so far durable (flushes, in parallel,
 * every disk with a write not yet flushed;
 * when rows were written above the high-water mark the last superblock records, it
 * commits the array state with the same root, so every row a record can name is
 * below the durable high-water mark that rebuild and scrub cover), then writes buf (len bytes, a multiple of DISK_ALIGN, DISK_ALIGN-aligned) at off in
 * the log area of ARR_LOG_COPIES online members (the first ones by slot; further ones
 * when a write fails) and flushes them. 0 once enough copies are durable; -EIO when
 * fewer than min(ARR_LOG_COPIES, members online) disks took it. */
int arr_ilog_write(arr *a, uint64_t off, const void *buf, size_t len, bks_err *e);
/* Read the whole log area (ARR_LOG_SIZE bytes into an aligned buf) of the i-th disk
 * that may hold a copy (online members, incoming disks, spares; i from 0). -ENOENT
 * when there is no i-th disk, -EIO when it cannot be read. */
int arr_ilog_read(arr *a, int i, void *buf);

/* Disk management. Disks are named by path or by UUID string. A new disk passed in
 * is owned by the array on success and by the caller on failure. */
int arr_fail(arr *a, const char *name, bks_err *e);           /* admin: FAULTED */
int arr_add_spare(arr *a, disk *d, int force, bks_err *e);
int arr_remove(arr *a, const char *name, bks_err *e); /* a spare, or a FAULTED member */
int arr_replace(arr *a, const char *old_name, disk *new_disk, int force, bks_err *e);
/* Take a member out of service without claiming a spare (to reseat it, say), and
 * bring it back: its live rows are rebuilt onto it, since rows written meanwhile
 * are missing there. */
int arr_offline(arr *a, const char *name, bks_err *e);
int arr_online(arr *a, const char *name, bks_err *e);

/* Background work. */
int arr_scrub_start(arr *a, bks_err *e);
int arr_scrub_pause(arr *a, bks_err *e);
int arr_scrub_resume(arr *a, bks_err *e);
int arr_scrub_stop(arr *a, bks_err *e);
/* Do up to max_rows rows of pending background work (rebuilds and replaces first,
 * then scrub), honouring the rate limits. Returns 1 if work remains, 0 if none,
 * or -errno. Commits the array state (cursors) every few seconds by itself. */
int arr_bg_step(arr *a, uint32_t max_rows);
/* Run background work to completion (offline tools and tests). */
int arr_bg_run(arr *a);

/* Status, for show/status/--json. */
enum arr_health { ARR_OK = 0, ARR_DEGRADED = 1, ARR_REBUILDING = 2, ARR_FAILED = 3 };
const char *arr_health_name(int h);

enum arr_disk_role { ARR_ROLE_MEMBER = 0, ARR_ROLE_INCOMING = 1, ARR_ROLE_SPARE = 2 };

typedef struct arr_disk_status {
	int slot;                 /* member slot, -1 for spares */
	int role;                 /* enum arr_disk_role */
	char state[16];           /* ONLINE FAULTED OFFLINE REMOVED UNAVAIL REBUILDING AVAIL */
	char path[256];           /* "" when not present */
	char uuid[BKS_UUID_STRLEN];
	char serial[DISK_SERIAL_MAX];
	uint64_t size;
	uint64_t read_errors, write_errors, cksum_errors;
	uint64_t slow_ios;        /* requests slower than io_timeout_ms */
	uint64_t cursor;          /* incoming: rows done */
	uint64_t rows_total;      /* incoming: rows to do (high-water) */
} arr_disk_status;

typedef struct arr_job_status {
	char kind[16];            /* "rebuild", "replace", "scrub" */
	char state[16];           /* "running", "paused", "done", "idle" */
	uint64_t done_rows, total_rows;
	uint64_t bytes_done;      /* this process's run */
	double rate_bps;          /* recent bytes/s */
	double eta_s;             /* -1 when unknown */
	uint64_t errors_found, repaired, unrecoverable;
} arr_job_status;

/* The current or last scrub, as persisted in the superblock (its counters survive a
 * restart; state PAUSED or RUNNING resumes). */
enum arr_scrub_state { ARR_SCRUB_IDLE = 0, ARR_SCRUB_RUNNING = 1, ARR_SCRUB_PAUSED = 2 };
typedef struct arr_scrub_status {
	int state;                /* enum arr_scrub_state */
	uint64_t cursor;          /* next row */
	uint64_t rows_checked, errors_found, repaired, unrecoverable;
	uint64_t started_ns, finished_ns; /* wall clock; finished 0 while running */
} arr_scrub_status;

typedef struct arr_status {
	char name[ARR_NAME_MAX];
	char uuid[BKS_UUID_STRLEN];
	int health;               /* enum arr_health */
	char action[256];         /* what an admin should do, "" when nothing */
	int width, data_strips;
	uint32_t strip_size;
	uint64_t rows, hwm, seq;
	uint64_t capacity_bytes;  /* rows * k * strip */
	int ndisks;               /* entries in disks[] */
	arr_disk_status disks[ARR_MAX_DISKS * 2 + ARR_MAX_SPARES];
	int njobs;
	arr_job_status jobs[3];
	arr_scrub_status last_scrub; /* counters of the current or last scrub */
	uint64_t bg_min_bps, bg_max_bps; /* the pacing in effect (arr_set_pacing) */
	uint32_t fg_idle_ms;
} arr_status;

void arr_get_status(arr *a, arr_status *st);

/* Does d carry a bkstor disk label (either copy valid)? For a daemon telling its
 * configured-but-blank disks from members before an import. */
int arr_disk_has_label(disk *d);

#endif /* BKS_ARRAY_H */
