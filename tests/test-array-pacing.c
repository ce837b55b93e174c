/* test-array-pacing: a rebuild keeps to its floor (bg_min_bps) while foreground reads
 * run, even when its caller spends time between slices as bkstord's background
 * thread does (it takes the appliance lock there), and does not run above the floor
 * then; with the foreground idle it runs unlimited (bg_max_bps 0) to the end, and
 * every row reads back right.
 *
 * The pacing once restarted its clock after every step, so the step's own time and
 * the caller's were added to each pacing sleep: here that read about 0.85 of the
 * floor (bench/rebuild.sh saw 34-47 MiB/s against 50 on a loaded machine). */
#include <config.h>

#include "tests/testutil.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define N 6
#define SEED 11
#define ROWS 240
#define BATCH 8
#define FLOOR (4ull << 20)      /* bg_min_bps: 4 MiB/s */
#define CALLER_GAP_US 100000    /* the caller's own work between two slices */

static volatile int stop_fg;

/* Foreground: a small read every 10 ms, so the array never looks idle. */
static void *fg_main(void *arg)
{
	arr *a = arg;
	uint8_t *buf = tu_alloc(4096);
	uint64_t row = 0;
	int bad = 0;
	while (!stop_fg) {
		if (arr_read(a, row, 0, buf, 4096) != 0)
			bad++;
		row = (row + 37) % ROWS;
		usleep(10000);
	}
	free(buf);
	return (void *)(intptr_t)bad;
}

/* One slice on a thread of its own: how long arr_bg_step took, pacing sleep included. */
static double slice_s;
static void *slice_main(void *arg);

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The rebuild job's bytes read so far and whether it still runs. */
static uint64_t job_bytes(arr *a, int *running)
{
	arr_status st;
	arr_get_status(a, &st);
	*running = 0;
	for (int i = 0; i < st.njobs; i++)
		if (!strcmp(st.jobs[i].kind, "rebuild")) {
			*running = !strcmp(st.jobs[i].state, "running");
			return st.jobs[i].bytes_done;
		}
	return 0;
}

static void *slice_main(void *arg)
{
	double t = now_s();
	arr_bg_step(arg, BATCH);
	slice_s = now_s() - t;
	return NULL;
}

int main(void)
{
	const char *dir = tu_tmpdir_in("pacing", "/dev/shm");
	char *paths[N + 1];
	disk *d[N + 1];
	arr_config cfg;
	bks_err e = {0};
	int r, running;
	arr_status st;

	arr_config_defaults(&cfg);
	cfg.strip_size = 64 << 10;
	cfg.name = "pacing";
	cfg.bg_min_bps = FLOOR;
	cfg.bg_max_bps = 0;
	cfg.fg_idle_ms = 200;
	arr *a = tu_make_array_cfg(dir, N, 1, 64, &cfg, NULL, paths, d);
	size_t rb = arr_row_bytes(a);
	uint8_t *buf = tu_alloc(rb * BATCH);
	for (uint64_t row = 0; row < ROWS; row += BATCH) {
		for (int b = 0; b < BATCH; b++)
			tu_fill(SEED, row + (uint64_t)b, 0, buf + (size_t)b * rb, rb);
		r = arr_write_rows(a, row, BATCH, buf, &e);
		REQUIRE(r == 0, "write row %llu: %s", (unsigned long long)row, bks_errmsg(&e, r));
	}
	r = arr_commit(a, "P", 1, &e);
	REQUIRE(r == 0, "commit: %s", bks_errmsg(&e, r));

	pthread_t fg;
	REQUIRE(pthread_create(&fg, NULL, fg_main, a) == 0, "foreground thread");
	usleep(50000);
	r = arr_fail(a, "slot1", &e);
	REQUIRE(r == 0, "fail slot 1: %s", bks_errmsg(&e, r));

	/* One second to settle, then four measured. Each slice asks for 8 rows, as
	 * bkstord's background thread does, and the caller then sleeps. */
	double t0 = now_s(), t1 = 0, t2 = 0;
	uint64_t b1 = 0, b2 = 0;
	int more = 1;
	while (more > 0) {
		more = arr_bg_step(a, 8);
		double t = now_s();
		if (!t1 && t - t0 >= 1.0) {
			t1 = t;
			b1 = job_bytes(a, &running);
		}
		if (t1 && t - t1 >= 4.0) {
			t2 = t;
			b2 = job_bytes(a, &running);
			break;
		}
		usleep(CALLER_GAP_US);
	}
	REQUIRE(t2 > 0 && running, "the rebuild still runs after 5 s (rows too few for the "
	        "floor)");
	double rate = (double)(b2 - b1) / (t2 - t1);
	printf("rebuild with the foreground busy: %.2f MiB/s against a floor of %.2f (%.3f)\n",
	       rate / 1048576.0, (double)FLOOR / 1048576.0, rate / (double)FLOOR);
	CHECK(rate >= 0.95 * (double)FLOOR, "the floor holds while the foreground runs: "
	      "%.3f of it", rate / (double)FLOOR);
	CHECK(rate <= 1.10 * (double)FLOOR, "no faster than the floor while the foreground "
	      "runs: %.3f of it", rate / (double)FLOOR);

	stop_fg = 1;
	void *fg_bad;
	pthread_join(fg, &fg_bad);
	CHECK(fg_bad == NULL, "foreground reads during the rebuild: %d failed",
	      (int)(intptr_t)fg_bad);

	/* A new pacing (bkstord's SIGHUP) reaches a slice already sleeping: at 64 KiB/s
	 * the slice of 8 rows owes about 40 s; arr_set_pacing back to unlimited ends the
	 * sleep at once (it slept to the end before, and the rate was fixed at import). */
	arr_set_pacing(a, 64 << 10, 64 << 10, 200);
	arr_get_status(a, &st);
	CHECK(st.bg_min_bps == 64 << 10 && st.bg_max_bps == 64 << 10 && st.fg_idle_ms == 200,
	      "the status shows the new pacing: %llu %llu %u", (unsigned long long)st.bg_min_bps,
	      (unsigned long long)st.bg_max_bps, st.fg_idle_ms);
	pthread_t sl;
	REQUIRE(pthread_create(&sl, NULL, slice_main, a) == 0, "slice thread");
	usleep(500000);
	arr_set_pacing(a, FLOOR, 0, 200);
	pthread_join(sl, NULL);
	printf("a slice paced at 64 KiB/s, the pacing raised after 0.5 s: %.2f s\n", slice_s);
	CHECK(slice_s < 2.0, "the raised pacing ended the slice's sleep (%.2f s)", slice_s);

	/* Idle foreground: unlimited, to the end. */
	usleep(250000);
	double t3 = now_s();
	r = arr_bg_run(a);
	double t4 = now_s();
	CHECK(r == 0, "rebuild to the end: %d", r);
	arr_get_status(a, &st);
	CHECK(st.health == ARR_OK, "health after the rebuild: %s", arr_health_name(st.health));
	printf("the rest of the rebuild with the foreground idle: %.2f s\n", t4 - t3);
	CHECK(t4 - t3 < 0.5 * (double)(ROWS * (N - 1)) * (double)cfg.strip_size / (double)FLOOR,
	      "idle: faster than half the floor would take (%.2f s)", t4 - t3);

	/* Every row reads back, with two more disks failed: the rebuilt strips count. */
	CHECK(tu_verify_rows(a, SEED, 0, ROWS, 0) == 0, "rows read back after the rebuild");
	CHECK(arr_fail(a, "slot0", &e) == 0 && arr_fail(a, "slot3", &e) == 0,
	      "fail slots 0 and 3: %s", e.msg);
	CHECK(tu_verify_rows(a, SEED, 0, ROWS, 0) == 0,
	      "rows read back with two more disks failed");
	arr_close(a);
	free(buf);
	return tu_finish();
}
