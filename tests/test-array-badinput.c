/* test-array-badinput: every bad input is refused with a clear message, without a
 * crash and without changing the array: a too-small disk, a disk of another array,
 * a duplicate disk, fewer than 4 disks, a truncated label, a corrupted superblock
 * ring; plus wrong arguments to reads and writes. "No change" is checked by hashing
 * every disk file before and after. */
#include <config.h>

#include "tests/testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "storage/label.h"

#define N 5
#define SEED 3

static char *paths[N], *other[4];
static arr_config cfg;

static uint64_t hash_file(const char *p)
{
	int fd = open(p, O_RDONLY);
	static uint8_t buf[1 << 20];
	uint64_t h = 0;
	ssize_t n;
	if (fd < 0)
		return 0;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		h = h * 31 + bks_xxh3(buf, (size_t)n);
	close(fd);
	return h;
}

static void hash_all(uint64_t *h)
{
	for (int i = 0; i < N; i++)
		h[i] = hash_file(paths[i]);
}

static int unchanged(const uint64_t *before)
{
	uint64_t now[N];
	hash_all(now);
	return !memcmp(before, now, sizeof(now));
}

/* Import the array's own disks (expected to work). */
static arr *import_good(void)
{
	disk *d[N];
	arr *a;
	bks_err e = {0};
	tu_open((const char *const *)paths, N, NULL, d);
	int r = arr_import(&cfg, d, N, &a, &e);
	if (r) {
		fprintf(stderr, "import: %s\n", bks_errmsg(&e, r));
		for (int i = 0; i < N; i++)
			disk_close(d[i]);
		return NULL;
	}
	return a;
}

/* Expect an import of these paths to fail with a message containing want. */
static void import_refused(const char *what, char **p, int n, const char *want)
{
	disk *d[16];
	arr *a = NULL;
	bks_err e = {0};
	tu_open((const char *const *)p, n, NULL, d);
	int r = arr_import(&cfg, d, n, &a, &e);
	CHECK(r < 0 && a == NULL, "%s: import should fail", what);
	CHECK(strstr(e.msg, want) != NULL, "%s: message '%s' lacks '%s'", what, e.msg, want);
	printf("%-28s -> %s\n", what, e.msg);
	if (r == 0)
		arr_close(a);
	else
		for (int i = 0; i < n; i++)
			disk_close(d[i]);
}

static void overwrite(const char *p, uint64_t off, size_t len, int byte)
{
	int fd = open(p, O_RDWR);
	uint8_t *b = malloc(len);
	memset(b, byte, len);
	if (fd < 0 || pwrite(fd, b, len, (off_t)off) != (ssize_t)len)
		abort();
	fsync(fd);
	close(fd);
	free(b);
}

int main(void)
{
	const char *dir = tu_tmpdir("badinput");
	disk *d[N + 4];
	arr *a = NULL;
	bks_err e = {0};
	uint64_t before[N];
	int r;

	for (int i = 0; i < N; i++) {
		char nm[16];
		snprintf(nm, sizeof(nm), "d%d", i);
		paths[i] = tu_file_disk(dir, nm, 32ull << 20);
	}
	for (int i = 0; i < 4; i++) {
		char nm[16];
		snprintf(nm, sizeof(nm), "other%d", i);
		other[i] = tu_file_disk(dir, nm, 32ull << 20);
	}
	char *tiny = tu_file_disk(dir, "tiny", 1536ull << 10);
	char *small = tu_file_disk(dir, "small", 16ull << 20);
	char *fresh = tu_file_disk(dir, "fresh", 32ull << 20);
	arr_config_defaults(&cfg);
	cfg.strip_size = 64 << 10;
	cfg.name = "good";

	/* --- create refusals: nothing written anywhere --- */
	hash_all(before);
	tu_open((const char *const *)paths, 3, NULL, d);
	r = arr_create(&cfg, d, 3, NULL, 0, 0, &a, &e);
	CHECK(r == -EINVAL && strstr(e.msg, "4 to 32"), "N=3 refused: %s", e.msg);
	printf("%-28s -> %s\n", "create with 3 disks", e.msg);
	for (int i = 0; i < 3; i++)
		disk_close(d[i]);

	/* A disk given twice: its second open is refused (the flock on a file, O_EXCL
	 * on a block device), before arr_create's own "given twice" check. */
	tu_open((const char *const *)paths, 4, NULL, d);
	r = disk_open(paths[1], &d[4], &e);
	CHECK(r == -EBUSY && strstr(e.msg, "in use"), "duplicate refused: %s", e.msg);
	printf("%-28s -> %s\n", "create with a duplicate", e.msg);
	for (int i = 0; i < 4; i++)
		disk_close(d[i]);

	tu_open((const char *const *)paths, 4, NULL, d);
	d[4] = tu_open1(tiny, NULL);
	r = arr_create(&cfg, d, 5, NULL, 0, 0, &a, &e);
	CHECK(r == -ENOSPC && strstr(e.msg, "too small"), "tiny disk refused: %s", e.msg);
	printf("%-28s -> %s\n", "create with a 1.5 MiB disk", e.msg);
	for (int i = 0; i < 5; i++)
		disk_close(d[i]);

	cfg.strip_size = 48 << 10;
	tu_open((const char *const *)paths, N, NULL, d);
	r = arr_create(&cfg, d, N, NULL, 0, 0, &a, &e);
	CHECK(r == -EINVAL && strstr(e.msg, "power of two"), "bad strip refused: %s", e.msg);
	printf("%-28s -> %s\n", "create with a 48 KiB strip", e.msg);
	for (int i = 0; i < N; i++)
		disk_close(d[i]);
	cfg.strip_size = 64 << 10;
	CHECK(unchanged(before), "refused creates wrote nothing");

	/* --- the good array, and another one --- */
	tu_open((const char *const *)paths, N, NULL, d);
	r = arr_create(&cfg, d, N, NULL, 0, 0, &a, &e);
	REQUIRE(r == 0, "create: %s", bks_errmsg(&e, r));
	size_t rb = arr_row_bytes(a);
	uint8_t *buf = tu_alloc(rb * 4);
	for (int i = 0; i < 4; i++)
		tu_fill(SEED, (uint64_t)i, 0, buf + (size_t)i * rb, rb);
	REQUIRE(arr_write_rows(a, 0, 4, buf, &e) == 0, "write");
	REQUIRE(arr_commit(a, "good", 4, &e) == 0, "commit");
	uint64_t seq0 = arr_seq(a);

	/* API misuse on a live array. */
	r = arr_write_rows(a, 0, 1, buf + 8, &e);
	CHECK(r == -EINVAL, "unaligned write buffer: %d", r);
	r = arr_write_rows(a, arr_rows(a), 1, buf, &e);
	CHECK(r == -ERANGE && strstr(e.msg, "beyond"), "write past the end: %s", e.msg);
	r = arr_read(a, 0, rb - 10, buf, 20);
	CHECK(r == -ERANGE, "read past the row: %d", r);
	r = arr_commit(a, buf, ARR_ROOT_MAX + 1, &e);
	CHECK(r == -EINVAL, "oversized root: %d", r);
	r = arr_fail(a, "/no/such/disk", &e);
	CHECK(r == -ENOENT && strstr(e.msg, "no disk"), "fail unknown disk: %s", e.msg);

	/* add-spare / replace with unfit disks. */
	disk *t = tu_open1(small, NULL);
	r = arr_add_spare(a, t, 0, &e);
	CHECK(r == -ENOSPC && strstr(e.msg, "smaller"), "small spare refused: %s", e.msg);
	printf("%-28s -> %s\n", "add-spare 16 MiB disk", e.msg);
	r = arr_replace(a, paths[0], t, 0, &e);
	CHECK(r == -ENOSPC && strstr(e.msg, "smaller"), "small replacement refused: %s", e.msg);
	printf("%-28s -> %s\n", "replace with 16 MiB disk", e.msg);
	disk_close(t);
	/* A member as spare: the held disk does not even open (arr_add_spare's own
	 * "already in this array" check stays behind it). */
	t = NULL;
	r = disk_open(paths[2], &t, &e);
	CHECK(r == -EBUSY && !t && strstr(e.msg, "in use"), "member as spare: %s", e.msg);
	printf("%-28s -> %s\n", "add-spare of a member", e.msg);
	CHECK(arr_seq(a) == seq0, "no commit happened");
	arr_close(a);

	/* Another array on other[]. */
	cfg.name = "other";
	tu_open((const char *const *)other, 4, NULL, d);
	r = arr_create(&cfg, d, 4, NULL, 0, 0, &a, &e);
	REQUIRE(r == 0, "create other: %s", bks_errmsg(&e, r));
	arr_close(a);
	cfg.name = "good";

	hash_all(before);
	a = import_good();
	REQUIRE(a != NULL, "import good");
	t = tu_open1(other[0], NULL);
	r = arr_add_spare(a, t, 0, &e);
	CHECK(r == -EBUSY && strstr(e.msg, "belongs to array 'other'"), "foreign spare: %s",
	      e.msg);
	printf("%-28s -> %s\n", "add-spare of another array", e.msg);
	disk_close(t);
	/* Two failures are survivable; an admin fail of a third is refused. */
	CHECK(arr_fail(a, "slot0", &e) == 0, "fail slot0");
	CHECK(arr_fail(a, "slot1", &e) == 0, "fail slot1");
	r = arr_fail(a, "slot2", &e);
	CHECK(r == -EBUSY && strstr(e.msg, "third"), "third fail refused: %s", e.msg);
	printf("%-28s -> %s\n", "fail a third disk", e.msg);
	CHECK(tu_verify_rows(a, SEED, 0, 4, 0) == 0, "data readable with two failed");
	arr_close(a);
	/* Bring the two back by replacing them with fresh disks... simpler: a fresh
	 * import sees them FAULTED; replace slot0 and slot1 with new files. */
	a = import_good();
	REQUIRE(a != NULL, "import degraded");
	for (int s = 0; s < 2; s++) {
		char nm[8], *np;
		snprintf(nm, sizeof(nm), "new%d", s);
		np = tu_file_disk(dir, nm, 32ull << 20);
		t = tu_open1(np, NULL);
		snprintf(nm, sizeof(nm), "slot%d", s);
		r = arr_replace(a, nm, t, 0, &e);
		CHECK(r == 0, "replace %s: %s", nm, bks_errmsg(&e, r));
		if (r)
			disk_close(t);
		paths[s] = np;
	}
	CHECK(arr_bg_run(a) == 0, "rebuild onto replacements");
	arr_status st;
	arr_get_status(a, &st);
	CHECK(st.health == ARR_OK, "health after replacements: %s", arr_health_name(st.health));
	CHECK(tu_verify_rows(a, SEED, 0, 4, 0) == 0, "data after replacements");
	arr_close(a);

	/* --- import refusals: nothing changes on any disk --- */
	hash_all(before);
	char *mixed[N];
	for (int i = 0; i < N; i++)
		mixed[i] = paths[i];
	mixed[3] = other[1];
	import_refused("import mixing two arrays", mixed, N, "belongs to array");
	/* A duplicate does not get as far as the import: its second open is refused. */
	{
		disk *dd[N + 1];
		tu_open((const char *const *)paths, N, NULL, dd);
		dd[N] = NULL;
		r = disk_open(paths[2], &dd[N], &e);
		CHECK(r == -EBUSY && !dd[N] && strstr(e.msg, "in use"), "import with a duplicate: %s",
		      e.msg);
		printf("%-28s -> %s\n", "import with a duplicate", e.msg);
		for (int i = 0; i < N; i++)
			disk_close(dd[i]);
	}
	char *blank[N];
	for (int i = 0; i < N; i++)
		blank[i] = paths[i];
	blank[4] = fresh;
	import_refused("import of 2 of 5 disks", paths, 2, "unavailable");
	import_refused("import of a blank disk alone", &fresh, 1, "no bkstor label");
	CHECK(unchanged(before), "refused imports changed nothing");
	/* A blank disk among the members (an old disk a replace released, left in the
	 * machine) is set aside with a warning naming it; the rest assembles, here
	 * without slot 4, which is missing. The blank disk is not written. */
	{
		disk *bd[N];
		uint64_t fresh_before = hash_file(fresh);
		tu_open((const char *const *)blank, N, NULL, bd);
		bks_err_clear(&e);
		r = arr_import(&cfg, bd, N, &a, &e);
		CHECK(r == 0, "import with a blank disk instead of slot 4: %s", bks_errmsg(&e, r));
		if (r == 0) {
			arr_status bs;
			arr_get_status(a, &bs);
			CHECK(bs.health == ARR_DEGRADED, "without slot 4: %s",
			      arr_health_name(bs.health));
			CHECK(tu_verify_rows(a, SEED, 0, 4, 0) == 0, "data with slot 4 set aside");
			arr_close(a);
		} else {
			for (int i = 0; i < N; i++)
				disk_close(bd[i]);
		}
		printf("%-28s -> %s\n", "import with a blank disk", r == 0 ? "set aside" : e.msg);
		CHECK(hash_file(fresh) == fresh_before, "the blank disk was not written");
	}

	/* Truncated label: the file is cut inside the first label. */
	char *cut = tu_file_disk(dir, "cut", 0);
	{
		int src = open(paths[4], O_RDONLY), dst = open(cut, O_WRONLY);
		uint8_t half[2048];
		if (pread(src, half, sizeof(half), 0) != (ssize_t)sizeof(half) ||
		    pwrite(dst, half, sizeof(half), 0) != (ssize_t)sizeof(half))
			abort();
		close(src);
		close(dst);
	}
	blank[4] = cut;
	import_refused("import with a truncated label", blank, N, "too small to hold");

	/* One label copy damaged: the other copy carries the disk. */
	overwrite(paths[3], LBL_OFF0 + 100, 16, 0xab);
	a = import_good();
	CHECK(a != NULL, "one damaged label copy is survivable");
	arr_close(a);
	/* Both copies damaged: refused, naming the checksum. */
	overwrite(paths[3], LBL_OFF1 + 100, 16, 0xab);
	hash_all(before);
	import_refused("import, both labels damaged", paths, N, "checksum");
	CHECK(unchanged(before), "nothing written");
	/* ...but the array still imports without that disk (degraded). */
	{
		char *four[N - 1];
		int k = 0;
		for (int i = 0; i < N; i++)
			if (i != 3)
				four[k++] = paths[i];
		disk *dd[N - 1];
		tu_open((const char *const *)four, N - 1, NULL, dd);
		r = arr_import(&cfg, dd, N - 1, &a, &e);
		CHECK(r == 0, "import without the damaged disk: %s", bks_errmsg(&e, r));
		if (!r) {
			CHECK(tu_verify_rows(a, SEED, 0, 4, 0) == 0, "data (degraded)");
			arr_close(a);
		}
	}

	/* Corrupted superblock ring on one disk: still imports; on every disk:
	 * refused, with a message that says so. */
	{
		char *four[N - 1];
		int k = 0;
		for (int i = 0; i < N; i++)
			if (i != 3)
				four[k++] = paths[i];
		overwrite(four[0], SB_RING_OFF, SB_SLOTS * SB_SLOT_SIZE, 0x5a);
		disk *dd[N - 1];
		tu_open((const char *const *)four, N - 1, NULL, dd);
		r = arr_import(&cfg, dd, N - 1, &a, &e);
		CHECK(r == 0, "one ring corrupted: %s", bks_errmsg(&e, r));
		if (!r)
			arr_close(a);
		for (int i = 0; i < N - 1; i++)
			overwrite(four[i], SB_RING_OFF, SB_SLOTS * SB_SLOT_SIZE, 0x5a);
		import_refused("import, all rings corrupted", four, N - 1, "no superblock");
	}
	free(buf);
	return tu_finish();
}
