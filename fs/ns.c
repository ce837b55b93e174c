/* fs/ns.c: see ns.h. */
#include <config.h>

#include "fs/ns.h"
#include "fs/ns_dir.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "common/endian.h"

#define CACHE_DEFAULT 4096   /* directories kept decoded before clean ones are dropped */

struct ns {
	store *s;
	uint64_t root;
	struct ndir **ht;
	size_t nbuckets, ncached;
	size_t cache_max;        /* ns_params.cache_dirs */
	size_t v1_max;           /* ns_params.dir_v1_max */
	uint8_t *iobuf;          /* reads of directory objects */
	size_t iocap;
	int flushing;            /* flush_dirs is running (the store's precommit waits) */
	int sys_ok;              /* ns_system_dir is at work: its name may be used */
	/* Names removed from files and symlinks that keep others, whose nlink the object
	 * record still counts until the next flush (see drop_file): open addressing on
	 * the id (0: a free slot), cap a power of two or 0. */
	struct pend { uint64_t id; uint32_t cnt; } *pend;
	size_t pend_cap, npend;
	ns_stats st;
};

static int64_t now_ns(void) { return (int64_t)bks_wall_ns(); }

uint64_t ns_root(const ns *n) { return n->root; }
store *ns_store(ns *n) { return n->s; }

int ns_name_ok(const char *name)
{
	size_t l = strlen(name);
	if (l == 0 || strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, ".."))
		return -EINVAL;
	return l > NS_NAME_MAX ? -ENAMETOOLONG : 0;
}

/* A name in dir, for verb `miss` (-ENOENT for those that look an entry up, -EACCES
 * for those that make one): the system directory's name in the root is reserved
 * (ns.h "System directory"), so NFS and the native protocol neither reach nor
 * create it; only ns_system_dir passes (n->sys_ok). */
static int name_in(const ns *n, uint64_t dir, const char *name, int miss)
{
	int r = ns_name_ok(name);
	if (r == 0 && dir == n->root && !n->sys_ok && !strcmp(name, NS_SYSTEM_NAME))
		return miss;
	return r;
}

/* --- names removed but still counted by their object's record --- */

static struct pend *pend_slot(struct pend *t, size_t cap, uint64_t id)
{
	size_t m = cap - 1;
	for (size_t i = (id * 0x9e3779b97f4a7c15ull >> 17) & m;; i = (i + 1) & m)
		if (t[i].id == id || t[i].id == 0)
			return &t[i];
}

/* How many names of id the record still counts but the directories no longer have. */
static uint32_t pend_get(const ns *n, uint64_t id)
{
	if (!n->pend_cap)
		return 0;
	struct pend *p = pend_slot(n->pend, n->pend_cap, id);
	return p->id ? p->cnt : 0;
}

/* The slot of id, made when missing (its cnt then 0); NULL when out of memory. */
static struct pend *pend_get_slot(ns *n, uint64_t id)
{
	if ((n->npend + 1) * 2 > n->pend_cap) {
		size_t nc = n->pend_cap ? n->pend_cap * 2 : 64;
		struct pend *t = calloc(nc, sizeof(*t));
		if (!t)
			return NULL;
		for (size_t i = 0; i < n->pend_cap; i++)
			if (n->pend[i].id)
				*pend_slot(t, nc, n->pend[i].id) = n->pend[i];
		free(n->pend);
		n->pend = t;
		n->pend_cap = nc;
	}
	struct pend *p = pend_slot(n->pend, n->pend_cap, id);
	if (!p->id) {
		*p = (struct pend){.id = id};
		n->npend++;
	}
	return p;
}

/* --- the cache --- */

static struct ndir **bucket(ns *n, uint64_t id)
{
	return &n->ht[(id * 0x9e3779b97f4a7c15ull >> 20) & (n->nbuckets - 1)];
}

static struct ndir *cache_find(ns *n, uint64_t id)
{
	for (struct ndir *d = *bucket(n, id); d; d = d->hnext)
		if (d->id == id)
			return d;
	return NULL;
}

static void cache_drop(ns *n, uint64_t id)
{
	for (struct ndir **pp = bucket(n, id); *pp; pp = &(*pp)->hnext)
		if ((*pp)->id == id) {
			struct ndir *d = *pp;
			*pp = d->hnext;
			nsd_free(d);
			n->ncached--;
			return;
		}
}

/* Drop clean directories when too many are cached (dirty ones stay until flushed).
 *
 * This frees struct ndirs, so it runs in exactly one place: op_begin(), at the entry
 * of a public verb, before the verb holds any directory pointer. Nothing inside a
 * verb (get_dir included) ever drops a directory, and ns.c never calls its own public
 * verbs, so a pointer a verb got from get_dir stays valid, and an edit it made stays
 * in memory, until the verb returns. (The old rule trimmed inside get_dir: a rename
 * that loaded the moved directory after editing both parents dropped the edits, and
 * later loads used freed pointers.) The one verb that calls out while holding a
 * directory, ns_readdir, looks its directory up again after each callback.
 * Edited directories are marked dirty at the edit itself (nsd_insert, nsd_remove), so
 * they stay cached until ns_flush wrote them, whatever happens after the edit. */
static void cache_trim(ns *n)
{
	if (n->ncached < n->cache_max)
		return;
	n->st.cache_trims++;
	for (size_t b = 0; b < n->nbuckets; b++)
		for (struct ndir **pp = &n->ht[b]; *pp;) {
			struct ndir *d = *pp;
			if (!d->dirty && d->id != n->root) {
				*pp = d->hnext;
				nsd_free(d);
				n->ncached--;
			} else {
				pp = &d->hnext;
			}
		}
}

static void op_begin(ns *n)
{
	cache_trim(n);
}

static int read_all(ns *n, uint64_t id, uint64_t size)
{
	if (size > DIR_MAX_BYTES)
		return -EFBIG;
	if (size > n->iocap) {
		uint8_t *b = realloc(n->iobuf, size);
		if (!b)
			return -ENOMEM;
		n->iobuf = b;
		n->iocap = size;
	}
	size_t got = 0;
	int r = store_read(n->s, id, 0, n->iobuf, size, &got);
	if (r == 0 && got != size)
		r = -EIO;
	return r;
}

/* The decoded directory id (loading it). -ENOTDIR for a file. Never drops a cached
 * directory (see cache_trim). */
static int get_dir(ns *n, uint64_t id, struct ndir **out)
{
	struct ndir *d = cache_find(n, id);
	store_obj_info in;
	int r;
	if (d) {
		*out = d;
		return 0;
	}
	if ((r = store_stat(n->s, id, &in)) < 0)
		return r;
	if (in.attr.type != NS_DIR)
		return -ENOTDIR;
	if ((r = read_all(n, id, in.size)) < 0)
		return r;
	if (!(d = calloc(1, sizeof(*d))))
		return -ENOMEM;
	d->id = id;
	r = nsd_decode(d, n->iobuf, in.size);
	if (r < 0) {
		nsd_free(d);
		return r == -ENOMEM ? r : -EIO; /* a damaged directory */
	}
	d->hnext = *bucket(n, id);
	*bucket(n, id) = d;
	n->ncached++;
	n->st.dir_loads++;
	*out = d;
	return 0;
}

/* --- encoding and writing --- */

/* The whole object anew (version 1 while it fits in a page, else version 2). Its
 * rows come from the reserve (store_put_begin_class): a full store must still be
 * able to record deletes and commit them. Atomic: the object's new map replaces the
 * old one at once. */
static int write_whole(ns *n, struct ndir *d, int space)
{
	uint8_t *b;
	size_t len;
	store_writer *w;
	int v2 = d->v2 || nsd_v1_len(d) > n->v1_max;
	int r = v2 ? nsd_encode_v2(d, &b, &len) : nsd_encode_v1(d, &b, &len);
	if (r < 0)
		return r;
	if ((r = store_put_begin_class(n->s, space, &w)) == 0) {
		if ((r = store_put_write(w, b, len)) < 0)
			store_put_abort(w);
		else
			r = store_put_end_replace(w, d->id);
	}
	free(b);
	if (r == 0) {
		d->v2 = v2;
		nsd_clean(d);
		n->st.dir_pages_written += v2 ? len / DIR_PAGE : 0;
	} else {
		d->whole = 1; /* nsd_encode_v2 renumbered the pages: only a whole write fits them */
	}
	return r;
}

struct store_out {
	store *s;
	uint64_t id;
	int space;
};

static int page_to_store(void *ctx, uint64_t off, const void *b, size_t len)
{
	struct store_out *o = ctx;
	return store_write_at_class(o->s, o->space, o->id, off, b, len);
}

/* A changed directory into the store: a version 2 one writes its changed pages
 * (nsd_write_pages), each with store_write_at_class at page number x page size, so a
 * create costs one page (two or three when a page splits) whatever the directory's
 * size.
 *
 * Crash story: the pages of one flush reach the store in several writes. No commit
 * falls between them: the store's automatic commits ask the precommit hook first,
 * which refuses while a flush runs (n->flushing), and the namespace's own commits
 * and syncs flush first. A failed page write leaves the object part old and part
 * new in the txg being built; d->whole then makes the next flush rewrite it whole
 * (atomic), and the directory stays dirty, so the next ns_sync or ns_commit fixes it
 * before they make anything durable. Only a store_commit called directly by the layer
 * above between the failed flush and the next could make the torn object durable
 * (then EIO at the next load: refused, never misread, by the page checksums). */
static int write_dir(ns *n, struct ndir *d, int space)
{
	n->st.dir_rewrites++;
	if (!d->v2 || d->whole || d->nfl > d->npg + 16)
		return write_whole(n, d, space); /* also compacts many free pages */
	struct store_out o = {.s = n->s, .id = d->id, .space = space};
	int r = nsd_write_pages(d, page_to_store, &o, &n->st.dir_pages_written);
	if (r < 0)
		d->whole = 1;
	return r;
}

/* A directory's entries changed: it is rewritten at the next flush. */
static int touch_dir(ns *n, struct ndir *d)
{
	store_obj_info in;
	int r = store_stat(n->s, d->id, &in);
	if (r < 0)
		return r;
	in.attr.mtime_ns = in.attr.ctime_ns = now_ns();
	d->dirty = 1;
	return store_setattr(n->s, d->id, &in.attr);
}

/* A new object of the namespace: content buf, attributes of type (nlink 1). */
static int new_object(ns *n, const void *buf, size_t len, uint32_t type, uint32_t mode,
                      uint32_t uid, uint32_t gid, uint64_t *id)
{
	int r = store_put(n->s, buf, len, id);
	if (r < 0)
		return r;
	int64_t t = now_ns();
	store_attr a = {.type = type, .mode = mode & 07777, .uid = uid, .gid = gid,
	                .nlink = 1, .mtime_ns = t, .ctime_ns = t, .atime_ns = t};
	if ((r = store_setattr(n->s, *id, &a)) < 0)
		store_delete(n->s, *id);
	return r;
}

/* --- life cycle --- */

static int new_dir_object(store *s, uint64_t parent, uint32_t mode, uint32_t uid,
                          uint32_t gid, uint64_t *id)
{
	struct ndir d = {.parent = parent};
	uint8_t *b;
	size_t len;
	int r = nsd_encode_v1(&d, &b, &len);
	if (r < 0)
		return r;
	r = store_put(s, b, len, id);
	free(b);
	if (r < 0)
		return r;
	int64_t t = now_ns();
	store_attr a = {.type = NS_DIR, .mode = mode & 07777, .uid = uid, .gid = gid,
	                .nlink = 2, .mtime_ns = t, .ctime_ns = t, .atime_ns = t};
	r = store_setattr(s, *id, &a);
	if (r < 0)
		store_delete(s, *id);
	return r;
}

static int find_root(void *ctx, const store_obj_info *in)
{
	*(uint64_t *)ctx = in->id;
	return 1; /* the first object */
}

int ns_format(store *s, uint32_t mode, bks_err *e)
{
	uint64_t first = 0, id;
	store_list(s, find_root, &first);
	if (first)
		return bks_fail(e, -EEXIST, "the store already holds objects");
	int r = new_dir_object(s, 0, mode, 0, 0, &id);
	if (r < 0)
		return bks_fail(e, r, "creating the root directory: %s", strerror(-r));
	return 0;
}

void ns_params_default(ns_params *p)
{
	*p = (ns_params){.cache_dirs = CACHE_DEFAULT, .dir_v1_max = DIR_PAGE};
}

int ns_open(store *s, ns **out, bks_err *e)
{
	return ns_open_params(s, NULL, out, e);
}

static int flush_dirs(ns *n, int space);

/* Before a commit the store makes by itself: write the changed directories into it
 * (the commit's share of the reserve, as ns_commit). No directory pointer is held
 * across a store write by any verb, and flushing only writes and marks clean. */
static int precommit_cb(void *ctx)
{
	ns *n = ctx;
	/* A directory being written when its own write passes the threshold: that
	 * flush is not finished, so this commit waits for a later one. */
	if (n->flushing)
		return -EBUSY;
	return flush_dirs(n, POOL_SPACE_COMMIT);
}

int ns_open_params(store *s, const ns_params *p, ns **out, bks_err *e)
{
	ns_params dp;
	if (!p) {
		ns_params_default(&dp);
		p = &dp;
	}
	uint64_t root = 0;
	store_obj_info in;
	store_list(s, find_root, &root);
	if (!root || store_stat(s, root, &in) < 0 || in.attr.type != NS_DIR)
		return bks_fail(e, -ENOENT, "the store holds no namespace (format it first)");
	ns *n = calloc(1, sizeof(*n));
	if (!n)
		return bks_fail(e, -ENOMEM, "out of memory");
	n->s = s;
	n->root = root;
	n->cache_max = p->cache_dirs;
	n->v1_max = p->dir_v1_max;
	n->nbuckets = 1024;
	n->ht = calloc(n->nbuckets, sizeof(*n->ht));
	if (!n->ht) {
		free(n);
		return bks_fail(e, -ENOMEM, "out of memory");
	}
	struct ndir *d;
	int r = get_dir(n, root, &d);
	if (r < 0) {
		ns_close(n);
		return bks_fail(e, r, "root directory unreadable: %s", strerror(-r));
	}
	/* The store's own commits (auto_commit_bytes, inside a large write) take the
	 * changed directories with them: otherwise such a commit could hold a deleted
	 * object whose directory entry it still has. */
	store_set_precommit(s, precommit_cb, n);
	*out = n;
	return 0;
}

void ns_close(ns *n)
{
	if (!n)
		return;
	store_set_precommit(n->s, NULL, NULL);
	for (size_t b = 0; b < n->nbuckets; b++)
		while (n->ht[b]) {
			struct ndir *d = n->ht[b];
			n->ht[b] = d->hnext;
			nsd_free(d);
		}
	free(n->ht);
	free(n->iobuf);
	free(n->pend);
	free(n);
}

/* --- attributes and lookups --- */

/* The verbs below come in two layers: static ones that do the work and never trim
 * the cache, and the public ns_* ones, which begin with op_begin() (the only place
 * the cache shrinks) and call only static ones. */

static int ns_type_ok(uint32_t type)
{
	return type == NS_FILE || type == NS_DIR || type == NS_SYMLINK;
}

static int getattr_in(ns *n, uint64_t id, ns_attr *a)
{
	store_obj_info in;
	int r = store_stat(n->s, id, &in);
	if (r < 0)
		return r;
	if (!ns_type_ok(in.attr.type))
		return -ENOENT; /* a store object outside the namespace */
	if (in.attr.type == NS_DIR) {
		struct ndir *d;
		if ((r = get_dir(n, id, &d)) < 0)
			return r;
		in.size = d->n; /* a directory's size is its number of entries */
		/* POSIX-ish: its own name, ".", and each subdirectory's "..". Counted, not
		 * stored: every mkdir, rmdir and directory rename would otherwise rewrite
		 * the parent's object record (the record keeps 2). */
		in.attr.nlink = 2 + (uint32_t)BKS_MIN(d->nsub, (size_t)UINT32_MAX - 2);
	} else {
		uint32_t pend = pend_get(n, id); /* names gone, still in the record */
		in.attr.nlink = in.attr.nlink > pend ? in.attr.nlink - pend : 0;
	}
	*a = (ns_attr){.id = id, .gen = in.gen, .type = in.attr.type, .mode = in.attr.mode,
	               .uid = in.attr.uid, .gid = in.attr.gid, .nlink = in.attr.nlink,
	               .size = in.size, .mtime_ns = in.attr.mtime_ns,
	               .ctime_ns = in.attr.ctime_ns, .atime_ns = in.attr.atime_ns};
	return 0;
}

int ns_getattr(ns *n, uint64_t id, ns_attr *a)
{
	op_begin(n);
	return getattr_in(n, id, a);
}

int ns_setattr(ns *n, uint64_t id, const ns_attr *a, unsigned mask)
{
	store_obj_info in;
	int r = store_stat(n->s, id, &in);
	if (r < 0)
		return r;
	if (!ns_type_ok(in.attr.type))
		return -ENOENT; /* as ns_getattr: a plain object is not the namespace's */
	if (mask & NS_SET_MODE)
		in.attr.mode = a->mode & 07777;
	if (mask & NS_SET_UID)
		in.attr.uid = a->uid;
	if (mask & NS_SET_GID)
		in.attr.gid = a->gid;
	if (mask & NS_SET_MTIME)
		in.attr.mtime_ns = a->mtime_ns;
	if (mask & NS_SET_ATIME)
		in.attr.atime_ns = a->atime_ns;
	in.attr.ctime_ns = now_ns();
	return store_setattr(n->s, id, &in.attr);
}

static int lookup_in(ns *n, uint64_t dir, const char *name, ns_attr *a)
{
	struct ndir *d;
	struct pos at;
	int r = name_in(n, dir, name, -ENOENT);
	if (r < 0 || (r = get_dir(n, dir, &d)) < 0)
		return r;
	if (!nsd_find(d, name, strlen(name), &at))
		return -ENOENT;
	return a ? getattr_in(n, ENT(d, at).id, a) : 0;
}

int ns_lookup(ns *n, uint64_t dir, const char *name, ns_attr *a)
{
	op_begin(n);
	return lookup_in(n, dir, name, a);
}

/* The next component of a path at *p (empty ones skipped) into comp: its length, 0
 * at the end, -ENAMETOOLONG. */
static int next_comp(const char **p, char comp[NS_NAME_MAX + 1])
{
	while (**p == '/')
		(*p)++;
	if (!**p)
		return 0;
	const char *q = strchr(*p, '/');
	size_t l = q ? (size_t)(q - *p) : strlen(*p);
	if (l > NS_NAME_MAX)
		return -ENAMETOOLONG;
	memcpy(comp, *p, l);
	comp[l] = 0;
	*p += l;
	return (int)l;
}

/* Walk path; stop before the last component when parent_only. */
static int walk(ns *n, const char *path, int parent_only, uint64_t *dir,
                char last[NS_NAME_MAX + 1])
{
	if (!path || path[0] != '/')
		return -EINVAL;
	if (strlen(path) > NS_PATH_MAX)
		return -ENAMETOOLONG;
	uint64_t cur = n->root;
	const char *p = path;
	char comp[NS_NAME_MAX + 1];
	int l;
	last[0] = 0;
	while ((l = next_comp(&p, comp)) != 0) {
		if (l < 0)
			return l;
		const char *rest = p;
		while (*rest == '/')
			rest++;
		if (parent_only && !*rest) {
			memcpy(last, comp, (size_t)l + 1);
			break;
		}
		ns_attr a;
		int r = lookup_in(n, cur, comp, &a);
		if (r < 0)
			return r;
		if (a.type != NS_DIR)
			return -ENOTDIR;
		cur = a.id;
	}
	*dir = cur;
	return 0;
}

int ns_resolve(ns *n, const char *path, ns_attr *a)
{
	uint64_t id;
	char last[NS_NAME_MAX + 1];
	op_begin(n);
	int r = walk(n, path, 1, &id, last);
	if (r < 0)
		return r;
	if (!last[0])
		return getattr_in(n, id, a); /* the root */
	return lookup_in(n, id, last, a);
}

int ns_resolve_parent(ns *n, const char *path, uint64_t *dir, char name[NS_NAME_MAX + 1])
{
	op_begin(n);
	int r = walk(n, path, 1, dir, name);
	if (r == 0 && !name[0])
		return -EBUSY; /* the root has no parent entry */
	if (r == 0) {
		struct ndir *d;
		r = get_dir(n, *dir, &d);
	}
	return r;
}

/* --- changes --- */

/* Enter a just-made object into d at at (from nsd_find) and touch d; the object is
 * deleted again if it cannot be entered (nothing else names it). */
static int enter_new(ns *n, struct ndir *d, struct pos at, const char *name, size_t nl,
                     uint64_t id, uint32_t type, ns_attr *out)
{
	int r = nsd_insert(d, at, name, nl, id, type);
	if (r < 0) {
		store_delete(n->s, id);
		return r;
	}
	if ((r = touch_dir(n, d)) < 0)
		return r;
	return out ? getattr_in(n, id, out) : 0;
}

static int mkdir_in(ns *n, uint64_t dir, const char *name, uint32_t mode, uint32_t uid,
                    uint32_t gid, ns_attr *out)
{
	struct ndir *d;
	struct pos at;
	size_t nl = strlen(name);
	uint64_t id;
	int r = name_in(n, dir, name, -EACCES);
	if (r < 0 || (r = get_dir(n, dir, &d)) < 0)
		return r;
	if (nsd_find(d, name, nl, &at))
		return -EEXIST;
	if ((r = new_dir_object(n->s, dir, mode, uid, gid, &id)) < 0)
		return r;
	return enter_new(n, d, at, name, nl, id, NS_DIR, out);
}

int ns_mkdir(ns *n, uint64_t dir, const char *name, uint32_t mode, uint32_t uid,
             uint32_t gid, ns_attr *out)
{
	op_begin(n);
	return mkdir_in(n, dir, name, mode, uid, gid, out);
}

int ns_mkdir_path(ns *n, const char *path, uint32_t mode, ns_attr *out)
{
	if (!path || path[0] != '/')
		return -EINVAL;
	if (strlen(path) > NS_PATH_MAX)
		return -ENAMETOOLONG;
	op_begin(n);
	uint64_t cur = n->root;
	const char *p = path;
	ns_attr a;
	char comp[NS_NAME_MAX + 1];
	int r = getattr_in(n, cur, &a), l;
	while (r == 0 && (l = next_comp(&p, comp)) != 0) {
		if (l < 0)
			return l;
		r = lookup_in(n, cur, comp, &a);
		if (r == -ENOENT)
			r = mkdir_in(n, cur, comp, mode, 0, 0, &a);
		if (r == 0 && a.type != NS_DIR)
			r = -EEXIST;
		cur = a.id;
	}
	if (r == 0 && out)
		*out = a;
	return r;
}

/* Drop one name of a file or symlink (the caller removes or replaces the entry):
 * nlink - 1 and ctime now, or deleted with its last name. */
static int drop_file(ns *n, uint64_t id)
{
	/* Crash story: the record's nlink must never count fewer names than the
	 * directories of any commit hold, or after a crash the object would go with a
	 * name that still has another, which then names nothing (a file lost). The
	 * entry's removal reaches the store only when its directory is rewritten (the
	 * next flush), while the store may commit at any time in between (a writer's
	 * auto-commit flushes the namespace first through store_set_precommit, but not
	 * when it fires inside a flush, and an explicit store_commit does not). So the
	 * decrement waits in n->pend
	 * and flush_dirs applies it after writing every directory: a commit in between
	 * finds the record counting too many names, never too few. A crash then leaves an
	 * nlink too high, which the namespace reports as is and which keeps the object
	 * (with no name left) until a repair: a leak, not a loss. ns_link counts the new
	 * name in the record at once: the same direction. The last name deletes the
	 * object at once, as before hard links: a commit before the flush leaves only an
	 * entry the user removed naming nothing. */
	store_obj_info in;
	int r = store_stat(n->s, id, &in);
	if (r < 0)
		return r;
	uint32_t pend = pend_get(n, id);
	if (in.attr.nlink > pend + 1) {
		struct pend *p = pend_get_slot(n, id);
		if (!p)
			return -ENOMEM;
		p->cnt++;
		in.attr.ctime_ns = now_ns(); /* ctime at once; it may commit early */
		if ((r = store_setattr(n->s, id, &in.attr)) < 0)
			p->cnt--;
		return r;
	}
	if ((r = store_delete(n->s, id)) == 0 && pend) {
		struct pend *p = pend_get_slot(n, id); /* present: no allocation */
		if (p)
			p->cnt = 0; /* nothing left to apply */
	}
	return r;
}

int ns_link_new(ns *n, uint64_t dir, const char *name, uint64_t obj, int replace,
                uint32_t mode, uint32_t uid, uint32_t gid, int64_t mtime_ns, ns_attr *out)
{
	struct ndir *d;
	struct pos at;
	size_t nl = strlen(name);
	store_obj_info in;
	op_begin(n);
	int r = name_in(n, dir, name, -EACCES);
	if (r < 0 || (r = get_dir(n, dir, &d)) < 0 || (r = store_stat(n->s, obj, &in)) < 0)
		return r;
	if (in.attr.type != STORE_T_PLAIN)
		return -EINVAL; /* already in the namespace */
	int exists = nsd_find(d, name, nl, &at);
	if (exists && ENT(d, at).type == NS_DIR)
		return -EISDIR;
	if (exists && !replace)
		return -EEXIST;
	int64_t t = now_ns();
	in.attr = (store_attr){.type = NS_FILE, .mode = mode & 07777, .uid = uid, .gid = gid,
	                       .nlink = 1, .mtime_ns = mtime_ns ? mtime_ns : t, .ctime_ns = t,
	                       .atime_ns = t};
	/* The entry first (the only step that can run out of memory), so a failure
	 * leaves obj a plain object the caller can still link or delete. */
	uint64_t old = exists ? ENT(d, at).id : 0;
	uint32_t old_type = exists ? ENT(d, at).type : 0;
	if (exists) {
		/* In place (a file or a symlink: no directory count changes). */
		nsd_set(d, at, obj, NS_FILE);
	} else if ((r = nsd_insert(d, at, name, nl, obj, NS_FILE)) < 0) {
		return r;
	}
	if ((r = store_setattr(n->s, obj, &in.attr)) < 0) {
		if (exists) {
			nsd_set(d, at, old, old_type);
		} else if (nsd_find(d, name, nl, &at)) { /* a split may have moved it */
			nsd_remove(d, at);
		}
		return r;
	}
	if (exists && (r = drop_file(n, old)) < 0)
		return r;
	if ((r = touch_dir(n, d)) < 0)
		return r;
	return out ? getattr_in(n, obj, out) : 0;
}

static int create_in(ns *n, uint64_t dir, const char *name, uint32_t mode, uint32_t uid,
                     uint32_t gid, int exclusive, ns_attr *out)
{
	struct ndir *d;
	struct pos at;
	size_t nl = strlen(name);
	uint64_t id;
	int r = name_in(n, dir, name, -EACCES);
	if (r < 0 || (r = get_dir(n, dir, &d)) < 0)
		return r;
	if (nsd_find(d, name, nl, &at)) {
		uint32_t type = ENT(d, at).type;
		if (exclusive)
			return -EEXIST;
		if (type == NS_DIR)
			return -EISDIR;
		if (type != NS_FILE)
			return -EEXIST; /* a symlink: not a regular file to reuse */
		if (out && (r = getattr_in(n, ENT(d, at).id, out)) < 0)
			return r;
		return 1;
	}
	if ((r = new_object(n, "", 0, NS_FILE, mode, uid, gid, &id)) < 0)
		return r;
	return enter_new(n, d, at, name, nl, id, NS_FILE, out);
}

int ns_create(ns *n, uint64_t dir, const char *name, uint32_t mode, uint32_t uid,
              uint32_t gid, int exclusive, ns_attr *out)
{
	op_begin(n);
	return create_in(n, dir, name, mode, uid, gid, exclusive, out);
}

static int symlink_in(ns *n, uint64_t dir, const char *name, const char *target,
                      uint32_t mode, uint32_t uid, uint32_t gid, ns_attr *out)
{
	struct ndir *d;
	struct pos at;
	size_t nl = strlen(name), tl = strnlen(target, NS_SYMLINK_MAX + 1);
	uint64_t id;
	int r = name_in(n, dir, name, -EACCES);
	if (r < 0)
		return r;
	if (tl == 0)
		return -EINVAL;
	if (tl > NS_SYMLINK_MAX)
		return -ENAMETOOLONG;
	if ((r = get_dir(n, dir, &d)) < 0)
		return r;
	if (nsd_find(d, name, nl, &at))
		return -EEXIST;
	/* The target is the object's content (without the NUL): a fresh object, so a
	 * symlink costs what a small file costs and dedups like one. */
	if ((r = new_object(n, target, tl, NS_SYMLINK, mode ? mode : 0777, uid, gid, &id)) < 0)
		return r;
	return enter_new(n, d, at, name, nl, id, NS_SYMLINK, out);
}

int ns_symlink(ns *n, uint64_t dir, const char *name, const char *target, uint32_t mode,
               uint32_t uid, uint32_t gid, ns_attr *out)
{
	op_begin(n);
	return symlink_in(n, dir, name, target, mode, uid, gid, out);
}

static int readlink_in(ns *n, uint64_t id, char *buf, size_t cap, size_t *len)
{
	store_obj_info in;
	size_t got = 0;
	int r = store_stat(n->s, id, &in);
	if (r < 0)
		return r;
	if (!ns_type_ok(in.attr.type))
		return -ENOENT;
	if (in.attr.type != NS_SYMLINK)
		return -EINVAL;
	if (in.size == 0 || in.size > NS_SYMLINK_MAX)
		return -EIO; /* ns_symlink never stores such a target: a damaged object */
	if (len)
		*len = (size_t)in.size;
	if (cap < in.size + 1)
		return -ENAMETOOLONG;
	if ((r = store_read(n->s, id, 0, buf, (size_t)in.size, &got)) < 0)
		return r;
	if (got != in.size || memchr(buf, 0, got))
		return -EIO;
	buf[got] = 0;
	return 0;
}

int ns_readlink(ns *n, uint64_t id, char *buf, size_t cap, size_t *len)
{
	op_begin(n);
	return readlink_in(n, id, buf, cap, len);
}

static int link_in(ns *n, uint64_t id, uint64_t dir, const char *name, ns_attr *out)
{
	struct ndir *d;
	struct pos at;
	size_t nl = strlen(name);
	store_obj_info in;
	int r = name_in(n, dir, name, -EACCES);
	if (r < 0 || (r = store_stat(n->s, id, &in)) < 0)
		return r;
	if (!ns_type_ok(in.attr.type))
		return -ENOENT; /* a plain object: ns_link_new is its way in */
	if ((r = get_dir(n, dir, &d)) < 0)
		return r;
	/* link(2)'s order on Linux: the new name first, then what the object allows. */
	if (nsd_find(d, name, nl, &at))
		return -EEXIST;
	if (in.attr.type == NS_DIR)
		return -EPERM; /* a directory has one name (is_within relies on it) */
	if (in.attr.nlink - BKS_MIN(pend_get(n, id), in.attr.nlink) >= NS_LINK_MAX)
		return -EMLINK;
	/* The entry first (the only step that can run out of memory); should the
	 * record's update fail, the entry goes again and nothing has changed. */
	if ((r = nsd_insert(d, at, name, nl, id, in.attr.type)) < 0)
		return r;
	in.attr.nlink++;
	in.attr.ctime_ns = now_ns();
	if ((r = store_setattr(n->s, id, &in.attr)) < 0) {
		if (nsd_find(d, name, nl, &at)) /* a split may have moved it */
			nsd_remove(d, at);
		return r;
	}
	if ((r = touch_dir(n, d)) < 0)
		return r;
	return out ? getattr_in(n, id, out) : 0;
}

int ns_link(ns *n, uint64_t id, uint64_t dir, const char *name, ns_attr *out)
{
	op_begin(n);
	return link_in(n, id, dir, name, out);
}

/* Delete an empty directory object (its entry is the caller's). */
static int delete_dir(ns *n, uint64_t id)
{
	int r = store_delete(n->s, id);
	if (r == 0)
		cache_drop(n, id);
	return r;
}

static int remove_entry(ns *n, uint64_t dir, const char *name, int want_dir)
{
	struct ndir *d, *c;
	struct pos at;
	size_t nl = strlen(name);
	int r = name_in(n, dir, name, -ENOENT);
	if (r < 0 || (r = get_dir(n, dir, &d)) < 0)
		return r;
	if (!nsd_find(d, name, nl, &at))
		return -ENOENT;
	uint64_t id = ENT(d, at).id;
	if (!want_dir) {
		if (ENT(d, at).type == NS_DIR)
			return -EISDIR;
		if ((r = drop_file(n, id)) < 0)
			return r;
	} else {
		if (ENT(d, at).type != NS_DIR)
			return -ENOTDIR;
		if ((r = get_dir(n, id, &c)) < 0) /* d stays valid: get_dir never trims */
			return r;
		if (c->n)
			return -ENOTEMPTY;
		if ((r = delete_dir(n, id)) < 0)
			return r;
	}
	nsd_remove(d, at);
	return touch_dir(n, d);
}

int ns_unlink(ns *n, uint64_t dir, const char *name)
{
	op_begin(n);
	return remove_entry(n, dir, name, 0);
}

int ns_rmdir(ns *n, uint64_t dir, const char *name)
{
	op_begin(n);
	return remove_entry(n, dir, name, 1);
}

/* Is dir `inner` the directory `outer` or below it? 1 yes, 0 no, -errno. Follows the
 * parent ids kept in the directories (every rename of a directory updates its own);
 * a chain that does not end at the root is a damaged namespace (-EIO). */
static int is_within(ns *n, uint64_t inner, uint64_t outer)
{
	for (int depth = 0; depth < 4096; depth++) {
		if (inner == outer)
			return 1;
		if (inner == n->root)
			return 0;
		struct ndir *d;
		int r = inner ? get_dir(n, inner, &d) : -ENOENT;
		if (r < 0)
			return r == -ENOMEM ? r : -EIO;
		inner = d->parent;
	}
	return -ELOOP; /* deeper than any path can be: a cycle */
}

int ns_rename(ns *n, uint64_t sdir, const char *sname, uint64_t ddir, const char *dname,
              int noreplace)
{
	struct ndir *s, *d, *m = NULL, *t = NULL;
	struct pos sat, dat;
	size_t snl = strlen(sname), dnl = strlen(dname);
	int r;
	op_begin(n);
	/* Every pointer below stays valid to the end (get_dir never trims). All checks
	 * come first; the edits after them cannot fail halfway except on memory, and
	 * then nothing has changed yet. */
	if ((r = name_in(n, sdir, sname, -ENOENT)) < 0 ||
	    (r = name_in(n, ddir, dname, -EACCES)) < 0)
		return r;
	if ((r = get_dir(n, sdir, &s)) < 0 || (r = get_dir(n, ddir, &d)) < 0)
		return r;
	if (!nsd_find(s, sname, snl, &sat))
		return -ENOENT;
	struct nent src = ENT(s, sat);
	if (sdir == ddir && snl == dnl && !memcmp(sname, dname, snl))
		return 0;
	if (src.type == NS_DIR) {
		/* Not into itself or below: ddir's ancestors must not include the source. */
		if ((r = is_within(n, ddir, src.id)) != 0)
			return r > 0 ? -EINVAL : r;
		if ((r = get_dir(n, src.id, &m)) < 0)
			return r;
	}
	int exists = nsd_find(d, dname, dnl, &dat);
	uint64_t old = exists ? ENT(d, dat).id : 0;
	if (exists) {
		if (noreplace)
			return -EEXIST;
		if (old == src.id)
			return 0; /* POSIX: two links to one object, nothing to do */
		uint32_t ttype = ENT(d, dat).type;
		if (src.type == NS_DIR && ttype != NS_DIR)
			return -ENOTDIR;
		if (src.type != NS_DIR && ttype == NS_DIR)
			return -EISDIR;
		if (ttype == NS_DIR) {
			if ((r = get_dir(n, old, &t)) < 0)
				return r;
			if (t->n)
				return -ENOTEMPTY;
		}
		/* The target's object goes first: should that fail, nothing has changed. */
		if ((r = ttype == NS_DIR ? delete_dir(n, old) : drop_file(n, old)) < 0)
			return r;
		/* Same name, and directory for directory (nsub unchanged), but a symlink may
		 * replace a file or the other way round: the type goes with the id. In
		 * place, no allocation. */
		nsd_set(d, dat, src.id, src.type);
	} else if ((r = nsd_insert(d, dat, dname, dnl, src.id, src.type)) < 0) {
		return r;
	}
	/* The insert may have moved s's entries (s == d): find the source again. */
	if (!nsd_find(s, sname, snl, &sat))
		return -EIO; /* cannot happen: nothing else ran */
	nsd_remove(s, sat);
	if (m && sdir != ddir) {
		m->parent = ddir;
		m->hdirty = m->dirty = 1; /* the parent is in the header page */
	}
	if ((r = touch_dir(n, s)) < 0)
		return r;
	if (ddir != sdir && (r = touch_dir(n, d)) < 0)
		return r;
	return 0;
}

int ns_readdir(ns *n, uint64_t dir, const char *after,
               int (*fn)(void *ctx, const ns_dirent *d), void *ctx)
{
	struct ndir *d;
	struct pos at = {0, 0};
	op_begin(n);
	int r = get_dir(n, dir, &d);
	if (r < 0)
		return r;
	if (after && after[0] && nsd_find(d, after, strlen(after), &at))
		at.i++;
	nsd_pos_norm(d, &at);
	/* fn may call back into the namespace, whose verbs may drop d from the cache (or
	 * change it): fn gets a copy of the name, and d is looked up again after each
	 * call, going on after the name fn saw. The name is the cookie: the walk is in
	 * name order whatever the pages do meanwhile, so an entry that stays is listed
	 * once and none that stays is skipped. */
	char cur[NS_NAME_MAX + 1];
	while (at.p < d->npg) {
		memcpy(cur, ENT(d, at).name, ENT(d, at).nlen + 1);
		ns_dirent de = {.name = cur, .id = ENT(d, at).id, .type = ENT(d, at).type};
		if (name_in(n, dir, cur, 1) == 0 && (r = fn(ctx, &de)) != 0)
			return r;
		if ((r = get_dir(n, dir, &d)) < 0)
			return r;
		if (nsd_find(d, cur, strlen(cur), &at))
			at.i++;
		nsd_pos_norm(d, &at);
	}
	return 0;
}

int ns_system_dir(ns *n, uint64_t *id)
{
	ns_attr a;
	op_begin(n);
	n->sys_ok = 1;
	int r = lookup_in(n, n->root, NS_SYSTEM_NAME, &a);
	if (r == -ENOENT)
		r = mkdir_in(n, n->root, NS_SYSTEM_NAME, 0700, 0, 0, &a);
	n->sys_ok = 0;
	if (r == 0 && a.type != NS_DIR)
		r = -ENOTDIR;
	if (r == 0)
		*id = a.id;
	return r;
}

int ns_parent(ns *n, uint64_t dir, uint64_t *parent)
{
	struct ndir *d;
	op_begin(n);
	int r = get_dir(n, dir, &d);
	if (r < 0)
		return r;
	*parent = dir == n->root ? dir : d->parent;
	return 0;
}

/* --- durability --- */

static int flush_dirs_in(ns *n, int space);

static int flush_dirs(ns *n, int space)
{
	n->flushing++;
	int r = flush_dirs_in(n, space);
	n->flushing--;
	return r;
}

static int flush_dirs_in(ns *n, int space)
{
	for (size_t b = 0; b < n->nbuckets; b++)
		for (struct ndir *d = n->ht[b]; d; d = d->hnext)
			if (d->dirty) {
				int r = write_dir(n, d, space);
				if (r < 0)
					return r;
			}
	/* Every directory is written: the names they dropped leave the records now (the
	 * crash story at drop_file). A failure keeps the rest for the next flush. */
	for (size_t i = 0; i < n->pend_cap; i++) {
		struct pend *p = &n->pend[i];
		store_obj_info in;
		if (!p->id || !p->cnt)
			continue;
		int r = store_stat(n->s, p->id, &in);
		if (r == -ENOENT) {
			p->cnt = 0; /* deleted by other means: nothing to count */
			continue;
		}
		if (r < 0)
			return r;
		in.attr.nlink = in.attr.nlink > p->cnt ? in.attr.nlink - p->cnt : 1;
		if ((r = store_setattr(n->s, p->id, &in.attr)) < 0)
			return r;
		p->cnt = 0;
	}
	if (n->npend) {
		memset(n->pend, 0, n->pend_cap * sizeof(*n->pend));
		n->npend = 0;
	}
	return 0;
}

int ns_flush(ns *n)
{
	return flush_dirs(n, POOL_SPACE_WORK);
}

int ns_sync(ns *n, uint64_t id, bks_err *e)
{
	int r = ns_flush(n);
	if (r < 0)
		return bks_fail(e, r, "writing directories: %s", strerror(-r));
	return store_sync(n->s, id, e);
}

int ns_commit(ns *n, bks_err *e)
{
	/* The commit's own share of the reserve: the commit that makes the
	 * collector's freed rows reusable must never fail for want of a directory. */
	int r = flush_dirs(n, POOL_SPACE_COMMIT);
	if (r < 0)
		return bks_fail(e, r, "writing directories: %s", strerror(-r));
	return store_commit(n->s, e);
}

void ns_get_stats(const ns *n, ns_stats *st)
{
	*st = n->st;
	st->dirs_cached = n->ncached;
	st->dirs_dirty = 0;
	for (size_t b = 0; b < n->nbuckets; b++)
		for (struct ndir *d = n->ht[b]; d; d = d->hnext)
			st->dirs_dirty += d->dirty != 0;
}
