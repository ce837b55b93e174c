/* dedup/store_log.c: store_sync through the intent log, and its replay at open.
 *
 * A sync writes every open segment (pool_seal), then appends one record that
 * describes everything changed since the last record: the rows that got segments
 * (row, segment id, kind) and the current object record of every object put or
 * deleted. arr_log_write flushes the rows before the record, so a record never names
 * a row that is not durable. Replay (at open, before anything else) checks each named
 * row, marks it in use, indexes the chunks of data rows and counts them, applies the
 * object records, and commits: the log is then empty again (records carry the txg
 * they follow). Record layout: docs/format.md "Intent log".
 *
 * What a replay brings back is exactly what the last sync saw: objects still being
 * written are not in any record (their map blocks may be on disk, unreferenced), and
 * rows freed since the commit stay in use until the collector frees them again. */
#include "dedup/store_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/endian.h"

static const char LOG_MAGIC[4] = {'B', 'K', 'S', 'L'};
#define LOG_VERSION 1u
#define LOG_HDR 32
#define LOG_ROW 24
#define LOG_OBJ (8 + OBJ_REC)

void store_log_note_obj(store *s, uint64_t id)
{
	/* Out of memory here only costs a full commit at the next sync. */
	if (u64set_add(&s->log_objs, id) < 0)
		s->log_overflow = 1;
}

void store_log_committed(store *s)
{
	u64set_clear(&s->log_objs);
	s->log_rows_done = 0;
	s->log_overflow = 0;
}

static int encode(store *s, uint8_t **out, size_t *outlen)
{
	const pool_newrow *nr;
	size_t nrows = pool_new_rows(s->pl, &nr);
	size_t rows = nrows - s->log_rows_done;
	size_t len = LOG_HDR + rows * LOG_ROW + s->log_objs.n * LOG_OBJ;
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
	p = b + LOG_HDR;
	for (size_t i = s->log_rows_done; i < nrows; i++, p += LOG_ROW) {
		le_put64(p, nr[i].row);
		le_put64(p + 8, nr[i].seg_id);
		le_put32(p + 16, nr[i].kind);
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
	*out = b;
	*outlen = len;
	return 0;
}

int store_sync(store *s, uint64_t id, bks_err *e)
{
	obj_rec o;
	uint8_t *rec = NULL;
	size_t len;
	int r;

	if (store_obj_get(s, id, &o) < 0)
		return bks_fail(e, -ENOENT, "no object %llu", (unsigned long long)id);
	if (!s->log || s->log_overflow)
		return store_commit(s, e);
	if ((r = pool_seal(s->pl)) < 0)
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
	const pool_newrow *nr;
	s->log_rows_done = pool_new_rows(s->pl, &nr);
	u64set_clear(&s->log_objs);
	s->log_syncs++;
	return 0;
}

/* --- replay --- */

static int replay_data_row(store *s, uint64_t row, bks_err *e)
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
	for (int i = 0; i < n; i++) {
		seg_ptr p;
		seg_ptr_from_entry(&h, &ents[i], &p);
		/* The newest location wins, as for chunks the collector moved. */
		if ((r = fpidx_insert(s->idx, ents[i].fp, &p)) < 0) {
			bks_fail(e, r, "intent log replay: index: %s", strerror(-r));
			goto out;
		}
		s->unique_chunks++;
		s->unique_raw += ents[i].rlen;
		s->stored += ents[i].slen;
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

static int replay_rec(void *ctx, const uint8_t *b, size_t len)
{
	struct replay *rp = ctx;
	store *s = rp->s;
	int r;

	if (len < LOG_HDR || memcmp(b, LOG_MAGIC, 4) || le_get32(b + 4) != LOG_VERSION)
		return bks_fail(rp->e, -EPROTO, "intent log record is not a store record");
	uint64_t next_obj = le_get64(b + 16);
	uint64_t nrows = le_get32(b + 24), nobjs = le_get32(b + 28);
	if (len != LOG_HDR + nrows * LOG_ROW + nobjs * LOG_OBJ)
		return bks_fail(rp->e, -EINVAL, "intent log record: counts do not match its size");
	const uint8_t *p = b + LOG_HDR;
	for (uint64_t i = 0; i < nrows; i++, p += LOG_ROW) {
		pool_newrow nr = {.row = le_get64(p), .seg_id = le_get64(p + 8),
		                  .kind = le_get32(p + 16)};
		if ((r = pool_replay_row(s->pl, &nr, rp->e)) < 0)
			return r;
		if (nr.kind == SEG_DATA && (r = replay_data_row(s, nr.row, rp->e)) < 0)
			return r;
	}
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
		if (store_obj_get(s, id, &old) == 0) {
			s->objects--;
			s->logical -= old.size;
		}
		memcpy(barray_mut(s->objtab, id), p + 8, OBJ_REC);
		if (o.flags & OBJ_INUSE) {
			s->objects++;
			s->logical += o.size;
		}
	}
	return 0;
}

int store_log_replay(store *s, bks_err *e)
{
	struct replay rp = {s, e};
	int n = ilog_replay(s->log, pool_txg(s->pl) - 1, replay_rec, &rp, e);
	if (n <= 0)
		return n;
	s->log_replayed += (uint64_t)n;
	int r = store_commit(s, e);
	return r < 0 ? r : n;
}
