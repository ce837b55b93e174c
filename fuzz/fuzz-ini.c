/* fuzz-ini: libFuzzer target for the INI lexer (common/ini.c) both configuration
 * files go through; admins edit them by hand. Properties, beyond "no crash, no
 * leak, no hang":
 *  - items come with strictly increasing line numbers, none past the text's lines;
 *  - every name, key and value is printable (tab allowed), names and keys are
 *    trimmed, keys are not empty and hold no '=', names hold no ']'; an unquoted
 *    value is trimmed and holds no comment start;
 *  - a refusal is -EINVAL with a message "fuzz.ini:LINE: ..." naming the line
 *    where the lexer stopped;
 *  - round trip: the items written back out ("[name]", "key = \"escaped\"") lex
 *    again to the same items (when every written line fits INI_MAX_LINE);
 *  - lexing is a function of the text (a second pass gives the same items). */
#include <config.h>

#include "fuzz/fuzz.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/ini.h"

static int blank(char ch) { return ch == ' ' || ch == '\t'; }

static int trimmed(const char *s)
{
	size_t n = strlen(s);
	return !n || (!blank(s[0]) && !blank(s[n - 1]));
}

/* The items of a text, serialized: kind, quoted, then the strings, NUL-separated. */
typedef struct trace {
	char *p;
	size_t len, cap;
	int r;           /* the last ini_next answer */
	unsigned line;   /* of the last item, or of the refused line */
	int fits;        /* every item rewrites to a line of at most INI_MAX_LINE */
} trace;

static void add(trace *t, const void *p, size_t n)
{
	if (t->len + n > t->cap) {
		t->cap = (t->len + n) * 2 + 64;
		t->p = realloc(t->p, t->cap);
		NEED(t->p);
	}
	memcpy(t->p + t->len, p, n);
	t->len += n;
}

static size_t escaped_len(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		n += 1 + (*s == '"' || *s == '\\');
	return n;
}

static void run(const char *text, size_t len, trace *t)
{
	static ini lx;
	size_t nlines = 0;
	for (size_t i = 0; i < len; i++)
		nlines += text[i] == '\n';
	if (len && text[len - 1] != '\n')
		nlines++;

	memset(t, 0, sizeof(*t));
	t->fits = 1;
	bks_err e = {0};
	ini_init(&lx, text, len, "fuzz.ini", &e);
	unsigned last = 0;
	while ((t->r = ini_next(&lx)) > 0) {
		NEED(lx.line > last && lx.line <= nlines);
		last = lx.line;
		char k = (char)t->r, q = (char)lx.quoted;
		add(t, &k, 1);
		add(t, &q, 1);
		if (t->r == INI_SECTION) {
			NEED(lx.name && fuzz_printable(lx.name) && trimmed(lx.name) && !strchr(lx.name, ']'));
			add(t, lx.name, strlen(lx.name) + 1);
			t->fits &= strlen(lx.name) + 2 <= INI_MAX_LINE;
			continue;
		}
		NEED(t->r == INI_KEY && lx.key && lx.value);
		NEED(lx.key[0] && fuzz_printable(lx.key) && trimmed(lx.key) && !strchr(lx.key, '='));
		NEED(lx.key[0] != '[' && lx.key[0] != '#' && lx.key[0] != ';');
		NEED(fuzz_printable(lx.value));
		if (!lx.quoted) {
			NEED(trimmed(lx.value) && lx.value[0] != '#' && lx.value[0] != ';');
			NEED(!strstr(lx.value, " #") && !strstr(lx.value, " ;") &&
			     !strstr(lx.value, "\t#") && !strstr(lx.value, "\t;"));
		}
		add(t, lx.key, strlen(lx.key) + 1);
		add(t, lx.value, strlen(lx.value) + 1);
		t->fits &= strlen(lx.key) + 5 + escaped_len(lx.value) <= INI_MAX_LINE;
	}
	t->line = lx.line;
	ini_wipe(&lx);
	if (t->r < 0) {
		char want[32];
		snprintf(want, sizeof(want), "fuzz.ini:%u: ", lx.line);
		NEED(t->r == -EINVAL && e.code == -EINVAL && lx.line >= 1 && lx.line <= nlines);
		NEED(!strncmp(e.msg, want, strlen(want)));
	}
}

/* The items of t written back as text: sections as "[name]", keys with their
 * values always quoted (the trace holds every key and value whole). The text starts
 * with a comment line: a first key that starts with a byte order mark (the lexer
 * skips only the text's first) would otherwise lose it. */
static char *rewrite(const trace *t, size_t *len)
{
	trace out = {0};
	size_t i = 0;
	add(&out, "#\n", 2);
	while (i < t->len) {
		char kind = t->p[i];
		i += 2;
		if (kind == INI_SECTION) {
			const char *nm = t->p + i;
			add(&out, "[", 1);
			add(&out, nm, strlen(nm));
			add(&out, "]\n", 2);
			i += strlen(nm) + 1;
			continue;
		}
		const char *key = t->p + i, *val = key + strlen(key) + 1;
		add(&out, key, strlen(key));
		add(&out, " = \"", 4);
		for (const char *v = val; *v; v++) {
			if (*v == '"' || *v == '\\')
				add(&out, "\\", 1);
			add(&out, v, 1);
		}
		add(&out, "\"\n", 2);
		i += strlen(key) + 1 + strlen(val) + 1;
	}
	*len = out.len;
	return out.p;
}

/* t and u hold the same keys, names and values (quoting aside: the rewrite quotes
 * every value). */
static int same_items(const trace *t, const trace *u)
{
	size_t i = 0, j = 0;
	while (i < t->len && j < u->len) {
		if (t->p[i] != u->p[j])
			return 0;
		int strs = t->p[i] == INI_SECTION ? 1 : 2;
		i += 2;
		j += 2;
		for (int s = 0; s < strs; s++) {
			if (strcmp(t->p + i, u->p + j))
				return 0;
			i += strlen(t->p + i) + 1;
			j += strlen(u->p + j) + 1;
		}
	}
	return i == t->len && j == u->len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	trace a, b, c;
	run((const char *)data, size, &a);
	run((const char *)data, size, &b);
	NEED(a.r == b.r && a.line == b.line && a.len == b.len &&
	     (!a.len || !memcmp(a.p, b.p, a.len)));
	free(b.p);
	if (a.fits) {
		size_t len;
		char *text = rewrite(&a, &len);
		run(text ? text : "", len, &c);
		NEED(c.r == INI_END && same_items(&a, &c));
		free(text);
		free(c.p);
	}
	free(a.p);
	return 0;
}
