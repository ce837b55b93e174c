/* cli/cmd_files.c: `bkstorctl put|get|ls|stat|rm|mkdir|mv|ping`: files on a running
 * bkstord over the native protocol (cli/nclient.h). Where the daemon is and who we
 * are comes from the client configuration (cli/client_conf.h: --client FILE,
 * $BKSTOR_CLIENT, /etc/bkstor/client.conf); --server HOST:PORT overrides its address.
 *
 * Remote paths are taken as absolute ("backups/a" is "/backups/a"). Results go to
 * stdout (a human line or table, or one JSON document with --json); progress lines
 * and errors to stderr.
 */
#include <config.h>

#include "cli/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/client_conf.h"
#include "cli/nclient.h"
#include "common/bks.h"
#include "common/json.h"

enum {
	O_CLIENT = 1, O_SERVER, O_OVERWRITE, O_PARENTS, O_DEDUP, O_OFFSET, O_LENGTH, O_LONG,
	O_RECURSIVE, O_MODE, O_NOREPLACE,
};

#define COMMON_OPTS {"--client", 1, O_CLIENT}, {"--server", 1, O_SERVER}
#define OPTS_END {NULL, 0, 0}
#define LS_WIDTH_SAMPLE 4096 /* entries looked at to size the NAME column */

typedef struct where {
	const char *client, *server;
} where;

/* Parse the options; common ones land in w, others are returned one by one through
 * fn. Returns 0 with the operands in argv[0..*npos), or CLI_USAGE. */
typedef int (*opt_fn)(cli_ctx *c, void *ctx, int id, const char *val);

static int parse(cli_ctx *c, int argc, char **argv, const cli_opt *opts, where *w,
                 opt_fn fn, void *ctx, int min, int max, int *npos)
{
	cli_args p;
	const char *val;
	int id;
	cli_args_init(&p, argc, argv);
	while ((id = cli_next_opt(c, &p, opts, &val)) > 0) {
		if (id == O_CLIENT)
			w->client = val;
		else if (id == O_SERVER)
			w->server = val;
		else if (fn(c, ctx, id, val) != 0)
			return CLI_USAGE;
	}
	if (id < 0)
		return CLI_USAGE;
	if (p.npos < min)
		return cli_usage(c, "missing operand");
	if (p.npos > max)
		return cli_usage(c, "unexpected operand '%s'", argv[max]);
	*npos = p.npos;
	return 0;
}

static int no_opt(cli_ctx *c, void *ctx, int id, const char *val)
{
	return 0;
}

/* Load the client configuration and connect. NULL after an error message. */
static ncl *connect_to(cli_ctx *c, const where *w)
{
	client_conf *cf = malloc(sizeof(*cf));
	char host[256];
	bks_err e = {0};
	ncl *n = NULL;
	int r;

	if (!cf) {
		cli_err(c, "out of memory");
		return NULL;
	}
	if ((r = client_conf_load(w->client, cf, &e)) < 0) {
		cli_err(c, "%s", bks_errmsg(&e, r));
		goto wipe;
	}
	if (cf->warning[0])
		cli_err(c, "warning: %s", cf->warning);
	ncl_opts o = {.host = cf->server_host, .port = cf->server_port, .name = cf->name,
	              .secret_hex = cf->secret, .conf = cf->source};
	if (w->server) {
		if ((r = ncl_addr_parse(w->server, host, sizeof(host), &o.port, &e)) < 0) {
			cli_err(c, "--server %s", bks_errmsg(&e, r));
			goto wipe;
		}
		o.host = host;
	}
	if (!cf->name[0] || !cf->secret[0]) {
		if (cf->source[0])
			cli_err(c, "%s has no client name and secret (keys name and secret)", cf->source);
		else
			cli_err(c, "no client configuration: %s does not exist; give one with --client "
			        "FILE or $%s", CLIENT_CONF_DEFAULT, CLIENT_CONF_ENV);
		goto wipe;
	}
	if ((r = ncl_connect(&o, &n, &e)) < 0)
		cli_err(c, "%s", bks_errmsg(&e, r));
wipe:
	client_conf_wipe(cf);
	free(cf);
	return n;
}

static int norm(cli_ctx *c, const char *in, char *out, size_t cap)
{
	bks_err e = {0};
	int r = ncl_path_norm(in, out, cap, &e);
	if (r < 0)
		cli_err(c, "%s: %s", in, bks_errmsg(&e, r));
	return r;
}

static const char *base_name(const char *p)
{
	const char *s = strrchr(p, '/');
	return s ? s + 1 : p;
}

static char *fmt_time(int64_t ns, char *out, size_t cap)
{
	time_t t = (time_t)(ns / 1000000000);
	struct tm tm;
	if (!localtime_r(&t, &tm) || !strftime(out, cap, "%Y-%m-%d %H:%M:%S", &tm))
		snprintf(out, cap, "?");
	return out;
}

static double secs_since(uint64_t t0)
{
	return (double)(bks_now_ns() - t0) / 1e9;
}

static char *fmt_rate(double bytes, double s, char *out, size_t cap)
{
	char b[32];
	snprintf(out, cap, "%s/s", bks_fmt_bytes(s > 0 ? (uint64_t)(bytes / s) : 0, b, sizeof(b)));
	return out;
}

/* --- progress --- */

typedef struct xfer {
	cli_ctx *c;
	const char *verb;
	uint64_t t0;
} xfer;

static void on_progress(void *ctx, uint64_t done, uint64_t total)
{
	xfer *x = ctx;
	char line[200], a[32], b[32], rate[40], eta[32];
	if (!cli_progress_due(x->c))
		return;
	double s = secs_since(x->t0), bps = s > 0 ? (double)done / s : 0;
	fmt_rate((double)done, s, rate, sizeof(rate));
	if (total == NCL_TOTAL_UNKNOWN)
		snprintf(line, sizeof(line), "%s %s  %s", x->verb, bks_fmt_bytes(done, a, sizeof(a)),
		         rate);
	else
		snprintf(line, sizeof(line), "%s %s / %s  %3.0f%%  %s  ETA %s", x->verb,
		         bks_fmt_bytes(done, a, sizeof(a)), bks_fmt_bytes(total, b, sizeof(b)),
		         total ? 100.0 * (double)done / (double)total : 100.0, rate,
		         cli_fmt_duration(bps > 0 ? (double)(total - done) / bps : -1, eta,
		                          sizeof(eta)));
	cli_progress_draw(x->c, line);
}

/* --- put --- */

struct put_args {
	uint32_t flags;
	int dedup;
};

static int put_opt(cli_ctx *c, void *ctx, int id, const char *val)
{
	struct put_args *a = ctx;
	if (id == O_OVERWRITE)
		a->flags |= WIRE_PUT_OVERWRITE;
	else if (id == O_PARENTS)
		a->flags |= WIRE_PUT_PARENTS;
	else if (id == O_DEDUP)
		a->dedup = 1;
	return 0;
}

static int put_report(cli_ctx *c, const char *src, const char *dest,
                      const ncl_put_result *res, double s)
{
	const wire_put_ok *k = &res->ok;
	char a[32], b[32], d[32], f[32], rate[40], ratio[40];
	if (c->json) {
		json j;
		json_init(&j, stdout, 1);
		json_obj_begin(&j, NULL);
		json_str(&j, "path", dest);
		json_uint(&j, "id", k->id);
		json_uint(&j, "size", k->size);
		json_uint(&j, "chunks", k->chunks);
		json_uint(&j, "chunks_new", k->chunks_new);
		json_uint(&j, "bytes_new", k->bytes_new);
		json_uint(&j, "bytes_stored", k->bytes_stored);
		json_bool(&j, "source_dedup", res->dedup);
		json_uint(&j, "bytes_sent", res->payload_sent);
		json_uint(&j, "wire_bytes_sent", res->wire_sent);
		json_double(&j, "seconds", s);
		json_obj_end(&j);
		return json_finish(&j) ? CLI_FAIL : CLI_OK;
	}
	if (k->bytes_new)
		snprintf(ratio, sizeof(ratio), "dedup %.2fx", (double)k->size / (double)k->bytes_new);
	else
		snprintf(ratio, sizeof(ratio), "%s", k->size ? "all chunks known" : "empty");
	printf("%s -> %s: %s, %s new, %s stored, %s, sent %s%s, %.1f s, %s\n", src, dest,
	       bks_fmt_bytes(k->size, a, sizeof(a)), bks_fmt_bytes(k->bytes_new, b, sizeof(b)),
	       bks_fmt_bytes(k->bytes_stored, d, sizeof(d)), ratio,
	       bks_fmt_bytes(res->payload_sent, f, sizeof(f)), res->dedup ? " (source dedup)" : "",
	       s, fmt_rate((double)k->size, s, rate, sizeof(rate)));
	return CLI_OK;
}

int cmd_put(cli_ctx *c, int argc, char **argv)
{
	static const cli_opt opts[] = {{"--overwrite", 0, O_OVERWRITE}, {"-f", 0, O_OVERWRITE},
		{"--parents", 0, O_PARENTS}, {"-p", 0, O_PARENTS}, {"--dedup", 0, O_DEDUP},
		COMMON_OPTS, OPTS_END};
	struct put_args pa = {0};
	char dest[WIRE_PATH_MAX + 1], joined[WIRE_PATH_MAX + 2];
	where w = {0};
	bks_err e = {0};
	int npos, r, fd = STDIN_FILENO, rc = CLI_FAIL;

	if ((r = parse(c, argc, argv, opts, &w, put_opt, &pa, 2, 2, &npos)) != 0)
		return r;
	const char *src = argv[0], *d = argv[1];
	size_t dl = strlen(d);
	if (dl && d[dl - 1] == '/') { /* into a directory: keep the source's name */
		if (!strcmp(src, "-"))
			return cli_usage(c, "DEST %s names a directory; with SRC - give the file name", d);
		snprintf(joined, sizeof(joined), "%s%s", d, base_name(src));
		d = joined;
	}
	if (norm(c, d, dest, sizeof(dest)) < 0)
		return CLI_FAIL;
	if (strcmp(src, "-") && (fd = open(src, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0) {
		cli_err(c, "%s: %s", src, strerror(errno));
		return CLI_FAIL;
	}
	struct stat st;
	if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		cli_err(c, "%s is a directory (put copies one file)", src);
		goto close_src;
	}
	ncl *n = connect_to(c, &w);
	if (!n)
		goto close_src;
	xfer x = {c, "put", bks_now_ns()};
	ncl_put_opts po = {.flags = pa.flags, .dedup = pa.dedup, .progress = on_progress,
	                   .ctx = &x};
	ncl_put_result res;
	r = ncl_put(n, fd, dest, &po, &res, &e);
	double s = secs_since(x.t0);
	cli_progress_clear(c);
	if (r < 0) {
		cli_err(c, "%s%s", bks_errmsg(&e, r),
		        r == -EEXIST ? " (--overwrite replaces it)" :
		        r == -ENOENT ? " (--parents creates missing directories)" : "");
	} else {
		if (pa.dedup && !res.dedup)
			cli_err(c, "note: the server does not take source-side dedup; sent everything");
		rc = put_report(c, strcmp(src, "-") ? src : "stdin", dest, &res, s);
	}
	ncl_close(n);
close_src:
	if (fd != STDIN_FILENO)
		close(fd);
	return rc;
}

/* --- get --- */

struct get_args {
	uint64_t offset, length;
};

static int get_opt(cli_ctx *c, void *ctx, int id, const char *val)
{
	struct get_args *a = ctx;
	uint64_t v;
	if (cli_parse_size(val, &v) < 0) {
		cli_usage(c, "%s: not a byte count (\"4096\", \"1M\")", val);
		return -1;
	}
	if (id == O_OFFSET)
		a->offset = v;
	else
		a->length = v;
	return 0;
}

/* The partial file a signal must not leave behind. */
static char partial_path[4096 + 32];

static void on_get_signal(int sig)
{
	if (partial_path[0])
		unlink(partial_path);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* Write into DEST.partial-XXXXXX next to DEST, rename over DEST only when all of it
 * arrived and checked out, so a failed get never leaves a truncated DEST. */
static int get_to_file(cli_ctx *c, ncl *n, const char *src, const char *dest,
                       const wire_attr *a, const struct get_args *ga, xfer *x,
                       ncl_get_result *res)
{
	bks_err e = {0};
	int r;
	if (snprintf(partial_path, sizeof(partial_path), "%s.partial-XXXXXX", dest) >=
	    (int)sizeof(partial_path)) {
		cli_err(c, "%s: name too long", dest);
		return CLI_FAIL;
	}
	struct sigaction sa = {.sa_handler = on_get_signal}, old_int, old_term;
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	int fd = mkostemp(partial_path, O_CLOEXEC);
	if (fd < 0) {
		cli_err(c, "%s: %s", partial_path, strerror(errno));
		partial_path[0] = 0;
		goto restore;
	}
	r = ncl_get(n, src, ga->offset, ga->length, fd, on_progress, x, res, &e);
	cli_progress_clear(c);
	if (r < 0) {
		cli_err(c, "%s", bks_errmsg(&e, r));
	} else {
		int whole = ga->offset == 0 && res->length == res->size;
		struct timespec ts[2] = {{0, UTIME_OMIT},
		                         {a->mtime_ns / 1000000000, a->mtime_ns % 1000000000}};
		if (fchmod(fd, a->mode & 07777) < 0 || (whole && futimens(fd, ts) < 0) ||
		    fsync(fd) < 0)
			r = -errno;
		if (close(fd) < 0 && r == 0)
			r = -errno;
		fd = -1;
		if (r == 0 && rename(partial_path, dest) < 0)
			r = -errno;
		if (r < 0)
			cli_err(c, "%s: %s", dest, strerror(-r));
	}
	if (fd >= 0)
		close(fd);
	if (r < 0)
		unlink(partial_path);
	partial_path[0] = 0;
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	return r < 0 ? CLI_FAIL : CLI_OK;
restore:
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	return CLI_FAIL;
}

int cmd_get(cli_ctx *c, int argc, char **argv)
{
	static const cli_opt opts[] = {{"--offset", 1, O_OFFSET}, {"--length", 1, O_LENGTH},
		COMMON_OPTS, OPTS_END};
	struct get_args ga = {0, WIRE_LEN_ALL};
	char src[WIRE_PATH_MAX + 1], joined[4096];
	where w = {0};
	bks_err e = {0};
	wire_attr a;
	struct stat st;
	int npos, r, rc = CLI_FAIL;

	if ((r = parse(c, argc, argv, opts, &w, get_opt, &ga, 2, 2, &npos)) != 0)
		return r;
	if (ga.length != WIRE_LEN_ALL && ga.offset + ga.length < ga.offset)
		return cli_usage(c, "--offset + --length is beyond 2^64");
	if (norm(c, argv[0], src, sizeof(src)) < 0)
		return CLI_FAIL;
	const char *dest = argv[1];
	int to_stdout = !strcmp(dest, "-");
	if (!to_stdout && stat(dest, &st) == 0 && S_ISDIR(st.st_mode)) {
		if (!strcmp(src, "/"))
			return cli_usage(c, "SRC / is a directory");
		if (snprintf(joined, sizeof(joined), "%s/%s", dest, base_name(src)) >=
		    (int)sizeof(joined))
			return cli_usage(c, "%s: name too long", dest);
		dest = joined;
	}
	ncl *n = connect_to(c, &w);
	if (!n)
		return CLI_FAIL;
	if ((r = ncl_stat(n, src, &a, &e)) < 0) {
		cli_err(c, "%s", bks_errmsg(&e, r));
		goto close_conn;
	}
	if (a.type != WIRE_FT_FILE) {
		cli_err(c, "get %s: is a directory", src);
		goto close_conn;
	}
	if (ga.offset > a.size) {
		cli_err(c, "get %s: --offset %llu is past the end (%llu bytes)", src,
		        (unsigned long long)ga.offset, (unsigned long long)a.size);
		goto close_conn;
	}
	xfer x = {c, "get", bks_now_ns()};
	ncl_get_result res;
	if (to_stdout) {
		signal(SIGPIPE, SIG_IGN); /* a closed pipe is an EPIPE error, not a silent death */
		r = ncl_get(n, src, ga.offset, ga.length, STDOUT_FILENO, on_progress, &x, &res, &e);
		cli_progress_clear(c);
		if (r < 0)
			cli_err(c, "%s", bks_errmsg(&e, r));
		rc = r < 0 ? CLI_FAIL : CLI_OK;
		goto close_conn; /* stdout holds the data: no summary */
	}
	if ((rc = get_to_file(c, n, src, dest, &a, &ga, &x, &res)) != CLI_OK)
		goto close_conn;
	double s = secs_since(x.t0);
	char b1[32], rate[40];
	if (c->json) {
		json j;
		json_init(&j, stdout, 1);
		json_obj_begin(&j, NULL);
		json_str(&j, "path", src);
		json_str(&j, "dest", dest);
		json_uint(&j, "id", res.id);
		json_uint(&j, "size", res.size);
		json_uint(&j, "offset", ga.offset);
		json_uint(&j, "length", res.length);
		json_double(&j, "seconds", s);
		json_obj_end(&j);
		rc = json_finish(&j) ? CLI_FAIL : CLI_OK;
	} else {
		printf("%s -> %s: %s, %.1f s, %s\n", src, dest,
		       bks_fmt_bytes(res.length, b1, sizeof(b1)), s,
		       fmt_rate((double)res.length, s, rate, sizeof(rate)));
	}
close_conn:
	ncl_close(n);
	return rc;
}

/* --- ls --- */

typedef struct ls_state {
	cli_ctx *c;
	int lng;
	json j;
	const char *path;
	int started;                 /* the JSON document is begun (nothing on an early error) */
	ncl_entry *buf;              /* the first entries, until the NAME width is known */
	size_t nbuf;
	int width;                   /* 0 while buffering */
} ls_state;

static void ls_json_begin(ls_state *s)
{
	if (s->started)
		return;
	s->started = 1;
	json_init(&s->j, stdout, 1);
	json_obj_begin(&s->j, NULL);
	json_str(&s->j, "path", s->path);
	json_arr_begin(&s->j, "entries");
}

static void ls_print(ls_state *s, const ncl_entry *ent)
{
	char sz[32], tm[40];
	if (s->c->json) {
		ls_json_begin(s);
		json_obj_begin(&s->j, NULL);
		json_str(&s->j, "name", ent->name);
		json_str(&s->j, "type", ent->type == WIRE_FT_DIR ? "dir" : "file");
		json_uint(&s->j, "size", ent->size);
		json_uint(&s->j, "mode", ent->mode);
		json_int(&s->j, "mtime_ns", ent->mtime_ns);
		json_uint(&s->j, "id", ent->id);
		json_obj_end(&s->j);
	} else if (!s->lng) {
		printf("%s%s\n", ent->name, ent->type == WIRE_FT_DIR ? "/" : "");
	} else {
		if (ent->type == WIRE_FT_DIR)
			snprintf(sz, sizeof(sz), "-");
		else
			bks_fmt_bytes(ent->size, sz, sizeof(sz));
		printf("%-*s  %-4s  %10s  %s\n", s->width, ent->name,
		       ent->type == WIRE_FT_DIR ? "dir" : "file", sz, fmt_time(ent->mtime_ns, tm,
		                                                               sizeof(tm)));
	}
}

static void ls_flush(ls_state *s)
{
	s->width = 4;
	for (size_t i = 0; i < s->nbuf; i++)
		s->width = BKS_MAX(s->width, (int)strlen(s->buf[i].name));
	s->width = BKS_MIN(s->width, 60);
	if (s->lng && !s->c->json)
		printf("%-*s  %-4s  %10s  %s\n", s->width, "NAME", "TYPE", "SIZE", "MTIME");
	for (size_t i = 0; i < s->nbuf; i++)
		ls_print(s, &s->buf[i]);
	s->nbuf = 0;
}

static int ls_entry(void *ctx, const ncl_entry *ent)
{
	ls_state *s = ctx;
	if (s->width == 0 && s->buf) {
		s->buf[s->nbuf++] = *ent;
		if (s->nbuf == LS_WIDTH_SAMPLE)
			ls_flush(s);
		return 0;
	}
	ls_print(s, ent);
	return 0;
}

int cmd_ls(cli_ctx *c, int argc, char **argv)
{
	static const cli_opt opts[] = {{"-l", 0, O_LONG}, {"--long", 0, O_LONG}, COMMON_OPTS,
		OPTS_END};
	char path[WIRE_PATH_MAX + 1];
	where w = {0};
	bks_err e = {0};
	ls_state s = {.c = c};
	cli_args p;
	const char *val;
	int id, r;

	cli_args_init(&p, argc, argv);
	while ((id = cli_next_opt(c, &p, opts, &val)) > 0) {
		if (id == O_CLIENT)
			w.client = val;
		else if (id == O_SERVER)
			w.server = val;
		else
			s.lng = 1;
	}
	if (id < 0)
		return CLI_USAGE;
	if (p.npos > 1)
		return cli_usage(c, "unexpected operand '%s'", argv[1]);
	if (norm(c, p.npos ? argv[0] : "/", path, sizeof(path)) < 0)
		return CLI_FAIL;
	ncl *n = connect_to(c, &w);
	if (!n)
		return CLI_FAIL;
	if (s.lng && !c->json && !(s.buf = malloc(LS_WIDTH_SAMPLE * sizeof(*s.buf))))
		s.width = 60; /* no memory to look ahead: a wide column */
	s.path = path;
	uint64_t count = 0;
	r = ncl_list(n, path, ls_entry, &s, &count, &e);
	if (r == -ENOTDIR) { /* a file: show it alone, as ls does */
		wire_attr a;
		bks_err se = {0};
		if (ncl_stat(n, path, &a, &se) == 0 && a.type == WIRE_FT_FILE) {
			ncl_entry ent = {.type = a.type, .mode = a.mode, .size = a.size, .id = a.id,
			                 .mtime_ns = a.mtime_ns};
			snprintf(ent.name, sizeof(ent.name), "%.*s", WIRE_NAME_MAX, base_name(path));
			r = ls_entry(&s, &ent);
			count = 1;
		}
	}
	if (r == 0 && s.width == 0 && s.lng && !c->json)
		ls_flush(&s);
	free(s.buf);
	ncl_close(n);
	if (r < 0) {
		cli_err(c, "%s", bks_errmsg(&e, r));
		return CLI_FAIL;
	}
	if (c->json) {
		ls_json_begin(&s);
		json_arr_end(&s.j);
		json_uint(&s.j, "count", count);
		json_obj_end(&s.j);
		return json_finish(&s.j) ? CLI_FAIL : CLI_OK;
	}
	return CLI_OK;
}

/* --- stat --- */

int cmd_stat(cli_ctx *c, int argc, char **argv)
{
	static const cli_opt opts[] = {COMMON_OPTS, OPTS_END};
	char path[WIRE_PATH_MAX + 1], t1[40], t2[40], b[32];
	where w = {0};
	bks_err e = {0};
	wire_attr a;
	int npos, r;

	if ((r = parse(c, argc, argv, opts, &w, no_opt, NULL, 1, 1, &npos)) != 0)
		return r;
	if (norm(c, argv[0], path, sizeof(path)) < 0)
		return CLI_FAIL;
	ncl *n = connect_to(c, &w);
	if (!n)
		return CLI_FAIL;
	r = ncl_stat(n, path, &a, &e);
	ncl_close(n);
	if (r < 0) {
		cli_err(c, "%s", bks_errmsg(&e, r));
		return CLI_FAIL;
	}
	const char *type = a.type == WIRE_FT_DIR ? "dir" : "file";
	if (c->json) {
		json j;
		json_init(&j, stdout, 1);
		json_obj_begin(&j, NULL);
		json_str(&j, "path", path);
		json_str(&j, "type", type);
		json_uint(&j, "size", a.size);
		json_uint(&j, "mode", a.mode);
		json_uint(&j, "uid", a.uid);
		json_uint(&j, "gid", a.gid);
		json_uint(&j, "nlink", a.nlink);
		json_int(&j, "mtime_ns", a.mtime_ns);
		json_int(&j, "ctime_ns", a.ctime_ns);
		json_uint(&j, "id", a.id);
		json_obj_end(&j);
		return json_finish(&j) ? CLI_FAIL : CLI_OK;
	}
	printf("path:  %s\ntype:  %s\n", path, type);
	if (a.type == WIRE_FT_DIR)
		printf("size:  %llu entries\n", (unsigned long long)a.size);
	else
		printf("size:  %llu bytes (%s)\n", (unsigned long long)a.size,
		       bks_fmt_bytes(a.size, b, sizeof(b)));
	printf("mode:  %04o\nowner: %u:%u\nlinks: %u\nmtime: %s\nctime: %s\nid:    %llu\n",
	       a.mode, a.uid, a.gid, a.nlink, fmt_time(a.mtime_ns, t1, sizeof(t1)),
	       fmt_time(a.ctime_ns, t2, sizeof(t2)), (unsigned long long)a.id);
	return CLI_OK;
}

/* --- rm, mkdir, mv: one change and a one-line answer --- */

static int change_done(cli_ctx *c, int r, const bks_err *e, const char *verb,
                       const char *path)
{
	if (r < 0) {
		cli_err(c, "%s%s", bks_errmsg(e, r),
		        r == -ENOTEMPTY ? " (-r removes it with everything in it)" : "");
		return CLI_FAIL;
	}
	if (c->json) {
		json j;
		json_init(&j, stdout, 1);
		json_obj_begin(&j, NULL);
		json_str(&j, verb, path);
		json_obj_end(&j);
		return json_finish(&j) ? CLI_FAIL : CLI_OK;
	}
	printf("%s %s\n", verb, path);
	return CLI_OK;
}

struct flag_args {
	int flag;
	uint32_t mode;
};

static int flag_opt(cli_ctx *c, void *ctx, int id, const char *val)
{
	struct flag_args *a = ctx;
	if (id != O_MODE) {
		a->flag = 1;
		return 0;
	}
	char *end;
	unsigned long m = strtoul(val, &end, 8);
	if (!*val || *end || m > 07777) {
		cli_usage(c, "--mode %s: octal permission bits, 0000..7777", val);
		return -1;
	}
	a->mode = (uint32_t)m;
	return 0;
}

/* rm and mkdir: one path, flags (-r / -p, --mode), one request. */
static int one_path_change(cli_ctx *c, int argc, char **argv, const cli_opt *opts,
                           struct flag_args *fa, int mkdir)
{
	char path[WIRE_PATH_MAX + 1];
	where w = {0};
	bks_err e = {0};
	int npos, r;
	if ((r = parse(c, argc, argv, opts, &w, flag_opt, fa, 1, 1, &npos)) != 0)
		return r;
	if (norm(c, argv[0], path, sizeof(path)) < 0)
		return CLI_FAIL;
	ncl *n = connect_to(c, &w);
	if (!n)
		return CLI_FAIL;
	r = mkdir ? ncl_mkdir(n, path, fa->mode, fa->flag, &e) : ncl_delete(n, path, fa->flag, &e);
	ncl_close(n);
	return change_done(c, r, &e, mkdir ? "created" : "removed", path);
}

int cmd_rm(cli_ctx *c, int argc, char **argv)
{
	static const cli_opt opts[] = {{"-r", 0, O_RECURSIVE}, {"--recursive", 0, O_RECURSIVE},
		COMMON_OPTS, OPTS_END};
	struct flag_args fa = {0};
	return one_path_change(c, argc, argv, opts, &fa, 0);
}

int cmd_mkdir(cli_ctx *c, int argc, char **argv)
{
	static const cli_opt opts[] = {{"-p", 0, O_PARENTS}, {"--parents", 0, O_PARENTS},
		{"--mode", 1, O_MODE}, COMMON_OPTS, OPTS_END};
	struct flag_args fa = {0, 0755};
	return one_path_change(c, argc, argv, opts, &fa, 1);
}

int cmd_mv(cli_ctx *c, int argc, char **argv)
{
	static const cli_opt opts[] = {{"--no-replace", 0, O_NOREPLACE}, COMMON_OPTS, OPTS_END};
	struct flag_args fa = {0};
	char from[WIRE_PATH_MAX + 1], to[WIRE_PATH_MAX + 1];
	where w = {0};
	bks_err e = {0};
	int npos, r;
	if ((r = parse(c, argc, argv, opts, &w, flag_opt, &fa, 2, 2, &npos)) != 0)
		return r;
	if (norm(c, argv[0], from, sizeof(from)) < 0 || norm(c, argv[1], to, sizeof(to)) < 0)
		return CLI_FAIL;
	ncl *n = connect_to(c, &w);
	if (!n)
		return CLI_FAIL;
	r = ncl_rename(n, from, to, fa.flag, &e);
	ncl_close(n);
	return change_done(c, r, &e, "renamed", from);
}

/* --- ping --- */

int cmd_ping(cli_ctx *c, int argc, char **argv)
{
	static const cli_opt opts[] = {COMMON_OPTS, OPTS_END};
	where w = {0};
	bks_err e = {0};
	uint64_t rtt = 0;
	int npos, r;
	if ((r = parse(c, argc, argv, opts, &w, no_opt, NULL, 0, 0, &npos)) != 0)
		return r;
	uint64_t t0 = bks_now_ns();
	ncl *n = connect_to(c, &w);
	if (!n)
		return CLI_FAIL;
	double login_ms = (double)(bks_now_ns() - t0) / 1e6;
	r = ncl_ping(n, &rtt, &e);
	if (r < 0) {
		cli_err(c, "%s", bks_errmsg(&e, r));
		ncl_close(n);
		return CLI_FAIL;
	}
	const wire_auth_ok *k = ncl_server(n);
	if (c->json) {
		json j;
		json_init(&j, stdout, 1);
		json_obj_begin(&j, NULL);
		json_str(&j, "server", ncl_peer(n));
		json_str(&j, "name", ncl_server_name(n));
		json_double(&j, "login_ms", login_ms);
		json_double(&j, "rtt_ms", (double)rtt / 1e6);
		json_bool(&j, "source_dedup", !!(k->caps & WIRE_CAP_SRC_DEDUP));
		json_uint(&j, "max_payload", k->max_payload);
		json_uint(&j, "chunk_min", k->cdc_min);
		json_uint(&j, "chunk_avg", k->cdc_avg);
		json_uint(&j, "chunk_max", k->cdc_max);
		json_uint(&j, "fp_max", k->fp_max);
		json_obj_end(&j);
		r = json_finish(&j);
	} else {
		printf("pong from %s (%s): %.2f ms; login %.2f ms\n", ncl_peer(n), ncl_server_name(n),
		       (double)rtt / 1e6, login_ms);
	}
	ncl_close(n);
	return r < 0 ? CLI_FAIL : CLI_OK;
}
