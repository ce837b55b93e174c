/* daemon/netio.h: bytes on a non-blocking socket, every wait bounded by a deadline
 * (bks_now_ns) and by the server's stop flag. The servers (native, NFS, iSCSI) keep
 * their own framing; this is the one place that loops on EINTR/EAGAIN and polls.
 *
 * Deadlines are totals for the bytes asked for, not restarted by each byte that
 * arrives: a peer dripping a byte a second cannot hold a connection past them. */
#ifndef BKS_NETIO_H
#define BKS_NETIO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

typedef struct netio {
	int fd;                        /* non-blocking */
	const volatile int *stopping;  /* the server's stop flag (-ECANCELED when set) */
	uint64_t idle_ms;              /* receiving: at most this without a byte (0: none) */
	uint64_t *rx;                  /* bytes received are added here (NULL: not counted) */
} netio;

/* Wait until fd is ready for ev (POLLIN/POLLOUT) or deadline, and with idle also at
 * most io->idle_ms: 1 ready, -ETIMEDOUT, -ECANCELED, -errno. */
int netio_wait(const netio *io, short ev, uint64_t deadline, int idle);
/* Receive exactly n bytes: 0, -ECONNRESET when the peer closed, -ETIMEDOUT, -ECANCELED,
 * -errno. */
int netio_recv(const netio *io, void *buf, size_t n, uint64_t deadline);
/* Send n bytes (a peer that stops reading fills our buffer; we wait until the
 * deadline, never in a blocking send). */
int netio_send(const netio *io, const void *buf, size_t n, uint64_t deadline);
/* Send the pieces (iov is consumed: its entries are advanced past what went out). */
int netio_sendv(const netio *io, struct iovec *iov, int n, uint64_t deadline);

#endif /* BKS_NETIO_H */
