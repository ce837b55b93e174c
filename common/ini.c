/* common/ini.c: see ini.h.
 *
 * A line is copied into p->buf and cut in place: the key and the value end with a
 * NUL written over the '=' or the blank after them, and a quoted value is unescaped
 * over itself (the output never outruns the input), so no item needs more room
 * than its line.
 */
#include <config.h>

#include "common/ini.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int is_blank(char ch) { return ch == ' ' || ch == '\t'; }
static int is_comment(char ch) { return ch == '#' || ch == ';'; }

int ini_vfail(bks_err *e, const char *file, unsigned line, int code, const char *fmt,
              va_list ap)
{
	char where[sizeof(e->msg)];
	if (line)
		snprintf(where, sizeof(where), "%s:%u", file, line);
	return bks_vfail_in(e, code, line ? where : file, fmt, ap);
}

int ini_fail(bks_err *e, const char *file, unsigned line, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = ini_vfail(e, file, line, code, fmt, ap);
	va_end(ap);
	return r;
}

void ini_init(ini *p, const char *text, size_t len, const char *file, bks_err *e)
{
	memset(p, 0, offsetof(ini, buf));
	p->buf[0] = '\0';
	p->text = text;
	p->len = len;
	p->file = file ? file : "config";
	p->e = e;
	if (len >= 3 && !memcmp(text, "\xef\xbb\xbf", 3))
		p->pos = 3; /* the UTF-8 byte order mark some editors write */
}

void ini_wipe(ini *p)
{
	if (p)
		explicit_bzero(p->buf, sizeof(p->buf));
}

static char *trim(char *s)
{
	size_t n;
	while (is_blank(*s))
		s++;
	for (n = strlen(s); n && is_blank(s[n - 1]);)
		s[--n] = '\0';
	return s;
}

/* "[ name ] # comment" at s (the '['). */
static int lex_section(ini *p, char *s)
{
	char *rb = strchr(s, ']'), *rest;
	if (!rb)
		return ini_fail(p->e, p->file, p->line, -EINVAL, "malformed section header (no ']')");
	*rb = '\0';
	p->name = trim(s + 1);
	rest = trim(rb + 1);
	if (*rest && !is_comment(*rest))
		return ini_fail(p->e, p->file, p->line, -EINVAL, "text after the section header "
		                "[%.64s]", p->name);
	return INI_SECTION;
}

/* The value at s (just past the '='), cut and unquoted in place. */
static int lex_value(ini *p, char *s)
{
	size_t n = 0;
	char *out;

	while (is_blank(*s))
		s++;
	if (!(p->quoted = *s == '"')) {
		while (s[n] && !(is_comment(s[n]) && (n == 0 || is_blank(s[n - 1]))))
			n++;
		while (n && is_blank(s[n - 1]))
			n--;
		s[n] = '\0';
		p->value = s;
		return INI_KEY;
	}
	p->value = out = s;
	for (s++; *s != '"'; s++) {
		if (!*s)
			return ini_fail(p->e, p->file, p->line, -EINVAL, "unterminated quoted value "
			                "(no closing '\"')");
		if (*s == '\\' && s[1] != '"' && s[1] != '\\')
			return ini_fail(p->e, p->file, p->line, -EINVAL, "bad escape in quoted value "
			                "(only \\\" and \\\\ may follow '\\')");
		out[n++] = *s == '\\' ? *++s : *s;
	}
	for (s++; is_blank(*s); s++)
		;
	if (*s && !is_comment(*s))
		return ini_fail(p->e, p->file, p->line, -EINVAL, "text after the closing quote");
	out[n] = '\0';
	return INI_KEY;
}

/* One line of n bytes at s: an item, 0 for a blank or comment line, or -EINVAL. */
static int lex_line(ini *p, const char *s, size_t n)
{
	char *line, *eq;

	if (n && s[n - 1] == '\r')
		n--;
	if (n > INI_MAX_LINE)
		return ini_fail(p->e, p->file, p->line, -EINVAL, "line longer than %u bytes",
		                INI_MAX_LINE);
	for (size_t i = 0; i < n; i++)
		if (((unsigned char)s[i] < 0x20 && s[i] != '\t') || s[i] == 0x7f)
			return ini_fail(p->e, p->file, p->line, -EINVAL, "control character 0x%02x at "
			                "column %zu%s", (unsigned char)s[i], i + 1,
			                s[i] ? "" : " (a NUL byte: is this a text file?)");
	memcpy(p->buf, s, n);
	p->buf[n] = '\0';
	line = trim(p->buf);
	if (!*line || is_comment(*line))
		return 0;
	if (*line == '[')
		return lex_section(p, line);
	if (!(eq = strchr(line, '=')))
		return ini_fail(p->e, p->file, p->line, -EINVAL, "malformed line (expected 'key = "
		                "value' or '[section]')");
	*eq = '\0';
	if (!*(p->key = trim(line)))
		return ini_fail(p->e, p->file, p->line, -EINVAL, "malformed line (no key before "
		                "'=')");
	return lex_value(p, eq + 1);
}

int ini_next(ini *p)
{
	p->name = p->key = p->value = NULL;
	p->quoted = 0;
	while (p->pos < p->len) {
		const char *s = p->text + p->pos;
		const char *nl = memchr(s, '\n', p->len - p->pos);
		size_t n = nl ? (size_t)(nl - s) : p->len - p->pos;
		p->line++;
		p->pos += n + 1; /* past the end when the text has no final newline: done */
		int r = lex_line(p, s, n);
		if (r != 0)
			return r;
	}
	p->pos = p->len;
	return INI_END;
}

int ini_read_file(const char *path, size_t max, char **text, size_t *len, mode_t *mode,
                  bks_err *e)
{
	struct stat st;
	char *buf = NULL;
	size_t got = 0;
	ssize_t n = 1;
	int fd, r = 0;

	*text = NULL;
	*len = 0;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0 || fstat(fd, &st) < 0) {
		r = -errno;
		bks_fail(e, r, "%s: %s: %s", path, fd < 0 ? "open" : "stat", strerror(-r));
		goto close_fd;
	}
	if (!S_ISREG(st.st_mode)) {
		r = bks_fail(e, -EINVAL, "%s: not a regular file", path);
		goto close_fd;
	}
	/* Read up to one byte past the limit, so a file that grows meanwhile is caught
	 * too (st_size is only what it was). */
	if (!(buf = malloc(max + 2))) {
		r = bks_fail(e, -ENOMEM, "%s: out of memory", path);
		goto close_fd;
	}
	while (got <= max && n != 0) {
		if ((n = read(fd, buf + got, max + 1 - got)) < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			bks_fail(e, r, "%s: read: %s", path, strerror(-r));
			goto free_buf;
		}
		got += (size_t)n;
	}
	if (got > max) {
		r = bks_fail(e, -EFBIG, "%s: larger than %zu bytes", path, max);
		goto free_buf;
	}
	buf[got] = '\0';
	*text = buf;
	*len = got;
	*mode = st.st_mode;
	buf = NULL;
free_buf:
	if (buf) {
		explicit_bzero(buf, got);
		free(buf);
	}
close_fd:
	if (fd >= 0)
		close(fd);
	return r;
}
