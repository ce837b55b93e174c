/* cli/nclient_put.c: ncl_put (nclient.h): a file streamed in DATA frames, or with
 * source-side dedup: cut with the server's FastCDC parameters, fingerprinted, and only
 * the chunks the server lacks sent (docs/protocol.md, "Source-side dedup"). */
#include <config.h>

#include "cli/nclient_int.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dedup/chunker.h"
#include "dedup/fp.h"

#define DATA_MAX (4u << 20)          /* DATA frames we send: min(this, server's max) */
#define DEDUP_BATCH (32u << 20)      /* bytes of chunks held for one FP_LIST round */
#define DEDUP_RETRIES 3
/* Chunks fingerprinted together (fp_compute_many: two at a time on the SHA-NI lanes),
 * soon after they are cut, while their bytes are still in the cache. */
#define DD_HASH_BATCH 8

/* Has the server said something (an early ERROR) while we stream? */
static int reply_pending(ncl *c)
{
	struct pollfd pf = {.fd = c->fd, .events = POLLIN};
	return c->rend > c->rpos || poll(&pf, 1, 0) > 0;
}

/* Read up to cap bytes of the source: until full or EOF, but from a pipe or socket
 * only what is there now once we have something (a slow producer must not stall the
 * connection into the server's idle timeout). *eof set at the end. */
static ssize_t read_src(int fd, uint8_t *p, size_t cap, int regular, int *eof)
{
	size_t got = 0;
	while (got < cap) {
		if (got && !regular) {
			struct pollfd pf = {.fd = fd, .events = POLLIN};
			if (poll(&pf, 1, 0) == 0)
				break;
		}
		ssize_t k = read(fd, p + got, cap - got);
		if (k == 0) {
			*eof = 1;
			break;
		}
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		got += (size_t)k;
	}
	return (ssize_t)got;
}

static int send_end(ncl *c, uint64_t count, wire_digest *sha, bks_err *e)
{
	uint8_t buf[WIRE_CTRL_MAX];
	wire_end end = {.count = count};
	wire_digest_final(sha, end.digest);
	int n = wire_end_encode(buf, sizeof(buf), c->tag, &end);
	return ncl_send_request(c, buf, n, e);
}

/* After the server refused the PUT (rerr, message in e): END lets its drain finish
 * and the connection stay usable. */
static int put_refused(ncl *c, int rerr, uint64_t count, wire_digest *sha)
{
	send_end(c, count, sha, NULL); /* if this fails too, the connection is dead */
	return rerr;
}

static int src_error(ncl *c, int r, bks_err *e)
{
	ncl_kill(c); /* no client abort in the protocol: closing drops the upload */
	return bks_fail(e, r, "reading the source: %s", strerror(-r));
}

typedef struct put_src {
	int fd, regular;
	uint64_t total;              /* or NCL_TOTAL_UNKNOWN */
} put_src;

static int put_stream(ncl *c, const put_src *s, const ncl_put_opts *o, wire_digest *sha,
                      ncl_put_result *res, bks_err *e)
{
	size_t frame = BKS_MIN((size_t)c->srv.max_payload, (size_t)DATA_MAX);
	uint8_t *buf = malloc(frame);
	uint64_t sent = 0;
	int eof = 0, r = 0;
	if (!buf)
		return ncl_fail(c, e, -ENOMEM, "putting to");
	while (!eof) {
		ssize_t n = read_src(s->fd, buf, frame, s->regular, &eof);
		if (n < 0) {
			r = src_error(c, (int)n, e);
			break;
		}
		if (n > 0) {
			if ((r = ncl_send_bulk(c, WIRE_DATA, buf, (size_t)n, e)) < 0)
				break;
			wire_digest_update(sha, buf, (size_t)n);
			sent += (uint64_t)n;
			if (o->progress)
				o->progress(o->ctx, sent, s->total);
		}
		if (reply_pending(c)) { /* only an ERROR may come before END */
			wire_hdr h;
			wire_msg m;
			r = ncl_read_reply(c, &h, &m, e);
			if (r == 0)
				r = ncl_unexpected(c, &h, "nothing (or ERROR) during a PUT", e);
			else if (!c->dead)
				r = put_refused(c, r, sent, sha);
			break;
		}
	}
	free(buf);
	res->payload_sent = sent;
	return r < 0 ? r : send_end(c, sent, sha, e);
}

/* Source dedup: chunks are cut into buf and held there for one FP_LIST round.
 * buf holds [0, cstart) cut chunks of this round, [cstart, scan) the current chunk,
 * [scan, fill) read but not yet scanned. A round is sent when fp_max chunks or
 * DEDUP_BATCH bytes are cut, so cstart < DEDUP_BATCH + cdc_max and a read always has
 * room (cap = DEDUP_BATCH + 2 cdc_max + DATA_MAX). */
typedef struct dd {
	cdc *cut;
	fp_ctx *fpc;
	uint8_t *buf;
	size_t cap, fill, scan, cstart;
	wire_fp *fps;
	size_t *off;
	uint32_t n, max;
	uint32_t hashed;             /* fps[0, hashed) have their fingerprints */
	uint8_t *list;               /* the FP_LIST frame */
	size_t list_cap;
	wire_digest *fpd;            /* FP_DIGEST: END's digest, over the FP_LIST entries */
} dd;

static void dd_free(dd *d)
{
	cdc_free(d->cut);
	fp_ctx_free(d->fpc);
	free(d->buf);
	free(d->fps);
	free(d->off);
	free(d->list);
}

static int dd_init(ncl *c, dd *d)
{
	cdc_params p = {c->srv.cdc_min, c->srv.cdc_avg, c->srv.cdc_max};
	memset(d, 0, sizeof(*d));
	d->max = BKS_MIN(c->srv.fp_max, (c->srv.max_payload - 4) / WIRE_FP_ENTRY_LEN);
	d->cap = DEDUP_BATCH + 2 * (size_t)p.max + DATA_MAX;
	d->list_cap = WIRE_HDR_LEN + 4 + (size_t)d->max * WIRE_FP_ENTRY_LEN;
	int r = cdc_new(&p, &d->cut);
	if (r == 0)
		r = fp_ctx_new(&d->fpc);
	if (r == 0 && (!(d->buf = malloc(d->cap)) || !(d->fps = calloc(d->max, sizeof(*d->fps))) ||
	               !(d->off = calloc(d->max, sizeof(*d->off))) ||
	               !(d->list = malloc(d->list_cap))))
		r = -ENOMEM;
	return r;
}

/* Fingerprint the chunks cut since the last call. */
static int dd_hash(dd *d)
{
	while (d->hashed < d->n) {
		const uint8_t *p[DD_HASH_BATCH];
		size_t len[DD_HASH_BATCH];
		uint8_t fp[DD_HASH_BATCH][FP_LEN];
		int k = (int)BKS_MIN(d->n - d->hashed, (uint32_t)DD_HASH_BATCH);
		for (int i = 0; i < k; i++) {
			p[i] = d->buf + d->off[d->hashed + i];
			len[i] = d->fps[d->hashed + i].len;
		}
		int r = fp_compute_many(d->fpc, k, p, len, fp);
		if (r < 0)
			return r;
		for (int i = 0; i < k; i++)
			memcpy(d->fps[d->hashed + i].fp, fp[i], FP_LEN);
		d->hashed += (uint32_t)k;
	}
	return 0;
}

/* One round: FP_LIST, FP_NEED, the needed CHUNKs; then the buffer is compacted. */
static int dd_round(ncl *c, dd *d, ncl_put_result *res, bks_err *e)
{
	wire_hdr h;
	wire_msg m;
	int r = dd_hash(d);
	if (r < 0)
		return ncl_fail(c, e, r, "fingerprinting for");
	int n = wire_fp_list_encode(d->list, d->list_cap, c->tag, d->fps, d->n);
	if ((r = ncl_send_request(c, d->list, n, e)) < 0)
		return r;
	if (d->fpd) /* the entries exactly as sent: after the header and the count */
		wire_digest_update(d->fpd, d->list + WIRE_HDR_LEN + 4,
		                   (size_t)d->n * WIRE_FP_ENTRY_LEN);
	if ((r = ncl_read_reply(c, &h, &m, e)) < 0)
		return r;
	if (h.type != WIRE_FP_NEED)
		return ncl_unexpected(c, &h, "FP_NEED", e);
	if (m.u.fp_need.count != d->n) {
		ncl_kill(c);
		return bks_fail(e, -EPROTO, "%s answered %u fingerprints with %u bits", c->peer,
		                d->n, m.u.fp_need.count);
	}
	uint8_t bits[WIRE_FP_MAX / 8];
	memcpy(bits, m.u.fp_need.bits, WIRE_BITMAP_BYTES(d->n)); /* views die at the next read */
	for (uint32_t i = 0; i < d->n; i++) {
		if (!wire_bit_get(bits, i))
			continue;
		if ((r = ncl_send_bulk(c, WIRE_CHUNK, d->buf + d->off[i], d->fps[i].len, e)) < 0)
			return r;
		res->payload_sent += d->fps[i].len;
		res->chunks_sent++;
	}
	memmove(d->buf, d->buf + d->cstart, d->fill - d->cstart);
	d->fill -= d->cstart;
	d->scan -= d->cstart;
	d->cstart = 0;
	d->n = 0;
	d->hashed = 0;
	return 0;
}

static int dd_add(dd *d, size_t end)
{
	wire_fp *f = &d->fps[d->n];
	f->len = (uint32_t)(end - d->cstart);
	d->off[d->n++] = d->cstart;
	d->cstart = end;
	return d->n - d->hashed >= DD_HASH_BATCH ? dd_hash(d) : 0;
}

/* fp_digest: the server checks END's digest over the fingerprint stream (the PUT has
 * WIRE_PUT_FP_DIGEST); without it (an older server) END carries the file's digest. */
static int put_dedup(ncl *c, const put_src *s, const ncl_put_opts *o, wire_digest *sha,
                     int fp_digest, ncl_put_result *res, bks_err *e)
{
	uint64_t count = 0;
	int eof = 0, r;
	dd d;
	if ((r = dd_init(c, &d)) < 0) {
		dd_free(&d);
		return ncl_fail(c, e, r, "putting to");
	}
	d.fpd = fp_digest ? sha : NULL;
	while (r == 0) {
		if (d.scan == d.fill) {
			if (eof)
				break;
			ssize_t k = read_src(s->fd, d.buf + d.fill, d.cap - d.fill, s->regular, &eof);
			if (k < 0) {
				r = src_error(c, (int)k, e);
				break;
			}
			if (!fp_digest)
				wire_digest_update(sha, d.buf + d.fill, (size_t)k);
			d.fill += (size_t)k;
			count += (uint64_t)k;
			continue;
		}
		int cut = 0;
		d.scan += cdc_next(d.cut, d.buf + d.scan, d.fill - d.scan, &cut);
		if (!cut)
			continue;
		if ((r = dd_add(&d, d.scan)) < 0)
			r = ncl_fail(c, e, r, "fingerprinting for");
		else if (d.n == d.max || d.cstart >= DEDUP_BATCH) {
			r = dd_round(c, &d, res, e);
			if (r == 0 && o->progress)
				o->progress(o->ctx, count - d.fill, s->total);
		}
	}
	if (r == 0 && d.fill > d.cstart && (r = dd_add(&d, d.fill)) < 0)
		r = ncl_fail(c, e, r, "fingerprinting for");
	if (r == 0 && d.n > 0)
		r = dd_round(c, &d, res, e);
	if (r == 0 && o->progress)
		o->progress(o->ctx, count, s->total);
	dd_free(&d);
	if (r < 0)
		return c->dead ? r : put_refused(c, r, count, sha);
	return send_end(c, count, sha, e);
}

static int put_once(ncl *c, const put_src *s, const struct stat *st, const char *path,
                    const ncl_put_opts *o, ncl_put_result *res, bks_err *e)
{
	uint8_t buf[WIRE_CTRL_MAX];
	wire_put p = {.flags = o->flags & (WIRE_PUT_OVERWRITE | WIRE_PUT_PARENTS),
	              .mode = 0644, .uid = getuid(), .gid = getgid(),
	              .mtime_ns = (int64_t)bks_wall_ns(), .size_hint = s->total,
	              .path = wire_s(path)};
	uint64_t tx0 = c->tx;
	wire_hdr h;
	wire_msg m;
	if (s->regular) {
		p.mode = st->st_mode & WIRE_MODE_MASK;
		p.uid = st->st_uid;
		p.gid = st->st_gid;
		p.mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
	}
	/* An older server refuses the FP_DIGEST flag (unknown bits are EINVAL): only when
	 * it says it takes it. */
	int fp_digest = res->dedup && (c->srv.caps & WIRE_CAP_FP_DIGEST);
	if (res->dedup)
		p.flags |= WIRE_PUT_SRC_DEDUP;
	if (fp_digest)
		p.flags |= WIRE_PUT_FP_DIGEST;
	wire_digest *sha = wire_digest_new();
	if (!sha) {
		wire_digest_free(sha);
		return bks_fail(e, -ENOMEM, "out of memory");
	}
	ncl_next_tag(c);
	int r = ncl_send_request(c, buf, wire_put_encode(buf, sizeof(buf), c->tag, &p), e);
	if (r == 0)
		r = res->dedup ? put_dedup(c, s, o, sha, fp_digest, res, e)
		               : put_stream(c, s, o, sha, res, e);
	wire_digest_free(sha);
	if (r == 0 && (r = ncl_read_reply(c, &h, &m, e)) == 0) {
		if (h.type != WIRE_PUT_OK)
			r = ncl_unexpected(c, &h, "PUT_OK", e);
		else
			res->ok = m.u.put_ok;
	}
	res->wire_sent = c->tx - tx0;
	return r;
}

int ncl_put(ncl *c, int fd, const char *path, const ncl_put_opts *o, ncl_put_result *res,
            bks_err *e)
{
	struct stat st;
	put_src s = {.fd = fd, .total = NCL_TOTAL_UNKNOWN};
	int r;
	memset(res, 0, sizeof(*res));
	if ((r = wire_path_check(path, strlen(path), e)) < 0)
		return r;
	if (fstat(fd, &st) < 0)
		return bks_fail(e, -errno, "fstat of the source: %s", strerror(errno));
	s.regular = S_ISREG(st.st_mode);
	off_t start = s.regular ? lseek(fd, 0, SEEK_CUR) : -1;
	if (s.regular && start >= 0)
		s.total = st.st_size > start ? (uint64_t)(st.st_size - start) : 0;
	res->dedup = o->dedup && (c->srv.caps & WIRE_CAP_SRC_DEDUP);
	for (;;) {
		r = put_once(c, &s, &st, path, o, res, e);
		/* EAGAIN: a chunk the server had was collected before we referred to it. */
		if (r != -EAGAIN || !res->dedup || c->dead || start < 0 ||
		    res->retries >= DEDUP_RETRIES || lseek(fd, start, SEEK_SET) != start)
			return r;
		res->retries++;
	}
}
