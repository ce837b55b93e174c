/* daemon/iscsi.h: the iSCSI target (RFC 7143) over the LUNs (daemon/lun.h), their
 * SCSI device servers (daemon/sbc.h) and the codecs of proto/iscsi.h.
 * docs/iscsi.md tells what is negotiated and the limits; docs/architecture.md
 * "iSCSI" the design.
 *
 * iscsi.c:     the listener, connections (one thread each, as the NFS server), PDU
 *              reading with a deadline on every read, the login phase (security and
 *              operational stages, CHAP), SendTargets, the device table (one
 *              sbc_dev per LUN, shared by every session using it), status.
 * iscsi_ffp.c: the full feature phase: CmdSN/ExpCmdSN/MaxCmdSN window, SCSI
 *              commands with immediate, unsolicited and solicited (R2T) data,
 *              Data-In with residuals, status and sense, NOP, TMF, Text, Logout.
 *
 * Sessions: each LUN is its own target, `<iqn prefix>:<lun name>`, exposing LUN 0.
 * One connection per session (MaxConnections=1); a new login with the same
 * initiator name, ISID and target ends the old session first (reinstatement).
 * ErrorRecoveryLevel 0: a protocol error ends the connection, and with it the
 * session.
 *
 * Locking: srv->mu guards the connection list, the device table, the CHAP settings
 * and each connection's names and counters shown in status; never held across
 * network I/O or sbc_exec. A connection's protocol state belongs to its thread.
 * sbc_exec and lun_* take their own locks (appl.mu inside lun.c).
 */
#ifndef BKS_ISCSI_SRV_H
#define BKS_ISCSI_SRV_H

#include "common/bks.h"
#include "common/json.h"
#include "daemon/appl.h"
#include "daemon/lun.h"

typedef struct iscsi_srv iscsi_srv;

/* Start the target when cfg has [iscsi] enable = yes (else *out = NULL, 0). ls: the
 * appliance's LUNs (borrowed until iscsi_stop). */
int iscsi_start(appl *ap, lun_set *ls, iscsi_srv **out, bks_err *e);
/* Stop: ask every initiator to log out (Async Message), close the connections,
 * release the devices, wait for the threads. NULL ok. */
void iscsi_stop(iscsi_srv *s);
/* SIGHUP: the CHAP settings of cfg apply to the next login. NULL ok. */
void iscsi_reload(iscsi_srv *s, const bks_cfg *cfg);
/* The "iscsi" object of the status document. */
void iscsi_status_json(iscsi_srv *s, json *j);
int iscsi_port(iscsi_srv *s);
/* The target name of a LUN ("<prefix>:<lun>") into out (cap bytes). */
void iscsi_target_name(iscsi_srv *s, const char *lun, char *out, size_t cap);

#endif /* BKS_ISCSI_SRV_H */
