/* dedup/store.c: see store.h. Objects, the write path, commits.
 * Reads and read-ahead are in store_read.c, the collector and verify in store_gc.c,
 * content maps in cmap.c. */
#include <config.h>

#include "dedup/store_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/endian.h"

static const char UPPER_MAGIC[8] = {'B', 'K', 'S', 'S', 'T', 'O', 'R', '1'};
#define UPPER_VERSION 1u
#define UPPER_LEN (8 + 4 + 4 + 8 * 6 + BARRAY_ROOT_ENC + FPIDX_ROOT_ENC + 4 * 3 + 4)

void store_params_default(store_params *p)
{
	memset(p, 0, sizeof(*p));
	pool_params_default(&p->pool);
	cdc_params_default(&p->cdc);
	p->auto_commit_bytes = 1ull << 30;
}

pool *store_pool(store *s) { return s->pl; }

static int alloc_store(pool *pl, const store_params *p, store **out)
{
	store *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->pl = pl;
	if (p)
		s->p = *p;
	else
		store_params_default(&s->p);
	int r = fp_ctx_new(&s->fpc);
	if (r == 0)
		r = map_reader_init(&s->mr, s->p.pool.meta_block);
	if (r == 0 && !(s->cbuf = malloc(s->p.cdc.max)))
		r = -ENOMEM;
	s->last_live_fraction = 1.0;
	if (r < 0) {
		fp_ctx_free(s->fpc);
		map_reader_free(&s->mr);
		free(s);
		return r;
	}
	*out = s;
	return 0;
}

static void free_store(store *s, int close_pool)
{
	if (s->pl)
		pool_set_reserve_fn(s->pl, NULL, NULL);
	while (s->writers)
		store_put_abort(s->writers);
	store_gc_free(s);
	store_defer_free(s);
	ingest_free(s->ing);
	store_ra_free(s);
	ilog_free(s->log);
	u64set_free(&s->log_objs);
	u64set_free(&s->log_listed);
	barray_free(s->objtab);
	fpidx_free(s->idx);
	fp_ctx_free(s->fpc);
	map_reader_free(&s->mr);
	free(s->cbuf);
	if (close_pool)
		pool_close(s->pl);
	free(s);
}

void store_close(store *s)
{
	if (s)
		free_store(s, 1);
}

static void encode_upper(store *s, uint8_t *u, const uint8_t *objroot, const uint8_t *idxroot)
{
	memset(u, 0, UPPER_LEN);
	memcpy(u, UPPER_MAGIC, 8);
	le_put32(u + 8, UPPER_VERSION);
	le_put32(u + 12, UPPER_LEN);
	le_put64(u + 16, s->next_obj);
	le_put64(u + 24, s->objects);
	le_put64(u + 32, s->logical);
	le_put64(u + 40, s->unique_chunks);
	le_put64(u + 48, s->unique_raw);
	le_put64(u + 56, s->stored);
	memcpy(u + 64, objroot, BARRAY_ROOT_ENC);
	memcpy(u + 64 + BARRAY_ROOT_ENC, idxroot, FPIDX_ROOT_ENC);
	uint8_t *c = u + 64 + BARRAY_ROOT_ENC + FPIDX_ROOT_ENC;
	le_put32(c, s->p.cdc.min);
	le_put32(c + 4, s->p.cdc.avg);
	le_put32(c + 8, s->p.cdc.max);
	le_put32(c + 12, (uint32_t)s->p.pool.zstd_level);
}

/* The store's part of the commit reserve (pool.h "space"): the whole object table
 * (deletes may dirty every block of it) and what the next index sync writes (the
 * memtable as a run, or a merge of the newer runs). */
static uint64_t reserve_bytes(void *ctx)
{
	store *s = ctx;
	return pool_table_bytes(s->pl, barray_count(s->objtab), OBJ_REC) +
	       fpidx_sync_bytes(s->idx, 0);
}

int store_commit(store *s, bks_err *e)
{
	uint8_t objroot[BARRAY_ROOT_ENC], idxroot[FPIDX_ROOT_ENC], u[UPPER_LEN];
	int r;
	/* (A commit during the intent log's replay at open keeps its recovery class.) */
	int space = pool_raise_space(s->pl, POOL_SPACE_COMMIT);
	if ((r = barray_sync(s->objtab, objroot)) < 0 || (r = fpidx_sync(s->idx, idxroot)) < 0) {
		pool_set_space(s->pl, space);
		if (r == -ENOSPC)
			return bks_fail(e, r, "store commit: the array is full (no free row for the "
			                "metadata); delete backups and collect garbage, or add disks");
		return bks_fail(e, r, "store commit: writing metadata: %s", strerror(-r));
	}
	encode_upper(s, u, objroot, idxroot);
	r = pool_commit(s->pl, u, sizeof(u), e);
	pool_set_space(s->pl, space);
	if (r == 0) {
		s->bytes_since_commit = 0;
		store_defer_committed(s);
		store_ilog_committed(s);
		store_gc_auto_commit(s);
	}
	return r;
}

int store_is_dirty(store *s)
{
	return barray_is_dirty(s->objtab) || pool_is_dirty(s->pl);
}

/* The parameters to use (p, or the defaults in *def when p is NULL), checked for
 * what both create and open need. */
static int params_of(const store_params **p, store_params *def, bks_err *e)
{
	if (!*p) {
		store_params_default(def);
		*p = def;
	}
	if ((*p)->pool.meta_block < FPIDX_BLOCK)
		return bks_fail(e, -EINVAL, "metadata blocks of %u bytes: the fingerprint index "
		                "writes %u-byte blocks; give at least that", (*p)->pool.meta_block,
		                FPIDX_BLOCK);
	return 0;
}

int store_create(arr *a, const store_params *p, store **out, bks_err *e)
{
	store_params def;
	pool *pl;
	store *s;
	int r;

	*out = NULL;
	if ((r = params_of(&p, &def, e)) < 0)
		return r;
	if ((r = cdc_params_check(&p->cdc)) < 0)
		return bks_fail(e, r, "chunk sizes %u/%u/%u are not valid", p->cdc.min, p->cdc.avg,
		                p->cdc.max);
	if ((r = pool_create(a, &p->pool, &pl, e)) < 0)
		return r;
	if ((r = alloc_store(pl, p, &s)) < 0) {
		bks_fail(e, r, "out of memory");
		goto fail_pool;
	}
	s->next_obj = 1;
	if ((r = barray_new(pool_bio(), pl, OBJ_REC, s->p.pool.meta_block, &s->objtab)) < 0 ||
	    (r = fpidx_new(pl, &s->idx)) < 0 || (r = ilog_new(a, pool_uuid(pl), &s->log)) < 0) {
		bks_fail(e, r, "out of memory");
		goto fail;
	}
	pool_set_reserve_fn(pl, reserve_bytes, s);
	if ((r = store_commit(s, e)) < 0)
		goto fail;
	*out = s;
	return 0;
fail:
	free_store(s, 0);
fail_pool:
	pool_release(pl); /* the array goes back to the caller */
	return r;
}

int store_open(arr *a, const store_params *p, store **out, bks_err *e)
{
	uint8_t u[POOL_UPPER_MAX];
	store_params def;
	pool *pl;
	store *s;
	int r;

	*out = NULL;
	if ((r = params_of(&p, &def, e)) < 0)
		return r;
	if ((r = pool_open(a, &p->pool, &pl, e)) < 0)
		return r;
	r = -EPROTO;
	size_t n = pool_upper(pl, u, sizeof(u));
	if (n != UPPER_LEN || memcmp(u, UPPER_MAGIC, 8) || le_get32(u + 8) != UPPER_VERSION) {
		r = bks_fail(e, -EPROTO, "the pool's root is not a store this build reads");
		goto fail_pool;
	}
	if ((r = alloc_store(pl, p, &s)) < 0) {
		bks_fail(e, r, "out of memory");
		goto fail_pool;
	}
	s->next_obj = le_get64(u + 16);
	s->objects = le_get64(u + 24);
	s->logical = le_get64(u + 32);
	s->unique_chunks = le_get64(u + 40);
	s->unique_raw = le_get64(u + 48);
	s->stored = le_get64(u + 56);
	const uint8_t *c = u + 64 + BARRAY_ROOT_ENC + FPIDX_ROOT_ENC;
	/* The chunking parameters are the store's, not the caller's: cut points decide
	 * what deduplicates. */
	s->p.cdc.min = le_get32(c);
	s->p.cdc.avg = le_get32(c + 4);
	s->p.cdc.max = le_get32(c + 8);
	if (cdc_params_check(&s->p.cdc) < 0) {
		r = bks_fail(e, -EINVAL, "store root: chunk sizes %u/%u/%u invalid", s->p.cdc.min,
		             s->p.cdc.avg, s->p.cdc.max);
		goto fail;
	}
	free(s->cbuf);
	if (!(s->cbuf = malloc(s->p.cdc.max))) {
		r = bks_fail(e, -ENOMEM, "out of memory");
		goto fail;
	}
	if ((r = barray_load(pool_bio(), pl, u + 64, &s->objtab, e)) < 0 ||
	    (r = fpidx_load(pl, u + 64 + BARRAY_ROOT_ENC, &s->idx, e)) < 0)
		goto fail;
	if (barray_count(s->objtab) > s->next_obj) {
		r = bks_fail(e, -EINVAL, "store root: object table larger than its id counter");
		goto fail;
	}
	pool_set_reserve_fn(pl, reserve_bytes, s);
	if ((r = ilog_new(a, pool_uuid(pl), &s->log)) < 0) {
		bks_fail(e, r, "out of memory");
		goto fail;
	}
	/* Syncs since the last commit: bring them back before anything else. Its
	 * commit may take any free row: a full store must still open. */
	int space = pool_set_space(pl, POOL_SPACE_RECOVERY);
	r = store_ilog_replay(s, e);
	pool_set_space(pl, space);
	if (r < 0)
		goto fail;
	/* Segments an earlier run stored raw for speed are found by the pass's first
	 * cycle (store_defer.c); everything on the array now is committed. */
	s->defer_pending = 1;
	s->defer_open_seg = pool_next_seg_id(pl);
	store_defer_committed(s);
	*out = s;
	return 0;
fail:
	s->pl = NULL;
	free_store(s, 0);
fail_pool:
	pool_release(pl); /* the array goes back to the caller */
	return r;
}

/* --- objects --- */



int store_obj_get(store *s, uint64_t id, obj_rec *o)
{
	if (id == 0 || id >= barray_count(s->objtab))
		return -ENOENT;
	obj_rec_decode(barray_get(s->objtab, id), o);
	return (o->flags & OBJ_INUSE) ? 0 : -ENOENT;
}

int store_stat(store *s, uint64_t id, store_obj_info *info)
{
	obj_rec o;
	int r = store_obj_get(s, id, &o);
	if (r < 0)
		return r;
	info->id = id;
	info->size = o.size;
	info->nextents = o.nextents;
	info->created_txg = o.created_txg;
	info->gen = o.gen;
	info->attr = o.attr;
	return 0;
}

int store_list(store *s, int (*fn)(void *ctx, const store_obj_info *info), void *ctx)
{
	for (uint64_t id = 1; id < barray_count(s->objtab); id++) {
		store_obj_info in;
		if (store_stat(s, id, &in) < 0)
			continue;
		int r = fn(ctx, &in);
		if (r)
			return r;
	}
	return 0;
}

int store_delete(store *s, uint64_t id)
{
	obj_rec o;
	int r = store_obj_get(s, id, &o);
	if (r < 0)
		return r;
	s->objects--;
	store_logical_sub(s, store_obj_mapped(s, &o));
	memset(&o, 0, sizeof(o));
	obj_rec_encode(&o, barray_mut(s->objtab, id));
	store_ilog_note_obj(s, id);
	if (s->mr.obj == id)
		map_reader_forget(&s->mr);
	store_ra_forget(s, id);
	return 0;
}

/* --- writing --- */

void store_note_ref(store *s, store_writer *w, uint64_t seg_id)
{
	if (w)
		u64set_add(&w->refs, seg_id);
	store_gc_note_ref(s, seg_id);
}

void store_get_space(store *s, store_space *out)
{
	pool_space_info si;
	pool_get_space(s->pl, &si);
	*out = (store_space){
		.rows = pool_rows(s->pl),
		.rows_free = si.rows_free,
		.reserve_total = si.reserve_total,
		.row_bytes = pool_row_bytes(s->pl),
		.full = si.full,
	};
}

int store_space_full(store *s)
{
	pool_space_info si;
	pool_get_space(s->pl, &si);
	return si.full;
}

int store_space_ok(store *s, int space, uint64_t rows)
{
	return pool_space_ok(s->pl, space, rows);
}

int store_put_begin(store *s, store_writer **out)
{
	return store_put_begin_class(s, POOL_SPACE_DATA, out);
}

int store_put_begin_class(store *s, int space, store_writer **out)
{
	/* New data is refused before it touches the reserve: a clean -ENOSPC here, not
	 * a writer failing half way (which can still happen when a stream outgrows
	 * the space left: its chunks are then garbage for the collector). */
	if (space == POOL_SPACE_DATA && store_space_full(s))
		return -ENOSPC;
	if (!s->ing) {
		/* At least one helper (threads 1 would be the caller alone). */
		int r = ingest_new(s->p.pool.zstd_level, s->p.cdc.max,
		                   s->p.threads == 1 ? 2 : s->p.threads, &s->ing);
		if (r < 0)
			return r;
	}
	store_writer *w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->s = s;
	w->space = space;
	int r = cdc_new(&s->p.cdc, &w->c);
	if (r == 0 && (!(w->chunk = malloc(s->p.cdc.max)) || !(w->first = malloc(s->p.cdc.max))))
		r = -ENOMEM;
	if (r == 0)
		r = map_writer_init(&w->mw, s->p.pool.meta_block);
	if (r < 0) {
		cdc_free(w->c);
		free(w->chunk);
		free(w->first);
		map_writer_free(&w->mw);
		free(w);
		return r;
	}
	w->next = s->writers;
	if (s->writers)
		s->writers->prev = w;
	s->writers = w;
	*out = w;
	return 0;
}

static void unlink_writer(store_writer *w)
{
	store *s = w->s;
	if (w->prev)
		w->prev->next = w->next;
	else
		s->writers = w->next;
	if (w->next)
		w->next->prev = w->prev;
}

void store_put_abort(store_writer *w)
{
	if (!w)
		return;
	unlink_writer(w);
	cdc_free(w->c);
	free(w->chunk);
	free(w->first);
	for (size_t i = 0; i < w->mw.nwritten; i++)
		pool_meta_free(w->s->pl, &w->mw.written[i]);
	map_writer_free(&w->mw);
	u64set_free(&w->refs);
	fpidx_pf_free(w->pf);
	free(w);
}

/* --- ingest rounds (dedup/ingest.h does the hashing and compressing) --- */

/* The chunks of the ingest engine's round are fingerprinted: look them up,
 * compress the new ones and append them; each span's loc says where its chunk is,
 * in stream order. New chunks are added to *nw (count, raw and stored bytes). */
int store_round_store(store *s, store_put_stats *nw)
{
	ingest *g = s->ing;
	int r, n = ingest_count(g);

	if ((r = ingest_hash_wait(g)) < 0)
		return r;
	for (int i = 0; i < n; i++) {
		ing_span *sp = ingest_span(g, i);
		if ((r = fpidx_lookup(s->idx, sp->fp, &sp->loc)) < 0)
			return r;
		sp->hit = r == 1;
	}
	if ((r = ingest_compress(g)) < 0)
		return r;
	for (int i = 0; i < n; i++) {
		ing_span *sp = ingest_span(g, i);
		if (sp->hit)
			continue;
		/* The same chunk may have come twice in one round. */
		if ((r = fpidx_lookup(s->idx, sp->fp, &sp->loc)) < 0)
			return r;
		if (r == 1)
			continue;
		r = sp->zlen ? pool_add_stored(s->pl, sp->fp, sp->z, sp->zlen, sp->len, SEG_ZSTD,
		                               &sp->loc)
		             : pool_add_stored(s->pl, sp->fp, sp->p, sp->len, sp->len, SEG_RAW,
		                               &sp->loc);
		if (r < 0 || (r = fpidx_insert(s->idx, sp->fp, &sp->loc)) < 0)
			return r;
		s->unique_chunks++;
		s->unique_raw += sp->len;
		s->stored += sp->loc.slen;
		s->bytes_since_commit += sp->loc.slen;
		nw->chunks_new++;
		nw->bytes_new += sp->len;
		nw->bytes_stored += sp->loc.slen;
	}
	return 0;
}

/* A writer's round: stored, then every chunk recorded in the map in stream order. */
static int finish_round(store_writer *w)
{
	store *s = w->s;
	store_put_stats nw = {0};
	int r = store_round_store(s, &nw);
	if (r < 0)
		return r;
	w->n_new += nw.chunks_new;
	w->new_bytes += nw.bytes_new;
	w->new_stored += nw.bytes_stored;
	for (int i = 0, n = ingest_count(s->ing); i < n; i++) {
		ing_span *sp = ingest_span(s->ing, i);
		w->n_chunks++;
		store_note_ref(s, w, sp->loc.seg_id);
		if ((r = map_add(&w->mw, s->pl, w->off, sp->len, sp->fp, &sp->loc)) < 0)
			return r;
		w->off += sp->len;
	}
	return 0;
}

/* One chunk: fingerprint, find or store, record in the map. */
static int put_chunk(store_writer *w, const uint8_t *data, uint32_t len)
{
	store *s = w->s;
	uint8_t fp[FP_LEN];
	seg_ptr p;
	int r = fp_compute(s->fpc, data, len, fp);
	if (r < 0)
		return r;
	r = fpidx_lookup(s->idx, fp, &p);
	if (r < 0)
		return r;
	if (r == 0) {
		if ((r = pool_add_chunk(s->pl, fp, data, len, &p)) < 0 ||
		    (r = fpidx_insert(s->idx, fp, &p)) < 0)
			return r;
		s->unique_chunks++;
		s->unique_raw += len;
		s->stored += p.slen;
		s->bytes_since_commit += p.slen;
		w->n_new++;
		w->new_bytes += len;
		w->new_stored += p.slen;
	}
	w->n_chunks++;
	store_note_ref(s, w, p.seg_id);
	if ((r = map_add(&w->mw, s->pl, w->off, len, fp, &p)) < 0)
		return r;
	w->off += len;
	return 0;
}

int store_put_write(store_writer *w, const void *buf, size_t len)
{
	ingest *g = w->s->ing;
	const uint8_t *p = buf;
	int r = 0;
	if (w->failed)
		return w->failed;
	int space = pool_set_space(w->s->pl, w->space);
	/* Rounds of up to ING_MAX chunks: cut points are found here while the engine
	 * fingerprints the chunks already found. Chunks point into buf, or (the first,
	 * when the last call left a tail) into w->first; every round is finished before
	 * this call returns, so nothing refers to the caller's memory afterwards. */
	while (len > 0 && r == 0) {
		ingest_begin(g);
		while (len > 0 && !ingest_full(g)) {
			int cut;
			size_t n = cdc_next(w->c, p, len, &cut);
			if (cut && w->clen == 0) {
				ingest_add(g, p, (uint32_t)n); /* in the caller's buffer: no copy */
			} else if (cut) {
				memcpy(w->first, w->chunk, w->clen);
				memcpy(w->first + w->clen, p, n);
				ingest_add(g, w->first, w->clen + (uint32_t)n);
				w->clen = 0;
			} else {
				memcpy(w->chunk + w->clen, p, n); /* the tail waits for the next call */
				w->clen += (uint32_t)n;
			}
			p += n;
			len -= n;
		}
		r = finish_round(w);
	}
	pool_set_space(w->s->pl, space);
	if (r < 0) {
		w->failed = r;
		return r;
	}
	store *s = w->s;
	if (s->p.auto_commit_bytes && s->bytes_since_commit >= s->p.auto_commit_bytes &&
	    !s->in_precommit) {
		if (s->precommit) {
			s->in_precommit = 1;
			r = s->precommit(s->precommit_ctx);
			s->in_precommit = 0;
			if (r < 0)
				return 0; /* not this time: the writer itself is fine */
		}
		if ((r = store_commit(s, NULL)) < 0) {
			w->failed = r;
			return r;
		}
	}
	return 0;
}

void store_set_precommit(store *s, int (*fn)(void *ctx), void *ctx)
{
	s->precommit = fn;
	s->precommit_ctx = ctx;
}

/* Finish the writer: into a new object (replace 0) or over object replace. */
static int put_finish(store_writer *w, uint64_t replace, uint64_t *id, store_put_stats *st)
{
	store *s = w->s;
	obj_rec o = {0}, old;
	int r = w->failed;

	if (r == 0 && replace && store_obj_get(s, replace, &old) < 0)
		r = -ENOENT;
	int space = pool_set_space(s->pl, w->space);
	if (r == 0 && w->clen)
		r = put_chunk(w, w->chunk, w->clen);
	if (r == 0)
		r = map_finish(&w->mw, s->pl, &o.root, &o.depth);
	pool_set_space(s->pl, space);
	uint64_t nid = replace ? replace : s->next_obj;
	if (r == 0 && (r = barray_resize(s->objtab, BKS_MAX(barray_count(s->objtab),
	                                                    nid + 1))) == 0) {
		o.flags = OBJ_INUSE;
		o.size = w->off;
		o.nextents = w->mw.nextents;
		if (replace) {
			o.created_txg = old.created_txg;
			o.gen = old.gen;
			o.attr = old.attr;
			store_logical_sub(s, store_obj_mapped(s, &old));
			if (s->mr.obj == nid)
				map_reader_forget(&s->mr);
			store_ra_forget(s, nid);
			s->cbuf_valid = 0;
		} else {
			o.created_txg = pool_txg(s->pl);
			o.gen = pool_next_seg_id(s->pl);
			o.attr.nlink = 1;
			s->next_obj++;
			s->objects++;
		}
		obj_rec_encode(&o, barray_mut(s->objtab, nid));
		s->logical += w->off; /* a stream has no hole (o.mflags 0) */
		store_ilog_note_obj(s, nid);
		if (id)
			*id = nid;
	}
	if (r < 0) {
		store_put_abort(w);
		return r;
	}
	if (st)
		store_put_get_stats(w, st);
	unlink_writer(w);
	cdc_free(w->c);
	free(w->chunk);
	free(w->first);
	map_writer_free(&w->mw);
	u64set_free(&w->refs);
	fpidx_pf_free(w->pf);
	free(w);
	return 0;
}

/* --- index reads outside the caller's lock (fpidx.h, "prefetch") --- */

/* The fingerprint a prefetch plans for: i < n of the caller's batch. */
typedef const uint8_t *(*pf_fp_at)(const void *batch, int i);

static int put_prefetch(store_writer *w, pf_fp_at at, const void *batch, int n,
                        void (*lock)(void *ctx), void (*unlock)(void *ctx), void *ctx)
{
	int want = 0, r = 0;
	/* w->pf is this writer's thread's own: made here, used by no other. */
	if (n <= 0 || w->failed)
		return 0;
	if (!w->pf && (r = fpidx_pf_new(&w->pf)) < 0)
		return r;
	lock(ctx);
	fpidx *x = w->s->idx; /* (store_rebuild_index may replace it: read under the lock) */
	fpidx_pf_begin(x, w->pf);
	for (int i = 0; i < n && r >= 0; i++)
		if ((r = fpidx_pf_want(x, w->pf, at(batch, i))) > 0)
			want++;
	unlock(ctx);
	if (r < 0 || want == 0)
		return r < 0 ? r : 0;
	fpidx_pf_read(w->pf);
	lock(ctx);
	r = fpidx_pf_install(w->s->idx, w->pf);
	unlock(ctx);
	return r;
}

static const uint8_t *ingest_fp_at(const void *g, int i)
{
	return ingest_span((ingest *)g, i)->fp;
}

int store_put_prefetch(store_writer *w, ingest *g, void (*lock)(void *ctx),
                       void (*unlock)(void *ctx), void *ctx)
{
	return put_prefetch(w, ingest_fp_at, g, ingest_count(g), lock, unlock, ctx);
}

struct fp_strided {
	const uint8_t *fp;
	size_t stride;
};

static const uint8_t *strided_fp_at(const void *b, int i)
{
	const struct fp_strided *v = b;
	return v->fp + (size_t)i * v->stride;
}

int store_put_prefetch_fps(store_writer *w, const uint8_t *fp, size_t stride, int n,
                           void (*lock)(void *ctx), void (*unlock)(void *ctx), void *ctx)
{
	struct fp_strided v = {fp, stride};
	return put_prefetch(w, strided_fp_at, &v, n, lock, unlock, ctx);
}

/* --- source-side dedup: the caller chunked and fingerprinted --- */

int store_has_chunk(store *s, const uint8_t fp[FP_LEN], uint32_t len)
{
	seg_ptr p;
	int r = fpidx_lookup(s->idx, fp, &p);
	return r <= 0 ? r : p.rlen == len;
}

int store_put_known(store_writer *w, const uint8_t fp[FP_LEN], uint32_t len)
{
	store *s = w->s;
	seg_ptr p;
	int r;
	if (w->failed)
		return w->failed;
	if (w->clen || len == 0 || len > s->p.cdc.max)
		return -EINVAL;
	if ((r = fpidx_lookup(s->idx, fp, &p)) <= 0)
		return r;
	if (p.rlen != len)
		return 0; /* same fingerprint, other length: not ours to trust */
	store_note_ref(s, w, p.seg_id);
	int space = pool_set_space(s->pl, w->space);
	r = map_add(&w->mw, s->pl, w->off, len, fp, &p);
	pool_set_space(s->pl, space);
	if (r < 0) {
		w->failed = r;
		return r;
	}
	w->off += len;
	w->n_chunks++;
	return 1;
}

void store_put_get_stats(const store_writer *w, store_put_stats *st)
{
	st->bytes = w->off;
	st->chunks = w->n_chunks;
	st->chunks_new = w->n_new;
	st->bytes_new = w->new_bytes;
	st->bytes_stored = w->new_stored;
}

int store_put_chunk(store_writer *w, const uint8_t fp[FP_LEN], const void *data,
                    uint32_t len)
{
	store *s = w->s;
	uint8_t got[FP_LEN];
	int r;
	if (w->failed)
		return w->failed;
	if (w->clen || len == 0 || len > s->p.cdc.max)
		return -EINVAL;
	if ((r = fp_compute(s->fpc, data, len, got)) < 0)
		return r;
	if (memcmp(got, fp, FP_LEN))
		return -EBADMSG; /* the bytes are not the chunk the client named */
	int space = pool_set_space(s->pl, w->space);
	if ((r = put_chunk(w, data, len)) < 0)
		w->failed = r;
	pool_set_space(s->pl, space);
	return r;
}

/* Under the daemon's lock only the lookup, the append to the open segment (a copy and
 * its xxh3, seeded with the segment id, so it cannot be made earlier) and the index
 * insert. The bytes are the caller's own: no fingerprint check here (that is what
 * store_put_chunk spends under the lock for a client's chunk). */
int store_put_prepared(store_writer *w, const uint8_t fp[FP_LEN], uint32_t len,
                       const void *stored, uint32_t slen, int codec)
{
	store *s = w->s;
	seg_ptr p;
	int r, known;
	if (w->failed)
		return w->failed;
	if (w->clen || len == 0 || len > s->p.cdc.max || slen == 0 ||
	    ((codec == SEG_RAW || codec == SEG_RAW_DEFERRED) && slen != len) ||
	    (codec != SEG_RAW && codec != SEG_ZSTD && codec != SEG_RAW_DEFERRED))
		return -EINVAL;
	if ((r = fpidx_lookup(s->idx, fp, &p)) < 0)
		return r;
	known = r == 1;
	if (known && p.rlen != len)
		return -EBADMSG; /* one fingerprint, two lengths: never trust either */
	int space = pool_set_space(s->pl, w->space);
	if (!known) {
		/* New: the caller's stored form goes in as it is (same item format as
		 * pool_add_chunk writes; readers cannot tell the two apart). */
		if ((r = pool_add_stored(s->pl, fp, stored, slen, len, codec, &p)) < 0 ||
		    (r = fpidx_insert(s->idx, fp, &p)) < 0)
			goto out;
		s->unique_chunks++;
		s->unique_raw += len;
		s->stored += p.slen;
		s->bytes_since_commit += p.slen;
		if (codec == SEG_RAW_DEFERRED)
			store_defer_note(s, len);
		w->n_new++;
		w->new_bytes += len;
		w->new_stored += p.slen;
	}
	/* Known by now (another stream stored it since the caller looked, or it came
	 * twice): the caller's compressed copy is dropped, the stored one shared. */
	store_note_ref(s, w, p.seg_id);
	if ((r = map_add(&w->mw, s->pl, w->off, len, fp, &p)) < 0)
		goto out;
	w->off += len;
	w->n_chunks++;
	r = known;
out:
	pool_set_space(s->pl, space);
	if (r < 0)
		w->failed = r;
	return r;
}

int store_put_end(store_writer *w, uint64_t *id)
{
	return put_finish(w, 0, id, NULL);
}

int store_put_end_stats(store_writer *w, uint64_t *id, store_put_stats *st)
{
	return put_finish(w, 0, id, st);
}

void store_cdc_params(const store *s, cdc_params *p)
{
	*p = s->p.cdc;
}

int store_put_end_replace(store_writer *w, uint64_t id)
{
	if (id == 0) {
		store_put_abort(w);
		return -ENOENT;
	}
	return put_finish(w, id, NULL, NULL);
}

int store_setattr(store *s, uint64_t id, const store_attr *a)
{
	obj_rec o;
	int r = store_obj_get(s, id, &o);
	if (r < 0)
		return r;
	o.attr = *a;
	obj_rec_encode(&o, barray_mut(s->objtab, id));
	store_ilog_note_obj(s, id);
	return 0;
}

int store_put(store *s, const void *buf, size_t len, uint64_t *id)
{
	store_writer *w;
	int r = store_put_begin(s, &w);
	if (r < 0)
		return r;
	if ((r = store_put_write(w, buf, len)) < 0) {
		store_put_abort(w);
		return r;
	}
	return store_put_end(w, id);
}

int store_rebuild_index(store *s, bks_err *e)
{
	fpidx *nx;
	int r = fpidx_rebuild(s->pl, &nx, e);
	if (r < 0)
		return r;
	/* The old runs' blocks become garbage for the collector. */
	fpidx_free(s->idx);
	s->idx = nx;
	return store_commit(s, e);
}

/* --- stats --- */

void store_get_stats(store *s, store_stats *st)
{
	pool_stats ps;
	fpidx_stats xs;
	memset(st, 0, sizeof(*st));
	pool_get_stats(s->pl, &ps);
	fpidx_get_stats(s->idx, &xs);
	st->objects = s->objects;
	st->logical_bytes = s->logical;
	st->unique_chunks = s->unique_chunks;
	st->unique_raw_bytes = s->unique_raw;
	st->stored_bytes = s->stored;
	st->rows_data = ps.rows_data;
	st->rows_meta = ps.rows_meta;
	st->rows_free = ps.rows_free;
	st->rows_total = ps.rows_total;
	pool_space_info si;
	pool_get_space(s->pl, &si);
	st->rows_reserved = si.reserve_total;
	st->rows_reserved_commit = si.reserve_commit;
	st->full = si.full || si.commit_enospc;
	st->space_refusals = ps.enospc;
	st->physical_bytes = (ps.rows_data + ps.rows_meta) * (uint64_t)pool_row_bytes(s->pl);
	st->dedup_ratio = s->unique_raw ? (double)s->logical / (double)s->unique_raw : 1.0;
	st->compression_ratio = s->stored ? (double)s->unique_raw / (double)s->stored : 1.0;
	st->live_fraction = s->last_live_fraction;
	st->index_entries = xs.entries;
	st->index_ram_bytes = xs.ram_bytes;
	st->index_ram_fixed_bytes = xs.ram_fixed_bytes;
	st->index_runs = xs.runs;
	st->index_lookups = xs.lookups;
	st->index_memtable_hits = xs.memtable_hits;
	st->index_locality_hits = xs.locality_hits;
	st->index_run_hits = xs.run_hits;
	st->index_misses = xs.misses;
	st->index_block_reads = xs.block_reads;
	st->index_prefetch_reads = xs.pf_reads;
	st->index_prefetch_dropped = xs.pf_dropped;
	st->log_syncs = s->log_syncs;
	st->log_full_commits = s->log_full_commits;
	st->log_replayed = s->log_replayed;
	st->gc_auto_started = s->gc_auto_started;
	store_ra_get_stats(s, &st->read_ahead_bytes, &st->read_sync_bytes,
	                   &st->read_ahead_streams, &st->read_ahead_fallbacks);
}
