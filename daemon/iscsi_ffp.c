/* daemon/iscsi_ffp.c: the full feature phase of a connection (see iscsi.h). */
#include <config.h>

#include "daemon/iscsi_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "daemon/log.h"
#include "proto/scsi.h"

/* Several commands of a connection are in flight at once: the connection's thread
 * (the reader) keeps reading PDUs, collects each command's Data-Out, and hands the
 * command whose data is in to a worker (up to ISCSI_WORKERS per connection,
 * started as needed, as the NFS server's: daemon/nfs.c), which runs it through
 * sbc_exec and sends its Data-In and status; every PDU goes out whole under the
 * send lock, which assigns StatSN (iscsi_send), so responses leave in the order
 * the commands finish (RFC 7143 §3.2.2.1 lets them).
 *
 * Bounds: the CmdSN window. MaxCmdSN = ExpCmdSN + queue_depth - 1 - active, where
 * active counts the commands received and not yet answered: a command received
 * moves ExpCmdSN and active together, an answer lowers active, so MaxCmdSN never
 * goes back (an initiator ignores a lower one, §4.2.2.1) and the initiator has at
 * most queue_depth commands with us. Memory: write data (and held PDUs, and the
 * Data-In room of running commands) stays within max_buffer per connection.
 *
 * Ordering (SAM-5 8.6): SIMPLE tasks may run in any order, but a task does not
 * overtake an earlier one of the connection it conflicts with: both touch
 * overlapping blocks and one of them writes (READ/WRITE/WRITE AND VERIFY), or
 * either is a barrier: ORDERED, HEAD OF QUEUE (run in order here, not ahead) and
 * ACA tasks, and every command other than READ and WRITE (COMPARE AND WRITE, the
 * reservation commands, MODE SELECT, SYNCHRONIZE CACHE, UNMAP, WRITE SAME, ...):
 * those wait for every earlier task and every later one waits for them, so a
 * reservation change, a compare, a cache sync sees exactly the commands sent
 * before it done. Between sessions nothing changes: sbc_exec locks what the
 * device shares. */

/* Task attributes (byte 1 of a SCSI Command, §11.3.1) */
#define ATTR_MASK 7
enum { ATTR_UNTAGGED = 0, ATTR_SIMPLE = 1 };

/* Serial number arithmetic (RFC 1982) on 32 bits, as CmdSN comparisons need. */
static int sn_lt(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b) < 0;
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
	return iscsi_send(c, &h, 1, seg, dl);
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

/* ---- tasks (the list and the budget under c->mu) ---- */

/* Unlink and free (c->mu held). A running task's Data-In room leaves the budget
 * with it. */
static void task_free_locked(iscsi_conn *c, iscsi_task *t)
{
	if (t->state == ISCSI_T_RUNNING && c->tasks != t) /* an earlier one is still here */
		__atomic_add_fetch(&c->reordered, 1, __ATOMIC_RELAXED);
	for (iscsi_task **pp = &c->tasks; *pp; pp = &(*pp)->next)
		if (*pp == t) {
			*pp = t->next;
			if (c->tasks_tail == &t->next)
				c->tasks_tail = pp;
			break;
		}
	c->buffered -= t->need;
	if (t->state == ISCSI_T_RUNNING) {
		c->buffered -= t->din_cap;
		c->running--;
	}
	c->active -= (uint32_t)t->slot;
	free(t->buf);
	free(t);
	pthread_cond_broadcast(&c->rcv);
}

static void task_free(iscsi_conn *c, iscsi_task *t)
{
	pthread_mutex_lock(&c->mu);
	task_free_locked(c, t);
	pthread_mutex_unlock(&c->mu);
}

/* c->mu held */
static iscsi_task *task_find_locked(iscsi_conn *c, uint32_t itt)
{
	for (iscsi_task *t = c->tasks; t; t = t->next)
		if (t->itt == itt)
			return t;
	return NULL;
}

/* A task still collecting its Data-Out (the reader's own: no other thread frees it). */
static iscsi_task *collecting(iscsi_conn *c, uint32_t itt)
{
	pthread_mutex_lock(&c->mu);
	iscsi_task *t = task_find_locked(c, itt);
	if (t && t->state != ISCSI_T_COLLECT)
		t = NULL;
	pthread_mutex_unlock(&c->mu);
	return t;
}

/* ---- ordering ---- */

/* May b (later) run while a (earlier) has not ended? */
static int conflicts(const iscsi_task *a, const iscsi_task *b)
{
	if (a->barrier || b->barrier)
		return 1;
	if (!a->writes && !b->writes)
		return 0;
	return a->lba < b->lba + b->nblk && b->lba < a->lba + a->nblk;
}

/* The first ready task nothing earlier holds back, within the budget (a task whose
 * Data-In room does not fit waits for the running ones, unless none runs) (c->mu
 * held). */
static iscsi_task *pick_locked(iscsi_conn *c)
{
	for (iscsi_task *t = c->tasks; t; t = t->next) {
		if (t->state != ISCSI_T_READY)
			continue;
		int ok = 1;
		for (const iscsi_task *e = c->tasks; e != t && ok; e = e->next)
			ok = !conflicts(e, t);
		if (ok && c->running && c->buffered + t->din_cap > c->srv->max_buffer)
			ok = 0;
		if (ok)
			return t;
	}
	return NULL;
}

/* Classify a command for the ordering rules. */
static void task_classify(iscsi_task *t, int attr)
{
	scsi_cdb k;
	int field;
	t->barrier = 1;
	if (attr != ATTR_UNTAGGED && attr != ATTR_SIMPLE)
		return;
	if (scsi_cdb_parse(t->cdb, t->cdb_len, &k, &field) < 0 || !k.rw)
		return;
	t->barrier = 0;
	t->writes = k.rw == 2;
	t->quick = (k.op == SCSI_WRITE6 || k.op == SCSI_WRITE10 || k.op == SCSI_WRITE12 ||
	            k.op == SCSI_WRITE16) && !k.fua && t->need <= ISCSI_QUICK_MAX;
	t->lba = k.lba;
	t->nblk = k.nblocks;
}

/* ---- running a command (a worker) ---- */

/* Run a command with its data-out, send Data-In and status. din: t->din_cap bytes. */
static int execute(iscsi_conn *c, iscsi_task *t, uint8_t *din)
{
	sbc_dev *d = c->dev->d;
	uint32_t itt = t->itt, edtl = t->edtl, xfer = t->xfer, cap = t->din_cap;
	uint32_t dout_len = BKS_MIN(t->got, t->need);
	int rflag = t->rflag, dir = t->dir;
	sbc_cmd cmd = {.cdb = t->cdb, .cdb_len = t->cdb_len, .lun = lun_number(t->lun),
	               .nx = &c->nx, .dout = t->buf, .dout_len = dout_len, .din = din,
	               .din_cap = cap};
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
	 * when it is GOOD (no sense to carry). Other tasks' PDUs may come between. */
	uint32_t datasn = 0, mrdsl = c->p.max_recv_dsl_init, burst = c->p.max_burst;
	for (uint32_t off = 0; off < sent;) {
		uint32_t n = BKS_MIN(mrdsl, sent - off);
		uint32_t in_burst = off % burst;
		n = BKS_MIN(n, burst - in_burst);
		int last = off + n == sent;
		iscsi_pdu h = {.op = ISCSI_OP_DATA_IN, .lun = t->lun, .itt = itt,
		               .ttt = ISCSI_RSVD_TAG, .datasn = datasn++, .buf_off = off};
		if (last || in_burst + n == burst)
			h.flags |= ISCSI_F;
		if (last) {
			h.flags |= (uint8_t)(ISCSI_DIN_S | rf);
			h.status = cmd.status;
			h.residual = resid;
		}
		int r = iscsi_send(c, &h, last, din + off, n);
		if (r < 0)
			return r;
		off += n;
	}
	__atomic_add_fetch(&c->bytes_read, sent, __ATOMIC_RELAXED);
	if (sent)
		return 0;
	return send_response(c, itt, cmd.status, cmd.sense, cmd.status == SBC_CHECK_CONDITION ?
	                     cmd.sense_len : 0, rf, resid, rflag ? datasn : t->pdus_sent);
}

/* Run a task on this thread (it is RUNNING) and free it. *din, *dcap: this thread's
 * Data-In buffer, grown as needed, kept up to ISCSI_KEEP_DIN (a 1 MiB READ stream
 * does not fault in a new buffer each time). */
static void run_task(iscsi_conn *c, iscsi_task *t, uint8_t **din, uint32_t *dcap)
{
	if (t->din_cap > *dcap) {
		free(*din);
		*dcap = (*din = malloc(t->din_cap)) ? t->din_cap : 0;
	}
	if (t->din_cap && !*din)
		(void)check_condition(c, t->itt, 0x0b, 0x55, 0x03, t->edtl); /* resources */
	else
		(void)execute(c, t, *din); /* a failed send shut the socket: the reader ends */
	if (*dcap > ISCSI_KEEP_DIN) {
		free(*din);
		*din = NULL;
		*dcap = 0;
	}
	pthread_mutex_lock(&c->mu);
	task_free_locked(c, t);
	/* What it held back may run now. */
	if (c->idle)
		pthread_cond_broadcast(&c->wcv);
	pthread_mutex_unlock(&c->mu);
}

/* A worker of connection c: runs ready tasks until told to stop; its buffer goes
 * when it has idled a few seconds. */
static void *worker_main(void *arg)
{
	iscsi_conn *c = arg;
	uint8_t *din = NULL;
	uint32_t dcap = 0;
	pthread_mutex_lock(&c->mu);
	for (;;) {
		iscsi_task *t = pick_locked(c);
		if (!t) {
			if (c->wstop)
				break;
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 5;
			c->idle++;
			int w = pthread_cond_timedwait(&c->wcv, &c->mu, &ts);
			c->idle--;
			if (w == ETIMEDOUT && din) {
				free(din);
				din = NULL;
				dcap = 0;
			}
			continue;
		}
		t->state = ISCSI_T_RUNNING;
		c->running++;
		c->buffered += t->din_cap;
		if ((uint32_t)c->running > c->running_max)
			__atomic_store_n(&c->running_max, (uint32_t)c->running, __ATOMIC_RELAXED);
		pthread_mutex_unlock(&c->mu);
		run_task(c, t, &din, &dcap);
		pthread_mutex_lock(&c->mu);
	}
	pthread_mutex_unlock(&c->mu);
	free(din);
	return NULL;
}

/* The task's data is in: hand it to the workers, starting one when none is idle
 * (never more than ISCSI_WORKERS). A quick write (a small WRITE without FUA: a copy
 * into the LUN's cache, tens of microseconds) runs here on the reader instead when
 * nothing runs or waits and nothing earlier holds it back: handing it over costs
 * more than running it (two thread switches, on a busy machine a scheduling delay
 * each), and the CmdSN window keeps the initiator's next commands coming meanwhile
 * (random 4 KiB writes). */
static int task_ready(iscsi_conn *c, iscsi_task *t)
{
	int r = 0, here = 0;
	pthread_mutex_lock(&c->mu);
	t->state = ISCSI_T_READY;
	if (t->quick && !c->running) {
		here = 1;
		for (const iscsi_task *e = c->tasks; e && e != t && here; e = e->next)
			here = e->state == ISCSI_T_COLLECT && !conflicts(e, t);
	}
	if (here) {
		t->state = ISCSI_T_RUNNING;
		c->running++;
		if (!c->running_max)
			__atomic_store_n(&c->running_max, 1u, __ATOMIC_RELAXED);
		pthread_mutex_unlock(&c->mu);
		uint8_t *none = NULL;
		uint32_t zero = 0;
		run_task(c, t, &none, &zero);
		return 0;
	}
	if (c->idle == 0 && c->nworkers < ISCSI_WORKERS) {
		if (pthread_create(&c->wth[c->nworkers], NULL, worker_main, c) == 0)
			c->nworkers++;
		else if (!c->nworkers)
			r = -EAGAIN; /* nobody would run it */
	}
	pthread_cond_signal(&c->wcv);
	pthread_mutex_unlock(&c->mu);
	return r;
}

/* Wait (the reader) until no task is in one of the states of mask (bit per
 * ISCSI_T_*). Tasks run whole: this ends unless the daemon is stopping. */
static void wait_tasks(iscsi_conn *c, int mask)
{
	pthread_mutex_lock(&c->mu);
	for (;;) {
		int busy = 0;
		for (const iscsi_task *t = c->tasks; t && !busy; t = t->next)
			busy = mask >> t->state & 1;
		if (!busy)
			break;
		pthread_cond_wait(&c->rcv, &c->mu);
	}
	pthread_mutex_unlock(&c->mu);
}

/* Drop the tasks in the states of mask (not running ones: those end by themselves),
 * or only the one with itt when one_itt. Returns how many went. */
static int drop_tasks(iscsi_conn *c, int mask, int one_itt, uint32_t itt)
{
	int n = 0;
	pthread_mutex_lock(&c->mu);
	for (iscsi_task *t = c->tasks, *nx; t; t = nx) {
		nx = t->next;
		if (t->state != ISCSI_T_RUNNING && (mask >> t->state & 1) &&
		    (!one_itt || t->itt == itt)) {
			task_free_locked(c, t);
			n++;
		}
	}
	if (c->idle)
		pthread_cond_broadcast(&c->wcv); /* what they held back */
	pthread_mutex_unlock(&c->mu);
	return n;
}

#define M_COLLECT (1 << ISCSI_T_COLLECT)
#define M_READY (1 << ISCSI_T_READY)
#define M_RUNNING (1 << ISCSI_T_RUNNING)

/* ---- collecting Data-Out (the reader) ---- */

/* Move a task on: wait for unsolicited data, solicit what is missing with up to
 * MaxOutstandingR2T R2Ts at once (each of at most MaxBurstLength, in offset order),
 * or hand it to the workers. */
static int task_advance(iscsi_conn *c, iscsi_task *t)
{
	if (t->unsol)
		return 0;
	if (t->got >= t->need && !t->nr2t)
		return task_ready(c, t);
	uint32_t most = BKS_MAX(1u, BKS_MIN(c->p.max_outstanding_r2t, (uint32_t)ISCSI_R2T_MAX));
	if (!t->nr2t && t->solicited < t->got)
		t->solicited = t->got; /* (the unsolicited data ended here) */
	while ((uint32_t)t->nr2t < most && t->solicited < t->need) {
		uint32_t len = BKS_MIN(c->p.max_burst, t->need - t->solicited);
		iscsi_pdu h = {.op = ISCSI_OP_R2T, .flags = ISCSI_F, .lun = t->lun, .itt = t->itt,
		               .ttt = new_ttt(c), .datasn = t->r2tsn++, .buf_off = t->solicited,
		               .desired_len = len};
		if (!t->nr2t)
			t->seq_datasn = 0;
		t->r2t[t->nr2t].ttt = h.ttt;
		t->r2t[t->nr2t].end = t->solicited + len;
		t->nr2t++;
		t->solicited += len;
		t->pdus_sent++;
		int r = iscsi_send(c, &h, 0, NULL, 0);
		if (r < 0)
			return r;
	}
	return 0;
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

	/* Data-out: immediate data now, unsolicited Data-Out next unless F, then R2Ts
	 * for what the command still needs. */
	uint32_t first = BKS_MIN(c->p.first_burst, h->edtl);
	if (wflag && (q->dlen > first || (q->dlen && !c->p.immediate_data)))
		return iscsi_reject(c, q, ISCSI_REJ_PROTOCOL);
	uint32_t need = wflag && dir == SBC_DIR_WRITE ? BKS_MIN(h->edtl, xfer) : 0;
	if (need > SBC_MAX_XFER) /* refused before anything is buffered */
		return check_condition(c, h->itt, 0x05, 0x24, 0x00, h->edtl);
	/* Room for what the CDB transfers even when the initiator expects less, so the
	 * device produces the whole answer and the residual says what was cut. */
	int tdir = wflag ? SBC_DIR_WRITE : dir;
	uint32_t cap = 0;
	if (rflag || tdir == SBC_DIR_READ)
		cap = BKS_MIN(BKS_MAX(h->edtl, tdir == SBC_DIR_READ ? xfer : 0), SBC_MAX_XFER);
	if (wflag && !(h->flags & ISCSI_F) && c->p.initial_r2t) {
		/* Unsolicited Data-Out announced though InitialR2T=Yes. */
		return iscsi_reject(c, q, ISCSI_REJ_PROTOCOL);
	}
	pthread_mutex_lock(&c->mu);
	int full = c->buffered + need > c->srv->max_buffer, dup = !!task_find_locked(c, h->itt);
	pthread_mutex_unlock(&c->mu);
	if (full) /* over the connection's buffer budget: the initiator retries later */
		return send_response(c, h->itt, SBC_TASK_SET_FULL, NULL, 0, 0, 0, 0);
	if (dup)
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
	t->rflag = rflag;
	t->dir = tdir;
	t->need = need;
	t->xfer = xfer;
	t->din_cap = cap;
	t->unsol = wflag && !(h->flags & ISCSI_F);
	t->unsol_end = first;
	t->state = ISCSI_T_COLLECT;
	task_classify(t, h->flags & ATTR_MASK);
	pthread_mutex_lock(&c->mu);
	t->slot = c->slot_pending; /* the window slot its CmdSN took */
	c->slot_pending = 0;
	*c->tasks_tail = t;
	c->tasks_tail = &t->next;
	c->buffered += need;
	pthread_mutex_unlock(&c->mu);
	if (wflag)
		task_take(t, q->data, q->dlen);
	return task_advance(c, t);
}

/* A Data-Out PDU. Errors in its sequence (DataSN, offset, length, TTT) end the
 * command with CHECK CONDITION (ABORTED COMMAND, DATA PHASE ERROR); the rest of its
 * data is then dropped as data of an unknown task. */
static int data_out(iscsi_conn *c, iscsi_rx *q)
{
	const iscsi_pdu *h = &q->h;
	iscsi_task *t = collecting(c, h->itt);
	if (!t)
		return 0; /* an aborted or finished task's, or one already running */
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
		/* In order: only the oldest outstanding R2T's sequence can be arriving. */
		if (!t->nr2t || h->ttt != t->r2t[0].ttt)
			why = "TTT";
		else if (h->datasn != t->seq_datasn++)
			why = "DataSN";
		else if (h->buf_off != t->got || h->buf_off + q->dlen > t->r2t[0].end)
			why = "offset";
		else if ((h->flags & ISCSI_F) && h->buf_off + q->dlen != t->r2t[0].end)
			why = "burst ended short";
		if (!why && h->buf_off + q->dlen == t->r2t[0].end) {
			memmove(t->r2t, t->r2t + 1, (size_t)(t->nr2t - 1) * sizeof(t->r2t[0]));
			t->nr2t--;
			t->seq_datasn = 0;
		}
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

/* ---- NOP, TMF, Text, Logout (the reader) ---- */

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
	/* The ping's data comes back, cut to what the initiator may receive. */
	return iscsi_send(c, &r, 1, q->data, BKS_MIN(q->dlen, c->p.max_recv_dsl_init));
}

/* Every task of the session goes: those not running now (no response: aborted),
 * those running once they end (they run whole; their responses go out first). */
static void abort_all(iscsi_conn *c)
{
	drop_tasks(c, M_COLLECT | M_READY, 0, 0);
	wait_tasks(c, M_RUNNING);
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
		/* A task collecting its Data-Out, waiting to run, or held for a CmdSN gap
		 * is aborted; one running runs whole (its response goes out before this
		 * one): "task does not exist" then, as for one already answered. */
		int held = 0;
		for (iscsi_held **pp = &c->held; *pp;) {
			iscsi_held *x = *pp;
			if (x->h.itt == h->rtt) {
				held = 1;
				*pp = x->next;
				pthread_mutex_lock(&c->mu);
				c->buffered -= x->ahs_len + x->dlen;
				pthread_mutex_unlock(&c->mu);
				free(x->ahs);
				free(x);
			} else {
				pp = &x->next;
			}
		}
		c->held_tail = &c->held;
		while (*c->held_tail)
			c->held_tail = &(*c->held_tail)->next;
		if (!drop_tasks(c, M_COLLECT | M_READY, 1, h->rtt) && !held) {
			pthread_mutex_lock(&c->mu);
			int run = !!task_find_locked(c, h->rtt);
			pthread_mutex_unlock(&c->mu);
			if (run)
				wait_tasks(c, M_RUNNING);
			resp = ISCSI_TMF_NO_TASK;
		}
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
	return iscsi_send(c, &r, 1, NULL, 0);
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
	int ret = iscsi_send(c, &r, 1, c->txt_out + c->txt_out_off, (uint32_t)n);
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
		return iscsi_send(c, &r, 1, NULL, 0);
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
	/* Commands still collecting data go; those whose data is in run and answer
	 * before the logout response (§11.14: it comes after the tasks' responses). */
	drop_tasks(c, M_COLLECT, 0, 0);
	wait_tasks(c, M_READY | M_RUNNING);
	iscsi_pdu r = {.op = ISCSI_OP_LOGOUT_RSP, .flags = ISCSI_F, .response = (uint8_t)resp,
	               .itt = h->itt};
	int ret = iscsi_send(c, &r, 1, NULL, 0);
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
	pthread_mutex_lock(&c->mu);
	int over = c->buffered + q->h.ahs_len + q->dlen > c->srv->max_buffer;
	if (!over)
		c->buffered += q->h.ahs_len + q->dlen;
	pthread_mutex_unlock(&c->mu);
	if (over)
		return -ENOBUFS;
	iscsi_held *x = calloc(1, sizeof(*x));
	uint8_t *b = malloc((size_t)q->h.ahs_len + q->dlen + 1);
	if (!x || !b) {
		free(x);
		free(b);
		pthread_mutex_lock(&c->mu);
		c->buffered -= q->h.ahs_len + q->dlen;
		pthread_mutex_unlock(&c->mu);
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
	return 0;
}

static int is_held_itt(const iscsi_conn *c, uint32_t itt)
{
	for (const iscsi_held *x = c->held; x; x = x->next)
		if (x->h.op == ISCSI_OP_SCSI_CMD && x->h.itt == itt)
			return 1;
	return 0;
}

/* A non-immediate request whose CmdSN is ExpCmdSN: ExpCmdSN moves on; a SCSI
 * command takes a window slot at the same time (under one hold of mu, so MaxCmdSN
 * stays where it was), which its task keeps until its response, or which is given
 * back at once when it was answered without one. */
static int exec_in_order(iscsi_conn *c, iscsi_rx *q)
{
	int scsi = q->h.op == ISCSI_OP_SCSI_CMD;
	pthread_mutex_lock(&c->mu);
	c->expcmdsn++;
	if (scsi) {
		c->active++;
		c->slot_pending = 1;
	}
	pthread_mutex_unlock(&c->mu);
	int r = exec_req(c, q);
	if (scsi && c->slot_pending) {
		pthread_mutex_lock(&c->mu);
		c->active--;
		c->slot_pending = 0;
		pthread_mutex_unlock(&c->mu);
	}
	return r;
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
			pthread_mutex_lock(&c->mu);
			c->buffered -= x->ahs_len + x->dlen;
			pthread_mutex_unlock(&c->mu);
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
			int r = x->h.op == ISCSI_OP_DATA_OUT ? exec_req(c, q) : exec_in_order(c, q);
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
		{
			pthread_mutex_lock(&c->mu);
			uint32_t exp = c->expcmdsn, max = iscsi_maxcmdsn_locked(c);
			pthread_mutex_unlock(&c->mu);
			if (sn_lt(h->cmdsn, exp) || sn_lt(max, h->cmdsn)) {
				LOG_D("iscsi: %s: CmdSN %u outside [%u, %u]: dropped", c->peer,
				      h->cmdsn, exp, max);
				return 0;
			}
			if (h->cmdsn != exp)
				return hold(c, q);
			int r = exec_in_order(c, q);
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
	if (idle > ISCSI_DATA_MS * 1000000ull) {
		int waiting = 0;
		pthread_mutex_lock(&c->mu);
		for (const iscsi_task *t = c->tasks; t && !waiting; t = t->next)
			waiting = t->state == ISCSI_T_COLLECT;
		pthread_mutex_unlock(&c->mu);
		if (waiting) {
			LOG_I("iscsi: %s: no Data-Out for %u s: closed", c->peer, ISCSI_DATA_MS / 1000);
			return -ETIMEDOUT;
		}
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
		c->ping_ns = now;
		return iscsi_send(c, &h, 0, NULL, 0);
	}
	return 0;
}

void iscsi_ffp_end(iscsi_conn *c)
{
	abort_all(c);
	pthread_mutex_lock(&c->mu);
	c->wstop = 1;
	pthread_cond_broadcast(&c->wcv);
	int nw = c->nworkers;
	pthread_mutex_unlock(&c->mu);
	for (int i = 0; i < nw; i++)
		pthread_join(c->wth[i], NULL);
	c->nworkers = 0;
	while (c->held) {
		iscsi_held *x = c->held;
		c->held = x->next;
		free(x->ahs);
		free(x);
	}
	c->held_tail = &c->held;
	pthread_mutex_lock(&c->mu);
	c->buffered = 0;
	pthread_mutex_unlock(&c->mu);
}
