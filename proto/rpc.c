/* proto/rpc.c: see rpc.h. */
#include <config.h>

#include "proto/rpc.h"

#include <errno.h>
#include <string.h>

/* AUTH_SYS body (RFC 5531 appendix A): stamp, machinename<255>, uid, gid, gids<16>.
 * The body must be exactly its declared length. */
static int dec_sys(const uint8_t *b, uint32_t len, rpc_cred_sys *s)
{
	xdr_dec d;
	xdr_dec_init(&d, b, len);
	s->stamp = xdr_get_u32(&d);
	xdr_get_string(&d, s->machine, RPC_MACHINE_MAX);
	s->uid = xdr_get_u32(&d);
	s->gid = xdr_get_u32(&d);
	s->ngids = xdr_get_u32(&d);
	if (d.err || s->ngids > RPC_GIDS_MAX)
		return -1;
	for (uint32_t i = 0; i < s->ngids; i++)
		s->gids[i] = xdr_get_u32(&d);
	return d.err || xdr_dec_left(&d) ? -1 : 0;
}

int rpc_call_decode(const uint8_t *rec, size_t len, rpc_call *c)
{
	xdr_dec d;
	uint32_t n;
	memset(c, 0, sizeof(*c));
	xdr_dec_init(&d, rec, len);
	c->xid = xdr_get_u32(&d);
	uint32_t mtype = xdr_get_u32(&d);
	if (d.err || mtype != RPC_CALL)
		return RPC_DEC_DROP;
	uint32_t rpcvers = xdr_get_u32(&d);
	if (d.err)
		return RPC_DEC_DROP;
	if (rpcvers != RPC_VERSION)
		return RPC_DEC_RPC_MISMATCH;
	c->prog = xdr_get_u32(&d);
	c->vers = xdr_get_u32(&d);
	c->proc = xdr_get_u32(&d);
	c->flavor = xdr_get_u32(&d);
	const uint8_t *cred = xdr_get_opaque(&d, RPC_AUTH_MAX, &n);
	if (d.err)
		return RPC_DEC_BADCRED;
	if (c->flavor == RPC_AUTH_SYS) {
		if (dec_sys(cred, n, &c->sys) < 0)
			return RPC_DEC_BADCRED;
	} else if (c->flavor != RPC_AUTH_NONE) {
		return RPC_DEC_BADCRED;
	}
	/* The verifier of AUTH_NONE and AUTH_SYS calls is AUTH_NONE (RFC 5531 §14). */
	uint32_t vflavor = xdr_get_u32(&d);
	xdr_get_opaque(&d, RPC_AUTH_MAX, &n);
	if (d.err || vflavor != RPC_AUTH_NONE)
		return RPC_DEC_BADVERF;
	c->args = d.p;
	c->args_len = xdr_dec_left(&d);
	return RPC_DEC_OK;
}

static void reply_head(xdr_enc *e, uint32_t xid, uint32_t stat)
{
	xdr_put_u32(e, xid);
	xdr_put_u32(e, RPC_REPLY);
	xdr_put_u32(e, stat);
}

void rpc_reply_accepted(xdr_enc *e, uint32_t xid, enum rpc_accept_stat stat)
{
	reply_head(e, xid, RPC_MSG_ACCEPTED);
	xdr_put_u32(e, RPC_AUTH_NONE); /* verifier */
	xdr_put_u32(e, 0);
	xdr_put_u32(e, (uint32_t)stat);
}

void rpc_reply_prog_mismatch(xdr_enc *e, uint32_t xid, uint32_t low, uint32_t high)
{
	rpc_reply_accepted(e, xid, RPC_PROG_MISMATCH);
	xdr_put_u32(e, low);
	xdr_put_u32(e, high);
}

void rpc_reply_rpc_mismatch(xdr_enc *e, uint32_t xid)
{
	reply_head(e, xid, RPC_MSG_DENIED);
	xdr_put_u32(e, RPC_RPC_MISMATCH);
	xdr_put_u32(e, RPC_VERSION);
	xdr_put_u32(e, RPC_VERSION);
}

void rpc_reply_auth_error(xdr_enc *e, uint32_t xid, enum rpc_auth_stat why)
{
	reply_head(e, xid, RPC_MSG_DENIED);
	xdr_put_u32(e, RPC_AUTH_ERROR);
	xdr_put_u32(e, (uint32_t)why);
}

void rpc_call_encode(xdr_enc *e, uint32_t xid, uint32_t prog, uint32_t vers, uint32_t proc,
                     const rpc_cred_sys *sys)
{
	xdr_put_u32(e, xid);
	xdr_put_u32(e, RPC_CALL);
	xdr_put_u32(e, RPC_VERSION);
	xdr_put_u32(e, prog);
	xdr_put_u32(e, vers);
	xdr_put_u32(e, proc);
	if (sys) {
		uint8_t body[RPC_AUTH_MAX];
		xdr_enc b;
		xdr_enc_init(&b, body, sizeof(body));
		xdr_put_u32(&b, sys->stamp);
		xdr_put_string(&b, sys->machine);
		xdr_put_u32(&b, sys->uid);
		xdr_put_u32(&b, sys->gid);
		uint32_t ng = sys->ngids > RPC_GIDS_MAX ? RPC_GIDS_MAX : sys->ngids;
		xdr_put_u32(&b, ng);
		for (uint32_t i = 0; i < ng; i++)
			xdr_put_u32(&b, sys->gids[i]);
		if (b.err)
			e->err = b.err;
		xdr_put_u32(e, RPC_AUTH_SYS);
		xdr_put_opaque(e, body, (uint32_t)b.len);
	} else {
		xdr_put_u32(e, RPC_AUTH_NONE);
		xdr_put_u32(e, 0);
	}
	xdr_put_u32(e, RPC_AUTH_NONE);
	xdr_put_u32(e, 0);
}

int rpc_reply_decode(const uint8_t *rec, size_t len, uint32_t xid, const uint8_t **res,
                     size_t *res_len)
{
	xdr_dec d;
	uint32_t n;
	xdr_dec_init(&d, rec, len);
	uint32_t x = xdr_get_u32(&d), mtype = xdr_get_u32(&d), stat = xdr_get_u32(&d);
	if (d.err || x != xid || mtype != RPC_REPLY ||
	    (stat != RPC_MSG_ACCEPTED && stat != RPC_MSG_DENIED))
		return -EBADMSG;
	if (stat == RPC_MSG_DENIED)
		return -EPROTO;
	xdr_get_u32(&d); /* the verifier's flavor and body */
	xdr_get_opaque(&d, RPC_AUTH_MAX, &n);
	uint32_t acc = xdr_get_u32(&d);
	if (d.err)
		return -EBADMSG;
	if (acc != RPC_SUCCESS)
		return -EPROTO;
	*res = d.p;
	*res_len = xdr_dec_left(&d);
	return 0;
}

/* --- record marking --- */

void rpc_rec_init(rpc_rec *r, size_t max)
{
	memset(r, 0, sizeof(*r));
	r->max = max;
}

void rpc_rec_reset(rpc_rec *r)
{
	size_t max = r->max;
	rpc_rec_init(r, max);
}

int rpc_rec_frag(rpc_rec *r, uint32_t hdr)
{
	uint32_t n = hdr & ~RPC_LAST_FRAG;
	if (r->frag_left || (r->nfrags && r->last))
		return -EINVAL; /* the caller's bug: not at a fragment boundary */
	if (n > r->max || r->have > r->max - n)
		return -EMSGSIZE;
	/* Real clients send a record as one fragment; a flood of tiny ones only costs
	 * us system calls. */
	if (++r->nfrags > RPC_FRAGS_MAX)
		return -EBADMSG;
	r->frag_left = n;
	r->last = !!(hdr & RPC_LAST_FRAG);
	r->have += n;
	return 0;
}

void rpc_rec_take(rpc_rec *r, size_t n)
{
	r->frag_left -= n > r->frag_left ? r->frag_left : (uint32_t)n;
}

int rpc_rec_done(const rpc_rec *r)
{
	return r->nfrags && r->last && r->frag_left == 0;
}

uint32_t rpc_rm_header(uint32_t len)
{
	return RPC_LAST_FRAG | len;
}
