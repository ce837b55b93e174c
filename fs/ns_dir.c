/* fs/ns_dir.c: directory objects (docs/format.md "Directories") in memory and as
 * bytes: parse, decode into pages, edit, encode (version 1 and 2), write changed
 * pages through a callback. Pure: no store, no I/O (fs/ns.c reads and writes them;
 * fuzz/fuzz-dir.c drives them directly). */
#include <config.h>

#include "fs/ns_dir.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "common/endian.h"

static const char DIR_MAGIC[4] = {'B', 'K', 'S', 'D'};
static const char LEAF_MAGIC[4] = {'B', 'K', 'S', 'L'};
static const char FREE_MAGIC[4] = {'B', 'K', 'S', 'F'};

/* --- freeing --- */

static void page_free(struct npage *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->e[i].name);
	free(p->e);
	free(p);
}

void nsd_free(struct ndir *d)
{
	for (size_t i = 0; i < d->npg; i++)
		page_free(d->pg[i]);
	free(d->pg);
	free(d->fl);
	free(d);
}


static int name_cmp(const char *a, size_t al, const char *b, size_t bl)
{
	int c = memcmp(a, b, BKS_MIN(al, bl));
	return c ? c : (al < bl ? -1 : al > bl);
}

/* --- directory bytes --- */

typedef int (*ent_fn)(void *ctx, const char *name, size_t nlen, uint64_t id, uint32_t type);

/* count entries from b + *off up to b + end, each after *prev (across pages). The
 * zero byte is checked in version 2 only (version 1 never did). */
static int parse_ents(const uint8_t *b, size_t end, uint32_t count, size_t *offp,
                      const char **prev, size_t *prevl, int v2, ent_fn fn, void *ctx)
{
	size_t off = *offp;
	for (uint32_t i = 0; i < count; i++) {
		if (end - off < DIR_ENT_FIXED)
			return -EINVAL;
		uint64_t id = le_get64(b + off);
		uint32_t type = b[off + 8];
		uint32_t nl = le_get16(b + off + 10);
		off += DIR_ENT_FIXED;
		if (id == 0 || (type != NS_FILE && type != NS_DIR && type != NS_SYMLINK) ||
		    (v2 && b[off - 3]) || nl == 0 || nl > NS_NAME_MAX || end - off < nl)
			return -EINVAL;
		const char *name = (const char *)b + off;
		if (memchr(name, '/', nl) || memchr(name, 0, nl) ||
		    (nl == 1 && name[0] == '.') || (nl == 2 && name[0] == '.' && name[1] == '.'))
			return -EINVAL;
		if (*prev && name_cmp(*prev, *prevl, name, nl) >= 0)
			return -EINVAL; /* out of order or a duplicate */
		if (fn) {
			int r = fn(ctx, name, nl, id, type);
			if (r < 0)
				return r;
		}
		*prev = name;
		*prevl = nl;
		off += nl;
	}
	*offp = off;
	return 0;
}

static uint64_t page_sum(const uint8_t *p, uint32_t pgno)
{
	return XXH3_64bits_withSeed(p, DIR_PAGE - PG_SUM, pgno);
}

static int all_zero(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i])
			return 0;
	return 1;
}

/* A page of a version 2 object: its magic, number, checksum, zeros past its entries. */
static int page_ok(const uint8_t *p, uint32_t pgno, const char magic[4])
{
	uint32_t used = le_get16(p + 6);
	return !memcmp(p, magic, 4) && le_get32(p + 8) == pgno && used <= PG_CAP &&
	       all_zero(p + PG_HDR + used, PG_CAP - used) &&
	       le_get64(p + DIR_PAGE - PG_SUM) == page_sum(p, pgno);
}

/* Version 2: every page is the header, a leaf on the chain from the first leaf (none
 * empty, names increasing across the chain) or a free page on the free chain; each
 * exactly once. pgfn (may be NULL) hears of each leaf before its entries, then of
 * each free page. */
static int parse_v2(const uint8_t *b, size_t len, uint64_t *parent, ent_fn fn,
                    int (*pgfn)(void *ctx, uint32_t pgno, int free), void *ctx)
{
	if (len < DIR_PAGE || len % DIR_PAGE || len > DIR_MAX_BYTES)
		return -EINVAL;
	uint32_t pages = (uint32_t)(len / DIR_PAGE);
	if (le_get32(b + 8) || le_get32(b + 12) || le_get32(b + 24) != DIR_PAGE ||
	    le_get32(b + 28) != pages || !all_zero(b + HDR2_END, DIR_PAGE - PG_SUM - HDR2_END) ||
	    le_get64(b + DIR_PAGE - PG_SUM) != page_sum(b, 0))
		return -EINVAL;
	*parent = le_get64(b + 16);
	uint8_t *seen = calloc(pages, 1);
	if (!seen)
		return -ENOMEM;
	const char *prev = NULL;
	size_t prevl = 0;
	int r = 0;
	for (uint32_t pg = le_get32(b + 32); pg && r == 0;) {
		const uint8_t *p = b + (size_t)pg * DIR_PAGE;
		if (pg >= pages || seen[pg] || !page_ok(p, pg, LEAF_MAGIC) || !le_get16(p + 4)) {
			r = -EINVAL;
			break;
		}
		seen[pg] = 1;
		size_t off = PG_HDR, end = PG_HDR + le_get16(p + 6);
		if (pgfn && (r = pgfn(ctx, pg, 0)) < 0)
			break;
		if ((r = parse_ents(p, end, le_get16(p + 4), &off, &prev, &prevl, 1, fn, ctx)) < 0)
			break;
		if (off != end)
			r = -EINVAL;
		pg = le_get32(p + 12);
	}
	for (uint32_t pg = le_get32(b + 36); pg && r == 0;) {
		const uint8_t *p = b + (size_t)pg * DIR_PAGE;
		if (pg >= pages || seen[pg] || !page_ok(p, pg, FREE_MAGIC) || le_get32(p + 4)) {
			r = -EINVAL;
			break;
		}
		seen[pg] = 1;
		if (pgfn && (r = pgfn(ctx, pg, 1)) < 0)
			break;
		pg = le_get32(p + 12);
	}
	for (uint32_t i = 1; r == 0 && i < pages; i++)
		if (!seen[i])
			r = -EINVAL; /* a page on neither chain */
	free(seen);
	return r;
}

static int dir_parse(const uint8_t *b, size_t len, uint64_t *parent, ent_fn fn,
                     int (*pgfn)(void *ctx, uint32_t pgno, int free), void *ctx)
{
	/* The errors of docs/format.md: no magic ENOENT, version EPROTO, else EINVAL. */
	if (len < 4 || memcmp(b, DIR_MAGIC, 4))
		return -ENOENT;
	if (len < DIR_HDR)
		return -EINVAL;
	if (le_get32(b + 4) == DIR_VERSION_PAGED)
		return parse_v2(b, len, parent, fn, pgfn, ctx);
	if (le_get32(b + 4) != DIR_VERSION)
		return -EPROTO;
	*parent = le_get64(b + 16);
	size_t off = DIR_HDR;
	const char *prev = NULL;
	size_t prevl = 0;
	int r = parse_ents(b, len, le_get32(b + 8), &off, &prev, &prevl, 0, fn, ctx);
	if (r < 0)
		return r;
	return off == len ? 0 : -EINVAL;
}

int ns_dir_parse(const uint8_t *b, size_t len, uint64_t *parent, ent_fn fn, void *ctx)
{
	return dir_parse(b, len, parent, fn, NULL, ctx);
}


/* --- a directory's pages in memory --- */

size_t nsd_ent_bytes(size_t nl)
{
	return DIR_ENT_FIXED + nl;
}

static int page_reserve(struct npage *p, size_t want)
{
	if (want <= p->cap)
		return 0;
	size_t nc = p->cap ? p->cap * 2 : 16;
	while (nc < want)
		nc *= 2;
	struct nent *e = realloc(p->e, nc * sizeof(*e));
	if (!e)
		return -ENOMEM;
	p->e = e;
	p->cap = nc;
	return 0;
}

/* Room for one more page and one more free page (so that removing a page never
 * needs memory). */
static int dir_reserve_pages(struct ndir *d)
{
	if (d->npg == d->pgcap) {
		size_t nc = d->pgcap ? d->pgcap * 2 : 4;
		struct npage **pg = realloc(d->pg, nc * sizeof(*pg));
		if (!pg)
			return -ENOMEM;
		d->pg = pg;
		d->pgcap = nc;
	}
	if (d->nfl + d->npg + 1 > d->flcap) {
		size_t nc = (d->nfl + d->npg + 1) * 2;
		struct fpage *fl = realloc(d->fl, nc * sizeof(*fl));
		if (!fl)
			return -ENOMEM;
		d->fl = fl;
		d->flcap = nc;
	}
	return 0;
}

/* Put page p at index at of the order; the page before it (or the header, whose first
 * leaf it may be) now points to it. Room is reserved (dir_reserve_pages). */
static void pages_insert(struct ndir *d, size_t at, struct npage *p)
{
	memmove(d->pg + at + 1, d->pg + at, (d->npg - at) * sizeof(*d->pg));
	d->pg[at] = p;
	d->npg++;
	if (at > 0)
		d->pg[at - 1]->dirty = 1;
	else
		d->hdirty = 1;
	p->dirty = 1;
	d->dirty = 1;
}

/* A page number for a new leaf of a version 2 object: a free page, else one more. A
 * version 1 directory numbers its pages when it is converted (write_dir). */
static uint32_t page_number(struct ndir *d)
{
	if (!d->v2)
		return 0;
	d->hdirty = 1;
	if (d->nfl) {
		uint32_t pg = d->fl[0].pgno;
		memmove(d->fl, d->fl + 1, (d->nfl - 1) * sizeof(*d->fl));
		d->nfl--;
		return pg;
	}
	return d->npages++;
}

/* Binary search: *at = the position of name, or where it would go: in the last page
 * whose first name is not above it (the first page for a name before them all). */
int nsd_find(const struct ndir *d, const char *name, size_t nl, struct pos *at)
{
	size_t lo = 0, hi = d->npg;
	*at = (struct pos){0, 0};
	if (!d->npg)
		return 0;
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		const struct nent *f = &d->pg[mid]->e[0];
		if (name_cmp(f->name, f->nlen, name, nl) <= 0)
			lo = mid;
		else
			hi = mid;
	}
	const struct npage *p = d->pg[lo];
	size_t a = 0, b = p->n;
	at->p = lo;
	while (a < b) {
		size_t mid = a + (b - a) / 2;
		int c = name_cmp(p->e[mid].name, p->e[mid].nlen, name, nl);
		if (c == 0) {
			at->i = mid;
			return 1;
		}
		if (c < 0)
			a = mid + 1;
		else
			b = mid;
	}
	at->i = a;
	return 0;
}

/* Past the end of its page: the first entry of the next (readdir's walk). */
void nsd_pos_norm(const struct ndir *d, struct pos *at)
{
	if (at->p < d->npg && at->i >= d->pg[at->p]->n) {
		at->p++;
		at->i = 0;
	}
}

/* Split page at index pi: its upper half (by bytes) moves to a new page after it. */
static int page_split(struct ndir *d, size_t pi)
{
	struct npage *p = d->pg[pi], *q = calloc(1, sizeof(*q));
	size_t h = 0, acc = 0;
	if (!q || dir_reserve_pages(d) < 0 || page_reserve(q, p->n) < 0) {
		free(q ? q->e : NULL);
		free(q);
		return -ENOMEM;
	}
	while (h < p->n && acc + nsd_ent_bytes(p->e[h].nlen) <= p->used / 2)
		acc += nsd_ent_bytes(p->e[h++].nlen);
	if (h == 0)
		acc += nsd_ent_bytes(p->e[h++].nlen); /* cannot happen: an entry is < PG_CAP / 2 */
	q->n = p->n - h;
	memcpy(q->e, p->e + h, q->n * sizeof(*q->e));
	q->used = p->used - (uint32_t)acc;
	p->n = h;
	p->used = (uint32_t)acc;
	p->dirty = 1;
	q->pgno = page_number(d);
	pages_insert(d, pi + 1, q);
	return 0;
}

/* An edit: the directory is dirty from here on (it cannot be dropped unwritten). On
 * -ENOMEM nothing is lost (a split may have happened: a valid directory too). */
int nsd_insert(struct ndir *d, struct pos at, const char *name, size_t nl,
                      uint64_t id, uint32_t type)
{
	size_t eb = nsd_ent_bytes(nl);
	struct npage *p;
	char *nm = malloc(nl + 1);
	if (!nm)
		return -ENOMEM;
	if (d->npg == 0) {
		/* The first leaf, with room for its entry: no leaf is ever left empty. */
		p = calloc(1, sizeof(*p));
		if (!p || dir_reserve_pages(d) < 0 || page_reserve(p, 1) < 0) {
			free(p ? p->e : NULL);
			free(p);
			free(nm);
			return -ENOMEM;
		}
		p->pgno = page_number(d);
		pages_insert(d, 0, p);
		at = (struct pos){0, 0};
	}
	if (d->pg[at.p]->used + eb > PG_CAP) {
		if (page_split(d, at.p) < 0) {
			free(nm);
			return -ENOMEM;
		}
		size_t h = d->pg[at.p]->n;
		if (at.i > h) {
			at.p++;
			at.i -= h;
		}
	}
	p = d->pg[at.p];
	if (page_reserve(p, p->n + 1) < 0) {
		free(nm);
		return -ENOMEM;
	}
	memcpy(nm, name, nl);
	nm[nl] = 0;
	memmove(p->e + at.i + 1, p->e + at.i, (p->n - at.i) * sizeof(*p->e));
	p->e[at.i] = (struct nent){.name = nm, .nlen = (uint32_t)nl, .type = type, .id = id};
	p->n++;
	p->used += (uint32_t)eb;
	p->dirty = 1;
	d->n++;
	d->nsub += type == NS_DIR;
	d->dirty = 1;
	return 0;
}

/* An empty page leaves the order (and goes on the free list of a version 2 object;
 * room for it is reserved with every page). Never fails. */
void nsd_remove(struct ndir *d, struct pos at)
{
	struct npage *p = d->pg[at.p];
	struct nent *e = &p->e[at.i];
	d->nsub -= e->type == NS_DIR;
	p->used -= (uint32_t)nsd_ent_bytes(e->nlen);
	free(e->name);
	memmove(e, e + 1, (p->n - at.i - 1) * sizeof(*e));
	p->n--;
	p->dirty = 1;
	d->n--;
	d->dirty = 1;
	if (p->n)
		return;
	memmove(d->pg + at.p, d->pg + at.p + 1, (d->npg - at.p - 1) * sizeof(*d->pg));
	d->npg--;
	if (at.p > 0)
		d->pg[at.p - 1]->dirty = 1; /* its next changed */
	d->hdirty = 1;
	if (d->v2 && p->pgno) {
		memmove(d->fl + 1, d->fl, d->nfl * sizeof(*d->fl));
		d->fl[0] = (struct fpage){.pgno = p->pgno, .dirty = 1};
		d->nfl++;
	}
	page_free(p);
}

/* The entry at `at` names another object (a replace: same name, so no page moves). */
void nsd_set(struct ndir *d, struct pos at, uint64_t id, uint32_t type)
{
	struct nent *e = &ENT(d, at);
	d->nsub += (type == NS_DIR) - (e->type == NS_DIR);
	e->id = id;
	e->type = type;
	d->pg[at.p]->dirty = 1;
	d->dirty = 1;
}


/* --- loading --- */

struct load {
	struct ndir *d;
	int paged;               /* a version 2 object: entries go to the page announced */
};

static struct npage *load_page(struct ndir *d, uint32_t pgno)
{
	struct npage *p = calloc(1, sizeof(*p));
	if (!p || dir_reserve_pages(d) < 0) {
		free(p);
		return NULL;
	}
	p->pgno = pgno;
	d->pg[d->npg++] = p;
	return p;
}

static int load_pg(void *ctx, uint32_t pgno, int isfree)
{
	struct load *l = ctx;
	struct ndir *d = l->d;
	l->paged = 1;
	if (isfree) {
		if (dir_reserve_pages(d) < 0)
			return -ENOMEM;
		d->fl[d->nfl++] = (struct fpage){.pgno = pgno};
		return 0;
	}
	return load_page(d, pgno) ? 0 : -ENOMEM;
}

static int load_ent(void *ctx, const char *name, size_t nl, uint64_t id, uint32_t type)
{
	struct load *l = ctx;
	struct ndir *d = l->d;
	size_t eb = nsd_ent_bytes(nl);
	struct npage *p = d->npg ? d->pg[d->npg - 1] : NULL;
	/* Version 1: pages filled to LOAD_FILL, leaving room to insert without a split. */
	if (!l->paged && (!p || p->used + eb > LOAD_FILL) && !(p = load_page(d, 0)))
		return -ENOMEM;
	char *nm = malloc(nl + 1);
	if (!nm || page_reserve(p, p->n + 1) < 0) {
		free(nm);
		return -ENOMEM;
	}
	memcpy(nm, name, nl);
	nm[nl] = 0;
	p->e[p->n++] = (struct nent){.name = nm, .nlen = (uint32_t)nl, .type = type, .id = id};
	p->used += (uint32_t)eb;
	d->n++;
	d->nsub += type == NS_DIR;
	return 0;
}

/* Decode a directory object's bytes into d (empty, id set). */
int nsd_decode(struct ndir *d, const uint8_t *b, size_t len)
{
	struct load l = {.d = d};
	int r = dir_parse(b, len, &d->parent, load_ent, load_pg, &l);
	if (r == 0 && l.paged) {
		d->v2 = 1;
		d->npages = (uint32_t)(len / DIR_PAGE);
	}
	if (r == 0 && !l.paged && len >= 8 && le_get32(b + 4) == DIR_VERSION_PAGED) {
		d->v2 = 1; /* a version 2 directory with no pages but the header */
		d->npages = (uint32_t)(len / DIR_PAGE);
	}
	return r;
}


/* --- encoding --- */

size_t nsd_v1_len(const struct ndir *d)
{
	size_t len = DIR_HDR;
	for (size_t i = 0; i < d->npg; i++)
		len += d->pg[i]->used;
	return len;
}

int nsd_encode_v1(const struct ndir *d, uint8_t **out, size_t *outlen)
{
	size_t len = nsd_v1_len(d);
	uint8_t *b = calloc(1, len), *p;
	if (!b)
		return -ENOMEM;
	memcpy(b, DIR_MAGIC, 4);
	le_put32(b + 4, DIR_VERSION);
	le_put32(b + 8, (uint32_t)d->n);
	le_put64(b + 16, d->parent);
	p = b + DIR_HDR;
	for (size_t j = 0; j < d->npg; j++)
		for (size_t i = 0; i < d->pg[j]->n; i++) {
			const struct nent *e = &d->pg[j]->e[i];
			le_put64(p, e->id);
			p[8] = (uint8_t)e->type;
			le_put16(p + 10, (uint16_t)e->nlen);
			memcpy(p + DIR_ENT_FIXED, e->name, e->nlen);
			p += DIR_ENT_FIXED + e->nlen;
		}
	*out = b;
	*outlen = len;
	return 0;
}

void nsd_seal_page(uint8_t *b, uint32_t pgno)
{
	le_put64(b + DIR_PAGE - PG_SUM, page_sum(b, pgno));
}

static void encode_hdr(const struct ndir *d, uint8_t *b)
{
	memset(b, 0, DIR_PAGE);
	memcpy(b, DIR_MAGIC, 4);
	le_put32(b + 4, DIR_VERSION_PAGED);
	le_put64(b + 16, d->parent);
	le_put32(b + 24, DIR_PAGE);
	le_put32(b + 28, d->npages);
	le_put32(b + 32, d->npg ? d->pg[0]->pgno : 0);
	le_put32(b + 36, d->nfl ? d->fl[0].pgno : 0);
	nsd_seal_page(b, 0);
}

static void encode_leaf(const struct ndir *d, size_t pi, uint8_t *b)
{
	const struct npage *p = d->pg[pi];
	memset(b, 0, DIR_PAGE);
	memcpy(b, LEAF_MAGIC, 4);
	le_put16(b + 4, (uint16_t)p->n);
	le_put16(b + 6, (uint16_t)p->used);
	le_put32(b + 8, p->pgno);
	le_put32(b + 12, pi + 1 < d->npg ? d->pg[pi + 1]->pgno : 0);
	uint8_t *q = b + PG_HDR;
	for (size_t i = 0; i < p->n; i++) {
		le_put64(q, p->e[i].id);
		q[8] = (uint8_t)p->e[i].type;
		le_put16(q + 10, (uint16_t)p->e[i].nlen);
		memcpy(q + DIR_ENT_FIXED, p->e[i].name, p->e[i].nlen);
		q += DIR_ENT_FIXED + p->e[i].nlen;
	}
	nsd_seal_page(b, p->pgno);
}

static void encode_free(const struct ndir *d, size_t fi, uint8_t *b)
{
	memset(b, 0, DIR_PAGE);
	memcpy(b, FREE_MAGIC, 4);
	le_put32(b + 8, d->fl[fi].pgno);
	le_put32(b + 12, fi + 1 < d->nfl ? d->fl[fi + 1].pgno : 0);
	nsd_seal_page(b, d->fl[fi].pgno);
}

/* The whole version 2 object, pages renumbered in name order and no free page. */
int nsd_encode_v2(struct ndir *d, uint8_t **out, size_t *outlen)
{
	for (size_t i = 0; i < d->npg; i++)
		d->pg[i]->pgno = (uint32_t)(i + 1);
	d->nfl = 0;
	d->npages = (uint32_t)(d->npg + 1);
	size_t len = (size_t)d->npages * DIR_PAGE;
	if (len > DIR_MAX_BYTES)
		return -EFBIG;
	uint8_t *b = malloc(len);
	if (!b)
		return -ENOMEM;
	encode_hdr(d, b);
	for (size_t i = 0; i < d->npg; i++)
		encode_leaf(d, i, b + (i + 1) * DIR_PAGE);
	*out = b;
	*outlen = len;
	return 0;
}

void nsd_clean(struct ndir *d)
{
	for (size_t i = 0; i < d->npg; i++)
		d->pg[i]->dirty = 0;
	for (size_t i = 0; i < d->nfl; i++)
		d->fl[i].dirty = 0;
	d->dirty = d->hdirty = d->whole = 0;
}



/* A version 2 directory's changed pages through out: leaves, free pages, then the
 * header; *pages counts those written. The directory is clean after a success. */
int nsd_write_pages(struct ndir *d, page_out_fn out, void *ctx, uint64_t *pages)
{
	int r = 0;
	uint8_t *b = malloc(DIR_PAGE);
	if (!b)
		return -ENOMEM;
	for (size_t i = 0; i < d->npg && r == 0; i++)
		if (d->pg[i]->dirty) {
			encode_leaf(d, i, b);
			r = out(ctx, (uint64_t)d->pg[i]->pgno * DIR_PAGE, b, DIR_PAGE);
			(*pages)++;
		}
	for (size_t i = 0; i < d->nfl && r == 0; i++)
		if (d->fl[i].dirty) {
			encode_free(d, i, b);
			r = out(ctx, (uint64_t)d->fl[i].pgno * DIR_PAGE, b, DIR_PAGE);
			(*pages)++;
		}
	if (r == 0 && d->hdirty) {
		encode_hdr(d, b);
		r = out(ctx, 0, b, DIR_PAGE);
		(*pages)++;
	}
	free(b);
	if (r == 0)
		nsd_clean(d);
	return r;
}


