/* test-sbc: the SCSI device server (daemon/sbc.c) and the LUNs (daemon/lun.c) on a
 * real store, CDBs straight into sbc_exec, no network: every command family of
 * issue 11 with its sense data, persistent reservations across two nexuses and
 * across a "crash" (the store closed without a commit and opened again: only what
 * the intent log holds survives), the write-back cache (acknowledged with SYNCHRONIZE
 * CACHE or FUA is durable; reads see cached writes), UNMAP and holes, and dedup of
 * a backup written twice. */
#include <config.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/endian.h"
#include "daemon/appl.h"
#include "daemon/lun.h"
#include "daemon/sbc.h"
#include "fs/ns.h"
#include "proto/scsi.h"
#include "tests/testutil.h"
#include "tests/tu_appl.h"

#define NDISK 6
#define DISK_MB 96

static appl ap;
static char *paths[NDISK];

static void appl_down(int commit)
{
	bks_err e = {0};
	if (commit)
		ns_commit(ap.n, &e);
	ns_close(ap.n);
	store_close(ap.s); /* without a commit: what only the txg held is lost */
	ap.n = NULL;
	ap.s = NULL;
}

/* --- commands --- */

static sbc_nexus nx1 = {.id = 1, .initiator = "iqn.2026-01.test:one",
                        .isid = {0x80, 0, 0, 0, 0, 1}, .tpgt = 1,
                        .target = "iqn.2026-12.io.bkstor:test-array:disk0"};
static sbc_nexus nx2 = {.id = 2, .initiator = "iqn.2026-01.test:two",
                        .isid = {0x80, 0, 0, 0, 0, 2}, .tpgt = 1,
                        .target = "iqn.2026-12.io.bkstor:test-array:disk0"};

static uint8_t din_buf[SBC_MAX_XFER];
static sbc_cmd last;

/* Run one CDB (hex bytes given as ints); data-out dout[0..dlen), data-in room cap. */
static uint8_t run(sbc_dev *d, const sbc_nexus *nx, const uint8_t *cdb, size_t clen,
                   const void *dout, uint32_t dlen, uint32_t cap)
{
	memset(&last, 0, sizeof(last));
	last.cdb = cdb;
	last.cdb_len = clen;
	last.nx = nx;
	last.dout = dout;
	last.dout_len = dlen;
	last.din = din_buf;
	last.din_cap = cap;
	sbc_exec(d, &last);
	return last.status;
}

static int sense_key(void) { return last.sense_len ? last.sense[2] & 0x0f : -1; }
static int sense_asc(void) { return last.sense_len ? last.sense[12] << 8 | last.sense[13] : -1; }
static int sense_field(void)
{
	return last.sense_len && (last.sense[15] & 0x80) ? be_get16(last.sense + 16) : -1;
}

/* REQUIRE in a void function */
#define REQUIRE_V(cond, ...)                                                         \
	do {                                                                            \
		int rq_ = !!(cond);                                                         \
		CHECK(rq_, __VA_ARGS__);                                                    \
		if (!rq_)                                                                   \
			return;                                                                 \
	} while (0)

#define EXPECT_SENSE(st, key, asc, what)                                                 \
	CHECK((st) == SBC_CHECK_CONDITION && sense_key() == (key) && sense_asc() == (asc), \
	      "%s: status %#x key %#x asc %#06x", what, st, sense_key(), sense_asc())

static void cdb_rw16(uint8_t *c, uint8_t op, uint64_t lba, uint32_t n, int fua)
{
	memset(c, 0, 16);
	c[0] = op;
	c[1] = fua ? 0x08 : 0;
	be_put64(c + 2, lba);
	be_put32(c + 10, n);
}

static void cdb_rw10(uint8_t *c, uint8_t op, uint32_t lba, uint16_t n, int fua)
{
	memset(c, 0, 10);
	c[0] = op;
	c[1] = fua ? 0x08 : 0;
	be_put32(c + 2, lba);
	be_put16(c + 7, n);
}

static uint8_t tur(sbc_dev *d, const sbc_nexus *nx)
{
	uint8_t c[6] = {0};
	return run(d, nx, c, 6, NULL, 0, 0);
}

/* Clear pending unit attentions of a nexus (as initiators do after login). */
static void clear_ua(sbc_dev *d, const sbc_nexus *nx)
{
	for (int i = 0; i < 16 && tur(d, nx) != SBC_GOOD; i++)
		;
}

static uint8_t wr16(sbc_dev *d, const sbc_nexus *nx, uint64_t lba, const void *buf,
                    uint32_t nblk, uint32_t bs, int fua)
{
	uint8_t c[16];
	cdb_rw16(c, SCSI_WRITE16, lba, nblk, fua);
	return run(d, nx, c, 16, buf, nblk * bs, 0);
}

static uint8_t rd16(sbc_dev *d, const sbc_nexus *nx, uint64_t lba, uint32_t nblk, uint32_t bs)
{
	uint8_t c[16];
	cdb_rw16(c, SCSI_READ16, lba, nblk, 0);
	return run(d, nx, c, 16, NULL, 0, nblk * bs);
}

static uint8_t sync_cache(sbc_dev *d, const sbc_nexus *nx)
{
	uint8_t c[10] = {SCSI_SYNC_CACHE10};
	return run(d, nx, c, 10, NULL, 0, 0);
}

/* --- the basic commands --- */

static void t_basic(sbc_dev *d, uint32_t bs, uint64_t size)
{
	uint8_t c[16];
	/* The first command of a new nexus gets the power-on unit attention. */
	uint8_t st = tur(d, &nx1);
	EXPECT_SENSE(st, SCSI_SK_UNIT_ATTENTION, SCSI_ASC_POWER_ON_OCCURRED, "first TUR");
	CHECK(tur(d, &nx1) == SBC_GOOD, "second TUR");

	/* INQUIRY standard data */
	memset(c, 0, 6);
	c[0] = SCSI_INQUIRY;
	be_put16(c + 3, 96);
	st = run(d, &nx1, c, 6, NULL, 0, 96);
	CHECK(st == SBC_GOOD && last.din_len == 66 && din_buf[0] == 0 && din_buf[2] == 6 &&
	      !memcmp(din_buf + 8, "BKSTOR  ", 8), "inquiry std: %#x len %u", st, last.din_len);
	/* allocation length cuts */
	be_put16(c + 3, 5);
	st = run(d, &nx1, c, 6, NULL, 0, 96);
	CHECK(st == SBC_GOOD && last.din_len == 5 && din_buf[4] == 61, "inquiry alloc 5");
	/* page code without EVPD */
	be_put16(c + 3, 96);
	c[2] = 0x80;
	st = run(d, &nx1, c, 6, NULL, 0, 96);
	EXPECT_SENSE(st, SCSI_SK_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_CDB, "page w/o evpd");
	CHECK(sense_field() == 2, "field pointer %d", sense_field());
	/* VPD 0x00 */
	c[1] = 1;
	c[2] = 0;
	st = run(d, &nx1, c, 6, NULL, 0, 96);
	CHECK(st == SBC_GOOD && din_buf[1] == 0 && be_get16(din_buf + 2) == 6 &&
	      din_buf[4] == 0 && din_buf[5] == 0x80 && din_buf[6] == 0x83 && din_buf[9] == 0xb2,
	      "vpd 0x00");
	/* VPD 0x80: the unit serial */
	c[2] = 0x80;
	st = run(d, &nx1, c, 6, NULL, 0, 96);
	lun_info li;
	lun_get_info(sbc_dev_lun(d), &li);
	CHECK(st == SBC_GOOD && din_buf[3] == strlen(li.serial) &&
	      !memcmp(din_buf + 4, li.serial, din_buf[3]), "vpd 0x80");
	/* VPD 0x83: NAA designator and the target name */
	c[2] = 0x83;
	be_put16(c + 3, 255);
	st = run(d, &nx1, c, 6, NULL, 0, 255);
	CHECK(st == SBC_GOOD && din_buf[4] == 0x01 && din_buf[5] == 0x03 && din_buf[7] == 16 &&
	      !memcmp(din_buf + 8, li.naa, 16) && (din_buf[8] >> 4) == 6, "vpd 0x83 naa");
	CHECK(din_buf[24] == 0x53 && din_buf[25] == 0xa8 &&
	      !strcmp((char *)din_buf + 28, nx1.target), "vpd 0x83 name");
	/* VPD 0xb0, 0xb2 */
	c[2] = 0xb0;
	st = run(d, &nx1, c, 6, NULL, 0, 255);
	CHECK(st == SBC_GOOD && be_get16(din_buf + 2) == 0x3c &&
	      be_get32(din_buf + 8) == SBC_MAX_XFER / bs && be_get32(din_buf + 20) > 0 &&
	      be_get32(din_buf + 24) > 0 && be_get64(din_buf + 36) > 0, "vpd 0xb0");
	c[2] = 0xb2;
	st = run(d, &nx1, c, 6, NULL, 0, 255);
	CHECK(st == SBC_GOOD && (din_buf[5] & 0xe4) == 0xe4 && (din_buf[6] & 7) == 2, "vpd 0xb2");
	c[2] = 0x99;
	st = run(d, &nx1, c, 6, NULL, 0, 255);
	EXPECT_SENSE(st, SCSI_SK_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_CDB, "vpd 0x99");

	/* READ CAPACITY 10 / 16 */
	memset(c, 0, 10);
	c[0] = SCSI_READ_CAPACITY10;
	st = run(d, &nx1, c, 10, NULL, 0, 8);
	CHECK(st == SBC_GOOD && be_get32(din_buf) == size / bs - 1 && be_get32(din_buf + 4) == bs,
	      "read capacity 10");
	memset(c, 0, 16);
	c[0] = SCSI_SERVICE_ACTION_IN16;
	c[1] = SCSI_SAI_READ_CAPACITY16;
	be_put32(c + 10, 32);
	st = run(d, &nx1, c, 16, NULL, 0, 32);
	CHECK(st == SBC_GOOD && last.din_len == 32 && be_get64(din_buf) == size / bs - 1 &&
	      be_get32(din_buf + 8) == bs && (din_buf[14] & 0xc0) == 0xc0, "read capacity 16");

	/* REPORT LUNS */
	memset(c, 0, 12);
	c[0] = SCSI_REPORT_LUNS;
	be_put32(c + 6, 64);
	st = run(d, &nx1, c, 12, NULL, 0, 64);
	CHECK(st == SBC_GOOD && last.din_len == 16 && be_get32(din_buf) == 8 &&
	      be_get64(din_buf + 8) == 0, "report luns");
	be_put32(c + 6, 4);
	st = run(d, &nx1, c, 12, NULL, 0, 64);
	EXPECT_SENSE(st, SCSI_SK_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_CDB, "report luns 4");

	/* unknown opcode */
	memset(c, 0, 10);
	c[0] = 0x3c;
	st = run(d, &nx1, c, 10, NULL, 0, 0);
	EXPECT_SENSE(st, SCSI_SK_ILLEGAL_REQUEST, SCSI_ASC_INVALID_OPCODE, "opcode 0x3c");

	/* WRITE 10 / READ 10 round trip; a never-written block reads as zeros */
	uint8_t *w = malloc(64 * bs);
	tu_fill(1, 2, 3, w, 64 * bs);
	cdb_rw10(c, SCSI_WRITE10, 100, 64, 0);
	st = run(d, &nx1, c, 10, w, 64 * bs, 0);
	CHECK(st == SBC_GOOD, "write10 %#x", st);
	cdb_rw10(c, SCSI_READ10, 100, 64, 0);
	st = run(d, &nx1, c, 10, NULL, 0, 64 * bs);
	CHECK(st == SBC_GOOD && last.din_len == 64 * bs && !memcmp(din_buf, w, 64 * bs),
	      "read10 back");
	cdb_rw10(c, SCSI_READ10, 90, 10, 0);
	st = run(d, &nx1, c, 10, NULL, 0, 10 * bs);
	uint8_t *z = calloc(1, 10 * bs);
	CHECK(st == SBC_GOOD && !memcmp(din_buf, z, 10 * bs), "unwritten reads zeros");
	free(z);
	/* beyond the end */
	cdb_rw16(c, SCSI_READ16, size / bs - 1, 2, 0);
	st = run(d, &nx1, c, 16, NULL, 0, 2 * bs);
	EXPECT_SENSE(st, SCSI_SK_ILLEGAL_REQUEST, SCSI_ASC_LBA_OUT_OF_RANGE, "read16 past end");
	cdb_rw16(c, SCSI_WRITE16, size / bs, 1, 0);
	st = run(d, &nx1, c, 16, w, bs, 0);
	EXPECT_SENSE(st, SCSI_SK_ILLEGAL_REQUEST, SCSI_ASC_LBA_OUT_OF_RANGE, "write16 past end");
	cdb_rw16(c, SCSI_READ16, ~0ull - 1, 4, 0);
	st = run(d, &nx1, c, 16, NULL, 0, 4 * bs);
	EXPECT_SENSE(st, SCSI_SK_ILLEGAL_REQUEST, SCSI_ASC_LBA_OUT_OF_RANGE, "lba wraps");
	/* The initiator's expected length shorter than the CDB's transfer (iSCSI residual
	 * overflow): GOOD, the whole blocks that came written, nothing past them. */
	{
		uint8_t *a = malloc(2 * bs), *b = malloc(2 * bs);
		REQUIRE_V(a && b, "malloc");
		memset(a, 'a', 2 * bs);
		memset(b, 'b', 2 * bs);
		CHECK(wr16(d, &nx1, 10, a, 2, bs, 1) == SBC_GOOD, "write 'a'");
		cdb_rw10(c, SCSI_WRITE10, 10, 2, 0);
		st = run(d, &nx1, c, 10, b, bs + bs / 2, 0);
		CHECK(st == SBC_GOOD, "write10 with a short data-out: status %#x", st);
		CHECK(rd16(d, &nx1, 10, 2, bs) == SBC_GOOD && !memcmp(din_buf, b, bs) &&
		      !memcmp(din_buf + bs, a, bs),
		      "a short write10 wrote other than its first block");
		free(a);
		free(b);
	}
	/* RDPROTECT: no protection information */
	cdb_rw10(c, SCSI_READ10, 0, 1, 0);
	c[1] = 0x20;
	st = run(d, &nx1, c, 10, NULL, 0, bs);
	EXPECT_SENSE(st, SCSI_SK_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_CDB, "rdprotect");
	CHECK(sense_field() == 1, "rdprotect field %d", sense_field());
	/* READ 6 / WRITE 6 */
	memset(c, 0, 6);
	c[0] = SCSI_WRITE6;
	c[3] = 7;
	c[4] = 2;
	st = run(d, &nx1, c, 6, w, 2 * bs, 0);
	c[0] = SCSI_READ6;
	uint8_t st2 = run(d, &nx1, c, 6, NULL, 0, 2 * bs);
	CHECK(st == SBC_GOOD && st2 == SBC_GOOD && !memcmp(din_buf, w, 2 * bs), "rw6");
	/* READ 12 / WRITE 12 with FUA */
	memset(c, 0, 12);
	c[0] = SCSI_WRITE12;
	c[1] = 0x08;
	be_put32(c + 2, 300);
	be_put32(c + 6, 3);
	st = run(d, &nx1, c, 12, w + bs, 3 * bs, 0);
	c[0] = SCSI_READ12;
	st2 = run(d, &nx1, c, 12, NULL, 0, 3 * bs);
	CHECK(st == SBC_GOOD && st2 == SBC_GOOD && !memcmp(din_buf, w + bs, 3 * bs), "rw12");
	CHECK(sync_cache(d, &nx1) == SBC_GOOD, "sync cache");
	free(w);
}


/* --- provisioning: WRITE SAME, UNMAP, GET LBA STATUS --- */

/* GET LBA STATUS at lba: the first descriptor's (blocks, status). */
static int lba_status(sbc_dev *d, uint64_t lba, uint32_t *nblk, int *st)
{
	uint8_t c[16] = {SCSI_SERVICE_ACTION_IN16, SCSI_SAI_GET_LBA_STATUS};
	be_put64(c + 2, lba);
	be_put32(c + 10, 1024);
	if (run(d, &nx1, c, 16, NULL, 0, 1024) != SBC_GOOD || last.din_len < 24)
		return -1;
	CHECK(be_get64(din_buf + 8) == lba, "descriptor lba");
	*nblk = be_get32(din_buf + 16);
	*st = din_buf[20] & 0x0f;
	return 0;
}

static void t_provisioning(sbc_dev *d, uint32_t bs, uint64_t size)
{
	uint8_t c[16], blk[4096], *w = malloc(256 * bs);
	uint32_t n;
	int st;
	tu_fill(5, 6, 7, w, 256 * bs);
	/* 256 blocks at 2048: mapped */
	REQUIRE_V(wr16(d, &nx1, 2048, w, 256, bs, 0) == SBC_GOOD, "write");
	CHECK(lba_status(d, 2048, &n, &st) == 0 && st == 0 && n == 256, "mapped %u st %d", n, st);
	CHECK(lba_status(d, 1024, &n, &st) == 0 && st == 1 && n == 1024, "hole %u st %d", n, st);

	/* UNMAP blocks 2100..2149: they read as zeros, GET LBA STATUS says deallocated */
	uint8_t p[24] = {0};
	be_put16(p, 22);
	be_put16(p + 2, 16);
	be_put64(p + 8, 2100);
	be_put32(p + 16, 50);
	memset(c, 0, 10);
	c[0] = SCSI_UNMAP;
	be_put16(c + 7, 24);
	CHECK(run(d, &nx1, c, 10, p, 24, 0) == SBC_GOOD, "unmap");
	CHECK(rd16(d, &nx1, 2048, 256, bs) == SBC_GOOD && !memcmp(din_buf, w, 52 * bs) &&
	      !memcmp(din_buf + 102 * bs, w + 102 * bs, 154 * bs), "around the unmapped range");
	int zero = 1;
	for (uint32_t i = 52 * bs; i < 102 * bs; i++)
		zero &= din_buf[i] == 0;
	CHECK(zero, "unmapped blocks read as zeros");
	CHECK(lba_status(d, 2048, &n, &st) == 0 && st == 0 && n == 52, "mapped head %u", n);
	CHECK(lba_status(d, 2100, &n, &st) == 0 && st == 1 && n == 50, "deallocated %u st %d", n, st);
	CHECK(lba_status(d, 2150, &n, &st) == 0 && st == 0 && n == 154, "mapped tail %u", n);
	/* UNMAP errors: past the end, short list, ANCHOR */
	be_put64(p + 8, size / bs - 10);
	be_put32(p + 16, 11);
	uint8_t s1 = run(d, &nx1, c, 10, p, 24, 0);
	EXPECT_SENSE(s1, SCSI_SK_ILLEGAL_REQUEST, SCSI_ASC_LBA_OUT_OF_RANGE, "unmap past end");
	be_put16(c + 7, 4);
	s1 = run(d, &nx1, c, 10, p, 4, 0);
	EXPECT_SENSE(s1, SCSI_SK_ILLEGAL_REQUEST, SCSI_ASC_PARAM_LIST_LENGTH_ERROR, "unmap len 4");
	be_put16(c + 7, 24);
	c[1] = 1;
	s1 = run(d, &nx1, c, 10, p, 24, 0);
	EXPECT_SENSE(s1, SCSI_SK_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_CDB, "unmap anchor");
	be_put16(c + 7, 0);
	c[1] = 0;
	CHECK(run(d, &nx1, c, 10, NULL, 0, 0) == SBC_GOOD, "unmap of nothing");
	CHECK(lba_status(d, size / bs - 1, &n, &st) == 0 && n == 1, "last block");
	memset(c, 0, 16);
	c[0] = SCSI_SERVICE_ACTION_IN16;
	c[1] = SCSI_SAI_GET_LBA_STATUS;
	be_put64(c + 2, size / bs);
	be_put32(c + 10, 64);
	s1 = run(d, &nx1, c, 16, NULL, 0, 64);
	EXPECT_SENSE(s1, SCSI_SK_ILLEGAL_REQUEST, SCSI_ASC_LBA_OUT_OF_RANGE, "lba status past end");

	/* WRITE SAME 16: a pattern over 300 blocks */
	memset(blk, 0xa5, sizeof(blk));
	memset(c, 0, 16);
	c[0] = SCSI_WRITE_SAME16;
	be_put64(c + 2, 4000);
	be_put32(c + 10, 300);
	CHECK(run(d, &nx1, c, 16, blk, bs, 0) == SBC_GOOD, "write same");
	CHECK(rd16(d, &nx1, 4000, 300, bs) == SBC_GOOD, "read it");
	int same = 1;
	for (uint32_t i = 0; i < 300 * bs; i++)
		same &= din_buf[i] == 0xa5;
	CHECK(same, "write same pattern");
	/* WRITE SAME 10 with UNMAP and a zero block: deallocated */
	memset(blk, 0, sizeof(blk));
	memset(c, 0, 10);
	c[0] = SCSI_WRITE_SAME10;
	c[1] = 0x08;
	be_put32(c + 2, 4000);
	be_put16(c + 7, 100);
	CHECK(run(d, &nx1, c, 10, blk, bs, 0) == SBC_GOOD, "write same unmap");
	CHECK(lba_status(d, 4000, &n, &st) == 0 && st == 1 && n == 100, "ws unmap: %u st %d", n, st);
	/* WRITE SAME 16 NDOB + UNMAP: no data-out */
	memset(c, 0, 16);
	c[0] = SCSI_WRITE_SAME16;
	c[1] = 0x09;
	be_put64(c + 2, 4100);
	be_put32(c + 10, 200);
	CHECK(run(d, &nx1, c, 16, NULL, 0, 0) == SBC_GOOD, "write same ndob");
	CHECK(lba_status(d, 4000, &n, &st) == 0 && st == 1 && n >= 300, "ndob: %u st %d", n, st);
	/* zero blocks (WSNZ), past the end */
	be_put32(c + 10, 0);
	s1 = run(d, &nx1, c, 16, NULL, 0, 0);
	EXPECT_SENSE(s1, SCSI_SK_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_CDB, "ws 0 blocks");
	be_put64(c + 2, size / bs - 1);
	be_put32(c + 10, 2);
	s1 = run(d, &nx1, c, 16, NULL, 0, 0);
	EXPECT_SENSE(s1, SCSI_SK_ILLEGAL_REQUEST, SCSI_ASC_LBA_OUT_OF_RANGE, "ws past end");
	free(w);
}

/* --- VERIFY, WRITE AND VERIFY, COMPARE AND WRITE, PRE-FETCH --- */

static void t_compare(sbc_dev *d, uint32_t bs)
{
	uint8_t c[16], *w = malloc(16 * bs), *x = malloc(16 * bs);
	tu_fill(9, 9, 9, w, 16 * bs);
	REQUIRE_V(wr16(d, &nx1, 6000, w, 8, bs, 1) == SBC_GOOD, "write");
	/* VERIFY 16 BYTCHK 0, 1 (match and miscompare at byte 5000), 3 */
	memset(c, 0, 16);
	c[0] = SCSI_VERIFY16;
	be_put64(c + 2, 6000);
	be_put32(c + 10, 8);
	CHECK(run(d, &nx1, c, 16, NULL, 0, 0) == SBC_GOOD, "verify bytchk 0");
	c[1] = 0x02;
	CHECK(run(d, &nx1, c, 16, w, 8 * bs, 0) == SBC_GOOD, "verify bytchk 1");
	memcpy(x, w, 8 * bs);
	x[5000] ^= 1;
	uint8_t st = run(d, &nx1, c, 16, x, 8 * bs, 0);
	EXPECT_SENSE(st, SCSI_SK_MISCOMPARE, SCSI_ASC_MISCOMPARE_DURING_VERIFY, "verify mismatch");
	CHECK((last.sense[0] & 0x80) && be_get32(last.sense + 3) == 5000, "miscompare offset %u",
	      be_get32(last.sense + 3));
	c[1] = 0x06; /* BYTCHK 3: one block against all */
	st = run(d, &nx1, c, 16, w, bs, 0);
	EXPECT_SENSE(st, SCSI_SK_MISCOMPARE, SCSI_ASC_MISCOMPARE_DURING_VERIFY, "bytchk 3");
	c[1] = 0x04; /* BYTCHK 2: reserved */
	st = run(d, &nx1, c, 16, w, bs, 0);
	EXPECT_SENSE(st, SCSI_SK_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_CDB, "bytchk 2");
	/* WRITE AND VERIFY 10 */
	memset(c, 0, 10);
	c[0] = SCSI_WRITE_VERIFY10;
	c[1] = 0x02;
	be_put32(c + 2, 7000);
	be_put16(c + 7, 4);
	CHECK(run(d, &nx1, c, 10, w + 8 * bs, 4 * bs, 0) == SBC_GOOD, "write and verify");
	CHECK(rd16(d, &nx1, 7000, 4, bs) == SBC_GOOD && !memcmp(din_buf, w + 8 * bs, 4 * bs),
	      "write and verify wrote");
	/* COMPARE AND WRITE: match (the new blocks land), then a miscompare at byte 77
	 * of the second block (nothing written) */
	memset(c, 0, 16);
	c[0] = SCSI_COMPARE_AND_WRITE;
	be_put64(c + 2, 6000);
	c[13] = 2;
	memcpy(x, w, 2 * bs);
	memcpy(x + 2 * bs, w + 10 * bs, 2 * bs);
	CHECK(run(d, &nx1, c, 16, x, 4 * bs, 0) == SBC_GOOD, "caw match");
	CHECK(rd16(d, &nx1, 6000, 2, bs) == SBC_GOOD && !memcmp(din_buf, w + 10 * bs, 2 * bs),
	      "caw wrote");
	memcpy(x, w + 10 * bs, 2 * bs);
	x[bs + 77] ^= 0x40;
	memcpy(x + 2 * bs, w, 2 * bs);
	st = run(d, &nx1, c, 16, x, 4 * bs, 0);
	EXPECT_SENSE(st, SCSI_SK_MISCOMPARE, SCSI_ASC_MISCOMPARE_DURING_VERIFY, "caw miscompare");
	CHECK(be_get32(last.sense + 3) == bs + 77, "caw offset %u", be_get32(last.sense + 3));
	CHECK(rd16(d, &nx1, 6000, 2, bs) == SBC_GOOD && !memcmp(din_buf, w + 10 * bs, 2 * bs),
	      "caw miscompare wrote nothing");
	/* 0 blocks: nothing to do, unless data came (256 blocks wrap to 0) */
	c[13] = 0;
	CHECK(run(d, &nx1, c, 16, NULL, 0, 0) == SBC_GOOD, "caw 0 blocks");
	st = run(d, &nx1, c, 16, x, 4 * bs, 0);
	EXPECT_SENSE(st, SCSI_SK_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_CDB, "caw 0 with data");
	CHECK(sense_field() == 13, "caw field %d", sense_field());
	/* PRE-FETCH 10/16 */
	memset(c, 0, 16);
	c[0] = SCSI_PREFETCH16;
	be_put64(c + 2, 6000);
	be_put32(c + 10, 8);
	CHECK(run(d, &nx1, c, 16, NULL, 0, 0) == SBC_GOOD, "prefetch16");
	memset(c, 0, 10);
	c[0] = SCSI_PREFETCH10;
	be_put32(c + 2, 0xfffffff0u);
	be_put16(c + 7, 1);
	st = run(d, &nx1, c, 10, NULL, 0, 0);
	EXPECT_SENSE(st, SCSI_SK_ILLEGAL_REQUEST, SCSI_ASC_LBA_OUT_OF_RANGE, "prefetch past end");
	free(w);
	free(x);
}

/* --- mode pages, opcodes, start stop, request sense --- */

/* The caching page's WCE as MODE SENSE 6 reports it for page control pc; -1 on an
 * error. */
static int wce_of(sbc_dev *d, int pc)
{
	uint8_t c[6] = {SCSI_MODE_SENSE6, 0x08, (uint8_t)(pc << 6 | 0x08), 0, 255, 0};
	if (run(d, &nx1, c, 6, NULL, 0, 255) != SBC_GOOD || last.din_len < 4 + 20)
		return -1;
	return (din_buf[6] >> 2) & 1;
}

/* The version of disk0's meta record (docs/format.md "LUN records"); -1 on an error. */
static int meta_version(void)
{
	uint64_t sys;
	ns_attr a;
	uint8_t b[16];
	size_t got = 0;
	int v = -1;
	appl_lock(&ap);
	if (ns_system_dir(ap.n, &sys) == 0 && ns_lookup(ap.n, sys, "luns", &a) == 0 &&
	    ns_lookup(ap.n, a.id, "disk0", &a) == 0 && ns_lookup(ap.n, a.id, "meta", &a) == 0 &&
	    store_read(ap.s, a.id, 0, b, sizeof(b), &got) == 0 && got == sizeof(b))
		v = (int)le_get32(b + 8);
	appl_unlock(&ap);
	return v;
}

/* MODE SELECT 6 of the caching page with WCE on or off: the status. */
static uint8_t set_wce(sbc_dev *d, int on)
{
	uint8_t c[6] = {SCSI_MODE_SELECT6, 0x10, 0, 0, 24, 0}, p[24];
	memset(p, 0, sizeof(p));
	p[4] = 0x08;
	p[5] = 0x12;
	p[6] = on ? 0x04 : 0;
	return run(d, &nx1, c, 6, p, 24, 0);
}

static void t_modes(sbc_dev *d, uint32_t bs)
{
	uint8_t c[16], p[64];
	/* MODE SENSE 6, all pages: header, block descriptor, caching + control + IEC */
	memset(c, 0, 6);
	c[0] = SCSI_MODE_SENSE6;
	c[2] = 0x3f;
	c[4] = 255;
	uint8_t st = run(d, &nx1, c, 6, NULL, 0, 255);
	CHECK(st == SBC_GOOD && din_buf[0] == last.din_len - 1 && din_buf[3] == 8 &&
	      be_get24(din_buf + 9) == bs && (din_buf[2] & 0x10), "mode sense 6 header");
	/* (PS set on the caching and IEC pages: their values are saved) */
	CHECK(last.din_len == 4 + 8 + 20 + 12 + 12 && din_buf[12] == 0x88 &&
	      (din_buf[14] & 0x04) && din_buf[32] == 0x0a && din_buf[44] == 0x9c,
	      "mode sense 6 pages (len %u)", last.din_len);
	/* DBD: no block descriptor */
	c[1] = 0x08;
	c[2] = 0x08;
	st = run(d, &nx1, c, 6, NULL, 0, 255);
	CHECK(st == SBC_GOOD && din_buf[3] == 0 && din_buf[4] == 0x88 && last.din_len == 24,
	      "dbd");
	/* changeable values: WCE */
	c[2] = 0x48;
	st = run(d, &nx1, c, 6, NULL, 0, 255);
	CHECK(st == SBC_GOOD && din_buf[6] == 0x04, "changeable caching %#x", din_buf[6]);
	/* saved values: every change is saved, WCE on so far */
	c[2] = 0xc8;
	st = run(d, &nx1, c, 6, NULL, 0, 255);
	CHECK(st == SBC_GOOD && din_buf[4] == 0x88 && din_buf[6] == 0x04, "saved caching %#x",
	      din_buf[6]);
	/* MODE SENSE 10 with a long LBA descriptor */
	memset(c, 0, 10);
	c[0] = SCSI_MODE_SENSE10;
	c[1] = 0x10;
	c[2] = 0x0a;
	be_put16(c + 7, 255);
	st = run(d, &nx1, c, 10, NULL, 0, 255);
	CHECK(st == SBC_GOOD && be_get16(din_buf + 6) == 16 && din_buf[4] == 1 &&
	      be_get32(din_buf + 8 + 12) == bs && din_buf[24] == 0x0a, "mode sense 10 llbaa");
	/* MODE SELECT 6: WCE off; the other nexus hears of it */
	sbc_nexus_add(d, &nx2);
	clear_ua(d, &nx2);
	memset(p, 0, sizeof(p));
	p[4] = 0x08;
	p[5] = 0x12;
	memset(c, 0, 6);
	c[0] = SCSI_MODE_SELECT6;
	c[1] = 0x10;
	c[4] = 24;
	CHECK(run(d, &nx1, c, 6, p, 24, 0) == SBC_GOOD, "mode select wce 0: sense %#x/%#x f %d",
	      sense_key(), sense_asc(), sense_field());
	st = tur(d, &nx2);
	EXPECT_SENSE(st, SCSI_SK_UNIT_ATTENTION, SCSI_ASC_MODE_PARAMS_CHANGED, "nx2 ua");
	memset(c, 0, 6);
	c[0] = SCSI_MODE_SENSE6;
	c[1] = 0x08;
	c[2] = 0x08;
	c[4] = 255;
	st = run(d, &nx1, c, 6, NULL, 0, 255);
	CHECK(st == SBC_GOOD && !(din_buf[6] & 0x04), "wce now 0");
	/* a write with WCE 0 is written through (still reads back) */
	uint8_t *w = malloc(2 * bs);
	tu_fill(3, 3, 3, w, 2 * bs);
	CHECK(wr16(d, &nx1, 8000, w, 2, bs, 0) == SBC_GOOD && rd16(d, &nx1, 8000, 2, bs) ==
	      SBC_GOOD && !memcmp(din_buf, w, 2 * bs), "write-through");
	free(w);
	/* RCD is not changeable: INVALID FIELD IN PARAMETER LIST at byte 6 */
	p[6] = 0x01;
	memset(c, 0, 6);
	c[0] = SCSI_MODE_SELECT6;
	c[1] = 0x10;
	c[4] = 24;
	st = run(d, &nx1, c, 6, p, 24, 0);
	EXPECT_SENSE(st, SCSI_SK_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_PARAM, "rcd");
	CHECK(sense_field() == 6, "rcd field %d", sense_field());
	CHECK(wce_of(d, 3) == 0, "saved wce 0 too");
	/* SP set: saved like any change; WCE back on */
	p[6] = 0x04;
	c[1] = 0x11;
	CHECK(run(d, &nx1, c, 6, p, 24, 0) == SBC_GOOD, "wce back on (sp)");
	CHECK(wce_of(d, 0) == 1 && wce_of(d, 3) == 1, "wce 1, saved 1");
	clear_ua(d, &nx2);

	/* REPORT SUPPORTED OPERATION CODES: all, then each one alone */
	memset(c, 0, 12);
	c[0] = SCSI_MAINTENANCE_IN;
	c[1] = SCSI_MI_REPORT_OPCODES;
	be_put32(c + 6, 4096);
	st = run(d, &nx1, c, 12, NULL, 0, 4096);
	uint32_t len = be_get32(din_buf), nd = len / 8, bad = 0;
	CHECK(st == SBC_GOOD && len % 8 == 0 && nd >= 40, "rsoc all: %u descriptors", nd);
	uint8_t all[4096];
	memcpy(all, din_buf, sizeof(all));
	for (uint32_t i = 0; i < nd && i < 500; i++) {
		const uint8_t *q = all + 4 + 8 * i;
		c[2] = (q[5] & 1) ? 2 : 1;
		c[3] = q[0];
		be_put16(c + 4, be_get16(q + 2));
		st = run(d, &nx1, c, 12, NULL, 0, 4096);
		if (st != SBC_GOOD || (din_buf[1] & 7) != 3 || din_buf[4] != q[0] ||
		    be_get16(din_buf + 2) != be_get16(q + 6))
			bad++;
		c[2] = (q[5] & 1) ? 1 : 2; /* the other option must be refused */
		st = run(d, &nx1, c, 12, NULL, 0, 4096);
		if (st != SBC_CHECK_CONDITION || sense_asc() != SCSI_ASC_INVALID_FIELD_IN_CDB)
			bad++;
	}
	CHECK(bad == 0, "rsoc one command: %u wrong", bad);

	/* START STOP UNIT, REQUEST SENSE */
	memset(c, 0, 6);
	c[0] = SCSI_START_STOP_UNIT;
	c[4] = 1;
	CHECK(run(d, &nx1, c, 6, NULL, 0, 0) == SBC_GOOD, "start");
	c[0] = SCSI_REQUEST_SENSE;
	c[4] = 18;
	st = run(d, &nx1, c, 6, NULL, 0, 18);
	CHECK(st == SBC_GOOD && last.din_len == 18 && din_buf[0] == 0x70 && din_buf[2] == 0,
	      "request sense: no sense");
}


/* --- persistent reservations --- */

static uint8_t prout(sbc_dev *d, const sbc_nexus *nx, int sa, int type, uint64_t rkey,
                     uint64_t sakey)
{
	uint8_t c[10] = {SCSI_PR_OUT}, p[24] = {0};
	c[1] = (uint8_t)sa;
	c[2] = (uint8_t)type;
	be_put32(c + 5, 24);
	be_put64(p, rkey);
	be_put64(p + 8, sakey);
	return run(d, nx, c, 10, p, 24, 0);
}

static uint8_t prin(sbc_dev *d, const sbc_nexus *nx, int sa)
{
	uint8_t c[10] = {SCSI_PR_IN};
	c[1] = (uint8_t)sa;
	be_put16(c + 7, 4096);
	return run(d, nx, c, 10, NULL, 0, 4096);
}

static int can_read(sbc_dev *d, const sbc_nexus *nx, uint32_t bs)
{
	return rd16(d, nx, 10, 1, bs) == SBC_GOOD;
}

static int can_write(sbc_dev *d, const sbc_nexus *nx, uint32_t bs)
{
	static uint8_t b[4096];
	uint8_t st = wr16(d, nx, 10, b, 1, bs, 0);
	CHECK(st == SBC_GOOD || st == SBC_RESERVATION_CONFLICT, "write: %#x", st);
	return st == SBC_GOOD;
}

enum { PR_TYPE_WE = 1, PR_TYPE_EA = 3, PR_TYPE_WE_RO = 5, PR_TYPE_EA_AR = 8 };
static const uint64_t KA = 0x1111222233334444ull, KB = 0x5555666677778888ull;

static void t_pr(sbc_dev *d, uint32_t bs)
{
	sbc_nexus nx3 = {.id = 3, .initiator = "iqn.2026-01.test:three",
	                 .isid = {0x80, 0, 0, 0, 0, 3}, .tpgt = 1};
	sbc_nexus_add(d, &nx3);
	clear_ua(d, &nx1);
	clear_ua(d, &nx2);
	clear_ua(d, &nx3);
	CHECK(prin(d, &nx1, 0) == SBC_GOOD && be_get32(din_buf + 4) == 0, "no keys");
	uint32_t gen0 = be_get32(din_buf);
	CHECK(prout(d, &nx1, 0, 0, 0, KA) == SBC_GOOD, "register A");
	CHECK(prout(d, &nx2, 6, 0, 999, KB) == SBC_GOOD, "register and ignore B");
	CHECK(prout(d, &nx1, 0, 0, 12345, KA) == SBC_RESERVATION_CONFLICT, "wrong key");
	CHECK(prin(d, &nx1, 0) == SBC_GOOD && be_get32(din_buf + 4) == 16 &&
	      be_get32(din_buf) == gen0 + 2 && be_get64(din_buf + 8) == KA &&
	      be_get64(din_buf + 16) == KB, "read keys");
	/* WRITE EXCLUSIVE held by nx1 */
	CHECK(prout(d, &nx1, 1, PR_TYPE_WE, KA, 0) == SBC_GOOD, "reserve we");
	CHECK(prin(d, &nx2, 1) == SBC_GOOD && be_get32(din_buf + 4) == 16 &&
	      be_get64(din_buf + 8) == KA && din_buf[21] == PR_TYPE_WE, "read reservation");
	CHECK(can_read(d, &nx1, bs) && can_write(d, &nx1, bs), "holder reads and writes");
	CHECK(can_read(d, &nx2, bs) && !can_write(d, &nx2, bs), "we: registrant reads only");
	CHECK(can_read(d, &nx3, bs) && !can_write(d, &nx3, bs), "we: stranger reads only");
	CHECK(tur(d, &nx3) == SBC_GOOD, "tur allowed");
	CHECK(prout(d, &nx2, 1, PR_TYPE_WE, KB, 0) == SBC_RESERVATION_CONFLICT, "second reserve");
	CHECK(prout(d, &nx2, 2, PR_TYPE_WE, KB, 0) == SBC_GOOD, "non-holder release: nothing");
	uint8_t st = prout(d, &nx1, 2, PR_TYPE_EA, KA, 0);
	EXPECT_SENSE(st, SCSI_SK_ILLEGAL_REQUEST, SCSI_ASC_INVALID_RELEASE_OF_PR, "release type");
	CHECK(prout(d, &nx1, 2, PR_TYPE_WE, KA, 0) == SBC_GOOD, "release");
	/* EXCLUSIVE ACCESS: reads conflict too */
	CHECK(prout(d, &nx1, 1, PR_TYPE_EA, KA, 0) == SBC_GOOD, "reserve ea");
	CHECK(!can_read(d, &nx2, bs) && !can_read(d, &nx3, bs) && can_read(d, &nx1, bs), "ea");
	/* PREEMPT: nx2 takes the reservation (WE) and removes nx1's registration */
	CHECK(prout(d, &nx2, 4, PR_TYPE_WE, KB, KA) == SBC_GOOD, "preempt");
	st = tur(d, &nx1);
	EXPECT_SENSE(st, SCSI_SK_UNIT_ATTENTION, SCSI_ASC_REGISTRATIONS_PREEMPTED, "preempted ua");
	CHECK(prin(d, &nx1, 1) == SBC_GOOD && be_get64(din_buf + 8) == KB &&
	      din_buf[21] == PR_TYPE_WE, "reservation is nx2's");
	CHECK(prin(d, &nx1, 0) == SBC_GOOD && be_get32(din_buf + 4) == 8 &&
	      be_get64(din_buf + 8) == KB, "only B registered");
	CHECK(!can_write(d, &nx1, bs) && can_write(d, &nx2, bs), "nx1 lost access");
	/* REPORT CAPABILITIES and READ FULL STATUS */
	CHECK(prin(d, &nx1, 2) == SBC_GOOD && be_get16(din_buf) == 8 && (din_buf[2] & 1) &&
	      din_buf[4] == 0xea && din_buf[5] == 0x01, "report capabilities");
	st = prin(d, &nx1, 3);
	CHECK(st == SBC_GOOD && be_get32(din_buf + 4) >= 24 && be_get64(din_buf + 8) == KB &&
	      (din_buf[8 + 12] & 1) && din_buf[8 + 13] == PR_TYPE_WE &&
	      din_buf[8 + 24] == 0x45 && strstr((char *)din_buf + 8 + 28, nx2.initiator) &&
	      strstr((char *)din_buf + 8 + 28, ",i,0x800000000002"), "read full status");
}

/* After the restart: the reservation and the key are back. */
static void t_pr_after(sbc_dev *d, uint32_t bs)
{
	sbc_nexus_add(d, &nx2);
	clear_ua(d, &nx1);
	clear_ua(d, &nx2);
	CHECK(prin(d, &nx1, 1) == SBC_GOOD && be_get32(din_buf + 4) == 16 &&
	      be_get64(din_buf + 8) == KB && din_buf[21] == PR_TYPE_WE, "reservation survived");
	CHECK(prin(d, &nx1, 0) == SBC_GOOD && be_get32(din_buf + 4) == 8 &&
	      be_get64(din_buf + 8) == KB, "key survived");
	CHECK(!can_write(d, &nx1, bs) && can_write(d, &nx2, bs), "still enforced");
	/* CLEAR: nothing left */
	CHECK(prout(d, &nx2, 3, 0, KB, 0) == SBC_GOOD, "clear");
	CHECK(prin(d, &nx1, 0) == SBC_GOOD && be_get32(din_buf + 4) == 0, "cleared keys");
	CHECK(prin(d, &nx1, 1) == SBC_GOOD && be_get32(din_buf + 4) == 0, "no reservation");
	/* ALL REGISTRANTS: every registrant is a holder; the key shows as 0; the
	 * reservation stays until the last registrant goes. */
	CHECK(prout(d, &nx1, 0, 0, 0, KA) == SBC_GOOD && prout(d, &nx2, 0, 0, 0, KB) == SBC_GOOD,
	      "register both");
	CHECK(prout(d, &nx1, 1, PR_TYPE_EA_AR, KA, 0) == SBC_GOOD, "reserve ea-ar");
	CHECK(prin(d, &nx2, 1) == SBC_GOOD && be_get64(din_buf + 8) == 0 &&
	      din_buf[21] == PR_TYPE_EA_AR, "ar key 0");
	CHECK(can_write(d, &nx2, bs) && can_read(d, &nx2, bs), "ar: registrant has access");
	CHECK(prout(d, &nx1, 0, 0, KA, 0) == SBC_GOOD, "nx1 unregisters");
	CHECK(prin(d, &nx2, 1) == SBC_GOOD && be_get32(din_buf + 4) == 16, "ar stays");
	CHECK(!can_read(d, &nx1, bs), "ar: unregistered nx1 cannot read");
	CHECK(prout(d, &nx2, 0, 0, KB, 0) == SBC_GOOD, "nx2 unregisters");
	CHECK(prin(d, &nx2, 1) == SBC_GOOD && be_get32(din_buf + 4) == 0, "ar gone");
	/* REGISTRANTS ONLY: registered non-holders write; unregistered do not */
	CHECK(prout(d, &nx1, 0, 0, 0, KA) == SBC_GOOD && prout(d, &nx2, 0, 0, 0, KB) == SBC_GOOD,
	      "register both again");
	CHECK(prout(d, &nx1, 1, PR_TYPE_WE_RO, KA, 0) == SBC_GOOD, "reserve we-ro");
	CHECK(can_write(d, &nx2, bs), "we-ro: registrant writes");
	CHECK(prout(d, &nx1, 0, 0, KA, 0) == SBC_GOOD, "holder unregisters: released");
	uint8_t st = tur(d, &nx2);
	EXPECT_SENSE(st, SCSI_SK_UNIT_ATTENTION, SCSI_ASC_RESERVATIONS_RELEASED, "released ua");
	CHECK(prin(d, &nx2, 1) == SBC_GOOD && be_get32(din_buf + 4) == 0, "we-ro gone");
	CHECK(prout(d, &nx2, 3, 0, KB, 0) == SBC_GOOD, "clear again");
	sbc_nexus_remove(d, &nx2);
}

/* --- the write-back cache against a model: random 4 KiB overwrites --- */

static void t_random(sbc_dev *d, uint32_t bs)
{
	const uint64_t base = 10240, nblk = 2048; /* 8 MiB at 40 MiB */
	uint8_t *m = calloc(nblk, bs), *w = malloc(16 * bs);
	uint64_t rng = 12345;
	int bad = 0;
	REQUIRE_V(m && w, "oom");
	/* The region starts as zeros: unmap it. */
	uint8_t c[16] = {SCSI_WRITE_SAME16, 0x09};
	be_put64(c + 2, base);
	be_put32(c + 10, (uint32_t)nblk);
	REQUIRE_V(run(d, &nx1, c, 16, NULL, 0, 0) == SBC_GOOD, "clear region");
	for (int op = 0; op < 1500; op++) {
		rng = rng * 6364136223846793005ull + 1442695040888963407ull;
		uint64_t lba = (rng >> 20) % nblk;
		uint32_t n = (uint32_t)((rng >> 50) % 4) + 1;
		if (lba + n > nblk)
			n = (uint32_t)(nblk - lba);
		int kind = (int)((rng >> 40) % 10);
		if (kind < 6) {
			tu_fill(op, lba, 1, w, n * bs);
			if (wr16(d, &nx1, base + lba, w, n, bs, kind == 0) != SBC_GOOD)
				bad++;
			memcpy(m + lba * bs, w, n * bs);
		} else if (kind < 9) {
			if (rd16(d, &nx1, base + lba, n, bs) != SBC_GOOD ||
			    memcmp(din_buf, m + lba * bs, n * bs))
				bad++;
		} else if (sync_cache(d, &nx1) != SBC_GOOD) {
			bad++;
		}
	}
	CHECK(bad == 0, "random overwrites: %d wrong", bad);
	CHECK(rd16(d, &nx1, base, (uint32_t)nblk, bs) == SBC_GOOD &&
	      !memcmp(din_buf, m, nblk * bs), "whole region after random overwrites");
	free(m);
	free(w);
}

/* --- a backup written twice deduplicates --- */

static void t_dedup(sbc_dev *d, uint32_t bs)
{
	const uint32_t mib = 1u << 20, total = 20 * mib;
	uint8_t *img = malloc(total);
	store_stats a, b, z;
	REQUIRE_V(img, "oom");
	tu_fill(77, 0, 0, img, total);
	CHECK(sync_cache(d, &nx1) == SBC_GOOD, "sync");
	store_get_stats(ap.s, &z);
	for (uint32_t o = 0; o < total; o += mib)
		CHECK(wr16(d, &nx1, 1024 + o / bs, img + o, mib / bs, bs, 0) == SBC_GOOD, "w1");
	CHECK(sync_cache(d, &nx1) == SBC_GOOD, "sync 1");
	store_get_stats(ap.s, &a);
	/* The same image 35 MiB + 12 KiB further: not aligned with the first copy. */
	uint64_t at = (35ull * mib + 12288) / bs;
	for (uint32_t o = 0; o < total; o += mib)
		CHECK(wr16(d, &nx1, at + o / bs, img + o, mib / bs, bs, 0) == SBC_GOOD, "w2");
	CHECK(sync_cache(d, &nx1) == SBC_GOOD, "sync 2");
	store_get_stats(ap.s, &b);
	uint64_t first = a.unique_raw_bytes - z.unique_raw_bytes;
	uint64_t second = b.unique_raw_bytes - a.unique_raw_bytes;
	printf("dedup: first copy %llu new bytes, second copy %llu\n", (unsigned long long)first,
	       (unsigned long long)second);
	CHECK(first >= total * 0.95, "first copy stored (%llu)", (unsigned long long)first);
	CHECK(second < total / 50, "second copy deduplicated (%llu new bytes)",
	      (unsigned long long)second);
	CHECK(rd16(d, &nx1, at, mib / bs, bs) == SBC_GOOD && !memcmp(din_buf, img, mib),
	      "second copy reads back");
	free(img);
}

/* --- management --- */

struct lst {
	int n;
	lun_info li[4];
};

static int lst_cb(void *ctx, const lun_info *li)
{
	struct lst *l = ctx;
	if (l->n < 4)
		l->li[l->n] = *li;
	l->n++;
	return 0;
}

static void t_admin(lun_set *ls, sbc_dev *d, uint32_t bs)
{
	bks_err e = {0};
	struct lst L = {0};
	lun *l2;
	CHECK(lun_create(ls, "disk0", 1 << 20, 512, "", &e) == -EEXIST, "exists");
	CHECK(lun_create(ls, "Bad_Name", 1 << 20, 512, "", &e) == -EINVAL, "bad name");
	CHECK(lun_create(ls, "small", 1 << 20, 1024, "", &e) == -EINVAL, "bad block size");
	CHECK(lun_create(ls, "small", 1000000, 512, "iqn.a, iqn.b", &e) == 0, "create small");
	CHECK(lun_list(ls, lst_cb, &L) == 0 && L.n == 2 && !strcmp(L.li[0].name, "disk0") &&
	      !strcmp(L.li[1].name, "small") && L.li[1].size == 1000448 &&
	      L.li[1].block_size == 512 && !strcmp(L.li[1].initiators, "iqn.a,iqn.b") &&
	      L.li[0].open_count == 1 && L.li[0].mapped_bytes > (20u << 20), "list");
	CHECK(memcmp(L.li[0].naa, L.li[1].naa, 16) && strcmp(L.li[0].serial, L.li[1].serial),
	      "distinct identities");
	REQUIRE_V(lun_open(ls, "small", &l2) == 0, "open small");
	CHECK(lun_acl_allows(l2, "iqn.B") && !lun_acl_allows(l2, "iqn.c"), "acl");
	CHECK(lun_set_acl(ls, "small", "", &e) == 0 && lun_acl_allows(l2, "iqn.c"), "acl open");
	CHECK(lun_delete(ls, "small", &e) == -EBUSY, "delete while open");
	lun_close(l2);
	CHECK(lun_delete(ls, "small", &e) == 0, "delete");
	CHECK(lun_open(ls, "small", &l2) == -ENOENT, "deleted");
	/* resize: READ CAPACITY and a unit attention say so */
	uint64_t nsize = 96ull << 20;
	CHECK(lun_resize(ls, "disk0", nsize, &e) == 0, "resize: %s", e.msg);
	uint8_t st = tur(d, &nx1);
	EXPECT_SENSE(st, SCSI_SK_UNIT_ATTENTION, SCSI_ASC_CAPACITY_CHANGED, "capacity ua");
	uint8_t c[16] = {SCSI_SERVICE_ACTION_IN16, SCSI_SAI_READ_CAPACITY16};
	be_put32(c + 10, 32);
	CHECK(run(d, &nx1, c, 16, NULL, 0, 32) == SBC_GOOD && be_get64(din_buf) == nsize / bs - 1,
	      "read capacity after resize");
	CHECK(rd16(d, &nx1, nsize / bs - 8, 8, bs) == SBC_GOOD, "read the new end");

	/* The system directory: neither listed nor reached through the namespace. */
	ns_attr a;
	CHECK(ns_resolve(ap.n, "/" NS_SYSTEM_NAME, &a) == -ENOENT, "hidden from paths");
	CHECK(ns_lookup(ap.n, ns_root(ap.n), NS_SYSTEM_NAME, &a) == -ENOENT, "hidden from lookup");
	CHECK(ns_mkdir(ap.n, ns_root(ap.n), NS_SYSTEM_NAME, 0755, 0, 0, &a) == -EACCES,
	      "not made by users");
	CHECK(ns_resolve(ap.n, "/" NS_SYSTEM_NAME "/luns/disk0/data", &a) == -ENOENT,
	      "no path below it");
}

static store *fresh_store(const char *name)
{
	const char *dir = tu_tmpdir_in(name, "/dev/shm");
	bks_err e = {0};
	store *s = NULL;
	arr *a = tu_make_array(dir, NDISK, DISK_MB, NULL, paths);
	int r = store_create(a, NULL, &s, &e);
	if (r == 0)
		r = ns_format(s, 0755, &e);
	if (r == 0)
		r = store_commit(s, &e);
	if (r < 0) {
		fprintf(stderr, "store: %s\n", bks_errmsg(&e, r));
		return NULL;
	}
	return s;
}

int main(void)
{
	bks_err e = {0};
	lun_set *ls = NULL;
	lun *l = NULL;
	sbc_dev *d = NULL;
	store *s = fresh_store("sbc");
	REQUIRE(s, "store");
	REQUIRE(tu_appl_up(&ap, s) == 0, "appl");
	int r = lun_set_open(&ap, &ls, &e);
	REQUIRE(r == 0, "lun_set_open: %s", bks_errmsg(&e, r));
	uint64_t size = 64ull << 20;
	r = lun_create(ls, "disk0", size, 4096, "", &e);
	REQUIRE(r == 0, "lun_create: %s", bks_errmsg(&e, r));
	REQUIRE(lun_open(ls, "disk0", &l) == 0, "lun_open");
	REQUIRE(sbc_dev_open(l, &d, &e) == 0, "sbc_dev_open");
	sbc_nexus_add(d, &nx1);
	t_basic(d, 4096, size);
	printf("basic commands: done\n");
	t_provisioning(d, 4096, size);
	printf("provisioning: done\n");
	t_compare(d, 4096);
	printf("verify, compare and write: done\n");
	t_modes(d, 4096);
	printf("mode pages, opcodes: done\n");
	t_random(d, 4096);
	printf("random overwrites: done\n");
	t_dedup(d, 4096);
	t_admin(ls, d, 4096);
	printf("management: done\n");
	/* The write cache turned off: saved before GOOD, so still off after the crash
	 * (checked after it, below). The record stays version 1 (what an older bkstord
	 * reads) while the mode values are the defaults, version 2 once one changed. */
	CHECK(meta_version() == 1, "meta version 1 with the defaults: %d", meta_version());
	CHECK(set_wce(d, 0) == SBC_GOOD && wce_of(d, 0) == 0, "wce off before the crash");
	CHECK(meta_version() == 2, "meta version 2 with WCE off: %d", meta_version());
	t_pr(d, 4096);
	printf("persistent reservations: done\n");

	/* Durability: what SYNCHRONIZE CACHE acknowledged survives a crash. */
	sbc_nexus_remove(d, &nx1);
	sbc_dev_close(d);
	lun_set_close(ls);
	appl_down(0);
	s = tu_store_reopen(paths, NDISK, NULL);
	REQUIRE(s, "reopen");
	REQUIRE(tu_appl_up(&ap, s) == 0, "appl again");
	REQUIRE(lun_set_open(&ap, &ls, &e) == 0, "lun_set_open again");
	REQUIRE(lun_open(ls, "disk0", &l) == 0, "lun_open again");
	REQUIRE(sbc_dev_open(l, &d, &e) == 0, "sbc_dev_open again");
	sbc_nexus_add(d, &nx1);
	clear_ua(d, &nx1);
	{
		uint8_t *w = malloc(64 * 4096);
		tu_fill(1, 2, 3, w, 64 * 4096);
		CHECK(rd16(d, &nx1, 100, 64, 4096) == SBC_GOOD && !memcmp(din_buf, w, 64 * 4096),
		      "synced blocks survive the crash");
		CHECK(rd16(d, &nx1, 300, 3, 4096) == SBC_GOOD && !memcmp(din_buf, w + 4096, 3 * 4096),
		      "FUA blocks survive the crash");
		free(w);
	}
	t_pr_after(d, 4096);
	printf("reservations after the crash: done\n");
	{
		lun_info li;
		lun_get_info(l, &li);
		CHECK(wce_of(d, 0) == 0 && wce_of(d, 3) == 0 && li.write_cache == 0,
		      "wce still off after the crash (current %d saved %d info %d)", wce_of(d, 0),
		      wce_of(d, 3), li.write_cache);
		/* A LUN reset brings back the saved values: still off. */
		sbc_reset(d, NULL);
		clear_ua(d, &nx1);
		CHECK(wce_of(d, 0) == 0, "wce off after a reset");
		CHECK(set_wce(d, 1) == SBC_GOOD && wce_of(d, 0) == 1, "wce on again");
		lun_get_info(l, &li);
		CHECK(li.write_cache == 1 && meta_version() == 1, "info: write cache on, meta v%d",
		      meta_version());
	}
	printf("mode values after the crash: done\n");
	sbc_nexus_remove(d, &nx1);
	sbc_dev_close(d);
	lun_set_close(ls);
	appl_down(1);
	tu_cleanup();
	return tu_finish();
}
