/* daemon/nfs_mount.c: MOUNT v3 (RFC 1813 appendix I), the portmapper (RFC 1833,
 * version 2, the calls clients make: NULL, GETPORT, DUMP), and the registration with
 * a system rpcbind. See nfs.h. */
#include <config.h>

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/bks.h"

#include "daemon/log.h"
#include "daemon/nfs.h"

static void mnt_err(nfs_req *q, uint32_t st)
{
	rpc_reply_accepted(q->e, q->call.xid, RPC_SUCCESS);
	xdr_put_u32(q->e, st);
}

static void host_of(const nfs_conn *c, char *out, size_t cap)
{
	inet_ntop(c->family, c->addr, out, (socklen_t)cap);
}

static void do_mnt(nfs_req *q)
{
	nfs_srv *s = q->s;
	char path[MNT_PATH_MAX + 1], xpath[MNT_PATH_MAX + 1], host[64], esc[LOG_ESC_LEN];
	cfg_export x;
	if (mnt3_decode_path(q->call.args, q->call.args_len, path) < 0) {
		rpc_reply_accepted(q->e, q->call.xid, RPC_GARBAGE_ARGS);
		return;
	}
	if (!path[0]) /* libnfs asks for "" when the URL names a file of "/" */
		strcpy(path, "/");
	host_of(q->c, host, sizeof(host));
	int r = nfs_export_by_path(q, path, &x, xpath, sizeof(xpath));
	if (r == -EPERM) {
		rpc_reply_auth_error(q->e, q->call.xid, RPC_AUTH_TOOWEAK);
		return;
	}
	if (r < 0) {
		LOG_I("nfs: mount of %s by %s refused: %s", log_escs(esc, sizeof(esc), path), host,
		      r == -ENOENT ? "no such export" : "not allowed by the export");
		mnt_err(q, r == -ENOENT ? MNT3ERR_NOENT : MNT3ERR_ACCES);
		return;
	}
	ns_attr a;
	appl_lock(s->ap);
	r = ns_resolve(s->ap->n, path, &a);
	appl_unlock(s->ap);
	if (r == 0 && a.type != NS_DIR)
		r = -ENOTDIR;
	if (r < 0) {
		mnt_err(q, r == -ENOENT ? MNT3ERR_NOENT : r == -ENOTDIR ? MNT3ERR_NOTDIR :
		        r == -ENAMETOOLONG ? MNT3ERR_NAMETOOLONG : MNT3ERR_INVAL);
		return;
	}
	nfs3_handle h = {.export_id = x.id, .id = a.id, .gen = a.gen};
	nfs3_fh fh;
	nfs3_fh_make(s->key, &h, &fh);
	rpc_reply_accepted(q->e, q->call.xid, RPC_SUCCESS);
	xdr_put_u32(q->e, MNT3_OK);
	nfs3_put_fh(q->e, &fh);
	xdr_put_u32(q->e, x.auth_none ? 2 : 1);
	xdr_put_u32(q->e, RPC_AUTH_SYS);
	if (x.auth_none)
		xdr_put_u32(q->e, RPC_AUTH_NONE);
	nfs_mount_add(s, host, path, x.id);
	LOG_I("nfs: %s mounted %s (export %s)", host, log_escs(esc, sizeof(esc), path), xpath);
}

void nfs_mount_dispatch(nfs_req *q)
{
	nfs_srv *s = q->s;
	char path[MNT_PATH_MAX + 1], host[64];
	switch (q->call.proc) {
	case MNT3_NULL:
		rpc_reply_accepted(q->e, q->call.xid, RPC_SUCCESS);
		return;
	case MNT3_MNT:
		do_mnt(q);
		return;
	case MNT3_UMNT:
		if (mnt3_decode_path(q->call.args, q->call.args_len, path) < 0) {
			rpc_reply_accepted(q->e, q->call.xid, RPC_GARBAGE_ARGS);
			return;
		}
		host_of(q->c, host, sizeof(host));
		nfs_mount_del(s, host, path);
		rpc_reply_accepted(q->e, q->call.xid, RPC_SUCCESS);
		return;
	case MNT3_UMNTALL:
		host_of(q->c, host, sizeof(host));
		nfs_mount_del(s, host, NULL);
		rpc_reply_accepted(q->e, q->call.xid, RPC_SUCCESS);
		return;
	case MNT3_DUMP:
		rpc_reply_accepted(q->e, q->call.xid, RPC_SUCCESS);
		pthread_mutex_lock(&s->mu);
		for (int i = 0; i < s->nmounts; i++) {
			xdr_put_u32(q->e, 1);
			xdr_put_string(q->e, s->mounts[i].host);
			xdr_put_string(q->e, s->mounts[i].path);
		}
		pthread_mutex_unlock(&s->mu);
		xdr_put_u32(q->e, 0);
		return;
	case MNT3_EXPORT:
		/* Every export, with its networks as the groups (what showmount -e lists). */
		rpc_reply_accepted(q->e, q->call.xid, RPC_SUCCESS);
		pthread_mutex_lock(&s->mu);
		for (int i = 0; i < s->nexports; i++) {
			const cfg_export *x = &s->exports[i].x;
			xdr_put_u32(q->e, 1);
			xdr_put_string(q->e, x->path);
			for (int k = 0; k < x->nnets; k++) {
				char a[INET6_ADDRSTRLEN], g[INET6_ADDRSTRLEN + 8];
				inet_ntop(x->nets[k].family == CFG_AF_INET ? AF_INET : AF_INET6,
				          x->nets[k].addr, a, sizeof(a));
				snprintf(g, sizeof(g), "%s/%u", a, x->nets[k].bits);
				xdr_put_u32(q->e, 1);
				xdr_put_string(q->e, g);
			}
			xdr_put_u32(q->e, 0);
		}
		pthread_mutex_unlock(&s->mu);
		xdr_put_u32(q->e, 0);
		return;
	default:
		rpc_reply_accepted(q->e, q->call.xid, RPC_PROC_UNAVAIL);
	}
}

void nfs_pmap_dispatch(nfs_req *q)
{
	nfs_srv *s = q->s;
	pmap_mapping m;
	static const struct { uint32_t prog, vers; int which; } progs[] = {
		{NFS_PROGRAM, NFS_V3, 0}, {MOUNT_PROGRAM, MOUNT_V3, 1}, {PMAP_PROGRAM, PMAP_V2, 2}};
	switch (q->call.proc) {
	case PMAP_NULL:
		rpc_reply_accepted(q->e, q->call.xid, RPC_SUCCESS);
		return;
	case PMAP_SET:
	case PMAP_UNSET:
		/* Our own table only: nobody else registers here. */
		if (pmap_decode_mapping(q->call.args, q->call.args_len, &m) < 0) {
			rpc_reply_accepted(q->e, q->call.xid, RPC_GARBAGE_ARGS);
			return;
		}
		rpc_reply_accepted(q->e, q->call.xid, RPC_SUCCESS);
		xdr_put_u32(q->e, 0);
		return;
	case PMAP_GETPORT: {
		if (pmap_decode_mapping(q->call.args, q->call.args_len, &m) < 0) {
			rpc_reply_accepted(q->e, q->call.xid, RPC_GARBAGE_ARGS);
			return;
		}
		uint32_t port = 0;
		for (size_t i = 0; i < BKS_ARRAY_SIZE(progs); i++)
			if (progs[i].prog == m.prog && progs[i].vers == m.vers &&
			    m.prot == PMAP_IPPROTO_TCP)
				port = (uint32_t)s->port[progs[i].which];
		rpc_reply_accepted(q->e, q->call.xid, RPC_SUCCESS);
		xdr_put_u32(q->e, port);
		return;
	}
	case PMAP_DUMP:
		rpc_reply_accepted(q->e, q->call.xid, RPC_SUCCESS);
		for (size_t i = 0; i < BKS_ARRAY_SIZE(progs); i++) {
			if (!s->port[progs[i].which])
				continue;
			pmap_mapping mm = {progs[i].prog, progs[i].vers, PMAP_IPPROTO_TCP,
			                   (uint32_t)s->port[progs[i].which]};
			xdr_put_u32(q->e, 1);
			pmap_put_mapping(q->e, &mm);
		}
		xdr_put_u32(q->e, 0);
		return;
	default:
		rpc_reply_accepted(q->e, q->call.xid, RPC_PROC_UNAVAIL);
	}
}

/* ---- registration with a system rpcbind ----
 * rpcbind takes SET and UNSET only from local callers: its Unix socket (the owner is
 * the caller's uid, from SO_PEERCRED; what the kernel's nfsd and libtirpc's
 * pmap_set use) or, as the portmapper of old, TCP from 127.0.0.1. Version 2
 * (PMAPPROC_SET/UNSET) is enough for "NFS v3 over TCP at port N" and every rpcbind
 * and portmap speaks it. A blocking socket with a 2 s timeout each way: this runs at
 * start and stop only. */
#define RPCB_SOCK "/run/rpcbind.sock"
#define RPCB_TIMEOUT_MS 2000

static int rpcb_open(char how[8])
{
	struct timeval tv = {.tv_sec = RPCB_TIMEOUT_MS / 1000};
	struct sockaddr_un un = {.sun_family = AF_UNIX};
	snprintf(un.sun_path, sizeof(un.sun_path), "%s", RPCB_SOCK);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&un, sizeof(un)) == 0) {
		snprintf(how, 8, "unix");
		goto ok;
	}
	if (fd >= 0)
		close(fd);
	struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons(111),
	                         .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* From a privileged port when we may: rpcbind then records the owner as the
	 * superuser, and only that owner may unset it later. */
	for (int p = 1023; geteuid() == 0 && p >= 600; p--) {
		struct sockaddr_in me = {.sin_family = AF_INET, .sin_port = htons((uint16_t)p),
		                         .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		if (bind(fd, (struct sockaddr *)&me, sizeof(me)) == 0)
			break;
	}
	if (connect(fd, (struct sockaddr *)&in, sizeof(in)) < 0) {
		int err = errno;
		close(fd);
		return -err;
	}
	snprintf(how, 8, "tcp");
ok:
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return fd;
}

static int rpcb_io(int fd, int out, void *buf, size_t n)
{
	uint8_t *p = buf;
	while (n > 0) {
		ssize_t k = out ? send(fd, p, n, MSG_NOSIGNAL) : recv(fd, p, n, 0);
		if (k == 0)
			return -ECONNRESET;
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN || errno == EWOULDBLOCK ? -ETIMEDOUT : -errno;
		}
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

/* One portmapper call (m NULL: PMAPPROC_NULL); *res gets the boolean/port result. */
static int rpcb_call(int fd, uint32_t xid, uint32_t proc, const pmap_mapping *m,
                     uint32_t *res)
{
	uint8_t buf[256];
	xdr_enc e;
	xdr_enc_init(&e, buf + 4, sizeof(buf) - 4);
	rpc_call_encode(&e, xid, PMAP_PROGRAM, PMAP_V2, proc, NULL);
	if (m)
		pmap_put_mapping(&e, m);
	uint32_t h = rpc_rm_header((uint32_t)e.len);
	buf[0] = (uint8_t)(h >> 24);
	buf[1] = (uint8_t)(h >> 16);
	buf[2] = (uint8_t)(h >> 8);
	buf[3] = (uint8_t)h;
	int r = rpcb_io(fd, 1, buf, e.len + 4);
	if (r < 0 || (r = rpcb_io(fd, 0, buf, 4)) < 0)
		return r;
	h = (uint32_t)buf[0] << 24 | (uint32_t)buf[1] << 16 | (uint32_t)buf[2] << 8 | buf[3];
	size_t n = h & ~RPC_LAST_FRAG;
	if (!(h & RPC_LAST_FRAG) || n > sizeof(buf))
		return -EBADMSG; /* a portmapper's replies to these are a few words */
	if ((r = rpcb_io(fd, 0, buf, n)) < 0)
		return r;
	const uint8_t *rp;
	size_t rl;
	if ((r = rpc_reply_decode(buf, n, xid, &rp, &rl)) < 0)
		return r;
	if (res) {
		if (rl < 4)
			return -EBADMSG;
		*res = (uint32_t)rp[0] << 24 | (uint32_t)rp[1] << 16 | (uint32_t)rp[2] << 8 | rp[3];
	}
	return 0;
}

int nfs_rpcb_present(void)
{
	char how[8];
	int fd = rpcb_open(how);
	if (fd < 0)
		return 0;
	int r = rpcb_call(fd, 1, PMAP_NULL, NULL, NULL);
	close(fd);
	return r == 0;
}

static const struct { uint32_t prog, vers; int which; const char *name; } rpcb_progs[] = {
	{NFS_PROGRAM, NFS_V3, 0, "NFS v3"}, {MOUNT_PROGRAM, MOUNT_V3, 1, "MOUNT v3"}};

int nfs_rpcb_register(nfs_srv *s)
{
	char how[8];
	int fd = rpcb_open(how), r = 0;
	if (fd < 0)
		return fd;
	uint32_t xid = (uint32_t)bks_now_ns(), ok;
	for (size_t i = 0; i < BKS_ARRAY_SIZE(rpcb_progs) && r == 0; i++) {
		pmap_mapping m = {rpcb_progs[i].prog, rpcb_progs[i].vers, PMAP_IPPROTO_TCP,
		                  (uint32_t)s->port[rpcb_progs[i].which]};
		/* What an earlier run (killed, so it never unset) or another server left
		 * for this program and version goes first: a client must find us. */
		if ((r = rpcb_call(fd, ++xid, PMAP_UNSET, &m, &ok)) < 0 ||
		    (r = rpcb_call(fd, ++xid, PMAP_SET, &m, &ok)) < 0)
			break;
		if (!ok) {
			LOG_W("nfs: rpcbind (%s) refused to register %s at port %u (held by another "
			      "owner?)", how, rpcb_progs[i].name, m.port);
			r = -EACCES;
		}
	}
	close(fd);
	if (r < 0) {
		LOG_W("nfs: registration with rpcbind failed: %s", strerror(-r));
		return r;
	}
	s->rpcb_registered = 1;
	snprintf(s->rpcb_how, sizeof(s->rpcb_how), "%s", how);
	LOG_I("nfs: registered NFS v3 (port %d) and MOUNT v3 (port %d) with rpcbind (%s)",
	      s->port[0], s->port[1], how);
	return 0;
}

void nfs_rpcb_unregister(nfs_srv *s)
{
	char how[8];
	if (!s->rpcb_registered)
		return;
	int fd = rpcb_open(how), r = fd < 0 ? fd : 0;
	uint32_t xid = (uint32_t)bks_now_ns(), ok;
	for (size_t i = 0; i < BKS_ARRAY_SIZE(rpcb_progs) && r == 0; i++) {
		pmap_mapping m = {rpcb_progs[i].prog, rpcb_progs[i].vers, PMAP_IPPROTO_TCP, 0};
		r = rpcb_call(fd, ++xid, PMAP_UNSET, &m, &ok);
	}
	if (fd >= 0)
		close(fd);
	s->rpcb_registered = 0;
	if (r < 0)
		LOG_W("nfs: unset with rpcbind failed: %s (rpcbind keeps our ports until it "
		      "restarts or the next start replaces them)", strerror(-r));
	else
		LOG_I("nfs: unset NFS v3 and MOUNT v3 with rpcbind");
}
