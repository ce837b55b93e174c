/* tests/testutil.h: shared helpers for the C tests: checks, temp dirs, file disks,
 * deterministic row data. A test prints one line per check group and exits 0 on
 * success, 1 on failure, 77 to skip (automake's convention). */
#ifndef BKS_TESTUTIL_H
#define BKS_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/bks.h"
#include "storage/array.h"
#include "storage/disk.h"
#include "storage/fault.h"

extern int tu_failures;
extern int tu_checks;

#define CHECK(cond, ...)                                                            \
	do {                                                                            \
		tu_checks++;                                                                \
		if (!(cond)) {                                                              \
			tu_failures++;                                                          \
			fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);         \
			fprintf(stderr, __VA_ARGS__);                                           \
			fputc('\n', stderr);                                                    \
		}                                                                           \
	} while (0)

/* Like CHECK, but stops the test: for preconditions later checks depend on.
 * cond is evaluated once (it often has side effects). */
#define REQUIRE(cond, ...)                                                          \
	do {                                                                            \
		int req_ok_ = !!(cond);                                                     \
		tu_checks++;                                                                \
		if (!req_ok_) {                                                             \
			tu_failures++;                                                          \
			fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);         \
			fprintf(stderr, __VA_ARGS__);                                           \
			fputc('\n', stderr);                                                    \
			return tu_finish();                                                     \
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
/* Import the same disks again. */
arr *tu_import_array(char **paths, int n, flt_world *w);

/* Backup generations: gen 1 is `base` bytes of pseudo-random data (or the file from
 * ../shared/bench/gen_generations.py when that script is there); gen g > 1 mutates
 * gen g-1 by about frac of its size (overwrites, insertions, deletions). Writes
 * dir/genNN.img for g = 1..n and returns 0, or -1. Uses the shared script when it
 * can, so tests and benchmarks see the same kind of data. */
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

#endif
