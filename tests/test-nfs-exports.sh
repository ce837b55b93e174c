#!/bin/sh
# tests/test-nfs-exports.sh: export rules and hostile RPC, with a raw client
# (tests/nfsrpc.py): a network not in the list is refused at MNT; a secure export
# refuses an unprivileged source port; a read-only export answers NFS3ERR_ROFS;
# root_squash maps uid 0 to anonuid; forged and stale handles get BADHANDLE / STALE;
# AUTH_NONE is refused where the export does not allow it; a REMOVE sent twice with
# one xid is answered twice the same (duplicate request cache); SIGHUP adds an
# export; malformed RPC (wrong version, unknown program/procedure, garbage
# arguments, bad credential, truncated record, huge record length) gets an RPC error
# or a closed connection, and the daemon keeps serving.
. "${top_srcdir:-.}/tests/daemon-lib.sh"
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (privileged source ports for secure exports)"; exit 77; }

d_start || exit 1
NFSP=$((PORT + 2))
ctl mkdir /ro >/dev/null && ctl mkdir /other >/dev/null && ctl mkdir /sec >/dev/null || {
	echo "FAIL - mkdir through bkstorctl"; exit 1; }
d_stop || bad "clean stop"
# small stages, so unstable writes go over the bounds
sed -i '/^\[nfs\]/a stage_per_file = 1M\nstage_total = 2M' "$DEMO/bkstord.conf"
cat >>"$DEMO/bkstord.conf" <<EOF

[export ro]
path = /ro
access = ro
clients = 127.0.0.1/32
squash = no_root_squash
secure = no
auth_none = yes

[export other]
path = /other
access = rw
clients = 10.1.2.0/24, 192.168.7.7
secure = no

[export sec]
path = /sec
access = rw
clients = 127.0.0.0/8
EOF
d_start || exit 1

PYTHONPATH="${top_srcdir:-.}/tests" python3 - "$NFSP" "$((PORT + 3))" "$DEMO/bkstord.conf" "$DPID" <<'PYEOF'
import os, signal, socket, struct, sys, time
from nfsrpc import *

nfsp, mntp, conf, dpid = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
fails = 0
def check(cond, what):
    global fails
    print(("ok   - " if cond else "FAIL - ") + what)
    if not cond:
        fails += 1

# the portmapper's calls (every port answers every program; the demo has no
# portmapper port of its own)
c = Conn(nfsp)
def getport(prog, vers, prot):
    st, res = c.call(PMAP, 2, 3, p32(prog) + p32(vers) + p32(prot) + p32(0))
    return u32(res) if st == 0 else -1
check(getport(NFS, 3, 6) == nfsp and getport(MOUNT, 3, 6) == mntp,
      "PMAP GETPORT: NFS v3 and MOUNT v3 over TCP")
check(getport(NFS, 3, 17) == 0 and getport(NFS, 2, 6) == 0, "PMAP GETPORT: no UDP, no NFSv2")
st, res = c.call(PMAP, 2, 4)
check(st == 0 and res[:4] == p32(1) and len(res) == 2 * 20 + 4, "PMAP DUMP: two mappings")
c.close()

c = Conn(mntp, privileged=True)
st, res = c.call(MOUNT, 3, 5)
check(st == 0 and b"/other" in res and b"10.1.2.0/24" in res and b"192.168.7.7/32" in res,
      "MOUNT EXPORT lists the exports with their networks")
st, _ = mnt(c, "/other")
check(st == 13, "MNT of an export whose clients list lacks 127.0.0.1: MNT3ERR_ACCES (%d)" % st)
st, _ = mnt(c, "/nonexistent/dir")
check(st == 2, "MNT of a missing directory: MNT3ERR_NOENT (%d)" % st)
st, rootfh = mnt(c, "/")
check(st == 0 and len(rootfh) == 40, "MNT / (the demo's export): a 40-byte handle")
st, rofh = mnt(c, "/ro")
check(st == 0, "MNT /ro")
st, res = c.call(MOUNT, 3, 2)
check(st == 0 and b"/ro" in res and b"127.0.0.1" in res, "MOUNT DUMP lists 127.0.0.1 /ro")
c.call(MOUNT, 3, 3, opaque(b"/ro"))
st, res = c.call(MOUNT, 3, 2)
check(st == 0 and b"/ro" not in res, "after UMNT /ro, DUMP no longer lists it")
c.close()

u = Conn(mntp, privileged=False)
st, _ = mnt(u, "/sec")
check(st == 13, "MNT of a secure export from port >= 1024: MNT3ERR_ACCES (%d)" % st)
u.close()
p = Conn(mntp, privileged=True)
st, secfh = mnt(p, "/sec")
check(st == 0, "MNT of the secure export from a privileged port")
p.close()

n = Conn(nfsp, privileged=True)
st, fh, attr = create(n, rofh, "x")
check(st == 30, "CREATE in a read-only export: NFS3ERR_ROFS (%d)" % st)
check(mkdir(n, rofh, "d") == 30, "MKDIR in a read-only export: NFS3ERR_ROFS")
st, _ = getattr_(n, rofh)
check(st == 0, "GETATTR in a read-only export works")

# root_squash (the sec export's default): uid 0 becomes 65534
st, up = lookup(n, secfh, "..")
check(st == 0 and up == secfh, "LOOKUP .. at the export's root stays there")
st, fh, attr = create(n, secfh, "squashed", cred=auth_sys(0, 0))
check(st == 13, "root_squash: uid 0 may not create in root's 0755 directory (%d)" % st)
st, secroot = lookup(n, rootfh, "sec")
st2, _ = nfs_status(n, 2, opaque(secroot) + sattr(0o777) + p32(0))
check(st == 0 and st2 == 0, "chmod 0777 /sec through the no_root_squash export")
st, fh, attr = create(n, secfh, "squashed", cred=auth_sys(0, 0))
check(st == 0 and attr is not None and u32(attr, 12) == 65534,
      "root_squash: a file created by uid 0 belongs to 65534 (%s)" %
      (u32(attr, 12) if attr else st))
st, fh2, attr = create(n, rootfh, "notsquashed", cred=auth_sys(0, 0))
check(st == 0 and u32(attr, 12) == 0, "no_root_squash: uid 0 stays 0")

# handles: forged, garbage, stale
bad = bytearray(rootfh); bad[-1] ^= 1
st, _ = getattr_(n, bytes(bad))
check(st == 10001, "GETATTR with a forged MAC: NFS3ERR_BADHANDLE (%d)" % st)
st, _ = getattr_(n, b"\x01" * 40)
check(st == 10001, "GETATTR with 40 garbage bytes: NFS3ERR_BADHANDLE (%d)" % st)
st, gone, _ = create(n, rootfh, "gone")
check(st == 0 and getattr_(n, gone)[0] == 0, "CREATE /gone, GETATTR ok")
check(remove(n, rootfh, "gone") == 0, "REMOVE /gone")
st, _ = getattr_(n, gone)
check(st == 70, "GETATTR of the removed file's handle: NFS3ERR_STALE (%d)" % st)

# duplicate request cache: the same REMOVE twice (one xid) gets the same answer
create(n, rootfh, "dup")
r1 = remove(n, rootfh, "dup", xid=0x77777)
r2 = remove(n, rootfh, "dup", xid=0x77777)
r3 = remove(n, rootfh, "dup", xid=0x77778)
check(r1 == 0 and r2 == 0 and r3 == 2,
      "REMOVE re-sent with its xid answered from the cache (%d %d), a new xid NOENT (%d)" %
      (r1, r2, r3))

# AUTH_NONE where the export wants AUTH_SYS
res = n.call(NFS, 3, 1, opaque(rootfh), cred=p32(AUTH_NONE) + p32(0))
check(res[0] == "denied" and res[1] == 1 and res[2] == 5,
      "AUTH_NONE call: MSG_DENIED AUTH_ERROR AUTH_TOOWEAK (%s)" % (res,))

# a directory renamed out of its export: its handle (from that export) is STALE
st, rodir = lookup(n, rootfh, "ro")
mkdir(n, rodir, "sub", 0o755)
c = Conn(mntp, privileged=True)
st, subfh = mnt(c, "/ro/sub")
c.close()
check(st == 0 and getattr_(n, subfh)[0] == 0, "MNT /ro/sub (below the ro export)")
check(rename(n, rodir, "sub", rootfh, "moved") == 0, "rename /ro/sub -> /moved")
st, _ = getattr_(n, subfh)
check(st == 70, "the moved directory's handle of the ro export: NFS3ERR_STALE (%d)" % st)

# WRITE: FILE_SYNC and UNSTABLE, COMMIT, the write verifier
st, wfh, _ = create(n, rootfh, "w")
st1, cnt1, com1, v1 = write(n, wfh, 0, b"hello ", 2)
st2, cnt2, com2, v2 = write(n, wfh, 6, b"world", 0)
st3, v3 = commit(n, wfh)
st4, data = read(n, wfh, 0, 100)
check(st1 == 0 and cnt1 == 6 and com1 == 2, "WRITE FILE_SYNC: committed FILE_SYNC")
check(st2 == 0 and cnt2 == 5 and com2 == 0, "WRITE UNSTABLE: committed UNSTABLE")
check(st3 == 0 and v1 == v2 == v3 and len(v1) == 8, "one write verifier for WRITEs and COMMIT")
check(st4 == 0 and data == b"hello world", "READ after WRITE and COMMIT: %r" % (data,))
# unstable writes over stage_per_file (1 MiB) and stage_total (2 MiB): applied
# early, never dropped; two files interleaved, blocks in reverse order
blk = [bytes([(i * 7 + k) & 0xff for k in range(65536)]) for i in range(48)]
_, fa, _ = create(n, rootfh, "stageA")
_, fb, _ = create(n, rootfh, "stageB")
okw = True
for i in reversed(range(48)):
    okw &= write(n, fa, i * 65536, blk[i], 0)[0] == 0
    okw &= write(n, fb, i * 65536, blk[47 - i], 0)[0] == 0
ga = b"".join(read(n, fa, off, 1 << 20)[1] for off in range(0, 3 << 20, 1 << 20))
gb = b"".join(read(n, fb, off, 1 << 20)[1] for off in range(0, 3 << 20, 1 << 20))
check(okw and ga == b"".join(blk) and gb == b"".join(reversed(blk)),
      "3 MiB of unstable writes per file over 1 MiB / 2 MiB stage bounds read back whole")
with open(os.path.join(os.path.dirname(conf), "verf"), "w") as f:
    f.write(wfh.hex() + " " + v1.hex() + "\n")

st, res = n.call(NFS, 3, 1, opaque(rofh), cred=p32(AUTH_NONE) + p32(0))
check(st == 0 and u32(res) == 0, "AUTH_NONE call where the export allows it: GETATTR OK")

# RPC errors
res = n.call(NFS, 4, 0)
check(res[0] == 2, "NFS version 4: PROG_MISMATCH (%s)" % (res[0],))
res = n.call(123456, 1, 0)
check(res[0] == 1, "unknown program: PROG_UNAVAIL (%s)" % (res[0],))
res = n.call(NFS, 3, 99)
check(res[0] == 3, "NFS procedure 99: PROC_UNAVAIL (%s)" % (res[0],))
res = n.call(NFS, 3, 1, b"\0\0\0")
check(res[0] == 4, "GETATTR with 3 bytes of arguments: GARBAGE_ARGS (%s)" % (res[0],))
res = n.call(NFS, 3, 1, p32(2000) + b"x" * 8)
check(res[0] == 4, "a handle length of 2000: GARBAGE_ARGS (%s)" % (res[0],))
res = n.call(NFS, 3, 0, cred=p32(99) + opaque(b"zz"))
check(res[0] == "denied" and res[1] == 1, "unknown auth flavor: AUTH_ERROR (%s)" % (res,))
r = n.call_raw(NFS, 3, 0, rpcvers=3)
check(u32(r, 8) == 1 and u32(r, 12) == 0, "RPC version 3: MSG_DENIED RPC_MISMATCH")
st, _ = nfs_status(n, 11, opaque(rootfh) + opaque(b"dev") + p32(4) + sattr() + p32(1) + p32(2))
check(st == 10004, "MKNOD: NFS3ERR_NOTSUPP (%d)" % st)
n.close()

def closed_soon(sock):
    sock.settimeout(10)
    try:
        return sock.recv(100) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False

h = Conn(nfsp)
h.send_raw(p32(0x80000000 | 0x7fffffff))
check(closed_soon(h.s), "a record length of 2 GiB: the connection is closed")
h.close()
h = Conn(nfsp)
h.send_raw(p32(0x80000000 | (8 << 20)))
check(closed_soon(h.s), "a record of 8 MiB (over wsize + headers): closed")
h.close()
h = Conn(nfsp)
h.send_raw(p32(0x80000000 | 100) + b"\1" * 10)
h.close()
h = Conn(nfsp)
h.send_record(b"\0\0\0\1")  # too short for a call
check(closed_soon(h.s), "a 4-byte record: closed")
h.close()

# SIGHUP adds an export: /late mounted before goes through the "/" export, after
# through its own (another export id in the handle)
n = Conn(nfsp, privileged=True)
mkdir(n, rootfh, "late", 0o755)
c = Conn(mntp, privileged=True)
st, before = mnt(c, "/late")
with open(conf, "a") as f:
    f.write("\n[export late]\npath = /late\naccess = rw\nclients = 127.0.0.1\nsecure = no\n")
os.kill(dpid, signal.SIGHUP)
time.sleep(1.5)
st2, after = mnt(c, "/late")
check(st == 0 and st2 == 0 and before[8:12] != after[8:12] and before[16:32] == after[16:32],
      "SIGHUP: a new export serves /late (same object, another export id)")
c.close()
res = n.call(NFS, 3, 0)
check(res[0] == 0, "after all that, NULL is answered")
n.close()
print("%d failed" % fails)
sys.exit(1 if fails else 0)
PYEOF
[ $? = 0 ] && ok "raw RPC checks" || bad "raw RPC checks"
ctl status --json >"$T/st.json" 2>/dev/null
early=$(jget "$T/st.json" "d['nfs']['staged_applied_early']")
[ "${early:-0}" -ge 2 ] && ok "stages applied early: $early" || bad "staged_applied_early: $early"
kill -0 "$DPID" 2>/dev/null && ok "daemon alive" || bad "daemon died"
d_stop && ok "clean stop" || bad "clean stop"

# After a restart: the handle still works, the data is there, the verifier is new.
d_start || exit 1
PYTHONPATH="${top_srcdir:-.}/tests" python3 - "$NFSP" "$DEMO/verf" <<'PYEOF' && ok "after restart: the handle, the data, a new write verifier" || bad "after restart"
import sys
from nfsrpc import *
fh, v1 = (bytes.fromhex(x) for x in open(sys.argv[2]).read().split())
n = Conn(int(sys.argv[1]), privileged=True)
st, data = read(n, fh, 0, 100)
st2, v2 = commit(n, fh)
print("read", st, data, "verifier", v1.hex(), "->", v2.hex() if v2 else None)
sys.exit(0 if st == 0 and data == b"hello world" and st2 == 0 and v2 != v1 else 1)
PYEOF
d_stop && ok "clean stop" || bad "clean stop"
echo "$fails failed"
[ "$fails" = 0 ]
