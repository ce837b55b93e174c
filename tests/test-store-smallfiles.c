/* test-store-smallfiles: many small objects, each synced (what NFS COMMIT and iSCSI
 * SYNCHRONIZE CACHE will do all day).
 *  - 10 000 objects of 1 KiB, each followed by store_sync; a few larger ones between
 *    them, so syncs both carry open segments in the log and write full rows;
 *  - crashes (close without commit) at three points: every synced object reads back
 *    exact, the space accounting matches a scan of the segments, the store goes on;
 *  - after a commit and a GC pass the physical bytes are at most 4 x the logical
 *    bytes plus one row per transaction group (each sync used to seal a part-full data
 *    row and a part-full metadata row: 300 files left 308 rows);
 *    and the metadata rows left after GC hold at most 1 KiB per file;
 *  - verify is clean.
 * Runs on /dev/shm when it can: the subject is space, not the disks' flush cost. */
#include <config.h>

#include "tests/testutil.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dedup/store.h"
#include "dedup/store_int.h" /* store_pool: white-box counts of rows */

#define N 6
#define DISK_MB 96
#define NFILES 10000
#define SMALL 1024
#define BIG (3u << 20)

static size_t size_of(int i)
{
	return i % 2499 == 1000 ? BIG : SMALL;
}

/* Half compressible, half not: a realistic small file. */
static void content(int i, uint8_t *buf, size_t len)
{
	tu_fill(1000 + (uint64_t)i, 0, 0, buf, len);
	for (size_t j = 0; j < len / 2; j++)
		buf[j] = (uint8_t)('a' + (j * 7 + (size_t)i) % 23);
}

static int same(store *s, uint64_t id, int i)
{
	size_t len = size_of(i);
	uint8_t *want = malloc(len + 1);
	content(i, want, len);
	int ok = tu_store_same(s, id, want, len);
	free(want);
	return ok;
}

static store *reopen(char **paths, bks_err *e)
{
	(void)e;
	return tu_store_reopen(paths, N, NULL);
}

int main(void)
{
	const char *dir = tu_tmpdir_in("store-smallfiles", "/dev/shm");
	char *paths[N];
	bks_err e = {0};
	store *s = NULL;
	uint64_t *ids = calloc(NFILES, sizeof(*ids));
	uint8_t *buf = malloc(BIG);
	uint64_t logical = 0, syncs = 0, commits = 0;
	store_stats st;
	int r;

	REQUIRE(ids && buf, "memory");
	arr *a = tu_make_array(dir, N, DISK_MB, NULL, paths);
	r = store_create(a, NULL, &s, &e);
	REQUIRE(r == 0, "create: %s", bks_errmsg(&e, r));
	uint64_t txg0 = pool_txg(store_pool(s));
	uint32_t row_bytes = pool_row_bytes(store_pool(s));

	for (int i = 0; i < NFILES; i++) {
		size_t len = size_of(i);
		content(i, buf, len);
		r = store_put(s, buf, len, &ids[i]);
		REQUIRE(r == 0, "put %d: %s", i, strerror(-r));
		r = store_sync(s, ids[i], &e);
		REQUIRE(r == 0, "sync %d: %s", i, bks_errmsg(&e, r));
		logical += len;
		if (i == 2500 || i == 5000 || i == 7777) {
			/* A crash: no commit since the last one the log forced. */
			store_get_stats(s, &st);
			syncs += st.log_syncs;
			commits += st.log_full_commits;
			uint64_t txg = pool_txg(store_pool(s));
			store_close(s);
			s = reopen(paths, &e);
			REQUIRE(s, "reopen after crash at %d", i);
			store_get_stats(s, &st);
			CHECK(st.log_replayed > 0, "crash at %d: records replayed", i);
			CHECK(pool_txg(store_pool(s)) == txg + 1,
			      "crash at %d: the replay commits once", i);
			int bad = 0;
			for (int j = 0; j <= i; j++)
				bad += !same(s, ids[j], j);
			CHECK(bad == 0, "crash at %d: %d synced objects differ", i, bad);
			CHECK(st.objects == (uint64_t)i + 1, "crash at %d: %llu objects", i,
			      (unsigned long long)st.objects);
			tu_check_accounting(s, "after replay");
		}
	}
	store_get_stats(s, &st);
	syncs += st.log_syncs;
	commits += st.log_full_commits;
	fprintf(stderr, "syncs by the log %llu, commits because it was full %llu\n",
	        (unsigned long long)syncs, (unsigned long long)commits);
	CHECK(syncs > (uint64_t)NFILES * 9 / 10, "most syncs go to the log (%llu)",
	      (unsigned long long)syncs);

	r = store_commit(s, &e);
	REQUIRE(r == 0, "commit: %s", bks_errmsg(&e, r));
	store_get_stats(s, &st);
	fprintf(stderr, "before GC: rows data %llu meta %llu, physical %llu for logical %llu\n",
	        (unsigned long long)st.rows_data, (unsigned long long)st.rows_meta,
	        (unsigned long long)st.physical_bytes, (unsigned long long)st.logical_bytes);
	r = store_gc_run(s, 0.5);
	REQUIRE(r == 0, "gc: %s", strerror(-r));
	r = store_commit(s, &e);
	REQUIRE(r == 0, "commit: %s", bks_errmsg(&e, r));
	store_get_stats(s, &st);
	uint64_t txgs = pool_txg(store_pool(s)) - txg0;
	uint64_t bound = 4 * logical + txgs * row_bytes;
	fprintf(stderr, "after GC: rows data %llu meta %llu, physical %llu, logical %llu, "
	        "%llu txgs, bound %llu; metadata bytes per file %.0f\n",
	        (unsigned long long)st.rows_data, (unsigned long long)st.rows_meta,
	        (unsigned long long)st.physical_bytes, (unsigned long long)logical,
	        (unsigned long long)txgs, (unsigned long long)bound,
	        (double)st.rows_meta * row_bytes / NFILES);
	CHECK(st.logical_bytes == logical, "logical %llu, put %llu",
	      (unsigned long long)st.logical_bytes, (unsigned long long)logical);
	CHECK(st.physical_bytes <= bound, "physical %llu > bound %llu",
	      (unsigned long long)st.physical_bytes, (unsigned long long)bound);
	/* The collector compacts the part-full metadata rows the commits left: what
	 * remains is about the metadata itself (object record, map leaf, index entry). */
	CHECK((double)st.rows_meta * row_bytes / NFILES <= 1024,
	      "metadata %.0f bytes per file after GC", (double)st.rows_meta * row_bytes / NFILES);
	tu_check_accounting(s, "after GC");

	store_verify_report rep;
	memset(&rep, 0, sizeof(rep));
	r = store_verify(s, &rep);
	CHECK(r == 0 && rep.objects_damaged == 0 && rep.chunks_bad == 0,
	      "verify: %d, %llu damaged", r, (unsigned long long)rep.objects_damaged);
	store_close(s);
	s = reopen(paths, &e);
	REQUIRE(s, "reopen");
	int bad = 0;
	for (int j = 0; j < NFILES; j++)
		bad += !same(s, ids[j], j);
	CHECK(bad == 0, "after reopen: %d objects differ", bad);
	store_close(s);
	free(ids);
	free(buf);
	tu_cleanup();
	return tu_finish();
}
