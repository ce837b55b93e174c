/* daemon/repl.c: see repl.h. Start and stop, pairing, the status object. */
#include <config.h>

#include "daemon/repl_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/log.h"

int repl_start(appl *ap, const char *config_path, repl **out, bks_err *e)
{
	*out = NULL;
	if (!ap->cfg.repl_enabled)
		return 0;
	repl *r = calloc(1, sizeof(*r));
	if (!r)
		return bks_fail(e, -ENOMEM, "out of memory");
	r->ap = ap;
	r->lfd = -1;
	r->send_fd = -1;
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->scv, NULL);
	snprintf(r->state, sizeof(r->state), "starting");
	r->bwlimit = r->pace_rate = ap->cfg.repl_bwlimit;
	r->delete_delay_s = ap->cfg.repl_delete_delay_s;
	repl_ops_config(r, &ap->cfg);
	r->repair_interval_s = ap->cfg.repl_repair_interval_s;
	const char *sl = strrchr(config_path, '/');
	snprintf(r->dir, sizeof(r->dir), "%.*s", sl ? (int)(sl - config_path + 1) : 0, config_path);
	int rc;
	if ((rc = repl_identity_load(r, e)) < 0 || (rc = repl_name_load(r, e)) < 0 ||
	    (rc = repl_tls_init(r, e)) < 0)
		goto fail;
	if ((rc = repl_pin_load(r)) < 0) {
		bks_fail(e, rc, "%srepl.peer: %s", r->dir, strerror(-rc));
		goto fail;
	}
	repl_role_settle(r);
	repl_ro_apply(r); /* a twin refuses client writes from the start */
	repl_dels_load(r);
	repl_wants_load(r);
	if ((rc = repl_claims_new(&r->claims)) < 0) {
		bks_fail(e, rc, "out of memory");
		goto fail;
	}
	if (ap->cfg.repl_listen_set && (rc = repl_listen_start(r, e)) < 0)
		goto fail;
	if ((rc = repl_sender_start(r, e)) < 0)
		goto fail;
	char idhex[2 * REPL_ID_LEN + 1];
	repl_hex(r->id, REPL_ID_LEN, idhex);
	LOG_I("repl: appliance %s (%s), certificate SHA-256 %s; %s", idhex, r->name, r->fp,
	      repl_role_name(r->role));
	repl_repair_hook(r, 1); /* verify's bad chunks: wanted from the source */
	*out = r;
	return 0;
fail:
	repl_stop(r);
	return rc;
}

void repl_stop(repl *r)
{
	if (!r)
		return;
	repl_repair_hook(r, 0);
	repl_sender_stop(r);
	repl_listen_stop(r);
	repl_wants_flush(r);
	repl_wants_free(r);
	for (size_t i = 0; i < r->ndels; i++)
		free(r->dels[i].path);
	free(r->dels);
	repl_claims_free(r->claims);
	SSL_CTX_free(r->sctx);
	SSL_CTX_free(r->cctx);
	X509_free(r->cert);
	EVP_PKEY_free(r->key);
	pthread_cond_destroy(&r->scv);
	pthread_mutex_destroy(&r->mu);
	free(r);
}

void repl_reload(repl *r, const bks_cfg *c)
{
	if (!r)
		return;
	pthread_mutex_lock(&r->mu);
	r->bwlimit = c->repl_bwlimit;
	r->delete_delay_s = c->repl_delete_delay_s;
	r->repair_interval_s = c->repl_repair_interval_s;
	pthread_mutex_unlock(&r->mu);
	repl_ops_config(r, c);
}

void repl_status_json(repl *r, json *j)
{
	json_obj_begin(j, "repl");
	json_bool(j, "enabled", r != NULL);
	if (!r) {
		json_obj_end(j);
		return;
	}
	char idhex[2 * REPL_ID_LEN + 1], pid[2 * REPL_ID_LEN + 1];
	pthread_mutex_lock(&r->mu);
	repl_hex(r->id, REPL_ID_LEN, idhex);
	repl_hex(r->pin_id, REPL_ID_LEN, pid);
	uint64_t now = bks_now_ns();
	json_str(j, "appliance_id", idhex);
	json_str(j, "fingerprint", r->fp);
	json_bool(j, "paired", r->pin_fp[0] != 0);
	json_str(j, "peer_fingerprint", r->pin_fp[0] ? r->pin_fp : NULL);
	json_str(j, "peer_id", r->pin_fp[0] ? pid : NULL);
	int sending = repl_role_sends(r);
	json_str(j, "role", repl_role_name(r->role));
	json_str(j, "state", sending ? r->state : r->lstarted ? "listening" : "idle");
	json_str(j, "last_error", r->last_error[0] ? r->last_error : NULL);
	json_uint(j, "bwlimit_bps", r->bwlimit);
	json_uint(j, "delete_delay_s", r->delete_delay_s);
	json_obj_begin(j, "lag");
	json_uint(j, "files", sending ? r->lag_files : 0);
	json_uint(j, "bytes", sending ? r->lag_bytes : 0);
	json_double(j, "seconds", sending && r->dirty_since_ns
	                              ? (double)(now - r->dirty_since_ns) / 1e9 : 0.0);
	json_obj_end(j);
	json_uint(j, "commits", __atomic_load_n(&r->ap->commits, __ATOMIC_RELAXED));
	json_uint(j, "commits_seen", r->commits_seen);
	json_uint(j, "replicated_commit", r->replicated_commit);
	json_uint(j, "cycles", r->cycles);
	json_uint(j, "last_sync_wall_ns", r->last_sync_wall_ns);
	repl_ops_status_json(r, j);
	json_obj_begin(j, "sent");
	json_uint(j, "wire_bytes", r->tx_wire);
	json_uint(j, "files", r->tx_files);
	json_uint(j, "chunks", r->tx_chunks);
	json_uint(j, "chunk_bytes", r->tx_chunk_bytes);
	json_uint(j, "chunks_twin_had", r->chunks_skipped);
	json_obj_end(j);
	json_uint(j, "connections", r->ap->cfg.repl_connections);
	json_uint(j, "files_in_flight", r->in_flight);
	json_uint(j, "files_in_flight_max", r->in_flight_max);
	json_obj_begin(j, "received");
	json_uint(j, "files", r->rx_files);
	json_uint(j, "chunks", r->rx_chunks);
	json_uint(j, "chunk_bytes", r->rx_bytes);
	json_uint(j, "deletes_pending", r->ndels);
	json_uint(j, "next_delete_due_s", r->ndels ? r->dels[0].due_s : 0);
	json_uint(j, "refused_connections", r->refused);
	json_obj_end(j);
	repl_status_failover(r, j);
	repl_repair_json(r, j);
	pthread_mutex_unlock(&r->mu);
	json_obj_end(j);
}

int repl_api_token(repl *r, json *j, bks_err *e)
{
	uint8_t b[16];
	if (!r)
		return bks_fail(e, -ENOTSUP, "replication is not enabled ([repl] enable = yes)");
	if (!r->lstarted)
		return bks_fail(e, -ENOTSUP, "this appliance does not listen for replication "
		                "([repl] listen)");
	int rc = bks_random(b, sizeof(b));
	if (rc < 0)
		return bks_fail(e, rc, "no random bytes: %s", strerror(-rc));
	pthread_mutex_lock(&r->mu);
	repl_hex(b, sizeof(b), r->token);
	r->token_until_ns = bks_now_ns() + REPL_TOKEN_TTL_NS;
	json_str(j, "token", r->token);
	json_str(j, "fingerprint", r->fp);
	json_uint(j, "valid_s", REPL_TOKEN_TTL_NS / 1000000000ull);
	pthread_mutex_unlock(&r->mu);
	appl_event_add(r->ap, CFG_LOG_INFO, "repl: a pairing token was issued (valid 15 min, "
	               "one use)");
	return 0;
}

int repl_api_pair(repl *r, const char *address, const char *token, const char *fingerprint,
                  json *j, bks_err *e)
{
	rconn c;
	repl_msg m;
	char host[64], fp[REPL_FP_HEX];
	uint16_t port;
	if (!r)
		return bks_fail(e, -ENOTSUP, "replication is not enabled ([repl] enable = yes)");
	if (repl_parse_addr(address, host, sizeof(host), &port) < 0)
		return bks_fail(e, -EINVAL, "'%s' is not HOST:PORT", address);
	if (fingerprint) {
		/* Accept "AB:CD:..." and upper case, as other tools print fingerprints. */
		size_t k = 0;
		for (const char *p = fingerprint; *p && k < 64; p++)
			if (*p != ':')
				fp[k++] = (char)((*p >= 'A' && *p <= 'F') ? *p - 'A' + 'a' : *p);
		fp[k] = 0;
		uint8_t raw[32];
		if (k != 64 || repl_unhex(fp, raw, 32) < 0)
			return bks_fail(e, -EINVAL, "fingerprint must be 64 hex digits (SHA-256)");
		if (!token || !token[0])
			return bks_fail(e, -EINVAL, "a pairing token is needed: run `bkstorctl repl "
			                "token` on the twin");
	}
	int rc = repl_connect(r, address, fingerprint ? fp : NULL, &c, e);
	if (rc < 0)
		return rc;
	if (!fingerprint) {
		/* Probe: show the admin what the twin presents; send nothing. */
		json_str(j, "address", address);
		json_str(j, "fingerprint", c.peer_fp);
		json_bool(j, "paired", 0);
		repl_conn_close(&c);
		return 0;
	}
	repl_msg pm = {.type = REPL_PAIR, .text = wire_s(token)};
	memcpy(pm.id, r->id, REPL_ID_LEN);
	if ((rc = repl_send_msg(&c, &pm, NULL, 0)) < 0 || (rc = repl_read_msg(&c, &m, e)) < 0) {
		repl_conn_close(&c);
		return bks_fail(e, rc < 0 ? rc : -EIO, "%s: the twin closed the connection "
		                "(no pairing token active there?)", address);
	}
	repl_conn_close(&c);
	if (m.type == REPL_ERROR)
		return bks_fail(e, -EACCES, "the twin refused: %.*s", (int)m.text.len, m.text.p);
	if (m.type != REPL_PAIR_OK)
		return bks_fail(e, -EPROTO, "the twin answered %s", repl_type_name(m.type));
	pthread_mutex_lock(&r->mu);
	rc = repl_pin_save(r, fp, m.id, address);
	if (rc == 0) {
		snprintf(r->pin_fp, sizeof(r->pin_fp), "%s", fp);
		memcpy(r->pin_id, m.id, REPL_ID_LEN);
		snprintf(r->pin_addr, sizeof(r->pin_addr), "%s", address);
	}
	r->man_reset = 1; /* a new twin: its manifest starts empty */
	pthread_cond_broadcast(&r->scv);
	pthread_mutex_unlock(&r->mu);
	if (rc < 0)
		return bks_fail(e, rc, "cannot save %srepl.peer: %s", r->dir, strerror(-rc));
	repl_ro_apply(r);
	char pid[2 * REPL_ID_LEN + 1];
	repl_hex(m.id, REPL_ID_LEN, pid);
	appl_event_add(r->ap, CFG_LOG_INFO, "repl: paired with appliance %s at %s (certificate "
	               "SHA-256 %s)", pid, address, fp);
	json_str(j, "address", address);
	json_str(j, "fingerprint", fp);
	json_str(j, "peer_id", pid);
	json_bool(j, "paired", 1);
	return 0;
}
