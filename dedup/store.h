/* dedup/store.h: the deduplicating chunk store: objects in, objects out.
 *
 * An object is a byte stream. Writing one cuts it into content-defined chunks
 * (FastCDC), fingerprints each (SHA-256), stores the chunks the store does not have
 * yet (zstd, in data segments written as whole array rows), and records the object's
 * content map: a tree of extent blocks (offset, length, fingerprint, where the chunk
 * is) kept on the array, so reading any range of a huge object touches only the map
 * blocks it needs. Objects are numbered; an (id, generation) pair is never reused.
 *
 * Durability: everything is in the transaction group being built until
 * store_commit() or store_sync() returns; a crash at any instant leaves the last
 * commit intact, plus what syncs since then wrote to the intent log (replayed by
 * store_open, which then commits).
 *
 * Garbage: deleting an object leaves its chunks in place; the collector
 * (store_gc_*) finds chunks no object references, copies the live chunks out of
 * mostly-dead segments, moves the live metadata blocks out of mostly-dead metadata
 * rows, and frees rows after a commit. It runs in steps between other
 * calls ("online") and never frees a chunk that a write since it started refers to.
 *
 * Threads: one call at a time (the daemon serializes with its own lock). The store
 * has helper threads of its own (store_params.threads): the ingest engine's, which
 * work only inside a call, and the read helpers, which go on between calls (see
 * "Reading").
 *
 * Reading: a sequential reader (reads that go on where the last one of the same
 * object ended; a read from 0 with more to come; any read of 256 KiB or more) gets a
 * read-ahead stream (dedup/store_read.c, docs/architecture.md "Read-ahead"): the
 * chunks ahead of it are read from the array in batches of rows and decompressed by
 * the read helpers before it asks; up to 16 streams, 4 per object, keyed by
 * (object, next offset), so separate calls such as NFS READs continue one and
 * several readers of one file keep one each. What the helpers touch between
 * and during calls: only their own job's buffers, the array (thread-safe) and their
 * zstd context, never the pool, the index, the maps or a stream; the caller hands a
 * job over under the read-ahead's mutex and takes it back when it is done. Bytes from
 * a helper are used only when they match the pointer's checksum, and a stream is
 * dropped as soon as its object's map root, size or generation differ from what it
 * was planned from (every change writes a new root), so a read never returns bytes
 * older than the last store_write_at, store_truncate, replace or delete. Memory: at
 * most 16 jobs of about 5 MiB per store, allocated as used, freed by store_close.
 */
#ifndef BKS_STORE_H
#define BKS_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "common/bks.h"
#include "dedup/chunker.h"
#include "dedup/ingest.h"
#include "dedup/pool.h"
#include "storage/array.h"

typedef struct store store;
typedef struct store_writer store_writer;

typedef struct store_params {
	pool_params pool;
	cdc_params cdc;          /* fixed when the store is created */
	uint64_t auto_commit_bytes; /* commit by itself after this much new data (0: never) */
	int threads;             /* CPU work of writes and reads: the caller and
	                          * threads - 1 helpers (0: one per online CPU; reads
	                          * have one helper more, at least two: see ra_get) */
} store_params;

void store_params_default(store_params *p);

/* Ownership: on success the store owns the array (store_close closes it; the caller
 * may still call the array's thread-safe verbs until then: status, background
 * steps); on failure the array is the caller's again, untouched by a close. */
int store_create(arr *a, const store_params *p, store **out, bks_err *e);
int store_open(arr *a, const store_params *p, store **out, bks_err *e);
/* Close without committing. */
void store_close(store *s); /* accepts NULL */

/* Room in the array as the store sees it: for status, "full" events and the
 * collector's own start (daemon/appl.c). */
typedef struct store_space {
	uint64_t rows;             /* rows of the array */
	uint64_t rows_free;        /* allocatable now */
	uint64_t reserve_total;    /* of those, kept for commits, deletes and the collector */
	uint32_t row_bytes;        /* data bytes a row holds */
	int full;                  /* new data is refused (store_space_full) */
} store_space;
void store_get_space(store *s, store_space *out);

/* --- writing an object --- */
/* -ENOSPC when the store is full (store_space_full): new data is refused before it
 * touches the rows kept for commits and the collector (pool.h, "space"). A writer
 * whose stream outgrows the space left fails with -ENOSPC too (abort it). */
int store_put_begin(store *s, store_writer **out);
/* A writer whose rows come from a class of the reserve (enum pool_space): for the
 * metadata that deletes and commits depend on (the namespace's directories:
 * POOL_SPACE_WORK when a delete rewrites one, POOL_SPACE_COMMIT when a commit
 * flushes them). Never for user data. */
int store_put_begin_class(store *s, int space, store_writer **out);
/* New data is refused: the free rows are down to the reserve (or the last commit
 * found no row). Deletes, the collector and commits go on. */
int store_space_full(store *s);
/* May rows of class space (enum pool_space) still be taken, rows more of them? For
 * refusing an operation up front rather than half way. */
int store_space_ok(store *s, int space, uint64_t rows);
int store_put_write(store_writer *w, const void *buf, size_t len);
/* Source-side dedup (the client chunks and fingerprints; only missing chunks cross
 * the wire; bkstord's plain PUTs use the pair too, with their own fingerprints made
 * outside its lock). store_put_write may follow these in one writer (its chunker
 * starts there, as at a cut point: daemon/native_ops.c switches so), never precede
 * them (its pending tail would be lost).
 * store_put_known: 1 if the store has chunk fp of len raw bytes (it is appended to
 * the object), 0 if not (send its bytes with store_put_chunk), -errno.
 * store_put_chunk: the chunk's bytes (len <= the store's maximum chunk size); they
 * must hash to fp (-EBADMSG otherwise: a client cannot name one chunk and send
 * another). */
int store_put_known(store_writer *w, const uint8_t fp[32], uint32_t len);
/* Does the store have chunk fp of len raw bytes (for answering which chunks a client
 * must send)? 1, 0, or -errno. */
int store_has_chunk(store *s, const uint8_t fp[32], uint32_t len);
int store_put_chunk(store_writer *w, const uint8_t fp[32], const void *data, uint32_t len);
/* A new chunk made ready by the caller outside its lock: fp is its SHA-256 of the
 * chunk's len raw bytes, computed by the caller itself from bytes it holds (never a
 * fingerprint a client sent: those go through store_put_chunk, which checks them),
 * and stored[0..slen) its stored form: the raw bytes (SEG_RAW, slen == len) or one
 * zstd frame of them (SEG_ZSTD), any level, or the raw bytes to be compressed later
 * by the background pass (SEG_RAW_DEFERRED: store_defer_step). Under the caller's lock only the index
 * lookup and insert and the segment append happen; the item written is the same as
 * store_put_chunk's (no format change); replication's store_put_stored is this
 * after it checked the twin's bytes. If the store has the chunk by now (another
 * stream stored it after the caller looked, or it came twice in one batch), the
 * stored copy is dropped and the chunk appended as by store_put_known. Like
 * store_put_chunk, never after a store_put_write tail (-EINVAL). Returns 1 if the
 * chunk was known, 0 if stored, -errno (-EBADMSG: the store has fp with another
 * length). */
int store_put_prepared(store_writer *w, const uint8_t fp[32], uint32_t len,
                       const void *stored, uint32_t slen, int codec);
/* Before a pass of lookups of a round's fingerprints under the caller's lock
 * (store_put_known, store_has_chunk, store_put_prepared of g's spans): make the index
 * reads those lookups would make (entry blocks, segment tables: after a commit, one
 * of each per old segment a duplicate stream enters) without the lock. Called
 * WITHOUT the lock; lock(ctx) and unlock(ctx) take and give it back, twice, for
 * short holds (what to read; then installing what was read, only if the index did not
 * change meanwhile). Best effort: returns how many blocks and tables went into the
 * index's caches, or -ENOMEM; what was not prefetched the lookups read as before,
 * and every lookup still checks what it answers (dedup/fpidx.h, "prefetch"). */
int store_put_prefetch(store_writer *w, ingest *g, void (*lock)(void *ctx),
                       void (*unlock)(void *ctx), void *ctx);
/* The same for a list of n fingerprints a client sent (source dedup: the lookups of
 * an FP_LIST, store_has_chunk and store_put_known): fingerprint i at fp + i * stride. */
int store_put_prefetch_fps(store_writer *w, const uint8_t *fp, size_t stride, int n,
                           void (*lock)(void *ctx), void (*unlock)(void *ctx), void *ctx);
/* Per-writer figures (for the PUT reply). */
typedef struct store_put_stats {
	uint64_t bytes, chunks, chunks_new, bytes_new, bytes_stored;
} store_put_stats;
void store_put_get_stats(const store_writer *w, store_put_stats *st);
/* store_put_end, and the writer's final figures (after its last chunk). */
int store_put_end_stats(store_writer *w, uint64_t *id, store_put_stats *st);
/* The store's chunking (fixed at creation; what source-dedup clients must use). */
void store_cdc_params(const store *s, cdc_params *p);
/* Finish: the object exists (in the txg being built) with id *id. */
int store_put_end(store_writer *w, uint64_t *id);
void store_put_abort(store_writer *w); /* the object never existed */
/* Convenience: a whole buffer as one object. */
int store_put(store *s, const void *buf, size_t len, uint64_t *id);

/* Finish by replacing the content of existing object id (its attributes and
 * generation stay; size and map change). For rewriting a directory or a file in
 * place. -ENOENT if id is not in use (the writer is then aborted). */
int store_put_end_replace(store_writer *w, uint64_t id);

/* --- changing an object in place (NFS WRITE and SETATTR size, iSCSI) --- */
/* Write len bytes at off into existing object id. The changed range is re-cut into
 * content-defined chunks (from the start of the first chunk it touches to the end of
 * the last one), so rewriting the same bytes deduplicates; only the map blocks on the
 * paths to the changed extents are rewritten (copy-on-write). Past the end the object
 * grows; a gap between the old end and off reads as zeros and stores nothing (a
 * hole). Attributes and generation stay. -ENOENT, -ENOSPC, -EIO.
 * An append (off == size) re-cuts only the last chunk with the new bytes: writes in
 * order cut (and deduplicate) exactly like one store_put of the same bytes. A write
 * longer than 4 MiB is applied in pieces: after a failure the pieces before it are
 * in place. Like store_put, the change is in the txg being built (store_sync,
 * store_commit). */
int store_write_at(store *s, uint64_t id, uint64_t off, const void *buf, size_t len);
/* The same with the rows of space class cls (dedup/pool.h): the namespace rewrites
 * directory pages from the reserve, as store_put_begin_class. Only POOL_SPACE_DATA
 * is refused up front on a full store. */
int store_write_at_class(store *s, int cls, uint64_t id, uint64_t off, const void *buf,
                         size_t len);
/* Several writes into object id as one change (the iSCSI LUN cache applied at
 * SYNCHRONIZE CACHE): v[0..n) sorted by offset, disjoint, each inside the object's
 * size (-EINVAL otherwise: a batch neither grows an object nor appends). Each piece
 * is re-cut as store_write_at would cut it alone (from the start of the chunk it
 * starts in to the end of the chunk it ends in; holes around it kept); pieces whose
 * re-cut ranges overlap (two writes into one chunk, or neighbours) are re-cut as one
 * run. Every chunk of the batch goes through the ingest engine in shared rounds, and
 * the map is changed by one splice that rewrites each map block it touches once,
 * where n store_write_at calls rewrite a leaf and the path above it n times. All or
 * nothing: on an error none of it is in the object. The caller bounds the batch (its
 * bytes are held in memory once more, with the chunks around them). */
typedef struct store_wpiece {
	uint64_t off;
	const void *buf;
	size_t len;
} store_wpiece;
int store_write_batch(store *s, uint64_t id, const store_wpiece *v, size_t n);
/* The same in three steps, so the hashing and compression run outside the caller's
 * lock (the way bkstord's plain PUTs use store_put_prepared):
 *  store_wbatch_plan (a store call): the pieces' ranges are worked out and where
 *    the chunks around them are; the batch holds a copy of the pieces' bytes (v's
 *    buffers may change after it returns);
 *  store_wbatch_prepare (NOT a store call: no lock, any thread, one at a time per
 *    batch): those chunks read from the array (thread-safe) and checked, the runs
 *    cut, every chunk fingerprinted and compressed on the caller's engine g
 *    (ingest_new; at its level), the results kept in the batch. -ESTALE: a chunk
 *    failed its check (its row reused by the collector since the plan, or damaged):
 *    plan again (the store call reads it through the pool);
 *  store_wbatch_apply (a store call): -EAGAIN, nothing changed, when the object
 *    changed since the plan (plan again); else chunks the index has are shared, the
 *    others appended in their prepared form, and the map spliced as
 *    store_write_batch does. Without a prepare, apply hashes and compresses on the
 *    store's engine (what store_write_batch is).
 * store_wbatch_free after either (accepts NULL). */
typedef struct store_wbatch store_wbatch;
typedef struct ingest ingest;
int store_wbatch_plan(store *s, uint64_t id, const store_wpiece *v, size_t n,
                      store_wbatch **out);
int store_wbatch_prepare(store_wbatch *b, ingest *g);
int store_wbatch_apply(store *s, store_wbatch *b);
void store_wbatch_free(store_wbatch *b);
/* After an apply: its chunks, and how many of them the store had (duplicates: a
 * caller may skip prepare, which compresses every chunk, when most are known). */
void store_wbatch_stats(const store_wbatch *b, uint64_t *chunks, uint64_t *known);
/* Set object id's size: shrink (extents past it dropped, the last one cut), or grow
 * with a hole. A grow is new data for the space classes (-ENOSPC when full); a shrink
 * is not refused for it (it writes a few map blocks and at most one chunk). */
int store_truncate(store *s, uint64_t id, uint64_t size);

/* Deallocate [off, off + len) of object id (clipped to its size): it reads as zeros
 * and stores nothing (a hole; the chunks the range cuts keep their outer parts).
 * The size stays. For iSCSI UNMAP and WRITE SAME with UNMAP. Writes a few map blocks
 * and at most two chunks from the collector's share of the reserve, so it works on
 * a full store. -ENOENT, -EIO. */
int store_punch(store *s, uint64_t id, uint64_t off, uint64_t len);
/* The extent of object id holding offset off (< its size): where it starts, its
 * length and whether it is a hole (GET LBA STATUS). -ENOENT, -ERANGE past the end. */
int store_extent(store *s, uint64_t id, uint64_t off, uint64_t *start, uint64_t *len,
                 int *hole);
/* Bytes of object id that are not in holes (walks its whole map). The store's
 * logical_bytes are the sum of these over its objects; an object's size (store_stat)
 * stays its size, holes included. */
int store_mapped_bytes(store *s, uint64_t id, uint64_t *bytes);

/* --- attributes (the namespace's; the store only keeps them) --- */
enum store_obj_type { STORE_T_PLAIN = 0, STORE_T_FILE = 1, STORE_T_DIR = 2, STORE_T_SYMLINK = 3 };
typedef struct store_attr {
	uint32_t type;           /* enum store_obj_type */
	uint32_t mode;           /* permission bits */
	uint32_t uid, gid;
	uint32_t nlink;
	int64_t mtime_ns, ctime_ns, atime_ns; /* wall clock */
} store_attr;
int store_setattr(store *s, uint64_t id, const store_attr *a);

/* --- reading --- */
typedef struct store_obj_info {
	uint64_t id;
	uint64_t size;
	uint64_t nextents;
	uint64_t created_txg;
	/* (id, gen) names one object forever. An id is reused only when a crash lost
	 * the object that had it before it was durable; gen tells the two apart (it
	 * comes from the never-reused segment id counter). NFS file handles carry both. */
	uint64_t gen;
	store_attr attr;
} store_obj_info;

int store_stat(store *s, uint64_t id, store_obj_info *info);
/* Read up to len bytes at off; *got = bytes read (short at the end of the object).
 * -ENOENT no such object, -EIO when a chunk cannot be read correctly. */
int store_read(store *s, uint64_t id, uint64_t off, void *buf, size_t len, size_t *got);
/* Zero-copy reading (a restore to a socket): [off, off + len) of object id as up to
 * max pieces iov[0..*niov), most of them pointing into the read-ahead's buffers
 * (nothing copied), the rest (holes, chunks read on demand) into scratch (len
 * bytes, the caller's) at their offset from off. *got: the bytes described (fewer
 * than len when the pieces or the pins ran out, or at the object's end; go on from
 * off + *got). The buffers pointed into are pinned: they stay as they are, also
 * while other store calls run (another thread may send from them outside the
 * daemon's lock), until store_read_unpin(s, pins), a store call like any other
 * (and before store_close). Errors as store_read (then nothing is pinned).
 *
 * The pieces in read-ahead buffers may not be filled yet (their rows still being
 * read and decompressed by the helpers): store_read_wait(s, pins) before using them.
 * It is NOT a store call: it runs outside the daemon's lock, on the caller's thread,
 * and does queued read-ahead work meanwhile (decompression off the lock, beside the
 * helpers). 0: every piece holds its bytes, checked. -EAGAIN: a chunk failed its
 * check on the way (damaged on one disk, or moved by the collector): unpin and read
 * the same range again (the store call then reads that chunk through the pool). */
typedef struct store_iov {
	const void *p;
	size_t len;
} store_iov;
#define STORE_PINS 8
typedef struct store_pins {
	void *job[STORE_PINS];
	uint32_t lo[STORE_PINS], hi[STORE_PINS]; /* items store_read_wait checks */
	int n;
} store_pins;
int store_read_iov(store *s, uint64_t id, uint64_t off, size_t len, uint8_t *scratch,
                   store_iov *iov, int max, int *niov, size_t *got, store_pins *pins);
int store_read_wait(store *s, const store_pins *pins);
void store_read_unpin(store *s, store_pins *pins);
/* Visit every object id in use (in order). */
int store_list(store *s, int (*fn)(void *ctx, const store_obj_info *info), void *ctx);

int store_delete(store *s, uint64_t id);

/* --- durability --- */
/* Anything to commit since the last commit? (An idle daemon does not commit.) */
int store_is_dirty(store *s);
int store_commit(store *s, bks_err *e);
/* Make object id durable, and with it every object put or deleted before: the open
 * segments are written and a record of the changes since the last commit goes to the
 * intent log (mirrored on three disks, flushed). Much cheaper than a commit; a crash
 * before the next commit replays the log at open. Falls back to a commit when the
 * log is full. */
int store_sync(store *s, uint64_t id, bks_err *e);
/* The store commits by itself when a write passes auto_commit_bytes. Before such a
 * commit it calls fn (if set), so the layer above writes what it keeps in memory
 * (the namespace's changed directories) into the same transaction group: a commit
 * must never hold a deleted object whose directory entry it does not also drop. fn
 * is not called again while it runs (its own writes cannot recurse); a failure of fn
 * skips the automatic commit (the next explicit one retries). NULL removes it. */
void store_set_precommit(store *s, int (*fn)(void *ctx), void *ctx);

/* --- garbage collection --- */
typedef struct store_gc_stats {
	int running;
	uint64_t segments_scanned, segments_freed, segments_compacted;
	uint64_t chunks_moved, bytes_moved, rows_freed;
	uint64_t segments_skipped;         /* to compact, but no room to copy forward */
	uint64_t live_bytes, dead_bytes;   /* stored bytes, from the last mark */
	/* Metadata: stored bytes of the blocks reachable at the mark; rows emptied
	 * because their live blocks filled less than min_live of them; blocks moved out
	 * of those rows (and the blocks above them rewritten with them) and the bytes
	 * written for them now (record-array blocks are rewritten by the next commit). */
	uint64_t meta_live_bytes, meta_rows_compacted, meta_blocks_moved, meta_bytes_moved;
	uint64_t meta_compaction_abandoned; /* rounds whose moves ran out of room (the
	                                     * victims were kept; nothing is lost) */
} store_gc_stats;

/* Start a collection: mark live chunks from every object (now), then sweep in
 * steps. Segments whose live chunks fill less than min_live (e.g. 0.5) of their row
 * are compacted: dead chunks and rows that commits wrote half full are reclaimed.
 * Metadata rows whose live blocks fill less than min_live are emptied the same way
 * (the blocks move, the rows are free after the next commit). */
int store_gc_start(store *s, double min_live);
/* Do a bounded amount of sweeping; 1 if more remains, 0 when done, -errno. */
int store_gc_step(store *s);
int store_gc_run(store *s, double min_live); /* start + steps + commit */
void store_gc_get_stats(const store *s, store_gc_stats *st);
/* Automatic collection (0 turns it off, the default): a commit that leaves fewer
 * than free_frac of the rows free starts a collection (min_live as store_gc_start)
 * when at least STORE_GC_AUTO_MIN rows (or rows / 32, if more) got a segment since
 * the last collection started, and every store_sync does a few of its steps
 * (STORE_GC_AUTO_STEPS) before it writes its record; the sync that finishes it
 * commits, so the rows it freed are reusable at once. Why: every commit seals the
 * open segments as part-full rows, and under a stream of syncs (NFS CREATE, iSCSI
 * SYNCHRONIZE CACHE) the full intent log forces one every ~20-100 syncs; nearly
 * all of those rows are dead a commit later (superseded directory pages and map
 * blocks, object table and index blocks). Without a collection keeping pace they
 * filled the array after ~36 000 synced creates on the demo store, whoever was
 * supposed to start it. The collection's own steps (store_gc_step) can still be
 * driven by the caller as well (the daemon does, between requests). */
#define STORE_GC_AUTO_MIN 16
#define STORE_GC_AUTO_STEPS 8
void store_set_gc_auto(store *s, double free_frac, double min_live);

/* --- verify --- */
#define STORE_VERIFY_BAD 16
typedef struct store_verify_bad {
	uint8_t fp[32];            /* the chunk's fingerprint (SHA-256 of its raw bytes) */
	uint32_t len;              /* its raw length */
	uint64_t id;               /* the first object found referencing it */
} store_verify_bad;
typedef struct store_verify_report {
	uint64_t objects, objects_damaged, chunks_checked, chunks_bad, bytes_checked;
	uint64_t repaired;         /* strips the array found wrong (checksum) and rewrote */
	uint64_t damaged_ids[16];  /* the first ones */
	/* The first distinct bad chunks: unreadable even with the array's reconstruction,
	 * or read bytes that do not hash to the map's fingerprint. */
	uint32_t nbad;
	store_verify_bad bad[STORE_VERIFY_BAD];
	/* The caller's hook, called for every bad chunk met (a chunk referenced twice:
	 * twice), e.g. to fetch it again from a replication source (store_repair_chunk);
	 * NULL: none. Called inside the verify call (the store's lock held). store_verify
	 * clears it with the rest of the report; store_verify_one keeps it. */
	void (*on_bad)(void *ctx, const store_verify_bad *b);
	void *on_bad_ctx;
} store_verify_report;
/* Read every chunk of every object; check checksums (the array repairs what it can)
 * and fingerprints. */
int store_verify(store *s, store_verify_report *rep);

/* Verify one object, adding to rep (for a verify done in steps by the daemon):
 * 1 if it is damaged, 0 if sound, -ENOENT if id is not in use. */
int store_verify_one(store *s, uint64_t id, store_verify_report *rep);
/* Ids in use are below this. */
uint64_t store_id_limit(store *s);

/* Rebuild the fingerprint index from the data segments' own tables (every chunk on
 * the array) and commit it. For a damaged index; dedup and restores of moved chunks
 * depend on it. */
int store_rebuild_index(store *s, bks_err *e);

/* --- stats --- */
/* --- deferred compression (store_defer.c) ---
 * Chunks stored raw under pressure (store_put_prepared with SEG_RAW_DEFERRED) are
 * compressed later by a background pass that moves their segments as the collector
 * does (index updated, old row freed, reusable after the next commit). One step does
 * up to budget bytes of reads (headers and items) and returns 1 while work remains,
 * 0 when there is none for now (store_defer_pending 0: until the next deferred write;
 * 1: what is left waits for the next commit: segments it wrote, or a cycle that
 * skipped one for lack of room, wait_room), -errno (the pass starts over
 * at the next step; nothing is lost). The caller commits as usual: the freed rows
 * come back then. Pending after every open: the first cycle reads every data row's
 * header to find segments an earlier run left flagged. */
void store_set_defer_level(store *s, int level); /* 0: the store's level (at least 1) */
int store_defer_pending(const store *s);
int store_defer_step(store *s, uint64_t budget);
/* Steps to the end, committing between cycles, then commits (tests, tools). */
int store_defer_run(store *s, bks_err *e);
typedef struct store_defer_stats {
	int pending;               /* work may remain (store_defer_pending) */
	int running;               /* a cycle is under way */
	uint64_t rows_scanned, rows_total; /* of the current (or last) cycle */
	uint64_t cycles;
	uint64_t segments_done;    /* moved and freed */
	uint64_t segments_skipped; /* left for a later cycle (no room yet) */
	uint64_t segments_failed;  /* unreadable: left for scrub and verify */
	uint64_t chunks_compressed, chunks_incompressible, chunks_copied, chunks_dropped;
	uint64_t raw_done;         /* deferred raw bytes handled by the pass */
	uint64_t stored_after;     /* ... their stored size now */
	uint64_t bytes_saved;      /* stored bytes given back */
	uint64_t bytes_read;       /* headers and items read by the pass */
	uint64_t noted_bytes;      /* deferred raw bytes written (this process) */
	uint64_t bytes_left;       /* noted_bytes not yet handled (0 when not pending) */
	int bytes_left_estimate;   /* bytes_left is a lower bound: segments an earlier run
	                            * left flagged may remain (until a whole cycle after
	                            * the open left none of them behind) */
	int wait_room;             /* the last cycle skipped a segment for lack of room:
	                            * no cycle before the next commit */
	uint64_t room_waits;       /* cycles that ended so */
	uint64_t errors;
} store_defer_stats;
void store_defer_get_stats(const store *s, store_defer_stats *st);

typedef struct store_stats {
	uint64_t objects;
	uint64_t logical_bytes;     /* bytes in the objects' extents, holes excluded
	                             * (a thin 10 GiB LUN holding nothing counts 0): the
	                             * sum of store_mapped_bytes, not of the sizes; kept
	                             * exact at every change, sync replay included. A
	                             * store written before may count its holes until
	                             * its next collection (docs/format.md) */
	uint64_t unique_chunks;     /* chunks stored (live or not yet collected) */
	uint64_t unique_raw_bytes;  /* their size before compression */
	uint64_t stored_bytes;      /* their size as stored */
	uint64_t rows_data, rows_meta, rows_free, rows_total;
	uint64_t rows_reserved;     /* kept for commits, the collector and deletes */
	uint64_t rows_reserved_commit; /* ... of which only commits may use */
	int full;                   /* rows_free <= rows_reserved: new data is refused */
	uint64_t space_refusals;    /* row allocations refused for lack of space */
	uint64_t physical_bytes;    /* rows in use x row size */
	double dedup_ratio;         /* logical / unique_raw */
	double compression_ratio;   /* unique_raw / stored */
	double live_fraction;       /* from the last GC mark (1.0 before any) */
	uint64_t index_entries, index_ram_bytes, index_ram_fixed_bytes;
	uint32_t index_runs;
	uint64_t index_lookups, index_memtable_hits, index_locality_hits, index_run_hits,
	    index_misses, index_block_reads;
	/* the index's reads made outside the caller's lock (store_put_prefetch), and
	 * prefetches dropped because the index changed before they were installed */
	uint64_t index_prefetch_reads, index_prefetch_dropped;
	uint64_t log_syncs;         /* syncs answered by the intent log (this process) */
	uint64_t log_full_commits;  /* syncs that committed because the log was full */
	uint64_t log_replayed;      /* intent log records replayed at open */
	uint64_t gc_auto_started;   /* collections the store started (store_set_gc_auto) */
	/* reads (this process): bytes served by read-ahead and bytes read on demand
	 * through the pool from streams; streams that started read-ahead; chunks that
	 * read-ahead fetched but the pool had to read again (damaged, or moved) */
	uint64_t read_ahead_bytes, read_sync_bytes, read_ahead_streams, read_ahead_fallbacks;
} store_stats;
void store_get_stats(store *s, store_stats *st);

#endif /* BKS_STORE_H */
