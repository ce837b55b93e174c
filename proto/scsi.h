/* proto/scsi.h: SCSI (SPC-4, SBC-3) codecs that need no state: CDB decoding, fixed
 * format sense data, the INQUIRY data and VPD pages, the mode pages and the
 * big-endian helpers. Pure (no I/O, no allocation), so fuzz/fuzz-scsi.c can drive
 * every decoder with arbitrary bytes; daemon/sbc.c executes the commands.
 *
 * Bounds: every decoder reads only the bytes it is given (a CDB shorter than its
 * opcode's group needs is refused), every encoder writes at most the capacity it is
 * given and returns the full length the data would have (the allocation length
 * truncates, as SPC-4 4.2.5.6 says; the caller copies min(len, alloc)).
 */
#ifndef BKS_SCSI_H
#define BKS_SCSI_H

#include <stddef.h>
#include <stdint.h>

/* --- operation codes --- */
enum {
	SCSI_TEST_UNIT_READY = 0x00, SCSI_REQUEST_SENSE = 0x03, SCSI_READ6 = 0x08,
	SCSI_WRITE6 = 0x0a, SCSI_INQUIRY = 0x12, SCSI_MODE_SELECT6 = 0x15,
	SCSI_MODE_SENSE6 = 0x1a, SCSI_START_STOP_UNIT = 0x1b,
	SCSI_PREVENT_ALLOW = 0x1e, SCSI_READ_CAPACITY10 = 0x25, SCSI_READ10 = 0x28,
	SCSI_WRITE10 = 0x2a, SCSI_WRITE_VERIFY10 = 0x2e, SCSI_VERIFY10 = 0x2f,
	SCSI_PREFETCH10 = 0x34, SCSI_SYNC_CACHE10 = 0x35, SCSI_WRITE_SAME10 = 0x41,
	SCSI_UNMAP = 0x42, SCSI_MODE_SELECT10 = 0x55, SCSI_MODE_SENSE10 = 0x5a,
	SCSI_PR_IN = 0x5e, SCSI_PR_OUT = 0x5f, SCSI_READ16 = 0x88,
	SCSI_COMPARE_AND_WRITE = 0x89, SCSI_WRITE16 = 0x8a, SCSI_WRITE_VERIFY16 = 0x8e,
	SCSI_VERIFY16 = 0x8f, SCSI_PREFETCH16 = 0x90, SCSI_SYNC_CACHE16 = 0x91,
	SCSI_WRITE_SAME16 = 0x93, SCSI_SERVICE_ACTION_IN16 = 0x9e, SCSI_REPORT_LUNS = 0xa0,
	SCSI_MAINTENANCE_IN = 0xa3, SCSI_READ12 = 0xa8, SCSI_WRITE12 = 0xaa,
	SCSI_WRITE_VERIFY12 = 0xae, SCSI_VERIFY12 = 0xaf,
};
/* service actions */
enum { SCSI_SAI_READ_CAPACITY16 = 0x10, SCSI_SAI_GET_LBA_STATUS = 0x12,
       SCSI_MI_REPORT_OPCODES = 0x0c };

/* --- sense --- */
enum {
	SCSI_SK_NO_SENSE = 0x0, SCSI_SK_NOT_READY = 0x2, SCSI_SK_MEDIUM_ERROR = 0x3,
	SCSI_SK_HARDWARE_ERROR = 0x4, SCSI_SK_ILLEGAL_REQUEST = 0x5,
	SCSI_SK_UNIT_ATTENTION = 0x6, SCSI_SK_DATA_PROTECT = 0x7,
	SCSI_SK_ABORTED_COMMAND = 0xb, SCSI_SK_MISCOMPARE = 0xe,
};
/* additional sense code and qualifier, as (ASC << 8) | ASCQ */
enum {
	SCSI_ASC_NONE = 0x0000,
	SCSI_ASC_WRITE_ERROR = 0x0c00,
	SCSI_ASC_INVALID_FIELD_IN_CMD_IU = 0x0e03,
	SCSI_ASC_READ_ERROR = 0x1100,
	SCSI_ASC_PARAM_LIST_LENGTH_ERROR = 0x1a00,
	SCSI_ASC_MISCOMPARE_DURING_VERIFY = 0x1d00,
	SCSI_ASC_INVALID_OPCODE = 0x2000,
	SCSI_ASC_LBA_OUT_OF_RANGE = 0x2100,
	SCSI_ASC_INVALID_FIELD_IN_CDB = 0x2400,
	SCSI_ASC_LUN_NOT_SUPPORTED = 0x2500,
	SCSI_ASC_INVALID_FIELD_IN_PARAM = 0x2600,
	SCSI_ASC_INVALID_RELEASE_OF_PR = 0x2604,
	SCSI_ASC_SPACE_ALLOC_FAILED_WP = 0x2707,
	SCSI_ASC_POWER_ON_OCCURRED = 0x2901,
	SCSI_ASC_BUS_DEVICE_RESET = 0x2903,
	SCSI_ASC_MODE_PARAMS_CHANGED = 0x2a01,
	SCSI_ASC_RESERVATIONS_PREEMPTED = 0x2a03,
	SCSI_ASC_RESERVATIONS_RELEASED = 0x2a04,
	SCSI_ASC_REGISTRATIONS_PREEMPTED = 0x2a05,
	SCSI_ASC_CAPACITY_CHANGED = 0x2a09,
	SCSI_ASC_SAVING_PARAMS_UNSUP = 0x3900,
	SCSI_ASC_INSUFFICIENT_REG_RESOURCES = 0x5504,
	SCSI_ASC_INTERNAL_TARGET_FAILURE = 0x4400,
};

#define SCSI_SENSE_FIXED_LEN 18

/* Fixed-format sense data (SPC-4 4.5.3) into s (at least SCSI_SENSE_FIXED_LEN bytes);
 * returns its length. info_valid: the INFORMATION field holds info (MISCOMPARE's
 * offset, the bad LBA). field >= 0: the SENSE KEY SPECIFIC field points at byte
 * `field` (bit `bit`, or -1 for the whole byte) of the CDB (cd = 1) or of the
 * parameter list (cd = 0). */
uint32_t scsi_sense_fixed(uint8_t *s, int key, int asc, int info_valid, uint32_t info,
                          int cd, int field, int bit);

/* --- CDB decoding --- */
/* How long a CDB of opcode op is by its group code (SPC-4 4.2.5.1); 0 for the groups
 * with vendor-specific or variable lengths. */
size_t scsi_cdb_len(uint8_t op);

/* A decoded CDB: the fields the device server's command uses. */
typedef struct scsi_cdb {
	uint8_t op, sa;          /* opcode, service action (0x9e, 0xa3, PR) */
	uint64_t lba;
	uint32_t nblocks;        /* transfer length in blocks (READ/WRITE/VERIFY/...) */
	uint32_t alloc;          /* allocation or parameter list length */
	uint8_t fua, dpo, bytchk, unmap, anchor, ndob, immed, pbdata, lbdata;
	uint8_t wrprotect;       /* RDPROTECT/WRPROTECT/VRPROTECT (we support only 0) */
	uint8_t group;           /* GROUP NUMBER (ignored) */
	uint8_t control;         /* the last byte (NACA must be 0) */
	uint8_t rw;              /* 1 a data-moving READ-like, 2 WRITE-like command */
} scsi_cdb;

/* Decode cdb[0..len) into *out. 0, or -EINVAL with *field set to the offending
 * byte for INVALID FIELD IN CDB (or -ENOTSUP: opcode not known here, -EMSGSIZE:
 * shorter than its group's length). Unknown opcodes still get op and control. */
int scsi_cdb_parse(const uint8_t *cdb, size_t len, scsi_cdb *out, int *field);

/* --- big-endian helpers --- */
static inline void be_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}
static inline void be_put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}
static inline void be_put64(uint8_t *p, uint64_t v)
{
	be_put32(p, (uint32_t)(v >> 32));
	be_put32(p + 4, (uint32_t)v);
}
static inline uint16_t be_get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}
static inline uint32_t be_get24(const uint8_t *p)
{
	return (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
}
static inline uint32_t be_get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline uint64_t be_get64(const uint8_t *p)
{
	return (uint64_t)be_get32(p) << 32 | be_get32(p + 4);
}

/* --- INQUIRY data, VPD pages, mode pages --- */
/* What the encoders need to know of the device. */
typedef struct scsi_ident {
	const char *vendor;      /* 8 characters at most (T10 vendor id) */
	const char *product;     /* 16 */
	const char *revision;    /* 4 */
	const char *serial;      /* unit serial number (VPD 0x80) */
	const uint8_t *naa;      /* 16 bytes: NAA 6 designator (VPD 0x83) */
	const char *target_name; /* the iSCSI target name (VPD 0x83 SCSI name string); may be NULL */
	uint32_t block_size;
	uint64_t nblocks;
	uint32_t max_xfer_blocks, opt_xfer_blocks;
	uint32_t max_unmap_blocks, max_unmap_descs, unmap_granularity;
	uint64_t max_write_same_blocks;
	int wce;                 /* write cache enabled (caching mode page) */
} scsi_ident;

/* Standard INQUIRY data; returns its length (written up to cap). */
uint32_t scsi_inquiry_std(const scsi_ident *id, uint8_t *buf, uint32_t cap);
/* VPD page `page` (0x00, 0x80, 0x83, 0xb0, 0xb1, 0xb2); its length, or 0 when the
 * page is not supported (INVALID FIELD IN CDB). */
uint32_t scsi_inquiry_vpd(const scsi_ident *id, uint8_t page, uint8_t *buf, uint32_t cap);

/* Mode pages we have: caching (0x08), control (0x0a), informational exceptions
 * control (0x1c). pc: 0 current, 1 changeable, 2 default, 3 saved (refused by the
 * caller). Writes page `page` (0x3f: all of them) at buf; returns its length, or 0
 * when not supported. */
enum { SCSI_MP_CACHING = 0x08, SCSI_MP_CONTROL = 0x0a, SCSI_MP_IEC = 0x1c, SCSI_MP_ALL = 0x3f };
typedef struct scsi_mode {
	uint8_t wce;             /* caching: write cache enable */
	uint8_t rcd;             /* caching: read cache disable */
	uint8_t swp;             /* control: software write protect (not changeable) */
	uint8_t d_sense;         /* control: descriptor sense (not changeable: 0) */
	uint8_t mrie, perf, dexcpt, test; /* IEC */
	uint32_t interval, report_count;
} scsi_mode;
uint32_t scsi_mode_pages(const scsi_mode *m, int pc, uint8_t page, uint8_t subpage,
                         uint8_t *buf, uint32_t cap);
/* Apply one mode page from a MODE SELECT parameter list (p[0..len)): checks every
 * byte against what may change (changeable values) and the current value. 0 (m
 * updated), -EINVAL with *field the parameter list byte (relative to p) that is
 * wrong, -ENOTSUP for an unknown page. */
int scsi_mode_select_page(scsi_mode *m, const uint8_t *p, size_t len, int *field);

#endif /* BKS_SCSI_H */
