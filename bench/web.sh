#!/bin/sh
# bench/web.sh [MB]: the dashboard API under load while a backup streams in, in one
# run. Starts bkstord --demo, logs in, then:
#   1. puts a file of MB megabytes (default 400) alone: the baseline ingest rate;
#   2. puts another (different) file of the same size while wrk hammers
#      GET /api/v1/status with the session cookie (2 threads, 8 connections);
# and prints api_p99_ms (wrk's 99th percentile latency), api_requests_per_s, and
# ingest_slowdown = ingest time with the API load / ingest time without (>= 1: the
# ratio of rates, "how much slower"; the target is <= 1.05).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$top/build}
ctl="$build/cli/bkstorctl"
mb=${1:-400}
command -v wrk >/dev/null 2>&1 || { echo "bench/web.sh: wrk not installed (apt-get install wrk)"; exit 1; }
work=$(mktemp -d "${TMPDIR:-/var/tmp}/bkstor-web-XXXXXX")
dpid=""
trap '[ -n "$dpid" ] && kill -9 $dpid 2>/dev/null; rm -rf "$work"' EXIT
now() { date +%s.%N; }
port=$((31000 + $$ % 20000))
"$build/daemon/bkstord" --demo "$work/demo" --port "$port" >"$work/daemon.log" 2>&1 &
dpid=$!
export BKSTOR_CLIENT="$work/demo/client.conf"
for _ in $(seq 1 100); do "$ctl" status >/dev/null 2>&1 && break; sleep 0.1; done
printf 'bench-password-1\n' | "$ctl" passwd --stdin >/dev/null
web="http://127.0.0.1:$((port + 1))"
cookie=$(curl -s -D - -o /dev/null -d '{"password":"bench-password-1"}' "$web/api/v1/login" |
	sed -n 's/^[Ss]et-[Cc]ookie: \(bks_session=[0-9a-f]*\).*/\1/p')
[ -n "$cookie" ] || { echo "bench/web.sh: login failed"; exit 1; }
# Two different files (real data, both new to the store), in the page cache.
{ for d in /usr/lib /usr/share; do tar cf - "$d" 2>/dev/null; done; } |
	head -c "$((2 * mb + 64 << 20))" >"$work/src"
head -c "$((mb << 20))" "$work/src" >"$work/a"
tail -c "$((mb << 20))" "$work/src" >"$work/b"
dd if="$work/src" of="$work/w" bs=1M skip="$mb" count=64 2>/dev/null
rm "$work/src"
cat "$work/a" "$work/b" "$work/w" >/dev/null
"$ctl" mkdir /w >/dev/null
"$ctl" put "$work/w" /w/warmup >/dev/null # a warm store for both measurements
t0=$(now); "$ctl" put "$work/a" /w/a >/dev/null; t1=$(now)
base=$(echo "$t1 - $t0" | bc -l)
wrk -t2 -c8 -d10s --latency -H "Cookie: $cookie" "$web/api/v1/status" >"$work/wrk.out" 2>&1 &
wpid=$!
sleep 0.5
t0=$(now); "$ctl" put "$work/b" /w/b >/dev/null; t1=$(now)
loaded=$(echo "$t1 - $t0" | bc -l)
wait $wpid || true
p99=$(awk '$1 == "99%" {v=$2; if (v ~ /us$/) {sub("us","",v); v/=1000} else if (v ~ /ms$/) sub("ms","",v); else if (v ~ /s$/) {sub("s","",v); v*=1000}; print v}' "$work/wrk.out")
rps=$(awk '/Requests\/sec/ {print $2}' "$work/wrk.out")
non2xx=$(awk '/Non-2xx/ {print $NF}' "$work/wrk.out")
echo "ingest_alone_seconds: $base"
echo "ingest_loaded_seconds: $loaded"
echo "api_p99_ms: $p99"
echo "api_requests_per_s: $rps"
echo "api_non_2xx: ${non2xx:-0}"
printf 'ingest_slowdown: %.3f\n' "$(echo "$loaded / $base" | bc -l)"
