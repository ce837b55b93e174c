/* storage/array_io.c: full-row writes, reads of any range, reconstruction and
 * in-place repair. */
#include <config.h>

#include "storage/array_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int arr_write_rows(arr *a, uint64_t row, uint32_t nrows, const void *data, bks_err *e)
{
	const uint8_t *src = data;
	disk_io ios[ARR_BATCH_ROWS * ARR_MAX_DISKS * 2];
	adisk *who[ARR_BATCH_ROWS * ARR_MAX_DISKS * 2];
	int r = 0;

	if (((uintptr_t)data) % DISK_ALIGN)
		return bks_fail(e, -EINVAL, "row buffer not %u-byte aligned", DISK_ALIGN);
	pthread_mutex_lock(&a->mu);
	if (row >= a->rows || nrows > a->rows - row) {
		r = bks_fail(e, -ERANGE, "rows %llu..%llu beyond the array's %llu rows",
		             (unsigned long long)row, (unsigned long long)(row + nrows),
		             (unsigned long long)a->rows);
		goto out;
	}
	while (nrows > 0) {
		uint32_t batch = BKS_MIN(nrows, (uint32_t)ARR_BATCH_ROWS);
		int nio = 0;
		if (a->fatal || arr_writable_slots(a) < a->k) {
			r = bks_fail(e, -EROFS, "array %s is FAILED (%d of %d disks usable, %d "
			             "needed): refusing writes it cannot protect", a->name,
			             arr_writable_slots(a), a->n, a->k);
			goto out;
		}
		for (uint32_t b = 0; b < batch; b++) {
			uint64_t rr = row + b;
			uint8_t *p[RAID_MAX_K + 2];
			for (int i = 0; i < a->k; i++)
				p[i] = (uint8_t *)src + ((size_t)b * a->k + (size_t)i) * a->strip;
			p[a->k] = a->rowbuf + (size_t)b * 2 * a->strip;
			p[a->k + 1] = p[a->k] + a->strip;
			raid_encode(a->codec, a->strip, p);
			for (int s = 0; s < a->n; s++) {
				aslot *sl = &a->slot[s];
				uint8_t *buf = p[raid_disk_strip(a->n, rr, s)];
				uint64_t off = ARR_DATA_OFF + rr * a->strip;
				if (sl->cur.d && sl->cur_state == SB_ONLINE) {
					who[nio] = &sl->cur;
					ios[nio++] = (disk_io){.d = sl->cur.d, .op = DISK_WRITE, .buf = buf,
					                       .len = a->strip, .off = off};
				}
				if (sl->inc.d) {
					who[nio] = &sl->inc;
					ios[nio++] = (disk_io){.d = sl->inc.d, .op = DISK_WRITE, .buf = buf,
					                       .len = a->strip, .off = off};
				}
			}
		}
		disk_io_run(ios, nio);
		for (int i = 0; i < nio; i++)
			if (ios[i].result && who[i]->d == ios[i].d)
				arr_note_error(a, who[i], ios[i].result, 1, 0);
		arr_check_latency(a, ios, nio);
		/* A write that landed on fewer than k slots is not a row we can read back. */
		if (arr_writable_slots(a) < a->k) {
			r = bks_fail(e, -EIO, "array %s: write of rows %llu.. reached too few disks",
			             a->name, (unsigned long long)row);
			goto out;
		}
		if (row + batch > a->hwm)
			a->hwm = row + batch;
		row += batch;
		nrows -= batch;
		src += (size_t)batch * a->k * a->strip;
	}
out:
	a->last_fg_ns = bks_now_ns();
	pthread_mutex_unlock(&a->mu);
	return r;
}

/* Read every readable strip of row into the contiguous row at base (no recovery).
 * lost[] receives the strips that are missing or failed; failed[] marks the ones
 * that failed with an I/O error (their disk is present: they are repaired). */
int arr_read_row_raw(arr *a, uint64_t row, uint8_t *base, int *lost, int *failed)
{
	disk_io ios[ARR_MAX_DISKS];
	int slot_of[ARR_MAX_DISKS];
	int nio = 0, nlost = 0;

	for (int i = 0; i < a->k + 2; i++)
		failed[i] = 0;
	for (int s = 0; s < a->n; s++) {
		int st = raid_disk_strip(a->n, row, s);
		disk *d = arr_reader(a, s, row);
		if (!d) {
			lost[nlost++] = st;
			continue;
		}
		slot_of[nio] = s;
		ios[nio++] = (disk_io){.d = d, .op = DISK_READ, .buf = base + (size_t)st * a->strip,
		                       .len = a->strip, .off = ARR_DATA_OFF + row * a->strip};
	}
	disk_io_run(ios, nio);
	arr_check_latency(a, ios, nio);
	for (int i = 0; i < nio; i++) {
		if (!ios[i].result)
			continue;
		int s = slot_of[i];
		int st = raid_disk_strip(a->n, row, s);
		aslot *sl = &a->slot[s];
		arr_note_error(a, ios[i].d == sl->cur.d ? &sl->cur : &sl->inc, ios[i].result, 0, 0);
		lost[nlost++] = st;
		failed[st] = 1;
	}
	return nlost;
}

int arr_read_row_full(arr *a, uint64_t row, uint8_t *const *strips, int *failed)
{
	int lost[ARR_MAX_DISKS];
	uint8_t *base = strips[0];
	int nlost = arr_read_row_raw(a, row, base, lost, failed);
	if (nlost > 2)
		return -EIO;
	return raid_recover(a->codec, a->strip, strips, lost, nlost);
}

int arr_repair_strip(arr *a, uint64_t row, int strip, const void *buf)
{
	int s = raid_strip_disk(a->n, row, strip);
	aslot *sl = &a->slot[s];
	uint64_t off = ARR_DATA_OFF + row * a->strip;
	int r = -ENODEV;

	if (sl->cur.d && sl->cur_state == SB_ONLINE) {
		r = disk_pwrite(sl->cur.d, buf, a->strip, off);
		if (r)
			arr_note_error(a, &sl->cur, r, 1, 0);
	}
	if (sl->inc.d && row < sl->cursor) {
		int r2 = disk_pwrite(sl->inc.d, buf, a->strip, off);
		if (r2)
			arr_note_error(a, &sl->inc, r2, 1, 0);
		if (r)
			r = r2;
	}
	return r;
}

/* Is the reconstruction in work right over whole strips, not just over the range a
 * caller checked? ns strips of it were recovered (lost plus assumed bad); the rest
 * are as read. Two proofs, whichever applies:
 *  - P/Q: with at most one strip recovered the row keeps one strip of redundancy,
 *    and P and Q agreeing over the full strip length proves the survivors (the
 *    raid6check rule scrub uses). With two recovered, the row is consistent by
 *    construction and P/Q prove nothing.
 *  - the data checksums over every data byte: data_checked (the caller's verifier
 *    was given the whole row's data and passed), or the store's scrub verifier on a
 *    live row (on a dead row it passes anything, so it proves nothing there). Then
 *    P and Q in work are recomputed from the proven data: a parity strip that
 *    differs from them is proven bad too.
 * The range check alone is never enough: a reconstruction that assumed the wrong
 * strips bad can be right under the range and wrong elsewhere (test-array-repair). */
static int row_proven(arr *a, uint64_t row, uint8_t *work, int ns, int data_checked)
{
	uint8_t *p[RAID_MAX_K + 2];
	int where;

	arr_row_ptrs(a, work, p);
	if (ns <= 1 && raid_check(a->codec, a->strip, p, &where) == RAID_CHECK_OK)
		return 1;
	if (!data_checked && !(a->scrub_verify && arr_row_live(a, row) &&
	                       a->scrub_verify(a->scrub_verify_ctx, row, 0, work,
	                                       arr_row_bytes(a))))
		return 0;
	raid_encode(a->codec, a->strip, p);
	return 1;
}

/* The present strips (not in lost[]) whose content as read differs from the proven
 * reconstruction: the ones to rewrite. */
static int proven_bad(arr *a, const uint8_t *orig, const uint8_t *work, const int *lost,
                      int nlost, int *bad)
{
	int nbad = 0;
	for (int i = 0; i < a->k + 2 && nbad < ARR_MAX_BAD; i++) {
		int is_lost = 0;
		for (int j = 0; j < nlost; j++)
			is_lost |= lost[j] == i;
		if (!is_lost && memcmp(orig + (size_t)i * a->strip, work + (size_t)i * a->strip,
		                       a->strip))
			bad[nbad++] = i;
	}
	return nbad;
}

/* Reconstruct row so that verify passes over [off, off+len): `orig` holds the row as
 * read with lost[] missing; `work` receives the corrected row. Tries the erasures
 * alone, then each extra strip, then each pair, as ZFS's combinatorial
 * reconstruction does.
 *
 * Passing the range check is what the bytes handed back need; it does not make the
 * rest of the row right, so a candidate counts as a repair only when row_proven()
 * proves it over whole strips. The search goes on past candidates that pass the
 * range but not the proof: with three strips wrong, the first pair that fixes the
 * range can be the wrong pair (its other strip good, rebuilt wrong), and a later
 * one the right pair. When no candidate is proven, the first that passed the range
 * is handed back with fx->proven 0 and nothing named bad: the caller returns the
 * bytes its checksum accepted and writes nothing. A pair can only be proven by the
 * checksums, so without them the search stops at the first pair that passes.
 *
 * Which candidates can matter: with no lost strip inside the range, only a set that
 * touches the range changes the verified bytes. A lost strip inside the range is
 * rebuilt from every other strip (parity, and data outside the range), so a silently
 * bad one anywhere in the row shows in the range: then every strip is a candidate. */
int arr_find_bad(arr *a, uint64_t row, const uint8_t *orig, const int *lost, int nlost,
                 size_t off, size_t len, arr_verify_fn verify, void *ctx, uint8_t *work,
                 arr_fix *fx)
{
	int m = a->k + 2;
	size_t rowlen = (size_t)m * a->strip;
	uint8_t *p[RAID_MAX_K + 2];
	int first = (int)(off / a->strip), last = (int)((off + len - 1) / a->strip);
	int data_checked = off == 0 && len == arr_row_bytes(a);
	int can_sum = data_checked || (a->scrub_verify && arr_row_live(a, row));
	int pass_set[4], pass_ns = -1, pass_extra = 0;

	memset(fx, 0, sizeof(*fx));
	int lost_in_range = 0;
	for (int i = 0; i < nlost; i++)
		lost_in_range |= lost[i] >= first && lost[i] <= last;
	arr_row_ptrs(a, work, p);
	for (int extra = 0; extra <= 2 - nlost; extra++) {
		if (pass_ns >= 0 && nlost + extra == 2 && !can_sum)
			break; /* nothing from here on can be proven */
		for (int x = 0; x < (extra ? m : 1); x++) {
			for (int y = (extra == 2 ? x + 1 : 0); y < (extra == 2 ? m : 1); y++) {
				int set[4], ns = 0, dup = 0;
				for (int i = 0; i < nlost; i++)
					set[ns++] = lost[i];
				if (extra >= 1)
					set[ns++] = x;
				if (extra == 2)
					set[ns++] = y;
				for (int i = nlost; i < ns; i++)
					for (int j = 0; j < nlost; j++)
						if (set[i] == lost[j])
							dup = 1;
				if (dup)
					continue;
				/* Only candidates that can change the verified bytes. */
				if (!lost_in_range && extra == 1 && (x < first || x > last))
					continue;
				if (!lost_in_range && extra == 2 && (x < first || x > last) &&
				    (y < first || y > last))
					continue;
				memcpy(work, orig, rowlen);
				if (raid_recover(a->codec, a->strip, p, set, ns) < 0)
					continue;
				if (!verify(ctx, row, off, work + off, len))
					continue;
				if ((ns < 2 || can_sum) && row_proven(a, row, work, ns, data_checked)) {
					fx->proven = 1;
					fx->extra = extra;
					fx->nbad = proven_bad(a, orig, work, lost, nlost, fx->bad);
					return 0;
				}
				if (pass_ns < 0) {
					memcpy(pass_set, set, sizeof(set));
					pass_ns = ns;
					pass_extra = extra;
				}
				/* The erasures alone fixed the range: another candidate would
				 * change those bytes, so it cannot pass too. */
				if (extra == 0 || (ns == 2 && !can_sum))
					goto unproven;
			}
		}
	}
	if (pass_ns < 0)
		return -EIO;
unproven:
	memcpy(work, orig, rowlen);
	raid_recover(a->codec, a->strip, p, pass_set, pass_ns);
	fx->extra = pass_extra;
	return 0;
}

/* The slow path: read the whole row, reconstruct, verify, and repair what is proven
 * (arr_find_bad, row_proven): strips whose disk returned an error, and strips proven
 * wrong. A reconstruction that only the range check accepts gives the caller its
 * bytes and rewrites nothing. Missing disks are the rebuild's business. */
static int read_slow(arr *a, uint64_t row, size_t off, void *buf, size_t len,
                     arr_verify_fn verify, void *ctx)
{
	int lost[ARR_MAX_DISKS], failed[RAID_MAX_K + 2], nfailed = 0;
	uint8_t *orig = a->rowbuf2, *work = a->rowbuf;
	uint8_t *p[RAID_MAX_K + 2];
	arr_fix fx;
	int nlost;

	nlost = arr_read_row_raw(a, row, orig, lost, failed);
	if (nlost > 2)
		return -EIO;
	for (int i = 0; i < a->k + 2; i++)
		nfailed += failed[i];
	if (verify) {
		if (arr_find_bad(a, row, orig, lost, nlost, off, len, verify, ctx, work, &fx) < 0)
			return -EIO;
	} else {
		memset(&fx, 0, sizeof(fx));
		memcpy(work, orig, (size_t)(a->k + 2) * a->strip);
		arr_row_ptrs(a, work, p);
		if (raid_recover(a->codec, a->strip, p, lost, nlost) < 0)
			return -EIO;
		fx.proven = row_proven(a, row, work, nlost, 0);
		if (fx.proven) {
			fx.nbad = proven_bad(a, orig, work, lost, nlost, fx.bad);
		} else if (nlost == 1) {
			/* P/Q say a survivor is wrong, so the rebuilt strip may be too.
			 * The store's checksums over the whole row can still find the
			 * right reconstruction; without them an unverified read must not
			 * hand the bytes out (its callers check what they get and read
			 * again through a verifier). */
			if (!a->scrub_verify || !arr_row_live(a, row) ||
			    arr_find_bad(a, row, orig, lost, nlost, 0, arr_row_bytes(a),
			                 a->scrub_verify, a->scrub_verify_ctx, work, &fx) < 0)
				return -EIO;
		}
	}
	memcpy(buf, work + off, len);
	if (!fx.proven) {
		if (nfailed || fx.extra)
			arr_event(a, ARR_EV_WARN, "row %llu: read reconstructed (%d strips lost, "
			          "%d more taken as bad) and checked over the range read only; "
			          "not proven over whole strips, nothing rewritten",
			          (unsigned long long)row, nlost, fx.extra);
		return 0;
	}
	for (int i = 0; i < a->k + 2; i++)
		if (failed[i])
			arr_repair_strip(a, row, i, work + (size_t)i * a->strip);
	for (int i = 0; i < fx.nbad; i++) {
		int s = raid_strip_disk(a->n, row, fx.bad[i]);
		disk *d = arr_reader(a, s, row);
		aslot *sl = &a->slot[s];
		if (d)
			arr_note_error(a, d == sl->cur.d ? &sl->cur : &sl->inc, -EIO, 0, 1);
		arr_repair_strip(a, row, fx.bad[i], work + (size_t)fx.bad[i] * a->strip);
	}
	return 0;
}

/* A read whose range covers a strip on a missing disk: recover the range, not the
 * row. Every byte offset of a row is its own RAID-6 codeword, so the bytes at
 * [lo, hi) within the strips follow from the same bytes of the survivors: read that
 * part of every surviving strip (plus the parts of in-range strips the request
 * needs), recover it, copy the range out. A 4 KiB read then costs k+1 reads of
 * 4 KiB instead of k+1 of a whole strip (256 KiB) and a whole-row decode.
 *
 * Returns 0 with buf filled (and verify passed, when given), or -EAGAIN when it
 * cannot serve the read as it stands (a survivor's read failed, verify rejected the
 * result, no verifier and one strip lost but P and Q do not both confirm the range,
 * more than two strips are gone): then read_slow reads the whole row and
 * does what it does (counting errors, locating a silently bad strip with the
 * verifier, repairing). This path writes nothing and counts no error itself. */
static int read_range_degraded(arr *a, uint64_t row, size_t off, void *buf, size_t len,
                               arr_verify_fn verify, void *ctx)
{
	int m = a->k + 2, lost[RAID_MAX_K + 2], nlost = 0, nio = 0;
	size_t aoff = off / DISK_ALIGN * DISK_ALIGN, aend = BKS_ROUND_UP(off + len, DISK_ALIGN);
	size_t lo = a->strip, hi = 0, cl[RAID_MAX_K + 2], ch[RAID_MAX_K + 2];
	disk *dk[RAID_MAX_K + 2];
	disk_io ios[RAID_MAX_K + 2];
	uint8_t *base = a->rowbuf, *p[RAID_MAX_K + 2];

	for (int i = 0; i < m; i++) {
		/* The part of strip i the request covers (empty outside it). */
		size_t s0 = (size_t)i * a->strip, s1 = s0 + a->strip;
		cl[i] = ch[i] = 0;
		if (i < a->k && aoff < s1 && aend > s0) {
			cl[i] = BKS_MAX(aoff, s0) - s0;
			ch[i] = BKS_MIN(aend, s1) - s0;
		}
		dk[i] = arr_reader(a, raid_strip_disk(a->n, row, i), row);
		if (dk[i])
			continue;
		lost[nlost++] = i;
		if (ch[i] > cl[i]) {
			lo = BKS_MIN(lo, cl[i]);
			hi = BKS_MAX(hi, ch[i]);
		}
	}
	if (nlost > 2 || hi <= lo)
		return -EAGAIN;
	for (int i = 0; i < m; i++) {
		if (!dk[i])
			continue;
		size_t s = lo, e = hi;
		if (ch[i] > cl[i]) {
			s = BKS_MIN(s, cl[i]);
			e = BKS_MAX(e, ch[i]);
		}
		ios[nio++] = (disk_io){.d = dk[i], .op = DISK_READ,
		                       .buf = base + (size_t)i * a->strip + s, .len = e - s,
		                       .off = ARR_DATA_OFF + row * a->strip + s};
	}
	disk_io_run(ios, nio);
	arr_check_latency(a, ios, nio);
	for (int i = 0; i < nio; i++)
		if (ios[i].result)
			return -EAGAIN;
	for (int i = 0; i < m; i++)
		p[i] = base + (size_t)i * a->strip + lo;
	if (nlost == 1 && !verify) {
		/* No checksum will look at these bytes: with one strip lost the row still has
		 * a parity to spare, so the rebuilt range must agree with both P and Q (a
		 * silently bad survivor would otherwise be rebuilt into wrong bytes and
		 * returned as good). Inconsistent: read_slow decides. */
		if (raid_recover1_check(a->codec, hi - lo, p, lost[0]) != RAID_CHECK_OK)
			return -EAGAIN;
	} else if (raid_recover(a->codec, hi - lo, p, lost, nlost) < 0) {
		return -EAGAIN;
	}
	memcpy(buf, base + off, len);
	if (verify && !verify(ctx, row, off, buf, len))
		return -EAGAIN;
	return 0;
}

int arr_read_verify(arr *a, uint64_t row, size_t off, void *buf, size_t len,
                    arr_verify_fn verify, void *ctx)
{
	disk_io ios[RAID_MAX_K];
	int r = 0, nio = 0, slow = 0, missing = 0;

	if (len == 0)
		return 0;
	pthread_mutex_lock(&a->mu);
	a->last_fg_ns = bks_now_ns();
	if (row >= a->rows || off > arr_row_bytes(a) || len > arr_row_bytes(a) - off) {
		r = -ERANGE;
		goto out;
	}
	/* Fast path: only the strips the range covers, straight into buf when it is
	 * aligned, else into the row scratch at the same offsets. */
	size_t aoff = off / DISK_ALIGN * DISK_ALIGN;
	size_t aend = BKS_ROUND_UP(off + len, DISK_ALIGN);
	int direct = aoff == off && aend == off + len && ((uintptr_t)buf % DISK_ALIGN) == 0;
	uint8_t *base = direct ? (uint8_t *)buf - off : a->rowbuf;
	for (size_t pos = aoff; pos < aend;) {
		int st = (int)(pos / a->strip);
		size_t in = pos % a->strip;
		size_t n = BKS_MIN(aend - pos, a->strip - in);
		disk *d = arr_reader(a, raid_strip_disk(a->n, row, st), row);
		if (!d) {
			slow = missing = 1;
			break;
		}
		ios[nio++] = (disk_io){.d = d, .op = DISK_READ, .buf = base + pos, .len = n,
		                       .off = ARR_DATA_OFF + row * a->strip + in};
		pos += n;
	}
	if (!slow) {
		disk_io_run(ios, nio);
		arr_check_latency(a, ios, nio);
		for (int i = 0; i < nio; i++)
			if (ios[i].result)
				slow = 1; /* read_slow() reads again, counts and repairs */
	}
	if (!slow) {
		if (!direct)
			memcpy(buf, a->rowbuf + off, len);
		if (verify && !verify(ctx, row, off, buf, len))
			slow = 1;
	}
	if (missing && read_range_degraded(a, row, off, buf, len, verify, ctx) == 0)
		slow = 0;
	if (slow)
		r = read_slow(a, row, off, buf, len, verify, ctx);
out:
	pthread_mutex_unlock(&a->mu);
	return r;
}

int arr_read(arr *a, uint64_t row, size_t off, void *buf, size_t len)
{
	return arr_read_verify(a, row, off, buf, len, NULL, NULL);
}

int arr_read_many(arr *a, arr_rd *v, int n)
{
	disk_io ios[ARR_RD_MAX * (RAID_MAX_K + 1)];
	int of[ARR_RD_MAX * (RAID_MAX_K + 1)]; /* range of each request */
	int slow[ARR_RD_MAX] = {0};
	int nio = 0, first = 0;

	if (n < 0 || n > ARR_RD_MAX)
		return -EINVAL;
	pthread_mutex_lock(&a->mu);
	a->last_fg_ns = bks_now_ns();
	for (int i = 0; i < n; i++) {
		arr_rd *d = &v[i];
		d->result = 0;
		if (d->len == 0)
			continue;
		if (d->row >= a->rows || d->off > arr_row_bytes(a) ||
		    d->len > arr_row_bytes(a) - d->off) {
			d->result = -ERANGE;
			continue;
		}
		if ((d->off | d->len | (uintptr_t)d->buf) % DISK_ALIGN) {
			d->result = -EINVAL;
			continue;
		}
		/* The strips the range covers; a range longer than a row's data cannot
		 * need more than k + 1 requests (k strips, split at both ends). */
		int start = nio;
		uint8_t *base = (uint8_t *)d->buf - d->off;
		for (size_t pos = d->off; pos < d->off + d->len;) {
			int st = (int)(pos / a->strip);
			size_t in = pos % a->strip;
			size_t len = BKS_MIN(d->off + d->len - pos, a->strip - in);
			disk *dk = arr_reader(a, raid_strip_disk(a->n, d->row, st), d->row);
			if (!dk) {
				slow[i] = 2; /* a strip on a missing disk */
				nio = start;
				break;
			}
			of[nio] = i;
			ios[nio++] = (disk_io){.d = dk, .op = DISK_READ, .buf = base + pos, .len = len,
			                       .off = ARR_DATA_OFF + d->row * a->strip + in};
			pos += len;
		}
	}
	disk_io_run(ios, nio);
	arr_check_latency(a, ios, nio);
	for (int i = 0; i < nio; i++)
		if (ios[i].result)
			slow[of[i]] = 1;
	for (int i = 0; i < n; i++) {
		if (slow[i] == 2 && read_range_degraded(a, v[i].row, v[i].off, v[i].buf, v[i].len,
		                                        NULL, NULL) == 0)
			slow[i] = 0;
		if (slow[i])
			v[i].result = read_slow(a, v[i].row, v[i].off, v[i].buf, v[i].len, NULL, NULL);
		if (v[i].result && !first)
			first = v[i].result;
	}
	pthread_mutex_unlock(&a->mu);
	return first;
}
