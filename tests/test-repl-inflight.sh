#!/bin/sh
# tests/test-repl-inflight.sh: several files in flight (issue 12). A holds, before it
# is paired, four copies of one random file and two other random files (so the
# first cycle has six files to send and [repl] connections = 4 sends four at once);
# then it is paired with B. Checks: A had more than one file in flight
# (files_in_flight_max), yet no chunk crossed twice: the chunk bytes sent are within
# 2% of the stored bytes A added (the copies share every chunk, and the four
# connections ask B for them at the same time: B's claims make one connection bring
# each chunk and the others wait for it); every file on B is byte-identical, and B
# verifies clean.
. "${top_srcdir:-.}/tests/repl-lib.sh"

r_make a "$PA" "$RA" 168h && r_make b "$PB" "$RB" 168h || exit 1
printf 'connections = 4\n' >>"$T/a/bkstord.conf"
r_start a && r_start b || exit 1

ca --json status >"$T/s0.json"
stored0=$(jget "$T/s0.json" "d['capacity']['stored_bytes']")
head -c $((12 << 20)) /dev/urandom >"$T/x"
head -c $((4 << 20)) /dev/urandom >"$T/y1"
head -c $((4 << 20)) /dev/urandom >"$T/y2"
for i in 1 2 3 4; do ca put "$T/x" "/p/x$i" -p >/dev/null || bad "put x$i"; done
ca put "$T/y1" /p/y1 -p >/dev/null || bad "put y1"
ca put "$T/y2" /p/y2 -p >/dev/null || bad "put y2"
ca commit >/dev/null
ca --json status >"$T/s1.json"
added=$(($(jget "$T/s1.json" "d['capacity']['stored_bytes']") - stored0))

check "pair A with B" 0 r_pair
if r_synced 60; then ok "B has the six files ($(rj a "d['cycles']") cycle(s))"
else bad "no lag 0 after 60 s: $(rj a "d['state'], d['last_error'], d['lag']")"; fi
[ "$(rj a "d['connections']")" = 4 ] && ok "A: 4 connections configured" ||
	bad "A: connections $(rj a "d.get('connections')")"
inf=$(rj a "d.get('files_in_flight_max', 0)")
[ "$inf" -ge 2 ] && ok "A had $inf files in flight at once" ||
	bad "A had at most '$inf' file(s) in flight"
sent=$(rj a "d['sent']['chunk_bytes']")
echo "# stored bytes A added: $added; chunk bytes sent: $sent; files sent: $(rj a "d['sent']['files']")"
[ "$added" -gt $((19 << 20)) ] && [ "$(python3 -c "print(int($sent <= 1.02 * $added))")" = 1 ] &&
	ok "no chunk crossed twice: chunk bytes $sent <= 1.02 x stored bytes added $added" ||
	bad "chunk bytes sent $sent, stored bytes added $added: chunks crossed more than once"
for f in x1 x2 x3 x4 y1 y2; do
	src="$T/$(echo $f | sed 's/^x[0-9]$/x/')"
	cb get "/p/$f" - 2>/dev/null | cmp -s - "$src" && ok "B: $f byte-identical" ||
		bad "B: $f differs or is missing"
done
check "B: verify --wait is clean" 0 cb verify --wait
check "A stops cleanly" 0 r_stop a
check "B stops cleanly" 0 r_stop b
r_finish
