/* proto/wire.h: the native streaming protocol's wire format (docs/protocol.md).
 * Pure: no sockets, no threads, no allocation, no global state. The server and the
 * client do the I/O and keep the connection state; this module turns messages into
 * bytes and bytes into validated messages, so every check can be fuzzed
 * (fuzz/fuzz-wire.c) and both ends share one definition of "valid".
 *
 * A frame is a 16-byte header followed by `len` payload bytes:
 *   0  4  magic "BKSN"         8  4  tag (the request's; replies echo it)
 *   4  1  type (enum wire_type) 12 4  payload length
 *   5  1  flags (0 in v1)
 *   6  2  reserved (0)
 * All integers little-endian. Strings are a u16 length and that many bytes (no NUL).
 *
 * Reading frames:
 *   1. wire_hdr_decode() on the bytes received so far: 0 once the 16 header bytes
 *      are there and valid, -EAGAIN while fewer than 16 bytes are (it only ever looks
 *      at the first WIRE_HDR_LEN bytes). The header check bounds the payload (type
 *      known, length within the type's limits and max_payload) BEFORE anything reads
 *      or buffers it: check the type against the connection state at this point.
 *   2. read h.len payload bytes, then wire_msg_decode().
 *   wire_frame_decode() does both over a buffer that may hold a whole frame.
 *
 * Writing frames: every wire_X_encode() writes a WHOLE frame (header + payload) into
 * buf[0..cap) and returns its length, -ENOSPC when cap is too small (nothing is
 * written past cap), or the error the decoder would give for the same message (an
 * encoder never produces a frame the decoder refuses). For bulk bytes without a copy,
 * write wire_hdr_encode()'s 16 bytes and the data with writev().
 *
 * Ownership: decoded strings, byte runs, entry lists and bitmaps are views into the
 * payload buffer that was decoded (wire_str.p etc. point into it, strings are not
 * NUL-terminated: print with "%.*s"). They are valid while that buffer is alive and
 * unchanged; copy what must outlive it (wire_str_copy). Encoders read the caller's
 * struct and its views only during the call.
 *
 * Errors (negative errno, one class each, with a message in e naming the message
 * type and the field):
 *   -EAGAIN          header incomplete (not an error: read more)
 *   -EPROTO          bad magic (not this protocol)
 *   -EPROTONOSUPPORT header flags/reserved bits set, or HELLO/AUTH version not 1
 *   -EOPNOTSUPP      unknown message type
 *   -EMSGSIZE        payload length above max_payload or the type's maximum
 *   -EBADMSG         lengths that do not add up: payload shorter than its fields, a
 *                    string running past the end, trailing bytes
 *   -EOVERFLOW       a count larger than the payload holds or than its limit
 *   -ENAMETOOLONG    path > WIRE_PATH_MAX, name or component > WIRE_NAME_MAX, text
 *                    > WIRE_TEXT_MAX
 *   -EILSEQ          string content not valid (empty, NUL byte, '/' in a name, path
 *                    not canonical)
 *   -EINVAL          a field out of range (unknown flag bits, mode, type, code 0, ...)
 *   -ENOSPC          (encoders) the frame does not fit the caller's buffer
 */
#ifndef BKS_WIRE_H
#define BKS_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "common/bks.h"

#define WIRE_VERSION 1u
#define WIRE_PORT 7070
#define WIRE_HDR_LEN 16
#define WIRE_MAGIC "BKSN"

/* Payload limits. max_payload (the config's max_frame, default 4 MiB) bounds the bulk
 * frames (DATA, CHUNK, LIST_ITEMS, FP_LIST, STATUS_OK); control frames have small fixed
 * maxima of their own and always fit WIRE_CTRL_MAX. Each side tells the other its
 * max_payload (AUTH, AUTH_OK) and sends no bulk frame larger than the peer's. */
#define WIRE_MAX_PAYLOAD_DEFAULT (4u << 20)
#define WIRE_MAX_PAYLOAD_LIMIT (64u << 20) /* a larger max_payload is taken as this */
#define WIRE_MIN_PAYLOAD (64u << 10)       /* smallest max_payload a peer may announce */
#define WIRE_CTRL_MAX 8448                 /* bytes of any non-bulk frame, header included */
#define WIRE_PATH_MAX 4095                 /* bytes of a path */
#define WIRE_NAME_MAX 255                  /* bytes of a name or a path component */
#define WIRE_TEXT_MAX 1024                 /* bytes of an ERROR text */
#define WIRE_NONCE_LEN 32
#define WIRE_MAC_LEN 32
#define WIRE_SHA256_LEN 32
#define WIRE_DIGEST_LEN 32                 /* END: XXH3-128 + 16 zero bytes */
#define WIRE_FP_MAX 4096                   /* entries in one FP_LIST */
#define WIRE_FP_ENTRY_LEN 36               /* fingerprint 32 + raw length u32 */
#define WIRE_CHUNK_MAX (4u << 20)          /* bytes of one chunk (CDC_MAX_LIMIT) */
#define WIRE_ENTRY_FIXED 31                /* LIST_ITEMS entry without its name */
#define WIRE_LEN_ALL UINT64_MAX            /* GET: to the end of the file */
#define WIRE_SIZE_UNKNOWN UINT64_MAX       /* PUT: size not known in advance */
#define WIRE_BITMAP_BYTES(n) (((size_t)(n) + 7) / 8)

enum wire_type {
	WIRE_HELLO = 0x01,      /* S->C  first frame of a connection */
	WIRE_AUTH = 0x02,       /* C->S  answer to HELLO */
	WIRE_AUTH_OK = 0x03,    /* S->C  client accepted; server's proof and limits */
	WIRE_ERROR = 0x04,      /* both  a request failed (tag) or the connection ends */
	WIRE_PING = 0x05,       /* C->S */
	WIRE_PONG = 0x06,       /* S->C */
	WIRE_OK = 0x07,         /* S->C  MKDIR, RENAME, DELETE done */
	WIRE_PUT = 0x10,        /* C->S  then DATA* END, or (FP_LIST FP_NEED CHUNK*)* END */
	WIRE_PUT_OK = 0x11,     /* S->C  the file is durable and linked */
	WIRE_GET = 0x12,        /* C->S */
	WIRE_GET_OK = 0x13,     /* S->C  then DATA* END */
	WIRE_STAT = 0x14,
	WIRE_STAT_OK = 0x15,
	WIRE_LIST = 0x16,
	WIRE_LIST_ITEMS = 0x17, /* S->C  zero or more, then LIST_END */
	WIRE_LIST_END = 0x18,
	WIRE_MKDIR = 0x19,
	WIRE_RENAME = 0x1a,
	WIRE_DELETE = 0x1b,
	WIRE_STATUS = 0x1c,
	WIRE_STATUS_OK = 0x1d,  /* S->C  JSON text */
	WIRE_DATA = 0x20,       /* both  file bytes (PUT: C->S, GET: S->C) */
	WIRE_END = 0x21,        /* both  byte count + XXH3-128 digest of the stream */
	WIRE_FP_LIST = 0x22,    /* C->S  source dedup: fingerprints of the next chunks */
	WIRE_FP_NEED = 0x23,    /* S->C  bitmap of the chunks the server needs */
	WIRE_CHUNK = 0x24,      /* C->S  one needed chunk's bytes */
};

/* Who may send a type (for the connection state checks). */
enum wire_dir { WIRE_DIR_C2S = 1, WIRE_DIR_S2C = 2, WIRE_DIR_BOTH = 3 };

/* Flag bits; any other bit is refused (-EINVAL). */
#define WIRE_PUT_OVERWRITE 0x1u  /* replace an existing file; without it: EEXIST */
#define WIRE_PUT_SRC_DEDUP 0x2u  /* source-side dedup exchange instead of DATA */
#define WIRE_PUT_PARENTS 0x4u    /* create missing parent directories */
/* With SRC_DEDUP only, and only to a server whose AUTH_OK has WIRE_CAP_FP_DIGEST: END's
 * digest is the XXH3-128 of the fingerprint stream (every FP_LIST entry, 36 wire bytes
 * each, in order), which the server checks (docs/protocol.md, "Source-side dedup"). */
#define WIRE_PUT_FP_DIGEST 0x8u
#define WIRE_MKDIR_PARENTS 0x1u  /* create missing parents; an existing dir is OK */
#define WIRE_RENAME_NOREPLACE 0x1u /* fail with EEXIST if `to` exists */
#define WIRE_DELETE_RECURSIVE 0x1u /* a directory and everything under it */
#define WIRE_CAP_SRC_DEDUP 0x1u  /* AUTH_OK caps: the server takes SRC_DEDUP PUTs */
#define WIRE_CAP_FP_DIGEST 0x2u  /* AUTH_OK caps: the server takes PUT_FP_DIGEST */

#define WIRE_MODE_MASK 07777u    /* permission bits; the type is separate */

enum wire_ftype { WIRE_FT_FILE = 1, WIRE_FT_DIR = 2 };

/* ERROR codes: fixed by the protocol (the values are Linux's errno numbers, but a
 * peer must map them with wire_code_*, never assume its own errno values). A decoder
 * accepts any non-zero code; unknown ones map to EIO. */
enum wire_code {
	WIRE_E_PERM = 1, WIRE_E_NOENT = 2, WIRE_E_IO = 5, WIRE_E_AGAIN = 11,
	WIRE_E_NOMEM = 12, WIRE_E_ACCES = 13, WIRE_E_BUSY = 16, WIRE_E_EXIST = 17,
	WIRE_E_XDEV = 18, WIRE_E_NOTDIR = 20, WIRE_E_ISDIR = 21, WIRE_E_INVAL = 22,
	WIRE_E_FBIG = 27, WIRE_E_NOSPC = 28, WIRE_E_ROFS = 30, WIRE_E_NAMETOOLONG = 36,
	WIRE_E_NOTEMPTY = 39, WIRE_E_PROTO = 71, WIRE_E_BADMSG = 74,
	WIRE_E_OVERFLOW = 75, WIRE_E_ILSEQ = 84, WIRE_E_MSGSIZE = 90,
	WIRE_E_PROTONOSUPPORT = 93, WIRE_E_NOTSUP = 95, WIRE_E_TIMEDOUT = 110,
	WIRE_E_DQUOT = 122, WIRE_E_CANCELED = 125,
};
/* err: an errno value, negative or positive; unknown ones (and 0) give WIRE_E_IO. */
uint32_t wire_code_from_errno(int err);
/* The host's negative errno for a code; unknown codes give -EIO. */
int wire_code_to_errno(uint32_t code);
const char *wire_code_name(uint32_t code); /* "ENOENT", or "E?" */

/* ---- strings ---- */

/* A byte string: decoded, a view into the payload (not NUL-terminated); to encode,
 * the caller's bytes. */
typedef struct wire_str {
	const char *p;
	uint32_t len;
} wire_str;

wire_str wire_s(const char *cstr); /* view of a C string (NULL gives an empty one) */
int wire_str_eq(wire_str s, const char *cstr);
/* Copy into dst as a C string. Returns 0, or -ENAMETOOLONG if len + 1 > cap (dst
 * then holds a truncated copy). */
int wire_str_copy(wire_str s, char *dst, size_t cap);

/* Paths are canonical and absolute: "/" or "/c1/c2/...": no empty, "." or ".."
 * component, no trailing '/', no NUL, 1..WIRE_PATH_MAX bytes, components of at most
 * WIRE_NAME_MAX bytes. Other bytes (UTF-8 or not) are the file's name as given. */
int wire_path_check(const char *p, size_t len, bks_err *e);
/* Names (peer names, LIST entries): 1..WIRE_NAME_MAX bytes, no '/', no NUL, not "."
 * or "..". */
int wire_name_check(const char *p, size_t len, bks_err *e);

/* ---- header ---- */

typedef struct wire_hdr {
	uint8_t type;   /* enum wire_type */
	uint8_t flags;  /* 0 in v1 */
	uint32_t tag;
	uint32_t len;   /* payload bytes after the header */
} wire_hdr;

/* Decode the header at buf[0..len); max_payload 0 means WIRE_MAX_PAYLOAD_DEFAULT.
 * 0 (h filled), -EAGAIN if len < WIRE_HDR_LEN (but -EPROTO at once when the bytes
 * there already differ from the magic), or an error above. */
int wire_hdr_decode(const uint8_t *buf, size_t len, size_t max_payload, wire_hdr *h,
                    bks_err *e);
/* Write a header; returns WIRE_HDR_LEN, or -EINVAL if type is unknown or len is not
 * a valid payload length for it. */
int wire_hdr_encode(uint8_t out[WIRE_HDR_LEN], uint8_t type, uint32_t tag, uint32_t len);

const char *wire_type_name(unsigned type); /* "PUT", or "?" */
unsigned wire_type_dir(unsigned type);     /* enum wire_dir, 0 if unknown */

/* ---- messages ---- (field order = byte order; layouts in docs/protocol.md) */

typedef struct wire_hello {        /* HELLO */
	uint16_t version;              /* WIRE_VERSION */
	uint8_t nonce[WIRE_NONCE_LEN]; /* server nonce, fresh per connection */
	wire_str name;                 /* server name (a name) */
} wire_hello;

typedef struct wire_auth {         /* AUTH */
	uint16_t version;              /* WIRE_VERSION */
	uint32_t max_payload;          /* client's limit for bulk frames it receives */
	uint8_t nonce[WIRE_NONCE_LEN]; /* client nonce */
	uint8_t mac[WIRE_MAC_LEN];     /* auth_client_mac() */
	wire_str name;                 /* client name (a name): selects the secret */
} wire_auth;

typedef struct wire_auth_ok {      /* AUTH_OK */
	uint8_t mac[WIRE_MAC_LEN];     /* auth_server_mac() */
	uint32_t caps;                 /* WIRE_CAP_*; unknown bits are to be ignored */
	uint32_t max_payload;          /* server's limit for bulk frames it receives */
	uint32_t cdc_min, cdc_avg, cdc_max; /* the store's chunking, for SRC_DEDUP */
	uint32_t fp_max;               /* entries per FP_LIST the server takes */
} wire_auth_ok;

typedef struct wire_error {        /* ERROR */
	uint32_t code;                 /* enum wire_code, not 0 */
	wire_str text;                 /* 0..WIRE_TEXT_MAX bytes for a person, no NUL */
} wire_error;

typedef struct wire_put {          /* PUT */
	uint32_t flags;                /* WIRE_PUT_* */
	uint32_t mode;                 /* WIRE_MODE_MASK bits */
	uint32_t uid, gid;             /* the source file's owner (the server may squash) */
	int64_t mtime_ns;              /* ns since the epoch */
	uint64_t size_hint;            /* expected bytes, or WIRE_SIZE_UNKNOWN */
	wire_str path;
} wire_put;

typedef struct wire_put_ok {       /* PUT_OK */
	uint64_t id;                   /* the object */
	uint64_t size;                 /* bytes in the file */
	uint64_t chunks, chunks_new;   /* chunks_new <= chunks */
	uint64_t bytes_new;            /* raw bytes of the new chunks, <= size */
	uint64_t bytes_stored;         /* what those took after compression */
} wire_put_ok;

typedef struct wire_get {          /* GET */
	uint32_t flags;                /* none defined: 0 */
	uint64_t offset;
	uint64_t length;               /* or WIRE_LEN_ALL; offset + length must not wrap */
	wire_str path;
} wire_get;

typedef struct wire_get_ok {       /* GET_OK */
	uint64_t size;                 /* the file's size */
	uint64_t length;               /* bytes that follow in DATA frames, <= size */
	uint64_t id;
} wire_get_ok;

typedef struct wire_pathreq {      /* STAT, LIST, DELETE, MKDIR */
	uint32_t flags;                /* STAT, LIST: 0; DELETE: WIRE_DELETE_*; MKDIR: WIRE_MKDIR_* */
	uint32_t mode;                 /* MKDIR only (WIRE_MODE_MASK); absent on the wire otherwise */
	wire_str path;
} wire_pathreq;

typedef struct wire_rename {       /* RENAME */
	uint32_t flags;                /* WIRE_RENAME_* */
	wire_str from, to;
} wire_rename;

typedef struct wire_attr {         /* STAT_OK */
	uint8_t type;                  /* enum wire_ftype */
	uint32_t mode, uid, gid, nlink;
	uint64_t size;                 /* a directory: its number of entries */
	int64_t mtime_ns, ctime_ns;
	uint64_t id;                   /* object id (a directory's inode-like id) */
} wire_attr;

typedef struct wire_entry {        /* one LIST_ITEMS entry */
	uint8_t type;                  /* enum wire_ftype */
	uint32_t mode;
	uint64_t size;
	int64_t mtime_ns;
	uint64_t id;
	wire_str name;                 /* a name */
} wire_entry;

typedef struct wire_items {        /* LIST_ITEMS: validated entries, read with wire_items_next */
	uint32_t count;                /* >= 1 */
	const uint8_t *raw;            /* the encoded entries (view) */
	size_t raw_len;
} wire_items;

typedef struct wire_u64 {          /* PING, PONG (cookie echoed), LIST_END (entries sent) */
	uint64_t v;
} wire_u64;

typedef struct wire_bytes {        /* DATA, CHUNK: the payload itself (view) */
	const uint8_t *p;
	uint32_t len;                  /* >= 1 */
} wire_bytes;

typedef struct wire_end {          /* END */
	uint64_t count;                /* bytes in the stream */
	uint8_t digest[WIRE_DIGEST_LEN]; /* wire_digest of those bytes */
} wire_end;

/* END's digest: XXH3-128 of the stream's bytes (the 16 bytes of XXH128_canonical_t),
 * then 16 zero bytes. An end-to-end check against transmission and implementation
 * errors on an authenticated connection, at memory speed; chunks carry their own
 * SHA-256 fingerprints (what identity rests on). */
typedef struct wire_digest wire_digest;
wire_digest *wire_digest_new(void);   /* NULL when out of memory */
void wire_digest_update(wire_digest *d, const void *p, size_t n);
void wire_digest_final(wire_digest *d, uint8_t out[WIRE_DIGEST_LEN]);
void wire_digest_free(wire_digest *d); /* accepts NULL */

typedef struct wire_fp {           /* one FP_LIST entry */
	uint8_t fp[WIRE_SHA256_LEN];   /* SHA-256 of the chunk's raw bytes */
	uint32_t len;                  /* raw length, 1..WIRE_CHUNK_MAX */
} wire_fp;

typedef struct wire_fp_list {      /* FP_LIST: count entries of 36 bytes at raw (view) */
	uint32_t count;                /* 1..WIRE_FP_MAX */
	const uint8_t *raw;
} wire_fp_list;

typedef struct wire_fp_need {      /* FP_NEED: bit i set = send chunk i (view) */
	uint32_t count;                /* = the FP_LIST's count */
	const uint8_t *bits;           /* WIRE_BITMAP_BYTES(count) bytes, LSB first */
} wire_fp_need;

typedef struct wire_status_ok {    /* STATUS_OK */
	wire_str text;                 /* JSON, no NUL */
} wire_status_ok;

/* Any message; type selects the member. OK and STATUS have no payload. */
typedef struct wire_msg {
	uint8_t type;
	union {
		wire_hello hello;
		wire_auth auth;
		wire_auth_ok auth_ok;
		wire_error error;
		wire_u64 ping;           /* PING, PONG */
		wire_put put;
		wire_put_ok put_ok;
		wire_get get;
		wire_get_ok get_ok;
		wire_pathreq req;        /* STAT, LIST, MKDIR, DELETE */
		wire_rename rename;
		wire_attr attr;          /* STAT_OK */
		wire_items items;        /* LIST_ITEMS */
		wire_u64 list_end;       /* LIST_END */
		wire_status_ok status;   /* STATUS_OK */
		wire_bytes bytes;        /* DATA, CHUNK */
		wire_end end;
		wire_fp_list fp_list;
		wire_fp_need fp_need;
	} u;
} wire_msg;

/* Decode and validate the payload p[0..n) of a frame of the given type. */
int wire_msg_decode(uint8_t type, const uint8_t *p, size_t n, wire_msg *m, bks_err *e);
/* Encode m (type m->type) as a whole frame. */
int wire_msg_encode(uint8_t *buf, size_t cap, uint32_t tag, const wire_msg *m);
/* Header + payload from buf[0..len): the frame's length (> 0) with h and m filled
 * (m's views point into buf), -EAGAIN if the frame is not all there yet, or an
 * error. */
int wire_frame_decode(const uint8_t *buf, size_t len, size_t max_payload, wire_hdr *h,
                      wire_msg *m, bks_err *e);

/* Per-type encoders (whole frame); wire_msg_decode decodes every type. */
int wire_hello_encode(uint8_t *buf, size_t cap, uint32_t tag, const wire_hello *m);
int wire_auth_encode(uint8_t *buf, size_t cap, uint32_t tag, const wire_auth *m);
int wire_auth_ok_encode(uint8_t *buf, size_t cap, uint32_t tag, const wire_auth_ok *m);
int wire_error_encode(uint8_t *buf, size_t cap, uint32_t tag, const wire_error *m);
/* ERROR from an errno value and a printf message (truncated to WIRE_TEXT_MAX). */
int wire_error_encodef(uint8_t *buf, size_t cap, uint32_t tag, int err, const char *fmt,
                       ...) __attribute__((format(printf, 5, 6)));
int wire_put_encode(uint8_t *buf, size_t cap, uint32_t tag, const wire_put *m);
int wire_put_ok_encode(uint8_t *buf, size_t cap, uint32_t tag, const wire_put_ok *m);
int wire_get_encode(uint8_t *buf, size_t cap, uint32_t tag, const wire_get *m);
int wire_get_ok_encode(uint8_t *buf, size_t cap, uint32_t tag, const wire_get_ok *m);
/* type: WIRE_STAT, WIRE_LIST, WIRE_MKDIR or WIRE_DELETE. */
int wire_pathreq_encode(uint8_t *buf, size_t cap, uint8_t type, uint32_t tag,
                        const wire_pathreq *m);
int wire_rename_encode(uint8_t *buf, size_t cap, uint32_t tag, const wire_rename *m);
int wire_attr_encode(uint8_t *buf, size_t cap, uint32_t tag, const wire_attr *m);
int wire_end_encode(uint8_t *buf, size_t cap, uint32_t tag, const wire_end *m);
/* PING, PONG, LIST_END: one u64. */
int wire_u64_encode(uint8_t *buf, size_t cap, uint8_t type, uint32_t tag, uint64_t v);
/* OK, STATUS: no payload. */
int wire_empty_encode(uint8_t *buf, size_t cap, uint8_t type, uint32_t tag);
/* DATA, CHUNK: wire_msg_encode copies the bytes; for large ones prefer wire_hdr_encode
 * + writev. */

/* LIST_ITEMS. The server fills a frame entry by entry:
 *     wire_items_begin(&b, buf, cap, tag);
 *     while (more) { r = wire_items_add(&b, &ent); if (r == -ENOSPC) { send
 *         wire_items_finish(&b) bytes; wire_items_begin(...); retry ent } }
 * cap should be WIRE_HDR_LEN + the client's max_payload (or less). */
typedef struct wire_items_builder {
	uint8_t *buf;
	size_t cap, pos;
	uint32_t tag, count;
} wire_items_builder;
void wire_items_begin(wire_items_builder *b, uint8_t *buf, size_t cap, uint32_t tag);
/* 0, -ENOSPC (the entry does not fit: finish this frame first; if the frame is empty
 * the entry can never fit cap), or the entry's validation error. */
int wire_items_add(wire_items_builder *b, const wire_entry *ent);
/* The frame's length, or -EINVAL when no entry was added. */
int wire_items_finish(wire_items_builder *b);
/* Iterate a decoded LIST_ITEMS: *pos starts at 0; returns 1 with *out filled (name a
 * view into the payload), 0 after the last entry. */
int wire_items_next(const wire_items *it, size_t *pos, wire_entry *out);

/* FP_LIST / FP_NEED (source dedup). */
int wire_fp_list_encode(uint8_t *buf, size_t cap, uint32_t tag, const wire_fp *v,
                        uint32_t count);
int wire_fp_list_decode(const uint8_t *p, size_t n, wire_fp_list *out, bks_err *e);
void wire_fp_list_get(const wire_fp_list *l, uint32_t i, wire_fp *out); /* i < count */
/* bits: WIRE_BITMAP_BYTES(count) bytes; bits at and above count must be 0. */
int wire_fp_need_encode(uint8_t *buf, size_t cap, uint32_t tag, uint32_t count,
                        const uint8_t *bits);
int wire_fp_need_decode(const uint8_t *p, size_t n, wire_fp_need *out, bks_err *e);

static inline int wire_bit_get(const uint8_t *bits, uint32_t i)
{
	return (bits[i / 8] >> (i % 8)) & 1;
}
static inline void wire_bit_set(uint8_t *bits, uint32_t i)
{
	bits[i / 8] |= (uint8_t)(1u << (i % 8));
}

#endif /* BKS_WIRE_H */
