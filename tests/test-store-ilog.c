/* test-store-ilog: the intent log behind store_sync.
 *  - a synced object survives a crash (close without commit); an unsynced one does
 *    not; a delete that was synced stays deleted; the replay commits (a second open
 *    replays nothing);
 *  - the log is mirrored: with two of its three copies destroyed the record still
 *    comes back; with all three destroyed the store opens at its last commit;
 *  - a sync on an array with two failed disks, replayed on the degraded array;
 *  - many syncs without a commit fill the log: syncs fall back to commits and every
 *    synced object is still there after a crash;
 *  - the space accounting after a replay matches a scan of the segments. */
#include <config.h>

#include "tests/testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dedup/store.h"
#include "dedup/store_int.h" /* store_pool: white-box counts of rows */
#include "storage/label.h"

#define N 6
#define DISK_MB 48

static uint64_t put(store *s, uint64_t seed, size_t len)
{
	uint64_t id = 0;
	return tu_store_put_seed(s, seed, len, &id) == 0 ? id : 0;
}

static store *reopen(char **paths, bks_err *e)
{
	(void)e;
	return tu_store_reopen(paths, N, NULL);
}

/* Overwrite the log area of disk i with garbage. */
static void smash_log(char **paths, int i)
{
	int fd = open(paths[i], O_WRONLY);
	uint8_t junk[4096];
	memset(junk, 0x5a, sizeof(junk));
	for (uint64_t off = 0; off < ARR_LOG_SIZE && fd >= 0; off += sizeof(junk))
		if (pwrite(fd, junk, sizeof(junk), ARR_LOG_OFF + off) != (ssize_t)sizeof(junk))
			break;
	if (fd >= 0)
		close(fd);
}

int main(void)
{
	const char *dir = tu_tmpdir("store-ilog");
	char *paths[N];
	bks_err e = {0};
	store *s = NULL;
	store_stats st;
	int r;

	arr *a = tu_make_array(dir, N, DISK_MB, NULL, paths);
	r = store_create(a, NULL, &s, &e);
	REQUIRE(r == 0, "create: %s", bks_errmsg(&e, r));

	/* 1. Synced vs not synced; a synced delete. */
	uint64_t keep = put(s, 1, 300000), gone = put(s, 2, 200000);
	REQUIRE(keep && gone, "puts");
	REQUIRE(store_commit(s, &e) == 0, "commit");
	uint64_t a1 = put(s, 3, 700000);
	REQUIRE(a1 && store_delete(s, gone) == 0, "put, delete");
	r = store_sync(s, a1, &e);
	CHECK(r == 0, "sync: %s", bks_errmsg(&e, r));
	uint64_t lost = put(s, 4, 100000); /* never synced */
	REQUIRE(lost, "put");
	store_obj_info lost_in;
	REQUIRE(store_stat(s, lost, &lost_in) == 0, "stat");
	store_close(s); /* a crash: no commit */
	s = reopen(paths, &e);
	REQUIRE(s, "reopen after sync");
	store_get_stats(s, &st);
	CHECK(st.log_replayed == 1, "%llu records replayed", (unsigned long long)st.log_replayed);
	CHECK(tu_store_same_seed(s, a1, 3, 700000), "synced object back");
	CHECK(tu_store_same_seed(s, keep, 1, 300000), "committed object back");
	store_obj_info in;
	CHECK(store_stat(s, gone, &in) == -ENOENT, "synced delete stays deleted");
	CHECK(store_stat(s, lost, &in) == -ENOENT, "unsynced object absent");
	CHECK(st.objects == 2, "%llu objects", (unsigned long long)st.objects);
	tu_check_accounting(s, "after replay");
	store_verify_report vr;
	CHECK(store_verify(s, &vr) == 0 && vr.chunks_bad == 0, "verify after replay");
	/* A new object may get the lost one's id, never its generation too. */
	uint64_t a2 = put(s, 5, 123456);
	store_obj_info a2_in;
	REQUIRE(store_stat(s, a2, &a2_in) == 0, "stat a2");
	CHECK(a2 != lost || a2_in.gen != lost_in.gen, "(id, gen) (%llu, %llu) reused",
	      (unsigned long long)a2, (unsigned long long)a2_in.gen);
	store_close(s);
	s = reopen(paths, &e);
	REQUIRE(s, "second reopen");
	store_get_stats(s, &st);
	CHECK(st.log_replayed == 0, "the replay was committed (%llu replayed again)",
	      (unsigned long long)st.log_replayed);
	CHECK(tu_store_same_seed(s, a1, 3, 700000), "synced object still back");
	printf("ok - synced objects and deletes survive a crash, unsynced ones do not\n");

	/* 2. Mirrored: two of three copies destroyed. */
	uint64_t b1 = put(s, 6, 400000);
	REQUIRE(b1 && store_sync(s, b1, &e) == 0, "sync b1");
	store_close(s);
	smash_log(paths, 0);
	smash_log(paths, 1);
	s = reopen(paths, &e);
	REQUIRE(s, "reopen with two log copies gone");
	CHECK(tu_store_same_seed(s, b1, 6, 400000), "record came back from the third copy");
	uint64_t b2 = put(s, 7, 400000);
	REQUIRE(b2 && store_sync(s, b2, &e) == 0, "sync b2");
	store_close(s);
	for (int i = 0; i < N; i++)
		smash_log(paths, i);
	s = reopen(paths, &e);
	REQUIRE(s, "reopen with every log copy gone");
	CHECK(store_stat(s, b2, &in) == -ENOENT, "no copy, no record: last commit");
	CHECK(tu_store_same_seed(s, b1, 6, 400000), "earlier replayed object intact");
	tu_check_accounting(s, "no log");
	printf("ok - the log is mirrored; a destroyed log falls back to the last commit\n");

	/* 3. Degraded: two disks failed before the sync. */
	REQUIRE(arr_fail(pool_array(store_pool(s)), paths[0], &e) == 0,
	        "fail disk 0: %s", bks_errmsg(&e, -1));
	REQUIRE(arr_fail(pool_array(store_pool(s)), paths[3], &e) == 0, "fail disk 3");
	uint64_t c1 = put(s, 8, 900000);
	r = c1 ? store_sync(s, c1, &e) : -1;
	CHECK(r == 0, "degraded sync: %s", bks_errmsg(&e, r));
	store_close(s);
	s = reopen(paths, &e);
	REQUIRE(s, "reopen degraded");
	CHECK(tu_store_same_seed(s, c1, 8, 900000), "degraded sync replayed");
	tu_check_accounting(s, "degraded");
	store_close(s);
	printf("ok - sync and replay on an array with two failed disks\n");

	/* 4. A full log: syncs without commits until it is full. */
	for (int i = 0; i < N; i++)
		unlink(paths[i]);
	a = tu_make_array(dir, N, DISK_MB, NULL, paths);
	store_params sp;
	store_params_default(&sp);
	sp.auto_commit_bytes = 0;
	r = store_create(a, &sp, &s, &e);
	REQUIRE(r == 0, "create 2: %s", bks_errmsg(&e, r));
	uint64_t ids[200];
	int nids = 0;
	for (int i = 0; i < 200; i++) {
		ids[nids] = put(s, 100 + (uint64_t)i, 5000 + (size_t)i * 37);
		REQUIRE(ids[nids], "small put %d", i);
		REQUIRE(store_sync(s, ids[nids], &e) == 0, "sync %d: %s", i, bks_errmsg(&e, -1));
		nids++;
	}
	store_get_stats(s, &st);
	CHECK(st.log_full_commits > 0 && st.log_syncs > 50, "%llu syncs by log, %llu commits",
	      (unsigned long long)st.log_syncs, (unsigned long long)st.log_full_commits);
	printf("syncs by the log %llu, commits because it was full %llu\n",
	       (unsigned long long)st.log_syncs, (unsigned long long)st.log_full_commits);
	store_close(s);
	s = reopen(paths, &e);
	REQUIRE(s, "reopen after many syncs");
	int bad = 0;
	for (int i = 0; i < nids; i++)
		bad += !tu_store_same_seed(s, ids[i], 100 + (uint64_t)i, 5000 + (size_t)i * 37);
	CHECK(bad == 0, "%d of %d synced objects differ", bad, nids);
	tu_check_accounting(s, "full log");
	store_close(s);
	printf("ok - a full log turns syncs into commits; nothing synced is lost\n");
	return tu_finish();
}
