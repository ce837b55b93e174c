/* test-array-range: degraded reads recover the range asked for, not the row.
 *
 * (1) With one or two disks missing (every single slot, several pairs), random
 *     ranges (any offset and length, across strip boundaries, tiny and long) read
 *     back right through arr_read, and aligned ranges through arr_read_many.
 * (2) Only the range is read: a survivor's strip has an unreadable 4 KiB at 32 KiB;
 *     a 4 KiB read at offset 0 of a missing strip of that row never touches it (no
 *     read error counted on that disk). Whole-row recovery read every surviving
 *     strip in full and ran into it. A read whose range does need those bytes still
 *     comes back right (the whole-row path takes over, counts the error, repairs).
 * (3) A survivor silently wrong inside the range: the recovered bytes fail the
 *     caller's verifier, the whole-row path locates the bad strip, and the read
 *     returns the right bytes. */
#include <config.h>

#include "tests/testutil.h"

#include "raid/raid.h"
#include "storage/label.h"

#include <stdlib.h>
#include <string.h>

#define N 8 /* 6+2, the demo's shape */
#define ROWS 16
#define SEED 5
#define STRIP (64u << 10)

static uint8_t *expect; /* every row's data, from tu_fill */
static size_t rb;

static int verify_expect(void *ctx, uint64_t row, size_t off, const void *buf, size_t len)
{
	(void)ctx;
	return !memcmp(expect + row * rb + off, buf, len);
}

static uint64_t read_errors(arr *a, int slot)
{
	arr_status st;
	arr_get_status(a, &st);
	for (int i = 0; i < st.ndisks; i++)
		if (st.disks[i].slot == slot && st.disks[i].role == ARR_ROLE_MEMBER)
			return st.disks[i].read_errors;
	return UINT64_MAX;
}

/* Import with the slots in miss[] left out, each other disk wrapped in w. */
static arr *import_without(char **paths, const int *miss, int nmiss, flt_world *w,
                           disk **slot_disk)
{
	disk *dd[N];
	int nd = 0;
	for (int i = 0; i < N; i++) {
		int gone = 0;
		for (int j = 0; j < nmiss; j++)
			gone |= miss[j] == i;
		slot_disk[i] = NULL;
		if (gone)
			continue;
		dd[nd] = tu_open1(paths[i], w);
		slot_disk[i] = dd[nd++];
	}
	arr_config cfg;
	arr_config_defaults(&cfg);
	bks_err e = {0};
	arr *a = NULL;
	int r = arr_import(&cfg, dd, nd, &a, &e);
	REQUIRE_EXIT(r == 0, "import without %d disk(s): %s", nmiss, bks_errmsg(&e, r));
	arr_set_event_fn(a, tu_events, NULL);
	return a;
}

static int random_ranges(arr *a, bks_rng *rng, int count)
{
	uint8_t *got = tu_alloc(rb + 8192);
	int bad = 0;
	for (int i = 0; i < count; i++) {
		uint64_t row = bks_rng_below(rng, ROWS);
		size_t off = bks_rng_below(rng, rb), len;
		switch (i % 4) {
		case 0: len = 1 + bks_rng_below(rng, 64); break;          /* tiny */
		case 1: len = 4096; off = off / 4096 * 4096; break;        /* one block */
		case 2: len = 1 + bks_rng_below(rng, 3 * STRIP); break;   /* across strips */
		default: len = 1 + bks_rng_below(rng, rb); break;         /* anything */
		}
		if (len > rb - off)
			len = rb - off;
		uint8_t *dst = got + (i % 3) * 17; /* unaligned buffers too */
		memset(dst, 0xee, len);
		int r = arr_read(a, row, off, dst, len);
		if (r || memcmp(dst, expect + row * rb + off, len)) {
			if (bad < 5)
				fprintf(stderr, "  row %llu off %zu len %zu: %s\n",
				        (unsigned long long)row, off, len, r ? "error" : "differs");
			bad++;
		}
	}
	/* The batched reader, aligned ranges. */
	arr_rd v[ARR_RD_MAX];
	uint8_t *many = tu_alloc((size_t)ARR_RD_MAX * 3 * STRIP);
	for (int i = 0; i < ARR_RD_MAX; i++) {
		size_t blocks = rb / 4096;
		size_t off = bks_rng_below(rng, blocks) * 4096;
		size_t len = (1 + bks_rng_below(rng, 3 * STRIP / 4096)) * 4096;
		if (len > rb - off)
			len = rb - off;
		v[i] = (arr_rd){.row = bks_rng_below(rng, ROWS), .off = off, .len = len,
		                .buf = many + (size_t)i * 3 * STRIP};
	}
	int r = arr_read_many(a, v, ARR_RD_MAX);
	for (int i = 0; i < ARR_RD_MAX; i++)
		if (r || v[i].result || memcmp(v[i].buf, expect + v[i].row * rb + v[i].off, v[i].len))
			bad++;
	free(many);
	free(got);
	return bad;
}

int main(void)
{
	const char *dir = tu_tmpdir_in("range", "/dev/shm");
	char *paths[N];
	arr_config cfg;
	bks_err e = {0};
	bks_rng rng;
	disk *sd[N];
	int r;

	bks_rng_seed(&rng, 0x72616e6765ull);
	arr_config_defaults(&cfg);
	cfg.strip_size = STRIP;
	cfg.name = "range";
	arr *a = tu_make_array_cfg(dir, N, 0, 16, &cfg, NULL, paths, NULL);
	rb = arr_row_bytes(a);
	expect = tu_alloc(rb * ROWS);
	for (uint64_t row = 0; row < ROWS; row++)
		tu_fill(SEED, row, 0, expect + row * rb, rb);
	r = arr_write_rows(a, 0, ROWS, expect, &e);
	REQUIRE(r == 0, "write: %s", bks_errmsg(&e, r));
	r = arr_commit(a, "R", 1, &e);
	REQUIRE(r == 0, "commit: %s", bks_errmsg(&e, r));
	arr_close(a);

	/* (1) Random ranges, one or two disks missing. */
	static const int pairs[][2] = {{0, 1}, {2, 5}, {6, 7}, {3, 7}, {1, 4}};
	int sets = 0, bad_sets = 0;
	for (int x = 0; x < N + (int)BKS_ARRAY_SIZE(pairs); x++) {
		int miss[2], nmiss = 1;
		if (x < N) {
			miss[0] = x;
		} else {
			miss[0] = pairs[x - N][0];
			miss[1] = pairs[x - N][1];
			nmiss = 2;
		}
		a = import_without(paths, miss, nmiss, NULL, sd);
		int bad = random_ranges(a, &rng, 300);
		CHECK_LOOP(bad == 0, "missing %d%s%d: %d of %d ranges wrong", miss[0],
		           nmiss > 1 ? "," : "", nmiss > 1 ? miss[1] : -1, bad, 300 + ARR_RD_MAX);
		bad_sets += bad != 0;
		sets++;
		arr_close(a);
	}
	CHECK(bad_sets == 0, "(1) %d missing-disk sets x %d ranges read back right", sets,
	      300 + ARR_RD_MAX);

	/* (2) Only the range is read. Row 3: strip 0's disk missing; strip 1's disk
	 * cannot read 4 KiB at 32 KiB into the row's strip. */
	uint64_t row = 3;
	int s0 = raid_strip_disk(N, row, 0), s1 = raid_strip_disk(N, row, 1);
	flt_world *w;
	flt_world_new(1, &w);
	a = import_without(paths, &s0, 1, w, sd);
	flt_add_eio(sd[s1], FLT_READ, ARR_DATA_OFF + row * STRIP + 32768, 4096);
	uint8_t *got = tu_alloc(rb);
	r = arr_read(a, row, 0, got, 4096);
	CHECK(r == 0 && !memcmp(got, expect + row * rb, 4096), "(2) 4 KiB of a missing strip: "
	      "right bytes");
	CHECK(read_errors(a, s1) == 0, "(2) the survivors were read only where the range "
	      "is: %llu read error(s) on slot %d", (unsigned long long)read_errors(a, s1), s1);
	r = arr_read(a, row, 32768, got, 4096);
	CHECK(r == 0 && !memcmp(got, expect + row * rb + 32768, 4096),
	      "(2) a range over the unreadable bytes: right bytes");
	CHECK(read_errors(a, s1) == 1, "(2) ... and that error counted once: %llu",
	      (unsigned long long)read_errors(a, s1));
	arr_close(a);
	flt_world_free(w);

	/* (3) Silently wrong survivor in the range; the verifier catches the result. */
	row = 5;
	s0 = raid_strip_disk(N, row, 0);
	int s2 = raid_strip_disk(N, row, 2);
	flt_world_new(2, &w);
	a = import_without(paths, &s0, 1, w, sd);
	flt_add_corrupt_read(sd[s2], ARR_DATA_OFF + row * STRIP, 4096);
	memset(got, 0, 8192);
	r = arr_read_verify(a, row, 100, got, 8000, verify_expect, NULL);
	CHECK(r == 0 && !memcmp(got, expect + row * rb + 100, 8000),
	      "(3) a silently wrong survivor under a missing strip: right bytes (r=%d)", r);
	arr_close(a);
	flt_world_free(w);

	free(got);
	free(expect);
	return tu_finish();
}
