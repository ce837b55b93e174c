#!/bin/sh
# test-daemon-reload: SIGHUP applies what docs/config.md calls reloadable, and logs
# the rest as needing a restart. A removed read-only API token is refused (401) after
# SIGHUP and a new one accepted; an admin_password changed in the file ends the
# sessions and the new password logs in (the old one no longer); a shorter
# session_timeout cuts live sessions; the array's background pacing (bg_min_rate,
# bg_max_rate, fg_idle_ms) changes in the status document; a changed restart key (daemon.threads,
# store.zstd_level, web.tls_cert/tls_key) is logged as needing a restart and not
# applied (the dashboard still speaks plain HTTP).
. "${top_srcdir:-.}/tests/daemon-lib.sh"
command -v curl >/dev/null 2>&1 || { echo "SKIP: curl missing"; exit 77; }

d_start || exit 1
CONF="$DEMO/bkstord.conf"
WEB=$(sed -n 's/^listen = \(127.0.0.1:[0-9]*\)$/\1/p' "$CONF" | tail -1)
TOKEN=$(sed -n 's/^api_tokens = //p' "$CONF")
U="http://$WEB"
code() { # METHOD PATH [curl args...]: the HTTP status; body in $T/body
	m=$1; p=$2; shift 2
	curl -s -o "$T/body" -w '%{http_code}' -X "$m" "$@" "$U$p"
}
expect() { # DESC WANT GOT
	[ "$2" = "$3" ] && ok "$1 ($3)" || { bad "$1: got $3, wanted $2"; head -c 300 "$T/body"; echo; }
}
hup() { # send SIGHUP and wait for the daemon to say it reloaded
	n0=$(grep -c "configuration reloaded" "$T/daemon.log")
	kill -HUP "$DPID"
	for _ in $(seq 1 100); do
		[ "$(grep -c "configuration reloaded" "$T/daemon.log")" -gt "$n0" ] && return 0
		sleep 0.05
	done
	bad "no 'configuration reloaded' after SIGHUP"
}
pwhash() { # PASSWORD: a pbkdf2-sha256 hash in the config's format (few iterations: a test)
	python3 -c 'import hashlib,os,sys; s=os.urandom(16); n=1000
print("pbkdf2-sha256$%d$%s$%s" % (n, s.hex(), hashlib.pbkdf2_hmac("sha256", sys.argv[1].encode(), s, n).hex()))' "$1"
}

# API tokens.
expect "the demo's token reads status" 200 "$(code GET /api/v1/status -H "Authorization: Bearer $TOKEN")"
NEW=$(python3 -c 'import os; print(os.urandom(20).hex())')
sed -i "s/^api_tokens = .*/api_tokens = $NEW/" "$CONF"
hup
expect "after SIGHUP the removed token is refused" 401 "$(code GET /api/v1/status -H "Authorization: Bearer $TOKEN")"
expect "after SIGHUP the new token reads status" 200 "$(code GET /api/v1/status -H "Authorization: Bearer $NEW")"

# The admin password, changed in the file.
printf 'first password 1\n' | ctl passwd --stdin >/dev/null 2>&1 || bad "passwd"
expect "login with the first password" 200 "$(code POST /api/v1/login -c "$T/jar" -d '{"password":"first password 1"}')"
expect "the session works" 200 "$(code GET /api/v1/status -b "$T/jar")"
H=$(pwhash "second password 2")
sed -i "s/^admin_password = .*/admin_password = $H/" "$CONF"
hup
expect "after SIGHUP the old session has ended" 401 "$(code GET /api/v1/status -b "$T/jar")"
expect "the old password no longer logs in" 401 "$(code POST /api/v1/login -d '{"password":"first password 1"}')"
expect "the new password logs in" 200 "$(code POST /api/v1/login -c "$T/jar" -d '{"password":"second password 2"}')"
grep -q "admin password changed; every session ended" "$T/daemon.log" && ok "the change is logged" ||
	bad "no log line for the password change"
# A SIGHUP with the same hash keeps the sessions.
hup
expect "an unchanged password keeps the session" 200 "$(code GET /api/v1/session -b "$T/jar")"

# session_timeout: 12 h, then 1 min.
left() { python3 -c 'import json,sys,time; print(int(json.load(open(sys.argv[1]))["expires_ns"] / 1e9 - time.time()))' "$T/body"; }
code GET /api/v1/session -b "$T/jar" >/dev/null
[ "$(left)" -gt 3600 ] && ok "the session has hours left ($(left) s)" || bad "session: $(left) s left"
sed -i "/^\[web\]/a session_timeout = 1m" "$CONF"
hup
expect "the session after SIGHUP" 200 "$(code GET /api/v1/session -b "$T/jar")"
[ "$(left)" -le 60 ] && ok "a shorter session_timeout cuts the live session ($(left) s left)" ||
	bad "session_timeout not applied: $(left) s left"

# The array's background pacing ([array] bg_min_rate, bg_max_rate, fg_idle_ms)
# reloads: the status document's pacing object (what the array uses) follows.
pacing() { ctl --json status >"$T/st.json" 2>/dev/null &&
	jget "$T/st.json" "'%d/%d/%d' % (d['pacing']['bg_min_rate'], d['pacing']['bg_max_rate'], d['pacing']['fg_idle_ms'])"; }
wait_pacing() { # WANT: until the status document shows it (5 s; GET /api/v1/status is
	# cached for STATUS_CACHE_NS)
	for _ in $(seq 50); do [ "$(pacing)" = "$1" ] && return 0; sleep 0.1; done
	return 1
}
[ "$(pacing)" = "52428800/0/500" ] && ok "pacing at the defaults (50M, unlimited, 500 ms)" ||
	bad "pacing at the start: $(pacing)"
grep -q '^\[array\]' "$CONF" || printf '[array]\n' >>"$CONF"
sed -i "/^\[array\]/a bg_min_rate = 1M\nbg_max_rate = 8M\nfg_idle_ms = 250" "$CONF"
hup
wait_pacing 1048576/8388608/250 && ok "after SIGHUP the array paces at 1M/8M, idle after 250 ms" ||
	bad "pacing after SIGHUP: $(pacing)"
grep "needs a restart" "$T/daemon.log" | grep -q "bg_m\|fg_idle" &&
	bad "a pacing key was logged as needing a restart" || ok "the pacing keys are not logged as restart keys"
sed -i "s/^bg_max_rate = 8M/bg_max_rate = 0/" "$CONF"
hup
wait_pacing 1048576/0/250 && ok "bg_max_rate back to unlimited" || bad "pacing: $(pacing)"

# Restart keys: logged, not applied.
sed -i "/^\[web\]/a tls_cert = $T/cert.pem\ntls_key = $T/key.pem" "$CONF"
sed -i "s/^demo = yes/demo = yes\nthreads = 3/" "$CONF"
sed -i "/^\[store\]/a zstd_level = 7" "$CONF"
hup
grep "needs a restart" "$T/daemon.log" | tail -1 >"$T/restart"
for k in store.zstd_level web.tls_cert web.tls_key daemon.threads; do
	grep -q "$k" "$T/restart" && ok "$k is logged as needing a restart" ||
		bad "$k not logged: $(cat "$T/restart")"
done
grep -q "session_timeout\|api_tokens\|admin_password" "$T/restart" &&
	bad "a reloadable key was logged as needing a restart" || ok "reloadable keys are not"
expect "the dashboard still speaks plain HTTP" 200 "$(code GET /)"
d_stop && ok "clean stop" || bad "stop"
d_finish
