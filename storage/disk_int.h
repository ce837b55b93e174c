/* storage/disk_int.h: private to storage/: the backend table behind a disk handle. */
#ifndef BKS_DISK_INT_H
#define BKS_DISK_INT_H

#include "storage/disk.h"

/* Backend table. start() begins every request of *ios[0..n) (all on disk d, n <= DISK_MAX_BATCH) and may
 * complete some at once (setting done/result); finish() waits for the rest. A
 * DISK_FLUSH request is the device cache flush (it is alone on its disk in a batch). */
struct disk_ops {
	const char *name;
	int (*start)(disk *d, disk_io **ios, int n);
	void (*finish)(disk *d, disk_io **ios, int n);
	void (*close)(disk *d);
};

struct disk {
	const struct disk_ops *ops;
	char *path;
	disk_info info;
	void *priv; /* backend state */
	/* Write generations (disk.c), atomics: wgen counts completed writes (from 1, so
	 * a new handle's first flush always runs), fgen is the wgen the last successful
	 * flush covered. */
	uint64_t wgen, fgen;
	uint64_t nflush, nskip;
};

/* Wrap backend state in a new disk handle; path is copied. NULL on ENOMEM. */
disk *disk_new(const struct disk_ops *ops, const char *path, const disk_info *info,
               void *priv);
/* Free the handle itself (backends call this from close()). */
void disk_free_handle(disk *d);

#endif /* BKS_DISK_INT_H */
