/* storage/array_bg.c: background work: rebuild onto spares, proactive replace, scrub,
 * and the pacing that keeps them out of the foreground's way.
 *
 * Rebuild writes only live rows (arr_row_live) and keeps a per-slot cursor that the
 * superblock records every few seconds, so a restart resumes where it was; redoing a
 * row is harmless because a row's content never changes while it is referenced. */
#include <config.h>

#include "storage/array_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


#define SKIP_PER_STEP 4096 /* dead rows passed over per step without I/O */

/* Finish a slot whose incoming disk now holds every row. */
static void complete_slot(arr *a, int s)
{
	aslot *sl = &a->slot[s];
	char nm[300], old[300];
	int replacing = (sl->flags & SBM_REPLACING) != 0;

	adisk_label(&sl->inc, nm, sizeof(nm));
	if (bks_uuid_is_zero(sl->cur.uuid))
		snprintf(old, sizeof(old), "empty");
	else
		adisk_label(&sl->cur, old, sizeof(old));
	adisk released = sl->cur;
	sl->cur = sl->inc;
	memset(&sl->inc, 0, sizeof(sl->inc));
	sl->cur_state = SB_ONLINE;
	sl->flags = 0;
	sl->cursor = 0;
	a->state_dirty = 1;
	arr_event(a, ARR_EV_INFO, "slot %d: %s of %s complete; %s is ONLINE (was %s)", s,
	          replacing ? "replace" : "rebuild", nm, nm, old);
	if (replacing && released.d) {
		/* Release the old disk: wipe its labels so it is not mistaken for a member
		 * if it is plugged in again. Best effort; it may be dying. Crash story:
		 * the new membership is committed first. A cut before that commit leaves
		 * the old disk a labelled member in the durable state (the replace
		 * resumes from its committed cursor); a cut between the commit and the
		 * wipe leaves a labelled disk that the state no longer names, which
		 * import sets aside as a stale member. Wiping first would let a cut leave
		 * a durable state naming a blank disk as the slot's member. A failed
		 * commit (the array is read-only then) leaves the labels alone. */
		if (arr_commit_locked(a, NULL) == 0) {
			uint8_t *z = bks_alloc_aligned(DISK_ALIGN, LBL_SIZE);
			if (z) {
				disk_pwrite(released.d, z, LBL_SIZE, LBL_OFF0);
				disk_pwrite(released.d, z, LBL_SIZE, LBL_OFF1);
				disk_flush(released.d);
				free(z);
			}
		}
	}
	adisk_close(&released);
}

/* A row rebuild_batch has just reconstructed (strips at row, lost[] recovered in
 * place): make sure the strips it is about to write are right.
 *
 * raid_recover trusts the surviving strips; one of them silently wrong makes the
 * recovered strip wrong too, and writing it would turn one bad strip into two (the
 * row could no longer lose another disk). With one strip lost the row still has one
 * strip of redundancy: P and Q over the rebuilt row agree iff the survivors were
 * right (recovery satisfied one equation, the other checks it). One erasure plus one
 * unknown error cannot be located by the syndromes alone (that takes three parity
 * strips), so on a mismatch the store's checksums (the scrub verifier) pick the
 * strip, as scrub does (arr_find_bad); then P and Q are recomputed from the proven
 * data, every surviving strip that differs is repaired in place, and the target
 * gets the right strip. With two strips lost there is nothing left to compare but
 * the checksums: a row that fails them is counted, not fixed. A row that cannot be
 * decided is still written to the incoming disk (nothing better exists to write
 * there), but loudly: an ERR event and the rebuild's unrecoverable count, never
 * silently; no surviving strip is rewritten unless the checksums proved it wrong. */
static void rebuild_check_row(arr *a, uint64_t row, uint8_t *base, const int *lost,
                              int nlost)
{
	size_t rowlen = (size_t)(a->k + 2) * a->strip, datalen = arr_row_bytes(a);
	uint8_t *work = a->rowbuf2, *p[RAID_MAX_K + 2];
	int where = -1;
	arr_fix fx;

	arr_row_ptrs(a, base, p);
	if (nlost < 2 && raid_check(a->codec, a->strip, p, &where) == RAID_CHECK_OK)
		return;
	if (nlost == 2 && (!a->scrub_verify ||
	                   a->scrub_verify(a->scrub_verify_ctx, row, 0, base, datalen)))
		return;
	a->rb_errors_found++;
	if (nlost > 1 || !a->scrub_verify)
		goto undecided;
	/* The checksums over the whole row are the proof (find_bad): work holds the
	 * proven data with P and Q recomputed from it, and fx.bad every surviving
	 * strip that differs (P or Q among them when one was the bad strip). */
	if (arr_find_bad(a, row, base, lost, nlost, 0, datalen, a->scrub_verify,
	                 a->scrub_verify_ctx, work, &fx) < 0 || !fx.proven)
		goto undecided;
	for (int b = 0; b < fx.nbad; b++) {
		int i = fx.bad[b];
		int s = raid_strip_disk(a->n, row, i);
		disk *d = arr_reader(a, s, row);
		aslot *sl = &a->slot[s];
		if (d)
			arr_note_error(a, d == sl->cur.d ? &sl->cur : &sl->inc, -EIO, 0, 1);
		if (arr_repair_strip(a, row, i, work + (size_t)i * a->strip) == 0) {
			a->rb_repaired++;
			arr_event(a, ARR_EV_WARN, "rebuild: row %llu strip %d on slot %d was "
			          "wrong; repaired", (unsigned long long)row, i, s);
		} else {
			a->rb_unrecoverable++;
		}
	}
	memcpy(base, work, rowlen);
	return;
undecided:
	a->rb_unrecoverable++;
	arr_event(a, ARR_EV_ERR, "rebuild: row %llu is inconsistent and the bad strip cannot "
	          "be located (%d strips lost%s); rebuilt as read", (unsigned long long)row,
	          nlost, a->scrub_verify ? "" : ", no data checksums");
	if (a->bad_row_fn)
		a->bad_row_fn(a->bad_row_ctx, row);
}

/* Rebuild rows [r, end) onto the target slots (none of them readable there) in one
 * round of reads and one of writes: the whole batch's surviving strips are read
 * together, every row is reconstructed, the targets' strips are written together.
 * Rows that are not live are skipped. Returns bytes read. */
static int64_t rebuild_batch(arr *a, uint64_t r, uint64_t end, const int *targets, int nt)
{
	disk_io ios[ARR_BATCH_ROWS * ARR_MAX_DISKS];
	int ios_row[ARR_BATCH_ROWS * ARR_MAX_DISKS], ios_slot[ARR_BATCH_ROWS * ARR_MAX_DISKS];
	size_t rowlen = (size_t)(a->k + 2) * a->strip;
	int nio = 0, live[ARR_BATCH_ROWS];
	int64_t bytes = 0;

	for (uint64_t row = r; row < end; row++) {
		int b = (int)(row - r);
		live[b] = arr_row_live(a, row);
		if (!live[b])
			continue;
		for (int s = 0; s < a->n; s++) {
			disk *d = arr_reader(a, s, row);
			if (!d)
				continue;
			int st = raid_disk_strip(a->n, row, s);
			ios_row[nio] = b;
			ios_slot[nio] = s;
			ios[nio++] = (disk_io){.d = d, .op = DISK_READ,
			                       .buf = a->rowbuf + (size_t)b * rowlen + (size_t)st * a->strip,
			                       .len = a->strip, .off = ARR_DATA_OFF + row * a->strip};
			bytes += a->strip;
		}
	}
	disk_io_run(ios, nio);
	arr_check_latency(a, ios, nio);
	int ok[ARR_BATCH_ROWS];
	for (uint64_t row = r; row < end; row++) {
		int b = (int)(row - r);
		ok[b] = 0;
		if (!live[b])
			continue;
		int lost[ARR_MAX_DISKS], nlost = 0, have[ARR_MAX_DISKS] = {0};
		for (int i = 0; i < nio; i++)
			if (ios_row[i] == b && ios[i].result == 0)
				have[ios_slot[i]] = 1;
		for (int s = 0; s < a->n; s++)
			if (!have[s])
				lost[nlost++] = raid_disk_strip(a->n, row, s);
		uint8_t *p[RAID_MAX_K + 2];
		arr_row_ptrs(a, a->rowbuf + (size_t)b * rowlen, p);
		ok[b] = 1;
		/* The usual row (one strip lost): rebuilt and proved by P and Q in one
		 * pass. Any doubt leaves the rebuilt strip as raid_recover would have
		 * made it, and the full check below takes over. */
		if (nlost == 1 &&
		    raid_recover1_check(a->codec, a->strip, p, lost[0]) == RAID_CHECK_OK)
			continue;
		if (nlost > 2 ||
		    (nlost != 1 && raid_recover(a->codec, a->strip, p, lost, nlost) < 0)) {
			ok[b] = 0;
			arr_event(a, ARR_EV_ERR, "rebuild: row %llu cannot be reconstructed (too "
			          "many failed disks); skipped", (unsigned long long)row);
			continue;
		}
		rebuild_check_row(a, row, p[0], lost, nlost);
	}
	/* Count read errors only now: faulting a disk reshuffles nothing we hold, but
	 * it must not happen while the batch's disks are being looked at. */
	for (int i = 0; i < nio; i++)
		if (ios[i].result) {
			adisk *ad = arr_find_adisk(a, ios[i].d);
			if (ad)
				arr_note_error(a, ad, ios[i].result, 0, 0);
		}
	nio = 0;
	for (uint64_t row = r; row < end; row++) {
		int b = (int)(row - r);
		if (!ok[b])
			continue;
		for (int i = 0; i < nt; i++) {
			aslot *sl = &a->slot[targets[i]];
			if (!sl->inc.d)
				continue; /* faulted meanwhile */
			int st = raid_disk_strip(a->n, row, targets[i]);
			ios[nio++] = (disk_io){.d = sl->inc.d, .op = DISK_WRITE,
			                       .buf = a->rowbuf + (size_t)b * rowlen + (size_t)st * a->strip,
			                       .len = a->strip, .off = ARR_DATA_OFF + row * a->strip};
		}
	}
	disk_io_run(ios, nio);
	for (int i = 0; i < nio; i++)
		if (ios[i].result) {
			adisk *ad = arr_find_adisk(a, ios[i].d);
			if (ad)
				arr_note_error(a, ad, ios[i].result, 1, 0);
		}
	return bytes;
}

/* One step of rebuild/replace over the slot(s) with the lowest cursor. Returns bytes
 * read, or -1 if there is no such work. */
static int64_t rebuild_step(arr *a, uint32_t max_rows)
{
	uint64_t r = UINT64_MAX;
	int64_t bytes = 0;

	for (int s = 0; s < a->n; s++)
		if (a->slot[s].inc.d)
			r = BKS_MIN(r, a->slot[s].cursor);
	if (r == UINT64_MAX)
		return -1;
	for (uint32_t done = 0, skipped = 0; done < max_rows && skipped < SKIP_PER_STEP;) {
		int targets[ARR_MAX_DISKS], nt = 0, copy_only = 1;
		for (int s = 0; s < a->n; s++) {
			aslot *sl = &a->slot[s];
			if (sl->inc.d && sl->cursor == r) {
				targets[nt++] = s;
				if (!(sl->cur.d && sl->cur_state == SB_ONLINE))
					copy_only = 0;
			}
		}
		if (nt == 0)
			break;
		if (r >= a->hwm) {
			for (int i = 0; i < nt; i++)
				complete_slot(a, targets[i]);
			break;
		}
		if (!copy_only && arr_row_live(a, r)) {
			/* A rebuild: batch consecutive rows, up to max_rows, the next incoming
			 * disk's cursor (the set of targets must stay the same) and the
			 * high-water. A batch starts on a live row: dead rows in front are
			 * passed over below, without I/O and without counting as work. */
			uint32_t nb = BKS_MIN((uint32_t)ARR_BATCH_ROWS, max_rows - done);
			uint64_t end = BKS_MIN(r + nb, a->hwm);
			for (int s = 0; s < a->n; s++)
				if (a->slot[s].inc.d && a->slot[s].cursor > r)
					end = BKS_MIN(end, a->slot[s].cursor);
			bytes += rebuild_batch(a, r, end, targets, nt);
			for (int i = 0; i < nt; i++)
				if (a->slot[targets[i]].inc.d && a->slot[targets[i]].cursor == r)
					a->slot[targets[i]].cursor = end;
			done += (uint32_t)(end - r);
			r = end;
			continue;
		}
		if (!arr_row_live(a, r)) {
			skipped++;
		} else {
			uint8_t *p[RAID_MAX_K + 2];
			int failed[RAID_MAX_K + 2] = {0}, err = 0;
			arr_row_ptrs(a, a->rowbuf2, p);
			if (copy_only) {
				/* Proactive replace: the old disk still reads; copy its strip,
				 * reconstruct only if it fails. */
				for (int i = 0; i < nt && !err; i++) {
					int st = raid_disk_strip(a->n, r, targets[i]);
					err = disk_pread(a->slot[targets[i]].cur.d, p[st], a->strip,
					                 ARR_DATA_OFF + r * a->strip);
					if (err)
						arr_note_error(a, &a->slot[targets[i]].cur, err, 0, 0);
				}
				bytes += (int64_t)nt * a->strip;
			}
			if (!copy_only || err) {
				if (arr_read_row_full(a, r, p, failed) < 0) {
					arr_event(a, ARR_EV_ERR, "rebuild: row %llu cannot be "
					          "reconstructed (too many failed disks); skipped",
					          (unsigned long long)r);
				}
				bytes += (int64_t)a->k * a->strip;
			}
			disk_io ios[ARR_MAX_DISKS];
			int nio = 0;
			for (int i = 0; i < nt; i++) {
				aslot *sl = &a->slot[targets[i]];
				if (!sl->inc.d)
					continue; /* faulted while we read */
				ios[nio++] = (disk_io){.d = sl->inc.d, .op = DISK_WRITE,
				                       .buf = p[raid_disk_strip(a->n, r, targets[i])],
				                       .len = a->strip, .off = ARR_DATA_OFF + r * a->strip};
			}
			disk_io_run(ios, nio);
			for (int i = 0; i < nio; i++)
				for (int t = 0; t < nt; t++)
					if (ios[i].result && a->slot[targets[t]].inc.d == ios[i].d)
						arr_note_error(a, &a->slot[targets[t]].inc, ios[i].result, 1, 0);
			done++;
		}
		for (int i = 0; i < nt; i++)
			if (a->slot[targets[i]].inc.d && a->slot[targets[i]].cursor == r)
				a->slot[targets[i]].cursor = r + 1;
		r++;
	}
	return bytes;
}

static int count_set(const int *v, int n)
{
	int c = 0;
	for (int i = 0; i < n; i++)
		c += v[i] != 0;
	return c;
}

/* A row scrub could not make whole: count it, say so, tell the layer above. */
static void scrub_unrecoverable(arr *a, uint64_t row, const char *why)
{
	a->scrub.errors_found++;
	a->scrub.unrecoverable++;
	arr_event(a, ARR_EV_ERR, "scrub: row %llu %s; nothing rewritten",
	          (unsigned long long)row, why);
	if (a->bad_row_fn)
		a->bad_row_fn(a->bad_row_ctx, row);
}

/* Check one row: P/Q syndromes, the caller's data checksums if any; repair. Only
 * what is proven is written: what a reconstruction the checksums prove over the whole
 * row differs in (a strip the syndromes locate, when the data then verifies, or
 * arr_find_bad's candidates), and unreadable strips rebuilt with a strip of
 * redundancy left to check them.
 *
 * Why the syndromes alone never prove a silently bad strip: P and Q locate one
 * unknown error, and only if there is one. Two or more strips damaged alike (the
 * same bytes XORed into, or the same bytes written over zeros in, several strips)
 * give syndromes that name one strip, over every byte, as consistently as a single
 * bad strip does: the same XOR mask on data strip a, P and Q reads exactly like Q
 * alone wrong by (1 ^ 2^a) times the mask; on data strips a and b (with or without
 * Q), like Q alone wrong; on data strip a and Q, like P or a data strip wrong. The
 * rows on the medium are byte for byte the same, so no rule over what was read can
 * tell them apart. "Repairing" the named strip then writes a consistent row with
 * the damaged data in it: the damage can no longer be seen by P/Q, and the parity a
 * later reconstruction with checksums (a verify, a read) needed to bring the data
 * back is gone. Without checksums for the row the named strip is reported (the
 * event names it), counted unrecoverable, and left as it is. */
static void scrub_row(arr *a, uint64_t row)
{
	int lost[ARR_MAX_DISKS], failed[RAID_MAX_K + 2];
	uint8_t *orig = a->rowbuf2, *work = a->rowbuf;
	uint8_t *p[RAID_MAX_K + 2];
	size_t rowlen = (size_t)(a->k + 2) * a->strip, datalen = arr_row_bytes(a);
	sb_scrub *sc = &a->scrub;
	int nlost, where = -1, chk = -1;
	int sums = a->scrub_verify && arr_row_live(a, row);
	arr_fix fx = {0};
	char why[160];

	sc->rows_checked++;
	nlost = arr_read_row_raw(a, row, orig, lost, failed);
	int nfailed = count_set(failed, a->k + 2);
	sc->errors_found += (uint64_t)nfailed;
	if (nlost > 2) {
		sc->unrecoverable++;
		arr_event(a, ARR_EV_ERR, "scrub: row %llu unreadable (%d strips lost)",
		          (unsigned long long)row, nlost);
		if (a->bad_row_fn)
			a->bad_row_fn(a->bad_row_ctx, row);
		return;
	}
	arr_row_ptrs(a, work, p);
	memcpy(work, orig, rowlen);
	raid_recover(a->codec, a->strip, p, lost, nlost);
	enum raid_check_result cr = nlost < 2 ? raid_check(a->codec, a->strip, p, &where)
	                                      : RAID_CHECK_OK;
	int ok_sum = !sums || a->scrub_verify(a->scrub_verify_ctx, row, 0, work, datalen);
	if (cr == RAID_CHECK_OK && ok_sum) {
		if (nlost < 2 || sums)
			goto repair;
		/* Two strips rebuilt leave no redundancy, and there are no checksums:
		 * nothing proves the rebuilt strips, so the unreadable ones stay as
		 * they are rather than be written with what may be wrong. */
		if (nfailed)
			arr_event(a, ARR_EV_WARN, "scrub: row %llu: %d unreadable strips, no "
			          "redundancy or checksums left to prove their reconstruction; "
			          "not rewritten", (unsigned long long)row, nfailed);
		return;
	}
	if (cr == RAID_CHECK_ONE_BAD && nlost == 0) {
		int s = raid_strip_disk(a->n, row, where);
		if (!sums) {
			snprintf(why, sizeof(why), "is inconsistent: P/Q point to strip %d on "
			         "slot %d, which is the bad one only if no other strip is bad too, "
			         "and there are no data checksums to tell", where, s);
			scrub_unrecoverable(a, row, why);
			return;
		}
		/* The located strip rebuilt, P and Q must both agree with the row again
		 * (they do by the locator's arithmetic: a cheap guard against a locator
		 * that is wrong), and the checksums must pass over the whole data. */
		raid_recover(a->codec, a->strip, p, &where, 1);
		if (raid_check(a->codec, a->strip, p, &chk) == RAID_CHECK_OK &&
		    a->scrub_verify(a->scrub_verify_ctx, row, 0, work, datalen)) {
			fx.bad[0] = where;
			fx.nbad = 1;
			goto repair;
		}
	}
	/* The checksums over the whole row prove the reconstruction, and P and Q are
	 * recomputed from the proven data: a bad parity strip is named too (with one
	 * strip lost, the recovery may not have used it). Three bad strips, or one lost
	 * and two bad, leave nothing proven. */
	if (sums && arr_find_bad(a, row, orig, lost, nlost, 0, datalen, a->scrub_verify,
	                         a->scrub_verify_ctx, work, &fx) == 0 && fx.proven)
		goto repair;
	snprintf(why, sizeof(why), "is inconsistent and the bad strips cannot be located "
	         "(%d strips lost%s)", nlost, sums ? "; no reconstruction passes the data "
	         "checksums" : ", no data checksums");
	scrub_unrecoverable(a, row, why);
	return;
repair:
	for (int i = 0; i < a->k + 2; i++)
		if (failed[i] && arr_repair_strip(a, row, i, work + (size_t)i * a->strip) == 0)
			sc->repaired++;
	for (int i = 0; i < fx.nbad; i++) {
		int st = fx.bad[i];
		int s = raid_strip_disk(a->n, row, st);
		disk *d = arr_reader(a, s, row);
		aslot *sl = &a->slot[s];
		sc->errors_found++;
		if (d)
			arr_note_error(a, d == sl->cur.d ? &sl->cur : &sl->inc, -EIO, 0, 1);
		if (arr_repair_strip(a, row, st, work + (size_t)st * a->strip) == 0) {
			sc->repaired++;
			arr_event(a, ARR_EV_WARN, "scrub: row %llu strip %d on slot %d was wrong; "
			          "repaired", (unsigned long long)row, st, s);
		} else {
			sc->unrecoverable++;
		}
	}
}

static int64_t scrub_step(arr *a, uint32_t max_rows)
{
	int64_t bytes = 0;
	sb_scrub *sc = &a->scrub;

	if (sc->state != SCRUB_RUNNING)
		return -1;
	for (uint32_t done = 0, skipped = 0; done < max_rows && skipped < SKIP_PER_STEP;) {
		if (sc->cursor >= a->hwm) {
			sc->state = SCRUB_IDLE;
			sc->finished_ns = bks_wall_ns();
			a->state_dirty = 1;
			arr_event(a, ARR_EV_INFO, "scrub done: %llu rows checked, %llu errors "
			          "found, %llu repaired, %llu unrecoverable",
			          (unsigned long long)sc->rows_checked,
			          (unsigned long long)sc->errors_found,
			          (unsigned long long)sc->repaired,
			          (unsigned long long)sc->unrecoverable);
			break;
		}
		if (arr_row_live(a, sc->cursor)) {
			scrub_row(a, sc->cursor);
			bytes += (int64_t)(a->k + 2) * a->strip;
			done++;
		} else {
			skipped++;
		}
		sc->cursor++;
	}
	return bytes;
}

/* Foreground I/O within the last fg_idle_ms: background work runs at bg_min_bps. */
static int fg_busy(const arr *a, uint64_t now)
{
	uint64_t idle_ns = (uint64_t)a->cfg.fg_idle_ms * 1000000ull;
	return a->last_fg_ns && now - a->last_fg_ns < idle_ns;
}

/* How long to wait before the next step so that the work done so far keeps to the
 * rate limit (bg_min_bps while the foreground is busy, else bg_max_bps).
 *
 * bg_tokens_ns is the time at which the bytes read so far are paid for. Each step
 * moves it on by bytes / rate from where it was, not from now: the time the step
 * itself took (its I/O under a->mu) and whatever the caller does between steps
 * (bkstord's background thread waits for the appliance lock there) count toward
 * the interval, so the rate is the limit and not bytes / (work + limit's sleep).
 * Restarting from now after every step, as this once did, read 34-47 MiB/s against
 * a 50 MiB/s floor on a loaded machine. The catch-up is bounded (BG_LAG_NS): after
 * a stall the work runs at most that much ahead of now, in the same short steps;
 * work that starts (or resumes after more than that) and an unlimited phase keep
 * no credit at all. */
#define BG_LAG_NS 1000000000ull
static uint64_t pace(arr *a, int64_t bytes, uint64_t now, int busy)
{
	uint64_t rate = busy ? a->cfg.bg_min_bps : a->cfg.bg_max_bps;

	if (bytes > 0)
		a->bg_bytes += (uint64_t)bytes;
	if (now - a->rate_t0_ns >= 1000000000ull || !a->rate_t0_ns) {
		if (a->rate_t0_ns)
			a->bg_rate = (double)(a->bg_bytes - a->rate_b0) * 1e9 /
			             (double)(now - a->rate_t0_ns);
		a->rate_t0_ns = now;
		a->rate_b0 = a->bg_bytes;
	}
	if (!rate) {
		a->bg_tokens_ns = a->bg_paced_ns = now;
		return 0;
	}
	if (bytes <= 0)
		return 0;
	if (!a->bg_paced_ns || now - a->bg_paced_ns > BG_LAG_NS)
		a->bg_tokens_ns = now; /* work (re)starts: no credit from before */
	else if (a->bg_tokens_ns + BG_LAG_NS < now)
		a->bg_tokens_ns = now - BG_LAG_NS;
	a->bg_paced_ns = now;
	a->bg_tokens_ns += (uint64_t)((double)bytes * 1e9 / (double)rate);
	return a->bg_tokens_ns > now ? a->bg_tokens_ns - now : 0;
}

/* One step under a->mu: up to max_rows rows of rebuild/replace, else of scrub.
 * Returns 1 if work remains, 0 if none, or -EROFS; *wait_ns: the pacing delay. */
static int bg_step_locked(arr *a, uint32_t max_rows, int busy, int64_t *bytes_out,
                          uint64_t *wait_ns)
{
	int64_t bytes;
	int more = 0;
	uint64_t now;

	*wait_ns = 0;
	*bytes_out = 0;
	if (a->fatal)
		return -EROFS;
	bytes = rebuild_step(a, max_rows);
	if (bytes < 0)
		bytes = scrub_step(a, max_rows);
	if (bytes >= 0)
		more = 1;
	for (int s = 0; s < a->n; s++)
		if (a->slot[s].inc.d)
			more = 1;
	if (a->scrub.state == SCRUB_RUNNING)
		more = 1;
	now = bks_now_ns();
	/* Persist progress: at once when membership changed, else every few seconds. */
	if (a->state_dirty || (bytes > 0 && now - a->last_bg_commit_ns > ARR_BG_COMMIT_NS)) {
		arr_commit_locked(a, NULL);
		a->last_bg_commit_ns = now;
	}
	*wait_ns = pace(a, bytes, now, busy);
	*bytes_out = bytes;
	return more;
}

/* A step holds a->mu across its I/O (up to ARR_BATCH_ROWS rows: 15-25 ms on
 * bench/rebuild.sh's file disks, up to 140 ms on a loaded machine); a foreground
 * request that arrives meanwhile waits for the rest of it. Cutting the step into
 * one-row steps while the foreground runs was tried (bench/RESULTS.md, "rebuild"):
 * no difference the bench could tell from its noise, and it moved torture seed 3
 * onto a failure main does not reach; left out until that is understood. */
int arr_bg_step(arr *a, uint32_t max_rows)
{
	int64_t bytes;
	uint64_t wait_ns;

	pthread_mutex_lock(&a->mu);
	int busy = fg_busy(a, bks_now_ns());
	int more = bg_step_locked(a, max_rows, busy, &bytes, &wait_ns);
	uint32_t gen = __atomic_load_n(&a->pace_gen, __ATOMIC_ACQUIRE);
	pthread_mutex_unlock(&a->mu);
	/* In slices of at most 100 ms: a step at a low rate owes tens of seconds, and a
	 * new rate (arr_set_pacing, a SIGHUP) must not wait for them to pass. */
	while (wait_ns && __atomic_load_n(&a->pace_gen, __ATOMIC_ACQUIRE) == gen) {
		uint64_t ns = BKS_MIN(wait_ns, 100000000ull);
		struct timespec ts = {(time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull)};
		nanosleep(&ts, NULL);
		wait_ns -= ns;
	}
	return more;
}

int arr_bg_run(arr *a)
{
	int r;
	while ((r = arr_bg_step(a, 64)) > 0)
		;
	return r;
}
