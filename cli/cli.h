/* cli/cli.h: what the files of bkstorctl share: the command table entry, the run
 * context, option parsing, error and progress output.
 *
 * Exit codes: 0 success, 1 the operation failed (a "bkstorctl: ..." line on stderr
 * says why), 2 the command line was wrong. stdout carries only the result (a human
 * table or, with --json, one JSON document); events, errors and progress go to
 * stderr, so `bkstorctl --json ... | tool` always gets clean JSON.
 */
#ifndef BKS_CLI_H
#define BKS_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/json.h"

enum cli_exit { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

struct cli_cmd;

typedef struct cli_ctx {
	int json;                  /* --json: results as one JSON document */
	int tty;                   /* stderr is a terminal: progress lines allowed */
	int progress_shown;        /* a \r progress line is on stderr, not yet cleared */
	uint64_t progress_ns;      /* when it was last drawn (monotonic) */
	const struct cli_cmd *cmd; /* the command being run, for usage messages */
	struct disk_engine *eng;   /* one AIO context for every disk the command opens */
} cli_ctx;

/* A command handler gets the arguments after "<group> <verb>" (--json already
 * removed) and returns an exit code. */
typedef int (*cli_handler)(cli_ctx *c, int argc, char **argv);

typedef struct cli_cmd {
	const char *group;         /* "put", "disk", "scrub", "array", ... */
	const char *verb;          /* "create" */
	const char *args;          /* synopsis of the arguments, for usage */
	const char *help;          /* one line */
	cli_handler run;
} cli_cmd;

/* bkstorctl.c: messages. cli_err prints "bkstorctl: <msg>" on stderr (clearing a
 * progress line first); cli_usage prints the message and the command's synopsis and
 * returns CLI_USAGE. */
void cli_err(cli_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int cli_usage(cli_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* bkstorctl.c: a progress line on stderr, only when it is a terminal. Draw when
 * cli_progress_due() says so (at most ~4 times a second); clear before the result. */
int cli_progress_due(cli_ctx *c);
void cli_progress_draw(cli_ctx *c, const char *line);
void cli_progress_clear(cli_ctx *c);

/* bkstorctl.c: option parsing for a verb. Long options only ("--name NAME" or
 * "--name=NAME"), anywhere among the operands; "--" ends options. Operands are moved,
 * in order, to argv[0..npos) as the parse goes. */
typedef struct cli_opt {
	const char *name;          /* with the dashes: "--strip-size" */
	int has_arg;
	int id;                    /* > 0 */
} cli_opt;

typedef struct cli_args {
	int argc, i, npos, dashdash;
	char **argv;
} cli_args;

void cli_args_init(cli_args *p, int argc, char **argv);
/* Returns the next option's id (its argument in *val), 0 when all arguments are
 * consumed, or -1 after printing a usage error. */
int cli_next_opt(cli_ctx *c, cli_args *p, const cli_opt *opts, const char **val);

/* "256K", "1M", "1MiB", "65536": bytes (K/M/G/T are powers of 1024). 0 or -EINVAL,
 * -ERANGE. */
int cli_parse_size(const char *s, uint64_t *out);
/* "1:02:03", "0:42"; "--:--" when s < 0. Returns out. */
char *cli_fmt_duration(double s, char *out, size_t cap);
/* "12.3 MiB/s" (bytes per second, as bks_fmt_bytes). Returns out. */
char *cli_fmt_rate(double bps, char *out, size_t cap);

/* status_out.c: an array's status (storage/array.h) on stdout. */
struct arr_status;
struct arr_job_status;
void cli_print_status_human(const struct arr_status *st);
int cli_print_status_json(const struct arr_status *st); /* 0 or json_finish's error */
double cli_job_pct(const struct arr_job_status *j);     /* done/total, 0..100 */

/* status_out.c: the human layout shared by the offline and daemon commands.
 * cli_print_field: "label: text" with the text wrapped at 80 columns (label "":
 * continues the field above; NULL: a paragraph of its own), control characters
 * shown as '?'. cli_fmt_wall: wall-clock ns as local "YYYY-MM-DD HH:MM:SS" ("?"
 * for 0); returns out. */
void cli_print_field(const char *label, const char *raw);
char *cli_fmt_wall(uint64_t ns, char *out, size_t cap);

/* cmd_array.c */
int cmd_array_create(cli_ctx *c, int argc, char **argv);
int cmd_array_show(cli_ctx *c, int argc, char **argv);
int cmd_array_import(cli_ctx *c, int argc, char **argv);
int cmd_array_scrub(cli_ctx *c, int argc, char **argv);
int cmd_array_fail(cli_ctx *c, int argc, char **argv);
int cmd_array_replace(cli_ctx *c, int argc, char **argv);
int cmd_array_add_spare(cli_ctx *c, int argc, char **argv);
int cmd_array_offline(cli_ctx *c, int argc, char **argv);
int cmd_array_online(cli_ctx *c, int argc, char **argv);
int cmd_array_remove(cli_ctx *c, int argc, char **argv);
/* Assemble the array on the DISKs (claim: put spares in and commit). NULL after an
 * error message. */
struct arr;
struct arr *cli_import_array(cli_ctx *c, char *const *paths, int n, int claim);

/* dcmd.c: a daemon's reply (or part of one) as indented JSON on stdout; CLI_OK or
 * CLI_FAIL. */
struct jsonp_val;
int cli_print_json(const struct jsonp_val *v);

/* cmd_status.c, cmd_disk.c, cmd_jobs.c, cmd_passwd.c: commands to a running bkstord
 * (the control API; cli/dcmd.h) */
int cmd_status(cli_ctx *c, int argc, char **argv);
int cmd_disk_list(cli_ctx *c, int argc, char **argv);
int cmd_disk_fail(cli_ctx *c, int argc, char **argv);
int cmd_disk_replace(cli_ctx *c, int argc, char **argv);
int cmd_disk_add_spare(cli_ctx *c, int argc, char **argv);
int cmd_disk_remove(cli_ctx *c, int argc, char **argv);
int cmd_disk_offline(cli_ctx *c, int argc, char **argv);
int cmd_disk_online(cli_ctx *c, int argc, char **argv);
int cmd_disk_locate(cli_ctx *c, int argc, char **argv);
int cmd_scrub_start(cli_ctx *c, int argc, char **argv);
int cmd_scrub_stop(cli_ctx *c, int argc, char **argv);
int cmd_scrub_pause(cli_ctx *c, int argc, char **argv);
int cmd_scrub_resume(cli_ctx *c, int argc, char **argv);
int cmd_scrub_status(cli_ctx *c, int argc, char **argv);
int cmd_gc_start(cli_ctx *c, int argc, char **argv);
int cmd_gc_status(cli_ctx *c, int argc, char **argv);
int cmd_verify(cli_ctx *c, int argc, char **argv);
int cmd_commit(cli_ctx *c, int argc, char **argv);
int cmd_events(cli_ctx *c, int argc, char **argv);
int cmd_passwd(cli_ctx *c, int argc, char **argv);
/* `array show` without disks: the array as the daemon sees it. */
int cmd_daemon_array_show(cli_ctx *c, int argc, char **argv);

/* cmd_store.c */
int cmd_store_create(cli_ctx *c, int argc, char **argv);
int cmd_store_stats(cli_ctx *c, int argc, char **argv);
int cmd_store_verify(cli_ctx *c, int argc, char **argv);
int cmd_store_rebuild_index(cli_ctx *c, int argc, char **argv);

/* cmd_files.c: files on a running bkstord (native protocol, cli/nclient.h) */
int cmd_put(cli_ctx *c, int argc, char **argv);
int cmd_get(cli_ctx *c, int argc, char **argv);
int cmd_ls(cli_ctx *c, int argc, char **argv);
int cmd_stat(cli_ctx *c, int argc, char **argv);
int cmd_rm(cli_ctx *c, int argc, char **argv);
int cmd_mkdir(cli_ctx *c, int argc, char **argv);
int cmd_mv(cli_ctx *c, int argc, char **argv);
int cmd_ping(cli_ctx *c, int argc, char **argv);

/* cmd_lun.c: LUNs on a running bkstord (control API) */
int cmd_lun_list(cli_ctx *c, int argc, char **argv);
int cmd_lun_create(cli_ctx *c, int argc, char **argv);
int cmd_lun_resize(cli_ctx *c, int argc, char **argv);
int cmd_lun_acl(cli_ctx *c, int argc, char **argv);
int cmd_lun_set(cli_ctx *c, int argc, char **argv);
int cmd_lun_delete(cli_ctx *c, int argc, char **argv);

/* cmd_repl.c: replication, through the daemon's control API */
int cmd_repl_status(cli_ctx *c, int argc, char **argv);
int cmd_repl_token(cli_ctx *c, int argc, char **argv);
int cmd_repl_pair(cli_ctx *c, int argc, char **argv);
int cmd_repl_set(cli_ctx *c, int argc, char **argv);
/* One line about replication from the status document's "repl" object (NULL:
 * "disabled"): role, twin, state, lag, rate; for `bkstorctl status`. */
void cli_repl_line(const struct jsonp_val *repl, char *out, size_t cap);
int cmd_repl_promote(cli_ctx *c, int argc, char **argv);
int cmd_repl_reseed(cli_ctx *c, int argc, char **argv);

/* A request body for the control API: one JSON object, built with the writer
 * (which escapes paths and names). cli_body_end returns it as a string (free it), or
 * NULL when out of memory. */
typedef struct cli_body {
	char *buf;
	size_t len;
	FILE *f;
	json j;
} cli_body;
int cli_body_begin(cli_body *b); /* (cli/dcmd.c) */
char *cli_body_end(cli_body *b);

#endif /* BKS_CLI_H */
