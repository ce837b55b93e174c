/* storage/label.h: the disk label and the superblock, encoded and decoded.
 * Pure functions over byte buffers (no I/O), so every field check can be fuzzed.
 * The layout is written down in docs/format.md; keep the two in step.
 *
 * Disk layout (bytes):
 *   [0, 4K)            label copy 0
 *   [64K, 68K)         label copy 1
 *   [128K, 640K)       superblock ring: 64 slots of 8 KiB; commit seq s goes to slot s % 64
 *   [640K, 1M)         intent log area (storage/ilog.h): records the layer above
 *                      needs durable before its next commit; on ARR_LOG_COPIES disks
 *   [1M, ...)          data area: strip r of this disk at 1M + r * strip_size
 * All integers little-endian. Every structure: magic, version, length, xxh3-64 of the
 * bytes before the checksum field.
 */
#ifndef BKS_LABEL_H
#define BKS_LABEL_H

#include <stddef.h>
#include <stdint.h>

#include "common/bks.h"
#include "storage/arr_limits.h"

#define LBL_SIZE 4096u
#define LBL_OFF0 0ull
#define LBL_OFF1 (64ull << 10)
#define SB_RING_OFF (128ull << 10)
#define SB_SLOTS 64u
#define SB_SLOT_SIZE 8192u
#define ARR_LOG_OFF (640ull << 10)
#define ARR_LOG_SIZE (384ull << 10)
#define ARR_LOG_COPIES 3
#define ARR_DATA_OFF (1ull << 20)

#define LBL_VERSION 1u
#define SB_VERSION 1u


enum lbl_role { LBL_ROLE_MEMBER = 1, LBL_ROLE_SPARE = 2 };

typedef struct lbl_disk {
	uint8_t array_uuid[BKS_UUID_LEN];
	uint8_t disk_uuid[BKS_UUID_LEN];
	uint32_t role;        /* enum lbl_role: a hint; the superblock is authoritative */
	uint32_t slot;        /* member slot at labelling time (hint) */
	uint32_t ndisks;      /* array width */
	uint32_t strip_size;
	uint64_t rows;        /* rows in the data area of every member */
	uint64_t disk_size;   /* the disk's size when labelled */
	uint64_t features;    /* incompatible feature bits; none defined, must be 0 */
	uint64_t created_ns;  /* array creation, wall clock */
	uint64_t label_gen;   /* bumped on each rewrite; the higher valid copy wins */
	char name[ARR_NAME_MAX]; /* array name, NUL-terminated */
} lbl_disk;

/* Member slot states as stored. Runtime-only states (UNAVAIL: the disk is not
 * present) are never written. */
enum sb_state {
	SB_ONLINE = 1,
	SB_FAULTED = 2,  /* errors, admin fail, or missing at import; no I/O to it */
	SB_OFFLINE = 3,  /* admin took it offline; data must be rebuilt before reuse */
	SB_REMOVED = 4,  /* no disk in the slot */
};

typedef struct sb_member {
	uint8_t cur_uuid[BKS_UUID_LEN];      /* the disk in the slot (zero if none) */
	uint32_t cur_state;                  /* enum sb_state */
	uint32_t flags;                      /* SBM_REPLACING: incoming copies from cur */
	uint8_t incoming_uuid[BKS_UUID_LEN]; /* a spare or replacement being filled */
	uint64_t cursor;                     /* rows [0, cursor) are complete on incoming */
} sb_member;

#define SBM_REPLACING 1u

enum sb_scrub_state { SCRUB_IDLE = 0, SCRUB_RUNNING = 1, SCRUB_PAUSED = 2 };

typedef struct sb_scrub {
	uint32_t state;
	uint32_t pad;
	uint64_t cursor;
	uint64_t rows_checked, errors_found, repaired, unrecoverable;
	uint64_t started_ns, finished_ns; /* wall clock; finished 0 while running */
} sb_scrub;

typedef struct sb_super {
	uint8_t array_uuid[BKS_UUID_LEN];
	uint64_t seq;        /* commit number; slot = seq % SB_SLOTS */
	uint64_t time_ns;    /* wall clock of the commit */
	uint32_t ndisks;
	uint32_t strip_size;
	uint64_t rows;       /* rows per member disk */
	uint64_t hwm;        /* 1 + highest row ever written */
	uint32_t nspares;
	uint32_t root_len;
	sb_member member[ARR_MAX_DISKS];
	uint8_t spare_uuid[ARR_MAX_SPARES][BKS_UUID_LEN];
	sb_scrub scrub;
	uint8_t root[ARR_ROOT_MAX]; /* opaque to the array: the store's metadata root */
} sb_super;

/* Encode into a zeroed LBL_SIZE / SB_SLOT_SIZE buffer. */
void lbl_encode(const lbl_disk *l, uint8_t buf[LBL_SIZE]);
void sb_encode(const sb_super *s, uint8_t buf[SB_SLOT_SIZE]);

/* Decode and validate every field. Return 0, or a distinct negative code:
 *   -ENOENT  no magic (blank or foreign disk)       -EPROTO   unsupported version
 *   -EBADMSG checksum mismatch                       -EINVAL   a field out of range
 * and a message in e. */
int lbl_decode(const uint8_t *buf, size_t len, lbl_disk *out, bks_err *e);
int sb_decode(const uint8_t *buf, size_t len, sb_super *out, bks_err *e);

/* xxh3 of the encoded slot (identity of a commit's content across disks). */
uint64_t sb_content_hash(const uint8_t buf[SB_SLOT_SIZE]);

const char *sb_state_name(uint32_t st);

#endif /* BKS_LABEL_H */
