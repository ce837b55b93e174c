#!/bin/sh
# tests/test-repl-corrupt-source.sh: the other way round from test-repl-corrupt.sh.
# A SOURCE's chunk damaged beyond what its RAID-6 repairs is fetched back from its
# twin, which has every chunk the source replicated (issue 12; FETCH, protocol
# version 3). A sends two files to B; both are stopped and one chunk of A's first
# file is damaged on three strips of its row (tests/chunkbreak). A comes back alone:
# its verify reports the chunk and queues it, wanted from the twin; the list
# survives a restart of A while B is still away. When B is back, A fetches the chunk
# within seconds (repair_interval stays at its 60 s default: a new entry is asked for
# at once), checks its SHA-256 and stores it; the file then reads byte-identical on
# A, a second verify on A is clean, and both stay so after another restart of A.
# B comes back with [repl] bwlimit at a sixth of the chunk's length a second: the
# CHUNK it answers waits its turn in its token bucket (one second of burst), so A
# has it no sooner than 5 s after B's start (before, a twin's answers ignored its
# bwlimit); the limit is then lifted at run time (`bkstorctl repl set`).
# Then with B running throughout: two chunks damaged on A, one of f2 and one of a file
# outside the replicated paths (B never had it): A's verify queues both, fetches the
# first within seconds, keeps the second wanted (the twin lacks it), and says so.
. "${top_srcdir:-.}/tests/repl-lib.sh"
breaker="${top_builddir:-.}/tests/chunkbreak"
[ -x "$breaker" ] || { echo "SKIP: tests/chunkbreak not built (make check builds it)"; exit 77; }

r_make a "$PA" "$RA" 168h && r_make b "$PB" "$RB" 168h || exit 1
printf 'paths = /r\n' >>"$T/a/bkstord.conf" # /x stays on A only
r_start a && r_start b || exit 1
check "pair A with B" 0 r_pair

# f1's size is unique in the store: chunkbreak finds its object by it.
SIZE=$(((3 << 20) + 1234))
head -c "$SIZE" /dev/urandom >"$T/f1"
SIZE2=$(((2 << 20) + 777)) SIZEX=$(((1 << 20) + 4567))
head -c "$SIZE2" /dev/urandom >"$T/f2"
head -c "$SIZEX" /dev/urandom >"$T/x"
ca put "$T/f1" /r/f1 -p >/dev/null || bad "put f1 on A"
ca put "$T/f2" /r/f2 -p >/dev/null || bad "put f2 on A"
ca put "$T/x" /x/x -p >/dev/null || bad "put x on A"
if r_synced 60; then ok "A reached lag 0"; else bad "no lag 0: $(rj a "d['state'], d['last_error']")"; fi
same b /r/f1 "$T/f1" && ok "B: f1 byte-identical (B has the chunk A will lose)" ||
	bad "B: f1 differs"

r_stop a || bad "A stopped cleanly"
r_stop b || bad "B stopped cleanly"
fp=$("$breaker" "$SIZE" "$T"/a/disks/*.img 2>"$T/break.err")
sed 's/^/# /' "$T/break.err"
[ ${#fp} = 64 ] && ok "damaged chunk $fp of f1 on 3 strips of A's row" ||
	{ bad "chunkbreak failed"; r_finish; }
r_start a || exit 1
ca get /r/f1 - >"$T/f1.bad" 2>/dev/null && cmp -s "$T/f1.bad" "$T/f1" &&
	bad "A: f1 still reads correctly: the damage did not defeat the array" ||
	ok "A: f1 cannot be read correctly (beyond RAID-6)"

# Verify on A (B is stopped: the chunk waits on A's list).
ca --json verify --wait >"$T/v1.json" 2>"$T/v1.err"
vrc=$?
[ "$vrc" != 0 ] && ok "A's verify fails (exit $vrc)" || bad "A's verify found nothing"
[ "$(jget "$T/v1.json" "'$fp' in [c['fingerprint'] for c in d['bad_chunks']]" 2>/dev/null)" = True ] &&
	ok "verify names the damaged chunk" || bad "verify's bad_chunks lack $fp: $(cat "$T/v1.json")"
[ "$(jget "$T/v1.json" "d['queued_for_repair'], d.get('repair_from')" 2>/dev/null)" = "(1, 'twin')" ] &&
	ok "verify queued 1 chunk for repair from the twin" ||
	bad "verify queued: $(jget "$T/v1.json" "d['queued_for_repair'], d.get('repair_from')" 2>/dev/null)"
[ "$(rj a "d['repair']['chunks_wanted'], d['repair'].get('wanted_from')")" = "(1, 'twin')" ] &&
	ok "A's repl status: 1 chunk wanted from the twin" || bad "A's repl status: $(rj a "d.get('repair')")"
grep -q "verify: chunk $fp .*queued for repair from the replication twin" "$T/a.log" &&
	ok "A logged the chunk as queued for repair from the twin" || bad "no event about the queued chunk"
ca repl status 2>/dev/null | grep -q "repair: .*1 damaged chunks wanted from the twin" &&
	ok "bkstorctl repl status on A: wanted from the twin" ||
	bad "bkstorctl repl status on A: $(ca repl status 2>&1 | grep repair)"

# The list survives a restart of A (B still away).
r_stop a || bad "A stopped cleanly"
[ -s "$T/a/repl.wanted" ] && ok "A's repl.wanted written" || bad "no repl.wanted on A"
r_start a || exit 1
[ "$(rj a "d['repair']['chunks_wanted']")" = 1 ] && ok "after a restart of A: 1 chunk still wanted" ||
	bad "after a restart of A: $(rj a "d.get('repair')")"

# B comes back, its bwlimit a sixth of the chunk's length a second: A fetches the
# chunk (the sender retries a refused connection every 2 s), no sooner than B's
# limit lets it go.
len=$(jget "$T/v1.json" "[c['length'] for c in d['bad_chunks'] if c['fingerprint'] == '$fp'][0]")
limit=$((len / 6))
printf 'bwlimit = %s\n' "$limit" >>"$T/b/bkstord.conf"
t0=$(date +%s.%N)
r_start b || exit 1
done=0
for _ in $(seq 1 200); do
	[ "$(rj a "int(d['repair']['chunks_repaired'] >= 1 and d['repair']['chunks_wanted'] == 0)")" = 1 ] &&
		{ done=1; break; }
	sleep 0.1
done
took=$(echo "$(date +%s.%N) $t0" | awk '{printf "%.1f", $1 - $2}')
[ $done = 1 ] && ok "A fetched the chunk from B within $took s of B's start" ||
	bad "no repair after 20 s: A $(rj a "d.get('repair'), d['state'], d['last_error']"), B $(rj b "d.get('repair')")"
awk -v t="$took" -v l="$len" -v r="$limit" 'BEGIN { exit !(t >= l / r - 1) }' &&
	ok "B's answer honoured its bwlimit: $len bytes at $limit B/s took $took s (>= $((len / limit - 1)) s)" ||
	bad "B's answer of $len bytes at bwlimit $limit B/s took only $took s"
check "B's bwlimit lifted at run time" 0 cb repl set bwlimit 0
[ "$(rj b "d['repair']['chunks_sent'], d['repair']['chunks_missing_here']")" = "(1, 0)" ] &&
	ok "B sent exactly 1 chunk for A's repair" || bad "B's repair status: $(rj b "d.get('repair')")"
[ "$(rj a "d['repair']['chunks_refused'], d['repair']['chunks_peer_lacked']")" = "(0, 0)" ] &&
	ok "A: nothing refused, nothing the twin lacked" || bad "A's repair status: $(rj a "d.get('repair')")"
grep -q "repl: 1 of 1 damaged chunks repaired with good copies from the twin" "$T/a.log" &&
	ok "A logged the repair" || bad "no event about the repair on A"
same a /r/f1 "$T/f1" && ok "A: f1 byte-identical after the repair" || bad "A: f1 differs after the repair"
same a /r/f2 "$T/f2" && ok "A: f2 byte-identical" || bad "A: f2 differs"
check "A: a second verify is clean" 0 ca verify --wait
same b /r/f1 "$T/f1" && ok "B: f1 still byte-identical" || bad "B: f1 differs"

# Durable: after a restart A still reads it (the repair was committed).
r_stop a || bad "A stopped cleanly"
r_start a || exit 1
same a /r/f1 "$T/f1" && ok "A: f1 byte-identical after a restart" || bad "A: f1 differs after a restart"
check "A: verify clean after a restart" 0 ca verify --wait
[ "$(rj a "d['repair']['chunks_repaired'], d['repair']['chunks_wanted']")" = "(1, 0)" ] &&
	ok "A: 1 chunk repaired (kept across restarts), none wanted" || bad "A: $(rj a "d.get('repair')")"
# With B running: f2's first chunk and x's (which B never had) damaged on A.
r_stop a || bad "A stopped cleanly"
fp2=$("$breaker" "$SIZE2" "$T"/a/disks/*.img 2>"$T/break.err") &&
	fpx=$("$breaker" "$SIZEX" "$T"/a/disks/*.img 2>>"$T/break.err")
sed 's/^/# /' "$T/break.err"
[ ${#fp2} = 64 ] && [ ${#fpx} = 64 ] && ok "damaged a chunk of f2 and one of x on A" ||
	{ bad "chunkbreak failed"; r_finish; }
r_start a || exit 1
# Let A's first cycle after its start go by (it finds nothing to send or fetch).
sleep 1
ca --json verify --wait >"$T/v2.json" 2>/dev/null
t0=$(date +%s)
[ "$(jget "$T/v2.json" "d['queued_for_repair']" 2>/dev/null)" = 2 ] &&
	ok "A's verify queued 2 chunks for repair" ||
	bad "A's verify queued $(jget "$T/v2.json" "d['queued_for_repair']" 2>/dev/null)"
done=0
for _ in $(seq 1 100); do
	[ "$(rj a "int(d['repair']['chunks_repaired'] >= 2 and d['repair']['chunks_peer_lacked'] >= 1)")" = 1 ] &&
		{ done=1; break; }
	sleep 0.1
done
[ $done = 1 ] && ok "A fetched f2's chunk from B within $(($(date +%s) - t0)) s of its verify" ||
	bad "no repair after 10 s: A $(rj a "d.get('repair'), d['state'], d['last_error']")"
[ "$(rj a "d['repair']['chunks_wanted']")" = 1 ] && ok "A: x's chunk still wanted (B lacks it)" ||
	bad "A: $(rj a "d.get('repair')")"
[ "$(rj b "d['repair']['chunks_sent'], d['repair']['chunks_missing_here']")" = "(2, 1)" ] &&
	ok "B: sent f2's chunk, could not give x's" || bad "B's repair status: $(rj b "d.get('repair')")"
grep -q "repl: 1 of 2 damaged chunks repaired with good copies from the twin (the twin could not give the others); 1 still wanted" "$T/a.log" &&
	ok "A logged what the twin could not give" || bad "no event about the chunk B lacks"
# The counters the dashboard and `bkstorctl status` show (docs/api.md "repair"):
# x's chunk, asked and not given, failed (once per ask); the counts since A's start.
[ "$(rj a "d['repair']['chunks_wanted'], d['repair']['chunks_received'], d['repair']['chunks_failed'] >= 1")" = "(1, 1, True)" ] &&
	ok "A's status: 1 wanted, 1 received, failed counted" || bad "A's repair status: $(rj a "d.get('repair')")"
ca status 2>/dev/null | tr '\n' ' ' | tr -s ' ' | grep -Eq "repl: source to .*; repair 1 wanted, 1 fetched, 0 sent, [1-9][0-9]* failed " &&
	ok "bkstorctl status on A: the repair counters" || bad "A's status: $(ca status 2>&1 | grep -A2 repl:)"
cb status 2>/dev/null | tr '\n' ' ' | tr -s ' ' | grep -q "repl: twin of .*; repair 0 wanted, 0 fetched, 2 sent, 0 failed " &&
	ok "bkstorctl status on B: the repair counters" || bad "B's status: $(cb status 2>&1 | grep -A2 repl:)"
same a /r/f2 "$T/f2" && ok "A: f2 byte-identical after the repair" || bad "A: f2 differs"
same a /x/x "$T/x" && bad "A: x reads correctly (nobody had a good copy)" ||
	ok "A: x still unreadable (no good copy anywhere)"

# Replication goes on as before: a new file crosses.
head -c 100000 /dev/urandom >"$T/f3"
ca put "$T/f3" /r/f3 -p >/dev/null || bad "put f3 on A"
if r_synced 60; then ok "A reached lag 0 again"; else bad "no lag 0 after the repair"; fi
same b /r/f3 "$T/f3" && ok "B: f3 byte-identical" || bad "B: f3 differs"
r_finish
