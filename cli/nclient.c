/* cli/nclient.c: see nclient.h: the connection (socket I/O, framing, login) and the
 * requests but PUT, which is in nclient_put.c. The request/reply rules followed are the
 * server's (daemon/native_ops.c), written down in docs/protocol.md:
 *   - a failed PUT: the server sends ERROR at once and then reads and drops the rest
 *     of the PUT up to its END, answering each FP_LIST with an all-zero FP_NEED. So
 *     after an ERROR we always send END, and an FP_NEED that arrives later with an old
 *     tag is dropped (ncl_read_reply) rather than taken for a protocol error;
 *   - a GET ends with END, or with an ERROR in place of further DATA.
 */
#include <config.h>

#include "cli/nclient_int.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "proto/auth.h"

#define RBUF_INIT (256u << 10)

/* --- addresses and paths --- */

int ncl_addr_parse(const char *spec, char *host, size_t cap, uint16_t *port, bks_err *e)
{
	const char *h = spec, *colon;
	size_t hl;
	if (!spec || !*spec)
		return bks_fail(e, -EINVAL, "empty server address");
	if (*spec == '[') {
		const char *rb = strchr(spec, ']');
		if (!rb || (rb[1] && rb[1] != ':'))
			return bks_fail(e, -EINVAL, "%s: an IPv6 address is written [addr]:port", spec);
		h = spec + 1;
		hl = (size_t)(rb - h);
		colon = rb[1] ? rb + 1 : NULL;
	} else {
		colon = strrchr(spec, ':');
		if (colon && strchr(spec, ':') != colon)
			return bks_fail(e, -EINVAL, "%s: write an IPv6 address as [addr]:port", spec);
		hl = colon ? (size_t)(colon - spec) : strlen(spec);
	}
	if (hl == 0 || hl >= cap)
		return bks_fail(e, -EINVAL, "%s: no host, or a host name that is too long", spec);
	memcpy(host, h, hl);
	host[hl] = 0;
	*port = WIRE_PORT;
	if (colon) {
		char *end;
		unsigned long p = strtoul(colon + 1, &end, 10);
		if (!colon[1] || *end || p == 0 || p > 65535)
			return bks_fail(e, -EINVAL, "%s: the port must be 1..65535", spec);
		*port = (uint16_t)p;
	}
	return 0;
}

int ncl_path_norm(const char *in, char *out, size_t cap, bks_err *e)
{
	size_t o = 0, n = strlen(in);
	if (cap < 2)
		return bks_fail(e, -ENAMETOOLONG, "path buffer too small");
	for (size_t i = 0; i < n;) {
		while (i < n && in[i] == '/')
			i++;
		size_t s = i;
		while (i < n && in[i] != '/')
			i++;
		size_t cl = i - s;
		if (cl == 0 || (cl == 1 && in[s] == '.'))
			continue;
		if (cl == 2 && in[s] == '.' && in[s + 1] == '.') {
			while (o > 0 && out[o - 1] != '/')
				o--;
			if (o > 0)
				o--; /* the '/' before the dropped component */
			continue;
		}
		if (o + 1 + cl + 1 > cap)
			return bks_fail(e, -ENAMETOOLONG, "%s: path too long", in);
		out[o++] = '/';
		memcpy(out + o, in + s, cl);
		o += cl;
	}
	if (o == 0)
		out[o++] = '/';
	out[o] = 0;
	return wire_path_check(out, o, e);
}

/* --- socket I/O: every wait bounded by the timeout --- */

void ncl_kill(ncl *c)
{
	if (!c->dead && c->fd >= 0)
		shutdown(c->fd, SHUT_RDWR); /* the server sees the end now, not at its timeout */
	c->dead = 1;
}

int ncl_fail(ncl *c, bks_err *e, int r, const char *what)
{
	ncl_kill(c);
	if (r == -ETIMEDOUT)
		return bks_fail(e, r, "%s %s: no progress for %d s", what, c->peer,
		                c->timeout_ms / 1000);
	if (r == -ECONNRESET || r == -EPIPE)
		return bks_fail(e, -ECONNRESET, "%s %s: the server closed the connection", what,
		                c->peer);
	return bks_fail(e, r, "%s %s: %s", what, c->peer, strerror(-r));
}

static int wait_fd(ncl *c, short events)
{
	struct pollfd pf = {.fd = c->fd, .events = events};
	for (;;) {
		int r = poll(&pf, 1, c->timeout_ms);
		if (r > 0)
			return 0;
		if (r == 0)
			return -ETIMEDOUT;
		if (errno != EINTR)
			return -errno;
	}
}

static int send_iov(ncl *c, struct iovec *iov, int n, bks_err *e)
{
	while (n > 0) {
		struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n};
		ssize_t k = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
		if (k < 0) {
			int r = -errno;
			if (r == -EINTR)
				continue;
			if (r == -EAGAIN && (r = wait_fd(c, POLLOUT)) == 0)
				continue;
			return ncl_fail(c, e, r, "sending to");
		}
		c->tx += (uint64_t)k;
		while (n > 0 && (size_t)k >= iov->iov_len) {
			k -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + k;
			iov->iov_len -= (size_t)k;
		}
	}
	return 0;
}

static int send_buf(ncl *c, const void *p, size_t n, bks_err *e)
{
	struct iovec iov = {.iov_base = (void *)p, .iov_len = n};
	return send_iov(c, &iov, 1, e);
}

/* A frame of bulk bytes: header and data without a copy. */
int ncl_send_bulk(ncl *c, uint8_t type, const void *p, size_t n, bks_err *e)
{
	uint8_t h[WIRE_HDR_LEN];
	if (wire_hdr_encode(h, type, c->tag, (uint32_t)n) < 0)
		return bks_fail(e, -EINVAL, "%s frame of %zu bytes", wire_type_name(type), n);
	struct iovec iov[2] = {{h, sizeof(h)}, {(void *)p, n}};
	return send_iov(c, iov, 2, e);
}

/* Make [rpos, rpos + need) hold received bytes. */
static int fill(ncl *c, size_t need, bks_err *e)
{
	if (c->rcap - c->rpos < need) {
		memmove(c->rbuf, c->rbuf + c->rpos, c->rend - c->rpos);
		c->rend -= c->rpos;
		c->rpos = 0;
		if (c->rcap < need) { /* room for two: fewer compactions of a partial frame */
			uint8_t *nb = realloc(c->rbuf, 2 * need);
			if (!nb)
				return ncl_fail(c, e, -ENOMEM, "receiving from");
			c->rbuf = nb;
			c->rcap = 2 * need;
		}
	}
	while (c->rend - c->rpos < need) {
		ssize_t k = recv(c->fd, c->rbuf + c->rend, c->rcap - c->rend, 0);
		if (k > 0) {
			c->rend += (size_t)k;
			c->rx += (uint64_t)k;
			continue;
		}
		int r = k == 0 ? -ECONNRESET : -errno;
		if (r == -EINTR)
			continue;
		if (r == -EAGAIN && (r = wait_fd(c, POLLIN)) == 0)
			continue;
		return ncl_fail(c, e, r, "receiving from");
	}
	return 0;
}

/* The next frame, decoded; its views are valid until the next read. */
static int read_frame(ncl *c, wire_hdr *h, wire_msg *m, bks_err *e)
{
	bks_err de = {0};
	int r;
	if (c->dead)
		return bks_fail(e, -ENOTCONN, "the connection to %s is closed", c->peer);
	if ((r = fill(c, WIRE_HDR_LEN, e)) < 0)
		return r;
	r = wire_hdr_decode(c->rbuf + c->rpos, WIRE_HDR_LEN, NCL_MAX_PAYLOAD, h, &de);
	if (r == 0 && !(wire_type_dir(h->type) & WIRE_DIR_S2C))
		r = bks_fail(&de, -EPROTO, "%s is not a frame a server sends", wire_type_name(h->type));
	if (r == 0 && (r = fill(c, WIRE_HDR_LEN + (size_t)h->len, e)) < 0)
		return r;
	if (r == 0)
		r = wire_msg_decode(h->type, c->rbuf + c->rpos + WIRE_HDR_LEN, h->len, m, &de);
	if (r < 0) {
		ncl_kill(c);
		return bks_fail(e, -EPROTO, "bad frame from %s: %s", c->peer, bks_errmsg(&de, r));
	}
	c->rpos += WIRE_HDR_LEN + (size_t)h->len;
	return 0;
}

/* The server's ERROR as our error: its code mapped back, its text. */
static int server_error(const wire_msg *m, bks_err *e)
{
	int r = wire_code_to_errno(m->u.error.code);
	if (m->u.error.text.len == 0)
		return bks_fail(e, r, "server: %s", strerror(-r));
	return bks_fail(e, r, "%.*s", (int)m->u.error.text.len, m->u.error.text.p);
}

int ncl_read_reply(ncl *c, wire_hdr *h, wire_msg *m, bks_err *e)
{
	for (;;) {
		int r = read_frame(c, h, m, e);
		if (r < 0)
			return r;
		if (h->tag == c->tag) {
			if (h->type == WIRE_ERROR)
				return server_error(m, e);
			return 0;
		}
		if (h->type == WIRE_FP_NEED)
			continue;
		ncl_kill(c);
		if (h->type == WIRE_ERROR) { /* tag 0: the server ends the connection */
			r = wire_code_to_errno(m->u.error.code);
			return bks_fail(e, r, "%s closed the connection: %.*s", c->peer,
			                (int)m->u.error.text.len, m->u.error.text.p);
		}
		return bks_fail(e, -EPROTO, "%s sent %s with tag %u during request %u", c->peer,
		                wire_type_name(h->type), h->tag, c->tag);
	}
}

int ncl_unexpected(ncl *c, const wire_hdr *h, const char *want, bks_err *e)
{
	ncl_kill(c);
	return bks_fail(e, -EPROTO, "%s answered with %s where %s was expected", c->peer,
	                wire_type_name(h->type), want);
}

void ncl_next_tag(ncl *c)
{
	if (++c->tag == 0)
		c->tag = 1;
}

int ncl_send_request(ncl *c, const uint8_t *buf, int n, bks_err *e)
{
	if (c->dead)
		return bks_fail(e, -ENOTCONN, "the connection to %s is closed", c->peer);
	if (n < 0)
		return bks_fail(e, n, "cannot encode the request: %s", strerror(-n));
	return send_buf(c, buf, (size_t)n, e);
}

/* --- connecting --- */

static int hex_secret(const char *hex, uint8_t *out, size_t cap, size_t *len)
{
	size_t n = strlen(hex);
	if (n % 2 || n / 2 > cap)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		int ch = hex[i], v = ch >= '0' && ch <= '9' ? ch - '0'
		                   : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
		                   : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
		if (v < 0)
			return -EINVAL;
		out[i / 2] = (uint8_t)(i % 2 ? out[i / 2] | v : v << 4);
	}
	*len = n / 2;
	return 0;
}

static int tcp_connect(ncl *c, const ncl_opts *o, bks_err *e)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV}, *res;
	char port[8];
	snprintf(port, sizeof(port), "%u", o->port);
	snprintf(c->peer, sizeof(c->peer), strchr(o->host, ':') ? "[%s]:%u" : "%s:%u", o->host,
	         o->port);
	int g = getaddrinfo(o->host, port, &hints, &res);
	if (g != 0)
		return bks_fail(e, -EHOSTUNREACH, "cannot connect to %s: %s", c->peer,
		                g == EAI_SYSTEM ? strerror(errno) : gai_strerror(g));
	int r = -ECONNREFUSED;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			r = -errno;
			continue;
		}
		c->fd = fd;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			r = 0;
		else if (errno != EINPROGRESS)
			r = -errno;
		else if ((r = wait_fd(c, POLLOUT)) == 0) {
			int err = 0;
			socklen_t sl = sizeof(err);
			if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &sl) < 0)
				err = errno;
			r = -err;
		}
		if (r == 0)
			break;
		close(fd);
		c->fd = -1;
	}
	freeaddrinfo(res);
	if (r == -ECONNREFUSED)
		return bks_fail(e, r, "cannot connect to %s: %s — is bkstord running?", c->peer,
		                strerror(-r));
	if (r == -ETIMEDOUT)
		return bks_fail(e, r, "cannot connect to %s: no answer within %d s", c->peer,
		                c->timeout_ms / 1000);
	if (r < 0)
		return bks_fail(e, r, "cannot connect to %s: %s", c->peer, strerror(-r));
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return 0;
}

/* HELLO, AUTH, AUTH_OK; the server's MAC proves it knows our secret too. */
static int handshake(ncl *c, const ncl_opts *o, const uint8_t *secret, size_t slen,
                     bks_err *e)
{
	const char *conf = o->conf && *o->conf ? o->conf : "the client configuration";
	uint8_t buf[WIRE_CTRL_MAX];
	auth_transcript t = {.name = o->name, .name_len = strlen(o->name)};
	wire_auth a = {.version = WIRE_VERSION, .max_payload = NCL_MAX_PAYLOAD,
	               .name = wire_s(o->name)};
	bks_err ae = {0};
	wire_hdr h;
	wire_msg m;
	int r = read_frame(c, &h, &m, e);
	if (r < 0)
		return r;
	if (h.type == WIRE_ERROR) {
		ncl_kill(c);
		return bks_fail(e, wire_code_to_errno(m.u.error.code), "%s refused the connection: %.*s",
		                c->peer, (int)m.u.error.text.len, m.u.error.text.p);
	}
	if (h.type != WIRE_HELLO)
		return ncl_unexpected(c, &h, "HELLO", e);
	wire_str_copy(m.u.hello.name, c->srv_name, sizeof(c->srv_name));
	memcpy(t.server_nonce, m.u.hello.nonce, AUTH_NONCE_LEN);
	if (auth_nonce(t.client_nonce) < 0 || auth_client_mac(secret, slen, &t, a.mac) < 0)
		return ncl_fail(c, e, -EIO, "authenticating to");
	memcpy(a.nonce, t.client_nonce, AUTH_NONCE_LEN);
	int n = wire_auth_encode(buf, sizeof(buf), 0, &a);
	if ((r = ncl_send_request(c, buf, n, e)) < 0)
		return r;
	if ((r = read_frame(c, &h, &m, e)) < 0)
		return r;
	if (h.type == WIRE_ERROR) {
		ncl_kill(c);
		r = wire_code_to_errno(m.u.error.code);
		if (r == -EACCES && wire_str_eq(m.u.error.text, "authentication failed"))
			return bks_fail(e, r, "authentication failed: check the client name and secret "
			                "in %s", conf);
		return bks_fail(e, r, "%s refused the login: %.*s", c->peer,
		                (int)m.u.error.text.len, m.u.error.text.p);
	}
	if (h.type != WIRE_AUTH_OK)
		return ncl_unexpected(c, &h, "AUTH_OK", e);
	if (auth_verify_server(secret, slen, &t, m.u.auth_ok.mac, &ae) < 0) {
		ncl_kill(c);
		return bks_fail(e, -EACCES, "%s did not prove it knows the secret in %s: not the "
		                "bkstord this client is configured for", c->peer, conf);
	}
	c->srv = m.u.auth_ok;
	return 0;
}

int ncl_connect(const ncl_opts *o, ncl **out, bks_err *e)
{
	uint8_t secret[AUTH_SECRET_MAX];
	size_t slen = 0;
	const char *conf = o->conf && *o->conf ? o->conf : "the client configuration";
	int r;

	*out = NULL;
	if (!o->name || !*o->name || !o->secret_hex || !*o->secret_hex)
		return bks_fail(e, -EINVAL, "no client name and secret in %s", conf);
	if ((r = wire_name_check(o->name, strlen(o->name), e)) < 0)
		return r;
	if (hex_secret(o->secret_hex, secret, sizeof(secret), &slen) < 0 ||
	    auth_secret_check(secret, slen, NULL) < 0) {
		OPENSSL_cleanse(secret, sizeof(secret));
		return bks_fail(e, -EINVAL, "the secret in %s is not %d..%d bytes of hex", conf,
		                AUTH_SECRET_MIN, AUTH_SECRET_MAX);
	}
	ncl *c = calloc(1, sizeof(*c));
	if (!c || !(c->rbuf = malloc(RBUF_INIT))) {
		free(c);
		OPENSSL_cleanse(secret, sizeof(secret));
		return bks_fail(e, -ENOMEM, "out of memory");
	}
	c->rcap = RBUF_INIT;
	c->fd = -1;
	c->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : NCL_TIMEOUT_MS_DEFAULT;
	r = tcp_connect(c, o, e);
	if (r == 0)
		r = handshake(c, o, secret, slen, e);
	OPENSSL_cleanse(secret, sizeof(secret));
	if (r < 0) {
		ncl_close(c);
		return r;
	}
	*out = c;
	return 0;
}

void ncl_close(ncl *c)
{
	if (!c)
		return;
	if (c->fd >= 0)
		close(c->fd);
	free(c->rbuf);
	free(c);
}

const wire_auth_ok *ncl_server(const ncl *c) { return &c->srv; }
const char *ncl_server_name(const ncl *c) { return c->srv_name; }
const char *ncl_peer(const ncl *c) { return c->peer; }

void ncl_counters(const ncl *c, uint64_t *tx, uint64_t *rx)
{
	*tx = c->tx;
	*rx = c->rx;
}

/* --- GET --- */

static int write_all(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t k = write(fd, p, n);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

/* Writeback of a regular file we write into starts every GET_FLUSH bytes, on the
 * range just written (SYNC_FILE_RANGE_WRITE: starts it, waits for nothing), so the
 * disk writes while the rest arrives. Before, every byte stayed dirty until the
 * caller's fsync: 0.27-0.34 s of a 1.1 s restore of 636 MB into a file here was
 * that fsync writing all of it at the end with the network idle. Only a hint:
 * durability is still the caller's fsync, and a failure here is ignored (fsync
 * reports a write error). */
#define GET_FLUSH (8u << 20)

struct get_flush {
	int on;
	off_t start;                   /* where the range not yet started begins */
	uint64_t pending;              /* bytes written since */
};

static void get_flush_init(struct get_flush *f, int fd)
{
	struct stat st;
	f->on = 0;
	f->start = 0;
	f->pending = 0;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return;
	if ((f->start = lseek(fd, 0, SEEK_CUR)) < 0)
		return;
	f->on = 1;
}

static void get_flush_wrote(struct get_flush *f, int fd, size_t n)
{
	if (!f->on)
		return;
	f->pending += n;
	if (f->pending < GET_FLUSH)
		return;
	if (sync_file_range(fd, f->start, (off_t)f->pending, SYNC_FILE_RANGE_WRITE) < 0)
		f->on = 0; /* (not supported here: the fsync does it all) */
	f->start += (off_t)f->pending;
	f->pending = 0;
}

int ncl_get(ncl *c, const char *path, uint64_t offset, uint64_t length, int fd,
            ncl_progress_fn progress, void *ctx, ncl_get_result *res, bks_err *e)
{
	struct get_flush fl;
	uint8_t buf[WIRE_CTRL_MAX], dig[WIRE_DIGEST_LEN];
	wire_get g = {.offset = offset, .length = length, .path = wire_s(path)};
	wire_hdr h;
	wire_msg m;
	int r;
	memset(res, 0, sizeof(*res));
	if ((r = wire_path_check(path, strlen(path), e)) < 0)
		return r;
	ncl_next_tag(c);
	int n = wire_get_encode(buf, sizeof(buf), c->tag, &g);
	if ((r = ncl_send_request(c, buf, n, e)) < 0 || (r = ncl_read_reply(c, &h, &m, e)) < 0)
		return r;
	if (h.type != WIRE_GET_OK)
		return ncl_unexpected(c, &h, "GET_OK", e);
	res->size = m.u.get_ok.size;
	res->id = m.u.get_ok.id;
	uint64_t want = m.u.get_ok.length, got = 0;
	wire_digest *sha = wire_digest_new();
	if (!sha) {
		wire_digest_free(sha);
		return ncl_fail(c, e, -ENOMEM, "getting from");
	}
	get_flush_init(&fl, fd);
	for (;;) {
		if ((r = ncl_read_reply(c, &h, &m, e)) < 0)
			break;
		if (h.type == WIRE_END)
			break;
		if (h.type != WIRE_DATA) {
			r = ncl_unexpected(c, &h, "DATA or END", e);
			break;
		}
		if (m.u.bytes.len > want - got) {
			ncl_kill(c);
			r = bks_fail(e, -EPROTO, "%s sent more than the %llu bytes it announced",
			             c->peer, (unsigned long long)want);
			break;
		}
		if ((r = write_all(fd, m.u.bytes.p, m.u.bytes.len)) < 0) {
			ncl_kill(c); /* no abort for a GET: the connection has to go */
			r = bks_fail(e, r, "writing the copy: %s", strerror(-r));
			break;
		}
		get_flush_wrote(&fl, fd, m.u.bytes.len);
		wire_digest_update(sha, m.u.bytes.p, m.u.bytes.len);
		got += m.u.bytes.len;
		if (progress)
			progress(ctx, got, want);
	}
	wire_digest_final(sha, dig);
	wire_digest_free(sha);
	res->length = got;
	if (r < 0)
		return r;
	if (m.u.end.count != got || got != want)
		return bks_fail(e, -EBADMSG, "get %s: %llu bytes arrived, the server announced %llu "
		                "and counted %llu", path, (unsigned long long)got,
		                (unsigned long long)want, (unsigned long long)m.u.end.count);
	if (memcmp(dig, m.u.end.digest, sizeof(dig)))
		return bks_fail(e, -EBADMSG, "get %s: the digest of the bytes that arrived differs "
		                "from the server's", path);
	return 0;
}

/* --- the small requests --- */

/* Send the frame, read the one reply, check its type. */
static int simple(ncl *c, uint8_t *buf, int n, uint8_t want, wire_hdr *h, wire_msg *m,
                  bks_err *e)
{
	int r = ncl_send_request(c, buf, n, e);
	if (r == 0)
		r = ncl_read_reply(c, h, m, e);
	if (r == 0 && h->type != want)
		r = ncl_unexpected(c, h, wire_type_name(want), e);
	return r;
}

static int path_req(ncl *c, uint8_t type, uint32_t flags, uint32_t mode, const char *path,
                    uint8_t want, wire_hdr *h, wire_msg *m, bks_err *e)
{
	uint8_t buf[WIRE_CTRL_MAX];
	wire_pathreq q = {.flags = flags, .mode = mode, .path = wire_s(path)};
	int r = wire_path_check(path, strlen(path), e);
	if (r < 0)
		return r;
	ncl_next_tag(c);
	int n = wire_pathreq_encode(buf, sizeof(buf), type, c->tag, &q);
	if (want == 0) /* LIST: the caller reads the replies */
		return ncl_send_request(c, buf, n, e);
	return simple(c, buf, n, want, h, m, e);
}

int ncl_stat(ncl *c, const char *path, wire_attr *out, bks_err *e)
{
	wire_hdr h;
	wire_msg m;
	int r = path_req(c, WIRE_STAT, 0, 0, path, WIRE_STAT_OK, &h, &m, e);
	if (r == 0)
		*out = m.u.attr;
	return r;
}

int ncl_list(ncl *c, const char *path, ncl_list_fn fn, void *ctx, uint64_t *count,
             bks_err *e)
{
	uint64_t n = 0;
	int stop = 0;
	wire_hdr h;
	wire_msg m;
	int r = path_req(c, WIRE_LIST, 0, 0, path, 0, &h, &m, e);
	while (r == 0 && (r = ncl_read_reply(c, &h, &m, e)) == 0 && h.type != WIRE_LIST_END) {
		if (h.type != WIRE_LIST_ITEMS) {
			r = ncl_unexpected(c, &h, "LIST_ITEMS or LIST_END", e);
			break;
		}
		size_t pos = 0;
		wire_entry we;
		while (wire_items_next(&m.u.items, &pos, &we) == 1) {
			ncl_entry ent = {.type = we.type, .mode = we.mode, .size = we.size, .id = we.id,
			                 .mtime_ns = we.mtime_ns};
			wire_str_copy(we.name, ent.name, sizeof(ent.name));
			n++;
			if (!stop)
				stop = fn(ctx, &ent);
		}
	}
	if (count)
		*count = n;
	if (r == 0 && m.u.list_end.v != n) {
		ncl_kill(c);
		return bks_fail(e, -EPROTO, "%s listed %llu entries and counted %llu", c->peer,
		                (unsigned long long)n, (unsigned long long)m.u.list_end.v);
	}
	return r < 0 ? r : stop;
}

int ncl_mkdir(ncl *c, const char *path, uint32_t mode, int parents, bks_err *e)
{
	wire_hdr h;
	wire_msg m;
	return path_req(c, WIRE_MKDIR, parents ? WIRE_MKDIR_PARENTS : 0, mode & WIRE_MODE_MASK,
	                path, WIRE_OK, &h, &m, e);
}

int ncl_delete(ncl *c, const char *path, int recursive, bks_err *e)
{
	wire_hdr h;
	wire_msg m;
	return path_req(c, WIRE_DELETE, recursive ? WIRE_DELETE_RECURSIVE : 0, 0, path, WIRE_OK,
	                &h, &m, e);
}

int ncl_rename(ncl *c, const char *from, const char *to, int noreplace, bks_err *e)
{
	uint8_t buf[WIRE_CTRL_MAX];
	wire_rename q = {.flags = noreplace ? WIRE_RENAME_NOREPLACE : 0, .from = wire_s(from),
	                 .to = wire_s(to)};
	wire_hdr h;
	wire_msg m;
	int r;
	if ((r = wire_path_check(from, strlen(from), e)) < 0 ||
	    (r = wire_path_check(to, strlen(to), e)) < 0)
		return r;
	ncl_next_tag(c);
	int n = wire_rename_encode(buf, sizeof(buf), c->tag, &q);
	return simple(c, buf, n, WIRE_OK, &h, &m, e);
}

int ncl_status(ncl *c, char **json, size_t *len, bks_err *e)
{
	uint8_t buf[WIRE_HDR_LEN];
	wire_hdr h;
	wire_msg m;
	*json = NULL;
	ncl_next_tag(c);
	int r = simple(c, buf, wire_empty_encode(buf, sizeof(buf), WIRE_STATUS, c->tag),
	               WIRE_STATUS_OK, &h, &m, e);
	if (r < 0)
		return r;
	if (!(*json = malloc((size_t)m.u.status.text.len + 1)))
		return bks_fail(e, -ENOMEM, "out of memory");
	memcpy(*json, m.u.status.text.p, m.u.status.text.len);
	(*json)[m.u.status.text.len] = 0;
	*len = m.u.status.text.len;
	return 0;
}

int ncl_ping(ncl *c, uint64_t *rtt_ns, bks_err *e)
{
	uint8_t buf[WIRE_CTRL_MAX];
	uint64_t cookie = bks_now_ns(), t0 = cookie;
	wire_hdr h;
	wire_msg m;
	ncl_next_tag(c);
	int r = simple(c, buf, wire_u64_encode(buf, sizeof(buf), WIRE_PING, c->tag, cookie),
	               WIRE_PONG, &h, &m, e);
	if (r == 0 && m.u.ping.v != cookie) {
		ncl_kill(c);
		return bks_fail(e, -EPROTO, "%s answered PING with another cookie", c->peer);
	}
	if (rtt_ns)
		*rtt_ns = bks_now_ns() - t0;
	return r;
}
