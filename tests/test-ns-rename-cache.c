/* test-ns-rename-cache: renames while the directory cache is full (more than 4096
 * directories, the namespace's default cache size), checked after the call, after a
 * commit and after closing and reopening the whole stack.
 *
 * The bug this guards against: ns_rename edited both directories in memory and only
 * then marked them dirty; a directory load in between (the moved directory, to fix
 * its parent pointer) could trim the cache, which dropped the two edited (still
 * clean) directories. The call returned 0 and the rename was gone, except for the
 * moved directory's parent pointer, which then fooled the loop check: /x/m "moved" to
 * /y/m stayed in /x, and /y could then be moved into its own subtree. A client gets
 * there with a LIST of 4096 directories followed by a RENAME.
 *
 * Before each rename, prime() puts the cache exactly where the old code went wrong:
 * the directories of the rename (and their ancestors) cached, the moved directory
 * not, and 4096 directories cached, so the next load trims. It reads the cache's
 * state through ns_get_stats only; whatever the cache does, every result below is
 * checked against what POSIX rename says should be there:
 *  - directory move, directory over an empty directory (replaced, its object gone),
 *    file move, file over a file (replaced, deleted);
 *  - refusals leave everything as it was: directory over a non-empty directory
 *    (ENOTEMPTY), file over a directory (EISDIR), directory over a file (ENOTDIR),
 *    noreplace (EEXIST), a directory into its own subtree (EINVAL), also after a
 *    commit and a reopen emptied the cache;
 *  - the whole tree, walked from the root, holds every directory exactly once;
 *  - a LIST whose callback stats each entry (the daemon's) sees every name right
 *    while the stats drop the listed directory from the cache. */
#include <config.h>

#include "tests/testutil.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fs/ns.h"

#define N 6
#define DISK_MB 64
#define NFILL 4300        /* filler directories: more than the cache holds */
#define CACHE_DEFAULT 4096
#define NPAIR 30          /* rename scenarios, NPAIR / 6 of each kind */

static char *paths[N];
static store *st;

static ns *open_stack(void)
{
	bks_err e = {0};
	arr *a = tu_import_array(paths, N, NULL);
	ns *n = NULL;
	if (!a || store_open(a, NULL, &st, &e) != 0) {
		fprintf(stderr, "open: %s\n", bks_errmsg(&e, -1));
		return NULL;
	}
	if (ns_open(st, &n, &e) != 0) {
		fprintf(stderr, "ns_open: %s\n", bks_errmsg(&e, -1));
		return NULL;
	}
	return n;
}

static uint64_t mk(ns *n, uint64_t dir, const char *name)
{
	ns_attr a;
	return ns_mkdir(n, dir, name, 0755, 0, 0, &a) == 0 ? a.id : 0;
}

static uint64_t mkfile(ns *n, uint64_t dir, const char *name, uint64_t seed)
{
	uint8_t b[100];
	uint64_t id;
	ns_attr a;
	tu_fill(seed, 0, 0, b, sizeof(b));
	if (store_put(ns_store(n), b, sizeof(b), &id) != 0 ||
	    ns_link_new(n, dir, name, id, 0, 0644, 0, 0, 0, &a) != 0)
		return 0;
	return id;
}

static int file_ok(ns *n, uint64_t id, uint64_t seed)
{
	uint8_t want[100], got[101];
	size_t g = 0;
	tu_fill(seed, 0, 0, want, sizeof(want));
	return store_read(ns_store(n), id, 0, got, sizeof(got), &g) == 0 && g == sizeof(want) &&
	       !memcmp(want, got, sizeof(want));
}

/* The id at path (0: none), and its type. */
static uint64_t id_at(ns *n, const char *path, uint32_t *type)
{
	ns_attr a;
	if (ns_resolve(n, path, &a) != 0)
		return 0;
	if (type)
		*type = a.type;
	return a.id;
}

static int count_cb(void *ctx, const ns_dirent *d)
{
	(void)d;
	(*(int *)ctx)++;
	return 0;
}

static int entries(ns *n, const char *path)
{
	ns_attr a;
	int c = 0;
	if (ns_resolve(n, path, &a) != 0 || a.type != NS_DIR ||
	    ns_readdir(n, a.id, NULL, count_cb, &c) != 0)
		return -1;
	return c;
}

static uint64_t cached(ns *n)
{
	ns_stats s;
	ns_get_stats(n, &s);
	return s.dirs_cached;
}

/* A LIST as the daemon does it: each entry stat'ed from inside the callback (which
 * loads it, and may drop the directory being listed), then its name used. */
struct list_ctx {
	ns *n;
	int cnt, bad;
};

static int list_cb(void *ctx, const ns_dirent *d)
{
	struct list_ctx *lc = ctx;
	char want[32];
	ns_attr a;
	int r = ns_getattr(lc->n, d->id, &a);
	snprintf(want, sizeof(want), "d%05d", lc->cnt);
	if (r != 0 || a.id != d->id || a.type != NS_DIR || strcmp(d->name, want))
		lc->bad++;
	lc->cnt++;
	return 0;
}

/* Filler directories, loaded (ns_getattr) to fill the cache. */
static uint64_t fill[NFILL];
static int fill_next;

static void load_filler(ns *n)
{
	ns_attr a;
	ns_getattr(n, fill[fill_next], &a);
	fill_next = (fill_next + 1) % NFILL;
}

/* Bring the cache to: keep[] loaded, CACHE_DEFAULT directories cached, nothing else
 * loaded since the last trim (when force_trim: trim first). The next directory load
 * by the old code then trims. Returns 0 when the cache got there. */
static int prime(ns *n, const char *const *keep, int nkeep, int force_trim)
{
	int guard = 3 * NFILL;
	if (force_trim) {
		uint64_t before = cached(n);
		for (;;) {
			load_filler(n);
			uint64_t now = cached(n);
			if (now < before)
				break;
			before = now;
			if (--guard == 0)
				return -1;
		}
	}
	for (int i = 0; i < nkeep; i++)
		if (!id_at(n, keep[i], NULL))
			return -1;
	while (cached(n) < CACHE_DEFAULT) {
		load_filler(n);
		if (--guard == 0)
			return -1;
	}
	return 0;
}

/* Whole-tree walk: every directory reachable from the root exactly once. */
struct idlist {
	uint64_t *id;
	size_t n, cap;
};

static void idl_add(struct idlist *l, uint64_t id)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 64;
		if (!(l->id = realloc(l->id, l->cap * sizeof(*l->id))))
			abort();
	}
	l->id[l->n++] = id;
}

static int subdir_cb(void *ctx, const ns_dirent *d)
{
	if (d->type == NS_DIR)
		idl_add(ctx, d->id);
	return 0;
}

struct walk {
	ns *n;
	struct idlist seen;
	int dup, err;
};

static void walk_dir(struct walk *w, uint64_t id, int depth)
{
	for (size_t i = 0; i < w->seen.n; i++)
		if (w->seen.id[i] == id) {
			w->dup++;
			return;
		}
	idl_add(&w->seen, id);
	if (depth > 64) {
		w->err++;
		return;
	}
	struct idlist sub = {0};
	if (ns_readdir(w->n, id, NULL, subdir_cb, &sub) != 0)
		w->err++;
	for (size_t i = 0; i < sub.n; i++)
		walk_dir(w, sub.id[i], depth + 1);
	free(sub.id);
}

/* Per scenario i: the ids made at setup. */
struct pair {
	uint64_t p, q, m, sub, mf, file, e, full, fx;
};
static struct pair pr[NPAIR];
static uint64_t x_id, y_id, xm_id;
static uint64_t ndirs; /* directories that must be reachable, the root included */

static void pname(char *b, size_t bl, const char *side, int i, const char *rest)
{
	snprintf(b, bl, "/t/%s%02d%s%s", side, i, rest[0] ? "/" : "", rest);
}

/* What scenario i must look like once its rename ran (or was refused). */
static void check_pair(ns *n, int i, const char *stage)
{
	char a[128], b[128];
	uint32_t ty = 0;
	struct pair *p = &pr[i];
	switch (i % 6) {
	case 0: /* directory move: p/m -> q/m */
		pname(a, sizeof(a), "p", i, "m");
		pname(b, sizeof(b), "q", i, "m");
		CHECK(id_at(n, a, NULL) == 0, "%s: %s still there", stage, a);
		CHECK(id_at(n, b, &ty) == p->m && ty == NS_DIR, "%s: %s is not the moved dir", stage, b);
		pname(b, sizeof(b), "q", i, "m/f");
		CHECK(id_at(n, b, NULL) == p->mf && file_ok(n, p->mf, 1000 + (uint64_t)i),
		      "%s: %s content", stage, b);
		pname(a, sizeof(a), "p", i, "");
		CHECK(entries(n, a) == 1, "%s: %s has %d entries, want 1 (file)", stage, a,
		      entries(n, a));
		break;
	case 1: /* directory over an empty directory: p/m -> q/e */
		pname(a, sizeof(a), "p", i, "m");
		pname(b, sizeof(b), "q", i, "e");
		CHECK(id_at(n, a, NULL) == 0, "%s: %s still there", stage, a);
		CHECK(id_at(n, b, &ty) == p->m && ty == NS_DIR, "%s: %s is not the moved dir", stage, b);
		pname(b, sizeof(b), "q", i, "e/sub");
		CHECK(id_at(n, b, NULL) == p->sub, "%s: %s", stage, b);
		ns_attr at;
		CHECK(ns_getattr(n, p->e, &at) == -ENOENT, "%s: the replaced dir is deleted", stage);
		break;
	case 2: /* file move: p/file -> q/file2 */
		pname(a, sizeof(a), "p", i, "file");
		pname(b, sizeof(b), "q", i, "file2");
		CHECK(id_at(n, a, NULL) == 0, "%s: %s still there", stage, a);
		CHECK(id_at(n, b, &ty) == p->file && ty == NS_FILE && file_ok(n, p->file, 2000 + (uint64_t)i),
		      "%s: %s", stage, b);
		break;
	case 3: /* file over a file: p/file -> q/fx */
		pname(a, sizeof(a), "p", i, "file");
		pname(b, sizeof(b), "q", i, "fx");
		CHECK(id_at(n, a, NULL) == 0, "%s: %s still there", stage, a);
		CHECK(id_at(n, b, &ty) == p->file && ty == NS_FILE && file_ok(n, p->file, 2000 + (uint64_t)i),
		      "%s: %s", stage, b);
		ns_attr fa;
		CHECK(ns_getattr(n, p->fx, &fa) == -ENOENT, "%s: the replaced file is deleted", stage);
		break;
	case 4: /* refusals: nothing moved */
		pname(a, sizeof(a), "p", i, "m");
		pname(b, sizeof(b), "p", i, "file");
		CHECK(id_at(n, a, NULL) == p->m && id_at(n, b, NULL) == p->file, "%s: sources stay",
		      stage);
		pname(a, sizeof(a), "q", i, "e");
		pname(b, sizeof(b), "q", i, "full");
		CHECK(id_at(n, a, NULL) == p->e && entries(n, a) == 0, "%s: q/e stays empty", stage);
		CHECK(id_at(n, b, NULL) == p->full && entries(n, b) == 1, "%s: q/full stays", stage);
		pname(a, sizeof(a), "q", i, "fx");
		CHECK(id_at(n, a, NULL) == p->fx && file_ok(n, p->fx, 3000 + (uint64_t)i),
		      "%s: q/fx stays", stage);
		break;
	case 5: /* p/m renamed in place to p/m2; p into its own subtree refused */
		pname(a, sizeof(a), "p", i, "m");
		pname(b, sizeof(b), "p", i, "m2/sub");
		CHECK(id_at(n, a, NULL) == 0 && id_at(n, b, NULL) == p->sub, "%s: %s", stage, b);
		pname(a, sizeof(a), "p", i, "");
		CHECK(id_at(n, a, NULL) == p->p, "%s: p stays where it was", stage);
		pname(b, sizeof(b), "p", i, "m2/sub");
		CHECK(entries(n, b) == 0, "%s: nothing moved into p's own subtree", stage);
		break;
	}
}

static void check_all(ns *n, const char *stage)
{
	for (int i = 0; i < NPAIR; i++)
		check_pair(n, i, stage);
	uint32_t ty = 0;
	CHECK(id_at(n, "/x/m", NULL) == 0, "%s: /x/m moved away", stage);
	CHECK(id_at(n, "/y/m", &ty) == xm_id && ty == NS_DIR, "%s: /y/m", stage);
	CHECK(id_at(n, "/y", NULL) == y_id && id_at(n, "/x", NULL) == x_id, "%s: /x and /y", stage);
	CHECK(entries(n, "/y/m") == 0, "%s: /y not moved under /y/m", stage);
	struct walk w = {.n = n};
	walk_dir(&w, ns_root(n), 0);
	CHECK(w.dup == 0 && w.err == 0 && w.seen.n == ndirs,
	      "%s: tree walk: %zu directories reachable (want %llu), %d seen twice, %d errors",
	      stage, w.seen.n, (unsigned long long)ndirs, w.dup, w.err);
	free(w.seen.id);
}

int main(void)
{
	const char *dir = tu_tmpdir_in("nsrc", "/dev/shm");
	bks_err e = {0};
	ns *n;
	char a[128], b[128], nm[NS_NAME_MAX + 1];
	uint64_t sd, dd;

	arr *ar = tu_make_array(dir, N, DISK_MB, NULL, paths);
	REQUIRE(store_create(ar, NULL, &st, &e) == 0, "create: %s", bks_errmsg(&e, -1));
	REQUIRE(ns_format(st, 0755, &e) == 0, "format: %s", bks_errmsg(&e, -1));
	REQUIRE(ns_open(st, &n, &e) == 0, "ns_open: %s", bks_errmsg(&e, -1));
	uint64_t root = ns_root(n);

	/* Setup: fillers, scenario pairs, /x/m and /y. */
	uint64_t f = mk(n, root, "f"), t = mk(n, root, "t");
	REQUIRE(f && t, "mkdir /f /t");
	ndirs = 3;
	for (int i = 0; i < NFILL; i++) {
		snprintf(nm, sizeof(nm), "d%05d", i);
		REQUIRE((fill[i] = mk(n, f, nm)) != 0, "mkdir filler %d", i);
	}
	ndirs += NFILL;
	for (int i = 0; i < NPAIR; i++) {
		struct pair *p = &pr[i];
		snprintf(nm, sizeof(nm), "p%02d", i);
		p->p = mk(n, t, nm);
		snprintf(nm, sizeof(nm), "q%02d", i);
		p->q = mk(n, t, nm);
		REQUIRE(p->p && p->q && (p->m = mk(n, p->p, "m")) && (p->sub = mk(n, p->m, "sub")) &&
		        (p->mf = mkfile(n, p->m, "f", 1000 + (uint64_t)i)) &&
		        (p->file = mkfile(n, p->p, "file", 2000 + (uint64_t)i)) &&
		        (p->e = mk(n, p->q, "e")) && (p->full = mk(n, p->q, "full")) &&
		        mkfile(n, p->full, "x", 1) && (p->fx = mkfile(n, p->q, "fx", 3000 + (uint64_t)i)),
		        "setup pair %d", i);
		ndirs += 6 - (i % 6 == 1); /* case 1 deletes q/e */
	}
	x_id = mk(n, root, "x");
	y_id = mk(n, root, "y");
	REQUIRE(x_id && y_id && (xm_id = mk(n, x_id, "m")), "mkdir /x/m /y");
	ndirs += 3;
	REQUIRE(ns_commit(n, &e) == 0, "commit: %s", bks_errmsg(&e, -1));

	/* A LIST of everything (as a client's LIST + STAT of each entry): the cache fills
	 * and trims on its own. */
	int listed = entries(n, "/f");
	for (int i = 0; i < NFILL; i++) {
		ns_attr at;
		CHECK(ns_getattr(n, fill[i], &at) == 0 && at.type == NS_DIR, "stat filler %d", i);
	}
	CHECK(listed == NFILL, "LIST /f: %d entries", listed);
	for (int pass = 0; pass < 2; pass++) {
		struct list_ctx lc = {n, 0, 0};
		CHECK(ns_readdir(n, f, NULL, list_cb, &lc) == 0 && lc.cnt == NFILL && lc.bad == 0,
		      "LIST /f with a stat of each entry: %d entries, %d wrong", lc.cnt, lc.bad);
	}
	printf("ok - %d directories made and listed (cache %llu)\n", NFILL + NPAIR * 6 + 5,
	       (unsigned long long)cached(n));

	/* The attack: /x/m to /y/m with a full cache, then /y into /y/m. */
	const char *keep_xy[] = {"/x", "/y"};
	CHECK(prime(n, keep_xy, 2, 1) == 0, "prime");
	CHECK(ns_rename(n, x_id, "m", y_id, "m", 0) == 0, "rename /x/m /y/m");
	CHECK(id_at(n, "/x/m", NULL) == 0 && id_at(n, "/y/m", NULL) == xm_id,
	      "after the call: /x/m is at /y/m");
	const char *keep_y[] = {"/y", "/y/m"};
	CHECK(prime(n, keep_y, 2, 0) == 0, "prime");
	CHECK(ns_rename(n, root, "y", xm_id, "yy", 0) == -EINVAL, "/y into /y/m refused");
	CHECK(prime(n, keep_y, 1, 1) == 0, "prime");
	CHECK(ns_rename(n, root, "y", xm_id, "yy", 0) == -EINVAL,
	      "/y into /y/m refused (the moved dir not cached)");
	/* What a client does next: RENAME /x /x/m/xx. With the rename lost, /x/m still
	 * resolved (its parent pointer saying /y) and /x went under it, unreachable. */
	const char *keep_x[] = {"/x"};
	CHECK(prime(n, keep_x, 1, 0) == 0, "prime");
	int r = ns_resolve_parent(n, "/x/m/xx", &dd, nm);
	CHECK(r == -ENOENT || (r == 0 && ns_rename(n, root, "x", dd, nm, 0) == -EINVAL),
	      "/x into /x/m: %d", r);
	CHECK(id_at(n, "/x", NULL) == x_id, "/x still reachable");
	printf("ok - /x/m moved to /y/m under a full cache; /y into /y/m refused\n");

	/* The scenarios, each primed. */
	for (int i = 0; i < NPAIR; i++) {
		struct pair *p = &pr[i];
		char kp[64], kq[64];
		pname(kp, sizeof(kp), "p", i, "");
		pname(kq, sizeof(kq), "q", i, "");
		const char *keep[] = {"/t", kp, kq};
		int force = i == 0;
		sd = p->p;
		dd = p->q;
		switch (i % 6) {
		case 0:
			CHECK(prime(n, keep, 3, force) == 0, "prime");
			CHECK(ns_rename(n, sd, "m", dd, "m", 0) == 0, "pair %d: dir move", i);
			break;
		case 1:
			CHECK(prime(n, keep, 3, force) == 0, "prime");
			CHECK(ns_rename(n, sd, "m", dd, "e", 0) == 0, "pair %d: dir over empty dir", i);
			break;
		case 2:
			CHECK(prime(n, keep, 3, force) == 0, "prime");
			CHECK(ns_rename(n, sd, "file", dd, "file2", 0) == 0, "pair %d: file move", i);
			break;
		case 3:
			CHECK(prime(n, keep, 3, force) == 0, "prime");
			CHECK(ns_rename(n, sd, "file", dd, "fx", 0) == 0, "pair %d: file over file", i);
			break;
		case 4:
			CHECK(prime(n, keep, 3, force) == 0, "prime");
			CHECK(ns_rename(n, sd, "m", dd, "full", 0) == -ENOTEMPTY,
			      "pair %d: dir over non-empty dir", i);
			CHECK(prime(n, keep, 3, 0) == 0, "prime");
			CHECK(ns_rename(n, sd, "file", dd, "e", 0) == -EISDIR, "pair %d: file over dir", i);
			CHECK(prime(n, keep, 3, 0) == 0, "prime");
			CHECK(ns_rename(n, sd, "m", dd, "fx", 0) == -ENOTDIR, "pair %d: dir over file", i);
			CHECK(prime(n, keep, 3, 0) == 0, "prime");
			CHECK(ns_rename(n, sd, "m", dd, "e", 1) == -EEXIST, "pair %d: noreplace", i);
			break;
		case 5:
			CHECK(prime(n, keep, 2, force) == 0, "prime");
			CHECK(ns_rename(n, sd, "m", sd, "m2", 0) == 0, "pair %d: rename in place", i);
			pname(a, sizeof(a), "p", i, "m2/sub");
			const char *keep5[] = {"/t", a};
			CHECK(prime(n, keep5, 2, 0) == 0, "prime");
			CHECK(ns_rename(n, t, kp + 3, p->sub, "pp", 0) == -EINVAL,
			      "pair %d: p into p/m2/sub refused", i);
			break;
		}
		check_pair(n, i, "after the call");
	}
	printf("ok - %d renames under a full cache, checked after each call\n", NPAIR);

	check_all(n, "before the commit");
	REQUIRE(ns_commit(n, &e) == 0, "commit: %s", bks_errmsg(&e, -1));
	check_all(n, "after a commit");
	printf("ok - after a commit\n");

	/* The loop check when nothing is cached: a fresh open. */
	ns_close(n);
	store_close(st);
	REQUIRE((n = open_stack()) != NULL, "reopen");
	check_all(n, "after a reopen");
	ns_close(n);
	store_close(st);
	REQUIRE((n = open_stack()) != NULL, "reopen");
	CHECK(ns_rename(n, ns_root(n), "y", xm_id, "yy", 0) == -EINVAL,
	      "after a reopen: /y into /y/m refused");
	snprintf(b, sizeof(b), "/t/p%02d", 5);
	REQUIRE(ns_resolve_parent(n, "/t/p05/m2/sub/x", &dd, nm) == 0, "p05/m2/sub");
	CHECK(ns_rename(n, t, b + 3, dd, "pp", 0) == -EINVAL,
	      "after a reopen: p05 into p05/m2/sub refused");
	check_all(n, "after the refused renames");
	ns_close(n);
	store_close(st);
	printf("ok - after close and reopen of the stack\n");
	return tu_finish();
}
