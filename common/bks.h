/* common/bks.h: small things every layer uses: error reports, aligned buffers,
 * checksums, UUIDs, clocks. No global state. */
#ifndef BKS_COMMON_H
#define BKS_COMMON_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* Internal functions return 0 or -errno. Where a person must be told why, the public
 * verbs also take an optional bks_err that receives a one-line message naming the
 * object and the reason ("disk /dev/sdc: 931 GiB, smaller than the 1863 GiB members"). */
typedef struct bks_err {
	int code;       /* negative errno, 0 when no error was recorded */
	char msg[320];
} bks_err;

/* Record an error (if e is not NULL) and return code, so `return bks_fail(e, -EIO,
 * "...")` reads naturally. code must be negative. */
int bks_fail(bks_err *e, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* The va_list form, for a function that takes a format of its own and records it. */
int bks_vfail(bks_err *e, int code, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));
/* The same, with where the problem is in front: "WHERE: message" (a file and line,
 * a byte offset, a message type), for wrappers that add context to every error. */
int bks_vfail_in(bks_err *e, int code, const char *where, const char *fmt, va_list ap)
	__attribute__((format(printf, 4, 0)));
/* The message of e, or strerror(-code) when no message was recorded. */
const char *bks_errmsg(const bks_err *e, int code);
void bks_err_clear(bks_err *e);

/* Zeroed memory aligned to align (a power of two); free with free(). NULL on failure. */
void *bks_alloc_aligned(size_t align, size_t size);

uint64_t bks_xxh3(const void *p, size_t len);
/* Length of the valid UTF-8 sequence at p within avail bytes (RFC 3629), or 0. */
size_t bks_utf8_len(const unsigned char *p, size_t avail);
uint64_t bks_now_ns(void); /* CLOCK_MONOTONIC */
uint64_t bks_wall_ns(void); /* CLOCK_REALTIME, for timestamps written to disk */

/* Fill buf from the kernel's CSPRNG. Returns 0 or -errno. */
int bks_random(void *buf, size_t len);

#define BKS_UUID_LEN 16
#define BKS_UUID_STRLEN 37
void bks_uuid_fmt(const uint8_t uuid[BKS_UUID_LEN], char out[BKS_UUID_STRLEN]);
int bks_uuid_is_zero(const uint8_t uuid[BKS_UUID_LEN]);

/* Human sizes: "1.5 GiB". Returns out. */
char *bks_fmt_bytes(uint64_t n, char *out, size_t cap);

/* Deterministic PRNG for tests and benchmarks (splitmix64/xoshiro256**). */
typedef struct bks_rng { uint64_t s[4]; } bks_rng;
void bks_rng_seed(bks_rng *r, uint64_t seed);
uint64_t bks_rng_next(bks_rng *r);
uint64_t bks_rng_below(bks_rng *r, uint64_t n); /* uniform in [0, n), n > 0 */
void bks_rng_fill(bks_rng *r, void *buf, size_t len);

#define BKS_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define BKS_MIN(a, b) ((a) < (b) ? (a) : (b))
#define BKS_MAX(a, b) ((a) > (b) ? (a) : (b))
#define BKS_ROUND_UP(x, a) (((x) + (a) - 1) / (a) * (a))

/* Always-on check for states that mean corruption or a broken invariant: aborts with
 * the location, in release builds too. assert() is for programmer mistakes only. */
#define BKS_PANIC_IF(cond, ...)                                                   \
	do {                                                                          \
		if (__builtin_expect(!!(cond), 0))                                        \
			bks_panic(__FILE__, __LINE__, __VA_ARGS__);                           \
	} while (0)
_Noreturn void bks_panic(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif /* BKS_COMMON_H */
