/* daemon/log.h: bkstord's log: one line per event on stderr (journald adds the time
 * when it collects it; a terminal gets an ISO time), with a level filter. */
#ifndef BKS_DAEMON_LOG_H
#define BKS_DAEMON_LOG_H

#include "daemon/config.h"

void log_set_level(int level);          /* enum cfg_log_level */
int log_get_level(void);
void blog(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Untrusted bytes (names, paths, decoder messages quoting them: anything that came
 * from the network) made safe for one log line: control bytes (C0, DEL, the C1 range
 * U+0080..U+009F), backslash and invalid UTF-8 become \n, \t, \\ or \xHH, so a peer
 * cannot forge log lines ("\n...bkstord error: ...") or send terminal escapes to
 * whoever reads the log. Valid UTF-8 stays readable. Writes at most cap bytes with
 * the NUL (a longer text is cut, ending in "..."), returns out. */
const char *log_esc(char *out, size_t cap, const void *s, size_t n);
const char *log_escs(char *out, size_t cap, const char *s); /* NUL-terminated s */
#define LOG_ESC_LEN 400 /* a buffer for log_esc: room for a name or a path's start */

#define LOG_E(...) blog(CFG_LOG_ERROR, __VA_ARGS__)
#define LOG_W(...) blog(CFG_LOG_WARN, __VA_ARGS__)
#define LOG_I(...) blog(CFG_LOG_INFO, __VA_ARGS__)
#define LOG_D(...) blog(CFG_LOG_DEBUG, __VA_ARGS__)

#endif /* BKS_DAEMON_LOG_H */
