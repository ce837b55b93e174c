/* proto/xdr.c: see xdr.h. */
#include <config.h>

#include "proto/xdr.h"

#include <errno.h>
#include <string.h>

static size_t pad4(size_t n)
{
	return (4 - (n & 3)) & 3;
}

size_t xdr_opaque_size(size_t n)
{
	return 4 + n + pad4(n);
}

void xdr_dec_init(xdr_dec *d, const void *buf, size_t len)
{
	d->p = buf;
	d->end = d->p + len;
	d->err = 0;
}

size_t xdr_dec_left(const xdr_dec *d)
{
	return d->err ? 0 : (size_t)(d->end - d->p);
}

/* n bytes of input, or NULL (and the sticky error). */
static const uint8_t *take(xdr_dec *d, size_t n)
{
	if (d->err)
		return NULL;
	if ((size_t)(d->end - d->p) < n) {
		d->err = -EBADMSG;
		return NULL;
	}
	const uint8_t *p = d->p;
	d->p += n;
	return p;
}

uint32_t xdr_get_u32(xdr_dec *d)
{
	const uint8_t *p = take(d, 4);
	if (!p)
		return 0;
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

uint64_t xdr_get_u64(xdr_dec *d)
{
	uint64_t hi = xdr_get_u32(d);
	return hi << 32 | xdr_get_u32(d);
}

int xdr_get_bool(xdr_dec *d)
{
	uint32_t v = xdr_get_u32(d);
	if (v > 1 && !d->err)
		d->err = -EBADMSG;
	return d->err ? 0 : (int)v;
}

/* Padding after n bytes: present and zero. */
static void skip_pad(xdr_dec *d, size_t n)
{
	size_t k = pad4(n);
	const uint8_t *p = take(d, k);
	for (size_t i = 0; p && i < k; i++)
		if (p[i]) {
			d->err = -EBADMSG;
			return;
		}
}

void xdr_get_fixed(xdr_dec *d, void *out, size_t n)
{
	const uint8_t *p = take(d, n);
	if (!p) {
		memset(out, 0, n);
		return;
	}
	memcpy(out, p, n);
	skip_pad(d, n);
}

const uint8_t *xdr_get_opaque(xdr_dec *d, size_t max, uint32_t *len)
{
	uint32_t n = xdr_get_u32(d);
	*len = 0;
	if (d->err)
		return NULL;
	if (n > max) {
		d->err = -E2BIG;
		return NULL;
	}
	const uint8_t *p = take(d, n);
	skip_pad(d, n);
	if (d->err)
		return NULL;
	*len = n;
	return p;
}

size_t xdr_get_string(xdr_dec *d, char *out, size_t max)
{
	uint32_t n;
	const uint8_t *p = xdr_get_opaque(d, max, &n);
	out[0] = 0;
	if (!p)
		return 0;
	if (memchr(p, 0, n)) {
		d->err = -EBADMSG;
		return 0;
	}
	memcpy(out, p, n);
	out[n] = 0;
	return n;
}

void xdr_enc_init(xdr_enc *e, void *buf, size_t cap)
{
	e->buf = buf;
	e->len = 0;
	e->cap = cap;
	e->err = 0;
}

uint8_t *xdr_put_space(xdr_enc *e, size_t n)
{
	size_t k = n + pad4(n);
	if (e->err || e->cap - e->len < k) {
		e->err = -ENOBUFS;
		return NULL;
	}
	uint8_t *p = e->buf + e->len;
	memset(p + n, 0, k - n);
	e->len += k;
	return p;
}

void xdr_put_u32(xdr_enc *e, uint32_t v)
{
	uint8_t *p = xdr_put_space(e, 4);
	if (!p)
		return;
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

void xdr_put_u64(xdr_enc *e, uint64_t v)
{
	xdr_put_u32(e, (uint32_t)(v >> 32));
	xdr_put_u32(e, (uint32_t)v);
}

void xdr_put_fixed(xdr_enc *e, const void *p, size_t n)
{
	uint8_t *q = xdr_put_space(e, n);
	if (q && n)
		memcpy(q, p, n);
}

void xdr_put_opaque(xdr_enc *e, const void *p, uint32_t n)
{
	xdr_put_u32(e, n);
	xdr_put_fixed(e, p, n);
}

void xdr_put_string(xdr_enc *e, const char *s)
{
	xdr_put_opaque(e, s, (uint32_t)strlen(s));
}
