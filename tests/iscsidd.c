/* tests/iscsidd: files in and out of a LUN, and load, over libiscsi, for
 * test-iscsi-basic and bench/iscsi.sh (Debian's libiscsi-bin has no dd-like tool;
 * tests/iscsiclient does the crash test's block patterns and reservations).
 *
 *   iscsidd URL put FILE [LBA]         write FILE (zero-padded to a block) from LBA
 *                                      in 1 MiB WRITE(16)s, then SYNCHRONIZE CACHE
 *   iscsidd URL get FILE BYTES [LBA]   read BYTES from LBA into FILE
 *   iscsidd URL perf MODE MB QD BS     MODE seqwrite, seqread or randwrite: MB
 *                                      megabytes in BS-byte commands, QD at once;
 *                                      prints "MODE_mbs N" and "MODE_iops N"
 *   iscsidd URL scatter SEED N QD MB   N distinct random 4 KiB blocks of the first MB
 *                                      megabytes, QD at once, then SYNCHRONIZE
 *                                      CACHE; prints each block's number (4 KiB
 *                                      units); its bytes depend on SEED and it only
 *   iscsidd URL scattercheck SEED N MB reads those blocks back and compares; prints
 *                                      "scatter_ok N" or the blocks that differ
 *
 * URL: iscsi://[USER%PASSWORD@]HOST:PORT/TARGET/LUN[?header_digest=crc32c]; mutual
 * CHAP through LIBISCSI_CHAP_TARGET_USERNAME/PASSWORD. The initiator name is
 * $ISCSI_INITIATOR, else iqn.2026-12.io.bkstor:test-client.
 * Exit: 0 done, 2 the login failed, 1 any other failure. */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>

static struct iscsi_context *ctx;
static int lunno;
static uint32_t bsize;
static uint64_t nblocks;

static int connect_to(const char *url)
{
	const char *in = getenv("ISCSI_INITIATOR");
	ctx = iscsi_create_context(in ? in : "iqn.2026-12.io.bkstor:test-client");
	if (!ctx)
		return 1;
	/* before the URL, whose header_digest= overrides it */
	iscsi_set_header_digest(ctx, ISCSI_HEADER_DIGEST_NONE_CRC32C);
	struct iscsi_url *u = iscsi_parse_full_url(ctx, url);
	if (!u) {
		fprintf(stderr, "iscsidd: %s\n", iscsi_get_error(ctx));
		return 1;
	}
	iscsi_set_targetname(ctx, u->target);
	iscsi_set_session_type(ctx, ISCSI_SESSION_NORMAL);
	if (u->user[0])
		iscsi_set_initiator_username_pwd(ctx, u->user, u->passwd);
	lunno = u->lun;
	if (iscsi_full_connect_sync(ctx, u->portal, u->lun) != 0) {
		fprintf(stderr, "iscsidd: login failed: %s\n", iscsi_get_error(ctx));
		iscsi_destroy_url(u);
		return 2;
	}
	iscsi_destroy_url(u);
	struct scsi_task *t = iscsi_readcapacity16_sync(ctx, lunno);
	if (!t || t->status != SCSI_STATUS_GOOD) {
		fprintf(stderr, "iscsidd: READ CAPACITY(16) failed\n");
		return 1;
	}
	struct scsi_readcapacity16 *rc = scsi_datain_unmarshall(t);
	if (!rc)
		return 1;
	bsize = rc->block_length;
	nblocks = rc->returned_lba + 1;
	scsi_free_scsi_task(t);
	return 0;
}

static int do_write(const char *path, uint64_t lba)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return 1;
	size_t chunk = 1 << 20;
	unsigned char *buf = malloc(chunk);
	int rc = 0;
	size_t n;
	while (buf && (n = fread(buf, 1, chunk, f)) > 0) {
		size_t len = (n + bsize - 1) / bsize * bsize;
		memset(buf + n, 0, len - n);
		struct scsi_task *t = iscsi_write16_sync(ctx, lunno, lba, buf, (uint32_t)len, (int)bsize,
		                                         0, 0, 0, 0, 0);
		if (!t || t->status != SCSI_STATUS_GOOD) {
			fprintf(stderr, "iscsidd: WRITE(16) at %llu failed: %s\n",
			        (unsigned long long)lba, iscsi_get_error(ctx));
			rc = 1;
			break;
		}
		scsi_free_scsi_task(t);
		lba += len / bsize;
	}
	struct scsi_task *t = rc ? NULL : iscsi_synchronizecache10_sync(ctx, lunno, 0, 0, 0, 0);
	if (!rc && (!t || t->status != SCSI_STATUS_GOOD)) {
		fprintf(stderr, "iscsidd: SYNCHRONIZE CACHE failed\n");
		rc = 1;
	}
	if (t)
		scsi_free_scsi_task(t);
	free(buf);
	fclose(f);
	return rc;
}

static int do_read(const char *path, uint64_t bytes, uint64_t lba)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		return 1;
	int rc = 0;
	while (bytes > 0) {
		uint32_t len = (uint32_t)(bytes < (1u << 20) ? bytes : (1u << 20));
		uint32_t blen = (len + bsize - 1) / bsize * bsize;
		struct scsi_task *t = iscsi_read16_sync(ctx, lunno, lba, blen, (int)bsize, 0, 0, 0, 0, 0);
		if (!t || t->status != SCSI_STATUS_GOOD || t->datain.size != (int)blen) {
			fprintf(stderr, "iscsidd: READ(16) at %llu failed: %s\n",
			        (unsigned long long)lba, iscsi_get_error(ctx));
			rc = 1;
			if (t)
				scsi_free_scsi_task(t);
			break;
		}
		fwrite(t->datain.data, 1, len, f);
		scsi_free_scsi_task(t);
		bytes -= len;
		lba += blen / bsize;
	}
	if (fclose(f) != 0)
		rc = 1;
	return rc;
}

/* ---- perf: QD commands in flight ---- */

typedef struct perf {
	int mode;        /* 0 seqwrite, 1 seqread, 2 randwrite */
	uint64_t left, issued_lba, span;
	uint32_t bs;
	int inflight, errors, slots;
	uint64_t seq;
	unsigned char *buf;       /* slots buffers of bs bytes */
	uint64_t rng;
} perf;

static void perf_issue(perf *p);

static void perf_cb(struct iscsi_context *c, int status, void *data, void *priv)
{
	perf *p = priv;
	(void)c;
	if (status != SCSI_STATUS_GOOD)
		p->errors++;
	scsi_free_scsi_task(data);
	p->inflight--;
	perf_issue(p);
}

static void perf_issue(perf *p)
{
	if (!p->left || p->errors)
		return;
	uint32_t blocks = p->bs / bsize;
	uint64_t lba;
	if (p->mode == 2) {
		p->rng = p->rng * 6364136223846793005ull + 1442695040888963407ull;
		lba = (p->rng >> 17) % (p->span / blocks) * blocks;
	} else {
		lba = p->issued_lba % p->span;
		p->issued_lba += blocks;
	}
	/* Written data never repeats (a counter in every 4 KiB of random bytes), so the
	 * store cannot deduplicate it and zstd cannot shrink it: the worst case. */
	unsigned char *b = p->buf + (size_t)(p->seq % (uint64_t)p->slots) * p->bs;
	for (uint32_t o = 0; p->mode != 1 && o + 8 <= p->bs; o += 4096)
		memcpy(b + o, &p->seq, 8);
	p->seq++;
	struct scsi_task *t = p->mode == 1 ?
		iscsi_read16_task(ctx, lunno, lba, p->bs, (int)bsize, 0, 0, 0, 0, 0, perf_cb, p) :
		iscsi_write16_task(ctx, lunno, lba, b, p->bs, (int)bsize, 0, 0, 0, 0, 0, perf_cb, p);
	if (!t) {
		p->errors++;
		return;
	}
	p->inflight++;
	p->left--;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int do_perf(const char *mode, uint64_t mb, int qd, uint32_t bs)
{
	static const char *const modes[] = {"seqwrite", "seqread", "randwrite"};
	perf p = {.mode = -1, .bs = bs, .rng = 12345};
	for (int i = 0; i < 3; i++)
		if (!strcmp(mode, modes[i]))
			p.mode = i;
	if (p.mode < 0 || bs < bsize || bs % bsize)
		return 1;
	p.left = (mb << 20) / bs;
	p.span = nblocks;
	p.slots = 2 * qd;
	if (!(p.buf = malloc((size_t)bs * (size_t)p.slots)))
		return 1;
	uint64_t x = 88172645463325252ull;
	for (size_t i = 0; i < (size_t)bs * (size_t)p.slots; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p.buf[i] = (unsigned char)x;
	}
	uint64_t total = p.left;
	double t0 = now_s();
	for (int i = 0; i < qd; i++)
		perf_issue(&p);
	while (p.inflight > 0) {
		struct pollfd pf = {.fd = iscsi_get_fd(ctx), .events = (short)iscsi_which_events(ctx)};
		if (poll(&pf, 1, 1000) < 0 || iscsi_service(ctx, pf.revents) < 0) {
			fprintf(stderr, "iscsidd: %s\n", iscsi_get_error(ctx));
			return 1;
		}
	}
	double dt = now_s() - t0;
	if (p.mode != 1) {
		struct scsi_task *t = iscsi_synchronizecache10_sync(ctx, lunno, 0, 0, 0, 0);
		if (t)
			scsi_free_scsi_task(t);
		dt = now_s() - t0;
	}
	free(p.buf);
	if (p.errors) {
		fprintf(stderr, "iscsidd: %d commands failed\n", p.errors);
		return 1;
	}
	printf("%s_mbs %.1f\n%s_iops %.0f\n", mode, (double)(total * bs) / 1048576.0 / dt, mode,
	       (double)total / dt);
	return 0;
}

/* ---- scatter: random 4 KiB blocks whose bytes the checker can make again ---- */

static uint64_t xs(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static void scatter_bytes(uint64_t seed, uint64_t blk, unsigned char *b)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ull ^ (blk + 1) * 0xbf58476d1ce4e5b9ull;
	x |= 1;
	for (int i = 0; i < 4096; i += 8) {
		uint64_t v = xs(&x);
		memcpy(b + i, &v, 8);
	}
}

/* The N distinct blocks (in the order written) of the first span blocks. */
static uint64_t *scatter_list(uint64_t seed, uint64_t n, uint64_t span)
{
	uint64_t *v = malloc(n * sizeof(*v)), x = seed * 2654435761u + 7;
	unsigned char *seen = calloc(span / 8 + 1, 1);
	if (!v || !seen || n > span / 2) {
		free(v);
		free(seen);
		return NULL;
	}
	for (uint64_t i = 0; i < n;) {
		uint64_t k = xs(&x) % span;
		if (seen[k / 8] & (1u << (k % 8)))
			continue;
		seen[k / 8] |= (unsigned char)(1u << (k % 8));
		v[i++] = k;
	}
	free(seen);
	return v;
}

typedef struct scat {
	uint64_t *list, n, next;
	unsigned char *buf;       /* qd slots of 4 KiB */
	int inflight, errors, qd;
	uint64_t seed;
} scat;

static void scat_issue(scat *sc, int slot);

static void scat_cb(struct iscsi_context *c, int status, void *data, void *priv)
{
	scat *sc = priv;
	struct scsi_task *t = data;
	(void)c;
	if (status != SCSI_STATUS_GOOD)
		sc->errors++;
	int slot = (int)(intptr_t)t->ptr;
	scsi_free_scsi_task(t);
	sc->inflight--;
	scat_issue(sc, slot);
}

static void scat_issue(scat *sc, int slot)
{
	if (sc->next >= sc->n || sc->errors)
		return;
	uint64_t blk = sc->list[sc->next++];
	unsigned char *b = sc->buf + (size_t)slot * 4096;
	scatter_bytes(sc->seed, blk, b);
	struct scsi_task *t = iscsi_write16_task(ctx, lunno, blk * (4096 / bsize), b, 4096,
	                                         (int)bsize, 0, 0, 0, 0, 0, scat_cb, sc);
	if (!t) {
		sc->errors++;
		return;
	}
	t->ptr = (void *)(intptr_t)slot;
	sc->inflight++;
}

static int do_scatter(uint64_t seed, uint64_t n, int qd, uint64_t mb, int check)
{
	uint64_t span = (mb << 20) / 4096;
	if (bsize > 4096 || 4096 % bsize || span * (4096 / bsize) > nblocks)
		return 1;
	scat sc = {.n = n, .qd = qd, .seed = seed};
	if (!(sc.list = scatter_list(seed, n, span)))
		return 1;
	int rc = 0;
	if (check) {
		unsigned char want[4096];
		uint64_t bad = 0;
		for (uint64_t i = 0; i < n; i++) {
			struct scsi_task *t = iscsi_read16_sync(ctx, lunno, sc.list[i] * (4096 / bsize), 4096,
			                                        (int)bsize, 0, 0, 0, 0, 0);
			scatter_bytes(seed, sc.list[i], want);
			if (!t || t->status != SCSI_STATUS_GOOD || t->datain.size != 4096 ||
			    memcmp(t->datain.data, want, 4096)) {
				if (bad++ < 10)
					printf("scatter_bad %llu\n", (unsigned long long)sc.list[i]);
			}
			if (t)
				scsi_free_scsi_task(t);
		}
		printf("scatter_ok %llu\nscatter_bad_count %llu\n", (unsigned long long)(n - bad),
		       (unsigned long long)bad);
		free(sc.list);
		return bad ? 1 : 0;
	}
	if (!(sc.buf = malloc((size_t)qd * 4096))) {
		free(sc.list);
		return 1;
	}
	for (int i = 0; i < qd; i++)
		scat_issue(&sc, i);
	while (sc.inflight > 0) {
		struct pollfd pf = {.fd = iscsi_get_fd(ctx), .events = (short)iscsi_which_events(ctx)};
		if (poll(&pf, 1, 1000) < 0 || iscsi_service(ctx, pf.revents) < 0) {
			fprintf(stderr, "iscsidd: %s\n", iscsi_get_error(ctx));
			rc = 1;
			break;
		}
	}
	if (sc.errors) {
		fprintf(stderr, "iscsidd: %d writes failed\n", sc.errors);
		rc = 1;
	}
	struct scsi_task *t = rc ? NULL : iscsi_synchronizecache10_sync(ctx, lunno, 0, 0, 0, 0);
	if (!rc && (!t || t->status != SCSI_STATUS_GOOD)) {
		fprintf(stderr, "iscsidd: SYNCHRONIZE CACHE failed\n");
		rc = 1;
	}
	if (t)
		scsi_free_scsi_task(t);
	for (uint64_t i = 0; rc == 0 && i < n; i++)
		printf("%llu\n", (unsigned long long)sc.list[i]);
	free(sc.buf);
	free(sc.list);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: iscsidd URL put FILE [LBA] | get FILE BYTES [LBA] | "
		        "perf MODE MB QD BS | scatter SEED N QD MB | scattercheck SEED N MB\n");
		return 1;
	}
	int rc = connect_to(argv[1]);
	if (rc)
		return rc;
	if (!strcmp(argv[2], "put") && argc >= 4)
		rc = do_write(argv[3], argc > 4 ? strtoull(argv[4], NULL, 0) : 0);
	else if (!strcmp(argv[2], "get") && argc >= 5)
		rc = do_read(argv[3], strtoull(argv[4], NULL, 0), argc > 5 ? strtoull(argv[5], NULL, 0) : 0);
	else if (!strcmp(argv[2], "scatter") && argc == 7)
		rc = do_scatter(strtoull(argv[3], NULL, 0), strtoull(argv[4], NULL, 0), atoi(argv[5]),
		                strtoull(argv[6], NULL, 0), 0);
	else if (!strcmp(argv[2], "scattercheck") && argc == 6)
		rc = do_scatter(strtoull(argv[3], NULL, 0), strtoull(argv[4], NULL, 0), 1,
		                strtoull(argv[5], NULL, 0), 1);
	else if (!strcmp(argv[2], "perf") && argc == 7)
		rc = do_perf(argv[3], strtoull(argv[4], NULL, 0), atoi(argv[5]),
		             (uint32_t)strtoul(argv[6], NULL, 0));
	else
		rc = 1;
	iscsi_logout_sync(ctx);
	iscsi_destroy_context(ctx);
	return rc;
}
