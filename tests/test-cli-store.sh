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
cp "$dir/out" "$dir/stats.json"
# shellcheck disable=SC2086
check "store verify" 0 "$ctl" store verify $disks
# shellcheck disable=SC2086
check "store verify --json" 0 "$ctl" store verify --json $disks
cp "$dir/out" "$dir/verify.json"
# The same writers serve the daemon (dedup/store_json.c): every key bkstorctl writes
# is one docs/api.md gives the status "capacity" and the verify job, and the other way
# round for the verify job.
if python3 - "$dir/stats.json" "$dir/verify.json" "${top_srcdir:-.}/docs/api.md" <<'PY'
import json, re, sys
stats, verify = (set(json.load(open(f))) for f in sys.argv[1:3])
doc = open(sys.argv[3]).read()
cap = set(re.findall(r'"(\w+)":', re.search(r'"capacity": \{(.*?)\}', doc, re.S).group(1)))
job = re.search(r'`\{"kind": "verify",(.*?)\}`', doc, re.S).group(1)
# Not bkstorctl's: the job's own fields, the daemon's queued_for_repair and repair_from
# (and its values), the keys of
# bad_chunks' objects and a section name the text quotes.
job = set(re.findall(r'"(\w+)"', job)) - {"state", "started_ns", "finished_ns",
    "queued_for_repair", "repair_from", "source", "twin", "fingerprint", "length",
    "object", "Repair"}
bad = sorted(stats - cap) + sorted(verify ^ job)
if bad:
    sys.exit("keys that differ: %s" % bad)
PY
then ok "store stats/verify --json keys are the API's"; else bad "store stats/verify --json keys"; fi
# shellcheck disable=SC2086
check "store rebuild-index --json" 0 "$ctl" store rebuild-index --json $disks
check "store stats without disks" 2 "$ctl" store stats
finish
