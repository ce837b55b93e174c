/* fuzz-segment: libFuzzer target for the bytes the store reads back from the array:
 * segment rows (header, item table, item checksums), content-map blocks, intent
 * log records and the store records inside them.
 * Properties: no crash or out-of-bounds read on any input; a row that verifies has
 * every item inside its data area; a map block that parses has the entry count its
 * length says. The first byte picks the parser; inputs are tried as-is and with
 * their checksums recomputed, so the field checks behind them are reached. */
#include <config.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "common/endian.h"
#include "dedup/segment.h"
#include "dedup/store_int.h"
#include "storage/ilog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void row_check(const uint8_t *row, size_t len)
{
	seg_header h;
	if (seg_verify_row(row, len, NULL) != 0)
		return;
	if (seg_header_decode(row, len, &h, NULL) != 0 || h.data_end > len ||
	    (uint64_t)h.table_off + (uint64_t)h.nitems * SEG_ENTRY_SIZE > len)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	uint8_t kind = data[0];
	data++;
	size--;
	if ((kind & 7) == 6) {
		/* A store record inside an intent log record (what replay applies): the
		 * input behind the magic, so the layout checks are reached. */
		uint8_t *rec = malloc(size + 4);
		memcpy(rec, "BKSL", 4);
		memcpy(rec + 4, data, size);
		if (store_logrec_check(rec, size + 4, 1024) == 0 &&
		    (size + 4 < 32 || le_get32(rec + 4) < 1 || le_get32(rec + 4) > 3))
			abort();
		free(rec);
		return 0;
	}
	if ((kind & 3) == 2) {
		/* An intent log record (as replay finds it in a disk's log area). */
		static const uint8_t uuid[BKS_UUID_LEN];
		size_t plen, rlen;
		if (ilog_check(data, size, uuid, 0, 0, &plen, &rlen) == 0 &&
		    (rlen > size || plen + ILOG_HDR > rlen))
			abort();
		return 0;
	}
	if (kind & 1) {
		uint32_t n;
		uint64_t first = size >= 16 ? le_get64(data + 8) : 0;
		if (map_block_parse(data, size, kind & 2, first, &n) == 0) {
			size_t esz = (kind & 2) ? MAP_LEAF_ENT : MAP_NODE_ENT;
			if (size != MAP_HDR + n * esz)
				abort();
		}
		return 0;
	}
	/* A segment row: 16 KiB of the input (zero-padded) as a row. */
	size_t len = 16384;
	uint8_t *row = calloc(1, len);
	memcpy(row, data, size < len ? size : len);
	row_check(row, len);
	/* Re-seal the header checksum and, if the table lies inside, its checksum too. */
	le_put32(row + 20, (uint32_t)len);
	uint32_t nitems = le_get32(row + 64), toff = le_get32(row + 72);
	if ((uint64_t)toff + (uint64_t)nitems * SEG_ENTRY_SIZE <= len)
		le_put64(row + 80, XXH3_64bits(row + toff, (size_t)nitems * SEG_ENTRY_SIZE));
	le_put64(row + SEG_HDR_SIZE - 8, XXH3_64bits(row, SEG_HDR_SIZE - 8));
	row_check(row, len);
	free(row);
	return 0;
}
