/* test-array-scrub: random bytes are overwritten in the backing files of two
 * different disks, in different rows (data and parity strips). Without the data
 * checksums a scrub finds every damaged row and rewrites nothing (P/Q alone cannot
 * prove a silently bad strip: test-array-scrub3); with them it repairs every
 * damaged strip, on disk; a second scrub finds nothing; the data reads back right.
 * Also: pause/resume, and a read that hits a damaged strip with a verifier repairs
 * it on the way. */
#include <config.h>

#include "tests/testutil.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "raid/raid.h"

#define N 6
#define SEED 99
#define ROWS 200
#define STRIP (64u << 10)

/* Flip random bytes inside one strip of a backing file (bypassing the array). */
static void damage(const char *path, uint64_t row, bks_rng *rng)
{
	int fd = open(path, O_RDWR);
	uint64_t base = (1ull << 20) + row * STRIP;
	int n = 1 + (int)bks_rng_below(rng, 64);
	for (int i = 0; i < n; i++) {
		uint8_t b;
		off_t off = (off_t)(base + bks_rng_below(rng, STRIP));
		if (pread(fd, &b, 1, off) != 1)
			abort();
		b ^= (uint8_t)(1 + bks_rng_below(rng, 255)); /* never a no-op */
		if (pwrite(fd, &b, 1, off) != 1)
			abort();
	}
	fsync(fd);
	close(fd);
}

/* Row data checksums, as the dedup store will give them. */
static int verify_row(void *ctx, uint64_t row, size_t off, const void *buf, size_t len)
{
	size_t rb = *(size_t *)ctx;
	uint8_t *want = tu_alloc(rb);
	tu_fill(SEED, row, 0, want, rb);
	int ok = !memcmp(want + off, buf, len);
	free(want);
	return ok;
}

static arr *open_array(char **paths, arr_config *cfg)
{
	disk *d[N];
	arr *a;
	bks_err e = {0};
	tu_open((const char *const *)paths, N, NULL, d);
	int r = arr_import(cfg, d, N, &a, &e);
	if (r) {
		fprintf(stderr, "import: %s\n", bks_errmsg(&e, r));
		exit(1);
	}
	arr_set_event_fn(a, tu_events, NULL);
	return a;
}

int main(void)
{
	const char *dir = tu_tmpdir("scrub");
	char *paths[N];
	arr *a = NULL;
	arr_config cfg;
	bks_err e = {0};
	bks_rng rng;
	int r;

	bks_rng_seed(&rng, 2026);
	arr_config_defaults(&cfg);
	cfg.strip_size = STRIP;
	cfg.name = "scrub";
	cfg.bg_min_bps = cfg.bg_max_bps = 0;
	a = tu_make_array_cfg(dir, N, 0, 32, &cfg, NULL, paths, NULL);
	size_t rb = arr_row_bytes(a);
	uint8_t *buf = tu_alloc(rb * 8);
	for (uint64_t row = 0; row < ROWS; row += 8) {
		for (int b = 0; b < 8; b++)
			tu_fill(SEED, row + (uint64_t)b, 0, buf + (size_t)b * rb, rb);
		REQUIRE(arr_write_rows(a, row, 8, buf, &e) == 0, "write: %s", e.msg);
	}
	REQUIRE(arr_commit(a, NULL, 0, &e) == 0, "commit: %s", e.msg);
	arr_close(a);

	/* Disk 1 damaged in 6 rows, disk 4 in 6 other rows; include strips that hold P
	 * and Q on those disks. */
	int damaged = 0;
	int dx[2] = {1, 4};
	for (int j = 0; j < 2; j++) {
		int np = 0, nq = 0, ndata = 0;
		/* disk 1 in rows 0..99, disk 4 in rows 100..199: never the same row */
		for (uint64_t row = (uint64_t)j * ROWS / 2 + 3; row < ROWS; row += 5) {
			int st = raid_disk_strip(N, row, dx[j]);
			int *cnt = st == N - 2 ? &np : st == N - 1 ? &nq : &ndata;
			if (*cnt >= (st < N - 2 ? 4 : 1))
				continue;
			(*cnt)++;
			damage(paths[dx[j]], row, &rng);
			damaged++;
		}
		CHECK(np == 1 && nq == 1 && ndata == 4, "disk %d: damage in 1 P, 1 Q and 4 data "
		      "strips (%d %d %d)", dx[j], np, nq, ndata);
	}

	/* No checksums: every damaged row found and reported, nothing written. */
	a = open_array(paths, &cfg);
	arr_status st;
	CHECK(arr_scrub_start(a, &e) == 0 && arr_bg_run(a) == 0, "scrub 0");
	arr_get_status(a, &st);
	printf("scrub 0 (no checksums): %llu rows checked, %llu errors found, %llu repaired, "
	       "%llu unrecoverable (%d strips damaged)\n",
	       (unsigned long long)st.last_scrub.rows_checked,
	       (unsigned long long)st.last_scrub.errors_found,
	       (unsigned long long)st.last_scrub.repaired,
	       (unsigned long long)st.last_scrub.unrecoverable, damaged);
	CHECK(st.last_scrub.errors_found == (uint64_t)damaged &&
	      st.last_scrub.unrecoverable == (uint64_t)damaged && st.last_scrub.repaired == 0,
	      "without checksums: every damaged row reported, none rewritten");
	arr_close(a);

	a = open_array(paths, &cfg);
	arr_set_scrub_verify(a, verify_row, &rb);
	r = arr_scrub_start(a, &e);
	CHECK(r == 0, "scrub start: %s", bks_errmsg(&e, r));
	/* Pause half way, check nothing moves, resume. */
	for (int i = 0; i < 10; i++)
		arr_bg_step(a, 8);
	CHECK(arr_scrub_pause(a, &e) == 0, "pause: %s", e.msg);
	arr_get_status(a, &st);
	uint64_t at = st.last_scrub.cursor;
	CHECK(arr_bg_step(a, 8) == 0, "paused scrub does no work");
	arr_get_status(a, &st);
	CHECK(st.last_scrub.cursor == at, "cursor still at %llu", (unsigned long long)at);
	CHECK(arr_scrub_resume(a, &e) == 0, "resume: %s", e.msg);
	CHECK(arr_bg_run(a) == 0, "scrub run");
	arr_get_status(a, &st);
	printf("scrub 1: %llu rows checked, %llu errors found, %llu repaired, %llu "
	       "unrecoverable (%d strips damaged)\n",
	       (unsigned long long)st.last_scrub.rows_checked,
	       (unsigned long long)st.last_scrub.errors_found,
	       (unsigned long long)st.last_scrub.repaired,
	       (unsigned long long)st.last_scrub.unrecoverable, damaged);
	CHECK(st.last_scrub.rows_checked == ROWS, "rows checked %llu",
	      (unsigned long long)st.last_scrub.rows_checked);
	CHECK(st.last_scrub.errors_found == (uint64_t)damaged, "errors found");
	CHECK(st.last_scrub.repaired == (uint64_t)damaged, "repaired");
	CHECK(st.last_scrub.unrecoverable == 0, "unrecoverable");
	uint64_t ck = 0;
	for (int i = 0; i < st.ndisks; i++)
		ck += st.disks[i].cksum_errors;
	CHECK(ck == (uint64_t)damaged, "checksum errors charged to the disks: %llu",
	      (unsigned long long)ck);
	arr_close(a);

	/* The repair is on disk: a fresh import's scrub finds nothing. */
	a = open_array(paths, &cfg);
	arr_set_scrub_verify(a, verify_row, &rb);
	CHECK(arr_scrub_start(a, &e) == 0, "scrub 2 start");
	CHECK(arr_bg_run(a) == 0, "scrub 2 run");
	arr_get_status(a, &st);
	printf("scrub 2: %llu rows checked, %llu errors found\n",
	       (unsigned long long)st.last_scrub.rows_checked,
	       (unsigned long long)st.last_scrub.errors_found);
	CHECK(st.last_scrub.errors_found == 0, "second scrub finds nothing");
	CHECK(tu_verify_rows(a, SEED, 0, ROWS, 0) == 0, "data intact");
	arr_close(a);

	/* Foreground read with a verifier: damage a data strip, read it, get the right
	 * bytes, and the strip is repaired in place (a scrub then finds nothing). */
	uint64_t row = 33;
	int slot = raid_strip_disk(N, row, 1); /* data strip 1 of row 33 */
	damage(paths[slot], row, &rng);
	a = open_array(paths, &cfg);
	uint8_t *got = tu_alloc(rb), *want = tu_alloc(rb);
	tu_fill(SEED, row, 0, want, rb);
	r = arr_read_verify(a, row, STRIP, got, STRIP, verify_row, &rb);
	CHECK(r == 0 && !memcmp(got, want + STRIP, STRIP), "verified read repaired: %d", r);
	arr_set_scrub_verify(a, verify_row, &rb);
	CHECK(arr_scrub_start(a, &e) == 0 && arr_bg_run(a) == 0, "scrub 3");
	arr_get_status(a, &st);
	CHECK(st.last_scrub.errors_found == 0, "read repaired the strip on disk (%llu found)",
	      (unsigned long long)st.last_scrub.errors_found);

	/* Two damaged strips in one row: P/Q alone cannot locate them; the data
	 * checksums can. */
	row = 77;
	damage(paths[raid_strip_disk(N, row, 0)], row, &rng);
	damage(paths[raid_strip_disk(N, row, 3)], row, &rng);
	arr_close(a);
	a = open_array(paths, &cfg);
	arr_set_scrub_verify(a, verify_row, &rb);
	CHECK(arr_scrub_start(a, &e) == 0 && arr_bg_run(a) == 0, "scrub 4");
	arr_get_status(a, &st);
	printf("scrub 4 (two bad strips in one row, with checksums): %llu found, %llu "
	       "repaired, %llu unrecoverable\n",
	       (unsigned long long)st.last_scrub.errors_found,
	       (unsigned long long)st.last_scrub.repaired,
	       (unsigned long long)st.last_scrub.unrecoverable);
	CHECK(st.last_scrub.repaired == 2 && st.last_scrub.unrecoverable == 0,
	      "both strips repaired");
	CHECK(tu_verify_rows(a, SEED, 0, ROWS, 0) == 0, "data intact at the end");
	arr_close(a);
	free(got);
	free(want);
	free(buf);
	return tu_finish();
}
