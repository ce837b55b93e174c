#!/bin/sh
# tests/test-repl-deferred.sh: deferred compression across replication. A (the source)
# stores busy chunks raw "for later" (store.zstd_level_busy = 0) and its background
# pass is held off ([array] fg_idle_ms = 600000), so every such chunk is still raw
# when it is replicated. Such chunks cross as CHUNK codec 2 (protocol version 4) and
# B stores them raw and flagged, so B's own pass compresses them: B's status shows a
# compress job that ends done with nothing left, B's stored bytes shrink, the files
# are byte-identical on both, and both verify clean. (Before version 4, B kept them
# raw for good: no compress job on B, its stored bytes never shrank.) Then, with
# [repl] bwlimit 100M, A compresses such chunks for the wire (zstd 1): less than 3/4
# of their raw bytes cross (more than all of them before), and B does not flag them.
. "${top_srcdir:-.}/tests/repl-lib.sh"

r_make a "$PA" "$RA" 168h && r_make b "$PB" "$RB" 168h || exit 1
sed -i 's/^\[store\]$/[store]\nzstd_level_busy = 0/; s/^\[array\]$/[array]\nfg_idle_ms = 600000/' \
	"$T/a/bkstord.conf"
r_start a && r_start b || exit 1
check "pair A with B" 0 r_pair
make_base "$T/base" 64
head -c $((16 << 20)) "$T/base" >"$T/b1"
head -c $((32 << 20)) "$T/base" | tail -c $((16 << 20)) >"$T/b2"
head -c $((48 << 20)) "$T/base" | tail -c $((16 << 20)) >"$T/b3"
tail -c $((16 << 20)) "$T/base" >"$T/b4"
ca mkdir /d >/dev/null || bad "mkdir /d on A"
# Two puts at once keep the stream ahead of A (daemon/native_ops.c's busy test).
ca put "$T/b1" /d/f1 >/dev/null 2>"$T/p1.err" &
p1=$!
ca put "$T/b2" /d/f2 >/dev/null 2>"$T/p2.err" &
p2=$!
rc=0
wait $p1 || rc=1
wait $p2 || rc=1
[ $rc = 0 ] && ok "two puts at once on A" || bad "a put failed: $(cat "$T"/p*.err)"
job() { # NAME FIELD: the compress job's field in NAME's status ("" without a job)
	BKSTOR_CLIENT="$T/$1/client.conf" "$ctl_bin" status --json >"$T/st$1.json" 2>/dev/null &&
		jget "$T/st$1.json" '([j for j in d["jobs"] if j["kind"] == "compress"] or [{}])[0].get("'"$2"'", "")'
}
deferred=$(job a deferred_bytes)
[ "${deferred:-0}" -gt $((4 << 20)) ] && ok "A: $deferred bytes stored raw for later" ||
	bad "A: only ${deferred:-0} bytes deferred (was the daemon ever behind?)"
if r_synced 40; then ok "A replicated both files"
else bad "no lag 0 on A in 40 s: $(rj a "d['state'], d['last_error'], d['lag']")"; fi
left=$(job a bytes_left)
[ "${left:-0}" -gt $((4 << 20)) ] && ok "A's pass has not run: $left bytes still raw when sent" ||
	bad "A's pass ran before replication ($left bytes left): the test proves nothing"
wire=$(rj a "d['sent']['wire_bytes']")
echo "# A: stored $(jget "$T/sta.json" 'd["capacity"]["stored_bytes"]') bytes, sent $wire on the wire"
# B: what the chunks took as they arrived (stored now + what its pass saved so far).
cb --json status >"$T/sb0.json"
before=$(jget "$T/sb0.json" 'd["capacity"]["stored_bytes"] + ([j for j in d["jobs"] if j["kind"] == "compress"] or [{"bytes_saved": 0}])[0]["bytes_saved"]')
bdef=$(job b deferred_bytes)
[ "${bdef:-0}" -gt $((4 << 20)) ] && ok "B: $bdef bytes arrived raw and flagged for its pass" ||
	bad "B: ${bdef:-0} bytes flagged (the raw chunks were kept raw for good)"
for _ in $(seq 1 150); do
	[ "$(job b state)" = done ] && [ "$(job b bytes_left)" = 0 ] && break
	sleep 0.2
done
[ "$(job b state)" = done ] && [ "$(job b bytes_left)" = 0 ] && ok "B: the compress job is done" ||
	bad "B: compress job: state '$(job b state)', $(job b bytes_left) bytes left"
after=$(jget "$T/stb.json" 'd["capacity"]["stored_bytes"]')
raw=$(job b raw_done)
[ "${raw:-0}" -ge "${bdef:-1}" ] && [ "$after" -lt $((before - ${bdef:-0} / 4)) ] &&
	ok "B: stored bytes $before -> $after (${raw:-0} raw bytes compressed)" ||
	bad "B: stored bytes $before -> $after, ${raw:-0} of ${bdef:-0} handled"
cb status >"$T/out" 2>&1
grep -q "compress done" "$T/out" && ok "B: bkstorctl status: compress done" ||
	bad "B: status: $(grep -A1 jobs "$T/out")"

# With a bwlimit that slow, A compresses such chunks for the wire (zstd 1): fewer bytes
# cross than the raw chunks, and B gets them compressed (nothing for its pass).
ca repl set bwlimit 100M >/dev/null || bad "repl set bwlimit on A"
w0=$(rj a "d['sent']['wire_bytes']")
ca put "$T/b3" /d/f3 >/dev/null 2>"$T/p1.err" &
p1=$!
ca put "$T/b4" /d/f4 >/dev/null 2>"$T/p2.err" &
p2=$!
rc=0
wait $p1 || rc=1
wait $p2 || rc=1
[ $rc = 0 ] && ok "two more puts at once on A" || bad "a put failed: $(cat "$T"/p*.err)"
d3=$(( $(job a deferred_bytes) - deferred ))
if r_synced 40; then ok "A replicated them at 100M"
else bad "no lag 0 on A in 40 s: $(rj a "d['state'], d['last_error'], d['lag']")"; fi
left3=$(job a bytes_left)
w1=$(rj a "d['sent']['wire_bytes']")
b3=$(( $(job b deferred_bytes) - bdef ))
echo "# second pair: $d3 bytes deferred on A ($left3 raw on A in all), $((w1 - w0)) on the wire, $b3 flagged on B"
# How much A defers depends on how far the clients get ahead of it (the load): the
# wire figure tells raw from compressed only when most of the two files was deferred
# (raw: at least d3 + 0.3 of the rest; compressed: the files at zstd 1, ~0.4 of them).
total=$(( $(stat -c %s "$T/b3") + $(stat -c %s "$T/b4") ))
[ "$d3" -gt $((2 << 20)) ] && [ "$left3" -gt $((2 << 20)) ] && [ "$b3" -lt $((d3 / 10)) ] &&
	ok "deferred chunks crossed compressed at a bwlimit: $b3 of $d3 deferred bytes flagged on B" ||
	bad "at a bwlimit: $((w1 - w0)) wire bytes for $d3 deferred raw bytes, $b3 flagged on B"
if [ $((d3 * 2)) -gt "$total" ]; then
	[ $(((w1 - w0) * 10)) -lt $((total * 6)) ] &&
		ok "wire bytes $((w1 - w0)) for $total bytes of files ($d3 deferred)" ||
		bad "wire bytes $((w1 - w0)) for $total bytes of files ($d3 deferred): sent raw?"
else
	echo "# (only $d3 of $total bytes deferred under this load: wire ratio not told apart)"
fi
for f in 1 2 3 4; do
	same a "/d/f$f" "$T/b$f" && ok "A: f$f identical" || bad "A: f$f differs"
	same b "/d/f$f" "$T/b$f" && ok "B: f$f identical" || bad "B: f$f differs"
done
check "verify A" 0 ca verify --wait
check "verify B" 0 cb verify --wait
r_stop a
r_stop b
r_finish
