/* test-store-roundtrip: objects of awkward sizes (empty, 1 byte, exactly one chunk,
 * around 64 KiB boundaries, many MiB, a 1 GiB sparse-ish one) written through the
 * store and read back byte-identical, whole and by random ranges, before and after a
 * commit and a reopen. Content is generated from (seed, offset), so nothing needs
 * to be kept in memory to check it. */
#include <config.h>

#include "tests/testutil.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dedup/store.h"

#define N 6

/* Object content: pseudo-random 4 KiB blocks; "sparse" objects are zeros except for
 * one random block in every 64 (backup images look like this). */
static void content(uint64_t seed, int sparse, uint64_t off, uint8_t *buf, size_t len)
{
	while (len > 0) {
		uint64_t blk = off / 4096, in = off % 4096;
		size_t n = (size_t)BKS_MIN((uint64_t)len, 4096 - in);
		if (sparse && blk % 64 != 7) {
			memset(buf, 0, n);
		} else {
			uint8_t tmp[4096];
			tu_fill(seed, blk, 0, tmp, sizeof(tmp));
			memcpy(buf, tmp + in, n);
		}
		buf += n;
		off += n;
		len -= n;
	}
}

struct obj {
	const char *name;
	uint64_t size;
	int sparse;
	uint64_t id;
};

static int put_obj(store *s, struct obj *o, uint64_t seed)
{
	store_writer *w;
	size_t piece = 1 << 20;
	uint8_t *buf = malloc(piece);
	int r = store_put_begin(s, &w);
	bks_rng rng;
	bks_rng_seed(&rng, seed);
	for (uint64_t off = 0; r == 0 && off < o->size;) {
		/* Odd write sizes: the chunker must not care. */
		uint64_t want = 1 + bks_rng_below(&rng, piece); /* BKS_MIN evaluates twice */
		size_t n = (size_t)BKS_MIN(want, o->size - off);
		content(seed, o->sparse, off, buf, n);
		r = store_put_write(w, buf, n);
		off += n;
	}
	if (r == 0)
		r = store_put_end(w, &o->id);
	else
		store_put_abort(w);
	free(buf);
	return r;
}

static int check_obj(store *s, const struct obj *o, uint64_t seed, bks_rng *rng)
{
	size_t piece = 3 << 20;
	uint8_t *got = malloc(piece), *want = malloc(piece);
	int bad = 0;
	store_obj_info in;
	if (store_stat(s, o->id, &in) != 0 || in.size != o->size) {
		fprintf(stderr, "  %s: stat says %llu bytes\n", o->name, (unsigned long long)in.size);
		bad++;
	}
	/* Whole object, sequentially, in odd pieces (only the first 64 MiB of big ones). */
	uint64_t limit = BKS_MIN(o->size, 64ull << 20);
	for (uint64_t off = 0; off < limit && !bad;) {
		uint64_t want_n = 1 + bks_rng_below(rng, piece);
		size_t n = (size_t)BKS_MIN(want_n, limit - off);
		size_t g = 0;
		int r = store_read(s, o->id, off, got, n, &g);
		content(seed, o->sparse, off, want, n);
		if (r != 0 || g != n || memcmp(got, want, n)) {
			fprintf(stderr, "  %s: sequential read at %llu (+%zu): r=%d got=%zu\n", o->name,
			        (unsigned long long)off, n, r, g);
			bad++;
		}
		off += n;
	}
	/* Random ranges anywhere, including past the end. */
	for (int i = 0; i < 40 && !bad && o->size; i++) {
		uint64_t off = bks_rng_below(rng, o->size + 10);
		size_t n = (size_t)bks_rng_below(rng, 300000) + 1;
		size_t g = 0, expect = off >= o->size ? 0 : (size_t)BKS_MIN((uint64_t)n, o->size - off);
		int r = store_read(s, o->id, off, got, n, &g);
		content(seed, o->sparse, off, want, expect);
		if (r != 0 || g != expect || memcmp(got, want, expect)) {
			fprintf(stderr, "  %s: range read at %llu (+%zu): r=%d got=%zu want=%zu\n",
			        o->name, (unsigned long long)off, n, r, g, expect);
			bad++;
		}
	}
	free(got);
	free(want);
	return bad;
}

int main(void)
{
	const char *dir = tu_tmpdir("store-rt");
	char *paths[N];
	store *s = NULL;
	bks_err e = {0};
	bks_rng rng;
	store_params sp;
	int r;

	bks_rng_seed(&rng, 77);
	arr *a = tu_make_array(dir, N, 320, NULL, paths);
	store_params_default(&sp);
	/* More helper threads than cores: the work sharing must not depend on timing. */
	sp.threads = 5;
	/* Metadata blocks smaller than the index's: refused up front with the reason (the
	 * index's first commit used to fail with EFBIG), and the array is still the
	 * caller's to use. */
	sp.pool.meta_block = 16u << 10;
	r = store_create(a, &sp, &s, &e);
	CHECK(r == -EINVAL && s == NULL && strstr(bks_errmsg(&e, r), "fingerprint index"),
	      "16 KiB metadata blocks refused: %d %s", r, bks_errmsg(&e, r));
	sp.pool.meta_block = 32u << 10;
	r = store_create(a, &sp, &s, &e);
	REQUIRE(r == 0, "store create: %s", bks_errmsg(&e, r));

	struct obj objs[] = {
		{"empty", 0, 0, 0},
		{"one byte", 1, 0, 0},
		{"one chunk (3000 B)", 3000, 0, 0},
		{"64 KiB - 1", 65535, 0, 0},
		{"64 KiB", 65536, 0, 0},
		{"64 KiB + 1", 65537, 0, 0},
		{"128 KiB", 131072, 0, 0},
		{"5 MiB + 17", (5u << 20) + 17, 0, 0},
		{"40 MiB", 40u << 20, 0, 0},
		{"1 GiB sparse-ish", 1ull << 30, 1, 0},
	};
	int n = (int)BKS_ARRAY_SIZE(objs);
	for (int i = 0; i < n; i++) {
		r = put_obj(s, &objs[i], 1000 + (uint64_t)i);
		CHECK(r == 0, "put %s: %d", objs[i].name, r);
	}
	for (int i = 0; i < n; i++)
		CHECK(check_obj(s, &objs[i], 1000 + (uint64_t)i, &rng) == 0,
		      "%s before commit", objs[i].name);
	r = store_commit(s, &e);
	CHECK(r == 0, "commit: %s", bks_errmsg(&e, r));
	for (int i = 0; i < n; i++)
		CHECK(check_obj(s, &objs[i], 1000 + (uint64_t)i, &rng) == 0,
		      "%s after commit", objs[i].name);
	store_stats st;
	store_get_stats(s, &st);
	printf("objects %llu, logical %llu, unique chunks %llu, unique raw %llu, stored %llu, "
	       "dedup %.2f, compression %.2f, rows data %llu meta %llu\n",
	       (unsigned long long)st.objects, (unsigned long long)st.logical_bytes,
	       (unsigned long long)st.unique_chunks, (unsigned long long)st.unique_raw_bytes,
	       (unsigned long long)st.stored_bytes, st.dedup_ratio, st.compression_ratio,
	       (unsigned long long)st.rows_data, (unsigned long long)st.rows_meta);
	CHECK(st.objects == (uint64_t)n, "object count %llu", (unsigned long long)st.objects);
	store_close(s);

	/* Reopen: everything is still there and reads back. */
	a = tu_import_array(paths, N, NULL);
	REQUIRE(a != NULL, "import");
	r = store_open(a, &sp, &s, &e);
	REQUIRE(r == 0, "store open: %s", bks_errmsg(&e, r));
	for (int i = 0; i < n; i++)
		CHECK(check_obj(s, &objs[i], 1000 + (uint64_t)i, &rng) == 0, "%s after reopen",
		      objs[i].name);
	store_verify_report vr;
	r = store_verify(s, &vr);
	CHECK(r == 0 && vr.objects == (uint64_t)n && vr.chunks_bad == 0 && vr.objects_damaged == 0,
	      "verify: %llu objects, %llu chunks, %llu bad", (unsigned long long)vr.objects,
	      (unsigned long long)vr.chunks_checked, (unsigned long long)vr.chunks_bad);
	/* Rebuild the index from the segments: everything still deduplicates against it
	 * (the same 40 MiB again adds no chunk). */
	r = store_rebuild_index(s, &e);
	CHECK(r == 0, "rebuild index: %s", bks_errmsg(&e, r));
	store_stats before, after;
	store_get_stats(s, &before);
	struct obj again = objs[8];
	CHECK(put_obj(s, &again, 1000 + 8) == 0, "put 40 MiB again");
	store_get_stats(s, &after);
	CHECK(after.unique_chunks == before.unique_chunks,
	      "after a rebuilt index, a repeated object stores no new chunk (%llu -> %llu)",
	      (unsigned long long)before.unique_chunks, (unsigned long long)after.unique_chunks);
	CHECK(check_obj(s, &again, 1000 + 8, &rng) == 0, "the repeat reads back");
	/* Objects that do not exist. */
	size_t g;
	uint8_t b[16];
	CHECK(store_read(s, 9999, 0, b, sizeof(b), &g) == -ENOENT, "read of a missing object");
	CHECK(store_delete(s, objs[2].id) == 0, "delete");
	CHECK(store_read(s, objs[2].id, 0, b, sizeof(b), &g) == -ENOENT, "read after delete");
	store_close(s);
	return tu_finish();
}
