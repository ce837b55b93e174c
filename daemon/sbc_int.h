/* daemon/sbc_int.h: private to daemon/sbc.c and daemon/sbc_pr.c (the device server
 * of one LUN and its persistent reservations). */
#ifndef BKS_SBC_INT_H
#define BKS_SBC_INT_H

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "daemon/lun.h"
#include "daemon/sbc.h"
#include "proto/scsi.h"

#define UA_MAX 8                 /* unit attentions queued per nexus (older kept) */
#define PR_REG_MAX 128           /* registrations (more: INSUFFICIENT REGISTRATION RESOURCES) */
#define PR_NAME_MAX 223          /* iSCSI names are at most 223 bytes */
#define PR_BLOB_VERSION 1

/* persistent reservation types (SPC-4 Table 175) */
enum { PR_WE = 1, PR_EA = 3, PR_WE_RO = 5, PR_EA_RO = 6, PR_WE_AR = 7, PR_EA_AR = 8 };

/* An I_T nexus's identity as reservations see it: initiator port (name + ISID) and
 * target portal group. It outlives the session (registrations are persistent). */
typedef struct pr_id {
	char name[PR_NAME_MAX + 1];
	uint8_t isid[6];
	uint16_t tpgt;
} pr_id;

typedef struct pr_reg {
	pr_id who;
	uint64_t key;
} pr_reg;

struct nx {
	struct nx *next;
	uint64_t id;
	pr_id who;
	uint16_t ua[UA_MAX];
	int nua;
};

struct sbc_dev {
	lun *l;
	pthread_mutex_t mu;
	pthread_rwlock_t wl;
	struct nx *nexuses;
	uint64_t last_size;      /* what READ CAPACITY last said (capacity changed UA) */
	scsi_mode mode;
	/* reservations */
	uint32_t generation;
	pr_reg regs[PR_REG_MAX];
	int nreg;
	int res;                 /* a reservation exists */
	int holder;              /* its holder (regs index; AR types: -1, every registrant) */
	uint8_t type;
	int aptpl;
};

/* One command being executed. */
struct ctx {
	sbc_dev *d;
	sbc_cmd *c;
	scsi_cdb k;
	lun_info li;
	uint64_t nblocks;        /* the LUN's */
};

/* --- sense and data-in helpers --- */

static inline void ok(sbc_cmd *c)
{
	c->status = SBC_GOOD;
	c->sense_len = 0;
}

static inline void check(sbc_cmd *c, int key, int asc)
{
	c->status = SBC_CHECK_CONDITION;
	c->sense_len = scsi_sense_fixed(c->sense, key, asc, 0, 0, 0, -1, -1);
}

/* INVALID FIELD IN CDB pointing at byte field (bit, or -1). */
static inline void bad_cdb(sbc_cmd *c, int field, int bit)
{
	c->status = SBC_CHECK_CONDITION;
	c->sense_len = scsi_sense_fixed(c->sense, SCSI_SK_ILLEGAL_REQUEST,
	                                SCSI_ASC_INVALID_FIELD_IN_CDB, 0, 0, 1, field, bit);
}

static inline void bad_param(sbc_cmd *c, int field, int bit)
{
	c->status = SBC_CHECK_CONDITION;
	c->sense_len = scsi_sense_fixed(c->sense, SCSI_SK_ILLEGAL_REQUEST,
	                                SCSI_ASC_INVALID_FIELD_IN_PARAM, 0, 0, 0, field, bit);
}

static inline void lba_range(sbc_cmd *c)
{
	check(c, SCSI_SK_ILLEGAL_REQUEST, SCSI_ASC_LBA_OUT_OF_RANGE);
}

static inline void conflict(sbc_cmd *c)
{
	c->status = SBC_RESERVATION_CONFLICT;
	c->sense_len = 0;
}

/* Copy len bytes of data-in (the allocation length and the initiator's buffer cut
 * it: SPC-4 4.2.5.6). */
static inline void din(sbc_cmd *c, const void *p, uint32_t len, uint32_t alloc)
{
	uint32_t n = BKS_MIN(len, alloc);
	n = BKS_MIN(n, c->din_cap);
	if (n) /* a command with no data-in buffer (allocation length 0) has din NULL */
		memcpy(c->din, p, n);
	c->din_len = n;
}

/* A lun error as sense: -EIO a medium error, -ENOSPC SPACE ALLOCATION FAILED WRITE
 * PROTECT (SBC-3 4.7.3.6: thin provisioning out of space), others an internal
 * failure. */
static inline void io_error(sbc_cmd *c, int r, int writing)
{
	if (r == -EIO)
		check(c, SCSI_SK_MEDIUM_ERROR, writing ? SCSI_ASC_WRITE_ERROR : SCSI_ASC_READ_ERROR);
	else if (r == -ENOSPC)
		check(c, SCSI_SK_DATA_PROTECT, SCSI_ASC_SPACE_ALLOC_FAILED_WP);
	else if (r == -ENOENT)
		check(c, SCSI_SK_ILLEGAL_REQUEST, SCSI_ASC_LUN_NOT_SUPPORTED);
	else
		check(c, SCSI_SK_HARDWARE_ERROR, SCSI_ASC_INTERNAL_TARGET_FAILURE);
}

/* The data-out holds what the CDB asked for? Less: the initiator's expected length
 * was shorter than the CDB's transfer (iSCSI residual overflow): refused with
 * INVALID FIELD IN COMMAND INFORMATION UNIT, nothing written, the second of the
 * answers SAM/FCP-4 allow (a partial write of a mismatched command is worse than
 * none); the transport reports the residual. */
static inline int dout_short(sbc_cmd *c, uint32_t need)
{
	if (c->dout_len >= need)
		return 0;
	check(c, SCSI_SK_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_CMD_IU);
	return 1;
}

/* --- sbc.c --- */
void sbc_who_of(const sbc_nexus *nx, pr_id *w);
int sbc_who_eq(const pr_id *a, const pr_id *b);
/* Queue unit attention asc to every nexus but skip (0: all); who: only the nexuses of
 * that initiator port (d->mu held). */
void sbc_ua_all(sbc_dev *d, uint64_t skip, const pr_id *who, uint16_t asc);

/* --- sbc_pr.c: persistent reservations (SPC-4 5.9) --- */
/* Load the saved reservations into d at open (not yet shared: no lock). 0, or
 * -ENOMEM (a blob that cannot be read or decoded is logged and leaves none). */
int sbc_pr_load(sbc_dev *d, const char *lunname);
void sbc_pr_in(struct ctx *x);
void sbc_pr_out(struct ctx *x);
/* d->mu held. 1 when the command must get RESERVATION CONFLICT. */
int sbc_pr_conflict(sbc_dev *d, const sbc_nexus *nx, const scsi_cdb *k, const uint8_t *cdb);

#endif /* BKS_SBC_INT_H */
