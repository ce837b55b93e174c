#!/bin/sh
# tests/test-iscsi-scatter.sh: thousands of random 4 KiB writes over iSCSI into a LUN's
# write-back cache (32 in flight), SYNCHRONIZE CACHE, kill -9 right after its GOOD,
# restart: every byte of the LUN reads back as written. The cache goes to the store
# in batches (daemon/lun.c cache_apply_upto, store_write_batch: many pieces per map
# splice, hashed and compressed outside appl.mu), so this checks a batch's re-cut of
# the chunks around its pieces (half of them land in data written before, half in
# never-written space: holes), a second round over the first (its pieces fall in
# chunks the first round made, some on the same blocks), and that the SYNCHRONIZE
# CACHE answered only once all of it was durable. tests/iscsidd scatter writes the
# blocks (bytes made from a seed and the block number) and prints their numbers;
# the check here rebuilds the expected image and compares all of it.
. "${top_srcdir:-.}/tests/daemon-lib.sh"
dd_bin="${top_builddir:-.}/tests/iscsidd"
[ -x "$dd_bin" ] || { echo "SKIP: tests/iscsidd not built (libiscsi-dev missing)"; exit 77; }

d_start || exit 1
IPORT=$(sed -n '/^\[iscsi\]/,/^\[/s/^listen *= *127.0.0.1://p' "$DEMO/bkstord.conf" | head -1)
[ -n "$IPORT" ] || { echo "FAIL - the demo has no [iscsi] listen"; exit 1; }
ctl lun create scat 128M >/dev/null || { echo "FAIL - lun create"; exit 1; }
IQN=$(ctl --json status | python3 -c 'import json,sys; print(json.load(sys.stdin)["iscsi"]["iqn_prefix"])' 2>/dev/null)
[ -n "$IQN" ] || IQN="iqn.2026-12.io.bkstor:demo"
URL="iscsi://127.0.0.1:$IPORT/$IQN:scat/0"

# 40 MiB of backup-like data at the start; the scatter covers the first 80 MiB.
make_base "$T/base" 40
check "write the base data" 0 "$dd_bin" "$URL" put "$T/base"
check "round 1: 6000 random 4 KiB writes, SYNCHRONIZE CACHE" 0 \
	sh -c "'$dd_bin' '$URL' scatter 11 6000 32 80 >'$T/list1'"
check "round 2: 6000 more over the same 80 MiB, SYNCHRONIZE CACHE" 0 \
	sh -c "'$dd_bin' '$URL' scatter 22 6000 32 80 >'$T/list2'"
d_kill9
d_start || exit 1
check "round 2's blocks read back" 0 sh -c "'$dd_bin' '$URL' scattercheck 22 6000 80 >'$T/check2'"
check "read the first 80 MiB" 0 "$dd_bin" "$URL" get "$T/got" 83886080
python3 - "$T/base" "$T/list1" "$T/list2" "$T/got" <<'PY' && ok "all 80 MiB as written (base, round 1, round 2)" || bad "the LUN differs from what was written"
import sys
M = (1 << 64) - 1
def block(seed, blk):
    # tests/iscsidd.c scatter_bytes
    x = ((seed * 0x9e3779b97f4a7c15) ^ ((blk + 1) * 0xbf58476d1ce4e5b9)) & M
    x |= 1
    out = bytearray(4096)
    for i in range(0, 4096, 8):
        x ^= (x << 13) & M
        x ^= x >> 7
        x ^= (x << 17) & M
        out[i:i + 8] = x.to_bytes(8, "little")
    return out
img = bytearray(80 << 20)
base = open(sys.argv[1], "rb").read()
img[:len(base)] = base
l1 = [int(x) for x in open(sys.argv[2])]
l2 = [int(x) for x in open(sys.argv[3])]
assert len(l1) == 6000 and len(l2) == 6000, (len(l1), len(l2))
for seed, lst in ((11, l1), (22, l2)):
    for b in lst:
        img[b * 4096:(b + 1) * 4096] = block(seed, b)
got = open(sys.argv[4], "rb").read()
n_in_base = sum(1 for b in l1 + l2 if b * 4096 < len(base))
both = len(set(l1) & set(l2))
print("blocks in the base data: %d of 12000; written in both rounds: %d" % (n_in_base, both))
if got != img:
    bad = [i for i in range(0, len(img), 4096) if got[i:i + 4096] != img[i:i + 4096]]
    print("%d blocks differ, first at block %d" % (len(bad), bad[0] // 4096))
    sys.exit(1)
PY
d_stop || bad "clean stop"
d_finish
