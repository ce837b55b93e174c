/* test-store-dedup: five backup generations (a 32 MiB base, 2% changed per
 * generation: overwrites, insertions, deletions) stored one after another, each
 * committed; the physical space that generations 2-5 add (rows newly in use, data
 * and metadata) is below 10% of their logical size; all five read back identical. */
#include <config.h>

#include "tests/testutil.h"

#include <stdlib.h>
#include <string.h>

#include "dedup/store.h"

#define N 6
#define GENS 5

int main(void)
{
	const char *dir = tu_tmpdir("store-dedup");
	char *paths[N], p[600];
	store *s = NULL;
	bks_err e = {0};
	int r;

	REQUIRE(tu_generations(dir, 32u << 20, GENS, 0.02, 1) == 0, "making generations");
	arr *a = tu_make_array(dir, N, 128, NULL, paths);
	r = store_create(a, NULL, &s, &e);
	REQUIRE(r == 0, "store create: %s", bks_errmsg(&e, r));
	uint64_t ids[GENS], phys_before = 0, logical_later = 0, phys_after = 0;
	for (int g = 0; g < GENS; g++) {
		size_t len;
		snprintf(p, sizeof(p), "%s/gen%02d.img", dir, g + 1);
		uint8_t *data = tu_read_file(p, &len);
		REQUIRE(data, "reading %s", p);
		store_stats st;
		store_get_stats(s, &st);
		if (g == 1)
			phys_before = st.physical_bytes;
		r = store_put(s, data, len, &ids[g]);
		CHECK(r == 0, "put gen %d: %d", g + 1, r);
		r = store_commit(s, &e);
		CHECK(r == 0, "commit: %s", bks_errmsg(&e, r));
		store_get_stats(s, &st);
		if (g >= 1)
			logical_later += len;
		phys_after = st.physical_bytes;
		printf("gen %d: %zu bytes, physical now %llu (data rows %llu, meta rows %llu), "
		       "dedup %.2f\n", g + 1, len, (unsigned long long)st.physical_bytes,
		       (unsigned long long)st.rows_data, (unsigned long long)st.rows_meta,
		       st.dedup_ratio);
		free(data);
	}
	double added = (double)(phys_after - phys_before) / (double)logical_later;
	printf("generations 2-5: %llu logical bytes, %llu physical bytes added (%.2f%%)\n",
	       (unsigned long long)logical_later, (unsigned long long)(phys_after - phys_before),
	       100 * added);
	CHECK(added < 0.10, "physical added by generations 2-5 is %.2f%% of logical", 100 * added);
	for (int g = 0; g < GENS; g++) {
		size_t len, got;
		snprintf(p, sizeof(p), "%s/gen%02d.img", dir, g + 1);
		uint8_t *want = tu_read_file(p, &len), *buf = malloc(len + 1);
		r = store_read(s, ids[g], 0, buf, len + 1, &got);
		CHECK(r == 0 && got == len && !memcmp(buf, want, len), "gen %d reads back", g + 1);
		free(want);
		free(buf);
	}
	store_close(s);
	return tu_finish();
}
