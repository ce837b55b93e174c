/* test-array-powercut: 200 power cuts at random moments of a workload of row writes
 * and commits (and, in some rounds, a rebuild onto a spare). After each cut every
 * import must succeed and return exactly the last completed commit (or, if the cut
 * fell inside a commit, that commit or the one before it, never anything else), with
 * every row that commit references byte-identical.
 *
 * The workload behaves like the store above the array will: rows referenced by the
 * last commit are never overwritten; a commit's root names the live set. The model
 * keeps, per commit number, which rows are live and with which content. Half the
 * cuts drop every unflushed write, half keep a random subset (a reordering cache);
 * the write in flight is always torn. */
#include <config.h>

#include "tests/testutil.h"

#include <stdlib.h>
#include <string.h>

#define N 6
#define DISK_MB 24
#define CUTS 200
#define MAXLIVE 48
#define SEED 5

struct state {
	uint64_t counter;         /* commit counter, stored in the root */
	int nlive;
	uint64_t row[MAXLIVE];
	uint64_t gen[MAXLIVE];
};

struct root {
	char magic[4];
	uint32_t pad;
	uint64_t counter;
};

static int is_live(const struct state *s, uint64_t row)
{
	for (int i = 0; i < s->nlive; i++)
		if (s->row[i] == row)
			return 1;
	return 0;
}

static int check_state(arr *a, const struct state *s)
{
	size_t rb = arr_row_bytes(a);
	uint8_t *want = tu_alloc(rb), *got = tu_alloc(rb);
	int bad = 0;
	for (int i = 0; i < s->nlive; i++) {
		tu_fill(SEED, s->row[i], s->gen[i], want, rb);
		if (arr_read(a, s->row[i], 0, got, rb) != 0 || memcmp(want, got, rb))
			bad++;
	}
	free(want);
	free(got);
	return bad;
}

int main(void)
{
	/* The fault layer models what a cut loses; the medium under it does not
	 * matter, and real flushes would cost a minute. */
	const char *dir = tu_tmpdir_in("powercut", "/dev/shm");
	char *paths[N + 1];
	arr *a = NULL;
	arr_config cfg;
	bks_err e = {0};
	bks_rng rng;
	struct state committed = {0}, pending, inflight;
	int r, in_commit_cuts = 0, took_newer = 0, rounds_with_rebuild = 0;
	uint64_t gen_counter = 1;

	bks_rng_seed(&rng, 12345);
	arr_config_defaults(&cfg);
	cfg.strip_size = 64 << 10;
	cfg.name = "powercut";
	cfg.bg_min_bps = cfg.bg_max_bps = 0;
	a = tu_make_array_cfg(dir, N, 1, DISK_MB, &cfg, NULL, paths, NULL);
	uint64_t rows = arr_rows(a);
	size_t rb = arr_row_bytes(a);
	uint8_t *buf = tu_alloc(rb * 4);
	arr_close(a);

	int cut = 0, round;
	for (round = 0; cut < CUTS && round < 4 * CUTS; round++) {
		flt_world *w;
		disk *dd[N + 1];
		flt_world_new((uint64_t)round + 1000, &w);
		tu_open((const char *const *)paths, N + 1, w, dd);
		r = arr_import(&cfg, dd, N + 1, &a, &e);
		CHECK(r == 0, "cut %d: import: %s", cut, bks_errmsg(&e, r));
		if (r)
			break;
		arr_set_event_fn(a, tu_events, NULL);
		struct root rt = {{0}, 0, 0};
		arr_root(a, &rt, sizeof(rt));
		CHECK(rt.counter == committed.counter, "cut %d: root counter %llu, expected %llu",
		      cut, (unsigned long long)rt.counter, (unsigned long long)committed.counter);
		int bad = check_state(a, &committed);
		CHECK(bad == 0, "cut %d: %d committed rows differ", cut, bad);
		/* Let any rebuild left by an earlier round finish before the next cut is
		 * armed, so every round starts from a clean import. */
		arr_bg_run(a);

		/* Workload: write new rows into free rows, free some old ones, commit;
		 * sometimes fail a disk so a rebuild onto the spare runs and is cut. */
		int rebuild_round = round % 10 == 9;
		uint64_t events_budget = 20 + bks_rng_below(&rng, 200);
		flt_arm_powercut(w, 1 + bks_rng_below(&rng, events_budget),
		                 round % 2 ? FLT_PC_REORDER : FLT_PC_DROP);
		if (rebuild_round && committed.nlive > 0) {
			char nm[16];
			snprintf(nm, sizeof(nm), "slot%d", round % N);
			if (arr_fail(a, nm, NULL) == 0)
				rounds_with_rebuild++;
		}
		pending = committed;
		int died_in_commit = 0;
		for (int op = 0; op < 40 && !flt_is_dead(w); op++) {
			if (bks_rng_below(&rng, 4) == 0) {
				pending.counter = committed.counter + 1;
				inflight = pending;
				rt = (struct root){{'T', 'E', 'S', 'T'}, 0, pending.counter};
				r = arr_commit(a, &rt, sizeof(rt), NULL);
				if (r == 0) {
					committed = pending;
				} else {
					died_in_commit = flt_is_dead(w);
					break;
				}
				continue;
			}
			if (rebuild_round)
				arr_bg_step(a, 4);
			/* Free one live row (reusable only after the next commit). */
			if (pending.nlive > 0 && bks_rng_below(&rng, 3) == 0) {
				int i = (int)bks_rng_below(&rng, (uint64_t)pending.nlive);
				pending.row[i] = pending.row[--pending.nlive];
				pending.gen[i] = pending.gen[pending.nlive];
			}
			/* Write 1..4 rows at a free row, never one the last commit references
			 * nor one pending already holds. */
			uint32_t n = 1 + (uint32_t)bks_rng_below(&rng, 4);
			if (pending.nlive + (int)n > MAXLIVE)
				continue;
			uint64_t start = bks_rng_below(&rng, rows - n);
			int clash = 0;
			for (uint32_t k = 0; k < n; k++)
				clash |= is_live(&committed, start + k) || is_live(&pending, start + k);
			if (clash)
				continue;
			uint64_t g = gen_counter++;
			for (uint32_t k = 0; k < n; k++)
				tu_fill(SEED, start + k, g, buf + (size_t)k * rb, rb);
			if (arr_write_rows(a, start, n, buf, NULL) != 0)
				break;
			for (uint32_t k = 0; k < n; k++) {
				pending.row[pending.nlive] = start + k;
				pending.gen[pending.nlive++] = g;
			}
		}
		int dead = flt_is_dead(w);
		arr_close(a);
		flt_world_free(w);
		if (!dead)
			continue; /* the cut point lay beyond this round's work */
		cut++;

		/* Reboot: what does the array say? */
		tu_open((const char *const *)paths, N + 1, NULL, dd);
		r = arr_import(&cfg, dd, N + 1, &a, &e);
		CHECK(r == 0, "cut %d: import after the cut: %s", cut, bks_errmsg(&e, r));
		if (r)
			break;
		rt.counter = 0;
		arr_root(a, &rt, sizeof(rt));
		if (died_in_commit) {
			in_commit_cuts++;
			CHECK(rt.counter == committed.counter || rt.counter == inflight.counter,
			      "cut %d (in commit): root %llu not in {%llu, %llu}", cut,
			      (unsigned long long)rt.counter, (unsigned long long)committed.counter,
			      (unsigned long long)inflight.counter);
			if (rt.counter == inflight.counter) {
				committed = inflight;
				took_newer++;
			}
		} else {
			CHECK(rt.counter == committed.counter, "cut %d: root %llu, last completed "
			      "commit %llu", cut, (unsigned long long)rt.counter,
			      (unsigned long long)committed.counter);
		}
		bad = check_state(a, &committed);
		CHECK(bad == 0, "cut %d: %d rows of the surviving commit differ", cut, bad);
		/* A degraded survivor (a rebuild round) needs its spare back for the next
		 * rounds: finish the rebuild, then give the failed disk back as a spare. */
		arr_bg_run(a);
		arr_status st;
		arr_get_status(a, &st);
		int nspare = 0;
		for (int i = 0; i < st.ndisks; i++)
			nspare += st.disks[i].role == ARR_ROLE_SPARE;
		if (st.health == ARR_OK && nspare == 0) {
			for (int i = 0; i <= N; i++) {
				int used = 0;
				for (int j = 0; j < st.ndisks; j++)
					used |= !strcmp(st.disks[j].path, paths[i]);
				if (!used) {
					disk *sp = tu_open1(paths[i], NULL);
					r = arr_add_spare(a, sp, 0, &e);
					CHECK(r == 0, "cut %d: re-add spare: %s", cut, bks_errmsg(&e, r));
					if (r)
						disk_close(sp);
				}
			}
		}
		CHECK(arr_commit(a, &rt, sizeof(rt), &e) == 0, "cut %d: commit after import", cut);
		arr_close(a);
	}
	CHECK(cut == CUTS, "only %d cuts in %d rounds", cut, round);
	printf("power cuts: %d in %d rounds, inside a commit: %d (newer commit survived %d "
	       "times), rounds with a rebuild: %d, live rows at the end: %d\n",
	       cut, round, in_commit_cuts, took_newer, rounds_with_rebuild, committed.nlive);
	free(buf);
	return tu_finish();
}
