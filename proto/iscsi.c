/* proto/iscsi.c: see iscsi.h. */
#include <config.h>

#include "proto/iscsi.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <isa-l/crc.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

/* ---- Basic Header Segment ----
 * One layout per opcode: which bytes hold which field. Decoding and encoding walk
 * the same table, so they cannot disagree, and bytes no entry names are reserved
 * (ignored in, zero out). */

typedef struct bfield {
	uint8_t off, size;       /* bytes; size 6 and 16 are raw copies */
	uint16_t fld;            /* offsetof(iscsi_pdu, ...) */
} bfield;

#define BF(o, s, f) { o, s, (uint16_t)offsetof(iscsi_pdu, f) }
#define LUN BF(8, 8, lun)
#define ITT BF(16, 4, itt)
#define RSPSN BF(24, 4, statsn), BF(28, 4, expcmdsn), BF(32, 4, maxcmdsn)
#define REQSN BF(24, 4, cmdsn), BF(28, 4, expstatsn)
#define END { 0, 0, 0 }

typedef struct blayout {
	uint8_t op;
	bfield f[12];
} blayout;

static const blayout layouts[] = {
	{ISCSI_OP_NOP_OUT, {LUN, ITT, BF(20, 4, ttt), REQSN, END}},
	{ISCSI_OP_SCSI_CMD, {LUN, ITT, BF(20, 4, edtl), REQSN, BF(32, 16, cdb), END}},
	{ISCSI_OP_TMF_REQ, {LUN, ITT, BF(20, 4, rtt), REQSN, BF(32, 4, refcmdsn),
	                    BF(36, 4, expdatasn), END}},
	{ISCSI_OP_LOGIN_REQ, {BF(2, 1, response), BF(3, 1, status), BF(8, 6, isid),
	                      BF(14, 2, tsih), ITT, BF(20, 2, cid), REQSN, END}},
	{ISCSI_OP_TEXT_REQ, {LUN, ITT, BF(20, 4, ttt), REQSN, END}},
	{ISCSI_OP_DATA_OUT, {LUN, ITT, BF(20, 4, ttt), BF(28, 4, expstatsn), BF(36, 4, datasn),
	                     BF(40, 4, buf_off), END}},
	{ISCSI_OP_LOGOUT_REQ, {ITT, BF(20, 2, cid), REQSN, END}},
	{ISCSI_OP_SNACK, {LUN, ITT, BF(20, 4, ttt), BF(28, 4, expstatsn), BF(40, 4, begrun),
	                  BF(44, 4, runlen), END}},
	{ISCSI_OP_NOP_IN, {LUN, ITT, BF(20, 4, ttt), RSPSN, END}},
	{ISCSI_OP_SCSI_RSP, {BF(2, 1, response), BF(3, 1, status), ITT, BF(20, 4, snack_tag),
	                     RSPSN, BF(36, 4, expdatasn), BF(40, 4, bidi_residual),
	                     BF(44, 4, residual), END}},
	{ISCSI_OP_TMF_RSP, {BF(2, 1, response), ITT, RSPSN, END}},
	{ISCSI_OP_LOGIN_RSP, {BF(2, 1, response), BF(3, 1, status), BF(8, 6, isid),
	                      BF(14, 2, tsih), ITT, RSPSN, BF(36, 1, status_class),
	                      BF(37, 1, status_detail), END}},
	{ISCSI_OP_TEXT_RSP, {LUN, ITT, BF(20, 4, ttt), RSPSN, END}},
	{ISCSI_OP_DATA_IN, {BF(3, 1, status), LUN, ITT, BF(20, 4, ttt), RSPSN,
	                    BF(36, 4, datasn), BF(40, 4, buf_off), BF(44, 4, residual), END}},
	{ISCSI_OP_LOGOUT_RSP, {BF(2, 1, response), ITT, RSPSN, BF(40, 2, time2wait),
	                       BF(42, 2, time2retain), END}},
	{ISCSI_OP_R2T, {LUN, ITT, BF(20, 4, ttt), RSPSN, BF(36, 4, datasn), BF(40, 4, buf_off),
	                BF(44, 4, desired_len), END}},
	{ISCSI_OP_ASYNC, {LUN, ITT, RSPSN, BF(36, 1, async_event), BF(37, 1, async_vcode),
	                  BF(38, 2, param[0]), BF(40, 2, param[1]), BF(42, 2, param[2]), END}},
	{ISCSI_OP_REJECT, {BF(2, 1, response), ITT, RSPSN, BF(36, 4, datasn), END}},
};

static const blayout *layout_of(uint8_t op)
{
	for (size_t i = 0; i < sizeof(layouts) / sizeof(layouts[0]); i++)
		if (layouts[i].op == op)
			return &layouts[i];
	return NULL;
}

static uint64_t be_get(const uint8_t *b, int n)
{
	uint64_t v = 0;
	for (int i = 0; i < n; i++)
		v = v << 8 | b[i];
	return v;
}

static void be_put(uint8_t *b, int n, uint64_t v)
{
	for (int i = n - 1; i >= 0; i--, v >>= 8)
		b[i] = (uint8_t)v;
}

int iscsi_bhs_decode(const uint8_t b[ISCSI_BHS_LEN], iscsi_pdu *p)
{
	memset(p, 0, sizeof(*p));
	p->op = b[0] & 0x3f;
	const blayout *l = layout_of(p->op);
	if (!l)
		return -EPROTO;
	if (p->op < 0x20)
		p->immediate = (b[0] >> 6) & 1;
	p->flags = b[1];
	p->ahs_len = (uint16_t)(b[4] * 4);
	p->dlen = (uint32_t)be_get(b + 5, 3);
	for (const bfield *f = l->f; f->size; f++) {
		uint8_t *dst = (uint8_t *)p + f->fld;
		if (f->size == 6 || f->size == 16) {
			memcpy(dst, b + f->off, f->size);
			continue;
		}
		uint64_t v = be_get(b + f->off, f->size);
		switch (f->size) {
		case 1: *dst = (uint8_t)v; break;
		case 2: { uint16_t w = (uint16_t)v; memcpy(dst, &w, 2); break; }
		case 4: { uint32_t w = (uint32_t)v; memcpy(dst, &w, 4); break; }
		default: memcpy(dst, &v, 8);
		}
	}
	return 0;
}

void iscsi_bhs_encode(const iscsi_pdu *p, uint8_t b[ISCSI_BHS_LEN])
{
	memset(b, 0, ISCSI_BHS_LEN);
	const blayout *l = layout_of(p->op);
	if (!l)
		return;
	b[0] = (uint8_t)(p->op | (p->op < 0x20 && p->immediate ? 0x40 : 0));
	b[1] = p->flags;
	b[4] = (uint8_t)(p->ahs_len / 4);
	be_put(b + 5, 3, p->dlen & 0xffffff);
	for (const bfield *f = l->f; f->size; f++) {
		const uint8_t *src = (const uint8_t *)p + f->fld;
		if (f->size == 6 || f->size == 16) {
			memcpy(b + f->off, src, f->size);
			continue;
		}
		uint64_t v = 0;
		switch (f->size) {
		case 1: v = *src; break;
		case 2: { uint16_t w; memcpy(&w, src, 2); v = w; break; }
		case 4: { uint32_t w; memcpy(&w, src, 4); v = w; break; }
		default: memcpy(&v, src, 8);
		}
		be_put(b + f->off, f->size, v);
	}
}

/* ---- CRC32C ----
 * ISA-L's crc32_iscsi neither inverts its input nor its output; the iSCSI digest
 * is the standard CRC32C (both inverted), stored least significant byte first. */

uint32_t iscsi_crc32c_update(uint32_t crc, const void *p, size_t len)
{
	const unsigned char *c = p;
	while (len > 0) {
		int n = len > (1u << 30) ? 1 << 30 : (int)len;
		crc = crc32_iscsi((unsigned char *)c, n, crc);
		c += n;
		len -= (size_t)n;
	}
	return crc;
}

uint32_t iscsi_crc32c(const void *p, size_t len)
{
	return ~iscsi_crc32c_update(~0u, p, len);
}

void iscsi_crc_put(uint8_t out[4], uint32_t crc)
{
	out[0] = (uint8_t)crc;
	out[1] = (uint8_t)(crc >> 8);
	out[2] = (uint8_t)(crc >> 16);
	out[3] = (uint8_t)(crc >> 24);
}

uint32_t iscsi_crc_get(const uint8_t in[4])
{
	return (uint32_t)in[0] | (uint32_t)in[1] << 8 | (uint32_t)in[2] << 16 |
	       (uint32_t)in[3] << 24;
}

/* ---- text ---- */

static int key_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '-' || c == '+' || c == '@' || c == '_';
}

int iscsi_text_parse(char *buf, size_t len, iscsi_kv *kv, int max)
{
	int n = 0;
	if (len > ISCSI_TEXT_MAX)
		return -EMSGSIZE;
	if (len && buf[len - 1] != '\0')
		return -EPROTO;
	for (size_t i = 0; i < len;) {
		char *item = buf + i;
		size_t il = strlen(item); /* ends at the NUL checked above */
		i += il + 1;
		if (il == 0)
			continue;
		char *eq = memchr(item, '=', il);
		if (!eq || eq == item || eq - item > ISCSI_KEY_MAX)
			return -EPROTO;
		for (char *k = item; k < eq; k++)
			if (!key_char(*k))
				return -EPROTO;
		size_t vl = il - (size_t)(eq - item) - 1;
		if (vl > ISCSI_VALUE_MAX)
			return -EMSGSIZE;
		for (size_t k = 0; k < vl; k++) {
			unsigned char c = (unsigned char)eq[1 + k];
			if (c < 0x20 || c == 0x7f)
				return -EPROTO;
		}
		if (n >= max)
			return -E2BIG;
		*eq = '\0';
		kv[n].key = item;
		kv[n].val = eq + 1;
		n++;
	}
	return n;
}

void iscsi_text_init(iscsi_text *t, char *buf, size_t cap)
{
	t->buf = buf;
	t->cap = cap;
	t->len = 0;
	t->err = 0;
}

void iscsi_text_add(iscsi_text *t, const char *key, const char *val)
{
	size_t kl = strlen(key), vl = strlen(val);
	if (t->err || t->len + kl + vl + 2 > t->cap) {
		t->err = 1;
		return;
	}
	memcpy(t->buf + t->len, key, kl);
	t->buf[t->len + kl] = '=';
	memcpy(t->buf + t->len + kl + 1, val, vl);
	t->buf[t->len + kl + 1 + vl] = '\0';
	t->len += kl + vl + 2;
}

void iscsi_text_addu(iscsi_text *t, const char *key, uint64_t val)
{
	char v[24];
	snprintf(v, sizeof(v), "%llu", (unsigned long long)val);
	iscsi_text_add(t, key, v);
}

const char *iscsi_kv_get(const iscsi_kv *kv, int n, const char *key)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(kv[i].key, key))
			return kv[i].val;
	return NULL;
}

int iscsi_name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n < 5 || n > ISCSI_NAME_MAX)
		return 0;
	if (strncmp(s, "iqn.", 4) && strncmp(s, "eui.", 4) && strncmp(s, "naa.", 4))
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		/* after stringprep names are lower case; ':' '.' '-' separate */
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ||
		      c == ':' || (c >= 'A' && c <= 'Z' && s[0] != 'i') || c >= 0x80))
			return 0;
	}
	return 1;
}

/* ---- values ---- */

/* A number: decimal or 0x hex (§5.1 "numerical values"), at most max. */
static int parse_num(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
	uint64_t v = 0;
	int base = 10;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	if (!*s)
		return -EPROTO;
	for (; *s; s++) {
		int d;
		if (*s >= '0' && *s <= '9')
			d = *s - '0';
		else if (base == 16 && (*s | 0x20) >= 'a' && (*s | 0x20) <= 'f')
			d = (*s | 0x20) - 'a' + 10;
		else
			return -EPROTO;
		if (v > (UINT64_MAX - (uint64_t)d) / (uint64_t)base)
			return -ERANGE;
		v = v * (uint64_t)base + (uint64_t)d;
	}
	if (v < lo || v > hi)
		return -ERANGE;
	*out = v;
	return 0;
}

static int parse_bool(const char *s, int *out)
{
	if (!strcmp(s, "Yes"))
		*out = 1;
	else if (!strcmp(s, "No"))
		*out = 0;
	else
		return -EPROTO;
	return 0;
}

/* Is word one of the comma-separated items of list (exactly)? */
static int list_has(const char *list, const char *word)
{
	size_t wl = strlen(word);
	for (const char *p = list; *p;) {
		const char *c = strchr(p, ',');
		size_t l = c ? (size_t)(c - p) : strlen(p);
		if (l == wl && !memcmp(p, word, wl))
			return 1;
		if (!c)
			break;
		p = c + 1;
	}
	return 0;
}

static int b64v(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	return c == '+' ? 62 : c == '/' ? 63 : -1;
}

int iscsi_bin_decode(const char *s, uint8_t *out, size_t cap)
{
	size_t n = 0;
	if (s[0] != '0' || !s[1])
		return -EPROTO;
	if (s[1] == 'x' || s[1] == 'X') {
		const char *h = s + 2;
		size_t hl = strlen(h);
		if (hl == 0)
			return -EPROTO;
		/* an odd count: the first digit stands alone (a leading zero omitted) */
		for (size_t i = 0; i < hl;) {
			int v = 0;
			for (int k = (i == 0 && hl % 2) ? 1 : 2; k > 0; k--, i++) {
				char c = (char)(h[i] | 0x20);
				int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
				if (d < 0)
					return -EPROTO;
				v = v << 4 | d;
			}
			if (n >= cap)
				return -EMSGSIZE;
			out[n++] = (uint8_t)v;
		}
		return (int)n;
	}
	if (s[1] == 'b' || s[1] == 'B') {
		const char *b = s + 2;
		size_t bl = strlen(b);
		if (bl == 0 || bl % 4)
			return -EPROTO;
		for (size_t i = 0; i < bl; i += 4) {
			int v[4], pad = 0;
			for (int k = 0; k < 4; k++) {
				if (b[i + k] == '=' && i + 4 == bl && k >= 2) {
					v[k] = 0;
					pad++;
					continue;
				}
				if (pad || (v[k] = b64v(b[i + k])) < 0)
					return -EPROTO;
			}
			uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 |
			             (uint32_t)v[3];
			for (int k = 0; k < 3 - pad; k++) {
				if (n >= cap)
					return -EMSGSIZE;
				out[n++] = (uint8_t)(w >> (16 - 8 * k));
			}
		}
		return (int)n;
	}
	return -EPROTO;
}

static void hex_of(const uint8_t *b, size_t n, char *out)
{
	static const char hx[] = "0123456789abcdef";
	out[0] = '0';
	out[1] = 'x';
	for (size_t i = 0; i < n; i++) {
		out[2 + 2 * i] = hx[b[i] >> 4];
		out[3 + 2 * i] = hx[b[i] & 15];
	}
	out[2 + 2 * n] = '\0';
}

void iscsi_chap_md5(uint8_t id, const void *secret, size_t slen, const uint8_t *chal,
                    size_t clen, uint8_t out[16])
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	unsigned int ol = 16;
	if (!c || EVP_DigestInit_ex(c, EVP_md5(), NULL) != 1 ||
	    EVP_DigestUpdate(c, &id, 1) != 1 || EVP_DigestUpdate(c, secret, slen) != 1 ||
	    EVP_DigestUpdate(c, chal, clen) != 1 || EVP_DigestFinal_ex(c, out, &ol) != 1) {
		/* No MD5 (a FIPS provider): an answer nobody can match, so CHAP fails
		 * closed rather than open. */
		memset(out, 0, 16);
		out[0] = (uint8_t)~id;
	}
	EVP_MD_CTX_free(c);
}

/* ---- negotiation ---- */

enum kkind {
	KK_LEAD,      /* leading keys: names, session type */
	KK_SEC,       /* security keys */
	KK_DIGEST,    /* list of None/CRC32C */
	KK_MIN,       /* numbers: the lower of the two */
	KK_MAX,       /* numbers: the higher */
	KK_AND,       /* booleans */
	KK_OR,
	KK_DECL,      /* declarative numbers (the initiator's MaxRecvDataSegmentLength) */
	KK_IRRELEVANT,/* obsolete keys (markers): answered Irrelevant / No */
};

typedef struct nkey {
	const char *name;
	uint8_t kind;
	uint32_t lo, hi;
} nkey;

static const nkey nkeys[] = {
	{"InitiatorName", KK_LEAD, 0, 0},
	{"TargetName", KK_LEAD, 0, 0},
	{"SessionType", KK_LEAD, 0, 0},
	{"InitiatorAlias", KK_LEAD, 0, 0},
	{"AuthMethod", KK_SEC, 0, 0},
	{"CHAP_A", KK_SEC, 0, 0},
	{"CHAP_N", KK_SEC, 0, 0},
	{"CHAP_R", KK_SEC, 0, 0},
	{"CHAP_I", KK_SEC, 0, 0},
	{"CHAP_C", KK_SEC, 0, 0},
	{"HeaderDigest", KK_DIGEST, 0, 0},
	{"DataDigest", KK_DIGEST, 0, 0},
	{"MaxRecvDataSegmentLength", KK_DECL, ISCSI_DSL_MIN, ISCSI_DSL_MAX},
	{"MaxBurstLength", KK_MIN, 512, ISCSI_DSL_MAX},
	{"FirstBurstLength", KK_MIN, 512, ISCSI_DSL_MAX},
	{"MaxOutstandingR2T", KK_MIN, 1, 65535},
	{"MaxConnections", KK_MIN, 1, 65535},
	{"DefaultTime2Wait", KK_MAX, 0, 3600},
	{"DefaultTime2Retain", KK_MIN, 0, 3600},
	{"ErrorRecoveryLevel", KK_MIN, 0, 2},
	{"ImmediateData", KK_AND, 0, 0},
	{"InitialR2T", KK_OR, 0, 0},
	{"DataPDUInOrder", KK_OR, 0, 0},
	{"DataSequenceInOrder", KK_OR, 0, 0},
	{"OFMarker", KK_IRRELEVANT, 0, 0},
	{"IFMarker", KK_IRRELEVANT, 0, 0},
	{"OFMarkInt", KK_IRRELEVANT, 0, 0},
	{"IFMarkInt", KK_IRRELEVANT, 0, 0},
};

void iscsi_neg_init(iscsi_neg *n, const iscsi_target_cfg *cfg, uint8_t chap_id,
                    const uint8_t challenge[ISCSI_CHAP_CHALLENGE])
{
	memset(n, 0, sizeof(*n));
	n->cfg = cfg;
	n->chap_id = chap_id;
	memcpy(n->chap_c, challenge, ISCSI_CHAP_CHALLENGE);
	iscsi_params *p = &n->p;
	p->max_recv_dsl_init = 8192;
	p->max_recv_dsl_tgt = 8192; /* until declared */
	p->max_burst = 262144;
	p->first_burst = 65536;
	p->immediate_data = 1;
	p->initial_r2t = 1;
	p->data_pdu_in_order = 1;
	p->data_seq_in_order = 1;
	p->max_outstanding_r2t = 1;
	p->max_connections = 1;
	p->time2wait = 2;
	p->time2retain = 20;
	p->erl = 0;
}

static int chap_required(const iscsi_neg *n)
{
	return n->cfg->chap_secret && n->cfg->chap_secret[0];
}

int iscsi_neg_auth_ok(const iscsi_neg *n)
{
	if (chap_required(n))
		return n->auth == 4;
	return n->auth == 0 || n->auth == 1 || n->auth == 4;
}

static int fail(iscsi_neg *n, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int fail(iscsi_neg *n, int status, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(n->why, sizeof(n->why), fmt, ap);
	va_end(ap);
	return status;
}

/* The names: copied once; a different value later is an error. */
static int take_name(iscsi_neg *n, char *dst, const char *key, const char *v)
{
	if (!v[0] || strlen(v) > ISCSI_NAME_MAX)
		return fail(n, ISCSI_LOGIN_INIT_ERR, "%s: empty or over 223 bytes", key);
	if (dst[0] && strcmp(dst, v))
		return fail(n, ISCSI_LOGIN_INIT_ERR, "%s changed during the login", key);
	strcpy(dst, v);
	return 0;
}

static int lead_key(iscsi_neg *n, const char *k, const char *v)
{
	iscsi_params *p = &n->p;
	if (!strcmp(k, "InitiatorName"))
		return take_name(n, p->initiator_name, k, v);
	if (!strcmp(k, "TargetName"))
		return take_name(n, p->target_name, k, v);
	if (!strcmp(k, "InitiatorAlias")) {
		snprintf(p->initiator_alias, sizeof(p->initiator_alias), "%s", v);
		return 0;
	}
	/* SessionType */
	int t = !strcmp(v, "Discovery") ? ISCSI_SESS_DISCOVERY :
	        !strcmp(v, "Normal") ? ISCSI_SESS_NORMAL : 0;
	if (!t)
		return fail(n, ISCSI_LOGIN_NO_TYPE, "SessionType=%s is not a session type", v);
	if (p->session_type && p->session_type != t)
		return fail(n, ISCSI_LOGIN_INIT_ERR, "SessionType changed during the login");
	p->session_type = t;
	return 0;
}

/* AuthMethod, CHAP_*: the CHAP exchange (RFC 7143 §12.1.3). */
static int sec_keys(iscsi_neg *n, const iscsi_kv *kv, int nkv, iscsi_text *out)
{
	const iscsi_target_cfg *c = n->cfg;
	const char *am = iscsi_kv_get(kv, nkv, "AuthMethod");
	const char *ca = iscsi_kv_get(kv, nkv, "CHAP_A");
	const char *cn = iscsi_kv_get(kv, nkv, "CHAP_N");
	const char *cr = iscsi_kv_get(kv, nkv, "CHAP_R");
	const char *ci = iscsi_kv_get(kv, nkv, "CHAP_I");
	const char *cc = iscsi_kv_get(kv, nkv, "CHAP_C");

	if (am) {
		if (n->auth > 1)
			return fail(n, ISCSI_LOGIN_INIT_ERR, "AuthMethod offered again during CHAP");
		/* The first method of the initiator's list that we support. */
		const char *pick = NULL;
		for (const char *p = am; *p && !pick;) {
			const char *cm = strchr(p, ',');
			size_t l = cm ? (size_t)(cm - p) : strlen(p);
			if (l == 4 && !memcmp(p, "CHAP", 4) && chap_required(n))
				pick = "CHAP";
			else if (l == 4 && !memcmp(p, "None", 4) && !chap_required(n))
				pick = "None";
			p = cm ? cm + 1 : p + l;
		}
		if (!pick) {
			iscsi_text_add(out, "AuthMethod", "Reject");
			return fail(n, ISCSI_LOGIN_AUTH_FAIL, "AuthMethod=%.64s: no method we "
			            "accept (CHAP is required exactly when chap_secret is set)", am);
		}
		iscsi_text_add(out, "AuthMethod", pick);
		n->auth = pick[0] == 'C' ? 2 : 1;
	}
	if (ca) {
		if (n->auth != 2)
			return fail(n, ISCSI_LOGIN_INIT_ERR, "CHAP_A out of turn");
		if (!list_has(ca, "5")) {
			iscsi_text_add(out, "CHAP_A", "Reject");
			return fail(n, ISCSI_LOGIN_AUTH_FAIL, "CHAP_A=%.64s: no MD5 (5) offered", ca);
		}
		char hex[2 + 2 * ISCSI_CHAP_CHALLENGE + 1];
		iscsi_text_add(out, "CHAP_A", "5");
		iscsi_text_addu(out, "CHAP_I", n->chap_id);
		hex_of(n->chap_c, ISCSI_CHAP_CHALLENGE, hex);
		iscsi_text_add(out, "CHAP_C", hex);
		n->auth = 3;
	}
	if (cn || cr || ci || cc) {
		if (n->auth != 3 || ca)
			return fail(n, ISCSI_LOGIN_INIT_ERR, "CHAP response out of turn");
		if (!cn || !cr)
			return fail(n, ISCSI_LOGIN_AUTH_FAIL, "CHAP_N or CHAP_R missing");
		uint8_t r[64], want[16];
		int rl = iscsi_bin_decode(cr, r, sizeof(r));
		iscsi_chap_md5(n->chap_id, c->chap_secret, strlen(c->chap_secret), n->chap_c,
		               ISCSI_CHAP_CHALLENGE, want);
		/* Both compared whatever the name, so a wrong name costs the same time. */
		int name_ok = strlen(cn) == strlen(c->chap_user) && !strcmp(cn, c->chap_user);
		int resp_ok = rl == 16 && CRYPTO_memcmp(r, want, 16) == 0;
		if (!name_ok || !resp_ok)
			return fail(n, ISCSI_LOGIN_AUTH_FAIL, "CHAP: %s", !name_ok ?
			            "unknown CHAP_N" : "wrong CHAP_R");
		n->auth = 4;
		if (ci || cc) { /* mutual: the initiator checks us */
			uint8_t ic[1024], ans[16];
			char hex[2 + 32 + 1];
			uint64_t id;
			if (!ci || !cc)
				return fail(n, ISCSI_LOGIN_AUTH_FAIL, "mutual CHAP: CHAP_I or CHAP_C "
				            "missing");
			if (!c->mutual_secret || !c->mutual_secret[0])
				return fail(n, ISCSI_LOGIN_AUTH_FAIL, "mutual CHAP asked, none configured");
			int il = iscsi_bin_decode(cc, ic, sizeof(ic));
			if (parse_num(ci, 0, 255, &id) < 0 || il < 1)
				return fail(n, ISCSI_LOGIN_AUTH_FAIL, "mutual CHAP: bad CHAP_I/CHAP_C");
			/* A challenge equal to ours is a reflection: answering it would hand the
			 * initiator our own expected response (RFC 7143 §12.1.3). */
			if ((size_t)il == ISCSI_CHAP_CHALLENGE && !memcmp(ic, n->chap_c, (size_t)il))
				return fail(n, ISCSI_LOGIN_AUTH_FAIL, "mutual CHAP: our challenge "
				            "reflected back");
			iscsi_chap_md5((uint8_t)id, c->mutual_secret, strlen(c->mutual_secret), ic,
			               (size_t)il, ans);
			iscsi_text_add(out, "CHAP_N", c->mutual_user && c->mutual_user[0] ?
			               c->mutual_user : "bkstor");
			hex_of(ans, 16, hex);
			iscsi_text_add(out, "CHAP_R", hex);
		}
	}
	return 0;
}

/* One operational key (kind k) with value v. */
static void oper_key(iscsi_neg *n, const nkey *k, const char *v, iscsi_text *out, int *st)
{
	const iscsi_target_cfg *c = n->cfg;
	iscsi_params *p = &n->p;
	uint64_t num;
	int b;

	switch (k->kind) {
	case KK_DIGEST: {
		const char *pick = NULL;
		for (const char *s = v; *s && !pick;) {
			const char *cm = strchr(s, ',');
			size_t l = cm ? (size_t)(cm - s) : strlen(s);
			if (l == 6 && !memcmp(s, "CRC32C", 6))
				pick = "CRC32C";
			else if (l == 4 && !memcmp(s, "None", 4))
				pick = "None";
			s = cm ? cm + 1 : s + l;
		}
		if (!pick) {
			iscsi_text_add(out, k->name, "Reject");
			return;
		}
		*(k->name[0] == 'H' ? &p->header_digest : &p->data_digest) = pick[0] == 'C';
		iscsi_text_add(out, k->name, pick);
		return;
	}
	case KK_DECL:
		if (parse_num(v, k->lo, k->hi, &num) < 0) {
			*st = fail(n, ISCSI_LOGIN_INIT_ERR, "MaxRecvDataSegmentLength=%.32s out of "
			           "range", v);
			return;
		}
		p->max_recv_dsl_init = (uint32_t)num;
		if (!n->sent_mrdsl) {
			iscsi_text_addu(out, k->name, c->max_recv_dsl);
			p->max_recv_dsl_tgt = c->max_recv_dsl;
			n->sent_mrdsl = 1;
		}
		return;
	case KK_MIN:
	case KK_MAX: {
		if (parse_num(v, k->lo, k->hi, &num) < 0) {
			iscsi_text_add(out, k->name, "Reject");
			return;
		}
		uint32_t ours, *dst;
		if (!strcmp(k->name, "MaxBurstLength")) {
			ours = c->max_burst;
			dst = &p->max_burst;
		} else if (!strcmp(k->name, "FirstBurstLength")) {
			ours = c->first_burst;
			dst = &p->first_burst;
		} else if (!strcmp(k->name, "MaxOutstandingR2T")) {
			ours = c->max_outstanding_r2t;
			dst = &p->max_outstanding_r2t;
		} else if (!strcmp(k->name, "MaxConnections")) {
			ours = 1;  /* one connection per session (docs/iscsi.md) */
			dst = &p->max_connections;
		} else if (!strcmp(k->name, "DefaultTime2Wait")) {
			ours = 2;
			dst = &p->time2wait;
		} else if (!strcmp(k->name, "DefaultTime2Retain")) {
			ours = 0;  /* no session continuation at ErrorRecoveryLevel 0 */
			dst = &p->time2retain;
		} else {       /* ErrorRecoveryLevel */
			p->erl = 0; /* min(offer, 0): we recover by a new session only */
			iscsi_text_addu(out, k->name, 0);
			return;
		}
		uint32_t r = k->kind == KK_MIN ? (num < ours ? (uint32_t)num : ours) :
		                                 (num > ours ? (uint32_t)num : ours);
		*dst = r;
		iscsi_text_addu(out, k->name, r);
		return;
	}
	case KK_AND:
	case KK_OR: {
		if (parse_bool(v, &b) < 0) {
			iscsi_text_add(out, k->name, "Reject");
			return;
		}
		int r;
		if (!strcmp(k->name, "ImmediateData"))
			r = p->immediate_data = b && c->immediate_data;
		else if (!strcmp(k->name, "InitialR2T"))
			r = p->initial_r2t = b || c->initial_r2t;
		else if (!strcmp(k->name, "DataPDUInOrder"))
			r = p->data_pdu_in_order = 1; /* we take Data-Out in order only */
		else
			r = p->data_seq_in_order = 1;
		iscsi_text_add(out, k->name, r ? "Yes" : "No");
		return;
	}
	default: /* markers: RFC 7143 removed them; "No" turns them off for old peers */
		iscsi_text_add(out, k->name, strstr(k->name, "Int") ? "Irrelevant" : "No");
		return;
	}
}

int iscsi_neg_login(iscsi_neg *n, int csg, const iscsi_kv *kv, int nkv, iscsi_text *out)
{
	int st = ISCSI_LOGIN_OK, has_sec = 0;
	for (int i = 0; i < nkv; i++)
		for (int j = 0; j < i; j++)
			if (!strcmp(kv[i].key, kv[j].key))
				return fail(n, ISCSI_LOGIN_INIT_ERR, "key %.64s sent twice", kv[i].key);
	for (int i = 0; i < nkv && st == ISCSI_LOGIN_OK; i++) {
		const char *k = kv[i].key, *v = kv[i].val;
		const nkey *nk = NULL;
		for (size_t j = 0; j < sizeof(nkeys) / sizeof(nkeys[0]); j++)
			if (!strcmp(nkeys[j].name, k))
				nk = &nkeys[j];
		/* Answers the initiator may send back: nothing to negotiate. */
		if (!strcmp(v, "NotUnderstood") || !strcmp(v, "Irrelevant") || !strcmp(v, "Reject"))
			continue;
		if (!nk) {
			iscsi_text_add(out, k, "NotUnderstood");
			continue;
		}
		switch (nk->kind) {
		case KK_LEAD:
			st = lead_key(n, k, v);
			break;
		case KK_SEC:
			if (csg != ISCSI_SEC)
				st = fail(n, ISCSI_LOGIN_INIT_ERR, "%.64s outside the security stage", k);
			has_sec = 1;
			break;
		default:
			oper_key(n, nk, v, out, &st);
		}
	}
	if (st == ISCSI_LOGIN_OK && has_sec)
		st = sec_keys(n, kv, nkv, out);
	if (st == ISCSI_LOGIN_OK && !n->p.initiator_name[0])
		st = fail(n, ISCSI_LOGIN_MISSING_PARAM, "no InitiatorName");
	if (st == ISCSI_LOGIN_OK && out->err)
		st = fail(n, ISCSI_LOGIN_TARGET_ERR, "the answer did not fit");
	return st;
}

void iscsi_neg_finish(iscsi_neg *n, iscsi_text *out)
{
	iscsi_params *p = &n->p;
	if (!n->sent_mrdsl) {
		iscsi_text_addu(out, "MaxRecvDataSegmentLength", n->cfg->max_recv_dsl);
		p->max_recv_dsl_tgt = n->cfg->max_recv_dsl;
		n->sent_mrdsl = 1;
	}
	if (p->first_burst > p->max_burst)
		p->first_burst = p->max_burst;
}
