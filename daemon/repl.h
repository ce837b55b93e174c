/* daemon/repl.h: replication to a twin appliance (docs/architecture.md
 * "Replication", docs/protocol.md "Replication", docs/config.md "[repl]").
 *
 * Every bkstord has an identity made at its first start and kept beside its
 * configuration: a self-signed certificate and key (EC P-256; the key mode 0600) and
 * a 128-bit appliance id. Two appliances pair once (`bkstorctl repl token` on the
 * twin, `bkstorctl repl pair HOST:PORT` on the source): each pins the other's
 * certificate by its SHA-256 fingerprint. From then on the source sends, after each
 * commit, what changed under the replicated paths, over TLS 1.3 with mutual
 * authentication; anything else (an unpinned or wrong certificate, plain TCP, an
 * older TLS) is refused and logged.
 *
 * Threads: a sender thread (when this appliance has a twin to send to; while a cycle
 * sends files, up to [repl] connections - 1 helpers with a connection each), a listener
 * thread and one thread per accepted connection (when [repl] enable). They take
 * appl.mu only around store and namespace calls, never across network I/O.
 */
#ifndef BKS_REPL_H
#define BKS_REPL_H

#include <stddef.h>
#include <stdint.h>

#include "common/bks.h"
#include "common/json.h"
#include "daemon/appl.h"

typedef struct repl repl;

/* Load or make the identity beside config_path, start the listener and the sender
 * as the configuration says. With [repl] enable = no: *out is NULL and 0 returned
 * (status then says "disabled"). */
int repl_start(appl *ap, const char *config_path, repl **out, bks_err *e);
void repl_stop(repl *r);                     /* accepts NULL */
void repl_reload(repl *r, const bks_cfg *c); /* bwlimit, delete_delay, window, lag_alert* */
/* The "repl" object of the status document (r may be NULL). */
void repl_status_json(repl *r, json *j);

/* Control API verbs (daemon/api.c calls them; Unix socket only). Each returns 0 or
 * -errno with a sentence in e, and writes its result object's fields into j. */
int repl_api_token(repl *r, json *j, bks_err *e);
/* fingerprint NULL: connect and report the twin's fingerprint only (nothing is
 * pinned). Else pair: the twin must present exactly that fingerprint, and token is
 * the one its admin read from `bkstorctl repl token`. */
int repl_api_pair(repl *r, const char *address, const char *token,
                  const char *fingerprint, json *j, bks_err *e);

/* Change a [repl] setting at run time (bwlimit, window, lag_alert, lag_alert_bytes;
 * value as the file would hold it): checked as the file is, written to the
 * configuration file (cfg_rewrite), then applied; the sender takes it at its next
 * chunk or look at the window. */
int repl_api_set(repl *r, const char *key, const char *value, json *j, bks_err *e);
/* Failover (daemon/repl_failover.c). Promote: this twin takes client writes from now
 * on and refuses replication from its source (whose pin it keeps, retired); the
 * deletes it held back are dropped (listed in repl.deletes-dropped). */
int repl_api_promote(repl *r, json *j, bks_err *e);
/* Reseed, on the survivor of a pair (promoted, or a source whose twin was lost):
 * make the new appliance at address (its token and fingerprint, as for pair) a copy
 * of this one; at the end it takes the lost appliance's id and name and the pair
 * runs in its first direction again. force: the new appliance may hold files.
 * ret_addr: where the new appliance reaches this one afterwards (NULL: the address
 * this one connects from, with [repl] listen's port). fingerprint NULL: probe. */
int repl_api_reseed(repl *r, const char *address, const char *token, const char *fingerprint,
                    int force, const char *ret_addr, json *j, bks_err *e);

#endif /* BKS_REPL_H */
