/* daemon/repl_claim.c: the twin's chunks in flight, shared by its connections.
 *
 * The source sends several files at once, one per connection (repl_send.c), and
 * backup generations share most of their chunks: without this, two connections
 * whose FP_LISTs name the same new chunk would both answer FP_NEED with its bit set
 * and it would cross twice. So the first connection that finds a chunk missing
 * claims it (for the FP_LIST round it is in) and asks for it; a connection that
 * finds it claimed asks for nothing and, when its writer reaches that entry, waits
 * until the claim is gone: the chunk is in the store then (store_put_known takes
 * it), or the claimant failed (a cut, a bad chunk) and the file is refused with
 * EAGAIN: the source offers it again next cycle, when the chunk is asked for anew.
 * A fingerprint twice in one list is the same case with one connection: asked for
 * once, the later entry finds it stored.
 *
 * Everything here runs under appl.mu, the lock under which the store is asked
 * whether it has a chunk and under which a received chunk enters it; so "missing
 * and not claimed" and "stored, claim dropped" cannot interleave. A waiter does not
 * sleep on appl.mu, though: it lets it go through appl_unlock (so the status's
 * locks.appl counts only real holds, not the seconds a connection waits for another's
 * chunk) and sleeps on the table's own mutex and condition. No wake-up is lost:
 * the waiter takes the table's mutex before it lets appl.mu go and sleeps with it;
 * a drop and the round end that wakes it are made under appl.mu, and the wake-up
 * (a new generation, a broadcast) under the table's mutex too, so it comes after
 * the waiter sleeps. Lock order: appl.mu, then the table's mutex; nobody holding the
 * table's mutex takes appl.mu.
 *
 * No deadlock: a round's claims are all taken in one hold of appl.mu, when its
 * FP_NEED is made; a round waits only for claims that existed then, i.e. of rounds
 * that made their FP_NEED earlier, and those never wait for a later round's claims
 * (what they did not find they claimed themselves). Every claim is dropped when its
 * chunk is stored, and the rest of a round's when the round ends, however it ends
 * (a bad chunk, a cut: repl_recv.c drops every entry it asked for). A claimant whose source
 * stalls holds its waiters until its connection times out; the wait is bounded by
 * REPL_CLAIM_WAIT_S anyway (then EAGAIN, as above).
 */
#include <config.h>

#include "daemon/repl_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct claim {
	uint8_t fp[32];
	uint32_t len;
	uint32_t owner;          /* 0: empty slot */
	uint32_t waiters;        /* connections waiting for it: its drop wakes them */
} claim;

struct repl_claims {
	claim *v;                /* open addressing, no tombstones: deletes shift back */
	size_t cap, n;
	pthread_mutex_t mu;      /* gen and cv (the waiters sleep on it, not on appl.mu) */
	pthread_cond_t cv;       /* claims were dropped: gen moved */
	uint64_t gen;            /* rounds that woke waiters (under mu) */
	int wake;                /* a claim someone waits for was dropped since the
	                          * last broadcast (under appl.mu) */
	uint32_t next_owner;
};

int repl_claims_new(repl_claims **out)
{
	repl_claims *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	pthread_condattr_t ca;
	pthread_mutex_init(&t->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&t->cv, &ca);
	pthread_condattr_destroy(&ca);
	*out = t;
	return 0;
}

void repl_claims_free(repl_claims *t)
{
	if (!t)
		return;
	pthread_cond_destroy(&t->cv);
	pthread_mutex_destroy(&t->mu);
	free(t->v);
	free(t);
}

uint32_t repl_claims_owner(repl_claims *t)
{
	if (++t->next_owner == 0)
		t->next_owner = 1;
	return t->next_owner;
}

static size_t slot0(const repl_claims *t, const uint8_t fp[32])
{
	uint64_t k;
	memcpy(&k, fp, sizeof(k)); /* a SHA-256: its bytes are already uniform */
	return (size_t)(k % t->cap);
}

static claim *find(const repl_claims *t, const uint8_t fp[32], uint32_t len)
{
	if (!t->n)
		return NULL;
	for (size_t i = slot0(t, fp);; i = (i + 1) % t->cap) {
		claim *c = &t->v[i];
		if (!c->owner)
			return NULL;
		if (c->len == len && !memcmp(c->fp, fp, 32))
			return c;
	}
}

static int grow(repl_claims *t)
{
	size_t nc = t->cap ? t->cap * 2 : 8192;
	claim *nv = calloc(nc, sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	claim *ov = t->v;
	size_t oc = t->cap;
	t->v = nv;
	t->cap = nc;
	for (size_t i = 0; i < oc; i++) {
		if (!ov[i].owner)
			continue;
		size_t j = slot0(t, ov[i].fp);
		while (t->v[j].owner)
			j = (j + 1) % t->cap;
		t->v[j] = ov[i];
	}
	free(ov);
	return 0;
}

int repl_claims_take(repl_claims *t, const uint8_t fp[32], uint32_t len, uint32_t owner)
{
	if (find(t, fp, len))
		return 1;
	if ((t->n + 1) * 2 > t->cap && grow(t) < 0)
		return -ENOMEM;
	size_t i = slot0(t, fp);
	while (t->v[i].owner)
		i = (i + 1) % t->cap;
	memcpy(t->v[i].fp, fp, 32);
	t->v[i].len = len;
	t->v[i].owner = owner;
	t->v[i].waiters = 0;
	t->n++;
	return 0;
}

/* Remove slot i and move back the entries after it that would no longer be found. */
static void remove_at(repl_claims *t, size_t i)
{
	t->v[i].owner = 0;
	t->n--;
	for (size_t j = (i + 1) % t->cap; t->v[j].owner; j = (j + 1) % t->cap) {
		size_t h = slot0(t, t->v[j].fp);
		/* Entry j stays if its home h lies cyclically in (i, j]. */
		int stays = i <= j ? (h > i && h <= j) : (h > i || h <= j);
		if (stays)
			continue;
		t->v[i] = t->v[j];
		t->v[j].owner = 0;
		i = j;
	}
}

void repl_claims_drop(repl_claims *t, const uint8_t fp[32], uint32_t len, uint32_t owner)
{
	claim *c = find(t, fp, len);
	if (!c || c->owner != owner)
		return;
	/* The waiters are woken at the end of the claimant's round, not now: a
	 * connection that waits for another's chunks usually waits for most of that
	 * round's, and a wake-up per stored chunk (each taking appl.mu to look, then
	 * sleeping again) cost the twin a fifth of its CPU in bench/repl.sh. */
	if (c->waiters)
		t->wake = 1;
	remove_at(t, (size_t)(c - t->v));
}

void repl_claims_round_end(repl_claims *t)
{
	if (t->wake) {
		t->wake = 0;
		pthread_mutex_lock(&t->mu);
		t->gen++;
		pthread_cond_broadcast(&t->cv);
		pthread_mutex_unlock(&t->mu);
	}
}

int repl_claims_wait(repl_claims *t, appl *ap, const uint8_t fp[32], uint32_t len,
                     const volatile int *stopping)
{
	struct timespec until = {0, 0};
	claim *c;
	while ((c = find(t, fp, len)) != NULL) {
		if (*stopping)
			return -ECANCELED;
		struct timespec now, step;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (!until.tv_sec) {
			until = now;
			until.tv_sec += REPL_CLAIM_WAIT_S;
		}
		if (now.tv_sec > until.tv_sec ||
		    (now.tv_sec == until.tv_sec && now.tv_nsec >= until.tv_nsec))
			return -ETIMEDOUT;
		/* A second at a time: a stop is noticed even if no claim is dropped. */
		step = now;
		step.tv_sec += 1;
		c->waiters++;
		/* The table's mutex before appl.mu goes: a round end (under appl.mu)
		 * cannot move gen until this sleeps (see the top of the file). */
		pthread_mutex_lock(&t->mu);
		uint64_t gen = t->gen;
		appl_unlock(ap);
		while (t->gen == gen && !*stopping &&
		       pthread_cond_timedwait(&t->cv, &t->mu, &step) != ETIMEDOUT)
			;
		pthread_mutex_unlock(&t->mu);
		appl_lock(ap);
		/* The table may have changed meanwhile: the claim is found again (a new
		 * claim of the same chunk starts with no waiters: nothing to take back). */
		if ((c = find(t, fp, len)) != NULL && c->waiters)
			c->waiters--;
	}
	return 0;
}
