/* fuzz-dir: libFuzzer target for directory objects (fs/ns.c, docs/format.md
 * "Directories"), version 1 and version 2 (pages).
 *
 * The first byte picks the mode:
 *  - even: the rest is a directory object's bytes, tried as-is and (for version 2)
 *    with every page's checksum recomputed, so the checks behind them are reached.
 *    Properties: no crash or out-of-bounds read; what parses decodes into memory,
 *    and encoding that again (whole, version 1 when it fits, and version 2) parses
 *    to the same parent and the same entries in the same order (round trip).
 *  - odd: the rest is a program of edits (insert a name, remove an entry, flush)
 *    applied to a directory in memory, flushed page by page into a buffer as
 *    ns_flush does into the store (nsd_write_pages). Property: after every flush the
 *    buffer parses to exactly the entries in memory, and its pages are each
 *    exactly once on one chain (splits, emptied pages freed and reused). The result
 *    with one byte changed then goes through the parse mode (with its checksums
 *    recomputed), which reaches the version 2 checks without a seed corpus.
 *
 * It drives fs/ns_dir.c (fs/ns_dir.h) directly. */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/endian.h"

#include "fs/ns_dir.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* --- entries collected from a parse --- */

struct elist {
	struct nent *e;
	size_t n, cap;
};

static int collect(void *ctx, const char *name, size_t nl, uint64_t id, uint32_t type)
{
	struct elist *l = ctx;
	if (l->n == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 64;
		struct nent *e = realloc(l->e, nc * sizeof(*e));
		if (!e)
			abort();
		l->e = e;
		l->cap = nc;
	}
	char *nm = malloc(nl + 1);
	if (!nm)
		abort();
	memcpy(nm, name, nl);
	nm[nl] = 0;
	l->e[l->n++] = (struct nent){.name = nm, .nlen = (uint32_t)nl, .type = type, .id = id};
	return 0;
}

static void elist_free(struct elist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->e[i].name);
	free(l->e);
	*l = (struct elist){0};
}

/* The entries of d in order equal l's. */
static int same_entries(const struct ndir *d, const struct elist *l)
{
	size_t k = 0;
	if (d->n != l->n)
		return 0;
	for (size_t p = 0; p < d->npg; p++) {
		const struct npage *pg = d->pg[p];
		size_t used = 0;
		if (pg->n == 0 || pg->used > PG_CAP)
			return 0;
		for (size_t i = 0; i < pg->n; i++, k++) {
			const struct nent *a = &pg->e[i], *b = &l->e[k];
			if (a->nlen != b->nlen || memcmp(a->name, b->name, a->nlen) || a->id != b->id ||
			    a->type != b->type)
				return 0;
			used += nsd_ent_bytes(a->nlen);
		}
		if (used != pg->used)
			return 0;
	}
	return k == l->n;
}

static void must_parse_as(const uint8_t *b, size_t len, const struct ndir *d)
{
	struct elist l = {0};
	uint64_t parent = 0;
	if (ns_dir_parse(b, len, &parent, collect, &l) != 0 || parent != d->parent ||
	    !same_entries(d, &l))
		abort();
	elist_free(&l);
}

static void fix_sums(uint8_t *b, size_t len)
{
	if (len < DIR_PAGE || len % DIR_PAGE)
		return;
	for (size_t p = 0; p < len / DIR_PAGE; p++)
		nsd_seal_page(b + p * DIR_PAGE, (uint32_t)p);
}

static void parse_mode(const uint8_t *data, size_t size)
{
	for (int pass = 0; pass < 2; pass++) {
		uint8_t *b = malloc(size ? size : 1);
		if (!b)
			abort();
		memcpy(b, data, size);
		if (pass == 1)
			fix_sums(b, size);
		struct ndir *d = calloc(1, sizeof(*d));
		if (!d)
			abort();
		if (nsd_decode(d, b, size) == 0) {
			/* Parsed: it round-trips through both encodings. */
			uint8_t *o;
			size_t ol;
			must_parse_as(b, size, d);
			if (nsd_v1_len(d) <= DIR_MAX_BYTES) {
				if (nsd_encode_v1(d, &o, &ol) != 0)
					abort();
				must_parse_as(o, ol, d);
				free(o);
			}
			if (nsd_encode_v2(d, &o, &ol) == 0) {
				must_parse_as(o, ol, d);
				free(o);
			}
		}
		nsd_free(d);
		free(b);
	}
}

/* --- edits, flushed page by page into a buffer --- */

struct membuf {
	uint8_t *b;
	size_t len;
};

static int page_to_mem(void *ctx, uint64_t off, const void *src, size_t len)
{
	struct membuf *m = ctx;
	if (off + len > m->len) {
		uint8_t *b = realloc(m->b, off + len);
		if (!b)
			abort();
		memset(b + m->len, 0, off + len - m->len);
		m->b = b;
		m->len = off + len;
	}
	memcpy(m->b + off, src, len);
	return 0;
}

static void flush_mem(struct ndir *d, struct membuf *m)
{
	uint64_t pages = 0;
	if (!d->v2 || d->whole) {
		uint8_t *o;
		size_t ol;
		if (nsd_encode_v2(d, &o, &ol) != 0)
			abort();
		free(m->b);
		m->b = o;
		m->len = ol;
		d->v2 = 1;
		nsd_clean(d);
	} else if (nsd_write_pages(d, page_to_mem, m, &pages) != 0) {
		abort();
	}
	if (d->dirty || d->hdirty)
		abort();
	must_parse_as(m->b, m->len, d);
	/* And it loads back into the same pages. */
	struct ndir *e = calloc(1, sizeof(*e));
	if (!e || nsd_decode(e, m->b, m->len) != 0 || e->npg != d->npg || e->nfl != d->nfl ||
	    e->npages != d->npages)
		abort();
	for (size_t i = 0; i < d->npg; i++)
		if (e->pg[i]->pgno != d->pg[i]->pgno || e->pg[i]->n != d->pg[i]->n)
			abort();
	nsd_free(e);
}

static void edit_mode(const uint8_t *data, size_t size)
{
	struct ndir *d = calloc(1, sizeof(*d));
	struct membuf m = {0};
	uint64_t nextid = 1;
	size_t at = 0;
	if (!d)
		abort();
	d->parent = 7;
	uint32_t bulk = 0;
	while (at < size) {
		uint8_t op = data[at++];
		char name[NS_NAME_MAX + 1];
		struct pos p;
		switch (op & 3) {
		case 0: {
			/* Insert one name of 1..64 bytes from the next bytes, as letters. */
			size_t nl = 1 + (op >> 2) % 64;
			for (size_t i = 0; i < nl; i++)
				name[i] = (char)('a' + (at + i < size ? data[at + i] : i) % 26);
			at += nl < 4 ? nl : 4;
			if (!nsd_find(d, name, nl, &p) &&
			    nsd_insert(d, p, name, nl, nextid++, (op & 4) ? NS_DIR : NS_FILE) != 0)
				abort();
			break;
		}
		case 1: {
			/* Many names at once (pages fill and split with short inputs): 8 x (1 +
			 * op >> 2) names, 20..83 bytes, spread by a multiplier. */
			unsigned cnt = 8u * (1u + (op >> 2)), len = 20u + (op >> 2);
			for (unsigned k = 0; k < cnt; k++, bulk++) {
				int nl = snprintf(name, sizeof(name), "%08x-%0*u",
				                  (unsigned)(bulk * 2654435761u), (int)(len - 9), k);
				if (!nsd_find(d, name, (size_t)nl, &p) &&
				    nsd_insert(d, p, name, (size_t)nl, nextid++, NS_FILE) != 0)
					abort();
			}
			break;
		}
		case 2: {
			/* Remove 1 + op >> 2 entries from the k-th on (pages empty out). */
			if (d->n == 0 || at + 2 > size)
				break;
			size_t k = le_get16(data + at) % d->n;
			at += 2;
			for (unsigned c = 0; c <= (unsigned)(op >> 2) && k < d->n; c++) {
				size_t j = k;
				p = (struct pos){0, 0};
				while (j >= d->pg[p.p]->n) {
					j -= d->pg[p.p]->n;
					p.p++;
				}
				p.i = j;
				nsd_remove(d, p);
			}
			break;
		}
		default:
			if (op & 4)
				d->whole = 1; /* as after a failed page write */
			flush_mem(d, &m);
			break;
		}
	}
	flush_mem(d, &m);
	/* Near-valid version 2 bytes for the parser: one byte changed (where and to what
	 * from the input), checksums recomputed by parse_mode's second pass. */
	if (size >= 2 && m.len) {
		size_t off = (le_get16(data + size - 2) * 2654435761u) % m.len;
		m.b[off] ^= (uint8_t)(data[0] | 1);
		uint8_t *in = malloc(m.len + 1);
		if (!in)
			abort();
		in[0] = 0;
		memcpy(in + 1, m.b, m.len);
		parse_mode(in + 1, m.len);
		free(in);
	}
	nsd_free(d);
	free(m.b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (data[0] & 1)
		edit_mode(data + 1, size - 1);
	else
		parse_mode(data + 1, size - 1);
	return 0;
}
