#!/bin/sh
# bench/nfs.sh [MB | --quick | --creates]: bkstor's NFSv3 export against nfs-ganesha (Debian,
# VFS FSAL exporting a local directory), in one run on this machine, same client
# (libnfs-utils' nfs-cp / nfs-cat) for both, over loopback.
#   - a base of MB megabytes (default 600; --quick: 48 MB, 2 000 creates, one
#     repetition, for a smoke run) from real files and 5 generations (2% change
#     each, the shared gen_generations.py), as bench/ingest.sh makes them;
#   - bkstor (bkstord --demo): nfs-cp each generation into /backups (timed), nfs-cat
#     each back into a local file (timed) and compare sha256; the stored bytes;
#   - bkstorctl put of the same generations into a second, fresh demo store (so
#     both see the same dedup state: a put into the first store after the NFS copies
#     would find every chunk already there) - the native rate - and bkstorctl get
#     of each back (the native read; sha256 compared);
#   - nfs-ganesha: the same copies in and out of its export;
#   - the create rate: NFS_CREATE_N (20 000) empty files in one new directory,
#     with bench/nfscreate (raw CREATE calls on the directory's handle, see there),
#     one call in flight (what a kernel client does in one directory) and 16 in
#     flight, NFS_REPS (3) times each, on both servers; and NFS_CREATE_CONNS (4)
#     clients at once with one call in flight each (create_n in all).
# --creates runs only the create rates (no base, no transfers, no native put): a few
# minutes instead of twenty, for work on the sync path. BUILD_DIR picks the build
# (e.g. another worktree's, for a before/after in one sitting).
# Prints `name: value` lines: per generation rates, nfs_write_gbps / nfs_read_gbps
# (all 5 generations' bytes / their seconds), ganesha_*, native_put_gbps, the ratios
# nfs_write_vs_ganesha (target >= 0.8), nfs_read_vs_ganesha (>= 0.5),
# nfs_vs_native_put (>= 0.7), nfs_create_per_s, ganesha_create_per_s (medians of the
# repetitions, min-max beside them), nfs_create_vs_ganesha (>= 0.5), and the bytes
# each keeps after the 5 generations (bkstor: the store's physical rows, before and after
# a GC at min_live 0.9 as bench/ingest.sh does; ganesha: du of its export). Ratios are taken within this run only.
#
# ganesha 4.3 registers with rpcbind and exits when it cannot; a host-wide rpcbind
# would also catch the registrations of every other bkstord on the machine. So, as
# root, the whole run re-executes itself in private network and mount namespaces
# (unshare -n -m): its own loopback, its own rpcbind (on a tmpfs /run seen only
# there), nothing visible outside. Without them ganesha is skipped (and said so).
# Needs: libnfs-utils, nfs-ganesha nfs-ganesha-vfs rpcbind (contrib/install-deps.sh
# --bench), a build with bench/nfscreate (libnfs-dev).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
if [ "${BKS_NFS_NS:-}" = "" ]; then
	if [ "$(id -u)" = 0 ] && unshare -n -m true 2>/dev/null; then
		BKS_NFS_NS=1 exec unshare -n -m sh "$0" "$@"
	fi
	BKS_NFS_NS=0
fi
build=${BUILD_DIR:-$top/build}
ctl="$build/cli/bkstorctl"
creator="$build/bench/nfscreate"
mb=${1:-600}
create_n=${NFS_CREATE_N:-20000}
conns=${NFS_CREATE_CONNS:-4}
reps=${NFS_REPS:-3}
creates_only=0
if [ "$mb" = "--quick" ]; then mb=48; create_n=${NFS_CREATE_N:-2000}; reps=1; fi
if [ "$mb" = "--creates" ]; then mb=0; creates_only=1; fi
for t in nfs-cp nfs-cat nfs-ls; do
	command -v $t >/dev/null || { echo "nfs.sh: $t missing (libnfs-utils)" >&2; exit 1; }
done
[ -x "$creator" ] || { echo "nfs.sh: $creator not built (libnfs-dev)" >&2; exit 1; }
gen="$top/bench/gen_generations.py"

work=$(mktemp -d "${TMPDIR:-/var/tmp}/bkstor-nfs-XXXXXX")
dpid=""; gpid=""; rpid=""
cleanup() {
	for p in $dpid $gpid $rpid; do kill -9 "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT
now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
spread() { sort -n | awk 'NR==1{lo=$1} {hi=$1} END {printf "%.0f..%.0f\n", lo, hi}'; }
div() { echo "$1 / $2" | bc -l; }

if [ "$BKS_NFS_NS" = 1 ]; then
	ip link set lo up
	port=30000
else
	port=$((30000 + $$ % 20000))
fi
echo "nfs_bench_mb: $mb"
echo "nfs_bench_private_netns: $BKS_NFS_NS"

if [ $creates_only = 0 ]; then
# The base: real files (binaries, libraries, text), as backups hold.
{ for d in /usr/lib /usr/share /usr/bin; do tar cf - "$d" 2>/dev/null; done; } |
	head -c "$((mb << 20))" >"$work/base"
python3 "$gen" "$work/base" "$work/gens" 5 0.02 1 >/dev/null
rm -f "$work/base"
total=0
for g in 1 2 3 4 5; do
	f="$work/gens/gen0$g.img"
	total=$((total + $(stat -c %s "$f")))
	sha256sum <"$f" >"$work/gen0$g.sha"
done
echo "nfs_bench_total_bytes: $total"
fi

# write_gens NAME URLDIR Q: nfs-cp the generations in, one by one; prints per
# generation rates and NAME_write_seconds (the sum) into $work/NAME.w
write_gens() {
	name=$1; u=$2; q=$3; sum=0
	for g in 1 2 3 4 5; do
		f="$work/gens/gen0$g.img"
		cat "$f" >/dev/null # page cache: measure the server, not the source disk
		t0=$(now); nfs-cp "$f" "$u/gen0$g.img$q" >/dev/null; t1=$(now)
		dt=$(echo "$t1 - $t0" | bc -l); sum=$(echo "$sum + $dt" | bc -l)
		printf '%s_write_gen%d_gbps: %.3f\n' "$name" "$g" "$(echo "$(stat -c %s "$f") / $dt / 1000000000" | bc -l)"
	done
	echo "$sum" >"$work/$name.w"
}
# read_gens NAME URLDIR Q: nfs-cat each back into a local file (timed), sha256 after
read_gens() {
	name=$1; u=$2; q=$3; sum=0
	for g in 1 2 3 4 5; do
		f="$work/gens/gen0$g.img"
		rm -f "$work/back"
		t0=$(now); nfs-cat "$u/gen0$g.img$q" >"$work/back"; t1=$(now)
		dt=$(echo "$t1 - $t0" | bc -l); sum=$(echo "$sum + $dt" | bc -l)
		printf '%s_read_gen%d_gbps: %.3f\n' "$name" "$g" "$(echo "$(stat -c %s "$f") / $dt / 1000000000" | bc -l)"
		if [ "$(sha256sum <"$work/back")" != "$(cat "$work/gen0$g.sha")" ]; then
			echo "${name}_read_gen${g}: MISMATCH (sha256 differs)"; echo "$name" >>"$work/mismatch"
		fi
	done
	rm -f "$work/back"
	echo "$sum" >"$work/$name.r"
}
# creates NAME URLDIR Q: NFS_REPS runs of nfscreate per window, a new directory each
creates() {
	name=$1; u=$2; q=$3
	for w in 1 16; do
		: >"$work/$name.c$w"
		for r in $(seq 1 "$reps"); do
			v=$("$creator" "$u$q" "c${w}_$r" "$create_n" "$w" | sed -n 's/^create_per_s: //p')
			[ -n "$v" ] || { echo "${name}_create: FAILED (window $w)"; v=0; }
			echo "$v" >>"$work/$name.c$w"
		done
		# the server lists what it made (a create that did not happen shows here)
		seen=$(nfs-ls "$u/c${w}_1$q" | grep -c ' f[0-9]*$' || true)
		[ "$seen" = "$create_n" ] || echo "${name}_create_listing_w$w: $seen entries, wanted $create_n"
	done
	# NFS_CREATE_CONNS (4) clients at once, window 1 each, create_n in all: what
	# several clients (or kernel mounts) creating at once get (group commit)
	: >"$work/$name.cc"
	for r in $(seq 1 "$reps"); do
		t0=$(now); cpids=""
		for c in $(seq 1 "$conns"); do
			"$creator" "$u$q" "cc${c}_$r" "$((create_n / conns))" 1 >"$work/cc$c.out" &
			cpids="$cpids $!"
		done
		for p in $cpids; do wait "$p" || true; done # not the server
		t1=$(now)
		for c in $(seq 1 "$conns"); do
			grep -q '^create_per_s: ' "$work/cc$c.out" || echo "${name}_create_conns: FAILED (client $c)"
		done
		echo "$create_n / ($t1 - $t0)" | bc -l >>"$work/$name.cc"
	done
	printf '%s_create_%dconns_per_s: %.0f\n%s_create_%dconns_per_s_spread: %s\n' "$name" "$conns" \
		"$(median <"$work/$name.cc")" "$name" "$conns" "$(spread <"$work/$name.cc")"
	printf '%s_create_per_s: %.0f\n%s_create_per_s_spread: %s\n' "$name" "$(median <"$work/$name.c1")" \
		"$name" "$(spread <"$work/$name.c1")"
	printf '%s_create_window16_per_s: %.0f\n%s_create_window16_per_s_spread: %s\n' "$name" \
		"$(median <"$work/$name.c16")" "$name" "$(spread <"$work/$name.c16")"
}
physical() {
	"$ctl" status --json >"$work/status.json"
	python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["capacity"]["physical_bytes"])' "$work/status.json"
}
start_demo() { # DIR PORT
	"$build/daemon/bkstord" --demo "$1" --port "$2" >"$1.log" 2>&1 &
	dpid=$!
	export BKSTOR_CLIENT="$1/client.conf"
	for _ in $(seq 1 300); do "$ctl" status >/dev/null 2>&1 && return 0; sleep 0.1; done
	echo "nfs.sh: bkstord did not start:" >&2; tail "$1.log" >&2; exit 1
}
stop_demo() { kill -TERM "$dpid"; wait "$dpid" || true; dpid=""; }

# --- bkstor over NFS
start_demo "$work/demo" "$port"
Q="?version=3&nfsport=$((port + 2))&mountport=$((port + 3))"
U="nfs://127.0.0.1/backups"
if [ $creates_only = 1 ]; then
	creates nfs "$U" "$Q"
	stop_demo
else
write_gens nfs "$U" "$Q"
read_gens nfs "$U" "$Q"
nfs_phys_nogc=$(physical)
creates nfs "$U" "$Q"
"$ctl" gc start --min-live 0.9 --wait >/dev/null
nfs_phys=$(physical)
stop_demo

# --- native: bkstorctl put into a fresh store
start_demo "$work/demo2" "$((port + 10))"
"$ctl" mkdir /put >/dev/null
psum=0
for g in 1 2 3 4 5; do
	f="$work/gens/gen0$g.img"
	cat "$f" >/dev/null
	t0=$(now); "$ctl" put "$f" "/put/g$g" >/dev/null; t1=$(now)
	dt=$(echo "$t1 - $t0" | bc -l); psum=$(echo "$psum + $dt" | bc -l)
	printf 'native_put_gen%d_gbps: %.3f\n' "$g" "$(echo "$(stat -c %s "$f") / $dt / 1000000000" | bc -l)"
done
# and bkstorctl get back (the native read, to tell NFS's cost from the store's)
gsum=0
for g in 1 2 3 4 5; do
	f="$work/gens/gen0$g.img"
	rm -f "$work/back"
	t0=$(now); "$ctl" get "/put/g$g" "$work/back" >/dev/null; t1=$(now)
	dt=$(echo "$t1 - $t0" | bc -l); gsum=$(echo "$gsum + $dt" | bc -l)
	printf 'native_get_gen%d_gbps: %.3f\n' "$g" "$(echo "$(stat -c %s "$f") / $dt / 1000000000" | bc -l)"
	[ "$(sha256sum <"$work/back")" = "$(cat "$work/gen0$g.sha")" ] ||
		{ echo "native_get_gen${g}: MISMATCH (sha256 differs)"; echo native >>"$work/mismatch"; }
done
rm -f "$work/back"
stop_demo
fi
rm -rf "$work/demo" "$work/demo2"

# --- nfs-ganesha
gan=""
if ! command -v ganesha.nfsd >/dev/null || [ ! -e /usr/lib/x86_64-linux-gnu/ganesha/libfsalvfs.so ]; then
	gan="nfs-ganesha or nfs-ganesha-vfs not installed (contrib/install-deps.sh --bench)"
elif [ "$BKS_NFS_NS" != 1 ]; then
	gan="no private network namespace (needs root and unshare): ganesha needs rpcbind"
elif ! command -v rpcbind >/dev/null; then
	gan="rpcbind not installed"
fi
if [ -z "$gan" ]; then
	mount -t tmpfs bkstor-nfs-bench /run # private to this mount namespace
	mkdir -p /run/rpcbind
	rpcbind -f -w & rpid=$!
	G="$work/ganesha"
	mkdir -p "$G/export/backups" "$G/recov"
	gp=$((port + 20))
	cat >"$G/ganesha.conf" <<-EOF
	NFS_CORE_PARAM {
		NFS_Port = $gp; MNT_Port = $((gp + 1)); NLM_Port = $((gp + 2)); Rquota_Port = $((gp + 3));
		Protocols = 3; Enable_NLM = false; Enable_RQUOTA = false; Enable_UDP = false;
	}
	NFSV4 { Graceless = true; RecoveryBackend = fs; RecoveryRoot = "$G/recov"; }
	EXPORT {
		Export_Id = 1; Path = "$G/export"; Pseudo = "$G/export";
		Access_Type = RW; Squash = No_Root_Squash; Protocols = 3; Transports = TCP;
		SecType = sys; FSAL { Name = VFS; }
	}
	LOG { Default_Log_Level = EVENT; }
	EOF
	sleep 0.5
	ganesha.nfsd -F -f "$G/ganesha.conf" -p "$G/ganesha.pid" -L "$G/ganesha.log" -N NIV_EVENT &
	gpid=$!
	GQ="?version=3&nfsport=$gp&mountport=$((gp + 1))"
	GU="nfs://127.0.0.1$G/export/backups"
	up=0
	for _ in $(seq 1 100); do
		nfs-ls "$GU$GQ" >/dev/null 2>&1 && { up=1; break; }
		kill -0 "$gpid" 2>/dev/null || break
		sleep 0.2
	done
	if [ $up = 1 ] && [ $creates_only = 1 ]; then
		creates ganesha "$GU" "$GQ"
	elif [ $up = 1 ]; then
		write_gens ganesha "$GU" "$GQ"
		read_gens ganesha "$GU" "$GQ"
		gan_du=$(du -sb "$G/export" | cut -f1)
		gan_du_blocks=$(du -s -B1 "$G/export" | cut -f1)
		creates ganesha "$GU" "$GQ"
	else
		gan="ganesha did not answer: $(grep -E 'CRIT|MAJ|FATAL' "$G/ganesha.log" | tail -3 | tr '\n' ' ')"
	fi
	kill -TERM "$gpid" 2>/dev/null; wait "$gpid" 2>/dev/null || true; gpid=""
	kill -TERM "$rpid" 2>/dev/null; wait "$rpid" 2>/dev/null || true; rpid=""
fi

# --- summary
if [ $creates_only = 1 ]; then
	if [ -z "$gan" ]; then
		printf 'nfs_create_vs_ganesha: %.2f\nnfs_create_window16_vs_ganesha: %.2f\n' \
			"$(div "$(median <"$work/nfs.c1")" "$(median <"$work/ganesha.c1")")" \
			"$(div "$(median <"$work/nfs.c16")" "$(median <"$work/ganesha.c16")")"
	else
		echo "ganesha_skipped: $gan"
	fi
	exit 0
fi
gb() { echo "$total / $1 / 1000000000" | bc -l; }
w=$(gb "$(cat "$work/nfs.w")"); r=$(gb "$(cat "$work/nfs.r")"); p=$(gb "$psum"); ng=$(gb "$gsum")
printf 'nfs_write_gbps: %.3f\nnfs_read_gbps: %.3f\nnative_put_gbps: %.3f\nnfs_vs_native_put: %.2f\n' \
	"$w" "$r" "$p" "$(div "$w" "$p")"
printf 'native_get_gbps: %.3f\nnfs_read_vs_native_get: %.2f\n' "$ng" "$(div "$r" "$ng")"
echo "nfs_stored_physical_bytes_before_gc: $nfs_phys_nogc"
echo "nfs_stored_physical_bytes: $nfs_phys"
if [ -z "$gan" ]; then
	gw=$(gb "$(cat "$work/ganesha.w")"); gr=$(gb "$(cat "$work/ganesha.r")")
	printf 'ganesha_write_gbps: %.3f\nganesha_read_gbps: %.3f\n' "$gw" "$gr"
	printf 'nfs_write_vs_ganesha: %.2f\nnfs_read_vs_ganesha: %.2f\n' "$(div "$w" "$gw")" "$(div "$r" "$gr")"
	printf 'nfs_create_vs_ganesha: %.2f\nnfs_create_window16_vs_ganesha: %.2f\n' \
		"$(div "$(median <"$work/nfs.c1")" "$(median <"$work/ganesha.c1")")" \
		"$(div "$(median <"$work/nfs.c16")" "$(median <"$work/ganesha.c16")")"
	echo "ganesha_du_bytes: $gan_du"
	echo "ganesha_du_allocated_bytes: $gan_du_blocks"
	printf 'nfs_stored_vs_ganesha: %.3f\n' "$(div "$nfs_phys" "$gan_du")"
else
	echo "ganesha_skipped: $gan"
fi
if [ -f "$work/mismatch" ]; then echo "nfs_bench_mismatch: $(sort -u "$work/mismatch" | tr '\n' ' ')"; exit 1; fi
