#!/bin/sh
# tests/test-nfs-abuse.sh: what a peer can make the NFS server hold before any
# procedure runs (the NFS side of test-daemon-netabuse), with max_connections = 32:
#  - 30 connections from addresses no export admits (127.0.0.2-9), each announcing a
#    1 MiB record, sending a WRITE call and 1 MB of its data and then holding: each is
#    closed after the call header, and bkstord's RSS grows by less than 8 MiB (a server
#    that buffers what was announced holds ~30 MiB); a 1 MiB MOUNT call from the
#    exported-to address is closed the same way;
#  - 100 connections from 127.0.0.1 that announce a 1 MiB record and drip a byte every
#    0.3 s (slowloris), three times max_connections: RSS grows by less than 8 MiB, a
#    normal client (GETATTR, WRITE, READ) is still served promptly, the connection
#    count stays at the cap, the oldest drippers are dropped (and logged);
#  - connections from 200 addresses (127.0.1.1-200) make the status's client table
#    no longer than 64 entries.
. "${top_srcdir:-.}/tests/daemon-lib.sh"
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (privileged source ports for the export)"; exit 77; }

d_start || exit 1
d_stop || bad "clean stop"
sed -i '/^\[nfs\]/a max_connections = 32' "$DEMO/bkstord.conf"
d_start || exit 1
ctl mkdir /abuse >/dev/null || bad "mkdir /abuse"

PYTHONPATH="${top_srcdir:-.}/tests" timeout 120 python3 - "$((PORT + 2))" "$((PORT + 3))" "$DPID" \
	"$BKSTOR_CLIENT" "${top_builddir:-.}/cli/bkstorctl" <<'PYEOF'
import json, os, socket, struct, subprocess, sys, threading, time
from nfsrpc import *

nfsp, mntp, dpid, client_conf, ctl = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), \
    sys.argv[4], sys.argv[5]
fails = 0
def check(cond, what):
    global fails
    print(("ok   - " if cond else "FAIL - ") + what, flush=True)
    if not cond:
        fails += 1

def rss_kib():
    for line in open("/proc/%d/status" % dpid):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0

def status():
    out = subprocess.run([ctl, "status", "--json"], capture_output=True, timeout=20,
                         env=dict(os.environ, BKSTOR_CLIENT=client_conf)).stdout
    return json.loads(out)["nfs"]

def closed_by_server(s, wait=3.0):
    s.settimeout(wait)
    try:
        while True:
            if not s.recv(65536):
                return True
    except ConnectionResetError:
        return True
    except (socket.timeout, OSError):
        return False

def write_call(fh, count, xid=0x7000):
    """The start of a WRITE record: header, call, arguments up to the data."""
    body = p32(xid) + p32(0) + p32(2) + p32(NFS) + p32(3) + p32(7) + auth_sys() + \
        p32(AUTH_NONE) + p32(0) + opaque(fh) + p64(0) + p32(count) + p32(0) + p32(count)
    return p32(0x80000000 | (len(body) + count)), body

# A handle to write to (the normal client, from a privileged port: the export is secure).
c = Conn(mntp, privileged=True)
st, root = mnt(c, "/abuse")
check(st == 0, "MNT /abuse")
c.close()
c = Conn(nfsp, privileged=True)
st, fh, _ = create(c, root, "target")
check(st == 0, "CREATE /abuse/target")

# --- 1: unknown peers announcing 1 MiB and sending 1 MB of it ---
time.sleep(0.5)
rss0 = rss_kib()
MB = 1 << 20
data = os.urandom(1000000)
socks, closed, t0 = [], 0, time.time()
def flood(i):
    s = socket.socket()
    s.bind(("127.0.0.%d" % (2 + i % 8), 0))
    s.settimeout(5)
    s.connect(("127.0.0.1", nfsp))
    hdr, body = write_call(fh, MB)
    try:
        s.sendall(hdr + body + data)
    except OSError:
        pass
    socks.append(s)
ths = [threading.Thread(target=flood, args=(i,)) for i in range(30)]
for t in ths: t.start()
for t in ths: t.join()
time.sleep(1.0)
grew = rss_kib() - rss0
for s in socks:
    closed += closed_by_server(s, 1.0)
check(closed == 30, "30 unknown peers announcing 1 MiB WRITEs were closed (%d were)" % closed)
check(grew < 8 << 10, "bkstord RSS grew %d KiB after 30 MB sent by unknown peers (under 8 MiB)"
      % grew)
for s in socks:
    s.close()

# A 1 MiB record that is not a WRITE, from the exported-to address, privileged port.
s = socket.socket()
for p in range(999, 600, -1):
    try:
        s.bind(("127.0.0.1", p)); break
    except OSError:
        continue
s.connect(("127.0.0.1", nfsp))
body = p32(0x7001) + p32(0) + p32(2) + p32(MOUNT) + p32(3) + p32(1) + auth_sys() + p32(0) + p32(0)
try:
    s.sendall(p32(0x80000000 | MB) + body + os.urandom(64 << 10))
except OSError:
    pass
check(closed_by_server(s), "a 1 MiB MOUNT record from 127.0.0.1 is closed too")
s.close()

# --- 2: slowloris from the exported-to address, 3x max_connections ---
rss1 = rss_kib()
stop = threading.Event()
drippers, refused = [], [0]
def drip():
    hdr, body = write_call(fh, MB)
    msg = hdr + body
    for i in range(100):
        if stop.is_set():
            break
        try:
            s = socket.create_connection(("127.0.0.1", nfsp), timeout=5)
            s.sendall(msg[:8])
            drippers.append([s, 8, msg])
        except OSError:
            refused[0] += 1
        time.sleep(0.02)
    while not stop.is_set():
        for d in drippers:
            s, at, m = d
            if at < len(m):
                try:
                    s.sendall(m[at:at + 1]); d[1] += 1
                except OSError:
                    pass
        time.sleep(0.3)
th = threading.Thread(target=drip)
th.start()
time.sleep(3.5)   # all 100 opened by now
grew = rss_kib() - rss1
check(grew < 8 << 10, "RSS grew %d KiB with 100 connections dripping (under 8 MiB)" % grew)
worst, ok_calls = 0.0, 0
for i in range(10):
    t0 = time.time()
    try:
        c2 = Conn(nfsp, privileged=True)
        c2.xid = 0x20000 + i * 16   # new xids: the duplicate request cache keys on them
        buf = os.urandom(100000)
        st1, _ = getattr_(c2, fh)
        st2, n, _, _ = write(c2, fh, i * 100000, buf, 2)
        st3, back = read(c2, fh, i * 100000, 100000)
        c2.close()
        good = st1 == 0 and st2 == 0 and n == 100000 and back == buf
        ok_calls += good
        if not good:
            d = next((k for k in range(min(len(back or b""), len(buf)))
                      if back[k] != buf[k]), None)
            print("  normal client: GETATTR %d, WRITE %d (%d), READ %d bytes, first "
                  "difference at %s" % (st1, st2, n, len(back or b""), d))
    except (OSError, ConnectionError, AssertionError) as e:
        print("  normal client: %r" % e)
    worst = max(worst, time.time() - t0)
    time.sleep(0.2)
check(ok_calls == 10, "a normal client (GETATTR, WRITE FILE_SYNC, READ back) served 10 times "
      "of 10 while 100 connections drip (%d)" % ok_calls)
check(worst < 3.0, "its slowest round took %.2f s (under 3 s)" % worst)
nst = status()
check(nst["connections"] <= 32, "connections at most max_connections: %d" % nst["connections"])
check(nst["connections_dropped"] >= 60, "the oldest drippers were dropped: %d"
      % nst["connections_dropped"])
stop.set()
th.join()
for d in drippers:
    d[0].close()

# --- 3: many addresses: the client table stays bounded ---
for i in range(200):
    try:
        s = socket.socket()
        s.bind(("127.0.1.%d" % (1 + i), 0))
        s.settimeout(5)
        s.connect(("127.0.0.1", nfsp))
        body = p32(0x7100 + i) + p32(0) + p32(2) + p32(NFS) + p32(3) + p32(0) + p32(0) + \
            p32(0) + p32(0) + p32(0)
        s.sendall(p32(0x80000000 | len(body)) + body)
        s.recv(100)
        s.close()
    except OSError as e:
        print("  address %d: %r" % (i, e))
time.sleep(0.5)
nst = status()
check(len(nst["clients"]) <= 64, "status lists %d client addresses after 200 (at most 64)"
      % len(nst["clients"]))
check(any(k["address"] == "127.0.1.200" for k in nst["clients"]),
      "the most recent address is among them")
c.close()
sys.exit(1 if fails else 0)
PYEOF
rc=$?
[ $rc = 0 ] && ok "nfs abuse scenarios" || bad "nfs abuse scenarios (exit $rc)"
grep -q "not a WRITE from an exported-to address: closed" "$T/daemon.log" &&
	ok "closes of big records are logged" || bad "no log of big records closed"
grep -q "dropped to let .* in (max_connections 32)" "$T/daemon.log" &&
	ok "drops for max_connections are logged" || bad "no log of drops"
kill -0 "$DPID" 2>/dev/null && ok "daemon still up" || bad "daemon died"
d_stop && ok "clean stop (exit 0)" || bad "stop exit code"
d_finish
