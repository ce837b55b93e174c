/* daemon/api.c: see api.h and docs/api.md. */
#include <config.h>

#include "daemon/api_int.h"

#include <errno.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/json.h"
#include "common/jsonp.h"
#include "daemon/cfg_rewrite.h"
#include "daemon/log.h"
#include "daemon/repl.h"
#include "daemon/status.h"
#include "storage/arr_json.h"
#include "storage/devprobe.h"

void reply_begin(reply *rp, int status)
{
	rp->status = status;
	rp->buf = NULL;
	rp->len = 0;
	rp->f = open_memstream(&rp->buf, &rp->len);
	json_init(&rp->j, rp->f, 1);
}

static const char *code_name(int err)
{
	switch (-err) {
	case ENOENT: return "ENOENT";
	case EEXIST: return "EEXIST";
	case EBUSY: return "EBUSY";
	case EINVAL: return "EINVAL";
	case ENOSPC: return "ENOSPC";
	case EALREADY: return "EALREADY";
	case ENOMEM: return "ENOMEM";
	case EIO: return "EIO";
	case EROFS: return "EROFS";
	case ENOTSUP: return "ENOTSUP";
	case EPERM: return "EPERM";
	case EACCES: return "EACCES";
	case ENOTEMPTY: return "ENOTEMPTY";
	default: return "EIO";
	}
}

static int http_status_of(int err)
{
	switch (-err) {
	case ENOENT: return MHD_HTTP_NOT_FOUND;
	case EINVAL: return MHD_HTTP_BAD_REQUEST;
	case EEXIST: case EBUSY: case ENOSPC: case ENOTSUP: case EPERM: case EALREADY:
		return MHD_HTTP_CONFLICT;
	default: return MHD_HTTP_INTERNAL_SERVER_ERROR;
	}
}

void reply_error(reply *rp, int status, int err, const char *fmt, ...)
{
	char msg[600];
	va_list va;
	va_start(va, fmt);
	vsnprintf(msg, sizeof(msg), fmt, va);
	va_end(va);
	reply_begin(rp, status ? status : http_status_of(err));
	json_obj_begin(&rp->j, NULL);
	json_str(&rp->j, "error", msg);
	json_str(&rp->j, "code", code_name(err));
	json_obj_end(&rp->j);
}

void reply_ok(reply *rp, const char *fmt, ...)
{
	char msg[600];
	va_list va;
	va_start(va, fmt);
	vsnprintf(msg, sizeof(msg), fmt, va);
	va_end(va);
	reply_begin(rp, MHD_HTTP_OK);
	json_obj_begin(&rp->j, NULL);
	json_bool(&rp->j, "ok", 1);
	json_str(&rp->j, "message", msg);
	json_obj_end(&rp->j);
}

enum MHD_Result reply_send(struct MHD_Connection *conn, reply *rp, const char *allow)
{
	if (rp->f) {
		json_finish(&rp->j);
		fclose(rp->f);
		rp->f = NULL;
	}
	struct MHD_Response *res = MHD_create_response_from_buffer(rp->len, rp->buf,
	                                                           MHD_RESPMEM_MUST_FREE);
	if (!res) {
		free(rp->buf);
		return MHD_NO;
	}
	MHD_add_response_header(res, "Content-Type", "application/json");
	MHD_add_response_header(res, "Cache-Control", "no-store");
	MHD_add_response_header(res, "X-Content-Type-Options", "nosniff");
	if (allow)
		MHD_add_response_header(res, "Allow", allow);
	if (rp->web)
		web_security_headers(res);
	if (rp->cookie[0])
		MHD_add_response_header(res, "Set-Cookie", rp->cookie);
	if (rp->retry_after)
		MHD_add_response_header(res, "Retry-After", rp->retry_after_s);
	enum MHD_Result r = MHD_queue_response(conn, (unsigned)rp->status, res);
	MHD_destroy_response(res);
	return r;
}

/* --- reading endpoints --- */

static void get_array(api *a, reply *rp, int disks_only)
{
	arr_status *st = malloc(sizeof(*st));
	if (!st) {
		reply_error(rp, 0, -ENOMEM, "out of memory");
		return;
	}
	arr_get_status(a->ap->a, st);
	reply_begin(rp, MHD_HTTP_OK);
	if (disks_only) {
		json_obj_begin(&rp->j, NULL);
		arr_disks_json(&rp->j, "disks", st);
		json_obj_end(&rp->j);
	} else {
		arr_status_json(&rp->j, NULL, st);
	}
	free(st);
}

static void get_jobs(api *a, reply *rp)
{
	arr_status *st = malloc(sizeof(*st));
	if (!st) {
		reply_error(rp, 0, -ENOMEM, "out of memory");
		return;
	}
	arr_get_status(a->ap->a, st);
	reply_begin(rp, MHD_HTTP_OK);
	json_obj_begin(&rp->j, NULL);
	status_jobs_json(a->ap, &rp->j, st);
	json_obj_end(&rp->j);
	free(st);
}

static void get_events(api *a, struct MHD_Connection *conn, reply *rp)
{
	const char *since_s = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "since");
	uint64_t since = since_s ? strtoull(since_s, NULL, 10) : 0, next;
	appl_event *ev = malloc(sizeof(*ev) * APPL_EVENTS);
	if (!ev) {
		reply_error(rp, 0, -ENOMEM, "out of memory");
		return;
	}
	int n = appl_events(a->ap, since, ev, APPL_EVENTS, &next);
	static const char *const lv[] = {"error", "warn", "info", "debug"};
	reply_begin(rp, MHD_HTTP_OK);
	json_obj_begin(&rp->j, NULL);
	json_arr_begin(&rp->j, "events");
	for (int i = 0; i < n; i++) {
		json_obj_begin(&rp->j, NULL);
		json_uint(&rp->j, "seq", ev[i].seq);
		json_uint(&rp->j, "time_ns", ev[i].time_ns);
		json_str(&rp->j, "level", lv[ev[i].level & 3]);
		json_str(&rp->j, "msg", ev[i].msg);
		json_obj_end(&rp->j);
	}
	json_arr_end(&rp->j);
	json_uint(&rp->j, "next", next);
	json_obj_end(&rp->j);
	free(ev);
}

struct files_ctx {
	ns *n;
	json *j;
	int count;
};

static int files_cb(void *ctx, const ns_dirent *d)
{
	struct files_ctx *fc = ctx;
	ns_attr a;
	if (fc->count >= 10000)
		return 1;
	if (ns_getattr(fc->n, d->id, &a) < 0)
		return 0;
	json_obj_begin(fc->j, NULL);
	json_str(fc->j, "name", d->name);
	json_str(fc->j, "type", a.type == NS_DIR ? "dir" : "file");
	json_uint(fc->j, "size", a.size);
	json_uint(fc->j, "mode", a.mode);
	json_int(fc->j, "mtime_ns", a.mtime_ns);
	json_uint(fc->j, "id", a.id);
	json_obj_end(fc->j);
	fc->count++;
	return 0;
}

static void get_files(api *a, struct MHD_Connection *conn, reply *rp, int stat_only)
{
	const char *path = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "path");
	ns_attr at;
	if (!path)
		path = "/";
	appl_lock(a->ap);
	int r = ns_resolve(a->ap->n, path, &at);
	if (r < 0) {
		appl_unlock(a->ap);
		reply_error(rp, 0, r, "%s: %s", path, r == -ENOENT ? "no such file or directory"
		                                                   : strerror(-r));
		return;
	}
	reply_begin(rp, MHD_HTTP_OK);
	json_obj_begin(&rp->j, NULL);
	json_str(&rp->j, "path", path);
	if (stat_only || at.type != NS_DIR) {
		json_str(&rp->j, "type", at.type == NS_DIR ? "dir" : "file");
		json_uint(&rp->j, "size", at.size);
		json_uint(&rp->j, "mode", at.mode);
		json_uint(&rp->j, "uid", at.uid);
		json_uint(&rp->j, "gid", at.gid);
		json_uint(&rp->j, "nlink", at.nlink);
		json_int(&rp->j, "mtime_ns", at.mtime_ns);
		json_int(&rp->j, "ctime_ns", at.ctime_ns);
		json_uint(&rp->j, "id", at.id);
		json_uint(&rp->j, "gen", at.gen);
	} else {
		struct files_ctx fc = {a->ap->n, &rp->j, 0};
		json_arr_begin(&rp->j, "entries");
		r = ns_readdir(a->ap->n, at.id, NULL, files_cb, &fc);
		json_arr_end(&rp->j);
		json_bool(&rp->j, "truncated", r == 1);
	}
	json_obj_end(&rp->j);
	appl_unlock(a->ap);
}

/* --- actions --- */

/* A refusal that the administrator may override: 409 with "needs_force" and what was
 * found, so the dashboard can name it in its confirmation dialog. */
static void reply_needs_force(reply *rp, const char *path, const char *op,
                              const char *found)
{
	char msg[600];
	snprintf(msg, sizeof(msg), "disk %s holds %s; %s would overwrite it. If its content "
	         "is not needed, repeat with force (bkstorctl disk %s --force)", path, found,
	         !strcmp(op, "replace") ? "the replace" : "adding it as a spare", op);
	reply_begin(rp, MHD_HTTP_CONFLICT);
	json_obj_begin(&rp->j, NULL);
	json_str(&rp->j, "error", msg);
	json_str(&rp->j, "code", "EBUSY");
	json_bool(&rp->j, "needs_force", 1);
	json_str(&rp->j, "found", found);
	json_obj_end(&rp->j);
}

/* Open the disk an add-spare or a replace is to write (0 with *d), or answer in rp:
 * never a mounted device or the system disk (force or not), and a device with
 * content (a file system, a partition table, any non-zero byte in the first MiB)
 * only with force: the array writes its label area there at once. */
static int open_new_disk(api *a, const char *op, const char *path, int force, disk **d,
                         reply *rp)
{
	char what[300];
	bks_err e = {0};
	int r;
	*d = NULL;
	if (!path || path[0] != '/') {
		reply_error(rp, MHD_HTTP_BAD_REQUEST, -EINVAL, "field '%s' must be an absolute "
		            "path", !strcmp(op, "replace") ? "new" : "path");
		return -EINVAL;
	}
	if ((r = devprobe_in_use(path, what, sizeof(what))) != 0) {
		if (r > 0)
			reply_error(rp, MHD_HTTP_CONFLICT, -EBUSY, "disk %s: %s; refusing to use it "
			            "(force does not override this)", path, what);
		else
			reply_error(rp, 0, r, "disk %s: %s", path, strerror(-r));
		return r > 0 ? -EBUSY : r;
	}
	if ((r = disk_open_on(a->ap->eng, path, d, &e)) < 0) {
		reply_error(rp, 0, r, "%s", bks_errmsg(&e, r));
		return r;
	}
	if ((r = devprobe_content(*d, what, sizeof(what))) < 0)
		reply_error(rp, 0, r, "disk %s: cannot read its first MiB: %s", path, strerror(-r));
	else if (r > 0 && !force)
		reply_needs_force(rp, path, op, what);
	else if (r > 0)
		LOG_W("disk %s: %s, overwritten by %s with force", path, what, op);
	if (r < 0 || (r > 0 && !force)) {
		disk_close(*d);
		*d = NULL;
		return r < 0 ? r : -EBUSY;
	}
	return 0;
}

/* The configuration names the disks bkstord opens at start: after a replace or an
 * add-spare it must name the new ones too (and after a remove, no longer the removed
 * one), or a restart would not find them. Every disk the array has a path for is
 * kept: the array's labels, not the order, decide each one's role at import. */
static void remember_disks(api *a)
{
	arr_status *st = malloc(sizeof(*st));
	const char *members[ARR_MAX_DISKS * 2], *spares[ARR_MAX_SPARES];
	int nm = 0, nsp = 0;
	bks_err e = {0};
	if (!st)
		return;
	arr_get_status(a->ap->a, st);
	for (int i = 0; i < st->ndisks; i++) {
		const arr_disk_status *d = &st->disks[i];
		if (!d->path[0])
			continue;
		if (d->role == ARR_ROLE_SPARE && nsp < ARR_MAX_SPARES)
			spares[nsp++] = d->path;
		else if (d->role != ARR_ROLE_SPARE && nm < CFG_MAX_DISKS)
			members[nm++] = d->path;
	}
	int r = cfg_rewrite(a->ap->cfg.source, "array", "disks", members, nm, &e);
	if (r == 0)
		r = cfg_rewrite(a->ap->cfg.source, "array", "spares", spares, nsp, &e);
	if (r < 0)
		appl_event_add(a->ap, CFG_LOG_ERROR, "could not record the array's disks in the "
		               "configuration: %s; add them to [array] by hand before a restart",
		               bks_errmsg(&e, r));
	free(st);
}

static void post_disk_op(api *a, const char *op, const jsonp_val *body, reply *rp)
{
	const char *name = jsonp_get_str(body, "disk", NULL);
	const char *path = jsonp_get_str(body, "path", NULL);
	const char *nw = jsonp_get_str(body, "new", NULL);
	int force = 0, on = 1, r;
	bks_err e = {0};
	disk *d = NULL;
	jsonp_get_bool(body, "force", &force);
	jsonp_get_bool(body, "on", &on);
	if (strcmp(op, "add-spare") && !name) {
		reply_error(rp, MHD_HTTP_BAD_REQUEST, -EINVAL, "field 'disk' must be a string "
		            "(a member's path or uuid)");
		return;
	}
	if (!strcmp(op, "fail"))
		r = arr_fail(a->ap->a, name, &e);
	else if (!strcmp(op, "remove"))
		r = arr_remove(a->ap->a, name, &e);
	else if (!strcmp(op, "offline"))
		r = arr_offline(a->ap->a, name, &e);
	else if (!strcmp(op, "online"))
		r = arr_online(a->ap->a, name, &e);
	else if (!strcmp(op, "add-spare")) {
		if (open_new_disk(a, op, path, force, &d, rp) < 0)
			return; /* answered */
		if ((r = arr_add_spare(a->ap->a, d, force, &e)) < 0)
			disk_close(d);
		name = path;
	} else if (!strcmp(op, "replace")) {
		if (open_new_disk(a, op, nw, force, &d, rp) < 0)
			return;
		if ((r = arr_replace(a->ap->a, name, d, force, &e)) < 0)
			disk_close(d);
	} else if (!strcmp(op, "locate")) {
		(void)on;
		r = bks_fail(&e, -ENOTSUP, "disk %s: locate is not supported for this disk (no "
		             "enclosure LED found)", name);
	} else {
		reply_error(rp, MHD_HTTP_NOT_FOUND, -ENOENT, "no such disk action '%s'", op);
		return;
	}
	if (r < 0) {
		reply_error(rp, 0, r, "%s", bks_errmsg(&e, r));
		return;
	}
	if (!strcmp(op, "replace") || !strcmp(op, "add-spare") || !strcmp(op, "remove"))
		remember_disks(a);
	char esc[LOG_ESC_LEN]; /* name comes from the request (add-spare: any path) */
	appl_event_add(a->ap, CFG_LOG_WARN, "disk %s: %s by the administrator",
	               log_escs(esc, sizeof(esc), name), op);
	appl_kick(a->ap);
	if (!strcmp(op, "fail") || !strcmp(op, "replace") || !strcmp(op, "online"))
		reply_ok(rp, "disk %s: %s accepted; the copy runs in the background (see "
		         "bkstorctl status)", name, op);
	else
		reply_ok(rp, "disk %s: %s done", name, op);
}

/* One request, as a route's handler sees it. */
typedef struct call {
	api *a;
	struct MHD_Connection *conn;
	const char *url, *method;
	const char *rest;         /* a prefix route: the URL after the prefix */
	struct req *rq;
	const jsonp_val *body;    /* a POST route: the JSON object sent */
	reply *rp;
	const char **allow;       /* the Allow header of a 405 */
} call;

static void post_scrub(const call *c)
{
	bks_err e = {0};
	int r;
	const char *action = jsonp_get_str(c->body, "action", NULL);
	arr *ar = c->a->ap->a;
	if (!action) {
		reply_error(c->rp, MHD_HTTP_BAD_REQUEST, -EINVAL, "field 'action' must be one of "
		            "start, stop, pause, resume");
		return;
	}
	if (!strcmp(action, "start"))
		r = arr_scrub_start(ar, &e);
	else if (!strcmp(action, "stop"))
		r = arr_scrub_stop(ar, &e);
	else if (!strcmp(action, "pause"))
		r = arr_scrub_pause(ar, &e);
	else if (!strcmp(action, "resume"))
		r = arr_scrub_resume(ar, &e);
	else {
		reply_error(c->rp, MHD_HTTP_BAD_REQUEST, -EINVAL, "unknown scrub action '%s'",
		            action);
		return;
	}
	if (r < 0) {
		reply_error(c->rp, MHD_HTTP_CONFLICT, -EBUSY, "%s", bks_errmsg(&e, r));
		return;
	}
	appl_event_add(c->a->ap, CFG_LOG_INFO, "scrub %s by the administrator", action);
	appl_kick(c->a->ap);
	reply_ok(c->rp, "scrub %s", action);
}

static void post_gc(const call *c)
{
	bks_err e = {0};
	int r;
	double min_live = c->a->ap->cfg.gc_min_live;
	if (jsonp_get(c->body, "min_live") &&
	    (jsonp_get_double(c->body, "min_live", &min_live) < 0 || min_live < 0 ||
	     min_live > 1)) {
		reply_error(c->rp, MHD_HTTP_BAD_REQUEST, -EINVAL, "field 'min_live' must be a "
		            "number from 0 to 1");
		return;
	}
	if ((r = appl_gc_start(c->a->ap, min_live, &e)) < 0)
		reply_error(c->rp, 0, r, "%s", bks_errmsg(&e, r));
	else
		reply_ok(c->rp, "garbage collection started");
}

static void post_verify(const call *c)
{
	bks_err e = {0};
	int r = appl_verify_start(c->a->ap, &e);
	if (r < 0)
		reply_error(c->rp, 0, r, "%s", bks_errmsg(&e, r));
	else
		reply_ok(c->rp, "verify started");
}

static void post_commit(const call *c)
{
	bks_err e = {0};
	int r = appl_commit(c->a->ap, &e);
	if (r < 0)
		reply_error(c->rp, 0, r, "%s", bks_errmsg(&e, r));
	else
		reply_ok(c->rp, "committed");
}

/* Gather a request's body across calls; 1 while more is coming (MHD_YES to say). */
int api_body(struct req **rqp, void **con_cls, const char *upload, size_t *upload_size)
{
	struct req *rq = *con_cls;
	if (!rq) {
		if (!(rq = calloc(1, sizeof(*rq))))
			return -ENOMEM;
		*con_cls = rq;
		*rqp = rq;
		return 1;
	}
	*rqp = rq;
	if (*upload_size) {
		if (rq->len + *upload_size > (rq->cap ? rq->cap : API_BODY_MAX)) {
			if (rq->abort_over)
				return -E2BIG;
			rq->too_big = 1;
		} else {
			char *nb = realloc(rq->body, rq->len + *upload_size + 1);
			if (!nb)
				return -ENOMEM;
			rq->body = nb;
			memcpy(rq->body + rq->len, upload, *upload_size);
			rq->len += *upload_size;
		}
		*upload_size = 0;
		return 1;
	}
	return 0;
}

/* The body as a JSON object: 0 with *d (free it), or an error reply made in rp. */
int api_parse_body(struct req *rq, reply *rp, jsonp **d)
{
	bks_err e = {0};
	size_t off = 0;
	*d = NULL;
	if (rq->too_big) {
		reply_error(rp, MHD_HTTP_CONTENT_TOO_LARGE, -EINVAL, "request body larger than %zu "
		            "bytes", rq->cap ? rq->cap : (size_t)API_BODY_MAX);
		return -EINVAL;
	}
	int r = jsonp_parse(rq->len ? rq->body : "{}", rq->len ? rq->len : 2, NULL, d, &off, &e);
	if (r < 0) {
		reply_error(rp, MHD_HTTP_BAD_REQUEST, -EINVAL, "malformed JSON: %s", bks_errmsg(&e, r));
		return r;
	}
	if (jsonp_type(jsonp_root(*d)) != JSONP_OBJECT) {
		reply_error(rp, MHD_HTTP_BAD_REQUEST, -EINVAL, "the body must be a JSON object");
		jsonp_free(*d);
		*d = NULL;
		return -EINVAL;
	}
	return 0;
}

/* A cached document as the reply: called with mu (the cache's lock) held, since
 * the next request may replace text; copies it out and lets mu go before the reply
 * is made (NULL text: the cache could not be built, out of memory). */
static void reply_cached(reply *rp, pthread_mutex_t *mu, const char *text, size_t len)
{
	char *copy = text ? malloc(len) : NULL;
	if (copy)
		memcpy(copy, text, len);
	pthread_mutex_unlock(mu);
	if (!copy) {
		reply_error(rp, 0, -ENOMEM, "out of memory");
		return;
	}
	rp->status = MHD_HTTP_OK;
	rp->buf = copy;
	rp->len = len;
	rp->f = NULL;
}

static void get_status(api *a, reply *rp)
{
	pthread_mutex_lock(&a->stmu);
	uint64_t now = bks_now_ns();
	if (!a->st_text || now - a->st_ns > STATUS_CACHE_NS) {
		size_t len = 0;
		char *t = status_text(a->ap, a->ns ? native_connections(a->ns) : 0, &len);
		if (t) {
			free(a->st_text);
			a->st_text = t;
			a->st_len = len;
			a->st_ns = now;
		}
	}
	reply_cached(rp, &a->stmu, a->st_text, a->st_len);
}

/* The throughput document (compact: 7200 numbers), *sec the history's second. */
static char *throughput_text(api *a, size_t *len, uint64_t *sec)
{
	char *buf = NULL;
	uint64_t *in = malloc(sizeof(uint64_t) * APPL_HISTORY * 2);
	FILE *f = in ? open_memstream(&buf, len) : NULL;
	json j;
	if (!f) {
		free(in);
		return NULL;
	}
	uint64_t *out = in + APPL_HISTORY;
	int n = appl_history(a->ap, in, out, APPL_HISTORY, sec);
	json_init(&j, f, 0);
	json_obj_begin(&j, NULL);
	json_int(&j, "interval_s", 1);
	json_arr_begin(&j, "ingest_bps");
	for (int i = 0; i < n; i++)
		json_uint(&j, NULL, in[i]);
	json_arr_end(&j);
	json_arr_begin(&j, "restore_bps");
	for (int i = 0; i < n; i++)
		json_uint(&j, NULL, out[i]);
	json_arr_end(&j);
	json_obj_end(&j);
	int r = json_finish(&j);
	fclose(f);
	free(in);
	if (r < 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* The samples change once a second: every request in that second gets the same
 * bytes, built once (ten dashboards polling cost one build a second at most). */
static void get_throughput(api *a, reply *rp)
{
	pthread_mutex_lock(&a->tpmu);
	if (!a->tp_text || a->tp_sec != appl_history_sec(a->ap)) {
		size_t len = 0;
		uint64_t sec = 0;
		char *t = throughput_text(a, &len, &sec);
		if (t) {
			free(a->tp_text);
			a->tp_text = t;
			a->tp_len = len;
			a->tp_sec = sec;
		}
	}
	reply_cached(rp, &a->tpmu, a->tp_text, a->tp_len);
}

/* POST /api/v1/repl/token, /pair, /set, /promote and /reseed (Unix socket only: the
 * token is a secret, pairing and reseeding decide whom this appliance trusts,
 * promotion whom it takes files from, and set rewrites the configuration file).
 * Pairing and reseeding connect to the twin from this thread (bounded by the connect
 * and handshake timeouts). */
static void post_repl(const call *c)
{
	bks_err e = {0};
	reply *rp = c->rp;
	repl *rl = c->a->ap->repl;
	reply_begin(rp, MHD_HTTP_OK);
	json_obj_begin(&rp->j, NULL);
	int r;
	if (!strcmp(c->url, "/api/v1/repl/token")) {
		r = repl_api_token(rl, &rp->j, &e);
	} else if (!strcmp(c->url, "/api/v1/repl/set")) {
		const char *key = jsonp_get_str(c->body, "key", NULL);
		const char *val = jsonp_get_str(c->body, "value", NULL);
		r = key && val ? repl_api_set(rl, key, val, &rp->j, &e)
		               : bks_fail(&e, -EINVAL, "fields 'key' and 'value' (strings) are "
		                          "required");
	} else if (!strcmp(c->url, "/api/v1/repl/promote")) {
		r = repl_api_promote(rl, &rp->j, &e);
	} else if (!strcmp(c->url, "/api/v1/repl/reseed")) {
		const jsonp_val *b = c->body;
		const char *addr = jsonp_get_str(b, "address", NULL);
		int force = 0;
		if (jsonp_get(b, "force"))
			jsonp_get_bool(b, "force", &force);
		r = addr ? repl_api_reseed(rl, addr, jsonp_get_str(b, "token", NULL),
		                           jsonp_get_str(b, "fingerprint", NULL), force,
		                           jsonp_get_str(b, "return_address", NULL), &rp->j, &e)
		         : bks_fail(&e, -EINVAL, "field 'address' (HOST:PORT) is required");
	} else {
		const char *addr = jsonp_get_str(c->body, "address", NULL);
		r = addr ? repl_api_pair(rl, addr, jsonp_get_str(c->body, "token", NULL),
		                         jsonp_get_str(c->body, "fingerprint", NULL), &rp->j, &e)
		         : bks_fail(&e, -EINVAL, "field 'address' (HOST:PORT) is required");
	}
	json_obj_end(&rp->j);
	if (r < 0) {
		json_finish(&rp->j);
		fclose(rp->f);
		free(rp->buf);
		rp->buf = NULL;
		rp->f = NULL;
		reply_error(rp, r == -EACCES || r == -EPERM ? MHD_HTTP_FORBIDDEN
		                : r == -ENOTEMPTY ? MHD_HTTP_CONFLICT : 0, r, "%s", bks_errmsg(&e, r));
	}
}

/* ---- the routes ---- */

static void get_status_r(const call *c) { get_status(c->a, c->rp); }
static void get_array_r(const call *c) { get_array(c->a, c->rp, 0); }
static void get_disks_r(const call *c) { get_array(c->a, c->rp, 1); }
static void get_jobs_r(const call *c) { get_jobs(c->a, c->rp); }
static void get_events_r(const call *c) { get_events(c->a, c->conn, c->rp); }
static void get_files_r(const call *c) { get_files(c->a, c->conn, c->rp, 0); }
static void get_stat_r(const call *c) { get_files(c->a, c->conn, c->rp, 1); }
static void get_throughput_r(const call *c) { get_throughput(c->a, c->rp); }
static void post_disk(const call *c) { post_disk_op(c->a, c->rest, c->body, c->rp); }
static void post_passwd(const call *c) { web_passwd(c->a, c->body, c->rp); }
static void luns(const call *c) { api_luns(c->a, c->url, c->method, c->rq, c->rp, c->allow); }

static void get_repl(const call *c)
{
	reply_begin(c->rp, MHD_HTTP_OK);
	json_obj_begin(&c->rp->j, NULL);
	repl_status_json(c->a->ap->repl, &c->rp->j);
	json_obj_end(&c->rp->j);
}

enum route_method {
	R_GET,   /* GET or HEAD */
	R_POST,  /* POST with a JSON object as its body (parsed before the handler) */
	R_ANY,   /* the handler tells the methods apart (the LUNs, daemon/api_lun.c) */
};

/* Every endpoint of docs/api.md but the dashboard's own (daemon/web.c), once:
 * tests/test-docs.sh reads this table. A path ending in '/' is a prefix (the rest of
 * the URL names the object). R_UNIX routes are served on the Unix socket only: the
 * replication token is a secret, pairing decides whom this appliance trusts, and
 * the password is set on the appliance. */
#define R_UNIX 1
static const struct route {
	uint8_t method, flags;
	const char *path;
	void (*fn)(const call *c);
} routes[] = {
	{R_GET, 0, "/api/v1/status", get_status_r},
	{R_GET, 0, "/api/v1/array", get_array_r},
	{R_GET, 0, "/api/v1/disks", get_disks_r},
	{R_GET, 0, "/api/v1/jobs", get_jobs_r},
	{R_GET, 0, "/api/v1/events", get_events_r},
	{R_GET, 0, "/api/v1/files", get_files_r},
	{R_GET, 0, "/api/v1/stat", get_stat_r},
	{R_GET, 0, "/api/v1/throughput", get_throughput_r},
	{R_GET, 0, "/api/v1/repl", get_repl},
	{R_POST, 0, "/api/v1/scrub", post_scrub},
	{R_POST, 0, "/api/v1/gc", post_gc},
	{R_POST, 0, "/api/v1/verify", post_verify},
	{R_POST, 0, "/api/v1/commit", post_commit},
	{R_POST, 0, "/api/v1/disks/", post_disk},
	{R_ANY, 0, "/api/v1/luns", luns},
	{R_ANY, 0, "/api/v1/luns/", luns},
	{R_POST, R_UNIX, "/api/v1/repl/token", post_repl},
	{R_POST, R_UNIX, "/api/v1/repl/pair", post_repl},
	{R_POST, R_UNIX, "/api/v1/repl/set", post_repl},
	{R_POST, R_UNIX, "/api/v1/repl/promote", post_repl},
	{R_POST, R_UNIX, "/api/v1/repl/reseed", post_repl},
	{R_POST, R_UNIX, "/api/v1/passwd", post_passwd},
};

static const struct route *find_route(const char *url, int on_unix)
{
	for (size_t i = 0; i < BKS_ARRAY_SIZE(routes); i++) {
		const struct route *rt = &routes[i];
		size_t n = strlen(rt->path);
		if ((rt->flags & R_UNIX) && !on_unix)
			continue;
		if (rt->path[n - 1] == '/' ? !strncmp(url, rt->path, n) : !strcmp(url, rt->path))
			return rt;
	}
	return NULL;
}

static void dispatch(api *a, struct MHD_Connection *conn, const char *url, const char *method,
                     struct req *rq, reply *rp, const char **allow, int on_unix)
{
	const struct route *rt = find_route(url, on_unix);
	int get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
	int post = !strcmp(method, "POST");
	jsonp *d = NULL;

	if (a->ap->shutting_down) {
		reply_error(rp, MHD_HTTP_SERVICE_UNAVAILABLE, -EBUSY, "bkstord is shutting down");
	} else if (!rt) {
		reply_error(rp, MHD_HTTP_NOT_FOUND, -ENOENT, "no such endpoint: %s %s", method, url);
	} else if ((rt->method == R_GET && !get) || (rt->method == R_POST && !post)) {
		*allow = rt->method == R_GET ? "GET" : "POST";
		reply_error(rp, MHD_HTTP_METHOD_NOT_ALLOWED, -EINVAL, "%s %s: use %s", method, url,
		            *allow);
	} else if (rt->method != R_POST || api_parse_body(rq, rp, &d) == 0) {
		call c = {.a = a, .conn = conn, .url = url, .method = method, .rq = rq, .rp = rp,
		          .allow = allow, .rest = url + strlen(rt->path),
		          .body = d ? jsonp_root(d) : NULL};
		rt->fn(&c);
		jsonp_free(d);
	}
}

/* The dashboard's listener (daemon/web.c), after it has authorized the request. */
void api_dispatch(api *a, struct MHD_Connection *conn, const char *url, const char *method,
                  struct req *rq, reply *rp, const char **allow)
{
	dispatch(a, conn, url, method, rq, rp, allow, 0);
}

/* The Unix socket: whoever can open it (mode 0600) is the administrator. */
static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version,
                              const char *upload, size_t *upload_size, void **con_cls)
{
	api *a = cls;
	struct req *rq;
	reply rp = {0};
	const char *allow = NULL;
	(void)version;

	int more = api_body(&rq, con_cls, upload, upload_size);
	if (more < 0)
		return MHD_NO;
	if (more)
		return MHD_YES;
	dispatch(a, conn, url, method, rq, &rp, &allow, 1);
	return reply_send(conn, &rp, allow);
}

void api_done(void *cls, struct MHD_Connection *conn, void **con_cls,
                 enum MHD_RequestTerminationCode toe)
{
	struct req *rq = *con_cls;
	(void)cls;
	(void)conn;
	(void)toe;
	if (rq) {
		free(rq->body);
		free(rq);
	}
	*con_cls = NULL;
}

int api_start(appl *ap, native_srv *nsrv, const char *path, api **out, bks_err *e)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	api *a;
	if (strlen(path) >= sizeof(sa.sun_path))
		return bks_fail(e, -ENAMETOOLONG, "api socket path %s is too long", path);
	if (!(a = calloc(1, sizeof(*a))))
		return bks_fail(e, -ENOMEM, "out of memory");
	a->ap = ap;
	a->ns = nsrv;
	pthread_mutex_init(&a->stmu, NULL);
	pthread_mutex_init(&a->tpmu, NULL);
	snprintf(a->path, sizeof(a->path), "%s", path);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	/* A socket left by a daemon that died: replace it. Anything else: refuse. */
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			free(a);
			return bks_fail(e, -EEXIST, "%s exists and is not a socket", path);
		}
		unlink(path);
	}
	a->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	mode_t old = umask(0177);
	int r = a->fd < 0 || bind(a->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ? -errno : 0;
	umask(old);
	if (r == 0 && (chmod(path, 0600) < 0 || listen(a->fd, 64) < 0))
		r = -errno;
	if (r < 0) {
		if (a->fd >= 0)
			close(a->fd);
		free(a);
		return bks_fail(e, r, "cannot listen on %s: %s", path, strerror(-r));
	}
	a->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL, 0, NULL, NULL,
	                        handle, a, MHD_OPTION_LISTEN_SOCKET, a->fd,
	                        MHD_OPTION_NOTIFY_COMPLETED, api_done, NULL,
	                        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
	                        MHD_OPTION_CONNECTION_LIMIT, (unsigned)64, MHD_OPTION_END);
	if (!a->d) {
		close(a->fd);
		unlink(path);
		free(a);
		return bks_fail(e, -EIO, "cannot start the control API server on %s", path);
	}
	LOG_I("control API on %s", path);
	int r2 = web_start(a, e);
	if (r2 < 0) {
		api_stop(a);
		return r2;
	}
	*out = a;
	return 0;
}

void api_reload(api *a, const bks_cfg *c)
{
	int changed = wa_reload(&a->wa, c->admin_password, c->session_timeout_s, c->api_tokens,
	                        c->napi_tokens);
	if (changed & WA_RELOAD_PASSWORD)
		appl_event_add(a->ap, CFG_LOG_WARN, "reload: the dashboard's admin password "
		               "changed; every session ended");
	if (changed & WA_RELOAD_TOKENS)
		appl_event_add(a->ap, CFG_LOG_INFO, "reload: %d read-only API token%s now",
		               c->napi_tokens, c->napi_tokens == 1 ? "" : "s");
}

void api_stop(api *a)
{
	if (!a)
		return;
	web_stop(a);
	MHD_stop_daemon(a->d);
	close(a->fd);
	free(a->st_text);
	pthread_mutex_destroy(&a->stmu);
	free(a->tp_text);
	pthread_mutex_destroy(&a->tpmu);
	unlink(a->path);
	free(a);
}
