/* fuzz-iscsi: libFuzzer target for proto/iscsi, the bytes an iSCSI initiator (or
 * anyone reaching port 3260) sends before and after login.
 *
 * Input: a 48-byte Basic Header Segment, then a data segment (as
 * tests/test-iscsi-proto --seeds writes them). The header goes to iscsi_bhs_decode;
 * the rest to iscsi_text_parse and, when it parses, through a whole login
 * negotiation in both stages, with CHAP required and without; each value also to
 * iscsi_bin_decode.
 * Properties (abort() if broken): decoding is canonical (whatever decodes re-encodes
 * to a header that decodes to the same struct); parsed pairs lie inside the buffer,
 * keys are 1..63 bytes and values at most ISCSI_VALUE_MAX; the answers the
 * negotiation writes are themselves well-formed text; a negotiation without the
 * right CHAP response never reports the security stage passed when CHAP is
 * required.
 */
#include <config.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/iscsi.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t chal[ISCSI_CHAP_CHALLENGE] = {9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2, 3, 4, 5, 6};

static void negotiate(const iscsi_target_cfg *cfg, const iscsi_kv *kv, int n)
{
	iscsi_neg ng;
	char out[ISCSI_TEXT_MAX], copy[ISCSI_TEXT_MAX];
	iscsi_kv back[ISCSI_KV_MAX * 2];
	iscsi_neg_init(&ng, cfg, 3, chal);
	for (int csg = 0; csg < 2; csg++) {
		iscsi_text t;
		iscsi_text_init(&t, out, sizeof(out));
		int st = iscsi_neg_login(&ng, csg, kv, n, &t);
		if (st < 0 || st > 0x0302)
			abort();
		if (t.err && st == ISCSI_LOGIN_OK)
			abort();
		/* Our answers parse as text. */
		memcpy(copy, out, t.len);
		if (!t.err && iscsi_text_parse(copy, t.len, back, ISCSI_KV_MAX * 2) < 0)
			abort();
		iscsi_text_init(&t, out, sizeof(out));
		iscsi_neg_finish(&ng, &t);
		if (ng.p.first_burst > ng.p.max_burst || ng.p.erl != 0 || ng.p.max_connections != 1)
			abort();
	}
	/* The fuzzer cannot know MD5(secret || challenge): CHAP never passes. */
	if (cfg->chap_secret && iscsi_neg_auth_ok(&ng))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < ISCSI_BHS_LEN)
		return 0;
	iscsi_pdu p, q;
	uint8_t e[ISCSI_BHS_LEN];
	if (iscsi_bhs_decode(data, &p) == 0) {
		iscsi_bhs_encode(&p, e);
		if (iscsi_bhs_decode(e, &q) != 0 || memcmp(&p, &q, sizeof(p)))
			abort();
	}
	size_t len = size - ISCSI_BHS_LEN;
	if (len > ISCSI_TEXT_MAX)
		return 0;
	char *buf = malloc(len + 1);
	if (!buf)
		return 0;
	memcpy(buf, data + ISCSI_BHS_LEN, len);
	iscsi_kv kv[ISCSI_KV_MAX];
	int n = iscsi_text_parse(buf, len, kv, ISCSI_KV_MAX);
	for (int i = 0; i < n; i++) {
		size_t kl = strlen(kv[i].key), vl = strlen(kv[i].val);
		if (kv[i].key < buf || kv[i].val + vl > buf + len || kl == 0 ||
		    kl > ISCSI_KEY_MAX || vl > ISCSI_VALUE_MAX)
			abort();
		uint8_t bin[64];
		int bl = iscsi_bin_decode(kv[i].val, bin, sizeof(bin));
		if (bl > (int)sizeof(bin))
			abort();
	}
	if (n > 0) {
		static const iscsi_target_cfg open = {
			.max_recv_dsl = 65536, .max_burst = 1048576, .first_burst = 262144,
			.immediate_data = 1, .max_outstanding_r2t = 1};
		static const iscsi_target_cfg chap = {
			.max_recv_dsl = 8192, .max_burst = 262144, .first_burst = 65536,
			.immediate_data = 1, .initial_r2t = 1, .max_outstanding_r2t = 1,
			.chap_user = "alice", .chap_secret = "alice-secret-123",
			.mutual_user = "tgt", .mutual_secret = "target-secret-456"};
		negotiate(&open, kv, n);
		negotiate(&chap, kv, n);
	}
	free(buf);
	return 0;
}
