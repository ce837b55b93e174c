/* test-array-flush: arr_ilog_write flushes what a record depends on, and only that
 * (storage/disk.c "Write generations", array_ilog.c's crash story).
 *  - rows written below the durable high-water mark (no commit on the way), then a
 *    log write: no disk keeps an unflushed byte (the fault layer's pre-images), and
 *    every disk the rows went to was flushed;
 *  - rows written above it (phase 0 commits first): the same;
 *  - a log write with no write since the last one flushes only the disks of the
 *    copies; the others are skipped (counted);
 *  - a power cut right after the log write returned, dropping every unflushed write:
 *    after the "reboot" the rows and the record read back byte for byte.
 * A flush that is needed and skipped (a write not counted, a clean disk assumed)
 * leaves pre-images behind and loses the rows at the cut. */
#include <config.h>

#include "tests/testutil.h"

#include <stdlib.h>
#include <string.h>

#include "storage/fault.h"
#include "storage/label.h" /* the intent-log area's place and copies */

#define N 6
#define DISK_MB 24
#define SEED 77

static uint64_t unflushed(disk **dd)
{
	uint64_t n = 0;
	for (int i = 0; i < N; i++)
		n += flt_unflushed(dd[i]);
	return n;
}

static void counts(disk **dd, disk_counts *c)
{
	for (int i = 0; i < N; i++)
		disk_get_counts(dd[i], &c[i]);
}

int main(void)
{
	const char *dir = tu_tmpdir_in("arrflush", "/dev/shm");
	char *paths[N];
	disk *dd[N];
	flt_world *w;
	bks_err e = {0};
	disk_counts c0[N], c1[N];
	int r;

	REQUIRE(flt_world_new(1, &w) == 0, "fault world");
	arr *a = tu_make_array_cfg(dir, N, 0, DISK_MB, NULL, w, paths, dd);
	size_t rb = arr_row_bytes(a);
	uint8_t *buf = tu_alloc(rb * 4), *got = tu_alloc(rb);
	uint8_t *rec = tu_alloc(DISK_ALIGN), *logbuf = tu_alloc(ARR_LOG_SIZE);

	/* Rows 0..3, committed: the high-water mark on disk covers them. */
	for (int i = 0; i < 4; i++)
		tu_fill(SEED, (uint64_t)i, 1, buf + (size_t)i * rb, rb);
	REQUIRE((r = arr_write_rows(a, 0, 4, buf, &e)) == 0, "write rows: %s", bks_errmsg(&e, r));
	REQUIRE((r = arr_commit(a, NULL, 0, &e)) == 0, "commit: %s", bks_errmsg(&e, r));
	CHECK(unflushed(dd) == 0, "a commit leaves nothing unflushed (%llu bytes)",
	      (unsigned long long)unflushed(dd));

	/* 1. Rows 1 and 2 rewritten below the durable hwm: phase 1 must flush them. */
	for (int i = 1; i < 3; i++)
		tu_fill(SEED, (uint64_t)i, 2, buf + (size_t)(i - 1) * rb, rb);
	REQUIRE(arr_write_rows(a, 1, 2, buf, &e) == 0, "rewrite rows 1-2");
	uint64_t pending = unflushed(dd);
	CHECK(pending >= 2 * rb, "the rewritten rows are not durable yet (%llu bytes)",
	      (unsigned long long)pending);
	counts(dd, c0);
	memset(rec, 0xa1, DISK_ALIGN);
	REQUIRE((r = arr_ilog_write(a, 0, rec, DISK_ALIGN, &e)) == 0, "log write: %s",
	        bks_errmsg(&e, r));
	CHECK(unflushed(dd) == 0, "after a log write every row it may name is durable "
	      "(%llu bytes unflushed)", (unsigned long long)unflushed(dd));
	counts(dd, c1);
	int flushed_all = 1;
	for (int i = 0; i < N; i++)
		flushed_all &= c1[i].flushes > c0[i].flushes;
	CHECK(flushed_all, "every disk that took a row was flushed");

	/* 2. A log write with nothing written since: only the 3 copies' disks. */
	counts(dd, c0);
	memset(rec, 0xa2, DISK_ALIGN);
	REQUIRE(arr_ilog_write(a, DISK_ALIGN, rec, DISK_ALIGN, &e) == 0, "second log write");
	counts(dd, c1);
	uint64_t fl = 0, sk = 0;
	for (int i = 0; i < N; i++) {
		fl += c1[i].flushes - c0[i].flushes;
		sk += c1[i].flushes_skipped - c0[i].flushes_skipped;
	}
	CHECK(fl == ARR_LOG_COPIES, "a log write after no row writes flushes %llu disks "
	      "(the %d copies)", (unsigned long long)fl, ARR_LOG_COPIES);
	CHECK(sk == N, "phase 1 skipped %llu clean disks (of %d)", (unsigned long long)sk, N);
	CHECK(unflushed(dd) == 0, "and left nothing unflushed");

	/* 3. Rows above the durable hwm (phase 0's commit does the flush). */
	for (int i = 0; i < 2; i++)
		tu_fill(SEED, (uint64_t)(4 + i), 1, buf + (size_t)i * rb, rb);
	REQUIRE(arr_write_rows(a, 4, 2, buf, &e) == 0, "write rows 4-5");
	memset(rec, 0xa3, DISK_ALIGN);
	REQUIRE(arr_ilog_write(a, 2 * DISK_ALIGN, rec, DISK_ALIGN, &e) == 0, "third log write");
	CHECK(unflushed(dd) == 0, "rows above the hwm are durable after the log write");

	/* 4. Once more below the hwm, then the power goes at the very next write: every
	 * unflushed write is dropped. What the log write covered must all be there. */
	tu_fill(SEED, 3, 3, buf, rb);
	REQUIRE(arr_write_rows(a, 3, 1, buf, &e) == 0, "rewrite row 3");
	memset(rec, 0xa4, DISK_ALIGN);
	REQUIRE(arr_ilog_write(a, 3 * DISK_ALIGN, rec, DISK_ALIGN, &e) == 0, "fourth log write");
	flt_arm_powercut(w, 1, FLT_PC_DROP);
	tu_fill(SEED, 6, 1, buf, rb);
	arr_write_rows(a, 6, 1, buf, NULL); /* cut: torn, rolled back */
	CHECK(flt_is_dead(w), "the power cut happened");
	arr_close(a);
	flt_power_on(w);
	a = tu_import_array(paths, N, w);
	REQUIRE(a, "import after the cut");
	static const uint64_t gen[6] = {1, 2, 2, 3, 1, 1};
	int bad = 0;
	for (int i = 0; i < 6; i++) {
		tu_fill(SEED, (uint64_t)i, gen[i], buf, rb);
		if (arr_read(a, (uint64_t)i, 0, got, rb) != 0 || memcmp(buf, got, rb))
			bad++;
	}
	CHECK(bad == 0, "after the cut every row written before the last log write reads "
	      "back (%d differ)", bad);
	int copies = 0;
	for (int i = 0; arr_ilog_read(a, i, logbuf) == 0; i++) {
		int ok = 1;
		for (int k = 0; k < 4; k++)
			ok &= logbuf[(size_t)k * DISK_ALIGN] == 0xa1 + k &&
			      logbuf[(size_t)k * DISK_ALIGN + DISK_ALIGN - 1] == 0xa1 + k;
		copies += ok;
	}
	CHECK(copies >= ARR_LOG_COPIES, "%d disks hold all 4 records after the cut", copies);
	arr_close(a);
	flt_world_free(w);
	free(buf);
	free(got);
	free(rec);
	free(logbuf);
	tu_cleanup();
	return tu_finish();
}
