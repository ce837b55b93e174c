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
	rwant *w = is_twin(r) ? want_find(r, b->fp) : NULL;
	if (w) {
		queued = w->vgen != r->vgen; /* the first time in this verify */
		w->vgen = r->vgen;
	} else if (is_twin(r) && b->len > 0 && b->len <= WIRE_CHUNK_MAX) {
		if (r->nwants < REPL_WANTS_MAX && wants_alloc(r) == 0) {
			w = &r->wants[r->nwants++];
			memcpy(w->fp, b->fp, 32);
			w->len = b->len;
			w->since_s = bks_wall_ns() / 1000000000ull;
			w->vgen = r->vgen;
			r->wants_dirty = 1;
			queued = 1;
		} else {
			r->wants_full++;
		}
	}
	pthread_mutex_unlock(&r->mu);
	return queued;
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

/* ---- the twin: a WANT from the source ---- */

int repl_rx_want(repl *r, rconn *c, const repl_msg *m)
{
	appl *ap = r->ap;
	wire_fp *ask = NULL;
	uint8_t *ok = NULL;
	repl_msg h;
	bks_err e = {0};
	uint32_t n = 0, stored = 0, good = 0, refused = 0;
	int rc = 0, fatal;
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
		pthread_mutex_lock(&r->mu);
		r->rx_chunks++;
		r->rx_bytes += cm.dlen;
		pthread_mutex_unlock(&r->mu);
		if (rc < 0)
			continue; /* the store failed: read the rest, keep nothing */
		pthread_mutex_lock(&ap->mu);
		int k = store_repair_chunk(ap->s, cm.fp, cm.data, cm.dlen, cm.rlen,
		                           cm.codec ? SEG_ZSTD : SEG_RAW);
		pthread_mutex_unlock(&ap->mu);
		char hx[REPL_FP_HEX];
		repl_hex(cm.fp, 32, hx);
		if (k >= 0) {
			ok[i] = 1;
			stored += k == 1;
			good += k == 0;
		} else if (k == -EBADMSG || k == -EINVAL) {
			/* Not the chunk's bytes (or not decodable): never kept; asked again. */
			refused++;
			LOG_W("repl: %s: chunk %s sent for repair does not match its SHA-256: "
			      "refused", c->peer, hx);
		} else {
			rc = k;
			LOG_E("repl: chunk %s from %s not stored again: %s", hx, c->peer, strerror(-k));
		}
	}
	/* The fresh copies are durable before the list forgets them. */
	if (rc == 0 && stored && (rc = appl_commit(ap, &e)) < 0)
		LOG_E("repl: the commit after a repair failed: %s (asked again)", bks_errmsg(&e, rc));
	pthread_mutex_lock(&r->mu);
	r->repair_refused += refused;
	if (rc == 0) {
		for (uint32_t i = 0; i < n; i++) {
			rwant *w = ok[i] ? want_find(r, ask[i].fp) : NULL;
			if (w) {
				*w = r->wants[--r->nwants];
				r->wants_dirty = 1;
			}
		}
		r->repaired += stored;
		if (stored)
			r->last_repair_wall_ns = bks_wall_ns();
	}
	int sr = r->wants_dirty ? wants_save(r) : 0;
	size_t left = r->nwants;
	pthread_mutex_unlock(&r->mu);
	if (sr < 0)
		LOG_E("repl: cannot write repl.wanted: %s (retried)", strerror(-sr));
	if (rc == 0 && stored + good)
		appl_event_add(ap, CFG_LOG_INFO, "repl: %u damaged chunks repaired with good copies "
		               "from the source%s; %zu still wanted", stored + good,
		               good ? " (some were good already)" : "", left);
	if (rc < 0) {
		fatal = repl_send_error(c, rc, "repair: %s", strerror(-rc));
	} else {
		repl_msg dm = {.type = REPL_DONE, .v = stored + good};
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
	pthread_mutex_lock(&r->ap->mu);
	int rc = store_chunk_stored(r->ap->s, w->fp, w->len, sbuf, STORE_STORED_MAX, slen, codec);
	pthread_mutex_unlock(&r->ap->mu);
	return rc;
}

int repl_tx_want(repl *r, rconn *c, uint8_t *sbuf, char *why, size_t wcap)
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
		if (hn < 0 || (rc = repl_send(c, hdr, (size_t)hn)) < 0 ||
		    (rc = repl_send(c, sbuf, slen)) < 0) {
			rc = hn < 0 ? hn : rc;
			goto out;
		}
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

void repl_repair_json(repl *r, json *j)
{
	json_obj_begin(j, "repair");
	json_uint(j, "chunks_wanted", r->nwants);
	json_uint(j, "chunks_repaired", r->repaired);
	json_uint(j, "chunks_refused", r->repair_refused);
	json_uint(j, "chunks_not_queued", r->wants_full);
	json_uint(j, "last_repair_wall_ns", r->last_repair_wall_ns);
	json_uint(j, "chunks_sent", r->repair_sent);
	json_uint(j, "chunks_missing_here", r->repair_missing);
	json_uint(j, "interval_s", r->repair_interval_s);
	json_obj_end(j);
}
