/* dedup/store_repl.c: see store_repl.h. The extents, stored bytes and the writer verb
 * that replication uses; built on the store's private map walk and pool reads, so the
 * twin gets the chunks exactly as this store keeps them (already compressed). */
#include <config.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "dedup/fp.h"
#include "dedup/store_int.h"
#include "dedup/store_repl.h"

struct ext_walk {
	int (*fn)(void *ctx, const store_mapext *x);
	void *ctx;
};

static int ext_cb(void *ctx, const map_ext *e)
{
	struct ext_walk *w = ctx;
	store_mapext x;
	memset(&x, 0, sizeof(x));
	x.off = e->off;
	x.len = e->len;
	x.hole = map_ext_is_hole(e);
	memcpy(x.fp, e->fp, sizeof(x.fp));
	x.where = e->p;
	return w->fn(w->ctx, &x);
}

int store_extents(store *s, uint64_t id, int (*fn)(void *ctx, const store_mapext *x),
                  void *ctx)
{
	obj_rec o;
	int r = store_obj_get(s, id, &o);
	if (r < 0)
		return r;
	if (o.depth == 0)
		return 0;
	struct ext_walk w = {fn, ctx};
	return map_walk(s->pl, &o, s->p.pool.meta_block, ext_cb, NULL, &w);
}

int store_extent_stored(store *s, const store_mapext *x, void *out, size_t cap,
                        uint32_t *slen, int *codec)
{
	return store_extent_stored_ex(s, x, out, cap, slen, codec, NULL);
}

int store_extent_stored_ex(store *s, const store_mapext *x, void *out, size_t cap,
                           uint32_t *slen, int *codec, int *deferred)
{
	if (x->hole)
		return -EINVAL;
	seg_ptr p = x->where, other;
	int r = pool_read_stored(s->pl, &p, out, cap);
	if (r == -ESTALE) {
		/* The collector moved the chunk: the index knows where it is now. */
		int f = fpidx_lookup(s->idx, x->fp, &p);
		if (f < 0)
			return f;
		if (f == 0 || p.rlen != x->len)
			return -ENOENT;
		r = pool_read_stored(s->pl, &p, out, cap);
	}
	if (r == -EIO) {
		/* Damaged here, but maybe repaired (store_repair_chunk): another copy. */
		int f = fpidx_lookup_other(s->idx, x->fp, &p, &other);
		if (f < 0)
			return f;
		if (f > 0 && other.rlen == x->len && (r = pool_read_stored(s->pl, &other, out, cap)) == 0)
			p = other;
	}
	if (r < 0)
		return r;
	*slen = p.slen;
	*codec = p.codec;
	if (deferred) {
		/* The copy just read (after a move, the index's): deferred or not is in
		 * its segment's table, not in the pointer. */
		int d = store_defer_item(s, &p);
		if (d < 0)
			return d;
		*deferred = d;
	}
	return 0;
}

struct store_stored_ck {
	ZSTD_DCtx *dctx;
	fp_ctx *fpc;
	uint8_t *raw;
	size_t cap;
};

int store_stored_ck_new(store_stored_ck **out)
{
	store_stored_ck *k = calloc(1, sizeof(*k));
	if (!k || !(k->dctx = ZSTD_createDCtx()) || fp_ctx_new(&k->fpc) < 0) {
		store_stored_ck_free(k);
		return -ENOMEM;
	}
	*out = k;
	return 0;
}

void store_stored_ck_free(store_stored_ck *k)
{
	if (!k)
		return;
	ZSTD_freeDCtx(k->dctx);
	fp_ctx_free(k->fpc);
	free(k->raw);
	free(k);
}

static int stored_args_ok(const store *s, uint32_t slen, uint32_t rlen, int codec)
{
	return rlen > 0 && rlen <= s->p.cdc.max && slen > 0 &&
	       (codec == SEG_RAW || codec == SEG_ZSTD) && (codec != SEG_RAW || slen == rlen);
}

/* store_put_checked also takes SEG_RAW_DEFERRED (raw bytes, stored flagged). */
static int put_args_ok(const store *s, uint32_t slen, uint32_t rlen, int codec)
{
	return codec == SEG_RAW_DEFERRED ? stored_args_ok(s, slen, rlen, SEG_RAW)
	                                 : stored_args_ok(s, slen, rlen, codec);
}

int store_stored_check(const store *s, store_stored_ck *k, const uint8_t fp[32],
                       const void *stored, uint32_t slen, uint32_t rlen, int codec)
{
	uint8_t got[FP_LEN];
	seg_ptr p;
	int r;
	if (!stored_args_ok(s, slen, rlen, codec))
		return -EINVAL;
	/* Identity rests on SHA-256 of the raw bytes: decode and hash before anything
	 * is kept, so a twin never stores bytes under a fingerprint they do not have.
	 * A raw chunk is hashed where it is (no copy). */
	const void *raw = stored;
	if (codec == SEG_ZSTD) {
		if (k->cap < rlen) {
			uint8_t *nb = realloc(k->raw, rlen);
			if (!nb)
				return -ENOMEM;
			k->raw = nb;
			k->cap = rlen;
		}
		memset(&p, 0, sizeof(p));
		p.codec = (uint8_t)codec;
		p.slen = slen;
		p.rlen = rlen;
		if (seg_item_decode(k->dctx, &p, stored, k->raw, rlen) < 0)
			return -EBADMSG;
		raw = k->raw;
	}
	if ((r = fp_compute(k->fpc, raw, rlen, got)) < 0)
		return r;
	return memcmp(got, fp, FP_LEN) ? -EBADMSG : 0;
}

int store_put_checked(store_writer *w, const uint8_t fp[32], const void *stored,
                      uint32_t slen, uint32_t rlen, int codec)
{
	if (w->failed)
		return w->failed;
	if (w->clen || !put_args_ok(w->s, slen, rlen, codec))
		return -EINVAL;
	/* The bytes were checked against fp (store_stored_check): the same append as the
	 * daemon's own pre-compressed chunks. */
	int r = store_put_prepared(w, fp, rlen, stored, slen, codec);
	return r < 0 ? r : 0;
}

int store_chunk_stored(store *s, const uint8_t fp[32], uint32_t rlen, void *out, size_t cap,
                       uint32_t *slen, int *codec)
{
	store_mapext x;
	memset(&x, 0, sizeof(x));
	memcpy(x.fp, fp, sizeof(x.fp));
	x.len = rlen;
	int f = fpidx_lookup(s->idx, fp, &x.where);
	if (f < 0)
		return f;
	if (f == 0 || x.where.rlen != rlen)
		return -ENOENT;
	return store_extent_stored(s, &x, out, cap, slen, codec);
}

/* Does the copy at *p read correctly and hash to fp? (buf: rlen bytes) */
static int copy_good(store *s, const seg_ptr *p, const uint8_t fp[32], uint32_t rlen,
                     uint8_t *buf)
{
	uint8_t got[FP_LEN];
	return p->rlen == rlen && pool_read_item(s->pl, p, buf, rlen) == 0 &&
	       fp_compute(s->fpc, buf, rlen, got) == 0 && !memcmp(got, fp, FP_LEN);
}

int store_repair_chunk(store *s, const uint8_t fp[32], const void *stored, uint32_t slen,
                       uint32_t rlen, int codec)
{
	seg_ptr p, q;
	store_stored_ck *k;
	int r = store_stored_ck_new(&k);
	if (r == 0) {
		r = store_stored_check(s, k, fp, stored, slen, rlen, codec);
		store_stored_ck_free(k);
	}
	if (r < 0)
		return r;
	uint8_t *buf = malloc(rlen);
	if (!buf)
		return -ENOMEM;
	/* A copy that reads correctly already (the index's, or another it knows: a
	 * repair made before a crash lost the caller's note of it): nothing to do. */
	int f = fpidx_lookup(s->idx, fp, &p);
	if (f > 0 && !copy_good(s, &p, fp, rlen, buf)) {
		int g = fpidx_lookup_other(s->idx, fp, &p, &q);
		f = g > 0 && copy_good(s, &q, fp, rlen, buf) ? 1 : g < 0 ? g : 2;
	}
	free(buf);
	if (f < 0)
		return f;
	if (f == 1)
		return 0;
	/* A fresh copy in the open data segment and the index pointing at it, both in
	 * the txg being built; nothing else changes (maps keep the old pointer and a
	 * read that finds it damaged asks the index, store_read_chunk). From the
	 * collector's room: repairing must work on a full store too. */
	int space = pool_set_space(s->pl, POOL_SPACE_WORK);
	if ((r = pool_add_stored(s->pl, fp, stored, slen, rlen, codec, &p)) == 0 &&
	    (r = fpidx_insert(s->idx, fp, &p)) == 0) {
		s->unique_chunks++;
		s->unique_raw += rlen;
		s->stored += p.slen;
		s->bytes_since_commit += p.slen;
		r = 1;
	}
	pool_set_space(s->pl, space);
	return r;
}

int store_put_stored(store_writer *w, const uint8_t fp[32], const void *stored,
                     uint32_t slen, uint32_t rlen, int codec)
{
	store_stored_ck *k;
	if (w->failed)
		return w->failed;
	if (w->clen)
		return -EINVAL;
	int r = store_stored_ck_new(&k);
	if (r == 0) {
		r = store_stored_check(w->s, k, fp, stored, slen, rlen, codec);
		store_stored_ck_free(k);
	}
	return r < 0 ? r : store_put_checked(w, fp, stored, slen, rlen, codec);
}
