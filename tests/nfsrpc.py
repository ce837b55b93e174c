#!/usr/bin/env python3
"""tests/nfsrpc.py: a raw ONC RPC / NFSv3 / MOUNT client over TCP for
test-nfs-exports.sh: builds calls byte by byte, so it can also send what no real
client would (truncated records, huge lengths, bad credentials, forged handles).
Only loopback addresses are used by the tests."""
import socket
import struct

NFS, MOUNT, PMAP = 100003, 100005, 100000
AUTH_NONE, AUTH_SYS = 0, 1


def p32(v):
    return struct.pack(">I", v & 0xffffffff)


def p64(v):
    return struct.pack(">Q", v)


def opaque(b):
    pad = (4 - len(b) % 4) % 4
    return p32(len(b)) + b + b"\0" * pad


def auth_sys(uid=0, gid=0, machine=b"test", gids=()):
    body = p32(0) + opaque(machine) + p32(uid) + p32(gid) + p32(len(gids))
    for g in gids:
        body += p32(g)
    return p32(AUTH_SYS) + opaque(body)


class Conn:
    def __init__(self, port, privileged=False, host="127.0.0.1"):
        self.s = socket.socket()
        self.s.settimeout(20)
        if privileged:  # a source port < 1024 (we run as root in the tests)
            for p in range(1000, 600, -1):
                try:
                    self.s.bind((host, p))
                    break
                except OSError:
                    continue
        self.s.connect((host, port))
        self.xid = 0x1000

    def close(self):
        self.s.close()

    def send_raw(self, b):
        self.s.sendall(b)

    def send_record(self, body):
        self.s.sendall(p32(0x80000000 | len(body)) + body)

    def recv_exact(self, n):
        b = b""
        while len(b) < n:
            k = self.s.recv(n - len(b))
            if not k:
                raise ConnectionError("closed")
            b += k
        return b

    def recv_record(self):
        out = b""
        while True:
            h = struct.unpack(">I", self.recv_exact(4))[0]
            out += self.recv_exact(h & 0x7fffffff)
            if h & 0x80000000:
                return out

    def call_raw(self, prog, vers, proc, args=b"", cred=None, xid=None, rpcvers=2):
        if xid is None:
            self.xid += 1
            xid = self.xid
        cred = auth_sys() if cred is None else cred
        body = p32(xid) + p32(0) + p32(rpcvers) + p32(prog) + p32(vers) + p32(proc)
        body += cred + p32(AUTH_NONE) + p32(0) + args
        self.send_record(body)
        return self.recv_record()

    def call(self, prog, vers, proc, args=b"", cred=None, xid=None):
        """Returns (accept_stat, results) of an accepted reply, or
        ('denied', reject_stat, detail) for a denied one."""
        r = self.call_raw(prog, vers, proc, args, cred, xid)
        xid_, mtype, rstat = struct.unpack(">III", r[:12])
        if rstat == 1:
            rej, detail = struct.unpack(">II", r[12:20])
            return ("denied", rej, detail)
        vlen = struct.unpack(">I", r[16:20])[0]
        off = 20 + vlen + (4 - vlen % 4) % 4
        stat = struct.unpack(">I", r[off:off + 4])[0]
        return (stat, r[off + 4:])


def u32(b, off=0):
    return struct.unpack(">I", b[off:off + 4])[0]


def mnt(c, path, cred=None):
    """MNT: (status, fh or None)."""
    st, res = c.call(MOUNT, 3, 1, opaque(path.encode()), cred)
    assert st == 0, ("mount rpc", st)
    status = u32(res)
    if status != 0:
        return status, None
    n = u32(res, 4)
    return 0, res[8:8 + n]


def sattr(mode=None):
    if mode is None:
        return p32(0) * 6
    return p32(1) + p32(mode) + p32(0) * 5


def nfs_status(c, proc, args, cred=None, xid=None):
    st, res = c.call(NFS, 3, proc, args, cred, xid)
    assert st == 0, ("nfs rpc", st)
    return u32(res), res[4:]


def getattr_(c, fh, cred=None):
    return nfs_status(c, 1, opaque(fh), cred)


def create(c, dirfh, name, cred=None, xid=None):
    """CREATE UNCHECKED: (status, fh, fattr bytes)."""
    st, res = nfs_status(c, 8, opaque(dirfh) + opaque(name.encode()) + p32(0) + sattr(),
                         cred, xid)
    if st != 0:
        return st, None, None
    assert u32(res) == 1
    n = u32(res, 4)
    fh = res[8:8 + n]
    o = 8 + n
    assert u32(res, o) == 1
    return st, fh, res[o + 4:o + 4 + 84]


def mkdir(c, dirfh, name, mode=0o777, cred=None):
    st, res = nfs_status(c, 9, opaque(dirfh) + opaque(name.encode()) + sattr(mode), cred)
    return st


def remove(c, dirfh, name, cred=None, xid=None):
    return nfs_status(c, 12, opaque(dirfh) + opaque(name.encode()), cred, xid)[0]


def lookup(c, dirfh, name, cred=None):
    st, res = nfs_status(c, 3, opaque(dirfh) + opaque(name.encode()), cred)
    if st != 0:
        return st, None
    n = u32(res)
    return 0, res[4:4 + n]


def skip_post(res, o):
    """Past a post_op_attr at o."""
    return o + 4 + (84 if u32(res, o) else 0)


def skip_wcc(res, o):
    o = o + 4 + (24 if u32(res, o) else 0)
    return skip_post(res, o)


def write(c, fh, off, data, stable, cred=None):
    """WRITE: (status, count, committed, verifier)."""
    st, res = nfs_status(c, 7, opaque(fh) + p64(off) + p32(len(data)) + p32(stable) +
                         opaque(data), cred)
    if st != 0:
        return st, 0, 0, None
    o = skip_wcc(res, 0)
    return st, u32(res, o), u32(res, o + 4), res[o + 8:o + 16]


def commit(c, fh, cred=None):
    st, res = nfs_status(c, 21, opaque(fh) + p64(0) + p32(0), cred)
    if st != 0:
        return st, None
    o = skip_wcc(res, 0)
    return st, res[o:o + 8]


def read(c, fh, off, count, cred=None):
    st, res = nfs_status(c, 6, opaque(fh) + p64(off) + p32(count), cred)
    if st != 0:
        return st, None
    o = skip_post(res, 0)
    n = u32(res, o + 8)
    return st, res[o + 12:o + 12 + n]


def rename(c, fdir, fname, tdir, tname, cred=None):
    return nfs_status(c, 14, opaque(fdir) + opaque(fname.encode()) + opaque(tdir) +
                      opaque(tname.encode()), cred)[0]
