#!/bin/sh
# bench/iscsi.sh [MB]: bkstor's iSCSI target against tgt 1.0.85 (Debian tgtd, a
# sparse file LUN of the same size in the same directory), in one run on this
# machine, over loopback, with the same client (tests/iscsidd over libiscsi):
#   - sequential 1 MiB WRITE(16)s of MB megabytes (default 512), 8 in flight, data
#     that neither deduplicates nor compresses (random bytes with a counter in every
#     4 KiB: bkstor's worst case), then SYNCHRONIZE CACHE (in the time);
#   - sequential 1 MiB READ(16)s of the same MB, 8 in flight;
#   - random 4 KiB writes, 32 in flight, MB/16 megabytes, then SYNCHRONIZE CACHE;
#   - bkstord's CPU seconds in each of the three (iscsi_*_cpu_s).
# Prints iscsi_* and tgt_* rates and the ratios iscsi_read_vs_tgt (target >= 1.0),
# iscsi_write_vs_tgt (>= 0.8; tgt stores plain bytes in a file), and
# iscsi_randwrite_4k_iops. Needs tgt and a build with tests/iscsidd
# (libiscsi-dev); run as root (tgtd).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$top/build}
client="$build/tests/iscsidd"
ctl="$build/cli/bkstorctl"
mb=${1:-512}
[ -x "$client" ] || { echo "iscsi.sh: $client not built (libiscsi-dev)" >&2; exit 1; }
command -v tgtd >/dev/null || { echo "iscsi.sh: tgtd missing (tgt)" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/var/tmp}/bkstor-iscsi-XXXXXX")
dpid=""; tpid=""; cport=""
cleanup() {
	[ -n "$dpid" ] && kill "$dpid" 2>/dev/null && wait "$dpid" 2>/dev/null
	[ -n "$tpid" ] && tgt_stop "$cport" "$tpid"
	rm -rf "$work"
}
trap cleanup EXIT
# tgtd ignores SIGTERM while it has targets: delete them, shut it down, then make sure.
tgt_stop() { # CONTROL_PORT PID
	tgtadm -C "$1" --op delete --mode target --tid 1 --force >/dev/null 2>&1
	tgtadm -C "$1" --op delete --mode system >/dev/null 2>&1
	for _ in $(seq 20); do kill -0 "$2" 2>/dev/null || break; sleep 0.1; done
	kill -9 "$2" 2>/dev/null
	wait "$2" 2>/dev/null
}
freeport() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
size_mb=$((mb * 2))

# CPU seconds (user + system) process PID has used
cpu_s() { awk '{printf "%.2f", ($14 + $15) / 100}' "/proc/$1/stat"; }

# run NAME URL [PID]: the three measurements, NAME_key value lines; with PID, the
# server's CPU seconds for each (the machine is shared: rates are noisy, CPU less so)
run() {
	c0=${3:+$(cpu_s "$3")}
	"$client" "$2" perf seqwrite "$mb" 8 1048576 | sed "s/^seqwrite/$1_seqwrite/"
	c1=${3:+$(cpu_s "$3")}
	"$client" "$2" perf seqread "$mb" 8 1048576 | sed "s/^seqread/$1_seqread/"
	c2=${3:+$(cpu_s "$3")}
	"$client" "$2" perf randwrite $((mb / 16)) 32 4096 | sed "s/^randwrite/$1_randwrite_4k/"
	if [ -n "${3:-}" ]; then
		c3=$(cpu_s "$3")
		echo "$1_seqwrite_cpu_s $(echo "$c1 $c0" | awk '{printf "%.2f", $1 - $2}')"
		echo "$1_seqread_cpu_s $(echo "$c2 $c1" | awk '{printf "%.2f", $1 - $2}')"
		echo "$1_randwrite_4k_cpu_s $(echo "$c3 $c2" | awk '{printf "%.2f", $1 - $2}')"
	fi
}

# bkstor: the demo daemon (disks in $work), a LUN of size_mb.
port=$(freeport)
"$build/daemon/bkstord" --demo "$work/demo" --port "$port" >"$work/daemon.log" 2>&1 &
dpid=$!
export BKSTOR_CLIENT="$work/demo/client.conf"
for _ in $(seq 300); do "$ctl" status >/dev/null 2>&1 && break; sleep 0.1; done
iport=$(sed -n 's/.*iscsi: serving on [^:]*:\([0-9]*\),.*/\1/p' "$work/daemon.log" | tail -1)
pfx=$(sed -n 's/.*targets \(iqn[^ ]*\):<lun>.*/\1/p' "$work/daemon.log" | tail -1)
[ -n "$iport" ] || { echo "iscsi.sh: the demo serves no iSCSI" >&2; tail "$work/daemon.log"; exit 1; }
"$ctl" lun create bench "${size_mb}M" >/dev/null
run iscsi "iscsi://127.0.0.1:$iport/$pfx:bench/0" "$dpid" >"$work/bk.txt"
cat "$work/bk.txt"
kill "$dpid"; wait "$dpid" 2>/dev/null || true; dpid=""

# tgt: a sparse file of the same size next to the demo's disks.
tport=$(freeport)
cport=$((100 + $$ % 30000)) # tgtadm takes at most 32767
truncate -s "${size_mb}M" "$work/tgt.img"
tgtd -f -C "$cport" --iscsi "portal=127.0.0.1:$tport" >"$work/tgtd.log" 2>&1 &
tpid=$!
for _ in $(seq 50); do tgtadm -C "$cport" --lld iscsi --op show --mode target >/dev/null 2>&1 && break; sleep 0.1; done
tgtadm -C "$cport" --lld iscsi --op new --mode target --tid 1 -T iqn.2026-12.org.debian.tgt:bench
tgtadm -C "$cport" --lld iscsi --op new --mode logicalunit --tid 1 --lun 1 -b "$work/tgt.img"
tgtadm -C "$cport" --lld iscsi --op bind --mode target --tid 1 -I ALL
run tgt "iscsi://127.0.0.1:$tport/iqn.2026-12.org.debian.tgt:bench/1" >"$work/tgt.txt"
cat "$work/tgt.txt"

v() { sed -n "s/^$1 //p" "$2"; }
python3 - "$(v iscsi_seqread_mbs "$work/bk.txt")" "$(v tgt_seqread_mbs "$work/tgt.txt")" \
	"$(v iscsi_seqwrite_mbs "$work/bk.txt")" "$(v tgt_seqwrite_mbs "$work/tgt.txt")" \
	"$(v iscsi_randwrite_4k_iops "$work/bk.txt")" <<'PY'
import sys
br, tr, bw, tw, ri = map(float, sys.argv[1:])
print("iscsi_read_vs_tgt %.2f" % (br / tr))
print("iscsi_write_vs_tgt %.2f" % (bw / tw))
print("iscsi_randwrite_4k_iops %.0f" % ri)
PY
