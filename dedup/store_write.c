/* dedup/store_write.c: changing an object in place (store_write_at, store_truncate,
 * store_punch, store_write_batch and its three steps).
 *
 * A write re-cuts only what it touches: from the start of the first chunk it
 * touches to the end of the last one, the old bytes around the new ones are read
 * back (at most one chunk each side), the whole run is cut again with the store's
 * chunker (started at a chunk start, so the cut points are those a stream of the
 * same bytes gets) and fingerprinted; chunks the store has are shared, the others
 * stored. The new extents replace the old ones in the map by map_splice: only the
 * leaves holding them and the blocks above are rewritten (copy-on-write), so a 4 KiB
 * overwrite costs O(chunks touched + map depth) blocks whatever the object's size.
 *
 * Holes: a gap between the old end and a write, or a truncate that grows, is one
 * hole extent (no chunk; read as zeros; docs/format.md "Content maps"). A write into
 * a hole keeps the parts of the hole before and after it.
 *
 * Re-cutting one more chunk where the old cut is not a content cut: a chunk that
 * ends at the object's end, or right before a hole, was cut there by force (the end
 * of a write), not by its content. A write that starts right after it re-cuts it
 * with the new bytes, so 1 MiB appends (NFS) cut exactly like one stream and
 * deduplicate against it; likewise a data extent that starts right after the end of
 * a write that filled a hole (writes that arrived out of order).
 *
 * GC: chunks a write shares are noted (store_note_ref), as store_put does, so a
 * collection that is running never frees them; new chunks and map blocks go to
 * segments above its horizon. The replaced chunks and blocks become garbage. Each
 * piece of a write updates the object record in one step, so no collector step and
 * no sync ever sees a map half changed; the change is in the next intent-log record
 * (store_ilog_note_obj). Space: writes and grows are new data (POOL_SPACE_DATA,
 * -ENOSPC when full); a shrink writes a few blocks and at most one chunk, in the
 * collector's class like a delete's directory rewrite; store_write_at_class takes
 * the class from its caller (the namespace's directory pages: the reserve).
 *
 * Batches: store_wbatch_plan works out every piece's range against one version of
 * the map (the record kept in the batch), copies the bytes of every run (the old
 * chunks around the pieces, read 16 at a time, with the pieces laid over them) and
 * cuts them; store_wbatch_apply stores the chunks and splices every range in one
 * map_splice_v, then writes the record once: the change is one step like a piece of
 * store_write_at (no collector step or sync sees part of a batch). A batch planned
 * from a map that changed since (its root differs: every change writes a new one)
 * is refused, so a batch never puts back bytes older than a write that came after
 * its plan. Between plan and apply the collector may move chunks the plan read (it
 * holds copies) or free segments: the apply looks every chunk up again and notes
 * the segments it refers to, as store_put_prepared does. */
#include <config.h>

#include "dedup/store_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

/* A long write is applied in pieces of this many bytes (each re-cuts from the chunk
 * the previous one ended in, so the cut points are the same as in one piece). */
#define WA_PIECE (4u << 20)

struct wa {
	store *s;
	map_ext *ne;     /* the new extents, in order */
	size_t n, cap;
	uint64_t next;   /* object offset of the next extent */
};

static int wa_push(struct wa *w, const map_ext *e)
{
	if (w->n == w->cap) {
		size_t nc = w->cap ? w->cap * 2 : 64;
		map_ext *q = realloc(w->ne, nc * sizeof(*q));
		if (!q)
			return -ENOMEM;
		w->ne = q;
		w->cap = nc;
	}
	w->ne[w->n++] = *e;
	w->next = e->off + e->len;
	return 0;
}

/* An extent for a stored chunk at w->next (its segment noted as referenced). */
static int wa_chunk(struct wa *w, uint32_t len, const uint8_t fp[FP_LEN], const seg_ptr *loc)
{
	map_ext e;
	store_note_ref(w->s, NULL, loc->seg_id);
	e.off = w->next;
	e.len = len;
	memcpy(e.fp, fp, FP_LEN);
	e.p = *loc;
	return wa_push(w, &e);
}

static int wa_hole(struct wa *w, uint64_t len)
{
	map_ext e;
	if (len == 0)
		return 0;
	memset(&e, 0, sizeof(e));
	e.off = w->next;
	e.len = len;
	return wa_push(w, &e);
}

/* The chunks of a round have been published: store them (store_round_store, as a
 * stream does), add an extent for each. */
static int wa_round(struct wa *w)
{
	store *s = w->s;
	store_put_stats nw = {0};
	int r = store_round_store(s, &nw);
	if (r < 0)
		return r;
	for (int i = 0, n = ingest_count(s->ing); i < n; i++) {
		ing_span *sp = ingest_span(s->ing, i);
		if ((r = wa_chunk(w, sp->len, sp->fp, &sp->loc)) < 0)
			return r;
	}
	return 0;
}

/* Cut buf (the object's bytes from w->next on) into chunks; an extent for each. */
static int wa_chunks(struct wa *w, const uint8_t *buf, size_t len)
{
	store *s = w->s;
	cdc *c;
	int r = 0;
	if (len == 0)
		return 0;
	if (!s->ing && (r = ingest_new(s->p.pool.zstd_level, s->p.cdc.max,
	                               s->p.threads == 1 ? 2 : s->p.threads, &s->ing)) < 0)
		return r;
	if ((r = cdc_new(&s->p.cdc, &c)) < 0)
		return r;
	size_t pos = 0;
	while (pos < len && r == 0) {
		ingest_begin(s->ing);
		while (pos < len && !ingest_full(s->ing)) {
			int cut;
			size_t k = cdc_next(c, buf + pos, len - pos, &cut);
			/* No cut: the rest of buf is the last chunk (the chunker cuts at max). */
			ingest_add(s->ing, buf + pos, (uint32_t)k);
			pos += k;
		}
		r = wa_round(w);
	}
	cdc_free(c);
	return r;
}

/* The extent holding offset off (which is below the object's size). */
static int ext_at(store *s, uint64_t id, const obj_rec *o, uint64_t off, map_ext *e)
{
	int r = map_find(&s->mr, s->pl, id, o, off, e);
	return r == -ENOENT ? -EIO : r;
}

/* Replace [a, b) of o's map by w's extents, and store the record: size new_size.
 * The store's logical bytes move by the mapped bytes the splice added and dropped
 * (not by the size: a hole counts nothing), and a record that gets a hole says so
 * (OBJ_M_HOLES: its delete then walks the map to know what to subtract). */
static int wa_apply(store *s, uint64_t id, obj_rec *o, uint64_t a, uint64_t b,
                    const struct wa *w, uint64_t new_size)
{
	obj_rec n = *o;
	int64_t dm = 0;
	int r = map_splice(s->pl, &n, s->p.pool.meta_block, a, b, w->ne, w->n, &dm);
	/* The reader's decoded leaf is keyed by (id, gen), which a change keeps; so
	 * are read-ahead streams (which would also notice the new root). */
	if (s->mr.obj == id)
		map_reader_forget(&s->mr);
	store_ra_forget(s, id);
	if (r < 0)
		return r;
	n.size = new_size;
	for (size_t i = 0; i < w->n; i++)
		if (map_ext_is_hole(&w->ne[i]))
			n.mflags |= OBJ_M_HOLES;
	if (dm < 0)
		store_logical_sub(s, (uint64_t)-dm);
	else
		s->logical += (uint64_t)dm;
	obj_rec_encode(&n, barray_mut(s->objtab, id));
	store_ilog_note_obj(s, id);
	*o = n;
	return 0;
}

/* One piece of a write: len (<= WA_PIECE) bytes at off. */
static int write_piece(store *s, uint64_t id, obj_rec *o, uint64_t off, const uint8_t *buf,
                       size_t len, uint8_t *run, uint8_t *cb)
{
	uint64_t osize = o->size, end = off + len, a, b;
	struct wa w = {s, NULL, 0, 0, 0};
	map_ext e, lead, tail;
	size_t lead_n = 0, tail_n = 0, lead_in = 0;
	uint64_t lead_hole = 0, tail_hole = 0;
	int r = 0;

	/* Where the replaced range starts, and what of it comes before the new bytes:
	 * a chunk's head (re-cut with them) or a hole's head (kept). */
	if (off < osize) {
		if ((r = ext_at(s, id, o, off, &e)) < 0)
			return r;
		a = e.off;
		if (!map_ext_is_hole(&e)) {
			lead = e, lead_n = off - e.off;
		} else if (off > e.off) {
			lead_hole = off - e.off;
		} else if (off > 0) {
			/* A chunk right before a hole was cut by force: re-cut it too. */
			if ((r = ext_at(s, id, o, off - 1, &e)) < 0)
				return r;
			if (!map_ext_is_hole(&e))
				a = e.off, lead = e, lead_n = e.len;
		}
	} else if (osize == 0) {
		a = 0, lead_hole = off;
	} else {
		if ((r = ext_at(s, id, o, osize - 1, &e)) < 0)
			return r;
		if (off == osize && !map_ext_is_hole(&e))
			a = e.off, lead = e, lead_n = e.len; /* an append: the last chunk again */
		else if (off == osize)
			a = osize;
		else if (map_ext_is_hole(&e))
			a = e.off, lead_hole = off - e.off; /* the hole grows */
		else
			a = osize, lead_hole = off - osize;
	}
	/* Where it ends, and what of it comes after the new bytes. */
	b = end;
	if (end < osize) {
		if ((r = ext_at(s, id, o, end - 1, &e)) < 0)
			return r;
		b = e.off + e.len;
		if (!map_ext_is_hole(&e)) {
			tail = e, tail_n = b - end, lead_in = end - e.off;
		} else if (b > end) {
			tail_hole = b - end;
		} else if ((r = ext_at(s, id, o, end, &e)) < 0) {
			return r;
		} else if (!map_ext_is_hole(&e)) {
			/* The write filled a hole up to a chunk cut by force: re-cut it. */
			b = e.off + e.len, tail = e, tail_n = e.len, lead_in = 0;
		}
	}

	/* The run to cut: the chunk's head, the new bytes, the chunk's tail. */
	if (lead_n) {
		if ((r = store_read_chunk(s, &lead, cb)) < 0)
			return r;
		memcpy(run, cb, lead_n);
	}
	memcpy(run + lead_n, buf, len);
	if (tail_n) {
		if (!(lead_n && lead.off == tail.off) && (r = store_read_chunk(s, &tail, cb)) < 0)
			return r;
		memcpy(run + lead_n + len, cb + lead_in, tail_n);
	}
	w.next = a;
	if ((r = wa_hole(&w, lead_hole)) == 0 &&
	    (r = wa_chunks(&w, run, lead_n + len + tail_n)) == 0 &&
	    (r = wa_hole(&w, tail_hole)) == 0)
		r = wa_apply(s, id, o, a, BKS_MIN(b, osize), &w, BKS_MAX(osize, end));
	free(w.ne);
	return r;
}

/* The automatic commit asks the layer above first (store_set_precommit), as a
 * writer's does: a commit must not hold a deleted object whose directory entry it
 * still has, nor a directory half rewritten page by page (the namespace's precommit
 * refuses while it is flushing, and the commit then waits). */
static int auto_commit(store *s)
{
	if (s->p.auto_commit_bytes && s->bytes_since_commit >= s->p.auto_commit_bytes &&
	    !s->in_precommit) {
		int pr = 0;
		if (s->precommit) {
			s->in_precommit = 1;
			pr = s->precommit(s->precommit_ctx);
			s->in_precommit = 0;
		}
		if (pr == 0)
			return store_commit(s, NULL);
	}
	return 0;
}

int store_write_at(store *s, uint64_t id, uint64_t off, const void *buf, size_t len)
{
	return store_write_at_class(s, POOL_SPACE_DATA, id, off, buf, len);
}

int store_write_at_class(store *s, int cls, uint64_t id, uint64_t off, const void *buf,
                         size_t len)
{
	obj_rec o;
	int r = store_obj_get(s, id, &o);
	if (r < 0)
		return r;
	if (len == 0)
		return 0;
	if (off + len < off)
		return -EFBIG;
	if (cls == POOL_SPACE_DATA && store_space_full(s))
		return -ENOSPC;
	size_t piece = BKS_MIN(len, (size_t)WA_PIECE);
	uint8_t *run = malloc(piece + 2 * (size_t)s->p.cdc.max), *cb = malloc(s->p.cdc.max);
	if (!run || !cb) {
		free(run);
		free(cb);
		return -ENOMEM;
	}
	int space = pool_set_space(s->pl, cls);
	const uint8_t *p = buf;
	while (len > 0 && r == 0) {
		size_t n = BKS_MIN(len, piece);
		r = write_piece(s, id, &o, off, p, n, run, cb);
		off += n;
		p += n;
		len -= n;
	}
	pool_set_space(s->pl, space);
	free(run);
	free(cb);
	if (r == 0)
		r = auto_commit(s);
	return r;
}

/* --- several pieces as one change (store_write_batch) --- */

/* The range [*a, *b) of extents that write_piece replaces for len bytes at off, for
 * a write inside the object's size: the same rules (a chunk's head and tail re-cut,
 * a chunk cut by force before a hole re-cut, a hole's head and tail kept). */
static int piece_range(store *s, uint64_t id, const obj_rec *o, uint64_t off, uint64_t len,
                       uint64_t *a, uint64_t *b)
{
	uint64_t end = off + len;
	map_ext e;
	int r;
	if ((r = ext_at(s, id, o, off, &e)) < 0)
		return r;
	*a = e.off;
	if (map_ext_is_hole(&e) && off == e.off && off > 0) {
		if ((r = ext_at(s, id, o, off - 1, &e)) < 0)
			return r;
		if (!map_ext_is_hole(&e))
			*a = e.off;
	}
	*b = end;
	if (end < o->size) {
		if ((r = ext_at(s, id, o, end - 1, &e)) < 0)
			return r;
		*b = e.off + e.len;
		if (map_ext_is_hole(&e) && *b == end) {
			if ((r = ext_at(s, id, o, end, &e)) < 0)
				return r;
			if (!map_ext_is_hole(&e))
				*b = e.off + e.len;
		}
	}
	return 0;
}

/* What a batch becomes, in object order: a group's start (its range's index), a
 * hole, a run of bytes to cut (at arena offset at), then, once cut, the chunks. */
enum { WB_GROUP, WB_HOLE, WB_RUN, WB_CHUNK };
struct wb_item {
	int kind;
	uint64_t len;
	uint64_t at;             /* WB_GROUP: the range's a; WB_RUN: arena offset */
	const uint8_t *p;        /* WB_CHUNK */
};

/* A chunk whose old bytes a run needs (not all of them overwritten): the pieces'
 * bytes are in the arena at aoff already (covering iv[iv0 .. iv0 + niv), offsets in
 * the chunk); its old bytes are read after the planning, all at once (wb_fetch),
 * and copied around them. (Not from the caller's pieces: those may change once the
 * plan returns.) */
struct wb_iv {
	uint32_t a, b;
};
struct wb_rd {
	map_ext e;
	uint64_t aoff;
	size_t iv0, niv;
	seg_ptr p;               /* where to read it (wb_resolve) */
	int done;                /* its old bytes are in */
};

struct store_wbatch {
	store *s;
	uint64_t id;
	obj_rec o;               /* the object's record the plan was made from */
	struct wb_item *it;
	size_t nit, capit;
	uint8_t *arena;
	uint64_t na, capa;
	int run_open;            /* the last item is a WB_RUN that may grow */
	map_range *rg;
	size_t nrg;
	struct wb_rd *rd;
	size_t nrd, caprd;
	struct wb_iv *iv;
	size_t niv, capiv;
	arr *a;
	cdc_params cdc;
	int fetched;             /* the reads are done and the runs cut */
	/* store_wbatch_prepare's work, per item (chunks only): the fingerprint and the
	 * stored form (zlen 0: raw) at zoff in zbuf. */
	int prepared;
	uint8_t (*fp)[FP_LEN];
	uint64_t *zoff;
	uint32_t *zlen;
	uint8_t *zbuf;
	uint64_t nz, capz;
	uint64_t chunks, known;  /* store_wbatch_apply's: chunks, of them the store had */
};
#define wb store_wbatch

static int wb_push(struct wb *b, int kind, uint64_t len, uint64_t at)
{
	if (b->nit == b->capit) {
		size_t nc = b->capit ? b->capit * 2 : 256;
		struct wb_item *q = realloc(b->it, nc * sizeof(*q));
		if (!q)
			return -ENOMEM;
		b->it = q;
		b->capit = nc;
	}
	b->it[b->nit++] = (struct wb_item){kind, len, at, NULL};
	return 0;
}

/* Room for len more bytes in the arena; returns where they go. */
static uint8_t *wb_room(struct wb *b, uint64_t len)
{
	if (b->na + len > b->capa) {
		uint64_t nc = BKS_MAX(b->capa * 2, b->na + len);
		nc = BKS_MAX(nc, (uint64_t)1 << 20);
		uint8_t *q = realloc(b->arena, nc);
		if (!q)
			return NULL;
		b->arena = q;
		b->capa = nc;
	}
	return b->arena + b->na;
}

/* Append len bytes to the data run (a new one unless one is open); the bytes are
 * at the returned place, for the caller to fill. */
static uint8_t *wb_data(struct wb *b, uint64_t len)
{
	uint8_t *p = wb_room(b, len);
	if (!p)
		return NULL;
	if (!b->run_open) {
		if (wb_push(b, WB_RUN, 0, b->na) < 0)
			return NULL;
		b->run_open = 1;
	}
	b->it[b->nit - 1].len += len;
	b->na += len;
	return p;
}

static int wb_hole(struct wb *b, uint64_t len)
{
	b->run_open = 0;
	if (len == 0)
		return 0;
	/* Two holes in a row (a piece's range ends in a hole the next one's starts in
	 * never happens inside a group, but the item is cheap either way). */
	return wb_push(b, WB_HOLE, len, 0);
}

/* Lay the pieces' bytes of [x, y) over p (the object's bytes from x). */
static void wb_overlay(const store_wpiece *v, size_t n, uint64_t x, uint64_t y, uint8_t *p)
{
	for (size_t i = 0; i < n && v[i].off < y; i++) {
		uint64_t pa = BKS_MAX(x, v[i].off), pb = BKS_MIN(y, v[i].off + v[i].len);
		if (pa < pb)
			memcpy(p + (pa - x), (const uint8_t *)v[i].buf + (pa - v[i].off), pb - pa);
	}
}

/* Bytes of [x, y) the pieces cover. */
static uint64_t wb_covered(const store_wpiece *v, size_t n, uint64_t x, uint64_t y)
{
	uint64_t c = 0;
	for (size_t i = 0; i < n && v[i].off < y; i++) {
		uint64_t pa = BKS_MAX(x, v[i].off), pb = BKS_MIN(y, v[i].off + v[i].len);
		if (pa < pb)
			c += pb - pa;
	}
	return c;
}

/* One group: the extents of [a, bnd) become holes (what no piece covers of a hole)
 * and runs of bytes (chunks read back unless the pieces cover them, and the pieces'
 * bytes), v[0..n) the group's pieces. */
static int wb_group(struct wb *b, uint64_t a, uint64_t bnd, const store_wpiece *v, size_t n)
{
	store *s = b->s;
	map_ext e;
	int r;
	if (b->nrg && b->rg[b->nrg - 1].b == a) {
		/* Touching the range before: one range of the splice, a new run. */
		b->run_open = 0;
	} else {
		b->rg[b->nrg++] = (map_range){a, bnd, 0, 0};
		if ((r = wb_push(b, WB_GROUP, 0, a)) < 0)
			return r;
		b->run_open = 0;
	}
	b->rg[b->nrg - 1].b = bnd;
	for (uint64_t pos = a; pos < bnd; pos = e.off + e.len) {
		if ((r = ext_at(s, b->id, &b->o, pos, &e)) < 0)
			return r;
		if (e.off != pos || e.off + e.len > bnd)
			return -EIO; /* the range's ends are extents' ends */
		uint64_t end = e.off + e.len;
		while (n > 0 && v[0].off + v[0].len <= e.off)
			v++, n--; /* pieces before this extent: done with */
		if (!map_ext_is_hole(&e)) {
			uint8_t *p = wb_data(b, e.len);
			if (!p)
				return -ENOMEM;
			wb_overlay(v, n, e.off, end, p);
			if (wb_covered(v, n, e.off, end) < e.len) {
				if (b->nrd == b->caprd) {
					size_t nc = b->caprd ? b->caprd * 2 : 64;
					struct wb_rd *q = realloc(b->rd, nc * sizeof(*q));
					if (!q)
						return -ENOMEM;
					b->rd = q;
					b->caprd = nc;
				}
				struct wb_rd *x = &b->rd[b->nrd++];
				memset(x, 0, sizeof(*x));
				x->e = e;
				x->aoff = (uint64_t)(p - b->arena);
				x->iv0 = b->niv;
				for (size_t i = 0; i < n && v[i].off < end; i++) {
					uint64_t pa = BKS_MAX(e.off, v[i].off), pb = BKS_MIN(end, v[i].off + v[i].len);
					if (pa >= pb)
						continue;
					if (b->niv == b->capiv) {
						size_t nc = b->capiv ? b->capiv * 2 : 64;
						struct wb_iv *q = realloc(b->iv, nc * sizeof(*q));
						if (!q)
							return -ENOMEM;
						b->iv = q;
						b->capiv = nc;
					}
					b->iv[b->niv++] = (struct wb_iv){(uint32_t)(pa - e.off), (uint32_t)(pb - e.off)};
					x->niv++;
				}
			}
			continue;
		}
		/* A hole: the pieces' parts of it become data, the rest stays a hole. */
		uint64_t x = e.off;
		for (size_t i = 0; i < n && x < end; i++) {
			uint64_t pa = BKS_MAX(x, v[i].off), pb = BKS_MIN(end, v[i].off + v[i].len);
			if (pa >= pb)
				continue;
			if (pa > x && (r = wb_hole(b, pa - x)) < 0)
				return r;
			uint8_t *p = wb_data(b, pb - pa);
			if (!p)
				return -ENOMEM;
			wb_overlay(v + i, 1, pa, pb, p);
			x = pb;
		}
		if (x < end && (r = wb_hole(b, end - x)) < 0)
			return r;
	}
	return 0;
}

/* Read the chunks the runs need, ARR_RD_MAX at a time with arr_read_many (every
 * disk busy at once, as the read-ahead does: a batch of random 4 KiB writes needs a
 * chunk or two around each, and one synchronous read after another was most of a
 * batch's time), each checked against its pointer's checksum and decoded here; one
 * not on the array (in a segment being written), moved by the collector beyond what
 * the index says, or failing its check goes through store_read_chunk (the pool's
 * path: it reconstructs and repairs). */
/* The chunk's old bytes around the pieces' (which are in dst already). */
static void wb_merge_old(const struct wb *b, const struct wb_rd *x, const uint8_t *old,
                         uint8_t *dst)
{
	uint32_t at = 0;
	for (size_t k = x->iv0; k < x->iv0 + x->niv; k++) {
		if (b->iv[k].a > at)
			memcpy(dst + at, old + at, b->iv[k].a - at);
		at = b->iv[k].b;
	}
	if (at < x->e.len)
		memcpy(dst + at, old + at, x->e.len - at);
}

/* Where each read goes (a store call): chunks on the array are read later (wb_fetch,
 * outside the lock when prepared); the others (in a segment still being written, or
 * moved beyond what the index says) through the pool now. */
static int wb_resolve(struct wb *b)
{
	store *s = b->s;
	size_t slot = BKS_ROUND_UP((size_t)s->p.cdc.max, DISK_ALIGN) + 2 * DISK_ALIGN;
	uint8_t *tmp = NULL;
	int r = 0;
	for (size_t i = 0; i < b->nrd && r == 0; i++) {
		struct wb_rd *x = &b->rd[i];
		seg_ptr p = x->e.p, now;
		if (!pool_item_on_array(s->pl, &p) && fpidx_lookup(s->idx, x->e.fp, &now) == 1 &&
		    now.rlen == x->e.len)
			p = now; /* moved by the collector */
		uint64_t lo = p.off / DISK_ALIGN * DISK_ALIGN;
		uint64_t hi = BKS_ROUND_UP((uint64_t)p.off + p.slen, DISK_ALIGN);
		x->p = p;
		x->done = 0;
		if (!pool_item_on_array(s->pl, &p) || p.rlen != x->e.len || hi - lo > slot) {
			if (!tmp && !(tmp = malloc(s->p.cdc.max))) {
				r = -ENOMEM;
				break;
			}
			if ((r = store_read_chunk(s, &x->e, tmp)) == 0)
				wb_merge_old(b, x, tmp, b->arena + x->aoff);
			x->done = 1;
		}
	}
	free(tmp);
	return r;
}

/* The reads wb_resolve left, straight from the array: 16 at a time, each checked
 * against its pointer and decoded, the pieces laid over it again. Needs no store
 * state (the array is thread-safe, the check and decoding pure), so it runs
 * outside the caller's lock in store_wbatch_prepare. A chunk that fails its check
 * (damaged on a disk, or its row reused by the collector since the plan) is read
 * through the pool when locked (a store call), else the batch is refused with
 * -ESTALE (plan it again). */
static int wb_fetch(struct wb *b, int locked)
{
	size_t slot = BKS_ROUND_UP((size_t)b->cdc.max, DISK_ALIGN) + 2 * DISK_ALIGN;
	uint8_t *stage = NULL, *tmp = NULL;
	ZSTD_DCtx *dctx = NULL;
	int r = 0;
	if (b->nrd == 0)
		return 0;
	if (posix_memalign((void **)&stage, DISK_ALIGN, slot * ARR_RD_MAX) != 0)
		return -ENOMEM;
	if (!(dctx = ZSTD_createDCtx()) || !(tmp = malloc(b->cdc.max))) {
		ZSTD_freeDCtx(dctx);
		free(stage);
		return -ENOMEM;
	}
	for (size_t i = 0; i < b->nrd && r == 0;) {
		arr_rd rd[ARR_RD_MAX];
		size_t which[ARR_RD_MAX];
		int k = 0;
		for (; i < b->nrd && k < ARR_RD_MAX; i++) {
			struct wb_rd *x = &b->rd[i];
			if (x->done)
				continue;
			uint64_t lo = x->p.off / DISK_ALIGN * DISK_ALIGN;
			uint64_t hi = BKS_ROUND_UP((uint64_t)x->p.off + x->p.slen, DISK_ALIGN);
			rd[k] = (arr_rd){.row = x->p.row, .off = (size_t)lo, .len = (size_t)(hi - lo),
			                 .buf = stage + (size_t)k * slot};
			which[k++] = i;
		}
		if (k == 0)
			break;
		arr_read_many(b->a, rd, k);
		for (int j = 0; j < k && r == 0; j++) {
			struct wb_rd *x = &b->rd[which[j]];
			const seg_ptr *p = &x->p;
			const uint8_t *src = (const uint8_t *)rd[j].buf + (p->off - rd[j].off);
			const uint8_t *old = tmp;
			int ok = rd[j].result == 0 && seg_item_ok(p, src);
			if (ok && p->codec == SEG_RAW)
				ok = p->slen == p->rlen, old = src;
			else if (ok)
				ok = seg_item_decode(dctx, p, src, tmp, p->rlen) == 0;
			if (!ok) {
				old = tmp;
				r = locked ? store_read_chunk(b->s, &x->e, tmp) : -ESTALE;
			}
			if (r == 0)
				wb_merge_old(b, x, old, b->arena + x->aoff);
			x->done = r == 0;
		}
	}
	ZSTD_freeDCtx(dctx);
	free(stage);
	free(tmp);
	return r;
}

/* Cut every run into chunks (a run starts at a chunk start or after a hole, as a
 * store_write_at's run does), replacing it by its chunks. */
static int wb_cut(struct wb *b)
{
	size_t nruns = 0, nout = 0;
	for (size_t i = 0; i < b->nit; i++)
		nruns += b->it[i].kind == WB_RUN;
	if (!nruns)
		return 0;
	cdc *c;
	int r = cdc_new(&b->cdc, &c);
	if (r < 0)
		return r;
	struct wb_item *out = NULL;
	size_t cap = b->nit + 16;
	for (size_t i = 0; i < b->nit && r == 0; i++) {
		struct wb_item x = b->it[i];
		if (x.kind != WB_RUN) {
			if (nout == cap || !out) {
				cap = out ? cap * 2 : cap;
				struct wb_item *q = realloc(out, cap * sizeof(*q));
				if (!q) {
					r = -ENOMEM;
					break;
				}
				out = q;
			}
			out[nout++] = x;
			continue;
		}
		const uint8_t *p = b->arena + x.at;
		size_t pos = 0;
		cdc_reset(c);
		while (pos < x.len) {
			int cut;
			size_t k = cdc_next(c, p + pos, (size_t)(x.len - pos), &cut);
			if (nout == cap || !out) {
				cap = out ? cap * 2 : cap;
				struct wb_item *q = realloc(out, cap * sizeof(*q));
				if (!q) {
					r = -ENOMEM;
					break;
				}
				out = q;
			}
			out[nout++] = (struct wb_item){WB_CHUNK, k, 0, p + pos};
			pos += k;
		}
	}
	cdc_free(c);
	if (r < 0) {
		free(out);
		return r;
	}
	free(b->it);
	b->it = out;
	b->nit = nout;
	b->capit = cap;
	return 0;
}

/* Fingerprint, look up and store the chunks in rounds of the ingest engine shared
 * by the whole batch; the extents of every range, in order, into w. */
static int wb_store(struct wb *b, struct wa *w)
{
	store *s = b->s;
	int r = 0;
	size_t rgi = 0;
	if (!s->ing && (r = ingest_new(s->p.pool.zstd_level, s->p.cdc.max,
	                               s->p.threads == 1 ? 2 : s->p.threads, &s->ing)) < 0)
		return r;
	size_t k = 0;
	while (k < b->nit && r == 0) {
		/* The items up to the round's last chunk. */
		size_t m = k;
		ingest_begin(s->ing);
		while (m < b->nit && !ingest_full(s->ing)) {
			if (b->it[m].kind == WB_CHUNK)
				ingest_add(s->ing, b->it[m].p, (uint32_t)b->it[m].len);
			m++;
		}
		store_put_stats nw = {0};
		if (ingest_count(s->ing) && (r = store_round_store(s, &nw)) < 0)
			break;
		int sp_i = 0;
		for (; k < m && r == 0; k++) {
			const struct wb_item *x = &b->it[k];
			if (x->kind == WB_GROUP) {
				if (rgi > 0)
					b->rg[rgi - 1].n = w->n - b->rg[rgi - 1].first;
				b->rg[rgi++].first = w->n;
				w->next = x->at;
			} else if (x->kind == WB_HOLE) {
				r = wa_hole(w, x->len);
			} else {
				ing_span *sp = ingest_span(s->ing, sp_i++);
				b->chunks++;
				b->known += sp->hit != 0;
				r = wa_chunk(w, sp->len, sp->fp, &sp->loc);
			}
		}
	}
	if (r == 0 && rgi > 0)
		b->rg[rgi - 1].n = w->n - b->rg[rgi - 1].first;
	if (r == 0 && rgi != b->nrg)
		r = -EIO;
	return r;
}

void store_wbatch_free(store_wbatch *b)
{
	if (!b)
		return;
	free(b->it);
	free(b->arena);
	free(b->rg);
	free(b->rd);
	free(b->iv);
	free(b->fp);
	free(b->zoff);
	free(b->zlen);
	free(b->zbuf);
	free(b);
}

int store_wbatch_plan(store *s, uint64_t id, const store_wpiece *v, size_t n,
                      store_wbatch **out)
{
	obj_rec o;
	struct wb *b;
	int r = store_obj_get(s, id, &o);
	*out = NULL;
	if (r < 0)
		return r;
	if (n == 0)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (v[i].len == 0 || v[i].off + v[i].len > o.size || v[i].off + v[i].len < v[i].off ||
		    (i > 0 && v[i - 1].off + v[i - 1].len > v[i].off))
			return -EINVAL;
	if (store_space_full(s))
		return -ENOSPC;
	if (!(b = calloc(1, sizeof(*b))))
		return -ENOMEM;
	b->s = s;
	b->id = id;
	b->o = o;
	b->a = pool_array(s->pl);
	b->cdc = s->p.cdc;
	if (!(b->rg = malloc(n * sizeof(*b->rg)))) {
		free(b);
		return -ENOMEM;
	}
	/* Plan against the map as it is: each piece's range; overlapping ranges make
	 * one group (re-cut as one run). */
	size_t g = 0;
	uint64_t ga = 0, gb = 0;
	for (size_t i = 0; i <= n && r == 0; i++) {
		uint64_t a = 0, bb = 0;
		if (i < n && (r = piece_range(s, id, &o, v[i].off, v[i].len, &a, &bb)) < 0)
			break;
		if (i > 0 && i < n && a < gb) {
			gb = BKS_MAX(gb, bb);
			ga = BKS_MIN(ga, a);
			continue;
		}
		if (i > 0)
			r = wb_group(b, ga, gb, v + g, i - g);
		g = i, ga = a, gb = bb;
	}
	if (r == 0)
		r = wb_resolve(b);
	if (r < 0) {
		store_wbatch_free(b);
		return r;
	}
	*out = b;
	return 0;
}

/* Room for len more stored bytes in zbuf; returns their offset. */
static int wb_zroom(struct wb *b, uint64_t len, uint64_t *at)
{
	if (b->nz + len > b->capz) {
		uint64_t nc = BKS_MAX(b->capz * 2, b->nz + len);
		nc = BKS_MAX(nc, (uint64_t)1 << 20);
		uint8_t *q = realloc(b->zbuf, nc);
		if (!q)
			return -ENOMEM;
		b->zbuf = q;
		b->capz = nc;
	}
	*at = b->nz;
	b->nz += len;
	return 0;
}

/* The reads and the cut, once (in prepare without the lock, else in apply). */
static int wb_fetch_cut(struct wb *b, int locked)
{
	int r = 0;
	if (!b->fetched && (r = wb_fetch(b, locked)) == 0 && (r = wb_cut(b)) == 0)
		b->fetched = 1;
	return r;
}

int store_wbatch_prepare(store_wbatch *b, ingest *g)
{
	int r = wb_fetch_cut(b, 0);
	if (r < 0)
		return r;
	if (!(b->fp = malloc(b->nit * sizeof(*b->fp))) ||
	    !(b->zoff = malloc(b->nit * sizeof(*b->zoff))) ||
	    !(b->zlen = malloc(b->nit * sizeof(*b->zlen))))
		return -ENOMEM;
	for (size_t k = 0; k < b->nit && r == 0;) {
		size_t m = k, idx[ING_MAX];
		int cnt = 0;
		ingest_begin(g);
		for (; m < b->nit && !ingest_full(g); m++)
			if (b->it[m].kind == WB_CHUNK) {
				idx[cnt++] = m;
				ingest_add(g, b->it[m].p, (uint32_t)b->it[m].len);
			}
		k = m;
		if (cnt == 0)
			break;
		if ((r = ingest_hash_wait(g)) < 0 || (r = ingest_compress(g)) < 0)
			break;
		for (int i = 0; i < cnt && r == 0; i++) {
			ing_span *sp = ingest_span(g, i);
			uint64_t at = 0;
			memcpy(b->fp[idx[i]], sp->fp, FP_LEN);
			b->zlen[idx[i]] = sp->zlen;
			if (sp->zlen && (r = wb_zroom(b, sp->zlen, &at)) == 0)
				memcpy(b->zbuf + at, sp->z, sp->zlen);
			b->zoff[idx[i]] = at;
		}
	}
	if (r == 0)
		b->prepared = 1;
	return r;
}

/* The chunks prepared outside the lock, into the store in order: one the index has
 * (another write stored it since, or it is a duplicate) is shared, the others are
 * appended as they were compressed (store_put_prepared's way); the extents of every
 * range into w. */
static int wb_store_prepared(struct wb *b, struct wa *w)
{
	store *s = b->s;
	size_t rgi = 0;
	int r = 0;
	for (size_t k = 0; k < b->nit && r == 0; k++) {
		const struct wb_item *x = &b->it[k];
		if (x->kind == WB_GROUP) {
			if (rgi > 0)
				b->rg[rgi - 1].n = w->n - b->rg[rgi - 1].first;
			b->rg[rgi++].first = w->n;
			w->next = x->at;
			continue;
		}
		if (x->kind == WB_HOLE) {
			r = wa_hole(w, x->len);
			continue;
		}
		seg_ptr p;
		if ((r = fpidx_lookup(s->idx, b->fp[k], &p)) < 0)
			break;
		if (r == 1 && p.rlen != x->len) {
			r = -EBADMSG; /* one fingerprint, two lengths */
			break;
		}
		b->chunks++;
		b->known += r == 1;
		if (r == 0) {
			r = b->zlen[k] ? pool_add_stored(s->pl, b->fp[k], b->zbuf + b->zoff[k], b->zlen[k],
			                                 (uint32_t)x->len, SEG_ZSTD, &p)
			               : pool_add_stored(s->pl, b->fp[k], x->p, (uint32_t)x->len,
			                                 (uint32_t)x->len, SEG_RAW, &p);
			if (r < 0 || (r = fpidx_insert(s->idx, b->fp[k], &p)) < 0)
				break;
			s->unique_chunks++;
			s->unique_raw += x->len;
			s->stored += p.slen;
			s->bytes_since_commit += p.slen;
		}
		r = wa_chunk(w, x->len, b->fp[k], &p);
	}
	if (r == 0 && rgi > 0)
		b->rg[rgi - 1].n = w->n - b->rg[rgi - 1].first;
	if (r == 0 && rgi != b->nrg)
		r = -EIO;
	return r;
}

int store_wbatch_apply(store *s, store_wbatch *b)
{
	obj_rec cur;
	struct wa w = {s, NULL, 0, 0, 0};
	int r = store_obj_get(s, b->id, &cur);
	if (r < 0)
		return r;
	/* (Field by field: a seg_ptr has padding.) Every change of an object writes a
	 * new root, so the same root is the same map. */
	if (cur.gen != b->o.gen || cur.size != b->o.size || cur.depth != b->o.depth ||
	    cur.root.seg_id != b->o.root.seg_id || cur.root.row != b->o.root.row ||
	    cur.root.off != b->o.root.off || cur.root.xxh != b->o.root.xxh)
		return -EAGAIN;
	if (store_space_full(s))
		return -ENOSPC;
	int space = pool_set_space(s->pl, POOL_SPACE_DATA);
	if ((r = wb_fetch_cut(b, 1)) == 0)
		r = b->prepared ? wb_store_prepared(b, &w) : wb_store(b, &w);
	if (r == 0) {
		obj_rec nr = cur;
		int64_t dm = 0;
		r = map_splice_v(s->pl, &nr, s->p.pool.meta_block, b->rg, b->nrg, w.ne, &dm);
		if (s->mr.obj == b->id)
			map_reader_forget(&s->mr);
		store_ra_forget(s, b->id);
		if (r == 0) {
			for (size_t i = 0; i < w.n; i++)
				if (map_ext_is_hole(&w.ne[i]))
					nr.mflags |= OBJ_M_HOLES;
			if (dm < 0)
				store_logical_sub(s, (uint64_t)-dm);
			else
				s->logical += (uint64_t)dm;
			obj_rec_encode(&nr, barray_mut(s->objtab, b->id));
			store_ilog_note_obj(s, b->id);
		}
	}
	pool_set_space(s->pl, space);
	free(w.ne);
	if (r == 0)
		r = auto_commit(s);
	return r;
}

void store_wbatch_stats(const store_wbatch *b, uint64_t *chunks, uint64_t *known)
{
	*chunks = b->chunks;
	*known = b->known;
}

int store_write_batch(store *s, uint64_t id, const store_wpiece *v, size_t n)
{
	store_wbatch *b;
	if (n == 0)
		return 0;
	int r = store_wbatch_plan(s, id, v, n, &b);
	if (r == 0)
		r = store_wbatch_apply(s, b);
	store_wbatch_free(b);
	return r;
}

int store_truncate(store *s, uint64_t id, uint64_t size)
{
	obj_rec o;
	map_ext e;
	struct wa w = {s, NULL, 0, 0, 0};
	uint8_t *cb = NULL;
	int r = store_obj_get(s, id, &o);
	if (r < 0 || size == o.size)
		return r;
	uint64_t osize = o.size, a;
	int space;
	if (size > osize) {
		/* A hole from the old end (the last extent, when it is a hole, grows). */
		if (store_space_full(s))
			return -ENOSPC;
		space = pool_set_space(s->pl, POOL_SPACE_DATA);
		a = osize;
		if (osize > 0 && (r = ext_at(s, id, &o, osize - 1, &e)) == 0 && map_ext_is_hole(&e))
			a = e.off;
		w.next = a;
		if (r == 0 && (r = wa_hole(&w, size - a)) == 0)
			r = wa_apply(s, id, &o, a, osize, &w, size);
		goto out;
	}
	/* Shrink: extents past size go, the one holding it is cut (a chunk's head is
	 * stored as a chunk of its own: the chunker finds no cut inside a chunk). */
	space = pool_set_space(s->pl, POOL_SPACE_WORK);
	if (size == 0) {
		obj_rec n = o;
		memset(&n.root, 0, sizeof(n.root));
		n.depth = 0;
		n.nextents = 0;
		n.mflags &= ~OBJ_M_HOLES;
		w.next = 0;
		if (s->mr.obj == id)
			map_reader_forget(&s->mr);
		store_ra_forget(s, id);
		n.size = 0;
		store_logical_sub(s, store_obj_mapped(s, &o));
		obj_rec_encode(&n, barray_mut(s->objtab, id));
		store_ilog_note_obj(s, id);
		goto out;
	}
	if ((r = ext_at(s, id, &o, size, &e)) < 0)
		goto out;
	a = e.off;
	w.next = a;
	if (e.off < size && map_ext_is_hole(&e)) {
		r = wa_hole(&w, size - e.off);
	} else if (e.off < size) {
		if (!(cb = malloc(s->p.cdc.max)))
			r = -ENOMEM;
		else if ((r = store_read_chunk(s, &e, cb)) == 0)
			r = wa_chunks(&w, cb, size - e.off);
	}
	if (r == 0)
		r = wa_apply(s, id, &o, a, osize, &w, size);
out:
	pool_set_space(s->pl, space);
	free(cb);
	free(w.ne);
	return r;
}

/* Punch [off, off + len) (clipped to the object) into a hole. The chunks cut by the
 * range's ends keep their outer parts, re-cut as chunks of their own (as a shrink
 * keeps a chunk's head); holes next to the range merge with it, so unmapping a LUN
 * piece by piece leaves one hole, not a run of them. Space: like a shrink (a few map
 * blocks, at most two chunks), in the collector's class, so a full store can still
 * give space back. The extents dropped become garbage for the collector. */
int store_punch(store *s, uint64_t id, uint64_t off, uint64_t len)
{
	obj_rec o;
	map_ext e;
	struct wa w = {s, NULL, 0, 0, 0};
	uint8_t *cb = NULL;
	int r = store_obj_get(s, id, &o);
	if (r < 0)
		return r;
	if (off >= o.size || len == 0)
		return 0;
	uint64_t end = len > o.size - off ? o.size : off + len, a, b;
	uint64_t lead_n = 0, tail_n = 0, hole_a, hole_b;
	map_ext lead, tail;
	int space = pool_set_space(s->pl, POOL_SPACE_WORK);

	if ((r = ext_at(s, id, &o, off, &e)) < 0)
		goto out;
	a = e.off;
	if (!map_ext_is_hole(&e) && off > e.off)
		lead = e, lead_n = off - e.off;
	else if (off == e.off && off > 0 && (r = ext_at(s, id, &o, off - 1, &e)) == 0 &&
	         map_ext_is_hole(&e))
		a = e.off; /* the hole before grows */
	if (r < 0)
		goto out;
	if ((r = ext_at(s, id, &o, end - 1, &e)) < 0)
		goto out;
	b = e.off + e.len;
	if (!map_ext_is_hole(&e) && b > end)
		tail = e, tail_n = b - end;
	else if (b == end && end < o.size && (r = ext_at(s, id, &o, end, &e)) == 0 &&
	         map_ext_is_hole(&e))
		b = e.off + e.len; /* the hole after grows */
	if (r < 0)
		goto out;
	hole_a = a + lead_n;
	hole_b = b - tail_n;
	if ((lead_n || tail_n) && !(cb = malloc(s->p.cdc.max))) {
		r = -ENOMEM;
		goto out;
	}
	w.next = a;
	if (lead_n && ((r = store_read_chunk(s, &lead, cb)) < 0 ||
	               (r = wa_chunks(&w, cb, lead_n)) < 0))
		goto out;
	if ((r = wa_hole(&w, hole_b - hole_a)) < 0)
		goto out;
	if (tail_n && ((r = store_read_chunk(s, &tail, cb)) < 0 ||
	               (r = wa_chunks(&w, cb + (end - tail.off), tail_n)) < 0))
		goto out;
	r = wa_apply(s, id, &o, a, b, &w, o.size);
out:
	pool_set_space(s->pl, space);
	free(cb);
	free(w.ne);
	return r;
}

int store_extent(store *s, uint64_t id, uint64_t off, uint64_t *start, uint64_t *len,
                 int *hole)
{
	obj_rec o;
	map_ext e;
	int r = store_obj_get(s, id, &o);
	if (r < 0)
		return r;
	if (off >= o.size)
		return -ERANGE;
	if ((r = ext_at(s, id, &o, off, &e)) < 0)
		return r;
	*start = e.off;
	*len = e.len;
	*hole = map_ext_is_hole(&e);
	return 0;
}

static int mapped_ext(void *ctx, const map_ext *e)
{
	if (!map_ext_is_hole(e))
		*(uint64_t *)ctx += e->len;
	return 0;
}

uint64_t store_obj_mapped(store *s, const obj_rec *o)
{
	uint64_t n = 0;
	if (!(o->mflags & OBJ_M_HOLES))
		return o->size; /* no hole since it was written whole: every byte is mapped */
	/* A walk that fails leaves what it counted, a lower bound: the store's figure
	 * stays at or above the truth, and the collector's next mark sets it exactly. */
	map_walk(s->pl, o, s->p.pool.meta_block, mapped_ext, NULL, &n);
	return n;
}

void store_logical_sub(store *s, uint64_t n)
{
	s->logical = n > s->logical ? 0 : s->logical - n;
}

int store_mapped_bytes(store *s, uint64_t id, uint64_t *bytes)
{
	obj_rec o;
	int r = store_obj_get(s, id, &o);
	*bytes = 0;
	if (r < 0)
		return r;
	return map_walk(s->pl, &o, s->p.pool.meta_block, mapped_ext, NULL, bytes);
}
