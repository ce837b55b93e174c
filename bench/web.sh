#!/bin/sh
# bench/web.sh [MB] [PAIRS] [DASHBOARDS]: what open dashboards cost a backup, in one run.
# Starts bkstord --demo, sets the admin password, logs DASHBOARDS sessions in (default
# 1; one per dashboard, as that many browsers would), stores a 64 MiB warm-up file, then
# PAIRS times (default 6) in turn:
#   solo: puts a file of MB megabytes (default 400) with nothing polling;
#   load: puts another while DASHBOARDS dashboards are open: bench/dashload.py does
#         what web/static/app.js does (the page's files and /api/v1/session at load,
#         then status, throughput and events, each at its POLL_MS interval, on
#         keep-alive connections with the session cookie), from before the put
#         starts until it ends;
# and one more solo put at the end, so every loaded put has a solo one on each side.
# DASHBOARDS=wrk instead runs the old flat-out case: wrk -t2 -c8 on GET /api/v1/status
# (the listener's 1000 requests/s cap is what holds it back).
# Every put stores different data of the same kind (the same real bytes, each file's
# bytes rotated by its own amount: nothing dedups, everything compresses alike), so the
# puts cost the same. Alternating solo and loaded puts makes a drift of the machine's
# load (it is shared) fall on both, and the solo puts' span (first to last put) is
# centred on the loaded ones', so a steady drift (the store grows: later puts are
# slower) moves both medians alike; the figures are medians:
#   ingest_alone_seconds, ingest_loaded_seconds (medians, every put listed),
#   pair_ratios (each loaded put / the mean of the solo puts on either side: the
#   spread),
#   daemon_cpu_* (bkstord's user+system CPU seconds during each put, less sensitive
#   to the other sessions' load than wall time), api_p50_ms / api_p99_ms / api_max_ms
#   and api_requests over the loaded puts, api_non_2xx, the load average before and
#   after, and ingest_slowdown = median loaded / median solo (target <= 1.05).
# Before the puts, with no backup running: bkstord's CPU over 20 s idle, 20 s with
# the load, 20 s idle again (ns, from every thread's schedstat): load_cpu_ms_per_s =
# the load's CPU cost a second (loaded window less the mean of the idle two), the one
# figure that the other sessions on a shared machine hardly move.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$top/build}
ctl="$build/cli/bkstorctl"
dash="python3 $top/bench/dashload.py"
mb=${1:-400}
pairs=${2:-6}
ndash=${3:-1}
if [ "$ndash" = wrk ]; then
	command -v wrk >/dev/null 2>&1 || { echo "bench/web.sh: wrk not installed (apt-get install wrk)"; exit 1; }
fi
work=$(mktemp -d "${TMPDIR:-/var/tmp}/bkstor-web-XXXXXX")
dpid=""
lpid=""
trap '[ -n "$lpid" ] && kill $lpid 2>/dev/null; [ -n "$dpid" ] && kill -9 $dpid 2>/dev/null; rm -rf "$work"' EXIT
now() { date +%s.%N; }
# bkstord's CPU seconds so far (utime + stime of /proc/PID/stat: its ended threads too).
cpu() { awk -v hz="$(getconf CLK_TCK)" '{sub(/.*\) /, ""); print ($12 + $13) / hz}' "/proc/$dpid/stat"; }
echo "load_before: $(cut -d' ' -f1-3 /proc/loadavg)"
port=$((31000 + $$ % 20000))
"$build/daemon/bkstord" --demo "$work/demo" --port "$port" >"$work/daemon.log" 2>&1 &
dpid=$!
export BKSTOR_CLIENT="$work/demo/client.conf"
for _ in $(seq 1 300); do "$ctl" status >/dev/null 2>&1 && break; sleep 0.1; done
"$ctl" status >/dev/null 2>&1 || { echo "bench/web.sh: bkstord did not start:"; cat "$work/daemon.log"; exit 1; }
printf 'bench-password-1\n' | "$ctl" passwd --stdin >/dev/null
web="http://127.0.0.1:$((port + 1))"
if [ "$ndash" = wrk ]; then
	cookie=$(curl -s -D - -o /dev/null -d '{"password":"bench-password-1"}' "$web/api/v1/login" |
		sed -n 's/^[Ss]et-[Cc]ookie: \(bks_session=[0-9a-f]*\).*/\1/p')
	[ -n "$cookie" ] || { echo "bench/web.sh: login failed"; exit 1; }
else
	$dash login "$web" bench-password-1 "$ndash" "$work/sessions.json"
fi
# Real data (tar of /usr), then one file per put: those bytes rotated by k (tr), so no
# chunk of one put is in another while sizes, compressibility and cut-point spacing
# stay alike. All in the page cache before the first put.
{ for d in /usr/lib /usr/share; do tar cf - "$d" 2>/dev/null; done; } |
	head -c "$((mb << 20))" >"$work/src"
head -c 64M "$work/src" >"$work/w"
k=1
while [ "$k" -le $((2 * pairs + 1)) ]; do
	LC_ALL=C tr '\000-\377' "$(printf '\\%03o-\\377\\000-\\%03o' "$k" $((k - 1)))" \
		<"$work/src" >"$work/f$k"
	k=$((k + 1))
done
rm "$work/src"
sync # their writeback done before anything is measured
cat "$work"/f* "$work/w" >/dev/null
"$ctl" mkdir /w >/dev/null
"$ctl" put "$work/w" /w/warmup >/dev/null # a warm store for every measurement
# bkstord's CPU ns so far, to the ns, over its threads alive now (none end while idle).
cpu_ns() { cat /proc/"$dpid"/task/*/schedstat | awk '{s += $1} END {printf "%d", s}'; }
# start_load I / stop_load: the load, from the page load on (wrk: at once).
start_load() {
	if [ "$ndash" = wrk ]; then
		wrk -t2 -c8 -d600s --latency -H "Cookie: $cookie" "$web/api/v1/status" \
			>"$work/wrk$1.out" 2>&1 &
		lpid=$!
	else
		mkfifo "$work/ready$1"
		$dash poll "$web" "$work/sessions.json" "$ndash" "$work/dash$1.json" >"$work/ready$1" &
		lpid=$!
		read -r _ <"$work/ready$1" # page loads done, pollers running
	fi
}
stop_load() {
	# wrk prints its figures on SIGINT; dashload.py writes its file on SIGTERM.
	if [ "$ndash" = wrk ]; then kill -INT $lpid 2>/dev/null || true; else kill $lpid; fi
	wait $lpid || true
	lpid=""
}
sleep 5
c0=$(cpu_ns); sleep 20; c1=$(cpu_ns)
start_load idle
c2=$(cpu_ns); sleep 20; c3=$(cpu_ns)
stop_load
c4=$(cpu_ns); sleep 20; c5=$(cpu_ns)
rm -f "$work/wrkidle.out" "$work/dashidle.json"
idle_ms=$(echo "($c1 - $c0 + $c5 - $c4) / 2 / 20 / 1000000" | bc -l)
load_ms=$(echo "($c3 - $c2) / 20 / 1000000" | bc -l)
# put K KIND: one measured put of file K; appends "KIND seconds cpu_seconds" to puts.
put() {
	c0=$(cpu); t0=$(now)
	"$ctl" put "$work/f$1" "/w/f$1" >/dev/null
	t1=$(now); c1=$(cpu)
	printf '%s %s %s\n' "$2" "$(echo "$t1 - $t0" | bc -l)" "$(echo "$c1 - $c0" | bc -l)" |
		tee -a "$work/puts" | sed "s/^/put $1 /; s/\$/ (load $(cut -d' ' -f1 /proc/loadavg))/"
}
: >"$work/puts"
# Each put starts 2 s after the one before ended, whatever its kind (a loaded put's
# dashboards open at the start of those 2 s), so the daemon's work left over from the
# previous put (background jobs wait fg_idle_ms) weighs on both kinds alike.
tend=$(now)
settle() { sleep "$(echo "d = 2 - ($(now) - $tend); if (d < 0) d = 0; d" | bc -l)"; }
i=1
while [ "$i" -le "$pairs" ]; do
	settle
	put $((2 * i - 1)) solo
	tend=$(now)
	start_load "$i"
	settle
	put $((2 * i)) load
	tend=$(now)
	stop_load
	i=$((i + 1))
done
settle
put $((2 * pairs + 1)) solo
echo "load_after: $(cut -d' ' -f1-3 /proc/loadavg)"
printf 'idle_cpu_ms_per_s: %.3f (bkstord, nothing running)\n' "$idle_ms"
printf 'idle_loaded_cpu_ms_per_s: %.3f (bkstord, the load alone)\n' "$load_ms"
printf 'load_cpu_ms_per_s: %.3f\n' "$(echo "$load_ms - $idle_ms" | bc -l)"
$dash summary "$work/puts"
if [ "$ndash" = wrk ]; then
	cat "$work"/wrk*.out | awk '
		function ms(v) { if (v ~ /us$/) { sub("us", "", v); return v / 1000 }
		                 if (v ~ /ms$/) { sub("ms", "", v); return v + 0 }
		                 sub("s", "", v); return v * 1000 }
		$1 == "99%" { if (ms($2) > p99) p99 = ms($2) }
		/Requests\/sec/ { rps += $2; n++ }
		/Non-2xx/ { bad += $NF }
		END { printf "api_p99_ms: %.2f (the worst run)\napi_requests_per_s: %.0f\napi_non_2xx: %d\n",
		      p99, rps / n, bad }'
else
	python3 - "$work"/dash*.json <<'EOF'
import json, sys
rs = [json.load(open(p)) for p in sys.argv[1:]]
print("dashboards: %d" % rs[0]["dashboards"])
print("api_requests: %d over %.1f s (%s)" % (sum(r["requests"] for r in rs),
      sum(r["seconds"] for r in rs),
      ", ".join("%s %d" % (k, sum(r["by_path"].get(k, 0) for r in rs))
                for k in sorted(rs[0]["by_path"]))))
print("api_p50_ms: %.2f (the median run)" % sorted(r["p50_ms"] for r in rs)[len(rs) // 2])
print("api_p99_ms: %.2f (the worst run)" % max(r["p99_ms"] for r in rs))
print("api_max_ms: %.2f (%s)" % (max(r["max_ms"] for r in rs),
      ", ".join("%s %.1f" % (k, max(r["max_ms_by_path"].get(k, 0) for r in rs))
                for k in sorted(rs[0]["max_ms_by_path"]))))
print("api_non_2xx: %d %s" % (sum(r["non_2xx"] for r in rs),
      "; ".join(e for r in rs for e in r["errors"])))
EOF
fi
