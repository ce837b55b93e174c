/* daemon/bkstord.c: the bkstor daemon.
 *
 *   bkstord [--config FILE] [--daemon] [--pidfile FILE] [--check-config]
 *   bkstord --demo DIR [--port N]
 *
 * Owns the disks named in the configuration, serves the native protocol and the
 * control API. SIGTERM/SIGINT: stop accepting, end the connections (an unfinished
 * PUT is aborted and never appears), final commit, exit 0. SIGHUP: reload what can be
 * reloaded (log level, client secrets, the native limits, commit interval, GC
 * threshold, the array's background pacing, the dashboard's admin password, session
 * timeout and API tokens); the
 * keys docs/config.md marks "restart" are logged as needing a restart. */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/api.h"
#include "daemon/appl.h"
#include "daemon/demo.h"
#include "daemon/iscsi.h"
#include "daemon/log.h"
#include "daemon/native.h"
#include "daemon/lun.h"
#include "daemon/nfs.h"
#include "daemon/repl.h"

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: bkstord [--config FILE] [--daemon] [--pidfile FILE]\n"
	        "       bkstord --demo DIR [--port N]\n"
	        "\n"
	        "  --config FILE   configuration (default %s; docs/config.md)\n"
	        "  --demo DIR      run on file-backed disks in DIR, created the first time\n"
	        "                  (8 disks + 1 hot spare, sparse), serving on localhost\n"
	        "  --port N        demo: native protocol on N, dashboard on N+1, NFS on\n"
	        "                  N+2 and MOUNT on N+3 (first run)\n"
	        "  --daemon        detach from the terminal (logs then go nowhere: prefer\n"
	        "                  systemd with the default foreground mode)\n"
	        "  --pidfile FILE  write the process id there\n"
	        "  --check-config  parse the configuration, report, and exit\n",
	        CFG_DEFAULT_PATH);
}

static int write_pidfile(const char *path)
{
	if (!path || !path[0])
		return 0;
	FILE *f = fopen(path, "w");
	if (!f)
		return -errno;
	fprintf(f, "%d\n", (int)getpid());
	return fclose(f) == 0 ? 0 : -errno;
}

static void apply_reload(appl *ap, native_srv *nsrv, api *apisrv, const char *path)
{
	bks_cfg nc;
	bks_err e = {0};
	char cannot[512];
	int r = cfg_load(path, &nc, &e);
	if (r < 0) {
		LOG_E("reload: %s (keeping the running configuration)", bks_errmsg(&e, r));
		return;
	}
	if (nc.warning)
		LOG_W("reload: %s", nc.warning);
	int n = cfg_reload_diff(&ap->cfg, &nc, cannot, sizeof(cannot));
	if (cannot[0])
		LOG_W("reload: %s changed; that needs a restart (kept as running)", cannot);
	/* Every key without K_RESTART reaches its user here (config.c's promise). */
	log_set_level(nc.log_level);
	if (nsrv)
		native_reload(nsrv, &nc, &e);
	if (apisrv)
		api_reload(apisrv, &nc);
	nfs_reload(ap->nfs, &nc);
	iscsi_reload(ap->iscsi, &nc);
	repl_reload(ap->repl, &nc);
	/* commit_interval and gc_min_live are read from ap->cfg; the rest of the
	 * reloadable values only keep ap->cfg true for the next cfg_reload_diff. */
	appl_lock(ap);
	cfg_take_reloadable(&ap->cfg, &nc);
	appl_unlock(ap);
	appl_reload_pacing(ap); /* [array] bg_min_rate, bg_max_rate, fg_idle_ms */
	cfg_free(&nc);
	appl_event_add(ap, CFG_LOG_INFO, "configuration reloaded (%d settings changed)", n);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'}, {"demo", required_argument, NULL, 'D'},
		{"port", required_argument, NULL, 'p'},   {"daemon", no_argument, NULL, 'd'},
		{"pidfile", required_argument, NULL, 'P'}, {"help", no_argument, NULL, 'h'},
		{"check-config", no_argument, NULL, 'C'},
		{NULL, 0, NULL, 0}};
	const char *config = NULL, *demo = NULL, *pidfile = NULL;
	char demo_conf[4096], demo_pw[32] = "";
	int detach = 0, port = 0, check_only = 0, o;
	bks_cfg cfg;
	bks_err e = {0};
	appl *ap = NULL;
	native_srv *nsrv = NULL;
	api *apisrv = NULL;
	int r;

	while ((o = getopt_long(argc, argv, "c:D:p:dP:h", opts, NULL)) != -1) {
		switch (o) {
		case 'c': config = optarg; break;
		case 'D': demo = optarg; break;
		case 'p': port = atoi(optarg); break;
		case 'd': detach = 1; break;
		case 'P': pidfile = optarg; break;
		case 'h': usage(stdout); return 0;
		case 'C': check_only = 1; break;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc || (demo && config) || port < 0 || port > 65532) {
		usage(stderr);
		return 2;
	}
	if (demo) {
		if ((r = demo_prepare(demo, port, demo_conf, sizeof(demo_conf), demo_pw, &e)) < 0) {
			fprintf(stderr, "bkstord: demo: %s\n", bks_errmsg(&e, r));
			return 1;
		}
		config = demo_conf;
	}
	if (!config)
		config = CFG_DEFAULT_PATH;
	if ((r = cfg_load(config, &cfg, &e)) < 0) {
		fprintf(stderr, "bkstord: %s\n", bks_errmsg(&e, r));
		return 1;
	}
	if (check_only) {
		printf("%s: ok (%d disks, %d spares, %d clients)%s%s\n", config, cfg.ndisks,
		       cfg.nspares, cfg.nclients, cfg.warning ? "; warning: " : "",
		       cfg.warning ? cfg.warning : "");
		cfg_free(&cfg);
		return 0;
	}
	log_set_level(cfg.log_level);
	if (cfg.warning)
		LOG_W("%s", cfg.warning);
	char *pid_own = strdup(pidfile ? pidfile : cfg.pidfile);
	pidfile = pid_own;
	if (detach && daemon(0, 0) < 0) {
		fprintf(stderr, "bkstord: cannot detach: %s\n", strerror(errno));
		return 1;
	}
	/* Signals are taken by this thread with sigwait; every other thread blocks them. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (!(ap = calloc(1, sizeof(*ap)))) {
		LOG_E("out of memory");
		return 1;
	}
	char *api_path = strdup(cfg.api_socket);
	if ((r = appl_open(ap, &cfg, demo != NULL, &e)) < 0) {
		LOG_E("cannot start: %s", bks_errmsg(&e, r));
		free(api_path);
		free(ap);
		return 1;
	}
	/* Replication before the control API: the API's repl verbs must find it. */
	if ((r = repl_start(ap, config, &ap->repl, &e)) < 0 ||
	    (r = native_start(ap, &nsrv, &e)) < 0 ||
	    (r = api_start(ap, nsrv, api_path, &apisrv, &e)) < 0) {
		LOG_E("cannot start: %s", bks_errmsg(&e, r));
		native_stop(nsrv);
		repl_stop(ap->repl);
		appl_close(ap);
		free(api_path);
		free(ap);
		return 1;
	}
	/* The handle key: [nfs] handle_key, else beside the configuration. */
	char keypath[CFG_MAX_PATH + 32];
	if (ap->cfg.nfs_handle_key[0]) {
		snprintf(keypath, sizeof(keypath), "%s", ap->cfg.nfs_handle_key);
	} else {
		const char *sl = strrchr(config, '/');
		snprintf(keypath, sizeof(keypath), "%.*snfs_handle.key",
		         sl ? (int)(sl - config + 1) : 0, config);
	}
	if ((r = nfs_start(ap, keypath, &ap->nfs, &e)) < 0) {
		LOG_E("cannot start: %s", bks_errmsg(&e, r));
		api_stop(apisrv);
		native_stop(nsrv);
		repl_stop(ap->repl);
		appl_close(ap);
		free(api_path);
		free(ap);
		return 1;
	}
	/* The LUNs (the iSCSI target serves them; the API manages them). A store whose
	 * system directory cannot be made still serves backups: LUNs are then absent. */
	if ((r = lun_set_open(ap, &ap->luns, &e)) < 0) {
		LOG_E("LUNs unavailable: %s", bks_errmsg(&e, r));
		ap->luns = NULL;
	}
	/* The demo has one LUN (10 GiB, thin: it costs nothing until written). */
	if (demo && ap->luns && (r = lun_create(ap->luns, "demo", 10ull << 30, 512, "", &e)) < 0 &&
	    r != -EEXIST)
		LOG_W("demo: cannot create LUN demo: %s", bks_errmsg(&e, r));
	if (ap->luns && (r = iscsi_start(ap, ap->luns, &ap->iscsi, &e)) < 0) {
		LOG_E("cannot start: %s", bks_errmsg(&e, r));
		nfs_stop(ap->nfs);
		api_stop(apisrv);
		native_stop(nsrv);
		lun_set_close(ap->luns);
		appl_close(ap);
		free(api_path);
		free(ap);
		return 1;
	}
	if ((r = write_pidfile(pidfile)) < 0)
		LOG_W("pidfile %s: %s", pidfile, strerror(-r));
	arr_status *st = malloc(sizeof(*st));
	if (st) {
		arr_get_status(ap->a, st);
		appl_event_add(ap, CFG_LOG_INFO, "bkstord running: array %s %s, %d disks",
		               st->name, arr_health_name(st->health), st->width);
		free(st);
	}
	if (demo)
		demo_banner(demo, &ap->cfg, demo_pw);

	for (;;) {
		int sig = 0;
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			apply_reload(ap, nsrv, apisrv, config);
			continue;
		}
		LOG_I("signal %d: stopping", sig);
		break;
	}
	ap->shutting_down = 1;
	iscsi_stop(ap->iscsi); /* before the LUNs close: its devices hold them */
	ap->iscsi = NULL;
	nfs_stop(ap->nfs);
	ap->nfs = NULL;
	native_stop(nsrv);
	api_stop(apisrv);
	lun_set_close(ap->luns); /* after every user of a LUN: applies the caches */
	ap->luns = NULL;
	repl_stop(ap->repl); /* after the API (whose repl verbs use it), before the store */
	ap->repl = NULL;
	r = appl_close(ap);
	if (pidfile && pidfile[0])
		unlink(pidfile);
	LOG_I("stopped%s", r < 0 ? " (the final commit failed: see above)" : "");
	free(pid_own);
	free(api_path);
	free(ap);
	return r < 0 ? 1 : 0;
}
