/* cli/cmd_disk.c: the disks of a running bkstord: `disk list` (a table of slots,
 * roles, states, paths and error counters) and the actions (fail, replace,
 * add-spare, remove, offline, online, locate), which name a disk by path, UUID or
 * slotN. */
#include <config.h>

#include "cli/dcmd.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/bks.h"

enum { DC_SLOT, DC_ROLE, DC_STATE, DC_PATH, DC_SERIAL, DC_SIZE, DC_READ, DC_WRITE,
       DC_CKSUM, DC_N };

int cmd_disk_list(cli_ctx *c, int argc, char **argv)
{
	static const cli_opt opts[] = {DCMD_COMMON_OPTS, {0}};
	static const char *const head[DC_N] = {"SLOT", "ROLE", "STATE", "PATH", "SERIAL",
	                                       "SIZE", "READ", "WRITE", "CKSUM"};
	dcmd d;
	reply rp;
	int r = dcmd_init(&d, c, argc, argv, opts, 0, 0, "");

	if (r || (r = dcmd_call(&d, "GET", "/api/v1/disks", NULL, &rp)))
		return r;
	if (c->json) {
		r = cli_print_json(rp.root);
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
		client_clean_str(row[DC_ROLE], 300, dcmd_s(o, "role"));
		client_clean_str(row[DC_STATE], 300, dcmd_s(o, "state"));
		client_clean_str(row[DC_PATH], 300, dcmd_s(o, "path"));
		if (!row[DC_PATH][0] && dcmd_s(o, "uuid")[0]) {
			snprintf(row[DC_PATH], 300, "(not present: uuid %.40s)", dcmd_s(o, "uuid"));
			client_clean_str(row[DC_PATH], 300, row[DC_PATH]); /* in place is safe */
		}
		else if (!row[DC_PATH][0])
			snprintf(row[DC_PATH], 300, "(empty slot)");
		client_clean_str(row[DC_SERIAL], 300, dcmd_s(o, "serial")[0] ? dcmd_s(o, "serial") : "-");
		if (dcmd_u(o, "size"))
			bks_fmt_bytes(dcmd_u(o, "size"), row[DC_SIZE], 300);
		else
			snprintf(row[DC_SIZE], 300, "-");
		snprintf(row[DC_READ], 300, "%llu", (unsigned long long)dcmd_u(o, "read_errors"));
		snprintf(row[DC_WRITE], 300, "%llu", (unsigned long long)dcmd_u(o, "write_errors"));
		snprintf(row[DC_CKSUM], 300, "%llu", (unsigned long long)dcmd_u(o, "cksum_errors"));
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
	if (dcmd_call(d, "GET", "/api/v1/disks", NULL, &rp))
		return CLI_FAIL;
	const jsonp_val *disks = jsonp_get(rp.root, "disks");
	for (size_t i = 0; i < jsonp_len(disks); i++) {
		const char *p = dcmd_s(jsonp_at(disks, i), "path");
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
	static const cli_opt o_plain[] = {DCMD_COMMON_OPTS, {0}};
	static const cli_opt o_force[] = {DCMD_COMMON_OPTS, {"--force", 0, O_FORCE}, {0}};
	static const cli_opt o_off[] = {DCMD_COMMON_OPTS, {"--off", 0, O_OFF}, {0}};
	static const char *const path[] = {"fail", "replace", "add-spare", "remove", "offline",
	                                   "online", "locate"};
	const cli_opt *opts = verb == DV_REPLACE || verb == DV_ADD_SPARE ? o_force
	                      : verb == DV_LOCATE ? o_off : o_plain;
	int nargs = verb == DV_REPLACE ? 2 : 1;
	char name[4096], url[64], *body;
	dcmd d;
	cli_body b;
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
	if (cli_body_begin(&b) < 0) {
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
	body = cli_body_end(&b);
	if (r || !body) {
		if (!r)
			cli_err(c, "%s: out of memory", d.name);
		free(body);
		return CLI_FAIL;
	}
	snprintf(url, sizeof(url), "/api/v1/disks/%s", path[verb]);
	r = dcmd_post(&d, url, body);
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
