#!/bin/sh
# test-web-api: the dashboard's listener, with curl: every endpoint is 401 without a
# session; login (wrong password 401, right one: an HttpOnly SameSite=Strict cookie
# and a CSRF token); a state change without the CSRF token is 403; malformed JSON 400;
# an oversized body 413; read-only API tokens read but cannot change; security
# headers; correct data after a put; logout; failed logins rate-limited (429).
. "${top_srcdir:-.}/tests/daemon-lib.sh"
command -v curl >/dev/null 2>&1 || { echo "SKIP: curl missing"; exit 77; }

d_start || exit 1
WEB=$(sed -n 's/^listen = \(127.0.0.1:[0-9]*\)$/\1/p' "$DEMO/bkstord.conf" | tail -1)
TOKEN=$(sed -n 's/^api_tokens = //p' "$DEMO/bkstord.conf")
U="http://$WEB"
J="$T/cookies"
code() { # METHOD PATH [curl args...]: print the HTTP status; body in $T/body, headers in $T/hdr
	m=$1; p=$2; shift 2
	curl -s -o "$T/body" -D "$T/hdr" -w '%{http_code}' -X "$m" "$@" "$U$p"
}
expect() { # DESC WANT GOT
	[ "$2" = "$3" ] && ok "$1 ($3)" || { bad "$1: got $3, wanted $2"; head -c 300 "$T/body"; echo; }
}

expect "GET / serves the dashboard" 200 "$(code GET /)"
grep -qi '^content-security-policy:.*default-src' "$T/hdr" && ok "CSP header" || bad "no CSP header"
grep -qi '^x-frame-options: *deny' "$T/hdr" && ok "X-Frame-Options DENY" || bad "no X-Frame-Options"
for ep in status array disks jobs events throughput "files?path=/" "stat?path=/"; do
	expect "GET /api/v1/$ep without a session" 401 "$(code GET "/api/v1/$ep")"
done
expect "POST /api/v1/scrub without a session" 401 "$(code POST /api/v1/scrub -d '{"action":"start"}')"
# The demo made a random admin password (printed once in its log).
DEMO_PW=$(sed -n 's/.*Admin password: \([0-9a-f]*\) .*/\1/p' "$T/daemon.log" | head -1)
[ -n "$DEMO_PW" ] && ok "the demo printed its admin password once" || bad "no demo password printed"
expect "login with the demo's password" 200 "$(code POST /api/v1/login -d "{\"password\":\"$DEMO_PW\"}")"
printf 'short\n' | ctl passwd --stdin >/dev/null 2>&1 && bad "a 5-character password was accepted" ||
	ok "a too-short password is refused"
printf 'correct horse battery\n' | ctl passwd --stdin >/dev/null 2>&1 && ok "bkstorctl passwd" || bad "passwd"
grep -q '^admin_password = pbkdf2-sha256\$' "$DEMO/bkstord.conf" && ok "stored as a PBKDF2 hash" ||
	bad "no hash in the config"
grep -q 'correct horse' "$DEMO/bkstord.conf" && bad "the plain password is in the config" ||
	ok "the plain password is nowhere in the config"
expect "wrong password" 401 "$(code POST /api/v1/login -d '{"password":"wrong"}')"
expect "login" 200 "$(code POST /api/v1/login -c "$J" -d '{"password":"correct horse battery"}')"
grep -qi '^set-cookie: bks_session=.*HttpOnly.*SameSite=Strict' "$T/hdr" &&
	ok "session cookie is HttpOnly and SameSite=Strict" || bad "cookie: $(grep -i set-cookie "$T/hdr")"
CSRF=$(jget "$T/body" 'd["csrf"]')
[ ${#CSRF} = 64 ] && ok "a CSRF token came with the session" || bad "csrf: $CSRF"
for ep in status array disks jobs events throughput "files?path=/" "stat?path=/"; do
	expect "GET /api/v1/$ep with the session" 200 "$(code GET "/api/v1/$ep" -b "$J")"
done
grep -qi '^cache-control: *no-store' "$T/hdr" && ok "API replies are no-store" || bad "no no-store"
expect "GET /api/v1/session" 200 "$(code GET /api/v1/session -b "$J")"
[ "$(jget "$T/body" 'd["csrf"]')" = "$CSRF" ] && ok "session says the same CSRF token" || bad "session csrf"
expect "POST without the CSRF token" 403 "$(code POST /api/v1/scrub -b "$J" -d '{"action":"start"}')"
expect "POST with a wrong CSRF token" 403 "$(code POST /api/v1/scrub -b "$J" -H "X-CSRF-Token: $(printf '%064d' 0)" -d '{"action":"start"}')"
expect "malformed JSON" 400 "$(code POST /api/v1/scrub -b "$J" -H "X-CSRF-Token: $CSRF" -d '{"action":')"
head -c 70000 /dev/zero | tr '\0' ' ' >"$T/big"
expect "a 70 KB body" 413 "$(code POST /api/v1/gc -b "$J" -H "X-CSRF-Token: $CSRF" --data-binary @"$T/big")"
expect "unknown action" 400 "$(code POST /api/v1/scrub -b "$J" -H "X-CSRF-Token: $CSRF" -d '{"action":"dance"}')"
expect "scrub start with the CSRF token" 200 "$(code POST /api/v1/scrub -b "$J" -H "X-CSRF-Token: $CSRF" -d '{"action":"start"}')"
expect "GET on a POST endpoint" 405 "$(code GET /api/v1/scrub -b "$J")"
expect "unknown endpoint" 404 "$(code GET /api/v1/nothing -b "$J")"
expect "passwd over TCP is refused" 403 "$(code POST /api/v1/passwd -b "$J" -H "X-CSRF-Token: $CSRF" -d '{"password":"another one!"}')"
expect "the replication token is not served over TCP" 404 "$(code POST /api/v1/repl/token -b "$J" -H "X-CSRF-Token: $CSRF" -d '{}')"
truncate -s 64M "$T/small.img"
expect "replace with a too-small disk" 409 "$(code POST /api/v1/disks/replace -b "$J" -H "X-CSRF-Token: $CSRF" -d "{\"disk\":\"$DEMO/disks/disk1.img\",\"new\":\"$T/small.img\"}")"
grep -q smaller "$T/body" && ok "the error says why" || bad "message: $(cat "$T/body")"
expect "fail a missing disk" 404 "$(code POST /api/v1/disks/fail -b "$J" -H "X-CSRF-Token: $CSRF" -d '{"disk":"/nope"}')"

# Data after a put.
head -c 2000000 /dev/urandom >"$T/file"
ctl put -p "$T/file" /b/file >/dev/null 2>&1 || bad "put"
expect "files after a put" 200 "$(code GET '/api/v1/files?path=/b' -b "$J")"
[ "$(jget "$T/body" '[e["size"] for e in d["entries"] if e["name"] == "file"][0]')" = 2000000 ] &&
	ok "the listing shows the file and its size" || bad "listing: $(cat "$T/body")"
expect "status" 200 "$(code GET /api/v1/status -b "$J")"
[ "$(jget "$T/body" 'd["capacity"]["logical_bytes"] >= 2000000 and d["throughput"]["ingest_bytes"] >= 2000000')" = True ] &&
	ok "status counts the put" || bad "status: capacity/throughput"

# Read-only tokens.
expect "GET status with an API token" 200 "$(code GET /api/v1/status -H "Authorization: Bearer $TOKEN")"
expect "POST with an API token" 403 "$(code POST /api/v1/scrub -H "Authorization: Bearer $TOKEN" -d '{"action":"stop"}')"
expect "a wrong API token" 401 "$(code GET /api/v1/status -H "Authorization: Bearer 00$TOKEN")"

# Logout, then rate limiting (last: it locks this address out for the minute).
expect "logout" 200 "$(code POST /api/v1/logout -b "$J" -H "X-CSRF-Token: $CSRF")"
expect "the old session is gone" 401 "$(code GET /api/v1/status -b "$J")"
for i in 1 2 3 4 5; do code POST /api/v1/login -d '{"password":"nope"}' >/dev/null; done
expect "the 6th failed login in a minute" 429 "$(code POST /api/v1/login -d '{"password":"nope"}')"
grep -qi '^retry-after:' "$T/hdr" && ok "Retry-After given" || bad "no Retry-After"
expect "even the right password, for now" 429 "$(code POST /api/v1/login -d '{"password":"correct horse battery"}')"
grep -q "failed login" "$T/daemon.log" && ok "failed logins are logged" || bad "no log"
d_stop && ok "clean stop" || bad "stop"

# HTTPS: a self-signed certificate in the configuration.
if command -v openssl >/dev/null 2>&1 &&
	openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/key.pem" -out "$T/cert.pem" \
		-days 2 -subj /CN=127.0.0.1 >/dev/null 2>&1; then
	sed -i "/^\[web\]/a tls_cert = $T/cert.pem\ntls_key = $T/key.pem" "$DEMO/bkstord.conf"
	d_start || { bad "start with TLS"; d_finish; }
	U="https://$WEB"
	expect "HTTPS: the dashboard" 200 "$(code GET / -k)"
	expect "HTTPS: login" 200 "$(code POST /api/v1/login -k -d '{"password":"correct horse battery"}')"
	grep -qi '^set-cookie: bks_session=.*; Secure' "$T/hdr" && ok "HTTPS: the cookie is Secure" ||
		bad "cookie: $(grep -i set-cookie "$T/hdr")"
	[ "$(curl -s -o /dev/null -w '%{http_code}' "http://$WEB/")" = 200 ] &&
		bad "plain HTTP still answered on the TLS port" || ok "plain HTTP is not served on the TLS port"
	d_stop && ok "clean stop (TLS)" || bad "stop"
else
	echo "# openssl missing: HTTPS not tested"
fi
d_finish
