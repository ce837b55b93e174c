#!/bin/sh
# tests/test-repl-prefetch.sh: the twin's FP_LIST lookups make their index reads
# outside appl.mu (store_put_prefetch_fps before each slice of 256 lookups,
# daemon/repl_recv.c, as the native --dedup PUT does in daemon/native_ops.c). A file is
# replicated to B, B is restarted (empty caches: the fingerprints only in an index run
# on its array), then a copy of the file is put on A: every chunk is a duplicate on B,
# so B's lookups need the run's entry blocks and the old segments' tables. B's status
# capacity.index_block_reads (reads made by lookups, under the lock) must stay near 0
# and index_prefetch_reads (made without the lock) carry them; the copy is
# byte-identical on B. (Before, every one of those reads was made under appl.mu, and
# nothing was prefetched.)
. "${top_srcdir:-.}/tests/repl-lib.sh"
MB=${REPL_BASE_MB:-64}

r_make a "$PA" "$RA" 168h && r_make b "$PB" "$RB" 168h || exit 1
r_start a && r_start b || exit 1
check "pair A with B" 0 r_pair
make_base "$T/base" "$MB"
ca put "$T/base" /backup/host1/a.img -p >/dev/null || bad "put a.img on A"
r_synced 120 && ok "a.img replicated" || bad "a.img: no lag 0 in 120 s"
check "commit on B" 0 cb commit
check "B stops" 0 r_stop b
r_start b || exit 1
bcap() { # FIELD of B's status capacity object (a copy up to 250 ms old)
	sleep 0.3
	cb --json status >"$T/st.json" && jget "$T/st.json" 'd["capacity"].get("'"$1"'", 0)'
}
r0=$(bcap index_block_reads)
p0=$(bcap index_prefetch_reads)
ca put "$T/base" /backup/host1/b.img -p >/dev/null || bad "put b.img on A"
r_synced 120 && ok "b.img replicated" || bad "b.img: no lag 0 in 120 s"
r1=$(bcap index_block_reads)
p1=$(bcap index_prefetch_reads)
locked=$((r1 - r0))
pre=$((p1 - p0))
echo "# B after its restart: $locked index reads under the lock, $pre prefetched"
# Some may stay under the lock: a commit between a prefetch's plan and its install
# drops it (as in test-daemon-dedup-prefetch.sh), more often on a loaded machine (CI:
# 19 under the lock, 34 prefetched). Without the prefetch all are under it (23, 0).
[ "$pre" -ge 4 ] && [ "$locked" -lt "$pre" ] &&
	ok "B's FP_LIST lookups: $locked index reads under the lock, $pre prefetched outside it" ||
	bad "B's FP_LIST lookups: $locked index reads under the lock, $pre prefetched outside it"
same b /backup/host1/b.img "$T/base" && ok "B: b.img byte-identical" || bad "B: b.img differs"
check "A stops cleanly" 0 r_stop a
check "B stops cleanly" 0 r_stop b
r_finish
