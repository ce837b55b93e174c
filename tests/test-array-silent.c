/* test-array-silent: silent corruption and durability at the edges the torture run
 * found (docs/reliability.md, "Defects the torture run found").
 *
 * (1) A degraded read with one silently bad strip: a disk is gone and another holds
 *     a wrong strip in the same row; a verified read of the lost strip's range must
 *     reconstruct (the bad strip is outside the range). With the store's whole-row
 *     checksums (the scrub verifier) it also repairs the bad strip; without them the
 *     repair cannot be proven beyond the range read (test-array-repair), so nothing
 *     is written, and an unverified read afterwards fails rather than lie.
 * (2) Rows made durable by the intent log (arr_ilog_write) and never committed are
 *     below the high-water mark after a crash: a rebuild afterwards covers them.
 * (4) A rebuild with one surviving strip silently bad: the rebuilt strip is right
 *     and the bad strip is repaired, so the row survives one more failure.
 * (5) A scrub of a degraded row whose remaining parity strip is bad repairs it.
 * (7) A replace's release of the old disk: a power cut at every write or flush of
 *     the step that completes it leaves a state whose members are all present; an
 *     import given a blank disk sets it aside. */
#include <config.h>

#include "tests/testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "raid/raid.h"
#include "storage/label.h"

#define N 6
#define STRIP (64u << 10)
#define SEED 4242

/* Overwrite len bytes of (row, strip index st) on the disk file that holds it. */
static void smash(char **paths, uint64_t row, int st, size_t off, size_t len)
{
	int fd = open(paths[raid_strip_disk(N, row, st)], O_RDWR);
	uint8_t *junk = malloc(len);
	for (size_t i = 0; i < len; i++)
		junk[i] = (uint8_t)(0x5a ^ i ^ row);
	if (fd < 0 || pwrite(fd, junk, len, (off_t)(ARR_DATA_OFF + row * STRIP + off)) !=
	                  (ssize_t)len)
		abort();
	fsync(fd);
	close(fd);
	free(junk);
}

static int verify_row(void *ctx, uint64_t row, size_t off, const void *buf, size_t len)
{
	size_t rb = *(size_t *)ctx;
	uint8_t *want = tu_alloc(rb);
	tu_fill(SEED, row, 0, want, rb);
	int ok = !memcmp(want + off, buf, len);
	free(want);
	return ok;
}

static arr_config cfg;

static arr *make(const char *dir, char **paths, int nspares, uint64_t mb, uint64_t rows)
{
	bks_err e = {0};
	arr *a = tu_make_array_cfg(dir, N, nspares, mb, &cfg, NULL, paths, NULL);
	size_t rb = arr_row_bytes(a);
	uint8_t *buf = tu_alloc(rb * rows);
	for (uint64_t r = 0; r < rows; r++)
		tu_fill(SEED, r, 0, buf + r * rb, rb);
	if (rows && (arr_write_rows(a, 0, (uint32_t)rows, buf, &e) < 0 ||
	             arr_commit(a, "T", 1, &e) < 0)) {
		fprintf(stderr, "harness: write: %s\n", e.msg);
		exit(99);
	}
	free(buf);
	return a;
}

static arr *reimport(char **paths, int n)
{
	disk *d[N + 2];
	arr *a;
	bks_err e = {0};
	tu_open((const char *const *)paths, n, NULL, d);
	int r = arr_import(&cfg, d, n, &a, &e);
	if (r < 0) {
		fprintf(stderr, "import: %s\n", bks_errmsg(&e, r));
		for (int i = 0; i < n; i++)
			disk_close(d[i]);
		return NULL;
	}
	arr_set_event_fn(a, tu_events, NULL);
	return a;
}

static int members_online(arr *a)
{
	arr_status st;
	int n = 0;
	arr_get_status(a, &st);
	for (int i = 0; i < st.ndisks; i++)
		n += st.disks[i].role == ARR_ROLE_MEMBER && !strcmp(st.disks[i].state, "ONLINE");
	return n;
}

/* (1) Degraded verified read with a bad strip outside the range. */
static void degraded_read(const char *top, int with_sums)
{
	char dir[600], *paths[N];
	snprintf(dir, sizeof(dir), "%s/one%d", top, with_sums);
	tu_mkdir(dir);
	arr *a = make(dir, paths, 0, 16, 24);
	size_t rb = arr_row_bytes(a);
	arr_close(a);
	/* Disk 2 will be gone. In every row where it holds a data strip j, overwrite
	 * 512 bytes of another strip (cycling through data, P and Q). */
	int tried = 0, bad_strip_roles[3] = {0}, c = 0;
	for (uint64_t row = 0; row < 24; row++) {
		int j = raid_disk_strip(N, row, 2);
		if (j >= N - 2)
			continue;
		int b = (j + 1 + c++ % (N - 1)) % N; /* every strip but j in turn */
		smash(paths, row, b, 4096, 512);
		bad_strip_roles[b < N - 2 ? 0 : b == N - 2 ? 1 : 2]++;
	}
	a = reimport(paths, N);
	if (!a) {
		CHECK(0, "import");
		return;
	}
	if (with_sums)
		arr_set_scrub_verify(a, verify_row, &rb);
	CHECK(arr_fail(a, "slot2", NULL) == 0, "fail slot 2");
	uint8_t *got = tu_alloc(rb), *want = tu_alloc(rb);
	int ok = 0, refused = 0;
	for (uint64_t row = 0; row < 24; row++) {
		int j = raid_disk_strip(N, row, 2);
		if (j >= N - 2)
			continue;
		tried++;
		tu_fill(SEED, row, 0, want, rb);
		int r = arr_read_verify(a, row, (size_t)j * STRIP, got, STRIP, verify_row, &rb);
		int good = r == 0 && !memcmp(got, want + (size_t)j * STRIP, STRIP);
		CHECK(good, "row %llu: lost data strip %d read with a bad strip elsewhere: %d",
		      (unsigned long long)row, j, r);
		/* With the checksums the bad strip was repaired: an unverified read of
		 * the lost strip (built from every other strip) is right now. Without
		 * them it was left alone, and that read may fail, never be wrong. */
		memset(got, 0, STRIP);
		r = arr_read(a, row, (size_t)j * STRIP, got, STRIP);
		int same = r == 0 && !memcmp(got, want + (size_t)j * STRIP, STRIP);
		if (with_sums)
			CHECK(same, "row %llu: bad strip repaired on disk", (unsigned long long)row);
		else
			CHECK(same || r == -EIO, "row %llu: unverified read right or EIO (%d)",
			      (unsigned long long)row, r);
		refused += r != 0;
		ok += good;
	}
	printf("(1) degraded verified reads%s: %d of %d right (bad strip data/P/Q: %d/%d/%d); "
	       "unverified reads afterwards: %d EIO\n", with_sums ? " with checksums" : "",
	       ok, tried, bad_strip_roles[0], bad_strip_roles[1], bad_strip_roles[2], refused);
	CHECK(tried >= 12 && bad_strip_roles[1] && bad_strip_roles[2], "enough cases");
	free(got);
	free(want);
	arr_close(a);
}

static int n_undecided;
static void count_events(void *ctx, int level, const char *msg)
{
	(void)ctx;
	if (level == ARR_EV_ERR && strstr(msg, "rebuild: row") && strstr(msg, "cannot be located"))
		n_undecided++;
	tu_events(NULL, level, msg);
}

/* (4) Rebuild over a silently bad strip. With checksums: the rebuilt strip is right
 * and the bad one repaired. Without: the row is reported, not passed silently. */
static void rebuild_bad_strip(const char *top, int with_verify)
{
	char dir[600], *paths[N + 1];
	snprintf(dir, sizeof(dir), "%s/four%d", top, with_verify);
	tu_mkdir(dir);
	arr *a = make(dir, paths, 1, 16, 8);
	size_t rb = arr_row_bytes(a);
	arr_close(a);
	/* The reported case: 512 bytes of row 3 on disk 1; and rows 0..7 each get one
	 * bad strip on disk 1 (whatever role it has there), disk 2 is lost. */
	for (uint64_t row = 0; row < 8; row++) {
		int st = raid_disk_strip(N, row, 1);
		smash(paths, row, st, row == 3 ? 0 : 8192, 512);
	}
	a = reimport(paths, N + 1);
	if (!a) {
		CHECK(0, "import");
		return;
	}
	n_undecided = 0;
	arr_set_event_fn(a, count_events, NULL);
	if (with_verify)
		arr_set_scrub_verify(a, verify_row, &rb);
	CHECK(arr_fail(a, "slot2", NULL) == 0, "fail slot 2");
	CHECK(arr_bg_run(a) == 0, "rebuild onto the spare");
	CHECK(members_online(a) == N, "spare ONLINE after the rebuild");
	if (!with_verify) {
		/* No checksums: P/Q disagree after the rebuild in every row, nothing can
		 * say which strip is wrong: each row is reported. */
		printf("(4) rebuild without checksums: %d rows reported undecidable\n",
		       n_undecided);
		CHECK(n_undecided == 8, "every inconsistent row reported (%d)", n_undecided);
		arr_close(a);
		return;
	}
	CHECK(n_undecided == 0, "no undecided rows with checksums (%d)", n_undecided);
	arr_status st;
	arr_get_status(a, &st);
	uint64_t ck = 0;
	for (int i = 0; i < st.ndisks; i++)
		if (st.disks[i].slot == 1)
			ck += st.disks[i].cksum_errors;
	CHECK(ck == 8, "the 8 bad strips found and charged to disk 1 (%llu)",
	      (unsigned long long)ck);
	/* Disk 4 fails: every row still reads, verified, whole (the torture's case:
	 * with the bad strip carried onto the spare, row 3 read EIO). */
	CHECK(arr_fail(a, "slot4", NULL) == 0, "fail slot 4");
	uint8_t *got = tu_alloc(rb), *want = tu_alloc(rb);
	int right = 0;
	for (uint64_t row = 0; row < 8; row++) {
		tu_fill(SEED, row, 0, want, rb);
		int r = arr_read_verify(a, row, 0, got, rb, verify_row, &rb);
		CHECK(r == 0 && !memcmp(got, want, rb), "row %llu after the second failure: %d",
		      (unsigned long long)row, r);
		right += r == 0 && !memcmp(got, want, rb);
	}
	/* Nothing left to repair: the rebuild wrote right strips, fixed disk 1's. */
	bks_err e = {0};
	CHECK(arr_scrub_start(a, &e) == 0 && arr_bg_run(a) == 0, "scrub");
	arr_get_status(a, &st);
	CHECK(st.last_scrub.errors_found == 0, "scrub afterwards finds %llu errors",
	      (unsigned long long)st.last_scrub.errors_found);
	printf("(4) rebuild with checksums: %llu bad strips found, %d of 8 rows right after "
	       "a second failure, scrub found %llu\n", (unsigned long long)ck, right,
	       (unsigned long long)st.last_scrub.errors_found);
	free(got);
	free(want);
	arr_close(a);
}

/* (5) Scrub of a degraded row with a bad parity strip: the checksums prove the data
 * with the lost strip recovered from the good parity, and the bad one is found by
 * recomputing the parity, not passed over. */
static void scrub_degraded_parity(const char *top)
{
	char dir[600], *paths[N];
	bks_err e = {0};
	snprintf(dir, sizeof(dir), "%s/five", top);
	tu_mkdir(dir);
	arr *a = make(dir, paths, 0, 16, 24);
	size_t rb = arr_row_bytes(a);
	arr_close(a);
	int smashed = 0;
	for (uint64_t row = 0; row < 24; row++) {
		int j = raid_disk_strip(N, row, 2);
		if (j >= N - 2)
			continue;
		smash(paths, row, row % 2 ? N - 1 : N - 2, 0, 512); /* Q or P */
		smashed++;
	}
	a = reimport(paths, N);
	if (!a) {
		CHECK(0, "import");
		return;
	}
	arr_set_scrub_verify(a, verify_row, &rb);
	CHECK(arr_fail(a, "slot2", NULL) == 0, "fail slot 2");
	CHECK(arr_scrub_start(a, &e) == 0 && arr_bg_run(a) == 0, "scrub");
	arr_status st;
	arr_get_status(a, &st);
	printf("(5) degraded scrub, %d bad parity strips: %llu found, %llu repaired, %llu "
	       "unrecoverable\n", smashed, (unsigned long long)st.last_scrub.errors_found,
	       (unsigned long long)st.last_scrub.repaired,
	       (unsigned long long)st.last_scrub.unrecoverable);
	CHECK(st.last_scrub.errors_found == (uint64_t)smashed &&
	      st.last_scrub.repaired == (uint64_t)smashed, "every bad parity strip repaired");
	CHECK(arr_scrub_start(a, &e) == 0 && arr_bg_run(a) == 0, "scrub 2");
	arr_get_status(a, &st);
	CHECK(st.last_scrub.errors_found == 0, "second scrub finds %llu",
	      (unsigned long long)st.last_scrub.errors_found);
	arr_close(a);
}

/* (2) Rows named only by the intent log survive a crash below the high-water. */
static void log_rows_hwm(const char *top)
{
	char dir[600], *paths[N + 1];
	bks_err e = {0};
	snprintf(dir, sizeof(dir), "%s/two", top);
	tu_mkdir(dir);
	arr *a = make(dir, paths, 1, 16, 8); /* rows 0..7 committed */
	size_t rb = arr_row_bytes(a);
	uint8_t *buf = tu_alloc(rb * 8);
	for (uint64_t r = 0; r < 8; r++)
		tu_fill(SEED, 8 + r, 0, buf + r * rb, rb);
	CHECK(arr_write_rows(a, 8, 8, buf, &e) == 0, "write rows 8..15: %s", e.msg);
	uint8_t *rec = tu_alloc(4096);
	memcpy(rec, "names rows 8..15", 16);
	uint64_t seq0 = arr_seq(a);
	CHECK(arr_ilog_write(a, 0, rec, 4096, &e) == 0, "log write: %s", e.msg);
	CHECK(arr_seq(a) == seq0 + 1, "the log write recorded the high-water first");
	/* A second record with no new rows costs no superblock. */
	CHECK(arr_ilog_write(a, 4096, rec, 4096, &e) == 0 && arr_seq(a) == seq0 + 1,
	      "no superblock without new rows");
	arr_close(a); /* a crash: no commit after the log write */

	a = reimport(paths, N + 1);
	if (!a) {
		CHECK(0, "import");
		return;
	}
	arr_status st;
	arr_get_status(a, &st);
	printf("(2) after the crash: hwm %llu (rows 0..15 written, 0..7 committed)\n",
	       (unsigned long long)st.hwm);
	CHECK(st.hwm >= 16, "hwm %llu covers the logged rows", (unsigned long long)st.hwm);
	/* The layer above replays the record: rows 8..15 are live. A disk fails, the
	 * spare is rebuilt, then two more fail: the rebuilt disk must hold 8..15. */
	CHECK(arr_fail(a, "slot2", NULL) == 0 && arr_bg_run(a) == 0, "rebuild slot 2");
	CHECK(members_online(a) == N, "spare ONLINE");
	CHECK(arr_fail(a, "slot0", NULL) == 0 && arr_fail(a, "slot5", NULL) == 0,
	      "fail two more");
	uint8_t *got = tu_alloc(rb), *want = tu_alloc(rb);
	int right = 0;
	for (uint64_t row = 0; row < 16; row++) {
		tu_fill(SEED, row, 0, want, rb);
		int r = arr_read(a, row, 0, got, rb);
		right += r == 0 && !memcmp(got, want, rb);
	}
	printf("(2) rows right after rebuild + two failures: %d of 16\n", right);
	CHECK(right == 16, "every row right (%d of 16)", right);
	free(got);
	free(want);
	free(rec);
	free(buf);
	arr_close(a);
}

/* (7) Power cut at every write/flush of the replace's last step. */
static int replace_round(const char *top, int round, uint64_t cut_at, uint64_t *ev_lo,
                         uint64_t *ev_hi)
{
	char dir[600], *paths[N + 1];
	bks_err e = {0};
	flt_world *w;
	snprintf(dir, sizeof(dir), "%s/seven-%d", top, round);
	tu_mkdir(dir);
	arr *a = make(dir, paths, 0, 8, 8);
	arr_close(a);
	paths[N] = tu_file_disk(dir, "new", 8ull << 20);
	flt_world_new((uint64_t)round + 7, &w);
	disk *d[N + 1];
	tu_open((const char *const *)paths, N + 1, w, d);
	int r = arr_import(&cfg, d, N, &a, &e);
	if (r < 0) {
		fprintf(stderr, "harness: import: %s\n", e.msg);
		exit(99);
	}
	arr_set_event_fn(a, tu_events, NULL);
	if (arr_replace(a, "slot3", d[N], 0, &e) < 0) {
		fprintf(stderr, "harness: replace: %s\n", e.msg);
		exit(99);
	}
	*ev_lo = flt_events(w);
	if (cut_at)
		flt_arm_powercut(w, cut_at, FLT_PC_DROP);
	while (arr_bg_step(a, 64) > 0 && !flt_is_dead(w))
		;
	*ev_hi = flt_events(w);
	arr_close(a);
	flt_world_free(w);
	if (!cut_at)
		return 1;
	/* Reboot: import every disk (the old one too, as an admin who left it in). */
	a = reimport(paths, N + 1);
	if (!a)
		return 0;
	int ok = members_online(a) == N && tu_verify_rows(a, SEED, 0, 8, 0) == 0;
	arr_close(a);
	return ok;
}

static void replace_cuts(const char *top)
{
	uint64_t lo, hi, l2, h2;
	replace_round(top, 0, 0, &lo, &hi);
	int n = (int)(hi - lo), bad = 0;
	for (int t = 1; t <= n; t++) {
		int ok = replace_round(top, t, (uint64_t)t, &l2, &h2);
		CHECK(ok, "cut at event %d of %d of the replace: a member is missing after "
		      "import", t, n);
		bad += !ok;
	}
	printf("(7) replace cut at each of %d events: %d left a member missing\n", n, bad);

	/* A blank disk given to import is set aside, named; the rest assembles. */
	char dir[600], *paths[N + 1];
	snprintf(dir, sizeof(dir), "%s/blank", top);
	tu_mkdir(dir);
	arr *a = make(dir, paths, 0, 8, 4);
	arr_close(a);
	paths[N] = tu_file_disk(dir, "blank", 8ull << 20);
	a = reimport(paths, N + 1);
	CHECK(a && members_online(a) == N, "import with an extra blank disk");
	if (a)
		CHECK(tu_verify_rows(a, SEED, 0, 4, 0) == 0, "data");
	arr_close(a);
}

int main(void)
{
	const char *top = tu_tmpdir_in("array-silent", "/dev/shm");
	arr_config_defaults(&cfg);
	cfg.strip_size = STRIP;
	cfg.name = "silent";
	cfg.bg_min_bps = cfg.bg_max_bps = 0;
	cfg.cksum_err_limit = 1000; /* the test counts them; no faulting */
	degraded_read(top, 1);
	degraded_read(top, 0);
	rebuild_bad_strip(top, 1);
	rebuild_bad_strip(top, 0);
	log_rows_hwm(top);
	scrub_degraded_parity(top);
	replace_cuts(top);
	return tu_finish();
}
