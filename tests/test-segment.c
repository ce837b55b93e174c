/* test-segment: the segment codec: items in (compressible and not), row sealed,
 * header and table decode, every item checks and decodes to its bytes; damage to
 * the header, the table or an item is refused with its own error; a full segment
 * says -ENOSPC. --seeds DIR writes a valid row for the fuzzer. */
#include <config.h>

#include "tests/testutil.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dedup/segment.h"

#define ROW (256u << 10)

static int ptr_eq(const seg_ptr *a, const seg_ptr *b)
{
	return a->seg_id == b->seg_id && a->row == b->row && a->off == b->off &&
	       a->slen == b->slen && a->rlen == b->rlen && a->codec == b->codec &&
	       a->kind == b->kind && a->xxh == b->xxh;
}

static const uint8_t uuid[BKS_UUID_LEN] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

int main(int argc, char **argv)
{
	seg_builder *b;
	seg_ptr ptr[64];
	uint8_t *items[64];
	uint32_t lens[64];
	int n = 0, r;
	bks_rng rng;

	bks_rng_seed(&rng, 3);
	REQUIRE(seg_builder_new(ROW, 3, &b) == 0, "builder");
	seg_begin(b, SEG_DATA, 77, 5, 9, uuid);
	for (;;) {
		uint32_t len = 1 + (uint32_t)bks_rng_below(&rng, 40000);
		uint8_t *d = malloc(len), fp[FP_LEN];
		if (n % 2)
			bks_rng_fill(&rng, d, len);
		else
			for (uint32_t i = 0; i < len; i++)
				d[i] = (uint8_t)(i / 100);
		memset(fp, n, FP_LEN);
		r = seg_add(b, fp, d, len, &ptr[n]);
		if (r == -ENOSPC) {
			free(d);
			break;
		}
		REQUIRE(r == 0, "add item %d: %d", n, r);
		items[n] = d;
		lens[n] = len;
		n++;
		REQUIRE(n < 64, "too many items");
	}
	CHECK(n >= 6, "a 256 KiB segment takes %d items", n);
	const uint8_t *row = seg_seal(b);
	if (argc == 3 && !strcmp(argv[1], "--seeds")) {
		char p[600];
		snprintf(p, sizeof(p), "%s/row.bin", argv[2]);
		FILE *f = fopen(p, "wb");
		uint8_t k = 0;
		int ok = f && fwrite(&k, 1, 1, f) == 1 && fwrite(row, 1, 16383, f) == 16383;
		if (f)
			fclose(f);
		seg_builder_free(b);
		return ok ? 0 : 1;
	}
	bks_err e = {0};
	CHECK(seg_verify_row(row, ROW, &e) == 0, "row verifies: %s", e.msg);
	seg_header h;
	CHECK(seg_header_decode(row, ROW, &h, &e) == 0 && h.seg_id == 77 && h.row == 5 &&
	      h.txg == 9 && h.nitems == (uint32_t)n && h.kind == SEG_DATA, "header fields");
	seg_entry *ents = calloc((size_t)n, sizeof(*ents));
	CHECK(seg_table_decode(&h, row + h.table_off, ROW - h.table_off, ents, &e) == 0, "table");
	int compressed = 0;
	for (int i = 0; i < n; i++) {
		uint8_t *out = malloc(lens[i]);
		seg_ptr p;
		seg_ptr_from_entry(&h, &ents[i], &p);
		CHECK(ptr_eq(&p, &ptr[i]), "pointer %d from the table equals the one returned", i);
		CHECK(seg_item_ok(&ptr[i], row + ptr[i].off), "item %d checksum", i);
		CHECK(seg_item_decode(NULL, &ptr[i], row + ptr[i].off, out, lens[i]) == 0 &&
		      !memcmp(out, items[i], lens[i]), "item %d decodes to its bytes", i);
		compressed += ptr[i].codec == SEG_ZSTD;
		uint8_t enc[SEG_PTR_ENC];
		seg_ptr q;
		seg_ptr_encode(&ptr[i], enc);
		seg_ptr_decode(enc, &q);
		CHECK(ptr_eq(&q, &ptr[i]), "pointer %d encodes", i);
		free(out);
	}
	CHECK(compressed > 0 && compressed < n, "%d of %d items compressed (random ones raw)",
	      compressed, n);
	/* Damage. */
	uint8_t *bad = malloc(ROW);
	memcpy(bad, row, ROW);
	bad[0] ^= 1;
	CHECK(seg_verify_row(bad, ROW, &e) == -ENOENT, "bad magic: %s", e.msg);
	memcpy(bad, row, ROW);
	bad[100] ^= 1;
	CHECK(seg_verify_row(bad, ROW, &e) == -EBADMSG, "header bit flip: %s", e.msg);
	memcpy(bad, row, ROW);
	bad[h.table_off + 5] ^= 1;
	CHECK(seg_verify_row(bad, ROW, &e) == -EBADMSG, "table bit flip: %s", e.msg);
	memcpy(bad, row, ROW);
	bad[ptr[2].off + 1] ^= 1;
	CHECK(seg_verify_row(bad, ROW, &e) == -EBADMSG, "item bit flip: %s", e.msg);
	CHECK(!seg_item_ok(&ptr[2], bad + ptr[2].off), "item check fails");
	seg_ptr other = ptr[2];
	other.seg_id = 78; /* same bytes, another segment: a stale pointer */
	CHECK(!seg_item_ok(&other, row + ptr[2].off), "a pointer of another segment fails");
	for (int i = 0; i < n; i++)
		free(items[i]);
	free(ents);
	free(bad);
	seg_builder_free(b);
	return tu_finish();
}
