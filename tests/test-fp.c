/* tests/test-fp.c: chunk fingerprints against OpenSSL's SHA-256 computed here
 * directly: fp_compute_many on the two-lane SHA-NI path (dedup/fp_ni.c) and on the
 * OpenSSL path (BKS_FP_IMPL=openssl), for every padding class of length (a tail that
 * leaves room for the length in its block or not, whole blocks), batches whose
 * messages end in every order, unaligned buffers; and the ingest engine's threads,
 * which claim spans in batches, giving each span its own digest. A wrong
 * fingerprint would make one chunk stand in for another: the stored data's
 * identity. */
#include <config.h>

#include "common/bks.h"
#include "dedup/fp.h"
#include "dedup/fp_int.h"
#include "dedup/ingest.h"
#include "tests/testutil.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUF (1u << 20)

static void ref(const uint8_t *p, size_t len, uint8_t out[FP_LEN])
{
	unsigned n = 0;
	BKS_PANIC_IF(EVP_Digest(p, len, out, &n, EVP_sha256(), NULL) != 1 || n != FP_LEN,
	             "EVP_Digest");
}

static uint64_t rng = 88172645463325252ull;
static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* Lengths around every block boundary that changes the padding. */
static const size_t edge[] = {0, 1, 3, 54, 55, 56, 57, 63, 64, 65, 118, 119, 120, 121, 127,
                              128, 129, 191, 192, 4095, 4096, 4097, 16384, 65535, 65536};
#define NEDGE (sizeof(edge) / sizeof(edge[0]))

/* n messages of the given lengths at random offsets of buf through fp_compute_many;
 * returns how many digests differ from OpenSSL's. */
static int batch(fp_ctx *c, const uint8_t *buf, int n, const size_t *len)
{
	const uint8_t *p[16];
	uint8_t got[16][FP_LEN], want[FP_LEN];
	int bad = 0;
	for (int i = 0; i < n; i++)
		p[i] = buf + next_rand() % (BUF - len[i] + 1);
	if (fp_compute_many(c, n, p, len, got) < 0)
		return n;
	for (int i = 0; i < n; i++) {
		ref(p[i], len[i], want);
		bad += memcmp(got[i], want, FP_LEN) != 0;
	}
	return bad;
}

static void run(const char *what, const uint8_t *buf)
{
	fp_ctx *c = NULL;
	CHECK(fp_ctx_new(&c) == 0, "%s: fp_ctx_new", what);
	if (!c)
		return;
	/* Known answer: SHA-256("abc"), alone and as both lanes. */
	static const uint8_t abc_fp[FP_LEN] = {
		0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
		0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
	const uint8_t *ap[2] = {(const uint8_t *)"abc", (const uint8_t *)"abc"};
	size_t al[2] = {3, 3};
	uint8_t ao[2][FP_LEN];
	CHECK(fp_compute_many(c, 2, ap, al, ao) == 0 && !memcmp(ao[0], abc_fp, FP_LEN) &&
	      !memcmp(ao[1], abc_fp, FP_LEN), "%s: SHA-256(\"abc\") on both lanes", what);

	/* Every pair of edge lengths, both orders (which lane finishes first). */
	int bad = 0, tried = 0;
	for (size_t i = 0; i < NEDGE; i++)
		for (size_t j = 0; j < NEDGE; j++) {
			size_t l[2] = {edge[i], edge[j]};
			bad += batch(c, buf, 2, l);
			tried += 2;
		}
	CHECK(bad == 0, "%s: %d of %d digests of edge-length pairs differ", what, bad, tried);

	/* Batches of 1..16 random lengths (chunk-like and tiny): lanes refilled mid-way. */
	bad = tried = 0;
	for (int round = 0; round < 3000; round++) {
		int n = 1 + (int)(next_rand() % 16);
		size_t l[16];
		for (int i = 0; i < n; i++)
			l[i] = next_rand() % 4 == 0 ? next_rand() % 200
			                            : 4096 + next_rand() % (65536 - 4096 + 1);
		bad += batch(c, buf, n, l);
		tried += n;
	}
	CHECK(bad == 0, "%s: %d of %d digests of random batches differ", what, bad, tried);

	/* fp_compute (one message) still agrees. */
	uint8_t one[FP_LEN], want[FP_LEN];
	CHECK(fp_compute(c, buf + 7, 20000, one) == 0 && (ref(buf + 7, 20000, want), 1) &&
	      !memcmp(one, want, FP_LEN), "%s: fp_compute", what);
	fp_ctx_free(c);
}

/* The engine's threads claim published spans in batches while they are published:
 * each span must get its own digest, whatever the claims were. */
static void engine(const uint8_t *buf)
{
	ingest *g = NULL;
	CHECK(ingest_new(-1, 65536, 2, &g) == 0, "ingest_new");
	if (!g)
		return;
	int bad = 0, total = 0;
	for (int round = 0; round < 20; round++) {
		ingest_begin(g);
		size_t off = 0;
		while (!ingest_full(g)) {
			uint32_t len = (uint32_t)(next_rand() % 3 == 0 ? next_rand() % 100
			                                               : 2048 + next_rand() % 30000);
			if (off + len > BUF)
				break;
			ingest_add(g, buf + off, len);
			off += len;
		}
		CHECK(ingest_hash_wait(g) == 0, "ingest_hash_wait");
		for (int i = 0; i < ingest_count(g); i++) {
			ing_span *sp = ingest_span(g, i);
			uint8_t want[FP_LEN];
			ref(sp->p, sp->len, want);
			bad += memcmp(sp->fp, want, FP_LEN) != 0;
			total++;
		}
	}
	CHECK(bad == 0 && total > 1000, "ingest: %d of %d spans' fingerprints differ", bad, total);
	ingest_free(g);
}

int main(void)
{
	uint8_t *buf = malloc(BUF);
	BKS_PANIC_IF(!buf, "out of memory");
	for (size_t i = 0; i < BUF; i++)
		buf[i] = (uint8_t)(next_rand() >> 32);
	if (fp_ni_usable())
		run("two-lane SHA-NI", buf);
	else
		printf("this CPU has no SHA extensions: the two-lane path is not tested here\n");
	engine(buf);
	setenv("BKS_FP_IMPL", "openssl", 1);
	run("OpenSSL", buf);
	engine(buf);
	free(buf);
	return tu_finish();
}
