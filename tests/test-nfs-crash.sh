#!/bin/sh
# tests/test-nfs-crash.sh: kill -9 bkstord around NFS copies. A file nfs-cp finished
# (its COMMIT answered) survives a kill right after, before any periodic commit (the
# intent log holds it); CREATE, MKDIR and RENAME survive a kill right after their
# replies; a copy killed midway is sent again after the restart and reads back
# byte-identical; verify is clean at the end.
. "${top_srcdir:-.}/tests/daemon-lib.sh"

for t in nfs-cp nfs-cat; do
	command -v $t >/dev/null 2>&1 || { echo "SKIP: $t missing (libnfs-utils)"; exit 77; }
done
d_start || exit 1
Q="?version=3&nfsport=$((PORT + 2))&mountport=$((PORT + 3))"
URL="nfs://127.0.0.1/bk"
ctl mkdir /bk >/dev/null || bad "mkdir /bk"
head -c $((8 << 20)) /dev/urandom >"$T/a"
head -c $((64 << 20)) /dev/urandom >"$T/b"
# The demo commits every 5 s: copy and kill within that window.
d_stop || bad "clean stop"
sed -i 's/^commit_interval = .*/commit_interval = 1h/' "$DEMO/bkstord.conf"
d_start || exit 1
check "nfs-cp a (8 MiB)" 0 nfs-cp "$T/a" "$URL/a$Q"
d_kill9
d_start || exit 1
[ "$(nfs-cat "$URL/a$Q" | sha256sum)" = "$(sha256sum <"$T/a")" ] &&
	ok "a committed by nfs-cp survives kill -9 right after" || bad "a lost or damaged after kill -9"

# Namespace changes are durable before their replies (RFC 1813): CREATE, MKDIR and
# RENAME answered, then kill -9 at once (no periodic commit in between).
PYTHONPATH="${top_srcdir:-.}/tests" python3 - "$((PORT + 3))" "$((PORT + 2))" >"$T/ns.out" 2>&1 <<'PYEOF'
import sys
import nfsrpc as n
m = n.Conn(int(sys.argv[1]), privileged=True)
st, root = n.mnt(m, "/bk")
assert st == 0, st
c = n.Conn(int(sys.argv[2]), privileged=True)
st, fh, _ = n.create(c, root, "made")
assert st == 0, ("create", st)
assert n.mkdir(c, root, "dir") == 0
st, _, _ = n.create(c, root, "moved")
assert st == 0
assert n.rename(c, root, "moved", root, "renamed") == 0
print("answered")
PYEOF
grep -q answered "$T/ns.out" && ok "CREATE, MKDIR, RENAME answered" || { bad "namespace calls"; cat "$T/ns.out"; }
d_kill9
d_start || exit 1
check "a created file survives kill -9 right after its reply" 0 ctl stat /bk/made
check "so does a made directory" 0 ctl stat /bk/dir
check "and a rename" 0 ctl stat /bk/renamed
check "whose old name is gone" 1 ctl stat /bk/moved

mid=0
for round in 1 2 3; do
	nfs-cp "$T/b" "$URL/b$Q" >/dev/null 2>&1 &
	cp_pid=$!
	sleep "0.$((round * 1))"
	d_kill9
	# A copy the kill cut may wait for its server forever (libnfs reconnects).
	sleep 0.2
	if kill -0 "$cp_pid" 2>/dev/null; then
		kill -9 "$cp_pid"
		mid=$((mid + 1))
	elif ! wait "$cp_pid"; then
		mid=$((mid + 1))
	fi
	wait "$cp_pid" 2>/dev/null
	d_start || exit 1
	# nfs-cp creates exclusively: what the killed copy left goes first
	ctl rm /bk/b >/dev/null 2>&1
	check "round $round: nfs-cp b again after kill -9" 0 nfs-cp "$T/b" "$URL/b$Q"
	[ "$(nfs-cat "$URL/b$Q" | sha256sum)" = "$(sha256sum <"$T/b")" ] &&
		ok "round $round: b byte-identical" || bad "round $round: b differs"
	[ "$(nfs-cat "$URL/a$Q" | sha256sum)" = "$(sha256sum <"$T/a")" ] &&
		ok "round $round: a intact" || bad "round $round: a damaged"
done
[ "$mid" -ge 1 ] && ok "$mid of 3 copies were cut by the kill" || bad "no copy was cut midway"
check "verify is clean" 0 ctl verify --wait
d_stop && ok "clean stop" || bad "clean stop"
echo "$fails failed"
[ "$fails" = 0 ]
