#!/bin/sh
# test-daemon-dedup-prefetch: a source-dedup PUT (bkstorctl put --dedup: FP_LIST,
# FP_NEED) makes its index reads outside appl.mu, as a plain PUT's rounds do
# (store_put_prefetch_fps before an FP_LIST's lookups, daemon/native_ops.c). A file is
# put with --dedup, committed, the daemon restarted (empty caches: its fingerprints
# only in an index run on the array), and the same file put again with --dedup: every
# chunk is a duplicate, so the lookups need the run's entry blocks and the old
# segments' tables. The status document's capacity.index_block_reads (reads made by
# lookups, under the lock) must stay near 0 and index_prefetch_reads (made without
# the lock) carry them; the copy reads back identical, and so does a changed copy put
# the same way (new chunks among the duplicates). (Before the prefetch was used
# for FP_LISTs every one of those reads was made under the lock.)
. "${top_srcdir:-.}/tests/daemon-lib.sh"

make_base "$T/base" 64
d_start || exit 1
check "mkdir /d" 0 ctl mkdir /d
check "put --dedup a" 0 ctl put --dedup --json "$T/base" /d/a
check "commit" 0 ctl commit
d_stop
d_start || exit 1
cap() { # FIELD of the status document's capacity object (a copy up to 250 ms old)
	sleep 0.3
	ctl status --json >"$T/st.json" && jget "$T/st.json" 'd["capacity"].get("'"$1"'", 0)'
}
r0=$(cap index_block_reads)
p0=$(cap index_prefetch_reads)
check "put --dedup b (all duplicates, cold index)" 0 ctl put --dedup --json "$T/base" /d/b
[ "$(jget "$T/out" 'd["source_dedup"]')" = True ] && ok "it used source dedup" ||
	bad "source dedup not used: $(cat "$T/out")"
r1=$(cap index_block_reads)
p1=$(cap index_prefetch_reads)
locked=$((r1 - r0))
pre=$((p1 - p0))
# A few reads may stay under the lock: a commit (every commit_interval) between plan
# and install drops a prefetch. Not the run: 1 of 36 here on a 64 MiB base; before,
# all (22 of 22, and nothing prefetched).
[ "$pre" -ge 4 ] && [ $((locked * 4)) -le "$pre" ] &&
	ok "index reads: $locked under the lock, $pre prefetched outside it" ||
	bad "index reads: $locked under the lock, $pre prefetched outside it"
check "get b" 0 ctl get /d/b "$T/back"
cmp -s "$T/back" "$T/base" && ok "b identical" || bad "b differs"
# A changed copy: known chunks, then new ones (CHUNK frames), then known again, in
# one list and across lists: those before the first new one go in during the
# lookups, the rest after each CHUNK (apply_known).
cp "$T/base" "$T/c"
for off in 5 20 21 40; do
	head -c 300000 /dev/urandom | dd of="$T/c" bs=1M seek="$off" conv=notrunc 2>/dev/null
done
check "put --dedup c (a changed copy)" 0 ctl put --dedup --json "$T/c" /d/c
cn=$(jget "$T/out" 'd["chunks_new"]')
ck=$(jget "$T/out" 'd["chunks"] - d["chunks_new"]')
[ "$cn" -ge 4 ] && [ "$ck" -ge 1000 ] && ok "c: $cn chunks sent, $ck known" ||
	bad "c: $cn chunks new, $ck known"
check "get c" 0 ctl get /d/c "$T/backc"
cmp -s "$T/backc" "$T/c" && ok "c identical" || bad "c differs"
d_stop
d_finish
