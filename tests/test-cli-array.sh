#!/bin/sh
# test-cli-array: bkstorctl's offline array verbs, end to end on sparse files:
# create, show (--json), fail + rebuild onto the spare, scrub, add-spare refusals
# (too small, another array's disk, a disk with a file system without --force), usage
# errors, replace.
# Needs truncate and python3 (for the JSON assertions); skipped without them.

bin="${top_builddir:-.}/cli/bkstorctl"
if [ ! -x "$bin" ]; then echo "SKIP: $bin not built"; exit 77; fi
. "${top_srcdir:-.}/tests/lib.sh"
need truncate
tmp=$T
# A failed check shows the last run's stderr.
fail() {
	bad "$1"
	if [ -s "$tmp/err" ]; then sed 's/^/       stderr: /' "$tmp/err"; fi
}

# run ARGS...: run bkstorctl; $rc, $tmp/out (stdout), $tmp/err (stderr).
run() {
	"$bin" "$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
}

# expect_rc WANT WHAT: check the last run's exit status.
expect_rc() {
	if [ "$rc" -eq "$1" ]; then ok "$2 (exit $rc)"; else fail "$2: exit $rc, want $1"; fi
}

# json_check WHAT EXPR: EXPR is a Python expression over the last run's JSON output:
# s (the document), members, spares (lists of disk objects), slot(n) (member in n).
json_check() {
	if python3 - "$tmp/out" "$2" <<'EOF'
import json, sys
try:
    s = json.load(open(sys.argv[1]))
except ValueError as e:
    print("       json: not valid JSON: %s" % e)
    sys.exit(1)
members = [d for d in s["disks"] if d["role"] == "member"]
spares = [d for d in s["disks"] if d["role"] == "spare"]
def slot(n):
    return [d for d in members if d["slot"] == n][0]
ok = eval(sys.argv[2])
if not ok:
    print("       json: health=%s disks=%s" % (s.get("health"),
          [(d["slot"], d["role"], d["state"], d["path"]) for d in s["disks"]]))
sys.exit(0 if ok else 1)
EOF
	then ok "$1"; else fail "$1"; fi
}

# grep_check WHAT FILE PATTERN
grep_check() {
	if grep -q -- "$3" "$2"; then ok "$1"; else fail "$1 ('$3' not in $(basename "$2"))"; fi
}

cd "$tmp" || exit 1
truncate -s 64M d0 d1 d2 d3 d4 d5 s0 n0 o0 o1 o2 o3 || { echo "FAIL: truncate"; exit 1; }
truncate -s 8M small
# "$@": the six members of the array under test
set -- "$tmp/d0" "$tmp/d1" "$tmp/d2" "$tmp/d3" "$tmp/d4" "$tmp/d5"

run array create --name t1 --strip-size 64K --spare "$tmp/s0" "$@"
expect_rc 0 "array create 6 disks + 1 spare"
grep_check "create prints the status" "$tmp/out" "state: ONLINE"

run array show --json "$@" "$tmp/s0"
expect_rc 0 "array show --json"
json_check "show: ONLINE, 6 members, 1 spare, 64K strip" \
	's["health"] == "ONLINE" and len(members) == 6 and len(spares) == 1 and s["strip_size"] == 65536 and s["name"] == "t1"'

run array show "$@" "$tmp/s0"
expect_rc 0 "array show (human)"
grep_check "show lists the spare" "$tmp/out" "spares"

run array fail slot2 "$@" "$tmp/s0"
expect_rc 0 "array fail slot2"
grep_check "fail reports the claimed spare" "$tmp/err" "event: .*claimed for slot 2"

# --json at the end of the command line this time
run array show "$@" "$tmp/s0" --json
expect_rc 0 "array show after fail"
json_check "spare took slot 2, rebuild completed, ONLINE" \
	'slot(2)["path"].endswith("/s0") and slot(2)["state"] == "ONLINE" and s["health"] == "ONLINE" and not spares and all(j["state"] == "done" for j in s["jobs"])'

run array scrub --json "$@" "$tmp/s0"
expect_rc 0 "array scrub"
json_check "scrub finished with 0 unrecoverable" \
	's["last_scrub"]["state"] == "idle" and s["last_scrub"]["finished_ns"] > 0 and s["last_scrub"]["unrecoverable"] == 0'

run array add-spare "$tmp/small" "$@" "$tmp/s0"
expect_rc 1 "add-spare of an 8 MiB disk"
grep_check "too-small disk: message says smaller" "$tmp/err" "^bkstorctl: .*smaller"

run array create --name other --strip-size 64K "$tmp/o0" "$tmp/o1" "$tmp/o2" "$tmp/o3"
expect_rc 0 "create a second array"
run array add-spare "$tmp/o0" "$@" "$tmp/s0"
expect_rc 1 "add-spare of another array's disk"
grep_check "other array's disk: message says belongs to" "$tmp/err" "^bkstorctl: .*belongs to"

# A disk with something on it (an ext4 superblock's magic) needs --force.
truncate -s 64M "$tmp/x0"
printf '\123\357' | dd of="$tmp/x0" bs=1 seek=1080 conv=notrunc 2>/dev/null
run array add-spare "$tmp/x0" "$@" "$tmp/s0"
expect_rc 1 "add-spare of a disk with an ext4 signature, no --force"
grep_check "the message names the file system and --force" "$tmp/err" "ext2/3/4 file system.*--force"
run array replace "$tmp/d0" "$tmp/x0" "$@" "$tmp/s0"
expect_rc 1 "replace onto a disk with an ext4 signature, no --force"
[ "$(od -An -tx1 -j1080 -N2 "$tmp/x0" | tr -d ' ')" = 53ef ] && ok "the disk was not written" ||
	fail "the ext4 signature was overwritten"
# array create checks its disks the same way: a member or a spare with content
# needs --force, and nothing is written without it.
truncate -s 64M "$tmp/c0" "$tmp/c1" "$tmp/c2" "$tmp/c3" "$tmp/c4"
run array create --name withfs "$tmp/c0" "$tmp/c1" "$tmp/x0" "$tmp/c2"
expect_rc 1 "create with a member holding an ext4 signature, no --force"
grep_check "create: the message names the disk, the file system and --force" "$tmp/err" "x0 holds .*ext2/3/4 file system.*--force"
run array create --name withfs --spare "$tmp/x0" "$tmp/c0" "$tmp/c1" "$tmp/c2" "$tmp/c3"
expect_rc 1 "create with a spare holding an ext4 signature, no --force"
[ "$(od -An -tx1 -N4 "$tmp/c0" | tr -d ' ')" = 00000000 ] && ok "create refused: no member was written" ||
	fail "a member of the refused create was written"
run array create --name withfs --force "$tmp/c0" "$tmp/c1" "$tmp/x0" "$tmp/c2"
expect_rc 0 "create with --force takes the disk with content"

run array frobnicate
expect_rc 2 "unknown verb"
run array create --strip-size 12Q "$@"
expect_rc 2 "bad --strip-size"
run array fail slot1
expect_rc 2 "fail without disks"
run array replace "$tmp/d0" "$tmp/d1" "$@" "$tmp/s0"
expect_rc 2 "replace with NEW among the DISKs"
run array fail slot9 "$@" "$tmp/s0"
expect_rc 1 "fail of a slot that does not exist"

run array replace "$tmp/d0" "$tmp/n0" "$@" "$tmp/s0"
expect_rc 0 "array replace d0 with n0"
run array show --json "$tmp/n0" "$tmp/d1" "$tmp/d3" "$tmp/d4" "$tmp/d5" "$tmp/s0"
expect_rc 0 "array show after replace (without d0)"
json_check "n0 is ONLINE in slot 0" \
	'slot(0)["path"].endswith("/n0") and slot(0)["state"] == "ONLINE" and s["health"] == "ONLINE"'
run array show "$tmp/n0" "$tmp/d1" "$tmp/d3" "$tmp/d4" "$tmp/d5" "$tmp/s0"
grep_check "human show lists n0" "$tmp/out" "$tmp/n0"

# the old slot-2 disk still carries this array's label and is free: it may come back
run array add-spare "$tmp/d2" "$tmp/n0" "$tmp/d1" "$tmp/d3" "$tmp/d4" "$tmp/d5" "$tmp/s0"
expect_rc 0 "add-spare of the released disk d2"
run array import --json "$tmp/n0" "$tmp/d1" "$tmp/d2" "$tmp/d3" "$tmp/d4" "$tmp/d5" "$tmp/s0"
expect_rc 0 "array import"
json_check "import: ONLINE with d2 as spare" \
	's["health"] == "ONLINE" and len(spares) == 1 and spares[0]["path"].endswith("/d2")'

# offline / online / remove
set -- "$tmp/n0" "$tmp/d1" "$tmp/d2" "$tmp/d3" "$tmp/d4" "$tmp/d5" "$tmp/s0"
run array offline "$tmp/d3" "$@"
expect_rc 0 "array offline d3"
run array show --json "$@"
json_check "d3 OFFLINE, array DEGRADED, spare not claimed" \
	's["health"] == "DEGRADED" and slot(3)["state"] == "OFFLINE" and len(spares) == 1'
run array online "$tmp/d3" "$@"
expect_rc 0 "array online d3"
run array show --json "$@"
json_check "d3 back ONLINE after its rebuild" 's["health"] == "ONLINE" and slot(3)["state"] == "ONLINE"'
run array remove "$tmp/d2" "$@"
expect_rc 0 "array remove of the spare d2"
run array show --json "$@"
json_check "no spares left" 'len(spares) == 0'
run array remove "$tmp/d4" "$@"
expect_rc 1 "remove of an ONLINE member is refused"

finish
