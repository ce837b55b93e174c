/* raid/raid.c: see raid.h. ISA-L does the vector work; this file chooses the
 * matrices, validates arguments and turns a P/Q mismatch into a strip index.
 *
 * Why the generator matrix agrees with pq_gen: gf_gen_rs_matrix(a, k+2, k) gives
 * identity rows 0..k-1, row k = gen^0 powers = all ones (P) and row k+1 = 2^j (Q),
 * which is exactly what pq_gen computes (Horner over the sources, multiply by 2 in
 * GF(2^8)/0x11d). The code is MDS for k <= 255: any two lost strips leave an
 * invertible k x k matrix, because the 2^j are distinct and nonzero. */
#include <config.h>

#include "raid/raid.h"

#include "common/bks.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <isa-l/erasure_code.h>
#include <isa-l/raid.h>

#define RAID_MAX_STRIPS (RAID_MAX_K + 2)

struct raid_codec {
	/* First, so the tables keep the 64-byte alignment of the allocation: the
	 * ISA-L kernels load them as whole vectors. 32 bytes per (source, output). */
	uint8_t gftbls[32 * RAID_MAX_K * 2];
	int k;
	size_t max_len;
	uint8_t *scratch_p; /* max_len bytes each, 64-aligned: recomputed P and Q */
	uint8_t *scratch_q;
	uint8_t gen[RAID_MAX_STRIPS * RAID_MAX_K]; /* (k+2) x k, row-major */
	/* log2 in GF(2^8): gf_log[2^i] = i for i in 0..254; gf_log[0] is unused. */
	uint8_t gf_log[256];
};

/* ISA-L takes int lengths; keep every length it sees representable. */
#define RAID_LEN_LIMIT ((size_t)INT_MAX / RAID_ALIGN * RAID_ALIGN)

int raid_codec_new(int k, size_t max_len, raid_codec **out)
{
	raid_codec *c = NULL;
	int err = -EINVAL;

	*out = NULL;
	if (k < RAID_MIN_K || k > RAID_MAX_K)
		goto out;
	if (max_len == 0 || max_len % RAID_ALIGN != 0 || max_len > RAID_LEN_LIMIT)
		goto out;

	err = -ENOMEM;
	c = bks_alloc_aligned(RAID_ALIGN, sizeof(*c));
	if (!c)
		goto out;
	c->k = k;
	c->max_len = max_len;
	/* One allocation for both scratch strips; max_len keeps the second aligned. */
	c->scratch_p = bks_alloc_aligned(RAID_ALIGN, 2 * max_len);
	if (!c->scratch_p)
		goto free_codec;
	c->scratch_q = c->scratch_p + max_len;

	gf_gen_rs_matrix(c->gen, k + 2, k);

	/* Our own loop rather than gf_mul, so raid_check's locator does not depend
	 * on ISA-L internals: x walks the powers of the generator 2 mod 0x11d. */
	unsigned x = 1;
	for (int i = 0; i < 255; i++) {
		c->gf_log[x] = (uint8_t)i;
		x <<= 1;
		if (x & 0x100)
			x ^= 0x11d;
	}

	*out = c;
	return 0;

free_codec:
	free(c);
out:
	return err;
}

void raid_codec_free(raid_codec *c)
{
	if (!c)
		return;
	free(c->scratch_p);
	free(c);
}

int raid_codec_k(const raid_codec *c)
{
	return c->k;
}

static bool len_ok(const raid_codec *c, size_t len)
{
	return len % RAID_ALIGN == 0 && len <= c->max_len;
}

/* pq_gen over k data strips into p and q. ISA-L rejects only lengths or vector
 * counts we have already validated, so a failure here means we and the library
 * disagree about its contract: report it rather than leave stale parity. */
static int pq_into(const raid_codec *c, size_t len, uint8_t *const *strips, uint8_t *p,
                   uint8_t *q)
{
	void *v[RAID_MAX_STRIPS];
	int k = c->k;

	for (int i = 0; i < k; i++)
		v[i] = strips[i];
	v[k] = p;
	v[k + 1] = q;
	return pq_gen(k + 2, (int)len, v) == 0 ? 0 : -EIO;
}

/* strips[dst] (a data strip) = P ^ every other data strip. */
static int xor_into(const raid_codec *c, size_t len, uint8_t *const *strips, int dst)
{
	void *v[RAID_MAX_STRIPS];
	int n = 0;

	for (int i = 0; i <= c->k; i++) /* the data strips, then P */
		if (i != dst)
			v[n++] = strips[i];
	v[n++] = strips[dst];
	return xor_gen(n, (int)len, v) == 0 ? 0 : -EIO;
}

void raid_encode(const raid_codec *c, size_t len, uint8_t *const *strips)
{
	/* No error channel: a bad length is a caller bug, and silently skipping the
	 * parity would lose data later, so this check stays on in release builds. */
	BKS_PANIC_IF(!len_ok(c, len), "raid_encode: len=%zu max_len=%zu", len, c->max_len);
	if (len == 0)
		return;
	int err = pq_into(c, len, strips, strips[c->k], strips[c->k + 1]);
	BKS_PANIC_IF(err, "raid_encode: pq_gen failed k=%d len=%zu", c->k, len);
}

/* Rebuild the lost data strips (the ones in is_lost[0..k-1]) from k survivors.
 * Survivors are taken in index order, so data is preferred and Q is used only
 * when two strips are gone: the decode matrix is then as sparse as it can be. */
static int recover_data(raid_codec *c, size_t len, uint8_t *const *strips,
                        const bool *is_lost)
{
	int k = c->k;
	uint8_t sub[RAID_MAX_K * RAID_MAX_K], inv[RAID_MAX_K * RAID_MAX_K];
	uint8_t rows[2 * RAID_MAX_K];
	uint8_t *src[RAID_MAX_K], *dst[2];
	int nsrc = 0, ndst = 0;

	for (int s = 0; s < k + 2; s++) {
		if (is_lost[s]) {
			if (s < k)
				dst[ndst++] = strips[s];
			continue;
		}
		if (nsrc == k)
			continue;
		memcpy(sub + nsrc * k, c->gen + s * k, (size_t)k);
		src[nsrc++] = strips[s];
	}
	if (ndst == 0)
		return 0;
	/* At most 2 of k+2 strips are lost, so k survivors always exist. */
	assert(nsrc == k);

	/* gf_invert_matrix destroys its input; sub is already a private copy. A
	 * singular matrix is impossible for this code (see the top of the file), so
	 * it can only mean a damaged codec: fail the call rather than write junk. */
	if (gf_invert_matrix(sub, inv, k) != 0)
		return -EIO;

	/* survivors = sub * data, so data strip i = row i of inv applied to them. */
	ndst = 0;
	for (int s = 0; s < k; s++)
		if (is_lost[s])
			memcpy(rows + k * ndst++, inv + s * k, (size_t)k);
	ec_init_tables(k, ndst, rows, c->gftbls);
	ec_encode_data((int)len, k, ndst, c->gftbls, src, dst);
	return 0;
}

int raid_recover(raid_codec *c, size_t len, uint8_t *const *strips, const int *lost,
                 int nlost)
{
	bool is_lost[RAID_MAX_STRIPS] = {false};
	int k = c->k;
	int err = -EINVAL;

	if (!len_ok(c, len) || nlost < 0 || nlost > 2 || (nlost > 0 && !lost))
		goto out;
	for (int i = 0; i < nlost; i++) {
		if (lost[i] < 0 || lost[i] >= k + 2 || is_lost[lost[i]])
			goto out;
		is_lost[lost[i]] = true;
	}
	err = 0;
	if (nlost == 0 || len == 0)
		goto out;

	/* One data strip with P present (a rebuild's usual row): P is the XOR of the
	 * data, so the strip is the XOR of P and the other data strips. This is the
	 * same equation recover_data would pick (survivors in index order: the data,
	 * then P), solved without the GF multiplications of the general decode. */
	if (nlost == 1 && lost[0] < k) {
		err = xor_into(c, len, strips, lost[0]);
		goto out;
	}
	/* Data first: P and Q are recomputed from a complete data set afterwards. */
	err = recover_data(c, len, strips, is_lost);
	if (err)
		goto out;

	if (is_lost[k] && is_lost[k + 1]) {
		err = pq_into(c, len, strips, strips[k], strips[k + 1]);
	} else if (is_lost[k] || is_lost[k + 1]) {
		/* pq_gen writes both; the surviving one must not be touched (the caller
		 * may be verifying it), so compute into scratch and copy the lost one. */
		err = pq_into(c, len, strips, c->scratch_p, c->scratch_q);
		if (err)
			goto out;
		if (is_lost[k])
			memcpy(strips[k], c->scratch_p, len);
		else
			memcpy(strips[k + 1], c->scratch_q, len);
	}
out:
	return err;
}

/* Which strip explains a byte that differs by px in P and qx in Q, or -1. An error
 * e in data strip z shows as px = e, qx = 2^z * e, so z = log qx - log px. */
static int locate_byte(const raid_codec *c, uint8_t px, uint8_t qx)
{
	if (qx == 0)
		return c->k;
	if (px == 0)
		return c->k + 1;
	int z = ((int)c->gf_log[qx] - (int)c->gf_log[px] + 255) % 255;
	return z < c->k ? z : -1;
}

/* Compare stored P/Q with the recomputed ones in scratch; see raid_check. */
static enum raid_check_result locate(const raid_codec *c, size_t len, const uint8_t *p,
                                     const uint8_t *q, int *bad)
{
	const uint8_t *p2 = c->scratch_p, *q2 = c->scratch_q;
	int who = -1;

	for (size_t off = 0; off < len; off += 8) {
		uint64_t a, b, a2, b2;
		memcpy(&a, p + off, 8);
		memcpy(&b, q + off, 8);
		memcpy(&a2, p2 + off, 8);
		memcpy(&b2, q2 + off, 8);
		if (a == a2 && b == b2)
			continue; /* the common case even in a bad row: skip 8 bytes */
		for (size_t i = off; i < off + 8; i++) {
			uint8_t px = p[i] ^ p2[i], qx = q[i] ^ q2[i];
			if (px == 0 && qx == 0)
				continue;
			int z = locate_byte(c, px, qx);
			if (z < 0 || (who >= 0 && z != who))
				return RAID_CHECK_UNLOCATABLE;
			who = z;
		}
	}
	if (who < 0) {
		/* memcmp saw a difference that is gone now: the row changed while we
		 * read it (a caller bug). We did see it inconsistent and cannot name a
		 * strip, so say that rather than vouch for the row. */
		return RAID_CHECK_UNLOCATABLE;
	}
	if (bad)
		*bad = who;
	return RAID_CHECK_ONE_BAD;
}

enum raid_check_result raid_check(raid_codec *c, size_t len, uint8_t *const *strips,
                                  int *bad)
{
	int k = c->k;

	/* No error channel in the result type; see raid_encode. */
	BKS_PANIC_IF(!len_ok(c, len), "raid_check: len=%zu max_len=%zu", len, c->max_len);
	if (bad)
		*bad = -1;
	if (len == 0)
		return RAID_CHECK_OK;

	/* Scrubbing almost always finds clean rows, so that path must be fast:
	 * recompute into scratch and memcmp, and locate only on a mismatch. Not
	 * pq_check: ISA-L 2.30 has only an SSE kernel for it, which measured at half
	 * the speed of AVX-512 pq_gen + memcmp (bench/bench_raid.c, check_gbps). */
	int err = pq_into(c, len, strips, c->scratch_p, c->scratch_q);
	BKS_PANIC_IF(err, "raid_check: pq_gen failed k=%d len=%zu", k, len);
	if (memcmp(strips[k], c->scratch_p, len) == 0 &&
	    memcmp(strips[k + 1], c->scratch_q, len) == 0)
		return RAID_CHECK_OK;
	return locate(c, len, strips[k], strips[k + 1], bad);
}

enum raid_check_result raid_recover1_check(raid_codec *c, size_t len,
                                           uint8_t *const *strips, int lost)
{
	int k = c->k;

	BKS_PANIC_IF(!len_ok(c, len) || lost < 0 || lost >= k + 2,
	             "raid_recover1_check: len=%zu lost=%d k=%d", len, lost, k);
	if (len == 0)
		return RAID_CHECK_OK;
	if (lost < k) {
		int err = xor_into(c, len, strips, lost);
		BKS_PANIC_IF(err, "raid_recover1_check: xor_gen failed k=%d len=%zu", k, len);
	}
	/* One pq_gen over the complete data: it yields the lost parity, and the
	 * parity nobody recovered from to check against. */
	int err = pq_into(c, len, strips, c->scratch_p, c->scratch_q);
	BKS_PANIC_IF(err, "raid_recover1_check: pq_gen failed k=%d len=%zu", k, len);
	if (lost == k)
		memcpy(strips[k], c->scratch_p, len);
	else if (lost == k + 1)
		memcpy(strips[k + 1], c->scratch_q, len);
	/* A recovered data strip makes P hold by construction (it was solved from
	 * P), so Q alone is the test; a recovered parity is the recomputed one, so
	 * the other parity is the test. */
	if (lost != k + 1 && memcmp(strips[k + 1], c->scratch_q, len) != 0)
		return RAID_CHECK_UNLOCATABLE;
	if (lost == k + 1 && memcmp(strips[k], c->scratch_p, len) != 0)
		return RAID_CHECK_UNLOCATABLE;
	return RAID_CHECK_OK;
}

/* Geometry: strips per row = disks, so k = ndisks - 2. */
static bool ndisks_ok(int ndisks)
{
	return ndisks >= RAID_MIN_K + 2 && ndisks <= RAID_MAX_K + 2;
}

static int p_disk(int ndisks, uint64_t row)
{
	return ndisks - 1 - (int)(row % (uint64_t)ndisks);
}

int raid_strip_disk(int ndisks, uint64_t row, int strip)
{
	if (!ndisks_ok(ndisks) || strip < 0 || strip >= ndisks)
		return -EINVAL;
	int k = ndisks - 2;
	int pd = p_disk(ndisks, row);
	if (strip == k)
		return pd;
	if (strip == k + 1)
		return (pd + 1) % ndisks;
	return (pd + 2 + strip) % ndisks;
}

int raid_disk_strip(int ndisks, uint64_t row, int disk)
{
	if (!ndisks_ok(ndisks) || disk < 0 || disk >= ndisks)
		return -EINVAL;
	int k = ndisks - 2;
	int off = (disk - p_disk(ndisks, row) + ndisks) % ndisks; /* 0 = P, 1 = Q */
	if (off == 0)
		return k;
	if (off == 1)
		return k + 1;
	return off - 2;
}
