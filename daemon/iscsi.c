/* daemon/iscsi.c: see iscsi.h. The full feature phase is in iscsi_ffp.c. */
#include <config.h>

#include "daemon/iscsi_int.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "daemon/log.h"
#include "daemon/netio.h"

/* ---- devices: one sbc_dev per LUN, shared by its sessions ---- */

static int dev_get(iscsi_srv *s, const char *name, iscsi_dev **out)
{
	pthread_mutex_lock(&s->mu);
	for (iscsi_dev *d = s->devs; d; d = d->next)
		if (!strcmp(d->name, name)) {
			d->refs++;
			*out = d;
			pthread_mutex_unlock(&s->mu);
			return 0;
		}
	/* Opened under mu so two logins to one LUN never make two devices (the PR and
	 * unit attention state must be one). lun_open takes appl.mu: order mu, appl.mu,
	 * which nothing takes the other way round. */
	lun *l = NULL;
	iscsi_dev *d = calloc(1, sizeof(*d));
	bks_err e = {0};
	int r = d ? lun_open(s->ls, name, &l) : -ENOMEM;
	if (r == 0 && (r = sbc_dev_open(l, &d->d, &e)) < 0)
		lun_close(l);  /* sbc_dev_open takes l over only when it succeeds */
	if (r < 0) {
		pthread_mutex_unlock(&s->mu);
		free(d);
		if (r != -ENOENT)
			LOG_W("iscsi: lun %s: %s", name, bks_errmsg(&e, r));
		return r;
	}
	snprintf(d->name, sizeof(d->name), "%s", name);
	d->refs = 1;
	d->next = s->devs;
	s->devs = d;
	*out = d;
	pthread_mutex_unlock(&s->mu);
	return 0;
}

static void dev_put(iscsi_srv *s, iscsi_dev *dev)
{
	if (!dev)
		return;
	pthread_mutex_lock(&s->mu);
	if (--dev->refs > 0) {
		pthread_mutex_unlock(&s->mu);
		return;
	}
	for (iscsi_dev **pp = &s->devs; *pp; pp = &(*pp)->next)
		if (*pp == dev) {
			*pp = dev->next;
			break;
		}
	/* Closed under mu: a login racing to reopen the LUN waits, so the write-back
	 * cache is flushed (lun_close) before the next device sees the LUN. */
	sbc_dev_close(dev->d);
	pthread_mutex_unlock(&s->mu);
	free(dev);
}

void iscsi_target_name(iscsi_srv *s, const char *lunname, char *out, size_t cap)
{
	if (snprintf(out, cap, "%s:%s", s->prefix, lunname) >= (int)cap)
		out[0] = '\0'; /* cannot happen: prefix <= 158, LUN names <= 64 bytes */
}

/* The LUN name of a target name, or NULL when it is not one of ours. iSCSI names
 * compare case-insensitively (they are normalized to lower case, §4.2.7.3). */
static const char *lun_of_target(iscsi_srv *s, const char *target)
{
	size_t pl = strlen(s->prefix);
	if (strncasecmp(target, s->prefix, pl) || target[pl] != ':' || !target[pl + 1] ||
	    strlen(target + pl + 1) > LUN_NAME_MAX)
		return NULL;
	return target + pl + 1;
}

/* ---- socket I/O, with a deadline on every wait ---- */

static netio conn_io(iscsi_conn *c)
{
	return (netio){.fd = c->fd, .stopping = &c->srv->stopping};
}

static int wait_fd(iscsi_conn *c, short ev, uint64_t deadline)
{
	netio io = conn_io(c);
	return netio_wait(&io, ev, deadline, 0);
}

static int recv_all(iscsi_conn *c, void *buf, size_t n, uint64_t deadline)
{
	netio io = conn_io(c);
	return netio_recv(&io, buf, n, deadline);
}

static int send_iov(iscsi_conn *c, struct iovec *iov, int n)
{
	netio io = conn_io(c);
	return netio_sendv(&io, iov, n, bks_now_ns() + ISCSI_SEND_MS * 1000000ull);
}

uint32_t iscsi_maxcmdsn_locked(const iscsi_conn *c)
{
	return c->expcmdsn + c->srv->queue_depth - 1 - c->active;
}

/* The padding and data digest are computed before the send lock is taken (a
 * worker's 256 KiB Data-In does not hold the others' responses meanwhile); the
 * sequence numbers go in under it, so StatSN is in the order the PDUs leave. */
int iscsi_send(iscsi_conn *c, iscsi_pdu *h, int adv, const void *data, uint32_t dlen)
{
	uint8_t hdr[ISCSI_BHS_LEN + ISCSI_DIGEST_LEN], tail[3 + ISCSI_DIGEST_LEN] = {0};
	struct iovec iov[3];
	int n = 0, hd = c->ffp && c->p.header_digest, dd = c->ffp && c->p.data_digest;
	uint32_t pad = iscsi_pad(dlen);
	size_t tl = pad;
	h->dlen = dlen;
	if (dlen && dd) {
		uint32_t crc = iscsi_crc32c_update(~0u, data, dlen);
		crc = iscsi_crc32c_update(crc, tail, pad);
		iscsi_crc_put(tail + pad, ~crc);
		tl += ISCSI_DIGEST_LEN;
	}
	pthread_mutex_lock(&c->smu);
	if (c->broken) {
		pthread_mutex_unlock(&c->smu);
		return -EPIPE;
	}
	h->statsn = c->statsn;
	if (adv)
		c->statsn++;
	pthread_mutex_lock(&c->mu);
	h->expcmdsn = c->expcmdsn;
	h->maxcmdsn = iscsi_maxcmdsn_locked(c);
	pthread_mutex_unlock(&c->mu);
	iscsi_bhs_encode(h, hdr);
	if (hd)
		iscsi_crc_put(hdr + ISCSI_BHS_LEN, iscsi_crc32c(hdr, ISCSI_BHS_LEN));
	iov[n++] = (struct iovec){hdr, ISCSI_BHS_LEN + (hd ? ISCSI_DIGEST_LEN : 0)};
	if (dlen) {
		iov[n++] = (struct iovec){(void *)data, dlen};
		if (tl)
			iov[n++] = (struct iovec){tail, tl};
	}
	int r = send_iov(c, iov, n);
	if (r < 0) {
		c->broken = 1;
		shutdown(c->fd, SHUT_RDWR);
	}
	pthread_mutex_unlock(&c->smu);
	return r;
}

int iscsi_reject(iscsi_conn *c, const iscsi_rx *q, int reason)
{
	iscsi_pdu h = {.op = ISCSI_OP_REJECT, .flags = ISCSI_F, .response = (uint8_t)reason,
	               .itt = ISCSI_RSVD_TAG};
	LOG_D("iscsi: %s: reject opcode 0x%02x (reason 0x%02x)", c->peer, q->bhs[0] & 0x3f,
	      reason);
	return iscsi_send(c, &h, 1, q->bhs, ISCSI_BHS_LEN);
}

/* Read one PDU. The first byte may take until idle_deadline; the rest must follow
 * within ISCSI_PDU_MS (-EAGAIN: no byte came by idle_deadline). Data segments over the negotiated limit (ISCSI_LOGIN_DSL
 * before full feature phase) end the connection before a byte of them is buffered.
 * Returns 0, -EPROTO for an opcode RFC 7143 does not define (q->bhs holds it, its
 * data was skipped), or another -errno to close. */
static int read_pdu(iscsi_conn *c, iscsi_rx *q, uint64_t idle_deadline)
{
	int r = wait_fd(c, POLLIN, idle_deadline);
	if (r < 0)
		return r == -ETIMEDOUT ? -EAGAIN : r;
	uint64_t deadline = bks_now_ns() + ISCSI_PDU_MS * 1000000ull;
	if ((r = recv_all(c, q->bhs, ISCSI_BHS_LEN, deadline)) < 0)
		return r;
	int dr = iscsi_bhs_decode(q->bhs, &q->h);
	uint32_t ahs = q->bhs[4] * 4u;
	uint32_t dlen = (uint32_t)q->bhs[5] << 16 | (uint32_t)q->bhs[6] << 8 | q->bhs[7];
	uint32_t limit = c->ffp ? c->p.max_recv_dsl_tgt : ISCSI_LOGIN_DSL;
	if (ahs > ISCSI_AHS_MAX || dlen > limit) {
		LOG_I("iscsi: %s: PDU with %u AHS and %u data bytes (limit %u): closed", c->peer,
		      ahs, dlen, limit);
		return -EMSGSIZE;
	}
	if (ahs && (r = recv_all(c, q->ahs, ahs, deadline)) < 0)
		return r;
	if (c->ffp && c->p.header_digest) {
		uint8_t d[4];
		if ((r = recv_all(c, d, 4, deadline)) < 0)
			return r;
		uint32_t crc = iscsi_crc32c_update(~0u, q->bhs, ISCSI_BHS_LEN);
		crc = ~iscsi_crc32c_update(crc, q->ahs, ahs);
		if (crc != iscsi_crc_get(d)) {
			/* At ErrorRecoveryLevel 0 a header that fails its digest cannot be
			 * trusted for its length: the connection ends (§7.8). */
			LOG_I("iscsi: %s: header digest error: closed", c->peer);
			return -EBADMSG;
		}
	}
	size_t need = (size_t)dlen + iscsi_pad(dlen) + (c->ffp && c->p.data_digest ? 4 : 0);
	if (need + 1 > c->rx_cap) {
		uint8_t *nb = realloc(c->rx, need + 1);
		if (!nb)
			return -ENOMEM;
		c->rx = nb;
		c->rx_cap = need + 1;
	}
	if (dlen && (r = recv_all(c, c->rx, need, deadline)) < 0)
		return r;
	if (dlen && c->ffp && c->p.data_digest) {
		uint32_t crc = ~iscsi_crc32c(c->rx, dlen + iscsi_pad(dlen));
		if (crc != iscsi_crc_get(c->rx + dlen + iscsi_pad(dlen))) {
			LOG_I("iscsi: %s: data digest error", c->peer);
			q->data = NULL;
			q->dlen = 0;
			(void)iscsi_reject(c, q, ISCSI_REJ_DIGEST);
			return -EBADMSG;
		}
	}
	c->rx[dlen] = 0;
	q->data = c->rx;
	q->dlen = dlen;
	c->last_rx_ns = bks_now_ns();
	return dr < 0 ? -EPROTO : 0;
}

/* ---- SendTargets ---- */

typedef struct st_ctx {
	char (*names)[LUN_NAME_MAX + 1];
	int n, cap;
} st_ctx;

static int st_collect(void *ctx, const lun_info *li)
{
	st_ctx *x = ctx;
	if (x->n == x->cap) {
		int nc = x->cap ? x->cap * 2 : 16;
		void *nn = realloc(x->names, (size_t)nc * sizeof(*x->names));
		if (!nn)
			return -ENOMEM;
		x->names = nn;
		x->cap = nc;
	}
	snprintf(x->names[x->n++], LUN_NAME_MAX + 1, "%s", li->name);
	return 0;
}

void iscsi_send_targets(iscsi_conn *c, const char *what, iscsi_text *t)
{
	iscsi_srv *s = c->srv;
	st_ctx x = {0};
	char tn[ISCSI_NAME_MAX + 1], addr[96];
	snprintf(addr, sizeof(addr), "%s,1", c->local);
	if (!c->discovery) { /* a normal session may ask for its own target only */
		if (!what[0] || !strcasecmp(what, c->target)) {
			iscsi_text_add(t, "TargetName", c->target);
			iscsi_text_add(t, "TargetAddress", addr);
		}
		return;
	}
	lun_list(s->ls, st_collect, &x);
	for (int i = 0; i < x.n; i++) {
		iscsi_target_name(s, x.names[i], tn, sizeof(tn));
		if (strcmp(what, "All") && strcasecmp(what, tn))
			continue;
		/* Listed only when its ACL admits this initiator (lun_acl_allows, the
		 * same test a login makes). */
		lun *l = NULL;
		if (lun_open(s->ls, x.names[i], &l) < 0)
			continue;
		int ok = lun_acl_allows(l, c->initiator);
		lun_close(l);
		if (!ok)
			continue;
		iscsi_text_add(t, "TargetName", tn);
		iscsi_text_add(t, "TargetAddress", addr);
	}
	free(x.names);
}

/* ---- login ---- */

static void login_fail_count(iscsi_srv *s, int status)
{
	pthread_mutex_lock(&s->mu);
	s->login_failures++;
	if (status == ISCSI_LOGIN_AUTH_FAIL)
		s->auth_failures++;
	pthread_mutex_unlock(&s->mu);
}

static int login_respond(iscsi_conn *c, const iscsi_rx *q, int status, int transit, int nsg,
                         const char *text, size_t tlen)
{
	const iscsi_pdu *rq = &q->h;
	iscsi_pdu h = {.op = ISCSI_OP_LOGIN_RSP, .itt = rq->itt, .tsih = c->tsih};
	int csg = (rq->flags >> 2) & 3;
	h.flags = (uint8_t)(csg << 2);
	if (status == ISCSI_LOGIN_OK && transit)
		h.flags |= (uint8_t)(ISCSI_LOGIN_T | nsg);
	memcpy(h.isid, rq->isid, 6);
	h.status_class = (uint8_t)(status >> 8);
	h.status_detail = (uint8_t)status;
	return iscsi_send(c, &h, 1, status == ISCSI_LOGIN_OK ? text : NULL,
	                  status == ISCSI_LOGIN_OK ? (uint32_t)tlen : 0);
}

/* A failed login: the response, a log line (never a secret), the counters. */
static int login_reject(iscsi_conn *c, const iscsi_rx *q, int status, const char *why)
{
	LOG_I("iscsi: %s: login of '%s' to '%s' refused (status %04x): %s", c->peer,
	      c->neg.p.initiator_name, c->neg.p.target_name, status, why);
	login_fail_count(c->srv, status);
	(void)login_respond(c, q, status, 0, 0, NULL, 0);
	return -EACCES;
}

/* A new normal session: end an older one of the same initiator, ISID and target
 * (session reinstatement, §6.3.5: at ErrorRecoveryLevel 0 the old one's tasks are
 * simply gone). */
static void reinstate(iscsi_conn *c)
{
	iscsi_srv *s = c->srv;
	pthread_mutex_lock(&s->mu);
	for (iscsi_conn *o = s->conns; o; o = o->next)
		if (o != c && o->ffp && !o->discovery && !memcmp(o->isid, c->isid, 6) &&
		    !strcasecmp(o->initiator, c->initiator) && !strcasecmp(o->target, c->target)) {
			LOG_I("iscsi: %s: reinstates the session of %s", c->peer, o->peer);
			shutdown(o->fd, SHUT_RDWR);
		}
	pthread_mutex_unlock(&s->mu);
}

/* The first Login Request decided the session's kind and target. */
static int login_bind(iscsi_conn *c, const iscsi_rx *q, char *why, size_t cap)
{
	iscsi_srv *s = c->srv;
	iscsi_params *p = &c->neg.p;
	if (p->session_type == ISCSI_SESS_NONE)
		p->session_type = ISCSI_SESS_NORMAL; /* the default (§13.21) */
	c->discovery = p->session_type == ISCSI_SESS_DISCOVERY;
	pthread_mutex_lock(&s->mu);
	snprintf(c->initiator, sizeof(c->initiator), "%s", p->initiator_name);
	snprintf(c->target, sizeof(c->target), "%s", c->discovery ? "" : p->target_name);
	pthread_mutex_unlock(&s->mu);
	if (q->h.tsih != 0) {
		/* Adding a connection to a session, or reinstating one: with one
		 * connection per session and no recovery, no such session lives on. */
		snprintf(why, cap, "TSIH %u: one connection per session", q->h.tsih);
		return ISCSI_LOGIN_NO_SESSION;
	}
	if (c->discovery)
		return ISCSI_LOGIN_OK;
	if (!p->target_name[0]) {
		snprintf(why, cap, "no TargetName");
		return ISCSI_LOGIN_MISSING_PARAM;
	}
	const char *ln = lun_of_target(s, p->target_name);
	int r = ln ? dev_get(s, ln, &c->dev) : -ENOENT;
	if (r < 0) {
		snprintf(why, cap, "no such target");
		return r == -ENOENT ? ISCSI_LOGIN_NOT_FOUND : ISCSI_LOGIN_UNAVAILABLE;
	}
	if (!lun_acl_allows(sbc_dev_lun(c->dev->d), p->initiator_name)) {
		snprintf(why, cap, "the LUN's ACL does not list the initiator");
		return ISCSI_LOGIN_FORBIDDEN;
	}
	return ISCSI_LOGIN_OK;
}

/* One Login Request. 0: go on (c->ffp set when the login completed), -errno to
 * close (after the response). */
static int login_pdu(iscsi_conn *c, iscsi_rx *q)
{
	iscsi_srv *s = c->srv;
	const iscsi_pdu *h = &q->h;
	int first = c->neg.cfg == NULL;
	char why[160] = "";

	if (h->op != ISCSI_OP_LOGIN_REQ) {
		LOG_I("iscsi: %s: opcode 0x%02x before login: closed", c->peer, h->op);
		return -EPROTO;
	}
	int csg = (h->flags >> 2) & 3, nsg = h->flags & 3, transit = !!(h->flags & ISCSI_LOGIN_T);
	if (first) {
		uint8_t chal[ISCSI_CHAP_CHALLENGE], id;
		if (bks_random(chal, sizeof(chal)) < 0 || bks_random(&id, 1) < 0)
			return login_reject(c, q, ISCSI_LOGIN_TARGET_ERR, "no random bytes");
		pthread_mutex_lock(&s->mu);
		c->tcfg = s->tcfg;
		memcpy(c->chap_user, s->chap_user, sizeof(c->chap_user));
		memcpy(c->chap_secret, s->chap_secret, sizeof(c->chap_secret));
		memcpy(c->mutual_user, s->mutual_user, sizeof(c->mutual_user));
		memcpy(c->mutual_secret, s->mutual_secret, sizeof(c->mutual_secret));
		pthread_mutex_unlock(&s->mu);
		c->tcfg.chap_user = c->chap_user;
		c->tcfg.chap_secret = c->chap_secret;
		c->tcfg.mutual_user = c->mutual_user;
		c->tcfg.mutual_secret = c->mutual_secret;
		iscsi_neg_init(&c->neg, &c->tcfg, id, chal);
		memcpy(c->isid, h->isid, 6);
		c->cid = h->cid;
		c->expcmdsn = h->cmdsn;
		if (bks_random(&c->statsn, sizeof(c->statsn)) < 0)
			c->statsn = 1;
	}
	/* Version 0 is the only one (§11.12.4). */
	if (h->status > 0) /* Version-min */
		return login_reject(c, q, ISCSI_LOGIN_BAD_VERSION, "version not 0");
	if (memcmp(c->isid, h->isid, 6) || csg == 2 || (transit && (nsg == 2 || nsg < csg)) ||
	    csg == ISCSI_FFP)
		return login_reject(c, q, ISCSI_LOGIN_INIT_ERR, "bad stages or ISID changed");
	/* Text may continue over several PDUs (C bit): gathered, each answered empty. */
	if (c->txt_in_len + q->dlen > ISCSI_TEXT_MAX)
		return login_reject(c, q, ISCSI_LOGIN_INIT_ERR, "login text over 16 KiB");
	if (q->dlen) {
		char *nb = realloc(c->txt_in, c->txt_in_len + q->dlen);
		if (!nb)
			return login_reject(c, q, ISCSI_LOGIN_NO_RESOURCES, "out of memory");
		c->txt_in = nb;
		memcpy(c->txt_in + c->txt_in_len, q->data, q->dlen);
		c->txt_in_len += q->dlen;
	}
	if (h->flags & ISCSI_LOGIN_C) {
		if (transit)
			return login_reject(c, q, ISCSI_LOGIN_INIT_ERR, "T and C both set");
		return login_respond(c, q, ISCSI_LOGIN_OK, 0, 0, NULL, 0) < 0 ? -EIO : 0;
	}
	iscsi_kv kv[ISCSI_KV_MAX];
	int n = iscsi_text_parse(c->txt_in, c->txt_in_len, kv, ISCSI_KV_MAX);
	if (n < 0)
		return login_reject(c, q, ISCSI_LOGIN_INIT_ERR, "malformed key=value text");
	char *out = malloc(ISCSI_LOGIN_DSL);
	if (!out)
		return login_reject(c, q, ISCSI_LOGIN_NO_RESOURCES, "out of memory");
	iscsi_text t;
	iscsi_text_init(&t, out, ISCSI_LOGIN_DSL);
	int st = iscsi_neg_login(&c->neg, csg, kv, n, &t);
	snprintf(why, sizeof(why), "%s", c->neg.why);
	c->txt_in_len = 0;
	if (st == ISCSI_LOGIN_OK && first)
		st = login_bind(c, q, why, sizeof(why));
	if (st == ISCSI_LOGIN_OK && first && !c->discovery) {
		/* §13.9: the first response of a normal session names the portal group. */
		iscsi_text_add(&t, "TargetPortalGroupTag", "1");
	}
	/* Leaving the security stage needs the authentication done. */
	if (st == ISCSI_LOGIN_OK && transit && csg == ISCSI_SEC && !iscsi_neg_auth_ok(&c->neg) &&
	    c->neg.auth != 2 && c->neg.auth != 3) {
		st = ISCSI_LOGIN_AUTH_FAIL;
		snprintf(why, sizeof(why), "CHAP is required");
	}
	if (st == ISCSI_LOGIN_OK && csg == ISCSI_OPER && !iscsi_neg_auth_ok(&c->neg)) {
		st = ISCSI_LOGIN_AUTH_FAIL;
		snprintf(why, sizeof(why), "the security stage was skipped, CHAP is required");
	}
	int agree = transit && iscsi_neg_auth_ok(&c->neg);
	if (st == ISCSI_LOGIN_OK && agree && nsg == ISCSI_FFP) {
		iscsi_neg_finish(&c->neg, &t);
		if (t.err) {
			st = ISCSI_LOGIN_TARGET_ERR;
			snprintf(why, sizeof(why), "the answer did not fit");
		}
	}
	if (st != ISCSI_LOGIN_OK) {
		free(out);
		return login_reject(c, q, st, why);
	}
	if (agree && nsg == ISCSI_FFP) {
		pthread_mutex_lock(&s->mu);
		c->tsih = ++s->next_tsih ? s->next_tsih : ++s->next_tsih;
		c->nx.id = ++s->next_nexus;
		s->logins++;
		pthread_mutex_unlock(&s->mu);
	}
	int r = login_respond(c, q, ISCSI_LOGIN_OK, agree, nsg, out, t.len);
	free(out);
	if (r < 0)
		return r;
	if (agree && nsg == ISCSI_FFP) {
		c->p = c->neg.p;
		c->ffp = 1;
		free(c->txt_in);
		c->txt_in = NULL;
		/* Secrets are not kept past the login. */
		memset(c->chap_secret, 0, sizeof(c->chap_secret));
		memset(c->mutual_secret, 0, sizeof(c->mutual_secret));
		if (!c->discovery) {
			c->nx.initiator = c->initiator;
			c->nx.target = c->target;
			memcpy(c->nx.isid, c->isid, 6);
			c->nx.tpgt = 1;
			reinstate(c);
			sbc_nexus_add(c->dev->d, &c->nx);
			lun_session(sbc_dev_lun(c->dev->d), 1);
		}
		LOG_I("iscsi: %s: %s logged in%s%s (%s, digests %s/%s, burst %u)", c->peer,
		      c->initiator, c->discovery ? " for discovery" : " to ", c->target,
		      c->neg.auth == 4 ? "CHAP" : "no auth", c->p.header_digest ? "CRC32C" : "none",
		      c->p.data_digest ? "CRC32C" : "none", c->p.max_burst);
	}
	return 0;
}

/* ---- connections ---- */

static void *conn_main(void *arg)
{
	iscsi_conn *c = arg;
	iscsi_srv *s = c->srv;
	iscsi_rx *q = malloc(sizeof(*q));
	uint64_t login_deadline = bks_now_ns() + (uint64_t)s->login_ms * 1000000ull;
	int r = q ? 0 : -ENOMEM;
	c->last_rx_ns = bks_now_ns();
	while (r == 0 && !c->closing) {
		if (!c->ffp) {
			/* Not logged in: the whole login within login_timeout, and only Login
			 * PDUs of at most ISCSI_LOGIN_DSL bytes. */
			r = read_pdu(c, q, login_deadline);
			if (r == -EAGAIN || (r == 0 && bks_now_ns() > login_deadline)) {
				LOG_I("iscsi: %s: no login within %u ms: closed", c->peer, s->login_ms);
				r = -ETIMEDOUT;
			}
			if (r == 0)
				r = login_pdu(c, q);
			continue;
		}
		/* Logged in: wait in one-second steps so pings and task deadlines run. */
		uint64_t now = bks_now_ns();
		r = read_pdu(c, q, now + 1000000000ull);
		if (r == -EAGAIN) {
			r = iscsi_ffp_idle(c, bks_now_ns());
			continue;
		}
		if (r == -EPROTO) { /* an opcode that does not exist: Reject, go on */
			r = iscsi_reject(c, q, ISCSI_REJ_NOT_SUPPORTED);
			continue;
		}
		if (r == 0)
			r = iscsi_ffp_pdu(c, q);
		if (r == 0)
			r = iscsi_ffp_idle(c, bks_now_ns());
	}
	if (c->ffp && s->stopping && !c->closing) {
		/* Shutting down: ask the initiator to log out (it will reconnect later). */
		iscsi_pdu h = {.op = ISCSI_OP_ASYNC, .flags = ISCSI_F, .itt = ISCSI_RSVD_TAG,
		               .async_event = ISCSI_ASYNC_LOGOUT_REQ, .param = {0, 2, 0}};
		h.lun = 0;
		(void)iscsi_send(c, &h, 1, NULL, 0);
	}
	if (r < 0 && r != -ECONNRESET && r != -ECANCELED)
		LOG_D("iscsi: %s: closed (%s)", c->peer, strerror(-r));
	iscsi_ffp_end(c);
	if (c->dev) {
		if (c->ffp) {
			sbc_nexus_remove(c->dev->d, &c->nx);
			lun_session(sbc_dev_lun(c->dev->d), -1);
		}
		dev_put(s, c->dev);
		c->dev = NULL;
	}
	free(q);
	shutdown(c->fd, SHUT_RDWR);
	pthread_mutex_lock(&s->mu);
	c->done = 1;
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

static void conn_free(iscsi_conn *c)
{
	close(c->fd);
	free(c->rx);
	free(c->txt_in);
	free(c->txt_out);
	pthread_mutex_destroy(&c->smu);
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->wcv);
	pthread_cond_destroy(&c->rcv);
	free(c);
}

/* Join and free finished connections (under s->mu). */
static void reap_locked(iscsi_srv *s, int all)
{
	for (iscsi_conn **pp = &s->conns; *pp;) {
		iscsi_conn *c = *pp;
		if (!c->done && !all) {
			pp = &c->next;
			continue;
		}
		*pp = c->next;
		s->nconns--;
		pthread_mutex_unlock(&s->mu);
		pthread_join(c->th, NULL);
		pthread_mutex_lock(&s->mu);
		conn_free(c);
	}
}

static void addr_text(const struct sockaddr_storage *ss, char *out, size_t cap, int with_port)
{
	char host[INET6_ADDRSTRLEN] = "?";
	int port;
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
		inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
		port = ntohs(a->sin_port);
		snprintf(out, cap, with_port ? "%s:%d" : "%s", host, port);
	} else {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
		inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
		port = ntohs(a->sin6_port);
		snprintf(out, cap, "[%s]:%d", host, port);
	}
}

static void accept_one(iscsi_srv *s)
{
	struct sockaddr_storage ss, ls;
	socklen_t sl = sizeof(ss), ll = sizeof(ls);
	int fd = accept4(s->lfd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return;
	iscsi_conn *c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return;
	}
	c->srv = s;
	c->fd = fd;
	pthread_mutex_init(&c->smu, NULL);
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->wcv, NULL);
	pthread_cond_init(&c->rcv, NULL);
	c->tasks_tail = &c->tasks;
	c->held_tail = &c->held;
	c->next_ttt = 1;
	addr_text(&ss, c->peer, sizeof(c->peer), 1);
	if (getsockname(fd, (struct sockaddr *)&ls, &ll) == 0)
		addr_text(&ls, c->local, sizeof(c->local), 1);
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	pthread_mutex_lock(&s->mu);
	if ((uint32_t)s->nconns >= s->max_conns) {
		s->conns_refused++;
		pthread_mutex_unlock(&s->mu);
		LOG_W("iscsi: %s refused: max_connections (%u) reached", c->peer, s->max_conns);
		conn_free(c);
		return;
	}
	if (pthread_create(&c->th, NULL, conn_main, c) != 0) {
		pthread_mutex_unlock(&s->mu);
		conn_free(c);
		return;
	}
	c->next = s->conns;
	s->conns = c;
	s->nconns++;
	s->conns_total++;
	pthread_mutex_unlock(&s->mu);
}

static void *accept_main(void *arg)
{
	iscsi_srv *s = arg;
	while (!s->stopping) {
		struct pollfd pf[2] = {{.fd = s->lfd, .events = POLLIN},
		                       {.fd = s->wake[0], .events = POLLIN}};
		int pr = poll(pf, 2, 1000);
		if (s->stopping)
			break;
		if (pr > 0 && (pf[0].revents & POLLIN))
			accept_one(s);
		pthread_mutex_lock(&s->mu);
		reap_locked(s, 0);
		pthread_mutex_unlock(&s->mu);
	}
	return NULL;
}

static int listen_on(const cfg_addr *a, int *fdout, int *bound, bks_err *e)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	memset(&ss, 0, sizeof(ss));
	int fam = a->family == CFG_AF_INET6 ? AF_INET6 : AF_INET;
	if (fam == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(a->port);
		inet_pton(AF_INET, a->family == CFG_AF_LOCALHOST ? "127.0.0.1" : a->host,
		          &s4->sin_addr);
		sl = sizeof(*s4);
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(a->port);
		inet_pton(AF_INET6, a->host, &s6->sin6_addr);
		sl = sizeof(*s6);
	}
	int fd = socket(fam, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), one = 1;
	if (fd < 0)
		return bks_fail(e, -errno, "iscsi: socket: %s", strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 64) < 0) {
		int err = errno;
		close(fd);
		return bks_fail(e, -err, "iscsi: listen on %s:%d: %s", a->host, a->port,
		                strerror(err));
	}
	sl = sizeof(ss);
	getsockname(fd, (struct sockaddr *)&ss, &sl);
	*bound = ntohs(fam == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port :
	                                ((struct sockaddr_in6 *)&ss)->sin6_port);
	*fdout = fd;
	return 0;
}

static void take_chap(iscsi_srv *s, const bks_cfg *cfg)
{
	snprintf(s->chap_user, sizeof(s->chap_user), "%s", cfg->iscsi_chap_user);
	snprintf(s->chap_secret, sizeof(s->chap_secret), "%s", cfg->iscsi_chap_secret);
	snprintf(s->mutual_user, sizeof(s->mutual_user), "%s", cfg->iscsi_mutual_user);
	snprintf(s->mutual_secret, sizeof(s->mutual_secret), "%s", cfg->iscsi_mutual_secret);
}

void iscsi_reload(iscsi_srv *s, const bks_cfg *cfg)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	take_chap(s, cfg);
	pthread_mutex_unlock(&s->mu);
	LOG_I("iscsi: CHAP %s", cfg->iscsi_chap_secret[0] ? (cfg->iscsi_mutual_secret[0] ?
	      "required (mutual available)" : "required") : "off");
}

int iscsi_start(appl *ap, lun_set *ls, iscsi_srv **out, bks_err *e)
{
	const bks_cfg *cfg = &ap->cfg;
	*out = NULL;
	if (!cfg->iscsi_enabled)
		return 0;
	if (!cfg->iscsi_listen_set)
		return bks_fail(e, -EINVAL, "iscsi: enabled with an empty [iscsi] listen");
	iscsi_srv *s = calloc(1, sizeof(*s));
	if (!s)
		return bks_fail(e, -ENOMEM, "iscsi: out of memory");
	int r;
	s->ap = ap;
	s->ls = ls;
	s->lfd = -1;
	s->wake[0] = s->wake[1] = -1;
	pthread_mutex_init(&s->mu, NULL);
	s->max_conns = cfg->iscsi_max_connections;
	s->queue_depth = cfg->iscsi_queue_depth;
	s->login_ms = cfg->iscsi_login_timeout_s * 1000u;
	s->nop_ms = cfg->iscsi_nop_interval_s * 1000u;
	s->max_buffer = cfg->iscsi_max_buffer;
	s->tcfg = (iscsi_target_cfg){
		.max_recv_dsl = cfg->iscsi_max_recv_dsl, .max_burst = cfg->iscsi_max_burst,
		.first_burst = cfg->iscsi_first_burst, .immediate_data = 1, .initial_r2t = 0,
		.max_outstanding_r2t = ISCSI_R2T_MAX};
	take_chap(s, cfg);
	if (cfg->iscsi_iqn_prefix[0]) {
		snprintf(s->prefix, sizeof(s->prefix), "%s", cfg->iscsi_iqn_prefix);
	} else {
		/* iSCSI names are lower case and have no '_' (§4.2.7.1). */
		snprintf(s->prefix, sizeof(s->prefix), "iqn.2026-12.io.bkstor:%s", cfg->array_name);
		for (char *p = s->prefix; *p; p++)
			*p = *p == '_' ? '-' : (char)tolower((unsigned char)*p);
	}
	if (!iscsi_name_ok(s->prefix)) {
		r = bks_fail(e, -EINVAL, "iscsi: iqn_prefix '%s' is not an iSCSI name (iqn.YYYY-MM."
		             "reversed.domain[:...], lower case)", s->prefix);
		goto fail;
	}
	if ((r = listen_on(&cfg->iscsi_listen, &s->lfd, &s->port, e)) < 0)
		goto fail;
	if (pipe2(s->wake, O_CLOEXEC) < 0) {
		r = bks_fail(e, -errno, "iscsi: pipe: %s", strerror(errno));
		goto fail;
	}
	if (pthread_create(&s->th, NULL, accept_main, s) != 0) {
		r = bks_fail(e, -EAGAIN, "iscsi: cannot start a thread");
		goto fail;
	}
	LOG_I("iscsi: serving on %s:%d, targets %s:<lun>, CHAP %s", cfg->iscsi_listen.host,
	      s->port, s->prefix, s->chap_secret[0] ? "required" : "off");
	*out = s;
	return 0;
fail:
	if (s->lfd >= 0)
		close(s->lfd);
	if (s->wake[0] >= 0) {
		close(s->wake[0]);
		close(s->wake[1]);
	}
	pthread_mutex_destroy(&s->mu);
	free(s);
	return r;
}

void iscsi_stop(iscsi_srv *s)
{
	if (!s)
		return;
	s->stopping = 1;
	if (write(s->wake[1], "x", 1) < 0) { /* the accept loop polls each second anyway */
	}
	pthread_join(s->th, NULL);
	close(s->lfd);
	/* The connection threads see stopping within a second, send their Async logout
	 * request and end; reap waits for them. */
	pthread_mutex_lock(&s->mu);
	reap_locked(s, 1);
	pthread_mutex_unlock(&s->mu);
	BKS_PANIC_IF(s->devs != NULL, "iscsi: a device outlived its sessions");
	close(s->wake[0]);
	close(s->wake[1]);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

int iscsi_port(iscsi_srv *s)
{
	return s ? s->port : 0;
}

void iscsi_status_json(iscsi_srv *s, json *j)
{
	json_obj_begin(j, "iscsi");
	json_bool(j, "enabled", s != NULL);
	if (!s) {
		json_obj_end(j);
		return;
	}
	json_int(j, "port", s->port);
	pthread_mutex_lock(&s->mu);
	json_str(j, "iqn_prefix", s->prefix);
	json_int(j, "connections", s->nconns);
	json_uint(j, "logins", s->logins);
	json_uint(j, "login_failures", s->login_failures);
	json_uint(j, "auth_failures", s->auth_failures);
	json_arr_begin(j, "sessions");
	for (iscsi_conn *c = s->conns; c; c = c->next) {
		if (!c->ffp || c->done)
			continue;
		json_obj_begin(j, NULL);
		json_str(j, "initiator", c->initiator);
		json_str(j, "target", c->discovery ? "(discovery)" : c->target);
		json_str(j, "address", c->peer);
		json_uint(j, "bytes_read", __atomic_load_n(&c->bytes_read, __ATOMIC_RELAXED));
		json_uint(j, "bytes_written", __atomic_load_n(&c->bytes_written, __ATOMIC_RELAXED));
		json_uint(j, "commands", __atomic_load_n(&c->commands, __ATOMIC_RELAXED));
		json_uint(j, "running_max", __atomic_load_n(&c->running_max, __ATOMIC_RELAXED));
		json_uint(j, "reordered", __atomic_load_n(&c->reordered, __ATOMIC_RELAXED));
		json_obj_end(j);
	}
	json_arr_end(j);
	pthread_mutex_unlock(&s->mu);
	json_obj_end(j);
}
