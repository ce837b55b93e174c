#!/bin/sh
# tests/test-repl-basic.sh: replication between two bkstord on this machine (issue 12).
# Pair A with B (token on B, fingerprint confirmed on A); put 5 generations of a
# backup on A (2% changed each); after each, A's sender must reach lag 0; then every
# file on B is byte-identical, the bytes on the wire are at most 1.1 x the stored
# bytes A added (only missing chunks cross, as stored), a rename crosses as a rename
# (no data), changes in place cross (an mtime put back, an UNSTABLE NFS write committed
# after a cycle), a delete reaches B only after B's delete_delay, and B verifies clean.
. "${top_srcdir:-.}/tests/repl-lib.sh"
DELAY=6
MB=${REPL_BASE_MB:-24}

r_make a "$PA" "$RA" 168h && r_make b "$PB" "$RB" "${DELAY}s" || exit 1
r_start a && r_start b || exit 1
check "pair A with B (one-time token, fingerprint given with --yes)" 0 r_pair
[ "$(rj a "d['role']")" = source ] && ok "A is the source" || bad "A's role: $(rj a "d['role']")"
[ "$(rj b "int(d['paired'])")" = 1 ] && ok "B pinned A" || bad "B is not paired"

ca --json status >"$T/s0.json"
stored0=$(jget "$T/s0.json" "d['capacity']['stored_bytes']")
make_base "$T/base" "$MB"
gens "$T/base" "$T/gens" 5 >/dev/null
start=$(date +%s)
for g in 1 2 3 4 5; do
	f=$(printf 'gen%02d.img' $g)
	ca put "$T/gens/$f" "/backup/host1/$f" -p >/dev/null || bad "put $f on A"
	if r_synced 60; then ok "generation $g: lag 0 on A ($(rj a "d['sent']['chunks']") chunks sent so far)"
	else bad "generation $g: A did not reach lag 0 in 60 s: $(rj a "d['state'], d['last_error'], d['lag']")"; fi
done
echo "# 5 generations of ${MB} MiB replicated in $(($(date +%s) - start)) s"
ca --json status >"$T/s1.json"
stored1=$(jget "$T/s1.json" "d['capacity']['stored_bytes']")
wire=$(rj a "d['sent']['wire_bytes']")
added=$((stored1 - stored0))
echo "# stored bytes A added: $added; bytes on the wire: $wire"
if [ "$added" -gt 0 ] && [ "$(python3 -c "print(int($wire <= 1.1 * $added))")" = 1 ]; then
	ok "wire bytes $wire <= 1.1 x stored bytes added $added ($(python3 -c "print(round($wire / $added, 3))"))"
else
	bad "wire bytes $wire > 1.1 x stored bytes added $added"
fi
for g in 1 2 3 4 5; do
	f=$(printf 'gen%02d.img' $g)
	if cb get "/backup/host1/$f" - 2>/dev/null | cmp -s - "$T/gens/$f"; then ok "B: $f byte-identical"
	else bad "B: $f differs or is missing"; fi
done

# A rename crosses as a rename: no chunk, a few hundred bytes.
w0=$(rj a "d['sent']['wire_bytes']")
c0=$(rj a "d['sent']['chunks']")
ca mv /backup/host1/gen01.img /backup/host1/first.img >/dev/null || bad "mv on A"
r_synced 30 || bad "rename: no lag 0"
w1=$(rj a "d['sent']['wire_bytes']")
[ "$(rj a "d['sent']['chunks']")" = "$c0" ] && [ $((w1 - w0)) -lt 4096 ] &&
	ok "rename sent as a rename ($((w1 - w0)) bytes, no chunk)" ||
	bad "rename sent $((w1 - w0)) bytes, chunks $c0 -> $(rj a "d['sent']['chunks']")"
cb get /backup/host1/first.img - 2>/dev/null | cmp -s - "$T/gens/gen01.img" &&
	ok "B: renamed file there, same bytes" || bad "B: /backup/host1/first.img wrong or missing"
cb stat /backup/host1/gen01.img >/dev/null 2>&1 && bad "B: the old name is still there" ||
	ok "B: the old name is gone"

# A change in place with the mtime put back (as cp -p or rsync -t over NFS leave it):
# size and mtime as before, only ctime tells; it must still cross.
PYTHONPATH="${top_srcdir:-.}/tests" python3 - "$((PA + 2))" "$((PA + 3))" <<'PY' || bad "NFS write + SETATTR mtime on A"
import struct, sys
from nfsrpc import *
nfs, mnt_port = int(sys.argv[1]), int(sys.argv[2])
m = Conn(mnt_port, privileged=True)
st, root = mnt(m, "/")
assert st == 0, st
c = Conn(nfs, privileged=True)
fh = root
for name in ("backup", "host1", "gen03.img"):
    st, fh = lookup(c, fh, name)
    assert st == 0, (name, st)
st, fa = getattr_(c, fh)
msec, mnsec = u32(fa, 68), u32(fa, 72)
st, n, _, _ = write(c, fh, 1000, b"CHANGED!", 2)
assert st == 0 and n == 8, (st, n)
args = opaque(fh) + p32(0) * 5 + p32(2) + p32(msec) + p32(mnsec) + p32(0)
st, _ = nfs_status(c, 2, args)
assert st == 0, ("setattr", st)
st, fa2 = getattr_(c, fh)
assert (u32(fa2, 68), u32(fa2, 72)) == (msec, mnsec) and fa2[20:28] == fa[20:28]
PY
python3 - "$T/gens/gen03.img" <<'PY'
import sys
b = bytearray(open(sys.argv[1], "rb").read())
b[1000:1008] = b"CHANGED!"
open(sys.argv[1] + ".changed", "wb").write(b)
PY
r_synced 30 || bad "in-place change: no lag 0"
cb get /backup/host1/gen03.img - 2>/dev/null | cmp -s - "$T/gens/gen03.img.changed" &&
	ok "B: a change in place with size and mtime put back crossed (ctime)" ||
	bad "B: gen03.img lacks the change made in place with its mtime put back"

# An UNSTABLE NFS write: its WRITE sets the mtime, but the bytes reach the store only
# at the COMMIT, after a cycle has sent the file (with that mtime and the old bytes);
# applying the stage moves the ctime, so the next cycle sends the change.
nfs_gen04() { # WRITE|COMMIT
	PYTHONPATH="${top_srcdir:-.}/tests" python3 - "$((PA + 2))" "$((PA + 3))" "$1" <<'PY'
import sys
from nfsrpc import *
m = Conn(int(sys.argv[2]), privileged=True)
st, fh = mnt(m, "/")
assert st == 0, st
c = Conn(int(sys.argv[1]), privileged=True)
for name in ("backup", "host1", "gen04.img"):
    st, fh = lookup(c, fh, name)
    assert st == 0, (name, st)
if sys.argv[3] == "WRITE":
    st, n, how, _ = write(c, fh, 2000, b"STAGED!!", 0)
    assert st == 0 and n == 8 and how == 0, (st, n, how)
else:
    st, _ = commit(c, fh)
    assert st == 0, st
PY
}
nfs_gen04 WRITE || bad "NFS UNSTABLE WRITE on A"
r_synced 30 || bad "after the UNSTABLE WRITE: no lag 0"
nfs_gen04 COMMIT || bad "NFS COMMIT on A"
python3 - "$T/gens/gen04.img" <<'PY'
import sys
b = bytearray(open(sys.argv[1], "rb").read())
b[2000:2008] = b"STAGED!!"
open(sys.argv[1] + ".changed", "wb").write(b)
PY
r_synced 30 || bad "after the COMMIT: no lag 0"
cb get /backup/host1/gen04.img - 2>/dev/null | cmp -s - "$T/gens/gen04.img.changed" &&
	ok "B: an UNSTABLE write committed after a cycle sent its file crossed (ctime)" ||
	bad "B: gen04.img lacks the UNSTABLE write committed after a cycle"

# A delete waits for B's delete_delay.
ca rm /backup/host1/gen02.img >/dev/null || bad "rm on A"
t0=$(date +%s)
r_synced 30 || bad "delete: no lag 0"
cb stat /backup/host1/gen02.img >/dev/null 2>&1 && ok "B: deleted file still there right after" ||
	bad "B: the delete was applied at once"
[ "$(rj b "d['received']['deletes_pending']")" = 1 ] && ok "B: one delete waiting" ||
	bad "B: deletes pending: $(rj b "d['received']['deletes_pending']")"
gone=""
for _ in $(seq 1 $(((DELAY + 10) * 10))); do
	cb stat /backup/host1/gen02.img >/dev/null 2>&1 || { gone=$(($(date +%s) - t0)); break; }
	sleep 0.1
done
if [ -n "$gone" ] && [ "$gone" -ge $((DELAY - 1)) ]; then ok "B: the delete arrived after ${gone} s (delay ${DELAY} s)"
else bad "B: delete arrived after '${gone}' s (delay ${DELAY} s)"; fi
for f in first.img gen03.img gen04.img gen05.img; do
	cb stat "/backup/host1/$f" >/dev/null 2>&1 || bad "B: $f lost with the delete"
done

check "B: verify --wait is clean" 0 cb verify --wait
check "B: repl status (human)" 0 cb repl status
check "A stops cleanly" 0 r_stop a
check "B stops cleanly" 0 r_stop b
r_finish
