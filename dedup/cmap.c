/* dedup/cmap.c: content maps (a tree of extent blocks per object) and small helpers.
 *
 * Block format (docs/format.md "Content maps"): 16-byte header (magic "BKML" leaf /
 * "BKMN" node, version (2), entry count (2), first logical offset (8)), then
 * entries: leaf (offset, length, length high, fingerprint, chunk pointer) = 88 bytes;
 * node (first offset, child pointer) = 48 bytes. Entries are in offset order and
 * extents are contiguous from 0. The parent's pointer carries the block's checksum.
 * Leaf version 1 holds chunks only; version 2 (written only for a leaf that holds
 * one) may also hold holes: null pointer, zero fingerprint, a 64-bit length (high
 * half in the third field), read as zeros. A build that knows only version 1 refuses
 * a version-2 leaf (-EINVAL: the read fails with EIO, verify calls the object
 * damaged), so it never returns a hole's bytes as data. */
#include <config.h>

#include "dedup/store_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/endian.h"

static const char M_LEAF[4] = {'B', 'K', 'M', 'L'};
static const char M_NODE[4] = {'B', 'K', 'M', 'N'};
#define MAP_V1 1  /* nodes; leaves of chunks only */
#define MAP_V2 2  /* leaves that hold a hole */

void obj_rec_decode(const uint8_t *b, obj_rec *o)
{
	o->flags = le_get32(b);
	o->depth = le_get32(b + 4);
	o->size = le_get64(b + 8);
	o->nextents = le_get64(b + 16);
	o->created_txg = le_get64(b + 24);
	seg_ptr_decode(b + 32, &o->root);
	o->gen = le_get64(b + 72);
	o->attr.type = le_get32(b + 80);
	o->attr.mode = le_get32(b + 84);
	o->attr.uid = le_get32(b + 88);
	o->attr.gid = le_get32(b + 92);
	o->attr.nlink = le_get32(b + 96);
	o->mflags = le_get32(b + 100);
	o->attr.mtime_ns = (int64_t)le_get64(b + 104);
	o->attr.ctime_ns = (int64_t)le_get64(b + 112);
	o->attr.atime_ns = (int64_t)le_get64(b + 120);
}

void obj_rec_encode(const obj_rec *o, uint8_t *b)
{
	memset(b, 0, OBJ_REC);
	le_put32(b, o->flags);
	le_put32(b + 4, o->depth);
	le_put64(b + 8, o->size);
	le_put64(b + 16, o->nextents);
	le_put64(b + 24, o->created_txg);
	seg_ptr_encode(&o->root, b + 32);
	le_put64(b + 72, o->gen);
	le_put32(b + 80, o->attr.type);
	le_put32(b + 84, o->attr.mode);
	le_put32(b + 88, o->attr.uid);
	le_put32(b + 92, o->attr.gid);
	le_put32(b + 96, o->attr.nlink);
	le_put32(b + 100, o->mflags);
	le_put64(b + 104, (uint64_t)o->attr.mtime_ns);
	le_put64(b + 112, (uint64_t)o->attr.ctime_ns);
	le_put64(b + 120, (uint64_t)o->attr.atime_ns);
}

/* --- writer --- */

int map_writer_init(map_writer *m, uint32_t block)
{
	memset(m, 0, sizeof(*m));
	m->block = block;
	for (int i = 0; i <= MAP_MAX_DEPTH; i++)
		if (!(m->lvl[i] = malloc(block))) {
			map_writer_free(m);
			return -ENOMEM;
		}
	return 0;
}

void map_writer_free(map_writer *m)
{
	for (int i = 0; i <= MAP_MAX_DEPTH; i++)
		free(m->lvl[i]);
	free(m->written);
	memset(m, 0, sizeof(*m));
}

static uint32_t per_block(const map_writer *m, int level)
{
	return (m->block - MAP_HDR) / (level ? MAP_NODE_ENT : MAP_LEAF_ENT);
}

static int note_written(map_writer *m, const seg_ptr *p)
{
	if (m->nwritten == m->capwritten) {
		size_t nc = m->capwritten ? m->capwritten * 2 : 64;
		seg_ptr *q = realloc(m->written, nc * sizeof(*q));
		if (!q)
			return -ENOMEM;
		m->written = q;
		m->capwritten = nc;
	}
	m->written[m->nwritten++] = *p;
	return 0;
}

/* Write level's block and pass its pointer up. */
static int emit(map_writer *m, pool *pl, int level);

static int push_node(map_writer *m, pool *pl, int level, uint64_t first, const seg_ptr *p)
{
	if (level > MAP_MAX_DEPTH)
		return -EFBIG;
	if (m->cnt[level] == per_block(m, level)) {
		int r = emit(m, pl, level);
		if (r < 0)
			return r;
	}
	uint8_t *e = m->lvl[level] + MAP_HDR + (size_t)m->cnt[level] * MAP_NODE_ENT;
	if (m->cnt[level] == 0)
		m->first[level] = first;
	le_put64(e, first);
	seg_ptr_encode(p, e + 8);
	m->cnt[level]++;
	if (level > m->top)
		m->top = level;
	return 0;
}

static int emit(map_writer *m, pool *pl, int level)
{
	uint8_t *b = m->lvl[level];
	uint32_t esz = level ? MAP_NODE_ENT : MAP_LEAF_ENT;
	seg_ptr p;
	memcpy(b, level ? M_NODE : M_LEAF, 4);
	le_put16(b + 4, 1);
	le_put16(b + 6, (uint16_t)m->cnt[level]);
	le_put64(b + 8, m->first[level]);
	int r = pool_meta_write(pl, b, MAP_HDR + m->cnt[level] * esz, &p);
	if (r < 0 || (r = note_written(m, &p)) < 0)
		return r;
	uint64_t first = m->first[level];
	m->cnt[level] = 0;
	return push_node(m, pl, level + 1, first, &p);
}

int map_add(map_writer *m, pool *pl, uint64_t off, uint32_t len, const uint8_t *fp,
            const seg_ptr *p)
{
	if (m->cnt[0] == per_block(m, 0)) {
		int r = emit(m, pl, 0);
		if (r < 0)
			return r;
	}
	uint8_t *e = m->lvl[0] + MAP_HDR + (size_t)m->cnt[0] * MAP_LEAF_ENT;
	if (m->cnt[0] == 0)
		m->first[0] = off;
	le_put64(e, off);
	le_put32(e + 8, len);
	le_put32(e + 12, 0);
	memcpy(e + 16, fp, FP_LEN);
	seg_ptr_encode(p, e + 16 + FP_LEN);
	m->cnt[0]++;
	m->nextents++;
	return 0;
}

int map_finish(map_writer *m, pool *pl, seg_ptr *root, uint32_t *depth)
{
	int r;
	memset(root, 0, sizeof(*root));
	*depth = 0;
	if (m->nextents == 0)
		return 0;
	if (m->cnt[0] && (r = emit(m, pl, 0)) < 0)
		return r;
	for (int level = 1; level <= MAP_MAX_DEPTH; level++) {
		if (level == m->top && m->cnt[level] == 1) {
			/* The single pointer at the top is the root (to a level-1 block). */
			seg_ptr_decode(m->lvl[level] + MAP_HDR + 8, root);
			*depth = (uint32_t)level;
			return 0;
		}
		if (m->cnt[level] && (r = emit(m, pl, level)) < 0)
			return r;
	}
	return -EFBIG;
}

/* --- reader --- */

int map_reader_init(map_reader *r, uint32_t block)
{
	memset(r, 0, sizeof(*r));
	r->block = block;
	r->buf = malloc(block);
	r->leaf = malloc(block);
	if (!r->buf || !r->leaf) {
		map_reader_free(r);
		return -ENOMEM;
	}
	return 0;
}

void map_reader_free(map_reader *r)
{
	free(r->buf);
	free(r->leaf);
	memset(r, 0, sizeof(*r));
}

void map_reader_forget(map_reader *r)
{
	r->obj = 0;
}

int map_block_parse(const uint8_t *b, size_t len, int leaf, uint64_t first, uint32_t *n)
{
	uint32_t esz = leaf ? MAP_LEAF_ENT : MAP_NODE_ENT;
	if (len < MAP_HDR)
		return -EINVAL;
	*n = le_get16(b + 6);
	uint16_t ver = le_get16(b + 4);
	if (memcmp(b, leaf ? M_LEAF : M_NODE, 4) || !(ver == MAP_V1 || (leaf && ver == MAP_V2)) ||
	    *n == 0 || len != MAP_HDR + (size_t)*n * esz || le_get64(b + 8) != first)
		return -EINVAL;
	/* Entries in strictly increasing offset order, starting at first; leaf extents
	 * contiguous and non-empty; only a version-2 leaf's holes have a length above
	 * 32 bits. */
	uint64_t prev_end = first;
	for (uint32_t i = 0; i < *n; i++) {
		const uint8_t *x = b + MAP_HDR + (size_t)i * esz;
		uint64_t off = le_get64(x);
		if (leaf) {
			uint32_t hi = le_get32(x + 12);
			uint64_t l = le_get32(x + 8) | (uint64_t)hi << 32;
			seg_ptr p;
			seg_ptr_decode(x + 16 + FP_LEN, &p);
			static const uint8_t zero[FP_LEN];
			int hole = seg_ptr_is_null(&p);
			if (off != prev_end || l == 0 || off + l < off || (hi && !hole) ||
			    (hole && (ver == MAP_V1 || memcmp(x + 16, zero, FP_LEN))))
				return -EINVAL;
			prev_end = off + l;
		} else if ((i == 0 && off != first) || (i > 0 && off <= prev_end)) {
			return -EINVAL;
		} else {
			prev_end = off;
		}
	}
	return 0;
}

/* Read a map block and check what its parent promised: kind, count that fits the
 * length, first offset, entry order. */
static int load_block(pool *pl, const seg_ptr *p, int leaf, uint64_t first, uint8_t *out,
                      uint32_t cap, uint32_t *n)
{
	int r = pool_meta_read(pl, p, out, cap);
	if (r < 0)
		return r;
	return map_block_parse(out, p->rlen, leaf, first, n);
}

static void leaf_ext(const uint8_t *leaf, uint32_t i, map_ext *e)
{
	const uint8_t *x = leaf + MAP_HDR + (size_t)i * MAP_LEAF_ENT;
	e->off = le_get64(x);
	e->len = le_get32(x + 8) | (uint64_t)le_get32(x + 12) << 32;
	memcpy(e->fp, x + 16, FP_LEN);
	seg_ptr_decode(x + 16 + FP_LEN, &e->p);
}

int map_find(map_reader *r, pool *pl, uint64_t id, const obj_rec *o, uint64_t off,
             map_ext *e)
{
	if (off >= o->size || o->depth == 0)
		return -ENOENT;
	if (!(r->obj == id && r->obj_gen == o->gen && off >= r->leaf_first &&
	      off < r->leaf_end)) {
		/* Descend from the root. */
		seg_ptr p = o->root;
		uint64_t first = 0, end = o->size;
		uint32_t n;
		int rc;
		for (uint32_t level = o->depth - 1; level > 0; level--) {
			if ((rc = load_block(pl, &p, 0, first, r->buf, r->block, &n)) < 0)
				return rc;
			uint32_t lo = 0, hi = n;
			while (hi - lo > 1) {
				uint32_t mid = (lo + hi) / 2;
				if (le_get64(r->buf + MAP_HDR + (size_t)mid * MAP_NODE_ENT) <= off)
					lo = mid;
				else
					hi = mid;
			}
			const uint8_t *x = r->buf + MAP_HDR + (size_t)lo * MAP_NODE_ENT;
			first = le_get64(x);
			if (lo + 1 < n)
				end = le_get64(x + MAP_NODE_ENT);
			seg_ptr_decode(x + 8, &p);
			if (first > off || end <= off)
				return -EINVAL;
		}
		if ((rc = load_block(pl, &p, 1, first, r->leaf, r->block, &n)) < 0)
			return rc;
		r->obj = id;
		r->obj_gen = o->gen;
		r->leaf_n = n;
		r->leaf_first = first;
		map_ext last;
		leaf_ext(r->leaf, n - 1, &last);
		r->leaf_end = last.off + last.len;
		if (r->leaf_end > end || r->leaf_end <= off) {
			r->obj = 0;
			return -EINVAL;
		}
	}
	uint32_t lo = 0, hi = r->leaf_n;
	while (hi - lo > 1) {
		uint32_t mid = (lo + hi) / 2;
		if (le_get64(r->leaf + MAP_HDR + (size_t)mid * MAP_LEAF_ENT) <= off)
			lo = mid;
		else
			hi = mid;
	}
	leaf_ext(r->leaf, lo, e);
	if (e->off > off || e->off + e->len <= off || e->len == 0 ||
	    (!map_ext_is_hole(e) && e->len != e->p.rlen))
		return -EINVAL;
	return 0;
}

static int walk(pool *pl, const seg_ptr *p, uint32_t level, uint64_t first, uint8_t **bufs,
                uint32_t block, int (*ext_fn)(void *, const map_ext *),
                int (*blk_fn)(void *, const seg_ptr *), void *ctx)
{
	uint32_t n;
	int r = load_block(pl, p, level == 0, first, bufs[level], block, &n);
	if (r < 0)
		return r;
	if (blk_fn && (r = blk_fn(ctx, p)) < 0)
		return r;
	for (uint32_t i = 0; i < n; i++) {
		if (level == 0) {
			map_ext e;
			leaf_ext(bufs[0], i, &e);
			if (ext_fn && (r = ext_fn(ctx, &e)) < 0)
				return r;
		} else {
			const uint8_t *x = bufs[level] + MAP_HDR + (size_t)i * MAP_NODE_ENT;
			seg_ptr c;
			seg_ptr_decode(x + 8, &c);
			if ((r = walk(pl, &c, level - 1, le_get64(x), bufs, block, ext_fn, blk_fn,
			              ctx)) < 0)
				return r;
		}
	}
	return 0;
}

int map_walk(pool *pl, const obj_rec *o, uint32_t block,
             int (*ext_fn)(void *ctx, const map_ext *e),
             int (*blk_fn)(void *ctx, const seg_ptr *p), void *ctx)
{
	uint8_t *bufs[MAP_MAX_DEPTH] = {0};
	int r = 0;
	if (o->depth == 0)
		return 0;
	if (o->depth > MAP_MAX_DEPTH)
		return -EINVAL;
	for (uint32_t i = 0; i < o->depth; i++)
		if (!(bufs[i] = malloc(block)))
			r = -ENOMEM;
	if (r == 0)
		r = walk(pl, &o->root, o->depth - 1, 0, bufs, block, ext_fn, blk_fn, ctx);
	for (uint32_t i = 0; i < o->depth; i++)
		free(bufs[i]);
	return r;
}

/* --- relocation (metadata compaction) --- */

struct reloc {
	pool *pl;
	uint8_t **bufs;
	uint32_t block;
	int (*pred)(void *ctx, const seg_ptr *p);
	void *ctx;
	uint64_t moved, bytes;
};

/* Rewrite *p elsewhere when it, or any block below it, is in a row being emptied;
 * 1 when *p changed, 0 when not, -errno. Interior nodes are read (they hold their
 * children's pointers); a leaf is read only when it must move itself. */
static int reloc(struct reloc *rc, seg_ptr *p, uint32_t level, uint64_t first)
{
	int self = rc->pred(rc->ctx, p), changed = 0, r;
	uint32_t n;
	seg_ptr np;
	if (level == 0 && !self)
		return 0;
	uint8_t *b = rc->bufs[level];
	if ((r = load_block(rc->pl, p, level == 0, first, b, rc->block, &n)) < 0)
		return r;
	for (uint32_t i = 0; level > 0 && i < n; i++) {
		uint8_t *x = b + MAP_HDR + (size_t)i * MAP_NODE_ENT;
		seg_ptr c;
		seg_ptr_decode(x + 8, &c);
		if ((r = reloc(rc, &c, level - 1, le_get64(x))) < 0)
			return r;
		if (r > 0) {
			seg_ptr_encode(&c, x + 8);
			changed = 1;
		}
	}
	if (!self && !changed)
		return 0;
	if ((r = pool_meta_write(rc->pl, b, p->rlen, &np)) < 0)
		return r;
	pool_meta_free(rc->pl, p);
	rc->moved++;
	rc->bytes += np.slen;
	*p = np;
	return 1;
}

int map_relocate(pool *pl, obj_rec *o, uint32_t block,
                 int (*pred)(void *ctx, const seg_ptr *p), void *ctx, uint64_t *moved,
                 uint64_t *bytes)
{
	uint8_t *bufs[MAP_MAX_DEPTH] = {0};
	struct reloc rc = {pl, bufs, block, pred, ctx, 0, 0};
	int r = 0;
	if (o->depth == 0)
		return 0;
	if (o->depth > MAP_MAX_DEPTH)
		return -EINVAL;
	for (uint32_t i = 0; i < o->depth; i++)
		if (!(bufs[i] = malloc(block)))
			r = -ENOMEM;
	if (r == 0)
		r = reloc(&rc, &o->root, o->depth - 1, 0);
	for (uint32_t i = 0; i < o->depth; i++)
		free(bufs[i]);
	*moved += rc.moved;
	*bytes += rc.bytes;
	return r;
}

/* --- splice (store_write_at, store_truncate) --- */

/* Encoded entries of one level being rebuilt (leaf 88 bytes or node 48 bytes each). */
struct ents {
	uint8_t *b;
	size_t n, cap;
	uint32_t esz;
};

static int ents_push(struct ents *l, const uint8_t *ent)
{
	if (l->n == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 64;
		uint8_t *q = realloc(l->b, nc * l->esz);
		if (!q)
			return -ENOMEM;
		l->b = q;
		l->cap = nc;
	}
	memcpy(l->b + l->n * l->esz, ent, l->esz);
	l->n++;
	return 0;
}

static int push_ptr(struct ents *l, uint64_t first, const seg_ptr *p)
{
	uint8_t x[MAP_NODE_ENT];
	le_put64(x, first);
	seg_ptr_encode(p, x + 8);
	return ents_push(l, x);
}

static void leaf_encode(const map_ext *e, uint8_t *x)
{
	static const uint8_t zero[FP_LEN];
	int hole = map_ext_is_hole(e);
	le_put64(x, e->off);
	le_put32(x + 8, (uint32_t)e->len);
	le_put32(x + 12, (uint32_t)(e->len >> 32));
	memcpy(x + 16, hole ? zero : e->fp, FP_LEN);
	seg_ptr_encode(&e->p, x + 16 + FP_LEN);
}

struct splice {
	pool *pl;
	uint32_t block;
	const map_range *rg;     /* old extents in each [a, b) go, rg[k]'s new ones come */
	size_t nrg;
	int append;              /* the last range is a == b == the old size */
	const map_ext *ne;
	size_t next_push;        /* the first range whose new extents are not pushed yet */
	size_t next_rm;          /* the first range that may still replace an extent */
	int64_t dext;            /* change in the extent count */
	int64_t dmapped;         /* change in the bytes held in chunk extents */
	uint8_t **bufs;
};

/* Does [off, end) meet a range (one that replaces something)? Ranges are sorted and
 * disjoint: the first one ending after off decides. */
static int splice_meets(const struct splice *sp, uint64_t off, uint64_t end)
{
	size_t lo = 0, hi = sp->nrg;
	while (lo < hi) {
		size_t m = (lo + hi) / 2;
		if (sp->rg[m].b <= off)
			lo = m + 1;
		else
			hi = m;
	}
	return lo < sp->nrg && sp->rg[lo].a < end && sp->rg[lo].a < sp->rg[lo].b;
}

/* Write the entries of level as blocks (an overflowing list is split into blocks of
 * even size) and push each block's (first offset, pointer) on up. */
static int write_level(struct splice *sp, uint32_t level, const struct ents *l,
                       struct ents *up)
{
	uint32_t esz = level ? MAP_NODE_ENT : MAP_LEAF_ENT;
	size_t per = (sp->block - MAP_HDR) / esz;
	size_t nblk = (l->n + per - 1) / per, done = 0;
	uint8_t *b = malloc(sp->block);
	int r = b ? 0 : -ENOMEM;
	for (size_t k = 0; k < nblk && r == 0; k++) {
		size_t cnt = (l->n - done) / (nblk - k);
		const uint8_t *src = l->b + done * esz;
		uint16_t ver = MAP_V1;
		for (size_t i = 0; level == 0 && i < cnt; i++) {
			seg_ptr p;
			seg_ptr_decode(src + i * esz + 16 + FP_LEN, &p);
			if (seg_ptr_is_null(&p))
				ver = MAP_V2;
		}
		memcpy(b, level ? M_NODE : M_LEAF, 4);
		le_put16(b + 4, ver);
		le_put16(b + 6, (uint16_t)cnt);
		le_put64(b + 8, le_get64(src));
		memcpy(b + MAP_HDR, src, cnt * esz);
		seg_ptr p;
		if ((r = pool_meta_write(sp->pl, b, (uint32_t)(MAP_HDR + cnt * esz), &p)) == 0)
			r = push_ptr(up, le_get64(src), &p);
		done += cnt;
	}
	free(b);
	return r;
}

/* Push the new extents of the next range not pushed yet. */
static int push_new(struct splice *sp, struct ents *l)
{
	const map_range *g = &sp->rg[sp->next_push++];
	for (size_t i = g->first; i < g->first + g->n; i++) {
		uint8_t x[MAP_LEAF_ENT];
		leaf_encode(&sp->ne[i], x);
		int r = ents_push(l, x);
		if (r < 0)
			return r;
		if (!map_ext_is_hole(&sp->ne[i]))
			sp->dmapped += (int64_t)sp->ne[i].len;
	}
	sp->dext += (int64_t)g->n;
	return 0;
}

/* The block at p (level, covering [first, end); rightmost: the last of its level)
 * holds a replaced extent: rebuild it and push what replaces it (zero, one or more
 * blocks) on up. */
static int splice_blk(struct splice *sp, const seg_ptr *p, uint32_t level, uint64_t first,
                      uint64_t end, int rightmost, struct ents *up)
{
	uint8_t *b = sp->bufs[level];
	struct ents l = {.esz = level ? MAP_NODE_ENT : MAP_LEAF_ENT};
	uint32_t n;
	int r = load_block(sp->pl, p, level == 0, first, b, sp->block, &n);
	for (uint32_t i = 0; i < n && r == 0; i++) {
		const uint8_t *x = b + MAP_HDR + (size_t)i * l.esz;
		uint64_t off = le_get64(x);
		if (level == 0) {
			map_ext e;
			leaf_ext(b, i, &e);
			while (r == 0 && sp->next_push < sp->nrg && off >= sp->rg[sp->next_push].a)
				r = push_new(sp, &l);
			while (sp->next_rm < sp->nrg && sp->rg[sp->next_rm].b <= off)
				sp->next_rm++;
			if (r < 0)
				break;
			if (sp->next_rm == sp->nrg || off + e.len <= sp->rg[sp->next_rm].a) {
				r = ents_push(&l, x);
			} else {
				sp->dext--; /* replaced (a and b are extent boundaries) */
				if (!map_ext_is_hole(&e))
					sp->dmapped -= (int64_t)e.len;
			}
			continue;
		}
		uint64_t cend = i + 1 < n ? le_get64(x + MAP_NODE_ENT) : end;
		int last = rightmost && i + 1 == n;
		if (splice_meets(sp, off, cend) || (sp->append && last)) {
			seg_ptr c;
			seg_ptr_decode(x + 8, &c);
			r = splice_blk(sp, &c, level - 1, off, cend, last, &l);
		} else {
			r = ents_push(&l, x);
		}
	}
	/* The end of the last leaf: an append's extents. (Any other range starts at an
	 * extent, so the loop pushed it; one that did not is pushed here rather than
	 * lost, as the single-range splice did.) */
	while (r == 0 && level == 0 && sp->next_push < sp->nrg &&
	       (sp->rg[sp->next_push].a < end || rightmost))
		r = push_new(sp, &l);
	if (r == 0 && l.n)
		r = write_level(sp, level, &l, up);
	if (r == 0)
		pool_meta_free(sp->pl, p);
	free(l.b);
	return r;
}

int map_splice(pool *pl, obj_rec *o, uint32_t block, uint64_t a, uint64_t b,
               const map_ext *ne, size_t n, int64_t *dmapped)
{
	map_range g = {a, b, 0, n};
	return map_splice_v(pl, o, block, &g, 1, ne, dmapped);
}

int map_splice_v(pool *pl, obj_rec *o, uint32_t block, const map_range *rg, size_t nrg,
                 const map_ext *ne, int64_t *dmapped)
{
	uint8_t *bufs[MAP_MAX_DEPTH] = {0};
	struct splice sp = {pl, block, rg, nrg, 0, ne, 0, 0, 0, 0, bufs};
	struct ents top = {.esz = MAP_NODE_ENT};
	uint32_t depth = o->depth;
	int r = 0;
	if (depth > MAP_MAX_DEPTH || nrg == 0)
		return -EINVAL;
	/* Sorted, disjoint (touching is fine), inside the map; only the last may be an
	 * append (a == b == the size). */
	for (size_t k = 0; k < nrg; k++) {
		if (rg[k].a > rg[k].b || rg[k].b > o->size ||
		    (rg[k].a == rg[k].b && (rg[k].b != o->size || k + 1 != nrg)) ||
		    (k > 0 && rg[k - 1].b > rg[k].a))
			return -EINVAL;
	}
	sp.append = rg[nrg - 1].a == rg[nrg - 1].b;
	for (uint32_t i = 0; i < MAP_MAX_DEPTH; i++)
		if (!(bufs[i] = malloc(block)))
			r = -ENOMEM;
	if (r == 0 && depth > 0) {
		r = splice_blk(&sp, &o->root, depth - 1, 0, o->size, 1, &top);
	} else if (r == 0) {
		struct ents leaves = {.esz = MAP_LEAF_ENT};
		while (r == 0 && sp.next_push < nrg)
			r = push_new(&sp, &leaves);
		if (r == 0 && leaves.n) {
			r = write_level(&sp, 0, &leaves, &top);
			depth = 1;
		}
		free(leaves.b);
	}
	if (r == 0 && sp.next_push != nrg)
		r = -EINVAL; /* a range that starts at no extent: the caller's range was wrong */
	/* A root that split gets a level above it. */
	while (r == 0 && top.n > 1) {
		struct ents up = {.esz = MAP_NODE_ENT};
		if (depth >= MAP_MAX_DEPTH)
			r = -EFBIG;
		else if ((r = write_level(&sp, depth, &top, &up)) == 0)
			depth++;
		free(top.b);
		top = up;
	}
	if (r == 0 && top.n == 1 && le_get64(top.b) != 0)
		r = -EINVAL; /* a map starts at offset 0: the caller's range was wrong */
	if (r == 0) {
		if (top.n == 0) {
			memset(&o->root, 0, sizeof(o->root));
			o->depth = 0;
		} else {
			seg_ptr_decode(top.b + 8, &o->root);
			o->depth = depth;
		}
		o->nextents = (uint64_t)((int64_t)o->nextents + sp.dext);
		*dmapped = sp.dmapped;
	}
	free(top.b);
	for (uint32_t i = 0; i < MAP_MAX_DEPTH; i++)
		free(bufs[i]);
	return r;
}

/* --- u64set --- */

static uint64_t mix(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdull;
	k ^= k >> 33;
	return k;
}

int u64set_add(u64set *s, uint64_t key)
{
	if ((s->n + 1) * 4 > s->cap * 3) {
		uint64_t nc = s->cap ? s->cap * 2 : 64;
		uint64_t *k = calloc(nc, sizeof(*k));
		if (!k)
			return -ENOMEM;
		for (uint64_t i = 0; i < s->cap; i++) {
			if (!s->k[i])
				continue;
			uint64_t j = mix(s->k[i]) & (nc - 1);
			while (k[j])
				j = (j + 1) & (nc - 1);
			k[j] = s->k[i];
		}
		free(s->k);
		s->k = k;
		s->cap = nc;
	}
	uint64_t j = mix(key) & (s->cap - 1);
	while (s->k[j]) {
		if (s->k[j] == key)
			return 0;
		j = (j + 1) & (s->cap - 1);
	}
	s->k[j] = key; /* key 0 is never stored: segment ids start at 1 */
	s->n++;
	return 1;
}

int u64set_has(const u64set *s, uint64_t key)
{
	if (!s->cap)
		return 0;
	uint64_t j = mix(key) & (s->cap - 1);
	while (s->k[j]) {
		if (s->k[j] == key)
			return 1;
		j = (j + 1) & (s->cap - 1);
	}
	return 0;
}

void u64set_clear(u64set *s)
{
	if (s->k)
		memset(s->k, 0, s->cap * sizeof(*s->k));
	s->n = 0;
}

void u64set_free(u64set *s)
{
	free(s->k);
	memset(s, 0, sizeof(*s));
}
