/* fuzz-jsonp: libFuzzer target for the strict JSON parser (the bytes of every API
 * request).
 * Properties: parsing never crashes, leaks or reads out of bounds; a refusal names an
 * offset inside the input; an accepted tree keeps its limits (depth, values, string
 * lengths), its strings are NUL-terminated at their length, its objects have unique
 * keys that jsonp_get finds; the tree written back as JSON parses to an equal tree;
 * and what small limits accept, the default limits accept too. */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/jsonp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const jsonp_limits small = {.max_depth = 12, .max_values = 2000, .max_string = 512};

struct out {
	char *p;
	size_t len, cap;
};

static void put(struct out *o, const void *s, size_t n)
{
	if (o->cap - o->len < n) {
		size_t cap = o->cap ? o->cap : 256;
		while (cap - o->len < n)
			cap *= 2;
		o->p = realloc(o->p, cap);
		if (!o->p)
			abort();
		o->cap = cap;
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
}

static void put_str(struct out *o, const char *s, size_t n)
{
	put(o, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[8];
		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			put(o, esc, 2);
		} else if (c < 0x20) {
			snprintf(esc, sizeof(esc), "\\u%04x", c);
			put(o, esc, 6);
		} else {
			put(o, &s[i], 1);
		}
	}
	put(o, "\"", 1);
}

static void check_str(const char *s, size_t len)
{
	if (!s || s[len] != '\0' || len > small.max_string)
		abort();
}

/* Walk v, checking the invariants, writing it as JSON to o; count values. */
static void walk(const jsonp_val *v, unsigned depth, size_t *nvalues, struct out *o)
{
	char num[64];
	size_t len;
	int64_t i;
	uint64_t u;
	double d;
	int b;

	if (++*nvalues > small.max_values || depth > small.max_depth)
		abort();
	switch (jsonp_type(v)) {
	case JSONP_NULL:
		if (!jsonp_is_null(v))
			abort();
		put(o, "null", 4);
		break;
	case JSONP_BOOL:
		if (jsonp_bool(v, &b) != 0)
			abort();
		put(o, b ? "true" : "false", b ? 4 : 5);
		break;
	case JSONP_NUMBER:
		if (jsonp_double(v, &d) != 0)
			abort();
		if (jsonp_int(v, &i) == 0)
			snprintf(num, sizeof(num), "%" PRId64, i);
		else if (jsonp_uint(v, &u) == 0)
			snprintf(num, sizeof(num), "%" PRIu64, u);
		else
			snprintf(num, sizeof(num), "%.17g", d);
		put(o, num, strlen(num));
		break;
	case JSONP_STRING: {
		const char *s = jsonp_str(v, &len);
		check_str(s, len);
		put_str(o, s, len);
		break;
	}
	case JSONP_ARRAY:
	case JSONP_OBJECT: {
		int obj = jsonp_type(v) == JSONP_OBJECT;
		size_t n = jsonp_len(v);
		put(o, obj ? "{" : "[", 1);
		for (size_t k = 0; k < n; k++) {
			const jsonp_val *m = jsonp_at(v, k);
			if (!m)
				abort();
			if (k)
				put(o, ",", 1);
			if (obj) {
				const char *key = jsonp_key(m, &len);
				check_str(key, len);
				/* unique keys; jsonp_get finds a key without NULs */
				if (n <= 64)
					for (size_t j = 0; j < k; j++) {
						size_t l2;
						const char *k2 = jsonp_key(jsonp_at(v, j), &l2);
						if (l2 == len && !memcmp(k2, key, len))
							abort();
					}
				if (strlen(key) == len && jsonp_get(v, key) != m)
					abort();
				put_str(o, key, len);
				put(o, ":", 1);
			} else if (jsonp_key(m, NULL)) {
				abort();
			}
			walk(m, depth + 1, nvalues, o);
		}
		if (jsonp_at(v, n))
			abort();
		put(o, obj ? "}" : "]", 1);
		break;
	}
	default:
		abort();
	}
}

/* Two trees are equal: same shapes, strings and keys byte for byte, integers that
 * fit 64 bits exactly, other numbers as doubles. */
static int same(const jsonp_val *a, const jsonp_val *b)
{
	size_t la, lb;
	if (jsonp_type(a) != jsonp_type(b))
		return 0;
	switch (jsonp_type(a)) {
	case JSONP_BOOL: {
		int x, y;
		jsonp_bool(a, &x);
		jsonp_bool(b, &y);
		return x == y;
	}
	case JSONP_NUMBER: {
		int64_t i, j;
		uint64_t u, w;
		double x, y;
		int ri = jsonp_int(a, &i), ru = jsonp_uint(a, &u);
		if (ri == 0)
			return jsonp_int(b, &j) == 0 && i == j;
		if (ru == 0)
			return jsonp_uint(b, &w) == 0 && u == w;
		jsonp_double(a, &x);
		jsonp_double(b, &y);
		return x == y;
	}
	case JSONP_STRING: {
		const char *x = jsonp_str(a, &la), *y = jsonp_str(b, &lb);
		return la == lb && !memcmp(x, y, la);
	}
	case JSONP_ARRAY:
	case JSONP_OBJECT:
		if (jsonp_len(a) != jsonp_len(b))
			return 0;
		for (size_t k = 0; k < jsonp_len(a); k++) {
			const char *x = jsonp_key(jsonp_at(a, k), &la);
			const char *y = jsonp_key(jsonp_at(b, k), &lb);
			if (!x != !y || (x && (la != lb || memcmp(x, y, la))))
				return 0;
			if (!same(jsonp_at(a, k), jsonp_at(b, k)))
				return 0;
		}
		return 1;
	default:
		return 1;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	jsonp *d = NULL, *d2 = NULL;
	bks_err e = {0};
	size_t off = (size_t)-1, nvalues = 0;
	struct out o = {0};

	int r = jsonp_parse(data, size, &small, &d, &off, &e);
	if (r < 0) {
		if ((r != -EINVAL && r != -E2BIG && r != -ENOMEM) || off > size || !e.msg[0] ||
		    d)
			abort();
		return 0;
	}
	walk(jsonp_root(d), 0, &nvalues, &o);
	if (jsonp_parse(o.p, o.len, &small, &d2, NULL, &e) != 0)
		abort(); /* what we wrote must parse within the same limits */
	if (!same(jsonp_root(d), jsonp_root(d2)))
		abort();
	jsonp_free(d2);
	if (jsonp_parse(data, size, NULL, &d2, NULL, &e) != 0 ||
	    !same(jsonp_root(d), jsonp_root(d2)))
		abort();
	jsonp_free(d2);
	jsonp_free(d);
	free(o.p);
	return 0;
}
