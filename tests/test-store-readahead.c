/* test-store-readahead: reads of a large object in the patterns that start, move,
 * reuse and drop read-ahead streams (dedup/store_read.c), each compared byte for
 * byte with a model kept in memory:
 *   sequential in 1 MiB and in odd pieces, random jumps (with short sequential runs
 *   so that streams start and are then abandoned), backwards from the end, two
 *   readers of two objects interleaved, and a sequential reader whose object is
 *   changed under it between its reads (store_write_at ahead of it, inside the
 *   window it planned, and behind it; store_punch inside the window;
 *   store_truncate shrinking into the window and
 *   growing a hole; a collection that moves the chunks its window points at and a
 *   write that reuses the freed rows; a delete), and a sequential reader of rows one
 *   disk holds silently corrupted (read-ahead reads them straight from the array:
 *   its checksum check must send those chunks to the pool, which reconstructs),
 *   and zero-copy reads (store_read_iov) whose pinned pieces must not change under
 *   a write before they are unpinned.
 *   Read-ahead must never serve bytes of the object's earlier content, nor
 *   unchecked ones. The store's figures show that read-ahead served most of the
 *   bytes (the test would prove nothing otherwise). */
#include <config.h>

#include "tests/testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dedup/store.h"
#include "storage/label.h"

#define N 6
#define SIZE (40u << 20)

/* Backup-like bytes: 64 KiB blocks of random bytes (stored raw), of text (zstd),
 * of zeros, and copies of earlier blocks (extents sharing a chunk). */
static void make_content(uint64_t seed, uint8_t *b, size_t len)
{
	bks_rng r;
	bks_rng_seed(&r, seed);
	for (size_t off = 0; off < len; off += 65536) {
		size_t n = BKS_MIN((size_t)65536, len - off);
		switch (bks_rng_below(&r, 5)) {
		case 0:
		case 1:
			bks_rng_fill(&r, b + off, n);
			break;
		case 2:
			for (size_t i = 0; i < n; i++)
				b[off + i] = (uint8_t)("abcdefgh ijklmno\n"[bks_rng_next(&r) % 17]);
			break;
		case 3:
			memset(b + off, 0, n);
			break;
		default:
			if (off >= (1u << 20))
				memcpy(b + off, b + bks_rng_below(&r, off / 65536) * 65536, n);
			else
				bks_rng_fill(&r, b + off, n);
		}
	}
}

struct model {
	uint64_t id;
	uint8_t *b;
	uint64_t size;
};

static int bad_reads;

/* Read [off, off + len) and compare with the model. */
static void rd(store *s, const struct model *m, uint64_t off, size_t len, const char *what)
{
	static uint8_t *buf;
	static size_t cap;
	if (cap < len) {
		free(buf);
		cap = len;
		buf = malloc(cap);
	}
	size_t got = 0;
	int r = store_read(s, m->id, off, buf, len, &got);
	size_t want = off >= m->size ? 0 : (size_t)BKS_MIN((uint64_t)len, m->size - off);
	if (r != 0 || got != want || memcmp(buf, m->b + off, want)) {
		size_t at = 0;
		while (r == 0 && at < BKS_MIN(got, want) && buf[at] == m->b[off + at])
			at++;
		if (bad_reads++ < 10)
			fprintf(stderr, "  %s: read at %llu +%zu: r=%d got %zu of %zu, first diff at "
			        "+%zu\n", what, (unsigned long long)off, len, r, got, want, at);
	}
}

static int put(store *s, struct model *m)
{
	return store_put(s, m->b, m->size, &m->id);
}

/* store_write_at into object and model. */
static int wr(store *s, struct model *m, uint64_t off, size_t len, uint64_t seed)
{
	uint64_t end = off + len;
	if (end > m->size) {
		m->b = realloc(m->b, end);
		memset(m->b + m->size, 0, end - m->size);
		m->size = end;
	}
	bks_rng r;
	bks_rng_seed(&r, seed);
	bks_rng_fill(&r, m->b + off, len);
	return store_write_at(s, m->id, off, m->b + off, len);
}

static int trunc_to(store *s, struct model *m, uint64_t size)
{
	if (size > m->size) {
		m->b = realloc(m->b, size);
		memset(m->b + m->size, 0, size - m->size);
	}
	m->size = size;
	return store_truncate(s, m->id, size);
}

/* A GET's way of reading: store_read_iov under the caller's lock (the daemon's
 * appl.mu), store_read_wait outside it (decompression there), again after -EAGAIN
 * (a chunk bad in the read-ahead buffer); the pieces gathered into out. *again
 * counts the -EAGAINs. 0, or the error. */
static int iov_read(store *s, pthread_mutex_t *lk, uint64_t id, uint64_t off, size_t len,
                    uint8_t *scratch, uint8_t *out, size_t *got, int *again)
{
	store_iov iov[64];
	store_pins pins = {.n = 0};
	int np = 0, r;
	for (;;) {
		pthread_mutex_lock(lk);
		r = store_read_iov(s, id, off, len, scratch, iov, 64, &np, got, &pins);
		pthread_mutex_unlock(lk);
		if (r < 0)
			return r;
		if ((r = store_read_wait(s, &pins)) != -EAGAIN)
			break;
		(*again)++;
		pthread_mutex_lock(lk);
		store_read_unpin(s, &pins);
		pthread_mutex_unlock(lk);
	}
	size_t at = 0;
	for (int i = 0; i < np; i++) {
		memcpy(out + at, iov[i].p, iov[i].len);
		at += iov[i].len;
	}
	pthread_mutex_lock(lk);
	store_read_unpin(s, &pins);
	pthread_mutex_unlock(lk);
	return at == *got ? r : -EPROTO;
}

/* One of two concurrent readers of one object (restores of one file): the whole
 * object from start, 1 MiB at a time, wrapping round to 0 at its end. */
struct reader {
	store *s;
	pthread_mutex_t *lk;
	const struct model *m;
	uint64_t start;
	int reads, bad, again;
};

static void *reader_main(void *arg)
{
	struct reader *rd = arg;
	uint8_t *scratch = malloc(1u << 20), *out = malloc(1u << 20);
	uint64_t done = 0, off = rd->start;
	while (done < rd->m->size) {
		size_t n = (size_t)BKS_MIN((uint64_t)(1u << 20), rd->m->size - off), got = 0;
		int r = iov_read(rd->s, rd->lk, rd->m->id, off, n, scratch, out, &got, &rd->again);
		if (r != 0 || got != n || memcmp(out, rd->m->b + off, n)) {
			if (rd->bad++ < 5)
				fprintf(stderr, "  concurrent reader from %llu: at %llu r=%d got %zu of %zu\n",
				        (unsigned long long)rd->start, (unsigned long long)off, r, got, n);
			if (r != 0 || got == 0)
				break;
		}
		rd->reads++;
		done += got;
		off += got;
		if (off >= rd->m->size)
			off = 0;
	}
	free(scratch);
	free(out);
	return NULL;
}

int main(void)
{
	const char *dir = tu_tmpdir("store-ra");
	char *paths[N];
	store *s = NULL;
	bks_err e = {0};
	bks_rng rng;
	store_params sp;
	store_stats st0, st;
	int r;

	bks_rng_seed(&rng, 4242);
	arr *a = tu_make_array(dir, N, 400, NULL, paths);
	store_params_default(&sp);
	sp.threads = 4; /* three helpers on any machine: jobs run while the reader reads */
	r = store_create(a, &sp, &s, &e);
	REQUIRE(r == 0, "store create: %s", bks_errmsg(&e, r));

	struct model A = {.size = SIZE}, B = {.size = SIZE / 2};
	A.b = malloc(A.size);
	B.b = malloc(B.size);
	make_content(1, A.b, A.size);
	make_content(2, B.b, B.size);
	REQUIRE(put(s, &A) == 0 && put(s, &B) == 0, "put");
	REQUIRE(store_commit(s, &e) == 0, "commit: %s", e.msg);
	store_get_stats(s, &st0);

	/* 1. Sequential, 1 MiB at a time (a restore), then in odd pieces. */
	for (uint64_t off = 0; off < A.size; off += 1u << 20)
		rd(s, &A, off, 1u << 20, "sequential 1 MiB");
	for (uint64_t off = 0; off < A.size;) {
		size_t n = 1 + (size_t)bks_rng_below(&rng, 300000);
		rd(s, &A, off, n, "sequential odd");
		off += n;
	}
	store_get_stats(s, &st);
	uint64_t ahead = st.read_ahead_bytes - st0.read_ahead_bytes;
	printf("sequential: %llu of %llu bytes from read-ahead, %llu on demand, %llu streams\n",
	       (unsigned long long)ahead, 2ull * A.size,
	       (unsigned long long)(st.read_sync_bytes - st0.read_sync_bytes),
	       (unsigned long long)(st.read_ahead_streams - st0.read_ahead_streams));
	CHECK(ahead >= A.size, "read-ahead served %llu of %llu bytes", (unsigned long long)ahead,
	      2ull * A.size);
	CHECK(bad_reads == 0, "sequential reads: %d wrong", bad_reads);

	/* 2. Random jumps: after each, a short sequential run (a stream starts), then
	 * elsewhere (it is dropped); some jumps land inside the window just planned. */
	int before = bad_reads;
	uint64_t off = 0;
	for (int i = 0; i < 300; i++) {
		int k = (int)bks_rng_below(&rng, 4);
		if (k == 0)
			off = bks_rng_below(&rng, A.size + 100);
		else if (k == 1 && off > (4u << 20))
			off -= bks_rng_below(&rng, 4u << 20); /* back a little */
		else if (k == 2)
			off += bks_rng_below(&rng, 8u << 20); /* ahead, often inside the window */
		else
			off = bks_rng_below(&rng, A.size);
		int run = (int)bks_rng_below(&rng, 4);
		for (int j = 0; j <= run; j++) {
			size_t n = 1 + (size_t)bks_rng_below(&rng, 1u << 20);
			rd(s, &A, off, n, "jumps");
			off += n;
		}
	}
	CHECK(bad_reads == before, "random jumps: %d wrong", bad_reads - before);

	/* 3. Backwards from the end. */
	before = bad_reads;
	for (uint64_t end = A.size; end > 0;) {
		size_t n = (size_t)BKS_MIN(end, 1 + bks_rng_below(&rng, 1u << 20));
		rd(s, &A, end - n, n, "backwards");
		end -= n;
	}
	CHECK(bad_reads == before, "backwards: %d wrong", bad_reads - before);

	/* 4. Two sequential readers of two objects, interleaved (two streams). */
	before = bad_reads;
	for (uint64_t pa = 0, pb = 0; pa < A.size || pb < B.size;) {
		size_t n = 1 + (size_t)bks_rng_below(&rng, 512u << 10);
		if (pa < A.size)
			rd(s, &A, pa, n, "interleaved A");
		pa += n;
		n = 1 + (size_t)bks_rng_below(&rng, 512u << 10);
		if (pb < B.size)
			rd(s, &B, pb, n, "interleaved B");
		pb += n;
	}
	CHECK(bad_reads == before, "two interleaved readers: %d wrong", bad_reads - before);

	/* 5. The object changes under a sequential reader, between its reads. */
	before = bad_reads;
	int changes = 0, step = 0;
	uint64_t seed = 100;
	for (off = 0; off < A.size; step++) {
		size_t n = 256u << 10;
		rd(s, &A, off, n, "changing");
		off += n;
		switch (step % 9) {
		case 1: /* ahead, inside the window planned by the reads so far */
			r = wr(s, &A, off + bks_rng_below(&rng, 6u << 20), 1 + bks_rng_below(&rng, 200000),
			       seed++);
			CHECK(r == 0, "write ahead: %d", r);
			changes++;
			break;
		case 3: /* at the reader's next byte */
			r = wr(s, &A, off, 1 + bks_rng_below(&rng, 70000), seed++);
			CHECK(r == 0, "write at the reader: %d", r);
			changes++;
			break;
		case 5: /* behind it (the kept-behind part of the window) */
			r = wr(s, &A, off - bks_rng_below(&rng, 1u << 20), 4096, seed++);
			CHECK(r == 0, "write behind: %d", r);
			changes++;
			break;
		case 8: /* a hole punched ahead, inside the window */
			if (off + (3u << 20) < A.size) {
				uint64_t po = off + bks_rng_below(&rng, 2u << 20);
				uint64_t pl = 1 + bks_rng_below(&rng, 1u << 20);
				memset(A.b + po, 0, pl);
				r = store_punch(s, A.id, po, pl);
				CHECK(r == 0, "punch: %d", r);
				changes++;
			}
			break;
		case 7: /* shrink into the window, then grow a hole back (near the end:
		         * the rest of the test wants chunks, not zeros) */
			if (A.size > off + (2u << 20) && A.size < off + (8u << 20)) {
				uint64_t keep = A.size;
				r = trunc_to(s, &A, off + bks_rng_below(&rng, 2u << 20));
				CHECK(r == 0, "truncate: %d", r);
				rd(s, &A, off, 1u << 20, "after shrink");
				r = trunc_to(s, &A, keep);
				CHECK(r == 0, "grow: %d", r);
				changes++;
			}
			break;
		}
	}
	CHECK(bad_reads == before, "reads between %d changes: %d wrong", changes,
	      bad_reads - before);
	/* New bytes over the holes the truncates left. */
	for (off = A.size - (8u << 20); off < A.size; off += 1u << 20)
		CHECK(wr(s, &A, off, 1u << 20, seed++) == 0, "rewrite the tail");

	/* 6. A collection under a reader: B is overwritten (its old chunks die, the
	 * segments they share with A are compacted: A's chunks move, A's map still
	 * points at the old places), committed (the rows are free), and new data reuses
	 * the rows, between A's reads; the window planned before must not serve what
	 * the reused rows now hold. */
	before = bad_reads;
	for (off = 0; off < (8u << 20); off += 1u << 20)
		rd(s, &A, off, 1u << 20, "before gc");
	for (uint64_t o2 = 0; o2 < B.size; o2 += 1u << 20)
		CHECK(wr(s, &B, o2, 1u << 20, seed++) == 0, "overwrite B");
	REQUIRE(store_commit(s, &e) == 0, "commit: %s", e.msg);
	store_gc_stats gs;
	r = store_gc_start(s, 0.99);
	CHECK(r == 0, "gc start: %d", r);
	int more = 1;
	while (more > 0) {
		more = store_gc_step(s);
		rd(s, &A, off, 256u << 10, "during gc");
		off += 256u << 10;
		if (off >= A.size)
			off = 0;
	}
	CHECK(more == 0, "gc steps: %d", more);
	REQUIRE(store_commit(s, &e) == 0, "commit: %s", e.msg);
	store_gc_get_stats(s, &gs);
	struct model C = {.size = 16u << 20};
	C.b = malloc(C.size);
	make_content(3, C.b, C.size);
	CHECK(put(s, &C) == 0, "put C (reuses the freed rows)");
	REQUIRE(store_commit(s, &e) == 0, "commit: %s", e.msg);
	for (; off < A.size; off += 1u << 20)
		rd(s, &A, off, 1u << 20, "after gc");
	for (off = 0; off < A.size; off += 1u << 20)
		rd(s, &A, off, 1u << 20, "after gc, again");
	for (off = 0; off < C.size; off += 1u << 20)
		rd(s, &C, off, 1u << 20, "C");
	printf("collection: %llu segments compacted, %llu chunks moved, %llu rows freed\n",
	       (unsigned long long)gs.segments_compacted, (unsigned long long)gs.chunks_moved,
	       (unsigned long long)gs.rows_freed);
	CHECK(gs.chunks_moved > 0, "the collection moved chunks (%llu)",
	      (unsigned long long)gs.chunks_moved);
	CHECK(bad_reads == before, "reads around a collection: %d wrong", bad_reads - before);

	/* 7. Deleted under a reader: the next read fails, the stream is gone. */
	rd(s, &B, 0, 1u << 20, "B");
	rd(s, &B, 1u << 20, 1u << 20, "B");
	CHECK(store_delete(s, B.id) == 0, "delete B");
	size_t got = 1;
	uint8_t small[16];
	CHECK(store_read(s, B.id, 2u << 20, small, sizeof(small), &got) == -ENOENT && got == 0,
	      "read after delete");

	/* 8. After a reopen (cold caches), sequential once more. */
	store_close(s);
	a = tu_import_array(paths, N, NULL);
	REQUIRE(a != NULL, "import");
	r = store_open(a, &sp, &s, &e);
	REQUIRE(r == 0, "store open: %s", bks_errmsg(&e, r));
	before = bad_reads;
	for (off = 0; off < A.size; off += 1u << 20)
		rd(s, &A, off, 1u << 20, "after reopen");
	store_get_stats(s, &st);
	printf("after reopen: %llu bytes from read-ahead, %llu on demand, %llu fallbacks, %llu streams\n",
	       (unsigned long long)st.read_ahead_bytes, (unsigned long long)st.read_sync_bytes,
	       (unsigned long long)st.read_ahead_fallbacks, (unsigned long long)st.read_ahead_streams);
	CHECK(st.read_ahead_bytes >= A.size / 2, "read-ahead after reopen: %llu",
	      (unsigned long long)st.read_ahead_bytes);
	CHECK(bad_reads == before, "after reopen: %d wrong", bad_reads - before);

	/* 8b. Zero-copy (store_read_iov, a GET's way): pieces of at most 3 (so reads end
	 * early and go on), with a write between a read and the unpin: the pinned pieces
	 * keep the bytes they described, the next read sees the write. */
	{
		uint8_t *scratch = malloc(1u << 20), *cat = malloc(1u << 20);
		store_iov iov[3];
		store_pins pins;
		uint64_t zero_copy = 0, total = 0;
		before = bad_reads;
		for (off = 0; off < A.size;) {
			int np = 0;
			size_t g = 0;
			r = store_read_iov(s, A.id, off, 1u << 20, scratch, iov, 3, &np, &g, &pins);
			if (r == 0 && (r = store_read_wait(s, &pins)) == -EAGAIN) {
				store_read_unpin(s, &pins);
				continue; /* (none expected here: read it again) */
			}
			if (r != 0 || g == 0) {
				bad_reads++;
				fprintf(stderr, "  iov read at %llu: r=%d got %zu\n", (unsigned long long)off,
				        r, g);
				break;
			}
			size_t at = 0;
			for (int i = 0; i < np; i++) {
				memcpy(cat + at, iov[i].p, iov[i].len);
				if ((const uint8_t *)iov[i].p < scratch ||
				    (const uint8_t *)iov[i].p >= scratch + (1u << 20))
					zero_copy += iov[i].len;
				at += iov[i].len;
			}
			if (at != g || memcmp(cat, A.b + off, g)) {
				if (bad_reads++ < 10)
					fprintf(stderr, "  iov read at %llu: pieces %zu of %zu bytes differ\n",
					        (unsigned long long)off, at, g);
			}
			total += g;
			if ((off / g) % 7 == 3 && off + g + 4096 < A.size) {
				/* Changed before the unpin: the pieces still hold what they held. */
				uint8_t *keep = malloc(g);
				memcpy(keep, A.b + off, g);
				CHECK(wr(s, &A, off, (size_t)BKS_MIN((uint64_t)g + 4096, A.size - off),
				         seed++) == 0, "write under pins");
				/* ... and another reader takes the jobs the write freed. */
				for (uint64_t oc = 0; oc < (6u << 20); oc += 1u << 20)
					rd(s, &C, oc, 1u << 20, "C under pins");
				at = 0;
				for (int i = 0; i < np; i++) {
					memcpy(cat + at, iov[i].p, iov[i].len);
					at += iov[i].len;
				}
				CHECK(!memcmp(cat, keep, g), "pinned pieces changed under a write at %llu",
				      (unsigned long long)off);
				free(keep);
			}
			store_read_unpin(s, &pins);
			off += g;
		}
		printf("zero-copy: %llu of %llu bytes sent from read-ahead buffers\n",
		       (unsigned long long)zero_copy, (unsigned long long)total);
		CHECK(zero_copy >= total / 2, "zero-copy pieces: %llu of %llu bytes",
		      (unsigned long long)zero_copy, (unsigned long long)total);
		for (off = 0; off < A.size; off += 1u << 20)
			rd(s, &A, off, 1u << 20, "after zero-copy writes");
		CHECK(bad_reads == before, "zero-copy: %d wrong", bad_reads - before);
		free(scratch);
		free(cat);
	}

	/* 8c. Two readers of one object, interleaved read by read (two restores of one
	 * file): each must keep its own stream. Before, the object had one stream, and
	 * each read, continuing the other reader's, reset it and planned anew. */
	{
		store_stats s0, s1;
		store_get_stats(s, &s0);
		before = bad_reads;
		int nreads = 0;
		for (uint64_t px = 0, py = A.size / 2; px < A.size / 2; px += 1u << 20, py += 1u << 20) {
			rd(s, &A, px, 1u << 20, "reader x");
			rd(s, &A, py, 1u << 20, "reader y");
			nreads += 2;
		}
		store_get_stats(s, &s1);
		uint64_t streams = s1.read_ahead_streams - s0.read_ahead_streams;
		uint64_t ahead2 = s1.read_ahead_bytes - s0.read_ahead_bytes;
		printf("two readers of one object: %d reads, %llu streams started, %llu of %llu bytes "
		       "from read-ahead\n", nreads, (unsigned long long)streams,
		       (unsigned long long)ahead2, (unsigned long long)nreads << 20);
		CHECK(bad_reads == before, "two readers of one object: %d wrong", bad_reads - before);
		CHECK(streams <= 4, "two readers of one object started %llu streams in %d reads",
		      (unsigned long long)streams, nreads);
		CHECK(ahead2 >= ((uint64_t)nreads << 20) * 3 / 4,
		      "two readers of one object: %llu bytes from read-ahead",
		      (unsigned long long)ahead2);

		/* The same on two threads, a GET's way (decompression outside the lock),
		 * from the start and from the middle: bytes identical, both finish. */
		pthread_mutex_t lk = PTHREAD_MUTEX_INITIALIZER;
		struct reader r1 = {.s = s, .lk = &lk, .m = &A, .start = 0};
		struct reader r2 = {.s = s, .lk = &lk, .m = &A, .start = A.size / 2};
		pthread_t t1, t2;
		store_get_stats(s, &s0);
		REQUIRE(pthread_create(&t1, NULL, reader_main, &r1) == 0 &&
		        pthread_create(&t2, NULL, reader_main, &r2) == 0, "threads");
		pthread_join(t1, NULL);
		pthread_join(t2, NULL);
		store_get_stats(s, &s1);
		streams = s1.read_ahead_streams - s0.read_ahead_streams;
		ahead2 = s1.read_ahead_bytes - s0.read_ahead_bytes;
		printf("two threads reading one object: %d + %d reads, %llu streams, %llu of %llu bytes "
		       "from read-ahead\n", r1.reads, r2.reads, (unsigned long long)streams,
		       (unsigned long long)ahead2, 2ull * A.size);
		CHECK(r1.bad == 0 && r2.bad == 0, "concurrent readers: %d + %d wrong", r1.bad, r2.bad);
		CHECK(r1.reads >= (int)(A.size >> 20) && r2.reads >= (int)(A.size >> 20),
		      "concurrent readers finished: %d and %d reads", r1.reads, r2.reads);
		CHECK(streams <= 8, "concurrent readers started %llu streams",
		      (unsigned long long)streams);
		CHECK(ahead2 >= A.size * 3 / 2, "concurrent readers: %llu bytes from read-ahead",
		      (unsigned long long)ahead2);
	}
	REQUIRE(store_commit(s, &e) == 0, "commit: %s", e.msg);
	store_close(s);

	/* 9. Silent corruption: disk 0's strips of the first 2048 rows (every row
	 * written so far) overwritten with noise while the store is closed; each row
	 * keeps the other five strips, from which the array reconstructs. */
	int fd = open(paths[0], O_WRONLY);
	REQUIRE(fd >= 0, "open %s", paths[0]);
	uint8_t *noise = malloc(128u << 20);
	bks_rng_fill(&rng, noise, 128u << 20);
	CHECK(pwrite(fd, noise, 128u << 20, (off_t)ARR_DATA_OFF) == 128 << 20, "corrupt disk 0");
	fsync(fd);
	close(fd);
	free(noise);
	a = tu_import_array(paths, N, NULL);
	REQUIRE(a != NULL, "import");
	r = store_open(a, &sp, &s, &e);
	REQUIRE(r == 0, "store open: %s", bks_errmsg(&e, r));
	before = bad_reads;
	for (off = 0; off < A.size; off += 1u << 20)
		rd(s, &A, off, 1u << 20, "corrupt disk");
	store_get_stats(s, &st);
	printf("one disk corrupt: %llu bytes from read-ahead, %llu chunks read again through "
	       "the pool\n", (unsigned long long)st.read_ahead_bytes,
	       (unsigned long long)st.read_ahead_fallbacks);
	CHECK(st.read_ahead_fallbacks > 0, "the corrupt chunks went to the pool (%llu)",
	      (unsigned long long)st.read_ahead_fallbacks);
	CHECK(bad_reads == before, "with a corrupt disk: %d wrong", bad_reads - before);
	/* The same a GET's way: the pieces of the corrupt chunks fail their check after
	 * the lock is dropped (-EAGAIN) and are read again, through the pool. (Disk 0
	 * corrupted again: the reads above repaired it.) */
	store_close(s);
	fd = open(paths[0], O_WRONLY);
	REQUIRE(fd >= 0, "open %s", paths[0]);
	noise = malloc(128u << 20);
	bks_rng_fill(&rng, noise, 128u << 20);
	CHECK(pwrite(fd, noise, 128u << 20, (off_t)ARR_DATA_OFF) == 128 << 20, "corrupt disk 0");
	fsync(fd);
	close(fd);
	free(noise);
	a = tu_import_array(paths, N, NULL);
	REQUIRE(a != NULL, "import");
	r = store_open(a, &sp, &s, &e);
	REQUIRE(r == 0, "store open: %s", bks_errmsg(&e, r));
	{
		pthread_mutex_t lk = PTHREAD_MUTEX_INITIALIZER;
		uint8_t *scratch = malloc(1u << 20), *out = malloc(1u << 20);
		int again = 0, wrong = 0;
		for (off = 0; off < A.size; off += 1u << 20) {
			size_t n = (size_t)BKS_MIN((uint64_t)(1u << 20), A.size - off), g = 0;
			r = iov_read(s, &lk, A.id, off, n, scratch, out, &g, &again);
			if (r != 0 || g != n || memcmp(out, A.b + off, n))
				wrong++;
		}
		printf("one disk corrupt, zero-copy: %d reads again after a bad chunk, %d wrong\n",
		       again, wrong);
		CHECK(wrong == 0, "zero-copy with a corrupt disk: %d wrong", wrong);
		CHECK(again > 0, "zero-copy met the corrupt chunks (%d)", again);
		free(scratch);
		free(out);
	}
	store_close(s);
	free(A.b);
	free(B.b);
	free(C.b);
	return tu_finish();
}
