/* test-config: the daemon's config parser: defaults, a full file, every class of
 * error with its exact line, value edge cases (sizes, rates, durations, booleans,
 * fractions, addresses; overflow is an error, never a wrap), quoting and comments,
 * repeated list keys, clients, file limits, the permission warning of cfg_load, and
 * cfg_reload_diff. --seeds DIR writes valid config files for the fuzzer. */
#include <config.h>

#include "tests/testutil.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "daemon/config.h"

#define SECRET1 "00112233445566778899aabbccddeeff"
#define SECRET2 "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"
#define TOKEN1 "0123456789abcdef0123456789abcdef"
#define PWHASH "pbkdf2-sha256$600000$00112233445566778899aabbccddeeff$" \
	"0011223344556677889900112233445566778899001122334455667788990011"

static int parse(const char *text, bks_cfg *c, bks_err *e)
{
	bks_err_clear(e);
	return cfg_parse(text, strlen(text), "t.conf", c, e);
}

/* Parse "[array] disks" plus `[sect] line` (on line 4). */
static int parse_kv(const char *sect, const char *line, bks_cfg *c, bks_err *e)
{
	char text[8192];
	snprintf(text, sizeof(text), "[array]\ndisks = /dev/sda\n[%s]\n%s\n", sect, line);
	return parse(text, c, e);
}

static int fails_at_group;
static void group_done(const char *what)
{
	printf("%s - %s\n", tu_failures == fails_at_group ? "ok" : "not ok", what);
	fails_at_group = tu_failures;
}

/* REQUIRE for the void test groups: a failed precondition ends the group. */
#define REQUIRE_V(cond, ...)                                                        \
	do {                                                                            \
		int req_ok_ = !!(cond);                                                     \
		CHECK(req_ok_, __VA_ARGS__);                                                \
		if (!req_ok_) {                                                             \
			group_done(__func__);                                                   \
			return;                                                                 \
		}                                                                           \
	} while (0)

static void test_defaults(void)
{
	bks_cfg c, p;
	bks_err e = {0};
	char what[128];
	cfg_defaults(&c);
	CHECK(!strcmp(c.array_name, "bkstor") && c.ndisks == 0 && !c.disks && c.nspares == 0,
	      "array name and lists");
	CHECK(c.strip_size == 256u << 10 && c.io_timeout_ms == 30000 && c.io_err_limit == 10 &&
	      c.cksum_err_limit == 10 && c.err_window_s == 600, "array numbers");
	CHECK(c.bg_min_rate == 50ull << 20 && c.bg_max_rate == 0 && c.fg_idle_ms == 500,
	      "background rates");
	CHECK(c.chunk_min == 4096 && c.chunk_avg == 16384 && c.chunk_max == 65536 &&
	      c.zstd_level == 3 && c.meta_cache == 16u << 20 && c.commit_interval_s == 5 &&
	      c.commit_bytes == 1ull << 30 && c.gc_min_live == 0.5, "store");
	CHECK(c.nnative_listen == 1 && !strcmp(c.native_listen[0].host, "127.0.0.1") &&
	      c.native_listen[0].port == 7070 && c.native_listen[0].family == CFG_AF_INET,
	      "native listen");
	CHECK(c.max_connections == 256 && c.idle_timeout_s == 60 && c.max_frame == 4u << 20 &&
	      c.rate_limit == 0 && c.auth_fail_limit == 5 && c.nclients == 0, "native");
	CHECK(c.auth_timeout_s == 10 && c.frame_timeout_s == 60 && c.send_timeout_s == 60 &&
	      c.max_unauth == 64 && c.max_unauth_per_ip == 8, "native timeouts and pre-login caps");
	CHECK(!strcmp(c.api_socket, "/run/bkstor/api.sock"), "api socket");
	CHECK(c.web_enabled && !strcmp(c.web_listen.host, "127.0.0.1") &&
	      c.web_listen.port == 8080 && !c.tls_cert[0] && !c.tls_key[0] &&
	      !c.admin_password[0] && c.session_timeout_s == 12 * 3600 && c.napi_tokens == 0,
	      "web");
	CHECK(c.log_level == CFG_LOG_INFO && c.threads == 0 && !c.pidfile[0] && !c.demo &&
	      !c.warning, "log and daemon");
	CHECK(!strcmp(cfg_log_level_name(c.log_level), "info"), "level name");

	/* A file with only disks is the defaults plus disks. */
	REQUIRE_V(parse("[array]\ndisks = /dev/sda\n", &p, &e) == 0, "minimal: %s", e.msg);
	CHECK(cfg_reload_diff(&c, &p, what, sizeof(what)) == 0 && !strcmp(what, "array.disks"),
	      "minimal differs from defaults in disks only: '%s'", what);
	CHECK(!strcmp(p.source, "t.conf"), "source recorded");
	cfg_free(&p);
	cfg_free(&c);
	cfg_free(&c); /* zeroed: a no-op */
	cfg_free(NULL);
	/* Demo mode needs no disks; without it, no disks is an error naming the file. */
	CHECK(parse("[daemon]\ndemo = yes\n", &p, &e) == 0 && p.demo && p.ndisks == 0,
	      "demo without disks: %s", e.msg);
	cfg_free(&p);
	CHECK(parse("# nothing\n", &p, &e) == -EINVAL &&
	      strstr(e.msg, "t.conf: [array] disks: no disks listed"), "no disks: %s", e.msg);
	CHECK(p.array_name == NULL && p.ndisks == 0, "failed parse leaves a zeroed struct");
	CHECK(cfg_parse(NULL, 0, NULL, &p, &e) == -EINVAL && !strncmp(e.msg, "config:", 7),
	      "empty text, default name: %s", e.msg);
	group_done("defaults");
}

static const char full_text[] =
	"\xef\xbb\xbf# bkstord.conf: every key\r\n"
	"[array]\n"
	"name = vault-1\n"
	"disks = /dev/disk/by-id/a /dev/disk/by-id/b\n"
	"disks = /dev/disk/by-id/c   /dev/disk/by-id/d  # two more\n"
	"spares = /dev/disk/by-id/s1\n"
	"strip_size = 1M\n"
	"io_timeout_ms = 0\n"
	"io_err_limit = 3\n"
	"cksum_err_limit = 4\n"
	"err_window = 1h\n"
	"bg_min_rate = 10M/s\n"
	"bg_max_rate = 1G\n"
	"fg_idle_ms = 1000\n"
	"\n"
	"[store]\n"
	"chunk_min = 2K\n"
	"chunk_avg = 8KiB\n"
	"chunk_max = 1MiB\n"
	"zstd_level = 19\n"
	"meta_cache = 1G\n"
	"commit_interval = 2m\n"
	"commit_bytes = 0\n"
	"gc_min_live = 0.25\n"
	"[native]\n"
	"listen = 0.0.0.0:7070\n"
	"listen = [::]:7070 localhost:7071\n"
	"max_connections = 10\n"
	"idle_timeout = 5m\n"
	"max_frame = 64K\n"
	"rate_limit = 100M\n"
	"auth_fail_limit = 1\n"
	"auth_timeout = 30s\n"
	"frame_timeout = 2m\n"
	"send_timeout = 45s\n"
	"max_unauth = 100\n"
	"max_unauth_per_ip = 3\n"
	"[clients]\n"
	"alice = " SECRET1 "\n"
	"bob.backup-2 = \"" SECRET2 "\"\n"
	"[api]\n"
	"socket = /tmp/bkstor.sock\n"
	"[web]\n"
	"listen = [::1]:8443\n"
	"tls_cert = /etc/bkstor/cert.pem\n"
	"tls_key = /etc/bkstor/key.pem\n"
	"admin_password = " PWHASH "\n"
	"session_timeout = 30m\n"
	"api_tokens = " TOKEN1 "\n"
	"[log]\n"
	"level = debug\n"
	"[daemon]\n"
	"threads = 8\n"
	"pidfile = \"/run/bkstor/bkstord.pid\"\n"
	"demo = no";

static void test_full(void)
{
	bks_cfg c;
	bks_err e = {0};
	REQUIRE_V(parse(full_text, &c, &e) == 0, "full file: %s", e.msg);
	CHECK(!strcmp(c.array_name, "vault-1") && c.ndisks == 4 &&
	      !strcmp(c.disks[2], "/dev/disk/by-id/c") && c.nspares == 1, "array lists");
	CHECK(c.strip_size == 1u << 20 && c.io_timeout_ms == 0 && c.io_err_limit == 3 &&
	      c.cksum_err_limit == 4 && c.err_window_s == 3600 && c.bg_min_rate == 10u << 20 &&
	      c.bg_max_rate == 1u << 30 && c.fg_idle_ms == 1000, "array numbers");
	CHECK(c.chunk_min == 2048 && c.chunk_avg == 8192 && c.chunk_max == 1u << 20 &&
	      c.zstd_level == 19 && c.meta_cache == 1u << 30 && c.commit_interval_s == 120 &&
	      c.commit_bytes == 0 && c.gc_min_live == 0.25, "store");
	CHECK(c.nnative_listen == 3 && c.native_listen[1].family == CFG_AF_INET6 &&
	      !strcmp(c.native_listen[1].host, "::") &&
	      c.native_listen[2].family == CFG_AF_LOCALHOST && c.native_listen[2].port == 7071,
	      "native listen replaced, then appended");
	CHECK(c.max_connections == 10 && c.idle_timeout_s == 300 && c.max_frame == 65536 &&
	      c.rate_limit == 100u << 20 && c.auth_fail_limit == 1, "native");
	CHECK(c.auth_timeout_s == 30 && c.frame_timeout_s == 120 && c.send_timeout_s == 45 &&
	      c.max_unauth == 100 && c.max_unauth_per_ip == 3, "native timeouts and caps");
	CHECK(c.nclients == 2 && !strcmp(c.clients[1].name, "bob.backup-2") &&
	      !strcmp(c.clients[1].secret, SECRET2), "clients");
	CHECK(!strcmp(c.api_socket, "/tmp/bkstor.sock"), "api");
	CHECK(c.web_enabled && !strcmp(c.web_listen.host, "::1") && c.web_listen.port == 8443 &&
	      !strcmp(c.tls_key, "/etc/bkstor/key.pem") && !strcmp(c.admin_password, PWHASH) &&
	      c.session_timeout_s == 1800 && c.napi_tokens == 1, "web");
	CHECK(c.log_level == CFG_LOG_DEBUG && c.threads == 8 &&
	      !strcmp(c.pidfile, "/run/bkstor/bkstord.pid") && !c.demo, "log, daemon");
	CHECK(!c.warning, "no warning from cfg_parse: %s", c.warning);
	cfg_free(&c);
	group_done("a full file (BOM, CRLF, no final newline)");
}

/* Each bad file, the error code and a piece of the message (with its line). */
static const struct bad {
	const char *text;
	int code;
	const char *msg;
} bad[] = {
	{"[array]\ndisks = /a\n\n[arrya]\n", -EINVAL,
	 "t.conf:4: unknown section [arrya] (did you mean [array]?)"},
	{"[array]\ndisks = /a\n[frobnicate]\n", -EINVAL,
	 "t.conf:3: unknown section [frobnicate]"},
	{"[array]\ndisks = /a\nstrip = 64K\n", -EINVAL,
	 "t.conf:3: unknown key 'strip' in section [array] (did you mean 'strip_size'?)"},
	{"[array]\ndisks = /a\n[store]\nchunk_mn = 1K\n", -EINVAL, "t.conf:4: unknown key "
	 "'chunk_mn' in section [store] (did you mean 'chunk_min'?)"},
	{"[array]\ndisks = /a\nzstd_level = 3\n", -EINVAL,
	 "t.conf:3: unknown key 'zstd_level' in section [array] (it belongs in [store])"},
	{"[array]\ndisks = /a\nxyzzy = 1\n", -EINVAL, "t.conf:3: unknown key 'xyzzy' in "
	 "section [array]"},
	{"[array]\ndisks = /a\n# c\nstrip_size = 64K\n\nstrip_size = 128K\n", -EINVAL,
	 "t.conf:6: duplicate key 'strip_size' in section [array] (first set on line 4)"},
	{"[array]\ndisks = /a\n[array]\nname = x\nname = y\n", -EINVAL,
	 "t.conf:5: duplicate key 'name'"},
	{"[array]\ndisks = /a\njust some words\n", -EINVAL, "t.conf:3: malformed line"},
	{"[array]\ndisks = /a\n = 5\n", -EINVAL, "t.conf:3: malformed line (no key"},
	{"[array\ndisks = /a\n", -EINVAL, "t.conf:1: malformed section header"},
	{"[array] x\n", -EINVAL, "t.conf:1: text after the section header"},
	{"\n\ndisks = /a\n", -EINVAL, "t.conf:3: 'disks' outside any section"},
	{"[array]\ndisks = /a\nstrip_size = 2M\n", -ERANGE,
	 "t.conf:3: [array] strip_size = '2M': must be a power of two from 64K to 1M"},
	{"[array]\ndisks = /a\nstrip_size = 96K\n", -ERANGE, "t.conf:3: [array] strip_size = "
	 "'96K': must be a power of two"},
	{"[array]\ndisks = /a\nio_err_limit = 0\n", -ERANGE,
	 "t.conf:3: [array] io_err_limit = '0': must be from 1 to 1000000"},
	{"[array]\ndisks = /a\nstrip_size = 256KB\n", -EINVAL,
	 "t.conf:3: [array] strip_size = '256KB': bad size suffix 'KB'"},
	{"[array]\ndisks = /a\nstrip_size = 99999999999T\n", -ERANGE,
	 "t.conf:3: [array] strip_size = '99999999999T': number too large"},
	{"[array]\ndisks = /a\nerr_window = 1d\n", -EINVAL, "t.conf:3: [array] err_window = "
	 "'1d': unknown duration unit 'd'"},
	{"[array]\ndisks = /a\n[store]\nchunk_min = 32K\n", -EINVAL,
	 "t.conf:4: [store] chunk sizes must be chunk_min < chunk_avg < chunk_max (they are "
	 "32K, 16K, 64K)"},
	{"[array]\ndisks = /a\n[store]\nchunk_avg = 64K\nchunk_max = 64K\n", -EINVAL,
	 "t.conf:5: [store] chunk sizes"},
	{"[array]\ndisks = /a\n[store]\nchunk_max = 2M\n", -ERANGE,
	 "t.conf:4: [store] chunk_max"},
	{"[array]\ndisks = /a\nbg_min_rate = 0\nbg_max_rate = 100M\n", -EINVAL,
	 "t.conf:4: [array] bg_min_rate (0, 0 = unlimited) must not exceed bg_max_rate (100M)"},
	{"[array]\ndisks = /a\n[web]\ntls_key = /k.pem\n", -EINVAL,
	 "t.conf:4: [web] tls_cert and tls_key go together"},
	{"[array]\ndisks = /a\n[web]\ntls_cert = relative.pem\n", -EINVAL,
	 "t.conf:4: [web] tls_cert = 'relative.pem': must be an absolute path"},
	{"[array]\ndisks = /a /b\nspares = /c /a\n", -EINVAL,
	 "t.conf:3: [array] spares = '/c /a': '/a' is already listed in [array] disks"},
	{"[array]\ndisks = /a /b /a\n", -EINVAL, "t.conf:2: [array] disks"},
	{"[array]\ndisks = dev/sda\n", -EINVAL, "t.conf:2: [array] disks = 'dev/sda': "
	 "'dev/sda' is not an absolute path"},
	{"[array]\nname = \"my array\"\ndisks = /a\n", -EINVAL, "t.conf:2: [array] name"},
	{"[array]\ndisks = /a\n[api]\nsocket = /run/a/very/long/path/that/does/not/fit/into/"
	 "sun_path/because/it/is/longer/than/one/hundred/and/seven/bytes/x.sock\n", -EINVAL,
	 "t.conf:4: [api] socket"},
	{"[array]\ndisks = /a\n[api]\nsocket =\n", -EINVAL, "t.conf:4: [api] socket = '': "
	 "must be an absolute path"},
	{"[array]\ndisks = /a\n[log]\nlevel = verbose\n", -EINVAL,
	 "t.conf:4: [log] level = 'verbose': log level must be"},
	{"[array]\ndisks = /a\n[daemon]\ndemo = maybe\n", -EINVAL,
	 "t.conf:4: [daemon] demo = 'maybe': not a boolean"},
	{"[array]\ndisks = /a\n[native]\nlisten = 127.0.0.1\n", -EINVAL,
	 "t.conf:4: [native] listen = '127.0.0.1': expected HOST:PORT"},
	{"[array]\ndisks = /a\n[native]\nlisten = example.com:80\n", -EINVAL,
	 "t.conf:4: [native] listen = 'example.com:80': host must be"},
	{"[array]\ndisks = /a\n[native]\nlisten = ::1:80\n", -EINVAL, "in brackets"},
	{"[array]\ndisks = /a\n[native]\nlisten = 1.2.3.4:0\n", -ERANGE, "t.conf:4: [native] "
	 "listen = '1.2.3.4:0': port must be a number from 1 to 65535"},
	{"[array]\ndisks = /a\n[native]\nlisten = 1.2.3.4:65536\n", -ERANGE, "t.conf:4: "},
	{"[array]\ndisks = /a\n[native]\nlisten = 1.2.3.4:1 1.2.3.4:1\n", -EINVAL,
	 "listed twice"},
	{"[array]\ndisks = /a\n[native]\nlisten = [::1]\n", -EINVAL,
	 "t.conf:4: [native] listen = '[::1]': expected [IPv6 address]:PORT"},
	{"[array]\ndisks = /a\n[native]\nlisten = [zz::1]:5\n", -EINVAL, "not an IPv6"},
	{"[array]\ndisks = /a\n[clients]\nalice = 0123\n", -EINVAL, "t.conf:4: [clients] alice: "
	 "the secret must be 32..128 hex digits, an even number (got 4 characters)"},
	{"[array]\ndisks = /a\n[clients]\nalice = " SECRET1 "0\n", -EINVAL,
	 "t.conf:4: [clients] alice: the secret"},
	{"[array]\ndisks = /a\n[clients]\nalice = " SECRET1 "\n\nalice = " SECRET2 "\n",
	 -EINVAL, "t.conf:6: [clients] duplicate client 'alice'"},
	{"[array]\ndisks = /a\n[clients]\nal ice = " SECRET1 "\n", -EINVAL,
	 "t.conf:4: [clients] 'al ice': a client name is"},
	{"[array]\ndisks = /a\n[web]\napi_tokens = " TOKEN1 " " TOKEN1 "\n", -EINVAL,
	 "t.conf:4: [web] api_tokens: the same token is listed twice"},
	{"[array]\ndisks = /a\n[web]\nadmin_password = sha1$1$00$00\n", -EINVAL,
	 "t.conf:4: [web] admin_password: expected pbkdf2-sha256$"},
	{"[array]\ndisks = /a\n[web]\nadmin_password = pbkdf2-sha256$0$00112233445566778899"
	 "$00112233445566778899001122334455\n", -EINVAL, "t.conf:4: [web] admin_password"},
	{"[array]\ndisks = /a\nname = \"vault\n", -EINVAL,
	 "t.conf:3: unterminated quoted value"},
	{"[array]\ndisks = /a\n[daemon]\npidfile = \"/a\\n\"\n", -EINVAL,
	 "t.conf:4: bad escape in quoted value"},
	{"[array]\ndisks = /a\n[daemon]\npidfile = \"/a\" /b\n", -EINVAL,
	 "t.conf:4: text after the closing quote"},
	{"[array]\ndisks = /a\nname = x\x01y\n", -EINVAL,
	 "t.conf:3: control character 0x01 at column 9"},
	{"[array]\ndisks = /a\n[store]\ngc_min_live = 1.5\n", -ERANGE,
	 "t.conf:4: [store] gc_min_live = '1.5': not a fraction from 0 to 1"},
	{"[array]\ndisks = /a\n[store]\ngc_min_live = 0.1234567\n", -EINVAL,
	 "t.conf:4: [store] gc_min_live = '0.1234567': at most 6 decimals"},
};

static void test_errors(void)
{
	bks_cfg c;
	bks_err e = {0};
	for (size_t i = 0; i < BKS_ARRAY_SIZE(bad); i++) {
		int r = parse(bad[i].text, &c, &e);
		CHECK(r == bad[i].code && strstr(e.msg, bad[i].msg),
		      "case %zu: got %d '%s', want %d '%s'", i, r, e.msg, bad[i].code, bad[i].msg);
		CHECK(c.array_name == NULL && c.source == NULL, "case %zu: struct zeroed", i);
	}
	/* A NUL byte inside the text (cfg_parse takes a length, not a C string). */
	static const char nul[] = "[array]\ndisks = /a\nname = a\0b\n";
	CHECK(cfg_parse(nul, sizeof(nul) - 1, "t.conf", &c, &e) == -EINVAL &&
	      strstr(e.msg, "t.conf:3: control character 0x00"), "NUL byte: %s", e.msg);
	/* Secrets are never echoed. */
	CHECK(parse_kv("web", "api_tokens = 0123456789abcdef0123456789abcdefX", &c, &e) < 0 &&
	      !strstr(e.msg, "0123456789abcdef"), "token not echoed: %s", e.msg);
	CHECK(parse_kv("web", "admin_password = hunter2", &c, &e) < 0 &&
	      !strstr(e.msg, "hunter2"), "password not echoed: %s", e.msg);
	CHECK(parse_kv("clients", "x = hunter2hunter2", &c, &e) < 0 &&
	      !strstr(e.msg, "hunter2"), "secret not echoed: %s", e.msg);
	group_done("every error class, with its line");
}

/* Line and file limits. */
static void test_limits(void)
{
	bks_cfg c;
	bks_err e = {0};
	size_t big = CFG_MAX_FILE + 1;
	char *t = malloc(big + 1);
	REQUIRE_V(t != NULL, "malloc");
	/* A comment line of exactly 4096 bytes is fine; 4097 is not. */
	strcpy(t, "[array]\ndisks = /a\n#");
	size_t n = strlen(t);
	memset(t + n, 'x', CFG_MAX_LINE - 1);
	strcpy(t + n + CFG_MAX_LINE - 1, "\n");
	CHECK(parse(t, &c, &e) == 0, "4096-byte line: %s", e.msg);
	cfg_free(&c);
	strcpy(t + n + CFG_MAX_LINE - 1, "\r\n");
	CHECK(parse(t, &c, &e) == 0, "4096-byte line and CRLF: %s", e.msg);
	cfg_free(&c);
	strcpy(t + n + CFG_MAX_LINE - 1, "x\r\n"); /* the CR does not count, the x does */
	CHECK(parse(t, &c, &e) == -EINVAL && strstr(e.msg, "t.conf:3: line longer than 4096"),
	      "4097-byte line: %s", e.msg);
	/* 1 MiB of comments is fine, one byte more is not. */
	memset(t, '\n', big);
	memcpy(t, "[array]\ndisks = /a\n", 19);
	CHECK(cfg_parse(t, big - 1, "t.conf", &c, &e) == 0, "1 MiB file: %s", e.msg);
	cfg_free(&c);
	CHECK(cfg_parse(t, big, "t.conf", &c, &e) == -EFBIG && strstr(e.msg, "t.conf: 1048577"),
	      "1 MiB + 1: %s", e.msg);
	/* 33 disks, 17 spares, 17 listen addresses. */
	strcpy(t, "[array]\n");
	for (int i = 0; i < 33; i++)
		sprintf(t + strlen(t), "disks = /d%d\n", i);
	CHECK(parse(t, &c, &e) == -ERANGE && strstr(e.msg, "t.conf:34: [array] disks = '/d32': "
	      "at most 32 entries"), "33 disks: %s", e.msg);
	strcpy(t, "[array]\ndisks=/a\nspares =");
	for (int i = 0; i < 17; i++)
		sprintf(t + strlen(t), " /s%d", i);
	CHECK(parse(t, &c, &e) == -ERANGE && strstr(e.msg, "at most 16"), "17 spares: %s",
	      e.msg);
	free(t);
	group_done("line and file limits");
}

static void test_values(void)
{
	static const struct { const char *sect, *line; uint64_t want; } ok[] = {
		{"store", "meta_cache = 1M", 1ull << 20},
		{"store", "meta_cache = 1MiB", 1ull << 20},
		{"store", "meta_cache = 1m", 1ull << 20},
		{"store", "meta_cache = 1 M", 1ull << 20},
		{"store", "meta_cache = 1024K", 1ull << 20},
		{"store", "meta_cache = 3GiB", 3ull << 30},
		{"store", "meta_cache = 1T", 1ull << 40},
		{"store", "meta_cache = 1099511627776", 1ull << 40},
		{"store", "meta_cache = 00002M", 2ull << 20},
		{"native", "rate_limit = 18446744073709551615", UINT64_MAX},
		{"native", "rate_limit = 100M/s", 100ull << 20},
		{"native", "rate_limit = 16777215T", 16777215ull << 40},
		{"store", "commit_interval = 7", 7},
		{"store", "commit_interval = 7s", 7},
		{"store", "commit_interval = 2m", 120},
		{"store", "commit_interval = 1h", 3600},
		{"store", "commit_interval = 1H", 3600},
		{"store", "zstd_level = 0", 0},
		{"store", "zstd_level = 19", 19},
	};
	static const struct { const char *sect, *line; int code; } no[] = {
		{"store", "meta_cache = 2T", -ERANGE},
		{"store", "meta_cache = 1023K", -ERANGE},
		{"store", "meta_cache = 1.5G", -EINVAL},
		{"store", "meta_cache = 1KB", -EINVAL},
		{"store", "meta_cache = 1 MB", -EINVAL},
		{"store", "meta_cache = 1P", -EINVAL},
		{"store", "meta_cache = -1M", -EINVAL},
		{"store", "meta_cache = M", -EINVAL},
		{"store", "meta_cache =", -EINVAL},
		{"native", "rate_limit = 18446744073709551616", -ERANGE},
		{"native", "rate_limit = 16777216T", -ERANGE},
		{"native", "rate_limit = 99999999999T", -ERANGE},
		{"native", "rate_limit = 1M/h", -EINVAL},
		{"store", "commit_interval = 0s", -ERANGE},
		{"store", "commit_interval = 61m", -ERANGE},
		{"store", "commit_interval = 1d", -EINVAL},
		{"store", "commit_interval = 5ms", -EINVAL},
		{"store", "commit_interval = 99999999999999999h", -ERANGE},
		{"store", "commit_interval = 307445734561825861h", -ERANGE},
		{"store", "zstd_level = 20", -ERANGE},
		{"store", "zstd_level = -1", -EINVAL},
		{"store", "zstd_level = 3K", -EINVAL},
		{"store", "zstd_level = 0x3", -EINVAL},
	};
	bks_cfg c;
	bks_err e = {0};
	for (size_t i = 0; i < BKS_ARRAY_SIZE(ok); i++) {
		int r = parse_kv(ok[i].sect, ok[i].line, &c, &e);
		uint64_t got = !strncmp(ok[i].line, "meta", 4) ? c.meta_cache :
		               !strncmp(ok[i].line, "rate", 4) ? c.rate_limit :
		               !strncmp(ok[i].line, "commit", 6) ? c.commit_interval_s :
		               (uint64_t)c.zstd_level;
		CHECK(r == 0 && got == ok[i].want, "'%s': %d %s, got %llu", ok[i].line, r, e.msg,
		      (unsigned long long)got);
		cfg_free(&c);
	}
	for (size_t i = 0; i < BKS_ARRAY_SIZE(no); i++) {
		int r = parse_kv(no[i].sect, no[i].line, &c, &e);
		CHECK(r == no[i].code && !strncmp(e.msg, "t.conf:4: ", 10), "'%s': %d '%s'",
		      no[i].line, r, e.msg);
	}

	/* Booleans. */
	static const char *const yes[] = {"yes", "true", "on", "1", "YES", "True"};
	static const char *const nope[] = {"no", "false", "off", "0", "No", "OFF"};
	static const char *const notbool[] = {"2", "y", "", "yess", "enabled"};
	char line[64];
	for (size_t i = 0; i < BKS_ARRAY_SIZE(yes); i++) {
		snprintf(line, sizeof(line), "demo = %s", yes[i]);
		CHECK(parse_kv("daemon", line, &c, &e) == 0 && c.demo == 1, "%s: %s", line, e.msg);
		cfg_free(&c);
		snprintf(line, sizeof(line), "demo = %s", nope[i]);
		CHECK(parse_kv("daemon", line, &c, &e) == 0 && c.demo == 0, "%s: %s", line, e.msg);
		cfg_free(&c);
	}
	for (size_t i = 0; i < BKS_ARRAY_SIZE(notbool); i++) {
		snprintf(line, sizeof(line), "demo = %s", notbool[i]);
		CHECK(parse_kv("daemon", line, &c, &e) == -EINVAL, "%s refused", line);
	}

	/* Fractions. */
	static const struct { const char *v; double want; } fr[] = {
		{"0", 0}, {"1", 1}, {"0.25", 0.25}, {"1.0", 1}, {"0.000001", 1e-6},
		{"0.1234560", 0.123456}, {"1.000000000", 1},
	};
	for (size_t i = 0; i < BKS_ARRAY_SIZE(fr); i++) {
		snprintf(line, sizeof(line), "gc_min_live = %s", fr[i].v);
		CHECK(parse_kv("store", line, &c, &e) == 0 && c.gc_min_live == fr[i].want,
		      "%s: %s", line, e.msg);
		cfg_free(&c);
	}
	static const char *const badfr[] = {".5", "1.", "1.000001", "2", "-0.5", "0,5", "50%"};
	for (size_t i = 0; i < BKS_ARRAY_SIZE(badfr); i++) {
		snprintf(line, sizeof(line), "gc_min_live = %s", badfr[i]);
		CHECK(parse_kv("store", line, &c, &e) < 0, "%s refused", line);
	}

	/* Addresses. */
	static const struct { const char *v; const char *host; unsigned port; int fam; } ad[] = {
		{"0.0.0.0:65535", "0.0.0.0", 65535, CFG_AF_INET},
		{"10.1.2.255:1", "10.1.2.255", 1, CFG_AF_INET},
		{"[::1]:7070", "::1", 7070, CFG_AF_INET6},
		{"[0:0:0:0:0:0:0:1]:7070", "::1", 7070, CFG_AF_INET6},
		{"[fe80::1:2]:80", "fe80::1:2", 80, CFG_AF_INET6},
		{"localhost:7070", "localhost", 7070, CFG_AF_LOCALHOST},
		{"LocalHost:7070", "localhost", 7070, CFG_AF_LOCALHOST},
	};
	for (size_t i = 0; i < BKS_ARRAY_SIZE(ad); i++) {
		snprintf(line, sizeof(line), "listen = %s", ad[i].v);
		CHECK(parse_kv("native", line, &c, &e) == 0 && c.nnative_listen == 1 &&
		      !strcmp(c.native_listen[0].host, ad[i].host) &&
		      c.native_listen[0].port == ad[i].port && c.native_listen[0].family == ad[i].fam,
		      "%s: %s", line, e.msg);
		cfg_free(&c);
	}
	static const char *const badad[] = {
		"256.1.1.1:1", "01.2.3.4:80", "1.2.3:80", "1.2.3.4.5:80", "1.2.3.4:", "1.2.3.4:x",
		":80", "[::1]80", "[]:80", "localhost:-1", "1.2.3.4:+80", "host:80",
	};
	for (size_t i = 0; i < BKS_ARRAY_SIZE(badad); i++) {
		snprintf(line, sizeof(line), "listen = %s", badad[i]);
		CHECK(parse_kv("native", line, &c, &e) < 0 && strstr(e.msg, "t.conf:4:"),
		      "%s refused: %s", line, e.msg);
	}
	/* [web] listen: empty disables. */
	CHECK(parse_kv("web", "listen =", &c, &e) == 0 && !c.web_enabled && !c.web_listen.port,
	      "web disabled: %s", e.msg);
	cfg_free(&c);
	CHECK(parse_kv("web", "listen = \"\"", &c, &e) == 0 && !c.web_enabled, "web \"\"");
	cfg_free(&c);
	group_done("sizes, rates, durations, booleans, fractions, addresses");
}

static void test_quoting(void)
{
	bks_cfg c;
	bks_err e = {0};
	static const struct { const char *line, *want; } q[] = {
		{"pidfile = \"/var/run/with space#x.pid\"  # comment", "/var/run/with space#x.pid"},
		{"pidfile = \"/a\\\"b\\\\c\"", "/a\"b\\c"},
		{"pidfile = \"/a;b\" ; comment", "/a;b"},
		{"pidfile = /run/a#b", "/run/a#b"},
		{"pidfile = /run/a #comment", "/run/a"},
		{"pidfile = /run/a\t;comment", "/run/a"},
		{"pidfile =   /run/a b   ", "/run/a b"},
		{"pidfile = # only a comment", ""},
		{"pidfile = \"\"", ""},
		{"\tpidfile=/x", "/x"},
		{"pidfile = /x\"y", "/x\"y"},
	};
	for (size_t i = 0; i < BKS_ARRAY_SIZE(q); i++) {
		CHECK(parse_kv("daemon", q[i].line, &c, &e) == 0 && !strcmp(c.pidfile, q[i].want),
		      "%s: %s -> '%s'", q[i].line, e.msg, c.pidfile ? c.pidfile : "(null)");
		cfg_free(&c);
	}
	/* A quoted list value is one item; unquoted splits on blanks. */
	CHECK(parse("[array]\ndisks = \"/mnt/my disk/f1\"\ndisks = /b\t/c\n", &c, &e) == 0 &&
	      c.ndisks == 3 && !strcmp(c.disks[0], "/mnt/my disk/f1") &&
	      !strcmp(c.disks[2], "/c"),
	      "quoted list item: %s", e.msg);
	cfg_free(&c);
	/* Comments and blank lines of every kind; section headers with blanks and comments. */
	CHECK(parse("; semicolon\n  # indented\n\n\t\n[ array ]  # members\ndisks=/a\n", &c,
	            &e) == 0, "comments: %s", e.msg);
	cfg_free(&c);
	group_done("quoting and comments");
}

static void test_lists(void)
{
	bks_cfg c;
	bks_err e = {0};
	/* Repeats append; the first mention replaces the default. */
	CHECK(parse("[array]\ndisks = /a /b\nspares = /s1\ndisks = /c\nspares = /s2 /s3\n"
	            "[native]\nlisten = 10.0.0.1:7070\nlisten = 10.0.0.2:7070\n"
	            "[web]\napi_tokens = " TOKEN1 "\napi_tokens = " SECRET1 "\n", &c, &e) == 0,
	      "lists: %s", e.msg);
	CHECK(c.ndisks == 3 && c.nspares == 3 && !strcmp(c.spares[2], "/s3"), "disks, spares");
	CHECK(c.nnative_listen == 2 && !strcmp(c.native_listen[0].host, "10.0.0.1") &&
	      !strcmp(c.native_listen[1].host, "10.0.0.2"), "listen: default replaced");
	CHECK(c.napi_tokens == 2 && !strcmp(c.api_tokens[1], SECRET1), "tokens");
	cfg_free(&c);
	/* An empty first mention leaves the list empty (no native listener). */
	CHECK(parse_kv("native", "listen =", &c, &e) == 0 && c.nnative_listen == 0 &&
	      !c.native_listen, "native listener off: %s", e.msg);
	cfg_free(&c);
	/* Same disk in disks and spares, on different lines. */
	CHECK(parse("[array]\ndisks = /a\nspares = /b\n\ndisks = /b\n", &c, &e) == -EINVAL &&
	      strstr(e.msg, "t.conf:5: [array] disks = '/b': '/b' is already listed in [array] "
	             "spares"), "disk also a spare: %s", e.msg);
	group_done("repeated list keys");
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");
	if (!f || fputs(text, f) < 0 || fclose(f) != 0 || chmod(path, mode) != 0) {
		perror(path);
		exit(99);
	}
}

static void test_load(void)
{
	const char *dir = tu_tmpdir("config");
	char p[600];
	bks_cfg c;
	bks_err e = {0};
	const char *secrets = "[array]\ndisks = /a\n[clients]\nalice = " SECRET1 "\n";
	const char *plain = "[array]\ndisks = /a\n";

	snprintf(p, sizeof(p), "%s/bkstord.conf", dir);
	write_file(p, secrets, 0644);
	REQUIRE_V(cfg_load(p, &c, &e) == 0, "load: %s", e.msg);
	CHECK(c.warning && strstr(c.warning, "readable by group or others (mode 0644)") &&
	      strstr(c.warning, "chmod 600") && strstr(c.warning, p),
	      "0644 with secrets warns: %s", c.warning ? c.warning : "(none)");
	CHECK(c.nclients == 1 && !strcmp(c.source, p), "loaded");
	cfg_free(&c);
	write_file(p, secrets, 0600);
	CHECK(cfg_load(p, &c, &e) == 0 && !c.warning, "0600: no warning");
	cfg_free(&c);
	write_file(p, secrets, 0640);
	CHECK(cfg_load(p, &c, &e) == 0 && c.warning, "0640 with secrets warns");
	cfg_free(&c);
	write_file(p, "[array]\ndisks = /a\n[web]\napi_tokens = " TOKEN1 "\n", 0604);
	CHECK(cfg_load(p, &c, &e) == 0 && c.warning, "tokens, 0604: warns");
	cfg_free(&c);
	write_file(p, plain, 0644);
	CHECK(cfg_load(p, &c, &e) == 0 && !c.warning, "0644 without secrets: no warning");
	cfg_free(&c);
	/* Errors carry the path (and the line). */
	write_file(p, "[array]\ndisks = /a\nbogus = 1\n", 0600);
	CHECK(cfg_load(p, &c, &e) == -EINVAL && !strncmp(e.msg, p, strlen(p)) &&
	      strstr(e.msg, ":3: unknown key 'bogus'"), "error names file and line: %s", e.msg);
	snprintf(p, sizeof(p), "%s/missing.conf", dir);
	CHECK(cfg_load(p, &c, &e) == -ENOENT && strstr(e.msg, "missing.conf: open: "),
	      "missing file: %s", e.msg);
	CHECK(cfg_load(dir, &c, &e) == -EINVAL && strstr(e.msg, "not a regular file"),
	      "directory: %s", e.msg);
	/* Over 1 MiB on disk. */
	snprintf(p, sizeof(p), "%s/big.conf", dir);
	char *big = malloc(CFG_MAX_FILE + 2);
	REQUIRE_V(big != NULL, "malloc");
	memset(big, '#', CFG_MAX_FILE + 1);
	big[CFG_MAX_FILE + 1] = '\0';
	write_file(p, big, 0600);
	free(big);
	CHECK(cfg_load(p, &c, &e) == -EFBIG, "big file: %s", e.msg);
	tu_cleanup();
	group_done("cfg_load and the permission warning");
}

static void test_reload(void)
{
	bks_cfg a, b;
	bks_err e = {0};
	char what[256];
	const char *base = "[array]\ndisks = /a /b /c /d\n[clients]\nalice = " SECRET1 "\n";
	REQUIRE_V(parse(base, &a, &e) == 0, "base: %s", e.msg);
	REQUIRE_V(parse(base, &b, &e) == 0, "base: %s", e.msg);
	CHECK(cfg_reload_diff(&a, &b, what, sizeof(what)) == 0 && what[0] == '\0', "same");
	CHECK(cfg_reload_diff(&a, &b, NULL, 0) == 0, "NULL buffer");
	cfg_free(&b);
	/* Disk order does not matter. */
	REQUIRE_V(parse("[array]\ndisks = /d /c /b /a\n[clients]\nalice = " SECRET1 "\n", &b,
	                &e) == 0, "reordered: %s", e.msg);
	CHECK(cfg_reload_diff(&a, &b, what, sizeof(what)) == 0 && !what[0], "reordered: '%s'",
	      what);
	cfg_free(&b);
	/* Reloadable: level, native limits, the web login, clients; not: disks, spares,
	 * the array's and the store's tunables (given to the array and the store once),
	 * strip, chunks, listen addresses, socket, TLS. */
	REQUIRE_V(parse("[array]\ndisks = /a /b /c /e\nspares = /s\nstrip_size = 128K\n"
	                "io_err_limit = 20\n[store]\nzstd_level = 9\nchunk_avg = 32K\n"
	                "[native]\nlisten = 0.0.0.0:7070\nidle_timeout = 30s\n"
	                "[clients]\nalice = " SECRET2 "\n"
	                "[api]\nsocket = /tmp/s\n[web]\nlisten = \nsession_timeout = 1h\n"
	                "tls_cert = /c.pem\ntls_key = /k.pem\napi_tokens = " TOKEN1 "\n"
	                "[log]\nlevel = debug\n", &b, &e) == 0, "changed: %s", e.msg);
	int n = cfg_reload_diff(&a, &b, what, sizeof(what));
	CHECK(n == 5, "5 reloadable changes (idle_timeout, session_timeout, api_tokens, level, "
	      "clients): %d", n);
	CHECK(!strcmp(what, "array.disks, array.spares, array.strip_size, array.io_err_limit, "
	              "store.chunk_avg, store.zstd_level, native.listen, api.socket, web.listen, "
	              "web.tls_cert, web.tls_key"), "restart keys: '%s'", what);
	/* A small buffer is truncated with "...", always terminated. */
	char small[24];
	memset(small, 'z', sizeof(small));
	CHECK(cfg_reload_diff(&a, &b, small, sizeof(small)) == 5 &&
	      !strcmp(small, "array.disks..."), "truncated: '%.24s'", small);
	char tiny[4];
	CHECK(cfg_reload_diff(&a, &b, tiny, sizeof(tiny)) == 5 && !strcmp(tiny, "..."),
	      "tiny: '%.4s'", tiny);
	CHECK(cfg_reload_diff(&a, &b, tiny, 2) == 5 && tiny[0] == '\0', "cap 2");
	/* Taking the reloadable values: those change, the restart keys stay. */
	cfg_take_reloadable(&a, &b);
	CHECK(a.log_level == CFG_LOG_DEBUG && a.idle_timeout_s == 30 &&
	      a.session_timeout_s == 3600 && a.napi_tokens == 1 &&
	      !strcmp(a.api_tokens[0], TOKEN1) && a.nclients == 1 &&
	      !strcmp(a.clients[0].secret, SECRET2), "reloadable values taken");
	CHECK(a.ndisks == 4 && !strcmp(a.disks[3], "/d") && a.nspares == 0 &&
	      a.zstd_level == 3 && a.io_err_limit == 10 && !a.tls_cert[0] && a.web_enabled,
	      "restart keys kept");
	CHECK(b.log_level == CFG_LOG_INFO && b.napi_tokens == 0 && !b.api_tokens &&
	      !strcmp(b.clients[0].secret, SECRET1), "the old values went to the new copy");
	CHECK(cfg_reload_diff(&a, &b, what, sizeof(what)) == 5, "still 5 apart");
	cfg_free(&a);
	cfg_free(&b);
	group_done("cfg_reload_diff");
}

/* [repl] window: parsing, open/closed across midnight, the next opening; and
 * cfg_set_key (bkstorctl repl set). Times in UTC (TZ set for this process). */
static void test_window(void)
{
	bks_cfg c;
	bks_err e = {0};
	cfg_window w;
	char why[200];
	time_t opens;
	setenv("TZ", "UTC", 1);
	tzset();
	REQUIRE_V(cfg_window_parse("22:00-06:00 12:00-13:00", &w, why, sizeof(why)) == 0 &&
	          w.n == 2 && w.start[0] == 1320 && w.end[0] == 360 && w.start[1] == 720 &&
	          w.end[1] == 780, "parse two windows: %s", why);
	static const struct { int h, m, s, open, oh, om; } at[] = {
		{23, 0, 0, 1, 0, 0}, {0, 0, 0, 1, 0, 0}, {5, 59, 59, 1, 0, 0},
		{6, 0, 0, 0, 12, 0}, {11, 59, 30, 0, 12, 0}, {12, 30, 0, 1, 0, 0},
		{13, 0, 0, 0, 22, 0}, {21, 59, 30, 0, 22, 0}, {22, 0, 0, 1, 0, 0},
	};
	for (size_t i = 0; i < BKS_ARRAY_SIZE(at); i++) {
		time_t day = 86400 * 20000, t = day + at[i].h * 3600 + at[i].m * 60 + at[i].s;
		int open = cfg_window_open(&w, t, &opens);
		CHECK(open == at[i].open, "%02d:%02d:%02d: open %d, want %d", at[i].h, at[i].m,
		      at[i].s, open, at[i].open);
		time_t want = day + at[i].oh * 3600 + at[i].om * 60 + (at[i].oh < at[i].h ? 86400 : 0);
		CHECK(open || opens == want, "%02d:%02d: opens at %lld, want %lld", at[i].h,
		      at[i].m, (long long)opens, (long long)want);
	}
	/* Closed late in the day, opening after midnight. */
	REQUIRE_V(cfg_window_parse("01:30-02:00", &w, why, sizeof(why)) == 0, "%s", why);
	CHECK(!cfg_window_open(&w, 86400 * 3 + 23 * 3600, &opens) &&
	      opens == 86400 * 4 + 5400, "23:00 -> opens 01:30 next day (%lld)", (long long)opens);
	CHECK(cfg_window_parse("", &w, why, sizeof(why)) == 0 && w.n == 0 &&
	      cfg_window_open(&w, 12345, &opens), "empty: always open");
	CHECK(cfg_window_parse("00:00-24:00", &w, why, sizeof(why)) == 0 &&
	      cfg_window_open(&w, 86400 * 7 + 3600 * 23 + 3599, &opens) &&
	      cfg_window_open(&w, 86400 * 7, &opens), "00:00-24:00: the whole day");
	CHECK(cfg_window_parse("08:00-08:00,9:15-10:00", &w, why, sizeof(why)) == 0 && w.n == 2 &&
	      w.start[1] == 555 && cfg_window_open(&w, 3 * 3600, &opens),
	      "start = end: whole day; commas; one-digit hour: %s", why);
	static const char *const badw[] = {"25:00-01:00", "12:00", "12:00-13", "1200-1300",
	                                   "24:00-01:00", "12:60-13:00", "12:00-13:00x",
	                                   "-12:00-13:00", "12:00--13:00", "123:00-13:00"};
	for (size_t i = 0; i < BKS_ARRAY_SIZE(badw); i++)
		CHECK(cfg_window_parse(badw[i], &w, why, sizeof(why)) < 0 && why[0],
		      "'%s' refused", badw[i]);
	char many[400] = "";
	for (int i = 0; i <= CFG_MAX_WINDOWS; i++)
		snprintf(many + strlen(many), sizeof(many) - strlen(many), "%02d:00-%02d:30 ", i, i);
	CHECK(cfg_window_parse(many, &w, why, sizeof(why)) == -ERANGE, "17 windows refused");
	/* In the file: the text is kept; a bad one names the key. */
	REQUIRE_V(parse_kv("repl", "window = 22:00-06:00 12:00-13:00   # nights, noon", &c,
	                   &e) == 0 && !strcmp(c.repl_window, "22:00-06:00 12:00-13:00"),
	          "window in the file: %s", e.msg);
	cfg_free(&c);
	CHECK(parse_kv("repl", "window = 22:00", &c, &e) < 0 && strstr(e.msg, "[repl] window"),
	      "bad window in the file: %s", e.msg);
	REQUIRE_V(parse_kv("repl", "lag_alert = 1h\nlag_alert_bytes = 10G", &c, &e) == 0 &&
	          c.repl_lag_alert_s == 3600 && c.repl_lag_alert_bytes == (10ull << 30),
	          "lag_alert: %s", e.msg);
	/* cfg_set_key: the file's checks, a key's reloadability. */
	int rl = -1;
	CHECK(cfg_set_key(&c, "repl", "bwlimit", "50M", &rl, why, sizeof(why)) == 0 &&
	      c.repl_bwlimit == (50ull << 20) && rl == 1, "set bwlimit 50M: %s", why);
	CHECK(cfg_set_key(&c, "repl", "window", "06:00-07:00", &rl, why, sizeof(why)) == 0 &&
	      !strcmp(c.repl_window, "06:00-07:00") && rl == 1, "set window: %s", why);
	CHECK(cfg_set_key(&c, "repl", "bwlimit", "1.5G", &rl, why, sizeof(why)) == -EINVAL &&
	      c.repl_bwlimit == (50ull << 20), "a bad rate is refused, the value kept");
	CHECK(cfg_set_key(&c, "repl", "bwlimit", "1M\n", &rl, why, sizeof(why)) == -EINVAL,
	      "a control character is refused");
	CHECK(cfg_set_key(&c, "repl", "nosuch", "1", &rl, why, sizeof(why)) == -ENOENT,
	      "no such key");
	CHECK(cfg_set_key(&c, "repl", "listen", "127.0.0.1:1", &rl, why, sizeof(why)) == 0 &&
	      rl == 0, "listen: a restart key");
	cfg_free(&c);
	group_done("[repl] window, cfg_set_key");
}

/* --seeds DIR: valid files for the fuzzer's corpus. */
static int write_seeds(const char *dir)
{
	static const char *const seed[] = {
		"[array]\ndisks = /dev/sda /dev/sdb /dev/sdc /dev/sdd\n",
		"[daemon]\ndemo = yes\nthreads = 4\n[log]\nlevel = debug\n[web]\nlisten =\n",
		"[array]\nname = lab\ndisks = \"/srv/demo/disk 0\" /srv/demo/d1\nspares = /srv/s\n"
		"[clients]\nalice = " SECRET1 "\n[native]\nlisten = [::1]:7070 localhost:7071\n",
	};
	char p[600];
	for (size_t i = 0; i <= BKS_ARRAY_SIZE(seed); i++) {
		const char *t = i < BKS_ARRAY_SIZE(seed) ? seed[i] : full_text;
		snprintf(p, sizeof(p), "%s/config-%zu.conf", dir, i);
		FILE *f = fopen(p, "wb");
		if (!f || fwrite(t, 1, strlen(t), f) != strlen(t) || fclose(f) != 0)
			return 1;
	}
	return 0;
}

/* [nfs] keys and [export NAME] sections: parsing, networks, errors, reload. */
static void test_nfs(void)
{
	bks_cfg c, d;
	bks_err e = {0};
	char what[256];
	const char *txt = "[array]\ndisks = /dev/sda\n[nfs]\nenable = yes\nlisten = 0.0.0.0:2049\n"
	                  "mount_port = 635\nportmap_port = 0\nwsize = 512K\n"
	                  "[export backups]\npath = /backups\naccess = rw\n"
	                  "clients = 10.1.0.0/16, 192.168.7.7 fd00::/8\nsquash = all_squash\n"
	                  "anonuid = 1000\nanongid = 1001\nsecure = no\nauth_none = yes\n"
	                  "[export ro]\npath = /\n";
	REQUIRE_V(parse(txt, &c, &e) == 0, "an [nfs] section and two exports parse (%s)",
	          bks_errmsg(&e, -1));
	CHECK(c.nfs_enabled && c.nfs_listen.port == 2049 && c.nfs_mount_port == 635 &&
	      c.nfs_portmap_port == 0 && c.nfs_wsize == 512 * 1024 && c.nfs_rsize == 1 << 20,
	      "[nfs] values");
	REQUIRE_V(c.nexports == 2, "two exports");
	const cfg_export *x = &c.exports[0], *y = &c.exports[1];
	CHECK(!strcmp(x->name, "backups") && !strcmp(x->path, "/backups") && x->rw &&
	      x->squash == CFG_ALL_SQUASH && x->anonuid == 1000 && x->anongid == 1001 &&
	      !x->secure && x->auth_none && x->nnets == 3 && x->id != 0 && x->id != y->id,
	      "export values");
	CHECK(!y->rw && y->squash == CFG_ROOT_SQUASH && y->secure && !y->auth_none &&
	      y->anonuid == 65534 && y->nnets == 0, "export defaults: ro, root_squash, secure, "
	      "nobody");
	uint8_t a1[16] = {10, 1, 200, 3}, a2[16] = {10, 2, 0, 1}, a3[16] = {192, 168, 7, 7},
	        a4[16] = {192, 168, 7, 8}, a6[16] = {0xfd, 0x12}, a7[16] = {0xfe};
	CHECK(cfg_export_allows(x, CFG_AF_INET, a1) && !cfg_export_allows(x, CFG_AF_INET, a2) &&
	      cfg_export_allows(x, CFG_AF_INET, a3) && !cfg_export_allows(x, CFG_AF_INET, a4),
	      "IPv4 networks: /16 and a single address");
	CHECK(cfg_export_allows(x, CFG_AF_INET6, a6) && !cfg_export_allows(x, CFG_AF_INET6, a7) &&
	      !cfg_export_allows(x, CFG_AF_INET6, a1), "IPv6 network; families kept apart");
	CHECK(!cfg_export_allows(y, CFG_AF_INET, a1), "an empty clients list admits nobody");

	/* reload: an export change is reloadable, [nfs] keys need a restart */
	const char *txt2 = "[array]\ndisks = /dev/sda\n[nfs]\nenable = yes\nlisten = 0.0.0.0:2049\n"
	                   "mount_port = 636\nportmap_port = 0\nwsize = 512K\n"
	                   "[export backups]\npath = /backups\naccess = ro\n";
	REQUIRE_V(parse(txt2, &d, &e) == 0, "second config parses");
	int n = cfg_reload_diff(&c, &d, what, sizeof(what));
	CHECK(n == 1 && strstr(what, "nfs.mount_port"), "exports reload, mount_port is a "
	      "restart key (%d, '%s')", n, what);
	cfg_take_reloadable(&c, &d);
	CHECK(c.nexports == 1 && !c.exports[0].rw && d.nexports == 2, "the new exports taken");
	cfg_free(&c);
	cfg_free(&d);

	static const struct { const char *text, *msg; } nbad[] = {
		{"[export]\npath = /\n", "the name is 1..64"},
		{"[export a b]\npath = /\n", "the name is 1..64"},
		{"[export x]\naccess = rw\n", "has no path"},
		{"[export x]\npath = rel\n", "absolute namespace path"},
		{"[export x]\npath = /\naccess = rx\n", "rw or ro"},
		{"[export x]\npath = /\nclients = 10.0.0.0/33\n", "not an address"},
		{"[export x]\npath = /\nclients = host.example\n", "not an address"},
		{"[export x]\npath = /\nsquash = root\n", "root_squash"},
		{"[export x]\npath = /\nanonuid = -1\n", "a number"},
		{"[export x]\npath = /\nsecure = maybe\n", "yes or no"},
		{"[export x]\npath = /\nro = yes\n", "unknown key"},
		{"[export x]\npath = /\n[export x]\npath = /a\n", "defined twice"},
		{"[nfs]\nwsize = 3M\n", "wsize"},
	};
	for (size_t i = 0; i < BKS_ARRAY_SIZE(nbad); i++) {
		char t[512];
		snprintf(t, sizeof(t), "[array]\ndisks = /dev/sda\n%s", nbad[i].text);
		int r = parse(t, &c, &e);
		CHECK(r < 0 && strstr(bks_errmsg(&e, r), nbad[i].msg), "refused: %.40s -> %s", nbad[i].text,
		      bks_errmsg(&e, r));
	}
	group_done(__func__);
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "--seeds"))
		return write_seeds(argv[2]);
	test_defaults();
	test_full();
	test_errors();
	test_limits();
	test_values();
	test_quoting();
	test_lists();
	test_load();
	test_reload();
	test_nfs();
	test_window();
	return tu_finish();
}
