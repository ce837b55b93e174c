/* dedup/fp.c: see fp.h. */
#include <config.h>

#include "dedup/fp.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dedup/fp_int.h"

struct fp_ctx {
	EVP_MD_CTX *md;
	const EVP_MD *sha256;
	int ni;                      /* fp_compute_many on the two-lane SHA-NI path */
};

int fp_ctx_new(fp_ctx **out)
{
	fp_ctx *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->md = EVP_MD_CTX_new();
	/* Fetch the implementation once: EVP_sha256() per call costs a lookup. */
	c->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	if (!c->md || !c->sha256) {
		fp_ctx_free(c);
		return -ENOMEM;
	}
	/* Read once per context, never per call (the hook lets tests compare both). */
	const char *impl = getenv("BKS_FP_IMPL");
	c->ni = fp_ni_usable() && !(impl && strcmp(impl, "openssl") == 0);
	*out = c;
	return 0;
}

void fp_ctx_free(fp_ctx *c)
{
	if (!c)
		return;
	EVP_MD_CTX_free(c->md);
	EVP_MD_free((EVP_MD *)c->sha256);
	free(c);
}

int fp_compute(fp_ctx *c, const void *data, size_t len, uint8_t out[FP_LEN])
{
	unsigned int n = 0;
	if (EVP_DigestInit_ex(c->md, c->sha256, NULL) != 1 ||
	    EVP_DigestUpdate(c->md, data, len) != 1 || EVP_DigestFinal_ex(c->md, out, &n) != 1 ||
	    n != FP_LEN)
		return -EIO;
	return 0;
}

int fp_compute_many(fp_ctx *c, int n, const uint8_t *const *p, const size_t *len,
                    uint8_t (*out)[FP_LEN])
{
	if (c->ni && n > 1) {
		fp_ni_many(n, p, len, out);
		return 0;
	}
	for (int i = 0; i < n; i++) {
		int r = fp_compute(c, p[i], len[i], out[i]);
		if (r < 0)
			return r;
	}
	return 0;
}

void fp_hex(const uint8_t fp[FP_LEN], char out[2 * FP_LEN + 1])
{
	for (int i = 0; i < FP_LEN; i++)
		snprintf(out + 2 * i, 3, "%02x", fp[i]);
}
