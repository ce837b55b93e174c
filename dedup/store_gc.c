/* dedup/store_gc.c: garbage collection and verify.
 *
 * Mark (store_gc_start): every extent of every object puts its fingerprint in a Bloom
 * filter of live chunks (16 bits per chunk: a dead chunk survives a round with
 * probability ~0.05%, a live one never dies); every reachable metadata block adds its
 * stored bytes to its row's live count. Segments created from now on are not swept
 * this round, and every segment a write refers to from now on (a dedup hit) is
 * protected, so a chunk that a concurrent write has just deduplicated against is
 * never freed.
 * Sweep (store_gc_step): a dead metadata row is freed; a metadata row whose live
 * blocks fill less than min_live of it is emptied (below); a data segment with no
 * live chunk is freed; one whose live bytes fill less than min_live of the row (dead
 * chunks, or a segment a commit wrote half full) has its live chunks
 * copied (stored bytes, no recompression) into new segments, the index updated, and
 * its row freed. Freed rows are reused only after the next commit, so a crash before
 * it leaves the last commit whole. Content maps keep pointing at old places; a read
 * that finds a moved chunk's row reused (-ESTALE) asks the index.
 *
 * Metadata compaction. Every commit (and a sync may) seals a part-full metadata row,
 * and copy-on-write leaves old block versions behind in rows that still hold a few
 * live ones, so rows whose live metadata is below min_live are victims: after the
 * row sweep, every block that is still referenced and lies in a victim row is moved
 * to the open metadata segment, copy-on-write up to its root: content maps (only the
 * paths to moved blocks are rewritten; interior nodes are read to find them), a few
 * objects per step; then in one step the record arrays (object table, the index's
 * directories and Bloom filters, the row table: marked, rewritten by the next
 * commit's sync), the index's entry blocks (copied now: lookups read them) and its
 * run list; then the victim rows are freed. Rows holding a block of an object being
 * written at the mark (map_writer.written; the writer's unfinished nodes point at
 * them) are never victims.
 * Crash story: a victim is freed like any row (pool_free_row): written as FREE in
 * this txg's row table, not reused until this txg commits. Until the commit lands,
 * the previous commit is whole: its blocks in the victims are still there, and the
 * moved copies are only referenced by the txg being built. An intent-log record
 * written meanwhile lists what was added (rows, object records, items), never freed
 * rows, so a replay keeps the victims in use and the objects it restores point at
 * blocks that exist.
 * The commit then references only the copies. */
#include <config.h>

#include "dedup/store_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define GC_BLOOM_BITS 16
#define GC_BLOOM_K 11
#define GC_ROWS_PER_STEP 16
#define GC_OBJS_PER_STEP 64

enum { GC_ROWS = 0, GC_MAPS = 1, GC_FINISH = 2 };

struct gc_state {
	int active;
	double min_live;
	uint64_t *bloom;
	uint64_t nbits;
	uint32_t *meta_bytes; /* per row: stored bytes of reachable metadata blocks */
	uint8_t *meta_pin;    /* per row: holds a block of an object being written */
	uint8_t *victim;      /* per row: a metadata row being emptied this round */
	uint64_t nvictims;
	uint64_t victim_bytes; /* live metadata bytes in the victims (what moves) */
	int phase;            /* GC_ROWS, GC_MAPS, GC_FINISH */
	uint64_t obj_cursor;
	u64set protect;       /* data segments referred to by writes since the start */
	uint64_t horizon;     /* segments with this id or above are newer than the mark */
	uint64_t cursor;
	seg_entry *ents;
	uint32_t ents_cap;
	uint8_t *ibuf;
	store_gc_stats st;
};

static void bloom_add(gc_state *g, const uint8_t *fp)
{
	uint64_t h1, h2;
	memcpy(&h1, fp, 8);
	memcpy(&h2, fp + 8, 8);
	h2 |= 1;
	for (int i = 0; i < GC_BLOOM_K; i++) {
		uint64_t b = (h1 + (uint64_t)i * h2) % g->nbits;
		g->bloom[b / 64] |= 1ull << (b % 64);
	}
}

static int bloom_has(const gc_state *g, const uint8_t *fp)
{
	uint64_t h1, h2;
	memcpy(&h1, fp, 8);
	memcpy(&h2, fp + 8, 8);
	h2 |= 1;
	for (int i = 0; i < GC_BLOOM_K; i++) {
		uint64_t b = (h1 + (uint64_t)i * h2) % g->nbits;
		if (!(g->bloom[b / 64] >> (b % 64) & 1))
			return 0;
	}
	return 1;
}

void store_gc_free(store *s)
{
	gc_state *g = s->gc;
	if (!g)
		return;
	free(g->bloom);
	free(g->meta_bytes);
	free(g->meta_pin);
	free(g->victim);
	free(g->ents);
	free(g->ibuf);
	u64set_free(&g->protect);
	free(g);
	s->gc = NULL;
}

void store_gc_note_ref(store *s, uint64_t seg_id)
{
	if (s->gc && s->gc->active)
		u64set_add(&s->gc->protect, seg_id);
}

struct mark_ctx {
	store *s;
	gc_state *g;
	uint64_t mapped;       /* bytes in the chunk extents walked */
};

static int mark_ext(void *ctx, const map_ext *e)
{
	struct mark_ctx *m = ctx;
	if (!map_ext_is_hole(e)) { /* a hole refers to no chunk */
		bloom_add(m->g, e->fp);
		m->mapped += e->len;
	}
	return 0;
}

static int mark_blk(void *ctx, const seg_ptr *p)
{
	struct mark_ctx *m = ctx;
	if (p->row < pool_rows(m->s->pl)) {
		uint32_t *b = &m->g->meta_bytes[p->row], add = BKS_MAX(p->slen, 1u);
		*b = *b > UINT32_MAX - add ? UINT32_MAX : *b + add;
		m->g->st.meta_live_bytes += p->slen;
	}
	return 0;
}

int store_gc_start(store *s, double min_live)
{
	gc_state *g;
	int r = 0;
	if (s->gc && s->gc->active)
		return -EALREADY;
	store_gc_free(s);
	g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	s->gc = g;
	uint64_t nrows = pool_rows(s->pl);
	g->min_live = min_live;
	g->nbits = BKS_MAX(s->unique_chunks * GC_BLOOM_BITS, (uint64_t)4096);
	g->bloom = calloc((g->nbits + 63) / 64, 8);
	g->meta_bytes = calloc(nrows, sizeof(*g->meta_bytes));
	g->meta_pin = calloc(nrows, 1);
	g->victim = calloc(nrows, 1);
	g->ents_cap = pool_row_bytes(s->pl) / (SEG_ENTRY_SIZE + 1) + 1;
	g->ents = calloc(g->ents_cap, sizeof(*g->ents));
	g->ibuf = malloc(pool_row_bytes(s->pl));
	if (!g->bloom || !g->meta_bytes || !g->meta_pin || !g->victim || !g->ents || !g->ibuf) {
		store_gc_free(s);
		return -ENOMEM;
	}
	/* Segments from here on are newer than the mark, and so are the segments being
	 * filled now (blocks and chunks added to them after this point are not marked). */
	uint64_t od, om;
	pool_open_segs(s->pl, &od, &om);
	g->horizon = pool_next_seg_id(s->pl);
	if (od)
		g->horizon = BKS_MIN(g->horizon, od);
	if (om)
		g->horizon = BKS_MIN(g->horizon, om);
	struct mark_ctx m = {s, g, 0};
	/* Live chunks and map blocks: every object. */
	for (uint64_t id = 1; id < barray_count(s->objtab) && r == 0; id++) {
		obj_rec o;
		if (store_obj_get(s, id, &o) == 0)
			r = map_walk(s->pl, &o, s->p.pool.meta_block, mark_ext, mark_blk, &m);
	}
	/* The walk just counted every object's mapped bytes: the store's logical bytes,
	 * exactly. Kept incrementally they are equal already; a store whose figure
	 * came from a build that counted holes (or a delete whose map walk failed) gets
	 * the true one here. */
	if (r == 0)
		s->logical = m.mapped;
	/* Objects being written: their chunks' segments are protected, their map blocks
	 * live. */
	for (store_writer *w = s->writers; w && r == 0; w = w->next) {
		for (uint64_t i = 0; i < w->refs.cap; i++)
			if (w->refs.k[i])
				u64set_add(&g->protect, w->refs.k[i]);
		for (size_t i = 0; i < w->mw.nwritten; i++) {
			mark_blk(&m, &w->mw.written[i]);
			if (w->mw.written[i].row < nrows)
				g->meta_pin[w->mw.written[i].row] = 1;
		}
	}
	/* The other metadata: object table, index, row table, the committed root. */
	if (r == 0)
		r = barray_visit(s->objtab, mark_blk, &m);
	if (r == 0)
		r = fpidx_visit(s->idx, mark_blk, &m);
	if (r == 0)
		r = pool_visit_meta(s->pl, mark_blk, &m);
	if (r < 0) {
		store_gc_free(s);
		return r;
	}
	g->active = 1;
	g->st.running = 1;
	s->gc_last_start_seg = pool_next_seg_id(s->pl);
	s->gc_auto_running = 0;
	return 0;
}

/* --- automatic collection (store.h, store_set_gc_auto) --- */

void store_set_gc_auto(store *s, double free_frac, double min_live)
{
	s->gc_auto_free = free_frac;
	s->gc_auto_min_live = min_live;
}

void store_gc_auto_commit(store *s)
{
	if (s->gc_auto_free <= 0 || (s->gc && s->gc->active))
		return;
	uint64_t rows = pool_rows(s->pl);
	pool_space_info si;
	pool_get_space(s->pl, &si);
	if ((double)si.rows_free >= s->gc_auto_free * (double)rows)
		return;
	/* Not again before some rows were written since the last one started: an
	 * array full of live data must not collect at every commit (each collection
	 * reads every object's map and every data row's table). Segment ids count
	 * the rows that got a segment. */
	uint64_t gap = BKS_MAX((uint64_t)STORE_GC_AUTO_MIN, rows / 32);
	if (s->gc_last_start_seg && pool_next_seg_id(s->pl) - s->gc_last_start_seg < gap)
		return;
	if (store_gc_start(s, s->gc_auto_min_live) == 0) {
		s->gc_auto_started++;
		s->gc_auto_running = 1;
	}
	/* A failed start (out of memory, a map that cannot be read) is retried after
	 * the next gap: nothing depends on it but the space. */
	else
		s->gc_last_start_seg = pool_next_seg_id(s->pl);
}

int store_gc_auto_sync(store *s)
{
	/* Only its own: a collection the caller started is the caller's to step (and
	 * to commit after). */
	if (!s->gc || !s->gc->active || !s->gc_auto_running)
		return 0;
	int r = 1;
	for (int i = 0; i < STORE_GC_AUTO_STEPS && r > 0; i++)
		r = store_gc_step(s);
	/* An error ends the collection (store_gc_step); the sync itself goes on, and
	 * what it freed before the error is freed all the same. */
	return r <= 0;
}

/* Copy the live chunks of one segment forward and free its row. */
static int compact(store *s, gc_state *g, const seg_header *h, int n)
{
	for (int i = 0; i < n; i++) {
		if (!bloom_has(g, g->ents[i].fp))
			continue;
		seg_ptr old, np, other;
		seg_ptr_from_entry(h, &g->ents[i], &old);
		int r = pool_read_stored(s->pl, &old, g->ibuf, pool_row_bytes(s->pl));
		if (r == -EIO && fpidx_lookup_other(s->idx, g->ents[i].fp, &old, &other) > 0) {
			/* Damaged beyond repair, but stored again since (store_repair_chunk):
			 * the index's copy serves every map; this one goes with its row. */
			s->unique_chunks -= BKS_MIN(s->unique_chunks, 1);
			s->unique_raw -= BKS_MIN(s->unique_raw, (uint64_t)old.rlen);
			s->stored -= BKS_MIN(s->stored, (uint64_t)old.slen);
			continue;
		}
		if (r < 0)
			return r;
		/* A deferred item stays one (store_defer.c recompresses it). The flag is
		 * a disk byte: only a raw item can be one (as store_defer.c reads it); a
		 * compressed item flagged is copied as it is, not refused (-EINVAL would
		 * fail every collection at this row). */
		int codec = (g->ents[i].flags & SEG_EF_DEFERRED) && old.codec == SEG_RAW &&
		                    old.slen == old.rlen
		                    ? SEG_RAW_DEFERRED
		                    : old.codec;
		r = pool_add_stored(s->pl, g->ents[i].fp, g->ibuf, old.slen, old.rlen, codec, &np);
		if (r < 0 || (r = fpidx_insert(s->idx, g->ents[i].fp, &np)) < 0)
			return r;
		/* The copy may land behind a running deferred cycle's cursor: ask for
		 * another cycle (its bytes were counted when first stored). */
		if (codec == SEG_RAW_DEFERRED)
			store_defer_note(s, 0);
		g->st.chunks_moved++;
		g->st.bytes_moved += old.slen;
	}
	return 0;
}

static int sweep_row(store *s, gc_state *g, uint64_t row)
{
	int state = pool_row_state(s->pl, row);
	uint64_t seg = pool_row_seg(s->pl, row);
	if (seg == 0 || seg >= g->horizon)
		return 0;
	if (state == ROW_META) {
		double room = (double)(pool_row_bytes(s->pl) - SEG_HDR_SIZE);
		if (!g->meta_bytes[row]) {
			pool_free_row(s->pl, row);
			g->st.rows_freed++;
		} else if (!g->meta_pin[row] && (double)g->meta_bytes[row] < g->min_live * room &&
		           2 * (g->victim_bytes + g->meta_bytes[row]) + pool_row_bytes(s->pl) <
		               pool_space_room(s->pl, POOL_SPACE_WORK)) {
			/* Moving a victim's blocks takes rows (their copies, plus the
			 * ancestors the copy-on-write rewrites): only as many victims as
			 * the collector's room holds twice over, so a full array still
			 * frees what it can. */
			g->victim[row] = 1;
			g->nvictims++;
			g->victim_bytes += g->meta_bytes[row];
		}
		return 0;
	}
	if (state != ROW_DATA || u64set_has(&g->protect, seg))
		return 0;
	seg_header h;
	int n = pool_read_seg_table(s->pl, row, &h, g->ents, g->ents_cap);
	if (n < 0)
		return 0; /* unreadable: leave it for verify and scrub to report */
	if (h.seg_id != seg)
		return 0;
	g->st.segments_scanned++;
	uint64_t live = 0, total = 0, dead_chunks = 0, dead_raw = 0;
	for (int i = 0; i < n; i++) {
		total += g->ents[i].slen;
		if (bloom_has(g, g->ents[i].fp)) {
			live += g->ents[i].slen;
		} else {
			dead_chunks++;
			dead_raw += g->ents[i].rlen;
		}
	}
	g->st.live_bytes += live;
	g->st.dead_bytes += total - live;
	/* Fill is measured against the row, not the segment's own items: a segment a
	 * commit wrote half full wastes the rest of its row just as dead chunks do. */
	double room = (double)(pool_row_bytes(s->pl) - SEG_HDR_SIZE);
	int compact_it = (double)live < g->min_live * room;
	if (compact_it && live &&
	    live + (uint64_t)(n - dead_chunks) * SEG_ENTRY_SIZE > pool_space_room(s->pl,
	                                                                        POOL_SPACE_WORK)) {
		/* Copying forward takes rows before the commit gives this one back: only
		 * as far as the collector's share of the reserve goes (pool.h "space").
		 * The segment waits for a pass after the commit; wholly dead ones are
		 * still freed, which takes no row. */
		g->st.segments_skipped++;
		return 0;
	}
	if (live == 0 || compact_it) {
		s->unique_chunks -= BKS_MIN(s->unique_chunks, dead_chunks);
		s->unique_raw -= BKS_MIN(s->unique_raw, dead_raw);
	}
	if (live == 0) {
		pool_free_row(s->pl, row);
		g->st.segments_freed++;
		g->st.rows_freed++;
		s->stored -= BKS_MIN(s->stored, total);
		return 0;
	}
	if (!compact_it)
		return 0;
	int r = compact(s, g, &h, n);
	if (r < 0)
		return r;
	pool_free_row(s->pl, row);
	g->st.segments_compacted++;
	g->st.rows_freed++;
	/* The moved chunks are counted again by the new segment. */
	s->stored -= BKS_MIN(s->stored, total - live);
	return 0;
}

/* --- metadata compaction --- */

/* Is the block p points to in a victim row (and still the segment the mark saw)? */
static int in_victim(void *ctx, const seg_ptr *p)
{
	store *s = ctx;
	return p->row < pool_rows(s->pl) && s->gc->victim[p->row] &&
	       pool_row_seg(s->pl, p->row) == p->seg_id;
}

/* Move the map blocks of up to GC_OBJS_PER_STEP objects out of the victims. Objects
 * created after the mark have no block in them (new blocks go to segments above the
 * horizon), so a step may leave the store for other work in between. */
static int reloc_maps(store *s, gc_state *g)
{
	for (int i = 0; i < GC_OBJS_PER_STEP && g->obj_cursor < barray_count(s->objtab); i++) {
		uint64_t id = g->obj_cursor++;
		obj_rec o;
		if (store_obj_get(s, id, &o) < 0)
			continue;
		int r = map_relocate(s->pl, &o, s->p.pool.meta_block, in_victim, s,
		                     &g->st.meta_blocks_moved, &g->st.meta_bytes_moved);
		if (r < 0)
			return r;
		if (r > 0)
			obj_rec_encode(&o, barray_mut(s->objtab, id));
	}
	return g->obj_cursor < barray_count(s->objtab);
}

/* The rest of the metadata, then free the victims: one step, so no commit comes
 * between the last move and the frees. */
static int reloc_finish(store *s, gc_state *g)
{
	int r = fpidx_relocate(s->idx, in_victim, s, &g->st.meta_blocks_moved,
	                       &g->st.meta_bytes_moved);
	if (r < 0)
		return r;
	g->st.meta_blocks_moved += barray_relocate(s->objtab, in_victim, s);
	g->st.meta_blocks_moved += pool_relocate_meta(s->pl, in_victim, s);
	for (store_writer *w = s->writers; w; w = w->next)
		for (size_t i = 0; i < w->mw.nwritten; i++)
			BKS_PANIC_IF(in_victim(s, &w->mw.written[i]),
			             "gc: a block of an object being written is in victim row %llu",
			             (unsigned long long)w->mw.written[i].row);
	for (uint64_t row = 0; row < pool_rows(s->pl); row++) {
		if (!g->victim[row])
			continue;
		pool_free_row(s->pl, row);
		g->victim[row] = 0;
		g->st.meta_rows_compacted++;
		g->st.rows_freed++;
	}
	g->nvictims = 0;
	g->victim_bytes = 0;
	return 0;
}

/* The array ran out of the collector's room while moving metadata (the victims were
 * chosen to fit, but the copy-forward of data in the same pass took rows since):
 * give the compaction up for this round. Safe at any point, because victims are
 * freed only after every reference left them (reloc_finish's last loop): the copies
 * made so far are referenced or garbage, the victims keep what they hold. */
static int gc_phase(store *s, gc_state *g);

static void abandon_meta(gc_state *g, uint64_t nrows)
{
	memset(g->victim, 0, nrows);
	g->nvictims = 0;
	g->victim_bytes = 0;
	g->st.meta_compaction_abandoned++;
}

/* One bounded piece of the sweep, in the collector's space class (WORK: it may dip
 * into the rows kept back for it, never into the commit's). */
static int gc_step_in(store *s, gc_state *g)
{
	int r = gc_phase(s, g);
	if (r == -ENOSPC && g->phase != GC_ROWS) {
		abandon_meta(g, pool_rows(s->pl));
		r = 0;
	}
	return r;
}

static int gc_phase(store *s, gc_state *g)
{
	int r = 0;
	if (g->phase == GC_ROWS) {
		for (int i = 0; i < GC_ROWS_PER_STEP && g->cursor < pool_rows(s->pl) && r == 0; i++)
			r = sweep_row(s, g, g->cursor++);
		if (r == 0 && g->cursor < pool_rows(s->pl))
			return 1;
		if (r == 0 && g->nvictims) {
			g->phase = GC_MAPS;
			return 1;
		}
	} else if (g->phase == GC_MAPS) {
		r = reloc_maps(s, g);
		if (r > 0)
			return 1;
		if (r == 0) {
			g->phase = GC_FINISH;
			return 1;
		}
	} else {
		r = reloc_finish(s, g);
	}
	return r;
}

int store_gc_step(store *s)
{
	gc_state *g = s->gc;
	if (!g || !g->active)
		return 0;
	int space = pool_set_space(s->pl, POOL_SPACE_WORK);
	int r = gc_step_in(s, g);
	pool_set_space(s->pl, space);
	if (r > 0)
		return 1;
	g->active = 0;
	g->st.running = 0;
	if (r < 0)
		return r;
	uint64_t all = g->st.live_bytes + g->st.dead_bytes;
	s->last_live_fraction = all ? (double)g->st.live_bytes / (double)all : 1.0;
	return 0;
}

/* Dead index entries go with the next merge; merge now so the index does not keep
 * pointing into freed rows, unless the array is too full to rewrite the index: the
 * commit, which makes the freed rows reusable, matters more (the dead entries go with
 * a later merge). */
static int merge_index(store *s)
{
	if (fpidx_sync_bytes(s->idx, 1) >= pool_space_room(s->pl, POOL_SPACE_WORK))
		return 0;
	int space = pool_set_space(s->pl, POOL_SPACE_WORK);
	int r = fpidx_compact(s->idx);
	pool_set_space(s->pl, space);
	return r;
}

int store_gc_run(store *s, double min_live)
{
	int r = store_gc_start(s, min_live), merged = 0;
	/* Merged before the last metadata step: the new run lands outside the victims,
	 * so the old runs' blocks need no copying. */
	while (r == 0 && (r = store_gc_step(s)) > 0) {
		r = 0;
		if (!merged && s->gc->phase == GC_FINISH) {
			merged = 1;
			if ((r = merge_index(s)) < 0) {
				s->gc->active = 0;
				s->gc->st.running = 0;
			}
		}
	}
	if (r == 0 && !merged)
		r = merge_index(s);
	if (r == 0)
		r = store_commit(s, NULL);
	return r;
}

void store_gc_get_stats(const store *s, store_gc_stats *st)
{
	if (s->gc)
		*st = s->gc->st;
	else
		memset(st, 0, sizeof(*st));
}

/* --- verify --- */

struct verify_ctx {
	store *s;
	store_verify_report *rep;
	uint8_t *buf;
	uint64_t id;
	int bad;
};

static void verify_note_bad(struct verify_ctx *v, const map_ext *e)
{
	store_verify_report *rep = v->rep;
	store_verify_bad b;
	memset(&b, 0, sizeof(b));
	memcpy(b.fp, e->fp, FP_LEN);
	b.len = (uint32_t)e->len;
	b.id = v->id;
	int seen = 0;
	for (uint32_t i = 0; i < rep->nbad && !seen; i++)
		seen = !memcmp(rep->bad[i].fp, b.fp, FP_LEN);
	if (!seen && rep->nbad < STORE_VERIFY_BAD)
		rep->bad[rep->nbad++] = b;
	if (rep->on_bad)
		rep->on_bad(rep->on_bad_ctx, &b);
}

static int verify_ext(void *ctx, const map_ext *e)
{
	struct verify_ctx *v = ctx;
	uint8_t fp[FP_LEN];
	if (map_ext_is_hole(e))
		return 0; /* stores nothing: not damage, nothing to check */
	v->rep->chunks_checked++;
	v->rep->bytes_checked += e->len;
	if (store_read_chunk(v->s, e, v->buf) < 0 || fp_compute(v->s->fpc, v->buf, e->len, fp) < 0 ||
	    memcmp(fp, e->fp, FP_LEN)) {
		v->rep->chunks_bad++;
		v->bad = 1;
		verify_note_bad(v, e);
	}
	return 0;
}

static uint64_t array_cksum_errors(store *s)
{
	arr_status *st = malloc(sizeof(*st));
	uint64_t n = 0;
	if (!st)
		return 0;
	arr_get_status(pool_array(s->pl), st);
	for (int i = 0; i < st->ndisks; i++)
		n += st->disks[i].cksum_errors;
	free(st);
	return n;
}

/* One object into rep (counts only; damaged ids are the caller's to record). */
static int verify_obj(store *s, uint64_t id, store_verify_report *rep, uint8_t *buf)
{
	struct verify_ctx v = {s, rep, buf, id, 0};
	obj_rec o;
	if (store_obj_get(s, id, &o) < 0)
		return -ENOENT;
	rep->objects++;
	int r = map_walk(s->pl, &o, s->p.pool.meta_block, verify_ext, NULL, &v);
	if (r < 0)
		v.bad = 1; /* the map itself is damaged */
	if (v.bad) {
		if (rep->objects_damaged < BKS_ARRAY_SIZE(rep->damaged_ids))
			rep->damaged_ids[rep->objects_damaged] = id;
		rep->objects_damaged++;
	}
	return v.bad;
}

int store_verify_one(store *s, uint64_t id, store_verify_report *rep)
{
	uint8_t *buf = malloc(s->p.cdc.max);
	if (!buf)
		return -ENOMEM;
	uint64_t ck0 = array_cksum_errors(s);
	int r = verify_obj(s, id, rep, buf);
	rep->repaired += array_cksum_errors(s) - ck0;
	free(buf);
	return r;
}

uint64_t store_id_limit(store *s)
{
	return barray_count(s->objtab);
}

int store_verify(store *s, store_verify_report *rep)
{
	uint8_t *buf = malloc(s->p.cdc.max);
	memset(rep, 0, sizeof(*rep));
	if (!buf)
		return -ENOMEM;
	uint64_t ck0 = array_cksum_errors(s);
	for (uint64_t id = 1; id < barray_count(s->objtab); id++)
		verify_obj(s, id, rep, buf);
	free(buf);
	rep->repaired = array_cksum_errors(s) - ck0;
	return 0;
}
