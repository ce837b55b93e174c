/* proto/wire.c: see wire.h and docs/protocol.md.
 *
 * Encoding is explicit (little-endian puts at known offsets), never a struct memcpy.
 * Decoding goes through a read cursor that never moves past the payload: a length
 * field is compared with the bytes left before anything uses it. Every encoder
 * finishes by running the decoder over the payload it wrote, so "what we send" and
 * "what we accept" cannot drift apart.
 */
#include <config.h>

#include "proto/wire.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cursor.h"
#include "common/endian.h"
#include "common/xxh.h"

_Static_assert(WIRE_HDR_LEN + 4 + 2 * (2 + WIRE_PATH_MAX) <= WIRE_CTRL_MAX,
               "RENAME, the largest control frame, fits WIRE_CTRL_MAX");
_Static_assert(WIRE_CHUNK_MAX <= WIRE_MAX_PAYLOAD_LIMIT, "a chunk fits a frame");

/* Per type: name, sender, payload bounds. bulk: also bounded by max_payload (the
 * others are small and bounded by max alone). */
typedef struct tinfo {
	const char *name;
	uint8_t dir, bulk;
	uint32_t min, max;
} tinfo;

static const tinfo TYPES[256] = {
	[WIRE_HELLO] = {"HELLO", WIRE_DIR_S2C, 0, 38 + 1, 38 + WIRE_NAME_MAX},
	[WIRE_AUTH] = {"AUTH", WIRE_DIR_C2S, 0, 74 + 1, 74 + WIRE_NAME_MAX},
	[WIRE_AUTH_OK] = {"AUTH_OK", WIRE_DIR_S2C, 0, 56, 56},
	[WIRE_ERROR] = {"ERROR", WIRE_DIR_BOTH, 0, 6, 6 + WIRE_TEXT_MAX},
	[WIRE_PING] = {"PING", WIRE_DIR_C2S, 0, 8, 8},
	[WIRE_PONG] = {"PONG", WIRE_DIR_S2C, 0, 8, 8},
	[WIRE_OK] = {"OK", WIRE_DIR_S2C, 0, 0, 0},
	[WIRE_PUT] = {"PUT", WIRE_DIR_C2S, 0, 34 + 1, 34 + WIRE_PATH_MAX},
	[WIRE_PUT_OK] = {"PUT_OK", WIRE_DIR_S2C, 0, 48, 48},
	[WIRE_GET] = {"GET", WIRE_DIR_C2S, 0, 22 + 1, 22 + WIRE_PATH_MAX},
	[WIRE_GET_OK] = {"GET_OK", WIRE_DIR_S2C, 0, 24, 24},
	[WIRE_STAT] = {"STAT", WIRE_DIR_C2S, 0, 6 + 1, 6 + WIRE_PATH_MAX},
	[WIRE_STAT_OK] = {"STAT_OK", WIRE_DIR_S2C, 0, 49, 49},
	[WIRE_LIST] = {"LIST", WIRE_DIR_C2S, 0, 6 + 1, 6 + WIRE_PATH_MAX},
	[WIRE_LIST_ITEMS] = {"LIST_ITEMS", WIRE_DIR_S2C, 1, 4 + WIRE_ENTRY_FIXED + 1,
	                     WIRE_MAX_PAYLOAD_LIMIT},
	[WIRE_LIST_END] = {"LIST_END", WIRE_DIR_S2C, 0, 8, 8},
	[WIRE_MKDIR] = {"MKDIR", WIRE_DIR_C2S, 0, 10 + 1, 10 + WIRE_PATH_MAX},
	[WIRE_RENAME] = {"RENAME", WIRE_DIR_C2S, 0, 8 + 2, 8 + 2 * WIRE_PATH_MAX},
	[WIRE_DELETE] = {"DELETE", WIRE_DIR_C2S, 0, 6 + 1, 6 + WIRE_PATH_MAX},
	[WIRE_STATUS] = {"STATUS", WIRE_DIR_C2S, 0, 0, 0},
	[WIRE_STATUS_OK] = {"STATUS_OK", WIRE_DIR_S2C, 1, 0, WIRE_MAX_PAYLOAD_LIMIT},
	[WIRE_DATA] = {"DATA", WIRE_DIR_BOTH, 1, 1, WIRE_MAX_PAYLOAD_LIMIT},
	[WIRE_END] = {"END", WIRE_DIR_BOTH, 0, 40, 40},
	[WIRE_FP_LIST] = {"FP_LIST", WIRE_DIR_C2S, 1, 4 + WIRE_FP_ENTRY_LEN,
	                  4 + WIRE_FP_ENTRY_LEN * WIRE_FP_MAX},
	[WIRE_FP_NEED] = {"FP_NEED", WIRE_DIR_S2C, 0, 4 + 1, 4 + WIRE_FP_MAX / 8},
	[WIRE_CHUNK] = {"CHUNK", WIRE_DIR_C2S, 1, 1, WIRE_CHUNK_MAX},
};

const char *wire_type_name(unsigned type)
{
	return type < 256 && TYPES[type].name ? TYPES[type].name : "?";
}

unsigned wire_type_dir(unsigned type)
{
	return type < 256 && TYPES[type].name ? TYPES[type].dir : 0;
}

/* ---- error codes ---- */

static const struct {
	uint32_t code;
	int err;
	const char *name;
} CODES[] = {
	{WIRE_E_PERM, EPERM, "EPERM"}, {WIRE_E_NOENT, ENOENT, "ENOENT"},
	{WIRE_E_IO, EIO, "EIO"}, {WIRE_E_AGAIN, EAGAIN, "EAGAIN"},
	{WIRE_E_NOMEM, ENOMEM, "ENOMEM"}, {WIRE_E_ACCES, EACCES, "EACCES"},
	{WIRE_E_BUSY, EBUSY, "EBUSY"}, {WIRE_E_EXIST, EEXIST, "EEXIST"},
	{WIRE_E_XDEV, EXDEV, "EXDEV"}, {WIRE_E_NOTDIR, ENOTDIR, "ENOTDIR"},
	{WIRE_E_ISDIR, EISDIR, "EISDIR"}, {WIRE_E_INVAL, EINVAL, "EINVAL"},
	{WIRE_E_FBIG, EFBIG, "EFBIG"}, {WIRE_E_NOSPC, ENOSPC, "ENOSPC"},
	{WIRE_E_ROFS, EROFS, "EROFS"}, {WIRE_E_NAMETOOLONG, ENAMETOOLONG, "ENAMETOOLONG"},
	{WIRE_E_NOTEMPTY, ENOTEMPTY, "ENOTEMPTY"}, {WIRE_E_PROTO, EPROTO, "EPROTO"},
	{WIRE_E_BADMSG, EBADMSG, "EBADMSG"}, {WIRE_E_OVERFLOW, EOVERFLOW, "EOVERFLOW"},
	{WIRE_E_ILSEQ, EILSEQ, "EILSEQ"}, {WIRE_E_MSGSIZE, EMSGSIZE, "EMSGSIZE"},
	{WIRE_E_PROTONOSUPPORT, EPROTONOSUPPORT, "EPROTONOSUPPORT"},
	{WIRE_E_NOTSUP, EOPNOTSUPP, "ENOTSUP"}, {WIRE_E_TIMEDOUT, ETIMEDOUT, "ETIMEDOUT"},
	{WIRE_E_DQUOT, EDQUOT, "EDQUOT"}, {WIRE_E_CANCELED, ECANCELED, "ECANCELED"},
};

uint32_t wire_code_from_errno(int err)
{
	if (err < 0)
		err = -err;
	for (size_t i = 0; i < BKS_ARRAY_SIZE(CODES); i++)
		if (CODES[i].err == err)
			return CODES[i].code;
	return WIRE_E_IO;
}

int wire_code_to_errno(uint32_t code)
{
	for (size_t i = 0; i < BKS_ARRAY_SIZE(CODES); i++)
		if (CODES[i].code == code)
			return -CODES[i].err;
	return -EIO;
}

const char *wire_code_name(uint32_t code)
{
	for (size_t i = 0; i < BKS_ARRAY_SIZE(CODES); i++)
		if (CODES[i].code == code)
			return CODES[i].name;
	return "E?";
}

/* ---- strings ---- */

wire_str wire_s(const char *cstr)
{
	wire_str s = {cstr ? cstr : "", 0};
	size_t n = cstr ? strlen(cstr) : 0;
	s.len = n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
	return s;
}

int wire_str_eq(wire_str s, const char *cstr)
{
	return strlen(cstr) == s.len && (s.len == 0 || memcmp(s.p, cstr, s.len) == 0);
}

int wire_str_copy(wire_str s, char *dst, size_t cap)
{
	if (cap == 0)
		return -ENAMETOOLONG;
	size_t n = BKS_MIN((size_t)s.len, cap - 1);
	if (n)
		memcpy(dst, s.p, n);
	dst[n] = '\0';
	return n < s.len ? -ENAMETOOLONG : 0;
}

static int is_dot(const char *p, size_t n)
{
	return (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.');
}

int wire_name_check(const char *p, size_t len, bks_err *e)
{
	if (len == 0)
		return bks_fail(e, -EILSEQ, "name is empty");
	if (len > WIRE_NAME_MAX)
		return bks_fail(e, -ENAMETOOLONG, "name of %zu bytes, max %d", len,
		                WIRE_NAME_MAX);
	const char *nul = memchr(p, '\0', len), *sl = memchr(p, '/', len);
	if (nul)
		return bks_fail(e, -EILSEQ, "name has a NUL byte at offset %td", nul - p);
	if (sl)
		return bks_fail(e, -EILSEQ, "name has a '/' at offset %td", sl - p);
	if (is_dot(p, len))
		return bks_fail(e, -EILSEQ, "name is \"%.*s\"", (int)len, p);
	return 0;
}

int wire_path_check(const char *p, size_t len, bks_err *e)
{
	if (len == 0)
		return bks_fail(e, -EILSEQ, "path is empty");
	if (len > WIRE_PATH_MAX)
		return bks_fail(e, -ENAMETOOLONG, "path of %zu bytes, max %d", len,
		                WIRE_PATH_MAX);
	if (p[0] != '/')
		return bks_fail(e, -EILSEQ, "path does not start with '/'");
	const char *nul = memchr(p, '\0', len);
	if (nul)
		return bks_fail(e, -EILSEQ, "path has a NUL byte at offset %td", nul - p);
	if (len == 1)
		return 0; /* "/" */
	if (p[len - 1] == '/')
		return bks_fail(e, -EILSEQ, "path ends with '/'");
	size_t start = 1;
	for (size_t i = 1; i <= len; i++) {
		if (i < len && p[i] != '/')
			continue;
		size_t clen = i - start;
		if (clen == 0)
			return bks_fail(e, -EILSEQ, "path has an empty component at offset %zu", i);
		if (clen > WIRE_NAME_MAX)
			return bks_fail(e, -ENAMETOOLONG, "path component at offset %zu is %zu "
			                "bytes, max %d", start, clen, WIRE_NAME_MAX);
		if (is_dot(p + start, clen))
			return bks_fail(e, -EILSEQ, "path has a \"%.*s\" component", (int)clen,
			                p + start);
		start = i + 1;
	}
	return 0;
}

static int text_check(const char *p, size_t len, size_t max, bks_err *e)
{
	if (len > max)
		return bks_fail(e, -ENAMETOOLONG, "text of %zu bytes, max %zu", len, max);
	const char *nul = len ? memchr(p, '\0', len) : NULL;
	if (nul)
		return bks_fail(e, -EILSEQ, "text has a NUL byte at offset %td", nul - p);
	return 0;
}

/* ---- header ---- */

static size_t eff_max(size_t max_payload)
{
	if (max_payload == 0)
		return WIRE_MAX_PAYLOAD_DEFAULT;
	return BKS_MIN(max_payload, (size_t)WIRE_MAX_PAYLOAD_LIMIT);
}

/* Length bounds of a known type (header decode and encode). */
static int len_check(unsigned type, uint64_t len, size_t max_payload, bks_err *e)
{
	const tinfo *t = &TYPES[type];
	if (len > t->max)
		return bks_fail(e, -EMSGSIZE, "%s frame of %llu bytes, at most %u", t->name,
		                (unsigned long long)len, t->max);
	if (t->bulk && len > max_payload)
		return bks_fail(e, -EMSGSIZE, "%s frame of %llu bytes, above max_payload %zu",
		                t->name, (unsigned long long)len, max_payload);
	if (len < t->min)
		return bks_fail(e, -EBADMSG, "%s frame of %llu bytes, at least %u", t->name,
		                (unsigned long long)len, t->min);
	return 0;
}

int wire_hdr_decode(const uint8_t *buf, size_t len, size_t max_payload, wire_hdr *h,
                    bks_err *e)
{
	memset(h, 0, sizeof(*h));
	if (len > 0 && memcmp(buf, WIRE_MAGIC, BKS_MIN(len, (size_t)4)) != 0)
		return bks_fail(e, -EPROTO, "bad magic %02x%02x%02x%02x: not a bkstor native "
		                "frame", buf[0], len > 1 ? buf[1] : 0, len > 2 ? buf[2] : 0,
		                len > 3 ? buf[3] : 0);
	if (len < WIRE_HDR_LEN)
		return bks_fail(e, -EAGAIN, "frame header: %zu of %d bytes", len, WIRE_HDR_LEN);
	h->type = buf[4];
	h->flags = buf[5];
	h->tag = le_get32(buf + 8);
	h->len = le_get32(buf + 12);
	uint16_t rsv = le_get16(buf + 6);
	if (h->flags || rsv)
		return bks_fail(e, -EPROTONOSUPPORT, "frame header flags 0x%02x reserved 0x%04x: "
		                "not protocol version %u", h->flags, rsv, WIRE_VERSION);
	if (!TYPES[h->type].name)
		return bks_fail(e, -EOPNOTSUPP, "unknown frame type 0x%02x", h->type);
	return len_check(h->type, h->len, eff_max(max_payload), e);
}

static void put_hdr(uint8_t *out, uint8_t type, uint32_t tag, uint32_t len)
{
	memcpy(out, WIRE_MAGIC, 4);
	out[4] = type;
	out[5] = 0;
	le_put16(out + 6, 0);
	le_put32(out + 8, tag);
	le_put32(out + 12, len);
}

int wire_hdr_encode(uint8_t out[WIRE_HDR_LEN], uint8_t type, uint32_t tag, uint32_t len)
{
	if (!TYPES[type].name || len_check(type, len, WIRE_MAX_PAYLOAD_LIMIT, NULL))
		return -EINVAL;
	put_hdr(out, type, tag, len);
	return WIRE_HDR_LEN;
}

/* ---- cursors ---- */

/* A bounded cursor (common/cursor.h) and what to say when the payload is short:
 * callers check the payload holds a field first (need()), so the cursor's sticky
 * error is never what reports it. */
typedef struct rd {
	bks_rcur c;
	const char *what; /* message name, for errors */
	bks_err *e;
} rd;

static int need(rd *r, size_t k)
{
	if (cur_left(&r->c) < k)
		return bks_fail(r->e, -EBADMSG, "%s: payload ends at %zu, field needs %zu bytes "
		                "at offset %zu", r->what, r->c.len, k, r->c.pos);
	return 0;
}

enum skind { S_PATH, S_NAME, S_TEXT };

/* A u16-length string, its bytes and its content check. */
static int gstr(rd *r, wire_str *s, enum skind kind, const char *field)
{
	bks_err sub = {0};
	int rc = need(r, 2);
	if (rc)
		return rc;
	size_t at = r->c.pos, len;
	if (cur_get_str16(&r->c, &s->p, &len))
		return bks_fail(r->e, -EBADMSG, "%s: %s of %u bytes at offset %zu runs past the "
		                "end of the %zu-byte payload", r->what, field, le_get16(r->c.p + at),
		                at + 2, r->c.len);
	s->len = (uint32_t)len;
	if (kind == S_PATH)
		rc = wire_path_check(s->p, len, &sub);
	else if (kind == S_NAME)
		rc = wire_name_check(s->p, len, &sub);
	else
		rc = text_check(s->p, len, WIRE_TEXT_MAX, &sub);
	if (rc && !strncmp(sub.msg, field, strlen(field)))
		return bks_fail(r->e, rc, "%s: %s", r->what, sub.msg); /* "PUT: path is empty" */
	if (rc)
		return bks_fail(r->e, rc, "%s: %s: %s", r->what, field, sub.msg);
	return 0;
}

static int rd_end(rd *r)
{
	if (cur_left(&r->c))
		return bks_fail(r->e, -EBADMSG, "%s: %zu trailing bytes after offset %zu",
		                r->what, cur_left(&r->c), r->c.pos);
	return 0;
}

static int bad(rd *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int bad(rd *r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = bks_vfail_in(r->e, -EINVAL, r->what, fmt, ap);
	va_end(ap);
	return rc;
}

/* The frame being written: a cursor over the caller's buffer, from the header on.
 * A string too long for its u16 length is remembered apart from the cursor's error,
 * so it is reported as -ENAMETOOLONG even when the buffer also ran out. */
typedef struct wr {
	bks_wcur c;
	int toolong;
	uint8_t type;
} wr;

static void pstr(wr *w, wire_str s)
{
	if (s.len > UINT16_MAX)
		w->toolong = 1;
	else
		cur_put_str16(&w->c, s.p, s.len);
}

static void enc_begin(wr *w, uint8_t *buf, size_t cap, uint8_t type, uint32_t tag)
{
	memset(w, 0, sizeof(*w));
	cur_winit(&w->c, buf, cap);
	w->type = type;
	if (cap < WIRE_HDR_LEN) {
		w->c.err = -ENOSPC;
		return;
	}
	put_hdr(buf, type, tag, 0); /* length patched in by enc_finish */
	w->c.pos = WIRE_HDR_LEN;
}

/* Patch the length in; refuse what the decoder would refuse. */
static int enc_finish(wr *w)
{
	wire_msg m;
	if (w->toolong)
		return -ENAMETOOLONG;
	if (w->c.err)
		return -ENOSPC;
	size_t n = w->c.pos - WIRE_HDR_LEN;
	if (n > WIRE_MAX_PAYLOAD_LIMIT)
		return -EMSGSIZE;
	le_put32(w->c.p + 12, (uint32_t)n);
	int rc = wire_msg_decode(w->type, w->c.p + WIRE_HDR_LEN, n, &m, NULL);
	if (!rc)
		rc = len_check(w->type, n, WIRE_MAX_PAYLOAD_LIMIT, NULL);
	return rc ? rc : (int)w->c.pos;
}

/* ---- messages with a fixed shape: a field table each ----
 *
 * A table lists a message's fields in wire order with where each lives in its struct;
 * one decoder and one encoder walk the tables, and a check function per type tests
 * the values (the structure is checked by the walk). docs/protocol.md has one table
 * per message with the same rows. */

enum fkind {
	F_END,
	F_U8, F_U32, F_U64,
	F_B32,      /* 32 raw bytes (nonce, MAC, digest) */
	F_VERSION,  /* u16, must be WIRE_VERSION (checked at once: -EPROTONOSUPPORT) */
	F_RSV16,    /* u16, must be 0; no struct member */
	F_FLAGS,    /* u32, only the type's known bits (SCHEMA[].flags) */
	F_MODE,     /* u32, only WIRE_MODE_MASK bits */
	F_FTYPE,    /* u8, enum wire_ftype */
	F_PATH, F_NAME, F_TEXT, /* u16 length + bytes, into a wire_str */
};

typedef struct field {
	uint8_t kind;
	uint16_t off;
	const char *name;
} field;

#define F(k, s, m) {k, offsetof(s, m), #m}
#define FRSV {F_RSV16, 0, "reserved"}
#define FEND {F_END, 0, NULL}

static const field F_HELLO[] = {F(F_VERSION, wire_hello, version), FRSV,
	F(F_B32, wire_hello, nonce), F(F_NAME, wire_hello, name), FEND};
static const field F_AUTH[] = {F(F_VERSION, wire_auth, version), FRSV,
	F(F_U32, wire_auth, max_payload), F(F_B32, wire_auth, nonce),
	F(F_B32, wire_auth, mac), F(F_NAME, wire_auth, name), FEND};
static const field F_AUTH_OK[] = {F(F_B32, wire_auth_ok, mac),
	F(F_U32, wire_auth_ok, caps), F(F_U32, wire_auth_ok, max_payload),
	F(F_U32, wire_auth_ok, cdc_min), F(F_U32, wire_auth_ok, cdc_avg),
	F(F_U32, wire_auth_ok, cdc_max), F(F_U32, wire_auth_ok, fp_max), FEND};
static const field F_ERROR[] = {F(F_U32, wire_error, code), F(F_TEXT, wire_error, text),
	FEND};
static const field F_U64MSG[] = {F(F_U64, wire_u64, v), FEND};
static const field F_EMPTY[] = {FEND};
static const field F_PUT[] = {F(F_FLAGS, wire_put, flags), F(F_MODE, wire_put, mode),
	F(F_U32, wire_put, uid), F(F_U32, wire_put, gid), F(F_U64, wire_put, mtime_ns),
	F(F_U64, wire_put, size_hint), F(F_PATH, wire_put, path), FEND};
static const field F_PUT_OK[] = {F(F_U64, wire_put_ok, id), F(F_U64, wire_put_ok, size),
	F(F_U64, wire_put_ok, chunks), F(F_U64, wire_put_ok, chunks_new),
	F(F_U64, wire_put_ok, bytes_new), F(F_U64, wire_put_ok, bytes_stored), FEND};
static const field F_GET[] = {F(F_FLAGS, wire_get, flags), F(F_U64, wire_get, offset),
	F(F_U64, wire_get, length), F(F_PATH, wire_get, path), FEND};
static const field F_GET_OK[] = {F(F_U64, wire_get_ok, size),
	F(F_U64, wire_get_ok, length), F(F_U64, wire_get_ok, id), FEND};
static const field F_PATHREQ[] = {F(F_FLAGS, wire_pathreq, flags),
	F(F_PATH, wire_pathreq, path), FEND};
static const field F_MKDIR[] = {F(F_FLAGS, wire_pathreq, flags),
	F(F_MODE, wire_pathreq, mode), F(F_PATH, wire_pathreq, path), FEND};
static const field F_RENAME[] = {F(F_FLAGS, wire_rename, flags),
	F(F_PATH, wire_rename, from), F(F_PATH, wire_rename, to), FEND};
static const field F_ATTR[] = {F(F_FTYPE, wire_attr, type), F(F_MODE, wire_attr, mode),
	F(F_U32, wire_attr, uid), F(F_U32, wire_attr, gid), F(F_U32, wire_attr, nlink),
	F(F_U64, wire_attr, size), F(F_U64, wire_attr, mtime_ns),
	F(F_U64, wire_attr, ctime_ns), F(F_U64, wire_attr, id), FEND};
static const field F_ENDMSG[] = {F(F_U64, wire_end, count), F(F_B32, wire_end, digest),
	FEND};
static const field F_ENTRY[] = {F(F_FTYPE, wire_entry, type), F(F_MODE, wire_entry, mode),
	F(F_U64, wire_entry, size), F(F_U64, wire_entry, mtime_ns),
	F(F_U64, wire_entry, id), F(F_NAME, wire_entry, name), FEND};

_Static_assert(sizeof(int64_t) == sizeof(uint64_t), "times are stored as u64");

static const uint8_t FWIDTH[] = {[F_U8] = 1, [F_U32] = 4, [F_U64] = 8,
	[F_B32] = 32, [F_VERSION] = 2, [F_RSV16] = 2, [F_FLAGS] = 4, [F_MODE] = 4,
	[F_FTYPE] = 1};

/* Walk f over r into out; flags: the known bits of an F_FLAGS field. */
static int dec_fields(rd *r, const field *f, void *out, uint32_t flags)
{
	int rc;
	for (; f->kind != F_END; f++) {
		void *d = (uint8_t *)out + f->off;
		if (f->kind >= F_PATH) {
			enum skind k = f->kind == F_PATH ? S_PATH : f->kind == F_NAME ? S_NAME : S_TEXT;
			if ((rc = gstr(r, d, k, f->name)))
				return rc;
			continue;
		}
		if ((rc = need(r, FWIDTH[f->kind])))
			return rc;
		switch (f->kind) {
		case F_U8: *(uint8_t *)d = cur_get8(&r->c); break;
		case F_U32: *(uint32_t *)d = cur_get32(&r->c); break;
		case F_U64: *(uint64_t *)d = cur_get64(&r->c); break;
		case F_B32: cur_get_bytes(&r->c, d, 32); break;
		case F_VERSION:
			*(uint16_t *)d = cur_get16(&r->c);
			if (*(uint16_t *)d != WIRE_VERSION)
				return bks_fail(r->e, -EPROTONOSUPPORT, "%s: peer speaks protocol "
				                "version %u, this build only %u", r->what,
				                *(uint16_t *)d, WIRE_VERSION);
			break;
		case F_RSV16: {
			uint16_t v = cur_get16(&r->c);
			if (v)
				return bad(r, "reserved field 0x%04x", v);
			break;
		}
		case F_FLAGS:
			*(uint32_t *)d = cur_get32(&r->c);
			if (*(uint32_t *)d & ~flags)
				return bad(r, "unknown flags 0x%x", *(uint32_t *)d & ~flags);
			break;
		case F_MODE:
			*(uint32_t *)d = cur_get32(&r->c);
			if (*(uint32_t *)d & ~WIRE_MODE_MASK)
				return bad(r, "mode 0%o has bits outside 07777", *(uint32_t *)d);
			break;
		case F_FTYPE:
			*(uint8_t *)d = cur_get8(&r->c);
			if (*(uint8_t *)d != WIRE_FT_FILE && *(uint8_t *)d != WIRE_FT_DIR)
				return bad(r, "file type %u unknown", *(uint8_t *)d);
			break;
		}
	}
	return 0;
}

static void enc_fields(wr *w, const field *f, const void *in)
{
	const uint8_t *m = in;
	for (; f->kind != F_END; f++) {
		const void *s = m + f->off;
		switch (f->kind) {
		case F_U8:
		case F_FTYPE: cur_put8(&w->c, *(const uint8_t *)s); break;
		case F_VERSION: cur_put16(&w->c, *(const uint16_t *)s); break;
		case F_U32:
		case F_FLAGS:
		case F_MODE: cur_put32(&w->c, *(const uint32_t *)s); break;
		case F_U64: cur_put64(&w->c, *(const uint64_t *)s); break;
		case F_B32: cur_put_bytes(&w->c, s, 32); break;
		case F_RSV16: cur_put16(&w->c, 0); break;
		default: pstr(w, *(const wire_str *)s);
		}
	}
}

/* Value checks, after the structure has been read. */

static int chk_max_payload(rd *r, const char *who, uint32_t v)
{
	if (v < WIRE_MIN_PAYLOAD || v > WIRE_MAX_PAYLOAD_LIMIT)
		return bad(r, "%s max_payload %u outside %u..%u", who, v, WIRE_MIN_PAYLOAD,
		           WIRE_MAX_PAYLOAD_LIMIT);
	return 0;
}

static int chk_msg(rd *r, uint8_t type, const void *msg)
{
	switch (type) {
	case WIRE_AUTH:
		return chk_max_payload(r, "client", ((const wire_auth *)msg)->max_payload);
	case WIRE_AUTH_OK: {
		const wire_auth_ok *m = msg;
		int rc = chk_max_payload(r, "server", m->max_payload);
		if (rc)
			return rc;
		/* The chunker's rules (dedup/chunker.h), so a client can chunk like the store. */
		if (m->cdc_min < 64 || m->cdc_min >= m->cdc_avg || m->cdc_avg >= m->cdc_max ||
		    m->cdc_max > WIRE_CHUNK_MAX || (m->cdc_avg & (m->cdc_avg - 1)))
			return bad(r, "chunk sizes min %u avg %u max %u invalid", m->cdc_min,
			           m->cdc_avg, m->cdc_max);
		if (m->cdc_max > m->max_payload)
			return bad(r, "largest chunk %u does not fit a %u-byte frame", m->cdc_max,
			           m->max_payload);
		if (m->fp_max == 0 || m->fp_max > WIRE_FP_MAX ||
		    4 + (uint64_t)m->fp_max * WIRE_FP_ENTRY_LEN > m->max_payload)
			return bad(r, "fp_max %u outside 1..%u or larger than a frame", m->fp_max,
			           WIRE_FP_MAX);
		return 0;
	}
	case WIRE_ERROR:
		return ((const wire_error *)msg)->code ? 0 : bad(r, "error code 0");
	case WIRE_PUT_OK: {
		const wire_put_ok *m = msg;
		if (m->chunks_new > m->chunks)
			return bad(r, "%llu new chunks of %llu", (unsigned long long)m->chunks_new,
			           (unsigned long long)m->chunks);
		if (m->bytes_new > m->size)
			return bad(r, "%llu new bytes in a %llu-byte file",
			           (unsigned long long)m->bytes_new, (unsigned long long)m->size);
		return 0;
	}
	case WIRE_GET: {
		const wire_get *m = msg;
		if (m->length != WIRE_LEN_ALL && m->offset + m->length < m->offset)
			return bad(r, "offset %llu + length %llu wraps",
			           (unsigned long long)m->offset, (unsigned long long)m->length);
		return 0;
	}
	case WIRE_GET_OK: {
		const wire_get_ok *m = msg;
		if (m->length > m->size)
			return bad(r, "length %llu > size %llu", (unsigned long long)m->length,
			           (unsigned long long)m->size);
		return 0;
	}
	default: return 0;
	}
}

/* Field table, struct size and known flag bits per type. */
static const struct schema {
	const field *f;
	size_t size;
	uint32_t flags;
} SCHEMA[256] = {
#define S(T, tab, st, fl) [T] = {tab, sizeof(st), fl}
	S(WIRE_HELLO, F_HELLO, wire_hello, 0), S(WIRE_AUTH, F_AUTH, wire_auth, 0),
	S(WIRE_AUTH_OK, F_AUTH_OK, wire_auth_ok, 0), S(WIRE_ERROR, F_ERROR, wire_error, 0),
	S(WIRE_PING, F_U64MSG, wire_u64, 0), S(WIRE_PONG, F_U64MSG, wire_u64, 0),
	S(WIRE_OK, F_EMPTY, char, 0),
	S(WIRE_PUT, F_PUT, wire_put, WIRE_PUT_OVERWRITE | WIRE_PUT_SRC_DEDUP | WIRE_PUT_PARENTS |
	  WIRE_PUT_FP_DIGEST),
	S(WIRE_PUT_OK, F_PUT_OK, wire_put_ok, 0), S(WIRE_GET, F_GET, wire_get, 0),
	S(WIRE_GET_OK, F_GET_OK, wire_get_ok, 0), S(WIRE_STAT, F_PATHREQ, wire_pathreq, 0),
	S(WIRE_STAT_OK, F_ATTR, wire_attr, 0), S(WIRE_LIST, F_PATHREQ, wire_pathreq, 0),
	S(WIRE_LIST_END, F_U64MSG, wire_u64, 0),
	S(WIRE_MKDIR, F_MKDIR, wire_pathreq, WIRE_MKDIR_PARENTS),
	S(WIRE_RENAME, F_RENAME, wire_rename, WIRE_RENAME_NOREPLACE),
	S(WIRE_DELETE, F_PATHREQ, wire_pathreq, WIRE_DELETE_RECURSIVE),
	S(WIRE_STATUS, F_EMPTY, char, 0), S(WIRE_END, F_ENDMSG, wire_end, 0),
#undef S
};

static int dec(uint8_t type, const uint8_t *p, size_t n, void *out, bks_err *e)
{
	rd r = {{p, n, 0, 0}, TYPES[type].name, e};
	int rc;
	if (out)
		memset(out, 0, SCHEMA[type].size);
	if ((rc = dec_fields(&r, SCHEMA[type].f, out, SCHEMA[type].flags)) ||
	    (rc = rd_end(&r)))
		return rc;
	return chk_msg(&r, type, out);
}

static int enc(uint8_t *buf, size_t cap, uint8_t type, uint32_t tag, const void *m)
{
	wr w;
	enc_begin(&w, buf, cap, type, tag);
	enc_fields(&w, SCHEMA[type].f, m);
	return enc_finish(&w);
}

/* The per-type encoders of wire.h (decoding goes through wire_msg_decode). */
#define CODEC(name, T, TYPE)                                                        \
	int wire_##name##_encode(uint8_t *buf, size_t cap, uint32_t tag, const T *m)   \
	{                                                                               \
		return enc(buf, cap, TYPE, tag, m);                                         \
	}
CODEC(hello, wire_hello, WIRE_HELLO)
CODEC(auth, wire_auth, WIRE_AUTH)
CODEC(auth_ok, wire_auth_ok, WIRE_AUTH_OK)
CODEC(error, wire_error, WIRE_ERROR)
CODEC(put, wire_put, WIRE_PUT)
CODEC(put_ok, wire_put_ok, WIRE_PUT_OK)
CODEC(get, wire_get, WIRE_GET)
CODEC(get_ok, wire_get_ok, WIRE_GET_OK)
CODEC(rename, wire_rename, WIRE_RENAME)
CODEC(attr, wire_attr, WIRE_STAT_OK)
CODEC(end, wire_end, WIRE_END)

int wire_error_encodef(uint8_t *buf, size_t cap, uint32_t tag, int err, const char *fmt,
                       ...)
{
	char text[WIRE_TEXT_MAX + 1];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	wire_error m = {wire_code_from_errno(err), wire_s(text)};
	return wire_error_encode(buf, cap, tag, &m);
}

static int is_pathreq(uint8_t type)
{
	return type == WIRE_STAT || type == WIRE_LIST || type == WIRE_MKDIR ||
	       type == WIRE_DELETE;
}

int wire_pathreq_encode(uint8_t *buf, size_t cap, uint8_t type, uint32_t tag,
                        const wire_pathreq *m)
{
	return is_pathreq(type) ? enc(buf, cap, type, tag, m) : -EINVAL;
}

static int is_u64(uint8_t type)
{
	return type == WIRE_PING || type == WIRE_PONG || type == WIRE_LIST_END;
}

int wire_u64_encode(uint8_t *buf, size_t cap, uint8_t type, uint32_t tag, uint64_t v)
{
	wire_u64 m = {v};
	return is_u64(type) ? enc(buf, cap, type, tag, &m) : -EINVAL;
}

int wire_empty_encode(uint8_t *buf, size_t cap, uint8_t type, uint32_t tag)
{
	return type == WIRE_OK || type == WIRE_STATUS ? enc(buf, cap, type, tag, NULL)
	                                              : -EINVAL;
}

/* ---- messages that are (mostly) bytes ---- */

static int wire_status_ok_decode(const uint8_t *p, size_t n, wire_status_ok *out, bks_err *e)
{
	out->text.p = (const char *)p;
	out->text.len = 0;
	if (n > WIRE_MAX_PAYLOAD_LIMIT)
		return bks_fail(e, -EMSGSIZE, "STATUS_OK: %zu bytes", n);
	const char *nul = n ? memchr(p, '\0', n) : NULL;
	if (nul)
		return bks_fail(e, -EILSEQ, "STATUS_OK: NUL byte at offset %td",
		                nul - (const char *)p);
	out->text.len = (uint32_t)n;
	return 0;
}

static int wire_status_ok_encode(uint8_t *buf, size_t cap, uint32_t tag, const wire_status_ok *m)
{
	wr w;
	enc_begin(&w, buf, cap, WIRE_STATUS_OK, tag);
	cur_put_bytes(&w.c, m->text.p, m->text.len);
	return enc_finish(&w);
}

static int wire_bytes_decode(uint8_t type, const uint8_t *p, size_t n, wire_bytes *out,
                      bks_err *e)
{
	out->p = p;
	out->len = 0;
	if (type != WIRE_DATA && type != WIRE_CHUNK)
		return bks_fail(e, -EINVAL, "%s is not DATA or CHUNK", wire_type_name(type));
	if (n == 0)
		return bks_fail(e, -EBADMSG, "%s: empty", wire_type_name(type));
	if (n > TYPES[type].max)
		return bks_fail(e, -EMSGSIZE, "%s: %zu bytes, at most %u", wire_type_name(type),
		                n, TYPES[type].max);
	out->len = (uint32_t)n;
	return 0;
}

static int wire_bytes_encode(uint8_t *buf, size_t cap, uint8_t type, uint32_t tag,
                      const void *data, uint32_t len)
{
	wr w;
	if (type != WIRE_DATA && type != WIRE_CHUNK)
		return -EINVAL;
	enc_begin(&w, buf, cap, type, tag);
	cur_put_bytes(&w.c, data, len);
	return enc_finish(&w);
}

/* ---- LIST_ITEMS ---- */

static int get_entry(rd *r, wire_entry *out)
{
	return dec_fields(r, F_ENTRY, out, 0);
}

static int wire_items_decode(const uint8_t *p, size_t n, wire_items *out, bks_err *e)
{
	rd r = {{p, n, 0, 0}, "LIST_ITEMS", e};
	bks_err sub = {0};
	wire_entry ent;
	int rc;
	memset(out, 0, sizeof(*out));
	if (n > WIRE_MAX_PAYLOAD_LIMIT)
		return bks_fail(e, -EMSGSIZE, "LIST_ITEMS: %zu bytes", n);
	if ((rc = need(&r, 4)))
		return rc;
	uint32_t count = cur_get32(&r.c);
	if (count == 0)
		return bad(&r, "no entries");
	/* Before walking: every entry takes at least WIRE_ENTRY_FIXED + 1 bytes. */
	if (count > (n - 4) / (WIRE_ENTRY_FIXED + 1))
		return bks_fail(e, -EOVERFLOW, "LIST_ITEMS: %u entries cannot fit %zu bytes",
		                count, n - 4);
	r.e = &sub;
	for (uint32_t i = 0; i < count; i++)
		if ((rc = get_entry(&r, &ent)))
			return bks_fail(e, rc, "%s (entry %u)", sub.msg, i);
	r.e = e;
	if ((rc = rd_end(&r)))
		return rc;
	out->count = count;
	out->raw = p + 4;
	out->raw_len = n - 4;
	return 0;
}

int wire_items_next(const wire_items *it, size_t *pos, wire_entry *out)
{
	rd r = {{it->raw, it->raw_len, *pos, 0}, "LIST_ITEMS", NULL};
	if (*pos >= it->raw_len || get_entry(&r, out) != 0)
		return 0; /* get_entry cannot fail on a decoded wire_items */
	*pos = r.c.pos;
	return 1;
}

void wire_items_begin(wire_items_builder *b, uint8_t *buf, size_t cap, uint32_t tag)
{
	b->buf = buf;
	b->cap = BKS_MIN(cap, (size_t)WIRE_HDR_LEN + WIRE_MAX_PAYLOAD_LIMIT);
	b->pos = WIRE_HDR_LEN + 4;
	b->tag = tag;
	b->count = 0;
}

int wire_items_add(wire_items_builder *b, const wire_entry *ent)
{
	int rc;
	if ((ent->type != WIRE_FT_FILE && ent->type != WIRE_FT_DIR) ||
	    (ent->mode & ~WIRE_MODE_MASK))
		return -EINVAL;
	if ((rc = wire_name_check(ent->name.p, ent->name.len, NULL)))
		return rc;
	if (b->pos > b->cap || WIRE_ENTRY_FIXED + ent->name.len > b->cap - b->pos)
		return -ENOSPC;
	wr w = {{b->buf, b->cap, b->pos, 0}, 0, WIRE_LIST_ITEMS};
	enc_fields(&w, F_ENTRY, ent);
	b->pos = w.c.pos;
	b->count++;
	return 0;
}

int wire_items_finish(wire_items_builder *b)
{
	wr w;
	if (b->count == 0 || b->pos > b->cap)
		return -EINVAL;
	enc_begin(&w, b->buf, b->cap, WIRE_LIST_ITEMS, b->tag);
	le_put32(b->buf + WIRE_HDR_LEN, b->count);
	w.c.pos = b->pos;
	return enc_finish(&w);
}

/* ---- FP_LIST, FP_NEED ---- */

int wire_fp_list_decode(const uint8_t *p, size_t n, wire_fp_list *out, bks_err *e)
{
	rd r = {{p, n, 0, 0}, "FP_LIST", e};
	int rc;
	memset(out, 0, sizeof(*out));
	if ((rc = need(&r, 4)))
		return rc;
	uint32_t count = cur_get32(&r.c);
	if (count == 0)
		return bad(&r, "no entries");
	if (count > WIRE_FP_MAX)
		return bks_fail(e, -EOVERFLOW, "FP_LIST: %u entries, at most %u", count,
		                WIRE_FP_MAX);
	if ((uint64_t)count * WIRE_FP_ENTRY_LEN > n - 4)
		return bks_fail(e, -EOVERFLOW, "FP_LIST: %u entries need %llu bytes, payload "
		                "has %zu", count,
		                (unsigned long long)count * WIRE_FP_ENTRY_LEN, n - 4);
	cur_skip(&r.c, (size_t)count * WIRE_FP_ENTRY_LEN);
	if ((rc = rd_end(&r)))
		return rc;
	for (uint32_t i = 0; i < count; i++) {
		uint32_t len = le_get32(p + 4 + (size_t)i * WIRE_FP_ENTRY_LEN + 32);
		if (len == 0 || len > WIRE_CHUNK_MAX)
			return bad(&r, "entry %u: chunk length %u outside 1..%u", i, len,
			           WIRE_CHUNK_MAX);
	}
	out->count = count;
	out->raw = p + 4;
	return 0;
}

void wire_fp_list_get(const wire_fp_list *l, uint32_t i, wire_fp *out)
{
	assert(i < l->count);
	const uint8_t *q = l->raw + (size_t)i * WIRE_FP_ENTRY_LEN;
	memcpy(out->fp, q, WIRE_SHA256_LEN);
	out->len = le_get32(q + WIRE_SHA256_LEN);
}

int wire_fp_list_encode(uint8_t *buf, size_t cap, uint32_t tag, const wire_fp *v,
                        uint32_t count)
{
	wr w;
	if (count == 0 || count > WIRE_FP_MAX)
		return count ? -EOVERFLOW : -EINVAL;
	enc_begin(&w, buf, cap, WIRE_FP_LIST, tag);
	cur_put32(&w.c, count);
	for (uint32_t i = 0; i < count && !w.c.err; i++) {
		cur_put_bytes(&w.c, v[i].fp, WIRE_SHA256_LEN);
		cur_put32(&w.c, v[i].len);
	}
	return enc_finish(&w);
}

int wire_fp_need_decode(const uint8_t *p, size_t n, wire_fp_need *out, bks_err *e)
{
	rd r = {{p, n, 0, 0}, "FP_NEED", e};
	int rc;
	memset(out, 0, sizeof(*out));
	if ((rc = need(&r, 4)))
		return rc;
	uint32_t count = cur_get32(&r.c);
	if (count == 0)
		return bad(&r, "no entries");
	if (count > WIRE_FP_MAX)
		return bks_fail(e, -EOVERFLOW, "FP_NEED: %u entries, at most %u", count,
		                WIRE_FP_MAX);
	size_t nb = WIRE_BITMAP_BYTES(count);
	if (nb > n - 4)
		return bks_fail(e, -EOVERFLOW, "FP_NEED: %u entries need a %zu-byte bitmap, "
		                "payload has %zu", count, nb, n - 4);
	cur_skip(&r.c, nb);
	if ((rc = rd_end(&r)))
		return rc;
	if (count % 8 && (p[4 + nb - 1] >> (count % 8)))
		return bad(&r, "bits set past entry %u", count);
	out->count = count;
	out->bits = p + 4;
	return 0;
}

int wire_fp_need_encode(uint8_t *buf, size_t cap, uint32_t tag, uint32_t count,
                        const uint8_t *bits)
{
	wr w;
	if (count == 0 || count > WIRE_FP_MAX)
		return count ? -EOVERFLOW : -EINVAL;
	enc_begin(&w, buf, cap, WIRE_FP_NEED, tag);
	cur_put32(&w.c, count);
	cur_put_bytes(&w.c, bits, WIRE_BITMAP_BYTES(count));
	return enc_finish(&w);
}

/* ---- any message ---- */

int wire_msg_decode(uint8_t type, const uint8_t *p, size_t n, wire_msg *m, bks_err *e)
{
	memset(m, 0, sizeof(*m));
	m->type = type;
	switch (type) {
	case WIRE_LIST_ITEMS: return wire_items_decode(p, n, &m->u.items, e);
	case WIRE_STATUS_OK: return wire_status_ok_decode(p, n, &m->u.status, e);
	case WIRE_DATA:
	case WIRE_CHUNK: return wire_bytes_decode(type, p, n, &m->u.bytes, e);
	case WIRE_FP_LIST: return wire_fp_list_decode(p, n, &m->u.fp_list, e);
	case WIRE_FP_NEED: return wire_fp_need_decode(p, n, &m->u.fp_need, e);
	default:
		if (!SCHEMA[type].f)
			return bks_fail(e, -EOPNOTSUPP, "unknown frame type 0x%02x", type);
		return dec(type, p, n, &m->u, e);
	}
}

/* Bulk views (LIST_ITEMS, FP_LIST) re-encode from their raw bytes. */
static int raw_encode(uint8_t *buf, size_t cap, uint8_t type, uint32_t tag,
                      uint32_t count, const uint8_t *raw, size_t len)
{
	wr w;
	enc_begin(&w, buf, cap, type, tag);
	cur_put32(&w.c, count);
	cur_put_bytes(&w.c, raw, len);
	return enc_finish(&w);
}

int wire_msg_encode(uint8_t *buf, size_t cap, uint32_t tag, const wire_msg *m)
{
	switch (m->type) {
	case WIRE_LIST_ITEMS:
		return raw_encode(buf, cap, m->type, tag, m->u.items.count, m->u.items.raw,
		                  m->u.items.raw_len);
	case WIRE_STATUS_OK: return wire_status_ok_encode(buf, cap, tag, &m->u.status);
	case WIRE_DATA:
	case WIRE_CHUNK:
		return wire_bytes_encode(buf, cap, m->type, tag, m->u.bytes.p, m->u.bytes.len);
	case WIRE_FP_LIST:
		return raw_encode(buf, cap, m->type, tag, m->u.fp_list.count, m->u.fp_list.raw,
		                  (size_t)m->u.fp_list.count * WIRE_FP_ENTRY_LEN);
	case WIRE_FP_NEED:
		return wire_fp_need_encode(buf, cap, tag, m->u.fp_need.count, m->u.fp_need.bits);
	default: return SCHEMA[m->type].f ? enc(buf, cap, m->type, tag, &m->u) : -EINVAL;
	}
}

int wire_frame_decode(const uint8_t *buf, size_t len, size_t max_payload, wire_hdr *h,
                      wire_msg *m, bks_err *e)
{
	int rc = wire_hdr_decode(buf, len, max_payload, h, e);
	if (rc)
		return rc;
	if (len - WIRE_HDR_LEN < h->len)
		return bks_fail(e, -EAGAIN, "%s frame: %zu of %u payload bytes",
		                wire_type_name(h->type), len - WIRE_HDR_LEN, h->len);
	rc = wire_msg_decode(h->type, buf + WIRE_HDR_LEN, h->len, m, e);
	return rc ? rc : WIRE_HDR_LEN + (int)h->len;
}

/* ---- the END digest ---- */

struct wire_digest {
	XXH3_state_t *st;
};

wire_digest *wire_digest_new(void)
{
	wire_digest *d = malloc(sizeof(*d));
	if (!d)
		return NULL;
	if (!(d->st = XXH3_createState()) || XXH3_128bits_reset(d->st) != XXH_OK) {
		wire_digest_free(d);
		return NULL;
	}
	return d;
}

void wire_digest_update(wire_digest *d, const void *p, size_t n)
{
	XXH3_128bits_update(d->st, p, n);
}

void wire_digest_final(wire_digest *d, uint8_t out[WIRE_DIGEST_LEN])
{
	XXH128_canonical_t c;
	XXH128_canonicalFromHash(&c, XXH3_128bits_digest(d->st));
	memset(out, 0, WIRE_DIGEST_LEN);
	memcpy(out, c.digest, sizeof(c.digest));
}

void wire_digest_free(wire_digest *d)
{
	if (!d)
		return;
	if (d->st)
		XXH3_freeState(d->st);
	free(d);
}
