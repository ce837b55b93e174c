/* tests/nfsclient.c: a small NFSv3 client over libnfs for test-nfs-basic.sh.
 *
 *   nfsclient URL basic       mkdir, create, out-of-order writes, read back, rename,
 *                             remove, rmdir, symlink/readlink, hard link, truncate
 *                             and extend; leaves /keep/seq, /keep/sl for "verify"
 *   nfsclient URL verify      after a daemon restart: /keep/seq intact
 *   nfsclient URL many N      create N empty files in /many, list them (READDIRPLUS),
 *                             print the rates
 *   nfsclient URL trickle PATH IMAGE
 *                             create PATH, write 4 KiB blocks every 50 ms from the
 *                             top of an 8 MiB file down (UNSTABLE: they stay staged on
 *                             the server until COMMIT) until a write fails (the
 *                             appliance became read-only); 2 s later
 *                             fsync (COMMIT) must succeed; IMAGE gets the bytes every
 *                             acknowledged write put there (zeros elsewhere)
 *
 * URL: nfs://127.0.0.1/DIR?version=3&nfsport=N&mountport=M (DIR: the mount path).
 * Prints "ok"/"FAIL" lines; exit 0 only when every check passed. */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <nfsc/libnfs.h>

static int fails;
static struct nfs_context *nfs;

/* cond is evaluated once (it often is the call under test). */
#define CHECK(cond, ...)                                                              \
	do {                                                                              \
		int good_ = (cond);                                                           \
		printf(good_ ? "ok   - " : "FAIL - ");                                        \
		fails += !good_;                                                              \
		printf(__VA_ARGS__);                                                          \
		if (!good_)                                                                   \
			printf(" (%s)", nfs_get_error(nfs));                                      \
		printf("\n");                                                                 \
	} while (0)



static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A block of pseudo-random bytes named by seed (repeatable). */
static void fill(uint8_t *b, size_t n, uint32_t seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		b[i] = (uint8_t)x;
	}
}

#define MB (1u << 20)

static int write_at(struct nfsfh *fh, uint64_t off, const uint8_t *b, size_t n)
{
	size_t done = 0;
	while (done < n) {
		int w = nfs_pwrite(nfs, fh, off + done, n - done, (const void *)(b + done));
		if (w <= 0)
			return -1;
		done += (size_t)w;
	}
	return 0;
}

static int read_at(struct nfsfh *fh, uint64_t off, uint8_t *b, size_t n)
{
	size_t done = 0;
	while (done < n) {
		int r = nfs_pread(nfs, fh, off + done, n - done, (void *)(b + done));
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		done += (size_t)r;
	}
	return (int)done;
}

static uint64_t size_of(const char *path)
{
	struct nfs_stat_64 st;
	return nfs_stat64(nfs, path, &st) == 0 ? st.nfs_size : UINT64_MAX;
}

/* /keep/seq: 3 MiB written as blocks 2, 0, 1 (out of order), then a block at 6 MiB
 * (a hole of 3 MiB between). */
static void expect_keep(uint8_t *want, uint8_t *got)
{
	memset(want, 0, 7 * MB);
	fill(want, MB, 10);
	fill(want + MB, MB, 11);
	fill(want + 2 * MB, MB, 12);
	fill(want + 6 * MB, MB, 16);
	struct nfsfh *fh;
	int r = nfs_open(nfs, "/keep/seq", O_RDONLY, &fh);
	CHECK(r == 0, "open /keep/seq");
	if (r)
		return;
	int n = read_at(fh, 0, got, 7 * MB);
	CHECK(n == 7 * MB && !memcmp(want, got, 7 * MB),
	      "/keep/seq reads back byte-identical (7 MiB, blocks written 2,0,1,6; hole zero)");
	nfs_close(nfs, fh);
}

static void basic(void)
{
	uint8_t *a = malloc(8 * MB), *b = malloc(8 * MB);
	struct nfsfh *fh;
	int r;

	CHECK(nfs_mkdir(nfs, "/keep") == 0, "mkdir /keep");
	CHECK(nfs_mkdir(nfs, "/keep") == -EEXIST, "mkdir /keep again: EEXIST");
	r = nfs_creat(nfs, "/keep/seq", 0644, &fh);
	CHECK(r == 0, "create /keep/seq");
	if (r == 0) {
		fill(a, MB, 12);
		CHECK(write_at(fh, 2 * MB, a, MB) == 0, "write block 2");
		fill(a, MB, 10);
		CHECK(write_at(fh, 0, a, MB) == 0, "write block 0");
		fill(a, MB, 11);
		CHECK(write_at(fh, MB, a, MB) == 0, "write block 1");
		/* read before commit: the staged bytes are seen */
		fill(a, MB, 11);
		CHECK(read_at(fh, MB, b, MB) == (int)MB && !memcmp(a, b, MB),
		      "read block 1 before COMMIT sees the written bytes");
		fill(a, MB, 16);
		CHECK(write_at(fh, 6 * MB, a, MB) == 0, "write block at 6 MiB (hole)");
		CHECK(nfs_fsync(nfs, fh) == 0, "fsync (COMMIT)");
		nfs_close(nfs, fh);
	}
	CHECK(size_of("/keep/seq") == 7 * MB, "size 7 MiB");
	expect_keep(a, b);

	/* overwrite inside the file */
	r = nfs_open(nfs, "/keep/seq", O_RDWR, &fh);
	if (r == 0) {
		memset(a, 0x5a, 4096);
		CHECK(write_at(fh, MB + 100, a, 4096) == 0, "overwrite 4 KiB inside");
		nfs_fsync(nfs, fh);
		CHECK(read_at(fh, MB + 100, b, 4096) == 4096 && !memcmp(a, b, 4096),
		      "overwritten bytes read back");
		fill(a, MB, 11); /* put block 1 back for verify */
		write_at(fh, MB, a, MB);
		nfs_fsync(nfs, fh);
		nfs_close(nfs, fh);
	}

	/* truncate and extend */
	r = nfs_creat(nfs, "/t", 0644, &fh);
	if (r == 0) {
		fill(a, 2 * MB, 20);
		write_at(fh, 0, a, 2 * MB);
		CHECK(nfs_ftruncate(nfs, fh, MB + MB / 2) == 0, "SETATTR size: truncate to 1.5 MiB");
		CHECK(size_of("/t") == MB + MB / 2, "size after truncate");
		CHECK(nfs_ftruncate(nfs, fh, 4 * MB) == 0, "SETATTR size: extend to 4 MiB");
		int n = read_at(fh, 0, b, 4 * MB);
		memset(a + MB + MB / 2, 0, 4 * MB - (MB + MB / 2));
		CHECK(n == 4 * MB && !memcmp(a, b, 4 * MB),
		      "after truncate + extend: the first 1.5 MiB kept, zeros after");
		nfs_close(nfs, fh);
	}

	/* rename, remove */
	CHECK(nfs_rename(nfs, "/t", "/keep/t2") == 0, "rename /t -> /keep/t2");
	CHECK(size_of("/t") == UINT64_MAX && size_of("/keep/t2") == 4 * MB,
	      "old name gone, new name has the file");
	CHECK(nfs_unlink(nfs, "/keep/t2") == 0, "remove /keep/t2");
	CHECK(size_of("/keep/t2") == UINT64_MAX, "removed file is gone");

	/* rmdir */
	CHECK(nfs_mkdir(nfs, "/d") == 0 && nfs_creat(nfs, "/d/f", 0644, &fh) == 0, "mkdir /d, create /d/f");
	nfs_close(nfs, fh);
	CHECK(nfs_rmdir(nfs, "/d") == -ENOTEMPTY, "rmdir non-empty: ENOTEMPTY");
	CHECK(nfs_unlink(nfs, "/d/f") == 0 && nfs_rmdir(nfs, "/d") == 0, "empty and rmdir /d");

	/* exclusive create of an existing name */
	r = nfs_create(nfs, "/keep/seq", O_CREAT | O_EXCL | O_WRONLY, 0644, &fh);
	CHECK(r == -EEXIST, "O_EXCL create of an existing file: EEXIST (got %d)", r);

	/* symlink and hard link */
	CHECK(nfs_symlink(nfs, "seq", "/keep/sl") == 0, "symlink /keep/sl -> seq");
	char t[64] = "";
	CHECK(nfs_readlink(nfs, "/keep/sl", t, sizeof(t)) == 0 && !strcmp(t, "seq"),
	      "readlink /keep/sl: '%s'", t);
	CHECK(nfs_link(nfs, "/keep/seq", "/keep/hl") == 0, "hard link /keep/hl -> /keep/seq");
	struct nfs_stat_64 st, st2;
	CHECK(nfs_stat64(nfs, "/keep/hl", &st) == 0 && st.nfs_nlink == 2 &&
	      nfs_stat64(nfs, "/keep/seq", &st2) == 0 && st2.nfs_ino == st.nfs_ino,
	      "hard link: nlink 2, one file id");
	CHECK(nfs_unlink(nfs, "/keep/hl") == 0 && nfs_stat64(nfs, "/keep/seq", &st) == 0 &&
	      st.nfs_nlink == 1 && st.nfs_size == 7 * MB, "remove one name: nlink 1, the file stays");
	free(a);
	free(b);
}

static void many(int n)
{
	char p[64];
	struct nfsfh *fh;
	int made = 0;
	CHECK(nfs_mkdir(nfs, "/many") == 0, "mkdir /many");
	double t0 = now_s();
	for (int i = 0; i < n; i++) {
		snprintf(p, sizeof(p), "/many/f%06d", i);
		if (nfs_creat(nfs, p, 0644, &fh) == 0) {
			made++;
			nfs_close(nfs, fh);
		}
	}
	double t1 = now_s();
	CHECK(made == n, "created %d files in one directory", made);
	struct nfsdir *d;
	struct nfsdirent *de;
	int seen = 0, typed = 0;
	int r = nfs_opendir(nfs, "/many", &d);
	CHECK(r == 0, "opendir /many (READDIRPLUS)");
	if (r == 0) {
		while ((de = nfs_readdir(nfs, d)))
			if (strcmp(de->name, ".") && strcmp(de->name, "..")) {
				seen++;
				typed += (de->mode & S_IFMT) == S_IFREG;
			}
		nfs_closedir(nfs, d);
	}
	double t2 = now_s();
	CHECK(seen == n, "READDIRPLUS lists %d entries (want %d)", seen, n);
	CHECK(typed == n, "READDIRPLUS gives attributes: %d regular files", typed);
	printf("nfs_create_per_s %.0f\nnfs_readdirplus_entries_per_s %.0f\n",
	       n / (t1 - t0), seen / (t2 - t1));
}

/* Writes that got an answer (UNSTABLE) before the appliance turned read-only were
 * accepted: the appliance keeps them (it applies them before it refuses writes), so
 * the COMMIT that follows succeeds and they are in the file. */
static void trickle(const char *path, const char *image)
{
	enum { BS = 4096, NB = 2048 };
	uint8_t *want = calloc(NB, BS), blk[BS];
	struct nfsfh *fh;
	int r = want ? nfs_creat(nfs, path, 0644, &fh) : -ENOMEM;
	CHECK(r == 0, "create %s", path);
	if (r) {
		free(want);
		return;
	}
	int k = 0, w = 0;
	double end = now_s() + 120;
	for (; k < NB && now_s() < end; k++) {
		fill(blk, BS, (uint32_t)k + 1000);
		w = nfs_pwrite(nfs, fh, (uint64_t)(NB - 1 - k) * BS, BS, (const void *)blk);
		if (w != BS)
			break;
		memcpy(want + (size_t)(NB - 1 - k) * BS, blk, BS);
		if (k == 0) {
			printf("first write acknowledged\n");
			fflush(stdout);
		}
		struct timespec ts = {0, 50 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	printf("acknowledged %d writes of %d bytes\n", k, BS);
	/* libnfs 4.0 reports a refused WRITE as -EFAULT whatever the NFS status (the
	 * caller checks NFS3ERR_ROFS with a WRITE of its own). */
	CHECK(w < 0 && k > 0, "a write once the appliance is read-only fails (libnfs: %d)", w);
	/* A client commits when it closes or flushes, maybe much later: by then the
	 * appliance has gone on (a hand-back's last cycle has walked). */
	struct timespec later = {2, 0};
	nanosleep(&later, NULL);
	r = nfs_fsync(nfs, fh);
	CHECK(r == 0, "fsync (COMMIT) after it: the %d acknowledged writes are kept (got %d)", k,
	      r);
	nfs_close(nfs, fh);
	FILE *f = fopen(image, "wb");
	CHECK(f && fwrite(want, BS, NB, f) == NB && fclose(f) == 0, "write %s", image);
	free(want);
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: nfsclient URL basic|verify|many N\n");
		return 2;
	}
	nfs = nfs_init_context();
	struct nfs_url *u = nfs ? nfs_parse_url_dir(nfs, argv[1]) : NULL;
	if (!u) {
		fprintf(stderr, "nfsclient: bad URL %s: %s\n", argv[1], nfs ? nfs_get_error(nfs) : "");
		return 2;
	}
	if (nfs_mount(nfs, u->server, u->path) != 0) {
		fprintf(stderr, "nfsclient: mount %s: %s\n", u->path, nfs_get_error(nfs));
		return 1;
	}
	if (!strcmp(argv[2], "basic")) {
		basic();
	} else if (!strcmp(argv[2], "verify")) {
		uint8_t *a = malloc(8 * MB), *b = malloc(8 * MB);
		expect_keep(a, b);
		char t[64] = "";
		CHECK(nfs_readlink(nfs, "/keep/sl", t, sizeof(t)) == 0 && !strcmp(t, "seq"),
		      "readlink /keep/sl after restart: '%s'", t);
		free(a);
		free(b);
	} else if (!strcmp(argv[2], "trickle") && argc > 4) {
		trickle(argv[3], argv[4]);
	} else if (!strcmp(argv[2], "many") && argc > 3) {
		many(atoi(argv[3]));
	} else {
		fprintf(stderr, "nfsclient: unknown command %s\n", argv[2]);
		return 2;
	}
	nfs_umount(nfs);
	nfs_destroy_url(u);
	nfs_destroy_context(nfs);
	return fails ? 1 : 0;
}
