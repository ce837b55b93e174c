/* test-repl-claim: the twin's claims of chunks in flight (daemon/repl_claim.c), the
 * table alone on an appliance lock with nothing behind it (appl_lock/appl_unlock
 * need only ap.mu and its counters).
 *  - a chunk is claimed once: the first taker asks for it, every other is told it is
 *    claimed (and so does not ask);
 *  - a waiter returns only once the claim is dropped, within moments of the round
 *    end that wakes it (not its one-second step), and appl.mu is free meanwhile;
 *  - no wake-up is lost: 200 times, the claimant drops its claim at the first moment
 *    the waiter lets appl.mu go; each waiter is back well within its step;
 *  - a waiter that nobody wakes (its claimant's source stalls) does not count as
 *    holding appl.mu: after 2 s of waiting, ended by a stop, the lock's held time
 *    (the status's locks.appl, lock_held_fraction) is a few microseconds, not 2 s.
 * With the wait a condition wait on appl.mu (before), the last check fails: the
 * whole wait counts as held. */
#include <config.h>

#include "tests/testutil.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "daemon/appl.h"
#include "daemon/repl_int.h"

static appl ap;
static repl_claims *tab;
static uint8_t fp[32];
static volatile int stopping;

struct waiter {
	pthread_t th;
	int started;             /* set under appl.mu just before the wait (atomic) */
	int returned;            /* (atomic) */
	int rc;
	uint64_t back_ns;        /* when it returned */
};

static void *wait_thread(void *arg)
{
	struct waiter *w = arg;
	appl_lock(&ap);
	__atomic_store_n(&w->started, 1, __ATOMIC_RELEASE);
	w->rc = repl_claims_wait(tab, &ap, fp, 4096, &stopping);
	w->back_ns = bks_now_ns();
	__atomic_store_n(&w->returned, 1, __ATOMIC_RELEASE);
	appl_unlock(&ap);
	return NULL;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

int main(void)
{
	pthread_mutex_init(&ap.mu, NULL);
	REQUIRE(repl_claims_new(&tab) == 0, "a claims table");
	for (int i = 0; i < 32; i++)
		fp[i] = (uint8_t)(i * 7 + 1);

	/* Claimed once. */
	uint32_t o1 = repl_claims_owner(tab), o2 = repl_claims_owner(tab);
	CHECK(o1 && o2 && o1 != o2, "owners are distinct and not 0 (%u, %u)", o1, o2);
	appl_lock(&ap);
	CHECK(repl_claims_take(tab, fp, 4096, o1) == 0, "the first taker claims the chunk");
	CHECK(repl_claims_take(tab, fp, 4096, o2) == 1, "a second taker finds it claimed");
	CHECK(repl_claims_take(tab, fp, 4096, o1) == 1, "so does the claimant, a second time");
	repl_claims_drop(tab, fp, 4096, o2); /* not o2's: no effect */
	CHECK(repl_claims_take(tab, fp, 4096, o2) == 1, "only the claimant drops a claim");
	appl_unlock(&ap);

	/* A waiter returns after the drop, woken by the round end. */
	struct waiter w = {0};
	pthread_create(&w.th, NULL, wait_thread, &w);
	sleep_ms(300);
	CHECK(__atomic_load_n(&w.started, __ATOMIC_ACQUIRE) &&
	      !__atomic_load_n(&w.returned, __ATOMIC_ACQUIRE),
	      "the waiter waits while the chunk is claimed");
	CHECK(appl_trylock(&ap) == 0, "appl.mu is free while it waits");
	repl_claims_drop(tab, fp, 4096, o1);
	repl_claims_round_end(tab);
	uint64_t dropped = bks_now_ns();
	appl_unlock(&ap);
	pthread_join(w.th, NULL);
	CHECK(w.rc == 0, "the wait ends with 0 (%d)", w.rc);
	CHECK(w.back_ns - dropped < 500000000ull, "woken by the round end: back %.0f ms after it",
	      (double)(w.back_ns - dropped) / 1e6);
	appl_lock(&ap);
	CHECK(repl_claims_take(tab, fp, 4096, o2) == 0, "the dropped chunk can be claimed anew");
	repl_claims_drop(tab, fp, 4096, o2);
	repl_claims_round_end(tab);
	appl_unlock(&ap);

	/* No lost wake-up: the drop comes at the first moment appl.mu is free. */
	uint64_t worst = 0;
	for (int i = 0; i < 200; i++) {
		uint32_t o = repl_claims_owner(tab);
		appl_lock(&ap);
		repl_claims_take(tab, fp, 4096, o);
		appl_unlock(&ap);
		struct waiter x = {0};
		pthread_create(&x.th, NULL, wait_thread, &x);
		while (!__atomic_load_n(&x.started, __ATOMIC_ACQUIRE))
			sched_yield();
		appl_lock(&ap); /* the waiter has let it go: it is in its wait */
		repl_claims_drop(tab, fp, 4096, o);
		repl_claims_round_end(tab);
		uint64_t t = bks_now_ns();
		appl_unlock(&ap);
		pthread_join(x.th, NULL);
		CHECK_LOOP(x.rc == 0, "round %d: the wait ended with %d", i, x.rc);
		if (x.back_ns - t > worst)
			worst = x.back_ns - t;
	}
	CHECK(tu_misses == 0, "200 waits all ended with 0");
	CHECK(worst < 500000000ull, "no wake-up lost in 200 races: the slowest waiter was back "
	      "%.1f ms after the round end (a lost one sleeps out its 1 s step)", (double)worst / 1e6);

	/* Waiting is not holding: a wait nobody ends, stopped after 2 s. */
	appl_lock(&ap);
	repl_claims_take(tab, fp, 4096, o1);
	appl_unlock(&ap);
	appl_lock_stats before, after;
	appl_lock_stats_get(&ap, &before);
	struct waiter y = {0};
	uint64_t t0 = bks_now_ns();
	pthread_create(&y.th, NULL, wait_thread, &y);
	sleep_ms(1500); /* past its first 1 s step */
	__atomic_store_n(&stopping, 1, __ATOMIC_RELAXED); /* as repl_stop sets r->stopping */
	pthread_join(y.th, NULL);
	appl_lock_stats_get(&ap, &after);
	double waited = (double)(y.back_ns - t0) / 1e9;
	double held = (double)(after.held_ns - before.held_ns) / 1e9;
	CHECK(y.rc == -ECANCELED, "a stop ends the wait (%d)", y.rc);
	CHECK(waited >= 1.4, "it waited %.2f s", waited);
	CHECK(held < 0.1, "appl.mu counted %.3f s held over a %.2f s wait (the wait is not a hold)",
	      held, waited);
	CHECK(after.max_held_ns < 100000000ull, "the longest hold was %.3f s",
	      (double)after.max_held_ns / 1e9);
	stopping = 0;
	appl_lock(&ap);
	repl_claims_drop(tab, fp, 4096, o1);
	repl_claims_round_end(tab);
	appl_unlock(&ap);

	repl_claims_free(tab);
	pthread_mutex_destroy(&ap.mu);
	return tu_finish();
}
