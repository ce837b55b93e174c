/* proto/repl.h: the replication protocol's messages (docs/protocol.md "Replication").
 * Pure: no sockets, no threads, no allocation. It runs inside TLS 1.3 with mutual
 * certificate authentication (daemon/repl_tls.c); this module only turns messages
 * into bytes and bytes into validated messages, so both ends share one definition of
 * "valid" and a fuzzer can drive it.
 *
 * A frame is a 16-byte header and `len` payload bytes, laid out like the native
 * protocol's (proto/wire.h) with its own magic, so a replication peer and a native
 * client can never be mistaken for each other:
 *   0 4 magic "BKSR"   4 1 type   5 1 flags (0)   6 2 reserved (0)
 *   8 4 tag (0)        12 4 payload length
 * Integers little-endian; strings a u16 length and that many bytes. FP_LIST and
 * FP_NEED carry exactly the payloads of the native protocol's FP_LIST and FP_NEED
 * (proto/wire.c encodes and decodes them).
 *
 * The source (the appliance whose files are replicated) is the client; the twin
 * serves. Errors as proto/wire.h (-EAGAIN, -EPROTO, -EOPNOTSUPP, -EMSGSIZE, -EBADMSG,
 * -EILSEQ, -ENAMETOOLONG, -EINVAL; encoders -ENOSPC).
 *
 * Ownership: decoded strings and byte runs are views into the decoded payload.
 */
#ifndef BKS_PROTO_REPL_H
#define BKS_PROTO_REPL_H

#include <stddef.h>
#include <stdint.h>

#include "common/bks.h"
#include "proto/wire.h"

/* Version 2 added IDENT, RESEED and RESEED_END (failover), and WANT (repair); 3 added
 * FETCH (a source's damaged chunks fetched back from its twin); 4 added CHUNK codec
 * REPL_CODEC_DEFERRED (sent only when the answer is at least 4). A twin takes a HELLO
 * of any version from REPL_VERSION_MIN on and answers with the lower of its own and
 * the source's; a source sends IDENT and WANT only when the answer is at least 2,
 * FETCH only when it is at least 3, so an old source replicates to a new twin and a
 * new source to a twin of version 2. A twin of version 1 refuses a HELLO of 2 or
 * more: upgrade the twin first. */
#define REPL_VERSION 4u
#define REPL_VERSION_MIN 1u
/* CHUNK codecs. RAW and ZSTD are the store's SEG_RAW and SEG_ZSTD; DEFERRED (version
 * 4) is raw bytes the source stored raw only for speed (deferred compression,
 * SEG_EF_DEFERRED) and has not compressed yet: the twin stores them raw and flagged,
 * so its own background pass compresses them. */
#define REPL_CODEC_RAW 0u
#define REPL_CODEC_ZSTD 1u
#define REPL_CODEC_DEFERRED 2u
#define REPL_PORT 7072
#define REPL_HDR_LEN 16
#define REPL_MAGIC "BKSR"
#define REPL_ID_LEN 16                 /* appliance id: 128 random bits */
#define REPL_TOKEN_MAX 128             /* bytes of a pairing token */
#define REPL_CHUNK_MAX (WIRE_CHUNK_MAX + 4096u) /* stored bytes of one chunk (zstd's
                                        * bound on an incompressible 4 MiB chunk) */
#define REPL_MAX_PAYLOAD (REPL_CHUNK_MAX + 64u)
#define REPL_WANT_MAX 256u             /* fingerprints in one WANT_LIST */

enum repl_type {
	REPL_HELLO = 0x01,     /* S<-C  version, flags, the source's id */
	REPL_HELLO_OK = 0x02,  /* S->C  version, the twin's id */
	REPL_ERROR = 0x03,     /* both  code, text; the request failed */
	REPL_PAIR = 0x04,      /* S<-C  the source's id, the twin's one-time token */
	REPL_PAIR_OK = 0x05,   /* S->C  the twin's id; both sides pin */
	REPL_FILE = 0x10,      /* S<-C  attributes, path; then (FP_LIST FP_NEED CHUNK*)* FILE_END */
	REPL_FP_LIST = 0x11,   /* S<-C  fingerprints of the file's next chunks */
	REPL_FP_NEED = 0x12,   /* S->C  bitmap: chunks the twin lacks */
	REPL_CHUNK = 0x13,     /* S<-C  one needed chunk, as stored */
	REPL_FILE_END = 0x14,  /* S<-C  size and the digest of the fingerprint stream */
	REPL_DONE = 0x15,      /* S->C  the request is durable on the twin (a u64) */
	REPL_MKDIR = 0x16,     /* S<-C  attributes, path */
	REPL_ATTR = 0x17,      /* S<-C  attributes, path: mode, owner, mtime changed */
	REPL_RENAME = 0x18,    /* S<-C  from, to */
	REPL_DELETE = 0x19,    /* S<-C  path: removed after the twin's delete_delay */
	REPL_SYMLINK = 0x1a,   /* S<-C  attributes, path, target */
	REPL_SYNC = 0x1b,      /* S<-C  a cycle's end: the twin commits, DONE echoes seq */
	/* Failover (daemon/repl_failover.c; codes 0x20-0x2f). */
	REPL_IDENT = 0x20,     /* both  after HELLO_OK: the source's name; the twin answers
	                        * IDENT with its own */
	REPL_RESEED = 0x21,    /* S<-C  on a token connection, instead of PAIR: make this
	                        * (new) appliance the copy of the sender, to take over the
	                        * identity of the sender's lost peer; PAIR_OK or ERROR */
	REPL_RESEED_END = 0x22,/* S<-C  the copy is complete: take the identity; DONE */
	/* Repair (0x30-0x3f): the twin's chunks that its RAID could not repair, fetched
	 * again from the source. The twin cannot connect (it does not know the source's
	 * address), so the source asks at every connection. */
	REPL_WANT = 0x30,      /* S<-C  max u32 (1..REPL_WANT_MAX), 0 u32: which chunks? */
	REPL_WANT_LIST = 0x31, /* S->C  count u32 (0..max), fingerprint + raw length each */
	REPL_WANT_HAVE = 0x32, /* S<-C  the FP_NEED payload: bit i = CHUNK i follows; then
	                        * CHUNK x (bits set, in order); DONE (chunks repaired) */
	/* The other way (version 3): the source's own damaged chunks, asked of the twin
	 * (which has every chunk the source replicated). */
	REPL_FETCH = 0x33,     /* S<-C  count u32 (1..REPL_WANT_MAX), fingerprint + raw
	                        * length each, distinct; the twin answers CHUNK x (those it
	                        * can give, in list order) then DONE (their number) */
};

#define REPL_NAME_MAX 63               /* an appliance name: [A-Za-z0-9._-], 1..63 */
#define REPL_ADDR_MAX 79               /* HOST:PORT as text */
/* RESEED and RESEED_END flags. */
#define REPL_RESEED_FORCE 0x1u         /* the new appliance may hold files already */
#define REPL_RESEED_THEN_SOURCE 0x2u   /* at the end the new appliance becomes the
                                        * source and the sender its twin (else the
                                        * new one is the twin) */
#define REPL_RESEED_FLAGS (REPL_RESEED_FORCE | REPL_RESEED_THEN_SOURCE)

/* 0 when s is an appliance name (1..REPL_NAME_MAX of letters, digits, '.', '_', '-'). */
int repl_name_check(const char *s, size_t len);

const char *repl_type_name(unsigned type); /* "FILE", or "?" */

typedef struct repl_hdr {
	uint8_t type;
	uint32_t len;
} repl_hdr;

/* 0 with h filled, -EAGAIN while fewer than REPL_HDR_LEN bytes are there (but -EPROTO
 * at once when they already differ from the magic), or an error: the payload length
 * is checked against the type's bounds before a byte of it is read. */
int repl_hdr_decode(const uint8_t *buf, size_t len, repl_hdr *h, bks_err *e);
int repl_hdr_encode(uint8_t out[REPL_HDR_LEN], uint8_t type, uint32_t len);

/* File attributes as they cross (FILE, MKDIR, ATTR, SYMLINK). */
typedef struct repl_attr {
	uint32_t mode, uid, gid;
	int64_t mtime_ns;
	uint64_t size;           /* FILE: bytes; else 0 */
} repl_attr;

typedef struct repl_msg {
	uint8_t type;
	uint16_t version;        /* HELLO, HELLO_OK */
	uint8_t id[REPL_ID_LEN]; /* HELLO, HELLO_OK, PAIR, PAIR_OK */
	uint32_t code;           /* ERROR: enum wire_code */
	wire_str text;           /* ERROR text, PAIR token */
	repl_attr attr;          /* FILE, MKDIR, ATTR, SYMLINK */
	wire_str path;           /* FILE, MKDIR, ATTR, SYMLINK, DELETE; RENAME from */
	wire_str path2;          /* RENAME to, SYMLINK target */
	uint64_t v;              /* DONE, SYNC; FILE_END size */
	uint8_t digest[WIRE_DIGEST_LEN]; /* FILE_END */
	uint8_t fp[WIRE_SHA256_LEN];     /* CHUNK */
	uint32_t rlen;           /* CHUNK: raw length */
	uint8_t codec;           /* CHUNK: REPL_CODEC_* */
	const uint8_t *data;     /* CHUNK: stored bytes (view) */
	uint32_t dlen;
	wire_fp_list fp_list;    /* FP_LIST */
	wire_fp_need fp_need;    /* FP_NEED, WANT_HAVE */
	uint16_t flags;          /* RESEED, RESEED_END: REPL_RESEED_* */
	uint8_t id2[REPL_ID_LEN];/* RESEED, RESEED_END: the identity to take over */
	wire_str name;           /* IDENT, RESEED: the sender's name */
	wire_str name2;          /* RESEED, RESEED_END: the name to take over */
	wire_str addr;           /* RESEED: where the new appliance reaches the sender
	                          * (HOST:PORT, or ":PORT": the address it connects from) */
	uint32_t want_max;       /* WANT */
	wire_fp_list want_list;  /* WANT_LIST: count 0..REPL_WANT_MAX distinct entries;
	                          * FETCH: 1..REPL_WANT_MAX (view) */
} repl_msg;

/* Decode the payload p[0..n) of a frame of type type. */
int repl_msg_decode(uint8_t type, const uint8_t *p, size_t n, repl_msg *m, bks_err *e);
/* Encode m as a whole frame (header included) into buf[0..cap): its length, or an
 * error (an encoder never writes a frame the decoder refuses). For FP_LIST,
 * WANT_LIST and FETCH pass the entries in fps/nfps; for FP_NEED and WANT_HAVE the bitmap in
 * m->fp_need. For CHUNK the header and
 * fixed fields only are written when m->data is NULL (send the bytes after them). */
int repl_msg_encode(uint8_t *buf, size_t cap, const repl_msg *m, const wire_fp *fps,
                    uint32_t nfps);

#endif /* BKS_PROTO_REPL_H */
