/* dedup/store_read.c: see store.h ("Reading"). store_read and its read-ahead.
 *
 * A reader that goes sequentially through an object gets a stream: the extents of
 * its content map ahead of it are planned (map_find, on the caller's thread), their
 * chunks grouped into jobs of up to RA_JOB_ROWS rows, and each job is done by the
 * store's read helpers: the rows' spans are read in one batch (arr_read_many: every
 * disk busy at once), every item is checked against its pointer's checksum and
 * decompressed into the job's buffer. store_read then copies from the window; a job
 * not started yet when the reader gets to it is done by the reader itself, and a
 * reader that waits for a helper takes the next queued job meanwhile.
 * store_read_iov does not wait: its pieces point where the job will put the bytes,
 * and store_read_wait, outside the daemon's lock, does that waiting (and that work).
 *
 * What a helper touches (the store is one call at a time; helpers run between and
 * during those calls; a thread in store_read_wait is a helper for this purpose): its job (the planner filled it before queueing it and does
 * not touch it until it is DONE), the array (thread-safe), seg_item_ok and
 * seg_item_decode (pure), its own zstd context. Never the pool, the index, the map
 * reader or a stream. The queue, job states and the free list are under ra->mu.
 *
 * Why bytes from a helper are never stale: a job's bytes are what the array held at
 * the pointer's place, accepted only when they match the pointer's checksum, so they
 * are that chunk's bytes (a row the collector freed and reused meanwhile fails the
 * check, and the reader falls back to pool_read_item, which follows the index). A
 * stream is planned from one version of the object's map: its record's root, size,
 * depth and generation are compared on every read, and every change of an object
 * (store_write_at, store_truncate, replace, delete) writes a new root
 * (copy-on-write), so a stream planned from an older map is dropped before it
 * serves a byte. store_ra_forget drops them earlier, to free their memory.
 */
#include <config.h>

#include "dedup/store_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

#define RA_STREAMS 16              /* streams remembered (LRU) */
#define RA_PER_OBJ 4               /* ... of one object (readers of one file) */
#define RA_STALE 32                /* a stream not read for this many reads (of any
                                    * stream) gives its jobs up to one that needs them */
#define RA_DPOOL 8                 /* zstd contexts kept for store_read_wait */
#define RA_WINDOW_MIN (2u << 20)   /* planned ahead of a new stream's reader */
#define RA_WINDOW_MAX (16u << 20)  /* ... growing while it stays sequential */
#define RA_BEHIND (1u << 20)       /* kept behind the reader's last read */
#define RA_JOB_RAW (2u << 20)      /* decoded bytes per job (or the largest chunk) */
#define RA_JOB_ROWS 16             /* rows one job reads (<= ARR_RD_MAX) */
#define RA_JOB_ITEMS 1024
#define RA_JOBS 16                 /* jobs of the store (every stream) */
#define RA_EXTS 8192               /* planned extents per stream */
#define RA_LARGE (256u << 10)      /* a read this long gets a stream at once */
#define RA_IO_HELPERS 1            /* helpers beyond the cores': reads in flight */

enum { RA_J_FREE = 0, RA_J_BUILD = 1, RA_J_QUEUED = 2, RA_J_RUNNING = 3, RA_J_DONE = 4 };
enum { RA_HOLE = 0, RA_JOB = 1, RA_SYNC = 2 };

struct ra_item {
	seg_ptr p;
	uint32_t ri;                   /* its range in rd[] */
	uint32_t soff;                 /* stored bytes in stage (set when queued) */
	uint32_t doff;                 /* decoded bytes in out (a raw item's stay in stage) */
	int ok;                        /* checked and decoded */
};

struct ra_job {
	int state;
	int refs;                      /* planned extents that use it */
	int pins;                      /* store_read_iov pieces still pointing into it */
	int orphan;                    /* released while pinned: free at the last unpin */
	struct ra_stream *owner;
	uint32_t used;                 /* bytes of out */
	int nrow;
	arr_rd rd[RA_JOB_ROWS];        /* spans of rows (off, len: aligned); buf at queueing */
	int nitem;
	struct ra_item item[RA_JOB_ITEMS];
	uint8_t *stage, *out;
	struct ra_job *next;           /* queue or free list */
};

struct ra_ext {
	map_ext e;
	int kind;
	struct ra_job *job;
	uint32_t item;
};

struct ra_stream {
	int used;                      /* the slot holds a stream */
	uint64_t id, gen, size;
	uint32_t depth;
	seg_ptr root;                  /* the map it was planned from */
	uint64_t next;                 /* a sequential reader reads here next */
	uint64_t stamp;
	uint64_t window;
	int active;                    /* planning (ext allocated) */
	struct ra_ext *ext;            /* ring of planned extents, in offset order */
	uint32_t head, n;
	uint64_t plan_end;             /* planned up to here (an extent's end) */
	struct ra_job *build;          /* the job being filled */
};

struct ra {
	pthread_mutex_t mu;
	pthread_cond_t work, done;
	pthread_t th[ING_MAX_THREADS];
	int nth, stop;
	arr *a;
	uint32_t job_raw, job_stage;
	struct ra_job *qhead, *qtail, *free;
	struct ra_job job[RA_JOBS];
	ZSTD_DCtx *dctx;               /* the caller's (under the daemon's lock) */
	ZSTD_DCtx *dpool[RA_DPOOL];    /* store_read_wait's (outside it; under mu) */
	int ndpool;
	struct ra_stream st[RA_STREAMS];
	uint64_t clock;
	/* stats (caller's thread) */
	uint64_t bytes_ahead, bytes_sync, streams, fallbacks;
};

/* --- one chunk, through the pool (the way every read used to go) --- */

int store_read_chunk(store *s, const map_ext *e, void *out)
{
	seg_ptr tried = e->p, now;
	int r = pool_read_item(s->pl, &e->p, out, e->len);
	if (r == -ESTALE) {
		/* The collector moved the chunk: the index knows where it is now. */
		int f = fpidx_lookup(s->idx, e->fp, &now);
		if (f < 0)
			return f;
		if (f == 0 || now.rlen != e->len)
			return -EIO;
		r = pool_read_item(s->pl, &now, out, e->len);
		tried = now;
	}
	if (r == -EIO) {
		/* Damaged beyond what the array reconstructs: maps keep pointing at the bad
		 * copy, but a good one stored since (store_repair_chunk: fetched again from
		 * the replication source) is in the index. */
		int f = fpidx_lookup_other(s->idx, e->fp, &tried, &now);
		if (f < 0)
			return f;
		if (f > 0 && now.rlen == e->len)
			r = pool_read_item(s->pl, &now, out, e->len);
	}
	return r;
}

/* n bytes at in of extent e into dst: holes are zeros, a whole chunk is decoded in
 * place, a part goes through the one-chunk cache. */
static int read_ext_sync(store *s, const map_ext *e, uint64_t in, uint8_t *dst, size_t n)
{
	int r;
	if (map_ext_is_hole(e)) {
		memset(dst, 0, n);
		return 0;
	}
	if (in == 0 && n == e->len)
		return store_read_chunk(s, e, dst);
	if (!s->cbuf_valid || memcmp(s->cbuf_fp, e->fp, FP_LEN)) {
		s->cbuf_valid = 0;
		if ((r = store_read_chunk(s, e, s->cbuf)) < 0)
			return r;
		memcpy(s->cbuf_fp, e->fp, FP_LEN);
		s->cbuf_valid = 1;
	}
	memcpy(dst, s->cbuf + in, n);
	return 0;
}

/* --- jobs --- */

/* Any thread: read the job's spans, check and decode every item. */
static void job_run(arr *a, struct ra_job *j, ZSTD_DCtx *dctx)
{
	arr_read_many(a, j->rd, j->nrow);
	for (int i = 0; i < j->nitem; i++) {
		struct ra_item *it = &j->item[i];
		const uint8_t *src = j->stage + it->soff;
		it->ok = j->rd[it->ri].result == 0 && seg_item_ok(&it->p, src) &&
		         (it->p.codec == SEG_RAW ? it->p.slen == it->p.rlen :
		          seg_item_decode(dctx, &it->p, src, j->out + it->doff, it->p.rlen) == 0);
	}
}

static void *helper_main(void *arg)
{
	struct ra *ra = arg;
	ZSTD_DCtx *dctx = ZSTD_createDCtx();
	pthread_mutex_lock(&ra->mu);
	for (;;) {
		while (!ra->stop && !ra->qhead)
			pthread_cond_wait(&ra->work, &ra->mu);
		if (ra->stop)
			break;
		struct ra_job *j = ra->qhead;
		ra->qhead = j->next;
		if (!ra->qhead)
			ra->qtail = NULL;
		j->state = RA_J_RUNNING;
		pthread_mutex_unlock(&ra->mu);
		if (dctx)
			job_run(ra->a, j, dctx);
		else
			for (int i = 0; i < j->nitem; i++)
				j->item[i].ok = 0; /* the reader reads them through the pool */
		pthread_mutex_lock(&ra->mu);
		j->state = RA_J_DONE;
		pthread_cond_broadcast(&ra->done);
	}
	pthread_mutex_unlock(&ra->mu);
	ZSTD_freeDCtx(dctx);
	return NULL;
}

static void queue_remove(struct ra *ra, struct ra_job *j)
{
	struct ra_job **pp = &ra->qhead, *prev = NULL;
	while (*pp && *pp != j) {
		prev = *pp;
		pp = &(*pp)->next;
	}
	if (!*pp)
		return;
	*pp = j->next;
	if (ra->qtail == j)
		ra->qtail = prev;
}

/* Caller: until j is DONE, doing queued jobs (j first) rather than waiting idle. */
static void job_wait(struct ra *ra, struct ra_job *j)
{
	pthread_mutex_lock(&ra->mu);
	while (j->state != RA_J_DONE) {
		struct ra_job *t = j->state == RA_J_QUEUED ? j : ra->qhead;
		if (t) {
			queue_remove(ra, t);
			t->state = RA_J_RUNNING;
			pthread_mutex_unlock(&ra->mu);
			job_run(ra->a, t, ra->dctx);
			pthread_mutex_lock(&ra->mu);
			t->state = RA_J_DONE;
			pthread_cond_broadcast(&ra->done);
		} else {
			pthread_cond_wait(&ra->done, &ra->mu);
		}
	}
	pthread_mutex_unlock(&ra->mu);
}

/* Lay out the stage (each span after the other) and hand the job to the helpers. */
static void job_queue(struct ra *ra, struct ra_job *j)
{
	uint32_t soff[RA_JOB_ROWS], at = 0;
	for (int i = 0; i < j->nrow; i++) {
		soff[i] = at;
		j->rd[i].buf = j->stage + at;
		at += (uint32_t)j->rd[i].len;
	}
	for (int i = 0; i < j->nitem; i++) {
		struct ra_item *it = &j->item[i];
		it->soff = soff[it->ri] + (uint32_t)(it->p.off - j->rd[it->ri].off);
	}
	if (j->owner && j->owner->build == j)
		j->owner->build = NULL;
	pthread_mutex_lock(&ra->mu);
	j->state = RA_J_QUEUED;
	j->next = NULL;
	if (ra->qtail)
		ra->qtail->next = j;
	else
		ra->qhead = j;
	ra->qtail = j;
	pthread_cond_signal(&ra->work);
	pthread_mutex_unlock(&ra->mu);
}

/* Give a job back (not queued nor running any more once this returns). A pinned
 * one (DONE: only those are pinned) stays as it is until its last unpin. */
static void job_release(struct ra *ra, struct ra_job *j)
{
	if (j->owner && j->owner->build == j)
		j->owner->build = NULL;
	if (j->pins) {
		j->orphan = 1;
		j->owner = NULL;
		j->refs = 0;
		return;
	}
	pthread_mutex_lock(&ra->mu);
	if (j->state == RA_J_QUEUED)
		queue_remove(ra, j);
	while (j->state == RA_J_RUNNING)
		pthread_cond_wait(&ra->done, &ra->mu);
	j->state = RA_J_FREE;
	j->owner = NULL;
	j->refs = 0;
	j->next = ra->free;
	ra->free = j;
	pthread_mutex_unlock(&ra->mu);
}

static struct ra_job *job_get(struct ra *ra, struct ra_stream *st)
{
	pthread_mutex_lock(&ra->mu);
	struct ra_job *j = ra->free;
	if (j)
		ra->free = j->next;
	pthread_mutex_unlock(&ra->mu);
	if (!j)
		return NULL;
	if (!j->stage) {
		j->stage = bks_alloc_aligned(DISK_ALIGN, ra->job_stage);
		j->out = malloc(ra->job_raw);
		if (!j->stage || !j->out) {
			free(j->stage);
			free(j->out);
			j->stage = j->out = NULL;
			j->state = RA_J_FREE;
			pthread_mutex_lock(&ra->mu);
			j->next = ra->free;
			ra->free = j;
			pthread_mutex_unlock(&ra->mu);
			return NULL;
		}
	}
	j->state = RA_J_BUILD;
	j->owner = st;
	j->refs = 0;
	j->used = 0;
	j->nrow = 0;
	j->nitem = 0;
	return j;
}

/* Add item p to job j if it fits: 1 (*item set), 0 if not. */
static int job_add(struct ra *ra, struct ra_job *j, const seg_ptr *p, uint32_t *item)
{
	uint32_t rlen = p->codec == SEG_RAW ? 0 : p->rlen; /* read from the stage */
	if (j->nitem == RA_JOB_ITEMS || rlen > ra->job_raw - j->used)
		return 0;
	uint64_t lo = p->off / DISK_ALIGN * DISK_ALIGN;
	uint64_t hi = BKS_ROUND_UP((uint64_t)p->off + p->slen, DISK_ALIGN);
	uint64_t total = 0;
	int ri = -1;
	for (int i = 0; i < j->nrow; i++) {
		if (j->rd[i].row == p->row) {
			ri = i;
			uint64_t a = BKS_MIN(lo, (uint64_t)j->rd[i].off);
			uint64_t b = BKS_MAX(hi, (uint64_t)(j->rd[i].off + j->rd[i].len));
			total += b - a;
		} else {
			total += j->rd[i].len;
		}
	}
	if (ri < 0) {
		if (j->nrow == RA_JOB_ROWS)
			return 0;
		total += hi - lo;
	}
	if (total > ra->job_stage)
		return 0;
	if (ri < 0) {
		ri = j->nrow++;
		j->rd[ri] = (arr_rd){.row = p->row, .off = (size_t)lo, .len = (size_t)(hi - lo)};
	} else {
		uint64_t a = BKS_MIN(lo, (uint64_t)j->rd[ri].off);
		uint64_t b = BKS_MAX(hi, (uint64_t)(j->rd[ri].off + j->rd[ri].len));
		j->rd[ri].off = (size_t)a;
		j->rd[ri].len = (size_t)(b - a);
	}
	struct ra_item *it = &j->item[j->nitem];
	it->p = *p;
	it->ri = (uint32_t)ri;
	it->doff = j->used;
	it->ok = 0;
	j->used += rlen;
	*item = (uint32_t)j->nitem++;
	return 1;
}

/* --- the helpers --- */

static void ra_stop(struct ra *ra)
{
	pthread_mutex_lock(&ra->mu);
	ra->stop = 1;
	pthread_cond_broadcast(&ra->work);
	pthread_mutex_unlock(&ra->mu);
	for (int i = 0; i < ra->nth; i++)
		pthread_join(ra->th[i], NULL);
	ra->nth = 0;
}

static struct ra *ra_get(store *s)
{
	if (s->ra)
		return s->ra;
	struct ra *ra = calloc(1, sizeof(*ra));
	if (!ra)
		return NULL;
	pthread_mutex_init(&ra->mu, NULL);
	pthread_cond_init(&ra->work, NULL);
	pthread_cond_init(&ra->done, NULL);
	ra->a = pool_array(s->pl);
	ra->job_raw = BKS_MAX(RA_JOB_RAW, s->p.cdc.max);
	ra->job_stage = ra->job_raw + ra->job_raw / 2 + 2 * DISK_ALIGN * RA_JOB_ROWS;
	for (int i = RA_JOBS - 1; i >= 0; i--) {
		ra->job[i].next = ra->free;
		ra->free = &ra->job[i];
	}
	if (!(ra->dctx = ZSTD_createDCtx())) {
		free(ra);
		return NULL;
	}
	/* The caller and threads - 1 helpers for the CPU, plus RA_IO_HELPERS: a job is
	 * its rows' read (arr_read_many, which waits) and then their decompression, and
	 * the read was about half of it here (2.2 ms of array reads and 1.95 ms of zstd
	 * per 2 MiB job, timed in job_run during a GET of 636 MB). With as many threads
	 * as cores every one of them spent half its time waiting for the disks: the
	 * machine had idle CPU during a restore that was CPU-bound. One more thread keeps
	 * a read in flight while the others decompress. */
	int threads = s->p.threads;
	if (threads <= 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		threads = n > 0 ? (int)n : 2;
	}
	int want = BKS_MIN(BKS_MAX(1, BKS_MIN(threads, ING_MAX_THREADS) - 1) + RA_IO_HELPERS,
	                   ING_MAX_THREADS);
	for (int i = 0; i < want; i++)
		if (pthread_create(&ra->th[ra->nth], NULL, helper_main, ra) == 0)
			ra->nth++;
	/* With no helper the reader does every job itself: still correct. */
	s->ra = ra;
	return ra;
}

/* --- streams --- */

static struct ra_ext *ext_at(const struct ra_stream *st, uint32_t i)
{
	return &st->ext[(st->head + i) % RA_EXTS];
}

static void ext_retire_head(struct ra *ra, struct ra_stream *st)
{
	struct ra_ext *x = ext_at(st, 0);
	if (x->kind == RA_JOB && --x->job->refs == 0)
		job_release(ra, x->job);
	st->head = (st->head + 1) % RA_EXTS;
	st->n--;
}

/* Drop a stream's window (its jobs go back); it stays as a probe at next. */
static void stream_reset(struct ra *ra, struct ra_stream *st)
{
	while (st->n)
		ext_retire_head(ra, st);
	if (st->build)
		job_release(ra, st->build);
	for (int i = 0; i < RA_JOBS; i++)
		if (ra->job[i].owner == st)
			job_release(ra, &ra->job[i]); /* (none should be left) */
	st->active = 0;
	st->head = 0;
	st->plan_end = 0;
}

static void stream_drop(struct ra *ra, struct ra_stream *st)
{
	stream_reset(ra, st);
	free(st->ext);
	st->ext = NULL;
	st->used = 0;
}

void store_ra_forget(store *s, uint64_t id)
{
	struct ra *ra = s->ra;
	if (!ra)
		return;
	for (int i = 0; i < RA_STREAMS; i++)
		if (ra->st[i].used && ra->st[i].id == id)
			stream_drop(ra, &ra->st[i]);
}

void store_ra_free(store *s)
{
	struct ra *ra = s->ra;
	if (!ra)
		return;
	ra_stop(ra);
	ra->qhead = ra->qtail = NULL; /* nothing runs now: drop the queue */
	for (int i = 0; i < RA_STREAMS; i++)
		stream_drop(ra, &ra->st[i]);
	for (int i = 0; i < RA_JOBS; i++) {
		free(ra->job[i].stage);
		free(ra->job[i].out);
	}
	ZSTD_freeDCtx(ra->dctx);
	for (int i = 0; i < ra->ndpool; i++)
		ZSTD_freeDCtx(ra->dpool[i]);
	pthread_cond_destroy(&ra->work);
	pthread_cond_destroy(&ra->done);
	pthread_mutex_destroy(&ra->mu);
	free(ra);
	s->ra = NULL;
}

void store_ra_get_stats(const store *s, uint64_t *ahead, uint64_t *sync, uint64_t *streams,
                        uint64_t *fallbacks)
{
	const struct ra *ra = s->ra;
	*ahead = ra ? ra->bytes_ahead : 0;
	*sync = ra ? ra->bytes_sync : 0;
	*streams = ra ? ra->streams : 0;
	*fallbacks = ra ? ra->fallbacks : 0;
}

static int same_map(const struct ra_stream *st, uint64_t id, const obj_rec *o)
{
	/* (Field by field: a seg_ptr has padding.) */
	const seg_ptr *a = &st->root, *b = &o->root;
	return st->id == id && st->gen == o->gen && st->size == o->size &&
	       st->depth == o->depth && a->seg_id == b->seg_id && a->row == b->row &&
	       a->off == b->off && a->slen == b->slen && a->xxh == b->xxh;
}

/* A job for st. When none is free, the stream least recently read of those nobody
 * read for RA_STALE reads gives its jobs back first: a reader that went elsewhere or
 * stopped would otherwise keep them until its slot is taken, and with several
 * streams per object (readers of one file) that is a while. Streams read in turn
 * are never robbed: they would only take the jobs back from each other. */
static struct ra_job *job_take(struct ra *ra, struct ra_stream *st)
{
	struct ra_job *j = job_get(ra, st);
	if (j)
		return j;
	struct ra_stream *old = NULL;
	for (int i = 0; i < RA_STREAMS; i++) {
		struct ra_stream *c = &ra->st[i];
		if (c != st && c->used && c->active && c->stamp + RA_STALE < ra->clock &&
		    (!old || c->stamp < old->stamp))
			old = c;
	}
	if (!old)
		return NULL;
	stream_reset(ra, old);
	return job_get(ra, st);
}

/* Plan extents until the window ahead of pos is covered (or jobs or ring run out);
 * the extent holding need (if below the object's end) is planned whatever it takes:
 * as RA_SYNC when no job is free. */
static int stream_plan(store *s, struct ra *ra, struct ra_stream *st, const obj_rec *o,
                       uint64_t pos, uint64_t need)
{
	uint64_t target = BKS_MIN(o->size, pos + st->window);
	int r = 0;
	while (st->plan_end < target && st->n < RA_EXTS) {
		struct ra_ext *x = ext_at(st, st->n);
		if ((r = map_find(&s->mr, s->pl, st->id, o, st->plan_end, &x->e)) < 0) {
			r = r == -ENOENT ? -EIO : r;
			break;
		}
		x->job = NULL;
		x->kind = map_ext_is_hole(&x->e) ? RA_HOLE : RA_SYNC;
		seg_ptr p = x->e.p;
		if (x->kind == RA_SYNC && !pool_item_on_array(s->pl, &p)) {
			/* Moved by the collector (the map keeps the old place): the index
			 * says where it is now. (Or still in a segment being written: read on
			 * demand.) */
			seg_ptr now;
			if (fpidx_lookup(s->idx, x->e.fp, &now) == 1 && now.rlen == x->e.len)
				p = now;
		}
		if (x->kind == RA_SYNC && pool_item_on_array(s->pl, &p)) {
			for (int tries = 0; tries < 2; tries++) {
				if (!st->build && !(st->build = job_take(ra, st)))
					break;
				if (job_add(ra, st->build, &p, &x->item)) {
					x->kind = RA_JOB;
					x->job = st->build;
					x->job->refs++;
					break;
				}
				if (st->build->nitem == 0)
					break; /* does not fit an empty job: read it through the pool */
				job_queue(ra, st->build);
			}
			if (x->kind != RA_JOB && st->plan_end > need)
				break; /* no job free: plan the rest later */
		}
		st->n++;
		st->plan_end = x->e.off + x->e.len;
	}
	if (st->build && st->build->nitem)
		job_queue(ra, st->build); /* the helpers start on it now */
	/* An error past what the reader needs now is its problem when it gets there. */
	return st->plan_end > need || need >= o->size ? 0 : (r < 0 ? r : -EIO);
}

/* The stream that serves a read of [off, off + len) of object id, or NULL to read
 * without one.
 *
 * Which stream: an object may have up to RA_PER_OBJ (several readers of one file:
 * two restores of one generation, NFS clients), each keyed by where its reader
 * reads next. A read continues the stream it follows exactly (off == next), else
 * the one whose window holds off (READs a little out of order, a reader re-reading
 * what it just read); a read that continues none is a new reader, or one that
 * jumped: it gets a stream of its own, taking over its object's least recently read
 * one when the object has RA_PER_OBJ already or that one went stale (not read for
 * RA_STALE reads: most likely the same reader, before its jump). Before, an object
 * had one stream and every read that did not continue it reset it, so two readers
 * of one file threw each other's window away at every read. */
static struct ra_stream *stream_for(store *s, uint64_t id, const obj_rec *o, uint64_t off,
                                    size_t len)
{
	struct ra *ra = s->ra;
	struct ra_stream *st = NULL, *victim = NULL, *own_lru = NULL;
	int nown = 0, seq = 0, in_window = 0;
	if (ra)
		for (int i = 0; i < RA_STREAMS; i++) {
			struct ra_stream *c = &ra->st[i];
			if (c->used && c->id == id && !same_map(c, id, o))
				stream_drop(ra, c); /* planned from an older map */
			if (c->used && c->id == id) {
				int cs = off == c->next;
				int cw = c->active && c->n && off >= ext_at(c, 0)->e.off &&
				         off < c->plan_end;
				if (cs && !seq) {
					st = c;
					seq = 1;
					in_window = cw;
				} else if (cw && !seq && !in_window) {
					st = c;
					in_window = 1;
				}
				nown++;
				if (!own_lru || c->stamp < own_lru->stamp)
					own_lru = c;
			}
			/* The slot a new stream takes: a free one, else the least recently
			 * used probe, else the least recently used stream. */
			if (!victim || (victim->used && (!c->used || (!c->active && victim->active) ||
			                                 (c->active == victim->active &&
			                                  c->stamp < victim->stamp))))
				victim = c;
		}
	if (!st && own_lru &&
	    (nown >= RA_PER_OBJ || own_lru->stamp + RA_STALE < ra->clock)) {
		/* The reader jumped (or the object has readers enough): the window of its
		 * least recently read stream goes, the slot stays the object's. */
		st = own_lru;
		if (st->active)
			stream_reset(ra, st);
	}
	int start = seq || in_window || (off == 0 && len < o->size) || len >= RA_LARGE;
	if (!start && !st && off + len >= o->size)
		return NULL; /* read to the end (a whole small object): nothing follows */
	if (!ra && !(ra = ra_get(s)))
		return NULL;
	if (!st) {
		if (!victim)
			victim = &ra->st[0];
		if (victim->used)
			stream_drop(ra, victim);
		st = victim;
		memset(st, 0, sizeof(*st));
		st->used = 1;
		st->id = id;
		st->gen = o->gen;
		st->size = o->size;
		st->depth = o->depth;
		st->root = o->root;
	}
	st->stamp = ++ra->clock;
	if (!start) {
		st->next = off + len; /* a probe: read-ahead starts if the next read is here */
		return NULL;
	}
	if (!st->active) {
		if (!st->ext && !(st->ext = malloc(sizeof(*st->ext) * RA_EXTS)))
			return NULL;
		st->active = 1;
		st->head = st->n = 0;
		st->plan_end = 0;
		st->window = BKS_MAX((uint64_t)RA_WINDOW_MIN, (uint64_t)len);
		ra->streams++;
	} else if (seq) {
		st->window = BKS_MIN(st->window * 2, (uint64_t)RA_WINDOW_MAX);
	}
	if (st->n == 0)
		st->plan_end = off; /* planning starts at the extent holding off */
	return st;
}

/* Index of the planned extent holding pos, or -1. */
static int ext_find(const struct ra_stream *st, uint64_t pos)
{
	uint32_t lo = 0, hi = st->n;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		const struct ra_ext *x = ext_at(st, mid);
		if (pos < x->e.off)
			hi = mid;
		else if (pos >= x->e.off + x->e.len)
			lo = mid + 1;
		else
			return (int)mid;
	}
	return -1;
}

/* store_read_iov's pieces. */
struct iovctx {
	store_iov *iov;
	int max, n;
	store_pins *pins;
};

/* Would iov_add(v, p, n) find room? */
static int iov_room(const struct iovctx *v, const uint8_t *p)
{
	const store_iov *last = v->n ? &v->iov[v->n - 1] : NULL;
	return v->n < v->max || (last && (const uint8_t *)last->p + last->len == p);
}

/* Add a piece (merged with the last when they touch); 0 when there is no room. */
static int iov_add(struct iovctx *v, const uint8_t *p, size_t n)
{
	store_iov *last = v->n ? &v->iov[v->n - 1] : NULL;
	if (last && (const uint8_t *)last->p + last->len == p) {
		last->len += n;
		return 1;
	}
	if (v->n == v->max)
		return 0;
	v->iov[v->n++] = (store_iov){.p = p, .len = n};
	return 1;
}

/* Would iov_pin(v, j, ...) find room? */
static int pin_room(const struct iovctx *v, const struct ra_job *j)
{
	for (int i = 0; i < v->pins->n; i++)
		if (v->pins->job[i] == j)
			return 1;
	return v->pins->n < STORE_PINS;
}

/* Pin job j for a piece of its item. The items of a job a read uses are
 * consecutive: store_read_wait checks that range [lo, hi], when the job was not
 * done at its first pin (a done job's items were checked here: the bad ones went to
 * the pool, not into pieces; lo > hi says so). A job that got done between two of
 * its items may put one of those in the range: one needless -EAGAIN, and the read
 * again finds the job done. Needs pin_room. */
static void iov_pin(struct iovctx *v, struct ra_job *j, uint32_t item, int done)
{
	store_pins *pn = v->pins;
	for (int i = 0; i < pn->n; i++)
		if (pn->job[i] == j) {
			if (pn->lo[i] <= pn->hi[i]) {
				pn->lo[i] = BKS_MIN(pn->lo[i], item);
				pn->hi[i] = BKS_MAX(pn->hi[i], item);
			}
			return;
		}
	pn->job[pn->n] = j;
	pn->lo[pn->n] = done ? 1 : item;
	pn->hi[pn->n] = done ? 0 : item;
	pn->n++;
	j->pins++;
}

/* store_read_wait's zstd context: one of the pool, or a new one. */
static ZSTD_DCtx *dctx_take(struct ra *ra)
{
	ZSTD_DCtx *d = NULL;
	pthread_mutex_lock(&ra->mu);
	if (ra->ndpool)
		d = ra->dpool[--ra->ndpool];
	pthread_mutex_unlock(&ra->mu);
	return d ? d : ZSTD_createDCtx();
}

static void dctx_give(struct ra *ra, ZSTD_DCtx *d)
{
	if (!d)
		return;
	pthread_mutex_lock(&ra->mu);
	if (ra->ndpool < RA_DPOOL) {
		ra->dpool[ra->ndpool++] = d;
		d = NULL;
	}
	pthread_mutex_unlock(&ra->mu);
	ZSTD_freeDCtx(d);
}

/* Outside the daemon's lock (see store.h): the jobs pinned are left alone by every
 * store call while pinned (job_release only marks them orphans), their state and
 * the queue are under ra->mu, and running a job touches only that job, the array
 * and the zstd context, as a helper does. While a pinned job is not done, this
 * thread runs it (queued) or the next queued job (a helper has it): the reader
 * decompresses beside the helpers instead of waiting, and no longer under the lock
 * the other connections need. */
int store_read_wait(store *s, const store_pins *pins)
{
	struct ra *ra = s->ra;
	ZSTD_DCtx *d = NULL;
	int again = 0;
	if (!pins->n)
		return 0;
	pthread_mutex_lock(&ra->mu);
	for (int i = 0; i < pins->n; i++) {
		struct ra_job *j = pins->job[i];
		while (j->state != RA_J_DONE) {
			struct ra_job *t = j->state == RA_J_QUEUED ? j : ra->qhead;
			if (!t) {
				pthread_cond_wait(&ra->done, &ra->mu);
				continue;
			}
			if (!d) {
				pthread_mutex_unlock(&ra->mu);
				d = dctx_take(ra);
				pthread_mutex_lock(&ra->mu);
				if (!d) { /* no memory: the helpers do it */
					pthread_cond_wait(&ra->done, &ra->mu);
					continue;
				}
				continue; /* (the queue may have changed meanwhile) */
			}
			queue_remove(ra, t);
			t->state = RA_J_RUNNING;
			pthread_mutex_unlock(&ra->mu);
			job_run(ra->a, t, d);
			pthread_mutex_lock(&ra->mu);
			t->state = RA_J_DONE;
			pthread_cond_broadcast(&ra->done);
		}
		for (uint32_t k = pins->lo[i]; k <= pins->hi[i]; k++) /* (none if lo > hi) */
			again |= !j->item[k].ok;
	}
	pthread_mutex_unlock(&ra->mu);
	dctx_give(ra, d);
	return again ? -EAGAIN : 0;
}

void store_read_unpin(store *s, store_pins *pins)
{
	for (int i = 0; i < pins->n; i++) {
		struct ra_job *j = pins->job[i];
		if (--j->pins == 0 && j->orphan) {
			j->orphan = 0;
			job_release(s->ra, j);
		}
	}
	pins->n = 0;
}

/* Read [off, off + len) through stream st into dst; with v, bytes in a job's
 * buffers are described in v instead (pinned), the rest go to dst, and the read
 * stops early (at *got) when v has no room left. */
static int read_stream(store *s, struct ra_stream *st, const obj_rec *o, uint64_t off,
                       uint8_t *dst, size_t len, size_t *got, struct iovctx *v)
{
	struct ra *ra = s->ra;
	int r;
	while (*got < len) {
		uint64_t pos = off + *got;
		/* Extents well behind the reader go (their jobs with them); all that are
		 * behind it when the ring is full and holds nothing ahead. */
		while (st->n && ext_at(st, 0)->e.off + ext_at(st, 0)->e.len + RA_BEHIND <= pos)
			ext_retire_head(ra, st);
		while (st->n == RA_EXTS && st->plan_end <= pos)
			ext_retire_head(ra, st);
		/* Keep the window full: plan when less than half of it is left. */
		if (st->plan_end <= pos || st->plan_end - pos < st->window / 2)
			if ((r = stream_plan(s, ra, st, o, pos, pos)) < 0)
				return r;
		int i = ext_find(st, pos);
		if (i < 0) {
			/* Planned from an offset after pos (cannot happen: the stream is reset
			 * when the reader goes back past its window). Start over here. */
			stream_reset(ra, st);
			st->active = 1;
			st->plan_end = pos;
			continue;
		}
		struct ra_ext *x = ext_at(st, (uint32_t)i);
		uint64_t in = pos - x->e.off;
		size_t n = (size_t)BKS_MIN((uint64_t)(len - *got), x->e.len - in);
		if (x->kind == RA_JOB) {
			struct ra_job *j = x->job;
			if (j == st->build)
				job_queue(ra, j); /* (the planner's; only this thread changes it) */
			/* A copying reader waits for the job here; a zero-copy one describes
			 * where its bytes will be and waits outside the lock
			 * (store_read_wait), unless the job is done and found them bad. */
			if (!v)
				job_wait(ra, j);
			pthread_mutex_lock(&ra->mu);
			int done = j->state == RA_J_DONE;
			pthread_mutex_unlock(&ra->mu);
			struct ra_item *it = &j->item[x->item];
			if (!done || it->ok) {
				const uint8_t *src = it->p.codec == SEG_RAW ? j->stage + it->soff
				                                            : j->out + it->doff;
				if (!v) {
					memcpy(dst + *got, src + in, n);
				} else {
					if (!pin_room(v, j) || !iov_room(v, src + in))
						break;
					iov_pin(v, j, x->item, done);
					iov_add(v, src + in, n);
				}
				ra->bytes_ahead += n;
			} else {
				/* Unreadable from the array directly, or moved by the collector
				 * and its row reused: the pool reads it (reconstructs, repairs)
				 * or follows the index. */
				if (v && !iov_add(v, dst + *got, n))
					break;
				ra->fallbacks++;
				if ((r = read_ext_sync(s, &x->e, in, dst + *got, n)) < 0)
					return r;
			}
		} else {
			if (v && !iov_add(v, dst + *got, n))
				break;
			if ((r = read_ext_sync(s, &x->e, in, dst + *got, n)) < 0)
				return r;
			if (x->kind == RA_SYNC)
				ra->bytes_sync += n;
		}
		*got += n;
	}
	st->next = off + *got;
	return 0;
}

static int read_any(store *s, uint64_t id, uint64_t off, uint8_t *dst, size_t len,
                    size_t *got, struct iovctx *v)
{
	obj_rec o;
	int r = store_obj_get(s, id, &o);
	*got = 0;
	if (r < 0)
		return r;
	if (off >= o.size)
		return 0;
	len = (size_t)BKS_MIN((uint64_t)len, o.size - off);
	struct ra_stream *st = stream_for(s, id, &o, off, len);
	if (st) {
		r = read_stream(s, st, &o, off, dst, len, got, v);
		if (r < 0) {
			stream_reset(s->ra, st);
			*got = 0;
		}
		return r;
	}
	if (v && !iov_add(v, dst, len))
		return 0;
	while (*got < len) {
		uint64_t pos = off + *got;
		map_ext e;
		if ((r = map_find(&s->mr, s->pl, id, &o, pos, &e)) < 0)
			return r == -ENOENT ? -EIO : r;
		uint64_t in = pos - e.off;
		size_t n = (size_t)BKS_MIN((uint64_t)(len - *got), e.len - in);
		if ((r = read_ext_sync(s, &e, in, dst + *got, n)) < 0)
			return r;
		*got += n;
	}
	return 0;
}

int store_read(store *s, uint64_t id, uint64_t off, void *buf, size_t len, size_t *got)
{
	return read_any(s, id, off, buf, len, got, NULL);
}

int store_read_iov(store *s, uint64_t id, uint64_t off, size_t len, uint8_t *scratch,
                   store_iov *iov, int max, int *niov, size_t *got, store_pins *pins)
{
	struct iovctx v = {.iov = iov, .max = max, .pins = pins};
	pins->n = 0;
	int r = read_any(s, id, off, scratch, len, got, &v);
	if (r < 0) {
		store_read_unpin(s, pins);
		v.n = 0;
	}
	*niov = v.n;
	return r;
}
