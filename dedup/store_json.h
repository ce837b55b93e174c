/* dedup/store_json.h: the store's structs as JSON members, one writer per struct,
 * so bkstorctl (`store stats --json`, `store verify --json`) and bkstord (the
 * "capacity" of GET /api/v1/status, the verify job of GET /api/v1/jobs; docs/api.md)
 * write the same keys. Each writes members into the object the caller has open, so
 * the caller adds what only it knows (the daemon: bytes from the array's geometry,
 * a job's state and times). */
#ifndef BKS_STORE_JSON_H
#define BKS_STORE_JSON_H

#include <stdint.h>

#include "common/json.h"
#include "dedup/store.h"

/* objects, logical_bytes, unique_chunks, unique_raw_bytes, stored_bytes,
 * physical_bytes, rows_data, rows_meta, rows_free, rows_total, rows_reserved, full,
 * dedup_ratio, compression_ratio, live_fraction, index_entries, index_runs,
 * index_ram_bytes. */
void store_stats_json(json *j, const store_stats *st);

/* objects (how many the verify covers: objects_total; a finished store_verify
 * covered rep->objects), objects_done, chunks_checked, chunks_bad, bytes_checked,
 * objects_damaged, damaged (the first ids, at most 16), repaired. */
void store_verify_json(json *j, const store_verify_report *rep, uint64_t objects_total);

#endif /* BKS_STORE_JSON_H */
