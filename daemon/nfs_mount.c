/* daemon/nfs_mount.c: MOUNT v3 (RFC 1813 appendix I) and the portmapper (RFC 1833,
 * version 2, the calls clients make: NULL, GETPORT, DUMP). See nfs.h. */
#include <config.h>

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

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
	pthread_mutex_lock(&s->ap->mu);
	r = ns_resolve(s->ap->n, path, &a);
	pthread_mutex_unlock(&s->ap->mu);
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
