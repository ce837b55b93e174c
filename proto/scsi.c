/* proto/scsi.c: see scsi.h. References: SPC-4 (r37) and SBC-3 (r35) section numbers
 * in the comments. */
#include <config.h>

#include "proto/scsi.h"

#include <errno.h>
#include <string.h>

uint32_t scsi_sense_fixed(uint8_t *s, int key, int asc, int info_valid, uint32_t info,
                          int cd, int field, int bit)
{
	memset(s, 0, SCSI_SENSE_FIXED_LEN);
	s[0] = 0x70 | (info_valid ? 0x80 : 0); /* current error, fixed format */
	s[2] = (uint8_t)(key & 0x0f);
	if (info_valid)
		be_put32(s + 3, info);
	s[7] = SCSI_SENSE_FIXED_LEN - 8;
	s[12] = (uint8_t)(asc >> 8);
	s[13] = (uint8_t)asc;
	if (field >= 0) {
		/* SPC-4 4.5.2.4.2: SKSV, C/D, BPV and the bit, then the field pointer. */
		s[15] = 0x80 | (cd ? 0x40 : 0) | (bit >= 0 ? 0x08 | (bit & 7) : 0);
		be_put16(s + 16, (uint16_t)field);
	}
	return SCSI_SENSE_FIXED_LEN;
}

size_t scsi_cdb_len(uint8_t op)
{
	switch (op >> 5) {
	case 0: return 6;
	case 1: case 2: return 10;
	case 4: return 16;
	case 5: return 12;
	default: return 0; /* 3: reserved/variable, 6 and 7: vendor specific */
	}
}

/* The protection field (bits 7-5 of byte 1) must be 0: no protection information. */
static int prot_ok(const uint8_t *cdb, scsi_cdb *c, int *field)
{
	c->wrprotect = cdb[1] >> 5;
	if (c->wrprotect) {
		*field = 1;
		return -EINVAL;
	}
	return 0;
}

int scsi_cdb_parse(const uint8_t *cdb, size_t len, scsi_cdb *c, int *field)
{
	memset(c, 0, sizeof(*c));
	*field = -1;
	if (len < 1)
		return -EMSGSIZE;
	c->op = cdb[0];
	size_t need = scsi_cdb_len(c->op);
	if (need == 0)
		return -ENOTSUP;
	if (len < need)
		return -EMSGSIZE;
	c->control = cdb[need - 1];
	switch (c->op) {
	case SCSI_TEST_UNIT_READY:
	case SCSI_PREVENT_ALLOW:
		return 0;
	case SCSI_REQUEST_SENSE:
	case SCSI_MODE_SENSE6:
	case SCSI_MODE_SELECT6:
		c->alloc = cdb[4];
		return 0;
	case SCSI_INQUIRY:
		c->alloc = be_get16(cdb + 3);
		return 0;
	case SCSI_START_STOP_UNIT:
		c->immed = cdb[1] & 1;
		return 0;
	case SCSI_READ6:
	case SCSI_WRITE6:
		c->lba = be_get24(cdb + 1) & 0x1fffff;
		c->nblocks = cdb[4] ? cdb[4] : 256; /* SBC-3 5.7: 0 means 256 */
		c->rw = c->op == SCSI_READ6 ? 1 : 2;
		return 0;
	case SCSI_READ_CAPACITY10:
		c->lba = be_get32(cdb + 2);
		c->alloc = 8;
		return 0;
	case SCSI_READ10:
	case SCSI_WRITE10:
	case SCSI_WRITE_VERIFY10:
	case SCSI_VERIFY10:
		c->lba = be_get32(cdb + 2);
		c->group = cdb[6] & 0x1f;
		c->nblocks = be_get16(cdb + 7);
		break;
	case SCSI_READ12:
	case SCSI_WRITE12:
	case SCSI_WRITE_VERIFY12:
	case SCSI_VERIFY12:
		c->lba = be_get32(cdb + 2);
		c->nblocks = be_get32(cdb + 6);
		c->group = cdb[10] & 0x1f;
		break;
	case SCSI_READ16:
	case SCSI_WRITE16:
	case SCSI_WRITE_VERIFY16:
	case SCSI_VERIFY16:
		c->lba = be_get64(cdb + 2);
		c->nblocks = be_get32(cdb + 10);
		c->group = cdb[14] & 0x1f;
		break;
	case SCSI_PREFETCH10:
	case SCSI_SYNC_CACHE10:
		c->immed = (cdb[1] >> 1) & 1;
		c->lba = be_get32(cdb + 2);
		c->nblocks = be_get16(cdb + 7);
		return 0;
	case SCSI_PREFETCH16:
	case SCSI_SYNC_CACHE16:
		c->immed = (cdb[1] >> 1) & 1;
		c->lba = be_get64(cdb + 2);
		c->nblocks = be_get32(cdb + 10);
		return 0;
	case SCSI_WRITE_SAME10:
	case SCSI_WRITE_SAME16:
		if (prot_ok(cdb, c, field) < 0)
			return -EINVAL;
		c->anchor = (cdb[1] >> 4) & 1;
		c->unmap = (cdb[1] >> 3) & 1;
		c->pbdata = (cdb[1] >> 2) & 1;
		c->lbdata = (cdb[1] >> 1) & 1;
		if (c->op == SCSI_WRITE_SAME10) {
			c->lba = be_get32(cdb + 2);
			c->nblocks = be_get16(cdb + 7);
		} else {
			c->ndob = cdb[1] & 1;
			c->lba = be_get64(cdb + 2);
			c->nblocks = be_get32(cdb + 10);
		}
		return 0;
	case SCSI_UNMAP:
		c->anchor = cdb[1] & 1;
		c->group = cdb[6] & 0x1f;
		c->alloc = be_get16(cdb + 7);
		return 0;
	case SCSI_MODE_SENSE10:
	case SCSI_MODE_SELECT10:
	case SCSI_PR_IN:
		c->sa = cdb[1] & 0x1f;
		c->alloc = be_get16(cdb + 7);
		return 0;
	case SCSI_PR_OUT:
		c->sa = cdb[1] & 0x1f;
		c->alloc = be_get32(cdb + 5);
		return 0;
	case SCSI_COMPARE_AND_WRITE:
		if (prot_ok(cdb, c, field) < 0)
			return -EINVAL;
		c->dpo = (cdb[1] >> 4) & 1;
		c->fua = (cdb[1] >> 3) & 1;
		c->lba = be_get64(cdb + 2);
		c->nblocks = cdb[13];
		c->group = cdb[14] & 0x1f;
		return 0;
	case SCSI_SERVICE_ACTION_IN16:
		c->sa = cdb[1] & 0x1f;
		c->lba = be_get64(cdb + 2);
		c->alloc = be_get32(cdb + 10);
		return 0;
	case SCSI_REPORT_LUNS:
		c->alloc = be_get32(cdb + 6);
		return 0;
	case SCSI_MAINTENANCE_IN:
		c->sa = cdb[1] & 0x1f;
		c->alloc = be_get32(cdb + 6);
		return 0;
	default:
		return -ENOTSUP;
	}
	/* READ, WRITE, VERIFY, WRITE AND VERIFY 10/12/16: byte 1 (SBC-3 5.x). */
	if (prot_ok(cdb, c, field) < 0)
		return -EINVAL;
	c->dpo = (cdb[1] >> 4) & 1;
	switch (c->op) {
	case SCSI_READ10: case SCSI_READ12: case SCSI_READ16:
		c->fua = (cdb[1] >> 3) & 1;
		c->rw = 1;
		break;
	case SCSI_WRITE10: case SCSI_WRITE12: case SCSI_WRITE16:
		c->fua = (cdb[1] >> 3) & 1;
		c->rw = 2;
		break;
	case SCSI_VERIFY10: case SCSI_VERIFY12: case SCSI_VERIFY16:
		c->bytchk = (cdb[1] >> 1) & 3;
		break;
	default: /* WRITE AND VERIFY */
		c->bytchk = (cdb[1] >> 1) & 1;
		c->rw = 2;
		break;
	}
	return 0;
}

/* --- INQUIRY --- */

/* A space-padded ASCII field of n bytes. */
static void put_ascii(uint8_t *p, const char *s, size_t n)
{
	size_t l = s ? strlen(s) : 0;
	memset(p, ' ', n);
	memcpy(p, s, l < n ? l : n);
}

/* Copy src[0..len) into buf up to cap; returns len. */
static uint32_t out(uint8_t *buf, uint32_t cap, const uint8_t *src, uint32_t len)
{
	memcpy(buf, src, len < cap ? len : cap);
	return len;
}

uint32_t scsi_inquiry_std(const scsi_ident *id, uint8_t *buf, uint32_t cap)
{
	uint8_t d[66];
	memset(d, 0, sizeof(d));
	d[0] = 0x00;   /* peripheral qualifier 0, direct access block device */
	d[2] = 0x06;   /* SPC-4 */
	d[3] = 0x12;   /* HISUP, response data format 2 */
	d[4] = sizeof(d) - 5;
	d[7] = 0x02;   /* CMDQUE */
	put_ascii(d + 8, id->vendor, 8);
	put_ascii(d + 16, id->product, 16);
	put_ascii(d + 32, id->revision, 4);
	/* version descriptors (SPC-4 Table 143): SAM-5, iSCSI, SPC-4, SBC-3 */
	be_put16(d + 58, 0x00a0);
	be_put16(d + 60, 0x0960);
	be_put16(d + 62, 0x0460);
	be_put16(d + 64, 0x04c0);
	return out(buf, cap, d, sizeof(d));
}

static const uint8_t vpd_pages[] = {0x00, 0x80, 0x83, 0xb0, 0xb1, 0xb2};

uint32_t scsi_inquiry_vpd(const scsi_ident *id, uint8_t page, uint8_t *buf, uint32_t cap)
{
	uint8_t d[512];
	uint32_t n = 4;
	memset(d, 0, sizeof(d));
	d[1] = page;
	switch (page) {
	case 0x00:
		memcpy(d + 4, vpd_pages, sizeof(vpd_pages));
		n += sizeof(vpd_pages);
		break;
	case 0x80: {
		size_t l = id->serial ? strlen(id->serial) : 0;
		if (l > 252)
			l = 252;
		memcpy(d + 4, id->serial, l);
		n += (uint32_t)l;
		break;
	}
	case 0x83: {
		/* NAA 6, associated with the logical unit, binary. */
		d[n] = 0x01;
		d[n + 1] = 0x03;
		d[n + 3] = 16;
		memcpy(d + n + 4, id->naa, 16);
		n += 20;
		if (id->target_name && id->target_name[0]) {
			/* SCSI name string of the target device, iSCSI, UTF-8, PIV: NUL
			 * terminated and padded to a multiple of 4 (SPC-4 7.8.6.11). */
			size_t l = strlen(id->target_name);
			if (l > 223)
				l = 223;
			uint32_t pl = (uint32_t)((l + 1 + 3) & ~(size_t)3);
			d[n] = 0x53;
			d[n + 1] = 0xa8;
			d[n + 3] = (uint8_t)pl;
			memcpy(d + n + 4, id->target_name, l);
			n += 4 + pl;
		}
		break;
	}
	case 0xb0: /* block limits (SBC-3 6.5.3) */
		n = 0x40;
		d[4] = 0x01; /* WSNZ: a WRITE SAME of zero blocks is refused */
		d[5] = 0xff; /* MAXIMUM COMPARE AND WRITE LENGTH */
		be_put16(d + 6, 1);
		be_put32(d + 8, id->max_xfer_blocks);
		be_put32(d + 12, id->opt_xfer_blocks);
		be_put32(d + 16, id->max_xfer_blocks);
		be_put32(d + 20, id->max_unmap_blocks);
		be_put32(d + 24, id->max_unmap_descs);
		be_put32(d + 28, id->unmap_granularity);
		be_put32(d + 32, 0x80000000u); /* UGAVALID, alignment 0 */
		be_put64(d + 36, id->max_write_same_blocks);
		break;
	case 0xb1: /* block device characteristics */
		n = 0x40;
		be_put16(d + 4, 0x0000); /* medium rotation rate not reported */
		break;
	case 0xb2: /* logical block provisioning (SBC-3 6.5.4) */
		n = 8;
		d[5] = 0x80 | 0x40 | 0x20 | 0x04; /* LBPU, LBPWS, LBPWS10, LBPRZ */
		d[6] = 0x02;                      /* thin provisioned */
		break;
	default:
		return 0;
	}
	be_put16(d + 2, (uint16_t)(n - 4));
	return out(buf, cap, d, n);
}

/* --- mode pages (SBC-3 6.4, SPC-4 7.5) --- */

enum { CACHING_LEN = 20, CONTROL_LEN = 12, IEC_LEN = 12 };

static void page_caching(const scsi_mode *m, int pc, uint8_t *p)
{
	memset(p, 0, CACHING_LEN);
	p[0] = 0x80 | SCSI_MP_CACHING; /* PS: saveable (daemon/sbc.c saves every change) */
	p[1] = CACHING_LEN - 2;
	if (pc == 1)
		p[2] = 0x04; /* WCE may change */
	else if (pc == 2)
		p[2] = 0x04; /* default: write-back cache on */
	else
		p[2] = (uint8_t)((m->wce ? 0x04 : 0) | (m->rcd ? 0x01 : 0));
}

static void page_control(const scsi_mode *m, int pc, uint8_t *p)
{
	memset(p, 0, CONTROL_LEN);
	p[0] = SCSI_MP_CONTROL;
	p[1] = CONTROL_LEN - 2;
	if (pc == 1)
		return; /* nothing may change */
	p[2] = (uint8_t)(m->d_sense && pc == 0 ? 0x04 : 0);
	p[3] = 0x10; /* QUEUE ALGORITHM MODIFIER 1: unrestricted reordering */
	p[4] = (uint8_t)(m->swp && pc == 0 ? 0x08 : 0);
	be_put16(p + 8, 0xffff); /* BUSY TIMEOUT PERIOD: unlimited */
}

static void page_iec(const scsi_mode *m, int pc, uint8_t *p)
{
	memset(p, 0, IEC_LEN);
	p[0] = 0x80 | SCSI_MP_IEC; /* PS: saveable */
	p[1] = IEC_LEN - 2;
	if (pc == 1) {
		p[2] = 0x80 | 0x08 | 0x04; /* PERF, DEXCPT, TEST */
		p[3] = 0x0f;               /* MRIE */
		be_put32(p + 4, 0xffffffffu);
		be_put32(p + 8, 0xffffffffu);
		return;
	}
	if (pc == 2) {
		p[2] = 0x08; /* DEXCPT: no informational exceptions to report */
		return;
	}
	p[2] = (uint8_t)((m->perf ? 0x80 : 0) | (m->dexcpt ? 0x08 : 0) | (m->test ? 0x04 : 0));
	p[3] = m->mrie & 0x0f;
	be_put32(p + 4, m->interval);
	be_put32(p + 8, m->report_count);
}

uint32_t scsi_mode_pages(const scsi_mode *m, int pc, uint8_t page, uint8_t subpage,
                         uint8_t *buf, uint32_t cap)
{
	uint8_t d[CACHING_LEN + CONTROL_LEN + IEC_LEN];
	uint32_t n = 0;
	/* Subpage 0 only, or all subpages (0xff) with all pages. */
	if (subpage != 0 && !(page == SCSI_MP_ALL && subpage == 0xff))
		return 0;
	if (page == SCSI_MP_CACHING || page == SCSI_MP_ALL) {
		page_caching(m, pc, d + n);
		n += CACHING_LEN;
	}
	if (page == SCSI_MP_CONTROL || page == SCSI_MP_ALL) {
		page_control(m, pc, d + n);
		n += CONTROL_LEN;
	}
	if (page == SCSI_MP_IEC || page == SCSI_MP_ALL) {
		page_iec(m, pc, d + n);
		n += IEC_LEN;
	}
	return n ? out(buf, cap, d, n) : 0;
}

int scsi_mode_select_page(scsi_mode *m, const uint8_t *p, size_t len, int *field)
{
	uint8_t cur[CACHING_LEN], chg[CACHING_LEN];
	size_t plen;
	*field = 0;
	if (len < 2)
		return -EINVAL;
	if (p[0] & 0x40) /* SPF: no subpages here */
		return -ENOTSUP;
	switch (p[0] & 0x3f) {
	case SCSI_MP_CACHING:
		page_caching(m, 0, cur), page_caching(m, 1, chg), plen = CACHING_LEN;
		break;
	case SCSI_MP_CONTROL:
		page_control(m, 0, cur), page_control(m, 1, chg), plen = CONTROL_LEN;
		break;
	case SCSI_MP_IEC:
		page_iec(m, 0, cur), page_iec(m, 1, chg), plen = IEC_LEN;
		break;
	default:
		return -ENOTSUP;
	}
	if (p[1] != plen - 2) {
		*field = 1;
		return -EINVAL;
	}
	if (len < plen)
		return -EINVAL;
	/* SPC-4 7.5.2: a field that is not changeable must hold its current value. */
	for (size_t i = 2; i < plen; i++)
		if ((p[i] ^ cur[i]) & ~chg[i]) {
			*field = (int)i;
			return -EINVAL;
		}
	switch (p[0] & 0x3f) {
	case SCSI_MP_CACHING:
		m->wce = (p[2] >> 2) & 1;
		break;
	case SCSI_MP_IEC:
		m->perf = p[2] >> 7;
		m->dexcpt = (p[2] >> 3) & 1;
		m->test = (p[2] >> 2) & 1;
		m->mrie = p[3] & 0x0f;
		m->interval = be_get32(p + 4);
		m->report_count = be_get32(p + 8);
		break;
	default:
		break;
	}
	return 0;
}
