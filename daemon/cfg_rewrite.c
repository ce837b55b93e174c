/* daemon/cfg_rewrite.c: see cfg_rewrite.h. */
#include "daemon/cfg_rewrite.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

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

int cfg_rewrite(const char *path, const char *section, const char *key,
                const char *const *vals, int n, bks_err *e)
{
	char tmp[4200], line[4200];
	FILE *in = fopen(path, "r");
	if (!in)
		return bks_fail(e, -errno, "%s: %s", path, strerror(errno));
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	FILE *out = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (!out) {
		int r = -errno;
		fclose(in);
		if (fd >= 0)
			close(fd);
		return bks_fail(e, r, "%s: %s", tmp, strerror(-r));
	}
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
	if (!done) {
		if (!in_sec)
			fprintf(out, "\n[%s]\n", section);
		put_vals(out, key, vals, n);
	}
	fclose(in);
	int r = fflush(out) == 0 && fsync(fileno(out)) == 0 ? 0 : -errno;
	if (fclose(out) != 0 && r == 0)
		r = -errno;
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r == 0) {
		/* The rename itself must survive a crash: flush the directory. */
		char dir[4200];
		snprintf(dir, sizeof(dir), "%s", path);
		char *slash = strrchr(dir, '/');
		if (slash)
			*(slash == dir ? slash + 1 : slash) = 0;
		int dfd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd >= 0) {
			if (fsync(dfd) < 0)
				r = -errno;
			close(dfd);
		}
	}
	if (r < 0) {
		unlink(tmp);
		return bks_fail(e, r, "writing %s: %s", path, strerror(-r));
	}
	return 0;
}
