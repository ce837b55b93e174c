/* dedup/fp_ni.c: SHA-256 of several messages at once on two lanes with the x86 SHA
 * extensions (fp_int.h).
 *
 * Why not OpenSSL for this: sha256rnds2 has a latency of several cycles and its
 * result feeds the next round, so one message keeps the SHA unit idle most of the
 * time; OpenSSL hashes one message per call. Two independent messages interleaved
 * instruction by instruction fill those slots: on this appliance's CPU (AMD EPYC)
 * 0.32 ns/B against OpenSSL's 0.58 for 18 KB pieces (bench/RESULTS.md, "issue 13,
 * part: duplicate ingest CPU"). A duplicate generation spends half of the daemon's
 * CPU on fingerprints. The digests are SHA-256's, bit for bit (tests/test-fp checks
 * them against OpenSSL at every length class): a fingerprint is a chunk's identity,
 * so nothing stored changes.
 *
 * The lanes stream: each holds one message; both advance together over the full
 * blocks they both have, and a lane whose message has no full block left pads and
 * finishes it alone (one or two blocks), then takes the next message. So only the
 * padding blocks and the last message's tail run on one lane. */
#include <config.h>

#include "dedup/fp_int.h"

#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <immintrin.h>

#define FPNI_TARGET __attribute__((target("sha,sse4.1,ssse3")))

static const uint32_t K256[64] __attribute__((aligned(16))) = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
	0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
	0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
	0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
	0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
	0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static const uint32_t H256[8] __attribute__((aligned(16))) = {
	0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
};

/* The state as the SHA instructions want it: s[0] = ABEF, s[1] = CDGH. */
typedef struct lane {
	__m128i s[2];
	const uint8_t *p;            /* the message's next full block */
	size_t blocks;               /* full blocks left */
	size_t len;                  /* the whole message */
	int idx;                     /* which message (-1: idle) */
} lane;

/* The byte order of a big-endian word within each 32-bit lane. */
#define BSWAP_MASK _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL)

/* One 4-round group g of one message: m[] holds its schedule words (4 x 4). The
 * schedule is the usual one of the SHA extensions: group g + 1's words are finished
 * (msg2) while group g runs, group g + 3's begun (msg1). */
#define GROUP(g, s0, s1, m, p)                                                                   \
	do {                                                                                     \
		if ((g) < 4)                                                                     \
			m[g] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)((p) + 16 * (g))), \
			                        BSWAP_MASK);                                    \
		__m128i w_ = _mm_add_epi32(m[(g) & 3], _mm_load_si128((const __m128i *)&K256[4 * (g)])); \
		s1 = _mm_sha256rnds2_epu32(s1, s0, w_);                                          \
		if ((g) >= 3 && (g) < 15)                                                        \
			m[((g) + 1) & 3] = _mm_sha256msg2_epu32(                                 \
				_mm_add_epi32(m[((g) + 1) & 3],                                  \
				              _mm_alignr_epi8(m[(g) & 3], m[((g) - 1) & 3], 4)), \
				m[(g) & 3]);                                                     \
		w_ = _mm_shuffle_epi32(w_, 0x0E);                                                \
		s0 = _mm_sha256rnds2_epu32(s0, s1, w_);                                          \
		if ((g) >= 1 && (g) < 13)                                                        \
			m[((g) - 1) & 3] = _mm_sha256msg1_epu32(m[((g) - 1) & 3], m[(g) & 3]);   \
	} while (0)

FPNI_TARGET static void blocks1(__m128i st[2], const uint8_t *p, size_t nb)
{
	__m128i s0 = st[0], s1 = st[1];
	for (; nb; nb--, p += 64) {
		__m128i a0 = s0, a1 = s1, m[4];
#pragma GCC unroll 16
		for (int g = 0; g < 16; g++)
			GROUP(g, s0, s1, m, p);
		s0 = _mm_add_epi32(s0, a0);
		s1 = _mm_add_epi32(s1, a1);
	}
	st[0] = s0;
	st[1] = s1;
}

/* The two lanes' next nb blocks, interleaved (the whole point: see the top). */
FPNI_TARGET static void blocks2(__m128i st[2], const uint8_t *p, __m128i su[2], const uint8_t *q,
                                size_t nb)
{
	__m128i s0 = st[0], s1 = st[1], u0 = su[0], u1 = su[1];
	for (; nb; nb--, p += 64, q += 64) {
		__m128i a0 = s0, a1 = s1, b0 = u0, b1 = u1, m[4], n[4];
#pragma GCC unroll 16
		for (int g = 0; g < 16; g++) {
			GROUP(g, s0, s1, m, p);
			GROUP(g, u0, u1, n, q);
		}
		s0 = _mm_add_epi32(s0, a0);
		s1 = _mm_add_epi32(s1, a1);
		u0 = _mm_add_epi32(u0, b0);
		u1 = _mm_add_epi32(u1, b1);
	}
	st[0] = s0;
	st[1] = s1;
	su[0] = u0;
	su[1] = u1;
}

FPNI_TARGET static void lane_start(lane *l, int idx, const uint8_t *p, size_t len)
{
	__m128i t = _mm_shuffle_epi32(_mm_load_si128((const __m128i *)H256), 0xB1);    /* CDAB */
	__m128i s1 = _mm_shuffle_epi32(_mm_load_si128((const __m128i *)(H256 + 4)), 0x1B); /* EFGH */
	l->s[0] = _mm_alignr_epi8(t, s1, 8);      /* ABEF */
	l->s[1] = _mm_blend_epi16(s1, t, 0xF0);   /* CDGH */
	l->p = p;
	l->len = len;
	l->blocks = len / 64;
	l->idx = idx;
}

/* The lane's message has no full block left: its tail and the padding (one block, or
 * two when the length does not fit after the tail), then the digest. */
FPNI_TARGET static void lane_finish(lane *l, uint8_t out[32])
{
	uint8_t pad[128];
	size_t rem = l->len & 63, nb = rem + 9 <= 64 ? 1 : 2;
	uint64_t bits = (uint64_t)l->len * 8;
	memset(pad, 0, sizeof(pad));
	memcpy(pad, l->p, rem);
	pad[rem] = 0x80;
	for (int i = 0; i < 8; i++)
		pad[nb * 64 - 1 - i] = (uint8_t)(bits >> (8 * i));
	blocks1(l->s, pad, nb);
	__m128i t = _mm_shuffle_epi32(l->s[0], 0x1B);  /* FEBA */
	__m128i s1 = _mm_shuffle_epi32(l->s[1], 0xB1); /* DCHG */
	__m128i abcd = _mm_blend_epi16(t, s1, 0xF0);   /* DCBA */
	__m128i efgh = _mm_alignr_epi8(s1, t, 8);      /* HGFE */
	_mm_storeu_si128((__m128i *)out, _mm_shuffle_epi8(abcd, BSWAP_MASK));
	_mm_storeu_si128((__m128i *)(out + 16), _mm_shuffle_epi8(efgh, BSWAP_MASK));
	l->idx = -1;
}

FPNI_TARGET void fp_ni_many(int n, const uint8_t *const *p, const size_t *len,
                            uint8_t (*out)[FP_LEN])
{
	lane l[2] = {{.idx = -1}, {.idx = -1}};
	int next = 0;
	for (;;) {
		for (int k = 0; k < 2; k++) {
			/* A lane without a full block finishes; an idle lane takes the next
			 * message (which may be finished at once: shorter than a block). */
			while (l[k].idx >= 0 ? l[k].blocks == 0 : next < n) {
				if (l[k].idx >= 0)
					lane_finish(&l[k], out[l[k].idx]);
				else {
					lane_start(&l[k], next, p[next], len[next]);
					next++;
				}
			}
		}
		if (l[0].idx < 0 && l[1].idx < 0)
			return;
		if (l[0].idx < 0 || l[1].idx < 0) {
			/* The last message: alone. */
			lane *x = l[0].idx >= 0 ? &l[0] : &l[1];
			blocks1(x->s, x->p, x->blocks);
			x->p += 64 * x->blocks;
			x->blocks = 0;
			continue;
		}
		size_t both = l[0].blocks < l[1].blocks ? l[0].blocks : l[1].blocks;
		blocks2(l[0].s, l[0].p, l[1].s, l[1].p, both);
		for (int k = 0; k < 2; k++) {
			l[k].p += 64 * both;
			l[k].blocks -= both;
		}
	}
}

int fp_ni_usable(void)
{
	unsigned a, b, c, d;
	if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_SSSE3) || !(c & bit_SSE4_1))
		return 0;
	if (__get_cpuid_max(0, NULL) < 7)
		return 0;
	__cpuid_count(7, 0, a, b, c, d);
	return !!(b & bit_SHA);
}

#else /* not x86-64 with GCC/clang: OpenSSL only */

void fp_ni_many(int n, const uint8_t *const *p, const size_t *len, uint8_t (*out)[FP_LEN])
{
	(void)n;
	(void)p;
	(void)len;
	(void)out;
}

int fp_ni_usable(void)
{
	return 0;
}

#endif
