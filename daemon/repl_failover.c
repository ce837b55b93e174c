/* daemon/repl_failover.c: what a pair does when one of its appliances is lost
 * (docs/architecture.md "Replication", "Failover"): the appliance's name, the role
 * each side has in the pair, the twin's refusal of client writes, promotion, and
 * the reseed of a new appliance that takes the lost one's identity.
 *
 * Roles (repl.peer's "role" line; enum repl_role):
 *
 *   source ──(its twin is lost)──────────────── reseed NEW ─► reseed-source ─┐
 *   twin ──promote──► promoted ──────────────── reseed NEW ─► reseed-source ─┤
 *                                                                            │
 *   NEW (unpaired, empty) ◄── RESEED from the survivor ──► reseed-twin        │
 *       ... the survivor sends it everything (the ordinary send path) ...     │
 *   RESEED_END: NEW takes the lost appliance's id and name; the pair runs in  │
 *   its first direction again: a lost twin's successor is the twin, a lost   ◄┘
 *   source's successor the source (the survivor then is the twin again).
 *
 * A twin refuses client writes (appl_set_readonly) so its copy stays the source's:
 * a write there would be overwritten by the next cycle or, worse, kept where the
 * source deleted, and lost at the next failover. Promotion retires the pin instead
 * of deleting it: the old source, should it come back (a partition, not a death),
 * still passes the TLS handshake and is told in plain words, by HELLO's refusal,
 * that it is not the source any more; its files are not applied over the promoted
 * appliance's. The deletes the twin was holding back are dropped at promotion: they
 * are what the lost source asked for in its last delete_delay, and a source that is
 * lost to ransomware asks for exactly those; the files stay and are listed in
 * repl.deletes-dropped for the admin to review.
 *
 * The hand-back (a lost source's successor): the survivor has taken client writes
 * since its promotion; when a cycle finds the new appliance complete, the survivor
 * refuses client writes (under appl.mu, so no write lands after), runs one more
 * cycle, which then covers every write it took, and only then sends RESEED_END.
 * Crash story: the new appliance writes appliance.id and appliance.name, then
 * repl.peer, then answers DONE; a crash before repl.peer leaves it a reseed-twin
 * with the new id, and the survivor sends RESEED_END again (idempotent). A crash of
 * the survivor after the new appliance took over but before it saved its own side
 * leaves it a reseed-source; the new appliance's first HELLO (as source, with the
 * adopted id) completes the survivor's side.
 *
 * The new source's first cursor is what the reseed delivered (seed_cursor in
 * repl_send.c): objects the receiver made since RESEED (ids from seed_from on; the
 * appliance refused clients all along). It stays read-only from RESEED_END until
 * that cursor is saved; seed_from stays in repl.peer until then, so a restart in
 * between makes it again.
 */
#include <config.h>

#include "daemon/repl_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "daemon/log.h"

static const char *const role_names[] = {
	[ROLE_NONE] = "unpaired",       [ROLE_SOURCE] = "source",
	[ROLE_TWIN] = "twin",           [ROLE_PROMOTED] = "promoted",
	[ROLE_RESEED_SRC] = "reseed-source", [ROLE_RESEED_TWIN] = "reseed-twin",
};

const char *repl_role_name(int role)
{
	return role >= 0 && role <= ROLE_RESEED_TWIN ? role_names[role] : "?";
}

static int role_of(const char *s)
{
	for (int i = 0; i <= ROLE_RESEED_TWIN; i++)
		if (!strcmp(s, role_names[i]))
			return i;
	return -1;
}

/* ---- the name ---- */

/* appliance.name: the name this appliance goes by among twins (status, IDENT, the
 * name a reseeded successor takes). Made at the first start from the host name. */
int repl_name_load(repl *r, bks_err *e)
{
	char path[1100], line[256];
	snprintf(path, sizeof(path), "%sappliance.name", r->dir);
	FILE *f = fopen(path, "r");
	if (f) {
		int ok = fgets(line, sizeof(line), f) != NULL;
		fclose(f);
		line[ok ? strcspn(line, "\r\n") : 0] = 0;
		if (!ok || repl_name_check(line, strlen(line)) < 0)
			return bks_fail(e, -EINVAL, "%s: not an appliance name (1-%d letters, digits, "
			                "'.', '_', '-')", path, REPL_NAME_MAX);
		snprintf(r->name, sizeof(r->name), "%s", line);
		return 0;
	}
	if (errno != ENOENT)
		return bks_fail(e, -errno, "%s: %s", path, strerror(errno));
	char host[256] = "";
	size_t k = 0;
	if (gethostname(host, sizeof(host) - 1) == 0)
		for (const char *p = host; *p && k < REPL_NAME_MAX; p++)
			if (repl_name_check(p, 1) == 0)
				r->name[k++] = *p;
	r->name[k] = 0;
	if (!k) {
		char idhex[2 * REPL_ID_LEN + 1];
		repl_hex(r->id, REPL_ID_LEN, idhex);
		snprintf(r->name, sizeof(r->name), "bkstor-%.8s", idhex);
	}
	snprintf(line, sizeof(line), "%s\n", r->name);
	int w = repl_write_file(path, line, strlen(line), 0644);
	if (w < 0)
		return bks_fail(e, w, "%s: %s", path, strerror(-w));
	LOG_I("repl: this appliance is named %s (%s)", r->name, path);
	return 0;
}

static int write_identity(repl *r, const uint8_t id[REPL_ID_LEN], const char *name)
{
	char path[1100], line[REPL_NAME_MAX + 40];
	repl_hex(id, REPL_ID_LEN, line);
	strcat(line, "\n");
	snprintf(path, sizeof(path), "%sappliance.id", r->dir);
	int w = repl_write_file(path, line, strlen(line), 0644);
	if (w == 0 && name[0]) {
		snprintf(path, sizeof(path), "%sappliance.name", r->dir);
		snprintf(line, sizeof(line), "%s\n", name);
		w = repl_write_file(path, line, strlen(line), 0644);
	}
	return w;
}

/* ---- repl.peer ---- */

void repl_peer_line(repl *r, const char *line)
{
	const char *v = strchr(line, ' ');
	if (!v)
		return;
	size_t kl = (size_t)(v - line);
	v++;
	if (kl == 4 && !strncmp(line, "role", 4)) {
		int ro = role_of(v);
		if (ro >= 0)
			r->role = ro;
		else
			LOG_W("repl: repl.peer: unknown role '%.40s' (ignored)", v);
	} else if (kl == 4 && !strncmp(line, "name", 4)) {
		if (repl_name_check(v, strlen(v)) == 0)
			snprintf(r->pin_name, sizeof(r->pin_name), "%s", v);
	} else if (kl == 8 && !strncmp(line, "promoted", 8)) {
		r->promoted_s = strtoull(v, NULL, 10);
	} else if (kl == 8 && !strncmp(line, "adopt_id", 8)) {
		repl_unhex(v, r->adopt_id, REPL_ID_LEN);
	} else if (kl == 10 && !strncmp(line, "adopt_name", 10)) {
		if (repl_name_check(v, strlen(v)) == 0)
			snprintf(r->adopt_name, sizeof(r->adopt_name), "%s", v);
	} else if (kl == 4 && !strncmp(line, "then", 4)) {
		r->then_source = !strcmp(v, "source");
	} else if (kl == 14 && !strncmp(line, "return_address", 14)) {
		if (strlen(v) < sizeof(r->ret_addr))
			snprintf(r->ret_addr, sizeof(r->ret_addr), "%s", v);
	} else if (kl == 9 && !strncmp(line, "seed_from", 9)) {
		r->seed_from = strtoull(v, NULL, 10);
		r->seed_pending = 1; /* kept only by a source (repl_role_settle) */
	}
}

void repl_role_settle(repl *r)
{
	if (!r->pin_fp[0])
		r->role = ROLE_NONE;
	else if (r->role == ROLE_NONE) /* written before roles: as that code decided */
		r->role = r->pin_addr[0] || r->ap->cfg.repl_peer_set ? ROLE_SOURCE : ROLE_TWIN;
	/* A successor that took over but had not made its cursor when it stopped: the
	 * sender makes it first, clients wait for it (seed_cursor in repl_send.c). */
	r->seed_pending = r->seed_pending && r->role == ROLE_SOURCE;
	if (r->seed_pending)
		r->man_reset = 1;
}

int repl_peer_save(repl *r)
{
	char path[1100], buf[1024], idhex[2 * REPL_ID_LEN + 1], ahex[2 * REPL_ID_LEN + 1];
	size_t n = 0;
	snprintf(path, sizeof(path), "%srepl.peer", r->dir);
	repl_hex(r->pin_id, REPL_ID_LEN, idhex);
	repl_hex(r->adopt_id, REPL_ID_LEN, ahex);
#define ADD(...) (n += (size_t)snprintf(buf + n, sizeof(buf) - n, __VA_ARGS__))
	ADD("fingerprint %s\nid %s\n", r->pin_fp, idhex);
	if (r->pin_addr[0])
		ADD("address %s\n", r->pin_addr);
	ADD("role %s\n", repl_role_name(r->role));
	if (r->pin_name[0])
		ADD("name %s\n", r->pin_name);
	if (r->promoted_s)
		ADD("promoted %llu\n", (unsigned long long)r->promoted_s);
	if (r->role == ROLE_RESEED_SRC || r->role == ROLE_RESEED_TWIN) {
		ADD("adopt_id %s\n", ahex);
		if (r->adopt_name[0])
			ADD("adopt_name %s\n", r->adopt_name);
		ADD("then %s\n", r->then_source ? "source" : "twin");
		if (r->ret_addr[0])
			ADD("return_address %s\n", r->ret_addr);
	}
	if ((r->role == ROLE_RESEED_TWIN && r->then_source) ||
	    (r->role == ROLE_SOURCE && r->seed_pending))
		ADD("seed_from %llu\n", (unsigned long long)r->seed_from);
#undef ADD
	if (n >= sizeof(buf))
		return -ENAMETOOLONG;
	return repl_write_file(path, buf, n, 0600);
}

/* ---- roles and client writes ---- */

int repl_role_sends(const repl *r)
{
	return r->pin_fp[0] && (r->role == ROLE_SOURCE || r->role == ROLE_RESEED_SRC);
}

void repl_send_addr(repl *r, char *addr, size_t cap)
{
	const bks_cfg *c = &r->ap->cfg;
	addr[0] = 0;
	if (!repl_role_sends(r))
		return;
	/* During a reseed the new appliance's address is the one the admin gave; after
	 * it, [repl] peer (when set) as before: it names the twin's address. */
	if (r->role == ROLE_SOURCE && c->repl_peer_set)
		snprintf(addr, cap, "%s:%u", c->repl_peer.family == CFG_AF_LOCALHOST ? "127.0.0.1"
		         : c->repl_peer.host, c->repl_peer.port);
	else
		snprintf(addr, cap, "%s", r->pin_addr);
}

static const char *peer_label(const char *name, const uint8_t id[REPL_ID_LEN], char *buf,
                              size_t cap)
{
	char idhex[2 * REPL_ID_LEN + 1];
	repl_hex(id, REPL_ID_LEN, idhex);
	if (name[0])
		snprintf(buf, cap, "%s (appliance %.12s...)", name, idhex);
	else
		snprintf(buf, cap, "appliance %s", idhex);
	return buf;
}

/* r->mu held: 1 with the sentence a refused client gets, 0 when writable. */
static int ro_reason(repl *r, char *why, size_t cap)
{
	char who[120];
	switch (r->role) {
	case ROLE_TWIN:
		snprintf(why, cap, "this appliance is the replication twin of %s: it takes files "
		         "from its source only; `bkstorctl repl promote` makes it writable",
		         peer_label(r->pin_name, r->pin_id, who, sizeof(who)));
		return 1;
	case ROLE_RESEED_TWIN:
		snprintf(why, cap, r->then_source
		         ? "this appliance is being reseeded from %s: it takes writes once the copy "
		           "is complete and it has taken over"
		         : "this appliance is being reseeded from %s and becomes its replication "
		           "twin: it takes files from its source only",
		         peer_label(r->pin_name, r->pin_id, who, sizeof(who)));
		return 1;
	case ROLE_SOURCE:
		if (!r->seed_pending)
			return 0;
		/* Between RESEED_END and the first cursor (a moment): a write now could
		 * not be told from what the reseed delivered. */
		snprintf(why, cap, "this appliance is taking over from the reseed (its twin is "
		         "%s): it takes writes in a moment",
		         peer_label(r->pin_name, r->pin_id, who, sizeof(who)));
		return 1;
	case ROLE_RESEED_SRC:
		if (!r->handback)
			return 0;
		snprintf(why, cap, "this appliance is handing over to %s (reseeded) and becomes "
		         "its twin: write there",
		         peer_label(r->adopt_name, r->adopt_id, who, sizeof(who)));
		return 1;
	default:
		return 0;
	}
}

void repl_ro_apply(repl *r)
{
	char why[256];
	/* appl.mu before r->mu elsewhere (the receiver): the sentence is made first. */
	pthread_mutex_lock(&r->mu);
	int ro = ro_reason(r, why, sizeof(why));
	pthread_mutex_unlock(&r->mu);
	appl_set_readonly(r->ap, ro ? why : NULL);
}

int repl_rx_allowed(repl *r)
{
	pthread_mutex_lock(&r->mu);
	int ok = r->role == ROLE_TWIN || r->role == ROLE_RESEED_TWIN;
	pthread_mutex_unlock(&r->mu);
	return ok;
}

void repl_status_failover(repl *r, json *j)
{
	char why[256], ahex[2 * REPL_ID_LEN + 1];
	int ro = ro_reason(r, why, sizeof(why));
	json_str(j, "name", r->name);
	json_str(j, "peer_name", r->pin_fp[0] && r->pin_name[0] ? r->pin_name : NULL);
	json_bool(j, "writable", !ro);
	json_str(j, "read_only_reason", ro ? why : NULL);
	json_uint(j, "promoted_wall_s", r->promoted_s);
	if (r->role == ROLE_RESEED_SRC || r->role == ROLE_RESEED_TWIN) {
		repl_hex(r->adopt_id, REPL_ID_LEN, ahex);
		json_obj_begin(j, "reseed");
		json_str(j, "takes_id", ahex);
		json_str(j, "takes_name", r->adopt_name[0] ? r->adopt_name : NULL);
		json_str(j, "new_role", r->then_source ? "source" : "twin");
		json_str(j, "phase", r->role == ROLE_RESEED_TWIN ? "receiving"
		                     : r->handback ? "handing over" : "copying");
		json_obj_end(j);
	} else {
		json_null(j, "reseed");
	}
}

/* ---- IDENT ---- */

static void learn_name(repl *r, wire_str s)
{
	char nm[REPL_NAME_MAX + 1];
	snprintf(nm, sizeof(nm), "%.*s", (int)s.len, s.p);
	pthread_mutex_lock(&r->mu);
	int changed = strcmp(nm, r->pin_name) != 0;
	if (changed) {
		snprintf(r->pin_name, sizeof(r->pin_name), "%s", nm);
		int w = repl_peer_save(r);
		if (w < 0)
			LOG_W("repl: cannot save repl.peer: %s", strerror(-w));
	}
	pthread_mutex_unlock(&r->mu);
	if (changed)
		repl_ro_apply(r); /* the refusal names the source */
}

int repl_ident_exchange(repl *r, rconn *c, char *why, size_t cap)
{
	repl_msg m = {.type = REPL_IDENT, .name = wire_s(r->name)}, a;
	bks_err e = {0};
	int rc = repl_send_msg(c, &m, NULL, 0);
	if (rc == 0)
		rc = repl_read_msg(c, &a, &e);
	if (rc < 0) {
		snprintf(why, cap, "IDENT: %s", bks_errmsg(&e, rc));
		return rc;
	}
	if (a.type != REPL_IDENT) {
		snprintf(why, cap, "the twin answered IDENT with %s%s%.*s", repl_type_name(a.type),
		         a.type == REPL_ERROR ? ": " : "", a.type == REPL_ERROR ? (int)a.text.len : 0,
		         a.type == REPL_ERROR && a.text.p ? a.text.p : "");
		return -EPROTO;
	}
	learn_name(r, a.name);
	return 0;
}

int repl_rx_ident(repl *r, rconn *c, const repl_msg *m)
{
	learn_name(r, m->name);
	repl_msg a = {.type = REPL_IDENT, .name = wire_s(r->name)};
	return repl_send_msg(c, &a, NULL, 0);
}

/* ---- HELLO on the receiving side ---- */

int repl_rx_hello(repl *r, rconn *c, const repl_msg *m)
{
	char who[120], when[40] = "";
	pthread_mutex_lock(&r->mu);
	int role = r->role, done_here = 0;
	if (role == ROLE_RESEED_SRC && r->then_source && !memcmp(m->id, r->adopt_id, REPL_ID_LEN)) {
		/* The new appliance took over (our RESEED_END was answered, but we did not
		 * get to record it): it now sends as the source. Finish our side. */
		r->role = role = ROLE_TWIN;
		memcpy(r->pin_id, r->adopt_id, REPL_ID_LEN);
		snprintf(r->pin_name, sizeof(r->pin_name), "%s", r->adopt_name);
		r->pin_addr[0] = 0;
		r->handback = 0;
		repl_peer_save(r);
		done_here = 1;
	}
	peer_label(r->pin_name, r->pin_id, who, sizeof(who));
	if (r->promoted_s) {
		time_t t = (time_t)r->promoted_s;
		struct tm tm;
		gmtime_r(&t, &tm);
		strftime(when, sizeof(when), " on %Y-%m-%d %H:%M UTC", &tm);
	}
	pthread_mutex_unlock(&r->mu);
	if (done_here) {
		repl_ro_apply(r);
		appl_event_add(r->ap, CFG_LOG_WARN, "repl: reseed complete: %s took over and "
		               "replicates to this appliance, its twin again", who);
	}
	if (role == ROLE_TWIN || role == ROLE_RESEED_TWIN)
		return 0;
	if (role == ROLE_PROMOTED) {
		LOG_W("repl: %s: refused: %s was this appliance's source, but this appliance was "
		      "promoted%s", c->peer, who, when);
		repl_send_error(c, -EPERM, "this appliance was promoted%s and no longer takes "
		                "replication from %s (its files may have changed since); to make "
		                "that appliance a twin again, reseed it: bkstorctl repl reseed",
		                when, who);
		return -EPERM;
	}
	/* Each side would send the other's files back as changes, forever. */
	LOG_W("repl: %s: refused: this appliance is itself a source; two-way replication is "
	      "not supported", c->peer);
	repl_send_error(c, -EBUSY, "this twin is itself a replication source: two-way "
	                "replication is not supported");
	return -EBUSY;
}

/* ---- promote ---- */

int repl_api_promote(repl *r, json *j, bks_err *e)
{
	char who[120], report[1100];
	if (!r)
		return bks_fail(e, -ENOTSUP, "replication is not enabled ([repl] enable = yes)");
	pthread_mutex_lock(&r->mu);
	int role = r->role;
	if (role != ROLE_TWIN) {
		pthread_mutex_unlock(&r->mu);
		if (role == ROLE_PROMOTED)
			return bks_fail(e, -EALREADY, "this appliance is promoted already");
		if (role == ROLE_RESEED_TWIN)
			return bks_fail(e, -EINVAL, "this appliance is being reseeded and does not hold "
			                "a complete copy: it cannot be promoted");
		return bks_fail(e, -EINVAL, "only a twin is promoted (this appliance is %s)",
		                repl_role_name(role));
	}
	r->role = ROLE_PROMOTED;
	r->promoted_s = bks_wall_ns() / 1000000000ull;
	int w = repl_peer_save(r);
	if (w < 0) {
		r->role = ROLE_TWIN;
		r->promoted_s = 0;
		pthread_mutex_unlock(&r->mu);
		return bks_fail(e, w, "cannot save %srepl.peer: %s", r->dir, strerror(-w));
	}
	/* A source still connected (a partition, not a death) stops here: its
	 * connection threads see the role before their next request. */
	for (int i = 0; i < REPL_MAX_CONNS; i++)
		if (r->lstarted && r->conn_fds[i] >= 0)
			shutdown(r->conn_fds[i], SHUT_RDWR);
	peer_label(r->pin_name, r->pin_id, who, sizeof(who));
	pthread_mutex_unlock(&r->mu);
	repl_ro_apply(r);
	snprintf(report, sizeof(report), "%srepl.deletes-dropped", r->dir);
	int dropped = repl_dels_drop(r, report, "the old source asked for", "at promotion");
	appl_event_add(r->ap, CFG_LOG_WARN, "repl: promoted: this appliance takes writes now and "
	               "no longer takes replication from %s; %d held-back delete%s dropped "
	               "(the files stay%s%s)", who, dropped < 0 ? 0 : dropped,
	               dropped == 1 ? "" : "s", dropped > 0 ? "; listed in " : "",
	               dropped > 0 ? report : "");
	json_str(j, "role", "promoted");
	json_str(j, "old_source", who);
	json_int(j, "deletes_dropped", dropped < 0 ? 0 : dropped);
	json_str(j, "dropped_list", dropped > 0 ? report : NULL);
	return 0;
}

/* ---- reseed: the survivor's side ---- */

static int fp_norm(const char *in, char out[REPL_FP_HEX])
{
	size_t k = 0;
	uint8_t raw[32];
	for (const char *p = in; *p && k < 64; p++)
		if (*p != ':')
			out[k++] = (char)((*p >= 'A' && *p <= 'F') ? *p - 'A' + 'a' : *p);
	out[k] = 0;
	return k == 64 && repl_unhex(out, raw, 32) == 0 ? 0 : -EINVAL;
}

int repl_api_reseed(repl *r, const char *address, const char *token, const char *fingerprint,
                    int force, const char *ret_addr, json *j, bks_err *e)
{
	rconn c;
	repl_msg m;
	char host[64], fp[REPL_FP_HEX], back[REPL_ADDR_MAX + 1] = "", who[120];
	uint16_t port;
	if (!r)
		return bks_fail(e, -ENOTSUP, "replication is not enabled ([repl] enable = yes)");
	if (repl_parse_addr(address, host, sizeof(host), &port) < 0)
		return bks_fail(e, -EINVAL, "'%s' is not HOST:PORT", address);
	if (fingerprint && fp_norm(fingerprint, fp) < 0)
		return bks_fail(e, -EINVAL, "fingerprint must be 64 hex digits (SHA-256)");
	if (fingerprint && (!token || !token[0]))
		return bks_fail(e, -EINVAL, "a token is needed: run `bkstorctl repl token` on the "
		                "new appliance");

	/* What the new appliance becomes: the successor of the peer this one lost. */
	repl_msg rm = {.type = REPL_RESEED, .text = wire_s(token), .name = wire_s(r->name)};
	char adopt_name[REPL_NAME_MAX + 1] = "";
	pthread_mutex_lock(&r->mu);
	int role = r->role;
	if (role == ROLE_PROMOTED || role == ROLE_SOURCE) {
		memcpy(rm.id2, r->pin_id, REPL_ID_LEN);
		snprintf(adopt_name, sizeof(adopt_name), "%s", r->pin_name);
		rm.flags = role == ROLE_PROMOTED ? REPL_RESEED_THEN_SOURCE : 0;
	} else if (role == ROLE_RESEED_SRC) { /* again, or onto another new appliance */
		memcpy(rm.id2, r->adopt_id, REPL_ID_LEN);
		snprintf(adopt_name, sizeof(adopt_name), "%s", r->adopt_name);
		rm.flags = r->then_source ? REPL_RESEED_THEN_SOURCE : 0;
	}
	pthread_mutex_unlock(&r->mu);
	if (role == ROLE_TWIN)
		return bks_fail(e, -EINVAL, "this appliance is a twin: promote it first (bkstorctl "
		                "repl promote) if its source is lost");
	if (role == ROLE_NONE || role == ROLE_RESEED_TWIN)
		return bks_fail(e, -EINVAL, "only the survivor of a pair reseeds a new appliance "
		                "(this one is %s)", repl_role_name(role));
	rm.name2 = wire_s(adopt_name);
	if (force)
		rm.flags |= REPL_RESEED_FORCE;
	if (rm.flags & REPL_RESEED_THEN_SOURCE) {
		/* The new appliance will send to this one: where does it reach it? */
		if (ret_addr && ret_addr[0]) {
			char h2[64];
			uint16_t p2;
			if (repl_parse_addr(ret_addr, h2, sizeof(h2), &p2) < 0 ||
			    strlen(ret_addr) > REPL_ADDR_MAX)
				return bks_fail(e, -EINVAL, "return address '%s' is not HOST:PORT", ret_addr);
			snprintf(back, sizeof(back), "%s", ret_addr);
		} else if (r->lstarted) {
			snprintf(back, sizeof(back), ":%u", r->ap->cfg.repl_listen.port);
		} else {
			return bks_fail(e, -EINVAL, "the new appliance becomes the source and must reach "
			                "this one: set [repl] listen here (or give --address)");
		}
	}
	rm.addr = wire_s(back);

	int rc = repl_connect(r, address, fingerprint ? fp : NULL, &c, e);
	if (rc < 0)
		return rc;
	if (!fingerprint) {
		json_str(j, "address", address);
		json_str(j, "fingerprint", c.peer_fp);
		json_bool(j, "reseeding", 0);
		repl_conn_close(&c);
		return 0;
	}
	memcpy(rm.id, r->id, REPL_ID_LEN);
	if ((rc = repl_send_msg(&c, &rm, NULL, 0)) < 0 || (rc = repl_read_msg(&c, &m, e)) < 0) {
		repl_conn_close(&c);
		return bks_fail(e, rc < 0 ? rc : -EIO, "%s: the new appliance closed the connection "
		                "(no token active there?)", address);
	}
	if (m.type == REPL_ERROR) {
		bks_fail(e, m.code == WIRE_E_NOTEMPTY ? -ENOTEMPTY : -EACCES,
		         "the new appliance refused: %.*s", (int)m.text.len, m.text.p);
		repl_conn_close(&c);
		return e->code;
	}
	repl_conn_close(&c);
	if (m.type != REPL_PAIR_OK)
		return bks_fail(e, -EPROTO, "the new appliance answered %s", repl_type_name(m.type));

	pthread_mutex_lock(&r->mu);
	snprintf(r->pin_fp, sizeof(r->pin_fp), "%s", fp);
	memcpy(r->pin_id, m.id, REPL_ID_LEN);
	snprintf(r->pin_addr, sizeof(r->pin_addr), "%s", address);
	r->pin_name[0] = 0; /* IDENT tells it */
	r->role = ROLE_RESEED_SRC;
	memcpy(r->adopt_id, rm.id2, REPL_ID_LEN);
	snprintf(r->adopt_name, sizeof(r->adopt_name), "%s", adopt_name);
	r->then_source = !!(rm.flags & REPL_RESEED_THEN_SOURCE);
	r->ret_addr[0] = 0;
	r->promoted_s = 0;
	r->handback = 0;
	r->man_reset = 1; /* everything goes: the new appliance has nothing */
	rc = repl_peer_save(r);
	pthread_cond_broadcast(&r->scv);
	peer_label(adopt_name, rm.id2, who, sizeof(who));
	pthread_mutex_unlock(&r->mu);
	if (rc < 0)
		return bks_fail(e, rc, "cannot save %srepl.peer: %s", r->dir, strerror(-rc));
	repl_ro_apply(r);
	appl_event_add(r->ap, CFG_LOG_WARN, "repl: reseeding the appliance at %s (certificate "
	               "SHA-256 %s): it receives everything, then takes over as %s and becomes "
	               "the %s", address, fp, who,
	               rm.flags & REPL_RESEED_THEN_SOURCE ? "source (this one its twin)" : "twin");
	char nid[2 * REPL_ID_LEN + 1], aid[2 * REPL_ID_LEN + 1];
	repl_hex(m.id, REPL_ID_LEN, nid);
	repl_hex(rm.id2, REPL_ID_LEN, aid);
	json_str(j, "address", address);
	json_str(j, "fingerprint", fp);
	json_str(j, "peer_id", nid);
	json_str(j, "takes_id", aid);
	json_str(j, "takes_name", adopt_name[0] ? adopt_name : NULL);
	json_str(j, "then", rm.flags & REPL_RESEED_THEN_SOURCE ? "source" : "twin");
	json_bool(j, "reseeding", 1);
	return 0;
}

/* After a clean cycle: the new appliance has everything as of that cycle's walk. */
int repl_reseed_step(repl *r, const char *addr, const char *pin)
{
	rconn c;
	repl_msg m;
	bks_err e = {0};
	char why[300] = "", who[120];
	pthread_mutex_lock(&r->mu);
	int role = r->role, then_source = r->then_source, handback = r->handback;
	repl_msg em = {.type = REPL_RESEED_END,
	               .flags = then_source ? REPL_RESEED_THEN_SOURCE : 0};
	memcpy(em.id2, r->adopt_id, REPL_ID_LEN);
	char adopt_name[REPL_NAME_MAX + 1];
	snprintf(adopt_name, sizeof(adopt_name), "%s", r->adopt_name);
	em.name2 = wire_s(adopt_name);
	if (role == ROLE_RESEED_SRC && then_source && !handback)
		r->handback = 1;
	peer_label(adopt_name, em.id2, who, sizeof(who));
	pthread_mutex_unlock(&r->mu);
	if (role != ROLE_RESEED_SRC)
		return 0;
	if (then_source && !handback) {
		/* Clients stop here first; the next cycle then has every write this
		 * appliance took, and the new one gets it before it takes over. */
		repl_ro_apply(r);
		appl_event_add(r->ap, CFG_LOG_WARN, "repl: reseed: the new appliance has the copy; "
		               "client writes stop here for the last cycle, then %s takes over", who);
		return 1;
	}
	int rc = repl_connect(r, addr, pin, &c, &e);
	if (rc < 0) {
		snprintf(why, sizeof(why), "%s", bks_errmsg(&e, rc));
		goto fail;
	}
	repl_msg hm = {.type = REPL_HELLO, .version = REPL_VERSION};
	memcpy(hm.id, r->id, REPL_ID_LEN);
	if ((rc = repl_send_msg(&c, &hm, NULL, 0)) < 0 || (rc = repl_read_msg(&c, &m, &e)) < 0 ||
	    m.type != REPL_HELLO_OK || (rc = repl_send_msg(&c, &em, NULL, 0)) < 0 ||
	    (rc = repl_read_msg(&c, &m, &e)) < 0 || m.type != REPL_DONE) {
		snprintf(why, sizeof(why), "RESEED_END: %s%.*s", rc < 0 ? bks_errmsg(&e, rc)
		         : m.type == REPL_ERROR ? "refused: " : "unexpected answer",
		         m.type == REPL_ERROR && rc >= 0 ? (int)m.text.len : 0,
		         m.type == REPL_ERROR && rc >= 0 && m.text.p ? m.text.p : "");
		repl_conn_close(&c);
		rc = rc < 0 ? rc : -EPROTO;
		goto fail;
	}
	repl_conn_close(&c);
	pthread_mutex_lock(&r->mu);
	r->role = then_source ? ROLE_TWIN : ROLE_SOURCE;
	memcpy(r->pin_id, r->adopt_id, REPL_ID_LEN);
	snprintf(r->pin_name, sizeof(r->pin_name), "%s", adopt_name);
	if (then_source)
		r->pin_addr[0] = 0; /* it sends to us now */
	r->handback = 0;
	rc = repl_peer_save(r);
	pthread_mutex_unlock(&r->mu);
	if (rc < 0)
		LOG_E("repl: cannot save repl.peer after the reseed: %s", strerror(-rc));
	repl_ro_apply(r);
	appl_event_add(r->ap, CFG_LOG_WARN, "repl: reseed complete: the new appliance is %s, %s",
	               who, then_source ? "the source; this appliance is its twin again"
	                                : "the twin of this appliance");
	return 0;
fail:
	pthread_mutex_lock(&r->mu);
	snprintf(r->last_error, sizeof(r->last_error), "%s", why);
	pthread_mutex_unlock(&r->mu);
	LOG_W("repl: reseed of %s: %s (retrying)", addr, why);
	return -1;
}

void repl_seed_done(repl *r, size_t entries, size_t of)
{
	char who[120];
	pthread_mutex_lock(&r->mu);
	int was = r->seed_pending;
	r->seed_pending = 0;
	int w = repl_peer_save(r);
	peer_label(r->pin_name, r->pin_id, who, sizeof(who));
	pthread_mutex_unlock(&r->mu);
	if (!was)
		return;
	if (w < 0) /* a restart makes the cursor again: the same one */
		LOG_W("repl: cannot save repl.peer: %s", strerror(-w));
	repl_ro_apply(r);
	appl_event_add(r->ap, CFG_LOG_INFO, "repl: took over from the reseed: %zu of %zu "
	               "entries are on %s already (their chunks and links are not sent "
	               "again); clients may write here", entries, of, who);
}

/* The deletes the survivor sent while it copied itself here (its clients deleted
 * files during the reseed) are held back on this appliance like any twin's. Once it
 * is the source they would stay forever (only a twin applies them): they are
 * dropped, not applied, and listed as at promotion. The survivor applied them itself
 * (it was writable); the files stay here, and since the hand-back's cursor leaves
 * those paths out (seed_cursor: the survivor does not have them), the first cycle
 * sends them back to it: both appliances keep them, and repl.deletes-dropped names
 * them for the admin, who deletes by hand what really should go. Called only after
 * the cursor is made (seed_cursor reads the held deletes). Crash story: the cursor
 * is saved and seed_from dropped from repl.peer before; a crash before the list is
 * emptied leaves the deletes in repl.deletes, and the next start of the sender drops
 * them (this appliance is a source then, with no cursor to make); a crash between
 * the report and repl.deletes lists them twice. */
int repl_dels_handback(repl *r)
{
	char report[1100];
	pthread_mutex_lock(&r->mu);
	int due = r->role == ROLE_SOURCE && !r->seed_pending && r->ndels;
	pthread_mutex_unlock(&r->mu);
	if (!due)
		return 0;
	snprintf(report, sizeof(report), "%srepl.deletes-dropped", r->dir);
	int n = repl_dels_drop(r, report, "the reseed's survivor sent during the copy",
	                       "when this appliance became the source");
	if (n > 0)
		appl_event_add(r->ap, CFG_LOG_WARN, "repl: %d delete%s the reseed's survivor sent "
		               "during the copy dropped, not applied (the files stay here and go "
		               "back to it); listed in %s", n, n == 1 ? "" : "s", report);
	return n < 0 ? n : 0;
}

/* ---- reseed: the new appliance's side ---- */

/* Does the namespace hold a file or a symbolic link? Empty directories are not
 * data (a fresh demo has /backups): a reseed may go over them. */
struct scan {
	uint64_t *dirs;
	size_t n, cap;
	int found;
};

static int scan_cb(void *ctx, const ns_dirent *d)
{
	struct scan *sc = ctx;
	if (d->type != NS_DIR) {
		sc->found = 1;
		return 1;
	}
	if (sc->n == sc->cap) {
		size_t nc = sc->cap ? sc->cap * 2 : 64;
		uint64_t *nd = nc <= 65536 ? realloc(sc->dirs, nc * sizeof(*nd)) : NULL;
		if (!nd) {
			sc->found = 1; /* thousands of directories: not a new appliance */
			return 1;
		}
		sc->dirs = nd;
		sc->cap = nc;
	}
	sc->dirs[sc->n++] = d->id;
	return 0;
}

static int holds_files(repl *r)
{
	struct scan sc = {0};
	uint64_t dir = ns_root(r->ap->n);
	size_t next = 0;
	int rc = 0;
	appl_lock(r->ap);
	for (;;) {
		rc = ns_readdir(r->ap->n, dir, NULL, scan_cb, &sc);
		if (rc < 0 || sc.found || next == sc.n)
			break;
		dir = sc.dirs[next++];
	}
	appl_unlock(r->ap);
	free(sc.dirs);
	return rc < 0 ? rc : sc.found;
}

int repl_rx_reseed(repl *r, rconn *c, const repl_msg *m)
{
	char tok[REPL_TOKEN_MAX + 1], who[120], back[80] = "";
	snprintf(tok, sizeof(tok), "%.*s", (int)m->text.len, m->text.p);
	pthread_mutex_lock(&r->mu);
	int live = r->token[0] && bks_now_ns() < r->token_until_ns;
	/* As PAIR: every byte compared, the token spent whatever the outcome. */
	size_t tl = strlen(r->token), ml = strlen(tok);
	unsigned diff = (unsigned)(tl ^ ml);
	for (size_t i = 0; i < tl && i < ml; i++)
		diff |= (unsigned)(r->token[i] ^ tok[i]);
	int ok = live && diff == 0, role = r->role;
	int same = !strcmp(r->pin_fp, c->peer_fp);
	memset(r->token, 0, sizeof(r->token));
	r->token_until_ns = 0;
	if (!ok)
		r->refused++;
	pthread_mutex_unlock(&r->mu);
	if (!ok) {
		LOG_W("repl: %s: reseed refused: %s (certificate %s)", c->peer,
		      live ? "wrong token" : "no pairing token active", c->peer_fp);
		return repl_send_error(c, -EACCES, "reseed refused: %s",
		                       live ? "wrong token (it is spent: issue a new one)"
		                            : "no token active on the new appliance");
	}
	int force = !!(m->flags & REPL_RESEED_FORCE);
	if (!force && role != ROLE_NONE && !(role == ROLE_RESEED_TWIN && same)) {
		LOG_W("repl: %s: reseed refused: this appliance is paired already (%s)", c->peer,
		      repl_role_name(role));
		return repl_send_error(c, -EBUSY, "the new appliance is paired already (%s); "
		                       "reseed it with --force to replace that", repl_role_name(role));
	}
	int n = holds_files(r);
	if (n < 0)
		return repl_send_error(c, n, "cannot read this appliance's namespace: %s",
		                       strerror(-n));
	if (n && !force && !(role == ROLE_RESEED_TWIN && same)) {
		LOG_W("repl: %s: reseed refused: this appliance holds files", c->peer);
		return repl_send_error(c, -ENOTEMPTY, "the new appliance holds files already: a "
		                       "reseed would mix them with the copy (start from empty disks, "
		                       "or reseed with --force to keep them)");
	}
	if (m->flags & REPL_RESEED_THEN_SOURCE) {
		/* ":PORT": the survivor listens at the address it connected from. */
		char h[sizeof(c->peer)];
		uint16_t p;
		if (m->addr.len && m->addr.p[0] == ':') {
			snprintf(h, sizeof(h), "%s", c->peer);
			char *colon = strrchr(h, ':');
			if (colon)
				*colon = 0;
			snprintf(back, sizeof(back), strchr(h, ':') ? "[%s]%.*s" : "%s%.*s", h,
			         (int)m->addr.len, m->addr.p);
		} else {
			snprintf(back, sizeof(back), "%.*s", (int)m->addr.len, m->addr.p);
		}
		if (repl_parse_addr(back, h, sizeof(h), &p) < 0)
			return repl_send_error(c, -EINVAL, "reseed: '%s' is not HOST:PORT", back);
	}
	/* Every object from here on is the receiver's (clients are refused from the
	 * role change below until the cursor is made): the hand-back's cursor takes
	 * only those (a directory or a file --force kept is offered to the survivor).
	 * A repeated RESEED of the same reseed keeps the first mark. */
	appl_lock(r->ap);
	uint64_t mark = store_id_limit(r->ap->s);
	appl_unlock(r->ap);
	pthread_mutex_lock(&r->mu);
	if (!(role == ROLE_RESEED_TWIN && same && r->seed_from))
		r->seed_from = mark;
	r->seed_pending = 0;
	snprintf(r->pin_fp, sizeof(r->pin_fp), "%s", c->peer_fp);
	memcpy(r->pin_id, m->id, REPL_ID_LEN);
	snprintf(r->pin_name, sizeof(r->pin_name), "%.*s", (int)m->name.len, m->name.p);
	r->pin_addr[0] = 0;
	r->role = ROLE_RESEED_TWIN;
	memcpy(r->adopt_id, m->id2, REPL_ID_LEN);
	snprintf(r->adopt_name, sizeof(r->adopt_name), "%.*s", (int)m->name2.len, m->name2.p);
	r->then_source = !!(m->flags & REPL_RESEED_THEN_SOURCE);
	snprintf(r->ret_addr, sizeof(r->ret_addr), "%s", back);
	r->promoted_s = 0;
	int w = repl_peer_save(r);
	peer_label(r->pin_name, r->pin_id, who, sizeof(who));
	pthread_mutex_unlock(&r->mu);
	if (w < 0)
		return repl_send_error(c, w, "cannot save the pin: %s", strerror(-w));
	repl_ro_apply(r);
	char aid[2 * REPL_ID_LEN + 1];
	repl_hex(m->id2, REPL_ID_LEN, aid);
	appl_event_add(r->ap, CFG_LOG_WARN, "repl: being reseeded from %s at %s (certificate "
	               "SHA-256 %s); at the end this appliance becomes %.*s (appliance %s)%s", who,
	               c->peer, c->peer_fp, (int)m->name2.len, m->name2.p, aid,
	               n ? "; the files it held stay (--force)" : "");
	repl_msg ok_m = {.type = REPL_PAIR_OK};
	memcpy(ok_m.id, r->id, REPL_ID_LEN);
	return repl_send_msg(c, &ok_m, NULL, 0);
}

int repl_rx_reseed_end(repl *r, rconn *c, const repl_msg *m)
{
	char name[REPL_NAME_MAX + 1], aid[2 * REPL_ID_LEN + 1];
	pthread_mutex_lock(&r->mu);
	int match = r->role == ROLE_RESEED_TWIN && !memcmp(m->id2, r->adopt_id, REPL_ID_LEN) &&
	            !!(m->flags & REPL_RESEED_THEN_SOURCE) == r->then_source;
	snprintf(name, sizeof(name), "%s", r->adopt_name);
	pthread_mutex_unlock(&r->mu);
	if (!match)
		return repl_send_error(c, -EINVAL, "RESEED_END does not match the reseed this "
		                       "appliance accepted");
	/* The identity first (a crash after it: RESEED_END comes again). */
	int w = write_identity(r, m->id2, name);
	if (w < 0) {
		LOG_E("repl: reseed: cannot write appliance.id/appliance.name: %s", strerror(-w));
		return repl_send_error(c, w, "cannot write the identity: %s", strerror(-w));
	}
	pthread_mutex_lock(&r->mu);
	memcpy(r->id, m->id2, REPL_ID_LEN);
	if (name[0])
		snprintf(r->name, sizeof(r->name), "%s", name);
	r->role = r->then_source ? ROLE_SOURCE : ROLE_TWIN;
	if (r->then_source)
		snprintf(r->pin_addr, sizeof(r->pin_addr), "%s", r->ret_addr);
	r->ret_addr[0] = 0;
	/* The survivor holds what the reseed delivered: the sender's first cursor says
	 * so (seed_cursor), and clients stay refused until it is saved. */
	r->seed_pending = r->then_source;
	r->man_reset = 1;
	w = repl_peer_save(r);
	int src = r->then_source;
	pthread_cond_broadcast(&r->scv);
	pthread_mutex_unlock(&r->mu);
	if (w < 0) {
		LOG_E("repl: reseed: cannot save repl.peer: %s", strerror(-w));
		return repl_send_error(c, w, "cannot save repl.peer: %s", strerror(-w));
	}
	repl_ro_apply(r);
	repl_hex(m->id2, REPL_ID_LEN, aid);
	appl_event_add(r->ap, CFG_LOG_WARN, "repl: reseed complete: this appliance is now %s "
	               "(appliance %s), %s", r->name, aid,
	               src ? "the source (clients write here once its cursor is made)"
	                   : "the twin");
	repl_msg d = {.type = REPL_DONE};
	return repl_send_msg(c, &d, NULL, 0);
}
