/* storage/label.c: see label.h and docs/format.md.
 *
 * Encoding is explicit (put/get little-endian at fixed offsets), never a struct
 * memcpy, so the format does not depend on the compiler and a decoder can check
 * every field before anything uses it. Both go through a bounded cursor
 * (common/cursor.h): a read past the end yields zeros and a sticky error that the
 * decoders turn into "truncated", so a length field can never make us read outside
 * the buffer.
 */
#include <config.h>

#include "storage/label.h"

#include <errno.h>
#include <string.h>

#include "common/cursor.h"

/* The head both structures start with, and how each names itself in errors. */
typedef struct head {
	char magic[8];
	uint32_t version, size;
	const char *what;     /* "label" */
	const char *nomagic;  /* the -ENOENT message (a blank or foreign disk) */
} head;

static const head LBL_HEAD = {{'B', 'K', 'S', 'L', 'A', 'B', 'E', 'L'}, LBL_VERSION,
                              LBL_SIZE, "label", "no bkstor label"};
static const head SB_HEAD = {{'B', 'K', 'S', 'S', 'U', 'P', 'E', 'R'}, SB_VERSION,
                             SB_SLOT_SIZE, "superblock", "no superblock"};

/* The checksum is the last 8 bytes of the structure's fixed size and covers every
 * byte before it (including unused padding, which must be zero on write). */
static void seal(uint8_t *buf, size_t size)
{
	le_put64(buf + size - 8, bks_xxh3(buf, size - 8));
}

static int check_seal(const uint8_t *buf, size_t size)
{
	return le_get64(buf + size - 8) == bks_xxh3(buf, size - 8);
}

/* Zero the structure's buffer and write its head. */
static void put_head(bks_wcur *c, uint8_t *buf, const head *h)
{
	memset(buf, 0, h->size);
	cur_winit(c, buf, h->size);
	cur_put_bytes(c, h->magic, 8);
	cur_put32(c, h->version);
	cur_put32(c, h->size);
}

/* The encoders write fixed-size structures from validated in-memory ones: running
 * out of room is a bug here, not bad input. */
static void put_seal(bks_wcur *c, uint8_t *buf, const head *h)
{
	BKS_PANIC_IF(c->err || c->pos > h->size - 8, "%s encode overflow", h->what);
	seal(buf, h->size);
}

/* Check the head and the checksum; leave c after the head. Everything the decoders
 * read after this is covered by the checksum. */
static int get_head(bks_rcur *c, const uint8_t *buf, size_t len, const head *h, bks_err *e)
{
	if (len < h->size)
		return bks_fail(e, -EINVAL, "%s: %zu bytes, need %u", h->what, len, h->size);
	cur_rinit(c, buf, len);
	if (memcmp(cur_take(c, 8), h->magic, 8) != 0)
		return bks_fail(e, -ENOENT, "%s", h->nomagic);
	uint32_t ver = cur_get32(c), size = cur_get32(c);
	if (ver != h->version)
		return bks_fail(e, -EPROTO, "%s version %u not supported (this build reads %u)",
		                h->what, ver, h->version);
	if (size != h->size)
		return bks_fail(e, -EINVAL, "%s length %u, expected %u", h->what, size, h->size);
	if (!check_seal(buf, h->size))
		return bks_fail(e, -EBADMSG, "%s checksum mismatch", h->what);
	return 0;
}

static int valid_strip(uint32_t s)
{
	return s >= (64u << 10) && s <= (1u << 20) && (s & (s - 1)) == 0;
}

void lbl_encode(const lbl_disk *l, uint8_t buf[LBL_SIZE])
{
	bks_wcur c;
	put_head(&c, buf, &LBL_HEAD);
	cur_put_bytes(&c, l->array_uuid, BKS_UUID_LEN);
	cur_put_bytes(&c, l->disk_uuid, BKS_UUID_LEN);
	cur_put32(&c, l->role);
	cur_put32(&c, l->slot);
	cur_put32(&c, l->ndisks);
	cur_put32(&c, l->strip_size);
	cur_put64(&c, l->rows);
	cur_put64(&c, l->disk_size);
	cur_put64(&c, l->features);
	cur_put64(&c, l->created_ns);
	cur_put64(&c, l->label_gen);
	cur_put_bytes(&c, l->name, ARR_NAME_MAX);
	put_seal(&c, buf, &LBL_HEAD);
}

int lbl_decode(const uint8_t *buf, size_t len, lbl_disk *out, bks_err *e)
{
	bks_rcur c;
	int rc;
	memset(out, 0, sizeof(*out));

	if ((rc = get_head(&c, buf, len, &LBL_HEAD, e)))
		return rc;
	cur_get_bytes(&c, out->array_uuid, BKS_UUID_LEN);
	cur_get_bytes(&c, out->disk_uuid, BKS_UUID_LEN);
	out->role = cur_get32(&c);
	out->slot = cur_get32(&c);
	out->ndisks = cur_get32(&c);
	out->strip_size = cur_get32(&c);
	out->rows = cur_get64(&c);
	out->disk_size = cur_get64(&c);
	out->features = cur_get64(&c);
	out->created_ns = cur_get64(&c);
	out->label_gen = cur_get64(&c);
	cur_get_bytes(&c, out->name, ARR_NAME_MAX);
	if (c.err)
		return bks_fail(e, -EINVAL, "label truncated");
	if (out->name[ARR_NAME_MAX - 1] != '\0')
		return bks_fail(e, -EINVAL, "label: array name not terminated");
	if (bks_uuid_is_zero(out->array_uuid) || bks_uuid_is_zero(out->disk_uuid))
		return bks_fail(e, -EINVAL, "label: zero UUID");
	if (out->role != LBL_ROLE_MEMBER && out->role != LBL_ROLE_SPARE)
		return bks_fail(e, -EINVAL, "label: unknown role %u", out->role);
	if (out->ndisks < ARR_MIN_DISKS || out->ndisks > ARR_MAX_DISKS)
		return bks_fail(e, -EINVAL, "label: array width %u out of range", out->ndisks);
	if (out->role == LBL_ROLE_MEMBER && out->slot >= out->ndisks)
		return bks_fail(e, -EINVAL, "label: slot %u >= width %u", out->slot,
		                out->ndisks);
	if (!valid_strip(out->strip_size))
		return bks_fail(e, -EINVAL, "label: strip size %u invalid", out->strip_size);
	if (out->rows == 0 || out->rows > (out->disk_size - ARR_DATA_OFF) / out->strip_size ||
	    out->disk_size <= ARR_DATA_OFF)
		return bks_fail(e, -EINVAL, "label: %llu rows do not fit a %llu-byte disk",
		                (unsigned long long)out->rows,
		                (unsigned long long)out->disk_size);
	if (out->features != 0)
		return bks_fail(e, -EPROTO, "label: unknown feature bits 0x%llx",
		                (unsigned long long)out->features);
	return 0;
}

void sb_encode(const sb_super *s, uint8_t buf[SB_SLOT_SIZE])
{
	bks_wcur c;
	put_head(&c, buf, &SB_HEAD);
	cur_put_bytes(&c, s->array_uuid, BKS_UUID_LEN);
	cur_put64(&c, s->seq);
	cur_put64(&c, s->time_ns);
	cur_put32(&c, s->ndisks);
	cur_put32(&c, s->strip_size);
	cur_put64(&c, s->rows);
	cur_put64(&c, s->hwm);
	cur_put32(&c, s->nspares);
	cur_put32(&c, s->root_len);
	for (uint32_t i = 0; i < s->ndisks; i++) {
		const sb_member *m = &s->member[i];
		cur_put_bytes(&c, m->cur_uuid, BKS_UUID_LEN);
		cur_put32(&c, m->cur_state);
		cur_put32(&c, m->flags);
		cur_put_bytes(&c, m->incoming_uuid, BKS_UUID_LEN);
		cur_put64(&c, m->cursor);
	}
	for (uint32_t i = 0; i < s->nspares; i++)
		cur_put_bytes(&c, s->spare_uuid[i], BKS_UUID_LEN);
	cur_put32(&c, s->scrub.state);
	cur_put32(&c, 0); /* pad */
	cur_put64(&c, s->scrub.cursor);
	cur_put64(&c, s->scrub.rows_checked);
	cur_put64(&c, s->scrub.errors_found);
	cur_put64(&c, s->scrub.repaired);
	cur_put64(&c, s->scrub.unrecoverable);
	cur_put64(&c, s->scrub.started_ns);
	cur_put64(&c, s->scrub.finished_ns);
	cur_put_bytes(&c, s->root, s->root_len);
	put_seal(&c, buf, &SB_HEAD);
}

int sb_decode(const uint8_t *buf, size_t len, sb_super *out, bks_err *e)
{
	bks_rcur c;
	int rc;
	memset(out, 0, sizeof(*out));

	if ((rc = get_head(&c, buf, len, &SB_HEAD, e)))
		return rc;
	cur_get_bytes(&c, out->array_uuid, BKS_UUID_LEN);
	out->seq = cur_get64(&c);
	out->time_ns = cur_get64(&c);
	out->ndisks = cur_get32(&c);
	out->strip_size = cur_get32(&c);
	out->rows = cur_get64(&c);
	out->hwm = cur_get64(&c);
	out->nspares = cur_get32(&c);
	out->root_len = cur_get32(&c);
	if (out->ndisks < ARR_MIN_DISKS || out->ndisks > ARR_MAX_DISKS)
		return bks_fail(e, -EINVAL, "superblock: width %u out of range", out->ndisks);
	if (out->nspares > ARR_MAX_SPARES)
		return bks_fail(e, -EINVAL, "superblock: %u spares, max %d", out->nspares,
		                ARR_MAX_SPARES);
	if (out->root_len > ARR_ROOT_MAX)
		return bks_fail(e, -EINVAL, "superblock: root of %u bytes, max %d",
		                out->root_len, ARR_ROOT_MAX);
	if (!valid_strip(out->strip_size))
		return bks_fail(e, -EINVAL, "superblock: strip size %u invalid", out->strip_size);
	if (out->rows == 0 || out->hwm > out->rows)
		return bks_fail(e, -EINVAL, "superblock: high-water row %llu beyond %llu rows",
		                (unsigned long long)out->hwm, (unsigned long long)out->rows);
	for (uint32_t i = 0; i < out->ndisks; i++) {
		sb_member *m = &out->member[i];
		cur_get_bytes(&c, m->cur_uuid, BKS_UUID_LEN);
		m->cur_state = cur_get32(&c);
		m->flags = cur_get32(&c);
		cur_get_bytes(&c, m->incoming_uuid, BKS_UUID_LEN);
		m->cursor = cur_get64(&c);
		if (m->cur_state < SB_ONLINE || m->cur_state > SB_REMOVED)
			return bks_fail(e, -EINVAL, "superblock: slot %u state %u unknown", i,
			                m->cur_state);
		if ((m->cur_state == SB_REMOVED) != bks_uuid_is_zero(m->cur_uuid))
			return bks_fail(e, -EINVAL, "superblock: slot %u disk/state mismatch", i);
		if (m->flags & ~SBM_REPLACING)
			return bks_fail(e, -EINVAL, "superblock: slot %u flags 0x%x", i, m->flags);
		if ((m->flags & SBM_REPLACING) && bks_uuid_is_zero(m->incoming_uuid))
			return bks_fail(e, -EINVAL, "superblock: slot %u replacing nothing", i);
		if (m->cursor > out->rows)
			return bks_fail(e, -EINVAL, "superblock: slot %u cursor past the end", i);
	}
	for (uint32_t i = 0; i < out->nspares; i++)
		cur_get_bytes(&c, out->spare_uuid[i], BKS_UUID_LEN);
	out->scrub.state = cur_get32(&c);
	(void)cur_get32(&c);
	out->scrub.cursor = cur_get64(&c);
	out->scrub.rows_checked = cur_get64(&c);
	out->scrub.errors_found = cur_get64(&c);
	out->scrub.repaired = cur_get64(&c);
	out->scrub.unrecoverable = cur_get64(&c);
	out->scrub.started_ns = cur_get64(&c);
	out->scrub.finished_ns = cur_get64(&c);
	if (out->scrub.state > SCRUB_PAUSED)
		return bks_fail(e, -EINVAL, "superblock: scrub state %u", out->scrub.state);
	cur_get_bytes(&c, out->root, out->root_len);
	if (c.err || c.pos > SB_SLOT_SIZE - 8)
		return bks_fail(e, -EINVAL, "superblock truncated");
	return 0;
}

uint64_t sb_content_hash(const uint8_t buf[SB_SLOT_SIZE])
{
	return bks_xxh3(buf, SB_SLOT_SIZE);
}

const char *sb_state_name(uint32_t st)
{
	switch (st) {
	case SB_ONLINE: return "ONLINE";
	case SB_FAULTED: return "FAULTED";
	case SB_OFFLINE: return "OFFLINE";
	case SB_REMOVED: return "REMOVED";
	default: return "?";
	}
}
