/* cli/bkstorctl.c: bkstorctl's entry point: global options, the command table and
 * dispatch, and the helpers every command uses (messages, progress, options).
 *
 * A command is "<group> <verb> [args]". The table below is the one list of commands:
 * usage text and dispatch both come from it, so a new group (disk, scrub, status,
 * put/get) is a handler and a few rows.
 */
#include <config.h>

#include "cli/cli.h"
#include "cli/client_conf.h"
#include "storage/disk.h"

#include "common/bks.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

static const cli_cmd commands[] = {
	{"put", "", "SRC DEST [--overwrite|-f] [--parents|-p] [--dedup] [--client FILE] "
	 "[--server HOST:PORT]",
	 "store local file SRC (- = stdin) as DEST on the daemon", cmd_put},
	{"get", "", "SRC DEST [--offset N] [--length N] [--client FILE] [--server HOST:PORT]",
	 "copy file SRC from the daemon to local DEST (- = stdout)", cmd_get},
	{"ls", "", "[PATH] [-l] [--client FILE] [--server HOST:PORT]",
	 "list a directory on the daemon (-l: NAME TYPE SIZE MTIME)", cmd_ls},
	{"stat", "", "PATH [--client FILE] [--server HOST:PORT]",
	 "the attributes of a file or directory on the daemon", cmd_stat},
	{"rm", "", "PATH [-r] [--client FILE] [--server HOST:PORT]",
	 "remove a file or an empty directory (-r: a directory and all in it)", cmd_rm},
	{"mkdir", "", "PATH [-p] [--mode 0755] [--client FILE] [--server HOST:PORT]",
	 "create a directory on the daemon (-p: with missing parents)", cmd_mkdir},
	{"mv", "", "FROM TO [--no-replace] [--client FILE] [--server HOST:PORT]",
	 "rename a file or directory on the daemon", cmd_mv},
	{"ping", "", "[--client FILE] [--server HOST:PORT]",
	 "log in to the daemon's native protocol and time a round trip", cmd_ping},
	{"passwd", "", "[--stdin] [--api SOCKET]",
	 "set the dashboard's admin password (stored as a salted PBKDF2 hash)", cmd_passwd},
	{"status", "", "[--api SOCKET]",
	 "the daemon's health, capacity, throughput, array and jobs", cmd_status},
	{"disk", "list", "[--api SOCKET]", "the array's disks, with their error counters",
	 cmd_disk_list},
	{"disk", "fail", "DISK [--api SOCKET]",
	 "take member DISK (a path, UUID or slotN) out of service; a spare takes over",
	 cmd_disk_fail},
	{"disk", "replace", "OLD NEW [--force] [--api SOCKET]",
	 "copy member OLD onto the new disk NEW, then release OLD", cmd_disk_replace},
	{"disk", "add-spare", "PATH [--force] [--api SOCKET]", "add PATH as a hot spare",
	 cmd_disk_add_spare},
	{"disk", "remove", "DISK [--api SOCKET]", "remove a spare, or a FAULTED member",
	 cmd_disk_remove},
	{"disk", "offline", "DISK [--api SOCKET]",
	 "take a member out of service without claiming a spare (to reseat it)",
	 cmd_disk_offline},
	{"disk", "online", "DISK [--api SOCKET]",
	 "bring an OFFLINE member back; rows written meanwhile are rebuilt onto it",
	 cmd_disk_online},
	{"disk", "locate", "DISK [--off] [--api SOCKET]", "blink (or stop blinking) DISK's slot LED",
	 cmd_disk_locate},
	{"lun", "list", "[--api SOCKET]",
	 "the iSCSI LUNs: size, block size, bytes mapped, sessions, write cache, initiators",
	 cmd_lun_list},
	{"lun", "create", "NAME SIZE [--block-size 512|4096] [--initiators INI,...] [--api SOCKET]",
	 "create a thin LUN of SIZE (e.g. 10G); only the INIs may log in (default: any)",
	 cmd_lun_create},
	{"lun", "resize", "NAME SIZE [--api SOCKET]",
	 "grow or shrink a LUN (a shrink drops the bytes past the new end)", cmd_lun_resize},
	{"lun", "acl", "NAME [INITIATORS] [--api SOCKET]",
	 "set who may log in to the LUN's target (comma-separated names; none: any)",
	 cmd_lun_acl},
	{"lun", "set", "NAME write_cache on|off [--api SOCKET]",
	 "the write cache (SCSI WCE) an initiator finds at login; off: every write is "
	 "written through (refused while the LUN is in use: the initiator sets it)", cmd_lun_set},
	{"lun", "delete", "NAME [--api SOCKET]",
	 "delete a LUN and its data (refused while an initiator has it open)", cmd_lun_delete},
	{"scrub", "start", "[--wait] [--api SOCKET]", "check (and repair) every live row",
	 cmd_scrub_start},
	{"scrub", "stop", "[--api SOCKET]", "stop the scrub", cmd_scrub_stop},
	{"scrub", "pause", "[--api SOCKET]", "pause the scrub where it is", cmd_scrub_pause},
	{"scrub", "resume", "[--wait] [--api SOCKET]", "resume a paused scrub", cmd_scrub_resume},
	{"scrub", "status", "[--wait] [--api SOCKET]",
	 "the running scrub's progress, or the last scrub's result", cmd_scrub_status},
	{"gc", "start", "[--min-live F] [--wait] [--api SOCKET]",
	 "collect garbage: free segments, compact those less than F live", cmd_gc_start},
	{"gc", "status", "[--api SOCKET]", "the collection's progress or result", cmd_gc_status},
	{"verify", "", "[--wait] [--api SOCKET]",
	 "read every chunk of every file; with --wait, exit 0 only when nothing is damaged",
	 cmd_verify},
	{"commit", "", "[--api SOCKET]", "commit the transaction group now", cmd_commit},
	{"events", "", "[--since N] [--follow] [--api SOCKET]", "the daemon's recent events",
	 cmd_events},
	{"repl", "status", "[--api SOCKET]",
	 "replication: role, twin, lag (files, bytes, seconds), what crossed", cmd_repl_status},
	{"repl", "set", "KEY VALUE [--api SOCKET]",
	 "change bwlimit, window, lag_alert or lag_alert_bytes now (kept in the configuration)",
	 cmd_repl_set},
	{"repl", "token", "[--api SOCKET]",
	 "issue a one-time pairing token (on the twin) and show its fingerprint", cmd_repl_token},
	{"repl", "pair", "HOST:PORT --token TOKEN [--yes FINGERPRINT] [--api SOCKET]",
	 "pair with the twin at HOST:PORT: both pin each other's certificate", cmd_repl_pair},
	{"repl", "promote", "[--yes] [--api SOCKET]",
	 "make this twin writable; it refuses its old source from now on", cmd_repl_promote},
	{"repl", "reseed",
	 "HOST:PORT --token TOKEN [--yes FINGERPRINT] [--force] [--address HOST:PORT] "
	 "[--api SOCKET]",
	 "copy this survivor onto the new appliance at HOST:PORT, which takes the lost one's "
	 "name and id", cmd_repl_reseed},
	{"store", "create", "DISK...",
	 "create an empty dedup store on the array on DISKs", cmd_store_create},
	{"store", "stats", "DISK...",
	 "objects, logical and stored bytes, dedup and compression ratios, index size",
	 cmd_store_stats},
	{"store", "verify", "DISK...",
	 "read every chunk of every object; check checksums and fingerprints", cmd_store_verify},
	{"store", "rebuild-index", "DISK...",
	 "rebuild the fingerprint index from the segments themselves", cmd_store_rebuild_index},
	{"array", "create", "[--name NAME] [--strip-size SIZE] [--spare DISK]... [--force] DISK...",
	 "create an array on 4 to 32 DISKs (SIZE: 64K..1M, default 256K)", cmd_array_create},
	{"array", "show", "[DISK...]",
	 "show the array's status: the running daemon's, or (given DISKs) read from the disks",
	 cmd_array_show},
	{"array", "import", "DISK...",
	 "assemble the array, put spares in for missing disks, finish rebuilds", cmd_array_import},
	{"array", "scrub", "DISK...",
	 "check every row, resuming a scrub that was stopped (no store checksums here: "
	 "silently wrong strips are reported, not rewritten)", cmd_array_scrub},
	{"array", "fail", "TARGET DISK...",
	 "take TARGET (a path, disk UUID or slotN) out of service; rebuild onto a spare",
	 cmd_array_fail},
	{"array", "offline", "TARGET DISK...",
	 "take member TARGET out of service without claiming a spare (to reseat it)",
	 cmd_array_offline},
	{"array", "online", "TARGET DISK...",
	 "bring an OFFLINE member back; rows written while it was away are rebuilt onto it",
	 cmd_array_online},
	{"array", "remove", "TARGET DISK...",
	 "remove a spare, or a FAULTED member from its slot", cmd_array_remove},
	{"array", "replace", "OLD NEW [--force] DISK...",
	 "copy member OLD onto the new disk NEW (not among DISKs), then release OLD",
	 cmd_array_replace},
	{"array", "add-spare", "NEW [--force] DISK...", "add NEW to the array as a hot spare",
	 cmd_array_add_spare},
};

static void print_synopsis(FILE *f, const cli_cmd *cmd)
{
	fprintf(f, "  bkstorctl %s%s%s %s\n", cmd->group, cmd->verb[0] ? " " : "", cmd->verb,
	        cmd->args);
}

/* All commands, or those of one group (group non-NULL). */
static void usage(FILE *f, const char *group)
{
	fprintf(f, "usage: bkstorctl [--json] [-h|--help] [--version] <command> [args]\n\n"
	           "commands:\n");
	for (size_t i = 0; i < BKS_ARRAY_SIZE(commands); i++) {
		if (group && strcmp(group, commands[i].group))
			continue;
		print_synopsis(f, &commands[i]);
		fprintf(f, "      %s\n", commands[i].help);
	}
	fprintf(f, "\nDISK is a block device or a file. --json (anywhere) prints results as "
	           "JSON.\nExit status: 0 success, 1 the operation failed, 2 usage error.\n");
}

void cli_progress_clear(cli_ctx *c)
{
	if (c->progress_shown) {
		fputs("\r\033[K", stderr);
		fflush(stderr);
		c->progress_shown = 0;
	}
}

int cli_progress_due(cli_ctx *c)
{
	return c->tty && bks_now_ns() - c->progress_ns >= 250000000ull;
}

void cli_progress_draw(cli_ctx *c, const char *line)
{
	if (!c->tty)
		return;
	fprintf(stderr, "\r%s\033[K", line);
	fflush(stderr);
	c->progress_shown = 1;
	c->progress_ns = bks_now_ns();
}

void cli_err(cli_ctx *c, const char *fmt, ...)
{
	va_list ap;
	cli_progress_clear(c);
	fputs("bkstorctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int cli_usage(cli_ctx *c, const char *fmt, ...)
{
	va_list ap;
	cli_progress_clear(c);
	fputs("bkstorctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nusage:\n", stderr);
	if (c->cmd)
		print_synopsis(stderr, c->cmd);
	return CLI_USAGE;
}

void cli_args_init(cli_args *p, int argc, char **argv)
{
	memset(p, 0, sizeof(*p));
	p->argc = argc;
	p->argv = argv;
}

int cli_next_opt(cli_ctx *c, cli_args *p, const cli_opt *opts, const char **val)
{
	*val = NULL;
	while (p->i < p->argc) {
		char *s = p->argv[p->i++];
		if (p->dashdash || s[0] != '-' || !s[1]) {
			p->argv[p->npos++] = s; /* npos < i: never overwrites an unread one */
			continue;
		}
		if (!strcmp(s, "--")) {
			p->dashdash = 1;
			continue;
		}
		const char *eq = strchr(s, '=');
		size_t len = eq ? (size_t)(eq - s) : strlen(s);
		for (const cli_opt *o = opts; o && o->name; o++) {
			if (strlen(o->name) != len || strncmp(o->name, s, len))
				continue;
			if (!o->has_arg && eq) {
				cli_usage(c, "option %s takes no argument", o->name);
				return -1;
			}
			if (o->has_arg) {
				if (eq) {
					*val = eq + 1;
				} else if (p->i < p->argc) {
					*val = p->argv[p->i++];
				} else {
					cli_usage(c, "option %s needs an argument", o->name);
					return -1;
				}
			}
			return o->id;
		}
		cli_usage(c, "unknown option '%s'", s);
		return -1;
	}
	return 0;
}

int cli_parse_size(const char *s, uint64_t *out)
{
	static const char units[] = "KMGT";
	unsigned long long v;
	char *end;
	int shift = 0;

	if (!isdigit((unsigned char)s[0]))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -ERANGE;
	if (*end) {
		const char *u = strchr(units, toupper((unsigned char)*end));
		if (!u || !*u)
			return -EINVAL;
		shift = 10 * (int)(u - units + 1);
		end++;
		if (*end && strcasecmp(end, "iB") && strcasecmp(end, "B"))
			return -EINVAL;
		if (v > (UINT64_MAX >> shift))
			return -ERANGE;
	}
	*out = (uint64_t)v << shift;
	return 0;
}

char *cli_fmt_rate(double bps, char *out, size_t cap)
{
	size_t n;
	bks_fmt_bytes(bps > 0 ? (uint64_t)(bps + 0.5) : 0, out, cap);
	n = strlen(out);
	snprintf(out + n, cap - n, "/s");
	return out;
}

char *cli_fmt_duration(double s, char *out, size_t cap)
{
	if (s < 0 || s > 1e9) {
		snprintf(out, cap, "--:--");
		return out;
	}
	unsigned long t = (unsigned long)(s + 0.5);
	if (t >= 3600)
		snprintf(out, cap, "%lu:%02lu:%02lu", t / 3600, t / 60 % 60, t % 60);
	else
		snprintf(out, cap, "%lu:%02lu", t / 60, t % 60);
	return out;
}

static int is_help(const char *s)
{
	return !strcmp(s, "-h") || !strcmp(s, "--help");
}

static int group_known(const char *g)
{
	for (size_t i = 0; i < BKS_ARRAY_SIZE(commands); i++)
		if (!strcmp(commands[i].group, g))
			return 1;
	return 0;
}

/* The result must reach stdout: a full disk or a closed pipe is a failure. */
static int finish(int rc)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "bkstorctl: writing the output: %s\n", strerror(errno));
		return rc ? rc : CLI_FAIL;
	}
	return rc;
}

int main(int argc, char **argv)
{
	cli_ctx c = {0};
	int n = 1, help = 0, dashdash = 0;

	c.tty = isatty(STDERR_FILENO);
	/* --json may appear anywhere before "--": take it out of argv. */
	for (int i = 1; i < argc; i++) {
		if (!dashdash && !strcmp(argv[i], "--json")) {
			c.json = 1;
			continue;
		}
		if (!strcmp(argv[i], "--"))
			dashdash = 1;
		argv[n++] = argv[i];
	}
	argc = n;
	argv[argc] = NULL;

	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (is_help(argv[i])) {
			help = 1;
		} else if (!strcmp(argv[i], "--version")) {
			printf("bkstorctl (bkstor) %s\n", PACKAGE_VERSION);
			return finish(CLI_OK);
		} else {
			fprintf(stderr, "bkstorctl: unknown option '%s'\n", argv[i]);
			usage(stderr, NULL);
			return CLI_USAGE;
		}
	}
	if (i >= argc) {
		usage(help ? stdout : stderr, NULL);
		return help ? finish(CLI_OK) : CLI_USAGE;
	}
	const char *group = argv[i++];
	if (!group_known(group)) {
		fprintf(stderr, "bkstorctl: unknown command '%s'\n", group);
		usage(stderr, NULL);
		return CLI_USAGE;
	}
	/* A command without verbs ("status", "verify"): its arguments follow at once. */
	const char *verb = "";
	for (size_t k = 0; k < BKS_ARRAY_SIZE(commands); k++)
		if (!strcmp(commands[k].group, group) && !commands[k].verb[0])
			goto dispatch;
	if (i >= argc || is_help(argv[i])) {
		if (!help && i >= argc)
			fprintf(stderr, "bkstorctl: '%s' needs a verb\n", group);
		usage(help || i < argc ? stdout : stderr, group);
		return help || i < argc ? finish(CLI_OK) : CLI_USAGE;
	}
	verb = argv[i++];
dispatch:
	for (size_t k = 0; k < BKS_ARRAY_SIZE(commands); k++) {
		if (strcmp(commands[k].group, group) || strcmp(commands[k].verb, verb))
			continue;
		c.cmd = &commands[k];
		for (int j = i; j < argc && strcmp(argv[j], "--"); j++)
			help |= is_help(argv[j]);
		if (help) {
			printf("usage:\n");
			print_synopsis(stdout, c.cmd);
			printf("      %s\n", c.cmd->help);
			return finish(CLI_OK);
		}
		int rc = c.cmd->run(&c, argc - i, argv + i);
		disk_engine_free(c.eng); /* after every disk of the command is closed */
		return finish(rc);
	}
	fprintf(stderr, "bkstorctl: unknown %s verb '%s'\n", group, verb);
	usage(stderr, group);
	return CLI_USAGE;
}
