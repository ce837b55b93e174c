/* proto/repl.c: see repl.h and docs/protocol.md "Replication".
 *
 * As proto/wire.c: explicit little-endian puts, a read cursor that never passes the
 * payload's end, and every encoder checks its own payload with the decoder. */
#include <config.h>

#include "proto/repl.h"

#include <errno.h>
#include <string.h>

#include "common/cursor.h"
#include "common/endian.h"

#define CHUNK_FIXED (WIRE_SHA256_LEN + 4 + 1)
#define ATTR_FIXED 32

typedef struct rtinfo {
	const char *name;
	uint32_t min, max;
} rtinfo;

static const rtinfo RT[256] = {
	[REPL_HELLO] = {"HELLO", 4 + REPL_ID_LEN, 4 + REPL_ID_LEN},
	[REPL_HELLO_OK] = {"HELLO_OK", 2 + REPL_ID_LEN, 2 + REPL_ID_LEN},
	[REPL_ERROR] = {"ERROR", 6, 6 + WIRE_TEXT_MAX},
	[REPL_PAIR] = {"PAIR", REPL_ID_LEN + 2 + 1, REPL_ID_LEN + 2 + REPL_TOKEN_MAX},
	[REPL_PAIR_OK] = {"PAIR_OK", REPL_ID_LEN, REPL_ID_LEN},
	[REPL_FILE] = {"FILE", ATTR_FIXED + 2 + 1, ATTR_FIXED + 2 + WIRE_PATH_MAX},
	[REPL_FP_LIST] = {"FP_LIST", 4 + WIRE_FP_ENTRY_LEN, 4 + WIRE_FP_ENTRY_LEN * WIRE_FP_MAX},
	[REPL_FP_NEED] = {"FP_NEED", 4 + 1, 4 + WIRE_FP_MAX / 8},
	[REPL_CHUNK] = {"CHUNK", CHUNK_FIXED + 1, CHUNK_FIXED + REPL_CHUNK_MAX},
	[REPL_FILE_END] = {"FILE_END", 8 + WIRE_DIGEST_LEN, 8 + WIRE_DIGEST_LEN},
	[REPL_DONE] = {"DONE", 8, 8},
	[REPL_MKDIR] = {"MKDIR", ATTR_FIXED + 2 + 1, ATTR_FIXED + 2 + WIRE_PATH_MAX},
	[REPL_ATTR] = {"ATTR", ATTR_FIXED + 2 + 1, ATTR_FIXED + 2 + WIRE_PATH_MAX},
	[REPL_RENAME] = {"RENAME", 2 + 1 + 2 + 1, 2 * (2 + WIRE_PATH_MAX)},
	[REPL_DELETE] = {"DELETE", 2 + 1, 2 + WIRE_PATH_MAX},
	[REPL_SYMLINK] = {"SYMLINK", ATTR_FIXED + 2 + 1 + 2 + 1,
	                  ATTR_FIXED + 2 + WIRE_PATH_MAX + 2 + 4096},
	[REPL_SYNC] = {"SYNC", 8, 8},
	[REPL_IDENT] = {"IDENT", 2 + 1, 2 + REPL_NAME_MAX},
	[REPL_RESEED] = {"RESEED", REPL_ID_LEN + 2 + REPL_ID_LEN + (2 + 1) * 2 + 2 + 2,
	                 REPL_ID_LEN + 2 + REPL_ID_LEN + 2 + REPL_TOKEN_MAX +
	                     2 * (2 + REPL_NAME_MAX) + 2 + REPL_ADDR_MAX},
	[REPL_RESEED_END] = {"RESEED_END", 2 + REPL_ID_LEN + 2,
	                     2 + REPL_ID_LEN + 2 + REPL_NAME_MAX},
	[REPL_WANT] = {"WANT", 8, 8},
	[REPL_WANT_LIST] = {"WANT_LIST", 4, 4 + WIRE_FP_ENTRY_LEN * REPL_WANT_MAX},
	[REPL_WANT_HAVE] = {"WANT_HAVE", 4 + 1, 4 + REPL_WANT_MAX / 8},
	[REPL_FETCH] = {"FETCH", 4 + WIRE_FP_ENTRY_LEN, 4 + WIRE_FP_ENTRY_LEN * REPL_WANT_MAX},
};

int repl_name_check(const char *s, size_t len)
{
	if (!s || len == 0 || len > REPL_NAME_MAX)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return -EINVAL;
	}
	return 0;
}

const char *repl_type_name(unsigned type)
{
	return type < 256 && RT[type].name ? RT[type].name : "?";
}

int repl_hdr_decode(const uint8_t *buf, size_t len, repl_hdr *h, bks_err *e)
{
	size_t m = len < 4 ? len : 4;
	if (memcmp(buf, REPL_MAGIC, m))
		return bks_fail(e, -EPROTO, "not a replication frame (bad magic)");
	if (len < REPL_HDR_LEN)
		return -EAGAIN;
	if (buf[5] || buf[6] || buf[7])
		return bks_fail(e, -EPROTONOSUPPORT, "replication frame: flags or reserved bits set");
	uint8_t t = buf[4];
	uint32_t n = le_get32(buf + 12);
	if (!RT[t].name)
		return bks_fail(e, -EOPNOTSUPP, "replication frame: unknown type 0x%02x", t);
	if (n < RT[t].min || n > RT[t].max)
		return bks_fail(e, n > RT[t].max ? -EMSGSIZE : -EBADMSG,
		                "replication %s: payload of %u bytes (%u..%u)", RT[t].name, n,
		                RT[t].min, RT[t].max);
	h->type = t;
	h->len = n;
	return 0;
}

int repl_hdr_encode(uint8_t out[REPL_HDR_LEN], uint8_t type, uint32_t len)
{
	if (!RT[type].name || len < RT[type].min || len > RT[type].max)
		return -EINVAL;
	memcpy(out, REPL_MAGIC, 4);
	out[4] = type;
	out[5] = out[6] = out[7] = 0;
	le_put32(out + 8, 0);
	le_put32(out + 12, len);
	return REPL_HDR_LEN;
}

/* ---- read cursor ---- */

/* A bounded cursor (common/cursor.h) and the decoder's first error. Once err is
 * set (a short payload or a bad value) nothing more is read and err is what the
 * decoder returns: the message names the first problem, not a later one. */
typedef struct rd {
	bks_rcur c;
	const char *what;
	bks_err *e;
	int err;
} rd;

/* After each read: a short payload becomes the decoder's error. */
static int short_check(rd *r)
{
	if (!r->err && r->c.err)
		r->err = bks_fail(r->e, -EBADMSG, "replication %s: payload too short", r->what);
	return r->err;
}

static const uint8_t *take(rd *r, size_t k)
{
	const uint8_t *q = r->err ? NULL : cur_take(&r->c, k);
	return short_check(r) ? NULL : q;
}

static uint64_t g(rd *r, int bytes)
{
	if (r->err)
		return 0;
	uint64_t v = bytes == 1 ? cur_get8(&r->c) : bytes == 2 ? cur_get16(&r->c)
	           : bytes == 4 ? cur_get32(&r->c) : cur_get64(&r->c);
	return short_check(r) ? 0 : v;
}

static void graw(rd *r, void *out, size_t k)
{
	if (!r->err)
		cur_get_bytes(&r->c, out, k);
	short_check(r);
}

static wire_str gstr(rd *r)
{
	wire_str s = {NULL, 0};
	size_t k = 0;
	if (!r->err && cur_get_str16(&r->c, &s.p, &k) == 0)
		s.len = (uint32_t)k;
	short_check(r);
	return s;
}

static int gpath(rd *r, wire_str *s)
{
	*s = gstr(r);
	if (r->err)
		return r->err;
	int rc = wire_path_check(s->p, s->len, r->e);
	return rc < 0 ? (r->err = rc) : 0;
}

/* An appliance name (IDENT, RESEED, RESEED_END); empty allowed where it means
 * "unknown" (the name to take over: the lost appliance never told it). */
static void gname(rd *r, wire_str *s, int empty_ok)
{
	*s = gstr(r);
	if (!r->err && !(empty_ok && s->len == 0) && repl_name_check(s->p, s->len) < 0)
		r->err = bks_fail(r->e, -EINVAL, "replication %s: not an appliance name", r->what);
}

static void gattr(rd *r, repl_attr *a)
{
	a->mode = (uint32_t)g(r, 4);
	a->uid = (uint32_t)g(r, 4);
	a->gid = (uint32_t)g(r, 4);
	uint32_t pad = (uint32_t)g(r, 4);
	a->mtime_ns = (int64_t)g(r, 8);
	a->size = g(r, 8);
	if (!r->err && (pad || (a->mode & ~WIRE_MODE_MASK)))
		r->err = bks_fail(r->e, -EINVAL, "replication %s: bad mode or padding", r->what);
}

/* WANT_LIST, FETCH: count u32, then count entries of fingerprint (32) + raw length
 * u32 (1..WIRE_CHUNK_MAX), no fingerprint twice (a chunk is asked for once). A FETCH
 * asks for one at least (an empty one would be a request with nothing to answer). */
static void want_list(rd *r, wire_fp_list *l, uint32_t min)
{
	l->count = (uint32_t)g(r, 4);
	if (r->err)
		return;
	if (l->count < min || l->count > REPL_WANT_MAX) {
		r->err = bks_fail(r->e, -EINVAL, "replication %s: %u entries, %u..%u", r->what,
		                  l->count, min, REPL_WANT_MAX);
		return;
	}
	const uint8_t *q = take(r, (size_t)l->count * WIRE_FP_ENTRY_LEN);
	if (!q)
		return;
	l->raw = q;
	for (uint32_t i = 0; i < l->count && !r->err; i++) {
		const uint8_t *x = q + (size_t)i * WIRE_FP_ENTRY_LEN;
		uint32_t len = le_get32(x + WIRE_SHA256_LEN);
		if (len == 0 || len > WIRE_CHUNK_MAX)
			r->err = bks_fail(r->e, -EINVAL, "replication %s: entry %u: chunk "
			                  "length %u outside 1..%u", r->what, i, len, WIRE_CHUNK_MAX);
		for (uint32_t j = 0; j < i && !r->err; j++)
			if (!memcmp(q + (size_t)j * WIRE_FP_ENTRY_LEN, x, WIRE_SHA256_LEN))
				r->err = bks_fail(r->e, -EINVAL, "replication %s: entries %u and "
				                  "%u name the same chunk", r->what, j, i);
	}
}

int repl_msg_decode(uint8_t type, const uint8_t *p, size_t n, repl_msg *m, bks_err *e)
{
	rd r = {{p, n, 0, 0}, repl_type_name(type), e, 0};
	memset(m, 0, sizeof(*m));
	m->type = type;
	if (!RT[type].name)
		return bks_fail(e, -EOPNOTSUPP, "replication frame: unknown type 0x%02x", type);
	/* The header's bounds again: a payload decoded on its own obeys them too. */
	if (n < RT[type].min || n > RT[type].max)
		return bks_fail(e, n > RT[type].max ? -EMSGSIZE : -EBADMSG,
		                "replication %s: payload of %zu bytes (%u..%u)", RT[type].name, n,
		                RT[type].min, RT[type].max);
	switch (type) {
	case REPL_HELLO:
		m->version = (uint16_t)g(&r, 2);
		if (g(&r, 2) != 0 && !r.err)
			r.err = bks_fail(e, -EINVAL, "replication HELLO: unknown flags");
		graw(&r, m->id, REPL_ID_LEN);
		break;
	case REPL_HELLO_OK:
		m->version = (uint16_t)g(&r, 2);
		graw(&r, m->id, REPL_ID_LEN);
		break;
	case REPL_ERROR:
		m->code = (uint32_t)g(&r, 4);
		m->text = gstr(&r);
		if (!r.err && (m->code == 0 || m->text.len > WIRE_TEXT_MAX ||
		               memchr(m->text.p, 0, m->text.len)))
			r.err = bks_fail(e, -EINVAL, "replication ERROR: bad code or text");
		break;
	case REPL_PAIR:
		graw(&r, m->id, REPL_ID_LEN);
		m->text = gstr(&r);
		if (!r.err && (m->text.len == 0 || m->text.len > REPL_TOKEN_MAX))
			r.err = bks_fail(e, -EINVAL, "replication PAIR: token of %u bytes", m->text.len);
		break;
	case REPL_PAIR_OK:
		graw(&r, m->id, REPL_ID_LEN);
		break;
	case REPL_FILE:
	case REPL_MKDIR:
	case REPL_ATTR:
	case REPL_SYMLINK:
		gattr(&r, &m->attr);
		gpath(&r, &m->path);
		if (type == REPL_SYMLINK) {
			m->path2 = gstr(&r);
			if (!r.err && (m->path2.len == 0 || m->path2.len > 4096 ||
			               memchr(m->path2.p, 0, m->path2.len)))
				r.err = bks_fail(e, -EINVAL, "replication SYMLINK: bad target");
		}
		break;
	case REPL_FP_LIST:
		return wire_fp_list_decode(p, n, &m->fp_list, e);
	case REPL_FP_NEED:
	case REPL_WANT_HAVE: /* (its payload bounds keep it to REPL_WANT_MAX bits) */
		return wire_fp_need_decode(p, n, &m->fp_need, e);
	case REPL_WANT:
		m->want_max = (uint32_t)g(&r, 4);
		if (g(&r, 4) != 0 && !r.err)
			r.err = bks_fail(e, -EINVAL, "replication WANT: reserved field not 0");
		if (!r.err && (m->want_max == 0 || m->want_max > REPL_WANT_MAX))
			r.err = bks_fail(e, -EINVAL, "replication WANT: max %u outside 1..%u",
			                 m->want_max, REPL_WANT_MAX);
		break;
	case REPL_WANT_LIST:
	case REPL_FETCH:
		want_list(&r, &m->want_list, type == REPL_FETCH);
		break;
	case REPL_CHUNK:
		graw(&r, m->fp, WIRE_SHA256_LEN);
		m->rlen = (uint32_t)g(&r, 4);
		m->codec = (uint8_t)g(&r, 1);
		if (!r.err) {
			m->dlen = (uint32_t)cur_left(&r.c);
			m->data = take(&r, m->dlen);
			if (m->rlen == 0 || m->rlen > WIRE_CHUNK_MAX ||
			    m->codec > REPL_CODEC_DEFERRED ||
			    (m->codec != REPL_CODEC_ZSTD && m->dlen != m->rlen))
				r.err = bks_fail(e, -EINVAL, "replication CHUNK: bad lengths or codec");
		}
		break;
	case REPL_FILE_END:
		m->v = g(&r, 8);
		graw(&r, m->digest, WIRE_DIGEST_LEN);
		break;
	case REPL_DONE:
	case REPL_SYNC:
		m->v = g(&r, 8);
		break;
	case REPL_RENAME:
		gpath(&r, &m->path);
		gpath(&r, &m->path2);
		break;
	case REPL_DELETE:
		gpath(&r, &m->path);
		break;
	case REPL_IDENT:
		gname(&r, &m->name, 0);
		break;
	case REPL_RESEED:
	case REPL_RESEED_END:
		if (type == REPL_RESEED)
			graw(&r, m->id, REPL_ID_LEN);
		m->flags = (uint16_t)g(&r, 2);
		if (!r.err && (m->flags & ~REPL_RESEED_FLAGS))
			r.err = bks_fail(e, -EINVAL, "replication %s: unknown flags", r.what);
		graw(&r, m->id2, REPL_ID_LEN);
		if (type == REPL_RESEED) {
			m->text = gstr(&r);
			if (!r.err && (m->text.len == 0 || m->text.len > REPL_TOKEN_MAX))
				r.err = bks_fail(e, -EINVAL, "replication RESEED: token of %u bytes",
				                 m->text.len);
			gname(&r, &m->name, 0);
		}
		gname(&r, &m->name2, 1);
		if (type == REPL_RESEED) {
			m->addr = gstr(&r);
			if (!r.err && (m->addr.len > REPL_ADDR_MAX ||
			               (m->addr.len && memchr(m->addr.p, 0, m->addr.len))))
				r.err = bks_fail(e, -EINVAL, "replication RESEED: bad address");
		}
		break;
	}
	if (r.err)
		return r.err;
	if (cur_left(&r.c))
		return bks_fail(e, -EBADMSG, "replication %s: %zu trailing bytes", r.what,
		                cur_left(&r.c));
	return 0;
}

/* ---- write cursor ---- */

/* The payload goes through a bounded cursor (common/cursor.h) after the header;
 * any of its errors (no room, a string past 65535 bytes) is -ENOSPC to the caller. */
typedef bks_wcur wr;

static void pstr(wr *w, wire_str s)
{
	cur_put_str16(w, s.p, s.len);
}

static void pattr(wr *w, const repl_attr *a)
{
	cur_put32(w, a->mode);
	cur_put32(w, a->uid);
	cur_put32(w, a->gid);
	cur_put32(w, 0);
	cur_put64(w, (uint64_t)a->mtime_ns);
	cur_put64(w, a->size);
}

int repl_msg_encode(uint8_t *buf, size_t cap, const repl_msg *m, const wire_fp *fps,
                    uint32_t nfps)
{
	wr w = {buf, cap, REPL_HDR_LEN, cap < REPL_HDR_LEN ? -ENOSPC : 0};
	uint32_t extra = 0; /* CHUNK bytes the caller sends after the frame's start */
	int r;
	switch (m->type) {
	case REPL_FP_LIST:
		r = wire_fp_list_encode(buf, cap, 0, fps, nfps);
		goto rehead;
	case REPL_FP_NEED:
	case REPL_WANT_HAVE:
		r = wire_fp_need_encode(buf, cap, 0, m->fp_need.count, m->fp_need.bits);
		goto rehead;
	case REPL_WANT:
		cur_put32(&w, m->want_max);
		cur_put32(&w, 0);
		break;
	case REPL_WANT_LIST:
	case REPL_FETCH:
		if (nfps && !fps)
			return -EINVAL;
		cur_put32(&w, nfps);
		for (uint32_t i = 0; i < nfps && !w.err; i++) {
			cur_put_bytes(&w, fps[i].fp, WIRE_SHA256_LEN);
			cur_put32(&w, fps[i].len);
		}
		break;
	case REPL_HELLO:
		cur_put16(&w, m->version);
		cur_put16(&w, 0);
		cur_put_bytes(&w, m->id, REPL_ID_LEN);
		break;
	case REPL_HELLO_OK:
		cur_put16(&w, m->version);
		cur_put_bytes(&w, m->id, REPL_ID_LEN);
		break;
	case REPL_ERROR: {
		wire_str t = m->text;
		if (t.len > WIRE_TEXT_MAX)
			t.len = WIRE_TEXT_MAX;
		cur_put32(&w, m->code ? m->code : WIRE_E_IO);
		pstr(&w, t);
		break;
	}
	case REPL_PAIR:
		cur_put_bytes(&w, m->id, REPL_ID_LEN);
		pstr(&w, m->text);
		break;
	case REPL_PAIR_OK:
		cur_put_bytes(&w, m->id, REPL_ID_LEN);
		break;
	case REPL_FILE:
	case REPL_MKDIR:
	case REPL_ATTR:
	case REPL_SYMLINK:
		pattr(&w, &m->attr);
		pstr(&w, m->path);
		if (m->type == REPL_SYMLINK)
			pstr(&w, m->path2);
		break;
	case REPL_CHUNK:
		cur_put_bytes(&w, m->fp, WIRE_SHA256_LEN);
		cur_put32(&w, m->rlen);
		cur_put8(&w, m->codec);
		if (m->data)
			cur_put_bytes(&w, m->data, m->dlen);
		else
			extra = m->dlen;
		break;
	case REPL_FILE_END:
		cur_put64(&w, m->v);
		cur_put_bytes(&w, m->digest, WIRE_DIGEST_LEN);
		break;
	case REPL_DONE:
	case REPL_SYNC:
		cur_put64(&w, m->v);
		break;
	case REPL_RENAME:
		pstr(&w, m->path);
		pstr(&w, m->path2);
		break;
	case REPL_DELETE:
		pstr(&w, m->path);
		break;
	case REPL_IDENT:
		pstr(&w, m->name);
		break;
	case REPL_RESEED:
	case REPL_RESEED_END:
		if (m->type == REPL_RESEED)
			cur_put_bytes(&w, m->id, REPL_ID_LEN);
		cur_put16(&w, m->flags);
		cur_put_bytes(&w, m->id2, REPL_ID_LEN);
		if (m->type == REPL_RESEED) {
			pstr(&w, m->text);
			pstr(&w, m->name);
		}
		pstr(&w, m->name2);
		if (m->type == REPL_RESEED)
			pstr(&w, m->addr);
		break;
	default:
		return -EINVAL;
	}
	if (w.err)
		return -ENOSPC;
	uint32_t plen = (uint32_t)(w.pos - REPL_HDR_LEN) + extra;
	if ((r = repl_hdr_encode(buf, m->type, plen)) < 0)
		return r;
	if (!extra) {
		repl_msg chk;
		if ((r = repl_msg_decode(m->type, buf + REPL_HDR_LEN, plen, &chk, NULL)) < 0)
			return r;
	}
	return (int)w.pos;
rehead:
	if (r < 0)
		return r;
	/* The native frame's payload is ours; its header is replaced by this protocol's. */
	if ((r = repl_hdr_encode(buf, m->type, (uint32_t)r - REPL_HDR_LEN)) < 0)
		return r;
	return (int)(REPL_HDR_LEN + le_get32(buf + 12));
}
