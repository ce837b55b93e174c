/* daemon/log.c: see log.h. Global state is allowed in daemon/. */
#include <config.h>

#include "daemon/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/bks.h"
#include <time.h>

static int g_level = CFG_LOG_INFO;

void log_set_level(int level) { __atomic_store_n(&g_level, level, __ATOMIC_RELAXED); }
int log_get_level(void) { return __atomic_load_n(&g_level, __ATOMIC_RELAXED); }

/* The escape of the character at p[0] (of n bytes) into tmp: its length; *used the
 * input bytes it covers. */
static size_t esc_one(const unsigned char *p, size_t n, char tmp[8], size_t *used)
{
	size_t u = p[0] >= 0x80 ? bks_utf8_len(p, n) : 0;
	/* U+0080..U+009F (C2 80..C2 9F) are C1 controls: a terminal obeys some. */
	if (u == 2 && p[0] == 0xc2 && p[1] < 0xa0)
		u = 0;
	*used = u ? u : 1;
	if (u) {
		memcpy(tmp, p, u);
		return u;
	}
	if (p[0] == '\\')
		return (size_t)snprintf(tmp, 8, "\\\\");
	if (p[0] == '\n')
		return (size_t)snprintf(tmp, 8, "\\n");
	if (p[0] == '\t')
		return (size_t)snprintf(tmp, 8, "\\t");
	if (p[0] < 0x20 || p[0] >= 0x7f)
		return (size_t)snprintf(tmp, 8, "\\x%02x", p[0]);
	tmp[0] = (char)p[0];
	return 1;
}

const char *log_esc(char *out, size_t cap, const void *s, size_t n)
{
	const unsigned char *p = s;
	char tmp[8];
	size_t o = 0, used, all = 0;
	if (!cap)
		return out;
	/* Does all of it fit? Else keep room for "..." and cut at a whole escape or
	 * character, never inside one. */
	for (size_t i = 0; i < n && all < cap; i += used)
		all += esc_one(p + i, n - i, tmp, &used);
	size_t room = all < cap ? cap - 1 : cap >= 4 ? cap - 4 : 0;
	for (size_t i = 0; i < n; i += used) {
		size_t k = esc_one(p + i, n - i, tmp, &used);
		if (o + k > room)
			break;
		memcpy(out + o, tmp, k);
		o += k;
	}
	if (all >= cap && cap >= 4) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = 0;
	return out;
}

const char *log_escs(char *out, size_t cap, const char *s)
{
	return log_esc(out, cap, s, s ? strlen(s) : 0);
}

void blog(int level, const char *fmt, ...)
{
	static const char *const tag[] = {"error", "warn", "info", "debug"};
	char line[1200], ts[40];
	if (level > log_get_level())
		return;
	struct timespec now;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* One write per line so lines from threads do not interleave. */
	fprintf(stderr, "%s.%03ldZ bkstord %s: %s\n", ts, now.tv_nsec / 1000000,
	        tag[level < 0 ? 0 : level > 3 ? 3 : level], line);
}
