/* daemon/sbc_pr.c: persistent reservations (SPC-4 5.9) of the device server in
 * daemon/sbc.c: registrations, the reservation, PERSISTENT RESERVE IN/OUT, which
 * commands conflict, and the state saved through lun_pr_save.
 *
 * Crash story: every PERSISTENT RESERVE OUT that changes the state saves the whole
 * state (pr_save) before the answer; a crash before the save completes leaves the
 * previous state, and the initiator saw no GOOD.
 */
#include <config.h>

#include "daemon/sbc_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/endian.h"
#include "daemon/log.h"

/* --- reservations: state, persistence --- */

static int reg_find(const sbc_dev *d, const pr_id *w)
{
	for (int i = 0; i < d->nreg; i++)
		if (sbc_who_eq(&d->regs[i].who, w))
			return i;
	return -1;
}

static int res_all_reg(uint8_t t)
{
	return t == PR_WE_AR || t == PR_EA_AR;
}

static int res_reg_only(uint8_t t)
{
	return t == PR_WE_RO || t == PR_EA_RO || res_all_reg(t);
}

/* Is registration i a holder of the reservation? */
static int is_holder(const sbc_dev *d, int i)
{
	return d->res && i >= 0 && (res_all_reg(d->type) || d->holder == i);
}

static void reg_remove(sbc_dev *d, int i)
{
	if (d->res && !res_all_reg(d->type)) {
		if (d->holder == i)
			d->res = 0; /* the holder's registration goes: so does the reservation */
		else if (d->holder > i)
			d->holder--;
	}
	memmove(d->regs + i, d->regs + i + 1, (size_t)(d->nreg - i - 1) * sizeof(d->regs[0]));
	d->nreg--;
	if (d->res && res_all_reg(d->type) && d->nreg == 0)
		d->res = 0;
}

/* The blob lun_pr_save keeps (docs/format.md "LUN records": the pr file wraps it
 * with magic, version and checksum): version u8, flags u8 (1: reservation, 2:
 * APTPL), type u8, pad u8, generation u32, holder i32, count u32, then per
 * registration key u64, tpgt u16, isid 6 bytes, name length u16, name. */
static size_t pr_encode(const sbc_dev *d, uint8_t *b)
{
	size_t n = 16;
	b[0] = PR_BLOB_VERSION;
	b[1] = (uint8_t)((d->res ? 1 : 0) | (d->aptpl ? 2 : 0));
	b[2] = d->type;
	b[3] = 0;
	le_put32(b + 4, d->generation);
	le_put32(b + 8, (uint32_t)d->holder);
	le_put32(b + 12, (uint32_t)d->nreg);
	for (int i = 0; i < d->nreg; i++) {
		const pr_reg *r = &d->regs[i];
		size_t nl = strlen(r->who.name);
		le_put64(b + n, r->key);
		le_put16(b + n + 8, r->who.tpgt);
		memcpy(b + n + 10, r->who.isid, 6);
		le_put16(b + n + 16, (uint16_t)nl);
		memcpy(b + n + 18, r->who.name, nl);
		n += 18 + nl;
	}
	return n;
}

static int pr_decode(sbc_dev *d, const uint8_t *b, size_t len)
{
	if (len < 16 || b[0] != PR_BLOB_VERSION)
		return -EINVAL;
	uint32_t cnt = le_get32(b + 12);
	int32_t holder = (int32_t)le_get32(b + 8);
	if (cnt > PR_REG_MAX)
		return -EINVAL;
	size_t n = 16;
	for (uint32_t i = 0; i < cnt; i++) {
		if (len - n < 18)
			return -EINVAL;
		uint16_t nl = le_get16(b + n + 16);
		if (nl > PR_NAME_MAX || len - n - 18 < nl)
			return -EINVAL;
		pr_reg *r = &d->regs[i];
		memset(r, 0, sizeof(*r));
		r->key = le_get64(b + n);
		r->who.tpgt = le_get16(b + n + 8);
		memcpy(r->who.isid, b + n + 10, 6);
		memcpy(r->who.name, b + n + 18, nl);
		n += 18 + nl;
	}
	d->nreg = (int)cnt;
	d->res = b[1] & 1;
	d->aptpl = (b[1] >> 1) & 1;
	d->type = b[2];
	d->generation = le_get32(b + 4);
	d->holder = holder;
	if (d->res && !res_all_reg(d->type) && (holder < 0 || holder >= (int32_t)cnt))
		return -EINVAL;
	return 0;
}

static int pr_save(sbc_dev *d)
{
	size_t cap = 16 + (size_t)PR_REG_MAX * (18 + PR_NAME_MAX);
	uint8_t *b = malloc(cap);
	if (!b)
		return -ENOMEM;
	int r = lun_pr_save(d->l, b, pr_encode(d, b));
	free(b);
	return r;
}

/* Load at open: a blob that does not decode or cannot be read leaves no
 * reservations (logged), as a LUN never reserved; only -ENOMEM fails the open. */
int sbc_pr_load(sbc_dev *d, const char *lunname)
{
	size_t cap = 16 + (size_t)PR_REG_MAX * (18 + PR_NAME_MAX), len = 0;
	uint8_t *b = malloc(cap);
	int r = b ? lun_pr_load(d->l, b, cap, &len) : -ENOMEM;
	if (r == 0 && len > 0 && pr_decode(d, b, len) < 0) {
		LOG_W("sbc: the reservations of LUN %s do not decode: none", lunname);
		d->nreg = 0, d->res = 0, d->holder = -1;
	}
	free(b);
	if (r == -ENOMEM)
		return r;
	if (r < 0)
		LOG_W("sbc: the reservations of LUN %s cannot be read (%s): none", lunname,
		      strerror(-r));
	return 0;
}

/* --- PERSISTENT RESERVE IN (SPC-4 6.15) --- */

/* The iSCSI TransportID of a registrant (SPC-4 7.6.4.6, format 01b: name and ISID):
 * "name,i,0x<isid>" NUL-padded to a multiple of 4. Returns its length. */
static uint32_t transport_id(const pr_id *w, uint8_t *q)
{
	char s[PR_NAME_MAX + 32];
	int l = snprintf(s, sizeof(s), "%s,i,0x%02x%02x%02x%02x%02x%02x", w->name, w->isid[0],
	                 w->isid[1], w->isid[2], w->isid[3], w->isid[4], w->isid[5]);
	uint32_t pl = (uint32_t)(l + 1 + 3) & ~3u;
	memset(q, 0, 4 + pl);
	q[0] = 0x40 | 0x05; /* format 01b, protocol iSCSI */
	be_put16(q + 2, (uint16_t)pl);
	memcpy(q + 4, s, (size_t)l);
	return 4 + pl;
}

void sbc_pr_in(struct ctx *x)
{
	sbc_cmd *c = x->c;
	sbc_dev *d = x->d;
	size_t cap = 8 + (size_t)PR_REG_MAX * (24 + 4 + PR_NAME_MAX + 32);
	uint8_t *b = calloc(1, cap);
	uint32_t n = 8;
	if (!b) {
		io_error(c, -ENOMEM, 0);
		return;
	}
	pthread_mutex_lock(&d->mu);
	be_put32(b, d->generation);
	switch (x->k.sa) {
	case 0: /* READ KEYS */
		for (int i = 0; i < d->nreg; i++, n += 8)
			be_put64(b + n, d->regs[i].key);
		be_put32(b + 4, n - 8);
		break;
	case 1: /* READ RESERVATION */
		if (d->res) {
			/* All-registrants types report key 0 (SPC-4 6.15.3.3). */
			be_put64(b + 8, res_all_reg(d->type) ? 0 : d->regs[d->holder].key);
			b[21] = d->type & 0x0f; /* scope 0: logical unit */
			n = 24;
		}
		be_put32(b + 4, n - 8);
		break;
	case 2: /* REPORT CAPABILITIES */
		memset(b, 0, 8);
		be_put16(b, 8);
		b[2] = 0x01;              /* PTPL_C: reservations persist through power loss */
		b[3] = 0x80 | (d->aptpl ? 0x01 : 0); /* TMV, PTPL_A */
		b[4] = 0x80 | 0x40 | 0x20 | 0x08 | 0x02; /* WR_EX_AR, EX_AC_RO, WR_EX_RO, EX_AC, WR_EX */
		b[5] = 0x01;              /* EX_AC_AR */
		n = 8;
		break;
	case 3: /* READ FULL STATUS */
		for (int i = 0; i < d->nreg; i++) {
			uint8_t *q = b + n;
			be_put64(q, d->regs[i].key);
			if (is_holder(d, i)) {
				q[12] = 0x01; /* R_HOLDER */
				q[13] = d->type & 0x0f;
			}
			be_put16(q + 18, d->regs[i].who.tpgt); /* relative target port id */
			uint32_t tl = transport_id(&d->regs[i].who, q + 24);
			be_put32(q + 20, tl);
			n += 24 + tl;
		}
		be_put32(b + 4, n - 8);
		break;
	default:
		pthread_mutex_unlock(&d->mu);
		free(b);
		bad_cdb(c, 1, 4);
		return;
	}
	pthread_mutex_unlock(&d->mu);
	din(c, b, n, x->k.alloc);
	free(b);
	ok(c);
}

/* --- PERSISTENT RESERVE OUT (SPC-4 5.9.7-5.9.11, 6.16) --- */

static int type_ok(uint8_t t)
{
	return t == PR_WE || t == PR_EA || t == PR_WE_RO || t == PR_EA_RO || t == PR_WE_AR ||
	       t == PR_EA_AR;
}

/* Unit attention to the registrants removed: every nexus of their initiator ports. */
static void ua_reg(sbc_dev *d, const pr_id *who, uint64_t skip, uint16_t asc)
{
	sbc_ua_all(d, skip, who, asc);
}

void sbc_pr_out(struct ctx *x)
{
	sbc_cmd *c = x->c;
	sbc_dev *d = x->d;
	const uint8_t *p = c->dout;
	uint8_t sa = x->k.sa, type = c->cdb[2] & 0x0f, scope = c->cdb[2] >> 4;
	pr_id me;
	sbc_who_of(c->nx, &me);
	uint64_t self = c->nx ? c->nx->id : 0;
	if (x->k.alloc != 24) {
		/* SPEC_I_PT is not supported, so the list is always 24 bytes. */
		check(c, SCSI_SK_ILLEGAL_REQUEST, SCSI_ASC_PARAM_LIST_LENGTH_ERROR);
		return;
	}
	if (dout_short(c, 24))
		return;
	uint64_t rkey = be_get64(p), sakey = be_get64(p + 8);
	uint8_t flags = p[20];
	if (sa > 6) { /* REGISTER AND MOVE and beyond: not supported */
		bad_cdb(c, 1, 4);
		return;
	}
	if (flags & 0x08) { /* SPEC_I_PT */
		bad_param(c, 20, 3);
		return;
	}
	if (flags & 0x04) { /* ALL_TG_PT: one target port per target here: accepted */
	}
	pthread_mutex_lock(&d->mu);
	/* The state before, restored when the save fails (nothing changed then). */
	pr_reg *old = malloc(sizeof(d->regs));
	if (!old) {
		pthread_mutex_unlock(&d->mu);
		io_error(c, -ENOMEM, 1);
		return;
	}
	memcpy(old, d->regs, sizeof(d->regs));
	uint32_t o_gen = d->generation;
	int o_nreg = d->nreg, o_res = d->res, o_holder = d->holder, o_aptpl = d->aptpl;
	uint8_t o_type = d->type;
	int me_i = reg_find(d, &me);
	int changed = 0, bump = 0;
	uint8_t st = SBC_GOOD;
	int pfield = -1, cfield = -1, cbit = -1, asc = 0;

	switch (sa) {
	case 0: /* REGISTER */
	case 6: /* REGISTER AND IGNORE EXISTING KEY */
		if (me_i < 0) {
			if (sa == 0 && rkey != 0) {
				st = SBC_RESERVATION_CONFLICT;
				break;
			}
			if (sakey == 0)
				break; /* nothing to register */
			if (d->nreg == PR_REG_MAX) {
				asc = SCSI_ASC_INSUFFICIENT_REG_RESOURCES;
				break;
			}
			d->regs[d->nreg].who = me;
			d->regs[d->nreg].key = sakey;
			d->nreg++;
		} else {
			if (sa == 0 && rkey != d->regs[me_i].key) {
				st = SBC_RESERVATION_CONFLICT;
				break;
			}
			if (sakey == 0) {
				/* Unregister: a holder's registration goes with its reservation;
				 * registrants-only types release it with a unit attention. */
				int was_holder = d->res && d->holder == me_i && !res_all_reg(d->type);
				uint8_t t = d->type;
				reg_remove(d, me_i);
				if (was_holder && (t == PR_WE_RO || t == PR_EA_RO))
					for (int i = 0; i < d->nreg; i++)
						ua_reg(d, &d->regs[i].who, self, SCSI_ASC_RESERVATIONS_RELEASED);
			} else {
				d->regs[me_i].key = sakey;
			}
		}
		d->aptpl = (flags & 0x01) || d->aptpl;
		changed = bump = 1;
		break;
	case 1: /* RESERVE */
		if (me_i < 0 || rkey != d->regs[me_i].key) {
			st = SBC_RESERVATION_CONFLICT;
			break;
		}
		if (scope != 0) {
			cfield = 2, cbit = 7;
			break;
		}
		if (!type_ok(type)) {
			cfield = 2, cbit = 3;
			break;
		}
		if (d->res) {
			if (!is_holder(d, me_i) || d->type != type)
				st = SBC_RESERVATION_CONFLICT;
			break; /* the holder reserving again with the same type: nothing */
		}
		d->res = 1;
		d->type = type;
		d->holder = res_all_reg(type) ? -1 : me_i;
		changed = 1;
		break;
	case 2: /* RELEASE */
		if (me_i < 0 || rkey != d->regs[me_i].key) {
			st = SBC_RESERVATION_CONFLICT;
			break;
		}
		if (!d->res || !is_holder(d, me_i))
			break; /* nothing of ours to release */
		if (scope != 0 || type != d->type) {
			asc = SCSI_ASC_INVALID_RELEASE_OF_PR;
			break;
		}
		d->res = 0;
		d->holder = -1;
		if (d->type != PR_WE && d->type != PR_EA)
			for (int i = 0; i < d->nreg; i++)
				ua_reg(d, &d->regs[i].who, self, SCSI_ASC_RESERVATIONS_RELEASED);
		changed = 1;
		break;
	case 3: /* CLEAR */
		if (me_i < 0 || rkey != d->regs[me_i].key) {
			st = SBC_RESERVATION_CONFLICT;
			break;
		}
		for (int i = 0; i < d->nreg; i++)
			if (i != me_i)
				ua_reg(d, &d->regs[i].who, self, SCSI_ASC_RESERVATIONS_PREEMPTED);
		d->nreg = 0;
		d->res = 0;
		d->holder = -1;
		changed = bump = 1;
		break;
	case 4: /* PREEMPT */
	case 5: /* PREEMPT AND ABORT (the transport aborts the preempted tasks) */
		if (me_i < 0 || rkey != d->regs[me_i].key) {
			st = SBC_RESERVATION_CONFLICT;
			break;
		}
		if (d->res && (scope != 0 || !type_ok(type))) {
			cfield = 2, cbit = scope != 0 ? 7 : 3;
			break;
		}
		if (d->res && res_all_reg(d->type) && sakey == 0) {
			/* All-registrants: a zero key preempts every other registrant and
			 * the reservation becomes the preempter's (SPC-4 5.9.11.4). */
			for (int i = d->nreg - 1; i >= 0; i--)
				if (!sbc_who_eq(&d->regs[i].who, &me)) {
					ua_reg(d, &d->regs[i].who, self, SCSI_ASC_REGISTRATIONS_PREEMPTED);
					memmove(d->regs + i, d->regs + i + 1,
					        (size_t)(d->nreg - i - 1) * sizeof(d->regs[0]));
					d->nreg--;
				}
			me_i = reg_find(d, &me);
			d->type = type;
			d->holder = res_all_reg(type) ? -1 : me_i;
			changed = bump = 1;
			break;
		}
		if (sakey == 0 && (!d->res || res_all_reg(d->type) ||
		                   d->regs[d->holder].key != 0)) {
			pfield = 8; /* SERVICE ACTION RESERVATION KEY 0 names nobody */
			break;
		}
		int holder_hit = d->res && !res_all_reg(d->type) && d->regs[d->holder].key == sakey;
		int hit = 0;
		for (int i = d->nreg - 1; i >= 0; i--) {
			if (d->regs[i].key != sakey)
				continue;
			hit = 1;
			if (sbc_who_eq(&d->regs[i].who, &me) && holder_hit)
				continue; /* preempting one's own reservation keeps one's key */
			ua_reg(d, &d->regs[i].who, self, SCSI_ASC_REGISTRATIONS_PREEMPTED);
			if (d->res && !res_all_reg(d->type) && d->holder == i)
				d->holder = -1, d->res = 0;
			else if (d->res && !res_all_reg(d->type) && d->holder > i)
				d->holder--;
			memmove(d->regs + i, d->regs + i + 1,
			        (size_t)(d->nreg - i - 1) * sizeof(d->regs[0]));
			d->nreg--;
		}
		if (!hit) {
			st = SBC_RESERVATION_CONFLICT;
			break;
		}
		me_i = reg_find(d, &me);
		if (holder_hit) {
			/* The reservation moves to the preempter, with the new type. */
			d->res = 1;
			d->type = type;
			d->holder = res_all_reg(type) ? -1 : me_i;
		} else if (d->res && res_all_reg(d->type) && d->nreg == 0) {
			d->res = 0;
		}
		changed = bump = 1;
		break;
	default:
		cfield = 1, cbit = 4;
		break;
	}
	int r = 0;
	if (st == SBC_GOOD && cfield < 0 && pfield < 0 && !asc && changed) {
		if (bump)
			d->generation++;
		if ((r = pr_save(d)) < 0) {
			/* Not durable: the state before stands (the unit attentions queued
			 * meanwhile are harmless: the initiators ask again). */
			memcpy(d->regs, old, sizeof(d->regs));
			d->generation = o_gen, d->nreg = o_nreg, d->res = o_res;
			d->holder = o_holder, d->aptpl = o_aptpl, d->type = o_type;
		}
	}
	pthread_mutex_unlock(&d->mu);
	free(old);
	if (st == SBC_RESERVATION_CONFLICT)
		conflict(c);
	else if (cfield >= 0)
		bad_cdb(c, cfield, cbit);
	else if (pfield >= 0)
		bad_param(c, pfield, -1);
	else if (asc)
		check(c, SCSI_SK_ILLEGAL_REQUEST, asc);
	else if (r < 0)
		io_error(c, r, 1);
	else
		ok(c);
}

/* --- reservation conflicts (SPC-4 5.9.1 Table 46, SBC-3 Table 13) --- */

enum { ACC_ANY = 0, ACC_READ = 1, ACC_WRITE = 2 };

static int access_class(const scsi_cdb *k, const uint8_t *cdb)
{
	switch (k->op) {
	case SCSI_INQUIRY: case SCSI_REPORT_LUNS: case SCSI_REQUEST_SENSE:
	case SCSI_PR_IN: case SCSI_PR_OUT: case SCSI_MAINTENANCE_IN:
	case SCSI_READ_CAPACITY10: case SCSI_TEST_UNIT_READY:
		return ACC_ANY;
	case SCSI_SERVICE_ACTION_IN16:
		return k->sa == SCSI_SAI_READ_CAPACITY16 ? ACC_ANY : ACC_READ;
	case SCSI_PREVENT_ALLOW:
		return (cdb[4] & 3) ? ACC_WRITE : ACC_ANY;
	case SCSI_START_STOP_UNIT:
		return (cdb[4] & 1) && !(cdb[4] >> 4) ? ACC_READ : ACC_WRITE;
	case SCSI_READ6: case SCSI_READ10: case SCSI_READ12: case SCSI_READ16:
	case SCSI_VERIFY10: case SCSI_VERIFY12: case SCSI_VERIFY16:
	case SCSI_PREFETCH10: case SCSI_PREFETCH16: case SCSI_MODE_SENSE6:
	case SCSI_MODE_SENSE10:
		return ACC_READ;
	default:
		return ACC_WRITE;
	}
}

/* d->mu held. */
int sbc_pr_conflict(sbc_dev *d, const sbc_nexus *nx, const scsi_cdb *k, const uint8_t *cdb)
{
	int cls = access_class(k, cdb);
	if (!d->res || cls == ACC_ANY)
		return 0;
	pr_id me;
	sbc_who_of(nx, &me);
	int i = reg_find(d, &me);
	if (is_holder(d, i))
		return 0;
	if (i >= 0 && res_reg_only(d->type))
		return 0; /* registrants have access under the registrants-only types */
	if (d->type == PR_WE || d->type == PR_WE_RO || d->type == PR_WE_AR)
		return cls == ACC_WRITE;
	return 1; /* exclusive access: reads conflict too */
}

