/* daemon/config.h: bkstord's configuration file (INI-style), parsed into a plain
 * typed struct. Pure: no I/O besides cfg_load() reading the one file; no globals.
 *
 * Every key lives in one table in config.c (section, name, type, default, bounds,
 * whether SIGHUP may apply it); that table drives parsing, defaults, cfg_free()
 * and cfg_reload_diff(), and docs/config.md lists the same keys. Keep the three in
 * step.
 *
 * Errors stop the parse at the first problem and name the place:
 *   "/etc/bkstor/bkstord.conf:12: unknown key 'strip' in section [array] (did you
 *    mean 'strip_size'?)"
 * Secrets (client secrets, API tokens, the admin password hash) are never echoed in
 * an error message.
 *
 * Reload (SIGHUP): parse a new bks_cfg, call cfg_reload_diff(old, new) to learn which
 * changed keys need a restart (log them, keep the old values of those), apply the
 * rest (cfg_take_reloadable), then cfg_free() the one no longer used. Restart-only
 * keys: every [array] key but the pacing ones (name, disks, spares, strip_size,
 * io_timeout_ms, io_err_limit, cksum_err_limit, err_window; bg_min_rate, bg_max_rate
 * and fg_idle_ms reload),
 * store.chunk_min/avg/max, store.zstd_level, store.zstd_level_busy,
 * store.meta_cache, store.commit_bytes, native.listen, api.socket, web.listen,
 * web.tls_cert, web.tls_key, daemon.threads, daemon.pidfile, daemon.demo.
 */
#ifndef BKS_CONFIG_H
#define BKS_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "common/bks.h"

#define CFG_DEFAULT_PATH "/etc/bkstor/bkstord.conf"
#define CFG_MAX_FILE (1u << 20)  /* bytes in a config file */
#define CFG_MAX_LINE 4096u       /* bytes in one line, without its newline (common/ini.h) */
#define CFG_MAX_PATH 1024u       /* bytes in a path value */
#define CFG_HOST_MAX 48          /* "255.255.255.255", an IPv6 literal, "localhost" */

/* Upper bounds on list lengths (the array's own limits for disks and spares). */
#define CFG_MAX_DISKS 32
#define CFG_MAX_SPARES 16
#define CFG_MAX_LISTEN 16
#define CFG_MAX_CLIENTS 1024
#define CFG_MAX_TOKENS 64
#define CFG_MAX_EXPORTS 64
#define CFG_MAX_NETS 64

enum cfg_log_level { CFG_LOG_ERROR = 0, CFG_LOG_WARN, CFG_LOG_INFO, CFG_LOG_DEBUG };

/* A listen address. family: CFG_AF_INET (dotted quad), CFG_AF_INET6 (written
 * "[...]:port" in the file; host holds the canonical text without brackets), or
 * CFG_AF_LOCALHOST ("localhost": the daemon binds the loopback address of each
 * family it has). */
enum cfg_af { CFG_AF_INET = 4, CFG_AF_INET6 = 6, CFG_AF_LOCALHOST = 1 };
typedef struct cfg_addr {
	char host[CFG_HOST_MAX];
	uint16_t port;           /* 1..65535 */
	uint8_t family;          /* enum cfg_af */
} cfg_addr;

/* [repl] window: up to CFG_MAX_WINDOWS daily periods of local time, minutes after
 * midnight; end < start wraps past midnight ("22:00-06:00"); start == end is the
 * whole day. n == 0: always open. */
#define CFG_MAX_WINDOWS 16
typedef struct cfg_window {
	int n;
	uint16_t start[CFG_MAX_WINDOWS], end[CFG_MAX_WINDOWS]; /* 0..1439 */
} cfg_window;

/* One native-protocol client: [clients] NAME = SECRET. */
typedef struct cfg_client {
	char *name;              /* letters, digits, '-', '_', '.'; 1..64 chars */
	char *secret;            /* 32..128 hex digits, even count, as written */
} cfg_client;

/* A network of an NFS export's clients list: "10.0.0.0/8", "192.168.1.7", "::1/128". */
typedef struct cfg_net {
	uint8_t family;          /* CFG_AF_INET or CFG_AF_INET6 */
	uint8_t bits;            /* prefix length */
	uint8_t addr[16];        /* network bytes (host bits zero) */
} cfg_net;

enum cfg_squash { CFG_ROOT_SQUASH = 0, CFG_ALL_SQUASH = 1, CFG_NO_ROOT_SQUASH = 2 };

/* One NFS export: [export NAME] (docs/config.md "NFS exports"). */
typedef struct cfg_export {
	char *name;              /* 1..64 letters, digits, '-', '_', '.' */
	char *path;              /* namespace path, absolute; required */
	uint32_t id;             /* from the name (FNV-1a, never 0): file handles carry it */
	int rw;                  /* access = rw | ro (default ro) */
	int squash;              /* enum cfg_squash (default root_squash) */
	uint32_t anonuid, anongid; /* 65534 */
	int secure;              /* yes: clients must use a source port < 1024 */
	int auth_none;           /* no: AUTH_NONE calls are refused (AUTH_SYS only) */
	cfg_net *nets;           /* clients = CIDR list; none: nobody may mount */
	int nnets;
} cfg_export;

/* Does addr (4 or 16 bytes) fall in one of the export's networks? */
int cfg_export_allows(const cfg_export *x, int family, const uint8_t *addr);

/* The whole configuration. Sizes and rates are in bytes (bytes/s), durations in
 * seconds unless the name says _ms. After cfg_defaults() or a successful parse every
 * char * is non-NULL ("" when unset) and every list pointer is NULL when its count is
 * 0. All strings and lists are owned by the struct: cfg_free() frees them, so copy
 * what must outlive it. */
typedef struct bks_cfg {
	/* [array]: used when the array is created or imported. */
	char *array_name;         /* "bkstor"; letters, digits, '-', '_', '.', 1..63 */
	char **disks;             /* none; 1..32 absolute paths, required unless demo */
	int ndisks;
	char **spares;            /* none; 0..16 absolute paths, none also in disks */
	int nspares;
	uint32_t strip_size;      /* 256 KiB; power of two, 64 KiB..1 MiB (at create) */
	uint32_t io_timeout_ms;   /* 30000; 0 (never)..3600000 */
	uint32_t io_err_limit;    /* 10; 1..1000000 errors within err_window_s */
	uint32_t cksum_err_limit; /* 10; 1..1000000 */
	uint32_t err_window_s;    /* 600 (10 min); 1 s..7 days */
	uint64_t bg_min_rate;     /* 50 MiB/s; 0 = unlimited */
	uint64_t bg_max_rate;     /* 0 = unlimited; else >= bg_min_rate */
	uint32_t fg_idle_ms;      /* 500; 1..600000 */

	/* [store]: chunk sizes are fixed when the store is created. */
	uint32_t chunk_min;       /* 4 KiB; 64 B..1 MiB, < chunk_avg */
	uint32_t chunk_avg;       /* 16 KiB; power of two, < chunk_max */
	uint32_t chunk_max;       /* 64 KiB; <= 1 MiB */
	int zstd_level;           /* 3; 0 (no compression)..19 */
	int zstd_level_busy;      /* 1; a native PUT's level under pressure (0..19; 0:
	                           * raw now, compressed by the background pass) */
	uint64_t meta_cache;      /* 16 MiB; 1 MiB..1 TiB */
	uint32_t commit_interval_s; /* 5; 1 s..1 h */
	uint64_t commit_bytes;    /* 1 GiB; 0 (interval only)..1 TiB */
	double gc_min_live;       /* 0.5; 0..1, at most 6 decimals */
	double gc_auto_free;      /* 0.25: a collection starts by itself when the free rows
	                           * fall below this fraction (0: never) */

	/* [native]: the streaming protocol. */
	cfg_addr *native_listen;  /* 127.0.0.1:7070; an empty list = no listener */
	int nnative_listen;
	uint32_t max_connections; /* 256; 1..65536 */
	uint32_t idle_timeout_s;  /* 60; 1 s..1 day */
	uint32_t max_frame;       /* 4 MiB; 64 KiB..64 MiB */
	uint64_t rate_limit;      /* 0 = none; bytes/s per connection */
	uint32_t auth_fail_limit; /* 5; 1..10000 failed logins per source per minute */
	uint32_t auth_timeout_s;  /* 10; 1 s..10 min from accept to a complete AUTH */
	uint32_t frame_timeout_s; /* 60; 1 s..1 day for one frame once its first byte came */
	uint32_t send_timeout_s;  /* 60; 1 s..1 day for the peer to take one reply frame */
	uint32_t max_unauth;      /* 64; 1..65536 connections not yet logged in */
	uint32_t max_unauth_per_ip; /* 8; 1..65536 of those per source address */

	/* [nfs]: the NFSv3 server (restart keys), and its exports (reloadable). */
	int nfs_enabled;          /* no */
	cfg_addr nfs_listen;      /* 0.0.0.0:2049 */
	int nfs_listen_set;       /* (T_OPTADDR's flag; enable decides) */
	uint32_t nfs_mount_port;  /* 20048; 1..65535 */
	uint32_t nfs_portmap_port;/* 111; 0 = no portmapper */
	uint32_t nfs_max_connections; /* 256; 1..4096 */
	uint32_t nfs_wsize;       /* 1 MiB; 4 KiB..1 MiB */
	uint32_t nfs_rsize;       /* 1 MiB; 4 KiB..1 MiB */
	uint64_t nfs_stage_file;  /* 64 MiB; unstable bytes staged per file */
	uint64_t nfs_stage_total; /* 256 MiB; ... in all */
	char *nfs_handle_key;     /* ""; file of the handle key (default: beside the config) */
	cfg_export *exports;
	int nexports;

	/* [iscsi]: the iSCSI target (docs/iscsi.md). */
	int iscsi_enabled;        /* no */
	cfg_addr iscsi_listen;    /* 0.0.0.0:3260 */
	int iscsi_listen_set;
	char *iscsi_iqn_prefix;   /* ""; iqn.2026-12.io.bkstor:<array name> */
	uint32_t iscsi_max_connections; /* 64; 1..4096 (one per session) */
	uint32_t iscsi_max_recv_dsl;    /* 256 KiB; our MaxRecvDataSegmentLength */
	uint32_t iscsi_max_burst;       /* 1 MiB; 256 KiB..8 MiB */
	uint32_t iscsi_first_burst;     /* 256 KiB; 64 KiB..8 MiB, <= max_burst */
	uint64_t iscsi_max_buffer;      /* 64 MiB; write data a connection may hold */
	uint32_t iscsi_queue_depth;     /* 64; commands in the CmdSN window */
	uint32_t iscsi_login_timeout_s; /* 15 s: accept to full feature phase */
	uint32_t iscsi_nop_interval_s;  /* 30 s; 0 = no NOP-In pings */
	char *iscsi_chap_user;    /* ""; with chap_secret: CHAP required */
	char *iscsi_chap_secret;  /* ""; 12..255 characters */
	char *iscsi_mutual_user;  /* ""; the target's name in mutual CHAP */
	char *iscsi_mutual_secret;/* "" */
	/* [repl]: replication to a twin appliance (docs/config.md "[repl]"). */
	int repl_enabled;         /* no: no listener, no sending */
	cfg_addr repl_listen;     /* 0.0.0.0:7072: where the twin side listens (TLS 1.3) */
	int repl_listen_set;      /* (T_OPTADDR's flag) */
	cfg_addr repl_peer;       /* none: the twin this appliance sends its files to */
	int repl_peer_set;        /* a peer is set: this appliance is a source */
	uint64_t repl_bwlimit;    /* 0 = none; bytes/s the sender puts on the wire */
	uint32_t repl_connections; /* 4; 1..8 files in flight, one connection each */
	uint32_t repl_delete_delay_s; /* 168 h; 0..365 days before the twin applies a delete */
	char *repl_window;        /* "": always; "22:00-06:00 12:00-13:00": when to send */
	uint32_t repl_lag_alert_s;    /* 0 = none; an event when the lag passes this */
	uint64_t repl_lag_alert_bytes; /* 0 = none; the same, in bytes not yet on the twin */
	char **repl_paths;        /* none = the whole namespace; absolute paths */
	int nrepl_paths;
	uint32_t repl_repair_interval_s; /* 60 s; 1 s..1 day: an idle source asks the twin
	                          * this often for the chunks it wants (repair) */

	/* [clients] */
	cfg_client *clients;      /* none (the native listener then accepts nobody) */
	int nclients;

	/* [api] */
	char *api_socket;         /* "/run/bkstor/api.sock"; absolute, < 108 bytes */

	/* [web] */
	int web_enabled;          /* 1; 0 when listen is empty */
	cfg_addr web_listen;      /* 127.0.0.1:8080; zeroed when disabled */
	char *tls_cert;           /* ""; absolute path; both or neither with tls_key */
	char *tls_key;            /* "" */
	char *admin_password;     /* ""; pbkdf2-sha256$ITER$SALT_HEX$HASH_HEX */
	uint32_t session_timeout_s; /* 43200 (12 h); 1 min..30 days */
	char **api_tokens;        /* none; read-only tokens, 32..128 hex digits */
	int napi_tokens;

	/* [log] */
	int log_level;            /* CFG_LOG_INFO; enum cfg_log_level */

	/* [daemon] */
	uint32_t threads;         /* 0 = one per core; 0..1024 */
	char *pidfile;            /* "" = none; absolute path */
	int demo;                 /* 0; 1 lets the daemon run without [array] disks */

	/* Not keys. */
	char *source;             /* name_for_errors, or the path given to cfg_load */
	char *warning;            /* cfg_load: NULL, or a line to log as a warning */
} bks_cfg;

/* Fill c with the defaults above (c's previous contents are not freed). On memory
 * exhaustion some strings may be NULL; cfg_parse() reports that as -ENOMEM. */
void cfg_defaults(bks_cfg *c);

/* Parse len bytes of text (need not be NUL-terminated; NUL bytes are an error).
 * name_for_errors (NULL: "config") prefixes every message ("NAME:LINE: reason", or
 * "NAME: reason" for a rule about the whole file). On success *out holds
 * the configuration (call cfg_free); on error *out is zeroed (cfg_free is a no-op on
 * it) and the return is -EINVAL (syntax, unknown name, bad value), -ERANGE (value out
 * of range), -EFBIG (text over CFG_MAX_FILE) or -ENOMEM. */
int cfg_parse(const char *text, size_t len, const char *name_for_errors, bks_cfg *out,
              bks_err *e);

/* Read and parse the file at path (a regular file of at most CFG_MAX_FILE bytes).
 * Sets out->warning when the file holds secrets (clients, api_tokens,
 * admin_password) and is readable by group or others. Errors as cfg_parse, plus
 * -errno from open/read ("PATH: open: No such file or directory"). */
int cfg_load(const char *path, bks_cfg *out, bks_err *e);

/* Free everything c owns and zero it. Accepts NULL and a zeroed struct. */
void cfg_free(bks_cfg *c);

/* Compare two configurations. Writes the names of changed keys that need a restart
 * ("array.disks, native.listen") into what_cannot (NUL-terminated, truncated to cap
 * with "..."; "" when none; may be NULL when cap is 0). Returns how many keys that
 * SIGHUP can apply changed ([clients] counts as one key). */
int cfg_reload_diff(const bks_cfg *old, const bks_cfg *new, char *what_cannot,
                    size_t cap);

/* Move the values of the keys SIGHUP applies (those without "restart" in
 * docs/config.md, and [clients]) from nc into run; run's old values go to nc, so
 * cfg_free(nc) frees them. The caller passes the new values on to whoever uses them
 * and guards run against concurrent readers. */
void cfg_take_reloadable(bks_cfg *run, bks_cfg *nc);

/* Parse a [repl] window value ("HH:MM-HH:MM", blank-separated; "" = always) into w.
 * 0, or -EINVAL with a reason in why. */
int cfg_window_parse(const char *s, cfg_window *w, char *why, size_t cap);
/* Is w open at time t (in local time)? If not, *opens: when it opens next (a whole
 * minute). */
int cfg_window_open(const cfg_window *w, time_t t, time_t *opens);

/* Set one key of c (made by cfg_defaults or cfg_parse) from its text as the file
 * would hold it, through the same checks: for run-time changes that are then written
 * to the file (cfg_rewrite). 0, -ENOENT (no such key), or -EINVAL/-ERANGE/-ENOMEM
 * with a reason in why. *reloadable: whether SIGHUP may apply the key. */
int cfg_set_key(bks_cfg *c, const char *section, const char *key, const char *value,
                int *reloadable, char *why, size_t cap);

const char *cfg_log_level_name(int level); /* "error", "warn", "info", "debug" */

#endif /* BKS_CONFIG_H */
