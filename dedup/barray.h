/* dedup/barray.h: a record array (docs/format.md "Record arrays"): a persistent array
 * of fixed-size records, copy-on-write.
 *
 * The records live in RAM; on disk they are leaf blocks, found through directory
 * blocks, found through one top block:  root -> top -> dirs -> leaves. A sync writes
 * only the leaves changed since the last sync, then the directory blocks that point
 * to them, then the top block, each to a new place (the old versions are handed to
 * ops->free). Capacity with 32 KiB blocks and 8-byte records: ~10^10 records.
 *
 * Used for the row table and the object table. One thread at a time.
 */
#ifndef BKS_BARRAY_H
#define BKS_BARRAY_H

#include <stddef.h>
#include <stdint.h>

#include "dedup/segment.h"

/* Where blocks go: the pool's metadata block I/O. */
typedef struct bio_ops {
	int (*write)(void *ctx, const void *blk, uint32_t len, seg_ptr *out);
	int (*read)(void *ctx, const seg_ptr *p, void *out, size_t cap);
	void (*free)(void *ctx, const seg_ptr *p);
} bio_ops;

typedef struct barray barray;

#define BARRAY_ROOT_ENC 56 /* count (8), rec_size (4), block (4), top pointer (40) */

int barray_new(const bio_ops *ops, void *ctx, uint32_t rec_size, uint32_t block,
               barray **out);
/* Load from an encoded root (every block is read and checked now). */
int barray_load(const bio_ops *ops, void *ctx, const uint8_t root[BARRAY_ROOT_ENC],
                barray **out, bks_err *e);
void barray_free(barray *b); /* accepts NULL */

uint64_t barray_count(const barray *b);
/* Grow (new records zero) or shrink to n records. */
int barray_resize(barray *b, uint64_t n);
const void *barray_get(const barray *b, uint64_t i);
void *barray_mut(barray *b, uint64_t i); /* marks the record's leaf dirty */
int barray_is_dirty(const barray *b);

/* Visit the pointer of every block the array consists of now (top, directories,
 * leaves). Stops at the first non-zero return. */
int barray_visit(const barray *b, int (*fn)(void *ctx, const seg_ptr *p), void *ctx);

/* Mark for rewriting every block (leaf, directory, top) for which pred is true (the
 * collector: blocks in rows it is emptying), so the next barray_sync writes them, and
 * the blocks above them, to new places. Nothing is read or written now: the records
 * are in RAM. Returns the number of blocks marked. */
uint64_t barray_relocate(barray *b, int (*pred)(void *ctx, const seg_ptr *p), void *ctx);

/* Write what changed; fills root. Returns 0 or -errno. */
int barray_sync(barray *b, uint8_t root[BARRAY_ROOT_ENC]);

#endif /* BKS_BARRAY_H */
