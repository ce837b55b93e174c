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
 * Threads: one thread at a time (the store's lock). The callbacks the pool gives the
 * array (which rows are live, scrub's data check) are safe from the array's own
 * background threads.
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

/* Metadata blocks (len <= POOL_BLOCK_MAX). Reads go through the block cache. */
int pool_meta_write(pool *pl, const void *blk, uint32_t len, seg_ptr *out);
int pool_meta_read(pool *pl, const seg_ptr *p, void *out, size_t cap);
/* A block is no longer referenced by the metadata being built (accounting only). */
void pool_meta_free(pool *pl, const seg_ptr *p);
/* The three above as a block-I/O table for record arrays (ctx: the pool). */
const bio_ops *pool_bio(void);

/* Segment table of a data segment (for the index's locality cache and rebuilds):
 * fills *h and up to cap entries; returns the entry count or -errno. */
int pool_read_seg_table(pool *pl, uint64_t row, seg_header *h, seg_entry *ents, size_t cap);

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
 * so far is on the array (not yet durable: arr_log_write flushes). */
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

/* Stats. */
typedef struct pool_stats {
	uint64_t rows_total, rows_data, rows_meta, rows_free;
	uint64_t chunks_stored, bytes_stored_raw, bytes_stored;  /* this process */
	uint64_t meta_bytes_written, meta_bytes_freed;
	uint64_t cache_hits, cache_misses;
} pool_stats;
void pool_get_stats(const pool *pl, pool_stats *st);

#endif /* BKS_POOL_H */
