/* cli/cmd_daemon.c: the bkstorctl commands that ask a running bkstord, over its
 * control API (docs/api.md: JSON over HTTP on a Unix socket): status, disk, scrub,
 * gc, verify, commit, events, and `array show` without disks.
 *
 * Every command is one or a few requests. The daemon's JSON is decoded here and
 * printed the way the offline commands print the same things: the array document
 * becomes an arr_status for cli_print_status_human, so `status` shows the array
 * exactly as `array show` does. With --json a command prints the daemon's reply
 * (re-indented) and nothing else on stdout; with --wait, the final state of the job
 * it waited for.
 *
 * Which daemon: --api SOCKET, else $BKSTOR_API, else api_socket from the client
 * configuration (--client FILE, $BKSTOR_CLIENT, /etc/bkstor/client.conf), else
 * /run/bkstor/api.sock.
 *
 * Exit status: 0 when the daemon answered 2xx (and, for --wait, the job finished
 * clean: no damaged object, no unrecoverable row), else 1 with the daemon's "error"
 * sentence on stderr; 2 for a wrong command line.
 */
#include <config.h>

#include "cli/cli.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <termios.h>
#include <unistd.h>

#include "cli/client_conf.h"
#include "cli/http.h"
#include "common/bks.h"
#include "common/json.h"
#include "common/jsonp.h"
#include "storage/arr_json.h"
#include "storage/array.h"

#define POLL_NS 1000000000ull        /* --wait: one request a second */
#define START_GRACE_POLLS 10         /* --wait: polls for an accepted job to show up */

/* ---- a command's options and its connection ------------------------------- */

enum { O_API = 100, O_CLIENT, O_WAIT, O_FORCE, O_OFF, O_MIN_LIVE, O_SINCE, O_FOLLOW };
#define COMMON_OPTS {"--api", 1, O_API}, {"--client", 1, O_CLIENT}

typedef struct dcmd {
	cli_ctx *c;
	char name[48];         /* "disk replace", for messages */
	const char *api, *client, *min_live, *since;
	int wait, force, off, follow;
	int npos;
	char **pos;            /* operands */
	http_target t;
} dcmd;

/* Parse options and check the operand count (npos_min..npos_max); load the client
 * configuration and fill the target. CLI_OK, or the exit code after a message. */
static int dcmd_init(dcmd *d, cli_ctx *c, int argc, char **argv, const cli_opt *opts,
                     int npos_min, int npos_max, const char *operands)
{
	cli_args p;
	const char *val;
	char warn[1200];
	bks_err e = {0};
	int id, r;

	memset(d, 0, sizeof(*d));
	d->c = c;
	if (c->cmd)
		snprintf(d->name, sizeof(d->name), "%s%s%s", c->cmd->group,
		         c->cmd->verb && c->cmd->verb[0] ? " " : "",
		         c->cmd->verb ? c->cmd->verb : "");
	cli_args_init(&p, argc, argv);
	while ((id = cli_next_opt(c, &p, opts, &val)) > 0) {
		switch (id) {
		case O_API: d->api = val; break;
		case O_CLIENT: d->client = val; break;
		case O_WAIT: d->wait = 1; break;
		case O_FORCE: d->force = 1; break;
		case O_OFF: d->off = 1; break;
		case O_MIN_LIVE: d->min_live = val; break;
		case O_SINCE: d->since = val; break;
		case O_FOLLOW: d->follow = 1; break;
		}
	}
	if (id < 0)
		return CLI_USAGE;
	d->npos = p.npos;
	d->pos = argv;
	if (d->npos < npos_min)
		return cli_usage(c, "%s needs %s", d->name, operands);
	if (d->npos > npos_max)
		return cli_usage(c, "%s: unexpected argument '%s'", d->name, argv[npos_max]);

	r = client_api_target(d->api, d->client, &d->t, warn, sizeof(warn), &e);
	if (warn[0])
		cli_err(c, "warning: %s", warn);
	if (r < 0)
		cli_err(c, "%s: %s", d->name, bks_errmsg(&e, r));
	return r < 0 ? CLI_FAIL : CLI_OK;
}

typedef client_reply reply;

/* One request; CLI_OK with rp filled (a 2xx JSON object: client_reply_free it), or
 * CLI_FAIL after "bkstorctl: disk replace: <the daemon's sentence>". */
static int call(dcmd *d, const char *method, const char *path, const char *body, reply *rp)
{
	bks_err e = {0};
	int r = client_api_call(&d->t, method, path, body, rp, &e);
	if (r < 0) {
		cli_err(d->c, "%s: %s", d->name, bks_errmsg(&e, r));
		return CLI_FAIL;
	}
	return CLI_OK;
}

/* A request body: one JSON object, built with the writer (which escapes paths). */
typedef struct jbody {
	char *buf;
	size_t len;
	FILE *f;
	json j;
} jbody;

static int jb_begin(jbody *b)
{
	memset(b, 0, sizeof(*b));
	if (!(b->f = open_memstream(&b->buf, &b->len)))
		return -ENOMEM;
	json_init(&b->j, b->f, 0);
	json_obj_begin(&b->j, NULL);
	return 0;
}

/* The body as a string (free it), or NULL. */
static char *jb_end(jbody *b)
{
	json_obj_end(&b->j);
	int r = json_finish(&b->j);
	if (fclose(b->f) != 0 || r < 0) {
		free(b->buf);
		return NULL;
	}
	return b->buf;
}

/* ---- JSON out --------------------------------------------------------------- */

static int print_json(const jsonp_val *v)
{
	json j;
	json_init(&j, stdout, 1);
	client_json_emit(&j, NULL, v);
	return json_finish(&j) < 0 ? CLI_FAIL : CLI_OK;
}

/* ---- human output ------------------------------------------------------------ */

static int print_array(dcmd *d, const jsonp_val *o)
{
	arr_status *st = malloc(sizeof(*st));
	bks_err e = {0};
	int r;

	if (!st) {
		cli_err(d->c, "out of memory");
		return CLI_FAIL;
	}
	r = arr_status_from_json(o, st, &e);
	if (r < 0)
		cli_err(d->c, "%s: %s", d->name, bks_errmsg(&e, r));
	else
		cli_print_status_human(st);
	free(st);
	return r < 0 ? CLI_FAIL : CLI_OK;
}

static uint64_t get_u(const jsonp_val *o, const char *key)
{
	uint64_t v = 0;
	jsonp_get_uint(o, key, &v);
	return v;
}

static double get_d(const jsonp_val *o, const char *key, double dflt)
{
	double v = dflt;
	jsonp_get_double(o, key, &v);
	return v;
}

static const char *get_s(const jsonp_val *o, const char *key)
{
	return jsonp_get_str(o, key, "");
}

static char *fmt_rate(double bps, char *out, size_t cap)
{
	size_t n;
	bks_fmt_bytes(bps > 0 ? (uint64_t)(bps + 0.5) : 0, out, cap);
	n = strlen(out);
	snprintf(out + n, cap - n, "/s");
	return out;
}

/* One line about a job of GET /api/v1/jobs (array, gc or verify). Returns 0 for a
 * job with nothing to tell (idle). now: wall-clock ns. */
static int fmt_job(const jsonp_val *j, char *out, size_t cap, uint64_t now)
{
	const char *kind = get_s(j, "kind"), *state = get_s(j, "state");
	char a[32], b[32], when[32];
	uint64_t t0 = get_u(j, "started_ns"), t1 = get_u(j, "finished_ns");
	double secs = t0 && now > t0 ? (double)(now - t0) / 1e9 : 0;
	int running = !strcmp(state, "running");

	if (!strcmp(state, "idle") || !state[0])
		return 0;
	if (!strcmp(kind, "gc")) {
		if (running)
			snprintf(out, cap, "gc running for %s: %llu segments scanned, %llu freed, "
			         "%llu compacted, %s moved", cli_fmt_duration(secs, a, sizeof(a)),
			         (unsigned long long)get_u(j, "segments_scanned"),
			         (unsigned long long)get_u(j, "segments_freed"),
			         (unsigned long long)get_u(j, "segments_compacted"),
			         bks_fmt_bytes(get_u(j, "bytes_moved"), b, sizeof(b)));
		else
			snprintf(out, cap, "gc %s %s: %llu segments freed, %llu compacted, %llu rows "
			         "freed, %s moved, %llu metadata rows compacted", state,
			         cli_fmt_wall(t1, when, sizeof(when)),
			         (unsigned long long)get_u(j, "segments_freed"),
			         (unsigned long long)get_u(j, "segments_compacted"),
			         (unsigned long long)get_u(j, "rows_freed"),
			         bks_fmt_bytes(get_u(j, "bytes_moved"), b, sizeof(b)),
			         (unsigned long long)get_u(j, "meta_rows_compacted"));
	} else if (!strcmp(kind, "verify")) {
		uint64_t n = get_u(j, "objects"), done = get_u(j, "objects_done");
		double rate = secs > 0 ? (double)done / secs : 0;
		if (running)
			snprintf(out, cap, "verify running: %.1f%% (%llu of %llu objects), %.1f "
			         "objects/s, ETA %s, %llu chunks checked, %llu bad, %llu objects "
			         "damaged", n ? 100.0 * (double)BKS_MIN(done, n) / (double)n : 100.0,
			         (unsigned long long)done, (unsigned long long)n, rate,
			         cli_fmt_duration(rate > 0 && n >= done ? (double)(n - done) / rate : -1,
			                          a, sizeof(a)),
			         (unsigned long long)get_u(j, "chunks_checked"),
			         (unsigned long long)get_u(j, "chunks_bad"),
			         (unsigned long long)get_u(j, "objects_damaged"));
		else
			snprintf(out, cap, "verify %s %s: %llu objects, %llu chunks checked, %llu bad, "
			         "%llu objects damaged, %llu repaired by the array", state,
			         cli_fmt_wall(t1, when, sizeof(when)), (unsigned long long)done,
			         (unsigned long long)get_u(j, "chunks_checked"),
			         (unsigned long long)get_u(j, "chunks_bad"),
			         (unsigned long long)get_u(j, "objects_damaged"),
			         (unsigned long long)get_u(j, "repaired"));
	} else {
		uint64_t done = get_u(j, "done_rows"), total = get_u(j, "total_rows");
		/* A scrub that is over stays listed as "done" or "stopped" (the array
		 * cannot tell which once rows were written after it): last_scrub says more. */
		if (!strcmp(state, "done") || !strcmp(state, "stopped"))
			return 0;
		int n = snprintf(out, cap, "%s %s: %.1f%% (%llu of %llu rows)", kind, state,
		                 total ? 100.0 * (double)BKS_MIN(done, total) / (double)total
		                       : 100.0,
		                 (unsigned long long)done, (unsigned long long)total);
		if (running && n > 0 && (size_t)n < cap)
			snprintf(out + n, cap - (size_t)n, ", %s, ETA %s",
			         fmt_rate(get_d(j, "rate_bps", 0), a, sizeof(a)),
			         cli_fmt_duration(get_d(j, "eta_s", -1), b, sizeof(b)));
	}
	return 1;
}

static void print_jobs(const jsonp_val *jobs, uint64_t now)
{
	char line[400];
	int n = 0;
	for (size_t i = 0; i < jsonp_len(jobs); i++)
		if (fmt_job(jsonp_at(jobs, i), line, sizeof(line), now))
			cli_print_field(n++ ? "" : "jobs", line);
	if (!n)
		cli_print_field("jobs", "none");
}

/* NFS: one line for the server, one per export (bytes written/read, rates over the
 * last minute), one per client address (at most 16, the most recent first), the
 * mounts. */
static void print_nfs(const jsonp_val *nfs)
{
	char line[400], a[32], b[32], ra[32], rb[32];
	int on = 0;
	if (!nfs || jsonp_bool(jsonp_get(nfs, "enabled"), &on) < 0 || !on)
		return;
	const jsonp_val *xs = jsonp_get(nfs, "exports"), *ms = jsonp_get(nfs, "mounts");
	const jsonp_val *cs = jsonp_get(nfs, "clients");
	snprintf(line, sizeof(line), "port %llu, mount port %llu, %llu connections, %zu mounts",
	         (unsigned long long)get_u(nfs, "port"), (unsigned long long)get_u(nfs, "mount_port"),
	         (unsigned long long)get_u(nfs, "connections"), jsonp_len(ms));
	cli_print_field("nfs", line);
	for (size_t i = 0; i < jsonp_len(xs); i++) {
		const jsonp_val *x = jsonp_at(xs, i);
		double wr = 0, rd = 0;
		jsonp_double(jsonp_get(x, "write_bps"), &wr);
		jsonp_double(jsonp_get(x, "read_bps"), &rd);
		snprintf(line, sizeof(line), "%s %s (%s): %s written, %s read; last minute %s/s "
		         "written, %s/s read", get_s(x, "name"), get_s(x, "path"), get_s(x, "access"),
		         bks_fmt_bytes(get_u(x, "bytes_written"), a, sizeof(a)),
		         bks_fmt_bytes(get_u(x, "bytes_read"), b, sizeof(b)),
		         bks_fmt_bytes((uint64_t)wr, ra, sizeof(ra)),
		         bks_fmt_bytes((uint64_t)rd, rb, sizeof(rb)));
		cli_print_field("export", line);
	}
	for (size_t i = 0; i < jsonp_len(cs) && i < 16; i++) {
		const jsonp_val *c = jsonp_at(cs, i);
		snprintf(line, sizeof(line), "%s: %llu connections, %llu calls, %s written, %s read",
		         get_s(c, "address"), (unsigned long long)get_u(c, "connections"),
		         (unsigned long long)get_u(c, "calls"),
		         bks_fmt_bytes(get_u(c, "bytes_written"), a, sizeof(a)),
		         bks_fmt_bytes(get_u(c, "bytes_read"), b, sizeof(b)));
		cli_print_field(i ? "" : "clients", line);
	}
	for (size_t i = 0; i < jsonp_len(ms) && i < 16; i++) {
		const jsonp_val *m = jsonp_at(ms, i);
		snprintf(line, sizeof(line), "%s %s", get_s(m, "client"), get_s(m, "path"));
		cli_print_field(i ? "" : "mounts", line);
	}
}

/* LUNs: one line each (size, mapped bytes, sessions). */
static void print_luns(const jsonp_val *ls)
{
	char line[400], a[32], b[32], nm[80];
	for (size_t i = 0; i < jsonp_len(ls) && i < 64; i++) {
		const jsonp_val *l = jsonp_at(ls, i);
		client_clean_str(nm, sizeof(nm), get_s(l, "name"));
		snprintf(line, sizeof(line), "%s: %s, %s mapped, %llu-byte blocks, %llu sessions",
		         nm, bks_fmt_bytes(get_u(l, "size"), a, sizeof(a)),
		         bks_fmt_bytes(get_u(l, "mapped_bytes"), b, sizeof(b)),
		         (unsigned long long)get_u(l, "block_size"),
		         (unsigned long long)get_u(l, "sessions"));
		cli_print_field(i ? "" : "luns", line);
	}
}

static void print_overview(const jsonp_val *root)
{
	const jsonp_val *cap = jsonp_get(root, "capacity"), *tp = jsonp_get(root, "throughput");
	uint64_t now = bks_wall_ns(), last = get_u(root, "last_commit_ns");
	uint64_t total = get_u(cap, "total_bytes"), free_b = get_u(cap, "free_bytes");
	char a[32], b[32], c[32], d[32], line[400];

	cli_print_field("health", get_s(root, "health"));
	if (get_s(root, "action")[0])
		cli_print_field("action", get_s(root, "action"));
	snprintf(line, sizeof(line), "bkstord %s, %s, up %s, %llu connections",
	         get_s(root, "version"), get_s(root, "state"),
	         cli_fmt_duration(get_d(root, "uptime_s", -1), a, sizeof(a)),
	         (unsigned long long)get_u(root, "connections"));
	cli_print_field("daemon", line);
	if (last && now >= last)
		snprintf(line, sizeof(line), "last %s ago, %llu since bkstord started",
		         cli_fmt_duration((double)(now - last) / 1e9, a, sizeof(a)),
		         (unsigned long long)get_u(root, "commits"));
	else
		snprintf(line, sizeof(line), "none yet");
	cli_print_field("commit", line);
	snprintf(line, sizeof(line), "%s logical, %s physical; %s free of %s (%.0f%%)",
	         bks_fmt_bytes(get_u(cap, "logical_bytes"), a, sizeof(a)),
	         bks_fmt_bytes(get_u(cap, "physical_bytes"), b, sizeof(b)),
	         bks_fmt_bytes(free_b, c, sizeof(c)), bks_fmt_bytes(total, d, sizeof(d)),
	         total ? 100.0 * (double)BKS_MIN(free_b, total) / (double)total : 0.0);
	cli_print_field("space", line);
	int full = 0;
	if (jsonp_bool(jsonp_get(cap, "full"), &full) == 0 && full) {
		/* New data is refused until deletes and a garbage collection give rows
		 * back (the daemon keeps a reserve for exactly that). */
		snprintf(line, sizeof(line), "delete backups or add disks (new data is refused; "
		         "bkstorctl rm, then bkstorctl gc; %llu rows free, %llu reserved)",
		         (unsigned long long)get_u(cap, "rows_free"),
		         (unsigned long long)get_u(cap, "rows_reserved"));
		cli_print_field("full", line);
	}
	snprintf(line, sizeof(line), "dedup %.2fx, compression %.2fx; %llu objects, %llu unique "
	         "chunks", get_d(cap, "dedup_ratio", 1), get_d(cap, "compression_ratio", 1),
	         (unsigned long long)get_u(cap, "objects"),
	         (unsigned long long)get_u(cap, "unique_chunks"));
	cli_print_field("ratio", line);
	snprintf(line, sizeof(line), "ingest %s, restore %s (last 10 s)",
	         fmt_rate(get_d(tp, "ingest_bps", 0), a, sizeof(a)),
	         fmt_rate(get_d(tp, "restore_bps", 0), b, sizeof(b)));
	cli_print_field("rate", line);
	cli_repl_line(jsonp_get(root, "repl"), line, sizeof(line));
	cli_print_field("repl", line);
	print_nfs(jsonp_get(root, "nfs"));
	print_luns(jsonp_get(root, "luns"));
	print_jobs(jsonp_get(root, "jobs"), now);
	putchar('\n');
}

/* ---- waiting for a job ------------------------------------------------------- */

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

static const jsonp_val *find_job(const jsonp_val *root, const char *kind)
{
	const jsonp_val *jobs = jsonp_get(root, "jobs");
	for (size_t i = 0; i < jsonp_len(jobs); i++)
		if (!strcmp(get_s(jsonp_at(jobs, i), "kind"), kind))
			return jsonp_at(jobs, i);
	return NULL;
}

enum wait_end { W_DONE, W_PAUSED, W_FAIL };

/* Poll path until the job of this kind is over; *rp holds the last reply (for the
 * summary) on W_DONE and W_PAUSED. An array job (scrub) is over when it is neither
 * "running" nor "paused" ("done", "stopped", or gone from the list); a store job (gc,
 * verify) when a run that started at or after since_ns (wall clock; 0: any) is no
 * longer "running". */
static int wait_job(dcmd *d, const char *path, const char *kind, uint64_t since_ns,
                    reply *rp)
{
	struct sigaction sa = {.sa_handler = on_signal}, old_int, old_term;
	int array_job = strcmp(kind, "gc") && strcmp(kind, "verify");
	int end = W_FAIL, grace = START_GRACE_POLLS;
	char line[400];

	sigemptyset(&sa.sa_mask);
	interrupted = 0;
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	for (;;) {
		if (call(d, "GET", path, NULL, rp) != CLI_OK)
			break;
		const jsonp_val *j = find_job(rp->root, kind);
		const char *state = get_s(j, "state");
		if (array_job ? strcmp(state, "running") && strcmp(state, "paused")
		              : strcmp(state, "running") && get_u(j, "started_ns") >= since_ns) {
			end = W_DONE;
			break;
		}
		if (array_job && !strcmp(state, "paused")) {
			end = W_PAUSED;
			break;
		}
		if (!array_job && strcmp(state, "running") && --grace <= 0) {
			cli_err(d->c, "%s: bkstord accepted the request, but no %s started", d->name,
			        kind);
			break;
		}
		if (fmt_job(j, line, sizeof(line), bks_wall_ns()))
			cli_progress_draw(d->c, line); /* only on a terminal */
		client_reply_free(rp);
		struct timespec ts = {.tv_sec = POLL_NS / 1000000000ull,
		                      .tv_nsec = POLL_NS % 1000000000ull};
		if (!interrupted)
			nanosleep(&ts, NULL);
		if (interrupted) {
			cli_err(d->c, "stopped waiting; the %s goes on in bkstord (see bkstorctl "
			        "status)", kind);
			break;
		}
	}
	cli_progress_clear(d->c);
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	if (end == W_FAIL)
		client_reply_free(rp);
	return end;
}

/* ---- status, array show, disks ----------------------------------------------- */

int cmd_status(cli_ctx *c, int argc, char **argv)
{
	static const cli_opt opts[] = {COMMON_OPTS, {0}};
	dcmd d;
	reply rp;
	int r = dcmd_init(&d, c, argc, argv, opts, 0, 0, "");

	if (r || (r = call(&d, "GET", "/api/v1/status", NULL, &rp)))
		return r;
	if (c->json) {
		r = print_json(rp.root);
	} else {
		print_overview(rp.root);
		r = print_array(&d, jsonp_get(rp.root, "array"));
	}
	client_reply_free(&rp);
	return r;
}

int cmd_daemon_array_show(cli_ctx *c, int argc, char **argv)
{
	static const cli_opt opts[] = {COMMON_OPTS, {0}};
	dcmd d;
	reply rp;
	int r = dcmd_init(&d, c, argc, argv, opts, 0, 0, "");

	if (r || (r = call(&d, "GET", "/api/v1/array", NULL, &rp)))
		return r;
	r = c->json ? print_json(rp.root) : print_array(&d, rp.root);
	client_reply_free(&rp);
	return r;
}

enum { DC_SLOT, DC_ROLE, DC_STATE, DC_PATH, DC_SERIAL, DC_SIZE, DC_READ, DC_WRITE,
       DC_CKSUM, DC_N };

int cmd_disk_list(cli_ctx *c, int argc, char **argv)
{
	static const cli_opt opts[] = {COMMON_OPTS, {0}};
	static const char *const head[DC_N] = {"SLOT", "ROLE", "STATE", "PATH", "SERIAL",
	                                       "SIZE", "READ", "WRITE", "CKSUM"};
	dcmd d;
	reply rp;
	int r = dcmd_init(&d, c, argc, argv, opts, 0, 0, "");

	if (r || (r = call(&d, "GET", "/api/v1/disks", NULL, &rp)))
		return r;
	if (c->json) {
		r = print_json(rp.root);
		client_reply_free(&rp);
		return r;
	}
	const jsonp_val *disks = jsonp_get(rp.root, "disks");
	size_t n = jsonp_len(disks);
	char (*cell)[DC_N][300] = calloc(n + 1, sizeof(*cell));
	int w[DC_N] = {0};
	if (!cell) {
		client_reply_free(&rp);
		cli_err(c, "out of memory");
		return CLI_FAIL;
	}
	for (int k = 0; k < DC_N; k++)
		snprintf(cell[0][k], sizeof(cell[0][k]), "%s", head[k]);
	for (size_t i = 0; i < n; i++) {
		const jsonp_val *o = jsonp_at(disks, i);
		char (*row)[300] = cell[i + 1];
		int64_t slot;
		if (jsonp_get_int(o, "slot", &slot) == 0)
			snprintf(row[DC_SLOT], 300, "%lld", (long long)slot);
		else
			snprintf(row[DC_SLOT], 300, "-");
		client_clean_str(row[DC_ROLE], 300, get_s(o, "role"));
		client_clean_str(row[DC_STATE], 300, get_s(o, "state"));
		client_clean_str(row[DC_PATH], 300, get_s(o, "path"));
		if (!row[DC_PATH][0] && get_s(o, "uuid")[0]) {
			snprintf(row[DC_PATH], 300, "(not present: uuid %.40s)", get_s(o, "uuid"));
			client_clean_str(row[DC_PATH], 300, row[DC_PATH]); /* in place is safe */
		}
		else if (!row[DC_PATH][0])
			snprintf(row[DC_PATH], 300, "(empty slot)");
		client_clean_str(row[DC_SERIAL], 300, get_s(o, "serial")[0] ? get_s(o, "serial") : "-");
		if (get_u(o, "size"))
			bks_fmt_bytes(get_u(o, "size"), row[DC_SIZE], 300);
		else
			snprintf(row[DC_SIZE], 300, "-");
		snprintf(row[DC_READ], 300, "%llu", (unsigned long long)get_u(o, "read_errors"));
		snprintf(row[DC_WRITE], 300, "%llu", (unsigned long long)get_u(o, "write_errors"));
		snprintf(row[DC_CKSUM], 300, "%llu", (unsigned long long)get_u(o, "cksum_errors"));
	}
	for (size_t i = 0; i <= n; i++)
		for (int k = 0; k < DC_N; k++)
			w[k] = BKS_MAX(w[k], (int)strlen(cell[i][k]));
	for (size_t i = 0; i <= n; i++)
		for (int k = 0; k < DC_N; k++)
			printf(k == DC_N - 1 ? "%*s\n" : k >= DC_SIZE ? "%*s  " : "%-*s  ", w[k],
			       cell[i][k]);
	free(cell);
	client_reply_free(&rp);
	return CLI_OK;
}

/* ---- actions ------------------------------------------------------------------- */

/* POST body to path; print the reply (--json) or its message. */
static int post(dcmd *d, const char *path, const char *body)
{
	char msg[400];
	reply rp;
	int r = call(d, "POST", path, body, &rp);
	if (r)
		return r;
	if (d->c->json) {
		r = print_json(rp.root);
	} else if (get_s(rp.root, "message")[0]) {
		client_clean_str(msg, sizeof(msg), get_s(rp.root, "message"));
		printf("%s\n", msg);
	}
	client_reply_free(&rp);
	return r;
}

/* A new disk's path, absolute (the daemon opens it from its own directory). */
static int abs_path(dcmd *d, const char *name, char *out, size_t cap)
{
	char cwd[4096];
	if (name[0] == '/') {
		snprintf(out, cap, "%s", name);
		return CLI_OK;
	}
	if (!getcwd(cwd, sizeof(cwd))) {
		cli_err(d->c, "%s: getcwd: %s", d->name, strerror(errno));
		return CLI_FAIL;
	}
	int n = snprintf(out, cap, "%s/%s", strcmp(cwd, "/") ? cwd : "",
	                 strncmp(name, "./", 2) ? name : name + 2);
	if (n < 0 || (size_t)n >= cap) {
		cli_err(d->c, "%s: the path of %s is too long", d->name, name);
		return CLI_FAIL;
	}
	return CLI_OK;
}

/* The daemon knows its disks by the paths it opened them with. A DISK given as a
 * path that names one of them under another spelling ("d0", "./d0", a symlink) is
 * sent as the daemon's path; another existing relative path is made absolute (the
 * daemon does not share our working directory); a UUID or slotN goes as it is. */
static int resolve_disk(dcmd *d, const char *name, char *out, size_t cap)
{
	struct stat want, st;
	reply rp;

	snprintf(out, cap, "%s", name);
	if (stat(name, &want) != 0)
		return CLI_OK;
	if (call(d, "GET", "/api/v1/disks", NULL, &rp))
		return CLI_FAIL;
	const jsonp_val *disks = jsonp_get(rp.root, "disks");
	for (size_t i = 0; i < jsonp_len(disks); i++) {
		const char *p = get_s(jsonp_at(disks, i), "path");
		if (p[0] && stat(p, &st) == 0 && st.st_dev == want.st_dev &&
		    st.st_ino == want.st_ino) {
			snprintf(out, cap, "%s", p);
			client_reply_free(&rp);
			return CLI_OK;
		}
	}
	client_reply_free(&rp);
	return abs_path(d, name, out, cap);
}

enum disk_verb { DV_FAIL, DV_REPLACE, DV_ADD_SPARE, DV_REMOVE, DV_OFFLINE, DV_ONLINE,
                 DV_LOCATE };

static int disk_action(cli_ctx *c, int argc, char **argv, int verb)
{
	static const cli_opt o_plain[] = {COMMON_OPTS, {0}};
	static const cli_opt o_force[] = {COMMON_OPTS, {"--force", 0, O_FORCE}, {0}};
	static const cli_opt o_off[] = {COMMON_OPTS, {"--off", 0, O_OFF}, {0}};
	static const char *const path[] = {"fail", "replace", "add-spare", "remove", "offline",
	                                   "online", "locate"};
	const cli_opt *opts = verb == DV_REPLACE || verb == DV_ADD_SPARE ? o_force
	                      : verb == DV_LOCATE ? o_off : o_plain;
	int nargs = verb == DV_REPLACE ? 2 : 1;
	char name[4096], url[64], *body;
	dcmd d;
	jbody b;
	int r = dcmd_init(&d, c, argc, argv, opts, nargs, nargs,
	                  verb == DV_REPLACE ? "OLD and NEW" : verb == DV_ADD_SPARE ? "PATH"
	                                                                            : "DISK");
	if (r)
		return r;
	if (verb == DV_ADD_SPARE)
		r = abs_path(&d, d.pos[0], name, sizeof(name));
	else
		r = resolve_disk(&d, d.pos[0], name, sizeof(name));
	if (r)
		return r;
	if (jb_begin(&b) < 0) {
		cli_err(c, "%s: out of memory", d.name);
		return CLI_FAIL;
	}
	json_str(&b.j, verb == DV_ADD_SPARE ? "path" : "disk", name);
	if (verb == DV_REPLACE) {
		if ((r = abs_path(&d, d.pos[1], name, sizeof(name))) == CLI_OK)
			json_str(&b.j, "new", name);
	}
	if (verb == DV_REPLACE || verb == DV_ADD_SPARE)
		json_bool(&b.j, "force", d.force);
	if (verb == DV_LOCATE)
		json_bool(&b.j, "on", !d.off);
	body = jb_end(&b);
	if (r || !body) {
		if (!r)
			cli_err(c, "%s: out of memory", d.name);
		free(body);
		return CLI_FAIL;
	}
	snprintf(url, sizeof(url), "/api/v1/disks/%s", path[verb]);
	r = post(&d, url, body);
	free(body);
	return r;
}

#define DISK_VERB(fn, verb)                                                         \
	int fn(cli_ctx *c, int argc, char **argv)                                       \
	{                                                                               \
		return disk_action(c, argc, argv, verb);                                    \
	}
DISK_VERB(cmd_disk_fail, DV_FAIL)
DISK_VERB(cmd_disk_replace, DV_REPLACE)
DISK_VERB(cmd_disk_add_spare, DV_ADD_SPARE)
DISK_VERB(cmd_disk_remove, DV_REMOVE)
DISK_VERB(cmd_disk_offline, DV_OFFLINE)
DISK_VERB(cmd_disk_online, DV_ONLINE)
DISK_VERB(cmd_disk_locate, DV_LOCATE)
/* ---- scrub ----------------------------------------------------------------------- */

/* The scrub part of an array document: the running job and the counters. */
static int print_scrub(dcmd *d, const jsonp_val *arr_doc, int *unrecoverable)
{
	const jsonp_val *j = find_job(arr_doc, "scrub"), *ls = jsonp_get(arr_doc, "last_scrub");
	char line[400], when[32], took[32];
	uint64_t t0 = get_u(ls, "started_ns"), t1 = get_u(ls, "finished_ns");

	*unrecoverable = get_u(ls, "unrecoverable") > 0;
	if (d->c->json) {
		json out;
		json_init(&out, stdout, 1);
		json_obj_begin(&out, NULL);
		if (j)
			client_json_emit(&out, "job", j);
		else
			json_null(&out, "job");
		client_json_emit(&out, "last_scrub", ls);
		json_obj_end(&out);
		return json_finish(&out) < 0 ? CLI_FAIL : CLI_OK;
	}
	if (j && fmt_job(j, line, sizeof(line), bks_wall_ns())) {
		cli_print_field(NULL, line);
		if (isatty(STDOUT_FILENO)) {
			uint64_t done = get_u(j, "done_rows"), total = get_u(j, "total_rows");
			int fill = total ? (int)(50 * BKS_MIN(done, total) / total) : 50;
			printf("  [%.*s%*s]\n", fill,
			       "==================================================", 50 - fill, "");
		}
		snprintf(line, sizeof(line), "%llu rows checked, %llu errors found, %llu repaired, "
		         "%llu unrecoverable so far", (unsigned long long)get_u(ls, "rows_checked"),
		         (unsigned long long)get_u(ls, "errors_found"),
		         (unsigned long long)get_u(ls, "repaired"),
		         (unsigned long long)get_u(ls, "unrecoverable"));
		printf("  %s\n", line);
	} else if (t0) {
		snprintf(line, sizeof(line), "scrub: the last one ended %s after %s: %llu rows "
		         "checked, "
		         "%llu errors found, %llu repaired, %llu unrecoverable",
		         cli_fmt_wall(t1, when, sizeof(when)),
		         cli_fmt_duration(t1 >= t0 ? (double)(t1 - t0) / 1e9 : -1, took, sizeof(took)),
		         (unsigned long long)get_u(ls, "rows_checked"),
		         (unsigned long long)get_u(ls, "errors_found"),
		         (unsigned long long)get_u(ls, "repaired"),
		         (unsigned long long)get_u(ls, "unrecoverable"));
		cli_print_field(NULL, line);
	} else {
		cli_print_field(NULL, "scrub: never run on this array");
	}
	return CLI_OK;
}

static int scrub_cmd(cli_ctx *c, int argc, char **argv, const char *action)
{
	static const cli_opt opts[] = {COMMON_OPTS, {"--wait", 0, O_WAIT}, {0}};
	static const cli_opt opts_nowait[] = {COMMON_OPTS, {0}};
	int can_wait = !action || !strcmp(action, "start") || !strcmp(action, "resume");
	char body[64];
	dcmd d;
	reply rp;
	int r = dcmd_init(&d, c, argc, argv, can_wait ? opts : opts_nowait, 0, 0, ""), bad;

	if (r)
		return r;
	if (action) {
		snprintf(body, sizeof(body), "{\"action\": \"%s\"}", action);
		if (!d.wait)
			return post(&d, "/api/v1/scrub", body);
		if ((r = call(&d, "POST", "/api/v1/scrub", body, &rp)))
			return r;
		client_reply_free(&rp);
	}
	if (d.wait) {
		int end = wait_job(&d, "/api/v1/array", "scrub", 0, &rp);
		if (end == W_FAIL)
			return CLI_FAIL;
		r = print_scrub(&d, rp.root, &bad);
		client_reply_free(&rp);
		if (end == W_PAUSED) {
			cli_err(c, "%s: the scrub is paused; bkstorctl scrub resume continues it", d.name);
			return CLI_FAIL;
		}
		return r ? r : bad ? CLI_FAIL : CLI_OK;
	}
	if ((r = call(&d, "GET", "/api/v1/array", NULL, &rp)))
		return r;
	r = print_scrub(&d, rp.root, &bad);
	client_reply_free(&rp);
	return r;
}

#define SCRUB_VERB(fn, action)                                                      \
	int fn(cli_ctx *c, int argc, char **argv)                                       \
	{                                                                               \
		return scrub_cmd(c, argc, argv, action);                                    \
	}
SCRUB_VERB(cmd_scrub_start, "start")
SCRUB_VERB(cmd_scrub_stop, "stop")
SCRUB_VERB(cmd_scrub_pause, "pause")
SCRUB_VERB(cmd_scrub_resume, "resume")
SCRUB_VERB(cmd_scrub_status, NULL)
/* ---- store jobs: gc, verify -------------------------------------------------- */

/* Print a store job (kind) of a /jobs reply; *clean: a verify found nothing damaged. */
static int print_store_job(dcmd *d, const jsonp_val *jobs_doc, const char *kind, int *clean)
{
	const jsonp_val *j = find_job(jobs_doc, kind);
	char line[400], num[32];

	*clean = get_u(j, "objects_damaged") == 0;
	if (d->c->json)
		return print_json(j);
	if (!fmt_job(j, line, sizeof(line), bks_wall_ns()))
		snprintf(line, sizeof(line), "%s: has not run since bkstord started", kind);
	cli_print_field(NULL, line);
	const jsonp_val *dmg = jsonp_get(j, "damaged");
	for (size_t i = 0; i < jsonp_len(dmg); i++) {
		const jsonp_val *v = jsonp_at(dmg, i);
		uint64_t id;
		if (jsonp_uint(v, &id) == 0)
			snprintf(num, sizeof(num), "object %llu", (unsigned long long)id);
		else
			client_clean_str(num, sizeof(num), jsonp_str(v, NULL));
		printf("  damaged: %s\n", num);
	}
	if (jsonp_len(dmg) < get_u(j, "objects_damaged"))
		printf("  (and %llu more)\n",
		       (unsigned long long)(get_u(j, "objects_damaged") - jsonp_len(dmg)));
	const jsonp_val *bc = jsonp_get(j, "bad_chunks");
	for (size_t i = 0; i < jsonp_len(bc); i++) {
		char fp[80];
		const jsonp_val *v = jsonp_at(bc, i);
		client_clean_str(fp, sizeof(fp), get_s(v, "fingerprint"));
		printf("  bad chunk: %s (%llu bytes, object %llu)\n", fp,
		       (unsigned long long)get_u(v, "length"), (unsigned long long)get_u(v, "object"));
	}
	if (get_u(j, "queued_for_repair"))
		printf("  %llu bad chunks queued for repair from the replication source\n",
		       (unsigned long long)get_u(j, "queued_for_repair"));
	return CLI_OK;
}

/* Start a store job (body to path), then with --wait poll until it ends and print
 * it. A job already running (409) is waited for too. */
static int store_job(dcmd *d, const char *path, const char *body, const char *kind)
{
	uint64_t since = bks_wall_ns() - 1000000000ull; /* the daemon's clock is ours */
	reply rp;
	bks_err e = {0};
	int r, clean;

	if (!d->wait)
		return post(d, path, body);
	r = client_api_call(&d->t, "POST", path, body, &rp, &e);
	client_reply_free(&rp);
	if (r == -EBUSY) {
		/* Refused because one is running? Then wait for that one. */
		if (call(d, "GET", "/api/v1/jobs", NULL, &rp))
			return CLI_FAIL;
		if (!strcmp(get_s(find_job(rp.root, kind), "state"), "running")) {
			cli_err(d->c, "%s: %s; waiting for it", d->name, bks_errmsg(&e, r));
			since = 0;
			r = 0;
		}
		client_reply_free(&rp);
	}
	if (r < 0) {
		cli_err(d->c, "%s: %s", d->name, bks_errmsg(&e, r));
		return CLI_FAIL;
	}
	if (wait_job(d, "/api/v1/jobs", kind, since, &rp) != W_DONE)
		return CLI_FAIL;
	r = print_store_job(d, rp.root, kind, &clean);
	client_reply_free(&rp);
	return r ? r : clean ? CLI_OK : CLI_FAIL;
}

int cmd_gc_start(cli_ctx *c, int argc, char **argv)
{
	static const cli_opt opts[] = {COMMON_OPTS, {"--wait", 0, O_WAIT},
	                               {"--min-live", 1, O_MIN_LIVE}, {0}};
	dcmd d;
	jbody b;
	char *body, *end;
	double f = -1;
	int r = dcmd_init(&d, c, argc, argv, opts, 0, 0, "");

	if (r)
		return r;
	if (d.min_live) {
		errno = 0;
		f = strtod(d.min_live, &end);
		if (errno || end == d.min_live || *end || !(f >= 0 && f <= 1))
			return cli_usage(c, "--min-live wants a fraction from 0 to 1, not '%s'",
			                 d.min_live);
	}
	if (jb_begin(&b) < 0) {
		cli_err(c, "%s: out of memory", d.name);
		return CLI_FAIL;
	}
	json_str(&b.j, "action", "start");
	if (f >= 0)
		json_double(&b.j, "min_live", f);
	if (!(body = jb_end(&b))) {
		cli_err(c, "%s: out of memory", d.name);
		return CLI_FAIL;
	}
	r = store_job(&d, "/api/v1/gc", body, "gc");
	free(body);
	return r;
}

int cmd_gc_status(cli_ctx *c, int argc, char **argv)
{
	static const cli_opt opts[] = {COMMON_OPTS, {0}};
	dcmd d;
	reply rp;
	int clean, r = dcmd_init(&d, c, argc, argv, opts, 0, 0, "");

	if (r || (r = call(&d, "GET", "/api/v1/jobs", NULL, &rp)))
		return r;
	r = print_store_job(&d, rp.root, "gc", &clean);
	client_reply_free(&rp);
	return r;
}

int cmd_verify(cli_ctx *c, int argc, char **argv)
{
	static const cli_opt opts[] = {COMMON_OPTS, {"--wait", 0, O_WAIT}, {0}};
	dcmd d;
	int r = dcmd_init(&d, c, argc, argv, opts, 0, 0, "");

	return r ? r : store_job(&d, "/api/v1/verify", "{\"action\": \"start\"}", "verify");
}

int cmd_commit(cli_ctx *c, int argc, char **argv)
{
	static const cli_opt opts[] = {COMMON_OPTS, {0}};
	dcmd d;
	int r = dcmd_init(&d, c, argc, argv, opts, 0, 0, "");

	return r ? r : post(&d, "/api/v1/commit", "{}");
}

/* ---- events ------------------------------------------------------------------- */

static void print_events(dcmd *d, const jsonp_val *root, uint64_t since)
{
	const jsonp_val *ev = jsonp_get(root, "events");
	char when[32], msg[400];

	for (size_t i = 0; i < jsonp_len(ev); i++) {
		const jsonp_val *e = jsonp_at(ev, i);
		uint64_t seq = get_u(e, "seq");
		if (i == 0 && seq > since && since > 0)
			cli_err(d->c, "%llu events before #%llu are gone from the daemon's ring",
			        (unsigned long long)(seq - since), (unsigned long long)seq);
		if (d->c->json && d->follow) {
			json j;
			json_init(&j, stdout, 0);
			client_json_emit(&j, NULL, e);
			json_finish(&j);
			continue;
		}
		client_clean_str(msg, sizeof(msg), get_s(e, "msg"));
		printf("%6llu %s %-5s %s\n", (unsigned long long)seq,
		       cli_fmt_wall(get_u(e, "time_ns"), when, sizeof(when)), get_s(e, "level"), msg);
	}
	fflush(stdout);
}

int cmd_events(cli_ctx *c, int argc, char **argv)
{
	static const cli_opt opts[] = {COMMON_OPTS, {"--since", 1, O_SINCE},
	                               {"--follow", 0, O_FOLLOW}, {0}};
	uint64_t since = 0;
	char path[64], *end;
	dcmd d;
	reply rp;
	int r = dcmd_init(&d, c, argc, argv, opts, 0, 0, "");

	if (r)
		return r;
	if (d.since) {
		errno = 0;
		unsigned long long v = strtoull(d.since, &end, 10);
		if (errno || end == d.since || *end || d.since[0] == '-')
			return cli_usage(c, "--since wants an event number, not '%s'", d.since);
		since = v;
	}
	struct sigaction sa = {.sa_handler = on_signal}, old_int;
	sigemptyset(&sa.sa_mask);
	interrupted = 0;
	if (d.follow)
		sigaction(SIGINT, &sa, &old_int);
	for (;;) {
		snprintf(path, sizeof(path), "/api/v1/events?since=%llu", (unsigned long long)since);
		if ((r = call(&d, "GET", path, NULL, &rp)))
			break;
		uint64_t next = since;
		if (jsonp_get_uint(rp.root, "next", &next) < 0 || next < since) {
			cli_err(c, "%s: the reply has no valid 'next'", d.name);
			client_reply_free(&rp);
			r = CLI_FAIL;
			break;
		}
		if (c->json && !d.follow)
			r = print_json(rp.root);
		else
			print_events(&d, rp.root, since);
		client_reply_free(&rp);
		since = next;
		if (!d.follow || r || interrupted)
			break;
		struct timespec ts = {.tv_sec = 1};
		nanosleep(&ts, NULL);
		if (interrupted)
			break;
	}
	if (d.follow)
		sigaction(SIGINT, &old_int, NULL);
	return r;
}

/* ---- passwd --------------------------------------------------------------------- */

/* One line from the terminal without echo, or from stdin (--stdin). */
static int read_password(const char *prompt, int from_stdin, char *out, size_t cap)
{
	struct termios old, quiet;
	int tty = !from_stdin && isatty(STDIN_FILENO);
	if (tty) {
		fputs(prompt, stderr);
		tcgetattr(STDIN_FILENO, &old);
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
	}
	char *ok = fgets(out, (int)cap, stdin);
	if (tty) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
		fputc('\n', stderr);
	}
	if (!ok)
		return -1;
	out[strcspn(out, "\r\n")] = 0;
	return 0;
}

int cmd_passwd(cli_ctx *c, int argc, char **argv)
{
	enum { O_STDIN = 200 };
	static const cli_opt opts[] = {COMMON_OPTS, {"--stdin", 0, O_STDIN}, {0}};
	int from_stdin = 0;
	for (int i = 0; i < argc; i++)
		from_stdin |= !strcmp(argv[i], "--stdin");
	dcmd d;
	int r = dcmd_init(&d, c, argc, argv, opts, 0, 0, "");
	char pw[512], again[512];
	if (r)
		return r;
	if (read_password("New dashboard password: ", from_stdin, pw, sizeof(pw)) < 0) {
		cli_err(c, "passwd: no password given");
		return CLI_FAIL;
	}
	if (!from_stdin && isatty(STDIN_FILENO)) {
		if (read_password("Again: ", 0, again, sizeof(again)) < 0 || strcmp(pw, again)) {
			cli_err(c, "passwd: the two passwords differ");
			return CLI_FAIL;
		}
	}
	jbody b;
	char *body = NULL;
	if (jb_begin(&b) == 0) {
		json_str(&b.j, "password", pw);
		body = jb_end(&b);
	}
	memset(pw, 0, sizeof(pw));
	memset(again, 0, sizeof(again));
	if (!body) {
		cli_err(c, "passwd: out of memory");
		return CLI_FAIL;
	}
	r = post(&d, "/api/v1/passwd", body);
	memset(body, 0, strlen(body));
	free(body);
	return r;
}
