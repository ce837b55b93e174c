/* test-repl-proto: the replication protocol's codec (proto/repl.h): every message
 * round trips byte for byte (FP_LIST and FP_NEED through proto/wire's payload codecs);
 * the header is refused before the payload for a bad magic, flags, an unknown type or
 * a length outside the type's bounds; payloads with trailing bytes, short fields, a
 * path that is not canonical, a bad codec or a raw chunk of the wrong size are refused;
 * encoders never write past the caller's buffer; the repair frames (WANT, WANT_LIST,
 * WANT_HAVE, FETCH) hold their bounds (max, count, lengths, distinct fingerprints).
 * --seeds DIR writes one valid frame per type for fuzz/fuzz-repl.c. */
#include <config.h>

#include "tests/testutil.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/endian.h"
#include "proto/repl.h"

#define BUF (REPL_HDR_LEN + 200000)

static uint8_t chunk[300];
static wire_fp fps[3];
static uint8_t need_bits[1] = {0x05};

static int sample(int i, repl_msg *m)
{
	memset(m, 0, sizeof(*m));
	static const uint8_t types[] = {REPL_HELLO, REPL_HELLO_OK, REPL_ERROR, REPL_PAIR,
	                                REPL_PAIR_OK, REPL_FILE, REPL_FP_LIST, REPL_FP_NEED,
	                                REPL_CHUNK, REPL_FILE_END, REPL_DONE, REPL_MKDIR,
	                                REPL_ATTR, REPL_RENAME, REPL_DELETE, REPL_SYMLINK,
	                                REPL_SYNC, REPL_IDENT, REPL_RESEED, REPL_RESEED_END,
	                                REPL_WANT, REPL_WANT_LIST, REPL_WANT_HAVE, REPL_FETCH};
	if (i >= (int)sizeof(types))
		return 0;
	m->type = types[i];
	m->version = REPL_VERSION;
	memset(m->id, 0x5a, REPL_ID_LEN);
	m->attr = (repl_attr){0644, 1000, 100, 1700000000123456789ll, 12345};
	m->path = wire_s("/backup/host1/gen01.img");
	switch (m->type) {
	case REPL_ERROR: m->code = WIRE_E_NOSPC; m->text = wire_s("no room"); break;
	case REPL_PAIR: m->text = wire_s("0123456789abcdef0123456789abcdef"); break;
	case REPL_FP_NEED: case REPL_WANT_HAVE:
		m->fp_need.count = 3;
		m->fp_need.bits = need_bits;
		break;
	case REPL_WANT: m->want_max = REPL_WANT_MAX; break;
	case REPL_CHUNK:
		memset(m->fp, 0x77, 32);
		m->rlen = sizeof(chunk);
		m->codec = 0;
		m->data = chunk;
		m->dlen = sizeof(chunk);
		break;
	case REPL_FILE_END: m->v = 12345; memset(m->digest, 0x66, 16); break;
	case REPL_DONE: case REPL_SYNC: m->v = 99; break;
	case REPL_RENAME: m->path2 = wire_s("/backup/host1/first.img"); break;
	case REPL_SYMLINK: m->path2 = wire_s("../target"); m->attr.size = 0; break;
	case REPL_MKDIR: case REPL_ATTR: m->attr.size = 0; break;
	case REPL_IDENT: m->name = wire_s("vault-a.example"); break;
	case REPL_RESEED:
		m->text = wire_s("0123456789abcdef0123456789abcdef");
		m->name = wire_s("vault-b");
		m->addr = wire_s(":7072");
		__attribute__((fallthrough));
	case REPL_RESEED_END:
		m->flags = REPL_RESEED_THEN_SOURCE;
		memset(m->id2, 0xa5, REPL_ID_LEN);
		m->name2 = wire_s("vault-a");
		break;
	}
	return 1;
}

static int enc(const repl_msg *m, uint8_t *buf, size_t cap)
{
	int list = m->type == REPL_FP_LIST || m->type == REPL_WANT_LIST || m->type == REPL_FETCH;
	return repl_msg_encode(buf, cap, m, list ? fps : NULL, list ? 3 : 0);
}

static void init(void)
{
	for (int i = 0; i < 3; i++) {
		memset(fps[i].fp, 0x10 + i, 32);
		fps[i].len = 4096u * (unsigned)(i + 1);
	}
	for (size_t i = 0; i < sizeof(chunk); i++)
		chunk[i] = (uint8_t)(i * 7);
}

/* Re-encode a decoded message: the bytes must be the same. */
static int reenc(const repl_msg *d, uint8_t *out, size_t cap)
{
	wire_fp v[WIRE_FP_MAX];
	uint32_t n = 0;
	if (d->type == REPL_FP_LIST || d->type == REPL_WANT_LIST || d->type == REPL_FETCH) {
		const wire_fp_list *l = d->type == REPL_FP_LIST ? &d->fp_list : &d->want_list;
		n = l->count;
		for (uint32_t i = 0; i < n; i++)
			wire_fp_list_get(l, i, &v[i]);
	}
	return repl_msg_encode(out, cap, d, n ? v : NULL, n);
}

static void test_round_trips(void)
{
	static uint8_t buf[BUF], buf2[BUF];
	repl_msg m, d;
	int types = 0;
	for (int i = 0; sample(i, &m); i++) {
		int n = enc(&m, buf, sizeof(buf));
		CHECK(n > REPL_HDR_LEN, "%s encodes (%d)", repl_type_name(m.type), n);
		if (n <= 0)
			continue;
		repl_hdr h;
		bks_err e = {0};
		CHECK(repl_hdr_decode(buf, (size_t)n, &h, &e) == 0 && h.type == m.type &&
		      h.len == (uint32_t)n - REPL_HDR_LEN, "%s header: %s", repl_type_name(m.type), e.msg);
		int r = repl_msg_decode(h.type, buf + REPL_HDR_LEN, h.len, &d, &e);
		CHECK(r == 0, "%s decodes: %s", repl_type_name(m.type), e.msg);
		if (r)
			continue;
		int n2 = reenc(&d, buf2, sizeof(buf2));
		CHECK(n2 == n && !memcmp(buf, buf2, (size_t)n), "%s round trips byte for byte",
		      repl_type_name(m.type));
		/* Every shorter buffer: -ENOSPC, nothing written past it. */
		for (int cap = 0; cap < n; cap += 1 + n / 40) {
			memset(buf2, 0xee, sizeof(buf2));
			int k = enc(&m, buf2, (size_t)cap);
			CHECK(k == -ENOSPC && buf2[cap] == 0xee, "%s into %d bytes: %d",
			      repl_type_name(m.type), cap, k);
		}
		types++;
	}
	CHECK(types == 24, "%d types", types);
	/* CHUNK with the bytes sent separately: header and fixed fields only. */
	sample(8, &m);
	m.data = NULL;
	int n = repl_msg_encode(buf, sizeof(buf), &m, NULL, 0);
	CHECK(n == REPL_HDR_LEN + 37 && le_get32(buf + 12) == 37 + sizeof(chunk),
	      "CHUNK header without data: %d", n);
	printf("round trips: %d types\n", types);
}

static void test_rejects(void)
{
	static uint8_t buf[BUF];
	repl_msg m, d;
	repl_hdr h;
	bks_err e = {0};
	sample(5, &m); /* FILE */
	int n = enc(&m, buf, sizeof(buf));
	CHECK(n > 0, "FILE encodes");
	CHECK(repl_hdr_decode(buf, 3, &h, &e) == -EAGAIN, "short header: EAGAIN");
	buf[0] = 'X';
	CHECK(repl_hdr_decode(buf, 2, &h, &e) == -EPROTO, "bad magic seen in 2 bytes");
	buf[0] = 'B';
	memcpy(buf, "BKSN", 4);
	CHECK(repl_hdr_decode(buf, (size_t)n, &h, &e) == -EPROTO, "the native magic is not ours");
	memcpy(buf, REPL_MAGIC, 4);
	buf[5] = 1;
	CHECK(repl_hdr_decode(buf, (size_t)n, &h, &e) == -EPROTONOSUPPORT, "flags set");
	buf[5] = 0;
	buf[4] = 0x7f;
	CHECK(repl_hdr_decode(buf, (size_t)n, &h, &e) == -EOPNOTSUPP, "unknown type");
	buf[4] = REPL_FILE;
	le_put32(buf + 12, 40 + WIRE_PATH_MAX);
	CHECK(repl_hdr_decode(buf, (size_t)n, &h, &e) == -EMSGSIZE, "FILE too long");
	le_put32(buf + 12, 3);
	CHECK(repl_hdr_decode(buf, (size_t)n, &h, &e) == -EBADMSG, "FILE too short");
	le_put32(buf + 12, (uint32_t)n - REPL_HDR_LEN);
	uint8_t *p = buf + REPL_HDR_LEN;
	size_t pl = (size_t)n - REPL_HDR_LEN;
	CHECK(repl_msg_decode(REPL_FILE, p, pl - 1, &d, &e) == -EBADMSG, "FILE cut short");
	p[pl] = 'x';
	CHECK(repl_msg_decode(REPL_FILE, p, pl + 1, &d, &e) == -EBADMSG, "trailing byte");
	p[12] = 1; /* padding after gid */
	CHECK(repl_msg_decode(REPL_FILE, p, pl, &d, &e) == -EINVAL, "padding not 0");
	p[12] = 0;
	static const char *badp[] = {"relative", "/a//b", "/a/../b", "/a/", "/a/./b"};
	for (size_t i = 0; i < BKS_ARRAY_SIZE(badp); i++) {
		m.path = wire_s(badp[i]);
		CHECK(enc(&m, buf, sizeof(buf)) < 0, "path %s refused by the encoder", badp[i]);
	}
	sample(8, &m); /* CHUNK */
	m.codec = 3;
	CHECK(enc(&m, buf, sizeof(buf)) == -EINVAL, "CHUNK codec 3");
	/* Codec 2 (version 4): raw bytes the source has not compressed yet. */
	m.codec = REPL_CODEC_DEFERRED;
	n = enc(&m, buf, sizeof(buf));
	CHECK(n > 0 && repl_msg_decode(REPL_CHUNK, buf + REPL_HDR_LEN, (size_t)n - REPL_HDR_LEN,
	                               &d, &e) == 0 && d.codec == REPL_CODEC_DEFERRED &&
	      d.dlen == d.rlen, "CHUNK codec 2 round trips");
	m.dlen = sizeof(chunk) - 1;
	CHECK(enc(&m, buf, sizeof(buf)) == -EINVAL, "deferred CHUNK of the wrong size");
	m.codec = 0;
	CHECK(enc(&m, buf, sizeof(buf)) == -EINVAL, "raw CHUNK of the wrong size");
	/* A CHUNK payload with no bytes after its fixed fields, decoded on its own (not
	 * behind a header): refused (fuzz-repl found the decoder taking it). */
	sample(8, &m);
	n = enc(&m, buf, sizeof(buf));
	CHECK(repl_msg_decode(REPL_CHUNK, buf + REPL_HDR_LEN, 37, &d, &e) == -EBADMSG,
	      "CHUNK without bytes");
	sample(3, &m); /* PAIR */
	m.text = wire_s("");
	CHECK(enc(&m, buf, sizeof(buf)) < 0, "PAIR without a token");
	sample(0, &m); /* HELLO */
	n = enc(&m, buf, sizeof(buf));
	buf[REPL_HDR_LEN + 2] = 1; /* flags */
	CHECK(repl_msg_decode(REPL_HELLO, buf + REPL_HDR_LEN, (size_t)n - REPL_HDR_LEN, &d, &e) ==
	      -EINVAL, "HELLO flags");
	/* Failover frames: unknown flags, a name that is not one, an address with a NUL. */
	sample(18, &m); /* RESEED */
	n = enc(&m, buf, sizeof(buf));
	buf[REPL_HDR_LEN + REPL_ID_LEN] |= 0x80;
	CHECK(repl_msg_decode(REPL_RESEED, buf + REPL_HDR_LEN, (size_t)n - REPL_HDR_LEN, &d, &e) ==
	      -EINVAL, "RESEED unknown flags");
	sample(18, &m);
	m.name2 = wire_s("vault a");
	CHECK(enc(&m, buf, sizeof(buf)) == -EINVAL, "RESEED: a name with a space");
	sample(18, &m);
	m.addr = (wire_str){"1.2.3.4\0:7072", 12};
	CHECK(enc(&m, buf, sizeof(buf)) == -EINVAL, "RESEED: an address with a NUL");
	sample(17, &m); /* IDENT */
	m.name = wire_s("");
	CHECK(enc(&m, buf, sizeof(buf)) < 0, "IDENT without a name");
	sample(17, &m);
	m.name = wire_s("0123456789012345678901234567890123456789012345678901234567890123");
	CHECK(enc(&m, buf, sizeof(buf)) < 0, "IDENT: a name of 64 bytes");
	printf("rejects: done\n");
}

/* The repair frames (0x30-0x32): WANT's max and reserved field, WANT_LIST's count,
 * lengths and distinct fingerprints, WANT_HAVE's count. */
static void test_want(void)
{
	static uint8_t buf[BUF], buf2[BUF];
	static wire_fp many[REPL_WANT_MAX + 1];
	repl_msg m, d;
	repl_hdr h;
	bks_err e = {0};
	memset(&m, 0, sizeof(m));
	m.type = REPL_WANT;
	m.want_max = 0;
	CHECK(enc(&m, buf, sizeof(buf)) == -EINVAL, "WANT max 0 refused");
	m.want_max = REPL_WANT_MAX + 1;
	CHECK(enc(&m, buf, sizeof(buf)) == -EINVAL, "WANT max %u refused", REPL_WANT_MAX + 1);
	m.want_max = 1;
	int n = enc(&m, buf, sizeof(buf));
	CHECK(n == REPL_HDR_LEN + 8, "WANT max 1 encodes (%d)", n);
	buf[REPL_HDR_LEN + 5] = 1;
	CHECK(repl_msg_decode(REPL_WANT, buf + REPL_HDR_LEN, 8, &d, &e) == -EINVAL,
	      "WANT reserved field not 0");
	/* An empty list (the twin wants nothing) round trips. */
	memset(&m, 0, sizeof(m));
	m.type = REPL_WANT_LIST;
	n = repl_msg_encode(buf, sizeof(buf), &m, NULL, 0);
	CHECK(n == REPL_HDR_LEN + 4 &&
	      repl_msg_decode(REPL_WANT_LIST, buf + REPL_HDR_LEN, 4, &d, &e) == 0 &&
	      d.want_list.count == 0, "empty WANT_LIST: %d", n);
	/* The most entries, then one more. */
	for (uint32_t i = 0; i <= REPL_WANT_MAX; i++) {
		memset(many[i].fp, 0, 32);
		le_put32(many[i].fp, i + 1);
		many[i].len = 1 + i;
	}
	n = repl_msg_encode(buf, sizeof(buf), &m, many, REPL_WANT_MAX);
	CHECK(n == (int)(REPL_HDR_LEN + 4 + WIRE_FP_ENTRY_LEN * REPL_WANT_MAX) &&
	      repl_hdr_decode(buf, (size_t)n, &h, &e) == 0 &&
	      repl_msg_decode(REPL_WANT_LIST, buf + REPL_HDR_LEN, h.len, &d, &e) == 0 &&
	      d.want_list.count == REPL_WANT_MAX && reenc(&d, buf2, sizeof(buf2)) == n &&
	      !memcmp(buf, buf2, (size_t)n), "WANT_LIST of %u round trips", REPL_WANT_MAX);
	CHECK(repl_msg_encode(buf, sizeof(buf), &m, many, REPL_WANT_MAX + 1) < 0,
	      "WANT_LIST of %u refused", REPL_WANT_MAX + 1);
	le_put32(buf + REPL_HDR_LEN, REPL_WANT_MAX + 1);
	CHECK(repl_msg_decode(REPL_WANT_LIST, buf + REPL_HDR_LEN, (size_t)n - REPL_HDR_LEN, &d,
	                      &e) == -EINVAL, "WANT_LIST count %u decoded alone", REPL_WANT_MAX + 1);
	le_put32(buf + 12, 4 + WIRE_FP_ENTRY_LEN * (REPL_WANT_MAX + 1));
	CHECK(repl_hdr_decode(buf, (size_t)n, &h, &e) == -EMSGSIZE, "WANT_LIST header too long");
	/* Entries: a length of 0 or past WIRE_CHUNK_MAX, the same fingerprint twice. */
	wire_fp two[2];
	memcpy(two, many, sizeof(two));
	two[1].len = 0;
	CHECK(repl_msg_encode(buf, sizeof(buf), &m, two, 2) == -EINVAL, "WANT_LIST length 0");
	two[1].len = WIRE_CHUNK_MAX + 1;
	CHECK(repl_msg_encode(buf, sizeof(buf), &m, two, 2) == -EINVAL, "WANT_LIST length too big");
	two[1] = two[0];
	two[1].len = 7;
	CHECK(repl_msg_encode(buf, sizeof(buf), &m, two, 2) == -EINVAL,
	      "WANT_LIST naming a chunk twice");
	two[1] = many[1];
	n = repl_msg_encode(buf, sizeof(buf), &m, two, 2);
	CHECK(n == REPL_HDR_LEN + 4 + 2 * WIRE_FP_ENTRY_LEN, "WANT_LIST of 2 (%d)", n);
	CHECK(repl_msg_decode(REPL_WANT_LIST, buf + REPL_HDR_LEN, (size_t)n - REPL_HDR_LEN - 1,
	                      &d, &e) == -EBADMSG, "WANT_LIST cut short");
	buf[n] = 0;
	CHECK(repl_msg_decode(REPL_WANT_LIST, buf + REPL_HDR_LEN, (size_t)n - REPL_HDR_LEN + 1,
	                      &d, &e) == -EBADMSG, "WANT_LIST trailing byte");
	/* WANT_HAVE: 1..REPL_WANT_MAX bits, none past the count. */
	static uint8_t bits[(REPL_WANT_MAX + 8) / 8 + 8];
	memset(&m, 0, sizeof(m));
	m.type = REPL_WANT_HAVE;
	m.fp_need.count = REPL_WANT_MAX;
	m.fp_need.bits = bits;
	n = enc(&m, buf, sizeof(buf));
	CHECK(n == (int)(REPL_HDR_LEN + 4 + REPL_WANT_MAX / 8), "WANT_HAVE of %u (%d)",
	      REPL_WANT_MAX, n);
	m.fp_need.count = REPL_WANT_MAX + 1;
	CHECK(enc(&m, buf, sizeof(buf)) < 0, "WANT_HAVE of %u refused", REPL_WANT_MAX + 1);
	le_put32(buf2, REPL_WANT_MAX + 1);
	memset(buf2 + 4, 0, sizeof(bits));
	CHECK(repl_msg_decode(REPL_WANT_HAVE, buf2, 4 + WIRE_BITMAP_BYTES(REPL_WANT_MAX + 1), &d,
	                      &e) == -EMSGSIZE, "WANT_HAVE of %u decoded alone", REPL_WANT_MAX + 1);
	m.fp_need.count = 0;
	CHECK(enc(&m, buf, sizeof(buf)) < 0, "WANT_HAVE of 0 refused");
	m.fp_need.count = 3;
	bits[0] = 0x09; /* bit 3: past the count */
	CHECK(enc(&m, buf, sizeof(buf)) < 0, "WANT_HAVE bit past its count refused");
	bits[0] = 0;
	printf("want: done\n");
}

/* FETCH (0x33, version 3): as WANT_LIST's entries, but 1..REPL_WANT_MAX of them. */
static void test_fetch(void)
{
	static uint8_t buf[BUF], buf2[BUF];
	static wire_fp many[REPL_WANT_MAX + 1];
	repl_msg m, d;
	repl_hdr h;
	bks_err e = {0};
	memset(&m, 0, sizeof(m));
	m.type = REPL_FETCH;
	CHECK(repl_msg_encode(buf, sizeof(buf), &m, NULL, 0) == -EINVAL, "FETCH of 0 refused");
	le_put32(buf2, 0);
	CHECK(repl_msg_decode(REPL_FETCH, buf2, 4, &d, &e) == -EBADMSG, "FETCH of 0 decoded alone");
	for (uint32_t i = 0; i <= REPL_WANT_MAX; i++) {
		memset(many[i].fp, 0, 32);
		le_put32(many[i].fp, i + 1);
		many[i].len = 1 + i * 977;
	}
	int n = repl_msg_encode(buf, sizeof(buf), &m, many, REPL_WANT_MAX);
	CHECK(n == (int)(REPL_HDR_LEN + 4 + WIRE_FP_ENTRY_LEN * REPL_WANT_MAX) &&
	      repl_hdr_decode(buf, (size_t)n, &h, &e) == 0 && h.type == REPL_FETCH &&
	      repl_msg_decode(REPL_FETCH, buf + REPL_HDR_LEN, h.len, &d, &e) == 0 &&
	      d.want_list.count == REPL_WANT_MAX && reenc(&d, buf2, sizeof(buf2)) == n &&
	      !memcmp(buf, buf2, (size_t)n), "FETCH of %u round trips", REPL_WANT_MAX);
	wire_fp got;
	wire_fp_list_get(&d.want_list, 200, &got);
	CHECK(!memcmp(got.fp, many[200].fp, 32) && got.len == many[200].len,
	      "FETCH entry 200 decodes as sent");
	CHECK(repl_msg_encode(buf, sizeof(buf), &m, many, REPL_WANT_MAX + 1) < 0,
	      "FETCH of %u refused", REPL_WANT_MAX + 1);
	le_put32(buf + REPL_HDR_LEN, REPL_WANT_MAX + 1);
	CHECK(repl_msg_decode(REPL_FETCH, buf + REPL_HDR_LEN, (size_t)n - REPL_HDR_LEN, &d,
	                      &e) == -EINVAL, "FETCH count %u decoded alone", REPL_WANT_MAX + 1);
	le_put32(buf + 12, 4 + WIRE_FP_ENTRY_LEN * (REPL_WANT_MAX + 1));
	CHECK(repl_hdr_decode(buf, (size_t)n, &h, &e) == -EMSGSIZE, "FETCH header too long");
	le_put32(buf + 12, 4);
	CHECK(repl_hdr_decode(buf, (size_t)n, &h, &e) == -EBADMSG, "FETCH header of no entry");
	/* A count that disagrees with the entries: short, or trailing bytes. */
	n = repl_msg_encode(buf, sizeof(buf), &m, many, 3);
	CHECK(n == REPL_HDR_LEN + 4 + 3 * WIRE_FP_ENTRY_LEN, "FETCH of 3 (%d)", n);
	le_put32(buf + REPL_HDR_LEN, 4);
	CHECK(repl_msg_decode(REPL_FETCH, buf + REPL_HDR_LEN, (size_t)n - REPL_HDR_LEN, &d,
	                      &e) == -EBADMSG, "FETCH count past its entries");
	le_put32(buf + REPL_HDR_LEN, 2);
	CHECK(repl_msg_decode(REPL_FETCH, buf + REPL_HDR_LEN, (size_t)n - REPL_HDR_LEN, &d,
	                      &e) == -EBADMSG, "FETCH entries past its count");
	/* Entries: a length of 0 or past WIRE_CHUNK_MAX, the same fingerprint twice. */
	wire_fp two[2];
	memcpy(two, many, sizeof(two));
	two[1].len = 0;
	CHECK(repl_msg_encode(buf, sizeof(buf), &m, two, 2) == -EINVAL, "FETCH length 0");
	two[1].len = WIRE_CHUNK_MAX + 1;
	CHECK(repl_msg_encode(buf, sizeof(buf), &m, two, 2) == -EINVAL, "FETCH length too big");
	two[1] = two[0];
	two[1].len = 7;
	CHECK(repl_msg_encode(buf, sizeof(buf), &m, two, 2) == -EINVAL,
	      "FETCH naming a chunk twice");
	n = repl_msg_encode(buf, sizeof(buf), &m, many + 7, 1);
	CHECK(n == REPL_HDR_LEN + 4 + WIRE_FP_ENTRY_LEN &&
	      repl_msg_decode(REPL_FETCH, buf + REPL_HDR_LEN, (size_t)n - REPL_HDR_LEN, &d, &e) == 0 &&
	      d.want_list.count == 1, "FETCH of 1 (%d)", n);
	printf("fetch: done\n");
}

static int write_seeds(const char *dir)
{
	static uint8_t buf[BUF];
	repl_msg m;
	for (int i = 0; sample(i, &m); i++) {
		int n = enc(&m, buf, sizeof(buf));
		char path[600];
		snprintf(path, sizeof(path), "%s/repl-%02d-%s.bin", dir, i, repl_type_name(m.type));
		FILE *f = fopen(path, "wb");
		int ok = n > 0 && f && fwrite(&m.type, 1, 1, f) == 1 &&
		         fwrite(buf, 1, (size_t)n, f) == (size_t)n;
		if (f)
			fclose(f);
		if (!ok)
			return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	init();
	if (argc == 3 && !strcmp(argv[1], "--seeds"))
		return write_seeds(argv[2]);
	test_round_trips();
	test_rejects();
	test_want();
	test_fetch();
	return tu_finish();
}
