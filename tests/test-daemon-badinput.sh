#!/bin/sh
# test-daemon-badinput: a wrong secret, garbage frames, a frame announcing 2^32 bytes
# and a PUT announcing 2^63, a client that stops mid-frame, a PUT cut off mid-stream,
# 200 concurrent connections, 24 parallel wrong logins from one address (5 tried):
# the daemon answers each with an error or a closed
# connection, stays up, never shows the cut PUT, and serves a correct put afterwards.
. "${top_srcdir:-.}/tests/daemon-lib.sh"
wire="python3 ${top_srcdir:-.}/tests/bkswire.py $BKSTOR_CLIENT"

d_start || exit 1
d_stop || bad "clean stop"
# A short idle timeout, so the stalled client is dropped within the test.
sed -i '/^\[native\]/a idle_timeout = 3s' "$DEMO/bkstord.conf"
d_start || exit 1
for sc in wrong-secret garbage huge stall "many 200" "cut-put /backups/cut"; do
	# shellcheck disable=SC2086
	timeout 120 $wire $sc >"$T/wire.out" 2>&1; rc=$?
	sed 's/^/  /' "$T/wire.out"
	[ $rc = 0 ] && ok "scenario $sc" || bad "scenario $sc (exit $rc)"
	kill -0 "$DPID" 2>/dev/null || { bad "daemon died during $sc"; d_finish; }
done
# Parallel wrong logins from one address count before their MACs are checked.
timeout 60 $wire parallel-wrong 24 5 127.0.0.9 >"$T/wire.out" 2>&1; rc=$?
sed 's/^/  /' "$T/wire.out"
[ $rc = 0 ] && ok "parallel wrong logins are limited" || bad "parallel wrong logins (exit $rc)"
sleep 1
check "the cut PUT never appears" 1 ctl stat /backups/cut
head -c 3000000 /dev/urandom >"$T/file"
check "a correct put afterwards" 0 ctl put --parents "$T/file" /backups/after
check "and its get" 0 ctl get /backups/after "$T/back"
cmp -s "$T/file" "$T/back" && ok "bytes identical" || bad "bytes differ"
check "status after the abuse" 0 ctl status --json
[ "$(jget "$T/out" 'd["connections"] <= 2')" = True ] && ok "connections were all closed" ||
	bad "connections left open: $(jget "$T/out" 'd["connections"]')"
grep -q "refused" "$T/daemon.log" && ok "failed logins are logged" || bad "no log of failed logins"
d_stop && ok "clean stop (exit 0)" || bad "stop exit code"
d_finish
