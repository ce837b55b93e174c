/* storage/disk.c: the "aio" backend (libaio on an O_DIRECT fd) and the batch runner.
 *
 * Disks do their I/O on an engine (an io_context: one per array, or a small one
 * private to a disk). disk_io_run() starts every disk's share of a batch before
 * waiting on any, so the requests of a row are in flight on all disks
 * together. O_DIRECT is used whenever the file system accepts it; on one that does
 * not (tmpfs), the disk falls back to buffered I/O and says so in its info, and
 * disk_flush() still makes the writes durable with fdatasync().
 *
 * Flushes are requests too (DISK_FLUSH: an aio fdsync, IOCB_CMD_FDSYNC), so the
 * flushes of several disks run at once, as their writes do; a kernel that refuses
 * aio fdsync (before 4.18, or a file system without it) gets a plain fdatasync()
 * inline, one disk after another.
 *
 * Write generations: a flush costs a device cache flush (0.3-13 ms on a shared disk)
 * whether or not the disk has anything in its cache, and the intent log asks for
 * one on every disk at every sync (array_ilog.c). So each handle counts its completed
 * writes (wgen, from 1) and remembers the count its last successful flush covered
 * (fgen); disk_flush skips a disk where they are equal. Exact because every write to
 * a disk goes through its handle (the disk is opened exclusively: O_EXCL or flock),
 * wgen rises only after a write completed (disk_io_run reaps before it counts) and a
 * flush's snapshot of wgen is taken before the flush is started, so a flush never
 * claims a write that completed after it began. A failed flush leaves fgen alone
 * (Linux may report a write-back error once only; the next flush goes to the device
 * again, and the array faults the disk anyway). The counters are atomics; the
 * array's lock already serializes a disk's I/O, the atomics only keep a reader
 * (disk_needs_flush, counts) from another thread exact.
 */
#include <config.h>

#include "storage/disk_int.h"

#include <errno.h>
#include <fcntl.h>
#include <libaio.h>
#include <pthread.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* 0 once the kernel refused an aio fdsync: flushes are then done inline. */
static int aio_fsync_ok = 1;

#define AIO_WAVE DISK_MAX_BATCH /* requests one disk starts per wave of a batch */
#define ENGINE_DEPTH 4096  /* events one engine holds: 64 disks x one wave */

/* An io_context shared by the disks of one array (or private to one disk). Creating
 * and destroying contexts is slow (io_destroy waits for an RCU grace period), and one
 * context per array is what an event loop wants to watch.
 *
 * Several threads may reap on one engine at once, and the array's lock does not
 * prevent it: it serializes the users of one array, not every user of an engine.
 * bkstord opens the disk an add-spare or a replace is to use on the array's engine
 * and reads its first MiB (devprobe_content) from an API thread, without the array
 * lock, while the pool's writer thread writes rows; the tests' harness opens every
 * disk of a process on one engine, so two arrays (two stores) share it. A context
 * hands any completion to whichever io_getevents asks first, so with two reapers
 * each could take the other's event, mark it done and sleep again waiting for its
 * own: both asleep with nothing in flight, forever (tests/test-disk-engine hung so
 * within a second). Hence one reaper at a time (reaping, under mu): the others
 * wait on cv, and the reaper completes whatever it gets, under mu, and wakes them
 * after every io_getevents. The reaper only sleeps in the kernel while one of its
 * own requests is in flight, so its sleep ends; a waiter's request is either
 * reaped by it (the waiter sees done when woken) or still in flight when the
 * reaper leaves, and then a waiter becomes the reaper. done is read and written
 * under mu for the same reason (another thread completes it). */
struct disk_engine {
	io_context_t ctx;
	int refs;                 /* the owner's reference + one per open disk (atomic:
	                           * the API thread opens and closes probe disks while
	                           * the array's threads close replaced ones) */
	pthread_mutex_t mu;
	pthread_cond_t cv;        /* the reaper finished a round */
	int reaping;              /* a thread is in io_getevents (under mu) */
	unsigned long submits;    /* release/acquire edge: see aio_finish */
	struct io_event ev[256];  /* the reaper's */
};

struct aio_disk {
	int fd;
	disk_engine *eng;
	struct iocb cbs[AIO_WAVE];
	struct iocb *cbp[AIO_WAVE];
};

static int engine_new(int depth, disk_engine **out)
{
	disk_engine *g = calloc(1, sizeof(*g));
	int r;
	if (!g)
		return -ENOMEM;
	r = io_setup(depth, &g->ctx);
	if (r < 0) {
		free(g);
		return r;
	}
	g->refs = 1;
	pthread_mutex_init(&g->mu, NULL);
	pthread_cond_init(&g->cv, NULL);
	*out = g;
	return 0;
}

static void engine_put(disk_engine *g)
{
	if (g && __atomic_sub_fetch(&g->refs, 1, __ATOMIC_ACQ_REL) == 0) {
		io_destroy(g->ctx);
		pthread_mutex_destroy(&g->mu);
		pthread_cond_destroy(&g->cv);
		free(g);
	}
}

int disk_engine_new(disk_engine **out)
{
	return engine_new(ENGINE_DEPTH, out);
}

void disk_engine_free(disk_engine *g)
{
	engine_put(g);
}

disk *disk_new(const struct disk_ops *ops, const char *path, const disk_info *info,
               void *priv)
{
	disk *d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->path = strdup(path);
	if (!d->path) {
		free(d);
		return NULL;
	}
	d->ops = ops;
	d->info = *info;
	d->priv = priv;
	d->wgen = 1; /* a new handle knows nothing of what an earlier one left unflushed */
	d->fgen = 0;
	return d;
}

void disk_free_handle(disk *d)
{
	if (!d)
		return;
	free(d->path);
	free(d);
}

/* Read a one-line sysfs attribute into out (trimmed). Returns 0 or -errno. */
static int sysfs_read(const char *path, char *out, size_t cap)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return -errno;
	if (!fgets(out, (int)cap, f)) {
		fclose(f);
		return -EIO;
	}
	fclose(f);
	size_t n = strlen(out);
	while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == ' '))
		out[--n] = '\0';
	return n ? 0 : -ENOENT;
}

/* A block device's identity: WWN first (stable across HBAs), then the serial, then for
 * a loop device its backing file, so the admin can tell which slot to pull. */
static void blockdev_serial(dev_t rdev, char *out, size_t cap)
{
	char p[128];
	static const char *const attr[] = {"device/wwid", "wwid", "device/serial", "serial",
	                                   "loop/backing_file"};
	out[0] = '\0';
	for (size_t i = 0; i < BKS_ARRAY_SIZE(attr); i++) {
		snprintf(p, sizeof(p), "/sys/dev/block/%u:%u/%s", major(rdev), minor(rdev),
		         attr[i]);
		if (sysfs_read(p, out, cap) == 0)
			return;
	}
}

static int aio_start(disk *d, disk_io **ios, int n)
{
	struct aio_disk *a = d->priv;
	int nsub = 0;

	if (n > AIO_WAVE)
		return -E2BIG;
	for (int i = 0; i < n; i++) {
		disk_io *io = ios[i];
		if (io->done)
			continue;
		struct iocb *cb = &a->cbs[i];
		if (io->op == DISK_FLUSH && !__atomic_load_n(&aio_fsync_ok, __ATOMIC_RELAXED)) {
			io->result = fdatasync(a->fd) == 0 ? 0 : -errno;
			io->done = 1;
			continue;
		}
		if (io->op == DISK_FLUSH)
			io_prep_fdsync(cb, a->fd);
		else if (io->op == DISK_WRITE)
			io_prep_pwrite(cb, a->fd, io->buf, io->len, (long long)io->off);
		else
			io_prep_pread(cb, a->fd, io->buf, io->len, (long long)io->off);
		cb->data = io;
		a->cbp[nsub++] = cb;
	}
	/* What the submitter wrote into its requests (and cb->data) before io_submit is
	 * read by whichever thread reaps them: ordered by the kernel (a request
	 * completes after it was submitted), and by this release for the memory model
	 * (and ThreadSanitizer, which sees no kernel): the reaper's acquire load after
	 * io_getevents reads this count or a later one. */
	if (nsub)
		__atomic_fetch_add(&a->eng->submits, 1, __ATOMIC_RELEASE);
	int off = 0;
	while (off < nsub) {
		int r = io_submit(a->eng->ctx, nsub - off, a->cbp + off);
		if (r == -EINTR)
			continue;
		if (r == -EINVAL && a->cbp[off]->aio_lio_opcode == IO_CMD_FDSYNC) {
			/* No aio fdsync here: this flush and every later one inline. */
			__atomic_store_n(&aio_fsync_ok, 0, __ATOMIC_RELAXED);
			disk_io *io = a->cbp[off]->data;
			io->result = fdatasync(a->fd) == 0 ? 0 : -errno;
			io->done = 1;
			off++;
			continue;
		}
		if (r <= 0) {
			/* Fail the requests that never went out; the ones already submitted
			 * are reaped by finish(). */
			for (int j = off; j < nsub; j++) {
				disk_io *io = a->cbp[j]->data;
				io->result = r < 0 ? r : -EIO;
				io->done = 1;
			}
			break;
		}
		off += r;
	}
	return 0;
}

/* Reap until every request of this disk's run is done. Events of other requests on
 * the same engine (other disks, other threads) are completed on the way; their
 * finish() then finds them done. One reaper at a time: see struct disk_engine. */
static void aio_finish(disk *d, disk_io **ios, int n)
{
	struct aio_disk *a = d->priv;
	disk_engine *g = a->eng;

	pthread_mutex_lock(&g->mu);
	for (int i = 0; i < n; i++) {
		while (!ios[i]->done) {
			if (g->reaping) {
				pthread_cond_wait(&g->cv, &g->mu);
				continue;
			}
			g->reaping = 1;
			pthread_mutex_unlock(&g->mu);
			int r = io_getevents(g->ctx, 1, (long)BKS_ARRAY_SIZE(g->ev), g->ev, NULL);
			BKS_PANIC_IF(r < 0 && r != -EINTR, "io_getevents on %s: %s", d->path,
			             strerror(-r));
			(void)__atomic_load_n(&g->submits, __ATOMIC_ACQUIRE); /* see aio_start */
			uint64_t now = bks_now_ns();
			pthread_mutex_lock(&g->mu);
			for (int j = 0; j < r; j++) {
				disk_io *io = g->ev[j].obj->data;
				long res = (long)g->ev[j].res;
				if (res < 0)
					io->result = (int)res;
				else if ((size_t)res != io->len)
					io->result = -EIO; /* short: past the end of a shrunk disk */
				else
					io->result = 0;
				io->done_ns = now;
				io->done = 1;
			}
			g->reaping = 0;
			pthread_cond_broadcast(&g->cv);
		}
	}
	pthread_mutex_unlock(&g->mu);
}

static void aio_close(disk *d)
{
	struct aio_disk *a = d->priv;
	engine_put(a->eng);
	close(a->fd);
	free(a);
	disk_free_handle(d);
}

static const struct disk_ops aio_ops = {
	.name = "aio",
	.start = aio_start,
	.finish = aio_finish,
	.close = aio_close,
};

int disk_open_on(disk_engine *eng, const char *path, disk **out, bks_err *e)
{
	struct aio_disk *a = NULL;
	disk_info info = {0};
	struct stat st;
	int fd = -1, r;

	*out = NULL;
	if (stat(path, &st) != 0)
		return bks_fail(e, -errno, "disk %s: %s", path, strerror(errno));
	if (!S_ISBLK(st.st_mode) && !S_ISREG(st.st_mode))
		return bks_fail(e, -EINVAL, "disk %s: not a block device or a regular file",
		                path);
	info.is_blockdev = S_ISBLK(st.st_mode);
	info.dev = info.is_blockdev ? (uint64_t)st.st_rdev : (uint64_t)st.st_dev;
	info.ino = info.is_blockdev ? 0 : (uint64_t)st.st_ino;
	int flags = O_RDWR | O_CLOEXEC | (info.is_blockdev ? O_EXCL : 0);
	fd = open(path, flags | O_DIRECT);
	info.direct = fd >= 0;
	if (fd < 0 && errno == EINVAL)
		fd = open(path, flags); /* tmpfs and friends: no O_DIRECT */
	if (fd < 0) {
		if (errno == EBUSY)
			return bks_fail(e, -EBUSY, "disk %s: in use (mounted, or held by another "
			                "array or process)", path);
		return bks_fail(e, -errno, "disk %s: open: %s", path, strerror(errno));
	}
	/* O_EXCL keeps a second opener off a block device, but means nothing for a
	 * regular file: without a lock, an offline `bkstorctl array ...` and a running
	 * bkstord (or two arrays) could both write the same file-backed disk and each
	 * overwrite the other's superblocks and rows. flock is per open file, so a
	 * second open in the same process is refused too, as O_EXCL does; the lock goes
	 * with the descriptor (disk_close, or the process's death). */
	if (!info.is_blockdev && flock(fd, LOCK_EX | LOCK_NB) != 0) {
		if (errno == EWOULDBLOCK)
			r = bks_fail(e, -EBUSY, "disk %s: in use (held by another array or process, "
			             "e.g. a running bkstord)", path);
		else
			r = bks_fail(e, -errno, "disk %s: flock: %s", path, strerror(errno));
		goto close_fd;
	}
	if (info.is_blockdev) {
		uint64_t sz = 0;
		int lss = 512;
		unsigned int pss = 512;
		if (ioctl(fd, BLKGETSIZE64, &sz) != 0) {
			r = bks_fail(e, -errno, "disk %s: BLKGETSIZE64: %s", path, strerror(errno));
			goto close_fd;
		}
		if (ioctl(fd, BLKSSZGET, &lss) != 0)
			lss = 512;
		if (ioctl(fd, BLKPBSZGET, &pss) != 0)
			pss = (unsigned int)lss;
		info.size = sz;
		info.logical_sector = (uint32_t)lss;
		info.physical_sector = pss;
		blockdev_serial(st.st_rdev, info.serial, sizeof(info.serial));
	} else {
		info.size = (uint64_t)st.st_size;
		info.logical_sector = 512;
		info.physical_sector = (uint32_t)(st.st_blksize ? st.st_blksize : 4096);
	}
	if (info.logical_sector > DISK_ALIGN) {
		r = bks_fail(e, -EINVAL, "disk %s: logical sector %u bytes is larger than "
		             "the %u bkstor supports", path, info.logical_sector, DISK_ALIGN);
		goto close_fd;
	}
	a = calloc(1, sizeof(*a));
	if (!a) {
		r = bks_fail(e, -ENOMEM, "disk %s: out of memory", path);
		goto close_fd;
	}
	a->fd = fd;
	if (eng) {
		__atomic_add_fetch(&eng->refs, 1, __ATOMIC_RELAXED);
		a->eng = eng;
	} else if ((r = engine_new(2 * AIO_WAVE, &a->eng)) < 0) {
		/* A private engine: one disk's waves only, so it costs little of the
		 * machine's fs.aio-max-nr. */
		bks_fail(e, r, "disk %s: io_setup: %s (raise fs.aio-max-nr?)", path,
		         strerror(-r));
		goto free_a;
	}
	*out = disk_new(&aio_ops, path, &info, a);
	if (!*out) {
		r = bks_fail(e, -ENOMEM, "disk %s: out of memory", path);
		goto put_engine;
	}
	return 0;

put_engine:
	engine_put(a->eng);
free_a:
	free(a);
close_fd:
	close(fd);
	return r;
}

int disk_open(const char *path, disk **out, bks_err *e)
{
	return disk_open_on(NULL, path, out, e);
}

void disk_close(disk *d)
{
	if (d)
		d->ops->close(d);
}

int disk_fd(const disk *d)
{
	return d->ops == &aio_ops ? ((struct aio_disk *)d->priv)->fd : -1;
}

const disk_info *disk_get_info(const disk *d) { return &d->info; }
const char *disk_path(const disk *d) { return d->path; }

int disk_needs_flush(const disk *d)
{
	return __atomic_load_n(&d->wgen, __ATOMIC_ACQUIRE) !=
	       __atomic_load_n(&d->fgen, __ATOMIC_ACQUIRE);
}

int disk_flush_many(disk *const *d, int n, int *err)
{
	disk_io ios[DISK_MAX_BATCH];
	int first = 0;

	for (int base = 0; base < n; base += DISK_MAX_BATCH) {
		int m = BKS_MIN(n - base, DISK_MAX_BATCH), nio = 0;
		for (int i = base; i < base + m; i++) {
			err[i] = 0;
			int dup = 0;
			for (int j = 0; j < nio && !dup; j++)
				dup = ios[j].d == d[i];
			if (dup)
				continue; /* one flush per disk and batch; its result is copied */
			if (!disk_needs_flush(d[i])) {
				__atomic_add_fetch(&d[i]->nskip, 1, __ATOMIC_RELAXED);
				continue;
			}
			/* -ENOMEM stays if disk_io_run cannot even start */
			ios[nio++] = (disk_io){.d = d[i], .op = DISK_FLUSH, .result = -ENOMEM};
		}
		disk_io_run(ios, nio);
		for (int i = base; i < base + m; i++)
			for (int j = 0; j < nio; j++)
				if (ios[j].d == d[i])
					err[i] = ios[j].result;
		for (int i = base; i < base + m; i++)
			if (err[i] && !first)
				first = err[i];
	}
	return first;
}

int disk_flush(disk *d)
{
	int err;
	return disk_flush_many(&d, 1, &err);
}

void disk_get_counts(const disk *d, disk_counts *out)
{
	out->writes = __atomic_load_n(&d->wgen, __ATOMIC_RELAXED) - 1;
	out->flushes = __atomic_load_n(&d->nflush, __ATOMIC_RELAXED);
	out->flushes_skipped = __atomic_load_n(&d->nskip, __ATOMIC_RELAXED);
}

/* Requests arrive in any order; each disk gets its own contiguous run so a backend
 * sees only its requests. A batch is sorted by disk (stable, small n). */
static int cmp_io_disk(const void *x, const void *y)
{
	const disk_io *a = *(disk_io *const *)x, *b = *(disk_io *const *)y;
	if (a->d != b->d)
		return (uintptr_t)a->d < (uintptr_t)b->d ? -1 : 1;
	return a->off < b->off ? -1 : a->off > b->off;
}

int disk_io_run(disk_io *ios, int n)
{
	int first_err = 0;
	int ngroups = 0;
	struct grp { int pos, end; } *g;
	disk_io **p;
	uint64_t *snap;

	if (n <= 0)
		return 0;
	g = malloc((sizeof(*g) + sizeof(*p) + sizeof(*snap)) * (size_t)n);
	if (!g)
		return -ENOMEM;
	p = (disk_io **)(g + n);
	snap = (uint64_t *)(p + n);
	for (int i = 0; i < n; i++) {
		/* What a flush will cover: the writes completed before it starts. */
		snap[i] = ios[i].op == DISK_FLUSH ?
		          __atomic_load_n(&ios[i].d->wgen, __ATOMIC_ACQUIRE) : 0;
		ios[i].done = 0;
		ios[i].result = 0;
		ios[i].start_ns = ios[i].done_ns = 0;
		BKS_PANIC_IF(((uintptr_t)ios[i].buf | ios[i].len | ios[i].off) % DISK_ALIGN,
		             "unaligned disk I/O on %s off=%llu len=%zu", ios[i].d->path,
		             (unsigned long long)ios[i].off, ios[i].len);
		p[i] = &ios[i];
	}
	qsort(p, (size_t)n, sizeof(*p), cmp_io_disk);
	for (int i = 0; i < n;) {
		int j = i;
		while (j < n && p[j]->d == p[i]->d)
			j++;
		g[ngroups].pos = i;
		g[ngroups].end = j;
		ngroups++;
		i = j;
	}
	/* Waves: every disk starts up to AIO_WAVE requests, then all are reaped. */
	for (;;) {
		int active = 0;
		for (int k = 0; k < ngroups; k++) {
			if (g[k].pos >= g[k].end)
				continue;
			int m = BKS_MIN(g[k].end - g[k].pos, AIO_WAVE);
			disk_io **w = p + g[k].pos;
			uint64_t t0 = bks_now_ns();
			for (int q = 0; q < m; q++)
				w[q]->start_ns = t0;
			int r = w[0]->d->ops->start(w[0]->d, w, m);
			if (r < 0)
				for (int q = 0; q < m; q++)
					if (!w[q]->done) {
						w[q]->result = r;
						w[q]->done = 1;
					}
			active = 1;
		}
		if (!active)
			break;
		for (int k = 0; k < ngroups; k++) {
			if (g[k].pos >= g[k].end)
				continue;
			int m = BKS_MIN(g[k].end - g[k].pos, AIO_WAVE);
			disk_io **w = p + g[k].pos;
			w[0]->d->ops->finish(w[0]->d, w, m);
			g[k].pos += m;
		}
	}
	for (int i = 0; i < n; i++) {
		disk *d = ios[i].d;
		if (!ios[i].done_ns)
			ios[i].done_ns = bks_now_ns(); /* failed at once */
		if (ios[i].result && !first_err)
			first_err = ios[i].result;
		/* A failed write may still have landed in part: it counts as a write. */
		if (ios[i].op == DISK_WRITE)
			__atomic_add_fetch(&d->wgen, 1, __ATOMIC_RELEASE);
		if (ios[i].op == DISK_FLUSH && ios[i].result == 0) {
			__atomic_add_fetch(&d->nflush, 1, __ATOMIC_RELAXED);
			uint64_t f = __atomic_load_n(&d->fgen, __ATOMIC_ACQUIRE);
			while (f < snap[i] && !__atomic_compare_exchange_n(&d->fgen, &f, snap[i], 0,
			                                                   __ATOMIC_ACQ_REL,
			                                                   __ATOMIC_ACQUIRE))
				;
		}
	}
	free(g);
	return first_err;
}

int disk_pread(disk *d, void *buf, size_t len, uint64_t off)
{
	disk_io io = {.d = d, .op = DISK_READ, .buf = buf, .len = len, .off = off};
	return disk_io_run(&io, 1);
}

int disk_pwrite(disk *d, const void *buf, size_t len, uint64_t off)
{
	disk_io io = {.d = d, .op = DISK_WRITE, .buf = (void *)buf, .len = len, .off = off};
	return disk_io_run(&io, 1);
}
