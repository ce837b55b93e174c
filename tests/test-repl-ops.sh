#!/bin/sh
# tests/test-repl-ops.sh: running replication (issue 12): the lag alert, the schedule
# window, the bandwidth limit changed at run time, and the status lines.
#   - lag alert: [repl] lag_alert = 2s and B stopped: A adds a "lag passed the alert
#     threshold" event; B back and synced: a "lag back under" event;
#   - window: `repl set window` to a window that is closed now (from `date`): A
#     waits ("waiting for window (opens HH:MM)"), nothing crosses, the lag shows the
#     file, the window is in the configuration file; the file's line edited to a
#     window open now and SIGHUP: A sends and B has the file;
#   - window closing mid-file (at 1 MB/s): the bytes on the wire stop; reopened, the
#     file completes without its chunks crossing twice;
#   - bwlimit: `repl set bwlimit 1M`: 8 MiB take >= 5 s; 16 MiB at 1M, then
#     `repl set bwlimit 0` after 3 s: the rest crosses at once (same connection);
#   - `bkstorctl status` has one repl line on both (source with the lag, twin);
#   - the twin, with lag_alert = 1s, never alerts (its own commits are not lag).
. "${top_srcdir:-.}/tests/repl-lib.sh"
start_s=$(date +%s)

r_make a "$PA" "$RA" 168h && r_make b "$PB" "$RB" 168h || exit 1
printf 'lag_alert = 2s\n' >>"$T/a/bkstord.conf"
printf 'lag_alert = 1s\n' >>"$T/b/bkstord.conf" # the twin commits too: never lag
r_start a && r_start b || exit 1
check "pair A with B" 0 r_pair
ca put "$T/a/bkstord.conf" /warm/conf -p >/dev/null && r_synced 30 || bad "first sync"

events_has() { # NAME REGEX: the daemon's event list has a match
	BKSTOR_CLIENT="$T/$1/client.conf" "$ctl_bin" events 2>/dev/null | grep -Eq "$2"
}
wait_for() { # SECONDS 'SHELL CODE': until the code succeeds
	_end=$(($(date +%s) + $1))
	while [ "$(date +%s)" -lt "$_end" ]; do
		eval "$2" && return 0
		sleep 0.2
	done
	return 1
}
oneline() { tr '\n' ' ' | tr -s ' '; } # cli_print_field wraps at 80 columns
rnd() { head -c "$2" /dev/urandom >"$1"; } # incompressible: the wire carries all of it
wire() { rj a "d['sent']['wire_bytes']"; }

# ---- lag alert: B stopped, A's lag passes 2 s
events_has a "lag passed the alert" && bad "a lag alert before any lag"
check "B stops" 0 r_stop b
rnd "$T/f1" 1000000
ca put "$T/f1" /d/f1 -p >/dev/null && ca commit >/dev/null || bad "put on A"
if wait_for 20 'events_has a "lag passed the alert threshold \(lag_alert 2s\)"' ; then
	ok "B down: A's events say the lag passed lag_alert ($(ca events | grep -c 'lag passed') event)"
else bad "no lag alert event on A: $(ca events | tail -3)"; fi
[ "$(rj a "int(d['lag_alert'])")" = 1 ] && ok "status: lag_alert true" ||
	bad "status lag_alert: $(rj a "d['lag_alert'], d['lag']")"
ca status 2>&1 | oneline >"$T/st.txt"
grep -Eq " repl: source to 127\.0\.0\.1:$RB \(SHA-256 [0-9a-f]{16}\.\.\.\), .*lag [1-9][0-9]* files" "$T/st.txt" &&
	ok "bkstorctl status: one repl line with the lag" ||
	bad "bkstorctl status repl line: $(cat "$T/st.txt")"
check "B starts again" 0 r_start b
r_synced 30 && ok "synced after B came back" || bad "no sync after B came back"
if wait_for 10 'events_has a "lag back under the alert threshold"' ; then ok "A's events: the lag is back under"
else bad "no 'back under' event: $(ca events | tail -3)"; fi
[ "$(ca events | grep -c 'lag passed')" = 1 ] && ok "one alert event for one episode" ||
	bad "$(ca events | grep -c 'lag passed') alert events"
cb status 2>&1 | oneline >"$T/stb.txt"
grep -Eq " repl: twin of SHA-256 [0-9a-f]{16}\.\.\., listening; [0-9]+ files received, 0 deletes held back" "$T/stb.txt" &&
	ok "bkstorctl status on B: the twin line" || bad "B's repl line: $(cat "$T/stb.txt")"
check "repl set lag_alert 0 (off)" 0 ca repl set lag_alert 0

# ---- window: closed now, then opened by SIGHUP
hm() { date -d "$1" +%H:%M; }
closed="$(hm '+2 hours')-$(hm '+3 hours')"
open_w="$(hm '-1 hour')-$(hm '+1 hour')"
check "repl set window $closed (closed now)" 0 ca repl set window "$closed"
grep -q "^window = $closed\$" "$T/a/bkstord.conf" && ok "the window is written to A's configuration" ||
	bad "A's configuration: $(grep window "$T/a/bkstord.conf")"
check "repl set window 25:00-26:00 is refused" 1 ca repl set window 25:00-26:00
check "repl set delete_delay is refused" 1 ca repl set delete_delay 1s
w0=$(wire)
rnd "$T/f2" 2000000
ca put "$T/f2" /d/f2 >/dev/null && ca commit >/dev/null || bad "put f2"
opens=$(hm '+2 hours')
if wait_for 10 '[ "$(rj a "d[\"state\"]")" = "waiting for window (opens $opens)" ]' ; then
	ok "A: waiting for window (opens $opens)"
else bad "A's state: $(rj a "d['state']")"; fi
sleep 2
[ "$(wire)" = "$w0" ] && ok "nothing crossed outside the window" || bad "wire bytes $w0 -> $(wire)"
[ "$(rj a "int(d['lag']['files'] >= 1 and d['lag']['bytes'] >= 2000000)")" = 1 ] &&
	ok "the lag shows the waiting file ($(rj a "d['lag']"))" || bad "lag: $(rj a "d['lag']")"
cb stat /d/f2 >/dev/null 2>&1 && bad "B has f2 outside the window" || ok "B does not have f2 yet"
ca repl status | grep -q "window:      $closed, opens at $opens" && ok "repl status shows the window" ||
	bad "repl status: $(ca repl status | grep window)"
sed -i "s/^window = .*/window = $open_w/" "$T/a/bkstord.conf"
kill -HUP "$PIDa"
r_synced 30 && ok "SIGHUP with window $open_w: A sent" || bad "no sync after the window opened: $(rj a "d['state']")"
cb get /d/f2 - 2>/dev/null | cmp -s - "$T/f2" && ok "B: f2 byte-identical" || bad "B: f2 differs"
[ "$(rj a "d['window_open']")" = True ] && ok "status: window_open" || bad "window_open $(rj a "d['window_open']")"

# ---- bandwidth limit at run time
check "repl set bwlimit 1M" 0 ca repl set bwlimit 1M
[ "$(rj a "d['bwlimit_bps']")" = 1048576 ] && ok "bwlimit_bps 1048576" || bad "bwlimit_bps $(rj a "d['bwlimit_bps']")"
grep -q "^bwlimit = 1M\$" "$T/a/bkstord.conf" && ok "bwlimit written to A's configuration" ||
	bad "A's configuration: $(grep bwlimit "$T/a/bkstord.conf")"
rnd "$T/f3" 8388608
ca put "$T/f3" /d/f3 >/dev/null || bad "put f3"
t0=$(date +%s.%N)
r_synced 60 || bad "f3: no sync"
el=$(python3 -c "print(round($(date +%s.%N) - $t0, 1))")
[ "$(python3 -c "print(int($el >= 5))")" = 1 ] && ok "8 MiB at 1M/s took $el s (>= 5)" || bad "8 MiB at 1M/s took $el s"

rnd "$T/f4" 16777216
w0=$(wire)
ca put "$T/f4" /d/f4 >/dev/null && ca commit >/dev/null || bad "put f4"
sleep 3
w3=$(wire)
rate=$(rj a "d['rate_bps']")
[ $((w3 - w0)) -le 5500000 ] && ok "3 s at 1M/s: $((w3 - w0)) bytes on the wire (<= 5.5 MB)" ||
	bad "3 s at 1M/s: $((w3 - w0)) bytes"
[ "$(python3 -c "print(int(300000 <= $rate <= 2200000))")" = 1 ] && ok "status rate_bps $rate near the limit" ||
	bad "rate_bps $rate"
ca status | oneline | grep -Eq " repl: source .*, sending; .*/s, ETA " && ok "bkstorctl status shows the rate and ETA" ||
	bad "status while sending: $(ca status | oneline)"
check "repl set bwlimit 0 while sending" 0 ca repl set bwlimit 0
t0=$(date +%s.%N)
r_synced 30 || bad "f4: no sync"
el=$(python3 -c "print(round($(date +%s.%N) - $t0, 1))")
left=$((16777216 + w0 - w3))
[ "$(python3 -c "print(int($el < 5))")" = 1 ] &&
	ok "the rest of f4 (~$left bytes) crossed in $el s once the limit was lifted (1M/s: >= 10 s)" ||
	bad "the rest of f4 took $el s after the limit was lifted"
cb get /d/f4 - 2>/dev/null | cmp -s - "$T/f4" && ok "B: f4 byte-identical" || bad "B: f4 differs"

# ---- the window closes in the middle of a file
check "repl set bwlimit 1M" 0 ca repl set bwlimit 1M
rnd "$T/f5" 12582912
c0=$(rj a "d['sent']['chunk_bytes']")
ca put "$T/f5" /d/f5 >/dev/null && ca commit >/dev/null || bad "put f5"
wait_for 10 '[ "$(rj a "int(d[\"sent\"][\"chunk_bytes\"] - $c0 > 1000000)")" = 1 ]'  || bad "f5 did not start"
check "repl set window $closed mid-file" 0 ca repl set window "$closed"
sleep 1
w1=$(wire)
sleep 2
w2=$(wire)
[ "$w1" = "$w2" ] && ok "the wire stopped mid-file ($(rj a "d['state']"))" || bad "wire $w1 -> $w2 after the window closed"
cb stat /d/f5 >/dev/null 2>&1 && bad "B: f5 complete before the window reopened" || ok "B: f5 not there yet"
check "repl set bwlimit 0" 0 ca repl set bwlimit 0
check "repl set window '' (always)" 0 ca repl set window ""
r_synced 30 || bad "f5: no sync after the window reopened"
cb get /d/f5 - 2>/dev/null | cmp -s - "$T/f5" && ok "B: f5 byte-identical" || bad "B: f5 differs"
c1=$(rj a "d['sent']['chunk_bytes']")
[ "$(python3 -c "print(int($c1 - $c0 <= 1.05 * 12582912))")" = 1 ] &&
	ok "f5's chunks crossed once: $((c1 - c0)) chunk bytes for 12582912" ||
	bad "f5: $((c1 - c0)) chunk bytes for 12582912"

events_has b "lag passed" && bad "the twin raised a lag alert: $(cb events | grep lag)" ||
	ok "no lag alert on the twin (lag_alert = 1s there, commits for the last $(rj b "d['commits']") syncs)"

# ---- a restart keeps what repl set wrote
check "A stops" 0 r_stop a
grep -q "^window = *\$" "$T/a/bkstord.conf" && grep -q "^bwlimit = 0\$" "$T/a/bkstord.conf" &&
	grep -q "^lag_alert = 0\$" "$T/a/bkstord.conf" && ok "A's file holds the last settings" ||
	bad "A's file: $(grep -E 'window|bwlimit|lag_alert' "$T/a/bkstord.conf")"
check "A starts with the rewritten file" 0 r_start a
check "B stops cleanly" 0 r_stop b
check "A stops cleanly" 0 r_stop a
echo "# took $(($(date +%s) - start_s)) s"
r_finish
