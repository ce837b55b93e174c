#!/bin/sh
# tests/test-repl-failover.sh: failover and reseed (issue 12). A (vault-a) replicates
# to its twin B (vault-b). The twin refuses client writes (native and NFS) with a
# sentence that names its source and `repl promote`, and serves restores. A is
# killed (kill -9); B still serves every file byte-identical and refuses a put;
# `repl promote` makes B writable and drops the delete it was holding back (the file
# stays); B takes puts. The old A, started again, cannot replicate onto the promoted
# B. A new, empty A (new disks, new certificate and id) is reseeded from B: it gets
# every file (from before the outage and written on B during it) byte-identical,
# takes the old A's appliance id and name, becomes the source again with B its
# twin (B read-only again), and a put on it crosses to B. Both verify clean.
# The hand-back: an NFS client (libnfs) keeps writing to B (UNSTABLE, staged) while
# the reseed runs; B applies what it staged before it refuses writes, so every write
# B acknowledged is on the new A, the client's COMMIT succeeds, and the next write
# fails with EROFS. A file B deletes during the copy (after it crossed) is held back
# on the new A; when the new A becomes the source that delete is dropped, not kept
# pending forever, and listed in repl.deletes-dropped (as promote does). The new A's
# first cursor is what the reseed delivered: its first cycle sends no chunk and only
# that file (back to B, which deleted it), and B links nothing else again; a file
# changed after that still crosses.
. "${top_srcdir:-.}/tests/repl-lib.sh"
MB=${REPL_BASE_MB:-8}

nfs_create() { # NFS_PORT MOUNT_PORT NAME: prints the NFS status of CREATE /NAME
	PYTHONPATH="${top_srcdir:-.}/tests" python3 - "$1" "$2" "$3" <<'PY'
import sys
from nfsrpc import *
m = Conn(int(sys.argv[2]), privileged=True)
st, root = mnt(m, "/")
assert st == 0, st
c = Conn(int(sys.argv[1]), privileged=True)
st, fh, _ = create(c, root, sys.argv[3])
print(st)
PY
}
nfs_write() { # NFS_PORT MOUNT_PORT DIR NAME: the NFS status of an UNSTABLE WRITE to /DIR/NAME
	PYTHONPATH="${top_srcdir:-.}/tests" python3 - "$1" "$2" "$3" "$4" <<'PY'
import sys
from nfsrpc import *
m = Conn(int(sys.argv[2]), privileged=True)
st, root = mnt(m, "/")
assert st == 0, st
c = Conn(int(sys.argv[1]), privileged=True)
st, d = lookup(c, root, sys.argv[3])[:2]
assert st == 0, st
st, fh = lookup(c, d, sys.argv[4])[:2]
assert st == 0, st
print(write(c, fh, 0, b"late", 0)[0])
PY
}

r_vaults "$MB"
r_synced 60 && ok "A: 3 generations on B" || bad "A: no lag 0: $(rj a "d['state'], d['last_error']")"
# A delete B holds back (delay 168 h): at promotion it is dropped, the file stays.
ca rm /backup/host1/gen01.img >/dev/null || bad "rm on A"
r_synced 30 || bad "delete: no lag 0"
[ "$(rj b "d['received']['deletes_pending']")" = 1 ] && ok "B holds one delete back" ||
	bad "B: deletes pending $(rj b "d['received']['deletes_pending']")"
idA=$(rj a "d['appliance_id']")
[ "$(rj a "d['name']")" = vault-a ] && ok "A is named vault-a" || bad "A's name: $(rj a "d['name']")"
[ "$(rj b "d['peer_name']")" = vault-a ] && ok "B knows its source as vault-a (IDENT)" ||
	bad "B's peer_name: $(rj b "d['peer_name']")"

# The twin: read-only to clients, restores work.
[ "$(rj b "d['role'], d['writable']")" = "('twin', False)" ] && ok "B: twin, not writable" ||
	bad "B: $(rj b "d['role'], d['writable']")"
if cb put "$T/gens/gen04.img" /backup/early.img >"$T/out" 2>&1; then bad "B took a put as twin"
elif grep -q "twin of vault-a" "$T/out" && grep -q "repl promote" "$T/out"; then
	ok "B refuses a put: $(head -c 160 "$T/out")"
else bad "B's refusal does not say why: $(cat "$T/out")"; fi
cb mkdir /early >"$T/out" 2>&1 && bad "B took a mkdir as twin" ||
	ok "B refuses a mkdir ($(grep -c "repl promote" "$T/out") clear message)"
st=$(nfs_create $((PB + 2)) $((PB + 3)) early.txt)
[ "$st" = 30 ] && ok "B refuses an NFS CREATE: NFS3ERR_ROFS" || bad "B: NFS CREATE gave '$st', not 30"
st=$(nfs_create $((PA + 2)) $((PA + 3)) nfs-ok.txt)
[ "$st" = 0 ] && ok "A takes an NFS CREATE (the source is writable)" || bad "A: NFS CREATE gave '$st'"

# A dies.
r_kill9 a
for g in 2 3; do
	same b "/backup/host1/gen0$g.img" "$T/gens/gen0$g.img" && ok "B restores gen0$g byte-identical" ||
		bad "B: gen0$g differs or is missing"
done
if cb put "$T/gens/gen04.img" /backup/host1/gen04.img >"$T/out" 2>&1; then bad "B took a put before promote"
else grep -q "repl promote" "$T/out" && ok "B refuses a put before promote" || bad "B: $(cat "$T/out")"; fi
cb repl promote >/dev/null 2>&1 </dev/null && bad "promote without --yes and no terminal went on" ||
	ok "promote without --yes (no terminal) asks, changes nothing"
[ "$(rj b "d['role']")" = twin ] || bad "B is no longer a twin after an unconfirmed promote"
check "B: repl promote --yes" 0 cb repl promote --yes
[ "$(rj b "d['role'], d['writable']")" = "('promoted', True)" ] && ok "B: promoted, writable" ||
	bad "B: $(rj b "d['role'], d['writable']")"
[ "$(rj b "d['received']['deletes_pending']")" = 0 ] && ok "B: the held-back delete is dropped" ||
	bad "B: deletes pending $(rj b "d['received']['deletes_pending']")"
grep -q " /backup/host1/gen01.img$" "$T/b/repl.deletes-dropped" 2>/dev/null &&
	ok "B lists the dropped delete in repl.deletes-dropped" || bad "B: no repl.deletes-dropped list"
same b /backup/host1/gen01.img "$T/gens/gen01.img" && ok "B: gen01 (deleted on A) stays" ||
	bad "B: gen01 is gone"
check "B: repl promote again is refused" 1 cb repl promote --yes
ca_b_put() { cb put "$T/gens/gen0$1.img" "$2" -p >/dev/null; }
check "B takes a put (outage write 1)" 0 ca_b_put 4 /backup/host1/gen04.img
check "B takes a put in a new directory (outage write 2)" 0 ca_b_put 5 /outage/gen05.img
check "B takes a mkdir" 0 cb mkdir /outage/empty
check "B commits" 0 cb commit

# The old A comes back (a partition, not a death): B refuses it, keeps its files.
check "old A starts again" 0 r_start a
ca put "$T/gens/gen02.img" /late.img >/dev/null 2>&1 || bad "put on the old A"
ca commit >/dev/null
for _ in $(seq 1 50); do
	case "$(rj a "d['last_error']")" in *promoted*) break ;; esac
	sleep 0.2
done
err=$(rj a "d['last_error']")
case "$err" in *promoted*) ok "old A is refused by the promoted B: ${err%%;*}" ;;
*) bad "old A's last error: '$err'" ;; esac
cb stat /late.img >/dev/null 2>&1 && bad "B took the old A's file" ||
	ok "B: nothing of the old A's arrives"
r_kill9 a

# A new, empty A at the old one's address: new disks, new certificate and id.
mv "$T/a" "$T/a-dead"
r_make a "$PA" "$RA" 168h || exit 1
echo new-box >"$T/a/appliance.name"
r_start a || exit 1
[ "$(rj a "d['appliance_id']")" != "$idA" ] && ok "new A has a new id" || bad "new A has the old id already"
ca --json repl token >"$T/tok.json" || bad "token on new A"
tok=$(jget "$T/tok.json" "d['token']")
fpa=$(jget "$T/tok.json" "d['fingerprint']")
# A reseed onto an appliance that holds files is refused without --force.
check "B takes a put (outage write 3)" 0 ca_b_put 1 /outage/gen01.img
ca put "$T/gens/gen01.img" /stray.img >/dev/null || bad "put on new A"
if cb repl reseed "127.0.0.1:$RA" --token "$tok" --yes "$fpa" >"$T/out" 2>&1; then
	bad "reseed onto a non-empty appliance went on"
else grep -q "holds files" "$T/out" && ok "reseed onto a non-empty appliance refused" ||
	bad "reseed refusal: $(cat "$T/out")"; fi
ca rm /stray.img >/dev/null || bad "rm on new A"
ca commit >/dev/null
ca --json repl token >"$T/tok.json" || bad "token on new A"
tok=$(jget "$T/tok.json" "d['token']")
# A client writing on B through NFS while the reseed runs (libnfs: UNSTABLE writes).
client="${top_builddir:-.}/tests/nfsclient"
TRICKLE=""
if [ -x "$client" ]; then
	"$client" "nfs://127.0.0.1/?version=3&nfsport=$((PB + 2))&mountport=$((PB + 3))" \
		trickle /outage/trickle.bin "$T/trickle.img" >"$T/trickle.out" 2>&1 &
	TRICKLE=$!
	for _ in $(seq 1 100); do grep -q "first write" "$T/trickle.out" && break; sleep 0.1; done
	grep -q "first write" "$T/trickle.out" || bad "the NFS client did not start: $(cat "$T/trickle.out")"
	sleep 0.5
else
	echo "# tests/nfsclient not built (libnfs-dev missing): no NFS writer during the reseed"
fi
rxb=$(rj b "d['received']['files']") # what B received as the old A's twin
# A small file at the top (the walk is breadth first: it crosses among the first),
# deleted on B once the new A has it, while the copy goes on: slowed down for that
# (6 MB that do not compress, at 1 MB/s).
head -c 50000 /dev/urandom >"$T/victim"
cb put "$T/victim" /victim.img -p >/dev/null || bad "put /victim.img on B"
head -c $((6 << 20)) /dev/urandom >"$T/big"
cb put "$T/big" /outage/big.img -p >/dev/null || bad "put /outage/big.img on B"
check "B: bwlimit 1M for the copy" 0 cb repl set bwlimit 1M
t0=$(date +%s)
check "B: repl reseed the new A" 0 cb repl reseed "127.0.0.1:$RA" --token "$tok" --yes "$fpa"
for _ in $(seq 1 100); do ca stat /victim.img >/dev/null 2>&1 && break; sleep 0.1; done
if cb rm /victim.img >/dev/null 2>&1; then
	ok "B deletes /victim.img during the copy (reseed: $(rj b "d['reseed']['phase']"))"
else bad "B: rm /victim.img during the copy failed: $(rj b "d['role'], d.get('reseed')")"; fi
check "B: bwlimit back to none" 0 cb repl set bwlimit 0
wait_role a source 90 && wait_role b twin 10 &&
	ok "reseed done in $(($(date +%s) - t0)) s: new A is the source, B its twin" ||
	bad "reseed did not end: A $(rj a "d['role'], d.get('reseed'), d['last_error']"); B $(rj b "d['role'], d.get('reseed'), d['state'], d['last_error']")"
[ "$(rj a "d['appliance_id']")" = "$idA" ] && ok "new A took the old id $idA" ||
	bad "new A's id: $(rj a "d['appliance_id']") (old $idA)"
[ "$(rj a "d['name']")" = vault-a ] && ok "new A took the old name vault-a" ||
	bad "new A's name: $(rj a "d['name']")"
[ "$(cat "$T/a/appliance.id")" = "$idA" ] && [ "$(cat "$T/a/appliance.name")" = vault-a ] &&
	ok "new A's identity files say so (a restart keeps it)" || bad "new A's identity files"
[ "$(rj b "d['peer_id']")" = "$idA" ] && [ "$(rj b "d['peer_name']")" = vault-a ] &&
	ok "B pins the new A under the old id and name" || bad "B's peer: $(rj b "d['peer_id'], d['peer_name']")"
for f in backup/host1/gen01.img backup/host1/gen02.img backup/host1/gen03.img; do
	same a "/$f" "$T/gens/$(basename "$f")" && ok "new A: /$f byte-identical" || bad "new A: /$f"
done
same a /backup/host1/gen04.img "$T/gens/gen04.img" && ok "new A: gen04 written on B in the outage" ||
	bad "new A: /backup/host1/gen04.img"
same a /outage/gen05.img "$T/gens/gen05.img" && ok "new A: /outage/gen05.img written on B in the outage" ||
	bad "new A: /outage/gen05.img"
same a /outage/gen01.img "$T/gens/gen01.img" && ok "new A: /outage/gen01.img" || bad "new A: /outage/gen01.img"
ca stat /outage/empty >/dev/null 2>&1 && ok "new A: the empty directory" || bad "new A: /outage/empty"
ca stat /stray.img >/dev/null 2>&1 && bad "new A: /stray.img came back" || ok "new A: nothing stray"
# The delete B sent during the copy: dropped when the new A became the source.
for _ in $(seq 1 50); do [ "$(rj a "d['received']['deletes_pending']")" = 0 ] && break; sleep 0.2; done
[ "$(rj a "d['received']['deletes_pending']")" = 0 ] && ok "new A: no delete pending once it is the source" ||
	bad "new A: deletes pending $(rj a "d['received']['deletes_pending']") (they would stay forever)"
grep -q " /victim.img$" "$T/a/repl.deletes-dropped" 2>/dev/null &&
	grep -q "survivor sent during the copy" "$T/a/repl.deletes-dropped" &&
	ok "new A lists the dropped delete in repl.deletes-dropped" ||
	bad "new A: no repl.deletes-dropped list naming /victim.img"
grep -q "1 delete the reseed's survivor sent during the copy dropped" "$T/a.log" &&
	ok "new A logged the dropped delete" || bad "new A: no event about the dropped delete"
same a /victim.img "$T/victim" && ok "new A: /victim.img stays" || bad "new A: /victim.img is gone"
if [ -n "$TRICKLE" ]; then
	wait "$TRICKLE" && ok "NFS client: $(grep "^acknowledged" "$T/trickle.out"), then refused, COMMIT ok" ||
		bad "NFS client: $(grep -v "^ok" "$T/trickle.out" | tr '\n' ' ')"
	same a /outage/trickle.bin "$T/trickle.img" &&
		ok "new A: every NFS write B acknowledged before it handed over" ||
		bad "new A: /outage/trickle.bin lacks writes B acknowledged ($(ca stat /outage/trickle.bin 2>&1 | tr '\n' ' '))"
	same b /outage/trickle.bin "$T/trickle.img" && ok "B: the same bytes" ||
		bad "B: /outage/trickle.bin differs from what the client wrote"
	st=$(nfs_write $((PB + 2)) $((PB + 3)) outage trickle.bin)
	[ "$st" = 30 ] && ok "B refuses an NFS WRITE again: NFS3ERR_ROFS" || bad "B: NFS WRITE gave '$st', not 30"
fi

# The hand-back's cursor: what the reseed delivered is on B already.
wait_writable a 20 && ok "new A takes writes once its cursor is made" ||
	bad "new A is not writable: $(rj a "d['read_only_reason']")"
r_synced 60 && ok "new A's first cycle: lag 0" || bad "new A: no lag 0: $(rj a "d['state'], d['last_error']")"
sent=$(rj a "d['sent']['files'], d['sent']['chunks'], d['cycles']")
case "$sent" in
"(1, 0, "[1-9]*) ok "new A's first cycle sent no chunk and one file (/victim.img back to B) $sent (files, chunks, cycles)" ;;
*) bad "new A's first cycle sent (files, chunks, cycles) $sent: its cursor is not what the reseed delivered" ;;
esac
[ "$(rj b "d['received']['files']")" = $((rxb + 1)) ] && ok "B linked no file again but /victim.img ($rxb received from the old A)" ||
	bad "B received $(rj b "d['received']['files']") files, $rxb before the first cycle"
same b /victim.img "$T/victim" && ok "B: /victim.img is back (the delete was dropped)" ||
	bad "B: no /victim.img"

# The pair runs A -> B again.
cb put "$T/gens/gen02.img" /after.img >"$T/out" 2>&1 && bad "B took a put as twin again" ||
	{ grep -q "twin of vault-a" "$T/out" && ok "B is read-only again (twin of vault-a)" || bad "B: $(cat "$T/out")"; }
ca put "$T/gens/gen03.img" /backup/host1/after.img -p >/dev/null || bad "put on new A"
ca put "$T/gens/gen05.img" /backup/host1/gen02.img -f >/dev/null || bad "put over gen02 on new A"
r_synced 60 && ok "new A: lag 0 after a put" || bad "new A: no lag 0: $(rj a "d['state'], d['last_error']")"
same b /backup/host1/after.img "$T/gens/gen03.img" && ok "B: the new A's put crossed" ||
	bad "B: /backup/host1/after.img"
same b /backup/host1/gen02.img "$T/gens/gen05.img" && ok "B: a file changed on the new A crossed" ||
	bad "B: /backup/host1/gen02.img is not the new A's"
[ "$(rj a "d['sent']['files']")" = 3 ] && ok "new A sent exactly those 2 files (and /victim.img)" ||
	bad "new A sent $(rj a "d['sent']['files']") files (3 expected)"
check "new A: verify --wait is clean" 0 ca verify --wait
check "B: verify --wait is clean" 0 cb verify --wait
check "new A: repl status (human)" 0 ca repl status
check "new A stops cleanly" 0 r_stop a
check "B stops cleanly" 0 r_stop b
r_finish
