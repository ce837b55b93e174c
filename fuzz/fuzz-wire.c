/* fuzz-wire: libFuzzer target for the native protocol's frame and message decoders
 * (the bytes any peer can send the server, before and after authentication).
 *
 * Input: byte 0 picks a message type; the rest is a frame (header + payload), as
 * tests/test-wire --seeds writes them. The rest goes to
 *   - the header decoder, and when it accepts, the message decoder of the header's
 *     type (the server's path);
 *   - the decoder of the picked type, over the rest and over the rest after 16 bytes
 *     (so payload checks are reached whatever the header bytes are);
 *   - the path and name checks.
 * Properties (abort() if broken): no out-of-bounds read (ASan), no allocation in the
 * decoders (only this file allocates), and the encoding is canonical: whatever decodes
 * re-encodes to exactly the bytes it came from, and the views of LIST_ITEMS, FP_LIST
 * and FP_NEED can be walked to their counts.
 */
#include <config.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/bks.h"
#include "proto/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Walk the views a decoded message carries. */
static void walk(const wire_msg *m)
{
	if (m->type == WIRE_LIST_ITEMS) {
		size_t pos = 0;
		uint32_t n = 0;
		wire_entry ent;
		while (wire_items_next(&m->u.items, &pos, &ent)) {
			if (ent.name.len == 0 || ent.name.len > WIRE_NAME_MAX ||
			    wire_name_check(ent.name.p, ent.name.len, NULL) != 0)
				abort();
			n++;
		}
		if (n != m->u.items.count || pos != m->u.items.raw_len)
			abort();
	} else if (m->type == WIRE_FP_LIST) {
		for (uint32_t i = 0; i < m->u.fp_list.count; i++) {
			wire_fp fp;
			wire_fp_list_get(&m->u.fp_list, i, &fp);
			if (fp.len == 0 || fp.len > WIRE_CHUNK_MAX)
				abort();
		}
	} else if (m->type == WIRE_FP_NEED) {
		uint32_t set = 0;
		for (uint32_t i = 0; i < m->u.fp_need.count; i++)
			set += (uint32_t)wire_bit_get(m->u.fp_need.bits, i);
		if (set > m->u.fp_need.count)
			abort();
	}
}

/* p[0..n) decoded as m: it must re-encode to the same payload bytes. */
static void reencode(const wire_msg *m, const uint8_t *p, size_t n, uint32_t tag)
{
	uint8_t *buf = malloc(n + WIRE_HDR_LEN);
	if (!buf)
		abort();
	int r = wire_msg_encode(buf, n + WIRE_HDR_LEN, tag, m);
	if (r != (int)(n + WIRE_HDR_LEN) || memcmp(buf + WIRE_HDR_LEN, p, n) != 0)
		abort();
	/* And the frame decodes to the same again. */
	wire_hdr h;
	wire_msg m2;
	if (wire_frame_decode(buf, (size_t)r, WIRE_MAX_PAYLOAD_LIMIT, &h, &m2, NULL) != r ||
	    h.type != m->type || h.tag != tag || h.len != n)
		abort();
	/* One byte less of room must be refused, never overrun (ASan watches). */
	if (wire_msg_encode(buf, n + WIRE_HDR_LEN - 1, tag, m) != -ENOSPC)
		abort();
	free(buf);
	walk(m);
}

static void try_payload(uint8_t type, const uint8_t *p, size_t n)
{
	wire_msg m;
	bks_err e = {0};
	if (wire_msg_decode(type, p, n, &m, &e) == 0) {
		if (m.type != type)
			abort();
		reencode(&m, p, n, 0);
	} else if (e.code >= 0 || e.msg[0] == '\0') {
		abort(); /* every refusal carries a code and a message */
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint8_t sel = data[0];
	const uint8_t *f = data + 1;
	size_t n = size - 1;

	/* The server's path: header, then the payload it announces. */
	wire_hdr h;
	bks_err e;
	int r = wire_hdr_decode(f, n, 0, &h, &e);
	if (r == 0) {
		if (n - WIRE_HDR_LEN >= h.len) {
			wire_msg m;
			if (wire_msg_decode(h.type, f + WIRE_HDR_LEN, h.len, &m, NULL) == 0)
				reencode(&m, f + WIRE_HDR_LEN, h.len, h.tag);
		}
	} else if (r == -EAGAIN) {
		if (n >= WIRE_HDR_LEN)
			abort();
	} else if (n < 4 && r != -EPROTO) {
		abort(); /* short input: only "need more" or "not our magic" */
	}

	/* Direct payload decoding of the picked type. */
	try_payload(sel, f, n);
	if (n >= WIRE_HDR_LEN)
		try_payload(sel, f + WIRE_HDR_LEN, n - WIRE_HDR_LEN);

	(void)wire_path_check((const char *)f, n, NULL);
	(void)wire_name_check((const char *)f, n, NULL);
	return 0;
}
