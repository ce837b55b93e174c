/* test-array-ops: the admin verbs and the fault thresholds under I/O:
 *  - offline/online: rows written while a disk is away are rebuilt onto it;
 *  - proactive replace: OLD stays readable while NEW fills; OLD dying midway turns
 *    the replace into a rebuild that keeps the rows already copied;
 *  - read errors are repaired in place and, past io_err_limit, fault the disk and
 *    claim the spare;
 *  - a slow disk (latency above io_timeout_ms) is faulted after enough slow I/Os.
 * Each phase ends by failing two other disks and reading everything back, which only
 * works if the disk the phase rebuilt holds the right bytes. */
#include <config.h>

#include "tests/testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "raid/raid.h"

#define N 6
#define SEED 11
#define ROWS 64

static char *paths[N + 3];
static arr_config cfg;

static void write_rows(arr *a, uint64_t first, uint64_t n, uint64_t gen)
{
	size_t rb = arr_row_bytes(a);
	uint8_t *buf = tu_alloc(rb);
	bks_err e = {0};
	for (uint64_t r = first; r < first + n; r++) {
		tu_fill(SEED, r, gen, buf, rb);
		int rc = arr_write_rows(a, r, 1, buf, &e);
		CHECK(rc == 0, "write row %llu: %s", (unsigned long long)r, bks_errmsg(&e, rc));
	}
	free(buf);
}

static const arr_disk_status *find_status(const arr_status *st, const char *path, int role)
{
	for (int i = 0; i < st->ndisks; i++)
		if (!strcmp(st->disks[i].path, path) && st->disks[i].role == role)
			return &st->disks[i];
	return NULL;
}

/* The rebuilt disk itself must hold the right strips: compute every row's strips
 * (data from tu_fill, P and Q from an independent codec instance) and compare with
 * what the disk file holds for its slot. */
static void check_disk(const char *path, int slot, uint64_t rows, const char *what)
{
	uint32_t strip = 64 << 10;
	raid_codec *c;
	uint8_t *row = tu_alloc((size_t)N * strip), *got = tu_alloc(strip);
	uint8_t *p[N];
	int fd = open(path, O_RDONLY), bad = 0;
	raid_codec_new(N - 2, strip, &c);
	for (int i = 0; i < N; i++)
		p[i] = row + (size_t)i * strip;
	for (uint64_t r = 0; r < rows; r++) {
		tu_fill(SEED, r, 0, row, (size_t)(N - 2) * strip);
		raid_encode(c, strip, p);
		int st = raid_disk_strip(N, r, slot);
		if (pread(fd, got, strip, (off_t)((1 << 20) + r * strip)) != (ssize_t)strip ||
		    memcmp(got, p[st], strip))
			bad++;
	}
	CHECK(bad == 0, "%s: %d of %llu strips on %s (slot %d) wrong", what, bad,
	      (unsigned long long)rows, path, slot);
	close(fd);
	raid_codec_free(c);
	free(row);
	free(got);
}

int main(void)
{
	const char *dir = tu_tmpdir("ops");
	disk *d[N + 3];
	arr *a = NULL;
	bks_err e = {0};
	flt_world *w;
	arr_status st;
	int r;

	for (int i = 0; i < N + 3; i++) {
		char nm[16];
		snprintf(nm, sizeof(nm), i < N ? "m%d" : "x%d", i);
		paths[i] = tu_file_disk(dir, nm, 24ull << 20);
	}
	arr_config_defaults(&cfg);
	cfg.strip_size = 64 << 10;
	cfg.name = "ops";
	cfg.bg_min_bps = cfg.bg_max_bps = 0;
	cfg.io_err_limit = 5;
	flt_world_new(3, &w);
	tu_open((const char *const *)paths, N + 3, w, d);
	r = arr_create(&cfg, d, N, NULL, 0, 0, &a, &e);
	REQUIRE(r == 0, "create: %s", bks_errmsg(&e, r));
	disk_close(d[8]); /* used in the last phase */
	arr_set_event_fn(a, tu_events, NULL);
	write_rows(a, 0, ROWS / 2, 0);

	/* Offline: writes go on without m1; online rebuilds them onto it. */
	r = arr_offline(a, paths[1], &e);
	CHECK(r == 0, "offline: %s", bks_errmsg(&e, r));
	arr_get_status(a, &st);
	CHECK(st.health == ARR_DEGRADED, "offline -> DEGRADED (%s)", arr_health_name(st.health));
	write_rows(a, ROWS / 2, ROWS / 2, 0);
	r = arr_online(a, paths[1], &e);
	CHECK(r == 0, "online: %s", bks_errmsg(&e, r));
	CHECK(arr_bg_run(a) == 0, "rebuild after online");
	arr_get_status(a, &st);
	CHECK(st.health == ARR_OK, "online -> OK (%s)", arr_health_name(st.health));
	check_disk(paths[1], 1, ROWS, "offline/online");

	/* Proactive replace m2 -> x6; m2 dies half way: the replace becomes a rebuild
	 * and completes. */
	r = arr_replace(a, paths[2], d[6], 0, &e);
	CHECK(r == 0, "replace: %s", bks_errmsg(&e, r));
	arr_get_status(a, &st);
	const arr_disk_status *ds = find_status(&st, paths[6], ARR_ROLE_INCOMING);
	CHECK(ds && !strcmp(ds->state, "REPLACING"), "x6 is REPLACING");
	CHECK(st.health == ARR_OK, "health OK while replacing (%s)", arr_health_name(st.health));
	for (int i = 0; i < 4; i++)
		arr_bg_step(a, 8);
	flt_disappear(d[2]);
	CHECK(tu_verify_rows(a, SEED, 0, ROWS, 0) == 0, "reads while OLD is gone");
	CHECK(arr_bg_run(a) == 0, "replace completes as a rebuild");
	arr_get_status(a, &st);
	ds = find_status(&st, paths[6], ARR_ROLE_MEMBER);
	CHECK(ds && !strcmp(ds->state, "ONLINE") && ds->slot == 2, "x6 ONLINE in slot 2");
	CHECK(st.health == ARR_OK, "health OK after replace (%s)", arr_health_name(st.health));
	check_disk(paths[6], 2, ROWS, "replace");

	/* Read errors: each is repaired in place; the io_err_limit-th faults the disk
	 * and the spare x7 takes over. */
	r = arr_add_spare(a, d[7], 0, &e);
	CHECK(r == 0, "add spare: %s", bks_errmsg(&e, r));
	flt_add_eio(d[3], FLT_READ, 1 << 20, UINT64_MAX >> 2);
	size_t rb = arr_row_bytes(a);
	uint8_t *buf = tu_alloc(rb), *want = tu_alloc(rb);
	int reads = 0;
	for (uint64_t row = 0; row < ROWS; row++) {
		tu_fill(SEED, row, 0, want, rb);
		r = arr_read(a, row, 0, buf, rb);
		CHECK(r == 0 && !memcmp(buf, want, rb), "row %llu through EIO",
		      (unsigned long long)row);
		reads++;
		arr_get_status(a, &st);
		if (st.health != ARR_OK)
			break;
	}
	arr_get_status(a, &st);
	ds = find_status(&st, paths[3], ARR_ROLE_MEMBER);
	CHECK(ds && !strcmp(ds->state, "FAULTED") && ds->read_errors == cfg.io_err_limit,
	      "m3 FAULTED after %u read errors (state %s, %llu errors, %d reads)",
	      cfg.io_err_limit, ds ? ds->state : "?",
	      ds ? (unsigned long long)ds->read_errors : 0ull, reads);
	CHECK(find_status(&st, paths[7], ARR_ROLE_INCOMING) != NULL, "spare x7 claimed");
	CHECK(arr_bg_run(a) == 0, "rebuild onto x7");
	check_disk(paths[7], 3, ROWS, "read-error fault");

	/* Slow disk: every request on m4 takes 30 ms against a 10 ms timeout. */
	arr_close(a);
	cfg.io_timeout_ms = 10;
	disk *dd[N + 3];
	int nd = 0;
	for (int i = 0; i < N + 2; i++)
		if (i != 2 && i != 3)
			dd[nd++] = tu_open1(paths[i], w);
	dd[nd++] = tu_open1(paths[8], w);
	r = arr_import(&cfg, dd, nd - 1, &a, &e);
	REQUIRE(r == 0, "import: %s", bks_errmsg(&e, r));
	arr_set_event_fn(a, tu_events, NULL);
	r = arr_add_spare(a, dd[nd - 1], 0, &e);
	CHECK(r == 0, "add spare x8: %s", bks_errmsg(&e, r));
	for (int i = 0; i < nd; i++)
		if (!strcmp(disk_path(dd[i]), paths[4]))
			flt_set_latency_us(dd[i], 30000);
	for (uint64_t row = 0; row < ROWS; row++) {
		tu_fill(SEED, row, 0, want, rb);
		r = arr_read(a, row, 0, buf, rb);
		CHECK(r == 0 && !memcmp(buf, want, rb), "slow-disk read row %llu",
		      (unsigned long long)row);
	}
	arr_get_status(a, &st);
	ds = find_status(&st, paths[4], ARR_ROLE_MEMBER);
	CHECK(ds && !strcmp(ds->state, "FAULTED") && ds->slow_ios >= cfg.io_err_limit,
	      "slow m4 FAULTED (%s, %llu slow)", ds ? ds->state : "?",
	      ds ? (unsigned long long)ds->slow_ios : 0ull);
	printf("slow disk: %llu slow I/Os, state %s\n",
	       ds ? (unsigned long long)ds->slow_ios : 0ull, ds ? ds->state : "?");
	CHECK(arr_bg_run(a) == 0, "rebuild onto x8");
	check_disk(paths[8], 4, ROWS, "slow-disk fault");
	arr_get_status(a, &st);
	CHECK(st.health == ARR_OK, "health OK at the end (%s)", arr_health_name(st.health));
	/* The last look at every row through a fresh import with the default I/O timeout:
	 * with 10 ms, a loaded machine's ordinary reads time out too (two strips of a row
	 * "slow" at once read as EIO), which says nothing about what is on the disks. */
	arr_close(a);
	char *fin[N];
	int nf = 0;
	for (int i = 0; i < N + 3; i++)
		if (i != 2 && i != 3 && i != 4)
			fin[nf++] = paths[i];
	a = tu_import_array(fin, nf, NULL);
	REQUIRE(a != NULL, "import at the end");
	CHECK(tu_verify_rows(a, SEED, 0, ROWS, 0) == 0, "all rows at the end");
	arr_close(a);
	flt_world_free(w);
	free(buf);
	free(want);
	return tu_finish();
}
