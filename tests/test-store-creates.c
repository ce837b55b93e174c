/* tests/test-store-creates.c: sustained synced small-file creates (what an NFS client
 * creating a backup share of many small files does: one CREATE, and a sync before
 * its reply, each).
 *
 * Every sync goes to the intent log; every ~20-100 of them fill it and force a commit,
 * which seals the open data and metadata segments as part-full rows (10-45 % full
 * here), nearly all dead a commit later: superseded directory pages and map leaves,
 * object table, index and row table blocks. Measured on this array (508 rows of
 * 1 MiB) with no collection: two rows per forced commit, the array full at 17 740
 * creates (what the store did before store_set_gc_auto, and what it does with it
 * off); a collection there took 0.02 s and freed all but a handful of rows.
 *
 *  - NFILES empty files created in one directory, each followed by ns_sync, with the
 *    automatic collection on (free below GC_FREE of the rows): every create and sync
 *    succeeds;
 *  - the rows in use never pass (1 - GC_FREE) of the array plus SLACK rows: the
 *    collection starts at the first commit below the mark, most of what it frees is
 *    wholly dead and freed by its first steps, and the sync that finishes it commits;
 *  - a crash (close without a commit), a reopen (the log is replayed): every file is
 *    there by lookup and by listing, nothing else;
 *  - after a final collection the rows in use are within what the live data and
 *    metadata need (2 x their bytes / row, each remaining row being at least half
 *    live, plus LIVE_SLACK rows: the commit's own and the open segments').
 * TEST_CREATES_AUTO=0 turns the automatic collection off (the old behaviour: fails).
 * Runs on /dev/shm when it can: the subject is space, not the disks' flush cost. */
#include "tests/testutil.h"

#include "dedup/store_int.h" /* store_pool: white-box counts of rows */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fs/ns.h"

#define NDISKS 6
#define STRIP (256u << 10)   /* 4 data strips: 1 MiB rows */
#define DISK_MB 128          /* 508 rows */
#define NFILES 60000
#define GC_FREE 0.25
#define SLACK 40
#define LIVE_SLACK 8

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static arr *make_array(const char *dir, char **paths)
{
	arr_config cfg;
	arr_config_defaults(&cfg);
	cfg.strip_size = STRIP;
	return tu_make_array_cfg(dir, NDISKS, 0, DISK_MB, &cfg, NULL, paths, NULL);
}

static void name_of(int i, char *buf, size_t cap)
{
	snprintf(buf, cap, "file-%08d.dat", i);
}

struct listing {
	int n, bad, last;
};

static int count_ent(void *ctx, const ns_dirent *d)
{
	struct listing *l = ctx;
	int i;
	char want[64];
	if (sscanf(d->name, "file-%d.dat", &i) != 1 || i < 0 || i >= NFILES || i <= l->last) {
		l->bad++;
		return 0;
	}
	name_of(i, want, sizeof(want));
	l->bad += strcmp(want, d->name) != 0 || d->type != NS_FILE;
	l->last = i;
	l->n++;
	return 0;
}

static uint64_t rows_used(store *s)
{
	pool_space_info si;
	pool_get_space(store_pool(s), &si);
	return pool_rows(store_pool(s)) - si.rows_free;
}

int main(void)
{
	const char *dir = tu_tmpdir_in("store-creates", "/dev/shm");
	const char *env = getenv("TEST_CREATES_AUTO");
	double gc_free = env ? atof(env) : GC_FREE;
	char *paths[NDISKS];
	bks_err e = {0};
	store *s = NULL;
	ns *n = NULL;
	ns_attr d;
	store_stats st;
	int r;

	arr *a = make_array(dir, paths);
	r = store_create(a, NULL, &s, &e);
	REQUIRE(r == 0, "create: %s", bks_errmsg(&e, r));
	r = ns_format(s, 0755, &e);
	REQUIRE(r == 0, "format: %s", bks_errmsg(&e, r));
	r = ns_open(s, &n, &e);
	REQUIRE(r == 0, "ns_open: %s", bks_errmsg(&e, r));
	r = ns_mkdir(n, ns_root(n), "share", 0755, 0, 0, &d);
	REQUIRE(r == 0, "mkdir: %s", strerror(-r));
	r = ns_commit(n, &e);
	REQUIRE(r == 0, "commit: %s", bks_errmsg(&e, r));
	store_set_gc_auto(s, gc_free, 0.5);

	pool *pl = store_pool(s);
	uint64_t rows = pool_rows(pl), txg0 = pool_txg(pl), peak = 0;
	uint32_t row_bytes = pool_row_bytes(pl);
	double t0 = now_s();
	int made = 0;
	for (int i = 0; i < NFILES; i++) {
		char name[64];
		ns_attr f;
		name_of(i, name, sizeof(name));
		if ((r = ns_create(n, d.id, name, 0644, 0, 0, 1, &f)) < 0) {
			fprintf(stderr, "create %d: %s\n", i, strerror(-r));
			break;
		}
		if ((r = ns_sync(n, f.id, &e)) < 0) {
			fprintf(stderr, "sync %d: %s\n", i, bks_errmsg(&e, r));
			break;
		}
		made++;
		peak = BKS_MAX(peak, rows_used(s));
		if ((i + 1) % 10000 == 0) {
			store_get_stats(s, &st);
			fprintf(stderr, "%6d creates: %llu rows used (peak %llu of %llu), %llu commits "
			        "(%llu forced by the full log), %llu collections started; %.1f s\n",
			        i + 1, (unsigned long long)rows_used(s), (unsigned long long)peak,
			        (unsigned long long)rows, (unsigned long long)(pool_txg(pl) - txg0),
			        (unsigned long long)st.log_full_commits,
			        (unsigned long long)st.gc_auto_started, now_s() - t0);
		}
	}
	store_get_stats(s, &st);
	fprintf(stderr, "%d of %d synced creates in %.1f s; peak %llu rows used of %llu; "
	        "%llu collections started by the store\n", made, NFILES, now_s() - t0,
	        (unsigned long long)peak, (unsigned long long)rows,
	        (unsigned long long)st.gc_auto_started);
	CHECK(made == NFILES, "only %d of %d creates succeeded", made, NFILES);
	uint64_t bound = (uint64_t)((1 - GC_FREE) * (double)rows) + SLACK;
	CHECK(peak <= bound, "peak rows used %llu > bound %llu", (unsigned long long)peak,
	      (unsigned long long)bound);
	CHECK(st.gc_auto_started > 0, "the store started no collection");

	/* A crash: no commit since the last one (forced, or the collection's). */
	ns_close(n);
	store_close(s);
	s = tu_store_reopen(paths, NDISKS, NULL);
	REQUIRE(s, "reopen after the crash");
	store_get_stats(s, &st);
	fprintf(stderr, "after the crash: %llu log records replayed\n",
	        (unsigned long long)st.log_replayed);
	r = ns_open(s, &n, &e);
	REQUIRE(r == 0, "ns_open after the crash: %s", bks_errmsg(&e, r));
	r = ns_lookup(n, ns_root(n), "share", &d);
	REQUIRE(r == 0, "share after the crash: %s", strerror(-r));
	int missing = 0;
	for (int i = 0; i < made; i++) {
		char name[64];
		ns_attr f;
		name_of(i, name, sizeof(name));
		missing += ns_lookup(n, d.id, name, &f) != 0 || f.type != NS_FILE || f.size != 0;
	}
	CHECK(missing == 0, "%d of %d files missing after the crash", missing, made);
	struct listing l = {0, 0, -1};
	r = ns_readdir(n, d.id, NULL, count_ent, &l);
	CHECK(r == 0 && l.n == made && l.bad == 0, "listing: %d entries (%d bad) of %d, %d", l.n,
	      l.bad, made, r);
	CHECK(d.size == (uint64_t)made, "directory size %llu, %d created",
	      (unsigned long long)d.size, made);

	/* What is left after a collection is what the files need. */
	r = store_gc_run(s, 0.5);
	CHECK(r == 0, "collection: %s", strerror(-r));
	store_gc_stats gs;
	store_gc_get_stats(s, &gs);
	uint64_t room = row_bytes - 4096;
	uint64_t live_rows = 2 * ((gs.live_bytes + gs.meta_live_bytes + room - 1) / room);
	fprintf(stderr, "after a collection: %llu rows used; live data %llu bytes, metadata "
	        "%llu bytes\n", (unsigned long long)rows_used(s),
	        (unsigned long long)gs.live_bytes, (unsigned long long)gs.meta_live_bytes);
	CHECK(rows_used(s) <= live_rows + LIVE_SLACK, "%llu rows used for %llu rows' worth of "
	      "live data and metadata", (unsigned long long)rows_used(s),
	      (unsigned long long)live_rows / 2);
	ns_close(n);
	store_close(s);
	tu_cleanup();
	return tu_finish();
}
