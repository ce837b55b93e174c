#!/bin/sh
# test-array-loop: the degraded test on loop devices (the block-device code path:
# BLKGETSIZE64, O_EXCL, sysfs serials). Needs root and losetup; skipped otherwise.
if [ "$(id -u)" != 0 ]; then echo "SKIP: not root, loop devices unavailable"; exit 77; fi
if ! command -v losetup >/dev/null 2>&1; then echo "SKIP: losetup not installed"; exit 77; fi
if ! losetup -f >/dev/null 2>&1; then echo "SKIP: no free loop device"; exit 77; fi
exec "${top_builddir:-.}/tests/test-array-degraded" --loop
