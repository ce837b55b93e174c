/* common/jsonp.c: see jsonp.h.
 *
 * The parser is iterative: an explicit stack of open containers (bounded by
 * max_depth), so no input can exhaust the C stack. Members of open containers wait
 * in a scratch array; when a container closes they are copied into the arena as one
 * contiguous run, which makes jsonp_at() O(1) and keeps each container's members
 * together. Duplicate keys are found when their object closes (pairwise for small
 * objects, by sorting for large ones, so a 100000-key object costs n log n, not n^2).
 */
#include <config.h>

#include "common/jsonp.h"

#include <errno.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { NUM_I64, NUM_U64, NUM_BIGINT, NUM_REAL };

struct jsonp_val {
	const char *key; /* object members: the decoded key, NUL-terminated */
	size_t keylen;
	union {
		const char *s;         /* STRING: decoded, NUL-terminated */
		const jsonp_val *kids; /* ARRAY, OBJECT: len of them, contiguous */
		int64_t i;             /* NUM_I64 */
		uint64_t u;            /* NUM_U64 */
		double d;              /* NUM_BIGINT, NUM_REAL */
		int b;                 /* BOOL */
	} u;
	size_t len;    /* STRING: bytes; ARRAY, OBJECT: members */
	uint8_t kind;  /* jsonp_kind */
	uint8_t num;   /* NUMBER: NUM_* */
};

/* Arena blocks, chained, freed together by jsonp_free. Allocations are 8-aligned
 * (the header is 24 bytes and malloc returns 16-aligned memory). */
struct ablock {
	struct ablock *next;
	size_t used, cap;
	unsigned char data[];
};

#define ARENA_FIRST 4096
#define ARENA_MAX_BLOCK (1u << 20)

struct jsonp {
	struct ablock *blocks;
	jsonp_val root;
};

static void *arena_alloc(jsonp *d, size_t n)
{
	struct ablock *b = d->blocks;
	n = (n + 7) & ~(size_t)7;
	if (!b || b->cap - b->used < n) {
		size_t cap = b ? BKS_MIN(b->cap * 2, (size_t)ARENA_MAX_BLOCK) : ARENA_FIRST;
		if (cap < n)
			cap = n;
		b = malloc(sizeof(*b) + cap);
		if (!b)
			return NULL;
		b->next = d->blocks;
		b->used = 0;
		b->cap = cap;
		d->blocks = b;
	}
	void *p = b->data + b->used;
	b->used += n;
	return p;
}

void jsonp_free(jsonp *d)
{
	if (!d)
		return;
	struct ablock *b = d->blocks;
	while (b) {
		struct ablock *next = b->next;
		free(b);
		b = next;
	}
	free(d);
}

/* ---- parser ---------------------------------------------------------------- */

struct frame {
	uint8_t kind;     /* JSONP_ARRAY or JSONP_OBJECT */
	size_t start;     /* its first member in the pending array */
	const char *key;  /* objects: the key of the member being parsed */
	size_t keylen, keyoff;
};

struct pending {
	jsonp_val v;
	size_t keyoff; /* where its key starts, for the duplicate-key message */
};

struct parser {
	const unsigned char *p;
	size_t len, pos;
	jsonp_limits lim;
	jsonp *d;
	struct frame *stack;
	unsigned depth, stack_cap;
	struct pending *pend;
	size_t npend, pend_cap;
	char *sbuf; /* string and number scratch */
	size_t scap;
	size_t nvalues;
	size_t err_off;
	bks_err *e;
};

__attribute__((format(printf, 4, 5)))
static int fail(struct parser *ps, size_t off, int code, const char *fmt, ...)
{
	char where[32];
	va_list ap;
	snprintf(where, sizeof(where), "offset %zu", off);
	ps->err_off = off;
	va_start(ap, fmt);
	bks_vfail_in(ps->e, code, where, fmt, ap);
	va_end(ap);
	return code;
}

static int nomem(struct parser *ps)
{
	return fail(ps, ps->pos, -ENOMEM, "out of memory");
}

/* "end of input", "'x'" or "byte 0x01": what was found at off. */
static const char *found(const struct parser *ps, size_t off, char buf[16])
{
	if (off >= ps->len)
		return "end of input";
	unsigned char c = ps->p[off];
	if (c > 0x20 && c < 0x7f)
		snprintf(buf, 16, "'%c'", c);
	else
		snprintf(buf, 16, "byte 0x%02x", c);
	return buf;
}

static void skip_ws(struct parser *ps)
{
	while (ps->pos < ps->len) {
		unsigned char c = ps->p[ps->pos];
		if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
			break;
		ps->pos++;
	}
}

static int peek(const struct parser *ps)
{
	return ps->pos < ps->len ? ps->p[ps->pos] : -1;
}

static int is_digit(int c)
{
	return c >= '0' && c <= '9';
}


/* Room for need more bytes in the scratch buffer. */
static int sbuf_reserve(struct parser *ps, size_t used, size_t need)
{
	if (ps->scap - used >= need)
		return 0;
	size_t cap = ps->scap ? ps->scap : 256;
	while (cap - used < need)
		cap *= 2;
	char *b = realloc(ps->sbuf, cap);
	if (!b)
		return nomem(ps);
	ps->sbuf = b;
	ps->scap = cap;
	return 0;
}

/* Four hex digits at off, or -1. */
static long hex4(const struct parser *ps, size_t off)
{
	long v = 0;
	if (off > ps->len || ps->len - off < 4)
		return -1;
	for (int i = 0; i < 4; i++) {
		int c = ps->p[off + i], d;
		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			d = c - 'A' + 10;
		else
			return -1;
		v = v * 16 + d;
	}
	return v;
}

static size_t put_utf8(char *o, uint32_t cp)
{
	size_t n = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
	static const unsigned char lead[] = {0, 0, 0xc0, 0xe0, 0xf0};
	if (n == 1) {
		o[0] = (char)cp;
		return 1;
	}
	for (size_t i = n - 1; i > 0; i--, cp >>= 6)
		o[i] = (char)(0x80 | (cp & 0x3f));
	o[0] = (char)(lead[n] | cp);
	return n;
}

/* The \u escape at ps->pos (backslash included): a code point, surrogate pairs
 * joined. Advances past it. */
static int unicode_escape(struct parser *ps, uint32_t *cp)
{
	size_t at = ps->pos;
	long hi = hex4(ps, at + 2), lo;
	if (hi < 0)
		return fail(ps, at, -EINVAL, "invalid \\u escape: expected four hex digits");
	if (hi >= 0xdc00 && hi <= 0xdfff)
		return fail(ps, at, -EINVAL, "lone surrogate \\u%04lX (a low surrogate with no "
		            "high one before it)", hi);
	if (hi < 0xd800 || hi > 0xdbff) {
		*cp = (uint32_t)hi;
		ps->pos = at + 6;
		return 0;
	}
	if (ps->len - at < 12 || ps->p[at + 6] != '\\' || ps->p[at + 7] != 'u' ||
	    (lo = hex4(ps, at + 8)) < 0xdc00 || lo > 0xdfff)
		return fail(ps, at, -EINVAL, "lone surrogate \\u%04lX (a high surrogate must be "
		            "followed by a \\u escape of a low one)", hi);
	*cp = 0x10000 + (((uint32_t)hi - 0xd800) << 10) + ((uint32_t)lo - 0xdc00);
	ps->pos = at + 12;
	return 0;
}

/* The string at ps->pos (the opening quote), decoded into the arena. */
static int parse_string(struct parser *ps, const char **out, size_t *outlen)
{
	size_t start = ps->pos, n = 0;
	const unsigned char *p = ps->p;
	int r;

	ps->pos++;
	for (;;) {
		size_t run = ps->pos;
		while (run < ps->len && p[run] >= 0x20 && p[run] < 0x80 && p[run] != '"' &&
		       p[run] != '\\')
			run++;
		if (run > ps->pos) {
			size_t k = run - ps->pos;
			if ((r = sbuf_reserve(ps, n, k + 4)) < 0)
				return r;
			memcpy(ps->sbuf + n, p + ps->pos, k);
			n += k;
			ps->pos = run;
		} else if ((r = sbuf_reserve(ps, n, 4)) < 0) {
			return r;
		}
		if (n > ps->lim.max_string)
			return fail(ps, start, -E2BIG, "string longer than %zu bytes",
			            ps->lim.max_string);
		if (ps->pos >= ps->len)
			return fail(ps, start, -EINVAL, "unterminated string");
		unsigned char c = p[ps->pos];
		if (c == '"') {
			ps->pos++;
			break;
		}
		if (c < 0x20)
			return fail(ps, ps->pos, -EINVAL, "control character (byte 0x%02x) in a "
			            "string; it must be escaped", c);
		if (c >= 0x80) {
			size_t k = bks_utf8_len(p + ps->pos, ps->len - ps->pos);
			if (!k)
				return fail(ps, ps->pos, -EINVAL, "invalid UTF-8 in a string");
			memcpy(ps->sbuf + n, p + ps->pos, k);
			n += k;
			ps->pos += k;
			continue;
		}
		/* a backslash */
		if (ps->pos + 1 >= ps->len)
			return fail(ps, start, -EINVAL, "unterminated string");
		char esc = (char)p[ps->pos + 1], ch;
		switch (esc) {
		case '"': ch = '"'; break;
		case '\\': ch = '\\'; break;
		case '/': ch = '/'; break;
		case 'b': ch = '\b'; break;
		case 'f': ch = '\f'; break;
		case 'n': ch = '\n'; break;
		case 'r': ch = '\r'; break;
		case 't': ch = '\t'; break;
		case 'u': {
			uint32_t cp = 0;
			if ((r = unicode_escape(ps, &cp)) < 0)
				return r;
			n += put_utf8(ps->sbuf + n, cp);
			continue;
		}
		default: {
			char fb[16];
			return fail(ps, ps->pos, -EINVAL, "invalid escape: backslash before %s",
			            found(ps, ps->pos + 1, fb));
		}
		}
		ps->sbuf[n++] = ch;
		ps->pos += 2;
	}
	if (n > ps->lim.max_string)
		return fail(ps, start, -E2BIG, "string longer than %zu bytes", ps->lim.max_string);
	char *s = arena_alloc(ps->d, n + 1);
	if (!s)
		return nomem(ps);
	memcpy(s, ps->sbuf, n);
	s[n] = '\0';
	*out = s;
	*outlen = n;
	return 0;
}

/* Numbers are converted in the C locale whatever the process's locale says. */
static locale_t c_locale;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;

static void c_locale_init(void)
{
	c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
}

static int parse_number(struct parser *ps, jsonp_val *v)
{
	const unsigned char *p = ps->p;
	size_t start = ps->pos, digits;
	int neg = 0, integral = 1;

	if (p[ps->pos] == '-') {
		neg = 1;
		ps->pos++;
	}
	digits = ps->pos;
	if (!is_digit(peek(ps)))
		return fail(ps, ps->pos, -EINVAL, "expected a digit after '-'");
	if (p[ps->pos] == '0') {
		ps->pos++;
		if (is_digit(peek(ps)))
			return fail(ps, digits, -EINVAL, "leading zeros are not allowed");
	} else {
		while (is_digit(peek(ps)))
			ps->pos++;
	}
	size_t int_end = ps->pos;
	if (peek(ps) == '.') {
		integral = 0;
		ps->pos++;
		if (!is_digit(peek(ps)))
			return fail(ps, ps->pos, -EINVAL, "expected a digit after '.'");
		while (is_digit(peek(ps)))
			ps->pos++;
	}
	if (peek(ps) == 'e' || peek(ps) == 'E') {
		integral = 0;
		ps->pos++;
		if (peek(ps) == '+' || peek(ps) == '-')
			ps->pos++;
		if (!is_digit(peek(ps)))
			return fail(ps, ps->pos, -EINVAL, "expected a digit in the exponent");
		while (is_digit(peek(ps)))
			ps->pos++;
	}
	v->kind = JSONP_NUMBER;
	if (integral) {
		uint64_t mag = 0;
		int over = 0;
		for (size_t i = digits; i < int_end; i++) {
			unsigned d = p[i] - '0';
			if (mag > (UINT64_MAX - d) / 10) {
				over = 1;
				break;
			}
			mag = mag * 10 + d;
		}
		if (!over && neg && mag <= (uint64_t)INT64_MAX + 1) {
			v->num = NUM_I64;
			v->u.i = mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag;
			return 0;
		}
		if (!over && !neg) {
			v->num = mag <= INT64_MAX ? NUM_I64 : NUM_U64;
			v->u.u = mag; /* same bits as u.i when it fits */
			return 0;
		}
	}
	/* A fraction, an exponent or an integer beyond 64 bits: a double. */
	size_t n = ps->pos - start;
	int r = sbuf_reserve(ps, 0, n + 1);
	if (r < 0)
		return r;
	memcpy(ps->sbuf, p + start, n);
	ps->sbuf[n] = '\0';
	pthread_once(&c_locale_once, c_locale_init);
	if (!c_locale)
		return nomem(ps);
	double d = strtod_l(ps->sbuf, NULL, c_locale);
	if (isinf(d))
		return fail(ps, start, -EINVAL, "number out of range");
	v->num = integral ? NUM_BIGINT : NUM_REAL;
	v->u.d = d;
	return 0;
}

static int push_frame(struct parser *ps, uint8_t kind, size_t off)
{
	if (ps->depth >= ps->lim.max_depth)
		return fail(ps, off, -E2BIG, "nested deeper than %u levels", ps->lim.max_depth);
	if (ps->depth == ps->stack_cap) {
		unsigned cap = ps->stack_cap ? ps->stack_cap * 2 : 16;
		struct frame *s = realloc(ps->stack, cap * sizeof(*s));
		if (!s)
			return nomem(ps);
		ps->stack = s;
		ps->stack_cap = cap;
	}
	struct frame *f = &ps->stack[ps->depth++];
	memset(f, 0, sizeof(*f));
	f->kind = kind;
	f->start = ps->npend;
	return 0;
}

/* A key and its colon, in the innermost (object) frame. */
static int member_key(struct parser *ps)
{
	struct frame *f = &ps->stack[ps->depth - 1];
	char fb[16];
	int r;

	skip_ws(ps);
	if (peek(ps) != '"')
		return fail(ps, ps->pos, -EINVAL, "expected a string key, found %s",
		            found(ps, ps->pos, fb));
	f->keyoff = ps->pos;
	if ((r = parse_string(ps, &f->key, &f->keylen)) < 0)
		return r;
	skip_ws(ps);
	if (peek(ps) != ':')
		return fail(ps, ps->pos, -EINVAL, "expected ':' after object key");
	ps->pos++;
	return 0;
}

static int push_member(struct parser *ps, const jsonp_val *v)
{
	struct frame *f = &ps->stack[ps->depth - 1];
	if (ps->npend == ps->pend_cap) {
		size_t cap = ps->pend_cap ? ps->pend_cap * 2 : 64;
		struct pending *a = realloc(ps->pend, cap * sizeof(*a));
		if (!a)
			return nomem(ps);
		ps->pend = a;
		ps->pend_cap = cap;
	}
	struct pending *m = &ps->pend[ps->npend++];
	m->v = *v;
	m->keyoff = f->keyoff;
	if (f->kind == JSONP_OBJECT) {
		m->v.key = f->key;
		m->v.keylen = f->keylen;
	}
	return 0;
}

static int same_key(const struct pending *a, const struct pending *b)
{
	return a->v.keylen == b->v.keylen && !memcmp(a->v.key, b->v.key, a->v.keylen);
}

static int cmp_key(const void *x, const void *y)
{
	const struct pending *a = *(struct pending *const *)x, *b = *(struct pending *const *)y;
	if (a->v.keylen != b->v.keylen)
		return a->v.keylen < b->v.keylen ? -1 : 1;
	int c = memcmp(a->v.key, b->v.key, a->v.keylen);
	if (c)
		return c;
	return a->keyoff < b->keyoff ? -1 : a->keyoff > b->keyoff;
}

/* The member whose key repeats an earlier one (the earliest such), or NULL. */
static int find_duplicate(struct parser *ps, struct pending *m, size_t n,
                          const struct pending **dup)
{
	*dup = NULL;
	if (n <= 8) {
		for (size_t j = 1; j < n && !*dup; j++)
			for (size_t i = 0; i < j; i++)
				if (same_key(&m[i], &m[j])) {
					*dup = &m[j];
					break;
				}
		return 0;
	}
	struct pending **ix = malloc(n * sizeof(*ix));
	if (!ix)
		return nomem(ps);
	for (size_t i = 0; i < n; i++)
		ix[i] = &m[i];
	qsort(ix, n, sizeof(*ix), cmp_key);
	for (size_t i = 1; i < n; i++)
		if (same_key(ix[i - 1], ix[i]) && (!*dup || ix[i]->keyoff < (*dup)->keyoff))
			*dup = ix[i];
	free(ix);
	return 0;
}

/* Printable form of a key for a message: at most 40 bytes, control characters as
 * '?', cut at a character boundary. */
static void key_excerpt(const char *k, size_t len, char out[48])
{
	size_t n = len > 40 ? 40 : len;
	while (n < len && n > 0 && ((unsigned char)k[n] & 0xc0) == 0x80)
		n--;
	for (size_t i = 0; i < n; i++)
		out[i] = (unsigned char)k[i] < 0x20 || k[i] == 0x7f ? '?' : k[i];
	strcpy(out + n, n < len ? "..." : "");
}

/* Close the innermost container: its members move into the arena. */
static int close_container(struct parser *ps, jsonp_val *out)
{
	struct frame *f = &ps->stack[ps->depth - 1];
	size_t n = ps->npend - f->start;
	/* An empty container may have nothing pending at all (pend NULL), and NULL + 0
	 * is undefined (UBSan stops on it: fuzz-jsonp, input "[]"). */
	struct pending *m = n ? ps->pend + f->start : NULL;
	jsonp_val *kids = NULL;
	int r;

	if (f->kind == JSONP_OBJECT && n > 1) {
		const struct pending *dup;
		if ((r = find_duplicate(ps, m, n, &dup)) < 0)
			return r;
		if (dup) {
			char ex[48];
			key_excerpt(dup->v.key, dup->v.keylen, ex);
			return fail(ps, dup->keyoff, -EINVAL, "duplicate key \"%s\"", ex);
		}
	}
	if (n) {
		kids = arena_alloc(ps->d, n * sizeof(*kids));
		if (!kids)
			return nomem(ps);
		for (size_t i = 0; i < n; i++)
			kids[i] = m[i].v;
	}
	memset(out, 0, sizeof(*out));
	out->kind = f->kind;
	out->u.kids = kids;
	out->len = n;
	ps->npend = f->start;
	ps->depth--;
	return 0;
}

/* Start a value at ps->pos. Returns 0 with a complete value in *v (a scalar or an
 * empty container), 1 when a non-empty container was opened (its first element, or
 * first key and colon, have been consumed up to the value), or an error. */
static int value(struct parser *ps, jsonp_val *v)
{
	char fb[16];
	int r;

	skip_ws(ps);
	size_t off = ps->pos;
	if (++ps->nvalues > ps->lim.max_values)
		return fail(ps, off, -E2BIG, "more than %zu values", ps->lim.max_values);
	memset(v, 0, sizeof(*v));
	int c = peek(ps);
	switch (c) {
	case '[':
	case '{': {
		uint8_t kind = c == '[' ? JSONP_ARRAY : JSONP_OBJECT;
		if ((r = push_frame(ps, kind, off)) < 0)
			return r;
		ps->pos++;
		skip_ws(ps);
		if (peek(ps) == (c == '[' ? ']' : '}')) {
			ps->pos++;
			return close_container(ps, v);
		}
		if (kind == JSONP_OBJECT && (r = member_key(ps)) < 0)
			return r;
		return 1;
	}
	case '"':
		v->kind = JSONP_STRING;
		return parse_string(ps, &v->u.s, &v->len);
	case 't':
	case 'f':
	case 'n': {
		static const char *const lit[] = {"true", "false", "null"};
		int i = c == 't' ? 0 : c == 'f' ? 1 : 2;
		size_t n = strlen(lit[i]);
		if (ps->len - off < n || memcmp(ps->p + off, lit[i], n))
			return fail(ps, off, -EINVAL, "invalid literal (expected true, false or null)");
		ps->pos += n;
		v->kind = i == 2 ? JSONP_NULL : JSONP_BOOL;
		v->u.b = i == 0;
		return 0;
	}
	default:
		if (c == '-' || is_digit(c))
			return parse_number(ps, v);
		return fail(ps, off, -EINVAL, "expected a value, found %s", found(ps, off, fb));
	}
}

static int run(struct parser *ps)
{
	jsonp_val v;
	char fb[16];
	int r;

next_value:
	if ((r = value(ps, &v)) < 0)
		return r;
	if (r == 1)
		goto next_value;
	for (;;) {
		if (ps->depth == 0) {
			ps->d->root = v;
			skip_ws(ps);
			if (ps->pos < ps->len)
				return fail(ps, ps->pos, -EINVAL, "trailing %s after the document",
				            found(ps, ps->pos, fb));
			return 0;
		}
		if ((r = push_member(ps, &v)) < 0)
			return r;
		skip_ws(ps);
		uint8_t kind = ps->stack[ps->depth - 1].kind;
		int c = peek(ps);
		if (c == ',') {
			ps->pos++;
			if (kind == JSONP_OBJECT && (r = member_key(ps)) < 0)
				return r;
			goto next_value;
		}
		if (c == (kind == JSONP_ARRAY ? ']' : '}')) {
			ps->pos++;
			if ((r = close_container(ps, &v)) < 0)
				return r;
			continue;
		}
		if (kind == JSONP_ARRAY)
			return fail(ps, ps->pos, -EINVAL, "expected ',' or ']' after an array "
			            "element, found %s", found(ps, ps->pos, fb));
		return fail(ps, ps->pos, -EINVAL, "expected ',' or '}' after an object member, "
		            "found %s", found(ps, ps->pos, fb));
	}
}

int jsonp_parse(const void *buf, size_t len, const jsonp_limits *lim, jsonp **out,
                size_t *err_off, bks_err *e)
{
	struct parser ps = {.p = buf, .len = len, .e = e};
	int r;

	*out = NULL;
	if (lim)
		ps.lim = *lim;
	if (!ps.lim.max_depth)
		ps.lim.max_depth = JSONP_DEFAULT_MAX_DEPTH;
	if (!ps.lim.max_values)
		ps.lim.max_values = JSONP_DEFAULT_MAX_VALUES;
	if (!ps.lim.max_string)
		ps.lim.max_string = JSONP_DEFAULT_MAX_STRING;
	ps.d = calloc(1, sizeof(*ps.d));
	if (!ps.d) {
		r = nomem(&ps);
		goto out;
	}
	r = run(&ps);
	if (r < 0) {
		jsonp_free(ps.d);
		goto out;
	}
	*out = ps.d;
out:
	if (r < 0 && err_off)
		*err_off = ps.err_off;
	free(ps.stack);
	free(ps.pend);
	free(ps.sbuf);
	return r;
}

/* ---- accessors ------------------------------------------------------------- */

const jsonp_val *jsonp_root(const jsonp *d)
{
	return d ? &d->root : NULL;
}

jsonp_kind jsonp_type(const jsonp_val *v)
{
	return v ? (jsonp_kind)v->kind : JSONP_NONE;
}

const char *jsonp_kind_name(jsonp_kind k)
{
	switch (k) {
	case JSONP_NULL: return "null";
	case JSONP_BOOL: return "boolean";
	case JSONP_NUMBER: return "number";
	case JSONP_STRING: return "string";
	case JSONP_ARRAY: return "array";
	case JSONP_OBJECT: return "object";
	case JSONP_NONE: break;
	}
	return "missing";
}

/* Linear: API objects have a handful of members. */
const jsonp_val *jsonp_get(const jsonp_val *obj, const char *key)
{
	if (!obj || obj->kind != JSONP_OBJECT || !key)
		return NULL;
	size_t n = strlen(key);
	for (size_t i = 0; i < obj->len; i++) {
		const jsonp_val *m = &obj->u.kids[i];
		if (m->keylen == n && !memcmp(m->key, key, n))
			return m;
	}
	return NULL;
}

size_t jsonp_len(const jsonp_val *v)
{
	return v && (v->kind == JSONP_ARRAY || v->kind == JSONP_OBJECT) ? v->len : 0;
}

const jsonp_val *jsonp_at(const jsonp_val *v, size_t i)
{
	return i < jsonp_len(v) ? &v->u.kids[i] : NULL;
}

const char *jsonp_key(const jsonp_val *m, size_t *len)
{
	if (!m || !m->key)
		return NULL;
	if (len)
		*len = m->keylen;
	return m->key;
}

const char *jsonp_str(const jsonp_val *v, size_t *len)
{
	if (!v || v->kind != JSONP_STRING)
		return NULL;
	if (len)
		*len = v->len;
	return v->u.s;
}

int jsonp_int(const jsonp_val *v, int64_t *out)
{
	if (!v || v->kind != JSONP_NUMBER || v->num == NUM_REAL)
		return -EINVAL;
	if (v->num != NUM_I64)
		return -ERANGE;
	*out = v->u.i;
	return 0;
}

int jsonp_uint(const jsonp_val *v, uint64_t *out)
{
	if (!v || v->kind != JSONP_NUMBER || v->num == NUM_REAL)
		return -EINVAL;
	if (v->num == NUM_BIGINT || (v->num == NUM_I64 && v->u.i < 0))
		return -ERANGE;
	*out = v->u.u;
	return 0;
}

int jsonp_double(const jsonp_val *v, double *out)
{
	if (!v || v->kind != JSONP_NUMBER)
		return -EINVAL;
	switch (v->num) {
	case NUM_I64: *out = (double)v->u.i; break;
	case NUM_U64: *out = (double)v->u.u; break;
	default: *out = v->u.d; break;
	}
	return 0;
}

int jsonp_bool(const jsonp_val *v, int *out)
{
	if (!v || v->kind != JSONP_BOOL)
		return -EINVAL;
	*out = v->u.b;
	return 0;
}

int jsonp_is_null(const jsonp_val *v)
{
	return v && v->kind == JSONP_NULL;
}

/* The member for a getter: -ENOENT when missing, -EINVAL when obj is no object. */
static int member(const jsonp_val *obj, const char *key, const jsonp_val **m)
{
	if (!obj)
		return -ENOENT;
	if (obj->kind != JSONP_OBJECT)
		return -EINVAL;
	*m = jsonp_get(obj, key);
	return *m ? 0 : -ENOENT;
}

const char *jsonp_get_str(const jsonp_val *obj, const char *key, const char *dflt)
{
	const char *s = jsonp_str(jsonp_get(obj, key), NULL);
	return s ? s : dflt;
}

int jsonp_get_strn(const jsonp_val *obj, const char *key, const char **out, size_t *len)
{
	const jsonp_val *m;
	int r = member(obj, key, &m);
	if (r < 0)
		return r;
	const char *s = jsonp_str(m, len);
	if (!s)
		return -EINVAL;
	*out = s;
	return 0;
}

int jsonp_get_int(const jsonp_val *obj, const char *key, int64_t *out)
{
	const jsonp_val *m;
	int r = member(obj, key, &m);
	return r < 0 ? r : jsonp_int(m, out);
}

int jsonp_get_uint(const jsonp_val *obj, const char *key, uint64_t *out)
{
	const jsonp_val *m;
	int r = member(obj, key, &m);
	return r < 0 ? r : jsonp_uint(m, out);
}

int jsonp_get_double(const jsonp_val *obj, const char *key, double *out)
{
	const jsonp_val *m;
	int r = member(obj, key, &m);
	return r < 0 ? r : jsonp_double(m, out);
}

int jsonp_get_bool(const jsonp_val *obj, const char *key, int *out)
{
	const jsonp_val *m;
	int r = member(obj, key, &m);
	return r < 0 ? r : jsonp_bool(m, out);
}
