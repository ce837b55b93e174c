/* test-store-degraded: (1) the whole store round trip on an array with two disks
 * failed: writes, commits, reopen (with the two missing), reads, verify. (2) silent
 * corruption inside a data segment on one disk: verify reports it (the array found a
 * checksum mismatch and repaired the strip), the data reads back right, a second
 * verify finds nothing; corruption found first by an array scrub (which checks the
 * segments' checksums) is repaired the same way. (3) silent corruption under a
 * segment header and a segment table: their reads reconstruct and repair. */
#include <config.h>

#include "tests/testutil.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dedup/store.h"
#include "dedup/store_int.h" /* store_pool: white-box counts of rows */
#include "raid/raid.h"

#define N 6

static void obj_content(uint64_t seed, uint8_t *buf, size_t len)
{
	tu_fill(seed, 0, 0, buf, len);
	/* Half of it compressible text-like bytes: zstd has something to do. */
	for (size_t i = 0; i < len / 2; i++)
		buf[i] = (uint8_t)("backup of /var/lib/db "[i % 22]);
}

static int same(store *s, uint64_t id, uint64_t seed, size_t len)
{
	uint8_t *want = malloc(len);
	obj_content(seed, want, len);
	int ok = tu_store_same(s, id, want, len);
	free(want);
	return ok;
}

static uint64_t put(store *s, uint64_t seed, size_t len)
{
	uint8_t *b = malloc(len);
	uint64_t id = 0;
	obj_content(seed, b, len);
	if (store_put(s, b, len, &id) != 0)
		id = 0;
	free(b);
	return id;
}

/* Flip bytes inside the stored bytes of the first chunk of the first DATA row, on the
 * disk that holds them; returns that row. */
static uint64_t corrupt_chunk(store *s, char **paths)
{
	pool *pl = store_pool(s);
	seg_entry ents[512];
	for (uint64_t row = 0; row < pool_rows(pl); row++) {
		seg_header h;
		if (pool_row_state(pl, row) != ROW_DATA ||
		    pool_read_seg_table(pl, row, &h, ents, 512) <= 0)
			continue;
		uint32_t off = ents[0].off + ents[0].slen / 2; /* inside the chunk */
		uint32_t strip = 64 << 10;
		int st = (int)(off / strip);
		int slot = raid_strip_disk(N, row, st);
		int fd = open(paths[slot], O_RDWR);
		uint8_t junk[32];
		memset(junk, 0xA5, sizeof(junk));
		if (fd < 0 || pwrite(fd, junk, sizeof(junk),
		                     (off_t)((1 << 20) + row * strip + off % strip)) != sizeof(junk))
			abort();
		fsync(fd);
		close(fd);
		return row;
	}
	return UINT64_MAX;
}

int main(void)
{
	const char *dir = tu_tmpdir("store-degraded");
	char sub[600], *paths[N];
	store *s = NULL;
	bks_err e = {0};
	flt_world *w;
	int r;

	/* (1) two disks failed for the whole round trip. */
	snprintf(sub, sizeof(sub), "%s/a", dir);
	tu_mkdir(sub);
	flt_world_new(1, &w);
	arr *a = tu_make_array(sub, N, 64, w, paths);
	REQUIRE(store_create(a, NULL, &s, &e) == 0, "create: %s", e.msg);
	uint64_t id0 = put(s, 1, 3u << 20);
	REQUIRE(id0 && store_commit(s, &e) == 0, "healthy put");
	store_close(s);
	a = tu_import_array(paths, N, w);
	REQUIRE(a, "import");
	REQUIRE(store_open(a, NULL, &s, &e) == 0, "open: %s", e.msg);
	/* Disks 1 and 4 vanish (through the fault layer handles of this import). */
	store_close(s);
	disk *dd[N];
	int nd = 0;
	for (int i = 0; i < N; i++)
		if (i != 1 && i != 4)
			dd[nd++] = tu_open1(paths[i], w);
	arr_config cfg;
	arr_config_defaults(&cfg);
	r = arr_import(&cfg, dd, nd, &a, &e);
	REQUIRE(r == 0, "degraded import: %s", bks_errmsg(&e, r));
	REQUIRE(store_open(a, NULL, &s, &e) == 0, "open degraded: %s", e.msg);
	CHECK(same(s, id0, 1, 3u << 20), "object written healthy reads with two disks gone");
	uint64_t ids[4];
	for (int i = 0; i < 4; i++) {
		ids[i] = put(s, 10 + (uint64_t)i, (size_t)(1 + i) << 20);
		CHECK(ids[i] != 0, "degraded put %d", i);
	}
	CHECK(store_commit(s, &e) == 0, "degraded commit: %s", e.msg);
	for (int i = 0; i < 4; i++)
		CHECK(same(s, ids[i], 10 + (uint64_t)i, (size_t)(1 + i) << 20), "degraded read %d", i);
	store_close(s);
	nd = 0;
	for (int i = 0; i < N; i++)
		if (i != 1 && i != 4)
			dd[nd++] = tu_open1(paths[i], w);
	r = arr_import(&cfg, dd, nd, &a, &e);
	REQUIRE(r == 0, "degraded re-import: %s", bks_errmsg(&e, r));
	REQUIRE(store_open(a, NULL, &s, &e) == 0, "reopen degraded: %s", e.msg);
	CHECK(same(s, id0, 1, 3u << 20), "first object after reopen");
	for (int i = 0; i < 4; i++)
		CHECK(same(s, ids[i], 10 + (uint64_t)i, (size_t)(1 + i) << 20), "reopen read %d", i);
	store_verify_report vr;
	CHECK(store_verify(s, &vr) == 0 && vr.chunks_bad == 0 && vr.objects == 5,
	      "verify degraded: %llu objects, %llu bad", (unsigned long long)vr.objects,
	      (unsigned long long)vr.chunks_bad);
	store_close(s);
	flt_world_free(w);

	/* (2) silent corruption in a data segment. */
	snprintf(sub, sizeof(sub), "%s/b", dir);
	tu_mkdir(sub);
	a = tu_make_array(sub, N, 64, NULL, paths);
	REQUIRE(store_create(a, NULL, &s, &e) == 0, "create b: %s", e.msg);
	for (int i = 0; i < 3; i++)
		REQUIRE((ids[i] = put(s, 20 + (uint64_t)i, 2u << 20)) != 0, "put b %d", i);
	REQUIRE(store_commit(s, &e) == 0, "commit b");
	uint64_t row = corrupt_chunk(s, paths);
	REQUIRE(row != UINT64_MAX, "found a data row to corrupt");
	store_close(s);
	a = tu_import_array(paths, N, NULL);
	REQUIRE(a && store_open(a, NULL, &s, &e) == 0, "open b: %s", e.msg);
	r = store_verify(s, &vr);
	printf("verify after corrupting row %llu: %llu chunks checked, %llu bad, %llu repaired\n",
	       (unsigned long long)row, (unsigned long long)vr.chunks_checked,
	       (unsigned long long)vr.chunks_bad, (unsigned long long)vr.repaired);
	CHECK(r == 0 && vr.repaired >= 1, "verify reports the corruption it repaired");
	CHECK(vr.chunks_bad == 0 && vr.objects_damaged == 0, "nothing left damaged");
	for (int i = 0; i < 3; i++)
		CHECK(same(s, ids[i], 20 + (uint64_t)i, 2u << 20), "object %d reads right", i);
	r = store_verify(s, &vr);
	CHECK(r == 0 && vr.repaired == 0 && vr.chunks_bad == 0, "second verify is clean");
	/* Corruption found by the array's scrub through the segment checksums. */
	row = corrupt_chunk(s, paths);
	store_close(s);
	a = tu_import_array(paths, N, NULL);
	REQUIRE(a && store_open(a, NULL, &s, &e) == 0, "open b2: %s", e.msg);
	arr *ar = pool_array(store_pool(s));
	CHECK(arr_scrub_start(ar, &e) == 0 && arr_bg_run(ar) == 0, "scrub");
	arr_status *ast = malloc(sizeof(*ast));
	arr_get_status(ar, ast);
	printf("scrub: %llu rows, %llu errors found, %llu repaired, %llu unrecoverable\n",
	       (unsigned long long)ast->last_scrub.rows_checked,
	       (unsigned long long)ast->last_scrub.errors_found,
	       (unsigned long long)ast->last_scrub.repaired,
	       (unsigned long long)ast->last_scrub.unrecoverable);
	CHECK(ast->last_scrub.errors_found >= 1 && ast->last_scrub.repaired >= 1 &&
	      ast->last_scrub.unrecoverable == 0, "scrub found and repaired it");
	free(ast);
	r = store_verify(s, &vr);
	CHECK(r == 0 && vr.repaired == 0 && vr.chunks_bad == 0, "verify after scrub is clean");

	/* (3) silent corruption under a segment header and under a segment table on a
	 * healthy array: pool_read_seg_table (what the GC sweep, the intent log replay
	 * and the index rebuild use) reconstructs and repairs instead of EBADMSG. */
	pool *pl = store_pool(s);
	uint64_t trow[2] = {UINT64_MAX, UINT64_MAX};
	int tn[2] = {0, 0};
	seg_entry *tents[2] = {calloc(512, sizeof(seg_entry)), calloc(512, sizeof(seg_entry))};
	seg_header th[2];
	for (uint64_t rr = 0, k = 0; rr < pool_rows(pl) && k < 2; rr++) {
		if (pool_row_state(pl, rr) != ROW_DATA)
			continue;
		tn[k] = pool_read_seg_table(pl, rr, &th[k], tents[k], 512);
		if (tn[k] > 0)
			trow[k++] = rr;
	}
	REQUIRE(trow[1] != UINT64_MAX, "two data rows with tables");
	store_close(s);
	{
		uint32_t strip = 64 << 10;
		uint64_t at[2] = {100, th[1].table_off + 64}; /* inside header; inside table */
		for (int k = 0; k < 2; k++) {
			int slot = raid_strip_disk(N, trow[k], (int)(at[k] / strip));
			int fd = open(paths[slot], O_RDWR);
			uint8_t junk[64];
			memset(junk, 0x3c, sizeof(junk));
			if (fd < 0 || pwrite(fd, junk, sizeof(junk),
			                     (off_t)((1 << 20) + trow[k] * strip + at[k] % strip)) !=
			                  (ssize_t)sizeof(junk))
				abort();
			fsync(fd);
			close(fd);
		}
	}
	a = tu_import_array(paths, N, NULL);
	REQUIRE(a && store_open(a, NULL, &s, &e) == 0, "open c: %s", e.msg);
	pl = store_pool(s);
	seg_entry *got = calloc(512, sizeof(seg_entry));
	for (int k = 0; k < 2; k++) {
		seg_header gh;
		int n = pool_read_seg_table(pl, trow[k], &gh, got, 512);
		printf("segment %s of row %llu corrupted: pool_read_seg_table -> %d (%d before)\n",
		       k ? "table" : "header", (unsigned long long)trow[k], n, tn[k]);
		CHECK(n == tn[k] && gh.seg_id == th[k].seg_id &&
		      !memcmp(got, tents[k], (size_t)n * sizeof(seg_entry)),
		      "row %llu: table read through the corruption: %d", (unsigned long long)trow[k],
		      n);
	}
	/* Repaired in place: the raw bytes now decode without any verifier. */
	arr *ca = pool_array(pl);
	uint8_t *hb = tu_alloc(4096);
	seg_header gh;
	CHECK(arr_read(ca, trow[0], 0, hb, 4096) == 0 &&
	      seg_header_decode(hb, 4096, &gh, NULL) == 0, "header repaired on disk");
	free(hb);
	free(got);
	free(tents[0]);
	free(tents[1]);
	store_close(s);
	return tu_finish();
}
