/* daemon/lun_meta.h: the LUN record's codec (the "meta" file of a LUN's directory;
 * docs/format.md "LUN records"): block size, ACL and the saved mode page values.
 * Apart from daemon/lun.c so that the parser of these disk bytes has a fuzz target
 * of its own (fuzz/fuzz-lunmeta.c) without the appliance around it. */
#ifndef BKS_LUN_META_H
#define BKS_LUN_META_H

#include <stddef.h>
#include <stdint.h>

#include "daemon/lun.h"

#define LUN_META_FIXED 36   /* up to the ACL bytes */
#define LUN_META_MODE 16    /* version 2: the mode values after the ACL */
/* The largest record (a buffer this size holds any record lun_meta_encode writes). */
#define LUN_META_MAX (LUN_META_FIXED + LUN_ACL_MAX + LUN_META_MODE + 8)

/* Encode into b (LUN_META_MAX bytes): version 1 when m holds the defaults, else 2.
 * acl: at most LUN_ACL_MAX bytes. Returns the record's length. */
size_t lun_meta_encode(uint8_t *b, uint32_t bs, const char *acl, const lun_mode *m);
/* Decode len bytes (from disk: every field bounded and checked). 0, -EINVAL
 * (malformed, checksum), -EPROTO (a version this build does not know). */
int lun_meta_decode(const uint8_t *b, size_t len, uint32_t *bs, char acl[LUN_ACL_MAX + 1],
                    lun_mode *m);

#endif /* BKS_LUN_META_H */
