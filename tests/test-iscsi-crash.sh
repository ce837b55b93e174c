#!/bin/sh
# tests/test-iscsi-crash.sh: kill -9 bkstord while an initiator writes to a LUN over
# iSCSI (tests/iscsiclient, libiscsi); after the restart every block the target
# acknowledged with FUA, or covered by an acknowledged SYNCHRONIZE CACHE, is intact,
# and persistent reservations (a registration and a WRITE EXCLUSIVE reservation)
# survive: READ KEYS and READ RESERVATION say the same, and another initiator's write
# still gets RESERVATION CONFLICT. Rounds: FUA writes, then writes each followed by
# SYNCHRONIZE CACHE; then the reservation, with a kill -9 right after its GOOD.
. "${top_srcdir:-.}/tests/daemon-lib.sh"
cli="${top_builddir:-.}/tests/iscsiclient"
[ -x "$cli" ] || { echo "SKIP: tests/iscsiclient not built (libiscsi-dev missing)"; exit 77; }

d_start || exit 1
IPORT=$(sed -n '/^\[iscsi\]/,/^\[/s/^listen *= *127.0.0.1://p' "$DEMO/bkstord.conf" | head -1)
[ -n "$IPORT" ] || { echo "FAIL - the demo has no [iscsi] listen"; exit 1; }
ctl lun create crash 256M >/dev/null || { echo "FAIL - lun create"; exit 1; }
IQN=$(ctl --json status | python3 -c 'import json,sys; print(json.load(sys.stdin)["iscsi"]["iqn_prefix"])' 2>/dev/null)
[ -n "$IQN" ] || IQN="iqn.2026-12.io.bkstor:demo"
URL="iscsi://127.0.0.1:$IPORT/$IQN:crash/0"
export ISCSI_INITIATOR=iqn.2026-01.io.bkstor.test:holder

# A writer that is killed with the daemon: FUA writes (each durable when acked).
run_round() { # NAME MODE LBA NBLK SEED
	"$cli" "$URL" write "$3" "$4" "$5" "$2" >"$T/$1.acked" 2>"$T/$1.err" &
	wp=$!
	# let it get going, then kill the daemon mid-stream
	for _ in $(seq 1 100); do
		[ "$(wc -l <"$T/$1.acked")" -ge 5 ] && break
		sleep 0.05
	done
	sleep 0.3
	d_kill9
	# libiscsi reconnects forever: the writer goes with the daemon
	kill "$wp" 2>/dev/null
	wait "$wp" 2>/dev/null
	n=$(wc -l <"$T/$1.acked")
	[ "$n" -ge 1 ] && ok "$1: $n commands acknowledged before the kill" || bad "$1: nothing acknowledged: $(cat "$T/$1.err")"
	d_start || exit 1
	# every acknowledged command's blocks are intact
	fails0=$fails
	while read -r _ lba k; do
		"$cli" "$URL" verify "$lba" "$k" "$5" 2>>"$T/$1.verr" || { bad "$1: blocks $lba+$k lost"; break; }
	done <"$T/$1.acked"
	[ "$fails" = "$fails0" ] && ok "$1: every acknowledged block intact after kill -9"
}
run_round fua fua 0 40000 11
run_round sync sync 100000 40000 22

# Persistent reservation: register key 0xabc and reserve WRITE EXCLUSIVE (type 1),
# then kill -9 at once: GOOD was answered only once the state was durable.
check "register and reserve write exclusive" 0 "$cli" "$URL" reserve 0xabc 1
d_kill9
d_start || exit 1
out=$("$cli" "$URL" prin 2>&1)
echo "$out" | grep -q "keys 0xabc$" && ok "the key survived" || bad "keys after restart: $out"
echo "$out" | grep -q "reservation 0xabc 1$" && ok "the reservation survived" || bad "reservation after restart: $out"
ISCSI_INITIATOR=iqn.2026-01.io.bkstor.test:other "$cli" "$URL" write 0 1 5 none >/dev/null 2>"$T/other.err"
grep -q "RESERVATION CONFLICT" "$T/other.err" && ok "another initiator's write conflicts" || bad "other initiator: $(cat "$T/other.err")"
d_stop || bad "clean stop"
d_finish
