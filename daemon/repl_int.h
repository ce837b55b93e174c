/* daemon/repl_int.h: private to daemon/repl*.c. */
#ifndef BKS_REPL_INT_H
#define BKS_REPL_INT_H

#include <openssl/ssl.h>
#include <pthread.h>
#include <stdint.h>

#include "daemon/repl.h"
#include "proto/repl.h"

#define REPL_FP_HEX 65           /* a SHA-256 fingerprint in hex, with its NUL */
#define REPL_TOKEN_TTL_NS (15ull * 60 * 1000000000ull)
#define REPL_IO_TIMEOUT_S 60     /* a frame must move within this (send or receive) */
#define REPL_MAX_CONNS 8
#define REPL_BUF (REPL_HDR_LEN + REPL_MAX_PAYLOAD)
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
} rconn;

/* A delete the twin applies when due (wall clock): the object that was at path
 * when the source's DELETE came, so a file written there since is left alone. */
typedef struct rdel {
	uint64_t due_s;
	uint64_t id, gen;
	char *path;
} rdel;

struct repl {
	appl *ap;
	char dir[1024];              /* the configuration's directory, with its '/' */
	uint8_t id[REPL_ID_LEN];     /* this appliance */
	char fp[REPL_FP_HEX];        /* this appliance's certificate */
	X509 *cert;                  /* this appliance's certificate and key */
	EVP_PKEY *key;
	SSL_CTX *sctx, *cctx;        /* server (twin side), client (source side) */

	pthread_mutex_t mu;          /* everything below */
	/* pairing */
	char pin_fp[REPL_FP_HEX];    /* the twin's (or source's) certificate; "" unpaired */
	uint8_t pin_id[REPL_ID_LEN];
	char pin_addr[80];           /* HOST:PORT we paired with ("" on the twin side) */
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
	char state[40];              /* "idle", "sending", "connecting", "error", ... */
	char last_error[240];
	uint64_t commits_seen, replicated_commit;
	uint64_t dirty_since_ns;     /* first commit not replicated yet (monotonic), 0 */
	uint64_t lag_files, lag_bytes;
	uint64_t tx_wire, tx_files, tx_chunks, tx_chunk_bytes, cycles, last_sync_wall_ns;
	uint64_t chunks_skipped;     /* chunks the twin already had */
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
/* Wait (on mu, appl.mu, held) until fp is not claimed: 0, -ETIMEDOUT after
 * REPL_CLAIM_WAIT_S, -ECANCELED when *stopping. */
int repl_claims_wait(repl_claims *t, pthread_mutex_t *mu, const uint8_t fp[32],
                     uint32_t len, const volatile int *stopping);

/* repl_recv.c (the twin side) */
int repl_listen_start(repl *r, bks_err *e);
void repl_listen_stop(repl *r);
int repl_dels_load(repl *r);

/* repl_send.c (the source side) */
int repl_sender_start(repl *r, bks_err *e);
void repl_sender_stop(repl *r);

#endif /* BKS_REPL_INT_H */
