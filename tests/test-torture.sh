#!/bin/sh
# test-torture: the seeded torture run (tests/torture.c) for three seeds of 20 s each.
# A failure prints its seed and op number; replay it with
#     tests/torture --seed S --ops N --verbose
# BKS_TORTURE_SEEDS and BKS_TORTURE_SECONDS choose other seeds and lengths.
prog="${top_builddir:-.}/tests/torture"
seeds="${BKS_TORTURE_SEEDS:-1 2 3}"
secs="${BKS_TORTURE_SECONDS:-20}"
rc=0
for s in $seeds; do
	"$prog" --seed "$s" --seconds "$secs" || rc=1
done
exit $rc
