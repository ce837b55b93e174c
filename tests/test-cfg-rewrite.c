/* test-cfg-rewrite: cfg_rewrite under concurrency. Several threads rewrite different
 * keys of one config file at once (as a password change and an add-spare did, which
 * once left a file without the array's disks and the client secrets) while a reader
 * loads it again and again: every load must parse and hold every key, and at the end
 * each key holds the last value its thread wrote. Also: one rewrite keeps comments and
 * the other sections, n = 0 removes a key, a missing section is appended, and no
 * temporary file is left behind. The rewriter reads lines as the daemon's parser
 * does (common/ini.h): `[ web ]` and `key=value` are the section and key they are to
 * the daemon, a last line without a newline gets one before a key is added after it,
 * and a file the daemon would refuse is left alone with the line named. */
#include <config.h>

#include "tests/testutil.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "daemon/cfg_rewrite.h"
#include "daemon/config.h"

#define NWRITERS 6
#define ROUNDS 60
#define SECRET1 "00112233445566778899aabbccddeeff"
#define SECRET2 "ffeeddccbbaa99887766554433221100"

static char path[1100];
static volatile int stop_reader;
static int reader_loads, reader_bad;
static char reader_msg[400];

static const char base_text[] =
	"# the appliance's configuration\n"
	"[array]\n"
	"disks = /dev/sda /dev/sdb /dev/sdc /dev/sdd\n"
	"spares = /dev/sde\n"
	"[store]\n"
	"zstd_level = 3\n"
	"[clients]\n"
	"alpha = " SECRET1 "\n"
	"beta = " SECRET2 "\n"
	"[web]\n"
	"session_timeout = 12h\n"
	"[log]\n"
	"level = info\n"
	"[native]\n"
	"idle_timeout = 60s\n"
	"max_connections = 256\n";

#define PW "pbkdf2-sha256$1000$00112233445566778899aabbccddeeff$00112233445566778899aabbccddeeff"
#define DISKS "[array]\ndisks = /dev/sda /dev/sdb /dev/sdc /dev/sdd\n"

static void write_file(const char *text)
{
	FILE *f = fopen(path, "w");
	if (f) {
		fputs(text, f);
		fclose(f);
	}
	chmod(path, 0600);
}

/* The file holds exactly want. */
static int file_is(const char *want)
{
	size_t len = 0;
	uint8_t *text = tu_read_file(path, &len);
	int ok = text && len == strlen(want) && !memcmp(text, want, len);
	if (!ok)
		fprintf(stderr, "file: '%.*s'\n", text ? (int)len : 0, text ? (char *)text : "");
	free(text);
	return ok;
}

/* Writer i owns one key; value v of round v. */
static void writer_val(int i, int v, char *buf, size_t cap, const char **sect,
                       const char **key)
{
	switch (i) {
	case 0: *sect = "array"; *key = "spares";
		snprintf(buf, cap, "/dev/spare%d", v); break;
	case 1: *sect = "web"; *key = "admin_password";
		snprintf(buf, cap, "pbkdf2-sha256$%d$00112233445566778899aabbccddeeff$"
		         "00112233445566778899aabbccddeeff", 1000 + v); break;
	case 2: *sect = "store"; *key = "zstd_level";
		snprintf(buf, cap, "%d", v % 20); break;
	case 3: *sect = "web"; *key = "session_timeout";
		snprintf(buf, cap, "%dm", 1 + v); break;
	case 4: *sect = "native"; *key = "idle_timeout";
		snprintf(buf, cap, "%ds", 1 + v); break;
	default: *sect = "native"; *key = "max_connections";
		snprintf(buf, cap, "%d", 1 + v); break;
	}
}

static void *writer(void *arg)
{
	int i = (int)(intptr_t)arg;
	for (int v = 0; v < ROUNDS; v++) {
		char buf[200];
		const char *sect, *key, *vals[1] = {buf};
		bks_err e = {0};
		writer_val(i, v, buf, sizeof(buf), &sect, &key);
		int r = cfg_rewrite(path, sect, key, vals, 1, &e);
		if (r < 0) {
			fprintf(stderr, "writer %d: %s\n", i, bks_errmsg(&e, r));
			return (void *)1;
		}
	}
	return NULL;
}

/* The keys nobody rewrites are all still there. */
static int intact(const bks_cfg *c)
{
	return c->ndisks == 4 && !strcmp(c->disks[3], "/dev/sdd") && c->nclients == 2 &&
	       !strcmp(c->clients[0].secret, SECRET1) && !strcmp(c->clients[1].secret, SECRET2) &&
	       c->nspares == 1 && c->log_level == CFG_LOG_INFO;
}

static void *reader(void *arg)
{
	(void)arg;
	while (!stop_reader) {
		bks_cfg c;
		bks_err e = {0};
		int r = cfg_load(path, &c, &e);
		reader_loads++;
		if (r < 0 || !intact(&c)) {
			if (!reader_bad++)
				snprintf(reader_msg, sizeof(reader_msg), "%s",
				         r < 0 ? bks_errmsg(&e, r) : "a key went missing");
		}
		cfg_free(&c);
	}
	return NULL;
}

static int leftovers(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;
	while (d && (de = readdir(d)))
		n += de->d_name[0] != '.';
	if (d)
		closedir(d);
	return n - 1; /* the config file itself */
}

int main(void)
{
	const char *dir = tu_tmpdir("cfg-rewrite");
	bks_cfg c;
	bks_err e = {0};
	pthread_t w[NWRITERS], rd;
	int bad = 0, r;

	REQUIRE(dir, "temp dir");
	snprintf(path, sizeof(path), "%s/bkstord.conf", dir);

	/* One rewrite: other lines stay, a missing section is added, n = 0 removes. */
	write_file(base_text);
	const char *two[2] = {"/dev/x", "/dev/y"};
	REQUIRE(cfg_rewrite(path, "array", "spares", two, 2, &e) == 0, "%s", bks_errmsg(&e, -1));
	REQUIRE(cfg_rewrite(path, "daemon", "pidfile", (const char *[]){"/run/b.pid"}, 1, &e) == 0,
	        "append section");
	REQUIRE(cfg_load(path, &c, &e) == 0, "%s", bks_errmsg(&e, -1));
	CHECK(c.nspares == 2 && !strcmp(c.spares[1], "/dev/y") && c.ndisks == 4 &&
	      c.nclients == 2 && !strcmp(c.pidfile, "/run/b.pid"), "one rewrite keeps the rest");
	cfg_free(&c);
	REQUIRE(cfg_rewrite(path, "array", "spares", NULL, 0, &e) == 0, "remove");
	REQUIRE(cfg_load(path, &c, &e) == 0, "%s", bks_errmsg(&e, -1));
	CHECK(c.nspares == 0 && c.ndisks == 4, "n = 0 removes the key");
	cfg_free(&c);
	FILE *f = fopen(path, "r");
	char first[64] = "";
	CHECK(f && fgets(first, sizeof(first), f) && !strcmp(first, "# the appliance's "
	      "configuration\n"), "the comment is kept: '%s'", first);
	if (f)
		fclose(f);
	struct stat st;
	CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600, "mode 0600");
	printf("ok - single rewrites\n");

	int fails = tu_failures;
	/* Spelled as an admin may spell it: the key is replaced in its section, not
	 * added again in a second [web] (the daemon refuses a repeated scalar). */
	write_file(DISKS "[ web ]\n"
	           "session_timeout=2h\n"
	           "admin_password=\"old\"   # set by passwd\n"
	           "[log]\n"
	           "level = info\n");
	REQUIRE(cfg_rewrite(path, "web", "admin_password", (const char *[]){PW}, 1, &e) == 0,
	        "%s", bks_errmsg(&e, -1));
	r = cfg_load(path, &c, &e);
	CHECK(r == 0, "[ web ] and key=value: the file still loads: %s", bks_errmsg(&e, r));
	if (r == 0) {
		CHECK(!strcmp(c.admin_password, PW) && c.session_timeout_s == 7200,
		      "the key replaced in place, the other kept");
		cfg_free(&c);
	}
	CHECK(file_is(DISKS "[ web ]\nsession_timeout=2h\nadmin_password = " PW "\n"
	              "[log]\nlevel = info\n"), "only the key's line changed");

	/* A last line without its newline: the added key goes on a line of its own. */
	write_file(DISKS "[web]\nsession_timeout = 2h");
	REQUIRE(cfg_rewrite(path, "web", "admin_password", (const char *[]){PW}, 1, &e) == 0,
	        "%s", bks_errmsg(&e, -1));
	r = cfg_load(path, &c, &e);
	CHECK(r == 0 && c.session_timeout_s == 7200 && !strcmp(c.admin_password, PW),
	      "no final newline: %s", r ? bks_errmsg(&e, r) : "keys lost");
	if (r == 0)
		cfg_free(&c);
	write_file(DISKS "[web]\nsession_timeout = 2h");
	REQUIRE(cfg_rewrite(path, "log", "level", (const char *[]){"debug"}, 1, &e) == 0,
	        "%s", bks_errmsg(&e, -1));
	r = cfg_load(path, &c, &e);
	CHECK(r == 0 && c.session_timeout_s == 7200, "no final newline, new section: %s",
	      r ? bks_errmsg(&e, r) : "keys lost");
	if (r == 0)
		cfg_free(&c);

	/* A line the daemon would refuse: no rewrite, the line named, nothing left. */
	write_file(DISKS "[web]\nsession_timeout = 2h\nthis is not a key\n");
	bks_err_clear(&e);
	r = cfg_rewrite(path, "web", "admin_password", (const char *[]){PW}, 1, &e);
	CHECK(r == -EINVAL && strstr(e.msg, "bkstord.conf:5: malformed line"),
	      "a malformed line refuses the rewrite: %d '%s'", r, e.msg);
	CHECK(file_is(DISKS "[web]\nsession_timeout = 2h\nthis is not a key\n"),
	      "the file is untouched");
	CHECK(leftovers(dir) == 0, "no temporary file left after a refused rewrite");
	printf("%s - lines as the daemon reads them\n", tu_failures > fails ? "not ok" : "ok");

	/* Many at once. */
	write_file(base_text);
	pthread_create(&rd, NULL, reader, NULL);
	for (int i = 0; i < NWRITERS; i++)
		pthread_create(&w[i], NULL, writer, (void *)(intptr_t)i);
	for (int i = 0; i < NWRITERS; i++) {
		void *ret;
		pthread_join(w[i], &ret);
		bad += ret != NULL;
	}
	stop_reader = 1;
	pthread_join(rd, NULL);
	CHECK(bad == 0, "%d writers failed", bad);
	CHECK(reader_bad == 0, "%d of %d loads during the rewrites were bad (first: %s)",
	      reader_bad, reader_loads, reader_msg);
	r = cfg_load(path, &c, &e);
	CHECK(r == 0, "final load: %s", bks_errmsg(&e, r));
	if (r == 0) {
		char want[200];
		const char *sect, *key;
		CHECK(intact(&c), "untouched keys survive %d concurrent rewrites",
		      NWRITERS * ROUNDS);
		writer_val(0, ROUNDS - 1, want, sizeof(want), &sect, &key);
		CHECK(c.nspares == 1 && !strcmp(c.spares[0], want), "spares is the last written");
		writer_val(1, ROUNDS - 1, want, sizeof(want), &sect, &key);
		CHECK(!strcmp(c.admin_password, want), "admin_password is the last written");
		CHECK(c.zstd_level == (ROUNDS - 1) % 20, "zstd_level %d", c.zstd_level);
		CHECK(c.session_timeout_s == (uint32_t)ROUNDS * 60, "session_timeout %u",
		      c.session_timeout_s);
		CHECK(c.idle_timeout_s == (uint32_t)ROUNDS, "idle_timeout %u", c.idle_timeout_s);
		CHECK(c.max_connections == (uint32_t)ROUNDS, "max_connections %u",
		      c.max_connections);
		cfg_free(&c);
	}
	CHECK(leftovers(dir) == 0, "%d temporary files left beside the config",
	      leftovers(dir));
	printf("%s - %d concurrent rewrites, %d loads meanwhile\n",
	       tu_failures ? "not ok" : "ok", NWRITERS * ROUNDS, reader_loads);
	tu_cleanup();
	return tu_finish();
}
