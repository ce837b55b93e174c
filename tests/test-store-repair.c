/* test-store-repair: a chunk damaged beyond what RAID-6 repairs, stored again from a
 * good copy (store_repair_chunk, what a replication twin does with a chunk its source
 * sends back; daemon/repl_repair.c). Two objects share the chunk (dedup). The chunk's
 * bytes are flipped on three strips of its row (data, P, Q): reads of both objects
 * fail and verify names the chunk. Bytes that do not hash to the fingerprint are
 * refused. A repair that is not committed (the store closed: a crash) leaves the
 * damaged copy as it was, both objects readable to the same point and no reference
 * to anything missing; repaired and committed, both objects read back right (their
 * maps still point at the damaged copy: the read asks the index for the other one),
 * verify is clean, and a second repair stores nothing. The collector, compacting the
 * damaged row, drops the damaged copy and keeps the good one; everything still reads
 * right after it and after a reopen. */
#include <config.h>

#include "tests/testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dedup/pool.h"
#include "dedup/segment.h"
#include "dedup/store.h"
#include "dedup/store_int.h" /* store_pool: the array under the store */
#include "dedup/store_repl.h"
#include "raid/raid.h"
#include "storage/label.h"

#define N 6
#define STRIP (64u << 10)
#define LEN (2u << 20)

/* The disk files of the array's member slots (the array knows which is which). */
static void slot_paths(store *s, char slots[N][256])
{
	arr_status *as = malloc(sizeof(*as));
	if (!as)
		abort();
	arr_get_status(pool_array(store_pool(s)), as);
	for (int j = 0; j < as->ndisks; j++)
		if (as->disks[j].slot >= 0 && as->disks[j].slot < N)
			snprintf(slots[as->disks[j].slot], 256, "%s", as->disks[j].path);
	free(as);
}

/* Flip the chunk's bytes (in its first strip) on its data strip and on P and Q at
 * the same offsets. */
static void break_chunk(char slots[N][256], const seg_ptr *p)
{
	int st = (int)(p->off / STRIP);
	uint32_t in = p->off % STRIP, len = BKS_MIN(p->slen, STRIP - in);
	int strips[3] = {st, N - 2, N - 1};
	uint8_t b[STRIP];
	for (int i = 0; i < 3; i++) {
		int fd = open(slots[raid_strip_disk(N, p->row, strips[i])], O_RDWR);
		off_t at = (off_t)(ARR_DATA_OFF + p->row * STRIP + in);
		if (fd < 0 || pread(fd, b, len, at) != (ssize_t)len)
			abort();
		/* A different mask on each strip: the same one on a data strip and on P
		 * keeps P consistent, and then a pair reconstruction "finds" the chunk
		 * right by making another data strip wrong (see chunkbreak.c). */
		for (uint32_t k = 0; k < len; k++)
			b[k] ^= (uint8_t)(1 + (k * 131 + (uint32_t)i * 7919) % 255);
		if (pwrite(fd, b, len, at) != (ssize_t)len || fsync(fd) < 0)
			abort();
		close(fd);
	}
}

static store *reopen(char **paths)
{
	store *s = tu_store_reopen(paths, N, NULL);
	if (!s)
		exit(tu_finish());
	return s;
}

static int reads_fail(store *s, uint64_t id)
{
	uint8_t *b = malloc(LEN);
	size_t got = 0;
	int r = store_read(s, id, 0, b, LEN, &got);
	free(b);
	return r == -EIO;
}

int main(void)
{
	const char *dir = tu_tmpdir("store-repair");
	char *paths[N];
	store *s = NULL;
	bks_err e = {0};
	store_verify_report vr;
	uint64_t ida = 0, idb = 0;
	arr *a = tu_make_array(dir, N, 64, NULL, paths);
	REQUIRE(store_create(a, NULL, &s, &e) == 0, "create: %s", e.msg);
	/* Two objects with the same bytes: every chunk referenced by both maps. */
	REQUIRE(tu_store_put_seed(s, 7, LEN, &ida) == 0 && tu_store_put_seed(s, 7, LEN, &idb) == 0,
	        "put two objects");
	REQUIRE(store_commit(s, &e) == 0, "commit: %s", e.msg);
	store_mapext first;
	REQUIRE(tu_first_chunk(s, ida, &first), "the first chunk of object %llu", (unsigned long long)ida);
	/* The good stored bytes, as a replication source would send them. */
	uint8_t *good = malloc(STORE_STORED_MAX);
	uint32_t slen = 0;
	int codec = 0;
	REQUIRE(store_extent_stored(s, &first, good, STORE_STORED_MAX, &slen, &codec) == 0,
	        "stored bytes of the chunk");
	char slots[N][256];
	slot_paths(s, slots);
	store_close(s);
	break_chunk(slots, &first.where);

	s = reopen(paths);
	CHECK(reads_fail(s, ida) && reads_fail(s, idb), "both objects fail to read (-EIO)");
	CHECK(store_verify(s, &vr) == 0 && vr.chunks_bad == 2 && vr.objects_damaged == 2 &&
	      vr.nbad == 1 && !memcmp(vr.bad[0].fp, first.fp, 32) && vr.bad[0].len == first.len &&
	      vr.bad[0].id == ida,
	      "verify: %llu bad chunk reads, %u distinct (the damaged one), first in object %llu",
	      (unsigned long long)vr.chunks_bad, vr.nbad, (unsigned long long)vr.bad[0].id);
	/* Bytes that are not the chunk's: refused, nothing kept. */
	store_stats st0, st1;
	store_get_stats(s, &st0);
	good[slen / 2] ^= 1;
	CHECK(store_repair_chunk(s, first.fp, good, slen, (uint32_t)first.len, codec) < 0,
	      "wrong bytes refused");
	good[slen / 2] ^= 1;
	CHECK(store_repair_chunk(s, first.fp, good, slen, (uint32_t)first.len + 1, codec) < 0,
	      "wrong length refused");
	store_get_stats(s, &st1);
	CHECK(st1.unique_chunks == st0.unique_chunks && st1.stored_bytes == st0.stored_bytes,
	      "nothing stored for them");
	/* Repaired, not committed: reads are right now; a crash (close) forgets it. */
	CHECK(store_repair_chunk(s, first.fp, good, slen, (uint32_t)first.len, codec) == 1,
	      "repair stores a fresh copy");
	CHECK(tu_store_same_seed(s, ida, 7, LEN) && tu_store_same_seed(s, idb, 7, LEN),
	      "both objects read right before the commit");
	store_close(s);
	s = reopen(paths);
	CHECK(reads_fail(s, ida) && reads_fail(s, idb),
	      "after a crash before the commit: the damaged copy as it was");
	CHECK(store_verify(s, &vr) == 0 && vr.chunks_bad == 2 && vr.nbad == 1,
	      "verify finds it again (and nothing else)");
	/* Repaired and committed. */
	CHECK(store_repair_chunk(s, first.fp, good, slen, (uint32_t)first.len, codec) == 1,
	      "repair again");
	CHECK(store_commit(s, &e) == 0, "commit: %s", e.msg);
	CHECK(store_repair_chunk(s, first.fp, good, slen, (uint32_t)first.len, codec) == 0,
	      "a second repair stores nothing (a good copy is there)");
	store_close(s);
	s = reopen(paths);
	CHECK(tu_store_same_seed(s, ida, 7, LEN) && tu_store_same_seed(s, idb, 7, LEN),
	      "after a reopen both objects read right");
	CHECK(tu_store_verify_clean(s, 2), "verify clean");
	uint8_t *sb = malloc(STORE_STORED_MAX);
	uint32_t sl2 = 0;
	int c2 = 0;
	CHECK(store_chunk_stored(s, first.fp, (uint32_t)first.len, sb, STORE_STORED_MAX, &sl2, &c2) == 0 &&
	      sl2 == slen && !memcmp(sb, good, slen),
	      "store_chunk_stored gives the good stored bytes (what a source sends)");
	/* The collector compacts the damaged row (everything below 100%% live): it drops
	 * the damaged copy, keeps the good one, and the maps follow the index. */
	CHECK(store_gc_run(s, 1.01) == 0, "gc");
	store_gc_stats gs;
	store_gc_get_stats(s, &gs);
	printf("gc: %llu segments compacted, %llu rows freed\n",
	       (unsigned long long)gs.segments_compacted, (unsigned long long)gs.rows_freed);
	CHECK(gs.segments_compacted + gs.segments_freed >= 1, "the collector went through rows");
	CHECK(tu_store_same_seed(s, ida, 7, LEN) && tu_store_same_seed(s, idb, 7, LEN),
	      "both objects read right after the collection");
	store_close(s);
	s = reopen(paths);
	CHECK(tu_store_same_seed(s, ida, 7, LEN) && tu_store_same_seed(s, idb, 7, LEN),
	      "and after a reopen");
	CHECK(tu_store_verify_clean(s, 2), "verify clean after the collection");
	CHECK(store_verify(s, &vr) == 0 && vr.repaired == 0, "no strip needed the array's repair");
	store_close(s);
	free(good);
	free(sb);
	tu_cleanup();
	return tu_finish();
}
