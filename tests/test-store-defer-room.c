/* test-store-defer-room: deferred compression on an array with no room to move.
 *
 * The pass (dedup/store_defer.c) moves a flagged segment only when the collector's
 * share of free rows can hold its copy (pool_space_room, POOL_SPACE_WORK). Here the
 * store's commit reserve is made huge through the pool's reserve callback (white
 * box: what a nearly full array looks like to the pass) with more than half the rows
 * holding deferred chunks, so every flagged segment is skipped. The old code then
 * started the next cycle at once (a skipped segment set "again"): every step read
 * every header again, cycle after cycle, under the caller's lock, until a commit
 * freed rows. Now a cycle that skipped a segment for lack of room ends with the pass
 * waiting for the next commit: later steps read nothing and start no cycle, the
 * stats say wait_room; after the commit (with room again) the pass runs to the end
 * and every object reads back. store_defer_run on the full array fails with ENOSPC
 * instead of looping. Also: bytes_left after a reopen is flagged an estimate until
 * the first whole cycle. */
#include <config.h>

#include "tests/testutil.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dedup/fp.h"
#include "dedup/pool.h"
#include "dedup/store.h"
#include "dedup/store_int.h"

#define N 6
#define NOBJ 6
#define OBJ_BYTES (12u << 20)

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
		"index ", "zstd ", "and ", "store ", "array ", "commit ", "\n", "42 ", "data "};
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
		uint32_t want = (16u << 10) + (uint32_t)(next() % (32u << 10));
		uint32_t n = (uint32_t)BKS_MIN(len - off, (size_t)want);
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

/* The pool's reserve callback while "full": a commit reserve bigger than the array
 * (the pool caps it at half the rows); otherwise a modest one. */
static int hook_full;
static uint64_t hook_reserve(void *ctx)
{
	(void)ctx;
	return hook_full ? 1ull << 40 : 4ull << 20;
}

int main(void)
{
	const char *dir = tu_tmpdir("store-defer-room");
	char *paths[N];
	store *s = NULL;
	bks_err e = {0};
	uint64_t ids[NOBJ];
	uint8_t *data[NOBJ];
	fp_ctx *fc;
	REQUIRE(fp_ctx_new(&fc) == 0, "fp ctx");

	/* 4 x 32 MiB of data rows; 72 MiB of deferred chunks: more than half. */
	arr *a = tu_make_array(dir, N, 32, NULL, paths);
	REQUIRE(store_create(a, NULL, &s, &e) == 0, "store: %s", e.msg);
	for (int i = 0; i < NOBJ; i++) {
		REQUIRE((data[i] = malloc(OBJ_BYTES)), "alloc");
		fill(data[i], OBJ_BYTES);
		REQUIRE(put_deferred(s, fc, data[i], OBJ_BYTES, &ids[i]) == 0, "put %d", i);
	}
	REQUIRE(store_commit(s, &e) == 0, "commit: %s", e.msg);

	pool *pl = store_pool(s);
	pool_set_reserve_fn(pl, hook_reserve, NULL);
	hook_full = 1;
	uint64_t room = pool_space_room(pl, POOL_SPACE_WORK);
	printf("rows %llu, room for the pass %llu bytes\n", (unsigned long long)pool_rows(pl),
	       (unsigned long long)room);
	REQUIRE(room < pool_row_bytes(pl), "the array looks full to the pass (room %llu)",
	        (unsigned long long)room);

	/* Step: the first cycle skips every flagged segment. */
	store_defer_stats ds;
	int r = 1, steps = 0;
	while (r > 0 && steps < 2000) {
		r = store_defer_step(s, 1u << 20);
		steps++;
	}
	store_defer_get_stats(s, &ds);
	printf("full: %d steps, %llu cycles, %llu segments skipped, %llu moved, r %d, "
	       "wait_room %d\n", steps, (unsigned long long)ds.cycles,
	       (unsigned long long)ds.segments_skipped, (unsigned long long)ds.segments_done, r,
	       ds.wait_room);
	CHECK(r == 0, "a cycle with no room ends the steps for now (old: 1, another cycle)");
	CHECK(ds.cycles == 1 && ds.segments_done == 0 && ds.segments_skipped > 0,
	      "one cycle, everything skipped (%llu cycles)", (unsigned long long)ds.cycles);
	CHECK(ds.wait_room && ds.pending, "waiting for a commit, work still pending");
	/* More steps (the daemon's ticks): nothing read, no cycle, until a commit. */
	uint64_t read0 = ds.bytes_read;
	for (int i = 0; i < 100; i++)
		CHECK_LOOP(store_defer_step(s, 1u << 20) == 0, "step %d waits", i);
	CHECK(tu_misses == 0, "every step while waiting returned 0");
	store_defer_get_stats(s, &ds);
	CHECK(ds.bytes_read == read0 && ds.cycles == 1,
	      "100 steps while waiting read %llu bytes, %llu cycles",
	      (unsigned long long)(ds.bytes_read - read0), (unsigned long long)ds.cycles);

	/* The tool's loop on a full array: an error, not a million commits. */
	r = store_defer_run(s, &e);
	CHECK(r == -ENOSPC, "store_defer_run on a full array: %d (%s)", r, e.msg);
	e.msg[0] = 0;

	/* Room again (rows freed elsewhere), then a commit: the pass runs to the end. */
	hook_full = 0;
	CHECK(store_defer_step(s, 1u << 20) == 0, "still waiting before the commit");
	REQUIRE(store_commit(s, &e) == 0, "commit: %s", e.msg);
	REQUIRE(store_defer_run(s, &e) == 0, "the pass: %s", e.msg);
	store_defer_get_stats(s, &ds);
	printf("after the commit: %llu cycles, %llu segments moved, %llu raw bytes now %llu\n",
	       (unsigned long long)ds.cycles, (unsigned long long)ds.segments_done,
	       (unsigned long long)ds.raw_done, (unsigned long long)ds.stored_after);
	CHECK(!ds.pending && !ds.wait_room && ds.segments_done > 0, "the pass finished");
	CHECK(ds.raw_done == NOBJ * (uint64_t)OBJ_BYTES, "every deferred byte handled (%llu)",
	      (unsigned long long)ds.raw_done);
	CHECK(ds.stored_after < ds.raw_done / 2, "compressed");
	for (int i = 0; i < NOBJ; i++)
		CHECK(tu_store_same(s, ids[i], data[i], OBJ_BYTES), "object %d reads back", i);
	CHECK(tu_store_verify_clean(s, NOBJ), "verify clean");

	/* bytes_left after a reopen: an estimate until the first cycle is through. Put
	 * one more deferred object, commit, reopen. */
	uint64_t id7;
	fill(data[0], OBJ_BYTES);
	REQUIRE(put_deferred(s, fc, data[0], OBJ_BYTES - 1, &id7) == 0, "put");
	REQUIRE(store_commit(s, &e) == 0, "commit: %s", e.msg);
	store_close(s);
	a = tu_import_array(paths, N, NULL);
	REQUIRE(a && store_open(a, NULL, &s, &e) == 0, "reopen: %s", e.msg);
	store_defer_get_stats(s, &ds);
	CHECK(ds.pending && ds.bytes_left_estimate && ds.bytes_left == 0,
	      "after the open: bytes_left %llu, an estimate (%d)",
	      (unsigned long long)ds.bytes_left, ds.bytes_left_estimate);
	REQUIRE(store_defer_run(s, &e) == 0, "the pass: %s", e.msg);
	store_defer_get_stats(s, &ds);
	CHECK(!ds.bytes_left_estimate && ds.bytes_left == 0 && ds.raw_done == OBJ_BYTES - 1,
	      "after the pass: exact, %llu left, %llu done (an earlier run's)",
	      (unsigned long long)ds.bytes_left, (unsigned long long)ds.raw_done);
	CHECK(tu_store_same(s, id7, data[0], OBJ_BYTES - 1), "the last object reads back");
	store_close(s);
	for (int i = 0; i < NOBJ; i++)
		free(data[i]);
	fp_ctx_free(fc);
	return tu_finish();
}
