/* cli/cmd_lun.c: `bkstorctl lun list|create|resize|acl|delete`: the LUNs of a running
 * bkstord over its control API (docs/api.md "LUNs", docs/cli.md). Same conventions as
 * cli/dcmd.h: --api SOCKET / --client FILE pick the daemon, --json prints the
 * daemon's reply, exit 1 with the daemon's sentence when it refuses. */
#include <config.h>

#include "cli/cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/client_conf.h"
#include "cli/http.h"
#include "common/bks.h"
#include "common/json.h"
#include "common/jsonp.h"

enum { O_API = 100, O_CLIENT, O_BS, O_INI };

typedef struct lcmd {
	cli_ctx *c;
	const char *api, *client, *bs, *ini;
	int npos;
	http_target t;
} lcmd;

static int lcmd_init(lcmd *d, cli_ctx *c, int argc, char **argv, int nmin, int nmax,
                     const char *operands)
{
	static const cli_opt opts[] = {{"--api", 1, O_API}, {"--client", 1, O_CLIENT},
	                               {"--block-size", 1, O_BS}, {"--initiators", 1, O_INI}, {0}};
	cli_args p;
	const char *val;
	char warn[1200];
	bks_err e = {0};
	int id, r;
	memset(d, 0, sizeof(*d));
	d->c = c;
	cli_args_init(&p, argc, argv);
	while ((id = cli_next_opt(c, &p, opts, &val)) > 0) {
		switch (id) {
		case O_API: d->api = val; break;
		case O_CLIENT: d->client = val; break;
		case O_BS: d->bs = val; break;
		case O_INI: d->ini = val; break;
		}
	}
	if (id < 0)
		return CLI_USAGE;
	d->npos = p.npos;
	if (d->npos < nmin)
		return cli_usage(c, "lun %s needs %s", c->cmd ? c->cmd->verb : "", operands);
	if (d->npos > nmax)
		return cli_usage(c, "lun %s: unexpected argument '%s'", c->cmd ? c->cmd->verb : "",
		                 argv[nmax]);
	r = client_api_target(d->api, d->client, &d->t, warn, sizeof(warn), &e);
	if (warn[0])
		cli_err(c, "warning: %s", warn);
	if (r < 0)
		cli_err(c, "lun: %s", bks_errmsg(&e, r));
	return r < 0 ? CLI_FAIL : CLI_OK;
}

/* One request; prints the reply's message (or the JSON with --json). */
static int request(lcmd *d, const char *method, const char *path, const char *body)
{
	client_reply rp;
	bks_err e = {0};
	char msg[400];
	int r = client_api_call(&d->t, method, path, body, &rp, &e);
	if (r < 0) {
		cli_err(d->c, "lun: %s", bks_errmsg(&e, r));
		return CLI_FAIL;
	}
	if (d->c->json) {
		r = cli_print_json(rp.root);
	} else {
		client_clean_str(msg, sizeof(msg), jsonp_get_str(rp.root, "message", ""));
		if (msg[0])
			printf("%s\n", msg);
		r = CLI_OK;
	}
	client_reply_free(&rp);
	return r;
}

/* A JSON body from key/value pairs (strings escaped by the writer); free it. */
static char *body_of(const char *action, const char *name, const uint64_t *size,
                     const uint64_t *bs, const char *ini)
{
	cli_body b;
	if (cli_body_begin(&b) < 0)
		return NULL;
	if (action)
		json_str(&b.j, "action", action);
	if (name)
		json_str(&b.j, "name", name);
	if (size)
		json_uint(&b.j, "size", *size);
	if (bs)
		json_uint(&b.j, "block_size", *bs);
	if (ini)
		json_str(&b.j, "initiators", ini);
	return cli_body_end(&b);
}

/* The path of a LUN: names are [a-z0-9.-] (the daemon refuses others), so a name
 * with anything else is refused here rather than put into a URL. */
static int lun_path(lcmd *d, const char *name, char *out, size_t cap)
{
	if (!name[0] || strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789.-") != strlen(name)) {
		cli_err(d->c, "lun: '%s' is not a LUN name (a-z, 0-9, '.', '-')", name);
		return CLI_FAIL;
	}
	snprintf(out, cap, "/api/v1/luns/%s", name);
	return CLI_OK;
}

static int size_arg(lcmd *d, const char *s, uint64_t *out)
{
	if (cli_parse_size(s, out) < 0 || *out == 0) {
		cli_usage(d->c, "'%s' is not a size (bytes, or 10G, 512M...)", s);
		return CLI_USAGE;
	}
	return CLI_OK;
}

int cmd_lun_list(cli_ctx *c, int argc, char **argv)
{
	lcmd d;
	client_reply rp;
	bks_err e = {0};
	char a[32], b[32], nm[80], ini[160];
	int r = lcmd_init(&d, c, argc, argv, 0, 0, "");
	if (r)
		return r;
	if ((r = client_api_call(&d.t, "GET", "/api/v1/luns", NULL, &rp, &e)) < 0) {
		cli_err(c, "lun list: %s", bks_errmsg(&e, r));
		return CLI_FAIL;
	}
	const jsonp_val *ls = jsonp_get(rp.root, "luns");
	if (c->json) {
		json j;
		json_init(&j, stdout, 1);
		client_json_emit(&j, NULL, rp.root);
		r = json_finish(&j) < 0 ? CLI_FAIL : CLI_OK;
	} else {
		printf("%-24s %10s %6s %10s %8s %-13s  %s\n", "NAME", "SIZE", "BLOCK", "MAPPED",
		       "SESSIONS", "WRITE CACHE", "INITIATORS");
		for (size_t i = 0; i < jsonp_len(ls); i++) {
			const jsonp_val *l = jsonp_at(ls, i);
			uint64_t size = 0, mapped = 0, bs = 0, ses = 0;
			jsonp_get_uint(l, "size", &size);
			jsonp_get_uint(l, "mapped_bytes", &mapped);
			jsonp_get_uint(l, "block_size", &bs);
			jsonp_get_uint(l, "sessions", &ses);
			/* (an older daemon does not say: its LUNs always had it on) */
			int wb = 1;
			jsonp_get_bool(l, "write_cache", &wb);
			client_clean_str(nm, sizeof(nm), jsonp_get_str(l, "name", ""));
			client_clean_str(ini, sizeof(ini), jsonp_get_str(l, "initiators", ""));
			printf("%-24s %10s %6llu %10s %8llu %-13s  %s\n", nm,
			       bks_fmt_bytes(size, a, sizeof(a)), (unsigned long long)bs,
			       bks_fmt_bytes(mapped, b, sizeof(b)), (unsigned long long)ses,
			       wb ? "write-back" : "write-through", ini[0] ? ini : "(any)");
		}
		r = CLI_OK;
	}
	client_reply_free(&rp);
	return r;
}

/* POST body (made by body_of; NULL: out of memory) to path, and free it. */
static int post_body(lcmd *d, const char *path, char *body)
{
	if (!body)
		return CLI_FAIL;
	int r = request(d, "POST", path, body);
	free(body);
	return r;
}

int cmd_lun_create(cli_ctx *c, int argc, char **argv)
{
	lcmd d;
	uint64_t size, bs = 512;
	int r = lcmd_init(&d, c, argc, argv, 2, 2, "NAME SIZE");
	if (r || (r = size_arg(&d, argv[1], &size)))
		return r;
	if (d.bs && (cli_parse_size(d.bs, &bs) < 0 || (bs != 512 && bs != 4096)))
		return cli_usage(c, "--block-size is 512 or 4096");
	return post_body(&d, "/api/v1/luns", body_of(NULL, argv[0], &size, &bs, d.ini ? d.ini : ""));
}

int cmd_lun_resize(cli_ctx *c, int argc, char **argv)
{
	lcmd d;
	uint64_t size;
	char path[128];
	int r = lcmd_init(&d, c, argc, argv, 2, 2, "NAME SIZE");
	if (r || (r = size_arg(&d, argv[1], &size)) || (r = lun_path(&d, argv[0], path, sizeof(path))))
		return r;
	return post_body(&d, path, body_of("resize", NULL, &size, NULL, NULL));
}

int cmd_lun_acl(cli_ctx *c, int argc, char **argv)
{
	lcmd d;
	char path[128];
	int r = lcmd_init(&d, c, argc, argv, 1, 2, "NAME [INITIATORS]");
	if (r || (r = lun_path(&d, argv[0], path, sizeof(path))))
		return r;
	return post_body(&d, path, body_of("acl", NULL, NULL, NULL, d.npos > 1 ? argv[1] : ""));
}

int cmd_lun_set(cli_ctx *c, int argc, char **argv)
{
	lcmd d;
	char path[128];
	cli_body b;
	int r = lcmd_init(&d, c, argc, argv, 3, 3, "NAME write_cache on|off");
	if (r || (r = lun_path(&d, argv[0], path, sizeof(path))))
		return r;
	int on = !strcmp(argv[2], "on");
	if (strcmp(argv[1], "write_cache") || (!on && strcmp(argv[2], "off")))
		return cli_usage(c, "lun set NAME write_cache on|off");
	if (cli_body_begin(&b) < 0)
		return CLI_FAIL;
	json_str(&b.j, "action", "write_cache");
	json_bool(&b.j, "on", on);
	return post_body(&d, path, cli_body_end(&b));
}

int cmd_lun_delete(cli_ctx *c, int argc, char **argv)
{
	lcmd d;
	char path[128];
	int r = lcmd_init(&d, c, argc, argv, 1, 1, "NAME");
	if (r || (r = lun_path(&d, argv[0], path, sizeof(path))))
		return r;
	return request(&d, "DELETE", path, NULL);
}
