#!/usr/bin/env python3
"""tests/bkswire.py: a deliberately independent, minimal client of the native
protocol (docs/protocol.md) for the bad-input tests: it can log in, and it can send
what a real client never would.

usage: bkswire.py CLIENT_CONF SCENARIO
Scenarios print one line "ok <what>" or "FAIL <what>" each and exit 0 / 1."""
import hashlib, hmac, os, socket, struct, sys, threading, time

HDR = struct.Struct('<4sBBHII')
T_HELLO, T_AUTH, T_AUTH_OK, T_ERROR, T_PING, T_PONG = 1, 2, 3, 4, 5, 6
T_PUT, T_DATA, T_END = 0x10, 0x20, 0x21


def conf(path):
    c = {}
    for line in open(path):
        line = line.split('#', 1)[0].strip()
        if '=' in line:
            k, v = line.split('=', 1)
            c[k.strip()] = v.strip()
    host, port = c['server'].rsplit(':', 1)
    return host, int(port), c['name'], bytes.fromhex(c['secret'])


def frame(t, payload=b'', tag=1):
    return HDR.pack(b'BKSN', t, 0, 0, tag, len(payload)) + payload


def recv_exact(s, n):
    b = b''
    while len(b) < n:
        k = s.recv(n - len(b))
        if not k:
            raise EOFError('closed')
        b += k
    return b


def read_frame(s):
    magic, t, fl, rsv, tag, ln = HDR.unpack(recv_exact(s, 16))
    assert magic == b'BKSN', magic
    return t, tag, recv_exact(s, ln)


def login(host, port, name, secret, timeout=10):
    s = socket.create_connection((host, port), timeout=timeout)
    t, _, p = read_frame(s)
    assert t == T_HELLO, t
    snonce = p[4:36]
    cnonce = os.urandom(32)
    nb = name.encode()
    mac = hmac.new(secret, b'bkstor-native-v1 client' + snonce + cnonce + nb,
                   hashlib.sha256).digest()
    s.sendall(frame(T_AUTH, struct.pack('<HHI', 1, 0, 4 << 20) + cnonce + mac +
                    struct.pack('<H', len(nb)) + nb))
    t, _, p = read_frame(s)
    return s, t, p


def error_code(p):
    return struct.unpack('<I', p[:4])[0]


def main():
    host, port, name, secret = conf(sys.argv[1])
    what = sys.argv[2]
    fails = 0

    def ok(cond, msg):
        nonlocal fails
        print(('ok   ' if cond else 'FAIL ') + msg)
        fails += 0 if cond else 1

    if what == 'wrong-secret':
        s, t, p = login(host, port, name, b'\x01' * 32)
        ok(t == T_ERROR and error_code(p) == 13, 'wrong secret refused with EACCES')
        s.close()
        s, t, p = login(host, port, 'nobody', secret)
        ok(t == T_ERROR and error_code(p) == 13, 'unknown client refused the same way')
        s.close()
    elif what == 'garbage':
        s = socket.create_connection((host, port), timeout=10)
        read_frame(s)
        s.sendall(os.urandom(4096))
        try:
            t, _, p = read_frame(s)
            ok(t == T_ERROR, 'garbage before login answered with ERROR')
        except (EOFError, ConnectionResetError):
            ok(True, 'garbage before login: connection closed')
        s.close()
        s, t, p = login(host, port, name, secret)
        ok(t == T_AUTH_OK, 'login')
        s.sendall(b'XXXX' + os.urandom(60))
        try:
            t, _, p = read_frame(s)
            ok(t == T_ERROR, 'bad magic after login answered with ERROR')
        except (EOFError, ConnectionResetError):
            ok(True, 'bad magic after login: connection closed')
        s.close()
        s, t, p = login(host, port, name, secret)
        s.sendall(frame(0x7e, b'hello'))
        t, _, p = read_frame(s)
        ok(t == T_ERROR, 'unknown message type answered with ERROR')
        s.close()
    elif what == 'huge':
        s, t, p = login(host, port, name, secret)
        # A DATA frame announcing 2^32-1 bytes, and a PUT whose path length lies.
        s.sendall(HDR.pack(b'BKSN', T_DATA, 0, 0, 1, 0xffffffff))
        t, _, p = read_frame(s)
        ok(t == T_ERROR, 'a 4 GiB frame refused before any byte of it is read')
        s.close()
        s, t, p = login(host, port, name, secret)
        path = b'/x'
        # PUT payload: flags, mode, uid, gid, mtime, size_hint=2^63, path len lies (4000).
        pay = struct.pack('<IIIIqQH', 0, 0o644, 0, 0, 0, 1 << 63, 4000) + path
        s.sendall(frame(T_PUT, pay))
        t, _, p = read_frame(s)
        ok(t == T_ERROR, 'PUT announcing 2^63 bytes with a lying path length refused')
        s.close()
    elif what == 'stall':
        # Stop mid-frame: the server must drop us after its idle timeout, and serve
        # others meanwhile.
        s, t, p = login(host, port, name, secret)
        s.sendall(HDR.pack(b'BKSN', T_PING, 0, 0, 1, 8)[:10])
        s2, t2, _ = login(host, port, name, secret)
        s2.sendall(frame(T_PING, struct.pack('<Q', 42)))
        t2, _, p2 = read_frame(s2)
        ok(t2 == T_PONG and struct.unpack('<Q', p2)[0] == 42,
           'another client is served while one stalls mid-frame')
        s2.close()
        s.settimeout(30)
        t0 = time.time()
        try:
            while s.recv(4096):
                pass
            closed = True
        except (socket.timeout, ConnectionResetError):
            closed = False
        ok(closed and time.time() - t0 < 25, 'a stalled client is disconnected '
           '(after %.1f s)' % (time.time() - t0))
    elif what == 'many':
        n = int(sys.argv[3]) if len(sys.argv) > 3 else 200
        res = []

        def one(i):
            try:
                s, t, p = login(host, port, name, secret, timeout=60)
                if t != T_AUTH_OK:
                    res.append(False)
                    return
                s.sendall(frame(T_PING, struct.pack('<Q', i)))
                t, _, p = read_frame(s)
                res.append(t == T_PONG and struct.unpack('<Q', p)[0] == i)
                time.sleep(0.5)
                s.close()
            except Exception as e:
                print('  connection %d: %s' % (i, e))
                res.append(False)
        ths = [threading.Thread(target=one, args=(i,)) for i in range(n)]
        for th in ths:
            th.start()
        for th in ths:
            th.join()
        ok(sum(res) == n, '%d concurrent connections served (%d ok)' % (n, sum(res)))
    elif what == 'cut-put':
        # A PUT that stops after some DATA: the file must never appear.
        s, t, p = login(host, port, name, secret)
        path = sys.argv[3].encode()
        pay = struct.pack('<IIIIqQH', 0, 0o644, 0, 0, 0, 1 << 20, len(path)) + path
        s.sendall(frame(T_PUT, pay) + frame(T_DATA, os.urandom(65536)))
        s.close()
        ok(True, 'cut a PUT after 64 KiB')
    else:
        print('unknown scenario', what)
        return 2
    return 1 if fails else 0


if __name__ == '__main__':
    sys.exit(main())
