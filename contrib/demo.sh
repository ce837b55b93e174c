#!/bin/sh
# The README's demo command: install dependencies, build, and create an 8+2 RAID-6
# array with one hot spare on sparse file-backed disks in ./demo (first run), then
# show it. Until the daemon lands, the array is driven by bkstorctl directly.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
sh contrib/install-deps.sh
[ -x configure ] || autoreconf -fi
build=${BUILD_DIR:-$top/build}
mkdir -p "$build"
(cd "$build" && { [ -f Makefile ] || "$top/configure" -q; } && make -j"$(nproc)" -s)
ctl="$build/cli/bkstorctl"
demo=${DEMO_DIR:-$top/demo}
mkdir -p "$demo"
disks=""
for i in 0 1 2 3 4 5 6 7 8 9; do disks="$disks $demo/disk$i"; done
if [ ! -f "$demo/disk0" ]; then
	# Sparse files: size each disk to a tenth of the free space, 1..16 GiB.
	free_kb=$(df -Pk "$demo" | awk 'NR==2 {print $4}')
	size_mb=$((free_kb / 1024 / 12))
	[ "$size_mb" -gt 16384 ] && size_mb=16384
	if [ "$size_mb" -lt 64 ]; then
		echo "demo: not enough free space in $demo (need ~1 GiB)" >&2
		exit 1
	fi
	for f in $disks "$demo/spare0"; do truncate -s "${size_mb}M" "$f"; done
	# shellcheck disable=SC2086
	"$ctl" array create --name demo --spare "$demo/spare0" $disks
	# shellcheck disable=SC2086
	"$ctl" store create $disks "$demo/spare0"
else
	# shellcheck disable=SC2086
	"$ctl" array show $disks "$demo/spare0"
fi
# shellcheck disable=SC2086
"$ctl" store stats $disks "$demo/spare0"
cat <<MSG

Demo array in $demo (sparse files). Try:
  $ctl array fail slot3 $demo/disk* $demo/spare0      # a disk dies: the spare is claimed and rebuilt
  $ctl array scrub $demo/disk* $demo/spare0           # check P/Q of every live row
  $ctl array show --json $demo/disk* $demo/spare0
  $ctl store verify $demo/disk* $demo/spare0          # read back every chunk of every object
Remove $demo to start over.
MSG
