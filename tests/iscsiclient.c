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
 *
 * The initiator name is $ISCSI_INITIATOR or iqn.2026-01.io.bkstor.test:client. Exit 0
 * on success, 1 on a failure (the sense on stderr), 2 on a usage error. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
	} else {
		fprintf(stderr, "iscsiclient: unknown or incomplete command %s\n", op);
		rc = 2;
	}
	iscsi_logout_sync(c);
	iscsi_destroy_url(u);
	iscsi_destroy_context(c);
	return rc;
}
