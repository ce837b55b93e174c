/* proto/iscsi.h: iSCSI (RFC 7143) codecs for the target. Pure: no I/O, no threads,
 * no allocation; the daemon (daemon/iscsi*.c) owns the sockets and the sessions.
 *
 * - Basic Header Segments: iscsi_bhs_decode/iscsi_bhs_encode for every opcode of
 *   both directions, into one struct whose fields are named for what they mean
 *   (the same word of the BHS is the TTT of a NOP-Out and the expected length of a
 *   SCSI Command). Decoding is canonical: whatever decodes re-encodes to a header
 *   that decodes to the same struct (fuzz/fuzz-iscsi.c asserts it).
 * - Digests: CRC32C (Castagnoli) through ISA-L's crc32_iscsi, sent least significant
 *   byte first (RFC 7143 §13.1; the test vectors of RFC 3720 B.4 are in
 *   tests/test-iscsi-proto.c).
 * - Text: key=value lists (NUL after each pair) split in place, bounded in pairs, key
 *   length, value length and total size; malformed text is refused, never guessed at.
 * - Login negotiation (iscsi_neg): the leading keys, the security stage (AuthMethod
 *   None or CHAP with MD5, one-way or mutual) and the operational keys of RFC 7143
 *   §13; unknown keys are answered NotUnderstood. The caller supplies the random
 *   challenge, so the module stays deterministic (and fuzzable).
 *
 * Every length here comes from the peer and is checked against a bound before use.
 */
#ifndef BKS_ISCSI_H
#define BKS_ISCSI_H

#include <stddef.h>
#include <stdint.h>

#define ISCSI_BHS_LEN 48
#define ISCSI_DIGEST_LEN 4
#define ISCSI_NAME_MAX 223       /* iSCSI names (RFC 7143 §4.2.7.1) */
#define ISCSI_KEY_MAX 63         /* bytes of a key name (§6.1) */
#define ISCSI_VALUE_MAX 2048     /* bytes of one value's text (CHAP_C/CHAP_R in hex) */
#define ISCSI_TEXT_MAX 16384     /* bytes of text of one login/text request, all
                                  * its continuation PDUs together */
#define ISCSI_KV_MAX 64          /* pairs in one request */
#define ISCSI_CHAP_CHALLENGE 16  /* bytes of the challenge the target sends */
#define ISCSI_CHAP_SECRET_MIN 12 /* bytes: RFC 7143 §12.1.3 asks for 96 bits */
#define ISCSI_CHAP_SECRET_MAX 255
#define ISCSI_DSL_MIN 512        /* MaxRecvDataSegmentLength bounds (§13.12) */
#define ISCSI_DSL_MAX 16777215u

/* Opcodes (byte 0, low 6 bits). */
enum iscsi_op {
	ISCSI_OP_NOP_OUT = 0x00, ISCSI_OP_SCSI_CMD = 0x01, ISCSI_OP_TMF_REQ = 0x02,
	ISCSI_OP_LOGIN_REQ = 0x03, ISCSI_OP_TEXT_REQ = 0x04, ISCSI_OP_DATA_OUT = 0x05,
	ISCSI_OP_LOGOUT_REQ = 0x06, ISCSI_OP_SNACK = 0x10,
	ISCSI_OP_NOP_IN = 0x20, ISCSI_OP_SCSI_RSP = 0x21, ISCSI_OP_TMF_RSP = 0x22,
	ISCSI_OP_LOGIN_RSP = 0x23, ISCSI_OP_TEXT_RSP = 0x24, ISCSI_OP_DATA_IN = 0x25,
	ISCSI_OP_LOGOUT_RSP = 0x26, ISCSI_OP_R2T = 0x31, ISCSI_OP_ASYNC = 0x32,
	ISCSI_OP_REJECT = 0x3f,
};

/* Byte 1 flags. */
#define ISCSI_F 0x80             /* final */
#define ISCSI_CMD_R 0x40         /* SCSI Command: read */
#define ISCSI_CMD_W 0x20         /* SCSI Command: write */
#define ISCSI_CMD_ATTR 0x07      /* task attribute */
#define ISCSI_LOGIN_T 0x80       /* Login: transit */
#define ISCSI_LOGIN_C 0x40       /* Login/Text: continue */
#define ISCSI_DIN_A 0x40         /* Data-In: acknowledge */
#define ISCSI_RSP_o 0x10         /* bidi read residual overflow */
#define ISCSI_RSP_u 0x08         /* bidi read residual underflow */
#define ISCSI_RSP_O 0x04         /* residual overflow */
#define ISCSI_RSP_U 0x02         /* residual underflow */
#define ISCSI_DIN_S 0x01         /* Data-In carries status */

/* Login stages (CSG/NSG). */
enum { ISCSI_SEC = 0, ISCSI_OPER = 1, ISCSI_FFP = 3 };

/* Login status (class << 8 | detail), RFC 7143 §11.13.5. */
enum {
	ISCSI_LOGIN_OK = 0x0000,
	ISCSI_LOGIN_INIT_ERR = 0x0200, ISCSI_LOGIN_AUTH_FAIL = 0x0201,
	ISCSI_LOGIN_FORBIDDEN = 0x0202, ISCSI_LOGIN_NOT_FOUND = 0x0203,
	ISCSI_LOGIN_REMOVED = 0x0204, ISCSI_LOGIN_BAD_VERSION = 0x0205,
	ISCSI_LOGIN_TOO_MANY_CONNS = 0x0206, ISCSI_LOGIN_MISSING_PARAM = 0x0207,
	ISCSI_LOGIN_NO_SESSION_SPAN = 0x0208, ISCSI_LOGIN_NO_TYPE = 0x0209,
	ISCSI_LOGIN_NO_SESSION = 0x020a, ISCSI_LOGIN_INVALID_REQ = 0x020b,
	ISCSI_LOGIN_TARGET_ERR = 0x0300, ISCSI_LOGIN_UNAVAILABLE = 0x0301,
	ISCSI_LOGIN_NO_RESOURCES = 0x0302,
};

/* Task management functions and responses (§11.5, §11.6). */
enum {
	ISCSI_TMF_ABORT_TASK = 1, ISCSI_TMF_ABORT_TASK_SET = 2, ISCSI_TMF_CLEAR_ACA = 3,
	ISCSI_TMF_CLEAR_TASK_SET = 4, ISCSI_TMF_LUN_RESET = 5, ISCSI_TMF_WARM_RESET = 6,
	ISCSI_TMF_COLD_RESET = 7, ISCSI_TMF_TASK_REASSIGN = 8,
};
enum {
	ISCSI_TMF_COMPLETE = 0, ISCSI_TMF_NO_TASK = 1, ISCSI_TMF_NO_LUN = 2,
	ISCSI_TMF_STILL_ALLEGIANT = 3, ISCSI_TMF_NO_REASSIGN = 4,
	ISCSI_TMF_NOT_SUPPORTED = 5, ISCSI_TMF_NOT_AUTHORIZED = 6, ISCSI_TMF_REJECTED = 255,
};

/* Reject reasons (§11.17.1). */
enum {
	ISCSI_REJ_DIGEST = 0x02, ISCSI_REJ_SNACK = 0x03, ISCSI_REJ_PROTOCOL = 0x04,
	ISCSI_REJ_NOT_SUPPORTED = 0x05, ISCSI_REJ_IMMEDIATE = 0x06, ISCSI_REJ_TASK_IN_PROGRESS = 0x07,
	ISCSI_REJ_INVALID_DATA_ACK = 0x08, ISCSI_REJ_INVALID_FIELD = 0x09,
	ISCSI_REJ_OUT_OF_RESOURCES = 0x0a, ISCSI_REJ_WAITING_LOGOUT = 0x0c,
};

/* SCSI Response "response" (byte 2). */
enum { ISCSI_RSP_COMPLETED = 0x00, ISCSI_RSP_TARGET_FAILURE = 0x01 };
/* Logout reasons and responses. */
enum { ISCSI_LOGOUT_SESSION = 0, ISCSI_LOGOUT_CONN = 1, ISCSI_LOGOUT_RECOVERY = 2 };
enum { ISCSI_LOGOUT_OK = 0, ISCSI_LOGOUT_NO_CID = 1 };
/* Async events. */
enum { ISCSI_ASYNC_SCSI = 0, ISCSI_ASYNC_LOGOUT_REQ = 1, ISCSI_ASYNC_DROP_CONN = 2,
       ISCSI_ASYNC_DROP_ALL = 3, ISCSI_ASYNC_RENEGOTIATE = 4 };

#define ISCSI_RSVD_TAG 0xffffffffu

/* One Basic Header Segment, decoded. Which fields an opcode uses is in iscsi.c's
 * layout table; the rest stay zero. */
typedef struct iscsi_pdu {
	uint8_t op;              /* enum iscsi_op */
	uint8_t immediate;       /* I bit (requests) */
	uint8_t flags;           /* byte 1 whole (F, R/W/ATTR, T/C/CSG/NSG, A/O/U/S);
	                          * for TMF/Logout/SNACK the function/reason/type is
	                          * flags & 0x7f */
	uint8_t response;        /* byte 2: SCSI/TMF/Logout response, Reject reason,
	                          * Login Version-max */
	uint8_t status;          /* byte 3: SCSI status, Login Version-min/active */
	uint16_t ahs_len;        /* TotalAHSLength in bytes (a multiple of 4) */
	uint32_t dlen;           /* DataSegmentLength (without padding) */
	uint64_t lun;            /* bytes 8..15 (LUN field) */
	uint8_t isid[6];         /* Login: bytes 8..13 */
	uint16_t tsih;           /* Login: bytes 14..15 */
	uint32_t itt;            /* Initiator Task Tag (0xffffffff where reserved) */
	uint32_t ttt;            /* Target Transfer Tag (NOP, Text, Data, R2T, SNACK) */
	uint32_t edtl;           /* SCSI Command: Expected Data Transfer Length */
	uint32_t rtt;            /* TMF: Referenced Task Tag */
	uint16_t cid;            /* Login, Logout request: CID */
	uint32_t cmdsn;          /* requests */
	uint32_t expstatsn;      /* requests */
	uint32_t statsn;         /* responses */
	uint32_t expcmdsn;       /* responses */
	uint32_t maxcmdsn;       /* responses */
	uint32_t refcmdsn;       /* TMF request */
	uint32_t expdatasn;      /* TMF request, SCSI Response */
	uint32_t datasn;         /* Data-In/Out: DataSN; R2T: R2TSN; Reject: DataSN/R2TSN */
	uint32_t buf_off;        /* Data-In/Out, R2T: Buffer Offset */
	uint32_t residual;       /* SCSI Response, Data-In: Residual Count */
	uint32_t bidi_residual;  /* SCSI Response */
	uint32_t desired_len;    /* R2T: Desired Data Transfer Length */
	uint32_t snack_tag;      /* SCSI Response */
	uint32_t begrun, runlen; /* SNACK */
	uint8_t status_class, status_detail; /* Login Response */
	uint16_t time2wait, time2retain;     /* Logout Response */
	uint8_t async_event, async_vcode;    /* Async Message */
	uint16_t param[3];                   /* Async Message Parameter1..3 */
	uint8_t cdb[16];         /* SCSI Command */
} iscsi_pdu;

/* Decode the 48 bytes at b. 0, or -EPROTO (an opcode RFC 7143 does not define; the
 * caller answers with a Reject), -EINVAL (a field out of its range: AHS length not a
 * multiple of 4 is impossible by construction, but Login stages 2 and NSG<CSG are). */
int iscsi_bhs_decode(const uint8_t b[ISCSI_BHS_LEN], iscsi_pdu *p);
/* Encode p (op must be one iscsi_bhs_decode accepts). */
void iscsi_bhs_encode(const iscsi_pdu *p, uint8_t b[ISCSI_BHS_LEN]);
/* Bytes of padding after a data segment of len bytes (to a multiple of 4). */
static inline uint32_t iscsi_pad(uint32_t len) { return (4 - (len & 3)) & 3; }

/* CRC32C as iSCSI digests use it (initial ~0, final xor ~0); crc_put writes it in
 * wire order. iscsi_crc32c_update continues a running value (start with ~0u, finish
 * with ~crc). */
uint32_t iscsi_crc32c(const void *p, size_t len);
uint32_t iscsi_crc32c_update(uint32_t crc, const void *p, size_t len);
void iscsi_crc_put(uint8_t out[4], uint32_t crc);
uint32_t iscsi_crc_get(const uint8_t in[4]);

/* ---- text ---- */

typedef struct iscsi_kv {
	const char *key;         /* NUL-terminated, inside the parsed buffer */
	const char *val;
} iscsi_kv;

/* Split len bytes of text (modified in place: each '=' becomes a NUL) into at most
 * max pairs. Every pair must end with a NUL; empty items (padding) are skipped.
 * Returns the number of pairs, or -EPROTO (no '=', empty or over-long key, a key
 * character RFC 7143 §6.1 does not allow, a control character in a value, text not
 * ending with a NUL), -E2BIG (more than max pairs), -EMSGSIZE (a value over
 * ISCSI_VALUE_MAX, or len over ISCSI_TEXT_MAX). */
int iscsi_text_parse(char *buf, size_t len, iscsi_kv *kv, int max);

/* An output text buffer: append pairs; once one did not fit, err stays set. */
typedef struct iscsi_text {
	char *buf;
	size_t cap, len;
	int err;
} iscsi_text;
void iscsi_text_init(iscsi_text *t, char *buf, size_t cap);
void iscsi_text_add(iscsi_text *t, const char *key, const char *val);
void iscsi_text_addu(iscsi_text *t, const char *key, uint64_t val);
/* The value of key in kv (NULL if absent). */
const char *iscsi_kv_get(const iscsi_kv *kv, int n, const char *key);
/* Is s a well-formed iSCSI name ("iqn." / "eui." / "naa." form, §4.2.7)? 1 or 0. */
int iscsi_name_ok(const char *s);

/* ---- negotiation ---- */

/* What the target offers and requires (from the [iscsi] config). Strings are
 * borrowed for the life of the negotiation. */
typedef struct iscsi_target_cfg {
	uint32_t max_recv_dsl;     /* our MaxRecvDataSegmentLength (declared) */
	uint32_t max_burst;        /* the most we accept for MaxBurstLength */
	uint32_t first_burst;      /* ... FirstBurstLength */
	int immediate_data;        /* 1: ImmediateData=Yes allowed */
	int initial_r2t;           /* 1: InitialR2T=Yes required */
	uint32_t max_outstanding_r2t;
	const char *chap_user, *chap_secret;     /* NULL or "": no CHAP required */
	const char *mutual_user, *mutual_secret; /* NULL or "": no mutual CHAP */
	const char *target_alias;  /* NULL: none */
} iscsi_target_cfg;

/* The negotiated session and connection parameters (defaults: RFC 7143 §13). */
typedef struct iscsi_params {
	int header_digest, data_digest;   /* 1: CRC32C */
	uint32_t max_recv_dsl_init;       /* the initiator's MaxRecvDataSegmentLength: the
	                                   * largest data segment we may send it */
	uint32_t max_recv_dsl_tgt;        /* ours */
	uint32_t max_burst, first_burst;
	int immediate_data, initial_r2t;
	int data_pdu_in_order, data_seq_in_order;
	uint32_t max_outstanding_r2t, max_connections;
	uint32_t time2wait, time2retain;
	int erl;
	int session_type;                 /* 0: not said, 1: Discovery, 2: Normal */
	char initiator_name[ISCSI_NAME_MAX + 1];
	char target_name[ISCSI_NAME_MAX + 1];
	char initiator_alias[256];
} iscsi_params;

enum { ISCSI_SESS_NONE = 0, ISCSI_SESS_DISCOVERY = 1, ISCSI_SESS_NORMAL = 2 };

/* The state of one login. */
typedef struct iscsi_neg {
	const iscsi_target_cfg *cfg;
	iscsi_params p;
	int auth;                  /* 0: no AuthMethod yet, 1: None, 2: CHAP chosen,
	                            * 3: challenge sent, 4: CHAP done */
	uint8_t chap_id;
	uint8_t chap_c[ISCSI_CHAP_CHALLENGE];
	int auth_done;             /* the security stage succeeded (or was not needed) */
	int sent_mrdsl;            /* our MaxRecvDataSegmentLength was declared */
	uint32_t offered;          /* bit per operational key the initiator sent */
	char why[160];             /* a failure's reason, for the log (never a secret) */
} iscsi_neg;

/* Start a login. chap_id and challenge: random, from the caller. */
void iscsi_neg_init(iscsi_neg *n, const iscsi_target_cfg *cfg, uint8_t chap_id,
                    const uint8_t challenge[ISCSI_CHAP_CHALLENGE]);
/* Take the pairs of one Login Request in stage csg and append the answers to out.
 * Returns ISCSI_LOGIN_OK or the login status to fail with (n->why says why): a
 * security key in the operational stage, CHAP that does not verify, a reflected
 * challenge, a key offered twice, a missing InitiatorName, a value out of range
 * for a key that cannot be rejected. Keys the module does not know are answered
 * NotUnderstood; a bad value of a negotiable key is answered Reject. */
int iscsi_neg_login(iscsi_neg *n, int csg, const iscsi_kv *kv, int nkv, iscsi_text *out);
/* May the login leave the security stage now? 1 when AuthMethod None was agreed
 * (and no CHAP is required) or CHAP completed. */
int iscsi_neg_auth_ok(const iscsi_neg *n);
/* Before the transit to full feature phase: append the declarations the target
 * still owes (its MaxRecvDataSegmentLength) and settle the dependent values
 * (FirstBurstLength <= MaxBurstLength). */
void iscsi_neg_finish(iscsi_neg *n, iscsi_text *out);

/* CHAP (RFC 1994): MD5(id || secret || challenge). */
void iscsi_chap_md5(uint8_t id, const void *secret, size_t slen, const uint8_t *chal,
                    size_t clen, uint8_t out[16]);
/* A CHAP binary value: "0x" hex or "0b" base64 (§6.1). Bytes decoded, or -EPROTO;
 * -EMSGSIZE over cap. */
int iscsi_bin_decode(const char *s, uint8_t *out, size_t cap);

#endif /* BKS_ISCSI_H */
