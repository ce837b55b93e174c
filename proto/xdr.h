/* proto/xdr.h: XDR (RFC 4506) over a bounded byte cursor, for ONC RPC, NFSv3, MOUNT
 * and the portmapper. Pure: no I/O, no allocation.
 *
 * Errors are sticky: a decoder that runs past the end of its input, or meets a
 * length above the caller's limit, sets d->err and returns zeros from then on, so a
 * caller decodes a whole structure and checks once. An encoder that runs out of room
 * does the same with e->err. Everything is big-endian and padded to 4 bytes; padding
 * bytes must be zero on input (a sloppy peer is rare; a fuzzer's garbage is not).
 */
#ifndef BKS_XDR_H
#define BKS_XDR_H

#include <stddef.h>
#include <stdint.h>

typedef struct xdr_dec {
	const uint8_t *p, *end;
	int err;                 /* 0, or -EBADMSG (truncated, bad padding, bad bool),
	                          * -E2BIG (a length above its limit) */
} xdr_dec;

void xdr_dec_init(xdr_dec *d, const void *buf, size_t len);
size_t xdr_dec_left(const xdr_dec *d);
uint32_t xdr_get_u32(xdr_dec *d);
uint64_t xdr_get_u64(xdr_dec *d);
/* A bool must be 0 or 1. */
int xdr_get_bool(xdr_dec *d);
/* n bytes (plus padding) into out. */
void xdr_get_fixed(xdr_dec *d, void *out, size_t n);
/* A variable-length opaque of at most max bytes: points into the input (NULL and
 * *len 0 after an error). */
const uint8_t *xdr_get_opaque(xdr_dec *d, size_t max, uint32_t *len);
/* A string of at most max bytes into out (cap >= max + 1), NUL-terminated; a string
 * holding a NUL byte is refused (-EBADMSG). Returns its length. */
size_t xdr_get_string(xdr_dec *d, char *out, size_t max);

typedef struct xdr_enc {
	uint8_t *buf;
	size_t len, cap;
	int err;                 /* 0, or -ENOBUFS */
} xdr_enc;

void xdr_enc_init(xdr_enc *e, void *buf, size_t cap);
void xdr_put_u32(xdr_enc *e, uint32_t v);
void xdr_put_u64(xdr_enc *e, uint64_t v);
void xdr_put_fixed(xdr_enc *e, const void *p, size_t n);
void xdr_put_opaque(xdr_enc *e, const void *p, uint32_t n); /* length, bytes, padding */
void xdr_put_string(xdr_enc *e, const char *s);
/* Reserve n bytes (plus padding) to be filled later, e.g. READ data read straight
 * into the reply: returns where they go, or NULL (and e->err). */
uint8_t *xdr_put_space(xdr_enc *e, size_t n);
/* Bytes an opaque of n bytes takes on the wire (length word + padded bytes). */
size_t xdr_opaque_size(size_t n);

#endif /* BKS_XDR_H */
