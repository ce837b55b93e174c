#!/bin/sh
# bench/ingest.sh [MB]: end-to-end ingest through the daemon, in one run on this
# machine. Starts bkstord --demo in a temporary directory, makes a base of MB
# megabytes (default 600) from real files and 5 generations (2% change each, the
# bench/gen_generations.py), puts them through bkstorctl over loopback, restores the
# last, then runs restic, borg and casync (bench/peers.sh) on the same files.
# Prints: ingest_first_gbps, ingest_dup_gbps (median of generations 2-5),
# restore_gbps, ingest_vs_best_peer (our dup throughput / the fastest peer's),
# stored_vs_casync (rows the store uses / casync's store), and the raw figures.
# Client and server share the machine (2 cores here).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$top/build}
ctl="$build/cli/bkstorctl"
mb=${1:-600}
work=$(mktemp -d "${TMPDIR:-/var/tmp}/bkstor-ingest-XXXXXX")
dpid=""
trap '[ -n "$dpid" ] && kill -9 $dpid 2>/dev/null; rm -rf "$work"' EXIT
now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

# The base: real files (binaries, libraries, text), as backups hold.
{ for d in /usr/lib /usr/share /usr/bin; do tar cf - "$d" 2>/dev/null; done; } |
	head -c "$((mb << 20))" >"$work/base"
python3 "$top/bench/gen_generations.py" "$work/base" "$work/gens" 5 0.02 1
port=$((30000 + $$ % 20000))
"$build/daemon/bkstord" --demo "$work/demo" --port "$port" >"$work/daemon.log" 2>&1 &
dpid=$!
export BKSTOR_CLIENT="$work/demo/client.conf"
for _ in $(seq 1 100); do "$ctl" status >/dev/null 2>&1 && break; sleep 0.1; done
"$ctl" mkdir /bench >/dev/null
: >"$work/dup.rates"
for g in 1 2 3 4 5; do
	f="$work/gens/gen0$g.img"
	size=$(stat -c %s "$f")
	cat "$f" >/dev/null # page cache: measure the appliance, not the source disk
	t0=$(now); "$ctl" put "$f" "/bench/g$g" >/dev/null; t1=$(now)
	rate=$(echo "$size / ($t1 - $t0) / 1000000000" | bc -l)
	printf 'ingest_gen%d_gbps: %.3f\n' "$g" "$rate"
	if [ $g = 1 ]; then first=$rate; else echo "$rate" >>"$work/dup.rates"; fi
done
dup=$(median <"$work/dup.rates")
size5=$(stat -c %s "$work/gens/gen05.img")
t0=$(now); "$ctl" get /bench/g5 - >/dev/null; t1=$(now)
restore=$(echo "$size5 / ($t1 - $t0) / 1000000000" | bc -l)
physical() {
	"$ctl" status --json >"$work/status.json"
	python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["capacity"]["physical_bytes"])' "$work/status.json"
}
phys_nogc=$(physical)
# What the appliance keeps once its collector has compacted the rows that syncs
# sealed part-full (every PUT is durable on its own: its last rows are partial).
"$ctl" gc start --min-live 0.9 --wait >/dev/null
phys=$(physical)
kill -TERM $dpid; wait $dpid || true; dpid=""

printf 'ingest_first_gbps: %.3f\ningest_dup_gbps: %.3f\nrestore_gbps: %.3f\n' "$first" "$dup" "$restore"
echo "physical_bytes_before_gc: $phys_nogc"
echo "physical_bytes: $phys"
sh "$top/bench/peers.sh" "$work/gens" | tee "$work/peers.out"
best=0
for p in restic borg casync; do
	s=$(sed -n "s/^${p}_dup_median_seconds: //p" "$work/peers.out")
	[ -n "$s" ] || continue
	r=$(echo "$size5 / $s / 1000000000" | bc -l)
	printf '%s_dup_gbps: %.3f\n' "$p" "$r"
	[ "$(echo "$r > $best" | bc -l)" = 1 ] && best=$r
done
[ "$(echo "$best > 0" | bc -l)" = 1 ] && printf 'ingest_vs_best_peer: %.2f\n' "$(echo "$dup / $best" | bc -l)"
cb=$(sed -n 's/^casync_bytes: //p' "$work/peers.out")
[ -n "$cb" ] && printf 'stored_vs_casync: %.3f\n' "$(echo "$phys / $cb" | bc -l)"
