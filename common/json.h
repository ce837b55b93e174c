/* common/json.h: a small streaming JSON writer (RFC 8259) for `bkstorctl --json` and the
 * daemon's control API.
 *
 * Values are written as they are given; nothing is buffered beyond the FILE. Inside
 * an object every value takes a key; inside an array and at the top level the key
 * is NULL. Strings are escaped (quote, backslash, control characters) and bytes that
 * are not valid UTF-8 (a path can hold any bytes) become U+FFFD, so the output is
 * always valid JSON. Numbers that JSON cannot represent (NaN, infinities) are null.
 */
#ifndef BKS_COMMON_JSON_H
#define BKS_COMMON_JSON_H

#include <stdint.h>
#include <stdio.h>

#define JSON_MAX_DEPTH 16

typedef struct json {
	FILE *f;               /* not owned */
	int pretty;            /* newlines and two-space indentation */
	int depth;             /* open containers */
	int misuse;            /* a key where none belongs, too deep, unbalanced... */
	unsigned char in_obj[JSON_MAX_DEPTH + 1];
	unsigned char count[JSON_MAX_DEPTH + 1]; /* values so far (saturates at 1) */
} json;

void json_init(json *j, FILE *f, int pretty);

void json_obj_begin(json *j, const char *key);
void json_obj_end(json *j);
void json_arr_begin(json *j, const char *key);
void json_arr_end(json *j);

void json_str(json *j, const char *key, const char *s); /* s NULL: null */
void json_int(json *j, const char *key, int64_t v);
void json_uint(json *j, const char *key, uint64_t v);
void json_double(json *j, const char *key, double v);
void json_bool(json *j, const char *key, int v);
void json_null(json *j, const char *key);

/* End the document: a final newline and a flush. Returns 0, -EINVAL if the calls
 * were unbalanced or misused, or -EIO if the FILE reported an error. */
int json_finish(json *j);

#endif /* BKS_COMMON_JSON_H */
