/* dedup/store_repl.h: what replication (daemon/repl*) needs of the store beyond
 * store.h: an object's content map as a list of extents, a chunk's bytes as stored
 * (compressed, so the twin gets what this store keeps, not a recompression), and a
 * writer verb that takes such stored bytes.
 *
 * Threads: like store.h, one call at a time (the daemon's lock).
 */
#ifndef BKS_STORE_REPL_H
#define BKS_STORE_REPL_H

#include <stddef.h>
#include <stdint.h>

#include "dedup/store.h"

/* One extent of an object's map. A hole stores nothing and reads as zeros (hole 1,
 * fp zero). where is the store's pointer to the chunk, for store_extent_stored only
 * (it may be stale after a collection moved the chunk: the index is asked then). */
typedef struct store_mapext {
	uint64_t off, len;
	uint8_t fp[32];
	int hole;
	seg_ptr where;
} store_mapext;

/* Visit object id's extents in offset order. fn returns 0 (or any value >= 0) to go
 * on; a negative errno stops the walk and is returned. -ENOENT, -EIO (a damaged map). */
int store_extents(store *s, uint64_t id, int (*fn)(void *ctx, const store_mapext *x),
                  void *ctx);

/* The stored bytes of extent x's chunk into out (cap >= STORE_STORED_MAX is always
 * enough), checked against their checksum (the array repairs what it can); *slen and
 * *codec (enum seg_codec) describe them. -EIO, -ENOBUFS, -ENOENT (the chunk is gone:
 * the object changed since its extents were taken). */
#define STORE_STORED_MAX ((4u << 20) + 4096u)
int store_extent_stored(store *s, const store_mapext *x, void *out, size_t cap,
                        uint32_t *slen, int *codec);
/* The same, and *deferred (may be NULL): 1 when the copy read is a raw item stored
 * "for later" (SEG_EF_DEFERRED: the background pass has not compressed it yet), so a
 * twin can store it the same way (docs/protocol.md "Replication", CHUNK codec 2).
 * Costs a read of the item's segment table when the chunk is raw (one per segment:
 * the last one is kept). */
int store_extent_stored_ex(store *s, const store_mapext *x, void *out, size_t cap,
                           uint32_t *slen, int *codec, int *deferred);

/* The check store_put_stored makes (decode, SHA-256 against fp), on its own, so it
 * can run outside the daemon's lock and on several connections at once: it touches
 * only k (one per thread) and the store's fixed parameters (the chunk size bound),
 * never the pool, the index or a writer. 0 when the stored bytes decode to rlen bytes
 * whose SHA-256 is fp; -EBADMSG when they do not; -EINVAL (lengths, codec); -ENOMEM.
 * Then store_put_checked keeps them. */
typedef struct store_stored_ck store_stored_ck;
int store_stored_ck_new(store_stored_ck **out);
void store_stored_ck_free(store_stored_ck *k); /* accepts NULL */
int store_stored_check(const store *s, store_stored_ck *k, const uint8_t fp[32],
                       const void *stored, uint32_t slen, uint32_t rlen, int codec);
/* store_put_stored without the check: only for bytes store_stored_check passed
 * with the same fp, lengths and codec (the one caller, daemon/repl_recv.c, does both
 * on the same buffer). codec may also be SEG_RAW_DEFERRED (checked as SEG_RAW): the
 * chunk is stored raw and flagged, for this store's background pass to compress
 * (a chunk its source had not compressed yet). */
int store_put_checked(store_writer *w, const uint8_t fp[32], const void *stored,
                      uint32_t slen, uint32_t rlen, int codec);

/* Append a chunk given as stored bytes (codec SEG_RAW: slen == rlen; SEG_ZSTD: a zstd
 * frame of rlen bytes) to a source-dedup writer (as store_put_chunk). The bytes are
 * decoded and their SHA-256 must equal fp (-EBADMSG otherwise: nothing is kept), then
 * the stored bytes are kept as they are (no second compression). A chunk the store
 * already has is referenced, not stored twice. -EINVAL (lengths, codec). */
int store_put_stored(store_writer *w, const uint8_t fp[32], const void *stored,
                     uint32_t slen, uint32_t rlen, int codec);

/* The stored bytes of chunk fp (rlen raw bytes), found through the index: for a peer
 * that wants a chunk again (a twin's WANT, a source's FETCH; store_repair_chunk
 * there). As
 * store_extent_stored; -ENOENT when this store does not have the chunk. */
int store_chunk_stored(store *s, const uint8_t fp[32], uint32_t rlen, void *out, size_t cap,
                       uint32_t *slen, int *codec);

/* Repair: a good copy of chunk fp (stored bytes, as store_put_stored takes them),
 * for a chunk whose copy here is damaged beyond what the array reconstructs (verify
 * finds it). The bytes are decoded and their SHA-256 checked first (-EBADMSG,
 * -EINVAL: nothing kept). 0 when a copy the index knows reads correctly already
 * (nothing to do); 1 when the bytes were stored as a new copy and the index points
 * at it, so every object whose map references fp reads it correctly again (a read
 * that finds the map's copy damaged asks the index, store_read_chunk). The maps are
 * not rewritten. Like every change, in the txg being built: a crash before the
 * commit leaves the damaged copy as it was, never a reference to nothing. Rows come
 * from the collector's share of the reserve (works on a full store). */
int store_repair_chunk(store *s, const uint8_t fp[32], const void *stored, uint32_t slen,
                       uint32_t rlen, int codec);

#endif /* BKS_STORE_REPL_H */
