/* daemon/cfg_rewrite.c: see cfg_rewrite.h.
 *
 * Crash story: two API threads (a password change and an add-spare) once rewrote the
 * file at the same time through the same PATH.new opened with O_TRUNC: their lines
 * interleaved in one temporary file and the last rename installed a file without the
 * array's disks and client secrets. Now every rewrite holds one lock around the whole
 * read-modify-write (a mutex for this process's threads, flock on the directory for
 * other processes), writes a temporary file of its own (mkstemp in the same
 * directory, so rename stays atomic), fsyncs it, renames it over the file, and
 * fsyncs the directory. A crash at any point leaves the old file or the new one; a
 * leftover PATH.XXXXXX temporary is harmless. */
#include <config.h>

#include "daemon/cfg_rewrite.h"

#include "common/ini.h"
#include "daemon/config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static pthread_mutex_t rewrite_mu = PTHREAD_MUTEX_INITIALIZER;

static void put_vals(FILE *out, const char *key, const char *const *vals, int n)
{
	for (int i = 0; i < n; i++)
		fprintf(out, "%s = %s\n", key, vals[i]);
}

/* Copy len bytes of text to out with the key's lines in [section] replaced. Which
 * line is a section header or a key is the lexer's answer (common/ini.h), the one
 * the daemon's parser gets: `[ array ]`, `disks=...` and `"quoted"` values are
 * recognised as it recognises them. The lexer reads ahead of the copy, one item at a
 * time; every other line (comments, blanks) is copied byte for byte. A line the
 * lexer refuses stops the rewrite (-EINVAL, e: "FILE:LINE: reason"): the daemon
 * would refuse that file at its next start, so writing it again would only hide the
 * line from the admin. 0 or -errno. */
static int copy_replacing(const char *file, const char *text, size_t len, FILE *out,
                          const char *section, const char *key, const char *const *vals,
                          int n, bks_err *e)
{
	ini *lx = malloc(sizeof(*lx));
	int in_sec = 0, done = 0, item;
	size_t pos = 0;

	if (!lx)
		return bks_fail(e, -ENOMEM, "%s: out of memory", file);
	ini_init(lx, text, len, file, e);
	item = ini_next(lx);
	for (unsigned line = 1; pos < len && item >= 0; line++) {
		const char *s = text + pos, *nl = memchr(s, '\n', len - pos);
		size_t k = nl ? (size_t)(nl - s) + 1 : len - pos;
		int drop = 0;
		pos += k;
		if (item > 0 && lx->line == line) {
			if (item == INI_SECTION) {
				if (in_sec && !done) {
					put_vals(out, key, vals, n);
					done = 1;
				}
				in_sec = !strcmp(lx->name, section);
			} else if (in_sec && !strcmp(lx->key, key)) {
				if (!done)
					put_vals(out, key, vals, n);
				done = drop = 1; /* the old line(s) go */
			}
			item = ini_next(lx);
		}
		if (!drop)
			fwrite(s, 1, k, out);
	}
	if (item >= 0 && !done) {
		if (len && text[len - 1] != '\n')
			fputc('\n', out); /* end the last line before adding any */
		if (!in_sec)
			fprintf(out, "\n[%s]\n", section);
		put_vals(out, key, vals, n);
	}
	ini_wipe(lx);
	free(lx);
	return item < 0 ? item : 0;
}

int cfg_rewrite(const char *path, const char *section, const char *key,
                const char *const *vals, int n, bks_err *e)
{
	char tmp[4200], dir[4200], *text = NULL;
	const char *step = "open";
	bks_err sub = {0}; /* read and lexer errors: "PATH: ..." / "PATH:LINE: ..." */
	FILE *out = NULL;
	size_t len = 0;
	mode_t mode;
	int r, dfd, tfd = -1, made = 0;

	if (snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= (int)sizeof(tmp))
		return bks_fail(e, -ENAMETOOLONG, "%s: path too long", path);
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash)
		*(slash == dir ? slash + 1 : slash) = 0;

	pthread_mutex_lock(&rewrite_mu);
	dfd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || flock(dfd, LOCK_EX) < 0) {
		r = -errno;
		step = "lock directory";
		goto unlock;
	}
	/* The file as it is now, under the lock (another process may have rewritten it
	 * since the daemon read it). */
	if ((r = ini_read_file(path, CFG_MAX_FILE, &text, &len, &mode, &sub)) < 0)
		goto unlock;
	/* mkstemp: a name no other writer uses, created 0600 (secrets live here). */
	step = "create temporary file";
	made = (tfd = mkostemp(tmp, O_CLOEXEC)) >= 0;
	if (!made || fchmod(tfd, 0600) < 0 || !(out = fdopen(tfd, "w"))) {
		r = -errno;
		goto drop_tmp;
	}
	tfd = -1; /* out owns it */
	step = "write";
	if ((r = copy_replacing(path, text, len, out, section, key, vals, n, &sub)) < 0)
		goto drop_tmp;
	if (ferror(out) || fflush(out) != 0 || fsync(fileno(out)) != 0) {
		r = ferror(out) ? -EIO : -errno;
		goto drop_tmp;
	}
	r = fclose(out) == 0 ? 0 : -errno;
	out = NULL;
	if (r < 0)
		goto drop_tmp;
	step = "rename";
	if (rename(tmp, path) < 0) {
		r = -errno;
		goto drop_tmp;
	}
	/* The rename itself must survive a crash: flush the directory. */
	step = "flush directory";
	r = fsync(dfd) < 0 ? -errno : 0;
	goto unlock;
drop_tmp:
	if (out)
		fclose(out);
	if (tfd >= 0)
		close(tfd);
	if (made)
		unlink(tmp);
unlock:
	if (text) {
		explicit_bzero(text, len); /* passwords and tokens live in this file */
		free(text);
	}
	if (dfd >= 0)
		close(dfd); /* drops the flock */
	pthread_mutex_unlock(&rewrite_mu);
	if (r < 0 && sub.msg[0])
		return bks_fail(e, r, "rewriting %s", sub.msg);
	if (r < 0)
		return bks_fail(e, r, "rewriting %s: %s: %s", path, step, strerror(-r));
	return 0;
}
