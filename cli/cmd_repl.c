/* cli/cmd_repl.c: bkstorctl repl status | set | token | pair | promote | reseed
 * (docs/cli.md), through the control API of the local bkstord (docs/api.md
 * "Replication").
 *
 * Pairing, on the two appliances:
 *   twin$   bkstorctl repl token          -> a one-time token and the twin's fingerprint
 *   source$ bkstorctl repl pair TWIN:7072 --token TOKEN
 *           shows the fingerprint the twin presents and asks; the admin compares it
 *           with the one `repl token` printed. Scripts pass --yes FINGERPRINT instead.
 */
#include <config.h>

#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/client_conf.h"
#include "cli/http.h"
#include "common/bks.h"
#include "common/json.h"
#include "common/jsonp.h"

enum { O_API = 1, O_CLIENT, O_TOKEN, O_YES, O_FORCE, O_ADDRESS, O_CONFIRM };

typedef struct rcmd {
	cli_ctx *c;
	const char *api, *client, *token, *yes, *address;
	int npos, force, confirm;
	http_target t;
} rcmd;

static const cli_opt std_opts[] = {{"--api", 1, O_API}, {"--client", 1, O_CLIENT},
                                   {"--token", 1, O_TOKEN}, {"--yes", 1, O_YES}, {0}};

static int rcmd_init_opts(rcmd *d, cli_ctx *c, int argc, char **argv, int npos,
                          const cli_opt *opts);

static int rcmd_init(rcmd *d, cli_ctx *c, int argc, char **argv, int npos)
{
	return rcmd_init_opts(d, c, argc, argv, npos, std_opts);
}

static int rcmd_init_opts(rcmd *d, cli_ctx *c, int argc, char **argv, int npos,
                          const cli_opt *opts)
{
	cli_args p;
	const char *val;
	char warn[1200];
	bks_err e = {0};
	int id;
	memset(d, 0, sizeof(*d));
	d->c = c;
	cli_args_init(&p, argc, argv);
	while ((id = cli_next_opt(c, &p, opts, &val)) > 0) {
		switch (id) {
		case O_API: d->api = val; break;
		case O_CLIENT: d->client = val; break;
		case O_TOKEN: d->token = val; break;
		case O_YES: d->yes = val; break;
		case O_FORCE: d->force = 1; break;
		case O_ADDRESS: d->address = val; break;
		case O_CONFIRM: d->confirm = 1; break;
		}
	}
	if (id < 0)
		return CLI_USAGE;
	d->npos = p.npos;
	if (d->npos != npos)
		return cli_usage(c, "repl %s: %s", c->cmd ? c->cmd->verb : "",
		                 d->npos < npos ? "missing argument" : "unexpected argument");
	int r = client_api_target(d->api, d->client, &d->t, warn, sizeof(warn), &e);
	if (warn[0])
		cli_err(c, "warning: %s", warn);
	if (r < 0) {
		cli_err(c, "repl: %s", bks_errmsg(&e, r));
		return CLI_FAIL;
	}
	return CLI_OK;
}

static int call(rcmd *d, const char *method, const char *path, const char *body,
                client_reply *rp)
{
	bks_err e = {0};
	int r = client_api_call(&d->t, method, path, body, rp, &e);
	if (r < 0) {
		cli_err(d->c, "repl: %s", bks_errmsg(&e, r));
		return CLI_FAIL;
	}
	return CLI_OK;
}

static uint64_t u(const jsonp_val *o, const char *k)
{
	uint64_t v = 0;
	jsonp_get_uint(o, k, &v);
	return v;
}

static const char *s(const jsonp_val *o, const char *k, char *buf, size_t cap)
{
	client_clean_str(buf, cap, jsonp_get_str(o, k, "-"));
	return buf;
}

/* "; repair W wanted, F fetched, S sent, X failed" after the line in out, when any
 * of them is not 0 (docs/api.md "repair": chunks_wanted, chunks_received,
 * chunks_sent, chunks_failed). */
static void repair_tail(const jsonp_val *rep, char *out, size_t cap)
{
	size_t n = strlen(out);
	uint64_t w = u(rep, "chunks_wanted"), f = u(rep, "chunks_received"),
	         sn = u(rep, "chunks_sent"), x = u(rep, "chunks_failed");
	if (!rep || !(w | f | sn | x) || n >= cap)
		return;
	snprintf(out + n, cap - n, "; repair %llu wanted, %llu fetched, %llu sent, %llu failed",
	         (unsigned long long)w, (unsigned long long)f, (unsigned long long)sn,
	         (unsigned long long)x);
}

void cli_repl_line(const jsonp_val *o, char *out, size_t cap)
{
	char role[40], st[80], addr[80], fp[80], lb[32], rate[32], eta[32];
	const jsonp_val *lag = jsonp_get(o, "lag"), *rx = jsonp_get(o, "received");
	double secs = 0, bps = 0, eta_s = -1;
	int on = 0, paired = 0, n;
	if (!o || jsonp_get_bool(o, "enabled", &on) < 0 || !on) {
		snprintf(out, cap, "disabled");
		return;
	}
	jsonp_get_bool(o, "paired", &paired);
	s(o, "role", role, sizeof(role));
	s(o, "state", st, sizeof(st));
	s(o, "peer_address", addr, sizeof(addr));
	s(o, "peer_fingerprint", fp, sizeof(fp));
	fp[BKS_MIN(strlen(fp), (size_t)16)] = 0; /* enough to tell twins apart */
	jsonp_get_double(lag, "seconds", &secs);
	jsonp_get_double(o, "rate_bps", &bps);
	jsonp_get_double(o, "eta_s", &eta_s);
	if (!paired) {
		snprintf(out, cap, "%s, not paired, %s", role, st);
		return;
	}
	if (!strcmp(role, "source")) {
		n = snprintf(out, cap, "source to %s (SHA-256 %s...), %s; lag %llu files, %s, "
		             "%.0f s; %s", addr, fp, st, (unsigned long long)u(lag, "files"),
		             bks_fmt_bytes(u(lag, "bytes"), lb, sizeof(lb)), secs,
		             cli_fmt_rate(bps, rate, sizeof(rate)));
		if (n > 0 && (size_t)n < cap && eta_s >= 0 && u(lag, "bytes"))
			snprintf(out + n, cap - (size_t)n, ", ETA %s",
			         cli_fmt_duration(eta_s, eta, sizeof(eta)));
	} else {
		snprintf(out, cap, "twin of SHA-256 %s..., %s; %llu files received, %llu deletes "
		         "held back", fp, st, (unsigned long long)u(rx, "files"),
		         (unsigned long long)u(rx, "deletes_pending"));
	}
	repair_tail(jsonp_get(o, "repair"), out, cap);
}

int cmd_repl_status(cli_ctx *c, int argc, char **argv)
{
	rcmd d;
	client_reply rp;
	char b1[200], b2[200], b3[80], b4[80], sz[32];
	int r = rcmd_init(&d, c, argc, argv, 0);
	if (r || (r = call(&d, "GET", "/api/v1/repl", NULL, &rp)))
		return r;
	const jsonp_val *o = jsonp_get(rp.root, "repl");
	if (c->json) {
		r = cli_print_json(o ? o : rp.root);
	} else if (!o || jsonp_get_bool(o, "enabled", &r) < 0 || !r) {
		printf("replication: disabled ([repl] enable = yes in the configuration)\n");
		r = CLI_OK;
	} else {
		const jsonp_val *lag = jsonp_get(o, "lag"), *tx = jsonp_get(o, "sent"),
		                *rx = jsonp_get(o, "received"), *rep = jsonp_get(o, "repair");
		int paired = 0;
		double secs = 0;
		jsonp_get_bool(o, "paired", &paired);
		printf("appliance:   %s (%s)\n", s(o, "name", b2, sizeof(b2)),
		       s(o, "appliance_id", b1, sizeof(b1)));
		printf("certificate: SHA-256 %s\n", s(o, "fingerprint", b1, sizeof(b1)));
		printf("role:        %s, %s\n", s(o, "role", b1, sizeof(b1)), s(o, "state", b2, sizeof(b2)));
		if (paired)
			printf("twin:        %s (SHA-256 %s)\n", s(o, "peer_id", b1, sizeof(b1)),
			       s(o, "peer_fingerprint", b2, sizeof(b2)));
		else
			printf("twin:        not paired (bkstorctl repl pair HOST:PORT)\n");
		double bps = 0, eta_s = -1;
		jsonp_get_double(o, "rate_bps", &bps);
		jsonp_get_double(o, "eta_s", &eta_s);
		if (jsonp_get_str(o, "peer_address", NULL))
			printf("address:     %s\n", s(o, "peer_address", b1, sizeof(b1)));
		s(o, "window", b1, sizeof(b1));
		printf("window:      %s%s%s\n", b1[0] ? b1 : "always (no [repl] window)",
		       jsonp_get_str(o, "window_opens", NULL) ? ", opens at " : "",
		       jsonp_get_str(o, "window_opens", NULL) ? s(o, "window_opens", b2, sizeof(b2)) : "");
		printf("rate:        %s", cli_fmt_rate(bps, sz, sizeof(sz)));
		if (u(o, "bwlimit_bps"))
			printf(" (limit %s)", cli_fmt_rate((double)u(o, "bwlimit_bps"), b2, sizeof(b2)));
		if (eta_s >= 0)
			printf(", ETA %s (at most)", cli_fmt_duration(eta_s, b2, sizeof(b2)));
		printf("\n");
		if (u(o, "lag_alert_s") || u(o, "lag_alert_bytes")) {
			int al = 0;
			jsonp_get_bool(o, "lag_alert", &al);
			printf("lag alert:   past %llu s or %s%s\n", (unsigned long long)u(o, "lag_alert_s"),
			       u(o, "lag_alert_bytes") ? bks_fmt_bytes(u(o, "lag_alert_bytes"), sz, sizeof(sz))
			                               : "(no byte limit)",
			       al ? "; PAST IT NOW" : "");
		}
		if (jsonp_get_str(o, "peer_name", NULL))
			printf("twin name:   %s\n", s(o, "peer_name", b1, sizeof(b1)));
		if (jsonp_get_str(o, "read_only_reason", NULL))
			printf("read-only:   %s\n", s(o, "read_only_reason", b1, sizeof(b1)));
		const jsonp_val *rs = jsonp_get(o, "reseed");
		if (rs && jsonp_get_str(rs, "phase", NULL))
			printf("reseed:      %s; then the new appliance is %s (appliance %s), the %s\n",
			       s(rs, "phase", b1, sizeof(b1)), s(rs, "takes_name", b2, sizeof(b2)),
			       s(rs, "takes_id", b3, sizeof(b3)), s(rs, "new_role", b4, sizeof(b4)));
		if (jsonp_get_str(o, "last_error", NULL))
			printf("last error:  %s\n", s(o, "last_error", b1, sizeof(b1)));
		if (lag) {
			jsonp_get_double(lag, "seconds", &secs);
			printf("lag:         %llu files, %s, %.0f s\n", (unsigned long long)u(lag, "files"),
			       bks_fmt_bytes(u(lag, "bytes"), sz, sizeof(sz)), secs);
		}
		if (tx)
			printf("sent:        %llu files, %llu chunks (%llu the twin had), %s on the wire\n",
			       (unsigned long long)u(tx, "files"), (unsigned long long)u(tx, "chunks"),
			       (unsigned long long)u(tx, "chunks_twin_had"),
			       bks_fmt_bytes(u(tx, "wire_bytes"), sz, sizeof(sz)));
		if (rx)
			printf("received:    %llu files, %llu chunks; %llu deletes waiting for the "
			       "delay; %llu connections refused\n", (unsigned long long)u(rx, "files"),
			       (unsigned long long)u(rx, "chunks"),
			       (unsigned long long)u(rx, "deletes_pending"),
			       (unsigned long long)u(rx, "refused_connections"));
		/* Chunks this appliance's verify found damaged, got again from the peer (a
		 * twin's from its source, a source's from its twin), and the peer's. */
		const char *from = rep ? jsonp_get_str(rep, "wanted_from", NULL) : NULL;
		int twin_gives = from && !strcmp(from, "twin");
		if (rep && (u(rep, "chunks_wanted") || u(rep, "chunks_repaired") ||
		            u(rep, "chunks_refused") || u(rep, "chunks_not_queued") ||
		            u(rep, "chunks_peer_lacked")))
			printf("repair:      %llu damaged chunks wanted from the %s, %llu "
			       "repaired, %llu refused (bad SHA-256), %llu not queued (list full)%s\n",
			       (unsigned long long)u(rep, "chunks_wanted"),
			       twin_gives ? "twin" : "source",
			       (unsigned long long)u(rep, "chunks_repaired"),
			       (unsigned long long)u(rep, "chunks_refused"),
			       (unsigned long long)u(rep, "chunks_not_queued"),
			       !u(rep, "chunks_peer_lacked") ? ""
			       : twin_gives ? ", some not on the twin" : ", some not on the source");
		if (rep && (u(rep, "chunks_sent") || u(rep, "chunks_missing_here")))
			printf("repair sent: %llu chunks the %s wanted again (%llu not readable "
			       "here)\n", (unsigned long long)u(rep, "chunks_sent"),
			       twin_gives ? "twin" : from ? "source" : "peer",
			       (unsigned long long)u(rep, "chunks_missing_here"));
		r = CLI_OK;
	}
	client_reply_free(&rp);
	return r;
}

/* A JSON body {"key": .., "value": ..}. */
static char *set_body(const char *key, const char *value)
{
	cli_body b;
	if (cli_body_begin(&b) < 0)
		return NULL;
	json_str(&b.j, "key", key);
	json_str(&b.j, "value", value);
	return cli_body_end(&b);
}

int cmd_repl_set(cli_ctx *c, int argc, char **argv)
{
	rcmd d;
	client_reply rp;
	char b1[200];
	int r = rcmd_init(&d, c, argc, argv, 2);
	if (r)
		return r;
	char *body = set_body(argv[0], argv[1]);
	if (!body || (r = call(&d, "POST", "/api/v1/repl/set", body, &rp))) {
		free(body);
		return body ? r : CLI_FAIL;
	}
	free(body);
	if (c->json)
		r = cli_print_json(rp.root);
	else
		printf("[repl] %s = %s (in effect now, and written to the configuration)\n",
		       argv[0], s(rp.root, "value", b1, sizeof(b1)));
	client_reply_free(&rp);
	return r ? r : CLI_OK;
}

int cmd_repl_token(cli_ctx *c, int argc, char **argv)
{
	rcmd d;
	client_reply rp;
	char b1[200], b2[200];
	int r = rcmd_init(&d, c, argc, argv, 0);
	if (r || (r = call(&d, "POST", "/api/v1/repl/token", "{}", &rp)))
		return r;
	if (c->json) {
		r = cli_print_json(rp.root);
	} else {
		printf("pairing token: %s   (one use, valid %llu s)\n", s(rp.root, "token", b1, sizeof(b1)),
		       (unsigned long long)u(rp.root, "valid_s"));
		printf("this appliance's certificate: SHA-256 %s\n",
		       s(rp.root, "fingerprint", b2, sizeof(b2)));
		printf("on the source: bkstorctl repl pair THIS_HOST:PORT --token %s\n", b1);
		r = CLI_OK;
	}
	client_reply_free(&rp);
	return r;
}

/* A JSON body {"address", "token", "fingerprint", "force", "return_address"} for
 * pair and reseed; NULLs left out (force too). Free it; NULL if out of memory. */
static char *peer_body(const char *addr, const char *token, const char *fp,
                       const int *force, const char *back)
{
	cli_body b;
	if (cli_body_begin(&b) < 0)
		return NULL;
	json_str(&b.j, "address", addr);
	if (token)
		json_str(&b.j, "token", token);
	if (fp)
		json_str(&b.j, "fingerprint", fp);
	if (force)
		json_bool(&b.j, "force", *force);
	if (back)
		json_str(&b.j, "return_address", back);
	return cli_body_end(&b);
}

int cmd_repl_pair(cli_ctx *c, int argc, char **argv)
{
	rcmd d;
	client_reply rp;
	char fp[200], b1[200], ans[16];
	int r = rcmd_init(&d, c, argc, argv, 1);
	if (r)
		return r;
	const char *addr = argv[0];
	if (!d.token)
		return cli_usage(c, "repl pair: --token TOKEN is needed (run `bkstorctl repl "
		                 "token` on the twin)");
	if (d.yes) {
		snprintf(fp, sizeof(fp), "%s", d.yes);
	} else {
		/* First look: what certificate does the twin present? */
		char *body = peer_body(addr, NULL, NULL, NULL, NULL);
		if (!body || (r = call(&d, "POST", "/api/v1/repl/pair", body, &rp))) {
			free(body);
			return body ? r : CLI_FAIL;
		}
		free(body);
		s(rp.root, "fingerprint", fp, sizeof(fp));
		client_reply_free(&rp);
		fprintf(stderr, "The twin at %s presents the certificate\n  SHA-256 %s\n"
		        "Is this the fingerprint `bkstorctl repl token` printed there? [y/N] ",
		        addr, fp);
		if (!isatty(STDIN_FILENO) || !fgets(ans, sizeof(ans), stdin) ||
		    (ans[0] != 'y' && ans[0] != 'Y')) {
			cli_err(c, "repl pair: not confirmed; nothing was pinned (scripts: --yes "
			        "FINGERPRINT)");
			return CLI_FAIL;
		}
	}
	char *body = peer_body(addr, d.token, fp, NULL, NULL);
	if (!body || (r = call(&d, "POST", "/api/v1/repl/pair", body, &rp))) {
		free(body);
		return body ? r : CLI_FAIL;
	}
	free(body);
	if (c->json)
		r = cli_print_json(rp.root);
	else
		printf("paired with appliance %s at %s (SHA-256 %s)\n",
		       s(rp.root, "peer_id", b1, sizeof(b1)), addr, fp);
	client_reply_free(&rp);
	return r ? r : CLI_OK;
}

/* Ask on the terminal; 1 when the answer is yes. */
static int ask(const char *question)
{
	char ans[16];
	fprintf(stderr, "%s [y/N] ", question);
	return isatty(STDIN_FILENO) && fgets(ans, sizeof(ans), stdin) &&
	       (ans[0] == 'y' || ans[0] == 'Y');
}

int cmd_repl_promote(cli_ctx *c, int argc, char **argv)
{
	static const cli_opt opts[] = {{"--api", 1, O_API}, {"--yes", 0, O_CONFIRM}, {0}};
	rcmd d;
	client_reply rp;
	char b1[300], b2[300];
	int r = rcmd_init_opts(&d, c, argc, argv, 0, opts);
	if (r)
		return r;
	if (!d.confirm) {
		/* Who is the source? The admin must know that it is lost, not only silent. */
		if ((r = call(&d, "GET", "/api/v1/repl", NULL, &rp)))
			return r;
		const jsonp_val *o = jsonp_get(rp.root, "repl");
		fprintf(stderr, "This twin takes files from %s (appliance %s).\n"
		        "Promoted, it takes client writes and refuses that source from now on;\n"
		        "the deletes it is holding back are dropped (the files stay).\n",
		        o ? s(o, "peer_name", b1, sizeof(b1)) : "-",
		        o ? s(o, "peer_id", b2, sizeof(b2)) : "-");
		client_reply_free(&rp);
		if (!ask("Promote this appliance?")) {
			cli_err(c, "repl promote: not confirmed; nothing changed (scripts: --yes)");
			return CLI_FAIL;
		}
	}
	if ((r = call(&d, "POST", "/api/v1/repl/promote", "{}", &rp)))
		return r;
	if (c->json) {
		r = cli_print_json(rp.root);
	} else {
		printf("promoted: this appliance takes writes; replication from %s is refused\n",
		       s(rp.root, "old_source", b1, sizeof(b1)));
		uint64_t n = u(rp.root, "deletes_dropped");
		if (n)
			printf("%llu held-back delete%s dropped (the files stay): see %s\n",
			       (unsigned long long)n, n == 1 ? "" : "s",
			       s(rp.root, "dropped_list", b2, sizeof(b2)));
		r = CLI_OK;
	}
	client_reply_free(&rp);
	return r;
}

int cmd_repl_reseed(cli_ctx *c, int argc, char **argv)
{
	static const cli_opt opts[] = {{"--api", 1, O_API}, {"--token", 1, O_TOKEN},
	                               {"--yes", 1, O_YES}, {"--force", 0, O_FORCE},
	                               {"--address", 1, O_ADDRESS}, {0}};
	rcmd d;
	client_reply rp;
	char fp[200], b1[200], b2[200], q[400];
	int r = rcmd_init_opts(&d, c, argc, argv, 1, opts);
	if (r)
		return r;
	const char *addr = argv[0];
	if (!d.token)
		return cli_usage(c, "repl reseed: --token TOKEN is needed (run `bkstorctl repl "
		                 "token` on the new appliance)");
	if (d.yes) {
		snprintf(fp, sizeof(fp), "%s", d.yes);
	} else {
		char *body = peer_body(addr, NULL, NULL, &(const int){0}, NULL);
		if (!body || (r = call(&d, "POST", "/api/v1/repl/reseed", body, &rp))) {
			free(body);
			return body ? r : CLI_FAIL;
		}
		free(body);
		s(rp.root, "fingerprint", fp, sizeof(fp));
		client_reply_free(&rp);
		snprintf(q, sizeof(q), "The new appliance at %s presents the certificate\n  SHA-256 "
		         "%s\nIs this the fingerprint `bkstorctl repl token` printed there?", addr, fp);
		if (!ask(q)) {
			cli_err(c, "repl reseed: not confirmed; nothing changed (scripts: --yes "
			        "FINGERPRINT)");
			return CLI_FAIL;
		}
	}
	char *body = peer_body(addr, d.token, fp, &d.force, d.address);
	if (!body || (r = call(&d, "POST", "/api/v1/repl/reseed", body, &rp))) {
		free(body);
		return body ? r : CLI_FAIL;
	}
	free(body);
	if (c->json) {
		r = cli_print_json(rp.root);
	} else {
		printf("reseeding %s (SHA-256 %s): it receives everything from this appliance,\n"
		       "then takes over as %s (appliance %s) and becomes the %s.\n"
		       "Follow it with: bkstorctl repl status\n", addr, fp,
		       s(rp.root, "takes_name", b1, sizeof(b1)), s(rp.root, "takes_id", b2, sizeof(b2)),
		       !strcmp(s(rp.root, "then", q, sizeof(q)), "source")
		           ? "source (this appliance its twin again)" : "twin");
		r = CLI_OK;
	}
	client_reply_free(&rp);
	return r;
}
