/* test-lun-snapshot: the LUN list of the status document (lun_list_snapshot, what
 * GET /api/v1/status and bkstorctl status show) never waits for appl.mu, and is
 * never stale after a change:
 *  - with appl.mu held by another thread (a backup in the middle of a put), the list
 *    comes back at once, with the LUNs of the last list (lun_list, which the status
 *    document used before, waits until the lock is free: here 10 s, a failure);
 *  - with appl.mu free, a write's bytes and an open handle are in the list at once;
 *  - after a create, with appl.mu held, the list waits for the lock rather than
 *    leave the new LUN out; after a delete, the same (the LUN is gone);
 *  - with nothing changed since, appl.mu held again: at once, the same LUNs. */
#include <config.h>

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/appl.h"
#include "daemon/lun.h"
#include "fs/ns.h"
#include "tests/testutil.h"
#include "tests/tu_appl.h"

#define NDISK 6
#define DISK_MB 64

static appl ap;
static char *paths[NDISK];

/* What one call of lun_list_snapshot saw. */
struct seen {
	int n;
	char names[8][LUN_NAME_MAX + 1];
	uint64_t written[8];
	int open[8];
};

static int seen_cb(void *ctx, const lun_info *li)
{
	struct seen *s = ctx;
	if (s->n < 8) {
		snprintf(s->names[s->n], sizeof(s->names[0]), "%s", li->name);
		s->written[s->n] = li->written_bytes;
		s->open[s->n] = li->open_count;
	}
	s->n++;
	return 0;
}

static int find(const struct seen *s, const char *name)
{
	for (int i = 0; i < s->n && i < 8; i++)
		if (!strcmp(s->names[i], name))
			return i;
	return -1;
}

/* lun_list_snapshot on a thread of its own, so the test can see whether it waits. */
struct call {
	lun_set *ls;
	struct seen seen;
	int r;
	int done; /* atomic */
	pthread_t th;
};

static void *call_main(void *arg)
{
	struct call *c = arg;
	c->r = lun_list_snapshot(c->ls, seen_cb, &c->seen);
	__atomic_store_n(&c->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void call_start(struct call *c, lun_set *ls)
{
	memset(c, 0, sizeof(*c));
	c->ls = ls;
	REQUIRE_EXIT(pthread_create(&c->th, NULL, call_main, c) == 0, "thread");
}

/* 1 once the call is done, 0 if it still runs after ms milliseconds. */
static int call_wait(struct call *c, int ms)
{
	for (int i = 0; i < ms / 10; i++) {
		if (__atomic_load_n(&c->done, __ATOMIC_ACQUIRE))
			return 1;
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	return __atomic_load_n(&c->done, __ATOMIC_ACQUIRE);
}

int main(void)
{
	const char *dir = tu_tmpdir_in("lun-snapshot", "/dev/shm");
	bks_err e = {0};
	store *s = NULL;
	lun_set *ls = NULL;
	lun *l = NULL;
	struct call c;
	int r;

	arr *a = tu_make_array(dir, NDISK, DISK_MB, NULL, paths);
	REQUIRE((r = store_create(a, NULL, &s, &e)) == 0, "store_create: %s", bks_errmsg(&e, r));
	REQUIRE((r = ns_format(s, 0755, &e)) == 0, "ns_format: %s", bks_errmsg(&e, r));
	REQUIRE(tu_appl_up(&ap, s) == 0, "appl");
	REQUIRE((r = lun_set_open(&ap, &ls, &e)) == 0, "lun_set_open: %s", bks_errmsg(&e, r));
	REQUIRE(lun_create(ls, "a", 8 << 20, 512, "", &e) == 0, "create a");
	REQUIRE(lun_create(ls, "b", 8 << 20, 4096, "", &e) == 0, "create b");

	/* appl.mu free: the list as it is. */
	call_start(&c, ls);
	CHECK(call_wait(&c, 10000) && c.r == 0 && c.seen.n == 2 && find(&c.seen, "a") >= 0 &&
	      find(&c.seen, "b") >= 0, "lock free: the list has a and b (%d LUNs)", c.seen.n);
	pthread_join(c.th, NULL);

	/* appl.mu held (a backup): the list at once, from the last one. */
	pthread_mutex_lock(&ap.mu);
	call_start(&c, ls);
	int quick = call_wait(&c, 10000);
	CHECK(quick, "lock held: the list came back without waiting for appl.mu");
	pthread_mutex_unlock(&ap.mu);
	pthread_join(c.th, NULL);
	CHECK(c.r == 0 && c.seen.n == 2, "lock held: the last list, a and b (%d LUNs)", c.seen.n);

	/* appl.mu free: a write and an open handle show at once. */
	uint8_t buf[65536];
	memset(buf, 0x5a, sizeof(buf));
	REQUIRE(lun_open(ls, "a", &l) == 0, "lun_open a");
	for (int i = 0; i < 16; i++)
		REQUIRE(lun_write(l, (uint64_t)i * sizeof(buf), buf, sizeof(buf), 0) == 0, "write");
	call_start(&c, ls);
	REQUIRE(call_wait(&c, 10000), "lock free: done");
	pthread_join(c.th, NULL);
	int ia = find(&c.seen, "a");
	CHECK(ia >= 0 && c.seen.written[ia] == 16 * sizeof(buf) && c.seen.open[ia] == 1,
	      "lock free: a shows its %zu bytes written (%llu) and its open handle (%d)",
	      16 * sizeof(buf), ia >= 0 ? (unsigned long long)c.seen.written[ia] : 0ull,
	      ia >= 0 ? c.seen.open[ia] : -1);
	lun_close(l);

	/* A create, then appl.mu held: the list waits rather than leave c out. */
	REQUIRE(lun_create(ls, "c", 8 << 20, 512, "", &e) == 0, "create c");
	pthread_mutex_lock(&ap.mu);
	call_start(&c, ls);
	int early = call_wait(&c, 300);
	pthread_mutex_unlock(&ap.mu);
	REQUIRE(call_wait(&c, 10000), "after the create: done once the lock was free");
	pthread_join(c.th, NULL);
	CHECK(c.seen.n == 3 && find(&c.seen, "c") >= 0, "after the create: the list has c (%d "
	      "LUNs; it %s for the lock)", c.seen.n, early ? "did not wait" : "waited");

	/* Nothing changed since: appl.mu held, at once, the same three. */
	pthread_mutex_lock(&ap.mu);
	call_start(&c, ls);
	quick = call_wait(&c, 10000);
	pthread_mutex_unlock(&ap.mu);
	pthread_join(c.th, NULL);
	CHECK(quick && c.seen.n == 3, "no change, lock held: at once, 3 LUNs (%d)", c.seen.n);

	/* A delete, then appl.mu held: b is gone from the list. */
	REQUIRE(lun_delete(ls, "b", &e) == 0, "delete b");
	pthread_mutex_lock(&ap.mu);
	call_start(&c, ls);
	call_wait(&c, 300);
	pthread_mutex_unlock(&ap.mu);
	REQUIRE(call_wait(&c, 10000), "after the delete: done");
	pthread_join(c.th, NULL);
	CHECK(c.seen.n == 2 && find(&c.seen, "b") < 0 && find(&c.seen, "a") >= 0 &&
	      find(&c.seen, "c") >= 0, "after the delete: a and c, no b (%d LUNs)", c.seen.n);

	lun_set_close(ls);
	ns_close(ap.n);
	store_close(ap.s);
	tu_cleanup();
	return tu_finish();
}
