/* bench/nfscreate.c: the create-rate client of bench/nfs.sh.
 *
 *   nfscreate URL DIR N WINDOW
 *
 * Mounts the directory of URL (nfs://host/path?version=3&nfsport=..&mountport=..,
 * as libnfs parses it), makes DIR in it, then sends N NFSv3 CREATE calls (UNCHECKED,
 * mode 0644, names f000000..) on DIR's file handle, WINDOW of them outstanding on
 * the one connection, and prints "create_per_s: R" (N / the seconds from the first
 * call to the last reply). Every reply must be NFS3_OK or the run fails (exit 1).
 *
 * Why raw CREATE calls and not nfs_creat(): libnfs's path API resolves the path with
 * a LOOKUP per component before every CREATE and waits for each call, so half of
 * what it measures is lookups and client round trips. Here the client does no
 * more than encode a call and decode a reply (a few microseconds), so the figure is
 * the server's. WINDOW 1 is what a kernel client does in one directory (the VFS
 * serialises creates in a directory); a larger WINDOW shows what the server does
 * when it is handed work back to back.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nfsc/libnfs.h>
#include <nfsc/libnfs-raw.h>
#include <nfsc/libnfs-raw-nfs.h>

/* libnfs 4.0 hands out a directory's handle only as this (libnfs-private.h). */
struct nfs_fh {
	int len;
	char *val;
};

static int outstanding, done, failed, sent;
static char names[1000000][12];

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void created(struct rpc_context *rpc, int status, void *data, void *priv)
{
	CREATE3res *res = data;
	(void)rpc;
	(void)priv;
	outstanding--;
	done++;
	if (status != RPC_STATUS_SUCCESS || res->status != NFS3_OK) {
		if (failed++ < 5)
			fprintf(stderr, "nfscreate: CREATE failed: rpc %d nfs %d\n", status,
				status == RPC_STATUS_SUCCESS ? (int)res->status : -1);
	}
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: nfscreate URL DIR N WINDOW\n");
		return 2;
	}
	const char *dir = argv[2];
	int n = atoi(argv[3]), window = atoi(argv[4]);
	if (n <= 0 || n > (int)(sizeof(names) / sizeof(names[0])) || window <= 0) {
		fprintf(stderr, "nfscreate: bad N or WINDOW\n");
		return 2;
	}
	struct nfs_context *nfs = nfs_init_context();
	struct nfs_url *url = nfs ? nfs_parse_url_dir(nfs, argv[1]) : NULL;
	if (!url || nfs_mount(nfs, url->server, url->path) != 0) {
		fprintf(stderr, "nfscreate: mount %s: %s\n", argv[1], nfs ? nfs_get_error(nfs) : "no context");
		return 1;
	}
	char p[256];
	snprintf(p, sizeof(p), "/%s", dir);
	struct nfsfh *dfh;
	if (nfs_mkdir(nfs, p) != 0 || nfs_open(nfs, p, O_RDONLY, &dfh) != 0) {
		fprintf(stderr, "nfscreate: mkdir/open %s: %s\n", p, nfs_get_error(nfs));
		return 1;
	}
	struct nfs_fh *fh = nfs_get_fh(dfh);
	if (fh->len <= 0 || fh->len > 64) {
		fprintf(stderr, "nfscreate: odd directory handle length %d (libnfs ABI?)\n", fh->len);
		return 1;
	}
	struct rpc_context *rpc = nfs_get_rpc_context(nfs);
	for (int i = 0; i < n; i++)
		snprintf(names[i], sizeof(names[i]), "f%06d", i);

	double t0 = now_s();
	while (done < n) {
		while (sent < n && outstanding < window) {
			CREATE3args a;
			memset(&a, 0, sizeof(a));
			a.where.dir.data.data_len = fh->len;
			a.where.dir.data.data_val = fh->val;
			a.where.name = names[sent];
			a.how.mode = UNCHECKED;
			a.how.createhow3_u.obj_attributes.mode.set_it = 1;
			a.how.createhow3_u.obj_attributes.mode.set_mode3_u.mode = 0644;
			if (rpc_nfs3_create_async(rpc, created, &a, NULL) != 0) {
				fprintf(stderr, "nfscreate: queue CREATE: %s\n", rpc_get_error(rpc));
				return 1;
			}
			sent++;
			outstanding++;
		}
		struct pollfd pfd = { .fd = rpc_get_fd(rpc), .events = rpc_which_events(rpc) };
		if (poll(&pfd, 1, 1000) < 0 && errno != EINTR) {
			perror("nfscreate: poll");
			return 1;
		}
		if (rpc_service(rpc, pfd.revents) < 0) {
			fprintf(stderr, "nfscreate: %s\n", rpc_get_error(rpc));
			return 1;
		}
	}
	double t1 = now_s();
	if (failed) {
		fprintf(stderr, "nfscreate: %d of %d creates failed\n", failed, n);
		return 1;
	}
	printf("create_per_s: %.0f\n", n / (t1 - t0));
	nfs_close(nfs, dfh);
	nfs_destroy_url(url);
	nfs_destroy_context(nfs);
	return 0;
}
