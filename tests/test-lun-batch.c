/* test-lun-batch: the LUN write-back cache applied in batches with appl.mu let go
 * (daemon/lun.c cache_apply_upto: plan under the lock, hash and compress without it,
 * apply under it again) while another thread keeps writing to the LUN:
 *  - a writer thread does 12 000 random writes (4 KiB blocks mostly, some of 512
 *    bytes to 16 KiB, some over blocks still cached, 1 in 40 with FUA, 1 in 100 an
 *    UNMAP), each recorded in a model once it returns;
 *  - a syncer thread calls lun_sync (SYNCHRONIZE CACHE) over and over meanwhile, so
 *    batches are planned while the writer changes the extents they hold (the
 *    extents changed meanwhile must stay cached) and the object (FUA, UNMAP: the
 *    apply is refused and the batch planned again);
 *  - every 2 000 writes, and at the end, the whole LUN read (cache over store)
 *    equals the model; after the last sync, the LUN closed, the store closed and
 *    opened again, it still does (what the syncs applied is what was written).
 * Content: 64 random bytes at the start of every 512-byte sector, zeros after (zstd
 * shrinks it; the CDC chunks and the store's garbage stay small). */
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
#define DISK_MB 128
#define LUN_SIZE (8u << 20)
#define WRITES 12000

static appl ap;
static char *paths[NDISK];
static uint8_t *model;
static int stop_sync;           /* atomic */
static uint64_t syncs;

/* The shared set-up (tests/tu_appl.c), with the fastest zstd level. */
static int appl_up(store *s)
{
	int r = tu_appl_up(&ap, s);
	ap.cfg.zstd_level = 1;
	return r;
}

static uint64_t rng = 88172645463325252ull;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void content(uint8_t *b, size_t len)
{
	memset(b, 0, len);
	for (size_t s = 0; s < len; s += 512)
		for (int i = 0; i < 64; i += 8) {
			uint64_t v = rnd();
			memcpy(b + s + i, &v, 8);
		}
}

static void *syncer(void *arg)
{
	lun *l = arg;
	while (!__atomic_load_n(&stop_sync, __ATOMIC_ACQUIRE)) {
		if (lun_sync(l) != 0)
			break;
		syncs++;
		struct timespec ts = {0, (long)(rnd() % 500000)};
		nanosleep(&ts, NULL);
	}
	return NULL;
}

static int whole_equals(lun *l, uint8_t *buf, const char *when)
{
	int r = lun_read(l, 0, buf, LUN_SIZE);
	if (r != 0 || memcmp(buf, model, LUN_SIZE)) {
		size_t d = 0;
		while (r == 0 && d < LUN_SIZE && buf[d] == model[d])
			d++;
		fprintf(stderr, "%s: read %d, first difference at byte %zu\n", when, r, d);
		return 0;
	}
	return 1;
}

int main(void)
{
	const char *dir = tu_tmpdir_in("lun-batch", "/dev/shm");
	bks_err e = {0};
	store *s = NULL;
	lun_set *ls = NULL;
	lun *l = NULL;
	pthread_t th;
	int r;
	uint8_t *wb = malloc(16384), *rb = malloc(LUN_SIZE);
	model = calloc(1, LUN_SIZE);
	REQUIRE(wb && rb && model, "oom");

	arr *a = tu_make_array(dir, NDISK, DISK_MB, NULL, paths);
	REQUIRE((r = store_create(a, NULL, &s, &e)) == 0, "store_create: %s", bks_errmsg(&e, r));
	REQUIRE((r = ns_format(s, 0755, &e)) == 0, "ns_format: %s", bks_errmsg(&e, r));
	REQUIRE(appl_up(s) == 0, "appl");
	REQUIRE((r = lun_set_open(&ap, &ls, &e)) == 0, "lun_set_open: %s", bks_errmsg(&e, r));
	REQUIRE(lun_create(ls, "t", LUN_SIZE, 512, "", &e) == 0, "create");
	REQUIRE(lun_open(ls, "t", &l) == 0, "open");

	/* Half of the LUN written and synced first: batches re-cut chunks around their
	 * pieces there, and fill holes in the other half. */
	for (uint64_t off = 0; off < LUN_SIZE / 2; off += 16384) {
		content(wb, 16384);
		REQUIRE(lun_write(l, off, wb, 16384, 0) == 0, "base write");
		memcpy(model + off, wb, 16384);
	}
	REQUIRE(lun_sync(l) == 0, "base sync");

	REQUIRE(pthread_create(&th, NULL, syncer, l) == 0, "syncer");
	uint64_t fua = 0, unmaps = 0, bytes = 0;
	int ok = 1;
	for (int i = 0; i < WRITES && ok; i++) {
		uint64_t k = rnd() % 100, off, len;
		if (k < 70) {
			off = rnd() % (LUN_SIZE / 4096) * 4096, len = 4096;
		} else if (k < 90) {
			len = 512 * (1 + rnd() % 32);
			off = rnd() % ((LUN_SIZE - len) / 512 + 1) * 512;
		} else {
			/* next to or over the last few written: cached extents change */
			len = 4096;
			off = rnd() % 64 * 4096 + (rnd() % 2 ? 0 : LUN_SIZE / 2);
		}
		if (k == 99 || (k == 98 && i % 2)) {
			r = lun_unmap(l, off, len);
			if (r == 0)
				memset(model + off, 0, len);
			unmaps++;
		} else {
			int f = rnd() % 40 == 0;
			content(wb, len);
			r = lun_write(l, off, wb, len, f);
			if (r == 0)
				memcpy(model + off, wb, len);
			fua += f;
			bytes += len;
		}
		if (r != 0) {
			CHECK(0, "write %d at %llu: %d", i, (unsigned long long)off, r);
			ok = 0;
		}
		if (i % 8 == 7) {
			/* (the syncer's batches run between these writes) */
			struct timespec ts = {0, 100000};
			nanosleep(&ts, NULL);
		}
		if (ok && i % 2000 == 1999) {
			char when[64];
			snprintf(when, sizeof(when), "after %d writes", i + 1);
			ok = whole_equals(l, rb, when);
			CHECK(ok, "%s: the LUN reads as written", when);
		}
	}
	__atomic_store_n(&stop_sync, 1, __ATOMIC_RELEASE);
	pthread_join(th, NULL);
	CHECK(lun_sync(l) == 0, "the last sync");
	printf("%d writes (%llu bytes, %llu FUA), %llu unmaps, %llu syncs meanwhile\n", WRITES,
	       (unsigned long long)bytes, (unsigned long long)fua, (unsigned long long)unmaps,
	       (unsigned long long)syncs);
	CHECK(syncs >= 10, "the syncer ran while the writer wrote (%llu syncs)",
	      (unsigned long long)syncs);
	CHECK(whole_equals(l, rb, "at the end"), "at the end: the LUN reads as written");

	/* Closed and opened again: the store holds it all. */
	lun_close(l);
	lun_set_close(ls);
	ns_close(ap.n);
	store_close(ap.s);
	a = tu_import_array(paths, NDISK, NULL);
	REQUIRE(a, "import");
	REQUIRE((r = store_open(a, NULL, &s, &e)) == 0, "store_open: %s", bks_errmsg(&e, r));
	REQUIRE(appl_up(s) == 0, "appl again");
	REQUIRE((r = lun_set_open(&ap, &ls, &e)) == 0, "lun_set_open again");
	REQUIRE(lun_open(ls, "t", &l) == 0, "open again");
	CHECK(whole_equals(l, rb, "after reopening"), "after reopening: the LUN reads as written");
	lun_close(l);
	lun_set_close(ls);
	ns_close(ap.n);
	store_close(ap.s);
	free(wb);
	free(rb);
	free(model);
	tu_cleanup();
	return tu_finish();
}
