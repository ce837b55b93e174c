/* daemon/repl_int.h: private to daemon/repl*.c. */
#ifndef BKS_REPL_INT_H
#define BKS_REPL_INT_H

#include <errno.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "daemon/repl.h"
#include "proto/repl.h"

#define REPL_FP_HEX 65           /* a SHA-256 fingerprint in hex, with its NUL */
#define REPL_TOKEN_TTL_NS (15ull * 60 * 1000000000ull)
#define REPL_IO_TIMEOUT_S 60     /* a frame must move within this (send or receive) */
#define REPL_MAX_CONNS 8
#define REPL_BUF (REPL_HDR_LEN + REPL_MAX_PAYLOAD)
#define REPL_GATED (-EAGAIN)     /* repl_gate: the schedule window is closed */
#define REPL_RATE_SLOTS 8        /* seconds of wire bytes kept for the rate */
#define REPL_RATE_SPAN 5         /* the rate is the mean of this many whole seconds */
#define REPL_WBUF (256u << 10)   /* frames gathered before a TLS write */
#define REPL_CLAIM_WAIT_S 300    /* longest wait for a chunk another connection claimed */

typedef struct repl_claims repl_claims;

/* One TLS connection with its frame buffer. */
typedef struct rconn {
	int fd;
	SSL *ssl;
	char peer[80];               /* "ip:port" for logs */
	char peer_fp[REPL_FP_HEX];   /* the certificate the peer showed */
	uint8_t *buf;                /* REPL_BUF bytes: the frame last read */
	uint8_t *wbuf;               /* REPL_WBUF bytes: frames not written yet */
	size_t wlen;
	uint64_t tx, rx;             /* application bytes sent (given), received */
	uint16_t ver;                /* source side: the version HELLO_OK answered */
} rconn;

/* What this appliance is in its pair (repl.peer's "role" line; docs/architecture.md
 * "Replication", "Failover"). Writable: NONE, SOURCE, PROMOTED, RESEED_SRC (until
 * the hand-back starts). Read-only to clients: TWIN, RESEED_TWIN. */
enum repl_role {
	ROLE_NONE = 0,           /* not paired */
	ROLE_SOURCE,             /* sends to the pinned twin */
	ROLE_TWIN,               /* takes the pinned source's files; read-only */
	ROLE_PROMOTED,           /* was the twin; writable; the old source's pin is kept
	                          * but retired: it may not replicate here any more */
	ROLE_RESEED_SRC,         /* the survivor, copying itself to a new appliance that
	                          * takes the lost peer's identity (adopt_*) */
	ROLE_RESEED_TWIN,        /* that new appliance, while the copy arrives */
};

/* A delete the twin applies when due (wall clock): the object that was at path
 * when the source's DELETE came, so a file written there since is left alone. */
typedef struct rdel {
	uint64_t due_s;
	uint64_t id, gen;
	char *path;
} rdel;

/* A chunk this appliance wants again from its peer: its copy here is damaged beyond
 * what the array reconstructs (verify found it). A twin's come from its source
 * (WANT), a source's from its twin (FETCH). repl.wanted; repl_repair.c. */
typedef struct rwant {
	uint8_t fp[32];
	uint32_t len;                /* raw length */
	uint64_t since_s;            /* wall clock when first wanted */
	uint64_t vgen;               /* the verify run that last found it bad */
	uint8_t mark;                /* wants_settle's scratch (memory only) */
} rwant;
#define REPL_WANTS_MAX 4096      /* kept at most (repl.wanted stays under 200 KiB) */

struct repl {
	appl *ap;
	char dir[1024];              /* the configuration's directory, with its '/' */
	uint8_t id[REPL_ID_LEN];     /* this appliance */
	char name[REPL_NAME_MAX + 1];/* this appliance's name (appliance.name) */
	char fp[REPL_FP_HEX];        /* this appliance's certificate */
	X509 *cert;                  /* this appliance's certificate and key */
	EVP_PKEY *key;
	SSL_CTX *sctx, *cctx;        /* server (twin side), client (source side) */

	pthread_mutex_t mu;          /* everything below */
	/* pairing */
	char pin_fp[REPL_FP_HEX];    /* the twin's (or source's) certificate; "" unpaired */
	uint8_t pin_id[REPL_ID_LEN];
	char pin_addr[80];           /* HOST:PORT we paired with ("" on the twin side) */
	char pin_name[REPL_NAME_MAX + 1]; /* the peer's name (IDENT), "" unknown */
	int role;                    /* enum repl_role */
	uint64_t promoted_s;         /* wall-clock seconds of the promotion, 0 none */
	/* reseed (RESEED_SRC, RESEED_TWIN): the lost appliance's identity, which the new
	 * one takes at the end, and the direction then */
	uint8_t adopt_id[REPL_ID_LEN];
	char adopt_name[REPL_NAME_MAX + 1];
	int then_source;             /* the new appliance becomes the source at the end */
	char ret_addr[80];           /* RESEED_TWIN: the survivor's HOST:PORT (then_source) */
	int handback;                /* RESEED_SRC: read-only for the last cycle (memory) */
	/* A lost source's successor (RESEED_TWIN, then SOURCE until its first cursor is
	 * made): objects with ids from seed_from on were made by the receiver during the
	 * reseed (clients were refused), so the survivor has them. seed_pending: SOURCE,
	 * read-only to clients until the sender has built the cursor from them
	 * (repl_send.c, seed_cursor). Both in repl.peer ("seed_from"). */
	uint64_t seed_from;
	int seed_pending;
	int man_reset;               /* the sender starts again from an empty cursor */
	char token[40];              /* the pairing token shown to the admin, "" none */
	uint64_t token_until_ns;

	/* listener (twin side) */
	int lfd, wake[2];
	pthread_t lth;
	int lstarted;
	volatile int stopping;
	int nconns;
	int conn_fds[REPL_MAX_CONNS];
	rdel *dels;                  /* pending deletes, in arrival order */
	size_t ndels, capdels;
	uint32_t delete_delay_s;
	uint64_t refused;            /* connections refused (auth, not TLS) */
	uint64_t rx_files, rx_chunks, rx_bytes;
	repl_claims *claims;         /* chunks asked for and not arrived yet (under appl.mu) */

	/* sender (source side) */
	pthread_t sth;
	int sstarted;
	int send_fd;                 /* the sender's connection (-1 none): shut down by stop */
	int wfd[REPL_MAX_CONNS];     /* its helpers' connections (-1 none): the same */
	pthread_cond_t scv;
	uint64_t bwlimit;            /* bytes/s, 0 none */
	uint64_t pace_rate;          /* the limit the shared bucket was last scaled to (pace) */
	uint64_t answer_pace_ns;     /* the bucket of a twin's FETCH answers (repl_pace) */
	char state[40];              /* "idle", "sending", "connecting", "error", ... */
	char last_error[240];
	uint64_t commits_seen, replicated_commit;
	uint64_t dirty_since_ns;     /* first commit not replicated yet (monotonic), 0 */
	uint64_t lag_files, lag_bytes;
	uint64_t tx_wire, tx_files, tx_chunks, tx_chunk_bytes, cycles, last_sync_wall_ns;
	uint64_t chunks_skipped;     /* chunks the twin already had */

	/* schedule window, lag alert, rate (repl_ops.c) */
	cfg_window window;           /* when the sender may send (n 0: always) */
	uint32_t lag_alert_s;        /* 0: no alert on the seconds of lag */
	uint64_t lag_alert_bytes;    /* 0: no alert on the bytes of lag */
	int lag_alerting;            /* past a threshold: the event was added */
	int gated;                   /* the sender waits for the window */
	uint64_t gate_ns;            /* repl_gate's last look (sender thread only) */
	uint64_t cycle_bytes;        /* lag bytes when this cycle began to send */
	uint64_t cycle_wire0;        /* tx_wire then */
	uint64_t rate_bytes[REPL_RATE_SLOTS], rate_sec[REPL_RATE_SLOTS]; /* per second */
	/* repair (repl_repair.c): the twin's wanted chunks, the source's answers */
	rwant *wants;                /* REPL_WANTS_MAX slots once one is wanted */
	size_t nwants;
	int wants_dirty;             /* repl.wanted is behind the list */
	uint64_t vgen;               /* verify runs seen (vgen of the running one) */
	uint64_t repaired;           /* chunks stored again from the source (persisted) */
	uint64_t repair_refused;     /* chunks the source sent that failed the SHA-256 */
	uint64_t wants_full;         /* bad chunks not queued: the list was full */
	uint64_t last_repair_wall_ns;
	uint32_t repair_interval_s;  /* source: an idle sender asks this often */
	uint64_t last_want_ns;       /* source: when it last asked (monotonic), 0 never */
	uint32_t want_fails;         /* source: asks in a row the twin did not answer (an
	                              * older build closes the connection): each doubles
	                              * the interval, up to 64 times */
	uint64_t repair_sent;        /* chunks sent for the peer's repair (WANT, FETCH) */
	uint64_t repair_missing;     /* the peer's wanted chunks this store does not have */
	/* The source's own damaged chunks, fetched back from the twin (FETCH). */
	uint64_t last_fetch_ns;      /* when it last asked (monotonic), 0 never */
	uint32_t fetch_fails;        /* asks in a row that got no answer (a twin of an
	                              * older build, a broken connection): the interval
	                              * doubles per fail, up to 64 times */
	int fetch_new;               /* an entry was queued since the last ask: ask now */
	uint64_t repair_lacked;      /* chunks asked for that the peer could not give */
	uint64_t repair_received;    /* chunks the peer sent for this one's repair */
	uint64_t repair_failed;      /* asked-for chunks an exchange gave no good copy of */
	int fetch_lack_said;         /* the last ask repaired nothing and said so (event) */
	uint32_t in_flight, in_flight_max; /* files being sent now, most at once */
};

/* repl_tls.c */
int repl_identity_load(repl *r, bks_err *e);      /* cert, key, id: load or make */
int repl_pin_load(repl *r);                       /* the pin file, if any */
int repl_pin_save(repl *r, const char *fp, const uint8_t id[REPL_ID_LEN],
                  const char *addr);
int repl_tls_init(repl *r, bks_err *e);           /* the two SSL_CTXs */
/* Connect to addr (HOST:PORT) and handshake. expect_fp: the certificate the twin
 * must show; NULL: any (the fingerprint is reported in c->peer_fp, for pairing). */
int repl_connect(repl *r, const char *addr, const char *expect_fp, rconn *c, bks_err *e);
/* Accept side: handshake on fd (already accepted). Refuses (and logs) plain TCP,
 * other TLS versions and a certificate that is not pinned, unless a pairing token is
 * active (then *pair_only is set: the connection may only PAIR). */
int repl_accept(repl *r, int fd, const char *peer, rconn *c, int *pair_only);
void repl_conn_close(rconn *c);
/* repl_send gathers frames; they are written when the buffer fills, before the
 * connection's next read, at repl_flush and at close. */
int repl_send(rconn *c, const void *buf, size_t n);
int repl_flush(rconn *c);
int repl_send_msg(rconn *c, const repl_msg *m, const wire_fp *fps, uint32_t n);
int repl_send_error(rconn *c, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Read one frame into c->buf and decode it (views into c->buf). -ECONNRESET at a
 * clean end, -ETIMEDOUT, -EPROTO (a bad frame: logged). An ERROR frame is returned
 * as a message of type REPL_ERROR (not an error here). */
int repl_read_msg(rconn *c, repl_msg *m, bks_err *e);
void repl_hex(const uint8_t *b, size_t n, char *out);
int repl_unhex(const char *s, uint8_t *out, size_t n);
int repl_write_file(const char *path, const void *buf, size_t n, int mode);
int repl_parse_addr(const char *addr, char *host, size_t cap, uint16_t *port);

/* repl_claim.c (the twin side): chunks in flight; all under appl.mu. */
int repl_claims_new(repl_claims **out);
void repl_claims_free(repl_claims *t);    /* accepts NULL */
uint32_t repl_claims_owner(repl_claims *t); /* a new owner number (never 0) */
/* 0: claimed now by owner (ask for the chunk); 1: claimed already (by anyone, the
 * owner too: do not ask); -ENOMEM. */
int repl_claims_take(repl_claims *t, const uint8_t fp[32], uint32_t len, uint32_t owner);
/* Drop owner's claim of fp, if it has it (stored, or given up). Its waiters are
 * woken by the next repl_claims_round_end, which an owner calls when its round
 * ends (however it ends) after dropping the rest of its claims. */
void repl_claims_drop(repl_claims *t, const uint8_t fp[32], uint32_t len, uint32_t owner);
void repl_claims_round_end(repl_claims *t);
/* Wait (appl.mu held; let go while it sleeps, held again when it returns) until fp
 * is not claimed: 0, -ETIMEDOUT after REPL_CLAIM_WAIT_S, -ECANCELED when *stopping. */
int repl_claims_wait(repl_claims *t, appl *ap, const uint8_t fp[32], uint32_t len,
                     const volatile int *stopping);

/* repl_recv.c (the twin side) */
int repl_listen_start(repl *r, bks_err *e);
void repl_listen_stop(repl *r);
int repl_dels_load(repl *r);

/* repl_ops.c: the schedule window, the lag alert, the send rate */
void repl_ops_config(repl *r, const bks_cfg *c);  /* window, alerts (takes r->mu) */
/* Called by the sender before it connects, before each entry and before each chunk
 * it sends: 0 to go on, REPL_GATED when the window is closed (the state
 * says when it opens; the caller ends the cycle and the connection: what reached the
 * twin stays, the rest resumes when the window opens). Also checks the lag alert. */
int repl_gate(repl *r);
void repl_lag_check(repl *r);                     /* the alert's events; not r->mu */
void repl_rate_add(repl *r, uint64_t bytes);      /* r->mu held */
void repl_ops_status_json(repl *r, json *j);      /* r->mu held */
/* Promote, hand-back: drop the held-back deletes, list them in report (whose they
 * were: from; when: at). How many, or -errno. */
int repl_dels_drop(repl *r, const char *report, const char *from, const char *at);
/* repl_repair.c (docs/architecture.md "Replication", "Repair") */
int repl_wants_load(repl *r);
void repl_wants_free(repl *r);
void repl_wants_flush(repl *r);                     /* save repl.wanted if it changed */
void repl_repair_hook(repl *r, int on);             /* verify's bad chunks to the list */
/* Twin: a WANT from the source: the list, the chunks, commit, DONE (or ERROR). 0, or
 * <0 when the connection is broken. */
int repl_rx_want(repl *r, rconn *c, const repl_msg *m);
/* Source: is it time to ask? connected 0: an idle sender connects for it every
 * repair_interval; 1: at the end of a cycle's connection, always (unless the twin
 * did not answer the last asks: then as for 0, with the back-off). */
int repl_want_due(repl *r, int connected);
/* repl_send.c: the bwlimit token bucket. Wait until bytes more may go at [repl]
 * bwlimit; *next_ns (under r->mu) is the bucket, shared by the connections that
 * pass the same one (a cycle's; a twin's FETCH answers: answer_pace_ns). */
void repl_pace(repl *r, uint64_t bytes, uint64_t *next_ns);
/* Count c's bytes sent since *mark (sent.wire_bytes, the rate); returns them. */
uint64_t repl_count_wire(repl *r, rconn *c, uint64_t *mark);
/* Source: ask the twin which chunks it wants and send those this store has. 0, 1 when
 * the twin refused (ERROR: the connection goes on), <0 when the connection is broken
 * (why says it; a twin of an older build closes it on WANT). sbuf: STORE_STORED_MAX
 * bytes. Each CHUNK waits its turn in the cycle's bucket (*next_ns), with c's bytes
 * since *mark, which it counts. */
int repl_tx_want(repl *r, rconn *c, uint8_t *sbuf, uint64_t *mark, uint64_t *next_ns,
                 char *why, size_t wcap);
/* Source: its own damaged chunks (the wanted list on a source), fetched back from the
 * twin (version 3). Is it time to ask? (takes r->mu) */
int repl_fetch_due(repl *r);
/* Source: FETCH the wanted chunks the twin can give, store them (store_repair_chunk),
 * commit, drop them from the list. ver: the version the twin answered HELLO with
 * (below 3 it cannot: counted as a failed ask, asked again after the back-off).
 * 0, 1 when the twin refused or could not be asked (the connection goes on), <0 when
 * the connection is broken (why says it). */
int repl_tx_fetch(repl *r, rconn *c, unsigned ver, char *why, size_t wcap);
/* Twin: a FETCH from the source: the chunks it can give, then DONE (their number).
 * 0, or <0 when the connection is broken. */
int repl_rx_fetch(repl *r, rconn *c, const repl_msg *m);
/* The "repair" object of the status document (under r->mu). */
void repl_repair_json(repl *r, json *j);

/* repl_send.c (the source side) */
int repl_sender_start(repl *r, bks_err *e);
void repl_sender_stop(repl *r);

/* repl_failover.c: names, roles, promote, reseed */
int repl_name_load(repl *r, bks_err *e);          /* appliance.name: load or make */
/* repl.peer: a line the pin loader does not know (role, name, adopt_*, ...), and the
 * role of a file without a "role" line (written before roles: inferred). */
void repl_peer_line(repl *r, const char *line);
void repl_role_settle(repl *r);
/* Write repl.peer from r's fields (r->mu held). */
int repl_peer_save(repl *r);
/* The client-write refusal that goes with the role (r->mu held, then appl.mu). */
void repl_ro_apply(repl *r);
int repl_role_sends(const repl *r);               /* r->mu held */
const char *repl_role_name(int role);
/* The sender: where to send (r->mu held): "" when this appliance does not send. */
void repl_send_addr(repl *r, char *addr, size_t cap);
/* After HELLO_OK: IDENT both ways (the peer's name). 0, or <0 broken. */
int repl_ident_exchange(repl *r, rconn *c, char *why, size_t cap);
/* The sender built the first cursor of a lost source's successor (seed_pending):
 * clients may write from now on. */
void repl_seed_done(repl *r, size_t entries, size_t of);
/* Sender thread: a source (its cursor made) holding back deletes, which only a twin
 * applies: those a reseed's survivor sent during the copy. Dropped and listed as at
 * promotion. 0 (none, or dropped), <0 (retry later). */
int repl_dels_handback(repl *r);
/* After a clean cycle (sender thread): the reseed's end. 1: run another cycle now. */
int repl_reseed_step(repl *r, const char *addr, const char *pin);
/* The twin side (connection threads). HELLO: 0 accept, else refused (answered). */
int repl_rx_hello(repl *r, rconn *c, const repl_msg *m);
int repl_rx_ident(repl *r, rconn *c, const repl_msg *m);
int repl_rx_reseed(repl *r, rconn *c, const repl_msg *m);
int repl_rx_reseed_end(repl *r, rconn *c, const repl_msg *m);
/* May this connection's source still send requests? (promote ends it) */
int repl_rx_allowed(repl *r);
void repl_status_failover(repl *r, json *j);      /* r->mu held */

#endif /* BKS_REPL_INT_H */
