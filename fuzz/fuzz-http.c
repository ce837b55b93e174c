/* fuzz-http: libFuzzer target for the HTTP response parser (the bytes bkstorctl
 * reads from whatever answers on the API socket).
 * Properties: parsing never crashes, leaks or reads out of bounds; an accepted
 * response has a final status (200..599 or 1xx never), a body within the limit and
 * NUL-terminated, headers that http_header finds by their own names; and feeding the
 * same bytes in arbitrary pieces gives the same result as feeding them whole. */
#include <config.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli/http.h"
#include "common/bks.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_BODY 4096

static void check(const http_response *r)
{
	if (r->status < 200 || r->status > 599 || r->body_len > MAX_BODY || !r->body ||
	    r->body[r->body_len] != '\0' || !r->reason || strpbrk(r->reason, "\r\n"))
		abort();
	for (size_t i = 0; i < r->nheaders; i++) {
		const http_field *f = &r->headers[i];
		if (!f->name[0] || strpbrk(f->name, " \t:\r\n") || strpbrk(f->value, "\r\n"))
			abort();
		const char *v = http_header(r, f->name);
		if (!v)
			abort();
		/* the first header of that name */
		size_t j = 0;
		while (strcasecmp(r->headers[j].name, f->name))
			j++;
		if (j > i || v != r->headers[j].value)
			abort();
	}
}

static int same(const http_response *a, const http_response *b)
{
	if (a->status != b->status || strcmp(a->reason, b->reason) ||
	    a->nheaders != b->nheaders || a->body_len != b->body_len ||
	    memcmp(a->body, b->body, a->body_len))
		return 0;
	for (size_t i = 0; i < a->nheaders; i++)
		if (strcmp(a->headers[i].name, b->headers[i].name) ||
		    strcmp(a->headers[i].value, b->headers[i].value))
			return 0;
	return 1;
}

/* The same bytes through http_rx in pieces of pseudo-random sizes. */
static int split(const uint8_t *data, size_t size, const char *method, http_response *resp)
{
	http_rx *rx;
	bks_rng rng;
	size_t off = 0;
	int r = 0;

	bks_rng_seed(&rng, bks_xxh3(data, size));
	if (http_rx_new(method, MAX_BODY, &rx) < 0)
		abort();
	while (off < size && r == 0) {
		size_t n = bks_rng_below(&rng, 4) ? 1 + bks_rng_below(&rng, 8)
		                                  : 1 + bks_rng_below(&rng, 256);
		n = BKS_MIN(n, size - off);
		r = http_rx_feed(rx, data + off, n, NULL);
		off += n;
	}
	if (r == 0)
		r = http_rx_eof(rx, NULL);
	if (r == 1)
		r = http_rx_take(rx, resp);
	http_rx_free(rx);
	return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const methods[] = {"GET", "HEAD"};
	for (int m = 0; m < 2; m++) {
		http_response a, b = {0};
		bks_err e = {0};
		int ra = http_parse_response((const char *)data, size, methods[m], MAX_BODY, &a, &e);
		if (ra < 0 && (ra != -EPROTO && ra != -EMSGSIZE))
			abort();
		if (ra < 0 && (!e.msg[0] || a.body || a.headers))
			abort();
		if (ra == 0)
			check(&a);
		int rb = split(data, size, methods[m], &b);
		if (ra != rb || (ra == 0 && !same(&a, &b)))
			abort();
		http_response_free(&a);
		http_response_free(&b);
	}
	return 0;
}
