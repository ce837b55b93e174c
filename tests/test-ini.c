/* test-ini: the INI lexer both configuration files use (common/ini.h): items and
 * their lines, comments, quoting and escapes, CRLF, the byte order mark, every bad
 * line with its line and reason, line lengths at and past INI_MAX_LINE, duplicate
 * keys (the lexer hands over both; the daemon refuses a repeated scalar and adds up
 * a repeated list, bkstorctl refuses any repeat), ini_fail's form, ini_read_file's
 * refusals, and ini_wipe. */
#include <config.h>

#include "tests/testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/client_conf.h"
#include "common/ini.h"
#include "daemon/config.h"

/* The items of len bytes of text as "S<line>:name" and "K<line>:key=value" (Q for
 * a quoted value) separated by '|', into out; returns ini_next's last answer
 * (INI_END or -EINVAL, e filled). */
static int lex_n(const char *text, size_t len, char *out, size_t cap, bks_err *e)
{
	static ini lx; /* 4 KiB: not on the stack of every caller */
	size_t o = 0;
	int r;

	bks_err_clear(e);
	out[0] = '\0';
	ini_init(&lx, text, len, "t.ini", e);
	while ((r = ini_next(&lx)) > 0) {
		if (r == INI_SECTION)
			o += (size_t)snprintf(out + o, cap - o, "S%u:%s|", lx.line, lx.name);
		else
			o += (size_t)snprintf(out + o, cap - o, "%c%u:%s=%s|", lx.quoted ? 'Q' : 'K',
			                      lx.line, lx.key, lx.value);
		if (o >= cap)
			return -E2BIG; /* the test's buffer, not the lexer */
	}
	ini_wipe(&lx);
	return r;
}

static int fails_at_group;
static void group_done(const char *what)
{
	printf("%s - %s\n", tu_failures == fails_at_group ? "ok" : "not ok", what);
	fails_at_group = tu_failures;
}

static char items[3 * INI_MAX_LINE];

static int lex(const char *text, char *out, size_t cap, bks_err *e)
{
	return lex_n(text, strlen(text), out, cap, e);
}

static void accepts(int at, const char *text, const char *want)
{
	char got[1024];
	bks_err e;
	int r = lex(text, got, sizeof(got), &e);
	CHECK(r == INI_END && !strcmp(got, want), "line %d: got %d '%s' (%s), want '%s'", at, r,
	      got, e.msg, want);
}

/* text (len bytes; 0: a C string) is refused with a message that starts
 * "t.ini:LINE: " and holds has. */
static void refuses(int at, const char *text, size_t len, unsigned line, const char *has)
{
	char got[1024], want[32];
	bks_err e;
	int r = lex_n(text, len ? len : strlen(text), got, sizeof(got), &e);
	snprintf(want, sizeof(want), "t.ini:%u: ", line);
	CHECK(r == -EINVAL && e.code == -EINVAL && !strncmp(e.msg, want, strlen(want)) &&
	      strstr(e.msg, has), "line %d: got %d '%s', want '%s...%s'", at, r, e.msg, want, has);
}

static void test_items(void)
{
	accepts(__LINE__, "", "");
	accepts(__LINE__, "\n\n# only\n; comments\n   # indented\n", "");
	accepts(__LINE__, "[array]\nname = vault\n", "S1:array|K2:name=vault|");
	/* Blanks around names, keys and values go; inside they stay. */
	accepts(__LINE__, "  [ export  home ]  # c\n\t key one\t=\t a  b \t\n",
	        "S1:export  home|K2:key one=a  b|");
	/* A comment starts at '#' or ';' at the value's start or after a blank only. */
	accepts(__LINE__, "a = x#y;z # c\nb = #all comment\nc = x ;c\nd=;\n",
	        "K1:a=x#y;z|K2:b=|K3:c=x|K4:d=|");
	accepts(__LINE__, "k =\nk2=\n", "K1:k=|K2:k2=|");
	accepts(__LINE__, "a = b = c\n", "K1:a=b = c|"); /* the first '=' splits */
	/* Quotes: everything between, \" and \\ the escapes, a comment after. */
	accepts(__LINE__, "a = \"x # y ; z\"\nb = \"q\\\"x\\\\y\" # c\nc = \"\"\nd = \" s \"\n",
	        "Q1:a=x # y ; z|Q2:b=q\"x\\y|Q3:c=|Q4:d= s |");
	accepts(__LINE__, "a = x\"y\"\n", "K1:a=x\"y\"|"); /* a quote inside is text */
	accepts(__LINE__, "a = tab\there\n", "K1:a=tab\there|");
	/* CRLF, no final newline, a byte order mark at the start only. */
	accepts(__LINE__, "[s]\r\na = b\r\n\r\nc = \"d\"\r\n", "S1:s|K2:a=b|Q4:c=d|");
	accepts(__LINE__, "a = b", "K1:a=b|");
	accepts(__LINE__, "\xef\xbb\xbf[s]\na = 1\n", "S1:s|K2:a=1|");
	/* Duplicate keys and sections: the lexer reports each with its line; meaning is
	 * the caller's (test_duplicates). */
	accepts(__LINE__, "[s]\nk = 1\n[s]\nk = 2\n", "S1:s|K2:k=1|S3:s|K4:k=2|");
	/* Line numbers count every line, comments and blanks included. */
	accepts(__LINE__, "#\n\n[a]\n;\n\nx = 1\n", "S3:a|K6:x=1|");
	group_done("items, comments, quotes, CRLF, BOM");
}

static void test_bad_lines(void)
{
	refuses(__LINE__, "[s]\njust words\n", 0, 2, "malformed line (expected 'key = value'");
	refuses(__LINE__, "[s]\n\n = 5\n", 0, 3, "malformed line (no key before '=')");
	refuses(__LINE__, "[s\n", 0, 1, "malformed section header (no ']')");
	refuses(__LINE__, "[s] x\n", 0, 1, "text after the section header [s]");
	refuses(__LINE__, "a = \"x\n", 0, 1, "unterminated quoted value (no closing '\"')");
	refuses(__LINE__, "a = \"x\\\"\n", 0, 1, "unterminated quoted value");
	refuses(__LINE__, "#\na = \"x\\n\"\n", 0, 2, "bad escape in quoted value");
	refuses(__LINE__, "a = \"x\" y\n", 0, 1, "text after the closing quote");
	refuses(__LINE__, "a = \"x\"y\n", 0, 1, "text after the closing quote");
	refuses(__LINE__, "a = x\x01y\n", 0, 1, "control character 0x01 at column 6");
	refuses(__LINE__, "a = x\x7fy\n", 0, 1, "control character 0x7f at column 6");
	refuses(__LINE__, "# \x1b[31m\n", 0, 1, "control character 0x1b"); /* comments too */
	refuses(__LINE__, "a = 1\r\r\n", 0, 1, "control character 0x0d"); /* one CR only */
	static const char nul[] = "a = 1\nb\0 = 2\n";
	refuses(__LINE__, nul, sizeof(nul) - 1, 2, "control character 0x00 at column 2 (a NUL byte");
	/* The first bad line stops the lexer: the later one is never reported. */
	refuses(__LINE__, "ok = 1\n[bad\n[worse\n", 0, 2, "malformed section header");
	group_done("bad lines, each with its line");
}

static void test_long_lines(void)
{
	size_t cap = 3 * INI_MAX_LINE;
	char *t = malloc(cap), got[64];
	bks_err e;
	REQUIRE_VOID(t != NULL, "malloc");

	/* "k = " + value: exactly INI_MAX_LINE bytes, with \n, with \r\n, without an end. */
	memset(t, 'v', INI_MAX_LINE);
	memcpy(t, "k = ", 4);
	strcpy(t + INI_MAX_LINE, "\n");
	CHECK(lex_n(t, INI_MAX_LINE + 1, items, sizeof(items), &e) == INI_END,
	      "a line of %u bytes: %s", INI_MAX_LINE, e.msg);
	strcpy(t + INI_MAX_LINE, "\r\n");
	CHECK(lex_n(t, INI_MAX_LINE + 2, items, sizeof(items), &e) == INI_END,
	      "%u bytes and CRLF (the CR does not count): %s", INI_MAX_LINE, e.msg);
	CHECK(lex_n(t, INI_MAX_LINE, items, sizeof(items), &e) == INI_END,
	      "%u bytes, no newline: %s", INI_MAX_LINE, e.msg);
	/* One byte more, on the third line. */
	memcpy(t, "#\n#\n", 4);
	memset(t + 4, 'v', INI_MAX_LINE + 1);
	memcpy(t + 4, "k = ", 4);
	strcpy(t + 4 + INI_MAX_LINE + 1, "\r\n");
	refuses(__LINE__, t, strlen(t), 3, "line longer than 4096 bytes");
	/* A quoted value as long as a line allows, unescaped to the byte. */
	size_t n = INI_MAX_LINE - 6; /* k = "" around it */
	strcpy(t, "k = \"");
	for (size_t i = 0; i < n; i += 2)
		memcpy(t + 5 + i, "\\\\", 2);
	strcpy(t + 5 + n, "\"\n");
	static ini lx;
	ini_init(&lx, t, strlen(t), "t.ini", &e);
	int r = ini_next(&lx);
	size_t vl = r == INI_KEY ? strlen(lx.value) : 0;
	CHECK(r == INI_KEY && lx.quoted && vl == n / 2 && strspn(lx.value, "\\") == vl,
	      "a %zu-byte quoted line: %d, %zu backslashes (want %zu)", strlen(t) - 1, r, vl, n / 2);
	CHECK(ini_next(&lx) == INI_END, "then the end");
	/* Many lines: the count does not wrap or drift. */
	size_t lines = 2000;
	char *big = malloc(lines * 4 + 16);
	REQUIRE_VOID(big != NULL, "malloc");
	for (size_t i = 0; i < lines; i++)
		memcpy(big + i * 4, "#xx\n", 4);
	strcpy(big + lines * 4, "[x\n");
	snprintf(got, sizeof(got), "t.ini:%zu: ", lines + 1);
	CHECK(lex_n(big, strlen(big), items, sizeof(items), &e) == -EINVAL &&
	      !strncmp(e.msg, got, strlen(got)), "the %zu-th line: %s", lines + 1, e.msg);
	free(big);
	free(t);
	group_done("line lengths");
}

/* What the two callers make of a repeated key (the behaviour before the shared
 * lexer, kept): bkstord refuses a scalar given twice and adds the items of a list
 * given twice; bkstorctl refuses any key given twice. */
static void test_duplicates(void)
{
	bks_cfg c;
	client_conf cc;
	bks_err e;
	static const char *const dup_scalar =
		"[array]\ndisks = /a\nstrip_size = 64K\n# again\nstrip_size = 128K\n";
	static const char *const dup_list = "[array]\ndisks = /a /b\ndisks = /c\n";
	static const char *const dup_sect = "[store]\nzstd_level = 3\n[array]\ndisks = /a\n"
	                                    "[store]\nzstd_level = 5\n";

	bks_err_clear(&e);
	CHECK(cfg_parse(dup_scalar, strlen(dup_scalar), "t.ini", &c, &e) == -EINVAL &&
	      !strcmp(e.msg, "t.ini:5: duplicate key 'strip_size' in section [array] (first set "
	              "on line 3)"), "daemon, scalar twice: %s", e.msg);
	CHECK(cfg_parse(dup_list, strlen(dup_list), "t.ini", &c, &e) == 0 && c.ndisks == 3 &&
	      !strcmp(c.disks[2], "/c"), "daemon, list twice: %d disks (%s)", c.ndisks, e.msg);
	cfg_free(&c);
	CHECK(cfg_parse(dup_sect, strlen(dup_sect), "t.ini", &c, &e) == -EINVAL &&
	      strstr(e.msg, "t.ini:6: duplicate key 'zstd_level'"),
	      "daemon, a section opened twice still counts: %s", e.msg);

	static const char *const cl = "[client]\nname = a\n[client]\n\nname = b\n";
	client_conf_defaults(&cc);
	CHECK(client_conf_parse(cl, strlen(cl), "t.ini", &cc, &e) == -EINVAL &&
	      !strcmp(e.msg, "t.ini:5: name given twice (first on line 2)"),
	      "client, key twice: %s", e.msg);
	/* Both report a lexer error the same way. */
	static const char *const bad = "[array]\ndisks = /a\nname = \"x\n";
	CHECK(cfg_parse(bad, strlen(bad), "t.ini", &c, &e) == -EINVAL &&
	      !strcmp(e.msg, "t.ini:3: unterminated quoted value (no closing '\"')"),
	      "daemon, lexer error: %s", e.msg);
	client_conf_defaults(&cc);
	CHECK(client_conf_parse(bad + 19, strlen(bad + 19), "t.ini", &cc, &e) == -EINVAL &&
	      !strcmp(e.msg, "t.ini:1: unterminated quoted value (no closing '\"')"),
	      "client, lexer error: %s", e.msg);
	group_done("duplicate keys (daemon and client) and one error form");
}

static void test_fail_and_files(void)
{
	bks_err e;
	char *text, path[512];
	size_t len;
	mode_t mode;

	CHECK(ini_fail(&e, "f.conf", 7, -ERANGE, "x %d", 1) == -ERANGE && e.code == -ERANGE &&
	      !strcmp(e.msg, "f.conf:7: x 1"), "ini_fail with a line: %s", e.msg);
	CHECK(ini_fail(&e, "f.conf", 0, -EINVAL, "whole") == -EINVAL &&
	      !strcmp(e.msg, "f.conf: whole"), "ini_fail about the file: %s", e.msg);
	CHECK(ini_fail(NULL, "f.conf", 1, -EIO, "no e") == -EIO, "ini_fail without e");
	/* A name longer than the message: cut, terminated, the code kept. */
	char longname[600];
	memset(longname, 'f', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	CHECK(ini_fail(&e, longname, 3, -EINVAL, "reason %s", "x") == -EINVAL &&
	      strlen(e.msg) == sizeof(e.msg) - 1 && e.msg[0] == 'f' && e.code == -EINVAL,
	      "a long file name: %zu bytes", strlen(e.msg));
	memset(longname, 'f', 305);
	longname[305] = '\0';
	CHECK(ini_fail(&e, longname, 12345, -EINVAL, "%s", "a reason") == -EINVAL &&
	      strlen(e.msg) == sizeof(e.msg) - 1 && strstr(e.msg, ":12345: a rea"),
	      "the reason cut at the end: %s", e.msg + 290);

	const char *dir = tu_tmpdir("test-ini");
	snprintf(path, sizeof(path), "%s/a.conf", dir);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0640);
	REQUIRE_VOID(fd >= 0 && write(fd, "[s]\nk = v\n", 10) == 10 && close(fd) == 0, "write");
	CHECK(ini_read_file(path, 10, &text, &len, &mode, &e) == 0 && len == 10 &&
	      !memcmp(text, "[s]\nk = v\n", 11) && (mode & 0777) == 0640,
	      "a file of exactly the limit: %s", e.msg);
	free(text);
	CHECK(ini_read_file(path, 9, &text, &len, &mode, &e) == -EFBIG && !text &&
	      strstr(e.msg, "a.conf: larger than 9 bytes"), "one byte over: %s", e.msg);
	CHECK(ini_read_file(dir, 100, &text, &len, &mode, &e) == -EINVAL && !text &&
	      strstr(e.msg, "not a regular file"), "a directory: %s", e.msg);
	snprintf(path, sizeof(path), "%s/none.conf", dir);
	CHECK(ini_read_file(path, 100, &text, &len, &mode, &e) == -ENOENT && !text &&
	      strstr(e.msg, "none.conf: open: "), "missing: %s", e.msg);
	tu_cleanup();

	static ini lx;
	ini_init(&lx, "secret = 0123abcd\n", 18, "t", &e);
	CHECK(ini_next(&lx) == INI_KEY && !strcmp(lx.value, "0123abcd"), "a secret value");
	ini_wipe(&lx);
	size_t nz = 0;
	for (size_t i = 0; i < sizeof(lx.buf); i++)
		nz += lx.buf[i] != 0;
	CHECK(nz == 0, "ini_wipe leaves no byte of the line (%zu left)", nz);
	group_done("ini_fail, ini_read_file, ini_wipe");
}

int main(void)
{
	test_items();
	test_bad_lines();
	test_long_lines();
	test_duplicates();
	test_fail_and_files();
	return tu_finish();
}
