#!/bin/sh
# test-daemon-e2e: bkstord --demo in a temporary directory; five backup generations
# (2% change each) put through bkstorctl and got back byte-identical (sha256); the
# daemon restarted (SIGTERM: exit 0) and everything got again; ls/stat/mv/rm; the
# status figures (objects, logical bytes, dedup ratio) checked.
. "${top_srcdir:-.}/tests/daemon-lib.sh"

make_base "$T/base" 24
gens "$T/base" "$T/gens" 5
d_start || exit 1
ok "bkstord --demo is up"
[ -f "$DEMO/client.conf" ] && [ "$(stat -c %a "$DEMO/client.conf")" = 600 ] &&
	ok "client.conf written, mode 0600" || bad "client.conf"
# The banner's first commands work as printed on a new demo.
check "the banner's put (the demo made /backups)" 0 ctl put /etc/services /backups/services
check "the banner's ls" 0 ctl ls /backups
check "mkdir /backups/more" 0 ctl mkdir /backups/more
total=$(stat -c %s /etc/services)
for g in 1 2 3 4 5; do
	f="$T/gens/gen0$g.img"
	check "put generation $g" 0 ctl put "$f" "/backups/gen$g"
	total=$((total + $(stat -c %s "$f")))
done
for g in 1 2 3 4 5; do
	check "get generation $g" 0 ctl get "/backups/gen$g" "$T/back$g"
	[ "$(sha256sum <"$T/back$g")" = "$(sha256sum <"$T/gens/gen0$g.img")" ] &&
		ok "generation $g identical (sha256)" || bad "generation $g differs"
done
# A plain PUT is chunked, fingerprinted and its new chunks compressed by the daemon
# outside its lock (store_put_known / store_put_prepared), with the store's
# parameters: the cut points must be the store's own, so generation 1 again, and
# again from the client's own chunker, is all known.
check "generation 1 again (daemon-side chunking, all known)" 0 ctl --json put "$T/gens/gen01.img" /backups/again1
cp "$T/out" "$T/again1.json"
check "generation 1 again (source dedup)" 0 ctl --json put --dedup "$T/gens/gen01.img" /backups/again2
cp "$T/out" "$T/again2.json"
check "generation 1 again (for its chunk count)" 0 ctl --json put "$T/gens/gen01.img" /backups/again3
g1=$(jget "$T/again1.json" 'd["chunks"]')
[ "$(jget "$T/again1.json" 'd["chunks_new"] == 0 and d["bytes_new"] == 0 and d["size"] == '"$(stat -c %s "$T/gens/gen01.img")")" = True ] &&
[ "$(jget "$T/again2.json" 'd["chunks_new"] == 0 and d["chunks"] == '"$g1")" = True ] &&
[ "$(jget "$T/out" 'd["chunks_new"] == 0 and d["chunks"] == '"$g1")" = True ] &&
	ok "generation 1 put again: $g1 chunks, none new, by the daemon's chunking and the client's" ||
	bad "generation 1 put again: $(cat "$T/again1.json" "$T/again2.json" "$T/out")"
total=$((total + 3 * $(stat -c %s "$T/gens/gen01.img")))
check "get generation 1 again" 0 ctl get /backups/again1 "$T/back-again1"
cmp -s "$T/back-again1" "$T/gens/gen01.img" && ok "generation 1 again identical" ||
	bad "generation 1 again differs"
check "put over an existing file without --overwrite" 1 ctl put "$T/gens/gen01.img" /backups/gen1
check "get of a missing file" 1 ctl get /backups/nope "$T/nope"
[ -e "$T/nope" ] && bad "a failed get left a file" || ok "a failed get leaves no file"
check "ls /backups" 0 ctl ls /backups
[ "$(grep -c gen "$T/out")" = 5 ] && ok "ls shows 5 files" || bad "ls: $(cat "$T/out")"
check "status --json" 0 ctl status --json
cp "$T/out" "$T/status1.json"
# Logical bytes: the files, plus the few bytes of the directories' own objects.
[ "$(jget "$T/status1.json" '0 <= d["capacity"]["logical_bytes"] - '"$total"' < 4096')" = True ] &&
	ok "logical bytes = the sum of the generations ($total) + directories" ||
	bad "logical bytes $(jget "$T/status1.json" 'd["capacity"]["logical_bytes"]') != $total"
[ "$(jget "$T/status1.json" 'd["capacity"]["dedup_ratio"] > 3.5')" = True ] &&
	ok "dedup ratio $(jget "$T/status1.json" 'round(d["capacity"]["dedup_ratio"],2)') > 3.5" ||
	bad "dedup ratio $(jget "$T/status1.json" 'd["capacity"]["dedup_ratio"]')"
[ "$(jget "$T/status1.json" 'd["health"]')" = ONLINE ] && ok "health ONLINE" || bad "health"
# The appliance lock is accounted: 10 puts and gets took it, for some time, never
# longer in one hold than in all of them.
[ "$(jget "$T/status1.json" 'd["locks"]["appl"]["acquisitions"] >= 10 and 0 < d["locks"]["appl"]["max_held_ns"] <= d["locks"]["appl"]["held_ns"] and d["locks"]["appl"]["contended"] <= d["locks"]["appl"]["acquisitions"]')" = True ] &&
	ok "locks.appl: $(jget "$T/status1.json" 'd["locks"]["appl"]')" ||
	bad "locks.appl: $(jget "$T/status1.json" 'd.get("locks")')"
check "status (human)" 0 ctl status
grep -q "ONLINE" "$T/out" && ok "status shows the array state" || bad "status output"

d_stop && ok "SIGTERM: clean stop, exit 0" || bad "SIGTERM exit code"
d_start || { bad "restart"; d_finish; }
ok "restarted"
for g in 1 2 3 4 5; do
	check "get generation $g after the restart" 0 ctl get "/backups/gen$g" "$T/again$g"
	cmp -s "$T/again$g" "$T/gens/gen0$g.img" && ok "generation $g identical after restart" ||
		bad "generation $g differs after restart"
done
check "status --json after restart" 0 ctl status --json
for k in logical_bytes stored_bytes objects; do
	a=$(jget "$T/status1.json" "d['capacity']['$k']"); b=$(jget "$T/out" "d['capacity']['$k']")
	[ "$a" = "$b" ] && ok "$k unchanged by the restart ($a)" || bad "$k: $a before, $b after"
done
# SIGHUP: a new client secret is taken without a restart; a broken file is not.
BOB=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
sed -i "/^\[clients\]/a bob = $BOB" "$DEMO/bkstord.conf"
sed "s/^name = .*/name = bob/; s/^secret = .*/secret = $BOB/" "$DEMO/client.conf" >"$T/bob.conf"
chmod 600 "$T/bob.conf"
check "an unknown client is refused before the reload" 1 ctl ls / --client "$T/bob.conf"
kill -HUP "$DPID"; sleep 0.5
check "SIGHUP: the new client logs in" 0 ctl ls / --client "$T/bob.conf"
cp "$DEMO/bkstord.conf" "$T/conf.good"
echo "bogus line" >>"$DEMO/bkstord.conf"
kill -HUP "$DPID"; sleep 0.5
grep -q "reload:.*keeping the running configuration" "$T/daemon.log" &&
	ok "a broken configuration on SIGHUP is refused and logged" || bad "no reload error logged"
check "still serving after the failed reload" 0 ctl ls /backups
cp "$T/conf.good" "$DEMO/bkstord.conf"
check "stat /backups/gen3" 0 ctl stat /backups/gen3
check "mv gen5 to latest" 0 ctl mv /backups/gen5 /backups/latest
check "get latest" 0 ctl get /backups/latest "$T/latest"
cmp -s "$T/latest" "$T/gens/gen05.img" && ok "renamed file intact" || bad "renamed file differs"
check "rm gen1" 0 ctl rm /backups/gen1
check "gen1 is gone" 1 ctl stat /backups/gen1
check "verify" 0 ctl verify --wait
d_stop && ok "final stop, exit 0" || bad "final stop"
d_finish
