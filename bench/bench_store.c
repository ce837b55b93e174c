/* bench/bench_store.c: `bkstor-bench store`: the chunker against memcpy, then
 * in-process store ingest and restore of backup generations on an 8+2 array of file
 * disks, and the bytes stored against casync's on the same generations.
 *
 * Data: a base made of real files (a tar of /usr/share and /usr/lib, 600 MB; 100 MB
 * with --quick), and generations 2..5 from bench/gen_generations.py at 2%
 * change (found under $top_srcdir, else the current directory). The
 * generations are read into RAM before any timing: ingest is measured from memory.
 *
 * Figures (name: value):
 *   chunker_gbps, chunker_vs_memcpy      (bench_chunker)
 *   ingest_unique_gbps   generation 1 into an empty store, commit included
 *   ingest_dup_gbps      median of generations 2..5, commit included (>= 95% dup)
 *   restore_gbps         generation 5 read back (cold metadata cache: reopened)
 *   stored_bytes         rows in use after 5 generations (data + metadata)
 *   casync_bytes, stored_vs_casync   when casync is installed
 *   index_ram_bytes_per_chunk        Bloom filters + sparse directories per chunk
 *   dedup_ratio, compression_ratio
 *   smallfile_meta_bytes_per_file   5 000 objects of 1 KiB, each synced (store_sync),
 *                        then a commit and a GC pass: metadata rows x row size / files
 *   smallfile_physical_bytes_per_file  all rows in use / files (logical: 1024)
 *   smallfile_syncs_per_s            put + sync of one 1 KiB object, per second
 */
#include <config.h>

#include "bench/bench.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dedup/store.h"
#include "dedup/store_int.h" /* store_pool: rows and transaction groups counted */
#include "storage/array.h"
#include "storage/disk.h"

int bench_chunker(int argc, char **argv, int quick);
int tu_generations(const char *dir, uint64_t base, int n, double frac, uint64_t seed);

#define NDISK 10
#define GENS 5

static int sh(const char *cmd)
{
	int r = system(cmd);
	return r == 0 ? 0 : -1;
}

static uint8_t *slurp(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY);
	struct stat st;
	uint8_t *b = NULL;
	if (fd < 0 || fstat(fd, &st) != 0)
		goto out;
	b = malloc((size_t)st.st_size + 1);
	size_t got = 0;
	while (b && got < (size_t)st.st_size) {
		ssize_t n = read(fd, b + got, (size_t)st.st_size - got);
		if (n <= 0) {
			free(b);
			b = NULL;
			break;
		}
		got += (size_t)n;
	}
	*len = got;
out:
	if (fd >= 0)
		close(fd);
	return b;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* See bench.h (also used by bench_stages.c). */
arr *bench_make_array(const char *dir, uint64_t disk_bytes, disk_engine *eng, int create)
{
	disk *d[NDISK];
	arr_config cfg;
	bks_err e = {0};
	arr *a = NULL;
	char p[600];
	for (int i = 0; i < NDISK; i++) {
		snprintf(p, sizeof(p), "%s/disk%d", dir, i);
		if (create) {
			int fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0600);
			if (fd < 0 || ftruncate(fd, (off_t)disk_bytes) != 0)
				return NULL;
			close(fd);
		}
		if (disk_open_on(eng, p, &d[i], &e) < 0) {
			fprintf(stderr, "bench: %s\n", e.msg);
			return NULL;
		}
	}
	arr_config_defaults(&cfg);
	int r = create ? arr_create(&cfg, d, NDISK, NULL, 0, 0, &a, &e)
	               : arr_import(&cfg, d, NDISK, &a, &e);
	if (r < 0) {
		fprintf(stderr, "bench: array: %s\n", bks_errmsg(&e, r));
		for (int i = 0; i < NDISK; i++)
			disk_close(d[i]);
		return NULL;
	}
	return a;
}

static int store_dir(const char *dir, const char *outfile, int gens, uint64_t *bytes,
                     double *secs)
{
	char cmd[2048];
	double t0 = bench_now();
	for (int g = 1; g <= gens; g++) {
		snprintf(cmd, sizeof(cmd), "casync make --store='%s/casync.castr' '%s/casync-%d.caibx' "
		         "'%s/gen%02d.img' >/dev/null 2>&1", dir, dir, g, dir, g);
		if (sh(cmd) < 0)
			return -1;
	}
	*secs = bench_now() - t0;
	snprintf(cmd, sizeof(cmd), "du -sb '%s/casync.castr' | cut -f1 > '%s'", dir, outfile);
	if (sh(cmd) < 0)
		return -1;
	FILE *f = fopen(outfile, "r");
	unsigned long long v = 0;
	if (!f || fscanf(f, "%llu", &v) != 1) {
		if (f)
			fclose(f);
		return -1;
	}
	fclose(f);
	*bytes = v;
	return 0;
}

/* Small synced objects on a fresh array in dir/small: what NFS COMMIT and iSCSI
 * SYNCHRONIZE CACHE of small files cost in space and time. */
static int bench_smallfiles(const char *dir, disk_engine *eng)
{
	enum { NFILES = 5000, LEN = 1024 };
	char sub[600];
	bks_err e = {0};
	store *s = NULL;
	uint8_t buf[LEN];
	int rc = 1, r;

	snprintf(sub, sizeof(sub), "%s/small", dir);
	if (mkdir(sub, 0700) != 0 && errno != EEXIST)
		return 1;
	arr *a = bench_make_array(sub, 256ull << 20, eng, 1);
	if (!a)
		return 1;
	if ((r = store_create(a, NULL, &s, &e)) < 0) {
		fprintf(stderr, "bench: small-file store: %s\n", bks_errmsg(&e, r));
		arr_close(a);
		return 1;
	}
	double t0 = bench_now();
	for (int i = 0; i < NFILES; i++) {
		uint64_t id;
		uint64_t x = 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1);
		for (int j = 0; j < LEN; j++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			buf[j] = j < LEN / 2 ? (uint8_t)('a' + j % 23) : (uint8_t)x;
		}
		if ((r = store_put(s, buf, LEN, &id)) < 0 || (r = store_sync(s, id, &e)) < 0) {
			fprintf(stderr, "bench: small file %d: %s\n", i, strerror(-r));
			goto out;
		}
	}
	double dt = bench_now() - t0;
	if ((r = store_commit(s, &e)) < 0 || (r = store_gc_run(s, 0.5)) < 0 ||
	    (r = store_commit(s, &e)) < 0) {
		fprintf(stderr, "bench: small files: commit/GC: %s\n", strerror(-r));
		goto out;
	}
	store_stats st;
	store_get_stats(s, &st);
	double row = (double)pool_row_bytes(store_pool(s));
	bench_print("smallfile_meta_bytes_per_file", (double)st.rows_meta * row / NFILES);
	bench_print("smallfile_physical_bytes_per_file", (double)st.physical_bytes / NFILES);
	bench_print("smallfile_syncs_per_s", NFILES / dt);
	rc = 0;
out:
	store_close(s);
	return rc;
}

int bench_store(int argc, char **argv, int quick)
{
	const char *base_dir = "/var/tmp";
	char dir[512], p[700], cmd[2048];
	uint64_t base = quick ? (100ull << 20) : (600ull << 20);
	uint8_t *gen[GENS + 1] = {0};
	size_t len[GENS + 1] = {0};
	uint64_t ids[GENS + 1];
	disk_engine *eng = NULL;
	store *s = NULL;
	bks_err e = {0};
	int rc = 1;

	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--dir") && i + 1 < argc)
			base_dir = argv[++i];
	int small_only = 0;
	for (int i = 1; i < argc; i++)
		small_only |= !strcmp(argv[i], "--smallfiles");
	if (!small_only && bench_chunker(argc, argv, quick) != 0)
		return 1;
	snprintf(dir, sizeof(dir), "%s/bkstor-bench-store-XXXXXX", base_dir);
	if (!mkdtemp(dir)) {
		perror(dir);
		return 1;
	}
	if (small_only) {
		/* Only the small-file figures (bkstor-bench store --smallfiles). */
		eng = NULL;
		if (disk_engine_new(&eng) < 0 || bench_smallfiles(dir, eng) != 0)
			goto out;
		rc = 0;
		goto out;
	}
	/* Base from real files: text, binaries, already-compressed bits, as a backup of
	 * a system disk has. */
	snprintf(p, sizeof(p), "%s/base.img", dir);
	snprintf(cmd, sizeof(cmd), "tar -cf - /usr/share /usr/lib 2>/dev/null | head -c %llu > '%s'",
	         (unsigned long long)base, p);
	if (sh(cmd) < 0) {
		fprintf(stderr, "bench: could not build the base from /usr\n");
		goto out;
	}
	/* Generations from bench/gen_generations.py over the real-file base
	 * (tu_generations would start from random bytes). */
	const char *top = getenv("top_srcdir");
	snprintf(cmd, sizeof(cmd), "python3 '%s/bench/gen_generations.py' '%s' '%s' %d "
	         "0.02 1", top ? top : ".", p, dir, GENS);
	if (sh(cmd) < 0) {
		fprintf(stderr, "bench: bench/gen_generations.py failed (run from the source "
		         "tree or set top_srcdir)\n");
		goto out;
	}
	uint64_t touch = 0;
	for (int g = 1; g <= GENS; g++) {
		snprintf(p, sizeof(p), "%s/gen%02d.img", dir, g);
		if (!(gen[g] = slurp(p, &len[g]))) {
			fprintf(stderr, "bench: reading %s failed\n", p);
			goto out;
		}
		/* Touch every page from user space once: on this VM the first user access
		 * to a page the kernel filled costs ~25 us (shadow page tables), which a
		 * real ingest, reusing its receive buffers, never pays. */
		for (size_t i = 0; i < len[g]; i += 4096)
			touch += gen[g][i];
	}
	if (touch == 1)
		fprintf(stderr, " "); /* keep the loop */
	/* Disks: room for the first generation raw plus headroom. */
	uint64_t disk_bytes = (base * 3 / (NDISK - 2)) + (64ull << 20);
	if (disk_engine_new(&eng) < 0)
		goto out;
	arr *a = bench_make_array(dir, disk_bytes, eng, 1);
	if (!a)
		goto out;
	store_params sp;
	store_params_default(&sp);
	sp.auto_commit_bytes = 0;
	if (store_create(a, &sp, &s, &e) < 0) {
		fprintf(stderr, "bench: store: %s\n", e.msg);
		goto out;
	}
	double rates[GENS + 1];
	for (int g = 1; g <= GENS; g++) {
		double t0 = bench_now();
		int r = store_put(s, gen[g], len[g], &ids[g]);
		double t1 = bench_now();
		if (r == 0)
			r = store_commit(s, &e);
		double dt = bench_now() - t0;
		if (getenv("BKS_BENCH_VERBOSE"))
			fprintf(stderr, "gen %d: put %.3f s, commit %.3f s\n", g, t1 - t0,
			        bench_now() - t1);
		if (r < 0) {
			fprintf(stderr, "bench: ingest of generation %d failed: %s\n", g,
			        bks_errmsg(&e, r));
			goto out;
		}
		rates[g] = (double)len[g] / dt / 1e9;
		if (getenv("BKS_BENCH_VERBOSE")) {
			store_stats xs;
			store_get_stats(s, &xs);
			fprintf(stderr, "  index: %llu entries, %u runs; lookups %llu: memtable %llu, "
			        "locality %llu, runs %llu, misses %llu; block reads %llu\n",
			        (unsigned long long)xs.index_entries, xs.index_runs,
			        (unsigned long long)xs.index_lookups,
			        (unsigned long long)xs.index_memtable_hits,
			        (unsigned long long)xs.index_locality_hits,
			        (unsigned long long)xs.index_run_hits,
			        (unsigned long long)xs.index_misses,
			        (unsigned long long)xs.index_block_reads);
		}
		if (getenv("BKS_BENCH_VERBOSE"))
			fprintf(stderr, "gen %d: %.3f GB/s\n", g, rates[g]);
	}
	bench_print("ingest_unique_gbps", rates[1]);
	double dup[GENS - 1];
	for (int g = 2; g <= GENS; g++)
		dup[g - 2] = rates[g];
	qsort(dup, GENS - 1, sizeof(double), cmp_double);
	bench_print("ingest_dup_gbps", (dup[1] + dup[2]) / 2); /* median of 4 */

	store_stats st;
	store_get_stats(s, &st);
	bench_print("stored_bytes", (double)st.physical_bytes);
	bench_print("dedup_ratio", st.dedup_ratio);
	bench_print("compression_ratio", st.compression_ratio);
	bench_print("index_ram_bytes_per_chunk",
	            st.index_entries ? (double)st.index_ram_fixed_bytes / (double)st.index_entries : 0);
	store_close(s);
	s = NULL;

	/* Restore generation 5 from a reopened store (nothing cached). */
	a = bench_make_array(dir, disk_bytes, eng, 0);
	if (!a || store_open(a, &sp, &s, &e) < 0) {
		fprintf(stderr, "bench: reopen: %s\n", e.msg);
		goto out;
	}
	uint8_t *buf = malloc(8 << 20);
	size_t total = 0;
	double t0 = bench_now();
	int bad = 0;
	while (total < len[GENS]) {
		size_t got = 0;
		if (store_read(s, ids[GENS], total, buf, 8 << 20, &got) < 0 || got == 0) {
			bad = 1;
			break;
		}
		if (memcmp(buf, gen[GENS] + total, got))
			bad = 1;
		total += got;
	}
	double dt = bench_now() - t0;
	free(buf);
	if (bad) {
		fprintf(stderr, "bench: restore returned wrong data\n");
		goto out;
	}
	bench_print("restore_gbps", (double)total / dt / 1e9);

	uint64_t cbytes;
	double csecs;
	snprintf(p, sizeof(p), "%s/casync.size", dir);
	if (system("command -v casync >/dev/null 2>&1") == 0 &&
	    store_dir(dir, p, GENS, &cbytes, &csecs) == 0) {
		bench_print("casync_bytes", (double)cbytes);
		bench_print("casync_seconds", csecs);
		bench_print("stored_vs_casync", (double)st.physical_bytes / (double)cbytes);
	} else {
		fprintf(stderr, "bench: casync not installed (apt-get install casync); "
		         "stored_vs_casync skipped\n");
	}
	store_close(s);
	s = NULL;
	if (bench_smallfiles(dir, eng) != 0)
		goto out;
	rc = 0;
out:
	store_close(s);
	disk_engine_free(eng);
	for (int g = 1; g <= GENS; g++)
		free(gen[g]);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (sh(cmd) < 0)
		fprintf(stderr, "bench: could not remove %s\n", dir);
	return rc;
}
