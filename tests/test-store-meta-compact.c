/* test-store-meta-compact: the collector compacts metadata rows that are only partly
 * live.
 *  1. 300 small objects, each followed by a commit (every commit seals part-full
 *     metadata rows), and again with a sync each (the case); 270 deleted,
 *     one GC round: the metadata rows drop to what the live metadata needs (live
 *     bytes at the mark / row bytes, rounded up, + 2);
 *     every remaining object reads back exact, verify is clean, after a reopen too.
 *     (The collector of before freed only wholly dead metadata rows: each surviving
 *     object's map leaf kept its commit's row, ~30 rows.)
 *  2. One large object (tiny chunks: a three-level map) written while small
 *     objects are put and committed, so its leaves are spread
 *     over rows that are mostly garbage once the small objects are deleted, and over
 *     a few rows its leaves fill: GC moves only the leaves in the emptied rows and
 *     their ancestors (well under half of the map's bytes), and the object reads back.
 *     Another object is being written across the collection, with a leaf in a row
 *     that is mostly garbage: it reads back too (rows holding an unfinished object's
 *     blocks are left alone).
 *  3. Power cuts (the fault layer) during a compaction pass: during the sweep and
 *     the moves, after the victims were freed but before the commit, inside the
 *     commit, and inside an intent-log sync after the moves. After each cut the store
 *     opens on a clean machine with every object intact and verify clean. */
#include <config.h>

#include "tests/testutil.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dedup/store.h"
#include "dedup/store_int.h"

#define N 6

static uint64_t rows_meta(store *s)
{
	store_stats st;
	store_get_stats(s, &st);
	return st.rows_meta;
}

/* --- 1 --- */

#define SMALL 300
#define SMALL_LEN 1024

/* sync: each put followed by store_sync (the intent log) instead of a commit, as a
 * PUT to the daemon is; one commit at the end. */
static int small_objects(const char *top, int sync)
{
	char dir[600], *paths[N];
	store *s;
	bks_err e = {0};
	uint64_t ids[SMALL];
	int keep = 0;

	snprintf(dir, sizeof(dir), "%s/small%d", top, sync);
	tu_mkdir(dir);
	arr *a = tu_make_array(dir, N, 64, NULL, paths);
	REQUIRE(store_create(a, NULL, &s, &e) == 0, "create: %s", e.msg);
	uint32_t row = pool_row_bytes(store_pool(s));
	for (int i = 0; i < SMALL; i++) {
		REQUIRE(tu_store_put_seed(s, 1000 + i, SMALL_LEN, &ids[i]) == 0, "put %d", i);
		if (sync)
			REQUIRE(store_sync(s, ids[i], &e) == 0, "sync %d: %s", i, e.msg);
		else
			REQUIRE(store_commit(s, &e) == 0, "commit %d: %s", i, e.msg);
	}
	if (sync)
		REQUIRE(store_commit(s, &e) == 0, "commit: %s", e.msg);
	uint64_t before = rows_meta(s);
	for (int i = 0; i < SMALL; i++)
		if (i % 10)
			CHECK(store_delete(s, ids[i]) == 0, "delete %d", i);
		else
			keep++;
	REQUIRE(store_commit(s, &e) == 0, "commit deletes: %s", e.msg);
	uint64_t deleted = rows_meta(s);
	int r = store_gc_run(s, 0.5);
	REQUIRE(r == 0, "gc: %s", strerror(-r));
	store_gc_stats gs;
	store_gc_get_stats(s, &gs);
	uint64_t after = rows_meta(s);
	uint64_t bound = (gs.meta_live_bytes + row - 1) / row + 2;
	printf("small objects: %d puts with a %s each: %llu metadata rows; %d deleted: "
	       "%llu; after one GC: %llu (live metadata %llu bytes = %.2f rows of %u; bound "
	       "%llu); %llu rows compacted, %llu blocks moved (%llu bytes)\n", SMALL,
	       sync ? "sync" : "commit", (unsigned long long)before, SMALL - keep,
	       (unsigned long long)deleted, (unsigned long long)after,
	       (unsigned long long)gs.meta_live_bytes, (double)gs.meta_live_bytes / row, row,
	       (unsigned long long)bound, (unsigned long long)gs.meta_rows_compacted,
	       (unsigned long long)gs.meta_blocks_moved, (unsigned long long)gs.meta_bytes_moved);
	if (!sync)
		CHECK(before >= SMALL, "every commit sealed a metadata row (%llu)",
		      (unsigned long long)before);
	CHECK(after <= bound, "%llu metadata rows after GC, bound %llu",
	      (unsigned long long)after, (unsigned long long)bound);
	CHECK(gs.meta_rows_compacted > 0 && gs.meta_blocks_moved > 0, "metadata moved");
	int bad = 0;
	for (int i = 0; i < SMALL; i += 10)
		bad += !tu_store_same_seed(s, ids[i], 1000 + i, SMALL_LEN);
	CHECK(bad == 0, "%d objects differ after GC", bad);
	CHECK(tu_store_verify_clean(s, (uint64_t)keep), "verify after GC");
	/* A second round finds nothing more worth moving, and loses nothing. */
	r = store_gc_run(s, 0.5);
	CHECK(r == 0, "second gc: %s", strerror(-r));
	CHECK(rows_meta(s) <= bound, "%llu metadata rows after a second GC",
	      (unsigned long long)rows_meta(s));
	store_close(s);

	a = tu_import_array(paths, N, NULL);
	REQUIRE(a && store_open(a, NULL, &s, &e) == 0, "reopen: %s", e.msg);
	CHECK(rows_meta(s) <= bound, "%llu metadata rows after reopen",
	      (unsigned long long)rows_meta(s));
	bad = 0;
	for (int i = 0; i < SMALL; i++) {
		store_obj_info in;
		if (i % 10)
			bad += store_stat(s, ids[i], &in) != -ENOENT;
		else
			bad += !tu_store_same_seed(s, ids[i], 1000 + i, SMALL_LEN);
	}
	CHECK(bad == 0, "%d objects wrong after reopen", bad);
	CHECK(tu_store_verify_clean(s, (uint64_t)keep), "verify after reopen");
	store_close(s);
	return 0;
}

/* --- 2 --- */

#define BIG_PIECES 40
#define BIG_PIECE(i) ((i) % 4 == 3 ? 4u << 20 : 64u << 10)

static int big_object(const char *top)
{
	char dir[600], *paths[N];
	store *s;
	store_params p;
	bks_err e = {0};
	uint64_t small[BIG_PIECES], big;

	snprintf(dir, sizeof(dir), "%s/big", top);
	tu_mkdir(dir);
	store_params_default(&p);
	/* Tiny chunks, so the map needs three levels (372 extents a leaf, 682 children
	 * a node) with a few tens of MiB. */
	p.cdc.min = 64;
	p.cdc.avg = 128;
	p.cdc.max = 512;
	arr *a = tu_make_array(dir, N, 128, NULL, paths);
	REQUIRE(store_create(a, &p, &s, &e) == 0, "create: %s", e.msg);
	/* Pieces of 64 KiB put a leaf or two into a row that is otherwise small objects'
	 * metadata; every fourth piece (4 MiB) fills rows with leaves. */
	size_t len = 0;
	for (int i = 0; i < BIG_PIECES; i++)
		len += BIG_PIECE(i);
	uint8_t *data = malloc(len);
	tu_fill(77, 0, 0, data, len);
	store_writer *w;
	REQUIRE(store_put_begin(s, &w) == 0, "begin");
	size_t off = 0;
	for (int i = 0; i < BIG_PIECES; i++) {
		size_t n = BIG_PIECE(i);
		REQUIRE(store_put_write(w, data + off, n) == 0, "write piece %d", i);
		off += n;
		REQUIRE(tu_store_put_seed(s, 5000 + i, 3000, &small[i]) == 0, "small %d", i);
		REQUIRE(store_commit(s, &e) == 0, "commit %d: %s", i, e.msg);
	}
	REQUIRE(store_put_end(w, &big) == 0, "end");
	REQUIRE(store_commit(s, &e) == 0, "commit big: %s", e.msg);
	for (int i = 0; i < BIG_PIECES; i++)
		CHECK(store_delete(s, small[i]) == 0, "delete small %d", i);
	REQUIRE(store_commit(s, &e) == 0, "commit deletes: %s", e.msg);
	/* An object being written across the collection: its first leaf goes into a row
	 * that is mostly garbage (sealed by a commit); its unfinished nodes point at it,
	 * so that row must stay where it is. */
	size_t wlen = 300u << 10, wfirst = 60u << 10;
	uint8_t *wdata = malloc(wlen);
	uint64_t wid;
	tu_fill(88, 0, 0, wdata, wlen);
	REQUIRE(store_put_begin(s, &w) == 0, "begin second");
	REQUIRE(store_put_write(w, wdata, wfirst) == 0, "write second");
	REQUIRE(store_commit(s, &e) == 0, "commit with a writer open: %s", e.msg);
	obj_rec o;
	REQUIRE(store_obj_get(s, big, &o) == 0, "big object record");
	uint64_t map_bytes = o.nextents * MAP_LEAF_ENT;
	uint64_t leaves = (o.nextents + 371) / 372;
	seg_ptr root0 = o.root;
	CHECK(o.depth >= 3, "map depth %u", o.depth);
	uint64_t rows0 = rows_meta(s);
	int r = store_gc_run(s, 0.5);
	REQUIRE(r == 0, "gc: %s", strerror(-r));
	store_gc_stats gs;
	store_gc_get_stats(s, &gs);
	REQUIRE(store_obj_get(s, big, &o) == 0, "big object record after GC");
	printf("large object: %zu bytes, %llu extents, map depth %u, ~%llu leaves, map %llu "
	       "bytes; metadata rows %llu -> %llu; GC compacted %llu rows, moved %llu blocks "
	       "(%llu bytes, %.1f%% of the map); root moved: %s\n", len,
	       (unsigned long long)o.nextents, o.depth, (unsigned long long)leaves,
	       (unsigned long long)map_bytes, (unsigned long long)rows0,
	       (unsigned long long)rows_meta(s), (unsigned long long)gs.meta_rows_compacted,
	       (unsigned long long)gs.meta_blocks_moved, (unsigned long long)gs.meta_bytes_moved,
	       100.0 * (double)gs.meta_bytes_moved / (double)map_bytes,
	       memcmp(&root0, &o.root, sizeof(o.root)) ? "yes" : "no");
	CHECK(gs.meta_rows_compacted > 0, "rows compacted");
	CHECK(gs.meta_bytes_moved > 0, "some of the map moved");
	CHECK(gs.meta_bytes_moved * 3 < map_bytes, "moved %llu bytes of a %llu-byte map",
	      (unsigned long long)gs.meta_bytes_moved, (unsigned long long)map_bytes);
	CHECK(gs.meta_blocks_moved * 3 < leaves, "moved %llu blocks of a map of ~%llu leaves",
	      (unsigned long long)gs.meta_blocks_moved, (unsigned long long)leaves);
	CHECK(rows_meta(s) < rows0, "metadata rows %llu -> %llu", (unsigned long long)rows0,
	      (unsigned long long)rows_meta(s));
	REQUIRE(store_put_write(w, wdata + wfirst, wlen - wfirst) == 0, "write second, rest");
	REQUIRE(store_put_end(w, &wid) == 0, "end second");
	REQUIRE(store_commit(s, &e) == 0, "commit second: %s", e.msg);
	CHECK(tu_store_same(s, wid, wdata, wlen), "object written across the GC reads back");
	size_t got = 0;
	uint8_t *back = malloc(len + 1);
	CHECK(store_read(s, big, 0, back, len + 1, &got) == 0 && got == len &&
	      !memcmp(back, data, len), "large object reads back after GC");
	CHECK(tu_store_verify_clean(s, 2), "verify after GC");
	store_close(s);
	a = tu_import_array(paths, N, NULL);
	REQUIRE(a && store_open(a, &p, &s, &e) == 0, "reopen: %s", e.msg);
	memset(back, 0, len);
	CHECK(store_read(s, big, 0, back, len + 1, &got) == 0 && got == len &&
	      !memcmp(back, data, len), "large object reads back after reopen");
	CHECK(tu_store_same(s, wid, wdata, wlen), "object written across the GC after reopen");
	CHECK(tu_store_verify_clean(s, 2), "verify after reopen");
	store_close(s);
	free(wdata);
	free(back);
	free(data);
	return 0;
}

/* --- 3 --- */

#define PC_ROUNDS 24
#define PC_MAX 64
#define PC_EXTRA 8
#define EXTRA_LEN 1500

struct pobj {
	uint64_t id, seed;
};

static int powercut(void)
{
	const char *dir = tu_tmpdir_in("store-meta-compact-pc", "/dev/shm");
	char *paths[N];
	store *s;
	bks_err e = {0};
	bks_rng rng;
	struct pobj live[PC_MAX];
	int n = 0, cuts = 0, compacted_rounds = 0, extras_kept = 0, mid_pass = 0, r;
	uint64_t seed = 1;

	bks_rng_seed(&rng, 5);
	arr *a = tu_make_array(dir, N, 40, NULL, paths);
	REQUIRE(store_create(a, NULL, &s, &e) == 0, "create: %s", e.msg);
	store_close(s);
	for (int round = 0; round < PC_ROUNDS; round++) {
		flt_world *w;
		flt_world_new((uint64_t)round + 100, &w);
		a = tu_import_array(paths, N, w);
		REQUIRE(a, "round %d: import", round);
		r = store_open(a, NULL, &s, &e);
		REQUIRE(r == 0, "round %d: open: %s", round, bks_errmsg(&e, r));
		/* The previous round's cut lost its collection: collect (no cut armed). */
		r = store_gc_run(s, 0.5);
		REQUIRE(r == 0, "round %d: gc: %s", round, strerror(-r));
		/* Part-full rows: small objects, a commit each; most of them deleted. */
		for (int i = 0; i < 12 && n < PC_MAX; i++) {
			struct pobj o = {0, seed++};
			r = tu_store_put_seed(s, o.seed, 1500, &o.id);
			REQUIRE(r == 0, "round %d: put: %s (%llu rows free)", round, strerror(-r),
			        (unsigned long long)pool_rows_in_state(store_pool(s), ROW_FREE));
			REQUIRE(store_commit(s, &e) == 0, "round %d: commit: %s", round, e.msg);
			live[n++] = o;
		}
		while (n > 6) {
			int i = (int)bks_rng_below(&rng, (uint64_t)n);
			REQUIRE(store_delete(s, live[i].id) == 0, "round %d: delete", round);
			live[i] = live[--n];
		}
		REQUIRE(store_commit(s, &e) == 0, "round %d: commit deletes: %s", round, e.msg);
		/* The cut: in the sweep and moves, while new objects are put and synced
		 * between the steps (rounds % 4 == 0); after the victims are freed and a
		 * new object is written, before the commit (1); inside the commit (2);
		 * inside an intent-log sync of a new object written after the moves (3). */
		int kind = round % 4;
		enum flt_pc_mode mode = round % 8 < 4 ? FLT_PC_DROP : FLT_PC_REORDER;
		struct pobj extra[PC_EXTRA];
		int synced[PC_EXTRA] = {0}, nextra = 0;
		if (kind == 0)
			flt_arm_powercut(w, 1 + bks_rng_below(&rng, 200), mode);
		r = store_gc_start(s, 0.5);
		while (r == 0 && (r = store_gc_step(s)) > 0) {
			r = 0;
			if (kind == 0 && nextra < PC_EXTRA) {
				struct pobj o = {0, seed++};
				if (tu_store_put_seed(s, o.seed, EXTRA_LEN, &o.id) < 0)
					break;
				/* A sync cut short may still have made it durable. */
				extra[nextra++] = o;
				if (store_sync(s, o.id, NULL) < 0)
					break;
				synced[nextra - 1] = 1;
			}
		}
		store_gc_stats gs;
		store_gc_get_stats(s, &gs);
		mid_pass += flt_is_dead(w);
		if (r == 0 && !flt_is_dead(w)) {
			compacted_rounds += gs.meta_rows_compacted > 0;
			if (kind == 1 || kind == 3) {
				struct pobj o = {0, seed++};
				if (tu_store_put_seed(s, o.seed, EXTRA_LEN, &o.id) == 0) {
					extra[nextra++] = o;
					if (kind == 3) {
						flt_arm_powercut(w, 2 + bks_rng_below(&rng, 6), mode);
						synced[nextra - 1] = store_sync(s, o.id, NULL) == 0;
					}
					if (!flt_is_dead(w))
						flt_arm_powercut(w, 1 + bks_rng_below(&rng, kind == 1 ? 1 : 12),
						                 mode);
					store_commit(s, NULL);
				}
			} else if (kind == 2) {
				flt_arm_powercut(w, 1 + bks_rng_below(&rng, 12), mode);
				store_commit(s, NULL);
			} else {
				store_commit(s, NULL);
			}
		}
		int dead = flt_is_dead(w);
		store_close(s);
		flt_world_free(w);
		if (!dead) {
			/* Not cut (a commit finished first): the new objects are committed. */
			for (int i = 0; i < nextra && n < PC_MAX; i++)
				live[n++] = extra[i];
			continue;
		}
		cuts++;
		a = tu_import_array(paths, N, NULL);
		REQUIRE(a, "cut %d: import", cuts);
		r = store_open(a, NULL, &s, &e);
		REQUIRE(r == 0, "cut %d (kind %d): open: %s", cuts, kind, bks_errmsg(&e, r));
		int bad = 0;
		for (int i = 0; i < n; i++)
			bad += !tu_store_same_seed(s, live[i].id, live[i].seed, 1500);
		CHECK(bad == 0, "cut %d (kind %d): %d of %d objects differ", cuts, kind, bad, n);
		for (int i = 0; i < nextra; i++) {
			store_obj_info in;
			int there = store_stat(s, extra[i].id, &in) == 0;
			if (synced[i])
				CHECK(there, "cut %d (kind %d): synced object %llu is missing", cuts, kind,
				      (unsigned long long)extra[i].id);
			if (!there)
				continue;
			extras_kept++;
			CHECK(tu_store_same_seed(s, extra[i].id, extra[i].seed, EXTRA_LEN),
			      "cut %d (kind %d): object %llu differs", cuts, kind,
			      (unsigned long long)extra[i].id);
			if (n < PC_MAX)
				live[n++] = extra[i];
		}
		/* Objects put after the cut's commit are not there: verify counts what is. */
		store_stats st;
		store_get_stats(s, &st);
		CHECK(st.objects == (uint64_t)n, "cut %d (kind %d): %llu objects, expected %d", cuts,
		      kind, (unsigned long long)st.objects, n);
		CHECK(tu_store_verify_clean(s, st.objects), "cut %d (kind %d): verify", cuts, kind);
		store_close(s);
	}
	printf("power cuts during metadata compaction: %d cuts in %d rounds (%d in the "
	       "middle of a pass, between syncs); %d rounds compacted metadata rows; %d objects "
	       "written during or after a pass survived their cut\n", cuts, PC_ROUNDS, mid_pass,
	       compacted_rounds, extras_kept);
	CHECK(mid_pass > 0, "no cut landed in the middle of a pass");
	CHECK(cuts >= PC_ROUNDS / 2, "only %d cuts", cuts);
	CHECK(compacted_rounds >= PC_ROUNDS / 4, "only %d rounds compacted", compacted_rounds);
	return 0;
}

int main(void)
{
	const char *dir = tu_tmpdir("store-meta-compact");
	small_objects(dir, 0);
	small_objects(dir, 1);
	big_object(dir);
	powercut();
	return tu_finish();
}
