#!/bin/sh
# The README's test command: install dependencies, build with warnings as errors,
# run every test (make check). Exit status 0 only if every test passed.
# BUILD_DIR (default build/) keeps the build out of the source tree.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
sh contrib/install-deps.sh
[ -x configure ] || autoreconf -fi
build=${BUILD_DIR:-$top/build}
mkdir -p "$build"
cd "$build"
[ -f Makefile ] || "$top/configure" --enable-werror -q
make -j"$(nproc)" -s
status=0
make -j"$(nproc)" check -s || status=$?
# One summary line whatever happened, from automake's test-suite.log.
if [ -f test-suite.log ]; then
	pass=$(sed -n 's/^# PASS: *//p' test-suite.log)
	fail=$(sed -n 's/^# FAIL: *//p' test-suite.log)
	err=$(sed -n 's/^# ERROR: *//p' test-suite.log)
	skip=$(sed -n 's/^# SKIP: *//p' test-suite.log)
	echo "tests: ${pass:-0} passed, $(( ${fail:-0} + ${err:-0} )) failed, ${skip:-0} skipped"
	[ "$status" = 0 ] || grep -B2 -A30 '^FAIL\|^ERROR' test-suite.log | head -150
fi
exit $status
