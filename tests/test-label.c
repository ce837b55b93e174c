/* test-label: the label and superblock codecs: round trips, and every kind of damage
 * refused with its own error (magic, version, length, checksum, each range check). */
#include <config.h>

#include "tests/testutil.h"

#include <errno.h>
#include <string.h>

#include "storage/label.h"

static void fill_label(lbl_disk *l)
{
	memset(l, 0, sizeof(*l));
	memset(l->array_uuid, 0xa1, BKS_UUID_LEN);
	memset(l->disk_uuid, 0xd1, BKS_UUID_LEN);
	l->role = LBL_ROLE_MEMBER;
	l->slot = 3;
	l->ndisks = 10;
	l->strip_size = 256 << 10;
	l->disk_size = 4ull << 40;
	l->rows = (l->disk_size - ARR_DATA_OFF) / l->strip_size;
	l->created_ns = 1234567890123ull;
	l->label_gen = 42;
	strcpy(l->name, "vault");
}

static void fill_sb(sb_super *s)
{
	memset(s, 0, sizeof(*s));
	memset(s->array_uuid, 0xa1, BKS_UUID_LEN);
	s->seq = 77;
	s->time_ns = 99;
	s->ndisks = 6;
	s->strip_size = 64 << 10;
	s->rows = 1000;
	s->hwm = 500;
	s->nspares = 2;
	for (int i = 0; i < 6; i++) {
		memset(s->member[i].cur_uuid, 0x10 + i, BKS_UUID_LEN);
		s->member[i].cur_state = SB_ONLINE;
	}
	s->member[2].cur_state = SB_FAULTED;
	memset(s->member[2].incoming_uuid, 0x77, BKS_UUID_LEN);
	s->member[2].cursor = 123;
	memset(s->spare_uuid[0], 0x30, BKS_UUID_LEN);
	memset(s->spare_uuid[1], 0x31, BKS_UUID_LEN);
	s->scrub.state = SCRUB_PAUSED;
	s->scrub.cursor = 17;
	s->scrub.errors_found = 3;
	s->root_len = 5;
	memcpy(s->root, "hello", 5);
}

/* --seeds DIR: write a valid label and superblock as fuzzing seeds. */
static int write_seeds(const char *dir)
{
	uint8_t b[SB_SLOT_SIZE];
	char p[512];
	lbl_disk l;
	sb_super s;
	fill_label(&l);
	lbl_encode(&l, b);
	snprintf(p, sizeof(p), "%s/label.bin", dir);
	FILE *f = fopen(p, "wb");
	if (!f || fwrite(b, 1, LBL_SIZE, f) != LBL_SIZE)
		return 1;
	fclose(f);
	fill_sb(&s);
	sb_encode(&s, b);
	snprintf(p, sizeof(p), "%s/super.bin", dir);
	f = fopen(p, "wb");
	if (!f || fwrite(b, 1, SB_SLOT_SIZE, f) != SB_SLOT_SIZE)
		return 1;
	fclose(f);
	return 0;
}

int main(int argc, char **argv)
{
	uint8_t buf[SB_SLOT_SIZE];
	lbl_disk l, l2;
	sb_super s, s2;
	bks_err e = {0};

	if (argc == 3 && !strcmp(argv[1], "--seeds"))
		return write_seeds(argv[2]);
	fill_label(&l);
	lbl_encode(&l, buf);
	CHECK(lbl_decode(buf, LBL_SIZE, &l2, &e) == 0, "label decodes: %s", e.msg);
	CHECK(!memcmp(&l, &l2, sizeof(l)), "label round trip");
	CHECK(lbl_decode(buf, LBL_SIZE - 1, &l2, &e) == -EINVAL, "short buffer");

	uint8_t b2[LBL_SIZE];
	memcpy(b2, buf, LBL_SIZE);
	b2[0] = 'X';
	CHECK(lbl_decode(b2, LBL_SIZE, &l2, &e) == -ENOENT, "bad magic: %s", e.msg);
	memcpy(b2, buf, LBL_SIZE);
	b2[8] = 9;
	CHECK(lbl_decode(b2, LBL_SIZE, &l2, &e) == -EPROTO, "bad version: %s", e.msg);
	memcpy(b2, buf, LBL_SIZE);
	b2[200] ^= 1;
	CHECK(lbl_decode(b2, LBL_SIZE, &l2, &e) == -EBADMSG, "bit flip: %s", e.msg);

	/* Field checks: re-encode a bad value (checksum right, field wrong). */
	static const char *const lcases[] = {"zero uuid", "role", "width", "slot",
	                                     "strip", "rows", "features", "name"};
	for (size_t i = 0; i < BKS_ARRAY_SIZE(lcases); i++) {
		fill_label(&l);
		switch (i) {
		case 0: memset(l.disk_uuid, 0, BKS_UUID_LEN); break;
		case 1: l.role = 7; break;
		case 2: l.ndisks = 33; break;
		case 3: l.slot = 10; break;
		case 4: l.strip_size = 100000; break;
		case 5: l.rows = l.rows + 1; break;
		case 6: l.features = 1; break;
		case 7: memset(l.name, 'x', sizeof(l.name)); break;
		}
		lbl_encode(&l, buf);
		int r = lbl_decode(buf, LBL_SIZE, &l2, &e);
		CHECK(r == -EINVAL || r == -EPROTO, "label %s refused (%d: %s)", lcases[i], r,
		      e.msg);
	}

	fill_sb(&s);
	sb_encode(&s, buf);
	CHECK(sb_decode(buf, SB_SLOT_SIZE, &s2, &e) == 0, "superblock decodes: %s", e.msg);
	CHECK(!memcmp(&s, &s2, sizeof(s)), "superblock round trip");
	buf[300] ^= 0x40;
	CHECK(sb_decode(buf, SB_SLOT_SIZE, &s2, &e) == -EBADMSG, "sb bit flip: %s", e.msg);
	for (int i = 0; i < 9; i++) {
		fill_sb(&s);
		switch (i) {
		case 0: s.ndisks = 3; break;
		case 1: s.nspares = 17; s.ndisks = 4; break;
		case 2: s.root_len = 300; s.root_len = ARR_ROOT_MAX + 1; break;
		case 3: s.hwm = s.rows + 1; break;
		case 4: s.member[1].cur_state = 9; break;
		case 5: s.member[1].cur_state = SB_REMOVED; break; /* uuid still set */
		case 6: s.member[1].flags = SBM_REPLACING; break;  /* replacing nothing */
		case 7: s.member[2].cursor = s.rows + 1; break;
		case 8: s.scrub.state = 5; break;
		}
		if (i == 1 || i == 2) {
			/* encode would overflow the arrays; craft the field by hand */
			fill_sb(&s);
			sb_encode(&s, buf);
			/* nspares at offset 8+4+4+16+8+8+4+4+8+8 = 72, root_len at 76 */
			uint32_t v = i == 1 ? 17 : ARR_ROOT_MAX + 1;
			memcpy(buf + (i == 1 ? 72 : 76), &v, 4);
			uint64_t h = bks_xxh3(buf, SB_SLOT_SIZE - 8);
			memcpy(buf + SB_SLOT_SIZE - 8, &h, 8);
		} else {
			sb_encode(&s, buf);
		}
		int r = sb_decode(buf, SB_SLOT_SIZE, &s2, &e);
		CHECK(r == -EINVAL, "superblock case %d refused (%d: %s)", i, r, e.msg);
	}
	return tu_finish();
}
