/* common/jsonp.h: a strict JSON parser (RFC 8259) for the control API and the CLI.
 *
 * jsonp_parse() reads one complete document from (buf, len) into a tree whose nodes
 * and decoded strings all live in the document's arena; jsonp_free() releases
 * everything at once. Values are const pointers into that arena, valid until
 * jsonp_free() of their document.
 *
 * Strict, because a JSON API must not have ambiguous input. Refused (-EINVAL):
 * anything but exactly one value surrounded by optional whitespace (trailing
 * garbage, a byte-order mark, an empty document), leading zeros, lone or reversed
 * UTF-16 surrogates in \u escapes, invalid UTF-8 (overlongs, surrogates, above
 * U+10FFFF, truncated sequences), raw control characters in strings, unknown
 * escapes, duplicate keys in one object (compared after decoding, so "a" and "\u0061"
 * are the same key), and numbers whose magnitude overflows a double (1e400; 1e-400
 * is accepted as 0). Exceeding a caller's limit is -E2BIG; out of memory -ENOMEM.
 * The message names the byte offset and the reason:
 *   "offset 17: expected ':' after object key".
 *
 * Numbers keep their exact value when the literal is an integer (no fraction, no
 * exponent) that fits int64_t or uint64_t; any other number is held as a double.
 * jsonp_int()/jsonp_uint() accept only integer literals ("3", not "3.0" or "3e0").
 */
#ifndef BKS_COMMON_JSONP_H
#define BKS_COMMON_JSONP_H

#include <stddef.h>
#include <stdint.h>

#include "common/bks.h"

typedef struct jsonp jsonp;         /* a parsed document: owns the arena */
typedef struct jsonp_val jsonp_val; /* a value in a document */

/* What jsonp_type() answers. (Named "kind" so the accessor can be jsonp_type.) */
typedef enum jsonp_kind {
	JSONP_NONE = 0, /* jsonp_type(NULL): a missing value */
	JSONP_NULL,
	JSONP_BOOL,
	JSONP_NUMBER,
	JSONP_STRING,
	JSONP_ARRAY,
	JSONP_OBJECT,
} jsonp_kind;

#define JSONP_DEFAULT_MAX_DEPTH 32
#define JSONP_DEFAULT_MAX_VALUES 100000
#define JSONP_DEFAULT_MAX_STRING (1u << 20)

/* Limits; a field left 0 takes its default. Depth counts open containers: with
 * max_depth 32, 32 nested arrays are accepted and 33 refused; a scalar document has
 * depth 0. max_values counts every value (containers and scalars, not keys).
 * max_string bounds the decoded length in bytes of every string and key. The input
 * size is the caller's to bound. */
typedef struct jsonp_limits {
	unsigned max_depth;
	size_t max_values;
	size_t max_string;
} jsonp_limits;

/* Parse buf[0..len) (need not be NUL-terminated). lim may be NULL (defaults).
 * Returns 0 with *out set, or -EINVAL / -E2BIG / -ENOMEM with *out NULL, e filled
 * and *err_off (when not NULL) set to the byte offset the message names. */
int jsonp_parse(const void *buf, size_t len, const jsonp_limits *lim, jsonp **out,
                size_t *err_off, bks_err *e);
void jsonp_free(jsonp *d); /* accepts NULL */

const jsonp_val *jsonp_root(const jsonp *d); /* never NULL for a parsed document */

/* Every accessor accepts NULL (a missing value) and then answers "absent":
 * JSONP_NONE, NULL, 0 or -EINVAL. */
jsonp_kind jsonp_type(const jsonp_val *v);
const char *jsonp_kind_name(jsonp_kind k); /* "string", "object", ... "missing" */

/* Containers. Members of an object are kept in document order: jsonp_len() and
 * jsonp_at() iterate them too, and jsonp_key() names each. */
const jsonp_val *jsonp_get(const jsonp_val *obj, const char *key); /* NULL: none */
size_t jsonp_len(const jsonp_val *v);            /* members; 0 for non-containers */
const jsonp_val *jsonp_at(const jsonp_val *v, size_t i); /* NULL when i >= len */
const char *jsonp_key(const jsonp_val *member, size_t *len); /* NULL outside objects */

/* Scalars. jsonp_str returns the decoded UTF-8, NUL-terminated; it may contain
 * "\u0000", so *len (when len is not NULL) is the true length. NULL if not a string.
 * The numeric ones return 0, -EINVAL if v is not of that type (a fraction or exponent
 * makes a number not an integer), or -ERANGE if it is an integer out of range. */
const char *jsonp_str(const jsonp_val *v, size_t *len);
int jsonp_int(const jsonp_val *v, int64_t *out);
int jsonp_uint(const jsonp_val *v, uint64_t *out);
int jsonp_double(const jsonp_val *v, double *out); /* any number; big ints round */
int jsonp_bool(const jsonp_val *v, int *out);
int jsonp_is_null(const jsonp_val *v); /* 1 for a JSON null, 0 otherwise (NULL too) */

/* Members of an object by key, for request handlers. The int getters return 0,
 * -ENOENT when the key is missing (or obj is NULL), -EINVAL when the member (or obj)
 * has the wrong type (null included), -ERANGE for an integer out of range, so a
 * caller can answer "field 'disk' must be a string".
 * jsonp_get_str returns dflt when the member is missing or not a string; use
 * jsonp_get_strn to tell those apart. */
const char *jsonp_get_str(const jsonp_val *obj, const char *key, const char *dflt);
int jsonp_get_strn(const jsonp_val *obj, const char *key, const char **out, size_t *len);
int jsonp_get_int(const jsonp_val *obj, const char *key, int64_t *out);
int jsonp_get_uint(const jsonp_val *obj, const char *key, uint64_t *out);
int jsonp_get_double(const jsonp_val *obj, const char *key, double *out);
int jsonp_get_bool(const jsonp_val *obj, const char *key, int *out);

#endif /* BKS_COMMON_JSONP_H */
