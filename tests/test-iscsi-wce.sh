#!/bin/sh
# tests/test-iscsi-wce.sh: a write cache an initiator turned off (MODE SELECT of the
# caching page, WCE=0, SP=0) stays off across a restart, and with it every write is
# durable when GOOD is answered: such an initiator never sends SYNCHRONIZE CACHE. The
# daemon is restarted (MODE SENSE current and saved values say WCE=0, `lun list` says
# write-through), then killed with kill -9 while the initiator writes without any
# flush; after the restart every acknowledged block is intact. Turning the cache on
# again is saved the same way, and so is `bkstorctl lun set NAME write_cache off`.
# (The old daemon came back with WCE=1: the writes sat
# in the write-back cache and the kill lost them.)
. "${top_srcdir:-.}/tests/daemon-lib.sh"
cli="${top_builddir:-.}/tests/iscsiclient"
[ -x "$cli" ] || { echo "SKIP: tests/iscsiclient not built (libiscsi-dev missing)"; exit 77; }

d_start || exit 1
IPORT=$(sed -n '/^\[iscsi\]/,/^\[/s/^listen *= *127.0.0.1://p' "$DEMO/bkstord.conf" | head -1)
[ -n "$IPORT" ] || { echo "FAIL - the demo has no [iscsi] listen"; exit 1; }
ctl lun create wt 256M >/dev/null || { echo "FAIL - lun create"; exit 1; }
IQN=$(ctl --json status | python3 -c 'import json,sys; print(json.load(sys.stdin)["iscsi"]["iqn_prefix"])' 2>/dev/null)
[ -n "$IQN" ] || IQN="iqn.2026-12.io.bkstor:demo"
URL="iscsi://127.0.0.1:$IPORT/$IQN:wt/0"

wce_is() { # EXPECTED WHAT [ARGS]: `iscsiclient wce ARGS` prints EXPECTED
	want=$1 what=$2
	shift 2
	out=$("$cli" "$URL" wce "$@" 2>&1)
	[ "$out" = "$want" ] && ok "$what: $out" || bad "$what: '$out', want '$want'"
}
lun_cache() { # the write_cache `lun list --json` says for the LUN
	ctl --json lun list 2>/dev/null | python3 -c '
import json, sys
print([l.get("write_cache") for l in json.load(sys.stdin)["luns"] if l["name"] == "wt"])'
}

wce_is "wce 1 saved 1" "a new LUN has its write cache on"
[ "$(lun_cache)" = "[True]" ] && ok "lun list: write cache on" || bad "lun list: $(lun_cache)"
wce_is "wce 0 saved 0" "MODE SELECT WCE=0 (SP=0)" 0 0
[ "$(lun_cache)" = "[False]" ] && ok "lun list --json: write cache off" || bad "lun list: $(lun_cache)"
ctl lun list | grep -q "^wt .*write-through" && ok "lun list: write-through" || bad "lun list: $(ctl lun list)"

d_stop || bad "clean stop"
d_start || exit 1
wce_is "wce 0 saved 0" "still off after a restart"

# Writes without any SYNCHRONIZE CACHE or FUA; kill -9 mid-stream.
"$cli" "$URL" write 0 40000 33 none >"$T/w.acked" 2>"$T/w.err" &
wp=$!
for _ in $(seq 1 100); do
	[ "$(wc -l <"$T/w.acked")" -ge 5 ] && break
	sleep 0.05
done
sleep 0.3
d_kill9
kill "$wp" 2>/dev/null # libiscsi reconnects forever: the writer goes with the daemon
wait "$wp" 2>/dev/null
n=$(wc -l <"$T/w.acked")
[ "$n" -ge 5 ] && ok "$n writes acknowledged before the kill" || bad "only $n acknowledged: $(cat "$T/w.err")"
d_start || exit 1
lost=0
while read -r _ lba k; do
	"$cli" "$URL" verify "$lba" "$k" 33 2>>"$T/verr" || lost=$((lost + 1))
done <"$T/w.acked"
[ "$lost" = 0 ] && ok "all $n acknowledged writes intact after kill -9" || bad "$lost of $n acknowledged writes lost after kill -9"
wce_is "wce 0 saved 0" "still off after kill -9"

# On again (saved with SP=1 this time), survives kill -9 too.
wce_is "wce 1 saved 1" "MODE SELECT WCE=1 (SP=1)" 1 1
d_kill9
d_start || exit 1
wce_is "wce 1 saved 1" "on after kill -9"
[ "$(lun_cache)" = "[True]" ] && ok "lun list: write cache on again" || bad "lun list: $(lun_cache)"

# The admin's switch: refused while an initiator has the LUN open, then (the
# initiator gone: the LUN is closed once its session is) saved like a MODE SELECT.
"$cli" "$URL" write 0 4000000 44 none >"$T/w2.acked" 2>/dev/null &
wp=$!
for _ in $(seq 1 100); do
	[ "$(wc -l <"$T/w2.acked")" -ge 2 ] && break
	sleep 0.05
done
check "lun set while in use" 1 ctl lun set wt write_cache off
grep -q "in use" "$T/err" && ok "in use: $(cat "$T/err")" || bad "lun set in use: $(cat "$T/err")"
kill "$wp" 2>/dev/null
wait "$wp" 2>/dev/null
set_ok=0
for _ in $(seq 1 50); do
	ctl lun set wt write_cache off >/dev/null 2>"$T/set.err" && { set_ok=1; break; }
	sleep 0.1
done
[ "$set_ok" = 1 ] && ok "lun set write_cache off" || bad "lun set: $(cat "$T/set.err")"
[ "$(lun_cache)" = "[False]" ] && ok "lun list: off" || bad "lun list: $(lun_cache)"
wce_is "wce 0 saved 0" "the initiator finds it off"
check "lun set: bad value" 2 ctl lun set wt write_cache maybe
d_kill9
d_start || exit 1
wce_is "wce 0 saved 0" "off after kill -9"
d_stop || bad "clean stop"
d_finish
