/* fuzz-scsi: libFuzzer target for proto/scsi.c (CDB decoding, MODE SELECT pages,
 * the encoders' bounds).
 *
 * Properties: scsi_cdb_parse reads only the bytes it is given (ASan) and, when it
 * accepts a CDB, the CDB was at least its group's length and a READ/WRITE-like
 * decode has the fields the bytes say (the LBA and length re-read here for the
 * 10- and 16-byte forms); an INVALID FIELD answer names a byte inside the CDB.
 * scsi_mode_select_page on arbitrary bytes never writes outside the mode struct and
 * a page it accepts encodes back (MODE SENSE current values) to the same changeable
 * bits. The encoders never write past the capacity they are given (a short buffer
 * with a canary after it). */
#include <config.h>

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proto/scsi.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	scsi_cdb c;
	int field;
	if (size < 1)
		return 0;
	uint8_t mode = data[0];
	data++, size--;
	/* a copy of exactly size bytes, so ASan sees any read past them */
	uint8_t *b = malloc(size ? size : 1);
	memcpy(b, data, size);
	int r = scsi_cdb_parse(b, size, &c, &field);
	if (r == 0) {
		assert(size >= scsi_cdb_len(b[0]));
		if (b[0] == SCSI_READ10 || b[0] == SCSI_WRITE10)
			assert(c.lba == be_get32(b + 2) && c.nblocks == be_get16(b + 7));
		if (b[0] == SCSI_READ16 || b[0] == SCSI_WRITE16)
			assert(c.lba == be_get64(b + 2) && c.nblocks == be_get32(b + 10));
	} else if (r == -EINVAL) {
		assert(field >= 0 && (size_t)field < size);
	}
	/* MODE SELECT pages */
	scsi_mode m = {.wce = mode & 1, .dexcpt = 1};
	r = scsi_mode_select_page(&m, b, size, &field);
	if (r == 0) {
		uint8_t out[64];
		uint32_t n = scsi_mode_pages(&m, 0, b[0] & 0x3f, 0, out, sizeof(out));
		/* (PS, bit 7 of byte 0, is the target's: the saveable pages set it) */
		assert(n >= 2 && n <= size && (out[0] & 0x3f) == (b[0] & 0x3f) && out[1] == b[1]);
		if ((b[0] & 0x3f) == SCSI_MP_CACHING)
			assert((out[2] & 0x04) == (b[2] & 0x04));
	} else if (r == -EINVAL) {
		assert(field >= 0 && (size_t)field < (size > 2 ? size : 2));
	}
	/* encoders: a capacity from the input, a canary after it */
	uint32_t cap = size ? data[size - 1] : 0;
	uint8_t *ob = malloc(cap + 1);
	ob[cap] = 0xa5;
	uint8_t naa[16] = {0x60};
	scsi_ident id = {.vendor = "BKSTOR", .product = "LUN", .revision = "1", .serial = "s",
	                 .naa = naa, .target_name = size > 2 ? "iqn.x:y" : NULL, .block_size = 512,
	                 .nblocks = 1000, .max_xfer_blocks = 16, .opt_xfer_blocks = 8};
	scsi_inquiry_std(&id, ob, cap);
	scsi_inquiry_vpd(&id, size > 1 ? b[1] : 0, ob, cap);
	scsi_mode_pages(&m, mode & 3, size > 2 ? b[2] & 0x3f : 0x3f, size > 3 ? b[3] : 0, ob, cap);
	uint8_t sense[SCSI_SENSE_FIXED_LEN + 1];
	sense[SCSI_SENSE_FIXED_LEN] = 0x5a;
	scsi_sense_fixed(sense, mode, size ? b[0] << 8 : 0, mode & 2, (uint32_t)size, mode & 4,
	                 (int)cap - 1, (mode >> 4) - 8);
	assert(ob[cap] == 0xa5 && sense[SCSI_SENSE_FIXED_LEN] == 0x5a);
	free(ob);
	free(b);
	return 0;
}
