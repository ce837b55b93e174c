/* dedup/ingest.h: the store's ingest engine: the CPU work of a write (SHA-256 of every
 * chunk, zstd of the new ones) shared by the calling thread and threads - 1 helper
 * threads (ingest_new).
 *
 * A round: ingest_begin(); the caller finds cut points and ingest_add()s each chunk
 * as it goes, while the helpers already fingerprint the chunks published so far;
 * ingest_hash_wait() makes the caller hash what is left and waits until every span
 * has its fingerprint. The caller then looks the fingerprints up (spans it has are
 * marked hit); ingest_compress() compresses the misses on every thread. So chunking
 * overlaps hashing instead of preceding it, and nothing is forked per batch.
 *
 * Spans point into the caller's memory, which must stay unchanged for the round.
 * Threads: one caller at a time (the store's).
 */
#ifndef BKS_INGEST_H
#define BKS_INGEST_H

#include <stddef.h>
#include <stdint.h>

#include "dedup/fp.h"
#include "dedup/segment.h"

#define ING_MAX 1024 /* spans per round */
#define ING_MAX_THREADS 16

typedef struct ing_span {
	const uint8_t *p;        /* the chunk's bytes */
	uint32_t len;
	uint8_t fp[FP_LEN];
	int hit;                 /* set by the caller: the store has it */
	seg_ptr loc;
	uint8_t *z;              /* compressed bytes (the engine's buffer) */
	uint32_t zlen;           /* 0: store raw */
} ing_span;

typedef struct ingest ingest;

/* level: zstd level (0: no compression; -1: hashing only, no compression contexts:
 * ingest_compress must not be called); max_chunk: largest chunk; threads: the
 * caller and threads - 1 helpers (0: one per online CPU, at least 2; 1: the caller
 * alone; at most ING_MAX_THREADS). Besides the store's engine, the daemon runs
 * engines of its own outside its lock (daemon/native_ops.c, plain PUTs: fingerprints
 * and the new chunks' compression). Compressed bytes live in a buffer of the engine
 * sized for the round's misses (ZSTD_compressBound of each), grown as needed. */
int ingest_new(int level, uint32_t max_chunk, int threads, ingest **out);
/* The zstd level of the next ingest_compress (an engine made with level >= 0), and
 * the level now: the daemon picks it per round (adaptive compression). */
void ingest_set_level(ingest *g, int level);
int ingest_level(const ingest *g);
/* Threads that take part (the caller and the helpers that started). */
int ingest_threads(const ingest *g);
void ingest_free(ingest *g); /* accepts NULL */

void ingest_begin(ingest *g);
/* Publish the next chunk; returns its index. The caller must not add more than
 * ING_MAX spans in a round (ingest_full tells). */
int ingest_add(ingest *g, const uint8_t *p, uint32_t len);
int ingest_full(const ingest *g);
int ingest_count(const ingest *g);
ing_span *ingest_span(ingest *g, int i);
/* Finish hashing (helping the helpers); 0 or the first error. */
int ingest_hash_wait(ingest *g);
/* Compress every span not marked hit, on every thread: sp->z and sp->zlen (0: store
 * it raw: too small, or it did not shrink). 0, -ENOMEM. */
int ingest_compress(ingest *g);

/* Run fn(ctx, t, i) for every i in [0, n) on every thread (t: 0 the caller, 1.. the
 * helpers; t < ingest_threads()), each i once. For work that is not a round. */
void ingest_parallel(ingest *g, int n, void (*fn)(void *ctx, int t, int i), void *ctx);

#endif /* BKS_INGEST_H */
