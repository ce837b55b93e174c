/* common/xxh.h: XXH3 for every caller (END digests, item checksums): libxxhash's
 * header, and where the library has its x86 run-time dispatch, that instead. Its
 * macros turn XXH3_64bits, XXH3_128bits_update, ... into the _dispatch versions,
 * which pick the AVX2 or AVX-512 code on first use when the CPU has it: 0.023 ns/B
 * against 0.051 for the SSE2 code the library is built with (4 MiB buffers, this
 * appliance's CPU; bench/RESULTS.md "duplicate ingest CPU"). Same hashes: the
 * digests on the wire and the checksums on disk do not change. (The first use sets
 * the dispatch table from each thread that gets there first: every thread writes
 * the same pointers.) */
#ifndef BKS_XXH_H
#define BKS_XXH_H

#include <xxhash.h>
#if defined(HAVE_XXH_X86DISPATCH_H) && defined(HAVE_XXH3_128BITS_UPDATE_DISPATCH)
#include <xxh_x86dispatch.h>
#endif

#endif
