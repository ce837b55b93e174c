#!/bin/sh
# test-daemon-disk-force: add-spare and replace do not overwrite a disk that holds
# something. Through the control API (bkstorctl and curl) and the dashboard: a file
# disk with an ext4 superblock signature, or random bytes in its first MiB, is
# refused without force (409, "needs_force", naming what was found; its bytes stay
# as they were) and accepted with it; a blank disk needs no force; a mounted loop
# device is refused even with force (skipped without losetup/mkfs.ext4/mount).
. "${top_srcdir:-.}/tests/daemon-lib.sh"
command -v curl >/dev/null 2>&1 || { echo "SKIP: curl missing"; exit 77; }
LOOP=""
MNT=""
cleanup2() {
	[ -n "$MNT" ] && umount "$MNT" 2>/dev/null
	[ -n "$LOOP" ] && losetup -d "$LOOP" 2>/dev/null
	cleanup
}
trap cleanup2 EXIT

d_start || exit 1
size=$(stat -c %s "$DEMO/disks/disk0.img")
api() { # PATH JSON: POST to the control API; body in $T/body, prints the status
	curl -s -o "$T/body" -w '%{http_code}' --unix-socket "$DEMO/api.sock" \
		-H 'Content-Type: application/json' -d "$2" "http://bkstor$1"
}
expect() { # DESC WANT GOT
	[ "$2" = "$3" ] && ok "$1 ($3)" || { bad "$1: got $3, wanted $2"; head -c 400 "$T/body"; echo; }
}
sum() { head -c 1048576 "$1" | sha256sum; }

# A fake ext4: the superblock magic 0xEF53 at byte 1080, the rest sparse.
truncate -s "$size" "$T/ext4.img"
printf '\123\357' | dd of="$T/ext4.img" bs=1 seek=1080 conv=notrunc 2>/dev/null
before=$(sum "$T/ext4.img")
check "add-spare onto an ext4 disk without --force" 1 ctl disk add-spare "$T/ext4.img"
grep -q "ext2/3/4 file system" "$T/err" && grep -q -- "--force" "$T/err" &&
	ok "the message names the file system and --force" || bad "message: $(cat "$T/err")"
[ "$(sum "$T/ext4.img")" = "$before" ] && ok "its first MiB is untouched" || bad "the disk was written"
expect "the API says needs_force" 409 "$(api /api/v1/disks/add-spare "{\"path\":\"$T/ext4.img\"}")"
[ "$(jget "$T/body" 'd["needs_force"] and "ext2/3/4" in d["found"]')" = True ] &&
	ok "needs_force and found in the reply" || bad "reply: $(cat "$T/body")"
check "replace onto the ext4 disk without --force" 1 ctl disk replace "$DEMO/disks/disk3.img" "$T/ext4.img"
[ "$(sum "$T/ext4.img")" = "$before" ] && ok "still untouched after the refused replace" || bad "written by replace"

# Random bytes somewhere in the first MiB, no known signature.
truncate -s "$size" "$T/rand.img"
# (its first byte set: a random zero there would move "the first at byte" by one)
{ printf '\377'; head -c 4095 /dev/urandom; } | dd of="$T/rand.img" bs=4096 seek=50 conv=notrunc 2>/dev/null
before=$(sum "$T/rand.img")
expect "add-spare onto random bytes, no force" 409 "$(api /api/v1/disks/add-spare "{\"path\":\"$T/rand.img\"}")"
[ "$(jget "$T/body" '"non-zero bytes" in d["found"] and "204800" in d["error"]')" = True ] &&
	ok "the reply says where the data is" || bad "reply: $(cat "$T/body")"
[ "$(sum "$T/rand.img")" = "$before" ] && ok "its first MiB is untouched" || bad "the disk was written"

# The dashboard's route: the same refusal, with a session.
WEB=$(sed -n 's/^listen = \(127.0.0.1:[0-9]*\)$/\1/p' "$DEMO/bkstord.conf" | tail -1)
PW=$(sed -n 's/.*Admin password: \([0-9a-f]*\) .*/\1/p' "$T/daemon.log" | head -1)
curl -s -c "$T/jar" -o "$T/body" -d "{\"password\":\"$PW\"}" "http://$WEB/api/v1/login" >/dev/null
CSRF=$(jget "$T/body" 'd["csrf"]')
c=$(curl -s -o "$T/body" -w '%{http_code}' -b "$T/jar" -H "X-CSRF-Token: $CSRF" \
	-d "{\"path\":\"$T/rand.img\"}" "http://$WEB/api/v1/disks/add-spare")
expect "dashboard add-spare onto random bytes, no force" 409 "$c"

# With force: accepted.
check "add-spare --force onto the ext4 disk" 0 ctl disk add-spare --force "$T/ext4.img"
expect "API add-spare with force onto random bytes" 200 "$(api /api/v1/disks/add-spare "{\"path\":\"$T/rand.img\",\"force\":true}")"
# A blank disk needs no force.
truncate -s "$size" "$T/blank.img"
check "add-spare onto a blank disk" 0 ctl disk add-spare "$T/blank.img"
check "disk list" 0 ctl disk list
for f in ext4 rand blank; do
	grep -q "$f.img" "$T/out" && ok "$f.img is a spare now" || bad "$f.img not listed"
done

# A mounted file system: never, force or not.
if command -v losetup >/dev/null && command -v mkfs.ext4 >/dev/null &&
	truncate -s "$size" "$T/loop.img" && LOOP=$(losetup -f --show "$T/loop.img" 2>/dev/null) &&
	mkfs.ext4 -q "$LOOP" 2>/dev/null && mkdir -p "$T/mnt" && mount "$LOOP" "$T/mnt" 2>/dev/null; then
	MNT="$T/mnt"
	expect "add-spare --force onto a mounted loop device" 409 \
		"$(api /api/v1/disks/add-spare "{\"path\":\"$LOOP\",\"force\":true}")"
	grep -q "is mounted on $MNT (ext4)" "$T/body" && ok "the reply names the mount point" ||
		bad "reply: $(cat "$T/body")"
	check "replace --force onto the mounted loop device" 1 ctl disk replace --force "$DEMO/disks/disk3.img" "$LOOP"
	grep -q "mounted on" "$T/err" && ok "replace: the message says mounted" || bad "message: $(cat "$T/err")"
	[ -f "$MNT/lost+found/." ] || [ -d "$MNT/lost+found" ] && ok "the mounted file system is intact" ||
		bad "lost+found is gone"
else
	echo "# losetup, mkfs.ext4 or mount not usable here: the mounted-device check is skipped"
	[ -n "$LOOP" ] && losetup -d "$LOOP" 2>/dev/null
	LOOP=""
fi
d_stop && ok "clean stop" || bad "stop"
d_finish
