/* bench/bench.h: the bkstor-bench subcommands and their shared helpers. */
#ifndef BKS_BENCH_H
#define BKS_BENCH_H

#include <stdint.h>

#include "storage/array.h"
#include "storage/disk.h"

int bench_raid(int argc, char **argv, int quick);
int bench_array(int argc, char **argv, int quick);
int bench_chunker(int argc, char **argv, int quick);
int bench_store(int argc, char **argv, int quick);
int bench_stages(int argc, char **argv, int quick);
/* An 8+2 array of 10 file disks of disk_bytes in dir, created or imported. */
arr *bench_make_array(const char *dir, uint64_t disk_bytes, disk_engine *eng, int create);
double bench_now(void);              /* seconds, CLOCK_MONOTONIC */
void bench_print(const char *name, double value);  /* prints "name: value\n" with %.3f */

#endif /* BKS_BENCH_H */
