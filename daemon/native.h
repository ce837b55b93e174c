/* daemon/native.h: the native streaming protocol server (docs/protocol.md).
 *
 * One accept thread polls every listen socket; each connection gets a thread that
 * authenticates the client (challenge/response, failures rate-limited per source
 * address), then serves requests one at a time: PUT (plain or source-dedup), GET,
 * STAT, LIST, MKDIR, RENAME, DELETE, STATUS, PING. Network I/O happens without the
 * appliance lock; store and namespace calls take it briefly.
 *
 * Misbehaving clients (bad frames, an idle or vanished peer past idle_timeout, a
 * frame larger than max_frame) get an ERROR when possible and a closed connection;
 * a PUT that does not reach a valid END is aborted: its object never existed.
 */
#ifndef BKS_NATIVE_H
#define BKS_NATIVE_H

#include "common/bks.h"
#include "daemon/appl.h"

typedef struct native_srv native_srv;

/* Bind and listen on every configured address; start accepting. */
int native_start(appl *ap, native_srv **out, bks_err *e);
/* Stop accepting, end every connection (in-flight PUTs are aborted), wait for the
 * threads. */
void native_stop(native_srv *ns);
/* Replace the client secrets and limits (SIGHUP). Takes what it needs from cfg. */
int native_reload(native_srv *ns, const bks_cfg *cfg, bks_err *e);
int native_connections(native_srv *ns);
/* The bound port of the first listener (tests listen on port 0? no: for messages). */
int native_port(native_srv *ns);

#endif /* BKS_NATIVE_H */
