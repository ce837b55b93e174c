/* tests/tu_appl.c: see tu_appl.h. */
#include <config.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "fs/ns.h"
#include "tests/tu_appl.h"

int tu_appl_up(appl *ap, store *s)
{
	bks_err e = {0};
	memset(ap, 0, sizeof(*ap));
	pthread_mutex_init(&ap->mu, NULL);
	pthread_mutex_init(&ap->evmu, NULL);
	appl_durable_init(ap);
	ap->s = s;
	ap->cfg.array_name = (char *)"test-array";
	int r = ns_open(s, &ap->n, &e);
	if (r < 0)
		fprintf(stderr, "ns_open: %s\n", bks_errmsg(&e, r));
	return r;
}
