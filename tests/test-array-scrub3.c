/* test-array-scrub3: a scrub rewrites only what it can prove, on an 8+2 array.
 *
 * The defect (review of the scrub): without data checksums a scrub trusted the P/Q
 * locator, and several strips damaged alike fool it. The same XOR mask on data
 * strips a and b and on Q (or on data strip a, P and Q) leaves P agreeing with the
 * data and Q not, over every damaged byte, exactly as if Q alone were wrong: the
 * scrub rewrote Q, and the row became consistent with two wrong data strips in it
 * (P/Q could no longer see the damage, and the parity a reconstruction with the
 * checksums needed to bring the data back was gone). The rows on the medium are
 * the same as a row whose only damage is Q (shown below with the codec), so no rule
 * over the bytes read can tell the two apart: without checksums a located strip is
 * reported, not rewritten.
 *
 * Each case writes a fresh array, damages strips of row R on the medium (behind the
 * array's back: 512 bytes at the same offset of each damaged strip, XORed with one
 * mask for all of them ("same") or one mask each ("indep")), optionally fails one
 * disk (degraded), scrubs with and without the store's whole-row checksums
 * (arr_set_scrub_verify), then compares every strip of the row on the medium:
 *   - repaired (1 bad strip, 2 bad strips, with checksums): every strip is as
 *     written, the scrub counted them repaired;
 *   - otherwise (3 bad, a lost disk and 2 bad, or no checksums at all): every strip
 *     is byte for byte as it was before the scrub, the row is counted unrecoverable,
 *     an ERR event names it, and the layer above is told (arr_set_bad_row_fn). With
 *     one bad strip and no checksums the event names the strip P/Q point to. */
#include <config.h>

#include "tests/testutil.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "raid/raid.h"
#include "storage/label.h"

#define N 10
#define K (N - 2)
#define P_ K
#define Q_ (K + 1)
#define STRIP (64u << 10)
#define ROWS 4
#define R 2
#define SEED 3303
#define DMG_OFF 4096
#define DMG_LEN 512

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

/* Events and bad-row reports of the current case. */
static int n_err, n_repaired_ev, located = -1;
static int n_bad_rows;
static uint64_t bad_row_seen;

static void on_event(void *ctx, int level, const char *msg)
{
	(void)ctx;
	char want[64];
	snprintf(want, sizeof(want), "scrub: row %d ", R);
	if (strstr(msg, want)) {
		const char *pt = strstr(msg, "point to strip ");
		n_err += level == ARR_EV_ERR;
		n_repaired_ev += strstr(msg, "repaired") != NULL;
		if (pt)
			located = atoi(pt + strlen("point to strip "));
	}
	tu_events(NULL, level, msg);
}

static void on_bad_row(void *ctx, uint64_t row)
{
	(void)ctx;
	n_bad_rows++;
	bad_row_seen = row;
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

static void read_row(char **paths, uint8_t *row)
{
	for (int st = 0; st < K + 2; st++)
		medium_io(paths, st, row + (size_t)st * STRIP, 0);
}

enum { SAME, INDEP };
typedef struct tcase {
	const char *name;
	int nbad, bad[3];
	int kind;           /* SAME or INDEP masks */
	int lost;           /* strip whose disk is failed before the scrub, -1: none */
} tcase;

static const tcase cases[] = {
	{"clean", 0, {0}, INDEP, -1},
	{"1 data (d0)", 1, {0}, INDEP, -1},
	{"1 data (d5)", 1, {5}, INDEP, -1},
	{"1 P", 1, {P_}, INDEP, -1},
	{"1 Q", 1, {Q_}, INDEP, -1},
	{"2 data indep", 2, {1, 4}, INDEP, -1},
	{"2 data same (looks like Q)", 2, {6, 7}, SAME, -1},
	{"data + Q", 2, {2, Q_}, INDEP, -1},
	{"data + P", 2, {3, P_}, INDEP, -1},
	{"P + Q", 2, {P_, Q_}, INDEP, -1},
	{"3: d1 d4 Q same (looks like Q)", 3, {1, 4, Q_}, SAME, -1},
	{"3: d2 P Q same (looks like Q)", 3, {2, P_, Q_}, SAME, -1},
	{"3: d0 d3 d6 indep", 3, {0, 3, 6}, INDEP, -1},
	{"3: d1 d2 P indep", 3, {1, 2, P_}, INDEP, -1},
	{"lost d5 + d1 d4 indep", 2, {1, 4}, INDEP, 5},
	{"lost d5 + d2 d7 same", 2, {2, 7}, SAME, 5},
	{"lost Q + d0 d3 indep", 2, {0, 3}, INDEP, Q_},
};
#define NCASES ((int)(sizeof(cases) / sizeof(cases[0])))

/* 1: the scrub must repair the case; 0: it must report it and write nothing. */
static int repairable(const tcase *c, int sums)
{
	if (c->nbad == 0)
		return 1;
	if (!sums)
		return 0;
	return c->lost < 0 && c->nbad <= 2;
}

static int run_case(const char *top, int ci, int sums)
{
	const tcase *c = &cases[ci];
	char dir[600], *paths[N];
	bks_err e = {0};
	bks_rng rng;
	int fails0 = tu_failures;

	snprintf(dir, sizeof(dir), "%s/c%d-%d", top, ci, sums);
	tu_mkdir(dir);
	arr *a = tu_make_array_cfg(dir, N, 0, 8, &cfg, NULL, paths, NULL);
	size_t rb = arr_row_bytes(a), rowlen = (size_t)(K + 2) * STRIP;
	uint8_t *buf = tu_alloc(rb * ROWS);
	for (uint64_t r = 0; r < ROWS; r++)
		tu_fill(SEED, r, 0, buf + r * rb, rb);
	REQUIRE_EXIT(arr_write_rows(a, 0, ROWS, buf, &e) == 0 && arr_commit(a, "T", 1, &e) == 0,
	             "write: %s", e.msg);
	arr_close(a);
	free(buf);

	uint8_t *orig = tu_alloc(rowlen), *before = tu_alloc(rowlen), *after = tu_alloc(rowlen);
	read_row(paths, orig);
	bks_rng_seed(&rng, 77 + (uint64_t)ci);
	uint8_t mask[DMG_LEN];
	for (int b = 0; b < c->nbad; b++) {
		if (b == 0 || c->kind == INDEP)
			for (int i = 0; i < DMG_LEN; i++)
				mask[i] = (uint8_t)(1 + bks_rng_below(&rng, 255));
		uint8_t *s = orig + (size_t)c->bad[b] * STRIP, *t = tu_alloc(STRIP);
		memcpy(t, s, STRIP);
		for (int i = 0; i < DMG_LEN; i++)
			t[DMG_OFF + i] ^= mask[i];
		medium_io(paths, c->bad[b], t, 1);
		free(t);
	}
	read_row(paths, before);

	disk *d[N];
	tu_open((const char *const *)paths, N, NULL, d);
	int r = arr_import(&cfg, d, N, &a, &e);
	REQUIRE_EXIT(r == 0, "import: %s", bks_errmsg(&e, r));
	arr_set_event_fn(a, on_event, NULL);
	arr_set_bad_row_fn(a, on_bad_row, NULL);
	if (sums)
		arr_set_scrub_verify(a, verify_row, NULL);
	if (c->lost >= 0) {
		char nm[16];
		snprintf(nm, sizeof(nm), "slot%d", raid_strip_disk(N, R, c->lost));
		REQUIRE_EXIT(arr_fail(a, nm, &e) == 0, "fail %s: %s", nm, e.msg);
	}
	n_err = n_repaired_ev = n_bad_rows = 0;
	located = -1;
	bad_row_seen = UINT64_MAX;
	REQUIRE_EXIT(arr_scrub_start(a, &e) == 0 && arr_bg_run(a) == 0, "scrub: %s", e.msg);
	arr_status st;
	arr_get_status(a, &st);
	const arr_scrub_status *sc = &st.last_scrub;
	arr_close(a);
	read_row(paths, after);

	int same_as_before = 1, made_wrong = 0, now_orig = 1;
	for (int s = 0; s < K + 2; s++) {
		size_t o = (size_t)s * STRIP;
		if (s == c->lost)
			continue; /* that disk is out of the array: nothing reads or writes it */
		int eq_b = !memcmp(after + o, before + o, STRIP);
		int eq_o = !memcmp(after + o, orig + o, STRIP);
		same_as_before &= eq_b;
		now_orig &= eq_o;
		made_wrong += !eq_b && !eq_o;
	}
	const char *mode = sums ? "+sums" : "      ";
	int fix = repairable(c, sums);
	printf("%-32s %s found %llu repaired %llu unrecoverable %llu; row on disk: %s%s\n",
	       c->name, mode, (unsigned long long)sc->errors_found,
	       (unsigned long long)sc->repaired, (unsigned long long)sc->unrecoverable,
	       now_orig ? (c->nbad ? "REPAIRED" : "clean") : same_as_before ? "unchanged"
	                                                                  : "CHANGED",
	       made_wrong ? " (strips rewritten WRONG)" : "");
	CHECK(made_wrong == 0, "%s%s: %d strips rewritten with wrong bytes", c->name, mode,
	      made_wrong);
	CHECK(sc->rows_checked == ROWS, "%s%s: rows checked %llu", c->name, mode,
	      (unsigned long long)sc->rows_checked);
	if (c->nbad == 0) {
		CHECK(sc->errors_found == 0 && n_bad_rows == 0 && now_orig,
		      "%s%s: nothing found", c->name, mode);
	} else if (fix) {
		CHECK(now_orig, "%s%s: every strip as written after the scrub", c->name, mode);
		CHECK(sc->repaired == (uint64_t)c->nbad && sc->unrecoverable == 0,
		      "%s%s: %d repaired (%llu), none unrecoverable (%llu)", c->name, mode,
		      c->nbad, (unsigned long long)sc->repaired,
		      (unsigned long long)sc->unrecoverable);
		CHECK(n_bad_rows == 0 && n_err == 0, "%s%s: no bad row reported (%d, %d ERR)",
		      c->name, mode, n_bad_rows, n_err);
	} else {
		CHECK(same_as_before, "%s%s: the row on disk is byte for byte as before the scrub",
		      c->name, mode);
		CHECK(sc->repaired == 0 && sc->unrecoverable == 1 && sc->errors_found >= 1,
		      "%s%s: reported unrecoverable (found %llu, repaired %llu, unrecoverable "
		      "%llu)", c->name, mode, (unsigned long long)sc->errors_found,
		      (unsigned long long)sc->repaired, (unsigned long long)sc->unrecoverable);
		CHECK(n_err == 1 && n_bad_rows == 1 && bad_row_seen == R,
		      "%s%s: one ERR event (%d) and the row told to the layer above (%d, row "
		      "%llu)", c->name, mode, n_err, n_bad_rows, (unsigned long long)bad_row_seen);
		if (c->nbad == 1 && c->lost < 0)
			CHECK(located == c->bad[0], "%s%s: the event names strip %d as the one P/Q "
			      "point to (named %d)", c->name, mode, c->bad[0], located);
	}
	free(orig);
	free(before);
	free(after);
	return tu_failures == fails0;
}

/* Why no rule can do better without checksums: the medium after "the same mask on
 * data strip a, P and Q" is exactly the medium of another row whose only damage is
 * Q. Built here with the codec. */
static void aliasing_shown(void)
{
	uint8_t *t[K + 2], *u[K + 2];
	size_t len = 4096;
	int a = 2, bad = -1;
	bks_rng rng;
	bks_rng_seed(&rng, 5);
	for (int i = 0; i < K + 2; i++) {
		t[i] = tu_alloc(len);
		u[i] = tu_alloc(len);
	}
	for (int i = 0; i < K; i++)
		bks_rng_fill(&rng, t[i], len);
	raid_encode(codec, len, t);
	/* Row T damaged on strips a, P, Q by mask m. */
	uint8_t m[64];
	for (int i = 0; i < 64; i++)
		m[i] = (uint8_t)(1 + i);
	/* Row U: T's data with strip a XORed by m, encoded: a different, sound row. */
	for (int i = 0; i < K; i++)
		memcpy(u[i], t[i], len);
	for (int i = 0; i < 64; i++)
		u[a][i] ^= m[i];
	raid_encode(codec, len, u);
	for (int s = 0; s < 3; s++) {
		int st = s == 0 ? a : s == 1 ? P_ : Q_;
		for (int i = 0; i < 64; i++)
			t[st][i] ^= m[i];
	}
	/* T damaged on three strips vs. U damaged on Q alone: same bytes but Q. */
	int same_but_q = 1;
	for (int i = 0; i < K + 1; i++)
		same_but_q &= !memcmp(t[i], u[i], len);
	enum raid_check_result cr = raid_check(codec, len, t, &bad);
	CHECK(same_but_q && cr == RAID_CHECK_ONE_BAD && bad == Q_,
	      "three strips damaged alike read as 'Q alone is bad' (%d, check %d names %d)",
	      same_but_q, (int)cr, bad);
	/* And Q of the damaged T is what damage on U's Q alone could have left. */
	printf("3 strips damaged alike (d%d, P, Q) = a sound row with only Q damaged, for "
	       "every byte but Q's: %s; the P/Q locator names strip %d\n", a,
	       same_but_q ? "yes" : "no", bad);
	for (int i = 0; i < K + 2; i++) {
		free(t[i]);
		free(u[i]);
	}
}

int main(void)
{
	const char *top = tu_tmpdir_in("array-scrub3", "/dev/shm");
	arr_config_defaults(&cfg);
	cfg.strip_size = STRIP;
	cfg.name = "scrub3";
	cfg.bg_min_bps = cfg.bg_max_bps = 0;
	cfg.cksum_err_limit = 1000; /* no faulting: the test looks at the strips */
	cfg.io_err_limit = 1000;
	cfg.ev_fn = tu_events;
	REQUIRE(raid_codec_new(K, STRIP, &codec) == 0, "codec");

	aliasing_shown();
	int bad_cases = 0;
	for (int sums = 1; sums >= 0; sums--)
		for (int ci = 0; ci < NCASES; ci++)
			bad_cases += !run_case(top, ci, sums);
	printf("cases that failed: %d of %d\n", bad_cases, 2 * NCASES);
	raid_codec_free(codec);
	return tu_finish();
}
