/* daemon/native_ops.c: the requests of the native protocol (docs/protocol.md).
 * Each handler takes the appliance lock only around store and namespace calls. */
#include <config.h>

#include "daemon/native_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include "daemon/log.h"
#include "daemon/status.h"
#include "dedup/chunker.h"
#include "dedup/ingest.h"

#define GET_CHUNK (1u << 20)
#define GET_PIECES 256 /* pieces of one DATA frame (store_read_iov) */
#define LIST_BATCH 256

static appl *AP(conn *c) { return c->srv->ap; }

static void lock(conn *c) { appl_lock(AP(c)); }
static void unlock(conn *c) { appl_unlock(AP(c)); }
static void lock_ap(void *ap) { appl_lock(ap); }
static void unlock_ap(void *ap) { appl_unlock(ap); }

static int path_of(wire_str s, char *out)
{
	return wire_str_copy(s, out, WIRE_PATH_MAX + 1);
}

/* ns errors as a sentence. */
static const char *what(int r)
{
	switch (r) {
	case -ENOENT: return "no such file or directory";
	case -ENOTDIR: return "a component of the path is not a directory";
	case -EISDIR: return "is a directory";
	case -EEXIST: return "already exists";
	case -ENOTEMPTY: return "directory not empty";
	case -EBUSY: return "busy (the daemon is shutting down, or the root cannot change that way)";
	case -ENOSPC: return "the store is full: " APPL_FULL_HINT;
	case -EROFS: return "the store is read-only after a failed write (see the log)";
	default: return strerror(-r);
	}
}

/* As what(), but -EROFS on a replication twin says so (appl_readonly's sentence,
 * which names the source and `bkstorctl repl promote`), not a failed write. */
static const char *what_c(conn *c, int r, char *buf, size_t cap)
{
	if (r == -EROFS) {
		lock(c);
		int ro = appl_readonly(AP(c), buf, cap);
		unlock(c);
		if (ro)
			return buf;
	}
	return what(r);
}

static int send_ok(conn *c, uint32_t tag)
{
	uint8_t b[WIRE_HDR_LEN];
	int n = wire_empty_encode(b, sizeof(b), WIRE_OK, tag);
	return n < 0 ? n : conn_send(c, b, (size_t)n);
}

/* After a PUT failed: swallow its remaining frames up to END (answering FP_LISTs
 * with "need nothing" so a source-dedup client gets there), then go on. */
static int drain_put(conn *c, uint32_t tag)
{
	wire_hdr h;
	wire_msg m;
	for (;;) {
		int r = conn_read_frame(c, &h, &m);
		if (r < 0)
			return r;
		if (h.type == WIRE_END)
			return 0;
		if (h.type == WIRE_FP_LIST) {
			uint8_t b[WIRE_CTRL_MAX] = {0}, bits[WIRE_FP_MAX / 8] = {0};
			int n = wire_fp_need_encode(b, sizeof(b), tag, m.u.fp_list.count, bits);
			if (n < 0 || (r = conn_send(c, b, (size_t)n)) < 0)
				return n < 0 ? n : r;
		} else if (h.type != WIRE_DATA && h.type != WIRE_CHUNK) {
			conn_error(c, h.tag, -EPROTO, "%s inside a PUT", wire_type_name(h.type));
			return -EPROTO;
		}
	}
}

/* Where a PUT's file goes: its directory (made with PARENTS) and name; checks the
 * name is free (or overwritable). Under the lock. */
static int put_target(conn *c, const char *path, uint32_t flags, uint64_t *dir,
                      char *name)
{
	ns *n = AP(c)->n;
	/* A twin takes files from its source only (checked again at the link: a PUT that
	 * began before the twin went read-only does not land after it). */
	if (appl_readonly(AP(c), NULL, 0))
		return -EROFS;
	int r = ns_resolve_parent(n, path, dir, name);
	if (r == -ENOENT && (flags & WIRE_PUT_PARENTS)) {
		char parent[WIRE_PATH_MAX + 1];
		snprintf(parent, sizeof(parent), "%s", path);
		char *slash = strrchr(parent, '/');
		if (slash == parent)
			slash[1] = 0;
		else if (slash)
			*slash = 0;
		r = ns_mkdir_path(n, parent, 0755, NULL);
		if (r == 0)
			r = ns_resolve_parent(n, path, dir, name);
	}
	if (r < 0)
		return r;
	ns_attr a;
	r = ns_lookup(n, *dir, name, &a);
	if (r == 0 && a.type == NS_DIR)
		return -EISDIR;
	if (r == 0 && !(flags & WIRE_PUT_OVERWRITE))
		return -EEXIST;
	return r == -ENOENT || r == 0 ? 0 : r;
}

struct put_state {
	store_writer *w;
	wire_digest *sha;
	uint64_t bytes;
	int dedup;
	int fp_digest;               /* PUT_FP_DIGEST: sha runs over the FP_LIST entries */
	/* source dedup: the FP_LIST being worked through */
	wire_fp fps[WIRE_FP_MAX];
	uint8_t need[WIRE_FP_MAX / 8];
	uint32_t nfp, next;
	/* plain PUT: chunked, fingerprinted and compressed here, outside the lock */
	int bulk;                    /* a small PUT: store_put_write under the lock */
	cdc *cdc;
	ingest *ing;                 /* this thread and a helper while there is a core */
	uint8_t *tail;               /* the bytes since the last cut point */
	uint8_t *join;               /* the tail + the next frame's head: one chunk */
	uint32_t tlen;
	uint64_t probed, missed;     /* bytes chunked here; of them, new to the store */
	uint64_t zbusy_bytes;        /* new bytes compressed at the busy level */
};

/* Plain PUTs (DATA frames), without holding appl.mu for the CPU work. The connection's
 * thread finds the cut points (the store's parameters: the chunker's cut points
 * depend only on the bytes since the last cut, so they are the store's) and the
 * engine fingerprints the chunks (with a helper thread while there is a core for it),
 * all outside the lock. Then, per round (the chunks of one DATA frame):
 *  1. under the lock, the chunks the store has are appended to the object's map
 *     (store_put_known) up to the first new one; from there on they are only looked
 *     up (store_has_chunk), since the map takes extents in order;
 *  2. without the lock, the new ones are compressed on the engine's threads, at a
 *     level picked for the round (put_level);
 *  3. under the lock again, the rest of the round in order: a new chunk with
 *     store_put_prepared (index insert and segment append only; if another stream
 *     stored the same chunk in the meantime its compressed copy is dropped), a known
 *     one with store_put_known (if the collector took it in between, it is stored
 *     with store_put_chunk, which hashes and compresses under the lock: rare).
 * A round of duplicates takes the lock once, a round with new chunks twice, plus the
 * prefetch's short holds before step 1 (store_put_prefetch: one to find the index
 * reads the lookups will need, and when there are any, one more to install what was
 * read without the lock): up to two more.
 * Small PUTs (one frame below PUT_SMALL) go straight to store_put_write. */
#define PUT_SMALL (64u << 10)
/* Adaptive compression: a round is compressed at the busy level (store.zstd_level_busy,
 * zstd 1 by default; 0: stored raw and compressed later by the store's background pass,
 * store_defer.c) when the client is ahead of us — at least PUT_BACKLOG bytes of
 * the stream already wait in the socket, so compressing is what the stream waits for
 * — and the round is mostly new (at least a quarter of its bytes: a first backup;
 * a few new chunks among duplicates cost little at any level); else at the store's
 * level (store.zstd_level, 3). The stored form is a zstd frame either way: readers
 * do not care which level wrote it. */
#define PUT_BACKLOG (1u << 20)
/* Busy level 0 (deferred compression) on a store short of free rows: this level. */
#define PUT_DEFER_FALLBACK 1

/* Threads hashing for PUTs: each PUT's own, and a helper while that leaves a core
 * for each (a helper spins while its PUT finds cut points: on a machine with more
 * streams than cores the helpers would only take turns with the streams). */
static int put_threads;

static void put_state_free(struct put_state *ps)
{
	if (ps->ing)
		__atomic_fetch_sub(&put_threads, ingest_threads(ps->ing), __ATOMIC_RELAXED);
	cdc_free(ps->cdc);
	ingest_free(ps->ing);
	free(ps->tail);
	free(ps->join);
}

static int put_setup(conn *c, struct put_state *ps)
{
	const native_srv *s = c->srv;
	cdc_params cp = {s->cdc_min, s->cdc_avg, s->cdc_max};
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	int busy = __atomic_load_n(&put_threads, __ATOMIC_RELAXED);
	int r = cdc_new(&cp, &ps->cdc);
	if (r == 0)
		r = ingest_new(s->zlevel, cp.max, busy + 2 <= cpus ? 2 : 1, &ps->ing);
	if (r == 0)
		__atomic_fetch_add(&put_threads, ingest_threads(ps->ing), __ATOMIC_RELAXED);
	if (r == 0 && (!(ps->tail = malloc(cp.max)) || !(ps->join = malloc(cp.max))))
		r = -ENOMEM;
	return r;
}

/* The level for this round's new chunks (see PUT_BACKLOG). */
static int put_level(conn *c, uint64_t round_bytes, uint64_t new_bytes)
{
	const native_srv *s = c->srv;
	int queued = 0;
	if (s->zlevel_busy == s->zlevel || new_bytes * 4 < round_bytes)
		return s->zlevel;
	if (ioctl(c->fd, FIONREAD, &queued) < 0)
		queued = 0;
	return (uint32_t)queued >= PUT_BACKLOG ? s->zlevel_busy : s->zlevel;
}

/* The spans of the engine's round, fingerprinted, into the object in order. */
static int put_round(conn *c, struct put_state *ps)
{
	int r = ingest_hash_wait(ps->ing);
	if (r < 0)
		return r;
	int n = ingest_count(ps->ing), first_new = n, roomy = 1;
	uint64_t round_bytes = 0, new_bytes = 0;
	/* The index reads of the lookups below (entry blocks, segment tables) without
	 * the lock: best effort, whatever it returns the lookups are right. */
	store_put_prefetch(ps->w, ps->ing, lock_ap, unlock_ap, AP(c));
	lock(c);
	if (c->srv->zlevel_busy == 0 && c->srv->zlevel > 0) {
		/* Deferring needs room: raw chunks take about twice the rows until the
		 * pass catches up, so a store with less than a quarter of its rows free
		 * compresses at zstd 1 instead (PUT_DEFER_FALLBACK). */
		store_space sp;
		store_get_space(AP(c)->s, &sp);
		roomy = sp.rows_free * 4 >= sp.rows;
	}
	for (int i = 0; i < n && r >= 0; i++) {
		ing_span *sp = ingest_span(ps->ing, i);
		round_bytes += sp->len;
		if (first_new == n) {
			if ((r = store_put_known(ps->w, sp->fp, sp->len)) == 0)
				first_new = i; /* from here on: look up only */
			sp->hit = r != 0;
		} else {
			r = store_has_chunk(AP(c)->s, sp->fp, sp->len);
			sp->hit = r == 1;
		}
		if (r == 0)
			new_bytes += sp->len;
	}
	unlock(c);
	ps->probed += round_bytes;
	ps->missed += new_bytes;
	if (r < 0 || first_new == n)
		return r < 0 ? r : 0;
	int level = put_level(c, round_bytes, new_bytes);
	if (level == 0 && c->srv->zlevel > 0 && !roomy)
		level = BKS_MIN(PUT_DEFER_FALLBACK, c->srv->zlevel);
	if (level != ingest_level(ps->ing))
		ingest_set_level(ps->ing, level);
	if (level != c->srv->zlevel)
		ps->zbusy_bytes += new_bytes;
	if ((r = ingest_compress(ps->ing)) < 0)
		return r;
	/* Busy level 0 with a store level above: raw now, compressed by the background
	 * pass (dedup/store_defer.c), which the flag asks for. */
	int raw = level == 0 && c->srv->zlevel > 0 ? SEG_RAW_DEFERRED : SEG_RAW;
	lock(c);
	for (int i = first_new; i < n && r >= 0; i++) {
		ing_span *sp = ingest_span(ps->ing, i);
		if (!sp->hit) {
			r = sp->zlen ? store_put_prepared(ps->w, sp->fp, sp->len, sp->z, sp->zlen,
			                                  SEG_ZSTD)
			             : store_put_prepared(ps->w, sp->fp, sp->len, sp->p, sp->len, raw);
		} else if ((r = store_put_known(ps->w, sp->fp, sp->len)) == 0) {
			r = store_put_chunk(ps->w, sp->fp, sp->p, sp->len);
		}
	}
	unlock(c);
	return r < 0 ? r : 0;
}

static int put_data(conn *c, struct put_state *ps, const uint8_t *p, size_t len)
{
	int r = 0;
	if (!ps->bulk && !ps->cdc && len < PUT_SMALL)
		ps->bulk = 1; /* a small file: not worth a helper thread */
	if (!ps->bulk && !ps->cdc && (r = put_setup(c, ps)) < 0)
		return r;
	if (ps->bulk) {
		lock(c);
		r = store_put_write(ps->w, p, len);
		unlock(c);
		return r;
	}
	while (len > 0 && r == 0) {
		ingest_begin(ps->ing);
		while (len > 0 && !ingest_full(ps->ing)) {
			int cut;
			size_t n = cdc_next(ps->cdc, p, len, &cut);
			if (cut && ps->tlen == 0) {
				ingest_add(ps->ing, p, (uint32_t)n);
			} else if (cut) {
				/* Only a round's first span can be a join: after a cut the
				 * tail is empty until the buffer ends. */
				memcpy(ps->join, ps->tail, ps->tlen);
				memcpy(ps->join + ps->tlen, p, n);
				ingest_add(ps->ing, ps->join, ps->tlen + (uint32_t)n);
				ps->tlen = 0;
			} else {
				memcpy(ps->tail + ps->tlen, p, n);
				ps->tlen += (uint32_t)n;
			}
			p += n;
			len -= n;
		}
		r = put_round(c, ps);
	}
	return r;
}

/* END of a plain PUT: the stream's last chunk is the tail. */
static int put_data_end(conn *c, struct put_state *ps)
{
	if (ps->bulk || !ps->tlen)
		return 0;
	ingest_begin(ps->ing);
	ingest_add(ps->ing, ps->tail, ps->tlen);
	int r = put_round(c, ps);
	ps->tlen = 0;
	return r;
}

/* Source dedup: an FP_LIST (up to WIRE_FP_MAX fingerprints, ~32 MiB of chunks) is
 * looked up in slices of FP_PF_SLICE, each after its own prefetch
 * (store_put_prefetch_fps: two short holds of the lock, the reads between them
 * without it), like a plain PUT's rounds: one prefetch reads at most 16 entry blocks
 * and 16 segment tables (dedup/fpidx.c, PF_BLOCKS/PF_TABLES), about what a slice's
 * duplicates enter after a commit; a whole list can enter more, and what did not fit
 * would be read under the lock.
 * The entries up to the first the store lacks go into the object during those
 * lookups; apply_known's store_put_known for the ones after it comes later (after
 * each CHUNK) and mostly finds what the slices loaded in the index's caches: one
 * whose locality-cache slot another entry took meanwhile reads its entry block then,
 * under the lock. */
#define FP_PF_SLICE 256u

/* Source dedup: apply entries from ps->next on while they need no CHUNK. */
static int apply_known(conn *c, struct put_state *ps)
{
	int r = 0;
	if (ps->next == ps->nfp || wire_bit_get(ps->need, ps->next))
		return 0; /* nothing to apply: no need for the lock */
	lock(c);
	while (ps->next < ps->nfp && !wire_bit_get(ps->need, ps->next) && r == 0) {
		wire_fp *f = &ps->fps[ps->next];
		r = store_put_known(ps->w, f->fp, f->len);
		if (r == 0)
			r = -EAGAIN; /* collected since FP_NEED: the client must retry */
		else if (r == 1) {
			r = 0;
			ps->bytes += f->len;
			ps->next++;
		}
	}
	unlock(c);
	return r;
}

static int put_frame(conn *c, struct put_state *ps, const wire_hdr *h, const wire_msg *m)
{
	int r;
	if (h->type == WIRE_DATA && !ps->dedup) {
		const wire_bytes *b = &m->u.bytes;
		wire_digest_update(ps->sha, b->p, b->len);
		r = put_data(c, ps, b->p, b->len);
		ps->bytes += b->len;
		appl_count_ingest(AP(c), b->len);
		conn_pace(c, b->len);
		return r;
	}
	if (h->type == WIRE_FP_LIST && ps->dedup && ps->next == ps->nfp) {
		const wire_fp_list *l = &m->u.fp_list;
		uint8_t b[WIRE_CTRL_MAX];
		/* The fingerprint stream as the client sent it: with the chunks' own SHA-256
		 * checks this covers every byte of the file (see op_put). */
		if (ps->fp_digest)
			wire_digest_update(ps->sha, l->raw, (size_t)l->count * WIRE_FP_ENTRY_LEN);
		ps->nfp = l->count;
		ps->next = 0;
		memset(ps->need, 0, sizeof(ps->need));
		for (uint32_t i = 0; i < l->count; i++) {
			wire_fp_list_get(l, i, &ps->fps[i]);
			if (ps->fps[i].len > c->srv->cdc_max)
				return -EINVAL;
		}
		/* The lookups, a slice at a time, each slice's index reads (entry blocks,
		 * segment tables: after a commit) made just before without the lock, as
		 * put_round's: see FP_PF_SLICE. Up to the first chunk the store lacks they
		 * go into the object at once (store_put_known: one lookup each, not one
		 * here and one more in apply_known); from there on only looked up. */
		r = 0;
		for (uint32_t from = 0; from < ps->nfp && r >= 0; from += FP_PF_SLICE) {
			uint32_t to = BKS_MIN(from + FP_PF_SLICE, ps->nfp);
			store_put_prefetch_fps(ps->w, ps->fps[from].fp, sizeof(ps->fps[0]),
			                       (int)(to - from), lock_ap, unlock_ap, AP(c));
			lock(c);
			for (uint32_t i = from; i < to && r >= 0; i++) {
				wire_fp *f = &ps->fps[i];
				if (ps->next == i && (r = store_put_known(ps->w, f->fp, f->len)) == 1) {
					ps->bytes += f->len;
					ps->next++;
				} else if (ps->next != i) {
					r = store_has_chunk(AP(c)->s, f->fp, f->len);
				}
				if (r == 0)
					wire_bit_set(ps->need, i);
			}
			unlock(c);
		}
		if (r < 0)
			return r;
		int n = wire_fp_need_encode(b, sizeof(b), h->tag, ps->nfp, ps->need);
		if (n < 0 || (r = conn_send(c, b, (size_t)n)) < 0)
			return n < 0 ? n : r;
		return apply_known(c, ps);
	}
	if (h->type == WIRE_CHUNK && ps->dedup && ps->next < ps->nfp) {
		const wire_bytes *b = &m->u.bytes;
		wire_fp *f = &ps->fps[ps->next];
		if (b->len != f->len)
			return -EBADMSG;
		lock(c);
		r = store_put_chunk(ps->w, f->fp, b->p, b->len);
		unlock(c);
		if (r < 0)
			return r;
		ps->bytes += b->len;
		ps->next++;
		appl_count_ingest(AP(c), b->len);
		conn_pace(c, b->len);
		return apply_known(c, ps);
	}
	return -EPROTO;
}

static int op_put(conn *c, uint32_t tag, const wire_put *p)
{
	char path[WIRE_PATH_MAX + 1], name[NS_NAME_MAX + 1], esc[LOG_ESC_LEN], rob[256];
	struct put_state *ps = calloc(1, sizeof(*ps));
	uint64_t dir, id = 0;
	wire_hdr h;
	wire_msg m;
	int r;

	if (!ps)
		return -ENOMEM;
	path_of(p->path, path);
	ps->dedup = !!(p->flags & WIRE_PUT_SRC_DEDUP);
	ps->fp_digest = !!(p->flags & WIRE_PUT_FP_DIGEST);
	if (ps->fp_digest && !ps->dedup) {
		conn_error(c, tag, -EINVAL, "put %s: FP_DIGEST is a flag of SRC_DEDUP PUTs only",
		           path);
		free(ps);
		return drain_put(c, tag);
	}
	lock(c);
	r = AP(c)->shutting_down ? -EBUSY : put_target(c, path, p->flags, &dir, name);
	if (r == 0)
		r = store_put_begin(AP(c)->s, &ps->w);
	unlock(c);
	if (r < 0) {
		conn_error(c, tag, r, "put %s: %s", path, what_c(c, r, rob, sizeof(rob)));
		free(ps);
		return drain_put(c, tag);
	}
	ps->sha = wire_digest_new();
	if (!ps->sha) {
		r = -ENOMEM;
		goto fail;
	}
	for (;;) {
		if ((r = conn_read_frame(c, &h, &m)) < 0)
			goto gone; /* the connection is over: the object never existed */
		if (h.type == WIRE_END)
			break;
		if ((r = put_frame(c, ps, &h, &m)) < 0) {
			if (r == -EPROTO) {
				conn_error(c, h.tag, -EPROTO, "%s is not expected here in a PUT",
				           wire_type_name(h.type));
				goto gone;
			}
			goto fail;
		}
	}
	uint8_t dig[WIRE_DIGEST_LEN];
	wire_digest_final(ps->sha, dig);
	if (m.u.end.count != ps->bytes || (ps->dedup && ps->next != ps->nfp)) {
		r = -EBADMSG;
		conn_error(c, tag, r, "put %s: END says %llu bytes, %llu arrived", path,
		           (unsigned long long)m.u.end.count, (unsigned long long)ps->bytes);
		goto abort_only;
	}
	/* Plain PUT: the digest of the bytes. Source dedup with FP_DIGEST: the digest of
	 * the fingerprint stream; each CHUNK was checked against its fingerprint and each
	 * chunk we had was checked when stored, so a match means the file is exactly the
	 * bytes the client fingerprinted, without reading back a deduplicated chunk.
	 * Source dedup without FP_DIGEST (a client older than the flag): END's digest is
	 * that of the file's bytes, which we cannot check without those reads; only the
	 * count is checked, as before. */
	if ((!ps->dedup || ps->fp_digest) && memcmp(dig, m.u.end.digest, WIRE_DIGEST_LEN)) {
		r = -EBADMSG;
		conn_error(c, tag, r, "put %s: digest of the %s differs from END's: not stored",
		           path, ps->dedup ? "fingerprint stream (FP_LIST entries)" : "stream");
		goto abort_only;
	}
	if (!ps->dedup && (r = put_data_end(c, ps)) < 0) {
		conn_error(c, tag, r, "put %s: %s", path, what(r));
		goto abort_only;
	}
	store_put_stats pst;
	bks_err e = {0};
	lock(c);
	r = store_put_end_stats(ps->w, &id, &pst);
	ps->w = NULL;
	if (r == 0) {
		/* The namespace may have changed while the bytes came: look again. */
		r = put_target(c, path, p->flags, &dir, name);
		if (r == 0)
			r = ns_link_new(AP(c)->n, dir, name, id, !!(p->flags & WIRE_PUT_OVERWRITE),
			                p->mode, p->uid, p->gid, p->mtime_ns, NULL);
		if (r < 0)
			store_delete(AP(c)->s, id);
		else if ((r = ns_sync(AP(c)->n, id, &e)) < 0)
			LOG_E("put %s: sync failed: %s", log_escs(esc, sizeof(esc), path),
			      bks_errmsg(&e, r));
	}
	unlock(c);
	if (r < 0) {
		conn_error(c, tag, r, "put %s: %s", path, what_c(c, r, rob, sizeof(rob)));
		goto done;
	}
	LOG_D("client %s: put %s: %llu bytes, %llu of %llu chunks new, %llu new bytes at "
	      "the busy zstd level", c->peer, log_escs(esc, sizeof(esc), path),
	      (unsigned long long)ps->bytes, (unsigned long long)pst.chunks_new,
	      (unsigned long long)pst.chunks, (unsigned long long)ps->zbusy_bytes);
	wire_put_ok ok = {.id = id, .size = ps->bytes, .chunks = pst.chunks,
	                  .chunks_new = pst.chunks_new, .bytes_new = pst.bytes_new,
	                  .bytes_stored = pst.bytes_stored};
	uint8_t b[WIRE_CTRL_MAX];
	int n = wire_put_ok_encode(b, sizeof(b), tag, &ok);
	r = n < 0 ? n : conn_send(c, b, (size_t)n);
	goto done;
fail:
	conn_error(c, tag, r, "put %s: %s", path, what(r));
	lock(c);
	store_put_abort(ps->w);
	unlock(c);
	ps->w = NULL;
	r = drain_put(c, tag);
	goto done;
abort_only:
	r = 0;
gone:
	lock(c);
	store_put_abort(ps->w);
	unlock(c);
	ps->w = NULL;
done:
	wire_digest_free(ps->sha);
	put_state_free(ps);
	free(ps);
	return r;
}

static int op_get(conn *c, uint32_t tag, const wire_get *g)
{
	char path[WIRE_PATH_MAX + 1];
	ns_attr a;
	int r;
	path_of(g->path, path);
	lock(c);
	r = ns_resolve(AP(c)->n, path, &a);
	unlock(c);
	if (r == 0 && a.type != NS_FILE)
		r = -EISDIR;
	if (r == 0 && g->offset > a.size)
		return conn_error(c, tag, -EINVAL, "get %s: offset %llu is past the end (%llu bytes)",
		                  path, (unsigned long long)g->offset, (unsigned long long)a.size);
	if (r < 0)
		return conn_error(c, tag, r, "get %s: %s", path, what(r));
	uint64_t len = g->length == WIRE_LEN_ALL ? a.size - g->offset
	                                         : BKS_MIN(g->length, a.size - g->offset);
	uint8_t hb[WIRE_CTRL_MAX];
	wire_get_ok ok = {.size = a.size, .length = len, .id = a.id};
	int n = wire_get_ok_encode(hb, sizeof(hb), tag, &ok);
	if (n < 0 || (r = conn_send(c, hb, (size_t)n)) < 0)
		return n < 0 ? n : r;
	size_t bs = BKS_MIN((size_t)GET_CHUNK, (size_t)BKS_MAX(c->peer_max, WIRE_MIN_PAYLOAD));
	uint8_t *buf = malloc(bs);
	wire_digest *sha = wire_digest_new();
	if (!buf || !sha) {
		free(buf);
		wire_digest_free(sha);
		return -ENOMEM;
	}
	uint64_t off = g->offset, done = 0;
	/* Zero-copy: most of a DATA frame's bytes are sent from the store's read-ahead
	 * buffers, pinned until the frame is out (store_read_iov); buf only takes what
	 * has no buffer there (holes, chunks read on demand). The chunks are
	 * decompressed outside appl.mu: by the store's helpers ahead of us, and by this
	 * thread in store_read_wait when it catches up with them. */
	store_iov pieces[GET_PIECES];
	struct iovec iov[GET_PIECES + 1];
	store_pins pins = {.n = 0};
	while (done < len) {
		size_t want = (size_t)BKS_MIN((uint64_t)bs, len - done), got = 0;
		int np = 0;
		for (int tries = 0;; tries++) {
			lock(c);
			if (tries)
				store_read_unpin(AP(c)->s, &pins);
			r = store_read_iov(AP(c)->s, a.id, off, want, buf, pieces, GET_PIECES, &np,
			                   &got, &pins);
			unlock(c);
			/* -EAGAIN: a chunk failed its check in the read-ahead buffer; read the
			 * range again (that chunk goes through the pool, which repairs it). */
			if (r < 0 || (r = store_read_wait(AP(c)->s, &pins)) != -EAGAIN)
				break;
			if (tries == 3) {
				r = -EIO;
				break;
			}
		}
		if (r < 0 && pins.n) {
			lock(c);
			store_read_unpin(AP(c)->s, &pins);
			unlock(c);
		}
		if (r == 0 && got == 0)
			r = -EIO; /* deleted or truncated while we read */
		if (r < 0) {
			conn_error(c, tag, r, "get %s: read failed at offset %llu: %s", path,
			           (unsigned long long)off, what(r));
			goto out_keep;
		}
		uint8_t h[WIRE_HDR_LEN];
		wire_hdr_encode(h, WIRE_DATA, tag, (uint32_t)got);
		iov[0] = (struct iovec){.iov_base = h, .iov_len = sizeof(h)};
		for (int i = 0; i < np; i++) {
			iov[i + 1] = (struct iovec){.iov_base = (void *)pieces[i].p, .iov_len = pieces[i].len};
			wire_digest_update(sha, pieces[i].p, pieces[i].len);
		}
		r = conn_sendv(c, iov, np + 1);
		lock(c);
		store_read_unpin(AP(c)->s, &pins);
		unlock(c);
		if (r < 0)
			goto out;
		off += got;
		done += got;
		appl_count_restore(AP(c), got);
	}
	wire_end end = {.count = done};
	wire_digest_final(sha, end.digest);
	n = wire_end_encode(hb, sizeof(hb), tag, &end);
	r = n < 0 ? n : conn_send(c, hb, (size_t)n);
	goto out;
out_keep:
	r = 0;
out:
	free(buf);
	wire_digest_free(sha);
	return r;
}

static int op_stat(conn *c, uint32_t tag, const wire_pathreq *q)
{
	char path[WIRE_PATH_MAX + 1];
	ns_attr a;
	path_of(q->path, path);
	lock(c);
	int r = ns_resolve(AP(c)->n, path, &a);
	unlock(c);
	if (r < 0)
		return conn_error(c, tag, r, "stat %s: %s", path, what(r));
	wire_attr wa = {.type = a.type == NS_DIR ? WIRE_FT_DIR : WIRE_FT_FILE, .mode = a.mode,
	                .uid = a.uid, .gid = a.gid, .nlink = a.nlink, .size = a.size,
	                .mtime_ns = a.mtime_ns, .ctime_ns = a.ctime_ns, .id = a.id};
	uint8_t b[WIRE_CTRL_MAX];
	int n = wire_attr_encode(b, sizeof(b), tag, &wa);
	return n < 0 ? n : conn_send(c, b, (size_t)n);
}

struct list_batch {
	ns *n;
	wire_entry ent[LIST_BATCH];
	char names[LIST_BATCH][NS_NAME_MAX + 1];
	int cnt;
};

static int list_cb(void *ctx, const ns_dirent *d)
{
	struct list_batch *lb = ctx;
	ns_attr a;
	if (ns_getattr(lb->n, d->id, &a) < 0)
		return 0; /* vanished between the listing and the look */
	snprintf(lb->names[lb->cnt], sizeof(lb->names[0]), "%s", d->name);
	lb->ent[lb->cnt] = (wire_entry){.type = a.type == NS_DIR ? WIRE_FT_DIR : WIRE_FT_FILE,
	                                .mode = a.mode, .size = a.size, .mtime_ns = a.mtime_ns,
	                                .id = a.id, .name = wire_s(lb->names[lb->cnt])};
	lb->cnt++;
	return lb->cnt == LIST_BATCH;
}

static int op_list(conn *c, uint32_t tag, const wire_pathreq *q)
{
	char path[WIRE_PATH_MAX + 1], after[NS_NAME_MAX + 1] = "";
	struct list_batch *lb = malloc(sizeof(*lb));
	size_t cap = WIRE_HDR_LEN + BKS_MIN(BKS_MAX(c->peer_max, WIRE_MIN_PAYLOAD), 1u << 20);
	uint8_t *frame = malloc(cap);
	uint64_t total = 0;
	ns_attr a;
	int r;
	if (!lb || !frame) {
		free(lb);
		free(frame);
		return -ENOMEM;
	}
	path_of(q->path, path);
	lb->n = AP(c)->n;
	lock(c);
	r = ns_resolve(AP(c)->n, path, &a);
	if (r == 0 && a.type != NS_DIR)
		r = -ENOTDIR;
	unlock(c);
	if (r < 0) {
		r = conn_error(c, tag, r, "list %s: %s", path, what(r));
		goto out;
	}
	for (;;) {
		lb->cnt = 0;
		lock(c);
		r = ns_readdir(AP(c)->n, a.id, after, list_cb, lb);
		unlock(c);
		if (r < 0) {
			r = conn_error(c, tag, r, "list %s: %s", path, what(r));
			goto out;
		}
		if (lb->cnt == 0)
			break;
		wire_items_builder b;
		wire_items_begin(&b, frame, cap, tag);
		for (int i = 0; i < lb->cnt; i++) {
			int ar = wire_items_add(&b, &lb->ent[i]);
			if (ar == -ENOSPC) {
				int n = wire_items_finish(&b);
				if (n < 0 || (r = conn_send(c, frame, (size_t)n)) < 0)
					goto out;
				wire_items_begin(&b, frame, cap, tag);
				ar = wire_items_add(&b, &lb->ent[i]);
			}
			if (ar < 0) {
				r = ar;
				goto out;
			}
		}
		int n = wire_items_finish(&b);
		if (n < 0 || (r = conn_send(c, frame, (size_t)n)) < 0)
			goto out;
		total += (uint64_t)lb->cnt;
		snprintf(after, sizeof(after), "%s", lb->names[lb->cnt - 1]);
		if (lb->cnt < LIST_BATCH)
			break;
	}
	uint8_t e[WIRE_CTRL_MAX];
	int n = wire_u64_encode(e, sizeof(e), WIRE_LIST_END, tag, total);
	r = n < 0 ? n : conn_send(c, e, (size_t)n);
out:
	free(lb);
	free(frame);
	return r;
}

/* Everything under dir, then dir itself (from its parent). Under the lock. */
static int delete_tree(ns *n, uint64_t parent, const char *name, int depth)
{
	ns_attr a;
	int r = ns_lookup(n, parent, name, &a);
	if (r < 0 || a.type != NS_DIR)
		return r < 0 ? r : ns_unlink(n, parent, name);
	if (depth > 256)
		return -ELOOP;
	struct list_batch *lb = malloc(sizeof(*lb));
	if (!lb)
		return -ENOMEM;
	lb->n = n;
	do {
		lb->cnt = 0;
		if ((r = ns_readdir(n, a.id, NULL, list_cb, lb)) < 0)
			break;
		for (int i = 0; i < lb->cnt && r >= 0; i++)
			r = delete_tree(n, a.id, lb->names[i], depth + 1);
	} while (r >= 0 && lb->cnt > 0);
	free(lb);
	return r < 0 ? r : ns_rmdir(n, parent, name);
}

static int op_change(conn *c, uint32_t tag, uint8_t type, const wire_msg *m)
{
	char path[WIRE_PATH_MAX + 1], to[WIRE_PATH_MAX + 1];
	char name[NS_NAME_MAX + 1], toname[NS_NAME_MAX + 1], rob[256];
	uint64_t dir = 0, todir = 0;
	ns_attr a = {0};
	bks_err e = {0};
	const char *verb = type == WIRE_MKDIR ? "mkdir" : type == WIRE_RENAME ? "rename" : "delete";
	int r;
	ns *n = AP(c)->n;

	path_of(type == WIRE_RENAME ? m->u.rename.from : m->u.req.path, path);
	lock(c);
	if (appl_readonly(AP(c), rob, sizeof(rob))) {
		unlock(c);
		return conn_error(c, tag, -EROFS, "%s %s: %s", verb, path, rob);
	}
	/* A delete or rename rewrites directories (about two rows once synced) from the
	 * share of the reserve deletes and the collector have (pool.h "space"). When
	 * that is used up, refuse before changing anything: the collector turns what
	 * earlier deletes left into free rows without taking any. */
	if (type != WIRE_MKDIR && !store_space_ok(AP(c)->s, POOL_SPACE_WORK, 2)) {
		unlock(c);
		return conn_error(c, tag, -ENOSPC, "%s %s: the store is full and the room kept for "
		                  "deletes is used up: run bkstorctl gc (it frees what the deletes "
		                  "so far left behind), then try again", verb, path);
	}
	if (type == WIRE_MKDIR && (m->u.req.flags & WIRE_MKDIR_PARENTS)) {
		r = ns_mkdir_path(n, path, m->u.req.mode, &a);
		dir = a.id;
	} else {
		r = ns_resolve_parent(n, path, &dir, name);
		if (r == 0 && type == WIRE_MKDIR)
			r = ns_mkdir(n, dir, name, m->u.req.mode, 0, 0, NULL);
		else if (r == 0 && type == WIRE_DELETE)
			r = (m->u.req.flags & WIRE_DELETE_RECURSIVE) ? delete_tree(n, dir, name, 0)
			    : ns_lookup(n, dir, name, &a) == 0 && a.type == NS_DIR ? ns_rmdir(n, dir, name)
			                                                        : ns_unlink(n, dir, name);
		else if (r == 0 && type == WIRE_RENAME) {
			path_of(m->u.rename.to, to);
			r = ns_resolve_parent(n, to, &todir, toname);
			if (r == 0)
				r = ns_rename(n, dir, name, todir, toname,
				              !!(m->u.rename.flags & WIRE_RENAME_NOREPLACE));
		}
	}
	/* Namespace changes are durable before the answer (the intent log). */
	if (r == 0 && (r = ns_sync(n, dir, &e)) == 0 && todir && todir != dir)
		r = ns_sync(n, todir, &e);
	unlock(c);
	if (r < 0)
		return conn_error(c, tag, r, "%s %s: %s", verb, path, what(r));
	return send_ok(c, tag);
}

static int op_status(conn *c, uint32_t tag)
{
	size_t len = 0;
	char *txt = status_text(AP(c), native_connections(c->srv), &len);
	if (!txt)
		return conn_error(c, tag, -ENOMEM, "status: out of memory");
	while (len && txt[len - 1] == '\n')
		len--;
	uint8_t h[WIRE_HDR_LEN];
	int r = wire_hdr_encode(h, WIRE_STATUS_OK, tag, (uint32_t)len);
	if (r >= 0)
		r = conn_send2(c, h, sizeof(h), txt, len);
	free(txt);
	return r;
}

int conn_serve_one(conn *c)
{
	wire_hdr h;
	wire_msg m;
	int r = conn_read_frame(c, &h, &m);
	if (r < 0)
		return r;
	switch (h.type) {
	case WIRE_PUT:
		return op_put(c, h.tag, &m.u.put);
	case WIRE_GET:
		return op_get(c, h.tag, &m.u.get);
	case WIRE_STAT:
		return op_stat(c, h.tag, &m.u.req);
	case WIRE_LIST:
		return op_list(c, h.tag, &m.u.req);
	case WIRE_MKDIR:
	case WIRE_RENAME:
	case WIRE_DELETE:
		return op_change(c, h.tag, h.type, &m);
	case WIRE_STATUS:
		return op_status(c, h.tag);
	case WIRE_PING: {
		uint8_t b[WIRE_CTRL_MAX];
		int n = wire_u64_encode(b, sizeof(b), WIRE_PONG, h.tag, m.u.ping.v);
		return n < 0 ? n : conn_send(c, b, (size_t)n);
	}
	default:
		conn_error(c, h.tag, -EPROTO, "%s is not a request", wire_type_name(h.type));
		return -EPROTO;
	}
}
