/* test-store-repl-deferred: what replication needs of deferred compression in the
 * store (dedup/store_repl.h, dedup/store_defer.c). A source store holds one object
 * whose chunks were stored raw "for later" (SEG_RAW_DEFERRED) and one compressed as
 * usual. store_extent_stored_ex says "deferred" for every chunk of the first (in the
 * open segment and in written ones, before and after a commit) and for none of the
 * second; after the source's pass, for none (its chunks read compressed). A twin
 * store takes the first object's chunks as checked raw bytes with SEG_RAW_DEFERRED
 * (store_put_checked, as daemon/repl_recv.c does for a CHUNK of codec 2): its pass
 * has them to do, compresses them, its stored bytes shrink, the object reads back
 * byte-identical and verify is clean, also after a reopen. */
#include <config.h>

#include "tests/testutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dedup/fp.h"
#include "dedup/pool.h"
#include "dedup/store.h"
#include "dedup/store_int.h"
#include "dedup/store_repl.h"

#define N 6
#define OBJ_BYTES (8u << 20)

static uint64_t rng = 0x2545f4914f6cdd1dull;
static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* Text-like bytes: compress about 2-3x. */
static void fill(uint8_t *b, size_t len)
{
	static const char *words[] = {"backup ", "segment ", "the ", "chunk ", "row ", "of ",
		"index ", "zstd ", "and ", "store ", "array ", "commit ", "\n", "42 ", "twin "};
	size_t i = 0;
	while (i < len) {
		uint64_t x = next();
		const char *w = words[x % BKS_ARRAY_SIZE(words)];
		size_t n = BKS_MIN(strlen(w), len - i);
		memcpy(b + i, w, n);
		i += n;
		if (x >> 60 == 0 && i < len)
			b[i++] = (uint8_t)(x >> 32);
	}
}

static int put_deferred(store *s, fp_ctx *fc, const uint8_t *d, size_t len, uint64_t *id)
{
	store_writer *w;
	int r = store_put_begin(s, &w);
	if (r < 0)
		return r;
	size_t off = 0;
	while (off < len && r >= 0) {
		uint32_t n = (uint32_t)BKS_MIN(len - off, (size_t)(16u << 10) + next() % (32u << 10));
		uint8_t fp[FP_LEN];
		if ((r = fp_compute(fc, d + off, n, fp)) < 0)
			break;
		r = store_put_prepared(w, fp, n, d + off, n, SEG_RAW_DEFERRED);
		off += n;
	}
	if (r < 0) {
		store_put_abort(w);
		return r;
	}
	return store_put_end(w, id);
}

struct exts {
	store_mapext v[4096];
	size_t n;
};

static int ext_cb(void *ctx, const store_mapext *x)
{
	struct exts *e = ctx;
	if (e->n == BKS_ARRAY_SIZE(e->v))
		return -ENOSPC;
	e->v[e->n++] = *x;
	return 0;
}

/* Of object id's chunks: how many read as deferred (*open: of those, in the open
 * segment), how many compressed; -1 on a read error. */
static int count_deferred(store *s, uint64_t id, struct exts *e, uint8_t *buf, size_t *open,
                          size_t *zstd)
{
	e->n = 0;
	if (store_extents(s, id, ext_cb, e) < 0)
		return -1;
	pool_oseg o;
	pool_oseg_info(store_pool(s), SEG_DATA, &o);
	int n = 0;
	*open = *zstd = 0;
	for (size_t i = 0; i < e->n; i++) {
		uint32_t slen;
		int codec, d = -1;
		if (store_extent_stored_ex(s, &e->v[i], buf, STORE_STORED_MAX, &slen, &codec, &d) < 0 ||
		    d < 0)
			return -1;
		n += d;
		if (d && e->v[i].where.seg_id == o.seg_id)
			(*open)++;
		if (codec == SEG_ZSTD)
			(*zstd)++;
		if (d && (codec != SEG_RAW || slen != e->v[i].len))
			return -1; /* a deferred chunk is raw */
	}
	return n;
}

int main(void)
{
	char dsrc[512], dtwin[512];
	char *psrc[N], *ptwin[N];
	store *s = NULL, *t = NULL;
	bks_err e = {0};
	fp_ctx *fc;
	REQUIRE(fp_ctx_new(&fc) == 0, "fp ctx");
	snprintf(dsrc, sizeof(dsrc), "%s", tu_tmpdir("store-repl-deferred-src"));
	snprintf(dtwin, sizeof(dtwin), "%s", tu_tmpdir("store-repl-deferred-twin"));
	/* One store open at a time: the test harness's disks share one I/O engine, which
	 * one pool's writer thread and another's reads must not use at once. */
	arr *a = tu_make_array(dsrc, N, 64, NULL, psrc);
	REQUIRE(a && store_create(a, NULL, &s, &e) == 0, "source store: %s", e.msg);

	uint8_t *d1 = malloc(OBJ_BYTES), *d2 = malloc(OBJ_BYTES), *buf = malloc(STORE_STORED_MAX);
	struct exts *x = calloc(1, sizeof(*x));
	REQUIRE(d1 && d2 && buf && x, "alloc");
	fill(d1, OBJ_BYTES);
	fill(d2, OBJ_BYTES);
	uint64_t id1, id2;
	REQUIRE(store_put(s, d2, OBJ_BYTES, &id2) == 0, "compressed put");
	REQUIRE(put_deferred(s, fc, d1, OBJ_BYTES, &id1) == 0, "deferred put");

	size_t open, zstd;
	int n = count_deferred(s, id1, x, buf, &open, &zstd);
	size_t nchunks = x->n;
	printf("deferred object: %zu chunks, %d read as deferred (%zu in the open segment)\n",
	       nchunks, n, open);
	CHECK(n == (int)nchunks && nchunks > 100, "every chunk deferred before a commit (%d of %zu)",
	      n, nchunks);
	CHECK(open > 0 && (size_t)n > open, "both kinds: %zu in the open segment, %zu written",
	      open, (size_t)n - open);
	n = count_deferred(s, id2, x, buf, &open, &zstd);
	CHECK(n == 0 && zstd == x->n, "the compressed object: none deferred (%d), all zstd (%zu of %zu)",
	      n, zstd, x->n);
	REQUIRE(store_commit(s, &e) == 0, "commit: %s", e.msg);
	n = count_deferred(s, id1, x, buf, &open, &zstd);
	CHECK(n == (int)nchunks && (size_t)n > open, "after the commit: %d of %zu deferred, %zu "
	      "of them in written segments", n, nchunks, (size_t)n - open);

	/* What a CHUNK of codec 2 carries: the stored (raw) bytes. */
	uint8_t *wire = malloc(OBJ_BYTES);
	REQUIRE(wire, "alloc");
	struct exts *sx = malloc(sizeof(*sx));
	REQUIRE(sx, "alloc");
	*sx = *x;
	size_t woff = 0;
	int bad = 0;
	for (size_t i = 0; i < x->n; i++) {
		uint32_t slen;
		int codec;
		if (store_extent_stored(s, &x->v[i], wire + woff, OBJ_BYTES - woff, &slen, &codec) < 0 ||
		    codec != SEG_RAW || slen != x->v[i].len)
			bad++;
		woff += x->v[i].len;
	}
	CHECK(bad == 0 && woff == OBJ_BYTES, "the source read every chunk raw (%d not)", bad);

	/* The source's pass: then nothing reads as deferred (the copies are zstd). */
	REQUIRE(store_defer_run(s, &e) == 0, "source pass: %s", e.msg);
	n = count_deferred(s, id1, x, buf, &open, &zstd);
	CHECK(n == 0 && zstd == nchunks, "after the source's pass: %d deferred, %zu of %zu zstd",
	      n, zstd, nchunks);
	CHECK(tu_store_same(s, id1, d1, OBJ_BYTES) && tu_store_same(s, id2, d2, OBJ_BYTES),
	      "the source's objects read back");
	CHECK(tu_store_verify_clean(s, 2), "the source verifies clean");
	store_close(s);

	/* The twin: the chunks as a CHUNK of codec 2 brings them. */
	arr *b = tu_make_array(dtwin, N, 64, NULL, ptwin);
	REQUIRE(b && store_create(b, NULL, &t, &e) == 0, "twin store: %s", e.msg);
	store_stored_ck *k;
	REQUIRE(store_stored_ck_new(&k) == 0, "ck");
	store_writer *w;
	REQUIRE(store_put_begin(t, &w) == 0, "twin put");
	woff = 0;
	for (size_t i = 0; i < sx->n; i++) {
		uint32_t len = (uint32_t)sx->v[i].len;
		if (store_stored_check(t, k, sx->v[i].fp, wire + woff, len, len, SEG_RAW) < 0 ||
		    store_put_checked(w, sx->v[i].fp, wire + woff, len, len, SEG_RAW_DEFERRED) < 0)
			bad++;
		woff += len;
	}
	uint64_t tid;
	CHECK(bad == 0, "the twin took every chunk (%d refused)", bad);
	REQUIRE(store_put_end(w, &tid) == 0, "twin put end");
	store_stored_ck_free(k);
	REQUIRE(store_commit(t, &e) == 0, "twin commit: %s", e.msg);
	store_stats t0;
	store_get_stats(t, &t0);
	store_defer_stats ds;
	store_defer_get_stats(t, &ds);
	CHECK(ds.pending && ds.bytes_left == OBJ_BYTES, "the twin's pass has %llu bytes to do",
	      (unsigned long long)ds.bytes_left);
	n = count_deferred(t, tid, x, buf, &open, &zstd);
	CHECK(n == (int)nchunks, "the twin stored them flagged (%d of %zu)", n, nchunks);
	REQUIRE(store_defer_run(t, &e) == 0, "twin pass: %s", e.msg);
	store_stats t1;
	store_get_stats(t, &t1);
	store_defer_get_stats(t, &ds);
	printf("twin: stored %llu -> %llu, %llu chunks compressed\n",
	       (unsigned long long)t0.stored_bytes, (unsigned long long)t1.stored_bytes,
	       (unsigned long long)ds.chunks_compressed);
	CHECK(!ds.pending && t1.stored_bytes < t0.stored_bytes / 2, "the twin's pass compressed "
	      "them: %llu -> %llu", (unsigned long long)t0.stored_bytes,
	      (unsigned long long)t1.stored_bytes);
	n = count_deferred(t, tid, x, buf, &open, &zstd);
	CHECK(n == 0 && zstd == nchunks, "after the twin's pass: %d deferred, %zu of %zu zstd", n,
	      zstd, nchunks);
	CHECK(tu_store_same(t, tid, d1, OBJ_BYTES), "the twin's copy reads back");
	CHECK(tu_store_verify_clean(t, 1), "the twin verifies clean");
	store_close(t);

	b = tu_import_array(ptwin, N, NULL);
	REQUIRE(b && store_open(b, NULL, &t, &e) == 0, "twin reopen: %s", e.msg);
	CHECK(tu_store_same(t, tid, d1, OBJ_BYTES), "the twin's copy after a reopen");
	REQUIRE(store_defer_run(t, &e) == 0, "twin pass after reopen: %s", e.msg);
	store_defer_get_stats(t, &ds);
	CHECK(ds.segments_done == 0, "nothing left for the twin's pass after a reopen");
	store_close(t);
	free(d1);
	free(d2);
	free(buf);
	free(x);
	free(sx);
	free(wire);
	fp_ctx_free(fc);
	return tu_finish();
}
