/* fuzz/fuzz.h: what the configuration fuzz targets (fuzz-config, fuzz-ini) share:
 * the entry point, NEED (a property that must hold; a failure aborts, which
 * libFuzzer and fuzz/replay.c report with the input), and the test that a string
 * the INI lexer handed over is printable (no control character but tab). */
#ifndef BKS_FUZZ_H
#define BKS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NEED(cond)                                                                  \
	do {                                                                            \
		if (!(cond)) {                                                              \
			fprintf(stderr, "%s:%d: property failed: %s\n", __FILE__, __LINE__,     \
			        #cond);                                                         \
			abort();                                                                \
		}                                                                           \
	} while (0)

static inline int fuzz_printable(const char *s)
{
	for (; *s; s++)
		if (((unsigned char)*s < 0x20 && *s != '\t') || *s == 0x7f)
			return 0;
	return 1;
}

#endif /* BKS_FUZZ_H */
