/* daemon/log.c: see log.h. Global state is allowed in daemon/. */
#include "daemon/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

static int g_level = CFG_LOG_INFO;

void log_set_level(int level) { __atomic_store_n(&g_level, level, __ATOMIC_RELAXED); }
int log_get_level(void) { return __atomic_load_n(&g_level, __ATOMIC_RELAXED); }

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
