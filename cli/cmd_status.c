/* cli/cmd_status.c: what a running bkstord says about itself: `status` (health,
 * capacity, throughput, replication, NFS, LUNs, jobs, then the array as `array show`
 * prints it), `array show` without disks, and `events` (the daemon's event ring,
 * --follow to keep reading it).
 *
 * The array document becomes an arr_status for cli_print_status_human, so `status`
 * shows the array exactly as the offline `array show` does. With --json a command
 * prints the daemon's reply (re-indented) and nothing else on stdout. */
#include <config.h>

#include "cli/dcmd.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/bks.h"
#include "storage/arr_json.h"
#include "storage/array.h"

/* ---- human output ---------------------------------------------------------- */

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

static void print_jobs(const jsonp_val *jobs, uint64_t now)
{
	char line[400];
	int n = 0;
	for (size_t i = 0; i < jsonp_len(jobs); i++)
		if (dcmd_fmt_job(jsonp_at(jobs, i), line, sizeof(line), now))
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
	         (unsigned long long)dcmd_u(nfs, "port"), (unsigned long long)dcmd_u(nfs, "mount_port"),
	         (unsigned long long)dcmd_u(nfs, "connections"), jsonp_len(ms));
	cli_print_field("nfs", line);
	for (size_t i = 0; i < jsonp_len(xs); i++) {
		const jsonp_val *x = jsonp_at(xs, i);
		double wr = 0, rd = 0;
		jsonp_double(jsonp_get(x, "write_bps"), &wr);
		jsonp_double(jsonp_get(x, "read_bps"), &rd);
		snprintf(line, sizeof(line), "%s %s (%s): %s written, %s read; last minute %s/s "
		         "written, %s/s read", dcmd_s(x, "name"), dcmd_s(x, "path"), dcmd_s(x, "access"),
		         bks_fmt_bytes(dcmd_u(x, "bytes_written"), a, sizeof(a)),
		         bks_fmt_bytes(dcmd_u(x, "bytes_read"), b, sizeof(b)),
		         bks_fmt_bytes((uint64_t)wr, ra, sizeof(ra)),
		         bks_fmt_bytes((uint64_t)rd, rb, sizeof(rb)));
		cli_print_field("export", line);
	}
	for (size_t i = 0; i < jsonp_len(cs) && i < 16; i++) {
		const jsonp_val *c = jsonp_at(cs, i);
		snprintf(line, sizeof(line), "%s: %llu connections, %llu calls, %s written, %s read",
		         dcmd_s(c, "address"), (unsigned long long)dcmd_u(c, "connections"),
		         (unsigned long long)dcmd_u(c, "calls"),
		         bks_fmt_bytes(dcmd_u(c, "bytes_written"), a, sizeof(a)),
		         bks_fmt_bytes(dcmd_u(c, "bytes_read"), b, sizeof(b)));
		cli_print_field(i ? "" : "clients", line);
	}
	for (size_t i = 0; i < jsonp_len(ms) && i < 16; i++) {
		const jsonp_val *m = jsonp_at(ms, i);
		snprintf(line, sizeof(line), "%s %s", dcmd_s(m, "client"), dcmd_s(m, "path"));
		cli_print_field(i ? "" : "mounts", line);
	}
}

/* LUNs: one line each (size, mapped bytes, sessions). */
static void print_luns(const jsonp_val *ls)
{
	char line[400], a[32], b[32], nm[80];
	for (size_t i = 0; i < jsonp_len(ls) && i < 64; i++) {
		const jsonp_val *l = jsonp_at(ls, i);
		client_clean_str(nm, sizeof(nm), dcmd_s(l, "name"));
		snprintf(line, sizeof(line), "%s: %s, %s mapped, %llu-byte blocks, %llu sessions",
		         nm, bks_fmt_bytes(dcmd_u(l, "size"), a, sizeof(a)),
		         bks_fmt_bytes(dcmd_u(l, "mapped_bytes"), b, sizeof(b)),
		         (unsigned long long)dcmd_u(l, "block_size"),
		         (unsigned long long)dcmd_u(l, "sessions"));
		cli_print_field(i ? "" : "luns", line);
	}
}

static void print_overview(const jsonp_val *root)
{
	const jsonp_val *cap = jsonp_get(root, "capacity"), *tp = jsonp_get(root, "throughput");
	uint64_t now = bks_wall_ns(), last = dcmd_u(root, "last_commit_ns");
	uint64_t total = dcmd_u(cap, "total_bytes"), free_b = dcmd_u(cap, "free_bytes");
	char a[32], b[32], c[32], d[32], line[400];

	cli_print_field("health", dcmd_s(root, "health"));
	if (dcmd_s(root, "action")[0])
		cli_print_field("action", dcmd_s(root, "action"));
	snprintf(line, sizeof(line), "bkstord %s, %s, up %s, %llu connections",
	         dcmd_s(root, "version"), dcmd_s(root, "state"),
	         cli_fmt_duration(dcmd_d(root, "uptime_s", -1), a, sizeof(a)),
	         (unsigned long long)dcmd_u(root, "connections"));
	cli_print_field("daemon", line);
	if (last && now >= last)
		snprintf(line, sizeof(line), "last %s ago, %llu since bkstord started",
		         cli_fmt_duration((double)(now - last) / 1e9, a, sizeof(a)),
		         (unsigned long long)dcmd_u(root, "commits"));
	else
		snprintf(line, sizeof(line), "none yet");
	cli_print_field("commit", line);
	snprintf(line, sizeof(line), "%s logical, %s physical; %s free of %s (%.0f%%)",
	         bks_fmt_bytes(dcmd_u(cap, "logical_bytes"), a, sizeof(a)),
	         bks_fmt_bytes(dcmd_u(cap, "physical_bytes"), b, sizeof(b)),
	         bks_fmt_bytes(free_b, c, sizeof(c)), bks_fmt_bytes(total, d, sizeof(d)),
	         total ? 100.0 * (double)BKS_MIN(free_b, total) / (double)total : 0.0);
	cli_print_field("space", line);
	int full = 0;
	if (jsonp_bool(jsonp_get(cap, "full"), &full) == 0 && full) {
		/* New data is refused until deletes and a garbage collection give rows
		 * back (the daemon keeps a reserve for exactly that). */
		snprintf(line, sizeof(line), "delete backups or add disks (new data is refused; "
		         "bkstorctl rm, then bkstorctl gc; %llu rows free, %llu reserved)",
		         (unsigned long long)dcmd_u(cap, "rows_free"),
		         (unsigned long long)dcmd_u(cap, "rows_reserved"));
		cli_print_field("full", line);
	}
	snprintf(line, sizeof(line), "dedup %.2fx, compression %.2fx; %llu objects, %llu unique "
	         "chunks", dcmd_d(cap, "dedup_ratio", 1), dcmd_d(cap, "compression_ratio", 1),
	         (unsigned long long)dcmd_u(cap, "objects"),
	         (unsigned long long)dcmd_u(cap, "unique_chunks"));
	cli_print_field("ratio", line);
	snprintf(line, sizeof(line), "ingest %s, restore %s (last 10 s)",
	         cli_fmt_rate(dcmd_d(tp, "ingest_bps", 0), a, sizeof(a)),
	         cli_fmt_rate(dcmd_d(tp, "restore_bps", 0), b, sizeof(b)));
	cli_print_field("rate", line);
	cli_repl_line(jsonp_get(root, "repl"), line, sizeof(line));
	cli_print_field("repl", line);
	print_nfs(jsonp_get(root, "nfs"));
	print_luns(jsonp_get(root, "luns"));
	print_jobs(jsonp_get(root, "jobs"), now);
	putchar('\n');
}

/* ---- status, array show ------------------------------------------------------ */

int cmd_status(cli_ctx *c, int argc, char **argv)
{
	static const cli_opt opts[] = {DCMD_COMMON_OPTS, {0}};
	dcmd d;
	reply rp;
	int r = dcmd_init(&d, c, argc, argv, opts, 0, 0, "");

	if (r || (r = dcmd_call(&d, "GET", "/api/v1/status", NULL, &rp)))
		return r;
	if (c->json) {
		r = cli_print_json(rp.root);
	} else {
		print_overview(rp.root);
		r = print_array(&d, jsonp_get(rp.root, "array"));
	}
	client_reply_free(&rp);
	return r;
}

int cmd_daemon_array_show(cli_ctx *c, int argc, char **argv)
{
	static const cli_opt opts[] = {DCMD_COMMON_OPTS, {0}};
	dcmd d;
	reply rp;
	int r = dcmd_init(&d, c, argc, argv, opts, 0, 0, "");

	if (r || (r = dcmd_call(&d, "GET", "/api/v1/array", NULL, &rp)))
		return r;
	r = c->json ? cli_print_json(rp.root) : print_array(&d, rp.root);
	client_reply_free(&rp);
	return r;
}

/* ---- events ------------------------------------------------------------------- */

static void print_events(dcmd *d, const jsonp_val *root, uint64_t since)
{
	const jsonp_val *ev = jsonp_get(root, "events");
	char when[32], msg[400];

	for (size_t i = 0; i < jsonp_len(ev); i++) {
		const jsonp_val *e = jsonp_at(ev, i);
		uint64_t seq = dcmd_u(e, "seq");
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
		client_clean_str(msg, sizeof(msg), dcmd_s(e, "msg"));
		printf("%6llu %s %-5s %s\n", (unsigned long long)seq,
		       cli_fmt_wall(dcmd_u(e, "time_ns"), when, sizeof(when)), dcmd_s(e, "level"), msg);
	}
	fflush(stdout);
}

int cmd_events(cli_ctx *c, int argc, char **argv)
{
	static const cli_opt opts[] = {DCMD_COMMON_OPTS, {"--since", 1, O_SINCE},
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
	dcmd_sigs sigs;
	if (d.follow)
		dcmd_sig_catch(&sigs, 0);
	for (;;) {
		snprintf(path, sizeof(path), "/api/v1/events?since=%llu", (unsigned long long)since);
		if ((r = dcmd_call(&d, "GET", path, NULL, &rp)))
			break;
		uint64_t next = since;
		if (jsonp_get_uint(rp.root, "next", &next) < 0 || next < since) {
			cli_err(c, "%s: the reply has no valid 'next'", d.name);
			client_reply_free(&rp);
			r = CLI_FAIL;
			break;
		}
		if (c->json && !d.follow)
			r = cli_print_json(rp.root);
		else
			print_events(&d, rp.root, since);
		client_reply_free(&rp);
		since = next;
		if (!d.follow || r || dcmd_interrupted())
			break;
		struct timespec ts = {.tv_sec = 1};
		nanosleep(&ts, NULL);
		if (dcmd_interrupted())
			break;
	}
	if (d.follow)
		dcmd_sig_restore(&sigs);
	return r;
}

