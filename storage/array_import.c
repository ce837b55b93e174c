/* storage/array_import.c: assemble an array from the disks we are given.
 *
 * Every disk's labels say which array it belongs to; every disk's superblock ring
 * holds the last 64 commits it took part in. The array's state is the newest commit
 * that a majority of the present disks expected to hold it actually hold (a commit
 * torn by a crash is on a minority and loses to its predecessor, which is intact
 * because ring slots are never reused for 64 commits). */
#include <config.h>

#include "storage/array_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct slotref {
	uint64_t seq, hash;
	int disk;
	int slot;
};

static int cmp_ref(const void *x, const void *y)
{
	const struct slotref *a = x, *b = y;
	if (a->seq != b->seq)
		return a->seq > b->seq ? -1 : 1;
	return a->hash < b->hash ? -1 : a->hash > b->hash;
}

static int find_disk(const lbl_disk *labels, int nd, const uint8_t *uuid)
{
	if (bks_uuid_is_zero(uuid))
		return -1;
	for (int i = 0; i < nd; i++)
		if (!memcmp(labels[i].disk_uuid, uuid, BKS_UUID_LEN))
			return i;
	return -1;
}

/* Is disk i expected to hold commit sb? (online member, incoming, or spare) */
static int expected_in(const sb_super *sb, const uint8_t *uuid)
{
	for (uint32_t s = 0; s < sb->ndisks; s++) {
		if (sb->member[s].cur_state == SB_ONLINE &&
		    !memcmp(sb->member[s].cur_uuid, uuid, BKS_UUID_LEN))
			return 1;
		if (!memcmp(sb->member[s].incoming_uuid, uuid, BKS_UUID_LEN))
			return 1;
	}
	for (uint32_t i = 0; i < sb->nspares; i++)
		if (!memcmp(sb->spare_uuid[i], uuid, BKS_UUID_LEN))
			return 1;
	return 0;
}

/* Read every disk's ring; returns the number of valid slots found (refs owned by
 * the caller) or -errno. */
static int read_rings(disk **disks, int nd, const lbl_disk *labels, struct slotref **out,
                      uint64_t *max_seq)
{
	size_t ringlen = (size_t)SB_SLOTS * SB_SLOT_SIZE;
	uint8_t *ring = bks_alloc_aligned(DISK_ALIGN, ringlen);
	struct slotref *refs = calloc((size_t)nd * SB_SLOTS, sizeof(*refs));
	sb_super *sb = malloc(sizeof(*sb));
	int n = 0;

	*max_seq = 0;
	if (!ring || !refs || !sb) {
		free(ring);
		free(refs);
		free(sb);
		return -ENOMEM;
	}
	for (int i = 0; i < nd; i++) {
		if (disk_pread(disks[i], ring, ringlen, SB_RING_OFF) != 0)
			continue; /* this disk contributes no votes */
		for (uint32_t sl = 0; sl < SB_SLOTS; sl++) {
			const uint8_t *b = ring + (size_t)sl * SB_SLOT_SIZE;
			if (sb_decode(b, SB_SLOT_SIZE, sb, NULL) != 0)
				continue;
			if (memcmp(sb->array_uuid, labels[i].array_uuid, BKS_UUID_LEN) ||
			    sb->seq % SB_SLOTS != sl)
				continue;
			refs[n++] = (struct slotref){sb->seq, sb_content_hash(b), i, (int)sl};
			*max_seq = BKS_MAX(*max_seq, sb->seq);
		}
	}
	free(ring);
	free(sb);
	*out = refs;
	return n;
}

static int load_slot(disk *d, int slot, sb_super *sb)
{
	uint8_t *b = bks_alloc_aligned(DISK_ALIGN, SB_SLOT_SIZE);
	int r;
	if (!b)
		return -ENOMEM;
	r = disk_pread(d, b, SB_SLOT_SIZE, SB_RING_OFF + (uint64_t)slot * SB_SLOT_SIZE);
	if (!r)
		r = sb_decode(b, SB_SLOT_SIZE, sb, NULL);
	free(b);
	return r;
}

/* Pick the newest commit with a majority of its expected, present disks. */
static int choose_commit(disk **disks, int nd, const lbl_disk *labels,
                         const struct slotref *refs, int nref, sb_super *sb)
{
	for (int i = 0; i < nref;) {
		int j = i;
		while (j < nref && refs[j].seq == refs[i].seq && refs[j].hash == refs[i].hash)
			j++;
		int agree = j - i;
		if (load_slot(disks[refs[i].disk], refs[i].slot, sb) == 0) {
			int expected = 0;
			for (int d = 0; d < nd; d++)
				expected += expected_in(sb, labels[d].disk_uuid);
			if (2 * agree > expected)
				return 0;
		}
		i = j;
	}
	return -ENOENT;
}

static void take(adisk *ad, disk **disks, int *owned, int idx, const uint8_t *uuid)
{
	memcpy(ad->uuid, uuid, BKS_UUID_LEN);
	if (idx >= 0) {
		ad->d = disks[idx];
		owned[idx] = 1;
	}
}

int arr_import(const arr_config *cfg, disk **disks, int nd, arr **out, bks_err *e)
{
	lbl_disk *labels = NULL;
	struct slotref *refs = NULL;
	sb_super *sb = NULL;
	int owned[ARR_MAX_DISKS * 2 + ARR_MAX_SPARES] = {0};
	disk *ld[ARR_MAX_DISKS * 2 + ARR_MAX_SPARES];      /* labelled disks */
	disk *blank[ARR_MAX_DISKS * 2 + ARR_MAX_SPARES];   /* set aside */
	int nl = 0, nblank = 0;
	arr *a = NULL;
	uint64_t max_seq = 0;
	int r, nref;
	char u[BKS_UUID_STRLEN];

	*out = NULL;
	if (nd <= 0)
		return bks_fail(e, -EINVAL, "no disks given");
	if (nd > (int)BKS_ARRAY_SIZE(owned))
		return bks_fail(e, -EINVAL, "%d disks given, at most %zu", nd,
		                BKS_ARRAY_SIZE(owned));
	labels = calloc((size_t)nd, sizeof(*labels));
	sb = calloc(1, sizeof(*sb));
	if (!labels || !sb) {
		r = bks_fail(e, -ENOMEM, "out of memory");
		goto out;
	}
	for (int i = 0; i < nd; i++) {
		const disk_info *in = disk_get_info(disks[i]);
		bks_err le = {0};
		for (int j = 0; j < i; j++) {
			const disk_info *jn = disk_get_info(disks[j]);
			if (in->dev == jn->dev && in->ino == jn->ino) {
				r = bks_fail(e, -EINVAL, "disk %s is given twice (also as %s)",
				             disk_path(disks[i]), disk_path(disks[j]));
				goto out;
			}
		}
		r = arr_read_label(disks[i], &labels[nl], &le);
		if (r == -ENOENT) {
			/* Blank (no label magic in either copy): an old disk a replace
			 * released, or a new one never added. It holds nothing of any
			 * array, so it is set aside like a stale member, not a reason to
			 * refuse the others (unless nothing else is labelled). */
			blank[nblank++] = disks[i];
			continue;
		}
		if (r < 0) {
			r = bks_fail(e, r, "disk %s: %s; not importing (is it a bkstor disk?)",
			             disk_path(disks[i]), bks_errmsg(&le, r));
			goto out;
		}
		if (memcmp(labels[nl].array_uuid, labels[0].array_uuid, BKS_UUID_LEN)) {
			char u0[BKS_UUID_STRLEN];
			bks_uuid_fmt(labels[nl].array_uuid, u);
			bks_uuid_fmt(labels[0].array_uuid, u0);
			r = bks_fail(e, -EINVAL, "disk %s belongs to array '%s' (%s) but %s to "
			             "array '%s' (%s); give the disks of one array",
			             disk_path(disks[i]), labels[nl].name, u, disk_path(ld[0]),
			             labels[0].name, u0);
			goto out;
		}
		for (int j = 0; j < nl; j++)
			if (!memcmp(labels[nl].disk_uuid, labels[j].disk_uuid, BKS_UUID_LEN)) {
				r = bks_fail(e, -EINVAL, "disks %s and %s carry the same disk UUID "
				             "(a cloned disk?)", disk_path(ld[j]), disk_path(disks[i]));
				goto out;
			}
		ld[nl++] = disks[i];
	}
	if (nl == 0) {
		r = bks_fail(e, -ENOENT, "disk %s: no bkstor label; not importing (is it a "
		             "bkstor disk?)%s", disk_path(disks[0]),
		             nd > 1 ? " (no given disk carries one)" : "");
		goto out;
	}
	/* From here on only the labelled disks take part. */
	disks = ld;
	nd = nl;
	nref = read_rings(disks, nd, labels, &refs, &max_seq);
	if (nref < 0) {
		r = bks_fail(e, nref, "out of memory");
		goto out;
	}
	qsort(refs, (size_t)nref, sizeof(*refs), cmp_ref);
	if (choose_commit(disks, nd, labels, refs, nref, sb) != 0) {
		r = bks_fail(e, -ENOENT, "array '%s': no superblock that a majority of the %d "
		             "given disks agree on (ring damaged on too many disks)",
		             labels[0].name, nd);
		goto out;
	}
	if (sb->strip_size != labels[0].strip_size || sb->rows != labels[0].rows ||
	    sb->ndisks != labels[0].ndisks) {
		r = bks_fail(e, -EINVAL, "array '%s': superblock geometry disagrees with the "
		             "labels", labels[0].name);
		goto out;
	}

	a = calloc(1, sizeof(*a));
	if (!a) {
		r = bks_fail(e, -ENOMEM, "out of memory");
		goto out;
	}
	pthread_mutex_init(&a->mu, NULL);
	a->cfg = *cfg;
	a->ev_fn = cfg->ev_fn;
	a->ev_ctx = cfg->ev_ctx;
	memcpy(a->uuid, sb->array_uuid, BKS_UUID_LEN);
	snprintf(a->name, sizeof(a->name), "%s", labels[0].name);
	a->created_ns = labels[0].created_ns;
	a->n = (int)sb->ndisks;
	a->k = a->n - 2;
	a->strip = sb->strip_size;
	a->rows = sb->rows;
	a->hwm = sb->hwm;
	a->hwm_durable = sb->hwm;
	a->seq = sb->seq;
	a->next_seq = max_seq + 1;
	a->root_len = sb->root_len;
	memcpy(a->root, sb->root, sb->root_len);
	a->scrub = sb->scrub;

	/* Which slots can serve data? Decide before taking any disk, so a refusal
	 * leaves the caller owning everything. */
	char missing[512] = "";
	int unavailable = 0;
	for (int s = 0; s < a->n; s++) {
		const sb_member *m = &sb->member[s];
		int ci = find_disk(labels, nd, m->cur_uuid);
		if (m->cur_state == SB_ONLINE && ci >= 0)
			continue;
		unavailable++;
		size_t l = strlen(missing);
		bks_uuid_fmt(m->cur_uuid, u);
		snprintf(missing + l, sizeof(missing) - l, "%sslot %d (%s)", l ? ", " : "", s,
		         m->cur_state == SB_REMOVED ? "empty"
		         : ci < 0                   ? u
		                                    : sb_state_name(m->cur_state));
	}
	if (unavailable > 2) {
		r = bks_fail(e, -ENXIO, "array '%s': %d of %d member slots unavailable: %s; at "
		             "most 2 may be missing", a->name, unavailable, a->n, missing);
		goto out;
	}
	for (int s = 0; s < a->n; s++) {
		const sb_member *m = &sb->member[s];
		aslot *sl = &a->slot[s];
		int ci = find_disk(labels, nd, m->cur_uuid);
		int ii = find_disk(labels, nd, m->incoming_uuid);
		take(&sl->cur, disks, owned, ci, m->cur_uuid);
		sl->cur_state = m->cur_state;
		if (m->cur_state == SB_REMOVED)
			memset(sl->cur.uuid, 0, BKS_UUID_LEN);
		if (m->cur_state == SB_ONLINE && ci < 0) {
			bks_uuid_fmt(m->cur_uuid, u);
			sl->cur_state = SB_FAULTED;
			a->state_dirty = 1;
			arr_event(a, ARR_EV_WARN, "slot %d: disk %s is missing; marked FAULTED", s, u);
		}
		if (!bks_uuid_is_zero(m->incoming_uuid)) {
			if (ii >= 0) {
				take(&sl->inc, disks, owned, ii, m->incoming_uuid);
				sl->cursor = m->cursor;
				sl->flags = m->flags;
			} else {
				bks_uuid_fmt(m->incoming_uuid, u);
				arr_event(a, ARR_EV_WARN, "slot %d: incoming disk %s is missing; its "
				          "rebuild starts over on another spare", s, u);
				a->state_dirty = 1;
			}
		}
	}
	for (uint32_t i = 0; i < sb->nspares; i++) {
		int si = find_disk(labels, nd, sb->spare_uuid[i]);
		if (si < 0) {
			bks_uuid_fmt(sb->spare_uuid[i], u);
			arr_event(a, ARR_EV_WARN, "spare %s is missing; dropped from the spare list", u);
			a->state_dirty = 1;
			continue;
		}
		take(&a->spare[a->nspares++], disks, owned, si, sb->spare_uuid[i]);
	}
	if ((r = arr_alloc_buffers(a)) < 0) {
		bks_fail(e, r, "out of memory");
		goto out;
	}
	/* Success: close the strays (old members, released disks), keep the rest. */
	for (int i = 0; i < nblank; i++) {
		arr_event(a, ARR_EV_WARN, "disk %s carries no bkstor label (a disk a replace "
		          "released, or a new one?); set aside, not part of the array",
		          disk_path(blank[i]));
		disk_close(blank[i]);
	}
	for (int i = 0; i < nd; i++) {
		if (owned[i])
			continue;
		arr_event(a, ARR_EV_WARN, "disk %s is not in the array's current state (an old "
		          "member?); left alone", disk_path(disks[i]));
		disk_close(disks[i]);
	}
	if (!cfg->no_auto_spare)
		arr_claim_spares(a);
	*out = a;
	a = NULL;
	r = 0;
out:
	if (a)
		arr_free(a, 0); /* refused: every disk goes back to the caller untouched */
	free(labels);
	free(refs);
	free(sb);
	return r;
}
