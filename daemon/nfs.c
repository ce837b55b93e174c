/* daemon/nfs.c: see nfs.h. Procedures are in nfs_ops.c and nfs_mount.c. */
#include <config.h>

#include "daemon/nfs.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <openssl/rand.h>

#include "common/endian.h"
#include "daemon/log.h"
#include "daemon/netio.h"

/* A connection may sit idle this long (clients keep theirs for minutes); once a
 * record's first byte came, the rest must come within REC_MS. A reply the peer does
 * not take within SEND_MS ends the connection. */
#define IDLE_MS (15 * 60 * 1000)
#define REC_MS (60 * 1000)
#define SEND_MS (60 * 1000)
/* Room in a record besides WRITE data: the call header with two 400-byte auth
 * bodies, a handle, offset, count, stable, the data's length word. */
#define REC_SLACK 2048

/* ---- the handle key ---- */

/* The key that MACs file handles: 32 random bytes in a file of mode 0600 made at the
 * first start, so handles stay valid across restarts. A key file of the wrong size
 * or mode is refused (a copied or truncated key would make every handle BADHANDLE
 * or, worse, a world-readable one lets anyone forge handles). */
static int load_key(const char *path, uint8_t key[NFS3_FH_KEY_LEN], bks_err *e)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 && errno == ENOENT) {
		if (RAND_bytes(key, NFS3_FH_KEY_LEN) != 1)
			return bks_fail(e, -EIO, "nfs: no random bytes for the handle key");
		char tmp[CFG_MAX_PATH + 8];
		snprintf(tmp, sizeof(tmp), "%s.tmp", path);
		unlink(tmp);
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0)
			return bks_fail(e, -errno, "nfs: %s: %s", tmp, strerror(errno));
		int ok = write(fd, key, NFS3_FH_KEY_LEN) == NFS3_FH_KEY_LEN && fsync(fd) == 0;
		int err = errno;
		close(fd);
		if (!ok || rename(tmp, path) < 0) {
			err = ok ? errno : err;
			unlink(tmp);
			return bks_fail(e, -err, "nfs: %s: %s", path, strerror(err));
		}
		LOG_I("nfs: made the file handle key %s", path);
		return 0;
	}
	if (fd < 0)
		return bks_fail(e, -errno, "nfs: %s: %s", path, strerror(errno));
	int r = 0;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size != NFS3_FH_KEY_LEN)
		r = bks_fail(e, -EINVAL, "nfs: %s: not a %d-byte key file", path, NFS3_FH_KEY_LEN);
	else if (st.st_mode & 077)
		r = bks_fail(e, -EPERM, "nfs: %s: readable by others (mode %04o): chmod 600 it",
		             path, (unsigned)(st.st_mode & 07777));
	else if (read(fd, key, NFS3_FH_KEY_LEN) != NFS3_FH_KEY_LEN)
		r = bks_fail(e, -EIO, "nfs: %s: short read", path);
	close(fd);
	return r;
}

/* ---- exports ---- */

static void exports_free(nfs_export *x, int n)
{
	for (int i = 0; i < n; i++) {
		free(x[i].x.name);
		free(x[i].x.path);
		free(x[i].x.nets);
	}
	free(x);
}

/* A deep copy of cfg's exports; the counters of those kept (same name) carry over. */
static nfs_export *exports_copy(const bks_cfg *cfg, const nfs_export *old, int nold)
{
	nfs_export *v = calloc((size_t)cfg->nexports + 1, sizeof(*v));
	if (!v)
		return NULL;
	for (int i = 0; i < cfg->nexports; i++) {
		const cfg_export *c = &cfg->exports[i];
		v[i].x = *c;
		v[i].x.name = strdup(c->name);
		v[i].x.path = strdup(c->path);
		v[i].x.nets = malloc(sizeof(cfg_net) * (size_t)(c->nnets + 1));
		if (!v[i].x.name || !v[i].x.path || !v[i].x.nets) {
			exports_free(v, i + 1);
			return NULL;
		}
		if (c->nnets)
			memcpy(v[i].x.nets, c->nets, sizeof(cfg_net) * (size_t)c->nnets);
		for (int k = 0; k < nold; k++)
			if (!strcmp(old[k].x.name, c->name)) {
				v[i].bytes_read = old[k].bytes_read;
				v[i].bytes_written = old[k].bytes_written;
				v[i].calls = old[k].calls;
				memcpy(v[i].rate, old[k].rate, sizeof(v[i].rate));
			}
	}
	return v;
}

void nfs_reload(nfs_srv *s, const bks_cfg *cfg)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	nfs_export *v = exports_copy(cfg, s->exports, s->nexports);
	if (v) {
		exports_free(s->exports, s->nexports);
		s->exports = v;
		s->nexports = cfg->nexports;
	}
	pthread_mutex_unlock(&s->mu);
	if (v)
		LOG_I("nfs: %d exports", cfg->nexports);
	else
		LOG_E("nfs: reload: out of memory (kept the exports as they were)");
}

/* Under s->mu. */
static int admit_locked(nfs_req *q, const cfg_export *x)
{
	nfs_conn *c = q->c;
	if (!cfg_export_allows(x, c->family == AF_INET ? CFG_AF_INET : CFG_AF_INET6, c->addr))
		return -EACCES;
	if (x->secure && c->port >= 1024)
		return -EACCES;
	if (q->call.flavor == RPC_AUTH_NONE) {
		if (!x->auth_none)
			return -EPERM;
		q->uid = x->anonuid;
		q->gid = x->anongid;
		q->ngids = 0;
		return 0;
	}
	q->uid = q->call.sys.uid;
	q->gid = q->call.sys.gid;
	q->ngids = BKS_MIN(q->call.sys.ngids, (uint32_t)RPC_GIDS_MAX);
	memcpy(q->gids, q->call.sys.gids, sizeof(uint32_t) * q->ngids);
	if (x->squash == CFG_ALL_SQUASH || (x->squash == CFG_ROOT_SQUASH && q->uid == 0)) {
		q->uid = x->anonuid;
		q->gid = x->anongid;
		q->ngids = 0;
	} else if (x->squash == CFG_ROOT_SQUASH && q->gid == 0) {
		q->gid = x->anongid;
	}
	return 0;
}

static int use_locked(nfs_req *q, const nfs_export *v, cfg_export *x, char *path, size_t cap)
{
	int r = admit_locked(q, &v->x);
	if (r < 0)
		return r;
	*x = v->x;
	x->name = x->path = NULL;
	x->nets = NULL;
	if (path)
		snprintf(path, cap, "%s", v->x.path);
	__atomic_add_fetch((uint64_t *)&v->calls, 1, __ATOMIC_RELAXED);
	return 0;
}

int nfs_export_use(nfs_req *q, uint32_t id, cfg_export *x, char *path, size_t cap)
{
	nfs_srv *s = q->s;
	int r = -ESTALE;
	pthread_mutex_lock(&s->mu);
	for (int i = 0; i < s->nexports; i++)
		if (s->exports[i].x.id == id) {
			r = use_locked(q, &s->exports[i], x, path, cap);
			break;
		}
	pthread_mutex_unlock(&s->mu);
	return r;
}

/* Is p (an export path) a prefix of path at a component boundary? */
static size_t path_prefix(const char *p, const char *path)
{
	size_t n = strlen(p);
	while (n > 1 && p[n - 1] == '/')
		n--;
	if (n == 1 && p[0] == '/')
		return 1;
	if (strncmp(p, path, n) || (path[n] && path[n] != '/'))
		return 0;
	return n;
}

int nfs_export_by_path(nfs_req *q, const char *mntpath, cfg_export *x, char *path,
                       size_t cap)
{
	nfs_srv *s = q->s;
	int best = -1;
	size_t bl = 0;
	pthread_mutex_lock(&s->mu);
	for (int i = 0; i < s->nexports; i++) {
		size_t l = path_prefix(s->exports[i].x.path, mntpath);
		if (l > bl) {
			bl = l;
			best = i;
		}
	}
	int r = best < 0 ? -ENOENT : use_locked(q, &s->exports[best], x, path, cap);
	pthread_mutex_unlock(&s->mu);
	return r;
}

void nfs_export_count(nfs_req *q, uint32_t id, uint64_t rd, uint64_t wr)
{
	nfs_srv *s = q->s;
	uint64_t sec = bks_now_ns() / 1000000000ull;
	q->rd += rd;
	q->wr += wr;
	pthread_mutex_lock(&s->mu);
	for (int i = 0; i < s->nexports; i++)
		if (s->exports[i].x.id == id) {
			nfs_export *x = &s->exports[i];
			nfs_rate_bucket *b = &x->rate[sec % NFS_RATE_SECS];
			x->bytes_read += rd;
			x->bytes_written += wr;
			if (b->sec != sec)
				*b = (nfs_rate_bucket){.sec = sec};
			b->rd += rd;
			b->wr += wr;
		}
	pthread_mutex_unlock(&s->mu);
}

/* Bytes per second of an export over the last NFS_RATE_SECS (the current second
 * counts as one; under s->mu). */
static void export_rates(const nfs_export *x, double *rd, double *wr)
{
	uint64_t sec = bks_now_ns() / 1000000000ull, r = 0, w = 0;
	for (int i = 0; i < NFS_RATE_SECS; i++) {
		const nfs_rate_bucket *b = &x->rate[i];
		if (b->sec && b->sec <= sec && sec - b->sec < NFS_RATE_SECS) {
			r += b->rd;
			w += b->wr;
		}
	}
	*rd = (double)r / NFS_RATE_SECS;
	*wr = (double)w / NFS_RATE_SECS;
}

/* ---- the client table (status) ---- */

static int client_find_locked(nfs_srv *s, const nfs_conn *c)
{
	for (int i = 0; i < NFS_CLIENTS_MAX; i++) {
		const nfs_client *k = &s->clients[i];
		if (k->used && k->family == c->family &&
		    !memcmp(k->addr, c->addr, c->family == AF_INET ? 4 : 16))
			return i;
	}
	return -1;
}

/* Point c at its address's slot, taking one when the address is new (nfs.h
 * "nfs_client" says which); the slot counts c as open. Under s->mu. */
static void client_take_locked(nfs_srv *s, nfs_conn *c)
{
	int i = client_find_locked(s, c);
	if (i < 0) {
		int idle = -1, any = -1;
		for (int k = 0; k < NFS_CLIENTS_MAX && i < 0; k++) {
			const nfs_client *v = &s->clients[k];
			if (!v->used)
				i = k;
			else if (!v->conns && (idle < 0 || v->last_ns < s->clients[idle].last_ns))
				idle = k;
			else if (any < 0 || v->last_ns < s->clients[any].last_ns)
				any = k;
		}
		if (i < 0)
			i = idle >= 0 ? idle : any;
		nfs_client *v = &s->clients[i];
		uint32_t gen = v->gen + 1;
		*v = (nfs_client){.used = 1, .family = c->family, .gen = gen,
		                  .first_ns = bks_wall_ns()};
		memcpy(v->addr, c->addr, 16);
	}
	nfs_client *v = &s->clients[i];
	v->conns++;
	v->conns_total++;
	v->last_ns = bks_wall_ns();
	c->cli = i;
	c->cli_gen = v->gen;
}

/* c's slot, or NULL when the slot went to another address meanwhile. Under s->mu. */
static nfs_client *client_of_locked(nfs_srv *s, const nfs_conn *c)
{
	if (c->cli < 0 || s->clients[c->cli].gen != c->cli_gen)
		return NULL;
	return &s->clients[c->cli];
}

/* A call of c was answered: count it (and its READ/WRITE bytes) for its address. */
static void client_note(nfs_srv *s, nfs_conn *c, uint64_t rd, uint64_t wr)
{
	pthread_mutex_lock(&s->mu);
	nfs_client *v = client_of_locked(s, c);
	if (!v) { /* the slot was reused: take one again */
		client_take_locked(s, c);
		v = &s->clients[c->cli];
		v->conns_total--; /* the same connection, not a new one */
	}
	v->calls++;
	v->bytes_read += rd;
	v->bytes_written += wr;
	v->last_ns = bks_wall_ns();
	pthread_mutex_unlock(&s->mu);
}

void nfs_mount_add(nfs_srv *s, const char *host, const char *path, uint32_t id)
{
	pthread_mutex_lock(&s->mu);
	int i;
	for (i = 0; i < s->nmounts; i++)
		if (!strcmp(s->mounts[i].host, host) && !strcmp(s->mounts[i].path, path))
			break;
	if (i == s->nmounts && s->nmounts == NFS_MOUNTS_MAX) /* the oldest makes room */
		memmove(s->mounts, s->mounts + 1, sizeof(s->mounts[0]) * (size_t)--s->nmounts);
	if (i >= s->nmounts)
		i = s->nmounts++;
	snprintf(s->mounts[i].host, sizeof(s->mounts[i].host), "%s", host);
	snprintf(s->mounts[i].path, sizeof(s->mounts[i].path), "%s", path);
	s->mounts[i].export_id = id;
	pthread_mutex_unlock(&s->mu);
}

void nfs_mount_del(nfs_srv *s, const char *host, const char *path)
{
	pthread_mutex_lock(&s->mu);
	for (int i = 0; i < s->nmounts;) {
		if (!strcmp(s->mounts[i].host, host) && (!path || !strcmp(s->mounts[i].path, path)))
			memmove(s->mounts + i, s->mounts + i + 1,
			        sizeof(s->mounts[0]) * (size_t)(--s->nmounts - i));
		else
			i++;
	}
	pthread_mutex_unlock(&s->mu);
}

/* ---- duplicate request cache ----
 * A client that lost a reply (its connection broke) sends the call again with the
 * same xid, usually on a new connection. Re-running a REMOVE or an exclusive CREATE
 * would answer NOENT or EXIST for what succeeded, so the replies of non-idempotent
 * procedures are kept (keyed by client address, xid and procedure, in a ring of
 * NFS_DRC_SLOTS) and sent again. The address without the port: a reconnecting
 * client gets a new one. */

static nfs_drc *drc_find(nfs_srv *s, const nfs_req *q)
{
	for (int i = 0; i < NFS_DRC_SLOTS; i++) {
		nfs_drc *d = &s->drc[i];
		if (d->used && d->xid == q->call.xid && d->proc == q->call.proc &&
		    !memcmp(d->addr, q->c->addr, 16))
			return d;
	}
	return NULL;
}

static int drc_lookup(nfs_srv *s, const nfs_req *q, uint8_t *out, size_t cap, size_t *len)
{
	int hit = 0;
	pthread_mutex_lock(&s->mu);
	nfs_drc *d = drc_find(s, q);
	if (d && d->len <= cap) {
		memcpy(out, d->reply, d->len);
		*len = d->len;
		hit = 1;
		s->drc_hits++;
	}
	pthread_mutex_unlock(&s->mu);
	return hit;
}

/* Under s->mu. */
static void drc_store_locked(nfs_srv *s, const nfs_req *q, const uint8_t *rep, size_t len)
{
	if (len > NFS_DRC_REPLY_MAX)
		return;
	nfs_drc *d = &s->drc[s->drc_next++ % NFS_DRC_SLOTS];
	memcpy(d->addr, q->c->addr, 16);
	d->xid = q->call.xid;
	d->proc = q->call.proc;
	d->len = (uint32_t)len;
	d->used = 1;
	memcpy(d->reply, rep, len);
}

/* Calls in progress. With many calls in flight per connection, a client that
 * retransmits a call still running (its timer fired while a sync was slow, or its
 * connection broke and it re-sent on a new one) would have it run twice, and the
 * DRC cannot help: the first has no reply yet. So every call in flight is listed
 * (nfs_conn.reg, under s->mu) and a call with the address, xid, program and
 * procedure of one listed is dropped, as Linux's nfsd does (RC_DROPIT): the reply
 * of the running one answers it on the same connection; on another connection the
 * client re-sends once more and then finds the DRC entry (stored under the same
 * s->mu hold that unlists the call, so there is no gap between the two: run_job).
 * Under s->mu. */
static int inprogress_locked(nfs_srv *s, const nfs_conn *c, const rpc_call *k)
{
	for (const nfs_conn *o = s->conns; o; o = o->next) {
		if (o->family != c->family || memcmp(o->addr, c->addr, 16))
			continue;
		for (const nfs_job *j = o->reg; j; j = j->reg_next)
			if (j->dec == RPC_DEC_OK && j->call.xid == k->xid && j->call.proc == k->proc &&
			    j->call.prog == k->prog)
				return 1;
	}
	return 0;
}

static void unlist_locked(nfs_conn *c, nfs_job *j)
{
	for (nfs_job **pp = &c->reg; *pp; pp = &(*pp)->reg_next)
		if (*pp == j) {
			*pp = j->reg_next;
			c->busy--;
			return;
		}
}

/* ---- connections ---- */

static int read_full(nfs_conn *c, void *buf, size_t n, uint64_t deadline)
{
	netio io = {.fd = c->fd, .stopping = &c->srv->stopping};
	return netio_recv(&io, buf, n, deadline);
}

static int send_all(nfs_conn *c, const void *buf, size_t n)
{
	netio io = {.fd = c->fd, .stopping = &c->srv->stopping};
	return netio_send(&io, buf, n, bks_now_ns() + SEND_MS * 1000000ull);
}

/* The same for pieces (a zero-copy READ reply); iov is consumed. */
static int send_allv(nfs_conn *c, struct iovec *iov, int n)
{
	netio io = {.fd = c->fd, .stopping = &c->srv->stopping};
	return netio_sendv(&io, iov, n, bks_now_ns() + SEND_MS * 1000000ull);
}

/* Does some export admit c's address (and source port)? The auth flavor and the
 * export are checked again by each call. */
static int peer_known(nfs_srv *s, const nfs_conn *c)
{
	int ok = 0;
	pthread_mutex_lock(&s->mu);
	for (int i = 0; i < s->nexports && !ok; i++) {
		const cfg_export *x = &s->exports[i].x;
		ok = cfg_export_allows(x, c->family == AF_INET ? CFG_AF_INET : CFG_AF_INET6,
		                       c->addr) && !(x->secure && c->port >= 1024);
	}
	pthread_mutex_unlock(&s->mu);
	return ok;
}

/* A record longer than REC_SMALL (only a WRITE needs one) is read on only when its
 * first REC_PEEK bytes (the call header, both auth bodies at their largest) are an
 * NFSv3 WRITE from an address an export admits: anyone else who announces a
 * megabyte is closed after REC_PEEK bytes. 0, or -EMSGSIZE. */
#define REC_SMALL (8u << 10)
#define REC_PEEK 1024u
static int big_record_ok(nfs_conn *c, size_t have)
{
	nfs_srv *s = c->srv;
	rpc_call k;
	char esc[LOG_ESC_LEN];
	if (rpc_call_decode(c->rec, have, &k) == RPC_DEC_OK && k.prog == NFS_PROGRAM &&
	    k.vers == NFS_V3 && k.proc == NFS3_WRITE && peer_known(s, c))
		return 0;
	__atomic_add_fetch(&s->big_refused, 1, __ATOMIC_RELAXED);
	LOG_I("nfs: client %s: a record over %u bytes that is not a WRITE from an exported-to "
	      "address: closed", log_escs(esc, sizeof(esc), c->peer), REC_SMALL);
	return -EMSGSIZE;
}

/* Make c->rec hold at least n bytes, doubling (a record's bytes come in order, so
 * it reaches what the peer actually sent, not what its header announced). */
static int rec_grow(nfs_conn *c, size_t n, size_t max)
{
	if (n <= c->rec_cap)
		return 0;
	size_t cap = BKS_MIN(BKS_MAX(c->rec_cap * 2, n), BKS_MAX(max, n));
	uint8_t *nb = realloc(c->rec, cap);
	if (!nb)
		return -ENOMEM;
	c->rec = nb;
	c->rec_cap = cap;
	return 0;
}

/* Read one whole record into c->rec. Fragment headers are checked against the limit
 * before their bytes are read (rpc_rec), so a peer claiming 2 GiB costs nothing; the
 * buffer grows only with the bytes that came (a peer that announces 1 MiB and drips
 * costs what it dripped), and past REC_SMALL only for a WRITE of an admitted
 * address (big_record_ok). */
static int read_record(nfs_conn *c, size_t *len)
{
	nfs_srv *s = c->srv;
	rpc_rec rr;
	uint8_t hb[4];
	char esc[LOG_ESC_LEN];
	rpc_rec_init(&rr, s->wsize + REC_SLACK);
	uint64_t deadline = bks_now_ns() + IDLE_MS * 1000000ull;
	int first = 1, big = 0;
	do {
		int r = read_full(c, hb, 4, deadline);
		if (r < 0)
			return r;
		if (first) {
			deadline = bks_now_ns() + REC_MS * 1000000ull;
			first = 0;
		}
		uint32_t h = (uint32_t)hb[0] << 24 | (uint32_t)hb[1] << 16 | (uint32_t)hb[2] << 8 | hb[3];
		if ((r = rpc_rec_frag(&rr, h)) < 0) {
			LOG_I("nfs: client %s: %s (fragment of %u bytes): closed", log_escs(esc,
			      sizeof(esc), c->peer), r == -EMSGSIZE ? "record over the limit" :
			      "too many fragments", h & ~RPC_LAST_FRAG);
			return r;
		}
		size_t fl = rr.frag_left, at = rr.have - fl, end = rr.have;
		while (at < end) {
			size_t n = BKS_MIN(end - at, (size_t)256 << 10);
			if (!big && at + n > REC_SMALL) {
				if (at >= REC_PEEK) {
					if ((r = big_record_ok(c, at)) < 0)
						return r;
					big = 1;
					continue;
				}
				n = REC_PEEK - at;
			}
			if ((r = rec_grow(c, at + n, end)) < 0 ||
			    (r = read_full(c, c->rec + at, n, deadline)) < 0)
				return r;
			at += n;
		}
		rpc_rec_take(&rr, fl);
	} while (!rpc_rec_done(&rr));
	*len = rr.have;
	return 0;
}

static void answer(nfs_req *q)
{
	rpc_call *k = &q->call;
	switch (k->prog) {
	case NFS_PROGRAM:
		if (k->vers != NFS_V3)
			rpc_reply_prog_mismatch(q->e, k->xid, NFS_V3, NFS_V3);
		else
			nfs3_dispatch(q);
		break;
	case MOUNT_PROGRAM:
		if (k->vers != MOUNT_V3)
			rpc_reply_prog_mismatch(q->e, k->xid, MOUNT_V3, MOUNT_V3);
		else
			nfs_mount_dispatch(q);
		break;
	case PMAP_PROGRAM:
		if (k->vers != PMAP_V2)
			rpc_reply_prog_mismatch(q->e, k->xid, PMAP_V2, PMAP_V2);
		else
			nfs_pmap_dispatch(q);
		break;
	default:
		rpc_reply_accepted(q->e, k->xid, RPC_PROG_UNAVAIL);
	}
}

/* Send one reply (out: its 4 bytes of record mark, then len bytes) whole, under the
 * connection's send lock so replies of calls finishing together do not interleave.
 * A failed send shuts the socket down: the reader stops, the other workers' replies
 * are dropped (the client re-sends what it has no reply for). */
static void send_reply(nfs_conn *c, uint8_t *out, size_t len, const nfs_req *q)
{
	uint32_t rm = rpc_rm_header((uint32_t)len);
	out[0] = (uint8_t)(rm >> 24);
	out[1] = (uint8_t)(rm >> 16);
	out[2] = (uint8_t)(rm >> 8);
	out[3] = (uint8_t)rm;
	/* A zero-copy READ: the record up to its data, the data's pieces, the rest
	 * (padding), in one sendmsg where the socket takes it. */
	struct iovec iov[NFS_READ_PIECES + 2];
	int niov = 0;
	if (q->npieces) {
		size_t at = 4 + q->data_at, end = at + q->data_len;
		iov[niov++] = (struct iovec){.iov_base = out, .iov_len = at};
		for (int i = 0; i < q->npieces; i++)
			iov[niov++] = (struct iovec){.iov_base = (void *)q->pieces[i].p,
			                             .iov_len = q->pieces[i].len};
		if (len + 4 > end)
			iov[niov++] = (struct iovec){.iov_base = out + end, .iov_len = len + 4 - end};
	}
	pthread_mutex_lock(&c->smu);
	if (!c->broken) {
		int r = niov ? send_allv(c, iov, niov) : send_all(c, out, len + 4);
		if (r < 0) {
			c->broken = 1;
			shutdown(c->fd, SHUT_RDWR);
			if (r != -ECONNRESET && r != -ECANCELED && r != -EPIPE)
				LOG_D("nfs: client %s: send: %s", c->peer, strerror(-r));
		}
	}
	pthread_mutex_unlock(&c->smu);
}

/* Answer one job (a worker; out: the worker's reply buffer, cap bytes): a
 * non-idempotent reply goes into the DRC and the call is unlisted under one hold of
 * s->mu, then the reply is sent. Unlisted before the send, not after: a client that
 * has its reply may send a new call with the same xid at once (test-nfs-exports
 * re-sends a REMOVE that way), which must be answered (from the DRC), not dropped.
 * A retransmission that slips in between the unlisting and the send gets a second
 * reply, which the client ignores (an xid it no longer waits for). */
static void run_job(nfs_conn *c, nfs_job *j, uint8_t *out, size_t cap)
{
	nfs_srv *s = c->srv;
	nfs_req q = {.s = s, .c = c, .call = j->call};
	xdr_enc e;
	int cached = 0;
	xdr_enc_init(&e, out + 4, cap - 4);
	q.e = &e;
	switch (j->dec) {
	case RPC_DEC_RPC_MISMATCH:
		rpc_reply_rpc_mismatch(&e, q.call.xid);
		break;
	case RPC_DEC_BADCRED:
		rpc_reply_auth_error(&e, q.call.xid, RPC_AUTH_BADCRED);
		break;
	case RPC_DEC_BADVERF:
		rpc_reply_auth_error(&e, q.call.xid, RPC_AUTH_BADVERF);
		break;
	default: { /* RPC_DEC_OK: the reader took nothing else */
		cached = q.call.prog == NFS_PROGRAM && q.call.vers == NFS_V3 &&
		         nfs3_proc_nonidempotent(q.call.proc);
		size_t dl;
		if (cached && drc_lookup(s, &q, out + 4, cap - 4, &dl)) {
			e.len = dl;
			cached = 0;
		} else {
			answer(&q);
		}
	}
	}
	if (j->dec != RPC_DEC_OK)
		__atomic_add_fetch(&s->rpc_errors, 1, __ATOMIC_RELAXED);
	LOG_D("nfs: client %s: xid %u prog %u vers %u proc %u: %zu reply bytes", c->peer,
	      q.call.xid, q.call.prog, q.call.vers, q.call.proc, e.len);
	if (e.err) { /* a reply that did not fit: say so rather than send half */
		LOG_W("nfs: client %s: reply to xid %u did not fit", c->peer, q.call.xid);
		q.npieces = 0;
		xdr_enc_init(&e, out + 4, cap - 4);
		rpc_reply_accepted(&e, q.call.xid, RPC_SYSTEM_ERR);
		cached = 0;
	}
	pthread_mutex_lock(&s->mu);
	if (cached)
		drc_store_locked(s, &q, out + 4, e.len);
	unlist_locked(c, j);
	pthread_mutex_unlock(&s->mu);
	send_reply(c, out, e.len, &q);
	if (q.pins.n) { /* a zero-copy READ's buffers, sent */
		appl_lock(s->ap);
		store_read_unpin(ns_store(s->ap->n), &q.pins);
		appl_unlock(s->ap);
	}
	__atomic_store_n(&c->last_ns, bks_now_ns(), __ATOMIC_RELAXED);
	client_note(s, c, q.rd, q.wr);
}

/* A worker of connection c: takes jobs until the reader says closing and the queue
 * is empty (so every call read is answered, or its reply dropped when the socket is
 * gone, before the connection is freed). */
static void *worker_main(void *arg)
{
	nfs_conn *c = arg;
	nfs_srv *s = c->srv;
	/* The reply buffer is the worker's, made at its first job: a peer that never
	 * sends a whole record costs none, and a peer that never has two calls in
	 * flight costs one, as before calls could overlap. */
	size_t cap = s->rsize + 4096;
	uint8_t *out = malloc(cap);
	pthread_mutex_lock(&c->mu);
	for (;;) {
		while (!c->qhead && !c->closing) {
			c->idle++;
			pthread_cond_wait(&c->wcv, &c->mu);
			c->idle--;
		}
		nfs_job *j = c->qhead;
		if (!j)
			break;
		c->qhead = j->next;
		if (!c->qhead)
			c->qtail = NULL;
		c->qlen--;
		pthread_mutex_unlock(&c->mu);
		if (out) {
			run_job(c, j, out, cap);
		} else { /* no memory for a reply: the client re-sends after a timeout */
			pthread_mutex_lock(&s->mu);
			unlist_locked(c, j);
			pthread_mutex_unlock(&s->mu);
		}
		pthread_mutex_lock(&c->mu);
		c->inflight--;
		c->held -= j->cap;
		pthread_cond_signal(&c->rcv);
		free(j->rec);
		free(j);
	}
	pthread_mutex_unlock(&c->mu);
	free(out);
	return NULL;
}

/* Queue job j for c's workers, starting one when every worker is busy (never more
 * than NFS_INFLIGHT_MAX: the bound on calls in flight keeps them busy enough). */
static int enqueue(nfs_conn *c, nfs_job *j)
{
	int r = 0;
	pthread_mutex_lock(&c->mu);
	j->next = NULL;
	if (c->qtail)
		c->qtail->next = j;
	else
		c->qhead = j;
	c->qtail = j;
	c->qlen++;
	c->inflight++;
	c->held += j->cap;
	if (c->qlen > c->idle && c->nworkers < NFS_INFLIGHT_MAX) {
		if (pthread_create(&c->wth[c->nworkers], NULL, worker_main, c) == 0)
			c->nworkers++;
		else if (!c->nworkers) /* nobody would take it: the reader unqueues it */
			r = -EAGAIN;
	}
	if (r == 0) {
		pthread_cond_signal(&c->wcv);
	} else {
		c->qhead = c->qtail = NULL;
		c->qlen = c->inflight = 0;
		c->held = 0;
	}
	pthread_mutex_unlock(&c->mu);
	return r;
}

/* Read one call into a job of its own: 0 and *out (NULL: a retransmission of a call
 * in flight, dropped), or -errno to close. */
static int read_job(nfs_conn *c, nfs_job **out)
{
	nfs_srv *s = c->srv;
	size_t len;
	*out = NULL;
	int r = read_record(c, &len);
	if (r < 0)
		return r;
	nfs_job *j = calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	j->rec = c->rec; /* the job takes the buffer: the next record gets a new one */
	j->cap = c->rec_cap;
	j->len = len;
	c->rec = NULL;
	c->rec_cap = 0;
	j->dec = rpc_call_decode(j->rec, len, &j->call);
	__atomic_add_fetch(&s->calls, 1, __ATOMIC_RELAXED);
	switch (j->dec) {
	case RPC_DEC_OK:
	case RPC_DEC_RPC_MISMATCH:
	case RPC_DEC_BADCRED:
	case RPC_DEC_BADVERF:
		break;
	default:
		__atomic_add_fetch(&s->rpc_errors, 1, __ATOMIC_RELAXED);
		LOG_I("nfs: client %s: not an RPC call (%zu bytes): closed", c->peer, len);
		r = -EPROTO;
		goto drop;
	}
	/* Listed under s->mu: a connection is never dropped to make room (accept_one)
	 * between its call and the reply. */
	pthread_mutex_lock(&s->mu);
	if (c->evicted) {
		r = -ECONNRESET;
	} else if (j->dec == RPC_DEC_OK && inprogress_locked(s, c, &j->call)) {
		s->drc_inprogress++;
		c->calls++;
		pthread_mutex_unlock(&s->mu);
		LOG_D("nfs: client %s: xid %u is running: the retransmission is dropped", c->peer,
		      j->call.xid);
		goto drop;
	} else {
		j->reg_next = c->reg;
		c->reg = j;
		c->busy++;
		c->calls++;
		*out = j;
	}
	pthread_mutex_unlock(&s->mu);
	if (r == 0)
		return 0;
drop:
	free(j->rec);
	free(j);
	return r;
}

/* The reader of a connection: reads calls while fewer than its limit are in flight
 * and their records hold less than NFS_HELD_RECS WRITEs' worth (else it waits and
 * TCP pushes back on the client), queues them for the workers. At the end it lets
 * every call read finish, then joins the workers. */
static void *conn_main(void *arg)
{
	nfs_conn *c = arg;
	nfs_srv *s = c->srv;
	/* An address no export admits may ask MOUNT and the portmapper (to be told no),
	 * one call at a time: it costs one worker and one reply buffer, as before. */
	int limit = peer_known(s, c) ? NFS_INFLIGHT_MAX : 1;
	size_t held_max = (size_t)NFS_HELD_RECS * (s->wsize + REC_SLACK);
	int r = 0;
	for (;;) {
		pthread_mutex_lock(&c->mu);
		while ((c->inflight >= limit || c->held >= held_max) && !s->stopping) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 1;
			pthread_cond_timedwait(&c->rcv, &c->mu, &ts);
		}
		pthread_mutex_unlock(&c->mu);
		if (s->stopping) {
			r = -ECANCELED;
			break;
		}
		nfs_job *j;
		if ((r = read_job(c, &j)) < 0)
			break;
		if (j && (r = enqueue(c, j)) < 0) {
			pthread_mutex_lock(&s->mu);
			unlist_locked(c, j);
			pthread_mutex_unlock(&s->mu);
			free(j->rec);
			free(j);
			break;
		}
	}
	if (r != -ECONNRESET && r != -ECANCELED)
		LOG_D("nfs: client %s: closed (%s)", c->peer, strerror(-r));
	/* The calls read still run and send their replies (a client that half-closes
	 * after its last call gets them); then the workers end. */
	pthread_mutex_lock(&c->mu);
	c->closing = 1;
	pthread_cond_broadcast(&c->wcv);
	int nw = c->nworkers;
	pthread_mutex_unlock(&c->mu);
	for (int i = 0; i < nw; i++)
		pthread_join(c->wth[i], NULL);
	shutdown(c->fd, SHUT_RDWR);
	pthread_mutex_lock(&s->mu);
	c->done = 1;
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

/* Join and free finished connections (under s->mu). */
static void reap_locked(nfs_srv *s, int all)
{
	for (nfs_conn **pp = &s->conns; *pp;) {
		nfs_conn *c = *pp;
		if (!c->done && !all) {
			pp = &c->next;
			continue;
		}
		*pp = c->next;
		s->nconns--;
		nfs_client *v = client_of_locked(s, c);
		if (v)
			v->conns--;
		pthread_mutex_unlock(&s->mu);
		pthread_join(c->th, NULL);
		pthread_mutex_lock(&s->mu);
		close(c->fd);
		free(c->rec);
		pthread_mutex_destroy(&c->mu);
		pthread_mutex_destroy(&c->smu);
		pthread_cond_destroy(&c->wcv);
		pthread_cond_destroy(&c->rcv);
		free(c);
	}
}

/* Room for one more connection (under s->mu): past max_connections the oldest idle
 * connection is shut down (its thread ends and is reaped), as Linux's nfsd does with
 * its temporary sockets: a client reconnects by itself and re-sends what had no
 * reply. "Idle" is not in a call; first those that never finished one (a peer that
 * connects and drips a record header: the slowloris), oldest first; then the one
 * whose last reply is oldest. Only when every connection is in a call is the new
 * one refused. 1: room, 0: none; *victim gets the peer dropped, if any. */
static int make_room_locked(nfs_srv *s, char *victim, size_t cap)
{
	int live = 0;
	nfs_conn *v = NULL;
	for (nfs_conn *c = s->conns; c; c = c->next) {
		if (c->evicted || c->done)
			continue;
		live++;
		if (c->busy)
			continue;
		if (!v || (!c->calls && v->calls) ||
		    (!c->calls == !v->calls &&
		     (c->calls ? c->last_ns < v->last_ns : c->born_ns < v->born_ns)))
			v = c;
	}
	if ((uint32_t)live < s->max_conns)
		return 1;
	if (!v)
		return 0;
	v->evicted = 1;
	shutdown(v->fd, SHUT_RDWR);
	s->conns_dropped++;
	snprintf(victim, cap, "%s (%llu calls, idle %llu ms)", v->peer,
	         (unsigned long long)v->calls,
	         (unsigned long long)((bks_now_ns() - (v->calls ? v->last_ns : v->born_ns)) /
	                              1000000));
	return 1;
}

static void accept_one(nfs_srv *s, int lfd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return;
	nfs_conn *c = calloc(1, sizeof(*c));
	if (c) {
		c->srv = s;
		c->fd = fd;
		c->cli = -1;
		c->born_ns = c->last_ns = bks_now_ns();
		pthread_mutex_init(&c->mu, NULL);
		pthread_mutex_init(&c->smu, NULL);
		pthread_cond_init(&c->wcv, NULL);
		pthread_cond_init(&c->rcv, NULL);
	}
	if (!c)
		goto drop;
	char host[INET6_ADDRSTRLEN] = "?";
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		c->family = AF_INET;
		memcpy(c->addr, &a->sin_addr, 4);
		c->port = ntohs(a->sin_port);
		inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
	} else {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		c->port = ntohs(a->sin6_port);
		if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) {
			c->family = AF_INET;
			memcpy(c->addr, a->sin6_addr.s6_addr + 12, 4);
			inet_ntop(AF_INET, c->addr, host, sizeof(host));
		} else {
			c->family = AF_INET6;
			memcpy(c->addr, &a->sin6_addr, 16);
			inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
		}
	}
	snprintf(c->peer, sizeof(c->peer), "%s:%d", host, c->port);
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	char victim[160] = "";
	pthread_mutex_lock(&s->mu);
	if (!make_room_locked(s, victim, sizeof(victim))) {
		s->conns_refused++;
		pthread_mutex_unlock(&s->mu);
		LOG_W("nfs: client %s refused: max_connections (%u) reached, all in a call",
		      c->peer, s->max_conns);
		goto drop;
	}
	if (pthread_create(&c->th, NULL, conn_main, c) != 0) {
		pthread_mutex_unlock(&s->mu);
		goto drop;
	}
	c->next = s->conns;
	s->conns = c;
	s->nconns++;
	s->conns_total++;
	client_take_locked(s, c);
	pthread_mutex_unlock(&s->mu);
	if (victim[0])
		LOG_I("nfs: client %s dropped to let %s in (max_connections %u)", victim, c->peer,
		      s->max_conns);
	return;
drop:
	close(fd);
	if (c) {
		pthread_mutex_destroy(&c->mu);
		pthread_mutex_destroy(&c->smu);
		pthread_cond_destroy(&c->wcv);
		pthread_cond_destroy(&c->rcv);
	}
	free(c);
}

static void *accept_main(void *arg)
{
	nfs_srv *s = arg;
	uint64_t last_flush = bks_now_ns();
	while (!s->stopping) {
		struct pollfd pf[4];
		int n = 0, idx[4];
		for (int i = 0; i < 3; i++)
			if (s->lfd[i] >= 0) {
				pf[n] = (struct pollfd){.fd = s->lfd[i], .events = POLLIN};
				idx[n++] = i;
			}
		pf[n] = (struct pollfd){.fd = s->wake[0], .events = POLLIN};
		int pr = poll(pf, (nfds_t)(n + 1), 1000);
		if (s->stopping)
			break;
		for (int i = 0; pr > 0 && i < n; i++)
			if (pf[i].revents & POLLIN)
				accept_one(s, s->lfd[idx[i]]);
		pthread_mutex_lock(&s->mu);
		reap_locked(s, 0);
		pthread_mutex_unlock(&s->mu);
		/* Unstable writes a client never committed (it went away, or it keeps
		 * writing without COMMIT) are applied once idle for a few seconds. */
		uint64_t now = bks_now_ns();
		if (now - last_flush > 2000000000ull) {
			last_flush = now;
			appl_lock(s->ap);
			nfs_stage_flush_idle(s, now - 5000000000ull);
			appl_unlock(s->ap);
		}
	}
	return NULL;
}

static int listen_on(const cfg_addr *a, int port, int *fdout, int *bound, bks_err *e)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	memset(&ss, 0, sizeof(ss));
	int fam = a->family == CFG_AF_INET6 ? AF_INET6 : AF_INET;
	if (fam == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		inet_pton(AF_INET, a->family == CFG_AF_LOCALHOST ? "127.0.0.1" : a->host,
		          &s4->sin_addr);
		sl = sizeof(*s4);
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		inet_pton(AF_INET6, a->host, &s6->sin6_addr);
		sl = sizeof(*s6);
	}
	int fd = socket(fam, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), one = 1;
	if (fd < 0)
		return bks_fail(e, -errno, "nfs: socket: %s", strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 64) < 0) {
		int err = errno;
		close(fd);
		return bks_fail(e, -err, "nfs: listen on %s:%d: %s", a->host, port, strerror(err));
	}
	sl = sizeof(ss);
	getsockname(fd, (struct sockaddr *)&ss, &sl);
	*bound = ntohs(fam == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port :
	                                ((struct sockaddr_in6 *)&ss)->sin6_port);
	*fdout = fd;
	return 0;
}

int nfs_start(appl *ap, const char *key_path, nfs_srv **out, bks_err *e)
{
	const bks_cfg *cfg = &ap->cfg;
	*out = NULL;
	if (!cfg->nfs_enabled)
		return 0;
	nfs_srv *s = calloc(1, sizeof(*s));
	if (!s)
		return bks_fail(e, -ENOMEM, "nfs: out of memory");
	int r;
	s->ap = ap;
	pthread_mutex_init(&s->mu, NULL);
	pthread_mutex_init(&s->wmu, NULL);
	pthread_cond_init(&s->wcv, NULL);
	s->lfd[0] = s->lfd[1] = s->lfd[2] = -1;
	s->wake[0] = s->wake[1] = -1;
	s->max_conns = cfg->nfs_max_connections;
	s->wsize = cfg->nfs_wsize;
	s->rsize = cfg->nfs_rsize;
	s->stage_file_max = cfg->nfs_stage_file;
	s->stage_total_max = cfg->nfs_stage_total;
	s->boot_ns = bks_wall_ns();
	/* The write verifier: a client that sees it change re-sends its uncommitted
	 * writes (RFC 1813 §3.3.7). Random, so two starts within a clock tick differ. */
	if (RAND_bytes(s->wverf, sizeof(s->wverf)) != 1) {
		r = bks_fail(e, -EIO, "nfs: no random bytes");
		goto fail;
	}
	if ((r = load_key(key_path, s->key, e)) < 0)
		goto fail;
	if (!(s->exports = exports_copy(cfg, NULL, 0))) {
		r = bks_fail(e, -ENOMEM, "nfs: out of memory");
		goto fail;
	}
	s->nexports = cfg->nexports;
	if (!cfg->nfs_listen_set) {
		r = bks_fail(e, -EINVAL, "nfs: enabled with an empty [nfs] listen");
		goto fail;
	}
	int ports[3] = {cfg->nfs_listen.port, (int)cfg->nfs_mount_port,
	                (int)cfg->nfs_portmap_port};
	/* The portmapper's port is rpcbind's when one runs: register with it rather
	 * than listen beside it (docs/architecture.md "NFS"). */
	int rpcb = ports[2] == PMAP_PORT && nfs_rpcb_present();
	for (int i = 0; i < 3; i++) {
		if (!ports[i] || (i == 2 && rpcb))
			continue;
		if ((r = listen_on(&cfg->nfs_listen, ports[i], &s->lfd[i], &s->port[i], e)) < 0)
			goto fail;
	}
	if (pipe2(s->wake, O_CLOEXEC) < 0) {
		r = bks_fail(e, -errno, "nfs: pipe: %s", strerror(errno));
		goto fail;
	}
	if (pthread_create(&s->wth, NULL, nfs_stage_applier, s) != 0) {
		r = bks_fail(e, -EAGAIN, "nfs: cannot start a thread");
		goto fail;
	}
	s->wth_started = 1;
	if (pthread_create(&s->th, NULL, accept_main, s) != 0) {
		r = bks_fail(e, -EAGAIN, "nfs: cannot start a thread");
		goto fail;
	}
	if (!cfg->nexports)
		LOG_W("nfs: enabled, but no [export NAME] section: nothing can be mounted");
	char pm[48] = "off";
	if (s->port[2])
		snprintf(pm, sizeof(pm), "port %d", s->port[2]);
	else if (rpcb && nfs_rpcb_register(s) == 0)
		snprintf(pm, sizeof(pm), "the system's rpcbind (%s)", s->rpcb_how);
	else if (rpcb)
		snprintf(pm, sizeof(pm), "none (rpcbind holds port %d but refused us)", PMAP_PORT);
	LOG_I("nfs: serving NFSv3 on %s:%d, MOUNT on port %d, portmapper %s; %d exports",
	      cfg->nfs_listen.host, s->port[0], s->port[1], pm, s->nexports);
	appl_on_readonly(ap, nfs_stage_readonly, s);
	*out = s;
	return 0;
fail:
	if (s->wth_started) {
		s->stopping = 1;
		pthread_join(s->wth, NULL);
	}
	for (int i = 0; i < 3; i++)
		if (s->lfd[i] >= 0)
			close(s->lfd[i]);
	if (s->wake[0] >= 0) {
		close(s->wake[0]);
		close(s->wake[1]);
	}
	exports_free(s->exports, s->nexports);
	pthread_mutex_destroy(&s->mu);
	pthread_mutex_destroy(&s->wmu);
	pthread_cond_destroy(&s->wcv);
	free(s);
	return r;
}

void nfs_stop(nfs_srv *s)
{
	if (!s)
		return;
	appl_on_readonly(s->ap, NULL, NULL);
	/* Unset first: a client that asks rpcbind from now on gets no port rather than
	 * one nobody listens on. */
	nfs_rpcb_unregister(s);
	s->stopping = 1;
	if (write(s->wake[1], "x", 1) < 0) { /* the accept loop polls each second anyway */
	}
	pthread_join(s->th, NULL);
	for (int i = 0; i < 3; i++)
		if (s->lfd[i] >= 0)
			close(s->lfd[i]);
	pthread_mutex_lock(&s->mu);
	for (nfs_conn *c = s->conns; c; c = c->next)
		shutdown(c->fd, SHUT_RDWR);
	reap_locked(s, 1);
	pthread_mutex_unlock(&s->mu);
	pthread_mutex_lock(&s->wmu);
	pthread_cond_signal(&s->wcv);
	pthread_mutex_unlock(&s->wmu);
	pthread_join(s->wth, NULL);
	/* Unstable writes not yet committed go into the store before the final commit:
	 * a clean shutdown loses nothing a client wrote. */
	appl_lock(s->ap);
	nfs_stage_flush_idle(s, 0);
	nfs_stage_free_all(s);
	appl_unlock(s->ap);
	close(s->wake[0]);
	close(s->wake[1]);
	exports_free(s->exports, s->nexports);
	pthread_mutex_destroy(&s->mu);
	pthread_mutex_destroy(&s->wmu);
	pthread_cond_destroy(&s->wcv);
	free(s);
}

void nfs_ports(nfs_srv *s, int *nfs, int *mount, int *pmap)
{
	*nfs = s ? s->port[0] : 0;
	*mount = s ? s->port[1] : 0;
	*pmap = s ? s->port[2] : 0;
}

void nfs_status_json(nfs_srv *s, json *j)
{
	json_obj_begin(j, "nfs");
	json_bool(j, "enabled", s != NULL);
	if (!s) {
		json_obj_end(j);
		return;
	}
	json_int(j, "port", s->port[0]);
	json_int(j, "mount_port", s->port[1]);
	json_int(j, "portmap_port", s->port[2]);
	json_str(j, "rpcbind", s->rpcb_registered ? s->rpcb_how : "");
	pthread_mutex_lock(&s->mu);
	json_int(j, "connections", s->nconns);
	json_uint(j, "max_connections", s->max_conns);
	json_uint(j, "connections_total", s->conns_total);
	json_uint(j, "connections_dropped", s->conns_dropped);
	json_uint(j, "connections_refused", s->conns_refused);
	json_uint(j, "big_records_refused", __atomic_load_n(&s->big_refused, __ATOMIC_RELAXED));
	json_uint(j, "calls", __atomic_load_n(&s->calls, __ATOMIC_RELAXED));
	json_uint(j, "rpc_errors", __atomic_load_n(&s->rpc_errors, __ATOMIC_RELAXED));
	json_uint(j, "duplicate_replies", s->drc_hits);
	json_uint(j, "duplicates_in_progress_dropped", s->drc_inprogress);
	/* Group commit as NFS sees it: calls that waited for their change to be durable,
	 * and the syncs run for them (fewer when calls in flight share them). */
	uint64_t dw, ds, de;
	appl_durable_stats(s->ap, &dw, &ds, &de);
	json_uint(j, "durable_waits", dw);
	json_uint(j, "durable_syncs", ds);
	/* Written under appl.mu; a status read races them harmlessly (a figure). */
	json_uint(j, "staged_bytes", __atomic_load_n(&s->staged_bytes, __ATOMIC_RELAXED));
	json_uint(j, "staged_applied_early",
	          __atomic_load_n(&s->staged_applied_early, __ATOMIC_RELAXED));
	json_arr_begin(j, "exports");
	for (int i = 0; i < s->nexports; i++) {
		const nfs_export *x = &s->exports[i];
		json_obj_begin(j, NULL);
		json_str(j, "name", x->x.name);
		json_str(j, "path", x->x.path);
		json_str(j, "access", x->x.rw ? "rw" : "ro");
		json_uint(j, "calls", x->calls);
		json_uint(j, "bytes_read", x->bytes_read);
		json_uint(j, "bytes_written", x->bytes_written);
		double rd, wr;
		export_rates(x, &rd, &wr);
		json_double(j, "read_bps", rd);
		json_double(j, "write_bps", wr);
		json_obj_end(j);
	}
	json_arr_end(j);
	/* Most recently seen first. */
	int order[NFS_CLIENTS_MAX], n = 0;
	for (int i = 0; i < NFS_CLIENTS_MAX; i++) {
		if (!s->clients[i].used)
			continue;
		int k = n++;
		while (k > 0 && s->clients[order[k - 1]].last_ns < s->clients[i].last_ns) {
			order[k] = order[k - 1];
			k--;
		}
		order[k] = i;
	}
	json_arr_begin(j, "clients");
	for (int i = 0; i < n; i++) {
		const nfs_client *v = &s->clients[order[i]];
		char host[INET6_ADDRSTRLEN];
		inet_ntop(v->family, v->addr, host, sizeof(host));
		json_obj_begin(j, NULL);
		json_str(j, "address", host);
		json_int(j, "connections", v->conns);
		json_uint(j, "connections_total", v->conns_total);
		json_uint(j, "calls", v->calls);
		json_uint(j, "bytes_read", v->bytes_read);
		json_uint(j, "bytes_written", v->bytes_written);
		json_uint(j, "first_seen_ns", v->first_ns);
		json_uint(j, "last_seen_ns", v->last_ns);
		json_obj_end(j);
	}
	json_arr_end(j);
	json_arr_begin(j, "mounts");
	for (int i = 0; i < s->nmounts; i++) {
		json_obj_begin(j, NULL);
		json_str(j, "client", s->mounts[i].host);
		json_str(j, "path", s->mounts[i].path);
		json_obj_end(j);
	}
	json_arr_end(j);
	pthread_mutex_unlock(&s->mu);
	json_obj_end(j);
}
