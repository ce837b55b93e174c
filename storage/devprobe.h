/* storage/devprobe.h: what is on a device before bkstor writes its label area.
 *
 * Adding a spare or a replacement overwrites the first MiB of the new disk (the
 * label area's write/read test) and later all of it. An administrator who types the
 * wrong path in the dashboard must not lose a file system that way, and nobody may
 * lose a mounted one or the system disk:
 *   devprobe_in_use(): a mounted device (or one with a mounted partition), the
 *     device holding `/`, one held by device-mapper/md (its holders/), or active
 *     swap: always refused, whatever force says;
 *   devprobe_content(): a known signature (file systems, partition tables, LVM,
 *     LUKS, md, swap) or any non-zero byte in the first MiB: refused unless the
 *     administrator forces it. A bkstor label is not "content" here: the array's own
 *     checks decide about it (its own disk, or a foreign array's: force). */
#ifndef BKS_DEVPROBE_H
#define BKS_DEVPROBE_H

#include <stddef.h>

#include "storage/disk.h"

/* 1 when the device at path is in use (what it is in use as, in why: "mounted on
 * /mnt/x (ext4)"), 0 when not, -errno when path cannot be examined. A regular file
 * is never in use by this test (the disk layer's O_EXCL covers block devices only;
 * files are checked for content). */
int devprobe_in_use(const char *path, char *why, size_t cap);

/* Read the first MiB of d: 1 when it holds something (named in what: "an ext4 file
 * system (superblock at 1 KiB)"), 0 when it is all zeros or carries a bkstor label,
 * -errno on a read error. */
int devprobe_content(disk *d, char *what, size_t cap);

#endif /* BKS_DEVPROBE_H */
