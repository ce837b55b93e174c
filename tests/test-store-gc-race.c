/* test-store-gc-race: a chunk whose row the collector freed must not answer a dedup
 * lookup, even when the index learned it in the transaction group being built (the
 * memtable) and the same bytes come back before the next commit.
 *
 * Per round: put 4 MiB, delete it, run the collector to the end (its rows are freed),
 * put the same 4 MiB again in the same txg. The second put must store anew every
 * chunk whose row was freed (the old code acknowledged it with 0 new chunks that
 * pointed into freed rows: reads said -ESTALE, and -EIO once a commit let the rows
 * be reused). A put after that deduplicates fully again (the dead entries dropped
 * from the memtable did not take live ones with them). Once with
 * store_put, once with the source-dedup verbs (store_has_chunk, store_put_known,
 * store_put_chunk). Then: read back exact, verify clean, commit, fill the freed rows
 * with other data, read back and verify again, close, reopen, read back and verify.
 * Round 3 does the same to a committed object that went through the locality cache,
 * the decoded-chunk cache and the pool's row cache. */
#include <config.h>

#include "tests/testutil.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dedup/fp.h"
#include "dedup/store.h"
#include "dedup/store_int.h" /* store_pool: white-box counts of rows */

#define N 6
#define SZ (4u << 20)

/* Run a whole collection (steps, no commit: the same txg goes on). */
static int gc_all(store *s)
{
	int r = store_gc_start(s, 0.5);
	if (r == 0)
		while ((r = store_gc_step(s)) > 0)
			;
	return r;
}

/* Put buf through the source-dedup verbs, the way a client does: chunk, ask, send
 * only what is missing. *sent: chunks whose bytes were sent. */
static int put_source(store *s, const uint8_t *buf, size_t len, uint64_t *id, uint64_t *chunks,
                      uint64_t *sent, uint64_t *known_hits)
{
	cdc_params cp;
	cdc *c;
	fp_ctx *f;
	store_writer *w;
	int r;
	store_cdc_params(s, &cp);
	if ((r = cdc_new(&cp, &c)) < 0)
		return r;
	if ((r = fp_ctx_new(&f)) < 0) {
		cdc_free(c);
		return r;
	}
	if ((r = store_put_begin(s, &w)) < 0)
		goto out;
	*chunks = *sent = *known_hits = 0;
	size_t start = 0, pos = 0;
	while (pos < len || start < len) {
		int cut = 0;
		size_t n = pos < len ? cdc_next(c, buf + pos, len - pos, &cut) : 0;
		pos += n;
		if (!cut && pos < len)
			continue;
		uint32_t cl = (uint32_t)(pos - start);
		uint8_t fp[FP_LEN];
		if ((r = fp_compute(f, buf + start, cl, fp)) < 0)
			break;
		(*chunks)++;
		int has = store_has_chunk(s, fp, cl);
		if (has < 0) {
			r = has;
			break;
		}
		/* Ask with put_known either way: its answer must agree with has_chunk. */
		r = store_put_known(w, fp, cl);
		if (r < 0)
			break;
		if (r != has) {
			fprintf(stderr, "  has_chunk %d but put_known %d\n", has, r);
			r = -EPROTO;
			break;
		}
		if (r == 1) {
			(*known_hits)++;
		} else {
			if ((r = store_put_chunk(w, fp, buf + start, cl)) < 0)
				break;
			(*sent)++;
		}
		r = 0;
		start = pos;
	}
	if (r < 0)
		store_put_abort(w);
	else
		r = store_put_end(w, id);
out:
	fp_ctx_free(f);
	cdc_free(c);
	return r;
}

int main(void)
{
	const char *dir = tu_tmpdir("store-gc-race");
	char *paths[N];
	store *s = NULL;
	bks_err e = {0};
	uint8_t *a = malloc(SZ), *b = malloc(SZ), *fill = malloc(SZ);
	REQUIRE(a && b && fill, "memory");
	tu_fill(11, 0, 0, a, SZ);
	tu_fill(12, 0, 0, b, SZ);
	tu_fill(13, 0, 0, fill, SZ);

	arr *ar = tu_make_array(dir, N, 48, NULL, paths);
	REQUIRE(store_create(ar, NULL, &s, &e) == 0, "store: %s", e.msg);

	/* Round 1: store_put. */
	uint64_t id1, id2;
	store_put_stats ps;
	REQUIRE(store_put(s, a, SZ, &id1) == 0, "put a");
	REQUIRE(store_delete(s, id1) == 0, "delete a");
	REQUIRE(gc_all(s) == 0, "gc");
	store_gc_stats gs;
	store_gc_get_stats(s, &gs);
	printf("round 1: gc freed %llu rows (%llu segments)\n", (unsigned long long)gs.rows_freed,
	       (unsigned long long)gs.segments_freed);
	CHECK(gs.segments_freed > 0, "the collector freed the deleted object's segments");
	store_writer *w;
	REQUIRE(store_put_begin(s, &w) == 0, "begin a again");
	REQUIRE(store_put_write(w, a, SZ) == 0, "write a again");
	REQUIRE(store_put_end_stats(w, &id2, &ps) == 0, "end a again");
	printf("round 1: second put: %llu chunks, %llu new\n", (unsigned long long)ps.chunks,
	       (unsigned long long)ps.chunks_new);
	/* Only the chunks in the data segment still being filled (the collector leaves
	 * it alone) may deduplicate: at most a row's worth. */
	uint64_t per_row = pool_row_bytes(store_pool(s)) / CDC_DEFAULT_MIN;
	CHECK(ps.chunks > 100 && ps.chunks_new + per_row >= ps.chunks,
	      "the chunks in freed rows are stored anew (%llu of %llu new)",
	      (unsigned long long)ps.chunks_new, (unsigned long long)ps.chunks);
	CHECK(tu_store_same(s, id2, a, SZ), "a reads back before the commit");
	CHECK(tu_store_verify_clean(s, 1), "verify before the commit");

	/* Round 2: the source-dedup verbs, in a txg of its own (the collector does not
	 * sweep segments newer than the metadata segment being filled, and the one of
	 * round 1 stays open until a commit). */
	REQUIRE(store_commit(s, &e) == 0, "commit round 1: %s", e.msg);
	CHECK(tu_store_same(s, id2, a, SZ), "a reads back after its commit");
	uint64_t id3, id4, chunks, sent, hits;
	REQUIRE(put_source(s, b, SZ, &id3, &chunks, &sent, &hits) == 0, "source put b");
	CHECK(sent == chunks && hits == 0, "first source put sends everything (%llu of %llu)",
	      (unsigned long long)sent, (unsigned long long)chunks);
	/* Dedup against what is in the memtable and live: every chunk is known. */
	uint64_t id3b;
	REQUIRE(put_source(s, b, SZ, &id3b, &chunks, &sent, &hits) == 0, "source put b twice");
	CHECK(hits == chunks && sent == 0, "a live chunk still deduplicates (%llu of %llu)",
	      (unsigned long long)hits, (unsigned long long)chunks);
	REQUIRE(store_delete(s, id3) == 0 && store_delete(s, id3b) == 0, "delete b");
	REQUIRE(gc_all(s) == 0, "gc 2");
	store_gc_get_stats(s, &gs);
	printf("round 2: gc freed %llu rows (%llu segments)\n", (unsigned long long)gs.rows_freed,
	       (unsigned long long)gs.segments_freed);
	CHECK(gs.segments_freed > 0, "the collector freed the deleted objects' segments");
	REQUIRE(put_source(s, b, SZ, &id4, &chunks, &sent, &hits) == 0, "source put b again");
	printf("round 2: source put after gc: %llu chunks, %llu known, %llu sent\n",
	       (unsigned long long)chunks, (unsigned long long)hits, (unsigned long long)sent);
	CHECK(chunks > 100 && sent + hits == chunks && hits <= per_row,
	      "no freed chunk is reported known (%llu known)", (unsigned long long)hits);
	uint64_t id4b;
	REQUIRE(put_source(s, b, SZ, &id4b, &chunks, &sent, &hits) == 0, "source put b 4");
	CHECK(hits == chunks && sent == 0, "then every chunk is known again (%llu of %llu)",
	      (unsigned long long)hits, (unsigned long long)chunks);
	CHECK(tu_store_same(s, id4, b, SZ), "b reads back before the commit");
	CHECK(tu_store_same(s, id4b, b, SZ), "b (deduplicated copy) reads back before the commit");
	REQUIRE(store_delete(s, id4b) == 0, "delete the copy");
	CHECK(tu_store_verify_clean(s, 2), "verify of both before the commit");

	/* Commit: the freed rows become reusable; fill them with other data. */
	REQUIRE(store_commit(s, &e) == 0, "commit: %s", e.msg);
	uint64_t idf;
	REQUIRE(store_put(s, fill, SZ, &idf) == 0, "put fill");
	REQUIRE(store_commit(s, &e) == 0, "commit 2: %s", e.msg);
	CHECK(tu_store_same(s, id2, a, SZ), "a reads back after the rows were reused");
	CHECK(tu_store_same(s, id4, b, SZ), "b reads back after the rows were reused");
	CHECK(tu_store_same(s, idf, fill, SZ), "fill reads back");
	CHECK(tu_store_verify_clean(s, 3), "verify after the commit");
	/* The index as committed: a third copy deduplicates fully. */
	uint64_t id5;
	REQUIRE(store_put_begin(s, &w) == 0, "begin a 3");
	REQUIRE(store_put_write(w, a, SZ) == 0, "write a 3");
	REQUIRE(store_put_end_stats(w, &id5, &ps) == 0, "end a 3");
	CHECK(ps.chunks_new == 0, "a third put of a dedups (%llu new)",
	      (unsigned long long)ps.chunks_new);
	REQUIRE(store_commit(s, &e) == 0, "commit 3: %s", e.msg);
	store_close(s);

	ar = tu_import_array(paths, N, NULL);
	REQUIRE(ar && store_open(ar, NULL, &s, &e) == 0, "reopen: %s", e.msg);
	CHECK(tu_store_same(s, id2, a, SZ), "a after reopen");
	CHECK(tu_store_same(s, id5, a, SZ), "a (third copy) after reopen");
	CHECK(tu_store_same(s, id4, b, SZ), "b after reopen");
	CHECK(tu_store_same(s, idf, fill, SZ), "fill after reopen");
	CHECK(tu_store_verify_clean(s, 4), "verify after reopen");
	/* And the collector, now that everything is committed, keeps it all. */
	CHECK(store_gc_run(s, 0.5) == 0, "gc after reopen");
	CHECK(tu_store_verify_clean(s, 4), "verify after a last gc");
	CHECK(tu_store_same(s, id4, b, SZ), "b after a last gc");

	/* Round 3: the caches. c is committed (its entries in a run), put again (a run
	 * hit loads its segment tables into the locality cache), read in small pieces
	 * (the decoded-chunk cache, the pool's row cache), then deleted and collected in
	 * one txg, and put again in it: nothing cached may stand in for its freed rows. */
	uint8_t *c = malloc(SZ), *piece = malloc(64 << 10);
	REQUIRE(c && piece, "memory");
	tu_fill(14, 0, 0, c, SZ);
	uint64_t idc1, idc2, idc3, idf2;
	REQUIRE(store_put(s, c, SZ, &idc1) == 0, "put c");
	REQUIRE(store_commit(s, &e) == 0, "commit c: %s", e.msg);
	store_stats st0, st1;
	store_get_stats(s, &st0);
	REQUIRE(store_put_begin(s, &w) == 0 && store_put_write(w, c, SZ) == 0 &&
	        store_put_end_stats(w, &idc2, &ps) == 0, "put c again");
	store_get_stats(s, &st1);
	printf("round 3: second put of c: %llu new of %llu, %llu locality hits\n",
	       (unsigned long long)ps.chunks_new, (unsigned long long)ps.chunks,
	       (unsigned long long)(st1.index_locality_hits - st0.index_locality_hits));
	CHECK(ps.chunks_new == 0 && st1.index_locality_hits > st0.index_locality_hits,
	      "c deduplicates through the locality cache");
	int pieces_ok = 1;
	for (uint64_t off = 1000; off < SZ; off += 97 * 1024) {
		size_t got = 0;
		pieces_ok &= store_read(s, idc1, off, piece, 5000, &got) == 0 && got == 5000 &&
		             !memcmp(piece, c + off, 5000);
	}
	CHECK(pieces_ok, "c reads back in small pieces");
	REQUIRE(store_delete(s, idc1) == 0 && store_delete(s, idc2) == 0, "delete c");
	REQUIRE(gc_all(s) == 0, "gc 3");
	store_get_stats(s, &st0);
	REQUIRE(store_put_begin(s, &w) == 0 && store_put_write(w, c, SZ) == 0 &&
	        store_put_end_stats(w, &idc3, &ps) == 0, "put c a third time");
	store_get_stats(s, &st1);
	printf("round 3: put after gc: %llu new of %llu, %llu locality hits\n",
	       (unsigned long long)ps.chunks_new, (unsigned long long)ps.chunks,
	       (unsigned long long)(st1.index_locality_hits - st0.index_locality_hits));
	CHECK(ps.chunks_new + per_row >= ps.chunks, "c's chunks in freed rows are stored anew "
	      "(%llu of %llu new)", (unsigned long long)ps.chunks_new,
	      (unsigned long long)ps.chunks);
	pieces_ok = 1;
	for (uint64_t off = 1000; off < SZ; off += 97 * 1024) {
		size_t got = 0;
		pieces_ok &= store_read(s, idc3, off, piece, 5000, &got) == 0 && got == 5000 &&
		             !memcmp(piece, c + off, 5000);
	}
	CHECK(pieces_ok, "the new c reads back in small pieces");
	REQUIRE(store_commit(s, &e) == 0, "commit round 3: %s", e.msg);
	tu_fill(15, 0, 0, fill, SZ);
	REQUIRE(store_put(s, fill, SZ, &idf2) == 0, "put fill 2 (reuses the freed rows)");
	REQUIRE(store_commit(s, &e) == 0, "commit: %s", e.msg);
	CHECK(tu_store_same(s, idc3, c, SZ), "c reads back after its old rows were reused");
	CHECK(tu_store_same(s, idf2, fill, SZ), "fill 2 reads back");
	pieces_ok = 1;
	for (uint64_t off = 1000; off < SZ; off += 97 * 1024) {
		size_t got = 0;
		pieces_ok &= store_read(s, idc3, off, piece, 5000, &got) == 0 && got == 5000 &&
		             !memcmp(piece, c + off, 5000);
	}
	CHECK(pieces_ok, "and in small pieces");
	CHECK(tu_store_verify_clean(s, 6), "verify after round 3");
	store_close(s);
	ar = tu_import_array(paths, N, NULL);
	REQUIRE(ar && store_open(ar, NULL, &s, &e) == 0, "reopen 2: %s", e.msg);
	CHECK(tu_store_same(s, idc3, c, SZ), "c after reopen");
	CHECK(tu_store_verify_clean(s, 6), "verify after the last reopen");
	store_close(s);
	free(c);
	free(piece);
	free(a);
	free(b);
	free(fill);
	return tu_finish();
}
