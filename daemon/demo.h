/* daemon/demo.h: `bkstord --demo DIR`: file-backed disks, a configuration and the
 * client credentials in DIR, made the first time; later runs reuse them. */
#ifndef BKS_DEMO_H
#define BKS_DEMO_H

#include <stddef.h>

#include "common/bks.h"
#include "daemon/config.h"

#define DEMO_DISKS 8
#define DEMO_SPARES 1

/* Make DIR ready (disks, DIR/bkstord.conf, DIR/client.conf) unless it already is;
 * conf_path gets the configuration's path. port: the native port (0: 7070), the
 * dashboard on port + 1. */
int demo_prepare(const char *dir, int port, char *conf_path, size_t cap, char password[32],
                 bks_err *e);
/* Tell the user how to reach the demo; password: the dashboard's admin password when
 * it was just made (printed this once; only its hash is kept), else "". */
void demo_banner(const char *dir, const bks_cfg *cfg, const char *password);

#endif /* BKS_DEMO_H */
