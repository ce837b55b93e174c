/* dedup/segment.c: see segment.h and docs/format.md ("Segments"). */
#include <config.h>

#include "dedup/segment.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "common/endian.h"
#include "common/xxh.h"

static const char SEG_MAGIC[8] = {'B', 'K', 'S', 'S', 'E', 'G', 'M', 'T'};

struct seg_builder {
	uint32_t row_bytes;
	int level;
	ZSTD_CCtx *cctx;
	uint8_t *row;        /* the row being built */
	seg_entry *ent;      /* entries so far */
	uint32_t max_items;
	seg_header h;
	uint32_t pos;        /* next free byte for item data */
};

void seg_ptr_encode(const seg_ptr *p, uint8_t out[SEG_PTR_ENC])
{
	le_put64(out, p->seg_id);
	le_put64(out + 8, p->row);
	le_put32(out + 16, p->off);
	le_put32(out + 20, p->slen);
	le_put32(out + 24, p->rlen);
	out[28] = p->codec;
	out[29] = p->kind;
	out[30] = out[31] = 0;
	le_put64(out + 32, p->xxh);
}

void seg_ptr_decode(const uint8_t in[SEG_PTR_ENC], seg_ptr *p)
{
	p->seg_id = le_get64(in);
	p->row = le_get64(in + 8);
	p->off = le_get32(in + 16);
	p->slen = le_get32(in + 20);
	p->rlen = le_get32(in + 24);
	p->codec = in[28];
	p->kind = in[29];
	p->xxh = le_get64(in + 32);
}

int seg_ptr_is_null(const seg_ptr *p)
{
	return p->seg_id == 0;
}

int seg_builder_new(uint32_t row_bytes, int level, seg_builder **out)
{
	seg_builder *b;
	if (row_bytes < 4 * SEG_HDR_SIZE || row_bytes % 4096)
		return -EINVAL;
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->row_bytes = row_bytes;
	b->level = level;
	/* The smallest item is one byte plus its table entry. */
	b->max_items = (row_bytes - SEG_HDR_SIZE) / (SEG_ENTRY_SIZE + 1);
	b->row = bks_alloc_aligned(4096, row_bytes);
	b->ent = calloc(b->max_items, sizeof(*b->ent));
	b->cctx = ZSTD_createCCtx();
	if (!b->row || !b->ent || !b->cctx) {
		seg_builder_free(b);
		return -ENOMEM;
	}
	*out = b;
	return 0;
}

void seg_builder_free(seg_builder *b)
{
	if (!b)
		return;
	ZSTD_freeCCtx(b->cctx);
	free(b->row);
	free(b->ent);
	free(b);
}

void seg_begin(seg_builder *b, int kind, uint64_t seg_id, uint64_t row, uint64_t txg,
               const uint8_t store_uuid[BKS_UUID_LEN])
{
	memset(&b->h, 0, sizeof(b->h));
	b->h.kind = (uint32_t)kind;
	b->h.seg_id = seg_id;
	b->h.row = row;
	b->h.txg = txg;
	memcpy(b->h.store_uuid, store_uuid, BKS_UUID_LEN);
	b->h.row_bytes = b->row_bytes;
	b->pos = SEG_HDR_SIZE;
}

uint32_t seg_count(const seg_builder *b) { return b->h.nitems; }
uint64_t seg_current_id(const seg_builder *b) { return b->h.seg_id; }
const uint8_t *seg_buffer(const seg_builder *b) { return b->row; }
uint64_t seg_current_row(const seg_builder *b) { return b->h.row; }

int seg_item(const seg_builder *b, uint32_t i, seg_entry *out)
{
	if (i >= b->h.nitems)
		return -ERANGE;
	*out = b->ent[i];
	return 0;
}

/* Bytes left for item data once the table (with one more entry) is accounted. */
uint32_t seg_free_bytes(const seg_builder *b)
{
	uint64_t used = (uint64_t)b->pos + (uint64_t)(b->h.nitems + 1) * SEG_ENTRY_SIZE;
	return used >= b->row_bytes ? 0 : (uint32_t)(b->row_bytes - used);
}

static void fill_ptr(const seg_builder *b, const seg_entry *en, seg_ptr *p)
{
	p->seg_id = b->h.seg_id;
	p->row = b->h.row;
	p->off = en->off;
	p->slen = en->slen;
	p->rlen = en->rlen;
	p->codec = en->codec;
	p->kind = (uint8_t)b->h.kind;
	p->xxh = en->xxh;
}

static int push(seg_builder *b, const uint8_t *fp, uint32_t slen, uint32_t rlen, int codec,
                seg_ptr *p)
{
	seg_entry *en = &b->ent[b->h.nitems++];
	en->flags = 0;
	if (codec == SEG_RAW_DEFERRED) {
		codec = SEG_RAW;
		en->flags = SEG_EF_DEFERRED;
		b->h.flags |= SEG_HF_DEFERRED;
	}
	if (fp)
		memcpy(en->fp, fp, FP_LEN);
	else
		memset(en->fp, 0, FP_LEN);
	en->off = b->pos;
	en->slen = slen;
	en->rlen = rlen;
	en->codec = (uint8_t)codec;
	en->xxh = XXH3_64bits_withSeed(b->row + b->pos, slen, b->h.seg_id);
	b->pos += slen;
	if (p)
		fill_ptr(b, en, p);
	return 0;
}

int seg_add(seg_builder *b, const uint8_t *fp, const void *data, uint32_t len, seg_ptr *p)
{
	uint32_t room = seg_free_bytes(b);
	if (len == 0 || b->h.nitems >= b->max_items || room == 0)
		return len == 0 ? -EINVAL : -ENOSPC;
	if (b->level > 0 && len > 64) {
		/* Compress straight into the row; keep it only if it saved something. */
		size_t cap = BKS_MIN((size_t)room, (size_t)len - 1);
		size_t n = ZSTD_compressCCtx(b->cctx, b->row + b->pos, cap, data, len, b->level);
		if (!ZSTD_isError(n))
			return push(b, fp, (uint32_t)n, len, SEG_ZSTD, p);
	}
	if (len > room)
		return -ENOSPC;
	memcpy(b->row + b->pos, data, len);
	return push(b, fp, len, len, SEG_RAW, p);
}

int seg_add_stored(seg_builder *b, const uint8_t *fp, const void *stored, uint32_t slen,
                   uint32_t rlen, int codec, seg_ptr *p)
{
	if (slen == 0 || (codec != SEG_RAW && codec != SEG_ZSTD && codec != SEG_RAW_DEFERRED) ||
	    (codec == SEG_RAW_DEFERRED && slen != rlen))
		return -EINVAL;
	if (b->h.nitems >= b->max_items || slen > seg_free_bytes(b))
		return -ENOSPC;
	memcpy(b->row + b->pos, stored, slen);
	return push(b, fp, slen, rlen, codec, p);
}

static void encode_entry(const seg_entry *en, uint8_t *o)
{
	memcpy(o, en->fp, FP_LEN);
	le_put32(o + 32, en->off);
	le_put32(o + 36, en->slen);
	le_put32(o + 40, en->rlen);
	o[44] = en->codec;
	o[45] = en->flags;
	o[46] = o[47] = 0;
	le_put64(o + 48, en->xxh);
	le_put64(o + 56, 0);
}

const void *seg_seal(seg_builder *b)
{
	seg_header *h = &b->h;
	uint8_t *hb = b->row;

	h->data_end = b->pos;
	h->table_off = BKS_ROUND_UP(b->pos, 8u);
	memset(b->row + b->pos, 0, h->table_off - b->pos);
	for (uint32_t i = 0; i < h->nitems; i++)
		encode_entry(&b->ent[i], b->row + h->table_off + i * SEG_ENTRY_SIZE);
	uint32_t end = h->table_off + h->nitems * SEG_ENTRY_SIZE;
	h->table_xxh = bks_xxh3(b->row + h->table_off, end - h->table_off);
	memset(b->row + end, 0, b->row_bytes - end);

	memset(hb, 0, SEG_HDR_SIZE);
	memcpy(hb, SEG_MAGIC, 8);
	le_put32(hb + 8, SEG_VERSION);
	le_put32(hb + 12, SEG_HDR_SIZE);
	le_put32(hb + 16, h->kind);
	le_put32(hb + 20, h->row_bytes);
	le_put64(hb + 24, h->seg_id);
	le_put64(hb + 32, h->row);
	le_put64(hb + 40, h->txg);
	memcpy(hb + 48, h->store_uuid, BKS_UUID_LEN);
	le_put32(hb + 64, h->nitems);
	le_put32(hb + 68, h->data_end);
	le_put32(hb + 72, h->table_off);
	le_put32(hb + 76, h->flags);
	le_put64(hb + 80, h->table_xxh);
	le_put64(hb + SEG_HDR_SIZE - 8, bks_xxh3(hb, SEG_HDR_SIZE - 8));
	return b->row;
}

int seg_header_decode(const uint8_t *buf, size_t len, seg_header *h, bks_err *e)
{
	memset(h, 0, sizeof(*h));
	if (len < SEG_HDR_SIZE)
		return bks_fail(e, -EINVAL, "segment header: %zu bytes, need %u", len,
		                SEG_HDR_SIZE);
	if (memcmp(buf, SEG_MAGIC, 8) != 0)
		return bks_fail(e, -ENOENT, "no segment magic");
	if (le_get32(buf + 8) != SEG_VERSION)
		return bks_fail(e, -EPROTO, "segment version %u not supported", le_get32(buf + 8));
	if (le_get32(buf + 12) != SEG_HDR_SIZE)
		return bks_fail(e, -EINVAL, "segment header length %u", le_get32(buf + 12));
	if (le_get64(buf + SEG_HDR_SIZE - 8) != bks_xxh3(buf, SEG_HDR_SIZE - 8))
		return bks_fail(e, -EBADMSG, "segment header checksum mismatch");
	h->kind = le_get32(buf + 16);
	h->row_bytes = le_get32(buf + 20);
	h->seg_id = le_get64(buf + 24);
	h->row = le_get64(buf + 32);
	h->txg = le_get64(buf + 40);
	memcpy(h->store_uuid, buf + 48, BKS_UUID_LEN);
	h->nitems = le_get32(buf + 64);
	h->data_end = le_get32(buf + 68);
	h->table_off = le_get32(buf + 72);
	h->flags = le_get32(buf + 76);
	h->table_xxh = le_get64(buf + 80);
	if (h->kind != SEG_DATA && h->kind != SEG_META)
		return bks_fail(e, -EINVAL, "segment kind %u unknown", h->kind);
	if (h->seg_id == 0)
		return bks_fail(e, -EINVAL, "segment id 0");
	if (h->row_bytes < 4 * SEG_HDR_SIZE || h->row_bytes % 4096)
		return bks_fail(e, -EINVAL, "segment row size %u", h->row_bytes);
	if (h->data_end < SEG_HDR_SIZE || h->table_off < h->data_end ||
	    h->table_off - h->data_end >= 8 || h->table_off % 8 ||
	    (uint64_t)h->table_off + (uint64_t)h->nitems * SEG_ENTRY_SIZE > h->row_bytes)
		return bks_fail(e, -EINVAL, "segment layout out of bounds (data end %u, table "
		                "at %u, %u items, row %u)", h->data_end, h->table_off, h->nitems,
		                h->row_bytes);
	return 0;
}

int seg_table_decode(const seg_header *h, const uint8_t *t, size_t len, seg_entry *en,
                     bks_err *e)
{
	uint32_t prev_end = SEG_HDR_SIZE;
	if (len < (size_t)h->nitems * SEG_ENTRY_SIZE)
		return bks_fail(e, -EINVAL, "segment table: %zu bytes for %u items", len, h->nitems);
	if (bks_xxh3(t, (size_t)h->nitems * SEG_ENTRY_SIZE) != h->table_xxh)
		return bks_fail(e, -EBADMSG, "segment %llu: table checksum mismatch",
		                (unsigned long long)h->seg_id);
	for (uint32_t i = 0; i < h->nitems; i++) {
		const uint8_t *o = t + (size_t)i * SEG_ENTRY_SIZE;
		seg_entry *x = &en[i];
		memcpy(x->fp, o, FP_LEN);
		x->off = le_get32(o + 32);
		x->slen = le_get32(o + 36);
		x->rlen = le_get32(o + 40);
		x->codec = o[44];
		x->flags = o[45];
		x->xxh = le_get64(o + 48);
		if (x->codec != SEG_RAW && x->codec != SEG_ZSTD)
			return bks_fail(e, -EINVAL, "segment item %u: codec %u", i, x->codec);
		if (x->slen == 0 || x->off != prev_end || x->slen > h->data_end - x->off)
			return bks_fail(e, -EINVAL, "segment item %u: bytes [%u, +%u) out of place",
			                i, x->off, x->slen);
		if (x->codec == SEG_RAW ? x->rlen != x->slen : x->rlen == 0)
			return bks_fail(e, -EINVAL, "segment item %u: raw length %u", i, x->rlen);
		prev_end = x->off + x->slen;
	}
	if (prev_end != h->data_end)
		return bks_fail(e, -EINVAL, "segment: items end at %u, header says %u", prev_end,
		                h->data_end);
	return 0;
}

void seg_ptr_from_entry(const seg_header *h, const seg_entry *en, seg_ptr *p)
{
	p->seg_id = h->seg_id;
	p->row = h->row;
	p->off = en->off;
	p->slen = en->slen;
	p->rlen = en->rlen;
	p->codec = en->codec;
	p->kind = (uint8_t)h->kind;
	p->xxh = en->xxh;
}

int seg_item_ok(const seg_ptr *p, const void *stored)
{
	return XXH3_64bits_withSeed(stored, p->slen, p->seg_id) == p->xxh;
}

int seg_item_decode(ZSTD_DCtx *dctx, const seg_ptr *p, const void *stored, void *out,
                    size_t cap)
{
	if (cap < p->rlen)
		return -ENOBUFS;
	if (p->codec == SEG_RAW) {
		if (p->slen != p->rlen)
			return -EBADMSG;
		memcpy(out, stored, p->slen);
		return 0;
	}
	if (p->codec != SEG_ZSTD)
		return -EBADMSG;
	size_t n = dctx ? ZSTD_decompressDCtx(dctx, out, p->rlen, stored, p->slen)
	                : ZSTD_decompress(out, p->rlen, stored, p->slen);
	if (ZSTD_isError(n) || n != p->rlen)
		return -EBADMSG;
	return 0;
}

int seg_verify_row(const uint8_t *row, size_t len, bks_err *e)
{
	seg_header h;
	int r = seg_header_decode(row, len, &h, e);
	if (r < 0)
		return r;
	if (h.row_bytes != len)
		return bks_fail(e, -EINVAL, "segment %llu: row size %u, read %zu",
		                (unsigned long long)h.seg_id, h.row_bytes, len);
	seg_entry *en = malloc(sizeof(*en) * (h.nitems ? h.nitems : 1));
	if (!en)
		return bks_fail(e, -ENOMEM, "out of memory");
	r = seg_table_decode(&h, row + h.table_off, len - h.table_off, en, e);
	for (uint32_t i = 0; r == 0 && i < h.nitems; i++) {
		seg_ptr p;
		seg_ptr_from_entry(&h, &en[i], &p);
		if (!seg_item_ok(&p, row + en[i].off))
			r = bks_fail(e, -EBADMSG, "segment %llu: item %u checksum mismatch",
			             (unsigned long long)h.seg_id, i);
	}
	free(en);
	return r;
}
