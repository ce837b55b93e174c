/* dedup/pool.c: see pool.h; the on-disk pieces are in docs/format.md ("Pool"). */
#include <config.h>

#include "dedup/pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "common/endian.h"
#include "dedup/barray.h"

static const char ROOT_MAGIC[8] = {'B', 'K', 'S', 'P', 'R', 'O', 'O', 'T'};
static const char ANCHOR_MAGIC[8] = {'B', 'K', 'S', 'P', 'O', 'O', 'L', '1'};
#define ROOT_VERSION 1u
#define ANCHOR_LEN (8 + 4 + 4 + 8 + BKS_UUID_LEN + SEG_PTR_ENC)
#define ROOT_FIXED (8 + 4 + 4 + 8 + 8 + 8 + BARRAY_ROOT_ENC + 4)

struct cslot {
	uint64_t seg_id;
	uint32_t off, len;
	uint8_t *data;
};

/* Sealed segments on their way to the array: a writer thread writes them while the
 * caller goes on chunking, hashing and compressing (the ingest pipeline's last
 * stage). Reads of an item in flight are served from its buffer. */
#define WQ_SLOTS 4
enum { WQ_FREE = 0, WQ_PENDING = 1, WQ_WRITING = 2 };
struct wslot {
	uint8_t *buf;
	uint64_t row, seg_id, seq;
	int state;
};
struct wqueue {
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct wslot s[WQ_SLOTS];
	uint64_t next_seq;
	int err;     /* first write error (negative errno) */
	int stop;
	int started;
};

/* Whole data rows read for sequential readers (restore): the second item read from
 * a row loads the row, the rest come from memory. */
#define RC_SLOTS 8
struct rcache {
	uint64_t row, seg_id, stamp;
	uint8_t *buf;
	int valid;
};

struct pool {
	arr *a;
	pool_params p;
	uint8_t uuid[BKS_UUID_LEN];
	uint32_t row_bytes;
	uint64_t nrows;
	uint64_t txg;           /* being built */
	uint64_t next_seg_id;
	barray *rowtab;         /* per row: seg_id << 2 | state */
	uint8_t *freeing;       /* rows freed in this txg: not reusable until it commits */
	uint8_t *live;          /* per row, 1 while any commit may reference it; read by
	                         * the array's background threads (atomics, no lock) */
	uint64_t alloc_cursor;
	seg_builder *dseg, *mseg;
	int dseg_open, mseg_open;
	int fatal;              /* a write failed: refuse writes until reopened (never for
	                         * lack of space: see pool.h, "space") */
	uint64_t nfree;         /* rows FREE and not freeing: allocatable now */
	uint64_t nfreeing;      /* rows freed in this txg (reusable after its commit) */
	int space;              /* enum pool_space of the allocations being made */
	uint64_t (*reserve_fn)(void *ctx);
	void *reserve_ctx;
	int commit_enospc;      /* the last commit failed for lack of rows */
	int full;               /* new data refused until rows_free > reserve + margin */
	struct cslot *cache;
	uint32_t ncache;
	ZSTD_DCtx *dctx;
	uint8_t *iobuf;         /* one row, aligned: reads of stored bytes */
	struct wqueue wq;
	struct rcache rc[RC_SLOTS];
	uint64_t rc_clock;
	uint64_t last_row, last_seg;  /* the row of the previous item read */
	uint8_t upper[POOL_UPPER_MAX];
	uint32_t upper_len;
	seg_ptr root_ptr;       /* the last committed root block */
	pool_newrow *newrows;   /* rows begun in this txg (for the intent log) */
	size_t nnew, capnew;
	pool_stats st;
};

void pool_params_default(pool_params *p)
{
	p->zstd_level = 3;
	p->meta_block = 32u << 10;
	p->cache_bytes = 16u << 20;
}

arr *pool_array(pool *pl) { return pl->a; }
uint64_t pool_txg(const pool *pl) { return pl->txg; }
uint32_t pool_row_bytes(const pool *pl) { return pl->row_bytes; }
const uint8_t *pool_uuid(const pool *pl) { return pl->uuid; }
uint64_t pool_rows(const pool *pl) { return pl->nrows; }

static uint64_t rowrec(const pool *pl, uint64_t row)
{
	uint64_t v;
	memcpy(&v, barray_get(pl->rowtab, row), 8);
	return v;
}

static void set_live(pool *pl, uint64_t row)
{
	uint8_t v = (rowrec(pl, row) & 3) != ROW_FREE || pl->freeing[row];
	__atomic_store_n(&pl->live[row], v, __ATOMIC_RELEASE);
}

static void set_rowrec(pool *pl, uint64_t row, uint64_t seg_id, int state)
{
	uint64_t v = seg_id << 2 | (uint64_t)state;
	memcpy(barray_mut(pl->rowtab, row), &v, 8);
	set_live(pl, row);
}

int pool_row_state(const pool *pl, uint64_t row)
{
	if (row >= pl->nrows)
		return ROW_FREE;
	if (pl->freeing[row])
		return ROW_FREEING;
	return (int)(rowrec(pl, row) & 3);
}

uint64_t pool_row_seg(const pool *pl, uint64_t row)
{
	return row < pl->nrows ? rowrec(pl, row) >> 2 : 0;
}

uint64_t pool_rows_in_state(const pool *pl, int state)
{
	uint64_t n = 0;
	for (uint64_t r = 0; r < pl->nrows; r++)
		n += pool_row_state(pl, r) == state;
	return n;
}

int pool_ptr_live(const pool *pl, const seg_ptr *p)
{
	return p->row < pl->nrows && p->seg_id && pool_row_seg(pl, p->row) == p->seg_id &&
	       (rowrec(pl, p->row) & 3) != ROW_FREE;
}

void pool_free_row(pool *pl, uint64_t row)
{
	if (row >= pl->nrows || (rowrec(pl, row) & 3) == ROW_FREE)
		return;
	/* Persisted as FREE in this txg's row table (this txg no longer references
	 * it); kept out of allocation until the txg commits, because the previous
	 * commit still references it. */
	pl->freeing[row] = 1;
	pl->nfreeing++;
	set_rowrec(pl, row, 0, ROW_FREE);
}

/* The array asks which rows hold live data (rebuild, scrub), from its own threads:
 * the answer comes from the atomic live map, never from the row table itself. */
static int live_cb(void *ctx, uint64_t row)
{
	pool *pl = ctx;
	return row < pl->nrows && __atomic_load_n(&pl->live[row], __ATOMIC_ACQUIRE);
}

/* Scrub's data checksums: a live row must be a sound segment. */
static int scrub_verify_cb(void *ctx, uint64_t row, size_t off, const void *buf, size_t len)
{
	pool *pl = ctx;
	if (!live_cb(pl, row) || off != 0 || len != pl->row_bytes)
		return 1;
	if (seg_verify_row(buf, len, NULL) != 0)
		return 0;
	seg_header h;
	seg_header_decode(buf, len, &h, NULL);
	return h.row == row;
}

/* --- space (pool.h) --- */

/* Rows that hold `bytes` of metadata blocks of at most meta_block bytes each. */
static uint64_t meta_rows(const pool *pl, uint64_t bytes)
{
	uint64_t per = (pl->row_bytes - SEG_HDR_SIZE) / (pl->p.meta_block + SEG_ENTRY_SIZE);
	uint64_t blocks = (bytes + pl->p.meta_block - 1) / pl->p.meta_block;
	per = per ? per : 1;
	return (blocks + per - 1) / per;
}

uint64_t pool_table_bytes(const pool *pl, uint64_t count, uint32_t rec)
{
	/* A record array's leaves, directories and top block (barray.h), each counted
	 * as a whole block: the most a sync of it can write. */
	uint64_t blk = pl->p.meta_block, per_leaf = (blk - 16) / rec, per_dir = (blk - 16) / 40;
	uint64_t leaves = (count + per_leaf - 1) / per_leaf;
	uint64_t dirs = (leaves + per_dir - 1) / per_dir;
	return (leaves + dirs + 1) * blk;
}

/* One commit's rows (C): what a commit may write now, the whole row table (a
 * collection or a big delete dirties all of it), the store's part, the root, and
 * the segments it seals half full. */
static uint64_t commit_rows(const pool *pl)
{
	uint64_t bytes = pool_table_bytes(pl, pl->nrows, 8) + 2ull * pl->p.meta_block;
	if (pl->reserve_fn)
		bytes += pl->reserve_fn(pl->reserve_ctx);
	return meta_rows(pl, bytes) + POOL_COMMIT_SLACK;
}

static void reserve_rows(const pool *pl, uint64_t *commit, uint64_t *total)
{
	uint64_t c = 2 * commit_rows(pl);
	uint64_t w = BKS_MAX(pl->nrows / 64, (uint64_t)POOL_WORK_MIN);
	w = BKS_MIN(w, BKS_MAX(POOL_WORK_MAX_BYTES / pl->row_bytes, (uint64_t)POOL_WORK_MIN));
	/* A toy array keeps at least half its rows for data. */
	uint64_t cap = pl->nrows / 2;
	*commit = BKS_MIN(c, cap);
	*total = BKS_MIN(c + w, cap);
}

static uint64_t space_floor(const pool *pl, int cls)
{
	uint64_t c, t;
	if (cls == POOL_SPACE_RECOVERY)
		return 0;
	if (cls == POOL_SPACE_COMMIT) {
		/* A commit that gives back at least what it may take (the collector
		 * freed rows in this txg) may take the last rows; any other stops at one
		 * commit's worth, so that such a commit always remains possible. */
		c = commit_rows(pl);
		return pl->nfreeing >= c ? 0 : c;
	}
	reserve_rows(pl, &c, &t);
	return cls == POOL_SPACE_WORK ? c : t;
}

int pool_space_ok(pool *pl, int cls, uint64_t rows)
{
	return pl->nfree > space_floor(pl, cls) + rows;
}

/* Full: the free rows are down to the reserve. It ends only when they are a margin
 * above it again (POOL_FULL_MARGIN), so that the reserve's own breathing (it follows
 * the index's memtable, which a commit empties) does not let new data in and out. */
static int update_full(pool *pl)
{
	uint64_t c, t;
	reserve_rows(pl, &c, &t);
	uint64_t margin = BKS_MAX(pl->nrows / 128, (uint64_t)POOL_FULL_MARGIN);
	if (pl->nfree <= t)
		pl->full = 1;
	else if (pl->nfree > t + margin)
		pl->full = 0;
	return pl->full;
}

int pool_set_space(pool *pl, int cls)
{
	int old = pl->space;
	pl->space = cls;
	return old;
}

int pool_raise_space(pool *pl, int cls)
{
	int old = pl->space;
	pl->space = BKS_MAX(old, cls);
	return old;
}

void pool_set_reserve_fn(pool *pl, uint64_t (*fn)(void *ctx), void *ctx)
{
	pl->reserve_fn = fn;
	pl->reserve_ctx = ctx;
}

void pool_get_space(pool *pl, pool_space_info *out)
{
	reserve_rows(pl, &out->reserve_commit, &out->reserve_total);
	out->rows_free = pl->nfree;
	out->full = update_full(pl);
	out->commit_enospc = pl->commit_enospc;
}

uint64_t pool_space_room(pool *pl, int cls)
{
	uint64_t fl = space_floor(pl, cls);
	uint64_t rows = pl->nfree > fl ? pl->nfree - fl : 0;
	return rows * (pl->row_bytes - SEG_HDR_SIZE) + (pl->dseg_open ? seg_free_bytes(pl->dseg) : 0);
}

static int alloc_row(pool *pl, uint64_t *out)
{
	/* Each class stops at its floor (pool.h): new data never takes the rows that
	 * commits and the collector need to give space back. */
	if ((pl->space == POOL_SPACE_DATA && update_full(pl)) ||
	    pl->nfree <= space_floor(pl, pl->space)) {
		pl->st.enospc++;
		return -ENOSPC;
	}
	for (uint64_t i = 0; i < pl->nrows; i++) {
		uint64_t r = (pl->alloc_cursor + i) % pl->nrows;
		if ((rowrec(pl, r) & 3) == ROW_FREE && !pl->freeing[r]) {
			pl->alloc_cursor = r + 1;
			pl->nfree--;
			*out = r;
			return 0;
		}
	}
	return -ENOSPC;
}

/* Start segment id in row (recorded as in use in the txg being built). */
static int start_seg(pool *pl, seg_builder *b, int kind, int *open, uint64_t row, uint64_t id)
{
	if (pl->nnew == pl->capnew) {
		size_t nc = pl->capnew ? pl->capnew * 2 : 64;
		pool_newrow *nr = realloc(pl->newrows, nc * sizeof(*nr));
		if (!nr)
			return -ENOMEM;
		pl->newrows = nr;
		pl->capnew = nc;
	}
	pl->newrows[pl->nnew++] = (pool_newrow){.row = row, .seg_id = id, .kind = (uint32_t)kind};
	set_rowrec(pl, row, id, kind == SEG_DATA ? ROW_DATA : ROW_META);
	seg_begin(b, kind, id, row, pl->txg, pl->uuid);
	*open = 1;
	return 0;
}

static int begin_seg(pool *pl, seg_builder *b, int kind, int *open)
{
	uint64_t row;
	int r = alloc_row(pl, &row);
	if (r < 0)
		return r;
	if ((r = start_seg(pl, b, kind, open, row, pl->next_seg_id)) < 0)
		return r;
	pl->next_seg_id++;
	return 0;
}

static void *writer_main(void *arg)
{
	pool *pl = arg;
	struct wqueue *q = &pl->wq;
	pthread_mutex_lock(&q->mu);
	for (;;) {
		struct wslot *w = NULL;
		for (int i = 0; i < WQ_SLOTS; i++)
			if (q->s[i].state == WQ_PENDING && (!w || q->s[i].seq < w->seq))
				w = &q->s[i];
		if (!w) {
			if (q->stop)
				break;
			pthread_cond_wait(&q->cv, &q->mu);
			continue;
		}
		w->state = WQ_WRITING;
		pthread_mutex_unlock(&q->mu);
		int r = arr_write_rows(pl->a, w->row, 1, w->buf, NULL);
		pthread_mutex_lock(&q->mu);
		if (r < 0 && !q->err)
			q->err = r;
		w->state = WQ_FREE;
		pthread_cond_broadcast(&q->cv);
	}
	pthread_mutex_unlock(&q->mu);
	return NULL;
}

/* Wait until every queued segment is on the array; returns the first write error. */
static int drain(pool *pl)
{
	struct wqueue *q = &pl->wq;
	if (!q->started)
		return 0;
	pthread_mutex_lock(&q->mu);
	for (;;) {
		int busy = 0;
		for (int i = 0; i < WQ_SLOTS; i++)
			busy |= q->s[i].state != WQ_FREE;
		if (!busy)
			break;
		pthread_cond_wait(&q->cv, &q->mu);
	}
	int r = q->err;
	pthread_mutex_unlock(&q->mu);
	if (r < 0)
		pl->fatal = 1;
	return r;
}

/* Hand the segment being built to the writer (or write it here if no thread). */
static int flush_seg(pool *pl, seg_builder *b, int *open)
{
	struct wqueue *q = &pl->wq;
	if (!*open)
		return 0;
	const void *rowdata = seg_seal(b);
	seg_header h;
	seg_header_decode(rowdata, SEG_HDR_SIZE, &h, NULL);
	*open = 0;
	if (!q->started) {
		int r = arr_write_rows(pl->a, h.row, 1, rowdata, NULL);
		if (r < 0)
			pl->fatal = 1;
		return r;
	}
	pthread_mutex_lock(&q->mu);
	struct wslot *w = NULL;
	while (!q->err) {
		for (int i = 0; i < WQ_SLOTS && !w; i++)
			if (q->s[i].state == WQ_FREE)
				w = &q->s[i];
		if (w)
			break;
		pthread_cond_wait(&q->cv, &q->mu);
	}
	int r = q->err;
	if (r == 0) {
		memcpy(w->buf, rowdata, pl->row_bytes);
		w->row = h.row;
		w->seg_id = h.seg_id;
		w->seq = q->next_seq++;
		w->state = WQ_PENDING;
		pthread_cond_broadcast(&q->cv);
	}
	pthread_mutex_unlock(&q->mu);
	if (r < 0)
		pl->fatal = 1;
	return r;
}

/* A queued segment's buffer, if seg_id is still on its way. Caller copies out. */
static const uint8_t *queued(pool *pl, uint64_t seg_id)
{
	struct wqueue *q = &pl->wq;
	const uint8_t *b = NULL;
	if (!q->started)
		return NULL;
	pthread_mutex_lock(&q->mu);
	for (int i = 0; i < WQ_SLOTS; i++)
		if (q->s[i].state != WQ_FREE && q->s[i].seg_id == seg_id)
			b = q->s[i].buf;
	/* The slot cannot be reused while we read it: only flush_seg (this thread)
	 * fills slots. */
	pthread_mutex_unlock(&q->mu);
	return b;
}

static int add_item(pool *pl, seg_builder *b, int kind, int *open, const uint8_t *fp,
                    const void *data, uint32_t len, uint32_t rlen, int codec, int stored,
                    seg_ptr *out)
{
	int r;
	if (pl->fatal)
		return -EROFS;
	for (int attempt = 0; attempt < 2; attempt++) {
		if (!*open && (r = begin_seg(pl, b, kind, open)) < 0)
			return r;
		r = stored ? seg_add_stored(b, fp, data, len, rlen, codec, out)
		           : seg_add(b, fp, data, len, out);
		if (r != -ENOSPC || seg_count(b) == 0)
			return r;
		if ((r = flush_seg(pl, b, open)) < 0)
			return r;
	}
	return -EFBIG;
}

int pool_add_chunk(pool *pl, const uint8_t fp[FP_LEN], const void *data, uint32_t len,
                   seg_ptr *out)
{
	int r = add_item(pl, pl->dseg, SEG_DATA, &pl->dseg_open, fp, data, len, len, 0, 0, out);
	if (r == 0) {
		pl->st.chunks_stored++;
		pl->st.bytes_stored_raw += len;
		pl->st.bytes_stored += out->slen;
	}
	return r;
}

int pool_add_stored(pool *pl, const uint8_t fp[FP_LEN], const void *stored, uint32_t slen,
                    uint32_t rlen, int codec, seg_ptr *out)
{
	int r = add_item(pl, pl->dseg, SEG_DATA, &pl->dseg_open, fp, stored, slen, rlen, codec,
	                 1, out);
	if (r == 0) {
		pl->st.chunks_stored++;
		pl->st.bytes_stored_raw += rlen;
		pl->st.bytes_stored += slen;
	}
	return r;
}

static int item_verify(void *ctx, uint64_t row, size_t off, const void *buf, size_t len)
{
	const seg_ptr *p = ctx;
	(void)row;
	(void)off;
	return len == p->slen && seg_item_ok(p, buf);
}

/* A whole data row from the cache; loads it when a second item of the same row is
 * asked for in a row (a sequential reader). A row whose item fails its checksum is
 * dropped from the cache and the item is read alone (and repaired) by the caller. */
static const uint8_t *cached_row(pool *pl, const seg_ptr *p)
{
	struct rcache *victim = &pl->rc[0];
	for (int i = 0; i < RC_SLOTS; i++) {
		struct rcache *c = &pl->rc[i];
		if (c->valid && c->row == p->row && c->seg_id == p->seg_id) {
			c->stamp = ++pl->rc_clock;
			if (!seg_item_ok(p, c->buf + p->off)) {
				c->valid = 0;
				return NULL;
			}
			return c->buf;
		}
		if (!c->valid || c->stamp < victim->stamp)
			victim = c;
	}
	int sequential = pl->last_row == p->row && pl->last_seg == p->seg_id;
	pl->last_row = p->row;
	pl->last_seg = p->seg_id;
	if (!sequential)
		return NULL;
	if (!victim->buf && !(victim->buf = bks_alloc_aligned(DISK_ALIGN, pl->row_bytes)))
		return NULL;
	if (arr_read(pl->a, p->row, 0, victim->buf, pl->row_bytes) != 0) {
		victim->valid = 0;
		return NULL;
	}
	victim->row = p->row;
	victim->seg_id = p->seg_id;
	victim->stamp = ++pl->rc_clock;
	victim->valid = 1;
	return victim->buf;
}

/* The stored bytes of an item: from a segment still being built, or from the array
 * through the checksum (the array reconstructs and repairs on a mismatch). */
static int stored_bytes(pool *pl, const seg_ptr *p, const uint8_t **out)
{
	seg_builder *open[2] = {pl->dseg_open ? pl->dseg : NULL, pl->mseg_open ? pl->mseg : NULL};
	if (p->slen == 0 || p->slen > pl->row_bytes || p->off > pl->row_bytes - p->slen ||
	    p->row >= pl->nrows)
		return -EINVAL;
	for (int i = 0; i < 2; i++)
		if (open[i] && seg_current_id(open[i]) == p->seg_id) {
			*out = seg_buffer(open[i]) + p->off;
			return seg_item_ok(p, *out) ? 0 : -EIO;
		}
	const uint8_t *qb = queued(pl, p->seg_id);
	if (qb) {
		*out = qb + p->off;
		return seg_item_ok(p, *out) ? 0 : -EIO;
	}
	/* (While the pool opens, the row table itself is being read: no check yet.) */
	if (pl->rowtab && pool_row_seg(pl, p->row) != p->seg_id)
		return -ESTALE;
	if (p->kind == SEG_DATA) {
		const uint8_t *rb = cached_row(pl, p);
		if (rb && seg_item_ok(p, rb + p->off)) {
			*out = rb + p->off;
			return 0;
		}
	}
	/* One item, through its checksum: the array reconstructs and repairs. */
	int r = arr_read_verify(pl->a, p->row, p->off, pl->iobuf, p->slen, item_verify,
	                        (void *)p);
	if (r < 0)
		return r;
	*out = pl->iobuf;
	return 0;
}

int pool_item_on_array(pool *pl, const seg_ptr *p)
{
	int want = p->kind == SEG_DATA ? ROW_DATA : p->kind == SEG_META ? ROW_META : -1;
	if (want < 0 || p->slen == 0 || p->slen > pl->row_bytes ||
	    p->off > pl->row_bytes - p->slen || p->row >= pl->nrows || !pl->rowtab ||
	    pool_row_seg(pl, p->row) != p->seg_id || (int)(rowrec(pl, p->row) & 3) != want)
		return 0;
	if ((pl->dseg_open && seg_current_id(pl->dseg) == p->seg_id) ||
	    (pl->mseg_open && seg_current_id(pl->mseg) == p->seg_id) || queued(pl, p->seg_id))
		return 0;
	return 1;
}

int pool_read_stored(pool *pl, const seg_ptr *p, void *out, size_t cap)
{
	const uint8_t *src;
	if (cap < p->slen)
		return -ENOBUFS;
	int r = stored_bytes(pl, p, &src);
	if (r == 0)
		memcpy(out, src, p->slen);
	return r;
}

int pool_read_item(pool *pl, const seg_ptr *p, void *out, size_t cap)
{
	const uint8_t *src;
	int r = stored_bytes(pl, p, &src);
	if (r < 0)
		return r;
	return seg_item_decode(pl->dctx, p, src, out, cap) == 0 ? 0 : -EIO;
}

/* --- metadata blocks --- */

static struct cslot *cache_slot(pool *pl, const seg_ptr *p)
{
	uint64_t k = p->seg_id * 0x9e3779b97f4a7c15ull ^ p->off;
	return &pl->cache[(k ^ (k >> 29)) % pl->ncache];
}

int pool_meta_write(pool *pl, const void *blk, uint32_t len, seg_ptr *out)
{
	if (len > pl->p.meta_block || len > POOL_BLOCK_MAX)
		return -EFBIG;
	int r = add_item(pl, pl->mseg, SEG_META, &pl->mseg_open, NULL, blk, len, len, 0, 0, out);
	if (r == 0)
		pl->st.meta_bytes_written += out->slen;
	return r;
}

int pool_meta_read(pool *pl, const seg_ptr *p, void *out, size_t cap)
{
	struct cslot *c = cache_slot(pl, p);
	if (p->rlen > cap)
		return -ENOBUFS;
	/* A hit counts only while the pointer's row still holds its segment: a stale
	 * pointer into a freed row must fail (-ESTALE) as it would from the disk, not
	 * be answered from memory until the next restart. (While the pool opens, the
	 * row table itself is being read: no check yet.) */
	if (c->seg_id == p->seg_id && c->off == p->off && c->len == p->rlen &&
	    (!pl->rowtab || pool_ptr_live(pl, p))) {
		memcpy(out, c->data, p->rlen);
		pl->st.cache_hits++;
		return 0;
	}
	pl->st.cache_misses++;
	int r = pool_read_item(pl, p, out, cap);
	if (r == 0 && p->rlen <= pl->p.meta_block) {
		memcpy(c->data, out, p->rlen);
		c->seg_id = p->seg_id;
		c->off = p->off;
		c->len = p->rlen;
	}
	return r;
}

const void *pool_meta_peek(pool *pl, const seg_ptr *p)
{
	const struct cslot *c = cache_slot(pl, p);
	if (c->seg_id == p->seg_id && c->off == p->off && c->len == p->rlen && pl->rowtab &&
	    pool_ptr_live(pl, p))
		return c->data;
	return NULL;
}

void pool_meta_install(pool *pl, const seg_ptr *p, const void *blk)
{
	/* Keyed by the pointer: a segment id is never reused and an item never
	 * rewritten, so (seg_id, off, len) names these bytes for ever; a hit still
	 * asks pool_ptr_live, as for a block read here. */
	struct cslot *c = cache_slot(pl, p);
	if (p->rlen > pl->p.meta_block || !pool_ptr_live(pl, p))
		return;
	memcpy(c->data, blk, p->rlen);
	c->seg_id = p->seg_id;
	c->off = p->off;
	c->len = p->rlen;
}

void pool_meta_free(pool *pl, const seg_ptr *p)
{
	/* Copy-on-write leaves the old version as garbage in its row; the metadata
	 * collector reclaims rows by liveness (see docs/architecture.md). */
	pl->st.meta_bytes_freed += p->slen;
}

static int bio_write(void *ctx, const void *blk, uint32_t len, seg_ptr *out);
static int bio_read(void *ctx, const seg_ptr *p, void *out, size_t cap);
static void bio_free(void *ctx, const seg_ptr *p);
static const bio_ops POOL_BIO = {.write = bio_write, .read = bio_read, .free = bio_free};

const bio_ops *pool_bio(void)
{
	return &POOL_BIO;
}

static int bio_write(void *ctx, const void *blk, uint32_t len, seg_ptr *out)
{
	return pool_meta_write(ctx, blk, len, out);
}
static int bio_read(void *ctx, const seg_ptr *p, void *out, size_t cap)
{
	return pool_meta_read(ctx, p, out, cap);
}
static void bio_free(void *ctx, const seg_ptr *p)
{
	pool_meta_free(ctx, p);
}

/* Verifiers for pool_read_seg_table: the header's own checksum (and the row it
 * names), the table's checksum from the header. With them a silently corrupted
 * strip under a header or a table is reconstructed and repaired by the array, as
 * for items; without them it would read as EBADMSG on a healthy array. */
static int seg_hdr_verify(void *ctx, uint64_t row, size_t off, const void *buf, size_t len)
{
	seg_header h;
	(void)ctx;
	return off == 0 && seg_header_decode(buf, len, &h, NULL) == 0 && h.row == row;
}

static int seg_table_verify(void *ctx, uint64_t row, size_t off, const void *buf, size_t len)
{
	const seg_header *h = ctx;
	(void)row;
	return off == h->table_off && len == (size_t)h->nitems * SEG_ENTRY_SIZE &&
	       bks_xxh3(buf, len) == h->table_xxh;
}

int pool_read_seg_table(pool *pl, uint64_t row, seg_header *h, seg_entry *ents, size_t cap)
{
	/* A segment still on its way to the array is read from its buffer: the row on
	 * disk holds whatever was there before. */
	const uint8_t *qb = row < pl->nrows ? queued(pl, pool_row_seg(pl, row)) : NULL;
	if (qb) {
		int r = seg_header_decode(qb, SEG_HDR_SIZE, h, NULL);
		if (r < 0)
			return r;
		if (h->row != row || h->row_bytes != pl->row_bytes || h->nitems > cap)
			return -EINVAL;
		r = seg_table_decode(h, qb + h->table_off, pl->row_bytes - h->table_off, ents, NULL);
		return r < 0 ? r : (int)h->nitems;
	}
	int r = arr_read_verify(pl->a, row, 0, pl->iobuf, SEG_HDR_SIZE, seg_hdr_verify, NULL);
	if (r < 0)
		return r;
	if ((r = seg_header_decode(pl->iobuf, SEG_HDR_SIZE, h, NULL)) < 0)
		return r;
	if (h->row != row || h->row_bytes != pl->row_bytes || h->nitems > cap)
		return -EINVAL;
	size_t tl = (size_t)h->nitems * SEG_ENTRY_SIZE;
	if (tl && (h->table_off > pl->row_bytes || tl > pl->row_bytes - h->table_off))
		return -EINVAL;
	if (tl && (r = arr_read_verify(pl->a, row, h->table_off, pl->iobuf, tl,
	                               seg_table_verify, h)) < 0)
		return r;
	if ((r = seg_table_decode(h, pl->iobuf, tl, ents, NULL)) < 0)
		return r;
	return (int)h->nitems;
}

int pool_read_seg_header(pool *pl, uint64_t row, seg_header *h)
{
	const uint8_t *qb = row < pl->nrows ? queued(pl, pool_row_seg(pl, row)) : NULL;
	int r = 0;
	if (!qb) {
		if ((r = arr_read_verify(pl->a, row, 0, pl->iobuf, SEG_HDR_SIZE, seg_hdr_verify,
		                         NULL)) < 0)
			return r;
		qb = pl->iobuf;
	}
	if ((r = seg_header_decode(qb, SEG_HDR_SIZE, h, NULL)) < 0)
		return r;
	return h->row != row || h->row_bytes != pl->row_bytes ? -EINVAL : 0;
}

/* --- the intent log's view --- */

int pool_is_dirty(const pool *pl)
{
	return barray_is_dirty(pl->rowtab) || pl->nnew > 0;
}

int pool_seal(pool *pl)
{
	int r;
	if (pl->fatal)
		return -EROFS;
	if ((r = flush_seg(pl, pl->dseg, &pl->dseg_open)) < 0 ||
	    (r = flush_seg(pl, pl->mseg, &pl->mseg_open)) < 0)
		return r;
	return drain(pl);
}

int pool_seal_kind(pool *pl, int kind)
{
	if (pl->fatal)
		return -EROFS;
	if (kind == SEG_DATA)
		return flush_seg(pl, pl->dseg, &pl->dseg_open);
	return flush_seg(pl, pl->mseg, &pl->mseg_open);
}

int pool_drain(pool *pl)
{
	return pl->fatal ? -EROFS : drain(pl);
}

static seg_builder *oseg(const pool *pl, int kind)
{
	if (kind == SEG_DATA)
		return pl->dseg_open ? pl->dseg : NULL;
	return pl->mseg_open ? pl->mseg : NULL;
}

void pool_oseg_info(const pool *pl, int kind, pool_oseg *o)
{
	const seg_builder *b = oseg(pl, kind);
	memset(o, 0, sizeof(*o));
	if (!b)
		return;
	o->seg_id = seg_current_id(b);
	o->row = seg_current_row(b);
	o->nitems = seg_count(b);
}

int pool_oseg_item(const pool *pl, int kind, uint32_t i, seg_entry *en,
                   const uint8_t **stored)
{
	const seg_builder *b = oseg(pl, kind);
	int r;
	if (!b)
		return -ENOENT;
	if ((r = seg_item(b, i, en)) < 0)
		return r;
	*stored = seg_buffer(b) + en->off;
	return 0;
}

int pool_replay_item(pool *pl, int kind, uint64_t seg_id, uint64_t row, uint32_t index,
                     const seg_entry *en, const uint8_t *stored, seg_ptr *out, bks_err *e)
{
	seg_builder *b = kind == SEG_DATA ? pl->dseg : pl->mseg;
	int *open = kind == SEG_DATA ? &pl->dseg_open : &pl->mseg_open;
	int r;

	if ((kind != SEG_DATA && kind != SEG_META) || row >= pl->nrows || seg_id == 0)
		return bks_fail(e, -EINVAL, "intent log: open segment %llu (row %llu, kind %d) "
		                "out of range", (unsigned long long)seg_id,
		                (unsigned long long)row, kind);
	if (index == 0) {
		/* A segment the record began: nothing the last commit uses may be there,
		 * and the previous open segment of this kind, if any, must have been
		 * named as written (pool_replay_row) before. */
		if (*open || (rowrec(pl, row) & 3) != ROW_FREE)
			return bks_fail(e, -EINVAL, "intent log: open segment %llu begins in row "
			                "%llu, which is in use", (unsigned long long)seg_id,
			                (unsigned long long)row);
		if ((r = start_seg(pl, b, kind, open, row, seg_id)) < 0)
			return bks_fail(e, r, "out of memory");
		pl->nfree--; /* the row is taken, as alloc_row would have counted it */
		if (seg_id >= pl->next_seg_id)
			pl->next_seg_id = seg_id + 1;
	} else if (!*open || seg_current_id(b) != seg_id || seg_current_row(b) != row ||
	           seg_count(b) != index) {
		return bks_fail(e, -EINVAL, "intent log: item %u of open segment %llu does not "
		                "follow the items replayed before", index,
		                (unsigned long long)seg_id);
	}
	/* (A deferred item stays one: the background pass recompresses it later.) */
	int codec = en->codec == SEG_RAW && (en->flags & SEG_EF_DEFERRED) ? SEG_RAW_DEFERRED
	                                                                   : en->codec;
	r = seg_add_stored(b, kind == SEG_DATA ? en->fp : NULL, stored, en->slen, en->rlen,
	                   codec, out);
	if (r == 0 && (out->off != en->off || out->xxh != en->xxh))
		r = -EINVAL;
	if (r < 0)
		return bks_fail(e, r == -EINVAL ? r : -EINVAL, "intent log: item %u of open "
		                "segment %llu does not line up with the record",
		                index, (unsigned long long)seg_id);
	if (kind == SEG_DATA) {
		pl->st.chunks_stored++;
		pl->st.bytes_stored_raw += en->rlen;
		pl->st.bytes_stored += en->slen;
	} else {
		pl->st.meta_bytes_written += en->slen;
	}
	return 0;
}

size_t pool_new_rows(const pool *pl, const pool_newrow **out)
{
	*out = pl->newrows;
	return pl->nnew;
}

static int row_verify(void *ctx, uint64_t row, size_t off, const void *buf, size_t len)
{
	const pool_newrow *nr = ctx;
	seg_header h;
	(void)off;
	if (seg_verify_row(buf, len, NULL) != 0 || seg_header_decode(buf, len, &h, NULL) != 0)
		return 0;
	return h.row == row && h.seg_id == nr->seg_id && h.kind == nr->kind;
}

int pool_replay_row(pool *pl, const pool_newrow *nr, uint32_t *replayed, bks_err *e)
{
	seg_header h;
	int r;
	*replayed = 0;
	if (nr->row >= pl->nrows || (nr->kind != SEG_DATA && nr->kind != SEG_META) ||
	    nr->seg_id == 0)
		return bks_fail(e, -EINVAL, "intent log names row %llu (segment %llu, kind %u): "
		                "out of range", (unsigned long long)nr->row,
		                (unsigned long long)nr->seg_id, nr->kind);
	seg_builder *ob = oseg(pl, (int)nr->kind);
	if (ob && seg_current_id(ob) == nr->seg_id && seg_current_row(ob) == nr->row) {
		/* Earlier records carried this segment open; it was written since. Its
		 * row holds everything they gave and more: take the row's copy. */
		*replayed = seg_count(ob);
		*(nr->kind == SEG_DATA ? &pl->dseg_open : &pl->mseg_open) = 0;
		set_rowrec(pl, nr->row, 0, ROW_FREE);
		pl->nfree++; /* taken again just below */
	}
	if ((rowrec(pl, nr->row) & 3) != ROW_FREE)
		return bks_fail(e, -EEXIST, "intent log names row %llu, which the last commit "
		                "already uses", (unsigned long long)nr->row);
	r = arr_read_verify(pl->a, nr->row, 0, pl->iobuf, pl->row_bytes, row_verify, (void *)nr);
	if (r == 0 && !row_verify((void *)nr, nr->row, 0, pl->iobuf, pl->row_bytes))
		r = -EIO;
	if (r == 0)
		r = seg_header_decode(pl->iobuf, pl->row_bytes, &h, NULL);
	if (r == 0 && memcmp(h.store_uuid, pl->uuid, BKS_UUID_LEN))
		r = -EINVAL;
	if (r < 0)
		return bks_fail(e, r, "intent log names segment %llu in row %llu, but the row does "
		                "not hold it intact", (unsigned long long)nr->seg_id,
		                (unsigned long long)nr->row);
	set_rowrec(pl, nr->row, nr->seg_id, nr->kind == SEG_DATA ? ROW_DATA : ROW_META);
	pl->nfree--;
	if (nr->seg_id >= pl->next_seg_id)
		pl->next_seg_id = nr->seg_id + 1;
	return 0;
}

/* --- life cycle --- */

static int pool_alloc(arr *a, const pool_params *p, pool **out)
{
	pool *pl = calloc(1, sizeof(*pl));
	if (!pl)
		return -ENOMEM;
	if (p)
		pl->p = *p;
	else
		pool_params_default(&pl->p);
	if (pl->p.meta_block < 4096 || pl->p.meta_block > POOL_BLOCK_MAX) {
		free(pl);
		return -EINVAL;
	}
	pl->a = a;
	pl->row_bytes = (uint32_t)arr_row_bytes(a);
	pl->nrows = arr_rows(a);
	pl->ncache = (uint32_t)BKS_MAX(pl->p.cache_bytes / pl->p.meta_block, (size_t)16);
	pl->cache = calloc(pl->ncache, sizeof(*pl->cache));
	pl->freeing = calloc(pl->nrows, 1);
	pl->live = calloc(pl->nrows, 1);
	pl->iobuf = bks_alloc_aligned(DISK_ALIGN, pl->row_bytes);
	pl->dctx = ZSTD_createDCtx();
	int r = -ENOMEM;
	if (!pl->cache || !pl->freeing || !pl->live || !pl->iobuf || !pl->dctx)
		goto fail;
	for (uint32_t i = 0; i < pl->ncache; i++)
		if (!(pl->cache[i].data = malloc(pl->p.meta_block)))
			goto fail;
	if ((r = seg_builder_new(pl->row_bytes, pl->p.zstd_level, &pl->dseg)) < 0 ||
	    (r = seg_builder_new(pl->row_bytes, 1, &pl->mseg)) < 0)
		goto fail;
	for (int i = 0; i < WQ_SLOTS; i++)
		if (!(pl->wq.s[i].buf = bks_alloc_aligned(DISK_ALIGN, pl->row_bytes))) {
			r = -ENOMEM;
			goto fail;
		}
	pthread_mutex_init(&pl->wq.mu, NULL);
	pthread_cond_init(&pl->wq.cv, NULL);
	if (pthread_create(&pl->wq.th, NULL, writer_main, pl) == 0)
		pl->wq.started = 1;
	pl->last_row = UINT64_MAX;
	*out = pl;
	return 0;
fail:
	pl->a = NULL;
	pool_close(pl);
	return r;
}

void pool_close(pool *pl)
{
	if (!pl)
		return;
	if (pl->wq.started) {
		/* Let queued rows land (they are simply unreferenced if not committed). */
		drain(pl);
		pthread_mutex_lock(&pl->wq.mu);
		pl->wq.stop = 1;
		pthread_cond_broadcast(&pl->wq.cv);
		pthread_mutex_unlock(&pl->wq.mu);
		pthread_join(pl->wq.th, NULL);
		pthread_mutex_destroy(&pl->wq.mu);
		pthread_cond_destroy(&pl->wq.cv);
	}
	for (int i = 0; i < WQ_SLOTS; i++)
		free(pl->wq.s[i].buf);
	for (int i = 0; i < RC_SLOTS; i++)
		free(pl->rc[i].buf);
	if (pl->a) {
		arr_set_live_fn(pl->a, NULL, NULL);
		arr_set_scrub_verify(pl->a, NULL, NULL);
	}
	for (uint32_t i = 0; pl->cache && i < pl->ncache; i++)
		free(pl->cache[i].data);
	free(pl->cache);
	free(pl->freeing);
	free(pl->live);
	free(pl->newrows);
	free(pl->iobuf);
	ZSTD_freeDCtx(pl->dctx);
	seg_builder_free(pl->dseg);
	seg_builder_free(pl->mseg);
	barray_free(pl->rowtab);
	arr_close(pl->a);
	free(pl);
}

static void install_callbacks(pool *pl)
{
	arr_set_live_fn(pl->a, live_cb, pl);
	arr_set_scrub_verify(pl->a, scrub_verify_cb, pl);
}

int pool_create(arr *a, const pool_params *p, pool **out, bks_err *e)
{
	pool *pl;
	uint8_t probe[8];
	int r;

	*out = NULL;
	if (arr_root(a, probe, sizeof(probe)) != 0)
		return bks_fail(e, -EEXIST, "the array already holds a store; import it instead");
	if ((r = pool_alloc(a, p, &pl)) < 0)
		return bks_fail(e, r, "pool: %s", strerror(-r));
	if ((r = bks_random(pl->uuid, BKS_UUID_LEN)) < 0 ||
	    (r = barray_new(pool_bio(), pl, 8, pl->p.meta_block, &pl->rowtab)) < 0 ||
	    (r = barray_resize(pl->rowtab, pl->nrows)) < 0) {
		bks_fail(e, r, "pool: %s", strerror(-r));
		goto fail;
	}
	pl->txg = 1;
	pl->next_seg_id = 1;
	pl->nfree = pl->nrows;
	if ((r = pool_commit(pl, NULL, 0, e)) < 0)
		goto fail;
	install_callbacks(pl);
	*out = pl;
	return 0;
fail:
	pl->a = NULL; /* the caller keeps the array */
	pool_close(pl);
	return r;
}

int pool_commit(pool *pl, const void *upper, size_t upper_len, bks_err *e)
{
	uint8_t rt[BARRAY_ROOT_ENC];
	uint8_t *blk = NULL;
	seg_ptr rp;
	int r;

	if (pl->fatal)
		return bks_fail(e, -EROFS, "store is read-only after a failed write; reopen it");
	if (upper_len > POOL_UPPER_MAX)
		return bks_fail(e, -EINVAL, "root too large");
	/* Rows of the commit class (pool.h "space"): the reserve is kept for this. */
	int space = pool_raise_space(pl, POOL_SPACE_COMMIT);
	if (upper) {
		memcpy(pl->upper, upper, upper_len);
		pl->upper_len = (uint32_t)upper_len;
	}
	if ((r = flush_seg(pl, pl->dseg, &pl->dseg_open)) < 0)
		goto io;
	/* The row table records the rows its own blocks land in: sync until nothing
	 * changes, and make sure the root block fits the metadata segment without
	 * opening another (which would change the row table again). */
	uint32_t root_len = ROOT_FIXED + pl->upper_len;
	for (int pass = 0;; pass++) {
		BKS_PANIC_IF(pass > 64, "row table sync does not converge");
		if ((r = barray_sync(pl->rowtab, rt)) < 0)
			goto io;
		if (!pl->mseg_open && (r = begin_seg(pl, pl->mseg, SEG_META, &pl->mseg_open)) < 0)
			goto io;
		if (seg_free_bytes(pl->mseg) < root_len + 64) {
			if ((r = flush_seg(pl, pl->mseg, &pl->mseg_open)) < 0)
				goto io;
			continue;
		}
		if (!barray_is_dirty(pl->rowtab))
			break;
	}
	blk = calloc(1, root_len);
	if (!blk) {
		r = -ENOMEM;
		goto io;
	}
	memcpy(blk, ROOT_MAGIC, 8);
	le_put32(blk + 8, ROOT_VERSION);
	le_put32(blk + 12, root_len);
	le_put64(blk + 16, pl->txg);
	le_put64(blk + 24, pl->next_seg_id);
	le_put64(blk + 32, pl->nrows);
	memcpy(blk + 40, rt, BARRAY_ROOT_ENC);
	le_put32(blk + 40 + BARRAY_ROOT_ENC, pl->upper_len);
	memcpy(blk + ROOT_FIXED, pl->upper, pl->upper_len);
	r = seg_add(pl->mseg, NULL, blk, root_len, &rp);
	free(blk);
	if (r < 0 || (r = flush_seg(pl, pl->mseg, &pl->mseg_open)) < 0)
		goto io;
	/* Every segment of this txg must be on the array before the superblock names
	 * the root (arr_commit flushes the disks first). */
	if ((r = drain(pl)) < 0)
		goto io;

	uint8_t anchor[ANCHOR_LEN];
	memcpy(anchor, ANCHOR_MAGIC, 8);
	le_put32(anchor + 8, ROOT_VERSION);
	le_put32(anchor + 12, ANCHOR_LEN);
	le_put64(anchor + 16, pl->txg);
	memcpy(anchor + 24, pl->uuid, BKS_UUID_LEN);
	seg_ptr_encode(&rp, anchor + 24 + BKS_UUID_LEN);
	if ((r = arr_commit(pl->a, anchor, sizeof(anchor), e)) < 0) {
		pl->fatal = 1;
		pool_set_space(pl, space);
		return r;
	}
	pl->root_ptr = rp;
	for (uint64_t row = 0; row < pl->nrows; row++)
		if (pl->freeing[row]) {
			pl->freeing[row] = 0;
			pl->nfree++;
			set_live(pl, row);
		}
	pl->nnew = 0;
	pl->nfreeing = 0;
	pl->txg++;
	pl->commit_enospc = 0;
	pool_set_space(pl, space);
	return 0;
io:
	pool_set_space(pl, space);
	if (r == -ENOSPC) {
		/* No row could be allocated: nothing was written that the next commit does
		 * not rewrite (the record arrays and the index keep their dirty state), so
		 * the pool stays writable and the commit can be retried once the collector
		 * has freed rows (they become reusable with the commit that succeeds). */
		pl->commit_enospc = 1;
		return bks_fail(e, r, "store commit of txg %llu: the array is full (no free row "
		                "for the metadata); delete backups and collect garbage, or add "
		                "disks", (unsigned long long)pl->txg);
	}
	pl->fatal = 1;
	return bks_fail(e, r, "store commit of txg %llu failed: %s",
	                (unsigned long long)pl->txg, strerror(-r));
}

int pool_open(arr *a, const pool_params *p, pool **out, bks_err *e)
{
	uint8_t anchor[ANCHOR_LEN];
	uint8_t *blk = NULL;
	pool *pl = NULL;
	seg_ptr rp;
	int r;

	*out = NULL;
	size_t n = arr_root(a, anchor, sizeof(anchor));
	if (n == 0)
		return bks_fail(e, -ENOENT, "the array holds no store (create one)");
	if (n != ANCHOR_LEN || memcmp(anchor, ANCHOR_MAGIC, 8) ||
	    le_get32(anchor + 8) != ROOT_VERSION)
		return bks_fail(e, -EPROTO, "the array's root is not a bkstor store of a version "
		                "this build reads");
	if ((r = pool_alloc(a, p, &pl)) < 0)
		return bks_fail(e, r, "pool: %s", strerror(-r));
	memcpy(pl->uuid, anchor + 24, BKS_UUID_LEN);
	seg_ptr_decode(anchor + 24 + BKS_UUID_LEN, &rp);
	uint64_t txg = le_get64(anchor + 16);
	blk = malloc(POOL_BLOCK_MAX);
	if (!blk) {
		r = bks_fail(e, -ENOMEM, "out of memory");
		goto fail;
	}
	if (rp.kind != SEG_META || rp.rlen < ROOT_FIXED || rp.rlen > POOL_BLOCK_MAX) {
		r = bks_fail(e, -EINVAL, "store root pointer is malformed");
		goto fail;
	}
	/* The row table is not loaded yet: read the root block straight from its row
	 * (the pointer's checksum guards it). */
	r = arr_read_verify(a, rp.row, rp.off, pl->iobuf, rp.slen, item_verify, &rp);
	if (r == 0)
		r = seg_item_decode(pl->dctx, &rp, pl->iobuf, blk, POOL_BLOCK_MAX);
	if (r < 0) {
		r = bks_fail(e, -EIO, "store root block (row %llu) unreadable",
		             (unsigned long long)rp.row);
		goto fail;
	}
	uint32_t root_len = le_get32(blk + 12);
	uint32_t ul = le_get32(blk + 40 + BARRAY_ROOT_ENC);
	if (memcmp(blk, ROOT_MAGIC, 8) || le_get32(blk + 8) != ROOT_VERSION ||
	    root_len != rp.rlen || ul > POOL_UPPER_MAX || ROOT_FIXED + ul != root_len ||
	    le_get64(blk + 16) != txg || le_get64(blk + 32) != pl->nrows) {
		r = bks_fail(e, -EINVAL, "store root block is inconsistent (txg %llu)",
		             (unsigned long long)txg);
		goto fail;
	}
	pl->txg = txg + 1;
	pl->root_ptr = rp;
	/* Segment ids are never reused: the txg a crash lost may have written segments
	 * with ids from the committed counter on (at most one per row, since rows are
	 * not reused within a txg), and their bytes may still sit in free rows. */
	pl->next_seg_id = le_get64(blk + 24) + pl->nrows;
	pl->upper_len = ul;
	memcpy(pl->upper, blk + ROOT_FIXED, ul);
	if ((r = barray_load(pool_bio(), pl, blk + 40, &pl->rowtab, e)) < 0)
		goto fail;
	if (barray_count(pl->rowtab) != pl->nrows) {
		r = bks_fail(e, -EINVAL, "row table has %llu rows, the array %llu",
		             (unsigned long long)barray_count(pl->rowtab),
		             (unsigned long long)pl->nrows);
		goto fail;
	}
	free(blk);
	for (uint64_t row = 0; row < pl->nrows; row++) {
		set_live(pl, row);
		pl->nfree += (rowrec(pl, row) & 3) == ROW_FREE;
	}
	install_callbacks(pl);
	*out = pl;
	return 0;
fail:
	free(blk);
	pl->a = NULL;
	pool_close(pl);
	return r;
}

size_t pool_upper(const pool *pl, void *buf, size_t cap)
{
	memcpy(buf, pl->upper, BKS_MIN(cap, (size_t)pl->upper_len));
	return pl->upper_len;
}

void pool_get_stats(const pool *pl, pool_stats *st)
{
	*st = pl->st;
	st->rows_total = pl->nrows;
	st->rows_data = st->rows_meta = st->rows_free = 0;
	for (uint64_t r = 0; r < pl->nrows; r++) {
		int s = pool_row_state(pl, r);
		if (s == ROW_DATA)
			st->rows_data++;
		else if (s == ROW_META)
			st->rows_meta++;
		else if (s == ROW_FREE)
			st->rows_free++;
	}
	uint64_t c;
	reserve_rows(pl, &c, &st->rows_reserved);
}

int pool_visit_meta(const pool *pl, int (*fn)(void *ctx, const seg_ptr *p), void *ctx)
{
	int r;
	if (!seg_ptr_is_null(&pl->root_ptr) && (r = fn(ctx, &pl->root_ptr)) != 0)
		return r;
	return barray_visit(pl->rowtab, fn, ctx);
}

void pool_open_segs(const pool *pl, uint64_t *data_seg, uint64_t *meta_seg)
{
	*data_seg = pl->dseg_open ? seg_current_id(pl->dseg) : 0;
	*meta_seg = pl->mseg_open ? seg_current_id(pl->mseg) : 0;
}

uint64_t pool_next_seg_id(const pool *pl)
{
	return pl->next_seg_id;
}

arr *pool_release(pool *pl)
{
	arr *a = pl->a;
	if (a) {
		arr_set_live_fn(a, NULL, NULL);
		arr_set_scrub_verify(a, NULL, NULL);
	}
	pl->a = NULL;
	pool_close(pl);
	return a;
}

/* --- metadata compaction (store_gc.c) --- */

uint64_t pool_relocate_meta(pool *pl, int (*pred)(void *ctx, const seg_ptr *p), void *ctx)
{
	/* The row table is in RAM: its blocks in the rows being emptied are marked and
	 * written elsewhere by the next commit's sync. The committed root block needs
	 * nothing: every commit writes a new one. */
	return barray_relocate(pl->rowtab, pred, ctx);
}
