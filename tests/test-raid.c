/* tests/test-raid.c: the RAID-6 codec against an independent GF(2^8) model,
 * exhaustive one- and two-strip recovery, check/locate, geometry, bad arguments.
 */
#include <config.h>

#include "common/bks.h"
#include "raid/raid.h"
#include "tests/testutil.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The reference field: shift-and-xor, polynomial x^8+x^4+x^3+x^2+1 (0x11d),
 * written without looking at ISA-L so the two can disagree. */
static uint8_t ref_mul(uint8_t a, uint8_t b)
{
	unsigned r = 0, x = a;
	while (b) {
		if (b & 1)
			r ^= x;
		x <<= 1;
		if (x & 0x100)
			x ^= 0x11d;
		b >>= 1;
	}
	return (uint8_t)r;
}

/* A row of k+2 strips of len bytes, 64-aligned. */
typedef struct row {
	int n; /* strips = k + 2 */
	size_t len;
	uint8_t *s[RAID_MAX_K + 2];
} row;

static void row_free(row *r)
{
	for (int i = 0; i < r->n; i++)
		free(r->s[i]);
	r->n = 0;
}

static int row_alloc(row *r, int n, size_t len)
{
	r->n = 0;
	r->len = len;
	for (int i = 0; i < n; i++) {
		r->s[i] = bks_alloc_aligned(RAID_ALIGN, len);
		if (!r->s[i]) {
			row_free(r);
			return -ENOMEM;
		}
		r->n = i + 1;
	}
	return 0;
}

static void row_copy(row *dst, const row *src)
{
	for (int i = 0; i < src->n; i++)
		memcpy(dst->s[i], src->s[i], src->len);
}

static bool row_equal(const row *a, const row *b)
{
	for (int i = 0; i < a->n; i++)
		if (memcmp(a->s[i], b->s[i], a->len) != 0)
			return false;
	return true;
}

/* Setup steps (allocation) that the checks depend on: stop the run if they fail. */
static void must(int err)
{
	if (err) {
		fprintf(stderr, "test-raid: setup failed: %s\n", strerror(-err));
		exit(1);
	}
}

/* raid_encode against the byte-by-byte model. */
static void test_encode_reference(bks_rng *rng)
{
	static const int ks[] = {2, 3, 4, 5, 8, 10, 13, 16, 29, 30};
	static const size_t lens[] = {64, 4096, 65536};

	for (size_t ki = 0; ki < BKS_ARRAY_SIZE(ks); ki++) {
		for (size_t li = 0; li < BKS_ARRAY_SIZE(lens); li++) {
			int k = ks[ki];
			size_t len = lens[li];
			raid_codec *c;
			row r;
			must(raid_codec_new(k, len, &c));
			must(row_alloc(&r, k + 2, len));
			for (int i = 0; i < k; i++)
				bks_rng_fill(rng, r.s[i], len);
			raid_encode(c, len, r.s);

			uint8_t *p = malloc(len), *q = malloc(len);
			if (!p || !q)
				must(-ENOMEM);
			memset(p, 0, len);
			memset(q, 0, len);
			uint8_t coef = 1; /* 2^i */
			for (int i = 0; i < k; i++) {
				for (size_t b = 0; b < len; b++) {
					p[b] ^= r.s[i][b];
					q[b] ^= ref_mul(coef, r.s[i][b]);
				}
				coef = ref_mul(coef, 2);
			}
			CHECK(memcmp(p, r.s[k], len) == 0 && memcmp(q, r.s[k + 1], len) == 0,
			      "encode matches reference GF model k=%d len=%zu", k, len);
			free(p);
			free(q);
			row_free(&r);
			raid_codec_free(c);
		}
	}

	/* A known answer that pins the polynomial: D0 = D1 = 0x80 gives
	 * P = 0, Q = 0x80 ^ 2*0x80 = 0x80 ^ 0x1d = 0x9d. */
	raid_codec *c;
	row r;
	must(raid_codec_new(2, 64, &c));
	must(row_alloc(&r, 4, 64));
	memset(r.s[0], 0x80, 64);
	memset(r.s[1], 0x80, 64);
	raid_encode(c, 64, r.s);
	CHECK(r.s[2][0] == 0 && r.s[3][0] == 0x9d && r.s[3][63] == 0x9d,
	      "known answer: Q(0x80, 0x80) = 0x9d (got 0x%02x)", r.s[3][0]);
	row_free(&r);
	raid_codec_free(c);
}

/* Lose the strips in lost[], fill them with garbage, recover, compare the whole row
 * (so a recovery that overwrote a surviving strip fails too). */
static bool lose_and_recover(raid_codec *c, bks_rng *rng, const row *orig, row *work,
                             size_t len, const int *lost, int nlost)
{
	row_copy(work, orig);
	for (int i = 0; i < nlost; i++)
		bks_rng_fill(rng, work->s[lost[i]], orig->len);
	if (raid_recover(c, len, work->s, lost, nlost) != 0)
		return false;
	return row_equal(work, orig);
}

static void test_recover_exhaustive(bks_rng *rng)
{
	/* 4096 is the strip size asked for; 64 and 4160 catch tail handling in the
	 * vector kernels (one block, and a length that is not a power of two). */
	static const size_t lens[] = {4096, 64, 4160};
	long total = 0;

	for (size_t li = 0; li < BKS_ARRAY_SIZE(lens); li++) {
		size_t len = lens[li];
		for (int n = 4; n <= 16; n++) {
			int k = n - 2;
			/* 0 single data, 1 single P, 2 single Q, 3 dd, 4 dP, 5 dQ, 6 PQ */
			long cnt[7] = {0};
			raid_codec *c;
			row orig, work;
			/* max_len above len: recovery must honour the len it is given. */
			must(raid_codec_new(k, len + 128, &c));
			must(row_alloc(&orig, n, len));
			must(row_alloc(&work, n, len));
			for (int i = 0; i < k; i++)
				bks_rng_fill(rng, orig.s[i], len);
			raid_encode(c, len, orig.s);

			tu_misses = 0;
			for (int a = 0; a < n; a++) {
				int lost1[1] = {a};
				CHECK_LOOP(lose_and_recover(c, rng, &orig, &work, len, lost1, 1),
				       "n=%d len=%zu lost=%d", n, len, a);
				cnt[a < k ? 0 : a == k ? 1 : 2]++;
				for (int b = a + 1; b < n; b++) {
					/* Both orders: the index list is a set. */
					int lost2[2] = {b, a};
					CHECK_LOOP(lose_and_recover(c, rng, &orig, &work, len, lost2, 2),
					       "n=%d len=%zu lost=%d,%d", n, len, a, b);
					cnt[b < k ? 3 : a == k ? 6 : b == k ? 4 : 5]++;
				}
			}
			long sum = 0;
			for (int i = 0; i < 7; i++)
				sum += cnt[i];
			total += sum;
			CHECK(tu_misses == 0,
			      "recover N=%d len=%zu: %ld cases (1d=%ld P=%ld Q=%ld dd=%ld dP=%ld "
			      "dQ=%ld PQ=%ld)",
			      n, len, sum, cnt[0], cnt[1], cnt[2], cnt[3], cnt[4], cnt[5], cnt[6]);
			row_free(&orig);
			row_free(&work);
			raid_codec_free(c);
		}
	}
	printf("     recover: %ld loss combinations in total\n", total);
}

static void corrupt(bks_rng *rng, uint8_t *s, size_t len, int nbytes, bool edges);

/* raid_recover1_check, the rebuild's row: every lost index rebuilds the original
 * bytes and says OK on a sound row, and the same bytes as raid_recover; one wrong
 * survivor (every other index, 1 byte, both edges, or a random spread) must never be
 * called OK, and the lost strip then holds what raid_recover would have put there
 * (the rebuild's checker takes over from it). */
static void test_recover1_check(bks_rng *rng)
{
	static const int ns[] = {4, 5, 8, 12, 32};
	static const size_t lens[] = {4096, 64, 4160};
	long cases = 0;

	tu_misses = 0;
	for (size_t li = 0; li < BKS_ARRAY_SIZE(lens); li++) {
		size_t len = lens[li];
		for (size_t ni = 0; ni < BKS_ARRAY_SIZE(ns); ni++) {
			int n = ns[ni], k = n - 2;
			raid_codec *c;
			row orig, work, ref;
			must(raid_codec_new(k, len + 64, &c));
			must(row_alloc(&orig, n, len));
			must(row_alloc(&work, n, len));
			must(row_alloc(&ref, n, len));
			for (int i = 0; i < k; i++)
				bks_rng_fill(rng, orig.s[i], len);
			raid_encode(c, len, orig.s);
			for (int lost = 0; lost < n; lost++) {
				row_copy(&work, &orig);
				bks_rng_fill(rng, work.s[lost], len);
				enum raid_check_result res = raid_recover1_check(c, len, work.s, lost);
				CHECK_LOOP(res == RAID_CHECK_OK && row_equal(&work, &orig),
				           "N=%d len=%zu lost=%d: res=%d", n, len, lost, res);
				cases++;
				for (int wrong = 0; wrong < n; wrong++) {
					if (wrong == lost)
						continue;
					for (int trial = 0; trial < 3; trial++) {
						row_copy(&work, &orig);
						int nbytes = trial == 0 ? 1 : trial == 1 ? 2
						                                   : 1 + (int)bks_rng_below(rng, 64);
						corrupt(rng, work.s[wrong], len, nbytes, trial == 1);
						row_copy(&ref, &work);
						bks_rng_fill(rng, work.s[lost], len);
						res = raid_recover1_check(c, len, work.s, lost);
						int one[1] = {lost};
						raid_recover(c, len, ref.s, one, 1);
						CHECK_LOOP(res != RAID_CHECK_OK,
						           "N=%d len=%zu lost=%d wrong=%d bytes=%d: called OK",
						           n, len, lost, wrong, nbytes);
						CHECK_LOOP(row_equal(&work, &ref),
						           "N=%d len=%zu lost=%d wrong=%d: not raid_recover's bytes",
						           n, len, lost, wrong);
						cases++;
					}
				}
			}
			row_free(&orig);
			row_free(&work);
			row_free(&ref);
			raid_codec_free(c);
		}
	}
	CHECK(tu_misses == 0, "recover1_check: %ld rows (sound: rebuilt and OK; one wrong "
	      "survivor: never OK, raid_recover's bytes)", cases);
}

/* XOR a nonzero value into nbytes random positions of one strip; the first and
 * last byte are always among them when edges is set. */
static void corrupt(bks_rng *rng, uint8_t *s, size_t len, int nbytes, bool edges)
{
	for (int i = 0; i < nbytes; i++) {
		size_t at = bks_rng_below(rng, len);
		if (edges && i == 0)
			at = 0;
		if (edges && i == 1)
			at = len - 1;
		s[at] ^= (uint8_t)(1 + bks_rng_below(rng, 255));
	}
}

static void test_check(bks_rng *rng)
{
	static const int ns[] = {4, 5, 7, 12, 18, 32};
	const size_t len = 4096;

	for (size_t ni = 0; ni < BKS_ARRAY_SIZE(ns); ni++) {
		int n = ns[ni], k = n - 2, bad = 99;
		raid_codec *c;
		row orig, work;
		must(raid_codec_new(k, len, &c));
		must(row_alloc(&orig, n, len));
		must(row_alloc(&work, n, len));
		for (int i = 0; i < k; i++)
			bks_rng_fill(rng, orig.s[i], len);
		raid_encode(c, len, orig.s);

		enum raid_check_result res = raid_check(c, len, orig.s, &bad);
		CHECK(res == RAID_CHECK_OK && bad == -1, "check N=%d clean row -> OK", n);

		/* One bad strip, each index in turn, P and Q included. */
		tu_misses = 0;
		for (int s = 0; s < n; s++) {
			for (int trial = 0; trial < 3; trial++) {
				row_copy(&work, &orig);
				int nbytes = trial == 0 ? 1 : trial == 1 ? 2 : 1 + (int)bks_rng_below(rng, 64);
				corrupt(rng, work.s[s], len, nbytes, trial == 1);
				bad = 99;
				res = raid_check(c, len, work.s, &bad);
				CHECK_LOOP(res == RAID_CHECK_ONE_BAD && bad == s,
				       "N=%d strip=%d bytes=%d: res=%d bad=%d", n, s, nbytes, res, bad);
				if (res != RAID_CHECK_ONE_BAD || bad < 0 || bad >= n)
					continue;
				int lost[1] = {bad};
				CHECK_LOOP(raid_recover(c, len, work.s, lost, 1) == 0, "N=%d", n);
				CHECK_LOOP(raid_check(c, len, work.s, &bad) == RAID_CHECK_OK,
				       "N=%d strip=%d: not OK after repair", n, s);
				CHECK_LOOP(row_equal(&work, &orig), "N=%d strip=%d: repair differs", n, s);
			}
		}
		CHECK(tu_misses == 0, "check N=%d: one bad strip located and repaired, %d strips x 3",
		      n, n);

		/* Two bad strips at different byte positions: each differing byte names
		 * its own strip, so the row is deterministically UNLOCATABLE. */
		tu_misses = 0;
		int pairs = 0, unloc = 0, named = 0;
		for (int a = 0; a < n; a++) {
			for (int b = a + 1; b < n; b++) {
				if (n > 12 && bks_rng_below(rng, 4) != 0)
					continue; /* sample the larger rows */
				row_copy(&work, &orig);
				for (int i = 0; i < 8; i++) { /* a on even bytes, b on odd */
					size_t at = bks_rng_below(rng, len / 2) * 2;
					work.s[a][at] ^= (uint8_t)(1 + bks_rng_below(rng, 255));
					at = bks_rng_below(rng, len / 2) * 2 + 1;
					work.s[b][at] ^= (uint8_t)(1 + bks_rng_below(rng, 255));
				}
				pairs++;
				res = raid_check(c, len, work.s, &bad);
				CHECK_LOOP(res == RAID_CHECK_UNLOCATABLE && bad == -1,
				       "N=%d pair %d,%d: res=%d bad=%d", n, a, b, res, bad);
				unloc += res == RAID_CHECK_UNLOCATABLE;
			}
		}
		/* Same positions in both strips: each differing byte mixes two errors and
		 * may by chance look like a single strip's, so naming one is tolerated,
		 * but never OK, and
		 * repairing the named strip cannot restore the original row: the other
		 * corrupted strip is left as it was. */
		for (int t = 0; t < 20; t++) {
			int a = (int)bks_rng_below(rng, (uint64_t)k), b = (a + 1) % k;
			row_copy(&work, &orig);
			for (int i = 0; i < 8; i++) {
				size_t at = bks_rng_below(rng, len);
				work.s[a][at] ^= (uint8_t)(1 + bks_rng_below(rng, 255));
				work.s[b][at] ^= (uint8_t)(1 + bks_rng_below(rng, 255));
			}
			pairs++;
			res = raid_check(c, len, work.s, &bad);
			CHECK_LOOP(res != RAID_CHECK_OK, "N=%d same-position pair %d,%d passed", n, a, b);
			unloc += res == RAID_CHECK_UNLOCATABLE;
			if (res == RAID_CHECK_ONE_BAD) {
				named++;
				int lost[1] = {bad};
				CHECK_LOOP(raid_recover(c, len, work.s, lost, 1) == 0, "N=%d", n);
				CHECK_LOOP(!row_equal(&work, &orig), "N=%d pair %d,%d", n, a, b);
			}
		}

		/* Hand-made mismatches in P and Q alone at one byte: px = 1, qx = 2^z.
		 * For z < k that is exactly what an error in data strip z looks like, so
		 * z must be named; for z >= k no strip exists and the row is
		 * UNLOCATABLE (naming index k there would blame P for a Q error). */
		uint8_t gz = 1;
		for (int z = 0; z < 255; z++, gz = ref_mul(gz, 2)) {
			row_copy(&work, &orig);
			size_t at = bks_rng_below(rng, len);
			work.s[k][at] ^= 1;
			work.s[k + 1][at] ^= gz;
			res = raid_check(c, len, work.s, &bad);
			if (z < k)
				CHECK_LOOP(res == RAID_CHECK_ONE_BAD && bad == z, "N=%d z=%d res=%d bad=%d",
				       n, z, res, bad);
			else
				CHECK_LOOP(res == RAID_CHECK_UNLOCATABLE && bad == -1,
				       "N=%d z=%d res=%d bad=%d", n, z, res, bad);
		}
		CHECK(tu_misses == 0,
		      "check N=%d: two bad strips (%d pairs: %d unlocatable, %d named); "
		      "P/Q-only mismatches for z = 0..254",
		      n, pairs, unloc, named);

		row_free(&orig);
		row_free(&work);
		raid_codec_free(c);
	}
}

static void test_geometry(void)
{
	tu_misses = 0;
	int rows_checked = 0;
	for (int n = 4; n <= 32; n++) {
		int k = n - 2;
		int p_seen[32] = {0};
		for (uint64_t r = 0; r <= (uint64_t)(3 * n); r++) {
			int used[32] = {0};
			for (int s = 0; s < n; s++) {
				int d = raid_strip_disk(n, r, s);
				CHECK_LOOP(d >= 0 && d < n, "n=%d row=%llu strip=%d -> %d", n,
				       (unsigned long long)r, s, d);
				if (d < 0 || d >= n)
					continue;
				used[d]++;
				CHECK_LOOP(raid_disk_strip(n, r, d) == s, "n=%d row=%llu strip=%d", n,
				       (unsigned long long)r, s);
			}
			for (int d = 0; d < n; d++)
				CHECK_LOOP(used[d] == 1, "n=%d row=%llu disk=%d used %d times", n,
				       (unsigned long long)r, d, used[d]);
			/* md left-symmetric: P walks down from the last disk, Q follows it. */
			int pd = raid_strip_disk(n, r, k);
			CHECK_LOOP(pd == n - 1 - (int)(r % (uint64_t)n), "n=%d row=%llu", n,
			       (unsigned long long)r);
			CHECK_LOOP(raid_strip_disk(n, r, k + 1) == (pd + 1) % n, "n=%d", n);
			CHECK_LOOP(raid_strip_disk(n, r, 0) == (pd + 2) % n, "n=%d", n);
			if (r < (uint64_t)n && pd >= 0)
				p_seen[pd]++;
			rows_checked++;
		}
		for (int d = 0; d < n; d++)
			CHECK_LOOP(p_seen[d] == 1, "n=%d: P on disk %d %d times in N rows", n, d,
			       p_seen[d]);
	}
	CHECK(tu_misses == 0, "geometry N=4..32, rows 0..3N: distinct disks, inverse, P rotation "
	      "(%d rows)", rows_checked);

	/* One layout written out by hand (N=4, md left-symmetric). */
	CHECK(raid_strip_disk(4, 0, 2) == 3 && raid_strip_disk(4, 0, 3) == 0 &&
	          raid_strip_disk(4, 0, 0) == 1 && raid_strip_disk(4, 1, 2) == 2 &&
	          raid_strip_disk(4, 1, 0) == 0 && raid_strip_disk(4, 5, 2) == 2,
	      "geometry N=4 by hand: row 0 = [Q D0 D1 P], row 1 = [D0 D1 P Q]");
	CHECK(raid_strip_disk(4, UINT64_MAX, 0) >= 0 &&
	          raid_disk_strip(4, UINT64_MAX, raid_strip_disk(4, UINT64_MAX, 0)) == 0,
	      "geometry: row UINT64_MAX");
}

static void test_bad_args(void)
{
	raid_codec *c = (raid_codec *)&c; /* must be reset to NULL on failure */
	CHECK(raid_codec_new(1, 4096, &c) == -EINVAL && c == NULL, "codec_new k=1 -> -EINVAL");
	CHECK(raid_codec_new(31, 4096, &c) == -EINVAL && c == NULL, "codec_new k=31 -> -EINVAL");
	CHECK(raid_codec_new(4, 100, &c) == -EINVAL, "codec_new max_len=100 -> -EINVAL");
	CHECK(raid_codec_new(4, 0, &c) == -EINVAL, "codec_new max_len=0 -> -EINVAL");
	raid_codec_free(NULL);
	CHECK(1, "codec_free(NULL)");

	int k = 4;
	row r;
	must(raid_codec_new(k, 4096, &c));
	CHECK(raid_codec_k(c) == k, "codec_k");
	must(row_alloc(&r, k + 2, 8192));
	raid_encode(c, 4096, r.s);

	int two[2] = {0, 1}, dup[2] = {2, 2}, three[3] = {0, 1, 2};
	int neg[1] = {-1}, high[1] = {k + 2}, pq[2] = {k, k + 1};
	CHECK(raid_recover(c, 100, r.s, two, 2) == -EINVAL, "recover len=100 -> -EINVAL");
	CHECK(raid_recover(c, 8192, r.s, two, 2) == -EINVAL, "recover len>max_len -> -EINVAL");
	CHECK(raid_recover(c, 4096, r.s, dup, 2) == -EINVAL, "recover duplicate lost -> -EINVAL");
	CHECK(raid_recover(c, 4096, r.s, three, 3) == -EINVAL, "recover 3 lost -> -EINVAL");
	CHECK(raid_recover(c, 4096, r.s, neg, 1) == -EINVAL, "recover index -1 -> -EINVAL");
	CHECK(raid_recover(c, 4096, r.s, high, 1) == -EINVAL, "recover index k+2 -> -EINVAL");
	CHECK(raid_recover(c, 4096, r.s, two, -1) == -EINVAL, "recover nlost=-1 -> -EINVAL");
	CHECK(raid_recover(c, 4096, r.s, NULL, 0) == 0, "recover nothing lost -> 0");
	CHECK(raid_recover(c, 4096, r.s, pq, 2) == 0 &&
	          raid_check(c, 4096, r.s, NULL) == RAID_CHECK_OK,
	      "recover P+Q of an all-zero row, check with bad=NULL");

	CHECK(raid_strip_disk(3, 0, 0) == -EINVAL && raid_strip_disk(33, 0, 0) == -EINVAL &&
	          raid_strip_disk(6, 0, 6) == -EINVAL && raid_strip_disk(6, 0, -1) == -EINVAL,
	      "strip_disk bad ndisks/strip -> -EINVAL");
	CHECK(raid_disk_strip(3, 0, 0) == -EINVAL && raid_disk_strip(6, 0, 6) == -EINVAL,
	      "disk_strip bad ndisks/disk -> -EINVAL");
	row_free(&r);
	raid_codec_free(c);
}

int main(void)
{
	bks_rng rng;
	bks_rng_seed(&rng, 0x52414944ull); /* fixed: failures must reproduce */
	setvbuf(stdout, NULL, _IOLBF, 0);

	test_encode_reference(&rng);
	test_recover_exhaustive(&rng);
	test_check(&rng);
	test_recover1_check(&rng);
	test_geometry();
	test_bad_args();

	return tu_finish();
}
