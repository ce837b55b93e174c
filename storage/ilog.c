/* storage/ilog.c: see ilog.h. */
#include <config.h>

#include "storage/ilog.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/endian.h"
#include "storage/disk.h"

static const char MAGIC[8] = {'B', 'K', 'S', 'I', 'L', 'O', 'G', '1'};
#define ILOG_VERSION 1u
#define MAX_COPIES (ARR_MAX_DISKS * 2 + ARR_MAX_SPARES)

struct ilog {
	arr *a;
	uint8_t uuid[BKS_UUID_LEN];
	uint64_t base;           /* the commit the records follow */
	uint64_t seq;            /* next record number */
	uint64_t pos;            /* next record's offset in the log area */
	int started;             /* base/seq/pos are meaningful */
	uint8_t *buf;            /* ARR_LOG_SIZE, aligned */
	ilog_stats st;
};

static size_t round_up(size_t n)
{
	return (n + DISK_ALIGN - 1) / DISK_ALIGN * DISK_ALIGN;
}

int ilog_new(arr *a, const uint8_t uuid[BKS_UUID_LEN], ilog **out)
{
	ilog *l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->buf = bks_alloc_aligned(DISK_ALIGN, ARR_LOG_SIZE);
	if (!l->buf) {
		free(l);
		return -ENOMEM;
	}
	l->a = a;
	memcpy(l->uuid, uuid, BKS_UUID_LEN);
	*out = l;
	return 0;
}

void ilog_free(ilog *l)
{
	if (!l)
		return;
	free(l->buf);
	free(l);
}

/* The checksum covers the header (its own field zero) and the payload. */
static uint64_t rec_sum(const uint8_t *b, size_t plen)
{
	uint8_t h[ILOG_HDR];
	memcpy(h, b, ILOG_HDR);
	memset(h + 56, 0, 8);
	return bks_xxh3(h, ILOG_HDR) ^ bks_xxh3(b + ILOG_HDR, plen) * 0x9e3779b97f4a7c15ull;
}

int ilog_append(ilog *l, uint64_t base_txg, const void *rec, size_t len, bks_err *e)
{
	if (!l->started || l->base != base_txg) {
		l->base = base_txg;
		l->seq = 0;
		l->pos = 0;
		l->started = 1;
	}
	size_t total = round_up(ILOG_HDR + len);
	if (len > ILOG_MAX_PAYLOAD || l->pos + total > ARR_LOG_SIZE)
		return bks_fail(e, -ENOSPC, "intent log full");
	uint8_t *b = l->buf;
	memset(b, 0, total);
	memcpy(b, MAGIC, 8);
	le_put32(b + 8, ILOG_VERSION);
	le_put32(b + 12, ILOG_HDR);
	memcpy(b + 16, l->uuid, BKS_UUID_LEN);
	le_put64(b + 32, base_txg);
	le_put64(b + 40, l->seq);
	le_put32(b + 48, (uint32_t)len);
	le_put32(b + 52, (uint32_t)total);
	memcpy(b + ILOG_HDR, rec, len);
	le_put64(b + 56, rec_sum(b, len));
	int r = arr_ilog_write(l->a, l->pos, b, total, e);
	if (r < 0)
		return r;
	l->pos += total;
	l->seq++;
	l->st.appends++;
	l->st.bytes += total;
	l->st.used = l->pos;
	return 0;
}

int ilog_check(const uint8_t *b, size_t len, const uint8_t uuid[BKS_UUID_LEN],
               uint64_t base_txg, uint64_t seq, size_t *payload_len, size_t *rec_len)
{
	if (len < ILOG_HDR || memcmp(b, MAGIC, 8))
		return -ENOENT;
	if (le_get32(b + 8) != ILOG_VERSION || le_get32(b + 12) != ILOG_HDR)
		return -EPROTO;
	uint32_t plen = le_get32(b + 48), total = le_get32(b + 52);
	if (plen > ILOG_MAX_PAYLOAD || total != round_up(ILOG_HDR + plen) || total > len)
		return -EINVAL;
	if (le_get64(b + 56) != rec_sum(b, plen))
		return -EBADMSG;
	if (memcmp(b + 16, uuid, BKS_UUID_LEN) || le_get64(b + 32) != base_txg ||
	    le_get64(b + 40) != seq)
		return -ESTALE;
	*payload_len = plen;
	*rec_len = total;
	return 0;
}

int ilog_replay(ilog *l, uint64_t base_txg,
                int (*fn)(void *ctx, const uint8_t *rec, size_t len), void *ctx, bks_err *e)
{
	uint8_t *copy[MAX_COPIES];
	int ncopies = 0, r = 0, nrec = 0;
	uint64_t pos = 0, seq = 0;

	/* Every disk's copy of the area (most are blank or stale; that is cheap). */
	for (int i = 0; i < MAX_COPIES; i++) {
		uint8_t *b = bks_alloc_aligned(DISK_ALIGN, ARR_LOG_SIZE);
		if (!b) {
			r = bks_fail(e, -ENOMEM, "intent log: out of memory");
			goto out;
		}
		int rr = arr_ilog_read(l->a, i, b);
		if (rr == -ENOENT) {
			free(b);
			break;
		}
		if (rr < 0) {
			free(b); /* a copy we cannot read: others may do */
			continue;
		}
		copy[ncopies++] = b;
	}
	for (;;) {
		const uint8_t *rec = NULL;
		size_t plen = 0, total = 0;
		for (int c = 0; c < ncopies && !rec; c++)
			if (ilog_check(copy[c] + pos, ARR_LOG_SIZE - pos, l->uuid, base_txg, seq,
			               &plen, &total) == 0)
				rec = copy[c] + pos;
		if (!rec)
			break; /* end of the chain (or a record torn on every copy) */
		if ((r = fn(ctx, rec + ILOG_HDR, plen)) < 0) {
			bks_fail(e, r, "intent log: record %llu could not be applied",
			         (unsigned long long)seq);
			goto out;
		}
		nrec++;
		seq++;
		pos += total;
		if (pos + ILOG_HDR > ARR_LOG_SIZE)
			break;
	}
	/* Appends after the same base continue the chain. */
	l->base = base_txg;
	l->seq = seq;
	l->pos = pos;
	l->started = 1;
	l->st.replayed += (uint64_t)nrec;
	l->st.used = pos;
	r = nrec;
out:
	for (int c = 0; c < ncopies; c++)
		free(copy[c]);
	return r;
}

void ilog_get_stats(const ilog *l, ilog_stats *st)
{
	*st = l->st;
}
