/* daemon/native.c: see native.h. Requests are in native_ops.c. */
#include <config.h>

#include "daemon/native_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/endian.h"
#include "daemon/log.h"
#include "daemon/netio.h"
#include "proto/auth.h"

/* --- frame I/O --- */

/* The connection's socket for daemon/netio.c: reads count into c->rx and may idle
 * idle_timeout between two bytes. */
static netio conn_io(conn *c)
{
	return (netio){.fd = c->fd, .stopping = &c->srv->stopping, .idle_ms = c->srv->idle_ms,
	               .rx = &c->rx};
}

/* Read exactly n bytes by deadline, and within idle_timeout of the previous byte. */
static int read_full(conn *c, void *buf, size_t n, uint64_t deadline)
{
	if (c->dead)
		return -ECONNRESET;
	netio io = conn_io(c);
	return netio_recv(&io, buf, n, deadline);
}

/* The socket is non-blocking: a peer that stops reading fills its receive window and
 * our send buffer, then we wait, until the frame's deadline. (With a blocking socket
 * the thread stayed in send() forever, holding its connection slot: one stuck GET per
 * thread, never reclaimed.) */
static int send_all(conn *c, const void *buf, size_t n, uint64_t deadline)
{
	netio io = conn_io(c);
	return netio_send(&io, buf, n, deadline);
}

/* Header + payload as two pieces (bulk bytes are not copied into a frame), one
 * deadline for both. */
int conn_send2(conn *c, const void *h, size_t hn, const void *p, size_t pn)
{
	native_srv *s = c->srv;
	uint64_t deadline = bks_now_ns() + s->send_ms * 1000000ull;
	if (!c->authed)
		deadline = BKS_MIN(deadline, c->auth_deadline);
	if (c->dead)
		return -ECONNRESET;
	int r = send_all(c, h, hn, deadline);
	if (r == 0 && pn)
		r = send_all(c, p, pn, deadline);
	if (r < 0) {
		c->dead = 1;
		if (r == -ETIMEDOUT)
			LOG_W("client %s (%s): not reading what it asked for: dropped after "
			      "send_timeout (%llu s)", c->peer, c->client[0] ? c->client : "not logged in",
			      (unsigned long long)(s->send_ms / 1000));
	}
	return r;
}

int conn_sendv(conn *c, struct iovec *iov, int n)
{
	native_srv *s = c->srv;
	uint64_t deadline = bks_now_ns() + s->send_ms * 1000000ull;
	int r = 0;
	if (!c->authed)
		deadline = BKS_MIN(deadline, c->auth_deadline);
	if (c->dead)
		return -ECONNRESET;
	netio io = conn_io(c);
	r = netio_sendv(&io, iov, n, deadline);
	if (r < 0) {
		c->dead = 1;
		if (r == -ETIMEDOUT)
			LOG_W("client %s (%s): not reading what it asked for: dropped after "
			      "send_timeout (%llu s)", c->peer, c->client[0] ? c->client : "not logged in",
			      (unsigned long long)(s->send_ms / 1000));
	}
	return r;
}

int conn_send(conn *c, const void *buf, size_t n)
{
	return conn_send2(c, buf, n, NULL, 0);
}

int conn_error(conn *c, uint32_t tag, int err, const char *fmt, ...)
{
	char text[WIRE_TEXT_MAX + 1];
	uint8_t buf[WIRE_CTRL_MAX];
	va_list va;
	va_start(va, fmt);
	vsnprintf(text, sizeof(text), fmt, va);
	va_end(va);
	int n = wire_error_encodef(buf, sizeof(buf), tag, err, "%s", text);
	return n > 0 ? conn_send(c, buf, (size_t)n) : n;
}

/* Read one frame into c->buf (grown up to max_frame as needed) and decode it.
 * Logged in: wait up to idle_timeout for its first byte, then the whole frame must
 * arrive within frame_timeout. Before login: everything by the connection's
 * auth_deadline, and only an AUTH of control-frame size is read at all: the header is
 * checked before a byte of payload is read or a byte of buffer allocated, so an
 * unauthenticated peer costs at most WIRE_CTRL_MAX (the buffer every connection has). */
int conn_read_frame(conn *c, wire_hdr *h, wire_msg *m)
{
	native_srv *s = c->srv;
	char esc[LOG_ESC_LEN];
	bks_err e = {0};
	uint64_t deadline = c->authed ? bks_now_ns() + s->idle_ms * 1000000ull : c->auth_deadline;
	int r = read_full(c, c->buf, 1, deadline);
	if (r < 0)
		return r;
	if (c->authed)
		deadline = bks_now_ns() + s->frame_ms * 1000000ull;
	if ((r = read_full(c, c->buf + 1, WIRE_HDR_LEN - 1, deadline)) < 0)
		return r;
	r = wire_hdr_decode(c->buf, WIRE_HDR_LEN,
	                    c->authed ? s->max_frame : WIRE_CTRL_MAX - WIRE_HDR_LEN, h, &e);
	/* Before login the type is what matters (a DATA is wrong at any size); a bad magic
	 * or version keeps the decoder's own message. */
	if (!c->authed && (r == 0 || r == -EMSGSIZE) && c->buf[4] != WIRE_AUTH)
		r = bks_fail(&e, -EACCES, "%s frame (%u bytes) before login: only AUTH is "
		             "accepted until then", wire_type_name(c->buf[4]), le_get32(c->buf + 12));
	if (r < 0) {
		LOG_I("client %s: %s", c->peer, log_escs(esc, sizeof(esc), bks_errmsg(&e, r)));
		conn_error(c, 0, r, "%s", bks_errmsg(&e, r));
		return r == -EACCES ? -EACCES : -EPROTO;
	}
	if (WIRE_HDR_LEN + (size_t)h->len > c->cap) {
		uint8_t *nb = realloc(c->buf, WIRE_HDR_LEN + (size_t)h->len);
		if (!nb)
			return -ENOMEM;
		c->buf = nb;
		c->cap = WIRE_HDR_LEN + (size_t)h->len;
	}
	if ((r = read_full(c, c->buf + WIRE_HDR_LEN, h->len, deadline)) < 0)
		return r;
	r = wire_msg_decode(h->type, c->buf + WIRE_HDR_LEN, h->len, m, &e);
	if (r < 0) {
		LOG_I("client %s: %s", c->peer, log_escs(esc, sizeof(esc), bks_errmsg(&e, r)));
		conn_error(c, h->tag, r, "%s", bks_errmsg(&e, r));
		return -EPROTO;
	}
	if (!(wire_type_dir(h->type) & WIRE_DIR_C2S)) {
		conn_error(c, h->tag, -EPROTO, "%s is not a message a client sends",
		           wire_type_name(h->type));
		return -EPROTO;
	}
	return 0;
}

/* Per-connection rate limit: sleep so that rx stays under rate_limit bytes/s. */
void conn_pace(conn *c, uint64_t bytes)
{
	uint64_t rate = __atomic_load_n(&c->srv->rate_limit, __ATOMIC_RELAXED);
	if (!rate)
		return;
	c->pace_ns += bytes * 1000000000ull / rate;
	uint64_t now = bks_now_ns();
	if (c->pace_ns < now)
		c->pace_ns = now;
	else if (c->pace_ns > now + 1000000ull) {
		uint64_t d = c->pace_ns - now;
		struct timespec ts = {(time_t)(d / 1000000000ull), (long)(d % 1000000000ull)};
		nanosleep(&ts, NULL);
	}
}

/* --- authentication --- */

static int hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

int native_secret_decode(const char *hex, uint8_t *out, size_t cap, size_t *len)
{
	size_t n = strlen(hex);
	if (n % 2 || n / 2 > cap)
		return -EINVAL;
	for (size_t i = 0; i < n / 2; i++) {
		int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -EINVAL;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	*len = n / 2;
	return 0;
}

/* Failed logins per source address in a one-minute window opened by the first
 * failure (a fixed clock minute would let a burst straddling its boundary have twice
 * the limit); a small table, under s->mu. Returns the address's slot (made when
 * create), or NULL. */
#define AUTH_WINDOW_NS 60000000000ull
static struct fail_slot *fail_slot_locked(native_srv *s, const char *ip, int create)
{
	uint64_t now = bks_now_ns();
	struct fail_slot *slot = NULL, *oldest = &s->fails[0];
	for (int i = 0; i < FAIL_SLOTS; i++) {
		if (s->fails[i].ip[0] && now - s->fails[i].since >= AUTH_WINDOW_NS)
			s->fails[i].ip[0] = 0; /* its window is over */
		if (s->fails[i].ip[0] && !strcmp(s->fails[i].ip, ip))
			slot = &s->fails[i];
		if (!s->fails[i].ip[0] ||
		    (oldest->ip[0] && s->fails[i].since < oldest->since))
			oldest = &s->fails[i];
	}
	if (!slot && create) {
		slot = oldest;
		snprintf(slot->ip, sizeof(slot->ip), "%s", ip);
		slot->count = 0;
		slot->since = now;
	}
	return slot;
}

static int auth_blocked(native_srv *s, const char *ip)
{
	pthread_mutex_lock(&s->mu);
	struct fail_slot *f = fail_slot_locked(s, ip, 0);
	int blocked = f && f->count >= s->auth_fail_limit;
	pthread_mutex_unlock(&s->mu);
	return blocked;
}

static int authenticate(conn *c)
{
	native_srv *s = c->srv;
	uint8_t buf[WIRE_CTRL_MAX];
	wire_hello hello = {.version = WIRE_VERSION, .name = wire_s("bkstord")};
	auth_transcript t = {0};
	wire_hdr h;
	wire_msg m;
	bks_err e = {0};

	if (auth_blocked(s, c->ip)) {
		LOG_W("client %s: refused (too many failed logins this minute)", c->peer);
		conn_error(c, 0, -EACCES, "too many failed logins; try again in a minute");
		return -EACCES;
	}
	if (auth_nonce(hello.nonce) < 0)
		return -EIO;
	memcpy(t.server_nonce, hello.nonce, AUTH_NONCE_LEN);
	int n = wire_hello_encode(buf, sizeof(buf), 0, &hello);
	if (n < 0 || conn_send(c, buf, (size_t)n) < 0)
		return -EIO;
	int r = conn_read_frame(c, &h, &m);
	if (r < 0)
		return r;
	if (h.type != WIRE_AUTH) {
		conn_error(c, h.tag, -EACCES, "authenticate first (AUTH), not %s",
		           wire_type_name(h.type));
		return -EACCES;
	}
	wire_auth *a = &m.u.auth;
	memcpy(t.client_nonce, a->nonce, AUTH_NONCE_LEN);
	t.name = a->name.p;
	t.name_len = a->name.len;
	/* The limit check, the MAC check (an HMAC of a hundred bytes: microseconds) and
	 * the count of a failure happen under one lock, so parallel connections from
	 * one address cannot all pass the check before any failure is counted, and
	 * parallel correct logins never count against the limit. The secret is the
	 * named client's as the table is now (a reload may swap it). */
	uint8_t secret[AUTH_SECRET_MAX];
	size_t slen = 0;
	int found = 0, blocked;
	r = -EACCES;
	pthread_mutex_lock(&s->mu);
	struct fail_slot *f = fail_slot_locked(s, c->ip, 0);
	blocked = f && f->count >= s->auth_fail_limit;
	if (!blocked) {
		for (int i = 0; i < s->nclients && !found; i++)
			if (wire_str_eq(a->name, s->clients[i].name) &&
			    native_secret_decode(s->clients[i].secret, secret, sizeof(secret),
			                         &slen) == 0)
				found = 1;
		r = auth_verify_client(found ? secret : NULL, found ? slen : 0, &t, a->mac, &e);
		if (r < 0 && (f = fail_slot_locked(s, c->ip, 1)) != NULL)
			f->count++;
	}
	int now_blocked = f && f->count >= s->auth_fail_limit;
	pthread_mutex_unlock(&s->mu);
	if (blocked) {
		LOG_W("client %s: refused (too many failed logins this minute)", c->peer);
		conn_error(c, h.tag, -EACCES, "too many failed logins; try again in a minute");
		return -EACCES;
	}
	if (r < 0) {
		char esc[LOG_ESC_LEN], esc2[LOG_ESC_LEN]; /* the reason quotes the name too */
		LOG_W("client %s: login as '%s' refused: %s%s", c->peer,
		      log_esc(esc, sizeof(esc), a->name.p, a->name.len),
		      log_escs(esc2, sizeof(esc2), bks_errmsg(&e, r)),
		      now_blocked ? " (address now blocked for a minute)" : "");
		conn_error(c, h.tag, -EACCES, "authentication failed");
		return -EACCES;
	}
	/* Logged in: from now on the connection no longer counts as unauthenticated (and
	 * can no longer be evicted to make room for a new one), unless it already was. */
	pthread_mutex_lock(&s->mu);
	int evicted = c->evicted;
	if (!evicted) {
		c->authed = 1;
		if (c->unauth) {
			c->unauth = 0;
			s->nunauth--;
		}
	}
	pthread_mutex_unlock(&s->mu);
	if (evicted)
		return -ECONNRESET;
	/* The name matched a configured one, which config.c allows only in [A-Za-z0-9._-]. */
	snprintf(c->client, sizeof(c->client), "%.*s", (int)a->name.len, a->name.p);
	c->peer_max = a->max_payload;
	/* Source dedup needs a chunk and a full FP_LIST to fit one frame. */
	uint32_t fp_max = BKS_MIN((uint32_t)WIRE_FP_MAX, (s->max_frame - 4) / WIRE_FP_ENTRY_LEN);
	wire_auth_ok ok = {.caps = s->cdc_max <= s->max_frame
	                               ? WIRE_CAP_SRC_DEDUP | WIRE_CAP_FP_DIGEST : 0,
	                   .max_payload = s->max_frame, .cdc_min = s->cdc_min,
	                   .cdc_avg = s->cdc_avg, .cdc_max = s->cdc_max, .fp_max = fp_max};
	if (auth_server_mac(secret, slen, &t, ok.mac) < 0)
		return -EIO;
	n = wire_auth_ok_encode(buf, sizeof(buf), h.tag, &ok);
	if (n < 0 || conn_send(c, buf, (size_t)n) < 0)
		return -EIO;
	LOG_D("client %s: logged in as %s", c->peer, c->client);
	return 0;
}

/* --- connections --- */

static void conn_unlink(conn *c)
{
	native_srv *s = c->srv;
	pthread_mutex_lock(&s->mu);
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	s->nconns--;
	if (c->unauth)
		s->nunauth--;
	if (c->evicted)
		s->nevicting--;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	__atomic_fetch_sub(&s->ap->connections, 1, __ATOMIC_RELAXED);
}

static void *conn_main(void *arg)
{
	conn *c = arg;
	int r = authenticate(c);
	while (r == 0)
		r = conn_serve_one(c);
	if (r == -ETIMEDOUT && !c->authed && !c->dead)
		LOG_I("client %s: no login within auth_timeout (%llu s): closed", c->peer,
		      (unsigned long long)(c->srv->auth_ms / 1000));
	else if (r != -ECONNRESET && r != -EPROTO && r != -ECANCELED && r != -EACCES &&
	         !(r == -ETIMEDOUT && c->dead))
		LOG_I("client %s (%s): connection closed: %s", c->peer,
		      c->client[0] ? c->client : "not logged in", strerror(-r));
	if (c->dead) {
		/* A reply cut off mid-frame: reset, so the kernel drops what it still holds for
		 * a peer that does not read, instead of keeping it until the orphan timeout. */
		struct linger lg = {.l_onoff = 1, .l_linger = 0};
		setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	conn_unlink(c);
	close(c->fd);
	free(c->buf);
	free(c);
	return NULL;
}

/* Connections admit() dropped, for the log (written once s->mu is released). */
struct dropped {
	int n;
	struct {
		char peer[80];
		uint64_t ms;
		const char *why;
	} d[3];
};

/* Make room by dropping a connection that has not logged in (under s->mu): its thread
 * wakes from poll on the shut-down socket, sees the end and unlinks itself. */
static void evict(native_srv *s, conn *v, const char *why, struct dropped *out)
{
	v->unauth = 0;
	s->nunauth--;
	v->evicted = 1;
	s->nevicting++;
	shutdown(v->fd, SHUT_RDWR);
	if (out->n < 3) {
		snprintf(out->d[out->n].peer, sizeof(out->d[0].peer), "%s", v->peer);
		out->d[out->n].ms = (bks_now_ns() - v->born_ns) / 1000000;
		out->d[out->n++].why = why;
	}
}

/* The oldest connection not logged in, from ip if ip is set, and how many there are
 * (under s->mu). */
static conn *oldest_unauth(native_srv *s, const char *ip, int *count)
{
	conn *old = NULL;
	*count = 0;
	for (conn *c = s->conns; c; c = c->next) {
		if (!c->unauth || (ip && strcmp(c->ip, ip)))
			continue;
		(*count)++;
		if (!old || c->born_ns < old->born_ns)
			old = c;
	}
	return old;
}

/* Admission (under s->mu). A connection that has not logged in costs a thread and a
 * control-frame buffer until auth_timeout, so how many of those there are is capped,
 * per source address (max_unauth_per_ip) and in all (max_unauth). At a cap the *oldest*
 * such connection is dropped, not the new one, if it has been waiting longer than a
 * real client needs (UNAUTH_GRACE_MS, at most half of auth_timeout): a peer that holds
 * sockets open without logging in only ever loses its own oldest, and a real client
 * (which logs in within a round trip) still gets in however many sockets an attacker
 * holds. Younger ones are left alone (a burst of parallel connects from one backup
 * proxy may exceed a cap for a moment). max_connections bounds everything: when it is
 * reached, the oldest connection not logged in makes room whatever its age, and only
 * when every connection is logged in is the new one refused (EBUSY). */
#define UNAUTH_GRACE_MS 2000u

static int admit(native_srv *s, conn *nc, struct dropped *out)
{
	uint64_t grace = BKS_MIN((uint64_t)UNAUTH_GRACE_MS, s->auth_ms / 2) * 1000000ull;
	int n;
	conn *v;
	if (s->stopping)
		return 0;
	if ((v = oldest_unauth(s, nc->ip, &n)) && n >= (int)s->max_unauth_ip &&
	    nc->born_ns - v->born_ns >= grace)
		evict(s, v, "max_unauth_per_ip", out);
	if (s->nunauth >= (int)s->max_unauth && (v = oldest_unauth(s, NULL, &n)) &&
	    nc->born_ns - v->born_ns >= grace)
		evict(s, v, "max_unauth", out);
	if (s->nconns - s->nevicting >= (int)s->max_conns && (v = oldest_unauth(s, NULL, &n)))
		evict(s, v, "max_connections", out);
	if (s->nconns - s->nevicting >= (int)s->max_conns)
		return 0;
	nc->next = s->conns;
	if (s->conns)
		s->conns->prev = nc;
	s->conns = nc;
	s->nconns++;
	nc->unauth = 1;
	s->nunauth++;
	return 1;
}

static void accept_one(native_srv *s, int lfd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return;
	conn *c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return;
	}
	c->fd = fd;
	c->srv = s;
	c->cap = WIRE_CTRL_MAX;
	c->buf = malloc(c->cap);
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	char host[INET6_ADDRSTRLEN] = "?";
	int port = 0;
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;
		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		port = ntohs(in->sin_port);
	} else if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		port = ntohs(in6->sin6_port);
	}
	snprintf(c->ip, sizeof(c->ip), "%s", host);
	snprintf(c->peer, sizeof(c->peer), "%s:%d", host, port);
	pthread_mutex_lock(&s->mu);
	c->born_ns = bks_now_ns();
	c->auth_deadline = c->born_ns + s->auth_ms * 1000000ull;
	struct dropped dr = {0};
	int in = c->buf && admit(s, c, &dr);
	int nconns = s->nconns;
	pthread_mutex_unlock(&s->mu);
	for (int i = 0; i < dr.n; i++)
		LOG_I("client %s: dropped before login after %llu ms (%s) to let %s in",
		      dr.d[i].peer, (unsigned long long)dr.d[i].ms, dr.d[i].why, c->peer);
	if (!in) {
		LOG_W("client %s: refused: %d connections already (max_connections)", c->peer,
		      nconns);
		conn_error(c, 0, -EBUSY, "server busy: too many connections");
		close(fd);
		free(c->buf);
		free(c);
		return;
	}
	__atomic_fetch_add(&s->ap->connections, 1, __ATOMIC_RELAXED);
	pthread_t th;
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&at, 256 << 10);
	if (pthread_create(&th, &at, conn_main, c) != 0) {
		LOG_E("client %s: cannot start a thread", c->peer);
		conn_unlink(c);
		close(fd);
		free(c->buf);
		free(c);
	}
	pthread_attr_destroy(&at);
}

static void *accept_main(void *arg)
{
	native_srv *s = arg;
	struct pollfd pf[CFG_MAX_LISTEN + 1];
	for (;;) {
		int n = 0;
		for (int i = 0; i < s->nlisten; i++)
			pf[n++] = (struct pollfd){.fd = s->lfd[i], .events = POLLIN};
		pf[n++] = (struct pollfd){.fd = s->wake[0], .events = POLLIN};
		int r = poll(pf, (nfds_t)n, -1);
		if (s->stopping)
			break;
		if (r < 0)
			continue;
		for (int i = 0; i < s->nlisten; i++)
			if (pf[i].revents & POLLIN)
				accept_one(s, s->lfd[i]);
	}
	return NULL;
}

static int listen_on(const cfg_addr *ad, int *out, bks_err *e)
{
	struct sockaddr_storage ss = {0};
	socklen_t sl;
	int fam = ad->family == CFG_AF_INET6 ? AF_INET6 : AF_INET;
	if (fam == AF_INET6) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(ad->port);
		if (inet_pton(AF_INET6, ad->host, &in6->sin6_addr) != 1)
			return bks_fail(e, -EINVAL, "bad address %s", ad->host);
		sl = sizeof(*in6);
	} else {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;
		in->sin_family = AF_INET;
		in->sin_port = htons(ad->port);
		const char *h = ad->family == CFG_AF_LOCALHOST ? "127.0.0.1" : ad->host;
		if (inet_pton(AF_INET, h, &in->sin_addr) != 1)
			return bks_fail(e, -EINVAL, "bad address %s", h);
		sl = sizeof(*in);
	}
	int fd = socket(fam, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return bks_fail(e, -errno, "socket: %s", strerror(errno));
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 128) < 0) {
		int r = -errno;
		close(fd);
		return bks_fail(e, r, "cannot listen on %s:%u: %s", ad->host, ad->port,
		                strerror(-r));
	}
	*out = fd;
	return 0;
}

static void take_config(native_srv *s, const bks_cfg *cfg)
{
	s->max_frame = cfg->max_frame;
	s->max_conns = cfg->max_connections;
	s->idle_ms = (uint64_t)cfg->idle_timeout_s * 1000;
	s->auth_ms = (uint64_t)cfg->auth_timeout_s * 1000;
	s->frame_ms = (uint64_t)cfg->frame_timeout_s * 1000;
	s->send_ms = (uint64_t)cfg->send_timeout_s * 1000;
	s->max_unauth = cfg->max_unauth;
	s->max_unauth_ip = cfg->max_unauth_per_ip;
	s->auth_fail_limit = cfg->auth_fail_limit;
	__atomic_store_n(&s->rate_limit, cfg->rate_limit, __ATOMIC_RELAXED);
	/* The store's chunking, fixed when it was created (not the config's). */
	cdc_params cp;
	store_cdc_params(s->ap->s, &cp);
	s->cdc_min = cp.min;
	s->cdc_avg = cp.avg;
	s->cdc_max = cp.max;
}

int native_reload(native_srv *s, const bks_cfg *cfg, bks_err *e)
{
	cfg_client *cl = calloc((size_t)cfg->nclients + 1, sizeof(*cl));
	if (!cl)
		return bks_fail(e, -ENOMEM, "out of memory");
	for (int i = 0; i < cfg->nclients; i++) {
		cl[i].name = strdup(cfg->clients[i].name);
		cl[i].secret = strdup(cfg->clients[i].secret);
	}
	pthread_mutex_lock(&s->mu);
	cfg_client *old = s->clients;
	int nold = s->nclients;
	s->clients = cl;
	s->nclients = cfg->nclients;
	take_config(s, cfg);
	pthread_mutex_unlock(&s->mu);
	for (int i = 0; i < nold; i++) {
		free(old[i].name);
		free(old[i].secret);
	}
	free(old);
	return 0;
}

int native_start(appl *ap, native_srv **out, bks_err *e)
{
	native_srv *s = calloc(1, sizeof(*s));
	int r;
	if (!s)
		return bks_fail(e, -ENOMEM, "out of memory");
	s->ap = ap;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	s->wake[0] = s->wake[1] = -1;
	if ((r = native_reload(s, &ap->cfg, e)) < 0)
		goto fail;
	/* Restart keys (the store's level is fixed at open too). */
	s->zlevel = ap->cfg.zstd_level;
	s->zlevel_busy = BKS_MIN(ap->cfg.zstd_level_busy, ap->cfg.zstd_level);
	if (pipe2(s->wake, O_CLOEXEC) < 0) {
		r = bks_fail(e, -errno, "pipe: %s", strerror(errno));
		goto fail;
	}
	for (int i = 0; i < ap->cfg.nnative_listen; i++) {
		if ((r = listen_on(&ap->cfg.native_listen[i], &s->lfd[s->nlisten], e)) < 0)
			goto fail;
		s->nlisten++;
		LOG_I("native protocol on %s:%u", ap->cfg.native_listen[i].host,
		      ap->cfg.native_listen[i].port);
	}
	if (ap->cfg.nclients == 0)
		LOG_W("no [clients] in the configuration: the native listener accepts nobody");
	if (pthread_create(&s->th, NULL, accept_main, s) != 0) {
		r = bks_fail(e, -EAGAIN, "cannot start the accept thread");
		goto fail;
	}
	*out = s;
	return 0;
fail:
	for (int i = 0; i < s->nlisten; i++)
		close(s->lfd[i]);
	if (s->wake[0] >= 0) {
		close(s->wake[0]);
		close(s->wake[1]);
	}
	for (int i = 0; i < s->nclients; i++) {
		free(s->clients[i].name);
		free(s->clients[i].secret);
	}
	free(s->clients);
	free(s);
	return r;
}

void native_stop(native_srv *s)
{
	if (!s)
		return;
	s->stopping = 1;
	if (write(s->wake[1], "x", 1) < 0)
		LOG_W("cannot wake the accept thread");
	pthread_join(s->th, NULL);
	for (int i = 0; i < s->nlisten; i++)
		close(s->lfd[i]);
	/* Wake every connection thread (they see stopping) and wait for them. */
	pthread_mutex_lock(&s->mu);
	for (conn *c = s->conns; c; c = c->next)
		shutdown(c->fd, SHUT_RDWR);
	while (s->nconns > 0)
		pthread_cond_wait(&s->cv, &s->mu);
	pthread_mutex_unlock(&s->mu);
	close(s->wake[0]);
	close(s->wake[1]);
	for (int i = 0; i < s->nclients; i++) {
		free(s->clients[i].name);
		free(s->clients[i].secret);
	}
	free(s->clients);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	free(s);
}

int native_connections(native_srv *s)
{
	pthread_mutex_lock(&s->mu);
	int n = s->nconns;
	pthread_mutex_unlock(&s->mu);
	return n;
}

int native_port(native_srv *s)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	if (!s->nlisten || getsockname(s->lfd[0], (struct sockaddr *)&ss, &sl) < 0)
		return 0;
	return ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
	                                : ntohs(((struct sockaddr_in *)&ss)->sin_port);
}
