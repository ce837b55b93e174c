/* test-store-segflags: segment item flags are disk bytes, and the collector must
 * not trust them beyond what they can mean. SEG_EF_DEFERRED marks an item stored
 * raw for the background pass (segment.h); a writer sets it only on raw items. An
 * item whose table entry says zstd and deferred (a damaged or foreign table whose
 * checksums were made to match) must be copied forward by the collector as the zstd
 * item it is (as dedup/store_defer.c already treats it), not handed to the segment
 * builder as a deferred raw item: that refuses it (slen != rlen) and failed every
 * collection of the store at that row, for good.
 * Here: two compressible objects in one segment, one deleted, the live one's zstd
 * entries given the deferred flag (table and header checksums recomputed), then a
 * collection: it finishes, frees the row, the object reads back and verify is clean. */
#include <config.h>

#include "tests/testutil.h"

#include <stdlib.h>
#include <string.h>

#include "common/endian.h"
#include "dedup/pool.h"
#include "dedup/store.h"
#include "dedup/store_int.h"

#define N 6
#define OBJ (192u << 10)

static void text(uint8_t *b, size_t len, uint64_t seed)
{
	static const char *words[] = {"backup ", "segment ", "the ", "chunk ", "row ", "of ",
		"index ", "zstd ", "and ", "store ", "array ", "commit ", "\n", "42 "};
	uint64_t x = seed;
	for (size_t i = 0; i < len;) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		const char *w = words[x % BKS_ARRAY_SIZE(words)];
		size_t n = BKS_MIN(strlen(w), len - i);
		memcpy(b + i, w, n);
		i += n;
	}
}

/* Flag every zstd item of every committed data row deferred, checksums made to
 * match (header offset 76: flags, 80: table xxh3, last 8: header xxh3). */
static int flag_zstd_items(arr *a, uint64_t rows)
{
	size_t rb = arr_row_bytes(a);
	uint8_t *row = NULL;
	int flagged = 0;
	if (posix_memalign((void **)&row, 4096, rb) != 0)
		return 0;
	bks_err e = {0};
	for (uint64_t r = 0; r < rows && row; r++) {
		seg_header h;
		if (arr_read(a, r, 0, row, rb) < 0 || seg_header_decode(row, rb, &h, NULL) < 0 ||
		    h.kind != SEG_DATA || h.row != r)
			continue;
		int n = 0;
		for (uint32_t i = 0; i < h.nitems; i++) {
			uint8_t *en = row + h.table_off + (size_t)i * SEG_ENTRY_SIZE;
			if (en[44] == SEG_ZSTD) {
				en[45] = SEG_EF_DEFERRED;
				n++;
			}
		}
		if (!n)
			continue;
		le_put32(row + 76, le_get32(row + 76) | SEG_HF_DEFERRED);
		le_put64(row + 80, bks_xxh3(row + h.table_off, (size_t)h.nitems * SEG_ENTRY_SIZE));
		le_put64(row + SEG_HDR_SIZE - 8, bks_xxh3(row, SEG_HDR_SIZE - 8));
		if (arr_write_rows(a, r, 1, row, &e) < 0) {
			fprintf(stderr, "row %llu: %s\n", (unsigned long long)r, e.msg);
			break;
		}
		flagged += n;
	}
	free(row);
	return flagged;
}

int main(void)
{
	const char *dir = tu_tmpdir("store-segflags");
	char *paths[N];
	store *s = NULL;
	bks_err e = {0};
	uint8_t *d1 = malloc(OBJ), *d2 = malloc(OBJ);
	uint64_t id1, id2;
	REQUIRE(d1 && d2, "memory");
	text(d1, OBJ, 0x1234);
	text(d2, OBJ, 0x5678);

	arr *a = tu_make_array(dir, N, 64, NULL, paths);
	REQUIRE(store_create(a, NULL, &s, &e) == 0, "store: %s", e.msg);
	REQUIRE(store_put(s, d1, OBJ, &id1) == 0 && store_put(s, d2, OBJ, &id2) == 0, "puts");
	REQUIRE(store_commit(s, &e) == 0, "commit: %s", e.msg);
	CHECK(store_delete(s, id2) == 0, "delete 2");
	REQUIRE(store_commit(s, &e) == 0, "commit: %s", e.msg);
	uint64_t rows = pool_rows(store_pool(s));
	store_close(s);

	a = tu_import_array(paths, N, NULL);
	REQUIRE(a, "import");
	int flagged = flag_zstd_items(a, rows);
	CHECK(flagged > 0, "zstd items flagged deferred: %d", flagged);
	REQUIRE(store_open(a, NULL, &s, &e) == 0, "reopen: %s", e.msg);
	CHECK(tu_store_same(s, id1, d1, OBJ), "object 1 reads back before the collection");

	int r = store_gc_start(s, 0.99);
	CHECK(r == 0, "gc start: %d", r);
	while (r == 0 && (r = store_gc_step(s)) > 0)
		r = 0;
	store_gc_stats gs;
	store_gc_get_stats(s, &gs);
	CHECK(r == 0, "the collection finishes (%d: %s)", r, r < 0 ? strerror(-r) : "ok");
	CHECK(gs.chunks_moved > 0, "it moved the live chunks (%llu)",
	      (unsigned long long)gs.chunks_moved);
	REQUIRE(store_commit(s, &e) == 0, "commit: %s", e.msg);
	CHECK(tu_store_same(s, id1, d1, OBJ), "object 1 reads back after the collection");
	CHECK(tu_store_verify_clean(s, 1), "verify clean");
	store_close(s);

	a = tu_import_array(paths, N, NULL);
	REQUIRE(a && store_open(a, NULL, &s, &e) == 0, "reopen: %s", e.msg);
	CHECK(tu_store_same(s, id1, d1, OBJ), "object 1 reads back after a reopen");
	store_close(s);
	free(d1);
	free(d2);
	return tu_finish();
}
