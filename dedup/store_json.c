/* dedup/store_json.c: see store_json.h. */
#include <config.h>

#include "dedup/store_json.h"

#include <stdio.h>

void store_stats_json(json *j, const store_stats *st)
{
	json_uint(j, "objects", st->objects);
	json_uint(j, "logical_bytes", st->logical_bytes);
	json_uint(j, "unique_chunks", st->unique_chunks);
	json_uint(j, "unique_raw_bytes", st->unique_raw_bytes);
	json_uint(j, "stored_bytes", st->stored_bytes);
	json_uint(j, "physical_bytes", st->physical_bytes);
	json_uint(j, "rows_data", st->rows_data);
	json_uint(j, "rows_meta", st->rows_meta);
	json_uint(j, "rows_free", st->rows_free);
	json_uint(j, "rows_total", st->rows_total);
	json_uint(j, "rows_reserved", st->rows_reserved);
	json_bool(j, "full", st->full);
	json_double(j, "dedup_ratio", st->dedup_ratio);
	json_double(j, "compression_ratio", st->compression_ratio);
	json_double(j, "live_fraction", st->live_fraction);
	json_uint(j, "index_entries", st->index_entries);
	json_uint(j, "index_runs", st->index_runs);
	json_uint(j, "index_ram_bytes", st->index_ram_bytes);
	/* Index reads (entry blocks, segment tables) by lookups, under the daemon's lock,
	 * and by PUTs' prefetches, outside it. */
	json_uint(j, "index_block_reads", st->index_block_reads);
	json_uint(j, "index_prefetch_reads", st->index_prefetch_reads);
	json_uint(j, "index_prefetch_dropped", st->index_prefetch_dropped);
}

void store_verify_json(json *j, const store_verify_report *rep, uint64_t objects_total)
{
	json_uint(j, "objects", objects_total);
	json_uint(j, "objects_done", rep->objects);
	json_uint(j, "chunks_checked", rep->chunks_checked);
	json_uint(j, "chunks_bad", rep->chunks_bad);
	json_uint(j, "bytes_checked", rep->bytes_checked);
	json_uint(j, "objects_damaged", rep->objects_damaged);
	json_arr_begin(j, "damaged");
	for (uint64_t i = 0; i < BKS_MIN(rep->objects_damaged, (uint64_t)16); i++)
		json_uint(j, NULL, rep->damaged_ids[i]);
	json_arr_end(j);
	json_uint(j, "repaired", rep->repaired);
	/* The first distinct chunks found bad, each with the first object met that
	 * references it. */
	json_arr_begin(j, "bad_chunks");
	for (uint32_t i = 0; i < rep->nbad && i < STORE_VERIFY_BAD; i++) {
		char hx[2 * 32 + 1];
		for (int k = 0; k < 32; k++)
			snprintf(hx + 2 * k, 3, "%02x", rep->bad[i].fp[k]);
		json_obj_begin(j, NULL);
		json_str(j, "fingerprint", hx);
		json_uint(j, "length", rep->bad[i].len);
		json_uint(j, "object", rep->bad[i].id);
		json_obj_end(j);
	}
	json_arr_end(j);
}
