/* daemon/lun.h: logical units: thin block devices kept in the dedup store, served by
 * the iSCSI target (daemon/iscsi.c through daemon/sbc.c).
 *
 * A LUN is a file of the namespace in the appliance's system directory, which NFS
 * and the native protocol neither list nor reach (docs/architecture.md "LUNs"); its
 * bytes are the file's bytes, so a LUN is thin (never-written ranges are holes),
 * deduplicated, compressed and on RAID-6 like every backup. Its identity (the NAA
 * designator and unit serial the initiator sees) comes from the file's object id and
 * generation: stable across restarts and imports, never the same for a LUN deleted
 * and created again under the same name.
 *
 * Writes: lun_write with fua 0 may stay in a write-back cache (the SCSI volatile
 * write cache, WCE=1) until lun_sync or an idle flush; with fua 1 it is durable
 * (intent log) before it returns. lun_sync makes every write acknowledged before it
 * durable. A crash loses only cached writes no sync or FUA covered. Reads see every
 * write acknowledged before them, cached or not.
 *
 * Persistent reservations: the SCSI layer keeps its state as an opaque blob that
 * lun_pr_save makes durable (with the LUN) before it returns, so reservations
 * survive a restart or a crash.
 *
 * Threads: every function may be called from any thread; the LUN functions take the
 * appliance lock (appl.mu) around store and namespace calls themselves, never across
 * network I/O. A lun handle stays valid until lun_close even if the LUN is deleted
 * meanwhile (lun_delete refuses an open LUN: -EBUSY).
 */
#ifndef BKS_LUN_H
#define BKS_LUN_H

#include <stddef.h>
#include <stdint.h>

#include "common/bks.h"

struct appl;
typedef struct lun_set lun_set;
typedef struct lun lun;

#define LUN_NAME_MAX 64          /* [a-z0-9][a-z0-9.-]*: also the end of the target IQN */
#define LUN_ACL_MAX 1024         /* comma-separated initiator names */
#define LUN_PR_MAX (64 * 1024)   /* bytes of persistent-reservation state */

typedef struct lun_info {
	char name[LUN_NAME_MAX + 1];
	uint64_t size;           /* bytes, a multiple of block_size */
	uint32_t block_size;     /* 512 or 4096 */
	uint64_t object_id, generation;
	uint8_t naa[16];         /* NAA type 6 (IEEE Registered Extended) designator */
	char serial[33];         /* unit serial number (VPD 0x80): printable ASCII */
	char initiators[LUN_ACL_MAX + 1]; /* who may log in; empty: any initiator */
	uint64_t mapped_bytes;   /* logical bytes not in holes */
	uint64_t read_bytes, written_bytes; /* since start (for status) */
	int open_count;          /* handles open: the iSCSI target holds one per LUN
	                          * for all its sessions, a SendTargets one briefly */
	int sessions;            /* iSCSI sessions logged in to the LUN (lun_session) */
	int write_cache;         /* 1: the SCSI write cache is on (WCE=1), 0: write-through */
} lun_info;

/* The mode page values an initiator may change with MODE SELECT (daemon/sbc.c): the
 * caching page's WCE and the informational exceptions page. Kept in the LUN's record
 * (docs/format.md "LUN records"), so a write cache turned off stays off across a
 * restart: an initiator that turned it off never sends SYNCHRONIZE CACHE. */
typedef struct lun_mode {
	uint8_t wce;             /* write cache enabled (default 1) */
	uint8_t perf, dexcpt, test, mrie; /* defaults 0, 1, 0, 0 */
	uint32_t interval, report_count;  /* defaults 0 */
} lun_mode;
void lun_mode_default(lun_mode *m);

/* The appliance's LUNs (after appl_open; creates the system directory on first use). */
int lun_set_open(struct appl *ap, lun_set **out, bks_err *e);
void lun_set_close(lun_set *ls); /* accepts NULL; flushes the write-back caches */

/* Management (the API and bkstorctl lun). size is rounded up to block_size. */
int lun_create(lun_set *ls, const char *name, uint64_t size, uint32_t block_size,
               const char *initiators, bks_err *e);
/* Grow or shrink (a shrink drops the bytes past the new end). */
int lun_resize(lun_set *ls, const char *name, uint64_t size, bks_err *e);
int lun_set_acl(lun_set *ls, const char *name, const char *initiators, bks_err *e);
/* The saved write cache setting (WCE) an initiator finds at its next login; -EBUSY
 * while the LUN is open (its initiator changes it with MODE SELECT). */
int lun_set_write_cache(lun_set *ls, const char *name, int on, bks_err *e);
int lun_delete(lun_set *ls, const char *name, bks_err *e);   /* -EBUSY while open */
/* Calls fn for each LUN in name order; stops at fn's first nonzero return. */
int lun_list(lun_set *ls, int (*fn)(void *ctx, const lun_info *li), void *ctx);
/* The same list for the status document, never waiting for appl.mu: gathered now if
 * appl.mu is free at each step, else the last list gathered (its counters that old).
 * Only after a change (create, resize, ACL, delete, open, close) that the last list
 * does not show does it wait for appl.mu, once. */
int lun_list_snapshot(lun_set *ls, int (*fn)(void *ctx, const lun_info *li), void *ctx);

/* Using one (a session). */
int lun_open(lun_set *ls, const char *name, lun **out);      /* -ENOENT */
void lun_close(lun *l);                                       /* accepts NULL */
/* A session logged in to the LUN (delta +1) or ended (-1): what lun_info.sessions
 * counts. The iSCSI target shares one handle among all the sessions of a LUN, so
 * the handles (open_count) cannot tell how many initiators use it. */
void lun_session(lun *l, int delta);
void lun_get_info(lun *l, lun_info *li);
/* Just the size and block size, without a lock (what every SCSI command needs;
 * lun_get_info takes two locks and fills a kilobyte). */
void lun_geometry(lun *l, uint64_t *size, uint32_t *bs);
/* May this initiator name log in to the LUN's target? 1 or 0. */
int lun_acl_allows(lun *l, const char *initiator);

/* I/O in bytes (off and len multiples of the block size, within the size: the SCSI
 * layer checks ranges and answers LBA OUT OF RANGE itself). 0 or -errno (-EIO,
 * -ENOSPC when the store is full, -ENOENT when the LUN was deleted). */
int lun_read(lun *l, uint64_t off, void *buf, size_t len);
int lun_write(lun *l, uint64_t off, const void *buf, size_t len, int fua);
/* Deallocate: the range reads as zeros afterwards (LBPRZ) and stores nothing. */
int lun_unmap(lun *l, uint64_t off, uint64_t len);
int lun_sync(lun *l);
/* GET LBA STATUS: is the range starting at off mapped (1) or a hole (0), and for how
 * many bytes from off (*run, ≥ one block, ≤ len) the answer holds. */
int lun_mapped(lun *l, uint64_t off, uint64_t len, int *mapped, uint64_t *run);

/* The saved mode values (as loaded at open or last saved). lun_set_mode: durable
 * (in the LUN's record) before it returns; 0 or -errno, the old values kept then. */
void lun_get_mode(lun *l, lun_mode *m);
int lun_set_mode(lun *l, const lun_mode *m);

/* Persistent-reservation state (opaque to this module). lun_pr_load: *len = 0 when
 * none was ever saved. lun_pr_save: durable before it returns. */
int lun_pr_load(lun *l, void *buf, size_t cap, size_t *len);
int lun_pr_save(lun *l, const void *buf, size_t len);

#endif /* BKS_LUN_H */
