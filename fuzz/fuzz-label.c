/* fuzz-label: libFuzzer target for the disk label and superblock decoders (the
 * bytes import reads from any disk it is given).
 * Property: decoding never reads out of bounds or crashes; whatever decodes
 * re-encodes to bytes that decode to the same structure. The input is tried as-is
 * (checksum must hold) and re-sealed (so the field checks behind the checksum are
 * reached too). */
#include <config.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/bks.h"
#include "storage/label.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void reseal(uint8_t *b, size_t n)
{
	uint64_t h = bks_xxh3(b, n - 8);
	memcpy(b + n - 8, &h, 8); /* little-endian hosts only; fine for a fuzzer */
}

static void check_label(const uint8_t *b, size_t n)
{
	lbl_disk l, l2;
	uint8_t enc[LBL_SIZE];
	if (lbl_decode(b, n, &l, NULL) != 0)
		return;
	lbl_encode(&l, enc);
	if (lbl_decode(enc, LBL_SIZE, &l2, NULL) != 0 || memcmp(&l, &l2, sizeof(l)))
		abort();
}

static void check_sb(const uint8_t *b, size_t n)
{
	static sb_super s, s2;
	static uint8_t enc[SB_SLOT_SIZE];
	if (sb_decode(b, n, &s, NULL) != 0)
		return;
	sb_encode(&s, enc);
	if (sb_decode(enc, SB_SLOT_SIZE, &s2, NULL) != 0 || memcmp(&s, &s2, sizeof(s)))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t buf[SB_SLOT_SIZE];
	check_label(data, size);
	check_sb(data, size);
	if (size >= LBL_SIZE) {
		memcpy(buf, data, LBL_SIZE);
		reseal(buf, LBL_SIZE);
		check_label(buf, LBL_SIZE);
	}
	if (size >= SB_SLOT_SIZE) {
		memcpy(buf, data, SB_SLOT_SIZE);
		reseal(buf, SB_SLOT_SIZE);
		check_sb(buf, SB_SLOT_SIZE);
	}
	return 0;
}
