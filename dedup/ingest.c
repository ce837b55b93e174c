/* dedup/ingest.c: see ingest.h.
 *
 * Work sharing by claiming: spans are numbered; `produced` says how many are
 * published, and each thread takes the next unclaimed indexes (fingerprints: up to
 * HASH_CLAIM published ones, hashed together by fp_compute_many) with an atomic
 * compare-and-swap or fetch-add on `next`. Each helper sleeps on a condition
 * variable between rounds and spins (with sched_yield) only while the caller is
 * still publishing spans. */
#include <config.h>

#include "dedup/ingest.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

#include "common/bks.h"

enum { JOB_NONE = 0, JOB_HASH = 1, JOB_COMPRESS = 2, JOB_EXIT = 3, JOB_FN = 4 };

struct ingest {
	ing_span span[ING_MAX];
	int level;
	uint8_t *zbuf;               /* the round's compressed bytes (grown as needed) */
	size_t zbuf_cap;
	size_t zoff[ING_MAX];        /* where span i's compressed bytes go in zbuf */
	int nthreads;                /* the caller + helpers */
	fp_ctx *fpc[ING_MAX_THREADS]; /* [0] the caller, [t] helper t */
	ZSTD_CCtx *cctx[ING_MAX_THREADS];

	/* the round (atomics) */
	int produced;                /* spans published */
	int next;                    /* next span to claim */
	int adding;                  /* the caller may still publish */
	int err;

	/* the helper */
	pthread_t th[ING_MAX_THREADS];
	struct hctx {
		struct ingest *g;
		int t;
	} hc[ING_MAX_THREADS];
	int started;                 /* helpers running */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int job, job_seq, done_count;
	/* JOB_FN */
	void (*fn)(void *ctx, int t, int i);
	void *fn_ctx;
	int fn_n;
};

static int load(const int *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }

static void set_err(ingest *g, int r)
{
	int zero = 0;
	if (r < 0)
		__atomic_compare_exchange_n(&g->err, &zero, r, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}

/* Spans one claim takes at most: pairs for the two-lane SHA-NI path (fp_compute_many),
 * and a stream of them so a long chunk pairs with the next one instead of finishing
 * alone; small enough that the threads still share the end of a round evenly. */
#define HASH_CLAIM 8

static void hash_some(ingest *g, int t, int i, int n)
{
	const uint8_t *p[HASH_CLAIM];
	size_t len[HASH_CLAIM];
	uint8_t fp[HASH_CLAIM][FP_LEN];
	for (int k = 0; k < n; k++) {
		p[k] = g->span[i + k].p;
		len[k] = g->span[i + k].len;
	}
	int r = fp_compute_many(g->fpc[t], n, p, len, fp);
	for (int k = 0; k < n && r == 0; k++)
		memcpy(g->span[i + k].fp, fp[k], FP_LEN);
	set_err(g, r);
}

static void compress_one(ingest *g, int t, int i)
{
	ing_span *sp = &g->span[i];
	if (sp->hit)
		return;
	sp->z = g->zbuf + g->zoff[i];
	sp->zlen = 0;
	if (g->level > 0 && sp->len > 64) {
		size_t n = ZSTD_compressCCtx(g->cctx[t], sp->z, ZSTD_compressBound(sp->len), sp->p,
		                             sp->len, g->level);
		if (!ZSTD_isError(n) && n < sp->len)
			sp->zlen = (uint32_t)n;
	}
}

/* Claim and hash spans (up to HASH_CLAIM of those published at a time) until the
 * caller stops publishing and all are claimed. */
static void hash_loop(ingest *g, int t)
{
	for (;;) {
		int i = __atomic_load_n(&g->next, __ATOMIC_ACQUIRE);
		int avail = load(&g->produced) - i;
		if (avail <= 0) {
			if (!load(&g->adding) && i >= load(&g->produced))
				return;
			sched_yield();
			continue;
		}
		int n = BKS_MIN(avail, HASH_CLAIM);
		if (__atomic_compare_exchange_n(&g->next, &i, i + n, 0, __ATOMIC_ACQ_REL,
		                                __ATOMIC_ACQUIRE))
			hash_some(g, t, i, n);
	}
}

static void compress_loop(ingest *g, int t)
{
	int n = load(&g->produced), i;
	while ((i = __atomic_fetch_add(&g->next, 1, __ATOMIC_ACQ_REL)) < n)
		compress_one(g, t, i);
}

static void fn_loop(ingest *g, int t)
{
	int i;
	while ((i = __atomic_fetch_add(&g->next, 1, __ATOMIC_ACQ_REL)) < g->fn_n)
		g->fn(g->fn_ctx, t, i);
}

static void *helper_main(void *arg)
{
	struct hctx *hc = arg;
	ingest *g = hc->g;
	int t = hc->t, seen = 0;
	pthread_mutex_lock(&g->mu);
	for (;;) {
		while (g->job_seq == seen)
			pthread_cond_wait(&g->cv, &g->mu);
		seen = g->job_seq;
		int job = g->job;
		pthread_mutex_unlock(&g->mu);
		if (job == JOB_EXIT)
			return NULL;
		if (job == JOB_HASH)
			hash_loop(g, t);
		else if (job == JOB_COMPRESS)
			compress_loop(g, t);
		else if (job == JOB_FN)
			fn_loop(g, t);
		pthread_mutex_lock(&g->mu);
		g->done_count++;
		pthread_cond_broadcast(&g->cv);
	}
}

static void post(ingest *g, int job)
{
	pthread_mutex_lock(&g->mu);
	g->job = job;
	g->job_seq++;
	g->done_count = 0;
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->mu);
}

static void wait_helper(ingest *g)
{
	pthread_mutex_lock(&g->mu);
	while (g->done_count < g->started)
		pthread_cond_wait(&g->cv, &g->mu);
	pthread_mutex_unlock(&g->mu);
}

int ingest_new(int level, uint32_t max_chunk, int threads, ingest **out)
{
	ingest *g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	if (threads <= 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		threads = n > 0 ? (int)n : 2;
	}
	g->nthreads = BKS_MAX(threads == 1 ? 1 : 2, BKS_MIN(threads, ING_MAX_THREADS));
	g->level = level;
	(void)max_chunk; /* compression buffers are sized per round (ingest_compress) */
	int r = 0;
	for (int i = 0; i < g->nthreads && r == 0; i++) {
		r = fp_ctx_new(&g->fpc[i]);
		if (r == 0 && level >= 0 && !(g->cctx[i] = ZSTD_createCCtx()))
			r = -ENOMEM;
	}
	pthread_mutex_init(&g->mu, NULL);
	pthread_cond_init(&g->cv, NULL);
	for (int t = 1; t < g->nthreads && r == 0; t++) {
		g->hc[t] = (struct hctx){g, t};
		if (pthread_create(&g->th[t], NULL, helper_main, &g->hc[t]) != 0)
			break;
		g->started++;
	}
	/* Without a helper thread the caller does all the work itself. */
	if (r < 0) {
		ingest_free(g);
		return r;
	}
	*out = g;
	return 0;
}

void ingest_free(ingest *g)
{
	if (!g)
		return;
	if (g->started) {
		post(g, JOB_EXIT);
		for (int t = 1; t <= g->started; t++)
			pthread_join(g->th[t], NULL);
	}
	pthread_mutex_destroy(&g->mu);
	pthread_cond_destroy(&g->cv);
	for (int i = 0; i < ING_MAX_THREADS; i++) {
		fp_ctx_free(g->fpc[i]);
		ZSTD_freeCCtx(g->cctx[i]);
	}
	free(g->zbuf);
	free(g);
}

void ingest_begin(ingest *g)
{
	__atomic_store_n(&g->produced, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&g->next, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&g->err, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&g->adding, 1, __ATOMIC_RELEASE);
	if (g->started)
		post(g, JOB_HASH);
}

int ingest_add(ingest *g, const uint8_t *p, uint32_t len)
{
	int i = g->produced;
	ing_span *sp = &g->span[i];
	sp->p = p;
	sp->len = len;
	sp->hit = 0;
	sp->z = NULL;
	sp->zlen = 0;
	__atomic_store_n(&g->produced, i + 1, __ATOMIC_RELEASE);
	return i;
}

int ingest_full(const ingest *g) { return g->produced >= ING_MAX; }
int ingest_threads(const ingest *g) { return 1 + g->started; }

void ingest_set_level(ingest *g, int level)
{
	BKS_PANIC_IF(g->level < 0 || level < 0, "ingest_set_level on a hashing-only engine");
	g->level = level;
}

int ingest_level(const ingest *g) { return g->level; }
int ingest_count(const ingest *g) { return g->produced; }
ing_span *ingest_span(ingest *g, int i) { return &g->span[i]; }

int ingest_hash_wait(ingest *g)
{
	__atomic_store_n(&g->adding, 0, __ATOMIC_RELEASE);
	hash_loop(g, 0);
	if (g->started)
		wait_helper(g);
	return load(&g->err);
}

int ingest_compress(ingest *g)
{
	BKS_PANIC_IF(g->level < 0, "ingest_compress on a hashing-only engine");
	int misses = 0;
	size_t need = 0;
	for (int i = 0; i < g->produced; i++) {
		if (g->span[i].hit)
			continue;
		misses++;
		g->zoff[i] = need;
		need += ZSTD_compressBound(g->span[i].len);
	}
	if (!misses)
		return 0;
	/* Room for the misses only: a round of duplicates needs none, and a round's
	 * spans are at most one frame or ING_MAX chunks of the caller's bytes. */
	if (need > g->zbuf_cap) {
		uint8_t *z = realloc(g->zbuf, need);
		if (!z)
			return -ENOMEM;
		g->zbuf = z;
		g->zbuf_cap = need;
	}
	__atomic_store_n(&g->next, 0, __ATOMIC_RELEASE);
	/* A single small miss is not worth waking the helper for. */
	int helper = g->started && misses > 1;
	if (helper)
		post(g, JOB_COMPRESS);
	compress_loop(g, 0);
	if (helper)
		wait_helper(g);
	return 0;
}

void ingest_parallel(ingest *g, int n, void (*fn)(void *ctx, int t, int i), void *ctx)
{
	g->fn = fn;
	g->fn_ctx = ctx;
	g->fn_n = n;
	__atomic_store_n(&g->next, 0, __ATOMIC_RELEASE);
	int helper = g->started && n > 1;
	if (helper)
		post(g, JOB_FN);
	fn_loop(g, 0);
	if (helper)
		wait_helper(g);
}
