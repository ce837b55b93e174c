/* storage/ilog.h: the intent log.
 *
 * A transaction group makes changes durable every few seconds; a request that must be
 * durable before it is answered (a native PUT, NFS COMMIT, iSCSI SYNCHRONIZE CACHE)
 * cannot wait for that. Its changes since the last commit are described in a record
 * appended here instead: a small ring in the array's log area, mirrored on three
 * disks (arr_ilog_write), flushed before the append returns. On import, the records
 * written after the last committed group are handed back in order (ilog_replay); the
 * layer above applies them and commits, which makes the log empty again.
 *
 * A record belongs to one committed group (base_txg, the group it follows) of one
 * pool (uuid); records of any other group are ignored. Records are 4 KiB aligned and
 * numbered from 0 after each commit, so after a commit the next append starts at the
 * beginning again and a stale record can never continue a chain. Format:
 * docs/format.md "Intent log".
 *
 * Threads: one caller at a time (the store's lock).
 */
#ifndef BKS_ILOG_H
#define BKS_ILOG_H

#include <stddef.h>
#include <stdint.h>

#include "common/bks.h"
#include "storage/array.h"
#include "storage/label.h" /* ARR_LOG_SIZE: the log area this header's records fill */

#define ILOG_HDR 64
#define ILOG_MAX_PAYLOAD (ARR_LOG_SIZE - ILOG_HDR)

typedef struct ilog ilog;

int ilog_new(arr *a, const uint8_t uuid[BKS_UUID_LEN], ilog **out);
void ilog_free(ilog *l); /* accepts NULL */

/* Append one record after commit base_txg and make it durable (with every row
 * written before it). A base different from the previous append's starts the log
 * over. -ENOSPC when the log area is full (the caller commits instead), -EIO/-EROFS
 * from the array. */
int ilog_append(ilog *l, uint64_t base_txg, const void *rec, size_t len, bks_err *e);

/* Hand every record after commit base_txg to fn, in order (fn returns 0 to go on, or
 * a negative errno to stop replay with that error). Reads every disk's copy; a
 * record is taken from any copy that checks. Returns the number of records. */
int ilog_replay(ilog *l, uint64_t base_txg,
                int (*fn)(void *ctx, const uint8_t *rec, size_t len), void *ctx, bks_err *e);

/* Validate one record image (for tests and the fuzzer): 0 and the payload's place,
 * or -errno. */
int ilog_check(const uint8_t *buf, size_t len, const uint8_t uuid[BKS_UUID_LEN],
               uint64_t base_txg, uint64_t seq, size_t *payload_len, size_t *rec_len);

typedef struct ilog_stats {
	uint64_t appends, bytes, replayed;
	uint64_t used;           /* bytes of the log area in use now */
} ilog_stats;
void ilog_get_stats(const ilog *l, ilog_stats *st);

#endif /* BKS_ILOG_H */
