/* tests/tu_appl.h: the part of an appliance (daemon/appl.h) that the tests of
 * daemon/lun.c and daemon/sbc.c set up around a real store, without the daemon:
 * the locks, the durability state, the store, the namespace and the array name
 * (the LUN identities use it). Linked only into the tests that name it in their
 * SOURCES (they also link daemon/appl.c), not into tests/libtestutil.a, which the
 * layer tests link without daemon/. */
#ifndef BKS_TU_APPL_H
#define BKS_TU_APPL_H

#include "daemon/appl.h"

/* Zeroes *ap and sets it up on s (the namespace opened on it; s stays the
 * caller's). 0, or -errno with the reason on stderr. */
int tu_appl_up(appl *ap, store *s);

#endif
