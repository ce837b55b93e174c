/* daemon/log.h: bkstord's log: one line per event on stderr (journald adds the time
 * when it collects it; a terminal gets an ISO time), with a level filter. */
#ifndef BKS_DAEMON_LOG_H
#define BKS_DAEMON_LOG_H

#include "daemon/config.h"

void log_set_level(int level);          /* enum cfg_log_level */
int log_get_level(void);
void blog(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define LOG_E(...) blog(CFG_LOG_ERROR, __VA_ARGS__)
#define LOG_W(...) blog(CFG_LOG_WARN, __VA_ARGS__)
#define LOG_I(...) blog(CFG_LOG_INFO, __VA_ARGS__)
#define LOG_D(...) blog(CFG_LOG_DEBUG, __VA_ARGS__)

#endif /* BKS_DAEMON_LOG_H */
