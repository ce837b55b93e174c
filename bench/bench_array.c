/* bench/bench_array.c: the array against its own disks, measured in one run.
 *
 * Eleven file disks (10 members of an 8+2 array with 256 KiB strips, and 1 spare) are
 * created in a fresh mkdtemp directory under --dir (default /var/tmp), opened through
 * the project's disk layer on one shared AIO engine (libaio + O_DIRECT, so reads and
 * writes reach the device and not the guest's page cache) and removed at the end.
 * Every file is written in full once before any measurement, so no figure includes
 * the file system allocating blocks.
 *
 * Figures (MB = 1e6 bytes; array figures count data bytes, not parity):
 *   disk_seq_write_mbps   the baseline: the 10 member files written sequentially and
 *                         concurrently over the very bytes the array writes (its data
 *                         area), by disk_io_run() batches of BA_BATCH 256 KiB writes
 *                         per disk (80 requests), then a flush of every disk. That is
 *                         the array's own queue shape: arr_write_rows() encodes
 *                         ARR_BATCH_ROWS (8) rows and hands their 8 strips per disk to
 *                         one disk_io_run() call. (1 or 32 per disk measured the same
 *                         within the noise on the 2-core VM the results come from.)
 *   array_write_mbps      arr_write_rows() of 8 rows per call over every row, then
 *                         arr_commit(), all timed.
 *   array_write_efficiency  array_write_mbps / (k/N * disk_seq_write_mbps): 1.0 when
 *                         the array costs nothing beyond writing its parity.
 *   healthy/degraded_read_mbps  arr_read() of every row (whole rows, aligned buffer)
 *                         through the fault layer; degraded after flt_disappear() of
 *                         one member.
 *   rebuild_full_s / rebuild_half_s  arr_bg_run() onto a spare after arr_fail() of a
 *                         member, unthrottled, with every row live / every other row.
 * The host is a shared VM whose disk speed drifts by tens of percent within seconds,
 * so the two sides of each ratio are measured alternately (A B, B A, A B) and each
 * figure is its best run. BKS_BENCH_VERBOSE=1 prints every run on stderr.
 * Data is checked after the timed passes (and every strip's stamp during the read
 * passes): a wrong byte fails the benchmark, since figures for wrong results are
 * worthless.
 */
#include <config.h>

#include "bench/bench.h"

#include "common/bks.h"
#include "storage/array.h"
#include "storage/label.h" /* ARR_DATA_OFF: where the raw disks' data area starts */
#include "storage/disk.h"
#include "storage/fault.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BA_N 10                          /* members */
#define BA_K (BA_N - 2)                  /* data strips per row */
#define BA_NFILES (BA_N + 1)             /* members + the spare */
#define BA_STRIP ((size_t)256 * 1024)
#define BA_BATCH 8                       /* rows per arr_write_rows() call, and 256 KiB
                                          * writes per disk per baseline batch */
#define BA_WRITE_RUNS 3                  /* baseline and array write runs (odd: see
                                          * ba_writes) */
#define BA_READ_RUNS 3                   /* healthy and degraded read runs */
#define BA_REBUILD_RUNS 2                /* rebuild runs of each kind */
#define BA_MAGIC 0x626b7374726f7731ull   /* "bkstrow1": start of every strip */
#define BA_PATH_MAX (PATH_MAX + 32)

typedef struct ba_ctx {
	char dir[PATH_MAX];
	char path[BA_NFILES][BA_PATH_MAX];
	int nfiles;          /* files created (removed at the end) */
	int have_dir;
	uint64_t file_size;  /* bytes per file disk */
	uint64_t rows;       /* rows written: every row the members hold */
	size_t row_bytes;    /* k strips */
	uint8_t *pat;        /* BA_BATCH rows of random data; row r uses pat row r % BA_BATCH */
	uint8_t *rbuf;       /* one row, read back */
	uint8_t *ebuf;       /* one row, expected */
	disk_engine *eng;    /* one AIO context for every disk the benchmark opens */
} ba_ctx;

static double mb(double bytes) { return bytes / 1e6; }

/* Each run's figure on stderr when BKS_BENCH_VERBOSE is set (to see the spread). */
static void ba_note(const char *what, int run, double v)
{
	if (getenv("BKS_BENCH_VERBOSE"))
		fprintf(stderr, "  %s run %d: %.3f\n", what, run, v);
}

/* The first bytes of each strip name the row and the strip, so a strip that lands on
 * the wrong disk or row (or is reconstructed wrong) is caught even by the cheap check
 * the timed read passes do. */
static void ba_stamp(uint8_t *row_data, uint64_t row)
{
	for (int i = 0; i < BA_K; i++) {
		uint64_t v[3] = {BA_MAGIC, row, (uint64_t)i};
		memcpy(row_data + (size_t)i * BA_STRIP, v, sizeof(v));
	}
}

static int ba_stamps_ok(const uint8_t *row_data, uint64_t row)
{
	for (int i = 0; i < BA_K; i++) {
		uint64_t v[3] = {BA_MAGIC, row, (uint64_t)i};
		if (memcmp(row_data + (size_t)i * BA_STRIP, v, sizeof(v)) != 0)
			return 0;
	}
	return 1;
}

/* Read row through the array and compare every byte with what was written. */
static int ba_verify_row(ba_ctx *c, arr *a, uint64_t row)
{
	int r = arr_read(a, row, 0, c->rbuf, c->row_bytes);
	if (r) {
		fprintf(stderr, "bench_array: verify: arr_read row %llu: %s\n",
		        (unsigned long long)row, strerror(-r));
		return r;
	}
	memcpy(c->ebuf, c->pat + (size_t)(row % BA_BATCH) * c->row_bytes, c->row_bytes);
	ba_stamp(c->ebuf, row);
	if (memcmp(c->rbuf, c->ebuf, c->row_bytes) != 0) {
		fprintf(stderr, "bench_array: verify: row %llu reads back different bytes "
		        "than were written\n", (unsigned long long)row);
		return -EIO;
	}
	return 0;
}

/* Verify rows first, first+step, ... (up to n of them, below c->rows). */
static int ba_verify_rows(ba_ctx *c, arr *a, uint64_t first, uint64_t step, int n)
{
	for (uint64_t row = first; n > 0 && row < c->rows; row += step, n--) {
		int r = ba_verify_row(c, a, row);
		if (r)
			return r;
	}
	return 0;
}

static int ba_make_files(ba_ctx *c, const char *parent)
{
	int n = snprintf(c->dir, sizeof(c->dir), "%s/bkstor-bench-XXXXXX", parent);
	if (n < 0 || (size_t)n >= sizeof(c->dir)) {
		fprintf(stderr, "bench_array: --dir %s: path too long\n", parent);
		return -ENAMETOOLONG;
	}
	if (!mkdtemp(c->dir)) {
		int r = -errno;
		fprintf(stderr, "bench_array: mkdtemp in %s: %s\n", parent, strerror(errno));
		return r;
	}
	c->have_dir = 1;
	for (int i = 0; i < BA_NFILES; i++) {
		char name[BA_PATH_MAX]; /* not straight into c->path: -Wrestrict sees c twice */
		snprintf(name, sizeof(name), "%s/%s%d", c->dir, i < BA_N ? "disk" : "spare", i);
		memcpy(c->path[i], name, sizeof(name));
		int fd = open(c->path[i], O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0) {
			int r = -errno;
			fprintf(stderr, "bench_array: create %s: %s\n", c->path[i], strerror(errno));
			return r;
		}
		c->nfiles = i + 1;
		if (ftruncate(fd, (off_t)c->file_size) != 0) {
			int r = -errno;
			fprintf(stderr, "bench_array: size %s: %s\n", c->path[i], strerror(errno));
			close(fd);
			return r;
		}
		close(fd);
	}
	return 0;
}

static void ba_remove_files(ba_ctx *c)
{
	for (int i = 0; i < c->nfiles; i++)
		if (unlink(c->path[i]) != 0)
			fprintf(stderr, "bench_array: remove %s: %s\n", c->path[i], strerror(errno));
	if (c->have_dir && rmdir(c->dir) != 0)
		fprintf(stderr, "bench_array: remove %s: %s\n", c->dir, strerror(errno));
}

/* Open file disk i; refuse one without O_DIRECT (the figures would be the page
 * cache's). */
static int ba_open(ba_ctx *c, int i, disk **out)
{
	bks_err e = {0};
	int r = disk_open_on(c->eng, c->path[i], out, &e);
	if (r) {
		fprintf(stderr, "bench_array: %s\n", bks_errmsg(&e, r));
		return r;
	}
	if (!disk_get_info(*out)->direct) {
		fprintf(stderr, "bench_array: %s: the file system refuses O_DIRECT; use --dir "
		        "on a disk-backed file system\n", c->path[i]);
		disk_close(*out);
		*out = NULL;
		return -EINVAL;
	}
	return 0;
}

static int ba_open_range(ba_ctx *c, int first, int n, disk **d)
{
	for (int i = 0; i < n; i++) {
		int r = ba_open(c, first + i, &d[i]);
		if (r) {
			while (i-- > 0) {
				disk_close(d[i]);
				d[i] = NULL;
			}
			return r;
		}
	}
	return 0;
}

static void ba_close_all(disk **d, int n)
{
	for (int i = 0; i < n; i++) {
		disk_close(d[i]);
		d[i] = NULL;
	}
}

/* Write [off, end) of every disk sequentially, BA_BATCH 256 KiB writes per disk per
 * disk_io_run() call, then flush every disk. The bytes come from c->pat. */
static int ba_seq_write(ba_ctx *c, disk **d, int nd, uint64_t off, uint64_t end)
{
	disk_io ios[BA_BATCH * BA_NFILES];
	int r;

	while (off < end) {
		int nio = 0;
		for (int b = 0; b < BA_BATCH && off < end; b++, off += BA_STRIP)
			for (int j = 0; j < nd; j++)
				ios[nio++] = (disk_io){
					.d = d[j], .op = DISK_WRITE, .len = BA_STRIP, .off = off,
					.buf = c->pat + ((size_t)b * BA_K + (size_t)(j % BA_K)) * BA_STRIP};
		if ((r = disk_io_run(ios, nio)) != 0) {
			fprintf(stderr, "bench_array: sequential write: %s\n", strerror(-r));
			return r;
		}
	}
	for (int j = 0; j < nd; j++)
		if ((r = disk_flush(d[j])) != 0) {
			fprintf(stderr, "bench_array: flush %s: %s\n", disk_path(d[j]), strerror(-r));
			return r;
		}
	return 0;
}

/* The baseline: one run over the data area of the 10 member files, through handles
 * of its own. Returns MB/s, or a negative errno. */
static double ba_baseline_run(ba_ctx *c, disk **raw)
{
	uint64_t lo = ARR_DATA_OFF, hi = ARR_DATA_OFF + c->rows * BA_STRIP;
	double t0 = bench_now();
	int r = ba_seq_write(c, raw, BA_N, lo, hi);
	if (r)
		return r;
	return mb((double)BA_N * (double)(hi - lo)) / (bench_now() - t0);
}

/* One run of the array write: every row, BA_BATCH per call, then a commit. Stamping
 * a row costs a few stores; it stays in the timed loop. Returns MB/s of data, or a
 * negative errno. */
static double ba_array_run(ba_ctx *c, arr *a)
{
	bks_err e = {0};
	int r;
	double t0 = bench_now();

	for (uint64_t row = 0; row < c->rows; row += BA_BATCH) {
		uint32_t n = (uint32_t)BKS_MIN((uint64_t)BA_BATCH, c->rows - row);
		for (uint32_t b = 0; b < n; b++)
			ba_stamp(c->pat + (size_t)b * c->row_bytes, row + b);
		if ((r = arr_write_rows(a, row, n, c->pat, &e)) != 0) {
			fprintf(stderr, "bench_array: arr_write_rows %llu: %s\n",
			        (unsigned long long)row, bks_errmsg(&e, r));
			return r;
		}
	}
	if ((r = arr_commit(a, "bench", 5, &e)) != 0) {
		fprintf(stderr, "bench_array: arr_commit: %s\n", bks_errmsg(&e, r));
		return r;
	}
	return mb((double)c->rows * (double)c->row_bytes) / (bench_now() - t0);
}

/* Writes. Every file (members and spare) is filled once first, so every later write
 * overwrites allocated blocks. Then the array is created (10 members, 1 spare) and
 * baseline and array runs alternate (B A, A B, B A), so a slow spell of the shared
 * host disk hits both alike; each figure is its best run. The baseline writes the
 * member files through separate handles over the very bytes the array writes (its
 * data area); with an odd number of runs the last step is an array run, so the
 * array's rows are intact afterwards. */
static int ba_writes(ba_ctx *c, double *seq_mbps, double *arr_mbps)
{
	disk *d[BA_NFILES] = {0}, *raw[BA_N] = {0};
	arr_config cfg;
	arr *a = NULL;
	bks_err e = {0};
	int r;

	if ((r = ba_open_range(c, 0, BA_NFILES, d)) != 0)
		return r;
	printf("direct: 1\n");
	if ((r = ba_seq_write(c, d, BA_NFILES, 0, c->file_size)) != 0) {
		ba_close_all(d, BA_NFILES);
		return r;
	}
	arr_config_defaults(&cfg);
	cfg.name = "bench";
	r = arr_create(&cfg, d, BA_N, d + BA_N, 1, 0, &a, &e);
	if (r) {
		fprintf(stderr, "bench_array: arr_create: %s\n", bks_errmsg(&e, r));
		ba_close_all(d, BA_NFILES);
		return r;
	}
	/* The array owns d[] now. */
	if (arr_rows(a) != c->rows || arr_row_bytes(a) != c->row_bytes) {
		fprintf(stderr, "bench_array: array has %llu rows of %zu bytes, expected %llu "
		        "of %zu\n", (unsigned long long)arr_rows(a), arr_row_bytes(a),
		        (unsigned long long)c->rows, c->row_bytes);
		r = -EINVAL;
		goto close_arr;
	}
	if ((r = ba_open_range(c, 0, BA_N, raw)) != 0)
		goto close_arr;
	*seq_mbps = *arr_mbps = 0;
	for (int run = 0; run < BA_WRITE_RUNS; run++) {
		for (int step = 0; step < 2; step++) {
			int base = (run % 2 == 0) == (step == 0);
			double v = base ? ba_baseline_run(c, raw) : ba_array_run(c, a);
			if (v < 0) {
				r = (int)v;
				goto close_raw;
			}
			ba_note(base ? "disk_seq_write_mbps" : "array_write_mbps", run, v);
			if (base)
				*seq_mbps = BKS_MAX(*seq_mbps, v);
			else
				*arr_mbps = BKS_MAX(*arr_mbps, v);
		}
	}
	r = ba_verify_rows(c, a, 0, 1, 2 * BA_N);
close_raw:
	ba_close_all(raw, BA_N);
close_arr:
	arr_close(a);
	return r;
}

/* One sequential pass of whole-row reads, checking each row's stamps (cheap).
 * Returns MB/s, or a negative errno. */
static double ba_read_pass(ba_ctx *c, arr *a)
{
	double t0 = bench_now();
	for (uint64_t row = 0; row < c->rows; row++) {
		int r = arr_read(a, row, 0, c->rbuf, c->row_bytes);
		if (r) {
			fprintf(stderr, "bench_array: arr_read row %llu: %s\n",
			        (unsigned long long)row, strerror(-r));
			return r;
		}
		if (!ba_stamps_ok(c->rbuf, row)) {
			fprintf(stderr, "bench_array: row %llu read back wrong\n",
			        (unsigned long long)row);
			return -EIO;
		}
	}
	return mb((double)c->rows * (double)c->row_bytes) / (bench_now() - t0);
}

static int ba_health(arr *a)
{
	arr_status *st = malloc(sizeof(*st));
	int h = -1;
	if (st) {
		arr_get_status(a, st);
		h = st->health;
		free(st);
	}
	return h;
}

/* Open the members through the fault layer and import them (no spare: a vanished
 * member is not replaced). Returns 0 with *out and the wrapped disks in d[] (owned
 * by the array; d[] only to apply fault rules), or -errno with nothing left open. */
static int ba_import_wrapped(ba_ctx *c, flt_world *w, disk **d, arr **out)
{
	arr_config cfg;
	bks_err e = {0};
	int r;

	for (int i = 0; i < BA_N; i++) {
		disk *in;
		if ((r = ba_open(c, i, &in)) != 0)
			goto close_disks;
		if ((r = flt_wrap(w, in, &d[i])) != 0) {
			fprintf(stderr, "bench_array: flt_wrap: %s\n", strerror(-r));
			disk_close(in);
			goto close_disks;
		}
	}
	arr_config_defaults(&cfg);
	if ((r = arr_import(&cfg, d, BA_N, out, &e)) != 0) {
		fprintf(stderr, "bench_array: arr_import: %s\n", bks_errmsg(&e, r));
		goto close_disks;
	}
	return 0;
close_disks:
	ba_close_all(d, BA_N);
	return r;
}

/* Reads. The array is imported twice at once, each time through the fault layer:
 * one stays healthy, the other loses member 3 (flt_disappear). Reads never write
 * (a missing strip is the rebuild's business, not a read repair's), so the two
 * handles can share the files, and healthy and degraded passes alternate (H D, D H,
 * H D) so a slow spell of the shared host disk hits both alike. */
static int ba_reads(ba_ctx *c, double *healthy, double *degraded)
{
	flt_world *w = NULL;
	disk *dh[BA_N] = {0}, *dd[BA_N] = {0};
	arr *ah = NULL, *ad = NULL;
	const int victim = 3;
	int r;

	if ((r = flt_world_new(1, &w)) != 0) {
		fprintf(stderr, "bench_array: flt_world_new: %s\n", strerror(-r));
		return r;
	}
	if ((r = ba_import_wrapped(c, w, dh, &ah)) != 0)
		goto free_world;
	if ((r = ba_import_wrapped(c, w, dd, &ad)) != 0)
		goto close_arrays;
	flt_disappear(dd[victim]);
	*healthy = *degraded = 0;
	for (int run = 0; run < BA_READ_RUNS; run++) {
		for (int step = 0; step < 2; step++) {
			int h = (run % 2 == 0) == (step == 0);
			double v = ba_read_pass(c, h ? ah : ad);
			if (v < 0) {
				r = (int)v;
				goto close_arrays;
			}
			ba_note(h ? "healthy_read_mbps" : "degraded_read_mbps", run, v);
			if (h)
				*healthy = BKS_MAX(*healthy, v);
			else
				*degraded = BKS_MAX(*degraded, v);
		}
	}
	if (ba_health(ah) != ARR_OK || ba_health(ad) != ARR_DEGRADED) {
		fprintf(stderr, "bench_array: the healthy array is %s and the degraded one %s "
		        "after the reads\n", arr_health_name(ba_health(ah)),
		        arr_health_name(ba_health(ad)));
		r = -EIO;
		goto close_arrays;
	}
	/* The lost disk holds every kind of strip (data, P, Q) in BA_N consecutive rows:
	 * each reconstructs right. */
	r = ba_verify_rows(c, ad, c->rows / 2, 1, BA_N);
close_arrays:
	arr_close(ad);
	arr_close(ah);
free_world:
	flt_world_free(w);
	return r;
}

static int ba_live_even(void *ctx, uint64_t row)
{
	(void)ctx;
	return row % 2 == 0;
}

/* Rebuilds: full, half, full, half, each failing the next member and rebuilding onto
 * the spare (the disk released by the previous rebuild is added back as the spare).
 * After a half rebuild the odd rows of that slot are stale (they were declared dead),
 * so from then on only even rows are verified. */
static int ba_rebuilds(ba_ctx *c, double *full_s, double *half_s)
{
	disk *d[BA_NFILES] = {0};
	int slot_file[BA_N], spare_file = BA_N;
	arr_config cfg;
	arr *a = NULL;
	bks_err e = {0};
	int r, odd_valid = 1;

	if ((r = ba_open_range(c, 0, BA_NFILES, d)) != 0)
		return r;
	arr_config_defaults(&cfg);
	cfg.bg_min_bps = cfg.bg_max_bps = 0; /* unlimited */
	if ((r = arr_import(&cfg, d, BA_NFILES, &a, &e)) != 0) {
		fprintf(stderr, "bench_array: arr_import: %s\n", bks_errmsg(&e, r));
		ba_close_all(d, BA_NFILES);
		return r;
	}
	for (int s = 0; s < BA_N; s++)
		slot_file[s] = s;
	*full_s = *half_s = 1e300;
	for (int run = 0; run < 2 * BA_REBUILD_RUNS; run++) {
		int half = run % 2, s = run % BA_N, victim = slot_file[s];
		if (run > 0) {
			disk *sp;
			if ((r = ba_open(c, spare_file, &sp)) != 0)
				goto close_arr;
			if ((r = arr_add_spare(a, sp, 0, &e)) != 0) {
				fprintf(stderr, "bench_array: arr_add_spare: %s\n", bks_errmsg(&e, r));
				disk_close(sp);
				goto close_arr;
			}
		}
		arr_set_live_fn(a, half ? ba_live_even : NULL, NULL);
		if ((r = arr_fail(a, c->path[victim], &e)) != 0) {
			fprintf(stderr, "bench_array: arr_fail: %s\n", bks_errmsg(&e, r));
			goto close_arr;
		}
		if (ba_health(a) != ARR_REBUILDING) {
			fprintf(stderr, "bench_array: spare not claimed after arr_fail\n");
			r = -EIO;
			goto close_arr;
		}
		double t0 = bench_now();
		if ((r = arr_bg_run(a)) < 0) {
			fprintf(stderr, "bench_array: arr_bg_run: %s\n", strerror(-r));
			goto close_arr;
		}
		double t = bench_now() - t0;
		ba_note(half ? "rebuild_half_s" : "rebuild_full_s", run, t);
		if (half)
			*half_s = BKS_MIN(*half_s, t);
		else
			*full_s = BKS_MIN(*full_s, t);
		if (ba_health(a) != ARR_OK) {
			fprintf(stderr, "bench_array: array not ONLINE after the rebuild\n");
			r = -EIO;
			goto close_arr;
		}
		slot_file[s] = spare_file;
		spare_file = victim;
		odd_valid = odd_valid && !half;
		/* BA_N consecutive (or even) rows: the rebuilt slot holds a data strip in
		 * most of them. */
		r = ba_verify_rows(c, a, 0, odd_valid ? 1 : 2, BA_N);
		if (r)
			goto close_arr;
	}
	/* The end-to-end check: the last even row, read back after all of the above. */
	r = ba_verify_row(c, a, (c->rows - 1) & ~(uint64_t)1);
close_arr:
	arr_close(a);
	return r;
}

int bench_array(int argc, char **argv, int quick)
{
	ba_ctx c = {0};
	const char *parent = "/var/tmp";
	double seq = 0, wr = 0, hr = 0, dr = 0, full = 0, half = 0;
	int r;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
			parent = argv[++i];
		else if (strncmp(argv[i], "--dir=", 6) == 0)
			parent = argv[i] + 6;
	}
	/* 256 MiB per disk: 1020 rows, 2 GiB of data; a quarter of that with --quick. */
	c.file_size = quick ? 64ull << 20 : 256ull << 20;
	c.rows = (c.file_size - ARR_DATA_OFF) / BA_STRIP;
	c.row_bytes = (size_t)BA_K * BA_STRIP;
	c.pat = bks_alloc_aligned(DISK_ALIGN, (size_t)BA_BATCH * c.row_bytes);
	c.rbuf = bks_alloc_aligned(DISK_ALIGN, c.row_bytes);
	c.ebuf = bks_alloc_aligned(DISK_ALIGN, c.row_bytes);
	if (!c.pat || !c.rbuf || !c.ebuf) {
		fprintf(stderr, "bench_array: out of memory\n");
		r = -ENOMEM;
		goto free_bufs;
	}
	/* One context for all: the kernel's AIO budget (fs.aio-max-nr) is shared by
	 * every process on the machine, and the array is opened twice at once below. */
	if ((r = disk_engine_new(&c.eng)) != 0) {
		fprintf(stderr, "bench_array: io_setup: %s (raise fs.aio-max-nr?)\n",
		        strerror(-r));
		goto free_bufs;
	}
	bks_rng rng;
	bks_rng_seed(&rng, 42);
	bks_rng_fill(&rng, c.pat, (size_t)BA_BATCH * c.row_bytes);

	if ((r = ba_make_files(&c, parent)) != 0)
		goto remove_files;
	if ((r = ba_writes(&c, &seq, &wr)) != 0)
		goto remove_files;
	bench_print("disk_seq_write_mbps", seq);
	bench_print("array_write_mbps", wr);
	bench_print("array_write_efficiency", wr / ((double)BA_K / BA_N * seq));
	if ((r = ba_reads(&c, &hr, &dr)) != 0)
		goto remove_files;
	bench_print("healthy_read_mbps", hr);
	bench_print("degraded_read_mbps", dr);
	bench_print("degraded_read_ratio", dr / hr);
	if ((r = ba_rebuilds(&c, &full, &half)) != 0)
		goto remove_files;
	bench_print("rebuild_full_s", full);
	bench_print("rebuild_half_s", half);
	bench_print("rebuild_live_ratio", half / full);

remove_files:
	ba_remove_files(&c);
free_bufs:
	disk_engine_free(c.eng);
	free(c.pat);
	free(c.rbuf);
	free(c.ebuf);
	if (r)
		fprintf(stderr, "bench_array: failed\n");
	return r ? 1 : 0;
}
