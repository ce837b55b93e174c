/* dedup/segment.h: the segment (container) format: one array row of items.
 *
 * A segment is one whole row of the array. It holds items in the order they were
 * added: data chunks (with their SHA-256 fingerprint) in a data segment, metadata
 * blocks in a metadata segment. Each item is stored zstd-compressed, or raw when
 * compression does not shrink it. Layout of the row:
 *
 *   [0, 4096)            header: magic, version, segment id, row, txg, counts,
 *                        offsets, xxh3 of the table, xxh3 of the header
 *   [4096, data_end)     item bytes, packed
 *   [table_off, +n*64)   item table: fingerprint, offset, stored and raw length,
 *                        codec, xxh3 of the stored bytes (seeded with the segment id)
 *
 * Self-describing: the fingerprint index can be rebuilt by reading every segment's
 * header and table. The segment id is unique for the life of the store and seeds
 * every item checksum, so a stale pointer into a row that was freed and reused
 * fails its checksum instead of returning another segment's bytes.
 * Every pointer to an item (seg_ptr) carries what is needed to read and check it
 * without the table: row, offset, lengths, codec and checksum.
 */
#ifndef BKS_SEGMENT_H
#define BKS_SEGMENT_H

#include <stddef.h>
#include <stdint.h>

#include "common/bks.h"

#define SEG_HDR_SIZE 4096u
#define SEG_ENTRY_SIZE 64u
#define SEG_VERSION 1u
#define FP_LEN 32

enum seg_kind { SEG_DATA = 1, SEG_META = 2 };
enum seg_codec { SEG_RAW = 0, SEG_ZSTD = 1 };
/* Not a codec on disk: what a writer passes to seg_add_stored / pool_add_stored /
 * store_put_prepared for an item stored raw only because compressing it now would
 * hold up the stream (store.zstd_level_busy = 0). It is written as SEG_RAW with
 * SEG_EF_DEFERRED in its table entry, and its segment's header gets SEG_HF_DEFERRED:
 * the background pass (store_defer.c) recompresses such items later. */
#define SEG_RAW_DEFERRED 2

/* Item table entry flags (byte 45, zero before; docs/format.md "Segment"). Readers
 * ignore bits they do not know, and so did every build before this one (the byte
 * was written zero and never read). */
#define SEG_EF_DEFERRED 1u   /* raw for speed, not because it is incompressible */
/* Segment header flags (offset 76, zero before; same rule). */
#define SEG_HF_DEFERRED 1u   /* at least one item has SEG_EF_DEFERRED */

/* A pointer to one item (40 bytes encoded). */
typedef struct seg_ptr {
	uint64_t seg_id;
	uint64_t row;
	uint32_t off;    /* byte offset of the stored bytes in the row */
	uint32_t slen;   /* stored length */
	uint32_t rlen;   /* raw (decompressed) length */
	uint8_t codec;   /* enum seg_codec */
	uint8_t kind;    /* enum seg_kind of the segment */
	uint64_t xxh;    /* XXH3_64bits_withSeed(stored bytes, seg_id) */
} seg_ptr;

#define SEG_PTR_ENC 40
void seg_ptr_encode(const seg_ptr *p, uint8_t out[SEG_PTR_ENC]);
void seg_ptr_decode(const uint8_t in[SEG_PTR_ENC], seg_ptr *p);
int seg_ptr_is_null(const seg_ptr *p);

typedef struct seg_entry {
	uint8_t fp[FP_LEN];  /* data: SHA-256 of the raw bytes; meta: zero */
	uint32_t off, slen, rlen;
	uint8_t codec;
	uint8_t flags;       /* SEG_EF_* */
	uint64_t xxh;
} seg_entry;

typedef struct seg_header {
	uint32_t kind;
	uint64_t seg_id;
	uint64_t row;        /* where it was written: a misdirected write is caught */
	uint64_t txg;
	uint8_t store_uuid[BKS_UUID_LEN];
	uint32_t row_bytes;
	uint32_t nitems;
	uint32_t data_end;   /* first byte after the items */
	uint32_t table_off;
	uint32_t flags;      /* SEG_HF_* */
	uint64_t table_xxh;
} seg_header;

/* --- building a segment in memory (one row buffer) --- */
typedef struct seg_builder seg_builder;

/* A builder for rows of row_bytes (a multiple of 4096), zstd level `level`
 * (0 = store raw). Returns 0 or -ENOMEM/-EINVAL. */
int seg_builder_new(uint32_t row_bytes, int level, seg_builder **out);
void seg_builder_free(seg_builder *b);
/* Start a new segment in the buffer. */
void seg_begin(seg_builder *b, int kind, uint64_t seg_id, uint64_t row, uint64_t txg,
               const uint8_t store_uuid[BKS_UUID_LEN]);
/* Add an item: compressed if that shrinks it. Fills *p. Returns 0, or -ENOSPC when
 * the segment is full (seal it, begin another, add again). fp may be NULL (meta). */
int seg_add(seg_builder *b, const uint8_t *fp, const void *data, uint32_t len, seg_ptr *p);
/* Add an item whose stored form was produced elsewhere (a compression worker).
 * codec: SEG_RAW, SEG_ZSTD or SEG_RAW_DEFERRED (above). */
int seg_add_stored(seg_builder *b, const uint8_t *fp, const void *stored, uint32_t slen,
                   uint32_t rlen, int codec, seg_ptr *p);
uint32_t seg_count(const seg_builder *b);
uint32_t seg_free_bytes(const seg_builder *b); /* room for stored bytes + one entry */
/* Write the table and header; returns the row buffer (row_bytes, 4096-aligned),
 * valid until the next seg_begin. */
const void *seg_seal(seg_builder *b);

/* The segment being built: its id (0 before seg_begin) and its row buffer, so items
 * added but not yet written can be read back. */
uint64_t seg_current_id(const seg_builder *b);
const uint8_t *seg_buffer(const seg_builder *b);
/* The row the segment being built goes to, and the table entry of its item i
 * (i < seg_count): the intent log copies items of an open segment from these. */
uint64_t seg_current_row(const seg_builder *b);
int seg_item(const seg_builder *b, uint32_t i, seg_entry *out);

/* Check a whole row as a segment: header, table, and every item's checksum.
 * Returns 0 or the first error (with e). */
int seg_verify_row(const uint8_t *row, size_t len, bks_err *e);

/* --- reading --- */
/* Decode and check a header (the first SEG_HDR_SIZE bytes of a row). Distinct
 * errors: -ENOENT no magic, -EPROTO version, -EBADMSG checksum, -EINVAL field. */
int seg_header_decode(const uint8_t *buf, size_t len, seg_header *h, bks_err *e);
/* Decode the table (table_bytes = the bytes at h->table_off, nitems*64 long) and
 * check it against the header: checksum, every item inside [SEG_HDR_SIZE, data_end),
 * items in order and not overlapping. entries must hold h->nitems. */
int seg_table_decode(const seg_header *h, const uint8_t *table, size_t len,
                     seg_entry *entries, bks_err *e);
/* Check an item's stored bytes against its pointer. 1 if right. */
int seg_item_ok(const seg_ptr *p, const void *stored);
/* Decompress (or copy) stored bytes into out (cap >= p->rlen). 0 or -EBADMSG.
 * dctx: a zstd decompression context of the calling thread (NULL: a one-shot one). */
typedef struct ZSTD_DCtx_s ZSTD_DCtx;
int seg_item_decode(ZSTD_DCtx *dctx, const seg_ptr *p, const void *stored, void *out,
                    size_t cap);
/* A pointer for entry i of a segment. */
void seg_ptr_from_entry(const seg_header *h, const seg_entry *en, seg_ptr *p);

#endif /* BKS_SEGMENT_H */
