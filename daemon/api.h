/* daemon/api.h: the control API (docs/api.md): JSON over HTTP (libmicrohttpd) on a
 * Unix-domain socket (mode 0600: whoever can open it is the administrator). The
 * dashboard's TCP listener will serve the same handlers behind a login. */
#ifndef BKS_API_H
#define BKS_API_H

#include "common/bks.h"
#include "daemon/appl.h"
#include "daemon/native.h"

typedef struct api api;

int api_start(appl *ap, native_srv *nsrv, const char *socket_path, api **out, bks_err *e);
void api_stop(api *a); /* accepts NULL; removes the socket */
/* SIGHUP: the dashboard's admin password (a change ends every session), session
 * timeout and read-only API tokens from cfg (copied). */
void api_reload(api *a, const bks_cfg *cfg);

#define API_BODY_MAX (64u << 10)

#endif /* BKS_API_H */
