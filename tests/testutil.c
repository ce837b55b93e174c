/* tests/testutil.c: see testutil.h. */
#include <config.h>

#include "tests/testutil.h"

#include "dedup/store.h"
#include "dedup/store_int.h" /* store_pool: white-box scans of rows */
#include "dedup/store_repl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int tu_failures;
int tu_checks;
int tu_misses;

int tu_verbose(void)
{
	static int v = -1;
	if (v < 0)
		v = getenv("BKS_TEST_VERBOSE") != NULL;
	return v;
}
static char **dirs; /* from tu_tmpdir*, removed by tu_cleanup */
static int ndirs, capdirs;
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
	/* Every directory made is kept until tu_cleanup: a test that makes one per
	 * case (test-store-writeat makes five) must not leave four behind. */
	if (ndirs == capdirs) {
		int nc = capdirs ? capdirs * 2 : 8;
		char **d = realloc(dirs, (size_t)nc * sizeof(*d));
		if (!d) {
			perror("realloc");
			exit(99);
		}
		dirs = d;
		capdirs = nc;
	}
	char *t = malloc(strlen(base) + strlen(name) + 16);
	if (!t) {
		perror("malloc");
		exit(99);
	}
	sprintf(t, "%s/bks-%s-XXXXXX", base, name);
	if (!mkdtemp(t)) {
		perror("mkdtemp");
		exit(99);
	}
	dirs[ndirs++] = t;
	return t;
}

void tu_cleanup(void)
{
	int keep = getenv("BKS_TEST_KEEP") != NULL;
	while (ndirs > 0) {
		char *t = dirs[--ndirs];
		char cmd[600];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t);
		if (!keep && system(cmd) != 0)
			fprintf(stderr, "warning: could not remove %s\n", t);
		free(t);
	}
	free(dirs);
	dirs = NULL;
	capdirs = 0;
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
	if (tu_verbose())
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

arr *tu_make_array_cfg(const char *dir, int n, int nspares, uint64_t mb, const arr_config *cfg,
                       flt_world *w, char **paths_out, disk **disks_out)
{
	disk *d[ARR_MAX_DISKS];
	arr_config c;
	bks_err e = {0};
	arr *a;
	for (int i = 0; i < n + nspares; i++) {
		char nm[16];
		snprintf(nm, sizeof(nm), i < n ? "disk%d" : "spare%d", i < n ? i : i - n);
		paths_out[i] = tu_file_disk(dir, nm, mb << 20);
		d[i] = tu_open1(paths_out[i], w);
		if (disks_out)
			disks_out[i] = d[i];
	}
	if (cfg) {
		c = *cfg;
	} else {
		arr_config_defaults(&c);
		c.strip_size = 64 << 10;
	}
	if (!c.ev_fn)
		c.ev_fn = tu_events;
	int r = arr_create(&c, d, n, d + n, nspares, 0, &a, &e);
	if (r < 0) {
		fprintf(stderr, "harness: create: %s\n", bks_errmsg(&e, r));
		exit(99);
	}
	return a;
}

arr *tu_make_array(const char *dir, int n, uint64_t mb, flt_world *w, char **paths_out)
{
	return tu_make_array_cfg(dir, n, 0, mb, NULL, w, paths_out, NULL);
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
	/* bench/gen_generations.py: the generator the benchmarks use, so tests and
	 * benchmarks see the same kind of data. */
	char script[600];
	snprintf(script, sizeof(script), "%s/bench/gen_generations.py", top ? top : ".");
	snprintf(cmd, sizeof(cmd), "python3 '%s' '%s' '%s' %d %g %llu", script, p, dir, n, frac,
	         (unsigned long long)seed);
	if (system(cmd) != 0) {
		fprintf(stderr, "harness: %s failed\n", cmd);
		return -1;
	}
	return 0;
}

void tu_mkdir(const char *path)
{
	if (mkdir(path, 0700) != 0 && errno != EEXIST) {
		perror(path);
		exit(99);
	}
}

void tu_check_accounting(store *s, const char *when)
{
	uint64_t chunks, stored;
	int r = tu_store_scan(s, &chunks, &stored, NULL);
	store_stats st;
	store_get_stats(s, &st);
	CHECK(r == 0 && chunks == st.unique_chunks && stored == st.stored_bytes,
	      "%s: accounting %llu chunks/%llu bytes, scan %llu/%llu (%d)", when,
	      (unsigned long long)st.unique_chunks, (unsigned long long)st.stored_bytes,
	      (unsigned long long)chunks, (unsigned long long)stored, r);
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

int tu_store_same(store *s, uint64_t id, const uint8_t *want, size_t len)
{
	/* One byte more than expected: a longer object shows as a length mismatch. */
	uint8_t *got = malloc(len + 1);
	size_t n = 0;
	if (!got)
		return 0;
	int r = store_read(s, id, 0, got, len + 1, &n);
	int ok = r == 0 && n == len && !memcmp(want, got, len);
	if (!ok)
		fprintf(stderr, "  object %llu: read %d (%s), %zu of %zu bytes%s\n",
		        (unsigned long long)id, r, r ? strerror(-r) : "ok", n, len,
		        r == 0 && n == len ? ", content differs" : "");
	free(got);
	return ok;
}

int tu_store_same_seed(store *s, uint64_t id, uint64_t seed, size_t len)
{
	uint8_t *want = malloc(len ? len : 1);
	if (!want)
		return 0;
	tu_fill(seed, 0, 0, want, len);
	int ok = tu_store_same(s, id, want, len);
	free(want);
	return ok;
}

int tu_store_put_seed(store *s, uint64_t seed, size_t len, uint64_t *id)
{
	uint8_t *b = malloc(len ? len : 1);
	if (!b)
		return -ENOMEM;
	tu_fill(seed, 0, 0, b, len);
	int r = store_put(s, b, len, id);
	free(b);
	return r;
}

int tu_store_verify_clean(store *s, uint64_t objects)
{
	store_verify_report vr;
	int r = store_verify(s, &vr);
	if (r != 0 || vr.chunks_bad || vr.objects_damaged ||
	    (objects != TU_ANY_OBJECTS && vr.objects != objects)) {
		fprintf(stderr, "  verify: %d, %llu objects (want %lld), %llu damaged, %llu of %llu "
		        "chunks bad\n", r, (unsigned long long)vr.objects,
		        objects == TU_ANY_OBJECTS ? -1LL : (long long)objects,
		        (unsigned long long)vr.objects_damaged, (unsigned long long)vr.chunks_bad,
		        (unsigned long long)vr.chunks_checked);
		return 0;
	}
	return 1;
}

struct first {
	store_mapext x;
	int found;
};

static int first_chunk(void *ctx, const store_mapext *x)
{
	struct first *f = ctx;
	if (x->hole || f->found)
		return 0; /* (a positive return does not stop map_walk: only errors do) */
	f->x = *x;
	f->found = 1;
	return 0;
}

int tu_first_chunk(struct store *s, uint64_t id, struct store_mapext *out)
{
	struct first f;
	memset(&f, 0, sizeof(f));
	if (store_extents(s, id, first_chunk, &f) < 0 || !f.found)
		return 0;
	*out = f.x;
	return 1;
}
