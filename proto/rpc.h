/* proto/rpc.h: ONC RPC v2 (RFC 5531) over TCP: record marking, call headers,
 * AUTH_NONE / AUTH_SYS credentials, reply headers. Pure: no I/O.
 *
 * Record marking (RFC 5531 §11): a record is one or more fragments, each behind a
 * 4-byte header (top bit: last fragment; 31 bits: length). The reader (rpc_rec) keeps
 * the total of a record under the server's limit before it buffers anything, so a
 * peer cannot make it hold more than one maximal request per connection.
 */
#ifndef BKS_RPC_H
#define BKS_RPC_H

#include <stddef.h>
#include <stdint.h>

#include "proto/xdr.h"

#define RPC_VERSION 2
enum { RPC_CALL = 0, RPC_REPLY = 1 };
enum { RPC_MSG_ACCEPTED = 0, RPC_MSG_DENIED = 1 };
enum rpc_accept_stat {
	RPC_SUCCESS = 0, RPC_PROG_UNAVAIL = 1, RPC_PROG_MISMATCH = 2, RPC_PROC_UNAVAIL = 3,
	RPC_GARBAGE_ARGS = 4, RPC_SYSTEM_ERR = 5
};
enum { RPC_RPC_MISMATCH = 0, RPC_AUTH_ERROR = 1 };
enum rpc_auth_stat {
	RPC_AUTH_OK = 0, RPC_AUTH_BADCRED = 1, RPC_AUTH_REJECTEDCRED = 2,
	RPC_AUTH_BADVERF = 3, RPC_AUTH_REJECTEDVERF = 4, RPC_AUTH_TOOWEAK = 5
};
enum { RPC_AUTH_NONE = 0, RPC_AUTH_SYS = 1 };

#define RPC_AUTH_MAX 400          /* credential and verifier bodies (RFC 5531) */
#define RPC_MACHINE_MAX 255
#define RPC_GIDS_MAX 16

typedef struct rpc_cred_sys {
	uint32_t stamp;
	char machine[RPC_MACHINE_MAX + 1];
	uint32_t uid, gid;
	uint32_t ngids;
	uint32_t gids[RPC_GIDS_MAX];
} rpc_cred_sys;

typedef struct rpc_call {
	uint32_t xid;
	uint32_t prog, vers, proc;
	uint32_t flavor;             /* RPC_AUTH_NONE or RPC_AUTH_SYS */
	rpc_cred_sys sys;            /* when flavor is RPC_AUTH_SYS */
	const uint8_t *args;         /* the procedure's arguments (into the record) */
	size_t args_len;
} rpc_call;

/* Outcome of decoding a call, and what the server answers. */
enum rpc_dec_result {
	RPC_DEC_OK = 0,
	RPC_DEC_DROP = -1,           /* not a call (or too short for an xid): close */
	RPC_DEC_RPC_MISMATCH = -2,   /* rpcvers != 2: reply MSG_DENIED RPC_MISMATCH */
	RPC_DEC_BADCRED = -3,        /* malformed or unknown credential: AUTH_ERROR */
	RPC_DEC_BADVERF = -4,
};
/* Decode a whole record as a call. c->xid is valid for every result but DROP. */
int rpc_call_decode(const uint8_t *rec, size_t len, rpc_call *c);

/* Reply headers: the caller appends the results after an RPC_SUCCESS header. */
void rpc_reply_accepted(xdr_enc *e, uint32_t xid, enum rpc_accept_stat stat);
/* PROG_MISMATCH with the range of versions served. */
void rpc_reply_prog_mismatch(xdr_enc *e, uint32_t xid, uint32_t low, uint32_t high);
void rpc_reply_rpc_mismatch(xdr_enc *e, uint32_t xid);
void rpc_reply_auth_error(xdr_enc *e, uint32_t xid, enum rpc_auth_stat why);

/* Building a call (tests, the portmapper registration client). */
void rpc_call_encode(xdr_enc *e, uint32_t xid, uint32_t prog, uint32_t vers, uint32_t proc,
                     const rpc_cred_sys *sys /* NULL: AUTH_NONE */);

/* A reply to our call xid (the portmapper registration client): 0 and the results
 * (into rec) when it is accepted with SUCCESS; -EBADMSG when it is not a reply to
 * xid or does not decode, -EPROTO when it is denied or its accept status is not
 * SUCCESS. */
int rpc_reply_decode(const uint8_t *rec, size_t len, uint32_t xid, const uint8_t **res,
                     size_t *res_len);

/* --- record marking --- */
#define RPC_LAST_FRAG 0x80000000u

typedef struct rpc_rec {
	size_t max;                  /* largest record accepted */
	size_t have;                 /* bytes of the record so far */
	uint32_t frag_left;          /* bytes of the current fragment still to come */
	uint32_t nfrags;             /* fragment headers read for this record */
	int last;                    /* the current fragment is the record's last */
} rpc_rec;
#define RPC_FRAGS_MAX 1024

void rpc_rec_init(rpc_rec *r, size_t max);
/* A fragment header arrived: 0, or -EMSGSIZE when the record would exceed max (the
 * connection must be closed: nothing of it is buffered), -EBADMSG after
 * RPC_FRAGS_MAX fragments in one record. */
int rpc_rec_frag(rpc_rec *r, uint32_t hdr);
/* Fragment bytes consumed: how many are still expected in this fragment. */
void rpc_rec_take(rpc_rec *r, size_t n);
/* A whole record is in (after its last fragment's bytes). */
int rpc_rec_done(const rpc_rec *r);
/* Prepare for the next record. */
void rpc_rec_reset(rpc_rec *r);

/* The record-marking header of a reply of len bytes sent as one fragment. */
uint32_t rpc_rm_header(uint32_t len);

#endif /* BKS_RPC_H */
