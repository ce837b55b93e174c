/* dedup/chunker.h: FastCDC content-defined chunking (gear hash, cut-point skipping,
 * normalized chunking level 2). Pure: no I/O, no threads, no global state.
 *
 * The cut points are part of the on-disk format: they decide which chunks exist and
 * therefore what deduplicates against what is already stored. The same bytes with
 * the same parameters give the same cut points on every machine, in every release,
 * however the caller splits the stream into buffers. The exact algorithm is written
 * down in dedup/chunker.c; tests/test-chunker.c checks it against a byte-at-a-time
 * model of that text and pins known cut points.
 */
#ifndef BKS_CHUNKER_H
#define BKS_CHUNKER_H

#include <stddef.h>
#include <stdint.h>

#define CDC_MIN_LIMIT 64u                  /* smallest allowed min */
#define CDC_MAX_LIMIT (4u * 1024 * 1024)   /* largest allowed max */

#define CDC_DEFAULT_MIN (4u * 1024)
#define CDC_DEFAULT_AVG (16u * 1024)
#define CDC_DEFAULT_MAX (64u * 1024)

/* Chunk sizes in bytes. Valid when CDC_MIN_LIMIT <= min < avg < max <= CDC_MAX_LIMIT
 * and avg is a power of two (min and max need not be). A chunk is never cut within
 * its first min bytes, so every chunk but a stream's last is min+1..max bytes long.
 * avg is the normal point where the cut test becomes easier; with random data the
 * mean chunk is near avg (about 1.15 x avg with the defaults). */
typedef struct cdc_params {
	uint32_t min, avg, max;
} cdc_params;

void cdc_params_default(cdc_params *p);   /* 4 KiB / 16 KiB / 64 KiB */
int cdc_params_check(const cdc_params *p); /* 0 or -EINVAL */

/* The chunker of one stream: the parameters, the gear table and the rolling state of
 * the current chunk. One thread at a time; chunk independent streams with separate
 * objects (each is about 2.1 KiB). */
typedef struct cdc cdc;

/* p NULL means the defaults. Returns 0, -EINVAL (see cdc_params_check) or -ENOMEM.
 * The environment variable BKS_CDC_SCAN=serial, read here, makes the object use the
 * plain byte-at-a-time scan instead of the faster one (same cut points: tests force
 * each path to prove it; see tests/test-chunker.c). */
int cdc_new(const cdc_params *p, cdc **out);
void cdc_free(cdc *c);                   /* accepts NULL */
void cdc_reset(cdc *c);                  /* forget the current chunk: a new stream */
void cdc_get_params(const cdc *c, cdc_params *out);

/* Scan buf[0..len), the next bytes of the stream. Returns how many bytes of buf
 * belong to the current chunk: with *cut = 1 the chunk ends after the last of them
 * (a cut point; the next call starts a new chunk), with *cut = 0 all len bytes were
 * consumed and the chunk continues. The caller keeps the bytes itself (the chunker
 * never copies nor keeps a pointer to buf) and calls again with the rest of buf.
 * len may be 0. At the end of the stream the bytes since the last cut, if any, are
 * the last chunk: the caller ends it and calls cdc_reset before another stream. */
size_t cdc_next(cdc *c, const uint8_t *buf, size_t len, int *cut);

#endif /* BKS_CHUNKER_H */
