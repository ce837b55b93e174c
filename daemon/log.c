/* daemon/log.c: see log.h. Global state is allowed in daemon/. */
#include "daemon/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/bks.h"
#include <time.h>

static int g_level = CFG_LOG_INFO;

void log_set_level(int level) { __atomic_store_n(&g_level, level, __ATOMIC_RELAXED); }
int log_get_level(void) { return __atomic_load_n(&g_level, __ATOMIC_RELAXED); }

const char *log_esc(char *out, size_t cap, const void *s, size_t n)
{
	const unsigned char *p = s;
	size_t o = 0;
	if (!cap)
		return out;
	for (size_t i = 0; i < n; i++) {
		char tmp[8];
		size_t k = 0, u = p[i] >= 0x80 ? bks_utf8_len(p + i, n - i) : 0;
		/* U+0080..U+009F (C2 80..C2 9F) are C1 controls: a terminal obeys some. */
		if (u == 2 && p[i] == 0xc2 && p[i + 1] < 0xa0)
			u = 0;
		if (u) {
			memcpy(tmp, p + i, u);
			k = u;
			i += u - 1;
		} else if (p[i] == '\\') {
			k = (size_t)snprintf(tmp, sizeof(tmp), "\\\\");
		} else if (p[i] == '\n') {
			k = (size_t)snprintf(tmp, sizeof(tmp), "\\n");
		} else if (p[i] == '\t') {
			k = (size_t)snprintf(tmp, sizeof(tmp), "\\t");
		} else if (p[i] < 0x20 || p[i] >= 0x7f) {
			k = (size_t)snprintf(tmp, sizeof(tmp), "\\x%02x", p[i]);
		} else {
			tmp[0] = (char)p[i];
			k = 1;
		}
		/* Keep room for "..." while more may follow: a long text is cut at a whole
		 * escape or character, never inside one. */
		if (o + k + 1 > cap || (i + 1 < n && o + k + 4 > cap)) {
			if (o + 4 <= cap) {
				memcpy(out + o, "...", 3);
				o += 3;
			}
			break;
		}
		memcpy(out + o, tmp, k);
		o += k;
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
