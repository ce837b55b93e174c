/* storage/arr_limits.h: the array's limits, shared by its public header (array.h)
 * and the on-disk codec (label.h) whose structures are sized by them. Changing one
 * changes the disk format (docs/format.md). */
#ifndef BKS_ARR_LIMITS_H
#define BKS_ARR_LIMITS_H

#define ARR_MAX_DISKS 32  /* members */
#define ARR_MIN_DISKS 4
#define ARR_MAX_SPARES 16
#define ARR_ROOT_MAX 256  /* bytes of the layer above's root in the superblock */
#define ARR_NAME_MAX 64

#endif /* BKS_ARR_LIMITS_H */
