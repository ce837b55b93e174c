/* dedup/fp.h: chunk fingerprints: SHA-256 through OpenSSL's EVP (which uses the
 * SHA-NI instructions where the CPU has them), and for several chunks at once
 * (fp_compute_many) two of them interleaved on the SHA-NI instructions where the CPU
 * has them (dedup/fp_ni.c: same digests, ~1.8x the rate). A fingerprint is a chunk's identity;
 * xxh3 is never used for identity, so a forged collision cannot make one client's
 * chunk stand in for another's. */
#ifndef BKS_FP_H
#define BKS_FP_H

#include <stddef.h>
#include <stdint.h>

#include "dedup/segment.h" /* FP_LEN */

typedef struct fp_ctx fp_ctx;

int fp_ctx_new(fp_ctx **out); /* one per thread */
void fp_ctx_free(fp_ctx *c);  /* accepts NULL */
/* out = SHA-256(data). Returns 0, or -EIO if OpenSSL fails. */
int fp_compute(fp_ctx *c, const void *data, size_t len, uint8_t out[FP_LEN]);
/* out[i] = SHA-256(p[i][0..len[i])) for i < n; 0, or -EIO (the OpenSSL path). On a
 * CPU with the SHA extensions, pairs of messages go through them interleaved; else,
 * or when BKS_FP_IMPL=openssl was set when the context was made (tests), one
 * fp_compute each. */
int fp_compute_many(fp_ctx *c, int n, const uint8_t *const *p, const size_t *len,
                    uint8_t (*out)[FP_LEN]);
/* Hex form for logs: 64 chars + NUL. */
void fp_hex(const uint8_t fp[FP_LEN], char out[2 * FP_LEN + 1]);

#endif
