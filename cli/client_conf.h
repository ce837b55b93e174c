/* cli/client_conf.h: how bkstorctl reaches a daemon: the client configuration file,
 * and the client side of the control API (docs/api.md): one call with the daemon's
 * error sentence as the error, and the decoding of the documents it sends.
 *
 * The file has the daemon's INI grammar (common/ini.h): one "key = value" a line;
 * '#' or ';' starts a comment (at the start of a line, or after whitespace in a
 * value); blank lines are ignored; an optional "[client]" section header is accepted
 * (no other section). A value may be quoted ("...", with \" and \\ as its only
 * escapes) to hold a '#'. Each key at most once. Keys:
 *
 *   server     = 127.0.0.1:7070        native protocol: host[:port] or [v6]:port (7070)
 *   name       = demo                  client name: letters, digits, '-', '_', '.'
 *   secret     = <hex>                 the client's shared secret, 32..128 hex digits
 *   api_socket = /run/bkstor/api.sock  the control API's Unix socket (absolute path)
 *
 * Which file: the path given (bkstorctl --client FILE), else $BKSTOR_CLIENT, else
 * CLIENT_CONF_DEFAULT. Only the default may be missing (then every key has its
 * default); a file that was asked for by name must exist. $BKSTOR_API, when set and
 * not empty, overrides api_socket from any source (it is not validated here: it may
 * be anything http_target_parse accepts, a loopback TCP address included).
 *
 * Errors name the place and never echo a secret:
 *   "/etc/bkstor/client.conf:4: secret must be 32..128 hex digits (an even count)"
 */
#ifndef BKS_CLI_CLIENT_CONF_H
#define BKS_CLI_CLIENT_CONF_H

#include <stddef.h>
#include <stdint.h>

#include "cli/http.h"
#include "common/bks.h"
#include "common/json.h"
#include "common/jsonp.h"
#include "storage/array.h"

#define CLIENT_CONF_DEFAULT "/etc/bkstor/client.conf"
#define CLIENT_CONF_ENV "BKSTOR_CLIENT"
#define CLIENT_API_ENV "BKSTOR_API"
#define CLIENT_DEFAULT_SERVER "127.0.0.1:7070"
#define CLIENT_DEFAULT_API "/run/bkstor/api.sock"
#define CLIENT_CONF_MAX_FILE (64u << 10) /* bytes in the file */

/* Everything is held in place (no pointers), so a client_conf is copied and dropped
 * freely; client_conf_wipe() clears the secret from memory when done. */
typedef struct client_conf {
	char server[320];        /* as written (default CLIENT_DEFAULT_SERVER) */
	char server_host[256];   /* without brackets for an IPv6 literal */
	uint16_t server_port;
	char name[65];           /* "" when not set */
	char secret[129];        /* hex digits as written; "" when not set */
	char api_socket[256];    /* CLIENT_DEFAULT_API, the file's value, or $BKSTOR_API */
	char source[1024];       /* the file read; "" when only defaults apply */
	/* A line to show the user ("FILE holds a secret and is readable by group or
	 * others (mode 0644): chmod 600 FILE"); "" when nothing is wrong. */
	char warning[1200];
} client_conf;

void client_conf_defaults(client_conf *c);

/* Parse len bytes of text (NUL bytes are an error) over the values already in *c
 * (client_conf_defaults first). name_for_errors prefixes messages ("NAME:LINE: ...").
 * Returns 0, or -EINVAL with e filled; *c may be partly updated after an error. */
int client_conf_parse(const char *text, size_t len, const char *name_for_errors,
                      client_conf *c, bks_err *e);

/* Defaults, then the file chosen as described above, then $BKSTOR_API. Returns 0, or
 * a negative errno with e filled ("FILE: open: No such file or directory", a parse
 * error, "FILE: not a regular file", "FILE: larger than 65536 bytes"). Sets out->warning
 * when the file holds a secret and is readable by group or others. */
int client_conf_load(const char *path_or_null, client_conf *out, bks_err *e);

void client_conf_wipe(client_conf *c); /* zero it all, the secret included */

/* ---- the control API ---------------------------------------------------------- */

/* Where the API is: api_opt (a --api option) when not NULL, else the api_socket of
 * the configuration client_conf_load(conf_path) finds. warn (cap bytes) receives the
 * configuration's warning, "" when none. 0 or a negative errno with e filled. */
int client_api_target(const char *api_opt, const char *conf_path, http_target *t,
                      char *warn, size_t cap, bks_err *e);

/* A 2xx answer. Owned by the caller: client_reply_free() (accepts an empty one). */
typedef struct client_reply {
	http_response r;
	jsonp *doc;
	const jsonp_val *root;   /* the body: always a JSON object */
} client_reply;

/* One request; body is JSON text or NULL. Returns 0 for a 2xx answer whose body is a
 * JSON object, with *rp filled. Otherwise *rp is empty and e holds a sentence:
 *   - not connected: the http module's ("cannot connect to ... — is bkstord
 *     running?"), its errno;
 *   - an error answer: the daemon's "error" text (control characters replaced),
 *     with -ENOENT for 404, -EBUSY for 409, -EINVAL for 400/405/413, -ESHUTDOWN for
 *     503, -EIO otherwise; without an "error" member, "bkstord answered 500 ...";
 *   - a 2xx body that is not a JSON object: -EPROTO. */
int client_api_call(const http_target *t, const char *method, const char *path,
                    const char *body, client_reply *rp, bks_err *e);
void client_reply_free(client_reply *rp);

/* The array document is decoded by arr_status_from_json (storage/arr_json.h). */

/* Write a parsed value out through the JSON writer, integers exact. */
void client_json_emit(json *j, const char *key, const jsonp_val *v);

/* s with control characters replaced by '?', cut to cap (safe on a terminal). */
void client_clean_str(char *out, size_t cap, const char *s);

#endif /* BKS_CLI_CLIENT_CONF_H */
