/* dedup/fpidx.h: the fingerprint index: SHA-256 fingerprint -> where the chunk is.
 *
 * Log-structured, so a commit never rewrites what it did not change:
 *  - new entries go to an in-RAM table (the memtable) until the commit;
 *  - a commit writes the memtable as a sorted, immutable run: entry blocks on the
 *    array, plus a sparse directory (first fingerprint of every block) and a Bloom
 *    filter, both loaded into RAM at open (about 1.4 bytes of RAM per chunk);
 *  - when there are too many runs they are merged into one, dropping entries whose
 *    segment has been freed.
 * A lookup asks the memtable, then a locality cache of whole segment tables (a
 * stream that repeats an old backup finds its next chunks in the segment that held
 * the last one, as Data Domain's locality-preserved caching does), then the runs from
 * newest to oldest, each behind its Bloom filter: a new chunk rarely costs a read.
 * An entry counts only while its row still holds its segment (pool_ptr_live), in
 * every layer: the collector may free a row written in this very txg, so a dead
 * memtable entry is dropped at lookup and never written to a run.
 */
#ifndef BKS_FPIDX_H
#define BKS_FPIDX_H

#include <stddef.h>
#include <stdint.h>

#include "dedup/pool.h"

typedef struct fpidx fpidx;

#define FPIDX_ROOT_ENC SEG_PTR_ENC /* the run list block's pointer (null: empty) */
/* The index's metadata blocks (entry blocks, run list, directories, Bloom filters).
 * Fixed: lookups find an entry by its block and slot, so every run of a store must
 * use the same size; the pool's meta_block must be at least this (store_create and
 * store_open refuse a smaller one). */
#define FPIDX_BLOCK (32u << 10)

int fpidx_new(pool *pl, fpidx **out);
int fpidx_load(pool *pl, const uint8_t root[FPIDX_ROOT_ENC], fpidx **out, bks_err *e);
void fpidx_free(fpidx *x); /* accepts NULL */

/* 1 and *loc when found (and live), 0 when not, or -errno. */
int fpidx_lookup(fpidx *x, const uint8_t fp[FP_LEN], seg_ptr *loc);
/* Another live copy of chunk fp than the one at *not (a chunk whose copy there is
 * damaged beyond what the array repairs and that was stored again, store_repair_chunk):
 * the memtable, then the runs from newest to oldest; never the locality cache, whose
 * segment tables may name the damaged copy. 1 and *loc, 0 when there is none, -errno. */
int fpidx_lookup_other(fpidx *x, const uint8_t fp[FP_LEN], const seg_ptr *not,
                       seg_ptr *loc);
/* Record where a chunk is (a new chunk, or one moved by GC: the newest wins). */
int fpidx_insert(fpidx *x, const uint8_t fp[FP_LEN], const seg_ptr *loc);
/* Write the memtable as a run (merging runs when there are many); fills root. */
int fpidx_sync(fpidx *x, uint8_t root[FPIDX_ROOT_ENC]);
/* Merge every run into one now (drops dead entries). */
int fpidx_compact(fpidx *x);
/* The most fpidx_sync would write now (all = 0), or fpidx_compact (all = 1), in
 * bytes of metadata blocks (each counted whole): for the pool's commit reserve. */
uint64_t fpidx_sync_bytes(const fpidx *x, int all);

typedef struct fpidx_stats {
	uint64_t entries;        /* in runs + memtable (dead ones included until merged) */
	uint32_t runs;
	uint64_t ram_bytes;      /* Bloom filters + directories + memtable + caches */
	uint64_t ram_fixed_bytes;/* the part that grows with the chunk count */
	uint64_t lookups, memtable_hits, locality_hits, run_hits, bloom_skips, misses;
	uint64_t block_reads;
} fpidx_stats;
void fpidx_get_stats(const fpidx *x, fpidx_stats *st);

/* Visit every metadata block the index consists of now (run list, directories,
 * Bloom filters, entry blocks). */
int fpidx_visit(const fpidx *x, int (*fn)(void *ctx, const seg_ptr *p), void *ctx);

/* Metadata compaction: every block of the index for which pred is true is moved:
 * entry blocks are copied now (lookups read them), directory and Bloom blocks and the
 * run list are rewritten by the next fpidx_sync. Adds the blocks moved or marked to
 * *moved and the bytes written now to *bytes. 0 or -errno. */
int fpidx_relocate(fpidx *x, int (*pred)(void *ctx, const seg_ptr *p), void *ctx,
                   uint64_t *moved, uint64_t *bytes);

/* Rebuild from the segments themselves (every DATA row's table). */
int fpidx_rebuild(pool *pl, fpidx **out, bks_err *e);

#endif /* BKS_FPIDX_H */
