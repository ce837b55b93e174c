#!/bin/sh
# test-daemon-netabuse: what a peer on the network can do to the native listener
# before and after login, with the limits of [native] set small:
#  - slowloris: sockets that drip an AUTH a byte at a time are closed at auth_timeout
#    (a total, not restarted per byte) and, though more of them than max_connections,
#    do not keep a real client (bkstorctl ping, put) out; after login a frame dripped
#    a byte at a time is cut off at frame_timeout;
#  - pre-login frames announcing 1-4 MiB are refused at once, unbuffered (RSS);
#  - a client that GETs a large file and stops reading is dropped at send_timeout and
#    the connection count returns to 0;
#  - an AUTH name with a newline and an ESC reaches the log escaped;
#  - a source-dedup PUT whose END digest (of the fingerprint stream) is wrong fails
#    with EBADMSG and leaves no file; bkstorctl put --dedup still works.
. "${top_srcdir:-.}/tests/daemon-lib.sh"
wire="python3 ${top_srcdir:-.}/tests/bkswire.py $BKSTOR_CLIENT"
now_ms() { date +%s%3N; }

d_start || exit 1
d_stop || bad "clean stop"
sed -i '/^\[native\]/a idle_timeout = 60s\nauth_timeout = 3s\nframe_timeout = 2s\nsend_timeout = 3s\nmax_connections = 8\nmax_unauth = 5\nmax_unauth_per_ip = 3' \
	"$DEMO/bkstord.conf"
d_start || exit 1

# --- 10a: an evil AUTH name is logged escaped ---
$wire evil-name >"$T/wire.out" 2>&1 && ok "evil-name scenario" || bad "evil-name scenario"
sed 's/^/  /' "$T/wire.out"
sleep 0.3
grep -qF "login as 'evil\\n2026-01-01T00:00:00.000Z bkstord error: FORGED\\x1b[31mred\\\\'" \
	"$T/daemon.log" && ok "the name is logged with \\n, \\x1b and \\\\ escaped" ||
	bad "the evil name is not logged escaped: $(grep -a 'evil' "$T/daemon.log" | head -3)"
grep -q '^2026-01-01T00:00:00.000Z bkstord error: FORGED' "$T/daemon.log" &&
	bad "a forged log line made it into the log" || ok "no forged log line"
[ "$(tr -cd '\033' <"$T/daemon.log" | wc -c)" = 0 ] && ok "no raw ESC in the log" ||
	bad "raw ESC bytes in the log"

# --- 5: slowloris: sockets that drip their AUTH a byte every 0.5 s ---
# Each cap makes room by dropping the oldest connection not logged in once it is older
# than the grace (half of auth_timeout here: 1.5 s). max_unauth_per_ip 3: five from
# one address, one every 0.5 s; max_unauth 5: one from each of six addresses.
$wire slowloris 5 5.5 8 127.0.0.3 0.5 >"$T/slow.out" 2>&1 && ok "slowloris from one address" ||
	bad "slowloris from one address"
sed 's/^/  /' "$T/slow.out"
$wire slowloris 1 5.5 8 127.0.0.4,127.0.0.5,127.0.0.6,127.0.0.7,127.0.0.8,127.0.0.9 0.5 \
	>"$T/slow.out" 2>&1 && ok "slowloris from six addresses" || bad "slowloris from six addresses"
sed 's/^/  /' "$T/slow.out"
# 2 x 6 at once, more than max_connections (8), from the address bkstorctl uses too.
$wire slowloris 6 5.5 12 127.0.0.1,127.0.0.2 >"$T/slow.out" 2>&1 &
SLOW=$!
sleep 1.5
t0=$(now_ms)
check "bkstorctl ping while 12 sockets drip their AUTH" 0 timeout 20 "$ctl_bin" ping
prc=$got
t1=$(now_ms)
[ "$prc" = 0 ] && [ $((t1 - t0)) -lt 3000 ] && ok "ping answered promptly ($((t1 - t0)) ms)" ||
	bad "ping: exit $prc after $((t1 - t0)) ms"
head -c 200000 /dev/urandom >"$T/small"
check "bkstorctl put while they drip" 0 timeout 20 "$ctl_bin" put --parents "$T/small" /backups/small
wait $SLOW && ok "slowloris past max_connections" || bad "slowloris past max_connections"
sed 's/^/  /' "$T/slow.out"
grep -q "no login within auth_timeout" "$T/daemon.log" && ok "auth_timeout closes are logged" ||
	bad "no log of auth_timeout closes"
for cap in max_unauth_per_ip max_unauth max_connections; do
	grep -q "dropped before login after .* ($cap)" "$T/daemon.log" &&
		ok "$cap made room by dropping the oldest not logged in" || bad "no drop for $cap"
done

# --- 5: after login, a frame has a total deadline too (frame_timeout 2 s) ---
$wire drip-frame 4 >"$T/wire.out" 2>&1 && ok "drip-frame scenario" || bad "drip-frame scenario"
sed 's/^/  /' "$T/wire.out"

# --- 6: pre-login frames announcing big payloads ---
timeout 60 $wire preauth-huge "$DPID" 32 >"$T/wire.out" 2>&1 && ok "preauth-huge scenario" ||
	bad "preauth-huge scenario"
sed 's/^/  /' "$T/wire.out"
check "ping after the pre-login frames" 0 timeout 20 "$ctl_bin" ping

# --- 7: a GET whose client stops reading ---
head -c 24000000 /dev/urandom >"$T/big"
check "put a 24 MB file" 0 ctl put --parents "$T/big" /backups/big
$wire stop-reading /backups/big 9 >"$T/stop.out" 2>&1 &
STOP=$!
sleep 6.5 # send_timeout 3 s, and slack
grep -q "not reading what it asked for: dropped after send_timeout" "$T/daemon.log" &&
	ok "the stuck GET is dropped and logged" || bad "no log of a dropped GET"
check "another client gets a file meanwhile" 0 timeout 20 "$ctl_bin" get /backups/small "$T/small.back"
cmp -s "$T/small" "$T/small.back" && ok "its bytes are identical" || bad "bytes differ"
check "status while the stuck client still holds its socket" 0 ctl status --json
[ "$(jget "$T/out" 'd["connections"]')" = 0 ] && ok "connection count back to 0" ||
	bad "connections: $(jget "$T/out" 'd["connections"]')"
wait $STOP && ok "stop-reading scenario" || bad "stop-reading scenario"
sed 's/^/  /' "$T/stop.out"

# --- 10e: the digest at the END of a source-dedup PUT ---
$wire dedup-digest /backups/dd >"$T/wire.out" 2>&1 && ok "dedup-digest scenario" ||
	bad "dedup-digest scenario"
sed 's/^/  /' "$T/wire.out"
check "the PUT with the wrong digest left no file" 1 ctl stat /backups/dd
check "bkstorctl put --dedup" 0 ctl put --dedup --json "$T/big" /backups/big.dd
[ "$(jget "$T/out" 'd["source_dedup"]')" = True ] && ok "it used source dedup" ||
	bad "source dedup not used"
{ head -c 5000000 "$T/big"; head -c 100000 /dev/urandom; tail -c +5000001 "$T/big"; } >"$T/big2"
check "bkstorctl put --dedup of a changed copy" 0 ctl put --dedup --json "$T/big2" /backups/big2
jget "$T/out" 'd' | head -c 400; echo
check "get it back" 0 ctl get /backups/big2 "$T/big2.back"
cmp -s "$T/big2" "$T/big2.back" && ok "bytes identical" || bad "bytes differ"

kill -0 "$DPID" 2>/dev/null && ok "daemon still up" || bad "daemon died"
d_stop && ok "clean stop (exit 0)" || bad "stop exit code"
d_finish
