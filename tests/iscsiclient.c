/* tests/iscsiclient: a small libiscsi client for the iSCSI shell tests.
 *
 *   iscsiclient URL write LBA NBLK SEED MODE   MODE fua|sync|none: write NBLK blocks
 *       (deterministic bytes of SEED) in 64-block commands; fua: each with FUA;
 *       sync: SYNCHRONIZE CACHE after each; none: no flush. Prints "acked LBA N" to
 *       stdout after each command is acknowledged (durable for fua and sync), flushed.
 *   iscsiclient URL verify LBA NBLK SEED         exit 0 when the blocks hold SEED's bytes
 *   iscsiclient URL register KEY                 PERSISTENT RESERVE OUT REGISTER AND IGNORE
 *   iscsiclient URL reserve KEY TYPE             REGISTER AND IGNORE KEY, then RESERVE
 *       (TYPE 1..8) on the same session (a nexus is initiator name + ISID, and every
 *       run of this client is a new ISID)
 *   iscsiclient URL prin                         prints "keys K..." and "reservation KEY TYPE"
 *   iscsiclient URL wce [0|1 [SP]]               with 0 or 1: MODE SELECT(10) of the
 *       caching page as MODE SENSE read it with WCE set so (SP 0 unless given); then
 *       prints "wce CURRENT saved SAVED" (MODE SENSE(10) page control 00 and 11)
 *   iscsiclient URL hold                         logs in, prints "held", keeps the
 *       session (answering NOP-In) until stdin ends, then logs out
 *   iscsiclient URL flight LBA NBLK SEED         many commands in flight at once: writes
 *       of NBLK blocks of SEED's bytes from LBA in 1 MiB and 4 KiB pieces all submitted
 *       together, then reads of them (checked), then 8 overlapping writes and a read of
 *       one range together (the read must see the last); prints "PHASE commands N
 *       in_flight K out_of_order M" (M: answers that came before an earlier command's)
 *
 * The initiator name is $ISCSI_INITIATOR or iqn.2026-01.io.bkstor.test:client. Exit 0
 * on success, 1 on a failure (the sense on stderr), 2 on a usage error. */
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>

static void fill(uint64_t seed, uint64_t lba, uint8_t *p, size_t n, uint32_t bs)
{
	for (size_t b = 0; b < n / bs; b++) {
		uint64_t x = seed * 0x9e3779b97f4a7c15ull ^ (lba + b) * 0xbf58476d1ce4e5b9ull;
		for (size_t i = 0; i < bs; i += 8) {
			x ^= x >> 31;
			x *= 0x94d049bb133111ebull;
			x ^= x >> 29;
			memcpy(p + b * bs + i, &x, 8);
		}
	}
}

static int task_ok(struct iscsi_context *c, struct scsi_task *t, const char *what)
{
	if (t && t->status == SCSI_STATUS_GOOD)
		return 1;
	fprintf(stderr, "iscsiclient: %s: %s\n", what,
	        t ? (t->status == SCSI_STATUS_RESERVATION_CONFLICT ? "RESERVATION CONFLICT"
	                                                            : iscsi_get_error(c))
	          : iscsi_get_error(c));
	return 0;
}

/* ---- flight: many commands in flight at once ---- */

struct fl_cmd {
	struct fl *f;
	int idx;                 /* submission order */
	int is_read;
	uint64_t lba, seed;
	uint32_t nblk;
	uint8_t *buf;            /* write data, or the expected read data */
	int done;
};

struct fl {
	struct fl_cmd *cmds;
	int n, inflight, inflight_max, completed, ooo, bad;
	uint32_t bs;
};

static void fl_cb(struct iscsi_context *c, int status, void *data, void *priv)
{
	struct fl_cmd *k = priv;
	struct fl *f = k->f;
	struct scsi_task *t = data;
	(void)c;
	if (status != SCSI_STATUS_GOOD) {
		fprintf(stderr, "iscsiclient: %s at %" PRIu64 ": status %d\n",
		        k->is_read ? "read" : "write", k->lba, status);
		f->bad++;
	} else if (k->is_read && (t->datain.size != (int)(k->nblk * f->bs) ||
	                          memcmp(t->datain.data, k->buf, (size_t)k->nblk * f->bs))) {
		fprintf(stderr, "iscsiclient: read %d at %" PRIu64 ": data differs\n", k->idx,
		        k->lba);
		f->bad++;
	}
	/* Answered while a command submitted before it is still waiting. */
	for (int i = 0; i < k->idx; i++)
		if (!f->cmds[i].done) {
			f->ooo++;
			break;
		}
	k->done = 1;
	f->completed++;
	f->inflight--;
	scsi_free_scsi_task(t);
}

/* Submit every command at once (they are in flight together: the target's CmdSN
 * window, 64 by default, admits them), then serve the connection until all are
 * answered. */
static int fl_run(struct iscsi_context *c, int lun, struct fl *f)
{
	for (int i = 0; i < f->n; i++) {
		struct fl_cmd *k = &f->cmds[i];
		struct scsi_task *t = k->is_read ?
			iscsi_read16_task(c, lun, k->lba, k->nblk * f->bs, (int)f->bs, 0, 0, 0, 0, 0,
			                  fl_cb, k) :
			iscsi_write16_task(c, lun, k->lba, k->buf, k->nblk * f->bs, (int)f->bs, 0, 0,
			                   0, 0, 0, fl_cb, k);
		if (!t)
			return -1;
		f->inflight++;
		if (f->inflight > f->inflight_max)
			f->inflight_max = f->inflight;
	}
	while (f->inflight > 0) {
		struct pollfd pf = {.fd = iscsi_get_fd(c), .events = (short)iscsi_which_events(c)};
		if (poll(&pf, 1, 1000) < 0 || iscsi_service(c, pf.revents) < 0) {
			fprintf(stderr, "iscsiclient: %s\n", iscsi_get_error(c));
			return -1;
		}
	}
	return 0;
}

static void fl_add(struct fl *f, int is_read, uint64_t lba, uint32_t nblk, uint64_t seed)
{
	struct fl_cmd *k = &f->cmds[f->n];
	*k = (struct fl_cmd){.f = f, .idx = f->n, .is_read = is_read, .lba = lba,
	                     .seed = seed, .nblk = nblk};
	k->buf = malloc((size_t)nblk * f->bs);
	fill(seed, lba, k->buf, (size_t)nblk * f->bs, f->bs);
	f->n++;
}

static void fl_reset(struct fl *f)
{
	for (int i = 0; i < f->n; i++)
		free(f->cmds[i].buf);
	f->n = f->inflight = f->inflight_max = f->completed = f->ooo = 0;
}

/* flight LBA NBLK SEED: (1) writes of [LBA, LBA + NBLK) in pieces of alternating
 * sizes (1 MiB and 4 KiB, so small ones can pass big ones), all in flight; (2) reads
 * of the same pieces, all in flight, checked; (3) on one 64 KiB range at LBA: 8
 * writes of different seeds, a read, in flight together: the read must see the
 * last write before it (overlapping commands of one session keep their order). */
static int do_flight(struct iscsi_context *c, int lun, uint32_t bs, uint64_t lba, uint64_t n,
                     uint64_t seed)
{
	struct fl f = {.bs = bs};
	uint32_t big = (1u << 20) / bs, small = 4096 / bs ? 4096 / bs : 1;
	int max = (int)(n / small) + 16;
	f.cmds = calloc((size_t)max, sizeof(*f.cmds));
	int rc = 0;
	for (int ph = 0; ph < 2 && rc == 0; ph++) {
		fl_reset(&f);
		for (uint64_t at = 0, i = 0; at < n && f.n < max - 1; i++) {
			uint32_t k = (uint32_t)(n - at < (i % 2 ? small : big) ? n - at :
			                                                    (i % 2 ? small : big));
			fl_add(&f, ph, lba + at, k, seed);
			at += k;
		}
		if (fl_run(c, lun, &f) < 0 || f.bad)
			rc = 1;
		printf("%s commands %d in_flight %d out_of_order %d\n", ph ? "read" : "write",
		       f.n, f.inflight_max, f.ooo);
	}
	if (rc == 0) {
		fl_reset(&f);
		uint32_t k = (65536 / bs) ? 65536 / bs : 1;
		for (int i = 1; i <= 8; i++)
			fl_add(&f, 0, lba, k, seed + (uint64_t)i);
		fl_add(&f, 1, lba, k, seed + 8);
		if (fl_run(c, lun, &f) < 0 || f.bad)
			rc = 1;
		printf("overlap commands %d in_flight %d out_of_order %d\n", f.n, f.inflight_max,
		       f.ooo);
	}
	fl_reset(&f);
	free(f.cmds);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: iscsiclient URL write|verify|register|reserve|prin ...\n");
		return 2;
	}
	const char *ini = getenv("ISCSI_INITIATOR");
	struct iscsi_context *c = iscsi_create_context(ini ? ini : "iqn.2026-01.io.bkstor.test:client");
	struct iscsi_url *u = c ? iscsi_parse_full_url(c, argv[1]) : NULL;
	if (!u) {
		fprintf(stderr, "iscsiclient: bad URL %s\n", argv[1]);
		return 2;
	}
	iscsi_set_targetname(c, u->target);
	iscsi_set_session_type(c, ISCSI_SESSION_NORMAL);
	iscsi_set_header_digest(c, ISCSI_HEADER_DIGEST_NONE_CRC32C);
	if (iscsi_full_connect_sync(c, u->portal, u->lun) != 0) {
		fprintf(stderr, "iscsiclient: login: %s\n", iscsi_get_error(c));
		return 1;
	}
	int lun = u->lun, rc = 0;
	struct scsi_task *t;
	/* The unit attention of a new nexus is answered first. */
	for (int i = 0; i < 4; i++) {
		t = iscsi_testunitready_sync(c, lun);
		int good = t && t->status == SCSI_STATUS_GOOD;
		scsi_free_scsi_task(t);
		if (good)
			break;
	}
	t = iscsi_readcapacity16_sync(c, lun);
	struct scsi_readcapacity16 *rc16 = t ? scsi_datain_unmarshall(t) : NULL;
	uint32_t bs = rc16 ? rc16->block_length : 512;
	scsi_free_scsi_task(t);

	const char *op = argv[2];
	if ((!strcmp(op, "write") || !strcmp(op, "verify")) && argc >= 6) {
		uint64_t lba = strtoull(argv[3], NULL, 0), n = strtoull(argv[4], NULL, 0);
		uint64_t seed = strtoull(argv[5], NULL, 0);
		const char *mode = argc > 6 ? argv[6] : "none";
		uint8_t *buf = malloc(64 * (size_t)bs);
		for (uint64_t done = 0; done < n && rc == 0; done += 64) {
			uint32_t k = (uint32_t)(n - done < 64 ? n - done : 64);
			fill(seed, lba + done, buf, (size_t)k * bs, bs);
			if (!strcmp(op, "write")) {
				t = iscsi_write16_sync(c, lun, lba + done, buf, k * bs, (int)bs, 0, 0,
				                       !strcmp(mode, "fua"), 0, 0);
				if (!task_ok(c, t, "write"))
					rc = 1;
				scsi_free_scsi_task(t);
				if (rc == 0 && !strcmp(mode, "sync")) {
					t = iscsi_synchronizecache10_sync(c, lun, 0, 0, 0, 0);
					if (!task_ok(c, t, "synchronize cache"))
						rc = 1;
					scsi_free_scsi_task(t);
				}
				if (rc == 0) {
					printf("acked %" PRIu64 " %u\n", lba + done, k);
					fflush(stdout);
				}
			} else {
				t = iscsi_read16_sync(c, lun, lba + done, k * bs, (int)bs, 0, 0, 0, 0, 0);
				if (!task_ok(c, t, "read")) {
					rc = 1;
				} else if (t->datain.size != (int)(k * bs) ||
				           memcmp(t->datain.data, buf, (size_t)k * bs)) {
					fprintf(stderr, "iscsiclient: blocks %" PRIu64 "..%" PRIu64 " differ\n",
					        lba + done, lba + done + k - 1);
					rc = 1;
				}
				scsi_free_scsi_task(t);
			}
		}
		free(buf);
	} else if ((!strcmp(op, "register") && argc >= 4) || (!strcmp(op, "reserve") && argc >= 5)) {
		struct scsi_persistent_reserve_out_basic p = {0};
		int reg = !strcmp(op, "register");
		uint64_t key = strtoull(argv[3], NULL, 0);
		if (!reg) {
			p.service_action_reservation_key = key;
			t = iscsi_persistent_reserve_out_sync(
			    c, lun, SCSI_PERSISTENT_RESERVE_REGISTER_AND_IGNORE_EXISTING_KEY, 0, 0, &p);
			rc = task_ok(c, t, "register") ? 0 : 1;
			scsi_free_scsi_task(t);
			memset(&p, 0, sizeof(p));
		}
		p.reservation_key = reg ? 0 : key;
		p.service_action_reservation_key = reg ? key : 0;
		t = iscsi_persistent_reserve_out_sync(
		    c, lun, reg ? SCSI_PERSISTENT_RESERVE_REGISTER_AND_IGNORE_EXISTING_KEY
		                : SCSI_PERSISTENT_RESERVE_RESERVE,
		    0, reg ? 0 : atoi(argv[4]), &p);
		if (!task_ok(c, t, op))
			rc = 1;
		scsi_free_scsi_task(t);
	} else if (!strcmp(op, "flight") && argc >= 6) {
		rc = do_flight(c, lun, bs, strtoull(argv[3], NULL, 0), strtoull(argv[4], NULL, 0),
		               strtoull(argv[5], NULL, 0));
	} else if (!strcmp(op, "prin")) {
		t = iscsi_persistent_reserve_in_sync(c, lun, SCSI_PERSISTENT_RESERVE_READ_KEYS, 4096);
		struct scsi_persistent_reserve_in_read_keys *k = t && t->status == SCSI_STATUS_GOOD
		                                                      ? scsi_datain_unmarshall(t) : NULL;
		if (!k) {
			rc = 1;
		} else {
			printf("keys");
			for (int i = 0; i < k->num_keys; i++)
				printf(" 0x%" PRIx64, k->keys[i]);
			printf("\n");
		}
		scsi_free_scsi_task(t);
		t = iscsi_persistent_reserve_in_sync(c, lun, SCSI_PERSISTENT_RESERVE_READ_RESERVATION,
		                                     4096);
		struct scsi_persistent_reserve_in_read_reservation *r =
		    t && t->status == SCSI_STATUS_GOOD ? scsi_datain_unmarshall(t) : NULL;
		if (!r)
			rc = 1;
		else if (r->reserved)
			printf("reservation 0x%" PRIx64 " %d\n", r->reservation_key, r->pr_type);
		else
			printf("reservation none\n");
		scsi_free_scsi_task(t);
	} else if (!strcmp(op, "wce")) {
		int v[2] = {-1, -1};
		for (int pc = 0; pc < 2 && rc == 0; pc++) {
			/* pass 0: current (and the MODE SELECT), pass 1: saved */
			t = iscsi_modesense10_sync(c, lun, 0, 1, pc ? SCSI_MODESENSE_PC_SAVED
			                                           : SCSI_MODESENSE_PC_CURRENT,
			                           SCSI_MODEPAGE_CACHING, 0, 255);
			struct scsi_mode_sense *ms = task_ok(c, t, "mode sense") ? scsi_datain_unmarshall(t)
			                                                          : NULL;
			struct scsi_mode_page *mp = ms ? scsi_modesense_get_page(ms, SCSI_MODEPAGE_CACHING, 0)
			                               : NULL;
			if (!mp) {
				rc = 1;
			} else if (pc == 0 && argc > 3) {
				mp->caching.wce = atoi(argv[3]) ? 1 : 0;
				mp->ps = 0; /* reserved in MODE SELECT */
				struct scsi_task *st = iscsi_modeselect10_sync(c, lun, 1,
				                                               argc > 4 ? atoi(argv[4]) : 0, mp);
				if (!task_ok(c, st, "mode select"))
					rc = 1;
				scsi_free_scsi_task(st);
				pc = -1; /* read the current values again */
			} else {
				v[pc] = mp->caching.wce;
			}
			scsi_free_scsi_task(t);
			if (pc == -1)
				argc = 3;
		}
		if (rc == 0)
			printf("wce %d saved %d\n", v[0], v[1]);
	} else if (!strcmp(op, "hold")) {
		/* Logged in: say so, then keep the session (answering the target's NOP-In
		 * pings) until stdin ends; then log out. */
		printf("held\n");
		fflush(stdout);
		for (;;) {
			struct pollfd pf[2] = {
				{.fd = iscsi_get_fd(c), .events = (short)iscsi_which_events(c)},
				{.fd = 0, .events = POLLIN}};
			if (poll(pf, 2, 1000) < 0 || iscsi_service(c, pf[0].revents) < 0) {
				fprintf(stderr, "iscsiclient: %s\n", iscsi_get_error(c));
				rc = 1;
				break;
			}
			char b[64];
			if (pf[1].revents && read(0, b, sizeof(b)) <= 0)
				break;
		}
	} else {
		fprintf(stderr, "iscsiclient: unknown or incomplete command %s\n", op);
		rc = 2;
	}
	iscsi_logout_sync(c);
	iscsi_destroy_url(u);
	iscsi_destroy_context(c);
	return rc;
}
