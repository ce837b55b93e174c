#!/bin/sh
# test-daemon-putrace: four bkstorctl puts of the same new file at once. The daemon
# compresses a PUT's new chunks outside its lock (daemon/native_ops.c), so a chunk
# that one stream found new may be stored by another before the first takes the lock
# again: store_put_prepared must then drop the copy and share the stored chunk. Each
# of the four reads back identical (sha256); the store holds every chunk once: the
# replies' new chunks add up to one file's chunks, their stored bytes to the store's,
# and the store gained exactly those. A fifth put of the same file finds all.
. "${top_srcdir:-.}/tests/daemon-lib.sh"

make_base "$T/base" 24
d_start || exit 1
ok "bkstord --demo is up"
check "mkdir /race" 0 ctl mkdir /race
sleep 0.3 # the status document may be 250 ms old
check "status before" 0 ctl status --json
chunks0=$(jget "$T/out" 'd["capacity"]["unique_chunks"]')
stored0=$(jget "$T/out" 'd["capacity"]["stored_bytes"]')
pids=""
for i in 1 2 3 4; do
	ctl --json put "$T/base" "/race/f$i" >"$T/put$i.json" 2>"$T/put$i.err" &
	pids="$pids $!"
done
rc=0
for p in $pids; do wait "$p" || rc=1; done
[ $rc = 0 ] && ok "four concurrent puts" || bad "a put failed: $(cat "$T"/put*.err)"
sum=$(sha256sum <"$T/base")
for i in 1 2 3 4; do
	check "get f$i" 0 ctl get "/race/f$i" "$T/back$i"
	[ "$(sha256sum <"$T/back$i")" = "$sum" ] && ok "f$i identical (sha256)" ||
		bad "f$i differs"
done
check "the same file once more" 0 ctl --json put "$T/base" /race/f5
cp "$T/out" "$T/put5.json"
chunks=$(jget "$T/put5.json" 'd["chunks"]')
new=0
stored=0
for i in 1 2 3 4; do
	new=$((new + $(jget "$T/put$i.json" 'd["chunks_new"]')))
	stored=$((stored + $(jget "$T/put$i.json" 'd["bytes_stored"]')))
done
[ "$(jget "$T/put5.json" 'd["chunks_new"]')" = 0 ] && [ "$chunks" -gt 1000 ] &&
	ok "the fifth put: $chunks chunks, all known" || bad "fifth put: $(cat "$T/put5.json")"
# (A chunk of the file may be in the store already: the demo's own objects.)
[ "$new" -le "$chunks" ] && [ "$new" -ge $((chunks - 2)) ] &&
	ok "the four stored $new new chunks between them, one file's ($chunks)" ||
	bad "the four stored $new new chunks, one file has $chunks"
sleep 0.3 # the status document may be 250 ms old
check "status" 0 ctl status --json
cp "$T/out" "$T/status.json"
# The store gained what the replies said, plus the directory's pages (rewritten at
# every link: a few small chunks), never a second copy of a file's chunk (~5 KiB
# stored each, 1300 of them).
dchunks=$(jget "$T/status.json" 'd["capacity"]["unique_chunks"] - '"$chunks0")
dstored=$(jget "$T/status.json" 'd["capacity"]["stored_bytes"] - '"$stored0")
[ "$dchunks" -ge "$new" ] && [ "$dchunks" -le $((new + 20)) ] &&
[ "$dstored" -ge "$stored" ] && [ "$dstored" -le $((stored + 16384)) ] &&
	ok "the store gained $dchunks chunks, $dstored bytes: the replies' $new, $stored and the directory's" ||
	bad "store: $(jget "$T/status.json" 'd["capacity"]'), replies: $new chunks, $stored bytes"
check "verify" 0 ctl verify --wait
d_stop && ok "clean stop" || bad "stop"
d_finish
