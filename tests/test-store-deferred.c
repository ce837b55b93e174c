/* test-store-deferred: deferred compression (dedup/store_defer.c).
 * Objects are put with their chunks stored raw "for later" (SEG_RAW_DEFERRED, what
 * bkstord does under pressure with store.zstd_level_busy = 0): the rows hold them
 * raw and flagged. A "crash" in the middle of the background pass (the store dropped
 * without a commit after a few steps) loses nothing: every object reads back
 * byte-identical after the reopen and the pass resumes. The pass then runs to the
 * end: no row is flagged any more, the stored bytes are within 3% of compressing
 * every chunk inline at the same level, the old rows were given back, verify is
 * clean, rows reused after the commit leave the old pointers stale and reads still
 * find every chunk (the index), and incompressible chunks are tried once only. A
 * small deferred object made durable by a sync (its items in the intent-log record)
 * keeps its flags through the replay after a crash, and the pass compresses it. */
#include <config.h>

#include "tests/testutil.h"

#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "dedup/fp.h"
#include "dedup/pool.h"
#include "dedup/store.h"
#include "dedup/store_int.h"

#define N 6
#define NOBJ 4          /* 3 compressible, 1 random */
#define OBJ_BYTES (12u << 20)

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* Text-like bytes (compress about 2-3x) or random bytes (not at all). */
static void fill(uint8_t *b, size_t len, int random)
{
	static const char *words[] = {"backup ", "segment ", "the ", "chunk ", "row ", "of ",
		"index ", "zstd ", "and ", "store ", "array ", "commit ", "\n", "42 ", "data "};
	size_t i = 0;
	while (i < len) {
		if (random) {
			uint64_t x = next();
			size_t n = BKS_MIN(len - i, sizeof(x));
			memcpy(b + i, &x, n);
			i += n;
			continue;
		}
		uint64_t x = next();
		const char *w = words[x % BKS_ARRAY_SIZE(words)];
		size_t n = BKS_MIN(strlen(w), len - i);
		memcpy(b + i, w, n);
		i += n;
		if (x >> 60 == 0 && i < len)
			b[i++] = (uint8_t)(x >> 32); /* some noise */
	}
}

/* Chunks of 16-48 KiB (the cut points do not matter here). */
static int put_deferred(store *s, fp_ctx *fc, const uint8_t *d, size_t len, uint64_t *id,
                        uint64_t *z1, uint64_t *z3)
{
	store_writer *w;
	int r = store_put_begin(s, &w);
	if (r < 0)
		return r;
	size_t off = 0;
	uint8_t *zb = malloc(ZSTD_compressBound(64 << 10));
	while (off < len && r >= 0) {
		uint32_t want = (16u << 10) + (uint32_t)(next() % (32u << 10));
		uint32_t n = (uint32_t)BKS_MIN(len - off, (size_t)want);
		uint8_t fp[FP_LEN];
		if ((r = fp_compute(fc, d + off, n, fp)) < 0)
			break;
		size_t c1 = ZSTD_compress(zb, ZSTD_compressBound(n), d + off, n, 1);
		size_t c3 = ZSTD_compress(zb, ZSTD_compressBound(n), d + off, n, 3);
		*z1 += c1 < n ? c1 : n;
		*z3 += c3 < n ? c3 : n;
		r = store_put_prepared(w, fp, n, d + off, n, SEG_RAW_DEFERRED);
		off += n;
	}
	free(zb);
	if (r < 0) {
		store_put_abort(w);
		return r;
	}
	return store_put_end(w, id);
}

/* Data rows whose header says deferred, and their items flagged. */
static void count_flagged(store *s, uint64_t *rows, uint64_t *items, uint64_t *data_rows)
{
	pool *pl = store_pool(s);
	uint32_t cap = pool_row_bytes(pl) / (SEG_ENTRY_SIZE + 1) + 1;
	seg_entry *en = calloc(cap, sizeof(*en));
	*rows = *items = *data_rows = 0;
	for (uint64_t r = 0; r < pool_rows(pl); r++) {
		if (pool_row_state(pl, r) != ROW_DATA)
			continue;
		seg_header h;
		int n = pool_read_seg_table(pl, r, &h, en, cap);
		if (n < 0)
			continue; /* the open segment: not written yet */
		(*data_rows)++;
		if (h.flags & SEG_HF_DEFERRED)
			(*rows)++;
		for (int i = 0; i < n; i++)
			if (en[i].flags & SEG_EF_DEFERRED) {
				(*items)++;
				CHECK(en[i].codec == SEG_RAW && en[i].slen == en[i].rlen,
				      "a deferred item is raw");
			}
	}
	free(en);
}

static int extra_objs;

static void check_all(store *s, uint64_t *ids, uint8_t **data, const char *when)
{
	for (int i = 0; i < NOBJ; i++)
		CHECK(tu_store_same(s, ids[i], data[i], OBJ_BYTES), "object %d reads back %s", i,
		      when);
	CHECK(tu_store_verify_clean(s, NOBJ + (uint64_t)extra_objs), "verify clean %s", when);
}

int main(void)
{
	const char *dir = tu_tmpdir("store-deferred");
	char *paths[N];
	store *s = NULL;
	bks_err e = {0};
	uint64_t ids[NOBJ], z1 = 0, z3 = 0, z1c = 0, z3c = 0, rawc = 0;
	uint8_t *data[NOBJ];
	fp_ctx *fc;
	REQUIRE(fp_ctx_new(&fc) == 0, "fp ctx");

	arr *a = tu_make_array(dir, N, 96, NULL, paths);
	REQUIRE(store_create(a, NULL, &s, &e) == 0, "store: %s", e.msg);
	for (int i = 0; i < NOBJ; i++) {
		int random = i == NOBJ - 1;
		REQUIRE((data[i] = malloc(OBJ_BYTES)), "alloc");
		fill(data[i], OBJ_BYTES, random);
		uint64_t a1 = z1, a3 = z3;
		REQUIRE(put_deferred(s, fc, data[i], OBJ_BYTES, &ids[i], &z1, &z3) == 0, "put %d", i);
		if (!random) {
			z1c += z1 - a1;
			z3c += z3 - a3;
			rawc += OBJ_BYTES;
		}
	}
	REQUIRE(store_commit(s, &e) == 0, "commit: %s", e.msg);
	store_stats st0;
	store_get_stats(s, &st0);
	uint64_t frows, fitems, drows0;
	count_flagged(s, &frows, &fitems, &drows0);
	printf("deferred put: %llu raw bytes stored as %llu; %llu data rows, %llu flagged, %llu "
	       "items flagged; inline would store %llu (zstd 1) / %llu (zstd 3)\n",
	       (unsigned long long)st0.unique_raw_bytes, (unsigned long long)st0.stored_bytes,
	       (unsigned long long)drows0, (unsigned long long)frows, (unsigned long long)fitems,
	       (unsigned long long)z1, (unsigned long long)z3);
	CHECK(st0.stored_bytes == st0.unique_raw_bytes, "everything stored raw");
	CHECK(frows == drows0 && frows > 0, "every data row flagged");
	CHECK(fitems == st0.unique_chunks, "every chunk flagged (%llu of %llu)",
	      (unsigned long long)fitems, (unsigned long long)st0.unique_chunks);
	store_defer_stats ds;
	store_defer_get_stats(s, &ds);
	CHECK(ds.pending && ds.bytes_left == NOBJ * (uint64_t)OBJ_BYTES, "bytes left %llu",
	      (unsigned long long)ds.bytes_left);
	check_all(s, ids, data, "before the pass");

	/* A few steps of the pass, then a crash: no commit. */
	int more = 1, steps = 0;
	while (more > 0 && steps < 10) {
		more = store_defer_step(s, 1u << 20);
		steps++;
	}
	store_defer_get_stats(s, &ds);
	printf("crash after %d steps: %llu segments moved, %llu chunks compressed\n", steps,
	       (unsigned long long)ds.segments_done, (unsigned long long)ds.chunks_compressed);
	CHECK(more == 1 && ds.segments_done > 0, "the pass was in the middle (%d, %llu moved)",
	      more, (unsigned long long)ds.segments_done);
	/* Reads in between, before the commit: the old rows still serve. */
	check_all(s, ids, data, "mid-pass");
	store_close(s);

	a = tu_import_array(paths, N, NULL);
	REQUIRE(a && store_open(a, NULL, &s, &e) == 0, "reopen: %s", e.msg);
	check_all(s, ids, data, "after the crash");
	uint64_t frows1, fitems1, drows1;
	count_flagged(s, &frows1, &fitems1, &drows1);
	CHECK(frows1 == frows && fitems1 == fitems, "the crash lost the moves: %llu rows flagged",
	      (unsigned long long)frows1);
	CHECK(store_defer_pending(s), "the pass resumes after an open");

	/* The pass to the end. */
	uint64_t t0 = bks_now_ns();
	REQUIRE(store_defer_run(s, &e) == 0, "pass: %s", e.msg);
	double secs = (double)(bks_now_ns() - t0) / 1e9;
	store_defer_get_stats(s, &ds);
	store_stats st;
	store_get_stats(s, &st);
	uint64_t frows2, fitems2, drows2;
	count_flagged(s, &frows2, &fitems2, &drows2);
	printf("pass: %.2f s, %llu cycles, %llu segments moved, %llu chunks compressed, %llu "
	       "incompressible, %llu copied, %llu dropped; stored %llu -> %llu (zstd 1 inline "
	       "%llu, zstd 3 inline %llu: %.3f x); data rows %llu -> %llu\n", secs,
	       (unsigned long long)ds.cycles, (unsigned long long)ds.segments_done,
	       (unsigned long long)ds.chunks_compressed,
	       (unsigned long long)ds.chunks_incompressible, (unsigned long long)ds.chunks_copied,
	       (unsigned long long)ds.chunks_dropped, (unsigned long long)st0.stored_bytes,
	       (unsigned long long)st.stored_bytes, (unsigned long long)z1, (unsigned long long)z3,
	       (double)st.stored_bytes / (double)z3, (unsigned long long)drows0,
	       (unsigned long long)drows2);
	CHECK(frows2 == 0 && fitems2 == 0, "nothing flagged after the pass (%llu rows, %llu items)",
	      (unsigned long long)frows2, (unsigned long long)fitems2);
	CHECK(!store_defer_pending(s), "the pass is done");
	CHECK(ds.chunks_compressed > 0 && ds.chunks_incompressible > 0,
	      "compressed and incompressible chunks");
	CHECK((double)st.stored_bytes <= 1.03 * (double)z3,
	      "stored %llu within 3%% of inline zstd 3 (%llu)", (unsigned long long)st.stored_bytes,
	      (unsigned long long)z3);
	CHECK(st.stored_bytes < st0.stored_bytes * 3 / 4, "stored bytes shrank");
	CHECK(drows2 < drows0, "rows given back (%llu -> %llu)", (unsigned long long)drows0,
	      (unsigned long long)drows2);
	CHECK(st.unique_chunks == st0.unique_chunks && st.unique_raw_bytes == st0.unique_raw_bytes,
	      "chunk counts unchanged");
	printf("compressible part: raw %llu, inline zstd 1 %llu (%.3f), zstd 3 %llu (%.3f)\n",
	       (unsigned long long)rawc, (unsigned long long)z1c, (double)rawc / (double)z1c,
	       (unsigned long long)z3c, (double)rawc / (double)z3c);
	check_all(s, ids, data, "after the pass");

	/* The freed rows are reused (old pointers go stale: reads ask the index). */
	uint64_t extra;
	uint8_t *x = malloc(OBJ_BYTES);
	fill(x, OBJ_BYTES, 0);
	REQUIRE(store_put(s, x, OBJ_BYTES, &extra) == 0, "put after the pass");
	extra_objs = 1;
	REQUIRE(store_commit(s, &e) == 0, "commit: %s", e.msg);
	for (int i = 0; i < NOBJ; i++)
		CHECK(tu_store_same(s, ids[i], data[i], OBJ_BYTES), "object %d after rows reused", i);
	CHECK(tu_store_same(s, extra, x, OBJ_BYTES), "the new object");
	store_close(s);

	/* Reopen: a cycle finds nothing to do; incompressible chunks are not tried again. */
	a = tu_import_array(paths, N, NULL);
	REQUIRE(a && store_open(a, NULL, &s, &e) == 0, "reopen 2: %s", e.msg);
	REQUIRE(store_defer_run(s, &e) == 0, "pass 2: %s", e.msg);
	store_defer_get_stats(s, &ds);
	CHECK(ds.cycles == 1 && ds.segments_done == 0 && ds.chunks_incompressible == 0,
	      "second pass: %llu cycles, %llu segments, %llu incompressible retried",
	      (unsigned long long)ds.cycles, (unsigned long long)ds.segments_done,
	      (unsigned long long)ds.chunks_incompressible);
	for (int i = 0; i < NOBJ; i++)
		CHECK(tu_store_same(s, ids[i], data[i], OBJ_BYTES), "object %d after reopen", i);
	CHECK(tu_store_same(s, extra, x, OBJ_BYTES), "the new object after reopen");

	/* Through the intent log: a small deferred object made durable by a sync (its
	 * items travel in the record: the open segment is not sealed), then a crash.
	 * The replay keeps the flags, and the pass compresses it. */
	uint64_t small, zz1 = 0, zz3 = 0, fr0, fi0, dr0;
	count_flagged(s, &fr0, &fi0, &dr0);
	size_t slen = 40u << 10; /* below LOG_INLINE_MAX: the items go in the record */
	REQUIRE(put_deferred(s, fc, x, slen, &small, &zz1, &zz3) == 0, "small put");
	REQUIRE(store_sync(s, small, &e) == 0, "sync: %s", e.msg);
	store_close(s);
	a = tu_import_array(paths, N, NULL);
	REQUIRE(a && store_open(a, NULL, &s, &e) == 0, "reopen 3: %s", e.msg);
	store_get_stats(s, &st);
	CHECK(st.log_replayed > 0, "the intent log was replayed (%llu records)",
	      (unsigned long long)st.log_replayed);
	CHECK(tu_store_same(s, small, x, slen), "the synced object after the crash");
	uint64_t fr1, fi1, dr1;
	count_flagged(s, &fr1, &fi1, &dr1);
	CHECK(fi1 > fi0 && fr1 > fr0, "its chunks are still flagged after the replay (%llu items)",
	      (unsigned long long)fi1);
	REQUIRE(store_defer_run(s, &e) == 0, "pass 3: %s", e.msg);
	count_flagged(s, &fr1, &fi1, &dr1);
	store_defer_get_stats(s, &ds);
	CHECK(fi1 == 0 && ds.chunks_compressed > 0, "the pass compressed them (%llu left)",
	      (unsigned long long)fi1);
	CHECK(tu_store_same(s, small, x, slen), "the synced object after the pass");
	store_close(s);
	for (int i = 0; i < NOBJ; i++)
		free(data[i]);
	free(x);
	fp_ctx_free(fc);
	return tu_finish();
}
