/* storage/fault.c: see fault.h. Modelled on SQLite's crash simulator: every write
 * through the layer first saves the bytes it will overwrite; a flush forgets them; a
 * power cut puts them back. */
#include <config.h>

#include "storage/disk_int.h"
#include "storage/fault.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct undo {
	struct undo *prev; /* older entry */
	uint64_t off;
	size_t len;
	void *old; /* DISK_ALIGN-aligned pre-image */
};

struct rule {
	struct rule *next;
	int kind; /* FLT_READ/FLT_WRITE mask for EIO; 0x10 for corruption */
	uint64_t off, len;
};
#define RULE_CORRUPT 0x10

struct fdisk {
	flt_world *w;
	disk *inner;
	struct fdisk *next_in_world;
	struct rule *rules;
	struct undo *undo; /* newest first */
	uint32_t latency_us;
	int vanished;
	disk_io *pass[DISK_MAX_BATCH]; /* the requests handed to inner in this batch */
	int npass;
	struct undo *flush_from; /* a flush in this batch covers this entry and older */
	int flushing;
};

struct flt_world {
	pthread_mutex_t mu;
	bks_rng rng;
	struct fdisk *disks;
	uint64_t events;
	uint64_t cut_at; /* 0 = not armed */
	int mode;
	int dead;
};

int flt_world_new(uint64_t seed, flt_world **out)
{
	flt_world *w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	pthread_mutex_init(&w->mu, NULL);
	bks_rng_seed(&w->rng, seed);
	*out = w;
	return 0;
}

void flt_world_free(flt_world *w)
{
	if (!w)
		return;
	BKS_PANIC_IF(w->disks, "fault world freed with disks still open");
	pthread_mutex_destroy(&w->mu);
	free(w);
}

static int overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

static void free_undo(struct fdisk *f)
{
	while (f->undo) {
		struct undo *u = f->undo;
		f->undo = u->prev;
		free(u->old);
		free(u);
	}
}

/* Save the bytes a write is about to replace. Returns 0 or -errno. */
static int save_preimage(struct fdisk *f, const disk_io *io)
{
	struct undo *u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	u->old = bks_alloc_aligned(DISK_ALIGN, io->len);
	if (!u->old) {
		free(u);
		return -ENOMEM;
	}
	u->off = io->off;
	u->len = io->len;
	ssize_t n = pread(disk_fd(f->inner), u->old, io->len, (off_t)io->off);
	if (n < 0 || (size_t)n != io->len) {
		/* Past the end of a file: what was there reads as zeros. */
		if (n < 0)
			n = 0;
		memset((char *)u->old + n, 0, io->len - (size_t)n);
	}
	u->prev = f->undo;
	f->undo = u;
	return 0;
}

/* The power goes out during io (a write, or NULL for a flush). Caller holds w->mu. */
static void power_cut(flt_world *w, struct fdisk *cur, const disk_io *io)
{
	if (io) {
		/* Tear: a random whole-sector prefix of the write reaches the platter. */
		size_t sectors = io->len / DISK_ALIGN;
		size_t keep = (size_t)bks_rng_below(&w->rng, sectors + 1) * DISK_ALIGN;
		if (keep && pwrite(disk_fd(cur->inner), io->buf, keep, (off_t)io->off) < 0)
			keep = 0;
	}
	for (struct fdisk *f = w->disks; f; f = f->next_in_world) {
		for (struct undo *u = f->undo; u; u = u->prev) {
			if (w->mode == FLT_PC_REORDER && bks_rng_below(&w->rng, 2))
				continue; /* this one happened to reach the media */
			ssize_t n = pwrite(disk_fd(f->inner), u->old, u->len, (off_t)u->off);
			BKS_PANIC_IF(n < 0 || (size_t)n != u->len, "fault layer: rollback of %s failed",
			             f->inner->path);
		}
		free_undo(f);
		fdatasync(disk_fd(f->inner));
	}
	w->dead = 1;
	w->cut_at = 0;
}

/* A flush of f succeeded: forget the pre-images of the writes it covers (from
 * f->flush_from down; a newer entry came from a write started after the flush).
 * Caller holds w->mu. */
static void flushed(struct fdisk *f)
{
	struct undo **pp = &f->undo;
	while (*pp && *pp != f->flush_from)
		pp = &(*pp)->prev;
	struct undo *u = *pp;
	*pp = NULL;
	while (u) {
		struct undo *prev = u->prev;
		free(u->old);
		free(u);
		u = prev;
	}
}

/* Count one write/flush event; returns 1 if it is the one that cuts the power. */
static int tick(flt_world *w)
{
	w->events++;
	return w->cut_at && w->events >= w->cut_at;
}

static int f_start(disk *d, disk_io **ios, int n)
{
	struct fdisk *f = d->priv;
	flt_world *w = f->w;
	int r = 0;

	pthread_mutex_lock(&w->mu);
	f->npass = 0;
	for (int i = 0; i < n; i++) {
		disk_io *io = ios[i];
		int fail = 0;
		if (w->dead)
			fail = -EIO;
		else if (f->vanished)
			fail = -ENXIO;
		for (struct rule *ru = f->rules; ru && !fail; ru = ru->next)
			if ((ru->kind & (io->op == DISK_WRITE ? FLT_WRITE : FLT_READ)) &&
			    overlaps(io->off, io->len, ru->off, ru->len))
				fail = -EIO;
		if (!fail && io->op == DISK_WRITE) {
			if (tick(w)) {
				power_cut(w, f, io);
				fail = -EIO;
			} else {
				fail = save_preimage(f, io);
			}
		}
		if (!fail && io->op == DISK_FLUSH) {
			if (tick(w)) {
				power_cut(w, f, NULL);
				fail = -EIO;
			} else {
				f->flush_from = f->undo;
				f->flushing = 1;
			}
		}
		if (fail) {
			io->result = fail;
			io->done = 1;
			continue;
		}
		f->pass[f->npass++] = io;
	}
	if (f->npass)
		r = f->inner->ops->start(f->inner, f->pass, f->npass);
	pthread_mutex_unlock(&w->mu);
	return r;
}

static void f_finish(disk *d, disk_io **ios, int n)
{
	struct fdisk *f = d->priv;
	(void)ios;
	(void)n;
	if (f->npass)
		f->inner->ops->finish(f->inner, f->pass, f->npass);
	/* A flush is complete only if the power stayed on until every flush of the
	 * batch was started and reaped: a cut by another disk's flush in the same batch
	 * came before this one completed. */
	for (int i = 0; i < f->npass; i++) {
		disk_io *io = f->pass[i];
		if (io->op != DISK_FLUSH)
			continue;
		pthread_mutex_lock(&f->w->mu);
		if (f->w->dead)
			io->result = -EIO;
		else if (io->result == 0 && f->flushing)
			flushed(f);
		f->flushing = 0;
		pthread_mutex_unlock(&f->w->mu);
	}
	/* Latency is virtual: added to the reported completion time, not slept, so a
	 * slow disk does not also delay the reaping (and so the timing) of the other
	 * disks in the batch. */
	for (int i = 0; f->latency_us && i < f->npass; i++) {
		uint64_t t = f->pass[i]->start_ns + (uint64_t)f->latency_us * 1000u;
		if (f->pass[i]->done_ns < t)
			f->pass[i]->done_ns = t;
	}
	for (int i = 0; i < f->npass; i++) {
		disk_io *io = f->pass[i];
		if (io->op != DISK_READ || io->result)
			continue;
		for (struct rule *ru = f->rules; ru; ru = ru->next) {
			if (!(ru->kind & RULE_CORRUPT) || !overlaps(io->off, io->len, ru->off, ru->len))
				continue;
			/* Flip one byte inside the overlap: silent, as rot or a bad cable is. */
			uint64_t lo = BKS_MAX(io->off, ru->off);
			((uint8_t *)io->buf)[lo - io->off] ^= 0x5a;
		}
	}
	f->npass = 0;
}

static void f_close(disk *d)
{
	struct fdisk *f = d->priv;
	flt_world *w = f->w;

	pthread_mutex_lock(&w->mu);
	for (struct fdisk **pp = &w->disks; *pp; pp = &(*pp)->next_in_world)
		if (*pp == f) {
			*pp = f->next_in_world;
			break;
		}
	pthread_mutex_unlock(&w->mu);
	/* Unflushed writes at close stay where they are: a clean close flushed them. */
	free_undo(f);
	flt_clear(d);
	disk_close(f->inner);
	free(f);
	disk_free_handle(d);
}

static const struct disk_ops fault_ops = {
	.name = "fault",
	.start = f_start,
	.finish = f_finish,
	.close = f_close,
};

int flt_wrap(flt_world *w, disk *inner, disk **out)
{
	struct fdisk *f;

	if (disk_fd(inner) < 0)
		return -EINVAL;
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->w = w;
	f->inner = inner;
	*out = disk_new(&fault_ops, inner->path, &inner->info, f);
	if (!*out) {
		free(f);
		return -ENOMEM;
	}
	pthread_mutex_lock(&w->mu);
	f->next_in_world = w->disks;
	w->disks = f;
	pthread_mutex_unlock(&w->mu);
	return 0;
}

static struct fdisk *fd_of(disk *d)
{
	BKS_PANIC_IF(d->ops != &fault_ops, "%s is not a fault-layer disk", d->path);
	return d->priv;
}

static int add_rule(disk *d, int kind, uint64_t off, uint64_t len)
{
	struct fdisk *f = fd_of(d);
	struct rule *ru = calloc(1, sizeof(*ru));
	if (!ru)
		return -ENOMEM;
	ru->kind = kind;
	ru->off = off;
	ru->len = len;
	pthread_mutex_lock(&f->w->mu);
	ru->next = f->rules;
	f->rules = ru;
	pthread_mutex_unlock(&f->w->mu);
	return 0;
}

int flt_add_eio(disk *d, int ops, uint64_t off, uint64_t len)
{
	return add_rule(d, ops & (FLT_READ | FLT_WRITE), off, len);
}

int flt_add_corrupt_read(disk *d, uint64_t off, uint64_t len)
{
	return add_rule(d, RULE_CORRUPT, off, len);
}

void flt_set_latency_us(disk *d, uint32_t us) { fd_of(d)->latency_us = us; }
void flt_disappear(disk *d) { fd_of(d)->vanished = 1; }

void flt_clear(disk *d)
{
	struct fdisk *f = fd_of(d);
	pthread_mutex_lock(&f->w->mu);
	while (f->rules) {
		struct rule *ru = f->rules;
		f->rules = ru->next;
		free(ru);
	}
	f->vanished = 0;
	f->latency_us = 0;
	pthread_mutex_unlock(&f->w->mu);
}

uint64_t flt_unflushed(disk *d)
{
	struct fdisk *f = fd_of(d);
	uint64_t n = 0;
	pthread_mutex_lock(&f->w->mu);
	for (struct undo *u = f->undo; u; u = u->prev)
		n += u->len;
	pthread_mutex_unlock(&f->w->mu);
	return n;
}

void flt_arm_powercut(flt_world *w, uint64_t after, enum flt_pc_mode mode)
{
	pthread_mutex_lock(&w->mu);
	w->cut_at = w->events + (after ? after : 1);
	w->mode = mode;
	pthread_mutex_unlock(&w->mu);
}

void flt_disarm(flt_world *w)
{
	pthread_mutex_lock(&w->mu);
	w->cut_at = 0;
	pthread_mutex_unlock(&w->mu);
}

int flt_is_dead(const flt_world *w) { return w->dead; }
uint64_t flt_events(const flt_world *w) { return w->events; }

void flt_power_on(flt_world *w)
{
	pthread_mutex_lock(&w->mu);
	w->dead = 0;
	w->cut_at = 0;
	pthread_mutex_unlock(&w->mu);
}
