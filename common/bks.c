/* common/bks.c: see bks.h. */
#include <config.h>

#include "common/bks.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "common/xxh.h"

int bks_vfail_in(bks_err *e, int code, const char *where, const char *fmt, va_list ap)
{
	if (e) {
		int n = where ? snprintf(e->msg, sizeof(e->msg), "%s: ", where) : 0;
		size_t at = n > 0 ? BKS_MIN((size_t)n, sizeof(e->msg) - 1) : 0;
		vsnprintf(e->msg + at, sizeof(e->msg) - at, fmt, ap);
		e->code = code;
	}
	return code;
}

int bks_vfail(bks_err *e, int code, const char *fmt, va_list ap)
{
	return bks_vfail_in(e, code, NULL, fmt, ap);
}

int bks_fail(bks_err *e, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	bks_vfail(e, code, fmt, ap);
	va_end(ap);
	return code;
}

const char *bks_errmsg(const bks_err *e, int code)
{
	if (e && e->code && e->msg[0])
		return e->msg;
	return strerror(code < 0 ? -code : code);
}

void bks_err_clear(bks_err *e)
{
	if (e) {
		e->code = 0;
		e->msg[0] = '\0';
	}
}

void *bks_alloc_aligned(size_t align, size_t size)
{
	void *p = NULL;
	if (size == 0)
		size = align;
	if (posix_memalign(&p, align, size) != 0)
		return NULL;
	memset(p, 0, size);
	return p;
}

uint64_t bks_xxh3(const void *p, size_t len)
{
	return XXH3_64bits(p, len);
}

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t bks_now_ns(void) { return clock_ns(CLOCK_MONOTONIC); }
uint64_t bks_wall_ns(void) { return clock_ns(CLOCK_REALTIME); }

int bks_random(void *buf, size_t len)
{
	uint8_t *p = buf;
	while (len > 0) {
		ssize_t n = getrandom(p, len, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

void bks_uuid_fmt(const uint8_t u[BKS_UUID_LEN], char out[BKS_UUID_STRLEN])
{
	snprintf(out, BKS_UUID_STRLEN,
	         "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
	         u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11],
	         u[12], u[13], u[14], u[15]);
}

int bks_uuid_is_zero(const uint8_t u[BKS_UUID_LEN])
{
	for (int i = 0; i < BKS_UUID_LEN; i++)
		if (u[i])
			return 0;
	return 1;
}

char *bks_fmt_bytes(uint64_t n, char *out, size_t cap)
{
	static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
	double v = (double)n;
	size_t u = 0;
	while (v >= 1024.0 && u + 1 < BKS_ARRAY_SIZE(unit)) {
		v /= 1024.0;
		u++;
	}
	if (u == 0)
		snprintf(out, cap, "%llu B", (unsigned long long)n);
	else
		snprintf(out, cap, "%.1f %s", v, unit[u]);
	return out;
}

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

void bks_rng_seed(bks_rng *r, uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&seed);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t bks_rng_next(bks_rng *r)
{
	uint64_t *s = r->s;
	uint64_t result = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

uint64_t bks_rng_below(bks_rng *r, uint64_t n)
{
	return (uint64_t)(((unsigned __int128)bks_rng_next(r) * n) >> 64);
}

void bks_rng_fill(bks_rng *r, void *buf, size_t len)
{
	uint8_t *p = buf;
	while (len >= 8) {
		uint64_t v = bks_rng_next(r);
		memcpy(p, &v, 8);
		p += 8;
		len -= 8;
	}
	if (len) {
		uint64_t v = bks_rng_next(r);
		memcpy(p, &v, len);
	}
}

void bks_panic(const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "bkstor: PANIC at %s:%d: ", file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

/* Length of the valid UTF-8 sequence at p (RFC 3629: no overlongs, no surrogates,
 * nothing above U+10FFFF) within avail bytes, or 0. Stops at the first bad byte, so
 * with avail SIZE_MAX it never reads past a NUL. */
size_t bks_utf8_len(const unsigned char *p, size_t avail)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t n;

	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		n = 2;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		n = 3;
		if (p[0] == 0xe0)
			lo = 0xa0;
		if (p[0] == 0xed)
			hi = 0x9f;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		n = 4;
		if (p[0] == 0xf0)
			lo = 0x90;
		if (p[0] == 0xf4)
			hi = 0x8f;
	} else {
		return 0;
	}
	if (avail < n || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	return n;
}
