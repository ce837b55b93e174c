/* test-ns: the namespace over the store.
 *  - format, mkdir (and -p), files linked from objects, lookups by path, readdir in
 *    name order with a resume cookie, attributes;
 *  - rename: file over file (the old one is deleted), directory moves (its parent
 *    changes), a directory into itself refused, noreplace;
 *  - unlink, rmdir (a non-empty directory refused), bad names refused;
 *  - durability: ns_sync survives a crash (close without commit) through the intent
 *    log; unsynced changes do not; 2000 entries in one directory after a commit;
 *  - hard links (ns_link): nlink after link, unlink, a rename and ns_link_new over one
 *    of several names, the object deleted with its last name, -EPERM, -EEXIST,
 *    -EMLINK; directories' nlink (2 + subdirectories);
 *  - symlinks (ns_symlink, ns_readlink): target bounds, -EINVAL for a file, readdir
 *    types, entry types following renames; ns_create (exclusive or not); all of it
 *    again after a commit and a reopen;
 *  - a damaged directory object is an error, not a crash (ns_dir_parse), with the
 *    errors of docs/format.md; a plain store object is outside the namespace. */
#include <config.h>

#include "tests/testutil.h"

#include "dedup/store_int.h" /* store_pool: white-box counts of rows */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fs/ns.h"

#define N 6
#define DISK_MB 48

static uint64_t put_file(ns *n, const char *path, uint64_t seed, size_t len)
{
	uint8_t *b = malloc(len + 1);
	uint64_t id = 0, dir;
	char name[NS_NAME_MAX + 1];
	tu_fill(seed, 0, 0, b, len);
	store *s = ns_store(n);
	if (store_put(s, b, len, &id) != 0 || ns_resolve_parent(n, path, &dir, name) != 0 ||
	    ns_link_new(n, dir, name, id, 1, 0644, 1000, 1000, 0, NULL) != 0)
		id = 0;
	free(b);
	return id;
}

static int file_is(ns *n, const char *path, uint64_t seed, size_t len)
{
	ns_attr a;
	if (ns_resolve(n, path, &a) != 0 || a.type != NS_FILE || a.size != len)
		return 0;
	uint8_t *want = malloc(len + 1), *got = malloc(len + 1);
	size_t g = 0;
	tu_fill(seed, 0, 0, want, len);
	int ok = store_read(ns_store(n), a.id, 0, got, len + 1, &g) == 0 && g == len &&
	         !memcmp(want, got, len);
	free(want);
	free(got);
	return ok;
}

struct names {
	char buf[64][32];
	int n;
};

static int collect(void *ctx, const ns_dirent *d)
{
	struct names *nm = ctx;
	if (nm->n < 64)
		snprintf(nm->buf[nm->n], sizeof(nm->buf[0]), "%s", d->name);
	nm->n++;
	return 0;
}

static int count_cb(void *ctx, const ns_dirent *d)
{
	(void)d;
	(*(int *)ctx)++;
	return 0;
}

struct types {
	char name[16][32];
	uint32_t type[16];
	int n;
};

static int collect_types(void *ctx, const ns_dirent *d)
{
	struct types *t = ctx;
	if (t->n < 16) {
		snprintf(t->name[t->n], sizeof(t->name[0]), "%s", d->name);
		t->type[t->n] = d->type;
	}
	t->n++;
	return 0;
}

static ns *open_ns_p(char **paths, store **sp, const store_params *p)
{
	bks_err e = {0};
	arr *a = tu_import_array(paths, N, NULL);
	ns *n = NULL;
	if (!a || store_open(a, p, sp, &e) != 0) {
		fprintf(stderr, "open: %s\n", bks_errmsg(&e, -1));
		return NULL;
	}
	if (ns_open(*sp, &n, &e) != 0) {
		fprintf(stderr, "ns_open: %s\n", bks_errmsg(&e, -1));
		return NULL;
	}
	return n;
}

static ns *open_ns(char **paths, store **sp)
{
	return open_ns_p(paths, sp, NULL);
}

int main(void)
{
	const char *dir = tu_tmpdir("ns");
	char *paths[N];
	bks_err e = {0};
	store *s;
	ns *n;
	ns_attr a;

	arr *ar = tu_make_array(dir, N, DISK_MB, NULL, paths);
	REQUIRE(store_create(ar, NULL, &s, &e) == 0, "create: %s", bks_errmsg(&e, -1));
	CHECK(ns_open(s, &n, &e) == -ENOENT, "an unformatted store has no namespace");
	REQUIRE(ns_format(s, 0755, &e) == 0, "format: %s", bks_errmsg(&e, -1));
	CHECK(ns_format(s, 0755, &e) == -EEXIST, "format twice refused");
	REQUIRE(ns_open(s, &n, &e) == 0, "ns_open: %s", bks_errmsg(&e, -1));

	/* Directories and files. */
	CHECK(ns_mkdir_path(n, "/backups/veeam/job1", 0750, &a) == 0 && a.type == NS_DIR,
	      "mkdir -p");
	CHECK(ns_mkdir_path(n, "/backups/veeam", 0750, NULL) == 0, "mkdir -p of an existing dir");
	uint64_t f1 = put_file(n, "/backups/veeam/job1/full.vbk", 1, 300000);
	uint64_t f2 = put_file(n, "/backups/veeam/job1/inc1.vib", 2, 50000);
	uint64_t f3 = put_file(n, "/backups/top.txt", 3, 10);
	CHECK(f1 && f2 && f3, "files linked");
	CHECK(file_is(n, "/backups/veeam/job1/full.vbk", 1, 300000), "file content by path");
	CHECK(ns_resolve(n, "//backups///veeam/job1/inc1.vib", &a) == 0 && a.id == f2 &&
	      a.mode == 0644 && a.uid == 1000 && a.nlink == 1, "path with empty components");
	CHECK(ns_resolve(n, "/backups/top.txt/x", &a) == -ENOTDIR, "file as a directory");
	CHECK(ns_resolve(n, "/nope", &a) == -ENOENT, "missing path");
	CHECK(ns_resolve(n, "relative", &a) == -EINVAL, "relative path refused");
	CHECK(ns_mkdir_path(n, "/backups/top.txt/sub", 0755, NULL) == -ENOTDIR ||
	      ns_mkdir_path(n, "/backups/top.txt/sub", 0755, NULL) == -EEXIST,
	      "mkdir -p through a file refused");
	uint64_t bdir;
	char nm[NS_NAME_MAX + 1];
	REQUIRE(ns_resolve_parent(n, "/backups/x", &bdir, nm) == 0 && !strcmp(nm, "x"), "parent");
	CHECK(ns_mkdir(n, bdir, "veeam", 0755, 0, 0, NULL) == -EEXIST, "mkdir over a name");
	CHECK(ns_mkdir(n, bdir, "a/b", 0755, 0, 0, NULL) == -EINVAL, "name with a slash");
	CHECK(ns_mkdir(n, bdir, "..", 0755, 0, 0, NULL) == -EINVAL, "name ..");
	char longname[300];
	memset(longname, 'x', 256);
	longname[256] = 0;
	CHECK(ns_mkdir(n, bdir, longname, 0755, 0, 0, NULL) == -ENAMETOOLONG, "256-byte name");
	printf("ok - directories, files, lookups, bad names\n");

	/* readdir order and resume. */
	for (int i = 9; i >= 0; i--) {
		char p[64];
		snprintf(p, sizeof(p), "/backups/f%d", i);
		CHECK(put_file(n, p, 100 + (uint64_t)i, 100 + (size_t)i) != 0, "put %s", p);
	}
	struct names got = {0};
	CHECK(ns_readdir(n, bdir, NULL, collect, &got) == 0 && got.n == 12, "%d entries", got.n);
	CHECK(!strcmp(got.buf[0], "f0") && !strcmp(got.buf[9], "f9") &&
	      !strcmp(got.buf[10], "top.txt") && !strcmp(got.buf[11], "veeam"), "name order");
	struct names rest = {0};
	CHECK(ns_readdir(n, bdir, "f4", collect, &rest) == 0 && rest.n == 7 &&
	      !strcmp(rest.buf[0], "f5"), "resume after f4");
	printf("ok - readdir in name order, resumable\n");

	/* Renames. */
	uint64_t jdir;
	REQUIRE(ns_resolve_parent(n, "/backups/veeam/job1/x", &jdir, nm) == 0, "job1");
	CHECK(ns_rename(n, jdir, "inc1.vib", jdir, "full.vbk", 1) == -EEXIST, "noreplace");
	CHECK(ns_rename(n, jdir, "inc1.vib", jdir, "full.vbk", 0) == 0, "file over file");
	CHECK(file_is(n, "/backups/veeam/job1/full.vbk", 2, 50000), "target has the new content");
	store_obj_info in;
	CHECK(store_stat(s, f1, &in) == -ENOENT, "the replaced file is deleted");
	ns_attr va;
	REQUIRE(ns_resolve(n, "/backups/veeam", &va) == 0, "veeam");
	CHECK(ns_rename(n, bdir, "veeam", jdir, "loop", 0) == -EINVAL, "dir into itself");
	CHECK(ns_rename(n, bdir, "veeam", n ? ns_root(n) : 0, "veeam2", 0) == 0, "dir move");
	CHECK(file_is(n, "/veeam2/job1/full.vbk", 2, 50000), "moved tree readable");
	CHECK(ns_resolve(n, "/backups/veeam", &a) == -ENOENT, "old name gone");
	CHECK(ns_rename(n, bdir, "top.txt", bdir, "f0", 0) == 0, "rename within a dir");
	printf("ok - renames\n");

	/* Removal. */
	CHECK(ns_rmdir(n, ns_root(n), "veeam2") == -ENOTEMPTY, "rmdir of a non-empty dir");
	CHECK(ns_unlink(n, ns_root(n), "veeam2") == -EISDIR, "unlink of a dir");
	CHECK(ns_unlink(n, bdir, "f1") == 0 && ns_resolve(n, "/backups/f1", &a) == -ENOENT,
	      "unlink");
	ns_attr j;
	REQUIRE(ns_resolve(n, "/veeam2/job1", &j) == 0, "job1 moved");
	CHECK(ns_unlink(n, j.id, "full.vbk") == 0, "unlink the last file");
	REQUIRE(ns_resolve(n, "/veeam2", &va) == 0, "veeam2");
	CHECK(ns_rmdir(n, va.id, "job1") == 0, "rmdir an empty dir");
	CHECK(ns_rmdir(n, ns_root(n), "veeam2") == 0, "and its parent");
	printf("ok - unlink and rmdir\n");

	/* Durability through the intent log. */
	uint64_t sf = put_file(n, "/backups/synced", 7, 400000);
	REQUIRE(sf && ns_sync(n, sf, &e) == 0, "sync: %s", bks_errmsg(&e, -1));
	CHECK(put_file(n, "/backups/unsynced", 8, 1000) != 0, "unsynced put");
	ns_close(n);
	store_close(s); /* crash */
	n = open_ns(paths, &s);
	REQUIRE(n, "reopen");
	CHECK(file_is(n, "/backups/synced", 7, 400000), "synced file back after a crash");
	CHECK(ns_resolve(n, "/backups/unsynced", &a) == -ENOENT, "unsynced file absent");
	CHECK(file_is(n, "/backups/f9", 109, 109), "earlier file back");
	CHECK(ns_resolve(n, "/backups/f1", &a) == -ENOENT, "the unlink is durable too");
	REQUIRE(ns_resolve(n, "/backups/synced", &a) == 0, "stat");
	CHECK(a.mode == 0644 && a.uid == 1000 && a.gid == 1000 && a.mtime_ns > 0,
	      "attributes survive");

	/* A big directory, committed. */
	ns_attr big;
	REQUIRE(ns_mkdir_path(n, "/big", 0755, &big) == 0, "mkdir big");
	for (int i = 0; i < 2000; i++) {
		char p[64];
		snprintf(p, sizeof(p), "/big/file-%05d", i);
		if (!put_file(n, p, 5000 + (uint64_t)i, 64)) {
			CHECK(0, "put %s", p);
			break;
		}
	}
	REQUIRE(ns_commit(n, &e) == 0, "commit: %s", bks_errmsg(&e, -1));
	ns_stats nst;
	ns_get_stats(n, &nst);
	CHECK(nst.dirs_dirty == 0, "flushed");
	ns_close(n);
	store_close(s);
	n = open_ns(paths, &s);
	REQUIRE(n, "reopen 2");
	int cnt = 0;
	CHECK(ns_readdir(n, big.id, NULL, count_cb, &cnt) == 0 && cnt == 2000, "%d entries", cnt);
	CHECK(file_is(n, "/big/file-01234", 6234, 64), "a file in the big dir");
	printf("ok - syncs survive a crash; 2000 entries in one directory\n");

	/* Hard links: counts after link, unlink, rename over one name, ns_link_new over
	 * one name; the object goes with its last name. */
	ns_attr ld, sd, la, lb;
	store_obj_info in2;
	REQUIRE(ns_mkdir_path(n, "/links", 0755, &ld) == 0, "mkdir /links");
	CHECK(ld.nlink == 2, "an empty directory has nlink 2, not %u", ld.nlink);
	REQUIRE(ns_mkdir(n, ld.id, "sub", 0755, 0, 0, &sd) == 0, "mkdir /links/sub");
	CHECK(ns_getattr(n, ld.id, &la) == 0 && la.nlink == 3, "one subdirectory: nlink 3 (%u)",
	      la.nlink);
	uint64_t lf = put_file(n, "/links/a", 11, 5000);
	REQUIRE(lf, "put /links/a");
	CHECK(ns_link(n, lf, ld.id, "b", &la) == 0 && la.id == lf && la.nlink == 2 &&
	      la.type == NS_FILE, "link: nlink 2");
	CHECK(ns_getattr(n, ld.id, &la) == 0 && la.nlink == 3 && la.size == 3,
	      "a file's second name is no subdirectory");
	REQUIRE(ns_getattr(n, lf, &la) == 0, "getattr a");
	int64_t ct0 = la.ctime_ns;
	nanosleep(&(struct timespec){.tv_nsec = 2000000}, NULL); /* ctime must move */
	CHECK(ns_link(n, lf, sd.id, "c", &la) == 0 && la.nlink == 3 && la.ctime_ns > ct0,
	      "a name in another dir: nlink 3, ctime moved");
	CHECK(file_is(n, "/links/sub/c", 11, 5000), "the third name reads the same bytes");
	CHECK(ns_link(n, lf, ld.id, "b", NULL) == -EEXIST, "link over a name");
	CHECK(ns_link(n, lf, ld.id, "sub", NULL) == -EEXIST, "link over a directory's name");
	CHECK(ns_link(n, sd.id, ld.id, "d", NULL) == -EPERM, "link to a directory");
	CHECK(ns_link(n, lf + 100000, ld.id, "d", NULL) == -ENOENT, "link to nothing");
	CHECK(ns_link(n, lf, lf, "d", NULL) == -ENOTDIR, "link into a file");
	int64_t ct = la.ctime_ns;
	nanosleep(&(struct timespec){.tv_nsec = 2000000}, NULL); /* ctime must move */
	CHECK(ns_unlink(n, ld.id, "a") == 0 && ns_getattr(n, lf, &la) == 0 && la.nlink == 2 &&
	      la.ctime_ns > ct && file_is(n, "/links/b", 11, 5000),
	      "unlink one of three names: nlink 2 (%u), ctime moved, content there", la.nlink);
	uint64_t xf = put_file(n, "/links/x", 12, 100);
	REQUIRE(xf, "put /links/x");
	CHECK(ns_rename(n, ld.id, "x", ld.id, "b", 0) == 0 && ns_getattr(n, lf, &la) == 0 &&
	      la.nlink == 1 && file_is(n, "/links/sub/c", 11, 5000) &&
	      file_is(n, "/links/b", 12, 100), "rename over one of two names: nlink 1 (%u)",
	      la.nlink);
	CHECK(ns_link(n, xf, sd.id, "y", &la) == 0 && la.nlink == 2, "link x as sub/y");
	uint64_t nf;
	REQUIRE(store_put(s, "new", 3, &nf) == 0, "put");
	CHECK(ns_link_new(n, sd.id, "y", nf, 1, 0644, 0, 0, 0, NULL) == 0 &&
	      ns_getattr(n, xf, &la) == 0 && la.nlink == 1 && file_is(n, "/links/b", 12, 100) &&
	      ns_resolve(n, "/links/sub/y", &lb) == 0 && lb.id == nf,
	      "ns_link_new over one of two names");
	CHECK(ns_link(n, lf, ld.id, "a2", NULL) == 0 &&
	      ns_rename(n, ld.id, "a2", sd.id, "c", 0) == 0 && ns_getattr(n, lf, &la) == 0 &&
	      la.nlink == 2 && ns_lookup(n, ld.id, "a2", NULL) == 0,
	      "rename onto another name of the same file: nothing done");
	CHECK(ns_unlink(n, sd.id, "c") == 0 && ns_getattr(n, lf, &la) == 0 && la.nlink == 1,
	      "one name left");
	/* The record keeps counting removed names until their directories are written
	 * (fs/ns.c drop_file: a commit must never count fewer names than it holds). */
	CHECK(store_stat(s, lf, &in2) == 0 && in2.attr.nlink == 4,
	      "before a flush the record counts 4 names (%u)", in2.attr.nlink);
	REQUIRE(ns_flush(n) == 0, "flush");
	CHECK(store_stat(s, lf, &in2) == 0 && in2.attr.nlink == 1 &&
	      ns_getattr(n, lf, &la) == 0 && la.nlink == 1, "after it 1 (%u)", in2.attr.nlink);
	CHECK(ns_unlink(n, ld.id, "a2") == 0 && store_stat(s, lf, &in2) == -ENOENT,
	      "deleted with its last name");
	/* -EMLINK: the record says NS_LINK_MAX names (cheaper than making them). */
	REQUIRE(ns_flush(n) == 0 && store_stat(s, xf, &in2) == 0 && in2.attr.nlink == 1,
	        "stat x");
	in2.attr.nlink = NS_LINK_MAX;
	REQUIRE(store_setattr(s, xf, &in2.attr) == 0, "setattr");
	CHECK(ns_link(n, xf, ld.id, "many", NULL) == -EMLINK, "link past NS_LINK_MAX");
	in2.attr.nlink = NS_LINK_MAX - 1;
	REQUIRE(store_setattr(s, xf, &in2.attr) == 0, "setattr");
	CHECK(ns_link(n, xf, ld.id, "many", &la) == 0 && la.nlink == NS_LINK_MAX,
	      "the last link allowed");
	CHECK(ns_unlink(n, ld.id, "many") == 0 && ns_flush(n) == 0, "unlink many");
	REQUIRE(store_stat(s, xf, &in2) == 0 && in2.attr.nlink == NS_LINK_MAX - 1, "stat x");
	in2.attr.nlink = 1;
	REQUIRE(store_setattr(s, xf, &in2.attr) == 0, "setattr");
	printf("ok - hard links: counts after link, unlink, rename and ns_link_new over a name\n");

	/* Symbolic links and ns_create. */
	CHECK(ns_symlink(n, ld.id, "sl", "../target/file", 0, 1000, 1001, &la) == 0 &&
	      la.type == NS_SYMLINK && la.mode == 0777 && la.size == 14 && la.nlink == 1 &&
	      la.uid == 1000 && la.gid == 1001, "symlink");
	uint64_t slid = la.id;
	CHECK(ns_symlink(n, ld.id, "sl", "x", 0, 0, 0, NULL) == -EEXIST, "symlink over a name");
	CHECK(ns_symlink(n, ld.id, "e", "", 0, 0, 0, NULL) == -EINVAL, "empty target");
	char tgt[NS_SYMLINK_MAX + 2], rb[NS_SYMLINK_MAX + 1];
	memset(tgt, 'p', sizeof(tgt));
	tgt[NS_SYMLINK_MAX + 1] = 0;
	CHECK(ns_symlink(n, ld.id, "e", tgt, 0, 0, 0, NULL) == -ENAMETOOLONG, "4097-byte target");
	tgt[NS_SYMLINK_MAX] = 0;
	tgt[0] = '/';
	CHECK(ns_symlink(n, ld.id, "long", tgt, 0700, 0, 0, &lb) == 0 && lb.mode == 0700 &&
	      lb.size == NS_SYMLINK_MAX, "4096-byte target");
	size_t rl = 0;
	CHECK(ns_readlink(n, lb.id, rb, sizeof(rb), &rl) == 0 && rl == NS_SYMLINK_MAX &&
	      !strcmp(rb, tgt), "readlink of the long one");
	CHECK(ns_readlink(n, slid, rb, 15, &rl) == 0 && rl == 14 &&
	      !strcmp(rb, "../target/file"), "readlink");
	CHECK(ns_readlink(n, slid, rb, 14, &rl) == -ENAMETOOLONG && rl == 14,
	      "readlink into a buffer without room for the NUL");
	CHECK(ns_readlink(n, xf, rb, sizeof(rb), &rl) == -EINVAL, "readlink of a file");
	CHECK(ns_readlink(n, ld.id, rb, sizeof(rb), &rl) == -EINVAL, "readlink of a directory");
	CHECK(ns_resolve(n, "/links/sl/x", &la) == -ENOTDIR, "a symlink is not followed");
	CHECK(ns_link(n, slid, sd.id, "sl2", &la) == 0 && la.nlink == 2 && la.type == NS_SYMLINK,
	      "a hard link to a symlink");
	CHECK(ns_create(n, ld.id, "new", 0640, 5, 6, 0, &la) == 0 && la.type == NS_FILE &&
	      la.size == 0 && la.mode == 0640 && la.uid == 5 && la.gid == 6 && la.nlink == 1,
	      "create");
	CHECK(ns_create(n, ld.id, "new", 0600, 0, 0, 1, NULL) == -EEXIST, "exclusive create");
	CHECK(ns_create(n, ld.id, "sub", 0600, 0, 0, 1, NULL) == -EEXIST,
	      "exclusive create over a directory");
	CHECK(ns_create(n, ld.id, "new", 0600, 0, 0, 0, &lb) == 1 && lb.id == la.id &&
	      lb.mode == 0640, "unchecked create returns the existing file as it is");
	CHECK(ns_create(n, ld.id, "sub", 0600, 0, 0, 0, NULL) == -EISDIR,
	      "unchecked create over a directory");
	CHECK(ns_create(n, ld.id, "sl", 0600, 0, 0, 0, NULL) == -EEXIST,
	      "unchecked create over a symlink");
	/* Entry types follow the object over renames and ns_link_new. */
	REQUIRE(ns_symlink(n, ld.id, "s3", "three", 0, 0, 0, NULL) == 0, "symlink s3");
	CHECK(ns_rename(n, ld.id, "s3", ld.id, "new", 0) == 0, "symlink over a file");
	REQUIRE(ns_symlink(n, ld.id, "s4", "four", 0, 0, 0, NULL) == 0, "symlink s4");
	REQUIRE(store_put(s, "file", 4, &nf) == 0, "put");
	CHECK(ns_link_new(n, ld.id, "s4", nf, 1, 0644, 0, 0, 0, NULL) == 0,
	      "ns_link_new over a symlink");
	static const struct { const char *name; uint32_t type; } want_types[] = {
		{"b", NS_FILE}, {"long", NS_SYMLINK}, {"new", NS_SYMLINK}, {"s4", NS_FILE},
		{"sl", NS_SYMLINK}, {"sub", NS_DIR}};
	for (int round = 0; round < 2; round++) {
		struct types ty = {0};
		CHECK(ns_readdir(n, ld.id, NULL, collect_types, &ty) == 0 && ty.n == 6,
		      "round %d: %d entries in /links", round, ty.n);
		for (int i = 0; i < 6 && i < ty.n; i++)
			CHECK(!strcmp(ty.name[i], want_types[i].name) && ty.type[i] == want_types[i].type,
			      "round %d: entry %d is %s type %u", round, i, ty.name[i], ty.type[i]);
		CHECK(ns_resolve(n, "/links/new", &la) == 0 && la.type == NS_SYMLINK &&
		      ns_readlink(n, la.id, rb, sizeof(rb), NULL) == 0 && !strcmp(rb, "three"),
		      "round %d: the renamed symlink", round);
		CHECK(ns_resolve(n, "/links/sub/sl2", &la) == 0 && la.id == slid && la.nlink == 2 &&
		      ns_readlink(n, slid, rb, sizeof(rb), &rl) == 0 && rl == 14 &&
		      !strcmp(rb, "../target/file"), "round %d: the symlink's second name", round);
		CHECK(ns_resolve(n, "/links", &la) == 0 && la.nlink == 3, "round %d: /links nlink %u",
		      round, la.nlink);
		CHECK(ns_resolve(n, "/links/b", &la) == 0 && la.id == xf && la.nlink == 1 &&
		      file_is(n, "/links/b", 12, 100), "round %d: /links/b", round);
		if (round == 0) {
			REQUIRE(ns_commit(n, &e) == 0, "commit: %s", bks_errmsg(&e, -1));
			ns_close(n);
			store_close(s);
			n = open_ns(paths, &s);
			REQUIRE(n, "reopen 3");
		}
	}
	CHECK(ns_unlink(n, ld.id, "sl") == 0 && ns_getattr(n, slid, &la) == 0 && la.nlink == 1,
	      "unlink one name of the symlink");
	CHECK(ns_unlink(n, sd.id, "sl2") == 0 && store_stat(s, slid, &in2) == -ENOENT,
	      "the symlink goes with its last name");
	printf("ok - symlinks (readlink, survive commit + reopen), create, readdir types\n");

	/* The crash story at fs/ns.c drop_file: the store commits by itself (a writer's
	 * auto-commit does not flush the namespace) after one of two names was removed
	 * but before its directory was written, then a crash. Both names are back; were
	 * the count 1, removing one would delete the file the other still names. */
	ns_attr cd;
	REQUIRE(ns_mkdir(n, ld.id, "crash", 0755, 0, 0, &cd) == 0, "mkdir crash");
	uint64_t cf = put_file(n, "/links/crash/one", 21, 3000);
	REQUIRE(cf && ns_link(n, cf, cd.id, "two", NULL) == 0, "two names");
	REQUIRE(ns_commit(n, &e) == 0, "commit: %s", bks_errmsg(&e, -1));
	CHECK(ns_unlink(n, cd.id, "one") == 0 && ns_getattr(n, cf, &la) == 0 && la.nlink == 1,
	      "unlink one of two");
	REQUIRE(store_commit(s, &e) == 0, "the store's own commit: %s", bks_errmsg(&e, -1));
	ns_close(n);
	store_close(s); /* crash */
	n = open_ns(paths, &s);
	REQUIRE(n, "reopen 4");
	CHECK(ns_resolve(n, "/links/crash/one", &la) == 0 && la.id == cf &&
	      ns_resolve(n, "/links/crash/two", &lb) == 0 && lb.id == cf && lb.nlink == 2,
	      "both names back, counted (nlink %u)", lb.nlink);
	CHECK(ns_unlink(n, cd.id, "one") == 0 && file_is(n, "/links/crash/two", 21, 3000),
	      "removing one keeps the file of the other");
	CHECK(ns_unlink(n, cd.id, "two") == 0 && store_stat(s, cf, &in2) == -ENOENT,
	      "and it goes with the last");
	printf("ok - a commit between an unlink and its directory's rewrite loses no file\n");

	/* Damaged directory bytes. */
	uint64_t parent;
	uint8_t junk[64] = {'B', 'K', 'S', 'D', 1, 0, 0, 0, 5, 0, 0, 0};
	CHECK(ns_dir_parse(junk, sizeof(junk), &parent, NULL, NULL) == -EINVAL,
	      "count past the end refused");
	/* docs/format.md: no magic is ENOENT, another version EPROTO. */
	junk[0] = 'X';
	CHECK(ns_dir_parse(junk, sizeof(junk), &parent, NULL, NULL) == -ENOENT, "no magic");
	CHECK(ns_dir_parse(junk, 2, &parent, NULL, NULL) == -ENOENT, "too short for a magic");
	junk[0] = 'B';
	junk[4] = 3;
	CHECK(ns_dir_parse(junk, sizeof(junk), &parent, NULL, NULL) == -EPROTO, "version 3");
	/* Version 2 (pages) is known: 64 bytes are not a whole page. */
	junk[4] = 2;
	CHECK(ns_dir_parse(junk, sizeof(junk), &parent, NULL, NULL) == -EINVAL,
	      "version 2 shorter than a page");
	/* A plain store object is not the namespace's: neither stat nor setattr. */
	uint64_t plain;
	REQUIRE(store_put(s, junk, 10, &plain) == 0, "put");
	ns_attr pa = {.mode = 0600};
	CHECK(ns_getattr(n, plain, &pa) == -ENOENT, "getattr of a plain object");
	CHECK(ns_setattr(n, plain, &pa, NS_SET_MODE) == -ENOENT, "setattr of a plain object");
	printf("ok - damaged directory bytes refused\n");

	/* The store's automatic commit (auto_commit_bytes, inside a large write) takes
	 * the changed directories with it: an unlinked file's entry must not come back
	 * after a crash pointing at the object that commit deleted. */
	ns_close(n);
	store_close(s);
	store_params sp;
	store_params_default(&sp);
	sp.auto_commit_bytes = 1u << 20;
	n = open_ns_p(paths, &s, &sp);
	REQUIRE(n, "reopen with a small auto_commit_bytes");
	ns_attr ad, av;
	REQUIRE(ns_mkdir(n, ns_root(n), "auto", 0755, 0, 0, &ad) == 0, "mkdir /auto");
	uint64_t victim = put_file(n, "/auto/victim", 31, 5000);
	REQUIRE(victim && ns_commit(n, &e) == 0, "put and commit");
	REQUIRE(ns_unlink(n, ad.id, "victim") == 0, "unlink");
	uint64_t txg = pool_txg(store_pool(s));
	uint64_t bigf = put_file(n, "/auto/big", 32, 3u << 20); /* passes the threshold */
	CHECK(bigf && pool_txg(store_pool(s)) > txg, "the big put committed by itself");
	ns_close(n);
	store_close(s); /* crash */
	n = open_ns(paths, &s);
	REQUIRE(n, "reopen 5");
	struct types at = {0};
	/* (big was linked after the commit and never synced: the crash took it.) */
	CHECK(ns_resolve(n, "/auto", &av) == 0 &&
	      ns_readdir(n, av.id, NULL, collect_types, &at) == 0 && at.n == 0,
	      "the unlinked file stays gone: no entry left pointing at a deleted object "
	      "(%d entries, first '%s')", at.n, at.name[0]);
	CHECK(store_stat(s, victim, &in2) == -ENOENT, "its object is deleted");
	printf("ok - the store's own commits take the changed directories with them\n");
	ns_close(n);
	store_close(s);
	return tu_finish();
}
