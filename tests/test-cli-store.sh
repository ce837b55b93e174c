#!/bin/sh
# test-cli-store: bkstorctl store create/stats/verify/rebuild-index on file disks:
# exit codes, human and --json output; a store on an array without one is refused.
ctl="${top_builddir:-.}/cli/bkstorctl"
[ -x "$ctl" ] || { echo "SKIP: $ctl not built"; exit 77; }
. "${top_srcdir:-.}/tests/lib.sh"
dir=$T
disks=""
for i in 0 1 2 3 4 5; do truncate -s 64M "$dir/d$i"; disks="$disks $dir/d$i"; done
# shellcheck disable=SC2086
check "array create" 0 "$ctl" array create --strip-size 64K $disks
# shellcheck disable=SC2086
check "store stats without a store" 1 "$ctl" store stats $disks
grep -q "holds no store" "$dir/err" && ok "message says the array holds no store" ||
	bad "message: $(cat "$dir/err")"
# shellcheck disable=SC2086
check "store create" 0 "$ctl" store create $disks
# shellcheck disable=SC2086
check "store create twice" 1 "$ctl" store create $disks
# shellcheck disable=SC2086
check "store stats --json" 0 "$ctl" store stats --json $disks
if python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["objects"]==0 and d["rows_total"]>0' "$dir/out"; then
	ok "stats: 0 objects, rows counted"; else bad "stats json"; fi
# shellcheck disable=SC2086
check "store verify" 0 "$ctl" store verify $disks
# shellcheck disable=SC2086
check "store rebuild-index --json" 0 "$ctl" store rebuild-index --json $disks
check "store stats without disks" 2 "$ctl" store stats
finish
