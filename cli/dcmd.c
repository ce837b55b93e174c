/* cli/dcmd.c: see dcmd.h. */
#include <config.h>

#include "cli/dcmd.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/bks.h"

/* Parse options and check the operand count (npos_min..npos_max); load the client
 * configuration and fill the target. CLI_OK, or the exit code after a message. */
int dcmd_init(dcmd *d, cli_ctx *c, int argc, char **argv, const cli_opt *opts,
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
		case O_STDIN: d->from_stdin = 1; break;
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

/* One request; CLI_OK with rp filled (a 2xx JSON object: client_reply_free it), or
 * CLI_FAIL after "bkstorctl: disk replace: <the daemon's sentence>". */
int dcmd_call(dcmd *d, const char *method, const char *path, const char *body, reply *rp)
{
	bks_err e = {0};
	int r = client_api_call(&d->t, method, path, body, rp, &e);
	if (r < 0) {
		cli_err(d->c, "%s: %s", d->name, bks_errmsg(&e, r));
		return CLI_FAIL;
	}
	return CLI_OK;
}

int cli_body_begin(cli_body *b)
{
	memset(b, 0, sizeof(*b));
	if (!(b->f = open_memstream(&b->buf, &b->len)))
		return -ENOMEM;
	json_init(&b->j, b->f, 0);
	json_obj_begin(&b->j, NULL);
	return 0;
}

/* The body as a string (free it), or NULL. */
char *cli_body_end(cli_body *b)
{
	json_obj_end(&b->j);
	int r = json_finish(&b->j);
	if (fclose(b->f) != 0 || r < 0) {
		free(b->buf);
		return NULL;
	}
	return b->buf;
}

int cli_print_json(const jsonp_val *v)
{
	json j;
	json_init(&j, stdout, 1);
	client_json_emit(&j, NULL, v);
	return json_finish(&j) < 0 ? CLI_FAIL : CLI_OK;
}

/* POST body to path; print the reply (--json) or its message. */
int dcmd_post(dcmd *d, const char *path, const char *body)
{
	char msg[400];
	reply rp;
	int r = dcmd_call(d, "POST", path, body, &rp);
	if (r)
		return r;
	if (d->c->json) {
		r = cli_print_json(rp.root);
	} else if (dcmd_s(rp.root, "message")[0]) {
		client_clean_str(msg, sizeof(msg), dcmd_s(rp.root, "message"));
		printf("%s\n", msg);
	}
	client_reply_free(&rp);
	return r;
}

uint64_t dcmd_u(const jsonp_val *o, const char *key)
{
	uint64_t v = 0;
	jsonp_get_uint(o, key, &v);
	return v;
}

double dcmd_d(const jsonp_val *o, const char *key, double dflt)
{
	double v = dflt;
	jsonp_get_double(o, key, &v);
	return v;
}

const char *dcmd_s(const jsonp_val *o, const char *key)
{
	return jsonp_get_str(o, key, "");
}



static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

void dcmd_sig_catch(dcmd_sigs *s, int term)
{
	struct sigaction sa = {.sa_handler = on_signal};
	sigemptyset(&sa.sa_mask);
	interrupted = 0;
	s->term = term;
	sigaction(SIGINT, &sa, &s->old_int);
	if (term)
		sigaction(SIGTERM, &sa, &s->old_term);
}

void dcmd_sig_restore(const dcmd_sigs *s)
{
	sigaction(SIGINT, &s->old_int, NULL);
	if (s->term)
		sigaction(SIGTERM, &s->old_term, NULL);
}

int dcmd_interrupted(void)
{
	return interrupted;
}
