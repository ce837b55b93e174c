#!/bin/sh
# test-daemon-full: bkstord on small disks fills up and recovers without a restart.
# Puts through bkstorctl until one is refused with a clear error; status (JSON and
# human) says "full: delete backups or add disks"; the daemon stays writable for
# deletes (bkstorctl rm, one by one and -r), gc runs, and a put is accepted again;
# below gc_auto_free (raised by SIGHUP at the end) a collection starts by itself;
# a restart (SIGTERM, exit 0) keeps everything; verify is clean and every surviving
# file reads back identical. (The old daemon latched its pool read-only at the first
# commit after the array filled: every later commit, delete and gc failed until a
# restart, and what was not committed was lost.)
. "${top_srcdir:-.}/tests/daemon-lib.sh"

# A demo configuration, then small blank disks and 64 KiB strips in place of the
# demo's: the first start with --demo makes a new array on them.
d_start || exit 1
d_stop || bad "first stop"
for f in "$DEMO"/disks/*.img; do rm -f "$f"; truncate -s 20M "$f"; done
sed -i 's/^strip_size = .*/strip_size = 64K/' "$DEMO/bkstord.conf"
# The subject is the administrator's way out (rm, gc): no collection of its own.
sed -i '/^\[store\]/a gc_auto_free = 0' "$DEMO/bkstord.conf"
"$bkstord" --demo "$DEMO" >>"$T/daemon.log" 2>&1 &
DPID=$!
d_wait_api || { bad "daemon on small disks did not come up"; d_finish; }
ok "bkstord on 8 + 1 disks of 20 MiB"
check "status --json" 0 ctl --json status
jget "$T/out" 'd["capacity"]["full"]' | grep -qx False && ok "not full at first" || bad "full at first"
check "mkdir /b/old" 0 ctl mkdir -p /b/old
check "mkdir /b/keep" 0 ctl mkdir -p /b/keep

# Fill: 3 MiB files of random bytes (no dedup, no compression), alternating between
# the two directories, until a put is refused.
i=0
refused=""
while [ $i -lt 100 ]; do
	i=$((i + 1))
	head -c 3M /dev/urandom >"$T/f$i"
	dir=keep; [ $((i % 2)) = 0 ] && dir=old
	if ctl put "$T/f$i" "/b/$dir/f$i" >"$T/out" 2>"$T/err"; then
		echo "$dir/f$i" >>"$T/stored"
	else
		refused=$i
		break
	fi
done
nstored=$(wc -l <"$T/stored")
[ -n "$refused" ] && [ "$nstored" -ge 8 ] && ok "put $nstored files, file $refused refused" ||
	bad "no refusal after $i puts ($nstored stored)"
grep -qi "full" "$T/err" && grep -q "delete backups" "$T/err" &&
	ok "the refusal says why: $(head -c 200 "$T/err" | tr '\n' ' ')" ||
	bad "refusal message: $(cat "$T/err")"
check "ls after the refusal (the daemon still serves)" 0 ctl ls /b/keep
check "status --json when full" 0 ctl --json status
cp "$T/out" "$T/full.json"
[ "$(jget "$T/full.json" 'd["capacity"]["full"]')" = True ] && ok "capacity.full is true" ||
	bad "capacity.full: $(jget "$T/full.json" 'd["capacity"]')"
# (Full ends only some rows above the reserve: a commit since the refusal may have
# made the reserve, which follows the index's memtable, a little smaller.)
[ "$(jget "$T/full.json" 'd["capacity"]["rows_free"] <= d["capacity"]["rows_reserved"] + 8')" = True ] &&
	ok "free rows $(jget "$T/full.json" 'd["capacity"]["rows_free"]') are down to the reserve $(jget "$T/full.json" 'd["capacity"]["rows_reserved"]')" ||
	bad "rows: $(jget "$T/full.json" 'd["capacity"]')"
[ "$(jget "$T/full.json" 'd["capacity"]["full_action"]')" = "full: delete backups or add disks" ] &&
	ok "capacity.full_action" || bad "full_action"
check "status (human) when full" 0 ctl status
grep -q "full: delete backups or add disks" "$T/out" && ok "status says: full: delete backups or add disks" ||
	bad "status output: $(cat "$T/out")"
check "a small put is refused too" 1 ctl put "$T/f1" /b/keep/small
check "a commit still succeeds when full" 0 ctl commit
check "events mention the full store" 0 ctl events
grep -q "full: delete backups or add disks" "$T/out" && ok "a warning event when the store filled" ||
	bad "no event: $(tail -5 "$T/out")"

# Recover: delete, collect, put again, without a restart.
first_old=$(grep '^old/' "$T/stored" | head -1)
check "rm one file (/b/$first_old)" 0 ctl rm "/b/$first_old"
check "rm -r /b/old (the rest of the old backups)" 0 ctl rm -r /b/old
check "the deleted file is gone" 1 ctl stat "/b/$first_old"
check "gc start --wait" 0 ctl gc start --wait
check "status --json after gc" 0 ctl --json status
[ "$(jget "$T/out" 'd["capacity"]["full"]')" = False ] && ok "no longer full after rm + gc" ||
	bad "still full: $(jget "$T/out" 'd["capacity"]')"
check "status (human) after gc" 0 ctl status
grep -q "full: delete" "$T/out" && bad "status still says full" || ok "status no longer says full"
head -c 3M /dev/urandom >"$T/new1"
check "put accepted again" 0 ctl put "$T/new1" /b/keep/new1
check "mkdir accepted again" 0 ctl mkdir /b/newdir
check "get the new file" 0 ctl get /b/keep/new1 "$T/new1.back"
cmp -s "$T/new1" "$T/new1.back" && ok "new file identical" || bad "new file differs"

d_stop; rc=$?
[ "$rc" = 0 ] && ok "SIGTERM: clean stop, exit 0" || bad "SIGTERM: exit $rc"
d_start || { bad "restart"; d_finish; }
ok "restarted"
check "verify --wait" 0 ctl verify --wait
n=0
for p in $(grep '^keep/' "$T/stored"); do
	f=${p#keep/}
	if ctl get "/b/$p" "$T/back" 2>"$T/err" && cmp -s "$T/back" "$T/$f"; then
		n=$((n + 1))
	else
		bad "/b/$p differs after the restart"
	fi
done
nkeep=$(grep -c '^keep/' "$T/stored")
[ "$n" = "$nkeep" ] && ok "all $n kept files identical after the restart" || bad "$n of $nkeep kept files"
check "get the new file after the restart" 0 ctl get /b/keep/new1 "$T/new1.again"
cmp -s "$T/new1" "$T/new1.again" && ok "new file identical after the restart" || bad "new file after restart"
check "ls /b (old is gone)" 0 ctl ls /b
grep -q "old" "$T/out" && bad "old still listed" || ok "old is gone"
# The daemon collects by itself when the free rows fall below gc_auto_free (SIGHUP).
sed -i 's/^gc_auto_free = .*/gc_auto_free = 0.99/' "$DEMO/bkstord.conf"
kill -HUP "$DPID"
auto=0
for _ in $(seq 1 50); do
	grep -q "garbage collection started by itself" "$T/daemon.log" && { auto=1; break; }
	sleep 0.2
done
[ $auto = 1 ] && ok "a collection starts by itself below gc_auto_free" ||
	bad "no automatic collection: $(tail -3 "$T/daemon.log")"
check "verify after the automatic collection" 0 ctl verify --wait
d_stop; rc=$?
[ "$rc" = 0 ] && ok "final stop, exit 0" || bad "final stop: exit $rc"
d_finish
