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

/* Is line `[section]` (any spacing)? */
static int is_section(const char *p, const char *section)
{
	size_t l = strlen(section);
	return p[0] == '[' && !strncmp(p + 1, section, l) && p[1 + l] == ']';
}

/* Is line `key = ...` or `key=...`? */
static int is_key(const char *p, const char *key)
{
	size_t l = strlen(key);
	return !strncmp(p, key, l) && strchr(" \t=", p[l]);
}

/* Copy in to out with the key's lines replaced. 0 or -errno. */
static int copy_replacing(FILE *in, FILE *out, const char *section, const char *key,
                          const char *const *vals, int n)
{
	char line[4200];
	int in_sec = 0, done = 0;
	while (fgets(line, sizeof(line), in)) {
		const char *p = line + strspn(line, " \t");
		if (*p == '[') {
			if (in_sec && !done) {
				put_vals(out, key, vals, n);
				done = 1;
			}
			in_sec = is_section(p, section);
		} else if (in_sec && is_key(p, key)) {
			if (!done)
				put_vals(out, key, vals, n);
			done = 1;
			continue; /* the old line(s) go */
		}
		fputs(line, out);
	}
	if (ferror(in))
		return -EIO;
	if (!done) {
		if (!in_sec)
			fprintf(out, "\n[%s]\n", section);
		put_vals(out, key, vals, n);
	}
	return 0;
}

int cfg_rewrite(const char *path, const char *section, const char *key,
                const char *const *vals, int n, bks_err *e)
{
	char tmp[4200], dir[4200];
	const char *step = "open";
	FILE *in = NULL, *out = NULL;
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
	if (!(in = fopen(path, "re"))) {
		r = -errno;
		goto unlock;
	}
	/* mkstemp: a name no other writer uses, created 0600 (secrets live here). */
	step = "create temporary file";
	made = (tfd = mkostemp(tmp, O_CLOEXEC)) >= 0;
	if (!made || fchmod(tfd, 0600) < 0 || !(out = fdopen(tfd, "w"))) {
		r = -errno;
		goto drop_tmp;
	}
	tfd = -1; /* out owns it */
	step = "write";
	if ((r = copy_replacing(in, out, section, key, vals, n)) < 0)
		goto drop_tmp;
	if (fflush(out) != 0 || fsync(fileno(out)) != 0) {
		r = -errno;
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
	if (in)
		fclose(in);
	if (dfd >= 0)
		close(dfd); /* drops the flock */
	pthread_mutex_unlock(&rewrite_mu);
	if (r < 0)
		return bks_fail(e, r, "rewriting %s: %s: %s", path, step, strerror(-r));
	return 0;
}
