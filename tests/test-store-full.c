/* test-store-full: a full array recovers without a restart.
 *
 * Fill the store with distinct 2 MiB objects until a put is refused (-ENOSPC). The
 * refusal must be clean: the store says it is full, the free rows it keeps for
 * commits are still there, a new writer is refused at once, a commit succeeds (the
 * old code latched the pool read-only here: every commit failed with ENOSPC, then
 * EROFS), and every stored object reads back exact. Then delete half, collect
 * garbage with the default min_live (0.5), and put again: accepted. Commit, close,
 * reopen: verify is clean and every surviving object reads back exact. A second
 * round fills the reopened store again and recovers again, this time with a commit
 * after every delete while full (commits that free nothing must leave room for the
 * one after the collector), then the collector in steps; before that, deletes synced
 * through the intent log while full and a close without commit: the reopen replays
 * them (its commit may use the reserve). */
#include <config.h>

#include "tests/testutil.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dedup/store.h"

#define N 6
#define OBJ (2u << 20)
#define MAXOBJ 256

static uint8_t *buf;

static void content(uint64_t seed)
{
	tu_fill(seed, 7, 0, buf, OBJ);
}

static int same(store *s, uint64_t id, uint64_t seed)
{
	content(seed);
	return tu_store_same(s, id, buf, OBJ);
}

struct obj {
	uint64_t id, seed;
	int live;
};
static struct obj objs[MAXOBJ];
static int nobj;
static uint64_t next_seed = 1000;

/* Put new objects until one is refused; returns how many went in, or -1 when
 * something other than -ENOSPC went wrong. */
static int fill(store *s)
{
	int put = 0;
	for (;;) {
		if (nobj == MAXOBJ)
			return -1;
		uint64_t seed = next_seed++;
		content(seed);
		uint64_t id;
		int r = store_put(s, buf, OBJ, &id);
		if (r == -ENOSPC)
			return put;
		if (r < 0) {
			fprintf(stderr, "  put: %s\n", strerror(-r));
			return -1;
		}
		objs[nobj++] = (struct obj){id, seed, 1};
		put++;
	}
}

static int all_read_back(store *s, uint64_t *live)
{
	int ok = 1;
	*live = 0;
	for (int i = 0; i < nobj; i++)
		if (objs[i].live) {
			(*live)++;
			ok &= same(s, objs[i].id, objs[i].seed);
		}
	return ok;
}

static void show(store *s, const char *when)
{
	store_stats st;
	store_get_stats(s, &st);
	printf("%s: %llu objects, rows free %llu of %llu, reserved %llu (commit %llu), full %d, "
	       "refusals %llu\n", when, (unsigned long long)st.objects,
	       (unsigned long long)st.rows_free, (unsigned long long)st.rows_total,
	       (unsigned long long)st.rows_reserved, (unsigned long long)st.rows_reserved_commit,
	       st.full, (unsigned long long)st.space_refusals);
}

/* The checks right after a fill was refused. */
static void check_full(store *s, bks_err *e)
{
	store_stats st;
	store_get_stats(s, &st);
	CHECK(st.full == 1 && store_space_full(s), "the store says it is full");
	CHECK(st.rows_free <= st.rows_reserved, "free rows %llu are down to the reserve %llu",
	      (unsigned long long)st.rows_free, (unsigned long long)st.rows_reserved);
	CHECK(st.rows_free >= st.rows_reserved_commit,
	      "new data did not touch the commit reserve (%llu free, %llu kept for commits)",
	      (unsigned long long)st.rows_free, (unsigned long long)st.rows_reserved_commit);
	store_writer *w = NULL;
	int r = store_put_begin(s, &w);
	CHECK(r == -ENOSPC, "a new writer is refused at once: %d", r);
	if (r == 0)
		store_put_abort(w);
	uint64_t id;
	r = store_put(s, "x", 1, &id);
	CHECK(r == -ENOSPC, "even a 1-byte object is refused: %d", r);
	r = store_commit(s, e);
	CHECK(r == 0, "a commit still succeeds: %s", bks_errmsg(e, r));
	r = store_commit(s, e);
	CHECK(r == 0, "and another: %s", bks_errmsg(e, r));
}

int main(void)
{
	const char *dir = tu_tmpdir("store-full");
	char *paths[N];
	store *s = NULL;
	bks_err e = {0};
	uint64_t live;
	buf = malloc(OBJ);
	REQUIRE(buf, "memory");

	arr *a = tu_make_array(dir, N, 40, NULL, paths);
	REQUIRE(store_create(a, NULL, &s, &e) == 0, "store: %s", e.msg);
	show(s, "empty");

	/* Round 1: fill, recover with delete + gc_run. */
	int n1 = fill(s);
	show(s, "full");
	REQUIRE(n1 > 10, "filled with %d objects before the refusal", n1);
	check_full(s, &e);
	CHECK(all_read_back(s, &live) && live == (uint64_t)n1, "all %d objects read back", n1);
	CHECK(tu_store_verify_clean(s, (uint64_t)n1), "verify when full");

	for (int i = 0; i < nobj; i += 2) {
		CHECK(store_delete(s, objs[i].id) == 0, "delete %llu", (unsigned long long)objs[i].id);
		objs[i].live = 0;
	}
	int r = store_commit(s, &e);
	CHECK(r == 0, "commit the deletes: %s", bks_errmsg(&e, r));
	r = store_gc_run(s, 0.5);
	CHECK(r == 0, "gc: %s", strerror(-r));
	store_gc_stats gs;
	store_gc_get_stats(s, &gs);
	printf("gc: %llu rows freed, %llu segments compacted, %llu skipped for room\n",
	       (unsigned long long)gs.rows_freed, (unsigned long long)gs.segments_compacted,
	       (unsigned long long)gs.segments_skipped);
	show(s, "after gc");
	CHECK(!store_space_full(s), "no longer full after delete + gc");
	int again = 0;
	for (int i = 0; i < n1 / 4; i++) {
		uint64_t seed = next_seed++, id;
		content(seed);
		r = store_put(s, buf, OBJ, &id);
		if (r != 0) {
			fprintf(stderr, "  put after gc: %s\n", strerror(-r));
			break;
		}
		objs[nobj++] = (struct obj){id, seed, 1};
		again++;
	}
	CHECK(again == n1 / 4, "puts accepted again after gc (%d of %d)", again, n1 / 4);
	r = store_commit(s, &e);
	CHECK(r == 0, "commit: %s", bks_errmsg(&e, r));
	store_close(s);

	a = tu_import_array(paths, N, NULL);
	REQUIRE(a && store_open(a, NULL, &s, &e) == 0, "reopen: %s", e.msg);
	CHECK(all_read_back(s, &live), "every surviving object reads back after reopen");
	CHECK(tu_store_verify_clean(s, live), "verify after reopen (%llu objects)", (unsigned long long)live);

	/* Round 2: fill the reopened store; recover the daemon's way: deletes and
	 * commits while full, then the collector in steps, then a commit. */
	int n2 = fill(s);
	show(s, "full again");
	CHECK(n2 > 0, "round 2 filled %d more objects", n2);
	check_full(s, &e);
	/* Deletes synced through the intent log while full, then a crash (close without
	 * a commit): the replay at open commits, and must find its rows. */
	int synced = 0;
	uint64_t keep_id = 0;
	for (int i = nobj - 1; i >= 0; i--) {
		if (!objs[i].live)
			continue;
		if (synced == 3) {
			keep_id = objs[i].id;
			break;
		}
		CHECK(store_delete(s, objs[i].id) == 0, "delete before the sync");
		objs[i].live = 0;
		synced++;
	}
	/* A sync makes every change before it durable (the deletes with it). */
	r = store_sync(s, keep_id, &e);
	CHECK(r == 0, "sync after deletes while full: %s", bks_errmsg(&e, r));
	store_close(s);
	a = tu_import_array(paths, N, NULL);
	REQUIRE(a && store_open(a, NULL, &s, &e) == 0, "reopen of a full store with a log to "
	        "replay: %s", e.msg);
	store_stats rs;
	store_get_stats(s, &rs);
	CHECK(rs.log_replayed > 0, "the log was replayed (%llu records)",
	      (unsigned long long)rs.log_replayed);
	for (int i = 0; i < nobj; i++)
		if (!objs[i].live && objs[i].id) {
			store_obj_info in;
			if (store_stat(s, objs[i].id, &in) == 0) {
				CHECK(0, "deleted object %llu is back", (unsigned long long)objs[i].id);
				break;
			}
		}
	CHECK(all_read_back(s, &live), "every object reads back after the replay");
	/* A commit after every delete: commits that give nothing back may drain the
	 * reserve down to one commit's worth, then fail cleanly (-ENOSPC, retried
	 * later); the commit after the collector must still go through. */
	int deleted = 0, refused = 0, other = 0;
	for (int i = 0; i < nobj; i++) {
		if (!objs[i].live || (i % 3) == 0)
			continue;
		CHECK(store_delete(s, objs[i].id) == 0, "delete");
		objs[i].live = 0;
		deleted++;
		r = store_commit(s, &e);
		refused += r == -ENOSPC;
		other += r != 0 && r != -ENOSPC;
	}
	printf("round 2: %d deletes, each followed by a commit: %d commits refused for room\n",
	       deleted, refused);
	CHECK(other == 0, "commits while full either succeed or say ENOSPC");
	show(s, "after the deletes");
	r = store_gc_start(s, 0.5);
	CHECK(r == 0, "gc start");
	while ((r = store_gc_step(s)) > 0)
		;
	CHECK(r == 0, "gc steps: %s", strerror(-r));
	r = store_commit(s, &e);
	CHECK(r == 0, "commit after gc: %s", bks_errmsg(&e, r));
	show(s, "after gc 2");
	CHECK(!store_space_full(s), "not full after round 2's deletes and gc");
	int n3 = fill(s);
	CHECK(n3 > 0, "and it takes new objects again (%d)", n3);
	show(s, "full a third time");
	check_full(s, &e);
	CHECK(all_read_back(s, &live), "every object reads back");
	CHECK(tu_store_verify_clean(s, live), "verify");
	store_close(s);

	a = tu_import_array(paths, N, NULL);
	REQUIRE(a && store_open(a, NULL, &s, &e) == 0, "reopen 2: %s", e.msg);
	CHECK(all_read_back(s, &live), "every object reads back after the last reopen");
	CHECK(tu_store_verify_clean(s, live), "verify after the last reopen (%llu objects)",
	      (unsigned long long)live);
	store_close(s);
	free(buf);
	return tu_finish();
}
