/* test-store-prepared: store_put_prepared, the verb the daemon's PUTs use for a new
 * chunk it fingerprinted and compressed outside its lock.
 *  1. A 6 MiB stream (random and text halves) cut with the store's chunker, every
 *     chunk fingerprinted and compressed here (zstd 1, zstd 19, or raw, in turn) and
 *     put prepared: every call says "new", the object reads back exact, the store's
 *     counts are the calls' (chunks, raw bytes, stored bytes = the bytes given).
 *  2. The race the daemon has: two writers found the same chunks new outside the lock;
 *     the second one's prepared copies are dropped (every call says "known", nothing
 *     is added to the store's counts), both objects read back exact. The same chunk
 *     twice in one writer: the second is "known".
 *  3. store_put of the same bytes stores nothing new (same cut points, same
 *     fingerprints: the prepared chunks are ordinary chunks).
 *  4. Refusals: a raw chunk whose lengths differ, a length above the store's maximum,
 *     a known fingerprint with another length (-EBADMSG: one fingerprint never names
 *     two chunks), after a store_put_write tail.
 *  5. Commit, reopen: everything reads back, verify finds every fingerprint right,
 *     and the data rows' own tables count exactly the chunks stored (the items are
 *     the store's ordinary format, readable by any build).
 */
#include <config.h>

#include "tests/testutil.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "dedup/chunker.h"
#include "dedup/fp.h"
#include "dedup/segment.h"
#include "dedup/store.h"

#define N 6
#define LEN (6u << 20)

struct chunk {
	size_t off;
	uint32_t len;
	uint8_t fp[FP_LEN];
	uint8_t *stored;
	uint32_t slen;
	int codec;
};

/* Cut buf with the store's chunker; fingerprint and compress (level by index). */
static size_t prepare(store *s, const uint8_t *buf, size_t len, struct chunk **out)
{
	cdc_params cp;
	cdc *c;
	fp_ctx *f;
	size_t n = 0, cap = len / 1024 + 16, pos = 0;
	struct chunk *ch = calloc(cap, sizeof(*ch));
	store_cdc_params(s, &cp);
	if (!ch || cdc_new(&cp, &c) < 0 || fp_ctx_new(&f) < 0)
		abort();
	while (pos < len) {
		int cut;
		size_t k = cdc_next(c, buf + pos, len - pos, &cut);
		struct chunk *x = &ch[n];
		x->off = pos;
		x->len = (uint32_t)k;
		if (fp_compute(f, buf + pos, k, x->fp) < 0)
			abort();
		size_t bound = ZSTD_compressBound(k);
		x->stored = malloc(bound);
		size_t z = 0;
		int level = n % 3 == 0 ? 1 : n % 3 == 1 ? 19 : 0;
		if (level)
			z = ZSTD_compress(x->stored, bound, buf + pos, k, level);
		if (level && !ZSTD_isError(z) && z < k) {
			x->slen = (uint32_t)z;
			x->codec = SEG_ZSTD;
		} else {
			memcpy(x->stored, buf + pos, k);
			x->slen = (uint32_t)k;
			x->codec = SEG_RAW;
		}
		pos += k;
		n++;
	}
	cdc_free(c);
	fp_ctx_free(f);
	*out = ch;
	return n;
}

static void free_chunks(struct chunk *ch, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(ch[i].stored);
	free(ch);
}

/* Put every chunk prepared into a new writer; counts the answers. */
static int put_all(store *s, const struct chunk *ch, size_t n, uint64_t *id, size_t *known,
                   size_t *fresh)
{
	store_writer *w;
	int r = store_put_begin(s, &w);
	if (r < 0)
		return r;
	*known = *fresh = 0;
	for (size_t i = 0; i < n; i++) {
		r = store_put_prepared(w, ch[i].fp, ch[i].len, ch[i].stored, ch[i].slen,
		                       ch[i].codec);
		if (r < 0) {
			store_put_abort(w);
			return r;
		}
		*(r ? known : fresh) += 1;
	}
	return store_put_end(w, id);
}

int main(void)
{
	const char *dir = tu_tmpdir("store-prepared");
	char *paths[N];
	store *s = NULL;
	bks_err e = {0};
	store_stats st0, st1, st2;
	int r;

	arr *a = tu_make_array(dir, N, 128, NULL, paths);
	r = store_create(a, NULL, &s, &e);
	REQUIRE(r == 0, "store create: %s", bks_errmsg(&e, r));
	uint8_t *buf = malloc(LEN);
	REQUIRE(buf, "memory");
	tu_fill(7, 0, 0, buf, LEN / 2);
	{
		/* Text: words picked at random (compresses, repeats no chunk). */
		static const char *const words[] = {"backup ", "restore ", "disk ", "row ",
		    "chunk ", "the ", "of ", "and ", "segment ", "index ", "lock ", "stream\n"};
		uint64_t x = 88172645463325252ull;
		size_t i = LEN / 2;
		while (i < LEN) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			const char *w = words[x % 12];
			for (size_t k = 0; w[k] && i < LEN; k++)
				buf[i++] = (uint8_t)w[k];
		}
	}

	/* 1. all new */
	struct chunk *ch;
	size_t n = prepare(s, buf, LEN, &ch), known, fresh, nraw = 0, nz = 0;
	uint64_t want_stored = 0, id1, id2, id3;
	for (size_t i = 0; i < n; i++) {
		want_stored += ch[i].slen;
		*(ch[i].codec == SEG_RAW ? &nraw : &nz) += 1;
	}
	CHECK(nraw > 10 && nz > 10, "both codecs used: %zu raw, %zu zstd", nraw, nz);
	store_get_stats(s, &st0);
	r = put_all(s, ch, n, &id1, &known, &fresh);
	REQUIRE(r == 0, "put prepared: %d", r);
	CHECK(fresh == n && known == 0, "%zu chunks: %zu new, %zu known", n, fresh, known);
	store_get_stats(s, &st1);
	CHECK(st1.unique_chunks - st0.unique_chunks == n, "unique chunks +%llu, want %zu",
	      (unsigned long long)(st1.unique_chunks - st0.unique_chunks), n);
	CHECK(st1.unique_raw_bytes - st0.unique_raw_bytes == LEN, "raw bytes +%llu",
	      (unsigned long long)(st1.unique_raw_bytes - st0.unique_raw_bytes));
	CHECK(st1.stored_bytes - st0.stored_bytes == want_stored,
	      "stored +%llu, the prepared bytes were %llu",
	      (unsigned long long)(st1.stored_bytes - st0.stored_bytes),
	      (unsigned long long)want_stored);
	CHECK(tu_store_same(s, id1, buf, LEN), "object 1 reads back");

	/* 2. the second stream's copies are dropped */
	r = put_all(s, ch, n, &id2, &known, &fresh);
	REQUIRE(r == 0, "put prepared again: %d", r);
	CHECK(known == n && fresh == 0, "again: %zu known, %zu new", known, fresh);
	store_get_stats(s, &st2);
	CHECK(st2.unique_chunks == st1.unique_chunks && st2.stored_bytes == st1.stored_bytes,
	      "nothing added: chunks %llu -> %llu, stored %llu -> %llu",
	      (unsigned long long)st1.unique_chunks, (unsigned long long)st2.unique_chunks,
	      (unsigned long long)st1.stored_bytes, (unsigned long long)st2.stored_bytes);
	CHECK(tu_store_same(s, id2, buf, LEN), "object 2 reads back");
	{
		/* Two writers open at once, the chunk new to both when they looked. */
		uint8_t one[5000];
		tu_fill(99, 1, 1, one, sizeof(one));
		uint8_t fp[FP_LEN];
		fp_ctx *f;
		REQUIRE(fp_ctx_new(&f) == 0, "fp ctx");
		fp_compute(f, one, sizeof(one), fp);
		fp_ctx_free(f);
		store_writer *w1, *w2;
		REQUIRE(store_put_begin(s, &w1) == 0 && store_put_begin(s, &w2) == 0, "writers");
		CHECK(store_has_chunk(s, fp, sizeof(one)) == 0, "new before");
		r = store_put_prepared(w1, fp, sizeof(one), one, sizeof(one), SEG_RAW);
		CHECK(r == 0, "first writer stores it: %d", r);
		r = store_put_prepared(w2, fp, sizeof(one), one, sizeof(one), SEG_RAW);
		CHECK(r == 1, "second writer finds it known: %d", r);
		r = store_put_prepared(w2, fp, sizeof(one), one, sizeof(one), SEG_RAW);
		CHECK(r == 1, "twice in one writer: known: %d", r);
		/* 4. refusals (w2 is still sound after these: they change nothing) */
		CHECK(store_put_prepared(w2, fp, sizeof(one), one, 100, SEG_RAW) == -EINVAL,
		      "raw with two lengths");
		CHECK(store_put_prepared(w2, fp, (64u << 10) + 1, one, 100, SEG_ZSTD) == -EINVAL,
		      "longer than the largest chunk");
		CHECK(store_put_prepared(w2, fp, sizeof(one), one, sizeof(one), 7) == -EINVAL,
		      "unknown codec");
		uint64_t i1, i2;
		CHECK(store_put_end(w1, &i1) == 0, "end 1");
		CHECK(store_put_end(w2, &i2) == 0, "end 2");
		CHECK(tu_store_same(s, i1, one, sizeof(one)), "w1 reads back");
		uint8_t two[10000];
		memcpy(two, one, sizeof(one));
		memcpy(two + sizeof(one), one, sizeof(one));
		CHECK(tu_store_same(s, i2, two, sizeof(two)), "w2 reads back");
		store_writer *w3;
		REQUIRE(store_put_begin(s, &w3) == 0, "writer 3");
		r = store_put_prepared(w3, fp, sizeof(one) - 1, one, sizeof(one) - 1, SEG_RAW);
		CHECK(r == -EBADMSG, "known fingerprint, other length: %d", r);
		store_put_abort(w3);
		REQUIRE(store_put_begin(s, &w3) == 0, "writer 4");
		CHECK(store_put_write(w3, one, 100) == 0, "a write leaves a tail");
		CHECK(store_put_prepared(w3, fp, sizeof(one), one, sizeof(one), SEG_RAW) == -EINVAL,
		      "after a write's tail");
		store_put_abort(w3);
	}

	/* 3. the ordinary path finds them all */
	store_get_stats(s, &st1);
	r = store_put(s, buf, LEN, &id3);
	CHECK(r == 0, "store_put: %d", r);
	store_get_stats(s, &st2);
	CHECK(st2.unique_chunks == st1.unique_chunks, "store_put of the same bytes: %llu new",
	      (unsigned long long)(st2.unique_chunks - st1.unique_chunks));

	/* 5. commit, reopen, verify, count the rows' tables */
	r = store_commit(s, &e);
	REQUIRE(r == 0, "commit: %s", bks_errmsg(&e, r));
	store_get_stats(s, &st1);
	store_close(s);
	s = tu_store_reopen(paths, N, NULL);
	REQUIRE(s, "reopen");
	CHECK(tu_store_same(s, id1, buf, LEN), "object 1 after reopen");
	CHECK(tu_store_same(s, id2, buf, LEN), "object 2 after reopen");
	CHECK(tu_store_same(s, id3, buf, LEN), "object 3 after reopen");
	CHECK(tu_store_verify_clean(s, TU_ANY_OBJECTS), "verify clean");
	uint64_t chunks = 0, stored = 0;
	CHECK(tu_store_scan(s, &chunks, &stored, NULL) == 0, "scan");
	CHECK(chunks == st1.unique_chunks && stored == st1.stored_bytes,
	      "rows hold %llu chunks / %llu bytes, the store counted %llu / %llu",
	      (unsigned long long)chunks, (unsigned long long)stored,
	      (unsigned long long)st1.unique_chunks, (unsigned long long)st1.stored_bytes);
	store_close(s);
	free_chunks(ch, n);
	free(buf);
	return tu_finish();
}
