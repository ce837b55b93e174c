/* test-store-gc: generations 1-5 stored, 1-4 deleted, garbage collected while
 * generation 6 is being written (GC steps interleaved with the stream); afterwards
 * the store's physical usage is at most 1.15 x what generations 5 and 6 alone need
 * in a fresh store, generations 5 and 6 read back identical, verify is clean, and a
 * reopen sees the same. */
#include <config.h>

#include "tests/testutil.h"

#include <stdlib.h>
#include <string.h>

#include "dedup/store.h"

#define N 6
#define GENS 6

static uint8_t *gen(const char *dir, int g, size_t *len)
{
	char p[600];
	snprintf(p, sizeof(p), "%s/gen%02d.img", dir, g);
	return tu_read_file(p, len);
}

int main(void)
{
	const char *dir = tu_tmpdir("store-gc");
	char *paths[N], *paths2[N], sub[600];
	store *s = NULL, *s2 = NULL;
	bks_err e = {0};
	uint64_t ids[GENS + 1];
	size_t len[GENS + 1];
	uint8_t *data[GENS + 1];

	REQUIRE(tu_generations(dir, 24u << 20, GENS, 0.02, 3) == 0, "generations");
	for (int g = 1; g <= GENS; g++)
		REQUIRE((data[g] = gen(dir, g, &len[g])), "gen %d", g);

	/* Reference: generations 5 and 6 alone. */
	snprintf(sub, sizeof(sub), "%s/ref", dir);
	tu_mkdir(sub);
	arr *a2 = tu_make_array(sub, N, 96, NULL, paths2);
	REQUIRE(store_create(a2, NULL, &s2, &e) == 0, "ref store: %s", e.msg);
	REQUIRE(store_put(s2, data[5], len[5], &ids[0]) == 0, "ref put 5");
	REQUIRE(store_put(s2, data[6], len[6], &ids[0]) == 0, "ref put 6");
	REQUIRE(store_commit(s2, &e) == 0, "ref commit");
	store_stats ref;
	store_get_stats(s2, &ref);
	store_close(s2);

	arr *a = tu_make_array(dir, N, 96, NULL, paths);
	REQUIRE(store_create(a, NULL, &s, &e) == 0, "store: %s", e.msg);
	for (int g = 1; g <= 5; g++) {
		REQUIRE(store_put(s, data[g], len[g], &ids[g]) == 0, "put %d", g);
		REQUIRE(store_commit(s, &e) == 0, "commit %d: %s", g, e.msg);
	}
	store_stats st;
	store_get_stats(s, &st);
	printf("5 generations: physical %llu, dedup %.2f\n", (unsigned long long)st.physical_bytes,
	       st.dedup_ratio);
	for (int g = 1; g <= 4; g++)
		CHECK(store_delete(s, ids[g]) == 0, "delete %d", g);
	REQUIRE(store_commit(s, &e) == 0, "commit deletes");

	/* Generation 6 streams in while the collector runs. */
	store_writer *w;
	REQUIRE(store_put_begin(s, &w) == 0, "begin 6");
	size_t piece = 256 << 10, off = 0;
	REQUIRE(store_put_write(w, data[6], piece) == 0, "write 6");
	off = piece;
	REQUIRE(store_gc_start(s, 0.8) == 0, "gc start");
	int steps = 0, more = 1;
	while (off < len[6] || more) {
		if (off < len[6]) {
			size_t n = BKS_MIN(piece, len[6] - off);
			CHECK(store_put_write(w, data[6] + off, n) == 0, "write 6 at %zu", off);
			off += n;
		}
		if (more) {
			more = store_gc_step(s);
			CHECK(more >= 0, "gc step: %d", more);
			more = more > 0;
			steps++;
		}
	}
	REQUIRE(store_put_end(w, &ids[6]) == 0, "end 6");
	store_gc_stats gs;
	store_gc_get_stats(s, &gs);
	printf("gc: %d steps, %llu segments scanned, %llu freed, %llu compacted, %llu chunks "
	       "moved, %llu rows freed, live %llu dead %llu\n", steps,
	       (unsigned long long)gs.segments_scanned, (unsigned long long)gs.segments_freed,
	       (unsigned long long)gs.segments_compacted, (unsigned long long)gs.chunks_moved,
	       (unsigned long long)gs.rows_freed, (unsigned long long)gs.live_bytes,
	       (unsigned long long)gs.dead_bytes);
	CHECK(gs.rows_freed > 0, "the collector freed rows");
	REQUIRE(store_commit(s, &e) == 0, "commit after gc: %s", e.msg);
	/* A second round cleans what the first could not (segments the stream was
	 * using, metadata superseded by the commit). */
	int gr = store_gc_run(s, 0.8);
	REQUIRE(gr == 0, "second gc: %s", strerror(-gr));
	store_get_stats(s, &st);
	double ratio = (double)st.physical_bytes / (double)ref.physical_bytes;
	printf("after gc: physical %llu (data rows %llu, meta rows %llu); generations 5+6 alone "
	       "%llu (data %llu, meta %llu): ratio %.3f\n", (unsigned long long)st.physical_bytes,
	       (unsigned long long)st.rows_data, (unsigned long long)st.rows_meta,
	       (unsigned long long)ref.physical_bytes, (unsigned long long)ref.rows_data,
	       (unsigned long long)ref.rows_meta, ratio);
	CHECK(ratio <= 1.15, "physical %.3f x what generations 5 and 6 need", ratio);
	CHECK(tu_store_same(s, ids[5], data[5], len[5]), "gen 5 reads back");
	CHECK(tu_store_same(s, ids[6], data[6], len[6]), "gen 6 reads back");
	store_verify_report vr;
	CHECK(store_verify(s, &vr) == 0 && vr.chunks_bad == 0 && vr.objects == 2, "verify");
	store_close(s);

	a = tu_import_array(paths, N, NULL);
	REQUIRE(a && store_open(a, NULL, &s, &e) == 0, "reopen: %s", e.msg);
	CHECK(tu_store_same(s, ids[5], data[5], len[5]), "gen 5 after reopen");
	CHECK(tu_store_same(s, ids[6], data[6], len[6]), "gen 6 after reopen");
	store_close(s);
	for (int g = 1; g <= GENS; g++)
		free(data[g]);
	return tu_finish();
}
