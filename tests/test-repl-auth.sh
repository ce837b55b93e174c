#!/bin/sh
# tests/test-repl-auth.sh: who may talk to a twin's replication listener (issue 12).
# Refused, logged and counted: plain TCP, TLS 1.2, TLS 1.3 without a client
# certificate, an unpinned certificate (no pairing token active), an unpinned
# certificate that tries anything but PAIR while a token is active, a wrong token (and
# the token is spent by the attempt), a source whose certificate changed (B refuses
# it; files stop crossing), a twin whose certificate changed (A refuses it). The
# paired pair works before and after.
. "${top_srcdir:-.}/tests/repl-lib.sh"
command -v openssl >/dev/null 2>&1 || { echo "SKIP: openssl missing"; exit 77; }

r_make a "$PA" "$RA" 168h && r_make b "$PB" "$RB" 5s || exit 1
r_start a && r_start b || exit 1
check "pair A with B" 0 r_pair
fpb=$(jget "$T/token.json" "d['fingerprint']")
echo hello >"$T/small"
ca put "$T/small" /one -p >/dev/null
r_synced 30 && cb stat /one >/dev/null 2>&1 && ok "paired: a file crosses" || bad "paired: nothing crossed"

refused() { rj b "d['received']['refused_connections']"; }
# A client: python's ssl with a certificate of its own (or none, or TLS 1.2, or no
# TLS at all). Prints "in" when the twin answered HELLO with HELLO_OK, else "out".
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
	-subj "/CN=intruder" -keyout "$T/x.key" -out "$T/x.crt" >/dev/null 2>&1 ||
	{ echo "openssl req failed"; exit 1; }
probe() { # MODE: plain | tls12 | nocert | cert
	python3 - "$RB" "$1" "$T/x.crt" "$T/x.key" <<'PY'
import socket, ssl, struct, sys
port, mode, crt, key = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
hello = b"BKSR" + bytes([1, 0, 0, 0]) + struct.pack("<II", 0, 20) + struct.pack("<HH", 1, 0) + b"\x11" * 16
s = socket.create_connection(("127.0.0.1", port), timeout=10)
try:
    if mode != "plain":
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        if mode == "tls12":
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        else:
            ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        if mode in ("cert", "tls12"):
            ctx.load_cert_chain(crt, key)
        s = ctx.wrap_socket(s)
    s.sendall(hello)
    got = b""
    while len(got) < 16:
        b = s.recv(16 - len(got))
        if not b:
            break
        got += b
    print("in" if got[:5] == b"BKSR\x02" else "out")
except (OSError, ssl.SSLError):
    print("out")
PY
}
for mode in plain tls12 nocert cert; do
	n0=$(refused)
	res=$(probe $mode)
	sleep 0.3
	n1=$(refused)
	[ "$res" = out ] && [ "$n1" -gt "$n0" ] && ok "$mode client refused (refused count $n0 -> $n1)" ||
		bad "$mode client: '$res', refused count $n0 -> $n1"
done
grep -q "not a TLS 1.3 client" "$T/b.log" && ok "B logged the plain TCP / TLS 1.2 refusals" ||
	bad "no 'not a TLS 1.3 client' line in B's log"
grep -q "is not the pinned one" "$T/b.log" && ok "B logged the unpinned certificate" ||
	bad "no 'is not the pinned one' line in B's log"

# A token is active: an unpinned certificate gets through the handshake, but only PAIR.
cb --json repl token >"$T/tok2.json" || bad "repl token"
res=$(probe cert)
[ "$res" = out ] && ok "unpinned certificate with a token active: HELLO refused" ||
	bad "unpinned certificate with a token active got HELLO_OK"
grep -q "from an unpinned certificate" "$T/b.log" && ok "B logged it" || bad "not logged"
# A wrong token is refused and spends the token: the right one is then refused too.
tok=$(jget "$T/tok2.json" "d['token']")
check "pair with a wrong token: refused" 1 ca repl pair "127.0.0.1:$RB" --token 0123456789abcdef0123456789abcdef --yes "$fpb"
check "the right token after a wrong guess: refused (one guess per token)" 1 ca repl pair "127.0.0.1:$RB" --token "$tok" --yes "$fpb"
check "pair giving a wrong fingerprint: refused by A" 1 ca repl pair "127.0.0.1:$RB" --token "$tok" --yes 0000000000000000000000000000000000000000000000000000000000000000

# A's certificate changes (a new key): B refuses A; nothing crosses.
r_stop a
mkdir -p "$T/akeep" && mv "$T/a/repl.key" "$T/a/repl.crt" "$T/akeep/"
r_start a || exit 1
n0=$(refused)
ca put "$T/small" /two -p >/dev/null
r_synced 8 && bad "a source with a new certificate still replicates" ||
	ok "a source with a new certificate: no lag 0 ($(rj a "d['state']"))"
[ "$(rj a "int(d['lag']['files'] >= 1 and d['lag']['seconds'] >= 3)")" = 1 ] &&
	ok "A's lag shows it: $(rj a "d['lag']")" || bad "A's lag: $(rj a "d['lag']")"
cb stat /two >/dev/null 2>&1 && bad "B took a file from an unpinned source" ||
	ok "B has not got the file"
[ "$(refused)" -gt "$n0" ] && ok "B counted the refusals" || bad "B did not count them"
# The old key back: it crosses.
r_stop a
mv "$T/akeep/repl.key" "$T/akeep/repl.crt" "$T/a/"
r_start a || exit 1
r_synced 30 && cb stat /two >/dev/null 2>&1 && ok "the pinned certificate back: the file crosses" ||
	bad "the pinned certificate back: nothing crossed"

# B's certificate changes: A refuses B (it is not the twin A pinned).
r_stop b
mv "$T/b/repl.key" "$T/b/repl.crt" "$T/akeep/"
r_start b || exit 1
ca put "$T/small" /three -p >/dev/null
r_synced 8 && bad "A sent to a twin with another certificate" || ok "A does not send to a re-keyed twin"
case "$(rj a "d['last_error']")" in
*"not the pinned one"*) ok "A says why: $(rj a "d['last_error']" | cut -c1-80)...";;
*) bad "A's last error: $(rj a "d['last_error']")";;
esac
cb stat /three >/dev/null 2>&1 && bad "/three reached the re-keyed twin" || ok "/three did not cross"
r_finish
