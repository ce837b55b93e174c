/* test-fpidx-prefetch: the index's prefetch (dedup/fpidx.h, "prefetch"), white-box.
 * The daemon's PUTs read the entry blocks and segment tables a round's lookups need
 * without the appliance lock, then install them under it; anything may happen to the
 * store in between. Object A (8 MiB, random: ~30 rows) is put and committed, so its
 * fingerprints are only in an index run; every step opens the store again (empty
 * caches) and looks A's fingerprints up in batches of 64, as the daemon's rounds do.
 *  1. Without prefetch: every lookup finds its chunk (the reference places); the
 *     lookups read blocks and tables under the lock (fpidx block_reads > 0).
 *  2. With a prefetch before each batch: the same answers, and no block or table is
 *     read by a lookup any more (block_reads 0); the prefetch read them.
 *  3. The index changes between plan/read and install (a commit that writes a run;
 *     a compaction that merges runs; fpidx_relocate moving every entry block, as the
 *     collector's metadata compaction does): the prefetch is dropped whole
 *     (pf_dropped), the lookups read as before and answer the same places.
 *  4. A collector step frees the batch's rows between read and install: nothing of
 *     theirs is installed (pf_tables 0), and no lookup answers a pointer into them.
 *     The real collector (A deleted, a whole collection) likewise.
 *  5. A row overwritten between plan and read (a row freed and reused): its table
 *     fails its check (pf_rejected), is not installed, and the lookups still answer.
 *  6. Really concurrent: a thread reads (step 2) while this one, "holding the lock",
 *     puts new data, commits and collects (the pool's writer writing rows the reader
 *     may be reading); 12 rounds; every lookup of A afterwards answers its place.
 */
#include <config.h>

#include "tests/testutil.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "dedup/chunker.h"
#include "dedup/fp.h"
#include "dedup/store.h"
#include "dedup/store_int.h" /* s->idx, store_pool: white-box */

#define N 6
#define LEN (8u << 20)
#define BATCH 64

struct fpx {
	uint8_t fp[FP_LEN];
};

typedef struct fpidx_read_arg {
	fpidx_pf *pf;
	int reads;
} fpidx_read_arg;

static size_t fingerprints(store *s, const uint8_t *buf, size_t len, struct fpx **out)
{
	cdc_params cp;
	cdc *c;
	fp_ctx *f;
	size_t n = 0, pos = 0;
	struct fpx *v = calloc(len / 1024 + 16, sizeof(*v));
	store_cdc_params(s, &cp);
	if (!v || cdc_new(&cp, &c) < 0 || fp_ctx_new(&f) < 0)
		abort();
	while (pos < len) {
		int cut;
		size_t k = cdc_next(c, buf + pos, len - pos, &cut);
		if (fp_compute(f, buf + pos, k, v[n].fp) < 0)
			abort();
		pos += k;
		n++;
	}
	cdc_free(c);
	fp_ctx_free(f);
	*out = v;
	return n;
}

static void idx_stats(store *s, fpidx_stats *st)
{
	fpidx_get_stats(s->idx, st);
}

/* Plan, read, install one batch. */
static int prefetch(store *s, fpidx_pf *pf, const struct fpx *v, size_t n)
{
	fpidx_pf_begin(s->idx, pf);
	for (size_t i = 0; i < n; i++)
		if (fpidx_pf_want(s->idx, pf, v[i].fp) < 0)
			return -ENOMEM;
	fpidx_pf_read(pf);
	return fpidx_pf_install(s->idx, pf);
}

/* Look v[0..n) up; counts answers equal to ref (or, ref NULL, fills locs) and
 * answers at all. */
static void lookups(store *s, const struct fpx *v, size_t n, seg_ptr *ref, size_t *same,
                    size_t *found)
{
	for (size_t i = 0; i < n; i++) {
		seg_ptr p;
		int r = fpidx_lookup(s->idx, v[i].fp, &p);
		if (r != 1)
			continue;
		(*found)++;
		if (ref && ref[i].seg_id == p.seg_id && ref[i].off == p.off && ref[i].row == p.row)
			(*same)++;
	}
}

static int every_block(void *ctx, const seg_ptr *p)
{
	(void)ctx;
	(void)p;
	return 1;
}

static void *reader_main(void *arg)
{
	fpidx_read_arg *ra = arg;
	ra->reads = fpidx_pf_read(ra->pf);
	return NULL;
}

static int same_seg(const seg_ptr *a, uint64_t seg_id)
{
	return a->seg_id == seg_id;
}

int main(void)
{
	const char *dir = tu_tmpdir("fpidx-prefetch");
	char *paths[N];
	store *s = NULL;
	bks_err e = {0};
	fpidx_stats a0, a1;
	fpidx_pf *pf;
	uint64_t idA, idB;
	int r;

	arr *a = tu_make_array(dir, N, 128, NULL, paths);
	REQUIRE(a, "array");
	r = store_create(a, NULL, &s, &e);
	REQUIRE(r == 0, "store create: %s", bks_errmsg(&e, r));
	uint8_t *buf = malloc(LEN);
	REQUIRE(buf, "memory");
	tu_fill(11, 0, 0, buf, LEN);
	struct fpx *v;
	size_t n = fingerprints(s, buf, LEN, &v);
	REQUIRE(store_put(s, buf, LEN, &idA) == 0, "put A");
	REQUIRE(store_commit(s, &e) == 0, "commit");
	store_close(s);
	REQUIRE(fpidx_pf_new(&pf) == 0, "pf");
	seg_ptr *ref = calloc(n, sizeof(*ref));
	REQUIRE(ref, "memory");

	/* 1. no prefetch: the reference answers, and the reads under the lock */
	REQUIRE((s = tu_store_reopen(paths, N, NULL)), "reopen 1");
	idx_stats(s, &a0);
	size_t found = 0, same = 0, segs = 0;
	for (size_t i = 0; i < n; i++) {
		if (fpidx_lookup(s->idx, v[i].fp, &ref[i]) == 1)
			found++;
		if (i == 0 || !same_seg(&ref[i], ref[i - 1].seg_id))
			segs++;
	}
	idx_stats(s, &a1);
	uint64_t reads0 = a1.block_reads - a0.block_reads;
	CHECK(found == n, "without prefetch: %zu of %zu chunks found", found, n);
	CHECK(reads0 >= segs, "without prefetch: %llu blocks and tables read under the lock "
	      "(%zu segments)", (unsigned long long)reads0, segs);
	store_close(s);

	/* 2. a prefetch before each batch */
	REQUIRE((s = tu_store_reopen(paths, N, NULL)), "reopen 2");
	idx_stats(s, &a0);
	uint64_t under = 0;
	found = same = 0;
	for (size_t i = 0; i < n; i += BATCH) {
		size_t k = BKS_MIN((size_t)BATCH, n - i);
		fpidx_stats b0, b1;
		r = prefetch(s, pf, v + i, k);
		CHECK(r >= 0, "prefetch: %d", r);
		idx_stats(s, &b0);
		lookups(s, v + i, k, ref + i, &same, &found);
		idx_stats(s, &b1);
		under += b1.block_reads - b0.block_reads;
	}
	idx_stats(s, &a1);
	CHECK(found == n && same == n, "with prefetch: %zu found, %zu at the same place, of %zu",
	      found, same, n);
	CHECK(under == 0, "with prefetch: %llu reads under the lock (without: %llu)",
	      (unsigned long long)under, (unsigned long long)reads0);
	CHECK(a1.pf_tables - a0.pf_tables >= segs - 1 && a1.pf_reads - a0.pf_reads >= segs,
	      "the prefetch read %llu items and installed %llu tables, %llu blocks (%zu segments)",
	      (unsigned long long)(a1.pf_reads - a0.pf_reads),
	      (unsigned long long)(a1.pf_tables - a0.pf_tables),
	      (unsigned long long)(a1.pf_blocks - a0.pf_blocks), segs);
	CHECK(a1.pf_dropped == a0.pf_dropped && a1.pf_rejected == a0.pf_rejected,
	      "nothing dropped or rejected on a quiet store");
	store_close(s);

	/* 3. the index changes between read and install: a commit that writes a run,
	 * then a compaction that merges the runs */
	for (int how = 0; how < 3; how++) {
		static const char *const what[] = {"a commit", "a merge", "a relocation"};
		REQUIRE((s = tu_store_reopen(paths, N, NULL)), "reopen 3");
		uint8_t more[1 << 20];
		tu_fill(21 + how, 0, 0, more, sizeof(more));
		fpidx_pf_begin(s->idx, pf);
		for (size_t i = 0; i < BATCH; i++)
			fpidx_pf_want(s->idx, pf, v[i].fp);
		fpidx_pf_read(pf);
		if (how == 0) {
			REQUIRE(store_put(s, more, sizeof(more), &idB) == 0, "put B");
			REQUIRE(store_commit(s, &e) == 0, "commit B");
		} else if (how == 1) {
			REQUIRE(fpidx_compact(s->idx) == 0, "compact");
		} else {
			uint64_t moved = 0, bytes = 0;
			REQUIRE(fpidx_relocate(s->idx, every_block, NULL, &moved, &bytes) == 0 &&
			        moved > 0, "relocate: %llu blocks", (unsigned long long)moved);
		}
		idx_stats(s, &a0);
		r = fpidx_pf_install(s->idx, pf);
		idx_stats(s, &a1);
		CHECK(r == 0 && a1.pf_dropped == a0.pf_dropped + 1 && a1.pf_tables == a0.pf_tables,
		      "%s in between: install %d, dropped +%llu", what[how], r,
		      (unsigned long long)(a1.pf_dropped - a0.pf_dropped));
		found = same = 0;
		lookups(s, v, BATCH, ref, &same, &found);
		idx_stats(s, &a0);
		CHECK(found == BATCH && same == BATCH && a0.block_reads > a1.block_reads,
		      "%s in between: %zu found, %zu same place, of %d; the lookups read %llu",
		      what[how], found, same, BATCH,
		      (unsigned long long)(a0.block_reads - a1.block_reads));
		if (how >= 1)
			REQUIRE(store_commit(s, &e) == 0, "commit the %s", what[how]);
		store_close(s);
	}

	/* 4. a collector step frees the batch's rows between read and install */
	REQUIRE((s = tu_store_reopen(paths, N, NULL)), "reopen 4");
	{
		pool *pl = store_pool(s);
		fpidx_pf_begin(s->idx, pf);
		for (size_t i = 0; i < BATCH; i++)
			fpidx_pf_want(s->idx, pf, v[i].fp);
		fpidx_pf_read(pf);
		for (size_t i = 0; i < BATCH; i++)
			pool_free_row(pl, ref[i].row);
		idx_stats(s, &a0);
		fpidx_pf_install(s->idx, pf);
		idx_stats(s, &a1);
		CHECK(a1.pf_tables == a0.pf_tables && a1.pf_dropped == a0.pf_dropped,
		      "rows freed in between: %llu tables installed (want 0), not dropped",
		      (unsigned long long)(a1.pf_tables - a0.pf_tables));
		found = same = 0;
		lookups(s, v, BATCH, NULL, &same, &found);
		CHECK(found == 0, "rows freed in between: %zu lookups answered a freed row", found);
	}
	store_close(s); /* not committed: the rows are A's again */

	REQUIRE((s = tu_store_reopen(paths, N, NULL)), "reopen 4b");
	{
		fpidx_pf_begin(s->idx, pf);
		for (size_t i = 0; i < BATCH; i++)
			fpidx_pf_want(s->idx, pf, v[i].fp);
		fpidx_pf_read(pf);
		REQUIRE(store_delete(s, idA) == 0, "delete A");
		r = store_gc_start(s, 0.5);
		if (r == 0)
			while ((r = store_gc_step(s)) > 0)
				;
		REQUIRE(r == 0, "collection: %d", r);
		fpidx_pf_install(s->idx, pf);
		found = same = 0;
		lookups(s, v, n, NULL, &same, &found);
		CHECK(found == 0, "A collected in between: %zu of %zu lookups answered", found, n);
	}
	store_close(s); /* not committed: A is back */

	/* 5. a row overwritten between plan and read (freed and reused meanwhile) */
	REQUIRE((s = tu_store_reopen(paths, N, NULL)), "reopen 5");
	{
		arr *ar = pool_array(store_pool(s));
		uint64_t row = ref[0].row;
		size_t rb = pool_row_bytes(store_pool(s));
		uint8_t *junk = bks_alloc_aligned(DISK_ALIGN, rb);
		uint8_t *keep = bks_alloc_aligned(DISK_ALIGN, rb);
		REQUIRE(junk && keep, "memory");
		REQUIRE(arr_read(ar, row, 0, keep, rb) == 0, "row %llu", (unsigned long long)row);
		tu_fill(33, 0, 0, junk, rb);
		fpidx_pf_begin(s->idx, pf);
		for (size_t i = 0; i < BATCH; i++)
			fpidx_pf_want(s->idx, pf, v[i].fp);
		REQUIRE(arr_write_rows(ar, row, 1, junk, &e) == 0, "overwrite row %llu",
		        (unsigned long long)row);
		fpidx_pf_read(pf);
		idx_stats(s, &a0);
		fpidx_pf_install(s->idx, pf);
		idx_stats(s, &a1);
		CHECK(a1.pf_rejected > a0.pf_rejected, "overwritten row: %llu items rejected",
		      (unsigned long long)(a1.pf_rejected - a0.pf_rejected));
		found = same = 0;
		size_t other = 0, other_same = 0, other_found = 0;
		for (size_t i = 0; i < BATCH; i++) {
			seg_ptr p;
			int f = fpidx_lookup(s->idx, v[i].fp, &p);
			if (ref[i].row == row) {
				/* The index still names the row (it cannot know): its own entry,
				 * never a table entry from the junk. */
				found += f == 1;
				same += f == 1 && p.seg_id == ref[i].seg_id && p.off == ref[i].off;
			} else {
				other++;
				other_found += f == 1;
				other_same += f == 1 && p.seg_id == ref[i].seg_id && p.off == ref[i].off;
			}
		}
		CHECK(found == same, "overwritten row: %zu answers, %zu the index's own", found, same);
		CHECK(other_found == other && other_same == other,
		      "overwritten row: the other %zu chunks: %zu found, %zu same place", other,
		      other_found, other_same);
		/* The row holds its segment again (the steps after this read A back). */
		REQUIRE(arr_write_rows(ar, row, 1, keep, &e) == 0, "restore row");
		free(junk);
		free(keep);
	}
	store_close(s);

	/* 6. a reader thread while the store changes */
	REQUIRE((s = tu_store_reopen(paths, N, NULL)), "reopen 6");
	{
		uint8_t *more = malloc(2u << 20);
		REQUIRE(more, "memory");
		size_t rounds_ok = 0, answered = 0, at_ref = 0;
		uint64_t ids[12];
		for (int round = 0; round < 12; round++) {
			size_t i0 = (size_t)round * BATCH % n, k = BKS_MIN((size_t)BATCH, n - i0);
			fpidx_read_arg ra = {.pf = pf, .reads = 0};
			pthread_t th;
			fpidx_pf_begin(s->idx, pf);
			for (size_t i = 0; i < k; i++)
				fpidx_pf_want(s->idx, pf, v[i0 + i].fp);
			REQUIRE(pthread_create(&th, NULL, reader_main, &ra) == 0, "thread");
			tu_fill(100 + (uint64_t)round, 0, 0, more, 2u << 20);
			int rr = store_put(s, more, 2u << 20, &ids[round]);
			if (rr == 0 && round % 3 == 1)
				rr = store_commit(s, &e);
			if (rr == 0 && round % 4 == 3) {
				rr = store_delete(s, ids[round - 1]);
				if (rr == 0 && (rr = store_gc_start(s, 0.5)) == 0)
					while ((rr = store_gc_step(s)) > 0)
						;
			}
			pthread_join(th, NULL);
			CHECK(rr == 0, "round %d: the store's work: %d", round, rr);
			fpidx_pf_install(s->idx, pf);
			size_t f = 0, sm = 0;
			lookups(s, v + i0, k, ref + i0, &sm, &f);
			answered += f;
			at_ref += sm;
			rounds_ok += f == k;
		}
		CHECK(rounds_ok == 12, "concurrent: %zu of 12 rounds found every chunk (%zu answers, "
		      "%zu at the place A's own lookups gave)", rounds_ok, answered, at_ref);
		found = same = 0;
		lookups(s, v, n, ref, &same, &found);
		CHECK(found == n, "concurrent: afterwards %zu of %zu of A found", found, n);
		CHECK(tu_store_same(s, idA, buf, LEN), "A reads back");
		free(more);
	}
	store_close(s);

	fpidx_pf_free(pf);
	free(ref);
	free(v);
	free(buf);
	return tu_finish();
}
