/* daemon/cfg_rewrite.h: change one key of the configuration file in place, keeping
 * every other line (comments included) as it is: for what the daemon learns at run
 * time and must find again after a restart (the admin password's hash, the disks a
 * replace or an add-spare brought in). */
#ifndef BKS_CFG_REWRITE_H
#define BKS_CFG_REWRITE_H

#include "common/bks.h"

/* Replace every `key = ...` line of [section] with one line per value (n values; n 0
 * removes the key), adding the section at the end if it is missing. Safe from any
 * thread: rewrites are serialized (a process-wide mutex plus flock on the file's
 * directory), each written to its own mkstemp file beside PATH, fsynced, renamed
 * over PATH (mode 0600), the directory fsynced: a crash leaves the old file or the
 * new one, and concurrent rewrites of different keys all land. Lines are read by
 * the daemon's lexer (common/ini.h), so `[ section ]` and `key=value` are found as
 * cfg_load finds them; a file cfg_load's lexer would refuse is not rewritten
 * (-EINVAL, e names the line). */
int cfg_rewrite(const char *path, const char *section, const char *key,
                const char *const *vals, int n, bks_err *e);

#endif /* BKS_CFG_REWRITE_H */
