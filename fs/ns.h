/* fs/ns.h: the namespace: directories, files, attributes, rename, over store objects.
 *
 * Every file, symbolic link and directory is a store object; its id and generation
 * are the persistent identity NFS file handles will carry, and its attributes (type,
 * mode, uid, gid, nlink, times) live in the store's object record. A directory's
 * content is a store object too: a sorted list of entries (name, id, type) and the
 * parent's id (docs/format.md "Directories"). A symbolic link's content is its target.
 *
 * Links: a file or a symbolic link may have several names (ns_link), in one directory
 * or several; its nlink counts them, and the object is deleted when the last name goes
 * (ns_unlink, a rename or ns_link_new replacing it). The object record drops a removed
 * name's count only at the next ns_flush, after the directory that held it was
 * written, so that no commit counts fewer names than its directories hold (a crash
 * can leave a count too high, a leak, never too low, a lost file; fs/ns.c
 * drop_file); ns_getattr reports the names there are now. A directory has exactly one name;
 * its nlink is reported as 2 + its subdirectories (computed from its entries, not
 * stored: the object record keeps 2). Directories are loaded on first use and kept
 * decoded in memory as sorted pages of entries (lookups O(log n)); changes mark the
 * pages they touch dirty and ns_flush() writes each dirty page once
 * (store_write_at_class on a paged, version 2 directory; a small one, version 1, is
 * rewritten whole), so a burst of creates costs one write per page touched at the
 * next sync or commit, not one of the whole directory. When ns_params.cache_dirs directories are
 * cached, the clean ones are dropped at the start of the next verb (never during
 * one, never a dirty one). Everything goes through the store's
 * transaction groups and intent log: ns_sync() makes an object and every namespace
 * change before it durable.
 *
 * The root directory is the first object of a formatted store.
 *
 * Names are 1..255 bytes, without '/' or NUL, not "." or "..". Paths are absolute,
 * '/'-separated, at most NS_PATH_MAX bytes; empty components are ignored.
 *
 * Threads: one caller at a time (the daemon's lock), as for the store.
 */
#ifndef BKS_NS_H
#define BKS_NS_H

#include <stddef.h>
#include <stdint.h>

#include "common/bks.h"
#include "dedup/store.h"

#define NS_NAME_MAX 255
#define NS_PATH_MAX 4096

typedef struct ns ns;

enum ns_type { NS_FILE = STORE_T_FILE, NS_DIR = STORE_T_DIR, NS_SYMLINK = STORE_T_SYMLINK };

#define NS_LINK_MAX 65000    /* names of one file (ns_link: -EMLINK past it) */
#define NS_SYMLINK_MAX 4096  /* bytes of a symbolic link's target */

typedef struct ns_attr {
	uint64_t id, gen;
	uint32_t type;           /* enum ns_type */
	uint32_t mode, uid, gid, nlink;
	uint64_t size;           /* files: bytes; symlinks: target bytes; directories: entries */
	int64_t mtime_ns, ctime_ns, atime_ns;
} ns_attr;

typedef struct ns_params {
	/* Directories kept decoded: at the start of a verb that finds this many cached,
	 * the clean ones are dropped (default 4096; 0 or 1 drops them at every verb,
	 * which tests use to exercise reloading). */
	uint32_t cache_dirs;
	/* A directory is written as version 1 (one list, rewritten whole) while that
	 * takes at most this many bytes, and as version 2 (pages, rewritten one by one)
	 * from then on, for good (default 4096, one page; 0 makes every directory written
	 * a paged one, which tests use). docs/format.md "Directories". */
	uint32_t dir_v1_max;
} ns_params;
void ns_params_default(ns_params *p);

/* Create the root directory in a store that holds no objects yet. */
int ns_format(store *s, uint32_t mode, bks_err *e);
/* Open the namespace of a formatted store (the store stays the caller's). ns_open
 * uses the defaults, as does ns_open_params with p NULL. */
int ns_open(store *s, ns **out, bks_err *e);
int ns_open_params(store *s, const ns_params *p, ns **out, bks_err *e);
void ns_close(ns *n); /* accepts NULL; does not flush */
uint64_t ns_root(const ns *n);
store *ns_store(ns *n);

/* Attributes of an object (a file, a symlink or a directory). -ENOENT (also for a
 * store object that is none of them). */
int ns_getattr(ns *n, uint64_t id, ns_attr *a);
/* Change mode, uid, gid and times (the others are the namespace's). -ENOENT as
 * ns_getattr. */
enum { NS_SET_MODE = 1, NS_SET_UID = 2, NS_SET_GID = 4, NS_SET_MTIME = 8, NS_SET_ATIME = 16 };
int ns_setattr(ns *n, uint64_t id, const ns_attr *a, unsigned mask);

/* Check a name; 0 or -EINVAL (-ENAMETOOLONG). */
int ns_name_ok(const char *name);

int ns_lookup(ns *n, uint64_t dir, const char *name, ns_attr *a);
/* Resolve an absolute path. -ENOENT, -ENOTDIR (a component is a file or a symlink:
 * the namespace never follows symlinks), -EINVAL. */
int ns_resolve(ns *n, const char *path, ns_attr *a);
/* The directory that holds path's last component, and that component. */
int ns_resolve_parent(ns *n, const char *path, uint64_t *dir, char name[NS_NAME_MAX + 1]);

/* Create a directory. -EEXIST if the name is taken. */
int ns_mkdir(ns *n, uint64_t dir, const char *name, uint32_t mode, uint32_t uid,
             uint32_t gid, ns_attr *out);
/* mkdir -p: every missing directory of path; -EEXIST only when path is a file. */
int ns_mkdir_path(ns *n, const char *path, uint32_t mode, ns_attr *out);

/* Create an empty regular file (mode & 07777, nlink 1). exclusive: -EEXIST if the name
 * exists; otherwise an existing file of that name is returned as it is (out filled)
 * and 1 is returned, a directory there gives -EISDIR and a symlink -EEXIST (NFSv3
 * UNCHECKED creates only reuse a regular file). 0 when created. */
int ns_create(ns *n, uint64_t dir, const char *name, uint32_t mode, uint32_t uid,
              uint32_t gid, int exclusive, ns_attr *out);
/* A symbolic link named name in dir pointing at target (1..NS_SYMLINK_MAX bytes,
 * stored as the object's content; never resolved by the namespace). mode 0 gives
 * 0777. -EEXIST if the name exists, -EINVAL for an empty target, -ENAMETOOLONG for a
 * longer one. */
int ns_symlink(ns *n, uint64_t dir, const char *name, const char *target, uint32_t mode,
               uint32_t uid, uint32_t gid, ns_attr *out);
/* The target of symlink id into buf (cap bytes, NUL-terminated), its length in *len
 * (len may be NULL; set to the target's length also on -ENAMETOOLONG). -EINVAL if id
 * is not a symlink, -ENAMETOOLONG if cap is too small, -ENOENT, -EIO. */
int ns_readlink(ns *n, uint64_t id, char *buf, size_t cap, size_t *len);
/* A hard link: a new name in dir for existing file (or symlink) id; its nlink + 1 and
 * its ctime now. Errors in this order: -ENOENT (id, or dir), -ENOTDIR, -EEXIST (the
 * name is taken), -EPERM (id is a directory), -EMLINK (id has NS_LINK_MAX names). */
int ns_link(ns *n, uint64_t id, uint64_t dir, const char *name, ns_attr *out);

/* Link an object just written (store_put_end) into dir as a file named name. An
 * existing file or symlink of that name is replaced (it loses that name: deleted with
 * its last one) when replace is set, else -EEXIST; a directory there gives -EISDIR.
 * The object's attributes become a file's with mode/uid/gid and mtime (0: now). */
int ns_link_new(ns *n, uint64_t dir, const char *name, uint64_t obj, int replace,
                uint32_t mode, uint32_t uid, uint32_t gid, int64_t mtime_ns, ns_attr *out);

/* Remove a name of a file or symlink (-EISDIR for a directory): its nlink - 1 and its
 * ctime now, deleted with its last name. Or an empty directory (rmdir; -ENOTEMPTY,
 * -ENOTDIR). The root cannot be removed (-EBUSY). */
int ns_unlink(ns *n, uint64_t dir, const char *name);
int ns_rmdir(ns *n, uint64_t dir, const char *name);

/* Rename, as rename(2). The target, if it exists, is replaced when neither it nor
 * the source is a directory (files and symlinks alike: the old object loses that
 * name, and is deleted with its last), or when it is an empty directory and the
 * source a directory (the old one is deleted); a non-empty directory there gives
 * -ENOTEMPTY, a type mismatch -EISDIR (file over directory) or -ENOTDIR (directory
 * over file), an existing target with noreplace -EEXIST. Moving a directory into
 * itself or below it: -EINVAL. The same name, or a target that is another name of
 * the source's object: 0, nothing done. A refusal (any of these errors, or -ENOENT,
 * -ENOMEM) changes nothing. */
int ns_rename(ns *n, uint64_t sdir, const char *sname, uint64_t ddir, const char *dname,
              int noreplace);

/* Entries of dir in name order (type: enum ns_type, NS_SYMLINK for symlinks),
 * starting after `after` (NULL or "": the first). fn returns 0 to go on, 1 to stop
 * (ns_readdir then returns 1), or -errno. fn may call the namespace (even change
 * dir); d and d->name are valid during the call only. */
typedef struct ns_dirent {
	const char *name;
	uint64_t id;
	uint32_t type;
} ns_dirent;
int ns_readdir(ns *n, uint64_t dir, const char *after,
               int (*fn)(void *ctx, const ns_dirent *d), void *ctx);

/* The parent of directory dir (the root's is the root): for NFS LOOKUP "..".
 * -ENOENT, -ENOTDIR. */
int ns_parent(ns *n, uint64_t dir, uint64_t *parent);

/* System directory: the root's entry NS_SYSTEM_NAME holds what the appliance keeps
 * for itself (daemon/lun.c: the LUNs). Every verb treats that name in the root as
 * absent (lookups, paths and removals: -ENOENT; creating it: -EACCES; ns_readdir
 * skips it), so NFS and the native protocol neither list nor reach it; the
 * directories and files below it are ordinary. ns_system_dir finds it, or makes it
 * (mode 0700) on first use: its id. -ENOTDIR if a file took the name before it was
 * reserved. */
#define NS_SYSTEM_NAME ".bkstor-system"
int ns_system_dir(ns *n, uint64_t *id);

/* Write every changed directory into the store, then the link counts of the names
 * they no longer hold. Directory rewrites take rows from the store's reserve
 * (dedup/pool.h "space"): ns_flush and ns_sync the share of deletes and the
 * collector, ns_commit the commit's, so a full store can still record deletes and
 * commit them (-ENOSPC only when that share is used up). */
int ns_flush(ns *n);
/* Durability: ns_flush, then store_sync(id) (the intent log) or store_commit. */
int ns_sync(ns *n, uint64_t id, bks_err *e);
int ns_commit(ns *n, bks_err *e);

typedef struct ns_stats {
	uint64_t dirs_cached, dirs_dirty, dir_rewrites, dir_loads;
	uint64_t cache_trims;    /* times clean directories were dropped */
	uint64_t dir_pages_written; /* version 2 directory pages written (whole ones too) */
} ns_stats;
void ns_get_stats(const ns *n, ns_stats *st);

/* Pure: decode a directory object's bytes, version 1 (one list) or 2 (pages), for
 * the fuzzer and the loader. Calls fn for each entry in name order; checks order,
 * names, lengths, and for version 2 every page's checksum and that each page is on
 * one chain once. -ENOENT no magic, -EPROTO another version, -ENOMEM, -EINVAL
 * anything else wrong (docs/format.md "Directories"). */
int ns_dir_parse(const uint8_t *b, size_t len, uint64_t *parent,
                 int (*fn)(void *ctx, const char *name, size_t nlen, uint64_t id,
                           uint32_t type),
                 void *ctx);

#endif /* BKS_NS_H */
