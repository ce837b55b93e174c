/* daemon/lun_meta.c: see lun_meta.h; docs/format.md "LUN records". */
#include <config.h>

#include "daemon/lun_meta.h"

#include <errno.h>
#include <string.h>

#include "common/bks.h"
#include "common/endian.h"

#define META_MAGIC "BKSLUNM1"
#define LUN_META_VERSION 2 /* 1 is still read (and written: lun_meta_encode) */

void lun_mode_default(lun_mode *m)
{
	memset(m, 0, sizeof(*m));
	m->wce = 1;
	m->dexcpt = 1;
}

static int mode_is_default(const lun_mode *m)
{
	lun_mode d;
	lun_mode_default(&d);
	return m->wce == d.wce && m->perf == d.perf && m->dexcpt == d.dexcpt &&
	       m->test == d.test && m->mrie == d.mrie && m->interval == d.interval &&
	       m->report_count == d.report_count;
}

/* The meta record: docs/format.md "LUN records". Version 1 when the mode values are
 * the defaults (what every bkstord reads), version 2 (the mode values after the ACL)
 * once an initiator changed one: an older bkstord then refuses the LUN (logged)
 * rather than serve it with the write cache back on. */
size_t lun_meta_encode(uint8_t *b, uint32_t bs, const char *acl, const lun_mode *m)
{
	int v2 = !mode_is_default(m);
	size_t al = strlen(acl), ml = v2 ? LUN_META_MODE : 0, len = LUN_META_FIXED + al + ml + 8;
	memset(b, 0, LUN_META_FIXED);
	memcpy(b, META_MAGIC, 8);
	le_put32(b + 8, v2 ? 2 : 1);
	le_put32(b + 12, (uint32_t)len);
	le_put32(b + 16, bs);
	le_put32(b + 20, 0);
	le_put64(b + 24, bks_wall_ns());
	le_put16(b + 32, (uint16_t)al);
	memcpy(b + LUN_META_FIXED, acl, al);
	if (v2) {
		uint8_t *p = b + LUN_META_FIXED + al;
		memset(p, 0, LUN_META_MODE);
		p[0] = m->wce, p[1] = m->perf, p[2] = m->dexcpt, p[3] = m->test, p[4] = m->mrie;
		le_put32(p + 8, m->interval);
		le_put32(p + 12, m->report_count);
	}
	le_put64(b + LUN_META_FIXED + al + ml, bks_xxh3(b, LUN_META_FIXED + al + ml));
	return len;
}

int lun_meta_decode(const uint8_t *b, size_t len, uint32_t *bs, char acl[LUN_ACL_MAX + 1],
                    lun_mode *m)
{
	if (len < LUN_META_FIXED + 8 || memcmp(b, META_MAGIC, 8))
		return -EINVAL;
	uint32_t v = le_get32(b + 8);
	if (v != 1 && v != LUN_META_VERSION)
		return -EPROTO;
	uint32_t l = le_get32(b + 12), al = le_get16(b + 32), ml = v == 2 ? LUN_META_MODE : 0;
	if (l != len || al > LUN_ACL_MAX || (size_t)LUN_META_FIXED + al + ml + 8 != len ||
	    le_get64(b + LUN_META_FIXED + al + ml) != bks_xxh3(b, LUN_META_FIXED + al + ml))
		return -EINVAL;
	/* No NUL in the ACL (docs/format.md): one would cut the list short when it is
	 * read as a string, and a list cut to "" lets any initiator in. */
	if (memchr(b + LUN_META_FIXED, 0, al))
		return -EINVAL;
	*bs = le_get32(b + 16);
	if (*bs != 512 && *bs != 4096)
		return -EINVAL;
	lun_mode_default(m); /* version 1: the defaults (WCE=1) */
	if (v == 2) {
		const uint8_t *p = b + LUN_META_FIXED + al;
		if (p[0] > 1 || p[1] > 1 || p[2] > 1 || p[3] > 1 || p[4] > 15 || p[5] || p[6] ||
		    p[7])
			return -EINVAL;
		m->wce = p[0], m->perf = p[1], m->dexcpt = p[2], m->test = p[3], m->mrie = p[4];
		m->interval = le_get32(p + 8);
		m->report_count = le_get32(p + 12);
	}
	memcpy(acl, b + LUN_META_FIXED, al);
	acl[al] = 0;
	return 0;
}
