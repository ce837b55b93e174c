#!/usr/bin/env python3
"""tests/bkswire.py: a deliberately independent, minimal client of the native
protocol (docs/protocol.md) for the bad-input tests: it can log in, and it can send
what a real client never would.

usage: bkswire.py CLIENT_CONF SCENARIO
Scenarios print one line "ok <what>" or "FAIL <what>" each and exit 0 / 1."""
import hashlib, hmac, os, socket, struct, sys, threading, time

HDR = struct.Struct('<4sBBHII')
T_HELLO, T_AUTH, T_AUTH_OK, T_ERROR, T_PING, T_PONG = 1, 2, 3, 4, 5, 6
T_PUT, T_PUT_OK, T_GET, T_STAT = 0x10, 0x11, 0x12, 0x14
T_DATA, T_END, T_FP_LIST, T_FP_NEED, T_CHUNK = 0x20, 0x21, 0x22, 0x23, 0x24
PUT_SRC_DEDUP, PUT_PARENTS, PUT_FP_DIGEST = 0x2, 0x4, 0x8
CAP_SRC_DEDUP, CAP_FP_DIGEST = 0x1, 0x2
EBADMSG, EACCES, EMSGSIZE = 74, 13, 90


def xxh3_128(data):
    """END's digest (XXH3-128, canonical big-endian, then 16 zero bytes) through the
    system's libxxhash, or None without it."""
    import ctypes, ctypes.util

    class U128(ctypes.Structure):
        _fields_ = [('low', ctypes.c_uint64), ('high', ctypes.c_uint64)]
    for name in ('libxxhash.so.0', ctypes.util.find_library('xxhash')):
        try:
            lib = ctypes.CDLL(name)
            break
        except (OSError, TypeError):
            lib = None
    if lib is None:
        return None
    lib.XXH3_128bits.restype = U128
    lib.XXH3_128bits.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
    h = lib.XXH3_128bits(data, len(data))
    return struct.pack('>QQ', h.high, h.low) + b'\0' * 16


def rss_kib(pid):
    for line in open('/proc/%d/status' % pid):
        if line.startswith('VmRSS:'):
            return int(line.split()[1])
    return 0


def hello(s):
    t, _, p = read_frame(s)
    assert t == T_HELLO, t
    return p


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


def read_frame_login(s, name, secret, snonce, cnonce):
    """AUTH on a socket whose HELLO payload was read already; returns the answer."""
    nb = name.encode()
    mac = hmac.new(secret, b'bkstor-native-v1 client' + snonce + cnonce + nb,
                   hashlib.sha256).digest()
    s.sendall(frame(T_AUTH, struct.pack('<HHI', 1, 0, 4 << 20) + cnonce + mac +
                    struct.pack('<H', len(nb)) + nb))
    return read_frame(s)


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
    elif what == 'slowloris':
        # n sockets from each of the given source addresses that never finish logging
        # in: each drips a valid AUTH header a byte every 0.5 s. The server must close
        # every one within its auth_timeout (a total, not per byte) plus slack, and
        # (checked by the caller meanwhile) let a real client in.
        # args: N LIMIT HOLD [SRC,SRC... [GAP]]: N sockets per source address, one
        # started every GAP s, alternating addresses
        n, limit, hold = int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
        srcs = sys.argv[6].split(',') if len(sys.argv) > 6 else ['']
        life = []

        def slow(src):
            t0 = time.time()
            try:
                s = socket.create_connection((host, port), timeout=hold,
                                             source_address=(src, 0) if src else None)
                hdr = HDR.pack(b'BKSN', T_AUTH, 0, 0, 0, 300) + b'\0' * 300
                for b in hdr:
                    s.sendall(bytes([b]))
                    # wait 0.5 s, or less if the server closed us
                    s.settimeout(0.5)
                    try:
                        while True:
                            k = s.recv(4096)
                            if not k:
                                raise EOFError
                    except socket.timeout:
                        pass
                    if time.time() - t0 > hold:
                        break
                life.append(None)  # still open after hold seconds
            except (EOFError, OSError):
                life.append(time.time() - t0)
        gap = float(sys.argv[7]) if len(sys.argv) > 7 else 0.01
        ths = [threading.Thread(target=slow, args=(src,)) for _ in range(n) for src in srcs]
        for th in ths:
            th.start()
            time.sleep(gap)
        for th in ths:
            th.join()
        held = [x for x in life if x is None]
        longest = max([x for x in life if x is not None] or [0])
        ok(not held and longest <= limit, '%d slow sockets all closed by the server within '
           '%.1f s (%d still open after %.0f s, longest %.1f s)' % (len(life), limit,
                                                                   len(held), hold, longest))
    elif what == 'parallel-wrong':
        # N connections from one source address all read HELLO first (each passes the
        # check made at connect), then all send a wrong AUTH at once: only LIMIT of
        # them may be tried; the rest must be refused as blocked, and afterwards even
        # the right secret from that address is refused for the minute.
        # args: N LIMIT SRC
        n, limit, src = int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
        socks = []
        for _ in range(n):
            s = socket.create_connection((host, port), timeout=10, source_address=(src, 0))
            t, _, p = read_frame(s)
            assert t == T_HELLO, t
            socks.append((s, p[4:36]))
        res = []

        def wrong(s, snonce):
            t, _, p = read_frame_login(s, name, b'\x02' * 32, snonce, os.urandom(32))
            res.append(b'too many' in p)
        ths = [threading.Thread(target=wrong, args=sp) for sp in socks]
        for th in ths:
            th.start()
        for th in ths:
            th.join()
        tried = res.count(False)
        ok(len(res) == n and tried == limit, '%d parallel wrong logins: %d tried, %d refused '
           'as blocked (limit %d)' % (n, tried, res.count(True), limit))
        for s, _ in socks:
            s.close()
        s = socket.create_connection((host, port), timeout=10, source_address=(src, 0))
        try:
            t, _, p = read_frame(s)
            blocked = t == T_ERROR
        except (EOFError, ConnectionResetError):
            blocked = True
        ok(blocked, 'the address stays blocked, even for the right secret')
        s.close()
    elif what == 'drip-frame':
        # Logged in, send a PING a byte every 0.4 s (10 s in all): the server must
        # close us at its frame_timeout (a total per frame), not answer it.
        limit = float(sys.argv[3])
        s, t, p = login(host, port, name, secret)
        ok(t == T_AUTH_OK, 'login')
        t0, closed, pong = time.time(), False, False
        for b in frame(T_PING, struct.pack('<Q', 9)):
            try:
                s.sendall(bytes([b]))
                s.settimeout(0.4)
                k = s.recv(4096)
                if not k:
                    closed = True
                    break
                pong = True
            except socket.timeout:
                pass
            except OSError:
                closed = True
                break
        took = time.time() - t0
        ok(closed and not pong and took <= limit, 'a frame dripped a byte every 0.4 s is '
           'cut off after %.1f s (limit %.1f s)' % (took, limit))
        s.close()
    elif what == 'preauth-huge':
        # Before login, frame headers announcing big payloads: refused at once, without
        # the daemon buffering them (its RSS must not grow by what we send).
        pid, n = int(sys.argv[3]), int(sys.argv[4])
        rss0 = rss_kib(pid)
        socks, fast = [], 0
        for i in range(n):
            s = socket.create_connection((host, port), timeout=10)
            hello(s)
            t = (T_DATA, T_CHUNK, T_FP_LIST, T_AUTH)[i % 4]
            ln = 4 << 20 if t != T_AUTH else 1 << 20
            s.sendall(HDR.pack(b'BKSN', t, 0, 0, 0, ln))
            s.settimeout(1)
            try:
                rt, _, p = read_frame(s)
                fast += rt == T_ERROR and error_code(p) in (EACCES, EMSGSIZE)
            except (socket.timeout, EOFError, OSError):
                pass
            socks.append(s)
        ok(fast == n, '%d pre-login frames announcing 1-4 MiB answered with ERROR at once '
           '(%d were)' % (n, fast))
        # Now the payloads (2 MiB each): a server that buffers them grows by up to 2n MiB.
        blob = os.urandom(2 << 20)
        for s in socks:
            try:
                s.settimeout(2)
                s.sendall(blob)
            except OSError:
                pass
        time.sleep(1)
        grew = rss_kib(pid) - rss0
        closed = 0
        for s in socks:
            try:
                s.settimeout(1)
                while s.recv(65536):
                    pass
                closed += 1
            except (socket.timeout, OSError) as e:
                closed += isinstance(e, ConnectionResetError)
            s.close()
        ok(closed == n, 'all %d connections closed by the server (%d were)' % (n, closed))
        ok(grew < 8 << 10, 'daemon RSS grew %d KiB after %d MiB of pre-login payload '
           '(under 8 MiB)' % (grew, 2 * n))
    elif what == 'stop-reading':
        # GET a large file and never read: the server must drop us after its
        # send_timeout. We hold the socket for `hold` s so the caller can look meanwhile.
        path, hold = sys.argv[3].encode(), float(sys.argv[4])
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(10)
        s.connect((host, port))
        snonce = hello(s)[4:36]
        # (login by hand: the small receive buffer must be set before connect)
        t, _, p = read_frame_login(s, name, secret, snonce, os.urandom(32))
        ok(t == T_AUTH_OK, 'login')
        s.sendall(frame(T_GET, struct.pack('<IQQH', 0, 0, (1 << 64) - 1, len(path)) + path, 7))
        time.sleep(hold)
        got, end = 0, False
        s.settimeout(5)
        try:
            while True:
                k = s.recv(1 << 20)
                if not k:
                    break
                got += len(k)
        except (socket.timeout, OSError):
            pass
        print('  read %d bytes after the pause' % got)
        ok(True, 'held a GET without reading for %.0f s' % hold)
    elif what == 'evil-name':
        # Log in with a name holding a newline, an ESC and a forged log line.
        evil = 'evil\n2026-01-01T00:00:00.000Z bkstord error: FORGED\x1b[31mred\\'
        s, t, p = login(host, port, evil, secret)
        ok(t == T_ERROR and error_code(p) == EACCES, 'the evil name is refused')
        s.close()
    elif what == 'dedup-digest':
        # A source-dedup PUT with FP_DIGEST: a wrong END digest fails the PUT with
        # EBADMSG (and the caller checks the file is not there); the right one (when
        # libxxhash is here to compute it) stores the file.
        path = sys.argv[3].encode()
        s, t, p = login(host, port, name, secret)
        ok(t == T_AUTH_OK, 'login')
        caps, cdc_max = struct.unpack('<I', p[32:36])[0], struct.unpack('<I', p[48:52])[0]
        ok(caps & CAP_FP_DIGEST, 'AUTH_OK announces FP_DIGEST (caps 0x%x)' % caps)
        data = os.urandom(3 * min(cdc_max, 40000) + 123)
        step = min(cdc_max, 40000)
        chunks = [data[i:i + step] for i in range(0, len(data), step)]
        entries = b''.join(hashlib.sha256(c).digest() + struct.pack('<I', len(c))
                           for c in chunks)

        def put(digest, pth, tag):
            pay = struct.pack('<IIIIqQH', PUT_SRC_DEDUP | PUT_PARENTS | PUT_FP_DIGEST,
                              0o644, 0, 0, 0, len(data), len(pth)) + pth
            s.sendall(frame(T_PUT, pay, tag) +
                      frame(T_FP_LIST, struct.pack('<I', len(chunks)) + entries, tag))
            t, _, p = read_frame(s)
            if t != T_FP_NEED:
                return t, p
            bits = p[4:]
            out = b''
            for i, c in enumerate(chunks):
                if bits[i // 8] >> (i % 8) & 1:
                    out += frame(T_CHUNK, c, tag)
            s.sendall(out + frame(T_END, struct.pack('<Q', len(data)) + digest, tag))
            t, _, p = read_frame(s)
            return t, p
        t, p = put(os.urandom(16) + b'\0' * 16, path, 3)
        ok(t == T_ERROR and error_code(p) == EBADMSG,
           'a wrong END digest fails the PUT with EBADMSG: %r' % p[6:].decode(errors='replace'))
        good = xxh3_128(entries)
        if good is None:
            print('  (no libxxhash: the right digest is checked by bkstorctl put --dedup)')
        else:
            t, p = put(good, path + b'.good', 5)
            ok(t == T_PUT_OK, 'the right digest of the fingerprint stream stores the file')
        s.close()
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
