/* daemon/web_auth.c: see web_auth.h. */
#include <config.h>

#include "daemon/web_auth.h"

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SALT_LEN 16
#define DK_LEN 32

static void hex(const uint8_t *b, size_t n, char *out)
{
	static const char d[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = d[b[i] >> 4];
		out[2 * i + 1] = d[b[i] & 15];
	}
	out[2 * n] = 0;
}

static int unhex(const char *s, size_t n, uint8_t *out)
{
	for (size_t i = 0; i < n; i++) {
		int v = 0;
		for (int k = 0; k < 2; k++) {
			char ch = s[2 * i + k];
			int x = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
			        : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
			if (x < 0)
				return -EINVAL;
			v = v << 4 | x;
		}
		out[i] = (uint8_t)v;
	}
	return 0;
}

static int derive(const char *pw, const uint8_t *salt, size_t slen, unsigned iter,
                  uint8_t *dk, size_t dklen)
{
	return PKCS5_PBKDF2_HMAC(pw, (int)strlen(pw), salt, (int)slen, (int)iter, EVP_sha256(),
	                         (int)dklen, dk) == 1 ? 0 : -EIO;
}

int wa_hash_password(const char *pw, char out[WA_HASH_MAX])
{
	uint8_t salt[SALT_LEN], dk[DK_LEN];
	char sh[2 * SALT_LEN + 1], dh[2 * DK_LEN + 1];
	if (RAND_bytes(salt, sizeof(salt)) != 1 || derive(pw, salt, sizeof(salt), WA_ITER, dk,
	                                                  sizeof(dk)) < 0)
		return -EIO;
	hex(salt, sizeof(salt), sh);
	hex(dk, sizeof(dk), dh);
	snprintf(out, WA_HASH_MAX, "pbkdf2-sha256$%u$%s$%s", WA_ITER, sh, dh);
	OPENSSL_cleanse(dk, sizeof(dk));
	return 0;
}

int wa_check_password(const char *pw, const char *hash)
{
	unsigned iter;
	char sh[257], dh[257];
	uint8_t salt[128], want[128], got[128];
	if (sscanf(hash, "pbkdf2-sha256$%u$%256[0-9a-fA-F]$%256[0-9a-fA-F]", &iter, sh, dh) != 3)
		return -EINVAL;
	size_t sl = strlen(sh) / 2, dl = strlen(dh) / 2;
	if (iter < 1000 || iter > 10000000 || sl < 8 || sl > sizeof(salt) || dl < 16 ||
	    dl > sizeof(want) || strlen(sh) % 2 || strlen(dh) % 2 || unhex(sh, sl, salt) < 0 ||
	    unhex(dh, dl, want) < 0)
		return -EINVAL;
	if (derive(pw, salt, sl, iter, got, dl) < 0)
		return -EIO;
	int ok = CRYPTO_memcmp(got, want, dl) == 0;
	OPENSSL_cleanse(got, sizeof(got));
	return ok;
}

void wa_init(web_auth *w, const char *hash, uint64_t timeout_s, char *const *tokens,
             int ntokens)
{
	memset(w, 0, sizeof(*w));
	pthread_mutex_init(&w->mu, NULL);
	snprintf(w->hash, sizeof(w->hash), "%s", hash ? hash : "");
	w->timeout_ns = timeout_s * 1000000000ull;
	w->tokens = calloc((size_t)ntokens + 1, sizeof(char *));
	for (int i = 0; w->tokens && i < ntokens; i++)
		if ((w->tokens[w->ntokens] = strdup(tokens[i])))
			w->ntokens++;
}

static void free_tokens(char **t, int n);

void wa_destroy(web_auth *w)
{
	free_tokens(w->tokens, w->ntokens);
	OPENSSL_cleanse(w->s, sizeof(w->s));
	pthread_mutex_destroy(&w->mu);
}

void wa_set_hash(web_auth *w, const char *hash)
{
	pthread_mutex_lock(&w->mu);
	snprintf(w->hash, sizeof(w->hash), "%s", hash);
	/* A new password ends every session. */
	memset(w->s, 0, sizeof(w->s));
	pthread_mutex_unlock(&w->mu);
}

static int rand_hex(char out[WA_ID_HEX + 1])
{
	uint8_t b[WA_ID_HEX / 2];
	if (RAND_bytes(b, sizeof(b)) != 1)
		return -EIO;
	hex(b, sizeof(b), out);
	return 0;
}

void wa_source_key(const char *ip, char *key, size_t cap)
{
	struct in6_addr a6;
	if (!strncmp(ip, "::ffff:", 7) && strchr(ip + 7, '.')) {
		snprintf(key, cap, "%s", ip + 7);
	} else if (strchr(ip, ':') && inet_pton(AF_INET6, ip, &a6) == 1) {
		char t[INET6_ADDRSTRLEN];
		memset(a6.s6_addr + 8, 0, 8);
		inet_ntop(AF_INET6, &a6, t, sizeof(t));
		snprintf(key, cap, "%s/64", t);
	} else {
		snprintf(key, cap, "%s", ip);
	}
}

/* A key's window opens at its first counted attempt and lasts a minute: a fixed
 * clock minute would let a burst straddling its boundary have twice the limit. */
#define WA_WINDOW_NS 60000000000ull

static int window_over(const struct wa_fail *f, uint64_t now)
{
	return now - f->since >= WA_WINDOW_NS;
}

static int retry_after(const struct wa_fail *f)
{
	uint64_t left = WA_WINDOW_NS - (bks_now_ns() - f->since);
	return left > WA_WINDOW_NS ? 1 : (int)(left / 1000000000ull) + 1;
}

/* The slot counting key's attempts in its window (made when create; else NULL when
 * there is none). Under mu. */
static struct wa_fail *fail_slot(web_auth *w, const char *key, int create)
{
	uint64_t now = bks_now_ns();
	int free_slot = -1;
	for (int i = 0; i < WA_FAIL_SLOTS; i++) {
		if (w->fails[i].key[0] && window_over(&w->fails[i], now)) {
			w->fails[i].key[0] = 0; /* its window is over: free */
			w->fails[i].count = 0;
		}
		if (w->fails[i].key[0] && !strcmp(w->fails[i].key, key))
			return &w->fails[i];
		if (!w->fails[i].key[0] && free_slot < 0)
			free_slot = i;
	}
	if (!create)
		return NULL;
	int i = free_slot >= 0 ? free_slot : WA_FAIL_SLOTS; /* full: the shared slot */
	struct wa_fail *f = &w->fails[i];
	if (i < WA_FAIL_SLOTS || window_over(f, now) || !f->count) {
		f->since = now;
		f->count = 0;
	}
	if (i < WA_FAIL_SLOTS)
		snprintf(f->key, sizeof(f->key), "%s", key);
	return f;
}

int wa_blocked(web_auth *w, const char *key, int *retry_s)
{
	pthread_mutex_lock(&w->mu);
	struct wa_fail *f = fail_slot(w, key, 0);
	int blocked = f && f->count >= WA_FAIL_LIMIT;
	if (blocked)
		*retry_s = retry_after(f);
	pthread_mutex_unlock(&w->mu);
	return blocked;
}

int wa_login(web_auth *w, const char *key, const char *pw, wa_session *out, int *retry_s)
{
	char hash[WA_HASH_MAX];
	pthread_mutex_lock(&w->mu);
	snprintf(hash, sizeof(hash), "%s", w->hash);
	if (!hash[0]) {
		pthread_mutex_unlock(&w->mu);
		return -ENOENT;
	}
	/* Count the attempt before the slow check, not after it: counted afterwards,
	 * every parallel connection passed the limit check before any had failed. */
	struct wa_fail *f = fail_slot(w, key, 1);
	if (f->count >= WA_FAIL_LIMIT) {
		*retry_s = retry_after(f);
		pthread_mutex_unlock(&w->mu);
		return -EAGAIN;
	}
	f->count++;
	uint64_t since = f->since; /* the same window until it is over (then recycled) */
	pthread_mutex_unlock(&w->mu);
	/* The slow part, outside the lock. */
	int ok = wa_check_password(pw, hash);
	pthread_mutex_lock(&w->mu);
	if (ok != 1) {
		pthread_mutex_unlock(&w->mu);
		return -EACCES;
	}
	/* Right password: this attempt was no failure. */
	if (f->since == since && f->count)
		f->count--;
	uint64_t now = bks_wall_ns();
	int slot = 0;
	for (int i = 0; i < WA_MAX_SESSIONS; i++) {
		if (w->s[i].expires_ns < now) {
			slot = i;
			break;
		}
		if (w->s[i].expires_ns < w->s[slot].expires_ns)
			slot = i; /* full: the one closest to expiry goes */
	}
	wa_session *s = &w->s[slot];
	int r = rand_hex(s->id);
	if (r == 0)
		r = rand_hex(s->csrf);
	s->expires_ns = r == 0 ? now + w->timeout_ns : 0;
	if (r == 0)
		*out = *s;
	pthread_mutex_unlock(&w->mu);
	return r;
}

int wa_session_get(web_auth *w, const char *id, wa_session *out)
{
	int r = -ENOENT;
	if (!id || strlen(id) != WA_ID_HEX)
		return r;
	uint64_t now = bks_wall_ns();
	pthread_mutex_lock(&w->mu);
	for (int i = 0; i < WA_MAX_SESSIONS; i++)
		if (w->s[i].expires_ns > now && CRYPTO_memcmp(w->s[i].id, id, WA_ID_HEX) == 0) {
			*out = w->s[i];
			r = 0;
		}
	pthread_mutex_unlock(&w->mu);
	return r;
}

void wa_logout(web_auth *w, const char *id)
{
	if (!id || strlen(id) != WA_ID_HEX)
		return;
	pthread_mutex_lock(&w->mu);
	for (int i = 0; i < WA_MAX_SESSIONS; i++)
		if (CRYPTO_memcmp(w->s[i].id, id, WA_ID_HEX) == 0)
			memset(&w->s[i], 0, sizeof(w->s[i]));
	pthread_mutex_unlock(&w->mu);
}

int wa_token_ok(web_auth *w, const char *token)
{
	int ok = 0;
	size_t n = token ? strlen(token) : 0;
	pthread_mutex_lock(&w->mu);
	for (int i = 0; i < w->ntokens; i++)
		if (strlen(w->tokens[i]) == n && CRYPTO_memcmp(w->tokens[i], token, n) == 0)
			ok = 1;
	pthread_mutex_unlock(&w->mu);
	return ok;
}

static void free_tokens(char **t, int n)
{
	for (int i = 0; i < n; i++) {
		OPENSSL_cleanse(t[i], strlen(t[i]));
		free(t[i]);
	}
	free(t);
}

int wa_reload(web_auth *w, const char *hash, uint64_t timeout_s, char *const *tokens,
              int ntokens)
{
	int changed = 0, nt = 0;
	char **t = calloc((size_t)ntokens + 1, sizeof(char *));
	for (int i = 0; t && i < ntokens; i++)
		if ((t[nt] = strdup(tokens[i])))
			nt++;
	if (!t || nt < ntokens) {
		/* Out of memory: keep the old tokens rather than run with half the list. */
		if (t)
			free_tokens(t, nt);
		t = NULL;
	}
	pthread_mutex_lock(&w->mu);
	if (strcmp(w->hash, hash ? hash : "")) {
		snprintf(w->hash, sizeof(w->hash), "%s", hash ? hash : "");
		memset(w->s, 0, sizeof(w->s)); /* a new password ends every session */
		changed |= WA_RELOAD_PASSWORD;
	}
	w->timeout_ns = timeout_s * 1000000000ull;
	uint64_t cut = bks_wall_ns() + w->timeout_ns;
	for (int i = 0; i < WA_MAX_SESSIONS; i++)
		if (w->s[i].expires_ns > cut)
			w->s[i].expires_ns = cut;
	char **old = NULL;
	int nold = 0;
	if (t) {
		int same = nt == w->ntokens;
		for (int i = 0; same && i < nt; i++)
			same = !strcmp(t[i], w->tokens[i]);
		changed |= same ? 0 : WA_RELOAD_TOKENS;
		old = w->tokens;
		nold = w->ntokens;
		w->tokens = t;
		w->ntokens = nt;
	}
	pthread_mutex_unlock(&w->mu);
	if (old)
		free_tokens(old, nold);
	return changed;
}
