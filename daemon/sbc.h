/* daemon/sbc.h: the SCSI device server of a LUN: SPC-4/SBC-3 commands executed on a
 * lun (daemon/lun.h), independent of the transport. The iSCSI target
 * (daemon/iscsi.c) turns SCSI Command PDUs into sbc_cmd, collects the data-out the
 * CDB needs first, calls sbc_exec, and sends the data-in, status and sense it
 * produced. CDB and sense encoding/decoding that needs no state is in proto/scsi.h
 * (pure, fuzzed).
 *
 * One sbc_dev per LUN, shared by every I_T nexus (session) using it: it holds the
 * unit attentions pending per nexus, the mode pages, and the persistent
 * reservations (loaded from and saved through lun_pr_load/lun_pr_save, so they
 * survive a restart).
 *
 * Threads: sbc_exec may run for several nexuses at once (the device locks what it
 * shares); commands of one nexus are passed in the order the transport delivers them.
 */
#ifndef BKS_SBC_H
#define BKS_SBC_H

#include <stddef.h>
#include <stdint.h>

#include "daemon/lun.h"

typedef struct sbc_dev sbc_dev;

/* Largest data transfer of one command (VPD 0xB0 MAXIMUM TRANSFER LENGTH says it;
 * the transport refuses a larger expected length before buffering anything). */
#define SBC_MAX_XFER (8u << 20)
#define SBC_SENSE_MAX 96

/* SAM status codes */
enum { SBC_GOOD = 0x00, SBC_CHECK_CONDITION = 0x02, SBC_BUSY = 0x08,
       SBC_RESERVATION_CONFLICT = 0x18, SBC_TASK_SET_FULL = 0x28 };

/* An I_T nexus: who sends the command (persistent reservations and unit attentions
 * are per nexus). */
typedef struct sbc_nexus {
	uint64_t id;             /* unique for the daemon's life (the transport's session) */
	const char *initiator;   /* iSCSI initiator name */
	uint8_t isid[6];
	uint16_t tpgt;
	const char *target;      /* the iSCSI target name (VPD 0x83 SCSI name string); may be NULL */
} sbc_nexus;

enum sbc_dir { SBC_DIR_NONE = 0, SBC_DIR_READ = 1, SBC_DIR_WRITE = 2 };

/* Open the device of a LUN (takes over l: sbc_dev_close closes it). */
int sbc_dev_open(lun *l, sbc_dev **out, bks_err *e);
void sbc_dev_close(sbc_dev *d); /* accepts NULL */
lun *sbc_dev_lun(sbc_dev *d);

/* A nexus starts using the device (a power-on/reset unit attention is queued for it)
 * or stops (its registrations stay: they are persistent). */
void sbc_nexus_add(sbc_dev *d, const sbc_nexus *nx);
void sbc_nexus_remove(sbc_dev *d, const sbc_nexus *nx);

/* What the CDB transfers, before any data moves: direction and bytes by the CDB
 * (blocks × block size for READ/WRITE, the allocation or parameter list length for
 * the others). For a CDB it cannot decode: SBC_DIR_NONE and 0 (sbc_exec then answers
 * with the right sense). The transport compares this with the initiator's expected
 * length for residuals and solicits at most min(expected, *bytes) of data-out. */
void sbc_xfer(sbc_dev *d, const uint8_t *cdb, size_t cdb_len, int *dir, uint32_t *bytes);

typedef struct sbc_cmd {
	const uint8_t *cdb;
	size_t cdb_len;          /* 6..16 (more with an extended CDB AHS) */
	uint64_t lun;            /* the LUN number addressed (only 0 exists) */
	const sbc_nexus *nx;
	const uint8_t *dout;     /* data-out received */
	uint32_t dout_len;
	uint8_t *din;            /* room for data-in: the initiator's expected length */
	uint32_t din_cap;
	/* results */
	uint32_t din_len;        /* data-in produced, <= din_cap */
	uint8_t status;          /* SAM status */
	uint8_t sense[SBC_SENSE_MAX]; /* fixed-format sense data when CHECK CONDITION */
	uint32_t sense_len;
} sbc_cmd;

/* Execute one command; always completes c (status and sense say how it went). */
void sbc_exec(sbc_dev *d, sbc_cmd *c);

/* Task management (the transport aborts its own queued tasks). LUN RESET and
 * TARGET WARM RESET: sync the cache, clear non-persistent state, queue a reset unit
 * attention for every nexus but nx; nx NULL: for every nexus, the requester's too
 * (what SAM-5 asks of a LUN reset, and what the iSCSI target passes). */
void sbc_reset(sbc_dev *d, const sbc_nexus *nx);

#endif /* BKS_SBC_H */
