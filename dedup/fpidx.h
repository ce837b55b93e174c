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
	uint64_t block_reads;     /* entry blocks (not in the pool's block cache) and
	                           * segment tables read by lookups */
	/* fpidx_pf_*: reads made outside the lock, what was installed, prefetches
	 * dropped because the index changed between plan and install, items read that
	 * failed their check (a row reused meanwhile, a damaged strip: left to the
	 * lookup, which reads through the array's repair) */
	uint64_t pf_reads, pf_blocks, pf_tables, pf_dropped, pf_rejected;
} fpidx_stats;
void fpidx_get_stats(const fpidx *x, fpidx_stats *st);

/* --- prefetch: the reads of a batch of lookups, made outside the caller's lock ---
 *
 * After a commit a duplicate stream's fingerprints are no longer in the memtable, and
 * the first lookup of each old segment reads an entry block and that segment's table
 * from the array. A prefetch moves those reads out of the lock the lookups run under:
 *  1. fpidx_pf_begin, then fpidx_pf_want for each fingerprint of the batch (under the
 *     lock, short: memory only): which entry blocks the lookups will need that the
 *     pool does not cache (an entry block the pool caches is searched at once);
 *  2. fpidx_pf_read (without the lock; touches only pf and the array, which is
 *     thread-safe): reads those blocks, finds each fingerprint's segment, reads the
 *     segments' tables; every block and table checked as a lookup's read checks it;
 *  3. fpidx_pf_install (under the lock again): if the index did not change since 1
 *     (its generation), the blocks go into the pool's block cache and the tables into
 *     the locality cache, each only while its row still holds it; else nothing.
 * The lookups that follow then hit memory; anything the prefetch did not get they
 * read as before. Liveness is still checked by every lookup. fpidx.c has the
 * concurrency story. A pf belongs to one thread (one stream); any number may exist. */
typedef struct fpidx_pf fpidx_pf;
int fpidx_pf_new(fpidx_pf **out);
void fpidx_pf_free(fpidx_pf *pf); /* accepts NULL */
void fpidx_pf_begin(fpidx *x, fpidx_pf *pf);
/* 1 when fp's lookup needs a read the prefetch will try, 0 when not (in memory, or
 * not readable from outside: a block still in the pool's buffers), -ENOMEM. */
int fpidx_pf_want(fpidx *x, fpidx_pf *pf, const uint8_t fp[FP_LEN]);
/* Items read (blocks and tables); failures only make the prefetch smaller. */
int fpidx_pf_read(fpidx_pf *pf);
/* Blocks and tables installed (0 when the index changed: dropped). */
int fpidx_pf_install(fpidx *x, fpidx_pf *pf);
/* The index's generation: changes whenever its runs or their blocks change. */
uint64_t fpidx_gen(const fpidx *x);

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
