#!/bin/sh
# tests/test-nfs-basic.sh: the demo daemon over NFSv3 with real clients (libnfs-utils'
# nfs-ls, nfs-cp, nfs-cat and tests/nfsclient over libnfs): copy files in and back
# byte-identical (sha256), also through bkstorctl get; the C client's checks
# (directories, out-of-order writes, read-before-commit, truncate/extend, rename,
# remove, rmdir); many files in one directory listed with READDIRPLUS
# (NFS_MANY files, default 20 000); a restart: the files and the mount still there.
# Prints nfs-cp and bkstorctl put rates.
# Every CREATE is durable before its reply (an intent log record and a flush of every
# disk); the subject here is the protocol, not the disks' flush cost, so the demo's
# disks go to /dev/shm when it is there with room for the demo's disks (the demo wants
# 2304 MiB free; BKS_TEST_DIR overrides).
shm_free=$(df -Pm /dev/shm 2>/dev/null | awk 'NR == 2 {print $4}')
if [ -z "${BKS_TEST_DIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ] &&
   [ "${shm_free:-0}" -ge 3072 ]; then
	BKS_TEST_DIR=/dev/shm
	export BKS_TEST_DIR
fi
. "${top_srcdir:-.}/tests/daemon-lib.sh"

client="${top_builddir:-.}/tests/nfsclient"
for t in nfs-ls nfs-cp nfs-cat; do
	command -v $t >/dev/null 2>&1 || { echo "SKIP: $t missing (libnfs-utils)"; exit 77; }
done
[ -x "$client" ] || { echo "SKIP: tests/nfsclient not built (libnfs-dev missing)"; exit 77; }

d_start || exit 1
Q="?version=3&nfsport=$((PORT + 2))&mountport=$((PORT + 3))"
URL="nfs://127.0.0.1"
grep -q "nfs://127.0.0.1/?version=3&nfsport=$((PORT + 2))&mountport=$((PORT + 3))" "$T/daemon.log" &&
	ok "the demo prints the libnfs URL" || bad "no NFS URL in the demo's banner"
check "nfs-ls the export" 0 nfs-ls "$URL/$Q"

# Files: random, repeated content, small, empty. (libnfs cannot copy into the root
# of an export: it mounts the file's directory, and "" is no mount path.)
ctl mkdir /bk >/dev/null || bad "mkdir /bk"
head -c $((24 << 20)) /dev/urandom >"$T/rand"
head -c $((256 << 10)) /dev/urandom >"$T/blk"
for _ in $(seq 16); do cat "$T/blk"; done >"$T/rep"
head -c 1000 /dev/urandom >"$T/small"
: >"$T/empty"
t0=$(date +%s.%N)
check "nfs-cp 24 MiB random" 0 nfs-cp "$T/rand" "$URL/bk/rand$Q"
t1=$(date +%s.%N)
for f in rep small empty; do check "nfs-cp $f" 0 nfs-cp "$T/$f" "$URL/bk/$f$Q"; done
t2=$(date +%s.%N)
check "bkstorctl put of the same 24 MiB" 0 ctl put "$T/rand" /put/rand --parents
t3=$(date +%s.%N)
nfs_mbs=$(echo "24 / ($t1 - $t0)" | bc -l)
put_mbs=$(echo "24 / ($t3 - $t2)" | bc -l)
printf 'nfs_cp_write_mbs %.1f\nbkstorctl_put_mbs %.1f\n' "$nfs_mbs" "$put_mbs"
for f in rand rep small empty; do
	want=$(sha256sum <"$T/$f")
	got=$(nfs-cat "$URL/bk/$f$Q" | sha256sum)
	[ "$got" = "$want" ] && ok "nfs-cat $f byte-identical" || bad "nfs-cat $f differs"
	rm -f "$T/back"
	ctl get "/bk/$f" "$T/back" >/dev/null 2>&1
	[ "$(sha256sum <"$T/back")" = "$want" ] && ok "bkstorctl get /bk/$f byte-identical" ||
		bad "bkstorctl get /bk/$f differs"
done
rm -f "$T/back"
check "nfs-cp back to a local file" 0 nfs-cp "$URL/bk/rep$Q" "$T/back"
cmp -s "$T/back" "$T/rep" && ok "nfs-cp back byte-identical" || bad "nfs-cp back differs"
nfs-ls "$URL/bk$Q" >"$T/ls" 2>&1
grep -q " rand$" "$T/ls" && grep -q "25165824" "$T/ls" && ok "nfs-ls shows rand with its size" ||
	{ bad "nfs-ls /bk"; cat "$T/ls"; }

# The C client: one mount per directory it works in.
ctl mkdir /c >/dev/null
"$client" "$URL/c$Q" basic >"$T/basic" 2>&1; rc=$?
sed 's/^/  c: /' "$T/basic"
[ $rc = 0 ] && ok "nfsclient basic" || bad "nfsclient basic (exit $rc)"
MANY=${NFS_MANY:-20000}
t0=$(date +%s.%N)
"$client" "$URL/c$Q" many "$MANY" >"$T/many" 2>&1; rc=$?
t1=$(date +%s.%N)
sed 's/^/  c: /' "$T/many"
[ $rc = 0 ] && ok "nfsclient many $MANY ($(echo "$t1 - $t0" | bc) s)" || bad "nfsclient many (exit $rc)"

# status: the mounts and the export's counters
ctl status --json >"$T/st.json" 2>/dev/null
w=$(jget "$T/st.json" "d['nfs']['exports'][0]['bytes_written']")
m=$(jget "$T/st.json" "len(d['nfs']['mounts'])")
[ "$w" -ge $((24 << 20)) ] && [ "$m" -ge 1 ] && ok "status: nfs export bytes_written $w, $m mounts" ||
	bad "status nfs: bytes_written $w, mounts $m"

ctl status >"$T/st.txt" 2>&1
grep -q "export.*root / (rw): .* written" "$T/st.txt" && grep -q "127.0.0.1 /bk$" "$T/st.txt" &&
	ok "bkstorctl status shows the export and the mounts" || { bad "bkstorctl status nfs"; cat "$T/st.txt"; }

# restart: files intact, the same handles (the key is kept beside the config)
key1=$(sha256sum <"$DEMO/nfs_handle.key")
[ "$(stat -c %a "$DEMO/nfs_handle.key")" = 600 ] && ok "handle key mode 0600" || bad "handle key mode"
d_stop && ok "clean stop" || bad "clean stop"
d_start || exit 1
[ "$(sha256sum <"$DEMO/nfs_handle.key")" = "$key1" ] && ok "handle key kept" || bad "handle key changed"
"$client" "$URL/c$Q" verify >"$T/verify" 2>&1; rc=$?
sed 's/^/  c: /' "$T/verify"
[ $rc = 0 ] && ok "nfsclient verify after restart" || bad "nfsclient verify after restart"
[ "$(nfs-cat "$URL/bk/rand$Q" | sha256sum)" = "$(sha256sum <"$T/rand")" ] &&
	ok "rand byte-identical after restart" || bad "rand differs after restart"
d_stop && ok "clean stop" || bad "clean stop"
echo "$fails failed"
[ "$fails" = 0 ]
