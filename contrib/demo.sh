#!/bin/sh
# The README's demo command: install dependencies, build, then run bkstord --demo on
# sparse file-backed disks in ./demo (8 disks + 1 hot spare, made the first time and
# reused later), serving the native protocol and the control API on localhost.
# Ctrl-C stops it cleanly (final commit). DEMO_DIR and DEMO_PORT change the defaults.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
sh contrib/install-deps.sh
[ -x configure ] || autoreconf -fi
build=${BUILD_DIR:-$top/build}
mkdir -p "$build"
(cd "$build" && { [ -f Makefile ] || "$top/configure" -q; } && make -j"$(nproc)" -s)
demo=${DEMO_DIR:-$top/demo}
echo "bkstorctl is $build/cli/bkstorctl (add $build/cli to PATH)"
exec "$build/daemon/bkstord" --demo "$demo" --port "${DEMO_PORT:-7070}"
