#!/bin/sh
# tests/test-nfs-rpcbind.sh: with portmap_port = 111 and a system rpcbind answering
# there, bkstord registers NFS v3 and MOUNT v3 over TCP with it at start (rpcinfo
# lists our ports, a stale registration of an earlier run is replaced, nfs-ls through
# the portmapper finds the server) and unsets them at a clean stop. Without rpcbind
# the embedded portmapper takes the port as before (checked only when port 111 is free
# and we may bind it). Uses the system's rpcbind when one runs (left running);
# otherwise starts one for the test and stops it at the end (leaving nothing behind).
# Skips (77) when rpcbind or rpcinfo is not installed.
. "${top_srcdir:-.}/tests/daemon-lib.sh"
RPCBIND=$(command -v rpcbind || ls /usr/sbin/rpcbind /sbin/rpcbind 2>/dev/null | head -1)
RPCINFO=$(command -v rpcinfo || ls /usr/sbin/rpcinfo /sbin/rpcinfo 2>/dev/null | head -1)
[ -n "$RPCBIND" ] && [ -n "$RPCINFO" ] || { echo "SKIP: rpcbind/rpcinfo not installed"; exit 77; }
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (port 111)"; exit 77; }

port111() { # is anything listening on 127.0.0.1:111?
	python3 -c 'import socket,sys; s=socket.socket(); s.settimeout(1); sys.exit(s.connect_ex(("127.0.0.1",111)) != 0)'
}
OURS=""
made_files=""
stop_ours() {
	[ -n "$OURS" ] || return 0
	kill "$OURS" 2>/dev/null; wait "$OURS" 2>/dev/null; OURS=""
	for f in $made_files; do rm -f "$f"; done
}
trap 'stop_ours; cleanup' EXIT

d_start || exit 1
d_stop || bad "clean stop"
NFSP=$((PORT + 2)) MNTP=$((PORT + 3))
sed -i 's/^portmap_port = .*/portmap_port = 111/' "$DEMO/bkstord.conf"

# --- without rpcbind: the embedded portmapper (only when 111 is free now) ---
if ! port111; then
	d_start || exit 1
	grep -q "portmapper port 111" "$T/daemon.log" && ok "no rpcbind: the embedded portmapper on 111" ||
		bad "no rpcbind: $(grep 'nfs: serving' "$T/daemon.log" | tail -1)"
	# (rpcinfo would try rpcbind's Unix socket first: a raw GETPORT over TCP)
	PYTHONPATH="${top_srcdir:-.}/tests" python3 - "$NFSP" <<'PYEOF' && ok "GETPORT on 111 gives NFS v3's port" || bad "GETPORT on 111"
import sys
from nfsrpc import *
c = Conn(111)
st, res = c.call(PMAP, 2, 3, p32(NFS) + p32(3) + p32(6) + p32(0))
sys.exit(0 if st == 0 and u32(res) == int(sys.argv[1]) else 1)
PYEOF
	d_stop || bad "clean stop"
	# our rpcbind: note what it makes in /run, to remove only that afterwards
	# (it writes its warm-start files at exit, with or without -w)
	for f in /run/rpcbind.sock /run/rpcbind.lock /run/rpcbind/rpcbind.xdr \
		/run/rpcbind/portmap.xdr /var/run/rpcbind.sock /var/run/rpcbind.lock; do
		[ -e "$f" ] || made_files="$made_files $f"
	done
	"$RPCBIND" -f >"$T/rpcbind.log" 2>&1 &
	OURS=$!
	for _ in $(seq 50); do port111 && break; sleep 0.1; done
	port111 && ok "started rpcbind for the test (pid $OURS)" ||
		{ bad "rpcbind did not start: $(cat "$T/rpcbind.log")"; d_finish; }
else
	"$RPCINFO" -p 127.0.0.1 >/dev/null 2>&1 || { echo "SKIP: port 111 is taken by something that is not rpcbind"; exit 77; }
	ok "a system rpcbind runs already (used, left running)"
fi

# a stale registration, as a killed daemon leaves (another port)
"$RPCINFO" -p 127.0.0.1 >"$T/before" 2>&1
python3 - <<'PYEOF'
import socket, struct
def p32(v): return struct.pack(">I", v)
body = p32(9) + p32(0) + p32(2) + p32(100000) + p32(2) + p32(1) + p32(0) * 4 + \
    p32(100005) + p32(3) + p32(6) + p32(4)
s = socket.socket(socket.AF_UNIX)
try:
    s.connect("/run/rpcbind.sock")
except OSError:
    s = socket.create_connection(("127.0.0.1", 111))
s.sendall(p32(0x80000000 | len(body)) + body)
s.recv(100)
PYEOF
"$RPCINFO" -p 127.0.0.1 | grep -q "100005 *3 *tcp *4 " && ok "a stale MOUNT v3 registration at port 4" ||
	bad "could not plant a stale registration"

d_start || exit 1
grep -q "registered NFS v3 (port $NFSP) and MOUNT v3 (port $MNTP) with rpcbind" "$T/daemon.log" &&
	ok "bkstord registered with rpcbind" || bad "no registration: $(grep 'nfs:' "$T/daemon.log" | tail -3)"
"$RPCINFO" -p 127.0.0.1 >"$T/rpcinfo" 2>&1
sed 's/^/  /' "$T/rpcinfo"
grep -q "100003 *3 *tcp *$NFSP" "$T/rpcinfo" && grep -q "100005 *3 *tcp *$MNTP" "$T/rpcinfo" &&
	ok "rpcinfo -p lists NFS v3 at $NFSP and MOUNT v3 at $MNTP" || bad "rpcinfo -p"
grep -q "100005 *3 *tcp *4 " "$T/rpcinfo" && bad "the stale registration is still there" ||
	ok "the stale registration was replaced"
check "rpcinfo -t: NFS v3 answers through rpcbind's address" 0 "$RPCINFO" -t 127.0.0.1 100003 3
check "status --json" 0 ctl --json status
[ "$(jget "$T/out" 'd["nfs"]["rpcbind"]')" != "" ] && [ "$(jget "$T/out" 'd["nfs"]["portmap_port"]')" = 0 ] &&
	ok "status: rpcbind $(jget "$T/out" 'd["nfs"]["rpcbind"]'), no portmapper of ours" ||
	bad "status nfs: $(jget "$T/out" 'd["nfs"]')"
if command -v nfs-ls >/dev/null 2>&1; then
	# libnfs asks the portmapper on 111 for both ports when the URL gives none
	check "nfs-ls through rpcbind (no ports in the URL)" 0 timeout 20 nfs-ls "nfs://127.0.0.1/?version=3"
fi
d_stop && ok "clean stop" || bad "clean stop"
"$RPCINFO" -p 127.0.0.1 >"$T/rpcinfo" 2>&1
grep -q "10000[35] *3 *tcp *\($NFSP\|$MNTP\)" "$T/rpcinfo" && bad "still registered after the stop" ||
	ok "unset at the stop"
grep -q "unset NFS v3 and MOUNT v3 with rpcbind" "$T/daemon.log" && ok "the unset is logged" ||
	bad "no log of the unset"

if [ -n "$OURS" ]; then
	stop_ours
	port111 && bad "port 111 still answers after stopping our rpcbind" ||
		ok "our rpcbind is stopped, port 111 free again"
fi
d_finish
