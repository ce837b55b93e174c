#!/bin/sh
# tests/test-daemon-get.sh: bkstorctl get's write path (cli/nclient.c ncl_get). A file
# written into a regular file starts its writeback every 8 MiB (sync_file_range)
# while the rest arrives; into a pipe it does not. Each way, and from an offset, the
# bytes must come back equal. Then the file's first chunk is damaged beyond what
# RAID-6 repairs (tests/chunkbreak): a get into a file must fail and leave no file
# (neither DEST nor its .partial-*), a get to stdout must fail (the daemon's
# read of the chunk fails its check: the client gets an ERROR, not wrong bytes), and
# an undamaged file still comes back equal.
. "${top_srcdir:-.}/tests/daemon-lib.sh"
breaker="${top_builddir:-.}/tests/chunkbreak"
[ -x "$breaker" ] || { echo "SKIP: tests/chunkbreak not built (make check builds it)"; exit 77; }

# 20 MiB + a little of real files (compressible: the chunks are zstd in the store),
# a size no other object has (chunkbreak finds the object by it).
make_base "$T/f1" 20
SIZE=$(((20 << 20) + 12345))
head -c 12345 /dev/urandom >>"$T/f1"
[ "$(stat -c %s "$T/f1")" = "$SIZE" ] || bad "f1 is $(stat -c %s "$T/f1") bytes, not $SIZE"
head -c $((9 << 20)) /dev/urandom >"$T/f2"
d_start || exit 1
check "put f1" 0 ctl put "$T/f1" /backups/f1
check "put f2" 0 ctl put "$T/f2" /backups/f2

check "get f1 into a file" 0 ctl get /backups/f1 "$T/back1"
cmp -s "$T/back1" "$T/f1" && ok "f1 into a file: equal" || bad "f1 into a file differs"
ctl get /backups/f1 - >"$T/back1.out" 2>"$T/err" &&
	cmp -s "$T/back1.out" "$T/f1" && ok "f1 to stdout redirected to a file: equal" ||
	bad "f1 to stdout redirected to a file: $(cat "$T/err")"
# Appended after what the file holds: the writeback ranges start at the file's
# position, not at 0.
printf 'head' >"$T/back1.app"
ctl get /backups/f1 - >>"$T/back1.app" 2>"$T/err" &&
	{ printf 'head'; cat "$T/f1"; } | cmp -s - "$T/back1.app" &&
	ok "f1 appended to a file: equal" || bad "f1 appended to a file differs: $(cat "$T/err")"
ctl get /backups/f1 - 2>"$T/err" | cmp -s - "$T/f1" && ok "f1 through a pipe: equal" ||
	bad "f1 through a pipe differs: $(cat "$T/err")"
OFF=$(((3 << 20) + 777)); LEN=$(((12 << 20) + 5))
check "get f1 from an offset into a file" 0 ctl get --offset "$OFF" --length "$LEN" /backups/f1 "$T/part1"
tail -c +$((OFF + 1)) "$T/f1" | head -c "$LEN" | cmp -s - "$T/part1" &&
	ok "f1 [$OFF, +$LEN) into a file: equal" || bad "f1 from an offset differs"

d_stop || bad "bkstord stopped cleanly"
fp=$("$breaker" "$SIZE" "$DEMO"/disks/*.img 2>"$T/break.err")
sed 's/^/# /' "$T/break.err"
[ ${#fp} = 64 ] && ok "damaged chunk $fp of f1 on 3 strips of its row" ||
	{ bad "chunkbreak failed"; d_finish; }
d_start || exit 1

check "get of the damaged f1 into a file fails" 1 ctl get /backups/f1 "$T/bad1"
[ -e "$T/bad1" ] && bad "the failed get left $T/bad1" || ok "the failed get left no file"
ls "$T" | grep -q '^bad1\.partial-' && bad "the failed get left a .partial file" ||
	ok "the failed get left no .partial file"
ctl get /backups/f1 - >"$T/bad1.out" 2>"$T/err"
rc=$?
[ "$rc" != 0 ] && ok "get of the damaged f1 to stdout fails (exit $rc: $(head -c 200 "$T/err"))" ||
	bad "get of the damaged f1 to stdout succeeded"
cmp -s "$T/bad1.out" "$T/f1" && bad "the damaged f1 came back whole" ||
	ok "the damaged f1 did not come back as if whole"
check "get f2 (undamaged) into a file" 0 ctl get /backups/f2 "$T/back2"
cmp -s "$T/back2" "$T/f2" && ok "f2 into a file: equal" || bad "f2 into a file differs"
d_finish
