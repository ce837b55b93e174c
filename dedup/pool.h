/* dedup/pool.h: the store's view of the array: rows, segments, metadata blocks,
 * transaction groups.
 *
 * A pool owns an arr. It hands out rows (the row table says, per row, FREE, DATA,
 * META or FREEING, and which segment it holds), fills data segments with chunks and
 * metadata segments with metadata blocks, writes each segment as one whole row when
 * it is full, and commits transaction groups: every open segment is written, the
 * dirty part of the row table is written, a root block names everything, and the
 * array's superblock commit makes it durable. Rows freed in a transaction group are
 * reused only after that group has committed.
 *
 * Metadata is copy-on-write: a block is never overwritten; a new version goes to a
 * new place and the parent's pointer changes. A pointer (seg_ptr) carries the
 * checksum of what it points to.
 *
 * Threads: one caller at a time (the store's lock). The pool has one thread of its
 * own, a writer: a sealed segment is queued to it and written as a row while the
 * caller goes on (a read of a queued segment is served from its buffer), and
 * pool_seal, pool_drain and a commit wait until the queue is empty (a commit before
 * its superblock names the root). If that thread cannot start, segments are
 * written by the caller. The callbacks the pool gives the array (which rows are
 * live, scrub's data check) are safe from the array's own background threads.
 */
#ifndef BKS_POOL_H
#define BKS_POOL_H

#include <stddef.h>
#include <stdint.h>

#include "common/bks.h"
#include "dedup/barray.h"
#include "dedup/segment.h"
#include "storage/array.h"

typedef struct pool pool;

enum row_state { ROW_FREE = 0, ROW_DATA = 1, ROW_META = 2, ROW_FREEING = 3 };

#define POOL_UPPER_MAX 1024 /* bytes of the root block that belong to the store */
#define POOL_BLOCK_MAX (64u << 10)

typedef struct pool_params {
	int zstd_level;        /* data compression level (0 = none); default 3 */
	uint32_t meta_block;   /* metadata block size; default 32 KiB */
	size_t cache_bytes;    /* metadata block cache; default 16 MiB */
} pool_params;

void pool_params_default(pool_params *p);

/* Format a new pool on an empty array (its root must be empty). Takes ownership of
 * a on success. */
int pool_create(arr *a, const pool_params *p, pool **out, bks_err *e);
/* Open the pool recorded in the array's last commit. Takes ownership of a on
 * success. */
int pool_open(arr *a, const pool_params *p, pool **out, bks_err *e);
/* Close without committing (what was not committed is not referenced). */
void pool_close(pool *pl); /* accepts NULL */

arr *pool_array(pool *pl);
uint64_t pool_txg(const pool *pl);     /* the txg being built (last committed + 1) */
uint32_t pool_row_bytes(const pool *pl);
const uint8_t *pool_uuid(const pool *pl);

/* Rows. */
uint64_t pool_rows(const pool *pl);
int pool_row_state(const pool *pl, uint64_t row);
uint64_t pool_row_seg(const pool *pl, uint64_t row);   /* segment id a row holds */
uint64_t pool_rows_in_state(const pool *pl, int state);
/* Free a row (its segment is garbage): reusable after the next commit. */
void pool_free_row(pool *pl, uint64_t row);
/* Is a pointer still valid (its row holds its segment)? */
int pool_ptr_live(const pool *pl, const seg_ptr *p);

/* Data chunks: append to the open data segment (compressing), writing the segment
 * as a row when it is full. -ENOSPC when the array has no free row. */
int pool_add_chunk(pool *pl, const uint8_t fp[FP_LEN], const void *data, uint32_t len,
                   seg_ptr *out);
/* A chunk compressed elsewhere. */
int pool_add_stored(pool *pl, const uint8_t fp[FP_LEN], const void *stored, uint32_t slen,
                    uint32_t rlen, int codec, seg_ptr *out);

/* Read an item (chunk or block), checking its checksum (the array reconstructs and
 * repairs on a mismatch), and decode it into out (cap >= p->rlen). -EIO when it
 * cannot be read correctly, -ESTALE when the pointer's row no longer holds its
 * segment. */
int pool_read_item(pool *pl, const seg_ptr *p, void *out, size_t cap);
/* The stored (compressed) bytes of an item, checked; for verify and replication. */
int pool_read_stored(pool *pl, const seg_ptr *p, void *out, size_t cap);
/* Is an item's segment on the array now (its row holds the segment, as a data or a
 * metadata row by the pointer's kind, and the segment is neither being filled nor
 * queued for writing)? Then its stored bytes may be read from the array directly
 * (arr_read_many, by any thread: the store's read-ahead, the index's prefetch) and
 * checked with seg_item_ok; a pointer for which this is 0, or whose bytes fail the
 * check, is read with pool_read_item. Caller's thread (the store's lock). */
int pool_item_on_array(pool *pl, const seg_ptr *p);

/* Metadata blocks (len <= POOL_BLOCK_MAX). Reads go through the block cache. */
int pool_meta_write(pool *pl, const void *blk, uint32_t len, seg_ptr *out);
int pool_meta_read(pool *pl, const seg_ptr *p, void *out, size_t cap);
/* The block cache's copy of block p (p still live), or NULL: no read, no copy.
 * Valid until the next call into the pool. */
const void *pool_meta_peek(pool *pl, const seg_ptr *p);
/* Put block p's decoded bytes (p->rlen), read and checked against p by the caller
 * (the index's prefetch, outside the store's lock), into the block cache; nothing
 * when p is no longer live. */
void pool_meta_install(pool *pl, const seg_ptr *p, const void *blk);
/* A block is no longer referenced by the metadata being built (accounting only). */
void pool_meta_free(pool *pl, const seg_ptr *p);
/* The three above as a block-I/O table for record arrays (ctx: the pool). */
const bio_ops *pool_bio(void);

/* Segment table of a data segment (for the index's locality cache and rebuilds):
 * fills *h and up to cap entries; returns the entry count or -errno. */
int pool_read_seg_table(pool *pl, uint64_t row, seg_header *h, seg_entry *ents, size_t cap);

/* Only the header of the segment in a row (the array reconstructs a bad strip):
 * 0 or -errno. For passes that pick segments by their header flags. */
int pool_read_seg_header(pool *pl, uint64_t row, seg_header *h);

/* Commit the transaction group: upper (<= POOL_UPPER_MAX bytes) is the store's part
 * of the root block, written with it. On return everything added so far is durable. */
int pool_commit(pool *pl, const void *upper, size_t upper_len, bks_err *e);
/* The upper part of the root block as last committed (at open). */
size_t pool_upper(const pool *pl, void *buf, size_t cap);

/* Visit the pool's own metadata blocks (row table, last committed root block). */
int pool_visit_meta(const pool *pl, int (*fn)(void *ctx, const seg_ptr *p), void *ctx);
/* Segment ids of the segments being filled (0 when none): never collected. */
void pool_open_segs(const pool *pl, uint64_t *data_seg, uint64_t *meta_seg);
/* Segment ids below this existed when it was read (the collector's horizon). */
uint64_t pool_next_seg_id(const pool *pl);
/* Give the array back and free the pool (a create/open that failed above it). */
arr *pool_release(pool *pl);

/* Anything to commit (rows allocated or freed since the last commit)? */
int pool_is_dirty(const pool *pl);

/* --- the intent log's view (store_sync) --- */
/* Write every open segment now (sealed as it is) and wait until every segment added
 * so far is on the array (not yet durable: arr_ilog_write flushes). */
int pool_seal(pool *pl);
/* Rows that got a segment in the txg being built, in order (cleared by a commit). */
typedef struct pool_newrow {
	uint64_t row, seg_id;
	uint32_t kind;           /* enum seg_kind */
} pool_newrow;
size_t pool_new_rows(const pool *pl, const pool_newrow **out);
/* Replay: the log says segment seg_id of kind was written to row after the last
 * commit. Check the whole row (the array repairs what it can), and record it as in
 * use. -EINVAL if the row holds something else, -EEXIST if the row is in use.
 * A segment that earlier records carried as open (pool_replay_item) is dropped from
 * memory for the row's own copy; *replayed says how many of its items those records
 * gave already (0 for any other row). */
int pool_replay_row(pool *pl, const pool_newrow *nr, uint32_t *replayed, bks_err *e);

/* --- open segments carried by the intent log (small syncs seal no row) ---
 * A sync that would seal a segment holding a few KiB instead copies the items added
 * since the previous record into the record; the segment stays open and keeps
 * filling. Replay rebuilds it item by item at the same offsets, so every pointer a
 * record's objects hold into it is valid again, and the commit after replay writes
 * it. */
typedef struct pool_oseg {
	uint64_t seg_id;         /* 0: no segment of this kind is open */
	uint64_t row;
	uint32_t nitems;
} pool_oseg;
void pool_oseg_info(const pool *pl, int kind, pool_oseg *o);
/* Item i of the open segment of kind: its table entry and its stored bytes (valid
 * until the next call that adds to the pool). */
int pool_oseg_item(const pool *pl, int kind, uint32_t i, seg_entry *en,
                   const uint8_t **stored);
/* Write the open segment of kind now (sealed as it is); pool_drain waits until every
 * sealed segment is on the array. */
int pool_seal_kind(pool *pl, int kind);
int pool_drain(pool *pl);
/* Replay item `index` of open segment seg_id (kind, row) from a record: index 0
 * begins the segment (its row must be free in the last commit), later ones must
 * follow the items replayed so far and land at the offset the record gives. Fills
 * *out with the item's pointer. -EINVAL for a record that does not line up. */
int pool_replay_item(pool *pl, int kind, uint64_t seg_id, uint64_t row, uint32_t index,
                     const seg_entry *en, const uint8_t *stored, seg_ptr *out, bks_err *e);

/* Metadata compaction: mark every row-table block for which pred is true for
 * rewriting by the next commit (see barray_relocate); the committed root block is
 * replaced by every commit anyway. Returns the number of blocks marked. */
uint64_t pool_relocate_meta(pool *pl, int (*pred)(void *ctx, const seg_ptr *p), void *ctx);

/* --- space: the rows kept back for commits and the collector ---
 *
 * Like ZFS's slop space: a pool that let new data take its last rows could never
 * commit again (a commit writes the row table, the object table, an index run and a
 * root block to new rows), nor collect (copying live chunks forward takes rows, and
 * the rows a collection frees are reusable only after the next commit). So every row
 * allocation has a class, and each class stops at its own floor:
 *   POOL_SPACE_DATA    new data (chunks and maps of ordinary writes): needs more
 *                      free rows than reserve_total;
 *   POOL_SPACE_WORK    the collector's copy-forward, the directory rewrites of
 *                      deletes: needs more than reserve_commit;
 *   POOL_SPACE_COMMIT  a commit (and what it flushes first): more than C, or any
 *                      free row when the txg freed at least C rows (a commit after
 *                      the collector, which gives back more than it takes);
 *   POOL_SPACE_RECOVERY the commit that ends an intent log replay at open: any free
 *                      row (a store that cannot replay cannot open at all).
 * C = the rows to hold every block a commit may write now (the whole row table, and
 * what the reserve callback says for the store: the whole object table, the next
 * index sync) packed into metadata segments, plus POOL_COMMIT_SLACK rows (segments
 * a commit seals half full, directory rewrites). reserve_commit = 2 C (commits
 * while full, and the one after the collector); reserve_total = reserve_commit + the
 * work reserve: nrows / 64 (at least POOL_WORK_MIN rows, at most
 * POOL_WORK_MAX_BYTES), room for the collector's steps and for deletes (each
 * synced delete seals up to two rows).
 * Once the free rows are down to reserve_total the pool is full, and new data is
 * refused until they are POOL_FULL_MARGIN (or nrows / 128) rows above it again.
 * Refusals are -ENOSPC and change nothing: the pool is never latched read-only for
 * lack of space, a failed commit can be retried, and data is accepted again as soon
 * as a commit makes rows freed by the collector reusable. docs/architecture.md
 * ("When the array is full"). */
enum pool_space { POOL_SPACE_DATA = 0, POOL_SPACE_WORK = 1, POOL_SPACE_COMMIT = 2,
	POOL_SPACE_RECOVERY = 3 };
#define POOL_COMMIT_SLACK 4
#define POOL_WORK_MIN 16
#define POOL_WORK_MAX_BYTES (64ull << 30)
#define POOL_FULL_MARGIN 8  /* full ends at reserve_total + max(this, nrows / 128) */
/* The class of the row allocations that follow (one caller at a time); returns the
 * previous class, for the caller to restore. */
int pool_set_space(pool *pl, int cls);
/* The same, but never lowers the class (a commit inside a recovery stays one). */
int pool_raise_space(pool *pl, int cls);
/* The store's part of a commit, in bytes of metadata blocks it may write now (asked
 * at every row allocation). */
void pool_set_reserve_fn(pool *pl, uint64_t (*fn)(void *ctx), void *ctx);
typedef struct pool_space_info {
	uint64_t rows_free;        /* allocatable now (freed rows count after the commit) */
	uint64_t reserve_commit, reserve_total;
	int full;                  /* new data is refused: rows_free came down to
	                            * reserve_total and is not yet a margin above it */
	int commit_enospc;         /* the last commit failed for lack of rows */
} pool_space_info;
void pool_get_space(pool *pl, pool_space_info *out);
/* Bytes of metadata blocks a record array of count records of rec bytes consists of
 * (the most a sync of it writes). */
uint64_t pool_table_bytes(const pool *pl, uint64_t count, uint32_t rec);
/* May allocations of class cls take rows more rows now? */
int pool_space_ok(pool *pl, int cls, uint64_t rows);
/* Bytes that allocations of class cls may still add (room in the open data segment
 * plus the rows above the class's floor). */
uint64_t pool_space_room(pool *pl, int cls);

/* Stats. */
typedef struct pool_stats {
	uint64_t rows_total, rows_data, rows_meta, rows_free;
	uint64_t chunks_stored, bytes_stored_raw, bytes_stored;  /* this process */
	uint64_t meta_bytes_written, meta_bytes_freed;
	uint64_t cache_hits, cache_misses;
	uint64_t rows_reserved;    /* reserve_total (pool_get_space) */
	uint64_t enospc;           /* allocations refused for lack of rows (this process) */
} pool_stats;
void pool_get_stats(const pool *pl, pool_stats *st);

#endif /* BKS_POOL_H */
