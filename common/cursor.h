/* common/cursor.h: a bounded byte cursor over a caller's buffer, for the codecs of
 * on-disk structures (storage/label.c) and wire frames (proto/wire.c, proto/repl.c).
 *
 * Integers are little-endian whatever the host. A cursor never touches a byte outside
 * [p, p + len): a read or write that does not fit sets a sticky error and does
 * nothing else (a read yields zeros, a write writes nothing), and every later call on
 * that cursor does the same, so a codec can run through all its fields and check
 * cur_err() once at the end. The first error stays: -EBADMSG for a read past the
 * end, -ENOSPC for a write past the capacity, -ENAMETOOLONG for a string longer than
 * its length prefix can say. No allocation; the cursor borrows the buffer.
 *
 * The struct is public so a cursor can live on the stack and start at an offset
 * ({buf, len, pos}); use the functions, not the fields, to move it.
 */
#ifndef BKS_CURSOR_H
#define BKS_CURSOR_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/endian.h"

typedef struct bks_rcur {
	const uint8_t *p;
	size_t len, pos; /* pos <= len always */
	int err;         /* 0 or the first error (sticky) */
} bks_rcur;

typedef struct bks_wcur {
	uint8_t *p;
	size_t len, pos;
	int err;
} bks_wcur;

static inline void cur_rinit(bks_rcur *c, const void *p, size_t len)
{
	c->p = p;
	c->len = len;
	c->pos = 0;
	c->err = 0;
}

static inline void cur_winit(bks_wcur *c, void *p, size_t len)
{
	c->p = p;
	c->len = len;
	c->pos = 0;
	c->err = 0;
}

/* Bytes not yet read (0 once in error). */
static inline size_t cur_left(const bks_rcur *c)
{
	return c->err ? 0 : c->len - c->pos;
}

static inline size_t cur_room(const bks_wcur *c)
{
	return c->err ? 0 : c->len - c->pos;
}

/* ---- reading ---- */

/* A view of the next n bytes, and the cursor past them; NULL (and the error) if
 * fewer are left. */
static inline const uint8_t *cur_take(bks_rcur *c, size_t n)
{
	if (c->err || n > c->len - c->pos) {
		if (!c->err)
			c->err = -EBADMSG;
		return NULL;
	}
	const uint8_t *q = c->p + c->pos;
	c->pos += n;
	return q;
}

static inline void cur_skip(bks_rcur *c, size_t n)
{
	(void)cur_take(c, n);
}

/* n bytes into dst; zeros in dst when they are not there. */
static inline void cur_get_bytes(bks_rcur *c, void *dst, size_t n)
{
	const uint8_t *q = cur_take(c, n);
	if (q)
		memcpy(dst, q, n);
	else if (n)
		memset(dst, 0, n);
}

static inline uint8_t cur_get8(bks_rcur *c)
{
	const uint8_t *q = cur_take(c, 1);
	return q ? q[0] : 0;
}
static inline uint16_t cur_get16(bks_rcur *c)
{
	const uint8_t *q = cur_take(c, 2);
	return q ? le_get16(q) : 0;
}
static inline uint32_t cur_get32(bks_rcur *c)
{
	const uint8_t *q = cur_take(c, 4);
	return q ? le_get32(q) : 0;
}
static inline uint64_t cur_get64(bks_rcur *c)
{
	const uint8_t *q = cur_take(c, 8);
	return q ? le_get64(q) : 0;
}

/* A u16-length-prefixed string: a view of its bytes (not NUL-terminated) in *s and
 * its length in *n; 0, or the error with *s = NULL and *n = 0. The content is the
 * caller's to check. */
static inline int cur_get_str16(bks_rcur *c, const char **s, size_t *n)
{
	uint16_t k = cur_get16(c);
	const uint8_t *q = cur_take(c, k);
	*s = (const char *)q;
	*n = q ? k : 0;
	return c->err;
}

/* ---- writing ---- */

static inline void cur_put_bytes(bks_wcur *c, const void *src, size_t n)
{
	if (c->err || n > c->len - c->pos) {
		if (!c->err)
			c->err = -ENOSPC;
		return;
	}
	if (n)
		memcpy(c->p + c->pos, src, n);
	c->pos += n;
}

/* n zero bytes (padding). */
static inline void cur_put_zero(bks_wcur *c, size_t n)
{
	if (c->err || n > c->len - c->pos) {
		if (!c->err)
			c->err = -ENOSPC;
		return;
	}
	memset(c->p + c->pos, 0, n);
	c->pos += n;
}

static inline void cur_put8(bks_wcur *c, uint8_t v)
{
	cur_put_bytes(c, &v, 1);
}
static inline void cur_put16(bks_wcur *c, uint16_t v)
{
	uint8_t b[2];
	le_put16(b, v);
	cur_put_bytes(c, b, 2);
}
static inline void cur_put32(bks_wcur *c, uint32_t v)
{
	uint8_t b[4];
	le_put32(b, v);
	cur_put_bytes(c, b, 4);
}
static inline void cur_put64(bks_wcur *c, uint64_t v)
{
	uint8_t b[8];
	le_put64(b, v);
	cur_put_bytes(c, b, 8);
}

/* The u16 length, then the bytes; -ENAMETOOLONG (nothing written) past 65535. */
static inline void cur_put_str16(bks_wcur *c, const void *s, size_t n)
{
	if (!c->err && n > UINT16_MAX)
		c->err = -ENAMETOOLONG;
	if (c->err)
		return;
	if (2 + n > c->len - c->pos) {
		c->err = -ENOSPC;
		return;
	}
	cur_put16(c, (uint16_t)n);
	cur_put_bytes(c, s, n);
}

#endif /* BKS_CURSOR_H */
