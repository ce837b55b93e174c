/* storage/label.c: see label.h and docs/format.md.
 *
 * Encoding is explicit (put/get little-endian at fixed offsets), never a struct
 * memcpy, so the format does not depend on the compiler and a decoder can check
 * every field before anything uses it.
 */
#include <config.h>

#include "storage/label.h"

#include <errno.h>
#include <string.h>

static const char LBL_MAGIC[8] = {'B', 'K', 'S', 'L', 'A', 'B', 'E', 'L'};
static const char SB_MAGIC[8] = {'B', 'K', 'S', 'S', 'U', 'P', 'E', 'R'};

/* Cursor over a byte buffer. Reads past the end yield zeros and set overflow,
 * which the decoders turn into an error: a length field can never make us read
 * outside the buffer. */
typedef struct wcur {
	uint8_t *p;
	size_t len, pos;
} wcur;
typedef struct rcur {
	const uint8_t *p;
	size_t len, pos;
	int overflow;
} rcur;

static void put_bytes(wcur *c, const void *v, size_t n)
{
	BKS_PANIC_IF(c->pos + n > c->len, "label encode overflow");
	memcpy(c->p + c->pos, v, n);
	c->pos += n;
}
static void put32(wcur *c, uint32_t v)
{
	uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
	put_bytes(c, b, 4);
}
static void put64(wcur *c, uint64_t v)
{
	put32(c, (uint32_t)v);
	put32(c, (uint32_t)(v >> 32));
}

static void get_bytes(rcur *c, void *v, size_t n)
{
	if (c->pos + n > c->len) {
		c->overflow = 1;
		memset(v, 0, n);
		return;
	}
	memcpy(v, c->p + c->pos, n);
	c->pos += n;
}
static uint32_t get32(rcur *c)
{
	uint8_t b[4];
	get_bytes(c, b, 4);
	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
	       (uint32_t)b[3] << 24;
}
static uint64_t get64(rcur *c)
{
	uint64_t lo = get32(c);
	return lo | (uint64_t)get32(c) << 32;
}

/* The checksum is the last 8 bytes of the structure's fixed size and covers every
 * byte before it (including unused padding, which must be zero on write). */
static void seal(uint8_t *buf, size_t size)
{
	uint64_t h = bks_xxh3(buf, size - 8);
	wcur c = {buf, size, size - 8};
	put64(&c, h);
}

static int check_seal(const uint8_t *buf, size_t size)
{
	rcur c = {buf, size, size - 8, 0};
	return get64(&c) == bks_xxh3(buf, size - 8);
}

static int valid_strip(uint32_t s)
{
	return s >= (64u << 10) && s <= (1u << 20) && (s & (s - 1)) == 0;
}

void lbl_encode(const lbl_disk *l, uint8_t buf[LBL_SIZE])
{
	wcur c = {buf, LBL_SIZE, 0};
	memset(buf, 0, LBL_SIZE);
	put_bytes(&c, LBL_MAGIC, 8);
	put32(&c, LBL_VERSION);
	put32(&c, LBL_SIZE);
	put_bytes(&c, l->array_uuid, BKS_UUID_LEN);
	put_bytes(&c, l->disk_uuid, BKS_UUID_LEN);
	put32(&c, l->role);
	put32(&c, l->slot);
	put32(&c, l->ndisks);
	put32(&c, l->strip_size);
	put64(&c, l->rows);
	put64(&c, l->disk_size);
	put64(&c, l->features);
	put64(&c, l->created_ns);
	put64(&c, l->label_gen);
	put_bytes(&c, l->name, ARR_NAME_MAX);
	seal(buf, LBL_SIZE);
}

int lbl_decode(const uint8_t *buf, size_t len, lbl_disk *out, bks_err *e)
{
	rcur c = {buf, len, 0, 0};
	char magic[8];
	memset(out, 0, sizeof(*out));

	if (len < LBL_SIZE)
		return bks_fail(e, -EINVAL, "label: %zu bytes, need %u", len, LBL_SIZE);
	get_bytes(&c, magic, 8);
	if (memcmp(magic, LBL_MAGIC, 8) != 0)
		return bks_fail(e, -ENOENT, "no bkstor label");
	uint32_t ver = get32(&c), size = get32(&c);
	if (ver != LBL_VERSION)
		return bks_fail(e, -EPROTO, "label version %u not supported (this build "
		                "reads %u)", ver, LBL_VERSION);
	if (size != LBL_SIZE)
		return bks_fail(e, -EINVAL, "label length %u, expected %u", size, LBL_SIZE);
	if (!check_seal(buf, LBL_SIZE))
		return bks_fail(e, -EBADMSG, "label checksum mismatch");
	get_bytes(&c, out->array_uuid, BKS_UUID_LEN);
	get_bytes(&c, out->disk_uuid, BKS_UUID_LEN);
	out->role = get32(&c);
	out->slot = get32(&c);
	out->ndisks = get32(&c);
	out->strip_size = get32(&c);
	out->rows = get64(&c);
	out->disk_size = get64(&c);
	out->features = get64(&c);
	out->created_ns = get64(&c);
	out->label_gen = get64(&c);
	get_bytes(&c, out->name, ARR_NAME_MAX);
	if (c.overflow)
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
	wcur c = {buf, SB_SLOT_SIZE, 0};
	memset(buf, 0, SB_SLOT_SIZE);
	put_bytes(&c, SB_MAGIC, 8);
	put32(&c, SB_VERSION);
	put32(&c, SB_SLOT_SIZE);
	put_bytes(&c, s->array_uuid, BKS_UUID_LEN);
	put64(&c, s->seq);
	put64(&c, s->time_ns);
	put32(&c, s->ndisks);
	put32(&c, s->strip_size);
	put64(&c, s->rows);
	put64(&c, s->hwm);
	put32(&c, s->nspares);
	put32(&c, s->root_len);
	for (uint32_t i = 0; i < s->ndisks; i++) {
		const sb_member *m = &s->member[i];
		put_bytes(&c, m->cur_uuid, BKS_UUID_LEN);
		put32(&c, m->cur_state);
		put32(&c, m->flags);
		put_bytes(&c, m->incoming_uuid, BKS_UUID_LEN);
		put64(&c, m->cursor);
	}
	for (uint32_t i = 0; i < s->nspares; i++)
		put_bytes(&c, s->spare_uuid[i], BKS_UUID_LEN);
	put32(&c, s->scrub.state);
	put32(&c, 0);
	put64(&c, s->scrub.cursor);
	put64(&c, s->scrub.rows_checked);
	put64(&c, s->scrub.errors_found);
	put64(&c, s->scrub.repaired);
	put64(&c, s->scrub.unrecoverable);
	put64(&c, s->scrub.started_ns);
	put64(&c, s->scrub.finished_ns);
	put_bytes(&c, s->root, s->root_len);
	seal(buf, SB_SLOT_SIZE);
}

int sb_decode(const uint8_t *buf, size_t len, sb_super *out, bks_err *e)
{
	rcur c = {buf, len, 0, 0};
	char magic[8];
	memset(out, 0, sizeof(*out));

	if (len < SB_SLOT_SIZE)
		return bks_fail(e, -EINVAL, "superblock: %zu bytes, need %u", len, SB_SLOT_SIZE);
	get_bytes(&c, magic, 8);
	if (memcmp(magic, SB_MAGIC, 8) != 0)
		return bks_fail(e, -ENOENT, "no superblock");
	uint32_t ver = get32(&c), size = get32(&c);
	if (ver != SB_VERSION)
		return bks_fail(e, -EPROTO, "superblock version %u not supported", ver);
	if (size != SB_SLOT_SIZE)
		return bks_fail(e, -EINVAL, "superblock length %u, expected %u", size,
		                SB_SLOT_SIZE);
	if (!check_seal(buf, SB_SLOT_SIZE))
		return bks_fail(e, -EBADMSG, "superblock checksum mismatch");
	get_bytes(&c, out->array_uuid, BKS_UUID_LEN);
	out->seq = get64(&c);
	out->time_ns = get64(&c);
	out->ndisks = get32(&c);
	out->strip_size = get32(&c);
	out->rows = get64(&c);
	out->hwm = get64(&c);
	out->nspares = get32(&c);
	out->root_len = get32(&c);
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
		get_bytes(&c, m->cur_uuid, BKS_UUID_LEN);
		m->cur_state = get32(&c);
		m->flags = get32(&c);
		get_bytes(&c, m->incoming_uuid, BKS_UUID_LEN);
		m->cursor = get64(&c);
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
		get_bytes(&c, out->spare_uuid[i], BKS_UUID_LEN);
	out->scrub.state = get32(&c);
	(void)get32(&c);
	out->scrub.cursor = get64(&c);
	out->scrub.rows_checked = get64(&c);
	out->scrub.errors_found = get64(&c);
	out->scrub.repaired = get64(&c);
	out->scrub.unrecoverable = get64(&c);
	out->scrub.started_ns = get64(&c);
	out->scrub.finished_ns = get64(&c);
	if (out->scrub.state > SCRUB_PAUSED)
		return bks_fail(e, -EINVAL, "superblock: scrub state %u", out->scrub.state);
	get_bytes(&c, out->root, out->root_len);
	if (c.overflow || c.pos > SB_SLOT_SIZE - 8)
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
