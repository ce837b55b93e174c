#!/bin/sh
# tests/test-repl-scrub.sh: a scrub that finds a row beyond RAID-6 tells the store,
# and the chunks it damaged are fetched again from the source without anyone
# starting a verify. A sends a file to B; B is stopped and one chunk of it is damaged
# on three strips of its row (data, P and Q: tests/chunkbreak); A is stopped too, so
# the repair waits. A scrub on B reports the row unrecoverable and rewrites nothing;
# B then starts a verify by itself (the array's bad-row report, daemon/appl.c
# bad_rows_verify), which names the chunk and queues it for repair from the source;
# A, started again, sends it and the file reads back byte-identical on B.
. "${top_srcdir:-.}/tests/repl-lib.sh"
breaker="${top_builddir:-.}/tests/chunkbreak"
[ -x "$breaker" ] || { echo "SKIP: tests/chunkbreak not built (make check builds it)"; exit 77; }

r_make a "$PA" "$RA" 168h && r_make b "$PB" "$RB" 168h || exit 1
printf 'repair_interval = 1s\n' >>"$T/a/bkstord.conf"
r_start a && r_start b || exit 1
check "pair A with B" 0 r_pair

SIZE=$(((3 << 20) + 1234))
head -c "$SIZE" /dev/urandom >"$T/f1"
ca put "$T/f1" /r/f1 -p >/dev/null || bad "put f1 on A"
if r_synced 60; then ok "A reached lag 0"; else bad "no lag 0: $(rj a "d['state'], d['last_error']")"; fi

r_stop a || bad "A stopped cleanly"
r_stop b || bad "B stopped cleanly"
fp=$("$breaker" "$SIZE" "$T"/b/disks/*.img 2>"$T/break.err")
sed 's/^/# /' "$T/break.err"
[ ${#fp} = 64 ] && ok "damaged chunk $fp of f1 on 3 strips of B's row" ||
	{ bad "chunkbreak failed"; r_finish; }
r_start b || exit 1

# The scrub: the row is reported, nothing is rewritten.
cb --json scrub start --wait >"$T/s.json" 2>"$T/s.err"
grep -q "scrub: row .* nothing rewritten" "$T/b.log" && ok "B's scrub reported the row" ||
	bad "no scrub event about the row: $(grep -i scrub "$T/b.log" | tail -5)"
grep -q "scrub: row .* was wrong; repaired" "$T/b.log" &&
	bad "B's scrub rewrote a strip of a row beyond RAID-6" || ok "B's scrub rewrote nothing"

# B starts a verify by itself; it queues the chunk (A is stopped: it waits).
queued=0
for _ in $(seq 1 300); do
	[ "$(rj b "d['repair']['chunks_wanted']")" = 1 ] && { queued=1; break; }
	sleep 0.1
done
[ $queued = 1 ] && ok "B queued the chunk for repair without a verify being asked for" ||
	bad "nothing queued after 30 s: $(rj b "d.get('repair')")"
grep -q "left damaged .* verify started" "$T/b.log" && ok "B logged why it started a verify" ||
	bad "no event about the verify B started"
grep -q "verify: chunk $fp .*queued for repair from the replication source" "$T/b.log" &&
	ok "B's verify named the damaged chunk" || bad "no event naming chunk $fp"

# A comes back: it asks, B gets a good copy.
r_start a || exit 1
done=0
for _ in $(seq 1 300); do
	[ "$(rj b "int(d['repair']['chunks_repaired'] >= 1 and d['repair']['chunks_wanted'] == 0)")" = 1 ] &&
		{ done=1; break; }
	sleep 0.1
done
[ $done = 1 ] && ok "B repaired the chunk from A" ||
	bad "no repair after 30 s: B $(rj b "d.get('repair')"), A $(rj a "d.get('repair'), d['state'], d['last_error']")"
cb get /r/f1 - 2>/dev/null | cmp -s - "$T/f1" && ok "B: f1 byte-identical after the repair" ||
	bad "B: f1 differs after the repair"
check "B: a verify is clean" 0 cb verify --wait
r_finish
