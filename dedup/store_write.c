/* dedup/store_write.c: changing an object in place (store_write_at, store_truncate).
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
 * the class from its caller (the namespace's directory pages: the reserve). */
#include <config.h>

#include "dedup/store_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

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
		store_note_ref(s, NULL, sp->loc.seg_id);
		map_ext e;
		e.off = w->next;
		e.len = sp->len;
		memcpy(e.fp, sp->fp, FP_LEN);
		e.p = sp->loc;
		if ((r = wa_push(w, &e)) < 0)
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
	/* The automatic commit asks the layer above first (store_set_precommit), as a
	 * writer's does: a commit must not hold a deleted object whose directory entry
	 * it still has, nor a directory half rewritten page by page (the namespace's
	 * precommit refuses while it is flushing, and the commit then waits). */
	if (r == 0 && s->p.auto_commit_bytes && s->bytes_since_commit >= s->p.auto_commit_bytes &&
	    !s->in_precommit) {
		int pr = 0;
		if (s->precommit) {
			s->in_precommit = 1;
			pr = s->precommit(s->precommit_ctx);
			s->in_precommit = 0;
		}
		if (pr == 0)
			r = store_commit(s, NULL);
	}
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
