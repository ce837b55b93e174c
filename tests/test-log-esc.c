/* test-log-esc: log_esc (daemon/log.h), the one escaping of untrusted strings for
 * bkstord's log: control bytes, DEL, C1 controls, backslash and invalid UTF-8 are
 * escaped, valid UTF-8 and printable ASCII kept, long input cut with "..." at a whole
 * escape, and the output never exceeds its buffer. */
#include <config.h>

#include "tests/testutil.h"

#include <string.h>

#include "daemon/log.h"

static void expect(const char *in, size_t n, size_t cap, const char *want)
{
	char out[512];
	memset(out, 'Z', sizeof(out));
	const char *r = log_esc(out, cap, in, n);
	CHECK(r == out, "returns its buffer");
	CHECK(!strcmp(out, want), "got \"%s\", wanted \"%s\"", out, want);
	CHECK(strlen(out) < cap, "fits in %zu", cap);
	CHECK(out[cap] == 'Z', "nothing written past cap %zu", cap);
}

int main(void)
{
	/* The AUTH name of the defect: a newline forging a line, an ESC sequence. */
	const char evil[] = "evil\n2026-01-01T00:00:00Z bkstord error: x\x1b[31m";
	expect(evil, sizeof(evil) - 1, 200,
	       "evil\\n2026-01-01T00:00:00Z bkstord error: x\\x1b[31m");
	expect("a\tb\rc\\d\x7f", 8, 100, "a\\tb\\x0dc\\\\d\\x7f");
	expect("nul\0x", 5, 100, "nul\\x00x");
	/* UTF-8: kept when valid; C1 controls (U+0080..U+009F), overlongs, surrogates,
	 * truncated sequences escaped byte by byte. */
	expect("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14, 100, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
	expect("\xc2\x9b" "2J", 4, 100, "\\xc2\\x9b2J");
	expect("\xc0\xaf", 2, 100, "\\xc0\\xaf");
	expect("\xed\xa0\x80", 3, 100, "\\xed\\xa0\\x80");
	expect("x\xe2\x82", 3, 100, "x\\xe2\\x82");
	/* Cutting: room for "..." is kept while more follows; an escape is never split. */
	expect("abcdef", 6, 7, "abcdef");
	expect("abcdefg", 7, 7, "abc...");
	expect("ab\ncdef", 7, 8, "ab\\n...");
	expect("ab\ncdef", 7, 7, "ab...");
	expect("\n\n\n\n", 4, 9, "\\n\\n\\n\\n");
	expect("", 0, 1, "");
	char one[1] = {'Z'};
	log_esc(one, 1, "abc", 3);
	CHECK(one[0] == 0, "cap 1: just the NUL");
	char big[LOG_ESC_LEN];
	char in[4096];
	memset(in, '\x1b', sizeof(in));
	log_esc(big, sizeof(big), in, sizeof(in));
	CHECK(strlen(big) < sizeof(big) && !strcmp(big + strlen(big) - 3, "..."),
	      "a 4 KiB path of ESCs is cut to the buffer, ending in ...");
	CHECK(!strchr(big, '\x1b'), "no raw ESC left");
	char s[32];
	CHECK(!strcmp(log_escs(s, sizeof(s), "plain/path"), "plain/path"), "log_escs");
	return tu_finish();
}
