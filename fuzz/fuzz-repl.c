/* fuzz-repl: libFuzzer target for the replication protocol's decoders (proto/repl.c):
 * the bytes a peer sends after the TLS handshake (and, for PAIR, an unpinned peer
 * while a pairing token is active).
 *
 * Input: byte 0 picks a message type; the rest is a frame, as tests/test-repl-proto
 * --seeds writes them. The rest goes to the header decoder and, when it accepts, the
 * decoder of the header's type; and to the picked type's decoder over the rest after
 * 16 bytes. Properties (abort() if broken): no out-of-bounds read (ASan), decoded
 * paths pass wire_path_check, and the encoding is canonical: whatever decodes
 * re-encodes to exactly the bytes it came from. */
#include <config.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/repl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t out[REPL_HDR_LEN + REPL_MAX_PAYLOAD + 64];
static wire_fp fps[WIRE_FP_MAX];

static void check(uint8_t type, const uint8_t *p, size_t n)
{
	repl_msg m;
	if (repl_msg_decode(type, p, n, &m, NULL) != 0)
		return;
	if ((type == REPL_FILE || type == REPL_MKDIR || type == REPL_ATTR || type == REPL_DELETE ||
	     type == REPL_RENAME || type == REPL_SYMLINK) &&
	    wire_path_check(m.path.p, m.path.len, NULL) != 0)
		abort();
	uint32_t k = 0;
	if (type == REPL_FP_LIST || type == REPL_WANT_LIST || type == REPL_FETCH) {
		const wire_fp_list *l = type == REPL_FP_LIST ? &m.fp_list : &m.want_list;
		k = l->count;
		for (uint32_t i = 0; i < k; i++)
			wire_fp_list_get(l, i, &fps[i]);
	}
	int r = repl_msg_encode(out, sizeof(out), &m, k ? fps : NULL, k);
	if (r < REPL_HDR_LEN || (size_t)r != REPL_HDR_LEN + n || memcmp(out + REPL_HDR_LEN, p, n))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint8_t pick = data[0];
	const uint8_t *b = data + 1;
	size_t n = size - 1;
	repl_hdr h;
	if (repl_hdr_decode(b, n, &h, NULL) == 0 && n - REPL_HDR_LEN >= h.len)
		check(h.type, b + REPL_HDR_LEN, h.len);
	if (n > REPL_HDR_LEN && n - REPL_HDR_LEN <= REPL_MAX_PAYLOAD)
		check(pick, b + REPL_HDR_LEN, n - REPL_HDR_LEN);
	return 0;
}
