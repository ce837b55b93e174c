/* tests/test-disk-engine: several threads reaping completions on one disk engine
 * (one kernel AIO context) never lose each other's completions.
 *
 * The aio backend reaps with io_getevents(min 1) until its own requests are done,
 * completing any other request the context returns on the way. With two threads in
 * there at once each could take the other's completion: thread A reaps B's event
 * and goes back to sleep for its own, B reaps A's and does the same, and both sleep
 * forever with nothing left in flight. The array's lock keeps the users of ONE
 * array apart, but not two users of one engine that are not the same array:
 *   1. two arrays on one engine (the tests' harness opens every disk on one engine,
 *      so two stores in one test process share it): a writer on one, readers on
 *      the other;
 *   2. one array with 3 threads in arr_read_many and a writer (bkstord's read
 *      helpers, index prefetch and pool writer): serialized by the array's lock,
 *      must stay safe;
 *   3. one array and a lone disk opened on the same engine and read outside any
 *      array lock (bkstord's add-spare/replace probes the new disk's first MiB,
 *      devprobe_content, from an API thread while the pool writer writes).
 * Each phase runs for a second or two and checks the bytes read back; an alarm
 * turns a hang into a failure. The old aio_finish hung in phase 1 or 3 within a
 * few hundred milliseconds. */
#include <config.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tests/testutil.h"

#define NDISK 4
#define DISK_MB 24
#define RUN_MS 1500
#define WATCHDOG_S 18

static volatile int stop;
static const char *phase = "setup";

static void on_alarm(int sig)
{
	(void)sig;
	static const char msg[] = "FAIL test-disk-engine: hung (threads asleep in "
	                          "io_getevents with nothing in flight?) in phase ";
	if (write(2, msg, sizeof(msg) - 1) < 0 || write(2, phase, strlen(phase)) < 0 ||
	    write(2, "\n", 1) < 0)
		_exit(1);
	_exit(1);
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0)
		;
}

/* A writer: rewrites rows [first, first+n) with generation-numbered content over
 * and over; counts its rows and write errors. */
struct writer {
	arr *a;
	uint64_t seed, first, n;
	uint64_t gen;   /* the last generation written completely */
	long rows, errors;
};

static void *writer_main(void *p)
{
	struct writer *w = p;
	size_t rb = arr_row_bytes(w->a);
	uint8_t *buf = tu_alloc(rb);
	while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
		uint64_t g = w->gen + 1;
		for (uint64_t r = w->first; r < w->first + w->n; r++) {
			tu_fill(w->seed, r, g, buf, rb);
			if (arr_write_rows(w->a, r, 1, buf, NULL) != 0)
				w->errors++;
			w->rows++;
		}
		w->gen = g;
	}
	free(buf);
	return NULL;
}

/* A reader: arr_read_many of up to 8 ranges of rows [first, first+n), which hold
 * generation 0 of seed; counts ranges read and those that differ. */
struct reader {
	arr *a;
	uint64_t seed, first, n;
	unsigned rnd;
	long ranges, bad;
};

static void *reader_main(void *p)
{
	struct reader *rd = p;
	size_t rb = arr_row_bytes(rd->a);
	enum { NR = 8, UNIT = 4096 };
	uint8_t *buf[NR], *want = tu_alloc(rb);
	arr_rd v[NR];
	for (int i = 0; i < NR; i++)
		buf[i] = tu_alloc(rb);
	while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
		int n = 1 + (int)(rand_r(&rd->rnd) % NR);
		for (int i = 0; i < n; i++) {
			size_t units = rb / UNIT;
			size_t o = (rand_r(&rd->rnd) % units) * UNIT;
			size_t l = (1 + rand_r(&rd->rnd) % (units - o / UNIT)) * UNIT;
			v[i] = (arr_rd){.row = rd->first + rand_r(&rd->rnd) % rd->n, .off = o,
			                .len = l, .buf = buf[i]};
		}
		int r = arr_read_many(rd->a, v, n);
		for (int i = 0; i < n; i++) {
			tu_fill(rd->seed, v[i].row, 0, want, rb);
			if (r != 0 || v[i].result != 0 ||
			    memcmp(want + v[i].off, v[i].buf, v[i].len) != 0)
				rd->bad++;
			rd->ranges++;
		}
	}
	for (int i = 0; i < NR; i++)
		free(buf[i]);
	free(want);
	return NULL;
}

/* A prober: reads the first MiB of a lone disk (no array, no array lock) as
 * bkstord's devprobe_content does, and checks it. */
struct prober {
	disk *d;
	const uint8_t *want;
	size_t len;
	long reads, bad;
};

static void *prober_main(void *p)
{
	struct prober *pr = p;
	uint8_t *buf = tu_alloc(pr->len);
	while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
		memset(buf, 0xee, pr->len);
		if (disk_pread(pr->d, buf, pr->len, 0) != 0 || memcmp(buf, pr->want, pr->len))
			pr->bad++;
		pr->reads++;
	}
	free(buf);
	return NULL;
}

/* Fill rows [first, first+n) with generation 0 of seed. */
static void prefill(arr *a, uint64_t seed, uint64_t first, uint64_t n)
{
	size_t rb = arr_row_bytes(a);
	uint8_t *buf = tu_alloc(rb);
	for (uint64_t r = first; r < first + n; r++) {
		tu_fill(seed, r, 0, buf, rb);
		REQUIRE_EXIT(arr_write_rows(a, r, 1, buf, NULL) == 0, "prefill row %llu",
		             (unsigned long long)r);
	}
	free(buf);
}

static void start(pthread_t *t, void *(*fn)(void *), void *arg)
{
	REQUIRE_EXIT(pthread_create(t, NULL, fn, arg) == 0, "pthread_create");
}

int main(void)
{
	char dir[4096], da[4200], db[4200];
	char *pa[NDISK], *pb[NDISK];

	snprintf(dir, sizeof(dir), "%s", tu_tmpdir("disk-engine"));
	snprintf(da, sizeof(da), "%s/a", dir);
	snprintf(db, sizeof(db), "%s/b", dir);
	tu_mkdir(da);
	tu_mkdir(db);
	signal(SIGALRM, on_alarm);
	alarm(WATCHDOG_S);

	/* Both arrays' disks are opened on the harness's one engine (tu_open1), as two
	 * stores in one test process are. */
	arr *a = tu_make_array(da, NDISK, DISK_MB, NULL, pa);
	arr *b = tu_make_array(db, NDISK, DISK_MB, NULL, pb);
	uint64_t rows = BKS_MIN(arr_rows(a), (uint64_t)64);
	REQUIRE(rows >= 16, "arrays have %llu rows", (unsigned long long)rows);
	prefill(a, 11, rows / 2, rows / 2);
	prefill(b, 22, 0, rows);

	/* 1: a writer on a, two readers on b. */
	phase = "1 (two arrays, one engine)";
	stop = 0;
	struct writer w1 = {.a = a, .seed = 1, .first = 0, .n = rows / 2};
	struct reader r1[2] = {{.a = b, .seed = 22, .first = 0, .n = rows, .rnd = 1},
	                       {.a = b, .seed = 22, .first = 0, .n = rows, .rnd = 2}};
	pthread_t t[5];
	start(&t[0], writer_main, &w1);
	start(&t[1], reader_main, &r1[0]);
	start(&t[2], reader_main, &r1[1]);
	sleep_ms(RUN_MS);
	__atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	CHECK(w1.rows > 0 && w1.errors == 0, "phase 1: writer wrote %ld rows, %ld errors",
	      w1.rows, w1.errors);
	CHECK(r1[0].ranges > 0 && r1[1].ranges > 0 && r1[0].bad + r1[1].bad == 0,
	      "phase 1: readers read %ld + %ld ranges, %ld bad", r1[0].ranges, r1[1].ranges,
	      r1[0].bad + r1[1].bad);
	CHECK(tu_verify_rows(a, 1, 0, rows / 2, w1.gen) == 0,
	      "phase 1: a's written rows read back (generation %llu)",
	      (unsigned long long)w1.gen);

	/* 2: one array, a writer and three readers (serialized by a's lock). */
	phase = "2 (one array, 3 readers + writer)";
	stop = 0;
	struct writer w2 = {.a = a, .seed = 3, .first = 0, .n = rows / 2};
	struct reader r2[3] = {{.a = a, .seed = 11, .first = rows / 2, .n = rows / 2, .rnd = 3},
	                       {.a = a, .seed = 11, .first = rows / 2, .n = rows / 2, .rnd = 4},
	                       {.a = a, .seed = 11, .first = rows / 2, .n = rows / 2, .rnd = 5}};
	start(&t[0], writer_main, &w2);
	for (int i = 0; i < 3; i++)
		start(&t[1 + i], reader_main, &r2[i]);
	sleep_ms(RUN_MS);
	__atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	long n2 = r2[0].ranges + r2[1].ranges + r2[2].ranges;
	long bad2 = r2[0].bad + r2[1].bad + r2[2].bad;
	CHECK(w2.rows > 0 && w2.errors == 0, "phase 2: writer wrote %ld rows, %ld errors",
	      w2.rows, w2.errors);
	CHECK(n2 > 0 && bad2 == 0, "phase 2: readers read %ld ranges, %ld bad", n2, bad2);
	CHECK(tu_verify_rows(a, 3, 0, rows / 2, w2.gen) == 0,
	      "phase 2: written rows read back (generation %llu)", (unsigned long long)w2.gen);

	/* 3: the writer on a and a lone disk on the same engine, read without any
	 * array lock (add-spare's probe of the new disk). */
	phase = "3 (array + lone disk, one engine)";
	stop = 0;
	const size_t plen = 1u << 20;
	uint8_t *pat = tu_alloc(plen);
	tu_fill(33, 0, 0, pat, plen);
	char *ppath = tu_file_disk(dir, "probe", 4u << 20);
	disk *pd = tu_open1(ppath, NULL);
	REQUIRE(disk_pwrite(pd, pat, plen, 0) == 0, "phase 3: write the probe disk");
	struct writer w3 = {.a = a, .seed = 4, .first = 0, .n = rows / 2};
	struct prober p3[1] = {{.d = pd, .want = pat, .len = plen}};
	start(&t[0], writer_main, &w3);
	start(&t[1], prober_main, &p3[0]);
	sleep_ms(RUN_MS);
	__atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
	pthread_join(t[0], NULL);
	pthread_join(t[1], NULL);
	CHECK(w3.rows > 0 && w3.errors == 0, "phase 3: writer wrote %ld rows, %ld errors",
	      w3.rows, w3.errors);
	CHECK(p3[0].reads > 0 && p3[0].bad == 0, "phase 3: prober read its MiB %ld times, "
	      "%ld bad", p3[0].reads, p3[0].bad);
	CHECK(tu_verify_rows(a, 4, 0, rows / 2, w3.gen) == 0,
	      "phase 3: written rows read back (generation %llu)", (unsigned long long)w3.gen);
	alarm(0);
	if (tu_verbose())
		printf("rows: %ld/%ld/%ld written, ranges %ld/%ld, probes %ld\n", w1.rows,
		       w2.rows, w3.rows, r1[0].ranges + r1[1].ranges, n2, p3[0].reads);

	disk_close(pd);
	free(pat);
	arr_close(a);
	arr_close(b);
	return tu_finish();
}
