#!/bin/sh
# tests/test-repl-reseed-twin.sh: the reseed of a lost twin (issue 12). A (vault-a)
# replicates to its twin B (vault-b); B dies (kill -9, its disks gone). A new, empty
# B (new disks, new certificate and id) is reseeded from A, the survivor, which stays
# the source and takes client writes throughout (a put during the copy arrives too);
# the new B refuses client writes from the start. At the end the new B has every file
# byte-identical, takes the lost B's appliance id and name and is A's twin again
# (read-only); A pins it under that id and name; replication A -> B goes on: a new
# file and a changed one cross and nothing else is sent again. Both verify clean.
. "${top_srcdir:-.}/tests/repl-lib.sh"
MB=${REPL_BASE_MB:-8}

r_vaults "$MB"
check "A: mkdir /backup/empty" 0 ca mkdir /backup/empty
r_synced 60 && ok "A: 3 generations on B" || bad "A: no lag 0: $(rj a "d['state'], d['last_error']")"
idB=$(rj b "d['appliance_id']")
[ "$(rj a "d['peer_id'], d['peer_name']")" = "('$idB', 'vault-b')" ] &&
	ok "A knows its twin as vault-b ($idB)" || bad "A's peer: $(rj a "d['peer_id'], d['peer_name']")"

# B dies with its disks; A goes on taking backups.
r_kill9 b
mv "$T/b" "$T/b-dead"
check "A takes a put while its twin is lost" 0 ca put "$T/gens/gen04.img" /backup/host1/gen04.img
ca commit >/dev/null
[ "$(rj a "d['role'], d['writable']")" = "('source', True)" ] && ok "A: still the source, writable" ||
	bad "A: $(rj a "d['role'], d['writable']")"

# A new, empty B at the old one's address: new disks, new certificate and id.
r_make b "$PB" "$RB" 168h || exit 1
echo new-box >"$T/b/appliance.name"
r_start b || exit 1
[ "$(rj b "d['appliance_id']")" != "$idB" ] && ok "new B has a new id" || bad "new B has the old id already"
cb --json repl token >"$T/tok.json" || bad "token on new B"
tok=$(jget "$T/tok.json" "d['token']")
fpb=$(jget "$T/tok.json" "d['fingerprint']")
cb repl reseed "127.0.0.1:$RA" --token x >"$T/out" 2>&1 &&
	bad "the new B (unpaired) reseeded another appliance" ||
	ok "only a survivor reseeds: $(head -c 100 "$T/out")"
t0=$(date +%s)
check "A: repl reseed the new B" 0 ca repl reseed "127.0.0.1:$RB" --token "$tok" --yes "$fpb"
# A takes writes during the copy (its clients never stop); the new B does not.
check "A takes a put during the reseed" 0 ca put "$T/gens/gen05.img" /during/gen05.img -p
if cb put "$T/gens/gen05.img" /early.img >"$T/out" 2>&1; then bad "the new B took a put while being reseeded"
# (a small copy may be over by the time the put comes: then B refuses as the twin)
elif grep -q "becomes its replication twin\|is the replication twin of vault-a" "$T/out"; then
	ok "the new B refuses a put while being reseeded: $(head -c 160 "$T/out")"
else bad "the new B's refusal does not say it is or becomes a twin: $(cat "$T/out")"; fi
ca commit >/dev/null
wait_role b twin 90 && wait_role a source 10 &&
	ok "reseed done in $(($(date +%s) - t0)) s: A is the source, the new B its twin" ||
	bad "reseed did not end: A $(rj a "d['role'], d.get('reseed'), d['state'], d['last_error']"); B $(rj b "d['role'], d.get('reseed'), d['last_error']")"
[ "$(rj b "d['appliance_id'], d['name']")" = "('$idB', 'vault-b')" ] &&
	ok "new B took the lost B's id and name ($idB, vault-b)" ||
	bad "new B is $(rj b "d['appliance_id'], d['name']") (the lost one $idB, vault-b)"
[ "$(cat "$T/b/appliance.id")" = "$idB" ] && [ "$(cat "$T/b/appliance.name")" = vault-b ] &&
	ok "new B's identity files say so (a restart keeps it)" || bad "new B's identity files"
[ "$(rj a "d['peer_id'], d['peer_name'], d['peer_fingerprint']")" = "('$idB', 'vault-b', '$fpb')" ] &&
	ok "A pins the new B's certificate under the lost B's id and name" ||
	bad "A's peer: $(rj a "d['peer_id'], d['peer_name'], d['peer_fingerprint']") (new B's certificate $fpb)"
[ "$(rj b "d['peer_name'], d['writable']")" = "('vault-a', False)" ] &&
	ok "new B: the twin of vault-a, not writable" || bad "new B: $(rj b "d['peer_name'], d['writable']")"
r_synced 60 && ok "A: lag 0 after the reseed" || bad "A: no lag 0: $(rj a "d['state'], d['last_error']")"
for g in 1 2 3 4; do
	same b "/backup/host1/gen0$g.img" "$T/gens/gen0$g.img" && ok "new B: gen0$g byte-identical" ||
		bad "new B: /backup/host1/gen0$g.img"
done
same b /during/gen05.img "$T/gens/gen05.img" && ok "new B: the put A took during the reseed" ||
	bad "new B: /during/gen05.img"
cb stat /backup/empty >/dev/null 2>&1 && ok "new B: the empty directory" || bad "new B: /backup/empty"
cb stat /early.img >/dev/null 2>&1 && bad "new B: /early.img exists" || ok "new B: nothing of a refused put"
if cb put "$T/gens/gen01.img" /after.img >"$T/out" 2>&1; then bad "new B took a put as twin"
else grep -q "twin of vault-a" "$T/out" && ok "new B refuses a put as twin of vault-a" || bad "new B: $(cat "$T/out")"; fi

# Replication goes on from the reseed's cursor: a new file and a changed one, nothing else.
files0=$(rj a "d['sent']['files']")
rx0=$(rj b "d['received']['files']")
ca put "$T/gens/gen05.img" /backup/host1/gen05.img >/dev/null || bad "put gen05 on A"
ca put "$T/gens/gen05.img" /backup/host1/gen01.img -f >/dev/null || bad "put over gen01 on A"
r_synced 60 && ok "A: lag 0 after two puts" || bad "A: no lag 0: $(rj a "d['state'], d['last_error']")"
same b /backup/host1/gen05.img "$T/gens/gen05.img" && ok "new B: a new file crossed" || bad "new B: gen05"
same b /backup/host1/gen01.img "$T/gens/gen05.img" && ok "new B: a changed file crossed" ||
	bad "new B: /backup/host1/gen01.img is not A's"
[ "$(($(rj a "d['sent']['files']") - files0)):$(($(rj b "d['received']['files']") - rx0))" = 2:2 ] &&
	ok "A sent 2 files and the new B linked 2: nothing else again" ||
	bad "A sent $(($(rj a "d['sent']['files']") - files0)) files, new B linked $(($(rj b "d['received']['files']") - rx0)) (2 each expected)"
check "A: verify --wait is clean" 0 ca verify --wait
check "new B: verify --wait is clean" 0 cb verify --wait
check "A stops cleanly" 0 r_stop a
check "new B stops cleanly" 0 r_stop b
r_finish
