/* daemon/demo.c: see demo.h. */
#include <config.h>

#include "daemon/demo.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <openssl/rand.h>

#include "daemon/web_auth.h"
#include "proto/auth.h"

#define DISK_MAX (4ull << 30)
#define DISK_MIN (128ull << 20)

static void hex(const uint8_t *b, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", b[i]);
}

/* Append to buf (cap bytes) at *o; text past the end is dropped (cap is ample). */
static void append(char *buf, size_t cap, size_t *o, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void append(char *buf, size_t cap, size_t *o, const char *fmt, ...)
{
	va_list va;
	va_start(va, fmt);
	if (*o < cap) {
		int n = vsnprintf(buf + *o, cap - *o, fmt, va);
		*o += n > 0 ? (size_t)n : 0;
	}
	va_end(va);
}

static int write_file(const char *path, const char *text, mode_t mode, bks_err *e)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0)
		return bks_fail(e, -errno, "%s: %s", path, strerror(errno));
	size_t n = strlen(text);
	int r = write(fd, text, n) == (ssize_t)n && fsync(fd) == 0 ? 0 : -errno;
	close(fd);
	if (r < 0) {
		unlink(path);
		return bks_fail(e, r, "%s: %s", path, strerror(-r));
	}
	return 0;
}

int demo_prepare(const char *dir, int port, char *conf_path, size_t cap, char password[32],
                 bks_err *e)
{
	char abs[PATH_MAX], path[PATH_MAX + 64], *conf = NULL, *client = NULL;
	char pwhash[WA_HASH_MAX];
	struct statvfs vf;
	int r;

	password[0] = 0;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return bks_fail(e, -errno, "cannot create %s: %s", dir, strerror(errno));
	if (!realpath(dir, abs))
		return bks_fail(e, -errno, "%s: %s", dir, strerror(errno));
	snprintf(conf_path, cap, "%s/bkstord.conf", abs);
	if (access(conf_path, F_OK) == 0)
		return 0; /* made before: reuse it */
	if (!port)
		port = 7070;

	/* Disks sized to fit: half the free space for the nine files, 128 MiB..4 GiB. */
	if (statvfs(abs, &vf) < 0)
		return bks_fail(e, -errno, "statvfs %s: %s", abs, strerror(errno));
	uint64_t freeb = (uint64_t)vf.f_bavail * vf.f_frsize;
	uint64_t per = freeb / 2 / (DEMO_DISKS + DEMO_SPARES);
	per = BKS_MIN(per, DISK_MAX) & ~((1ull << 20) - 1);
	if (per < DISK_MIN)
		return bks_fail(e, -ENOSPC, "%s has %llu MiB free; the demo needs at least %llu "
		                "MiB", abs, (unsigned long long)(freeb >> 20),
		                (unsigned long long)(2 * DISK_MIN * (DEMO_DISKS + DEMO_SPARES) >> 20));
	snprintf(path, sizeof(path), "%s/disks", abs);
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return bks_fail(e, -errno, "cannot create %s: %s", path, strerror(errno));
	size_t need = 64 << 10;
	conf = malloc(need);
	client = malloc(need);
	if (!conf || !client) {
		r = bks_fail(e, -ENOMEM, "out of memory");
		goto out;
	}
	size_t o = 0;
	append(conf, need, &o,
	                      "# bkstord demo configuration (docs/config.md), made by bkstord --demo\n"
	                      "[array]\nname = demo\n");
	for (int i = 0; i < DEMO_DISKS + DEMO_SPARES; i++) {
		int spare = i >= DEMO_DISKS;
		snprintf(path, sizeof(path), "%s/disks/%s%d.img", abs, spare ? "spare" : "disk",
		         spare ? i - DEMO_DISKS : i);
		int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		if (fd < 0 || ftruncate(fd, (off_t)per) < 0) {
			r = bks_fail(e, -errno, "%s: %s", path, strerror(errno));
			if (fd >= 0)
				close(fd);
			goto out;
		}
		close(fd);
		append(conf, need, &o, "%s = %s\n", spare ? "spares" : "disks", path);
	}
	uint8_t secret[32], token[32];
	char secret_hex[65], token_hex[65];
	if (auth_nonce(secret) < 0 || auth_nonce(token) < 0) {
		r = bks_fail(e, -EIO, "no random bytes");
		goto out;
	}
	hex(secret, 32, secret_hex);
	hex(token, 32, token_hex);
	/* The dashboard's admin password: shown once, kept only as a hash. */
	uint8_t pw[8];
	if (RAND_bytes(pw, sizeof(pw)) != 1) {
		r = bks_fail(e, -EIO, "no random bytes");
		goto out;
	}
	hex(pw, sizeof(pw), password);
	if (wa_hash_password(password, pwhash) < 0) {
		r = bks_fail(e, -EIO, "cannot hash the password");
		goto out;
	}
	/* [nfs] before [web]: tests take the dashboard's port from the last listen line. */
	append(conf, need, &o,
	                      "strip_size = 256K\n\n[store]\ncommit_interval = 5s\n\n"
	                      "[native]\nlisten = 127.0.0.1:%d\n\n"
	                      "# NFSv3 on the ports after the dashboard's; no portmapper\n"
	                      "# (port 111 needs root and may be taken by rpcbind).\n"
	                      "[nfs]\nenable = yes\nlisten = 127.0.0.1:%d\nmount_port = %d\n"
	                      "portmap_port = 0\n\n"
	                      "[export root]\npath = /\naccess = rw\nclients = 127.0.0.1\n"
	                      "squash = no_root_squash\nsecure = no\n\n"
	                      "# iSCSI on the port after NFS's MOUNT; the demo's LUN is \"demo\".\n"
	                      "[iscsi]\nenable = yes\nlisten = 127.0.0.1:%d\n\n"
	                      "[clients]\ndemo = %s\n\n"
	                      "[api]\nsocket = %s/api.sock\n\n[web]\nlisten = 127.0.0.1:%d\n"
	                      "api_tokens = %s\nadmin_password = %s\n\n[log]\nlevel = info\n\n"
	                      "[daemon]\ndemo = yes\n",
	                      port, port + 2, port + 3, port + 4, secret_hex, abs, port + 1, token_hex,
	                      pwhash);
	size_t co = 0;
	append(client, need, &co,
	         "# bkstorctl's way to the demo daemon: export BKSTOR_CLIENT=%s/client.conf\n"
	         "server = 127.0.0.1:%d\nname = demo\nsecret = %s\napi_socket = %s/api.sock\n",
	         abs, port, secret_hex, abs);
	snprintf(path, sizeof(path), "%s/client.conf", abs);
	unlink(path);
	if ((r = write_file(path, client, 0600, e)) < 0)
		goto out;
	/* The configuration last: its presence means the demo directory is complete. */
	r = write_file(conf_path, conf, 0600, e);
out:
	free(conf);
	free(client);
	return r;
}

void demo_banner(const char *dir, const bks_cfg *cfg, const char *password)
{
	char abs[PATH_MAX];
	if (!realpath(dir, abs))
		snprintf(abs, sizeof(abs), "%s", dir);
	fprintf(stderr,
	        "\n"
	        "  bkstor demo is running: array on %d file disks + %d spare in %s/disks\n"
	        "  native protocol  127.0.0.1:%u   control API  %s\n"
	        "\n"
	        "  In another terminal:\n"
	        "    export BKSTOR_CLIENT=%s/client.conf\n"
	        "    bkstorctl status\n"
	        "    bkstorctl put /etc/services /backups/services\n"
	        "    bkstorctl ls /backups\n"
	        "    bkstorctl get /backups/services /tmp/services.copy\n"
	        "\n"
	        "  Stop with Ctrl-C (a clean shutdown: everything is committed).\n",
	        cfg->ndisks, cfg->nspares, abs,
	        cfg->nnative_listen ? cfg->native_listen[0].port : 0, cfg->api_socket, abs);
	if (cfg->nfs_enabled)
		fprintf(stderr, "\n  NFSv3 (libnfs URL): nfs://127.0.0.1/?version=3&nfsport=%u&mountport=%u\n"
		        "    nfs-ls 'nfs://127.0.0.1/?version=3&nfsport=%u&mountport=%u'\n",
		        cfg->nfs_listen.port, cfg->nfs_mount_port, cfg->nfs_listen.port,
		        cfg->nfs_mount_port);
	if (cfg->iscsi_enabled) {
		char iqn[256];
		if (cfg->iscsi_iqn_prefix && cfg->iscsi_iqn_prefix[0])
			snprintf(iqn, sizeof(iqn), "%s:demo", cfg->iscsi_iqn_prefix);
		else
			snprintf(iqn, sizeof(iqn), "iqn.2026-12.io.bkstor:%s:demo", cfg->array_name);
		fprintf(stderr, "\n  iSCSI LUN demo (10 GiB, thin): iscsi://127.0.0.1:%u/%s/0\n"
		        "    iscsi-inq iscsi://127.0.0.1:%u/%s/0\n", cfg->iscsi_listen.port, iqn,
		        cfg->iscsi_listen.port, iqn);
	}
	if (cfg->web_enabled)
		fprintf(stderr, "\n  Dashboard: http://127.0.0.1:%u/  (user admin)\n", cfg->web_listen.port);
	if (password && password[0])
		fprintf(stderr, "  Admin password: %s   <- shown this once; change it with "
		        "`bkstorctl passwd`\n", password);
	fputc('\n', stderr);
}
