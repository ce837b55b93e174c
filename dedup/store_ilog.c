/* dedup/store_ilog.c: store_sync through the intent log, and its replay at open.
 *
 * A sync appends one record that describes everything changed since the previous
 * record: the rows written since (row, segment id, kind), the items added to the
 * open segments since (their table entries and stored bytes: a small sync seals no
 * row), and the current object record of every object put or deleted. A segment
 * whose new items would make the record large (a big file's last chunks) is sealed
 * and written instead, and named as a row. arr_ilog_write flushes the rows before the
 * record, so a record never names a row that is not durable.
 *
 * Why items go into the record: sealing a part-full segment at every sync pinned a
 * whole row per synced small file (300 files of 1 KiB, 308 rows). Now the open
 * segments keep filling across syncs and reach the array full, or at the next commit.
 *
 * Replay (at open, before anything else) handles each record in order: named rows
 * are checked as whole segments, marked in use, and their chunks indexed and
 * counted; copied items are added again, in order, to rebuilt open segments at the
 * very offsets they had (pool_replay_item), so the pointers in the records' objects
 * hold; then the object records are applied, and the store commits: the log is empty
 * again (records carry the txg they follow). A segment carried open by one record and
 * named as a row by a later one is taken from its row. Record layout: docs/format.md
 * "Intent log".
 *
 * What a replay brings back is exactly what the last sync saw: objects still being
 * written are not in any record (their blocks may be on disk or in a record,
 * unreferenced), and rows freed since the commit stay in use until the collector
 * frees them again. */
#include <config.h>

#include "dedup/store_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/endian.h"

static const char LOG_MAGIC[4] = {'B', 'K', 'S', 'L'};
#define LOG_VERSION 3u   /* 1: rows and objects only; 2: no logical bytes (both
                          * still replayed) */
#define LOG_HDR1 32
#define LOG_HDR2 40
#define LOG_HDR 48
#define LOG_ROW 24
#define LOG_OBJ (8 + OBJ_REC)
#define LOG_SEGX 32      /* kind 4, first item 4, segment id 8, row 8, count 4, bytes 4 */
#define LOG_ITEM 64      /* fp 32, offset 4, stored 4, raw 4, codec 1, flags 1, zero 2,
                          * xxh3 8, zero 8 */
/* Items of an open segment go into the record while they are at most this many
 * bytes (entries + stored bytes); more, and the segment is sealed instead. A record
 * stays small, so about a hundred small syncs fit the log between commits. */
#define LOG_INLINE_MAX (64u << 10)

static int kind_slot(int kind)
{
	return kind == SEG_DATA ? 0 : 1;
}

void store_ilog_note_obj(store *s, uint64_t id)
{
	/* Out of memory here only costs a full commit at the next sync. */
	if (u64set_add(&s->log_objs, id) < 0)
		s->log_overflow = 1;
}

void store_ilog_committed(store *s)
{
	u64set_clear(&s->log_objs);
	u64set_clear(&s->log_listed);
	memset(s->log_oseg, 0, sizeof(s->log_oseg));
	s->log_rows_done = 0;
	s->log_overflow = 0;
}

/* Items of the open segment of kind not yet in a record: [*first, o->nitems). */
static void oseg_delta(store *s, int kind, pool_oseg *o, uint32_t *first, size_t *bytes)
{
	int k = kind_slot(kind);
	pool_oseg_info(s->pl, kind, o);
	*first = o->seg_id && s->log_oseg[k].seg_id == o->seg_id ? s->log_oseg[k].n : 0;
	*bytes = 0;
	for (uint32_t i = *first; i < o->nitems; i++) {
		seg_entry en;
		const uint8_t *st;
		if (pool_oseg_item(s->pl, kind, i, &en, &st) == 0)
			*bytes += LOG_ITEM + BKS_ROUND_UP(en.slen, 8u);
	}
}

static int row_is_open(const pool_newrow *nr, const pool_oseg *o)
{
	return (o[0].seg_id && nr->seg_id == o[0].seg_id) ||
	       (o[1].seg_id && nr->seg_id == o[1].seg_id);
}

static int encode(store *s, uint8_t **out, size_t *outlen)
{
	const pool_newrow *nr;
	size_t nnew = pool_new_rows(s->pl, &nr);
	pool_oseg o[2];
	uint32_t first[2];
	size_t xb[2];
	size_t rows = 0, nsegx = 0;

	oseg_delta(s, SEG_DATA, &o[0], &first[0], &xb[0]);
	oseg_delta(s, SEG_META, &o[1], &first[1], &xb[1]);
	for (size_t i = s->log_rows_done; i < nnew; i++)
		rows += !row_is_open(&nr[i], o) && !u64set_has(&s->log_listed, nr[i].seg_id);
	size_t len = LOG_HDR + rows * LOG_ROW + s->log_objs.n * LOG_OBJ;
	for (int k = 0; k < 2; k++)
		if (o[k].seg_id && first[k] < o[k].nitems) {
			nsegx++;
			len += LOG_SEGX + xb[k];
		}
	if (len > ILOG_MAX_PAYLOAD)
		return -ENOSPC;
	uint8_t *b = calloc(1, len), *p;
	if (!b)
		return -ENOMEM;
	memcpy(b, LOG_MAGIC, 4);
	le_put32(b + 4, LOG_VERSION);
	le_put64(b + 8, pool_txg(s->pl));
	le_put64(b + 16, s->next_obj);
	le_put32(b + 24, (uint32_t)rows);
	le_put32(b + 28, (uint32_t)s->log_objs.n);
	le_put32(b + 32, (uint32_t)nsegx);
	/* The store's logical bytes as of this record: replay takes them as they are
	 * (the object records alone would need every changed map walked to tell the
	 * mapped bytes they replace from those they bring). */
	le_put64(b + 40, s->logical);
	p = b + LOG_HDR;
	for (size_t i = s->log_rows_done; i < nnew; i++) {
		if (row_is_open(&nr[i], o) || u64set_has(&s->log_listed, nr[i].seg_id))
			continue;
		le_put64(p, nr[i].row);
		le_put64(p + 8, nr[i].seg_id);
		le_put32(p + 16, nr[i].kind);
		p += LOG_ROW;
	}
	for (int k = 0; k < 2; k++) {
		int kind = k == 0 ? SEG_DATA : SEG_META;
		if (!o[k].seg_id || first[k] >= o[k].nitems)
			continue;
		uint8_t *x = p, *q = p + LOG_SEGX;
		uint32_t n = o[k].nitems - first[k], data = 0;
		le_put32(x, (uint32_t)kind);
		le_put32(x + 4, first[k]);
		le_put64(x + 8, o[k].seg_id);
		le_put64(x + 16, o[k].row);
		le_put32(x + 24, n);
		for (uint32_t i = first[k]; i < o[k].nitems; i++, q += LOG_ITEM) {
			seg_entry en;
			const uint8_t *st;
			if (pool_oseg_item(s->pl, kind, i, &en, &st) < 0) {
				free(b);
				return -EIO;
			}
			memcpy(q, en.fp, FP_LEN);
			le_put32(q + 32, en.off);
			le_put32(q + 36, en.slen);
			le_put32(q + 40, en.rlen);
			q[44] = en.codec;
			q[45] = en.flags; /* (SEG_EF_*: older builds ignore it) */
			le_put64(q + 48, en.xxh);
		}
		for (uint32_t i = first[k]; i < o[k].nitems; i++) {
			seg_entry en;
			const uint8_t *st;
			pool_oseg_item(s->pl, kind, i, &en, &st);
			memcpy(q, st, en.slen);
			q += BKS_ROUND_UP(en.slen, 8u);
			data += BKS_ROUND_UP(en.slen, 8u);
		}
		le_put32(x + 28, data);
		p = q;
	}
	for (uint64_t i = 0; i < s->log_objs.cap; i++) {
		uint64_t id = s->log_objs.k[i];
		if (!id)
			continue;
		le_put64(p, id);
		if (id < barray_count(s->objtab))
			memcpy(p + 8, barray_get(s->objtab, id), OBJ_REC);
		p += LOG_OBJ;
	}
	BKS_PANIC_IF((size_t)(p - b) != len, "intent log record size %zu != %zu",
	             (size_t)(p - b), len);
	*out = b;
	*outlen = len;
	return 0;
}

/* The record is durable: remember what it carried, so the next one starts after. */
static void logged(store *s)
{
	const pool_newrow *nr;
	size_t nnew = pool_new_rows(s->pl, &nr);
	pool_oseg o[2];
	pool_oseg_info(s->pl, SEG_DATA, &o[0]);
	pool_oseg_info(s->pl, SEG_META, &o[1]);
	size_t i = s->log_rows_done;
	while (i < nnew && !row_is_open(&nr[i], o))
		i++;
	s->log_rows_done = i;
	for (; i < nnew; i++)
		if (!row_is_open(&nr[i], o) && u64set_add(&s->log_listed, nr[i].seg_id) < 0)
			s->log_overflow = 1;
	for (int k = 0; k < 2; k++) {
		s->log_oseg[k].seg_id = o[k].seg_id;
		s->log_oseg[k].n = o[k].nitems;
	}
	u64set_clear(&s->log_objs);
}

int store_sync(store *s, uint64_t id, bks_err *e)
{
	obj_rec o;
	uint8_t *rec = NULL;
	size_t len;
	int r;

	if (store_obj_get(s, id, &o) < 0)
		return bks_fail(e, -ENOENT, "no object %llu", (unsigned long long)id);
	/* The automatic collection advances with the syncs that make its garbage; the
	 * one that finishes it commits, so the rows it freed are reusable now. */
	if (store_gc_auto_sync(s))
		return store_commit(s, e);
	if (!s->log || s->log_overflow)
		return store_commit(s, e);
	/* An open segment with many new items is written as a row; the others travel
	 * in the record. */
	for (int kind = SEG_DATA; kind <= SEG_META; kind++) {
		pool_oseg os;
		uint32_t first;
		size_t bytes;
		oseg_delta(s, kind, &os, &first, &bytes);
		if (bytes > LOG_INLINE_MAX && (r = pool_seal_kind(s->pl, kind)) < 0)
			return bks_fail(e, r, "sync: writing a segment: %s", strerror(-r));
	}
	if ((r = pool_drain(s->pl)) < 0)
		return bks_fail(e, r, "sync: writing segments: %s", strerror(-r));
	r = encode(s, &rec, &len);
	if (r == 0)
		r = ilog_append(s->log, pool_txg(s->pl) - 1, rec, len, NULL);
	free(rec);
	if (r == -ENOSPC || r == -ENOMEM) {
		s->log_full_commits++;
		return store_commit(s, e); /* the log is full: a commit empties it */
	}
	if (r < 0)
		return bks_fail(e, r, "sync: intent log write failed: %s", strerror(-r));
	logged(s);
	s->log_syncs++;
	return 0;
}

/* --- replay --- */

static int index_chunk(store *s, const seg_entry *en, const seg_ptr *p, bks_err *e)
{
	/* The newest location wins, as for chunks the collector moved. */
	int r = fpidx_insert(s->idx, en->fp, p);
	if (r < 0)
		return bks_fail(e, r, "intent log replay: index: %s", strerror(-r));
	s->unique_chunks++;
	s->unique_raw += en->rlen;
	s->stored += en->slen;
	return 0;
}

/* Index and count the chunks of a data row named by a record, after the first
 * `skip` (earlier records carried those as items of the open segment). */
static int replay_data_row(store *s, uint64_t row, uint32_t skip, bks_err *e)
{
	size_t cap = pool_row_bytes(s->pl) / SEG_ENTRY_SIZE + 1;
	seg_entry *ents = malloc(cap * sizeof(*ents));
	seg_header h;
	int r;
	if (!ents)
		return bks_fail(e, -ENOMEM, "out of memory");
	int n = pool_read_seg_table(s->pl, row, &h, ents, cap);
	if (n < 0) {
		r = bks_fail(e, n, "intent log replay: table of row %llu unreadable",
		             (unsigned long long)row);
		goto out;
	}
	if ((uint32_t)n < skip) {
		r = bks_fail(e, -EINVAL, "intent log replay: row %llu holds %d items, earlier "
		             "records gave %u", (unsigned long long)row, n, skip);
		goto out;
	}
	for (int i = (int)skip; i < n; i++) {
		seg_ptr p;
		seg_ptr_from_entry(&h, &ents[i], &p);
		if ((r = index_chunk(s, &ents[i], &p, e)) < 0)
			goto out;
	}
	r = 0;
out:
	free(ents);
	return r;
}

struct replay {
	store *s;
	bks_err *e;
};

int store_logrec_check(const uint8_t *b, size_t len, uint32_t max_items)
{
	if (len < LOG_HDR1 || memcmp(b, LOG_MAGIC, 4))
		return -EPROTO;
	uint32_t ver = le_get32(b + 4);
	if (ver < 1 || ver > LOG_VERSION)
		return -EPROTO;
	uint64_t nrows = le_get32(b + 24), nobjs = le_get32(b + 28), nsegx = 0;
	size_t hdr = ver == 1 ? LOG_HDR1 : ver == 2 ? LOG_HDR2 : LOG_HDR;
	if (len < hdr)
		return -EINVAL;
	if (ver >= 2)
		nsegx = le_get32(b + 32);
	uint64_t fixed = hdr + nrows * LOG_ROW + nobjs * LOG_OBJ;
	if (nsegx > 2 || len < fixed)
		return -EINVAL;
	size_t left = len - (size_t)fixed;
	const uint8_t *p = b + hdr + nrows * LOG_ROW;
	for (uint64_t x = 0; x < nsegx; x++) {
		if (left < LOG_SEGX)
			return -EINVAL;
		int kind = (int)le_get32(p);
		uint32_t n = le_get32(p + 24), data = le_get32(p + 28);
		if ((kind != SEG_DATA && kind != SEG_META) || n == 0 || n > max_items ||
		    left - LOG_SEGX < (size_t)n * LOG_ITEM ||
		    left - LOG_SEGX - (size_t)n * LOG_ITEM < data)
			return -EINVAL;
		uint64_t sum = 0;
		for (uint32_t i = 0; i < n; i++) {
			uint32_t slen = le_get32(p + LOG_SEGX + (size_t)i * LOG_ITEM + 36);
			if (slen == 0)
				return -EINVAL;
			sum += BKS_ROUND_UP((uint64_t)slen, 8u);
		}
		if (sum != data)
			return -EINVAL;
		size_t used = LOG_SEGX + (size_t)n * LOG_ITEM + data;
		p += used;
		left -= used;
	}
	return left == 0 ? 0 : -EINVAL;
}

/* One open-segment extension at *p (at most end - *p bytes). */
static int replay_segx(struct replay *rp, const uint8_t **pp, const uint8_t *end)
{
	store *s = rp->s;
	const uint8_t *p = *pp;
	int r;
	if ((size_t)(end - p) < LOG_SEGX)
		return bks_fail(rp->e, -EINVAL, "intent log record: segment items truncated");
	int kind = (int)le_get32(p);
	uint32_t first = le_get32(p + 4), n = le_get32(p + 24), data = le_get32(p + 28);
	uint64_t seg_id = le_get64(p + 8), row = le_get64(p + 16);
	const uint8_t *items = p + LOG_SEGX;
	if ((kind != SEG_DATA && kind != SEG_META) || n == 0 ||
	    n > pool_row_bytes(s->pl) / LOG_ITEM ||
	    (size_t)(end - items) < (size_t)n * LOG_ITEM ||
	    (size_t)(end - items) - (size_t)n * LOG_ITEM < data)
		return bks_fail(rp->e, -EINVAL, "intent log record: segment items malformed");
	const uint8_t *st = items + (size_t)n * LOG_ITEM, *stend = st + data;
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *q = items + (size_t)i * LOG_ITEM;
		seg_entry en;
		seg_ptr ptr;
		memcpy(en.fp, q, FP_LEN);
		en.off = le_get32(q + 32);
		en.slen = le_get32(q + 36);
		en.rlen = le_get32(q + 40);
		en.codec = q[44];
		en.flags = q[45];
		en.xxh = le_get64(q + 48);
		size_t padded = BKS_ROUND_UP((size_t)en.slen, 8u);
		if (en.slen == 0 || (size_t)(stend - st) < padded)
			return bks_fail(rp->e, -EINVAL, "intent log record: item %u of segment "
			                "%llu overruns the record", first + i,
			                (unsigned long long)seg_id);
		if ((r = pool_replay_item(s->pl, kind, seg_id, row, first + i, &en, st, &ptr,
		                          rp->e)) < 0)
			return r;
		if (kind == SEG_DATA && (r = index_chunk(s, &en, &ptr, rp->e)) < 0)
			return r;
		st += padded;
	}
	if (st != stend)
		return bks_fail(rp->e, -EINVAL, "intent log record: segment %llu's item bytes do "
		                "not add up", (unsigned long long)seg_id);
	*pp = stend;
	return 0;
}

static int replay_rec(void *ctx, const uint8_t *b, size_t len)
{
	struct replay *rp = ctx;
	store *s = rp->s;
	const uint8_t *end = b + len;
	int r;

	if (len < LOG_HDR1 || memcmp(b, LOG_MAGIC, 4))
		return bks_fail(rp->e, -EPROTO, "intent log record is not a store record");
	uint32_t ver = le_get32(b + 4);
	if (ver < 1 || ver > LOG_VERSION)
		return bks_fail(rp->e, -EPROTO, "intent log record version %u not supported", ver);
	uint64_t next_obj = le_get64(b + 16);
	uint64_t nrows = le_get32(b + 24), nobjs = le_get32(b + 28), nsegx = 0;
	size_t hdr = ver == 1 ? LOG_HDR1 : ver == 2 ? LOG_HDR2 : LOG_HDR;
	if (len < hdr)
		return bks_fail(rp->e, -EINVAL, "intent log record truncated");
	if (ver >= 2)
		nsegx = le_get32(b + 32);
	if (store_logrec_check(b, len, pool_row_bytes(s->pl) / LOG_ITEM) < 0)
		return bks_fail(rp->e, -EINVAL, "intent log record: counts do not match its size");
	const uint8_t *p = b + hdr;
	for (uint64_t i = 0; i < nrows; i++, p += LOG_ROW) {
		pool_newrow nr = {.row = le_get64(p), .seg_id = le_get64(p + 8),
		                  .kind = le_get32(p + 16)};
		uint32_t skip;
		if ((r = pool_replay_row(s->pl, &nr, &skip, rp->e)) < 0)
			return r;
		if (nr.kind == SEG_DATA && (r = replay_data_row(s, nr.row, skip, rp->e)) < 0)
			return r;
	}
	const uint8_t *objs_end = end;
	for (uint64_t i = 0; i < nsegx; i++)
		if ((r = replay_segx(rp, &p, end - nobjs * LOG_OBJ)) < 0)
			return r;
	if ((size_t)(objs_end - p) != nobjs * LOG_OBJ)
		return bks_fail(rp->e, -EINVAL, "intent log record: counts do not match its size");
	if (next_obj > s->next_obj)
		s->next_obj = next_obj;
	for (uint64_t i = 0; i < nobjs; i++, p += LOG_OBJ) {
		uint64_t id = le_get64(p);
		obj_rec o, old;
		obj_rec_decode(p + 8, &o);
		if (id == 0 || id >= s->next_obj || (o.flags & ~OBJ_INUSE) ||
		    ((o.flags & OBJ_INUSE) && o.depth > MAP_MAX_DEPTH))
			return bks_fail(rp->e, -EINVAL, "intent log record: object %llu malformed",
			                (unsigned long long)id);
		if (id >= barray_count(s->objtab) && (r = barray_resize(s->objtab, id + 1)) < 0)
			return bks_fail(rp->e, r, "out of memory");
		/* Logical bytes: a version-3 record carries them (below); an older one
		 * came from a build that counted objects at their size, and its records
		 * have no map flags, so store_obj_mapped gives the size it counted. */
		if (store_obj_get(s, id, &old) == 0) {
			s->objects--;
			if (ver < 3)
				store_logical_sub(s, store_obj_mapped(s, &old));
		}
		memcpy(barray_mut(s->objtab, id), p + 8, OBJ_REC);
		if (o.flags & OBJ_INUSE) {
			s->objects++;
			if (ver < 3)
				s->logical += store_obj_mapped(s, &o);
		}
	}
	/* Every object changed since the previous record is in this one, so after it
	 * the object table is the one the record's sync saw, and so is the figure. */
	if (ver >= 3)
		s->logical = le_get64(b + 40);
	return 0;
}

int store_ilog_replay(store *s, bks_err *e)
{
	struct replay rp = {s, e};
	int n = ilog_replay(s->log, pool_txg(s->pl) - 1, replay_rec, &rp, e);
	if (n <= 0)
		return n;
	s->log_replayed += (uint64_t)n;
	int r = store_commit(s, e);
	return r < 0 ? r : n;
}
