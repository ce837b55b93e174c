/* fuzz-lunmeta: libFuzzer target for the LUN record's codec (daemon/lun_meta.c: the
 * "meta" file of every LUN, versions 1 and 2; docs/format.md "LUN records").
 *
 * The first byte is a mode: bit 0 set, the rest is first made to pass the record's
 * length and checksum (length field = its own size, trailing xxh3 recomputed where
 * the version and ACL length put it), so the fuzzer reaches the field checks behind
 * the checksum; clear, the bytes go as they are.
 * Properties, beyond "no read past the bytes given (an exact copy), no crash": an
 * accepted record has a block size of 512 or 4096, an ACL of at most LUN_ACL_MAX
 * bytes that is the whole ACL field (no NUL cuts it short), mode values within their fields' ranges; encoded again it fits LUN_META_MAX
 * and decodes to the same block size, ACL and mode values. */
#include <config.h>

#include "fuzz/fuzz.h"

#include <string.h>

#include "common/bks.h"
#include "common/endian.h"
#include "daemon/lun_meta.h"

static int mode_eq(const lun_mode *a, const lun_mode *b)
{
	return a->wce == b->wce && a->perf == b->perf && a->dexcpt == b->dexcpt &&
	       a->test == b->test && a->mrie == b->mrie && a->interval == b->interval &&
	       a->report_count == b->report_count;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint8_t flags = data[0];
	data++, size--;
	uint8_t *b = malloc(size ? size : 1);
	if (!b)
		return 0;
	memcpy(b, data, size);
	if ((flags & 1) && size >= LUN_META_FIXED + 8) {
		size_t al = le_get16(b + 32), ml = le_get32(b + 8) == 2 ? LUN_META_MODE : 0;
		size_t end = LUN_META_FIXED + al + ml;
		if (end + 8 <= size) {
			size = end + 8;
			le_put32(b + 12, (uint32_t)size);
			le_put64(b + end, bks_xxh3(b, end));
		}
	}
	uint32_t bs = 0, bs2 = 0;
	char acl[LUN_ACL_MAX + 1], acl2[LUN_ACL_MAX + 1];
	lun_mode m, m2;
	if (lun_meta_decode(b, size, &bs, acl, &m) == 0) {
		NEED(bs == 512 || bs == 4096);
		/* the whole ACL field, no NUL in it (docs/format.md): a NUL would cut
		 * the list short, and "" means any initiator */
		NEED(strlen(acl) == le_get16(b + 32) && strlen(acl) <= LUN_ACL_MAX);
		NEED(m.wce <= 1 && m.perf <= 1 && m.dexcpt <= 1 && m.test <= 1 && m.mrie <= 15);
		uint8_t *e = malloc(LUN_META_MAX);
		if (e) {
			size_t n = lun_meta_encode(e, bs, acl, &m);
			NEED(n <= LUN_META_MAX);
			NEED(lun_meta_decode(e, n, &bs2, acl2, &m2) == 0);
			NEED(bs2 == bs && !strcmp(acl2, acl) && mode_eq(&m2, &m));
			free(e);
		}
	}
	free(b);
	return 0;
}
