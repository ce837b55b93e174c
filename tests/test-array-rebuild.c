/* test-array-rebuild: a disk vanishes during a stream of writes; the hot spare is
 * claimed and rebuilt while writes go on; the array is stopped in the middle of the
 * rebuild and imported again; the rebuild resumes from its cursor (not from zero);
 * afterwards two other disks fail and every row still reads back. A third failure
 * makes writes fail with a clear error and reads return EIO, never wrong data. */
#include <config.h>

#include "tests/testutil.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define N 6
#define SEED 7
#define ROWS 400
#define BATCH 8

static uint64_t incoming_cursor(arr *a, int *found)
{
	arr_status st;
	arr_get_status(a, &st);
	*found = 0;
	for (int i = 0; i < st.ndisks; i++)
		if (st.disks[i].role == ARR_ROLE_INCOMING) {
			*found = 1;
			return st.disks[i].cursor;
		}
	return 0;
}

int main(void)
{
	const char *dir = tu_tmpdir("rebuild");
	char *paths[N + 1];
	disk *d[N + 1];
	arr *a = NULL;
	arr_config cfg;
	bks_err e = {0};
	flt_world *w;
	int r, found;

	arr_config_defaults(&cfg);
	cfg.strip_size = 64 << 10;
	cfg.name = "rebuild";
	cfg.bg_min_bps = cfg.bg_max_bps = 0;
	flt_world_new(1, &w);
	a = tu_make_array_cfg(dir, N, 1, 64, &cfg, w, paths, d);
	size_t rb = arr_row_bytes(a);
	uint8_t *buf = tu_alloc(rb * BATCH);

	/* Stream of writes; disk 2 vanishes at row 96; background work interleaves. */
	for (uint64_t row = 0; row < ROWS; row += BATCH) {
		if (row == 96)
			flt_disappear(d[2]);
		for (int b = 0; b < BATCH; b++)
			tu_fill(SEED, row + (uint64_t)b, 0, buf + (size_t)b * rb, rb);
		r = arr_write_rows(a, row, BATCH, buf, &e);
		CHECK(r == 0, "write row %llu: %s", (unsigned long long)row, bks_errmsg(&e, r));
		if (row >= 96)
			arr_bg_step(a, 4);
	}
	r = arr_commit(a, "R1", 2, &e);
	CHECK(r == 0, "commit: %s", bks_errmsg(&e, r));
	arr_status st;
	arr_get_status(a, &st);
	CHECK(st.health == ARR_REBUILDING, "health during rebuild: %s",
	      arr_health_name(st.health));
	CHECK(tu_verify_rows(a, SEED, 0, ROWS, 0) == 0, "reads during rebuild");

	/* Rebuild to about half, commit (cursor persisted), stop. */
	while (incoming_cursor(a, &found) < ROWS / 2 && found)
		arr_bg_step(a, 8);
	r = arr_commit(a, "R1", 2, &e);
	CHECK(r == 0, "commit mid-rebuild: %s", bks_errmsg(&e, r));
	uint64_t cur_before = incoming_cursor(a, &found);
	CHECK(found && cur_before >= ROWS / 2 && cur_before < ROWS,
	      "mid-rebuild cursor %llu", (unsigned long long)cur_before);
	arr_close(a);

	/* Import again (the vanished disk stays gone). */
	disk *dd[N];
	int nd = 0;
	for (int i = 0; i <= N; i++)
		if (i != 2)
			dd[nd++] = tu_open1(paths[i], w);
	r = arr_import(&cfg, dd, nd, &a, &e);
	REQUIRE(r == 0, "import mid-rebuild: %s", bks_errmsg(&e, r));
	arr_set_event_fn(a, tu_events, NULL);
	uint64_t cur_after = incoming_cursor(a, &found);
	CHECK(found && cur_after == cur_before, "rebuild resumes at %llu (was %llu)",
	      (unsigned long long)cur_after, (unsigned long long)cur_before);
	printf("rebuild stopped at row %llu of %d, resumed at %llu\n",
	       (unsigned long long)cur_before, ROWS, (unsigned long long)cur_after);
	r = arr_bg_run(a);
	CHECK(r == 0, "bg run: %d", r);
	arr_get_status(a, &st);
	CHECK(st.health == ARR_OK, "health after rebuild: %s", arr_health_name(st.health));
	int spare_in_slot2 = 0;
	for (int i = 0; i < st.ndisks; i++)
		if (st.disks[i].slot == 2 && st.disks[i].role == ARR_ROLE_MEMBER &&
		    !strcmp(st.disks[i].path, paths[N]) && !strcmp(st.disks[i].state, "ONLINE"))
			spare_in_slot2 = 1;
	CHECK(spare_in_slot2, "the spare is ONLINE in slot 2");

	/* Two other disks fail: everything still reads (the rebuilt strips are needed). */
	for (int i = 0; i < nd; i++)
		if (!strcmp(disk_path(dd[i]), paths[0]) || !strcmp(disk_path(dd[i]), paths[4]))
			flt_disappear(dd[i]);
	int bad = tu_verify_rows(a, SEED, 0, ROWS, 0);
	CHECK(bad == 0, "after two more failures: %d bad rows", bad);
	arr_get_status(a, &st);
	CHECK(st.health == ARR_DEGRADED, "health: %s", arr_health_name(st.health));

	/* A third failure: writes refused with a clear message, reads error, no lies. */
	for (int i = 0; i < nd; i++)
		if (!strcmp(disk_path(dd[i]), paths[1]))
			flt_disappear(dd[i]);
	uint8_t *got = tu_alloc(rb);
	int eio = 0, wrong = 0;
	for (uint64_t row = 0; row < 40; row++) {
		r = arr_read(a, row, 0, got, rb);
		tu_fill(SEED, row, 0, buf, rb);
		if (r == -EIO)
			eio++;
		else if (r == 0 && memcmp(got, buf, rb))
			wrong++;
	}
	CHECK(wrong == 0, "third failure: %d rows returned wrong data", wrong);
	CHECK(eio > 0, "third failure: reads that need the lost strips fail with EIO");
	bks_err_clear(&e);
	r = arr_write_rows(a, ROWS, 1, buf, &e);
	CHECK(r == -EROFS && strstr(e.msg, "FAILED"), "write on FAILED array: %d %s", r, e.msg);
	printf("third failure: %d of 40 rows EIO, write refused: %s\n", eio, e.msg);
	arr_get_status(a, &st);
	CHECK(st.health == ARR_FAILED, "health: %s", arr_health_name(st.health));
	free(got);
	arr_close(a);
	flt_world_free(w);
	free(buf);
	return tu_finish();
}
