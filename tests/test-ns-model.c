/* test-ns-model: random mkdir / create (ns_link_new and ns_create) / symlink / link /
 * readlink / unlink / rmdir / rename / setattr against an in-memory model of the tree, with a directory cache of one (ns_params.cache_dirs =
 * 1: every verb starts by dropping every clean directory, so every verb reloads what
 * it touches), periodic commits, syncs, and reopens of the whole stack (after a commit,
 * or after only a sync: a crash the intent log must undo nothing of).
 *
 * Every call's result is compared with what rename(2), mkdir(2), unlink(2), rmdir(2),
 * link(2), symlink(2), readlink(2) say (the model's precedence when several errors
 * apply: ENOENT, the same name, a directory into its own subtree EINVAL, then the
 * target: EEXIST with noreplace, another name of the same object (nothing done),
 * ENOTDIR, EISDIR, ENOTEMPTY; for link EEXIST before EPERM). The model is one node per
 * name: a file or symlink with several names is several nodes with one id, whose
 * object is gone when the last of them goes. Every few operations, and after each
 * reopen, the whole tree is compared with the model: names, entry types, ids, modes,
 * sizes, nlink (names of a file or symlink; 2 + subdirectories of a directory), file
 * content, symlink targets; every directory reachable from the root exactly once;
 * replaced and removed objects (their last name) gone from the store.
 *
 *   test-ns-model [--seed N] [--ops N] [--cache N]
 * The seed is printed at the start and on failure; the same seed replays the run. */
#include <config.h>

#include "tests/testutil.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fs/ns.h"

#define N 6
#define DISK_MB 48
#define MAXFILE 700

static char *paths[N];
static store *st;
static uint64_t seed, rng;
static long op_no;
static uint32_t cache_dirs = 1;
static int paged; /* seed & 1: directories written as version 2 (pages) */

static uint64_t rnd(void)
{
	/* splitmix64 */
	uint64_t z = (rng += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint32_t below(uint32_t k)
{
	return (uint32_t)(rnd() % k);
}

/* --- the model --- */

struct mnode {
	int used, type, parent; /* parent: index, -1 for the root */
	char name[24];
	uint64_t id;
	uint32_t mode;
	uint64_t fseed; /* files: content is tu_fill(fseed, 0, 0, ., size); symlinks: the
	                 * target is make_target(fseed, size) */
	size_t size;
};
static struct mnode *M;
static int nm, capm;
static uint64_t *gone; /* ids of objects that must no longer exist */
static size_t ngone, capgone;

static int m_new(void)
{
	for (int i = 0; i < nm; i++)
		if (!M[i].used)
			return i;
	if (nm == capm) {
		capm = capm ? 2 * capm : 256;
		if (!(M = realloc(M, (size_t)capm * sizeof(*M))))
			abort();
	}
	return nm++;
}

static void note_gone(uint64_t id)
{
	if (ngone == capgone) {
		capgone = capgone ? 2 * capgone : 256;
		if (!(gone = realloc(gone, capgone * sizeof(*gone))))
			abort();
	}
	gone[ngone++] = id;
}

/* Names of object id (a file's or a symlink's nlink). */
static int m_nlinks(uint64_t id)
{
	int c = 0;
	for (int i = 0; i < nm; i++)
		c += M[i].used && M[i].id == id;
	return c;
}

/* Name i goes; its object with its last name. */
static void m_drop(int i)
{
	M[i].used = 0;
	if (!m_nlinks(M[i].id))
		note_gone(M[i].id);
}

/* Subdirectories of p (its nlink is 2 + this). */
static int m_nsubdirs(int p)
{
	int c = 0;
	for (int i = 0; i < nm; i++)
		c += M[i].used && M[i].parent == p && M[i].type == NS_DIR;
	return c;
}

/* A symlink target of len bytes (no NUL) into buf (len + 1 bytes). */
static void make_target(uint64_t fseed, size_t len, char *buf)
{
	tu_fill(fseed, 0, 0, (uint8_t *)buf, len);
	for (size_t i = 0; i < len; i++)
		if (!buf[i])
			buf[i] = '/';
	buf[len] = 0;
}

static int m_child(int p, const char *name)
{
	for (int i = 0; i < nm; i++)
		if (M[i].used && M[i].parent == p && !strcmp(M[i].name, name))
			return i;
	return -1;
}

static int m_nchildren(int p)
{
	int c = 0;
	for (int i = 0; i < nm; i++)
		c += M[i].used && M[i].parent == p;
	return c;
}

/* A random node of the given type (0: any), or -1. */
static int m_pick(int type)
{
	int cnt = 0;
	for (int i = 0; i < nm; i++)
		cnt += M[i].used && (!type || M[i].type == type);
	if (!cnt)
		return -1;
	int k = (int)below((uint32_t)cnt);
	for (int i = 0; i < nm; i++)
		if (M[i].used && (!type || M[i].type == type) && k-- == 0)
			return i;
	return -1;
}

/* A name for a new entry in dir p: mostly from a small set, so names collide. */
static void pick_name(int p, char *name, size_t len)
{
	static const char *const common[] = {"a", "b", "c", "d", "e", "f"};
	if (below(4) == 0) {
		/* an existing entry of p when there is one */
		int cnt = m_nchildren(p);
		if (cnt) {
			int k = (int)below((uint32_t)cnt);
			for (int i = 0; i < nm; i++)
				if (M[i].used && M[i].parent == p && k-- == 0) {
					snprintf(name, len, "%s", M[i].name);
					return;
				}
		}
	}
	if (below(8) == 0)
		snprintf(name, len, "long-name-%u", below(100));
	else
		snprintf(name, len, "%s", common[below(6)]);
}

static int m_within(int inner, int outer)
{
	for (; inner >= 0; inner = M[inner].parent)
		if (inner == outer)
			return 1;
	return 0;
}

static void m_path(int i, char *out, size_t len)
{
	static int chain[4096];
	int nc = 0;
	for (; M[i].parent >= 0 && nc < 4096; i = M[i].parent)
		chain[nc++] = i;
	size_t o = 0;
	out[0] = 0;
	if (!nc)
		snprintf(out, len, "/");
	while (nc-- > 0 && o < len) {
		int w = snprintf(out + o, len - o, "/%s", M[chain[nc]].name);
		o += w > 0 ? (size_t)w : 0;
	}
}

/* --- the stack --- */

static ns *open_stack(void)
{
	bks_err e = {0};
	arr *a = tu_import_array(paths, N, NULL);
	ns *n = NULL;
	ns_params p;
	ns_params_default(&p);
	p.cache_dirs = cache_dirs;
	p.dir_v1_max = paged ? 0 : p.dir_v1_max; /* odd seeds: every directory paged */
	if (!a || store_open(a, NULL, &st, &e) != 0) {
		fprintf(stderr, "open: %s\n", bks_errmsg(&e, -1));
		return NULL;
	}
	if (ns_open_params(st, &p, &n, &e) != 0) {
		fprintf(stderr, "ns_open: %s\n", bks_errmsg(&e, -1));
		return NULL;
	}
	return n;
}

static int failed;

#define EXPECT(cond, ...)                                                            \
	do {                                                                             \
		tu_checks++;                                                                 \
		if (!(cond)) {                                                               \
			tu_failures++;                                                           \
			failed = 1;                                                              \
			fprintf(stderr, "FAIL seed %llu op %ld: %s: ", (unsigned long long)seed,   \
			        op_no, #cond);                                                   \
			fprintf(stderr, __VA_ARGS__);                                            \
			fputc('\n', stderr);                                                     \
		}                                                                            \
	} while (0)

/* --- whole-tree comparison --- */

struct ents {
	ns *n;
	int cnt, bad;
	struct {
		char name[NS_NAME_MAX + 1];
		uint64_t id;
		uint32_t type;
		ns_attr a;
	} e[128];
	int kids[128];
	char path[4096];
};

/* Also stats each entry from inside the callback: with a cache of one, that drops
 * the directory being listed, which ns_readdir must survive. */
static int ents_cb(void *ctx, const ns_dirent *d)
{
	struct ents *es = ctx;
	if (es->cnt == 128) {
		es->bad++;
		return 1;
	}
	if (ns_getattr(es->n, d->id, &es->e[es->cnt].a) != 0)
		es->bad++;
	snprintf(es->e[es->cnt].name, sizeof(es->e[0].name), "%s", d->name);
	es->e[es->cnt].id = d->id;
	es->e[es->cnt].type = d->type;
	es->cnt++;
	return 0;
}

static int cmp_idx(const void *a, const void *b)
{
	return strcmp(M[*(const int *)a].name, M[*(const int *)b].name);
}

static int file_ok(ns *n, const struct mnode *f)
{
	static uint8_t want[MAXFILE + 1], got[MAXFILE + 1];
	size_t g = 0;
	tu_fill(f->fseed, 0, 0, want, f->size);
	return store_read(ns_store(n), f->id, 0, got, sizeof(got), &g) == 0 && g == f->size &&
	       !memcmp(want, got, f->size);
}

static int link_ok(ns *n, const struct mnode *f)
{
	static char want[NS_SYMLINK_MAX + 1], got[NS_SYMLINK_MAX + 1];
	size_t g = 0;
	make_target(f->fseed, f->size, want);
	return ns_readlink(n, f->id, got, sizeof(got), &g) == 0 && g == f->size &&
	       !strcmp(want, got);
}

static int compare_dir(ns *n, int p, int depth, int *ndirs)
{
	struct ents *es = calloc(1, sizeof(*es)); /* off the stack: the tree can be deep */
	char *path = es->path;
	int *kids = es->kids, nk = 0, ok = 1;
	es->n = n;
	(*ndirs)++;
	m_path(p, path, sizeof(es->path));
	int r = ns_readdir(n, M[p].id, NULL, ents_cb, es);
	EXPECT(r == 0 && es->bad == 0, "readdir %s: %d, %d bad", path, r, es->bad);
	for (int i = 0; i < nm && nk < 128; i++)
		if (M[i].used && M[i].parent == p)
			kids[nk++] = i;
	qsort(kids, (size_t)nk, sizeof(kids[0]), cmp_idx);
	EXPECT(es->cnt == nk, "%s: %d entries, the model has %d", path, es->cnt, nk);
	for (int i = 0; i < nk && i < es->cnt && ok; i++) {
		struct mnode *k = &M[kids[i]];
		ns_attr *a = &es->e[i].a;
		uint32_t nlink = k->type == NS_DIR ? 2 + (uint32_t)m_nsubdirs(kids[i])
		                                   : (uint32_t)m_nlinks(k->id);
		ok = !strcmp(es->e[i].name, k->name) && es->e[i].id == k->id &&
		     (int)es->e[i].type == k->type && a->type == (uint32_t)k->type &&
		     a->mode == k->mode && a->nlink == nlink;
		EXPECT(ok, "%s: entry %d is %s id %llu type %u mode %o nlink %u, the model has %s "
		       "id %llu type %d mode %o nlink %u", path, i, es->e[i].name,
		       (unsigned long long)es->e[i].id, es->e[i].type, a->mode, a->nlink, k->name,
		       (unsigned long long)k->id, k->type, k->mode, nlink);
		if (!ok)
			break;
		if (k->type == NS_FILE) {
			EXPECT(a->size == k->size && file_ok(n, k), "%s/%s: size %llu (model %zu) or "
			       "content differs", path, k->name, (unsigned long long)a->size, k->size);
		} else if (k->type == NS_SYMLINK) {
			EXPECT(a->size == k->size && link_ok(n, k), "%s/%s: symlink size %llu (model "
			       "%zu) or target differs", path, k->name, (unsigned long long)a->size,
			       k->size);
		} else {
			EXPECT(a->size == (uint64_t)m_nchildren(kids[i]), "%s/%s: dir size %llu",
			       path, k->name, (unsigned long long)a->size);
			EXPECT(depth < 4096, "%s: deeper than 4096", path);
			if (depth < 4096)
				ok = compare_dir(n, kids[i], depth + 1, ndirs);
		}
	}
	free(es);
	return ok && !failed;
}

static void compare_all(ns *n, const char *stage)
{
	int ndirs = 0, want = 0;
	for (int i = 0; i < nm; i++)
		want += M[i].used && M[i].type == NS_DIR;
	compare_dir(n, 0, 0, &ndirs);
	EXPECT(ndirs == want, "%s: %d directories reachable, the model has %d", stage, ndirs, want);
	for (size_t i = 0; i < ngone; i++) {
		store_obj_info in;
		EXPECT(store_stat(ns_store(n), gone[i], &in) == -ENOENT,
		       "%s: object %llu was removed but is still there", stage,
		       (unsigned long long)gone[i]);
	}
	/* A few lookups by path (walk). */
	for (int k = 0; k < 5; k++) {
		int i = m_pick(0);
		char path[NS_PATH_MAX + 2];
		ns_attr a;
		m_path(i, path, sizeof(path));
		if (strlen(path) > NS_PATH_MAX)
			continue; /* deeper than a path can say */
		EXPECT(ns_resolve(n, path, &a) == 0 && a.id == M[i].id, "%s: resolve %s", stage, path);
	}
}

/* --- operations --- */

static const char *ename(int r)
{
	static char b[32];
	switch (-r) {
	case 0: return "0";
	case ENOENT: return "ENOENT";
	case EEXIST: return "EEXIST";
	case EISDIR: return "EISDIR";
	case ENOTDIR: return "ENOTDIR";
	case ENOTEMPTY: return "ENOTEMPTY";
	case EINVAL: return "EINVAL";
	case EPERM: return "EPERM";
	case ENAMETOOLONG: return "ENAMETOOLONG";
	case EMLINK: return "EMLINK";
	}
	snprintf(b, sizeof(b), "%d", r);
	return b;
}

static void do_mkdir(ns *n)
{
	int p = m_pick(NS_DIR), c;
	char name[24], path[4096];
	ns_attr a;
	pick_name(p, name, sizeof(name));
	c = m_child(p, name);
	uint32_t mode = 0700 | below(0100);
	int r = ns_mkdir(n, M[p].id, name, mode, 0, 0, &a), want = c >= 0 ? -EEXIST : 0;
	m_path(p, path, sizeof(path));
	EXPECT(r == want, "mkdir %s/%s: %s, want %s", path, name, ename(r), ename(want));
	if (r == 0 && want == 0) {
		int i = m_new();
		M[i] = (struct mnode){.used = 1, .type = NS_DIR, .parent = p, .id = a.id,
		                      .mode = mode};
		snprintf(M[i].name, sizeof(M[i].name), "%s", name);
	}
}

static void do_create(ns *n)
{
	int p = m_pick(NS_DIR), c;
	char name[24], path[4096];
	static uint8_t buf[MAXFILE];
	pick_name(p, name, sizeof(name));
	c = m_child(p, name);
	int replace = (int)below(2);
	size_t size = below(8) == 0 ? 0 : below(MAXFILE);
	uint64_t fs = rnd(), id;
	tu_fill(fs, 0, 0, buf, size);
	if (store_put(ns_store(n), buf, size, &id) != 0) {
		EXPECT(0, "store_put of %zu bytes", size);
		return;
	}
	int want = c < 0 ? 0 : M[c].type == NS_DIR ? -EISDIR : !replace ? -EEXIST : 0;
	int r = ns_link_new(n, M[p].id, name, id, replace, 0644, 0, 0, 0, NULL);
	m_path(p, path, sizeof(path));
	EXPECT(r == want, "create %s/%s (replace %d): %s, want %s", path, name, replace,
	       ename(r), ename(want));
	if (r != 0) {
		store_delete(ns_store(n), id); /* still a plain object */
		return;
	}
	if (c >= 0)
		m_drop(c); /* a file or a symlink, perhaps with other names */
	int i = m_new();
	M[i] = (struct mnode){.used = 1, .type = NS_FILE, .parent = p, .id = id, .mode = 0644,
	                      .fseed = fs, .size = size};
	snprintf(M[i].name, sizeof(M[i].name), "%s", name);
}

static void do_remove(ns *n, int want_dir)
{
	int p = m_pick(NS_DIR), c;
	char name[24], path[4096];
	pick_name(p, name, sizeof(name));
	c = m_child(p, name);
	int want = c < 0 ? -ENOENT : 0;
	if (c >= 0 && want_dir)
		want = M[c].type != NS_DIR ? -ENOTDIR : m_nchildren(c) ? -ENOTEMPTY : 0;
	else if (c >= 0)
		want = M[c].type == NS_DIR ? -EISDIR : 0;
	int r = want_dir ? ns_rmdir(n, M[p].id, name) : ns_unlink(n, M[p].id, name);
	m_path(p, path, sizeof(path));
	EXPECT(r == want, "%s %s/%s: %s, want %s", want_dir ? "rmdir" : "unlink", path, name,
	       ename(r), ename(want));
	if (r == 0 && want == 0)
		m_drop(c);
}

static long rename_res[64]; /* renames by result (-errno) */

static void do_rename(ns *n)
{
	int sp = m_pick(NS_DIR), dp = below(3) ? m_pick(NS_DIR) : sp;
	char sn[24], dn[24], a[4096], b[4096];
	pick_name(sp, sn, sizeof(sn));
	if (below(2) == 0) { /* mostly an existing source */
		int s = m_pick(0);
		if (s > 0) {
			sp = M[s].parent;
			snprintf(sn, sizeof(sn), "%s", M[s].name);
		}
	}
	int s0 = m_child(sp, sn);
	if (s0 >= 0 && M[s0].type == NS_DIR && below(6) == 0) {
		/* into the source itself or below it: must be refused */
		int cnt = 0;
		for (int i = 0; i < nm; i++)
			cnt += M[i].used && M[i].type == NS_DIR && m_within(i, s0);
		int k = (int)below((uint32_t)cnt);
		for (int i = 0; i < nm; i++)
			if (M[i].used && M[i].type == NS_DIR && m_within(i, s0) && k-- == 0)
				dp = i;
	}
	pick_name(dp, dn, sizeof(dn));
	int noreplace = below(5) == 0;
	int s = m_child(sp, sn), t = m_child(dp, dn), want;
	if (s < 0)
		want = -ENOENT;
	else if (sp == dp && !strcmp(sn, dn))
		want = 0;
	else if (M[s].type == NS_DIR && m_within(dp, s))
		want = -EINVAL;
	else if (t >= 0 && noreplace)
		want = -EEXIST;
	else if (t >= 0 && M[t].id == M[s].id)
		want = 0; /* two names of one file: nothing done */
	else if (t >= 0 && M[s].type == NS_DIR && M[t].type != NS_DIR)
		want = -ENOTDIR;
	else if (t >= 0 && M[s].type != NS_DIR && M[t].type == NS_DIR)
		want = -EISDIR;
	else if (t >= 0 && M[t].type == NS_DIR && m_nchildren(t))
		want = -ENOTEMPTY;
	else
		want = 0;
	int r = ns_rename(n, M[sp].id, sn, M[dp].id, dn, noreplace);
	if (-r >= 0 && -r < 64)
		rename_res[-r]++;
	m_path(sp, a, sizeof(a));
	m_path(dp, b, sizeof(b));
	EXPECT(r == want, "rename %s/%s %s/%s (noreplace %d): %s, want %s", a, sn, b, dn,
	       noreplace, ename(r), ename(want));
	if (r != 0 || want != 0 || (sp == dp && !strcmp(sn, dn)) ||
	    (t >= 0 && M[t].id == M[s].id))
		return;
	if (t >= 0)
		m_drop(t); /* a directory, or a file or symlink losing one name */
	M[s].parent = dp;
	snprintf(M[s].name, sizeof(M[s].name), "%s", dn);
}

static void do_setattr(ns *n)
{
	int i = m_pick(0);
	ns_attr a = {.mode = below(010000)};
	int r = ns_setattr(n, M[i].id, &a, NS_SET_MODE);
	EXPECT(r == 0, "setattr %llu: %d", (unsigned long long)M[i].id, r);
	for (int j = 0; r == 0 && j < nm; j++)
		if (M[j].used && M[j].id == M[i].id)
			M[j].mode = a.mode; /* every name of the object */
}

static long new_res[3][64]; /* ns_create, ns_symlink, ns_link by result (-errno) */

static void count_res(int verb, int r)
{
	if (r <= 0 && -r < 64)
		new_res[verb][-r]++;
}

static void do_ns_create(ns *n)
{
	int p = m_pick(NS_DIR), c;
	char name[24], path[4096];
	ns_attr a;
	pick_name(p, name, sizeof(name));
	c = m_child(p, name);
	int excl = (int)below(2);
	uint32_t mode = 0600 | below(0100);
	int want = c < 0 ? 0 : excl ? -EEXIST : M[c].type == NS_DIR ? -EISDIR
	         : M[c].type == NS_SYMLINK ? -EEXIST : 1;
	int r = ns_create(n, M[p].id, name, mode, 0, 0, excl, &a);
	count_res(0, r > 0 ? 0 : r);
	m_path(p, path, sizeof(path));
	EXPECT(r == want, "ns_create %s/%s (exclusive %d): %s, want %s", path, name, excl,
	       r == 1 ? "1" : ename(r), want == 1 ? "1" : ename(want));
	if (r == 1 && want == 1)
		EXPECT(a.id == M[c].id && a.type == NS_FILE && a.size == M[c].size &&
		       a.mode == M[c].mode && a.nlink == (uint32_t)m_nlinks(M[c].id),
		       "ns_create %s/%s: returned %llu size %llu, not the file as it is", path, name,
		       (unsigned long long)a.id, (unsigned long long)a.size);
	if (r != 0 || want != 0)
		return;
	EXPECT(a.type == NS_FILE && a.size == 0 && a.nlink == 1 && a.mode == mode,
	       "ns_create %s/%s: attributes", path, name);
	int i = m_new();
	M[i] = (struct mnode){.used = 1, .type = NS_FILE, .parent = p, .id = a.id, .mode = mode,
	                      .fseed = 0, .size = 0};
	snprintf(M[i].name, sizeof(M[i].name), "%s", name);
}

static void do_symlink(ns *n)
{
	static char target[NS_SYMLINK_MAX + 2];
	int p = m_pick(NS_DIR), c;
	char name[24], path[4096];
	ns_attr a;
	pick_name(p, name, sizeof(name));
	c = m_child(p, name);
	uint32_t k = below(40);
	size_t tl = k == 0 ? 0 : k == 1 ? NS_SYMLINK_MAX + 1 : k == 2 ? NS_SYMLINK_MAX
	          : 1 + below(k < 6 ? 600 : 40);
	uint64_t fs = rnd();
	uint32_t mode = below(2) ? 0 : 0700 | below(0100);
	make_target(fs, tl, target);
	int want = tl == 0 ? -EINVAL : tl > NS_SYMLINK_MAX ? -ENAMETOOLONG : c >= 0 ? -EEXIST : 0;
	int r = ns_symlink(n, M[p].id, name, target, mode, 0, 0, &a);
	count_res(1, r);
	m_path(p, path, sizeof(path));
	EXPECT(r == want, "symlink %s/%s (%zu bytes): %s, want %s", path, name, tl, ename(r),
	       ename(want));
	if (r != 0 || want != 0)
		return;
	EXPECT(a.type == NS_SYMLINK && a.size == tl && a.nlink == 1 &&
	       a.mode == (mode ? mode : 0777), "symlink %s/%s: attributes", path, name);
	int i = m_new();
	M[i] = (struct mnode){.used = 1, .type = NS_SYMLINK, .parent = p, .id = a.id,
	                      .mode = mode ? mode : 0777, .fseed = fs, .size = tl};
	snprintf(M[i].name, sizeof(M[i].name), "%s", name);
}

static void do_link(ns *n)
{
	/* Mostly a file or a symlink; directories too (EPERM). */
	int src = -1;
	for (int tries = 0; tries < 4 && (src < 0 || (M[src].type == NS_DIR && tries < 3));
	     tries++)
		src = m_pick(0);
	int p = m_pick(NS_DIR), c;
	char name[24], path[4096];
	ns_attr a;
	pick_name(p, name, sizeof(name));
	c = m_child(p, name);
	int want = c >= 0 ? -EEXIST : M[src].type == NS_DIR ? -EPERM : 0;
	int r = ns_link(n, M[src].id, M[p].id, name, &a);
	count_res(2, r);
	m_path(p, path, sizeof(path));
	EXPECT(r == want, "link %llu as %s/%s: %s, want %s", (unsigned long long)M[src].id, path,
	       name, ename(r), ename(want));
	if (r != 0 || want != 0)
		return;
	int i = m_new();
	M[i] = M[src]; /* the same object: id, type, mode, content */
	M[i].parent = p;
	snprintf(M[i].name, sizeof(M[i].name), "%s", name);
	EXPECT(a.id == M[i].id && a.nlink == (uint32_t)m_nlinks(M[i].id),
	       "link %s/%s: nlink %u, the model has %d", path, name, a.nlink, m_nlinks(M[i].id));
}

static void do_readlink(ns *n)
{
	static char buf[NS_SYMLINK_MAX + 1], tgt[NS_SYMLINK_MAX + 1];
	int i = m_pick(0);
	size_t cap = sizeof(buf), len = 0;
	if (M[i].type == NS_SYMLINK && below(4) == 0)
		cap = below((uint32_t)M[i].size + 2); /* sometimes too small by one or more */
	int want = M[i].type != NS_SYMLINK ? -EINVAL : cap < M[i].size + 1 ? -ENAMETOOLONG : 0;
	int r = ns_readlink(n, M[i].id, buf, cap, &len);
	EXPECT(r == want, "readlink %llu (type %d, cap %zu): %s, want %s",
	       (unsigned long long)M[i].id, M[i].type, cap, ename(r), ename(want));
	if (r != 0 || want != 0)
		return;
	make_target(M[i].fseed, M[i].size, tgt);
	EXPECT(len == M[i].size && !strcmp(buf, tgt), "readlink %llu: %zu bytes, target differs",
	       (unsigned long long)M[i].id, len);
}

int main(int argc, char **argv)
{
	long ops = 3000;
	seed = (uint64_t)time(NULL) ^ ((uint64_t)clock() << 32);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--seed") && i + 1 < argc)
			seed = strtoull(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--ops") && i + 1 < argc)
			ops = strtol(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--cache") && i + 1 < argc)
			cache_dirs = (uint32_t)strtoul(argv[++i], NULL, 0);
		else {
			fprintf(stderr, "usage: %s [--seed N] [--ops N] [--cache N]\n", argv[0]);
			return 2;
		}
	}
	rng = seed;
	paged = (int)(seed & 1);
	printf("seed %llu, %ld operations, cache of %u directories, %s directories\n",
	       (unsigned long long)seed, ops, cache_dirs, paged ? "paged" : "small");

	const char *dir = tu_tmpdir_in("nsmodel", "/dev/shm");
	bks_err e = {0};
	arr *ar = tu_make_array(dir, N, DISK_MB, NULL, paths);
	REQUIRE(store_create(ar, NULL, &st, &e) == 0, "create: %s", bks_errmsg(&e, -1));
	REQUIRE(ns_format(st, 0755, &e) == 0, "format: %s", bks_errmsg(&e, -1));
	REQUIRE(store_commit(st, &e) == 0, "commit: %s", bks_errmsg(&e, -1));
	store_close(st);
	ns *n = open_stack();
	REQUIRE(n, "open");
	M = NULL;
	int root = m_new();
	M[root] = (struct mnode){.used = 1, .type = NS_DIR, .parent = -1, .id = ns_root(n),
	                         .mode = 0755};
	long commits = 0, syncs = 0, reopens = 0, compares = 0;
	uint64_t trims = 0;
	for (op_no = 1; op_no <= ops && !failed; op_no++) {
		uint32_t k = below(100);
		if (k < 16)
			do_mkdir(n);
		else if (k < 30)
			do_create(n);
		else if (k < 36)
			do_ns_create(n);
		else if (k < 44)
			do_symlink(n);
		else if (k < 54)
			do_link(n);
		else if (k < 64)
			do_remove(n, 0);
		else if (k < 71)
			do_remove(n, 1);
		else if (k < 95)
			do_rename(n);
		else if (k < 98)
			do_setattr(n);
		else
			do_readlink(n);
		if (op_no % 50 == 0) {
			compare_all(n, "after 50 operations");
			compares++;
		}
		if (op_no % 150 == 0) {
			EXPECT(ns_commit(n, &e) == 0, "commit: %s", bks_errmsg(&e, -1));
			commits++;
		}
		if (op_no % 500 == 0 || op_no % 500 == 250) {
			/* Reopen: after a commit, or after only a sync (a crash: the log). */
			int crash = op_no % 500 == 250;
			if (crash) {
				EXPECT(ns_sync(n, ns_root(n), &e) == 0, "sync: %s", bks_errmsg(&e, -1));
				syncs++;
			} else {
				EXPECT(ns_commit(n, &e) == 0, "commit: %s", bks_errmsg(&e, -1));
				commits++;
			}
			ns_stats nst;
			ns_get_stats(n, &nst);
			trims += nst.cache_trims;
			ns_close(n);
			store_close(st);
			n = open_stack();
			REQUIRE(n, "reopen (seed %llu)", (unsigned long long)seed);
			reopens++;
			compare_all(n, crash ? "after a sync and a crash" : "after a commit and a reopen");
			compares++;
		}
	}
	if (!failed) {
		compare_all(n, "at the end");
		EXPECT(ns_commit(n, &e) == 0, "commit: %s", bks_errmsg(&e, -1));
		ns_close(n);
		store_close(st);
		n = open_stack();
		REQUIRE(n, "reopen (seed %llu)", (unsigned long long)seed);
		compare_all(n, "at the end, reopened");
	}
	ns_stats nst;
	ns_get_stats(n, &nst);
	trims += nst.cache_trims;
	int nfiles = 0, ndirs = 0, nlinks = 0, multi = 0;
	for (int i = 0; i < nm; i++) {
		nfiles += M[i].used && M[i].type == NS_FILE;
		ndirs += M[i].used && M[i].type == NS_DIR;
		nlinks += M[i].used && M[i].type == NS_SYMLINK;
		multi += M[i].used && M[i].type != NS_DIR && m_nlinks(M[i].id) > 1;
	}
	/* The point of the small cache: directories were dropped all the time. */
	EXPECT(failed || cache_dirs > 1 || trims >= (uint64_t)ops, "only %llu cache trims",
	       (unsigned long long)trims);
	printf("%s - %ld operations, %ld commits, %ld syncs, %ld reopens, %ld tree compares, "
	       "%llu cache trims; %d directories, %d file names, %d symlink names at the end "
	       "(%d names of multi-linked objects)\n",
	       failed ? "FAIL" : "ok", op_no - 1, commits, syncs, reopens, compares,
	       (unsigned long long)trims, ndirs, nfiles, nlinks, multi);
	printf("renames: %ld done, %ld ENOENT, %ld EINVAL (into its own subtree), %ld EEXIST, "
	       "%ld ENOTDIR, %ld EISDIR, %ld ENOTEMPTY\n", rename_res[0], rename_res[ENOENT],
	       rename_res[EINVAL], rename_res[EEXIST], rename_res[ENOTDIR], rename_res[EISDIR],
	       rename_res[ENOTEMPTY]);
	printf("ns_create: %ld done or reused, %ld EEXIST, %ld EISDIR; symlink: %ld done, "
	       "%ld EEXIST, %ld EINVAL, %ld ENAMETOOLONG; link: %ld done, %ld EEXIST, %ld EPERM\n",
	       new_res[0][0], new_res[0][EEXIST], new_res[0][EISDIR], new_res[1][0],
	       new_res[1][EEXIST], new_res[1][EINVAL], new_res[1][ENAMETOOLONG], new_res[2][0],
	       new_res[2][EEXIST], new_res[2][EPERM]);
	ns_close(n);
	store_close(st);
	if (failed)
		fprintf(stderr, "replay: %s --seed %llu --ops %ld --cache %u\n", argv[0],
		        (unsigned long long)seed, ops, cache_dirs);
	free(M);
	free(gone);
	return tu_finish();
}
