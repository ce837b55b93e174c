#!/bin/sh
# bench/rebuild.sh [MB]: ingest while the array rebuilds onto its spare, in one run.
# Starts bkstord --demo (8 file disks, 6+2, one spare), stores 2 x MB megabytes
# (default MB 400) of filler so the rebuild has live rows to copy, then:
#   1. puts a file of MB megabytes alone;
#   2. fails slot 0 (the spare takes over and the rebuild starts) and at once puts
#      another (different) file of the same size, while the rebuild runs;
#   3. once the rebuild is over, puts a third file of the same size alone.
# Prints ingest_alone_seconds (the mean of 1 and 3: the machine is shared, and a
# baseline on both sides of the measurement cancels a drift of its load),
# ingest_rebuild_seconds, rebuild_ingest_slowdown (the second / the baseline;
# target <= 1.3), rebuild_mbps_during_ingest (MiB/s the rebuild
# read from the disks while the second put ran, from the rebuild job's done_rows in
# the status document, sampled every 0.2 s; it must stay >= bg_min_rate, 50 MiB/s by default:
# the floor that keeps a rebuild from taking forever under a steady backup load),
# rebuild_running_at_end (1 if the rebuild still ran when the put ended: the whole
# put was measured against it), rebuild_rows, rebuild_total_seconds (fail to done)
# and the array's health after. Client, daemon and file disks share the machine; the
# status sampler runs during all three puts (see sampler below).
# REBUILD_ALONE=1: the same rows, then the rebuild with no put at all; prints
# rebuild_rows and rebuild_alone_seconds (fail to done, sampled every 0.2 s).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$top/build}
ctl="$build/cli/bkstorctl"
mb=${1:-400}
work=$(mktemp -d "${TMPDIR:-/var/tmp}/bkstor-rebuild-XXXXXX")
dpid=""
spid=""
trap '[ -n "$spid" ] && kill $spid 2>/dev/null; [ -n "$dpid" ] && kill -9 $dpid 2>/dev/null; rm -rf "$work"' EXIT
now() { date +%s.%N; }
port=$((32000 + $$ % 20000))
"$build/daemon/bkstord" --demo "$work/demo" --port "$port" >"$work/daemon.log" 2>&1 &
dpid=$!
export BKSTOR_CLIENT="$work/demo/client.conf"
for _ in $(seq 1 100); do "$ctl" status >/dev/null 2>&1 && break; sleep 0.1; done
# The status sampler: `bkstorctl status --json` into $work/s.TAG.N every 0.2 s, with
# the time in $work/s.TAG.idx, until killed, or with "rebuild" as $2 until the
# rebuild job is gone. It parses nothing while it runs: a python3 start per sample
# (0.1 s of CPU on this machine) made the observer cost the put up to a third of a
# core in the loaded run only, more than the rebuild itself. The same sampler runs
# during the two puts alone, so the ratio carries the rebuild's cost, not its own.
sampler() {
	i=0
	: >"$work/s.$1.idx"
	while :; do
		t=$(now)
		"$ctl" status --json >"$work/s.$1.$i" 2>/dev/null || :
		echo "$t $i" >>"$work/s.$1.idx"
		[ "${2:-}" = rebuild ] && ! grep -q '"rebuild"' "$work/s.$1.$i" && break
		i=$((i + 1))
		sleep 0.2
	done
}
# The rebuild job from the samples of TAG, one line each: "seconds bytes_read running
# done_rows total_rows" (bytes_read: done_rows x the strips a row has left x strip
# size, what the rebuild has read, which is what bg_min_rate paces; running 0 once
# the job is gone). The API serves a status copy up to 250 ms old.
jobs() {
	python3 -c '
import json, sys
for line in open(sys.argv[1] + ".idx"):
    t, i = line.split()
    try:
        st = json.load(open(sys.argv[1] + "." + i))
    except ValueError:
        continue
    jobs = [j for j in st["array"]["jobs"] if j["kind"] == "rebuild"]
    j = jobs[0] if jobs else {"state": "none", "done_rows": 0, "total_rows": 0}
    per_row = (st["array"]["width"] - 1) * st["array"]["strip_size"]
    print(t, j["done_rows"] * per_row, 1 if j["state"] == "running" else 0,
          j["done_rows"], j["total_rows"])
' "$work/s.$1"
}
# A put with the sampler running alongside: prints its seconds.
put_sampled() {
	sampler "$3" &
	spid=$!
	t0=$(now); "$ctl" put "$1" "$2" >/dev/null; t1=$(now)
	kill $spid; wait $spid 2>/dev/null || :
	spid=""
	echo "$t1 - $t0" | bc -l
}
# Four different files of real data (none dedups against another), in the page cache.
{ for d in /usr/lib /usr/share /usr/bin; do tar cf - "$d" 2>/dev/null; done; } |
	head -c "$((5 * mb + 64 << 20))" >"$work/src"
head -c "$((2 * mb << 20))" "$work/src" >"$work/fill"
dd if="$work/src" of="$work/a" bs=1M skip="$((2 * mb))" count="$mb" 2>/dev/null
dd if="$work/src" of="$work/b" bs=1M skip="$((3 * mb))" count="$mb" 2>/dev/null
dd if="$work/src" of="$work/c" bs=1M skip="$((4 * mb))" count="$mb" 2>/dev/null
dd if="$work/src" of="$work/w" bs=1M skip="$((5 * mb))" count=64 2>/dev/null
rm "$work/src"
cat "$work/fill" "$work/a" "$work/b" "$work/c" "$work/w" >/dev/null
"$ctl" mkdir /r >/dev/null
"$ctl" put "$work/fill" /r/fill >/dev/null
"$ctl" put "$work/w" /r/warmup >/dev/null # a warm store for both measurements
sleep 1
if [ -n "${REBUILD_ALONE:-}" ]; then
	# The rebuild alone: as many rows as the loaded run's rebuild has (a and b
	# stored first), no put while it runs (bg_max_rate applies).
	"$ctl" put "$work/a" /r/a >/dev/null
	"$ctl" put "$work/b" /r/b >/dev/null
	sleep 1
	"$ctl" disk fail slot0 >/dev/null
	tf=$(now)
	sampler z rebuild
	te=$(now)
	jobs z >"$work/st.samples"
	rows=$(awk '$3 == 1 { r = $5 } END { print r + 0 }' "$work/st.samples")
	"$ctl" status --json >"$work/st.json"
	health=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["array"]["health"])' "$work/st.json")
	kill -TERM $dpid; wait $dpid || true; dpid=""
	echo "rebuild_rows: $rows"
	printf 'rebuild_alone_seconds: %.2f\n' "$(echo "$te - $tf" | bc -l)"
	echo "array_health_after: $health"
	exit 0
fi
base1=$(put_sampled "$work/a" /r/a a)
sleep 1 # the foreground goes idle (fg_idle_ms), as between two backups
"$ctl" disk fail slot0 >/dev/null
tf=$(now)
# Sample the rebuild every 0.2 s until it is over; the put runs meanwhile.
sampler b rebuild &
spid=$!
t0=$(now); "$ctl" put "$work/b" /r/b >/dev/null; t1=$(now)
loaded=$(echo "$t1 - $t0" | bc -l)
wait $spid
spid=""
te=$(now)
jobs b >"$work/st.samples"
# The rebuild's read rate while the put ran: first to last sample inside [t0, t1]
# taken while the job still ran.
rate=$(awk -v t0="$t0" -v t1="$t1" '$1 >= t0 && $1 <= t1 && $3 == 1 {
	if (!n++) { ta = $1; ba = $2 } tb = $1; bb = $2 }
	END { if (n > 1 && tb > ta) printf "%.1f", (bb - ba) / 1048576 / (tb - ta); else print "nan" }' "$work/st.samples")
running=$(awk -v t1="$t1" '$1 >= t1 { print $3; exit }' "$work/st.samples")
rows=$(awk '$3 == 1 { r = $5 } END { print r + 0 }' "$work/st.samples")
sleep 1
base2=$(put_sampled "$work/c" /r/c c)
base=$(echo "($base1 + $base2) / 2" | bc -l)
"$ctl" status --json >"$work/st.json"
health=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["array"]["health"])' "$work/st.json")
[ -n "${KEEP_SAMPLES:-}" ] && cp "$work/st.samples" "$KEEP_SAMPLES"
kill -TERM $dpid; wait $dpid || true; dpid=""
printf 'ingest_alone_seconds: %.3f (before %.3f, after %.3f)\n' "$base" "$base1" "$base2"
printf 'ingest_rebuild_seconds: %.3f\n' "$loaded"
printf 'rebuild_ingest_slowdown: %.3f\n' "$(echo "$loaded / $base" | bc -l)"
echo "rebuild_mbps_during_ingest: $rate"
echo "rebuild_running_at_end: ${running:-0}"
echo "rebuild_rows: $rows"
printf 'rebuild_total_seconds: %.2f\n' "$(echo "$te - $tf" | bc -l)"
echo "array_health_after: $health"
