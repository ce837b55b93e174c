/* cli/cmd_array.c: `bkstorctl array <verb>`: offline administration of an array.
 *
 * Offline: the CLI opens the disks itself (storage/array.h over storage/disk.h), for
 * an array no daemon runs; on a running daemon the same actions go over its control
 * API (`bkstorctl disk ...`, `scrub ...`, and `array show` without DISKs: cli/cmd_disk.c,
 * cmd_jobs.c, cmd_status.c). Block devices are opened O_EXCL, so a daemon's disks are refused;
 * regular-file disks are not locked yet (issue 14).
 *
 * Every verb assembles the array from the DISKs on the command line, does one thing,
 * runs the background work that thing started (a rebuild, a replace, a scrub) to
 * completion, prints the status and closes.
 * Only `show` changes nothing: it imports without claiming spares and never commits.
 *
 * Disk ownership: we own a disk from disk_open until arr_create/arr_import/arr_replace
 * /arr_add_spare succeeds with it; on their failure it is ours again to close.
 */
#include <config.h>

#include "cli/cli.h"
#include "cli/client_conf.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/bks.h"
#include "storage/array.h"
#include "storage/devprobe.h"
#include "storage/disk.h"

#define BG_STEP_ROWS 64 /* rows per arr_bg_step: keeps progress and ^C responsive */

enum import_mode {
	IMPORT_LOOK,  /* no spare claimed, nothing written */
	IMPORT_CLAIM, /* spares claimed for missing disks; the result committed */
};

enum bg_scope {
	BG_REBUILD, /* rebuilds and replaces; a scrub is left where it is */
	BG_ALL,     /* everything, scrub included */
};

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

static void on_event(void *ctx, int level, const char *msg)
{
	cli_err(ctx, "event: %s%s",
	        level == ARR_EV_ERR ? "error: " : level == ARR_EV_WARN ? "warning: " : "", msg);
}

static void close_disks(disk **d, int n)
{
	for (int i = 0; i < n; i++) {
		disk_close(d[i]);
		d[i] = NULL;
	}
}

/* Open paths[0..n) into d[]; on failure none stays open. */
static int open_disks(cli_ctx *c, char *const *paths, int n, disk **d)
{
	if (!c->eng) {
		int r = disk_engine_new(&c->eng);
		if (r < 0) {
			cli_err(c, "io_setup: %s (too many AIO contexts? see fs.aio-max-nr)",
			        strerror(-r));
			return r;
		}
	}
	for (int i = 0; i < n; i++) {
		bks_err e = {0};
		int r = disk_open_on(c->eng, paths[i], &d[i], &e);
		if (r < 0) {
			cli_err(c, "%s", bks_errmsg(&e, r));
			close_disks(d, i);
			return r;
		}
	}
	return 0;
}

/* A commit that keeps the upper layer's root as it is. */
static int commit_keep_root(cli_ctx *c, arr *a)
{
	uint8_t root[ARR_ROOT_MAX];
	bks_err e = {0};
	size_t len = arr_root(a, root, sizeof(root));
	int r;

	if (len > sizeof(root)) {
		cli_err(c, "array root of %zu bytes is larger than %d", len, ARR_ROOT_MAX);
		return -EINVAL;
	}
	r = arr_commit(a, root, len, &e);
	if (r < 0)
		cli_err(c, "commit: %s", bks_errmsg(&e, r));
	return r;
}

/* Open the DISKs and assemble the array on them. */
static arr *import_paths(cli_ctx *c, char *const *paths, int n, int mode);

arr *cli_import_array(cli_ctx *c, char *const *paths, int n, int claim)
{
	return import_paths(c, paths, n, claim ? IMPORT_CLAIM : IMPORT_LOOK);
}

static arr *import_paths(cli_ctx *c, char *const *paths, int n, int mode)
{
	disk **d = calloc((size_t)n, sizeof(*d));
	arr_config cfg;
	bks_err e = {0};
	arr *a = NULL;
	int r;

	if (!d) {
		cli_err(c, "out of memory");
		return NULL;
	}
	if (open_disks(c, paths, n, d) < 0)
		goto free_d;
	arr_config_defaults(&cfg);
	cfg.no_auto_spare = mode == IMPORT_LOOK;
	cfg.ev_fn = on_event;
	cfg.ev_ctx = c;
	r = arr_import(&cfg, d, n, &a, &e);
	if (r < 0) {
		cli_err(c, "%s", bks_errmsg(&e, r));
		close_disks(d, n);
		goto free_d;
	}
	if (mode == IMPORT_CLAIM && commit_keep_root(c, a) < 0) {
		arr_close(a);
		a = NULL;
	}
free_d:
	free(d);
	return a;
}

/* A TARGET given as a path may be spelled differently from the DISK it names
 * ("./d0" vs "d0"); the array knows disks by the path they were opened with. */
static const char *resolve_name(const char *name, char *const *paths, int n)
{
	struct stat want, st;
	if (stat(name, &want) != 0)
		return name; /* a UUID, slotN, or a disk that is not present */
	for (int i = 0; i < n; i++)
		if (stat(paths[i], &st) == 0 && st.st_dev == want.st_dev &&
		    st.st_ino == want.st_ino)
			return paths[i];
	return name;
}

/* Refuse a NEW disk that is also among the DISKs (the array would own it twice). */
static int check_new_not_member(cli_ctx *c, const char *nd, char *const *paths, int n)
{
	struct stat want, st;
	int have = stat(nd, &want) == 0;
	for (int i = 0; i < n; i++)
		if (!strcmp(nd, paths[i]) || (have && stat(paths[i], &st) == 0 &&
		                              st.st_dev == want.st_dev && st.st_ino == want.st_ino))
			return cli_usage(c, "the new disk %s must not be among the array's disks "
			                 "(it is also given as %s)", nd, paths[i]);
	return 0;
}

static const arr_job_status *find_job(const arr_status *st, const char *kind)
{
	for (int i = 0; i < st->njobs; i++)
		if (!strcmp(st->jobs[i].kind, kind))
			return &st->jobs[i];
	return NULL;
}

static void draw_progress(cli_ctx *c, const arr_status *st)
{
	const arr_job_status *j = find_job(st, "rebuild");
	char line[160], eta[32];

	if (!j)
		j = find_job(st, "replace");
	if (!j)
		j = find_job(st, "scrub");
	if (!j)
		return;
	snprintf(line, sizeof(line), "%s %5.1f%%  %llu/%llu rows  %.1f MiB/s  ETA %s", j->kind,
	         cli_job_pct(j), (unsigned long long)j->done_rows, (unsigned long long)j->total_rows,
	         j->rate_bps / (1024.0 * 1024.0), cli_fmt_duration(j->eta_s, eta, sizeof(eta)));
	cli_progress_draw(c, line);
}

/* Run background work until none is left (in scope), with a progress line. On ^C or
 * SIGTERM, stop, commit the cursors (the next import resumes there) and fail. */
static int run_bg(cli_ctx *c, arr *a, int scope)
{
	struct sigaction sa = {.sa_handler = on_signal}, old_int, old_term;
	arr_status *st = malloc(sizeof(*st));
	int r = 0;

	if (!st) {
		cli_err(c, "out of memory");
		return -ENOMEM;
	}
	sigemptyset(&sa.sa_mask);
	interrupted = 0;
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	c->progress_ns = bks_now_ns(); /* no line at all for work that ends at once */
	for (;;) {
		if (scope == BG_REBUILD) {
			arr_get_status(a, st);
			if (!find_job(st, "rebuild") && !find_job(st, "replace"))
				break;
		}
		if (interrupted) {
			cli_progress_clear(c);
			commit_keep_root(c, a);
			cli_err(c, "interrupted; progress is saved and the work resumes at the "
			        "next import");
			r = -EINTR;
			break;
		}
		r = arr_bg_step(a, BG_STEP_ROWS);
		if (r < 0) {
			cli_err(c, "background work stopped: %s", strerror(-r));
			break;
		}
		if (r == 0)
			break;
		if (cli_progress_due(c)) {
			arr_get_status(a, st);
			draw_progress(c, st);
		}
	}
	cli_progress_clear(c);
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	free(st);
	return r < 0 ? r : 0;
}

/* Print the array's status; st (may be NULL) receives it. */
static int print_status(cli_ctx *c, arr *a, arr_status *out)
{
	arr_status *st = out ? out : malloc(sizeof(*st));
	int r = 0;

	if (!st) {
		cli_err(c, "out of memory");
		return -ENOMEM;
	}
	arr_get_status(a, st);
	cli_progress_clear(c);
	if (c->json)
		r = cli_print_status_json(st);
	else
		cli_print_status_human(st);
	if (st != out)
		free(st);
	return r;
}

/* ---- the verbs ---- */

enum { OPT_NAME = 1, OPT_STRIP, OPT_SPARE, OPT_FORCE };

static const cli_opt no_opts[] = {{NULL, 0, 0}};
static const cli_opt force_opt[] = {{"--force", 0, OPT_FORCE}, {NULL, 0, 0}};

/* Parse a verb that takes only operands (and maybe --force): at least min operands. */
static int parse_simple(cli_ctx *c, int argc, char **argv, const cli_opt *opts, int min,
                        int *force)
{
	cli_args p;
	const char *val;
	int id;

	cli_args_init(&p, argc, argv);
	while ((id = cli_next_opt(c, &p, opts, &val)) > 0)
		if (id == OPT_FORCE)
			*force = 1;
	if (id < 0)
		return -1;
	if (p.npos < min) {
		cli_usage(c, "missing arguments (expected %s)", c->cmd ? c->cmd->args : "DISK...");
		return -1;
	}
	return p.npos;
}

/* Shared ending: status, close, exit code. */
static int finish_verb(cli_ctx *c, arr *a, int rc)
{
	if (print_status(c, a, NULL) < 0 && rc == CLI_OK)
		rc = CLI_FAIL;
	arr_close(a);
	return rc;
}

/* A disk bkstor is about to write (create, replace, add-spare: the label area at
 * once): never a mounted device or the system disk, --force or not. */
static int refuse_in_use(cli_ctx *c, const char *verb, const char *path)
{
	char what[300];
	int r = devprobe_in_use(path, what, sizeof(what));
	if (r > 0)
		cli_err(c, "%s: disk %s: %s; refusing to use it (--force does not override "
		        "this)", verb, path, what);
	return r > 0 ? CLI_FAIL : 0;
}

/* ... and one with content (a file system, a partition table, data) only with
 * --force. */
static int refuse_content(cli_ctx *c, const char *verb, const char *path, disk *d, int force)
{
	char what[300];
	int r = devprobe_content(d, what, sizeof(what));
	if (r < 0)
		cli_err(c, "%s: disk %s: cannot read its first MiB: %s", verb, path, strerror(-r));
	else if (r > 0 && !force)
		cli_err(c, "%s: disk %s holds %s, which would be overwritten; if its content is "
		        "not needed, repeat with --force", verb, path, what);
	return r < 0 || (r > 0 && !force) ? CLI_FAIL : 0;
}

int cmd_array_create(cli_ctx *c, int argc, char **argv)
{
	static const cli_opt opts[] = {{"--name", 1, OPT_NAME}, {"--strip-size", 1, OPT_STRIP},
	                               {"--spare", 1, OPT_SPARE}, {"--force", 0, OPT_FORCE},
	                               {NULL, 0, 0}};
	char **spare_paths = calloc((size_t)argc + 1, sizeof(char *));
	disk **d = calloc((size_t)argc + 1, sizeof(disk *));
	arr_config cfg;
	bks_err e = {0};
	cli_args p;
	const char *val;
	arr *a = NULL;
	int id, ns = 0, force = 0, rc = CLI_FAIL, r;

	if (!spare_paths || !d) {
		cli_err(c, "out of memory");
		goto out;
	}
	arr_config_defaults(&cfg);
	cfg.ev_fn = on_event;
	cfg.ev_ctx = c;
	cli_args_init(&p, argc, argv);
	while ((id = cli_next_opt(c, &p, opts, &val)) > 0) {
		uint64_t sz;
		switch (id) {
		case OPT_NAME:
			if (!val[0] || strlen(val) >= ARR_NAME_MAX) {
				rc = cli_usage(c, "--name: 1 to %d bytes", ARR_NAME_MAX - 1);
				goto out;
			}
			cfg.name = val;
			break;
		case OPT_STRIP:
			if (cli_parse_size(val, &sz) < 0 || sz > UINT32_MAX) {
				rc = cli_usage(c, "--strip-size '%s': give bytes, or a size like 256K "
				               "or 1M", val);
				goto out;
			}
			cfg.strip_size = (uint32_t)sz;
			break;
		case OPT_SPARE:
			spare_paths[ns++] = (char *)val;
			break;
		case OPT_FORCE:
			force = 1;
			break;
		}
	}
	if (id < 0) {
		rc = CLI_USAGE;
		goto out;
	}
	if (p.npos == 0) {
		rc = cli_usage(c, "no disks given");
		goto out;
	}
	/* d[0..npos) members, d[npos..npos+ns) spares; each checked as a replacement is */
	for (int i = 0; i < p.npos + ns; i++)
		if (refuse_in_use(c, "create", i < p.npos ? p.argv[i] : spare_paths[i - p.npos]))
			goto out;
	if (open_disks(c, p.argv, p.npos, d) < 0)
		goto out;
	if (open_disks(c, spare_paths, ns, d + p.npos) < 0) {
		close_disks(d, p.npos);
		goto out;
	}
	for (int i = 0; i < p.npos + ns; i++)
		if (refuse_content(c, "create", disk_path(d[i]), d[i], force)) {
			close_disks(d, p.npos + ns);
			goto out;
		}
	r = arr_create(&cfg, d, p.npos, d + p.npos, ns, force, &a, &e);
	if (r < 0) {
		cli_err(c, "%s", bks_errmsg(&e, r));
		close_disks(d, p.npos + ns);
		goto out;
	}
	rc = finish_verb(c, a, CLI_OK);
out:
	free(spare_paths);
	free(d);
	return rc;
}

int cmd_array_show(cli_ctx *c, int argc, char **argv)
{
	int force = 0, n;
	arr *a;

	/* Without disks (or with --api): ask the running daemon. */
	int has_disk = 0;
	for (int i = 0; i < argc; i++)
		has_disk |= argv[i][0] != '-' && (i == 0 || strcmp(argv[i - 1], "--api"));
	if (!has_disk)
		return cmd_daemon_array_show(c, argc, argv);
	n = parse_simple(c, argc, argv, no_opts, 1, &force);

	if (n < 0)
		return CLI_USAGE;
	if (!(a = import_paths(c, argv, n, IMPORT_LOOK)))
		return CLI_FAIL;
	return finish_verb(c, a, CLI_OK);
}

int cmd_array_import(cli_ctx *c, int argc, char **argv)
{
	int force = 0, n = parse_simple(c, argc, argv, no_opts, 1, &force);
	arr *a;

	if (n < 0)
		return CLI_USAGE;
	if (!(a = import_paths(c, argv, n, IMPORT_CLAIM)))
		return CLI_FAIL;
	return finish_verb(c, a, run_bg(c, a, BG_REBUILD) < 0 ? CLI_FAIL : CLI_OK);
}

int cmd_array_scrub(cli_ctx *c, int argc, char **argv)
{
	int force = 0, n = parse_simple(c, argc, argv, no_opts, 1, &force), r, rc = CLI_OK;
	arr_status *st;
	bks_err e = {0};
	arr *a;

	if (n < 0)
		return CLI_USAGE;
	if (!(st = malloc(sizeof(*st)))) {
		cli_err(c, "out of memory");
		return CLI_FAIL;
	}
	if (!(a = import_paths(c, argv, n, IMPORT_CLAIM))) {
		free(st);
		return CLI_FAIL;
	}
	arr_get_status(a, st);
	if (st->last_scrub.state == ARR_SCRUB_RUNNING) {
		cli_err(c, "continuing the scrub that was running (row %llu of %llu)",
		        (unsigned long long)st->last_scrub.cursor, (unsigned long long)st->hwm);
		r = 0;
	} else if (st->last_scrub.state == ARR_SCRUB_PAUSED) {
		cli_err(c, "resuming the paused scrub (row %llu of %llu)",
		        (unsigned long long)st->last_scrub.cursor, (unsigned long long)st->hwm);
		r = arr_scrub_resume(a, &e);
	} else {
		r = arr_scrub_start(a, &e);
	}
	if (r < 0) {
		cli_err(c, "scrub: %s", bks_errmsg(&e, r));
		rc = CLI_FAIL;
	} else if (run_bg(c, a, BG_ALL) < 0) {
		rc = CLI_FAIL;
	}
	if (print_status(c, a, st) < 0)
		rc = CLI_FAIL;
	const arr_scrub_status *sc = &st->last_scrub;
	if (rc == CLI_OK && !c->json)
		printf("\nscrub: %llu rows checked, %llu errors found, %llu repaired, %llu "
		       "unrecoverable\n", (unsigned long long)sc->rows_checked,
		       (unsigned long long)sc->errors_found, (unsigned long long)sc->repaired,
		       (unsigned long long)sc->unrecoverable);
	if (sc->unrecoverable > 0) {
		cli_err(c, "scrub found %llu unrecoverable errors; the rows named in the events "
		        "above may hold damaged data",
		        (unsigned long long)sc->unrecoverable);
		rc = CLI_FAIL;
	}
	arr_close(a);
	free(st);
	return rc;
}

/* fail, offline, online, remove: one TARGET among the DISKs, one array verb. */
static int target_verb(cli_ctx *c, int argc, char **argv, const char *what,
                       int (*fn)(arr *, const char *, bks_err *), int rebuild)
{
	int force = 0, n = parse_simple(c, argc, argv, no_opts, 2, &force), r;
	bks_err e = {0};
	arr *a;

	if (n < 0)
		return CLI_USAGE;
	const char *target = resolve_name(argv[0], argv + 1, n - 1);
	if (!(a = import_paths(c, argv + 1, n - 1, IMPORT_CLAIM)))
		return CLI_FAIL;
	r = fn(a, target, &e);
	if (r < 0) {
		cli_err(c, "%s %s: %s", what, argv[0], bks_errmsg(&e, r));
		arr_close(a);
		return CLI_FAIL;
	}
	return finish_verb(c, a, rebuild && run_bg(c, a, BG_REBUILD) < 0 ? CLI_FAIL : CLI_OK);
}

int cmd_array_fail(cli_ctx *c, int argc, char **argv)
{
	return target_verb(c, argc, argv, "fail", arr_fail, 1);
}

int cmd_array_offline(cli_ctx *c, int argc, char **argv)
{
	return target_verb(c, argc, argv, "offline", arr_offline, 0);
}

int cmd_array_online(cli_ctx *c, int argc, char **argv)
{
	return target_verb(c, argc, argv, "online", arr_online, 1);
}

int cmd_array_remove(cli_ctx *c, int argc, char **argv)
{
	return target_verb(c, argc, argv, "remove", arr_remove, 0);
}

/* Open the disk a replace or an add-spare writes, checked as above. 0, or CLI_FAIL
 * with the reason said. */
static int open_target(cli_ctx *c, const char *verb, char *path, int force, disk **nd)
{
	if (refuse_in_use(c, verb, path) || open_disks(c, &path, 1, nd) < 0)
		return CLI_FAIL;
	if (refuse_content(c, verb, path, *nd, force)) {
		disk_close(*nd);
		*nd = NULL;
		return CLI_FAIL;
	}
	return 0;
}

int cmd_array_replace(cli_ctx *c, int argc, char **argv)
{
	int force = 0, n = parse_simple(c, argc, argv, force_opt, 3, &force), r;
	bks_err e = {0};
	disk *nd = NULL;
	arr *a;

	if (n < 0)
		return CLI_USAGE;
	if (check_new_not_member(c, argv[1], argv + 2, n - 2) != 0)
		return CLI_USAGE;
	const char *old = resolve_name(argv[0], argv + 2, n - 2);
	/* NEW first: a missing NEW must fail before the import commits anything. */
	if (open_target(c, "replace", argv[1], force, &nd) != 0)
		return CLI_FAIL;
	if (!(a = import_paths(c, argv + 2, n - 2, IMPORT_CLAIM))) {
		disk_close(nd);
		return CLI_FAIL;
	}
	r = arr_replace(a, old, nd, force, &e);
	if (r < 0) {
		cli_err(c, "replace %s: %s", argv[0], bks_errmsg(&e, r));
		disk_close(nd); /* still ours */
		arr_close(a);
		return CLI_FAIL;
	}
	return finish_verb(c, a, run_bg(c, a, BG_REBUILD) < 0 ? CLI_FAIL : CLI_OK);
}

int cmd_array_add_spare(cli_ctx *c, int argc, char **argv)
{
	int force = 0, n = parse_simple(c, argc, argv, force_opt, 2, &force), r;
	bks_err e = {0};
	disk *nd = NULL;
	arr *a;

	if (n < 0)
		return CLI_USAGE;
	if (check_new_not_member(c, argv[0], argv + 1, n - 1) != 0)
		return CLI_USAGE;
	if (open_target(c, "add-spare", argv[0], force, &nd) != 0)
		return CLI_FAIL;
	if (!(a = import_paths(c, argv + 1, n - 1, IMPORT_CLAIM))) {
		disk_close(nd);
		return CLI_FAIL;
	}
	r = arr_add_spare(a, nd, force, &e);
	if (r < 0) {
		cli_err(c, "add-spare: %s", bks_errmsg(&e, r));
		disk_close(nd); /* still ours */
		arr_close(a);
		return CLI_FAIL;
	}
	/* A slot without a disk takes the new spare at once: finish that rebuild too. */
	return finish_verb(c, a, run_bg(c, a, BG_REBUILD) < 0 ? CLI_FAIL : CLI_OK);
}
