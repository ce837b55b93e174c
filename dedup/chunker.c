/* dedup/chunker.c: see chunker.h.
 *
 * THE ALGORITHM. These cut points are on-disk format: changing anything below (the
 * seed, the generator, the masks, which byte is hashed first, < versus <=) changes
 * which chunks exist and loses dedup against everything already stored. Change it
 * only together with a new format version. tests/test-chunker.c re-implements this
 * text byte by byte and pins cut points for fixed inputs.
 *
 * FastCDC (Xia et al., USENIX ATC 2016; IEEE TPDS 2020) with cut-point skipping and
 * normalized chunking level 2, gear hash with 64-bit wrapping arithmetic:
 *
 *   Gear table: gear[0..255] are the first 256 outputs of splitmix64 started from
 *   state 15, output i being
 *       x += 0x9e3779b97f4a7c15;  z = x;
 *       z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
 *       z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
 *       gear[i] = z ^ (z >> 31);
 *   15 is the smallest seed for which a run of zero bytes hashed from h = 0 never has
 *   its top 5 bits all zero (the smallest mask below, MaskL with avg = 128, has 5
 *   bits): zero-filled regions, common in disk images and sparse files, then become
 *   max-sized chunks, all identical, whatever the parameters.
 *
 *   Masks: b = log2(avg). MaskS has the top b+2 bits of 64 set, MaskL the top b-2
 *   bits. With h = (h << 1) + gear[byte], bit j of h depends on the last j+1 bytes
 *   only, so a low contiguous mask would look at a window of a dozen bytes. FastCDC
 *   spreads its mask bits over the low 48 bits to widen the window; we take the top
 *   bits instead: the lowest of n top bits depends on the last 65-n bytes, so every
 *   bit tested depends on at least 42 bytes (n <= 23), and the test is one AND.
 *
 *   Per chunk, bytes at chunk offsets 0, 1, 2, ...:
 *     h = 0 when the chunk starts.
 *     Offsets 0 .. min-1 are skipped: not hashed, never a cut.
 *     For each byte at offset o >= min, in order:
 *         h = (h << 1) + gear[byte]                       (mod 2^64)
 *         if (h & (o < avg ? MaskS : MaskL)) == 0: cut after this byte (length o+1)
 *         else if o + 1 == max:                    cut after this byte (length max)
 *   So chunks are min+1 .. max bytes long, except a stream's last, which ends where
 *   the stream does. Cut points depend only on the bytes since the previous cut, not
 *   on how the stream arrives in buffers.
 *
 * Speed: this runs on every ingested byte; the cost is the hashed bytes, about 3/4
 * of the input with the defaults. The skipped min costs only arithmetic on the
 * position. The hashed part is split at avg, so each scan loop has one invariant
 * mask. A byte-at-a-time gear loop is bound by its serial chain (one shift-add per
 * byte, about a cycle), so scan_lanes() hashes two lanes of the buffer in step: lane b
 * starts `lane` bytes after lane a, and its starting hash is exact after hashing
 * only the 64 bytes before it from 0, because older bytes are shifted out of a
 * 64-bit hash. A cut found in either lane is confirmed by redoing lane a alone from
 * that group on, since a's bytes all come first. That leaves about four
 * instructions per byte (load byte, load gear, shift-add, test-and-branch), which is
 * what bounds the speed. Software prefetch runs ahead of both lanes: the hardware
 * prefetcher alone loses the stream at every skipped min.
 *
 * Why no SIMD path (measured 2026-12 on this project's AMD EPYC Zen 4 VM, AVX2 and
 * AVX-512 VBMI, in microbenchmarks against this loop in the same run; the machine
 * was shared, so each figure is a range over runs): the gear hash needs one random
 * 64-bit table load per byte and vector units have no cheap way to do it.
 * vpgatherqq costs ~2 cycles per element: a 4-lane AVX2 and an 8-lane AVX-512
 * gear loop both ran at 0.45x this loop. A byte-planar lookup (vpermi2b) plus the
 * transposes back to 64-bit lanes would need ~50 zmm shuffles per 64 bytes, and one
 * zmm shuffle took ~1 ns here (estimated, not built). Scalar variants gave no
 * consistent gain: 3 or 4 lanes 0.65-1.0x, 8-byte loads with the bytes taken apart
 * in registers 0.75-1.2x (the ALUs become the bound), pre-shifted tables that fold
 * shift-add and load into one add 0.65-1.1x, a 64 K-entry table for two bytes at
 * a time 0.4-0.7x (it lives in L2). The loop does ~1.06 gear steps per hashed byte
 * (lane warm-ups and hits redone), so little is left around it either.
 * Built and measured later (2026-12-03, same VM, thread CPU time, 64 MiB random,
 * same run): eight lanes in the eight 64-bit words of a zmm, the gear lookup done
 * byte-planar (per 64 input bytes: 16 vpermt2b, 8 blends on bit 7, a 24-unpack 8x8
 * transpose back to 64-bit words, one vpermb to order the lanes; the input taken in
 * by an 8x8 qword transpose), then per byte position a vpaddq pair and a vpminuq
 * against the top-bits mask: 3.7-4.3 GB/s against this loop's 3.8-4.1, i.e. 1.0-1.05x
 * before the eight lanes' 64-byte warm-ups and the work past a cut they would add.
 * The gear values alone cost ~40 zmm shuffles per 64 bytes, which is all the time
 * this loop takes. Running that vector loop and this scalar one interleaved on
 * separate parts of a buffer (integer and vector units are separate on Zen) gave
 * no more than the faster of the two alone (3.7-4.5 GB/s for every split tried):
 * they share a bound (dispatch or the VM's sibling thread), not just execution units.
 * A faster path must pass tests/test-chunker.c's golden lists through BKS_CDC_SCAN.
 */
#include <config.h>

#include "dedup/chunker.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/bks.h"

#define CDC_GEAR_SEED 15u

/* scan_lanes(): the longest lane (bytes), and the shortest worth its 64-byte warm-up. Both
 * multiples of 8, SCAN_MIN_LANE >= 64. Speed only: they do not change cut points. */
#ifndef SCAN_LANE
#define SCAN_LANE 1024
#endif
#ifndef SCAN_MIN_LANE
#define SCAN_MIN_LANE 128
#endif
#ifndef SCAN_PREFETCH
#define SCAN_PREFETCH 4096
#endif

struct cdc {
	uint32_t min, avg, max;
	uint64_t mask_s, mask_l;
	int serial;    /* BKS_CDC_SCAN=serial: the byte-at-a-time loop only (tests) */
	uint64_t h;    /* hash of the current chunk's bytes from offset min on */
	size_t pos;    /* bytes of the current chunk seen so far, always < max */
	uint64_t gear[256];
};

void cdc_params_default(cdc_params *p)
{
	p->min = CDC_DEFAULT_MIN;
	p->avg = CDC_DEFAULT_AVG;
	p->max = CDC_DEFAULT_MAX;
}

int cdc_params_check(const cdc_params *p)
{
	if (!p || p->min < CDC_MIN_LIMIT || p->min >= p->avg || p->avg >= p->max ||
	    p->max > CDC_MAX_LIMIT || (p->avg & (p->avg - 1)) != 0)
		return -EINVAL;
	return 0;
}

static uint64_t gear_next(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

int cdc_new(const cdc_params *p, cdc **out)
{
	cdc_params def;
	*out = NULL;
	if (!p) {
		cdc_params_default(&def);
		p = &def;
	}
	if (cdc_params_check(p))
		return -EINVAL;

	cdc *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->min = p->min;
	c->avg = p->avg;
	c->max = p->max;
	int b = __builtin_ctz(p->avg); /* 7 .. 21 */
	c->mask_s = ~0ull << (64 - (b + 2));
	c->mask_l = ~0ull << (64 - (b - 2));
	uint64_t x = CDC_GEAR_SEED;
	for (int i = 0; i < 256; i++)
		c->gear[i] = gear_next(&x);
	/* Read once per object, never per call: the hook costs nothing per byte. */
	const char *path = getenv("BKS_CDC_SCAN");
	c->serial = path && strcmp(path, "serial") == 0;
	*out = c;
	return 0;
}

void cdc_free(cdc *c)
{
	free(c);
}

void cdc_reset(cdc *c)
{
	c->h = 0;
	c->pos = 0;
}

void cdc_get_params(const cdc *c, cdc_params *out)
{
	out->min = c->min;
	out->avg = c->avg;
	out->max = c->max;
}

/* One gear hash step. */
#define GEAR_STEP(h, byte) ((h) = ((h) << 1) + gear[(byte)])

/* Hash p[0..n) into *hp, one byte at a time. Returns the index of the first byte
 * after which (h & mask) == 0, or n if there is none (then *hp is the new hash). */
static inline size_t scan_serial(const uint64_t *restrict gear, const uint8_t *restrict p,
                                 size_t n, uint64_t *hp, uint64_t mask)
{
	uint64_t h = *hp;
	for (size_t i = 0; i < n; i++) {
		GEAR_STEP(h, p[i]);
		if (!(h & mask))
			return i;
	}
	*hp = h;
	return n;
}

/* The hash after p[pos - 1] for a scan that entered with hash hin before p[0]: the
 * last 64 bytes determine it fully (older bytes have been shifted out). */
static uint64_t rehash(const uint64_t *restrict gear, const uint8_t *restrict p,
                       size_t pos, uint64_t hin)
{
	uint64_t h = hin;
	size_t j = 0;

	if (pos >= 64) {
		h = 0;
		j = pos - 64;
	}
	for (; j < pos; j++)
		GEAR_STEP(h, p[j]);
	return h;
}

/* Same result as scan_serial, faster: see "Speed" at the top. p[0..n) must all be
 * hashed bytes of one chunk (after its first min). */
static size_t scan_lanes(const uint64_t *restrict gear, const uint8_t *restrict p, size_t n,
                   uint64_t *hp, uint64_t mask)
{
	uint64_t h = *hp;
	size_t i = 0, k, j;

	while (n - i >= 2 * SCAN_MIN_LANE) {
		/* Lanes a = p[i, i+lane) and b = p[i+lane, i+2*lane), hashed in step. */
		size_t lane = BKS_MIN((n - i) / 2, SCAN_LANE) & ~(size_t)7;
		const uint8_t *a = p + i, *b = a + lane;
		uint64_t ha = h, hb = rehash(gear, p, i + lane, h);

		for (j = 0; j < lane; j += 8) {
			/* One line per 16 bytes hashed, SCAN_PREFETCH ahead of the
			 * bytes the two lanes together cover: the hardware prefetcher
			 * alone loses the stream at each skipped min. uintptr_t: the
			 * address may lie past the buffer, which a prefetch tolerates. */
			__builtin_prefetch((const void *)((uintptr_t)(a + 2 * j) + SCAN_PREFETCH));
#define SCAN_PAIR(o)                                                                  \
	GEAR_STEP(ha, a[j + (o)]);                                                    \
	GEAR_STEP(hb, b[j + (o)]);                                                    \
	if (__builtin_expect(!(ha & mask) || !(hb & mask), 0))                        \
		goto hit;
			SCAN_PAIR(0) SCAN_PAIR(1) SCAN_PAIR(2) SCAN_PAIR(3)
			SCAN_PAIR(4) SCAN_PAIR(5) SCAN_PAIR(6) SCAN_PAIR(7)
#undef SCAN_PAIR
		}
		h = hb;
		i += 2 * lane;
		continue;

	hit:
		/* A cut within these 8 steps, in one lane or both. Every byte of a
		 * comes before every byte of b: redo a alone from this group to its
		 * end, and only if it has no cut, b's group, which then has one. */
		ha = rehash(gear, p, i + j, *hp);
		k = scan_serial(gear, a + j, lane - j, &ha, mask);
		if (k < lane - j)
			return i + j + k;
		hb = rehash(gear, p, i + lane + j, *hp);
		k = scan_serial(gear, b + j, 8, &hb, mask);
		BKS_PANIC_IF(k == 8, "cdc: lane b lost its cut point");
		return i + lane + j + k;
	}
	k = scan_serial(gear, p + i, n - i, &h, mask);
	if (k < n - i)
		return i + k;
	*hp = h;
	return n;
}

/* The scan path of this object: the two-lane loop, or (BKS_CDC_SCAN=serial) the plain
 * one, which tests run to prove both give the same cut points. */
static size_t scan(const cdc *c, const uint8_t *p, size_t n, uint64_t *hp, uint64_t mask)
{
	if (c->serial)
		return scan_serial(c->gear, p, n, hp, mask);
	return scan_lanes(c->gear, p, n, hp, mask);
}

size_t cdc_next(cdc *c, const uint8_t *buf, size_t len, int *cut)
{
	size_t pos = c->pos; /* chunk offset of buf[i] */
	size_t i = 0, n, k;
	uint64_t h = c->h;

	assert(pos < c->max);
	if (len == 0) {
		*cut = 0;
		return 0;
	}
	if (pos < c->min) {
		/* Cut-point skipping: the hash starts at offset min whatever the buffers. */
		size_t skip = c->min - pos;
		if (skip >= len) {
			c->pos = pos + len;
			*cut = 0;
			return len;
		}
		i = skip;
		pos = c->min;
	}
	if (pos < c->avg) {
		n = BKS_MIN(len - i, c->avg - pos);
		k = scan(c, buf + i, n, &h, c->mask_s);
		if (k < n) {
			i += k + 1;
			goto cut;
		}
		i += n;
		pos += n;
	}
	n = BKS_MIN(len - i, c->max - pos);
	k = scan(c, buf + i, n, &h, c->mask_l);
	if (k < n) {
		i += k + 1;
		goto cut;
	}
	i += n;
	pos += n;
	if (pos == c->max)
		goto cut;
	c->h = h;
	c->pos = pos;
	*cut = 0;
	return len;

cut:
	c->h = 0;
	c->pos = 0;
	*cut = 1;
	return i;
}
