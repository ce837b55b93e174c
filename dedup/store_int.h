/* dedup/store_int.h: private to the store's files (store*.c, cmap.c). */
#ifndef BKS_STORE_INT_H
#define BKS_STORE_INT_H

#include "dedup/barray.h"
#include "dedup/fp.h"
#include "dedup/fpidx.h"
#include "dedup/ingest.h"
#include "dedup/store.h"
#include "storage/ilog.h"

/* The store's pool: for the store's own files and white-box tests and benchmarks
 * that count rows and transaction groups. */
pool *store_pool(store *s);

#define OBJ_REC 128
#define OBJ_INUSE 1u
/* Map flags (object record offset 100, docs/format.md "Object table record"). */
#define OBJ_M_HOLES 1u /* the map may hold holes: its mapped bytes may be < size */

/* Content map blocks (docs/format.md "Content maps"). */
#define MAP_HDR 16
#define MAP_LEAF_ENT 88    /* offset 8, length 4, length high 4, fp 32, pointer 40 */
#define MAP_NODE_ENT 48    /* first offset 8, pointer 40 */
#define MAP_MAX_DEPTH 8

typedef struct obj_rec {
	uint32_t flags;
	uint32_t depth;        /* 0: empty object; else the root points to level depth-1 */
	uint32_t mflags;       /* OBJ_M_*; zero in records written before holes were
	                        * counted apart (such an object counts at its size) */
	uint64_t size;
	uint64_t nextents;
	uint64_t created_txg;
	uint64_t gen;          /* unique with the id forever (see store_obj_info) */
	seg_ptr root;
	store_attr attr;
} obj_rec;

void obj_rec_decode(const uint8_t *b, obj_rec *o);
void obj_rec_encode(const obj_rec *o, uint8_t *b);

/* Map writer: extents arrive in order; blocks are written as they fill. */
typedef struct map_writer {
	uint32_t block;
	uint8_t *lvl[MAP_MAX_DEPTH + 1];   /* [0] leaf being filled, [1..] interior */
	uint32_t cnt[MAP_MAX_DEPTH + 1];
	uint64_t first[MAP_MAX_DEPTH + 1];
	int top;                            /* highest level that holds an entry */
	uint64_t nextents;
	seg_ptr *written;                   /* every block written (GC protection) */
	size_t nwritten, capwritten;
} map_writer;

int map_writer_init(map_writer *m, uint32_t block);
void map_writer_free(map_writer *m);
int map_add(map_writer *m, pool *pl, uint64_t off, uint32_t len, const uint8_t *fp,
            const seg_ptr *p);
/* Finish: *root and *depth describe the map (depth 0 for an empty object). */
int map_finish(map_writer *m, pool *pl, seg_ptr *root, uint32_t *depth);

/* One leaf extent. A hole (leaf version 2) stores nothing and reads as zeros: null
 * pointer, zero fingerprint, and a length that may exceed 32 bits. */
typedef struct map_ext {
	uint64_t off;
	uint64_t len;
	uint8_t fp[FP_LEN];
	seg_ptr p;
} map_ext;

static inline int map_ext_is_hole(const map_ext *e)
{
	return seg_ptr_is_null(&e->p);
}

/* Check a map block's bytes (a leaf or a node) against what its parent promised:
 * kind, entry count matching the length, first offset, entries in order. */
int map_block_parse(const uint8_t *b, size_t len, int leaf, uint64_t first, uint32_t *n);

/* Map reader: find the extent holding offset off. The last leaf is kept decoded, so
 * sequential reads touch each leaf once. */
typedef struct map_reader {
	uint32_t block;
	uint8_t *buf;
	uint8_t *leaf;         /* decoded copy of the current leaf block */
	uint32_t leaf_n;
	uint64_t leaf_first, leaf_end;
	uint64_t obj;          /* the object the leaf belongs to (0: none) */
	uint64_t obj_gen;      /* ...and its generation ((id, gen) is never reused) */
} map_reader;

int map_reader_init(map_reader *r, uint32_t block);
void map_reader_free(map_reader *r);
void map_reader_forget(map_reader *r);
/* Fill *e with the extent covering off in object (id, rec). 0, -ENOENT past the
 * end, -EIO/-EINVAL for a damaged map. */
int map_find(map_reader *r, pool *pl, uint64_t id, const obj_rec *o, uint64_t off,
             map_ext *e);
/* Visit every extent of an object's map, in order; and every map block pointer. */
int map_walk(pool *pl, const obj_rec *o, uint32_t block,
             int (*ext_fn)(void *ctx, const map_ext *e),
             int (*blk_fn)(void *ctx, const seg_ptr *p), void *ctx);

/* Change a map in place: replace the extents covering [a, b) (boundaries of
 * extents; b <= o->size) by ne[0..n), which cover [a, a + their total length): the
 * same range, or any length when b == o->size (the object's end moves; a == b ==
 * o->size appends). Copy-on-write: only the blocks holding a replaced extent and the
 * blocks above them are read and rewritten (a leaf that overflows splits; one left
 * empty goes away); o->root, o->depth and o->nextents are updated, o->size is the
 * caller's. *dmapped: the change in the map's mapped bytes (bytes in chunk extents,
 * holes excluded: the new extents' minus the replaced ones', so the store's logical
 * bytes stay exact without walking the map). 0 or -errno (then nothing the caller
 * sees changed; blocks written are garbage). */
int map_splice(pool *pl, obj_rec *o, uint32_t block, uint64_t a, uint64_t b,
               const map_ext *ne, size_t n, int64_t *dmapped);
/* The same for several ranges in one pass (store_write_batch): rg[k] replaces the
 * extents covering [a, b) by ne[first .. first + n). Ranges sorted and disjoint (one
 * may end where the next starts); only the last may append (a == b == o->size).
 * Every block is read and rewritten once however many of its extents change. */
typedef struct map_range {
	uint64_t a, b;
	size_t first, n;
} map_range;
int map_splice_v(pool *pl, obj_rec *o, uint32_t block, const map_range *rg, size_t nrg,
                 const map_ext *ne, int64_t *dmapped);

/* Metadata compaction: rewrite every block of the map for which pred is true, and
 * the blocks above it, to new places (copy-on-write up to o->root); blocks not on
 * such a path are neither read nor written, except the interior nodes that must be
 * read to find them. 1 when o->root changed (the caller stores the record), 0 when
 * nothing moved, -errno. Adds the blocks written to *moved and their bytes to *bytes. */
int map_relocate(pool *pl, obj_rec *o, uint32_t block,
                 int (*pred)(void *ctx, const seg_ptr *p), void *ctx, uint64_t *moved,
                 uint64_t *bytes);

/* A small set of 64-bit keys (segment ids) — open addressing. */
typedef struct u64set {
	uint64_t *k;
	uint64_t cap, n;
} u64set;
int u64set_add(u64set *s, uint64_t key);
int u64set_has(const u64set *s, uint64_t key);
void u64set_clear(u64set *s);
void u64set_free(u64set *s);

struct store_writer {
	store *s;
	cdc *c;
	uint8_t *chunk;        /* bytes of the chunk being assembled (the carry) */
	uint8_t *first;        /* the carry once cut: the first chunk of a round */
	uint32_t clen;
	uint64_t off;          /* logical bytes so far */
	map_writer mw;
	u64set refs;           /* data segments this object refers to */
	int failed;
	int space;             /* enum pool_space of its rows (store_put_begin_class) */
	uint64_t n_chunks, n_new, new_bytes, new_stored; /* store_put_get_stats */
	fpidx_pf *pf;          /* store_put_prefetch's (the writer's thread only) */
	struct store_writer *next, *prev; /* the store's open writers */
};

typedef struct gc_state gc_state;
typedef struct defer_state defer_state;

struct store {
	pool *pl;
	store_params p;
	barray *objtab;
	fpidx *idx;
	fp_ctx *fpc;
	map_reader mr;
	uint8_t *cbuf;          /* one decoded chunk (cdc max) */
	uint8_t cbuf_fp[FP_LEN];
	int cbuf_valid;
	struct ra *ra;          /* read-ahead: streams and helpers (store_read.c) */
	uint64_t next_obj;
	uint64_t objects;
	uint64_t logical;       /* bytes in extents of the objects in use, holes excluded
	                         * (store_stats.logical_bytes): kept exact at every change */
	uint64_t unique_chunks, unique_raw, stored;
	uint64_t bytes_since_commit;
	double last_live_fraction;
	store_writer *writers;
	gc_state *gc;
	ingest *ing;           /* created with the first writer */
	int (*precommit)(void *ctx); /* before an automatic commit (store_set_precommit) */
	void *precommit_ctx;
	int in_precommit;
	/* intent log (store_ilog.c) */
	ilog *log;
	u64set log_objs;       /* objects put or deleted since the last record */
	size_t log_rows_done;  /* pool_new_rows() before this index are in a record */
	u64set log_listed;     /* segments after it already in a record */
	struct { uint64_t seg_id; uint32_t n; } log_oseg[2]; /* open segments' items
	                        * already copied into a record ([0] data, [1] meta) */
	int log_overflow;      /* could not track a change: the next sync commits */
	uint64_t log_syncs, log_full_commits, log_replayed;
	/* automatic collection (store_set_gc_auto; store_gc.c) */
	double gc_auto_free, gc_auto_min_live;
	uint64_t gc_last_start_seg;  /* pool_next_seg_id() when a collection last started */
	uint64_t gc_auto_started;
	int gc_auto_running;         /* the running collection is one the store started */
	/* deferred compression (store_defer.c) */
	defer_state *defer;
	int defer_pending;           /* a deferred write since the last cycle that found
	                              * nothing, or an open (segments may be flagged) */
	int defer_level;             /* the pass's zstd level (0: the store's, at least 1) */
	uint64_t defer_noted, defer_noted_n; /* deferred raw bytes, chunks (this process) */
	uint64_t defer_horizon;      /* pool_next_seg_id() at the last commit */
	uint64_t defer_commits;      /* commits so far (this process): a cycle that found
	                              * no room waits for the next */
	uint64_t defer_open_seg;     /* pool_next_seg_id() at the open: segments below
	                              * were written by an earlier run (not in noted) */
};

/* store.c */
int store_obj_get(store *s, uint64_t id, obj_rec *o);

/* store_write.c */
/* The mapped bytes of an object (holes excluded): its size when its record says the
 * map holds no hole, else a walk of its map (a damaged map: what could be walked, a
 * lower bound). For a delete or a whole replace, which drop the whole map. */
uint64_t store_obj_mapped(store *s, const obj_rec *o);
/* s->logical -= n, never below zero: a build from before holes were counted apart
 * zeroes a record's map flags when it rewrites it, and such an object is then
 * subtracted at its size, more than it was counted. */
void store_logical_sub(store *s, uint64_t n);
/* Read an extent's chunk into out (>= e->len bytes): its pointer, or where the index
 * says the chunk is now (after GC moved it). */
int store_read_chunk(store *s, const map_ext *e, void *out);
/* Store the ingest engine's current round of chunks (look up, compress, append the
 * new ones); each span's loc then says where its chunk is. Adds to *nw. */
int store_round_store(store *s, store_put_stats *nw);
/* A write refers to segment seg_id (GC must not free it this round). */
void store_note_ref(store *s, store_writer *w, uint64_t seg_id);

/* store_read.c */
/* Drop object id's read-ahead streams (it changed or went; their memory goes). */
void store_ra_forget(store *s, uint64_t id);
void store_ra_free(store *s);
void store_ra_get_stats(const store *s, uint64_t *ahead, uint64_t *sync, uint64_t *streams,
                        uint64_t *fallbacks);

/* store_ilog.c */
void store_ilog_note_obj(store *s, uint64_t id);
void store_ilog_committed(store *s);
/* Apply the intent log's records after the last commit, and commit. Returns the
 * number of records (0: none), or -errno. */
int store_ilog_replay(store *s, bks_err *e);
/* Check a store record's layout (header, counts, the open segments' items adding up
 * to its length) before anything in it is used: 0, -EPROTO, -EINVAL. Pure (fuzzed). */
int store_logrec_check(const uint8_t *b, size_t len, uint32_t max_items);

/* store_defer.c */
/* A chunk of len bytes was stored SEG_RAW_DEFERRED. */
void store_defer_note(store *s, uint32_t len);
/* Is the data item at *p a deferred raw item (SEG_EF_DEFERRED)? 1 yes, 0 no (also for
 * a compressed item, and when its table cannot be read), -ENOMEM. */
int store_defer_item(store *s, const seg_ptr *p);
/* After a commit: segments below the counter now are committed. */
void store_defer_committed(store *s);
void store_defer_free(store *s);

/* store_gc.c */
void store_gc_note_ref(store *s, uint64_t seg_id);
void store_gc_free(store *s);
/* After a commit: start a collection if store_set_gc_auto says so. */
void store_gc_auto_commit(store *s);
/* In a sync: a few steps of the running collection. 1 when this call finished it
 * (the caller commits, so the freed rows become reusable), else 0. */
int store_gc_auto_sync(store *s);

#endif /* BKS_STORE_INT_H */
