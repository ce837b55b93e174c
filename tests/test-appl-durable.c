/* test-appl-durable: group commit (daemon/appl.c appl_change_seq + appl_durable), as
 * NFS CREATE and iSCSI SYNCHRONIZE CACHE use it, on fault-layer disks.
 *  - THREADS threads (connections) each create PER files, one at a time: the change
 *    under appl.mu, then appl_durable outside it; every request is answered 0, and
 *    the syncs run are fewer than the requests (they were shared);
 *  - the same again with a power cut armed at a random moment of the run (every
 *    write not flushed is dropped): requests answered 0 before the cut and failed
 *    ones after it; no thread hangs, a failed sync's error reaches its waiters;
 *  - after the "reboot" (reimport, intent log replay) every file whose request was
 *    answered 0, in either round, is there.
 * With appl_durable answering before its sync (or a sync that does not cover the
 * change) the files answered just before the cut are missing after the reboot. */
#include <config.h>

#include "tests/testutil.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/appl.h"
#include "storage/fault.h"

#define N 6
#define DISK_MB 64
#define THREADS 8
#define PER 120

static appl ap;
static uint64_t dirid;
static uint8_t acked[2][THREADS][PER];
static int failed[2][THREADS];

struct job {
	int round, t;
};

static void name_of(char *buf, size_t cap, int round, int t, int i)
{
	snprintf(buf, cap, "r%d-t%d-f%03d", round, t, i);
}

static void *worker(void *arg)
{
	struct job *j = arg;
	for (int i = 0; i < PER; i++) {
		char nm[32];
		ns_attr na;
		name_of(nm, sizeof(nm), j->round, j->t, i);
		pthread_mutex_lock(&ap.mu);
		int r = ns_create(ap.n, dirid, nm, 0644, 0, 0, 1, &na);
		uint64_t seq = r == 0 ? appl_change_seq(&ap) : 0;
		pthread_mutex_unlock(&ap.mu);
		if (r == 0)
			r = appl_durable(&ap, seq, NULL);
		if (r < 0) {
			failed[j->round][j->t]++;
			break; /* a client would see the error; the power is out */
		}
		acked[j->round][j->t][i] = 1;
	}
	return NULL;
}

static void run_round(int round)
{
	pthread_t th[THREADS];
	struct job jobs[THREADS];
	for (int t = 0; t < THREADS; t++) {
		jobs[t] = (struct job){round, t};
		REQUIRE_EXIT(pthread_create(&th[t], NULL, worker, &jobs[t]) == 0, "thread");
	}
	for (int t = 0; t < THREADS; t++)
		pthread_join(th[t], NULL);
}

static int count_acked(int round)
{
	int n = 0;
	for (int t = 0; t < THREADS; t++)
		for (int i = 0; i < PER; i++)
			n += acked[round][t][i];
	return n;
}

int main(void)
{
	const char *dir = tu_tmpdir_in("appl-durable", "/dev/shm");
	char *paths[N];
	flt_world *w;
	bks_err e = {0};
	store *s = NULL;
	ns_attr d;
	int r;

	REQUIRE(flt_world_new(7, &w) == 0, "fault world");
	arr *a = tu_make_array(dir, N, DISK_MB, w, paths);
	REQUIRE((r = store_create(a, NULL, &s, &e)) == 0, "store_create: %s", bks_errmsg(&e, r));
	REQUIRE((r = ns_format(s, 0755, &e)) == 0, "ns_format: %s", bks_errmsg(&e, r));
	memset(&ap, 0, sizeof(ap));
	pthread_mutex_init(&ap.mu, NULL);
	appl_durable_init(&ap);
	ap.s = s;
	REQUIRE((r = ns_open(s, &ap.n, &e)) == 0, "ns_open: %s", bks_errmsg(&e, r));
	REQUIRE(ns_mkdir(ap.n, ns_root(ap.n), "share", 0755, 0, 0, &d) == 0, "mkdir");
	REQUIRE(ns_commit(ap.n, &e) == 0, "commit");
	dirid = d.id;

	/* Round 0: no faults. */
	uint64_t w0, s0, e0, w1, s1, e1;
	run_round(0);
	appl_durable_stats(&ap, &w0, &s0, &e0);
	int n0 = count_acked(0);
	CHECK(n0 == THREADS * PER, "every request answered 0 (%d of %d)", n0, THREADS * PER);
	CHECK(w0 == THREADS * PER && e0 == 0, "%llu requests waited, %llu syncs failed",
	      (unsigned long long)w0, (unsigned long long)e0);
	CHECK(s0 < w0, "%llu syncs for %llu requests (%.1f requests a sync)",
	      (unsigned long long)s0, (unsigned long long)w0, s0 ? (double)w0 / (double)s0 : 0.0);

	/* Round 1: the power goes out somewhere in the middle. */
	uint64_t ev0 = flt_events(w);
	bks_rng rng;
	bks_rng_seed(&rng, 11);
	uint64_t cut = 50 + bks_rng_below(&rng, 400);
	flt_arm_powercut(w, cut, FLT_PC_DROP);
	run_round(1);
	appl_durable_stats(&ap, &w1, &s1, &e1);
	int n1 = count_acked(1), nfail = 0;
	for (int t = 0; t < THREADS; t++)
		nfail += failed[1][t];
	CHECK(flt_is_dead(w), "the power cut came (at event %llu of the round, %llu events)",
	      (unsigned long long)cut, (unsigned long long)(flt_events(w) - ev0));
	CHECK(n1 > 0 && n1 < THREADS * PER, "%d requests answered 0 before the cut", n1);
	CHECK(nfail == THREADS, "every thread got an error after the cut (%d of %d)", nfail,
	      THREADS);
	CHECK(e1 > 0, "%llu syncs failed and said so", (unsigned long long)e1);

	/* The reboot: no commit, the disks as the cut left them. */
	ns_close(ap.n);
	store_close(s);
	flt_power_on(w);
	s = tu_store_reopen(paths, N, w);
	REQUIRE(s, "reopen after the cut");
	REQUIRE((r = ns_open(s, &ap.n, &e)) == 0, "ns_open after the cut: %s", bks_errmsg(&e, r));
	REQUIRE(ns_lookup(ap.n, ns_root(ap.n), "share", &d) == 0, "share after the cut");
	int missing[2] = {0, 0};
	for (int round = 0; round < 2; round++)
		for (int t = 0; t < THREADS; t++)
			for (int i = 0; i < PER; i++) {
				char nm[32];
				ns_attr na;
				if (!acked[round][t][i])
					continue;
				name_of(nm, sizeof(nm), round, t, i);
				if (ns_lookup(ap.n, d.id, nm, &na) != 0 || na.type != NS_FILE)
					missing[round]++;
			}
	CHECK(missing[0] == 0, "round 0: every answered create survived the cut (%d missing)",
	      missing[0]);
	CHECK(missing[1] == 0, "round 1: every create answered before the cut survived "
	      "(%d of %d missing)", missing[1], n1);
	printf("group commit: round 0 %llu requests in %llu syncs; round 1 %d answered, "
	       "%llu syncs, cut at event %llu\n", (unsigned long long)w0,
	       (unsigned long long)s0, n1, (unsigned long long)(s1 - s0),
	       (unsigned long long)cut);
	ns_close(ap.n);
	store_close(s);
	appl_durable_destroy(&ap);
	pthread_mutex_destroy(&ap.mu);
	flt_world_free(w);
	tu_cleanup();
	return tu_finish();
}
