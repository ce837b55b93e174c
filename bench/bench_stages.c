/* bench/bench_stages.c: `bkstor-bench stages` (also `--stages`): the CPU cost of each
 * stage of ingest and restore, one thread, in nanoseconds of that thread's CPU time
 * per byte of the stage's input, for bench/model.py (the cost model of a bigger head,
 * bench/MODEL.md). CPU time, not wall time: on a shared machine a thread that waits
 * for a core does not cost the stage anything. Each figure is the best of 3 passes.
 *
 * Figures (name: value):
 *   stage_ns_per_byte_memcpy       memcpy of a buffer far larger than the caches
 *   stage_ns_per_byte_chunk        FastCDC with the store's defaults, random bytes
 *   stage_ns_per_byte_hash         SHA-256 of 16 KiB pieces as the ingest engine
 *                                  hashes them: 8 at a time (fp_compute_many: two
 *                                  interleaved on the SHA-NI lanes where the CPU has
 *                                  them; equal lengths, its best case: real chunks
 *                                  cost ~8% more, bench/RESULTS.md)
 *   stage_ns_per_byte_hash_single  one piece per call (fp_compute: OpenSSL)
 *   stage_ns_per_byte_digest       XXH3-128 (wire_digest: END's check of a plain PUT)
 *   stage_ns_per_byte_compress     zstd level 3 (the store's default) of 16 KiB pieces
 *                                  of real files (tar of /usr/share and /usr/lib)
 *   stage_ns_per_byte_compress_busy  zstd level 1 (store.zstd_level_busy: a PUT's
 *                                  level while the daemon is behind) of the same
 *   stage_compress_ratio_busy      raw / stored bytes at level 1
 *   stage_ns_per_byte_decompress   the same pieces back, per raw byte
 *   stage_compress_ratio           raw / stored bytes of those pieces (raw when zstd
 *                                  does not make a piece smaller, as the store does)
 *   stage_ns_per_byte_raid_encode  P+Q of 8+2 rows of 256 KiB strips, per data byte
 *   stage_ns_per_byte_receive      TCP over loopback, the receiving thread, 1 MiB reads
 *   stage_ns_per_byte_send         the sending thread, 1 MiB writes
 *   stage_ns_per_chunk_index_hit   store_has_chunk of a stored chunk (index in RAM)
 *   stage_ns_per_chunk_index_miss  of a chunk never stored (the Bloom filters)
 *   stage_ns_per_byte_index        index_hit / stage_mean_chunk_bytes
 *   stage_mean_chunk_bytes         mean chunk of the random bytes
 *   index_ram_bytes_per_chunk      the index's RAM (Bloom filters, sparse directories)
 *                                  per stored chunk, from a store of random chunks
 */
#include "bench/bench.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include "common/bks.h"
#include "dedup/chunker.h"
#include "dedup/fp.h"
#include "dedup/store.h"
#include "proto/wire.h"
#include "raid/raid.h"
#include "storage/array.h"
#include "storage/disk.h"

#define ST_RUNS 3
#define ST_PIECE (16u << 10)
#define ST_STRIP (256u << 10)
#define ST_K 8

static double cpu_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

typedef struct st_ctx {
	uint8_t *rnd, *dst, *real;
	size_t len, rlen;
	int level;             /* zstd level of do_compress */
	cdc *c;
	fp_ctx *fpc;
	ZSTD_CCtx *cc;
	ZSTD_DCtx *dc;
	uint8_t *z;            /* compressed pieces, ZSTD_compressBound(ST_PIECE) apart */
	uint32_t *zlen;        /* 0: stored raw */
	size_t zcap, npieces;
	raid_codec *rc;
	uint8_t *pq;           /* P and Q strips */
	uint64_t chunks, sink;
} st_ctx;

typedef void (*st_fn)(st_ctx *x);

/* Best CPU seconds of ST_RUNS passes, after one warm-up pass. */
static double best_cpu(st_fn fn, st_ctx *x)
{
	double best = 1e30;
	fn(x);
	for (int i = 0; i < ST_RUNS; i++) {
		double t0 = cpu_now();
		fn(x);
		double dt = cpu_now() - t0;
		if (dt < best)
			best = dt;
	}
	return best;
}

static void do_memcpy(st_ctx *x) { memcpy(x->dst, x->rnd, x->len); }

static void do_chunk(st_ctx *x)
{
	size_t off = 0;
	uint64_t n = 0;
	int cut = 0;
	cdc_reset(x->c);
	while (off < x->len) {
		off += cdc_next(x->c, x->rnd + off, x->len - off, &cut);
		n += (uint64_t)cut;
	}
	x->chunks = n + !cut;
}

static void do_hash_single(st_ctx *x)
{
	uint8_t fp[FP_LEN];
	for (size_t off = 0; off + ST_PIECE <= x->len; off += ST_PIECE) {
		fp_compute(x->fpc, x->rnd + off, ST_PIECE, fp);
		x->sink += fp[0];
	}
}

/* As dedup/ingest.c claims spans (HASH_CLAIM). */
#define ST_HASH_BATCH 8
static void do_hash(st_ctx *x)
{
	const uint8_t *p[ST_HASH_BATCH];
	size_t len[ST_HASH_BATCH];
	uint8_t fp[ST_HASH_BATCH][FP_LEN];
	int k = 0;
	for (size_t off = 0; off + ST_PIECE <= x->len; off += ST_PIECE) {
		p[k] = x->rnd + off;
		len[k++] = ST_PIECE;
		if (k == ST_HASH_BATCH || off + 2 * ST_PIECE > x->len) {
			fp_compute_many(x->fpc, k, p, len, fp);
			x->sink += fp[0][0];
			k = 0;
		}
	}
}

static void do_digest(st_ctx *x)
{
	wire_digest *d = wire_digest_new();
	uint8_t out[WIRE_DIGEST_LEN];
	if (!d)
		return;
	for (size_t off = 0; off < x->len; off += 1u << 20)
		wire_digest_update(d, x->rnd + off, BKS_MIN((size_t)1 << 20, x->len - off));
	wire_digest_final(d, out);
	wire_digest_free(d);
	x->sink += out[0];
}

static void do_compress(st_ctx *x)
{
	for (size_t i = 0; i < x->npieces; i++) {
		uint8_t *z = x->z + i * x->zcap;
		size_t n = ZSTD_compressCCtx(x->cc, z, x->zcap, x->real + i * ST_PIECE, ST_PIECE,
		                             x->level);
		x->zlen[i] = !ZSTD_isError(n) && n < ST_PIECE ? (uint32_t)n : 0;
	}
}

static void do_decompress(st_ctx *x)
{
	for (size_t i = 0; i < x->npieces; i++) {
		if (!x->zlen[i]) {
			memcpy(x->dst + i * ST_PIECE, x->real + i * ST_PIECE, ST_PIECE);
			continue;
		}
		size_t n = ZSTD_decompressDCtx(x->dc, x->dst + i * ST_PIECE, ST_PIECE,
		                               x->z + i * x->zcap, x->zlen[i]);
		x->sink += ZSTD_isError(n) ? 1 : n;
	}
}

/* Rows of ST_K strips taken in turn from the random buffer (larger than the caches,
 * as rows streaming to the disks are), P and Q into their own strips. */
static void do_raid(st_ctx *x)
{
	size_t row = (size_t)ST_K * ST_STRIP;
	uint8_t *strips[ST_K + 2];
	for (size_t off = 0; off + row <= x->len; off += row) {
		for (int i = 0; i < ST_K; i++)
			strips[i] = x->rnd + off + (size_t)i * ST_STRIP;
		strips[ST_K] = x->pq;
		strips[ST_K + 1] = x->pq + ST_STRIP;
		raid_encode(x->rc, ST_STRIP, strips);
	}
	x->sink += x->pq[0];
}

/* --- loopback TCP: one thread sends, this one receives --- */

struct st_net {
	int fd;
	const uint8_t *buf;
	size_t len;
	double cpu;
	int err;
};

static void *net_sender(void *arg)
{
	struct st_net *n = arg;
	double t0 = cpu_now();
	size_t off = 0;
	while (off < n->len) {
		ssize_t w = write(n->fd, n->buf + off % (8u << 20), BKS_MIN((size_t)1 << 20, n->len - off));
		if (w <= 0) {
			n->err = errno ? errno : EIO;
			break;
		}
		off += (size_t)w;
	}
	n->cpu = cpu_now() - t0;
	close(n->fd);
	return NULL;
}

/* CPU seconds per byte of the receiving and the sending thread, best of ST_RUNS. */
static int bench_net(st_ctx *x, size_t total, double *recv_ns, double *send_ns)
{
	*recv_ns = *send_ns = 1e30;
	for (int run = 0; run <= ST_RUNS; run++) {
		struct sockaddr_in sa = {.sin_family = AF_INET};
		socklen_t sl = sizeof(sa);
		int one = 1;
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		int ls = socket(AF_INET, SOCK_STREAM, 0);
		if (ls < 0 || bind(ls, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
		    listen(ls, 1) != 0 || getsockname(ls, (struct sockaddr *)&sa, &sl) != 0) {
			if (ls >= 0)
				close(ls);
			return -1;
		}
		struct st_net n = {.fd = socket(AF_INET, SOCK_STREAM, 0), .buf = x->rnd, .len = total};
		if (n.fd < 0 || connect(n.fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
			close(ls);
			return -1;
		}
		int rfd = accept(ls, NULL, NULL);
		close(ls);
		if (rfd < 0)
			return -1;
		setsockopt(rfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		pthread_t th;
		if (pthread_create(&th, NULL, net_sender, &n) != 0) {
			close(rfd);
			close(n.fd);
			return -1;
		}
		double t0 = cpu_now();
		size_t got = 0;
		for (;;) {
			ssize_t r = read(rfd, x->dst, 1u << 20);
			if (r <= 0)
				break;
			got += (size_t)r;
		}
		double dt = cpu_now() - t0;
		pthread_join(th, NULL);
		close(rfd);
		if (n.err || got != total)
			return -1;
		if (run == 0)
			continue; /* warm-up */
		*recv_ns = BKS_MIN(*recv_ns, dt / (double)total * 1e9);
		*send_ns = BKS_MIN(*send_ns, n.cpu / (double)total * 1e9);
	}
	return 0;
}

/* --- the index: a store of random chunks on file disks --- */

static int bench_index(st_ctx *x, const char *base_dir, size_t len)
{
	char dir[512], cmd[700];
	disk_engine *eng = NULL;
	store *s = NULL;
	bks_err e = {0};
	uint8_t (*fps)[FP_LEN] = NULL;
	uint32_t *lens = NULL;
	uint64_t id;
	int rc = -1;

	snprintf(dir, sizeof(dir), "%s/bkstor-bench-stages-XXXXXX", base_dir);
	if (!mkdtemp(dir))
		return -1;
	if (disk_engine_new(&eng) < 0)
		goto out;
	/* 8 data disks hold len twice over, plus room for metadata. */
	arr *a = bench_make_array(dir, len / 4 + (64ull << 20), eng, 1);
	if (!a)
		goto out;
	store_params sp;
	store_params_default(&sp);
	sp.auto_commit_bytes = 0;
	if (store_create(a, &sp, &s, &e) < 0) {
		fprintf(stderr, "bench: stages: store: %s\n", e.msg);
		goto out;
	}
	if (store_put(s, x->rnd, len, &id) < 0 || store_commit(s, &e) < 0) {
		fprintf(stderr, "bench: stages: store_put failed\n");
		goto out;
	}
	/* The chunks' fingerprints, found the way the store found them. */
	size_t cap = len / CDC_DEFAULT_MIN + 2, n = 0, off = 0;
	fps = malloc(cap * FP_LEN);
	lens = malloc(cap * sizeof(*lens));
	if (!fps || !lens)
		goto out;
	cdc_reset(x->c);
	while (off < len && n < cap) {
		int cut;
		size_t k = 0, start = off;
		do {
			k = cdc_next(x->c, x->rnd + off, len - off, &cut);
			off += k;
		} while (!cut && off < len);
		lens[n] = (uint32_t)(off - start);
		fp_compute(x->fpc, x->rnd + start, lens[n], fps[n]);
		n++;
	}
	double hit = 1e30, miss = 1e30;
	for (int run = 0; run <= ST_RUNS; run++) {
		uint64_t found = 0;
		double t0 = cpu_now();
		for (size_t i = 0; i < n; i++)
			found += store_has_chunk(s, fps[i], lens[i]) == 1;
		double t1 = cpu_now();
		for (size_t i = 0; i < n; i++) {
			fps[i][0] ^= 0x5a; /* a chunk never stored */
			found += store_has_chunk(s, fps[i], lens[i]) == 1;
			fps[i][0] ^= 0x5a;
		}
		double t2 = cpu_now();
		if (found != n) {
			fprintf(stderr, "bench: stages: %llu of %zu chunks found\n",
			        (unsigned long long)found, n);
			goto out;
		}
		if (run > 0) {
			hit = BKS_MIN(hit, (t1 - t0) / (double)n * 1e9);
			miss = BKS_MIN(miss, (t2 - t1) / (double)n * 1e9);
		}
	}
	store_stats st;
	store_get_stats(s, &st);
	double mean = (double)len / (double)n;
	bench_print("stage_ns_per_chunk_index_hit", hit);
	bench_print("stage_ns_per_chunk_index_miss", miss);
	bench_print("stage_ns_per_byte_index", hit / mean);
	bench_print("index_ram_bytes_per_chunk",
	            st.index_entries ? (double)st.index_ram_fixed_bytes / (double)st.index_entries : 0);
	rc = 0;
out:
	store_close(s);
	disk_engine_free(eng);
	free(fps);
	free(lens);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "bench: stages: could not remove %s\n", dir);
	return rc;
}

/* Real files for the compressors: what backups hold. */
static size_t read_real(uint8_t *buf, size_t len)
{
	FILE *f = popen("tar -cf - /usr/share /usr/lib 2>/dev/null", "r");
	size_t got = 0;
	if (!f)
		return 0;
	while (got < len) {
		size_t n = fread(buf + got, 1, len - got, f);
		if (n == 0)
			break;
		got += n;
	}
	/* Stop tar early: closing the pipe makes its next write fail. */
	pclose(f);
	return got;
}

int bench_stages(int argc, char **argv, int quick)
{
	const char *base_dir = "/var/tmp";
	st_ctx x = {0};
	bks_rng rng;
	int rc = 1;

	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--dir") && i + 1 < argc)
			base_dir = argv[++i];
	x.len = (size_t)(quick ? 32 : 128) << 20;
	x.rlen = (size_t)(quick ? 16 : 64) << 20;
	x.rnd = bks_alloc_aligned(64, x.len);
	x.dst = bks_alloc_aligned(64, x.len);
	x.real = bks_alloc_aligned(64, x.rlen);
	x.zcap = ZSTD_compressBound(ST_PIECE);
	x.npieces = x.rlen / ST_PIECE;
	x.z = malloc(x.zcap * x.npieces);
	x.zlen = calloc(x.npieces, sizeof(*x.zlen));
	x.pq = bks_alloc_aligned(64, 2 * ST_STRIP);
	x.cc = ZSTD_createCCtx();
	x.dc = ZSTD_createDCtx();
	if (!x.rnd || !x.dst || !x.real || !x.z || !x.zlen || !x.pq || !x.cc || !x.dc ||
	    cdc_new(NULL, &x.c) < 0 || fp_ctx_new(&x.fpc) < 0 ||
	    raid_codec_new(ST_K, ST_STRIP, &x.rc) < 0) {
		fprintf(stderr, "bench: stages: out of memory\n");
		goto out;
	}
	bks_rng_seed(&rng, 1);
	bks_rng_fill(&rng, x.rnd, x.len);
	memset(x.dst, 0, x.len); /* fault the pages in before timing */
	memset(x.pq, 0, 2 * ST_STRIP);
	size_t got = read_real(x.real, x.rlen);
	if (got < x.rlen) {
		fprintf(stderr, "bench: stages: only %zu bytes of real files\n", got);
		goto out;
	}

	double n = (double)x.len;
	bench_print("stage_ns_per_byte_memcpy", best_cpu(do_memcpy, &x) / n * 1e9);
	bench_print("stage_ns_per_byte_chunk", best_cpu(do_chunk, &x) / n * 1e9);
	bench_print("stage_mean_chunk_bytes", n / (double)x.chunks);
	bench_print("stage_ns_per_byte_hash",
	            best_cpu(do_hash, &x) / (double)(x.len / ST_PIECE * ST_PIECE) * 1e9);
	bench_print("stage_ns_per_byte_hash_single",
	            best_cpu(do_hash_single, &x) / (double)(x.len / ST_PIECE * ST_PIECE) * 1e9);
	bench_print("stage_ns_per_byte_digest", best_cpu(do_digest, &x) / n * 1e9);
	double rn = (double)(x.npieces * ST_PIECE);
	double stored = 0;
	x.level = 1; /* the busy level first: the pieces left are level 3's */
	bench_print("stage_ns_per_byte_compress_busy", best_cpu(do_compress, &x) / rn * 1e9);
	for (size_t i = 0; i < x.npieces; i++)
		stored += x.zlen[i] ? x.zlen[i] : ST_PIECE;
	bench_print("stage_compress_ratio_busy", rn / stored);
	stored = 0;
	x.level = 3;
	bench_print("stage_ns_per_byte_compress", best_cpu(do_compress, &x) / rn * 1e9);
	for (size_t i = 0; i < x.npieces; i++)
		stored += x.zlen[i] ? x.zlen[i] : ST_PIECE;
	bench_print("stage_compress_ratio", rn / stored);
	bench_print("stage_ns_per_byte_decompress", best_cpu(do_decompress, &x) / rn * 1e9);
	if (memcmp(x.dst, x.real, x.npieces * ST_PIECE) != 0) {
		fprintf(stderr, "bench: stages: decompression gave other bytes\n");
		goto out;
	}
	size_t row = (size_t)ST_K * ST_STRIP;
	bench_print("stage_ns_per_byte_raid_encode",
	            best_cpu(do_raid, &x) / (double)(x.len / row * row) * 1e9);
	double rns, sns;
	if (bench_net(&x, x.len * 2, &rns, &sns) == 0) {
		bench_print("stage_ns_per_byte_receive", rns);
		bench_print("stage_ns_per_byte_send", sns);
	} else {
		fprintf(stderr, "bench: stages: loopback TCP failed: %s\n", strerror(errno));
	}
	if (bench_index(&x, base_dir, (size_t)(quick ? 32 : 128) << 20) < 0)
		goto out;
	rc = 0;
out:
	free(x.rnd);
	free(x.dst);
	free(x.real);
	free(x.z);
	free(x.zlen);
	free(x.pq);
	ZSTD_freeCCtx(x.cc);
	ZSTD_freeDCtx(x.dc);
	cdc_free(x.c);
	fp_ctx_free(x.fpc);
	raid_codec_free(x.rc);
	return rc;
}
