#!/usr/bin/env python3
"""tests/iscsir2t.py HOST PORT TARGET: R2Ts issued ahead (MaxOutstandingR2T > 1),
for test-iscsi-inflight.sh. libiscsi always offers MaxOutstandingR2T=1, so this is a
bare initiator on a socket: a login offering MaxOutstandingR2T=4 and 64 KiB bursts
with InitialR2T=Yes and no immediate data, a 512 KiB WRITE(10) (8 bursts), then it
counts the R2Ts that come before it sends any data (4: as many as negotiated), sends
each burst as its R2T asks, in order, and checks the GOOD status; then a READ(10)
of the same blocks must return the bytes written. Prints "r2t_ahead N" and exits 0
when all of that held."""
import socket
import struct
import sys

host, port, target = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.create_connection((host, port), timeout=10)


def recv_exact(n):
    b = b""
    while len(b) < n:
        x = s.recv(n - len(b))
        if not x:
            raise SystemExit("connection closed")
        b += x
    return b


def pdu(bhs, data=b""):
    pad = (-len(data)) % 4
    s.sendall(bhs + data + b"\0" * pad)


def read_pdu():
    h = recv_exact(48)
    ahs = h[4] * 4
    dl = int.from_bytes(h[5:8], "big")
    recv_exact(ahs)
    d = recv_exact(dl + (-dl) % 4)[:dl]
    return h, d


def bhs(op, flags, lun=0, itt=0, f20=0, f24=0, f28=0, f32=0, f36=0, f40=0, f44=0, dlen=0,
        b2=0, b3=0, tail=None):
    b = bytearray(48)
    b[0] = op
    b[1] = flags
    b[2], b[3] = b2, b3
    b[5:8] = dlen.to_bytes(3, "big")
    b[8:16] = lun.to_bytes(8, "big")
    struct.pack_into(">IIIIIIII", b, 16, itt, f20, f24, f28, f32, f36, f40, f44)
    if tail is not None:
        b[32:48] = tail
    return bytes(b)


keys = ("InitiatorName=iqn.2026-12.io.bkstor:r2t-test\0TargetName=%s\0SessionType=Normal\0"
        "HeaderDigest=None\0DataDigest=None\0MaxRecvDataSegmentLength=262144\0"
        "MaxBurstLength=65536\0FirstBurstLength=65536\0InitialR2T=Yes\0ImmediateData=No\0"
        "MaxOutstandingR2T=4\0" % target).encode()
# Login: operational stage straight to full feature phase (T, CSG 1, NSG 3), immediate.
b = bytearray(bhs(0x43, 0x80 | (1 << 2) | 3, itt=1, dlen=len(keys)))
b[8:14] = b"\x40\x00\x01\x23\x45\x67"  # ISID (random qualifier)
pdu(bytes(b), keys)
h, d = read_pdu()
if h[0] & 0x3f != 0x23 or h[36] != 0 or not (h[1] & 0x80) or (h[1] & 3) != 3:
    raise SystemExit("login refused: class %d detail %d" % (h[36], h[37]))
kv = dict(x.split("=", 1) for x in d.decode().split("\0") if "=" in x)
statsn = struct.unpack(">I", h[24:28])[0]
cmdsn = struct.unpack(">I", h[28:32])[0]
print("negotiated MaxOutstandingR2T=%s MaxBurstLength=%s" %
      (kv.get("MaxOutstandingR2T"), kv.get("MaxBurstLength")))

itt = 10


def command(cdb, flags, edtl):
    global itt, cmdsn
    itt += 1
    pdu(bhs(0x01, flags, itt=itt, f20=edtl, f24=cmdsn, f28=statsn + 1, tail=cdb.ljust(16, b"\0")))
    cmdsn += 1
    return itt


# The unit attention of a new nexus: TEST UNIT READY until GOOD.
for _ in range(3):
    command(b"\x00" * 6, 0x81, 0)
    h, d = read_pdu()
    if h[3] == 0:
        break

lba, nblk, bs = 131072, 1024, 512  # past what test-iscsi-inflight.sh checks
data = bytes((i * 7 + i // 512) & 0xff for i in range(nblk * bs))
t = command(b"\x2a\0" + lba.to_bytes(4, "big") + b"\0" + nblk.to_bytes(2, "big") + b"\0",
            0xa1, nblk * bs)
# R2Ts before any data is sent.
r2ts = []
s.settimeout(2)
try:
    while True:
        h, d = read_pdu()
        if h[0] & 0x3f != 0x31:
            raise SystemExit("expected R2Ts, got opcode 0x%02x" % h[0])
        r2ts.append(h)
except socket.timeout:
    pass
s.settimeout(10)
ahead = len(r2ts)
print("r2t_ahead %d" % ahead)
status = None
sent = 0
while status is None:
    if not r2ts:
        h, d = read_pdu()
        op = h[0] & 0x3f
        if op == 0x21:
            status = h[3]
            break
        if op != 0x31:
            raise SystemExit("unexpected opcode 0x%02x" % op)
        r2ts.append(h)
        continue
    h = r2ts.pop(0)
    ttt, off, ln = struct.unpack(">I", h[20:24])[0], *struct.unpack(">II", h[40:48])
    if off != sent:
        raise SystemExit("R2T for offset %d, expected %d" % (off, sent))
    pdu(bhs(0x05, 0x80, itt=t, f20=ttt, f28=statsn + 1, f36=0, f40=off, dlen=ln),
        data[off:off + ln])
    sent += ln
if status != 0 or sent != len(data):
    raise SystemExit("write: status %s after %d bytes" % (status, sent))
t = command(b"\x28\0" + lba.to_bytes(4, "big") + b"\0" + nblk.to_bytes(2, "big") + b"\0",
            0xc1, nblk * bs)
got = bytearray(len(data))
while True:
    h, d = read_pdu()
    if h[0] & 0x3f == 0x25:
        off = struct.unpack(">I", h[40:44])[0]
        got[off:off + len(d)] = d
        if h[1] & 0x01:  # S: the status came with the data
            if h[3] != 0:
                raise SystemExit("read status %d" % h[3])
            break
    elif h[0] & 0x3f == 0x21:
        raise SystemExit("read status %d" % h[3])
if bytes(got) != data:
    raise SystemExit("read back: the bytes differ")
print("write and read back: identical")
pdu(bhs(0x46, 0x80, itt=99, f24=cmdsn, f28=statsn + 1))  # Logout (close session)
read_pdu()
sys.exit(0 if ahead == 4 else 1)
