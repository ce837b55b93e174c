/* tests/testutil.c: see testutil.h. */
#include <config.h>

#include "tests/testutil.h"

#include "dedup/store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int tu_failures;
int tu_checks;
static char tmpdir[512];
static char **made; /* paths from tu_file_disk, freed by tu_finish */
static int capmade;
static int nmade;

int tu_finish(void)
{
	tu_cleanup();
	while (nmade > 0)
		free(made[--nmade]);
	free(made);
	made = NULL;
	capmade = 0;
	printf("%d checks, %d failed\n", tu_checks, tu_failures);
	return tu_failures ? 1 : 0;
}

const char *tu_tmpdir(const char *name)
{
	return tu_tmpdir_in(name, "/var/tmp");
}

const char *tu_tmpdir_in(const char *name, const char *dflt)
{
	const char *base = getenv("BKS_TEST_DIR");
	if (!base)
		base = access(dflt, W_OK) == 0 ? dflt : "/var/tmp";
	snprintf(tmpdir, sizeof(tmpdir), "%s/bks-%s-XXXXXX", base, name);
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		exit(99);
	}
	return tmpdir;
}

void tu_cleanup(void)
{
	char cmd[600];
	if (!tmpdir[0] || getenv("BKS_TEST_KEEP"))
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "warning: could not remove %s\n", tmpdir);
	tmpdir[0] = '\0';
}

char *tu_file_disk(const char *dir, const char *name, uint64_t size)
{
	char *p = malloc(strlen(dir) + strlen(name) + 2);
	sprintf(p, "%s/%s", dir, name);
	int fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || ftruncate(fd, (off_t)size) != 0) {
		perror(p);
		exit(99);
	}
	close(fd);
	if (nmade == capmade) {
		int nc = capmade ? capmade * 2 : 64;
		char **m = realloc(made, (size_t)nc * sizeof(*m));
		if (!m) {
			perror("realloc");
			exit(99);
		}
		made = m;
		capmade = nc;
	}
	made[nmade++] = p;
	return p;
}

/* One engine for the whole test: creating and destroying AIO contexts is slow. */
static disk_engine *engine;

disk *tu_open1(const char *path, flt_world *w)
{
	disk *d;
	bks_err e = {0};
	if (!engine && disk_engine_new(&engine) < 0) {
		fprintf(stderr, "harness: io_setup failed\n");
		exit(99);
	}
	int r = disk_open_on(engine, path, &d, &e);
	if (r < 0) {
		fprintf(stderr, "harness: %s\n", bks_errmsg(&e, r));
		exit(99);
	}
	if (w) {
		disk *f;
		if (flt_wrap(w, d, &f) < 0) {
			fprintf(stderr, "harness: flt_wrap failed\n");
			exit(99);
		}
		d = f;
	}
	return d;
}

void tu_open(const char *const *paths, int n, flt_world *w, disk **out)
{
	for (int i = 0; i < n; i++)
		out[i] = tu_open1(paths[i], w);
}

void tu_fill(uint64_t seed, uint64_t row, uint64_t gen, void *buf, size_t len)
{
	bks_rng r;
	bks_rng_seed(&r, seed * 0x9e3779b97f4a7c15ull ^ row * 0xff51afd7ed558ccdull ^ gen);
	bks_rng_fill(&r, buf, len);
}

int tu_verify_rows(arr *a, uint64_t seed, uint64_t first, uint64_t n, uint64_t gen)
{
	size_t rb = arr_row_bytes(a);
	uint8_t *want = tu_alloc(rb), *got = tu_alloc(rb);
	int bad = 0;
	for (uint64_t r = first; r < first + n; r++) {
		tu_fill(seed, r, gen, want, rb);
		memset(got, 0xee, rb);
		int rc = arr_read(a, r, 0, got, rb);
		if (rc != 0 || memcmp(want, got, rb) != 0) {
			if (bad < 5)
				fprintf(stderr, "  row %llu: %s\n", (unsigned long long)r,
				        rc ? strerror(-rc) : "data differs");
			bad++;
		}
	}
	free(want);
	free(got);
	return bad;
}

void tu_events(void *ctx, int level, const char *msg)
{
	(void)ctx;
	if (getenv("BKS_TEST_VERBOSE"))
		fprintf(stderr, "  event[%d]: %s\n", level, msg);
}

void *tu_alloc(size_t len)
{
	void *p = bks_alloc_aligned(DISK_ALIGN, len);
	if (!p) {
		fprintf(stderr, "harness: out of memory\n");
		exit(99);
	}
	return p;
}

arr *tu_make_array(const char *dir, int n, uint64_t mb, flt_world *w, char **paths_out)
{
	disk *d[ARR_MAX_DISKS];
	arr_config cfg;
	bks_err e = {0};
	arr *a;
	for (int i = 0; i < n; i++) {
		char nm[16];
		snprintf(nm, sizeof(nm), "disk%d", i);
		paths_out[i] = tu_file_disk(dir, nm, mb << 20);
		d[i] = tu_open1(paths_out[i], w);
	}
	arr_config_defaults(&cfg);
	cfg.strip_size = 64 << 10;
	cfg.ev_fn = tu_events;
	int r = arr_create(&cfg, d, n, NULL, 0, 0, &a, &e);
	if (r < 0) {
		fprintf(stderr, "harness: create: %s\n", bks_errmsg(&e, r));
		exit(99);
	}
	return a;
}

arr *tu_import_array(char **paths, int n, flt_world *w)
{
	disk *d[ARR_MAX_DISKS];
	arr_config cfg;
	bks_err e = {0};
	arr *a;
	for (int i = 0; i < n; i++)
		d[i] = tu_open1(paths[i], w);
	arr_config_defaults(&cfg);
	cfg.ev_fn = tu_events;
	int r = arr_import(&cfg, d, n, &a, &e);
	if (r < 0) {
		fprintf(stderr, "harness: import: %s\n", bks_errmsg(&e, r));
		for (int i = 0; i < n; i++)
			disk_close(d[i]);
		return NULL;
	}
	return a;
}

uint8_t *tu_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	long n;
	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
	    (buf = malloc((size_t)n + 1)) && fread(buf, 1, (size_t)n, f) == (size_t)n) {
		*len = (size_t)n;
	} else {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	return buf;
}

int tu_generations(const char *dir, uint64_t base, int n, double frac, uint64_t seed)
{
	char p[700], cmd[2048];
	const char *top = getenv("top_srcdir");
	snprintf(p, sizeof(p), "%s/base.img", dir);
	FILE *f = fopen(p, "wb");
	if (!f)
		return -1;
	uint8_t *buf = malloc(1 << 20);
	bks_rng r;
	bks_rng_seed(&r, seed);
	for (uint64_t off = 0; off < base; off += 1 << 20) {
		size_t k = (size_t)BKS_MIN((uint64_t)(1 << 20), base - off);
		bks_rng_fill(&r, buf, k);
		if (fwrite(buf, 1, k, f) != k) {
			fclose(f);
			free(buf);
			return -1;
		}
	}
	fclose(f);
	free(buf);
	const char *cands[] = {"/../shared/bench/gen_generations.py",
	                       "/../../shared/bench/gen_generations.py"};
	for (size_t i = 0; i < BKS_ARRAY_SIZE(cands); i++) {
		char script[600];
		snprintf(script, sizeof(script), "%s%s", top ? top : ".", cands[i]);
		if (access(script, R_OK) != 0)
			continue;
		snprintf(cmd, sizeof(cmd), "python3 '%s' '%s' '%s' %d %g %llu", script, p, dir, n,
		         frac, (unsigned long long)seed);
		return system(cmd) == 0 ? 0 : -1;
	}
	/* No shared script: the same mutation in C (overwrite/insert/delete runs of
	 * 64 B .. 256 KiB until frac of the size has changed). */
	fprintf(stderr, "note: gen_generations.py not found; generating in C\n");
	size_t len;
	uint8_t *data = tu_read_file(p, &len);
	if (!data)
		return -1;
	for (int g = 1; g <= n; g++) {
		if (g > 1) {
			static const size_t sizes[] = {64, 512, 4096, 32768, 262144};
			int64_t budget = (int64_t)((double)len * frac);
			while (budget > 0) {
				size_t sz = (size_t)BKS_MIN((int64_t)sizes[bks_rng_below(&r, 5)], budget);
				size_t pos = (size_t)bks_rng_below(&r, len > sz ? len - sz : 1);
				uint64_t kind = bks_rng_below(&r, 10);
				if (kind < 5) {
					bks_rng_fill(&r, data + pos, sz);
				} else if (kind < 8) {
					data = realloc(data, len + sz);
					memmove(data + pos + sz, data + pos, len - pos);
					bks_rng_fill(&r, data + pos, sz);
					len += sz;
				} else {
					memmove(data + pos, data + pos + sz, len - pos - sz);
					len -= sz;
				}
				budget -= (int64_t)sz;
			}
		}
		snprintf(p, sizeof(p), "%s/gen%02d.img", dir, g);
		f = fopen(p, "wb");
		if (!f || fwrite(data, 1, len, f) != len) {
			if (f)
				fclose(f);
			free(data);
			return -1;
		}
		fclose(f);
	}
	free(data);
	return 0;
}

void tu_mkdir(const char *path)
{
	if (mkdir(path, 0700) != 0 && errno != EEXIST) {
		perror(path);
		exit(99);
	}
}

int tu_store_scan(store *s, uint64_t *chunks, uint64_t *stored, uint64_t *bad_row)
{
	pool *pl = store_pool(s);
	size_t cap = pool_row_bytes(pl) / (SEG_ENTRY_SIZE + 1) + 1;
	seg_entry *ents = malloc(sizeof(*ents) * cap);
	int r = 0;
	*chunks = *stored = 0;
	if (!ents)
		return -ENOMEM;
	for (uint64_t row = 0; row < pool_rows(pl) && r == 0; row++) {
		if (pool_row_state(pl, row) != ROW_DATA)
			continue;
		seg_header h;
		int n = pool_read_seg_table(pl, row, &h, ents, cap);
		if (n < 0) {
			r = n;
			if (bad_row)
				*bad_row = row;
		}
		for (int i = 0; i < n; i++) {
			(*chunks)++;
			*stored += ents[i].slen;
		}
	}
	free(ents);
	return r;
}

store *tu_store_reopen(char **paths, int n, flt_world *w)
{
	bks_err e = {0};
	arr *a = tu_import_array(paths, n, w);
	store *s = NULL;
	if (!a)
		return NULL;
	int r = store_open(a, NULL, &s, &e);
	if (r < 0) {
		fprintf(stderr, "open: %s\n", bks_errmsg(&e, r));
		arr_close(a);
		return NULL;
	}
	return s;
}
