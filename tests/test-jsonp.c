/* test-jsonp: the strict JSON parser: every type, nesting, escapes and surrogate
 * pairs, every class of rejection with its byte offset, the limits, big integers,
 * the getters' error codes, and random damage to valid documents (never a crash).
 * `test-jsonp --seeds DIR` writes valid documents as fuzzing seeds. */
#include <config.h>

#include "tests/testutil.h"

#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/jsonp.h"

static const char *const samples[] = {
	"{\"name\":\"vault\",\"disks\":[\"/dev/sda\",\"/dev/sdb\"],\"strip\":65536,"
	"\"opts\":{\"force\":true,\"ratio\":0.25,\"none\":null},\"empty\":[],\"eo\":{}}",
	"[null,true,false,0,-0,1.5e-3,-12E+2,\"\\u00e9\\ud83d\\ude00\\n\\\"\\\\\\/\"]",
	" { \"a\" : [ 1 , [ 2 , { \"b\" : [ ] } ] ] } \r\n\t",
	"\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"",
	"[9223372036854775807,-9223372036854775808,18446744073709551615,"
	"18446744073709551616,1e308,-1e-400]",
	"{\"k\\u0000ey\":\"v\\u0000al\",\"\":\"\"}",
	"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
	"{\"op\":\"array.create\",\"args\":{\"disks\":[\"/dev/sdb\",\"/dev/sdc\",\"/dev/sdd\","
	"\"/dev/sde\"],\"name\":\"vault\",\"strip_size\":262144,\"force\":false}}",
	"42",
	"null",
};

static int write_seeds(const char *dir)
{
	char p[512];
	for (size_t i = 0; i < BKS_ARRAY_SIZE(samples); i++) {
		snprintf(p, sizeof(p), "%s/jsonp-%02zu.json", dir, i);
		FILE *f = fopen(p, "wb");
		if (!f || fwrite(samples[i], 1, strlen(samples[i]), f) != strlen(samples[i]))
			return 1;
		fclose(f);
	}
	return 0;
}

static jsonp *parse(const char *s, const jsonp_limits *lim)
{
	jsonp *d;
	bks_err e = {0};
	int r = jsonp_parse(s, strlen(s), lim, &d, NULL, &e);
	CHECK(r == 0, "parse %.60s: %d %s", s, r, e.msg);
	return r == 0 ? d : NULL;
}

/* s (n bytes) must be refused with code at offset off, the message naming the
 * offset and containing why. */
static void refuse_n(int line, const char *s, size_t n, const jsonp_limits *lim, int code,
                     size_t off, const char *why)
{
	jsonp *d = (jsonp *)1;
	bks_err e = {0};
	size_t at = (size_t)-1;
	char pre[32];
	int r = jsonp_parse(s, n, lim, &d, &at, &e);
	snprintf(pre, sizeof(pre), "offset %zu: ", off);
	CHECK(r == code && at == off && d == NULL && e.code == code &&
	      !strncmp(e.msg, pre, strlen(pre)) && strstr(e.msg, why),
	      "line %d: %.40s: got %d at %zu \"%s\", want %d at %zu \"%s\"", line, s, r, at,
	      e.msg, code, off, why);
	jsonp_free(r == 0 ? d : NULL);
}
#define REFUSE(s, off, why) refuse_n(__LINE__, s, sizeof(s) - 1, NULL, -EINVAL, off, why)
#define REFUSE_LIM(s, lim, off, why) refuse_n(__LINE__, s, strlen(s), lim, -E2BIG, off, why)

static void test_types(void)
{
	jsonp *d = parse(samples[0], NULL);
	if (!d)
		return;
	const jsonp_val *r = jsonp_root(d), *v;
	size_t len;
	int64_t i;
	double x;
	int b;

	CHECK(jsonp_type(r) == JSONP_OBJECT && jsonp_len(r) == 6, "root object of 6");
	static const char *const keys[] = {"name", "disks", "strip", "opts", "empty", "eo"};
	for (size_t k = 0; k < 6; k++) {
		const char *key = jsonp_key(jsonp_at(r, k), &len);
		CHECK(key && !strcmp(key, keys[k]) && len == strlen(keys[k]),
		      "member %zu in document order: %s", k, key ? key : "(null)");
	}
	CHECK(jsonp_at(r, 6) == NULL, "past the end");
	CHECK(!strcmp(jsonp_str(jsonp_get(r, "name"), &len), "vault") && len == 5, "string");
	v = jsonp_get(r, "disks");
	CHECK(jsonp_type(v) == JSONP_ARRAY && jsonp_len(v) == 2, "array");
	CHECK(!strcmp(jsonp_str(jsonp_at(v, 1), NULL), "/dev/sdb"), "array element");
	CHECK(jsonp_key(jsonp_at(v, 0), NULL) == NULL, "array elements have no key");
	CHECK(jsonp_int(jsonp_get(r, "strip"), &i) == 0 && i == 65536, "integer");
	v = jsonp_get(r, "opts");
	CHECK(jsonp_bool(jsonp_get(v, "force"), &b) == 0 && b == 1, "bool");
	CHECK(jsonp_double(jsonp_get(v, "ratio"), &x) == 0 && x == 0.25, "double");
	CHECK(jsonp_is_null(jsonp_get(v, "none")) && jsonp_type(jsonp_get(v, "none")) ==
	      JSONP_NULL, "null");
	CHECK(jsonp_get(v, "nothere") == NULL && jsonp_type(NULL) == JSONP_NONE, "missing");
	CHECK(jsonp_len(jsonp_get(r, "empty")) == 0 && jsonp_type(jsonp_get(r, "eo")) ==
	      JSONP_OBJECT && jsonp_len(jsonp_get(r, "eo")) == 0, "empty containers");
	CHECK(jsonp_get(jsonp_get(r, "disks"), "x") == NULL, "get on an array");
	CHECK(jsonp_len(jsonp_get(r, "name")) == 0 && jsonp_at(jsonp_get(r, "name"), 0) ==
	      NULL, "a string is no container");
	jsonp_free(d);

	/* Scalars at the top level, whitespace around. */
	d = parse(" \t\r\n true \n", NULL);
	CHECK(d && jsonp_bool(jsonp_root(d), &b) == 0 && b == 1, "top-level true");
	jsonp_free(d);
	d = parse("false", NULL);
	CHECK(d && jsonp_bool(jsonp_root(d), &b) == 0 && b == 0, "top-level false");
	jsonp_free(d);
	d = parse("null", NULL);
	CHECK(d && jsonp_is_null(jsonp_root(d)), "top-level null");
	jsonp_free(d);
	d = parse("-0", NULL);
	CHECK(d && jsonp_int(jsonp_root(d), &i) == 0 && i == 0, "-0");
	jsonp_free(d);
	d = parse("\"\"", NULL);
	CHECK(d && jsonp_str(jsonp_root(d), &len) && len == 0, "empty string");
	jsonp_free(d);
	d = parse(samples[2], NULL);
	v = jsonp_at(jsonp_at(jsonp_get(jsonp_root(d), "a"), 1), 1);
	CHECK(jsonp_len(jsonp_get(v, "b")) == 0 && jsonp_type(jsonp_get(v, "b")) == JSONP_ARRAY,
	      "nesting with whitespace");
	jsonp_free(d);
}

static void test_strings(void)
{
	size_t len;
	jsonp *d = parse(samples[1], NULL);
	const char *s = d ? jsonp_str(jsonp_at(jsonp_root(d), 7), &len) : NULL;
	static const char want[] = "\xc3\xa9\xf0\x9f\x98\x80\n\"\\/";
	CHECK(s && len == sizeof(want) - 1 && !memcmp(s, want, len),
	      "\\u00e9, a surrogate pair and the short escapes: %s", s ? s : "");
	jsonp_free(d);

	d = parse("\"\\b\\f\\n\\r\\t\\u0001\\u007f\\u0800\\uFFFF\\uD800\\uDC00\\uDBFF\\uDFFF\"",
	          NULL);
	s = d ? jsonp_str(jsonp_root(d), &len) : NULL;
	static const char w2[] = "\b\f\n\r\t\x01\x7f\xe0\xa0\x80\xef\xbf\xbf\xf0\x90\x80\x80"
	                         "\xf4\x8f\xbf\xbf";
	CHECK(s && len == sizeof(w2) - 1 && !memcmp(s, w2, len), "boundary code points");
	jsonp_free(d);

	d = parse(samples[3], NULL);
	s = d ? jsonp_str(jsonp_root(d), &len) : NULL;
	CHECK(s && len == strlen(samples[3]) - 2 && !memcmp(s, samples[3] + 1, len),
	      "raw UTF-8 passes through");
	jsonp_free(d);

	d = parse(samples[5], NULL);
	const jsonp_val *r = d ? jsonp_root(d) : NULL;
	const char *k = jsonp_key(jsonp_at(r, 0), &len);
	CHECK(k && len == 4 && !memcmp(k, "k\0ey", 5), "key with \\u0000");
	s = jsonp_str(jsonp_at(r, 0), &len);
	CHECK(s && len == 4 && !memcmp(s, "v\0al", 5) && strlen(s) == 1,
	      "string with \\u0000: len tells, NUL-terminated");
	CHECK(jsonp_get(r, "k") == NULL && jsonp_get(r, "") == jsonp_at(r, 1),
	      "lookup compares whole keys; the empty key");
	jsonp_free(d);
}

static void test_refusals(void)
{
	/* syntax */
	REFUSE("", 0, "expected a value, found end of input");
	REFUSE("   ", 3, "expected a value");
	REFUSE("[1,2", 4, "expected ',' or ']' after an array element, found end of input");
	REFUSE("[1 2]", 3, "expected ',' or ']'");
	REFUSE("[1,]", 3, "expected a value, found ']'");
	REFUSE("[,1]", 1, "expected a value, found ','");
	REFUSE("{\"a\" 1}", 5, "expected ':' after object key");
	REFUSE("{\"disk\" \"x\"}", 8, "expected ':' after object key");
	REFUSE("{\"a\":1,}", 7, "expected a string key, found '}'");
	REFUSE("{a:1}", 1, "expected a string key, found 'a'");
	REFUSE("{\"a\":1 \"b\":2}", 7, "expected ',' or '}' after an object member");
	REFUSE("{\"a\"}", 4, "expected ':'");
	REFUSE("{\"a\":}", 5, "expected a value, found '}'");
	REFUSE("[1]]", 3, "trailing ']' after the document");
	REFUSE("[1] x", 4, "trailing 'x'");
	REFUSE("{} {}", 3, "trailing '{'");
	REFUSE("1 2", 2, "trailing '2'");
	REFUSE("[1]\0", 3, "trailing byte 0x00");
	REFUSE("\xef\xbb\xbf{}", 0, "expected a value, found byte 0xef");
	REFUSE("tru", 0, "invalid literal");
	REFUSE("[nul]", 1, "invalid literal");
	REFUSE("True", 0, "found 'T'");
	REFUSE("NaN", 0, "found 'N'");
	REFUSE("[Infinity]", 1, "found 'I'");
	REFUSE("'a'", 0, "found '''");
	REFUSE("[1,\n2,\n}", 7, "expected a value, found '}'");
	/* numbers */
	REFUSE("01", 0, "leading zeros");
	REFUSE("-01", 1, "leading zeros");
	REFUSE("[00]", 1, "leading zeros");
	REFUSE("[1,007]", 3, "leading zeros");
	REFUSE("-", 1, "expected a digit after '-'");
	REFUSE("-a", 1, "expected a digit after '-'");
	REFUSE("1.", 2, "expected a digit after '.'");
	REFUSE("1.e3", 2, "expected a digit after '.'");
	REFUSE("1e", 2, "expected a digit in the exponent");
	REFUSE("[1e+]", 4, "expected a digit in the exponent");
	REFUSE(".5", 0, "expected a value, found '.'");
	REFUSE("+1", 0, "expected a value, found '+'");
	REFUSE("0x10", 1, "trailing 'x'");
	REFUSE("[1e400]", 1, "number out of range");
	REFUSE("-1.7976931348623159e308", 0, "number out of range");
	/* strings */
	REFUSE("\"abc", 0, "unterminated string");
	REFUSE("[\"abc\\", 1, "unterminated string");
	REFUSE("\"a\tb\"", 2, "control character (byte 0x09)");
	REFUSE("\"a\nb\"", 2, "control character (byte 0x0a)");
	REFUSE("\"\x1f\"", 1, "control character");
	REFUSE("\"a\0b\"", 2, "control character (byte 0x00)");
	REFUSE("\"\\x\"", 1, "invalid escape: backslash before 'x'");
	REFUSE("\"\\'\"", 1, "invalid escape");
	REFUSE("\"\\u12G4\"", 1, "invalid \\u escape");
	REFUSE("\"\\u12\"", 1, "invalid \\u escape");
	REFUSE("\"\\U0041\"", 1, "invalid escape");
	/* surrogates */
	REFUSE("\"\\ud800\"", 1, "lone surrogate \\uD800");
	REFUSE("\"\\udc00\"", 1, "lone surrogate \\uDC00");
	REFUSE("\"ab\\ud83d\"", 3, "lone surrogate");
	REFUSE("\"\\ud800\\u0041\"", 1, "lone surrogate");
	REFUSE("\"\\ud800\\ud800\"", 1, "lone surrogate");
	REFUSE("\"\\ude00\\ud83d\"", 1, "lone surrogate \\uDE00");
	REFUSE("\"\\ud83d\\n\"", 1, "lone surrogate");
	REFUSE("[\"ok\",\"x\\uDFFF\"]", 8, "lone surrogate");
	/* UTF-8 */
	REFUSE("\"\xff\"", 1, "invalid UTF-8");
	REFUSE("\"\x80\"", 1, "invalid UTF-8");
	REFUSE("\"a\xc0\xaf\"", 2, "invalid UTF-8");         /* overlong '/' */
	REFUSE("\"\xe0\x80\xaf\"", 1, "invalid UTF-8");       /* overlong, 3 bytes */
	REFUSE("\"\xf0\x80\x80\xaf\"", 1, "invalid UTF-8");   /* overlong, 4 bytes */
	REFUSE("\"\xed\xa0\x80\"", 1, "invalid UTF-8");       /* encoded surrogate */
	REFUSE("\"\xf4\x90\x80\x80\"", 1, "invalid UTF-8");   /* above U+10FFFF */
	REFUSE("\"\xf5\x80\x80\x80\"", 1, "invalid UTF-8");
	REFUSE("\"\xe2\x82\"", 1, "invalid UTF-8");           /* truncated */
	REFUSE("\"\xe2\x82", 1, "invalid UTF-8");             /* truncated at the end */
	REFUSE("{\"k\xc3\":1}", 3, "invalid UTF-8");          /* in a key */
	/* duplicate keys, also after decoding, also in big objects (sorted path) */
	REFUSE("{\"a\":1,\"b\":2,\"a\":3}", 13, "duplicate key \"a\"");
	REFUSE("{\"a\":1,\"\\u0061\":2}", 7, "duplicate key \"a\"");
	REFUSE("[{\"x\":{\"y\":1,\"y\":1}}]", 13, "duplicate key \"y\"");
	REFUSE("{\"a\\u0000\":1,\"a\\u0000\":2}", 13, "duplicate key \"a?\"");

	char big[4096];
	int n = snprintf(big, sizeof(big), "{");
	for (int i = 0; i < 40; i++)
		n += snprintf(big + n, sizeof(big) - n, "\"key%02d\":%d,", i, i);
	size_t dup1 = (size_t)n;
	n += snprintf(big + n, sizeof(big) - n, "\"key07\":0,");
	n += snprintf(big + n, sizeof(big) - n, "\"key03\":0}");
	refuse_n(__LINE__, big, (size_t)n, NULL, -EINVAL, dup1, "duplicate key \"key07\"");
}

static void test_limits(void)
{
	char doc[200];
	jsonp_limits lim = {0};
	jsonp *d;

	/* Default depth 32: 32 nested arrays are fine, 33 are not. */
	memset(doc, '[', 32);
	memset(doc + 32, ']', 32);
	doc[64] = '\0';
	d = parse(doc, NULL);
	jsonp_free(d);
	memset(doc, '[', 33);
	memset(doc + 33, ']', 33);
	doc[66] = '\0';
	REFUSE_LIM(doc, NULL, 32, "nested deeper than 32 levels");
	char obj[400];
	size_t n = 0;
	for (int i = 0; i < 33; i++)
		n += (size_t)snprintf(obj + n, sizeof(obj) - n, "{\"a\":");
	n += (size_t)snprintf(obj + n, sizeof(obj) - n, "1");
	for (int i = 0; i < 33; i++)
		obj[n++] = '}';
	obj[n] = '\0';
	REFUSE_LIM(obj, NULL, 32 * 5, "nested deeper than 32 levels");

	lim.max_depth = 2;
	d = parse("[{\"a\":1}]", &lim);
	jsonp_free(d);
	REFUSE_LIM("[[[1]]]", &lim, 2, "nested deeper than 2 levels");

	/* A deep input costs nothing before the limit. */
	size_t deep = 1 << 20;
	char *dp = malloc(deep + 1);
	memset(dp, '[', deep);
	dp[deep] = '\0';
	REFUSE_LIM(dp, NULL, 32, "nested deeper");
	free(dp);

	lim = (jsonp_limits){.max_values = 3};
	d = parse("[1,2]", &lim);
	jsonp_free(d);
	d = parse("{\"a\":{\"b\":1}}", &lim);
	jsonp_free(d);
	REFUSE_LIM("[1,2,3]", &lim, 5, "more than 3 values");
	REFUSE_LIM("[[],[],1]", &lim, 7, "more than 3 values");

	lim = (jsonp_limits){.max_string = 4};
	d = parse("[\"abcd\",\"\\u00e9\\u00e9\",{\"wxyz\":\"\"}]", &lim);
	CHECK(d != NULL, "strings of 4 decoded bytes under a 4-byte limit");
	jsonp_free(d);
	REFUSE_LIM("[\"abcde\"]", &lim, 1, "string longer than 4 bytes");
	REFUSE_LIM("{\"abcde\":1}", &lim, 1, "string longer than 4 bytes");
	REFUSE_LIM("\"\\u20ac\\u20ac\"", &lim, 0, "string longer than 4 bytes");
}

static void test_numbers(void)
{
	jsonp *d = parse(samples[4], NULL);
	const jsonp_val *r = d ? jsonp_root(d) : NULL;
	int64_t i;
	uint64_t u;
	double x;

	CHECK(jsonp_int(jsonp_at(r, 0), &i) == 0 && i == INT64_MAX, "INT64_MAX");
	CHECK(jsonp_uint(jsonp_at(r, 0), &u) == 0 && u == INT64_MAX, "INT64_MAX as uint");
	CHECK(jsonp_int(jsonp_at(r, 1), &i) == 0 && i == INT64_MIN, "INT64_MIN");
	CHECK(jsonp_uint(jsonp_at(r, 1), &u) == -ERANGE, "INT64_MIN as uint");
	CHECK(jsonp_int(jsonp_at(r, 2), &i) == -ERANGE, "UINT64_MAX as int");
	CHECK(jsonp_uint(jsonp_at(r, 2), &u) == 0 && u == UINT64_MAX, "UINT64_MAX");
	CHECK(jsonp_double(jsonp_at(r, 2), &x) == 0 && x == 18446744073709551615.0, "as double");
	CHECK(jsonp_int(jsonp_at(r, 3), &i) == -ERANGE && jsonp_uint(jsonp_at(r, 3), &u) ==
	      -ERANGE, "2^64 is out of range, not invalid");
	CHECK(jsonp_double(jsonp_at(r, 3), &x) == 0 && x == 18446744073709551616.0, "2^64");
	CHECK(jsonp_double(jsonp_at(r, 4), &x) == 0 && x == 1e308, "1e308");
	CHECK(jsonp_int(jsonp_at(r, 4), &i) == -EINVAL, "1e308 is not an integer literal");
	CHECK(jsonp_double(jsonp_at(r, 5), &x) == 0 && x == 0 && signbit(x),
	      "underflow is accepted as -0");
	jsonp_free(d);

	d = parse("[-9223372036854775809,9223372036854775808,-1,1.5,1e2,1.0,123456789012345"
	          "678901234567890,-0.0]", NULL);
	r = d ? jsonp_root(d) : NULL;
	CHECK(jsonp_int(jsonp_at(r, 0), &i) == -ERANGE && jsonp_uint(jsonp_at(r, 0), &u) ==
	      -ERANGE, "below INT64_MIN");
	CHECK(jsonp_double(jsonp_at(r, 0), &x) == 0 && x == -9223372036854775809.0, "its double");
	CHECK(jsonp_int(jsonp_at(r, 1), &i) == -ERANGE && jsonp_uint(jsonp_at(r, 1), &u) == 0 &&
	      u == 9223372036854775808ull, "2^63");
	CHECK(jsonp_uint(jsonp_at(r, 2), &u) == -ERANGE && jsonp_int(jsonp_at(r, 2), &i) == 0 &&
	      i == -1, "-1");
	CHECK(jsonp_int(jsonp_at(r, 3), &i) == -EINVAL && jsonp_uint(jsonp_at(r, 3), &u) ==
	      -EINVAL, "1.5 is no integer");
	CHECK(jsonp_int(jsonp_at(r, 4), &i) == -EINVAL && jsonp_double(jsonp_at(r, 4), &x) == 0 &&
	      x == 100, "1e2: a double");
	CHECK(jsonp_int(jsonp_at(r, 5), &i) == -EINVAL, "1.0 is no integer literal");
	CHECK(jsonp_int(jsonp_at(r, 6), &i) == -ERANGE && jsonp_double(jsonp_at(r, 6), &x) == 0 &&
	      x == 123456789012345678901234567890.0, "a 30-digit integer");
	CHECK(jsonp_double(jsonp_at(r, 7), &x) == 0 && x == 0 && signbit(x), "-0.0");
	CHECK(jsonp_int(jsonp_at(r, 8), &i) == -EINVAL, "past the end");
	CHECK(jsonp_double(NULL, &x) == -EINVAL && jsonp_str(NULL, NULL) == NULL, "NULL");
	jsonp_free(d);

	/* A 309-digit integer overflows a double. */
	char big[400];
	memset(big, '9', 309);
	big[309] = '\0';
	refuse_n(__LINE__, big, 309, NULL, -EINVAL, 0, "number out of range");
	big[308] = '\0';
	d = parse(big, NULL);
	CHECK(d && jsonp_double(jsonp_root(d), &x) == 0 && x > 9e307, "308 nines: %g", x);
	jsonp_free(d);

	/* Numbers are read in the C locale whatever the process's is. */
	if (setlocale(LC_NUMERIC, "de_DE.UTF-8") || setlocale(LC_NUMERIC, "fr_FR.UTF-8")) {
		d = parse("2.5", NULL);
		CHECK(d && jsonp_double(jsonp_root(d), &x) == 0 && x == 2.5, "2.5 in a ',' locale");
		jsonp_free(d);
		setlocale(LC_NUMERIC, "C");
	} else {
		printf("(no de_DE/fr_FR locale: locale check skipped)\n");
	}
}

static void test_getters(void)
{
	jsonp *d = parse("{\"disk\":\"/dev/sda\",\"n\":3,\"f\":1.5,\"b\":true,\"z\":null,"
	                 "\"big\":18446744073709551615,\"neg\":-1,\"arr\":[1]}", NULL);
	const jsonp_val *o = d ? jsonp_root(d) : NULL;
	const char *s;
	size_t len;
	int64_t i;
	uint64_t u;
	double x;
	int b;

	CHECK(!strcmp(jsonp_get_str(o, "disk", "dflt"), "/dev/sda"), "get_str");
	CHECK(!strcmp(jsonp_get_str(o, "n", "dflt"), "dflt"), "get_str of a number: default");
	CHECK(!strcmp(jsonp_get_str(o, "none", "dflt"), "dflt"), "get_str missing: default");
	CHECK(jsonp_get_str(o, "z", NULL) == NULL, "get_str of null: default");
	CHECK(jsonp_get_strn(o, "disk", &s, &len) == 0 && len == 8 && !strcmp(s, "/dev/sda"),
	      "get_strn");
	CHECK(jsonp_get_strn(o, "none", &s, &len) == -ENOENT, "get_strn missing");
	CHECK(jsonp_get_strn(o, "n", &s, &len) == -EINVAL, "get_strn of a number");
	CHECK(jsonp_get_strn(o, "z", &s, NULL) == -EINVAL, "get_strn of null");
	CHECK(jsonp_get_int(o, "n", &i) == 0 && i == 3, "get_int");
	CHECK(jsonp_get_int(o, "none", &i) == -ENOENT, "get_int missing");
	CHECK(jsonp_get_int(o, "disk", &i) == -EINVAL, "get_int of a string");
	CHECK(jsonp_get_int(o, "f", &i) == -EINVAL, "get_int of 1.5");
	CHECK(jsonp_get_int(o, "z", &i) == -EINVAL, "get_int of null");
	CHECK(jsonp_get_int(o, "arr", &i) == -EINVAL, "get_int of an array");
	CHECK(jsonp_get_int(o, "big", &i) == -ERANGE, "get_int out of range");
	CHECK(jsonp_get_uint(o, "big", &u) == 0 && u == UINT64_MAX, "get_uint");
	CHECK(jsonp_get_uint(o, "neg", &u) == -ERANGE, "get_uint of -1");
	CHECK(jsonp_get_uint(o, "b", &u) == -EINVAL, "get_uint of a bool");
	CHECK(jsonp_get_double(o, "f", &x) == 0 && x == 1.5, "get_double");
	CHECK(jsonp_get_double(o, "n", &x) == 0 && x == 3, "get_double of an integer");
	CHECK(jsonp_get_double(o, "disk", &x) == -EINVAL, "get_double of a string");
	CHECK(jsonp_get_double(o, "none", &x) == -ENOENT, "get_double missing");
	CHECK(jsonp_get_bool(o, "b", &b) == 0 && b == 1, "get_bool");
	CHECK(jsonp_get_bool(o, "n", &b) == -EINVAL, "get_bool of a number");
	CHECK(jsonp_get_bool(o, "none", &b) == -ENOENT, "get_bool missing");
	CHECK(jsonp_get_int(NULL, "n", &i) == -ENOENT, "getter on a missing object");
	CHECK(jsonp_get_int(jsonp_get(o, "arr"), "n", &i) == -EINVAL, "getter on an array");
	CHECK(jsonp_get_int(jsonp_get(o, "nested"), "n", &i) == -ENOENT, "chained, missing");
	CHECK(!strcmp(jsonp_kind_name(jsonp_type(jsonp_get(o, "disk"))), "string") &&
	      !strcmp(jsonp_kind_name(jsonp_type(jsonp_get(o, "none"))), "missing") &&
	      !strcmp(jsonp_kind_name(JSONP_OBJECT), "object"), "kind names");
	jsonp_free(d);
}

/* Big objects: lookups, the sorted duplicate check. */
static void test_big(void)
{
	size_t cap = 8 << 20, n = 0;
	char *doc = malloc(cap);
	jsonp_limits lim = {.max_values = 200001};
	n += (size_t)snprintf(doc, cap, "{");
	for (int i = 0; i < 200000; i++)
		n += (size_t)snprintf(doc + n, cap - n, "%s\"k%d\":%d", i ? "," : "", i, i);
	n += (size_t)snprintf(doc + n, cap - n, "}");
	uint64_t t0 = bks_now_ns();
	jsonp *d;
	bks_err e = {0};
	int r = jsonp_parse(doc, n, &lim, &d, NULL, &e);
	uint64_t ms = (bks_now_ns() - t0) / 1000000;
	CHECK(r == 0, "200000 keys: %s", e.msg);
	if (r == 0) {
		int64_t v;
		CHECK(jsonp_len(jsonp_root(d)) == 200000 && jsonp_get_int(jsonp_root(d), "k199999",
		      &v) == 0 && v == 199999, "last key found");
		jsonp_free(d);
	}
	CHECK(ms < 5000, "200000 keys took %llu ms", (unsigned long long)ms);
	printf("200000-key object: %llu ms\n", (unsigned long long)ms);
	lim.max_values = 200000;
	CHECK(jsonp_parse(doc, n, &lim, &d, NULL, &e) == -E2BIG, "one value too many");
	free(doc);
}

/* Every proper prefix of a container document is refused; random damage never
 * crashes (ASan watches) and never yields a tree that disagrees with itself. */
static void test_damage(void)
{
	bks_rng rng;
	bks_rng_seed(&rng, 7);
	for (size_t s = 0; s < BKS_ARRAY_SIZE(samples); s++) {
		size_t n = strlen(samples[s]);
		jsonp *d;
		int bad = 0;
		if (samples[s][0] != '{' && samples[s][0] != '[' && samples[s][0] != '"')
			continue;
		for (size_t k = 0; k + 1 < n; k++) {
			char *p = malloc(k ? k : 1);
			memcpy(p, samples[s], k);
			if (jsonp_parse(p, k, NULL, &d, NULL, NULL) != -EINVAL)
				bad++;
			free(p);
		}
		CHECK(!bad, "sample %zu: %d prefixes accepted", s, bad);
	}
	int accepted = 0;
	for (int it = 0; it < 20000; it++) {
		const char *src = samples[bks_rng_below(&rng, BKS_ARRAY_SIZE(samples))];
		size_t n = strlen(src);
		char *p = malloc(n + 8);
		memcpy(p, src, n);
		for (int m = 0; m < 1 + (int)bks_rng_below(&rng, 3) && n > 0; m++) {
			size_t at = bks_rng_below(&rng, n);
			switch (bks_rng_below(&rng, 3)) {
			case 0: p[at] = (char)bks_rng_next(&rng); break;
			case 1: p[at] = "{}[]\",:\\0u-e"[bks_rng_below(&rng, 12)]; break;
			case 2: n = at; break;
			}
		}
		jsonp *d;
		bks_err e = {0};
		size_t off = (size_t)-1;
		int r = jsonp_parse(p, n, NULL, &d, &off, &e);
		if (r == 0) {
			accepted++;
			jsonp_free(d);
		} else {
			CHECK((r == -EINVAL || r == -E2BIG) && off <= n && e.msg[0],
			      "damaged doc: %d at %zu", r, off);
		}
		free(p);
	}
	printf("damage: %d of 20000 damaged documents still valid\n", accepted);
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "--seeds"))
		return write_seeds(argv[2]);
	for (size_t i = 0; i < BKS_ARRAY_SIZE(samples); i++)
		jsonp_free(parse(samples[i], NULL));
	test_types();
	test_strings();
	test_refusals();
	test_limits();
	test_numbers();
	test_getters();
	test_big();
	test_damage();
	return tu_finish();
}
