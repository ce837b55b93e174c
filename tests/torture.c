/* tests/torture: a seeded torture run of the whole storage stack (ZFS's ztest idea).
 *
 * One seed drives a random stream of operations on a namespace (fs/ns.h) over a
 * dedup store (dedup/store.h) over a RAID-6 array (storage/array.h) whose disks sit
 * behind the fault layer (storage/fault.h):
 *  - files of 0 bytes .. 3 MiB put through the namespace (native store writes and
 *    source-dedup puts: a client-side chunker over the store's CDC parameters,
 *    store_has_chunk / store_put_known / store_put_chunk), with contents cut from a
 *    few base buffers plus small mutations so most chunks deduplicate;
 *  - overwrites (a new object linked over the old one, or store_put_end_replace in
 *    place), renames of files and directories, unlinks, mkdir, rmdir;
 *  - syncs (ns_sync of a random object: the intent log), commits, garbage
 *    collection (a full run, or start and a few steps interleaved with the rest);
 *  - disk failures, spares added and claimed, replaces, background steps
 *    (rebuild, replace, scrub), silent corruption of one strip of a live row, filling
 *    the array to ENOSPC and recovering by delete + commit + GC;
 *  - power cuts (every unflushed write lost, or a random subset of them kept; the
 *    write in flight torn), kills (close without commit) and clean reopens;
 *  - now and then a wide tree: 4200 directories (more than the namespace caches),
 *    files and directories renamed between them with the cache at its limit.
 *
 * The model keeps two trees: "current" (every change acknowledged so far) and
 * "durable" (the tree as of the last sync or commit that returned). After every
 * reopen the namespace must equal the durable tree, or the current one (a cut inside
 * a sync or commit may or may not have completed it; a change surviving without a
 * sync is counted, not failed, since nothing unacknowledged is visible half-done):
 * the same paths with the same types, every file byte-identical to one version that
 * was written in full. Then: the store's object count and logical bytes equal a
 * recount (store_list), every object is reachable from the root (no leak), the chunk
 * accounting equals a scan of the segments, and store_verify finds no damage (after
 * repairs).
 *
 * Every choice comes from the seed, and the clock, getrandom and thread creation are
 * replaced (see "determinism" below), so a failure's seed and op number replay it
 * exactly (the real clock only ends a --seconds run):
 *     tests/torture --seed S --ops N [--verbose]
 * A failure prints the seed, the op number and the last operations; the end of a run
 * prints its counts as "name: value" lines (docs/reliability.md lists them). */
#include <config.h>

#include "tests/testutil.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "dedup/chunker.h"
#include "dedup/fp.h"
#include "dedup/pool.h"
#include "dedup/segment.h"
#include "dedup/store.h"
#include "dedup/store_int.h" /* store_pool: white-box scans of rows */
#include "fs/ns.h"
#include "storage/label.h"

#define NFILES 12             /* disk files of the machine: members, spare, fresh */
#define NMEMB 6
#define NBASE 4
#define BASE_LEN (4u << 20)
#define MAXSIZE (3u << 20)
#define MAXNODES 4800           /* the wide op's 4200 directories + the rest */
#define NORMAL_MAX 500          /* nodes the other ops grow the tree to */
#define WIDE 4200               /* more directories than the namespace caches (4096) */
#define PATHLEN 96
#define MAXDEPTH 4
#define RING 24
#define MAXCORRUPT 256

/* A file's content: bytes of base buffer `base` from `off` (wrapping), size bytes,
 * then a few mutations drawn from mseed; base -1 is unique random bytes. */
struct cspec {
	int32_t base;
	uint32_t off;
	uint64_t size, mseed;
};

struct node {
	char path[PATHLEN]; /* "/a/b"; the root is implicit */
	uint32_t type;      /* NS_FILE / NS_DIR */
	struct cspec c;
};

struct tree {
	int n;
	struct node v[MAXNODES];
};

/* Counters, printed as "name: value" at the end (docs/reliability.md). */
#define COUNTERS(X)                                                                 \
	X(ops) X(puts) X(put_bytes) X(overwrites_link) X(overwrites_inplace) X(sd_puts)    \
	X(sd_chunks_known) X(sd_chunks_sent) X(sd_has_chunk_yes) X(renames)                 \
	X(renames_refused) X(unlinks) X(mkdirs) X(rmdirs) X(rmdirs_refused) X(syncs)        \
	X(commits) X(gc_starts) X(gc_steps) X(gc_runs) X(fills) X(fill_bytes) X(enospc)     \
	X(disk_fails) X(spares_added) X(replaces) X(bg_steps) X(scrubs) X(scrubs_full)      \
	X(corruptions) X(repaired_strips) X(power_cuts) X(cuts_drop) X(cuts_reorder)        \
	X(cuts_in_sync_or_commit) X(newer_state_survived) X(unsynced_survived) X(kills)     \
	X(clean_reopens) X(checks) X(files_checked) X(bytes_checked) X(log_replayed)        \
	X(disks_recycled) X(blank_disks_dropped) X(wide_runs) X(wide_files) X(wide_renames) X(wide_primed_renames)
#define X_DECL(n) uint64_t n;
static struct { COUNTERS(X_DECL) } cnt;
#undef X_DECL

static uint64_t seed;
static int no_fill;          /* --no-fill: skip the fill-to-ENOSPC op */
static int no_wide;          /* --no-wide: no wide op (its draw becomes a put) */
static int no_corrupt;       /* --no-corrupt: the corruption op writes back what was there */
static uint64_t disk_mb = 24; /* --disk-mb: small, so fills reach ENOSPC quickly */
static uint64_t opno;
static bks_rng R;
static int verbose;
static const char *dir;
static char *paths[NFILES];
static int in_machine[NFILES]; /* the file is one of the machine's disks */
static flt_world *W;
static arr *A;
static store *S;
static ns *N;
static cdc_params cdcp;
static fp_ctx *FP;
static uint8_t *bases[NBASE];
static uint8_t *want, *got;
static struct tree cur, dur;
static int in_durable;   /* a sync or commit is running (a cut may or may not land it) */
static int armed;
static int gc_running;
static uint64_t corrupt_rows[MAXCORRUPT];
static int ncorrupt;
static char ring[RING][160];
static uint64_t nnotes;

static void print_counts(void)
{
#define X_PRINT(n) printf("%s: %llu\n", #n, (unsigned long long)cnt.n);
	COUNTERS(X_PRINT)
#undef X_PRINT
}

static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note(const char *fmt, ...)
{
	va_list ap;
	char *b = ring[nnotes++ % RING];
	int n = snprintf(b, sizeof(ring[0]), "op %llu: ", (unsigned long long)opno);
	va_start(ap, fmt);
	vsnprintf(b + n, sizeof(ring[0]) - (size_t)n, fmt, ap);
	va_end(ap);
	if (verbose)
		fprintf(stderr, "%s\n", b);
}

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fail(const char *fmt, ...)
{
	va_list ap;
	fflush(stdout);
	fprintf(stderr, "torture: FAIL seed %llu op %llu: ", (unsigned long long)seed,
	        (unsigned long long)opno);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nlast operations:\n");
	for (uint64_t i = nnotes >= RING ? nnotes - RING : 0; i < nnotes; i++)
			fprintf(stderr, "  %s\n", ring[i % RING]);
	fprintf(stderr, "replay: tests/torture --seed %llu --ops %llu --verbose\n",
	        (unsigned long long)seed, (unsigned long long)opno + 1);
	print_counts();
	if (getenv("BKS_TEST_KEEP"))
		fprintf(stderr, "disks kept in %s\n", dir);
	else
		tu_cleanup();
	exit(1);
}

/* r < 0 from a call that must succeed: 1 if the power is out (the caller stops and
 * the main loop reboots), else a failure. */
static int dead_or_fail(int r, const char *what)
{
	if (r >= 0)
		return 0;
	if (flt_is_dead(W))
		return 1;
	fail("%s: %s", what, strerror(-r));
}

/* --- determinism ---
 * The stack reads the clock (attribute times, which change how metadata compresses
 * and so how many writes a commit makes; the array's periodic cursor commits) and
 * draws random UUIDs. A power cut is armed as a count of writes, so any of these
 * would move it. This program therefore replaces both for everything linked into
 * it: a virtual clock that advances 1 us per reading, and random bytes from the
 * seed. Only the --seconds limit reads the real clock. */
static uint64_t vclock_ns = 1700000000000000000ull;
static bks_rng vrand;
static int vrand_ready;
static pthread_mutex_t vmu = PTHREAD_MUTEX_INITIALIZER;

int clock_gettime(clockid_t id, struct timespec *ts)
{
	(void)id;
	uint64_t t = __atomic_add_fetch(&vclock_ns, 1000, __ATOMIC_RELAXED);
	ts->tv_sec = (time_t)(t / 1000000000ull);
	ts->tv_nsec = (long)(t % 1000000000ull);
	return 0;
}

ssize_t getrandom(void *buf, size_t len, unsigned int flags)
{
	(void)flags;
	pthread_mutex_lock(&vmu);
	if (!vrand_ready) {
		bks_rng_seed(&vrand, seed ^ 0x5eedull);
		vrand_ready = 1;
	}
	bks_rng_fill(&vrand, buf, len);
	pthread_mutex_unlock(&vmu);
	return (ssize_t)len;
}

/* Threads: the pool's segment writer and the ingest helpers issue writes from their
 * own threads, so which write is the N-th (where the cut lands) would depend on the
 * scheduler. Without --async, creating a thread fails and the stack does that work
 * in the caller (the fallback it has for a failed pthread_create), so a seed replays
 * exactly. --async keeps the threads (more realistic, not exactly replayable). */
static int async_threads;

int pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
	static int (*real)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
	if (!async_threads)
		return EAGAIN;
	if (!real)
		*(void **)&real = dlsym(RTLD_NEXT, "pthread_create");
	return real ? real(t, attr, fn, arg) : EAGAIN;
}

static uint64_t real_ns(void)
{
	struct timespec ts;
	syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* --- content --- */

static void gen(const struct cspec *c, uint8_t *buf)
{
	bks_rng r;
	bks_rng_seed(&r, c->mseed);
	if (c->base < 0) {
		bks_rng_fill(&r, buf, c->size);
		return;
	}
	const uint8_t *b = bases[c->base];
	for (uint64_t at = 0, o = c->off; at < c->size;) {
		uint64_t n = BKS_MIN(c->size - at, BASE_LEN - o);
		memcpy(buf + at, b + o, n);
		at += n;
		o = 0;
	}
	if (c->size == 0)
		return;
	int muts = (int)bks_rng_below(&r, 3);
	for (int i = 0; i < muts; i++) {
		uint64_t at = bks_rng_below(&r, c->size);
		uint64_t n = 1 + bks_rng_below(&r, BKS_MIN(c->size - at, 4096));
		bks_rng_fill(&r, buf + at, n);
	}
}

static struct cspec rand_content(void)
{
	struct cspec c;
	uint64_t k = bks_rng_below(&R, 100);
	c.base = (int32_t)bks_rng_below(&R, NBASE);
	c.off = (uint32_t)bks_rng_below(&R, BASE_LEN);
	c.mseed = bks_rng_next(&R);
	if (k < 15)
		c.size = bks_rng_below(&R, 65);
	else if (k < 40)
		c.size = bks_rng_below(&R, 16 << 10);
	else if (k < 75)
		c.size = bks_rng_below(&R, 512 << 10);
	else
		c.size = bks_rng_below(&R, MAXSIZE);
	return c;
}

/* --- the model --- */

static int depth(const char *p)
{
	int d = 0;
	for (; *p; p++)
		d += *p == '/';
	return d;
}

static int tfind(const struct tree *t, const char *path)
{
	for (int i = 0; i < t->n; i++)
		if (!strcmp(t->v[i].path, path))
			return i;
	return -1;
}

static int is_under(const char *path, const char *top)
{
	size_t n = strlen(top);
	return !strncmp(path, top, n) && path[n] == '/';
}

static int nchildren(const struct tree *t, const char *dpath)
{
	int n = 0;
	for (int i = 0; i < t->n; i++)
		n += is_under(t->v[i].path, dpath);
	return n;
}

static void tadd(struct tree *t, const char *path, uint32_t type, const struct cspec *c)
{
	BKS_PANIC_IF(t->n >= MAXNODES, "model full");
	struct node *nd = &t->v[t->n++];
	memset(nd, 0, sizeof(*nd));
	snprintf(nd->path, sizeof(nd->path), "%s", path);
	nd->type = type;
	if (c)
		nd->c = *c;
}

static void tdel(struct tree *t, int i)
{
	t->v[i] = t->v[--t->n];
}

/* A random directory of the model: "" is the root. depth_max limits how deep. */
static const char *rand_dir(int depth_max)
{
	int idx[MAXNODES + 1], n = 0;
	idx[n++] = -1;
	for (int i = 0; i < cur.n; i++)
		if (cur.v[i].type == NS_DIR && depth(cur.v[i].path) <= depth_max)
			idx[n++] = i;
	int k = idx[bks_rng_below(&R, (uint64_t)n)];
	return k < 0 ? "" : cur.v[k].path;
}

/* A random node of the given type (0: any); -1 when there is none. */
static int rand_node(uint32_t type)
{
	int idx[MAXNODES], n = 0;
	for (int i = 0; i < cur.n; i++)
		if (!type || cur.v[i].type == type)
			idx[n++] = i;
	return n ? idx[bks_rng_below(&R, (uint64_t)n)] : -1;
}

static uint64_t nfiles_model(void)
{
	uint64_t n = 0;
	for (int i = 0; i < cur.n; i++)
		n += cur.v[i].type == NS_FILE;
	return n;
}

static void split(const char *path, char *parent, char *name)
{
	const char *sl = strrchr(path, '/');
	memcpy(parent, path, (size_t)(sl - path));
	parent[sl - path] = '\0';
	strcpy(name, sl + 1);
}

static uint64_t resolve_dir(const char *dpath)
{
	ns_attr a;
	int r = ns_resolve(N, dpath[0] ? dpath : "/", &a);
	if (r < 0) {
		if (flt_is_dead(W))
			return 0;
		fail("resolve %s: %s", dpath[0] ? dpath : "/", strerror(-r));
	}
	if (a.type != NS_DIR)
		fail("%s is not a directory", dpath);
	return a.id;
}

/* --- the stack --- */

static void arr_cfg(arr_config *c)
{
	arr_config_defaults(c);
	c->strip_size = 64 << 10;
	c->name = "torture";
	/* Faults come from the op stream only: the time-windowed error thresholds would
	 * make a run depend on the clock. */
	c->io_err_limit = c->cksum_err_limit = 1000000;
	c->bg_min_bps = c->bg_max_bps = 0;
	c->ev_fn = tu_events;
}

static void store_cfg(store_params *p)
{
	store_params_default(p);
	p->auto_commit_bytes = 0; /* durability only where the op stream asks */
	p->threads = 1;           /* one writer thread: the same layout every replay */
}

static void get_status(arr_status *st)
{
	arr_get_status(A, st);
}

static void wipe(int i)
{
	int fd = open(paths[i], O_RDWR | O_TRUNC);
	if (fd < 0 || ftruncate(fd, (off_t)(disk_mb << 20)) != 0) {
		perror(paths[i]);
		exit(99);
	}
	close(fd);
}

static void open_stack(void)
{
	disk *d[NFILES];
	int n, r;
	bks_err e = {0};
	arr_config cfg;
	store_params sp;
	static arr_status st;

	flt_world_new(bks_rng_next(&R), &W);
	arr_cfg(&cfg);
	for (;;) {
		n = 0;
		for (int i = 0; i < NFILES; i++)
			if (in_machine[i])
				d[n++] = tu_open1(paths[i], W);
		if ((r = arr_import(&cfg, d, n, &A, &e)) == 0)
			break;
		for (int i = 0; i < n; i++)
			disk_close(d[i]);
		/* A blank disk (one whose joining was cut before its labels landed, or
		 * one a completed replace released) is refused by name: a machine that
		 * still holds it would not pass it. Take it out and try again. */
		int blank = -1;
		for (int i = 0; i < NFILES; i++)
			if (in_machine[i] && strstr(e.msg, paths[i]) && strstr(e.msg, "no bkstor label"))
				blank = i;
		if (blank < 0)
			fail("import: %s", bks_errmsg(&e, r));
		note("import refused (%s); again without it", bks_errmsg(&e, r));
		cnt.blank_disks_dropped++;
		in_machine[blank] = 0;
		wipe(blank);
		e.msg[0] = '\0';
	}
	store_cfg(&sp);
	if ((r = store_open(A, &sp, &S, &e)) < 0)
		fail("store_open: %s", bks_errmsg(&e, r));
	/* Odd seeds write every directory as pages (version 2) from its first change,
	 * even ones only those past a page (fs/ns.h ns_params.dir_v1_max). */
	ns_params np;
	ns_params_default(&np);
	if (seed & 1)
		np.dir_v1_max = 0;
	if ((r = ns_open_params(S, &np, &N, &e)) < 0)
		fail("ns_open: %s", bks_errmsg(&e, r));
	gc_running = 0;
	armed = 0;
	/* Disks the array no longer lists (replaced out, strays) go back to the shelf
	 * and may come back as new disks later. */
	get_status(&st);
	if (verbose) {
		fprintf(stderr, "  imported: %s, hwm %llu\n", arr_health_name(st.health),
		        (unsigned long long)st.hwm);
		for (int j = 0; j < st.ndisks; j++)
			fprintf(stderr, "    slot %d role %d %s %s cursor %llu/%llu\n", st.disks[j].slot,
			        st.disks[j].role, st.disks[j].state, st.disks[j].path,
			        (unsigned long long)st.disks[j].cursor,
			        (unsigned long long)st.disks[j].rows_total);
	}
	for (int i = 0; i < NFILES; i++) {
		if (!in_machine[i])
			continue;
		int listed = 0;
		for (int j = 0; j < st.ndisks; j++)
			listed |= !strcmp(st.disks[j].path, paths[i]);
		if (!listed) {
			in_machine[i] = 0;
			wipe(i);
			cnt.disks_recycled++;
		}
	}
}

static void close_stack(void)
{
	ns_close(N);
	store_close(S); /* closes the pool and the array */
	flt_world_free(W);
	N = NULL;
	S = NULL;
	A = NULL;
	W = NULL;
}

/* --- checks --- */

struct wnode {
	char path[PATHLEN];
	uint32_t type;
	uint64_t id;
};

struct walk {
	struct wnode *v;
	int n, cap;
};

struct dents {
	int n;
	struct {
		char name[NS_NAME_MAX + 1];
		uint64_t id;
		uint32_t type;
	} e[64];
	int more;
};

static int collect(void *ctx, const ns_dirent *d)
{
	struct dents *de = ctx;
	if (de->n == (int)BKS_ARRAY_SIZE(de->e)) {
		de->more = 1;
		return 1;
	}
	snprintf(de->e[de->n].name, sizeof(de->e[0].name), "%s", d->name);
	de->e[de->n].id = d->id;
	de->e[de->n].type = d->type;
	de->n++;
	return 0;
}

static void walk_dir(struct walk *w, uint64_t id, const char *prefix, int lvl)
{
	char after[NS_NAME_MAX + 1] = "";
	if (lvl > 32)
		fail("walk: directory loop under '%s'", prefix);
	for (;;) {
		struct dents *de = calloc(1, sizeof(*de));
		int r = ns_readdir(N, id, after, collect, de);
		if (r < 0)
			fail("readdir '%s': %s", prefix, strerror(-r));
		for (int i = 0; i < de->n; i++) {
			if (w->n == w->cap) {
				w->cap = w->cap ? 2 * w->cap : 256;
				w->v = realloc(w->v, sizeof(*w->v) * (size_t)w->cap);
			}
			struct wnode *x = &w->v[w->n++];
			if ((size_t)snprintf(x->path, sizeof(x->path), "%s/%s", prefix,
			                     de->e[i].name) >= sizeof(x->path))
				fail("walk: path too long under '%s'", prefix);
			x->type = de->e[i].type;
			x->id = de->e[i].id;
			if (x->type == NS_DIR) {
				char p[PATHLEN];
				snprintf(p, sizeof(p), "%s", x->path);
				walk_dir(w, de->e[i].id, p, lvl + 1);
			}
		}
		int more = de->more;
		if (de->n)
			snprintf(after, sizeof(after), "%s", de->e[de->n - 1].name);
		free(de);
		if (!more)
			break;
	}
}

static int cmp_wnode(const void *a, const void *b)
{
	return strcmp(((const struct wnode *)a)->path, ((const struct wnode *)b)->path);
}

static int cmp_node(const void *a, const void *b)
{
	return strcmp(((const struct node *)a)->path, ((const struct node *)b)->path);
}

/* Does the walked tree have the model's paths and types? Prints the first
 * difference into why. */
static int same_shape(const struct walk *w, struct tree *t, char *why, size_t cap)
{
	qsort(t->v, (size_t)t->n, sizeof(t->v[0]), cmp_node);
	int i = 0, j = 0;
	while (i < w->n || j < t->n) {
		int c = i >= w->n ? 1 : j >= t->n ? -1 : strcmp(w->v[i].path, t->v[j].path);
		if (c < 0) {
			snprintf(why, cap, "extra %s %s", w->v[i].type == NS_DIR ? "dir" : "file",
			         w->v[i].path);
			return 0;
		}
		if (c > 0) {
			snprintf(why, cap, "missing %s %s", t->v[j].type == NS_DIR ? "dir" : "file",
			         t->v[j].path);
			return 0;
		}
		if (w->v[i].type != t->v[j].type) {
			snprintf(why, cap, "%s has the wrong type", t->v[j].path);
			return 0;
		}
		i++;
		j++;
	}
	return 1;
}

struct recount {
	uint64_t objects, bytes;
	uint64_t *ids;
	uint64_t nids, cap;
};

static int recount_fn(void *ctx, const store_obj_info *in)
{
	struct recount *rc = ctx;
	uint64_t mapped = 0;
	rc->objects++;
	/* Logical bytes are the bytes in extents (holes excluded), not the sizes. */
	int r = store_mapped_bytes(S, in->id, &mapped);
	if (r < 0)
		fail("recount: the map of object %llu: %s", (unsigned long long)in->id,
		     strerror(-r));
	rc->bytes += mapped;
	if (rc->nids == rc->cap) {
		rc->cap = rc->cap ? 2 * rc->cap : 256;
		rc->ids = realloc(rc->ids, sizeof(uint64_t) * rc->cap);
	}
	rc->ids[rc->nids++] = in->id;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Chunks and stored bytes according to the segments on disk. */
static void scan(uint64_t *chunks, uint64_t *stored)
{
	uint64_t row = 0;
	int n = tu_store_scan(S, chunks, stored, &row);
	if (n < 0)
		fail("segment table of row %llu: %s", (unsigned long long)row, strerror(-n));
}

/* Does the walked tree equal model t: paths, types, sizes, every file's bytes? On a
 * difference, says the first one in why. t is sorted like the walk. */
static int matches(const struct walk *w, struct tree *t, char *why, size_t cap)
{
	int r;
	if (!same_shape(w, t, why, cap))
		return 0;
	for (int i = 0; i < w->n; i++) {
		const struct node *nd = &t->v[i];
		ns_attr a;
		if ((r = ns_getattr(N, w->v[i].id, &a)) < 0) {
			snprintf(why, cap, "getattr %s: %s", nd->path, strerror(-r));
			return 0;
		}
		if (a.type != nd->type) {
			snprintf(why, cap, "%s: attribute type %u, directory entry says %u", nd->path,
			         a.type, nd->type);
			return 0;
		}
		if (nd->type != NS_FILE)
			continue;
		if (a.size != nd->c.size) {
			snprintf(why, cap, "%s: size %llu, expected %llu", nd->path,
			         (unsigned long long)a.size, (unsigned long long)nd->c.size);
			return 0;
		}
		size_t g = 0;
		gen(&nd->c, want);
		r = store_read(S, w->v[i].id, 0, got, nd->c.size + 1, &g);
		if (r < 0) {
			snprintf(why, cap, "read %s: %s", nd->path, strerror(-r));
			return 0;
		}
		if (g != nd->c.size || memcmp(want, got, g)) {
			snprintf(why, cap, "%s (object %llu, %llu bytes) reads back different bytes",
			         nd->path, (unsigned long long)w->v[i].id, (unsigned long long)nd->c.size);
			return 0;
		}
		cnt.files_checked++;
		cnt.bytes_checked += g;
	}
	return 1;
}

/* After a reopen: the namespace must be the durable tree, or (may_be_newer: a cut
 * inside a sync or commit; or any change surviving early) the current one. */
static void check(const char *why_reopen)
{
	struct walk w = {0};
	char why1[300] = "", why2[300] = "";
	int r;

	cnt.checks++;
	walk_dir(&w, ns_root(N), "", 0);
	qsort(w.v, (size_t)w.n, sizeof(w.v[0]), cmp_wnode);
	/* The tree as of the last sync or commit; or, when a cut fell inside one (or a
	 * change survived without one), the current tree: whole, never a mixture. */
	if (matches(&w, &dur, why1, sizeof(why1))) {
		cur = dur;
	} else if (matches(&w, &cur, why2, sizeof(why2))) {
		if (in_durable)
			cnt.newer_state_survived++;
		else
			cnt.unsynced_survived++;
		dur = cur;
	} else {
		fail("after %s: the namespace is neither the durable tree (%s) nor the current "
		     "one (%s)", why_reopen, why1, why2);
	}
	in_durable = 0;
	/* Accounting: stats against a recount; every object reachable (no leak). */
	struct recount rc = {0};
	if ((r = store_list(S, recount_fn, &rc)) < 0)
		fail("store_list: %s", strerror(-r));
	store_stats st;
	store_get_stats(S, &st);
	cnt.log_replayed += st.log_replayed;
	if (st.objects != rc.objects || st.logical_bytes != rc.bytes)
		fail("after %s: stats say %llu objects / %llu bytes, a recount %llu / %llu",
		     why_reopen, (unsigned long long)st.objects, (unsigned long long)st.logical_bytes,
		     (unsigned long long)rc.objects, (unsigned long long)rc.bytes);
	uint64_t *ids = malloc(sizeof(uint64_t) * ((size_t)w.n + 1));
	for (int i = 0; i < w.n; i++)
		ids[i] = w.v[i].id;
	ids[w.n] = ns_root(N);
	qsort(ids, (size_t)w.n + 1, sizeof(uint64_t), cmp_u64);
	qsort(rc.ids, rc.nids, sizeof(uint64_t), cmp_u64);
	if (rc.nids != (uint64_t)w.n + 1)
		fail("after %s: %llu objects in the store, %d reachable from the root", why_reopen,
		     (unsigned long long)rc.nids, w.n + 1);
	for (uint64_t i = 0; i < rc.nids; i++)
		if (rc.ids[i] != ids[i])
			fail("after %s: object %llu is in the store but not in the namespace",
			     why_reopen, (unsigned long long)rc.ids[i]);
	free(ids);
	free(rc.ids);
	uint64_t sc, ss;
	scan(&sc, &ss);
	if (sc != st.unique_chunks || ss != st.stored_bytes)
		fail("after %s: accounting %llu chunks / %llu bytes, segments hold %llu / %llu",
		     why_reopen, (unsigned long long)st.unique_chunks,
		     (unsigned long long)st.stored_bytes, (unsigned long long)sc,
		     (unsigned long long)ss);
	store_verify_report vr;
	r = store_verify(S, &vr);
	if (r < 0 || vr.objects_damaged || vr.chunks_bad)
		fail("after %s: verify: %s, %llu objects damaged, %llu bad chunks (first %llu)",
		     why_reopen, r < 0 ? strerror(-r) : "ok", (unsigned long long)vr.objects_damaged,
		     (unsigned long long)vr.chunks_bad, (unsigned long long)vr.damaged_ids[0]);
	cnt.repaired_strips += vr.repaired;
	free(w.v);
}

static void reopen(const char *why)
{
	close_stack();
	open_stack();
	check(why);
}

/* --- namespace operations --- */

/* Write c as a new object, natively or source-dedup. 0 and *id, 1 when the power is
 * out, -ENOSPC when the array is full (the writer is aborted). */
static int write_obj(const struct cspec *c, int sd, int replace_id, uint64_t *id)
{
	store_writer *wr;
	int r;
	gen(c, want);
	if ((r = store_put_begin(S, &wr)) < 0) {
		/* A full store refuses a new object at once (dedup/pool.h "space"). */
		if (r == -ENOSPC && !flt_is_dead(W)) {
			cnt.enospc++;
			return -ENOSPC;
		}
		return dead_or_fail(r, "put_begin");
	}
	if (!sd) {
		for (uint64_t at = 0; at < c->size && r >= 0;) {
			uint64_t piece = 1 + bks_rng_below(&R, 300 << 10); /* not inside BKS_MIN */
			uint64_t n = BKS_MIN(c->size - at, piece);
			r = store_put_write(wr, want + at, n);
			at += n;
		}
	} else {
		cdc *ch;
		if (cdc_new(&cdcp, &ch) < 0)
			fail("cdc_new");
		size_t at = 0, start = 0;
		while (r >= 0 && start < c->size) {
			int cut = 0;
			size_t n = cdc_next(ch, want + at, c->size - at, &cut);
			at += n;
			if (!cut && at < c->size)
				continue;
			uint8_t fp[FP_LEN];
			uint32_t len = (uint32_t)(at - start);
			if (fp_compute(FP, want + start, len, fp) < 0)
				fail("fp_compute");
			if (bks_rng_below(&R, 2)) {
				int h = store_has_chunk(S, fp, len);
				if (h < 0) {
					r = h;
					break;
				}
				cnt.sd_has_chunk_yes += h == 1;
			}
			r = store_put_known(wr, fp, len);
			if (r == 1) {
				cnt.sd_chunks_known++;
			} else if (r == 0) {
				cnt.sd_chunks_sent++;
				r = store_put_chunk(wr, fp, want + start, len);
			}
			start = at;
		}
		cdc_free(ch);
	}
	if (r >= 0)
		r = replace_id ? store_put_end_replace(wr, *id) : store_put_end(wr, id);
	else
		store_put_abort(wr);
	if (r == -ENOSPC && !flt_is_dead(W)) {
		cnt.enospc++;
		return -ENOSPC;
	}
	if (dead_or_fail(r, "put"))
		return 1;
	cnt.put_bytes += c->size;
	return 0;
}

/* After ENOSPC: commit and collect, which must make room again. */
static void recover_space(void)
{
	int r;
	bks_err e = {0};
	note("recover space: commit + gc_run");
	if (gc_running) {
		while ((r = store_gc_step(S)) > 0)
			cnt.gc_steps++;
		if (dead_or_fail(r, "gc step (recovering from ENOSPC)"))
			return;
		gc_running = 0;
	}
	in_durable = 1;
	r = ns_commit(N, &e);
	if (r < 0 && !flt_is_dead(W))
		fail("commit of a full array: %s", bks_errmsg(&e, r));
	if (r < 0)
		return;
	dur = cur;
	r = store_gc_run(S, 0.9);
	if (r < 0 && !flt_is_dead(W))
		fail("gc_run on a full array: %s", strerror(-r));
	if (r < 0)
		return;
	in_durable = 0;
	cnt.gc_runs++;
	cnt.commits++;
}

static void op_put(int sd)
{
	if (cur.n >= NORMAL_MAX)
		return;
	const char *dp = rand_dir(MAXDEPTH - 1);
	char path[PATHLEN], name[16];
	snprintf(name, sizeof(name), "f%d", (int)bks_rng_below(&R, 24));
	snprintf(path, sizeof(path), "%s/%s", dp, name);
	int at = tfind(&cur, path);
	int replace = at >= 0 || bks_rng_below(&R, 2);
	struct cspec c = rand_content();
	note("%sput %s (%llu bytes, base %d)%s", sd ? "source-dedup " : "", path,
	     (unsigned long long)c.size, c.base, at >= 0 ? " over the old one" : "");
	if (at >= 0 && cur.v[at].type == NS_DIR)
		replace = 1; /* -EISDIR expected */
	uint64_t dirid = resolve_dir(dp), id;
	if (!dirid)
		return;
	int r = write_obj(&c, sd, 0, &id);
	if (r == -ENOSPC) {
		recover_space();
		return;
	}
	if (r)
		return;
	r = ns_link_new(N, dirid, name, id, replace, 0644, 1000, 1000,
	                1700000000000000000ll + (int64_t)opno, NULL);
	if (at >= 0 && cur.v[at].type == NS_DIR) {
		if (r != -EISDIR && !flt_is_dead(W))
			fail("link %s over a directory: %d, expected -EISDIR", path, r);
		if (r == 0)
			return;
		if ((r = store_delete(S, id)) < 0)
			dead_or_fail(r, "delete the unlinked object");
		return;
	}
	if (dead_or_fail(r, "link"))
		return;
	sd ? cnt.sd_puts++ : cnt.puts++;
	if (at >= 0) {
		cnt.overwrites_link++;
		cur.v[at].c = c;
	} else {
		tadd(&cur, path, NS_FILE, &c);
	}
}

static void op_overwrite_inplace(void)
{
	int i = rand_node(NS_FILE);
	if (i < 0)
		return;
	ns_attr a;
	int r = ns_resolve(N, cur.v[i].path, &a);
	if (dead_or_fail(r, "resolve"))
		return;
	struct cspec c = rand_content();
	note("rewrite %s in place (object %llu, %llu bytes)", cur.v[i].path,
	     (unsigned long long)a.id, (unsigned long long)c.size);
	uint64_t id = a.id;
	r = write_obj(&c, (int)bks_rng_below(&R, 2), 1, &id);
	if (r == -ENOSPC) {
		recover_space();
		return;
	}
	if (r)
		return;
	cnt.overwrites_inplace++;
	cur.v[i].c = c;
}

static void op_unlink(void)
{
	int i = rand_node(bks_rng_below(&R, 8) ? NS_FILE : NS_DIR);
	if (i < 0)
		return;
	char parent[PATHLEN], name[PATHLEN], path[PATHLEN];
	snprintf(path, sizeof(path), "%s", cur.v[i].path);
	split(path, parent, name);
	note("unlink %s", path);
	uint64_t d = resolve_dir(parent);
	if (!d)
		return;
	int r = ns_unlink(N, d, name);
	if (cur.v[i].type == NS_DIR) {
		if (r != -EISDIR && !flt_is_dead(W))
			fail("unlink of directory %s: %d, expected -EISDIR", path, r);
		return;
	}
	if (dead_or_fail(r, "unlink"))
		return;
	cnt.unlinks++;
	tdel(&cur, i);
}

static void op_mkdir(void)
{
	if (cur.n >= NORMAL_MAX)
		return;
	const char *dp = rand_dir(MAXDEPTH - 2);
	char path[PATHLEN], name[16];
	snprintf(name, sizeof(name), "d%d", (int)bks_rng_below(&R, 8));
	snprintf(path, sizeof(path), "%s/%s", dp, name);
	int at = tfind(&cur, path);
	note("mkdir %s%s", path, at >= 0 ? " (exists)" : "");
	uint64_t d = resolve_dir(dp);
	if (!d)
		return;
	int r = ns_mkdir(N, d, name, 0755, 0, 0, NULL);
	if (at >= 0) {
		if (r != -EEXIST && !flt_is_dead(W))
			fail("mkdir %s over an existing name: %d, expected -EEXIST", path, r);
		return;
	}
	if (dead_or_fail(r, "mkdir"))
		return;
	cnt.mkdirs++;
	tadd(&cur, path, NS_DIR, NULL);
}

static void op_rmdir(void)
{
	int i = rand_node(NS_DIR);
	if (i < 0)
		return;
	char parent[PATHLEN], name[PATHLEN], path[PATHLEN];
	snprintf(path, sizeof(path), "%s", cur.v[i].path);
	split(path, parent, name);
	int kids = nchildren(&cur, path);
	note("rmdir %s (%d entries below)", path, kids);
	uint64_t d = resolve_dir(parent);
	if (!d)
		return;
	int r = ns_rmdir(N, d, name);
	if (kids) {
		if (r != -ENOTEMPTY && !flt_is_dead(W))
			fail("rmdir of non-empty %s: %d, expected -ENOTEMPTY", path, r);
		cnt.rmdirs_refused++;
		return;
	}
	if (dead_or_fail(r, "rmdir"))
		return;
	cnt.rmdirs++;
	tdel(&cur, i);
}

static void op_rename(void)
{
	int i = rand_node(0);
	if (i < 0)
		return;
	char src[PATHLEN], sparent[PATHLEN], sname[PATHLEN], dst[PATHLEN], dname[16];
	snprintf(src, sizeof(src), "%s", cur.v[i].path);
	split(src, sparent, sname);
	uint32_t type = cur.v[i].type;
	const char *dp = rand_dir(MAXDEPTH - 1);
	int other = bks_rng_below(&R, 10) == 0; /* sometimes a name of the other kind */
	if ((type == NS_DIR) != other)
		snprintf(dname, sizeof(dname), "d%d", (int)bks_rng_below(&R, 8));
	else
		snprintf(dname, sizeof(dname), "f%d", (int)bks_rng_below(&R, 24));
	snprintf(dst, sizeof(dst), "%s/%s", dp, dname);
	int noreplace = bks_rng_below(&R, 4) == 0;
	if (!strcmp(src, dst))
		return;
	/* The deepest path the move makes must fit the model. */
	int deepest = 0;
	for (int j = 0; j < cur.n; j++)
		if (j == i || is_under(cur.v[j].path, src))
			deepest = BKS_MAX(deepest, (int)(strlen(cur.v[j].path) - strlen(src)));
	if (strlen(dst) + (size_t)deepest >= PATHLEN - 8 ||
	    depth(dst) + (type == NS_DIR ? 2 : 0) > MAXDEPTH + 1)
		return;
	/* What must happen. */
	int t = tfind(&cur, dst), ok = 1;
	if (type == NS_DIR && (!strcmp(dp, src) || is_under(dp, src)))
		ok = 0; /* into itself */
	else if (t >= 0 && (noreplace || cur.v[t].type != type ||
	                    (type == NS_DIR && nchildren(&cur, dst))))
		ok = 0;
	note("rename %s -> %s%s (%s)", src, dst, noreplace ? " noreplace" : "",
	     ok ? "must work" : "must be refused");
	uint64_t sd = resolve_dir(sparent), dd = sd ? resolve_dir(dp) : 0;
	if (!dd)
		return;
	int r = ns_rename(N, sd, sname, dd, dname, noreplace);
	if (!ok) {
		if (r == 0)
			fail("rename %s -> %s succeeded; it must be refused", src, dst);
		cnt.renames_refused++;
		return;
	}
	if (dead_or_fail(r, "rename"))
		return;
	cnt.renames++;
	if (t >= 0) {
		tdel(&cur, t);
		if (i == cur.n)
			i = t; /* tdel moved the last node into t */
	}
	size_t sl = strlen(src);
	for (int j = 0; j < cur.n; j++) {
		if (j != i && !is_under(cur.v[j].path, src))
			continue;
		char np[PATHLEN];
		snprintf(np, sizeof(np), "%s%s", dst, cur.v[j].path + sl);
		snprintf(cur.v[j].path, sizeof(cur.v[j].path), "%s", np);
	}
}

static void op_sync(void)
{
	int i = rand_node(0);
	ns_attr a;
	const char *p = i < 0 ? "/" : cur.v[i].path;
	int r = ns_resolve(N, p, &a);
	if (dead_or_fail(r, "resolve"))
		return;
	note("sync %s (object %llu)", p, (unsigned long long)a.id);
	bks_err e = {0};
	in_durable = 1;
	r = ns_sync(N, a.id, &e);
	if (r == -ENOSPC && !flt_is_dead(W))
		fail("sync: %s (a full array must still sync)", bks_errmsg(&e, r));
	if (dead_or_fail(r, "sync"))
		return;
	in_durable = 0;
	dur = cur;
	cnt.syncs++;
}

static void op_commit(void)
{
	bks_err e = {0};
	note("commit");
	in_durable = 1;
	int r = ns_commit(N, &e);
	if (r < 0 && !flt_is_dead(W))
		fail("commit: %s", bks_errmsg(&e, r));
	if (r < 0)
		return;
	in_durable = 0;
	dur = cur;
	cnt.commits++;
}

static void op_gc(void)
{
	int r;
	if (!gc_running && bks_rng_below(&R, 4) == 0) {
		note("gc run");
		if (dead_or_fail(ns_flush(N), "flush"))
			return;
		in_durable = 1;
		r = store_gc_run(S, 0.5);
		if (dead_or_fail(r, "gc_run"))
			return;
		in_durable = 0;
		dur = cur;
		cnt.gc_runs++;
		return;
	}
	if (!gc_running) {
		double min_live = 0.3 + 0.1 * (double)bks_rng_below(&R, 6);
		note("gc start (min_live %.1f)", min_live);
		if (dead_or_fail(store_gc_start(S, min_live), "gc_start"))
			return;
		gc_running = 1;
		cnt.gc_starts++;
		return;
	}
	int steps = 1 + (int)bks_rng_below(&R, 3);
	note("gc %d steps", steps);
	for (int i = 0; i < steps && gc_running; i++) {
		r = store_gc_step(S);
		if (dead_or_fail(r, "gc_step"))
			return;
		cnt.gc_steps++;
		gc_running = r > 0;
	}
}

/* Fill the array with unique files until ENOSPC, then delete them, commit and
 * collect: the space must come back. */
static void op_fill(void)
{
	char path[PATHLEN];
	uint64_t root = ns_root(N), n = 0;
	int r, full = 0;
	note("fill to ENOSPC");
	cnt.fills++;
	while (!full && n < 200) {
		struct cspec c = {-1, 0, (1u << 20) + bks_rng_below(&R, 2u << 20), bks_rng_next(&R)};
		uint64_t id;
		r = write_obj(&c, 0, 0, &id);
		if (r == 1)
			return;
		if (r == -ENOSPC) {
			full = 1;
			break;
		}
		snprintf(path, sizeof(path), "/z%llu", (unsigned long long)n);
		char name[32];
		snprintf(name, sizeof(name), "z%llu", (unsigned long long)n);
		n++;
		r = ns_link_new(N, root, name, id, 1, 0644, 0, 0, 1, NULL);
		if (dead_or_fail(r, "link fill file"))
			return;
		tadd(&cur, path, NS_FILE, &c);
		cnt.fill_bytes += c.size;
	}
	if (!full)
		fail("wrote %llu fill files (%llu bytes) without ENOSPC", (unsigned long long)n,
		     (unsigned long long)cnt.fill_bytes);
	note("full after %llu fill files; deleting them", (unsigned long long)n);
	for (int i = cur.n - 1; i >= 0; i--) {
		if (strncmp(cur.v[i].path, "/z", 2))
			continue;
		r = ns_unlink(N, root, cur.v[i].path + 1);
		if (dead_or_fail(r, "unlink fill file"))
			return;
		tdel(&cur, i);
	}
	recover_space();
	if (flt_is_dead(W))
		return;
	/* The room is back: a 1 MiB file fits. */
	struct cspec c = {-1, 0, 1u << 20, bks_rng_next(&R)};
	uint64_t id;
	r = write_obj(&c, 0, 0, &id);
	if (r == -ENOSPC)
		fail("still ENOSPC after deleting the fill files, a commit and a GC");
	if (r)
		return;
	r = ns_link_new(N, root, "after-fill", id, 1, 0644, 0, 0, 1, NULL);
	if (dead_or_fail(r, "link"))
		return;
	int at = tfind(&cur, "/after-fill");
	if (at >= 0)
		cur.v[at].c = c;
	else
		tadd(&cur, "/after-fill", NS_FILE, &c);
}

/* More directories than the namespace keeps cached (4096): create WIDE directories
 * under /w, link small files into random ones and rename files between them (every
 * rename dirties two directories while the cache trims), commit, reopen and check the
 * whole tree, then remove it all again. */
static void op_wide(void)
{
	char path[PATHLEN], name[32];
	int r;
	if (cur.n >= NORMAL_MAX || tfind(&cur, "/w") >= 0)
		return;
	note("wide: %d directories under /w, files renamed between them", WIDE);
	cnt.wide_runs++;
	/* No cut inside: a half-built wide tree would slow every later op and check. */
	flt_disarm(W);
	armed = 0;
	r = ns_mkdir(N, ns_root(N), "w", 0755, 0, 0, NULL);
	if (dead_or_fail(r, "mkdir /w"))
		return;
	tadd(&cur, "/w", NS_DIR, NULL);
	uint64_t w = resolve_dir("/w");
	if (!w)
		return;
	static uint64_t ids[WIDE];
	for (int i = 0; i < WIDE; i++) {
		ns_attr a;
		snprintf(name, sizeof(name), "x%04d", i);
		r = ns_mkdir(N, w, name, 0755, 0, 0, &a);
		if (dead_or_fail(r, "mkdir in /w"))
			return;
		ids[i] = a.id;
		snprintf(path, sizeof(path), "/w/%s", name);
		tadd(&cur, path, NS_DIR, NULL);
	}
	/* Entries: small files (one object each) and empty directories, in random
	 * directories of /w. */
	int nf = 64 + (int)bks_rng_below(&R, 64);
	for (int i = 0; i < nf; i++) {
		int d = (int)bks_rng_below(&R, WIDE);
		if (bks_rng_below(&R, 3) == 0) {
			snprintf(name, sizeof(name), "s%d", i);
			r = ns_mkdir(N, ids[d], name, 0755, 0, 0, NULL);
			if (dead_or_fail(r, "mkdir in /w/x"))
				return;
			snprintf(path, sizeof(path), "/w/x%04d/%s", d, name);
			tadd(&cur, path, NS_DIR, NULL);
			continue;
		}
		struct cspec c = {(int32_t)bks_rng_below(&R, NBASE), (uint32_t)bks_rng_below(&R, BASE_LEN),
		                  bks_rng_below(&R, 3000), bks_rng_next(&R)};
		uint64_t id;
		r = write_obj(&c, 0, 0, &id);
		if (r == -ENOSPC) {
			recover_space();
			return;
		}
		if (r)
			return;
		snprintf(name, sizeof(name), "g%d", i);
		r = ns_link_new(N, ids[d], name, id, 0, 0644, 0, 0, 1, NULL);
		if (dead_or_fail(r, "link in /w"))
			return;
		snprintf(path, sizeof(path), "/w/x%04d/%s", d, name);
		tadd(&cur, path, NS_FILE, &c);
		cnt.wide_files++;
	}
	/* Commit: every directory is clean now, so the cache may drop any of them. */
	op_commit();
	if (flt_is_dead(W))
		return;
	/* Renames between random directories, touching other directories in between so
	 * the cache cycles through all of them. For a few directory renames the cache is
	 * first filled to exactly its limit, with source and target loaded and the moved
	 * directory not: loading it inside ns_rename is what makes the cache trim. */
	int nr = 200 + (int)bks_rng_below(&R, 200), primed = 0;
	for (int i = 0; i < nr; i++) {
		int f = -1;
		for (int t = 0; t < 64 && f < 0; t++) {
			int j = (int)bks_rng_below(&R, (uint64_t)cur.n);
			if (!strncmp(cur.v[j].path, "/w/x", 4) && depth(cur.v[j].path) == 3)
				f = j;
		}
		if (f < 0)
			continue;
		int from = atoi(cur.v[f].path + 4), to = (int)bks_rng_below(&R, WIDE);
		const char *fname = strrchr(cur.v[f].path, '/') + 1;
		snprintf(path, sizeof(path), "/w/x%04d/%s", to, fname);
		if (tfind(&cur, path) >= 0)
			continue;
		int prime = cur.v[f].type == NS_DIR && primed < 5 && from != to;
		if (prime) {
			ns_attr a;
			ns_stats nst;
			primed++;
			cnt.wide_primed_renames++;
			/* One load past the limit trims every clean directory... */
			for (int k = 0; k < 2; k++) {
				snprintf(name, sizeof(name), "x%04d", (int)bks_rng_below(&R, WIDE));
				if (dead_or_fail(ns_lookup(N, w, name, &a), "lookup in /w"))
					return;
				ns_lookup(N, a.id, "nothing", &a);
			}
			/* ...then source and target, then others up to the limit. */
			ns_lookup(N, ids[from], "nothing", &a);
			ns_lookup(N, ids[to], "nothing", &a);
			for (int k = 0; k < 2 * WIDE; k++) {
				ns_get_stats(N, &nst);
				if (nst.dirs_cached >= 4096)
					break;
				int x = (int)bks_rng_below(&R, WIDE);
				if (x == from || x == to)
					continue;
				ns_lookup(N, ids[x], "nothing", &a);
			}
		}
		if (verbose)
			fprintf(stderr, "  wide: rename %s -> %s%s\n", cur.v[f].path, path,
			        prime ? " (cache primed)" : "");
		r = ns_rename(N, ids[from], fname, ids[to], fname, 1);
		if (r < 0 && !flt_is_dead(W))
			fail("wide: rename %s -> %s: %s", cur.v[f].path, path, strerror(-r));
		if (r < 0)
			return;
		/* The move must show at once: in the target, not in the source. */
		ns_attr la;
		int in_to = ns_lookup(N, ids[to], fname, &la), in_from = ns_lookup(N, ids[from], fname, &la);
		if (flt_is_dead(W))
			return;
		if (in_to != 0 || in_from != -ENOENT)
			fail("wide: rename %s -> %s returned 0, then the name is %s the target and %s "
			     "the source%s", cur.v[f].path, path, in_to == 0 ? "in" : "not in",
			     in_from == 0 ? "still in" : "not in",
			     prime ? " (the cache was at its limit, the moved directory not in it)" : "");
		snprintf(cur.v[f].path, sizeof(cur.v[f].path), "%s", path);
		cnt.wide_renames++;
		/* Look at a few other directories, so the cache trims between renames. */
		for (int k = 0; k < 16; k++) {
			ns_attr a;
			snprintf(name, sizeof(name), "x%04d", (int)bks_rng_below(&R, WIDE));
			r = ns_lookup(N, w, name, &a);
			if (dead_or_fail(r, "lookup in /w"))
				return;
			r = ns_lookup(N, a.id, "nothing", &a);
			if (r != -ENOENT && dead_or_fail(r < 0 ? r : -EEXIST, "lookup of a missing name"))
				return;
		}
	}
	op_commit();
	if (flt_is_dead(W))
		return;
	flt_disarm(W);
	cnt.clean_reopens++;
	reopen("the wide op's commit and reopen");
	/* Take it all away again. */
	for (int i = cur.n - 1; i >= 0; i--) {
		if (strncmp(cur.v[i].path, "/w/", 3) || depth(cur.v[i].path) != 3)
			continue;
		char parent[PATHLEN], nm[PATHLEN];
		split(cur.v[i].path, parent, nm);
		if (cur.v[i].type == NS_FILE)
			r = ns_unlink(N, ids[atoi(parent + 4)], nm);
		else
			r = ns_rmdir(N, ids[atoi(parent + 4)], nm);
		if (dead_or_fail(r, "remove in /w"))
			return;
		tdel(&cur, i);
	}
	for (int i = 0; i < WIDE; i++) {
		snprintf(name, sizeof(name), "x%04d", i);
		r = ns_rmdir(N, w, name);
		if (dead_or_fail(r, "rmdir in /w"))
			return;
		snprintf(path, sizeof(path), "/w/%s", name);
		int at = tfind(&cur, path);
		if (at >= 0)
			tdel(&cur, at);
	}
	r = ns_rmdir(N, ns_root(N), "w");
	if (dead_or_fail(r, "rmdir /w"))
		return;
	tdel(&cur, tfind(&cur, "/w"));
	op_commit();
}

/* --- disk operations --- */

static arr_status st_;

static int fresh_file(void)
{
	int idx[NFILES], n = 0;
	for (int i = 0; i < NFILES; i++)
		if (!in_machine[i])
			idx[n++] = i;
	return n ? idx[bks_rng_below(&R, (uint64_t)n)] : -1;
}

/* A random ONLINE member's index in st_.disks, or -1. */
static int rand_online_member(void)
{
	int idx[ARR_MAX_DISKS * 2 + ARR_MAX_SPARES], n = 0;
	for (int j = 0; j < st_.ndisks; j++)
		if (st_.disks[j].role == ARR_ROLE_MEMBER && !strcmp(st_.disks[j].state, "ONLINE") &&
		    st_.disks[j].path[0])
			idx[n++] = j;
	return n ? idx[bks_rng_below(&R, (uint64_t)n)] : -1;
}

static void op_fail_disk(void)
{
	get_status(&st_);
	if (st_.health != ARR_OK)
		return;
	int j = rand_online_member();
	if (j < 0)
		return;
	note("fail disk %s", st_.disks[j].path);
	bks_err e = {0};
	int r = arr_fail(A, st_.disks[j].path, &e);
	if (r < 0 && !flt_is_dead(W))
		fail("fail %s: %s", st_.disks[j].path, bks_errmsg(&e, r));
	if (r == 0)
		cnt.disk_fails++;
}

static int spares_avail(void)
{
	int n = 0;
	for (int j = 0; j < st_.ndisks; j++)
		n += st_.disks[j].role == ARR_ROLE_SPARE;
	return n;
}

static void op_add_spare(void)
{
	get_status(&st_);
	if (spares_avail() > 0)
		return;
	int f = fresh_file();
	if (f < 0)
		return;
	note("add spare %s (array %s)", paths[f], arr_health_name(st_.health));
	wipe(f);
	in_machine[f] = 1;
	disk *d = tu_open1(paths[f], W);
	bks_err e = {0};
	int r = arr_add_spare(A, d, 1, &e);
	if (r < 0) {
		disk_close(d);
		if (!flt_is_dead(W))
			fail("add spare %s: %s", paths[f], bks_errmsg(&e, r));
		return;
	}
	cnt.spares_added++;
}

static void op_replace(void)
{
	get_status(&st_);
	if (st_.health != ARR_OK)
		return;
	for (int j = 0; j < st_.ndisks; j++)
		if (st_.disks[j].role == ARR_ROLE_INCOMING)
			return; /* one replace at a time (a second one is refused, rightly) */
	int j = rand_online_member(), f = fresh_file();
	if (j < 0 || f < 0)
		return;
	note("replace %s by %s", st_.disks[j].path, paths[f]);
	wipe(f);
	in_machine[f] = 1;
	disk *d = tu_open1(paths[f], W);
	bks_err e = {0};
	int r = arr_replace(A, st_.disks[j].path, d, 1, &e);
	if (r < 0) {
		disk_close(d);
		if (!flt_is_dead(W))
			fail("replace %s: %s", st_.disks[j].path, bks_errmsg(&e, r));
		return;
	}
	cnt.replaces++;
}

static void op_bg(void)
{
	uint32_t rows = 1 + (uint32_t)bks_rng_below(&R, 64);
	note("background step (%u rows)", rows);
	int r = arr_bg_step(A, rows);
	if (dead_or_fail(r, "bg_step"))
		return;
	cnt.bg_steps++;
}

static void op_scrub(int full)
{
	get_status(&st_);
	int running = 0;
	for (int j = 0; j < st_.njobs; j++)
		running |= !strcmp(st_.jobs[j].kind, "scrub") && strcmp(st_.jobs[j].state, "done") &&
		           strcmp(st_.jobs[j].state, "idle");
	note("scrub%s%s", full ? " to the end" : " start", running ? " (one is running)" : "");
	bks_err e = {0};
	if (!running) {
		int r = arr_scrub_start(A, &e);
		if (r < 0 && !flt_is_dead(W))
			fail("scrub start: %s", bks_errmsg(&e, r));
		if (r < 0)
			return;
		cnt.scrubs++;
	}
	if (full) {
		int r = arr_bg_run(A);
		if (dead_or_fail(r, "bg_run"))
			return;
		cnt.scrubs_full++;
		/* Every strip a scrub read was checked and repaired: corruption may go in
		 * again without piling up in one row. */
		ncorrupt = 0;
	}
}

/* Flip bytes of one strip of a live row on one online member, on the medium, where
 * the array cannot see it happen. At most one per row between full scrubs, and only
 * on a healthy array, so no row ever has more damage than RAID-6 can locate and
 * repair with the store's checksums. */
static void op_corrupt(void)
{
	get_status(&st_);
	if (st_.health != ARR_OK || ncorrupt == MAXCORRUPT)
		return;
	pool *pl = store_pool(S);
	uint64_t row = 0;
	int found = 0;
	for (int t = 0; t < 20 && !found; t++) {
		row = bks_rng_below(&R, BKS_MAX(st_.hwm, 1));
		int s = pool_row_state(pl, row);
		found = s == ROW_DATA || s == ROW_META;
		for (int i = 0; i < ncorrupt && found; i++)
			found = corrupt_rows[i] != row;
	}
	int j = rand_online_member();
	if (!found || j < 0)
		return;
	uint64_t off = ARR_DATA_OFF + row * st_.strip_size + bks_rng_below(&R, st_.strip_size - 64);
	uint8_t b[64];
	bks_rng_fill(&R, b, sizeof(b));
	note("corrupt row %llu on %s at %llu", (unsigned long long)row, st_.disks[j].path,
	     (unsigned long long)off);
	int fd = open(st_.disks[j].path, O_RDWR);
	uint8_t old[64];
	if (fd < 0 || pread(fd, old, sizeof(old), (off_t)off) != (ssize_t)sizeof(old))
		fail("harness: read %s for corruption", st_.disks[j].path);
	for (size_t i = 0; i < sizeof(b); i++)
		b[i] = old[i] ^ (uint8_t)(b[i] | 1);
	if (no_corrupt)
		memcpy(b, old, sizeof(b)); /* the same op stream, without the damage */
	if (pwrite(fd, b, sizeof(b), (off_t)off) != (ssize_t)sizeof(b) || fdatasync(fd) != 0)
		fail("harness: corrupt %s", st_.disks[j].path);
	close(fd);
	corrupt_rows[ncorrupt++] = row;
	cnt.corruptions++;
}

/* --- power --- */

static void op_arm(void)
{
	if (armed)
		return;
	uint64_t after = 1 + bks_rng_below(&R, 400);
	int reorder = (int)bks_rng_below(&R, 2);
	note("arm a power cut in %llu writes/flushes (%s)", (unsigned long long)after,
	     reorder ? "reorder" : "drop");
	flt_arm_powercut(W, after, reorder ? FLT_PC_REORDER : FLT_PC_DROP);
	armed = reorder ? 2 : 1;
}

static void power_cut(void)
{
	note("power cut%s; reboot", in_durable ? " inside a sync/commit" : "");
	cnt.power_cuts++;
	armed == 2 ? cnt.cuts_reorder++ : cnt.cuts_drop++;
	cnt.cuts_in_sync_or_commit += in_durable;
	reopen("a power cut");
}

static void op_kill(void)
{
	flt_disarm(W);
	note("kill (close without commit); reopen");
	cnt.kills++;
	reopen("a kill");
}

static void op_clean_reopen(void)
{
	flt_disarm(W);
	note("commit, close, reopen");
	op_commit();
	if (flt_is_dead(W))
		return;
	cnt.clean_reopens++;
	reopen("a clean reopen");
	if (dur.n != cur.n)
		fail("harness: model trees differ after a clean reopen");
}

/* --- main --- */

static void setup(void)
{
	disk *d[NMEMB + 1];
	arr_config cfg;
	store_params sp;
	bks_err e = {0};
	int r;

	for (int i = 0; i < NFILES; i++) {
		char nm[16];
		snprintf(nm, sizeof(nm), "disk%02d", i);
		paths[i] = tu_file_disk(dir, nm, disk_mb << 20);
	}
	for (int i = 0; i <= NMEMB; i++) {
		d[i] = tu_open1(paths[i], NULL);
		in_machine[i] = 1;
	}
	arr_cfg(&cfg);
	if ((r = arr_create(&cfg, d, NMEMB, &d[NMEMB], 1, 0, &A, &e)) < 0) {
		fprintf(stderr, "harness: create: %s\n", bks_errmsg(&e, r));
		exit(99);
	}
	store_cfg(&sp);
	if ((r = store_create(A, &sp, &S, &e)) < 0 || (r = ns_format(S, 0755, &e)) < 0 ||
	    (r = store_commit(S, &e)) < 0) {
		fprintf(stderr, "harness: store: %s\n", bks_errmsg(&e, r));
		exit(99);
	}
	store_cdc_params(S, &cdcp);
	store_close(S);
	bks_rng br;
	bks_rng_seed(&br, seed ^ 0xba5eba11ull);
	for (int i = 0; i < NBASE; i++) {
		bases[i] = malloc(BASE_LEN);
		bks_rng_fill(&br, bases[i], BASE_LEN);
	}
	want = malloc(BASE_LEN + 1);
	got = malloc(BASE_LEN + 1);
	if (fp_ctx_new(&FP) < 0)
		exit(99);
	open_stack();
}

static void usage(void)
{
	fprintf(stderr, "usage: torture [--seed S] [--seconds N] [--ops N] [--disk-mb M] [--no-fill] [--no-corrupt]\n"
	                "               [--no-wide] [--async] [--verbose]\n"
	                "  --seconds 0 and --ops 0 mean no limit of that kind (default: 60 s)\n");
	exit(2);
}

int main(int argc, char **argv)
{
	uint64_t seconds = 60, maxops = 0;
	seed = 1;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--seed") && i + 1 < argc)
			seed = strtoull(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
			seconds = strtoull(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--ops") && i + 1 < argc)
			maxops = strtoull(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--no-fill"))
			no_fill = 1;
		else if (!strcmp(argv[i], "--no-corrupt"))
			no_corrupt = 1;
		else if (!strcmp(argv[i], "--no-wide"))
			no_wide = 1;
		else if (!strcmp(argv[i], "--async"))
			async_threads = 1;
		else if (!strcmp(argv[i], "--disk-mb") && i + 1 < argc)
			disk_mb = strtoull(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--verbose") || !strcmp(argv[i], "-v"))
			verbose = 1;
		else
			usage();
	}
	if (!seconds && !maxops)
		usage();
	bks_rng_seed(&R, seed);
	dir = tu_tmpdir_in("torture", "/dev/shm");
	uint64_t t0 = real_ns();
	setup();
	printf("torture: seed %llu, %s\n", (unsigned long long)seed, dir);

	for (opno = 1;; opno++) {
		if (maxops && opno > maxops)
			break;
		if (seconds && real_ns() - t0 >= seconds * 1000000000ull)
			break;
		cnt.ops++;
		/* Pressure: prune when the tree grows (the array is small). */
		uint64_t nf = nfiles_model();
		uint64_t k = bks_rng_below(&R, 1000);
		if (k < 160)
			op_put(0);
		else if (k < 240)
			op_put(1);
		else if (k < 280)
			op_overwrite_inplace();
		else if (k < 340 + (nf > 60 ? 150 : 0))
			op_unlink();
		else if (k < 390)
			op_mkdir();
		else if (k < 420)
			op_rmdir();
		else if (k < 490)
			op_rename();
		else if (k < 560)
			op_sync();
		else if (k < 600)
			op_commit();
		else if (k < 680)
			op_gc();
		else if (k < 700)
			op_fail_disk();
		else if (k < 715)
			op_add_spare();
		else if (k < 725)
			op_replace();
		else if (k < 800)
			op_bg();
		else if (k < 815)
			op_scrub(0);
		else if (k < 820)
			op_scrub(1);
		else if (k < 850)
			op_corrupt();
		else if (k < 920)
			op_arm();
		else if (k < 930)
			op_kill();
		else if (k < 937)
			op_clean_reopen();
		else if (k < 939 && !no_fill)
			op_fill();
		else if (k < 939)
			; /* the same op stream as with fills, up to the first one */
		else if (k < 940 && !no_wide)
			op_wide();
		else
			op_put(bks_rng_below(&R, 3) == 0);
		if (flt_is_dead(W))
			power_cut();
	}
	opno--;
	/* The end: everything committed must come back after a clean reopen. */
	flt_disarm(W);
	op_clean_reopen();
	if (flt_is_dead(W))
		fail("harness: the power died while disarmed");
	double secs = (double)(real_ns() - t0) / 1e9;
	close_stack();
	printf("torture: seed %llu: %llu ops in %.1f s (%.0f ops/s), %d files and directories "
	       "at the end\n",
	       (unsigned long long)seed, (unsigned long long)cnt.ops, secs,
	       (double)cnt.ops / secs, cur.n);
	print_counts();
	fp_ctx_free(FP);
	for (int i = 0; i < NBASE; i++)
		free(bases[i]);
	free(want);
	free(got);
	return tu_finish();
}
