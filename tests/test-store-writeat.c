/* test-store-writeat: changing objects in place (store_write_at, store_truncate).
 *  1. random writes, overwrites, appends, writes past the end (holes), truncates
 *     down and up, on several objects, checked against an in-memory model after
 *     every batch (whole reads, short reads, stat sizes, logical bytes = the sum of
 *     the objects' mapped bytes, holes excluded), with
 *     store_sync + crash (close without commit) + reopen, commits, collections
 *     (store_gc_run, and step by step with writes in between that share chunks the
 *     collector may be sweeping), store_verify clean;
 *  2. the map reader's cached leaf is not served after a write;
 *  3. holes: 0 bytes grown to 1 TiB stores no data and one map block; a write in
 *     the middle of it; verify;
 *  4. appends: an object written by 1 MiB appends shares its chunks with the same
 *     bytes written by store_put (figure printed, >= 90 % asserted), both ways;
 *  5. a 4 KiB overwrite in a 256 MiB object of ~600-byte chunks (map depth 3)
 *     writes a few map blocks (pool stats), not a share of the map;
 *  6. a full store: appends are refused with -ENOSPC and leave the object as it
 *     was; a grow is refused, a shrink is not; after the collector, writes go on;
 *     A quarter of the ops are batches of up to 48 pieces (4 KiB blocks and short
 *     runs, often in one chunk, touching, or over holes): store_write_batch, or
 *     plan / prepare (on the test's engine) / apply, sometimes with a write to the
 *     object between plan and apply (-EAGAIN, planned again), or a collector step
 *     between plan and prepare (-ESTALE or -EAGAIN when it moved what the plan used).
 *  7. logical bytes, exactly: after a put, a truncate that grows (a 10 GiB LUN
 *     holds nothing), sparse writes, overwrites of holes, a shrink, punches, a
 *     delete, a replace, a truncate to 0, two syncs then a crash (replay), a
 *     collection: each object's store_mapped_bytes is the figure worked out by
 *     hand, and the store's logical bytes are their sum, at every step.
 * --seed N [--batches B] [--tiny] repeats a run of part 1 (printed when it fails);
 * --no-model runs parts 2-7 only. */
#include <config.h>

#include "tests/testutil.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dedup/ingest.h"
#include "dedup/store.h"
#include "dedup/store_int.h" /* store_pool: rows and transaction groups counted */

#define N 6
#define DISK_MB 64
#define NOBJ 4
#define MAXSZ (6u << 20)

static uint64_t rng;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static uint64_t below(uint64_t n)
{
	return n ? rnd() % n : 0;
}

/* Content: one of a few seeds (so writes share chunks with each other and with
 * garbage), at a position inside its stream, or zeros. */
static void content(uint8_t *b, size_t len)
{
	uint64_t k = below(12);
	if (k == 0) {
		memset(b, 0, len);
		return;
	}
	tu_fill(k, below(8), 0, b, len);
}

struct model {
	uint64_t id;
	uint8_t *m;
	uint64_t size;
};

static struct model mo[NOBJ], snap[NOBJ];
static uint8_t *wbuf, *rbuf;

static void model_set_size(struct model *x, uint64_t size)
{
	if (size > x->size)
		memset(x->m + x->size, 0, size - x->size);
	x->size = size;
}

static void copy_models(struct model *dst, const struct model *src)
{
	for (int i = 0; i < NOBJ; i++) {
		dst[i].id = src[i].id;
		dst[i].size = src[i].size;
		memcpy(dst[i].m, src[i].m, src[i].size);
	}
}

static store_params sp;

static store *reopen(char **paths)
{
	bks_err e = {0};
	arr *a = tu_import_array(paths, N, NULL);
	store *s = NULL;
	int r = store_open(a, &sp, &s, &e);
	if (r < 0) {
		fprintf(stderr, "open: %s\n", bks_errmsg(&e, r));
		arr_close(a);
		return NULL;
	}
	return s;
}

/* Every object equals its model: stat, a whole read, a few short reads. */
static int check_all(store *s, const char *when)
{
	int bad = 0;
	uint64_t sum = 0;
	for (int i = 0; i < NOBJ; i++) {
		struct model *x = &mo[i];
		store_obj_info in;
		size_t got = 0;
		int r = store_stat(s, x->id, &in);
		if (r < 0 || in.size != x->size) {
			fprintf(stderr, "%s: obj %d stat %d size %llu, model %llu\n", when, i, r,
			        (unsigned long long)in.size, (unsigned long long)x->size);
			bad++;
			continue;
		}
		uint64_t mapped = 0;
		r = store_mapped_bytes(s, x->id, &mapped);
		if (r < 0 || mapped > x->size) {
			fprintf(stderr, "%s: obj %d mapped %d: %llu of %llu\n", when, i, r,
			        (unsigned long long)mapped, (unsigned long long)x->size);
			bad++;
		}
		sum += mapped;
		r = store_read(s, x->id, 0, rbuf, MAXSZ + 4096, &got);
		if (r < 0 || got != x->size || memcmp(rbuf, x->m, got)) {
			size_t d = 0;
			while (d < got && d < x->size && rbuf[d] == x->m[d])
				d++;
			fprintf(stderr, "%s: obj %d read %d got %zu of %llu, first diff %zu\n", when, i,
			        r, got, (unsigned long long)x->size, d);
			bad++;
			continue;
		}
		for (int k = 0; k < 4 && x->size; k++) {
			uint64_t off = below(x->size), len = 1 + below(70000);
			uint64_t want = BKS_MIN(len, x->size - off);
			r = store_read(s, x->id, off, rbuf, len, &got);
			if (r < 0 || got != want || memcmp(rbuf, x->m + off, got)) {
				fprintf(stderr, "%s: obj %d short read at %llu\n", when, i,
				        (unsigned long long)off);
				bad++;
			}
		}
	}
	store_stats st;
	store_get_stats(s, &st);
	if (st.logical_bytes != sum) {
		fprintf(stderr, "%s: logical %llu, objects' mapped bytes %llu\n", when,
		        (unsigned long long)st.logical_bytes, (unsigned long long)sum);
		bad++;
	}
	return bad;
}

static uint64_t batch_ops, batch_pieces, batch_again, batch_gc, batch_stale;
static ingest *eng;
static int gc_live = 0, gc_more = 1; /* a collection in steps is running; its last step */

/* Several writes inside x as one store_write_batch: 4 KiB blocks and short runs at
 * random places, often in one chunk or next to each other (touching, or a few bytes
 * apart), some over holes; checked against the model like any other op. */
static int batch_op(store *s, struct model *x)
{
	store_wpiece v[48];
	size_t n = 0, used = 0;
	uint64_t pos = below(x->size / 2);
	int want = 1 + (int)below(48);
	while ((int)n < want && pos < x->size) {
		uint64_t k = below(10), len;
		if (k < 3)
			pos += below(64); /* next to the last one, or nearly */
		else if (k < 6)
			pos += below(20000); /* in the same chunk or the next */
		else
			pos += below(x->size / 8 + 1);
		len = below(3) ? 4096 : 1 + below(70000);
		if (below(2))
			pos &= ~4095ull;
		if (n > 0 && pos < v[n - 1].off + v[n - 1].len)
			pos = v[n - 1].off + v[n - 1].len;
		if (pos >= x->size)
			break;
		len = BKS_MIN(len, x->size - pos);
		if (used + len > (2u << 20))
			break;
		content(wbuf + used, len);
		v[n++] = (store_wpiece){pos, wbuf + used, len};
		used += len;
		pos += len;
	}
	if (!n)
		return 0;
	int r, k = (int)below(4);
	if (k < 2) {
		r = store_write_batch(s, x->id, v, n);
	} else {
		/* In three steps, the middle one on the test's own engine (as bkstord's LUN
		 * cache does outside its lock); sometimes the object changes between the
		 * plan and the apply: -EAGAIN, nothing applied, plan again. */
		store_wbatch *b = NULL;
		if ((r = store_wbatch_plan(s, x->id, v, n, &b)) == 0)
			r = store_wbatch_prepare(b, eng);
		if (r == 0 && gc_live && gc_more == 1) {
			/* A collector step between plan and prepare (bkstord's appl.mu is free
			 * then): it may move chunks the plan would read (prepare: -ESTALE, when
			 * their row was reused) and map blocks (apply: -EAGAIN). */
			store_wbatch_free(b);
			b = NULL;
			if ((r = store_wbatch_plan(s, x->id, v, n, &b)) < 0)
				return r;
			gc_more = store_gc_step(s);
			if (gc_more < 0)
				return gc_more;
			r = store_wbatch_prepare(b, eng);
			if (r == -ESTALE)
				batch_stale++;
			if (r == 0)
				r = store_wbatch_apply(s, b);
			if (r == -EAGAIN || r == -ESTALE) {
				store_wbatch_free(b);
				b = NULL;
				batch_again++;
				if ((r = store_wbatch_plan(s, x->id, v, n, &b)) == 0)
					r = store_wbatch_prepare(b, eng);
				if (r == 0)
					r = store_wbatch_apply(s, b);
			}
			store_wbatch_free(b);
			b = NULL;
			batch_gc++;
			goto done;
		}
		if (r == 0 && k == 3) {
			uint8_t one = (uint8_t)rnd();
			if ((r = store_write_at(s, x->id, 0, &one, 1)) < 0)
				return r;
			x->m[0] = one;
			r = store_wbatch_apply(s, b);
			CHECK(r == -EAGAIN, "apply after the object changed: %d (want -EAGAIN)", r);
			store_wbatch_free(b);
			b = NULL;
			batch_again++;
			if ((r = store_wbatch_plan(s, x->id, v, n, &b)) == 0)
				r = store_wbatch_prepare(b, eng);
		}
		if (r == 0)
			r = store_wbatch_apply(s, b);
		store_wbatch_free(b);
	}
done:
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++)
		memcpy(x->m + v[i].off, v[i].buf, v[i].len);
	batch_ops++;
	batch_pieces += n;
	return 0;
}

/* One random change to one object, in the store and in the model. */
static int one_op(store *s)
{
	struct model *x = &mo[below(NOBJ)];
	uint64_t k = below(100), off, len, size;
	int r;
	if (x->size > 0 && below(4) == 0)
		return batch_op(s, x);
	if (x->size > MAXSZ - (2u << 20))
		k = 60; /* too large: shrink */
	if (k < 35 || (k < 45 && x->size == 0)) {
		/* overwrite inside (often 4 KiB aligned, sometimes the same bytes) */
		off = below(x->size + 1);
		len = below(4) == 0 ? 4096 : 1 + below(below(3) ? 70000 : (1u << 20));
		if (below(2))
			off &= ~4095ull;
		if (off + len > x->size + (1u << 20))
			len = 1;
		if (below(5) == 0 && off + len <= x->size)
			memcpy(wbuf, x->m + off, len); /* rewrite what is there */
		else
			content(wbuf, len);
	} else if (k < 55) {
		off = x->size; /* append */
		len = 1 + below(1u << 20);
		content(wbuf, len);
	} else if (k < 65) {
		size = below(x->size + 1); /* shrink */
		if ((r = store_truncate(s, x->id, size)) < 0)
			return r;
		model_set_size(x, size);
		return 0;
	} else if (k < 75) {
		size = x->size + below(600u << 10); /* grow: a hole */
		if ((r = store_truncate(s, x->id, size)) < 0)
			return r;
		model_set_size(x, size);
		return 0;
	} else {
		off = x->size + 1 + below(500u << 10); /* past the end: a hole before it */
		len = 1 + below(200000);
		content(wbuf, len);
	}
	if ((r = store_write_at(s, x->id, off, wbuf, len)) < 0)
		return r;
	if (off > x->size)
		model_set_size(x, off);
	memcpy(x->m + off, wbuf, len);
	if (off + len > x->size)
		x->size = off + len;
	return 0;
}

static int verify_clean(store *s, const char *when)
{
	int ok = tu_store_verify_clean(s, TU_ANY_OBJECTS);
	CHECK(ok, "%s: verify finds nothing bad", when);
	return ok;
}

static int model_run(uint64_t seed, int batches)
{
	const char *dir = tu_tmpdir_in("store-writeat", "/dev/shm");
	char *paths[N];
	bks_err e = {0};
	store *s = NULL;
	int r, fails0 = tu_failures;
	uint64_t syncs = 0, crashes = 0, gcs = 0, gc_steps = 0, ops = 0;
	uint64_t meta_moved = 0, segs_compacted = 0;
	store_gc_stats gs;

	rng = seed * 2654435761u + 1;
	arr *a = tu_make_array(dir, N, DISK_MB, NULL, paths);
	r = store_create(a, &sp, &s, &e);
	REQUIRE(r == 0, "create: %s", bks_errmsg(&e, r));
	for (int i = 0; i < NOBJ; i++) {
		mo[i].m = malloc(MAXSZ + 4096);
		snap[i].m = malloc(MAXSZ + 4096);
		REQUIRE(mo[i].m && snap[i].m, "oom");
		mo[i].size = 100000 * (uint64_t)i;
		content(mo[i].m, mo[i].size);
		REQUIRE(store_put(s, mo[i].m, mo[i].size, &mo[i].id) == 0, "put");
	}
	for (int b = 0; b < batches && tu_failures == fails0; b++) {
		char when[64];
		uint64_t ev = below(6);
		snprintf(when, sizeof(when), "seed %llu batch %d", (unsigned long long)seed, b);
		if (ev == 0) {
			/* Collect step by step while writing (the writes share chunks the
			 * sweep is looking at: the contents repeat). */
			REQUIRE(store_gc_start(s, 0.6) == 0, "%s: gc start", when);
			gcs++;
			int more = 1;
			gc_live = 1, gc_more = 1;
			while (more == 1) {
				for (int i = 0; i < 3; i++, ops++)
					REQUIRE((r = one_op(s)) == 0, "%s: op during gc: %d", when, r);
				more = gc_more == 1 ? store_gc_step(s) : gc_more;
				gc_more = more;
				gc_steps++;
			}
			gc_live = 0;
			REQUIRE(more == 0, "%s: gc step %d", when, more);
			store_gc_get_stats(s, &gs);
			meta_moved += gs.meta_blocks_moved;
			segs_compacted += gs.segments_compacted;
			REQUIRE(store_commit(s, &e) == 0, "%s: commit after gc", when);
		}
		for (int i = 0; i < 20; i++, ops++)
			REQUIRE((r = one_op(s)) == 0, "%s: op %d: %d", when, i, r);
		CHECK(check_all(s, when) == 0, "%s: model", when);
		if (ev == 1) {
			REQUIRE(store_commit(s, &e) == 0, "%s: commit", when);
		} else if (ev == 2) {
			REQUIRE(store_gc_run(s, 0.6) == 0, "%s: gc run", when);
			gcs++;
			store_gc_get_stats(s, &gs);
			meta_moved += gs.meta_blocks_moved;
			segs_compacted += gs.segments_compacted;
			CHECK(check_all(s, when) == 0, "%s: after gc", when);
			verify_clean(s, when);
		} else if (ev >= 3) {
			/* Sync, change more, crash: the synced state comes back. */
			REQUIRE(store_sync(s, mo[below(NOBJ)].id, &e) == 0, "%s: sync", when);
			syncs++;
			copy_models(snap, mo);
			for (int i = 0; i < 5; i++, ops++)
				REQUIRE((r = one_op(s)) == 0, "%s: op after sync: %d", when, r);
			if (ev == 3) {
				store_close(s); /* crash */
				crashes++;
				REQUIRE((s = reopen(paths)) != NULL, "%s: reopen", when);
				copy_models(mo, snap);
				CHECK(check_all(s, when) == 0, "%s: after crash", when);
				verify_clean(s, when);
			}
		}
	}
	if (tu_failures == fails0) {
		REQUIRE(store_gc_run(s, 0.9) == 0, "final gc");
		CHECK(check_all(s, "final") == 0, "final model");
		verify_clean(s, "final");
		store_close(s);
		REQUIRE((s = reopen(paths)) != NULL, "final reopen");
		CHECK(check_all(s, "final reopen") == 0, "final model after reopen");
	}
	store_stats st;
	store_get_stats(s, &st);
	printf("model: seed %llu: %llu batches of %llu pieces (%llu planned again, %llu with a "
	       "collector step between plan and prepare, %llu of them stale)\n",
	       (unsigned long long)seed, (unsigned long long)batch_ops,
	       (unsigned long long)batch_pieces, (unsigned long long)batch_again,
	       (unsigned long long)batch_gc, (unsigned long long)batch_stale);
	printf("model: seed %llu: %llu ops, %llu syncs, %llu crashes, %llu collections "
	       "(%llu steps, %llu segments compacted, %llu map blocks moved), %.1f MiB "
	       "logical, dedup %.2f\n",
	       (unsigned long long)seed, (unsigned long long)ops, (unsigned long long)syncs,
	       (unsigned long long)crashes, (unsigned long long)gcs,
	       (unsigned long long)gc_steps, (unsigned long long)segs_compacted,
	       (unsigned long long)meta_moved, (double)st.logical_bytes / 1048576.0,
	       st.dedup_ratio);
	CHECK(batches < 20 || (segs_compacted > 0 && meta_moved > 0),
	      "the collector compacted data and moved map blocks");
	if (tu_failures != fails0)
		fprintf(stderr, "FAILED: rerun with --seed %llu --batches %d%s\n",
		        (unsigned long long)seed, batches, sp.cdc.avg == 128 ? " --tiny" : "");
	store_close(s);
	for (int i = 0; i < NOBJ; i++) {
		free(mo[i].m);
		free(snap[i].m);
	}
	return 0;
}

/* 2 and 3: the reader's cached leaf; holes. */
static int holes_and_cache(void)
{
	const char *dir = tu_tmpdir_in("store-writeat-holes", "/dev/shm");
	char *paths[N];
	bks_err e = {0};
	store *s = NULL;
	pool_stats p0, p1;
	store_stats s0, s1;
	size_t got;
	uint64_t id, big;
	uint8_t b[8192];

	arr *a = tu_make_array(dir, N, 32, NULL, paths);
	int r = store_create(a, NULL, &s, &e);
	REQUIRE(r == 0, "create: %s", bks_errmsg(&e, r));
	/* The cached leaf: read, overwrite inside the same leaf, read again. */
	size_t len = 3u << 20;
	uint8_t *x = malloc(len);
	tu_fill(77, 0, 0, x, len);
	REQUIRE(store_put(s, x, len, &id) == 0, "put");
	REQUIRE(store_read(s, id, 100000, b, 16, &got) == 0 && got == 16, "read");
	memset(b, 0xab, 16);
	REQUIRE(store_write_at(s, id, 100000, b, 16) == 0, "write");
	memset(b, 0, 16);
	CHECK(store_read(s, id, 100000, b, 16, &got) == 0 && got == 16 && b[0] == 0xab &&
	          b[15] == 0xab,
	      "stale leaf after write_at: %02x", b[0]);
	REQUIRE(store_truncate(s, id, 50000) == 0, "truncate");
	CHECK(store_read(s, id, 0, x + len / 2, 100000, &got) == 0 && got == 50000 &&
	          !memcmp(x + len / 2, x, 50000),
	      "read after truncate: %zu", got);

	/* 0 bytes to 1 TiB: no data, O(1) map blocks. */
	REQUIRE(store_put(s, NULL, 0, &big) == 0, "put empty");
	pool_get_stats(store_pool(s), &p0);
	store_get_stats(s, &s0);
	REQUIRE(store_truncate(s, big, 1ull << 40) == 0, "grow to 1 TiB");
	pool_get_stats(store_pool(s), &p1);
	store_get_stats(s, &s1);
	store_obj_info in;
	CHECK(store_stat(s, big, &in) == 0 && in.size == 1ull << 40 && in.nextents == 1,
	      "1 TiB: size %llu extents %llu", (unsigned long long)in.size,
	      (unsigned long long)in.nextents);
	CHECK(s1.unique_chunks == s0.unique_chunks &&
	          p1.meta_bytes_written - p0.meta_bytes_written <= 4096,
	      "1 TiB hole: %llu chunks, %llu map bytes",
	      (unsigned long long)(s1.unique_chunks - s0.unique_chunks),
	      (unsigned long long)(p1.meta_bytes_written - p0.meta_bytes_written));
	printf("holes: 0 -> 1 TiB by truncate: %llu new chunks, %llu map bytes written\n",
	       (unsigned long long)(s1.unique_chunks - s0.unique_chunks),
	       (unsigned long long)(p1.meta_bytes_written - p0.meta_bytes_written));
	memset(b, 0x11, sizeof(b));
	CHECK(store_read(s, big, 123456789012ull, b, sizeof(b), &got) == 0 &&
	          got == sizeof(b) && b[0] == 0 && b[sizeof(b) - 1] == 0,
	      "hole reads zeros");
	/* A write in the middle of it keeps the hole around it. */
	tu_fill(5, 0, 0, b, sizeof(b));
	uint64_t mid = 500ull << 30;
	REQUIRE(store_write_at(s, big, mid, b, sizeof(b)) == 0, "write in hole");
	CHECK(store_stat(s, big, &in) == 0 && in.size == 1ull << 40 && in.nextents >= 3,
	      "after write in hole: extents %llu", (unsigned long long)in.nextents);
	uint8_t c[3 * 8192];
	CHECK(store_read(s, big, mid - 8192, c, sizeof(c), &got) == 0 && got == sizeof(c) &&
	          c[8191] == 0 && !memcmp(c + 8192, b, 8192) && c[2 * 8192] == 0,
	      "hole, data, hole");
	/* Past the end of the hole: the file grows by a write 1 GiB beyond it. */
	REQUIRE(store_write_at(s, big, (1ull << 40) + (1ull << 30), b, 100) == 0, "write past");
	CHECK(store_stat(s, big, &in) == 0 && in.size == (1ull << 40) + (1ull << 30) + 100,
	      "size after write past the end");
	REQUIRE(store_commit(s, &e) == 0, "commit");
	store_get_stats(s, &s1);
	/* Holes are not logical bytes: the 50 000-byte object, the 8 KiB written in the
	 * hole and the 100 bytes past it. */
	CHECK(s1.logical_bytes == 50000 + 8192 + 100, "logical %llu",
	      (unsigned long long)s1.logical_bytes);
	verify_clean(s, "holes");
	REQUIRE(store_gc_run(s, 0.5) == 0, "gc");
	verify_clean(s, "holes after gc");
	store_close(s);
	REQUIRE((s = reopen(paths)) != NULL, "reopen");
	CHECK(store_read(s, big, mid, c, 8192, &got) == 0 && !memcmp(c, b, 8192),
	      "data in hole after reopen");
	REQUIRE(store_truncate(s, big, 0) == 0, "truncate to 0");
	CHECK(store_stat(s, big, &in) == 0 && in.size == 0 && in.nextents == 0, "empty again");

	/* Overwritten chunks are garbage: the collector takes them. */
	uint64_t g;
	tu_fill(88, 0, 0, x, len);
	REQUIRE(store_put(s, x, len, &g) == 0, "put");
	REQUIRE(store_gc_run(s, 0.9) == 0, "gc");
	store_get_stats(s, &s0);
	tu_fill(89, 0, 0, x, len);
	REQUIRE(store_write_at(s, g, 0, x, len) == 0, "overwrite whole");
	store_get_stats(s, &s1);
	uint64_t added = s1.unique_chunks - s0.unique_chunks;
	REQUIRE(store_delete(s, id) == 0, "delete");
	REQUIRE(store_gc_run(s, 0.9) == 0, "gc");
	store_get_stats(s, &s1);
	CHECK(s1.unique_chunks + added / 2 < s0.unique_chunks + added,
	      "old chunks collected: %llu before, %llu added, %llu after",
	      (unsigned long long)s0.unique_chunks, (unsigned long long)added,
	      (unsigned long long)s1.unique_chunks);
	printf("garbage: whole 3 MiB overwrite added %llu chunks; collected: %llu -> %llu\n",
	       (unsigned long long)added, (unsigned long long)(s0.unique_chunks + added),
	       (unsigned long long)s1.unique_chunks);
	uint8_t *y = malloc(len);
	CHECK(y && store_read(s, g, 0, y, len, &got) == 0 && got == len && !memcmp(x, y, len),
	      "read after collection");
	free(y);
	verify_clean(s, "garbage");
	store_close(s);
	free(x);
	return 0;
}

/* 4: appends against streaming, both ways. */
static int appends(void)
{
	const char *dir = tu_tmpdir_in("store-writeat-append", "/dev/shm");
	char *paths[N];
	bks_err e = {0};
	store *s = NULL;
	store_stats s0, s1;
	uint64_t ida, idb, idc;
	size_t len = 48u << 20, step = 1u << 20, got;
	uint8_t *x = malloc(len), *y = malloc(len);
	struct timespec t0, t1, t2;

	arr *a = tu_make_array(dir, N, DISK_MB, NULL, paths);
	int r = store_create(a, NULL, &s, &e);
	REQUIRE(r == 0 && x && y, "create: %s", bks_errmsg(&e, r));
	pool_stats m0, m1, m2;
	tu_fill(31, 0, 0, x, len);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pool_get_stats(store_pool(s), &m0);
	REQUIRE(store_put(s, x, len, &ida) == 0, "put");
	pool_get_stats(store_pool(s), &m1);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	store_get_stats(s, &s0);
	REQUIRE(store_put(s, NULL, 0, &idb) == 0, "put empty");
	for (size_t off = 0; off < len; off += step)
		REQUIRE(store_write_at(s, idb, off, x + off, step) == 0, "append at %zu", off);
	clock_gettime(CLOCK_MONOTONIC, &t2);
	pool_get_stats(store_pool(s), &m2);
	store_get_stats(s, &s1);
	printf("appends: map bytes written: put %llu, 1 MiB appends %llu (%.1f KiB per "
	       "append)\n",
	       (unsigned long long)(m1.meta_bytes_written - m0.meta_bytes_written),
	       (unsigned long long)(m2.meta_bytes_written - m1.meta_bytes_written),
	       (double)(m2.meta_bytes_written - m1.meta_bytes_written) / 48.0 / 1024.0);
	store_obj_info ia, ib;
	REQUIRE(store_stat(s, ida, &ia) == 0 && store_stat(s, idb, &ib) == 0, "stat");
	uint64_t newc = s1.unique_chunks - s0.unique_chunks;
	double shared = 1.0 - (double)newc / (double)ib.nextents;
	double tput = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	double tapp = (double)(t2.tv_sec - t1.tv_sec) + (double)(t2.tv_nsec - t1.tv_nsec) / 1e9;
	printf("appends: 48 MiB by 1 MiB store_write_at after store_put of the same bytes: "
	       "%llu extents (put: %llu), %llu new chunks, %.1f %% shared; put %.2f s, "
	       "appends %.2f s\n",
	       (unsigned long long)ib.nextents, (unsigned long long)ia.nextents,
	       (unsigned long long)newc, 100.0 * shared, tput, tapp);
	CHECK(shared >= 0.90, "append dedup %.3f", shared);
	CHECK(ib.nextents == ia.nextents, "same cut points: %llu vs %llu",
	      (unsigned long long)ib.nextents, (unsigned long long)ia.nextents);
	REQUIRE(store_read(s, idb, 0, y, len, &got) == 0 && got == len && !memcmp(x, y, len),
	        "appended object reads back");

	/* The other way: appends first (other bytes), then store_put of them. */
	tu_fill(32, 0, 0, x, len);
	REQUIRE(store_put(s, NULL, 0, &idc) == 0, "put empty");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (size_t off = 0; off < len; off += step)
		REQUIRE(store_write_at(s, idc, off, x + off, step) == 0, "append at %zu", off);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("appends: 48 MiB of new bytes by 1 MiB appends: %.2f s (store_put of new "
	       "bytes above: %.2f s)\n",
	       (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9, tput);
	store_get_stats(s, &s0);
	uint64_t idd;
	REQUIRE(store_put(s, x, len, &idd) == 0, "put");
	store_get_stats(s, &s1);
	REQUIRE(store_stat(s, idd, &ia) == 0, "stat");
	newc = s1.unique_chunks - s0.unique_chunks;
	printf("appends: store_put after 1 MiB appends of the same bytes: %llu of %llu "
	       "chunks new\n",
	       (unsigned long long)newc, (unsigned long long)ia.nextents);
	CHECK(newc <= 1, "put after appends: %llu new chunks", (unsigned long long)newc);
	verify_clean(s, "appends");
	store_close(s);
	free(x);
	free(y);
	return 0;
}

/* 5: the metadata a 4 KiB overwrite writes in a large object. */
static int overwrite_cost(void)
{
	const char *dir = tu_tmpdir_in("store-writeat-cost", "/dev/shm");
	char *paths[N];
	bks_err e = {0};
	store *s = NULL;
	store_params p;
	uint64_t id, size = 256u << 20, period = 1u << 20;
	size_t got;
	uint8_t blk[4096], back[4096];

	store_params_default(&p);
	p.cdc.min = 128;
	p.cdc.avg = 512;
	p.cdc.max = 2048;
	arr *a = tu_make_array(dir, N, 96, NULL, paths);
	int r = store_create(a, &p, &s, &e);
	REQUIRE(r == 0, "create: %s", bks_errmsg(&e, r));
	/* 256 MiB of a repeating 1 MiB pattern: the chunks repeat (little data), the
	 * map does not (one extent per chunk). */
	uint8_t *x = malloc(period);
	tu_fill(9, 0, 0, x, period);
	store_writer *w;
	REQUIRE(store_put_begin(s, &w) == 0, "begin");
	for (uint64_t off = 0; off < size; off += period)
		REQUIRE(store_put_write(w, x, period) == 0, "write");
	REQUIRE(store_put_end(w, &id) == 0, "end");
	REQUIRE(store_commit(s, &e) == 0, "commit");
	store_obj_info in;
	REQUIRE(store_stat(s, id, &in) == 0, "stat");
	uint64_t map_bytes = in.nextents * 88;
	pool_stats p0, p1;
	uint64_t worst = 0, total = 0;
	int n = 50;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pool_get_stats(store_pool(s), &p0);
	for (int i = 0; i < n; i++) {
		uint64_t before = p0.meta_bytes_written;
		uint64_t off = (below(size / 4096 - 2) + 1) * 4096;
		tu_fill(100 + (uint64_t)i, 0, 0, blk, sizeof(blk));
		REQUIRE(store_write_at(s, id, off, blk, sizeof(blk)) == 0, "overwrite %d", i);
		pool_get_stats(store_pool(s), &p0);
		uint64_t d = p0.meta_bytes_written - before;
		worst = BKS_MAX(worst, d);
		total += d;
		CHECK(store_read(s, id, off, back, sizeof(back), &got) == 0 && got == 4096 &&
		          !memcmp(back, blk, 4096),
		      "overwrite %d reads back", i);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	(void)p1;
	printf("overwrite: 4 KiB in a 256 MiB object (%llu extents, ~%.1f MiB of leaves): "
	       "map bytes written per overwrite: mean %llu, worst %llu; %.2f ms each "
	       "(with a read back)\n",
	       (unsigned long long)in.nextents, (double)map_bytes / 1048576.0,
	       (unsigned long long)(total / (uint64_t)n), (unsigned long long)worst,
	       ((double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6) /
	           n);
	/* Depth 3 here (32 KiB blocks): a leaf (split at worst into two), a node, the
	 * root; far from the tens of MiB a rewrite of the map would be. */
	CHECK(worst <= 4 * 32768, "worst %llu bytes", (unsigned long long)worst);
	CHECK(in.nextents > 372 * 682, "depth 3: %llu extents", (unsigned long long)in.nextents);
	/* The rest of the object is untouched: its first and last MiB. */
	uint8_t *y = malloc(period);
	CHECK(store_read(s, id, size - period, y, period, &got) == 0 && got == period,
	      "last MiB");
	free(y);
	store_close(s);
	free(x);
	return 0;
}

/* 6: the space classes. */
static int full(void)
{
	const char *dir = tu_tmpdir_in("store-writeat-full", "/dev/shm");
	char *paths[N];
	bks_err e = {0};
	store *s = NULL;
	uint64_t id, size = 0, step = 1u << 20, cap = 200u << 20;
	size_t got;
	int r;
	uint8_t *m = malloc(cap), *back = malloc(cap);

	arr *a = tu_make_array(dir, N, 24, NULL, paths);
	r = store_create(a, NULL, &s, &e);
	REQUIRE(r == 0 && m && back, "create: %s", bks_errmsg(&e, r));
	REQUIRE(store_put(s, NULL, 0, &id) == 0, "put empty");
	for (int i = 0; size + step <= cap; i++) {
		tu_fill(500 + (uint64_t)i, 3, 0, m + size, step);
		r = store_write_at(s, id, size, m + size, step);
		if (r < 0)
			break;
		size += step;
	}
	store_obj_info in;
	CHECK(r == -ENOSPC, "appends until full: %d at %llu MiB", r,
	      (unsigned long long)(size >> 20));
	CHECK(store_space_full(s), "full");
	CHECK(store_stat(s, id, &in) == 0 && in.size == size, "size kept after the refusal");
	CHECK(store_read(s, id, 0, back, cap, &got) == 0 && got == size &&
	          !memcmp(back, m, size),
	      "reads back after the refusal");
	uint8_t one[4096] = {1};
	CHECK(store_write_at(s, id, 4096, one, sizeof(one)) == -ENOSPC, "overwrite refused");
	CHECK(store_truncate(s, id, size + 1000000) == -ENOSPC, "grow refused");
	CHECK(store_truncate(s, id, size / 4 + 12345) == 0, "shrink while full");
	size = size / 4 + 12345;
	REQUIRE(store_commit(s, &e) == 0, "commit while full");
	REQUIRE(store_gc_run(s, 0.5) == 0, "gc");
	CHECK(!store_space_full(s), "no longer full after the collector");
	CHECK(store_write_at(s, id, 4096, one, sizeof(one)) == 0, "overwrite accepted again");
	memcpy(m + 4096, one, sizeof(one));
	CHECK(store_read(s, id, 0, back, cap, &got) == 0 && got == size &&
	          !memcmp(back, m, size),
	      "reads back after the collector");
	verify_clean(s, "full");
	printf("full: appends refused with -ENOSPC at %llu MiB; shrink, collect, write again\n",
	       (unsigned long long)((size - 12345) * 4 >> 20));
	store_close(s);
	free(m);
	free(back);
	return 0;
}

/* 7: logical bytes are the bytes in extents, holes excluded, exactly at every step.
 * want[i] is object ids[i]'s mapped bytes worked out by hand (UINT64_MAX: deleted);
 * store_mapped_bytes must agree (it walks the map), and the store's figure must be
 * their sum. */
#define LX_OBJS 5
static int lx_check(store *s, const uint64_t *ids, const uint64_t *want, const char *when)
{
	store_stats st;
	uint64_t sum = 0;
	int bad = 0;
	for (int i = 0; i < LX_OBJS; i++) {
		uint64_t m = 0;
		int r = store_mapped_bytes(s, ids[i], &m);
		if (want[i] == UINT64_MAX) {
			if (r != -ENOENT) {
				fprintf(stderr, "%s: object %d: %d, deleted\n", when, i, r);
				bad++;
			}
			continue;
		}
		if (r < 0 || m != want[i]) {
			fprintf(stderr, "%s: object %d: mapped %d %llu, want %llu\n", when, i, r,
			        (unsigned long long)m, (unsigned long long)want[i]);
			bad++;
		}
		sum += m;
	}
	store_get_stats(s, &st);
	if (st.logical_bytes != sum) {
		fprintf(stderr, "%s: logical bytes %llu, objects' mapped bytes %llu\n", when,
		        (unsigned long long)st.logical_bytes, (unsigned long long)sum);
		bad++;
	}
	CHECK(bad == 0, "logical bytes exact: %s", when);
	return bad;
}

static int logical_exact(void)
{
	const char *dir = tu_tmpdir_in("store-writeat-logical", "/dev/shm");
	char *paths[N];
	bks_err e = {0};
	store *s = NULL;
	store_obj_info in;
	size_t len = 1u << 20, got;
	uint64_t ids[LX_OBJS], want[LX_OBJS];
	const uint64_t G = 1ull << 30;
	uint8_t *x = malloc(len), *y = malloc(len);
	REQUIRE(x && y, "oom");

	arr *a = tu_make_array(dir, N, 32, NULL, paths);
	int r = store_create(a, &sp, &s, &e);
	REQUIRE(r == 0, "create: %s", bks_errmsg(&e, r));
	/* A: a file; B: a thin 10 GiB LUN; C, D: files; E: empty, grown later. */
	tu_fill(41, 0, 0, x, len);
	REQUIRE(store_put(s, x, 300000, &ids[0]) == 0, "put A");
	want[0] = 300000;
	REQUIRE(store_put(s, NULL, 0, &ids[1]) == 0, "put B");
	want[1] = 0;
	tu_fill(42, 0, 0, x, len);
	REQUIRE(store_put(s, x, 200000, &ids[2]) == 0, "put C");
	want[2] = 200000;
	tu_fill(43, 0, 0, x, len);
	REQUIRE(store_put(s, x, 123457, &ids[3]) == 0, "put D");
	want[3] = 123457;
	REQUIRE(store_put(s, NULL, 0, &ids[4]) == 0, "put E");
	want[4] = 0;
	lx_check(s, ids, want, "after put");

	/* Grow: a hole stores nothing and counts nothing. */
	REQUIRE(store_truncate(s, ids[1], 10 * G) == 0, "grow B to 10 GiB");
	REQUIRE(store_truncate(s, ids[4], 3 * G) == 0, "grow E to 3 GiB");
	CHECK(store_stat(s, ids[1], &in) == 0 && in.size == 10 * G, "B's size is 10 GiB");
	lx_check(s, ids, want, "truncate grow");

	/* Sparse writes: the gap before off is a hole. */
	tu_fill(44, 0, 0, x, len);
	REQUIRE(store_write_at(s, ids[0], 1u << 20, x, 5000) == 0, "A: write past the end");
	want[0] += 5000; /* data [0, 300000), hole, data [1 MiB, 1 MiB + 5000) */
	REQUIRE(store_write_at(s, ids[1], 5 * G, x, 65536) == 0, "B: write in the hole");
	want[1] = 65536;
	REQUIRE(store_write_at(s, ids[1], 10 * G - 1000, x, 3000) == 0, "B: across the end");
	want[1] += 3000;
	CHECK(store_stat(s, ids[1], &in) == 0 && in.size == 10 * G + 2000, "B grew by 2000");
	lx_check(s, ids, want, "sparse writes");

	/* Overwrites of a hole map it; of data change nothing. */
	tu_fill(45, 0, 0, x, len);
	REQUIRE(store_write_at(s, ids[0], 500000, x, 100000) == 0, "A: inside the hole");
	want[0] += 100000; /* data [0, 300000) [500000, 600000) [1 MiB, +5000) */
	REQUIRE(store_write_at(s, ids[0], 250000, x, 100000) == 0, "A: data then hole");
	want[0] += 50000; /* data [0, 350000) [500000, 600000) [1 MiB, +5000) */
	REQUIRE(store_write_at(s, ids[2], 1000, x, 150000) == 0, "C: over data");
	REQUIRE(store_write_at(s, ids[1], 5 * G - 100, x, 65736) == 0, "B: over data, both ends");
	want[1] += 200; /* [5 GiB - 100, 5 GiB + 65636) */
	lx_check(s, ids, want, "overwrites");

	/* Shrink drops the mapped bytes past the end; grow adds none. */
	REQUIRE(store_truncate(s, ids[0], 520000) == 0, "A: shrink into data");
	want[0] = 350000 + 20000;
	REQUIRE(store_truncate(s, ids[2], 77777) == 0, "C: shrink");
	want[2] = 77777;
	REQUIRE(store_truncate(s, ids[0], 2u << 20) == 0, "A: grow again");
	lx_check(s, ids, want, "truncate shrink and grow");

	/* Punch: a hole in data, one across hole boundaries, one in a hole, one past
	 * the end (clipped). */
	REQUIRE(store_punch(s, ids[0], 100000, 100000) == 0, "A: punch data");
	want[0] -= 100000;
	REQUIRE(store_punch(s, ids[0], 340000, 170000) == 0, "A: punch across holes");
	want[0] -= 10000 + 10000; /* [340000, 350000) and [500000, 510000) */
	REQUIRE(store_punch(s, ids[0], 1u << 20, 4096) == 0, "A: punch in a hole");
	REQUIRE(store_punch(s, ids[1], 5 * G, 4096) == 0, "B: punch");
	want[1] -= 4096;
	REQUIRE(store_punch(s, ids[3], 100000, 1ull << 40) == 0, "D: punch to the end");
	want[3] = 100000;
	CHECK(store_stat(s, ids[3], &in) == 0 && in.size == 123457, "D keeps its size");
	lx_check(s, ids, want, "punch");
	/* Bytes read back as the figures say: A's [0, 100000) data, then zeros. */
	tu_fill(41, 0, 0, x, len);
	CHECK(store_read(s, ids[0], 0, y, 200000, &got) == 0 && got == 200000 &&
	          !memcmp(x, y, 100000) && y[100000] == 0 && y[199999] == 0,
	      "A reads data then the punched hole");

	/* Replace (the object had holes: the map is walked) and truncate to 0. */
	tu_fill(46, 0, 0, x, len);
	store_writer *w;
	REQUIRE(store_put_begin(s, &w) == 0, "begin");
	REQUIRE(store_put_write(w, x, 400000) == 0, "write");
	REQUIRE(store_put_end_replace(w, ids[0]) == 0, "replace A");
	want[0] = 400000;
	REQUIRE(store_write_at(s, ids[4], G, x, 1000) == 0, "E: write in the hole");
	REQUIRE(store_truncate(s, ids[4], 0) == 0, "E: truncate to 0");
	want[4] = 0;
	lx_check(s, ids, want, "replace, truncate to 0");
	REQUIRE(store_write_at(s, ids[0], 3u << 20, x, 100) == 0, "A: hole again");
	want[0] += 100;
	REQUIRE(store_commit(s, &e) == 0, "commit: %s", bks_errmsg(&e, -1));

	/* Two syncs, more changes, a crash: replay brings back the second sync's
	 * state and its figure. */
	REQUIRE(store_write_at(s, ids[1], G, x, 10000) == 0, "B: write");
	want[1] += 10000;
	REQUIRE(store_sync(s, ids[1], &e) == 0, "sync 1: %s", bks_errmsg(&e, -1));
	REQUIRE(store_delete(s, ids[3]) == 0, "delete D");
	want[3] = UINT64_MAX;
	REQUIRE(store_punch(s, ids[1], 5 * G - 100, 65736) == 0, "B: punch");
	want[1] -= 65736 - 4096; /* 4096 of it were punched before */
	REQUIRE(store_truncate(s, ids[4], 7 * G) == 0, "E: grow");
	REQUIRE(store_sync(s, ids[1], &e) == 0, "sync 2: %s", bks_errmsg(&e, -1));
	lx_check(s, ids, want, "synced");
	uint64_t synced[LX_OBJS];
	memcpy(synced, want, sizeof(want));
	REQUIRE(store_punch(s, ids[0], 0, 50000) == 0, "A: punch (not synced)");
	REQUIRE(store_write_at(s, ids[2], 10 * G, x, 1) == 0, "C: far write (not synced)");
	REQUIRE(store_delete(s, ids[1]) == 0, "delete B (not synced)");
	store_close(s); /* crash */
	REQUIRE((s = reopen(paths)) != NULL, "reopen");
	store_stats st;
	store_get_stats(s, &st);
	CHECK(st.log_replayed == 2, "2 records replayed: %llu",
	      (unsigned long long)st.log_replayed);
	memcpy(want, synced, sizeof(want));
	lx_check(s, ids, want, "after crash and replay");
	REQUIRE(store_commit(s, &e) == 0, "commit");
	store_close(s);
	REQUIRE((s = reopen(paths)) != NULL, "reopen");
	lx_check(s, ids, want, "after reopen");

	/* Delete an object with holes; the collector changes nothing (it moves
	 * chunks and map blocks, not extents). */
	REQUIRE(store_delete(s, ids[1]) == 0, "delete B");
	want[1] = UINT64_MAX;
	lx_check(s, ids, want, "delete");
	REQUIRE(store_gc_run(s, 0.9) == 0, "gc");
	store_gc_stats gs;
	store_gc_get_stats(s, &gs);
	lx_check(s, ids, want, "after a collection");
	REQUIRE(store_commit(s, &e) == 0, "commit");
	store_close(s);
	REQUIRE((s = reopen(paths)) != NULL, "reopen");
	lx_check(s, ids, want, "after the collection, reopened");
	store_get_stats(s, &st);
	printf("logical: %llu bytes in 3 objects of %llu bytes in all (holes excluded); "
	       "collection moved %llu chunks, %llu map blocks\n",
	       (unsigned long long)st.logical_bytes,
	       (unsigned long long)(400000 + (3u << 20) + 100 + 77777 + 7 * G),
	       (unsigned long long)gs.chunks_moved, (unsigned long long)gs.meta_blocks_moved);
	verify_clean(s, "logical");
	store_close(s);
	free(x);
	free(y);
	return 0;
}

int main(int argc, char **argv)
{
	uint64_t seed = 0;
	int batches = 40, tiny = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--seed") && i + 1 < argc)
			seed = strtoull(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--batches") && i + 1 < argc)
			batches = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--tiny"))
			tiny = 1;
		else if (!strcmp(argv[i], "--no-model"))
			batches = 0;
	}
	REQUIRE(ingest_new(3, 1u << 20, 2, &eng) == 0, "engine");
	wbuf = malloc((2u << 20) + 4096);
	rbuf = malloc(MAXSZ + 8192);
	store_params_default(&sp);
	sp.cdc.min = 1024;
	sp.cdc.avg = 4096;
	sp.cdc.max = 16384;
	sp.auto_commit_bytes = 0;
	if (seed) {
		if (tiny)
			sp.cdc = (cdc_params){64, 128, 512};
		model_run(seed, batches);
	} else if (batches > 0) {
		model_run(1, batches);
		model_run(2, batches);
		/* Tiny chunks: ~40 000 extents per object, a write spans many leaves
		 * (splits, leaves dropped whole). */
		sp.cdc = (cdc_params){64, 128, 512};
		model_run(3, batches / 2);
	}
	if (!seed) {
		holes_and_cache();
		appends();
		rng = 99;
		overwrite_cost();
		full();
		logical_exact();
	}
	free(wbuf);
	free(rbuf);
	ingest_free(eng);
	return tu_finish();
}
