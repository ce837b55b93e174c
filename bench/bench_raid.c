/* bench/bench_raid.c: single-thread throughput of the RAID-6 codec on a 10+2 row of
 * 256 KiB strips, next to memcpy of the same data as the yardstick. All figures
 * count the row's data bytes (10 strips) per second, GB = 1e9 bytes, so they can
 * be compared with each other and with the disks' bandwidth. */
#include <config.h>

#include "bench/bench.h"

#include "common/bks.h"
#include "raid/raid.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BR_K 10
#define BR_STRIP ((size_t)256 * 1024)
#define BR_RUNS 3

typedef struct br_ctx {
	raid_codec *c;
	uint8_t *row[BR_K + 2];
	uint8_t *copy[BR_K];
	int failed; /* set by a step whose result was not the expected one */
} br_ctx;

typedef void (*br_fn)(br_ctx *x);

static void do_encode(br_ctx *x)
{
	raid_encode(x->c, BR_STRIP, x->row);
}

static void do_memcpy(br_ctx *x)
{
	for (int i = 0; i < BR_K; i++)
		memcpy(x->copy[i], x->row[i], BR_STRIP);
}

/* Rebuilding in place writes back the same bytes, so the row stays valid. */
static void do_recover2(br_ctx *x)
{
	static const int lost[2] = {0, 1};
	if (raid_recover(x->c, BR_STRIP, x->row, lost, 2) != 0)
		x->failed = 1;
}

/* A rebuild's row, one data strip lost: recover it, then prove the row with P/Q. */
static void do_recover1_check(br_ctx *x)
{
	static const int lost[1] = {3};
	if (raid_recover(x->c, BR_STRIP, x->row, lost, 1) != 0 ||
	    raid_check(x->c, BR_STRIP, x->row, NULL) != RAID_CHECK_OK)
		x->failed = 1;
}

/* The same in one call, as the rebuild does it. */
static void do_rebuild1(br_ctx *x)
{
	if (raid_recover1_check(x->c, BR_STRIP, x->row, 3) != RAID_CHECK_OK)
		x->failed = 1;
}

static void do_check(br_ctx *x)
{
	if (raid_check(x->c, BR_STRIP, x->row, NULL) != RAID_CHECK_OK)
		x->failed = 1;
}

/* Best of BR_RUNS runs of fn, together taking about `seconds`, in GB/s. The
 * repetition count is calibrated first so a run is long enough that timer
 * resolution and one-off costs (page faults, ISA-L dispatch) do not show. */
static double best_gbps(br_fn fn, br_ctx *x, double bytes_per_call, double seconds)
{
	long n = 1;
	double t0, dt;

	fn(x); /* warm-up */
	for (;;) {
		t0 = bench_now();
		for (long i = 0; i < n; i++)
			fn(x);
		dt = bench_now() - t0;
		if (dt >= 0.02)
			break;
		n *= 2;
	}
	long iters = (long)(seconds / BR_RUNS / (dt / (double)n)) + 1;

	double best = 0;
	for (int run = 0; run < BR_RUNS; run++) {
		t0 = bench_now();
		for (long i = 0; i < iters; i++)
			fn(x);
		dt = bench_now() - t0;
		double gbps = bytes_per_call * (double)iters / dt / 1e9;
		if (gbps > best)
			best = gbps;
	}
	return best;
}

int bench_raid(int argc, char **argv, int quick)
{
	(void)argc;
	(void)argv;
	br_ctx x = {0};
	bks_rng rng;
	int rc = 1;
	const double seconds = quick ? 0.5 : 2.0; /* per figure, all runs together */
	const double bytes = (double)BR_K * (double)BR_STRIP;

	int err = raid_codec_new(BR_K, BR_STRIP, &x.c);
	if (err) {
		fprintf(stderr, "bench_raid: raid_codec_new: %s\n", bks_errmsg(NULL, err));
		goto out;
	}
	/* Zeroed allocations, so every page is faulted in before timing. */
	for (int i = 0; i < BR_K + 2; i++) {
		x.row[i] = bks_alloc_aligned(RAID_ALIGN, BR_STRIP);
		if (!x.row[i])
			goto oom;
	}
	for (int i = 0; i < BR_K; i++) {
		x.copy[i] = bks_alloc_aligned(RAID_ALIGN, BR_STRIP);
		if (!x.copy[i])
			goto oom;
	}
	bks_rng_seed(&rng, 1);
	for (int i = 0; i < BR_K; i++)
		bks_rng_fill(&rng, x.row[i], BR_STRIP);

	double enc = best_gbps(do_encode, &x, bytes, seconds);
	double cpy = best_gbps(do_memcpy, &x, bytes, seconds);
	bench_print("encode_gbps", enc);
	bench_print("memcpy_gbps", cpy);
	bench_print("encode_vs_memcpy", enc / cpy);
	bench_print("recover2_gbps", best_gbps(do_recover2, &x, bytes, seconds));
	bench_print("check_gbps", best_gbps(do_check, &x, bytes, seconds));
	bench_print("recover1_check_gbps", best_gbps(do_recover1_check, &x, bytes, seconds));
	bench_print("rebuild1_gbps", best_gbps(do_rebuild1, &x, bytes, seconds));

	/* Figures for wrong results are worthless: confirm the work was real. */
	for (int i = 0; i < BR_K; i++)
		if (memcmp(x.copy[i], x.row[i], BR_STRIP) != 0)
			x.failed = 1;
	if (x.failed || raid_check(x.c, BR_STRIP, x.row, NULL) != RAID_CHECK_OK) {
		fprintf(stderr, "bench_raid: a timed step produced a wrong result\n");
		goto free_bufs;
	}
	rc = 0;
	goto free_bufs;

oom:
	fprintf(stderr, "bench_raid: out of memory\n");
free_bufs:
	for (int i = 0; i < BR_K + 2; i++)
		free(x.row[i]);
	for (int i = 0; i < BR_K; i++)
		free(x.copy[i]);
	raid_codec_free(x.c);
out:
	return rc;
}
