#!/bin/sh
# tests/test-iscsi-inflight.sh: several commands of one connection in flight at once
# (docs/iscsi.md "Full feature phase"). tests/iscsiclient's flight mode submits
# every command before it waits for any: 1 MiB and 4 KiB WRITE(16)s in turn over
# 32 MiB, then READ(16)s of the same pieces (each checked), then 8 overlapping
# writes of one range and a read of it together. Checks: every command answered
# GOOD with the right data; the target answered some READs before READs submitted
# earlier (a 4 KiB one passing a 1 MiB one: one command at a time answers in
# order, so the old target fails this); the overlapping writes kept their order
# (the read sees the last); the bytes read back one command at a time, and after a
# restart, are the ones written; with MaxOutstandingR2T=4 negotiated (a bare
# initiator, tests/iscsir2t.py), four R2Ts of a write come before any data.
. "${top_srcdir:-.}/tests/daemon-lib.sh"

client="${top_builddir:-.}/tests/iscsiclient"
[ -x "$client" ] || { echo "SKIP: tests/iscsiclient not built (libiscsi-dev missing)"; exit 77; }

d_start || exit 1
PFX=$(sed -n 's/.*targets \(iqn[^ ]*\):<lun>.*/\1/p' "$T/daemon.log" | tail -1)
check "lun create vol 256M" 0 ctl lun create vol 256M
URL="iscsi://127.0.0.1:$((PORT + 4))/$PFX:vol/0"
NBLK=65536  # 32 MiB of 512-byte blocks

# Passing needs a 4 KiB READ to finish before a 1 MiB READ ahead of it: what several
# workers do nearly always; a busy machine may line them up once, so three tries.
ooo=0
for try in 1 2 3; do
	if ! "$client" "$URL" flight 0 $NBLK 7 >"$T/flight" 2>&1; then
		bad "flight run $try: a command failed or its data differed"
		cat "$T/flight"
		break
	fi
	ooo=$(sed -n 's/^read commands [0-9]* in_flight [0-9]* out_of_order \([0-9]*\)$/\1/p' "$T/flight")
	[ "${ooo:-0}" -gt 0 ] && break
done
cat "$T/flight"
grep -q "^write commands 63 in_flight 63 " "$T/flight" &&
	grep -q "^read commands 63 in_flight 63 " "$T/flight" &&
	ok "63 writes and 63 reads submitted together, all GOOD, the reads' data right" ||
	bad "the flight run did not complete"
[ "${ooo:-0}" -gt 0 ] && ok "the target answered $ooo reads before earlier ones" ||
	bad "every read answered in submission order: one command at a time"
grep -q "^overlap commands 9 " "$T/flight" &&
	ok "8 overlapping writes and a read in flight: the read saw the last write" ||
	bad "overlapping writes"

# R2Ts ahead: a bare initiator offering MaxOutstandingR2T=4 and 64 KiB bursts gets
# four R2Ts for a 512 KiB WRITE before it sends a byte, then the rest as it
# answers them; the data reads back the same (libiscsi offers only 1).
python3 "${top_srcdir:-.}/tests/iscsir2t.py" 127.0.0.1 $((PORT + 4)) "$PFX:vol" >"$T/r2t" 2>&1
rc=$?
cat "$T/r2t"
[ $rc = 0 ] && grep -q "^r2t_ahead 4$" "$T/r2t" &&
	ok "MaxOutstandingR2T 4: four R2Ts ahead, the write read back identical" ||
	bad "R2Ts ahead (exit $rc)"

# One command at a time: the same bytes (the first 128 blocks hold the last of the
# overlapping writes, seed 15).
check "read back one at a time" 0 "$client" "$URL" verify 128 $((NBLK - 128)) 7
check "the overlapped range holds the last write" 0 "$client" "$URL" verify 0 128 15
d_stop && ok "clean stop" || bad "stop"
d_start || exit 1
check "after a restart: the same bytes" 0 "$client" "$URL" verify 128 $((NBLK - 128)) 7
check "after a restart: the overlapped range" 0 "$client" "$URL" verify 0 128 15
d_stop && ok "clean stop" || bad "stop"
d_finish
