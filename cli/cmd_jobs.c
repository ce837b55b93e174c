/* cli/cmd_jobs.c: the jobs of a running bkstord: scrub (start, stop, pause,
 * resume, status), gc (start, status), verify, commit; --wait polls until the job
 * ends and prints how it ended (dcmd.h: the exit status). */
#include <config.h>

#include "cli/dcmd.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/bks.h"

#define POLL_NS 1000000000ull        /* --wait: one request a second */
#define START_GRACE_POLLS 10         /* --wait: polls for an accepted job to show up */

/* One line about a job of GET /api/v1/jobs (array, gc or verify). Returns 0 for a
 * job with nothing to tell (idle). now: wall-clock ns. */
int dcmd_fmt_job(const jsonp_val *j, char *out, size_t cap, uint64_t now)
{
	const char *kind = dcmd_s(j, "kind"), *state = dcmd_s(j, "state");
	char a[32], b[32], when[32];
	uint64_t t0 = dcmd_u(j, "started_ns"), t1 = dcmd_u(j, "finished_ns");
	double secs = t0 && now > t0 ? (double)(now - t0) / 1e9 : 0;
	int running = !strcmp(state, "running");

	if (!strcmp(state, "idle") || !state[0])
		return 0;
	if (!strcmp(kind, "gc")) {
		if (running)
			snprintf(out, cap, "gc running for %s: %llu segments scanned, %llu freed, "
			         "%llu compacted, %s moved", cli_fmt_duration(secs, a, sizeof(a)),
			         (unsigned long long)dcmd_u(j, "segments_scanned"),
			         (unsigned long long)dcmd_u(j, "segments_freed"),
			         (unsigned long long)dcmd_u(j, "segments_compacted"),
			         bks_fmt_bytes(dcmd_u(j, "bytes_moved"), b, sizeof(b)));
		else
			snprintf(out, cap, "gc %s %s: %llu segments freed, %llu compacted, %llu rows "
			         "freed, %s moved, %llu metadata rows compacted", state,
			         cli_fmt_wall(t1, when, sizeof(when)),
			         (unsigned long long)dcmd_u(j, "segments_freed"),
			         (unsigned long long)dcmd_u(j, "segments_compacted"),
			         (unsigned long long)dcmd_u(j, "rows_freed"),
			         bks_fmt_bytes(dcmd_u(j, "bytes_moved"), b, sizeof(b)),
			         (unsigned long long)dcmd_u(j, "meta_rows_compacted"));
	} else if (!strcmp(kind, "compress")) {
		/* Deferred compression (store.zstd_level_busy = 0): raw chunks compressed in
		 * the background. */
		char c[32], d[32];
		uint64_t done = dcmd_u(j, "done_rows"), total = dcmd_u(j, "total_rows");
		int est = 0;
		jsonp_get_bool(j, "bytes_left_estimate", &est);
		if (!strcmp(state, "waiting") && !strcmp(dcmd_s(j, "waiting_for"), "error")) {
			uint64_t at = dcmd_u(j, "retry_ns");
			snprintf(out, cap, "compress waiting: %s (%llu errors), tries again in %s; "
			         "%s%s left", dcmd_s(j, "error"),
			         (unsigned long long)dcmd_u(j, "errors"),
			         cli_fmt_duration(at > now ? (double)(at - now) / 1e9 : 0, b,
			                          sizeof(b)),
			         est ? "at least " : "",
			         bks_fmt_bytes(dcmd_u(j, "bytes_left"), a, sizeof(a)));
		} else if (!strcmp(state, "waiting")) {
			snprintf(out, cap, "compress waiting: no room to move what is left until a "
			         "commit gives rows back (%llu segments skipped); %s%s left",
			         (unsigned long long)dcmd_u(j, "segments_skipped"),
			         est ? "at least " : "",
			         bks_fmt_bytes(dcmd_u(j, "bytes_left"), a, sizeof(a)));
		} else if (running || !strcmp(state, "paused"))
			snprintf(out, cap, "compress %s: %s%s left, %s, %s raw stored as %s so far, "
			         "row %llu of %llu%s", state, est ? "at least " : "",
			         bks_fmt_bytes(dcmd_u(j, "bytes_left"), a, sizeof(a)),
			         cli_fmt_rate(dcmd_d(j, "rate_bps", 0), b, sizeof(b)),
			         bks_fmt_bytes(dcmd_u(j, "raw_done"), c, sizeof(c)),
			         bks_fmt_bytes(dcmd_u(j, "stored_after"), d, sizeof(d)),
			         (unsigned long long)BKS_MIN(done, total), (unsigned long long)total,
			         running ? "" : " (waits while clients read or write)");
		else
			snprintf(out, cap, "compress %s %s: %llu segments, %s raw stored as %s, %s "
			         "saved", state, cli_fmt_wall(t1, when, sizeof(when)),
			         (unsigned long long)dcmd_u(j, "segments_done"),
			         bks_fmt_bytes(dcmd_u(j, "raw_done"), a, sizeof(a)),
			         bks_fmt_bytes(dcmd_u(j, "stored_after"), b, sizeof(b)),
			         bks_fmt_bytes(dcmd_u(j, "bytes_saved"), c, sizeof(c)));
	} else if (!strcmp(kind, "verify")) {
		uint64_t n = dcmd_u(j, "objects"), done = dcmd_u(j, "objects_done");
		double rate = secs > 0 ? (double)done / secs : 0;
		if (running)
			snprintf(out, cap, "verify running: %.1f%% (%llu of %llu objects), %.1f "
			         "objects/s, ETA %s, %llu chunks checked, %llu bad, %llu objects "
			         "damaged", n ? 100.0 * (double)BKS_MIN(done, n) / (double)n : 100.0,
			         (unsigned long long)done, (unsigned long long)n, rate,
			         cli_fmt_duration(rate > 0 && n >= done ? (double)(n - done) / rate : -1,
			                          a, sizeof(a)),
			         (unsigned long long)dcmd_u(j, "chunks_checked"),
			         (unsigned long long)dcmd_u(j, "chunks_bad"),
			         (unsigned long long)dcmd_u(j, "objects_damaged"));
		else
			snprintf(out, cap, "verify %s %s: %llu objects, %llu chunks checked, %llu bad, "
			         "%llu objects damaged, %llu repaired by the array", state,
			         cli_fmt_wall(t1, when, sizeof(when)), (unsigned long long)done,
			         (unsigned long long)dcmd_u(j, "chunks_checked"),
			         (unsigned long long)dcmd_u(j, "chunks_bad"),
			         (unsigned long long)dcmd_u(j, "objects_damaged"),
			         (unsigned long long)dcmd_u(j, "repaired"));
	} else {
		uint64_t done = dcmd_u(j, "done_rows"), total = dcmd_u(j, "total_rows");
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
			         cli_fmt_rate(dcmd_d(j, "rate_bps", 0), a, sizeof(a)),
			         cli_fmt_duration(dcmd_d(j, "eta_s", -1), b, sizeof(b)));
	}
	return 1;
}

/* ---- waiting for a job ------------------------------------------------------- */

const jsonp_val *dcmd_find_job(const jsonp_val *root, const char *kind)
{
	const jsonp_val *jobs = jsonp_get(root, "jobs");
	for (size_t i = 0; i < jsonp_len(jobs); i++)
		if (!strcmp(dcmd_s(jsonp_at(jobs, i), "kind"), kind))
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
	dcmd_sigs sigs;
	int array_job = strcmp(kind, "gc") && strcmp(kind, "verify");
	int end = W_FAIL, grace = START_GRACE_POLLS;
	char line[400];

	dcmd_sig_catch(&sigs, 1);
	for (;;) {
		if (dcmd_call(d, "GET", path, NULL, rp) != CLI_OK)
			break;
		const jsonp_val *j = dcmd_find_job(rp->root, kind);
		const char *state = dcmd_s(j, "state");
		if (array_job ? strcmp(state, "running") && strcmp(state, "paused")
		              : strcmp(state, "running") && dcmd_u(j, "started_ns") >= since_ns) {
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
		if (dcmd_fmt_job(j, line, sizeof(line), bks_wall_ns()))
			cli_progress_draw(d->c, line); /* only on a terminal */
		client_reply_free(rp);
		struct timespec ts = {.tv_sec = POLL_NS / 1000000000ull,
		                      .tv_nsec = POLL_NS % 1000000000ull};
		if (!dcmd_interrupted())
			nanosleep(&ts, NULL);
		if (dcmd_interrupted()) {
			cli_err(d->c, "stopped waiting; the %s goes on in bkstord (see bkstorctl "
			        "status)", kind);
			break;
		}
	}
	cli_progress_clear(d->c);
	dcmd_sig_restore(&sigs);
	if (end == W_FAIL)
		client_reply_free(rp);
	return end;
}

/* ---- scrub ----------------------------------------------------------------------- */

/* The scrub part of an array document: the running job and the counters. */
static int print_scrub(dcmd *d, const jsonp_val *arr_doc, int *unrecoverable)
{
	const jsonp_val *j = dcmd_find_job(arr_doc, "scrub"), *ls = jsonp_get(arr_doc, "last_scrub");
	char line[400], when[32], took[32];
	uint64_t t0 = dcmd_u(ls, "started_ns"), t1 = dcmd_u(ls, "finished_ns");

	*unrecoverable = dcmd_u(ls, "unrecoverable") > 0;
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
	if (j && dcmd_fmt_job(j, line, sizeof(line), bks_wall_ns())) {
		cli_print_field(NULL, line);
		if (isatty(STDOUT_FILENO)) {
			uint64_t done = dcmd_u(j, "done_rows"), total = dcmd_u(j, "total_rows");
			int fill = total ? (int)(50 * BKS_MIN(done, total) / total) : 50;
			printf("  [%.*s%*s]\n", fill,
			       "==================================================", 50 - fill, "");
		}
		snprintf(line, sizeof(line), "%llu rows checked, %llu errors found, %llu repaired, "
		         "%llu unrecoverable so far", (unsigned long long)dcmd_u(ls, "rows_checked"),
		         (unsigned long long)dcmd_u(ls, "errors_found"),
		         (unsigned long long)dcmd_u(ls, "repaired"),
		         (unsigned long long)dcmd_u(ls, "unrecoverable"));
		printf("  %s\n", line);
	} else if (t0) {
		snprintf(line, sizeof(line), "scrub: the last one ended %s after %s: %llu rows "
		         "checked, "
		         "%llu errors found, %llu repaired, %llu unrecoverable",
		         cli_fmt_wall(t1, when, sizeof(when)),
		         cli_fmt_duration(t1 >= t0 ? (double)(t1 - t0) / 1e9 : -1, took, sizeof(took)),
		         (unsigned long long)dcmd_u(ls, "rows_checked"),
		         (unsigned long long)dcmd_u(ls, "errors_found"),
		         (unsigned long long)dcmd_u(ls, "repaired"),
		         (unsigned long long)dcmd_u(ls, "unrecoverable"));
		cli_print_field(NULL, line);
	} else {
		cli_print_field(NULL, "scrub: never run on this array");
	}
	return CLI_OK;
}

static int scrub_cmd(cli_ctx *c, int argc, char **argv, const char *action)
{
	static const cli_opt opts[] = {DCMD_COMMON_OPTS, {"--wait", 0, O_WAIT}, {0}};
	static const cli_opt opts_nowait[] = {DCMD_COMMON_OPTS, {0}};
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
			return dcmd_post(&d, "/api/v1/scrub", body);
		if ((r = dcmd_call(&d, "POST", "/api/v1/scrub", body, &rp)))
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
	if ((r = dcmd_call(&d, "GET", "/api/v1/array", NULL, &rp)))
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
	const jsonp_val *j = dcmd_find_job(jobs_doc, kind);
	char line[400], num[32];

	*clean = dcmd_u(j, "objects_damaged") == 0;
	if (d->c->json)
		return cli_print_json(j);
	if (!dcmd_fmt_job(j, line, sizeof(line), bks_wall_ns()))
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
	if (jsonp_len(dmg) < dcmd_u(j, "objects_damaged"))
		printf("  (and %llu more)\n",
		       (unsigned long long)(dcmd_u(j, "objects_damaged") - jsonp_len(dmg)));
	const jsonp_val *bc = jsonp_get(j, "bad_chunks");
	for (size_t i = 0; i < jsonp_len(bc); i++) {
		char fp[80];
		const jsonp_val *v = jsonp_at(bc, i);
		client_clean_str(fp, sizeof(fp), dcmd_s(v, "fingerprint"));
		printf("  bad chunk: %s (%llu bytes, object %llu)\n", fp,
		       (unsigned long long)dcmd_u(v, "length"), (unsigned long long)dcmd_u(v, "object"));
	}
	if (dcmd_u(j, "queued_for_repair")) {
		const char *from = dcmd_s(j, "repair_from");
		printf("  %llu bad chunks queued for repair from the replication %s\n",
		       (unsigned long long)dcmd_u(j, "queued_for_repair"),
		       from && !strcmp(from, "twin") ? "twin" : "source");
	}
	return CLI_OK;
}

/* Start a store job (body to path), then with --wait poll until it ends and print
 * it. A job already running (409) is waited for too. */
static int store_job(dcmd *d, const char *path, const char *body, const char *kind)
{
	/* The daemon's clock is ours (a local socket): the job this request starts has
	 * started_ns >= now. No slack: a run that ended just before (a verify the daemon
	 * started itself a second ago) must not pass for this one. */
	uint64_t since = bks_wall_ns();
	reply rp;
	bks_err e = {0};
	int r, clean;

	if (!d->wait)
		return dcmd_post(d, path, body);
	r = client_api_call(&d->t, "POST", path, body, &rp, &e);
	client_reply_free(&rp);
	if (r == -EBUSY) {
		/* Refused because one is running? Then wait for that one. */
		if (dcmd_call(d, "GET", "/api/v1/jobs", NULL, &rp))
			return CLI_FAIL;
		if (!strcmp(dcmd_s(dcmd_find_job(rp.root, kind), "state"), "running")) {
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
	static const cli_opt opts[] = {DCMD_COMMON_OPTS, {"--wait", 0, O_WAIT},
	                               {"--min-live", 1, O_MIN_LIVE}, {0}};
	dcmd d;
	cli_body b;
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
	if (cli_body_begin(&b) < 0) {
		cli_err(c, "%s: out of memory", d.name);
		return CLI_FAIL;
	}
	json_str(&b.j, "action", "start");
	if (f >= 0)
		json_double(&b.j, "min_live", f);
	if (!(body = cli_body_end(&b))) {
		cli_err(c, "%s: out of memory", d.name);
		return CLI_FAIL;
	}
	r = store_job(&d, "/api/v1/gc", body, "gc");
	free(body);
	return r;
}

int cmd_gc_status(cli_ctx *c, int argc, char **argv)
{
	static const cli_opt opts[] = {DCMD_COMMON_OPTS, {0}};
	dcmd d;
	reply rp;
	int clean, r = dcmd_init(&d, c, argc, argv, opts, 0, 0, "");

	if (r || (r = dcmd_call(&d, "GET", "/api/v1/jobs", NULL, &rp)))
		return r;
	r = print_store_job(&d, rp.root, "gc", &clean);
	client_reply_free(&rp);
	return r;
}

int cmd_verify(cli_ctx *c, int argc, char **argv)
{
	static const cli_opt opts[] = {DCMD_COMMON_OPTS, {"--wait", 0, O_WAIT}, {0}};
	dcmd d;
	int r = dcmd_init(&d, c, argc, argv, opts, 0, 0, "");

	return r ? r : store_job(&d, "/api/v1/verify", "{\"action\": \"start\"}", "verify");
}

int cmd_commit(cli_ctx *c, int argc, char **argv)
{
	static const cli_opt opts[] = {DCMD_COMMON_OPTS, {0}};
	dcmd d;
	int r = dcmd_init(&d, c, argc, argv, opts, 0, 0, "");

	return r ? r : dcmd_post(&d, "/api/v1/commit", "{}");
}

