#!/bin/sh
# test-daemon-deferred: deferred compression through the daemon (store.zstd_level_busy
# = 0, dedup/store_defer.c). Two bkstorctl puts at once keep the stream ahead of the
# daemon (the busy test in daemon/native_ops.c), so new chunks go in raw and flagged;
# once the clients are gone the background pass compresses them: the status
# document's compress job ends "done" with nothing left, the store's stored bytes
# shrink, both files read back identical, verify is clean, and again after a restart
# (whose pass finds nothing more to do).
. "${top_srcdir:-.}/tests/daemon-lib.sh"

make_base "$T/base" 32
head -c $((16 << 20)) "$T/base" >"$T/b1"
tail -c $((16 << 20)) "$T/base" >"$T/b2"
d_start || exit 1
d_stop
sed -i 's/^\[store\]$/[store]\nzstd_level_busy = 0/' "$DEMO/bkstord.conf"
d_start || exit 1
ok "bkstord up with zstd_level_busy = 0"
check "mkdir /d" 0 ctl mkdir /d
ctl put "$T/b1" /d/f1 >/dev/null 2>"$T/p1.err" &
p1=$!
ctl put "$T/b2" /d/f2 >/dev/null 2>"$T/p2.err" &
p2=$!
rc=0
wait $p1 || rc=1
wait $p2 || rc=1
[ $rc = 0 ] && ok "two puts at once" || bad "a put failed: $(cat "$T"/p*.err)"
# The job's figures and the store's, until the pass is done (it starts fg_idle_ms
# after the last client I/O; status requests are not client I/O).
job() {
	ctl status --json >"$T/st.json" 2>/dev/null &&
	jget "$T/st.json" '[j for j in d["jobs"] if j["kind"] == "compress"][0]["'"$1"'"]'
}
sleep 0.3
deferred=$(job deferred_bytes)
before=$(jget "$T/st.json" 'd["capacity"]["stored_bytes"] + [j for j in d["jobs"] if j["kind"] == "compress"][0]["bytes_saved"]')
[ "$deferred" -gt $((4 << 20)) ] && ok "$deferred bytes stored raw for later" ||
	bad "only $deferred bytes deferred (was the daemon ever behind?)"
for _ in $(seq 1 300); do
	[ "$(job state)" = done ] && [ "$(job bytes_left)" = 0 ] && break
	sleep 0.2
done
[ "$(job state)" = done ] && [ "$(job bytes_left)" = 0 ] && ok "the pass is done" ||
	bad "the pass: $(cat "$T/st.json")"
# Its times: started (when it first had work, even if it waited for the clients)
# and finished after it (a job that waited first once showed started_ns 0).
[ "$(jget "$T/st.json" '[j for j in d["jobs"] if j["kind"] == "compress"][0]["started_ns"] > 0')" = True ] &&
	[ "$(jget "$T/st.json" '(lambda j: j["finished_ns"] >= j["started_ns"])([j for j in d["jobs"] if j["kind"] == "compress"][0])')" = True ] &&
	ok "the job's start and end times" || bad "job times: $(cat "$T/st.json")"
after=$(jget "$T/st.json" 'd["capacity"]["stored_bytes"]')
raw=$(job raw_done)
[ "$raw" -ge "$deferred" ] && [ "$after" -lt $((before - deferred / 4)) ] &&
	ok "stored bytes $before -> $after ($raw raw bytes handled)" ||
	bad "stored bytes $before -> $after, $raw of $deferred handled"
check "status text shows the job" 0 ctl status
grep -q "compress done" "$T/out" && ok "bkstorctl status: compress done" ||
	bad "status: $(grep -A1 jobs "$T/out")"
for f in 1 2; do
	check "get f$f" 0 ctl get "/d/f$f" "$T/back$f"
	cmp -s "$T/back$f" "$T/b$f" && ok "f$f identical" || bad "f$f differs"
done
check "verify" 0 ctl verify --wait
d_stop
d_start || exit 1
for f in 1 2; do
	rm -f "$T/back$f"
	check "get f$f after a restart" 0 ctl get "/d/f$f" "$T/back$f"
	cmp -s "$T/back$f" "$T/b$f" && ok "f$f identical after a restart" || bad "f$f differs"
done
sleep 1.5
[ "$(job segments_done)" = 0 ] && ok "nothing left for the pass after a restart" ||
	bad "after a restart: $(cat "$T/st.json")"
d_stop
d_finish
