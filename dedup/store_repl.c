/* dedup/store_repl.c: see store_repl.h. The extents, stored bytes and the writer verb
 * that replication uses; built on the store's private map walk and pool reads, so the
 * twin gets the chunks exactly as this store keeps them (already compressed). */
#include <config.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

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
	if (x->hole)
		return -EINVAL;
	seg_ptr p = x->where;
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
	if (r < 0)
		return r;
	*slen = p.slen;
	*codec = p.codec;
	return 0;
}

int store_put_stored(store_writer *w, const uint8_t fp[32], const void *stored,
                     uint32_t slen, uint32_t rlen, int codec)
{
	store *s = w->s;
	uint8_t got[FP_LEN];
	seg_ptr p;
	int r;
	if (w->failed)
		return w->failed;
	if (w->clen || rlen == 0 || rlen > s->p.cdc.max || slen == 0 ||
	    (codec != SEG_RAW && codec != SEG_ZSTD) || (codec == SEG_RAW && slen != rlen))
		return -EINVAL;
	/* Identity rests on SHA-256 of the raw bytes: decode and hash before anything
	 * is kept, so a twin never stores bytes under a fingerprint they do not have. */
	uint8_t *raw = malloc(rlen);
	if (!raw)
		return -ENOMEM;
	memset(&p, 0, sizeof(p));
	p.codec = (uint8_t)codec;
	p.slen = slen;
	p.rlen = rlen;
	r = seg_item_decode(NULL, &p, stored, raw, rlen);
	if (r == 0)
		r = fp_compute(s->fpc, raw, rlen, got);
	free(raw);
	if (r < 0)
		return r == -ENOBUFS ? -EINVAL : -EBADMSG;
	if (memcmp(got, fp, FP_LEN))
		return -EBADMSG;
	r = store_put_prepared(w, fp, rlen, stored, slen, codec);
	return r < 0 ? r : 0;
}
