/* dedup/store_defer.c: deferred compression — the background pass that compresses
 * chunks a busy stream stored raw.
 *
 * Under pressure (a first backup that outruns zstd on the daemon's cores) the daemon
 * may store new chunks raw (store.zstd_level_busy = 0): store_put_prepared with
 * SEG_RAW_DEFERRED. Such an item is an ordinary raw item (readers need nothing new)
 * whose table entry has SEG_EF_DEFERRED, in a segment whose header has
 * SEG_HF_DEFERRED: the mark is in the segment itself, so it survives restarts and
 * crashes, and older builds, which never read those bytes, read the segment as before
 * (docs/format.md "Segment").
 *
 * The pass walks the rows in cycles, like scrub. For a committed data segment whose
 * header says deferred, it moves the segment's chunks to the open data segment the
 * way the collector's copy-forward does (store_gc.c compact): each chunk the index
 * names in this segment is read, a deferred one compressed at the pass's level (kept
 * raw, without the flag, when zstd does not shrink it: an incompressible chunk is
 * tried once), any other copied as it is stored; the index is pointed at the copy;
 * then the row is freed. A chunk the index names elsewhere has another copy that
 * serves every map (a read that finds this row reused asks the index, -ESTALE), and
 * goes with the row. Content maps keep their old pointers, as after a collection.
 *
 * Only segments of the last commit (id below the segment counter at that commit) are
 * moved: a segment the txg being built wrote is taken by a later cycle.
 *
 * Crash story: exactly the collector's. The row is freed with pool_free_row: written
 * FREE in this txg's row table and reusable only after this txg commits. Until that
 * commit lands, the last commit is whole: the old segment is where it was, its index
 * entries are the committed ones, and the copies are referenced only by the txg being
 * built. A crash before the commit loses the copies (garbage in rows the last commit
 * calls free) and the next open's pass finds the segment still flagged and moves it
 * again. An intent-log record written in between lists the new rows (their chunks are
 * indexed again at replay) but never freed rows, so the old segment stays in use after
 * a replay; the next cycle finds the index naming the copy and frees it.
 *
 * Not every byte is known after an open: the pass starts with a cycle over every row
 * (a header read each) to find segments a previous run left flagged. */
#include <config.h>

#include "dedup/store_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

/* Rows looked at per step at most (a header read each), whatever the byte budget. */
#define DEFER_ROWS_PER_STEP 256

struct defer_state {
	int level;
	int cycle;             /* a cycle is under way: cursor is its next row */
	uint64_t cursor;
	int again;             /* this cycle left a flagged segment behind: one more */
	int uncommitted;       /* ... of which one the last commit does not hold yet */
	int no_room;           /* ... of which one for lack of room */
	int old_left;          /* ... of which one an earlier run wrote (not in noted) */
	uint64_t wait_horizon; /* no cycle before a commit moves s->defer_horizon past this */
	int wait_room;         /* no cycle before s->defer_commits moves past wait_commits */
	uint64_t wait_commits;
	int old_clear;         /* a whole cycle left no segment of an earlier run behind */
	uint64_t raw_done_old; /* raw_done of segments an earlier run wrote */
	uint64_t noted_at_start; /* s->defer_noted_n when the cycle started */
	ZSTD_CCtx *cctx;
	seg_entry *ents;
	uint32_t ents_cap;
	/* store_defer_item's cache: the table of the committed segment last asked
	 * about (a segment is never changed and its id never reused, so it is never
	 * stale; it is read again only for another segment). */
	seg_entry *tc_ents;
	uint32_t tc_n;
	uint64_t tc_seg;
	uint8_t *ibuf, *zbuf;
	store_defer_stats st;
};

void store_defer_free(store *s)
{
	defer_state *d = s->defer;
	if (!d)
		return;
	ZSTD_freeCCtx(d->cctx);
	free(d->ents);
	free(d->tc_ents);
	free(d->ibuf);
	free(d->zbuf);
	free(d);
	s->defer = NULL;
}

static defer_state *defer_get(store *s)
{
	if (s->defer)
		return s->defer;
	defer_state *d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->level = s->defer_level > 0 ? s->defer_level : BKS_MAX(s->p.pool.zstd_level, 1);
	d->ents_cap = pool_row_bytes(s->pl) / (SEG_ENTRY_SIZE + 1) + 1;
	d->ents = calloc(d->ents_cap, sizeof(*d->ents));
	d->tc_ents = calloc(d->ents_cap, sizeof(*d->tc_ents));
	d->ibuf = malloc(s->p.cdc.max);
	d->zbuf = malloc(s->p.cdc.max);
	d->cctx = ZSTD_createCCtx();
	if (!d->ents || !d->tc_ents || !d->ibuf || !d->zbuf || !d->cctx) {
		s->defer = d;
		store_defer_free(s);
		return NULL;
	}
	s->defer = d;
	return d;
}

void store_defer_note(store *s, uint32_t len)
{
	s->defer_pending = 1;
	s->defer_noted += len;
	s->defer_noted_n++;
}

void store_set_defer_level(store *s, int level)
{
	s->defer_level = level;
	if (s->defer)
		s->defer->level = level > 0 ? level : BKS_MAX(s->p.pool.zstd_level, 1);
}

/* The entry at offset off among n entries in table order (offsets ascending), or -1. */
static int entry_at(const seg_entry *en, uint32_t n, uint32_t off)
{
	uint32_t lo = 0, hi = n;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (en[mid].off == off)
			return (int)mid;
		if (en[mid].off < off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

int store_defer_item(store *s, const seg_ptr *p)
{
	/* Only a raw data item can be deferred; a wrong answer costs nothing worse
	 * than a chunk crossing as before (raw, not flagged), so a table that cannot
	 * be read says no. */
	if (p->codec != SEG_RAW || p->kind != SEG_DATA)
		return 0;
	pool_oseg o;
	pool_oseg_info(s->pl, SEG_DATA, &o);
	if (o.seg_id && o.seg_id == p->seg_id) {
		/* Still being filled: its table is in memory. */
		uint32_t lo = 0, hi = o.nitems;
		while (lo < hi) {
			uint32_t mid = lo + (hi - lo) / 2;
			seg_entry en;
			const uint8_t *b;
			if (pool_oseg_item(s->pl, SEG_DATA, mid, &en, &b) < 0)
				return 0;
			if (en.off == p->off)
				return en.codec == SEG_RAW && (en.flags & SEG_EF_DEFERRED);
			if (en.off < p->off)
				lo = mid + 1;
			else
				hi = mid;
		}
		return 0;
	}
	defer_state *d = defer_get(s);
	if (!d)
		return -ENOMEM;
	if (d->tc_seg != p->seg_id) {
		seg_header h;
		d->tc_seg = 0;
		int n = pool_read_seg_table(s->pl, p->row, &h, d->tc_ents, d->ents_cap);
		if (n < 0 || h.seg_id != p->seg_id)
			return 0;
		d->tc_seg = p->seg_id;
		d->tc_n = (uint32_t)n;
	}
	int i = entry_at(d->tc_ents, d->tc_n, p->off);
	return i >= 0 && d->tc_ents[i].codec == SEG_RAW &&
	       (d->tc_ents[i].flags & SEG_EF_DEFERRED);
}

int store_defer_pending(const store *s)
{
	return s->defer_pending;
}

/* Move one flagged segment's chunks (see the top). 0 (moved, or left for a later
 * cycle), -errno (the pass stops; the segment stays as it is, still valid). */
static int move_segment(store *s, defer_state *d, uint64_t row, const seg_header *hh,
                        uint64_t *done)
{
	seg_header h;
	int n = pool_read_seg_table(s->pl, row, &h, d->ents, d->ents_cap);
	if (n < 0 || h.seg_id != hh->seg_id) {
		/* Unreadable: scrub and verify report it; not retried by this cycle's
		 * "again" (a damaged row would keep the pass busy forever). */
		d->st.segments_failed++;
		return 0;
	}
	uint64_t total = 0;
	for (int i = 0; i < n; i++)
		total += d->ents[i].slen;
	/* Copying forward takes rows before the commit gives this one back (pool.h
	 * "space"): only as far as the collector's share goes. */
	if (total + (uint64_t)n * SEG_ENTRY_SIZE > pool_space_room(s->pl, POOL_SPACE_WORK)) {
		d->st.segments_skipped++;
		d->again = d->no_room = 1;
		return 0;
	}
	int64_t dstored = 0;
	uint64_t drop_n = 0, drop_raw = 0, drop_stored = 0;
	int r = 0, failed = 0;
	for (int i = 0; i < n && r == 0 && !failed; i++) {
		seg_entry *en = &d->ents[i];
		seg_ptr old, cur, np;
		seg_ptr_from_entry(&h, en, &old);
		int deferred = en->codec == SEG_RAW && (en->flags & SEG_EF_DEFERRED);
		if ((r = fpidx_lookup(s->idx, en->fp, &cur)) < 0)
			break;
		if (r == 1 && (cur.seg_id != h.seg_id || cur.off != en->off)) {
			/* Another copy serves the maps that point here: this one goes
			 * with the row (as the collector's damaged-copy case). */
			drop_n++;
			drop_raw += en->rlen;
			drop_stored += en->slen;
			if (deferred) {
				d->st.raw_done += en->rlen;
				if (h.seg_id < s->defer_open_seg)
					d->raw_done_old += en->rlen;
			}
			r = 0;
			continue;
		}
		/* Not a chunk of this store, or unreadable: the copies made so far are
		 * valid and indexed; the row keeps the rest and is not freed (scrub and
		 * verify report it; this cycle's "again" does not retry it). */
		if (en->rlen > s->p.cdc.max ||
		    pool_read_stored(s->pl, &old, d->ibuf, s->p.cdc.max) < 0) {
			failed = 1;
			r = 0;
			break;
		}
		*done += en->slen;
		const void *src = d->ibuf;
		uint32_t slen = en->slen;
		int codec = en->codec;
		if (deferred) {
			size_t z = ZSTD_compressCCtx(d->cctx, d->zbuf, en->rlen - 1, d->ibuf, en->rlen,
			                             d->level);
			if (!ZSTD_isError(z) && z > 0 && z < en->rlen) {
				src = d->zbuf;
				slen = (uint32_t)z;
				codec = SEG_ZSTD;
				d->st.chunks_compressed++;
			} else {
				d->st.chunks_incompressible++; /* raw for good: no flag */
			}
			d->st.raw_done += en->rlen;
			if (h.seg_id < s->defer_open_seg)
				d->raw_done_old += en->rlen;
			d->st.stored_after += slen;
		} else {
			d->st.chunks_copied++;
		}
		if ((r = pool_add_stored(s->pl, en->fp, src, slen, en->rlen, codec, &np)) < 0 ||
		    (r = fpidx_insert(s->idx, en->fp, &np)) < 0)
			break;
		dstored += (int64_t)slen - (int64_t)en->slen;
	}
	s->stored = (uint64_t)BKS_MAX((int64_t)s->stored + dstored, (int64_t)0);
	if (r < 0 || failed) {
		if (failed)
			d->st.segments_failed++;
		return r;
	}
	/* The other copies' duplicates go with the row (only if it goes). */
	s->unique_chunks -= BKS_MIN(s->unique_chunks, drop_n);
	s->unique_raw -= BKS_MIN(s->unique_raw, drop_raw);
	s->stored -= BKS_MIN(s->stored, drop_stored);
	dstored -= (int64_t)drop_stored;
	d->st.chunks_dropped += drop_n;
	pool_free_row(s->pl, row);
	d->st.segments_done++;
	d->st.bytes_saved += (uint64_t)BKS_MAX(-dstored, (int64_t)0);
	return 0;
}

/* One row of the cycle. */
static int defer_row(store *s, defer_state *d, uint64_t row, uint64_t *done)
{
	if (pool_row_state(s->pl, row) != ROW_DATA)
		return 0;
	uint64_t seg = pool_row_seg(s->pl, row), od, om;
	pool_open_segs(s->pl, &od, &om);
	if (seg == 0 || seg == od)
		return 0; /* being filled: its header is not written yet */
	seg_header h;
	if (pool_read_seg_header(s->pl, row, &h) < 0 || h.seg_id != seg)
		return 0; /* unreadable: scrub and verify report it */
	*done += SEG_HDR_SIZE;
	if (!(h.flags & SEG_HF_DEFERRED))
		return 0;
	if (seg >= s->defer_horizon) {
		d->again = d->uncommitted = 1; /* not committed yet: after the next commit */
		return 0;
	}
	uint64_t moved = d->st.segments_done;
	int r = move_segment(s, d, row, &h, done);
	if (d->st.segments_done == moved && seg < s->defer_open_seg)
		d->old_left = 1; /* its bytes are still unknown (not in noted) */
	return r;
}

int store_defer_step(store *s, uint64_t budget)
{
	if (!s->defer_pending)
		return 0;
	defer_state *d = defer_get(s);
	if (!d)
		return -ENOMEM;
	uint64_t nrows = pool_rows(s->pl);
	if (!d->cycle && d->wait_horizon && s->defer_horizon == d->wait_horizon)
		return 0; /* what is left waits for a commit (pending stays set) */
	if (!d->cycle && d->wait_room && s->defer_commits == d->wait_commits)
		return 0; /* no room: only a commit gives rows back (pending stays set) */
	if (!d->cycle) {
		d->wait_horizon = 0;
		d->wait_room = 0;
		d->uncommitted = 0;
		d->no_room = 0;
		d->old_left = 0;
		d->cycle = 1;
		d->cursor = 0;
		d->again = 0;
		d->noted_at_start = s->defer_noted_n;
		d->st.rows_total = nrows;
	}
	int space = pool_set_space(s->pl, POOL_SPACE_WORK);
	uint64_t done = 0;
	int r = 0;
	for (int i = 0; i < DEFER_ROWS_PER_STEP && d->cursor < nrows && done < budget && r == 0;
	     i++)
		r = defer_row(s, d, d->cursor++, &done);
	pool_set_space(s->pl, space);
	d->st.rows_scanned = d->cursor;
	d->st.bytes_read += done;
	if (r < 0) {
		/* The cycle starts over later; what moved is moved (see the top). */
		d->cycle = 0;
		d->st.errors++;
		return r;
	}
	if (d->cursor < nrows)
		return 1;
	d->cycle = 0;
	d->st.cycles++;
	if (!d->old_left)
		d->old_clear = 1;
	if (!d->again && s->defer_noted_n == d->noted_at_start) {
		s->defer_pending = 0;
		return 0;
	}
	/* Segments of the txg being built (or written during the cycle, anywhere) are
	 * left: the next cycle starts after the next commit rather than read every
	 * header again for nothing. */
	int wait = 0;
	if (d->uncommitted || s->defer_noted_n != d->noted_at_start) {
		d->wait_horizon = s->defer_horizon;
		wait = 1;
	}
	/* A segment skipped for lack of room (pool_space_room): the rows this cycle
	 * freed, and any the collector or deletes free, come back only with a commit.
	 * Another cycle before it would read every header again and skip the same
	 * segments: back to back, under the caller's lock, until then (a nearly full
	 * array kept the pass busy for nothing). */
	if (d->no_room) {
		d->wait_room = 1;
		d->wait_commits = s->defer_commits;
		d->st.room_waits++;
		wait = 1;
	}
	return wait ? 0 : 1;
}

void store_defer_committed(store *s)
{
	s->defer_horizon = pool_next_seg_id(s->pl);
	s->defer_commits++;
}

int store_defer_run(store *s, bks_err *e)
{
	int r, guard = 0;
	uint64_t done_at_wait = UINT64_MAX;
	/* A cycle that left segments of the txg being built, or that found no room,
	 * waits for a commit: here, one now. Two room waits in a row with nothing moved
	 * in between: the commit gave nothing back, the array is full. */
	while ((r = store_defer_step(s, UINT64_MAX)) >= 0 && s->defer_pending) {
		if (r == 0 && s->defer && s->defer->wait_room) {
			if (s->defer->st.segments_done == done_at_wait)
				return bks_fail(e, -ENOSPC, "deferred compression: no room to move "
				                "the segments left (the array is full)");
			done_at_wait = s->defer->st.segments_done;
		}
		if (r == 0 && (r = store_commit(s, e)) < 0)
			return r;
		if (++guard > 1000000)
			return bks_fail(e, -ELOOP, "deferred compression: no end in sight");
	}
	if (r < 0)
		return bks_fail(e, r, "deferred compression: %s", strerror(-r));
	return store_commit(s, e);
}

void store_defer_get_stats(const store *s, store_defer_stats *st)
{
	if (s->defer)
		*st = s->defer->st;
	else
		memset(st, 0, sizeof(*st));
	st->pending = s->defer_pending;
	st->running = s->defer && s->defer->cycle;
	st->noted_bytes = s->defer_noted;
	st->wait_room = s->defer && s->defer->wait_room;
	/* raw_done of an earlier run's segments is not part of noted_bytes. */
	uint64_t done_new = st->raw_done - (s->defer ? s->defer->raw_done_old : 0);
	st->bytes_left = s->defer_noted > done_new ? s->defer_noted - done_new : 0;
	st->bytes_left_estimate = !(s->defer && s->defer->old_clear);
	if (!s->defer_pending) {
		st->bytes_left = 0;
		st->bytes_left_estimate = 0;
	}
}
