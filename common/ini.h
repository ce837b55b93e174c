/* common/ini.h: the lexer of bkstor's INI files (the daemon's bkstor.conf,
 * daemon/config.c, and bkstorctl's client.conf, cli/client_conf.c), so a line reads
 * the same way in both. It knows the grammar, not the keys: each caller decides
 * which sections and keys exist, which values are valid, and whether a key may be
 * given twice (the lexer hands over every occurrence with its line).
 *
 * Grammar, one line at a time (at most INI_MAX_LINE bytes without the "\n" or
 * "\r\n"; a UTF-8 byte order mark at the start of the text is skipped):
 *   blank | ('#' | ';') comment | '[' name ']' [comment] | key '=' value [comment]
 * Names and keys are trimmed of blanks (spaces and tabs). An unquoted value ends at
 * a '#' or ';' that starts it or follows a blank, and is trimmed. A quoted value
 * ("...") keeps everything between the quotes, with \" and \\ the only escapes;
 * only a comment may follow it. Control characters other than tab (NUL and DEL
 * included) are refused anywhere, so every name, key and value is printable.
 *
 * The one error convention of configuration files: a negative errno and a message
 * "NAME:LINE: reason" (or "NAME: reason" about the whole file) in a bks_err, where
 * NAME is the file's path. The lexer's own errors are all -EINVAL; ini_fail gives
 * callers the same form for theirs.
 */
#ifndef BKS_COMMON_INI_H
#define BKS_COMMON_INI_H

#include <stdarg.h>
#include <stddef.h>
#include <sys/types.h>

#include "common/bks.h"

#define INI_MAX_LINE 4096u /* bytes in one line, without its newline */

enum ini_kind {
	INI_END = 0,
	INI_SECTION,  /* [name]: .name */
	INI_KEY,      /* key = value: .key, .value, .quoted */
};

/* The lexer's state, and the current item. Everything is held in place: the
 * strings point into buf, valid until the next ini_next, and the caller may cut
 * them further in place (a list value split at its blanks). A value may be a
 * secret: ini_wipe clears buf when done. */
typedef struct ini {
	const char *text;
	size_t len, pos;
	const char *file;     /* NAME in messages */
	bks_err *e;
	unsigned line;        /* of the current item (1-based); 0 before the first */
	char *name;           /* INI_SECTION: the text between the brackets, trimmed */
	char *key;            /* INI_KEY: the key, trimmed, never empty */
	char *value;          /* INI_KEY: unquoted, may be empty */
	int quoted;           /* INI_KEY: the value was written in quotes */
	char buf[INI_MAX_LINE + 1];
} ini;

/* Start lexing len bytes of text (not NUL-terminated; a NUL byte is an error).
 * file names the text in messages; errors go to e (may be NULL). */
void ini_init(ini *p, const char *text, size_t len, const char *file, bks_err *e);

/* The next item: INI_SECTION or INI_KEY (blank and comment lines are skipped),
 * INI_END after the last line, or -EINVAL with e holding "FILE:LINE: reason" for a
 * line the grammar refuses. After an error, p->line is the refused line. */
int ini_next(ini *p);

void ini_wipe(ini *p); /* clear the line buffer (a value may be a secret) */

/* Record "FILE:LINE: message" in e (line 0: "FILE: message") and return code. */
int ini_fail(bks_err *e, const char *file, unsigned line, int code, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
int ini_vfail(bks_err *e, const char *file, unsigned line, int code, const char *fmt,
              va_list ap) __attribute__((format(printf, 5, 0)));

/* Read the whole regular file at path, at most max bytes, into a malloc'd buffer
 * (*text, *len; one byte more is allocated and set to NUL); *mode gets st_mode.
 * Returns 0, or a negative errno with e holding "PATH: open: No such file or
 * directory", "PATH: not a regular file", "PATH: larger than MAX bytes" (-EFBIG),
 * "PATH: read: ...". The caller frees *text (after explicit_bzero if it may hold
 * secrets). */
int ini_read_file(const char *path, size_t max, char **text, size_t *len, mode_t *mode,
                  bks_err *e);

#endif /* BKS_COMMON_INI_H */
