/* test-array-degraded: rows written on N = 6 disks; for every pair of disks, both
 * fail (vanish mid-run, return EIO, or are missing at import) and every row still
 * reads back byte-identical, through reconstruction.
 * With --loop, the disks are loop devices over sparse files (run as root). */
#include <config.h>

#include "tests/testutil.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define N 6
#define ROWS 40
#define SEED 42

static char *loopdev[N];

static void attach_loops(char **paths)
{
	for (int i = 0; i < N; i++) {
		char cmd[600], buf[128];
		snprintf(cmd, sizeof(cmd), "losetup --find --show '%s'", paths[i]);
		FILE *p = popen(cmd, "r");
		if (!p || !fgets(buf, sizeof(buf), p)) {
			fprintf(stderr, "losetup failed for %s\n", paths[i]);
			exit(99);
		}
		pclose(p);
		buf[strcspn(buf, "\n")] = '\0';
		loopdev[i] = strdup(buf);
		paths[i] = loopdev[i];
	}
}

static void detach_loops(void)
{
	for (int i = 0; i < N; i++) {
		if (!loopdev[i])
			continue;
		char cmd[200];
		snprintf(cmd, sizeof(cmd), "losetup -d '%s'", loopdev[i]);
		if (system(cmd) != 0)
			fprintf(stderr, "warning: %s failed\n", cmd);
		free(loopdev[i]);
	}
}

int main(int argc, char **argv)
{
	int loop = argc > 1 && !strcmp(argv[1], "--loop");
	const char *dir = tu_tmpdir(loop ? "degraded-loop" : "degraded");
	char *paths[N];
	disk *d[N];
	arr *a = NULL;
	arr_config cfg;
	bks_err e = {0};
	int r;

	for (int i = 0; i < N; i++) {
		char nm[16];
		snprintf(nm, sizeof(nm), "d%d", i);
		paths[i] = tu_file_disk(dir, nm, 64ull << 20);
	}
	if (loop)
		attach_loops(paths);
	arr_config_defaults(&cfg);
	cfg.strip_size = 64 << 10;
	cfg.name = "degraded";
	tu_open((const char *const *)paths, N, NULL, d);
	r = arr_create(&cfg, d, N, NULL, 0, 0, &a, &e);
	REQUIRE(r == 0, "create: %s", bks_errmsg(&e, r));
	arr_set_event_fn(a, tu_events, NULL);
	size_t rb = arr_row_bytes(a);
	uint8_t *buf = tu_alloc(rb * ROWS);
	for (int row = 0; row < ROWS; row++)
		tu_fill(SEED, (uint64_t)row, 0, buf + (size_t)row * rb, rb);
	r = arr_write_rows(a, 0, ROWS, buf, &e);
	REQUIRE(r == 0, "write: %s", bks_errmsg(&e, r));
	r = arr_commit(a, "root", 4, &e);
	REQUIRE(r == 0, "commit: %s", bks_errmsg(&e, r));
	CHECK(tu_verify_rows(a, SEED, 0, ROWS, 0) == 0, "healthy read-back");
	arr_close(a);

	int pairs = 0, bad_pairs = 0;
	for (int x = 0; x < N; x++) {
		for (int y = x + 1; y < N; y++) {
			for (int mode = 0; mode < 3; mode++) {
				flt_world *w;
				flt_world_new((uint64_t)(x * 100 + y), &w);
				disk *dd[N];
				int nd = 0;
				for (int i = 0; i < N; i++) {
					if (mode == 2 && (i == x || i == y))
						continue; /* missing at import */
					dd[nd++] = tu_open1(paths[i], w);
				}
				r = arr_import(&cfg, dd, nd, &a, &e);
				CHECK(r == 0, "import pair %d,%d mode %d: %s", x, y, mode,
				      bks_errmsg(&e, r));
				if (r) {
					for (int i = 0; i < nd; i++)
						disk_close(dd[i]);
					flt_world_free(w);
					continue;
				}
				arr_set_event_fn(a, tu_events, NULL);
				if (mode == 0) {
					flt_disappear(dd[x]);
					flt_disappear(dd[y]);
				} else if (mode == 1) {
					/* EIO on every data strip of both disks, reads only. */
					flt_add_eio(dd[x], FLT_READ, 1 << 20, UINT64_MAX >> 2);
					flt_add_eio(dd[y], FLT_READ, 1 << 20, UINT64_MAX >> 2);
				}
				int bad = tu_verify_rows(a, SEED, 0, ROWS, 0);
				CHECK(bad == 0, "pair %d,%d mode %d: %d rows wrong", x, y, mode, bad);
				/* Partial-range reads at odd offsets through reconstruction too. */
				uint8_t *want = tu_alloc(rb), *got = tu_alloc(rb);
				tu_fill(SEED, 7, 0, want, rb);
				r = arr_read(a, 7, 12345, got, 99999);
				CHECK(r == 0 && !memcmp(want + 12345, got, 99999),
				      "pair %d,%d mode %d: unaligned range read", x, y, mode);
				free(want);
				free(got);
				arr_status st;
				arr_get_status(a, &st);
				CHECK(st.health == ARR_DEGRADED, "pair %d,%d mode %d: health %s", x, y,
				      mode, arr_health_name(st.health));
				bad_pairs += bad != 0;
				pairs++;
				arr_close(a);
				flt_world_free(w);
			}
		}
	}
	printf("degraded: %d pair/mode combinations, %d with wrong data\n", pairs, bad_pairs);

	/* Three missing: import refuses with a message naming them, touches nothing. */
	{
		disk *dd[3];
		tu_open((const char *const *)paths, 3, NULL, dd);
		bks_err_clear(&e);
		r = arr_import(&cfg, dd, 3, &a, &e);
		CHECK(r < 0 && strstr(e.msg, "unavailable"), "3 missing refused: %d %s", r, e.msg);
		printf("three missing: %s\n", e.msg);
		for (int i = 0; i < 3; i++)
			disk_close(dd[i]);
	}
	free(buf);
	if (loop)
		detach_loops();
	return tu_finish();
}
