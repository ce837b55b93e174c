/* fuzz/replay.c: the main of a fuzz target built without libFuzzer (configure
 * without --enable-fuzzing). It feeds LLVMFuzzerTestOneInput every file it is
 * given (files or directories, as libFuzzer takes them), so a crash input found by
 * a fuzzing run can be re-run under gdb or valgrind with the ordinary build. With
 * no arguments it replays its own seed corpus, fuzz/corpus/NAME/ for fuzz-NAME
 * under $top_srcdir (make check exports it): that is how make check runs every
 * fuzz target over its seeds. A property a target checks aborts, which fails the
 * test; an empty or missing corpus fails it too (a target that replays nothing
 * would pass without testing anything). */
#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* One input, in a buffer of exactly its size so an over-read past it is caught by
 * ASan (or valgrind) as it would be under libFuzzer. */
static int replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	size_t cap = 4096, n = 0;
	uint8_t *buf = malloc(cap);
	size_t got;
	while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
		n += got;
		if (n == cap) {
			uint8_t *nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = nb;
			cap *= 2;
		}
	}
	int err = ferror(f);
	fclose(f);
	if (!buf || err) {
		fprintf(stderr, "replay: %s: read failed\n", path);
		free(buf);
		return -1;
	}
	uint8_t *exact = malloc(n ? n : 1);
	if (!exact) {
		free(buf);
		return -1;
	}
	memcpy(exact, buf, n);
	free(buf);
	LLVMFuzzerTestOneInput(exact, n);
	free(exact);
	return 0;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every regular file in dir (not recursive), in name order so runs are alike.
 * Returns the number replayed, or -1. */
static long replay_dir(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d) {
		fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	char **names = NULL;
	size_t n = 0, cap = 0;
	long done = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 64;
			char **nn = realloc(names, nc * sizeof(*nn));
			if (!nn)
				goto fail;
			names = nn;
			cap = nc;
		}
		if (!(names[n] = strdup(e->d_name)))
			goto fail;
		n++;
	}
	qsort(names, n, sizeof(*names), cmp_names);
	for (size_t i = 0; i < n; i++) {
		char p[4096];
		struct stat st;
		snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
		if (stat(p, &st) != 0 || !S_ISREG(st.st_mode))
			continue;
		if (replay_file(p) != 0)
			goto fail;
		done++;
	}
	goto out;
fail:
	done = -1;
out:
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	closedir(d);
	return done;
}

static long replay_path(const char *p)
{
	struct stat st;
	if (stat(p, &st) != 0) {
		fprintf(stderr, "replay: %s: %s\n", p, strerror(errno));
		return -1;
	}
	if (S_ISDIR(st.st_mode))
		return replay_dir(p);
	return replay_file(p) == 0 ? 1 : -1;
}

int main(int argc, char **argv)
{
	const char *self = strrchr(argv[0], '/');
	self = self ? self + 1 : argv[0];
	long total = 0;
	if (argc > 1) {
		for (int i = 1; i < argc; i++) {
			if (argv[i][0] == '-')
				continue; /* libFuzzer flags (-runs=0, ...): nothing to do here */
			long r = replay_path(argv[i]);
			if (r < 0)
				return 1;
			total += r;
		}
		printf("ok %s: %ld inputs replayed\n", self, total);
		return 0;
	}
	/* make check: the seed corpus of this target. */
	const char *top = getenv("top_srcdir");
	const char *name = strncmp(self, "fuzz-", 5) ? self : self + 5;
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s/fuzz/corpus/%s", top ? top : ".", name);
	total = replay_dir(dir);
	if (total <= 0) {
		printf("FAIL %s: no seed corpus replayed from %s\n", self, dir);
		return 1;
	}
	printf("ok %s: %ld seeds from fuzz/corpus/%s replayed\n", self, total, name);
	return 0;
}
