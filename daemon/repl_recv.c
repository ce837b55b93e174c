/* daemon/repl_recv.c: the twin side of replication: the TLS listener, one thread per
 * connection applying what the source sends, and the deletes held back for
 * delete_delay.
 *
 * A file arrives as FILE, then rounds of FP_LIST (the twin answers FP_NEED with the
 * chunks it lacks) and the needed CHUNKs, then FILE_END. The file is written with a
 * source-dedup store writer: chunks the twin has are referenced, the others are kept
 * as stored by the source after their SHA-256 was checked (store_stored_check,
 * outside appl.mu, then store_put_checked). A chunk another connection has asked
 * for is not asked for again; the writer waits for it (repl_claim.c). Only
 * after FILE_END's digest of the fingerprint stream matches is the object linked
 * under its path and synced (intent log); DONE then tells the source it may count
 * the file as replicated. A cut before that leaves no file; the chunks that arrived
 * stay in the store's index (until a collection) and are not asked for again.
 *
 * Deletes: DELETE records (path, the object there now, due time) in repl.deletes
 * beside the configuration and answers at once; the listener thread applies due
 * ones, each only if the same object is still at the path. So a source that deletes
 * (ransomware, a mistake) cannot empty the twin before delete_delay has passed.
 */
#include <config.h>

#include "daemon/repl_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/endian.h"
#include "common/xxh.h"
#include "daemon/log.h"
#include "dedup/segment.h"
#include "dedup/store_repl.h"

#define DELS_MAGIC "BKSRDEL1"
#define DELS_VERSION 1u

/* ---- pending deletes (repl.deletes) ----
 * magic 8 | version u32 | count u32 | entries (due u64, id u64, gen u64, path u16 +
 * bytes) | xxh3-64 of everything before it. Rewritten whole at every change (it holds
 * what is waiting for its delay: small). */

static int dels_save(repl *r)
{
	size_t n = 16 + 8;
	for (size_t i = 0; i < r->ndels; i++)
		n += 26 + strlen(r->dels[i].path);
	uint8_t *b = malloc(n), *p = b;
	if (!b)
		return -ENOMEM;
	memcpy(p, DELS_MAGIC, 8);
	le_put32(p + 8, DELS_VERSION);
	le_put32(p + 12, (uint32_t)r->ndels);
	p += 16;
	for (size_t i = 0; i < r->ndels; i++) {
		size_t pl = strlen(r->dels[i].path);
		le_put64(p, r->dels[i].due_s);
		le_put64(p + 8, r->dels[i].id);
		le_put64(p + 16, r->dels[i].gen);
		le_put16(p + 24, (uint16_t)pl);
		memcpy(p + 26, r->dels[i].path, pl);
		p += 26 + pl;
	}
	le_put64(p, bks_xxh3(b, (size_t)(p - b)));
	char path[1100];
	snprintf(path, sizeof(path), "%srepl.deletes", r->dir);
	int rc = repl_write_file(path, b, n, 0600);
	free(b);
	return rc;
}

static int dels_add(repl *r, uint64_t due, uint64_t id, uint64_t gen, const char *path)
{
	if (r->ndels == r->capdels) {
		size_t nc = r->capdels ? r->capdels * 2 : 64;
		rdel *nd = realloc(r->dels, nc * sizeof(*nd));
		if (!nd)
			return -ENOMEM;
		r->dels = nd;
		r->capdels = nc;
	}
	char *pc = strdup(path);
	if (!pc)
		return -ENOMEM;
	r->dels[r->ndels++] = (rdel){due, id, gen, pc};
	return 0;
}

int repl_dels_load(repl *r)
{
	char path[1100];
	snprintf(path, sizeof(path), "%srepl.deletes", r->dir);
	FILE *f = fopen(path, "rb");
	if (!f)
		return errno == ENOENT ? 0 : -errno;
	uint8_t *b = malloc(64u << 20);
	size_t n = b ? fread(b, 1, 64u << 20, f) : 0;
	fclose(f);
	int rc = -EINVAL;
	if (!b)
		return -ENOMEM;
	if (n >= 24 && !memcmp(b, DELS_MAGIC, 8) && le_get32(b + 8) == DELS_VERSION &&
	    le_get64(b + n - 8) == bks_xxh3(b, n - 8)) {
		uint32_t cnt = le_get32(b + 12);
		size_t pos = 16;
		rc = 0;
		for (uint32_t i = 0; i < cnt && rc == 0; i++) {
			if (pos + 26 > n - 8) {
				rc = -EINVAL;
				break;
			}
			uint16_t pl = le_get16(b + pos + 24);
			if (pos + 26 + pl > n - 8 || pl == 0 || pl > WIRE_PATH_MAX) {
				rc = -EINVAL;
				break;
			}
			char p[WIRE_PATH_MAX + 1];
			memcpy(p, b + pos + 26, pl);
			p[pl] = 0;
			rc = dels_add(r, le_get64(b + pos), le_get64(b + pos + 8), le_get64(b + pos + 16), p);
			pos += 26 + pl;
		}
	}
	free(b);
	if (rc < 0)
		LOG_E("repl: %s is damaged (%s): the deletes it held are dropped (the files stay)",
		      path, strerror(-rc));
	return rc;
}

/* Apply the deletes whose time has come (listener thread). The due ones are copied
 * out under r->mu (a connection may append meanwhile, moving the array), applied
 * under appl.mu alone, then dropped from the front, where they still are: only this
 * thread removes entries, and appends go to the end. */
static void dels_apply(repl *r)
{
	appl *ap = r->ap;
	uint64_t now = bks_wall_ns() / 1000000000ull;
	size_t done = 0;
	rdel *due = NULL;
	pthread_mutex_lock(&r->mu);
	/* A promoted twin does not apply what its old source asked for (promote drops
	 * them; this covers the moment in between). */
	int applying = r->role == ROLE_TWIN || r->role == ROLE_RESEED_TWIN;
	while (applying && done < r->ndels && r->dels[done].due_s <= now)
		done++;
	if (done && (due = malloc(done * sizeof(*due))) != NULL) {
		for (size_t i = 0; i < done; i++) {
			due[i] = r->dels[i];
			due[i].path = strdup(r->dels[i].path);
		}
	}
	pthread_mutex_unlock(&r->mu);
	if (!done || !due)
		return;
	for (size_t i = 0; i < done; i++) {
		rdel *d = &due[i];
		uint64_t dir;
		char name[NS_NAME_MAX + 1], esc[LOG_ESC_LEN];
		ns_attr a;
		if (!d->path)
			continue; /* out of memory: dropped, the file stays (the safe side) */
		appl_lock(ap);
		int rc = ns_resolve(ap->n, d->path, &a);
		if (rc == 0 && (a.id != d->id || a.gen != d->gen))
			rc = 1; /* another object there now: written since the delete */
		if (rc == 0)
			rc = ns_resolve_parent(ap->n, d->path, &dir, name);
		if (rc == 0)
			rc = a.type == NS_DIR ? ns_rmdir(ap->n, dir, name) : ns_unlink(ap->n, dir, name);
		appl_unlock(ap);
		if (rc == 0)
			LOG_I("repl: deleted %s (its delay passed)", log_escs(esc, sizeof(esc), d->path));
		else if (rc < 0 && rc != -ENOENT)
			LOG_I("repl: delayed delete of %s not applied: %s",
			      log_escs(esc, sizeof(esc), d->path), strerror(-rc));
		free(d->path);
	}
	free(due);
	/* The deletes are durable before they leave repl.deletes (a crash in between
	 * applies one twice: harmless, the object check finds nothing). */
	bks_err se = {0};
	appl_lock(ap);
	int sr = ns_sync(ap->n, ns_root(ap->n), &se);
	appl_unlock(ap);
	if (sr < 0) {
		LOG_E("repl: delayed deletes not synced (kept for a retry): %s", bks_errmsg(&se, sr));
		return;
	}
	pthread_mutex_lock(&r->mu);
	if (done > r->ndels)
		done = r->ndels; /* repl_dels_drop emptied the list meanwhile */
	for (size_t i = 0; i < done; i++)
		free(r->dels[i].path);
	memmove(r->dels, r->dels + done, (r->ndels - done) * sizeof(*r->dels));
	r->ndels -= done;
	int rc = dels_save(r);
	pthread_mutex_unlock(&r->mu);
	if (rc < 0)
		LOG_E("repl: cannot write repl.deletes: %s", strerror(-rc));
	appl_kick(ap);
}

/* Promotion, and a reseed's hand-back to a new source: the held-back deletes are not
 * applied (docs/architecture.md "Failover"); they are listed, appended to report
 * under a line that says whose they were (from) and when they were dropped (at), for
 * the admin to review, and the list emptied. Returns how many, or -errno (then
 * nothing was dropped). */
int repl_dels_drop(repl *r, const char *report, const char *from, const char *at)
{
	pthread_mutex_lock(&r->mu);
	size_t n = r->ndels;
	int rc = 0;
	if (n) {
		FILE *f = fopen(report, "a");
		if (!f) {
			rc = -errno;
		} else {
			time_t now = time(NULL);
			char when[40];
			struct tm tm;
			gmtime_r(&now, &tm);
			strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
			fprintf(f, "# %zu delete%s %s, dropped %s %s (the files stay); per line: "
			        "due (UTC seconds), object id, generation, path\n", n,
			        n == 1 ? "" : "s", from, at, when);
			for (size_t i = 0; i < n; i++)
				fprintf(f, "%llu %llu %llu %s\n", (unsigned long long)r->dels[i].due_s,
				        (unsigned long long)r->dels[i].id,
				        (unsigned long long)r->dels[i].gen, r->dels[i].path);
			if (fflush(f) != 0 || fsync(fileno(f)) < 0)
				rc = -errno;
			fclose(f);
		}
	}
	if (rc == 0 && n) {
		for (size_t i = 0; i < n; i++)
			free(r->dels[i].path);
		r->ndels = 0;
		rc = dels_save(r);
	}
	pthread_mutex_unlock(&r->mu);
	if (rc < 0)
		LOG_E("repl: the held-back deletes could not be dropped %s (%s): they stay held "
		      "and are not applied", at, strerror(-rc));
	return rc < 0 ? rc : (int)n;
}

/* ---- one connection ---- */

static void cstr(wire_str s, char *out, size_t cap)
{
	size_t n = s.len < cap - 1 ? s.len : cap - 1;
	if (n)
		memcpy(out, s.p, n); /* an absent string is a NULL view */
	out[n] = 0;
}

/* The directory and name for path, making missing parents (under appl.mu). */
static int target(ns *n, const char *path, uint64_t *dir, char *name)
{
	int rc = ns_resolve_parent(n, path, dir, name);
	if (rc == -ENOENT) {
		char parent[WIRE_PATH_MAX + 1];
		snprintf(parent, sizeof(parent), "%s", path);
		char *sl = strrchr(parent, '/');
		if (sl == parent)
			sl[1] = 0;
		else if (sl)
			*sl = 0;
		if ((rc = ns_mkdir_path(n, parent, 0755, NULL)) == 0)
			rc = ns_resolve_parent(n, path, dir, name);
	}
	return rc;
}

static int done_reply(rconn *c, uint64_t v)
{
	repl_msg m = {.type = REPL_DONE, .v = v};
	return repl_send_msg(c, &m, NULL, 0);
}

struct rfile {
	store_writer *w;
	wire_digest *dg;
	store_stored_ck *ck;         /* decode and SHA-256 outside appl.mu */
	wire_fp fps[WIRE_FP_MAX];
	uint8_t need[WIRE_FP_MAX / 8];
	uint8_t miss[WIRE_FP_MAX / 8]; /* the list's first look: not in the store */
	uint32_t nfp;
	uint32_t owner;              /* this file's claims (repl_claim.c) */
	int claimed;                 /* need[] has claims not dropped yet */
	uint64_t bytes;
	uint64_t unsynced;           /* stored bytes received since the last sync */
};
#define SYNC_EVERY (16u << 20)
#define KNOWN_RUN 256            /* known entries per hold of appl.mu */
#define FP_PF_SLICE 256u         /* FP_LIST lookups per prefetch (see rx_file) */

static void lock_ap(void *ap) { appl_lock(ap); }
static void unlock_ap(void *ap) { appl_unlock(ap); }

/* Drop the claims of the current list's needed entries (under appl.mu): those not
 * stored (a bad chunk, a cut) are then asked for again by whoever needs them. */
static void drop_claims(repl *r, struct rfile *f)
{
	if (!f->claimed)
		return;
	for (uint32_t i = 0; i < f->nfp; i++)
		if (wire_bit_get(f->need, i))
			repl_claims_drop(r->claims, f->fps[i].fp, f->fps[i].len, f->owner);
	repl_claims_round_end(r->claims);
	f->claimed = 0;
}

/* A FILE: its rounds and FILE_END. 0 after answering (DONE or ERROR), <0 when the
 * connection is broken. */
static int rx_file(repl *r, rconn *c, const repl_msg *fm)
{
	appl *ap = r->ap;
	char path[WIRE_PATH_MAX + 1], name[NS_NAME_MAX + 1], esc[LOG_ESC_LEN];
	repl_attr at = fm->attr;
	struct rfile *f = calloc(1, sizeof(*f));
	repl_msg m;
	bks_err e = {0};
	int rc, fatal = 0;
	uint64_t id = 0, dir, seq = 0;
	if (!f)
		return -ENOMEM;
	cstr(fm->path, path, sizeof(path));
	if (!(f->dg = wire_digest_new()) || store_stored_ck_new(&f->ck) < 0) {
		wire_digest_free(f->dg);
		free(f);
		return -ENOMEM;
	}
	appl_lock(ap);
	rc = store_put_begin(ap->s, &f->w);
	f->owner = repl_claims_owner(r->claims);
	appl_unlock(ap);
	/* A refusal (full store) is answered after the file's frames are read: the
	 * stream must stay in step. */
	for (;;) {
		if ((fatal = repl_read_msg(c, &m, &e)) < 0)
			goto out;
		if (m.type == REPL_FILE_END)
			break;
		if (m.type != REPL_FP_LIST) {
			fatal = -EPROTO;
			LOG_W("repl: %s: %s inside a file", c->peer, repl_type_name(m.type));
			goto out;
		}
		wire_digest_update(f->dg, m.fp_list.raw, (size_t)m.fp_list.count * WIRE_FP_ENTRY_LEN);
		f->nfp = m.fp_list.count;
		memset(f->need, 0, sizeof(f->need));
		for (uint32_t i = 0; i < f->nfp; i++)
			wire_fp_list_get(&m.fp_list, i, &f->fps[i]);
		memset(f->miss, 0, sizeof(f->miss));
		/* First look: a slice of FP_PF_SLICE at a time, each slice's index reads
		 * (entry blocks, segment tables: after a restart or a commit every block is
		 * cold) made just before without appl.mu, as the native PUT's FP_LIST
		 * (daemon/native_ops.c, FP_PF_SLICE): the lock is held for lookups that hit
		 * the caches, not for disk reads that would stall every client. */
		for (uint32_t from = 0; from < f->nfp && rc == 0; from += FP_PF_SLICE) {
			uint32_t to = BKS_MIN(from + FP_PF_SLICE, f->nfp);
			store_put_prefetch_fps(f->w, f->fps[from].fp, sizeof(f->fps[0]),
			                       (int)(to - from), lock_ap, unlock_ap, ap);
			appl_lock(ap);
			for (uint32_t i = from; i < to && rc == 0; i++) {
				int h = store_has_chunk(ap->s, f->fps[i].fp, f->fps[i].len);
				if (h == 0)
					wire_bit_set(f->miss, i);
				else if (h < 0)
					rc = h;
			}
			appl_unlock(ap);
		}
		/* Then the claims, all in one hold of appl.mu (repl_claim.c: a round that
		 * took some claims, let the lock go and took more could wait for a round
		 * that waits for it). Only what the first look found missing is looked up
		 * again here (mostly a Bloom filter's no, no read): another connection may
		 * have stored it since. Missing: asked for unless claimed already, by
		 * another connection or earlier in this list. What the first look found
		 * may be collected before it is referenced: store_put_known says so
		 * (EAGAIN, below), as it did when the lookups and the references were in
		 * different holds already. */
		appl_lock(ap);
		for (uint32_t i = 0; i < f->nfp && rc == 0; i++) {
			if (!wire_bit_get(f->miss, i))
				continue;
			int h = store_has_chunk(ap->s, f->fps[i].fp, f->fps[i].len);
			if (h == 0)
				h = repl_claims_take(r->claims, f->fps[i].fp, f->fps[i].len, f->owner);
			if (h == 0)
				wire_bit_set(f->need, i);
			else if (h < 0)
				rc = h;
		}
		f->claimed = 1;
		appl_unlock(ap);
		repl_msg nm = {.type = REPL_FP_NEED};
		nm.fp_need.count = f->nfp;
		nm.fp_need.bits = f->need;
		if ((fatal = repl_send_msg(c, &nm, NULL, 0)) < 0)
			goto out;
		for (uint32_t i = 0; i < f->nfp;) {
			if (!wire_bit_get(f->need, i)) {
				/* A run of chunks the twin has (or another connection brings):
				 * referenced under one hold of appl.mu. */
				uint32_t end = i;
				while (end < f->nfp && end - i < KNOWN_RUN && !wire_bit_get(f->need, end))
					end++;
				if (rc == 0) {
					appl_lock(ap);
					for (uint32_t j = i; j < end && rc == 0; j++) {
						const wire_fp *x = &f->fps[j];
						int k = repl_claims_wait(r->claims, ap, x->fp, x->len,
						                         &r->stopping);
						rc = k < 0 ? -EAGAIN : store_put_known(f->w, x->fp, x->len);
						/* 0: collected meanwhile, or its claimant failed */
						rc = rc == 1 ? 0 : rc == 0 ? -EAGAIN : rc;
						if (rc == 0)
							f->bytes += x->len;
					}
					appl_unlock(ap);
				}
				i = end;
				continue;
			}
			if ((fatal = repl_read_msg(c, &m, &e)) < 0)
				goto out;
			if (m.type != REPL_CHUNK || memcmp(m.fp, f->fps[i].fp, 32) ||
			    m.rlen != f->fps[i].len) {
				fatal = -EPROTO;
				LOG_W("repl: %s: expected CHUNK %u of a list, got %s", c->peer, i,
				      repl_type_name(m.type));
				goto out;
			}
			/* (several connections count: atomics, status reads them under r->mu) */
			__atomic_fetch_add(&r->rx_chunks, 1, __ATOMIC_RELAXED);
			__atomic_fetch_add(&r->rx_bytes, m.dlen, __ATOMIC_RELAXED);
			int codec = m.codec == REPL_CODEC_ZSTD ? SEG_ZSTD : SEG_RAW;
			/* A chunk the source has not compressed yet (its deferred compression,
			 * codec 2 from version 4) is stored raw and flagged, so this twin's own
			 * background pass compresses it at its zstd_level, as it would a
			 * chunk its own busy clients wrote. Only such chunks: a plain raw one
			 * is one the source's zstd could not shrink (tried once there), and
			 * flagging it would have this twin's pass rewrite its rows for
			 * nothing. A twin with zstd_level 0 keeps every chunk raw. */
			int put_codec = m.codec == REPL_CODEC_DEFERRED && ap->cfg.zstd_level > 0
			                ? SEG_RAW_DEFERRED : codec;
			/* Decoded and hashed outside appl.mu: other connections, and the
			 * appliance's clients, go on meanwhile. */
			int ck = rc == 0 ? store_stored_check(ap->s, f->ck, m.fp, m.data, m.dlen, m.rlen,
			                                      codec) : 0;
			appl_lock(ap);
			if (rc == 0) {
				rc = ck < 0 ? ck : store_put_checked(f->w, m.fp, m.data, m.dlen, m.rlen,
				                                     put_codec);
				f->unsynced += m.dlen;
				/* Per-file progress: the chunks of a file still arriving are made
				 * durable (the intent log; a replay indexes them) every SYNC_EVERY
				 * bytes, so after a crash of this twin the source is asked again
				 * only for what came since. Through the group commit: the sync
				 * runs after appl.mu is let go, shared with other connections. */
				if (rc == 0 && f->unsynced >= SYNC_EVERY) {
					seq = appl_change_seq(ap);
					f->unsynced = 0;
				}
				if (rc == 0)
					f->bytes += f->fps[i].len;
			}
			repl_claims_drop(r->claims, f->fps[i].fp, f->fps[i].len, f->owner);
			appl_unlock(ap);
			if (rc == -EBADMSG)
				LOG_W("repl: %s: %s: a chunk does not match its SHA-256: refused", c->peer,
				      log_escs(esc, sizeof(esc), path));
			if (seq) {
				bks_err se = {0};
				appl_durable(ap, seq, &se); /* progress only: a failure shows at the end */
				seq = 0;
			}
			i++;
		}
		appl_lock(ap);
		drop_claims(r, f);
		appl_unlock(ap);
	}
	uint8_t dig[WIRE_DIGEST_LEN];
	wire_digest_final(f->dg, dig);
	if (rc == 0 && (m.v != f->bytes || at.size != f->bytes || memcmp(dig, m.digest, sizeof(dig))))
		rc = -EBADMSG;
	appl_lock(ap);
	if (rc == 0) {
		rc = store_put_end(f->w, &id);
		f->w = NULL;
	}
	if (rc == 0) {
		ns_attr old;
		rc = target(ap->n, path, &dir, name);
		if (rc == 0 && ns_lookup(ap->n, dir, name, &old) == 0 && old.type != NS_FILE) {
			/* A symlink or an empty directory where the source now has a file. */
			rc = old.type == NS_DIR ? ns_rmdir(ap->n, dir, name) : ns_unlink(ap->n, dir, name);
		}
		if (rc == 0)
			rc = ns_link_new(ap->n, dir, name, id, 1, at.mode, at.uid, at.gid, at.mtime_ns, NULL);
		if (rc < 0)
			store_delete(ap->s, id);
		else
			seq = appl_change_seq(ap);
	}
	appl_unlock(ap);
	/* DONE only once durable; the sync is shared with the other connections' files
	 * that end at the same time (group commit). */
	if (rc == 0)
		rc = appl_durable(ap, seq, &e);
	if (rc < 0) {
		LOG_W("repl: %s: file %s not written: %s", c->peer, log_escs(esc, sizeof(esc), path),
		      bks_errmsg(&e, rc));
		fatal = repl_send_error(c, rc, "%s: %s", path, strerror(-rc));
	} else {
		__atomic_fetch_add(&r->rx_files, 1, __ATOMIC_RELAXED);
		fatal = done_reply(c, id);
	}
out:
	appl_lock(ap);
	drop_claims(r, f);
	if (f->w)
		store_put_abort(f->w);
	appl_unlock(ap);
	wire_digest_free(f->dg);
	store_stored_ck_free(f->ck);
	free(f);
	return fatal;
}

/* MKDIR, ATTR, SYMLINK, RENAME, DELETE, SYNC: one frame, one answer. */
static int rx_op(repl *r, rconn *c, const repl_msg *m)
{
	appl *ap = r->ap;
	char path[WIRE_PATH_MAX + 1], path2[WIRE_PATH_MAX + 1], name[NS_NAME_MAX + 1];
	char name2[NS_NAME_MAX + 1], esc[LOG_ESC_LEN];
	uint64_t dir, dir2, v = 0;
	ns_attr a;
	bks_err e = {0};
	int rc = 0;
	cstr(m->path, path, sizeof(path));
	cstr(m->path2, path2, sizeof(path2));
	appl_lock(ap);
	switch (m->type) {
	case REPL_MKDIR:
		rc = ns_mkdir_path(ap->n, path, m->attr.mode, &a);
		/* then the attributes as the source has them */
		__attribute__((fallthrough));
	case REPL_ATTR:
		if (rc == 0)
			rc = ns_resolve(ap->n, path, &a);
		if (rc == 0) {
			ns_attr na = a;
			na.mode = m->attr.mode;
			na.uid = m->attr.uid;
			na.gid = m->attr.gid;
			na.mtime_ns = m->attr.mtime_ns;
			rc = ns_setattr(ap->n, a.id, &na, NS_SET_MODE | NS_SET_UID | NS_SET_GID |
			                (a.type == NS_DIR ? 0 : NS_SET_MTIME));
		}
		break;
	case REPL_SYMLINK:
		if ((rc = target(ap->n, path, &dir, name)) == 0) {
			if (ns_lookup(ap->n, dir, name, &a) == 0)
				rc = a.type == NS_DIR ? ns_rmdir(ap->n, dir, name) : ns_unlink(ap->n, dir, name);
			if (rc == 0)
				rc = ns_symlink(ap->n, dir, name, path2, m->attr.mode, m->attr.uid,
				                m->attr.gid, &a);
		}
		break;
	case REPL_RENAME:
		if ((rc = ns_resolve_parent(ap->n, path, &dir, name)) == 0 &&
		    (rc = target(ap->n, path2, &dir2, name2)) == 0)
			rc = ns_rename(ap->n, dir, name, dir2, name2, 0);
		break;
	case REPL_DELETE:
		rc = ns_resolve(ap->n, path, &a);
		if (rc == 0) {
			pthread_mutex_lock(&r->mu);
			uint64_t due = bks_wall_ns() / 1000000000ull + r->delete_delay_s;
			rc = dels_add(r, due, a.id, a.gen, path);
			if (rc == 0)
				rc = dels_save(r);
			pthread_mutex_unlock(&r->mu);
		} else if (rc == -ENOENT) {
			rc = 0; /* nothing there: nothing to hold back */
		}
		break;
	case REPL_SYNC:
		v = m->v;
		break;
	}
	/* DONE means durable: the source counts the change as on the twin from then on
	 * and never sends it again. (A DELETE is durable in repl.deletes; SYNC commits.) */
	if (rc == 0 && (m->type == REPL_MKDIR || m->type == REPL_ATTR ||
	                m->type == REPL_SYMLINK || m->type == REPL_RENAME))
		rc = ns_sync(ap->n, ns_root(ap->n), &e);
	appl_unlock(ap);
	/* The end of a cycle: commit, so the twin's copy stands on its own. */
	if (m->type == REPL_SYNC)
		rc = appl_commit(ap, &e);
	if (rc < 0) {
		LOG_W("repl: %s: %s %s: %s", c->peer, repl_type_name(m->type),
		      log_escs(esc, sizeof(esc), path), bks_errmsg(&e, rc));
		return repl_send_error(c, rc, "%s %s: %s", repl_type_name(m->type), path,
		                       strerror(-rc));
	}
	if (m->type == REPL_DELETE)
		appl_kick(ap);
	return done_reply(c, v);
}

/* PAIR on a connection whose certificate is not pinned: the token decides. */
static int rx_pair(repl *r, rconn *c, const repl_msg *m)
{
	char tok[REPL_TOKEN_MAX + 1];
	cstr(m->text, tok, sizeof(tok));
	pthread_mutex_lock(&r->mu);
	int live = r->token[0] && bks_now_ns() < r->token_until_ns;
	/* Compare every byte whatever the first mismatch (no timing hint), then spend
	 * the token either way: one guess per token. */
	size_t tl = strlen(r->token), ml = strlen(tok);
	unsigned diff = (unsigned)(tl ^ ml);
	for (size_t i = 0; i < tl && i < ml; i++)
		diff |= (unsigned)(r->token[i] ^ tok[i]);
	int ok = live && diff == 0;
	memset(r->token, 0, sizeof(r->token));
	r->token_until_ns = 0;
	int rc = ok ? repl_pin_save(r, c->peer_fp, m->id, NULL) : 0;
	if (ok && rc == 0) {
		snprintf(r->pin_fp, sizeof(r->pin_fp), "%s", c->peer_fp);
		memcpy(r->pin_id, m->id, REPL_ID_LEN);
		r->pin_addr[0] = 0;
	}
	pthread_mutex_unlock(&r->mu);
	char idhex[2 * REPL_ID_LEN + 1];
	repl_hex(m->id, REPL_ID_LEN, idhex);
	if (!ok) {
		LOG_W("repl: %s: pairing refused: %s (certificate %s)", c->peer,
		      live ? "wrong token" : "no pairing token active", c->peer_fp);
		r->refused++;
		return repl_send_error(c, -EACCES, "pairing refused: %s",
		                       live ? "wrong token (it is spent: issue a new one)"
		                            : "no pairing token active on the twin");
	}
	if (rc < 0)
		return repl_send_error(c, rc, "cannot save the pin: %s", strerror(-rc));
	repl_ro_apply(r); /* a twin now: client writes are refused */
	appl_event_add(r->ap, CFG_LOG_INFO, "repl: paired with appliance %s (certificate "
	               "SHA-256 %s) from %s", idhex, c->peer_fp, c->peer);
	repl_msg ok_m = {.type = REPL_PAIR_OK};
	memcpy(ok_m.id, r->id, REPL_ID_LEN);
	return repl_send_msg(c, &ok_m, NULL, 0);
}

struct cthread {
	repl *r;
	int fd, slot;
	char peer[80];
};

static void *conn_main(void *arg)
{
	struct cthread *ct = arg;
	repl *r = ct->r;
	rconn c;
	repl_msg m;
	bks_err e = {0};
	int pair_only = 0, rc, hello = 0;
	if (repl_accept(r, ct->fd, ct->peer, &c, &pair_only) < 0)
		goto out;
	while (!r->stopping) {
		if ((rc = repl_read_msg(&c, &m, &e)) < 0) {
			if (rc != -ECONNRESET)
				LOG_W("repl: %s: %s", c.peer, bks_errmsg(&e, rc));
			break;
		}
		if (m.type == REPL_PAIR || m.type == REPL_RESEED) {
			if (m.type == REPL_PAIR)
				rx_pair(r, &c, &m);
			else
				repl_rx_reseed(r, &c, &m);
			break; /* pairing is the whole of such a connection */
		}
		if (pair_only) {
			LOG_W("repl: %s: %s from an unpinned certificate (%s): refused", c.peer,
			      repl_type_name(m.type), c.peer_fp);
			repl_send_error(&c, -EACCES, "not paired: only PAIR is accepted");
			break;
		}
		if (m.type == REPL_HELLO) {
			/* A source, or a promoted twin: refused (repl_failover.c). */
			if (repl_rx_hello(r, &c, &m) < 0)
				break;
			if (m.version < REPL_VERSION_MIN) {
				repl_send_error(&c, -EPROTONOSUPPORT, "version %u, this twin speaks %u to %u",
				                m.version, REPL_VERSION_MIN, REPL_VERSION);
				break;
			}
			/* The lower of the two: a newer source speaks this twin's version. */
			repl_msg ok = {.type = REPL_HELLO_OK,
			               .version = (uint16_t)BKS_MIN(m.version, REPL_VERSION)};
			memcpy(ok.id, r->id, REPL_ID_LEN);
			if (repl_send_msg(&c, &ok, NULL, 0) < 0)
				break;
			hello = 1;
			continue;
		}
		if (!hello) {
			repl_send_error(&c, -EPROTO, "HELLO first");
			break;
		}
		if (!repl_rx_allowed(r)) {
			/* Promoted while this source was connected: not one more change. */
			repl_send_error(&c, -EPERM, "this appliance was promoted: it no longer takes "
			                "replication from this source");
			break;
		}
		rc = m.type == REPL_FILE ? rx_file(r, &c, &m)
		     : m.type == REPL_IDENT ? repl_rx_ident(r, &c, &m)
		     : m.type == REPL_RESEED_END ? repl_rx_reseed_end(r, &c, &m)
		     : m.type == REPL_WANT ? repl_rx_want(r, &c, &m)
		     : m.type == REPL_FETCH ? repl_rx_fetch(r, &c, &m)
		     : (m.type == REPL_MKDIR || m.type == REPL_ATTR || m.type == REPL_SYMLINK ||
		        m.type == REPL_RENAME || m.type == REPL_DELETE || m.type == REPL_SYNC)
		         ? rx_op(r, &c, &m)
		         : -EPROTO;
		if (rc < 0) {
			if (rc == -EPROTO)
				repl_send_error(&c, rc, "%s not expected", repl_type_name(m.type));
			break;
		}
	}
	repl_conn_close(&c);
out:
	pthread_mutex_lock(&r->mu);
	r->conn_fds[ct->slot] = -1;
	r->nconns--;
	pthread_mutex_unlock(&r->mu);
	free(ct);
	return NULL;
}

static void *listen_main(void *arg)
{
	repl *r = arg;
	while (!r->stopping) {
		struct pollfd p[2] = {{r->lfd, POLLIN, 0}, {r->wake[0], POLLIN, 0}};
		int k = poll(p, 2, 1000);
		if (r->stopping)
			break;
		dels_apply(r);
		repl_wants_flush(r);
		if (k <= 0 || !(p[0].revents & POLLIN))
			continue;
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int fd = accept4(r->lfd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		char ip[64] = "?";
		uint16_t port = 0;
		if (ss.ss_family == AF_INET) {
			struct sockaddr_in *a = (struct sockaddr_in *)&ss;
			inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
			port = ntohs(a->sin_port);
		} else if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
			inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip));
			port = ntohs(a->sin6_port);
		}
		struct cthread *ct = calloc(1, sizeof(*ct));
		pthread_mutex_lock(&r->mu);
		int slot = -1;
		for (int i = 0; i < REPL_MAX_CONNS && slot < 0; i++)
			if (r->conn_fds[i] < 0)
				slot = i;
		if (slot >= 0 && ct) {
			r->conn_fds[slot] = fd;
			r->nconns++;
		}
		pthread_mutex_unlock(&r->mu);
		if (slot < 0 || !ct) {
			LOG_W("repl: %s:%u: too many connections: closed", ip, port);
			free(ct);
			close(fd);
			continue;
		}
		*ct = (struct cthread){r, fd, slot, ""};
		snprintf(ct->peer, sizeof(ct->peer), "%s:%u", ip, port);
		pthread_t th;
		pthread_attr_t at;
		pthread_attr_init(&at);
		pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
		if (pthread_create(&th, &at, conn_main, ct) != 0) {
			pthread_mutex_lock(&r->mu);
			r->conn_fds[slot] = -1;
			r->nconns--;
			pthread_mutex_unlock(&r->mu);
			close(fd);
			free(ct);
		}
		pthread_attr_destroy(&at);
	}
	return NULL;
}

int repl_listen_start(repl *r, bks_err *e)
{
	const cfg_addr *la = &r->ap->cfg.repl_listen;
	char host[CFG_HOST_MAX];
	snprintf(host, sizeof(host), "%s", la->family == CFG_AF_LOCALHOST ? "127.0.0.1" : la->host);
	for (int i = 0; i < REPL_MAX_CONNS; i++)
		r->conn_fds[i] = -1;
	int v6 = la->family == CFG_AF_INET6;
	struct sockaddr_in a4 = {.sin_family = AF_INET, .sin_port = htons(la->port)};
	struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_port = htons(la->port)};
	if ((v6 ? inet_pton(AF_INET6, host, &a6.sin6_addr) : inet_pton(AF_INET, host, &a4.sin_addr)) != 1)
		return bks_fail(e, -EINVAL, "[repl] listen: bad address %s", host);
	r->lfd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	int one = 1, rc = r->lfd < 0 ? -errno : 0;
	if (rc == 0) {
		setsockopt(r->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if ((v6 ? bind(r->lfd, (struct sockaddr *)&a6, sizeof(a6))
		        : bind(r->lfd, (struct sockaddr *)&a4, sizeof(a4))) < 0 ||
		    listen(r->lfd, 16) < 0)
			rc = -errno;
	}
	if (rc == 0 && pipe2(r->wake, O_CLOEXEC | O_NONBLOCK) < 0)
		rc = -errno;
	if (rc < 0) {
		if (r->lfd >= 0)
			close(r->lfd);
		r->lfd = -1;
		return bks_fail(e, rc, "[repl] listen %s:%u: %s", host, la->port, strerror(-rc));
	}
	if (pthread_create(&r->lth, NULL, listen_main, r) != 0) {
		close(r->lfd);
		r->lfd = -1;
		return bks_fail(e, -EAGAIN, "cannot start the replication listener");
	}
	r->lstarted = 1;
	LOG_I("repl: listening on %s:%u (TLS 1.3, pinned certificates)", host, la->port);
	return 0;
}

void repl_listen_stop(repl *r)
{
	if (!r->lstarted)
		return;
	r->stopping = 1;
	if (write(r->wake[1], "x", 1) < 0) {
		/* the poll times out within a second anyway */
	}
	pthread_join(r->lth, NULL);
	/* Wake the connection threads out of their reads; they close themselves. */
	for (int tries = 0;; tries++) {
		pthread_mutex_lock(&r->mu);
		int n = r->nconns;
		for (int i = 0; i < REPL_MAX_CONNS; i++)
			if (r->conn_fds[i] >= 0)
				shutdown(r->conn_fds[i], SHUT_RDWR);
		pthread_mutex_unlock(&r->mu);
		if (n == 0 || tries > 3000)
			break;
		usleep(10000);
	}
	close(r->lfd);
	close(r->wake[0]);
	close(r->wake[1]);
	r->lstarted = 0;
}
