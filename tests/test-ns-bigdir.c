/* tests/test-ns-bigdir.c: one directory of 100 000 entries (fs/ns.c, version 2 pages).
 *
 *  - 100 000 files created in one directory with an ns_sync every 100; the rate at
 *    20 000 and at 100 000 entries is printed;
 *  - a flush after one create writes O(1) pages whatever the directory's size: at
 *    1 000, 10 000 and 100 000 entries, a create then a flush writes at most 3 pages,
 *    looks up at most 12 chunks in the index and stores at most 64 KiB (the whole
 *    rewrite of version 1 looked up every chunk of the directory: about 130 at
 *    100 000 entries, and hashed all its 2 MB);
 *  - a third unlinked, some renamed out and some in, a commit, a reopen of the store:
 *    every entry that should be there is found with its object, no other;
 *  - ns_readdir streams all of them in name order, and with creates and removes
 *    interleaved from its callback: no entry twice, none that existed throughout
 *    missing;
 *  - random creates and removes against a model, with flushes and reloads from the
 *    store (splits, emptied pages on the free list, their reuse);
 *  - after a sync (the intent log, no commit) and a crash, both directories come back
 *    as they were;
 *  - a full store records removes from a paged directory, syncs and commits them;
 *  - a version 1 directory past a page (as older builds wrote them) is read, and
 *    converted to version 2 by its first change.
 */
#include <config.h>

#include "tests/testutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/endian.h"
#include "fs/ns.h"

#define N 6
#define DISK_MB 160
#define NBIG 100000
#define NOTHER 1000
#define NPROBE 200         /* creates of each cost probe */
#define NPROBES 4

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static ns *open_ns(char **paths, store **sp)
{
	bks_err e = {0};
	arr *a = tu_import_array(paths, N, NULL);
	ns *n = NULL;
	if (!a || store_open(a, NULL, sp, &e) != 0) {
		fprintf(stderr, "open: %s\n", bks_errmsg(&e, -1));
		return NULL;
	}
	if (ns_open(*sp, &n, &e) != 0) {
		fprintf(stderr, "ns_open: %s\n", bks_errmsg(&e, -1));
		return NULL;
	}
	return n;
}

/* What one create then a sync (as an NFS CREATE + COMMIT) costs, averaged over k. */
struct cost {
	double pages, lookups, stored, raw, rate;
};

static struct cost create_cost(ns *n, uint64_t dir, const char *prefix, int k)
{
	store *s = ns_store(n);
	store_stats a, b;
	ns_stats na, nb;
	struct cost c = {0};
	char name[64];
	bks_err e = {0};
	REQUIRE_EXIT(ns_flush(n) == 0, "flush");
	store_get_stats(s, &a);
	ns_get_stats(n, &na);
	double t0 = now_s();
	for (int i = 0; i < k; i++) {
		/* Names spread over the directory, not only at its end. */
		snprintf(name, sizeof(name), "%s%06u", prefix, (unsigned)((i * 7919u) % NBIG));
		REQUIRE_EXIT(ns_create(n, dir, name, 0644, 0, 0, 1, NULL) == 0, "create %s", name);
		REQUIRE_EXIT(ns_sync(n, dir, &e) == 0, "sync");
	}
	c.rate = k / (now_s() - t0);
	store_get_stats(s, &b);
	ns_get_stats(n, &nb);
	c.pages = (double)(nb.dir_pages_written - na.dir_pages_written) / k;
	c.lookups = (double)(b.index_lookups - a.index_lookups) / k;
	c.stored = (double)(b.stored_bytes - a.stored_bytes) / k;
	c.raw = (double)(b.unique_raw_bytes - a.unique_raw_bytes) / k;
	return c;
}

static void check_cost(ns *n, uint64_t dir, const char *prefix, int entries)
{
	struct cost c = create_cost(n, dir, prefix, NPROBE);
	printf("# at %d entries, per create + sync: %.2f pages, %.1f index lookups, "
	       "%.0f bytes stored (%.0f raw); %.0f creates/s with a sync after each\n",
	       entries, c.pages, c.lookups, c.stored, c.raw, c.rate);
	CHECK(c.pages >= 1 && c.pages <= 3, "%.2f pages per create at %d entries", c.pages,
	      entries);
	/* The empty file's object is one put too: a few lookups besides the page's. */
	CHECK(c.lookups <= 12, "%.1f index lookups per create at %d entries", c.lookups,
	      entries);
	CHECK(c.stored <= 64 * 1024, "%.0f bytes stored per create at %d entries", c.stored,
	      entries);
}

/* --- readdir --- */

struct walk {
	ns *n;
	uint64_t dir;
	uint8_t *seen;           /* per "f" index: times listed */
	uint8_t *alive;          /* per "f" index: exists now */
	uint8_t *stable;         /* per "f" index: existed at the start, not removed since */
	int others, dup_other, count, bad_order, mutate, fails;
	char prev[NS_NAME_MAX + 1];
	unsigned rng;
	int next_new;
	char seen_new[4096];     /* "n" names listed (index) */
};

static unsigned rnd(unsigned *s)
{
	*s = *s * 1103515245u + 12345u;
	return *s >> 8;
}

static int walk_cb(void *ctx, const ns_dirent *d)
{
	struct walk *w = ctx;
	if (w->prev[0] && strcmp(w->prev, d->name) >= 0)
		w->bad_order++;
	snprintf(w->prev, sizeof(w->prev), "%s", d->name);
	w->count++;
	if (d->name[0] == 'f') {
		unsigned i = (unsigned)atoi(d->name + 1);
		if (i < NBIG)
			w->seen[i]++;
	} else if (d->name[0] == 'n') {
		unsigned i = (unsigned)atoi(d->name + 1);
		if (i < sizeof(w->seen_new) && w->seen_new[i]++)
			w->dup_other++;
	} else {
		w->others++;
	}
	if (!w->mutate || w->count % 50)
		return 0;
	/* Change the directory under the walk: 10 new names anywhere, 10 removed anywhere
	 * (before or after the walk's place). */
	char name[64];
	for (int k = 0; k < 10 && w->next_new < (int)sizeof(w->seen_new); k++) {
		snprintf(name, sizeof(name), "n%04d-%06u", w->next_new++, rnd(&w->rng) % NBIG);
		/* "n%04d" keeps the index first: atoi reads it. */
		if (ns_create(w->n, w->dir, name, 0644, 0, 0, 1, NULL) != 0)
			w->fails++;
	}
	for (int k = 0; k < 10; k++) {
		unsigned i = rnd(&w->rng) % NBIG;
		if (!w->alive[i])
			continue;
		snprintf(name, sizeof(name), "f%06u", i);
		if (ns_unlink(w->n, w->dir, name) != 0)
			w->fails++;
		w->alive[i] = 0;
		w->stable[i] = 0;
	}
	return 0;
}

/* --- random edits against a model --- */

enum { M = 6000 };
static uint8_t model_in[M];

static void model_name(char *name, size_t cap, unsigned i)
{
	/* Long names of varied length: fewer entries per page, more splits. */
	snprintf(name, cap, "m%05u-%.*s", i, (int)(i % 40),
	         "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
}

static int model_set(ns *n, uint64_t dir, unsigned i, int want)
{
	char name[64];
	model_name(name, sizeof(name), i);
	int r = want ? ns_create(n, dir, name, 0644, 0, 0, 1, NULL) : ns_unlink(n, dir, name);
	int bad = model_in[i] == want ? r != (want ? -EEXIST : -ENOENT) : r != 0;
	model_in[i] = (uint8_t)want;
	return bad;
}

static int model_count(void)
{
	int c = 0;
	for (unsigned i = 0; i < M; i++)
		c += model_in[i];
	return c;
}

static void model_run(ns *n, uint64_t dir, uint32_t seed)
{
	unsigned rng = seed;
	int bad = 0;
	store_obj_info in;
	uint64_t size0, size1;
	for (int op = 0; op < 40000; op++) {
		unsigned i = rnd(&rng) % M;
		bad += model_set(n, dir, i, rnd(&rng) % 100 < (op < 20000 ? 60u : 35u));
		if (op % 997 == 0)
			REQUIRE_EXIT(ns_flush(n) == 0, "flush");
	}
	CHECK(bad == 0, "%d model mismatches", bad);
	/* A range removed: its pages empty out onto the free list; names created again
	 * take them back (the object does not grow). */
	for (unsigned i = 1000; i < 4000; i++)
		bad += model_set(n, dir, i, 0);
	REQUIRE_EXIT(ns_flush(n) == 0, "flush");
	REQUIRE_EXIT(store_stat(ns_store(n), dir, &in) == 0, "stat");
	size0 = in.size;
	for (unsigned i = 1000; i < 4000; i += 8)
		bad += model_set(n, dir, i, 1);
	REQUIRE_EXIT(ns_flush(n) == 0, "flush");
	REQUIRE_EXIT(store_stat(ns_store(n), dir, &in) == 0, "stat");
	size1 = in.size;
	CHECK(bad == 0 && size1 <= size0, "%d model mismatches; %llu bytes, %llu before", bad,
	      (unsigned long long)size1, (unsigned long long)size0);
	printf("# model directory: %d entries, %llu bytes\n", model_count(),
	       (unsigned long long)size1);
	ns_attr a;
	CHECK(ns_getattr(n, dir, &a) == 0 && a.size == (uint64_t)model_count(),
	      "%llu entries, model %d", (unsigned long long)a.size, model_count());
}

static int model_check(ns *n, uint64_t dir)
{
	int bad = 0;
	char name[64];
	for (unsigned i = 0; i < M; i++) {
		model_name(name, sizeof(name), i);
		int r = ns_lookup(n, dir, name, NULL);
		bad += model_in[i] ? r != 0 : r != -ENOENT;
	}
	return bad;
}

/* --- version 1 directories of any size --- */

/* The version of directory id's object: 1 or 2 (its second 4 bytes). */
static uint32_t dir_version(store *s, uint64_t id, uint64_t *size)
{
	uint8_t h[8];
	size_t got = 0;
	store_obj_info in;
	if (store_stat(s, id, &in) != 0 || store_read(s, id, 0, h, 8, &got) != 0 || got != 8)
		return 0;
	*size = in.size;
	return le_get32(h + 4);
}

/* A big version 1 directory (as a build before version 2 wrote it) is read as it is,
 * and converted by its first change. */
static void v1_phase(const char *tdir)
{
	enum { NV = 3000 };
	char sub[512], name[64], *paths[N];
	bks_err e = {0};
	store *s;
	ns *n;
	ns_attr d;
	ns_params p;
	uint64_t size = 0;
	int fails = 0, bad = 0;
	snprintf(sub, sizeof(sub), "%s/v1", tdir);
	tu_mkdir(sub);
	arr *ar = tu_make_array(sub, N, 24, NULL, paths);
	REQUIRE_EXIT(ar && store_create(ar, NULL, &s, &e) == 0, "create: %s", bks_errmsg(&e, -1));
	ns_params_default(&p);
	p.dir_v1_max = 1u << 30; /* every directory version 1, as before */
	REQUIRE_EXIT(ns_format(s, 0755, &e) == 0 && ns_open_params(s, &p, &n, &e) == 0, "ns");
	REQUIRE_EXIT(ns_mkdir(n, ns_root(n), "d", 0755, 0, 0, &d) == 0, "mkdir");
	for (unsigned i = 0; i < NV; i++) {
		snprintf(name, sizeof(name), "file-%05u", i);
		fails += ns_create(n, d.id, name, 0644, 0, 0, 1, NULL) != 0;
	}
	REQUIRE_EXIT(fails == 0 && ns_commit(n, &e) == 0, "creates and commit");
	CHECK(dir_version(s, d.id, &size) == 1 && size > 4096, "version 1 of %llu bytes",
	      (unsigned long long)size);
	ns_close(n);
	store_close(s);
	REQUIRE_EXIT((n = open_ns(paths, &s)) != NULL, "reopen");
	for (unsigned i = 0; i < NV; i++) {
		snprintf(name, sizeof(name), "file-%05u", i);
		bad += ns_lookup(n, d.id, name, NULL) != 0;
	}
	CHECK(bad == 0 && dir_version(s, d.id, &size) == 1, "%d of %d missing from version 1",
	      bad, NV);
	REQUIRE_EXIT(ns_unlink(n, d.id, "file-00007") == 0 && ns_commit(n, &e) == 0, "unlink, commit");
	CHECK(dir_version(s, d.id, &size) == 2 && size % 4096 == 0,
	      "converted by its first change: version %u, %llu bytes",
	      dir_version(s, d.id, &size), (unsigned long long)size);
	ns_close(n);
	store_close(s);
	REQUIRE_EXIT((n = open_ns(paths, &s)) != NULL, "reopen");
	bad = 0;
	for (unsigned i = 0; i < NV; i++) {
		snprintf(name, sizeof(name), "file-%05u", i);
		bad += ns_lookup(n, d.id, name, NULL) != (i == 7 ? -ENOENT : 0);
	}
	CHECK(bad == 0, "%d names wrong after the conversion", bad);
	printf("ok - a version 1 directory of %d entries is read, and converted by its first "
	       "change\n",
	       NV);
	ns_close(n);
	store_close(s);
}

/* --- a full store --- */

/* A full store still records removes from a paged directory and commits them: its
 * pages come from the reserve (store_write_at_class), as a whole rewrite's did. */
static void full_phase(const char *tdir)
{
	enum { NF = 3000, OBJ = 1 << 20 };
	char sub[512], name[64], *paths[N];
	bks_err e = {0};
	store *s;
	ns *n;
	ns_attr d;
	store_stats st;
	int fails = 0, puts = 0, r;
	snprintf(sub, sizeof(sub), "%s/small", tdir);
	tu_mkdir(sub);
	arr *ar = tu_make_array(sub, N, 24, NULL, paths);
	REQUIRE_EXIT(ar && store_create(ar, NULL, &s, &e) == 0, "create: %s", bks_errmsg(&e, -1));
	REQUIRE_EXIT(ns_format(s, 0755, &e) == 0 && ns_open(s, &n, &e) == 0, "ns");
	REQUIRE_EXIT(ns_mkdir(n, ns_root(n), "d", 0755, 0, 0, &d) == 0, "mkdir");
	for (unsigned i = 0; i < NF; i++) {
		snprintf(name, sizeof(name), "file-%05u", i);
		fails += ns_create(n, d.id, name, 0644, 0, 0, 1, NULL) != 0;
	}
	REQUIRE_EXIT(fails == 0 && ns_commit(n, &e) == 0, "creates and commit");
	uint8_t *buf = malloc(OBJ);
	REQUIRE_EXIT(buf, "memory");
	for (uint64_t seed = 1;; seed++) {
		uint64_t id;
		tu_fill(seed, 0, 0, buf, OBJ);
		if ((r = store_put(s, buf, OBJ, &id)) == -ENOSPC)
			break;
		REQUIRE_EXIT(r == 0, "put: %d", r);
		puts++;
	}
	free(buf);
	store_get_stats(s, &st);
	CHECK(st.full, "the store is full after %d puts", puts);
	for (unsigned i = 0; i < NF; i += 2) {
		snprintf(name, sizeof(name), "file-%05u", i);
		if ((r = ns_unlink(n, d.id, name)) != 0)
			fails++;
		if (i % 200 == 198 && (r = ns_sync(n, d.id, &e)) != 0) {
			fprintf(stderr, "sync on a full store: %s\n", bks_errmsg(&e, r));
			fails++;
		}
	}
	CHECK(fails == 0, "%d removes or syncs failed on a full store", fails);
	CHECK((r = ns_commit(n, &e)) == 0, "commit on a full store: %s", bks_errmsg(&e, r));
	ns_close(n);
	store_close(s);
	REQUIRE_EXIT((n = open_ns(paths, &s)) != NULL, "reopen");
	int bad = 0;
	for (unsigned i = 0; i < NF; i++) {
		snprintf(name, sizeof(name), "file-%05u", i);
		r = ns_lookup(n, d.id, name, NULL);
		bad += i % 2 ? r != 0 : r != -ENOENT;
	}
	CHECK(bad == 0, "%d names wrong after the reopen", bad);
	printf("ok - a full store (%d puts) records %d removes from a paged directory, syncs "
	       "and commits them\n",
	       puts, NF / 2);
	ns_close(n);
	store_close(s);
}

int main(void)
{
	const char *tdir = tu_tmpdir_in("nsbig", "/dev/shm");
	char *paths[N];
	bks_err e = {0};
	store *s;
	ns *n;
	ns_attr a, big, other;
	char name[64];

	arr *ar = tu_make_array(tdir, N, DISK_MB, NULL, paths);
	REQUIRE(store_create(ar, NULL, &s, &e) == 0, "create: %s", bks_errmsg(&e, -1));
	REQUIRE(ns_format(s, 0755, &e) == 0, "format: %s", bks_errmsg(&e, -1));
	REQUIRE(ns_open(s, &n, &e) == 0, "ns_open: %s", bks_errmsg(&e, -1));
	REQUIRE(ns_mkdir(n, ns_root(n), "big", 0755, 0, 0, &big) == 0, "mkdir big");
	REQUIRE(ns_mkdir(n, ns_root(n), "other", 0755, 0, 0, &other) == 0, "mkdir other");

	/* 100 000 creates, a sync every 100. */
	uint64_t *ids = calloc(NBIG, sizeof(*ids));
	REQUIRE(ids, "memory");
	double t0 = now_s(), t20 = 0;
	int fails = 0;
	for (unsigned i = 0; i < NBIG; i++) {
		snprintf(name, sizeof(name), "f%06u", i);
		if (ns_create(n, big.id, name, 0644, 0, 0, 1, &a) != 0) {
			fails++;
			continue;
		}
		ids[i] = a.id;
		if (i % 100 == 99 && ns_sync(n, a.id, &e) != 0)
			fails++;
		if (i + 1 == 1000)
			check_cost(n, big.id, "c1k-", 1000);
		if (i + 1 == 10000)
			check_cost(n, big.id, "c10k-", 10000);
		if (i + 1 == 20000) {
			t20 = now_s() - t0;
			check_cost(n, big.id, "c20k-", 20000);
			t0 += now_s() - t0 - t20; /* the probe is not counted */
		}
	}
	double tall = now_s() - t0;
	CHECK(fails == 0, "%d creates or syncs failed", fails);
	printf("# creates with a sync every 100: first 20000 at %.0f/s, all %d at %.0f/s "
	       "(last 80000 at %.0f/s)\n",
	       20000 / t20, NBIG, NBIG / tall, 80000 / (tall - t20));
	check_cost(n, big.id, "c100k-", NBIG);
	ns_stats st;
	ns_get_stats(n, &st);
	printf("# directory pages written so far: %llu\n",
	       (unsigned long long)st.dir_pages_written);
	printf("ok - 100000 creates, a flush after one create writes O(1) pages\n");

	/* A third unlinked; every tenth renamed out to /other; NOTHER renamed in. */
	int removed = 0, moved_out = 0, r;
	fails = 0;
	for (unsigned i = 0; i < NOTHER; i++) {
		snprintf(name, sizeof(name), "in%05u", i);
		fails += ns_create(n, other.id, name, 0600, 0, 0, 1, NULL) != 0;
	}
	for (unsigned i = 0; i < NBIG; i++) {
		snprintf(name, sizeof(name), "f%06u", i);
		if (i % 3 == 0) {
			if ((r = ns_unlink(n, big.id, name)) != 0)
				fprintf(stderr, "unlink %s: %d\n", name, r);
			fails += r != 0;
			ids[i] = 0;
			removed++;
		} else if (i % 10 == 1) {
			char to[64];
			snprintf(to, sizeof(to), "out%06u", i);
			fails += ns_rename(n, big.id, name, other.id, to, 1) != 0;
			ids[i] = 0;
			moved_out++;
		}
		if (i % 5000 == 4999)
			fails += ns_sync(n, big.id, &e) != 0;
	}
	for (unsigned i = 0; i < NOTHER; i++) {
		char from[64];
		snprintf(from, sizeof(from), "in%05u", i);
		snprintf(name, sizeof(name), "f%06u", i * 3); /* the names of removed ones */
		if ((r = ns_rename(n, other.id, from, big.id, name, 1)) != 0)
			fprintf(stderr, "rename %s -> %s: %d\n", from, name, r);
		fails += r != 0;
		fails += ns_lookup(n, big.id, name, &a) != 0;
		ids[i * 3] = a.id;
	}
	CHECK(fails == 0, "%d unlinks, renames or syncs failed", fails);
	REQUIRE(ns_commit(n, &e) == 0, "commit: %s", bks_errmsg(&e, -1));
	ns_close(n);
	store_close(s);
	REQUIRE((n = open_ns(paths, &s)) != NULL, "reopen");

	/* Every entry found, with its object; none that should be gone. */
	int expect = 0, missing = 0, wrong = 0, extra = 0;
	uint64_t c1k = 0;
	for (unsigned i = 0; i < NBIG; i++) {
		snprintf(name, sizeof(name), "f%06u", i);
		r = ns_lookup(n, big.id, name, &a);
		if (ids[i]) {
			expect++;
			missing += r != 0;
			wrong += r == 0 && a.id != ids[i];
		} else {
			extra += r != -ENOENT;
		}
	}
	/* The "c..-" names of the cost probes, NPROBE each (7919 i mod NBIG are distinct
	 * for i < NPROBE). */
	static const char *const pfx[NPROBES] = {"c1k-", "c10k-", "c20k-", "c100k-"};
	for (int k = 0; k < NPROBES; k++)
		for (int i = 0; i < NPROBE; i++) {
			snprintf(name, sizeof(name), "%s%06u", pfx[k], (unsigned)((i * 7919u) % NBIG));
			c1k += ns_lookup(n, big.id, name, NULL) == 0;
		}
	CHECK(missing == 0 && wrong == 0 && extra == 0 && c1k == NPROBES * NPROBE,
	      "%d expected: %d missing, %d wrong id, %d should be gone, %llu of %d probes",
	      expect, missing, wrong, extra, (unsigned long long)c1k, NPROBES * NPROBE);
	CHECK(ns_getattr(n, big.id, &a) == 0 && a.size == (uint64_t)expect + NPROBES * NPROBE,
	      "size %llu, want %d", (unsigned long long)a.size, expect + NPROBES * NPROBE);
	CHECK(ns_getattr(n, other.id, &a) == 0 && a.size == (uint64_t)moved_out,
	      "other holds %llu, want %d", (unsigned long long)a.size, moved_out);
	printf("ok - %d entries after unlinks (%d) and renames (%d out, %d in), commit, reopen\n",
	       expect + NPROBES * NPROBE, removed, moved_out, NOTHER);

	/* readdir: everything in order, then with changes interleaved. */
	struct walk w = {.n = n, .dir = big.id, .rng = 12345};
	w.seen = calloc(NBIG, 1);
	w.alive = calloc(NBIG, 1);
	w.stable = calloc(NBIG, 1);
	REQUIRE(w.seen && w.alive && w.stable, "memory");
	for (unsigned i = 0; i < NBIG; i++)
		w.alive[i] = w.stable[i] = ids[i] != 0;
	r = ns_readdir(n, big.id, NULL, walk_cb, &w);
	int twice = 0, lost = 0, ghost = 0;
	for (unsigned i = 0; i < NBIG; i++) {
		twice += w.seen[i] > 1;
		lost += w.stable[i] && !w.seen[i];
		ghost += !w.alive[i] && w.seen[i];
	}
	CHECK(r == 0 && w.count == expect + NPROBES * NPROBE && w.others == NPROBES * NPROBE && twice == 0 && lost == 0 &&
	      ghost == 0 && w.bad_order == 0,
	      "readdir %d: %d listed (%d others), %d twice, %d lost, %d gone, %d out of order", r,
	      w.count, w.others, twice, lost, ghost, w.bad_order);
	memset(w.seen, 0, NBIG);
	w.count = w.others = w.bad_order = 0;
	w.prev[0] = 0;
	w.mutate = 1;
	t0 = now_s();
	r = ns_readdir(n, big.id, NULL, walk_cb, &w);
	double trd = now_s() - t0;
	twice = lost = 0;
	int kept = 0;
	for (unsigned i = 0; i < NBIG; i++) {
		twice += w.seen[i] > 1;
		lost += w.stable[i] && !w.seen[i];
		kept += w.stable[i] != 0;
	}
	CHECK(r == 0 && w.fails == 0 && twice == 0 && lost == 0 && w.dup_other == 0 &&
	      w.bad_order == 0 && kept > 0,
	      "readdir with changes %d: %d listed, %d twice (%d new ones), %d of %d stable "
	      "lost, %d out of order, %d edits failed",
	      r, w.count, twice, w.dup_other, lost, kept, w.bad_order, w.fails);
	printf("ok - readdir of %d entries with %d creates and removes interleaved (%.2f s): "
	       "none twice, none of the %d stable ones lost\n",
	       w.count, w.next_new, trd, kept);
	/* Only synced (intent log), then a crash: the page writes come back. */
	REQUIRE(ns_sync(n, big.id, &e) == 0, "sync: %s", bks_errmsg(&e, -1));
	ns_close(n);
	store_close(s); /* crash */
	REQUIRE((n = open_ns(paths, &s)) != NULL, "reopen");

	/* Random edits with splits and emptied pages, flushed, reloaded. */
	ns_attr md;
	REQUIRE(ns_mkdir(n, ns_root(n), "model", 0755, 0, 0, &md) == 0, "mkdir model");
	model_run(n, md.id, 77);
	REQUIRE(ns_sync(n, md.id, &e) == 0, "sync: %s", bks_errmsg(&e, -1));
	ns_close(n);
	store_close(s); /* crash */
	REQUIRE((n = open_ns(paths, &s)) != NULL, "reopen");
	CHECK(model_check(n, md.id) == 0, "model set after a reopen");
	/* The big one still whole after everything (readdir's changes included). */
	int cnt = 0;
	memset(w.seen, 0, NBIG);
	w.count = w.others = w.bad_order = 0;
	w.prev[0] = 0;
	w.mutate = 0;
	memset(w.seen_new, 0, sizeof(w.seen_new));
	w.dup_other = 0;
	CHECK(ns_readdir(n, big.id, NULL, walk_cb, &w) == 0 && w.bad_order == 0 &&
	      w.dup_other == 0, "readdir after the reopen");
	for (unsigned i = 0; i < NBIG; i++)
		cnt += w.alive[i] && w.seen[i] == 1;
	int alive = 0;
	for (unsigned i = 0; i < NBIG; i++)
		alive += w.alive[i];
	CHECK(cnt == alive && w.count == alive + NPROBES * NPROBE + w.next_new, "%d of %d, %d listed", cnt,
	      alive, w.count);
	printf("ok - random creates and removes against a model; both directories back after "
	       "a sync and a crash\n");

	v1_phase(tdir);
	full_phase(tdir);

	free(w.seen);
	free(w.alive);
	free(w.stable);
	free(ids);
	ns_close(n);
	store_close(s);
	tu_cleanup();
	return tu_finish();
}
