#!/bin/sh
# test-daemon-disks: through bkstorctl, fail a disk during an ingest and watch the
# hot spare rebuild to completion; replace another disk with a new file disk; scrub;
# the data stays intact throughout; a too-small replacement is refused with a clear
# message.
. "${top_srcdir:-.}/tests/daemon-lib.sh"

wait_idle() { # until the array is ONLINE with no rebuild/replace/scrub running
	for _ in $(seq 1 600); do
		ctl status --json >"$T/st.json" 2>/dev/null || { sleep 0.2; continue; }
		if [ "$(jget "$T/st.json" 'd["health"] == "ONLINE" and not [j for j in d["array"]["jobs"] if j["state"] == "running"]')" = True ]; then
			return 0
		fi
		[ "$(jget "$T/st.json" 'any(j["kind"] in ("rebuild","replace") for j in d["array"]["jobs"])')" = True ] && saw_rebuild=1
		sleep 0.2
	done
	return 1
}

make_base "$T/base" 48
d_start || exit 1
ctl put -p "$T/base" /b/first >/dev/null 2>&1 || bad "first put"
ctl put -p "$T/base" /b/during >"$T/put.out" 2>&1 &
cpid=$!
sleep 0.2
check "disk fail during ingest" 0 ctl disk fail "$DEMO/disks/disk2.img"
wait "$cpid" && ok "the ingest completed while a disk failed" || { bad "ingest failed"; cat "$T/put.out"; }
saw_rebuild=0
wait_idle && ok "the spare rebuilt to completion; array ONLINE" || bad "rebuild did not finish"
check "events" 0 ctl events
grep -q "rebuild of .*spare0.img complete" "$T/out" && ok "events: the spare's rebuild completed" ||
	bad "no rebuild-complete event: $(cat "$T/out")"
check "disk list" 0 ctl disk list
grep -q spare0 "$T/out" && ok "the spare is now a member" || bad "disk list: $(cat "$T/out")"
for f in first during; do
	check "get $f after the rebuild" 0 ctl get "/b/$f" "$T/$f"
	cmp -s "$T/$f" "$T/base" && ok "$f intact" || bad "$f differs"
done

size=$(stat -c %s "$DEMO/disks/disk0.img")
truncate -s 64M "$T/small.img"
check "replace with a too-small disk is refused" 1 ctl disk replace "$DEMO/disks/disk4.img" "$T/small.img"
grep -qi "smaller" "$T/err" && ok "the message says why: $(head -1 "$T/err")" || bad "message: $(cat "$T/err")"
truncate -s "$size" "$T/new.img"
check "replace disk4 with a new disk" 0 ctl disk replace "$DEMO/disks/disk4.img" "$T/new.img"
wait_idle && ok "replace finished; array ONLINE" || bad "replace did not finish"
check "disk list after replace" 0 ctl disk list --json
[ "$(jget "$T/out" 'any(x["path"] == "'"$T/new.img"'" and x["state"] == "ONLINE" for x in d["disks"])')" = True ] &&
	ok "the new disk is ONLINE" || bad "new disk not ONLINE"
check "scrub start" 0 ctl scrub start
wait_idle && ok "scrub finished" || bad "scrub did not finish"
check "scrub status --json" 0 ctl status --json
[ "$(jget "$T/out" 'd["array"]["last_scrub"]["unrecoverable"]')" = 0 ] && ok "scrub: nothing unrecoverable" || bad "scrub errors"
d_stop && ok "stop after the replace" || bad "stop"
d_start || { bad "restart after the replace"; d_finish; }
check "status after the restart" 0 ctl status --json
[ "$(jget "$T/out" 'd["health"]')" = ONLINE ] && ok "ONLINE after a restart: the new disk was remembered" ||
	bad "after restart: $(jget "$T/out" 'd["health"]'): $(grep -i 'missing\|left alone' "$T/daemon.log" | tail -2)"
check "get after replace and scrub" 0 ctl get /b/during "$T/final"
cmp -s "$T/final" "$T/base" && ok "data intact throughout" || bad "data differs"
check "verify" 0 ctl verify --wait
d_stop && ok "clean stop" || bad "stop"
d_finish
