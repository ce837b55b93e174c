/* daemon/nfs_ops.c: the NFSv3 procedures (RFC 1813 §3.3) over fs/ns.h, and the
 * staging of unstable writes. See nfs.h; docs/architecture.md "NFS".
 *
 * Every procedure runs under appl.mu from its first store/namespace call to its
 * last; the reply is encoded into the connection's buffer and sent after the lock is
 * dropped (nfs.c). A READ's data may instead be pieces of the store's read-ahead
 * buffers (nfs_req.pieces), decompressed after the lock is dropped
 * (store_read_wait in nfs3_dispatch) and unpinned once sent.
 */
#include <config.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/log.h"
#include "daemon/nfs.h"

#define NFS_MAXFILESIZE (1ull << 50)

/* ---- staging of unstable writes (all under appl.mu) ----
 * A WRITE with stable = UNSTABLE is copied into its file's stage and answered at
 * once; COMMIT (or FILE_SYNC, a SETATTR of the size, a READ that overlaps, a file
 * idle for 5 s, the bounds stage_per_file / stage_total, shutdown) applies the
 * stage to the store in arrival order, so a later write of the same bytes wins.
 * READ and GETATTR look through the stage (sizes and bytes), so a client sees what it
 * wrote before it commits. A crash loses the stage: that is what UNSTABLE allows,
 * and the write verifier (new at every start) tells the client to send it again. */

static nfs_stage *stage_find(nfs_srv *s, uint64_t id)
{
	for (nfs_stage *st = s->stages; st; st = st->next)
		if (st->id == id)
			return st;
	return NULL;
}

static uint64_t stage_end(const nfs_stage *st)
{
	return st ? st->end : 0;
}

/* Lay the staged bytes of [off, off + len) over buf, oldest first. */
static void stage_overlay(const nfs_stage *st, uint64_t off, uint8_t *buf, size_t len)
{
	for (size_t i = 0; st && i < st->n; i++) {
		const nfs_ext *x = &st->v[i];
		uint64_t a = BKS_MAX(off, x->off), b = BKS_MIN(off + len, x->off + x->len);
		if (a < b)
			memcpy(buf + (a - off), x->data + (a - x->off), (size_t)(b - a));
	}
}

static void stage_unlink(nfs_srv *s, nfs_stage *st)
{
	for (nfs_stage **pp = &s->stages; *pp; pp = &(*pp)->next)
		if (*pp == st) {
			*pp = st->next;
			break;
		}
	for (size_t i = 0; i < st->n; i++)
		free(st->v[i].data);
	s->staged_bytes -= st->bytes;
	free(st->v);
	free(st);
}

static int ext_cmp(const void *a, const void *b)
{
	const nfs_ext *x = *(nfs_ext *const *)a, *y = *(nfs_ext *const *)b;
	return x->off < y->off ? -1 : x->off > y->off;
}

/* Apply and drop the stage of id (if any) with store_write_at. Extents that do not
 * overlap go in offset order (writes sent slightly out of order then land as
 * appends, which the store cuts exactly like one stream); when any overlap, in
 * arrival order, so the later write wins. */
static int stage_apply(nfs_srv *s, uint64_t id)
{
	nfs_stage *st = stage_find(s, id);
	if (!st)
		return 0;
	nfs_ext **ord = malloc(sizeof(*ord) * (st->n + 1));
	if (!ord)
		return -ENOMEM;
	for (size_t i = 0; i < st->n; i++)
		ord[i] = &st->v[i];
	qsort(ord, st->n, sizeof(*ord), ext_cmp);
	int overlap = 0;
	for (size_t i = 1; i < st->n; i++)
		overlap |= ord[i - 1]->off + ord[i - 1]->len > ord[i]->off;
	int r = 0;
	store *S = ns_store(s->ap->n);
	for (size_t i = 0; i < st->n && r == 0; i++) {
		const nfs_ext *x = overlap ? &st->v[i] : ord[i];
		r = store_write_at(S, id, x->off, x->data, x->len);
	}
	free(ord);
	/* The content changed now, not at the WRITE that set the mtime: ctime says so,
	 * or replication, which may have sent the file between the two (with that mtime
	 * and its old bytes), would take it for unchanged (repl_send.c, want). */
	if (r == 0 && st->n) {
		ns_attr na = {0};
		r = ns_setattr(s->ap->n, id, &na, 0);
	}
	if (r == -ENOENT)
		r = 0; /* the file is gone: so are its writes */
	if (r < 0)
		LOG_W("nfs: applying the staged writes of object %llu: %s (kept staged)",
		      (unsigned long long)id, strerror(-r));
	else
		stage_unlink(s, st);
	return r;
}

static void stage_drop(nfs_srv *s, uint64_t id)
{
	nfs_stage *st = stage_find(s, id);
	if (st)
		stage_unlink(s, st);
}

void nfs_stage_flush_idle(nfs_srv *s, uint64_t idle_before_ns)
{
	for (nfs_stage *st = s->stages, *nx; st; st = nx) {
		nx = st->next;
		if (!idle_before_ns || st->last_ns < idle_before_ns)
			stage_apply(s, st->id);
	}
}

void nfs_stage_free_all(nfs_srv *s)
{
	while (s->stages)
		stage_unlink(s, s->stages);
}

/* The appliance stops taking client writes (it becomes a replication twin, is being
 * reseeded, or hands over after a reseed: docs/architecture.md "Failover"). Every
 * staged write was answered (UNSTABLE) while writes were allowed: it is applied now,
 * before the flag, so none lands in the store after it (where replication's last
 * cycle, already walked, would miss it, or a twin's copy would stop being its
 * source's) and none the client was told it may COMMIT is lost: the COMMIT that
 * follows finds nothing staged and succeeds (dropping them instead and answering
 * COMMIT with NFS3ERR_ROFS loses data a client wrote in time, and many applications
 * ignore the error close() returns). A stage the store refuses (full, I/O error) is
 * dropped, and the write verifier changes: the client sees it at its COMMIT, sends
 * those writes again (RFC 1813 §3.3.7) and gets NFS3ERR_ROFS, an error it reports,
 * never a COMMIT that says they are safe. */
void nfs_stage_readonly(void *ctx)
{
	nfs_srv *s = ctx;
	size_t lost = 0;
	nfs_stage_flush_idle(s, 0);
	for (; s->stages; lost++)
		stage_unlink(s, s->stages);
	if (lost) {
		uint64_t v;
		memcpy(&v, s->wverf, sizeof(v));
		v++;
		memcpy(s->wverf, &v, sizeof(v));
		LOG_W("nfs: the appliance turns read-only: the staged writes of %zu file%s could "
		      "not be applied and are dropped; the write verifier changed, so their "
		      "clients send them again and are refused", lost, lost == 1 ? "" : "s");
	}
}

/* Apply the first staged write of some file if it is an append (appl.mu held):
 * 1 if one was applied. Taking the oldest write keeps arrival order; taking only
 * appends keeps the store's cut points those of one stream. */
static int stage_apply_front(nfs_srv *s)
{
	store *S = ns_store(s->ap->n);
	for (nfs_stage *st = s->stages; st; st = st->next) {
		store_obj_info in;
		if (!st->n || store_stat(S, st->id, &in) < 0 || st->v[0].off != in.size)
			continue;
		nfs_ext x = st->v[0];
		if (store_write_at(S, st->id, x.off, x.data, x.len) < 0)
			continue; /* COMMIT will apply it and answer the error */
		free(x.data);
		memmove(st->v, st->v + 1, sizeof(*st->v) * --st->n);
		st->bytes -= x.len;
		s->staged_bytes -= x.len;
		if (!st->n)
			stage_unlink(s, st);
		return 1;
	}
	return 0;
}

void *nfs_stage_applier(void *arg)
{
	nfs_srv *s = arg;
	for (;;) {
		pthread_mutex_lock(&s->wmu);
		while (!s->wpending && !s->stopping) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 1;
			pthread_cond_timedwait(&s->wcv, &s->wmu, &ts);
		}
		s->wpending = 0;
		pthread_mutex_unlock(&s->wmu);
		if (s->stopping)
			return NULL;
		int did;
		do {
			appl_lock(s->ap);
			did = stage_apply_front(s);
			appl_unlock(s->ap);
		} while (did && !s->stopping);
	}
}

static int stage_add(nfs_srv *s, uint64_t id, uint64_t off, const uint8_t *data, uint32_t len)
{
	nfs_stage *st = stage_find(s, id);
	int r;
	/* Over a bound: the data goes to the store now (early), never dropped. */
	if (st && st->bytes + len > s->stage_file_max) {
		__atomic_add_fetch(&s->staged_applied_early, 1, __ATOMIC_RELAXED);
		if ((r = stage_apply(s, id)) < 0)
			return r;
		st = NULL;
	}
	if (s->staged_bytes + len > s->stage_total_max) {
		__atomic_add_fetch(&s->staged_applied_early, 1, __ATOMIC_RELAXED);
		nfs_stage_flush_idle(s, 0);
		st = stage_find(s, id);
	}
	if (!st) {
		if (!(st = calloc(1, sizeof(*st))))
			return -ENOMEM;
		st->id = id;
		st->next = s->stages;
		s->stages = st;
	}
	if (st->n == st->cap) {
		size_t nc = st->cap ? st->cap * 2 : 16;
		nfs_ext *nv = realloc(st->v, nc * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		st->v = nv;
		st->cap = nc;
	}
	uint8_t *copy = malloc(len ? len : 1);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, data, len);
	st->v[st->n++] = (nfs_ext){.off = off, .len = len, .data = copy};
	st->bytes += len;
	st->end = BKS_MAX(st->end, off + len);
	s->staged_bytes += len;
	st->last_ns = bks_now_ns();
	pthread_mutex_lock(&s->wmu);
	s->wpending = 1;
	pthread_cond_signal(&s->wcv);
	pthread_mutex_unlock(&s->wmu);
	return 0;
}

/* ---- helpers ---- */

static uint32_t nfserr(int r)
{
	switch (r) {
	case 0: return NFS3_OK;
	case -EPERM: return NFS3ERR_PERM;
	case -ENOENT: return NFS3ERR_NOENT;
	case -EACCES: case -EBUSY: return NFS3ERR_ACCES;
	case -EEXIST: return NFS3ERR_EXIST;
	case -EXDEV: return NFS3ERR_XDEV;
	case -ENOTDIR: return NFS3ERR_NOTDIR;
	case -EISDIR: return NFS3ERR_ISDIR;
	case -EINVAL: return NFS3ERR_INVAL;
	case -EFBIG: return NFS3ERR_FBIG;
	case -ENOSPC: return NFS3ERR_NOSPC;
	case -EROFS: return NFS3ERR_ROFS;
	case -EMLINK: return NFS3ERR_MLINK;
	case -ENAMETOOLONG: return NFS3ERR_NAMETOOLONG;
	case -ENOTEMPTY: return NFS3ERR_NOTEMPTY;
	case -ESTALE: return NFS3ERR_STALE;
	case -ENOSYS: case -EOPNOTSUPP: return NFS3ERR_NOTSUPP;
	default: return NFS3ERR_IO;
	}
}

static nfs3_time t3(int64_t t)
{
	if (t < 0)
		t = 0;
	return (nfs3_time){.sec = (uint32_t)(t / 1000000000), .nsec = (uint32_t)(t % 1000000000)};
}

static int64_t tns(nfs3_time t)
{
	return (int64_t)t.sec * 1000000000 + t.nsec;
}

typedef struct obj {
	uint64_t id;
	ns_attr a;
	nfs3_fattr f;
} obj;

/* Attributes of id into o (appl.mu held); sizes include staged writes. */
static int load(nfs_srv *s, uint32_t export_id, uint64_t id, obj *o)
{
	int r = ns_getattr(s->ap->n, id, &o->a);
	if (r < 0)
		return r;
	o->id = id;
	nfs3_fattr *f = &o->f;
	memset(f, 0, sizeof(*f));
	f->type = o->a.type == NS_DIR ? NF3DIR : o->a.type == NS_SYMLINK ? NF3LNK : NF3REG;
	f->mode = o->a.mode & 07777;
	f->nlink = o->a.nlink ? o->a.nlink : 1;
	f->uid = o->a.uid;
	f->gid = o->a.gid;
	f->size = o->a.size;
	if (o->a.type == NS_DIR)
		f->size = 4096 + o->a.size * 32; /* entries: a size that grows with them */
	else if (o->a.type == NS_FILE)
		f->size = BKS_MAX(f->size, stage_end(stage_find(s, id)));
	f->used = (f->size + 4095) & ~4095ull;
	f->fsid = export_id;
	f->fileid = id;
	f->atime = t3(o->a.atime_ns);
	f->mtime = t3(o->a.mtime_ns);
	f->ctime = t3(o->a.ctime_ns);
	return 0;
}

static void make_fh(nfs_srv *s, uint32_t export_id, const ns_attr *a, nfs3_fh *fh)
{
	nfs3_handle h = {.export_id = export_id, .id = a->id, .gen = a->gen};
	nfs3_fh_make(s->key, &h, fh);
}

static int in_group(const nfs_req *q, uint32_t gid)
{
	if (q->gid == gid)
		return 1;
	for (uint32_t i = 0; i < q->ngids; i++)
		if (q->gids[i] == gid)
			return 1;
	return 0;
}

/* Unix permission check: want of 4 (read), 2 (write), 1 (execute/search). */
static int may(const nfs_req *q, const ns_attr *a, unsigned want)
{
	if (q->uid == 0)
		return 1;
	unsigned m = a->mode;
	unsigned bits = q->uid == a->uid ? (m >> 6) & 7 : in_group(q, a->gid) ? (m >> 3) & 7 : m & 7;
	return (bits & want) == want;
}

/* The call's state: the decoded arguments, the export of its handle, the object. */
typedef struct call {
	nfs_req *q;
	nfs_srv *s;
	xdr_enc *e;
	nfs3_args a;
	cfg_export x;
	char xpath[NS_PATH_MAX + 1];
	obj o;                    /* the object of a.fh, or the directory of a.where */
	uint64_t dseq;            /* a change the reply waits for (appl_durable), or 0 */
} call;

static void ok(call *k)
{
	rpc_reply_accepted(k->e, k->q->call.xid, RPC_SUCCESS);
}

static void status(call *k, uint32_t st)
{
	ok(k);
	xdr_put_u32(k->e, st);
}

/* The root of the export of this call (for ".." at the top). */
static uint64_t export_root(call *k)
{
	ns_attr ra;
	return ns_resolve(k->s->ap->n, k->xpath, &ra) == 0 ? ra.id : 0;
}

/* Is directory o inside the call's export (its path, or below)? Handles are MAC'd
 * and made only for what LOOKUP found inside the export, but a directory may since
 * have been renamed out of it: then its handle no longer opens it (as Linux's
 * subtree_check). A file's handle is not followed up (files have no parent pointer:
 * one renamed out of its export stays reachable by a client that holds its handle;
 * docs/architecture.md "NFS"). */
static int in_export(call *k, const obj *o)
{
	if (!strcmp(k->xpath, "/") || o->a.type != NS_DIR)
		return 1;
	uint64_t root = export_root(k), id = o->id, up;
	for (int depth = 0; root && depth < 4096; depth++) {
		if (id == root)
			return 1;
		if (ns_parent(k->s->ap->n, id, &up) < 0 || up == id)
			return 0;
		id = up;
	}
	return 0;
}

/* Check a handle and take its object (appl.mu held). Returns an nfsstat3. */
static uint32_t take_fh(call *k, const nfs3_fh *fh, obj *o, uint32_t *export_id)
{
	nfs3_handle h;
	if (nfs3_fh_parse(k->s->key, fh, &h) < 0)
		return NFS3ERR_BADHANDLE;
	if (export_id && *export_id && *export_id != h.export_id)
		return NFS3ERR_XDEV; /* two handles of one call: one export */
	if (export_id)
		*export_id = h.export_id;
	int r = load(k->s, h.export_id, h.id, o);
	if (r == -ENOENT || (r == 0 && o->a.gen != h.gen))
		return NFS3ERR_STALE; /* deleted: never another file's data */
	if (r == 0 && !in_export(k, o))
		return NFS3ERR_STALE;
	return nfserr(r);
}

/* ---- procedures: each encodes its whole reply ---- */

static void p_getattr(call *k)
{
	status(k, NFS3_OK);
	nfs3_put_fattr(k->e, &k->o.f);
}

static int set_attrs(call *k, obj *o, const nfs3_sattr *sa, int creating)
{
	ns_attr na = o->a;
	unsigned mask = 0;
	int owner = k->q->uid == 0 || k->q->uid == o->a.uid;
	if (sa->set_mode) {
		if (!owner && !creating)
			return -EPERM;
		na.mode = sa->mode & 07777;
		mask |= NS_SET_MODE;
	}
	if (sa->set_uid && sa->uid != o->a.uid) {
		if (k->q->uid != 0)
			return -EPERM;
		na.uid = sa->uid;
		mask |= NS_SET_UID;
	}
	if (sa->set_gid && sa->gid != o->a.gid) {
		if (!owner || (k->q->uid != 0 && !in_group(k->q, sa->gid)))
			return -EPERM;
		na.gid = sa->gid;
		mask |= NS_SET_GID;
	}
	int64_t now = bks_wall_ns();
	if (sa->atime_how != NFS3_DONT_CHANGE) {
		if (!owner && (sa->atime_how == NFS3_SET_TO_CLIENT_TIME || !may(k->q, &o->a, 2)))
			return -EPERM;
		na.atime_ns = sa->atime_how == NFS3_SET_TO_CLIENT_TIME ? tns(sa->atime) : now;
		mask |= NS_SET_ATIME;
	}
	if (sa->mtime_how != NFS3_DONT_CHANGE) {
		if (!owner && (sa->mtime_how == NFS3_SET_TO_CLIENT_TIME || !may(k->q, &o->a, 2)))
			return -EPERM;
		na.mtime_ns = sa->mtime_how == NFS3_SET_TO_CLIENT_TIME ? tns(sa->mtime) : now;
		mask |= NS_SET_MTIME;
	}
	if (sa->set_size) {
		if (o->a.type != NS_FILE)
			return o->a.type == NS_DIR ? -EISDIR : -EINVAL;
		if (!creating && !may(k->q, &o->a, 2))
			return -EACCES;
		if (sa->size > NFS_MAXFILESIZE)
			return -EFBIG;
		/* Staged writes first: a truncate after them cuts them too. */
		int r = stage_apply(k->s, o->id);
		if (r < 0 || (r = store_truncate(ns_store(k->s->ap->n), o->id, sa->size)) < 0)
			return r;
		if (!(mask & NS_SET_MTIME)) {
			na.mtime_ns = now;
			mask |= NS_SET_MTIME;
		}
	}
	return mask ? ns_setattr(k->s->ap->n, o->id, &na, mask) : 0;
}

static int durable(call *k, int r);

static void p_setattr(call *k)
{
	nfs3_wcc_attr pre = nfs3_wcc_of(&k->o.f);
	int r = 0;
	if (k->a.guard_check && (k->o.f.ctime.sec != k->a.guard_ctime.sec ||
	                         k->o.f.ctime.nsec != k->a.guard_ctime.nsec)) {
		status(k, NFS3ERR_NOT_SYNC);
		nfs3_put_wcc(k->e, &pre, &k->o.f);
		return;
	}
	r = durable(k, set_attrs(k, &k->o, &k->a.sattr, 0));
	obj post;
	int pr = load(k->s, k->x.id, k->o.id, &post);
	status(k, nfserr(r));
	nfs3_put_wcc(k->e, &pre, pr == 0 ? &post.f : NULL);
}

static void p_lookup(call *k)
{
	const char *name = k->a.where.name;
	obj t;
	int r;
	if (k->o.a.type != NS_DIR) {
		status(k, NFS3ERR_NOTDIR);
		nfs3_put_post_attr(k->e, &k->o.f);
		return;
	}
	if (!may(k->q, &k->o.a, 1)) {
		status(k, NFS3ERR_ACCES);
		nfs3_put_post_attr(k->e, &k->o.f);
		return;
	}
	if (!strcmp(name, ".")) {
		t = k->o;
		r = 0;
	} else if (!strcmp(name, "..")) {
		uint64_t p = k->o.id;
		r = k->o.id == export_root(k) ? 0 : ns_parent(k->s->ap->n, k->o.id, &p);
		if (r == 0)
			r = load(k->s, k->x.id, p, &t);
	} else {
		ns_attr a;
		r = ns_lookup(k->s->ap->n, k->o.id, name, &a);
		if (r == 0)
			r = load(k->s, k->x.id, a.id, &t);
	}
	status(k, nfserr(r));
	if (r < 0) {
		nfs3_put_post_attr(k->e, &k->o.f);
		return;
	}
	nfs3_fh fh;
	make_fh(k->s, k->x.id, &t.a, &fh);
	nfs3_put_fh(k->e, &fh);
	nfs3_put_post_attr(k->e, &t.f);
	nfs3_put_post_attr(k->e, &k->o.f);
}

static void p_access(call *k)
{
	uint32_t want = k->a.access, got = 0;
	const ns_attr *a = &k->o.a;
	if (may(k->q, a, 4))
		got |= NFS3_ACCESS_READ;
	if (a->type == NS_DIR) {
		if (may(k->q, a, 1))
			got |= NFS3_ACCESS_LOOKUP;
		if (k->x.rw && may(k->q, a, 3))
			got |= NFS3_ACCESS_MODIFY | NFS3_ACCESS_EXTEND | NFS3_ACCESS_DELETE;
	} else {
		if (k->x.rw && may(k->q, a, 2))
			got |= NFS3_ACCESS_MODIFY | NFS3_ACCESS_EXTEND;
		if (may(k->q, a, 1) && (k->q->uid != 0 || (a->mode & 0111)))
			got |= NFS3_ACCESS_EXECUTE;
	}
	status(k, NFS3_OK);
	nfs3_put_post_attr(k->e, &k->o.f);
	xdr_put_u32(k->e, want & got);
}

static void p_read(call *k)
{
	obj *o = &k->o;
	if (o->a.type != NS_FILE || !may(k->q, &o->a, 4)) {
		status(k, o->a.type == NS_DIR ? NFS3ERR_ISDIR : o->a.type != NS_FILE ?
		       NFS3ERR_INVAL : NFS3ERR_ACCES);
		nfs3_put_post_attr(k->e, &o->f);
		return;
	}
	uint64_t size = o->f.size, off = k->a.offset;
	uint32_t n = (uint32_t)BKS_MIN((uint64_t)BKS_MIN(k->a.count, k->s->rsize),
	                               off < size ? size - off : 0);
	status(k, NFS3_OK);
	nfs3_put_post_attr(k->e, &o->f);
	xdr_put_u32(k->e, n);
	xdr_put_u32(k->e, off + n >= size);
	xdr_put_u32(k->e, n);
	uint8_t *p = xdr_put_space(k->e, n);
	if (!p)
		return;
	store *st = ns_store(k->s->ap->n);
	store_obj_info in;
	size_t got = 0;
	/* Sequential READs of a file continue a read-ahead stream of the store (keyed
	 * by the object and the offset the last READ ended at; a few per file, so
	 * several readers of one file keep theirs): nothing to keep here between calls.
	 * Zero-copy when nothing staged can lay over the bytes: the data goes out from
	 * the store's buffers (nfs.c sends the pieces), decompressed outside appl.mu
	 * (nfs3_dispatch waits for them after dropping it). */
	int r = store_stat(st, o->id, &in);
	size_t want = r == 0 && off < in.size ? (size_t)BKS_MIN((uint64_t)n, in.size - off) : 0;
	if (r == 0 && want == n && n > 0 && !stage_find(k->s, o->id)) {
		nfs_req *q = k->q;
		int np = 0;
		r = store_read_iov(st, o->id, off, n, p, q->pieces, NFS_READ_PIECES, &np, &got,
		                   &q->pins);
		if (r == 0 && got < n) {
			/* The pieces or pins ran out (a READ over many small jobs): copy. */
			store_read_unpin(st, &q->pins);
			np = 0;
			r = store_read(st, o->id, off, p, n, &got);
		}
		if (r < 0) {
			store_read_unpin(st, &q->pins);
			np = 0;
		} else {
			q->npieces = np;
			q->data_at = (size_t)(p - k->e->buf);
			q->data_len = n;
		}
	} else if (r == 0 && want) {
		r = store_read(st, o->id, off, p, want, &got);
	}
	if (r < 0) { /* start over with the error */
		xdr_enc_init(k->e, k->e->buf, k->e->cap);
		status(k, nfserr(r));
		nfs3_put_post_attr(k->e, &o->f);
		return;
	}
	if (!k->q->npieces) {
		memset(p + got, 0, n - got); /* past the store's end: the stage's bytes, or zeros */
		stage_overlay(stage_find(k->s, o->id), off, p, n);
	}
	nfs_export_count(k->q, k->x.id, n, 0);
	appl_count_restore(k->s->ap, n);
}

static void p_write(call *k)
{
	obj *o = &k->o;
	nfs3_wcc_attr pre = nfs3_wcc_of(&o->f);
	int r = 0;
	if (!k->x.rw)
		r = -EROFS;
	else if (o->a.type != NS_FILE)
		r = o->a.type == NS_DIR ? -EISDIR : -EINVAL;
	else if (!may(k->q, &o->a, 2) && k->q->uid != o->a.uid)
		r = -EACCES;
	else if (k->a.offset + k->a.count > NFS_MAXFILESIZE || k->a.offset > NFS_MAXFILESIZE)
		r = -EFBIG;
	if (r == 0)
		r = stage_add(k->s, o->id, k->a.offset, k->a.data, k->a.count);
	uint32_t committed = NFS3_UNSTABLE;
	if (r == 0 && k->a.stable != NFS3_UNSTABLE) {
		if ((r = stage_apply(k->s, o->id)) == 0)
			k->dseq = appl_change_seq(k->s->ap); /* the mtime below goes with it */
		committed = NFS3_FILE_SYNC;
	}
	if (r == 0) {
		ns_attr na = o->a;
		na.mtime_ns = bks_wall_ns();
		r = ns_setattr(k->s->ap->n, o->id, &na, NS_SET_MTIME);
	}
	obj post;
	int pr = load(k->s, k->x.id, o->id, &post);
	status(k, nfserr(r));
	nfs3_put_wcc(k->e, &pre, pr == 0 ? &post.f : NULL);
	if (r < 0)
		return;
	xdr_put_u32(k->e, k->a.count);
	xdr_put_u32(k->e, committed);
	xdr_put_fixed(k->e, k->s->wverf, NFS3_VERF);
	nfs_export_count(k->q, k->x.id, 0, k->a.count);
	appl_count_ingest(k->s->ap, k->a.count);
}

static void p_commit(call *k)
{
	bks_err e = {0};
	nfs3_wcc_attr pre = nfs3_wcc_of(&k->o.f);
	int r = k->o.a.type == NS_FILE ? stage_apply(k->s, k->o.id) : 0;
	if (r == 0)
		k->dseq = appl_change_seq(k->s->ap); /* synced before the reply (nfs3_dispatch) */
	if (r < 0)
		LOG_W("nfs: commit of object %llu: %s", (unsigned long long)k->o.id, bks_errmsg(&e, r));
	obj post;
	int pr = load(k->s, k->x.id, k->o.id, &post);
	status(k, nfserr(r));
	nfs3_put_wcc(k->e, &pre, pr == 0 ? &post.f : NULL);
	if (r == 0)
		xdr_put_fixed(k->e, k->s->wverf, NFS3_VERF);
}

/* Checks shared by the procedures that change a directory: rw export, a directory,
 * write and search permission. */
static int dir_change_ok(call *k)
{
	if (!k->x.rw)
		return -EROFS;
	if (k->o.a.type != NS_DIR)
		return -ENOTDIR;
	if (!may(k->q, &k->o.a, 3))
		return -EACCES;
	return 0;
}

/* RFC 1813 (section 3.3.8 and the others that change the namespace): CREATE,
 * MKDIR, SYMLINK, REMOVE, RMDIR, RENAME, LINK and SETATTR are on stable storage
 * before the reply, as a server crash must not undo a change the client was told of
 * (it would not send it again). The change is numbered here (appl_change_seq) and
 * nfs3_dispatch, once appl.mu is released, waits for a sync that covers it
 * (appl_durable: group commit, one intent log record for every change made by then,
 * on any connection) before the reply goes; a sync that fails turns the reply into
 * that error. */
static int durable(call *k, int r)
{
	if (r < 0)
		return r;
	k->dseq = appl_change_seq(k->s->ap);
	return r;
}

/* The end of CREATE, MKDIR, SYMLINK: status, post_op_fh, post_op_attr, dir wcc. */
static void made(call *k, int r, const nfs3_wcc_attr *pre, const ns_attr *na)
{
	obj t, dpost;
	if (r == 0)
		r = load(k->s, k->x.id, na->id, &t);
	int dr = load(k->s, k->x.id, k->o.id, &dpost);
	status(k, nfserr(r));
	if (r == 0) {
		nfs3_fh fh;
		make_fh(k->s, k->x.id, &t.a, &fh);
		nfs3_put_post_fh(k->e, &fh);
		nfs3_put_post_attr(k->e, &t.f);
	}
	nfs3_put_wcc(k->e, pre, dr == 0 ? &dpost.f : NULL);
}

static void p_create(call *k)
{
	nfs3_wcc_attr pre = nfs3_wcc_of(&k->o.f);
	const char *name = k->a.where.name;
	ns_attr na;
	uint32_t mode = k->a.sattr.set_mode ? k->a.sattr.mode & 07777 : 0644;
	int excl = k->a.createmode != NFS3_UNCHECKED;
	int r = dir_change_ok(k);
	if (r == 0)
		r = ns_create(k->s->ap->n, k->o.id, name, mode, k->q->uid, k->q->gid, excl, &na);
	/* EXCLUSIVE: the verifier is kept in mtime/atime (seconds), as Linux does, so a
	 * re-sent create finds its own file; the client then sets the real times. */
	uint32_t v0, v1;
	memcpy(&v0, k->a.verf, 4);
	memcpy(&v1, k->a.verf + 4, 4);
	int64_t vm = (int64_t)v0 * 1000000000, va = (int64_t)v1 * 1000000000;
	if (r == -EEXIST && k->a.createmode == NFS3_EXCLUSIVE &&
	    ns_lookup(k->s->ap->n, k->o.id, name, &na) == 0 && na.type == NS_FILE &&
	    na.mtime_ns == vm && na.atime_ns == va)
		r = 1;
	else if (r == 0 && k->a.createmode == NFS3_EXCLUSIVE) {
		ns_attr t = na;
		t.mtime_ns = vm;
		t.atime_ns = va;
		r = ns_setattr(k->s->ap->n, na.id, &t, NS_SET_MTIME | NS_SET_ATIME);
	} else if (r >= 0 && k->a.createmode != NFS3_EXCLUSIVE) {
		/* A new file: the rest of its attributes (its mode is set). An existing
		 * one (UNCHECKED): only a size, which truncates it (as Linux does; its
		 * owner and mode stay). */
		obj t;
		nfs3_sattr sa = k->a.sattr;
		int created = r == 0;
		sa.set_mode = 0;
		if (!created) {
			nfs3_sattr only = {.set_size = sa.set_size, .size = sa.size};
			sa = only;
		}
		sa.set_uid = sa.set_uid && sa.uid != na.uid;
		sa.set_gid = sa.set_gid && sa.gid != na.gid;
		if ((r = load(k->s, k->x.id, na.id, &t)) == 0)
			r = set_attrs(k, &t, &sa, created);
	}
	made(k, r < 0 ? r : durable(k, 0), &pre, &na);
}

static void p_symlink(call *k)
{
	nfs3_wcc_attr pre = nfs3_wcc_of(&k->o.f);
	ns_attr na;
	int r = dir_change_ok(k);
	if (r == 0)
		r = ns_symlink(k->s->ap->n, k->o.id, k->a.where.name, k->a.path,
		               k->a.sattr.set_mode ? k->a.sattr.mode & 07777 : 0777, k->q->uid,
		               k->q->gid, &na);
	made(k, r < 0 ? r : durable(k, r), &pre, &na);
}

static void p_readlink(call *k)
{
	char *t = malloc(NS_SYMLINK_MAX + 1);
	size_t len = 0;
	int r = !t ? -ENOMEM : k->o.a.type != NS_SYMLINK ? -EINVAL :
	        ns_readlink(k->s->ap->n, k->o.id, t, NS_SYMLINK_MAX + 1, &len);
	status(k, nfserr(r));
	nfs3_put_post_attr(k->e, &k->o.f);
	if (r == 0)
		xdr_put_string(k->e, t);
	free(t);
}

static void p_link(call *k)
{
	obj dir;
	uint32_t xid = k->x.id;
	uint32_t st = take_fh(k, &k->a.where.dir, &dir, &xid);
	nfs3_wcc_attr pre = st ? (nfs3_wcc_attr){0} : nfs3_wcc_of(&dir.f);
	int r = 0;
	if (!st) {
		if (!k->x.rw)
			r = -EROFS;
		else if (dir.a.type != NS_DIR)
			r = -ENOTDIR;
		else if (!may(k->q, &dir.a, 3))
			r = -EACCES;
		else if (k->o.a.type == NS_DIR)
			r = -EISDIR; /* RFC 1813: no links to directories */
		ns_attr na;
		if (r == 0)
			r = durable(k, ns_link(k->s->ap->n, k->o.id, dir.id,
			                               k->a.where.name, &na));
	}
	obj fpost, dpost;
	int fr = load(k->s, k->x.id, k->o.id, &fpost);
	int dr = st ? -1 : load(k->s, k->x.id, dir.id, &dpost);
	status(k, st ? st : nfserr(r));
	nfs3_put_post_attr(k->e, fr == 0 ? &fpost.f : NULL);
	nfs3_put_wcc(k->e, st ? NULL : &pre, dr == 0 ? &dpost.f : NULL);
}

static void p_mkdir(call *k)
{
	nfs3_wcc_attr pre = nfs3_wcc_of(&k->o.f);
	ns_attr na;
	int r = dir_change_ok(k);
	if (r == 0)
		r = ns_mkdir(k->s->ap->n, k->o.id, k->a.where.name,
		             k->a.sattr.set_mode ? k->a.sattr.mode & 07777 : 0755, k->q->uid,
		             k->q->gid, &na);
	made(k, r < 0 ? r : durable(k, r), &pre, &na);
}

/* REMOVE, RMDIR: status, dir wcc. */
static void p_remove(call *k)
{
	nfs3_wcc_attr pre = nfs3_wcc_of(&k->o.f);
	ns_attr victim;
	int r = dir_change_ok(k);
	if (r == 0)
		r = ns_lookup(k->s->ap->n, k->o.id, k->a.where.name, &victim);
	if (r == 0 && (k->o.a.mode & 01000) && k->q->uid != 0 && k->q->uid != victim.uid &&
	    k->q->uid != k->o.a.uid)
		r = -EACCES; /* sticky directory */
	if (r == 0)
		r = k->q->call.proc == NFS3_REMOVE ? ns_unlink(k->s->ap->n, k->o.id, k->a.where.name)
		                                   : ns_rmdir(k->s->ap->n, k->o.id, k->a.where.name);
	if (r == 0 && ns_getattr(k->s->ap->n, victim.id, &victim) == -ENOENT)
		stage_drop(k->s, victim.id);
	r = durable(k, r);
	obj dpost;
	int dr = load(k->s, k->x.id, k->o.id, &dpost);
	status(k, nfserr(r));
	nfs3_put_wcc(k->e, &pre, dr == 0 ? &dpost.f : NULL);
}

static void p_rename(call *k)
{
	obj to;
	uint32_t xid = k->x.id;
	uint32_t st = take_fh(k, &k->a.to.dir, &to, &xid);
	nfs3_wcc_attr pre = nfs3_wcc_of(&k->o.f), tpre;
	int r = st ? 0 : dir_change_ok(k);
	ns_attr victim = {0};
	if (!st) {
		tpre = nfs3_wcc_of(&to.f);
		if (r == 0 && to.a.type != NS_DIR)
			r = -ENOTDIR;
		if (r == 0 && !may(k->q, &to.a, 3))
			r = -EACCES;
		int had = r == 0 ? ns_lookup(k->s->ap->n, to.id, k->a.to.name, &victim) : -1;
		if (r == 0)
			r = ns_rename(k->s->ap->n, k->o.id, k->a.where.name, to.id, k->a.to.name, 0);
		if (r == 0 && had == 0 && ns_getattr(k->s->ap->n, victim.id, &victim) == -ENOENT)
			stage_drop(k->s, victim.id);
		r = durable(k, r);
	}
	obj fpost, tpost;
	int fr = load(k->s, k->x.id, k->o.id, &fpost);
	int tr = st ? -1 : load(k->s, k->x.id, to.id, &tpost);
	status(k, st ? st : nfserr(r));
	nfs3_put_wcc(k->e, &pre, fr == 0 ? &fpost.f : NULL);
	nfs3_put_wcc(k->e, st ? NULL : &tpre, tr == 0 ? &tpost.f : NULL);
}

/* READDIR and READDIRPLUS. Cookies are positions in the directory's name order
 * (1 = after the first entry); a bounded table remembers the name at the last cookie
 * of each reply, so the next call goes on after that name even when entries were
 * added or removed meanwhile. A cookie not in the table (evicted, or from before a
 * restart) goes on by position. The verifier is constant for the daemon's run and
 * not checked: every cookie stays usable (RFC 1813 allows that). */
typedef struct rdctx {
	call *k;
	int plus;
	uint64_t skip, cookie;
	size_t dir_left, max_left;
	int full, n;
	char last[NFS3_NAME_MAX + 1];
} rdctx;

static int rd_entry(void *arg, const ns_dirent *d)
{
	rdctx *c = arg;
	call *k = c->k;
	if (c->skip) {
		c->skip--;
		return 0;
	}
	size_t nl = strlen(d->name);
	size_t dsz = 4 + 8 + xdr_opaque_size(nl) + 8;
	size_t msz = dsz + (c->plus ? 4 + 84 + 4 + 4 + NFS3_BKFH_LEN : 0);
	if (msz > c->max_left || (c->plus && dsz > c->dir_left)) {
		c->full = 1;
		return 1;
	}
	obj t;
	int have = c->plus ? load(k->s, k->x.id, d->id, &t) : -1;
	c->max_left -= msz;
	c->dir_left -= BKS_MIN(dsz, c->dir_left);
	xdr_put_u32(k->e, 1);
	xdr_put_u64(k->e, d->id);
	xdr_put_string(k->e, d->name);
	xdr_put_u64(k->e, ++c->cookie);
	if (c->plus) {
		nfs3_put_post_attr(k->e, have == 0 ? &t.f : NULL);
		nfs3_fh fh;
		if (have == 0)
			make_fh(k->s, k->x.id, &t.a, &fh);
		nfs3_put_post_fh(k->e, have == 0 ? &fh : NULL);
	}
	memcpy(c->last, d->name, nl + 1);
	c->n++;
	return 0;
}

static void p_readdir(call *k)
{
	nfs_srv *s = k->s;
	int plus = k->q->call.proc == NFS3_READDIRPLUS;
	if (k->o.a.type != NS_DIR || !may(k->q, &k->o.a, 4)) {
		status(k, k->o.a.type != NS_DIR ? NFS3ERR_NOTDIR : NFS3ERR_ACCES);
		nfs3_put_post_attr(k->e, &k->o.f);
		return;
	}
	size_t maxc = plus ? k->a.maxcount : k->a.count;
	maxc = BKS_MIN(maxc, (size_t)s->rsize);
	rdctx c = {.k = k, .plus = plus, .cookie = k->a.cookie,
	           .dir_left = plus ? k->a.dircount : maxc};
	size_t head = 24 + 4 + 88 + 8 + 8; /* rpc, status, dir attrs, verifier, eof */
	c.max_left = maxc > head ? maxc - head : 0;
	char after[NFS3_NAME_MAX + 1] = "";
	if (k->a.cookie) {
		int found = 0;
		pthread_mutex_lock(&s->mu);
		for (int i = 0; i < NFS_COOKIE_SLOTS && !found; i++)
			if (s->cookies[i].dir == k->o.id && s->cookies[i].cookie == k->a.cookie) {
				memcpy(after, s->cookies[i].name, sizeof(after));
				found = 1;
			}
		pthread_mutex_unlock(&s->mu);
		if (!found)
			c.skip = k->a.cookie;
	}
	status(k, NFS3_OK);
	nfs3_put_post_attr(k->e, &k->o.f);
	uint64_t verf = s->boot_ns;
	xdr_put_fixed(k->e, &verf, 8);
	int r = ns_readdir(s->ap->n, k->o.id, after, rd_entry, &c);
	if (r < 0 || (c.full && c.n == 0)) {
		xdr_enc_init(k->e, k->e->buf, k->e->cap);
		status(k, r < 0 ? nfserr(r) : NFS3ERR_TOOSMALL);
		nfs3_put_post_attr(k->e, &k->o.f);
		return;
	}
	xdr_put_u32(k->e, 0);
	xdr_put_u32(k->e, !c.full);
	if (c.n && c.full) {
		pthread_mutex_lock(&s->mu);
		nfs_cookie *ck = &s->cookies[(k->o.id * 31 + c.cookie) % NFS_COOKIE_SLOTS];
		ck->dir = k->o.id;
		ck->cookie = c.cookie;
		memcpy(ck->name, c.last, sizeof(ck->name));
		pthread_mutex_unlock(&s->mu);
	}
}

/* What one more file costs the store at least: its object record (128 bytes) and
 * its directory entry with the index's share, rounded up. Only for the file counts. */
#define NFS_FILE_COST 256

/* FSSTAT as the store sees it (docs/architecture.md "NFS", "FSSTAT"). Bytes are data
 * bytes after RAID-6 parity (a row holds k strips of data). fbytes: the free rows;
 * abytes: those above the reserve the store keeps for commits, the collector and
 * deletes, and 0 while the store refuses new data (full), so a client's df shows 0
 * exactly when a WRITE would get NOSPC; tbytes: the logical bytes of every file
 * (after dedup and compression they take less) plus fbytes, so df's "used"
 * (tbytes - fbytes) is what the clients wrote. Free space is not scaled by the
 * measured dedup x compression ratio: the next backup may be encrypted or already
 * compressed, and a df that promised room the store then refuses mid-job is worse
 * than one that underestimates. */
static void p_fsstat(call *k)
{
	store *S = ns_store(k->s->ap->n);
	store_stats st;
	store_get_stats(S, &st);
	store_space sp;
	store_get_space(S, &sp);
	uint64_t row = sp.row_bytes;
	uint64_t fbytes = st.rows_free * row;
	uint64_t abytes = st.full || st.rows_free <= st.rows_reserved ? 0 :
	                  (st.rows_free - st.rows_reserved) * row;
	status(k, NFS3_OK);
	nfs3_put_post_attr(k->e, &k->o.f);
	xdr_put_u64(k->e, st.logical_bytes + fbytes);           /* tbytes */
	xdr_put_u64(k->e, fbytes);                              /* fbytes */
	xdr_put_u64(k->e, abytes);                              /* abytes */
	xdr_put_u64(k->e, st.objects + fbytes / NFS_FILE_COST); /* tfiles */
	xdr_put_u64(k->e, fbytes / NFS_FILE_COST);              /* ffiles */
	xdr_put_u64(k->e, abytes / NFS_FILE_COST);              /* afiles */
	xdr_put_u32(k->e, 0);                                   /* invarsec */
}

static void p_fsinfo(call *k)
{
	nfs_srv *s = k->s;
	status(k, NFS3_OK);
	nfs3_put_post_attr(k->e, &k->o.f);
	xdr_put_u32(k->e, s->rsize);   /* rtmax */
	xdr_put_u32(k->e, s->rsize);   /* rtpref */
	xdr_put_u32(k->e, 4096);       /* rtmult */
	xdr_put_u32(k->e, s->wsize);   /* wtmax */
	xdr_put_u32(k->e, s->wsize);   /* wtpref */
	xdr_put_u32(k->e, 4096);       /* wtmult */
	xdr_put_u32(k->e, 65536);      /* dtpref */
	xdr_put_u64(k->e, NFS_MAXFILESIZE);
	xdr_put_u32(k->e, 0);          /* time_delta: 1 ns */
	xdr_put_u32(k->e, 1);
	xdr_put_u32(k->e, NFS3_FSF_LINK | NFS3_FSF_SYMLINK | NFS3_FSF_HOMOGENEOUS |
	                      NFS3_FSF_CANSETTIME);
}

static void p_pathconf(call *k)
{
	status(k, NFS3_OK);
	nfs3_put_post_attr(k->e, &k->o.f);
	xdr_put_u32(k->e, NS_LINK_MAX);
	xdr_put_u32(k->e, NS_NAME_MAX);
	xdr_put_u32(k->e, 1);          /* no_trunc */
	xdr_put_u32(k->e, 1);          /* chown_restricted */
	xdr_put_u32(k->e, 0);          /* case_insensitive */
	xdr_put_u32(k->e, 1);          /* case_preserving */
}

/* MKNOD: devices, sockets and fifos have no place on a backup target
 * (docs/architecture.md "NFS"); NFS3ERR_NOTSUPP with the directory's wcc. */
static void p_mknod(call *k)
{
	status(k, NFS3ERR_NOTSUPP);
	nfs3_put_wcc(k->e, NULL, &k->o.f);
}

/* ---- dispatch ---- */

typedef struct pdef {
	void (*fn)(call *k);
	uint8_t fh;      /* 1: a.fh names the object; 2: a.where.dir does */
	uint8_t nonidem; /* replies go to the duplicate request cache */
	uint8_t fail;    /* the failure body when the handle is bad: 1 post_op_attr,
	                  * 2 wcc, 3 two wcc (RENAME), 4 post_op_attr + wcc (LINK) */
} pdef;

static const pdef procs[NFS3_NPROCS] = {
	[NFS3_GETATTR] = {p_getattr, 1, 0, 0},
	[NFS3_SETATTR] = {p_setattr, 1, 1, 2},
	[NFS3_LOOKUP] = {p_lookup, 2, 0, 1},
	[NFS3_ACCESS] = {p_access, 1, 0, 1},
	[NFS3_READLINK] = {p_readlink, 1, 0, 1},
	[NFS3_READ] = {p_read, 1, 0, 1},
	[NFS3_WRITE] = {p_write, 1, 1, 2},
	[NFS3_CREATE] = {p_create, 2, 1, 2},
	[NFS3_MKDIR] = {p_mkdir, 2, 1, 2},
	[NFS3_SYMLINK] = {p_symlink, 2, 1, 2},
	[NFS3_MKNOD] = {p_mknod, 2, 1, 2},
	[NFS3_REMOVE] = {p_remove, 2, 1, 2},
	[NFS3_RMDIR] = {p_remove, 2, 1, 2},
	[NFS3_RENAME] = {p_rename, 2, 1, 3},
	[NFS3_LINK] = {p_link, 1, 1, 4},
	[NFS3_READDIR] = {p_readdir, 1, 0, 1},
	[NFS3_READDIRPLUS] = {p_readdir, 1, 0, 1},
	[NFS3_FSSTAT] = {p_fsstat, 1, 0, 1},
	[NFS3_FSINFO] = {p_fsinfo, 1, 0, 1},
	[NFS3_PATHCONF] = {p_pathconf, 1, 0, 1},
	[NFS3_COMMIT] = {p_commit, 1, 1, 2},
};

int nfs3_proc_nonidempotent(uint32_t proc)
{
	return proc < NFS3_NPROCS && procs[proc].nonidem;
}

static void fail_body(call *k, const pdef *p, uint32_t st)
{
	status(k, st);
	switch (p->fail) {
	case 0: break;
	case 1: nfs3_put_post_attr(k->e, NULL); break;
	case 2: nfs3_put_wcc(k->e, NULL, NULL); break;
	case 3: nfs3_put_wcc(k->e, NULL, NULL); nfs3_put_wcc(k->e, NULL, NULL); break;
	case 4: nfs3_put_post_attr(k->e, NULL); nfs3_put_wcc(k->e, NULL, NULL); break;
	}
}

void nfs3_dispatch(nfs_req *q)
{
	nfs_srv *s = q->s;
	call *k = calloc(1, sizeof(*k)); /* a.path and xpath: too big for a thread's stack */
	if (!k) {
		rpc_reply_accepted(q->e, q->call.xid, RPC_SYSTEM_ERR);
		return;
	}
	k->q = q;
	k->s = s;
	k->e = q->e;
	uint32_t proc = q->call.proc;
	if (proc == NFS3_NULL) {
		ok(k);
		goto out;
	}
	if (proc >= NFS3_NPROCS || !procs[proc].fn) {
		rpc_reply_accepted(q->e, q->call.xid, RPC_PROC_UNAVAIL);
		goto out;
	}
	const pdef *p = &procs[proc];
	int dr = nfs3_decode_args(proc, q->call.args, q->call.args_len, s->wsize, &k->a), r = dr;
	if (r == -EBADMSG || r == -E2BIG || r == -EFBIG || r == -ENOSYS) {
		rpc_reply_accepted(q->e, q->call.xid, RPC_GARBAGE_ARGS);
		goto out;
	}
	const nfs3_fh *fh = p->fh == 1 ? &k->a.fh : &k->a.where.dir;
	nfs3_handle h;
	if (nfs3_fh_parse(s->key, fh, &h) < 0) {
		char esc[LOG_ESC_LEN];
		LOG_D("nfs: client %s: bad file handle", log_escs(esc, sizeof(esc), q->c->peer));
		fail_body(k, p, NFS3ERR_BADHANDLE);
		goto out;
	}
	r = nfs_export_use(q, h.export_id, &k->x, k->xpath, sizeof(k->xpath));
	if (r == -EPERM) {
		rpc_reply_auth_error(q->e, q->call.xid, RPC_AUTH_TOOWEAK);
		goto out;
	}
	if (r < 0) {
		fail_body(k, p, r == -ESTALE ? NFS3ERR_STALE : NFS3ERR_ACCES);
		goto out;
	}
	appl_lock(s->ap);
	/* A replication twin serves restores only: every export is read-only there
	 * (NFS3ERR_ROFS) until `bkstorctl repl promote`. */
	if (appl_readonly(s->ap, NULL, 0))
		k->x.rw = 0;
	uint32_t xid = h.export_id;
	uint32_t st = take_fh(k, fh, &k->o, &xid);
	if (st != NFS3_OK) {
		fail_body(k, p, st);
	} else {
		/* Argument errors the decoder left to us: a name too long, empty or with
		 * '/' (the arguments are decoded whole all the same). */
		if (dr == -ENAMETOOLONG || dr == -EINVAL) {
			fail_body(k, p, nfserr(dr));
		} else if (!k->x.rw && p->nonidem && proc != NFS3_COMMIT) {
			fail_body(k, p, NFS3ERR_ROFS);
		} else {
			p->fn(k);
		}
	}
	appl_unlock(s->ap);
	/* A zero-copy READ's pieces: filled (decompressed) outside appl.mu, here, by
	 * this worker and the store's helpers. A chunk that failed its check in a
	 * read-ahead buffer: the data is copied instead (the pool reads that chunk,
	 * repairing it). */
	if (q->npieces && store_read_wait(ns_store(s->ap->n), &q->pins) < 0) {
		store *sto = ns_store(s->ap->n);
		size_t got = 0;
		appl_lock(s->ap);
		store_read_unpin(sto, &q->pins);
		q->npieces = 0;
		r = store_read(sto, k->o.id, k->a.offset, q->e->buf + q->data_at, q->data_len, &got);
		appl_unlock(s->ap);
		if (r == 0 && got != q->data_len)
			r = -EIO;
		if (r < 0) {
			xdr_enc_init(k->e, k->e->buf, k->e->cap);
			fail_body(k, p, nfserr(r));
		}
	}
	/* The reply waits for its change to be durable, outside appl.mu so other
	 * connections make theirs meanwhile and share the sync (group commit). */
	if (k->dseq) {
		bks_err e = {0};
		int sr = appl_durable(s->ap, k->dseq, &e);
		if (sr < 0) {
			LOG_W("nfs: client %s: xid %u: making the change durable: %s", q->c->peer,
			      q->call.xid, bks_errmsg(&e, sr));
			xdr_enc_init(k->e, k->e->buf, k->e->cap);
			fail_body(k, p, nfserr(sr));
		}
	}
out:
	free(k);
}
