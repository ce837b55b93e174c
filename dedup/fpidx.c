/* dedup/fpidx.c: see fpidx.h; block formats in docs/format.md ("Fingerprint index"). */
#include <config.h>

#include "dedup/fpidx.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

#include "common/endian.h"
#include "dedup/barray.h"
#include "storage/disk.h"

#define ENT_SIZE (FP_LEN + SEG_PTR_ENC) /* 72 bytes: fingerprint, pointer */
#define BLK_HDR 16
#define MAX_RUNS 8                 /* merge when a sync would make more */
#define BLOOM_BITS_PER 10          /* ~1% false positives with 7 probes */
#define BLOOM_K 7
#define LOC_SLOTS (1u << 16)       /* locality cache: 65536 entries, ~5 MiB */
#define LOC_SEGS 64                /* recently loaded segment tables */

static const char RUNLIST_MAGIC[4] = {'B', 'K', 'I', 'R'};
static const char ENTBLK_MAGIC[4] = {'B', 'K', 'I', 'E'};

struct ment {
	uint8_t fp[FP_LEN];
	seg_ptr loc;
	uint8_t used;
};

struct run {
	uint64_t nent;
	uint64_t nbits;        /* Bloom filter size */
	barray *dir;           /* per block: first fingerprint + block pointer (72 bytes) */
	barray *bloom;         /* 64-bit words */
};

struct fpidx {
	pool *pl;
	uint32_t block;        /* metadata block size */
	uint32_t per_block;    /* entries per block */
	struct ment *mem;      /* memtable */
	uint64_t mcap, mcount;
	struct ment *loc;      /* locality cache (direct-mapped) */
	uint64_t loc_seg[LOC_SEGS];
	uint32_t loc_pos;
	struct run runs[MAX_RUNS + 1]; /* [0] oldest */
	int nruns;
	seg_ptr runlist;       /* run list block of the last sync */
	int runs_dirty;        /* runs changed since (a merge): the run list must be rewritten */
	uint8_t *blk;          /* one block */
	seg_entry *ents;       /* one segment table */
	uint32_t ents_cap;
	uint64_t gen;          /* fpidx_gen: bumped when runs or their blocks change */
	fpidx_stats st;
};

/* Generations of different index objects never meet: each starts in its own epoch
 * (store_rebuild_index replaces the index while a prefetch may be out). */
static uint64_t gen_epochs;

static uint64_t fp_word(const uint8_t *fp, int i)
{
	uint64_t v;
	memcpy(&v, fp + 8 * i, 8);
	return v;
}

/* --- memtable and locality cache --- */

static struct ment *mem_slot(struct ment *t, uint64_t cap, const uint8_t *fp)
{
	uint64_t i = fp_word(fp, 0) & (cap - 1);
	while (t[i].used && memcmp(t[i].fp, fp, FP_LEN))
		i = (i + 1) & (cap - 1);
	return &t[i];
}

static int mem_put(fpidx *x, const uint8_t *fp, const seg_ptr *loc)
{
	if ((x->mcount + 1) * 10 > x->mcap * 7) {
		uint64_t ncap = x->mcap ? x->mcap * 2 : 4096;
		struct ment *n = calloc(ncap, sizeof(*n));
		if (!n)
			return -ENOMEM;
		for (uint64_t i = 0; i < x->mcap; i++)
			if (x->mem[i].used)
				*mem_slot(n, ncap, x->mem[i].fp) = x->mem[i];
		free(x->mem);
		x->mem = n;
		x->mcap = ncap;
	}
	struct ment *m = mem_slot(x->mem, x->mcap, fp);
	if (!m->used) {
		memcpy(m->fp, fp, FP_LEN);
		m->used = 1;
		x->mcount++;
	}
	m->loc = *loc;
	return 0;
}

/* Remove a memtable entry (backward-shift deletion: linear probing needs no
 * tombstones if every later entry of the same probe run moves up). */
static void mem_del(fpidx *x, struct ment *m)
{
	uint64_t mask = x->mcap - 1, i = (uint64_t)(m - x->mem), j = i;
	x->mem[i].used = 0;
	x->mcount--;
	for (;;) {
		j = (j + 1) & mask;
		if (!x->mem[j].used)
			return;
		uint64_t home = fp_word(x->mem[j].fp, 0) & mask;
		/* Entry j may fill the hole at i if its home is not in (i, j] (cyclically). */
		int stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
		if (stays)
			continue;
		x->mem[i] = x->mem[j];
		x->mem[j].used = 0;
		i = j;
	}
}

static struct ment *loc_slot(fpidx *x, const uint8_t *fp)
{
	return &x->loc[fp_word(fp, 1) & (LOC_SLOTS - 1)];
}

static int loc_has(const fpidx *x, uint64_t seg_id)
{
	for (int i = 0; i < LOC_SEGS; i++)
		if (x->loc_seg[i] == seg_id)
			return 1;
	return 0;
}

static void loc_fill(fpidx *x, const seg_header *h, const seg_entry *ents, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		struct ment *m = loc_slot(x, ents[i].fp);
		memcpy(m->fp, ents[i].fp, FP_LEN);
		seg_ptr_from_entry(h, &ents[i], &m->loc);
		m->used = 1;
	}
	x->loc_seg[x->loc_pos++ % LOC_SEGS] = h->seg_id;
}

/* Load a data segment's whole table into the locality cache. */
static void loc_load(fpidx *x, uint64_t row, uint64_t seg_id)
{
	seg_header h;
	if (loc_has(x, seg_id))
		return;
	int n = pool_read_seg_table(x->pl, row, &h, x->ents, x->ents_cap);
	if (n < 0 || h.seg_id != seg_id)
		return;
	x->st.block_reads++;
	loc_fill(x, &h, x->ents, (uint32_t)n);
}

/* --- runs --- */

static int bloom_test(const struct run *r, const uint8_t *fp)
{
	uint64_t h1 = fp_word(fp, 2), h2 = fp_word(fp, 3) | 1;
	for (int i = 0; i < BLOOM_K; i++) {
		uint64_t bit = (h1 + (uint64_t)i * h2) % r->nbits;
		uint64_t w;
		memcpy(&w, barray_get(r->bloom, bit / 64), 8);
		if (!(w >> (bit % 64) & 1))
			return 0;
	}
	return 1;
}

static void bloom_set(struct run *r, const uint8_t *fp)
{
	uint64_t h1 = fp_word(fp, 2), h2 = fp_word(fp, 3) | 1;
	for (int i = 0; i < BLOOM_K; i++) {
		uint64_t bit = (h1 + (uint64_t)i * h2) % r->nbits;
		uint64_t w;
		uint8_t *p = barray_mut(r->bloom, bit / 64);
		memcpy(&w, p, 8);
		w |= 1ull << (bit % 64);
		memcpy(p, &w, 8);
	}
}

/* The entry block blk (the bytes at bp): checked as every reader of it checks. */
static int block_ok(const seg_ptr *bp, const uint8_t *blk)
{
	uint32_t n = le_get16(blk + 6);
	return !memcmp(blk, ENTBLK_MAGIC, 4) && bp->rlen == BLK_HDR + n * ENT_SIZE;
}

/* Find fp in entry block blk: 1 and *loc, 0 not there, -EINVAL malformed. */
static int block_find(const seg_ptr *bp, const uint8_t *blk, const uint8_t *fp, seg_ptr *loc)
{
	if (!block_ok(bp, blk))
		return -EINVAL;
	int64_t a = 0, b = (int64_t)le_get16(blk + 6) - 1;
	while (a <= b) {
		int64_t m = (a + b) / 2;
		const uint8_t *e = blk + BLK_HDR + m * ENT_SIZE;
		int c = memcmp(e, fp, FP_LEN);
		if (c == 0) {
			seg_ptr_decode(e + FP_LEN, loc);
			return 1;
		}
		if (c < 0)
			a = m + 1;
		else
			b = m - 1;
	}
	return 0;
}

/* The entry block of run r that would hold fp (0), or 0 with the Bloom filter
 * saying no (1 when there is a block). */
static int run_block(const struct run *r, const uint8_t *fp, seg_ptr *bp)
{
	uint64_t nb = barray_count(r->dir);
	if (!nb || !bloom_test(r, fp))
		return 0;
	uint64_t lo = 0, hi = nb;
	while (hi - lo > 1) {
		uint64_t mid = (lo + hi) / 2;
		if (memcmp(barray_get(r->dir, mid), fp, FP_LEN) <= 0)
			lo = mid;
		else
			hi = mid;
	}
	seg_ptr_decode((const uint8_t *)barray_get(r->dir, lo) + FP_LEN, bp);
	return 1;
}

/* Find fp in one run: 1 found, 0 not, -errno. */
static int run_find(fpidx *x, struct run *r, const uint8_t *fp, seg_ptr *loc)
{
	seg_ptr bp;
	if (!run_block(r, fp, &bp)) {
		x->st.bloom_skips++;
		return 0;
	}
	/* A block in the pool's cache is searched where it is (no 32 KiB copy). */
	const uint8_t *blk = pool_meta_peek(x->pl, &bp);
	if (!blk) {
		int rc = pool_meta_read(x->pl, &bp, x->blk, x->block);
		if (rc < 0)
			return rc;
		x->st.block_reads++;
		blk = x->blk;
	}
	return block_find(&bp, blk, fp, loc);
}

int fpidx_lookup(fpidx *x, const uint8_t fp[FP_LEN], seg_ptr *loc)
{
	x->st.lookups++;
	if (x->mcap) {
		/* The memtable is as fallible as the rest: the collector may have freed the
		 * row of a chunk written in this very txg (the object was deleted before the
		 * commit). Such an entry is dropped here and the older layers asked, which
		 * check liveness the same way; answering it would let a write deduplicate
		 * against a row that is reused after the commit. */
		struct ment *m = mem_slot(x->mem, x->mcap, fp);
		if (m->used) {
			if (pool_ptr_live(x->pl, &m->loc)) {
				x->st.memtable_hits++;
				*loc = m->loc;
				return 1;
			}
			mem_del(x, m);
		}
	}
	struct ment *c = loc_slot(x, fp);
	if (c->used && !memcmp(c->fp, fp, FP_LEN)) {
		if (pool_ptr_live(x->pl, &c->loc)) {
			x->st.locality_hits++;
			*loc = c->loc;
			return 1;
		}
		c->used = 0;
	}
	for (int i = x->nruns - 1; i >= 0; i--) {
		int r = run_find(x, &x->runs[i], fp, loc);
		if (r < 0)
			return r;
		if (r == 0)
			continue;
		/* The newest run that knows fp decides. */
		if (!pool_ptr_live(x->pl, loc))
			break;
		x->st.run_hits++;
		loc_load(x, loc->row, loc->seg_id);
		return 1;
	}
	x->st.misses++;
	return 0;
}

static int same_place(const seg_ptr *a, const seg_ptr *b)
{
	return a->seg_id == b->seg_id && a->off == b->off;
}

int fpidx_lookup_other(fpidx *x, const uint8_t fp[FP_LEN], const seg_ptr *not,
                       seg_ptr *loc)
{
	if (x->mcap) {
		struct ment *m = mem_slot(x->mem, x->mcap, fp);
		if (m->used && pool_ptr_live(x->pl, &m->loc) && !same_place(&m->loc, not)) {
			*loc = m->loc;
			return 1;
		}
	}
	/* Every run, not only the newest that knows fp: a run written before the repair
	 * names the damaged copy, a newer one the good copy (or the reverse never: a
	 * damaged copy is never written again, the collector copies only what reads
	 * correctly). */
	for (int i = x->nruns - 1; i >= 0; i--) {
		seg_ptr p;
		int r = run_find(x, &x->runs[i], fp, &p);
		if (r < 0)
			return r;
		if (r > 0 && pool_ptr_live(x->pl, &p) && !same_place(&p, not)) {
			*loc = p;
			return 1;
		}
	}
	return 0;
}

int fpidx_insert(fpidx *x, const uint8_t fp[FP_LEN], const seg_ptr *loc)
{
	struct ment *c = loc_slot(x, fp);
	if (c->used && !memcmp(c->fp, fp, FP_LEN))
		c->loc = *loc;
	return mem_put(x, fp, loc);
}

static int cmp_ent(const void *a, const void *b)
{
	return memcmp(a, b, FP_LEN);
}

static void run_release(fpidx *x, struct run *r, int free_blocks)
{
	if (free_blocks && r->dir) {
		for (uint64_t i = 0; i < barray_count(r->dir); i++) {
			seg_ptr bp;
			seg_ptr_decode((const uint8_t *)barray_get(r->dir, i) + FP_LEN, &bp);
			pool_meta_free(x->pl, &bp);
		}
	}
	barray_free(r->dir);
	barray_free(r->bloom);
	memset(r, 0, sizeof(*r));
}

/* Write sorted, unique entries (72 bytes each) as a new run. */
static int write_run(fpidx *x, const uint8_t *ents, uint64_t n, struct run *out)
{
	uint64_t nb = (n + x->per_block - 1) / x->per_block;
	int r;
	memset(out, 0, sizeof(*out));
	out->nent = n;
	out->nbits = BKS_MAX(n * BLOOM_BITS_PER, (uint64_t)64);
	if ((r = barray_new(pool_bio(), x->pl, ENT_SIZE, x->block, &out->dir)) < 0 ||
	    (r = barray_new(pool_bio(), x->pl, 8, x->block, &out->bloom)) < 0 ||
	    (r = barray_resize(out->dir, nb)) < 0 ||
	    (r = barray_resize(out->bloom, (out->nbits + 63) / 64)) < 0)
		goto fail;
	for (uint64_t b = 0; b < nb; b++) {
		uint64_t first = b * x->per_block;
		uint32_t cnt = (uint32_t)BKS_MIN((uint64_t)x->per_block, n - first);
		memcpy(x->blk, ENTBLK_MAGIC, 4);
		le_put16(x->blk + 4, 1);
		le_put16(x->blk + 6, (uint16_t)cnt);
		le_put64(x->blk + 8, first);
		memcpy(x->blk + BLK_HDR, ents + first * ENT_SIZE, (size_t)cnt * ENT_SIZE);
		seg_ptr bp;
		if ((r = pool_meta_write(x->pl, x->blk, BLK_HDR + cnt * ENT_SIZE, &bp)) < 0)
			goto fail;
		uint8_t *d = barray_mut(out->dir, b);
		memcpy(d, ents + first * ENT_SIZE, FP_LEN);
		seg_ptr_encode(&bp, d + FP_LEN);
	}
	for (uint64_t i = 0; i < n; i++)
		bloom_set(out, ents + i * ENT_SIZE);
	return 0;
fail:
	run_release(x, out, 0);
	return r;
}

/* Every entry of a run, appended to *buf (grown as needed). */
static int run_entries(fpidx *x, struct run *r, uint8_t **buf, uint64_t *n, uint64_t *cap)
{
	for (uint64_t b = 0; b < barray_count(r->dir); b++) {
		seg_ptr bp;
		seg_ptr_decode((const uint8_t *)barray_get(r->dir, b) + FP_LEN, &bp);
		int rc = pool_meta_read(x->pl, &bp, x->blk, x->block);
		if (rc < 0)
			return rc;
		uint32_t cnt = le_get16(x->blk + 6);
		if (memcmp(x->blk, ENTBLK_MAGIC, 4) || bp.rlen != BLK_HDR + cnt * ENT_SIZE)
			return -EINVAL;
		if (*n + cnt > *cap) {
			uint64_t nc = BKS_MAX(*cap * 2, *n + cnt);
			uint8_t *q = realloc(*buf, nc * ENT_SIZE);
			if (!q)
				return -ENOMEM;
			*buf = q;
			*cap = nc;
		}
		memcpy(*buf + *n * ENT_SIZE, x->blk + BLK_HDR, (size_t)cnt * ENT_SIZE);
		*n += cnt;
	}
	return 0;
}

/* Order entry indices by (fingerprint, position): equal fingerprints keep their
 * age order, newest last. */
static int cmp_idx(const void *pa, const void *pb, void *ctx)
{
	const uint8_t *base = ctx;
	uint64_t a = *(const uint64_t *)pa, b = *(const uint64_t *)pb;
	int c = memcmp(base + a * ENT_SIZE, base + b * ENT_SIZE, FP_LEN);
	if (c)
		return c;
	return a < b ? -1 : a > b;
}

/* Merge runs [from, nruns) and the memtable entries in extra (sorted) into one run
 * that replaces them. Newer entries win; entries whose segment is gone are dropped. */
static int merge(fpidx *x, int from, const uint8_t *extra, uint64_t nextra)
{
	uint8_t *all = NULL;
	uint64_t n = 0, cap = 0;
	int r = 0;
	/* Oldest first, so a stable sort keeps the newest last among equals. */
	for (int i = from; i < x->nruns && r == 0; i++)
		r = run_entries(x, &x->runs[i], &all, &n, &cap);
	if (r == 0 && nextra) {
		uint8_t *q = realloc(all, (n + nextra) * ENT_SIZE);
		if (!q)
			r = -ENOMEM;
		else {
			all = q;
			memcpy(all + n * ENT_SIZE, extra, nextra * ENT_SIZE);
			n += nextra;
		}
	}
	if (r < 0)
		goto out;
	/* Sort positions by (fingerprint, position); keep the last (newest) of each
	 * group of equal fingerprints. */
	uint64_t *ord = malloc(sizeof(*ord) * (n ? n : 1));
	uint8_t *outv = malloc(ENT_SIZE * (n ? n : 1));
	if (!ord || !outv) {
		free(ord);
		free(outv);
		r = -ENOMEM;
		goto out;
	}
	for (uint64_t i = 0; i < n; i++)
		ord[i] = i;
	qsort_r(ord, n, sizeof(*ord), cmp_idx, all); /* GNU; _GNU_SOURCE project-wide */
	uint64_t m = 0;
	for (uint64_t i = 0; i < n; i++) {
		if (i + 1 < n && !memcmp(all + ord[i] * ENT_SIZE, all + ord[i + 1] * ENT_SIZE, FP_LEN))
			continue; /* an older entry for the same chunk */
		seg_ptr p;
		seg_ptr_decode(all + ord[i] * ENT_SIZE + FP_LEN, &p);
		if (!pool_ptr_live(x->pl, &p))
			continue;
		memcpy(outv + m * ENT_SIZE, all + ord[i] * ENT_SIZE, ENT_SIZE);
		m++;
	}
	free(ord);
	struct run nr;
	r = write_run(x, outv, m, &nr);
	free(outv);
	if (r < 0)
		goto out;
	for (int i = from; i < x->nruns; i++)
		run_release(x, &x->runs[i], 1);
	x->runs[from] = nr;
	x->nruns = from + 1;
	x->runs_dirty = 1;
	x->gen++;
out:
	free(all);
	return r;
}

static int write_runlist(fpidx *x, uint8_t root[FPIDX_ROOT_ENC])
{
	uint8_t *b = x->blk;
	size_t per = 16 + 2 * BARRAY_ROOT_ENC;
	memset(b, 0, x->block);
	memcpy(b, RUNLIST_MAGIC, 4);
	le_put16(b + 4, 1);
	le_put16(b + 6, (uint16_t)x->nruns);
	for (int i = 0; i < x->nruns; i++) {
		uint8_t *o = b + BLK_HDR + (size_t)i * per;
		int r;
		le_put64(o, x->runs[i].nent);
		le_put64(o + 8, x->runs[i].nbits);
		if ((r = barray_sync(x->runs[i].dir, o + 16)) < 0 ||
		    (r = barray_sync(x->runs[i].bloom, o + 16 + BARRAY_ROOT_ENC)) < 0)
			return r;
	}
	seg_ptr np;
	int r = pool_meta_write(x->pl, b, (uint32_t)(BLK_HDR + (size_t)x->nruns * per), &np);
	if (r < 0)
		return r;
	if (!seg_ptr_is_null(&x->runlist))
		pool_meta_free(x->pl, &x->runlist);
	x->runlist = np;
	seg_ptr_encode(&np, root);
	return 0;
}

int fpidx_sync(fpidx *x, uint8_t root[FPIDX_ROOT_ENC])
{
	int r = 0;
	if (x->mcount) {
		/* The memtable becomes a run (or part of a merge): a prefetch planned
		 * before knew neither. */
		x->gen++;
		uint8_t *ents = malloc(x->mcount * ENT_SIZE);
		uint64_t n = 0;
		if (!ents)
			return -ENOMEM;
		for (uint64_t i = 0; i < x->mcap; i++) {
			/* Entries into rows freed since they were added (the collector ran
			 * in this txg) never reach a run. */
			if (!x->mem[i].used || !pool_ptr_live(x->pl, &x->mem[i].loc))
				continue;
			memcpy(ents + n * ENT_SIZE, x->mem[i].fp, FP_LEN);
			seg_ptr_encode(&x->mem[i].loc, ents + n * ENT_SIZE + FP_LEN);
			n++;
		}
		qsort(ents, n, ENT_SIZE, cmp_ent);
		if (n == 0) {
			/* Every entry was dead: no (empty) run. */
		} else if (x->nruns >= MAX_RUNS) {
			/* Size-tiered: fold the memtable into a merge of the newer half. */
			r = merge(x, x->nruns / 2, ents, n);
		} else {
			r = write_run(x, ents, n, &x->runs[x->nruns]);
			if (r == 0) {
				x->nruns++;
				/* The memtable is gone: if the run list cannot be written now
				 * (no row), the next sync must still write it. */
				x->runs_dirty = 1;
			}
		}
		free(ents);
		if (r < 0)
			return r;
		memset(x->mem, 0, x->mcap * sizeof(*x->mem));
		x->mcount = 0;
	} else if (!x->runs_dirty && !seg_ptr_is_null(&x->runlist)) {
		seg_ptr_encode(&x->runlist, root);
		return 0;
	}
	r = write_runlist(x, root);
	if (r == 0)
		x->runs_dirty = 0;
	return r;
}

/* Bytes of blocks a run of n entries consists of, each block counted whole. */
static uint64_t run_bytes(const fpidx *x, uint64_t n)
{
	uint64_t eb = (n + x->per_block - 1) / x->per_block;     /* entry blocks */
	uint64_t per_dir = (x->block - 16) / ENT_SIZE;          /* barray leaves */
	uint64_t bloom_words = (BKS_MAX(n * BLOOM_BITS_PER, (uint64_t)64) + 63) / 64;
	uint64_t per_bloom = (x->block - 16) / 8;
	uint64_t blocks = eb + (eb + per_dir - 1) / per_dir + (bloom_words + per_bloom - 1) / per_bloom;
	return (blocks + 4) * (uint64_t)x->block; /* + directories, tops */
}

uint64_t fpidx_sync_bytes(const fpidx *x, int all)
{
	uint64_t n = x->mcount;
	int from = all ? 0 : x->nruns >= MAX_RUNS ? x->nruns / 2 : x->nruns;
	for (int i = from; i < x->nruns; i++)
		n += x->runs[i].nent;
	return run_bytes(x, n) + x->block; /* + the run list */
}

int fpidx_compact(fpidx *x)
{
	if (x->nruns <= 1 && x->mcount == 0)
		return 0;
	uint8_t root[FPIDX_ROOT_ENC];
	int r = fpidx_sync(x, root);
	if (r == 0 && x->nruns > 1)
		r = merge(x, 0, NULL, 0);
	return r;
}

int fpidx_new(pool *pl, fpidx **out)
{
	fpidx *x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	x->pl = pl;
	x->block = FPIDX_BLOCK;
	x->per_block = (x->block - BLK_HDR) / ENT_SIZE;
	x->ents_cap = pool_row_bytes(pl) / (SEG_ENTRY_SIZE + 1) + 1;
	x->gen = __atomic_add_fetch(&gen_epochs, 1, __ATOMIC_RELAXED) << 32;
	x->blk = malloc(x->block);
	x->loc = calloc(LOC_SLOTS, sizeof(*x->loc));
	x->ents = calloc(x->ents_cap, sizeof(*x->ents));
	if (!x->blk || !x->loc || !x->ents) {
		fpidx_free(x);
		return -ENOMEM;
	}
	*out = x;
	return 0;
}

void fpidx_free(fpidx *x)
{
	if (!x)
		return;
	for (int i = 0; i < x->nruns; i++)
		run_release(x, &x->runs[i], 0);
	free(x->mem);
	free(x->loc);
	free(x->ents);
	free(x->blk);
	free(x);
}

int fpidx_load(pool *pl, const uint8_t root[FPIDX_ROOT_ENC], fpidx **out, bks_err *e)
{
	fpidx *x;
	int r = fpidx_new(pl, &x);
	if (r < 0)
		return bks_fail(e, r, "index: out of memory");
	seg_ptr_decode(root, &x->runlist);
	if (seg_ptr_is_null(&x->runlist)) {
		*out = x;
		return 0;
	}
	if ((r = pool_meta_read(pl, &x->runlist, x->blk, x->block)) < 0) {
		bks_fail(e, r, "index: run list unreadable");
		goto fail;
	}
	size_t per = 16 + 2 * BARRAY_ROOT_ENC;
	int n = le_get16(x->blk + 6);
	if (memcmp(x->blk, RUNLIST_MAGIC, 4) || n > MAX_RUNS ||
	    x->runlist.rlen != BLK_HDR + (size_t)n * per) {
		r = bks_fail(e, -EINVAL, "index: run list block malformed");
		goto fail;
	}
	uint8_t *copy = malloc(x->runlist.rlen);
	if (!copy) {
		r = bks_fail(e, -ENOMEM, "out of memory");
		goto fail;
	}
	memcpy(copy, x->blk, x->runlist.rlen);
	for (int i = 0; i < n; i++) {
		const uint8_t *o = copy + BLK_HDR + (size_t)i * per;
		struct run *rn = &x->runs[i];
		rn->nent = le_get64(o);
		rn->nbits = le_get64(o + 8);
		x->nruns = i + 1;
		if ((r = barray_load(pool_bio(), pl, o + 16, &rn->dir, e)) < 0 ||
		    (r = barray_load(pool_bio(), pl, o + 16 + BARRAY_ROOT_ENC, &rn->bloom, e)) < 0)
			break;
		if (rn->nbits == 0 || barray_count(rn->bloom) * 64 < rn->nbits) {
			r = bks_fail(e, -EINVAL, "index: run %d Bloom filter size wrong", i);
			break;
		}
	}
	free(copy);
	if (r < 0)
		goto fail;
	*out = x;
	return 0;
fail:
	fpidx_free(x);
	return r;
}

void fpidx_get_stats(const fpidx *x, fpidx_stats *st)
{
	*st = x->st;
	st->runs = (uint32_t)x->nruns;
	st->entries = x->mcount;
	uint64_t fixed = 0;
	for (int i = 0; i < x->nruns; i++) {
		st->entries += x->runs[i].nent;
		fixed += barray_count(x->runs[i].dir) * ENT_SIZE +
		         barray_count(x->runs[i].bloom) * 8;
	}
	st->ram_fixed_bytes = fixed;
	st->ram_bytes = fixed + x->mcap * sizeof(struct ment) +
	                (uint64_t)LOC_SLOTS * sizeof(struct ment) +
	                (uint64_t)x->ents_cap * sizeof(seg_entry);
}

int fpidx_rebuild(pool *pl, fpidx **out, bks_err *e)
{
	fpidx *x;
	int r = fpidx_new(pl, &x);
	if (r < 0)
		return bks_fail(e, r, "index: out of memory");
	for (uint64_t row = 0; row < pool_rows(pl); row++) {
		if (pool_row_state(pl, row) != ROW_DATA)
			continue;
		seg_header h;
		int n = pool_read_seg_table(pl, row, &h, x->ents, x->ents_cap);
		if (n < 0 || h.seg_id != pool_row_seg(pl, row)) {
			r = bks_fail(e, n < 0 ? n : -EINVAL, "index rebuild: segment in row %llu "
			             "unreadable", (unsigned long long)row);
			fpidx_free(x);
			return r;
		}
		for (int i = 0; i < n; i++) {
			seg_ptr p;
			seg_ptr_from_entry(&h, &x->ents[i], &p);
			if ((r = mem_put(x, x->ents[i].fp, &p)) < 0) {
				fpidx_free(x);
				return bks_fail(e, r, "index rebuild: out of memory");
			}
		}
	}
	*out = x;
	return 0;
}

int fpidx_visit(const fpidx *x, int (*fn)(void *ctx, const seg_ptr *p), void *ctx)
{
	int r;
	if (!seg_ptr_is_null(&x->runlist) && (r = fn(ctx, &x->runlist)) != 0)
		return r;
	for (int i = 0; i < x->nruns; i++) {
		const struct run *rn = &x->runs[i];
		if ((r = barray_visit(rn->dir, fn, ctx)) != 0 ||
		    (r = barray_visit(rn->bloom, fn, ctx)) != 0)
			return r;
		for (uint64_t b = 0; b < barray_count(rn->dir); b++) {
			seg_ptr bp;
			seg_ptr_decode((const uint8_t *)barray_get(rn->dir, b) + FP_LEN, &bp);
			if ((r = fn(ctx, &bp)) != 0)
				return r;
		}
	}
	return 0;
}

int fpidx_relocate(fpidx *x, int (*pred)(void *ctx, const seg_ptr *p), void *ctx,
                   uint64_t *moved, uint64_t *bytes)
{
	/* Entry blocks are read by lookups through the run's directory, so they are
	 * copied now (before the collector frees their rows); the directory and Bloom
	 * arrays live in RAM and are only marked, for the next sync to rewrite. */
	for (int i = 0; i < x->nruns; i++) {
		struct run *rn = &x->runs[i];
		uint64_t m = barray_relocate(rn->dir, pred, ctx) + barray_relocate(rn->bloom, pred, ctx);
		for (uint64_t b = 0; b < barray_count(rn->dir); b++) {
			seg_ptr bp, np;
			seg_ptr_decode((const uint8_t *)barray_get(rn->dir, b) + FP_LEN, &bp);
			if (!pred(ctx, &bp))
				continue;
			int r = pool_meta_read(x->pl, &bp, x->blk, x->block);
			if (r < 0)
				return r;
			if ((r = pool_meta_write(x->pl, x->blk, bp.rlen, &np)) < 0)
				return r;
			seg_ptr_encode(&np, (uint8_t *)barray_mut(rn->dir, b) + FP_LEN);
			pool_meta_free(x->pl, &bp);
			m++;
			*bytes += np.slen;
		}
		if (m) {
			x->runs_dirty = 1;
			x->gen++; /* entry blocks moved: their old places are garbage */
		}
		*moved += m;
	}
	if (!seg_ptr_is_null(&x->runlist) && pred(ctx, &x->runlist)) {
		x->runs_dirty = 1;
		(*moved)++;
	}
	return 0;
}

uint64_t fpidx_gen(const fpidx *x)
{
	return x->gen;
}


/* --- prefetch (fpidx.h): the reads of a batch of lookups, outside the lock ---
 *
 * Concurrency story. Steps 1 and 3 run under the caller's lock (the store's: one
 * caller at a time), step 2 without it, so anything may happen in the store between
 * them: other streams' puts, a commit, a collector step, fpidx_relocate, a rebuild
 * of the whole index. What makes that safe:
 *  - Step 2 touches only the pf and the array. The array is thread-safe; its reads
 *    (arr_read_many) never rewrite a strip for a failed check (only on an I/O
 *    error, as for the read-ahead), so reading a row that the pool's writer is
 *    writing at that moment, or that was freed and reused, is harmless: the bytes
 *    fail their check and are dropped, the lookup reads the item itself later,
 *    under the lock, through the array's repair.
 *  - Every byte step 2 keeps is checked as a lookup's own read would check it: an
 *    entry block against its pointer's xxh3 (seeded with the segment id, never
 *    reused: a reused row cannot pass) and its header; a segment table by its
 *    header's checksum, row, segment id, kind and size, and the table's xxh3 from
 *    that header. So what is installed is exactly what a lookup would have read at
 *    that pointer; it can be old, never wrong.
 *  - Old: step 3 installs only if the index's generation is still the one step 1
 *    saw (sync, merge, compact and relocate bump it; a rebuilt index starts another
 *    epoch): a commit or a collector's index work in between drops the prefetch
 *    whole, and the lookups read as today. Rows are not in the generation: a
 *    collector step that freed a row (and a commit that made it reusable) is caught
 *    per item, since step 3 installs a block or table only while pool_ptr_live says
 *    its row still holds its segment. Another stream's inserts go to the memtable,
 *    which every lookup asks first.
 *  - And every lookup checks liveness of what it answers (pool_ptr_live), after the
 *    install as before, in every layer: a row freed after step 3 is caught there.
 *    Protection of what a write deduplicated against (store_note_ref) happens at the
 *    lookup, under the lock, unchanged.
 * Crash story: nothing; a prefetch writes nothing, and the caches it fills are RAM.
 * What it decides: only which segment tables go into the locality cache and which
 * blocks into the pool's cache, the ones the same lookups would have loaded: the
 * segment of the newest run's entry for each fingerprint, as fpidx_lookup does. */

#define PF_CANDS 4     /* Bloom-positive runs kept per fingerprint */
#define PF_BLOCKS 16   /* entry blocks read per prefetch */
#define PF_TABLES 16   /* segment tables read per prefetch */

enum { PF_READ = 0, PF_FOUND = 1 };

struct pf_cand {
	int state;             /* PF_READ: block bp to read; PF_FOUND: loc (from cache) */
	seg_ptr bp, loc;
};

struct pf_want {
	uint8_t fp[FP_LEN];
	uint32_t first, n;     /* its candidates, newest run first */
};

struct pf_blk {
	seg_ptr bp;
	int ok;                /* data holds it, decoded and checked (0: the read failed) */
	uint8_t *data;         /* pf->block bytes, kept for the next batch */
};

struct pf_tab {
	seg_header h;
	seg_entry *ents;
	uint32_t cap;
};

struct fpidx_pf {
	uint64_t gen;          /* the index's at step 1 */
	arr *a;
	uint32_t row_bytes, block;
	uint64_t loc_seg[LOC_SEGS];       /* the locality cache's segments at step 1 */
	struct pf_want *want;
	uint32_t nwant, capwant;
	struct pf_cand *cand;
	uint32_t ncand, capcand;
	struct pf_blk blk[PF_BLOCKS];
	int nblk;
	struct pf_tab tab[PF_TABLES];
	int ntab;
	uint64_t tried[PF_TABLES]; /* segments whose table was asked for (read or not) */
	int ntried;
	const uint8_t **cov;   /* fingerprints in the tables read (open addressing) */
	uint32_t capcov, ncov;
	uint8_t *io;           /* aligned read buffer */
	size_t iocap;
	ZSTD_DCtx *dctx;
	uint64_t reads, rejected;
};

int fpidx_pf_new(fpidx_pf **out)
{
	fpidx_pf *pf = calloc(1, sizeof(*pf));
	if (!pf)
		return -ENOMEM;
	*out = pf;
	return 0;
}

void fpidx_pf_free(fpidx_pf *pf)
{
	if (!pf)
		return;
	for (int i = 0; i < PF_BLOCKS; i++)
		free(pf->blk[i].data);
	for (int i = 0; i < PF_TABLES; i++)
		free(pf->tab[i].ents);
	free(pf->want);
	free(pf->cand);
	free(pf->cov);
	free(pf->io);
	ZSTD_freeDCtx(pf->dctx);
	free(pf);
}

/* Step 1 (under the lock). */
void fpidx_pf_begin(fpidx *x, fpidx_pf *pf)
{
	pf->gen = x->gen;
	pf->a = pool_array(x->pl);
	pf->row_bytes = pool_row_bytes(x->pl);
	pf->block = x->block;
	memcpy(pf->loc_seg, x->loc_seg, sizeof(pf->loc_seg));
	pf->nwant = pf->ncand = 0;
	pf->nblk = pf->ntab = pf->ntried = 0;
	pf->reads = pf->rejected = 0;
	if (pf->ncov) {
		memset(pf->cov, 0, pf->capcov * sizeof(*pf->cov));
		pf->ncov = 0;
	}
}

static int pf_add_cand(fpidx_pf *pf, int state, const seg_ptr *bp, const seg_ptr *loc)
{
	if (pf->ncand == pf->capcand) {
		uint32_t nc = pf->capcand ? pf->capcand * 2 : 256;
		struct pf_cand *q = realloc(pf->cand, nc * sizeof(*q));
		if (!q)
			return -ENOMEM;
		pf->cand = q;
		pf->capcand = nc;
	}
	struct pf_cand *c = &pf->cand[pf->ncand++];
	c->state = state;
	if (bp)
		c->bp = *bp;
	if (loc)
		c->loc = *loc;
	return 0;
}

int fpidx_pf_want(fpidx *x, fpidx_pf *pf, const uint8_t fp[FP_LEN])
{
	/* What fpidx_lookup would answer from memory needs nothing (a dead entry
	 * there: the lookup goes on to the runs, and so does this). */
	if (x->mcap) {
		struct ment *m = mem_slot(x->mem, x->mcap, fp);
		if (m->used && pool_ptr_live(x->pl, &m->loc))
			return 0;
	}
	struct ment *c = loc_slot(x, fp);
	if (c->used && !memcmp(c->fp, fp, FP_LEN) && pool_ptr_live(x->pl, &c->loc))
		return 0;
	uint32_t first = pf->ncand;
	int r = 0, reading = 0;
	for (int i = x->nruns - 1; i >= 0 && pf->ncand - first < PF_CANDS; i--) {
		seg_ptr bp, loc;
		if (!run_block(&x->runs[i], fp, &bp))
			continue;
		const uint8_t *cached = reading ? NULL : pool_meta_peek(x->pl, &bp);
		if (cached) {
			/* Searched here, no copy: a run that does not have it is skipped,
			 * the newest that has it decides (as in fpidx_lookup). */
			int f = block_find(&bp, cached, fp, &loc);
			if (f < 0)
				break; /* malformed: the lookup will say so */
			if (f == 0)
				continue;
			if (loc_has(x, loc.seg_id))
				return 0; /* its table is in memory already */
			r = pf_add_cand(pf, PF_FOUND, NULL, &loc);
			break;
		}
		/* A block still in the pool's buffers (its segment open or queued) is
		 * not on the array yet; the lookup reads it from memory. */
		if (!pool_item_on_array(x->pl, &bp))
			break;
		if ((r = pf_add_cand(pf, PF_READ, &bp, NULL)) < 0)
			break;
		reading = 1;
	}
	if (r < 0 || pf->ncand == first) {
		pf->ncand = first;
		return r;
	}
	if (pf->nwant == pf->capwant) {
		uint32_t nc = pf->capwant ? pf->capwant * 2 : 64;
		struct pf_want *q = realloc(pf->want, nc * sizeof(*q));
		if (!q) {
			pf->ncand = first;
			return -ENOMEM;
		}
		pf->want = q;
		pf->capwant = nc;
	}
	struct pf_want *w = &pf->want[pf->nwant++];
	memcpy(w->fp, fp, FP_LEN);
	w->first = first;
	w->n = pf->ncand - first;
	return 1;
}

/* Step 2 (no lock): only pf and the array from here to fpidx_pf_install. */

static int pf_io(fpidx_pf *pf, size_t len)
{
	if (len <= pf->iocap)
		return 0;
	free(pf->io);
	pf->iocap = 0;
	if (!(pf->io = bks_alloc_aligned(DISK_ALIGN, len)))
		return -ENOMEM;
	pf->iocap = len;
	return 0;
}

/* Bytes [off, off + len) of row into pf->io; returns where they start there, or NULL.
 * One aligned range through arr_read_many: no verifier, so the array never rewrites
 * a strip for bytes that merely fail our check (see the story above). */
static const uint8_t *pf_read(fpidx_pf *pf, uint64_t row, size_t off, size_t len)
{
	size_t a0 = off & ~(size_t)(DISK_ALIGN - 1);
	size_t a1 = (off + len + DISK_ALIGN - 1) & ~(size_t)(DISK_ALIGN - 1);
	if (len == 0 || off > pf->row_bytes || len > pf->row_bytes - off || a1 > pf->row_bytes ||
	    pf_io(pf, a1 - a0) < 0)
		return NULL;
	arr_rd rd = {.row = row, .off = a0, .len = a1 - a0, .buf = pf->io, .result = 0};
	pf->reads++;
	if (arr_read_many(pf->a, &rd, 1) < 0 || rd.result < 0)
		return NULL;
	return pf->io + (off - a0);
}

/* Entry block bp, read and checked (kept in pf for the batch), or NULL. */
static const uint8_t *pf_block(fpidx_pf *pf, const seg_ptr *bp)
{
	for (int i = 0; i < pf->nblk; i++)
		if (pf->blk[i].bp.seg_id == bp->seg_id && pf->blk[i].bp.off == bp->off)
			return pf->blk[i].ok ? pf->blk[i].data : NULL;
	if (pf->nblk == PF_BLOCKS || bp->rlen > pf->block)
		return NULL;
	struct pf_blk *b = &pf->blk[pf->nblk];
	if (!b->data && !(b->data = malloc(pf->block)))
		return NULL;
	if (!pf->dctx && bp->codec == SEG_ZSTD && !(pf->dctx = ZSTD_createDCtx()))
		return NULL;
	pf->nblk++;
	b->bp = *bp;
	const uint8_t *src = pf_read(pf, bp->row, bp->off, bp->slen);
	b->ok = src && seg_item_ok(bp, src) &&
	        seg_item_decode(pf->dctx, bp, src, b->data, pf->block) == 0 &&
	        block_ok(bp, b->data);
	if (src && !b->ok)
		pf->rejected++;
	return b->ok ? b->data : NULL;
}

static uint64_t cov_home(const uint8_t *fp, uint32_t cap)
{
	return fp_word(fp, 1) & (cap - 1);
}

static int cov_has(const fpidx_pf *pf, const uint8_t *fp)
{
	if (!pf->ncov)
		return 0;
	for (uint64_t i = cov_home(fp, pf->capcov);; i = (i + 1) & (pf->capcov - 1)) {
		if (!pf->cov[i])
			return 0;
		if (!memcmp(pf->cov[i], fp, FP_LEN))
			return 1;
	}
}

static void cov_put(const uint8_t **t, uint32_t cap, const uint8_t *fp)
{
	uint64_t i = cov_home(fp, cap);
	while (t[i])
		i = (i + 1) & (cap - 1);
	t[i] = fp;
}

/* Add table t's fingerprints to the covered set (grown to stay at most half full). */
static int cov_add(fpidx_pf *pf, const struct pf_tab *t)
{
	uint32_t need = pf->ncov + t->h.nitems;
	if (need * 2 > pf->capcov) {
		uint32_t nc = pf->capcov ? pf->capcov : 1024;
		while (need * 2 > nc)
			nc *= 2;
		const uint8_t **q = calloc(nc, sizeof(*q));
		if (!q)
			return -ENOMEM;
		for (uint32_t i = 0; i < pf->capcov; i++)
			if (pf->cov[i])
				cov_put(q, nc, pf->cov[i]);
		free(pf->cov);
		pf->cov = q;
		pf->capcov = nc;
	}
	for (uint32_t i = 0; i < t->h.nitems; i++)
		cov_put(pf->cov, pf->capcov, t->ents[i].fp);
	pf->ncov = need;
	return 0;
}

/* Segment seg_id's table from row, checked as pool_read_seg_table checks it. */
static int pf_table(fpidx_pf *pf, uint64_t row, uint64_t seg_id)
{
	struct pf_tab *t = &pf->tab[pf->ntab];
	const uint8_t *b = pf_read(pf, row, 0, SEG_HDR_SIZE);
	if (!b)
		return -EIO;
	if (seg_header_decode(b, SEG_HDR_SIZE, &t->h, NULL) < 0 || t->h.row != row ||
	    t->h.seg_id != seg_id || t->h.kind != SEG_DATA || t->h.row_bytes != pf->row_bytes ||
	    t->h.nitems > pf->row_bytes / SEG_ENTRY_SIZE) {
		pf->rejected++;
		return -EINVAL;
	}
	size_t tl = (size_t)t->h.nitems * SEG_ENTRY_SIZE;
	if (!tl)
		return -ENOENT;
	if (t->h.nitems > t->cap) {
		free(t->ents);
		t->cap = 0;
		if (!(t->ents = malloc(t->h.nitems * sizeof(*t->ents))))
			return -ENOMEM;
		t->cap = t->h.nitems;
	}
	if (!(b = pf_read(pf, row, t->h.table_off, tl)))
		return -EIO;
	if (seg_table_decode(&t->h, b, tl, t->ents, NULL) < 0) {
		pf->rejected++;
		return -EINVAL;
	}
	pf->ntab++;
	return cov_add(pf, t);
}

static int pf_has_seg(const fpidx_pf *pf, uint64_t seg_id)
{
	for (int i = 0; i < LOC_SEGS; i++)
		if (pf->loc_seg[i] == seg_id)
			return 1;
	for (int i = 0; i < pf->ntried; i++)
		if (pf->tried[i] == seg_id)
			return 1;
	return 0;
}

int fpidx_pf_read(fpidx_pf *pf)
{
	/* In the batch's order, as the lookups will go: the first fingerprint of an
	 * old segment brings its table, which covers the ones after it. */
	for (uint32_t i = 0; i < pf->nwant; i++) {
		const struct pf_want *w = &pf->want[i];
		if (cov_has(pf, w->fp))
			continue;
		seg_ptr loc;
		int found = 0;
		for (uint32_t k = 0; k < w->n && !found; k++) {
			const struct pf_cand *c = &pf->cand[w->first + k];
			if (c->state == PF_FOUND) {
				loc = c->loc;
				found = 1;
				break;
			}
			const uint8_t *blk = pf_block(pf, &c->bp);
			if (!blk)
				break; /* cannot tell whether this run has it: stop here */
			found = block_find(&c->bp, blk, w->fp, &loc) == 1;
		}
		if (!found || loc.kind != SEG_DATA || pf_has_seg(pf, loc.seg_id))
			continue;
		if (pf->ntried == PF_TABLES)
			break;
		pf->tried[pf->ntried++] = loc.seg_id; /* once, whatever the read gives */
		if (pf_table(pf, loc.row, loc.seg_id) == -ENOMEM)
			break;
	}
	return (int)pf->reads;
}

/* Step 3 (under the lock). */
int fpidx_pf_install(fpidx *x, fpidx_pf *pf)
{
	int n = 0;
	x->st.pf_reads += pf->reads;
	x->st.pf_rejected += pf->rejected;
	if (pf->gen != x->gen) {
		if (pf->nblk || pf->ntab)
			x->st.pf_dropped++;
		pf->nblk = pf->ntab = 0;
		return 0;
	}
	for (int i = 0; i < pf->nblk; i++) {
		const struct pf_blk *b = &pf->blk[i];
		if (!b->ok || !pool_ptr_live(x->pl, &b->bp))
			continue;
		pool_meta_install(x->pl, &b->bp, b->data);
		x->st.pf_blocks++;
		n++;
	}
	for (int i = 0; i < pf->ntab; i++) {
		const struct pf_tab *t = &pf->tab[i];
		seg_ptr p = {.seg_id = t->h.seg_id, .row = t->h.row, .kind = SEG_DATA};
		if (!pool_ptr_live(x->pl, &p) || pool_row_state(x->pl, p.row) != ROW_DATA ||
		    loc_has(x, p.seg_id))
			continue;
		loc_fill(x, &t->h, t->ents, t->h.nitems);
		x->st.pf_tables++;
		n++;
	}
	pf->nblk = pf->ntab = 0;
	return n;
}
