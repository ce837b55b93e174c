/* dedup/barray.c: see barray.h.
 *
 * Block formats (docs/format.md "Record arrays"): every block starts with a 16-byte
 * header: magic (4: "BKAL" leaf, "BKAD" directory, "BKAT" top), version (2), count of
 * records or pointers in it (2, after the header), index of its first element (8).
 * Integrity comes from the parent's pointer (xxh3 of the stored bytes); the header
 * lets a reader check it has the block it expected (kind, position). */
#include <config.h>

#include "dedup/barray.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/endian.h"

#define BA_HDR 16
static const char M_LEAF[4] = {'B', 'K', 'A', 'L'};
static const char M_DIR[4] = {'B', 'K', 'A', 'D'};
static const char M_TOP[4] = {'B', 'K', 'A', 'T'};

struct barray {
	const bio_ops *ops;
	void *ctx;
	uint32_t rec, block;
	uint32_t per_leaf, per_dir; /* records per leaf, pointers per dir/top */
	uint64_t count;
	uint8_t *recs;              /* count * rec bytes */
	uint64_t cap;               /* records allocated */
	uint64_t nleaves;
	seg_ptr *leaf;              /* per leaf: its current on-disk version */
	uint8_t *leaf_dirty;
	uint64_t ndirs;
	seg_ptr *dir;
	uint8_t *dir_dirty;
	seg_ptr top;
	int top_dirty;
	uint8_t *buf;               /* one block */
};

static void put_hdr(uint8_t *b, const char *magic, uint16_t n, uint64_t first)
{
	memcpy(b, magic, 4);
	le_put16(b + 4, 1);
	le_put16(b + 6, n);
	le_put64(b + 8, first);
}

static int check_hdr(const uint8_t *b, const char *magic, uint16_t n, uint64_t first)
{
	return !memcmp(b, magic, 4) && le_get16(b + 4) == 1 && le_get16(b + 6) == n &&
	       le_get64(b + 8) == first;
}

int barray_new(const bio_ops *ops, void *ctx, uint32_t rec_size, uint32_t block,
               barray **out)
{
	barray *b;
	if (rec_size == 0 || block < 1024 || rec_size > block - BA_HDR)
		return -EINVAL;
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->ops = ops;
	b->ctx = ctx;
	b->rec = rec_size;
	b->block = block;
	b->per_leaf = (block - BA_HDR) / rec_size;
	b->per_dir = BKS_MIN((block - BA_HDR) / SEG_PTR_ENC, 65535u);
	b->buf = malloc(block);
	if (!b->buf) {
		free(b);
		return -ENOMEM;
	}
	*out = b;
	return 0;
}

void barray_free(barray *b)
{
	if (!b)
		return;
	free(b->recs);
	free(b->leaf);
	free(b->leaf_dirty);
	free(b->dir);
	free(b->dir_dirty);
	free(b->buf);
	free(b);
}

uint64_t barray_count(const barray *b) { return b->count; }

static int grow(void **p, uint64_t old_n, uint64_t new_n, size_t sz)
{
	void *q = realloc(*p, (size_t)(new_n ? new_n : 1) * sz);
	if (!q)
		return -ENOMEM;
	if (new_n > old_n)
		memset((char *)q + old_n * sz, 0, (size_t)(new_n - old_n) * sz);
	*p = q;
	return 0;
}

int barray_resize(barray *b, uint64_t n)
{
	uint64_t nl = (n + b->per_leaf - 1) / b->per_leaf;
	uint64_t nd = (nl + b->per_dir - 1) / b->per_dir;
	if (nd > b->per_dir)
		return -EFBIG;
	if (n > b->cap) {
		uint64_t cap = BKS_MAX(n, b->cap * 2);
		if (grow((void **)&b->recs, b->cap, cap, b->rec) < 0)
			return -ENOMEM;
		b->cap = cap;
	}
	if (n < b->count)
		memset(b->recs + n * b->rec, 0, (size_t)(b->count - n) * b->rec);
	if (grow((void **)&b->leaf, b->nleaves, nl, sizeof(seg_ptr)) < 0 ||
	    grow((void **)&b->leaf_dirty, b->nleaves, nl, 1) < 0 ||
	    grow((void **)&b->dir, b->ndirs, nd, sizeof(seg_ptr)) < 0 ||
	    grow((void **)&b->dir_dirty, b->ndirs, nd, 1) < 0)
		return -ENOMEM;
	/* Leaves whose record count changed are rewritten; dropped ones are freed. */
	for (uint64_t l = nl; l < b->nleaves; l++)
		if (!seg_ptr_is_null(&b->leaf[l]))
			b->ops->free(b->ctx, &b->leaf[l]);
	for (uint64_t d = nd; d < b->ndirs; d++)
		if (!seg_ptr_is_null(&b->dir[d]))
			b->ops->free(b->ctx, &b->dir[d]);
	if (n != b->count) {
		if (nl)
			b->leaf_dirty[nl - 1] = 1;
		if (b->count && (b->count - 1) / b->per_leaf < nl)
			b->leaf_dirty[(b->count - 1) / b->per_leaf] = 1;
		for (uint64_t l = b->nleaves; l < nl; l++)
			b->leaf_dirty[l] = 1;
		b->top_dirty = 1;
	}
	b->count = n;
	b->nleaves = nl;
	b->ndirs = nd;
	return 0;
}

const void *barray_get(const barray *b, uint64_t i)
{
	BKS_PANIC_IF(i >= b->count, "barray index %llu >= %llu", (unsigned long long)i,
	             (unsigned long long)b->count);
	return b->recs + i * b->rec;
}

void *barray_mut(barray *b, uint64_t i)
{
	BKS_PANIC_IF(i >= b->count, "barray index %llu >= %llu", (unsigned long long)i,
	             (unsigned long long)b->count);
	b->leaf_dirty[i / b->per_leaf] = 1;
	return b->recs + i * b->rec;
}

int barray_is_dirty(const barray *b)
{
	if (b->top_dirty)
		return 1;
	for (uint64_t l = 0; l < b->nleaves; l++)
		if (b->leaf_dirty[l])
			return 1;
	return 0;
}

static void encode_root(const barray *b, uint8_t root[BARRAY_ROOT_ENC])
{
	le_put64(root, b->count);
	le_put32(root + 8, b->rec);
	le_put32(root + 12, b->block);
	seg_ptr_encode(&b->top, root + 16);
}

/* Write one block of n elements of size esz starting at element `first`. */
static int write_block(barray *b, const char *magic, uint64_t first, const void *elems,
                       uint32_t n, uint32_t esz, seg_ptr *old, seg_ptr *out)
{
	put_hdr(b->buf, magic, (uint16_t)n, first);
	memcpy(b->buf + BA_HDR, elems, (size_t)n * esz);
	int r = b->ops->write(b->ctx, b->buf, BA_HDR + n * esz, out);
	if (r == 0 && old && !seg_ptr_is_null(old))
		b->ops->free(b->ctx, old);
	return r;
}

int barray_sync(barray *b, uint8_t root[BARRAY_ROOT_ENC])
{
	uint8_t *ptrs = malloc((size_t)b->per_dir * SEG_PTR_ENC);
	int r = 0;
	if (!ptrs)
		return -ENOMEM;
	for (uint64_t l = 0; l < b->nleaves; l++) {
		if (!b->leaf_dirty[l])
			continue;
		uint64_t first = l * b->per_leaf;
		uint32_t n = (uint32_t)BKS_MIN((uint64_t)b->per_leaf, b->count - first);
		seg_ptr np;
		/* Clear before writing: the write itself may change a record of this very
		 * leaf (the pool allocating a row for the block), which must mark it dirty
		 * again rather than be lost. */
		b->leaf_dirty[l] = 0;
		if ((r = write_block(b, M_LEAF, first, b->recs + first * b->rec, n, b->rec,
		                     &b->leaf[l], &np)) < 0) {
			b->leaf_dirty[l] = 1;
			goto out;
		}
		b->leaf[l] = np;
		b->dir_dirty[l / b->per_dir] = 1;
	}
	for (uint64_t d = 0; d < b->ndirs; d++) {
		if (!b->dir_dirty[d])
			continue;
		uint64_t first = d * b->per_dir;
		uint32_t n = (uint32_t)BKS_MIN((uint64_t)b->per_dir, b->nleaves - first);
		for (uint32_t i = 0; i < n; i++)
			seg_ptr_encode(&b->leaf[first + i], ptrs + (size_t)i * SEG_PTR_ENC);
		seg_ptr np;
		b->dir_dirty[d] = 0;
		if ((r = write_block(b, M_DIR, first, ptrs, n, SEG_PTR_ENC, &b->dir[d], &np)) < 0) {
			b->dir_dirty[d] = 1;
			goto out;
		}
		b->dir[d] = np;
		b->top_dirty = 1;
	}
	if (b->top_dirty) {
		for (uint64_t d = 0; d < b->ndirs; d++)
			seg_ptr_encode(&b->dir[d], ptrs + (size_t)d * SEG_PTR_ENC);
		seg_ptr np;
		b->top_dirty = 0;
		if ((r = write_block(b, M_TOP, 0, ptrs, (uint32_t)b->ndirs, SEG_PTR_ENC, &b->top,
		                     &np)) < 0) {
			b->top_dirty = 1;
			goto out;
		}
		b->top = np;
	}
	encode_root(b, root);
out:
	free(ptrs);
	return r;
}

/* Read a block and check its header; returns the element area. */
static const uint8_t *read_block(barray *b, const seg_ptr *p, const char *magic,
                                 uint32_t n, uint64_t first, uint32_t esz, bks_err *e)
{
	int r = b->ops->read(b->ctx, p, b->buf, b->block);
	if (r < 0) {
		bks_fail(e, r, "record array: %.4s block at row %llu (segment %llu) unreadable: %s",
		         magic, (unsigned long long)p->row, (unsigned long long)p->seg_id,
		         strerror(-r));
		return NULL;
	}
	if (p->rlen != BA_HDR + n * esz || !check_hdr(b->buf, magic, (uint16_t)n, first)) {
		bks_fail(e, -EINVAL, "record array: block at row %llu is not the %.4s block "
		         "expected", (unsigned long long)p->row, magic);
		return NULL;
	}
	return b->buf + BA_HDR;
}

int barray_load(const bio_ops *ops, void *ctx, const uint8_t root[BARRAY_ROOT_ENC],
                barray **out, bks_err *e)
{
	barray *b;
	uint64_t count = le_get64(root);
	int r = barray_new(ops, ctx, le_get32(root + 8), le_get32(root + 12), &b);
	if (r < 0)
		return bks_fail(e, r, "record array: bad root (record %u, block %u)",
		                le_get32(root + 8), le_get32(root + 12));
	seg_ptr_decode(root + 16, &b->top);
	if ((r = barray_resize(b, count)) < 0) {
		bks_fail(e, r, "record array: %llu records", (unsigned long long)count);
		goto fail;
	}
	r = -EINVAL;
	if (b->ndirs && seg_ptr_is_null(&b->top)) {
		bks_fail(e, r, "record array: no top block");
		goto fail;
	}
	if (b->ndirs) {
		const uint8_t *t = read_block(b, &b->top, M_TOP, (uint32_t)b->ndirs, 0,
		                              SEG_PTR_ENC, e);
		if (!t)
			goto fail;
		for (uint64_t d = 0; d < b->ndirs; d++)
			seg_ptr_decode(t + d * SEG_PTR_ENC, &b->dir[d]);
	}
	for (uint64_t d = 0; d < b->ndirs; d++) {
		uint64_t first = d * b->per_dir;
		uint32_t n = (uint32_t)BKS_MIN((uint64_t)b->per_dir, b->nleaves - first);
		const uint8_t *t = read_block(b, &b->dir[d], M_DIR, n, first, SEG_PTR_ENC, e);
		if (!t)
			goto fail;
		for (uint32_t i = 0; i < n; i++)
			seg_ptr_decode(t + (size_t)i * SEG_PTR_ENC, &b->leaf[first + i]);
	}
	for (uint64_t l = 0; l < b->nleaves; l++) {
		uint64_t first = l * b->per_leaf;
		uint32_t n = (uint32_t)BKS_MIN((uint64_t)b->per_leaf, b->count - first);
		const uint8_t *t = read_block(b, &b->leaf[l], M_LEAF, n, first, b->rec, e);
		if (!t)
			goto fail;
		memcpy(b->recs + first * b->rec, t, (size_t)n * b->rec);
	}
	memset(b->leaf_dirty, 0, b->nleaves);
	memset(b->dir_dirty, 0, b->ndirs);
	b->top_dirty = 0;
	*out = b;
	return 0;
fail:
	barray_free(b);
	return r;
}

int barray_visit(const barray *b, int (*fn)(void *ctx, const seg_ptr *p), void *ctx)
{
	int r;
	if (!seg_ptr_is_null(&b->top) && (r = fn(ctx, &b->top)) != 0)
		return r;
	for (uint64_t d = 0; d < b->ndirs; d++)
		if (!seg_ptr_is_null(&b->dir[d]) && (r = fn(ctx, &b->dir[d])) != 0)
			return r;
	for (uint64_t l = 0; l < b->nleaves; l++)
		if (!seg_ptr_is_null(&b->leaf[l]) && (r = fn(ctx, &b->leaf[l])) != 0)
			return r;
	return 0;
}

uint64_t barray_relocate(barray *b, int (*pred)(void *ctx, const seg_ptr *p), void *ctx)
{
	uint64_t n = 0;
	/* A dirty leaf makes its directory and the top dirty at the sync; a directory
	 * or the top can also sit in such a row while its children do not. */
	for (uint64_t l = 0; l < b->nleaves; l++)
		if (!seg_ptr_is_null(&b->leaf[l]) && pred(ctx, &b->leaf[l])) {
			b->leaf_dirty[l] = 1;
			n++;
		}
	for (uint64_t d = 0; d < b->ndirs; d++)
		if (!seg_ptr_is_null(&b->dir[d]) && pred(ctx, &b->dir[d])) {
			b->dir_dirty[d] = 1;
			b->top_dirty = 1; /* rewritten anyway; and barray_is_dirty sees it */
			n++;
		}
	if (!seg_ptr_is_null(&b->top) && pred(ctx, &b->top)) {
		b->top_dirty = 1;
		n++;
	}
	return n;
}
