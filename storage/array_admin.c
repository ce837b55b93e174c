/* storage/array_admin.c: what an admin does to an array (fail, add-spare, remove,
 * replace, scrub control) and what they see (status). Every verb that changes
 * membership commits before it returns, so the change survives a crash. */
#include <config.h>

#include "storage/array_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Find a disk by path, by UUID string, or "slotN" (the slot's current disk). */
static adisk *find_named(arr *a, const char *name, int *slot_out)
{
	char u[BKS_UUID_STRLEN];
	*slot_out = -1;
	if (!strncmp(name, "slot", 4) && name[4]) {
		char *end;
		long s = strtol(name + 4, &end, 10);
		if (!*end && s >= 0 && s < a->n) {
			*slot_out = (int)s;
			return &a->slot[s].cur;
		}
	}
	for (int s = 0; s < a->n; s++) {
		adisk *c[2] = {&a->slot[s].cur, &a->slot[s].inc};
		for (int j = 0; j < 2; j++) {
			if (bks_uuid_is_zero(c[j]->uuid))
				continue;
			bks_uuid_fmt(c[j]->uuid, u);
			if (!strcmp(u, name) || (c[j]->d && !strcmp(disk_path(c[j]->d), name))) {
				*slot_out = s;
				return c[j];
			}
		}
	}
	for (int i = 0; i < a->nspares; i++) {
		bks_uuid_fmt(a->spare[i].uuid, u);
		if (!strcmp(u, name) || (a->spare[i].d && !strcmp(disk_path(a->spare[i].d), name)))
			return &a->spare[i];
	}
	return NULL;
}

static int unavailable_slots(arr *a);

static uint64_t member_bytes(const arr *a)
{
	return ARR_DATA_OFF + a->rows * a->strip;
}

int arr_fail(arr *a, const char *name, bks_err *e)
{
	int s, r = 0;
	pthread_mutex_lock(&a->mu);
	adisk *ad = find_named(a, name, &s);
	if (!ad) {
		r = bks_fail(e, -ENOENT, "no disk '%s' in array %s", name, a->name);
		goto out;
	}
	if (s >= 0 && ad == &a->slot[s].cur) {
		if (a->slot[s].cur_state != SB_ONLINE) {
			r = bks_fail(e, -EALREADY, "disk %s is already %s", name,
			             sb_state_name(a->slot[s].cur_state));
			goto out;
		}
		int degraded = unavailable_slots(a);
		if (degraded >= 2) {
			r = bks_fail(e, -EBUSY, "refusing to fail %s: %d slots are already "
			             "unavailable and a third would lose data", name, degraded);
			goto out;
		}
	}
	arr_fault_disk(a, ad, "failed by the administrator");
	r = arr_commit_locked(a, e);
out:
	pthread_mutex_unlock(&a->mu);
	return r;
}

/* The member slot whose current disk is name (path, UUID or slotN). */
static int find_member(arr *a, const char *name, int *slot, bks_err *e)
{
	adisk *ad = find_named(a, name, slot);
	if (!ad || *slot < 0 || ad != &a->slot[*slot].cur)
		return bks_fail(e, -ENOENT, "no member disk '%s' in array %s (give a path, a "
		                "UUID or slotN)", name, a->name);
	return 0;
}

static int unavailable_slots(arr *a)
{
	int n = 0;
	for (int i = 0; i < a->n; i++)
		n += !(a->slot[i].cur.d && a->slot[i].cur_state == SB_ONLINE);
	return n;
}

int arr_offline(arr *a, const char *name, bks_err *e)
{
	int s, r;
	pthread_mutex_lock(&a->mu);
	if ((r = find_member(a, name, &s, e)) < 0)
		goto out;
	if (a->slot[s].cur_state != SB_ONLINE) {
		r = bks_fail(e, -EALREADY, "disk %s is %s", name,
		             sb_state_name(a->slot[s].cur_state));
		goto out;
	}
	if (unavailable_slots(a) >= 2) {
		r = bks_fail(e, -EBUSY, "refusing to take %s offline: two slots are already "
		             "unavailable", name);
		goto out;
	}
	a->slot[s].cur_state = SB_OFFLINE;
	arr_event(a, ARR_EV_WARN, "slot %d: %s taken OFFLINE by the administrator", s, name);
	a->state_dirty = 1;
	r = arr_commit_locked(a, e);
out:
	pthread_mutex_unlock(&a->mu);
	return r;
}

int arr_online(arr *a, const char *name, bks_err *e)
{
	int s, r;
	pthread_mutex_lock(&a->mu);
	if ((r = find_member(a, name, &s, e)) < 0)
		goto out;
	aslot *sl = &a->slot[s];
	if (sl->cur_state != SB_OFFLINE || !sl->cur.d) {
		r = bks_fail(e, -EINVAL, "disk %s is %s, not OFFLINE and present", name,
		             sb_state_name(sl->cur_state));
		goto out;
	}
	if (sl->inc.d) {
		r = bks_fail(e, -EBUSY, "slot %d already has a disk being rebuilt", s);
		goto out;
	}
	/* The disk comes back as the slot's incoming disk: its live rows are rebuilt. */
	sl->inc = sl->cur;
	memset(&sl->cur, 0, sizeof(sl->cur));
	sl->cur_state = SB_REMOVED;
	sl->cursor = 0;
	sl->flags = 0;
	arr_event(a, ARR_EV_INFO, "slot %d: %s back ONLINE; rebuilding rows written while "
	          "it was away", s, name);
	a->state_dirty = 1;
	r = arr_commit_locked(a, e);
out:
	pthread_mutex_unlock(&a->mu);
	return r;
}

int arr_add_spare(arr *a, disk *d, int force, bks_err *e)
{
	int r;
	uint8_t uuid[BKS_UUID_LEN];

	pthread_mutex_lock(&a->mu);
	if (a->nspares >= ARR_MAX_SPARES) {
		r = bks_fail(e, -ENOSPC, "array %s already has %d spares (the maximum)", a->name,
		             ARR_MAX_SPARES);
		goto out;
	}
	for (int s = 0; s < a->n; s++)
		for (int j = 0; j < 2; j++) {
			adisk *c = j ? &a->slot[s].inc : &a->slot[s].cur;
			if (c->d && disk_get_info(c->d)->dev == disk_get_info(d)->dev &&
			    disk_get_info(c->d)->ino == disk_get_info(d)->ino) {
				r = bks_fail(e, -EEXIST, "disk %s: already in this array", disk_path(d));
				goto out;
			}
		}
	if ((r = arr_check_new_disk(a, d, member_bytes(a), force, e)) < 0)
		goto out;
	if ((r = bks_random(uuid, sizeof(uuid))) < 0 ||
	    (r = arr_write_labels(a, d, uuid, LBL_ROLE_SPARE, 0, e)) < 0)
		goto out;
	a->spare[a->nspares].d = d;
	memcpy(a->spare[a->nspares].uuid, uuid, BKS_UUID_LEN);
	a->nspares++;
	arr_event(a, ARR_EV_INFO, "spare %s added", disk_path(d));
	arr_claim_spares(a);
	r = arr_commit_locked(a, e);
	if (r < 0) {
		/* The disk is the array's now; it is recorded at the next good commit. */
		r = 0;
	}
out:
	pthread_mutex_unlock(&a->mu);
	return r;
}

int arr_remove(arr *a, const char *name, bks_err *e)
{
	int s, r;
	pthread_mutex_lock(&a->mu);
	adisk *ad = find_named(a, name, &s);
	if (!ad) {
		r = bks_fail(e, -ENOENT, "no disk '%s' in array %s", name, a->name);
		goto out;
	}
	if (s < 0) {
		int i = (int)(ad - a->spare);
		arr_event(a, ARR_EV_INFO, "spare %s removed", name);
		adisk_close(ad);
		memmove(&a->spare[i], &a->spare[i + 1], sizeof(adisk) * (size_t)(a->nspares - i - 1));
		memset(&a->spare[--a->nspares], 0, sizeof(adisk));
	} else if (ad == &a->slot[s].inc) {
		r = bks_fail(e, -EBUSY, "disk %s is being rebuilt into slot %d; fail it instead",
		             name, s);
		goto out;
	} else if (a->slot[s].cur_state == SB_ONLINE) {
		r = bks_fail(e, -EBUSY, "disk %s is an ONLINE member; use replace (or fail it "
		             "first)", name);
		goto out;
	} else {
		arr_event(a, ARR_EV_INFO, "slot %d: %s removed", s, name);
		adisk_close(ad);
		a->slot[s].cur_state = SB_REMOVED;
	}
	a->state_dirty = 1;
	r = arr_commit_locked(a, e);
out:
	pthread_mutex_unlock(&a->mu);
	return r;
}

int arr_replace(arr *a, const char *old_name, disk *nd, int force, bks_err *e)
{
	int s, r;
	uint8_t uuid[BKS_UUID_LEN];

	pthread_mutex_lock(&a->mu);
	if ((r = find_member(a, old_name, &s, e)) < 0)
		goto out;
	aslot *sl = &a->slot[s];
	if (sl->inc.d) {
		char nm[300];
		r = bks_fail(e, -EBUSY, "slot %d is already being rebuilt onto %s; wait for it "
		             "to finish", s, adisk_label(&sl->inc, nm, sizeof(nm)));
		goto out;
	}
	if ((r = arr_check_new_disk(a, nd, member_bytes(a), force, e)) < 0)
		goto out;
	if ((r = bks_random(uuid, sizeof(uuid))) < 0 ||
	    (r = arr_write_labels(a, nd, uuid, LBL_ROLE_MEMBER, s, e)) < 0)
		goto out;
	sl->inc.d = nd;
	memcpy(sl->inc.uuid, uuid, BKS_UUID_LEN);
	sl->cursor = 0;
	/* OLD stays a member (reads and writes) until NEW holds every row. */
	sl->flags = sl->cur.d && sl->cur_state == SB_ONLINE ? SBM_REPLACING : 0;
	arr_event(a, ARR_EV_INFO, "slot %d: %s %s with %s", s,
	          sl->flags ? "replacing" : "rebuilding", old_name, disk_path(nd));
	a->state_dirty = 1;
	if (arr_commit_locked(a, e) < 0)
		r = 0; /* owned by the array now; the next good commit records it */
out:
	pthread_mutex_unlock(&a->mu);
	return r;
}

static int scrub_set(arr *a, int from, int to, bks_err *e)
{
	static const char *const nm[] = {"idle", "running", "paused"};
	int r;
	pthread_mutex_lock(&a->mu);
	if (from < 0 && a->scrub.state == SCRUB_IDLE) {
		r = bks_fail(e, -EALREADY, "no scrub is running");
		goto out;
	}
	if (from >= 0 && (int)a->scrub.state != from) {
		r = bks_fail(e, -EALREADY, "scrub is %s", nm[a->scrub.state]);
		goto out;
	}
	if (to == SCRUB_RUNNING && from == SCRUB_IDLE) {
		uint32_t st = a->scrub.state;
		memset(&a->scrub, 0, sizeof(a->scrub));
		a->scrub.state = st;
		a->scrub.started_ns = bks_wall_ns();
		arr_event(a, ARR_EV_INFO, "scrub started: %llu rows",
		          (unsigned long long)a->hwm);
	}
	if (to == SCRUB_IDLE) {
		a->scrub.finished_ns = bks_wall_ns();
		arr_event(a, ARR_EV_INFO, "scrub stopped at row %llu",
		          (unsigned long long)a->scrub.cursor);
	}
	a->scrub.state = (uint32_t)to;
	r = arr_commit_locked(a, e);
out:
	pthread_mutex_unlock(&a->mu);
	return r;
}

int arr_scrub_start(arr *a, bks_err *e) { return scrub_set(a, SCRUB_IDLE, SCRUB_RUNNING, e); }
int arr_scrub_pause(arr *a, bks_err *e) { return scrub_set(a, SCRUB_RUNNING, SCRUB_PAUSED, e); }
int arr_scrub_resume(arr *a, bks_err *e) { return scrub_set(a, SCRUB_PAUSED, SCRUB_RUNNING, e); }

int arr_scrub_stop(arr *a, bks_err *e)
{
	return scrub_set(a, -1, SCRUB_IDLE, e);
}

static void fill_disk(arr_disk_status *ds, const adisk *ad, int slot, int role,
                      const char *state)
{
	memset(ds, 0, sizeof(*ds));
	ds->slot = slot;
	ds->role = role;
	snprintf(ds->state, sizeof(ds->state), "%s", state);
	bks_uuid_fmt(ad->uuid, ds->uuid);
	if (ad->d) {
		const disk_info *in = disk_get_info(ad->d);
		snprintf(ds->path, sizeof(ds->path), "%s", disk_path(ad->d));
		snprintf(ds->serial, sizeof(ds->serial), "%s", in->serial);
		ds->size = in->size;
	}
	ds->read_errors = ad->rd_err;
	ds->write_errors = ad->wr_err;
	ds->cksum_errors = ad->ck_err;
	ds->slow_ios = ad->slow;
}

static void add_job(arr *a, arr_status *st, const char *kind, const char *state,
                    uint64_t done, uint64_t total, uint64_t bytes_per_row)
{
	arr_job_status *j = &st->jobs[st->njobs++];
	memset(j, 0, sizeof(*j));
	snprintf(j->kind, sizeof(j->kind), "%s", kind);
	snprintf(j->state, sizeof(j->state), "%s", state);
	j->done_rows = done;
	j->total_rows = total;
	j->bytes_done = a->bg_bytes;
	j->rate_bps = a->bg_rate;
	j->eta_s = a->bg_rate > 0 && total >= done
	               ? (double)(total - done) * (double)bytes_per_row / a->bg_rate
	               : -1;
}

void arr_get_status(arr *a, arr_status *st)
{
	pthread_mutex_lock(&a->mu);
	memset(st, 0, sizeof(*st));
	snprintf(st->name, sizeof(st->name), "%s", a->name);
	bks_uuid_fmt(a->uuid, st->uuid);
	st->health = arr_health_locked(a);
	st->width = a->n;
	st->data_strips = a->k;
	st->strip_size = a->strip;
	st->rows = a->rows;
	st->hwm = a->hwm;
	st->seq = a->seq;
	st->capacity_bytes = a->rows * arr_row_bytes(a);
	st->bg_min_bps = a->cfg.bg_min_bps;
	st->bg_max_bps = a->cfg.bg_max_bps;
	st->fg_idle_ms = a->cfg.fg_idle_ms;
	st->last_scrub = (arr_scrub_status){
		.state = (int)a->scrub.state,
		.cursor = a->scrub.cursor,
		.rows_checked = a->scrub.rows_checked,
		.errors_found = a->scrub.errors_found,
		.repaired = a->scrub.repaired,
		.unrecoverable = a->scrub.unrecoverable,
		.started_ns = a->scrub.started_ns,
		.finished_ns = a->scrub.finished_ns,
	};

	uint64_t rebuild_done = UINT64_MAX;
	int rebuilding = 0, replacing = 0, faulted = 0;
	for (int s = 0; s < a->n; s++) {
		aslot *sl = &a->slot[s];
		const char *state = sb_state_name(sl->cur_state);
		if (sl->cur_state == SB_ONLINE && !sl->cur.d)
			state = "UNAVAIL";
		if (sl->cur_state == SB_FAULTED || sl->cur_state == SB_REMOVED ||
		    (sl->cur_state == SB_ONLINE && !sl->cur.d))
			faulted++;
		fill_disk(&st->disks[st->ndisks++], &sl->cur, s, ARR_ROLE_MEMBER, state);
		if (sl->inc.d) {
			arr_disk_status *ds = &st->disks[st->ndisks++];
			fill_disk(ds, &sl->inc, s, ARR_ROLE_INCOMING,
			          sl->flags & SBM_REPLACING ? "REPLACING" : "REBUILDING");
			ds->cursor = sl->cursor;
			ds->rows_total = a->hwm;
			rebuild_done = BKS_MIN(rebuild_done, sl->cursor);
			if (sl->flags & SBM_REPLACING)
				replacing++;
			else
				rebuilding++;
		}
	}
	for (int i = 0; i < a->nspares; i++)
		fill_disk(&st->disks[st->ndisks++], &a->spare[i], -1, ARR_ROLE_SPARE,
		          a->spare[i].d ? "AVAIL" : "UNAVAIL");
	if (rebuilding || replacing) {
		add_job(a, st, rebuilding ? "rebuild" : "replace", "running", rebuild_done,
		        a->hwm, arr_row_bytes(a));
		arr_job_status *j = &st->jobs[st->njobs - 1];
		j->errors_found = a->rb_errors_found;
		j->repaired = a->rb_repaired;
		j->unrecoverable = a->rb_unrecoverable;
	}
	if (a->scrub.state != SCRUB_IDLE || a->scrub.started_ns) {
		add_job(a, st, "scrub",
		        a->scrub.state == SCRUB_RUNNING  ? "running"
		        : a->scrub.state == SCRUB_PAUSED ? "paused"
		        : a->scrub.cursor >= a->hwm      ? "done"
		                                         : "stopped",
		        a->scrub.cursor, a->hwm, (size_t)(a->k + 2) * a->strip);
		arr_job_status *j = &st->jobs[st->njobs - 1];
		j->errors_found = a->scrub.errors_found;
		j->repaired = a->scrub.repaired;
		j->unrecoverable = a->scrub.unrecoverable;
	}
	if (st->health == ARR_FAILED)
		snprintf(st->action, sizeof(st->action), "More than two disks are unavailable: "
		         "writes are refused. Bring missing disks back (check cables, then "
		         "import again); data on rows that lost three strips cannot be read.");
	else if (faulted && !rebuilding && !replacing && a->nspares && a->cfg.no_auto_spare)
		snprintf(st->action, sizeof(st->action), "%d disk(s) FAULTED or missing; a spare "
		         "is available and will be claimed when the array is imported.", faulted);
	else if (faulted && !rebuilding && !replacing)
		snprintf(st->action, sizeof(st->action), "%d disk(s) FAULTED or missing and no "
		         "spare available: add a spare (bkstorctl array add-spare) or replace "
		         "the disk (bkstorctl array replace).", faulted);
	else if (rebuilding)
		snprintf(st->action, sizeof(st->action), "Rebuilding onto a spare; no action "
		         "needed. Replace the failed disk afterwards and add it as a spare.");
	pthread_mutex_unlock(&a->mu);
}
