/* dedup/fp_int.h: inside dedup/fp.c: the two-lane SHA-NI path (dedup/fp_ni.c). */
#ifndef BKS_FP_INT_H
#define BKS_FP_INT_H

#include <stddef.h>
#include <stdint.h>

#include "dedup/fp.h"

/* 1 when this CPU has the SHA extensions (and SSSE3, SSE4.1) fp_ni_many needs. */
int fp_ni_usable(void);
/* out[i] = SHA-256(p[i][0..len[i])) for i < n. Only where fp_ni_usable(). */
void fp_ni_many(int n, const uint8_t *const *p, const size_t *len, uint8_t (*out)[FP_LEN]);

#endif
