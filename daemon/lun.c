/* daemon/lun.c: see lun.h; docs/architecture.md "LUNs", docs/format.md "LUN records".
 *
 * Layout: the system directory (ns.h NS_SYSTEM_NAME) holds "luns", which holds one
 * directory per LUN named after it, with three files:
 *   data  the LUN's bytes (its size is the LUN's size; never-written ranges are
 *         holes; its (id, generation) is the LUN's identity);
 *   meta  the LUN record: block size, ACL and the saved mode page values (magic,
 *         version, checksum);
 *   pr    the persistent-reservation blob of daemon/sbc.c, when one was saved.
 * Every change that the API or a SCSI command acknowledges is made durable with
 * ns_sync (the store's intent log) before the answer: a record is rewritten as a
 * new object linked over the old name (ns_link_new replace), so a crash shows the
 * old record or the new one, never half of one.
 *
 * The write-back cache (the SCSI volatile cache, WCE=1): lun_write with fua 0 copies
 * the bytes into the LUN's cache, a sorted list of disjoint extents (a later write
 * over cached bytes replaces them; adjacent writes merge up to CACHE_EXT_MAX, so a
 * sequential stream reaches the store in 4 MiB runs cut like one stream: a backup
 * written twice deduplicates). It is applied in batches (cache_apply_upto:
 * store_write_batch, one content-map splice per batch) by lun_sync, when it passes
 * CACHE_MAX, when the LUN was idle for CACHE_IDLE_NS (the flusher thread), and at
 * close; a FUA write goes to the store itself. Reads overlay it on the store's
 * bytes. A crash loses what it held: only writes no SYNCHRONIZE CACHE or FUA
 * covered, which is what WCE=1 allows. The cache is under appl.mu; a batch's
 * hashing and compression are not (cache_apply_upto). lun_sync and a FUA write wait
 * for durability outside appl.mu (appl_durable: a group commit shared with the
 * other sessions and NFS), and answer only once a sync covers what they applied.
 *
 * Locks: ls->mu guards the list of open LUNs and their reference counts; appl.mu
 * the store, the namespace and every LUN's cache and fields. Order: ls->mu, then
 * appl.mu. An open LUN is one struct shared by every lun_open of its name (one cache
 * for all the sessions that use it).
 */
#include <config.h>

#include "daemon/lun.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/endian.h"
#include "daemon/appl.h"
#include "daemon/log.h"
#include "daemon/lun_meta.h"
#include "dedup/ingest.h"

#define CACHE_MAX (32u << 20)       /* bytes one LUN's cache holds before it is applied */
#define CACHE_EXT_MAX (4u << 20)    /* merged extents stop growing here (store_write_at's piece) */
#define CACHE_IDLE_NS (1000000000ull) /* applied after this long without writes */

#define PR_MAGIC "BKSLUNP1"
#define PR_VERSION 1
#define PR_FIXED 16

struct cext {
	uint64_t off;
	uint32_t len, cap;
	uint8_t *buf;
	uint64_t seq;            /* the LUN's write count when its oldest bytes came */
	uint64_t ver;            /* changes with its bytes or place (cache_apply_upto) */
};

struct lun {
	lun_set *ls;
	struct lun *next;
	int refs;                /* under ls->mu */
	int sessions;            /* atomic: logged-in iSCSI sessions (lun_session) */
	char name[LUN_NAME_MAX + 1];
	/* under appl.mu */
	uint64_t dir, data, data_gen;
	uint64_t size;
	uint32_t bs;
	char acl[LUN_ACL_MAX + 1];
	lun_mode mode;           /* as saved in meta (lun_set_mode) */
	struct cext *ce;
	size_t nce, cap_ce;
	uint64_t cached;         /* bytes in ce */
	uint64_t wseq;           /* writes cached so far (cext.seq) */
	uint64_t cver;           /* extent versions given out (cext.ver) */
	int dup_heavy;           /* the last batch was mostly chunks the store had */
	/* One thread applies the cache with appl.mu let go at a time (cache_apply_upto
	 * with yield): two would plan the same extents and refuse each other's apply.
	 * applying is set under appl.mu, cleared under appl.mu and amu; waiters wait
	 * on acv with amu (never holding appl.mu). */
	int applying;
	pthread_mutex_t amu;
	pthread_cond_t acv;
	uint64_t last_write_ns;
	int unsynced;            /* written since the last sync */
	uint64_t sync_seq;       /* the change the last lun_sync waits for (appl_durable) */
	uint64_t read_bytes, written_bytes;
};

/* mapped_bytes walks a LUN's whole map: kept per data object, good while the size
 * is the same and, for an open LUN (it changes), for MAPPED_TTL_NS. */
#define MAPPED_CACHE 64
#define MAPPED_TTL_NS (5000000000ull)
struct mapped_ent {
	uint64_t id, size, mapped, when_ns;
};

struct lun_set {
	appl *ap;
	struct mapped_ent mc[MAPPED_CACHE]; /* under appl.mu */
	pthread_mutex_t mu;
	struct lun *open;
	uint64_t luns;           /* the "luns" directory */
	pthread_t flusher;
	int flusher_started, stop;
	/* The engine that fingerprints and compresses a cache batch outside appl.mu
	 * (made when first needed; one batch at a time). */
	pthread_mutex_t engmu;
	ingest *eng;
	pthread_cond_t cv;
	/* The list as the status document shows it (lun_list_snapshot): gathered only
	 * while appl.mu was free, so a dashboard's poll never waits behind a backup for
	 * it (nor, preempted while holding appl.mu, holds a backup up). changes counts
	 * every create, resize, ACL change, delete, open and close; a snapshot older
	 * than the last of them is redone at once, with the lock if it must be, so the
	 * list is never stale after a change, only its counters by the time since
	 * appl.mu was last free. */
	pthread_mutex_t snapmu;
	lun_info *snap;          /* under snapmu */
	size_t nsnap;
	int snap_ok;
	uint64_t snap_changes;   /* changes when snap was gathered */
	uint64_t changes;        /* atomic */
};

static void changed(lun_set *ls)
{
	__atomic_fetch_add(&ls->changes, 1, __ATOMIC_RELEASE);
}

/* --- names, ACLs, records --- */

static int name_ok(const char *name)
{
	size_t l = strlen(name);
	if (l == 0 || l > LUN_NAME_MAX || !(islower((unsigned char)name[0]) ||
	                                    isdigit((unsigned char)name[0])))
		return -EINVAL;
	for (size_t i = 0; i < l; i++) {
		unsigned char c = (unsigned char)name[i];
		if (!(islower(c) || isdigit(c) || c == '.' || c == '-'))
			return -EINVAL;
	}
	return 0;
}

/* Normalize a comma-separated initiator list (spaces dropped, empty items gone) into
 * out; -EINVAL for a name with control bytes, -ENAMETOOLONG past LUN_ACL_MAX. */
static int acl_norm(const char *in, char out[LUN_ACL_MAX + 1])
{
	size_t n = 0;
	int item = 0;
	out[0] = 0;
	for (const char *p = in ? in : ""; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (c == ' ' || c == '\t')
			continue;
		if (c < 0x21 || c > 0x7e)
			return -EINVAL;
		if (c == ',') {
			item = 0;
			continue;
		}
		if (!item && n > 0) {
			if (n + 1 > LUN_ACL_MAX)
				return -ENAMETOOLONG;
			out[n++] = ',';
		}
		item = 1;
		if (n + 1 > LUN_ACL_MAX)
			return -ENAMETOOLONG;
		out[n++] = (char)c;
	}
	out[n] = 0;
	return 0;
}

/* Replace file `name` of directory dir by a new object holding buf (appl.mu held). */
static int put_file(appl *ap, uint64_t dir, const char *name, const void *buf, size_t len,
                    uint64_t *id_out)
{
	uint64_t id;
	ns_attr a;
	int r = store_put(ap->s, buf, len, &id);
	if (r < 0)
		return r;
	if ((r = ns_link_new(ap->n, dir, name, id, 1, 0600, 0, 0, 0, &a)) < 0) {
		store_delete(ap->s, id);
		return r;
	}
	if (id_out)
		*id_out = a.id;
	return 0;
}

/* Read a whole small file (appl.mu held); *len its size. -EFBIG past cap. */
static int get_file(appl *ap, uint64_t dir, const char *name, uint8_t *buf, size_t cap,
                    size_t *len)
{
	ns_attr a;
	size_t got;
	int r = ns_lookup(ap->n, dir, name, &a);
	if (r < 0)
		return r;
	if (a.size > cap)
		return -EFBIG;
	if ((r = store_read(ap->s, a.id, 0, buf, (size_t)a.size, &got)) < 0)
		return r;
	*len = got;
	return got == a.size ? 0 : -EIO;
}

/* What a LUN's directory says (appl.mu held). */
struct rec {
	uint64_t dir, data, gen, size;
	uint32_t bs;
	char acl[LUN_ACL_MAX + 1];
	lun_mode mode;
};

static int rec_load(lun_set *ls, const char *name, struct rec *rc)
{
	appl *ap = ls->ap;
	ns_attr a;
	uint8_t mb[LUN_META_MAX];
	size_t ml;
	int r = ns_lookup(ap->n, ls->luns, name, &a);
	if (r < 0)
		return r;
	if (a.type != NS_DIR)
		return -ENOENT;
	rc->dir = a.id;
	if ((r = get_file(ap, rc->dir, "meta", mb, sizeof(mb), &ml)) < 0 ||
	    (r = lun_meta_decode(mb, ml, &rc->bs, rc->acl, &rc->mode)) < 0)
		return r == -ENOENT ? -EIO : r; /* a LUN directory without its record */
	if ((r = ns_lookup(ap->n, rc->dir, "data", &a)) < 0)
		return r == -ENOENT ? -EIO : r;
	rc->data = a.id;
	rc->gen = a.gen;
	rc->size = a.size;
	return 0;
}

/* The NAA 6 designator and the unit serial from the array name and the data file's
 * (id, generation): stable across restarts and imports, new for a LUN created again
 * under an old name. IEEE company id: none is registered for bkstor; 0x000000 with
 * the hash in the vendor-specific fields (a name unique in practice, 100 bits). */
static void identity(const char *array, uint64_t id, uint64_t gen, uint8_t naa[16],
                     char serial[33])
{
	uint8_t seed[80];
	size_t al = strlen(array);
	if (al > 64)
		al = 64;
	memcpy(seed, array, al);
	le_put64(seed + al, id);
	le_put64(seed + al + 8, gen);
	uint64_t h1 = bks_xxh3(seed, al + 16);
	seed[al + 16] = 1;
	uint64_t h2 = bks_xxh3(seed, al + 17);
	naa[0] = 0x60;                           /* NAA 6, company id 0x000000 ... */
	naa[1] = naa[2] = 0;
	naa[3] = (uint8_t)(h1 >> 32 & 0x0f);     /* ... then 36 bits of vendor id */
	for (int i = 0; i < 4; i++)
		naa[4 + i] = (uint8_t)(h1 >> (24 - 8 * i));
	for (int i = 0; i < 8; i++)
		naa[8 + i] = (uint8_t)(h2 >> (56 - 8 * i));
	snprintf(serial, 33, "%016llx%016llx", (unsigned long long)h1, (unsigned long long)h2);
}

/* --- the write-back cache (appl.mu held) --- */

static void cache_free(lun *l)
{
	for (size_t i = 0; i < l->nce; i++)
		free(l->ce[i].buf);
	free(l->ce);
	l->ce = NULL;
	l->nce = l->cap_ce = 0;
	l->cached = 0;
}

/* First extent ending after off. */
static size_t cache_first(const lun *l, uint64_t off)
{
	size_t lo = 0, hi = l->nce;
	while (lo < hi) {
		size_t m = (lo + hi) / 2;
		if (l->ce[m].off + l->ce[m].len <= off)
			lo = m + 1;
		else
			hi = m;
	}
	return lo;
}

static int cache_room(lun *l)
{
	if (l->nce < l->cap_ce)
		return 0;
	size_t nc = l->cap_ce ? l->cap_ce * 2 : 16;
	struct cext *q = realloc(l->ce, nc * sizeof(*q));
	if (!q)
		return -ENOMEM;
	l->ce = q;
	l->cap_ce = nc;
	return 0;
}

static void cache_remove(lun *l, size_t i)
{
	l->cached -= l->ce[i].len;
	free(l->ce[i].buf);
	memmove(l->ce + i, l->ce + i + 1, (l->nce - i - 1) * sizeof(*l->ce));
	l->nce--;
}

/* Drop whatever the cache holds of [off, off + len). Returns the index where an
 * extent at off belongs. -ENOMEM only when an extent must split. *oldest (if not
 * NULL) is lowered to the seq of every extent it cut into: the bytes that replace
 * them count as that old for lun_sync (a SYNCHRONIZE CACHE that must apply an
 * acknowledged write must also apply a later one over it, or the store would keep
 * what was there before both). */
static long cache_cut(lun *l, uint64_t off, uint64_t len, uint64_t *oldest)
{
	uint64_t end = off + len, dummy;
	if (!oldest)
		oldest = &dummy;
	size_t i = cache_first(l, off);
	while (i < l->nce && l->ce[i].off < end) {
		struct cext *e = &l->ce[i];
		uint64_t eend = e->off + e->len;
		*oldest = BKS_MIN(*oldest, e->seq);
		if (e->off < off && eend > end) {
			/* Split: the part after the range becomes its own extent. */
			if (cache_room(l) < 0)
				return -ENOMEM;
			e = &l->ce[i];
			struct cext t = {.off = end, .len = (uint32_t)(eend - end), .seq = e->seq,
			                 .ver = ++l->cver};
			t.cap = t.len;
			if (!(t.buf = malloc(t.len)))
				return -ENOMEM;
			memcpy(t.buf, e->buf + (end - e->off), t.len);
			e->len = (uint32_t)(off - e->off);
			e->ver = ++l->cver;
			memmove(l->ce + i + 2, l->ce + i + 1, (l->nce - i - 1) * sizeof(*l->ce));
			l->ce[i + 1] = t;
			l->nce++;
			l->cached -= len;
			return (long)i + 1;
		}
		if (e->off < off) {
			l->cached -= eend - off;
			e->len = (uint32_t)(off - e->off);
			e->ver = ++l->cver;
			i++;
		} else if (eend > end) {
			uint32_t drop = (uint32_t)(end - e->off);
			memmove(e->buf, e->buf + drop, e->len - drop);
			e->len -= drop;
			e->off = end;
			e->ver = ++l->cver;
			l->cached -= drop;
			break;
		} else {
			cache_remove(l, i);
		}
	}
	return (long)i;
}

static int cache_add(lun *l, uint64_t off, const uint8_t *buf, uint32_t len)
{
	uint64_t seq = ++l->wseq;
	long at = cache_cut(l, off, len, &seq);
	if (at < 0)
		return (int)at;
	size_t i = (size_t)at;
	/* Append to the extent before when it ends at off (a sequential stream). */
	if (i > 0 && l->ce[i - 1].off + l->ce[i - 1].len == off &&
	    l->ce[i - 1].len + len <= CACHE_EXT_MAX) {
		struct cext *e = &l->ce[i - 1];
		if (e->len + len > e->cap) {
			uint32_t nc = BKS_MAX(e->cap * 2, e->len + len);
			nc = BKS_MIN(nc, CACHE_EXT_MAX);
			uint8_t *q = realloc(e->buf, nc);
			if (!q)
				return -ENOMEM;
			e->buf = q;
			e->cap = nc;
		}
		memcpy(e->buf + e->len, buf, len);
		e->len += len;
		e->seq = BKS_MIN(e->seq, seq);
		e->ver = ++l->cver;
		l->cached += len;
		return 0;
	}
	if (cache_room(l) < 0)
		return -ENOMEM;
	struct cext n = {.off = off, .len = len, .cap = len, .seq = seq,
	                 .ver = ++l->cver};
	if (!(n.buf = malloc(len)))
		return -ENOMEM;
	memcpy(n.buf, buf, len);
	memmove(l->ce + i + 1, l->ce + i, (l->nce - i) * sizeof(*l->ce));
	l->ce[i] = n;
	l->nce++;
	l->cached += len;
	return 0;
}

/* Lay the cached bytes of [off, off + len) over buf. */
static void cache_overlay(const lun *l, uint64_t off, uint8_t *buf, size_t len)
{
	uint64_t end = off + len;
	for (size_t i = cache_first(l, off); i < l->nce && l->ce[i].off < end; i++) {
		const struct cext *e = &l->ce[i];
		uint64_t a = BKS_MAX(off, e->off), b = BKS_MIN(end, e->off + e->len);
		memcpy(buf + (a - off), e->buf + (a - e->off), b - a);
	}
}

/* Apply the cache to the store, in batches: the extents of a batch (in offset order,
 * up to APPLY_PIECES of them or APPLY_BYTES) go to the store as one change
 * (store_write_batch: the chunks around them read at once, their chunks hashed and
 * compressed in shared rounds, the content map changed by one splice that rewrites
 * each map block once), where one store_write_at each rewrote a leaf and the path
 * above it, and read its chunks one after another, for every 4 KiB write. Only
 * extents holding bytes written by write upto (the LUN's write count) are needed
 * (UINT64_MAX: all).
 *
 * With yield (lun_sync, the flusher, a write that finds the cache full), appl.mu is
 * held only to plan a batch and to apply it: in between, without the lock, the
 * batch's chunks are fingerprinted and compressed on the set's engine (as plain
 * PUTs do, daemon/native_ops.c), unless the last batch was mostly duplicates (then
 * the store's engine does it under the lock and compresses only the new chunks). The
 * batch holds a copy of its bytes. Meanwhile other commands run: a write into the
 * cache changes the extents it touches (cext.ver), and only extents unchanged since
 * the plan leave the cache after the apply (the others keep the newer bytes, which
 * reads see and a later batch applies; the store got the older ones, which no read
 * sees while the newer are cached); a change of the object itself (a FUA write,
 * UNMAP, another batch) makes the apply refuse (-EAGAIN) and the batch is planned
 * again. The cache and the store agree at every release of appl.mu.
 *
 * Crash story: a batch is in the store's txg being built as one change (all of it
 * or none); the caller's appl_durable answers only after a sync covers the last
 * batch. What fails stays cached. */
#define APPLY_PIECES 256
#define APPLY_BYTES (8u << 20)
#define APPLY_TRIES 3            /* plans refused before a batch is done under the lock */

struct picked {
	uint64_t off, ver;
	uint32_t len;
};

/* Choose the next batch: extents of seq <= upto, in offset order. */
static size_t cache_pick(lun *l, uint64_t upto, store_wpiece *v, struct picked *pk)
{
	size_t n = 0, bytes = 0;
	for (size_t i = 0; i < l->nce && n < APPLY_PIECES; i++) {
		const struct cext *e = &l->ce[i];
		if (e->seq > upto)
			continue;
		if (n > 0 && bytes + e->len > APPLY_BYTES)
			break;
		v[n] = (store_wpiece){e->off, e->buf, e->len};
		pk[n++] = (struct picked){e->off, e->ver, e->len};
		bytes += e->len;
	}
	return n;
}

/* Drop the picked extents that are as they were picked, in one pass. */
static void cache_drop_picked(lun *l, const struct picked *pk, size_t n)
{
	size_t o = 0, k = 0;
	for (size_t i = 0; i < l->nce; i++) {
		const struct cext *e = &l->ce[i];
		while (k < n && pk[k].off < e->off)
			k++;
		if (k < n && pk[k].off == e->off && pk[k].ver == e->ver && pk[k].len == e->len) {
			l->cached -= e->len;
			free(e->buf);
			k++;
			continue;
		}
		l->ce[o++] = l->ce[i];
	}
	l->nce = o;
}

/* One batch with the reads, hashing and compression outside appl.mu (held on entry
 * and on return). -EAGAIN: the LUN's object changed meanwhile, or a chunk the plan
 * would read did (the collector reused its row); nothing applied. */
static int batch_unlocked(lun *l, const store_wpiece *v, size_t n, store_wbatch **bp)
{
	lun_set *ls = l->ls;
	appl *ap = ls->ap;
	store_wbatch *b = NULL;
	int r = store_wbatch_plan(ap->s, l->data, v, n, &b);
	if (r < 0)
		return r;
	appl_unlock(ap);
	pthread_mutex_lock(&ls->engmu);
	if (!ls->eng) {
		cdc_params cp;
		store_cdc_params(ap->s, &cp);
		r = ingest_new(ap->cfg.zstd_level, cp.max, 2, &ls->eng);
	}
	if (r == 0)
		r = store_wbatch_prepare(b, ls->eng);
	pthread_mutex_unlock(&ls->engmu);
	appl_lock(ap);
	if (r == -ESTALE)
		r = -EAGAIN; /* a chunk it read moved (or is damaged): plan again */
	if (r == 0)
		r = store_wbatch_apply(ap->s, b);
	*bp = b;
	return r;
}

/* Become the LUN's applier (appl.mu held on entry and on return, let go while
 * waiting); with nowait, 0 without waiting if another thread is it (1: became it). */
static int applier_enter(lun *l, int nowait)
{
	appl *ap = l->ls->ap;
	while (l->applying) {
		if (nowait)
			return 0;
		appl_unlock(ap);
		pthread_mutex_lock(&l->amu);
		while (__atomic_load_n(&l->applying, __ATOMIC_ACQUIRE))
			pthread_cond_wait(&l->acv, &l->amu);
		pthread_mutex_unlock(&l->amu);
		appl_lock(ap);
	}
	__atomic_store_n(&l->applying, 1, __ATOMIC_RELEASE);
	return 1;
}

static void applier_leave(lun *l)
{
	pthread_mutex_lock(&l->amu);
	__atomic_store_n(&l->applying, 0, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&l->acv);
	pthread_mutex_unlock(&l->amu);
}

static int cache_apply_upto(lun *l, uint64_t upto, int yield)
{
	appl *ap = l->ls->ap;
	store_wpiece *v = malloc(APPLY_PIECES * sizeof(*v));
	struct picked *pk = malloc(APPLY_PIECES * sizeof(*pk));
	int r = 0, tries = 0;
	if (!v || !pk) {
		free(v);
		free(pk);
		return -ENOMEM;
	}
	for (int first = 1;; first = 0) {
		if (!first && yield) {
			appl_unlock(ap);
			appl_lock(ap);
		}
		size_t n = cache_pick(l, upto, v, pk);
		if (n == 0)
			break;
		store_wbatch *b = NULL;
		if (yield && !l->dup_heavy && tries < APPLY_TRIES) {
			r = batch_unlocked(l, v, n, &b);
		} else if ((r = store_wbatch_plan(ap->s, l->data, v, n, &b)) == 0) {
			r = store_wbatch_apply(ap->s, b);
		}
		if (r == -EAGAIN) {
			store_wbatch_free(b);
			tries++;
			r = 0;
			continue; /* picked and planned again */
		}
		if (r < 0) {
			store_wbatch_free(b);
			LOG_W("lun: applying %zu cached writes of %s from %llu: %s (kept cached)", n,
			      l->name, (unsigned long long)v[0].off, strerror(-r));
			break;
		}
		uint64_t chunks, known;
		store_wbatch_stats(b, &chunks, &known);
		l->dup_heavy = known * 2 > chunks;
		store_wbatch_free(b);
		tries = 0;
		cache_drop_picked(l, pk, n);
	}
	free(v);
	free(pk);
	return r;
}

static int cache_apply(lun *l)
{
	return cache_apply_upto(l, UINT64_MAX, 0);
}

/* --- the set --- */

static void *flusher_main(void *arg)
{
	lun_set *ls = arg;
	pthread_mutex_lock(&ls->mu);
	while (!ls->stop) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 250000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&ls->cv, &ls->mu, &ts);
		if (ls->stop)
			break;
		uint64_t now = bks_now_ns();
		for (lun *l = ls->open; l; l = l->next) {
			appl_lock(ls->ap);
			if (l->nce && now - l->last_write_ns >= CACHE_IDLE_NS && applier_enter(l, 1)) {
				cache_apply_upto(l, UINT64_MAX, 1);
				applier_leave(l);
			}
			appl_unlock(ls->ap);
		}
	}
	pthread_mutex_unlock(&ls->mu);
	return NULL;
}

int lun_set_open(appl *ap, lun_set **out, bks_err *e)
{
	uint64_t sys;
	ns_attr a;
	lun_set *ls = calloc(1, sizeof(*ls));
	if (!ls)
		return bks_fail(e, -ENOMEM, "out of memory");
	ls->ap = ap;
	appl_lock(ap);
	int r = ns_system_dir(ap->n, &sys);
	if (r == 0 && (r = ns_lookup(ap->n, sys, "luns", &a)) == -ENOENT)
		r = ns_mkdir(ap->n, sys, "luns", 0700, 0, 0, &a);
	if (r == 0 && a.type != NS_DIR)
		r = -ENOTDIR;
	appl_unlock(ap);
	if (r < 0) {
		free(ls);
		return bks_fail(e, r, "the LUN directory: %s", strerror(-r));
	}
	ls->luns = a.id;
	pthread_mutex_init(&ls->mu, NULL);
	pthread_mutex_init(&ls->snapmu, NULL);
	pthread_mutex_init(&ls->engmu, NULL);
	pthread_cond_init(&ls->cv, NULL);
	if (pthread_create(&ls->flusher, NULL, flusher_main, ls) != 0) {
		lun_set_close(ls);
		return bks_fail(e, -EAGAIN, "cannot start the LUN cache flusher");
	}
	ls->flusher_started = 1;
	*out = ls;
	return 0;
}

void lun_set_close(lun_set *ls)
{
	if (!ls)
		return;
	if (ls->flusher_started) {
		pthread_mutex_lock(&ls->mu);
		ls->stop = 1;
		pthread_cond_broadcast(&ls->cv);
		pthread_mutex_unlock(&ls->mu);
		pthread_join(ls->flusher, NULL);
	}
	/* LUNs still open: bkstord stops the iSCSI target (every session closes its
	 * handles) before the set, so none should be; any left are applied and freed. */
	appl_lock(ls->ap);
	for (lun *l = ls->open, *nx; l; l = nx) {
		nx = l->next;
		cache_apply(l);
		cache_free(l);
		pthread_mutex_destroy(&l->amu);
		pthread_cond_destroy(&l->acv);
		free(l);
	}
	appl_unlock(ls->ap);
	pthread_mutex_destroy(&ls->mu);
	pthread_mutex_destroy(&ls->snapmu);
	pthread_mutex_destroy(&ls->engmu);
	ingest_free(ls->eng);
	pthread_cond_destroy(&ls->cv);
	free(ls->snap);
	free(ls);
}

static lun *open_find(lun_set *ls, const char *name)
{
	for (lun *l = ls->open; l; l = l->next)
		if (!strcmp(l->name, name))
			return l;
	return NULL;
}

int lun_create(lun_set *ls, const char *name, uint64_t size, uint32_t block_size,
               const char *initiators, bks_err *e)
{
	appl *ap = ls->ap;
	char acl[LUN_ACL_MAX + 1];
	uint8_t mb[LUN_META_MAX];
	ns_attr d, f;
	lun_mode mode;
	int r;
	if (name_ok(name) < 0)
		return bks_fail(e, -EINVAL, "a LUN name is 1..%d of a-z, 0-9, '.', '-', "
		                "starting with a letter or a digit", LUN_NAME_MAX);
	if (block_size != 512 && block_size != 4096)
		return bks_fail(e, -EINVAL, "the block size is 512 or 4096");
	if (size == 0 || size > (1ull << 50))
		return bks_fail(e, -EINVAL, "a LUN's size is 1 byte to 1 PiB");
	size = (size + block_size - 1) / block_size * block_size;
	if ((r = acl_norm(initiators, acl)) < 0)
		return bks_fail(e, r, "bad initiator list");
	lun_mode_default(&mode);
	appl_lock(ap);
	r = ns_lookup(ap->n, ls->luns, name, &d);
	if (r == 0) {
		appl_unlock(ap);
		return bks_fail(e, -EEXIST, "LUN %s exists", name);
	}
	if ((r = ns_mkdir(ap->n, ls->luns, name, 0700, 0, 0, &d)) < 0)
		goto out;
	if ((r = ns_create(ap->n, d.id, "data", 0600, 0, 0, 1, &f)) < 0 ||
	    (r = store_truncate(ap->s, f.id, size)) < 0 ||
	    (r = put_file(ap, d.id, "meta", mb, lun_meta_encode(mb, block_size, acl, &mode), NULL)) < 0) {
		/* Undo: nothing of it was acknowledged. */
		ns_unlink(ap->n, d.id, "data");
		ns_unlink(ap->n, d.id, "meta");
		ns_rmdir(ap->n, ls->luns, name);
		goto out;
	}
	r = ns_sync(ap->n, f.id, e);
out:
	appl_unlock(ap);
	if (r < 0)
		return e && e->code ? e->code : bks_fail(e, r, "creating LUN %s: %s", name,
		                                         strerror(-r));
	changed(ls);
	LOG_I("lun: created %s (%llu bytes, %u-byte blocks)", name, (unsigned long long)size,
	      block_size);
	return 0;
}

int lun_resize(lun_set *ls, const char *name, uint64_t size, bks_err *e)
{
	appl *ap = ls->ap;
	struct rec rc;
	if (name_ok(name) < 0)
		return bks_fail(e, -ENOENT, "no LUN %s", name);
	pthread_mutex_lock(&ls->mu);
	appl_lock(ap);
	int r = rec_load(ls, name, &rc);
	if (r < 0)
		goto out;
	if (size == 0 || size > (1ull << 50)) {
		r = -EINVAL;
		goto out;
	}
	size = (size + rc.bs - 1) / rc.bs * rc.bs;
	lun *l = open_find(ls, name);
	if (l && size < l->size) {
		/* Cached bytes past the new end go (a shrink drops them). */
		if (cache_cut(l, size, l->size - size, NULL) < 0) {
			r = -ENOMEM;
			goto out;
		}
	}
	if ((r = store_truncate(ap->s, rc.data, size)) < 0)
		goto out;
	if (l) /* (atomic: lun_geometry reads it without appl.mu) */
		__atomic_store_n(&l->size, size, __ATOMIC_RELAXED);
	r = ns_sync(ap->n, rc.data, NULL);
out:
	appl_unlock(ap);
	pthread_mutex_unlock(&ls->mu);
	changed(ls);
	if (r == -ENOENT)
		return bks_fail(e, r, "no LUN %s", name);
	if (r == -EINVAL)
		return bks_fail(e, r, "a LUN's size is 1 byte to 1 PiB");
	if (r < 0)
		return bks_fail(e, r, "resizing LUN %s: %s", name, strerror(-r));
	LOG_I("lun: %s resized to %llu bytes", name, (unsigned long long)size);
	return 0;
}

int lun_set_acl(lun_set *ls, const char *name, const char *initiators, bks_err *e)
{
	appl *ap = ls->ap;
	struct rec rc;
	char acl[LUN_ACL_MAX + 1];
	uint8_t mb[LUN_META_MAX];
	uint64_t id;
	int r;
	if (name_ok(name) < 0)
		return bks_fail(e, -ENOENT, "no LUN %s", name);
	if ((r = acl_norm(initiators, acl)) < 0)
		return bks_fail(e, r, "bad initiator list");
	pthread_mutex_lock(&ls->mu);
	appl_lock(ap);
	if ((r = rec_load(ls, name, &rc)) == 0 &&
	    (r = put_file(ap, rc.dir, "meta", mb, lun_meta_encode(mb, rc.bs, acl, &rc.mode), &id)) == 0)
		r = ns_sync(ap->n, id, NULL);
	lun *l = r == 0 ? open_find(ls, name) : NULL;
	if (l)
		memcpy(l->acl, acl, sizeof(acl));
	appl_unlock(ap);
	pthread_mutex_unlock(&ls->mu);
	changed(ls);
	if (r == -ENOENT)
		return bks_fail(e, r, "no LUN %s", name);
	if (r < 0)
		return bks_fail(e, r, "setting the ACL of LUN %s: %s", name, strerror(-r));
	return 0;
}

int lun_set_write_cache(lun_set *ls, const char *name, int on, bks_err *e)
{
	appl *ap = ls->ap;
	struct rec rc;
	uint8_t mb[LUN_META_MAX];
	uint64_t id;
	if (name_ok(name) < 0)
		return bks_fail(e, -ENOENT, "no LUN %s", name);
	pthread_mutex_lock(&ls->mu);
	/* An open LUN's mode values are its device server's (daemon/sbc.c), which an
	 * initiator changes with MODE SELECT and hears of by a unit attention: not
	 * changed behind its back. ls->mu keeps it closed until the record is saved. */
	if (open_find(ls, name)) {
		pthread_mutex_unlock(&ls->mu);
		return bks_fail(e, -EBUSY, "LUN %s is in use (its initiator sets the write cache "
		                "with MODE SELECT)", name);
	}
	appl_lock(ap);
	int r = rec_load(ls, name, &rc);
	if (r == 0 && rc.mode.wce != (on ? 1 : 0)) {
		rc.mode.wce = on ? 1 : 0;
		if ((r = put_file(ap, rc.dir, "meta", mb, lun_meta_encode(mb, rc.bs, rc.acl, &rc.mode),
		                  &id)) == 0)
			r = ns_sync(ap->n, id, NULL);
	}
	appl_unlock(ap);
	pthread_mutex_unlock(&ls->mu);
	changed(ls);
	if (r == -ENOENT)
		return bks_fail(e, r, "no LUN %s", name);
	if (r < 0)
		return bks_fail(e, r, "setting the write cache of LUN %s: %s", name, strerror(-r));
	LOG_I("lun: %s write cache %s", name, on ? "on" : "off");
	return 0;
}

int lun_delete(lun_set *ls, const char *name, bks_err *e)
{
	appl *ap = ls->ap;
	struct rec rc;
	if (name_ok(name) < 0)
		return bks_fail(e, -ENOENT, "no LUN %s", name);
	pthread_mutex_lock(&ls->mu);
	if (open_find(ls, name)) {
		pthread_mutex_unlock(&ls->mu);
		return bks_fail(e, -EBUSY, "LUN %s is in use (an initiator has it open)", name);
	}
	appl_lock(ap);
	int r = rec_load(ls, name, &rc);
	if (r == 0 || r == -EIO) {
		/* Files first, then the directory: a crash between leaves a directory the
		 * list skips (no record) and a later delete removes. */
		const char *files[] = {"data", "meta", "pr"};
		ns_attr d;
		if ((r = ns_lookup(ap->n, ls->luns, name, &d)) == 0) {
			for (int i = 0; i < 3 && r == 0; i++)
				if ((r = ns_unlink(ap->n, d.id, files[i])) == -ENOENT)
					r = 0;
			if (r == 0)
				r = ns_rmdir(ap->n, ls->luns, name);
			if (r == 0)
				r = ns_sync(ap->n, ls->luns, NULL);
		}
	}
	appl_unlock(ap);
	pthread_mutex_unlock(&ls->mu);
	changed(ls);
	if (r == -ENOENT)
		return bks_fail(e, r, "no LUN %s", name);
	if (r < 0)
		return bks_fail(e, r, "deleting LUN %s: %s", name, strerror(-r));
	LOG_I("lun: deleted %s", name);
	return 0;
}

/* Fill li from a record (appl.mu held); l the open LUN or NULL. */
static void info_fill(lun_set *ls, const char *name, const struct rec *rc, lun *l,
                      int with_mapped, lun_info *li)
{
	memset(li, 0, sizeof(*li));
	snprintf(li->name, sizeof(li->name), "%s", name);
	li->size = l ? l->size : rc->size;
	li->block_size = rc->bs;
	li->object_id = rc->data;
	li->generation = rc->gen;
	identity(ls->ap->cfg.array_name ? ls->ap->cfg.array_name : "bkstor", rc->data, rc->gen,
	         li->naa, li->serial);
	memcpy(li->initiators, l ? l->acl : rc->acl, sizeof(li->initiators));
	li->write_cache = l ? l->mode.wce : rc->mode.wce;
	if (with_mapped) {
		uint64_t m = 0, now = bks_now_ns();
		struct mapped_ent *me = &ls->mc[rc->data % MAPPED_CACHE];
		if (me->id == rc->data && me->size == li->size &&
		    (!l || now - me->when_ns < MAPPED_TTL_NS)) {
			m = me->mapped;
		} else if (store_mapped_bytes(ls->ap->s, rc->data, &m) == 0) {
			*me = (struct mapped_ent){rc->data, li->size, m, now};
		}
		li->mapped_bytes = l ? BKS_MIN(m + l->cached, l->size) : m;
	}
	if (l) {
		li->read_bytes = l->read_bytes;
		li->written_bytes = l->written_bytes;
		li->open_count = l->refs;
		li->sessions = __atomic_load_n(&l->sessions, __ATOMIC_ACQUIRE);
	}
}

struct list_ctx {
	lun_set *ls;
	char (*names)[LUN_NAME_MAX + 1];
	size_t n, cap;
};

static int list_cb(void *ctx, const ns_dirent *d)
{
	struct list_ctx *c = ctx;
	if (d->type != NS_DIR || name_ok(d->name) < 0)
		return 0;
	if (c->n == c->cap) {
		size_t nc = c->cap ? c->cap * 2 : 16;
		void *q = realloc(c->names, nc * sizeof(*c->names));
		if (!q)
			return -ENOMEM;
		c->names = q;
		c->cap = nc;
	}
	snprintf(c->names[c->n++], LUN_NAME_MAX + 1, "%s", d->name);
	return 0;
}

int lun_list(lun_set *ls, int (*fn)(void *ctx, const lun_info *li), void *ctx)
{
	appl *ap = ls->ap;
	struct list_ctx c = {ls, NULL, 0, 0};
	appl_lock(ap);
	int r = ns_readdir(ap->n, ls->luns, NULL, list_cb, &c);
	appl_unlock(ap);
	/* fn runs without appl.mu (it may write to the network); one LUN at a time. */
	lun_info *li = malloc(sizeof(*li));
	if (!li)
		r = -ENOMEM;
	for (size_t i = 0; r == 0 && i < c.n; i++) {
		struct rec rc;
		pthread_mutex_lock(&ls->mu);
		appl_lock(ap);
		int lr = rec_load(ls, c.names[i], &rc);
		if (lr == 0)
			info_fill(ls, c.names[i], &rc, open_find(ls, c.names[i]), 1, li);
		appl_unlock(ap);
		pthread_mutex_unlock(&ls->mu);
		if (lr < 0)
			continue; /* deleted meanwhile, or a directory left without a record */
		r = fn(ctx, li);
	}
	free(li);
	free(c.names);
	return r < 0 ? r : 0;
}

/* appl.mu for the status snapshot: taken if free, or waited for if wait. */
static int snap_lock(appl *ap, int wait)
{
	if (wait) {
		appl_lock(ap);
		return 0;
	}
	return appl_trylock(ap) == 0 ? 0 : -EBUSY;
}

/* Gather the list as lun_list does, one LUN per hold of appl.mu; without wait,
 * -EBUSY (and the old snapshot kept) the first time appl.mu is taken. */
static int snap_refresh(lun_set *ls, int wait)
{
	appl *ap = ls->ap;
	uint64_t changes = __atomic_load_n(&ls->changes, __ATOMIC_ACQUIRE);
	struct list_ctx c = {ls, NULL, 0, 0};
	lun_info *v = NULL;
	size_t n = 0;
	int r;
	if ((r = snap_lock(ap, wait)) < 0)
		return r;
	r = ns_readdir(ap->n, ls->luns, NULL, list_cb, &c);
	appl_unlock(ap);
	if (r == 0 && c.n && !(v = malloc(c.n * sizeof(*v))))
		r = -ENOMEM;
	for (size_t i = 0; r == 0 && i < c.n; i++) {
		struct rec rc;
		pthread_mutex_lock(&ls->mu);
		if ((r = snap_lock(ap, wait)) < 0) {
			pthread_mutex_unlock(&ls->mu);
			break;
		}
		int lr = rec_load(ls, c.names[i], &rc);
		if (lr == 0)
			info_fill(ls, c.names[i], &rc, open_find(ls, c.names[i]), 1, &v[n++]);
		appl_unlock(ap);
		pthread_mutex_unlock(&ls->mu);
	}
	free(c.names);
	if (r < 0) {
		free(v);
		return r;
	}
	pthread_mutex_lock(&ls->snapmu);
	if (!ls->snap_ok || changes >= ls->snap_changes) { /* never older over newer */
		free(ls->snap);
		ls->snap = v;
		ls->nsnap = n;
		ls->snap_changes = changes;
		ls->snap_ok = 1;
		v = NULL;
	}
	pthread_mutex_unlock(&ls->snapmu);
	free(v);
	return 0;
}

int lun_list_snapshot(lun_set *ls, int (*fn)(void *ctx, const lun_info *li), void *ctx)
{
	pthread_mutex_lock(&ls->snapmu);
	int stale = !ls->snap_ok ||
	            ls->snap_changes != __atomic_load_n(&ls->changes, __ATOMIC_ACQUIRE);
	pthread_mutex_unlock(&ls->snapmu);
	int r = snap_refresh(ls, 0);
	if (r == -EBUSY && stale)
		r = snap_refresh(ls, 1);
	if (r < 0 && r != -EBUSY)
		return r;
	pthread_mutex_lock(&ls->snapmu);
	size_t n = ls->nsnap;
	lun_info *v = n ? malloc(n * sizeof(*v)) : NULL;
	if (v)
		memcpy(v, ls->snap, n * sizeof(*v));
	pthread_mutex_unlock(&ls->snapmu);
	if (n && !v)
		return -ENOMEM;
	r = 0;
	for (size_t i = 0; r == 0 && i < n; i++)
		r = fn(ctx, &v[i]);
	free(v);
	return r < 0 ? r : 0;
}

int lun_open(lun_set *ls, const char *name, lun **out)
{
	appl *ap = ls->ap;
	struct rec rc;
	int r = 0;
	if (name_ok(name) < 0)
		return -ENOENT;
	pthread_mutex_lock(&ls->mu);
	lun *l = open_find(ls, name);
	if (l) {
		l->refs++;
		goto out;
	}
	appl_lock(ap);
	r = rec_load(ls, name, &rc);
	appl_unlock(ap);
	if (r < 0)
		goto out;
	if (!(l = calloc(1, sizeof(*l)))) {
		r = -ENOMEM;
		goto out;
	}
	l->ls = ls;
	l->refs = 1;
	pthread_mutex_init(&l->amu, NULL);
	pthread_cond_init(&l->acv, NULL);
	snprintf(l->name, sizeof(l->name), "%s", name);
	l->dir = rc.dir;
	l->data = rc.data;
	l->data_gen = rc.gen;
	l->size = rc.size;
	l->bs = rc.bs;
	memcpy(l->acl, rc.acl, sizeof(l->acl));
	l->mode = rc.mode;
	l->next = ls->open;
	ls->open = l;
out:
	pthread_mutex_unlock(&ls->mu);
	if (r == 0) {
		changed(ls); /* open_count */
		*out = l;
	}
	return r;
}

void lun_session(lun *l, int delta)
{
	__atomic_add_fetch(&l->sessions, delta, __ATOMIC_ACQ_REL);
	changed(l->ls); /* sessions: the status list must not show the old count */
}

void lun_close(lun *l)
{
	if (!l)
		return;
	lun_set *ls = l->ls;
	pthread_mutex_lock(&ls->mu);
	if (--l->refs > 0) {
		pthread_mutex_unlock(&ls->mu);
		changed(ls);
		return;
	}
	for (lun **pp = &ls->open; *pp; pp = &(*pp)->next)
		if (*pp == l) {
			*pp = l->next;
			break;
		}
	appl_lock(ls->ap);
	cache_apply(l); /* what fails is lost: logged; never acknowledged as durable */
	cache_free(l);
	appl_unlock(ls->ap);
	pthread_mutex_unlock(&ls->mu);
	changed(ls);
	pthread_mutex_destroy(&l->amu);
	pthread_cond_destroy(&l->acv);
	free(l);
}

void lun_get_info(lun *l, lun_info *li)
{
	lun_set *ls = l->ls;
	struct rec rc = {.dir = l->dir, .data = l->data, .gen = l->data_gen};
	pthread_mutex_lock(&ls->mu);
	appl_lock(ls->ap);
	rc.size = l->size;
	rc.bs = l->bs;
	memcpy(rc.acl, l->acl, sizeof(rc.acl));
	rc.mode = l->mode;
	info_fill(ls, l->name, &rc, l, 0, li);
	appl_unlock(ls->ap);
	pthread_mutex_unlock(&ls->mu);
}

int lun_acl_allows(lun *l, const char *initiator)
{
	appl *ap = l->ls->ap;
	int ok = 0;
	appl_lock(ap);
	if (!l->acl[0]) {
		ok = 1;
	} else if (initiator) {
		size_t il = strlen(initiator);
		for (const char *p = l->acl; *p && !ok;) {
			const char *q = strchr(p, ',');
			size_t n = q ? (size_t)(q - p) : strlen(p);
			/* iSCSI names compare case-insensitively (RFC 3722 folds them). */
			ok = n == il && !strncasecmp(p, initiator, n);
			p += n + (q ? 1 : 0);
		}
	}
	appl_unlock(ap);
	return ok;
}

/* --- I/O --- */

static int range_ok(const lun *l, uint64_t off, uint64_t len)
{
	if (off % l->bs || len % l->bs || off > l->size || len > l->size - off)
		return -EINVAL;
	return 0;
}

void lun_geometry(lun *l, uint64_t *size, uint32_t *bs)
{
	*size = __atomic_load_n(&l->size, __ATOMIC_RELAXED);
	*bs = l->bs; /* set at open, never changed */
}

/* Does the cache hold bytes of [off, off + len)? (appl.mu held) */
static int cache_covers(const lun *l, uint64_t off, size_t len)
{
	size_t i = cache_first(l, off);
	return i < l->nce && l->ce[i].off < off + len;
}

#define READ_PIECES 64

/* Read [off, off + len) of the store into buf with the decompression outside
 * appl.mu (store_read_iov, then store_read_wait on this thread, beside the
 * store's helpers: several sessions' or one session's several READs decompress at
 * once), the way the NFS server's READ does. appl.mu held on entry and exit,
 * dropped while waiting. *got: bytes the object held (short at its end). */
static int read_unlocked(lun *l, uint64_t off, uint8_t *buf, size_t len, size_t *got)
{
	appl *ap = l->ls->ap;
	store_iov *iov = malloc(READ_PIECES * sizeof(*iov));
	int r = 0;
	*got = 0;
	if (!iov)
		return store_read(ap->s, l->data, off, buf, len, got);
	while (*got < len) {
		store_pins pins;
		int niov = 0;
		size_t n = 0;
		uint8_t *at = buf + *got;
		r = store_read_iov(ap->s, l->data, off + *got, len - *got, at, iov, READ_PIECES,
		                   &niov, &n, &pins);
		if (r < 0 || n == 0)
			break; /* (n 0: the object's end) */
		appl_unlock(ap);
		int w = store_read_wait(ap->s, &pins);
		for (int i = 0; w == 0 && i < niov; i++) {
			if (iov[i].p != at) /* pieces in the scratch (buf) are in place already */
				memcpy(at, iov[i].p, iov[i].len);
			at += iov[i].len;
		}
		appl_lock(ap);
		store_read_unpin(ap->s, &pins);
		if (w < 0) {
			/* A chunk failed its check in a read-ahead buffer: the pool reads it
			 * (and repairs it). */
			size_t g = 0;
			if ((r = store_read(ap->s, l->data, off + *got, buf + *got, n, &g)) < 0)
				break;
			n = g;
			if (n == 0)
				break;
		}
		*got += n;
	}
	free(iov);
	return r;
}

/* Reads see every write acknowledged before them: with no cached bytes in the range
 * when the read starts, the store holds them all (a write cached while the lock is
 * dropped came after the read began, and may or may not be seen, as for any
 * overlapping commands); with some, the read is done under appl.mu whole and the
 * cache laid over it. */
int lun_read(lun *l, uint64_t off, void *buf, size_t len)
{
	appl *ap = l->ls->ap;
	size_t got = 0;
	appl_lock(ap);
	int r = range_ok(l, off, len);
	if (r == 0 && len > 0) {
		if (cache_covers(l, off, len)) {
			r = store_read(ap->s, l->data, off, buf, len, &got);
		} else {
			r = read_unlocked(l, off, buf, len, &got);
		}
	}
	if (r == 0) {
		if (got < len)
			memset((uint8_t *)buf + got, 0, len - got);
		cache_overlay(l, off, buf, len);
		l->read_bytes += len;
	}
	appl_unlock(ap);
	if (r == 0)
		appl_count_restore(ap, len);
	return r;
}

int lun_write(lun *l, uint64_t off, const void *buf, size_t len, int fua)
{
	appl *ap = l->ls->ap;
	uint64_t dseq = 0;
	int r;
	appl_lock(ap);
	if ((r = range_ok(l, off, len)) < 0 || len == 0)
		goto out;
	/* A full store refuses new data up front, cached or not: the write would fail
	 * when applied, after it was acknowledged. */
	if (store_space_full(ap->s)) {
		r = -ENOSPC;
		goto out;
	}
	if (!fua) {
		/* A full cache is applied by this write, or, while another thread applies
		 * it, grows up to twice its size before the write waits for that thread.
		 * (appl.mu is let go meanwhile: the LUN may have shrunk.) */
		if (l->cached + len > CACHE_MAX &&
		    applier_enter(l, l->cached + len <= 2 * (uint64_t)CACHE_MAX)) {
			if (l->cached + len > CACHE_MAX) /* (what is there now, not what comes) */
				r = cache_apply_upto(l, l->wseq, 1);
			applier_leave(l);
			if (r < 0 || (r = range_ok(l, off, len)) < 0)
				goto out;
		}
		if ((r = cache_add(l, off, buf, (uint32_t)len)) < 0)
			goto out;
		l->unsynced = 1;
	} else {
		/* FUA: this write is durable before the answer; cached bytes it covers are
		 * older and go (the others stay cached). */
		long c = cache_cut(l, off, len, NULL);
		if (c < 0) {
			r = (int)c;
			goto out;
		}
		if ((r = store_write_at(ap->s, l->data, off, buf, len)) == 0)
			dseq = appl_change_seq(ap);
	}
	l->last_write_ns = bks_now_ns();
	l->written_bytes += len;
out:
	appl_unlock(ap);
	/* FUA: answered once a sync covers it (group commit with every other session's
	 * and NFS connection's changes, outside appl.mu). */
	if (r == 0 && dseq)
		r = appl_durable(ap, dseq, NULL);
	if (r == 0)
		appl_count_ingest(ap, len);
	return r;
}

int lun_unmap(lun *l, uint64_t off, uint64_t len)
{
	appl *ap = l->ls->ap;
	appl_lock(ap);
	int r = range_ok(l, off, len);
	if (r == 0 && len > 0) {
		long c = cache_cut(l, off, len, NULL);
		r = c < 0 ? (int)c : store_punch(ap->s, l->data, off, len);
		l->unsynced = 1;
	}
	appl_unlock(ap);
	return r;
}

int lun_sync(lun *l)
{
	appl *ap = l->ls->ap;
	int r = 0;
	appl_lock(ap);
	if (l->nce || l->unsynced) {
		/* Writes cached after this command came need not be applied (and a steady
		 * writer must not keep it from answering): the batches stop at the write
		 * count now. */
		uint64_t upto = l->wseq;
		applier_enter(l, 0);
		r = cache_apply_upto(l, upto, 1);
		applier_leave(l);
		if (r == 0) {
			l->sync_seq = appl_change_seq(ap);
			l->unsynced = 0;
		}
	}
	/* With nothing new too: another session's SYNCHRONIZE CACHE may still wait for
	 * the sync of the writes it applied, and this one must not answer before it. */
	uint64_t seq = l->sync_seq;
	appl_unlock(ap);
	if (r == 0 && (r = appl_durable(ap, seq, NULL)) < 0) {
		appl_lock(ap);
		l->unsynced = 1; /* the next SYNCHRONIZE CACHE syncs again */
		appl_unlock(ap);
	}
	return r;
}

int lun_mapped(lun *l, uint64_t off, uint64_t len, int *mapped, uint64_t *run)
{
	appl *ap = l->ls->ap;
	appl_lock(ap);
	int r = range_ok(l, off, len);
	if (r == 0 && len == 0)
		r = -EINVAL;
	/* Cached writes are mapped: apply them first (GET LBA STATUS is rare). */
	if (r == 0)
		r = cache_apply(l);
	uint64_t pos = off, end = off + len;
	int state = -1;
	/* Chunk boundaries fall anywhere; holes start and end on blocks (UNMAP and
	 * resizes make them), so a run of one state ends on a block. A bounded walk. */
	for (int steps = 0; r == 0 && pos < end && steps < 4096; steps++) {
		uint64_t s, n;
		int hole;
		if ((r = store_extent(ap->s, l->data, pos, &s, &n, &hole)) < 0)
			break;
		if (state >= 0 && state != !hole)
			break;
		state = !hole;
		pos = s + n;
	}
	if (r == 0) {
		uint64_t rl = BKS_MIN(pos, end) - off;
		rl -= rl % l->bs;
		*run = rl ? rl : l->bs;
		*mapped = state;
	}
	appl_unlock(ap);
	return r;
}

/* --- mode values --- */

void lun_get_mode(lun *l, lun_mode *m)
{
	appl_lock(l->ls->ap);
	*m = l->mode;
	appl_unlock(l->ls->ap);
}

int lun_set_mode(lun *l, const lun_mode *m)
{
	lun_set *ls = l->ls;
	appl *ap = ls->ap;
	struct rec rc;
	uint8_t mb[LUN_META_MAX];
	uint64_t id;
	/* The record is read again (not rebuilt from l): lun_set_acl rewrites it too,
	 * under the same appl.mu, so neither change undoes the other. */
	appl_lock(ap);
	int r = rec_load(ls, l->name, &rc);
	if (r == 0 && rc.dir != l->dir)
		r = -ENOENT; /* (cannot happen: lun_delete refuses an open LUN) */
	if (r == 0 && (r = put_file(ap, rc.dir, "meta", mb, lun_meta_encode(mb, rc.bs, rc.acl, m),
	                            &id)) == 0)
		r = ns_sync(ap->n, id, NULL);
	/* Current only once saved: a failed save leaves both as they were (the record
	 * is replaced whole, so a crash shows the old values or the new). */
	if (r == 0)
		l->mode = *m;
	appl_unlock(ap);
	if (r == 0)
		changed(ls);
	else
		LOG_W("lun: saving the mode values of %s: %s", l->name, strerror(-r));
	return r;
}

/* --- persistent reservations --- */

int lun_pr_load(lun *l, void *buf, size_t cap, size_t *len)
{
	appl *ap = l->ls->ap;
	uint8_t *b = malloc(PR_FIXED + LUN_PR_MAX + 8);
	size_t bl = 0;
	*len = 0;
	if (!b)
		return -ENOMEM;
	appl_lock(ap);
	int r = get_file(ap, l->dir, "pr", b, PR_FIXED + LUN_PR_MAX + 8, &bl);
	appl_unlock(ap);
	if (r == -ENOENT) {
		r = 0; /* never saved */
	} else if (r == 0) {
		uint32_t pl = bl >= PR_FIXED ? le_get32(b + 12) : 0;
		if (bl < PR_FIXED + 8 || memcmp(b, PR_MAGIC, 8))
			r = -EINVAL;
		else if (le_get32(b + 8) != PR_VERSION)
			r = -EPROTO;
		else if ((size_t)PR_FIXED + pl + 8 != bl ||
		         le_get64(b + PR_FIXED + pl) != bks_xxh3(b, PR_FIXED + pl))
			r = -EINVAL;
		else if (pl > cap)
			r = -EFBIG;
		else
			memcpy(buf, b + PR_FIXED, pl), *len = pl;
		if (r < 0)
			LOG_W("lun: the reservation record of %s is damaged (%s): ignored", l->name,
			      strerror(-r));
	}
	free(b);
	return r;
}

int lun_pr_save(lun *l, const void *buf, size_t len)
{
	appl *ap = l->ls->ap;
	if (len > LUN_PR_MAX)
		return -EFBIG;
	uint8_t *b = malloc(PR_FIXED + len + 8);
	uint64_t id;
	if (!b)
		return -ENOMEM;
	memcpy(b, PR_MAGIC, 8);
	le_put32(b + 8, PR_VERSION);
	le_put32(b + 12, (uint32_t)len);
	memcpy(b + PR_FIXED, buf, len);
	le_put64(b + PR_FIXED + len, bks_xxh3(b, PR_FIXED + len));
	appl_lock(ap);
	int r = put_file(ap, l->dir, "pr", b, PR_FIXED + len + 8, &id);
	if (r == 0)
		r = ns_sync(ap->n, id, NULL);
	appl_unlock(ap);
	free(b);
	return r;
}
