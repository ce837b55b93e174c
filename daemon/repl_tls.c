/* daemon/repl_tls.c: the appliance's identity (certificate, key, appliance id), the
 * pin of the twin's certificate, and TLS 1.3 connections with mutual authentication
 * carrying proto/repl frames.
 *
 * Trust is by pinning, not by a CA: each side's certificate is self-signed, made at
 * the first start, and the other side accepts it only when its SHA-256 fingerprint
 * (over the DER certificate) is the one pinned at pairing. The check runs inside the
 * handshake (the verify callback), so an unpinned certificate never gets a byte of
 * the protocol; the one exception is a twin whose admin has just issued a pairing
 * token: then an unknown certificate completes the handshake but may only send PAIR
 * with that token (repl_recv.c).
 *
 * Files beside the configuration (written whole: temporary file, fsync, rename):
 *   repl.crt       PEM certificate (EC P-256, CN "bkstor <appliance id>")
 *   repl.key       PEM private key, mode 0600 (refused when group or others can read)
 *   appliance.id   32 hex digits and a newline: 128 random bits
 *   repl.peer      the pin: "fingerprint HEX", "id HEX", "address HOST:PORT" lines
 */
#include <config.h>

#include "daemon/repl_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/log.h"

void repl_hex(const uint8_t *b, size_t n, char *out)
{
	static const char hx[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hx[b[i] >> 4];
		out[2 * i + 1] = hx[b[i] & 15];
	}
	out[2 * n] = 0;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int repl_unhex(const char *s, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int a = hexval((unsigned char)s[2 * i]), b = a < 0 ? -1 : hexval((unsigned char)s[2 * i + 1]);
		if (a < 0 || b < 0)
			return -EINVAL;
		out[i] = (uint8_t)(a << 4 | b);
	}
	return s[2 * n] == 0 || s[2 * n] == '\n' ? 0 : -EINVAL;
}

/* Write a small file whole: a crash leaves the old one or the new one, never a mix. */
int repl_write_file(const char *path, const void *buf, size_t n, int mode)
{
	char tmp[1200];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	unlink(tmp);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0)
		return -errno;
	const uint8_t *p = buf;
	size_t done = 0;
	int r = 0;
	while (done < n) {
		ssize_t k = write(fd, p + done, n - done);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			break;
		}
		done += (size_t)k;
	}
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	close(fd);
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0) {
		unlink(tmp);
		return r;
	}
	/* The rename itself must survive a crash: fsync the directory. */
	char dir[1200];
	snprintf(dir, sizeof(dir), "%s", path);
	char *sl = strrchr(dir, '/');
	if (sl) {
		*(sl == dir ? sl + 1 : sl) = 0;
		int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd >= 0) {
			fsync(dfd);
			close(dfd);
		}
	}
	return 0;
}

static int cert_fp(X509 *x, char out[REPL_FP_HEX])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	if (!X509_digest(x, EVP_sha256(), md, &n) || n != 32)
		return -EIO;
	repl_hex(md, 32, out);
	return 0;
}

static const char *ssl_why(void)
{
	static __thread char buf[200];
	unsigned long e = ERR_peek_last_error();
	if (!e)
		return "no detail";
	ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	return buf;
}

static X509 *make_cert(EVP_PKEY *k, const uint8_t id[REPL_ID_LEN])
{
	char cn[64], idhex[2 * REPL_ID_LEN + 1];
	uint64_t serial;
	X509 *x = X509_new();
	if (!x)
		return NULL;
	repl_hex(id, REPL_ID_LEN, idhex);
	snprintf(cn, sizeof(cn), "bkstor %s", idhex);
	bks_random(&serial, sizeof(serial));
	serial >>= 1; /* a positive serial number */
	X509_NAME *nm = X509_get_subject_name(x);
	if (!X509_set_version(x, 2) || !ASN1_INTEGER_set_uint64(X509_get_serialNumber(x), serial) ||
	    !X509_gmtime_adj(X509_getm_notBefore(x), -86400) ||
	    /* Pinned, not CA-checked: expiry would only break a pair that works. */
	    !X509_time_adj_ex(X509_getm_notAfter(x), 36500, 0, NULL) ||
	    !X509_set_pubkey(x, k) ||
	    !X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC, (unsigned char *)cn, -1, -1, 0) ||
	    !X509_set_issuer_name(x, nm) || !X509_sign(x, k, EVP_sha256())) {
		X509_free(x);
		return NULL;
	}
	return x;
}

static int pem_to_file(const char *path, EVP_PKEY *k, X509 *x, int mode)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p;
	int r = -EIO;
	if (!b)
		return -ENOMEM;
	if ((k ? PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL)
	       : PEM_write_bio_X509(b, x)) == 1) {
		long n = BIO_get_mem_data(b, &p);
		r = repl_write_file(path, p, (size_t)n, mode);
	}
	BIO_free(b);
	return r;
}

int repl_identity_load(repl *r, bks_err *e)
{
	char kpath[1100], cpath[1100], ipath[1100], line[80];
	struct stat st;
	snprintf(kpath, sizeof(kpath), "%srepl.key", r->dir);
	snprintf(cpath, sizeof(cpath), "%srepl.crt", r->dir);
	snprintf(ipath, sizeof(ipath), "%sappliance.id", r->dir);

	/* The appliance id first: the certificate names it. */
	FILE *f = fopen(ipath, "r");
	if (f) {
		int ok = fgets(line, sizeof(line), f) && repl_unhex(line, r->id, REPL_ID_LEN) == 0;
		fclose(f);
		if (!ok)
			return bks_fail(e, -EINVAL, "%s: not 32 hex digits (the appliance id)", ipath);
	} else if (errno == ENOENT) {
		bks_random(r->id, REPL_ID_LEN);
		repl_hex(r->id, REPL_ID_LEN, line);
		strcat(line, "\n");
		int w = repl_write_file(ipath, line, strlen(line), 0644);
		if (w < 0)
			return bks_fail(e, w, "%s: %s", ipath, strerror(-w));
		LOG_I("repl: made appliance id %.32s (%s)", line, ipath);
	} else {
		return bks_fail(e, -errno, "%s: %s", ipath, strerror(errno));
	}

	if (stat(kpath, &st) == 0) {
		if (st.st_mode & 077)
			return bks_fail(e, -EPERM, "%s is readable by group or others (mode %04o): "
			                "chmod 600 it", kpath, (unsigned)(st.st_mode & 07777));
		f = fopen(kpath, "r");
		r->key = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
		if (f)
			fclose(f);
		f = fopen(cpath, "r");
		r->cert = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
		if (f)
			fclose(f);
		if (!r->key || !r->cert)
			return bks_fail(e, -EINVAL, "cannot read %s or %s: %s", kpath, cpath, ssl_why());
	} else {
		r->key = EVP_EC_gen("P-256");
		r->cert = r->key ? make_cert(r->key, r->id) : NULL;
		if (!r->cert)
			return bks_fail(e, -EIO, "cannot make the replication certificate: %s",
			                ssl_why());
		int w = pem_to_file(cpath, NULL, r->cert, 0644);
		if (w == 0)
			w = pem_to_file(kpath, r->key, NULL, 0600);
		if (w < 0)
			return bks_fail(e, w, "cannot write %s / %s: %s", cpath, kpath, strerror(-w));
		LOG_I("repl: made certificate %s and key %s", cpath, kpath);
	}
	return cert_fp(r->cert, r->fp);
}

int repl_pin_load(repl *r)
{
	char path[1100], line[200];
	snprintf(path, sizeof(path), "%srepl.peer", r->dir);
	FILE *f = fopen(path, "r");
	if (!f)
		return errno == ENOENT ? 0 : -errno;
	r->pin_fp[0] = 0;
	r->pin_addr[0] = 0;
	r->role = ROLE_NONE;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = 0;
		if (!strncmp(line, "fingerprint ", 12) && strlen(line + 12) == 64) {
			uint8_t b[32];
			if (repl_unhex(line + 12, b, 32) == 0)
				repl_hex(b, 32, r->pin_fp);
		} else if (!strncmp(line, "id ", 3)) {
			repl_unhex(line + 3, r->pin_id, REPL_ID_LEN);
		} else if (!strncmp(line, "address ", 8)) {
			size_t al = strlen(line + 8);
			if (al < sizeof(r->pin_addr))
				memcpy(r->pin_addr, line + 8, al + 1);
		} else {
			repl_peer_line(r, line); /* role, name, reseed: repl_failover.c */
		}
	}
	fclose(f);
	if (!r->pin_fp[0])
		LOG_W("repl: %s has no valid fingerprint line: not paired", path);
	return 0;
}

/* A new pairing: the pin, and the role it gives (with an address: the source). The
 * fields are r's once the file is written (r->mu held). */
int repl_pin_save(repl *r, const char *fp, const uint8_t id[REPL_ID_LEN], const char *addr)
{
	char ofp[REPL_FP_HEX], oaddr[sizeof(r->pin_addr)], oname[sizeof(r->pin_name)];
	uint8_t oid[REPL_ID_LEN];
	int orole = r->role;
	uint64_t oprom = r->promoted_s;
	memcpy(ofp, r->pin_fp, sizeof(ofp));
	memcpy(oid, r->pin_id, sizeof(oid));
	memcpy(oaddr, r->pin_addr, sizeof(oaddr));
	memcpy(oname, r->pin_name, sizeof(oname));
	snprintf(r->pin_fp, sizeof(r->pin_fp), "%s", fp);
	memcpy(r->pin_id, id, REPL_ID_LEN);
	snprintf(r->pin_addr, sizeof(r->pin_addr), "%s", addr ? addr : "");
	r->role = addr && addr[0] ? ROLE_SOURCE : ROLE_TWIN;
	r->pin_name[0] = 0;
	r->promoted_s = 0;
	r->handback = 0;
	int rc = repl_peer_save(r);
	if (rc < 0) {
		memcpy(r->pin_fp, ofp, sizeof(ofp));
		memcpy(r->pin_id, oid, sizeof(oid));
		memcpy(r->pin_addr, oaddr, sizeof(oaddr));
		memcpy(r->pin_name, oname, sizeof(oname));
		r->role = orole;
		r->promoted_s = oprom;
	}
	return rc;
}

/* ---- TLS ---- */

/* What one handshake accepts (SSL ex_data). */
struct vstate {
	repl *r;
	int server;
	int any;                     /* client probing for pairing: report, accept */
	char expect[REPL_FP_HEX];    /* "" none */
	char got[REPL_FP_HEX];
	int pair_only, refused;
};
static int vidx = -1;
static pthread_once_t vonce = PTHREAD_ONCE_INIT;
static void vidx_init(void)
{
	vidx = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

static int verify_cb(int ok, X509_STORE_CTX *x)
{
	(void)ok; /* self-signed: OpenSSL's own chain check always fails; the pin decides */
	SSL *ssl = X509_STORE_CTX_get_ex_data(x, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct vstate *v = ssl ? SSL_get_ex_data(ssl, vidx) : NULL;
	if (!v)
		return 0;
	if (X509_STORE_CTX_get_error_depth(x) > 0)
		return 1; /* only the peer's own certificate is pinned */
	X509 *cert = X509_STORE_CTX_get_current_cert(x);
	if (!cert || cert_fp(cert, v->got) < 0)
		return 0;
	if (v->any || (v->expect[0] && !strcmp(v->expect, v->got)))
		return 1;
	if (v->server) {
		repl *r = v->r;
		pthread_mutex_lock(&r->mu);
		int tok = r->token[0] && bks_now_ns() < r->token_until_ns;
		pthread_mutex_unlock(&r->mu);
		if (tok) {
			v->pair_only = 1;
			return 1;
		}
	}
	v->refused = 1;
	return 0;
}

static SSL_CTX *ctx_new(repl *r, int server, bks_err *e)
{
	SSL_CTX *c = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
	if (!c)
		return NULL;
	/* TLS 1.3 only: no renegotiation, no static RSA, forward secrecy always. */
	if (!SSL_CTX_set_min_proto_version(c, TLS1_3_VERSION) ||
	    !SSL_CTX_set_max_proto_version(c, TLS1_3_VERSION) ||
	    SSL_CTX_use_certificate(c, r->cert) != 1 || SSL_CTX_use_PrivateKey(c, r->key) != 1 ||
	    SSL_CTX_check_private_key(c) != 1) {
		bks_fail(e, -EIO, "TLS context: %s", ssl_why());
		SSL_CTX_free(c);
		return NULL;
	}
	SSL_CTX_set_verify(c, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, verify_cb);
	SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(c, 0); /* no resumption: every connection shows its cert */
	return c;
}

int repl_tls_init(repl *r, bks_err *e)
{
	pthread_once(&vonce, vidx_init);
	if (!(r->sctx = ctx_new(r, 1, e)) || !(r->cctx = ctx_new(r, 0, e)))
		return e && e->code ? e->code : -EIO;
	/* Read what the socket has (up to 64 KiB) into OpenSSL's buffer at once, not a
	 * record's header and then its body: a read(2) per several records, not two per
	 * record. Nothing here polls the socket, so bytes buffered inside OpenSSL are
	 * never waited for in vain. */
	SSL_CTX_set_read_ahead(r->sctx, 1);
	SSL_CTX_set_read_ahead(r->cctx, 1);
	SSL_CTX_set_default_read_buffer_len(r->sctx, 64u << 10);
	SSL_CTX_set_default_read_buffer_len(r->cctx, 64u << 10);
	return 0;
}

static void set_timeouts(int fd, int secs)
{
	struct timeval tv = {.tv_sec = secs};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

int repl_parse_addr(const char *addr, char *host, size_t cap, uint16_t *port)
{
	const char *colon = strrchr(addr, ':');
	if (!colon || colon == addr)
		return -EINVAL;
	const char *h = addr;
	size_t hl = (size_t)(colon - addr);
	if (h[0] == '[' && hl >= 2 && h[hl - 1] == ']') {
		h++;
		hl -= 2;
	}
	char *end;
	long p = strtol(colon + 1, &end, 10);
	if (*end || p < 1 || p > 65535 || hl == 0 || hl >= cap)
		return -EINVAL;
	memcpy(host, h, hl);
	host[hl] = 0;
	*port = (uint16_t)p;
	return 0;
}

void repl_conn_close(rconn *c)
{
	if (c->ssl && c->wlen)
		repl_flush(c); /* a last answer (PAIR_OK, an ERROR) before the close */
	if (c->ssl) {
		SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
	}
	if (c->fd >= 0)
		close(c->fd);
	free(c->buf);
	free(c->wbuf);
	c->ssl = NULL;
	c->fd = -1;
	c->buf = NULL;
	c->wbuf = NULL;
	c->wlen = 0;
}

int repl_connect(repl *r, const char *addr, const char *expect_fp, rconn *c, bks_err *e)
{
	char host[64], ps[8];
	uint16_t port;
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
	struct vstate v = {.r = r, .any = expect_fp == NULL};
	memset(c, 0, sizeof(*c));
	c->fd = -1;
	if (repl_parse_addr(addr, host, sizeof(host), &port) < 0)
		return bks_fail(e, -EINVAL, "'%s' is not HOST:PORT", addr);
	if (!strcmp(host, "localhost"))
		snprintf(host, sizeof(host), "127.0.0.1");
	snprintf(ps, sizeof(ps), "%u", port);
	snprintf(c->peer, sizeof(c->peer), "%s", addr);
	if (expect_fp)
		snprintf(v.expect, sizeof(v.expect), "%s", expect_fp);
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	int g = getaddrinfo(host, ps, &hints, &ai);
	if (g)
		return bks_fail(e, -EINVAL, "%s: %s (give a numeric address)", addr, gai_strerror(g));
	c->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int rc = c->fd < 0 ? -errno : 0;
	if (rc == 0) {
		set_timeouts(c->fd, 10);
		if (connect(c->fd, ai->ai_addr, ai->ai_addrlen) < 0)
			rc = -errno;
	}
	freeaddrinfo(ai);
	if (rc < 0) {
		repl_conn_close(c);
		return bks_fail(e, rc, "cannot connect to %s: %s", addr, strerror(-rc));
	}
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (!(c->buf = malloc(REPL_BUF)) || !(c->ssl = SSL_new(r->cctx))) {
		repl_conn_close(c);
		return bks_fail(e, -ENOMEM, "out of memory");
	}
	SSL_set_ex_data(c->ssl, vidx, &v);
	SSL_set_fd(c->ssl, c->fd);
	ERR_clear_error();
	if (SSL_connect(c->ssl) != 1) {
		const char *why = v.refused ? "its certificate is not the pinned one" : ssl_why();
		snprintf(c->peer_fp, sizeof(c->peer_fp), "%s", v.got);
		LOG_W("repl: %s: TLS handshake failed: %s%s%s", addr, why,
		      v.refused ? "; it shows " : "", v.refused ? v.got : "");
		bks_fail(e, v.refused ? -EPERM : -ECONNREFUSED,
		         "%s: TLS handshake failed: %s%s%s", addr, why,
		         v.refused ? "; it shows SHA-256 " : "", v.refused ? v.got : "");
		SSL_set_ex_data(c->ssl, vidx, NULL);
		repl_conn_close(c);
		return e ? e->code : -EPERM;
	}
	SSL_set_ex_data(c->ssl, vidx, NULL);
	snprintf(c->peer_fp, sizeof(c->peer_fp), "%s", v.got);
	set_timeouts(c->fd, REPL_IO_TIMEOUT_S);
	return 0;
}

int repl_accept(repl *r, int fd, const char *peer, rconn *c, int *pair_only)
{
	struct vstate v = {.r = r, .server = 1};
	memset(c, 0, sizeof(*c));
	c->fd = fd;
	snprintf(c->peer, sizeof(c->peer), "%s", peer);
	pthread_mutex_lock(&r->mu);
	snprintf(v.expect, sizeof(v.expect), "%s", r->pin_fp);
	pthread_mutex_unlock(&r->mu);
	set_timeouts(fd, 10);
	if (!(c->buf = malloc(REPL_BUF)) || !(c->ssl = SSL_new(r->sctx))) {
		repl_conn_close(c);
		return -ENOMEM;
	}
	SSL_set_ex_data(c->ssl, vidx, &v);
	SSL_set_fd(c->ssl, fd);
	ERR_clear_error();
	int ok = SSL_accept(c->ssl);
	SSL_set_ex_data(c->ssl, vidx, NULL);
	if (ok != 1) {
		/* Say which refusal it was: the admin reading the log must tell an attack
		 * or a re-keyed twin (certificate) from a misdirected client (not TLS). */
		if (v.refused)
			LOG_W("repl: %s refused: certificate SHA-256 %s is not the pinned one%s", peer,
			      v.got, v.expect[0] ? "" : " (not paired; no pairing token active)");
		else if (!v.got[0] && SSL_get_state(c->ssl) != TLS_ST_BEFORE &&
		         strstr(ssl_why(), "certificate"))
			LOG_W("repl: %s refused: no client certificate", peer);
		else
			LOG_W("repl: %s refused: not a TLS 1.3 client with a certificate (%s)", peer,
			      ssl_why());
		pthread_mutex_lock(&r->mu);
		r->refused++;
		pthread_mutex_unlock(&r->mu);
		repl_conn_close(c);
		return -EPERM;
	}
	snprintf(c->peer_fp, sizeof(c->peer_fp), "%s", v.got);
	*pair_only = v.pair_only;
	/* A paired source may be quiet between frames of a slow cycle; an unpinned peer
	 * allowed in for PAIR gets no more time than the handshake had. */
	set_timeouts(fd, v.pair_only ? 10 : 600);
	return 0;
}

static int ssl_err(rconn *c, int k)
{
	int se = SSL_get_error(c->ssl, k);
	if (se == SSL_ERROR_ZERO_RETURN)
		return -ECONNRESET;
	if (se == SSL_ERROR_SYSCALL)
		return errno == EAGAIN || errno == EWOULDBLOCK ? -ETIMEDOUT : -ECONNRESET;
	ERR_clear_error();
	return -EPROTO;
}

static int write_full(rconn *c, const uint8_t *p, size_t n)
{
	while (n > 0) {
		int k = SSL_write(c->ssl, p, n > (1u << 30) ? 1 << 30 : (int)n);
		if (k <= 0)
			return ssl_err(c, k);
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

int repl_flush(rconn *c)
{
	size_t n = c->wlen;
	c->wlen = 0;
	return n ? write_full(c, c->wbuf, n) : 0;
}

/* Frames are gathered in wbuf and go out when it is full or before the next read
 * (read_full flushes): a CHUNK's header and bytes and the chunks after it share TLS
 * records and write(2) calls instead of two of each per chunk. tx counts the bytes
 * when they are given (the pace and the wire counter see them at once). */
int repl_send(rconn *c, const void *buf, size_t n)
{
	int rc;
	c->tx += n;
	if (!c->wbuf && !(c->wbuf = malloc(REPL_WBUF)))
		return write_full(c, buf, n);
	if (c->wlen + n > REPL_WBUF && (rc = repl_flush(c)) < 0)
		return rc;
	if (n >= REPL_WBUF)
		return write_full(c, buf, n);
	memcpy(c->wbuf + c->wlen, buf, n);
	c->wlen += n;
	return 0;
}

int repl_send_msg(rconn *c, const repl_msg *m, const wire_fp *fps, uint32_t n)
{
	uint8_t small[REPL_HDR_LEN + 8192];
	uint8_t *buf = small;
	size_t cap = sizeof(small);
	if (m->type == REPL_FP_LIST || m->type == REPL_FP_NEED || m->type == REPL_WANT_LIST) {
		buf = c->buf; /* a bulk frame: the connection's buffer (not being read now) */
		cap = REPL_BUF;
	}
	int k = repl_msg_encode(buf, cap, m, fps, n);
	return k < 0 ? k : repl_send(c, buf, (size_t)k);
}

int repl_send_error(rconn *c, int err, const char *fmt, ...)
{
	char text[WIRE_TEXT_MAX + 1];
	va_list va;
	va_start(va, fmt);
	vsnprintf(text, sizeof(text), fmt, va);
	va_end(va);
	repl_msg m = {.type = REPL_ERROR, .code = wire_code_from_errno(err), .text = wire_s(text)};
	return repl_send_msg(c, &m, NULL, 0);
}

static int read_full(rconn *c, uint8_t *p, size_t n)
{
	int rc;
	if (c->wlen && (rc = repl_flush(c)) < 0)
		return rc; /* what we wait an answer to must be on its way */
	while (n > 0) {
		int k = SSL_read(c->ssl, p, n > (1u << 30) ? 1 << 30 : (int)n);
		if (k <= 0)
			return ssl_err(c, k);
		p += k;
		n -= (size_t)k;
		c->rx += (uint64_t)k;
	}
	return 0;
}

int repl_read_msg(rconn *c, repl_msg *m, bks_err *e)
{
	repl_hdr h;
	int r = read_full(c, c->buf, REPL_HDR_LEN);
	if (r < 0)
		return bks_fail(e, r, "%s: %s", c->peer,
		                r == -ECONNRESET ? "connection closed" : strerror(-r));
	if ((r = repl_hdr_decode(c->buf, REPL_HDR_LEN, &h, e)) < 0)
		return r == -EAGAIN ? -EPROTO : r;
	if ((r = read_full(c, c->buf + REPL_HDR_LEN, h.len)) < 0)
		return bks_fail(e, r, "%s: %s", c->peer, strerror(-r));
	return repl_msg_decode(h.type, c->buf + REPL_HDR_LEN, h.len, m, e);
}
