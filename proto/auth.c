/* proto/auth.c: see auth.h. */
#include <config.h>

#include "proto/auth.h"

#include <errno.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

_Static_assert(sizeof(AUTH_LABEL_CLIENT) == sizeof(AUTH_LABEL_SERVER),
               "labels of one length: neither is a prefix of the other's input");

#define LABEL_LEN (sizeof(AUTH_LABEL_CLIENT) - 1)
#define NAME_MAX_ 255
#define INPUT_MAX (LABEL_LEN + 2 * AUTH_NONCE_LEN + NAME_MAX_)

int auth_nonce(uint8_t out[AUTH_NONCE_LEN])
{
	return RAND_bytes(out, AUTH_NONCE_LEN) == 1 ? 0 : -EIO;
}

int auth_hmac_sha256(const void *key, size_t keylen, const void *msg, size_t len,
                     uint8_t out[AUTH_MAC_LEN])
{
	unsigned int olen = 0;
	static const uint8_t empty[1];
	if (keylen > INT32_MAX)
		return -EINVAL;
	/* HMAC() treats a NULL key as "reuse the last one"; never pass NULL. */
	if (!HMAC(EVP_sha256(), keylen ? key : empty, (int)keylen,
	          len ? msg : empty, len, out, &olen) || olen != AUTH_MAC_LEN)
		return -EIO;
	return 0;
}

int auth_secret_check(const uint8_t *secret, size_t len, bks_err *e)
{
	if (len < AUTH_SECRET_MIN || len > AUTH_SECRET_MAX)
		return bks_fail(e, -EINVAL, "secret of %zu bytes: need %d..%d (32 random bytes "
		                "recommended)", len, AUTH_SECRET_MIN, AUTH_SECRET_MAX);
	size_t same = 1;
	while (same < len && secret[same] == secret[0])
		same++;
	if (same == len)
		return bks_fail(e, -EINVAL, "secret is one byte value repeated");
	return 0;
}

/* label || first nonce || second nonce || name. */
static int mac_over(const uint8_t *secret, size_t secret_len, const char *label,
                    const uint8_t *n1, const uint8_t *n2, const auth_transcript *t,
                    uint8_t mac[AUTH_MAC_LEN])
{
	uint8_t in[INPUT_MAX];
	size_t pos = 0;
	if (!secret || secret_len < AUTH_SECRET_MIN || secret_len > AUTH_SECRET_MAX)
		return -EINVAL;
	if (!t->name || t->name_len == 0 || t->name_len > NAME_MAX_)
		return -EINVAL;
	memcpy(in, label, LABEL_LEN);
	pos += LABEL_LEN;
	memcpy(in + pos, n1, AUTH_NONCE_LEN);
	pos += AUTH_NONCE_LEN;
	memcpy(in + pos, n2, AUTH_NONCE_LEN);
	pos += AUTH_NONCE_LEN;
	memcpy(in + pos, t->name, t->name_len);
	pos += t->name_len;
	int rc = auth_hmac_sha256(secret, secret_len, in, pos, mac);
	OPENSSL_cleanse(in, sizeof(in));
	return rc;
}

int auth_client_mac(const uint8_t *secret, size_t secret_len, const auth_transcript *t,
                    uint8_t mac[AUTH_MAC_LEN])
{
	return mac_over(secret, secret_len, AUTH_LABEL_CLIENT, t->server_nonce,
	                t->client_nonce, t, mac);
}

int auth_server_mac(const uint8_t *secret, size_t secret_len, const auth_transcript *t,
                    uint8_t mac[AUTH_MAC_LEN])
{
	return mac_over(secret, secret_len, AUTH_LABEL_SERVER, t->client_nonce,
	                t->server_nonce, t, mac);
}

/* Compute the expected MAC (with a dummy key when secret is NULL), compare in
 * constant time; every failure is -EACCES. */
static int verify(int server_side, const uint8_t *secret, size_t secret_len,
                  const auth_transcript *t, const uint8_t mac[AUTH_MAC_LEN], bks_err *e)
{
	static const uint8_t dummy[32] = {0x5a, 0xa5, 0x5a, 0xa5, 0x01};
	uint8_t want[AUTH_MAC_LEN];
	int known = secret != NULL;
	if (!known) {
		secret = dummy;
		secret_len = sizeof(dummy);
	}
	int rc = server_side ? auth_client_mac(secret, secret_len, t, want)
	                     : auth_server_mac(secret, secret_len, t, want);
	int same = rc == 0 && CRYPTO_memcmp(want, mac, AUTH_MAC_LEN) == 0;
	OPENSSL_cleanse(want, sizeof(want));
	const char *who = server_side ? "client" : "server";
	if (rc == -EIO)
		return bks_fail(e, -EACCES, "auth: HMAC computation failed");
	if (rc)
		return bks_fail(e, -EACCES, "auth: %s secret or name length out of range", who);
	if (CRYPTO_memcmp(t->server_nonce, t->client_nonce, AUTH_NONCE_LEN) == 0)
		return bks_fail(e, -EACCES, "auth: client nonce equals server nonce (reflection)");
	if (!known)
		return bks_fail(e, -EACCES, "auth: unknown client \"%.*s\"", (int)t->name_len,
		                t->name);
	if (!same)
		return bks_fail(e, -EACCES, "auth: %s \"%.*s\" MAC does not match (wrong secret)",
		                who, (int)t->name_len, t->name);
	return 0;
}

int auth_verify_client(const uint8_t *secret, size_t secret_len, const auth_transcript *t,
                       const uint8_t mac[AUTH_MAC_LEN], bks_err *e)
{
	return verify(1, secret, secret_len, t, mac, e);
}

int auth_verify_server(const uint8_t *secret, size_t secret_len, const auth_transcript *t,
                       const uint8_t mac[AUTH_MAC_LEN], bks_err *e)
{
	return verify(0, secret, secret_len, t, mac, e);
}
