/* test-sbc: the SCSI device server (daemon/sbc.c) and the LUNs (daemon/lun.c) on a
 * real store, CDBs straight into sbc_exec, no network: every command family of
 * issue 11 with its sense data, persistent reservations across two nexuses and
 * across a "crash" (the store closed without a commit and opened again: only what
 * the intent log holds survives), the write-back cache (acknowledged with SYNCHRONIZE
 * CACHE or FUA is durable; reads see cached writes), UNMAP and holes, and dedup of
 * a backup written twice. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/appl.h"
#include "daemon/lun.h"
#include "daemon/sbc.h"
#include "fs/ns.h"
#include "proto/scsi.h"
#include "tests/testutil.h"

#define NDISK 6
#define DISK_MB 96

static appl ap;
static char *paths[NDISK];

/* The parts of an appliance lun.c uses: the lock, the store, the namespace, the
 * array name (identities) and the throughput counters. */
static int appl_up(store *s)
{
	bks_err e = {0};
	memset(&ap, 0, sizeof(ap));
	pthread_mutex_init(&ap.mu, NULL);
	pthread_mutex_init(&ap.evmu, NULL);
	ap.s = s;
	ap.cfg.array_name = (char *)"test-array";
	int r = ns_open(s, &ap.n, &e);
	if (r < 0)
		fprintf(stderr, "ns_open: %s\n", bks_errmsg(&e, r));
	return r;
}

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
	REQUIRE(appl_up(s) == 0, "appl");
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

	/* Durability: what SYNCHRONIZE CACHE acknowledged survives a crash. */
	sbc_nexus_remove(d, &nx1);
	sbc_dev_close(d);
	lun_set_close(ls);
	appl_down(0);
	s = tu_store_reopen(paths, NDISK, NULL);
	REQUIRE(s, "reopen");
	REQUIRE(appl_up(s) == 0, "appl again");
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
	(void)wr16;
	(void)nx2;
	sbc_nexus_remove(d, &nx1);
	sbc_dev_close(d);
	lun_set_close(ls);
	appl_down(1);
	tu_cleanup();
	return tu_finish();
}
