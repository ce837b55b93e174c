/* cli/dcmd.h: what the bkstorctl commands that ask a running bkstord share (its
 * control API, docs/api.md: JSON over HTTP on a Unix socket): the options that pick
 * the daemon, one request with the daemon's sentence as the error, JSON bodies and
 * replies, the jobs of GET /api/v1/jobs and waiting for one to end. The commands are
 * in cmd_status.c (status, array show, events), cmd_disk.c (disk ...), cmd_jobs.c
 * (scrub, gc, verify, commit) and cmd_passwd.c.
 *
 * Which daemon: --api SOCKET, else $BKSTOR_API, else api_socket from the client
 * configuration (--client FILE, $BKSTOR_CLIENT, /etc/bkstor/client.conf), else
 * /run/bkstor/api.sock.
 *
 * Exit status: 0 when the daemon answered 2xx (and, for --wait, the job finished
 * clean: no damaged object, no unrecoverable row), else 1 with the daemon's "error"
 * sentence on stderr; 2 for a wrong command line.
 */
#ifndef BKS_CLI_DCMD_H
#define BKS_CLI_DCMD_H

#include <signal.h>
#include <stdint.h>
#include <stdio.h>

#include "cli/cli.h"
#include "cli/client_conf.h"
#include "cli/http.h"
#include "common/json.h"
#include "common/jsonp.h"

/* Option ids dcmd_init knows; DCMD_COMMON_OPTS goes first in every command's table. */
enum { O_API = 100, O_CLIENT, O_WAIT, O_FORCE, O_OFF, O_MIN_LIVE, O_SINCE, O_FOLLOW,
       O_STDIN };
#define DCMD_COMMON_OPTS {"--api", 1, O_API}, {"--client", 1, O_CLIENT}

typedef struct dcmd {
	cli_ctx *c;
	char name[48];         /* "disk replace", for messages */
	const char *api, *client, *min_live, *since;
	int wait, force, off, follow, from_stdin;
	int npos;
	char **pos;            /* operands */
	http_target t;
} dcmd;

typedef client_reply reply;

/* Parse options and check the operand count (npos_min..npos_max; operands names
 * them for the usage message); load the client configuration and fill the target.
 * CLI_OK, or the exit code after a message. */
int dcmd_init(dcmd *d, cli_ctx *c, int argc, char **argv, const cli_opt *opts,
              int npos_min, int npos_max, const char *operands);

/* One request; CLI_OK with rp filled (a 2xx JSON object: client_reply_free it), or
 * CLI_FAIL after "bkstorctl: disk replace: <the daemon's sentence>". */
int dcmd_call(dcmd *d, const char *method, const char *path, const char *body, reply *rp);

/* POST body to path; print the reply (--json) or its message. */
int dcmd_post(dcmd *d, const char *path, const char *body);


/* Members of a reply object, absent or mistyped ones as 0 / dflt / "". */
uint64_t dcmd_u(const jsonp_val *o, const char *key);
double dcmd_d(const jsonp_val *o, const char *key, double dflt);
const char *dcmd_s(const jsonp_val *o, const char *key);

/* While bkstorctl polls (--wait, events --follow), SIGINT (and with term, SIGTERM)
 * only set a flag, so it can stop and say that the job goes on in the daemon.
 * dcmd_sig_restore puts the old handlers back. */
typedef struct dcmd_sigs {
	struct sigaction old_int, old_term;
	int term;
} dcmd_sigs;
void dcmd_sig_catch(dcmd_sigs *s, int term);
void dcmd_sig_restore(const dcmd_sigs *s);
int dcmd_interrupted(void);

/* cmd_jobs.c: the job of this kind ("scrub", "gc", "verify") in a document's "jobs"
 * (NULL: none); one line about it (0: nothing to tell, idle). now: wall-clock ns. */
const jsonp_val *dcmd_find_job(const jsonp_val *root, const char *kind);
int dcmd_fmt_job(const jsonp_val *j, char *out, size_t cap, uint64_t now);

#endif /* BKS_CLI_DCMD_H */
