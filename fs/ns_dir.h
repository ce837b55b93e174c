/* fs/ns_dir.h: private to fs/ns.c, fs/ns_dir.c and fuzz/fuzz-dir.c: a directory in
 * memory, and its object's bytes. */
#ifndef BKS_NS_DIR_H
#define BKS_NS_DIR_H

#include <stddef.h>
#include <stdint.h>

#include "fs/ns.h"

/* Directory objects (docs/format.md "Directories"). Version 1 is one sorted list,
 * rewritten whole; version 2 is fixed-size pages, a header page then leaf pages each
 * holding a sorted run of entries, chained in name order, so a change rewrites only
 * the pages it touched (store_write_at_class) instead of the whole directory. A
 * directory is written as version 1 while that fits in one page, and as version 2
 * from then on (converted by one whole rewrite). */
#define DIR_VERSION 1u
#define DIR_VERSION_PAGED 2u
#define DIR_HDR 24           /* magic 4, version 4, count 4, zero 4, parent 8 */
#define DIR_ENT_FIXED 12     /* id 8, type 1, zero 1, name length 2 */
#define DIR_MAX_BYTES (256u << 20)
#define DIR_PAGE 4096u       /* version 2 page size (see docs/format.md for the choice) */
#define PG_HDR 16            /* magic 4, count 2, used 2, page number 4, next 4 */
#define PG_SUM 8             /* the last 8 bytes: XXH3-64 of the rest, seeded by page number */
#define PG_CAP (DIR_PAGE - PG_HDR - PG_SUM) /* bytes of entries in a leaf page */
#define HDR2_END 40          /* header page: v1's 24, page size 4, pages 4, first leaf 4,
                              * first free 4; zeros up to the checksum */
#define LOAD_FILL (PG_CAP * 3 / 4) /* a version 1 directory's entries per page, loaded */

struct nent {
	char *name;              /* NUL-terminated, nlen bytes */
	uint32_t nlen;
	uint32_t type;
	uint64_t id;
};

/* A leaf page in memory: the same entries as its page in the object. */
struct npage {
	uint32_t pgno;           /* its page in a version 2 object; 0 before the first */
	uint32_t used;           /* bytes its entries take encoded (<= PG_CAP) */
	size_t n, cap;
	int dirty;               /* to be written (its entries or its next changed) */
	struct nent *e;          /* sorted by name (bytewise) */
};

/* A directory in memory: its leaf pages in name order (none empty), so a lookup is
 * a binary search over the pages' first names then one within a page, O(log n), and
 * an insert or a removal moves at most one page's entries. */
struct ndir {
	uint64_t id, parent;
	struct npage **pg;
	size_t npg, pgcap;
	struct fpage { uint32_t pgno, dirty; } *fl; /* free pages of the object, head first */
	size_t nfl, flcap;
	uint32_t npages;         /* pages of the version 2 object, the header included */
	size_t n;                /* entries */
	size_t nsub;             /* entries that are directories (its nlink is 2 + nsub) */
	int v2;                  /* the object is version 2: flushes write pages */
	int whole;               /* the next flush rewrites the object whole */
	int hdirty;              /* the header page changed (parent, first leaf or free, pages) */
	int dirty;               /* something to write at the next flush */
	struct ndir *hnext;
};

/* Position of an entry: page index (in name order) and slot. */
struct pos {
	size_t p, i;
};
#define ENT(d, at) ((d)->pg[(at).p]->e[(at).i])

typedef int (*ent_fn)(void *ctx, const char *name, size_t nlen, uint64_t id, uint32_t type);
/* Where nsd_write_pages puts a page: the store, or a buffer (fuzz/fuzz-dir.c). */
typedef int (*page_out_fn)(void *ctx, uint64_t off, const void *b, size_t len);

/* Free a directory in memory and its pages. */
void nsd_free(struct ndir *d);
/* Decode a directory object's bytes into d (empty, id set): -ENOMEM, or
 * ns_dir_parse's errors. */
int nsd_decode(struct ndir *d, const uint8_t *b, size_t len);

/* Edits (the directory is marked dirty; pages split, empty and free as needed). */
size_t nsd_ent_bytes(size_t nl);           /* bytes an entry of an nl-byte name takes */
/* 1 found (*at is the entry), 0 not (*at is where it would go), by binary search. */
int nsd_find(const struct ndir *d, const char *name, size_t nl, struct pos *at);
int nsd_insert(struct ndir *d, struct pos at, const char *name, size_t nl, uint64_t id,
               uint32_t type);             /* at: from nsd_find; 0 or -ENOMEM */
void nsd_remove(struct ndir *d, struct pos at);
void nsd_set(struct ndir *d, struct pos at, uint64_t id, uint32_t type);
void nsd_pos_norm(const struct ndir *d, struct pos *at); /* past a page's end: the next's first */

/* Encoding: a whole object (version 1: one list; version 2: pages, renumbered), or a
 * version 2 directory's changed pages through out (leaves, free pages, then the
 * header; *pages counts them). nsd_clean marks everything written. */
size_t nsd_v1_len(const struct ndir *d);
int nsd_encode_v1(const struct ndir *d, uint8_t **out, size_t *outlen);
int nsd_encode_v2(struct ndir *d, uint8_t **out, size_t *outlen);
int nsd_write_pages(struct ndir *d, page_out_fn out, void *ctx, uint64_t *pages);
void nsd_clean(struct ndir *d);
void nsd_seal_page(uint8_t *b, uint32_t pgno); /* its checksum (PG_SUM), seeded by pgno */

#endif /* BKS_NS_DIR_H */
