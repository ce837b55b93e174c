#!/bin/sh
# tests/test-nfs-stat.sh: what NFS tells about space and about its clients, on small
# disks (8 x 20 MiB, 64 KiB strips) with a raw client (tests/nfsrpc.py):
#  - FSSTAT as the store sees it (docs/architecture.md "NFS"): after the same 3 MiB
#    stored four times (dedup), tbytes - fbytes (what df calls used) is the store's
#    logical bytes, not the rows it takes; fbytes the free rows' data bytes; abytes
#    those above the reserve; tfiles - ffiles the objects; once the store refuses new
#    data, abytes (and afiles) are 0 while fbytes is not;
#  - status: the client address with its connections, calls and bytes read/written,
#    the export's write/read rates over the last minute; bkstorctl status prints them.
. "${top_srcdir:-.}/tests/daemon-lib.sh"
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (privileged source ports for the export)"; exit 77; }

d_start || exit 1
d_stop || bad "first stop"
for f in "$DEMO"/disks/*.img; do rm -f "$f"; truncate -s 20M "$f"; done
sed -i 's/^strip_size = .*/strip_size = 64K/' "$DEMO/bkstord.conf"
sed -i '/^\[store\]/a gc_auto_free = 0' "$DEMO/bkstord.conf"
"$bkstord" --demo "$DEMO" >>"$T/daemon.log" 2>&1 &
DPID=$!
d_wait_api || { bad "daemon on small disks did not come up"; d_finish; }
ctl mkdir /s >/dev/null || bad "mkdir /s"

# FSSTAT of /s through a raw client (one MNT, one call).
fsstat() { # prints tbytes fbytes abytes tfiles ffiles afiles
	PYTHONPATH="${top_srcdir:-.}/tests" python3 - "$((PORT + 2))" "$((PORT + 3))" <<'PYEOF'
import struct, sys
from nfsrpc import *
nfsp, mntp = int(sys.argv[1]), int(sys.argv[2])
c = Conn(mntp, privileged=True)
st, fh = mnt(c, "/s")
assert st == 0, st
c.close()
c = Conn(nfsp, privileged=True)
st, res = nfs_status(c, 18, opaque(fh))
assert st == 0, st
o = skip_post(res, 0)
print(*struct.unpack(">QQQQQQ", res[o:o + 48]))
PYEOF
}

# --- clients and rates: WRITE 768 KiB and READ it back over one connection ---
PYTHONPATH="${top_srcdir:-.}/tests" python3 - "$((PORT + 2))" "$((PORT + 3))" \
	"${top_builddir:-.}/cli/bkstorctl" >"$T/py.out" 2>&1 <<'PYEOF'
import json, os, subprocess, sys, time
from nfsrpc import *
nfsp, mntp, ctl = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
fails = 0
def check(cond, what):
    global fails
    print(("ok   - " if cond else "FAIL - ") + what, flush=True)
    fails += not cond
c = Conn(mntp, privileged=True)
st, root = mnt(c, "/s")
c.close()
c = Conn(nfsp, privileged=True)
st, fh, _ = create(c, root, "rw")
blk = os.urandom(256 << 10)
for i in range(3):
    st, n, _, _ = write(c, fh, i * len(blk), blk, 2)
    check(st == 0 and n == len(blk), "WRITE %d of 256 KiB" % i)
got = b""
for i in range(3):
    st, b = read(c, fh, i * len(blk), len(blk))
    got += b or b""
check(got == blk * 3, "READ back 768 KiB identical")
# while the connection is open (the API caches status for 250 ms)
time.sleep(0.3)
d = json.loads(subprocess.run([ctl, "status", "--json"], capture_output=True).stdout)["nfs"]
cl = [k for k in d["clients"] if k["address"] == "127.0.0.1"]
check(len(cl) == 1, "status nfs.clients has 127.0.0.1")
k = cl[0] if cl else {}
check(k.get("connections", 0) >= 1, "with an open connection (%s)" % k.get("connections"))
check(k.get("calls", 0) >= 8, "and its calls (%s)" % k.get("calls"))
check(k.get("bytes_written") == 3 << 18 and k.get("bytes_read") == 3 << 18,
      "bytes written %s and read %s: 786432 each" % (k.get("bytes_written"), k.get("bytes_read")))
check(k.get("last_seen_ns", 0) >= k.get("first_seen_ns", 1) > 0, "first and last seen")
x = d["exports"][0]
check(abs(x["write_bps"] - (3 << 18) / 60) < 1 and abs(x["read_bps"] - (3 << 18) / 60) < 1,
      "export %s: write_bps %.0f and read_bps %.0f (768 KiB over the last minute)"
      % (x["name"], x["write_bps"], x["read_bps"]))
txt = subprocess.run([ctl, "status"], capture_output=True, text=True).stdout
check(any("127.0.0.1" in l and "calls" in l and "written" in l for l in txt.splitlines()),
      "bkstorctl status prints the client")
check(any("export" in l and "/s" in l for l in txt.splitlines()) or "root" in txt,
      "bkstorctl status prints the export")
print("\n".join("  | " + l for l in txt.splitlines() if "nfs" in l or "client" in l or "export" in l))
c.close()
sys.exit(1 if fails else 0)
PYEOF
rc=$?
cat "$T/py.out"
[ $rc = 0 ] && ok "clients and rates" || bad "clients and rates (exit $rc)"

# --- FSSTAT after dedup ---
head -c 3M /dev/urandom >"$T/d3"
for i in 1 2 3 4; do check "put copy $i of the same 3 MiB" 0 ctl put "$T/d3" "/s/dup$i"; done
sleep 0.5
set -- $(fsstat)
tb=$1 fb=$2 ab=$3 tf=$4 ff=$5 af=$6
echo "  FSSTAT tbytes $tb fbytes $fb abytes $ab tfiles $tf ffiles $ff afiles $af"
sleep 0.5
check "status --json" 0 ctl --json status
cp "$T/out" "$T/st.json"
logical=$(jget "$T/st.json" 'd["capacity"]["logical_bytes"]')
phys=$(jget "$T/st.json" 'd["capacity"]["physical_bytes"]')
echo "  status logical_bytes $logical physical_bytes $phys"
[ "$((tb - fb))" = "$logical" ] && [ "$logical" -ge $((12 << 20)) ] &&
	ok "FSSTAT used (tbytes - fbytes) $((tb - fb)) = the logical bytes (4 x 3 MiB and more)" ||
	bad "FSSTAT used $((tb - fb)), logical bytes $logical"
[ "$phys" -lt "$logical" ] && ok "(rows take $phys bytes: fewer, dedup)" || bad "no dedup? physical $phys"
[ "$fb" = "$(jget "$T/st.json" 'd["capacity"]["free_bytes"]')" ] &&
	ok "fbytes = the free rows' data bytes" || bad "fbytes $fb, status $(jget "$T/st.json" 'd["capacity"]')"
[ "$ab" = "$(jget "$T/st.json" 'd["capacity"]["available_bytes"]')" ] && [ "$ab" -lt "$fb" ] &&
	ok "abytes = the free rows above the reserve" || bad "abytes $ab"
[ "$((tf - ff))" = "$(jget "$T/st.json" 'd["capacity"]["objects"]')" ] && [ "$af" -le "$ff" ] &&
	[ "$af" -gt 0 ] && ok "tfiles - ffiles = the objects; afiles $af" || bad "files $tf $ff $af"

# --- FSSTAT of a full store ---
i=0
while [ $i -lt 100 ]; do
	i=$((i + 1))
	head -c 3M /dev/urandom >"$T/f"
	ctl put "$T/f" "/s/f$i" >"$T/out" 2>&1 || break
done
check "status --json when full" 0 ctl --json status
[ "$(jget "$T/out" 'd["capacity"]["full"]')" = True ] && ok "the store is full after $i puts" ||
	bad "not full after $i puts"
set -- $(fsstat)
echo "  FSSTAT tbytes $1 fbytes $2 abytes $3 tfiles $4 ffiles $5 afiles $6"
[ "$3" = 0 ] && [ "$6" = 0 ] && [ "$2" -gt 0 ] &&
	ok "full: abytes and afiles 0 (df shows nothing available), fbytes $2 (the reserve)" ||
	bad "full: abytes $3 afiles $6 fbytes $2"

kill -0 "$DPID" 2>/dev/null && ok "daemon still up" || bad "daemon died"
d_stop && ok "clean stop (exit 0)" || bad "stop exit code"
d_finish
