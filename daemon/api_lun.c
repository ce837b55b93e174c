/* daemon/api_lun.c: the LUN endpoints of the control API (docs/api.md "LUNs"):
 *   GET    /api/v1/luns              the LUNs
 *   POST   /api/v1/luns              create {"name", "size", "block_size", "initiators"}
 *   POST   /api/v1/luns/NAME         {"action": "resize", "size"} | {"action": "acl",
 *                                    "initiators"} | {"action": "write_cache", "on"}
 *                                    | {"action": "delete"}
 *   DELETE /api/v1/luns/NAME         delete (refused while an initiator has it open)
 * and the "luns" member of GET /api/v1/status. */
#include <config.h>

#include "daemon/api_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/log.h"
#include "daemon/lun.h"
#include "daemon/status.h"

static void lun_json(json *j, const lun_info *li)
{
	char naa[33];
	for (int i = 0; i < 16; i++)
		snprintf(naa + 2 * i, 3, "%02x", li->naa[i]);
	json_obj_begin(j, NULL);
	json_str(j, "name", li->name);
	json_uint(j, "size", li->size);
	json_uint(j, "block_size", li->block_size);
	json_uint(j, "mapped_bytes", li->mapped_bytes);
	json_str(j, "initiators", li->initiators);
	json_int(j, "sessions", li->sessions);
	json_bool(j, "write_cache", li->write_cache);
	json_uint(j, "read_bytes", li->read_bytes);
	json_uint(j, "written_bytes", li->written_bytes);
	json_str(j, "naa", naa);
	json_str(j, "serial", li->serial);
	json_obj_end(j);
}

static int list_cb(void *ctx, const lun_info *li)
{
	lun_json(ctx, li);
	return 0;
}

void lun_status_json(appl *ap, json *j)
{
	json_arr_begin(j, "luns");
	if (ap->luns)
		lun_list_snapshot(ap->luns, list_cb, j);
	json_arr_end(j);
}

static void reply_lun_err(reply *rp, int r, const bks_err *e)
{
	reply_error(rp, 0, r, "%s", bks_errmsg(e, r));
}

static int want_size(const jsonp_val *body, reply *rp, uint64_t *size)
{
	if (jsonp_get_uint(body, "size", size) < 0 || *size == 0) {
		reply_error(rp, MHD_HTTP_BAD_REQUEST, -EINVAL, "field 'size' must be a number of "
		            "bytes above 0");
		return -1;
	}
	return 0;
}

void api_luns(api *a, const char *url, const char *method, struct req *rq, reply *rp,
              const char **allow)
{
	lun_set *ls = a->ap->luns;
	bks_err e = {0};
	char esc[LOG_ESC_LEN];
	int r, get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
	int post = !strcmp(method, "POST"), del = !strcmp(method, "DELETE");
	const char *name = url[12] == '/' ? url + 13 : NULL; /* "/api/v1/luns/NAME" */
	jsonp *d = NULL;
	const jsonp_val *body = NULL;

	if (!ls) {
		reply_error(rp, MHD_HTTP_SERVICE_UNAVAILABLE, -EBUSY, "LUNs are not available");
		return;
	}
	if (!name && get) {
		reply_begin(rp, MHD_HTTP_OK);
		json_obj_begin(&rp->j, NULL);
		lun_status_json(a->ap, &rp->j);
		json_obj_end(&rp->j);
		return;
	}
	if ((!name && !post) || (name && !post && !del)) {
		*allow = name ? "POST, DELETE" : "GET, POST";
		reply_error(rp, MHD_HTTP_METHOD_NOT_ALLOWED, -EINVAL, "%s %s: use %s", method, url,
		            *allow);
		return;
	}
	if (post) {
		if (api_parse_body(rq, rp, &d) < 0)
			return;
		body = jsonp_root(d);
	}
	if (!name) {
		const char *n = jsonp_get_str(body, "name", NULL);
		const char *ini = jsonp_get_str(body, "initiators", "");
		uint64_t size = 0, bs = 512;
		if (!n) {
			reply_error(rp, MHD_HTTP_BAD_REQUEST, -EINVAL, "field 'name' must be a string");
		} else if (want_size(body, rp, &size) == 0) {
			if (jsonp_get(body, "block_size") && jsonp_get_uint(body, "block_size", &bs) < 0)
				bs = 0;
			if ((r = lun_create(ls, n, size, (uint32_t)(bs > 65536 ? 0 : bs), ini, &e)) < 0) {
				reply_lun_err(rp, r, &e);
			} else {
				appl_event_add(a->ap, CFG_LOG_INFO, "LUN %s created (%llu bytes)",
				               log_escs(esc, sizeof(esc), n), (unsigned long long)size);
				reply_ok(rp, "LUN %s created", n);
			}
		}
		jsonp_free(d);
		return;
	}
	const char *action = del ? "delete" : jsonp_get_str(body, "action", "");
	if (!strcmp(action, "delete")) {
		if ((r = lun_delete(ls, name, &e)) < 0) {
			reply_lun_err(rp, r, &e);
		} else {
			appl_event_add(a->ap, CFG_LOG_INFO, "LUN %s deleted",
			               log_escs(esc, sizeof(esc), name));
			reply_ok(rp, "LUN %s deleted", name);
		}
	} else if (!strcmp(action, "resize")) {
		uint64_t size;
		if (want_size(body, rp, &size) == 0) {
			if ((r = lun_resize(ls, name, size, &e)) < 0) {
				reply_lun_err(rp, r, &e);
			} else {
				appl_event_add(a->ap, CFG_LOG_INFO, "LUN %s resized to %llu bytes",
				               log_escs(esc, sizeof(esc), name), (unsigned long long)size);
				reply_ok(rp, "LUN %s resized", name);
			}
		}
	} else if (!strcmp(action, "acl")) {
		const char *ini = jsonp_get_str(body, "initiators", NULL);
		if (!ini)
			reply_error(rp, MHD_HTTP_BAD_REQUEST, -EINVAL, "field 'initiators' must be a "
			            "string (comma-separated initiator names; empty: any)");
		else if ((r = lun_set_acl(ls, name, ini, &e)) < 0)
			reply_lun_err(rp, r, &e);
		else
			reply_ok(rp, "LUN %s: initiators set", name);
	} else if (!strcmp(action, "write_cache")) {
		int on;
		if (jsonp_get_bool(body, "on", &on) < 0)
			reply_error(rp, MHD_HTTP_BAD_REQUEST, -EINVAL, "field 'on' must be true or false");
		else if ((r = lun_set_write_cache(ls, name, on, &e)) < 0)
			reply_lun_err(rp, r, &e);
		else
			reply_ok(rp, "LUN %s: write cache %s", name, on ? "on" : "off");
	} else {
		reply_error(rp, MHD_HTTP_BAD_REQUEST, -EINVAL, "field 'action' must be one of "
		            "resize, acl, write_cache, delete");
	}
	jsonp_free(d);
}
