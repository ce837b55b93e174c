/* daemon/iscsi_ffp.c: the full feature phase of a connection (see iscsi.h). */
#include <config.h>

#include "daemon/iscsi_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "daemon/log.h"

/* Serial number arithmetic (RFC 1982) on 32 bits, as CmdSN comparisons need. */
static int sn_lt(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b) < 0;
}

static uint32_t maxcmdsn(const iscsi_conn *c)
{
	return c->expcmdsn + c->srv->queue_depth - 1;
}

static uint32_t new_ttt(iscsi_conn *c)
{
	if (c->next_ttt == ISCSI_RSVD_TAG)
		c->next_ttt = 1;
	return c->next_ttt++;
}

/* Fixed-format sense data (SPC-4 §4.5.3). */
static uint32_t sense(uint8_t *s, uint8_t key, uint8_t asc, uint8_t ascq)
{
	memset(s, 0, 18);
	s[0] = 0x70;
	s[2] = key;
	s[7] = 10;
	s[12] = asc;
	s[13] = ascq;
	return 18;
}

/* SCSI Response with status (and sense), residuals from flags/residual. */
static int send_response(iscsi_conn *c, uint32_t itt, uint8_t status, const uint8_t *sn,
                         uint32_t sense_len, uint8_t rflags, uint32_t residual,
                         uint32_t expdatasn)
{
	uint8_t seg[2 + SBC_SENSE_MAX];
	iscsi_pdu h = {.op = ISCSI_OP_SCSI_RSP, .flags = (uint8_t)(ISCSI_F | rflags),
	               .response = ISCSI_RSP_COMPLETED, .status = status, .itt = itt,
	               .residual = residual, .expdatasn = expdatasn};
	uint32_t dl = 0;
	if (sense_len) {
		sense_len = BKS_MIN(sense_len, (uint32_t)SBC_SENSE_MAX);
		seg[0] = (uint8_t)(sense_len >> 8);
		seg[1] = (uint8_t)sense_len;
		memcpy(seg + 2, sn, sense_len);
		dl = sense_len + 2;
	}
	iscsi_sn(c, &h, 1);
	return iscsi_send(c, &h, seg, dl);
}

static int check_condition(iscsi_conn *c, uint32_t itt, uint8_t key, uint8_t asc,
                           uint8_t ascq, uint32_t edtl)
{
	uint8_t s[18];
	uint32_t n = sense(s, key, asc, ascq);
	return send_response(c, itt, SBC_CHECK_CONDITION, s, n, edtl ? ISCSI_RSP_U : 0, edtl, 0);
}

/* The LUN number of a LUN field (SAM-5 single level: peripheral or flat). */
static uint64_t lun_number(uint64_t f)
{
	return (f >> 48) & 0x3fff;
}

/* ---- tasks ---- */

static void task_free(iscsi_conn *c, iscsi_task *t)
{
	for (iscsi_task **pp = &c->tasks; *pp; pp = &(*pp)->next)
		if (*pp == t) {
			*pp = t->next;
			break;
		}
	c->buffered -= t->need;
	free(t->buf);
	free(t);
}

static iscsi_task *task_find(iscsi_conn *c, uint32_t itt)
{
	for (iscsi_task *t = c->tasks; t; t = t->next)
		if (t->itt == itt)
			return t;
	return NULL;
}

/* Run a command with its data-out, send Data-In and status. */
static int execute(iscsi_conn *c, uint32_t itt, uint32_t edtl, int rflag, const uint8_t *cdb,
                   size_t cdb_len, uint64_t lunf, const uint8_t *dout, uint32_t dout_len,
                   uint32_t xfer, int dir, uint32_t r2ts)
{
	sbc_dev *d = c->dev->d;
	/* Room for what the CDB transfers even when the initiator expects less, so the
	 * device produces the whole answer and the residual says what was cut. */
	uint32_t cap = 0;
	if (rflag || dir == SBC_DIR_READ)
		cap = BKS_MIN(BKS_MAX(edtl, dir == SBC_DIR_READ ? xfer : 0), SBC_MAX_XFER);
	if (cap > c->din_cap) {
		uint8_t *nb = realloc(c->din, cap);
		if (!nb)
			return check_condition(c, itt, 0x0b, 0x55, 0x03, edtl); /* resources */
		c->din = nb;
		c->din_cap = cap;
	}
	sbc_cmd cmd = {.cdb = cdb, .cdb_len = cdb_len, .lun = lun_number(lunf), .nx = &c->nx,
	               .dout = dout, .dout_len = dout_len, .din = c->din, .din_cap = cap};
	sbc_exec(d, &cmd);
	__atomic_add_fetch(&c->commands, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&c->bytes_written, dout_len, __ATOMIC_RELAXED);

	/* Residuals (§11.4.5): overflow when the command had more to move than the
	 * initiator expected, underflow when it moved less. */
	uint32_t sent = 0, resid = 0;
	uint8_t rf = 0;
	if (rflag) {
		uint32_t produced = BKS_MIN(cmd.din_len, cap);
		uint32_t want = dir == SBC_DIR_READ ? xfer : produced;
		sent = BKS_MIN(produced, edtl);
		if (want > edtl) {
			rf = ISCSI_RSP_O;
			resid = want - edtl;
		} else if (sent < edtl) {
			rf = ISCSI_RSP_U;
			resid = edtl - sent;
		}
	} else if (dir == SBC_DIR_WRITE || edtl) {
		uint32_t want = dir == SBC_DIR_WRITE ? xfer : 0;
		if (want > edtl) {
			rf = ISCSI_RSP_O;
			resid = want - edtl;
		} else if (want < edtl) {
			rf = ISCSI_RSP_U;
			resid = edtl - want;
		}
	}
	if (cmd.status != SBC_GOOD)
		sent = 0;
	/* Data-In: PDUs of at most the initiator's MaxRecvDataSegmentLength, sequences
	 * of at most MaxBurstLength (F ends each); the status rides on the last PDU (S)
	 * when it is GOOD (no sense to carry). */
	uint32_t datasn = 0, mrdsl = c->p.max_recv_dsl_init, burst = c->p.max_burst;
	for (uint32_t off = 0; off < sent;) {
		uint32_t n = BKS_MIN(mrdsl, sent - off);
		uint32_t in_burst = off % burst;
		n = BKS_MIN(n, burst - in_burst);
		int last = off + n == sent;
		iscsi_pdu h = {.op = ISCSI_OP_DATA_IN, .lun = lunf, .itt = itt, .ttt = ISCSI_RSVD_TAG,
		               .datasn = datasn++, .buf_off = off};
		if (last || in_burst + n == burst)
			h.flags |= ISCSI_F;
		if (last) {
			h.flags |= (uint8_t)(ISCSI_DIN_S | rf);
			h.status = cmd.status;
			h.residual = resid;
		}
		iscsi_sn(c, &h, last);
		int r = iscsi_send(c, &h, c->din + off, n);
		if (r < 0)
			return r;
		off += n;
	}
	__atomic_add_fetch(&c->bytes_read, sent, __ATOMIC_RELAXED);
	if (sent)
		return 0;
	return send_response(c, itt, cmd.status, cmd.sense, cmd.status == SBC_CHECK_CONDITION ?
	                     cmd.sense_len : 0, rf, resid, rflag ? datasn : r2ts);
}

static int task_execute(iscsi_conn *c, iscsi_task *t)
{
	int r = execute(c, t->itt, t->edtl, 0, t->cdb, t->cdb_len, t->lun, t->buf,
	                BKS_MIN(t->got, t->need), t->xfer, SBC_DIR_WRITE, t->pdus_sent);
	task_free(c, t);
	return r;
}

/* Move a task on: wait for unsolicited data, solicit the next burst, or run it. */
static int task_advance(iscsi_conn *c, iscsi_task *t)
{
	if (t->unsol || t->r2t)
		return 0;
	if (t->got >= t->need)
		return task_execute(c, t);
	uint32_t len = BKS_MIN(c->p.max_burst, t->need - t->got);
	iscsi_pdu h = {.op = ISCSI_OP_R2T, .flags = ISCSI_F, .lun = t->lun, .itt = t->itt,
	               .ttt = new_ttt(c), .datasn = t->r2tsn++, .buf_off = t->got,
	               .desired_len = len};
	iscsi_sn(c, &h, 0);
	t->r2t = 1;
	t->ttt = h.ttt;
	t->r2t_end = t->got + len;
	t->seq_datasn = 0;
	t->pdus_sent++;
	return iscsi_send(c, &h, NULL, 0);
}

/* Data for a task at offset off (in order): what lies within need is kept. */
static void task_take(iscsi_task *t, const uint8_t *p, uint32_t n)
{
	if (t->got < t->need)
		memcpy(t->buf + t->got, p, BKS_MIN(n, t->need - t->got));
	t->got += n;
}

/* A SCSI Command PDU (in CmdSN order). */
static int scsi_cmd(iscsi_conn *c, iscsi_rx *q)
{
	const iscsi_pdu *h = &q->h;
	if (c->discovery) /* §4.3: discovery sessions carry Text and Logout only */
		return iscsi_reject(c, q, ISCSI_REJ_PROTOCOL);
	uint8_t cdb[16 + ISCSI_AHS_MAX];
	size_t cl = 16;
	memcpy(cdb, h->cdb, 16);
	/* An Extended CDB AHS (type 1) carries the bytes past the 16th (§11.3.5). */
	for (uint32_t o = 0; o + 4 <= h->ahs_len;) {
		uint32_t al = (uint32_t)q->ahs[o] << 8 | q->ahs[o + 1];
		if (o + 3 + al > h->ahs_len)
			break;
		if (q->ahs[o + 2] == 1 && al > 1 && cl + al - 1 <= sizeof(cdb)) {
			memcpy(cdb + cl, q->ahs + o + 4, al - 1);
			cl += al - 1;
		}
		o += (3 + al + 3) & ~3u;
	}
	int rflag = !!(h->flags & ISCSI_CMD_R), wflag = !!(h->flags & ISCSI_CMD_W);
	if (q->dlen && !wflag)
		return iscsi_reject(c, q, ISCSI_REJ_PROTOCOL);
	if (rflag && wflag) /* bidirectional commands: none of ours is one */
		return check_condition(c, h->itt, 0x05, 0x24, 0x00, h->edtl);
	int dir;
	uint32_t xfer;
	sbc_xfer(c->dev->d, cdb, cl, &dir, &xfer);
	if (!wflag)
		return execute(c, h->itt, h->edtl, rflag, cdb, cl, h->lun, NULL, 0, xfer, dir, 0);

	/* Data-out: immediate data now, unsolicited Data-Out next unless F, then R2Ts
	 * for what the command still needs. */
	uint32_t first = BKS_MIN(c->p.first_burst, h->edtl);
	if (q->dlen > first || (q->dlen && !c->p.immediate_data))
		return iscsi_reject(c, q, ISCSI_REJ_PROTOCOL);
	uint32_t need = dir == SBC_DIR_WRITE ? BKS_MIN(h->edtl, xfer) : 0;
	if (need > SBC_MAX_XFER) /* refused before anything is buffered */
		return check_condition(c, h->itt, 0x05, 0x24, 0x00, h->edtl);
	if (c->buffered + need > c->srv->max_buffer) {
		/* Over the connection's buffer budget: the initiator retries later. */
		return send_response(c, h->itt, SBC_TASK_SET_FULL, NULL, 0, 0, 0, 0);
	}
	if (task_find(c, h->itt))
		return iscsi_reject(c, q, ISCSI_REJ_TASK_IN_PROGRESS);
	iscsi_task *t = calloc(1, sizeof(*t));
	if (!t || (need && !(t->buf = malloc(need)))) {
		free(t);
		return check_condition(c, h->itt, 0x0b, 0x55, 0x03, h->edtl);
	}
	t->itt = h->itt;
	t->cmdsn = h->cmdsn;
	t->edtl = h->edtl;
	t->lun = h->lun;
	memcpy(t->cdb, cdb, cl);
	t->cdb_len = cl;
	t->need = need;
	t->xfer = xfer;
	t->unsol = !(h->flags & ISCSI_F);
	t->unsol_end = first;
	t->next = c->tasks;
	c->tasks = t;
	c->buffered += need;
	if (!(h->flags & ISCSI_F) && c->p.initial_r2t) {
		/* Unsolicited Data-Out announced though InitialR2T=Yes. */
		task_free(c, t);
		return iscsi_reject(c, q, ISCSI_REJ_PROTOCOL);
	}
	task_take(t, q->data, q->dlen);
	return task_advance(c, t);
}

/* A Data-Out PDU. Errors in its sequence (DataSN, offset, length, TTT) end the
 * command with CHECK CONDITION (ABORTED COMMAND, DATA PHASE ERROR); the rest of its
 * data is then dropped as data of an unknown task. */
static int data_out(iscsi_conn *c, iscsi_rx *q)
{
	const iscsi_pdu *h = &q->h;
	iscsi_task *t = task_find(c, h->itt);
	if (!t)
		return 0; /* an aborted or finished task's */
	const char *why = NULL;
	if (h->ttt == ISCSI_RSVD_TAG) {
		if (!t->unsol)
			why = "unsolicited data not expected";
		else if (h->datasn != t->unsol_datasn++)
			why = "DataSN";
		else if (h->buf_off != t->got || h->buf_off + q->dlen > t->unsol_end)
			why = "offset";
		if (!why && ((h->flags & ISCSI_F) || h->buf_off + q->dlen == t->unsol_end))
			t->unsol = 0;
	} else {
		if (!t->r2t || h->ttt != t->ttt)
			why = "TTT";
		else if (h->datasn != t->seq_datasn++)
			why = "DataSN";
		else if (h->buf_off != t->got || h->buf_off + q->dlen > t->r2t_end)
			why = "offset";
		else if ((h->flags & ISCSI_F) && h->buf_off + q->dlen != t->r2t_end)
			why = "burst ended short";
		if (!why && h->buf_off + q->dlen == t->r2t_end)
			t->r2t = 0;
	}
	if (why) {
		LOG_I("iscsi: %s: Data-Out for task 0x%x: bad %s (DataSN %u, offset %u, %u bytes)",
		      c->peer, h->itt, why, h->datasn, h->buf_off, q->dlen);
		uint32_t itt = t->itt, edtl = t->edtl;
		task_free(c, t);
		return check_condition(c, itt, 0x0b, 0x4b, 0x00, edtl);
	}
	task_take(t, q->data, q->dlen);
	return task_advance(c, t);
}

/* ---- NOP, TMF, Text, Logout ---- */

static int nop_out(iscsi_conn *c, iscsi_rx *q)
{
	const iscsi_pdu *h = &q->h;
	if (h->itt == ISCSI_RSVD_TAG) { /* the answer to our ping */
		if (h->ttt == c->ping_ttt)
			c->ping_ns = 0;
		return 0;
	}
	iscsi_pdu r = {.op = ISCSI_OP_NOP_IN, .flags = ISCSI_F, .lun = h->lun, .itt = h->itt,
	               .ttt = ISCSI_RSVD_TAG};
	iscsi_sn(c, &r, 1);
	/* The ping's data comes back, cut to what the initiator may receive. */
	return iscsi_send(c, &r, q->data, BKS_MIN(q->dlen, c->p.max_recv_dsl_init));
}

static void abort_all(iscsi_conn *c)
{
	while (c->tasks)
		task_free(c, c->tasks);
}

static int tmf(iscsi_conn *c, iscsi_rx *q)
{
	const iscsi_pdu *h = &q->h;
	int fn = h->flags & 0x7f, resp = ISCSI_TMF_COMPLETE;
	if (c->discovery)
		return iscsi_reject(c, q, ISCSI_REJ_PROTOCOL);
	int lun_ok = lun_number(h->lun) == 0;
	switch (fn) {
	case ISCSI_TMF_ABORT_TASK: {
		/* Commands run to completion as they arrive; only a task collecting its
		 * Data-Out (or one held for a CmdSN gap) can still be aborted. */
		iscsi_task *t = task_find(c, h->rtt);
		int held = 0;
		for (iscsi_held **pp = &c->held; *pp;) {
			iscsi_held *x = *pp;
			if (x->h.itt == h->rtt) {
				held = 1;
				*pp = x->next;
				c->buffered -= x->ahs_len + x->dlen;
				free(x->ahs);
				free(x);
			} else {
				pp = &x->next;
			}
		}
		c->held_tail = &c->held;
		while (*c->held_tail)
			c->held_tail = &(*c->held_tail)->next;
		if (t)
			task_free(c, t);
		else if (!held)
			resp = ISCSI_TMF_NO_TASK;
		break;
	}
	case ISCSI_TMF_ABORT_TASK_SET:
	case ISCSI_TMF_CLEAR_TASK_SET:
		if (!lun_ok)
			resp = ISCSI_TMF_NO_LUN;
		else
			abort_all(c);
		break;
	case ISCSI_TMF_LUN_RESET:
	case ISCSI_TMF_WARM_RESET:
	case ISCSI_TMF_COLD_RESET:
		if (fn == ISCSI_TMF_LUN_RESET && !lun_ok) {
			resp = ISCSI_TMF_NO_LUN;
			break;
		}
		/* Our own tasks go; other sessions' commands run to completion (each runs
		 * whole on its own thread). Every nexus, the requester's too, gets the reset
		 * unit attention (SAM-5 6.3: a logical unit reset is seen on every I_T
		 * nexus; libiscsi's MultipathIO.Reset checks each path): NULL to
		 * sbc_reset. */
		abort_all(c);
		sbc_reset(c->dev->d, NULL);
		LOG_I("iscsi: %s: %s by %s", c->peer, fn == ISCSI_TMF_LUN_RESET ? "LUN reset" :
		      "target reset", c->initiator);
		if (fn == ISCSI_TMF_COLD_RESET)
			c->closing = 1; /* §11.5.1: the connection ends after the response */
		break;
	case ISCSI_TMF_TASK_REASSIGN:
		resp = ISCSI_TMF_NO_REASSIGN; /* ErrorRecoveryLevel 0 */
		break;
	default:
		resp = ISCSI_TMF_NOT_SUPPORTED;
	}
	iscsi_pdu r = {.op = ISCSI_OP_TMF_RSP, .flags = ISCSI_F, .response = (uint8_t)resp,
	               .itt = h->itt};
	iscsi_sn(c, &r, 1);
	return iscsi_send(c, &r, NULL, 0);
}

/* The next piece of a Text Response being sent. */
static int text_piece(iscsi_conn *c, uint32_t itt, uint64_t lunf)
{
	size_t left = c->txt_out_len - c->txt_out_off;
	size_t n = BKS_MIN(left, (size_t)c->p.max_recv_dsl_init);
	int more = n < left;
	iscsi_pdu r = {.op = ISCSI_OP_TEXT_RSP, .flags = more ? ISCSI_LOGIN_C : ISCSI_F,
	               .lun = lunf, .itt = itt, .ttt = ISCSI_RSVD_TAG};
	if (more)
		r.ttt = c->txt_ttt = new_ttt(c);
	iscsi_sn(c, &r, 1);
	int ret = iscsi_send(c, &r, c->txt_out + c->txt_out_off, (uint32_t)n);
	c->txt_out_off += n;
	if (!more) {
		free(c->txt_out);
		c->txt_out = NULL;
		c->txt_out_len = c->txt_out_off = 0;
	}
	return ret;
}

static int text_req(iscsi_conn *c, iscsi_rx *q)
{
	const iscsi_pdu *h = &q->h;
	if (h->ttt != ISCSI_RSVD_TAG) { /* "go on" for a long answer */
		if (!c->txt_out || h->ttt != c->txt_ttt)
			return iscsi_reject(c, q, ISCSI_REJ_INVALID_FIELD);
		return text_piece(c, h->itt, h->lun);
	}
	free(c->txt_out);
	c->txt_out = NULL;
	if (c->txt_in_len + q->dlen > ISCSI_TEXT_MAX)
		return iscsi_reject(c, q, ISCSI_REJ_PROTOCOL);
	if (q->dlen) {
		char *nb = realloc(c->txt_in, c->txt_in_len + q->dlen);
		if (!nb)
			return iscsi_reject(c, q, ISCSI_REJ_OUT_OF_RESOURCES);
		c->txt_in = nb;
		memcpy(c->txt_in + c->txt_in_len, q->data, q->dlen);
		c->txt_in_len += q->dlen;
	}
	if (h->flags & ISCSI_LOGIN_C) { /* more text follows: answer empty */
		iscsi_pdu r = {.op = ISCSI_OP_TEXT_RSP, .lun = h->lun, .itt = h->itt,
		               .ttt = new_ttt(c)};
		iscsi_sn(c, &r, 1);
		return iscsi_send(c, &r, NULL, 0);
	}
	iscsi_kv kv[ISCSI_KV_MAX];
	int n = iscsi_text_parse(c->txt_in, c->txt_in_len, kv, ISCSI_KV_MAX);
	c->txt_in_len = 0;
	if (n < 0)
		return iscsi_reject(c, q, ISCSI_REJ_PROTOCOL);
	if (!(c->txt_out = malloc(ISCSI_TEXT_MAX)))
		return iscsi_reject(c, q, ISCSI_REJ_OUT_OF_RESOURCES);
	iscsi_text t;
	iscsi_text_init(&t, c->txt_out, ISCSI_TEXT_MAX);
	for (int i = 0; i < n; i++) {
		if (!strcmp(kv[i].key, "SendTargets"))
			iscsi_send_targets(c, kv[i].val, &t);
		else if (!strcmp(kv[i].key, "MaxRecvDataSegmentLength")) {
			/* declarative, the one key that may change in full feature phase */
			char *e;
			unsigned long v = strtoul(kv[i].val, &e, 0);
			if (*e || v < ISCSI_DSL_MIN || v > ISCSI_DSL_MAX)
				iscsi_text_add(&t, kv[i].key, "Reject");
			else
				c->p.max_recv_dsl_init = (uint32_t)v;
		} else {
			iscsi_text_add(&t, kv[i].key, "NotUnderstood");
		}
	}
	c->txt_out_len = t.len;
	c->txt_out_off = 0;
	return text_piece(c, h->itt, h->lun);
}

static int logout(iscsi_conn *c, iscsi_rx *q)
{
	const iscsi_pdu *h = &q->h;
	int reason = h->flags & 0x7f, resp = ISCSI_LOGOUT_OK;
	if (reason == ISCSI_LOGOUT_RECOVERY)
		resp = 2; /* connection recovery is not supported */
	else if (reason == ISCSI_LOGOUT_CONN && h->cid != c->cid)
		resp = ISCSI_LOGOUT_NO_CID;
	abort_all(c);
	iscsi_pdu r = {.op = ISCSI_OP_LOGOUT_RSP, .flags = ISCSI_F, .response = (uint8_t)resp,
	               .itt = h->itt};
	iscsi_sn(c, &r, 1);
	int ret = iscsi_send(c, &r, NULL, 0);
	if (resp == ISCSI_LOGOUT_OK)
		c->closing = 1;
	LOG_D("iscsi: %s: logout (reason %d): %d", c->peer, reason, resp);
	return ret;
}

/* ---- dispatch and CmdSN ordering ---- */

static int exec_req(iscsi_conn *c, iscsi_rx *q)
{
	switch (q->h.op) {
	case ISCSI_OP_NOP_OUT: return nop_out(c, q);
	case ISCSI_OP_SCSI_CMD: return scsi_cmd(c, q);
	case ISCSI_OP_TMF_REQ: return tmf(c, q);
	case ISCSI_OP_TEXT_REQ: return text_req(c, q);
	case ISCSI_OP_LOGOUT_REQ: return logout(c, q);
	case ISCSI_OP_DATA_OUT: return data_out(c, q);
	default: return iscsi_reject(c, q, ISCSI_REJ_PROTOCOL);
	}
}

static int hold(iscsi_conn *c, const iscsi_rx *q)
{
	if (c->buffered + q->h.ahs_len + q->dlen > c->srv->max_buffer)
		return -ENOBUFS;
	iscsi_held *x = calloc(1, sizeof(*x));
	uint8_t *b = malloc((size_t)q->h.ahs_len + q->dlen + 1);
	if (!x || !b) {
		free(x);
		free(b);
		return -ENOMEM;
	}
	x->h = q->h;
	x->ahs = b;
	x->data = b + q->h.ahs_len;
	x->ahs_len = q->h.ahs_len;
	x->dlen = q->dlen;
	memcpy(x->ahs, q->ahs, q->h.ahs_len);
	memcpy(x->data, q->data, q->dlen);
	*c->held_tail = x;
	c->held_tail = &x->next;
	c->buffered += x->ahs_len + x->dlen;
	return 0;
}

static int is_held_itt(const iscsi_conn *c, uint32_t itt)
{
	for (const iscsi_held *x = c->held; x; x = x->next)
		if (x->h.op == ISCSI_OP_SCSI_CMD && x->h.itt == itt)
			return 1;
	return 0;
}

/* Replay held PDUs that are in order now: a command whose CmdSN is ExpCmdSN, and
 * Data-Out whose command is no longer held. */
static int release_held(iscsi_conn *c)
{
	int progress = 1;
	while (progress && c->held && !c->closing) {
		progress = 0;
		for (iscsi_held **pp = &c->held; *pp; pp = &(*pp)->next) {
			iscsi_held *x = *pp;
			int go = x->h.op == ISCSI_OP_DATA_OUT ? !is_held_itt(c, x->h.itt) :
			         x->h.cmdsn == c->expcmdsn;
			if (!go)
				continue;
			*pp = x->next;
			c->held_tail = &c->held;
			while (*c->held_tail)
				c->held_tail = &(*c->held_tail)->next;
			c->buffered -= x->ahs_len + x->dlen;
			iscsi_rx *q = malloc(sizeof(*q));
			if (!q) {
				free(x->ahs);
				free(x);
				return -ENOMEM;
			}
			q->h = x->h;
			iscsi_bhs_encode(&x->h, q->bhs);
			memcpy(q->ahs, x->ahs, x->ahs_len);
			q->data = x->data;
			q->dlen = x->dlen;
			if (x->h.op != ISCSI_OP_DATA_OUT)
				c->expcmdsn++;
			int r = exec_req(c, q);
			free(q);
			free(x->ahs);
			free(x);
			if (r < 0)
				return r;
			progress = 1;
			break;
		}
	}
	return 0;
}

int iscsi_ffp_pdu(iscsi_conn *c, iscsi_rx *q)
{
	const iscsi_pdu *h = &q->h;
	switch (h->op) {
	case ISCSI_OP_NOP_OUT:
	case ISCSI_OP_SCSI_CMD:
	case ISCSI_OP_TMF_REQ:
	case ISCSI_OP_TEXT_REQ:
	case ISCSI_OP_LOGOUT_REQ:
		if (h->immediate)
			return exec_req(c, q);
		/* §4.2.2.1: outside [ExpCmdSN, MaxCmdSN] a command is dropped silently;
		 * ahead of ExpCmdSN it waits for the gap to fill; commands reach the SCSI
		 * layer in CmdSN order. */
		if (sn_lt(h->cmdsn, c->expcmdsn) || sn_lt(maxcmdsn(c), h->cmdsn)) {
			LOG_D("iscsi: %s: CmdSN %u outside [%u, %u]: dropped", c->peer, h->cmdsn,
			      c->expcmdsn, maxcmdsn(c));
			return 0;
		}
		if (h->cmdsn != c->expcmdsn)
			return hold(c, q);
		c->expcmdsn++;
		{
			int r = exec_req(c, q);
			return r < 0 ? r : release_held(c);
		}
	case ISCSI_OP_DATA_OUT:
		if (is_held_itt(c, h->itt))
			return hold(c, q);
		return data_out(c, q);
	case ISCSI_OP_SNACK: /* ErrorRecoveryLevel 0: no SNACK */
		return iscsi_reject(c, q, ISCSI_REJ_SNACK);
	default: /* a Login in full feature phase, or a target's opcode */
		LOG_I("iscsi: %s: opcode 0x%02x in full feature phase: closed", c->peer, h->op);
		(void)iscsi_reject(c, q, ISCSI_REJ_PROTOCOL);
		return -EPROTO;
	}
}

int iscsi_ffp_idle(iscsi_conn *c, uint64_t now)
{
	iscsi_srv *s = c->srv;
	if (s->stopping)
		return -ECANCELED;
	uint64_t idle = now - c->last_rx_ns;
	/* A command waiting for data that does not come holds its buffer: bounded. */
	if (c->tasks && idle > ISCSI_DATA_MS * 1000000ull) {
		LOG_I("iscsi: %s: no Data-Out for %u s: closed", c->peer, ISCSI_DATA_MS / 1000);
		return -ETIMEDOUT;
	}
	if (c->din && idle > ISCSI_IDLE_FREE_MS * 1000000ull) {
		free(c->din);
		c->din = NULL;
		c->din_cap = 0;
	}
	if (!s->nop_ms)
		return 0;
	if (c->ping_ns && now - c->ping_ns > (uint64_t)s->nop_ms * 1000000ull) {
		LOG_I("iscsi: %s: no answer to a NOP-In ping for %u s: closed", c->peer,
		      s->nop_ms / 1000);
		return -ETIMEDOUT;
	}
	if (!c->ping_ns && idle > (uint64_t)s->nop_ms * 1000000ull) {
		/* §11.19: a ping the initiator must answer (TTT set, ITT reserved). */
		iscsi_pdu h = {.op = ISCSI_OP_NOP_IN, .flags = ISCSI_F, .itt = ISCSI_RSVD_TAG,
		               .ttt = c->ping_ttt = new_ttt(c)};
		iscsi_sn(c, &h, 0);
		c->ping_ns = now;
		return iscsi_send(c, &h, NULL, 0);
	}
	return 0;
}

void iscsi_ffp_end(iscsi_conn *c)
{
	abort_all(c);
	while (c->held) {
		iscsi_held *x = c->held;
		c->held = x->next;
		free(x->ahs);
		free(x);
	}
	c->held_tail = &c->held;
	c->buffered = 0;
}
