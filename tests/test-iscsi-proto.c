/* tests/test-iscsi-proto.c: proto/iscsi (RFC 7143 codecs): BHS layouts byte by byte,
 * round trips of every opcode, CRC32C against RFC 3720 B.4, text parsing and its
 * refusals, the negotiation of every operational key, CHAP one-way and mutual
 * (right and wrong secrets, a reflected challenge, algorithms other than MD5).
 * --seeds DIR writes valid inputs for fuzz/fuzz-iscsi.c. */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/iscsi.h"
#include "tests/testutil.h"

static const uint8_t CHAL[ISCSI_CHAP_CHALLENGE] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
                                                   13, 14, 15, 16};

static void test_crc(void)
{
	uint8_t b[32], d[4];
	memset(b, 0, 32);
	iscsi_crc_put(d, iscsi_crc32c(b, 32));
	CHECK(!memcmp(d, "\xaa\x36\x91\x8a", 4), "zeros: %02x%02x%02x%02x", d[0], d[1], d[2], d[3]);
	memset(b, 0xff, 32);
	iscsi_crc_put(d, iscsi_crc32c(b, 32));
	CHECK(!memcmp(d, "\x43\xab\xa8\x62", 4), "ones");
	for (int i = 0; i < 32; i++)
		b[i] = (uint8_t)i;
	iscsi_crc_put(d, iscsi_crc32c(b, 32));
	CHECK(!memcmp(d, "\x4e\x79\xdd\x46", 4), "incrementing");
	for (int i = 0; i < 32; i++)
		b[i] = (uint8_t)(31 - i);
	iscsi_crc_put(d, iscsi_crc32c(b, 32));
	CHECK(!memcmp(d, "\x5c\xdb\x3f\x11", 4), "decrementing");
	/* in pieces = whole */
	uint32_t c = iscsi_crc32c_update(~0u, b, 10);
	c = iscsi_crc32c_update(c, b + 10, 22);
	CHECK(~c == iscsi_crc32c(b, 32), "running crc");
	CHECK(iscsi_crc_get(d) == iscsi_crc32c(b, 32), "crc_get");
	printf("ok   crc32c: RFC 3720 B.4 vectors\n");
}

static void test_bhs(void)
{
	uint8_t b[48];
	iscsi_pdu p, q;

	/* A SCSI Command written by hand from RFC 7143 §11.3. */
	memset(b, 0, 48);
	b[0] = 0x41;                    /* immediate, SCSI Command */
	b[1] = 0x80 | 0x20 | 1;         /* F, W, SIMPLE */
	b[4] = 0;
	b[5] = 0; b[6] = 0x02; b[7] = 0x00; /* DataSegmentLength 512 */
	b[9] = 0;                       /* LUN 0 */
	memcpy(b + 16, "\x00\x00\x00\x2a", 4);  /* ITT 42 */
	memcpy(b + 20, "\x00\x00\x10\x00", 4);  /* EDTL 4096 */
	memcpy(b + 24, "\x00\x00\x00\x07", 4);  /* CmdSN 7 */
	memcpy(b + 28, "\x00\x00\x00\x03", 4);  /* ExpStatSN 3 */
	b[32] = 0x2a;                   /* WRITE(10) */
	b[47] = 0x99;
	CHECK(iscsi_bhs_decode(b, &p) == 0, "decode");
	CHECK(p.op == ISCSI_OP_SCSI_CMD && p.immediate == 1, "op %x", p.op);
	CHECK((p.flags & ISCSI_CMD_W) && !(p.flags & ISCSI_CMD_R), "flags");
	CHECK(p.dlen == 512 && p.itt == 42 && p.edtl == 4096 && p.cmdsn == 7 &&
	      p.expstatsn == 3, "fields dlen %u itt %u edtl %u", p.dlen, p.itt, p.edtl);
	CHECK(p.cdb[0] == 0x2a && p.cdb[15] == 0x99, "cdb");
	uint8_t e[48];
	iscsi_bhs_encode(&p, e);
	CHECK(!memcmp(b, e, 48), "SCSI Command re-encodes to the same bytes");

	/* Responses: field positions. */
	memset(&p, 0, sizeof(p));
	p.op = ISCSI_OP_R2T;
	p.flags = ISCSI_F;
	p.lun = 0x0001000000000000ull;
	p.itt = 0x11223344;
	p.ttt = 0x55667788;
	p.statsn = 5;
	p.expcmdsn = 6;
	p.maxcmdsn = 37;
	p.datasn = 2;             /* R2TSN */
	p.buf_off = 0x10000;
	p.desired_len = 0x40000;
	iscsi_bhs_encode(&p, b);
	CHECK(b[0] == 0x31 && b[1] == 0x80 && b[9] == 1, "r2t header");
	CHECK(!memcmp(b + 16, "\x11\x22\x33\x44\x55\x66\x77\x88", 8), "itt/ttt");
	CHECK(!memcmp(b + 36, "\x00\x00\x00\x02\x00\x01\x00\x00\x00\x04\x00\x00", 12),
	      "r2tsn/offset/length");
	CHECK(iscsi_bhs_decode(b, &q) == 0 && !memcmp(&p, &q, sizeof(p)), "r2t round trip");

	memset(&p, 0, sizeof(p));
	p.op = ISCSI_OP_LOGIN_RSP;
	p.flags = ISCSI_LOGIN_T | (ISCSI_OPER << 2) | ISCSI_FFP;
	memcpy(p.isid, "\x80\x12\x34\x56\x78\x9a", 6);
	p.tsih = 0x1234;
	p.status_class = 2;
	p.status_detail = 1;
	p.dlen = 100;
	iscsi_bhs_encode(&p, b);
	CHECK(b[1] == 0x87 && !memcmp(b + 8, "\x80\x12\x34\x56\x78\x9a\x12\x34", 8) &&
	      b[36] == 2 && b[37] == 1 && b[7] == 100, "login response layout");

	/* Every opcode round-trips; reserved bytes do not survive. */
	static const uint8_t ops[] = {0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x10, 0x20,
	                              0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x31, 0x32, 0x3f};
	bks_rng r;
	bks_rng_seed(&r, 7);
	int rt = 0;
	for (size_t i = 0; i < sizeof(ops); i++)
		for (int k = 0; k < 50; k++) {
			bks_rng_fill(&r, b, 48);
			b[0] = (uint8_t)((b[0] & 0xc0) | ops[i]);
			if (iscsi_bhs_decode(b, &p) != 0)
				continue;
			iscsi_bhs_encode(&p, e);
			rt += iscsi_bhs_decode(e, &q) == 0 && !memcmp(&p, &q, sizeof(p));
		}
	CHECK(rt == (int)sizeof(ops) * 50, "round trips %d", rt);
	int rej = 0;
	for (int op = 0; op < 64; op++) {
		memset(b, 0, 48);
		b[0] = (uint8_t)op;
		if (iscsi_bhs_decode(b, &p) == -EPROTO)
			rej++;
	}
	CHECK(rej == 64 - (int)sizeof(ops), "undefined opcodes refused: %d", rej);
	CHECK(iscsi_pad(0) == 0 && iscsi_pad(1) == 3 && iscsi_pad(4) == 0 && iscsi_pad(6) == 2, "pad");
	printf("ok   bhs: layouts, %d round trips, %d undefined opcodes refused\n", rt, rej);
}

static int parse(const char *lit, size_t len, iscsi_kv *kv, int max, char *buf)
{
	memcpy(buf, lit, len);
	return iscsi_text_parse(buf, len, kv, max);
}

static void test_text(void)
{
	char buf[ISCSI_TEXT_MAX + 8];
	iscsi_kv kv[ISCSI_KV_MAX];
	static const char ok[] = "InitiatorName=iqn.2000-01.x:y\0SessionType=Normal\0\0\0";
	int n = parse(ok, sizeof(ok) - 1, kv, ISCSI_KV_MAX, buf);
	CHECK(n == 2, "two pairs (padding skipped): %d", n);
	CHECK(n == 2 && !strcmp(kv[0].key, "InitiatorName") &&
	      !strcmp(kv[0].val, "iqn.2000-01.x:y") && !strcmp(kv[1].val, "Normal"), "values");
	CHECK(!strcmp(iscsi_kv_get(kv, n, "SessionType"), "Normal") &&
	      !iscsi_kv_get(kv, n, "Nope"), "kv_get");
	CHECK(parse("A=\0", 3, kv, 4, buf) == 1 && !strcmp(kv[0].val, ""), "empty value ok");
	CHECK(parse("A=b=c\0", 6, kv, 4, buf) == 1 && !strcmp(kv[0].val, "b=c"), "= in value");
	CHECK(parse("Ab\0", 3, kv, 4, buf) == -EPROTO, "no =");
	CHECK(parse("=b\0", 3, kv, 4, buf) == -EPROTO, "empty key");
	CHECK(parse("A=b", 3, kv, 4, buf) == -EPROTO, "no final NUL");
	CHECK(parse("A b=c\0", 6, kv, 4, buf) == -EPROTO, "space in key");
	CHECK(parse("A=b\nc\0", 6, kv, 4, buf) == -EPROTO, "control char in value");
	CHECK(parse("A=1\0B=2\0C=3\0", 12, kv, 2, buf) == -E2BIG, "too many pairs");
	char big[ISCSI_VALUE_MAX + 8];
	memset(big, 'v', sizeof(big));
	memcpy(big, "K=", 2);
	big[sizeof(big) - 1] = 0;
	CHECK(parse(big, sizeof(big), kv, 4, buf) == -EMSGSIZE, "value too long");
	char key[80];
	memset(key, 'k', sizeof(key));
	memcpy(key + 70, "=1", 3);
	CHECK(parse(key, 73, kv, 4, buf) == -EPROTO, "key too long");
	CHECK(iscsi_text_parse(buf, ISCSI_TEXT_MAX + 1, kv, 4) == -EMSGSIZE, "text too long");

	iscsi_text t;
	char ob[16];
	iscsi_text_init(&t, ob, sizeof(ob));
	iscsi_text_add(&t, "A", "1");
	iscsi_text_addu(&t, "B", 22);
	CHECK(!t.err && t.len == 9 && !memcmp(ob, "A=1\0B=22\0", 9), "text builder");
	iscsi_text_add(&t, "Long", "value");
	CHECK(t.err && t.len == 9, "over capacity: err, nothing half-written");

	CHECK(iscsi_name_ok("iqn.2026-12.io.bkstor:demo:lun0"), "iqn name");
	CHECK(!iscsi_name_ok("foo") && !iscsi_name_ok("iqn.") && !iscsi_name_ok("iqn.a b"), "bad names");
	printf("ok   text: parse, refusals, builder\n");
}

static const iscsi_target_cfg open_cfg = {
	.max_recv_dsl = 262144, .max_burst = 1048576, .first_burst = 262144,
	.immediate_data = 1, .initial_r2t = 0, .max_outstanding_r2t = 1,
};

/* Run one login request (pairs as "k=v\0..." text) through n; out gets the answer. */
static int neg(iscsi_neg *n, int csg, const char *text, size_t len, char *out, size_t *olen)
{
	char buf[4096];
	iscsi_kv kv[ISCSI_KV_MAX];
	iscsi_text t;
	memcpy(buf, text, len);
	int k = iscsi_text_parse(buf, len, kv, ISCSI_KV_MAX);
	if (k < 0)
		return -1000 + k;
	iscsi_text_init(&t, out, 4096);
	int st = iscsi_neg_login(n, csg, kv, k, &t);
	*olen = t.len;
	return st;
}

/* The value of key in an answer text ("" if absent). */
static const char *ans(const char *out, size_t len, const char *key)
{
	static char v[512];
	size_t kl = strlen(key);
	for (size_t i = 0; i < len; i += strlen(out + i) + 1)
		if (!strncmp(out + i, key, kl) && out[i + kl] == '=') {
			snprintf(v, sizeof(v), "%s", out + i + kl + 1);
			return v;
		}
	return "";
}

#define NEG(n, csg, lit, out, olen) neg(n, csg, lit, sizeof(lit) - 1, out, olen)

static void test_neg(void)
{
	iscsi_neg n;
	char out[4096];
	size_t ol;
	iscsi_neg_init(&n, &open_cfg, 1, CHAL);
	int st = NEG(&n, ISCSI_OPER, "InitiatorName=iqn.2000-01.x:i\0SessionType=Normal\0"
	             "TargetName=iqn.2026-12.io.bkstor:demo:lun0\0"
	             "HeaderDigest=None,CRC32C\0DataDigest=CRC32C,None\0"
	             "MaxRecvDataSegmentLength=65536\0MaxBurstLength=16776192\0"
	             "FirstBurstLength=131072\0ImmediateData=Yes\0InitialR2T=No\0"
	             "MaxOutstandingR2T=8\0MaxConnections=4\0DefaultTime2Wait=0\0"
	             "DefaultTime2Retain=20\0ErrorRecoveryLevel=2\0DataPDUInOrder=No\0"
	             "DataSequenceInOrder=Yes\0X-com.example.Foo=1\0OFMarker=No\0"
	             "IFMarkInt=2048~8192\0", out, &ol);
	CHECK(st == ISCSI_LOGIN_OK, "status %x (%s)", st, n.why);
	CHECK(!strcmp(ans(out, ol, "HeaderDigest"), "None") &&
	      !strcmp(ans(out, ol, "DataDigest"), "CRC32C"), "digests: first supported");
	CHECK(n.p.header_digest == 0 && n.p.data_digest == 1, "digest params");
	CHECK(!strcmp(ans(out, ol, "MaxRecvDataSegmentLength"), "262144") &&
	      n.p.max_recv_dsl_init == 65536, "MaxRecvDataSegmentLength: declared both ways");
	CHECK(!strcmp(ans(out, ol, "MaxBurstLength"), "1048576") && n.p.max_burst == 1048576,
	      "MaxBurstLength: min");
	CHECK(!strcmp(ans(out, ol, "FirstBurstLength"), "131072"), "FirstBurstLength: min");
	CHECK(!strcmp(ans(out, ol, "ImmediateData"), "Yes") &&
	      !strcmp(ans(out, ol, "InitialR2T"), "No"), "ImmediateData AND, InitialR2T OR");
	CHECK(!strcmp(ans(out, ol, "MaxOutstandingR2T"), "1") &&
	      !strcmp(ans(out, ol, "MaxConnections"), "1"), "one R2T, one connection");
	CHECK(!strcmp(ans(out, ol, "DefaultTime2Wait"), "2") &&
	      !strcmp(ans(out, ol, "DefaultTime2Retain"), "0"), "Time2Wait max, Time2Retain min");
	CHECK(!strcmp(ans(out, ol, "ErrorRecoveryLevel"), "0") && n.p.erl == 0, "ERL 0");
	CHECK(!strcmp(ans(out, ol, "DataPDUInOrder"), "Yes"), "in order only");
	CHECK(!strcmp(ans(out, ol, "X-com.example.Foo"), "NotUnderstood"), "unknown key");
	CHECK(!strcmp(ans(out, ol, "OFMarker"), "No") &&
	      !strcmp(ans(out, ol, "IFMarkInt"), "Irrelevant"), "markers");
	CHECK(n.p.session_type == ISCSI_SESS_NORMAL &&
	      !strcmp(n.p.target_name, "iqn.2026-12.io.bkstor:demo:lun0"), "leading keys");
	CHECK(iscsi_neg_auth_ok(&n), "no CHAP configured: no auth needed");
	iscsi_text t;
	iscsi_text_init(&t, out, sizeof(out));
	iscsi_neg_finish(&n, &t);
	CHECK(t.len == 0, "MaxRecvDataSegmentLength not declared twice");

	/* Bad values */
	iscsi_neg_init(&n, &open_cfg, 1, CHAL);
	st = NEG(&n, ISCSI_OPER, "InitiatorName=iqn.2000-01.x:i\0MaxBurstLength=100\0"
	         "ImmediateData=Maybe\0HeaderDigest=MD5\0MaxConnections=0x2\0", out, &ol);
	CHECK(st == ISCSI_LOGIN_OK && !strcmp(ans(out, ol, "MaxBurstLength"), "Reject") &&
	      !strcmp(ans(out, ol, "ImmediateData"), "Reject") &&
	      !strcmp(ans(out, ol, "HeaderDigest"), "Reject") &&
	      !strcmp(ans(out, ol, "MaxConnections"), "1"), "out of range: Reject; 0x numbers");
	iscsi_text_init(&t, out, sizeof(out));
	iscsi_neg_finish(&n, &t);
	CHECK(!strcmp(ans(out, t.len, "MaxRecvDataSegmentLength"), "262144") &&
	      n.p.first_burst <= n.p.max_burst, "finish declares ours");
	iscsi_neg_init(&n, &open_cfg, 1, CHAL);
	CHECK(NEG(&n, ISCSI_OPER, "InitiatorName=iqn.2000-01.x:i\0MaxRecvDataSegmentLength=12\0",
	          out, &ol) == ISCSI_LOGIN_INIT_ERR, "declared length out of range");
	iscsi_neg_init(&n, &open_cfg, 1, CHAL);
	CHECK(NEG(&n, ISCSI_OPER, "InitiatorName=iqn.2000-01.x:i\0InitiatorName=iqn.2000-01.x:i\0",
	          out, &ol) == ISCSI_LOGIN_INIT_ERR, "key twice");
	iscsi_neg_init(&n, &open_cfg, 1, CHAL);
	CHECK(NEG(&n, ISCSI_OPER, "SessionType=Normal\0", out, &ol) == ISCSI_LOGIN_MISSING_PARAM,
	      "no InitiatorName");
	iscsi_neg_init(&n, &open_cfg, 1, CHAL);
	CHECK(NEG(&n, ISCSI_OPER, "InitiatorName=iqn.2000-01.x:i\0SessionType=Weird\0", out,
	          &ol) == ISCSI_LOGIN_NO_TYPE, "bad session type");
	iscsi_neg_init(&n, &open_cfg, 1, CHAL);
	CHECK(NEG(&n, ISCSI_OPER, "InitiatorName=iqn.2000-01.x:i\0AuthMethod=None\0", out,
	          &ol) == ISCSI_LOGIN_INIT_ERR, "security key in the operational stage");
	iscsi_neg_init(&n, &open_cfg, 1, CHAL);
	CHECK(NEG(&n, ISCSI_SEC, "InitiatorName=iqn.2000-01.x:i\0AuthMethod=CHAP,None\0", out,
	          &ol) == ISCSI_LOGIN_OK && !strcmp(ans(out, ol, "AuthMethod"), "None") &&
	      iscsi_neg_auth_ok(&n), "AuthMethod None when CHAP is not configured");
	printf("ok   negotiation: every operational key, refusals\n");
}

static void hexs(const uint8_t *b, size_t n, char *o)
{
	o += sprintf(o, "0x");
	for (size_t i = 0; i < n; i++)
		o += sprintf(o, "%02x", b[i]);
}

static void test_chap(void)
{
	static const iscsi_target_cfg cc = {
		.max_recv_dsl = 8192, .max_burst = 262144, .first_burst = 65536,
		.immediate_data = 1, .max_outstanding_r2t = 1,
		.chap_user = "alice", .chap_secret = "alice-secret-123",
		.mutual_user = "tgt", .mutual_secret = "target-secret-456",
	};
	iscsi_neg n;
	char out[4096], req[1024];
	size_t ol;
	uint8_t md[16];

	iscsi_chap_md5('a', "b", 1, (const uint8_t *)"c", 1, md);
	CHECK(!memcmp(md, "\x90\x01\x50\x98\x3c\xd2\x4f\xb0\xd6\x96\x3f\x7d\x28\xe1\x7f\x72", 16),
	      "md5(abc)");
	uint8_t bin[32];
	CHECK(iscsi_bin_decode("0x0aff", bin, 32) == 2 && bin[0] == 0x0a && bin[1] == 0xff, "hex");
	CHECK(iscsi_bin_decode("0xaff", bin, 32) == 2 && bin[0] == 0x0a, "odd hex");
	CHECK(iscsi_bin_decode("0bCv8=", bin, 32) == 2 && bin[0] == 0x0a && bin[1] == 0xff,
	      "base64");
	CHECK(iscsi_bin_decode("0x", bin, 32) < 0 && iscsi_bin_decode("0xzz", bin, 32) < 0 &&
	      iscsi_bin_decode("abc", bin, 32) < 0 && iscsi_bin_decode("0b=abc", bin, 32) < 0 &&
	      iscsi_bin_decode("0x00112233", bin, 2) == -EMSGSIZE, "bad binary values");

	/* Without CHAP: refused. */
	iscsi_neg_init(&n, &cc, 7, CHAL);
	CHECK(NEG(&n, ISCSI_SEC, "InitiatorName=iqn.2000-01.x:i\0AuthMethod=None\0", out, &ol) ==
	      ISCSI_LOGIN_AUTH_FAIL && !strcmp(ans(out, ol, "AuthMethod"), "Reject"),
	      "AuthMethod=None refused when CHAP is required");
	iscsi_neg_init(&n, &cc, 7, CHAL);
	CHECK(NEG(&n, ISCSI_OPER, "InitiatorName=iqn.2000-01.x:i\0", out, &ol) == 0 &&
	      !iscsi_neg_auth_ok(&n), "skipping the security stage is not authenticated");

	/* Algorithms: only MD5, matched exactly. */
	static const char *const bad_a[] = {"CHAP_A=56", "CHAP_A=", "CHAP_A=6,7"};
	for (int i = 0; i < 3; i++) {
		iscsi_neg_init(&n, &cc, 7, CHAL);
		NEG(&n, ISCSI_SEC, "InitiatorName=iqn.2000-01.x:i\0AuthMethod=CHAP,None\0", out, &ol);
		size_t l = strlen(bad_a[i]) + 1;
		CHECK(neg(&n, ISCSI_SEC, bad_a[i], l, out, &ol) == ISCSI_LOGIN_AUTH_FAIL, "%s", bad_a[i]);
	}

	/* One-way: right and wrong secrets, wrong name. */
	for (int k = 0; k < 4; k++) {
		iscsi_neg_init(&n, &cc, 7, CHAL);
		int st = NEG(&n, ISCSI_SEC, "InitiatorName=iqn.2000-01.x:i\0AuthMethod=CHAP,None\0",
		             out, &ol);
		CHECK(st == 0 && !strcmp(ans(out, ol, "AuthMethod"), "CHAP"), "CHAP picked");
		st = NEG(&n, ISCSI_SEC, "CHAP_A=7,5\0", out, &ol);
		CHECK(st == 0 && !strcmp(ans(out, ol, "CHAP_A"), "5") &&
		      !strcmp(ans(out, ol, "CHAP_I"), "7") &&
		      !strcmp(ans(out, ol, "CHAP_C"), "0x0102030405060708090a0b0c0d0e0f10"),
		      "challenge sent");
		const char *sec = k == 1 ? "wrong-secret-000" : "alice-secret-123";
		iscsi_chap_md5(7, sec, strlen(sec), CHAL, 16, md);
		char h[64];
		hexs(md, k == 3 ? 15 : 16, h);
		int len = snprintf(req, sizeof(req), "CHAP_N=%s%cCHAP_R=%s%c",
		                   k == 2 ? "mallory" : "alice", 0, h, 0);
		st = neg(&n, ISCSI_SEC, req, (size_t)len, out, &ol);
		if (k == 0)
			CHECK(st == 0 && iscsi_neg_auth_ok(&n), "right secret: %x %s", st, n.why);
		else
			CHECK(st == ISCSI_LOGIN_AUTH_FAIL && !iscsi_neg_auth_ok(&n),
			      "case %d refused (%s)", k, n.why);
	}

	/* Mutual: the target answers the initiator's challenge with its own secret. */
	uint8_t ic[20];
	for (int i = 0; i < 20; i++)
		ic[i] = (uint8_t)(0xa0 + i);
	for (int k = 0; k < 2; k++) {
		iscsi_neg_init(&n, &cc, 9, CHAL);
		NEG(&n, ISCSI_SEC, "InitiatorName=iqn.2000-01.x:i\0AuthMethod=CHAP\0", out, &ol);
		NEG(&n, ISCSI_SEC, "CHAP_A=5\0", out, &ol);
		iscsi_chap_md5(9, cc.chap_secret, strlen(cc.chap_secret), CHAL, 16, md);
		char h[64], hc[64];
		hexs(md, 16, h);
		/* k == 1: the initiator reflects our own challenge back */
		hexs(k ? CHAL : ic, k ? 16 : 20, hc);
		int len = snprintf(req, sizeof(req), "CHAP_N=alice%cCHAP_R=%s%cCHAP_I=33%cCHAP_C=%s%c",
		                   0, h, 0, 0, hc, 0);
		int st = neg(&n, ISCSI_SEC, req, (size_t)len, out, &ol);
		if (k == 0) {
			uint8_t want[16];
			char wh[64];
			iscsi_chap_md5(33, cc.mutual_secret, strlen(cc.mutual_secret), ic, 20, want);
			hexs(want, 16, wh);
			CHECK(st == 0 && !strcmp(ans(out, ol, "CHAP_N"), "tgt") &&
			      !strcmp(ans(out, ol, "CHAP_R"), wh), "mutual answer (%s)", n.why);
		} else {
			CHECK(st == ISCSI_LOGIN_AUTH_FAIL, "reflected challenge refused");
		}
	}
	/* CHAP answer before the challenge */
	iscsi_neg_init(&n, &cc, 9, CHAL);
	NEG(&n, ISCSI_SEC, "InitiatorName=iqn.2000-01.x:i\0AuthMethod=CHAP\0", out, &ol);
	CHECK(NEG(&n, ISCSI_SEC, "CHAP_N=alice\0CHAP_R=0x00\0", out, &ol) != 0 &&
	      !iscsi_neg_auth_ok(&n), "response out of turn");
	printf("ok   chap: md5, binary values, one-way, mutual, reflection\n");
}

/* Valid inputs for fuzz-iscsi: a BHS followed by login text. */
static int write_seeds(const char *dir)
{
	static const char *const texts[] = {
		"InitiatorName=iqn.2000-01.x:i\0SessionType=Normal\0TargetName=iqn.x:y\0"
		"HeaderDigest=None,CRC32C\0MaxBurstLength=262144\0ImmediateData=Yes\0",
		"AuthMethod=CHAP,None\0CHAP_A=5\0",
		"CHAP_N=alice\0CHAP_R=0x00112233445566778899aabbccddeeff\0CHAP_I=1\0CHAP_C=0bAAEC\0",
		"SendTargets=All\0",
	};
	static const uint8_t ops[] = {0x03, 0x01, 0x05, 0x04, 0x02, 0x00, 0x06};
	for (size_t i = 0; i < sizeof(ops); i++) {
		iscsi_pdu p;
		uint8_t b[48 + 512];
		memset(&p, 0, sizeof(p));
		p.op = ops[i];
		p.flags = ISCSI_F;
		p.itt = (uint32_t)i;
		p.cdb[0] = 0x28;
		const char *t = texts[i % 4];
		size_t tl = 0;
		while (t[tl] || t[tl + 1])
			tl++;
		tl += 2;
		p.dlen = (uint32_t)tl;
		iscsi_bhs_encode(&p, b);
		memcpy(b + 48, t, tl);
		char path[1024];
		snprintf(path, sizeof(path), "%s/seed-%zu", dir, i);
		FILE *f = fopen(path, "wb");
		if (!f)
			return 1;
		fwrite(b, 1, 48 + tl, f);
		fclose(f);
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "--seeds"))
		return write_seeds(argv[2]);
	test_crc();
	test_bhs();
	test_text();
	test_neg();
	test_chap();
	return tu_finish();
}
