#!/bin/sh
# test-web-limits: the dashboard reads no body it will refuse, and counts failed
# logins per source address across parallel connections.
#  - headers announcing a 100 MB body are answered (401 without a session, 403
#    without the CSRF token, 413 with both, 413 on the login route) before any of
#    the body is sent; a chunked login body over its cap closes the connection;
#  - 16 parallel wrong-password logins from one address: exactly WA_FAIL_LIMIT (5)
#    are checked (401), the rest refused (429); another source address is not
#    locked out, and the right password from it logs in.
. "${top_srcdir:-.}/tests/daemon-lib.sh"
command -v curl >/dev/null 2>&1 || { echo "SKIP: curl missing"; exit 77; }

d_start || exit 1
WEB=$(sed -n 's/^listen = \(127.0.0.1:[0-9]*\)$/\1/p' "$DEMO/bkstord.conf" | tail -1)
PW=$(sed -n 's/.*Admin password: \([0-9a-f]*\) .*/\1/p' "$T/daemon.log" | head -1)
U="http://$WEB"

# early HEADERS...: send the request head, then wait up to 5 s for a status line
# without sending any body; prints the status (or "none"), and whether the daemon
# closed the connection after it.
early() {
	python3 - "${WEB%:*}" "${WEB#*:}" "$@" <<'PY'
import socket, sys, time
host, port, method, path = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
hdrs = sys.argv[5:]
s = socket.create_connection((host, port), timeout=5)
head = "%s %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" % (method, path)
head += "".join(h + "\r\n" for h in hdrs) + "\r\n"
s.sendall(head.encode())
got = b""
try:
    while b"\r\n\r\n" not in got:
        b = s.recv(4096)
        if not b:
            break
        got += b
except socket.timeout:
    pass
status = got.split(b" ")[1].decode() if got.startswith(b"HTTP/1.") else "none"
# The daemon must not wait for the body: after the answer it closes (or at least
# reads no more); sending a few MB must not get a second answer.
closed = "open"
try:
    s.settimeout(5)
    for _ in range(64):
        s.sendall(b"x" * 65536)
    time.sleep(0.2)
    while True:
        b = s.recv(65536)
        if not b:
            closed = "closed"
            break
except (BrokenPipeError, ConnectionResetError):
    closed = "closed"
except socket.timeout:
    pass
print(status, closed)
PY
}
expect() { # DESC WANT GOT
	[ "$2" = "$3" ] && ok "$1 ($3)" || bad "$1: got '$3', wanted '$2'"
}

BIG="Content-Length: 100000000"
expect "no session: 401 before the body" "401 closed" "$(early POST /api/v1/scrub "$BIG")"
expect "no session, PUT: 401 before the body" "401 closed" "$(early PUT /api/v1/files "$BIG")"
expect "a static path with a body: answered at once" "404 closed" "$(early POST /index.html "$BIG")"
expect "login with a 100 MB body: 413 before the body" "413 closed" "$(early POST /api/v1/login "$BIG")"
curl -s -c "$T/jar" -o "$T/body" -d "{\"password\":\"$PW\"}" "$U/api/v1/login" >/dev/null
CSRF=$(jget "$T/body" 'd["csrf"]')
SID=$(awk '$6 == "bks_session" {print $7}' "$T/jar")
[ ${#SID} = 64 ] && ok "logged in" || bad "no session: $(cat "$T/body")"
expect "session without CSRF: 403 before the body" "403 closed" \
	"$(early POST /api/v1/scrub "$BIG" "Cookie: bks_session=$SID")"
expect "session with CSRF: 413 before the body" "413 closed" \
	"$(early POST /api/v1/scrub "$BIG" "Cookie: bks_session=$SID" "X-CSRF-Token: $CSRF")"
expect "a read-only token cannot POST: 403 before the body" "403 closed" \
	"$(early POST /api/v1/scrub "$BIG" "Authorization: Bearer $(sed -n 's/^api_tokens = //p' "$DEMO/bkstord.conf")")"
# A chunked login body (no Content-Length) is cut off at its cap.
head -c 20000 /dev/zero | tr '\0' 'a' >"$T/chunk"
c=$(curl -s -o /dev/null -w '%{http_code}' -H 'Transfer-Encoding: chunked' --data-binary @"$T/chunk" "$U/api/v1/login")
[ "$c" != 200 ] && [ "$c" != 401 ] && ok "a chunked 20 KB login body is refused ($c)" || bad "chunked login: $c"
# Normal requests still work.
c=$(curl -s -o /dev/null -w '%{http_code}' -b "$T/jar" -H "X-CSRF-Token: $CSRF" -d '{"action":"start"}' "$U/api/v1/scrub")
expect "a normal POST with session and CSRF" 200 "$c"
c=$(curl -s -o /dev/null -w '%{http_code}' -b "$T/jar" "$U/api/v1/status")
expect "a normal GET with the session" 200 "$c"

# Parallel failed logins from one address (the window opens at the first attempt, so
# no clock minute boundary can split the burst).
pids=""
for i in $(seq 1 16); do
	curl -s -o /dev/null -w '%{http_code}\n' -d '{"password":"wrong password"}' "$U/api/v1/login" >"$T/par.$i" &
	pids="$pids $!"
done
wait $pids
n401=$(cat "$T"/par.* | grep -c 401); n429=$(cat "$T"/par.* | grep -c 429)
expect "16 parallel wrong logins: checked" 5 "$n401"
expect "16 parallel wrong logins: refused" 11 "$n429"
c=$(curl -s -o /dev/null -w '%{http_code}' -d "{\"password\":\"$PW\"}" "$U/api/v1/login")
expect "the right password from the locked address" 429 "$c"
if curl -s -o /dev/null --interface 127.0.0.2 "$U/" 2>/dev/null; then
	c=$(curl -s -o /dev/null -w '%{http_code}' --interface 127.0.0.2 -d '{"password":"wrong password"}' "$U/api/v1/login")
	expect "another address is not locked out" 401 "$c"
	c=$(curl -s -o /dev/null -w '%{http_code}' --interface 127.0.0.2 -d "{\"password\":\"$PW\"}" "$U/api/v1/login")
	expect "the right password from another address" 200 "$c"
else
	echo "# 127.0.0.2 not usable as a source address: second-address check skipped"
fi
d_stop && ok "clean stop" || bad "stop"
d_finish
