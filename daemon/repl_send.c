/* daemon/repl_send.c: the source side of replication: after each commit, walk the
 * replicated paths, compare with what the twin has acknowledged (the manifest), and
 * send the differences: renames first, then new and changed directories, files and
 * symbolic links, then deletes (which the twin holds back for its delete_delay),
 * then SYNC (the twin commits).
 *
 * A file goes as its content map: its chunks' fingerprints in FP_LIST rounds, the
 * twin answers FP_NEED, and only the chunks it lacks cross, as this store keeps them
 * (compressed). The source-side dedup exchange of the native protocol, with the same
 * payloads.
 *
 * The cursor (repl.state beside the configuration): every path the twin has
 * acknowledged with the object (id, generation), size, mtime and attributes it had.
 * It is saved whole (temporary file, fsync, rename) at the end of each cycle and at
 * most every 2 s during one, so a cut (kill -9 of either side, a network failure)
 * costs at most the files acknowledged in the last 2 s being offered again, and then
 * only their fingerprints cross: the twin has their chunks and answers FP_NEED with
 * no bit set. A damaged or missing cursor makes the next cycle offer every file, with
 * the same effect.
 *
 * Files go several at once, one per connection ([repl] connections; "several files
 * in flight" below); the twin makes sure a chunk they share crosses once.
 *
 * Known limits: every cycle walks the whole replicated tree (a change log from the
 * store would make it proportional to the changes); a file's extents are held in
 * memory while it is sent; a hole is sent as zero chunks of 16 KiB; hard links
 * arrive as separate files.
 */
#include <config.h>

#include "daemon/repl_int.h"

#include <errno.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include "common/endian.h"
#include "daemon/log.h"
#include "dedup/segment.h"
#include "dedup/store_repl.h"

#define STATE_MAGIC "BKSRSTA1"
#define STATE_VERSION 1u
#define ZPIECE (16u << 10)       /* a hole crosses as zero chunks of this size */
#define SAVE_EVERY_NS 2000000000ull
#define ENT_FIXED 52             /* repl.state: an entry's bytes after its path */

/* ---- the manifest: path -> what the twin has ---- */

typedef struct ment {
	char *path;              /* NULL: empty slot */
	uint8_t type;            /* enum ns_type */
	uint64_t id, gen, size;
	int64_t mtime_ns;
	int64_t ctime_ns;        /* a file's content changed even if size and mtime were
	                          * put back (cp -p, rsync -t): ctime moved */
	uint32_t mode, uid, gid;
} ment;

typedef struct mtab {
	ment *v;                 /* open addressing; a removed entry leaves a tombstone */
	uint8_t *tomb;
	size_t cap, n, ntomb;
} mtab;

static uint64_t hstr(const char *s)
{
	return bks_xxh3(s, strlen(s));
}

static void mtab_free(mtab *t)
{
	for (size_t i = 0; i < t->cap; i++)
		free(t->v[i].path);
	free(t->v);
	free(t->tomb);
	memset(t, 0, sizeof(*t));
}

static ment *mtab_get(const mtab *t, const char *path)
{
	if (!t->cap)
		return NULL;
	for (size_t i = hstr(path) % t->cap;; i = (i + 1) % t->cap) {
		if (!t->v[i].path && !t->tomb[i])
			return NULL;
		if (t->v[i].path && !strcmp(t->v[i].path, path))
			return &t->v[i];
	}
}

static int mtab_grow(mtab *t)
{
	mtab nt = {0};
	nt.cap = t->cap ? (t->n * 4 > t->cap ? t->cap * 2 : t->cap) : 1024;
	if (!(nt.v = calloc(nt.cap, sizeof(ment))) || !(nt.tomb = calloc(nt.cap, 1))) {
		free(nt.v);
		return -ENOMEM;
	}
	for (size_t i = 0; i < t->cap; i++) {
		if (!t->v[i].path)
			continue;
		size_t j = hstr(t->v[i].path) % nt.cap;
		while (nt.v[j].path)
			j = (j + 1) % nt.cap;
		nt.v[j] = t->v[i];
		nt.n++;
	}
	free(t->v);
	free(t->tomb);
	*t = nt;
	return 0;
}

/* Insert or replace (the path is copied). */
static int mtab_put(mtab *t, const ment *e)
{
	ment *o = mtab_get(t, e->path);
	if (o) {
		char *p = o->path;
		*o = *e;
		o->path = p;
		return 0;
	}
	if ((t->n + t->ntomb + 1) * 2 > t->cap && mtab_grow(t) < 0)
		return -ENOMEM;
	char *p = strdup(e->path);
	if (!p)
		return -ENOMEM;
	size_t i = hstr(p) % t->cap;
	while (t->v[i].path)
		i = (i + 1) % t->cap;
	if (t->tomb[i]) {
		t->tomb[i] = 0;
		t->ntomb--;
	}
	t->v[i] = *e;
	t->v[i].path = p;
	t->n++;
	return 0;
}

static void mtab_del(mtab *t, const char *path)
{
	ment *o = mtab_get(t, path);
	if (!o)
		return;
	size_t i = (size_t)(o - t->v);
	free(o->path);
	memset(o, 0, sizeof(*o));
	t->tomb[i] = 1;
	t->ntomb++;
	t->n--;
}

static int under(const char *path, const char *dir)
{
	size_t n = strlen(dir);
	return !strncmp(path, dir, n) && (path[n] == 0 || path[n] == '/');
}

/* After the twin renamed from -> to: every entry at or below from moves. */
static int mtab_rename(mtab *t, const char *from, const char *to)
{
	ment *moved = NULL;
	size_t nm = 0, cap = 0;
	int rc = 0;
	for (size_t i = 0; i < t->cap; i++) {
		if (!t->v[i].path || !under(t->v[i].path, from))
			continue;
		if (nm == cap) {
			cap = cap ? cap * 2 : 16;
			ment *nv = realloc(moved, cap * sizeof(*nv));
			if (!nv) {
				rc = -ENOMEM;
				break;
			}
			moved = nv;
		}
		moved[nm] = t->v[i];
		size_t tl = strlen(to), rest = strlen(t->v[i].path) - strlen(from);
		char *np = malloc(tl + rest + 1);
		if (!np) {
			rc = -ENOMEM;
			break;
		}
		memcpy(np, to, tl);
		memcpy(np + tl, t->v[i].path + strlen(from), rest + 1);
		moved[nm++].path = np;
	}
	for (size_t i = 0; i < nm; i++) {
		char old[WIRE_PATH_MAX + 2];
		snprintf(old, sizeof(old), "%s%s", from, moved[i].path + strlen(to));
		mtab_del(t, old);
	}
	for (size_t i = 0; i < nm; i++) {
		if (rc == 0)
			rc = mtab_put(t, &moved[i]);
		free(moved[i].path);
	}
	free(moved);
	return rc;
}

/* repl.state: magic 8 | version u32 | 0 u32 | count u64 | entries (type u8, path u16
 * + bytes, id, gen, size u64, mtime, ctime i64, mode, uid, gid u32) | xxh3-64. */
static int state_save(repl *r, const mtab *t)
{
	size_t n = 24 + 8;
	for (size_t i = 0; i < t->cap; i++)
		if (t->v[i].path)
			n += 1 + 2 + strlen(t->v[i].path) + ENT_FIXED;
	uint8_t *b = malloc(n), *p = b;
	if (!b)
		return -ENOMEM;
	memcpy(p, STATE_MAGIC, 8);
	le_put32(p + 8, STATE_VERSION);
	le_put32(p + 12, 0);
	le_put64(p + 16, t->n);
	p += 24;
	for (size_t i = 0; i < t->cap; i++) {
		const ment *e = &t->v[i];
		if (!e->path)
			continue;
		size_t pl = strlen(e->path);
		*p++ = e->type;
		le_put16(p, (uint16_t)pl);
		memcpy(p + 2, e->path, pl);
		p += 2 + pl;
		le_put64(p, e->id);
		le_put64(p + 8, e->gen);
		le_put64(p + 16, e->size);
		le_put64(p + 24, (uint64_t)e->mtime_ns);
		le_put64(p + 32, (uint64_t)e->ctime_ns);
		le_put32(p + 40, e->mode);
		le_put32(p + 44, e->uid);
		le_put32(p + 48, e->gid);
		p += ENT_FIXED;
	}
	le_put64(p, bks_xxh3(b, (size_t)(p - b)));
	char path[1100];
	snprintf(path, sizeof(path), "%srepl.state", r->dir);
	int rc = repl_write_file(path, b, n, 0600);
	free(b);
	return rc;
}

static int state_load(repl *r, mtab *t)
{
	char path[1100];
	snprintf(path, sizeof(path), "%srepl.state", r->dir);
	FILE *f = fopen(path, "rb");
	if (!f)
		return errno == ENOENT ? 0 : -errno;
	fseek(f, 0, SEEK_END);
	long sz = ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *b = sz > 0 ? malloc((size_t)sz) : NULL;
	size_t n = b ? fread(b, 1, (size_t)sz, f) : 0;
	fclose(f);
	int rc = -EINVAL;
	if (n >= 32 && n == (size_t)sz && !memcmp(b, STATE_MAGIC, 8) &&
	    le_get32(b + 8) == STATE_VERSION && le_get64(b + n - 8) == bks_xxh3(b, n - 8)) {
		uint64_t cnt = le_get64(b + 16);
		size_t pos = 24, end = n - 8;
		rc = 0;
		for (uint64_t i = 0; i < cnt && rc == 0; i++) {
			if (pos + 3 > end) {
				rc = -EINVAL;
				break;
			}
			ment e = {0};
			e.type = b[pos];
			uint16_t pl = le_get16(b + pos + 1);
			if (pl == 0 || pos + 3 + pl + ENT_FIXED > end) {
				rc = -EINVAL;
				break;
			}
			char pb[WIRE_PATH_MAX + 1];
			memcpy(pb, b + pos + 3, pl);
			pb[pl] = 0;
			const uint8_t *q = b + pos + 3 + pl;
			e.path = pb;
			e.id = le_get64(q);
			e.gen = le_get64(q + 8);
			e.size = le_get64(q + 16);
			e.mtime_ns = (int64_t)le_get64(q + 24);
			e.ctime_ns = (int64_t)le_get64(q + 32);
			e.mode = le_get32(q + 40);
			e.uid = le_get32(q + 44);
			e.gid = le_get32(q + 48);
			rc = mtab_put(t, &e);
			pos += 3 + pl + ENT_FIXED;
		}
	}
	free(b);
	if (rc < 0) {
		LOG_W("repl: %s is damaged: every file is offered again (only the fingerprints "
		      "of what the twin has cross)", path);
		mtab_free(t);
	}
	return 0;
}

/* ---- the walk ---- */

typedef struct tree {
	ment *v;
	size_t n, cap;
} tree;

static void tree_free(tree *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->v[i].path);
	free(t->v);
	memset(t, 0, sizeof(*t));
}

static int tree_add(tree *t, const char *path, const ns_attr *a)
{
	if (t->n == t->cap) {
		size_t nc = t->cap ? t->cap * 2 : 256;
		ment *nv = realloc(t->v, nc * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		t->v = nv;
		t->cap = nc;
	}
	ment *e = &t->v[t->n];
	memset(e, 0, sizeof(*e));
	if (!(e->path = strdup(path)))
		return -ENOMEM;
	e->type = (uint8_t)a->type;
	e->id = a->id;
	e->gen = a->gen;
	e->size = a->type == NS_FILE ? a->size : 0;
	e->mtime_ns = a->mtime_ns;
	e->ctime_ns = a->ctime_ns;
	e->mode = a->mode;
	e->uid = a->uid;
	e->gid = a->gid;
	t->n++;
	return 0;
}

struct names {
	char **v;
	uint64_t *ids;
	size_t n, cap;
};

static int name_cb(void *ctx, const ns_dirent *d)
{
	struct names *nm = ctx;
	if (nm->n == nm->cap) {
		size_t nc = nm->cap ? nm->cap * 2 : 64;
		char **nv = realloc(nm->v, nc * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		nm->v = nv;
		uint64_t *ni = realloc(nm->ids, nc * sizeof(*ni));
		if (!ni)
			return -ENOMEM;
		nm->ids = ni;
		nm->cap = nc;
	}
	if (!(nm->v[nm->n] = strdup(d->name)))
		return -ENOMEM;
	nm->ids[nm->n++] = d->id;
	return 0;
}

/* Every entry under the replicated paths, parents before children. One directory
 * per hold of appl.mu, so ingest goes on between them. */
static int walk(repl *r, tree *t)
{
	appl *ap = r->ap;
	const bks_cfg *c = &ap->cfg;
	int rc = 0;
	const char *all = "/";
	int nroots = c->nrepl_paths ? c->nrepl_paths : 1;
	for (int i = 0; i < nroots && rc == 0; i++) {
		const char *root = c->nrepl_paths ? c->repl_paths[i] : all;
		ns_attr a;
		appl_lock(ap);
		int k = ns_resolve(ap->n, root, &a);
		appl_unlock(ap);
		if (k < 0)
			continue; /* not there (yet): nothing to send */
		if (strcmp(root, "/")) /* "/" itself is not an entry; its children are */
			rc = tree_add(t, root, &a);
		if (rc == 0 && a.type == NS_DIR) {
			struct names nm = {0};
			uint64_t dirid = a.id;
			char dpath[WIRE_PATH_MAX + 1], pbuf[WIRE_PATH_MAX + 1];
			snprintf(dpath, sizeof(dpath), "%s", root);
			size_t scan = t->n; /* directories added from here on are walked next */
			for (;;) {
				nm.n = 0;
				appl_lock(ap);
				rc = ns_readdir(ap->n, dirid, NULL, name_cb, &nm);
				for (size_t j = 0; j < nm.n && rc >= 0; j++) {
					ns_attr ea;
					int g = ns_getattr(ap->n, nm.ids[j], &ea);
					const char *dp = strcmp(dpath, "/") ? dpath : "";
					size_t dl = strlen(dp), nl = strlen(nm.v[j]);
					if (dl + 1 + nl > WIRE_PATH_MAX)
						continue; /* cannot cross the wire: left out */
					memcpy(pbuf, dp, dl);
					pbuf[dl] = '/';
					memcpy(pbuf + dl + 1, nm.v[j], nl + 1);
					if (g == 0)
						rc = tree_add(t, pbuf, &ea);
				}
				appl_unlock(ap);
				for (size_t j = 0; j < nm.n; j++)
					free(nm.v[j]);
				if (rc < 0)
					break;
				rc = 0;
				while (scan < t->n && t->v[scan].type != NS_DIR)
					scan++;
				if (scan >= t->n)
					break;
				dirid = t->v[scan].id;
				snprintf(dpath, sizeof(dpath), "%s", t->v[scan].path);
				scan++;
			}
			free(nm.v);
			free(nm.ids);
		}
	}
	return rc;
}

/* ---- sending ---- */

/* A token bucket of one second's worth: *next_ns is when the bytes sent so far may
 * have left at the limit, shared by the cycle's connections (under r->mu), so the
 * limit holds for all of them together. The limit is read again on every call and
 * while waiting, so a change (SIGHUP, `bkstorctl repl set bwlimit`) holds within
 * 200 ms on the running connections: the wait left is scaled to the new rate (0:
 * none). */
void repl_pace(repl *r, uint64_t bytes, uint64_t *next_ns)
{
	pthread_mutex_lock(&r->mu);
	uint64_t rate = r->bwlimit;
	uint64_t now = bks_now_ns(), until = 0;
	if (rate) {
		if (*next_ns + 1000000000ull < now)
			*next_ns = now - 1000000000ull; /* at most a second of burst */
		*next_ns += bytes * 1000000000ull / rate;
		until = *next_ns;
	}
	pthread_mutex_unlock(&r->mu);
	while (rate && until > now && !r->stopping) {
		uint64_t d = until - now;
		struct timespec ts = {(time_t)(d / 1000000000ull), (long)(d % 1000000000ull)};
		if (d > 200000000ull)
			ts = (struct timespec){0, 200000000};
		nanosleep(&ts, NULL);
		now = bks_now_ns();
		pthread_mutex_lock(&r->mu);
		uint64_t nr = r->bwlimit;
		if (nr != rate) {
			/* The limit changed: this wait scaled to it, and the shared bucket too
			 * (once: the first connection to see the change rescales it, the others
			 * find it already at the new rate's pace and only rescale their own). */
			until = !nr || until <= now ? now
			        : now + (uint64_t)((double)(until - now) * (double)rate / (double)nr);
			if (r->pace_rate != nr && *next_ns > now)
				*next_ns = !nr ? now
				           : now + (uint64_t)((double)(*next_ns - now) * (double)rate /
				                              (double)nr);
			r->pace_rate = nr;
			rate = nr;
		}
		pthread_mutex_unlock(&r->mu);
	}
}

uint64_t repl_count_wire(repl *r, rconn *c, uint64_t *mark)
{
	uint64_t d = c->tx - *mark;
	*mark = c->tx;
	pthread_mutex_lock(&r->mu);
	r->tx_wire += d;
	repl_rate_add(r, d);
	pthread_mutex_unlock(&r->mu);
	return d;
}

/* Send c's wire bytes since the last call through the pace and the counters. */
static void account(repl *r, rconn *c, uint64_t *mark, uint64_t *next_ns)
{
	repl_pace(r, repl_count_wire(r, c, mark), next_ns);
}

/* The answer to a request: DONE (0, *v), ERROR (its errno, >0 meaning "the twin
 * refused this one": go on), or a broken connection (<0). */
static int answer(rconn *c, uint64_t *v, char *why, size_t cap)
{
	repl_msg m;
	bks_err e = {0};
	int rc = repl_read_msg(c, &m, &e);
	if (rc < 0) {
		snprintf(why, cap, "%s", bks_errmsg(&e, rc));
		return rc;
	}
	if (m.type == REPL_DONE) {
		if (v)
			*v = m.v;
		return 0;
	}
	if (m.type == REPL_ERROR) {
		snprintf(why, cap, "%.*s", (int)m.text.len, m.text.p);
		return -wire_code_to_errno(m.code); /* > 0: the twin refused this one */
	}
	snprintf(why, cap, "unexpected %s", repl_type_name(m.type));
	return -EPROTO;
}

struct xs {
	store_mapext *v;
	size_t n, cap;
};

static int xs_cb(void *ctx, const store_mapext *x)
{
	struct xs *s = ctx;
	if (s->n == s->cap) {
		size_t nc = s->cap ? s->cap * 2 : 256;
		store_mapext *nv = realloc(s->v, nc * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		s->v = nv;
		s->cap = nc;
	}
	s->v[s->n++] = *x;
	return 0;
}

/* One FP_LIST entry: extent xi, or piece k of the hole it is. */
typedef struct piece {
	uint32_t xi;
	uint32_t len;            /* hole pieces: zeros */
	int hole;
} piece;

/* A chunk the source has not compressed yet (deferred compression) is compressed
 * for the wire, at zstd 1, when [repl] bwlimit is at most this: measured on this
 * project's 2-core test machine (loaded), zstd 1 takes 64 KiB chunks of the test
 * data at about 340 MB/s on one core, 3.4 times smaller, so compressing before
 * sending beats sending raw below about 240 MB/s of link; half of that leaves room
 * for the ingest the deferral was for. Without a limit the link is taken to be
 * faster than that and the chunk crosses raw (codec 2: the twin's pass compresses
 * it). The twin stores such a chunk as it came (zstd 1, as a busy PUT with
 * zstd_level_busy = 1 would), not flagged. */
#define WIRE_ZSTD_RATE (128ull << 20)
#define WIRE_ZSTD_LEVEL 1

static int wire_zstd(repl *r)
{
	pthread_mutex_lock(&r->mu);
	uint64_t rate = r->bwlimit;
	pthread_mutex_unlock(&r->mu);
	return rate && rate <= WIRE_ZSTD_RATE;
}

/* 1: sent and acknowledged; 0: the twin refused it or it changed meanwhile (try
 * next cycle); <0: the connection is broken. */
static int send_file(repl *r, rconn *c, ment *e, uint8_t *sbuf, uint64_t *mark,
                     uint64_t *next_ns, char *why, size_t wcap)
{
	appl *ap = r->ap;
	struct xs xs = {0};
	piece *pc = NULL;
	size_t npc = 0, cappc = 0;
	wire_fp *fps = NULL;
	wire_digest *dg = NULL;
	ZSTD_CCtx *zc = NULL;    /* wire_zstd's, made when first needed */
	uint8_t *zb = NULL;
	ns_attr a;
	store_obj_info oi;
	int rc;
	appl_lock(ap);
	rc = ns_getattr(ap->n, e->id, &a);
	if (rc == 0 && (a.gen != e->gen || a.type != NS_FILE))
		rc = -ESTALE;
	if (rc == 0)
		rc = store_stat(ap->s, e->id, &oi);
	if (rc == 0)
		rc = store_extents(ap->s, e->id, xs_cb, &xs);
	appl_unlock(ap);
	if (rc < 0) {
		free(xs.v);
		snprintf(why, wcap, "changed while being sent (%s)", strerror(-rc));
		return 0;
	}
	/* What is sent is what the map says now. */
	e->size = oi.size;
	e->mtime_ns = a.mtime_ns;
	e->ctime_ns = a.ctime_ns;
	e->mode = a.mode;
	e->uid = a.uid;
	e->gid = a.gid;
	for (size_t i = 0; i < xs.n; i++) {
		uint64_t left = xs.v[i].hole ? xs.v[i].len : 1;
		while (left > 0) {
			if (npc == cappc) {
				cappc = cappc ? cappc * 2 : 256;
				piece *np = realloc(pc, cappc * sizeof(*np));
				if (!np) {
					rc = -ENOMEM;
					goto out;
				}
				pc = np;
			}
			uint32_t l = xs.v[i].hole ? (uint32_t)BKS_MIN(left, ZPIECE) : (uint32_t)xs.v[i].len;
			pc[npc++] = (piece){(uint32_t)i, l, xs.v[i].hole};
			left -= xs.v[i].hole ? l : 1;
		}
	}
	if (!(fps = malloc(WIRE_FP_MAX * sizeof(*fps))) || !(dg = wire_digest_new())) {
		rc = -ENOMEM;
		goto out;
	}
	repl_msg fm = {.type = REPL_FILE, .path = wire_s(e->path)};
	fm.attr = (repl_attr){e->mode & WIRE_MODE_MASK, e->uid, e->gid, e->mtime_ns, e->size};
	if ((rc = repl_send_msg(c, &fm, NULL, 0)) < 0)
		goto broken;
	uint8_t zeros_fp[32];
	uint32_t zeros_len = 0;
	static const uint8_t zeros[ZPIECE];
	for (size_t at = 0; at < npc;) {
		uint32_t cnt = (uint32_t)BKS_MIN(npc - at, (size_t)WIRE_FP_MAX);
		for (uint32_t i = 0; i < cnt; i++) {
			const piece *p = &pc[at + i];
			if (p->hole) {
				if (zeros_len != p->len) {
					SHA256(zeros, p->len, zeros_fp);
					zeros_len = p->len;
				}
				memcpy(fps[i].fp, zeros_fp, 32);
			} else {
				memcpy(fps[i].fp, xs.v[p->xi].fp, 32);
			}
			fps[i].len = p->len;
		}
		repl_msg lm = {.type = REPL_FP_LIST};
		if ((rc = repl_send_msg(c, &lm, fps, cnt)) < 0)
			goto broken;
		/* The digest runs over the entries as they crossed (36 bytes each). */
		wire_digest_update(dg, c->buf + REPL_HDR_LEN + 4, (size_t)cnt * WIRE_FP_ENTRY_LEN);
		account(r, c, mark, next_ns);
		repl_msg nm;
		bks_err er = {0};
		if ((rc = repl_read_msg(c, &nm, &er)) < 0) {
			snprintf(why, wcap, "%s", bks_errmsg(&er, rc));
			goto broken;
		}
		if (nm.type != REPL_FP_NEED || nm.fp_need.count != cnt) {
			rc = -EPROTO;
			snprintf(why, wcap, "expected FP_NEED, got %s", repl_type_name(nm.type));
			goto broken;
		}
		uint8_t need[WIRE_FP_MAX / 8];
		memcpy(need, nm.fp_need.bits, WIRE_BITMAP_BYTES(cnt));
		for (uint32_t i = 0; i < cnt; i++) {
			if (!wire_bit_get(need, i)) {
				__atomic_fetch_add(&r->chunks_skipped, 1, __ATOMIC_RELAXED);
				continue;
			}
			if ((rc = repl_gate(r)) < 0)
				goto broken; /* the window closed: the twin keeps what crossed */
			const piece *p = &pc[at + i];
			uint32_t slen;
			int codec, deferred = 0, wz = 0;
			const uint8_t *sdata = sbuf;
			if (p->hole) {
				size_t z = ZSTD_compress(sbuf, STORE_STORED_MAX, zeros, p->len, 1);
				if (ZSTD_isError(z)) {
					rc = -EIO;
					goto broken;
				}
				slen = (uint32_t)z;
				codec = SEG_ZSTD;
			} else {
				appl_lock(ap);
				/* A chunk this store keeps raw only until its background pass
				 * compresses it crosses as such (version 4), so the twin's pass
				 * compresses its copy too rather than keep it raw for good. */
				wz = wire_zstd(r);
				rc = store_extent_stored_ex(ap->s, &xs.v[p->xi], sbuf, STORE_STORED_MAX,
				                            &slen, &codec,
				                            c->ver >= 4 || wz ? &deferred : NULL);
				appl_unlock(ap);
				if (rc < 0) {
					/* The chunk cannot be read here (gone, or unreadable): the file
					 * cannot be completed; the stream must still be, so the twin
					 * gets a CHUNK it will refuse (wrong bytes for the fingerprint)
					 * and answers the file with an error. */
					snprintf(why, wcap, "chunk of %s unreadable: %s", e->path, strerror(-rc));
					memset(sbuf, 0, p->len);
					slen = p->len;
					codec = SEG_RAW;
					deferred = 0;
				}
			}
			if (deferred && wz && codec == SEG_RAW) {
				/* Outside appl.mu; a chunk zstd cannot shrink goes as it is. */
				if (!zc && (!(zc = ZSTD_createCCtx()) || !(zb = malloc(STORE_STORED_MAX)))) {
					rc = -ENOMEM;
					goto broken;
				}
				size_t z = ZSTD_compressCCtx(zc, zb, slen - 1, sbuf, slen, WIRE_ZSTD_LEVEL);
				if (!ZSTD_isError(z) && z > 0 && z < slen) {
					sdata = zb;
					slen = (uint32_t)z;
					codec = SEG_ZSTD;
				}
			}
			repl_msg cm = {.type = REPL_CHUNK, .rlen = p->len,
			               .codec = codec == SEG_ZSTD ? REPL_CODEC_ZSTD
			                        : deferred && c->ver >= 4 ? REPL_CODEC_DEFERRED
			                                                  : REPL_CODEC_RAW,
			               .dlen = slen};
			memcpy(cm.fp, fps[i].fp, 32);
			uint8_t hdr[REPL_HDR_LEN + 64];
			int hn = repl_msg_encode(hdr, sizeof(hdr), &cm, NULL, 0);
			if (hn < 0 || (rc = repl_send(c, hdr, (size_t)hn)) < 0 ||
			    (rc = repl_send(c, sdata, slen)) < 0) {
				rc = hn < 0 ? hn : rc;
				goto broken;
			}
			if (log_get_level() >= CFG_LOG_DEBUG) {
				char hx[65], esc[LOG_ESC_LEN];
				repl_hex(cm.fp, 32, hx);
				LOG_D("repl: sent chunk %s of %s", hx, log_escs(esc, sizeof(esc), e->path));
			}
			pthread_mutex_lock(&r->mu);
			r->tx_chunks++;
			r->tx_chunk_bytes += slen;
			pthread_mutex_unlock(&r->mu);
			account(r, c, mark, next_ns);
		}
		at += cnt;
	}
	repl_msg em = {.type = REPL_FILE_END, .v = e->size};
	wire_digest_final(dg, em.digest);
	if ((rc = repl_send_msg(c, &em, NULL, 0)) < 0)
		goto broken;
	account(r, c, mark, next_ns);
	rc = answer(c, NULL, why, wcap);
	rc = rc == 0 ? 1 : rc > 0 ? 0 : rc; /* refused: the connection goes on */
	goto out;
broken:
	if (!why[0])
		snprintf(why, wcap, "%s", strerror(-rc));
out:
	ZSTD_freeCCtx(zc);
	free(zb);
	wire_digest_free(dg);
	free(fps);
	free(pc);
	free(xs.v);
	return rc;
}

/* The request for a non-file entry (MKDIR, SYMLINK, ATTR). */
static int send_simple(repl *r, rconn *c, uint8_t type, ment *e, char *why, size_t wcap)
{
	char target[NS_SYMLINK_MAX + 1];
	repl_msg m = {.type = type, .path = wire_s(e->path)};
	m.attr = (repl_attr){e->mode & WIRE_MODE_MASK, e->uid, e->gid, e->mtime_ns, 0};
	if (type == REPL_SYMLINK) {
		appl_lock(r->ap);
		int rc = ns_readlink(r->ap->n, e->id, target, sizeof(target), NULL);
		appl_unlock(r->ap);
		if (rc < 0) {
			snprintf(why, wcap, "readlink: %s", strerror(-rc));
			return 0;
		}
		m.path2 = wire_s(target);
	}
	int rc = repl_send_msg(c, &m, NULL, 0);
	if (rc < 0)
		return rc;
	rc = answer(c, NULL, why, wcap);
	return rc == 0 ? 1 : rc > 0 ? 0 : rc;
}

static int cmp_path_desc(const void *a, const void *b)
{
	return -strcmp(*(char *const *)a, *(char *const *)b);
}

struct idref {
	uint64_t id, gen;
	const char *path;
};

static int cmp_idref(const void *a, const void *b)
{
	const struct idref *x = a, *y = b;
	if (x->id != y->id)
		return x->id < y->id ? -1 : 1;
	return x->gen < y->gen ? -1 : x->gen > y->gen;
}

static struct idref *id_index(const mtab *t, size_t *n)
{
	struct idref *v = malloc((t->n + 1) * sizeof(*v));
	size_t k = 0;
	if (!v)
		return NULL;
	for (size_t i = 0; i < t->cap; i++)
		if (t->v[i].path)
			v[k++] = (struct idref){t->v[i].id, t->v[i].gen, t->v[i].path};
	qsort(v, k, sizeof(*v), cmp_idref);
	*n = k;
	return v;
}

enum { W_NONE, W_CONTENT, W_ATTR };

static int want(const ment *o, const ment *e)
{
	if (!o || o->type != e->type || o->id != e->id || o->gen != e->gen)
		return W_CONTENT;
	/* A file whose ctime moved may have new content even with its old size and
	 * mtime: offered again (only its fingerprints cross when it has not). */
	if (e->type == NS_FILE && (o->size != e->size || o->mtime_ns != e->mtime_ns ||
	                           o->ctime_ns != e->ctime_ns))
		return W_CONTENT;
	if (o->mode != e->mode || o->uid != e->uid || o->gid != e->gid)
		return W_ATTR;
	return W_NONE;
}

static void set_state(repl *r, const char *st, const char *err)
{
	pthread_mutex_lock(&r->mu);
	snprintf(r->state, sizeof(r->state), "%s", st);
	if (err)
		snprintf(r->last_error, sizeof(r->last_error), "%s", err);
	pthread_mutex_unlock(&r->mu);
}

/* The lag: what is left to send (entries and the bytes of files whose content goes),
 * counting the deletes; 0 when the twin has everything. */
static uint64_t lag_count(repl *r, const mtab *man, const tree *cur, const mtab *curset)
{
	uint64_t lf = 0, lb = 0;
	for (size_t i = 0; i < cur->n; i++) {
		int w = want(mtab_get(man, cur->v[i].path), &cur->v[i]);
		if (w != W_NONE) {
			lf++;
			lb += w == W_CONTENT ? cur->v[i].size : 0;
		}
	}
	for (size_t i = 0; i < man->cap; i++)
		if (man->v[i].path && !mtab_get(curset, man->v[i].path))
			lf++;
	pthread_mutex_lock(&r->mu);
	r->lag_files = lf;
	r->lag_bytes = lb;
	pthread_mutex_unlock(&r->mu);
	return lf;
}

/* The repair exchange (repl_repair.c) at the end of a connection: its failure is
 * logged and costs nothing else (everything before it is done and acknowledged). */
static int ask_wants(repl *r, rconn *c, uint8_t *sbuf, uint64_t *mark, uint64_t *next_ns)
{
	char why[300] = "";
	int rc = repl_tx_want(r, c, sbuf, mark, next_ns, why, sizeof(why));
	if (rc != 0)
		LOG_W("repl: repair: %s", why);
	return rc;
}

/* This appliance's own damaged chunks fetched back from the twin (repl_repair.c), on
 * the cycle's connection when due: as ask_wants, a failure is logged and costs
 * nothing else. */
static void ask_fetch(repl *r, rconn *c, uint16_t ver)
{
	char why[300] = "";
	if (repl_fetch_due(r) && repl_tx_fetch(r, c, ver, why, sizeof(why)) != 0)
		LOG_W("repl: repair: %s", why);
}

/* Connect to the twin and say HELLO; *version (may be NULL): the version the twin
 * answered (IDENT, WANT from 2, FETCH from 3). */
static int open_conn(repl *r, const char *addr, const char *pin, rconn *c,
                     uint16_t *version, char *why, size_t wcap)
{
	bks_err e = {0};
	int rc;
	if ((rc = repl_connect(r, addr, pin, c, &e)) < 0) {
		snprintf(why, wcap, "%s", bks_errmsg(&e, rc));
		return rc;
	}
	repl_msg hm = {.type = REPL_HELLO, .version = REPL_VERSION};
	memcpy(hm.id, r->id, REPL_ID_LEN);
	repl_msg ho;
	if ((rc = repl_send_msg(c, &hm, NULL, 0)) < 0 || (rc = repl_read_msg(c, &ho, &e)) < 0) {
		snprintf(why, wcap, "%s", rc == -ECONNRESET || rc == -EPROTO
		         ? "the twin closed the connection (does it pin this appliance's "
		           "certificate?)" : bks_errmsg(&e, rc));
		return rc;
	}
	if (ho.type != REPL_HELLO_OK) {
		snprintf(why, wcap, "the twin answered HELLO with %s%s%.*s",
		         repl_type_name(ho.type), ho.type == REPL_ERROR ? ": " : "",
		         ho.type == REPL_ERROR ? (int)ho.text.len : 0, ho.text.p ? ho.text.p : "");
		return -EPROTO;
	}
	c->ver = ho.version;
	if (version)
		*version = ho.version;
	return 0;
}

/* ---- several files in flight ----
 * A cycle's new and changed files are a queue that up to [repl] connections workers
 * take from, each with its own connection and its own file at a time: the
 * cycle's own connection (worker 0, run by the sender thread) and connections
 * opened by helper threads. A long fat pipe stays full while one file waits for its
 * FP_NEED or its DONE, and the twin decodes and checks the chunks of several files
 * on several cores. The twin makes sure a chunk two files share crosses once
 * (repl_claim.c). A worker whose connection breaks stops; the others take the rest
 * of the queue, its file is offered again next cycle. */

typedef struct fqueue {
	repl *r;
	mtab *man;               /* under mu */
	ment **v;                /* the files to send, in walk order */
	size_t n, next;          /* under mu */
	pthread_mutex_t mu;
	uint64_t next_ns;        /* the shared pace (under r->mu) */
	uint64_t last_save;      /* under mu */
	int refused;             /* under mu: a file the twin refused */
	int broken;              /* under mu: the first broken connection's error */
	char why[300];           /* under mu: its reason */
	const char *addr, *pin;
} fqueue;

typedef struct fworker {
	fqueue *q;
	rconn c;
	uint8_t *sbuf;
	uint64_t mark;
	int slot;                /* in r->wfd (helpers), -1 for worker 0 */
	pthread_t th;
} fworker;

/* Take files until the queue is empty or this worker's connection broke. */
static int fq_run(fworker *w)
{
	fqueue *q = w->q;
	repl *r = q->r;
	char why[300];
	int rc = 0;
	for (;;) {
		pthread_mutex_lock(&q->mu);
		ment *e1 = q->next < q->n && !r->stopping ? q->v[q->next++] : NULL;
		pthread_mutex_unlock(&q->mu);
		if (!e1)
			break;
		why[0] = 0;
		uint64_t sz = e1->size;
		pthread_mutex_lock(&r->mu);
		if (++r->in_flight > r->in_flight_max)
			r->in_flight_max = r->in_flight;
		pthread_mutex_unlock(&r->mu);
		rc = send_file(r, &w->c, e1, w->sbuf, &w->mark, &q->next_ns, why, sizeof(why));
		account(r, &w->c, &w->mark, &q->next_ns);
		pthread_mutex_lock(&r->mu);
		r->in_flight--;
		pthread_mutex_unlock(&r->mu);
		if (rc < 0)
			break; /* not acknowledged: offered again next cycle */
		pthread_mutex_lock(&r->mu);
		if (r->lag_files)
			r->lag_files--;
		r->lag_bytes -= BKS_MIN(r->lag_bytes, sz);
		if (rc == 1)
			r->tx_files++;
		pthread_mutex_unlock(&r->mu);
		pthread_mutex_lock(&q->mu);
		if (rc == 1) {
			rc = mtab_put(q->man, e1);
		} else {
			char esc[LOG_ESC_LEN];
			LOG_W("repl: %s not replicated this time: %s", log_escs(esc, sizeof(esc), e1->path),
			      why);
			mtab_del(q->man, e1->path);
			q->refused = 1;
		}
		if (rc == 0 && bks_now_ns() - q->last_save > SAVE_EVERY_NS) {
			state_save(r, q->man);
			q->last_save = bks_now_ns();
		}
		pthread_mutex_unlock(&q->mu);
		if (rc < 0)
			break;
		rc = 0;
	}
	if (rc < 0) {
		pthread_mutex_lock(&q->mu);
		if (!q->broken) {
			q->broken = rc;
			snprintf(q->why, sizeof(q->why), "%s", why[0] ? why : strerror(-rc));
		}
		pthread_mutex_unlock(&q->mu);
	}
	return rc;
}

static void *fq_helper(void *arg)
{
	fworker *w = arg;
	fqueue *q = w->q;
	repl *r = q->r;
	char why[300];
	int rc = open_conn(r, q->addr, q->pin, &w->c, NULL, why, sizeof(why));
	if (rc == 0) {
		pthread_mutex_lock(&r->mu);
		r->wfd[w->slot] = w->c.fd;
		int stopping = r->stopping;
		pthread_mutex_unlock(&r->mu);
		if (!stopping)
			fq_run(w);
		pthread_mutex_lock(&r->mu);
		r->wfd[w->slot] = -1;
		pthread_mutex_unlock(&r->mu);
	} else {
		/* The others (worker 0 at least) take its share. */
		LOG_W("repl: an extra connection to %s: %s", q->addr, why);
	}
	if (w->c.fd >= 0 || w->c.ssl) {
		account(r, &w->c, &w->mark, &q->next_ns);
		repl_conn_close(&w->c);
	}
	return NULL;
}

/* Send the queued files on c (the cycle's connection) and up to n - 1 more. */
static int send_files(repl *r, rconn *c, fqueue *q, uint8_t *sbuf, uint64_t *mark,
                      int n)
{
	fworker *ws = calloc((size_t)n, sizeof(*ws));
	int started = 0;
	if (!ws)
		n = 1; /* worker 0 needs nothing allocated: it is this thread */
	for (int i = 1; i < n && (size_t)i < q->n; i++) {
		fworker *w = &ws[i];
		*w = (fworker){.q = q, .c = {.fd = -1}, .slot = i - 1};
		if (!(w->sbuf = malloc(STORE_STORED_MAX)))
			break;
		if (pthread_create(&w->th, NULL, fq_helper, w) != 0) {
			free(w->sbuf);
			w->sbuf = NULL;
			break;
		}
		started = i;
	}
	fworker w0 = {.q = q, .sbuf = sbuf, .mark = *mark, .slot = -1};
	w0.c = *c; /* the cycle's connection: its state comes back below */
	int rc = fq_run(&w0);
	*c = w0.c;
	*mark = w0.mark;
	for (int i = 1; i <= started; i++) {
		pthread_join(ws[i].th, NULL);
		free(ws[i].sbuf);
	}
	free(ws);
	return rc;
}

/* One cycle. 0: everything under the replicated paths is on the twin as of the walk;
 * 1: done, but some entries were refused (retried next cycle); <0: cut short. */
static int cycle(repl *r, mtab *man, const char *addr, const char *pin)
{
	tree cur = {0};
	mtab curset = {0};
	rconn c = {.fd = -1};
	struct idref *idx = NULL;
	char why[300] = "";
	char **dels = NULL;
	size_t ndels = 0, nidx = 0;
	uint64_t mark = 0, last_save = bks_now_ns();
	uint8_t *sbuf = NULL;
	fqueue fq = {.r = r, .man = man, .addr = addr, .pin = pin};
	uint16_t ver = 1;         /* what the twin answered HELLO with */
	int rc, refused = 0, broken = 0;

	pthread_mutex_init(&fq.mu, NULL);
	if ((rc = walk(r, &cur)) < 0) {
		snprintf(why, sizeof(why), "walk: %s", strerror(-rc));
		goto out;
	}
	for (size_t i = 0; i < cur.n && rc == 0; i++)
		rc = mtab_put(&curset, &cur.v[i]);
	int idle = lag_count(r, man, &cur, &curset) == 0;
	if (idle && !repl_want_due(r, 0) && !repl_fetch_due(r)) {
		rc = 0;
		goto out; /* nothing to send: no connection either */
	}

	if ((rc = repl_gate(r)) < 0)
		goto out; /* the lag is known; the window is closed */
	set_state(r, "connecting", NULL);
	if ((rc = open_conn(r, addr, pin, &c, &ver, why, sizeof(why))) < 0)
		goto out;
	/* Names both ways (status; the name a reseeded successor takes), from version 2:
	 * a twin that answered 1 has no IDENT (it shows no name for this source). */
	if (ver >= 2 && (rc = repl_ident_exchange(r, &c, why, sizeof(why))) < 0)
		goto out;
	pthread_mutex_lock(&r->mu);
	r->send_fd = c.fd;
	int stopping = r->stopping;
	pthread_mutex_unlock(&r->mu);
	if (stopping) {
		rc = -ECANCELED;
		goto out;
	}
	set_state(r, "sending", NULL);
	if (!(sbuf = malloc(STORE_STORED_MAX))) {
		rc = -ENOMEM;
		goto out;
	}
	if (idle) {
		/* Nothing changed here: the connection is only for the repairs, the twin's
		 * (what it wants) and this appliance's own (what it fetches back). */
		if (!(ver >= 2 && repl_want_due(r, 1) && ask_wants(r, &c, sbuf, &mark, &fq.next_ns) < 0))
			ask_fetch(r, &c, ver);
		rc = 0;
		goto out;
	}

	/* 1. Renames: an object the twin has under another path that is gone here. */
	idx = id_index(man, &nidx);
	for (size_t i = 0; i < cur.n && idx; i++) {
		ment *e1 = &cur.v[i];
		ment *o = mtab_get(man, e1->path);
		if (o && o->id == e1->id && o->gen == e1->gen)
			continue;
		struct idref key = {e1->id, e1->gen, NULL};
		struct idref *hit = bsearch(&key, idx, nidx, sizeof(*idx), cmp_idref);
		if (!hit)
			continue;
		ment *there = mtab_get(&curset, hit->path);
		if (there && there->id == e1->id && there->gen == e1->gen)
			continue; /* still there too: a second name, sent as a file */
		char from[WIRE_PATH_MAX + 1];
		snprintf(from, sizeof(from), "%s", hit->path);
		repl_msg m = {.type = REPL_RENAME, .path = wire_s(from), .path2 = wire_s(e1->path)};
		if ((rc = repl_send_msg(&c, &m, NULL, 0)) < 0)
			goto out;
		if ((rc = answer(&c, NULL, why, sizeof(why))) < 0)
			goto out;
		if (rc == 0) {
			mtab_del(man, e1->path); /* the twin replaced what was there */
			rc = mtab_rename(man, from, e1->path);
			free(idx);
			idx = id_index(man, &nidx);
			if (rc < 0)
				goto out;
		}
		rc = 0; /* a refused rename: the new path is sent whole, the old one deleted */
	}

	/* 2. New and changed entries, parents first (the renames changed the lag):
	 * directories, symbolic links and attributes here, in walk order; then the files
	 * whose content goes, several at once (send_files). */
	lag_count(r, man, &cur, &curset);
	pthread_mutex_lock(&r->mu);
	r->cycle_bytes = r->lag_bytes;
	r->cycle_wire0 = r->tx_wire;
	pthread_mutex_unlock(&r->mu);
	if (!(fq.v = malloc((cur.n + 1) * sizeof(*fq.v)))) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < cur.n; i++) {
		ment *e1 = &cur.v[i];
		int w = want(mtab_get(man, e1->path), e1);
		if (w == W_NONE)
			continue;
		if ((rc = repl_gate(r)) < 0)
			goto out;
		if (w == W_CONTENT && e1->type == NS_FILE) {
			fq.v[fq.n++] = e1;
			continue;
		}
		why[0] = 0;
		if (w == W_ATTR)
			rc = send_simple(r, &c, REPL_ATTR, e1, why, sizeof(why));
		else if (e1->type == NS_DIR)
			rc = send_simple(r, &c, REPL_MKDIR, e1, why, sizeof(why));
		else
			rc = send_simple(r, &c, REPL_SYMLINK, e1, why, sizeof(why));
		account(r, &c, &mark, &fq.next_ns);
		if (rc < 0)
			goto out;
		pthread_mutex_lock(&r->mu);
		if (r->lag_files)
			r->lag_files--;
		pthread_mutex_unlock(&r->mu);
		if (rc == 1) {
			if ((rc = mtab_put(man, e1)) < 0)
				goto out;
		} else {
			char esc[LOG_ESC_LEN];
			LOG_W("repl: %s not replicated this time: %s", log_escs(esc, sizeof(esc), e1->path),
			      why);
			mtab_del(man, e1->path);
			refused = 1;
		}
		rc = 0;
		if (bks_now_ns() - last_save > SAVE_EVERY_NS) {
			state_save(r, man);
			last_save = bks_now_ns();
		}
	}
	fq.last_save = last_save;
	rc = send_files(r, &c, &fq, sbuf, &mark, (int)BKS_MIN(r->ap->cfg.repl_connections,
	                                                      (uint32_t)REPL_MAX_CONNS));
	refused |= fq.refused;
	if (rc < 0) {
		snprintf(why, sizeof(why), "%s", fq.why);
		goto out;
	}
	/* A helper's connection broke: what it had is offered again next cycle; the
	 * deletes and SYNC still go (on this connection, which works). */
	broken = fq.broken;

	/* 3. Deletes, children before their directories. */
	for (size_t i = 0; i < man->cap; i++)
		if (man->v[i].path && !mtab_get(&curset, man->v[i].path))
			ndels++;
	if (ndels && !(dels = malloc(ndels * sizeof(*dels)))) {
		rc = -ENOMEM;
		goto out;
	}
	ndels = 0;
	for (size_t i = 0; i < man->cap; i++)
		if (man->v[i].path && !mtab_get(&curset, man->v[i].path))
			dels[ndels++] = man->v[i].path;
	if (ndels)
		qsort(dels, ndels, sizeof(*dels), cmp_path_desc);
	for (size_t i = 0; i < ndels; i++) {
		char p[WIRE_PATH_MAX + 1];
		snprintf(p, sizeof(p), "%s", dels[i]);
		repl_msg m = {.type = REPL_DELETE, .path = wire_s(p)};
		if ((rc = repl_send_msg(&c, &m, NULL, 0)) < 0)
			goto out;
		if ((rc = answer(&c, NULL, why, sizeof(why))) < 0)
			goto out;
		if (rc == 0)
			mtab_del(man, p); /* dels[] entries after i are other paths: still valid */
		else
			refused = 1;
		pthread_mutex_lock(&r->mu);
		if (r->lag_files)
			r->lag_files--;
		pthread_mutex_unlock(&r->mu);
		rc = 0;
	}

	/* 4. SYNC: the twin commits; then the cursor is saved. */
	repl_msg sm = {.type = REPL_SYNC, .v = r->cycles + 1};
	if ((rc = repl_send_msg(&c, &sm, NULL, 0)) < 0 || (rc = answer(&c, NULL, why, sizeof(why))) != 0) {
		rc = rc > 0 ? -rc : rc;
		goto out;
	}
	account(r, &c, &mark, &fq.next_ns);
	/* 5. Chunks the twin's verify found damaged: good copies from here (a twin of
	 * version 2; last anyway, so a twin that closes the connection on WANT costs
	 * nothing). */
	int wr = ver >= 2 && repl_want_due(r, 1) ? ask_wants(r, &c, sbuf, &mark, &fq.next_ns) : 0;
	/* 6. Chunks this appliance's verify found damaged: fetched back from the twin
	 * (version 3), unless WANT broke the connection. */
	if (wr >= 0)
		ask_fetch(r, &c, ver);
	rc = refused;
	if (rc == 0)
		lag_count(r, man, &cur, &curset);
	if (broken) {
		rc = broken;
		snprintf(why, sizeof(why), "%s", fq.why);
	}
out:
	if (c.fd >= 0 || c.ssl) {
		account(r, &c, &mark, &fq.next_ns);
		pthread_mutex_lock(&r->mu);
		r->send_fd = -1;
		pthread_mutex_unlock(&r->mu);
		repl_conn_close(&c);
	}
	if (state_save(r, man) < 0)
		LOG_W("repl: cannot save repl.state");
	if (rc < 0 && rc != REPL_GATED) {
		if (!why[0])
			snprintf(why, sizeof(why), "%s", strerror(-rc));
		set_state(r, "error", why);
	}
	free(dels);
	free(idx);
	free(sbuf);
	free(fq.v);
	pthread_mutex_destroy(&fq.mu);
	mtab_free(&curset);
	tree_free(&cur);
	return rc;
}

/* The first cursor of a lost source's successor, at the hand-back (docs/architecture.md
 * "Failover"): what the reseed delivered is on the survivor, now its twin, so those
 * entries are not sent (or linked there) again. The appliance is read-only to clients
 * from RESEED until the cursor is saved, and the survivor's last cycle went out while
 * it refused writes itself: every entry here whose object the receiver made (id from
 * seed_from on) is, as of this walk, what the survivor has at that path. Left out, so
 * offered to the survivor as usual: entries older than the reseed (a directory the
 * fresh appliance had, files --force kept) and paths with a delete the survivor sent
 * and this appliance holds back (the survivor no longer has them). *of: entries walked. */
static int seed_cursor(repl *r, mtab *man, uint64_t from, size_t *of)
{
	tree t = {0};
	mtab held = {0};
	int rc = walk(r, &t);
	*of = t.n;
	pthread_mutex_lock(&r->mu);
	for (size_t i = 0; i < r->ndels && rc == 0; i++) {
		ment d = {.path = r->dels[i].path};
		rc = mtab_put(&held, &d);
	}
	pthread_mutex_unlock(&r->mu);
	for (size_t i = 0; i < t.n && rc == 0; i++)
		if (t.v[i].id >= from && !mtab_get(&held, t.v[i].path))
			rc = mtab_put(man, &t.v[i]);
	if (rc < 0)
		mtab_free(man); /* an empty cursor: every file offered, as before seeding */
	mtab_free(&held);
	tree_free(&t);
	return rc;
}

static void *send_main(void *arg)
{
	repl *r = arg;
	appl *ap = r->ap;
	mtab man = {0};
	uint64_t retry_ns = 0, last_cycle_ns = 0, gated_commit = UINT64_MAX, drop_retry_ns = 0;
	int force = 1;
	state_load(r, &man);
	while (!r->stopping) {
		pthread_mutex_lock(&r->mu);
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 200000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		if (!r->stopping)
			pthread_cond_timedwait(&r->scv, &r->mu, &ts);
		char addr[80], pin[REPL_FP_HEX];
		snprintf(pin, sizeof(pin), "%s", r->pin_fp);
		repl_send_addr(r, addr, sizeof(addr)); /* "" when the role does not send */
		int reset = r->man_reset, seed = r->seed_pending;
		uint64_t seed_from = r->seed_from;
		r->man_reset = 0;
		pthread_mutex_unlock(&r->mu);
		if (r->stopping)
			break;
		if (reset) {
			/* Another twin (a pairing, a reseed): it has nothing of the old cursor;
			 * but the survivor a reseed hands back to has what it delivered. */
			size_t of = 0;
			mtab_free(&man);
			if (seed && seed_cursor(r, &man, seed_from, &of) < 0)
				LOG_W("repl: the hand-back's cursor could not be made (out of memory): "
				      "every file is offered to the twin (only fingerprints cross)");
			int w = state_save(r, &man);
			if (seed && w < 0) {
				/* Clients wait (read-only) rather than a restart finding an older
				 * cursor: tried again in a second. */
				LOG_E("repl: cannot save repl.state: %s (retrying)", strerror(-w));
				pthread_mutex_lock(&r->mu);
				r->man_reset = 1;
				pthread_mutex_unlock(&r->mu);
				sleep(1);
				continue;
			}
			if (seed) {
				LOG_I("repl: hand-back: %zu of %zu entries are on the twin already", man.n, of);
				repl_seed_done(r, man.n, of);
			}
			force = 1;
			retry_ns = 0;
		}
		appl_lock(ap);
		uint64_t c0 = ap->commits;
		appl_unlock(ap);
		uint64_t now = bks_now_ns();
		pthread_mutex_lock(&r->mu);
		if (c0 != r->commits_seen) {
			r->commits_seen = c0;
			if (!r->dirty_since_ns)
				r->dirty_since_ns = now;
		}
		int need = force || c0 != r->replicated_commit || now - last_cycle_ns > 60000000000ull;
		pthread_mutex_unlock(&r->mu);
		repl_lag_check(r);
		need = need || repl_want_due(r, 0) || repl_fetch_due(r); /* (take r->mu) */
		/* Deletes held back from a reseed, on the source it made: after its cursor
		 * (made above, at the hand-back) has left their paths out. */
		if (now >= drop_retry_ns && repl_dels_handback(r) < 0)
			drop_retry_ns = now + 60000000000ull;
		/* A source need not listen: its own wanted list is saved from here. */
		repl_wants_flush(r);
		if (!pin[0] || !addr[0]) {
			set_state(r, pin[0] ? "not sending (role)" : "not paired", NULL);
			continue;
		}
		/* Waiting for the window: walk again (for the lag) only after a commit. */
		if (gated_commit == c0 && repl_gate(r) == REPL_GATED)
			continue;
		if (!need || now < retry_ns)
			continue;
		last_cycle_ns = now;
		int rc = cycle(r, &man, addr, pin);
		gated_commit = rc == REPL_GATED ? c0 : UINT64_MAX;
		pthread_mutex_lock(&r->mu);
		if (rc >= 0) {
			r->cycles++;
			r->last_sync_wall_ns = bks_wall_ns();
		}
		if (rc == 0) {
			force = 0;
			r->replicated_commit = c0;
			if (r->commits_seen == c0)
				r->dirty_since_ns = 0;
			snprintf(r->state, sizeof(r->state), "idle");
			r->last_error[0] = 0;
		} else if (rc == REPL_GATED) {
			force = 1; /* at once when the window opens */
		} else {
			force = 1;
			retry_ns = bks_now_ns() + (rc < 0 ? 2000000000ull : 10000000000ull);
			if (rc > 0)
				snprintf(r->state, sizeof(r->state), "retrying refused entries");
		}
		pthread_mutex_unlock(&r->mu);
		if (rc < 0 && rc != REPL_GATED)
			LOG_W("repl: to %s: %s (retrying)", addr, r->last_error);
		/* A reseed ends after a clean cycle (repl_failover.c). */
		int st = rc == 0 ? repl_reseed_step(r, addr, pin) : 0;
		if (st) {
			force = 1;
			if (st < 0)
				retry_ns = bks_now_ns() + 2000000000ull;
		}
	}
	state_save(r, &man);
	mtab_free(&man);
	return NULL;
}

int repl_sender_start(repl *r, bks_err *e)
{
	for (int i = 0; i < REPL_MAX_CONNS; i++)
		r->wfd[i] = -1;
	if (pthread_create(&r->sth, NULL, send_main, r) != 0)
		return bks_fail(e, -EAGAIN, "cannot start the replication sender");
	r->sstarted = 1;
	return 0;
}

void repl_sender_stop(repl *r)
{
	if (!r->sstarted)
		return;
	pthread_mutex_lock(&r->mu);
	r->stopping = 1;
	/* A send to a twin that stopped reading would wait out its timeout: cut it. */
	if (r->send_fd >= 0)
		shutdown(r->send_fd, SHUT_RDWR);
	for (int i = 0; i < REPL_MAX_CONNS; i++)
		if (r->wfd[i] >= 0)
			shutdown(r->wfd[i], SHUT_RDWR);
	pthread_cond_broadcast(&r->scv);
	pthread_mutex_unlock(&r->mu);
	pthread_join(r->sth, NULL);
	r->sstarted = 0;
}
