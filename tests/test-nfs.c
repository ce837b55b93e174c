/* test-nfs: the pure NFS codecs (proto/xdr, proto/rpc, proto/nfs3).
 *  - XDR: round trips, sticky errors, padding that must be zero, limits;
 *  - RPC: calls with AUTH_NONE / AUTH_SYS decoded; a reply, a wrong RPC version,
 *    too many gids, a long machine name, a bad verifier each get their own answer;
 *    record marking keeps a record under its limit and refuses fragment floods;
 *  - NFSv3: arguments of every procedure decoded from what a client encodes; every
 *    truncation of them refused; names too long / with '/' / with NUL; WRITE whose
 *    data length differs from its count or exceeds wsize; trailing bytes;
 *  - file handles: made and parsed; any flipped bit refused; another key refused.
 * --seeds DIR writes valid inputs for fuzz/fuzz-nfs.c. */
#include <config.h>

#include "tests/testutil.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proto/nfs3.h"
#include "proto/rpc.h"
#include "proto/xdr.h"

static uint8_t key[NFS3_FH_KEY_LEN] = {1, 2, 3, 4, 5, 6, 7, 8};

static void put_fh(xdr_enc *e, uint64_t id)
{
	nfs3_fh fh;
	nfs3_handle h = {.export_id = 1, .id = id, .gen = 7};
	nfs3_fh_make(key, &h, &fh);
	nfs3_put_fh(e, &fh);
}

static void put_sattr(xdr_enc *e)
{
	xdr_put_u32(e, 1);
	xdr_put_u32(e, 0644);
	xdr_put_u32(e, 1);
	xdr_put_u32(e, 1000);
	xdr_put_u32(e, 0);
	xdr_put_u32(e, 1);
	xdr_put_u64(e, 12345);
	xdr_put_u32(e, NFS3_SET_TO_SERVER_TIME);
	xdr_put_u32(e, NFS3_SET_TO_CLIENT_TIME);
	xdr_put_u32(e, 1700000000);
	xdr_put_u32(e, 5);
}

/* What a client sends for each procedure. */
static size_t client_args(uint32_t proc, uint8_t *buf, size_t cap)
{
	xdr_enc e;
	static uint8_t data[3000];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 13);
	xdr_enc_init(&e, buf, cap);
	switch (proc) {
	case NFS3_NULL:
		break;
	case NFS3_GETATTR: case NFS3_READLINK: case NFS3_FSSTAT: case NFS3_FSINFO:
	case NFS3_PATHCONF:
		put_fh(&e, 10);
		break;
	case NFS3_SETATTR:
		put_fh(&e, 10);
		put_sattr(&e);
		xdr_put_u32(&e, 1);
		xdr_put_u32(&e, 99);
		xdr_put_u32(&e, 100);
		break;
	case NFS3_LOOKUP: case NFS3_REMOVE: case NFS3_RMDIR:
		put_fh(&e, 2);
		xdr_put_string(&e, "file.bin");
		break;
	case NFS3_ACCESS:
		put_fh(&e, 10);
		xdr_put_u32(&e, 0x3f);
		break;
	case NFS3_READ:
		put_fh(&e, 10);
		xdr_put_u64(&e, 1ull << 33);
		xdr_put_u32(&e, 1 << 20);
		break;
	case NFS3_WRITE:
		put_fh(&e, 10);
		xdr_put_u64(&e, 4096);
		xdr_put_u32(&e, 3000);
		xdr_put_u32(&e, NFS3_UNSTABLE);
		xdr_put_opaque(&e, data, 3000);
		break;
	case NFS3_CREATE:
		put_fh(&e, 2);
		xdr_put_string(&e, "new");
		xdr_put_u32(&e, NFS3_GUARDED);
		put_sattr(&e);
		break;
	case NFS3_MKDIR:
		put_fh(&e, 2);
		xdr_put_string(&e, "dir");
		put_sattr(&e);
		break;
	case NFS3_SYMLINK:
		put_fh(&e, 2);
		xdr_put_string(&e, "ln");
		put_sattr(&e);
		xdr_put_string(&e, "../target/file");
		break;
	case NFS3_MKNOD:
		put_fh(&e, 2);
		xdr_put_string(&e, "dev");
		xdr_put_u32(&e, NF3CHR);
		put_sattr(&e);
		xdr_put_u32(&e, 1);
		xdr_put_u32(&e, 3);
		break;
	case NFS3_RENAME:
		put_fh(&e, 2);
		xdr_put_string(&e, "a");
		put_fh(&e, 3);
		xdr_put_string(&e, "b");
		break;
	case NFS3_LINK:
		put_fh(&e, 10);
		put_fh(&e, 2);
		xdr_put_string(&e, "hard");
		break;
	case NFS3_READDIR:
		put_fh(&e, 2);
		xdr_put_u64(&e, 77);
		xdr_put_fixed(&e, "verfverf", 8);
		xdr_put_u32(&e, 8192);
		break;
	case NFS3_READDIRPLUS:
		put_fh(&e, 2);
		xdr_put_u64(&e, 77);
		xdr_put_fixed(&e, "verfverf", 8);
		xdr_put_u32(&e, 4096);
		xdr_put_u32(&e, 65536);
		break;
	case NFS3_COMMIT:
		put_fh(&e, 10);
		xdr_put_u64(&e, 0);
		xdr_put_u32(&e, 0);
		break;
	}
	return e.err ? 0 : e.len;
}

static void test_xdr(void)
{
	uint8_t b[64];
	xdr_enc e;
	xdr_dec d;
	char s[8];
	uint32_t n;

	xdr_enc_init(&e, b, sizeof(b));
	xdr_put_u32(&e, 0xdeadbeef);
	xdr_put_u64(&e, 0x0102030405060708ull);
	xdr_put_string(&e, "abcde");
	xdr_put_u32(&e, 1);
	CHECK(e.err == 0 && e.len == 4 + 8 + 4 + 8 + 4, "encode %zu", e.len);
	CHECK(b[0] == 0xde && b[4] == 1 && b[11] == 8, "big-endian");
	xdr_dec_init(&d, b, e.len);
	CHECK(xdr_get_u32(&d) == 0xdeadbeef && xdr_get_u64(&d) == 0x0102030405060708ull, "ints");
	CHECK(xdr_get_string(&d, s, 7) == 5 && !strcmp(s, "abcde"), "string");
	CHECK(xdr_get_bool(&d) == 1 && d.err == 0 && xdr_dec_left(&d) == 0, "bool, all read");
	/* Sticky: reading past the end. */
	CHECK(xdr_get_u32(&d) == 0 && d.err == -EBADMSG && xdr_get_u64(&d) == 0, "past the end");
	/* Limits and padding. */
	xdr_dec_init(&d, b + 12, e.len - 12);
	xdr_get_string(&d, s, 4);
	CHECK(d.err == -E2BIG, "string over its limit");
	b[12 + 4 + 5] = 1; /* a padding byte */
	xdr_dec_init(&d, b + 12, e.len - 12);
	xdr_get_opaque(&d, 8, &n);
	CHECK(d.err == -EBADMSG, "non-zero padding refused");
	b[12 + 4 + 5] = 0;
	b[12 + 4 + 2] = 0; /* a NUL inside */
	xdr_dec_init(&d, b + 12, e.len - 12);
	xdr_get_string(&d, s, 7);
	CHECK(d.err == -EBADMSG, "NUL inside a string refused");
	uint8_t two[4] = {0, 0, 0, 2};
	xdr_dec_init(&d, two, 4);
	xdr_get_bool(&d);
	CHECK(d.err == -EBADMSG, "bool 2 refused");
	xdr_enc_init(&e, b, 6);
	xdr_put_u32(&e, 1);
	xdr_put_u32(&e, 2);
	CHECK(e.err == -ENOBUFS && e.len == 4, "encoder overflow sticky");
	uint8_t huge[8] = {0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0};
	xdr_dec_init(&d, huge, 8);
	CHECK(xdr_get_opaque(&d, SIZE_MAX, &n) == NULL && d.err == -EBADMSG,
	      "a 4 GiB length on 4 bytes of input");
	printf("ok - xdr\n");
}

static size_t a_call(uint8_t *buf, size_t cap, uint32_t ngids, const char *machine)
{
	xdr_enc e;
	rpc_cred_sys sys = {.stamp = 1, .uid = 1000, .gid = 100, .ngids = ngids};
	snprintf(sys.machine, sizeof(sys.machine), "%s", machine);
	for (uint32_t i = 0; i < RPC_GIDS_MAX; i++)
		sys.gids[i] = i;
	xdr_enc_init(&e, buf, cap);
	rpc_call_encode(&e, 0x1234, NFS_PROGRAM, NFS_V3, NFS3_GETATTR, &sys);
	put_fh(&e, 10);
	return e.len;
}

static void test_rpc(void)
{
	uint8_t b[1024];
	rpc_call c;
	size_t n = a_call(b, sizeof(b), 16, "client.example");
	CHECK(rpc_call_decode(b, n, &c) == RPC_DEC_OK && c.xid == 0x1234 &&
	      c.prog == NFS_PROGRAM && c.vers == 3 && c.proc == NFS3_GETATTR &&
	      c.flavor == RPC_AUTH_SYS && c.sys.uid == 1000 && c.sys.ngids == 16 &&
	      c.sys.gids[15] == 15 && !strcmp(c.sys.machine, "client.example") &&
	      c.args_len == 4 + NFS3_BKFH_LEN, "AUTH_SYS call");
	/* 17 gids: the encoder caps at 16, so build the body by hand. */
	xdr_enc e;
	uint8_t body[200];
	xdr_enc_init(&e, body, sizeof(body));
	xdr_put_u32(&e, 1);
	xdr_put_string(&e, "m");
	xdr_put_u32(&e, 0);
	xdr_put_u32(&e, 0);
	xdr_put_u32(&e, 17);
	for (int i = 0; i < 17; i++)
		xdr_put_u32(&e, (uint32_t)i);
	size_t blen = e.len;
	xdr_enc_init(&e, b, sizeof(b));
	xdr_put_u32(&e, 9);
	xdr_put_u32(&e, RPC_CALL);
	xdr_put_u32(&e, 2);
	xdr_put_u32(&e, NFS_PROGRAM);
	xdr_put_u32(&e, 3);
	xdr_put_u32(&e, 0);
	xdr_put_u32(&e, RPC_AUTH_SYS);
	xdr_put_opaque(&e, body, (uint32_t)blen);
	xdr_put_u32(&e, 0);
	xdr_put_u32(&e, 0);
	CHECK(rpc_call_decode(b, e.len, &c) == RPC_DEC_BADCRED && c.xid == 9, "17 gids refused");
	/* A reply is not a call; rpcvers 3; an unknown flavor; a non-NONE verifier. */
	n = a_call(b, sizeof(b), 0, "x");
	b[7] = RPC_REPLY;
	CHECK(rpc_call_decode(b, n, &c) == RPC_DEC_DROP, "a reply is dropped");
	b[7] = RPC_CALL;
	b[11] = 3;
	CHECK(rpc_call_decode(b, n, &c) == RPC_DEC_RPC_MISMATCH, "rpcvers 3");
	b[11] = 2;
	b[27] = 6; /* flavor RPCSEC_GSS */
	CHECK(rpc_call_decode(b, n, &c) == RPC_DEC_BADCRED, "unknown flavor");
	b[27] = RPC_AUTH_SYS;
	CHECK(rpc_call_decode(b, 3, &c) == RPC_DEC_DROP, "3 bytes dropped");
	for (size_t cut = 4; cut < n - 4 - NFS3_BKFH_LEN; cut++)
		CHECK(rpc_call_decode(b, cut, &c) != RPC_DEC_OK, "truncated call at %zu", cut);
	/* Replies. */
	xdr_enc_init(&e, b, sizeof(b));
	rpc_reply_prog_mismatch(&e, 5, 3, 3);
	CHECK(e.len == 32 && b[23] == RPC_PROG_MISMATCH && b[31] == 3, "PROG_MISMATCH reply");
	xdr_enc_init(&e, b, sizeof(b));
	rpc_reply_auth_error(&e, 5, RPC_AUTH_TOOWEAK);
	CHECK(e.len == 20 && b[11] == RPC_MSG_DENIED && b[19] == RPC_AUTH_TOOWEAK, "AUTH_ERROR");
	/* Replies decoded (the rpcbind registration reads them). */
	const uint8_t *res;
	size_t rl;
	CHECK(rpc_reply_decode(b, e.len, 5, &res, &rl) == -EPROTO, "a denied reply: EPROTO");
	xdr_enc_init(&e, b, sizeof(b));
	rpc_reply_accepted(&e, 6, RPC_SUCCESS);
	xdr_put_u32(&e, 1);
	CHECK(rpc_reply_decode(b, e.len, 6, &res, &rl) == 0 && rl == 4 && res[3] == 1,
	      "an accepted reply and its result");
	CHECK(rpc_reply_decode(b, e.len, 7, &res, &rl) == -EBADMSG, "another xid: EBADMSG");
	for (size_t cut = 0; cut < e.len - 4; cut++)
		CHECK(rpc_reply_decode(b, cut, 6, &res, &rl) == -EBADMSG, "reply cut at %zu", cut);
	xdr_enc_init(&e, b, sizeof(b));
	rpc_reply_accepted(&e, 6, RPC_PROG_UNAVAIL);
	CHECK(rpc_reply_decode(b, e.len, 6, &res, &rl) == -EPROTO, "PROG_UNAVAIL: EPROTO");
	xdr_enc_init(&e, b, sizeof(b));
	rpc_call_encode(&e, 6, PMAP_PROGRAM, PMAP_V2, PMAP_NULL, NULL);
	CHECK(rpc_reply_decode(b, e.len, 6, &res, &rl) == -EBADMSG, "a call is not a reply");
	/* Record marking. */
	rpc_rec r;
	rpc_rec_init(&r, 1000);
	CHECK(rpc_rec_frag(&r, 600) == 0 && !rpc_rec_done(&r), "first fragment");
	rpc_rec_take(&r, 600);
	CHECK(rpc_rec_frag(&r, RPC_LAST_FRAG | 401) == -EMSGSIZE, "record over the limit");
	CHECK(rpc_rec_frag(&r, RPC_LAST_FRAG | 400) == 0, "last fragment at the limit");
	rpc_rec_take(&r, 400);
	CHECK(rpc_rec_done(&r), "record done");
	rpc_rec_reset(&r);
	CHECK(rpc_rec_frag(&r, RPC_LAST_FRAG | 0x7fffffff) == -EMSGSIZE, "2 GiB record refused");
	rpc_rec_reset(&r);
	int flood = 0;
	for (int i = 0; i < RPC_FRAGS_MAX + 1 && !flood; i++)
		flood = rpc_rec_frag(&r, 0) == -EBADMSG;
	CHECK(flood, "a flood of empty fragments refused");
	printf("ok - rpc\n");
}

static void test_nfs3(void)
{
	uint8_t b[8192];
	nfs3_args *a = malloc(sizeof(*a));
	for (uint32_t p = 0; p < NFS3_NPROCS; p++) {
		size_t n = client_args(p, b, sizeof(b));
		CHECK(n > 0 || p == NFS3_NULL, "proc %u encodes", p);
		int r = nfs3_decode_args(p, b, n, 1 << 20, a);
		CHECK(r == 0, "proc %u decodes: %d", p, r);
		/* Every truncation and one trailing byte more are refused. */
		int cut_ok = 0;
		for (size_t cut = 0; cut < n; cut++)
			cut_ok += nfs3_decode_args(p, b, cut, 1 << 20, a) == 0;
		CHECK(cut_ok == 0, "proc %u: %d truncations accepted", p, cut_ok);
		memset(b + n, 0, 4);
		CHECK(nfs3_decode_args(p, b, n + 4, 1 << 20, a) == -EBADMSG, "proc %u: trailing", p);
	}
	size_t n = client_args(NFS3_WRITE, b, sizeof(b));
	CHECK(nfs3_decode_args(NFS3_WRITE, b, n, 1 << 20, a) == 0 && a->count == 3000 &&
	      a->offset == 4096 && a->data && a->data[1] == 13 && a->stable == NFS3_UNSTABLE,
	      "WRITE fields");
	CHECK(nfs3_decode_args(NFS3_WRITE, b, n, 2048, a) == -EFBIG, "WRITE over wsize");
	b[4 + NFS3_BKFH_LEN + 8 + 3] = 0xb7; /* count 3000 -> 2999 */
	b[4 + NFS3_BKFH_LEN + 8 + 2] = 0x0b;
	CHECK(nfs3_decode_args(NFS3_WRITE, b, n, 1 << 20, a) == -EBADMSG,
	      "WRITE count differs from its data");
	n = client_args(NFS3_SETATTR, b, sizeof(b));
	CHECK(nfs3_decode_args(NFS3_SETATTR, b, n, 1 << 20, a) == 0 && a->sattr.set_mode &&
	      a->sattr.mode == 0644 && a->sattr.set_uid && !a->sattr.set_gid &&
	      a->sattr.set_size && a->sattr.size == 12345 &&
	      a->sattr.atime_how == NFS3_SET_TO_SERVER_TIME &&
	      a->sattr.mtime_how == NFS3_SET_TO_CLIENT_TIME && a->sattr.mtime.nsec == 5 &&
	      a->guard_check && a->guard_ctime.sec == 99, "SETATTR fields");
	n = client_args(NFS3_RENAME, b, sizeof(b));
	CHECK(nfs3_decode_args(NFS3_RENAME, b, n, 1 << 20, a) == 0 &&
	      !strcmp(a->where.name, "a") && !strcmp(a->to.name, "b"), "RENAME names");
	/* Names: too long, with a slash, empty. */
	xdr_enc e;
	char longname[300];
	memset(longname, 'x', 299);
	longname[299] = 0;
	const char *bad[] = {longname, "a/b", ""};
	int want[] = {-ENAMETOOLONG, -EINVAL, -EINVAL};
	for (int i = 0; i < 3; i++) {
		xdr_enc_init(&e, b, sizeof(b));
		put_fh(&e, 2);
		xdr_put_string(&e, bad[i]);
		CHECK(nfs3_decode_args(NFS3_LOOKUP, b, e.len, 1 << 20, a) == want[i],
		      "bad name %d", i);
	}
	CHECK(nfs3_decode_args(99, b, 0, 1 << 20, a) == -ENOSYS, "no procedure 99");
	/* MOUNT and portmapper. */
	char path[MNT_PATH_MAX + 1];
	xdr_enc_init(&e, b, sizeof(b));
	xdr_put_string(&e, "/backups");
	CHECK(mnt3_decode_path(b, e.len, path) == 0 && !strcmp(path, "/backups"), "mount path");
	pmap_mapping m = {NFS_PROGRAM, 3, PMAP_IPPROTO_TCP, 0}, m2;
	xdr_enc_init(&e, b, sizeof(b));
	pmap_put_mapping(&e, &m);
	CHECK(pmap_decode_mapping(b, e.len, &m2) == 0 && m2.prog == NFS_PROGRAM &&
	      m2.prot == PMAP_IPPROTO_TCP, "pmap mapping");
	/* fattr round trip. */
	nfs3_fattr f, g;
	memset(&f, 0, sizeof(f)); /* padding too: the round trip is compared whole */
	memset(&g, 0xee, sizeof(g));
	f.type = NF3REG;
	f.mode = 0644;
	f.nlink = 1;
	f.size = 1ull << 40;
	f.fileid = 42;
	f.mtime.sec = 1;
	f.mtime.nsec = 2;
	xdr_enc_init(&e, b, sizeof(b));
	nfs3_put_fattr(&e, &f);
	xdr_dec d;
	xdr_dec_init(&d, b, e.len);
	nfs3_get_fattr(&d, &g);
	CHECK(e.len == 84 && !d.err && g.type == f.type && g.mode == f.mode &&
	      g.nlink == f.nlink && g.uid == 0 && g.size == f.size && g.used == 0 &&
	      g.rdev1 == 0 && g.fsid == 0 && g.fileid == 42 && g.atime.sec == 0 &&
	      g.mtime.sec == 1 && g.mtime.nsec == 2 && g.ctime.nsec == 0,
	      "fattr3 is 84 bytes, round trip");
	free(a);
	printf("ok - nfs3 arguments\n");
}

static void test_fh(void)
{
	nfs3_fh fh;
	nfs3_handle h = {.export_id = 3, .id = 123456789, .gen = 987654321}, o;
	nfs3_fh_make(key, &h, &fh);
	CHECK(fh.len == NFS3_BKFH_LEN && nfs3_fh_parse(key, &fh, &o) == 0 &&
	      o.export_id == 3 && o.id == h.id && o.gen == h.gen, "handle round trip");
	int refused = 0;
	for (uint32_t bit = 0; bit < NFS3_BKFH_LEN * 8; bit++) {
		nfs3_fh t = fh;
		t.data[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		refused += nfs3_fh_parse(key, &t, &o) < 0;
	}
	CHECK(refused == NFS3_BKFH_LEN * 8, "%d of %d one-bit changes refused", refused,
	      NFS3_BKFH_LEN * 8);
	uint8_t other[NFS3_FH_KEY_LEN] = {9};
	CHECK(nfs3_fh_parse(other, &fh, &o) == -EACCES, "another appliance's key");
	nfs3_fh t = fh;
	t.len = 39;
	CHECK(nfs3_fh_parse(key, &t, &o) == -EBADMSG, "short handle");
	printf("ok - file handles\n");
}

/* Seeds for fuzz-nfs: byte 0 picks the decoder (0: RPC call, 1..22: NFS procedure
 * args, 23: mount path, 24: pmap mapping, 25: file handle). */
static int write_seeds(const char *dir)
{
	uint8_t b[8200];
	char p[512];
	for (uint32_t proc = 0; proc < NFS3_NPROCS + 4; proc++) {
		size_t n;
		if (proc == 0) {
			n = a_call(b + 1, sizeof(b) - 1, 4, "seed");
		} else if (proc <= NFS3_NPROCS) {
			n = client_args(proc - 1, b + 1, sizeof(b) - 1);
		} else if (proc == NFS3_NPROCS + 1) {
			xdr_enc e;
			xdr_enc_init(&e, b + 1, sizeof(b) - 1);
			xdr_put_string(&e, "/");
			n = e.len;
		} else if (proc == NFS3_NPROCS + 2) {
			xdr_enc e;
			pmap_mapping m = {NFS_PROGRAM, 3, 6, 0};
			xdr_enc_init(&e, b + 1, sizeof(b) - 1);
			pmap_put_mapping(&e, &m);
			n = e.len;
		} else {
			nfs3_fh fh;
			nfs3_handle h = {1, 2, 3};
			nfs3_fh_make(key, &h, &fh);
			memcpy(b + 1, fh.data, fh.len);
			n = fh.len;
		}
		b[0] = (uint8_t)proc;
		snprintf(p, sizeof(p), "%s/seed-%02u", dir, proc);
		FILE *f = fopen(p, "wb");
		if (!f || fwrite(b, 1, n + 1, f) != n + 1)
			return 1;
		fclose(f);
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "--seeds"))
		return write_seeds(argv[2]);
	test_xdr();
	test_rpc();
	test_nfs3();
	test_fh();
	return tu_finish();
}
