/* storage/disk.h: one member disk (a block device or a plain file) and batched I/O.
 *
 * Every byte the array reads or writes goes through disk_io_run(), which hands each
 * request to its disk's backend (a const ops table: "aio" = libaio + O_DIRECT on the
 * fd, "fault" = the test-only fault layer in fault.h wrapping another disk). A batch
 * may span many disks: every disk's requests are started before any is waited for,
 * so a row write keeps all spindles busy at once.
 *
 * Buffers, offsets and lengths must be multiples of DISK_ALIGN (4096), which covers
 * 512e and 4Kn disks.
 */
#ifndef BKS_DISK_H
#define BKS_DISK_H

#include <stddef.h>
#include <stdint.h>

#include "common/bks.h"

#define DISK_ALIGN 4096u
#define DISK_SERIAL_MAX 96
#define DISK_MAX_BATCH 64 /* requests a backend is handed at once (one wave) */

typedef struct disk disk;

/* DISK_FLUSH makes durable every write of its disk that completed before the batch
 * started (buf NULL, len and off 0). A batch must not hold a flush and a write for
 * the same disk: their order inside a batch is not defined. */
enum disk_op { DISK_READ = 0, DISK_WRITE = 1, DISK_FLUSH = 2 };

typedef struct disk_io {
	disk *d;
	int op;          /* enum disk_op */
	void *buf;       /* DISK_ALIGN-aligned, len bytes; owned by the caller */
	size_t len;
	uint64_t off;    /* byte offset on the disk */
	int result;      /* out: 0 or -errno (short transfers are -EIO) */
	int done;        /* backend-private: set when the request has completed */
	uint64_t start_ns, done_ns; /* out: when it was started and completed (monotonic) */
} disk_io;

typedef struct disk_info {
	uint64_t size;           /* bytes */
	uint32_t logical_sector; /* bytes */
	uint32_t physical_sector;
	int is_blockdev;
	int direct;              /* opened with O_DIRECT */
	char serial[DISK_SERIAL_MAX]; /* WWN or serial from sysfs; "" when unknown */
	uint64_t dev, ino;       /* identity: two handles on one disk compare equal */
} disk_info;

/* An I/O engine (one kernel AIO context) that several disks can share: one per
 * array. Several threads may run I/O on its disks at once (one disk by one thread
 * at a time): they take turns reaping and each gets its own completions, whichever
 * thread reaped them. The owner frees it with disk_engine_free();
 * disks opened on it keep it alive until they are closed. */
typedef struct disk_engine disk_engine;
int disk_engine_new(disk_engine **out);
void disk_engine_free(disk_engine *g); /* accepts NULL */

/* Open a block device or regular file for exclusive use (O_EXCL on a block device,
 * an flock on a regular file, so no two openers, in one process or two, write the
 * same disk: -EBUSY "in use"), with O_DIRECT when the file system allows it.
 * Returns 0 or -errno with e set. */
int disk_open(const char *path, disk **out, bks_err *e); /* private engine */
int disk_open_on(disk_engine *eng, const char *path, disk **out, bks_err *e);
void disk_close(disk *d); /* accepts NULL */

/* Run every request; returns 0 when all succeeded, else the first error (each
 * request's own result says which failed). Requests may be in any order. */
int disk_io_run(disk_io *ios, int n);
/* Single-request helpers. */
int disk_pread(disk *d, void *buf, size_t len, uint64_t off);
int disk_pwrite(disk *d, const void *buf, size_t len, uint64_t off);
/* Make every completed write durable (fdatasync / the device cache flush). A disk
 * that took no write since its last successful flush is not flushed again (see
 * "Write generations" in disk.c); a failed flush is retried by the next one. */
int disk_flush(disk *d);
/* The same for n disks at once: the flushes that are needed run in parallel (one
 * batch; each disk's flush is a request like a write). err[i] gets disk i's result;
 * returns 0 or the first error. A disk may appear more than once. */
int disk_flush_many(disk *const *d, int n, int *err);
/* 1 if a write completed on d since its last successful flush (or none was made
 * yet through this handle): the next disk_flush will reach the device. */
int disk_needs_flush(const disk *d);

/* What went through one handle, since it was opened (tests and status). */
typedef struct disk_counts {
	uint64_t writes;         /* write requests completed (any result) */
	uint64_t flushes;        /* flushes sent to the device */
	uint64_t flushes_skipped;/* flushes asked for on a disk with nothing to flush */
} disk_counts;
void disk_get_counts(const disk *d, disk_counts *out);

const disk_info *disk_get_info(const disk *d);
const char *disk_path(const disk *d);
/* The fd of an aio disk (used by the fault layer for pre-images); -1 otherwise. */
int disk_fd(const disk *d);

#endif /* BKS_DISK_H */
