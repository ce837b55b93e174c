/* daemon/config.c: see config.h and docs/config.md.
 *
 * One table (keys[]) holds every key: section, name, type, field, bounds, default,
 * flags. Defaults go through the same value parser as the file, so a default can
 * never be a value the file could not hold; cfg_free and cfg_reload_diff walk the
 * same table, so a new key is one line here plus its field in config.h and its row
 * in docs/config.md.
 *
 * The grammar (sections, key = value, comments, quoting) is common/ini.c's, shared
 * with bkstorctl's client.conf; this file gives it meaning. A quoted value is one
 * item even for a list key.
 */
#include <config.h>

#include "daemon/config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "common/ini.h"
#include "dedup/chunker.h"
#include "storage/label.h"

_Static_assert(CFG_MAX_DISKS == ARR_MAX_DISKS, "disk list bound is the array's");
_Static_assert(CFG_MAX_SPARES == ARR_MAX_SPARES, "spare list bound is the array's");
_Static_assert(CDC_MIN_LIMIT <= 64 && CDC_MAX_LIMIT >= (1u << 20), "chunk bounds");
_Static_assert(sizeof(int) == sizeof(uint32_t), "int fields are stored as 32 bits");
_Static_assert(CFG_MAX_LINE == INI_MAX_LINE, "the line bound config.h documents is the lexer's");

enum sect { S_ARRAY, S_STORE, S_NATIVE, S_CLIENTS, S_API, S_WEB, S_LOG, S_DAEMON,
            S_NFS, S_ISCSI, S_REPL, S_COUNT, S_EXPORT = 100 /* [export NAME]: keys parsed by set_export */ };
static const char *const sect_name[S_COUNT] = {"array", "store", "native", "clients",
                                               "api",   "web",   "log",    "daemon", "nfs",
                                               "iscsi", "repl"};

enum ktype {
	T_NAME,    /* [A-Za-z0-9._-], min..max chars */
	T_PATH,    /* absolute path of at most max bytes; min 0: may be empty */
	T_PWHASH,  /* "" or pbkdf2-sha256$ITER$SALT_HEX$HASH_HEX */
	T_TEXT,    /* printable ASCII without spaces; "" or min..max bytes */
	T_WINDOW,  /* "" or daily time windows "HH:MM-HH:MM ..." (cfg_window_parse) */
	T_UINT,    /* whole number, no unit */
	T_SIZE,    /* bytes: K/M/G/T or KiB/MiB/GiB/TiB (powers of 1024) */
	T_RATE,    /* bytes/s: as T_SIZE, optional "/s" */
	T_DUR,     /* seconds: suffix s, m or h */
	T_BOOL,
	T_LEVEL,   /* log level */
	T_FRAC,    /* 0..1, at most 6 decimals */
	T_OPTADDR, /* host:port, or empty = disabled; aux: the int "enabled" field */
	T_PATHS,   /* lists (aux: the int count field; max: most items) */
	T_ADDRS,
	T_HEXES,   /* 32..128 hex digits each */
};
#define IS_STR(t) ((t) <= T_WINDOW)
#define IS_LIST(t) ((t) >= T_PATHS)

enum kflag {
	K_RESTART = 1, /* SIGHUP cannot apply a change */
	K_POW2 = 2,    /* value must be a power of two */
	K_SECRET = 4,  /* never echoed in a message */
};

typedef struct ckey {
	uint8_t sect, type, flags;
	const char *name;
	size_t off, size, aux; /* the field in bks_cfg; see enum ktype for aux */
	uint64_t min, max;
	const char *dflt;
} ckey;

#define KB(x) ((uint64_t)(x) << 10)
#define MB(x) ((uint64_t)(x) << 20)
#define TB(x) ((uint64_t)(x) << 40)
#define FLD(f) .off = offsetof(bks_cfg, f), .size = sizeof(((bks_cfg *)0)->f)
#define K(s, n, t, f, lo, hi, d, fl)                                                 \
	{ .sect = S_##s, .name = n, .type = t, FLD(f), .min = lo, .max = hi, .dflt = d,  \
	  .flags = fl }
#define KA(s, n, t, f, a, hi, d, fl)                                                 \
	{ .sect = S_##s, .name = n, .type = t, FLD(f), .aux = offsetof(bks_cfg, a),      \
	  .max = hi, .dflt = d, .flags = fl }
#define R K_RESTART

/* K_RESTART is a promise to the administrator: a key without it must really take
 * effect on SIGHUP (cfg_take_reloadable hands its new value to the running copy, and
 * bkstord.c's apply_reload passes it on to whoever uses it). The array's tunables,
 * its spares and the store's are given to arr_import/store_open once, with no way to
 * change them on a running array, so they are restart keys (but for the background
 * pacing, which arr_set_pacing changes: appl_reload_pacing); so is TLS, whose files
 * are read when the dashboard's listener starts. */
static const ckey keys[] = {
	K(ARRAY, "name", T_NAME, array_name, 1, ARR_NAME_MAX - 1, "bkstor", R),
	KA(ARRAY, "disks", T_PATHS, disks, ndisks, CFG_MAX_DISKS, "", R),
	KA(ARRAY, "spares", T_PATHS, spares, nspares, CFG_MAX_SPARES, "", R),
	K(ARRAY, "strip_size", T_SIZE, strip_size, KB(64), MB(1), "256K", R | K_POW2),
	K(ARRAY, "io_timeout_ms", T_UINT, io_timeout_ms, 0, 3600000, "30000", R),
	K(ARRAY, "io_err_limit", T_UINT, io_err_limit, 1, 1000000, "10", R),
	K(ARRAY, "cksum_err_limit", T_UINT, cksum_err_limit, 1, 1000000, "10", R),
	K(ARRAY, "err_window", T_DUR, err_window_s, 1, 7 * 86400, "600s", R),
	K(ARRAY, "bg_min_rate", T_RATE, bg_min_rate, 0, UINT64_MAX, "50M", 0),
	K(ARRAY, "bg_max_rate", T_RATE, bg_max_rate, 0, UINT64_MAX, "0", 0),
	K(ARRAY, "fg_idle_ms", T_UINT, fg_idle_ms, 1, 600000, "500", 0),
	K(STORE, "chunk_min", T_SIZE, chunk_min, 64, MB(1), "4K", R),
	K(STORE, "chunk_avg", T_SIZE, chunk_avg, 64, MB(1), "16K", R | K_POW2),
	K(STORE, "chunk_max", T_SIZE, chunk_max, 64, MB(1), "64K", R),
	K(STORE, "zstd_level", T_UINT, zstd_level, 0, 19, "3", R),
	K(STORE, "zstd_level_busy", T_UINT, zstd_level_busy, 0, 19, "1", R),
	K(STORE, "meta_cache", T_SIZE, meta_cache, MB(1), TB(1), "16M", R),
	K(STORE, "commit_interval", T_DUR, commit_interval_s, 1, 3600, "5s", 0),
	K(STORE, "commit_bytes", T_SIZE, commit_bytes, 0, TB(1), "1G", R),
	K(STORE, "gc_min_live", T_FRAC, gc_min_live, 0, 1, "0.5", 0),
	K(STORE, "gc_auto_free", T_FRAC, gc_auto_free, 0, 1, "0.25", 0),
	KA(NATIVE, "listen", T_ADDRS, native_listen, nnative_listen, CFG_MAX_LISTEN,
	   "127.0.0.1:7070", R),
	K(NATIVE, "max_connections", T_UINT, max_connections, 1, 65536, "256", 0),
	K(NATIVE, "idle_timeout", T_DUR, idle_timeout_s, 1, 86400, "60s", 0),
	K(NATIVE, "max_frame", T_SIZE, max_frame, KB(64), MB(64), "4M", 0),
	K(NATIVE, "rate_limit", T_RATE, rate_limit, 0, UINT64_MAX, "0", 0),
	K(NATIVE, "auth_fail_limit", T_UINT, auth_fail_limit, 1, 10000, "5", 0),
	K(NATIVE, "auth_timeout", T_DUR, auth_timeout_s, 1, 600, "10s", 0),
	K(NATIVE, "frame_timeout", T_DUR, frame_timeout_s, 1, 86400, "60s", 0),
	K(NATIVE, "send_timeout", T_DUR, send_timeout_s, 1, 86400, "60s", 0),
	K(NATIVE, "max_unauth", T_UINT, max_unauth, 1, 65536, "64", 0),
	K(NATIVE, "max_unauth_per_ip", T_UINT, max_unauth_per_ip, 1, 65536, "8", 0),
	K(API, "socket", T_PATH, api_socket, 1, 107, "/run/bkstor/api.sock", R),
	KA(WEB, "listen", T_OPTADDR, web_listen, web_enabled, 0, "127.0.0.1:8080", R),
	K(WEB, "tls_cert", T_PATH, tls_cert, 0, CFG_MAX_PATH, "", R),
	K(WEB, "tls_key", T_PATH, tls_key, 0, CFG_MAX_PATH, "", R),
	K(WEB, "admin_password", T_PWHASH, admin_password, 0, 0, "", K_SECRET),
	K(WEB, "session_timeout", T_DUR, session_timeout_s, 60, 30 * 86400, "12h", 0),
	KA(WEB, "api_tokens", T_HEXES, api_tokens, napi_tokens, CFG_MAX_TOKENS, "", K_SECRET),
	K(LOG, "level", T_LEVEL, log_level, 0, 3, "info", 0),
	K(DAEMON, "threads", T_UINT, threads, 0, 1024, "0", R),
	K(DAEMON, "pidfile", T_PATH, pidfile, 0, CFG_MAX_PATH, "", R),
	K(DAEMON, "demo", T_BOOL, demo, 0, 1, "no", R),
	K(NFS, "enable", T_BOOL, nfs_enabled, 0, 1, "no", R),
	KA(NFS, "listen", T_OPTADDR, nfs_listen, nfs_listen_set, 0, "0.0.0.0:2049", R),
	K(NFS, "mount_port", T_UINT, nfs_mount_port, 1, 65535, "20048", R),
	K(NFS, "portmap_port", T_UINT, nfs_portmap_port, 0, 65535, "111", R),
	K(NFS, "max_connections", T_UINT, nfs_max_connections, 1, 4096, "256", R),
	K(NFS, "wsize", T_SIZE, nfs_wsize, KB(4), MB(1), "1M", R | K_POW2),
	K(NFS, "rsize", T_SIZE, nfs_rsize, KB(4), MB(1), "1M", R | K_POW2),
	K(NFS, "stage_per_file", T_SIZE, nfs_stage_file, MB(1), TB(1), "64M", R),
	K(NFS, "stage_total", T_SIZE, nfs_stage_total, MB(1), TB(1), "256M", R),
	K(NFS, "handle_key", T_PATH, nfs_handle_key, 0, CFG_MAX_PATH, "", R),
	/* [iscsi]: the listener and the limits are restart keys; the CHAP credentials
	 * apply to the next login after a SIGHUP (iscsi_reload). */
	K(ISCSI, "enable", T_BOOL, iscsi_enabled, 0, 1, "no", R),
	KA(ISCSI, "listen", T_OPTADDR, iscsi_listen, iscsi_listen_set, 0, "0.0.0.0:3260", R),
	K(ISCSI, "iqn_prefix", T_TEXT, iscsi_iqn_prefix, 5, 158, "", R),
	K(ISCSI, "max_connections", T_UINT, iscsi_max_connections, 1, 4096, "64", R),
	K(ISCSI, "max_recv_data_segment", T_SIZE, iscsi_max_recv_dsl, KB(4), MB(8), "256K", R),
	K(ISCSI, "max_burst", T_SIZE, iscsi_max_burst, KB(256), MB(8), "1M", R),
	K(ISCSI, "first_burst", T_SIZE, iscsi_first_burst, KB(64), MB(8), "256K", R),
	K(ISCSI, "max_buffer", T_SIZE, iscsi_max_buffer, MB(8), KB(MB(1)), "64M", R),
	K(ISCSI, "queue_depth", T_UINT, iscsi_queue_depth, 1, 1024, "64", R),
	K(ISCSI, "login_timeout", T_DUR, iscsi_login_timeout_s, 1, 600, "15s", R),
	K(ISCSI, "nop_interval", T_DUR, iscsi_nop_interval_s, 0, 3600, "30s", R),
	K(ISCSI, "chap_user", T_TEXT, iscsi_chap_user, 1, 255, "", 0),
	K(ISCSI, "chap_secret", T_TEXT, iscsi_chap_secret, 12, 255, "", K_SECRET),
	K(ISCSI, "mutual_user", T_TEXT, iscsi_mutual_user, 1, 255, "", 0),
	K(ISCSI, "mutual_secret", T_TEXT, iscsi_mutual_secret, 12, 255, "", K_SECRET),
	K(REPL, "enable", T_BOOL, repl_enabled, 0, 1, "no", R),
	KA(REPL, "listen", T_OPTADDR, repl_listen, repl_listen_set, 0, "0.0.0.0:7072", R),
	KA(REPL, "peer", T_OPTADDR, repl_peer, repl_peer_set, 0, "", R),
	K(REPL, "bwlimit", T_RATE, repl_bwlimit, 0, UINT64_MAX, "0", 0),
	K(REPL, "connections", T_UINT, repl_connections, 1, 8, "4", R),
	K(REPL, "delete_delay", T_DUR, repl_delete_delay_s, 0, 365 * 86400, "168h", 0),
	K(REPL, "window", T_WINDOW, repl_window, 0, 0, "", 0),
	K(REPL, "lag_alert", T_DUR, repl_lag_alert_s, 0, 365 * 86400, "0", 0),
	K(REPL, "lag_alert_bytes", T_SIZE, repl_lag_alert_bytes, 0, UINT64_MAX, "0", 0),
	KA(REPL, "paths", T_PATHS, repl_paths, nrepl_paths, 64, "", R),
	K(REPL, "repair_interval", T_DUR, repl_repair_interval_s, 1, 86400, "60s", 0),
};
#undef R
#define NKEYS BKS_ARRAY_SIZE(keys)

static const char *const level_name[] = {"error", "warn", "info", "debug"};
static const char *const bool_word[] = {"no", "false", "off", "0",
                                        "yes", "true", "on", "1"};

const char *cfg_log_level_name(int level)
{
	return level >= 0 && level < (int)BKS_ARRAY_SIZE(level_name) ? level_name[level] : "?";
}

/* ---- fields ---- */

#define AT(c, off) ((void *)((char *)(c) + (off)))
#define CAT(c, off) ((const void *)((const char *)(c) + (off)))

static void put_uint(void *f, size_t size, uint64_t v)
{
	uint32_t w = (uint32_t)v;
	memcpy(f, size == 8 ? (void *)&v : (void *)&w, size);
}

static uint64_t get_uint(const void *f, size_t size)
{
	uint64_t v = 0;
	uint32_t w = 0;
	memcpy(size == 8 ? (void *)&v : (void *)&w, f, size);
	return size == 8 ? v : w;
}

/* ---- values: each parser returns 0, or -EINVAL/-ERANGE/-ENOMEM and a reason ---- */

static int reason(char *why, size_t cap, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int reason(char *why, size_t cap, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, cap, fmt, ap);
	va_end(ap);
	return code;
}

static int is_digit(char ch) { return ch >= '0' && ch <= '9'; }
static int is_space(char ch) { return ch == ' ' || ch == '\t'; }
static int is_alpha(char ch) { return (ch | 0x20) >= 'a' && (ch | 0x20) <= 'z'; }
static int is_hex(char ch)
{
	return is_digit(ch) || ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'f');
}
static int is_name_char(char ch)
{
	return is_digit(ch) || is_alpha(ch) || ch == '-' || ch == '_' || ch == '.';
}

/* Decimal digits at s; *end past them. -EINVAL when there are none, -ERANGE on
 * overflow (the digits are consumed either way, never wrapped). */
static int parse_digits(const char *s, const char **end, uint64_t *out)
{
	const char *p = s;
	int over = 0;
	for (*out = 0; is_digit(*p); p++) {
		unsigned d = (unsigned)(*p - '0');
		if (*out > (UINT64_MAX - d) / 10)
			over = 1;
		else
			*out = *out * 10 + d;
	}
	*end = p;
	return p == s ? -EINVAL : over ? -ERANGE : 0;
}

/* v with the largest unit that divides it exactly: "256K", "12h", "90s". */
static char *fmt_num(int type, uint64_t v, char *buf, size_t cap)
{
	const char *units = type == T_DUR ? "smh" : " KMGT";
	uint64_t base = type == T_DUR ? 60 : 1024;
	int u = 0;
	if (type == T_UINT)
		units = " ";
	while (v && units[u + 1] && v % base == 0) {
		v /= base;
		u++;
	}
	snprintf(buf, cap, "%llu%.*s", (unsigned long long)v, units[u] != ' ', units + u);
	return buf;
}

static const struct unit {
	const char *sfx;
	uint64_t mul;
	int dur;
} units[] = {
	{"", 1, 0}, {"k", KB(1), 0}, {"kib", KB(1), 0}, {"m", MB(1), 0}, {"mib", MB(1), 0},
	{"g", KB(MB(1)), 0}, {"gib", KB(MB(1)), 0}, {"t", TB(1), 0}, {"tib", TB(1), 0},
	{"", 1, 1}, {"s", 1, 1}, {"m", 60, 1}, {"h", 3600, 1},
};

/* A whole number with a unit suffix (sizes, rates, durations) or without (T_UINT). */
static int parse_num(int type, const char *s, uint64_t *out, char *why, size_t cap)
{
	const char *p;
	uint64_t v, mul = 0;
	int r = parse_digits(s, &p, &v);

	if (r < 0)
		return reason(why, cap, r, r == -ERANGE ? "number too large" : "not a whole number");
	if (type == T_UINT && *p)
		return reason(why, cap, -EINVAL, "not a whole number (no unit here)");
	if (*p == '.' || *p == ',')
		return reason(why, cap, -EINVAL, "whole numbers only (write 1536M, not 1.5G)");
	while (is_space(*p))
		p++;
	size_t n = strlen(p);
	if (type == T_RATE && n >= 2 && !strcmp(p + n - 2, "/s"))
		n -= 2;
	for (size_t i = 0; i < BKS_ARRAY_SIZE(units); i++)
		if (units[i].dur == (type == T_DUR) && strlen(units[i].sfx) == n &&
		    !strncasecmp(p, units[i].sfx, n))
			mul = units[i].mul;
	if (!mul && type == T_DUR)
		return reason(why, cap, -EINVAL, "unknown duration unit '%.8s' (use s, m or h)", p);
	if (!mul)
		return reason(why, cap, -EINVAL, "bad size suffix '%.8s' (use K, M, G, T or KiB, "
		              "MiB, GiB, TiB: powers of 1024)", p);
	if (__builtin_mul_overflow(v, mul, out))
		return reason(why, cap, -ERANGE, "number too large");
	return 0;
}

/* 0..1 with at most 6 decimals, held as millionths u so the double is always the
 * nearest one to u / 10^6 (the same text gives the same bits). */
static int parse_frac(const char *s, double *out, char *why, size_t cap)
{
	const char *p;
	uint64_t ip, u = 0;
	int nd = 0, r = parse_digits(s, &p, &ip);
	if (r == 0 && *p == '.') {
		for (p++; is_digit(*p); p++, nd++)
			if (nd < 6)
				u = u * 10 + (uint64_t)(*p - '0');
			else if (*p != '0')
				return reason(why, cap, -EINVAL, "at most 6 decimals");
		if (nd == 0)
			r = -EINVAL;
	}
	if (r == -EINVAL || *p)
		return reason(why, cap, -EINVAL, "not a fraction from 0 to 1 (like 0.5)");
	for (; nd < 6; nd++)
		u *= 10;
	if (r < 0 || ip > 1 || u + ip * 1000000 > 1000000)
		return reason(why, cap, -ERANGE, "not a fraction from 0 to 1");
	*out = (double)(u + ip * 1000000) / 1e6;
	return 0;
}

/* host:port, [ipv6]:port or localhost:port. inet_pton takes only a strict dotted quad
 * (no leading zeros, no short forms); hosts are kept in inet_ntop's canonical text so
 * equal addresses compare equal. */
static int parse_addr(const char *s, cfg_addr *a, char *why, size_t cap)
{
	int v6 = s[0] == '[';
	const char *port = v6 ? strchr(s, ']') : strrchr(s, ':');
	size_t hl = port ? (size_t)(port - s) - (size_t)v6 : 0;
	unsigned char bin[16];
	char host[64];
	uint64_t pv;

	memset(a, 0, sizeof(*a));
	if (!port || (v6 && port[1] != ':'))
		return reason(why, cap, -EINVAL, v6 ? "expected [IPv6 address]:PORT" :
		              "expected HOST:PORT");
	if (hl >= sizeof(host))
		return reason(why, cap, -EINVAL, "host too long");
	memcpy(host, s + v6, hl);
	host[hl] = '\0';
	port += 1 + v6;
	if (v6 && inet_pton(AF_INET6, host, bin) != 1)
		return reason(why, cap, -EINVAL, "'%s' is not an IPv6 address", host);
	if (v6)
		a->family = CFG_AF_INET6;
	else if (!strcasecmp(host, "localhost"))
		a->family = CFG_AF_LOCALHOST;
	else if (inet_pton(AF_INET, host, bin) == 1)
		a->family = CFG_AF_INET;
	else
		return reason(why, cap, -EINVAL, strchr(host, ':') ?
		              "write IPv6 addresses in brackets, like [::1]:7070" :
		              "host must be an IPv4 address, [IPv6 address] or localhost");
	if (a->family == CFG_AF_LOCALHOST)
		strcpy(a->host, "localhost");
	else
		inet_ntop(v6 ? AF_INET6 : AF_INET, bin, a->host, sizeof(a->host));
	if (parse_digits(port, &port, &pv) != 0 || *port || pv < 1 || pv > 65535)
		return reason(why, cap, -ERANGE, "port must be a number from 1 to 65535");
	a->port = (uint16_t)pv;
	return 0;
}

static int addr_eq(const cfg_addr *a, const cfg_addr *b)
{
	return a->family == b->family && a->port == b->port && !strcmp(a->host, b->host);
}

/* Length of the run of hex digits at s; it must be lo..hi long, even, and end at
 * stop. */
static int hex_ok(const char *s, size_t lo, size_t hi, char stop, size_t *len)
{
	size_t n = 0;
	while (is_hex(s[n]))
		n++;
	if (len)
		*len = n;
	return n >= lo && n <= hi && n % 2 == 0 && s[n] == stop;
}

/* The shape of pbkdf2-sha256$ITER$SALT_HEX$HASH_HEX (the web module checks the rest). */
static int check_pwhash(const char *s, char *why, size_t cap)
{
	static const char pfx[] = "pbkdf2-sha256$";
	const char *p = s;
	uint64_t iter;
	size_t n;
	if (!*s)
		return 0;
	if (!strncmp(s, pfx, sizeof(pfx) - 1) && *(p += sizeof(pfx) - 1) != '0' &&
	    parse_digits(p, &p, &iter) == 0 && iter <= UINT32_MAX && *p++ == '$' &&
	    hex_ok(p, 16, 128, '$', &n) && hex_ok(p + n + 1, 32, 128, '\0', NULL))
		return 0;
	return reason(why, cap, -EINVAL, "expected pbkdf2-sha256$ITERATIONS$SALT_HEX$HASH_HEX "
	              "(salt 16..128, hash 32..128 hex digits)");
}

static int check_name(const char *s, uint64_t lo, uint64_t hi)
{
	size_t n = strlen(s);
	for (size_t i = 0; i < n; i++)
		if (!is_name_char(s[i]))
			return -EINVAL;
	return n < lo || n > hi ? -EINVAL : 0;
}

static int set_str(char **dst, const char *v)
{
	char *s = strdup(v);
	if (!s)
		return -ENOMEM;
	free(*dst);
	*dst = s;
	return 0;
}

static int in_strs(char *const *list, int n, const char *s)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(list[i], s))
			return 1;
	return 0;
}

/* List fields are char ** or cfg_addr *: moved as bytes, not through a void ** lvalue
 * (which would alias a different pointer type). */
static void *get_list(const bks_cfg *c, const ckey *k)
{
	void *p;
	memcpy(&p, CAT(c, k->off), sizeof(p));
	return p;
}

/* Room for one more item in the list of k; returns the list or NULL (out of memory). */
static void *grow(bks_cfg *c, const ckey *k, size_t item)
{
	void *nl = realloc(get_list(c, k), item * (size_t)(*(int *)AT(c, k->aux) + 1));
	if (nl)
		memcpy(AT(c, k->off), &nl, sizeof(nl));
	return nl;
}

/* Append one item to a list key. */
static int add_item(bks_cfg *c, const ckey *k, const char *item, char *why, size_t cap)
{
	int *n = AT(c, k->aux);
	char **strs;
	if (*n >= (int)k->max)
		return reason(why, cap, -ERANGE, "at most %d entries", (int)k->max);
	if (k->type == T_ADDRS) {
		cfg_addr a, *list = get_list(c, k);
		int r = parse_addr(item, &a, why, cap);
		for (int i = 0; r == 0 && i < *n; i++)
			if (addr_eq(&list[i], &a))
				r = reason(why, cap, -EINVAL, "'%s' listed twice", item);
		if (r == 0 && !(list = grow(c, k, sizeof(a))))
			r = -ENOMEM;
		if (r == 0)
			list[(*n)++] = a;
		return r;
	}
	if (k->type == T_HEXES && !hex_ok(item, 32, 128, '\0', NULL))
		return reason(why, cap, -EINVAL, "a token must be 32..128 hex digits, an even "
		              "number (got %zu characters)", strlen(item));
	strs = get_list(c, k);
	if (k->type == T_HEXES && in_strs(strs, *n, item))
		return reason(why, cap, -EINVAL, "the same token is listed twice");
	if (k->type == T_PATHS && (item[0] != '/' || strlen(item) > CFG_MAX_PATH))
		return reason(why, cap, -EINVAL, "'%.64s' is not an absolute path of at most %u "
		              "bytes", item, CFG_MAX_PATH);
	/* A disk is named once, as a member or as a spare. (Two names of one device are
	 * caught by the array, which compares device numbers and labels.) */
	if (k->type == T_PATHS && (in_strs(c->disks, c->ndisks, item) ||
	                           in_strs(c->spares, c->nspares, item)))
		return reason(why, cap, -EINVAL, "'%.64s' is already listed in [array] %s", item,
		              in_strs(c->disks, c->ndisks, item) ? "disks" : "spares");
	if (!(strs = grow(c, k, sizeof(char *))) || !(strs[*n] = strdup(item)))
		return -ENOMEM;
	(*n)++;
	return 0;
}

static void clear_list(bks_cfg *c, const ckey *k)
{
	int *n = AT(c, k->aux);
	void *list = get_list(c, k), *none = NULL;
	for (int i = 0; k->type != T_ADDRS && i < *n; i++)
		free(((char **)list)[i]);
	free(list);
	memcpy(AT(c, k->off), &none, sizeof(none));
	*n = 0;
}

/* Set key k of c from value v (split in place for lists; a quoted value is one item). */
static int apply(bks_cfg *c, const ckey *k, char *v, int quoted, char *why, size_t cap)
{
	void *f = AT(c, k->off);
	char lo[24], hi[24], *save = NULL;
	uint64_t u = 0;
	int r = -EINVAL;

	switch (k->type) {
	case T_NAME:
		if (check_name(v, k->min, k->max))
			return reason(why, cap, -EINVAL, "must be %d..%d letters, digits, '-', '_' "
			              "or '.'", (int)k->min, (int)k->max);
		return set_str(f, v);
	case T_PATH:
		if ((*v || k->min) && (v[0] != '/' || strlen(v) > k->max))
			return reason(why, cap, -EINVAL, "must be an absolute path of at most %d "
			              "bytes%s", (int)k->max, k->min ? "" : " (or empty)");
		return set_str(f, v);
	case T_PWHASH:
		return (r = check_pwhash(v, why, cap)) < 0 ? r : set_str(f, v);
	case T_TEXT: {
		size_t n = strlen(v);
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)v[i] <= ' ' || (unsigned char)v[i] >= 0x7f)
				return reason(why, cap, -EINVAL, "printable ASCII without spaces only");
		if (n && (n < k->min || n > k->max))
			return reason(why, cap, -EINVAL, "must be empty or %d..%d characters",
			              (int)k->min, (int)k->max);
		return set_str(f, v);
	}
	case T_WINDOW: {
		cfg_window w;
		return (r = cfg_window_parse(v, &w, why, cap)) < 0 ? r : set_str(f, v);
	}
	case T_UINT:
	case T_SIZE:
	case T_RATE:
	case T_DUR:
		if ((r = parse_num(k->type, v, &u, why, cap)) < 0)
			return r;
		if (u < k->min || u > k->max || ((k->flags & K_POW2) && (u & (u - 1))))
			return reason(why, cap, -ERANGE, "must be %s%s to %s",
			              k->flags & K_POW2 ? "a power of two from " : "from ",
			              fmt_num(k->type, k->min, lo, sizeof(lo)),
			              fmt_num(k->type, k->max, hi, sizeof(hi)));
		put_uint(f, k->size, u);
		return 0;
	case T_BOOL:
		for (int i = 0; i < (int)BKS_ARRAY_SIZE(bool_word); i++) {
			if (!strcasecmp(v, bool_word[i])) {
				*(int *)f = i >= 4;
				return 0;
			}
		}
		return reason(why, cap, -EINVAL, "not a boolean (yes/no, true/false, on/off, 1/0)");
	case T_LEVEL:
		for (int i = 0; i < (int)BKS_ARRAY_SIZE(level_name); i++) {
			if (!strcasecmp(v, level_name[i])) {
				*(int *)f = i;
				return 0;
			}
		}
		return reason(why, cap, -EINVAL, "log level must be error, warn, info or debug");
	case T_FRAC:
		return parse_frac(v, f, why, cap);
	case T_OPTADDR:
		*(int *)AT(c, k->aux) = 0;
		if (*v && (r = parse_addr(v, f, why, cap)) < 0)
			return r;
		if (!*v)
			memset(f, 0, sizeof(cfg_addr));
		*(int *)AT(c, k->aux) = *v != '\0';
		return 0;
	default: /* lists */
		if (quoted)
			return *v ? add_item(c, k, v, why, cap) : 0;
		for (char *t = strtok_r(v, " \t", &save); t; t = strtok_r(NULL, " \t", &save))
			if ((r = add_item(c, k, t, why, cap)) < 0)
				return r;
		return 0;
	}
}

/* "HH:MM" (00:00..23:59; "24:00" as an end only) at s; *end past it. */
static int parse_hhmm(const char *s, const char **end, int as_end, uint16_t *out)
{
	uint64_t h, m;
	const char *p;
	if (parse_digits(s, &p, &h) < 0 || p - s > 2 || *p != ':' ||
	    parse_digits(p + 1, end, &m) < 0 || *end - (p + 1) != 2)
		return -EINVAL;
	if (m > 59 || h > 24 || (h == 24 && (m || !as_end)))
		return -ERANGE;
	*out = (uint16_t)(h * 60 + m);
	return 0;
}

int cfg_window_parse(const char *s, cfg_window *w, char *why, size_t cap)
{
	memset(w, 0, sizeof(*w));
	for (const char *p = s;;) {
		while (is_space(*p) || *p == ',')
			p++;
		if (!*p)
			return 0;
		const char *q;
		uint16_t a, b;
		int r = parse_hhmm(p, &q, 0, &a);
		if (r == 0 && *q != '-')
			r = -EINVAL;
		if (r == 0)
			r = parse_hhmm(q + 1, &q, 1, &b);
		if (r == 0 && *q && !is_space(*q) && *q != ',')
			r = -EINVAL;
		if (r < 0)
			return reason(why, cap, r, "'%.16s' is not a window HH:MM-HH:MM (local time, "
			              "00:00 to 24:00; 22:00-06:00 runs past midnight)", p);
		if (w->n == CFG_MAX_WINDOWS)
			return reason(why, cap, -ERANGE, "at most %d windows", CFG_MAX_WINDOWS);
		w->start[w->n] = a;
		w->end[w->n] = (uint16_t)(b % 1440);
		w->n++;
		p = q;
	}
}

int cfg_window_open(const cfg_window *w, time_t t, time_t *opens)
{
	struct tm tm;
	if (w->n == 0 || !localtime_r(&t, &tm))
		return 1;
	int m = tm.tm_hour * 60 + tm.tm_min, wait = 24 * 60;
	for (int i = 0; i < w->n; i++) {
		int a = w->start[i], b = w->end[i];
		if (a == b || (a < b ? m >= a && m < b : m >= a || m < b))
			return 1;
		wait = BKS_MIN(wait, (a - m + 24 * 60) % (24 * 60));
	}
	/* At a whole minute of local time (a change of daylight saving time within
	 * the wait moves it by that hour: the sender looks again every 200 ms). */
	*opens = t - tm.tm_sec + (time_t)wait * 60;
	return 0;
}

int cfg_set_key(bks_cfg *c, const char *section, const char *key, const char *value,
                int *reloadable, char *why, size_t cap)
{
	char v[CFG_MAX_LINE + 1];
	for (size_t i = 0; i < NKEYS; i++) {
		const ckey *k = &keys[i];
		if (strcmp(sect_name[k->sect], section) || strcmp(k->name, key))
			continue;
		if (strlen(value) > CFG_MAX_LINE)
			return reason(why, cap, -EINVAL, "value longer than %u bytes", CFG_MAX_LINE);
		for (const char *p = value; *p; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				return reason(why, cap, -EINVAL, "control character in the value");
		if (IS_LIST(k->type))
			clear_list(c, k);
		snprintf(v, sizeof(v), "%s", value);
		*reloadable = !(k->flags & K_RESTART);
		return apply(c, k, v, 0, why, cap);
	}
	return reason(why, cap, -ENOENT, "no key '%.64s' in section [%.16s]", key, section);
}

/* Fill c with the defaults; 0 or -ENOMEM. */
static int defaults(bks_cfg *c)
{
	char why[160], v[64];
	int ret = 0;
	memset(c, 0, sizeof(*c));
	for (size_t i = 0; i < NKEYS; i++) {
		snprintf(v, sizeof(v), "%s", keys[i].dflt);
		int r = apply(c, &keys[i], v, 0, why, sizeof(why));
		BKS_PANIC_IF(r < 0 && r != -ENOMEM, "config default [%s] %s: %s",
		             sect_name[keys[i].sect], keys[i].name, why);
		ret = r < 0 ? r : ret;
	}
	return ret;
}

void cfg_defaults(bks_cfg *c)
{
	(void)defaults(c);
}

void cfg_free(bks_cfg *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < NKEYS; i++) {
		if (IS_STR(keys[i].type))
			free(*(char **)AT(c, keys[i].off));
		else if (IS_LIST(keys[i].type))
			clear_list(c, &keys[i]);
	}
	for (int i = 0; i < c->nclients; i++) {
		free(c->clients[i].name);
		free(c->clients[i].secret);
	}
	free(c->clients);
	for (int i = 0; i < c->nexports; i++) {
		free(c->exports[i].name);
		free(c->exports[i].path);
		free(c->exports[i].nets);
	}
	free(c->exports);
	free(c->source);
	free(c->warning);
	memset(c, 0, sizeof(*c));
}

/* ---- lines ---- */

typedef struct pstate {
	bks_cfg *c;
	bks_err *e;
	const char *name;
	int line;          /* 0: a message about the whole file */
	int sect;          /* -1 before the first header */
	int xline;         /* line of the current [export NAME] header */
	int seen[NKEYS];   /* line where the file set each key, 0 = still the default */
} pstate;

static int perr(pstate *ps, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int perr(pstate *ps, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = ini_vfail(ps->e, ps->name, (unsigned)ps->line, code, fmt, ap);
	va_end(ap);
	return r;
}

/* Case-insensitive edit distance, or 1 when one word is a prefix (>= 3 chars) of the
 * other ('strip' for 'strip_size'). Words over 64 bytes are "far". */
static size_t closeness(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), row[65];
	if (BKS_MIN(la, lb) >= 3 && !strncasecmp(a, b, BKS_MIN(la, lb)))
		return 1;
	if (la > 64 || lb > 64)
		return 1000;
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j];
			int ne = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);
			row[j] = BKS_MIN(BKS_MIN(row[j - 1] + 1, up + 1), diag + (size_t)ne);
			diag = up;
		}
	}
	return row[lb];
}

/* Did-you-mean: the closest key of sect (or section name when sect < 0), if close. */
static const char *suggest(const char *word, int sect)
{
	const char *best = NULL;
	size_t bd = (size_t)-1, n = sect < 0 ? S_COUNT : NKEYS;
	for (size_t i = 0; i < n; i++) {
		const char *cand = sect < 0 ? sect_name[i] : keys[i].name;
		size_t d = sect < 0 || keys[i].sect == sect ? closeness(word, cand) : (size_t)-1;
		if (d < bd) {
			bd = d;
			best = cand;
		}
	}
	size_t lim = strlen(word) <= 3 ? 1 : BKS_MAX((size_t)2, strlen(word) / 3);
	return bd <= lim ? best : NULL;
}

static int find_key(int sect, const char *name)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (keys[i].sect == sect && !strcmp(keys[i].name, name))
			return (int)i;
	return -1;
}

/* ---- NFS exports: [export NAME] sections ---- */

static uint32_t export_id(const char *name)
{
	uint32_t h = 2166136261u;
	for (const char *p = name; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	return h ? h : 1;
}

static int new_export(pstate *ps, const char *name)
{
	bks_cfg *c = ps->c;
	cfg_export *nl;
	if (check_name(name, 1, 64))
		return perr(ps, -EINVAL, "[export NAME]: the name is 1..64 letters, digits, '-', "
		            "'_' or '.' (got '%.64s')", name);
	for (int i = 0; i < c->nexports; i++)
		if (!strcmp(c->exports[i].name, name) || c->exports[i].id == export_id(name))
			return perr(ps, -EINVAL, "[export %s] %s", name,
			            !strcmp(c->exports[i].name, name) ? "defined twice" :
			            "has the same id as another export: rename one");
	if (c->nexports >= CFG_MAX_EXPORTS)
		return perr(ps, -ERANGE, "more than %d exports", CFG_MAX_EXPORTS);
	if (!(nl = realloc(c->exports, sizeof(*nl) * (size_t)(c->nexports + 1))))
		return perr(ps, -ENOMEM, "out of memory");
	c->exports = nl;
	nl += c->nexports++;
	memset(nl, 0, sizeof(*nl));
	nl->id = export_id(name);
	nl->anonuid = nl->anongid = 65534;
	nl->secure = 1;
	nl->name = strdup(name);
	nl->path = strdup("");
	ps->sect = S_EXPORT;
	ps->xline = ps->line;
	return nl->name && nl->path ? 0 : perr(ps, -ENOMEM, "out of memory");
}

static int parse_net(const char *s, cfg_net *n)
{
	char host[64];
	const char *sl = strchr(s, '/');
	size_t hl = sl ? (size_t)(sl - s) : strlen(s);
	uint64_t bits;
	if (hl >= sizeof(host))
		return -EINVAL;
	memcpy(host, s, hl);
	host[hl] = 0;
	memset(n, 0, sizeof(*n));
	if (inet_pton(AF_INET, host, n->addr) == 1)
		n->family = CFG_AF_INET;
	else if (inet_pton(AF_INET6, host, n->addr) == 1)
		n->family = CFG_AF_INET6;
	else
		return -EINVAL;
	unsigned maxb = n->family == CFG_AF_INET ? 32 : 128;
	bits = maxb;
	if (sl) {
		const char *e;
		if (parse_digits(sl + 1, &e, &bits) != 0 || *e || bits > maxb)
			return -EINVAL;
	}
	n->bits = (uint8_t)bits;
	for (unsigned i = 0; i < 16; i++) /* host bits off: the network as written */
		if (i * 8 >= bits)
			n->addr[i] = 0;
		else if (i * 8 + 8 > bits)
			n->addr[i] &= (uint8_t)(0xff << (8 - (bits - i * 8)));
	return 0;
}

int cfg_export_allows(const cfg_export *x, int family, const uint8_t *addr)
{
	for (int i = 0; i < x->nnets; i++) {
		const cfg_net *n = &x->nets[i];
		if (n->family != family)
			continue;
		unsigned full = n->bits / 8, rest = n->bits % 8;
		if (memcmp(n->addr, addr, full))
			continue;
		if (rest && ((addr[full] ^ n->addr[full]) & (0xff00 >> rest) & 0xff))
			continue;
		return 1;
	}
	return 0;
}

static int set_export(pstate *ps, const char *key, char *val)
{
	cfg_export *x = &ps->c->exports[ps->c->nexports - 1];
	uint64_t v;
	const char *e;
	if (!strcmp(key, "path")) {
		if (val[0] != '/' || strlen(val) > 4096)
			return perr(ps, -EINVAL, "[export %s] path = '%.64s': an absolute namespace "
			            "path", x->name, val);
		return set_str(&x->path, val) < 0 ? perr(ps, -ENOMEM, "out of memory") : 0;
	}
	if (!strcmp(key, "access")) {
		if (strcmp(val, "rw") && strcmp(val, "ro"))
			return perr(ps, -EINVAL, "[export %s] access = '%.16s': rw or ro", x->name, val);
		x->rw = !strcmp(val, "rw");
		return 0;
	}
	if (!strcmp(key, "squash")) {
		static const char *const w[] = {"root_squash", "all_squash", "no_root_squash"};
		for (int i = 0; i < 3; i++)
			if (!strcmp(val, w[i])) {
				x->squash = i;
				return 0;
			}
		return perr(ps, -EINVAL, "[export %s] squash = '%.16s': root_squash, all_squash "
		            "or no_root_squash", x->name, val);
	}
	if (!strcmp(key, "anonuid") || !strcmp(key, "anongid")) {
		if (parse_digits(val, &e, &v) != 0 || *e || v > UINT32_MAX)
			return perr(ps, -ERANGE, "[export %s] %s = '%.16s': a number 0..4294967295",
			            x->name, key, val);
		*(key[4] == 'u' ? &x->anonuid : &x->anongid) = (uint32_t)v;
		return 0;
	}
	if (!strcmp(key, "secure") || !strcmp(key, "auth_none")) {
		for (int i = 0; i < 8; i++)
			if (!strcasecmp(val, bool_word[i])) {
				*(key[0] == 's' ? &x->secure : &x->auth_none) = i >= 4;
				return 0;
			}
		return perr(ps, -EINVAL, "[export %s] %s = '%.16s': yes or no", x->name, key, val);
	}
	if (!strcmp(key, "clients")) {
		char *save = NULL;
		for (char *t = strtok_r(val, ", \t", &save); t; t = strtok_r(NULL, ", \t", &save)) {
			cfg_net n, *nl;
			if (parse_net(t, &n) < 0)
				return perr(ps, -EINVAL, "[export %s] clients: '%.64s' is not an address "
				            "or ADDRESS/BITS network", x->name, t);
			if (x->nnets >= CFG_MAX_NETS)
				return perr(ps, -ERANGE, "[export %s] clients: at most %d networks",
				            x->name, CFG_MAX_NETS);
			if (!(nl = realloc(x->nets, sizeof(*nl) * (size_t)(x->nnets + 1))))
				return perr(ps, -ENOMEM, "out of memory");
			x->nets = nl;
			nl[x->nnets++] = n;
		}
		return 0;
	}
	return perr(ps, -EINVAL, "unknown key '%.64s' in section [export %s] (path, access, "
	            "clients, squash, anonuid, anongid, secure, auth_none)", key, x->name);
}

/* A section header; nm is its name (trimmed by the lexer). */
static int set_section(pstate *ps, const char *nm)
{
	if (!strncmp(nm, "export", 6) && (is_space(nm[6]) || !nm[6]))
		return new_export(ps, nm + 6 + strspn(nm + 6, " \t"));
	for (int s = 0; s < S_COUNT; s++) {
		if (!strcmp(nm, sect_name[s])) {
			ps->sect = s;
			return 0;
		}
	}
	const char *sg = suggest(nm, -1);
	return perr(ps, -EINVAL, "unknown section [%.64s]%s%s%s", nm,
	            sg ? " (did you mean [" : "", sg ? sg : "", sg ? "]?)" : "");
}

static int set_client(pstate *ps, const char *name, const char *secret)
{
	bks_cfg *c = ps->c;
	cfg_client *nl;
	if (check_name(name, 1, 64))
		return perr(ps, -EINVAL, "[clients] '%.64s': a client name is 1..64 letters, "
		            "digits, '-', '_' or '.'", name);
	for (int i = 0; i < c->nclients; i++)
		if (!strcmp(c->clients[i].name, name))
			return perr(ps, -EINVAL, "[clients] duplicate client '%s'", name);
	if (c->nclients >= CFG_MAX_CLIENTS)
		return perr(ps, -ERANGE, "[clients] more than %d clients", CFG_MAX_CLIENTS);
	if (!hex_ok(secret, 32, 128, '\0', NULL))
		return perr(ps, -EINVAL, "[clients] %s: the secret must be 32..128 hex digits, an "
		            "even number (got %zu characters)", name, strlen(secret));
	if (!(nl = realloc(c->clients, sizeof(*nl) * (size_t)(c->nclients + 1))))
		return perr(ps, -ENOMEM, "out of memory");
	c->clients = nl;
	nl += c->nclients++;
	nl->name = strdup(name);
	nl->secret = strdup(secret);
	return nl->name && nl->secret ? 0 : perr(ps, -ENOMEM, "out of memory");
}

/* key = val (the lexer's; quoted: val was written in quotes). */
static int set_key(pstate *ps, const char *key, char *val, int quoted)
{
	char why[256], shown[52];
	int r, ki;

	if (ps->sect < 0)
		return perr(ps, -EINVAL, "'%.64s' outside any section (put a [section] line "
		            "above it)", key);
	if (ps->sect == S_CLIENTS)
		return set_client(ps, key, val);
	if (ps->sect == S_EXPORT)
		return set_export(ps, key, val);
	if ((ki = find_key(ps->sect, key)) < 0) {
		for (int s = 0; s < S_COUNT; s++)
			if (find_key(s, key) >= 0)
				return perr(ps, -EINVAL, "unknown key '%s' in section [%s] (it belongs "
				            "in [%s])", key, sect_name[ps->sect], sect_name[s]);
		const char *sg = suggest(key, ps->sect);
		return perr(ps, -EINVAL, "unknown key '%.64s' in section [%s]%s%s%s", key,
		            sect_name[ps->sect], sg ? " (did you mean '" : "", sg ? sg : "",
		            sg ? "'?)" : "");
	}
	const ckey *k = &keys[ki];
	if (ps->seen[ki] && !IS_LIST(k->type))
		return perr(ps, -EINVAL, "duplicate key '%s' in section [%s] (first set on line "
		            "%d)", key, sect_name[ps->sect], ps->seen[ki]);
	if (!ps->seen[ki] && IS_LIST(k->type))
		clear_list(ps->c, k); /* the file's first mention replaces the default */
	ps->seen[ki] = ps->line;
	snprintf(shown, sizeof(shown), "%.48s%s", val, strlen(val) > 48 ? "..." : "");
	if ((r = apply(ps->c, k, val, quoted, why, sizeof(why))) == -ENOMEM)
		return perr(ps, r, "out of memory");
	if (r < 0 && (k->flags & K_SECRET))
		return perr(ps, r, "[%s] %s: %s", sect_name[k->sect], k->name, why);
	if (r < 0)
		return perr(ps, r, "[%s] %s = '%s': %s", sect_name[k->sect], k->name, shown, why);
	return 0;
}

/* The line of the last of keys a, b (of sect) the file set; 0 when neither. */
static int last_line(const pstate *ps, int sect, const char *a, const char *b)
{
	return BKS_MAX(ps->seen[find_key(sect, a)], ps->seen[find_key(sect, b)]);
}

/* Rules between keys, reported at the line of the last key involved. */
static int check_cross(pstate *ps)
{
	bks_cfg *c = ps->c;
	char a[24], b[24], d[24];

	if (!(c->chunk_min < c->chunk_avg && c->chunk_avg < c->chunk_max)) {
		ps->line = BKS_MAX(last_line(ps, S_STORE, "chunk_min", "chunk_avg"),
		                   last_line(ps, S_STORE, "chunk_max", "chunk_max"));
		return perr(ps, -EINVAL, "[store] chunk sizes must be chunk_min < chunk_avg < "
		            "chunk_max (they are %s, %s, %s)", fmt_num(T_SIZE, c->chunk_min, a, 24),
		            fmt_num(T_SIZE, c->chunk_avg, b, 24), fmt_num(T_SIZE, c->chunk_max, d, 24));
	}
	/* 0 is unlimited for both (storage/array_bg.c), so a cap needs a nonzero floor. */
	if (c->bg_max_rate && (!c->bg_min_rate || c->bg_min_rate > c->bg_max_rate)) {
		ps->line = last_line(ps, S_ARRAY, "bg_min_rate", "bg_max_rate");
		return perr(ps, -EINVAL, "[array] bg_min_rate (%s, 0 = unlimited) must not exceed "
		            "bg_max_rate (%s)", fmt_num(T_RATE, c->bg_min_rate, a, 24),
		            fmt_num(T_RATE, c->bg_max_rate, b, 24));
	}
	if (!c->tls_cert[0] != !c->tls_key[0]) {
		ps->line = last_line(ps, S_WEB, "tls_cert", "tls_key");
		return perr(ps, -EINVAL, "[web] tls_cert and tls_key go together (set both or "
		            "neither)");
	}
	/* CHAP: a user and a secret go together; the target's own (mutual) secret only
	 * with the initiator's, and never the same (RFC 7143 §12.1.3: a shared secret
	 * would let one side's answer be replayed as the other's). */
	if (!c->iscsi_chap_user[0] != !c->iscsi_chap_secret[0]) {
		ps->line = last_line(ps, S_ISCSI, "chap_user", "chap_secret");
		return perr(ps, -EINVAL, "[iscsi] chap_user and chap_secret go together (set both "
		            "or neither)");
	}
	if (!c->iscsi_mutual_user[0] != !c->iscsi_mutual_secret[0] ||
	    (c->iscsi_mutual_secret[0] && !c->iscsi_chap_secret[0])) {
		ps->line = last_line(ps, S_ISCSI, "mutual_user", "mutual_secret");
		return perr(ps, -EINVAL, "[iscsi] mutual_user and mutual_secret go together, and "
		            "need chap_user and chap_secret");
	}
	if (c->iscsi_mutual_secret[0] && !strcmp(c->iscsi_mutual_secret, c->iscsi_chap_secret)) {
		ps->line = last_line(ps, S_ISCSI, "mutual_secret", "chap_secret");
		return perr(ps, -EINVAL, "[iscsi] mutual_secret must differ from chap_secret");
	}
	if (c->iscsi_first_burst > c->iscsi_max_burst) {
		ps->line = last_line(ps, S_ISCSI, "first_burst", "max_burst");
		return perr(ps, -EINVAL, "[iscsi] first_burst must not exceed max_burst");
	}
	for (int i = 0; i < c->nexports; i++)
		if (!c->exports[i].path[0])
			return perr(ps, -EINVAL, "[export %s] has no path", c->exports[i].name);
	ps->line = 0;
	if (!c->ndisks && !c->demo)
		return perr(ps, -EINVAL, "[array] disks: no disks listed (list the member disks, "
		            "or set demo = yes in [daemon])");
	return 0;
}

int cfg_parse(const char *text, size_t len, const char *name, bks_cfg *out, bks_err *e)
{
	pstate ps = {.c = out, .e = e, .name = name ? name : "config", .sect = -1};
	ini *lx = NULL;
	int r;

	if (defaults(out) < 0 || !(out->source = strdup(ps.name)) ||
	    !(lx = malloc(sizeof(*lx)))) {
		r = perr(&ps, -ENOMEM, "out of memory");
		goto fail;
	}
	if (len > CFG_MAX_FILE) {
		r = perr(&ps, -EFBIG, "%zu bytes, more than the %u a config file may have", len,
		         CFG_MAX_FILE);
		goto fail;
	}
	ini_init(lx, text, len, ps.name, e);
	while ((r = ini_next(lx)) > 0) {
		ps.line = (int)lx->line;
		r = r == INI_SECTION ? set_section(&ps, lx->name)
		                     : set_key(&ps, lx->key, lx->value, lx->quoted);
		if (r < 0)
			goto fail;
	}
	if (r == 0 && (r = check_cross(&ps)) == 0)
		goto wipe;
fail:
	cfg_free(out);
wipe:
	ini_wipe(lx);
	free(lx);
	return r;
}

int cfg_load(const char *path, bks_cfg *out, bks_err *e)
{
	char *buf;
	size_t len;
	mode_t mode;
	int r;

	memset(out, 0, sizeof(*out));
	if ((r = ini_read_file(path, CFG_MAX_FILE, &buf, &len, &mode, e)) < 0)
		return r;
	if ((r = cfg_parse(buf, len, path, out, e)) < 0)
		goto free_buf;
	/* The daemon logs this; the file still loads (refusing would stop a restart). */
	if ((out->nclients || out->napi_tokens || out->admin_password[0]) &&
	    (mode & (S_IRGRP | S_IROTH))) {
		char *w;
		if (asprintf(&w, "%s holds secrets and is readable by group or others (mode "
		             "%04o): chmod 600 it", path, (unsigned)(mode & 07777)) < 0) {
			cfg_free(out);
			r = bks_fail(e, -ENOMEM, "%s: out of memory", path);
		} else {
			out->warning = w;
		}
	}
free_buf:
	explicit_bzero(buf, len);
	free(buf);
	return r;
}

/* ---- reload ---- */

static const char *nz(const char *s) { return s ? s : ""; }

/* Lists compare as sets: the order of disks or addresses in the file means nothing
 * (items within one list are distinct). */
static int list_same(const ckey *k, const bks_cfg *a, const bks_cfg *b)
{
	int na = *(const int *)CAT(a, k->aux), nb = *(const int *)CAT(b, k->aux);
	for (int i = 0; na == nb && i < na; i++) {
		int found = 0;
		for (int j = 0; j < nb && !found; j++)
			found = k->type == T_ADDRS ?
			        addr_eq((cfg_addr *)get_list(a, k) + i, (cfg_addr *)get_list(b, k) + j) :
			        !strcmp(((char **)get_list(a, k))[i], ((char **)get_list(b, k))[j]);
		if (!found)
			return 0;
	}
	return na == nb;
}

static int key_same(const ckey *k, const bks_cfg *a, const bks_cfg *b)
{
	const void *fa = CAT(a, k->off), *fb = CAT(b, k->off);
	if (IS_STR(k->type))
		return !strcmp(nz(*(char *const *)fa), nz(*(char *const *)fb));
	if (IS_LIST(k->type))
		return list_same(k, a, b);
	if (k->type == T_FRAC)
		return *(const double *)fa == *(const double *)fb;
	if (k->type == T_OPTADDR)
		return *(const int *)CAT(a, k->aux) == *(const int *)CAT(b, k->aux) &&
		       addr_eq(fa, fb);
	return get_uint(fa, k->size) == get_uint(fb, k->size);
}

static int clients_same(const bks_cfg *a, const bks_cfg *b)
{
	for (int i = 0; a->nclients == b->nclients && i < a->nclients; i++) {
		int found = 0;
		for (int j = 0; j < b->nclients && !found; j++)
			found = !strcmp(a->clients[i].name, b->clients[j].name) &&
			        !strcmp(a->clients[i].secret, b->clients[j].secret);
		if (!found)
			return 0;
	}
	return a->nclients == b->nclients;
}

static int nets_same(const cfg_export *a, const cfg_export *b)
{
	return a->nnets == b->nnets &&
	       (!a->nnets || !memcmp(a->nets, b->nets, sizeof(*a->nets) * (size_t)a->nnets));
}

static int exports_same(const bks_cfg *a, const bks_cfg *b)
{
	if (a->nexports != b->nexports)
		return 0;
	for (int i = 0; i < a->nexports; i++) {
		const cfg_export *x = &a->exports[i], *y = &b->exports[i];
		if (strcmp(x->name, y->name) || strcmp(x->path, y->path) || x->rw != y->rw ||
		    x->squash != y->squash || x->anonuid != y->anonuid ||
		    x->anongid != y->anongid || x->secure != y->secure ||
		    x->auth_none != y->auth_none || !nets_same(x, y))
			return 0;
	}
	return 1;
}

int cfg_reload_diff(const bks_cfg *old, const bks_cfg *new, char *what, size_t cap)
{
	size_t used = 0;
	int changed = !clients_same(old, new) + !exports_same(old, new), full = 0;
	if (cap)
		what[0] = '\0';
	for (size_t i = 0; i < NKEYS; i++) {
		const ckey *k = &keys[i];
		char nm[48];
		if (key_same(k, old, new))
			continue;
		if (!(k->flags & K_RESTART)) {
			changed++;
			continue;
		}
		int n = snprintf(nm, sizeof(nm), "%s%s.%s", used ? ", " : "", sect_name[k->sect],
		                 k->name);
		if (!full && used + (size_t)n + 4 <= cap) { /* keep room for "..." */
			memcpy(what + used, nm, (size_t)n + 1);
			used += (size_t)n;
		} else if (!full && cap >= 4) {
			memcpy(what + BKS_MIN(used, cap - 4), "...", 4);
			full = 1;
		}
	}
	return changed;
}

/* Move the value of every key SIGHUP applies (and [clients]) from nc into run,
 * leaving run's old values in nc for cfg_free. Restart keys stay as they are. */
void cfg_take_reloadable(bks_cfg *run, bks_cfg *nc)
{
	char tmp[sizeof(bks_cfg)];
	for (size_t i = 0; i < NKEYS; i++) {
		const ckey *k = &keys[i];
		if (k->flags & K_RESTART)
			continue;
		memcpy(tmp, AT(run, k->off), k->size);
		memcpy(AT(run, k->off), AT(nc, k->off), k->size);
		memcpy(AT(nc, k->off), tmp, k->size);
		if (k->aux) { /* a list's count, or T_OPTADDR's "enabled" (restart: not here) */
			int t = *(int *)AT(run, k->aux);
			*(int *)AT(run, k->aux) = *(int *)AT(nc, k->aux);
			*(int *)AT(nc, k->aux) = t;
		}
	}
	cfg_client *cl = run->clients;
	int ncl = run->nclients;
	run->clients = nc->clients;
	run->nclients = nc->nclients;
	nc->clients = cl;
	nc->nclients = ncl;
	cfg_export *xl = run->exports;
	int nx = run->nexports;
	run->exports = nc->exports;
	run->nexports = nc->nexports;
	nc->exports = xl;
	nc->nexports = nx;
}
