/* bench/bench_chunker.c: single-thread throughput of the FastCDC chunker with the
 * default parameters on a pseudo-random buffer, next to memcpy of the same buffer as
 * the yardstick, measured in the same run. Random data is the chunker's honest case:
 * no long runs that end in forced cuts, the mean chunk near avg. GB = 1e9 bytes.
 * chunker_vs_memcpy is by the wall clock, chunker_vs_memcpy_cpu by the thread's CPU
 * time (steadier when other work shares the cores); the two run in alternating
 * passes. chunker_serial_gbps: the byte-at-a-time scan (BKS_CDC_SCAN=serial). */
#include <config.h>

#include "bench/bench.h"

#include "common/bks.h"
#include "dedup/chunker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BC_RUNS 3

typedef struct bc_ctx {
	cdc *c;
	const uint8_t *src;
	uint8_t *dst;
	size_t len;
	uint64_t chunks;    /* of the last chunking pass, the final partial chunk included */
	uint64_t checksum;  /* sum of cut offsets: the same in every pass */
} bc_ctx;

typedef void (*bc_fn)(bc_ctx *x);

/* The whole buffer as one stream, handed over in one call per chunk, as the ingest
 * path does when it has a large buffer. */
static void do_chunk(bc_ctx *x)
{
	size_t off = 0;
	uint64_t chunks = 0, sum = 0;
	int cut;

	cdc_reset(x->c);
	while (off < x->len) {
		off += cdc_next(x->c, x->src + off, x->len - off, &cut);
		if (cut) {
			chunks++;
			sum += off;
		}
	}
	if (!cut)
		chunks++; /* the stream's last chunk */
	x->chunks = chunks;
	x->checksum = sum;
}

static void do_memcpy(bc_ctx *x)
{
	memcpy(x->dst, x->src, x->len);
}

/* Best of BC_RUNS passes over the buffer, in GB/s, after one warm-up pass. */
static double cpu_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* GB/s of one pass by the wall clock; *cpu_gbps by this thread's CPU time (what the
 * pass cost, not counting time the thread waited for a core on a shared machine). */
static double pass_gbps2(bc_fn fn, bc_ctx *x, double *cpu_gbps)
{
	double c0 = cpu_now(), t0 = bench_now();
	fn(x);
	double t1 = bench_now(), c1 = cpu_now();
	if (cpu_gbps)
		*cpu_gbps = (double)x->len / BKS_MAX(c1 - c0, 1e-9) / 1e9;
	return (double)x->len / (t1 - t0) / 1e9;
}

static double pass_gbps(bc_fn fn, bc_ctx *x)
{
	return pass_gbps2(fn, x, NULL);
}

static double best_gbps(bc_fn fn, bc_ctx *x)
{
	double best = 0;

	fn(x);
	for (int run = 0; run < BC_RUNS; run++)
		best = BKS_MAX(best, pass_gbps(fn, x));
	return best;
}

/* The two sides of a ratio in alternating passes (A B A B ...), best of BC_PAIRS
 * each: on a machine shared with other work, a burst of it then slows both sides
 * alike instead of whichever ran during it. */
#define BC_PAIRS 7
static void best_pair(bc_fn fa, bc_fn fb, bc_ctx *x, double *a, double *b, double *ca,
                      double *cb)
{
	double c;
	*a = *b = *ca = *cb = 0;
	fa(x);
	fb(x);
	for (int run = 0; run < BC_PAIRS; run++) {
		*a = BKS_MAX(*a, pass_gbps2(fa, x, &c));
		*ca = BKS_MAX(*ca, c);
		*b = BKS_MAX(*b, pass_gbps2(fb, x, &c));
		*cb = BKS_MAX(*cb, c);
	}
}

int bench_chunker(int argc, char **argv, int quick)
{
	(void)argc;
	(void)argv;
	bc_ctx x = {0};
	bks_rng rng;
	uint8_t *src = NULL;
	int rc = 1;

	x.len = (size_t)(quick ? 64 : 256) << 20;
	int err = cdc_new(NULL, &x.c);
	if (err) {
		fprintf(stderr, "bench_chunker: cdc_new: %s\n", bks_errmsg(NULL, err));
		goto out;
	}
	/* Zeroed allocations, so every page is faulted in before timing. */
	src = bks_alloc_aligned(64, x.len);
	x.dst = bks_alloc_aligned(64, x.len);
	if (!src || !x.dst) {
		fprintf(stderr, "bench_chunker: out of memory\n");
		goto free_bufs;
	}
	bks_rng_seed(&rng, 1);
	bks_rng_fill(&rng, src, x.len);
	x.src = src;

	double chk, cpy, chk_cpu, cpy_cpu;
	best_pair(do_chunk, do_memcpy, &x, &chk, &cpy, &chk_cpu, &cpy_cpu);
	uint64_t chunks = x.chunks, sum = x.checksum;
	/* The plain byte-at-a-time scan (BKS_CDC_SCAN=serial), for scale. */
	cdc *lanes = x.c;
	setenv("BKS_CDC_SCAN", "serial", 1);
	err = cdc_new(NULL, &x.c);
	unsetenv("BKS_CDC_SCAN");
	if (err) {
		x.c = lanes;
		goto free_bufs;
	}
	double ser = best_gbps(do_chunk, &x);
	int same = x.chunks == chunks && x.checksum == sum;
	cdc_free(x.c);
	x.c = lanes;
	if (!same) {
		fprintf(stderr, "bench_chunker: the serial scan found other cut points\n");
		goto free_bufs;
	}
	bench_print("chunker_gbps", chk);
	bench_print("memcpy_gbps", cpy);
	bench_print("chunker_vs_memcpy", chk / cpy);
	bench_print("chunker_mean_chunk", (double)x.len / (double)chunks);
	bench_print("chunker_serial_gbps", ser);
	bench_print("chunker_vs_memcpy_cpu", chk_cpu / cpy_cpu);

	/* Figures for wrong results are worthless: every pass must have found the same
	 * cuts, and the copy must be exact. */
	do_chunk(&x);
	if (x.chunks != chunks || x.checksum != sum || memcmp(x.dst, x.src, x.len) != 0) {
		fprintf(stderr, "bench_chunker: a timed step produced a wrong result\n");
		goto free_bufs;
	}
	rc = 0;

free_bufs:
	free(src);
	free(x.dst);
	cdc_free(x.c);
out:
	return rc;
}
