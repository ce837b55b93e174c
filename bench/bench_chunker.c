/* bench/bench_chunker.c: single-thread throughput of the FastCDC chunker with the
 * default parameters on a pseudo-random buffer, next to memcpy of the same buffer as
 * the yardstick, measured in the same run. Random data is the chunker's honest case:
 * no long runs that end in forced cuts, the mean chunk near avg. GB = 1e9 bytes. */
#include <config.h>

#include "bench/bench.h"

#include "common/bks.h"
#include "dedup/chunker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
static double best_gbps(bc_fn fn, bc_ctx *x)
{
	double best = 0;

	fn(x);
	for (int run = 0; run < BC_RUNS; run++) {
		double t0 = bench_now();
		fn(x);
		double dt = bench_now() - t0;
		double gbps = (double)x->len / dt / 1e9;
		if (gbps > best)
			best = gbps;
	}
	return best;
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

	double chk = best_gbps(do_chunk, &x);
	uint64_t chunks = x.chunks, sum = x.checksum;
	double cpy = best_gbps(do_memcpy, &x);
	bench_print("chunker_gbps", chk);
	bench_print("memcpy_gbps", cpy);
	bench_print("chunker_vs_memcpy", chk / cpy);
	bench_print("chunker_mean_chunk", (double)x.len / (double)chunks);

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
