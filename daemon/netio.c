/* daemon/netio.c: see netio.h. */
#include <config.h>

#include "daemon/netio.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <sys/socket.h>

#include "common/bks.h"

/* Poll in slices of at most a second, so a stop is seen even when nobody shuts the
 * socket down. */
#define NETIO_SLICE_MS 1000u

int netio_wait(const netio *io, short ev, uint64_t deadline, int idle)
{
	uint64_t now = bks_now_ns();
	if (idle && io->idle_ms)
		deadline = BKS_MIN(deadline, now + io->idle_ms * 1000000ull);
	for (;;) {
		if (io->stopping && *io->stopping)
			return -ECANCELED;
		if (now >= deadline)
			return -ETIMEDOUT;
		uint64_t ms = BKS_MIN((deadline - now + 999999) / 1000000, (uint64_t)NETIO_SLICE_MS);
		struct pollfd pf = {.fd = io->fd, .events = ev};
		int pr = poll(&pf, 1, (int)ms);
		if (io->stopping && *io->stopping)
			return -ECANCELED;
		if (pr > 0)
			return 1;
		if (pr < 0 && errno != EINTR)
			return -errno;
		now = bks_now_ns();
	}
}

int netio_recv(const netio *io, void *buf, size_t n, uint64_t deadline)
{
	uint8_t *p = buf;
	while (n > 0) {
		ssize_t k = recv(io->fd, p, n, 0);
		if (k == 0)
			return -ECONNRESET;
		if (k < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				return -errno;
			int r = netio_wait(io, POLLIN, deadline, 1);
			if (r < 0)
				return r;
			continue;
		}
		p += k;
		n -= (size_t)k;
		if (io->rx)
			*io->rx += (uint64_t)k;
	}
	return 0;
}

int netio_send(const netio *io, const void *buf, size_t n, uint64_t deadline)
{
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = n};
	return netio_sendv(io, &iov, 1, deadline);
}

int netio_sendv(const netio *io, struct iovec *iov, int n, uint64_t deadline)
{
	while (n > 0 && iov->iov_len == 0)
		iov++, n--;
	while (n > 0) {
		struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)BKS_MIN(n, IOV_MAX)};
		ssize_t k = sendmsg(io->fd, &m, MSG_NOSIGNAL);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				return -errno;
			int r = netio_wait(io, POLLOUT, deadline, 0);
			if (r < 0)
				return r;
			continue;
		}
		/* Skip what went out; the first piece left may be partly sent. */
		while (n > 0 && (size_t)k >= iov->iov_len) {
			k -= (ssize_t)iov->iov_len;
			iov++, n--;
		}
		if (n > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + k;
			iov->iov_len -= (size_t)k;
		}
	}
	return 0;
}
