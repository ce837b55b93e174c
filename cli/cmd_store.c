/* cli/cmd_store.c: `bkstorctl store ...`: the dedup store on an array, offline (the
 * daemon will serve the same verbs). */
#include <config.h>

#include "cli/cli.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/json.h"
#include "dedup/store.h"
#include "dedup/store_json.h"

static int need_disks(cli_ctx *c, int argc)
{
	return argc < 1 ? cli_usage(c, "no DISKs given") : 0;
}

static int open_store(cli_ctx *c, int argc, char **argv, store **out)
{
	bks_err e = {0};
	arr *a = cli_import_array(c, argv, argc, 1);
	if (!a)
		return CLI_FAIL;
	int r = store_open(a, NULL, out, &e);
	if (r < 0) {
		cli_err(c, "%s", bks_errmsg(&e, r));
		arr_close(a);
		return CLI_FAIL;
	}
	return CLI_OK;
}

int cmd_store_create(cli_ctx *c, int argc, char **argv)
{
	bks_err e = {0};
	store *s;
	int r = need_disks(c, argc);
	if (r)
		return r;
	arr *a = cli_import_array(c, argv, argc, 1);
	if (!a)
		return CLI_FAIL;
	r = store_create(a, NULL, &s, &e);
	if (r < 0) {
		cli_err(c, "%s", bks_errmsg(&e, r));
		arr_close(a);
		return CLI_FAIL;
	}
	store_close(s);
	if (c->json) {
		json j;
		json_init(&j, stdout, 1);
		json_obj_begin(&j, NULL);
		json_bool(&j, "created", 1);
		json_obj_end(&j);
		return json_finish(&j) ? CLI_FAIL : CLI_OK;
	}
	printf("store created\n");
	return CLI_OK;
}

int cmd_store_stats(cli_ctx *c, int argc, char **argv)
{
	store *s;
	store_stats st;
	char a1[32], a2[32], a3[32];
	int r = need_disks(c, argc);
	if (r || (r = open_store(c, argc, argv, &s)) != CLI_OK)
		return r;
	store_get_stats(s, &st);
	store_close(s);
	if (c->json) {
		json j;
		json_init(&j, stdout, 1);
		json_obj_begin(&j, NULL);
		store_stats_json(&j, &st);
		json_obj_end(&j);
		return json_finish(&j) ? CLI_FAIL : CLI_OK;
	}
	printf("objects: %llu\nlogical: %s\nunique:  %s in %llu chunks\nstored:  %s "
	       "(rows in use: %llu data, %llu metadata of %llu)\ndedup %.2fx, compression "
	       "%.2fx\nindex: %llu entries in %u runs, %llu bytes of RAM\n",
	       (unsigned long long)st.objects, bks_fmt_bytes(st.logical_bytes, a1, sizeof(a1)),
	       bks_fmt_bytes(st.unique_raw_bytes, a2, sizeof(a2)),
	       (unsigned long long)st.unique_chunks, bks_fmt_bytes(st.stored_bytes, a3, sizeof(a3)),
	       (unsigned long long)st.rows_data, (unsigned long long)st.rows_meta,
	       (unsigned long long)st.rows_total, st.dedup_ratio, st.compression_ratio,
	       (unsigned long long)st.index_entries, st.index_runs,
	       (unsigned long long)st.index_ram_bytes);
	if (st.full)
		printf("full: delete backups or add disks (%llu rows free, %llu reserved for "
		       "commits and garbage collection)\n", (unsigned long long)st.rows_free,
		       (unsigned long long)st.rows_reserved);
	return CLI_OK;
}

int cmd_store_verify(cli_ctx *c, int argc, char **argv)
{
	store *s;
	store_verify_report vr;
	int r = need_disks(c, argc);
	if (r || (r = open_store(c, argc, argv, &s)) != CLI_OK)
		return r;
	r = store_verify(s, &vr);
	store_close(s);
	if (r < 0) {
		cli_err(c, "verify: %s", strerror(-r));
		return CLI_FAIL;
	}
	if (c->json) {
		json j;
		json_init(&j, stdout, 1);
		json_obj_begin(&j, NULL);
		store_verify_json(&j, &vr, vr.objects);
		json_obj_end(&j);
		if (json_finish(&j))
			return CLI_FAIL;
	} else {
		printf("%llu objects, %llu chunks checked, %llu bad, %llu strips repaired by "
		       "the array\n", (unsigned long long)vr.objects,
		       (unsigned long long)vr.chunks_checked, (unsigned long long)vr.chunks_bad,
		       (unsigned long long)vr.repaired);
		for (uint64_t i = 0; i < vr.objects_damaged && i < 16; i++)
			printf("damaged: object %llu\n", (unsigned long long)vr.damaged_ids[i]);
	}
	return vr.objects_damaged ? CLI_FAIL : CLI_OK;
}

int cmd_store_rebuild_index(cli_ctx *c, int argc, char **argv)
{
	store *s;
	bks_err e = {0};
	int r = need_disks(c, argc);
	if (r || (r = open_store(c, argc, argv, &s)) != CLI_OK)
		return r;
	r = store_rebuild_index(s, &e);
	store_stats st;
	store_get_stats(s, &st);
	store_close(s);
	if (r < 0) {
		cli_err(c, "rebuild-index: %s", bks_errmsg(&e, r));
		return CLI_FAIL;
	}
	if (c->json) {
		json j;
		json_init(&j, stdout, 1);
		json_obj_begin(&j, NULL);
		json_uint(&j, "index_entries", st.index_entries);
		json_obj_end(&j);
		return json_finish(&j) ? CLI_FAIL : CLI_OK;
	}
	printf("index rebuilt: %llu entries\n", (unsigned long long)st.index_entries);
	return CLI_OK;
}
