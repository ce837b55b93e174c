/* tests/testutil.h: shared helpers for the C tests (tests/libtestutil.a): checks,
 * temp dirs, file disks, arrays and stores, deterministic data. A test prints one line per check group and exits 0 on
 * success, 1 on failure, 77 to skip (automake's convention). */
#ifndef BKS_TESTUTIL_H
#define BKS_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/bks.h"
#include "storage/array.h"
#include "storage/disk.h"
#include "storage/fault.h"

/* The one check family of the C tests. Each counts into tu_checks/tu_failures;
 * tu_finish() prints the totals and gives the exit code. A failure goes to stderr
 * with the expression and location; a pass prints its message ("ok   ...") only
 * with BKS_TEST_VERBOSE set. The message arguments are evaluated only when printed. */
extern int tu_failures;
extern int tu_checks;
extern int tu_misses;
int tu_verbose(void); /* BKS_TEST_VERBOSE is set */

#define TU_FAIL_MSG_(cond, ...)                                                     \
	do {                                                                            \
		tu_failures++;                                                              \
		fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);             \
		fprintf(stderr, __VA_ARGS__);                                               \
		fputc('\n', stderr);                                                        \
	} while (0)

#define CHECK(cond, ...)                                                            \
	do {                                                                            \
		tu_checks++;                                                                \
		if (!(cond)) {                                                              \
			TU_FAIL_MSG_(cond, __VA_ARGS__);                                        \
		} else if (tu_verbose()) {                                                  \
			printf("ok   ");                                                        \
			printf(__VA_ARGS__);                                                    \
			putchar('\n');                                                          \
		}                                                                           \
	} while (0)

/* Like CHECK, but stops the test: for preconditions later checks depend on.
 * cond is evaluated once (it often has side effects). */
#define REQUIRE(cond, ...)                                                          \
	do {                                                                            \
		int req_ok_ = !!(cond);                                                     \
		tu_checks++;                                                                \
		if (!req_ok_) {                                                             \
			TU_FAIL_MSG_(cond, __VA_ARGS__);                                        \
			return tu_finish();                                                     \
		}                                                                           \
	} while (0)

/* REQUIRE for helpers that return void: counts the failure and returns. */
#define REQUIRE_VOID(cond, ...)                                                     \
	do {                                                                            \
		int req_ok_ = !!(cond);                                                     \
		tu_checks++;                                                                \
		if (!req_ok_) {                                                             \
			TU_FAIL_MSG_(cond, __VA_ARGS__);                                        \
			return;                                                                 \
		}                                                                           \
	} while (0)

/* REQUIRE for a helper whose caller cannot go on either: ends the test. */
#define REQUIRE_EXIT(cond, ...)                                                     \
	do {                                                                            \
		int req_ok_ = !!(cond);                                                     \
		tu_checks++;                                                                \
		if (!req_ok_) {                                                             \
			TU_FAIL_MSG_(cond, __VA_ARGS__);                                        \
			exit(tu_finish());                                                      \
		}                                                                           \
	} while (0)

/* The quiet variant for inner loops: a miss counts in tu_misses (not a check) and
 * only the first ten print; the loop's caller then CHECKs tu_misses == 0. */
#define CHECK_LOOP(cond, ...)                                                       \
	do {                                                                            \
		if (!(cond) && tu_misses++ < 10) {                                          \
			fprintf(stderr, "  miss %s:%d: %s: ", __FILE__, __LINE__, #cond);       \
			fprintf(stderr, __VA_ARGS__);                                           \
			fputc('\n', stderr);                                                    \
		}                                                                           \
	} while (0)

int tu_finish(void); /* prints "N checks, N failed", returns the exit code */

/* A fresh directory for disk files (under $BKS_TEST_DIR, else /var/tmp), removed by
 * tu_cleanup(). Returns its path (static storage). */
const char *tu_tmpdir(const char *name);
void tu_cleanup(void);
/* The same under dflt when it is writable (e.g. /dev/shm for tests whose subject is
 * crash logic, where the fault layer models the disk cache and real flushes only
 * cost time). */
const char *tu_tmpdir_in(const char *name, const char *dflt);

/* Create (or truncate) a sparse file of size bytes; returns its path (freed by
 * tu_finish). */
char *tu_file_disk(const char *dir, const char *name, uint64_t size);

/* Open paths as disks, wrapping each in the fault layer when w is not NULL.
 * Aborts the test on failure (a harness problem, not a product failure). */
void tu_open(const char *const *paths, int n, flt_world *w, disk **out);
disk *tu_open1(const char *path, flt_world *w);

/* Deterministic content of a row's data: the same (seed, row, gen) always gives the
 * same bytes, so a test can verify without keeping a copy. */
void tu_fill(uint64_t seed, uint64_t row, uint64_t gen, void *buf, size_t len);
int tu_verify_rows(arr *a, uint64_t seed, uint64_t first, uint64_t n, uint64_t gen);

/* Print array events to stderr when BKS_TEST_VERBOSE is set. */
void tu_events(void *ctx, int level, const char *msg);

void *tu_alloc(size_t len); /* aligned, zeroed, aborts on failure */

/* An array for store tests: n file disks of mb MiB in dir, strip 64 KiB (so rows are
 * small and a test makes many of them). Disks are wrapped in w when given. */
arr *tu_make_array(const char *dir, int n, uint64_t mb, flt_world *w, char **paths_out);
/* The general form: n members and nspares spares (files diskI, spareI) of mb MiB,
 * created with cfg (NULL: the defaults with a 64 KiB strip; events to tu_events
 * unless cfg names a callback). disks_out (NULL: not wanted) receives the n +
 * nspares disks, for fault injection. Exits 99 when the array cannot be made. */
arr *tu_make_array_cfg(const char *dir, int n, int nspares, uint64_t mb, const arr_config *cfg,
                       flt_world *w, char **paths_out, disk **disks_out);
/* Import the same disks again. */
arr *tu_import_array(char **paths, int n, flt_world *w);

/* Backup generations: gen 1 is `base` bytes of pseudo-random data from seed; gen
 * g > 1 mutates gen g-1 by about frac of its size (overwrites, insertions,
 * deletions), by bench/gen_generations.py, the benchmarks' generator (found under
 * $top_srcdir). Writes dir/genNN.img for g = 1..n and returns 0, or -1. */
int tu_generations(const char *dir, uint64_t base, int n, double frac, uint64_t seed);
void tu_mkdir(const char *path); /* aborts the test on failure */
/* Read a whole file into a malloc'd buffer. */
uint8_t *tu_read_file(const char *path, size_t *len);

/* The dedup store's data segments as the rows hold them: chunk count and stored
 * bytes (what the store's accounting must equal). 0, or the first table read's
 * -errno with *bad_row set (NULL: not wanted). */
struct store;
/* Import the disks again and open their store (params NULL: defaults); NULL, with the
 * reason on stderr, when either fails. */
struct store *tu_store_reopen(char **paths, int n, flt_world *w);
int tu_store_scan(struct store *s, uint64_t *chunks, uint64_t *stored, uint64_t *bad_row);
/* CHECK that the store's accounting (unique chunks, stored bytes) equals what a scan
 * of its data rows finds. */
void tu_check_accounting(struct store *s, const char *when);
/* The first extent of object id that is not a hole (dedup/store_repl.h), into *out:
 * 1, or 0 when it has none or the walk failed. */
struct store_mapext;
int tu_first_chunk(struct store *s, uint64_t id, struct store_mapext *out);

/* Put, read back, compare: the store tests' one helper set. Each says on stderr
 * what differed when it returns 0.
 * tu_store_same: object id reads back as exactly want[0..len) (one byte more is
 * asked for, so a longer object fails too); 1 or 0.
 * tu_store_same_seed: the same against tu_fill(seed, 0, 0) bytes of len.
 * tu_store_put_seed: store_put of those bytes; store_put's result.
 * tu_store_verify_clean: store_verify finds nothing bad and `objects` objects
 * (TU_ANY_OBJECTS: any number); 1 or 0. */
#define TU_ANY_OBJECTS UINT64_MAX
int tu_store_same(struct store *s, uint64_t id, const uint8_t *want, size_t len);
int tu_store_same_seed(struct store *s, uint64_t id, uint64_t seed, size_t len);
int tu_store_put_seed(struct store *s, uint64_t seed, size_t len, uint64_t *id);
int tu_store_verify_clean(struct store *s, uint64_t objects);

#endif
