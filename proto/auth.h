/* proto/auth.h: the native protocol's mutual challenge/response (docs/protocol.md,
 * "Authentication"). Each client has a shared secret (bytes) that never crosses the
 * wire. Pure computations over OpenSSL's libcrypto: no I/O, no state.
 *
 *   server -> HELLO   {version, server_nonce (32 random bytes), server name}
 *   client -> AUTH    {client name, client_nonce, mac}
 *                     mac  = HMAC-SHA-256(secret, "bkstor-native-v1 client" ||
 *                                         server_nonce || client_nonce || client name)
 *   server -> AUTH_OK {mac2, ...}  or ERROR {EACCES} and close
 *                     mac2 = HMAC-SHA-256(secret, "bkstor-native-v1 server" ||
 *                                         client_nonce || server_nonce || client name)
 *
 * The labels are 23 ASCII bytes without a NUL; nonces are 32 bytes; the name is its
 * bytes as sent in AUTH (no length prefix: it is the last field, so the input is
 * unambiguous). The two labels differ, so neither side's MAC can be reflected as the
 * other's; each side's fresh nonce makes a recorded exchange useless on a new
 * connection. MACs are compared in constant time (CRYPTO_memcmp).
 */
#ifndef BKS_AUTH_H
#define BKS_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "common/bks.h"

#define AUTH_NONCE_LEN 32
#define AUTH_MAC_LEN 32
#define AUTH_SECRET_MIN 16   /* bytes; generate 32 random bytes per client */
#define AUTH_SECRET_MAX 1024
#define AUTH_LABEL_CLIENT "bkstor-native-v1 client"
#define AUTH_LABEL_SERVER "bkstor-native-v1 server"

/* What both MACs are computed over. name points at the client name (as in AUTH). */
typedef struct auth_transcript {
	uint8_t server_nonce[AUTH_NONCE_LEN];
	uint8_t client_nonce[AUTH_NONCE_LEN];
	const char *name;
	size_t name_len;     /* 1..255 */
} auth_transcript;

/* 32 bytes from OpenSSL's CSPRNG (RAND_bytes). 0 or -EIO. */
int auth_nonce(uint8_t out[AUTH_NONCE_LEN]);

/* Plain HMAC-SHA-256 of msg under key (any key length, so RFC 4231's vectors can be
 * checked through it). 0 or -EIO. */
int auth_hmac_sha256(const void *key, size_t keylen, const void *msg, size_t len,
                     uint8_t out[AUTH_MAC_LEN]);

/* A secret acceptable to the protocol: AUTH_SECRET_MIN..AUTH_SECRET_MAX bytes and not
 * all one byte value. 0 or -EINVAL with a message (for config loading). */
int auth_secret_check(const uint8_t *secret, size_t len, bks_err *e);

/* The client's and the server's MACs. 0, -EINVAL (secret or name length out of
 * range), or -EIO (OpenSSL failed). */
int auth_client_mac(const uint8_t *secret, size_t secret_len, const auth_transcript *t,
                    uint8_t mac[AUTH_MAC_LEN]);
int auth_server_mac(const uint8_t *secret, size_t secret_len, const auth_transcript *t,
                    uint8_t mac[AUTH_MAC_LEN]);

/* Server side: does AUTH's mac prove the secret of the client it names? secret NULL
 * means no such client: the same work is done against a dummy key and the answer is
 * the same -EACCES, so a peer cannot tell unknown names from wrong secrets (by the
 * reply or its timing). Equal nonces are refused (a reflected HELLO). 0 or -EACCES,
 * with the reason in e for the server's log (never send it to the peer). */
int auth_verify_client(const uint8_t *secret, size_t secret_len, const auth_transcript *t,
                       const uint8_t mac[AUTH_MAC_LEN], bks_err *e);
/* Client side: does AUTH_OK's mac prove the server knows our secret? 0 or -EACCES. */
int auth_verify_server(const uint8_t *secret, size_t secret_len, const auth_transcript *t,
                       const uint8_t mac[AUTH_MAC_LEN], bks_err *e);

#endif /* BKS_AUTH_H */
