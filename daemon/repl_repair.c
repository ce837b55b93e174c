/* daemon/repl_repair.c: a twin gets chunks again from its source when its own copy
 * is damaged beyond what its array reconstructs (docs/architecture.md "Replication",
 * "Repair"; docs/protocol.md "Replication", WANT).
 *
 * The twin side. Verify (appl.c) reads every chunk of every object; a chunk that
 * cannot be read correctly even with the array's reconstruction, or whose bytes do
 * not hash to its fingerprint, is handed to repl_repair_hook's callback, which adds
 * its fingerprint and length to the wanted list (repl.wanted beside the
 * configuration, at most REPL_WANTS_MAX entries). The twin cannot ask: it does not
 * know where its source is (it never connects; pin_addr is empty on its side). So
 * the source asks, at the end of every cycle and, when it has nothing to send, every
 * repair_interval: WANT; the twin answers WANT_LIST (up to the source's max of its
 * wanted chunks), the source WANT_HAVE (a bit per entry: the CHUNK follows) and the
 * CHUNKs it has, as its store keeps them; the twin checks each one's SHA-256 and
 * stores it again (store_repair_chunk: a fresh copy, the index pointing at it; every
 * map that references the fingerprint reads it through the index from then on),
 * commits, drops the repaired entries from the list, and answers DONE with their
 * number.
 *
 * Crash story: the list is saved (temporary file, fsync, rename) within a second
 * of a change by the listener thread (the verify callback runs under appl.mu and
 * does no I/O), and at once after a repair. A repair is durable with the commit
 * that follows the chunks; the entries leave the list only after it. A crash before
 * leaves the damaged copy and the entry: the next WANT asks again. A crash between
 * the commit and the list's save asks for a chunk that is good already:
 * store_repair_chunk finds the good copy and stores nothing.
 *
 * A list entry that a complete verify did not find bad again (the object was
 * deleted, the source sent the file again) is dropped at the end of that verify.
 *
 * The other way (protocol version 3): on a source the same hook queues the chunks its
 * verify finds bad on the same list, and since the twin has every chunk the source
 * replicated, the source fetches them back itself; it is the side that connects.
 * Within a moment of the first new entry (the sender thread looks every 200 ms), at
 * the end of every cycle while the list is not empty, and every repair_interval
 * while it has nothing else to send: FETCH (up to REPL_WANT_MAX entries); the twin
 * answers the CHUNKs it can give, as its store keeps them (read through its
 * checksums), in list order, then DONE with their number; the source checks each
 * one's SHA-256 (store_repair_chunk), commits, drops them from the list. Entries the
 * twin could not give go to the back of the list, so a long list is asked in turns.
 * Crash story: as the twin's (the list is saved by the sender thread too, since a
 * source need not listen). The list is one file whatever the role: after a promotion
 * or a reseed its entries are asked of whichever peer the new role has.
 */
#include <config.h>

#include "daemon/repl_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/endian.h"
#include "daemon/log.h"
#include "dedup/segment.h"
#include "dedup/store_repl.h"

#define WANTS_MAGIC "BKSRWNT1"
#define WANTS_VERSION 1u
#define WANTS_HDR 24             /* magic 8, version u32, count u32, repaired u64 */
#define WANT_ENT 44              /* fingerprint 32, raw length u32, since u64 */
#define WANT_BACKOFF_MAX 6       /* failed asks double the interval, up to 64 times */

/* ---- the list (repl.wanted) ----
 * magic 8 | version u32 | count u32 | repaired u64 (chunks repaired so far, for the
 * status) | count entries (fingerprint 32, raw length u32, first wanted: wall clock
 * seconds u64) | xxh3-64 of everything before it. Rewritten whole. */

static void wants_path(repl *r, char *out, size_t cap)
{
	snprintf(out, cap, "%srepl.wanted", r->dir);
}

/* Under r->mu. */
static int wants_save(repl *r)
{
	size_t n = WANTS_HDR + r->nwants * WANT_ENT + 8;
	uint8_t *b = malloc(n), *p;
	char path[1100];
	if (!b)
		return -ENOMEM;
	memcpy(b, WANTS_MAGIC, 8);
	le_put32(b + 8, WANTS_VERSION);
	le_put32(b + 12, (uint32_t)r->nwants);
	le_put64(b + 16, r->repaired);
	p = b + WANTS_HDR;
	for (size_t i = 0; i < r->nwants; i++, p += WANT_ENT) {
		memcpy(p, r->wants[i].fp, 32);
		le_put32(p + 32, r->wants[i].len);
		le_put64(p + 36, r->wants[i].since_s);
	}
	le_put64(p, bks_xxh3(b, (size_t)(p - b)));
	wants_path(r, path, sizeof(path));
	int rc = repl_write_file(path, b, n, 0600);
	free(b);
	if (rc == 0)
		r->wants_dirty = 0;
	return rc;
}

static int wants_alloc(repl *r)
{
	if (!r->wants && !(r->wants = calloc(REPL_WANTS_MAX, sizeof(*r->wants))))
		return -ENOMEM;
	return 0;
}

int repl_wants_load(repl *r)
{
	char path[1100];
	wants_path(r, path, sizeof(path));
	FILE *f = fopen(path, "rb");
	if (!f)
		return errno == ENOENT ? 0 : -errno;
	size_t cap = WANTS_HDR + REPL_WANTS_MAX * WANT_ENT + 8 + 1;
	uint8_t *b = malloc(cap);
	size_t n = b ? fread(b, 1, cap, f) : 0;
	fclose(f);
	if (!b)
		return -ENOMEM;
	int rc = -EINVAL;
	if (n >= WANTS_HDR + 8 && n < cap && !memcmp(b, WANTS_MAGIC, 8) &&
	    le_get32(b + 8) == WANTS_VERSION && le_get64(b + n - 8) == bks_xxh3(b, n - 8)) {
		uint32_t cnt = le_get32(b + 12);
		if (cnt <= REPL_WANTS_MAX && n == WANTS_HDR + (size_t)cnt * WANT_ENT + 8 &&
		    (rc = cnt ? wants_alloc(r) : 0) == 0) {
			r->repaired = le_get64(b + 16);
			const uint8_t *p = b + WANTS_HDR;
			for (uint32_t i = 0; i < cnt; i++, p += WANT_ENT) {
				rwant *w = &r->wants[r->nwants];
				memcpy(w->fp, p, 32);
				w->len = le_get32(p + 32);
				w->since_s = le_get64(p + 36);
				w->vgen = 0; /* verify runs count from this start */
				if (w->len > 0 && w->len <= WIRE_CHUNK_MAX)
					r->nwants++;
			}
		}
	}
	free(b);
	if (rc < 0)
		LOG_E("repl: %s is damaged (%s): the chunks it listed for repair are forgotten "
		      "(the next verify finds them again)", path, strerror(-rc));
	else if (r->nwants)
		LOG_I("repl: %zu damaged chunks wait for a good copy from the source", r->nwants);
	return rc;
}

void repl_wants_free(repl *r)
{
	free(r->wants);
	r->wants = NULL;
	r->nwants = 0;
}

void repl_wants_flush(repl *r)
{
	pthread_mutex_lock(&r->mu);
	int rc = r->wants_dirty ? wants_save(r) : 0;
	pthread_mutex_unlock(&r->mu);
	if (rc < 0)
		LOG_E("repl: cannot write repl.wanted: %s (retried)", strerror(-rc));
}

static rwant *want_find(repl *r, const uint8_t fp[32])
{
	for (size_t i = 0; i < r->nwants; i++)
		if (!memcmp(r->wants[i].fp, fp, 32))
			return &r->wants[i];
	return NULL;
}

/* ---- verify's callbacks (under appl.mu; r->mu inside it, as everywhere) ---- */

/* Is this appliance a twin that can be repaired (it listens, is paired, and does
 * not send itself)? Under r->mu. */
static int is_twin(repl *r)
{
	return r->lstarted && r->pin_fp[0] && !r->ap->cfg.repl_peer_set && !r->pin_addr[0];
}

/* Whom this appliance's bad chunks are wanted from: APPL_REPAIR_FROM_SOURCE (a twin:
 * its source sends them, WANT), APPL_REPAIR_FROM_TWIN (a source: it fetches them,
 * FETCH), 0 (neither: not queued). Under r->mu. */
static int wants_from(repl *r)
{
	if (r->role == ROLE_SOURCE && r->pin_fp[0])
		return APPL_REPAIR_FROM_TWIN;
	return is_twin(r) ? APPL_REPAIR_FROM_SOURCE : 0;
}

static void hook_begin(void *ctx)
{
	repl *r = ctx;
	pthread_mutex_lock(&r->mu);
	r->vgen++;
	pthread_mutex_unlock(&r->mu);
}

static int hook_bad(void *ctx, const store_verify_bad *b)
{
	repl *r = ctx;
	int queued = 0;
	pthread_mutex_lock(&r->mu);
	int from = wants_from(r);
	rwant *w = from ? want_find(r, b->fp) : NULL;
	if (w) {
		queued = w->vgen != r->vgen; /* the first time in this verify */
		w->vgen = r->vgen;
	} else if (from && b->len > 0 && b->len <= WIRE_CHUNK_MAX) {
		if (r->nwants < REPL_WANTS_MAX && wants_alloc(r) == 0) {
			w = &r->wants[r->nwants++];
			memcpy(w->fp, b->fp, 32);
			w->len = b->len;
			w->since_s = bks_wall_ns() / 1000000000ull;
			w->vgen = r->vgen;
			r->wants_dirty = 1;
			queued = 1;
			if (from == APPL_REPAIR_FROM_TWIN) {
				/* The sender asks at once (it waits on scv). */
				r->fetch_new = 1;
				pthread_cond_broadcast(&r->scv);
			}
		} else {
			r->wants_full++;
		}
	}
	pthread_mutex_unlock(&r->mu);
	return queued ? from : 0;
}

/* A verify went through every object: an entry it did not find bad is not wanted
 * (the object went, or its file was sent again and the chunk stored afresh). */
static void hook_end(void *ctx)
{
	repl *r = ctx;
	pthread_mutex_lock(&r->mu);
	size_t k = 0;
	for (size_t i = 0; i < r->nwants; i++)
		if (r->wants[i].vgen == r->vgen)
			r->wants[k++] = r->wants[i];
	if (k != r->nwants) {
		r->nwants = k;
		r->wants_dirty = 1;
	}
	pthread_mutex_unlock(&r->mu);
}

void repl_repair_hook(repl *r, int on)
{
	appl *ap = r->ap;
	appl_lock(ap);
	if (on)
		ap->vhook = (appl_verify_hook){hook_begin, hook_bad, hook_end, r};
	else
		memset(&ap->vhook, 0, sizeof(ap->vhook));
	appl_unlock(ap);
}

/* After an exchange (under r->mu): the asked entries that were stored again (ok[i])
 * leave the list; those the peer could not give go to its back, so the next ask
 * takes the others first (a list longer than one ask is asked in turns). The list
 * may have changed since it was read (a verify ended, another was queued): entries
 * are found by fingerprint. */
static void wants_settle(repl *r, const wire_fp *ask, const uint8_t *ok, uint32_t n)
{
	size_t k = 0, nb = 0;
	for (size_t i = 0; i < r->nwants; i++)
		r->wants[i].mark = 0;
	for (uint32_t i = 0; i < n; i++) {
		rwant *w = want_find(r, ask[i].fp);
		if (w)
			w->mark = ok[i] ? 2 : 1;
	}
	rwant *back = NULL;
	for (size_t i = 0; i < r->nwants; i++)
		nb += r->wants[i].mark == 1;
	if (nb && !(back = malloc(nb * sizeof(*back))))
		nb = 0; /* out of memory: the order stays as it is */
	size_t b = 0;
	for (size_t i = 0; i < r->nwants; i++) {
		rwant *w = &r->wants[i];
		if (w->mark == 2)
			continue;
		if (w->mark == 1 && back)
			back[b++] = *w;
		else
			r->wants[k++] = *w;
	}
	if (back)
		memcpy(r->wants + k, back, b * sizeof(*back));
	free(back);
	if (k + b != r->nwants || b) {
		r->nwants = k + b;
		r->wants_dirty = 1;
	}
}

/* ---- storing what a peer sends for repair (the twin's WANT, the source's FETCH) ---- */

typedef struct tally {
	uint32_t received;       /* CHUNKs that came */
	uint32_t stored;         /* stored again (the damaged copy replaced) */
	uint32_t good;           /* the copy here was good already: nothing stored */
	uint32_t refused;        /* not the chunk's bytes: never kept, asked again */
	int rc;                  /* the store failed (<0): the rest is read, not kept */
} tally;

/* A CHUNK the peer sent for entry *ok of the list (matched by the caller): into the
 * store as a fresh copy (store_repair_chunk checks its SHA-256). how: "sent",
 * "fetched" (the log says which exchange). */
static void take_chunk(repl *r, rconn *c, const repl_msg *cm, uint8_t *ok, tally *t,
                       const char *how)
{
	appl *ap = r->ap;
	/* (the listener's other connections count with atomics too: repl_recv.c) */
	__atomic_fetch_add(&r->rx_chunks, 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&r->rx_bytes, cm->dlen, __ATOMIC_RELAXED);
	t->received++;
	if (t->rc < 0)
		return; /* the store failed: read the rest, keep nothing */
	appl_lock(ap);
	int k = store_repair_chunk(ap->s, cm->fp, cm->data, cm->dlen, cm->rlen,
	                           cm->codec == REPL_CODEC_ZSTD ? SEG_ZSTD : SEG_RAW);
	appl_unlock(ap);
	char hx[REPL_FP_HEX];
	repl_hex(cm->fp, 32, hx);
	if (k >= 0) {
		*ok = 1;
		t->stored += k == 1;
		t->good += k == 0;
	} else if (k == -EBADMSG || k == -EINVAL) {
		/* Not the chunk's bytes (or not decodable): never kept; asked again. */
		t->refused++;
		LOG_W("repl: %s: chunk %s %s for repair does not match its SHA-256: refused",
		      c->peer, hx, how);
	} else {
		t->rc = k;
		LOG_E("repl: chunk %s from %s not stored again: %s", hx, c->peer, strerror(-k));
	}
}

/* The exchange's chunks are in: the fresh copies made durable (a commit), and only
 * then forgotten by the list, which is saved. lacked: entries the peer could not
 * give. Returns t->rc or the commit's error (then nothing leaves the list: asked
 * again, and every chunk that came counts as failed); *left: the entries still
 * wanted. */
static int settle_exchange(repl *r, const wire_fp *ask, const uint8_t *ok, uint32_t n,
                           uint32_t lacked, tally *t, size_t *left)
{
	bks_err e = {0};
	int rc = t->rc;
	if (rc == 0 && t->stored && (rc = appl_commit(r->ap, &e)) < 0)
		LOG_E("repl: the commit after a repair failed: %s (asked again)", bks_errmsg(&e, rc));
	pthread_mutex_lock(&r->mu);
	r->repair_refused += t->refused;
	r->repair_received += t->received;
	r->repair_lacked += lacked;
	r->repair_failed += lacked + (rc < 0 ? t->received : t->refused);
	if (rc == 0) {
		wants_settle(r, ask, ok, n);
		r->repaired += t->stored;
		if (t->stored)
			r->last_repair_wall_ns = bks_wall_ns();
	}
	int sr = r->wants_dirty ? wants_save(r) : 0;
	*left = r->nwants;
	pthread_mutex_unlock(&r->mu);
	if (sr < 0)
		LOG_E("repl: cannot write repl.wanted: %s (retried)", strerror(-sr));
	return rc;
}

/* ---- the twin: a WANT from the source ---- */

int repl_rx_want(repl *r, rconn *c, const repl_msg *m)
{
	appl *ap = r->ap;
	wire_fp *ask = NULL;
	uint8_t *ok = NULL;
	repl_msg h;
	bks_err e = {0};
	tally t = {0};
	uint32_t n = 0;
	int fatal;
	if (!(ask = malloc(REPL_WANT_MAX * sizeof(*ask))) || !(ok = calloc(REPL_WANT_MAX, 1))) {
		free(ask);
		return repl_send_error(c, -ENOMEM, "WANT: out of memory");
	}
	pthread_mutex_lock(&r->mu);
	for (size_t i = 0; i < r->nwants && n < m->want_max && n < REPL_WANT_MAX; i++) {
		memcpy(ask[n].fp, r->wants[i].fp, 32);
		ask[n++].len = r->wants[i].len;
	}
	pthread_mutex_unlock(&r->mu);
	repl_msg lm = {.type = REPL_WANT_LIST};
	if ((fatal = repl_send_msg(c, &lm, ask, n)) < 0 || n == 0)
		goto out;
	if ((fatal = repl_read_msg(c, &h, &e)) < 0)
		goto out;
	if (h.type != REPL_WANT_HAVE || h.fp_need.count != n) {
		LOG_W("repl: %s: expected WANT_HAVE for %u chunks, got %s", c->peer, n,
		      repl_type_name(h.type));
		fatal = -EPROTO;
		goto out;
	}
	uint8_t have[REPL_WANT_MAX / 8];
	memcpy(have, h.fp_need.bits, WIRE_BITMAP_BYTES(n));
	for (uint32_t i = 0; i < n; i++) {
		if (!wire_bit_get(have, i))
			continue;
		repl_msg cm;
		if ((fatal = repl_read_msg(c, &cm, &e)) < 0)
			goto out;
		if (cm.type != REPL_CHUNK || memcmp(cm.fp, ask[i].fp, 32) || cm.rlen != ask[i].len) {
			LOG_W("repl: %s: expected CHUNK %u of a WANT_LIST, got %s", c->peer, i,
			      repl_type_name(cm.type));
			fatal = -EPROTO;
			goto out;
		}
		take_chunk(r, c, &cm, &ok[i], &t, "sent");
	}
	uint32_t lacked = 0; /* the entries the source cannot give (their bits clear) */
	for (uint32_t i = 0; i < n; i++)
		lacked += !wire_bit_get(have, i);
	size_t left;
	int rc = settle_exchange(r, ask, ok, n, lacked, &t, &left);
	if (rc == 0 && t.stored + t.good)
		appl_event_add(ap, CFG_LOG_INFO, "repl: %u damaged chunks repaired with good copies "
		               "from the source%s; %zu still wanted", t.stored + t.good,
		               t.good ? " (some were good already)" : "", left);
	if (rc < 0) {
		fatal = repl_send_error(c, rc, "repair: %s", strerror(-rc));
	} else {
		repl_msg dm = {.type = REPL_DONE, .v = t.stored + t.good};
		fatal = repl_send_msg(c, &dm, NULL, 0);
	}
out:
	free(ask);
	free(ok);
	return fatal;
}

/* ---- the source: ask, send ---- */

int repl_want_due(repl *r, int connected)
{
	pthread_mutex_lock(&r->mu);
	uint64_t every = (uint64_t)r->repair_interval_s * 1000000000ull
	                 << BKS_MIN(r->want_fails, (uint32_t)WANT_BACKOFF_MAX);
	int due = (connected && !r->want_fails) || !r->last_want_ns ||
	          bks_now_ns() - r->last_want_ns >= every;
	pthread_mutex_unlock(&r->mu);
	return due;
}

/* The stored bytes of chunk w into sbuf: 0, or <0 when this store cannot give it
 * (it does not have it, or its copy is damaged too). */
static int read_wanted(repl *r, const wire_fp *w, uint8_t *sbuf, uint32_t *slen, int *codec)
{
	appl_lock(r->ap);
	int rc = store_chunk_stored(r->ap->s, w->fp, w->len, sbuf, STORE_STORED_MAX, slen, codec);
	appl_unlock(r->ap);
	return rc;
}

int repl_tx_want(repl *r, rconn *c, uint8_t *sbuf, uint64_t *mark, uint64_t *next_ns,
                 char *why, size_t wcap)
{
	wire_fp *want = NULL;
	repl_msg m;
	bks_err e = {0};
	uint32_t n = 0, sent = 0, missing = 0;
	uint8_t have[REPL_WANT_MAX / 8];
	int rc;
	repl_msg wm = {.type = REPL_WANT, .want_max = REPL_WANT_MAX};
	pthread_mutex_lock(&r->mu);
	r->last_want_ns = bks_now_ns();
	r->want_fails++; /* until the twin answers */
	pthread_mutex_unlock(&r->mu);
	if ((rc = repl_send_msg(c, &wm, NULL, 0)) < 0 || (rc = repl_read_msg(c, &m, &e)) < 0) {
		/* A twin of an older build closes the connection on a frame type it does
		 * not know: asked again after a longer and longer wait. */
		snprintf(why, wcap, "WANT: %s (a twin of an older build?)", bks_errmsg(&e, rc));
		return rc;
	}
	if (m.type == REPL_ERROR) {
		snprintf(why, wcap, "WANT refused: %.*s", (int)m.text.len, m.text.p);
		return 1;
	}
	if (m.type != REPL_WANT_LIST) {
		snprintf(why, wcap, "WANT answered with %s", repl_type_name(m.type));
		return -EPROTO;
	}
	n = m.want_list.count;
	pthread_mutex_lock(&r->mu);
	r->want_fails = 0;
	pthread_mutex_unlock(&r->mu);
	if (n == 0)
		return 0;
	if (!(want = malloc(n * sizeof(*want))))
		return -ENOMEM; /* the twin waits for WANT_HAVE: the connection goes */
	for (uint32_t i = 0; i < n; i++)
		wire_fp_list_get(&m.want_list, i, &want[i]);
	/* Which ones this store can give: read each (its checksum checked) now, and
	 * again to send it (one chunk's buffer). */
	memset(have, 0, sizeof(have));
	for (uint32_t i = 0; i < n; i++) {
		uint32_t slen;
		int codec;
		if (read_wanted(r, &want[i], sbuf, &slen, &codec) == 0)
			wire_bit_set(have, i);
		else
			missing++;
	}
	repl_msg hm = {.type = REPL_WANT_HAVE};
	hm.fp_need.count = n;
	hm.fp_need.bits = have;
	if ((rc = repl_send_msg(c, &hm, NULL, 0)) < 0)
		goto out;
	for (uint32_t i = 0; i < n; i++) {
		if (!wire_bit_get(have, i))
			continue;
		uint32_t slen;
		int codec;
		if (read_wanted(r, &want[i], sbuf, &slen, &codec) < 0) {
			/* Gone or damaged since the first read: the stream must go on, so
			 * bytes the twin refuses (they do not hash to the fingerprint). */
			memset(sbuf, 0, want[i].len);
			slen = want[i].len;
			codec = SEG_RAW;
		}
		repl_msg cm = {.type = REPL_CHUNK, .rlen = want[i].len, .codec = codec == SEG_ZSTD,
		               .dlen = slen};
		memcpy(cm.fp, want[i].fp, 32);
		uint8_t hdr[REPL_HDR_LEN + 64];
		int hn = repl_msg_encode(hdr, sizeof(hdr), &cm, NULL, 0);
		if (hn < 0) {
			rc = hn;
			goto out;
		}
		/* [repl] bwlimit holds for repairs too: what went since the last count
		 * and this chunk wait their turn in the cycle's bucket before it goes. */
		repl_pace(r, repl_count_wire(r, c, mark) + (uint64_t)hn + slen, next_ns);
		if ((rc = repl_send(c, hdr, (size_t)hn)) < 0 || (rc = repl_send(c, sbuf, slen)) < 0)
			goto out;
		repl_count_wire(r, c, mark); /* counted; paced above */
		sent++;
		if (log_get_level() >= CFG_LOG_DEBUG) {
			char hx[REPL_FP_HEX];
			repl_hex(cm.fp, 32, hx);
			LOG_D("repl: sent chunk %s for repair", hx);
		}
	}
	uint64_t done = 0;
	if ((rc = repl_read_msg(c, &m, &e)) < 0) {
		snprintf(why, wcap, "%s", bks_errmsg(&e, rc));
		goto out;
	}
	if (m.type == REPL_DONE) {
		done = m.v;
	} else if (m.type == REPL_ERROR) {
		snprintf(why, wcap, "the twin could not store the chunks: %.*s", (int)m.text.len,
		         m.text.p);
		rc = 1;
	} else {
		snprintf(why, wcap, "the repair answered with %s", repl_type_name(m.type));
		rc = -EPROTO;
	}
	pthread_mutex_lock(&r->mu);
	r->repair_sent += sent;
	r->repair_missing += missing;
	pthread_mutex_unlock(&r->mu);
	if (rc == 0)
		appl_event_add(r->ap, CFG_LOG_INFO, "repl: the twin wanted %u damaged chunks again: "
		               "%u sent, %llu repaired there%s", n, sent, (unsigned long long)done,
		               missing ? ", some are not (or not readable) here" : "");
out:
	free(want);
	if (rc < 0 && !why[0])
		snprintf(why, wcap, "%s", strerror(-rc));
	return rc;
}

/* ---- the other way: a source's damaged chunks fetched back from its twin ---- */

/* The twin: the chunks of a FETCH it can give, in list order, then DONE. */
int repl_rx_fetch(repl *r, rconn *c, const repl_msg *m)
{
	uint32_t n = m->want_list.count, sent = 0, missing = 0;
	wire_fp *ask = malloc(n * sizeof(*ask));
	uint8_t *sbuf = malloc(STORE_STORED_MAX);
	int rc = 0;
	if (!ask || !sbuf) {
		free(ask);
		free(sbuf);
		return repl_send_error(c, -ENOMEM, "FETCH: out of memory");
	}
	for (uint32_t i = 0; i < n; i++)
		wire_fp_list_get(&m->want_list, i, &ask[i]);
	for (uint32_t i = 0; i < n; i++) {
		uint32_t slen;
		int codec;
		/* Read through its checksums (the array repairs what it can); a chunk this
		 * store does not have, or cannot read either, is left out. */
		if (read_wanted(r, &ask[i], sbuf, &slen, &codec) < 0) {
			missing++;
			continue;
		}
		repl_msg cm = {.type = REPL_CHUNK, .rlen = ask[i].len, .codec = codec == SEG_ZSTD,
		               .dlen = slen};
		memcpy(cm.fp, ask[i].fp, 32);
		uint8_t hdr[REPL_HDR_LEN + 64];
		int hn = repl_msg_encode(hdr, sizeof(hdr), &cm, NULL, 0);
		if (hn < 0) {
			rc = hn; /* the stream is cut mid-answer: the connection goes */
			goto out;
		}
		/* This appliance's [repl] bwlimit holds for what it gives back, in a
		 * bucket of its own (a twin sends nothing else). */
		repl_pace(r, (uint64_t)hn + slen, &r->answer_pace_ns);
		if ((rc = repl_send(c, hdr, (size_t)hn)) < 0 || (rc = repl_send(c, sbuf, slen)) < 0)
			goto out;
		sent++;
	}
	repl_msg dm = {.type = REPL_DONE, .v = sent};
	if ((rc = repl_send_msg(c, &dm, NULL, 0)) < 0)
		goto out;
	if (sent) /* (a source asks again every repair_interval for what is not here) */
		appl_event_add(r->ap, CFG_LOG_INFO, "repl: the source fetched %u of its damaged "
		               "chunks back: %u sent%s", n, sent,
		               missing ? ", some are not (or not readable) here" : "");
out:
	pthread_mutex_lock(&r->mu);
	r->repair_sent += sent;
	r->repair_missing += missing;
	pthread_mutex_unlock(&r->mu);
	free(ask);
	free(sbuf);
	return rc;
}

int repl_fetch_due(repl *r)
{
	pthread_mutex_lock(&r->mu);
	uint64_t every = (uint64_t)r->repair_interval_s * 1000000000ull
	                 << BKS_MIN(r->fetch_fails, (uint32_t)WANT_BACKOFF_MAX);
	int due = r->nwants && wants_from(r) == APPL_REPAIR_FROM_TWIN &&
	          ((r->fetch_new && !r->fetch_fails) || !r->last_fetch_ns ||
	           bks_now_ns() - r->last_fetch_ns >= every);
	pthread_mutex_unlock(&r->mu);
	return due;
}

/* Index of the entry of ask[from..n) that CHUNK cm answers, or -1. */
static int fetch_match(const wire_fp *ask, uint32_t from, uint32_t n, const repl_msg *cm)
{
	for (uint32_t i = from; i < n; i++)
		if (!memcmp(ask[i].fp, cm->fp, 32))
			return ask[i].len == cm->rlen ? (int)i : -1;
	return -1;
}

int repl_tx_fetch(repl *r, rconn *c, unsigned ver, char *why, size_t wcap)
{
	appl *ap = r->ap;
	wire_fp *ask = NULL;
	uint8_t *ok = NULL;
	bks_err e = {0};
	tally t = {0};
	uint32_t n = 0, got = 0, next = 0;
	int rc = 0, fatal = 0;
	if (!(ask = malloc(REPL_WANT_MAX * sizeof(*ask))) || !(ok = calloc(REPL_WANT_MAX, 1))) {
		free(ask);
		snprintf(why, wcap, "FETCH: out of memory");
		return 1;
	}
	pthread_mutex_lock(&r->mu);
	r->last_fetch_ns = bks_now_ns();
	r->fetch_new = 0;
	for (size_t i = 0; i < r->nwants && n < REPL_WANT_MAX; i++) {
		memcpy(ask[n].fp, r->wants[i].fp, 32);
		ask[n++].len = r->wants[i].len;
	}
	size_t listed = r->nwants;
	if (n)
		r->fetch_fails++; /* until the twin answers */
	pthread_mutex_unlock(&r->mu);
	if (n == 0)
		goto out;
	if (ver < 3) {
		/* A twin of an older build does not know FETCH (it would close the
		 * connection): asked again after a longer and longer wait. */
		snprintf(why, wcap, "%zu damaged chunks here wait for the twin, whose build "
		         "cannot give them back (protocol version %u; FETCH needs 3)", listed, ver);
		rc = 1;
		goto out;
	}
	repl_msg fm = {.type = REPL_FETCH};
	if ((fatal = repl_send_msg(c, &fm, ask, n)) < 0) {
		snprintf(why, wcap, "FETCH: %s", strerror(-fatal));
		goto out;
	}
	/* CHUNK x (those the twin can give, in list order), DONE: nothing else. */
	for (;;) {
		repl_msg cm;
		if ((fatal = repl_read_msg(c, &cm, &e)) < 0) {
			snprintf(why, wcap, "FETCH: %s", bks_errmsg(&e, fatal));
			goto out;
		}
		if (cm.type == REPL_DONE) {
			if (cm.v != got) {
				snprintf(why, wcap, "FETCH: the twin's DONE counts %llu chunks, %u came",
				         (unsigned long long)cm.v, got);
				fatal = -EPROTO;
				goto out;
			}
			break;
		}
		if (cm.type == REPL_ERROR) {
			snprintf(why, wcap, "FETCH refused: %.*s", (int)cm.text.len, cm.text.p);
			rc = 1;
			break;
		}
		int i = cm.type == REPL_CHUNK ? fetch_match(ask, next, n, &cm) : -1;
		if (i < 0) {
			snprintf(why, wcap, "FETCH answered with %s%s", repl_type_name(cm.type),
			         cm.type == REPL_CHUNK ? " of a chunk not asked for (or out of order)"
			                               : "");
			fatal = -EPROTO;
			goto out;
		}
		next = (uint32_t)i + 1;
		got++;
		take_chunk(r, c, &cm, &ok[i], &t, "fetched");
	}
	/* The answer came: the twin speaks FETCH. */
	pthread_mutex_lock(&r->mu);
	r->fetch_fails = 0;
	pthread_mutex_unlock(&r->mu);
	size_t left = 0;
	if (rc == 0 && (rc = settle_exchange(r, ask, ok, n, n - got, &t, &left)) < 0)
		snprintf(why, wcap, "repair: %s", strerror(-rc));
	uint32_t stored = t.stored, good = t.good;
	/* An event when chunks were repaired, and once when the twin has none of those
	 * asked (not again every repair_interval while it stays so). */
	pthread_mutex_lock(&r->mu);
	int say = rc == 0 && (stored + good || !r->fetch_lack_said);
	if (rc == 0)
		r->fetch_lack_said = stored + good == 0;
	pthread_mutex_unlock(&r->mu);
	if (say)
		appl_event_add(ap, stored + good == n ? CFG_LOG_INFO : CFG_LOG_WARN,
		               "repl: %u of %u damaged chunks repaired with good copies from the "
		               "twin%s%s; %zu still wanted", stored + good, n,
		               good ? " (some were good already)" : "",
		               got < n ? " (the twin could not give the others)" : "", left);
	if (rc < 0)
		rc = 1; /* the store's trouble, not the connection's */
out:
	free(ask);
	free(ok);
	return fatal < 0 ? fatal : rc;
}

void repl_repair_json(repl *r, json *j)
{
	json_obj_begin(j, "repair");
	int from = wants_from(r);
	json_str(j, "wanted_from", from == APPL_REPAIR_FROM_TWIN ? "twin"
	                           : from == APPL_REPAIR_FROM_SOURCE ? "source" : NULL);
	json_uint(j, "chunks_wanted", r->nwants);
	json_uint(j, "chunks_repaired", r->repaired);
	json_uint(j, "chunks_refused", r->repair_refused);
	json_uint(j, "chunks_not_queued", r->wants_full);
	json_uint(j, "last_repair_wall_ns", r->last_repair_wall_ns);
	json_uint(j, "chunks_received", r->repair_received);
	json_uint(j, "chunks_failed", r->repair_failed);
	json_uint(j, "chunks_sent", r->repair_sent);
	json_uint(j, "chunks_missing_here", r->repair_missing);
	json_uint(j, "chunks_peer_lacked", r->repair_lacked);
	json_uint(j, "interval_s", r->repair_interval_s);
	json_obj_end(j);
}
