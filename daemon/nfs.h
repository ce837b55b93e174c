/* daemon/nfs.h: the NFSv3 server (RFC 1813) with MOUNT v3 and a portmapper (RFC 1833),
 * over the namespace (fs/ns.h). docs/architecture.md "NFS" tells the design.
 *
 * nfs.c: listeners (NFS, MOUNT, portmapper: each a TCP port; every port answers all
 *        three programs), per connection a reader thread that keeps reading ONC RPC
 *        records while earlier calls run (at most NFS_INFLIGHT_MAX in flight, at most
 *        NFS_HELD_RECS records' worth of bytes held) and a few worker threads that
 *        answer them, each reply sent as its call finishes (out of order); admission
 *        (max_connections, what a record may cost), the duplicate request cache with
 *        its in-progress calls, the handle key, the client table, status.
 * nfs_ops.c: the 22 NFS procedures, unstable-write staging.
 * nfs_mount.c: MOUNT, the portmapper, and the registration with a system rpcbind.
 *
 * Locking: appl.mu around every store/namespace call and around the staging (short
 * memory copies); srv->mu for the connection list, the mount list, the exports (and
 * their rates), the client table, the duplicate request cache, the calls in flight
 * (nfs_job.reg_next) and the cookie table; conn->mu for a connection's work queue;
 * conn->smu around sending one reply (the only lock held across network I/O, and
 * only a connection's own workers wait for it). Order: appl.mu before srv->mu;
 * conn->mu and srv->mu are never held together.
 */
#ifndef BKS_NFS_H
#define BKS_NFS_H

#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>

#include "common/bks.h"
#include "common/json.h"
#include "daemon/appl.h"
#include "dedup/store.h"
#include "proto/nfs3.h"
#include "proto/rpc.h"

typedef struct nfs_srv nfs_srv;

/* Start the server when cfg has [nfs] enable = yes (else *out = NULL, 0). key_path:
 * the handle key file (made with 32 random bytes, mode 0600, on first start). */
int nfs_start(appl *ap, const char *key_path, nfs_srv **out, bks_err *e);
/* Stop: close the listeners and connections, apply staged writes, wait. NULL ok. */
void nfs_stop(nfs_srv *s);
/* SIGHUP: take the exports of cfg (new mounts and every call see them at once). */
void nfs_reload(nfs_srv *s, const bks_cfg *cfg);
/* The "nfs" object of the status document. */
void nfs_status_json(nfs_srv *s, json *j);
void nfs_ports(nfs_srv *s, int *nfs, int *mount, int *pmap);

/* ---- private to nfs*.c ---- */

#define NFS_MOUNTS_MAX 256
#define NFS_DRC_SLOTS 1024
#define NFS_DRC_REPLY_MAX 512      /* replies cached (non-idempotent ones are small) */
#define NFS_COOKIE_SLOTS 1024
#define NFS_CLIENTS_MAX 64         /* client addresses kept for status (LRU) */
#define NFS_RATE_SECS 60           /* per-export rates: one bucket a second */
#define NFS_INFLIGHT_MAX 16        /* calls in flight on one connection (an admitted
                                    * peer's; an address no export admits gets 1) */
#define NFS_READ_PIECES 64         /* pieces of a zero-copy READ reply (store_read_iov) */
#define NFS_HELD_RECS 4            /* record bytes held per connection: this many
                                    * wsize-sized WRITEs (then the reader waits) */

/* READ/WRITE bytes of one export per second, over the last NFS_RATE_SECS. */
typedef struct nfs_rate_bucket {
	uint64_t sec;              /* bks_now_ns() / 1e9 of the bucket (0: never used) */
	uint64_t rd, wr;
} nfs_rate_bucket;

/* An export as served: the config's, plus counters (calls: atomic; the rest under
 * srv->mu). */
typedef struct nfs_export {
	cfg_export x;             /* strings and nets owned here */
	uint64_t bytes_read, bytes_written, calls;
	nfs_rate_bucket rate[NFS_RATE_SECS];
} nfs_export;

/* A client address as status shows it (under srv->mu). The table is a fixed array:
 * a new address takes a free slot, else the least recently seen one without open
 * connections, else the least recently seen one (gen changes, so the connections
 * that pointed at it find their address again), so peers opening connections from
 * many addresses cannot make it grow. */
typedef struct nfs_client {
	int used;
	int family;                /* AF_INET, AF_INET6 */
	uint8_t addr[16];
	uint32_t gen;
	int conns;                 /* open now */
	uint64_t conns_total, calls, bytes_read, bytes_written;
	uint64_t first_ns, last_ns;/* wall clock: first connection, last call or connection */
} nfs_client;

typedef struct nfs_mount {
	char host[64];            /* client address */
	char path[MNT_PATH_MAX + 1];
	uint32_t export_id;
} nfs_mount;

typedef struct nfs_drc {
	uint8_t addr[16];
	uint32_t xid, proc, len, used;
	uint8_t reply[NFS_DRC_REPLY_MAX];
} nfs_drc;

typedef struct nfs_cookie {
	uint64_t dir, cookie, verf;
	char name[NFS3_NAME_MAX + 1];
} nfs_cookie;

/* Staged unstable writes of one file (under appl.mu). */
typedef struct nfs_ext {
	uint64_t off;
	uint32_t len;
	uint8_t *data;
} nfs_ext;
typedef struct nfs_stage {
	uint64_t id;
	nfs_ext *v;
	size_t n, cap;
	uint64_t bytes;
	uint64_t end;              /* the largest off + len staged (those applied early
	                            * are in the store, whose size then covers them) */
	uint64_t last_ns;          /* last write staged (idle files are applied) */
	struct nfs_stage *next;
} nfs_stage;

typedef struct nfs_conn nfs_conn;

/* A call read and not yet answered. Its record is its own (the call's arguments
 * point into it); reg_next links it in its connection's list of calls in flight
 * (under srv->mu: a retransmission of a running call is found there and dropped),
 * next in the work queue (under conn->mu). */
typedef struct nfs_job {
	uint8_t *rec;
	size_t len, cap;
	int dec;                   /* rpc_call_decode's result */
	rpc_call call;
	struct nfs_job *next, *reg_next;
} nfs_job;

struct nfs_srv {
	appl *ap;
	pthread_mutex_t mu;
	pthread_t th;
	int lfd[3];                /* NFS, MOUNT, portmapper (-1: none) */
	int port[3];
	int wake[2];
	volatile int stopping;
	nfs_conn *conns;
	int nconns;
	uint32_t max_conns, wsize, rsize;
	uint64_t stage_file_max, stage_total_max;
	uint8_t key[NFS3_FH_KEY_LEN];
	uint8_t wverf[NFS3_VERF];  /* write verifier: new at every start */
	uint64_t boot_ns;
	nfs_export *exports;       /* under mu; replaced whole at reload */
	int nexports;
	nfs_mount mounts[NFS_MOUNTS_MAX];
	int nmounts;
	nfs_drc drc[NFS_DRC_SLOTS];
	uint32_t drc_next;
	uint64_t drc_hits;
	uint64_t drc_inprogress;   /* retransmissions of a call still running: dropped */
	nfs_cookie cookies[NFS_COOKIE_SLOTS];
	/* staging (under appl.mu) */
	nfs_stage *stages;
	/* the applier thread: appends at the front of a stage go into the store while
	 * the client sends the next writes (wmu/wcv only wake it; order appl.mu, wmu) */
	pthread_t wth;
	int wth_started, wpending;
	pthread_mutex_t wmu;
	pthread_cond_t wcv;
	uint64_t staged_bytes, staged_applied_early;
	/* counters (atomics) */
	uint64_t calls, rpc_errors, conns_total, conns_refused, conns_dropped, big_refused;
	nfs_client clients[NFS_CLIENTS_MAX]; /* under mu */
	/* rpcbind (nfs_mount.c): 1 when NFS and MOUNT were registered at start (and are
	 * unset at stop); how: "unix" or "tcp" */
	int rpcb_registered;
	char rpcb_how[8];
};

struct nfs_conn {
	nfs_srv *srv;
	int fd;
	int family;                /* AF_INET, AF_INET6 */
	uint8_t addr[16];          /* peer address (IPv4-mapped IPv6 taken as IPv4) */
	int port;                  /* peer port */
	char peer[80];
	uint8_t *rec;              /* the record being read (then its job's) */
	size_t rec_cap;
	uint64_t calls;            /* calls taken (atomic) */
	uint64_t born_ns;          /* accepted (bks_now_ns) */
	uint64_t last_ns;          /* the last reply sent, or born_ns (atomic) */
	int busy;                  /* calls between a whole record and their reply (under
	                            * srv->mu) */
	nfs_job *reg;              /* those calls (under srv->mu) */
	int evicted;               /* shut down to make room (under srv->mu) */
	int cli;                   /* its slot in srv->clients, -1: none */
	uint32_t cli_gen;          /* ... and that slot's gen when taken */
	pthread_t th;              /* the reader */
	int done;                  /* the reader (and so every worker) has finished (under
	                            * srv->mu) */
	/* the work queue and its workers (under mu) */
	pthread_mutex_t mu;
	pthread_cond_t wcv;        /* a job came, or closing */
	pthread_cond_t rcv;        /* a job finished: the reader may read on */
	nfs_job *qhead, *qtail;
	int qlen, idle, inflight, closing, nworkers;
	size_t held;               /* record bytes of the jobs in flight */
	pthread_t wth[NFS_INFLIGHT_MAX];
	/* sending (under smu): a reply is one record, sent whole */
	pthread_mutex_t smu;
	int broken;                /* a send failed: the socket is shut down */
	nfs_conn *next;
};

/* One call being answered. */
typedef struct nfs_req {
	nfs_srv *s;
	nfs_conn *c;
	rpc_call call;
	xdr_enc *e;
	uint64_t rd, wr;           /* READ/WRITE bytes of this call */
	/* A READ's data sent from the store's read-ahead buffers (zero-copy, npieces >
	 * 0): the reply's bytes [data_at, data_at + data_len) of e are not written
	 * (only reserved) and go out as pieces[] instead; the buffers stay pinned until
	 * the reply is sent (nfs.c unpins them under appl.mu). */
	size_t data_at, data_len;
	int npieces;
	store_iov pieces[NFS_READ_PIECES];
	store_pins pins;
	/* the credential after the export's squash (set by nfs_export_of) */
	uint32_t uid, gid;
	uint32_t ngids;
	uint32_t gids[RPC_GIDS_MAX];
} nfs_req;

/* nfs.c: find the export with id and admit the caller to it: its networks, the
 * secure port, the auth flavor; sets q's credential (squash). *x gets a copy of the
 * export's settings without its strings and nets (they may be freed by a reload);
 * path (cap bytes, may be NULL) gets the export's path. 0, -ESTALE (no such export
 * now), -EACCES (not allowed), -EPERM (AUTH_NONE refused: answer AUTH_TOOWEAK). */
int nfs_export_use(nfs_req *q, uint32_t id, cfg_export *x, char *path, size_t cap);
/* The same for the export whose path is the longest prefix of mntpath: -ENOENT. */
int nfs_export_by_path(nfs_req *q, const char *mntpath, cfg_export *x, char *path,
                       size_t cap);
/* READ/WRITE data of a call: the export's counters and rates, and the connection's
 * (its client's, once the reply is sent). */
void nfs_export_count(nfs_req *q, uint32_t id, uint64_t rd, uint64_t wr);
/* May this connection use export x at all (networks, secure port, auth flavor)?
 * Sets req's credential (squash). 0, -EACCES (not allowed), -EPERM (AUTH_NONE refused:
 * the caller answers AUTH_TOOWEAK). */
int nfs_export_admit(nfs_req *q, const cfg_export *x);
void nfs_mount_add(nfs_srv *s, const char *host, const char *path, uint32_t id);
void nfs_mount_del(nfs_srv *s, const char *host, const char *path); /* path NULL: all */

/* nfs_ops.c: an NFS call (program NFS_PROGRAM, version 3): encode the accepted reply
 * (header included) into q->e. */
void nfs3_dispatch(nfs_req *q);
/* Whether a procedure's replies go into the duplicate request cache. */
int nfs3_proc_nonidempotent(uint32_t proc);
/* Apply staged writes: of every file idle since before idle_ns (0: all). appl.mu held. */
void nfs_stage_flush_idle(nfs_srv *s, uint64_t idle_before_ns);
void nfs_stage_free_all(nfs_srv *s);
/* appl_on_readonly's hook (appl.mu held): every staged write goes to the store
 * before the appliance refuses writes; one the store refuses is dropped and the
 * write verifier changes (nfs_ops.c says why). */
void nfs_stage_readonly(void *ctx);
/* The applier thread's body (nfs_ops.c). */
void *nfs_stage_applier(void *arg);

/* nfs_mount.c */
void nfs_mount_dispatch(nfs_req *q);
void nfs_pmap_dispatch(nfs_req *q);
/* A system rpcbind (its Unix socket, else 127.0.0.1:111): does one answer? 1/0. */
int nfs_rpcb_present(void);
/* Register NFS v3 and MOUNT v3 over TCP at the server's ports (replacing what an
 * earlier run left); 0 and s->rpcb_registered set, or -errno (nobody answers, or
 * rpcbind refused). */
int nfs_rpcb_register(nfs_srv *s);
/* Unset them (at stop, when registered). */
void nfs_rpcb_unregister(nfs_srv *s);

#endif /* BKS_NFS_H */
