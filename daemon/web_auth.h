/* daemon/web_auth.h: the dashboard's login: the admin password as a salted slow hash
 * (PBKDF2-HMAC-SHA-256, OpenSSL), sessions (random ids in an HttpOnly cookie, a CSRF
 * token each, expiry), failed logins limited per source address, and read-only API
 * tokens for monitoring scripts. */
#ifndef BKS_WEB_AUTH_H
#define BKS_WEB_AUTH_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "common/bks.h"

#define WA_ITER 200000           /* PBKDF2 iterations for new hashes */
#define WA_HASH_MAX 256          /* "pbkdf2-sha256$ITER$SALT$HASH" */
#define WA_ID_HEX 64             /* session ids and CSRF tokens: 32 random bytes */
#define WA_MAX_SESSIONS 64
#define WA_FAIL_LIMIT 5          /* failed logins per address per minute */
#define WA_FAIL_SLOTS 256        /* addresses tracked; beyond that they share one count */
#define WA_PASSWORD_MIN 8

/* Hash a password with a fresh salt into out ("pbkdf2-sha256$ITER$SALT$HASH"). */
int wa_hash_password(const char *pw, char out[WA_HASH_MAX]);
/* 1 if pw matches the stored hash, 0 if not, -EINVAL for a malformed hash. The
 * comparison takes the same time whatever matches. */
int wa_check_password(const char *pw, const char *hash);

typedef struct wa_session {
	char id[WA_ID_HEX + 1];
	char csrf[WA_ID_HEX + 1];
	uint64_t expires_ns;     /* wall clock */
} wa_session;

typedef struct web_auth {
	pthread_mutex_t mu;
	char hash[WA_HASH_MAX];  /* "" = no password set: nobody can log in */
	uint64_t timeout_ns;
	wa_session s[WA_MAX_SESSIONS];
	/* Login attempts per source address and minute. A slot's count includes the
	 * attempts still being checked, so parallel connections from one address cannot
	 * each see "under the limit" before any of them failed. Bounded: when every slot
	 * is in use this minute, new addresses share the last slot (one count for all),
	 * so an attacker with many addresses can neither grow memory nor evict the count
	 * of the address he is guessing from. */
	struct wa_fail { char key[64]; uint64_t since; uint32_t count; } fails[WA_FAIL_SLOTS + 1];
	char **tokens;           /* read-only API tokens (hex), owned; under mu */
	int ntokens;
} web_auth;

void wa_init(web_auth *w, const char *hash, uint64_t timeout_s, char *const *tokens,
             int ntokens);
void wa_destroy(web_auth *w);
void wa_set_hash(web_auth *w, const char *hash);

/* SIGHUP: a new hash (only when it differs: it ends every session), timeout (live
 * sessions are cut to the new one when it is shorter) and tokens (copied). Returns
 * WA_RELOAD_* bits for what changed. */
#define WA_RELOAD_PASSWORD 1
#define WA_RELOAD_TOKENS 2
int wa_reload(web_auth *w, const char *hash, uint64_t timeout_s, char *const *tokens,
              int ntokens);

/* The rate-limit key of a source address (text from inet_ntop): an IPv4 address as
 * it is, the IPv4 address inside an IPv4-mapped IPv6 one, else the IPv6 /64 (one
 * customer's network, which an attacker typically has whole). */
void wa_source_key(const char *ip, char *key, size_t cap);

/* Log in from the source whose wa_source_key is key: 0 with a new session (copied to
 * *out), -EACCES wrong password, -EAGAIN too many failures from that source this
 * minute (*retry_s says when to try again), -ENOENT no password is set. */
int wa_login(web_auth *w, const char *key, const char *pw, wa_session *out, int *retry_s);
/* Would wa_login refuse key with -EAGAIN right now? (1/0; *retry_s as there.) For
 * answering before the request's body is read. */
int wa_blocked(web_auth *w, const char *key, int *retry_s);
/* The session named by a cookie value, if valid (copied to *out). 0 or -ENOENT. */
int wa_session_get(web_auth *w, const char *id, wa_session *out);
void wa_logout(web_auth *w, const char *id);
/* A read-only API token? 1 or 0 (constant time per token). */
int wa_token_ok(web_auth *w, const char *token);

#endif /* BKS_WEB_AUTH_H */
