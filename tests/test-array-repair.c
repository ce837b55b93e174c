/* test-array-repair: a repair must never damage a good strip.
 *
 * A read that fails its checksum reconstructs the row and rewrites what it found
 * bad. The defect (docs/reliability.md, "A repair wrote a good strip wrong"): the
 * reconstruction was accepted when the caller's checksum passed over the requested
 * range only, and every strip it had assumed bad was written back whole. With more
 * damage than the codes can locate, the reconstruction that passes the range check
 * can be wrong elsewhere: a good strip (or the good part of a bad one) was rewritten
 * with wrong bytes. Each case damages one row on the medium (the disk files, behind
 * the array's back), reads a range of it, closes the array and compares EVERY strip
 * of the row on the medium with the original: a strip the test left alone must be
 * unchanged, a damaged one either repaired or left exactly as damaged.
 *
 * Cases (row R of a 6-disk array, data strips 0..3, P = 4, Q = 5):
 *   mask3     the same XOR mask on data strip 2, on P and on Q at the same bytes (the
 *             reported case: the pair {0, 2} reconstructs strip 2 right over the
 *             range and strip 0 wrong);
 *   disjoint  strip 2 bad under the range, strip 1 bad elsewhere (recovering strip 2
 *             from P fixes the range and breaks the rest of strip 2);
 *   degraded  strip 3's disk gone, strip 2 bad under the range, strip 1 elsewhere;
 *   eio       strip 2's disk returns EIO for the row, strip 1 is silently bad under
 *             the same bytes, an unverified read (arr_read) of strip 2;
 *   single    one bad strip (a control: still repaired, from P/Q alone).
 * Each runs without and with the store's whole-row checksums (arr_set_scrub_verify):
 * with them the two-strip cases must be repaired completely. Then each once more
 * with a scrub instead of the read (with the checksums). */
#include <config.h>

#include "tests/testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "raid/raid.h"
#include "storage/label.h"

#define N 6
#define K (N - 2)
#define STRIP (64u << 10)
#define ROWS 8
#define R 5
#define SEED 9191

static arr_config cfg;
static raid_codec *codec;

static int verify_row(void *ctx, uint64_t row, size_t off, const void *buf, size_t len)
{
	(void)ctx;
	uint8_t *want = tu_alloc((size_t)K * STRIP);
	tu_fill(SEED, row, 0, want, (size_t)K * STRIP);
	int ok = !memcmp(want + off, buf, len);
	free(want);
	return ok;
}

/* The row as written: data from the seed, P and Q encoded. */
static void orig_row(uint64_t row, uint8_t *buf)
{
	uint8_t *p[K + 2];
	for (int i = 0; i < K + 2; i++)
		p[i] = buf + (size_t)i * STRIP;
	tu_fill(SEED, row, 0, buf, (size_t)K * STRIP);
	raid_encode(codec, STRIP, p);
}

static void medium_io(char **paths, int st, uint8_t *buf, int wr)
{
	int fd = open(paths[raid_strip_disk(N, R, st)], O_RDWR);
	off_t at = (off_t)(ARR_DATA_OFF + (uint64_t)R * STRIP);
	ssize_t n = fd < 0 ? -1 : wr ? pwrite(fd, buf, STRIP, at) : pread(fd, buf, STRIP, at);
	if (n != (ssize_t)STRIP)
		abort();
	if (wr)
		fsync(fd);
	close(fd);
}

/* XOR len bytes at off of strip st (on the medium) with the mask. */
static void damage(char **paths, int st, size_t off, size_t len, const uint8_t *mask)
{
	uint8_t *s = tu_alloc(STRIP);
	medium_io(paths, st, s, 0);
	for (size_t i = 0; i < len; i++)
		s[off + i] ^= mask[i];
	medium_io(paths, st, s, 1);
	free(s);
}

enum { MASK3, DISJOINT, DEGRADED, EIO_READ, SINGLE, NCASES };
static const char *const case_name[NCASES] = {"mask3", "disjoint", "degraded", "eio", "single"};

#define CHUNK_OFF 8192
#define CHUNK_LEN 4096
#define FAR_OFF 40960 /* the other damage, outside the read's range */

struct result {
	int rc, bytes_right, strips_made_wrong, strips_damaged, strips_repaired;
	uint64_t unrecoverable; /* scrub */
};

/* One case: damage row R, then a read of strip 2's chunk (scrub 0) or a whole scrub
 * (scrub 1), then every strip of the row compared on the medium. */
static void run_case(const char *top, int c, int sums, int scrub, struct result *res)
{
	char dir[600], *paths[N];
	bks_err e = {0};
	size_t rb = (size_t)K * STRIP;
	snprintf(dir, sizeof(dir), "%s/%s-%d-%d", top, case_name[c], sums, scrub);
	tu_mkdir(dir);
	arr *a = tu_make_array_cfg(dir, N, 0, 8, &cfg, NULL, paths, NULL);
	uint8_t *rows = tu_alloc(rb * ROWS);
	for (uint64_t r = 0; r < ROWS; r++)
		tu_fill(SEED, r, 0, rows + r * rb, rb);
	REQUIRE_EXIT(arr_write_rows(a, 0, ROWS, rows, &e) == 0 && arr_commit(a, "T", 1, &e) == 0,
	             "write: %s", e.msg);
	free(rows);
	arr_close(a);

	uint8_t mask[CHUNK_LEN];
	for (int i = 0; i < CHUNK_LEN; i++)
		mask[i] = (uint8_t)(1 + (i * 37 + c * 11) % 255); /* never 0 */
	int j = 2, lost_st = -1, eio_st = -1;
	switch (c) {
	case MASK3:
		damage(paths, j, CHUNK_OFF, CHUNK_LEN, mask);
		damage(paths, K, CHUNK_OFF, CHUNK_LEN, mask);
		damage(paths, K + 1, CHUNK_OFF, CHUNK_LEN, mask);
		break;
	case DISJOINT:
		damage(paths, j, CHUNK_OFF, CHUNK_LEN, mask);
		damage(paths, 1, FAR_OFF, CHUNK_LEN, mask);
		break;
	case DEGRADED:
		lost_st = 3;
		damage(paths, j, CHUNK_OFF, CHUNK_LEN, mask);
		damage(paths, 1, FAR_OFF, CHUNK_LEN, mask);
		break;
	case EIO_READ:
		eio_st = j;
		damage(paths, 1, CHUNK_OFF, CHUNK_LEN, mask);
		break;
	case SINGLE:
		damage(paths, j, CHUNK_OFF, CHUNK_LEN, mask);
		break;
	}
	uint8_t *orig = tu_alloc((size_t)(K + 2) * STRIP), *before = tu_alloc((size_t)(K + 2) * STRIP);
	orig_row(R, orig);
	for (int st = 0; st < K + 2; st++)
		medium_io(paths, st, before + (size_t)st * STRIP, 0);

	flt_world *w;
	disk *d[N];
	flt_world_new(5, &w);
	tu_open((const char *const *)paths, N, w, d);
	REQUIRE_EXIT(arr_import(&cfg, d, N, &a, &e) == 0, "import: %s", e.msg);
	if (sums)
		arr_set_scrub_verify(a, verify_row, NULL);
	if (lost_st >= 0) {
		char nm[16];
		snprintf(nm, sizeof(nm), "slot%d", raid_strip_disk(N, R, lost_st));
		REQUIRE_EXIT(arr_fail(a, nm, &e) == 0, "fail %s: %s", nm, e.msg);
	}
	if (eio_st >= 0)
		flt_add_eio(d[raid_strip_disk(N, R, eio_st)], FLT_READ,
		            ARR_DATA_OFF + (uint64_t)R * STRIP, STRIP);

	size_t off = (size_t)j * STRIP + CHUNK_OFF;
	uint8_t *got = tu_alloc(CHUNK_LEN);
	if (scrub) {
		arr_status st;
		REQUIRE_EXIT(arr_scrub_start(a, &e) == 0 && arr_bg_run(a) == 0, "scrub: %s", e.msg);
		arr_get_status(a, &st);
		res->unrecoverable = st.last_scrub.unrecoverable;
		res->rc = 0;
		res->bytes_right = 1;
	} else {
		res->rc = eio_st >= 0 ? arr_read(a, R, off, got, CHUNK_LEN)
		                      : arr_read_verify(a, R, off, got, CHUNK_LEN, verify_row, NULL);
		res->bytes_right = res->rc == 0 && !memcmp(got, orig + off, CHUNK_LEN);
	}
	arr_close(a);
	flt_world_free(w);

	/* Every strip of the row, on the medium. */
	res->strips_made_wrong = res->strips_damaged = res->strips_repaired = 0;
	uint8_t *now = tu_alloc(STRIP);
	for (int st = 0; st < K + 2; st++) {
		const uint8_t *o = orig + (size_t)st * STRIP, *b = before + (size_t)st * STRIP;
		medium_io(paths, st, now, 0);
		int was_bad = memcmp(o, b, STRIP) != 0 || st == eio_st;
		int is_orig = !memcmp(now, o, STRIP), is_before = !memcmp(now, b, STRIP);
		res->strips_damaged += was_bad;
		if (!is_orig && !is_before) {
			res->strips_made_wrong++;
			size_t first = 0;
			while (first < STRIP && now[first] == b[first])
				first++;
			fprintf(stderr, "  %s%s: strip %d (%s) rewritten with wrong bytes (first "
			        "change at byte %zu)\n", case_name[c], sums ? "+sums" : "", st,
			        was_bad ? "was bad" : "was GOOD", first);
		} else if (!is_orig && !was_bad) {
			res->strips_made_wrong++;
		} else if (is_orig && memcmp(o, b, STRIP)) {
			res->strips_repaired++;
		}
	}
	free(now);
	free(got);
	free(orig);
	free(before);
}

int main(void)
{
	const char *top = tu_tmpdir_in("array-repair", "/dev/shm");
	arr_config_defaults(&cfg);
	cfg.strip_size = STRIP;
	cfg.name = "repair";
	cfg.bg_min_bps = cfg.bg_max_bps = 0;
	cfg.cksum_err_limit = 1000; /* no faulting: the test looks at the strips */
	cfg.io_err_limit = 1000;
	cfg.ev_fn = tu_events;
	REQUIRE(raid_codec_new(K, STRIP, &codec) == 0, "codec");

	int made_wrong = 0;
	for (int c = 0; c < NCASES; c++) {
		for (int sums = 0; sums < 2; sums++) {
			struct result r;
			run_case(top, c, sums, 0, &r);
			printf("%-8s %-7s read %s (rc %d); strips damaged %d, repaired %d, "
			       "made wrong %d\n", case_name[c], sums ? "+sums" : "", r.bytes_right ?
			       "right" : r.rc ? "failed" : "WRONG", r.rc, r.strips_damaged,
			       r.strips_repaired, r.strips_made_wrong);
			made_wrong += r.strips_made_wrong;
			CHECK(r.strips_made_wrong == 0, "%s%s: no strip rewritten wrong (%d were)",
			      case_name[c], sums ? "+sums" : "", r.strips_made_wrong);
			/* Never wrong bytes: a checksum that passed over the range proves
			 * them; an unverified read may fail, but not lie. */
			CHECK(r.bytes_right || (c == EIO_READ && r.rc == -EIO),
			      "%s%s: read gives the right bytes or EIO (rc %d)", case_name[c],
			      sums ? "+sums" : "", r.rc);
			if (c != EIO_READ)
				CHECK(r.bytes_right, "%s%s: the verified read succeeds",
				      case_name[c], sums ? "+sums" : "");
			/* Repairs that can be proven still happen: one bad strip from P/Q
			 * alone; two bad strips (or one bad and one unreadable) from the
			 * whole-row checksums. Three bad strips, or one lost and two bad,
			 * are beyond RAID-6 even with them: the read gets its bytes and
			 * nothing is written. */
			int want_repair = c == SINGLE || (sums && (c == DISJOINT || c == EIO_READ));
			if (c == MASK3 || c == DEGRADED)
				CHECK(r.strips_repaired == 0, "%s%s: beyond RAID-6, nothing written",
				      case_name[c], sums ? "+sums" : "");
			if (want_repair)
				CHECK(r.strips_repaired == r.strips_damaged - (c == EIO_READ),
				      "%s%s: every damaged strip repaired (%d of %d)", case_name[c],
				      sums ? "+sums" : "", r.strips_repaired, r.strips_damaged);
		}
	}
	/* Scrub with the checksums: the same promises over the whole row. (Without
	 * them a scrub rewrites no silently bad strip at all, since three strips
	 * damaged alike fool the P/Q locator: test-array-scrub3.) */
	for (int c = 0; c < NCASES; c++) {
		struct result r;
		run_case(top, c, 1, 1, &r);
		printf("%-8s scrub   strips damaged %d, repaired %d, made wrong %d; "
		       "unrecoverable %llu\n", case_name[c], r.strips_damaged, r.strips_repaired,
		       r.strips_made_wrong, (unsigned long long)r.unrecoverable);
		made_wrong += r.strips_made_wrong;
		CHECK(r.strips_made_wrong == 0, "%s scrub: no strip rewritten wrong (%d were)",
		      case_name[c], r.strips_made_wrong);
		if (c == MASK3 || c == DEGRADED)
			CHECK(r.strips_repaired == 0 && r.unrecoverable == 1,
			      "%s scrub: beyond RAID-6: reported, nothing written (%d repaired, "
			      "%llu unrecoverable)", case_name[c], r.strips_repaired,
			      (unsigned long long)r.unrecoverable);
		else
			CHECK(r.strips_repaired == r.strips_damaged - (c == EIO_READ) &&
			      r.unrecoverable == 0, "%s scrub: every damaged strip repaired (%d of "
			      "%d)", case_name[c], r.strips_repaired, r.strips_damaged);
	}
	printf("strips rewritten wrong, all cases: %d\n", made_wrong);
	raid_codec_free(codec);
	return tu_finish();
}
