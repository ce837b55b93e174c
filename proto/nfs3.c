/* proto/nfs3.c: see nfs3.h. Wire layouts: RFC 1813 §3 (NFS), §5 (MOUNT); RFC 1833
 * (portmapper). */
#include <config.h>

#include "proto/nfs3.h"

#include <errno.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

/* Names are read with room past the limit, so "too long" is told from garbage. */
#define NAME_READ_MAX 1024

static void get_fh(xdr_dec *d, nfs3_fh *fh)
{
	uint32_t n;
	const uint8_t *p = xdr_get_opaque(d, NFS3_FHSIZE, &n);
	fh->len = n;
	if (p)
		memcpy(fh->data, p, n);
}

/* A name: 0, -ENAMETOOLONG, -EINVAL (empty, '/'); decode errors are in d->err. */
static int get_name(xdr_dec *d, char out[NFS3_NAME_MAX + 1])
{
	uint32_t n;
	const uint8_t *p = xdr_get_opaque(d, NAME_READ_MAX, &n);
	out[0] = 0;
	if (!p)
		return 0;
	if (memchr(p, 0, n)) {
		d->err = -EBADMSG;
		return 0;
	}
	if (n > NFS3_NAME_MAX)
		return -ENAMETOOLONG;
	memcpy(out, p, n);
	out[n] = 0;
	if (n == 0 || memchr(p, '/', n))
		return -EINVAL;
	return 0;
}

static int get_dirop(xdr_dec *d, nfs3_diropargs *w)
{
	get_fh(d, &w->dir);
	return get_name(d, w->name);
}

static void get_time(xdr_dec *d, nfs3_time *t)
{
	t->sec = xdr_get_u32(d);
	t->nsec = xdr_get_u32(d);
}

static void get_set_time(xdr_dec *d, uint32_t *how, nfs3_time *t)
{
	*how = xdr_get_u32(d);
	if (*how == NFS3_SET_TO_CLIENT_TIME)
		get_time(d, t);
	else if (*how > NFS3_SET_TO_CLIENT_TIME && !d->err)
		d->err = -EBADMSG;
}

static void get_sattr(xdr_dec *d, nfs3_sattr *s)
{
	if ((s->set_mode = xdr_get_bool(d)))
		s->mode = xdr_get_u32(d);
	if ((s->set_uid = xdr_get_bool(d)))
		s->uid = xdr_get_u32(d);
	if ((s->set_gid = xdr_get_bool(d)))
		s->gid = xdr_get_u32(d);
	if ((s->set_size = xdr_get_bool(d)))
		s->size = xdr_get_u64(d);
	get_set_time(d, &s->atime_how, &s->atime);
	get_set_time(d, &s->mtime_how, &s->mtime);
}

int nfs3_decode_args(uint32_t proc, const uint8_t *buf, size_t len, uint32_t max_write,
                     nfs3_args *a)
{
	xdr_dec d;
	int nr = 0, nr2 = 0;
	uint32_t n;

	memset(a, 0, offsetof(nfs3_args, path));
	a->path[0] = 0;
	a->proc = proc;
	xdr_dec_init(&d, buf, len);
	switch (proc) {
	case NFS3_NULL:
		break;
	case NFS3_GETATTR:
	case NFS3_READLINK:
	case NFS3_FSSTAT:
	case NFS3_FSINFO:
	case NFS3_PATHCONF:
		get_fh(&d, &a->fh);
		break;
	case NFS3_SETATTR:
		get_fh(&d, &a->fh);
		get_sattr(&d, &a->sattr);
		if ((a->guard_check = xdr_get_bool(&d)))
			get_time(&d, &a->guard_ctime);
		break;
	case NFS3_LOOKUP:
	case NFS3_REMOVE:
	case NFS3_RMDIR:
		nr = get_dirop(&d, &a->where);
		break;
	case NFS3_ACCESS:
		get_fh(&d, &a->fh);
		a->access = xdr_get_u32(&d);
		break;
	case NFS3_READ:
		get_fh(&d, &a->fh);
		a->offset = xdr_get_u64(&d);
		a->count = xdr_get_u32(&d);
		break;
	case NFS3_WRITE: {
		get_fh(&d, &a->fh);
		a->offset = xdr_get_u64(&d);
		a->count = xdr_get_u32(&d);
		a->stable = xdr_get_u32(&d);
		if (!d.err && a->stable > NFS3_FILE_SYNC)
			d.err = -EBADMSG;
		/* The data's own length first: more than the server takes is refused
		 * before anything depends on it. */
		if (!d.err && a->count > max_write)
			return -EFBIG;
		a->data = xdr_get_opaque(&d, max_write, &n);
		if (!d.err && n != a->count)
			d.err = -EBADMSG;
		break;
	}
	case NFS3_CREATE:
		nr = get_dirop(&d, &a->where);
		a->createmode = xdr_get_u32(&d);
		if (a->createmode == NFS3_EXCLUSIVE)
			xdr_get_fixed(&d, a->verf, NFS3_VERF);
		else if (a->createmode <= NFS3_GUARDED)
			get_sattr(&d, &a->sattr);
		else if (!d.err)
			d.err = -EBADMSG;
		break;
	case NFS3_MKDIR:
		nr = get_dirop(&d, &a->where);
		get_sattr(&d, &a->sattr);
		break;
	case NFS3_SYMLINK:
		nr = get_dirop(&d, &a->where);
		get_sattr(&d, &a->sattr);
		xdr_get_string(&d, a->path, NFS3_PATH_MAX);
		break;
	case NFS3_MKNOD:
		nr = get_dirop(&d, &a->where);
		a->ftype = xdr_get_u32(&d);
		switch (a->ftype) {
		case NF3CHR:
		case NF3BLK:
			get_sattr(&d, &a->sattr);
			a->spec1 = xdr_get_u32(&d);
			a->spec2 = xdr_get_u32(&d);
			break;
		case NF3SOCK:
		case NF3FIFO:
			get_sattr(&d, &a->sattr);
			break;
		case NF3REG:
		case NF3DIR:
		case NF3LNK:
			break; /* void: the server answers NFS3ERR_BADTYPE */
		default:
			if (!d.err)
				d.err = -EBADMSG;
		}
		break;
	case NFS3_RENAME:
		nr = get_dirop(&d, &a->where);
		nr2 = get_dirop(&d, &a->to);
		break;
	case NFS3_LINK:
		get_fh(&d, &a->fh);
		nr = get_dirop(&d, &a->where);
		break;
	case NFS3_READDIR:
		get_fh(&d, &a->fh);
		a->cookie = xdr_get_u64(&d);
		xdr_get_fixed(&d, a->verf, NFS3_VERF);
		a->count = xdr_get_u32(&d);
		break;
	case NFS3_READDIRPLUS:
		get_fh(&d, &a->fh);
		a->cookie = xdr_get_u64(&d);
		xdr_get_fixed(&d, a->verf, NFS3_VERF);
		a->dircount = xdr_get_u32(&d);
		a->maxcount = xdr_get_u32(&d);
		break;
	case NFS3_COMMIT:
		get_fh(&d, &a->fh);
		a->offset = xdr_get_u64(&d);
		a->count = xdr_get_u32(&d);
		break;
	default:
		return -ENOSYS;
	}
	if (d.err)
		return d.err;
	if (xdr_dec_left(&d))
		return -EBADMSG; /* trailing bytes: not what the client meant */
	if (nr == -ENAMETOOLONG || nr2 == -ENAMETOOLONG)
		return -ENAMETOOLONG;
	return nr ? nr : nr2;
}

/* --- results --- */

static void put_time(xdr_enc *e, const nfs3_time *t)
{
	xdr_put_u32(e, t->sec);
	xdr_put_u32(e, t->nsec);
}

void nfs3_put_fattr(xdr_enc *e, const nfs3_fattr *a)
{
	xdr_put_u32(e, a->type);
	xdr_put_u32(e, a->mode);
	xdr_put_u32(e, a->nlink);
	xdr_put_u32(e, a->uid);
	xdr_put_u32(e, a->gid);
	xdr_put_u64(e, a->size);
	xdr_put_u64(e, a->used);
	xdr_put_u32(e, a->rdev1);
	xdr_put_u32(e, a->rdev2);
	xdr_put_u64(e, a->fsid);
	xdr_put_u64(e, a->fileid);
	put_time(e, &a->atime);
	put_time(e, &a->mtime);
	put_time(e, &a->ctime);
}

void nfs3_get_fattr(xdr_dec *d, nfs3_fattr *a)
{
	a->type = xdr_get_u32(d);
	a->mode = xdr_get_u32(d);
	a->nlink = xdr_get_u32(d);
	a->uid = xdr_get_u32(d);
	a->gid = xdr_get_u32(d);
	a->size = xdr_get_u64(d);
	a->used = xdr_get_u64(d);
	a->rdev1 = xdr_get_u32(d);
	a->rdev2 = xdr_get_u32(d);
	a->fsid = xdr_get_u64(d);
	a->fileid = xdr_get_u64(d);
	get_time(d, &a->atime);
	get_time(d, &a->mtime);
	get_time(d, &a->ctime);
}

void nfs3_put_post_attr(xdr_enc *e, const nfs3_fattr *a)
{
	xdr_put_u32(e, a != NULL);
	if (a)
		nfs3_put_fattr(e, a);
}

nfs3_wcc_attr nfs3_wcc_of(const nfs3_fattr *a)
{
	nfs3_wcc_attr w = {.size = a->size, .mtime = a->mtime, .ctime = a->ctime};
	return w;
}

void nfs3_put_wcc(xdr_enc *e, const nfs3_wcc_attr *pre, const nfs3_fattr *post)
{
	xdr_put_u32(e, pre != NULL);
	if (pre) {
		xdr_put_u64(e, pre->size);
		put_time(e, &pre->mtime);
		put_time(e, &pre->ctime);
	}
	nfs3_put_post_attr(e, post);
}

void nfs3_put_fh(xdr_enc *e, const nfs3_fh *fh)
{
	xdr_put_opaque(e, fh->data, fh->len);
}

void nfs3_put_post_fh(xdr_enc *e, const nfs3_fh *fh)
{
	xdr_put_u32(e, fh != NULL);
	if (fh)
		nfs3_put_fh(e, fh);
}

/* --- MOUNT, portmapper --- */

int mnt3_decode_path(const uint8_t *buf, size_t len, char path[MNT_PATH_MAX + 1])
{
	xdr_dec d;
	xdr_dec_init(&d, buf, len);
	xdr_get_string(&d, path, MNT_PATH_MAX);
	if (d.err)
		return d.err;
	return xdr_dec_left(&d) ? -EBADMSG : 0;
}

int pmap_decode_mapping(const uint8_t *buf, size_t len, pmap_mapping *m)
{
	xdr_dec d;
	xdr_dec_init(&d, buf, len);
	m->prog = xdr_get_u32(&d);
	m->vers = xdr_get_u32(&d);
	m->prot = xdr_get_u32(&d);
	m->port = xdr_get_u32(&d);
	if (d.err)
		return d.err;
	return xdr_dec_left(&d) ? -EBADMSG : 0;
}

void pmap_put_mapping(xdr_enc *e, const pmap_mapping *m)
{
	xdr_put_u32(e, m->prog);
	xdr_put_u32(e, m->vers);
	xdr_put_u32(e, m->prot);
	xdr_put_u32(e, m->port);
}

/* --- file handles --- */

static const uint8_t FH_MAGIC[4] = {'B', 'K', 'F', 'H'};
#define FH_VERSION 1
#define FH_BODY 32

static void le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t rd64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static void fh_mac(const uint8_t key[NFS3_FH_KEY_LEN], const uint8_t *body, uint8_t out[8])
{
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	HMAC(EVP_sha256(), key, NFS3_FH_KEY_LEN, body, FH_BODY, md, &mdlen);
	memcpy(out, md, 8);
}

void nfs3_fh_make(const uint8_t key[NFS3_FH_KEY_LEN], const nfs3_handle *h, nfs3_fh *fh)
{
	uint8_t *b = fh->data;
	memset(b, 0, NFS3_BKFH_LEN);
	memcpy(b, FH_MAGIC, 4);
	b[4] = FH_VERSION;
	le32(b + 8, h->export_id);
	le64(b + 16, h->id);
	le64(b + 24, h->gen);
	fh_mac(key, b, b + FH_BODY);
	fh->len = NFS3_BKFH_LEN;
}

int nfs3_fh_parse(const uint8_t key[NFS3_FH_KEY_LEN], const nfs3_fh *fh, nfs3_handle *h)
{
	const uint8_t *b = fh->data;
	uint8_t mac[8];
	if (fh->len != NFS3_BKFH_LEN || memcmp(b, FH_MAGIC, 4) || b[4] != FH_VERSION ||
	    b[5] || b[6] || b[7] || rd64(b + 8) >> 32)
		return -EBADMSG;
	fh_mac(key, b, mac);
	if (CRYPTO_memcmp(mac, b + FH_BODY, 8) != 0)
		return -EACCES;
	h->export_id = (uint32_t)rd64(b + 8);
	h->id = rd64(b + 16);
	h->gen = rd64(b + 24);
	return 0;
}
