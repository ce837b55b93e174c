/* proto/nfs3.h: NFSv3 (RFC 1813), MOUNT v3 (RFC 1813 appendix I) and portmapper v2
 * (RFC 1833) messages: argument decoders and result encoders over proto/xdr. Pure:
 * no I/O, no state; the server (daemon/nfs) does the work between them.
 *
 * Limits a decoder enforces (a peer's lengths are never trusted): file handles at
 * most NFS3_FHSIZE (64) bytes, names 1..255 bytes without '/' or NUL, symlink
 * targets and mount paths at most 4096 / 1024 bytes, WRITE data at most the server's
 * wsize and exactly the count it claims, no bytes after the arguments.
 */
#ifndef BKS_NFS3_H
#define BKS_NFS3_H

#include <stddef.h>
#include <stdint.h>

#include "proto/xdr.h"

#define NFS_PROGRAM 100003
#define NFS_V3 3
#define MOUNT_PROGRAM 100005
#define MOUNT_V3 3
#define PMAP_PROGRAM 100000
#define PMAP_V2 2
#define PMAP_PORT 111              /* the portmapper's (rpcbind's) well-known port */

#define NFS3_FHSIZE 64
#define NFS3_NAME_MAX 255
#define NFS3_PATH_MAX 4096
#define MNT_PATH_MAX 1024
#define NFS3_VERF 8

enum nfs3_proc {
	NFS3_NULL = 0, NFS3_GETATTR = 1, NFS3_SETATTR = 2, NFS3_LOOKUP = 3, NFS3_ACCESS = 4,
	NFS3_READLINK = 5, NFS3_READ = 6, NFS3_WRITE = 7, NFS3_CREATE = 8, NFS3_MKDIR = 9,
	NFS3_SYMLINK = 10, NFS3_MKNOD = 11, NFS3_REMOVE = 12, NFS3_RMDIR = 13,
	NFS3_RENAME = 14, NFS3_LINK = 15, NFS3_READDIR = 16, NFS3_READDIRPLUS = 17,
	NFS3_FSSTAT = 18, NFS3_FSINFO = 19, NFS3_PATHCONF = 20, NFS3_COMMIT = 21,
	NFS3_NPROCS = 22
};

enum nfsstat3 {
	NFS3_OK = 0, NFS3ERR_PERM = 1, NFS3ERR_NOENT = 2, NFS3ERR_IO = 5, NFS3ERR_NXIO = 6,
	NFS3ERR_ACCES = 13, NFS3ERR_EXIST = 17, NFS3ERR_XDEV = 18, NFS3ERR_NODEV = 19,
	NFS3ERR_NOTDIR = 20, NFS3ERR_ISDIR = 21, NFS3ERR_INVAL = 22, NFS3ERR_FBIG = 27,
	NFS3ERR_NOSPC = 28, NFS3ERR_ROFS = 30, NFS3ERR_MLINK = 31,
	NFS3ERR_NAMETOOLONG = 63, NFS3ERR_NOTEMPTY = 66, NFS3ERR_DQUOT = 69,
	NFS3ERR_STALE = 70, NFS3ERR_REMOTE = 71, NFS3ERR_BADHANDLE = 10001,
	NFS3ERR_NOT_SYNC = 10002, NFS3ERR_BAD_COOKIE = 10003, NFS3ERR_NOTSUPP = 10004,
	NFS3ERR_TOOSMALL = 10005, NFS3ERR_SERVERFAULT = 10006, NFS3ERR_BADTYPE = 10007,
	NFS3ERR_JUKEBOX = 10008
};

enum nfs3_ftype { NF3REG = 1, NF3DIR = 2, NF3BLK = 3, NF3CHR = 4, NF3LNK = 5, NF3SOCK = 6,
	NF3FIFO = 7 };
enum nfs3_stable { NFS3_UNSTABLE = 0, NFS3_DATA_SYNC = 1, NFS3_FILE_SYNC = 2 };
enum nfs3_createmode { NFS3_UNCHECKED = 0, NFS3_GUARDED = 1, NFS3_EXCLUSIVE = 2 };
enum nfs3_time_how { NFS3_DONT_CHANGE = 0, NFS3_SET_TO_SERVER_TIME = 1,
	NFS3_SET_TO_CLIENT_TIME = 2 };
/* ACCESS bits */
enum { NFS3_ACCESS_READ = 1, NFS3_ACCESS_LOOKUP = 2, NFS3_ACCESS_MODIFY = 4,
	NFS3_ACCESS_EXTEND = 8, NFS3_ACCESS_DELETE = 16, NFS3_ACCESS_EXECUTE = 32 };
/* FSINFO properties */
enum { NFS3_FSF_LINK = 1, NFS3_FSF_SYMLINK = 2, NFS3_FSF_HOMOGENEOUS = 8,
	NFS3_FSF_CANSETTIME = 16 };

typedef struct nfs3_fh {
	uint32_t len;
	uint8_t data[NFS3_FHSIZE];
} nfs3_fh;

typedef struct nfs3_time {
	uint32_t sec, nsec;
} nfs3_time;

/* sattr3: which attributes to set. */
typedef struct nfs3_sattr {
	int set_mode, set_uid, set_gid, set_size;
	uint32_t mode, uid, gid;
	uint64_t size;
	uint32_t atime_how, mtime_how;   /* enum nfs3_time_how */
	nfs3_time atime, mtime;
} nfs3_sattr;

typedef struct nfs3_diropargs {
	nfs3_fh dir;
	char name[NFS3_NAME_MAX + 1];
} nfs3_diropargs;

typedef struct nfs3_args {
	uint32_t proc;
	nfs3_fh fh;               /* the object of GETATTR, SETATTR, ACCESS, READLINK,
	                           * READ, WRITE, READDIR*, FSSTAT, FSINFO, PATHCONF,
	                           * COMMIT; the file of LINK */
	nfs3_diropargs where;     /* LOOKUP, CREATE, MKDIR, SYMLINK, MKNOD, REMOVE, RMDIR,
	                           * LINK (the new name), RENAME (from) */
	nfs3_diropargs to;        /* RENAME */
	nfs3_sattr sattr;         /* SETATTR, CREATE, MKDIR, SYMLINK, MKNOD */
	int guard_check;          /* SETATTR: only if ctime == guard_ctime */
	nfs3_time guard_ctime;
	uint32_t access;          /* ACCESS */
	uint64_t offset;          /* READ, WRITE, COMMIT */
	uint32_t count;           /* READ, WRITE, COMMIT; READDIR: reply size */
	uint32_t stable;          /* WRITE */
	const uint8_t *data;      /* WRITE: count bytes, into the request */
	uint32_t createmode;      /* CREATE */
	uint8_t verf[NFS3_VERF];  /* CREATE EXCLUSIVE; READDIR* cookie verifier */
	uint64_t cookie;          /* READDIR* */
	uint32_t dircount, maxcount; /* READDIRPLUS */
	uint32_t ftype;           /* MKNOD */
	uint32_t spec1, spec2;    /* MKNOD CHR/BLK */
	char path[NFS3_PATH_MAX + 1]; /* SYMLINK target */
} nfs3_args;

/* Decode the arguments of procedure proc. 0; -EBADMSG/-E2BIG: garbage args;
 * -ENAMETOOLONG: a name over 255 bytes (NFS3ERR_NAMETOOLONG); -EINVAL: an empty name
 * or one with '/' (NFS3ERR_INVAL; "." and ".." pass: LOOKUP takes them, the server
 * refuses them where a name is made); -EFBIG: WRITE over max_write; -ENOSYS: no such
 * procedure. */
int nfs3_decode_args(uint32_t proc, const uint8_t *buf, size_t len, uint32_t max_write,
                     nfs3_args *a);

/* --- results --- */
typedef struct nfs3_fattr {
	uint32_t type;            /* enum nfs3_ftype */
	uint32_t mode, nlink, uid, gid;
	uint64_t size, used;
	uint32_t rdev1, rdev2;
	uint64_t fsid, fileid;
	nfs3_time atime, mtime, ctime;
} nfs3_fattr;

/* The attributes before an operation (wcc_attr): size, mtime, ctime. */
typedef struct nfs3_wcc_attr {
	uint64_t size;
	nfs3_time mtime, ctime;
} nfs3_wcc_attr;

void nfs3_put_fattr(xdr_enc *e, const nfs3_fattr *a);
/* post_op_attr: a NULL a encodes "no attributes". */
void nfs3_put_post_attr(xdr_enc *e, const nfs3_fattr *a);
/* wcc_data: pre (NULL: none), then post (NULL: none). */
void nfs3_put_wcc(xdr_enc *e, const nfs3_wcc_attr *pre, const nfs3_fattr *post);
void nfs3_put_fh(xdr_enc *e, const nfs3_fh *fh);
/* post_op_fh3: NULL encodes "no handle". */
void nfs3_put_post_fh(xdr_enc *e, const nfs3_fh *fh);
nfs3_wcc_attr nfs3_wcc_of(const nfs3_fattr *a);
/* Decoders of the same (tests and clients). */
void nfs3_get_fattr(xdr_dec *d, nfs3_fattr *a);

/* --- MOUNT v3 --- */
enum mount_proc { MNT3_NULL = 0, MNT3_MNT = 1, MNT3_DUMP = 2, MNT3_UMNT = 3,
	MNT3_UMNTALL = 4, MNT3_EXPORT = 5 };
enum mountstat3 { MNT3_OK = 0, MNT3ERR_PERM = 1, MNT3ERR_NOENT = 2, MNT3ERR_IO = 5,
	MNT3ERR_ACCES = 13, MNT3ERR_NOTDIR = 20, MNT3ERR_INVAL = 22,
	MNT3ERR_NAMETOOLONG = 63, MNT3ERR_NOTSUPP = 10004, MNT3ERR_SERVERFAULT = 10006 };
/* MNT and UMNT take a dirpath (at most MNT_PATH_MAX bytes) into path. */
int mnt3_decode_path(const uint8_t *buf, size_t len, char path[MNT_PATH_MAX + 1]);

/* --- portmapper v2 --- */
enum pmap_proc { PMAP_NULL = 0, PMAP_SET = 1, PMAP_UNSET = 2, PMAP_GETPORT = 3,
	PMAP_DUMP = 4 };
#define PMAP_IPPROTO_TCP 6
#define PMAP_IPPROTO_UDP 17
typedef struct pmap_mapping {
	uint32_t prog, vers, prot, port;
} pmap_mapping;
int pmap_decode_mapping(const uint8_t *buf, size_t len, pmap_mapping *m);
void pmap_put_mapping(xdr_enc *e, const pmap_mapping *m);

/* --- file handles ---
 * bkstor's handle (40 bytes): magic "BKFH" (4), version 1 (1), zero (3), export id
 * (4), zero (4), object id (8), generation (8), MAC (8): the first 8 bytes of
 * HMAC-SHA-256(key, bytes 0..31), so a client cannot forge a handle to an object
 * outside its export (docs/protocol.md "NFS file handles"). */
#define NFS3_BKFH_LEN 40
#define NFS3_FH_KEY_LEN 32
typedef struct nfs3_handle {
	uint32_t export_id;
	uint64_t id, gen;
} nfs3_handle;
void nfs3_fh_make(const uint8_t key[NFS3_FH_KEY_LEN], const nfs3_handle *h, nfs3_fh *fh);
/* 0, -EBADMSG (not one of ours: NFS3ERR_BADHANDLE), -EACCES (MAC wrong: forged or
 * from another appliance: NFS3ERR_BADHANDLE as well, logged). */
int nfs3_fh_parse(const uint8_t key[NFS3_FH_KEY_LEN], const nfs3_fh *fh, nfs3_handle *h);

#endif /* BKS_NFS3_H */
