/* storage/array_int.h: private to the array's files (array*.c). */
#ifndef BKS_ARRAY_INT_H
#define BKS_ARRAY_INT_H

#include <pthread.h>

#include "raid/raid.h"
#include "storage/array.h"
#include "storage/disk.h"
#include "storage/label.h"

#define ERR_RING 32         /* timestamps of recent errors kept per disk */
#define ARR_BATCH_ROWS 8    /* rows per write/rebuild batch (queue depth per disk) */
#define ARR_BG_COMMIT_NS (5ull * 1000000000ull) /* cursor commits while bg work runs */

/* One disk as the array knows it. d is NULL when the disk is not present (missing
 * at import, removed, or closed after it faulted). */
typedef struct adisk {
	disk *d;
	uint8_t uuid[BKS_UUID_LEN];
	uint64_t rd_err, wr_err, ck_err, slow;
	uint64_t err_ns[ERR_RING];   /* I/O error times (ring) */
	uint32_t err_pos;
	uint64_t ck_ns[ERR_RING];    /* checksum error times (ring) */
	uint32_t ck_pos;
} adisk;

/* A member slot: the disk in it (cur) and, while a rebuild or a replace runs, the
 * disk being filled (inc). Rows below cursor are complete on inc. */
typedef struct aslot {
	adisk cur;
	uint32_t cur_state;      /* enum sb_state */
	adisk inc;               /* uuid zero when none */
	uint32_t flags;          /* SBM_REPLACING: cur stays a member until inc is done */
	uint64_t cursor;
} aslot;

struct arr {
	pthread_mutex_t mu;
	arr_config cfg;
	char name[ARR_NAME_MAX];
	uint8_t uuid[BKS_UUID_LEN];
	uint64_t created_ns;
	int n, k;
	uint32_t strip;
	uint64_t rows;           /* rows per member */
	uint64_t hwm;            /* 1 + highest row written */
	uint64_t hwm_durable;    /* hwm in the newest superblock on disk (arr_ilog_write) */
	uint64_t seq;            /* last committed sequence number */
	uint64_t next_seq;       /* next commit's number (> every seq seen on any disk) */
	uint8_t root[ARR_ROOT_MAX];
	uint32_t root_len;
	aslot slot[ARR_MAX_DISKS];
	adisk spare[ARR_MAX_SPARES];
	int nspares;
	sb_scrub scrub;

	raid_codec *codec;       /* used under mu only */
	uint8_t *rowbuf;         /* ARR_BATCH_ROWS rows of k+2 strips, for I/O */
	uint8_t *rowbuf2;        /* one more row (k+2 strips), for reconstruction */
	uint8_t *bounce;         /* one strip, for unaligned reads */
	uint8_t *sbbuf;          /* one superblock slot */

	int state_dirty;         /* membership/cursor changed since the last commit */
	int fatal;               /* a metadata write failed everywhere: refuse writes */

	arr_live_fn live_fn;
	void *live_ctx;
	arr_verify_fn scrub_verify;
	void *scrub_verify_ctx;
	arr_bad_row_fn bad_row_fn;
	void *bad_row_ctx;
	arr_event_fn ev_fn;
	void *ev_ctx;

	/* rebuild/replace findings, this process (rebuild_check_row) */
	uint64_t rb_errors_found, rb_repaired, rb_unrecoverable;

	/* background work pacing and progress */
	uint64_t last_fg_ns;     /* last foreground read/write */
	uint64_t bg_tokens_ns;   /* time at which the bg budget is next free */
	uint64_t bg_paced_ns;    /* last time pace() charged work (or ran unlimited) */
	uint32_t pace_gen;       /* atomic: bumped by arr_set_pacing (ends a pacing sleep) */
	uint64_t last_bg_commit_ns;
	uint64_t bg_bytes;       /* bytes read by bg work, this process */
	uint64_t rate_t0_ns, rate_b0; /* rate window start */
	double bg_rate;          /* bytes/s over the last window */
};

/* Strip pointers for a row laid out contiguously at base: data 0..k-1, P, Q. */
static inline void arr_row_ptrs(const arr *a, uint8_t *base, uint8_t **p)
{
	for (int i = 0; i < a->k + 2; i++)
		p[i] = base + (size_t)i * a->strip;
}

/* array.c */
void arr_event(arr *a, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
const char *adisk_label(const adisk *ad, char *buf, size_t cap); /* path or uuid */
/* Count an I/O (or checksum) error; fault the disk when it crosses the threshold
 * or when it is gone (ENXIO). Returns 1 if the disk is now unusable. */
int arr_note_error(arr *a, adisk *ad, int err, int is_write, int is_cksum);
/* Charge every request of a finished batch that took longer than io_timeout_ms to
 * its disk (counts toward io_err_limit). */
void arr_check_latency(arr *a, const disk_io *ios, int n);
/* The adisk that holds handle d (member, incoming or spare), or NULL. Faulting a
 * disk may move adisks around: look them up again after any I/O error. */
adisk *arr_find_adisk(arr *a, const disk *d);
int arr_row_live(arr *a, uint64_t row);
/* The disk that holds slot s's strip of row, or NULL if that strip is unreadable. */
disk *arr_reader(arr *a, int s, uint64_t row);
/* Number of slots that cannot serve a read of row (0..N). */
int arr_missing_for_row(arr *a, uint64_t row);
int arr_writable_slots(arr *a);  /* slots that take writes (cur or inc present) */
void arr_claim_spares(arr *a);
int arr_commit_locked(arr *a, bks_err *e);
/* Every disk that takes metadata writes: online members and incoming disks in slot
 * order, then spares. out: room for ARR_MAX_DISKS * 2 + ARR_MAX_SPARES. */
int arr_meta_disks(arr *a, adisk **out);
/* Count the write errors of one phase of I/O (by disk handle, since faulting a disk
 * moves adisks around). */
void arr_note_errors(arr *a, disk *const *dk, const int *err, int n);
int arr_is_present(const arr *a, const uint8_t uuid[BKS_UUID_LEN]);
int arr_health_locked(arr *a);
/* Check a disk before it joins (size, labels, write/read-back). */
int arr_check_new_disk(arr *a, disk *d, uint64_t need_bytes, int force, bks_err *e);
int arr_write_labels(arr *a, disk *d, const uint8_t uuid[BKS_UUID_LEN], int role,
                     int slotno, bks_err *e);
void adisk_close(adisk *ad);
void arr_free(arr *a, int close_disks);
int arr_alloc_buffers(arr *a);

/* Read both label copies: 0 with the newest valid one, else copy 0's error, except
 * that -ENOENT means blank (neither copy has the label magic). */
int arr_read_label(disk *d, lbl_disk *out, bks_err *e);
/* Take a disk out of service (member: FAULTED; incoming: dropped; spare: removed)
 * and claim spares for any slot that needs one. */
void arr_fault_disk(arr *a, adisk *ad, const char *why);

/* array_io.c */
/* Read every readable strip of row into the contiguous row at base, no recovery.
 * lost[] gets the missing or failed strips (returns how many); failed[] (k+2) marks
 * those that failed with an I/O error on a present disk (they need a repair). */
int arr_read_row_raw(arr *a, uint64_t row, uint8_t *base, int *lost, int *failed);
/* What arr_find_bad found. proven: work is right over whole strips (P/Q agree with
 * at most one strip rebuilt, or the data checksums passed over the whole row); only
 * then may anything be written, and bad[] lists the present strips (not lost) whose
 * content as read differs from work: proven bad, to be rewritten from work. When not
 * proven, work is only known right over the range checked, and nbad is 0. extra:
 * strips beyond the lost ones the reconstruction took as silently bad. */
#define ARR_MAX_BAD 4 /* two taken as bad, and P and Q recomputed from proven data */
typedef struct arr_fix {
	int proven;
	int extra;
	int nbad;
	int bad[ARR_MAX_BAD];
} arr_fix;
/* Combinatorial reconstruction against the caller's verifier over [off, off+len);
 * see array_io.c. 0 with work and *fx filled, or -EIO when nothing passes verify. A
 * verifier given the whole row's data (off 0, len arr_row_bytes) counts as a proof
 * of every data strip. */
int arr_find_bad(arr *a, uint64_t row, const uint8_t *orig, const int *lost, int nlost,
                 size_t off, size_t len, arr_verify_fn verify, void *ctx, uint8_t *work,
                 arr_fix *fx);
/* Read a whole row into strips[] (k+2 pointers from arr_row_ptrs: one contiguous row
 * buffer, strips[0] its start), recovering every strip that is missing or fails to
 * read. Returns 0, or -EIO when more than two are lost. failed[] (k+2) is set to 1
 * for the strips whose read failed with an I/O error on a present disk (they need a
 * repair); a missing disk's strip is recovered but not marked. */
int arr_read_row_full(arr *a, uint64_t row, uint8_t *const *strips, int *failed);
/* Rewrite one strip of row in place (a repair), to cur and, if it covers the row,
 * inc. Returns 0 or -errno. */
int arr_repair_strip(arr *a, uint64_t row, int strip, const void *buf);

#endif /* BKS_ARRAY_INT_H */
