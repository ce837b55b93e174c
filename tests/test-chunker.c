/* tests/test-chunker.c: the FastCDC chunker against a byte-at-a-time model written
 * from the algorithm text in dedup/chunker.c, cut points independent of how the
 * input is split into buffers, chunk size bounds and distribution, pinned cut points
 * (the on-disk format), locality after an insertion, bad parameters. */
#include <config.h>

#include "common/bks.h"
#include "dedup/chunker.h"
#include "tests/testutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIB ((size_t)1 << 20)

/* A growable list of cut offsets: the stream offset just after each chunk that
 * cdc_next ended (a stream's unfinished last chunk is not in it). */
typedef struct cuts {
	uint64_t *v;
	size_t n, cap;
} cuts;

static void cuts_add(cuts *c, uint64_t off)
{
	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 1024;
		c->v = realloc(c->v, c->cap * sizeof(*c->v));
		BKS_PANIC_IF(!c->v, "out of memory");
	}
	c->v[c->n++] = off;
}

static void cuts_free(cuts *c)
{
	free(c->v);
	memset(c, 0, sizeof(*c));
}

static int cuts_equal(const cuts *a, const cuts *b)
{
	return a->n == b->n && (a->n == 0 || memcmp(a->v, b->v, a->n * sizeof(*a->v)) == 0);
}

/* Where two lists first differ, for failure messages. */
static size_t cuts_first_diff(const cuts *a, const cuts *b)
{
	size_t i = 0;
	while (i < a->n && i < b->n && a->v[i] == b->v[i])
		i++;
	return i;
}

static const char *pstr(const cdc_params *p)
{
	static char s[64];
	snprintf(s, sizeof(s), "%u/%u/%u", p->min, p->avg, p->max);
	return s;
}

/* ---- The model: the algorithm text of dedup/chunker.c, one byte at a time. ---- */

typedef struct model {
	cdc_params p;
	uint64_t gear[256], mask_s, mask_l;
} model;

static uint64_t model_splitmix(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void model_init(model *m, const cdc_params *p)
{
	uint64_t x = 15;
	int b = 0;

	m->p = *p;
	for (int i = 0; i < 256; i++)
		m->gear[i] = model_splitmix(&x);
	while ((1u << b) < p->avg)
		b++;
	m->mask_s = ~0ull << (64 - (b + 2)); /* top b+2 bits */
	m->mask_l = ~0ull << (64 - (b - 2)); /* top b-2 bits */
}

static void model_chunk(const model *m, const uint8_t *d, size_t len, cuts *out)
{
	uint64_t h = 0, o = 0; /* o: offset in the current chunk */

	for (size_t i = 0; i < len; i++, o++) {
		int cut = 0;
		if (o >= m->p.min) {
			h = (h << 1) + m->gear[d[i]];
			if ((h & (o < m->p.avg ? m->mask_s : m->mask_l)) == 0)
				cut = 1;
			else if (o + 1 == m->p.max)
				cut = 1;
		}
		if (cut) {
			cuts_add(out, i + 1);
			h = 0;
			o = (uint64_t)-1; /* ++ makes it 0 */
		}
	}
}

/* ---- Feeding the chunker. ---- */

/* The whole input in as few calls as possible: one per chunk. */
static void chunk_whole(cdc *c, const uint8_t *d, size_t len, cuts *out)
{
	size_t off = 0;
	int cut;

	cdc_reset(c);
	while (off < len) {
		size_t n = cdc_next(c, d + off, len - off, &cut);
		BKS_PANIC_IF(n > len - off || (!cut && n != len - off), "cdc_next overran");
		off += n;
		if (cut)
			cuts_add(out, off);
	}
}

enum split_mode {
	SPLIT_MIXED, /* 0 .. 1 MiB, log-uniform, plus pieces ending at the chunk's edges */
	SPLIT_TINY,  /* 1 .. 16 bytes */
};

/* The next piece size: pos is the offset in the current chunk (the test tracks it
 * from the cuts), so pieces can end just before, at and after min, avg and max-1,
 * and split the skipped region. */
static size_t split_size(bks_rng *r, enum split_mode mode, const cdc_params *p,
                         uint64_t pos)
{
	if (mode == SPLIT_TINY)
		return 1 + bks_rng_below(r, 16);

	uint64_t x = bks_rng_below(r, 100);
	if (x < 5)
		return 0;
	if (x < 30)
		return 1 + bks_rng_below(r, 16);
	if (x < 45) {
		/* End the piece at an edge of the chunk: min-1, min, min+1, ... */
		const uint64_t edge[] = {p->min, p->avg, p->max - 1};
		uint64_t t = edge[bks_rng_below(r, 3)] + bks_rng_below(r, 3) - 1;
		if (t > pos)
			return t - pos;
		return 1 + bks_rng_below(r, p->min);
	}
	if (x < 60)
		return 1 + bks_rng_below(r, p->min); /* within the skipped region */
	return 1 + bks_rng_below(r, (uint64_t)1 << bks_rng_below(r, 21)); /* to 1 MiB */
}

static size_t chunk_split(cdc *c, const uint8_t *d, size_t len, enum split_mode mode,
                          uint64_t seed, cuts *out)
{
	bks_rng r;
	cdc_params p;
	size_t off = 0, calls = 0;
	uint64_t pos = 0;

	bks_rng_seed(&r, seed);
	cdc_get_params(c, &p);
	cdc_reset(c);
	while (off < len) {
		size_t piece = split_size(&r, mode, &p, pos); /* BKS_MIN evaluates twice */
		piece = BKS_MIN(piece, len - off);
		size_t done = 0;
		/* A piece is consumed with as many calls as it has cuts, plus one. */
		do {
			int cut;
			size_t n = cdc_next(c, d + off + done, piece - done, &cut);
			BKS_PANIC_IF(n > piece - done || (!cut && n != piece - done),
			             "cdc_next overran");
			calls++;
			done += n;
			pos += n;
			if (cut) {
				cuts_add(out, off + done);
				pos = 0;
			}
		} while (done < piece);
		off += piece;
	}
	return calls;
}

/* ---- Checks. ---- */

static void test_params(void)
{
	static const cdc_params bad[] = {
		{63, 128, 256},                  /* min below 64 */
		{0, 16384, 65536},               /* min 0 */
		{4096, 4096, 65536},             /* min == avg */
		{8192, 4096, 65536},             /* min > avg */
		{4096, 65536, 65536},            /* avg == max */
		{4096, 16384, 8192},             /* max < avg */
		{4096, 12288, 65536},            /* avg not a power of two */
		{4096, 16385, 65536},            /* avg not a power of two */
		{4096, 16384, CDC_MAX_LIMIT + 1}, /* max above 4 MiB */
		{1u << 22, 1u << 23, 1u << 24},  /* all too large */
		{64, 64, 64},
	};
	static const cdc_params good[] = {
		{64, 128, 129},
		{100, 4096, 5000},                /* min and max need not be powers of two */
		{1u << 20, 1u << 21, CDC_MAX_LIMIT},
		{4096, 16384, 65536},
	};
	static int sentinel;
	int nbad = 0, ngood = 0, outnull = 1;
	cdc *c;

	for (size_t i = 0; i < BKS_ARRAY_SIZE(bad); i++) {
		c = (cdc *)&sentinel; /* must be set to NULL on failure */
		int rc = cdc_new(&bad[i], &c);
		if (rc == -EINVAL && cdc_params_check(&bad[i]) == -EINVAL)
			nbad++;
		else
			printf("  %s accepted (%d)\n", pstr(&bad[i]), rc);
		if (c != NULL)
			outnull = 0;
		if (rc == 0)
			cdc_free(c);
	}
	CHECK(nbad == (int)BKS_ARRAY_SIZE(bad), "bad parameters refused with -EINVAL (%d of %zu)",
	      nbad, BKS_ARRAY_SIZE(bad));
	CHECK(outnull, "cdc_new leaves *out NULL on failure");

	for (size_t i = 0; i < BKS_ARRAY_SIZE(good); i++) {
		cdc_params got = {0};
		if (cdc_params_check(&good[i]) == 0 && cdc_new(&good[i], &c) == 0) {
			cdc_get_params(c, &got);
			if (memcmp(&got, &good[i], sizeof(got)) == 0)
				ngood++;
			cdc_free(c);
		} else {
			printf("  %s refused\n", pstr(&good[i]));
		}
	}
	CHECK(ngood == (int)BKS_ARRAY_SIZE(good), "edge-of-range parameters accepted (%d of %zu)",
	      ngood, BKS_ARRAY_SIZE(good));

	cdc_params def, got;
	cdc_params_default(&def);
	int rc = cdc_new(NULL, &c);
	if (rc == 0) {
		cdc_get_params(c, &got);
		cdc_free(c);
	}
	CHECK(rc == 0 && def.min == 4096 && def.avg == 16384 && def.max == 65536 &&
	          memcmp(&got, &def, sizeof(got)) == 0,
	      "NULL parameters mean the defaults 4096/16384/65536");
	cdc_free(NULL);
	CHECK(cdc_params_check(NULL) == -EINVAL, "cdc_params_check(NULL) is -EINVAL");
}

/* Chunk sizes: all but the last in (min, max], the mean near avg for random data. */
static void check_sizes(const cdc_params *p, const cuts *cs, size_t len, int random)
{
	size_t bad = 0, at_max = 0;
	uint64_t prev = 0;

	for (size_t i = 0; i < cs->n; i++) {
		uint64_t sz = cs->v[i] - prev;
		if (sz <= p->min || sz > p->max)
			bad++;
		if (sz == p->max)
			at_max++;
		prev = cs->v[i];
	}
	double mean = cs->n ? (double)prev / (double)cs->n : 0;
	uint64_t last = len - prev;
	CHECK(cs->n > 0 && bad == 0 && last <= p->max,
	      "%s: %zu chunks, all in (min, max], last %llu bytes", pstr(p), cs->n,
	      (unsigned long long)last);
	if (random)
		CHECK(mean >= 0.75 * p->avg && mean <= 1.5 * p->avg,
		      "%s: mean chunk %.0f bytes = %.3f x avg, %.4f%% forced at max", pstr(p),
		      mean, mean / p->avg, 100.0 * (double)at_max / (double)cs->n);
	else
		CHECK(at_max == cs->n, "%s: %zu of %zu chunks of zeros are max-sized", pstr(p),
		      at_max, cs->n);
}

/* The big input: model agreement, split invariance, sizes, for several parameters. */
static void test_streams(const uint8_t *d, size_t len)
{
	static const cdc_params sets[] = {
		{4096, 16384, 65536},
		{64, 128, 256},      /* too short for scan()'s lanes */
		{64, 512, 2048},     /* short lanes, frequent cuts in both */
		{2048, 8192, 32768},
		{1000, 4096, 10000},
		{256 * 1024, 1024 * 1024, 4 * 1024 * 1024},
	};

	for (size_t s = 0; s < BKS_ARRAY_SIZE(sets); s++) {
		const cdc_params *p = &sets[s];
		cuts whole = {0}, ref = {0}, mixed = {0}, tiny = {0};
		model m;
		cdc *c;

		if (cdc_new(p, &c) != 0) {
			CHECK(0, "%s: cdc_new", pstr(p));
			continue;
		}
		model_init(&m, p);
		model_chunk(&m, d, len, &ref);
		chunk_whole(c, d, len, &whole);
		CHECK(cuts_equal(&whole, &ref),
		      "%s: %zu MiB in whole buffers: %zu cuts, the same as the byte-at-a-time model",
		      pstr(p), len / MIB, whole.n);
		if (!cuts_equal(&whole, &ref))
			printf("  model %zu cuts, first difference at cut %zu\n", ref.n,
			       cuts_first_diff(&whole, &ref));

		size_t calls = chunk_split(c, d, len, SPLIT_MIXED, 100 + s, &mixed);
		CHECK(cuts_equal(&whole, &mixed),
		      "%s: %zu MiB in %zu calls on pieces of 0 B .. 1 MiB: the same cuts", pstr(p),
		      len / MIB, calls);
		if (!cuts_equal(&whole, &mixed))
			printf("  %zu cuts, first difference at cut %zu\n", mixed.n,
			       cuts_first_diff(&whole, &mixed));

		/* Pieces of 1..16 bytes: the first 4 MiB is enough (and quick). */
		size_t tlen = BKS_MIN(len, 4 * MIB);
		calls = chunk_split(c, d, tlen, SPLIT_TINY, 200 + s, &tiny);
		size_t nt = 0;
		while (nt < whole.n && whole.v[nt] <= tlen)
			nt++;
		CHECK(tiny.n == nt && (nt == 0 || memcmp(tiny.v, whole.v, nt * sizeof(*tiny.v)) == 0),
		      "%s: %zu MiB in %zu calls of 1..16 bytes: the same %zu cuts", pstr(p),
		      tlen / MIB, calls, nt);

		check_sizes(p, &whole, len, 1);
		cuts_free(&whole);
		cuts_free(&ref);
		cuts_free(&mixed);
		cuts_free(&tiny);
		cdc_free(c);
	}
}

static void test_zeros(void)
{
	static const cdc_params sets[] = {
		{4096, 16384, 65536},
		{64, 128, 256},
		{2048, 8192, 32768},
		{1000, 4096, 10000},
		{1u << 20, 1u << 21, CDC_MAX_LIMIT},
	};
	const size_t len = 8 * MIB + 12345;
	uint8_t *z = calloc(1, len);
	BKS_PANIC_IF(!z, "out of memory");

	for (size_t s = 0; s < BKS_ARRAY_SIZE(sets); s++) {
		cuts cs = {0};
		cdc *c;
		if (cdc_new(&sets[s], &c) != 0) {
			CHECK(0, "%s: cdc_new", pstr(&sets[s]));
			continue;
		}
		chunk_whole(c, z, len, &cs);
		check_sizes(&sets[s], &cs, len, 0);
		cuts_free(&cs);
		cdc_free(c);
	}
	free(z);
}

/* The pinned input: 4 MiB from splitmix64 seeded 0x626b73746f72 ("bkstor"), written
 * here rather than taken from bks_rng, so the pins depend on the chunker alone. */
static void pinned_input(uint8_t *d, size_t len)
{
	uint64_t x = 0x626b73746f72ull;
	for (size_t i = 0; i < len; i += 8) {
		uint64_t v = model_splitmix(&x);
		for (size_t j = 0; j < 8 && i + j < len; j++)
			d[i + j] = (uint8_t)(v >> (8 * j));
	}
}

typedef struct pin {
	cdc_params p;
	size_t count;
	uint64_t first[20];
} pin;

/* Generated once from this implementation and checked against the model; they must
 * never change (see the top of dedup/chunker.c). */
static void test_pinned(const uint8_t *d, size_t len)
{
	static const pin pins[] = {
		{{4096, 16384, 65536}, 224,
		 {17554, 37363, 44531, 61699, 69092, 83133, 101019, 118311, 135875, 161221,
		  180327, 199451, 216569, 234807, 256575, 280497, 297897, 314642, 337815, 347189}},
		{{2048, 8192, 32768}, 451,
		 {9668, 19273, 29224, 40189, 44531, 52806, 61699, 69092, 78448, 83133, 92604,
		  101019, 111098, 121792, 131568, 140400, 153466, 163177, 173709, 182371}},
	};

	for (size_t s = 0; s < BKS_ARRAY_SIZE(pins); s++) {
		const pin *pn = &pins[s];
		cuts cs = {0};
		cdc *c;
		if (cdc_new(&pn->p, &c) != 0) {
			CHECK(0, "%s: cdc_new", pstr(&pn->p));
			continue;
		}
		cuts ref = {0};
		model m;
		model_init(&m, &pn->p);
		model_chunk(&m, d, len, &ref);
		chunk_whole(c, d, len, &cs);
		CHECK(cuts_equal(&cs, &ref), "%s: the 4 MiB pinned input agrees with the model",
		      pstr(&pn->p));
		cuts_free(&ref);
		int same = cs.n == pn->count && cs.n >= 20 &&
		           memcmp(cs.v, pn->first, sizeof(pn->first)) == 0;
		CHECK(same, "%s: pinned cut points of the 4 MiB input (%zu cuts)", pstr(&pn->p),
		      cs.n);
		if (!same) {
			printf("  got %zu cuts, first:", cs.n);
			for (size_t i = 0; i < 20 && i < cs.n; i++)
				printf(" %llu", (unsigned long long)cs.v[i]);
			printf("\n");
		}
		cuts_free(&cs);
		cdc_free(c);
	}
}

/* ---- Golden cut lists: every scan path against lists the chunker computed before
 * any speed work (commit db90bae), on random and adversarial inputs. ---- */

enum gold_input {
	GI_RANDOM,   /* splitmix64 bytes (pinned_input) */
	GI_ZEROS,    /* all 0x00: forced cuts at max */
	GI_ONES,     /* all 0xff */
	GI_PERIOD7,  /* "bkstor\n" repeated: a period shorter than the hash window */
	GI_PERIOD4K, /* one random 4 KiB block repeated: every chunk sees the same bytes */
	GI_TWOVAL,   /* random bytes from {0x00, 0x01}: low entropy, long gear chains */
	GI_SPARSE,   /* zeros with a random byte every 97 */
	GI_TEXT,     /* words from a 16-word vocabulary, random order */
	GI_COUNT
};

static const char *const gold_names[GI_COUNT] = {
	"random", "zeros", "0xff", "period-7", "period-4096", "two-valued", "sparse", "text",
};

#define GOLD_LEN (2 * MIB + 4321) /* not a multiple of any lane or chunk size */

static void gold_input(enum gold_input which, uint8_t *d, size_t len)
{
	static const char *const words[16] = {
		"backup ", "store ", "chunk ", "the ", "of ", "and ", "segment ", "row ",
		"disk\n", "index ", "a ", "to ", "generation ", "dedup ", "in ", "restore\n",
	};
	uint64_t x = 0x676f6c64ull + (uint64_t)which; /* "gold" */
	size_t i = 0;

	switch (which) {
	case GI_RANDOM:
		pinned_input(d, len);
		break;
	case GI_ZEROS:
		memset(d, 0, len);
		break;
	case GI_ONES:
		memset(d, 0xff, len);
		break;
	case GI_PERIOD7:
		for (i = 0; i < len; i++)
			d[i] = (uint8_t)"bkstor\n"[i % 7];
		break;
	case GI_PERIOD4K:
		pinned_input(d, BKS_MIN(len, (size_t)4096));
		for (i = 4096; i < len; i++)
			d[i] = d[i - 4096];
		break;
	case GI_TWOVAL:
		for (i = 0; i < len; i++)
			d[i] = (uint8_t)(model_splitmix(&x) & 1);
		break;
	case GI_SPARSE:
		memset(d, 0, len);
		for (i = 0; i < len; i += 97)
			d[i] = (uint8_t)model_splitmix(&x);
		break;
	case GI_TEXT:
		while (i < len) {
			const char *w = words[model_splitmix(&x) & 15];
			for (size_t k = 0; w[k] && i < len; k++)
				d[i++] = (uint8_t)w[k];
		}
		break;
	case GI_COUNT:
		break;
	}
}

/* FNV-1a over the cut offsets, each as 8 little-endian bytes. */
static uint64_t cuts_digest(const cuts *c)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < c->n; i++)
		for (int b = 0; b < 8; b++) {
			h ^= (uint8_t)(c->v[i] >> (8 * b));
			h *= 0x100000001b3ull;
		}
	return h;
}

typedef struct gold {
	uint8_t input; /* enum gold_input */
	uint8_t pset;  /* index in gold_params */
	uint32_t count;
	uint64_t digest;
} gold;

static const cdc_params gold_params[] = {
	{4096, 16384, 65536}, {64, 128, 256}, {64, 512, 2048}, {2048, 8192, 32768},
	{1000, 4096, 10000},
};

/* Printed by BKS_CHUNKER_GOLDEN=print ./tests/test-chunker on db90bae (the chunker
 * before any speed work), then checked against the model. Never regenerate them to
 * make a change pass: a difference means stored data stops deduplicating. */
static const gold golds[] = {
	{0, 0, 109, 0x4684dddcc80504fcull}, /* random 4096/16384/65536 */
	{0, 1, 13882, 0x0427c581aa10371dull}, /* random 64/128/256 */
	{0, 2, 3707, 0xac9e57b8d4056e06ull}, /* random 64/512/2048 */
	{0, 3, 226, 0x3fc9fa2c6e8bf204ull}, /* random 2048/8192/32768 */
	{0, 4, 444, 0x0468ce82aabf8ba4ull}, /* random 1000/4096/10000 */
	{1, 0, 32, 0x4e6ffe4c31428245ull}, /* zeros 4096/16384/65536 */
	{1, 1, 8208, 0x9160e0744a871595ull}, /* zeros 64/128/256 */
	{1, 2, 1026, 0xf47281af93c218fdull}, /* zeros 64/512/2048 */
	{1, 3, 64, 0x3165c3f397d9f645ull}, /* zeros 2048/8192/32768 */
	{1, 4, 210, 0xd31ed493b3c81ef5ull}, /* zeros 1000/4096/10000 */
	{2, 0, 32, 0x4e6ffe4c31428245ull}, /* 0xff 4096/16384/65536 */
	{2, 1, 8208, 0x9160e0744a871595ull}, /* 0xff 64/128/256 */
	{2, 2, 1026, 0xf47281af93c218fdull}, /* 0xff 64/512/2048 */
	{2, 3, 64, 0x3165c3f397d9f645ull}, /* 0xff 2048/8192/32768 */
	{2, 4, 210, 0xd31ed493b3c81ef5ull}, /* 0xff 1000/4096/10000 */
	{3, 0, 32, 0x4e6ffe4c31428245ull}, /* period-7 4096/16384/65536 */
	{3, 1, 8208, 0x9160e0744a871595ull}, /* period-7 64/128/256 */
	{3, 2, 1026, 0xf47281af93c218fdull}, /* period-7 64/512/2048 */
	{3, 3, 64, 0x3165c3f397d9f645ull}, /* period-7 2048/8192/32768 */
	{3, 4, 210, 0xd31ed493b3c81ef5ull}, /* period-7 1000/4096/10000 */
	{4, 0, 102, 0x6e377dc4ab050f04ull}, /* period-4096 4096/16384/65536 */
	{4, 1, 13853, 0x86e71513f27a9078ull}, /* period-4096 64/128/256 */
	{4, 2, 3591, 0x1df6d669657e16a7ull}, /* period-4096 64/512/2048 */
	{4, 3, 171, 0xc96742b15dacd484ull}, /* period-4096 2048/8192/32768 */
	{4, 4, 410, 0xd0bb7b1ace22647dull}, /* period-4096 1000/4096/10000 */
	{5, 0, 113, 0x8dfc9ef0f8e1353cull}, /* two-valued 4096/16384/65536 */
	{5, 1, 13923, 0xaf9430053de4f6c4ull}, /* two-valued 64/128/256 */
	{5, 2, 3677, 0x3eaf56740e2cbd69ull}, /* two-valued 64/512/2048 */
	{5, 3, 221, 0x0a32410c2f0b307bull}, /* two-valued 2048/8192/32768 */
	{5, 4, 446, 0x796213731363b0f7ull}, /* two-valued 1000/4096/10000 */
	{6, 0, 114, 0xedd3d0776a670e8full}, /* sparse 4096/16384/65536 */
	{6, 1, 11952, 0x6449d988600b335bull}, /* sparse 64/128/256 */
	{6, 2, 3008, 0xf21f1044ad0968d2ull}, /* sparse 64/512/2048 */
	{6, 3, 173, 0xbc9a7f22df2ae207ull}, /* sparse 2048/8192/32768 */
	{6, 4, 389, 0x11156abaea1515deull}, /* sparse 1000/4096/10000 */
	{7, 0, 113, 0xe04ff61b55ac865cull}, /* text 4096/16384/65536 */
	{7, 1, 13794, 0x0bca6169f2606b02ull}, /* text 64/128/256 */
	{7, 2, 3686, 0x3fe90d812cfd481bull}, /* text 64/512/2048 */
	{7, 3, 225, 0x9ea0d31e08904eedull}, /* text 2048/8192/32768 */
	{7, 4, 461, 0xc3fcbed3fee4475eull}, /* text 1000/4096/10000 */
};

/* The scan paths a build can take; each is forced through BKS_CDC_SCAN. */
static const char *const scan_paths[] = {"lanes", "serial"};

static void test_golden(void)
{
	uint8_t *d = bks_alloc_aligned(64, GOLD_LEN);
	const char *mode = getenv("BKS_CHUNKER_GOLDEN");
	int print = mode && strcmp(mode, "print") == 0;
	size_t bad[BKS_ARRAY_SIZE(scan_paths)] = {0}, model_bad = 0, checked = 0;

	BKS_PANIC_IF(!d, "out of memory");
	for (int in = 0; in < GI_COUNT; in++) {
		gold_input((enum gold_input)in, d, GOLD_LEN);
		for (size_t ps = 0; ps < BKS_ARRAY_SIZE(gold_params); ps++) {
			const cdc_params *p = &gold_params[ps];
			const gold *g = NULL;
			cuts ref = {0};
			model m;

			for (size_t k = 0; k < BKS_ARRAY_SIZE(golds); k++)
				if (golds[k].input == in && golds[k].pset == ps)
					g = &golds[k];
			model_init(&m, p);
			model_chunk(&m, d, GOLD_LEN, &ref);
			if (print) {
				/* From the chunker under test (the default path), not the model. */
				cuts now = {0};
				cdc *c;
				BKS_PANIC_IF(cdc_new(p, &c) != 0, "cdc_new");
				chunk_whole(c, d, GOLD_LEN, &now);
				printf("\t{%d, %zu, %zu, 0x%016llxull}, /* %s %s */\n", in, ps, now.n,
				       (unsigned long long)cuts_digest(&now), gold_names[in], pstr(p));
				cuts_free(&now);
				cdc_free(c);
			}
			if (!g || g->count != ref.n || g->digest != cuts_digest(&ref)) {
				model_bad++;
				printf("  %s %s: the model disagrees with the golden list\n",
				       gold_names[in], pstr(p));
			}
			for (size_t sp = 0; sp < BKS_ARRAY_SIZE(scan_paths); sp++) {
				cuts got = {0};
				cdc *c;
				setenv("BKS_CDC_SCAN", scan_paths[sp], 1);
				BKS_PANIC_IF(cdc_new(p, &c) != 0, "cdc_new");
				chunk_whole(c, d, GOLD_LEN, &got);
				if (!g || got.n != g->count || cuts_digest(&got) != g->digest ||
				    !cuts_equal(&got, &ref)) {
					bad[sp]++;
					printf("  %s %s, %s scan: %zu cuts, differ from the golden list\n",
					       gold_names[in], pstr(p), scan_paths[sp], got.n);
				}
				cuts_free(&got);
				cdc_free(c);
			}
			checked++;
			cuts_free(&ref);
		}
	}
	unsetenv("BKS_CDC_SCAN");
	CHECK(model_bad == 0 && checked == BKS_ARRAY_SIZE(golds),
	      "golden cut lists: %zu inputs x parameter sets, the model agrees with all",
	      checked);
	for (size_t sp = 0; sp < BKS_ARRAY_SIZE(scan_paths); sp++)
		CHECK(bad[sp] == 0, "%s scan: the golden cut lists of %zu adversarial and random "
		      "inputs x parameter sets, %zu differ", scan_paths[sp], checked, bad[sp]);
	free(d);
}

/* Insert 100 bytes at `at`: cuts before the insertion stay, a few chunks around it
 * change, and every later cut is the old one moved by 100. This is what dedup
 * relies on: an edit costs the chunks it touches, not the rest of the file. */
static void test_shift(const uint8_t *d, size_t len, size_t at)
{
	const size_t ins = 100;
	uint8_t *e = malloc(len + ins);
	BKS_PANIC_IF(!e, "out of memory");
	memcpy(e, d, at);
	for (size_t i = 0; i < ins; i++)
		e[at + i] = (uint8_t)(0xa5 ^ (i * 37));
	memcpy(e + at + ins, d + at, len - at);

	cuts a = {0}, b = {0};
	cdc *c;
	int rc = cdc_new(NULL, &c);
	BKS_PANIC_IF(rc, "cdc_new");
	chunk_whole(c, d, len, &a);
	chunk_whole(c, e, len + ins, &b);

	/* Cuts before the insertion point are the same. */
	size_t before = 0;
	while (before < a.n && a.v[before] <= at)
		before++;
	int same_before = b.n >= before &&
	                  (before == 0 || memcmp(a.v, b.v, before * sizeof(*a.v)) == 0);
	/* Then find where the lists agree again (shifted by ins) for good. */
	size_t ia = before, ib = before;
	while (ia < a.n && ib < b.n && a.v[ia] + ins != b.v[ib]) {
		if (a.v[ia] + ins < b.v[ib])
			ia++;
		else
			ib++;
	}
	size_t tail = a.n - ia;
	int same_after = ia < a.n && b.n - ib == tail;
	for (size_t i = 0; same_after && i < tail; i++)
		if (a.v[ia + i] + ins != b.v[ib + i])
			same_after = 0;
	CHECK(same_before && same_after && ia - before <= 3 && ib - before <= 3,
	      "100 bytes inserted at %zu: %zu cuts before it kept, %zu old / %zu new chunks "
	      "differ, the other %zu cuts moved by 100",
	      at, before, ia - before + 1, ib - before + 1, tail);
	cuts_free(&a);
	cuts_free(&b);
	cdc_free(c);
	free(e);
}

static void test_api(const uint8_t *d, size_t len)
{
	cdc *c;
	int cut = 7, rc = cdc_new(NULL, &c);
	BKS_PANIC_IF(rc, "cdc_new");

	CHECK(cdc_next(c, d, 0, &cut) == 0 && cut == 0, "an empty buffer consumes nothing");

	/* A stream shorter than min has no cut; reset forgets it. */
	size_t n = cdc_next(c, d, 4000, &cut);
	CHECK(n == 4000 && cut == 0, "4000 bytes: no cut within min");
	cuts x = {0}, y = {0};
	chunk_whole(c, d, len, &x); /* chunk_whole resets first */
	cdc *fresh;
	rc = cdc_new(NULL, &fresh);
	BKS_PANIC_IF(rc, "cdc_new");
	chunk_whole(fresh, d, len, &y);
	CHECK(cuts_equal(&x, &y), "cdc_reset in mid-chunk gives the cuts of a new chunker");

	/* Streams are independent: chunking the input from offset 1 gives other cuts,
	 * and a later stream on the same object is not disturbed by it. */
	cuts z = {0};
	chunk_whole(c, d + 1, len - 1, &z);
	cuts_free(&x);
	chunk_whole(c, d, len, &x);
	CHECK(!cuts_equal(&z, &y) && cuts_equal(&x, &y), "streams on one object are independent");
	cuts_free(&x);
	cuts_free(&y);
	cuts_free(&z);
	cdc_free(c);
	cdc_free(fresh);
}

int main(void)
{
	const size_t len = 64 * MIB, plen = 4 * MIB;
	uint8_t *d = bks_alloc_aligned(64, len);
	uint8_t *pd = malloc(plen);
	bks_rng r;

	BKS_PANIC_IF(!d || !pd, "out of memory");
	bks_rng_seed(&r, 20240611);
	bks_rng_fill(&r, d, len);
	pinned_input(pd, plen);

	test_params();
	test_api(d, 4 * MIB);
	test_streams(d, len);
	test_zeros();
	test_pinned(pd, plen);
	test_golden();
	test_shift(pd, plen, 1000);
	test_shift(pd, plen, plen / 2 + 777);

	free(d);
	free(pd);
	return tu_finish();
}
