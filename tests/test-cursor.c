/* test-cursor: the bounded byte cursor (common/cursor.h): every width round-trips
 * in little-endian byte order at every offset of a buffer; a read or write that does
 * not fit touches nothing, yields zeros and sets the error; the error sticks (later
 * calls that would fit do nothing) and the first one is kept; length-prefixed
 * strings at and past their limits; zero-length operations. */
#include <config.h>

#include "tests/testutil.h"

#include <errno.h>
#include <string.h>

#include "common/cursor.h"

/* A guard byte around the buffer the cursor owns, to see that nothing outside is
 * written. */
static uint8_t mem[64 + 2];
#define BUF (mem + 1)

static void reset(uint8_t fill)
{
	memset(mem, 0xEE, sizeof(mem));
	memset(BUF, fill, 64);
}

static int guards_ok(void)
{
	return mem[0] == 0xEE && mem[sizeof(mem) - 1] == 0xEE;
}

static void widths(void)
{
	static const uint8_t want[15] = {0xAB, 0x34, 0x12, 0x78, 0x56, 0x34, 0x12,
	                                 0xEF, 0xCD, 0xAB, 0x89, 0x67, 0x45, 0x23, 0x01};
	/* At every start offset that fits, and one past: the values' bytes, in order. */
	for (size_t off = 0; off + 15 <= 64; off++) {
		bks_wcur w;
		reset(0);
		cur_winit(&w, BUF, off + 15);
		cur_put_zero(&w, off);
		cur_put8(&w, 0xAB);
		cur_put16(&w, 0x1234);
		cur_put32(&w, 0x12345678u);
		cur_put64(&w, 0x0123456789ABCDEFull);
		CHECK_LOOP(w.err == 0 && w.pos == off + 15 && cur_room(&w) == 0,
		           "off %zu: wrote 15 bytes (err %d pos %zu)", off, w.err, w.pos);
		CHECK_LOOP(memcmp(BUF + off, want, 15) == 0, "off %zu: little-endian bytes", off);
		CHECK_LOOP(guards_ok(), "off %zu: nothing written outside", off);

		bks_rcur r;
		cur_rinit(&r, BUF, off + 15);
		cur_skip(&r, off);
		CHECK_LOOP(cur_get8(&r) == 0xAB, "off %zu: u8", off);
		CHECK_LOOP(cur_get16(&r) == 0x1234, "off %zu: u16", off);
		CHECK_LOOP(cur_get32(&r) == 0x12345678u, "off %zu: u32", off);
		CHECK_LOOP(cur_get64(&r) == 0x0123456789ABCDEFull, "off %zu: u64", off);
		CHECK_LOOP(r.err == 0 && cur_left(&r) == 0, "off %zu: read all, no error", off);
	}
	/* The extremes of each width. */
	bks_wcur w;
	bks_rcur r;
	reset(0);
	cur_winit(&w, BUF, 64);
	cur_put8(&w, UINT8_MAX);
	cur_put16(&w, UINT16_MAX);
	cur_put32(&w, UINT32_MAX);
	cur_put64(&w, UINT64_MAX);
	cur_put8(&w, 0);
	cur_put16(&w, 0);
	cur_put32(&w, 0);
	cur_put64(&w, 0);
	CHECK(w.err == 0 && w.pos == 30, "30 bytes of extremes");
	cur_rinit(&r, BUF, w.pos);
	CHECK(cur_get8(&r) == UINT8_MAX && cur_get16(&r) == UINT16_MAX &&
	      cur_get32(&r) == UINT32_MAX && cur_get64(&r) == UINT64_MAX, "all ones back");
	CHECK(cur_get8(&r) == 0 && cur_get16(&r) == 0 && cur_get32(&r) == 0 &&
	      cur_get64(&r) == 0 && r.err == 0, "zeros back, no error");
}

/* For each width: a read one byte short fails, yields 0, does not move, and every
 * read after it fails too, even one that would fit. */
static void read_bounds(void)
{
	for (int width = 1; width <= 8; width *= 2) {
		bks_rcur r;
		reset(0xFF);
		cur_rinit(&r, BUF, (size_t)width + 1);
		cur_skip(&r, 2); /* width - 1 bytes left */
		uint64_t v = width == 1 ? cur_get8(&r) : width == 2 ? cur_get16(&r)
		           : width == 4 ? cur_get32(&r) : cur_get64(&r);
		CHECK(v == 0 && r.err == -EBADMSG, "u%d one byte short: 0 and -EBADMSG (got "
		      "%llu, %d)", width * 8, (unsigned long long)v, r.err);
		CHECK(r.pos == 2, "u%d: the failed read did not move the cursor", width * 8);
		CHECK(cur_left(&r) == 0, "u%d: nothing left once in error", width * 8);
		/* sticky: a fresh cursor over the same bytes reads them; this one does not */
		CHECK(cur_get8(&r) == 0 && r.err == -EBADMSG && r.pos == 2,
		      "u%d: the error sticks", width * 8);
	}
	/* Exactly at the end is fine; one more byte is not. */
	bks_rcur r;
	uint8_t got[8];
	reset(0x5A);
	cur_rinit(&r, BUF, 8);
	cur_get_bytes(&r, got, 8);
	CHECK(r.err == 0 && cur_left(&r) == 0 && got[7] == 0x5A, "8 of 8 bytes read");
	memset(got, 0x11, sizeof(got));
	cur_get_bytes(&r, got, 1);
	CHECK(r.err == -EBADMSG && got[0] == 0, "a byte past the end: zero, error");
	/* A length that would wrap pos + n does not pass the bounds check. */
	cur_rinit(&r, BUF, 8);
	cur_skip(&r, 4);
	CHECK(cur_take(&r, SIZE_MAX - 2) == NULL && r.err == -EBADMSG && r.pos == 4,
	      "a huge length is refused without wrapping");
	/* cur_get_bytes on error fills its output with zeros, whatever was there. */
	cur_rinit(&r, BUF, 4);
	memset(got, 0x11, sizeof(got));
	cur_get_bytes(&r, got, 8);
	CHECK(got[0] == 0 && got[7] == 0 && r.err, "a short read gives zeros");
	/* zero-length operations at the end succeed and do not set the error */
	cur_rinit(&r, BUF, 0);
	CHECK(cur_take(&r, 0) != NULL && r.err == 0, "a 0-byte take at the end is fine");
}

static void write_bounds(void)
{
	for (int width = 1; width <= 8; width *= 2) {
		bks_wcur w;
		reset(0x77);
		cur_winit(&w, BUF, (size_t)width + 1);
		cur_put16(&w, 0); /* width - 1 bytes of room */
		if (width == 1)
			cur_put8(&w, 0xAB);
		else if (width == 2)
			cur_put16(&w, 0xABAB);
		else if (width == 4)
			cur_put32(&w, 0xABABABAB);
		else
			cur_put64(&w, 0xABABABABABABABABull);
		CHECK(w.err == -ENOSPC, "u%d past the end: -ENOSPC (%d)", width * 8, w.err);
		size_t at = 2;
		CHECK(w.pos == at, "u%d: the failed write did not move the cursor", width * 8);
		/* the bytes after pos are untouched (0x77), also past the cursor's length */
		int untouched = 1;
		for (size_t i = at; i < 64; i++)
			untouched &= BUF[i] == 0x77;
		CHECK(untouched && guards_ok(), "u%d: nothing written by the failed put",
		      width * 8);
		CHECK(cur_room(&w) == 0, "no room once in error");
		/* sticky: for width > 1 one byte would fit, but it is not written */
		cur_put8(&w, 0xCD);
		CHECK(w.pos == at && BUF[at] == 0x77 && w.err == -ENOSPC,
		      "u%d: the error sticks", width * 8);
	}
	/* cur_put_zero past the end writes nothing either */
	bks_wcur w;
	reset(0x77);
	cur_winit(&w, BUF, 4);
	cur_put_zero(&w, 5);
	CHECK(w.err == -ENOSPC && w.pos == 0 && BUF[0] == 0x77, "5 zeros into 4 bytes");
	/* a zero-length put into a full cursor is fine */
	cur_winit(&w, BUF, 0);
	cur_put_bytes(&w, "", 0);
	CHECK(w.err == 0, "0 bytes into 0 bytes of room");
}

static void strings(void)
{
	static char big[UINT16_MAX + 2];
	static uint8_t room[UINT16_MAX + 16];
	bks_wcur w;
	bks_rcur r;
	const char *s;
	size_t n;

	reset(0);
	cur_winit(&w, BUF, 64);
	cur_put_str16(&w, "abc", 3);
	cur_put_str16(&w, "", 0);
	CHECK(w.err == 0 && w.pos == 7, "\"abc\" and \"\": 7 bytes");
	CHECK(BUF[0] == 3 && BUF[1] == 0 && memcmp(BUF + 2, "abc", 3) == 0 && BUF[5] == 0 &&
	      BUF[6] == 0, "u16 length then the bytes");
	cur_rinit(&r, BUF, w.pos);
	CHECK(cur_get_str16(&r, &s, &n) == 0 && n == 3 && memcmp(s, "abc", 3) == 0 &&
	      s == (const char *)BUF + 2, "\"abc\" back as a view into the buffer");
	CHECK(cur_get_str16(&r, &s, &n) == 0 && n == 0 && s != NULL, "\"\" back");
	CHECK(cur_get_str16(&r, &s, &n) == -EBADMSG && s == NULL && n == 0,
	      "no length left: error, NULL, 0");

	/* A length that runs past the end. */
	BUF[0] = 10;
	BUF[1] = 0;
	cur_rinit(&r, BUF, 11);
	CHECK(cur_get_str16(&r, &s, &n) == -EBADMSG && s == NULL && n == 0,
	      "a 10-byte string in 9 bytes is refused");
	cur_rinit(&r, BUF, 12);
	CHECK(cur_get_str16(&r, &s, &n) == 0 && n == 10, "in 10 bytes it is read");

	/* The longest string a u16 can say, and one byte more. */
	memset(big, 'x', sizeof(big));
	cur_winit(&w, room, sizeof(room));
	cur_put_str16(&w, big, UINT16_MAX);
	CHECK(w.err == 0 && w.pos == 2 + (size_t)UINT16_MAX, "65535 bytes written");
	cur_rinit(&r, room, w.pos);
	CHECK(cur_get_str16(&r, &s, &n) == 0 && n == UINT16_MAX && cur_left(&r) == 0,
	      "65535 bytes read back");
	cur_winit(&w, room, sizeof(room));
	cur_put_str16(&w, big, (size_t)UINT16_MAX + 1);
	CHECK(w.err == -ENAMETOOLONG && w.pos == 0, "65536 bytes: -ENAMETOOLONG, nothing "
	      "written");
	cur_put_str16(&w, "a", 1);
	CHECK(w.err == -ENAMETOOLONG && w.pos == 0, "the first error stays");

	/* No room for the whole string: nothing of it is written (not even the length). */
	reset(0x77);
	cur_winit(&w, BUF, 5);
	cur_put_str16(&w, "abcd", 4);
	CHECK(w.err == -ENOSPC && w.pos == 0 && BUF[0] == 0x77, "6 bytes into 5: nothing "
	      "written");
	cur_put_str16(&w, big, (size_t)UINT16_MAX + 1);
	CHECK(w.err == -ENOSPC, "the first error (-ENOSPC) is kept");
}

int main(void)
{
	widths();
	read_bounds();
	write_bounds();
	strings();
	return tu_finish();
}
