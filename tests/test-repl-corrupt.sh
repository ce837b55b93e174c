#!/bin/sh
# tests/test-repl-corrupt.sh: a twin's chunk damaged beyond what its RAID-6 repairs
# is fetched again from the source (issue 12). A sends two files to B; B is stopped
# and one chunk of the first file is damaged on three strips of its row (data, P and
# Q: tests/chunkbreak; two wrong strips the array still finds and rewrites); A is
# stopped too, so the repair waits. B's verify reports the chunk (its fingerprint)
# and queues it for repair; the list survives a restart of B; A, started again, asks
# (repair_interval = 1s) and sends the chunk; then the file reads back byte-identical
# on B, a second verify is clean, and both stay so after another restart of B.
# A comes back with [repl] bwlimit at a sixth of the chunk's length a second: the
# CHUNK it sends waits its turn in the token bucket (one second of burst), so B has
# it no sooner than 5 s after A's start (before, the repair paid for its bytes only
# after it was over and B had it within a second or two).
. "${top_srcdir:-.}/tests/repl-lib.sh"
breaker="${top_builddir:-.}/tests/chunkbreak"
[ -x "$breaker" ] || { echo "SKIP: tests/chunkbreak not built (make check builds it)"; exit 77; }

r_make a "$PA" "$RA" 168h && r_make b "$PB" "$RB" 168h || exit 1
printf 'repair_interval = 1s\n' >>"$T/a/bkstord.conf"
r_start a && r_start b || exit 1
check "pair A with B" 0 r_pair

# f1's size is unique in the store: chunkbreak finds its object by it.
SIZE=$(((3 << 20) + 4321))
head -c "$SIZE" /dev/urandom >"$T/f1"
head -c $((2 << 20)) /dev/urandom >"$T/f2"
ca put "$T/f1" /r/f1 -p >/dev/null || bad "put f1 on A"
ca put "$T/f2" /r/f2 -p >/dev/null || bad "put f2 on A"
if r_synced 60; then ok "A reached lag 0"; else bad "no lag 0: $(rj a "d['state'], d['last_error']")"; fi
cb get /r/f1 - 2>/dev/null | cmp -s - "$T/f1" && ok "B: f1 byte-identical before the damage" ||
	bad "B: f1 differs before the damage"

r_stop a || bad "A stopped cleanly"
r_stop b || bad "B stopped cleanly"
fp=$("$breaker" "$SIZE" "$T"/b/disks/*.img 2>"$T/break.err")
sed 's/^/# /' "$T/break.err"
[ ${#fp} = 64 ] && ok "damaged chunk $fp of f1 on 3 strips of B's row" ||
	{ bad "chunkbreak failed"; r_finish; }
r_start b || exit 1
cb get /r/f1 - >"$T/f1.bad" 2>/dev/null && cmp -s "$T/f1.bad" "$T/f1" &&
	bad "B: f1 still reads correctly: the damage did not defeat the array" ||
	ok "B: f1 cannot be read correctly (beyond RAID-6)"

# Verify on B: it reports the chunk and queues it (A is stopped: it waits).
cb --json verify --wait >"$T/v1.json" 2>"$T/v1.err"
vrc=$?
[ "$vrc" != 0 ] && ok "B's verify fails (exit $vrc)" || bad "B's verify found nothing"
[ "$(jget "$T/v1.json" "d['chunks_bad']" 2>/dev/null)" -ge 1 ] 2>/dev/null &&
	ok "verify: $(jget "$T/v1.json" "d['chunks_bad']") bad chunk reads" || bad "verify: no bad chunk"
[ "$(jget "$T/v1.json" "'$fp' in [c['fingerprint'] for c in d['bad_chunks']]" 2>/dev/null)" = True ] &&
	ok "verify names the damaged chunk" || bad "verify's bad_chunks lack $fp: $(cat "$T/v1.json")"
[ "$(jget "$T/v1.json" "d['queued_for_repair']" 2>/dev/null)" = 1 ] &&
	ok "verify queued 1 chunk for repair from the source" ||
	bad "verify queued $(jget "$T/v1.json" "d['queued_for_repair']" 2>/dev/null) chunks"
[ "$(rj b "d['repair']['chunks_wanted']")" = 1 ] && ok "B's repl status: 1 chunk wanted" ||
	bad "B's repl status: $(rj b "d.get('repair')")"
grep -q "verify: chunk $fp .*queued for repair from the replication source" "$T/b.log" &&
	ok "B logged the chunk as queued for repair" || bad "no event about the queued chunk"

# The list survives a restart of B.
r_stop b || bad "B stopped cleanly"
r_start b || exit 1
[ "$(rj b "d['repair']['chunks_wanted']")" = 1 ] && ok "after a restart of B: 1 chunk still wanted" ||
	bad "after a restart of B: $(rj b "d.get('repair')")"

# A comes back, its bwlimit a sixth of the chunk's length a second: it asks, B gets
# a good copy, no sooner than the limit lets the chunk go.
len=$(jget "$T/v1.json" "[c['length'] for c in d['bad_chunks'] if c['fingerprint'] == '$fp'][0]")
limit=$((len / 6))
printf 'bwlimit = %s\n' "$limit" >>"$T/a/bkstord.conf"
t0=$(date +%s.%N)
r_start a || exit 1
done=0
for _ in $(seq 1 300); do
	[ "$(rj b "int(d['repair']['chunks_repaired'] >= 1 and d['repair']['chunks_wanted'] == 0)")" = 1 ] &&
		{ done=1; break; }
	sleep 0.1
done
took=$(echo "$(date +%s.%N) $t0" | awk '{printf "%.1f", $1 - $2}')
[ $done = 1 ] && ok "B repaired the chunk from A within $took s" ||
	bad "no repair after 30 s: B $(rj b "d.get('repair')"), A $(rj a "d.get('repair'), d['state'], d['last_error']")"
# len/limit >= 6 s of bytes, less the bucket's one second of burst.
awk -v t="$took" -v l="$len" -v r="$limit" 'BEGIN { exit !(t >= l / r - 1) }' &&
	ok "the repair honoured A's bwlimit: $len bytes at $limit B/s took $took s (>= $((len / limit - 1)) s)" ||
	bad "the repair of $len bytes at bwlimit $limit B/s took only $took s"
[ "$(rj a "d['repair']['chunks_sent']")" = 1 ] && ok "A sent exactly 1 chunk for repair" ||
	bad "A's repair status: $(rj a "d.get('repair')")"
# The counters the dashboard and `bkstorctl status` show (docs/api.md "repair").
[ "$(rj b "[d['repair'][k] for k in ('chunks_wanted', 'chunks_received', 'chunks_sent', 'chunks_failed')]")" = "[0, 1, 0, 0]" ] &&
	ok "B's status: 0 wanted, 1 received, 0 sent, 0 failed" || bad "B's repair status: $(rj b "d.get('repair')")"
cb status 2>/dev/null | tr '\n' ' ' | tr -s ' ' | grep -q "repl: twin of .*; repair 0 wanted, 1 fetched, 0 sent, 0 failed " &&
	ok "bkstorctl status on B: the repair counters" || bad "B's status: $(cb status 2>&1 | grep -A2 repl:)"
ca status 2>/dev/null | tr '\n' ' ' | tr -s ' ' | grep -q "repl: source to .*; repair 0 wanted, 0 fetched, 1 sent, 0 failed " &&
	ok "bkstorctl status on A: the repair counters" || bad "A's status: $(ca status 2>&1 | grep -A2 repl:)"
cb get /r/f1 - 2>/dev/null | cmp -s - "$T/f1" && ok "B: f1 byte-identical after the repair" ||
	bad "B: f1 differs after the repair"
cb get /r/f2 - 2>/dev/null | cmp -s - "$T/f2" && ok "B: f2 byte-identical" || bad "B: f2 differs"
check "B: a second verify is clean" 0 cb verify --wait

# Durable: after a restart B still reads it (the repair was committed).
r_stop b || bad "B stopped cleanly"
r_start b || exit 1
cb get /r/f1 - 2>/dev/null | cmp -s - "$T/f1" && ok "B: f1 byte-identical after a restart" ||
	bad "B: f1 differs after a restart"
check "B: verify clean after a restart" 0 cb verify --wait
[ "$(rj b "d['repair']['chunks_repaired']")" = 1 ] && ok "B: 1 chunk repaired (kept across restarts)" ||
	bad "B: $(rj b "d.get('repair')")"
r_finish
