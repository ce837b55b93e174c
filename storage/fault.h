/* storage/fault.h: the test-only fault layer between the array and its disks.
 *
 * flt_wrap() puts a "fault" backend in front of a real disk. Rules on that disk make
 * chosen reads or writes fail with EIO, corrupt data silently on its way back, add
 * latency, or make the disk vanish (every later request fails with ENXIO, like a
 * pulled drive). A world groups the disks of one simulated machine for power cuts:
 * armed with a countdown of write/flush events, the event that reaches zero cuts the
 * power. At that instant every write not yet made durable by a flush is rolled back
 * from the pre-image the layer saved (FLT_PC_DROP: all of them; FLT_PC_REORDER: a
 * random subset, as a volatile disk cache that reorders would leave), the write
 * in progress is torn (a random prefix of its sectors lands), and every later
 * request on every disk of the world fails with EIO. Closing the disks and
 * importing them again is the reboot.
 *
 * Compiled into the library (the array never sees the difference), used only by tests
 * and benchmarks; not part of any user-facing interface.
 */
#ifndef BKS_FAULT_H
#define BKS_FAULT_H

#include <stdint.h>

#include "storage/disk.h"

typedef struct flt_world flt_world;

enum flt_pc_mode { FLT_PC_DROP = 0, FLT_PC_REORDER = 1 };
enum { FLT_READ = 1, FLT_WRITE = 2 };

int flt_world_new(uint64_t seed, flt_world **out);
/* Free the world; every disk wrapped in it must have been closed. Accepts NULL. */
void flt_world_free(flt_world *w);

/* Wrap inner (ownership passes to the new handle, which closes it). */
int flt_wrap(flt_world *w, disk *inner, disk **out);

/* Rules on a wrapped disk (d must come from flt_wrap). */
int flt_add_eio(disk *d, int ops, uint64_t off, uint64_t len); /* ops: FLT_READ|FLT_WRITE */
int flt_add_corrupt_read(disk *d, uint64_t off, uint64_t len);
/* Every request on d reports completing us later than it did (virtual time: the
 * array's timeout accounting sees a slow disk; nothing actually sleeps). */
void flt_set_latency_us(disk *d, uint32_t us);
void flt_disappear(disk *d);
void flt_clear(disk *d); /* drop every rule and bring a vanished disk back */
/* Bytes written to d that no flush has made durable yet (what a power cut now would
 * roll back): a test's proof that a flush that was needed happened. */
uint64_t flt_unflushed(disk *d);

/* Power: cut at the after-th write or flush from now (1 = the next one). */
void flt_arm_powercut(flt_world *w, uint64_t after, enum flt_pc_mode mode);
void flt_disarm(flt_world *w);
int flt_is_dead(const flt_world *w);
uint64_t flt_events(const flt_world *w); /* writes + flushes seen so far */
/* Make the world usable again after a cut (the "reboot"); disks stay as the cut
 * left them. */
void flt_power_on(flt_world *w);

#endif /* BKS_FAULT_H */
