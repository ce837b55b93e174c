/* tests/chunkbreak.c: damage one chunk of a stopped appliance's store beyond what
 * its RAID-6 repairs (tests/test-repl-corrupt.sh).
 *
 *   chunkbreak SIZE DISK...
 *
 * Opens the array on DISKs (the daemon must be stopped) and its store, finds the one
 * object of SIZE bytes, takes its first chunk (not a hole) and flips bytes of it on
 * three strips of its row: the data strip it starts in, and P and Q at the same
 * offsets. Two wrong strips in a row are still found and rewritten by the array's
 * combinatorial reconstruction (storage/array_io.c, arr_find_bad tries every pair);
 * with three, no reconstruction matches the chunk's checksum: verify reports it, and
 * a read of it fails (-EIO) until a good copy is stored. The other chunks of the
 * row read as before (their data strips are intact). Prints the chunk's fingerprint
 * in hex, then where it was damaged. Exit 0, or 1 with a message. */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dedup/store.h"
#include "dedup/store_repl.h"
#include "raid/raid.h"
#include "storage/array.h"
#include "storage/disk.h"
#include "storage/label.h"
#include "tests/testutil.h"

#define FLIP_MAX 4096u

struct find {
	uint64_t size, id;
	int n;
};

static int find_cb(void *ctx, const store_obj_info *in)
{
	struct find *f = ctx;
	if (in->size == f->size) {
		f->id = in->id;
		f->n++;
	}
	return 0;
}

/* XOR len bytes at off of path with a mask of its own (which: 0, 1, 2), never 0.
 * The same mask on a data strip and on P would keep P consistent (P is their XOR):
 * the array's pair reconstruction would then "find" the chunk right by taking the
 * data strip with coefficient 1 in Q as the other bad one, and rewrite that strip
 * wrong (it verifies only the range it was asked for). */
static int flip(const char *path, uint64_t off, uint32_t len, int which)
{
	uint8_t b[FLIP_MAX];
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int r = pread(fd, b, len, (off_t)off) == (ssize_t)len ? 0 : -EIO;
	for (uint32_t i = 0; i < len; i++)
		b[i] ^= (uint8_t)(1 + (i * 131 + (uint32_t)which * 7919) % 255);
	if (r == 0 && (pwrite(fd, b, len, (off_t)off) != (ssize_t)len || fsync(fd) < 0))
		r = -errno;
	close(fd);
	return r;
}

int main(int argc, char **argv)
{
	bks_err e = {0};
	disk *d[64];
	arr *a = NULL;
	store *s = NULL;
	int n = argc - 2, r;
	if (argc < 6 || n > 64) {
		fprintf(stderr, "usage: chunkbreak SIZE DISK... (4 to 64 disk files)\n");
		return 2;
	}
	struct find f = {strtoull(argv[1], NULL, 10), 0, 0};
	for (int i = 0; i < n; i++)
		if ((r = disk_open(argv[2 + i], &d[i], &e)) < 0) {
			fprintf(stderr, "chunkbreak: %s\n", bks_errmsg(&e, r));
			return 1;
		}
	arr_config cfg;
	arr_config_defaults(&cfg);
	cfg.no_auto_spare = 1;
	if ((r = arr_import(&cfg, d, n, &a, &e)) < 0 || (r = store_open(a, NULL, &s, &e)) < 0) {
		fprintf(stderr, "chunkbreak: %s\n", bks_errmsg(&e, r));
		return 1;
	}
	store_list(s, find_cb, &f);
	if (f.n != 1) {
		fprintf(stderr, "chunkbreak: %d objects of %llu bytes (want exactly one)\n", f.n,
		        (unsigned long long)f.size);
		store_close(s);
		return 1;
	}
	store_mapext x;
	if (!tu_first_chunk(s, f.id, &x)) {
		fprintf(stderr, "chunkbreak: object %llu has no chunk\n", (unsigned long long)f.id);
		store_close(s);
		return 1;
	}
	/* Where: the row's strip that holds the chunk's first byte, and P and Q. */
	uint32_t strip = arr_strip_size(a);
	int width = arr_width(a), k = arr_data_strips(a);
	uint64_t row = x.where.row;
	int st = (int)(x.where.off / strip);
	uint32_t in = x.where.off % strip;
	uint32_t len = x.where.slen < strip - in ? x.where.slen : strip - in;
	if (len > FLIP_MAX)
		len = FLIP_MAX;
	int strips[3] = {st, k, k + 1};
	char paths[3][256];
	arr_status *as = malloc(sizeof(*as));
	if (!as)
		return 1;
	arr_get_status(a, as);
	for (int i = 0; i < 3; i++) {
		int slot = raid_strip_disk(width, row, strips[i]);
		paths[i][0] = 0;
		for (int j = 0; j < as->ndisks; j++)
			if (as->disks[j].slot == slot)
				snprintf(paths[i], sizeof(paths[i]), "%s", as->disks[j].path);
	}
	free(as);
	char hx[65];
	for (int i = 0; i < 32; i++)
		snprintf(hx + 2 * i, 3, "%02x", x.fp[i]);
	store_close(s); /* closes the array: nothing of it is written after the flips */
	for (int i = 0; i < 3; i++) {
		uint64_t off = ARR_DATA_OFF + row * strip + in;
		if (!paths[i][0] || (r = flip(paths[i], off, len, i)) < 0) {
			fprintf(stderr, "chunkbreak: strip %d of row %llu (%s): %s\n", strips[i],
			        (unsigned long long)row, paths[i][0] ? paths[i] : "no disk",
			        paths[i][0] ? strerror(-r) : "missing");
			return 1;
		}
	}
	printf("%s\n", hx);
	fprintf(stderr, "chunkbreak: object %llu, chunk %s (%u stored bytes at row %llu + %u): "
	        "%u bytes flipped on strips %d (data), %d (P), %d (Q)\n",
	        (unsigned long long)f.id, hx, x.where.slen, (unsigned long long)row, x.where.off,
	        len, st, k, k + 1);
	return 0;
}
