/* test-wire: the native protocol's codec (proto/wire.h) and auth (proto/auth.h):
 * every message round trips byte for byte; every kind of bad input is refused with
 * its own error; encoders never write past the caller's buffer; HMAC-SHA-256 matches
 * RFC 4231; a simulated client and server authenticate each other, and wrong secrets,
 * unknown or altered names, replays and reflections fail.
 * --seeds DIR writes one valid frame per message type for fuzz/fuzz-wire.c. */
#include <config.h>

#include "tests/testutil.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/endian.h"
#include "proto/auth.h"
#include "proto/wire.h"

#define BUF (WIRE_HDR_LEN + 70000)

static uint8_t fps_raw[3 * WIRE_FP_ENTRY_LEN];
static uint8_t need_bits[2] = {0x05, 0x01}; /* entries 0, 2, 8 of 9 */
static uint8_t items_buf[512];
static const char json[] = "{\"state\":\"ok\",\"disks\":12}";
static const uint8_t blob[] = "some file bytes";

/* One valid message of every type (views point at static data). */
static int sample(int i, wire_msg *m)
{
	memset(m, 0, sizeof(*m));
	switch (i) {
	case 0:
		m->type = WIRE_HELLO;
		m->u.hello.version = WIRE_VERSION;
		memset(m->u.hello.nonce, 0x11, WIRE_NONCE_LEN);
		m->u.hello.name = wire_s("vault-a");
		break;
	case 1:
		m->type = WIRE_AUTH;
		m->u.auth.version = WIRE_VERSION;
		m->u.auth.max_payload = WIRE_MAX_PAYLOAD_DEFAULT;
		memset(m->u.auth.nonce, 0x22, WIRE_NONCE_LEN);
		memset(m->u.auth.mac, 0x33, WIRE_MAC_LEN);
		m->u.auth.name = wire_s("db01");
		break;
	case 2:
		m->type = WIRE_AUTH_OK;
		memset(m->u.auth_ok.mac, 0x44, WIRE_MAC_LEN);
		m->u.auth_ok = (wire_auth_ok){.caps = WIRE_CAP_SRC_DEDUP,
		                              .max_payload = WIRE_MAX_PAYLOAD_DEFAULT,
		                              .cdc_min = 4096, .cdc_avg = 16384,
		                              .cdc_max = 65536, .fp_max = 1024};
		memset(m->u.auth_ok.mac, 0x44, WIRE_MAC_LEN);
		break;
	case 3:
		m->type = WIRE_ERROR;
		m->u.error.code = WIRE_E_NOENT;
		m->u.error.text = wire_s("/backups/x: no such file");
		break;
	case 4: m->type = WIRE_PING; m->u.ping.v = 0x0123456789abcdefull; break;
	case 5: m->type = WIRE_PONG; m->u.ping.v = 7; break;
	case 6: m->type = WIRE_OK; break;
	case 7:
		m->type = WIRE_PUT;
		m->u.put = (wire_put){WIRE_PUT_OVERWRITE | WIRE_PUT_SRC_DEDUP, 0640, 1000, 100,
		                      -5000000000ll, 123456, wire_s("/backups/db01/full.tar")};
		break;
	case 8:
		m->type = WIRE_PUT_OK;
		m->u.put_ok = (wire_put_ok){42, 1 << 20, 70, 3, 50000, 20000};
		break;
	case 9:
		m->type = WIRE_GET;
		m->u.get = (wire_get){0, 4096, WIRE_LEN_ALL, wire_s("/backups/db01/full.tar")};
		break;
	case 10: m->type = WIRE_GET_OK; m->u.get_ok = (wire_get_ok){1 << 20, 1044480, 42}; break;
	case 11: m->type = WIRE_STAT; m->u.req.path = wire_s("/"); break;
	case 12:
		m->type = WIRE_STAT_OK;
		m->u.attr = (wire_attr){WIRE_FT_FILE, 0644, 1000, 100, 1, 1 << 20,
		                        1700000000000000000ll, 1700000000000000001ll, 42};
		break;
	case 13: m->type = WIRE_LIST; m->u.req.path = wire_s("/backups"); break;
	case 14: {
		wire_items_builder b;
		wire_entry a = {WIRE_FT_DIR, 0755, 3, 5, 9, wire_s("db01")};
		wire_entry c = {WIRE_FT_FILE, 0600, 1 << 20, 6, 42, wire_s("full.tar")};
		wire_items_begin(&b, items_buf, sizeof(items_buf), 0);
		if (wire_items_add(&b, &a) || wire_items_add(&b, &c) || wire_items_finish(&b) < 0)
			return -1;
		m->type = WIRE_LIST_ITEMS;
		m->u.items.count = 2;
		m->u.items.raw = items_buf + WIRE_HDR_LEN + 4;
		m->u.items.raw_len = b.pos - WIRE_HDR_LEN - 4;
		break;
	}
	case 15: m->type = WIRE_LIST_END; m->u.list_end.v = 2; break;
	case 16:
		m->type = WIRE_MKDIR;
		m->u.req = (wire_pathreq){WIRE_MKDIR_PARENTS, 0750, wire_s("/backups/db02")};
		break;
	case 17:
		m->type = WIRE_RENAME;
		m->u.rename = (wire_rename){WIRE_RENAME_NOREPLACE, wire_s("/a/b"), wire_s("/a/c")};
		break;
	case 18:
		m->type = WIRE_DELETE;
		m->u.req = (wire_pathreq){WIRE_DELETE_RECURSIVE, 0, wire_s("/backups/old")};
		break;
	case 19: m->type = WIRE_STATUS; break;
	case 20: m->type = WIRE_STATUS_OK; m->u.status.text = wire_s(json); break;
	case 21:
		m->type = WIRE_DATA;
		m->u.bytes = (wire_bytes){blob, sizeof(blob) - 1};
		break;
	case 22:
		m->type = WIRE_END;
		m->u.end.count = 15;
		memset(m->u.end.digest, 0xee, WIRE_SHA256_LEN);
		break;
	case 23:
		for (int k = 0; k < 3; k++) {
			memset(fps_raw + k * WIRE_FP_ENTRY_LEN, 0xa0 + k, 32);
			le_put32(fps_raw + k * WIRE_FP_ENTRY_LEN + 32, 4096u * (k + 1));
		}
		m->type = WIRE_FP_LIST;
		m->u.fp_list = (wire_fp_list){3, fps_raw};
		break;
	case 24: m->type = WIRE_FP_NEED; m->u.fp_need = (wire_fp_need){9, need_bits}; break;
	case 25:
		m->type = WIRE_CHUNK;
		m->u.bytes = (wire_bytes){blob, 4};
		break;
	default: return 0;
	}
	return 1;
}

/* Payload of a freshly encoded sample; returns the frame length. */
static int enc_sample(int i, uint8_t *buf, size_t cap)
{
	wire_msg m;
	if (sample(i, &m) != 1)
		return -1;
	return wire_msg_encode(buf, cap, 100 + (uint32_t)i, &m);
}

static int write_seeds(const char *dir)
{
	static uint8_t buf[BUF];
	for (int i = 0;; i++) {
		wire_msg m;
		int r = sample(i, &m);
		if (r == 0)
			return 0;
		int n = enc_sample(i, buf, sizeof(buf));
		if (r < 0 || n < 0)
			return 1;
		char p[600];
		snprintf(p, sizeof(p), "%s/wire-%02d-%s.bin", dir, i, wire_type_name(m.type));
		FILE *f = fopen(p, "wb");
		uint8_t sel = m.type; /* fuzz-wire: first byte picks the decoder */
		int ok = f && fwrite(&sel, 1, 1, f) == 1 && fwrite(buf, 1, (size_t)n, f) == (size_t)n;
		if (f)
			fclose(f);
		if (!ok)
			return 1;
	}
}

static void test_round_trips(void)
{
	static uint8_t buf[BUF], buf2[BUF];
	int types_seen = 0;
	for (int i = 0;; i++) {
		wire_msg m, d;
		wire_hdr h;
		bks_err e = {0};
		int r = sample(i, &m);
		if (r == 0)
			break;
		const char *tn = wire_type_name(m.type);
		int n = wire_msg_encode(buf, sizeof(buf), 100 + (uint32_t)i, &m);
		CHECK(n >= WIRE_HDR_LEN, "%s encodes: %d", tn, n);
		if (n < WIRE_HDR_LEN)
			continue;
		types_seen++;
		CHECK(wire_hdr_decode(buf, (size_t)n, 0, &h, &e) == 0, "%s header: %s", tn, e.msg);
		CHECK(h.type == m.type && h.tag == 100u + (uint32_t)i &&
		      h.len == (uint32_t)n - WIRE_HDR_LEN, "%s header fields", tn);
		CHECK(wire_msg_decode(h.type, buf + WIRE_HDR_LEN, h.len, &d, &e) == 0,
		      "%s decodes: %s", tn, e.msg);
		CHECK(wire_frame_decode(buf, (size_t)n, 0, &h, &d, &e) == n, "%s frame: %s", tn,
		      e.msg);
		int n2 = wire_msg_encode(buf2, sizeof(buf2), h.tag, &d);
		CHECK(n2 == n && !memcmp(buf, buf2, (size_t)n), "%s re-encodes to the same bytes",
		      tn);
		/* Every cap below the frame's length: -ENOSPC, nothing written past cap. */
		for (int cap = 0; cap < n; cap++) {
			memset(buf2, 0xcd, (size_t)n + 8);
			int rc = wire_msg_encode(buf2, (size_t)cap, 1, &m);
			int clean = 1;
			for (int k = cap; k < n + 8; k++)
				clean &= buf2[k] == 0xcd;
			if (rc != -ENOSPC || !clean) {
				CHECK(0, "%s into %d bytes: %d, clean %d", tn, cap, rc, clean);
				break;
			}
		}
		/* Every truncation of a payload with structure is refused; so is a trailing
		 * byte (bytes-only payloads excepted). */
		int free_form = m.type == WIRE_DATA || m.type == WIRE_CHUNK ||
		                m.type == WIRE_STATUS_OK;
		for (uint32_t k = 0; !free_form && k < h.len; k++) {
			int rc = wire_msg_decode(h.type, buf + WIRE_HDR_LEN, k, &d, &e);
			if (rc == 0) {
				CHECK(0, "%s truncated to %u bytes accepted", tn, k);
				break;
			}
		}
		if (!free_form) {
			memcpy(buf2, buf + WIRE_HDR_LEN, h.len);
			buf2[h.len] = 0;
			int rc = wire_msg_decode(h.type, buf2, h.len + 1, &d, &e);
			CHECK(rc == -EBADMSG || rc == -EOVERFLOW, "%s + 1 byte: %d %s", tn, rc, e.msg);
		}
	}
	CHECK(types_seen == 26, "every message type has a sample (%d)", types_seen);

	/* Field checks on a few decoded views. */
	wire_msg m, d;
	bks_err e = {0};
	int n = enc_sample(7, buf, sizeof(buf));
	CHECK(wire_msg_decode(WIRE_PUT, buf + WIRE_HDR_LEN, (size_t)n - WIRE_HDR_LEN, &d, &e) == 0 &&
	      wire_str_eq(d.u.put.path, "/backups/db01/full.tar") && d.u.put.mode == 0640 &&
	      d.u.put.mtime_ns == -5000000000ll && d.u.put.size_hint == 123456 &&
	      d.u.put.flags == (WIRE_PUT_OVERWRITE | WIRE_PUT_SRC_DEDUP),
	      "PUT fields: %s", e.msg);
	char path[64];
	CHECK(wire_str_copy(d.u.put.path, path, sizeof(path)) == 0 &&
	      !strcmp(path, "/backups/db01/full.tar"), "wire_str_copy");
	CHECK(wire_str_copy(d.u.put.path, path, 5) == -ENAMETOOLONG && !strcmp(path, "/bac"),
	      "wire_str_copy truncates and says so");
	n = enc_sample(14, buf, sizeof(buf));
	CHECK(wire_msg_decode(WIRE_LIST_ITEMS, buf + WIRE_HDR_LEN, (size_t)n - WIRE_HDR_LEN, &d,
	                      &e) == 0, "LIST_ITEMS: %s", e.msg);
	wire_entry ent;
	size_t pos = 0;
	CHECK(wire_items_next(&d.u.items, &pos, &ent) == 1 && wire_str_eq(ent.name, "db01") &&
	      ent.type == WIRE_FT_DIR && ent.mode == 0755 && ent.id == 9, "first entry");
	CHECK(wire_items_next(&d.u.items, &pos, &ent) == 1 &&
	      wire_str_eq(ent.name, "full.tar") && ent.size == 1 << 20, "second entry");
	CHECK(wire_items_next(&d.u.items, &pos, &ent) == 0, "two entries");
	n = enc_sample(23, buf, sizeof(buf));
	CHECK(wire_msg_decode(WIRE_FP_LIST, buf + WIRE_HDR_LEN, (size_t)n - WIRE_HDR_LEN, &d,
	                      &e) == 0 && d.u.fp_list.count == 3, "FP_LIST: %s", e.msg);
	wire_fp fp;
	wire_fp_list_get(&d.u.fp_list, 2, &fp);
	CHECK(fp.fp[0] == 0xa2 && fp.fp[31] == 0xa2 && fp.len == 12288, "FP_LIST entry 2");
	n = enc_sample(24, buf, sizeof(buf));
	CHECK(wire_msg_decode(WIRE_FP_NEED, buf + WIRE_HDR_LEN, (size_t)n - WIRE_HDR_LEN, &d,
	                      &e) == 0, "FP_NEED: %s", e.msg);
	int bits = 0;
	for (uint32_t k = 0; k < d.u.fp_need.count; k++)
		bits |= wire_bit_get(d.u.fp_need.bits, k) << k;
	CHECK(bits == 0x105, "FP_NEED bits 0x%x", bits);

	/* The typed encoders write what wire_msg_encode writes. */
	sample(7, &m);
	n = enc_sample(7, buf, sizeof(buf));
	CHECK(wire_put_encode(buf2, sizeof(buf2), 107, &m.u.put) == n &&
	      !memcmp(buf, buf2, (size_t)n), "wire_put_encode = wire_msg_encode");
	wire_fp v[2] = {{{1}, 100}, {{2}, 200}};
	n = wire_fp_list_encode(buf, sizeof(buf), 5, v, 2);
	CHECK(n == WIRE_HDR_LEN + 4 + 72, "fp_list_encode %d", n);
	CHECK(wire_fp_list_encode(buf, sizeof(buf), 5, v, 0) == -EINVAL, "fp_list of 0");
	n = wire_error_encodef(buf, sizeof(buf), 9, -ENOSPC, "pool %s full", "p0");
	CHECK(n > 0 && wire_msg_decode(WIRE_ERROR, buf + WIRE_HDR_LEN, (size_t)n - WIRE_HDR_LEN,
	                               &d, &e) == 0 && d.u.error.code == WIRE_E_NOSPC &&
	      wire_str_eq(d.u.error.text, "pool p0 full"), "error_encodef");
	uint8_t h16[WIRE_HDR_LEN];
	CHECK(wire_hdr_encode(h16, WIRE_DATA, 3, 1 << 20) == WIRE_HDR_LEN, "hdr_encode DATA");
	CHECK(wire_hdr_encode(h16, WIRE_DATA, 3, 0) == -EINVAL, "hdr_encode empty DATA");
	CHECK(wire_hdr_encode(h16, 0x7f, 3, 1) == -EINVAL, "hdr_encode unknown type");
	CHECK(wire_hdr_encode(h16, WIRE_CHUNK, 3, WIRE_CHUNK_MAX + 1) == -EINVAL,
	      "hdr_encode CHUNK too big");
}

/* Decode payload p of type t and expect code want. */
#define REJECT(t, p, n, want, what)                                                   \
	do {                                                                              \
		wire_msg d_;                                                                  \
		bks_err e_ = {0};                                                             \
		int r_ = wire_msg_decode((t), (p), (n), &d_, &e_);                            \
		CHECK(r_ == (want), "%s: got %d (%s), want %d", what, r_, e_.msg, want);      \
		if (getenv("BKS_TEST_VERBOSE"))                                               \
			fprintf(stderr, "  %-28s -> %s\n", what, e_.msg);                         \
	} while (0)

static void test_header_rejects(void)
{
	uint8_t f[64];
	wire_hdr h;
	bks_err e = {0};
	int n = wire_u64_encode(f, sizeof(f), WIRE_PING, 1, 99);
	REQUIRE_VOID(n == WIRE_HDR_LEN + 8, "precondition");
	for (int k = 0; k < WIRE_HDR_LEN; k++)
		if (wire_hdr_decode(f, (size_t)k, 0, &h, &e) != -EAGAIN)
			CHECK(0, "truncated header of %d bytes: %s", k, e.msg);
	CHECK(wire_frame_decode(f, (size_t)n - 1, 0, &h, &(wire_msg){0}, &e) == -EAGAIN,
	      "truncated payload: -EAGAIN");
	uint8_t g[64];
	memcpy(g, f, (size_t)n);
	g[0] = 'G';
	CHECK(wire_hdr_decode(g, 3, 0, &h, &e) == -EPROTO, "bad magic, seen early: %s", e.msg);
	CHECK(wire_hdr_decode(g, (size_t)n, 0, &h, &e) == -EPROTO, "bad magic");
	memcpy(g, f, (size_t)n);
	g[5] = 1;
	CHECK(wire_hdr_decode(g, (size_t)n, 0, &h, &e) == -EPROTONOSUPPORT, "header flags");
	memcpy(g, f, (size_t)n);
	g[7] = 1;
	CHECK(wire_hdr_decode(g, (size_t)n, 0, &h, &e) == -EPROTONOSUPPORT, "reserved bits");
	memcpy(g, f, (size_t)n);
	g[4] = 0x7f;
	CHECK(wire_hdr_decode(g, (size_t)n, 0, &h, &e) == -EOPNOTSUPP, "unknown type: %s",
	      e.msg);
	g[4] = 0;
	CHECK(wire_hdr_decode(g, (size_t)n, 0, &h, &e) == -EOPNOTSUPP, "type 0");
	memcpy(g, f, (size_t)n);
	g[4] = WIRE_DATA;
	le_put32(g + 12, UINT32_MAX);
	CHECK(wire_hdr_decode(g, WIRE_HDR_LEN, 0, &h, &e) == -EMSGSIZE, "length 2^32-1: %s",
	      e.msg);
	le_put32(g + 12, WIRE_MAX_PAYLOAD_DEFAULT + 1);
	CHECK(wire_hdr_decode(g, WIRE_HDR_LEN, 0, &h, &e) == -EMSGSIZE, "above default max");
	CHECK(wire_hdr_decode(g, WIRE_HDR_LEN, 8u << 20, &h, &e) == 0, "within a larger max");
	le_put32(g + 12, 70000);
	CHECK(wire_hdr_decode(g, WIRE_HDR_LEN, 65536, &h, &e) == -EMSGSIZE,
	      "above a caller's max: %s", e.msg);
	g[4] = WIRE_PING;
	CHECK(wire_hdr_decode(g, WIRE_HDR_LEN, 0, &h, &e) == -EMSGSIZE,
	      "PING announcing 70000 bytes: %s", e.msg);
	g[4] = WIRE_AUTH;
	le_put32(g + 12, 4096);
	CHECK(wire_hdr_decode(g, WIRE_HDR_LEN, 0, &h, &e) == -EMSGSIZE,
	      "pre-auth frame bounded by its type: %s", e.msg);
	g[4] = WIRE_PUT_OK;
	le_put32(g + 12, 47);
	CHECK(wire_hdr_decode(g, WIRE_HDR_LEN, 0, &h, &e) == -EBADMSG,
	      "PUT_OK shorter than its fields: %s", e.msg);
	CHECK(wire_hdr_decode(f, (size_t)n, 0, &h, &e) == 0 && h.tag == 1 && h.len == 8,
	      "the good header still decodes");
}

static void test_payload_rejects(void)
{
	static uint8_t buf[BUF];
	uint8_t p[8192];
	wire_msg m;
	int n;

	/* Strings. */
	wire_put put = {0, 0644, 0, 0, 0, WIRE_SIZE_UNKNOWN, wire_s("/a/b")};
	n = wire_put_encode(buf, sizeof(buf), 1, &put);
	REQUIRE_VOID(n > 0, "precondition");
	uint8_t *pl = buf + WIRE_HDR_LEN;
	size_t pn = (size_t)n - WIRE_HDR_LEN;
	memcpy(p, pl, pn);
	le_put16(p + 32, 300);
	REJECT(WIRE_PUT, p, pn, -EBADMSG, "path length past the end");
	memcpy(p, pl, pn);
	p[36] = '\0';
	REJECT(WIRE_PUT, p, pn, -EILSEQ, "path with NUL");
	memcpy(p, pl, pn);
	p[34] = 'a';
	REJECT(WIRE_PUT, p, pn, -EILSEQ, "relative path");
	memcpy(p, pl, pn);
	le_put16(p + 32, 0);
	REJECT(WIRE_PUT, p, 34, -EILSEQ, "empty path");
	memcpy(p, pl, pn);
	p[pn] = '/';
	le_put16(p + 32, 5);
	REJECT(WIRE_PUT, p, pn + 1, -EILSEQ, "trailing slash");
	static const char *const badpaths[] = {"//a", "/a//b", "/a/./b", "/a/..", "/.", "a"};
	for (size_t i = 0; i < BKS_ARRAY_SIZE(badpaths); i++) {
		bks_err e = {0};
		int r = wire_path_check(badpaths[i], strlen(badpaths[i]), &e);
		CHECK(r == -EILSEQ, "path \"%s\": %d %s", badpaths[i], r, e.msg);
	}
	static const char *const goodpaths[] = {"/", "/a", "/a/b.c", "/...", "/a/.b", "/é"};
	for (size_t i = 0; i < BKS_ARRAY_SIZE(goodpaths); i++)
		CHECK(wire_path_check(goodpaths[i], strlen(goodpaths[i]), NULL) == 0, "path \"%s\"",
		      goodpaths[i]);
	char longp[WIRE_PATH_MAX + 2];
	memset(longp, 'x', sizeof(longp));
	for (int i = 0; i < WIRE_PATH_MAX + 1; i += 200)
		longp[i] = '/';
	CHECK(wire_path_check(longp, WIRE_PATH_MAX, NULL) == 0, "path of WIRE_PATH_MAX");
	CHECK(wire_path_check(longp, WIRE_PATH_MAX + 1, NULL) == -ENAMETOOLONG, "path too long");
	memset(longp, 'y', 300);
	longp[0] = '/';
	CHECK(wire_path_check(longp, 256, NULL) == 0, "255-byte component");
	CHECK(wire_path_check(longp, 257, NULL) == -ENAMETOOLONG, "256-byte component");
	put.path = (wire_str){longp, 257};
	CHECK(wire_put_encode(buf, sizeof(buf), 1, &put) == -ENAMETOOLONG, "encoder refuses too");
	put.path = (wire_str){longp, 70000};
	CHECK(wire_put_encode(buf, sizeof(buf), 1, &put) == -ENAMETOOLONG, "u16 overflow");
	put.path = wire_s("/a/../b");
	CHECK(wire_put_encode(buf, sizeof(buf), 1, &put) == -EILSEQ, "encoder refuses ..");

	/* Names: HELLO with an empty name, a '/' in it, 256 bytes. */
	wire_hello hello = {WIRE_VERSION, {0}, wire_s("srv")};
	n = wire_hello_encode(buf, sizeof(buf), 0, &hello);
	REQUIRE_VOID(n > 0, "precondition");
	pn = (size_t)n - WIRE_HDR_LEN;
	memcpy(p, buf + WIRE_HDR_LEN, pn);
	le_put16(p + 36, 0);
	REJECT(WIRE_HELLO, p, 38, -EILSEQ, "zero-length name");
	memcpy(p, buf + WIRE_HDR_LEN, pn);
	p[39] = '/';
	REJECT(WIRE_HELLO, p, pn, -EILSEQ, "name with '/'");
	memcpy(p, buf + WIRE_HDR_LEN, pn);
	p[0] = 2;
	REJECT(WIRE_HELLO, p, pn, -EPROTONOSUPPORT, "HELLO version 2");
	memcpy(p, buf + WIRE_HDR_LEN, pn);
	p[2] = 1;
	REJECT(WIRE_HELLO, p, pn, -EINVAL, "HELLO reserved field");
	memset(p + 38, 'n', 256);
	le_put16(p + 36, 256);
	p[2] = 0;
	REJECT(WIRE_HELLO, p, 38 + 256, -ENAMETOOLONG, "256-byte name");
	CHECK(wire_name_check("..", 2, NULL) == -EILSEQ, "name ..");
	CHECK(wire_name_check("a\0b", 3, NULL) == -EILSEQ, "name with NUL");

	/* Counts. */
	sample(23, &m);
	n = wire_msg_encode(buf, sizeof(buf), 1, &m);
	pn = (size_t)n - WIRE_HDR_LEN;
	memcpy(p, buf + WIRE_HDR_LEN, pn);
	le_put32(p, 4);
	REJECT(WIRE_FP_LIST, p, pn, -EOVERFLOW, "FP_LIST count larger than the payload");
	le_put32(p, 0x40000000);
	REJECT(WIRE_FP_LIST, p, pn, -EOVERFLOW, "FP_LIST count 2^30");
	le_put32(p, 2);
	REJECT(WIRE_FP_LIST, p, pn, -EBADMSG, "FP_LIST count smaller than the payload");
	le_put32(p, 0);
	REJECT(WIRE_FP_LIST, p, pn, -EINVAL, "FP_LIST count 0");
	le_put32(p, 3);
	le_put32(p + 4 + 32, 0);
	REJECT(WIRE_FP_LIST, p, pn, -EINVAL, "FP_LIST chunk length 0");
	le_put32(p + 4 + 32, WIRE_CHUNK_MAX + 1);
	REJECT(WIRE_FP_LIST, p, pn, -EINVAL, "FP_LIST chunk above the limit");
	uint8_t nb[4 + 2] = {9, 0, 0, 0, 0xff, 0x02};
	REJECT(WIRE_FP_NEED, nb, sizeof(nb), -EINVAL, "FP_NEED bit past the count");
	le_put32(nb, 17);
	REJECT(WIRE_FP_NEED, nb, sizeof(nb), -EOVERFLOW, "FP_NEED count past the bitmap");
	sample(14, &m);
	n = wire_msg_encode(buf, sizeof(buf), 1, &m);
	pn = (size_t)n - WIRE_HDR_LEN;
	memcpy(p, buf + WIRE_HDR_LEN, pn);
	le_put32(p, 1000);
	REJECT(WIRE_LIST_ITEMS, p, pn, -EOVERFLOW, "LIST_ITEMS count larger than the payload");
	le_put32(p, 2);
	p[4] = 3;
	REJECT(WIRE_LIST_ITEMS, p, pn, -EINVAL, "LIST_ITEMS entry type 3");
	p[4] = WIRE_FT_DIR;
	le_put16(p + 4 + 29, 200);
	REJECT(WIRE_LIST_ITEMS, p, pn, -EBADMSG, "LIST_ITEMS name past the end");

	/* Field values. */
	put = (wire_put){0x80, 0644, 0, 0, 0, 0, wire_s("/a")};
	n = wire_put_encode(buf, sizeof(buf), 1, &put);
	CHECK(n == -EINVAL, "PUT unknown flag refused by the encoder");
	/* FP_DIGEST (0x8) is a known bit; the next one is not. */
	put.flags = WIRE_PUT_SRC_DEDUP | WIRE_PUT_FP_DIGEST;
	n = wire_put_encode(buf, sizeof(buf), 1, &put);
	CHECK(n > 0, "PUT with SRC_DEDUP | FP_DIGEST encodes");
	{
		wire_hdr fh;
		wire_msg fm;
		bks_err fe = {0};
		CHECK(n > 0 && wire_frame_decode(buf, (size_t)n, 1u << 20, &fh, &fm, &fe) == n &&
		          fm.u.put.flags == (WIRE_PUT_SRC_DEDUP | WIRE_PUT_FP_DIGEST),
		      "PUT FP_DIGEST flag round-trips");
	}
	put.flags = 0x10;
	CHECK(wire_put_encode(buf, sizeof(buf), 1, &put) == -EINVAL, "PUT flag 0x10 refused");
	put.flags = 0;
	put.mode = 0100644;
	CHECK(wire_put_encode(buf, sizeof(buf), 1, &put) == -EINVAL, "PUT mode with type bits");
	wire_get get = {0, 10, UINT64_MAX - 5, wire_s("/a")};
	CHECK(wire_get_encode(buf, sizeof(buf), 1, &get) == -EINVAL, "GET range wraps");
	get.length = WIRE_LEN_ALL;
	CHECK(wire_get_encode(buf, sizeof(buf), 1, &get) > 0, "GET to the end");
	wire_get_ok gok = {10, 11, 1};
	CHECK(wire_get_ok_encode(buf, sizeof(buf), 1, &gok) == -EINVAL, "GET_OK length > size");
	wire_error er = {0, wire_s("x")};
	CHECK(wire_error_encode(buf, sizeof(buf), 1, &er) == -EINVAL, "ERROR code 0");
	er = (wire_error){WIRE_E_IO, {"a\0b", 3}};
	CHECK(wire_error_encode(buf, sizeof(buf), 1, &er) == -EILSEQ, "ERROR text with NUL");
	memset(longp, 'e', WIRE_TEXT_MAX + 1);
	er.text = (wire_str){longp, WIRE_TEXT_MAX + 1};
	CHECK(wire_error_encode(buf, sizeof(buf), 1, &er) == -ENAMETOOLONG, "ERROR text long");
	sample(2, &m);
	m.u.auth_ok.cdc_avg = 20000;
	CHECK(wire_msg_encode(buf, sizeof(buf), 1, &m) == -EINVAL, "AUTH_OK avg not 2^k");
	sample(2, &m);
	m.u.auth_ok.fp_max = WIRE_FP_MAX + 1;
	CHECK(wire_msg_encode(buf, sizeof(buf), 1, &m) == -EINVAL, "AUTH_OK fp_max");
	sample(2, &m);
	m.u.auth_ok.max_payload = 4096;
	CHECK(wire_msg_encode(buf, sizeof(buf), 1, &m) == -EINVAL, "AUTH_OK tiny max_payload");
	sample(1, &m);
	m.u.auth.max_payload = WIRE_MAX_PAYLOAD_LIMIT + 1;
	CHECK(wire_msg_encode(buf, sizeof(buf), 1, &m) == -EINVAL, "AUTH huge max_payload");
	sample(12, &m);
	m.u.attr.type = 0;
	CHECK(wire_msg_encode(buf, sizeof(buf), 1, &m) == -EINVAL, "STAT_OK type 0");
	sample(8, &m);
	m.u.put_ok.chunks_new = m.u.put_ok.chunks + 1;
	CHECK(wire_msg_encode(buf, sizeof(buf), 1, &m) == -EINVAL, "PUT_OK more new than all");
	sample(11, &m);
	m.u.req.flags = WIRE_DELETE_RECURSIVE;
	CHECK(wire_msg_encode(buf, sizeof(buf), 1, &m) == -EINVAL, "STAT with a flag");
	REJECT(WIRE_DATA, p, 0, -EBADMSG, "empty DATA");
	REJECT(WIRE_OK, p, 1, -EBADMSG, "OK with a payload");
	REJECT(0x99, p, 1, -EOPNOTSUPP, "unknown type, payload decoder");
	uint8_t nul[3] = {'{', 0, '}'};
	REJECT(WIRE_STATUS_OK, nul, 3, -EILSEQ, "STATUS_OK with NUL");
}

/* All sample frames back to back, fed one byte at a time as a socket might. */
static void test_stream(void)
{
	static uint8_t s[BUF];
	size_t len = 0, pos = 0;
	int frames = 0, want = 0;
	for (int i = 0;; i++) {
		wire_msg m;
		if (sample(i, &m) != 1)
			break;
		int n = wire_msg_encode(s + len, sizeof(s) - len, (uint32_t)i, &m);
		REQUIRE_VOID(n > 0, "precondition");
		len += (size_t)n;
		want++;
	}
	for (size_t avail = 0; avail <= len; avail++) {
		wire_hdr h;
		wire_msg m;
		bks_err e = {0};
		int r = wire_frame_decode(s + pos, avail - pos, 0, &h, &m, &e);
		if (r == -EAGAIN)
			continue;
		if (r <= 0) {
			CHECK(0, "stream at %zu: %d %s", pos, r, e.msg);
			return;
		}
		CHECK(h.tag == (uint32_t)frames, "frame %d tag %u", frames, h.tag);
		pos += (size_t)r;
		frames++;
	}
	CHECK(frames == want && pos == len, "stream: %d of %d frames", frames, want);
}

static void test_items_builder(void)
{
	static uint8_t buf[4096];
	wire_items_builder b;
	char name[24];
	int added = 0, frames = 0, seen = 0;
	wire_items_begin(&b, buf, sizeof(buf), 77);
	CHECK(wire_items_finish(&b) == -EINVAL, "empty LIST_ITEMS refused");
	for (int i = 0; i < 500; i++) {
		snprintf(name, sizeof(name), "file-%04d", i);
		wire_entry ent = {WIRE_FT_FILE, 0644, (uint64_t)i, i, (uint64_t)i + 1000, wire_s(name)};
		int r = wire_items_add(&b, &ent);
		if (r == -ENOSPC) {
			int n = wire_items_finish(&b);
			wire_hdr h;
			wire_msg m;
			CHECK(n > 0 && n <= (int)sizeof(buf), "frame %d: %d", frames, n);
			CHECK(wire_frame_decode(buf, (size_t)n, 0, &h, &m, NULL) == n &&
			      h.tag == 77, "frame %d decodes", frames);
			size_t pos = 0;
			wire_entry out;
			while (wire_items_next(&m.u.items, &pos, &out)) {
				char want[24];
				snprintf(want, sizeof(want), "file-%04d", seen);
				if (!wire_str_eq(out.name, want) || out.id != (uint64_t)seen + 1000)
					CHECK(0, "entry %d", seen);
				seen++;
			}
			frames++;
			wire_items_begin(&b, buf, sizeof(buf), 77);
			i--;
			continue;
		}
		CHECK(r == 0, "add %d: %d", i, r);
		added++;
	}
	/* 40-byte entries, 4096-byte frames: 101 per frame. */
	CHECK(frames == 4 && seen == 404 && b.count == 96, "500 entries: %d full frames (%d "
	      "entries) + %u", frames, seen, b.count);
	wire_entry bad = {WIRE_FT_FILE, 0644, 0, 0, 0, wire_s("a/b")};
	CHECK(wire_items_add(&b, &bad) == -EILSEQ, "entry name with '/'");
	bad.name = wire_s("ok");
	bad.type = 9;
	CHECK(wire_items_add(&b, &bad) == -EINVAL, "entry type 9");
	(void)added;
}

static void test_codes(void)
{
	CHECK(wire_code_from_errno(-ENOENT) == WIRE_E_NOENT, "ENOENT");
	CHECK(wire_code_from_errno(ENOSPC) == WIRE_E_NOSPC, "ENOSPC");
	CHECK(wire_code_from_errno(-EHOSTDOWN) == WIRE_E_IO, "unknown errno -> EIO");
	CHECK(wire_code_to_errno(WIRE_E_EXIST) == -EEXIST, "EEXIST back");
	CHECK(wire_code_to_errno(9999) == -EIO, "unknown code -> EIO");
	CHECK(!strcmp(wire_code_name(WIRE_E_ACCES), "EACCES"), "code name");
	CHECK(!strcmp(wire_type_name(WIRE_FP_NEED), "FP_NEED") &&
	      !strcmp(wire_type_name(0xee), "?"), "type names");
	CHECK(wire_type_dir(WIRE_CHUNK) == WIRE_DIR_C2S && wire_type_dir(WIRE_DATA) ==
	      WIRE_DIR_BOTH && wire_type_dir(WIRE_HELLO) == WIRE_DIR_S2C &&
	      wire_type_dir(0) == 0, "directions");
}

static int hex_eq(const uint8_t *b, const char *hex)
{
	char s[3];
	for (size_t i = 0; i < strlen(hex) / 2; i++) {
		snprintf(s, sizeof(s), "%02x", b[i]);
		if (memcmp(s, hex + 2 * i, 2))
			return 0;
	}
	return 1;
}

static void test_hmac_kat(void)
{
	uint8_t mac[AUTH_MAC_LEN], key[20];
	/* RFC 4231 section 4.3, test case 2. */
	const char *data = "what do ya want for nothing?";
	CHECK(auth_hmac_sha256("Jefe", 4, data, strlen(data), mac) == 0, "hmac runs");
	CHECK(hex_eq(mac, "5bdcc146bf60754e6a042426089575c7"
	                  "5a003f089d2739839dec58b964ec3843"), "RFC 4231 test case 2");
	/* Test case 1. */
	memset(key, 0x0b, sizeof(key));
	CHECK(auth_hmac_sha256(key, 20, "Hi There", 8, mac) == 0 &&
	      hex_eq(mac, "b0344c61d8db38535ca8afceaf0bf12b"
	                  "881dc200c9833da726e9376c2e32cff7"), "RFC 4231 test case 1");
	/* The protocol MAC is plain HMAC over label || nonces || name. */
	auth_transcript t = {.name = "db01", .name_len = 4};
	uint8_t secret[32], in[23 + 64 + 4], want[32];
	memset(secret, 0x5e, 31);
	secret[31] = 1;
	memset(t.server_nonce, 1, 32);
	memset(t.client_nonce, 2, 32);
	memcpy(in, "bkstor-native-v1 client", 23);
	memcpy(in + 23, t.server_nonce, 32);
	memcpy(in + 55, t.client_nonce, 32);
	memcpy(in + 87, "db01", 4);
	auth_hmac_sha256(secret, 32, in, sizeof(in), want);
	CHECK(auth_client_mac(secret, 32, &t, mac) == 0 && !memcmp(mac, want, 32),
	      "client MAC layout");
	memcpy(in, "bkstor-native-v1 server", 23);
	memcpy(in + 23, t.client_nonce, 32);
	memcpy(in + 55, t.server_nonce, 32);
	auth_hmac_sha256(secret, 32, in, sizeof(in), want);
	CHECK(auth_server_mac(secret, 32, &t, mac) == 0 && !memcmp(mac, want, 32),
	      "server MAC layout");
	CHECK(auth_client_mac(secret, 8, &t, mac) == -EINVAL, "short secret refused");
	CHECK(auth_secret_check(secret, 32, NULL) == 0, "secret ok");
	CHECK(auth_secret_check(secret, 15, NULL) == -EINVAL, "secret too short");
	memset(key, 7, sizeof(key));
	CHECK(auth_secret_check(key, 20, NULL) == -EINVAL, "secret of one byte value");
}

/* --- a simulated connection: the server's and the client's steps over bytes --- */

typedef struct client_cfg {
	const char *name;
	const uint8_t *secret; /* what the client believes */
} client_cfg;

static const uint8_t SECRET_A[32] = "alice's 32-byte shared secret!!";
static const uint8_t SECRET_B[32] = "bob's other 32-byte secret.....";

/* The server's secret table. */
static const uint8_t *lookup(wire_str name)
{
	if (wire_str_eq(name, "alice"))
		return SECRET_A;
	if (wire_str_eq(name, "bob"))
		return SECRET_B;
	return NULL;
}

typedef struct server_state {
	uint8_t nonce[32];
} server_state;

static int srv_hello(server_state *s, uint8_t *out, size_t cap)
{
	wire_hello h = {WIRE_VERSION, {0}, wire_s("vault-a")};
	if (auth_nonce(s->nonce))
		return -EIO;
	memcpy(h.nonce, s->nonce, 32);
	return wire_hello_encode(out, cap, 0, &h);
}

/* AUTH frame in, AUTH_OK or ERROR frame out; 0 when the client is accepted. */
static int srv_auth(server_state *s, const uint8_t *in, size_t n, uint8_t *out, size_t cap,
                    int *outlen, bks_err *e)
{
	wire_hdr h;
	wire_msg m;
	int r = wire_frame_decode(in, n, 0, &h, &m, e);
	if (r < 0 || h.type != WIRE_AUTH) {
		*outlen = wire_error_encodef(out, cap, 0, EPROTO, "expected AUTH");
		return -EPROTO;
	}
	auth_transcript t = {.name = m.u.auth.name.p, .name_len = m.u.auth.name.len};
	memcpy(t.server_nonce, s->nonce, 32);
	memcpy(t.client_nonce, m.u.auth.nonce, 32);
	const uint8_t *secret = lookup(m.u.auth.name);
	r = auth_verify_client(secret, 32, &t, m.u.auth.mac, e);
	if (r) {
		*outlen = wire_error_encodef(out, cap, 0, EACCES, "authentication failed");
		return r;
	}
	wire_auth_ok ok = {.caps = WIRE_CAP_SRC_DEDUP, .max_payload = WIRE_MAX_PAYLOAD_DEFAULT,
	                   .cdc_min = 4096, .cdc_avg = 16384, .cdc_max = 65536, .fp_max = 4096};
	if (auth_server_mac(secret, 32, &t, ok.mac))
		return -EIO;
	*outlen = wire_auth_ok_encode(out, cap, 0, &ok);
	return 0;
}

typedef struct client_state {
	auth_transcript t;
	char name[256];
} client_state;

static int cli_auth(client_state *c, const client_cfg *cfg, const uint8_t *in, size_t n,
                    uint8_t *out, size_t cap)
{
	wire_hdr h;
	wire_msg m;
	if (wire_frame_decode(in, n, 0, &h, &m, NULL) < 0 || h.type != WIRE_HELLO)
		return -EPROTO;
	snprintf(c->name, sizeof(c->name), "%s", cfg->name);
	c->t.name = c->name;
	c->t.name_len = strlen(c->name);
	memcpy(c->t.server_nonce, m.u.hello.nonce, 32);
	if (auth_nonce(c->t.client_nonce))
		return -EIO;
	wire_auth a = {WIRE_VERSION, WIRE_MAX_PAYLOAD_DEFAULT, {0}, {0}, wire_s(c->name)};
	memcpy(a.nonce, c->t.client_nonce, 32);
	if (auth_client_mac(cfg->secret, 32, &c->t, a.mac))
		return -EIO;
	return wire_auth_encode(out, cap, 0, &a);
}

/* AUTH_OK in: 0 if the server proved the secret. */
static int cli_check(client_state *c, const client_cfg *cfg, const uint8_t *in, size_t n,
                     bks_err *e)
{
	wire_hdr h;
	wire_msg m;
	if (wire_frame_decode(in, n, 0, &h, &m, e) < 0)
		return -EPROTO;
	if (h.type == WIRE_ERROR)
		return wire_code_to_errno(m.u.error.code);
	if (h.type != WIRE_AUTH_OK)
		return -EPROTO;
	return auth_verify_server(cfg->secret, 32, &c->t, m.u.auth_ok.mac, e);
}

static void test_auth_exchange(void)
{
	uint8_t hello[512], auth[512], reply[512], old_auth[512];
	int hn, an, rn, old_n;
	server_state srv;
	client_state cli;
	bks_err e = {0};

	/* The good case, both directions proven. */
	client_cfg alice = {"alice", SECRET_A};
	hn = srv_hello(&srv, hello, sizeof(hello));
	an = cli_auth(&cli, &alice, hello, (size_t)hn, auth, sizeof(auth));
	REQUIRE_VOID(hn > 0 && an > 0, "precondition");
	CHECK(srv_auth(&srv, auth, (size_t)an, reply, sizeof(reply), &rn, &e) == 0,
	      "server accepts alice: %s", e.msg);
	CHECK(cli_check(&cli, &alice, reply, (size_t)rn, &e) == 0, "alice accepts the server: %s",
	      e.msg);
	memcpy(old_auth, auth, (size_t)an);
	old_n = an;
	uint8_t good_reply[512];
	memcpy(good_reply, reply, (size_t)rn);

	/* Replay: alice's AUTH from that connection, sent on a new one. */
	hn = srv_hello(&srv, hello, sizeof(hello));
	CHECK(srv_auth(&srv, old_auth, (size_t)old_n, reply, sizeof(reply), &rn, &e) == -EACCES,
	      "replayed AUTH refused: %s", e.msg);
	CHECK(cli_check(&cli, &alice, reply, (size_t)rn, NULL) == -EACCES,
	      "the client sees EACCES");

	/* Wrong secret. */
	client_cfg wrong = {"alice", SECRET_B};
	hn = srv_hello(&srv, hello, sizeof(hello));
	an = cli_auth(&cli, &wrong, hello, (size_t)hn, auth, sizeof(auth));
	CHECK(srv_auth(&srv, auth, (size_t)an, reply, sizeof(reply), &rn, &e) == -EACCES,
	      "wrong secret: %s", e.msg);
	wire_hdr h;
	wire_msg m;
	CHECK(wire_frame_decode(reply, (size_t)rn, 0, &h, &m, NULL) == rn &&
	      h.type == WIRE_ERROR && m.u.error.code == WIRE_E_ACCES &&
	      wire_str_eq(m.u.error.text, "authentication failed"),
	      "the peer learns nothing but EACCES");

	/* Unknown name: same answer. */
	client_cfg mallory = {"mallory", SECRET_A};
	hn = srv_hello(&srv, hello, sizeof(hello));
	an = cli_auth(&cli, &mallory, hello, (size_t)hn, auth, sizeof(auth));
	uint8_t reply2[512];
	int rn2;
	CHECK(srv_auth(&srv, auth, (size_t)an, reply2, sizeof(reply2), &rn2, &e) == -EACCES,
	      "unknown name: %s", e.msg);
	CHECK(rn2 == rn && !memcmp(reply, reply2, (size_t)rn), "same reply as a wrong secret");

	/* Wrong name: alice's MAC, the name in the frame changed to bob's. */
	hn = srv_hello(&srv, hello, sizeof(hello));
	an = cli_auth(&cli, &alice, hello, (size_t)hn, auth, sizeof(auth));
	REQUIRE_VOID(an > 5 && !memcmp(auth + an - 5, "alice", 5), "precondition");
	memcpy(auth + an - 5, "bob\0\0", 5);
	le_put16(auth + an - 7, 3);
	le_put32(auth + 12, (uint32_t)an - 2 - WIRE_HDR_LEN);
	CHECK(srv_auth(&srv, auth, (size_t)an - 2, reply, sizeof(reply), &rn, &e) == -EACCES,
	      "name changed in flight: %s", e.msg);
	/* bob claiming to be alice with his own secret. */
	client_cfg bob_as_alice = {"alice", SECRET_B};
	hn = srv_hello(&srv, hello, sizeof(hello));
	an = cli_auth(&cli, &bob_as_alice, hello, (size_t)hn, auth, sizeof(auth));
	CHECK(srv_auth(&srv, auth, (size_t)an, reply, sizeof(reply), &rn, &e) == -EACCES,
	      "bob's secret under alice's name");

	/* Mutual: a fake server that does not know the secret. */
	hn = srv_hello(&srv, hello, sizeof(hello));
	an = cli_auth(&cli, &alice, hello, (size_t)hn, auth, sizeof(auth));
	wire_auth_ok fake = {.max_payload = WIRE_MAX_PAYLOAD_DEFAULT, .cdc_min = 4096,
	                     .cdc_avg = 16384, .cdc_max = 65536, .fp_max = 16};
	auth_server_mac(SECRET_B, 32, &cli.t, fake.mac);
	rn = wire_auth_ok_encode(reply, sizeof(reply), 0, &fake);
	CHECK(cli_check(&cli, &alice, reply, (size_t)rn, &e) == -EACCES,
	      "fake server refused: %s", e.msg);
	/* ... that reflects the client's own MAC back. */
	wire_msg am;
	REQUIRE_VOID(wire_frame_decode(auth, (size_t)an, 0, &h, &am, NULL) == an, "precondition");
	memcpy(fake.mac, am.u.auth.mac, 32);
	rn = wire_auth_ok_encode(reply, sizeof(reply), 0, &fake);
	CHECK(cli_check(&cli, &alice, reply, (size_t)rn, &e) == -EACCES, "reflected MAC refused");
	/* ... that replays an AUTH_OK from an earlier connection. */
	CHECK(cli_check(&cli, &alice, good_reply, sizeof(good_reply), &e) == -EACCES,
	      "replayed AUTH_OK refused");

	/* Reflection: client nonce = server nonce. */
	auth_transcript t = {.name = "alice", .name_len = 5};
	uint8_t mac[32];
	memset(t.server_nonce, 9, 32);
	memset(t.client_nonce, 9, 32);
	auth_client_mac(SECRET_A, 32, &t, mac);
	CHECK(auth_verify_client(SECRET_A, 32, &t, mac, &e) == -EACCES, "equal nonces: %s",
	      e.msg);
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "--seeds"))
		return write_seeds(argv[2]);
	test_round_trips();
	test_header_rejects();
	test_payload_rejects();
	test_stream();
	test_items_builder();
	test_codes();
	test_hmac_kat();
	test_auth_exchange();
	return tu_finish();
}
