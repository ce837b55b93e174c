/* storage/array_ilog.c: the intent log area of the array's disks (see array.h).
 *
 * The log lives outside the RAID rows, mirrored: a log write is small and must be
 * durable at once, so it cannot wait for a full row, and a RAID-6 row rewritten in
 * place would open the write hole. Each copy is complete and self-checked by the
 * layer above (storage/ilog.c), so a torn copy is simply not used.
 *
 * Crash story: every row written so far is durable before any log copy is written,
 * so a record never names a row that is not on disk, nor (phase 0) a row above the
 * high-water mark of the newest durable superblock; the copies are written together
 * and flushed; a crash in between leaves each copy either old or new (or torn:
 * rejected by its checksum), and replay takes any copy that checks.
 *
 * "Durable before" costs one round of flushes, not one flush per disk after another:
 * phase 1 flushes only the disks that took a write since their last flush (disk.c's
 * write generations; a disk whose rows were all flushed by an earlier sync or commit
 * has nothing a flush would add), all of them at once, and waits for every one to
 * succeed before phase 2 writes a copy; phase 2 flushes the copies at once too. A
 * disk skipped in phase 1 has no completed write that is not durable, so what a
 * record names is on the media exactly as when every disk was flushed. A small
 * synced change (an NFS CREATE: its items travel in the record, no row) so waits for
 * the copies' writes and one parallel flush of their three disks. */
#include <config.h>

#include <errno.h>
#include <string.h>

#include "storage/array_int.h"

#define MAX_META (ARR_MAX_DISKS * 2 + ARR_MAX_SPARES)

int arr_ilog_write(arr *a, uint64_t off, const void *buf, size_t len, bks_err *e)
{
	adisk *md[MAX_META];
	disk *dk[MAX_META];
	int err[MAX_META];
	int r = 0;

	if (len == 0 || off % DISK_ALIGN || len % DISK_ALIGN || off + len > ARR_LOG_SIZE ||
	    (uintptr_t)buf % DISK_ALIGN)
		return bks_fail(e, -EINVAL, "intent log write of %zu bytes at %llu: not aligned "
		                "or past the log area", len, (unsigned long long)off);
	pthread_mutex_lock(&a->mu);
	if (a->fatal) {
		r = bks_fail(e, -EROFS, "array %s: read-only after failed metadata writes",
		             a->name);
		goto out;
	}
	/* Phase 0: the rows a record may name must lie below the high-water mark of
	 * the newest durable superblock. Rebuild, replace and scrub stop at hwm, and
	 * after a crash the layer above replays the record and treats its rows as live
	 * without a commit in between that would record hwm: with hwm only in memory, a
	 * disk rebuilt then would silently lack those rows. So when rows were written
	 * above the recorded hwm, commit the array state first (the same root; the
	 * commit's first flush also makes those rows durable) and only then write the
	 * record. Crash story: a cut before the superblock lands leaves the old one and
	 * no new record (nothing names the rows); a cut after it leaves a larger hwm,
	 * which only costs a rebuild or scrub a few unreferenced rows. The cost is one
	 * superblock write per sync that follows new rows. */
	int flushed = 0;
	if (a->hwm > a->hwm_durable) {
		r = arr_commit_locked(a, e);
		if (r)
			goto out;
		flushed = 1;
	}
	for (int attempt = 0; attempt < 4; attempt++) {
		int n = arr_meta_disks(a, md), bad = 0;
		/* Phase 1: every row written so far becomes durable (phase 0's commit
		 * did it, unless a retry follows a failure): the disks with unflushed
		 * writes, in parallel; the others are skipped by disk_flush_many. */
		if (!flushed) {
			for (int i = 0; i < n; i++)
				dk[i] = md[i]->d;
			bad = disk_flush_many(dk, n, err) != 0;
		}
		flushed = 0;
		if (bad) {
			arr_note_errors(a, dk, err, n);
			continue;
		}
		/* Phase 2: the copies, on online members in slot order; a disk that
		 * fails is charged (and faulted at its limit) and the next one takes its
		 * place. */
		int online = 0, got = 0, s = 0;
		for (int i = 0; i < a->n; i++)
			online += a->slot[i].cur.d && a->slot[i].cur_state == SB_ONLINE;
		int need = BKS_MIN(online, ARR_LOG_COPIES);
		while (got < need && s < a->n) {
			disk_io ios[ARR_LOG_COPIES];
			disk *cd[ARR_LOG_COPIES];
			int nc = 0;
			for (; s < a->n && nc < need - got; s++) {
				aslot *sl = &a->slot[s];
				if (!sl->cur.d || sl->cur_state != SB_ONLINE)
					continue;
				cd[nc] = sl->cur.d;
				ios[nc] = (disk_io){.d = sl->cur.d, .op = DISK_WRITE, .buf = (void *)buf,
				                    .len = len, .off = ARR_LOG_OFF + off};
				nc++;
			}
			disk_io_run(ios, nc);
			/* The copies that were written are flushed together. */
			disk *fd[ARR_LOG_COPIES];
			int fi[ARR_LOG_COPIES], fe[ARR_LOG_COPIES], nf = 0;
			for (int i = 0; i < nc; i++) {
				err[i] = ios[i].result;
				if (!err[i]) {
					fi[nf] = i;
					fd[nf++] = cd[i];
				}
			}
			disk_flush_many(fd, nf, fe);
			for (int j = 0; j < nf; j++)
				err[fi[j]] = fe[j];
			for (int i = 0; i < nc; i++)
				got += err[i] == 0;
			arr_note_errors(a, cd, err, nc);
		}
		if (need > 0 && got == need)
			goto out;
		break;
	}
	r = bks_fail(e, -EIO, "array %s: intent log write failed on every attempt", a->name);
out:
	pthread_mutex_unlock(&a->mu);
	return r;
}

int arr_ilog_read(arr *a, int i, void *buf)
{
	adisk *md[MAX_META];
	int r;
	pthread_mutex_lock(&a->mu);
	int n = arr_meta_disks(a, md);
	if (i < 0 || i >= n) {
		r = -ENOENT;
		goto out;
	}
	disk *d = md[i]->d;
	r = disk_pread(d, buf, ARR_LOG_SIZE, ARR_LOG_OFF);
	if (r < 0) {
		adisk *ad = arr_find_adisk(a, d);
		if (ad)
			arr_note_error(a, ad, r, 0, 0);
		r = -EIO;
	}
out:
	pthread_mutex_unlock(&a->mu);
	return r;
}
