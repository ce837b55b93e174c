/* daemon/iscsi_int.h: private to daemon/iscsi.c and daemon/iscsi_ffp.c. */
#ifndef BKS_ISCSI_INT_H
#define BKS_ISCSI_INT_H

#include <pthread.h>
#include <stdint.h>

#include "daemon/iscsi.h"
#include "daemon/sbc.h"
#include "proto/iscsi.h"

#define ISCSI_LOGIN_DSL 8192     /* data segment bound before the login ends (§13.12) */
#define ISCSI_AHS_MAX 256        /* bytes of additional header segments we take */
#define ISCSI_PDU_MS (60 * 1000) /* a PDU whose first byte came must be whole by then */
#define ISCSI_DATA_MS (60 * 1000)/* a command waiting for Data-Out: progress at least
                                  * this often, or the connection is closed */
#define ISCSI_SEND_MS (60 * 1000)/* the peer must take what we send */
#define ISCSI_WORKERS 8          /* commands of one connection running at once */
#define ISCSI_R2T_MAX 8          /* MaxOutstandingR2T we accept (R2Ts of one command) */
#define ISCSI_QUICK_MAX (64u << 10) /* a WRITE up to this, no FUA, may run on the reader */
#define ISCSI_KEEP_DIN (1u << 20)   /* a worker keeps a Data-In buffer up to this */

/* One LUN in use: shared by every session logged in to its target. */
typedef struct iscsi_dev {
	char name[LUN_NAME_MAX + 1];
	sbc_dev *d;
	int refs;
	struct iscsi_dev *next;
} iscsi_dev;

/* A SCSI command of the connection, from its arrival to its response: collecting
 * its Data-Out (immediate, unsolicited, then solicited by up to MaxOutstandingR2T
 * R2Ts at once; the reader's alone), ready (waiting for a worker, or for an earlier
 * task it must not overtake: iscsi_ffp.c "ordering"), then running on a worker.
 * Data arrives in order (DataPDUInOrder and DataSequenceInOrder are Yes), so "got"
 * is both a count and the next offset, and only the oldest R2T's sequence can be
 * receiving. */
enum { ISCSI_T_COLLECT, ISCSI_T_READY, ISCSI_T_RUNNING };

typedef struct iscsi_task {
	uint32_t itt, cmdsn, edtl;
	uint64_t lun;
	uint8_t cdb[16 + ISCSI_AHS_MAX];
	size_t cdb_len;
	int rflag, dir;          /* R bit; the CDB's direction (sbc_xfer) */
	uint32_t need;           /* bytes the command uses: min(edtl, the CDB's) */
	uint32_t xfer;           /* bytes the CDB transfers (residuals) */
	uint32_t got;            /* bytes received (those past need are dropped) */
	uint8_t *buf;            /* need bytes */
	uint32_t din_cap;        /* Data-In room it needs while running (budgeted) */
	int unsol;               /* unsolicited Data-Out still to come */
	uint32_t unsol_end;      /* FirstBurstLength bound of the unsolicited data */
	uint32_t unsol_datasn;
	struct { uint32_t ttt, end; } r2t[ISCSI_R2T_MAX]; /* outstanding, oldest first */
	int nr2t;
	uint32_t solicited;      /* data asked for up to here (R2Ts sent) */
	uint32_t seq_datasn, r2tsn;
	uint32_t pdus_sent;      /* R2Ts (ExpDataSN of the response) */
	/* under conn.mu */
	int state;               /* ISCSI_T_* */
	int slot;                /* holds a place in the CmdSN window (not immediate) */
	int barrier;             /* nothing overtakes it, it overtakes nothing */
	int writes;              /* writes [lba, lba + nblk) */
	int quick;               /* a small WRITE without FUA (into the LUN's cache) */
	uint64_t lba, nblk;      /* the blocks it touches (READ, WRITE, VERIFY) */
	struct iscsi_task *next; /* in arrival (CmdSN) order */
} iscsi_task;

/* A PDU kept because its CmdSN is ahead of ExpCmdSN (and the Data-Out that came
 * after it for the same task), replayed in arrival order once the gap fills. */
typedef struct iscsi_held {
	iscsi_pdu h;
	uint8_t *ahs, *data;     /* one allocation: ahs then data */
	uint32_t ahs_len, dlen;
	struct iscsi_held *next;
} iscsi_held;

/* A received PDU: header, AHS and data (data points into the connection's buffer,
 * valid until the next read). */
typedef struct iscsi_rx {
	iscsi_pdu h;
	uint8_t bhs[ISCSI_BHS_LEN];
	uint8_t ahs[ISCSI_AHS_MAX];
	uint8_t *data;
	uint32_t dlen;
} iscsi_rx;

typedef struct iscsi_conn iscsi_conn;

struct iscsi_srv {
	appl *ap;
	lun_set *ls;
	pthread_mutex_t mu;
	pthread_t th;
	int lfd, port, wake[2];
	volatile int stopping;
	iscsi_conn *conns;
	int nconns;
	iscsi_dev *devs;
	char prefix[ISCSI_NAME_MAX + 1];
	/* limits (restart keys) */
	uint32_t max_conns, queue_depth, login_ms, nop_ms;
	uint64_t max_buffer;
	/* negotiation settings; the CHAP strings are replaced by a reload (under mu;
	 * a login copies them first) */
	iscsi_target_cfg tcfg;
	char chap_user[256], chap_secret[256], mutual_user[256], mutual_secret[256];
	uint64_t next_nexus;
	uint16_t next_tsih;
	/* counters (under mu) */
	uint64_t conns_total, conns_refused, logins, login_failures, auth_failures;
};

struct iscsi_conn {
	iscsi_srv *srv;
	int fd;
	char peer[80];
	char local[64];          /* our address as the peer reached it (SendTargets) */
	pthread_t th;
	int done;                /* thread finished (under srv->mu) */
	struct iscsi_conn *next;

	/* login */
	int ffp;                 /* in full feature phase */
	iscsi_neg neg;
	iscsi_target_cfg tcfg;   /* this login's copy of the settings */
	char chap_user[256], chap_secret[256], mutual_user[256], mutual_secret[256];
	char *txt_in;            /* login/text request text across C-bit PDUs */
	size_t txt_in_len;
	int txt_cont;            /* a continued request is being gathered */

	/* session (one connection per session) */
	int discovery;
	iscsi_params p;
	uint8_t isid[6];
	uint16_t tsih, cid;
	sbc_nexus nx;
	char initiator[ISCSI_NAME_MAX + 1];  /* shown in status (under srv->mu) */
	char target[ISCSI_NAME_MAX + 1];
	iscsi_dev *dev;
	uint64_t bytes_read, bytes_written, commands; /* (atomics) */
	uint64_t reordered;      /* answered before an earlier command (atomic) */
	uint32_t running_max;    /* most commands running at once (atomic) */

	/* Sending: every PDU goes out whole under smu, which also assigns StatSN, so
	 * the workers' responses and the reader's answers go out in any order. A failed
	 * send shuts the socket down (broken): the reader stops, later sends are
	 * dropped. */
	pthread_mutex_t smu;
	uint32_t statsn;         /* under smu */
	int broken;              /* under smu */

	/* Shared with the workers, under mu: the tasks, the CmdSN window, the budget. */
	pthread_mutex_t mu;
	pthread_cond_t wcv;      /* workers wait for a task */
	pthread_cond_t rcv;      /* the reader waits for tasks to end */
	iscsi_task *tasks, **tasks_tail;
	uint32_t expcmdsn;       /* written by the reader under mu */
	uint32_t active;         /* tasks holding a window slot: MaxCmdSN is
	                          * ExpCmdSN + queue_depth - 1 - active */
	int slot_pending;        /* the reader's command took a slot no task has yet */
	uint64_t buffered;       /* bytes of task buffers, held PDUs, running Data-In */
	int running;             /* tasks on workers */
	pthread_t wth[ISCSI_WORKERS];
	int nworkers, idle, wstop;

	/* full feature phase state (the reader's) */
	iscsi_held *held, **held_tail;
	uint32_t next_ttt;
	char *txt_out;           /* a Text Response being sent in pieces */
	size_t txt_out_len, txt_out_off;
	uint32_t txt_ttt;
	uint64_t last_rx_ns, ping_ns;  /* NOP-In keepalive */
	uint32_t ping_ttt;
	int closing;             /* logout answered, or a fatal error */

	/* receive buffer */
	uint8_t *rx;
	size_t rx_cap;
};

/* iscsi.c */
/* Send one PDU whole (any thread): StatSN, ExpCmdSN and MaxCmdSN filled in under the
 * send lock, StatSN advanced when adv. 0, or -errno (the connection is then shut
 * down). */
int iscsi_send(iscsi_conn *c, iscsi_pdu *h, int adv, const void *data, uint32_t dlen);
int iscsi_reject(iscsi_conn *c, const iscsi_rx *q, int reason);
/* MaxCmdSN (under c->mu). */
uint32_t iscsi_maxcmdsn_locked(const iscsi_conn *c);
/* Answer a Text Request's SendTargets (discovery: All or a name; normal: this
 * session's target) into t. */
void iscsi_send_targets(iscsi_conn *c, const char *what, iscsi_text *t);

/* iscsi_ffp.c: one PDU in full feature phase (the reader; commands run on up to
 * ISCSI_WORKERS workers of the connection): 0 to go on, -errno to close. */
int iscsi_ffp_pdu(iscsi_conn *c, iscsi_rx *q);
/* The connection ends: drop the tasks not running, wait for those running, stop
 * the workers, drop held PDUs. */
void iscsi_ffp_end(iscsi_conn *c);
/* Idle work: pings, deadlines of tasks waiting for data. 0 or -errno to close. */
int iscsi_ffp_idle(iscsi_conn *c, uint64_t now);

#endif /* BKS_ISCSI_INT_H */
