#!/bin/sh
# test-cli-store: bkstorctl store create/stats/verify/rebuild-index on file disks:
# exit codes, human and --json output; a store on an array without one is refused.
set -u
ctl="${top_builddir:-.}/cli/bkstorctl"
[ -x "$ctl" ] || { echo "SKIP: $ctl not built"; exit 77; }
command -v python3 >/dev/null 2>&1 || { echo "SKIP: python3 missing"; exit 77; }
dir=$(mktemp -d /var/tmp/bks-cli-store-XXXXXX)
trap 'rm -rf "$dir"' EXIT
fails=0
check() { # description, expected exit, command...
	what=$1; want=$2; shift 2
	"$@" >"$dir/out" 2>"$dir/err"; got=$?
	if [ "$got" = "$want" ]; then echo "ok   - $what (exit $got)"
	else echo "FAIL - $what: exit $got, wanted $want"; sed 's/^/    /' "$dir/err"; fails=$((fails + 1)); fi
}
disks=""
for i in 0 1 2 3 4 5; do truncate -s 64M "$dir/d$i"; disks="$disks $dir/d$i"; done
# shellcheck disable=SC2086
check "array create" 0 "$ctl" array create --strip-size 64K $disks
# shellcheck disable=SC2086
check "store stats without a store" 1 "$ctl" store stats $disks
grep -q "holds no store" "$dir/err" && echo "ok   - message says the array holds no store" ||
	{ echo "FAIL - message: $(cat "$dir/err")"; fails=$((fails + 1)); }
# shellcheck disable=SC2086
check "store create" 0 "$ctl" store create $disks
# shellcheck disable=SC2086
check "store create twice" 1 "$ctl" store create $disks
# shellcheck disable=SC2086
check "store stats --json" 0 "$ctl" store stats --json $disks
if python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["objects"]==0 and d["rows_total"]>0' "$dir/out"; then
	echo "ok   - stats: 0 objects, rows counted"; else echo "FAIL - stats json"; fails=$((fails + 1)); fi
# shellcheck disable=SC2086
check "store verify" 0 "$ctl" store verify $disks
# shellcheck disable=SC2086
check "store rebuild-index --json" 0 "$ctl" store rebuild-index --json $disks
check "store stats without disks" 2 "$ctl" store stats
[ "$fails" = 0 ] && echo "all checks passed" || { echo "$fails check(s) failed"; exit 1; }
