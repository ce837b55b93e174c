/* common/json.c: see json.h. */
#include <config.h>

#include "common/json.h"

#include "common/bks.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void json_init(json *j, FILE *f, int pretty)
{
	memset(j, 0, sizeof(*j));
	j->f = f;
	j->pretty = pretty;
}

static void indent(json *j, int depth)
{
	if (!j->pretty)
		return;
	fputc('\n', j->f);
	for (int i = 0; i < depth; i++)
		fputs("  ", j->f);
}


static void put_string(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	fputc('"', f);
	while (*p) {
		unsigned char c = *p;
		if (c == '"' || c == '\\') {
			fputc('\\', f);
			fputc(c, f);
			p++;
		} else if (c < 0x20) {
			switch (c) {
			case '\b': fputs("\\b", f); break;
			case '\f': fputs("\\f", f); break;
			case '\n': fputs("\\n", f); break;
			case '\r': fputs("\\r", f); break;
			case '\t': fputs("\\t", f); break;
			default: fprintf(f, "\\u%04x", c); break;
			}
			p++;
		} else if (c < 0x80) {
			fputc(c, f);
			p++;
		} else {
			int n = (int)bks_utf8_len(p, SIZE_MAX);
			if (n) {
				fwrite(p, 1, (size_t)n, f);
				p += n;
			} else {
				fputs("\\ufffd", f);
				p++;
			}
		}
	}
	fputc('"', f);
}

/* Separator, indentation and key before a value. Returns 0, or -1 on misuse (the
 * value is then not written). */
static int begin_value(json *j, const char *key)
{
	int in_obj = j->depth > 0 && j->in_obj[j->depth];

	assert(!in_obj == !key && "a key inside objects, none elsewhere");
	if (j->depth < 0 || j->depth > JSON_MAX_DEPTH || !in_obj != !key ||
	    (j->depth == 0 && j->count[0])) {
		j->misuse = 1;
		return -1;
	}
	if (j->depth > 0) {
		if (j->count[j->depth])
			fputc(',', j->f);
		indent(j, j->depth);
	}
	j->count[j->depth] = 1;
	if (key) {
		put_string(j->f, key);
		fputs(j->pretty ? ": " : ":", j->f);
	}
	return 0;
}

static void open_container(json *j, const char *key, int obj)
{
	assert(j->depth < JSON_MAX_DEPTH);
	if (j->depth >= JSON_MAX_DEPTH) {
		j->misuse = 1;
		return;
	}
	if (begin_value(j, key) < 0)
		return;
	fputc(obj ? '{' : '[', j->f);
	j->depth++;
	j->in_obj[j->depth] = (unsigned char)obj;
	j->count[j->depth] = 0;
}

static void close_container(json *j, int obj)
{
	assert(j->depth > 0 && j->in_obj[j->depth] == obj);
	if (j->depth == 0 || j->in_obj[j->depth] != obj) {
		j->misuse = 1;
		return;
	}
	if (j->count[j->depth])
		indent(j, j->depth - 1);
	fputc(obj ? '}' : ']', j->f);
	j->depth--;
}

void json_obj_begin(json *j, const char *key) { open_container(j, key, 1); }
void json_obj_end(json *j) { close_container(j, 1); }
void json_arr_begin(json *j, const char *key) { open_container(j, key, 0); }
void json_arr_end(json *j) { close_container(j, 0); }

void json_str(json *j, const char *key, const char *s)
{
	if (begin_value(j, key) < 0)
		return;
	if (s)
		put_string(j->f, s);
	else
		fputs("null", j->f);
}

void json_int(json *j, const char *key, int64_t v)
{
	if (begin_value(j, key) == 0)
		fprintf(j->f, "%" PRId64, v);
}

void json_uint(json *j, const char *key, uint64_t v)
{
	if (begin_value(j, key) == 0)
		fprintf(j->f, "%" PRIu64, v);
}

void json_double(json *j, const char *key, double v)
{
	char buf[40];

	if (begin_value(j, key) < 0)
		return;
	if (!isfinite(v)) {
		fputs("null", j->f);
		return;
	}
	/* The shortest of %.15g and %.17g that reads back as the same double. */
	snprintf(buf, sizeof(buf), "%.15g", v);
	if (strtod(buf, NULL) != v)
		snprintf(buf, sizeof(buf), "%.17g", v);
	fputs(buf, j->f);
}

void json_bool(json *j, const char *key, int v)
{
	if (begin_value(j, key) == 0)
		fputs(v ? "true" : "false", j->f);
}

void json_null(json *j, const char *key)
{
	if (begin_value(j, key) == 0)
		fputs("null", j->f);
}

int json_finish(json *j)
{
	int r = 0;
	if (j->depth != 0 || j->misuse)
		r = -EINVAL;
	fputc('\n', j->f);
	if (fflush(j->f) != 0 || ferror(j->f))
		r = r ? r : -EIO;
	return r;
}
