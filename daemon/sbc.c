/* daemon/sbc.c: see sbc.h. The device server of one LUN: SPC-4 and SBC-3 commands
 * on a lun (daemon/lun.h), unit attentions per I_T nexus, the mode pages, and
 * persistent reservations (SPC-4 5.9) kept durable through lun_pr_save.
 *
 * Locks: d->mu guards the nexus list, the unit attentions, the mode values and the
 * reservations; it is never held across lun I/O (which takes appl.mu) except by
 * the reservation commands, whose save must be durable before the answer. d->wl
 * orders COMPARE AND WRITE against the other writes: writes take it shared, COMPARE
 * AND WRITE exclusive, so no write can land between its read and its write; a MODE
 * SELECT that turns the write cache off takes it exclusive for its sync (below).
 *
 * Reservation state survives a restart or a crash: every PERSISTENT RESERVE OUT that
 * changes it saves the whole state (pr_save) before the answer; a crash before the
 * save completes leaves the previous state, and the initiator saw no GOOD. The
 * reservations are in sbc_pr.c.
 */
#include <config.h>

#include "daemon/sbc_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/endian.h"
#include "daemon/log.h"
#include "proto/scsi.h"

#define MAX_UNMAP_DESCS 256
#define MAX_UNMAP_BYTES (1ull << 30)    /* per descriptor ... */
#define MAX_UNMAP_BLOCKS (1u << 20)     /* ... and at most this many blocks (SBC-3 limits
                                         * initiators expect: libiscsi checks <= 1 Mi) */
#define MAX_WS_BYTES (1ull << 30)       /* WRITE SAME blocks per command, in bytes ... */
#define MAX_WS_BLOCKS 65535u            /* ... and blocks: a 16-bit count, as WRITE SAME
                                         * (10) has, so every initiator's write of the
                                         * same range fits SBC_MAX_XFER-limited tests */
#define OPT_XFER_BYTES (1u << 20)
#define GLS_DESCS 64                    /* GET LBA STATUS descriptors at most */

void sbc_who_of(const sbc_nexus *nx, pr_id *w)
{
	memset(w, 0, sizeof(*w));
	snprintf(w->name, sizeof(w->name), "%s", nx && nx->initiator ? nx->initiator : "");
	if (nx) {
		memcpy(w->isid, nx->isid, 6);
		w->tpgt = nx->tpgt;
	}
}

int sbc_who_eq(const pr_id *a, const pr_id *b)
{
	return !strcasecmp(a->name, b->name) && !memcmp(a->isid, b->isid, 6) &&
	       a->tpgt == b->tpgt;
}

/* --- unit attentions (d->mu held) --- */

static struct nx *nx_find(sbc_dev *d, uint64_t id)
{
	for (struct nx *n = d->nexuses; n; n = n->next)
		if (n->id == id)
			return n;
	return NULL;
}

static void ua_push(struct nx *n, uint16_t asc)
{
	for (int i = 0; i < n->nua; i++)
		if (n->ua[i] == asc)
			return;
	if (n->nua < UA_MAX)
		n->ua[n->nua++] = asc;
}

/* To every nexus but skip (0: all); who: only the nexuses of that initiator port. */
void sbc_ua_all(sbc_dev *d, uint64_t skip, const pr_id *who, uint16_t asc)
{
	for (struct nx *n = d->nexuses; n; n = n->next)
		if (n->id != skip && (!who || sbc_who_eq(&n->who, who)))
			ua_push(n, asc);
}

static int ua_pop(sbc_dev *d, uint64_t id, uint16_t *asc)
{
	struct nx *n = nx_find(d, id);
	if (!n || n->nua == 0)
		return 0;
	*asc = n->ua[0];
	memmove(n->ua, n->ua + 1, (size_t)(n->nua - 1) * sizeof(n->ua[0]));
	n->nua--;
	return 1;
}

/* --- open, close, nexuses --- */

/* The mode values a MODE SELECT changes are saved in the LUN's record (lun_set_mode)
 * before GOOD, every change: docs/iscsi.md "Mode pages". */
static void mode_from_lun(scsi_mode *m, const lun_mode *lm)
{
	memset(m, 0, sizeof(*m));
	m->wce = lm->wce;
	m->perf = lm->perf, m->dexcpt = lm->dexcpt, m->test = lm->test, m->mrie = lm->mrie;
	m->interval = lm->interval, m->report_count = lm->report_count;
}

static void mode_to_lun(lun_mode *lm, const scsi_mode *m)
{
	memset(lm, 0, sizeof(*lm));
	lm->wce = m->wce;
	lm->perf = m->perf, lm->dexcpt = m->dexcpt, lm->test = m->test, lm->mrie = m->mrie;
	lm->interval = m->interval, lm->report_count = m->report_count;
}

int sbc_dev_open(lun *l, sbc_dev **out, bks_err *e)
{
	lun_info li;
	sbc_dev *d = calloc(1, sizeof(*d));
	if (!d) {
		lun_close(l);
		return bks_fail(e, -ENOMEM, "out of memory");
	}
	d->l = l;
	pthread_mutex_init(&d->mu, NULL);
	pthread_rwlock_init(&d->wl, NULL);
	lun_get_info(l, &li);
	d->last_size = li.size;
	/* The saved values (WCE=1 for a LUN no initiator changed): a write cache turned
	 * off stays off across a restart, so writes acknowledged without SYNCHRONIZE
	 * CACHE (which such an initiator never sends) are never left in the cache. */
	lun_mode lm;
	lun_get_mode(l, &lm);
	mode_from_lun(&d->mode, &lm);
	d->holder = -1;
	int r = sbc_pr_load(d, li.name);
	if (r < 0) {
		sbc_dev_close(d);
		return bks_fail(e, r, "out of memory");
	}
	*out = d;
	return 0;
}

void sbc_dev_close(sbc_dev *d)
{
	if (!d)
		return;
	while (d->nexuses) {
		struct nx *n = d->nexuses;
		d->nexuses = n->next;
		free(n);
	}
	lun_close(d->l);
	pthread_mutex_destroy(&d->mu);
	pthread_rwlock_destroy(&d->wl);
	free(d);
}

lun *sbc_dev_lun(sbc_dev *d)
{
	return d->l;
}

void sbc_nexus_add(sbc_dev *d, const sbc_nexus *nx)
{
	struct nx *n = calloc(1, sizeof(*n));
	if (!n)
		return; /* commands of an unknown nexus just see no unit attention */
	n->id = nx->id;
	sbc_who_of(nx, &n->who);
	n->ua[n->nua++] = SCSI_ASC_POWER_ON_OCCURRED;
	pthread_mutex_lock(&d->mu);
	n->next = d->nexuses;
	d->nexuses = n;
	pthread_mutex_unlock(&d->mu);
}

void sbc_nexus_remove(sbc_dev *d, const sbc_nexus *nx)
{
	pthread_mutex_lock(&d->mu);
	for (struct nx **pp = &d->nexuses; *pp; pp = &(*pp)->next)
		if ((*pp)->id == nx->id) {
			struct nx *n = *pp;
			*pp = n->next;
			free(n);
			break;
		}
	pthread_mutex_unlock(&d->mu);
}

void sbc_reset(sbc_dev *d, const sbc_nexus *nx)
{
	int r = lun_sync(d->l);
	if (r < 0)
		LOG_W("sbc: syncing at a reset: %s", strerror(-r));
	pthread_mutex_lock(&d->mu);
	/* SPC-4: a reset brings back the saved values; every change is saved, so they
	 * are the current ones (never the defaults: that would turn a write cache the
	 * initiator turned off back on behind its back). */
	lun_mode lm;
	lun_get_mode(d->l, &lm);
	mode_from_lun(&d->mode, &lm);
	sbc_ua_all(d, nx ? nx->id : 0, NULL, SCSI_ASC_BUS_DEVICE_RESET);
	pthread_mutex_unlock(&d->mu);
}

/* --- what a CDB transfers --- */

static uint32_t blocks_bytes(uint64_t n, uint32_t bs)
{
	uint64_t b = n * bs;
	return b > UINT32_MAX ? UINT32_MAX : (uint32_t)b;
}

void sbc_xfer(sbc_dev *d, const uint8_t *cdb, size_t cdb_len, int *dir, uint32_t *bytes)
{
	scsi_cdb c;
	int field;
	uint64_t size;
	uint32_t bs;
	*dir = SBC_DIR_NONE;
	*bytes = 0;
	if (scsi_cdb_parse(cdb, cdb_len, &c, &field) < 0)
		return;
	lun_geometry(d->l, &size, &bs);
	switch (c.op) {
	case SCSI_READ6: case SCSI_READ10: case SCSI_READ12: case SCSI_READ16:
		*dir = SBC_DIR_READ, *bytes = blocks_bytes(c.nblocks, bs);
		break;
	case SCSI_WRITE6: case SCSI_WRITE10: case SCSI_WRITE12: case SCSI_WRITE16:
	case SCSI_WRITE_VERIFY10: case SCSI_WRITE_VERIFY12: case SCSI_WRITE_VERIFY16:
		*dir = SBC_DIR_WRITE, *bytes = blocks_bytes(c.nblocks, bs);
		break;
	case SCSI_VERIFY10: case SCSI_VERIFY12: case SCSI_VERIFY16:
		if (c.bytchk == 1)
			*dir = SBC_DIR_WRITE, *bytes = blocks_bytes(c.nblocks, bs);
		else if (c.bytchk == 3)
			*dir = SBC_DIR_WRITE, *bytes = c.nblocks ? bs : 0;
		break;
	case SCSI_WRITE_SAME10: case SCSI_WRITE_SAME16:
		if (!c.ndob)
			*dir = SBC_DIR_WRITE, *bytes = bs;
		break;
	case SCSI_COMPARE_AND_WRITE:
		/* 0 blocks: take what the initiator sends (256 blocks wrap to 0 in the 8-bit
		 * field: sbc_exec refuses a 0-block command that came with data). */
		*dir = SBC_DIR_WRITE, *bytes = blocks_bytes(2ull * (c.nblocks ? c.nblocks : 256), bs);
		break;
	case SCSI_UNMAP: case SCSI_MODE_SELECT6: case SCSI_MODE_SELECT10: case SCSI_PR_OUT:
		*dir = c.alloc ? SBC_DIR_WRITE : SBC_DIR_NONE, *bytes = c.alloc;
		break;
	case SCSI_INQUIRY: case SCSI_REQUEST_SENSE: case SCSI_MODE_SENSE6:
	case SCSI_MODE_SENSE10: case SCSI_PR_IN: case SCSI_REPORT_LUNS:
	case SCSI_MAINTENANCE_IN: case SCSI_READ_CAPACITY10: case SCSI_SERVICE_ACTION_IN16:
		*dir = c.alloc ? SBC_DIR_READ : SBC_DIR_NONE, *bytes = c.alloc;
		break;
	default:
		break;
	}
	if (*bytes > SBC_MAX_XFER && *dir != SBC_DIR_NONE &&
	    (c.rw || c.op == SCSI_COMPARE_AND_WRITE || c.op == SCSI_VERIFY10 ||
	     c.op == SCSI_VERIFY12 || c.op == SCSI_VERIFY16))
		*bytes = SBC_MAX_XFER + 1u; /* sbc_exec refuses it; the transport buffers nothing */
}

/* --- the commands --- */

static int range_bad(struct ctx *x, uint64_t lba, uint64_t n)
{
	return lba > x->nblocks || n > x->nblocks - lba;
}

static void fill_ident(struct ctx *x, scsi_ident *id, char *tname, size_t tcap)
{
	memset(id, 0, sizeof(*id));
	id->vendor = "BKSTOR";
	id->product = "LUN";
	id->revision = "0001";
	id->serial = x->li.serial;
	id->naa = x->li.naa;
	if (x->c->nx && x->c->nx->target) {
		snprintf(tname, tcap, "%s", x->c->nx->target);
		id->target_name = tname;
	}
	id->block_size = x->li.block_size;
	id->nblocks = x->nblocks;
	id->max_xfer_blocks = SBC_MAX_XFER / x->li.block_size;
	id->opt_xfer_blocks = OPT_XFER_BYTES / x->li.block_size;
	id->max_unmap_blocks = (uint32_t)BKS_MIN(MAX_UNMAP_BYTES / x->li.block_size,
	                                         (uint64_t)MAX_UNMAP_BLOCKS);
	id->max_unmap_descs = MAX_UNMAP_DESCS;
	id->unmap_granularity = 1;
	id->max_write_same_blocks = BKS_MIN(MAX_WS_BYTES / x->li.block_size,
	                                    (uint64_t)MAX_WS_BLOCKS);
	id->wce = x->d->mode.wce;
}

static void cmd_inquiry(struct ctx *x)
{
	sbc_cmd *c = x->c;
	const uint8_t *cdb = c->cdb;
	scsi_ident id;
	char tname[256];
	uint8_t buf[512];
	uint32_t n;
	if (cdb[1] & 0x02) { /* CMDDT: obsolete */
		bad_cdb(c, 1, 1);
		return;
	}
	/* The identity (serial, NAA designator): the full info, here only. */
	lun_get_info(x->d->l, &x->li);
	fill_ident(x, &id, tname, sizeof(tname));
	if (!(cdb[1] & 1)) {
		if (cdb[2]) {
			bad_cdb(c, 2, -1);
			return;
		}
		n = scsi_inquiry_std(&id, buf, sizeof(buf));
		if (c->lun != 0)
			buf[0] = 0x7f; /* no logical unit here */
	} else if (!(n = scsi_inquiry_vpd(&id, cdb[2], buf, sizeof(buf)))) {
		bad_cdb(c, 2, -1);
		return;
	}
	din(c, buf, n, x->k.alloc);
	ok(c);
}

static void cmd_read_capacity(struct ctx *x, int sixteen)
{
	sbc_cmd *c = x->c;
	uint8_t b[32];
	memset(b, 0, sizeof(b));
	uint64_t last = x->nblocks ? x->nblocks - 1 : 0;
	if (!sixteen) {
		/* PMI is obsolete in SBC-3; an LBA without it must be 0. */
		if (!(c->cdb[8] & 1) && x->k.lba) {
			bad_cdb(c, 2, -1);
			return;
		}
		be_put32(b, last > 0xfffffffeull ? 0xffffffffu : (uint32_t)last);
		be_put32(b + 4, x->li.block_size);
		din(c, b, 8, 8);
	} else {
		be_put64(b, last);
		be_put32(b + 8, x->li.block_size);
		b[14] = 0x80 | 0x40; /* LBPME, LBPRZ */
		din(c, b, 32, x->k.alloc);
	}
	pthread_mutex_lock(&x->d->mu);
	x->d->last_size = x->li.size;
	pthread_mutex_unlock(&x->d->mu);
	ok(c);
}

/* READ 6/10/12/16 */
static void cmd_read(struct ctx *x)
{
	sbc_cmd *c = x->c;
	uint32_t bs = x->li.block_size;
	if (range_bad(x, x->k.lba, x->k.nblocks)) {
		lba_range(c);
		return;
	}
	if ((uint64_t)x->k.nblocks * bs > SBC_MAX_XFER) {
		bad_cdb(c, c->cdb[0] == SCSI_READ16 ? 10 : c->cdb[0] == SCSI_READ12 ? 6 : 7, -1);
		return;
	}
	uint32_t len = x->k.nblocks * bs;
	if (len == 0) {
		ok(c);
		return;
	}
	/* Into the initiator's buffer when it has room; else the whole read and its
	 * head (the transport reports the residual). */
	uint8_t *p = c->din_cap >= len ? c->din : malloc(len);
	if (!p) {
		io_error(c, -ENOMEM, 0);
		return;
	}
	int r = lun_read(x->d->l, x->k.lba * bs, p, len);
	if (r == 0) {
		if (p != c->din && c->din_cap)
			memcpy(c->din, p, c->din_cap);
		c->din_len = BKS_MIN(len, c->din_cap);
		ok(c);
	} else {
		io_error(c, r, 0);
	}
	if (p != c->din)
		free(p);
}

/* Write n bytes at byte offset off (the shared write lock held by the caller). */
static int do_write(struct ctx *x, uint64_t off, const uint8_t *p, uint32_t n, int fua)
{
	pthread_mutex_lock(&x->d->mu);
	int wt = !x->d->mode.wce; /* write cache disabled: every write is written through */
	pthread_mutex_unlock(&x->d->mu);
	return lun_write(x->d->l, off, p, n, fua || wt);
}

/* WRITE 6/10/12/16 and WRITE AND VERIFY 10/12/16 */
static void cmd_write(struct ctx *x, int verify)
{
	sbc_cmd *c = x->c;
	uint32_t bs = x->li.block_size;
	if (range_bad(x, x->k.lba, x->k.nblocks)) {
		lba_range(c);
		return;
	}
	if ((uint64_t)x->k.nblocks * bs > SBC_MAX_XFER) {
		uint8_t op = c->cdb[0];
		bad_cdb(c, op == SCSI_WRITE16 || op == SCSI_WRITE_VERIFY16 ? 10
		           : op == SCSI_WRITE12 || op == SCSI_WRITE_VERIFY12 ? 6 : 7, -1);
		return;
	}
	uint32_t len = x->k.nblocks * bs;
	if (len == 0) {
		ok(c);
		return;
	}
	/* The initiator expected to send less than the CDB's transfer (iSCSI residual
	 * overflow): process the command with the whole blocks that came and nothing
	 * past them (FCP-4's first answer, which libiscsi's residual tests expect; the
	 * transport reports the residual). */
	if (c->dout_len < len) {
		len = c->dout_len / bs * bs;
		if (len == 0) {
			ok(c);
			return;
		}
	}
	pthread_rwlock_rdlock(&x->d->wl);
	/* WRITE AND VERIFY writes to the medium: durable before the answer, so the
	 * verify reads what is stored. */
	int r = do_write(x, x->k.lba * bs, c->dout, len, x->k.fua || verify);
	pthread_rwlock_unlock(&x->d->wl);
	if (r == 0 && verify && x->k.bytchk) {
		uint8_t *p = malloc(len);
		r = p ? lun_read(x->d->l, x->k.lba * bs, p, len) : -ENOMEM;
		if (r == 0 && memcmp(p, c->dout, len)) {
			free(p);
			check(c, SCSI_SK_MISCOMPARE, SCSI_ASC_MISCOMPARE_DURING_VERIFY);
			return;
		}
		free(p);
	}
	if (r < 0)
		io_error(c, r, 1);
	else
		ok(c);
}

/* MISCOMPARE with the INFORMATION field: the offset of the first differing byte. */
static void miscompare(sbc_cmd *c, uint32_t at)
{
	c->status = SBC_CHECK_CONDITION;
	c->sense_len = scsi_sense_fixed(c->sense, SCSI_SK_MISCOMPARE,
	                                SCSI_ASC_MISCOMPARE_DURING_VERIFY, 1, at, 0, -1, -1);
}

static uint32_t first_diff(const uint8_t *a, const uint8_t *b, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		if (a[i] != b[i])
			return i;
	return n;
}

/* VERIFY 10/12/16 (SBC-3 5.30): BYTCHK 0 reads the medium, 1 compares the data-out,
 * 3 compares one block of data-out with every block. */
static void cmd_verify(struct ctx *x)
{
	sbc_cmd *c = x->c;
	uint32_t bs = x->li.block_size;
	if (x->k.bytchk == 2) {
		bad_cdb(c, 1, 2);
		return;
	}
	if (range_bad(x, x->k.lba, x->k.nblocks)) {
		lba_range(c);
		return;
	}
	if ((uint64_t)x->k.nblocks * bs > SBC_MAX_XFER) {
		uint8_t op = c->cdb[0];
		bad_cdb(c, op == SCSI_VERIFY16 ? 10 : op == SCSI_VERIFY12 ? 6 : 7, -1);
		return;
	}
	uint32_t len = x->k.nblocks * bs;
	if (len == 0) {
		ok(c);
		return;
	}
	if (x->k.bytchk && dout_short(c, x->k.bytchk == 3 ? bs : len))
		return;
	uint8_t *p = malloc(len);
	int r = p ? lun_read(x->d->l, x->k.lba * bs, p, len) : -ENOMEM;
	if (r < 0) {
		io_error(c, r, 0);
	} else if (x->k.bytchk == 1) {
		uint32_t at = first_diff(p, c->dout, len);
		if (at < len)
			miscompare(c, at);
		else
			ok(c);
	} else if (x->k.bytchk == 3) {
		uint32_t at = len;
		for (uint32_t b = 0; b < len && at == len; b += bs) {
			uint32_t i = first_diff(p + b, c->dout, bs);
			if (i < bs)
				at = b + i;
		}
		if (at < len)
			miscompare(c, at);
		else
			ok(c);
	} else {
		ok(c);
	}
	free(p);
}

static int all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

/* WRITE SAME 10/16 (SBC-3 5.42): one block written over the range, or (UNMAP set
 * and the block all zeros, or NDOB) the range deallocated (reads as zeros: LBPRZ). */
static void cmd_write_same(struct ctx *x)
{
	sbc_cmd *c = x->c;
	uint32_t bs = x->li.block_size;
	int sixteen = c->cdb[0] == SCSI_WRITE_SAME16;
	if (x->k.lbdata || x->k.pbdata) {
		bad_cdb(c, 1, x->k.pbdata ? 2 : 1);
		return;
	}
	if (x->k.anchor) { /* ANC_SUP is 0 */
		bad_cdb(c, 1, 4);
		return;
	}
	if (x->k.ndob && !x->k.unmap) {
		/* NDOB without UNMAP writes zeros: allowed, done below. */
	}
	if (range_bad(x, x->k.lba, x->k.nblocks)) {
		lba_range(c);
		return;
	}
	if (x->k.nblocks == 0) { /* WSNZ */
		bad_cdb(c, sixteen ? 10 : 7, -1);
		return;
	}
	if ((uint64_t)x->k.nblocks * bs > MAX_WS_BYTES || x->k.nblocks > MAX_WS_BLOCKS) {
		bad_cdb(c, sixteen ? 10 : 7, -1);
		return;
	}
	if (!x->k.ndob && dout_short(c, bs))
		return;
	const uint8_t *blk = x->k.ndob ? NULL : c->dout;
	uint64_t off = x->k.lba * bs, len = (uint64_t)x->k.nblocks * bs;
	int r;
	pthread_rwlock_rdlock(&x->d->wl);
	if (x->k.unmap && (!blk || all_zero(blk, bs))) {
		r = lun_unmap(x->d->l, off, len);
	} else {
		/* The block repeated into a buffer of up to 1 MiB, written piece by piece. */
		uint32_t piece = (uint32_t)BKS_MIN(len, (uint64_t)OPT_XFER_BYTES);
		uint8_t *p = malloc(piece);
		r = p ? 0 : -ENOMEM;
		for (uint32_t i = 0; p && i < piece; i += bs) {
			if (blk)
				memcpy(p + i, blk, bs);
			else
				memset(p + i, 0, bs);
		}
		for (uint64_t done = 0; r == 0 && done < len; done += piece) {
			uint32_t n = (uint32_t)BKS_MIN((uint64_t)piece, len - done);
			r = do_write(x, off + done, p, n, 0);
		}
		free(p);
	}
	pthread_rwlock_unlock(&x->d->wl);
	if (r < 0)
		io_error(c, r, 1);
	else
		ok(c);
}

/* UNMAP (SBC-3 5.28): every descriptor checked before any is applied. */
static void cmd_unmap(struct ctx *x)
{
	sbc_cmd *c = x->c;
	uint32_t bs = x->li.block_size, plen = x->k.alloc;
	const uint8_t *p = c->dout;
	if (x->k.anchor) {
		bad_cdb(c, 1, 0);
		return;
	}
	if (plen == 0) {
		ok(c);
		return;
	}
	if (plen < 8) {
		check(c, SCSI_SK_ILLEGAL_REQUEST, SCSI_ASC_PARAM_LIST_LENGTH_ERROR);
		return;
	}
	if (dout_short(c, plen))
		return;
	uint32_t dl = be_get16(p + 2);
	if (dl > plen - 8)
		dl = (plen - 8) & ~15u; /* a length past the list: what the list holds */
	uint32_t n = dl / 16;
	if (n > MAX_UNMAP_DESCS) {
		bad_param(c, 2, -1);
		return;
	}
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *q = p + 8 + 16 * i;
		uint64_t lba = be_get64(q);
		uint32_t nb = be_get32(q + 8);
		if (range_bad(x, lba, nb)) {
			lba_range(c);
			return;
		}
		if ((uint64_t)nb * bs > MAX_UNMAP_BYTES || nb > MAX_UNMAP_BLOCKS) {
			bad_param(c, (int)(8 + 16 * i + 8), -1);
			return;
		}
	}
	int r = 0;
	pthread_rwlock_rdlock(&x->d->wl);
	for (uint32_t i = 0; i < n && r == 0; i++) {
		const uint8_t *q = p + 8 + 16 * i;
		r = lun_unmap(x->d->l, be_get64(q) * bs, (uint64_t)be_get32(q + 8) * bs);
	}
	pthread_rwlock_unlock(&x->d->wl);
	if (r < 0)
		io_error(c, r, 1);
	else
		ok(c);
}

/* GET LBA STATUS (SBC-3 5.6): runs of mapped and deallocated blocks from the LBA. */
static void cmd_get_lba_status(struct ctx *x)
{
	sbc_cmd *c = x->c;
	uint32_t bs = x->li.block_size;
	uint8_t b[8 + 16 * GLS_DESCS];
	if (x->k.lba >= x->nblocks) {
		lba_range(c);
		return;
	}
	memset(b, 0, sizeof(b));
	uint32_t nd = 0, room = x->k.alloc > 8 ? (x->k.alloc - 8) / 16 : 0;
	if (room < 1)
		room = 1; /* the first descriptor is computed; the allocation length cuts it */
	uint64_t lba = x->k.lba;
	while (nd < GLS_DESCS && nd < room && lba < x->nblocks) {
		int mapped;
		uint64_t run;
		uint64_t left = (x->nblocks - lba) * bs;
		int r = lun_mapped(x->d->l, lba * bs, BKS_MIN(left, (uint64_t)UINT32_MAX / bs * bs),
		                   &mapped, &run);
		if (r < 0) {
			io_error(c, r, 0);
			return;
		}
		uint8_t *q = b + 8 + 16 * nd++;
		be_put64(q, lba);
		be_put32(q + 8, (uint32_t)(run / bs));
		q[12] = mapped ? 0 : 1; /* 0 mapped, 1 deallocated */
		lba += run / bs;
	}
	be_put32(b, 4 + 16 * nd);
	din(c, b, 8 + 16 * nd, x->k.alloc);
	ok(c);
}

/* COMPARE AND WRITE (SBC-3 5.2): data-out is n blocks to compare, then n to write;
 * atomic against every other write of the LUN (the exclusive write lock). */
static void cmd_caw(struct ctx *x)
{
	sbc_cmd *c = x->c;
	uint32_t bs = x->li.block_size, n = x->k.nblocks;
	if (n == 0) {
		/* No blocks, yet data came: the initiator meant more blocks than the 8-bit
		 * field holds (256 wraps to 0). */
		if (c->dout_len)
			bad_cdb(c, 13, -1);
		else
			ok(c);
		return;
	}
	if (n > 255 || (uint64_t)2 * n * bs > SBC_MAX_XFER) {
		bad_cdb(c, 13, -1);
		return;
	}
	if (range_bad(x, x->k.lba, n)) {
		lba_range(c);
		return;
	}
	uint32_t len = n * bs;
	if (c->dout_len < 2 * len) {
		bad_cdb(c, 13, -1); /* the data-out does not hold both halves */
		return;
	}
	uint8_t *p = malloc(len);
	if (!p) {
		io_error(c, -ENOMEM, 0);
		return;
	}
	pthread_rwlock_wrlock(&x->d->wl);
	int r = lun_read(x->d->l, x->k.lba * bs, p, len);
	uint32_t at = r == 0 ? first_diff(p, c->dout, len) : 0;
	if (r == 0 && at == len)
		r = do_write(x, x->k.lba * bs, c->dout + len, len, x->k.fua);
	pthread_rwlock_unlock(&x->d->wl);
	free(p);
	if (r < 0)
		io_error(c, r, 1);
	else if (at < len)
		miscompare(c, at);
	else
		ok(c);
}

static void cmd_sync_cache(struct ctx *x)
{
	sbc_cmd *c = x->c;
	if (range_bad(x, x->k.lba, x->k.nblocks)) {
		lba_range(c);
		return;
	}
	/* The whole cache: a range sync costs the same as a full one here. */
	int r = lun_sync(x->d->l);
	if (r < 0)
		io_error(c, r, 1);
	else
		ok(c);
}

static void cmd_prefetch(struct ctx *x)
{
	if (range_bad(x, x->k.lba, x->k.nblocks))
		lba_range(x->c);
	else
		ok(x->c); /* nothing to stage: reads go to the store anyway */
}

/* MODE SENSE 6/10 (SPC-4 6.11, 6.12) */
static void cmd_mode_sense(struct ctx *x, int ten)
{
	sbc_cmd *c = x->c;
	const uint8_t *cdb = c->cdb;
	int dbd = (cdb[1] >> 3) & 1, llbaa = ten ? (cdb[1] >> 4) & 1 : 0;
	int pc = cdb[2] >> 6;
	uint8_t page = cdb[2] & 0x3f, sub = cdb[3];
	uint8_t b[256];
	scsi_mode m;
	pthread_mutex_lock(&x->d->mu);
	m = x->d->mode;
	pthread_mutex_unlock(&x->d->mu);
	if (pc == 3) { /* saved values: what the LUN's record holds (the current ones) */
		lun_mode lm;
		lun_get_mode(x->d->l, &lm);
		scsi_mode sv;
		mode_from_lun(&sv, &lm);
		sv.rcd = m.rcd, sv.swp = m.swp, sv.d_sense = m.d_sense; /* not changeable */
		m = sv;
		pc = 0;
	}
	uint32_t hl = ten ? 8 : 4, bdl = dbd ? 0 : llbaa ? 16 : 8;
	memset(b, 0, sizeof(b));
	uint32_t pl = scsi_mode_pages(&m, pc, page, sub, b + hl + bdl, sizeof(b) - hl - bdl);
	if (!pl) {
		bad_cdb(c, page == SCSI_MP_ALL || sub == 0 ? 2 : 3, -1);
		return;
	}
	/* Device-specific parameter: WP (software write protect), DPOFUA. */
	uint8_t dsp = (uint8_t)(0x10 | (m.swp ? 0x80 : 0));
	uint32_t total = hl + bdl + pl;
	if (ten) {
		be_put16(b, (uint16_t)(total - 2));
		b[3] = dsp;
		b[4] = (uint8_t)llbaa;
		be_put16(b + 6, (uint16_t)bdl);
	} else {
		b[0] = (uint8_t)(total - 1);
		b[2] = dsp;
		b[3] = (uint8_t)bdl;
	}
	if (bdl == 8) {
		be_put32(b + hl, x->nblocks > 0xffffffffull ? 0xffffffffu : (uint32_t)x->nblocks);
		be_put32(b + hl + 4, x->li.block_size & 0xffffff);
	} else if (bdl == 16) {
		be_put64(b + hl, x->nblocks);
		be_put32(b + hl + 12, x->li.block_size);
	}
	din(c, b, total, x->k.alloc);
	ok(c);
}

/* MODE SELECT 6/10: block descriptors must match, pages change what is changeable. */
static void cmd_mode_select(struct ctx *x, int ten)
{
	sbc_cmd *c = x->c;
	const uint8_t *p = c->dout;
	uint32_t len = x->k.alloc, hl = ten ? 8 : 4;
	/* SP: every change is saved (lun_set_mode below) whether SP is set or not:
	 * docs/iscsi.md "Mode pages" says why. */
	if (!(c->cdb[1] & 0x10)) { /* PF: only the standard page format */
		bad_cdb(c, 1, 4);
		return;
	}
	if (len == 0) {
		ok(c);
		return;
	}
	if (len < hl) {
		check(c, SCSI_SK_ILLEGAL_REQUEST, SCSI_ASC_PARAM_LIST_LENGTH_ERROR);
		return;
	}
	if (dout_short(c, len))
		return;
	uint32_t bdl = ten ? be_get16(p + 6) : p[3];
	if (hl + bdl > len || (bdl != 0 && bdl != 8 && bdl != 16)) {
		bad_param(c, ten ? 6 : 3, -1);
		return;
	}
	if (bdl) {
		uint32_t bl = bdl == 8 ? be_get24(p + hl + 5) : be_get32(p + hl + 12);
		if (bl != x->li.block_size) {
			bad_param(c, (int)(hl + (bdl == 8 ? 5 : 12)), -1);
			return;
		}
	}
	pthread_mutex_lock(&x->d->mu);
	scsi_mode m = x->d->mode;
	uint32_t off = hl + bdl;
	while (off < len) {
		int field;
		uint32_t plen = len - off >= 2 ? (uint32_t)p[off + 1] + 2 : len - off;
		int r = scsi_mode_select_page(&m, p + off, len - off, &field);
		if (r == -ENOTSUP) {
			pthread_mutex_unlock(&x->d->mu);
			bad_param(c, (int)off, -1);
			return;
		}
		if (r < 0) {
			pthread_mutex_unlock(&x->d->mu);
			if (len - off < plen)
				check(c, SCSI_SK_ILLEGAL_REQUEST, SCSI_ASC_PARAM_LIST_LENGTH_ERROR);
			else
				bad_param(c, (int)off + field, -1);
			return;
		}
		off += plen;
	}
	int changed = memcmp(&m, &x->d->mode, sizeof(m)) != 0;
	int wce_off = x->d->mode.wce && !m.wce;
	if (changed) {
		/* Saved before it is current and before GOOD (under d->mu, like the
		 * reservations' lun_pr_save): a crash after GOOD comes back with it. A
		 * failed save changes nothing. */
		lun_mode lm;
		mode_to_lun(&lm, &m);
		int r = lun_set_mode(x->d->l, &lm);
		if (r < 0) {
			pthread_mutex_unlock(&x->d->mu);
			io_error(c, r, 1);
			return;
		}
	}
	x->d->mode = m;
	if (changed)
		sbc_ua_all(x->d, c->nx ? c->nx->id : 0, NULL, SCSI_ASC_MODE_PARAMS_CHANGED);
	pthread_mutex_unlock(&x->d->mu);
	/* Turning the write cache off: what it holds is written now. The write lock
	 * first waits out the writes still running that read the old setting (theirs
	 * go to the cache after this command's change), so the sync takes them too
	 * and no write is left volatile once GOOD says the cache is off. */
	if (wce_off) {
		pthread_rwlock_wrlock(&x->d->wl);
		int r = lun_sync(x->d->l);
		pthread_rwlock_unlock(&x->d->wl);
		if (r < 0) {
			io_error(c, -EIO, 1);
			return;
		}
	}
	ok(c);
}

static void cmd_report_luns(struct ctx *x)
{
	sbc_cmd *c = x->c;
	uint8_t b[16];
	uint8_t sel = c->cdb[2];
	if (sel != 0 && sel != 1 && sel != 2 && sel != 0x10 && sel != 0x11 && sel != 0x12) {
		bad_cdb(c, 2, -1);
		return;
	}
	if (x->k.alloc < 16) {
		bad_cdb(c, 6, -1);
		return;
	}
	memset(b, 0, sizeof(b));
	be_put32(b, sel == 1 || sel == 0x10 ? 0 : 8); /* well-known LUNs: none */
	din(c, b, sel == 1 || sel == 0x10 ? 8 : 16, x->k.alloc);
	ok(c);
}

/* REQUEST SENSE: a pending unit attention (and it is cleared), else NO SENSE. */
static void cmd_request_sense(struct ctx *x)
{
	sbc_cmd *c = x->c;
	uint8_t s[SCSI_SENSE_FIXED_LEN];
	uint16_t asc;
	if (c->cdb[1] & 1) { /* DESC: fixed format only */
		bad_cdb(c, 1, 0);
		return;
	}
	pthread_mutex_lock(&x->d->mu);
	int have = c->nx && ua_pop(x->d, c->nx->id, &asc);
	pthread_mutex_unlock(&x->d->mu);
	if (have)
		scsi_sense_fixed(s, SCSI_SK_UNIT_ATTENTION, asc, 0, 0, 0, -1, -1);
	else
		scsi_sense_fixed(s, SCSI_SK_NO_SENSE, SCSI_ASC_NONE, 0, 0, 0, -1, -1);
	din(c, s, sizeof(s), x->k.alloc);
	ok(c);
}

static void cmd_start_stop(struct ctx *x)
{
	sbc_cmd *c = x->c;
	uint8_t pc = c->cdb[4] >> 4, loej = (c->cdb[4] >> 1) & 1, start = c->cdb[4] & 1;
	/* The medium cannot be removed; a stop is accepted and changes nothing (the
	 * LUN serves on: other sessions use it). Power conditions: none but 0. */
	if (pc != 0 && pc != 1 && pc != 2 && pc != 3 && pc != 7 && pc != 0xa && pc != 0xb) {
		bad_cdb(c, 4, 7);
		return;
	}
	if (loej && !start && pc == 0) {
		/* Eject of a fixed medium. */
		check(c, SCSI_SK_ILLEGAL_REQUEST, 0x5302); /* MEDIUM REMOVAL PREVENTED */
		return;
	}
	if (!start && pc == 0)
		lun_sync(x->d->l);
	ok(c);
}

/* --- REPORT SUPPORTED OPERATION CODES (SPC-4 6.35) --- */

struct opdesc {
	uint8_t op;
	uint16_t sa;
	uint8_t has_sa;
	uint8_t len;
	uint8_t usage[16];       /* CDB usage data (bits the device server looks at) */
};

static const struct opdesc ops[] = {
	{SCSI_TEST_UNIT_READY, 0, 0, 6, {0x00, 0, 0, 0, 0, 0x07}},
	{SCSI_REQUEST_SENSE, 0, 0, 6, {0x03, 0x01, 0, 0, 0xff, 0x07}},
	{SCSI_READ6, 0, 0, 6, {0x08, 0x1f, 0xff, 0xff, 0xff, 0x07}},
	{SCSI_WRITE6, 0, 0, 6, {0x0a, 0x1f, 0xff, 0xff, 0xff, 0x07}},
	{SCSI_INQUIRY, 0, 0, 6, {0x12, 0x03, 0xff, 0xff, 0xff, 0x07}},
	{SCSI_MODE_SELECT6, 0, 0, 6, {0x15, 0x11, 0, 0, 0xff, 0x07}},
	{SCSI_MODE_SENSE6, 0, 0, 6, {0x1a, 0x08, 0xff, 0xff, 0xff, 0x07}},
	{SCSI_START_STOP_UNIT, 0, 0, 6, {0x1b, 0x01, 0, 0x0f, 0xf7, 0x07}},
	{SCSI_PREVENT_ALLOW, 0, 0, 6, {0x1e, 0, 0, 0, 0x03, 0x07}},
	{SCSI_READ_CAPACITY10, 0, 0, 10, {0x25, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0x01, 0x07}},
	{SCSI_READ10, 0, 0, 10, {0x28, 0xf8, 0xff, 0xff, 0xff, 0xff, 0x1f, 0xff, 0xff, 0x07}},
	{SCSI_WRITE10, 0, 0, 10, {0x2a, 0xf8, 0xff, 0xff, 0xff, 0xff, 0x1f, 0xff, 0xff, 0x07}},
	{SCSI_WRITE_VERIFY10, 0, 0, 10, {0x2e, 0xf2, 0xff, 0xff, 0xff, 0xff, 0x1f, 0xff, 0xff, 0x07}},
	{SCSI_VERIFY10, 0, 0, 10, {0x2f, 0xf6, 0xff, 0xff, 0xff, 0xff, 0x1f, 0xff, 0xff, 0x07}},
	{SCSI_PREFETCH10, 0, 0, 10, {0x34, 0x02, 0xff, 0xff, 0xff, 0xff, 0x1f, 0xff, 0xff, 0x07}},
	{SCSI_SYNC_CACHE10, 0, 0, 10, {0x35, 0x02, 0xff, 0xff, 0xff, 0xff, 0x1f, 0xff, 0xff, 0x07}},
	{SCSI_WRITE_SAME10, 0, 0, 10, {0x41, 0xfe, 0xff, 0xff, 0xff, 0xff, 0x1f, 0xff, 0xff, 0x07}},
	{SCSI_UNMAP, 0, 0, 10, {0x42, 0x01, 0, 0, 0, 0, 0x1f, 0xff, 0xff, 0x07}},
	{SCSI_MODE_SELECT10, 0, 0, 10, {0x55, 0x11, 0, 0, 0, 0, 0, 0xff, 0xff, 0x07}},
	{SCSI_MODE_SENSE10, 0, 0, 10, {0x5a, 0x18, 0xff, 0xff, 0, 0, 0, 0xff, 0xff, 0x07}},
	{SCSI_PR_IN, 0, 1, 10, {0x5e, 0x1f, 0, 0, 0, 0, 0, 0xff, 0xff, 0x07}},
	{SCSI_PR_IN, 1, 1, 10, {0x5e, 0x1f, 0, 0, 0, 0, 0, 0xff, 0xff, 0x07}},
	{SCSI_PR_IN, 2, 1, 10, {0x5e, 0x1f, 0, 0, 0, 0, 0, 0xff, 0xff, 0x07}},
	{SCSI_PR_IN, 3, 1, 10, {0x5e, 0x1f, 0, 0, 0, 0, 0, 0xff, 0xff, 0x07}},
	{SCSI_PR_OUT, 0, 1, 10, {0x5f, 0x1f, 0xff, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x07}},
	{SCSI_PR_OUT, 1, 1, 10, {0x5f, 0x1f, 0xff, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x07}},
	{SCSI_PR_OUT, 2, 1, 10, {0x5f, 0x1f, 0xff, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x07}},
	{SCSI_PR_OUT, 3, 1, 10, {0x5f, 0x1f, 0xff, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x07}},
	{SCSI_PR_OUT, 4, 1, 10, {0x5f, 0x1f, 0xff, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x07}},
	{SCSI_PR_OUT, 5, 1, 10, {0x5f, 0x1f, 0xff, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x07}},
	{SCSI_PR_OUT, 6, 1, 10, {0x5f, 0x1f, 0xff, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x07}},
	{SCSI_READ16, 0, 0, 16, {0x88, 0xf8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	                         0xff, 0xff, 0xff, 0xff, 0x1f, 0x07}},
	{SCSI_COMPARE_AND_WRITE, 0, 0, 16, {0x89, 0xf8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	                                    0xff, 0xff, 0, 0, 0, 0xff, 0x1f, 0x07}},
	{SCSI_WRITE16, 0, 0, 16, {0x8a, 0xf8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	                          0xff, 0xff, 0xff, 0xff, 0x1f, 0x07}},
	{SCSI_WRITE_VERIFY16, 0, 0, 16, {0x8e, 0xf2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	                                 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f, 0x07}},
	{SCSI_VERIFY16, 0, 0, 16, {0x8f, 0xf6, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	                           0xff, 0xff, 0xff, 0xff, 0x1f, 0x07}},
	{SCSI_PREFETCH16, 0, 0, 16, {0x90, 0x02, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	                             0xff, 0xff, 0xff, 0xff, 0xff, 0x1f, 0x07}},
	{SCSI_SYNC_CACHE16, 0, 0, 16, {0x91, 0x02, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	                               0xff, 0xff, 0xff, 0xff, 0xff, 0x1f, 0x07}},
	{SCSI_WRITE_SAME16, 0, 0, 16, {0x93, 0xf9, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	                               0xff, 0xff, 0xff, 0xff, 0xff, 0x1f, 0x07}},
	{SCSI_SERVICE_ACTION_IN16, SCSI_SAI_READ_CAPACITY16, 1, 16,
	 {0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0x07}},
	{SCSI_SERVICE_ACTION_IN16, SCSI_SAI_GET_LBA_STATUS, 1, 16,
	 {0x9e, 0x12, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	  0, 0x07}},
	{SCSI_REPORT_LUNS, 0, 0, 12, {0xa0, 0, 0xff, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0x07}},
	{SCSI_MAINTENANCE_IN, SCSI_MI_REPORT_OPCODES, 1, 12,
	 {0xa3, 0x0c, 0x87, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0x07}},
	{SCSI_READ12, 0, 0, 12, {0xa8, 0xf8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	                         0x1f, 0x07}},
	{SCSI_WRITE12, 0, 0, 12, {0xaa, 0xf8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	                          0x1f, 0x07}},
	{SCSI_WRITE_VERIFY12, 0, 0, 12, {0xae, 0xf2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	                                 0xff, 0x1f, 0x07}},
	{SCSI_VERIFY12, 0, 0, 12, {0xaf, 0xf6, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	                           0x1f, 0x07}},
};
#define NOPS (sizeof(ops) / sizeof(ops[0]))

/* The usage data's service action field: PR IN/OUT keep it in byte 1 like the 0x9e
 * and 0xa3 families; the bitmap there says which bits are used, the value is the SA. */
static void usage_of(const struct opdesc *o, uint8_t *u)
{
	memcpy(u, o->usage, o->len);
	if (o->has_sa)
		u[1] = (uint8_t)((o->op == SCSI_PR_IN || o->op == SCSI_PR_OUT ? 0xe0 & u[1] : 0) |
		                 (o->sa & 0x1f));
}

static void cmd_report_opcodes(struct ctx *x)
{
	sbc_cmd *c = x->c;
	const uint8_t *cdb = c->cdb;
	int rctd = cdb[2] >> 7, opts = cdb[2] & 7;
	uint8_t rop = cdb[3];
	uint16_t rsa = be_get16(cdb + 4);
	uint8_t b[NOPS * 20 + 64];
	uint32_t n = 0;
	memset(b, 0, sizeof(b));
	if (opts == 0) {
		n = 4;
		for (size_t i = 0; i < NOPS; i++) {
			uint8_t *q = b + n;
			q[0] = ops[i].op;
			be_put16(q + 2, ops[i].sa);
			q[5] = (uint8_t)((ops[i].has_sa ? 0x01 : 0) | (rctd ? 0x02 : 0));
			be_put16(q + 6, ops[i].len);
			n += 8;
			if (rctd) {
				be_put16(b + n, 0x0a); /* command timeouts descriptor: none given */
				n += 12;
			}
		}
		be_put32(b, n - 4);
	} else if (opts >= 1 && opts <= 3) {
		const struct opdesc *f = NULL;
		int has_sa_op = 0;
		for (size_t i = 0; i < NOPS; i++)
			if (ops[i].op == rop) {
				has_sa_op = ops[i].has_sa;
				if (!ops[i].has_sa || ops[i].sa == rsa)
					f = &ops[i];
			}
		/* 1: an opcode without service actions; 2: one with; 3: either. */
		int known = 0;
		for (size_t i = 0; i < NOPS; i++)
			known |= ops[i].op == rop;
		if ((opts == 1 && has_sa_op) || (opts == 2 && known && !has_sa_op)) {
			bad_cdb(c, 2, -1);
			return;
		}
		b[1] = (uint8_t)((rctd ? 0x80 : 0) | (f ? 0x03 : 0x01)); /* SUPPORT */
		if (f) {
			be_put16(b + 2, f->len);
			usage_of(f, b + 4);
			n = 4 + f->len;
		} else {
			n = 4;
		}
		if (rctd && f) {
			be_put16(b + n, 0x0a);
			n += 12;
		}
	} else {
		bad_cdb(c, 2, 2);
		return;
	}
	din(c, b, n, x->k.alloc);
	ok(c);
}

/* --- dispatch --- */

void sbc_exec(sbc_dev *d, sbc_cmd *c)
{
	struct ctx x = {.d = d, .c = c};
	int field, r;
	c->din_len = 0;
	ok(c);
	r = scsi_cdb_parse(c->cdb, c->cdb_len, &x.k, &field);
	if (r == -ENOTSUP || (r == -EMSGSIZE && c->cdb_len >= 1 && !scsi_cdb_len(c->cdb[0]))) {
		check(c, SCSI_SK_ILLEGAL_REQUEST, SCSI_ASC_INVALID_OPCODE);
		return;
	}
	if (r == -EMSGSIZE) {
		bad_cdb(c, 0, -1);
		return;
	}
	if (r == -EINVAL) {
		bad_cdb(c, field, field == 1 ? 7 : -1);
		return;
	}
	/* Other LUN numbers: only what SPC-4 4.7 lets an absent LU answer. */
	if (c->lun != 0 && x.k.op != SCSI_INQUIRY && x.k.op != SCSI_REPORT_LUNS &&
	    x.k.op != SCSI_REQUEST_SENSE) {
		check(c, SCSI_SK_ILLEGAL_REQUEST, SCSI_ASC_LUN_NOT_SUPPORTED);
		return;
	}
	/* Size and block size only (cheap: every command needs them); INQUIRY takes the
	 * rest. */
	lun_geometry(d->l, &x.li.size, &x.li.block_size);
	x.nblocks = x.li.size / x.li.block_size;

	pthread_mutex_lock(&d->mu);
	/* A resize since the last look: every nexus hears of it once. */
	if (x.li.size != d->last_size) {
		sbc_ua_all(d, 0, NULL, SCSI_ASC_CAPACITY_CHANGED);
		d->last_size = x.li.size;
	}
	/* Unit attention: reported instead of the command, except by the commands that
	 * SAM-5 5.14 lets through (INQUIRY, REPORT LUNS, REQUEST SENSE). */
	uint16_t asc;
	if (x.k.op != SCSI_INQUIRY && x.k.op != SCSI_REPORT_LUNS &&
	    x.k.op != SCSI_REQUEST_SENSE && c->nx && ua_pop(d, c->nx->id, &asc)) {
		pthread_mutex_unlock(&d->mu);
		check(c, SCSI_SK_UNIT_ATTENTION, asc);
		return;
	}
	int conf = sbc_pr_conflict(d, c->nx, &x.k, c->cdb);
	pthread_mutex_unlock(&d->mu);
	if (conf) {
		conflict(c);
		return;
	}

	switch (x.k.op) {
	case SCSI_TEST_UNIT_READY: ok(c); break;
	case SCSI_REQUEST_SENSE: cmd_request_sense(&x); break;
	case SCSI_INQUIRY: cmd_inquiry(&x); break;
	case SCSI_READ_CAPACITY10: cmd_read_capacity(&x, 0); break;
	case SCSI_READ6: case SCSI_READ10: case SCSI_READ12: case SCSI_READ16:
		cmd_read(&x);
		break;
	case SCSI_WRITE6: case SCSI_WRITE10: case SCSI_WRITE12: case SCSI_WRITE16:
		cmd_write(&x, 0);
		break;
	case SCSI_WRITE_VERIFY10: case SCSI_WRITE_VERIFY12: case SCSI_WRITE_VERIFY16:
		cmd_write(&x, 1);
		break;
	case SCSI_VERIFY10: case SCSI_VERIFY12: case SCSI_VERIFY16: cmd_verify(&x); break;
	case SCSI_WRITE_SAME10: case SCSI_WRITE_SAME16: cmd_write_same(&x); break;
	case SCSI_UNMAP: cmd_unmap(&x); break;
	case SCSI_COMPARE_AND_WRITE: cmd_caw(&x); break;
	case SCSI_PREFETCH10: case SCSI_PREFETCH16: cmd_prefetch(&x); break;
	case SCSI_SYNC_CACHE10: case SCSI_SYNC_CACHE16: cmd_sync_cache(&x); break;
	case SCSI_MODE_SENSE6: cmd_mode_sense(&x, 0); break;
	case SCSI_MODE_SENSE10: cmd_mode_sense(&x, 1); break;
	case SCSI_MODE_SELECT6: cmd_mode_select(&x, 0); break;
	case SCSI_MODE_SELECT10: cmd_mode_select(&x, 1); break;
	case SCSI_REPORT_LUNS: cmd_report_luns(&x); break;
	case SCSI_START_STOP_UNIT: cmd_start_stop(&x); break;
	case SCSI_PREVENT_ALLOW:
		if (c->cdb[4] & 3)
			bad_cdb(c, 4, 0); /* RMB 0: a fixed medium cannot be locked */
		else
			ok(c);
		break;
	case SCSI_PR_IN: sbc_pr_in(&x); break;
	case SCSI_PR_OUT: sbc_pr_out(&x); break;
	case SCSI_SERVICE_ACTION_IN16:
		if (x.k.sa == SCSI_SAI_READ_CAPACITY16)
			cmd_read_capacity(&x, 1);
		else if (x.k.sa == SCSI_SAI_GET_LBA_STATUS)
			cmd_get_lba_status(&x);
		else
			bad_cdb(c, 1, 4);
		break;
	case SCSI_MAINTENANCE_IN:
		if (x.k.sa == SCSI_MI_REPORT_OPCODES)
			cmd_report_opcodes(&x);
		else
			bad_cdb(c, 1, 4);
		break;
	default:
		check(c, SCSI_SK_ILLEGAL_REQUEST, SCSI_ASC_INVALID_OPCODE);
		break;
	}
}
