/* storage/array.c: array life cycle, membership, commits and status.
 * Reads and writes are in array_io.c, import in array_import.c, rebuild/replace/scrub
 * in array_bg.c. */
#include <config.h>

#include "storage/array_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void arr_config_defaults(arr_config *c)
{
	memset(c, 0, sizeof(*c));
	c->strip_size = 256u << 10;
	c->name = "bkstor";
	c->io_err_limit = 10;
	c->cksum_err_limit = 10;
	c->err_window_s = 600;
	c->io_timeout_ms = 10000;
	c->bg_min_bps = 50ull << 20;  /* a real floor: 20 TB in under 5 days */
	c->bg_max_bps = 0;            /* unlimited when the foreground is idle */
	c->fg_idle_ms = 200;
}

void arr_event(arr *a, int level, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	if (!a->ev_fn)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	a->ev_fn(a->ev_ctx, level, msg);
}

const char *adisk_label(const adisk *ad, char *buf, size_t cap)
{
	if (ad->d) {
		snprintf(buf, cap, "%s", disk_path(ad->d));
	} else {
		char u[BKS_UUID_STRLEN];
		bks_uuid_fmt(ad->uuid, u);
		snprintf(buf, cap, "uuid %s", u);
	}
	return buf;
}

void adisk_close(adisk *ad)
{
	disk_close(ad->d);
	memset(ad, 0, sizeof(*ad));
}

int arr_alloc_buffers(arr *a)
{
	size_t strips = (size_t)a->k + 2;
	int r = raid_codec_new(a->k, a->strip, &a->codec);
	if (r < 0)
		return r;
	a->rowbuf = bks_alloc_aligned(DISK_ALIGN, strips * a->strip * ARR_BATCH_ROWS);
	a->rowbuf2 = bks_alloc_aligned(DISK_ALIGN, strips * a->strip);
	a->bounce = bks_alloc_aligned(DISK_ALIGN, a->strip + DISK_ALIGN);
	a->sbbuf = bks_alloc_aligned(DISK_ALIGN, SB_SLOT_SIZE);
	if (!a->rowbuf || !a->rowbuf2 || !a->bounce || !a->sbbuf)
		return -ENOMEM;
	return 0;
}

/* Free the array; with close_disks 0 the disk handles stay the caller's (a create
 * or import that failed hands them back untouched). */
void arr_free(arr *a, int close_disks)
{
	for (int s = 0; s < ARR_MAX_DISKS; s++) {
		if (!close_disks)
			a->slot[s].cur.d = a->slot[s].inc.d = NULL;
		adisk_close(&a->slot[s].cur);
		adisk_close(&a->slot[s].inc);
	}
	for (int i = 0; i < ARR_MAX_SPARES; i++) {
		if (!close_disks)
			a->spare[i].d = NULL;
		adisk_close(&a->spare[i]);
	}
	raid_codec_free(a->codec);
	free(a->rowbuf);
	free(a->rowbuf2);
	free(a->bounce);
	free(a->sbbuf);
	pthread_mutex_destroy(&a->mu);
	free(a);
}

void arr_close(arr *a)
{
	if (!a)
		return;
	pthread_mutex_lock(&a->mu);
	/* Flush so a clean shutdown leaves nothing in disk caches; no commit: rows
	 * written since the last commit are not referenced by anything durable. */
	disk *dk[ARR_MAX_DISKS * 2];
	int err[ARR_MAX_DISKS * 2], nd = 0;
	for (int s = 0; s < a->n; s++) {
		if (a->slot[s].cur.d && a->slot[s].cur_state == SB_ONLINE)
			dk[nd++] = a->slot[s].cur.d;
		if (a->slot[s].inc.d)
			dk[nd++] = a->slot[s].inc.d;
	}
	disk_flush_many(dk, nd, err);
	pthread_mutex_unlock(&a->mu);
	arr_free(a, 1);
}

int arr_width(const arr *a) { return a->n; }
int arr_data_strips(const arr *a) { return a->k; }
uint32_t arr_strip_size(const arr *a) { return a->strip; }
size_t arr_row_bytes(const arr *a) { return (size_t)a->k * a->strip; }
uint64_t arr_rows(const arr *a) { return a->rows; }
uint64_t arr_seq(const arr *a) { return a->seq; }

size_t arr_root(arr *a, void *buf, size_t cap)
{
	pthread_mutex_lock(&a->mu);
	size_t len = a->root_len;
	memcpy(buf, a->root, BKS_MIN(cap, len));
	pthread_mutex_unlock(&a->mu);
	return len;
}

void arr_set_live_fn(arr *a, arr_live_fn fn, void *ctx)
{
	pthread_mutex_lock(&a->mu);
	a->live_fn = fn;
	a->live_ctx = ctx;
	pthread_mutex_unlock(&a->mu);
}

void arr_set_pacing(arr *a, uint64_t bg_min_bps, uint64_t bg_max_bps, uint32_t fg_idle_ms)
{
	pthread_mutex_lock(&a->mu);
	a->cfg.bg_min_bps = bg_min_bps;
	a->cfg.bg_max_bps = bg_max_bps;
	a->cfg.fg_idle_ms = fg_idle_ms;
	/* What the old rate charged is forgotten: the next step starts a fresh budget
	 * (pace() restarts from now when bg_paced_ns is 0). */
	a->bg_tokens_ns = a->bg_paced_ns = 0;
	__atomic_add_fetch(&a->pace_gen, 1, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&a->mu);
}

void arr_set_scrub_verify(arr *a, arr_verify_fn fn, void *ctx)
{
	pthread_mutex_lock(&a->mu);
	a->scrub_verify = fn;
	a->scrub_verify_ctx = ctx;
	pthread_mutex_unlock(&a->mu);
}

void arr_set_bad_row_fn(arr *a, arr_bad_row_fn fn, void *ctx)
{
	pthread_mutex_lock(&a->mu);
	a->bad_row_fn = fn;
	a->bad_row_ctx = ctx;
	pthread_mutex_unlock(&a->mu);
}

void arr_set_event_fn(arr *a, arr_event_fn fn, void *ctx)
{
	pthread_mutex_lock(&a->mu);
	a->ev_fn = fn;
	a->ev_ctx = ctx;
	pthread_mutex_unlock(&a->mu);
}

int arr_row_live(arr *a, uint64_t row)
{
	if (row >= a->hwm)
		return 0;
	return a->live_fn ? a->live_fn(a->live_ctx, row) : 1;
}

disk *arr_reader(arr *a, int s, uint64_t row)
{
	aslot *sl = &a->slot[s];
	if (sl->cur.d && sl->cur_state == SB_ONLINE)
		return sl->cur.d;
	if (sl->inc.d && row < sl->cursor)
		return sl->inc.d;
	return NULL;
}

int arr_missing_for_row(arr *a, uint64_t row)
{
	int m = 0;
	for (int s = 0; s < a->n; s++)
		if (!arr_reader(a, s, row))
			m++;
	return m;
}

int arr_writable_slots(arr *a)
{
	int w = 0;
	for (int s = 0; s < a->n; s++)
		if ((a->slot[s].cur.d && a->slot[s].cur_state == SB_ONLINE) || a->slot[s].inc.d)
			w++;
	return w;
}

int arr_health_locked(arr *a)
{
	int degraded = 0, incoming = 0;
	for (int s = 0; s < a->n; s++) {
		aslot *sl = &a->slot[s];
		if (!(sl->cur.d && sl->cur_state == SB_ONLINE)) {
			degraded++;
			if (sl->inc.d)
				incoming++;
		}
	}
	if (degraded > 2 || a->fatal)
		return ARR_FAILED;
	if (degraded == 0)
		return ARR_OK;
	return incoming ? ARR_REBUILDING : ARR_DEGRADED;
}

const char *arr_health_name(int h)
{
	static const char *const names[] = {"ONLINE", "DEGRADED", "REBUILDING", "FAILED"};
	return h >= 0 && h <= ARR_FAILED ? names[h] : "?";
}

/* Is the disk with this UUID in use by this process (a member, incoming disk or spare
 * whose handle is open)? A member that faulted and is not present may come back as a
 * new disk (it gets a new UUID). */
int arr_is_present(const arr *a, const uint8_t uuid[BKS_UUID_LEN])
{
	for (int s = 0; s < a->n; s++) {
		if (a->slot[s].cur.d && !memcmp(a->slot[s].cur.uuid, uuid, BKS_UUID_LEN))
			return 1;
		if (a->slot[s].inc.d && !memcmp(a->slot[s].inc.uuid, uuid, BKS_UUID_LEN))
			return 1;
	}
	for (int i = 0; i < a->nspares; i++)
		if (a->spare[i].d && !memcmp(a->spare[i].uuid, uuid, BKS_UUID_LEN))
			return 1;
	return 0;
}

/* Count errors in a ring of timestamps within the window. */
static uint32_t recent(const uint64_t *ring, uint64_t now, uint64_t window_ns)
{
	uint32_t c = 0;
	for (int i = 0; i < ERR_RING; i++)
		if (ring[i] && now - ring[i] < window_ns)
			c++;
	return c;
}

/* Take a disk out of service. Member: FAULTED (its data is rebuilt onto a spare);
 * incoming: dropped (the rebuild restarts on another spare); spare: removed. */
void arr_fault_disk(arr *a, adisk *ad, const char *why)
{
	char nm[300];
	adisk_label(ad, nm, sizeof(nm));
	for (int s = 0; s < a->n; s++) {
		aslot *sl = &a->slot[s];
		if (ad == &sl->cur) {
			if (sl->cur_state != SB_ONLINE)
				return;
			sl->cur_state = SB_FAULTED;
			sl->flags &= ~SBM_REPLACING; /* a replace becomes a rebuild */
			arr_event(a, ARR_EV_ERR, "disk %s (slot %d) FAULTED: %s", nm, s, why);
			goto changed;
		}
		if (ad == &sl->inc) {
			arr_event(a, ARR_EV_ERR, "disk %s (incoming for slot %d) FAULTED: %s; "
			          "rebuild of the slot stops", nm, s, why);
			adisk_close(&sl->inc);
			sl->cursor = 0;
			sl->flags = 0;
			goto changed;
		}
	}
	for (int i = 0; i < a->nspares; i++) {
		if (ad == &a->spare[i]) {
			arr_event(a, ARR_EV_ERR, "spare %s FAULTED and removed: %s", nm, why);
			adisk_close(&a->spare[i]);
			memmove(&a->spare[i], &a->spare[i + 1],
			        sizeof(adisk) * (size_t)(a->nspares - i - 1));
			memset(&a->spare[--a->nspares], 0, sizeof(adisk));
			goto changed;
		}
	}
	return;
changed:
	a->state_dirty = 1;
	arr_claim_spares(a);
}

int arr_note_error(arr *a, adisk *ad, int err, int is_write, int is_cksum)
{
	uint64_t now = bks_now_ns();
	uint64_t win = (uint64_t)a->cfg.err_window_s * 1000000000ull;
	char why[128];

	if (is_cksum) {
		ad->ck_err++;
		ad->ck_ns[ad->ck_pos++ % ERR_RING] = now;
		if (recent(ad->ck_ns, now, win) >= a->cfg.cksum_err_limit) {
			snprintf(why, sizeof(why), "%u checksum errors in %u s",
			         a->cfg.cksum_err_limit, a->cfg.err_window_s);
			arr_fault_disk(a, ad, why);
			return 1;
		}
		return 0;
	}
	if (is_write)
		ad->wr_err++;
	else
		ad->rd_err++;
	ad->err_ns[ad->err_pos++ % ERR_RING] = now;
	/* A disk that is gone, or that lost a write (its strip is now missing), cannot
	 * serve reads any more: fault it at once. Read errors count toward the limit. */
	if (err == -ENXIO || err == -ENODEV) {
		arr_fault_disk(a, ad, "disk disappeared");
		return 1;
	}
	if (is_write) {
		snprintf(why, sizeof(why), "write error (%s)", strerror(-err));
		arr_fault_disk(a, ad, why);
		return 1;
	}
	if (recent(ad->err_ns, now, win) >= a->cfg.io_err_limit) {
		snprintf(why, sizeof(why), "%u I/O errors in %u s", a->cfg.io_err_limit,
		         a->cfg.err_window_s);
		arr_fault_disk(a, ad, why);
		return 1;
	}
	return 0;
}

int arr_write_labels(arr *a, disk *d, const uint8_t uuid[BKS_UUID_LEN], int role,
                     int slotno, bks_err *e)
{
	lbl_disk l = {0};
	uint8_t *buf = bks_alloc_aligned(DISK_ALIGN, LBL_SIZE);
	int r;

	if (!buf)
		return bks_fail(e, -ENOMEM, "out of memory");
	memcpy(l.array_uuid, a->uuid, BKS_UUID_LEN);
	memcpy(l.disk_uuid, uuid, BKS_UUID_LEN);
	l.role = (uint32_t)role;
	l.slot = role == LBL_ROLE_MEMBER ? (uint32_t)slotno : 0;
	l.ndisks = (uint32_t)a->n;
	l.strip_size = a->strip;
	l.rows = a->rows;
	l.disk_size = disk_get_info(d)->size;
	l.created_ns = a->created_ns;
	l.label_gen = bks_wall_ns();
	snprintf(l.name, sizeof(l.name), "%s", a->name);
	lbl_encode(&l, buf);
	/* Two copies, each flushed before the other is touched: a crash leaves at least
	 * one valid label (old or new). */
	r = disk_pwrite(d, buf, LBL_SIZE, LBL_OFF0);
	if (!r)
		r = disk_flush(d);
	if (!r)
		r = disk_pwrite(d, buf, LBL_SIZE, LBL_OFF1);
	if (!r)
		r = disk_flush(d);
	free(buf);
	if (r)
		return bks_fail(e, r, "disk %s: writing label: %s", disk_path(d), strerror(-r));
	return 0;
}

int arr_disk_has_label(disk *d)
{
	lbl_disk l;
	return arr_read_label(d, &l, NULL) == 0;
}

int arr_read_label(disk *d, lbl_disk *out, bks_err *e)
{
	uint8_t *buf = bks_alloc_aligned(DISK_ALIGN, LBL_SIZE * 2);
	lbl_disk l1;
	int r0, r1;

	if (!buf)
		return bks_fail(e, -ENOMEM, "out of memory");
	if (disk_get_info(d)->size < ARR_DATA_OFF) {
		char sz[32];
		free(buf);
		return bks_fail(e, -EINVAL, "only %s, too small to hold bkstor labels "
		                "(truncated?)", bks_fmt_bytes(disk_get_info(d)->size, sz, sizeof(sz)));
	}
	r0 = disk_pread(d, buf, LBL_SIZE, LBL_OFF0);
	if (!r0)
		r0 = lbl_decode(buf, LBL_SIZE, out, e);
	bks_err e1 = {0};
	r1 = disk_pread(d, buf + LBL_SIZE, LBL_SIZE, LBL_OFF1);
	if (!r1)
		r1 = lbl_decode(buf + LBL_SIZE, LBL_SIZE, &l1, &e1);
	free(buf);
	if (r1 == 0 && (r0 != 0 || l1.label_gen > out->label_gen)) {
		*out = l1;
		bks_err_clear(e);
		return 0;
	}
	if (r0 == 0)
		bks_err_clear(e);
	/* -ENOENT means blank (no label magic in either copy, import sets such a disk
	 * aside): a copy that has the magic but fails its checks is the error. */
	if (r0 == -ENOENT && r1 != -ENOENT && r1 != 0) {
		if (e)
			*e = e1;
		return r1;
	}
	return r0;
}

int arr_check_new_disk(arr *a, disk *d, uint64_t need, int force, bks_err *e)
{
	const disk_info *in = disk_get_info(d);
	char have_s[32], need_s[32];
	lbl_disk l;
	uint8_t *pat = NULL, *back = NULL;
	int r;

	if (in->size < need)
		return bks_fail(e, -ENOSPC, "disk %s: %s, smaller than the %s this array "
		                "needs per disk", disk_path(d),
		                bks_fmt_bytes(in->size, have_s, sizeof(have_s)),
		                bks_fmt_bytes(need, need_s, sizeof(need_s)));
	if (arr_read_label(d, &l, NULL) == 0) {
		char u[BKS_UUID_STRLEN];
		bks_uuid_fmt(l.array_uuid, u);
		if (!memcmp(l.array_uuid, a->uuid, BKS_UUID_LEN) && arr_is_present(a, l.disk_uuid))
			return bks_fail(e, -EEXIST, "disk %s: already in this array", disk_path(d));
		if (memcmp(l.array_uuid, a->uuid, BKS_UUID_LEN) && !force)
			return bks_fail(e, -EBUSY, "disk %s: belongs to array '%s' (%s); refusing "
			                "to overwrite it (use --force if that array is gone)",
			                disk_path(d), l.name, u);
	}
	/* Write/read-back test of the label area: a disk that cannot keep 1 MiB of
	 * known bytes (wrong firmware, a dying drive) must not join. */
	pat = bks_alloc_aligned(DISK_ALIGN, ARR_DATA_OFF);
	back = bks_alloc_aligned(DISK_ALIGN, ARR_DATA_OFF);
	if (!pat || !back) {
		r = bks_fail(e, -ENOMEM, "out of memory");
		goto out;
	}
	bks_rng rng;
	bks_rng_seed(&rng, bks_now_ns());
	bks_rng_fill(&rng, pat, ARR_DATA_OFF);
	r = disk_pwrite(d, pat, ARR_DATA_OFF, 0);
	if (!r)
		r = disk_flush(d);
	if (!r)
		r = disk_pread(d, back, ARR_DATA_OFF, 0);
	if (r) {
		r = bks_fail(e, r, "disk %s: write/read test of the label area failed: %s",
		             disk_path(d), strerror(-r));
		goto out;
	}
	if (memcmp(pat, back, ARR_DATA_OFF) != 0) {
		r = bks_fail(e, -EIO, "disk %s: read back different bytes than written in the "
		             "label area; refusing a disk that cannot keep data", disk_path(d));
		goto out;
	}
	/* Leave the area blank: no stale superblock slot may survive. */
	memset(pat, 0, ARR_DATA_OFF);
	r = disk_pwrite(d, pat, ARR_DATA_OFF, 0);
	if (!r)
		r = disk_flush(d);
	if (r)
		r = bks_fail(e, r, "disk %s: clearing the label area: %s", disk_path(d),
		             strerror(-r));
out:
	free(pat);
	free(back);
	return r;
}

/* Put an AVAIL spare into every slot that has lost its disk and has none coming. */
void arr_claim_spares(arr *a)
{
	if (a->cfg.no_auto_spare)
		return;
	for (int s = 0; s < a->n; s++) {
		aslot *sl = &a->slot[s];
		while ((sl->cur_state == SB_FAULTED || sl->cur_state == SB_REMOVED) && !sl->inc.d &&
		       a->nspares > 0) {
			adisk sp = a->spare[0];
			char nm[300];
			memmove(&a->spare[0], &a->spare[1], sizeof(adisk) * (size_t)(a->nspares - 1));
			memset(&a->spare[--a->nspares], 0, sizeof(adisk));
			a->state_dirty = 1;
			if (!sp.d) {
				arr_event(a, ARR_EV_WARN, "spare %s is not present; skipped",
				          adisk_label(&sp, nm, sizeof(nm)));
				continue;
			}
			bks_err e = {0};
			if (arr_write_labels(a, sp.d, sp.uuid, LBL_ROLE_MEMBER, s, &e) < 0) {
				arr_event(a, ARR_EV_ERR, "spare %s not usable: %s",
				          adisk_label(&sp, nm, sizeof(nm)), e.msg);
				adisk_close(&sp);
				continue;
			}
			sl->inc = sp;
			sl->cursor = 0;
			sl->flags = 0;
			arr_event(a, ARR_EV_WARN, "spare %s claimed for slot %d; rebuilding",
			          adisk_label(&sl->inc, nm, sizeof(nm)), s);
		}
	}
}

/* Every disk that takes metadata writes: online members, incoming disks, spares. */
int arr_meta_disks(arr *a, adisk **out)
{
	int n = 0;
	for (int s = 0; s < a->n; s++) {
		if (a->slot[s].cur.d && a->slot[s].cur_state == SB_ONLINE)
			out[n++] = &a->slot[s].cur;
		if (a->slot[s].inc.d)
			out[n++] = &a->slot[s].inc;
	}
	for (int i = 0; i < a->nspares; i++)
		if (a->spare[i].d)
			out[n++] = &a->spare[i];
	return n;
}

static void build_super(arr *a, sb_super *sb, uint64_t seq)
{
	memset(sb, 0, sizeof(*sb));
	memcpy(sb->array_uuid, a->uuid, BKS_UUID_LEN);
	sb->seq = seq;
	sb->time_ns = bks_wall_ns();
	sb->ndisks = (uint32_t)a->n;
	sb->strip_size = a->strip;
	sb->rows = a->rows;
	sb->hwm = a->hwm;
	sb->nspares = (uint32_t)a->nspares;
	sb->root_len = a->root_len;
	memcpy(sb->root, a->root, a->root_len);
	sb->scrub = a->scrub;
	for (int s = 0; s < a->n; s++) {
		aslot *sl = &a->slot[s];
		sb_member *m = &sb->member[s];
		memcpy(m->cur_uuid, sl->cur.uuid, BKS_UUID_LEN);
		m->cur_state = bks_uuid_is_zero(sl->cur.uuid) ? SB_REMOVED : sl->cur_state;
		memcpy(m->incoming_uuid, sl->inc.uuid, BKS_UUID_LEN);
		m->flags = sl->flags;
		m->cursor = sl->inc.d ? sl->cursor : 0;
	}
	for (int i = 0; i < a->nspares; i++)
		memcpy(sb->spare_uuid[i], a->spare[i].uuid, BKS_UUID_LEN);
}

adisk *arr_find_adisk(arr *a, const disk *d)
{
	if (!d)
		return NULL;
	for (int s = 0; s < a->n; s++) {
		if (a->slot[s].cur.d == d)
			return &a->slot[s].cur;
		if (a->slot[s].inc.d == d)
			return &a->slot[s].inc;
	}
	for (int i = 0; i < a->nspares; i++)
		if (a->spare[i].d == d)
			return &a->spare[i];
	return NULL;
}

void arr_check_latency(arr *a, const disk_io *ios, int n)
{
	uint64_t lim = (uint64_t)a->cfg.io_timeout_ms * 1000000ull;
	uint64_t win = (uint64_t)a->cfg.err_window_s * 1000000000ull;
	if (!lim)
		return;
	for (int i = 0; i < n; i++) {
		if (ios[i].result || ios[i].done_ns - ios[i].start_ns <= lim)
			continue;
		adisk *ad = arr_find_adisk(a, ios[i].d);
		if (!ad)
			continue;
		char nm[300], why[128];
		uint64_t now = bks_now_ns();
		ad->slow++;
		ad->err_ns[ad->err_pos++ % ERR_RING] = now;
		arr_event(a, ARR_EV_WARN, "disk %s: slow I/O (%llu ms at offset %llu)",
		          adisk_label(ad, nm, sizeof(nm)),
		          (unsigned long long)((ios[i].done_ns - ios[i].start_ns) / 1000000),
		          (unsigned long long)ios[i].off);
		if (recent(ad->err_ns, now, win) >= a->cfg.io_err_limit) {
			snprintf(why, sizeof(why), "%u slow or failed I/Os in %u s",
			         a->cfg.io_err_limit, a->cfg.err_window_s);
			arr_fault_disk(a, ad, why);
		}
	}
}

void arr_note_errors(arr *a, disk *const *dk, const int *err, int n)
{
	for (int i = 0; i < n; i++) {
		adisk *ad = err[i] ? arr_find_adisk(a, dk[i]) : NULL;
		if (ad)
			arr_note_error(a, ad, err[i], 1, 0);
	}
}

/* Flush all; write superblock slot seq % SB_SLOTS on every metadata disk; flush all.
 * Crash story: data rows are durable before any slot names them (first flush: every
 * disk with a write not yet flushed, in parallel, disk.c); the
 * slot of the previous commit is never overwritten (ring); a torn or partial set of
 * new slots loses the quorum vote at import and the previous commit wins. A disk
 * that fails here is faulted and the commit is retried without it, so the new
 * superblock records that it holds stale metadata. */
int arr_commit_locked(arr *a, bks_err *e)
{
	adisk *md[ARR_MAX_DISKS * 2 + ARR_MAX_SPARES];
	disk_io ios[ARR_MAX_DISKS * 2 + ARR_MAX_SPARES];
	sb_super sb;

	if (a->fatal)
		return bks_fail(e, -EROFS, "array %s: metadata writes failed earlier; the "
		                "array is read-only until it is imported again", a->name);
	for (int attempt = 0; attempt < 4; attempt++) {
		int n = arr_meta_disks(a, md), bad = 0;
		disk *dk[ARR_MAX_DISKS * 2 + ARR_MAX_SPARES];
		int err[ARR_MAX_DISKS * 2 + ARR_MAX_SPARES];
		/* Faulting a disk reshuffles the adisk tables, so errors are noted only
		 * after all I/O of a phase, by disk handle. */
		for (int i = 0; i < n; i++)
			dk[i] = md[i]->d;
		/* In parallel, and only where a write is not yet durable (disk.c). */
		bad = disk_flush_many(dk, n, err) != 0;
		if (bad) {
			arr_note_errors(a, dk, err, n);
			continue; /* membership changed: rebuild the list */
		}
		if (arr_writable_slots(a) < a->k)
			break;
		uint64_t seq = a->next_seq;
		build_super(a, &sb, seq);
		sb_encode(&sb, a->sbbuf);
		for (int i = 0; i < n; i++)
			ios[i] = (disk_io){.d = dk[i], .op = DISK_WRITE, .buf = a->sbbuf,
			                   .len = SB_SLOT_SIZE,
			                   .off = SB_RING_OFF + (seq % SB_SLOTS) * SB_SLOT_SIZE};
		disk_io_run(ios, n);
		a->next_seq++; /* never reuse a number that may be on some disk */
		disk_flush_many(dk, n, err);
		for (int i = 0; i < n; i++) {
			if (ios[i].result)
				err[i] = ios[i].result;
			bad |= err[i] != 0;
		}
		if (bad) {
			arr_note_errors(a, dk, err, n);
			continue;
		}
		a->seq = seq;
		a->hwm_durable = sb.hwm;
		a->state_dirty = 0;
		return 0;
	}
	a->fatal = 1;
	arr_event(a, ARR_EV_ERR, "array %s: cannot write metadata to enough disks; "
	          "refusing further writes", a->name);
	return bks_fail(e, -EIO, "array %s: commit failed: fewer than %d disks took the "
	                "superblock", a->name, a->k);
}

int arr_commit(arr *a, const void *root, size_t root_len, bks_err *e)
{
	int r;
	if (root_len > ARR_ROOT_MAX)
		return bks_fail(e, -EINVAL, "root of %zu bytes, max %d", root_len, ARR_ROOT_MAX);
	pthread_mutex_lock(&a->mu);
	uint8_t old[ARR_ROOT_MAX];
	uint32_t old_len = a->root_len;
	memcpy(old, a->root, old_len);
	if (root_len)
		memcpy(a->root, root, root_len);
	a->root_len = (uint32_t)root_len;
	r = arr_commit_locked(a, e);
	if (r) {
		memcpy(a->root, old, old_len);
		a->root_len = old_len;
	}
	pthread_mutex_unlock(&a->mu);
	return r;
}

static int same_disk(disk *x, disk *y)
{
	const disk_info *a = disk_get_info(x), *b = disk_get_info(y);
	return a->dev == b->dev && a->ino == b->ino;
}

int arr_create(const arr_config *cfg, disk **members, int nm, disk **spares, int ns,
               int force, arr **out, bks_err *e)
{
	arr *a;
	int r;
	disk *all[ARR_MAX_DISKS + ARR_MAX_SPARES];

	*out = NULL;
	if (nm < ARR_MIN_DISKS || nm > ARR_MAX_DISKS)
		return bks_fail(e, -EINVAL, "an array needs %d to %d disks, %d given",
		                ARR_MIN_DISKS, ARR_MAX_DISKS, nm);
	if (ns < 0 || ns > ARR_MAX_SPARES)
		return bks_fail(e, -EINVAL, "at most %d spares, %d given", ARR_MAX_SPARES, ns);
	if (cfg->strip_size < (64u << 10) || cfg->strip_size > (1u << 20) ||
	    (cfg->strip_size & (cfg->strip_size - 1)))
		return bks_fail(e, -EINVAL, "strip size %u: must be a power of two from 64 KiB "
		                "to 1 MiB", cfg->strip_size);
	for (int i = 0; i < nm + ns; i++) {
		all[i] = i < nm ? members[i] : spares[i - nm];
		for (int j = 0; j < i; j++)
			if (same_disk(all[i], all[j]))
				return bks_fail(e, -EINVAL, "disk %s is given twice (also as %s)",
				                disk_path(all[i]), disk_path(all[j]));
	}
	a = calloc(1, sizeof(*a));
	if (!a)
		return bks_fail(e, -ENOMEM, "out of memory");
	pthread_mutex_init(&a->mu, NULL);
	a->cfg = *cfg;
	a->ev_fn = cfg->ev_fn;
	a->ev_ctx = cfg->ev_ctx;
	snprintf(a->name, sizeof(a->name), "%s", cfg->name ? cfg->name : "bkstor");
	a->n = nm;
	a->k = nm - 2;
	a->strip = cfg->strip_size;
	a->created_ns = bks_wall_ns();
	if ((r = bks_random(a->uuid, BKS_UUID_LEN)) < 0) {
		bks_fail(e, r, "random: %s", strerror(-r));
		goto fail;
	}
	/* Members are as large as the smallest disk. */
	uint64_t minsz = UINT64_MAX;
	for (int i = 0; i < nm; i++)
		minsz = BKS_MIN(minsz, disk_get_info(members[i])->size);
	a->rows = minsz > ARR_DATA_OFF ? (minsz - ARR_DATA_OFF) / a->strip : 0;
	if (a->rows < 16) {
		r = bks_fail(e, -ENOSPC, "disks too small: the smallest member has room for "
		             "%llu rows of %u KiB, need at least 16",
		             (unsigned long long)a->rows, a->strip >> 10);
		goto fail;
	}
	uint64_t need = ARR_DATA_OFF + a->rows * a->strip;
	/* Non-destructive checks first (size, foreign labels) on every disk, then the
	 * write tests: a refused disk in the list leaves all other disks untouched. */
	for (int i = 0; i < nm + ns; i++) {
		lbl_disk l;
		if (disk_get_info(all[i])->size < need) {
			r = arr_check_new_disk(a, all[i], need, force, e);
			goto fail;
		}
		if (!force && arr_read_label(all[i], &l, NULL) == 0) {
			r = arr_check_new_disk(a, all[i], need, force, e);
			goto fail;
		}
	}
	for (int i = 0; i < nm + ns; i++)
		if ((r = arr_check_new_disk(a, all[i], need, 1, e)) < 0)
			goto fail;
	if ((r = arr_alloc_buffers(a)) < 0) {
		bks_fail(e, r, "out of memory");
		goto fail;
	}
	for (int i = 0; i < nm + ns; i++) {
		adisk *ad = i < nm ? &a->slot[i].cur : &a->spare[i - nm];
		if ((r = bks_random(ad->uuid, BKS_UUID_LEN)) < 0)
			goto fail;
		r = arr_write_labels(a, all[i], ad->uuid, i < nm ? LBL_ROLE_MEMBER : LBL_ROLE_SPARE,
		                     i, e);
		if (r < 0)
			goto fail;
	}
	/* From here the array owns the disks. */
	for (int i = 0; i < nm; i++) {
		a->slot[i].cur.d = members[i];
		a->slot[i].cur_state = SB_ONLINE;
	}
	for (int i = 0; i < ns; i++)
		a->spare[i].d = spares[i];
	a->nspares = ns;
	a->next_seq = 1;
	if ((r = arr_commit_locked(a, e)) < 0) {
		/* Give the disks back to the caller. */
		for (int i = 0; i < nm; i++)
			a->slot[i].cur.d = NULL;
		for (int i = 0; i < ns; i++)
			a->spare[i].d = NULL;
		goto fail;
	}
	arr_event(a, ARR_EV_INFO, "array %s created: %d disks (%d+2), %d spares, strip %u KiB",
	          a->name, nm, a->k, ns, a->strip >> 10);
	*out = a;
	return 0;
fail:
	arr_free(a, 0);
	return r;
}
