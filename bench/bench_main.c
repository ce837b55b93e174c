/* bench/bench_main.c: bkstor-bench entry point. Each subcommand prints
 * "name: value" lines so scripts can compare runs. */
#include <config.h>

#include "bench/bench.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

double bench_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void bench_print(const char *name, double value)
{
	printf("%s: %.3f\n", name, value);
	fflush(stdout);
}

static int usage(const char *prog)
{
	fprintf(stderr,
	        "usage: %s raid|array|chunker|store|stages|all [--quick] [--dir DIR]\n"
	        "  raid   P+Q encode, recovery and check throughput (one thread)\n"
	        "  array  array write/read throughput\n"
	        "  all    both\n"
	        "  stages (or --stages)  CPU ns per byte of each ingest/restore stage, for\n"
	        "         bench/model.py\n"
	        "  --quick  shorter runs, for CI smoke tests\n"
	        "  --dir    where the array benchmark puts its disk files (/var/tmp)\n"
	        "  store --smallfiles   only the small synced objects figures\n",
	        prog);
	return 2;
}

int main(int argc, char **argv)
{
	const char *prog = argc > 0 ? argv[0] : "bkstor-bench";
	const char *what = NULL;
	int quick = 0;

	/* --quick may come anywhere; exactly one subcommand. */
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--quick") == 0)
			quick = 1;
		else if (strcmp(argv[i], "--stages") == 0 && !what)
			what = "stages";
		else if (strcmp(argv[i], "--smallfiles") == 0)
			continue; /* store: only the small-file figures */
		else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
			i++; /* the benchmark itself reads --dir DIR */
		else if (strncmp(argv[i], "--dir=", 6) == 0)
			continue;
		else if (!what && argv[i][0] != '-')
			what = argv[i];
		else
			return usage(prog);
	}
	if (!what)
		return usage(prog);

	int rc = 0;
	if (strcmp(what, "raid") == 0) {
		rc = bench_raid(argc, argv, quick);
	} else if (strcmp(what, "array") == 0) {
		rc = bench_array(argc, argv, quick);
	} else if (strcmp(what, "chunker") == 0) {
		rc = bench_chunker(argc, argv, quick);
	} else if (strcmp(what, "store") == 0) {
		rc = bench_store(argc, argv, quick);
	} else if (strcmp(what, "stages") == 0) {
		rc = bench_stages(argc, argv, quick);
	} else if (strcmp(what, "all") == 0) {
		rc = bench_raid(argc, argv, quick);
		if (rc == 0)
			rc = bench_array(argc, argv, quick);
	} else {
		return usage(prog);
	}
	return rc == 0 ? 0 : 1;
}
