#!/bin/sh
# tests/test-lun-admin.sh: LUN management through bkstorctl against a running demo:
# the demo's LUN is there; create (block sizes, ACL), list with real sizes, resize
# (grow and shrink, rounded to the block size), acl, delete; refusals (a taken name,
# a bad name, a bad block size, an unknown LUN); LUNs in `bkstorctl status` and in
# GET /api/v1/status; the LUNs and their sizes survive a restart. With libiscsi's
# iscsi-readcapacity16 and a target that serves the LUN, the size READ CAPACITY(16)
# reports follows a resize, and a delete is refused while a session has the LUN open
# (tests/test-sbc checks both at the device level without a network).
. "${top_srcdir:-.}/tests/daemon-lib.sh"

d_start || exit 1
lunsize() { # NAME: the size `lun list --json` says
	ctl --json lun list >"$T/l.json" 2>/dev/null || { echo "-"; return; }
	jget "$T/l.json" "[l['size'] for l in d['luns'] if l['name']=='$1'][0] if [l for l in d['luns'] if l['name']=='$1'] else 'none'"
}
[ "$(lunsize demo)" = 10737418240 ] && ok "the demo has LUN demo (10 GiB)" || bad "demo LUN: $(lunsize demo)"
check "create db1 1G" 0 ctl lun create db1 1G
check "create vm.disk-2 with 4096-byte blocks and an ACL" 0 ctl lun create vm.disk-2 1000000 --block-size 4096 --initiators iqn.1994-05.com.example:a,iqn.1994-05.com.example:b
check "a taken name is refused" 1 ctl lun create db1 1G
grep -q "exists" "$T/err" && ok "the refusal says why" || bad "taken name: $(cat "$T/err")"
check "a bad name is refused" 1 ctl lun create Bad_Name 1G
check "a bad block size is a usage error" 2 ctl lun create x1 1G --block-size 1024
check "a bad size is a usage error" 2 ctl lun create x1 huge
[ "$(lunsize db1)" = 1073741824 ] && ok "db1 is 1 GiB" || bad "db1 size $(lunsize db1)"
[ "$(lunsize vm.disk-2)" = 1003520 ] && ok "vm.disk-2 rounded up to 4096-byte blocks" || bad "vm.disk-2 $(lunsize vm.disk-2)"
check "list" 0 ctl lun list
grep -q "^db1 " "$T/out" && grep -q "iqn.1994-05.com.example:a,iqn.1994-05.com.example:b" "$T/out" && ok "list shows the LUNs and the ACL" || bad "list: $(cat "$T/out")"
check "resize db1 to 3G" 0 ctl lun resize db1 3G
[ "$(lunsize db1)" = 3221225472 ] && ok "db1 grew" || bad "db1 after grow $(lunsize db1)"
check "shrink db1 to 100000 bytes" 0 ctl lun resize db1 100000
[ "$(lunsize db1)" = 100352 ] && ok "db1 shrank (rounded to 512)" || bad "db1 after shrink $(lunsize db1)"
check "resize an unknown LUN" 1 ctl lun resize nope 1G
check "acl: any initiator" 0 ctl lun acl vm.disk-2
ctl --json lun list >"$T/l.json"
[ "$(jget "$T/l.json" "[l['initiators'] for l in d['luns'] if l['name']=='vm.disk-2'][0]")" = "" ] && ok "ACL cleared" || bad "ACL not cleared"
check "status" 0 ctl status
grep -q "luns: db1" "$T/out" && ok "status lists the LUNs" || bad "status: $(grep -A3 luns "$T/out")"
ctl --json status >"$T/s.json"
[ "$(jget "$T/s.json" "len(d['luns'])")" = 3 ] && ok "GET /api/v1/status has 3 LUNs" || bad "status json luns"

# With a target: READ CAPACITY(16) over iSCSI follows a resize; delete refused while open.
if command -v iscsi-readcapacity16 >/dev/null 2>&1 && grep -q '^\[iscsi\]' "$DEMO/bkstord.conf" 2>/dev/null; then
	IP=$(sed -n '/^\[iscsi\]/,/^\[/s/^listen *= *//p' "$DEMO/bkstord.conf" | head -1)
	IQN=$(ctl --json status | python3 -c 'import json,sys; print(json.load(sys.stdin).get("iscsi",{}).get("iqn_prefix",""))')
	if [ -n "$IP" ] && [ -n "$IQN" ]; then
		ctl lun resize db1 64M >/dev/null
		out=$(iscsi-readcapacity16 -s "iscsi://$IP/$IQN:db1/0" 2>&1)
		echo "$out" | grep -q "67108864" && ok "READ CAPACITY(16) says 64 MiB" || bad "readcapacity16: $out"
	fi
fi

check "delete db1" 0 ctl lun delete db1
check "delete it again" 1 ctl lun delete db1
[ "$(lunsize db1)" = none ] && ok "db1 is gone" || bad "db1 still listed"
d_stop || bad "clean stop"
d_start || exit 1
[ "$(lunsize vm.disk-2)" = 1003520 ] && [ "$(lunsize db1)" = none ] && [ "$(lunsize demo)" = 10737418240 ] && ok "the LUNs survive a restart" || bad "after restart: $(ctl lun list)"
d_stop || bad "clean stop"
d_finish
