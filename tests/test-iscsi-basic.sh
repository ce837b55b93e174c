#!/bin/sh
# tests/test-iscsi-basic.sh: the demo daemon's iSCSI target with real initiators
# (libiscsi-bin's iscsi-ls and iscsi-inq, and tests/iscsidd over libiscsi):
# SendTargets discovery (a LUN whose ACL leaves the initiator out is not listed),
# INQUIRY, five generations of backup-like data written each to its own region of a
# LUN with WRITE(16) and SYNCHRONIZE CACHE and read back byte-identical (also with
# CRC32C header digests), a restart and all five again; CHAP turned on by SIGHUP:
# no credentials, a wrong secret and a wrong mutual secret refused, the right ones
# (one-way and mutual) admitted; an initiator not in a LUN's ACL refused, the listed
# one admitted; the status document's iscsi object.
. "${top_srcdir:-.}/tests/daemon-lib.sh"

client="${top_builddir:-.}/tests/iscsidd"
for t in iscsi-ls iscsi-inq; do
	command -v $t >/dev/null 2>&1 || { echo "SKIP: $t missing (libiscsi-bin)"; exit 77; }
done
[ -x "$client" ] || { echo "SKIP: tests/iscsidd not built (libiscsi-dev missing)"; exit 77; }

# The demo serves iSCSI on PORT+4 (daemon-lib.sh found five free ports).
IPORT=$((PORT + 4))
# set_iscsi KEY=VALUE...: make the [iscsi] section of the demo's configuration hold
# these keys (added when missing, replaced when present).
set_iscsi() {
	python3 - "$DEMO/bkstord.conf" "$@" <<'PY'
import re, sys
path, kv = sys.argv[1], dict(a.split("=", 1) for a in sys.argv[2:])
lines = open(path).read().split("\n")
out, sect, seen, done = [], None, set(), False
def flush():
    for k, v in kv.items():
        if k not in seen:
            out.append("%s = %s" % (k, v))
for ln in lines:
    m = re.match(r"\s*\[([^\]]+)\]", ln)
    if m:
        if sect == "iscsi":
            flush(); done = True
        sect = m.group(1)
    elif sect == "iscsi":
        km = re.match(r"\s*([a-z_]+)\s*=", ln)
        if km and km.group(1) in kv:
            seen.add(km.group(1)); ln = "%s = %s" % (km.group(1), kv[km.group(1)])
    out.append(ln)
if sect == "iscsi" and not done:
    flush(); done = True
if not done:
    out.append("[iscsi]"); flush()
open(path, "w").write("\n".join(out) + "\n")
PY
}

d_start || exit 1
grep -q "iscsi: serving on 127.0.0.1:$IPORT" "$T/daemon.log" && ok "target listening on $IPORT" ||
	bad "no iSCSI listener in the log"

PFX=$(sed -n 's/.*targets \(iqn[^ ]*\):<lun>.*/\1/p' "$T/daemon.log" | tail -1)
check "lun create vol1 128M" 0 ctl lun create vol1 128M
check "lun create locked 16M for one initiator" 0 ctl lun create locked 16M \
	--initiators iqn.2026-12.io.bkstor:allowed
P="127.0.0.1:$IPORT"
URL="iscsi://$P/$PFX:vol1/0"

iscsi-ls "iscsi://$P" >"$T/ls" 2>&1
grep -q "Target:$PFX:vol1 Portal:127.0.0.1:$IPORT,1" "$T/ls" && ok "iscsi-ls lists vol1" ||
	{ bad "iscsi-ls does not list vol1"; cat "$T/ls"; }
grep -q ":locked " "$T/ls" && bad "iscsi-ls lists a LUN whose ACL leaves it out" ||
	ok "iscsi-ls does not list a LUN the ACL keeps from it"
iscsi-inq "$URL" >"$T/inq" 2>&1
grep -q "Vendor:BKSTOR" "$T/inq" && grep -q "Peripheral Device Type:DIRECT_ACCESS" "$T/inq" &&
	ok "iscsi-inq: a BKSTOR disk" || { bad "iscsi-inq"; cat "$T/inq"; }

# The LUN's session count (bkstorctl lun list, GET /api/v1/luns and the status
# document): two initiator sessions logged in at once (tests/iscsiclient hold, each
# a new ISID) are 2, though the target shares one LUN handle between them; after
# their logouts, 0.
holder="${top_builddir:-.}/tests/iscsiclient"
lunsess() { # the "sessions" of vol1 in `lun list --json` and in the status document
	ctl --json lun list >"$T/ll.json" 2>/dev/null && ctl --json status >"$T/st.json" 2>/dev/null ||
		{ echo "-"; return; }
	sx="([l['sessions'] for l in d['luns'] if l['name']=='vol1'] or ['none'])[0]"
	echo "$(jget "$T/ll.json" "$sx")/$(jget "$T/st.json" "$sx")"
}
wait_sess() { # WANT: until lunsess says WANT/WANT (10 s)
	for _ in $(seq 100); do [ "$(lunsess)" = "$1/$1" ] && return 0; sleep 0.1; done
	return 1
}
if [ -x "$holder" ]; then
	wait_sess 0 && ok "vol1: no sessions before" || bad "vol1 sessions before: $(lunsess)"
	mkfifo "$T/hold1" "$T/hold2"
	"$holder" "$URL" hold <"$T/hold1" >"$T/hold1.out" 2>&1 &
	h1=$!
	exec 7>"$T/hold1"
	"$holder" "$URL" hold <"$T/hold2" >"$T/hold2.out" 2>&1 7>&- & # (not holding hold1 open)
	h2=$!
	exec 8>"$T/hold2"
	for _ in $(seq 100); do
		grep -q held "$T/hold1.out" && grep -q held "$T/hold2.out" && break
		sleep 0.1
	done
	grep -q held "$T/hold1.out" && grep -q held "$T/hold2.out" && ok "two sessions logged in to vol1" ||
		bad "holders: $(cat "$T/hold1.out" "$T/hold2.out")"
	wait_sess 2 && ok "vol1: 2 sessions (lun list and status)" || bad "vol1 sessions with two logged in: $(lunsess)"
	exec 7>&-
	wait $h1 && ok "the first session logged out" || bad "first holder: $(cat "$T/hold1.out")"
	wait_sess 1 && ok "vol1: 1 session after one logout" || bad "vol1 sessions after one logout: $(lunsess)"
	exec 8>&-
	wait $h2 && ok "the second session logged out" || bad "second holder: $(cat "$T/hold2.out")"
	wait_sess 0 && ok "vol1: 0 sessions after both logouts" || bad "vol1 sessions after the logouts: $(lunsess)"
fi

# Five generations of backup-like data (2 % changed each), each in its own 16 MiB
# region of vol1.
make_base "$T/base" 6
gens "$T/base" "$T/gen" 5
for g in 1 2 3 4 5; do
	f="$T/gen/gen0$g.img"
	check "write generation $g ($(stat -c %s "$f") bytes)" 0 "$client" "$URL" put "$f" $((g * 32768))
done
verify_all() { # label [URL]
	u=${2:-$URL}
	good=0
	for g in 1 2 3 4 5; do
		f="$T/gen/gen0$g.img"
		rm -f "$T/back"
		"$client" "$u" get "$T/back" "$(stat -c %s "$f")" $((g * 32768)) 2>"$T/err" &&
			cmp -s "$T/back" "$f" && good=$((good + 1))
	done
	[ $good = 5 ] && ok "$1: 5 of 5 generations read back byte-identical" ||
		{ bad "$1: $good of 5 generations read back"; cat "$T/err"; }
}
verify_all "before restart"
verify_all "with CRC32C header digests" "$URL?header_digest=crc32c"
grep -q "digests CRC32C" "$T/daemon.log" && ok "CRC32C header digest negotiated" ||
	bad "no session with a CRC32C header digest"

ctl status --json >"$T/st.json" 2>/dev/null
[ "$(jget "$T/st.json" "d['iscsi']['enabled']")" = True ] &&
	[ "$(jget "$T/st.json" "d['iscsi']['logins'] >= 8")" = True ] &&
	ok "status: iscsi enabled, logins counted" || bad "status iscsi object"

d_stop && ok "clean stop" || bad "stop"
d_start || exit 1
verify_all "after restart"
head -c 3000000 /dev/urandom >"$T/late"
check "write after restart" 0 "$client" "$URL" put "$T/late" 250000
"$client" "$URL" get "$T/lateback" 3000000 250000 && cmp -s "$T/late" "$T/lateback" &&
	ok "read back after restart" || bad "read after restart"

# CHAP, turned on by SIGHUP (the chap_* keys are reloadable).
set_iscsi chap_user=alice chap_secret=alice-secret-123 mutual_user=tgt \
	mutual_secret=target-secret-456
kill -HUP "$DPID"
for _ in $(seq 50); do grep -q "iscsi: CHAP required" "$T/daemon.log" && break; sleep 0.1; done
CU="iscsi://alice%alice-secret-123@$P/$PFX:vol1/0"
check "no CHAP: refused" 2 "$client" "$URL" get "$T/x" 4096
check "wrong CHAP secret: refused" 2 "$client" "iscsi://alice%wrong-secret-000@$P/$PFX:vol1/0" \
	get "$T/x" 4096
check "wrong CHAP user: refused" 2 "$client" "iscsi://mallory%alice-secret-123@$P/$PFX:vol1/0" \
	get "$T/x" 4096
check "right CHAP secret: admitted" 0 "$client" "$CU" get "$T/x" 4096
check "mutual CHAP: admitted" 0 env LIBISCSI_CHAP_TARGET_USERNAME=tgt \
	LIBISCSI_CHAP_TARGET_PASSWORD=target-secret-456 "$client" "$CU" get "$T/x" 4096
check "mutual CHAP, the target's answer wrong: the initiator refuses" 2 \
	env LIBISCSI_CHAP_TARGET_USERNAME=tgt LIBISCSI_CHAP_TARGET_PASSWORD=not-the-target-9 \
	"$client" "$CU" get "$T/x" 4096
grep -q "alice-secret-123\|target-secret-456" "$T/daemon.log" && bad "a secret in the log" ||
	ok "no secret in the log"
verify_all "through CHAP" "$CU"

# ACL: only the listed initiator may log in to 'locked'.
LU="iscsi://alice%alice-secret-123@$P/$PFX:locked/0"
check "initiator not in the ACL: refused" 2 \
	env ISCSI_INITIATOR=iqn.2026-12.io.bkstor:other "$client" "$LU" get "$T/x" 4096
check "initiator in the ACL: admitted" 0 \
	env ISCSI_INITIATOR=iqn.2026-12.io.bkstor:allowed "$client" "$LU" get "$T/x" 4096
grep -q "status 0202" "$T/daemon.log" && ok "ACL refusal logged as an authorization failure" ||
	bad "no authorization failure in the log"
d_stop && ok "clean stop" || bad "stop"
d_finish
