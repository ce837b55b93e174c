#!/bin/sh
# bench/ingest.sh [MB]: end-to-end ingest through the daemon, in one run on this
# machine. Starts bkstord --demo in a temporary directory, makes a base of MB
# megabytes (default 600) from real files and 5 generations (2% change each, the
# bench/gen_generations.py), puts them through bkstorctl over loopback, restores the
# last, then runs restic, borg and casync (bench/peers.sh) on the same files.
# Prints: ingest_first_gbps, ingest_dup_gbps (median of generations 2-5),
# restore_gbps (generation 5 to stdout, discarded), restore_file_gbps (into a file,
# fsynced, compared with the original afterwards), ingest_vs_best_peer (our dup
# throughput / the fastest peer's), restore_vs_best_peer (restore_file_gbps / the
# fastest of restic restore, borg extract and casync extract of generation 5, each
# into a file, synced), stored_vs_casync (rows the store uses / casync's store), and
# the raw figures. Also lock_held_fraction (median over the dup generations of: time the appliance
# lock was held during the put / the put's wall time, from the status document's
# locks.appl.held_ns) and streams4_vs_1 (aggregate rate of 4 concurrent puts of
# generations 2-5 / the rate of one put of generation 5, all to new paths, all
# data already stored: dup ingest). PEERS=0 skips bench/peers.sh. lock_held_fraction_cold
# and ingest_dup_cold_gbps: the same for generations 2-5 put again, each right after a
# commit (the index cold: COLD=0 skips); lock_held_fraction_dedup and
# ingest_dup_dedup_gbps: one source-dedup put (--dedup) of generation 5 after a commit.
# Storage: stored_vs_casync is the rows the store uses after the five puts, without
# a GC pass (physical_bytes_before_gc / casync's store); stored_vs_casync_after_gc
# after `gc --min-live 0.9`; store_rows_data/meta, store_chunk_bytes (chunks as
# stored) and store_data_fill (chunk bytes / data rows' bytes) say where the rows go.
# daemon_cpu_ns_per_byte_genN: bkstord's CPU time (all threads) during the put of
# generation N per byte (what bounds the rate on an idle machine: 2 cores less the
# client's share); daemon_ / client_cpu_ns_per_byte_restore and _restore_file: the
# same for the two restores, and bkstorctl's CPU per byte (needs /usr/bin/time).
# Compression levels (LEVELS=0 skips): generation 1 alone into a fresh store with
# zstd_level = zstd_level_busy = 1, then 3: ingest_first_gbps_levelL and
# stored_bytes_levelL (chunk bytes as stored), and the adaptive run's
# stored_bytes_gen1; then zstd_level 3 with zstd_level_busy 0 (deferred compression):
# ingest_first_gbps_deferred, daemon_cpu_ns_per_byte_first_deferred,
# stored_bytes_deferred_before_pass/after_pass, deferred_pass_seconds (the background
# pass's wall time) and daemon_cpu_ns_per_byte_deferred_pass (its CPU per ingested
# byte; gen 1 read back and compared). A second corpus (CORPUS2=0 skips): the first MB2 (default
# MB/2) megabytes of `tar -c /usr/share`, 5 generations at 2% (seed 2), into a
# fresh store and casync: ingest_first_gbps_share, stored_vs_casync_share.
# Client and server share the machine (2 cores here).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$top/build}
shared=${SHARED_DIR:-$top/../shared} # the generator; SHARED_DIR for a worktree
ctl="$build/cli/bkstorctl"
mb=${1:-600}
work=$(mktemp -d "${TMPDIR:-/var/tmp}/bkstor-ingest-XXXXXX")
dpid=""
trap '[ -n "$dpid" ] && kill -9 $dpid 2>/dev/null; rm -rf "$work"' EXIT
now() { date +%s.%N; }
# The appliance lock's held nanoseconds so far. The API serves a status copy up to
# 250 ms old: wait that out first.
held_ns() {
	sleep 0.3
	"$ctl" status --json >"$work/lock.json"
	python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["locks"]["appl"]["held_ns"])' "$work/lock.json"
}
median() { sort -n | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

# The base: real files (binaries, libraries, text), as backups hold.
{ for d in /usr/lib /usr/share /usr/bin; do tar cf - "$d" 2>/dev/null; done; } |
	head -c "$((mb << 20))" >"$work/base"
python3 "$top/bench/gen_generations.py" "$work/base" "$work/gens" 5 0.02 1
port=$((30000 + $$ % 20000))
# start_demo DIR [LEVEL [BUSY]]: bkstord --demo on DIR (made now), at zstd level LEVEL
# for every new chunk (zstd_level = zstd_level_busy) if given, else the defaults; with
# BUSY, zstd_level_busy = BUSY (0: deferred compression).
start_demo() {
	if [ -n "${2:-}" ]; then
		"$build/daemon/bkstord" --demo "$1" --port "$port" >"$1.log" 2>&1 &
		dpid=$!
		for _ in $(seq 1 100); do [ -f "$1/client.conf" ] && break; sleep 0.1; done
		export BKSTOR_CLIENT="$1/client.conf"
		for _ in $(seq 1 100); do "$ctl" status >/dev/null 2>&1 && break; sleep 0.1; done
		stop_demo
		sed -i "s/^\[store\]\$/[store]\nzstd_level = $2\nzstd_level_busy = ${3:-$2}/" "$1/bkstord.conf"
	fi
	"$build/daemon/bkstord" --demo "$1" --port "$port" >>"$1.log" 2>&1 &
	dpid=$!
	export BKSTOR_CLIENT="$1/client.conf"
	for _ in $(seq 1 100); do "$ctl" status >/dev/null 2>&1 && break; sleep 0.1; done
	"$ctl" mkdir /bench >/dev/null
}
stop_demo() { kill -TERM $dpid; wait $dpid || true; dpid=""; }
# capacity FIELD: a figure of the status document's capacity object (the API serves
# a copy up to 250 ms old: wait that out).
capacity() {
	sleep 0.3
	"$ctl" status --json >"$work/status.json"
	python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["capacity"].get(sys.argv[2], 0))' "$work/status.json" "$1"
}
rate_of() { echo "$1 / ($3 - $2) / 1000000000" | bc -l; } # bytes t0 t1
# The daemon's CPU seconds so far (user + system, all its threads): per byte, a
# figure the other sessions' load on this machine changes far less than rates.
dcpu() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$dpid/stat"; }
cpu_ns_per_byte() { echo "($3 - $2) * 1000000000 / $1" | bc -l; } # bytes c0 c1
start_demo "$work/demo"
: >"$work/dup.rates"
: >"$work/lock.fracs"
for g in 1 2 3 4 5; do
	f="$work/gens/gen0$g.img"
	size=$(stat -c %s "$f")
	cat "$f" >/dev/null # page cache: measure the appliance, not the source disk
	h0=$(held_ns)
	c0=$(dcpu)
	t0=$(now); "$ctl" put "$f" "/bench/g$g" >/dev/null; t1=$(now)
	c1=$(dcpu)
	h1=$(held_ns)
	printf 'daemon_cpu_ns_per_byte_gen%d: %.3f\n' "$g" "$(cpu_ns_per_byte "$size" "$c0" "$c1")"
	rate=$(echo "$size / ($t1 - $t0) / 1000000000" | bc -l)
	frac=$(echo "($h1 - $h0) / 1000000000 / ($t1 - $t0)" | bc -l)
	printf 'ingest_gen%d_gbps: %.3f\n' "$g" "$rate"
	printf 'lock_held_fraction_gen%d: %.3f\n' "$g" "$frac"
	if [ $g = 1 ]; then first=$rate; stored1=$(capacity stored_bytes); else echo "$rate" >>"$work/dup.rates"; echo "$frac" >>"$work/lock.fracs"; fi
done
dup=$(median <"$work/dup.rates")
lockfrac=$(median <"$work/lock.fracs")
size5=$(stat -c %s "$work/gens/gen05.img")
# timed OUT CMD...: CMD, its CPU seconds (user + system) into OUT (empty without
# /usr/bin/time).
timed() {
	o=$1; shift
	if [ -x /usr/bin/time ]; then
		/usr/bin/time -f '%U %S' -o "$o.t" "$@" && awk '{print $1 + $2}' "$o.t" >"$o"
	else
		: >"$o"; "$@"
	fi
}
# restore_cpu NAME C0 C1 CLIENTFILE: the daemon's and the client's CPU per byte.
restore_cpu() {
	printf 'daemon_cpu_ns_per_byte_%s: %.3f\n' "$1" "$(cpu_ns_per_byte "$size5" "$2" "$3")"
	[ -s "$4" ] && printf 'client_cpu_ns_per_byte_%s: %.3f\n' "$1" "$(cpu_ns_per_byte "$size5" 0 "$(cat "$4")")"
	return 0
}
c0=$(dcpu)
t0=$(now); timed "$work/cpu.get" "$ctl" get /bench/g5 - >/dev/null; t1=$(now)
c1=$(dcpu)
restore=$(echo "$size5 / ($t1 - $t0) / 1000000000" | bc -l)
restore_cpu restore "$c0" "$c1" "$work/cpu.get"
# As the peers restore: into a file, made durable (bkstorctl get fsyncs it before
# renaming it into place), then checked.
c0=$(dcpu)
t0=$(now); timed "$work/cpu.get" "$ctl" get /bench/g5 "$work/back.img" >/dev/null; t1=$(now)
c1=$(dcpu)
restore_file=$(echo "$size5 / ($t1 - $t0) / 1000000000" | bc -l)
restore_cpu restore_file "$c0" "$c1" "$work/cpu.get"
cmp -s "$work/back.img" "$work/gens/gen05.img" || echo "restore: MISMATCH (generation 5 differs)"
rm -f "$work/back.img"
physical() { capacity physical_bytes; }
phys_nogc=$(physical)
rows_data=$(capacity rows_data)
rows_meta=$(capacity rows_meta)
chunk_bytes=$(capacity stored_bytes)
# What the appliance keeps once its collector has compacted the rows that syncs
# sealed part-full (every PUT is durable on its own: its last rows are partial).
"$ctl" gc start --min-live 0.9 --wait >/dev/null
phys=$(physical)
# Streams: one put, then 4 at once (different generations), all data already
# stored, so both measure dup ingest; aggregate bytes / wall time of the four.
t0=$(now); "$ctl" put "$work/gens/gen05.img" /bench/s1 >/dev/null; t1=$(now)
one=$(echo "$size5 / ($t1 - $t0) / 1000000000" | bc -l)
h0=$(held_ns)
t0=$(now)
spids=""
total=0
for g in 2 3 4 5; do
	"$ctl" put "$work/gens/gen0$g.img" "/bench/p$g" >/dev/null &
	spids="$spids $!"
	total=$((total + $(stat -c %s "$work/gens/gen0$g.img")))
done
for p in $spids; do wait "$p"; done
t1=$(now)
h1=$(held_ns)
four=$(echo "$total / ($t1 - $t0) / 1000000000" | bc -l)
lockfrac4=$(echo "($h1 - $h0) / 1000000000 / ($t1 - $t0)" | bc -l)
# Cold index (COLD=0 skips): generations 2-5 put again to new paths, each right
# after a commit (`bkstorctl commit`), so no fingerprint is in the index's memtable
# and the lookups need its entry blocks and the old segments' tables, as a backup
# does that comes after the appliance committed (every commit_interval, 5 s).
# lock_held_fraction_cold: the median of the four; ingest_dup_cold_gbps likewise;
# index_reads_locked_cold / _prefetched_cold: the index's array reads during them
# under the lock / outside it.
if [ "${COLD:-1}" != 0 ]; then
	: >"$work/cold.fracs"
	: >"$work/cold.rates"
	ir0=$(capacity index_block_reads)
	ip0=$(capacity index_prefetch_reads)
	for g in 2 3 4 5; do
		f="$work/gens/gen0$g.img"
		size=$(stat -c %s "$f")
		"$ctl" commit >/dev/null
		h0=$(held_ns)
		c0=$(dcpu)
		t0=$(now); "$ctl" put "$f" "/bench/c$g" >/dev/null; t1=$(now)
		c1=$(dcpu)
		h1=$(held_ns)
		printf 'daemon_cpu_ns_per_byte_cold_gen%d: %.3f\n' "$g" "$(cpu_ns_per_byte "$size" "$c0" "$c1")"
		printf 'lock_held_fraction_cold_gen%d: %.3f\n' "$g" "$(echo "($h1 - $h0) / 1000000000 / ($t1 - $t0)" | bc -l)"
		echo "($h1 - $h0) / 1000000000 / ($t1 - $t0)" | bc -l >>"$work/cold.fracs"
		echo "$size / ($t1 - $t0) / 1000000000" | bc -l >>"$work/cold.rates"
	done
	ir1=$(capacity index_block_reads)
	ip1=$(capacity index_prefetch_reads)
	lockfrac_cold=$(median <"$work/cold.fracs")
	dup_cold=$(median <"$work/cold.rates")
	# Source dedup (bkstorctl put --dedup: FP_LIST / FP_NEED) of generation 5 after
	# a commit: lock_held_fraction_dedup, and the index's reads during it.
	f="$work/gens/gen05.img"
	"$ctl" commit >/dev/null
	dr0=$(capacity index_block_reads)
	dp0=$(capacity index_prefetch_reads)
	h0=$(held_ns)
	t0=$(now); "$ctl" put --dedup "$f" /bench/d5 >/dev/null; t1=$(now)
	h1=$(held_ns)
	dr1=$(capacity index_block_reads)
	dp1=$(capacity index_prefetch_reads)
	lockfrac_dedup=$(echo "($h1 - $h0) / 1000000000 / ($t1 - $t0)" | bc -l)
	dup_dedup=$(rate_of "$(stat -c %s "$f")" "$t0" "$t1")
fi
stop_demo

printf 'ingest_first_gbps: %.3f\ningest_dup_gbps: %.3f\nrestore_gbps: %.3f\n' "$first" "$dup" "$restore"
printf 'restore_file_gbps: %.3f\n' "$restore_file"
printf 'lock_held_fraction: %.3f\n' "$lockfrac"
printf 'streams1_gbps: %.3f\nstreams4_gbps: %.3f\nstreams4_vs_1: %.3f\n' "$one" "$four" "$(echo "$four / $one" | bc -l)"
printf 'lock_held_fraction_streams4: %.3f\n' "$lockfrac4"
if [ "${COLD:-1}" != 0 ]; then
	printf 'lock_held_fraction_cold: %.3f\ningest_dup_cold_gbps: %.3f\n' "$lockfrac_cold" "$dup_cold"
	# The index's reads during the four cold puts: by lookups under the lock, and by
	# the prefetch outside it (0 from a daemon without these counters).
	echo "index_reads_locked_cold: $((ir1 - ir0))"
	echo "index_reads_prefetched_cold: $((ip1 - ip0))"
	printf 'lock_held_fraction_dedup: %.3f\ningest_dup_dedup_gbps: %.3f\n' "$lockfrac_dedup" "$dup_dedup"
	echo "index_reads_locked_dedup: $((dr1 - dr0))"
	echo "index_reads_prefetched_dedup: $((dp1 - dp0))"
fi
echo "physical_bytes_before_gc: $phys_nogc"
echo "physical_bytes: $phys"
echo "store_rows_data: $rows_data"
echo "store_rows_meta: $rows_meta"
echo "store_chunk_bytes: $chunk_bytes"
if [ "$rows_data" -gt 0 ]; then # (a daemon from before the rows were in its status)
	row_bytes=$(echo "$phys_nogc / ($rows_data + $rows_meta)" | bc)
	printf 'store_data_fill: %.3f\n' "$(echo "$chunk_bytes / ($rows_data * $row_bytes)" | bc -l)"
fi
echo "stored_bytes_gen1: $stored1"

# Generation 1 alone at a fixed level each: what the busy level costs in bytes.
if [ "${LEVELS:-1}" != 0 ]; then
	size1=$(stat -c %s "$work/gens/gen01.img")
	for lv in 1 3; do
		rm -rf "$work/lv"
		start_demo "$work/lv" "$lv"
		c0=$(dcpu)
		t0=$(now); "$ctl" put "$work/gens/gen01.img" /bench/g1 >/dev/null; t1=$(now)
		c1=$(dcpu)
		printf 'ingest_first_gbps_level%d: %.3f\n' "$lv" "$(rate_of "$size1" "$t0" "$t1")"
		printf 'daemon_cpu_ns_per_byte_first_level%d: %.3f\n' "$lv" "$(cpu_ns_per_byte "$size1" "$c0" "$c1")"
		echo "stored_bytes_level$lv: $(capacity stored_bytes)"
		stop_demo
	done
	# Deferred compression (zstd_level 3, zstd_level_busy 0): the put stores raw
	# under pressure, the background pass compresses once the client is gone.
	# Before the pass: the stored bytes now plus what the pass gave back already;
	# the pass's time is the compress job's (it starts fg_idle_ms after the put).
	rm -rf "$work/lv"
	start_demo "$work/lv" 3 0
	c0=$(dcpu)
	t0=$(now); "$ctl" put "$work/gens/gen01.img" /bench/g1 >/dev/null; t1=$(now)
	c1=$(dcpu)
	printf 'ingest_first_gbps_deferred: %.3f\n' "$(rate_of "$size1" "$t0" "$t1")"
	printf 'daemon_cpu_ns_per_byte_first_deferred: %.3f\n' "$(cpu_ns_per_byte "$size1" "$c0" "$c1")"
	job() { # FIELD of the compress job
		"$ctl" status --json >"$work/status.json"
		python3 -c 'import json,sys; j=[j for j in json.load(open(sys.argv[1]))["jobs"] if j["kind"] == "compress"]; print(j[0].get(sys.argv[2], 0) if j else "")' "$work/status.json" "$1"
	}
	sleep 0.3
	"$ctl" status --json >"$work/status.json"
	python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); j=[j for j in d["jobs"] if j["kind"] == "compress"][0]; print("stored_bytes_deferred_before_pass: %d" % (d["capacity"]["stored_bytes"] + j["bytes_saved"]))' "$work/status.json"
	for _ in $(seq 1 1200); do
		[ "$(job state)" = done ] && [ "$(job bytes_left)" = 0 ] && break
		sleep 0.5
	done
	c2=$(dcpu)
	echo "stored_bytes_deferred_after_pass: $(capacity stored_bytes)"
	ps0=$(job started_ns); ps1=$(job finished_ns)
	printf 'deferred_pass_seconds: %.2f\n' "$(echo "($ps1 - $ps0) / 1000000000" | bc -l)"
	printf 'daemon_cpu_ns_per_byte_deferred_pass: %.3f\n' "$(cpu_ns_per_byte "$size1" "$c1" "$c2")"
	"$ctl" get /bench/g1 "$work/back1.img" >/dev/null
	cmp -s "$work/back1.img" "$work/gens/gen01.img" || echo "deferred: MISMATCH (generation 1 differs)"
	rm -f "$work/back1.img"
	stop_demo
	rm -rf "$work/lv"
fi

# The second corpus: text, man pages, icons and locales rather than binaries.
if [ "${CORPUS2:-1}" != 0 ]; then
	mb2=${MB2:-$((mb / 2))}
	tar cf - /usr/share 2>/dev/null | head -c "$((mb2 << 20))" >"$work/base2"
	python3 "$top/bench/gen_generations.py" "$work/base2" "$work/gens2" 5 0.02 2
	rm -f "$work/base2"
	start_demo "$work/demo2"
	for g in 1 2 3 4 5; do
		f="$work/gens2/gen0$g.img"
		cat "$f" >/dev/null
		t0=$(now); "$ctl" put "$f" "/bench/g$g" >/dev/null; t1=$(now)
		[ $g = 1 ] && printf 'ingest_first_gbps_share: %.3f\n' "$(rate_of "$(stat -c %s "$f")" "$t0" "$t1")"
	done
	phys2=$(physical)
	echo "physical_bytes_share: $phys2"
	echo "store_rows_data_share: $(capacity rows_data)"
	echo "store_rows_meta_share: $(capacity rows_meta)"
	echo "store_chunk_bytes_share: $(capacity stored_bytes)"
	stop_demo
	if command -v casync >/dev/null 2>&1; then
		mkdir -p "$work/ca2"
		for g in 1 2 3 4 5; do
			casync make --store="$work/ca2/store" "$work/ca2/g$g.caibx" "$work/gens2/gen0$g.img" >/dev/null 2>&1
		done
		cb2=$(du -sb "$work/ca2" | cut -f1)
		echo "casync_bytes_share: $cb2"
		printf 'stored_vs_casync_share: %.3f\n' "$(echo "$phys2 / $cb2" | bc -l)"
		rm -rf "$work/ca2"
	fi
	rm -rf "$work/gens2"
fi

[ "${PEERS:-1}" = 0 ] && exit 0
sh "$top/bench/peers.sh" "$work/gens" | tee "$work/peers.out"
best=0
for p in restic borg casync; do
	s=$(sed -n "s/^${p}_dup_median_seconds: //p" "$work/peers.out")
	[ -n "$s" ] || continue
	r=$(echo "$size5 / $s / 1000000000" | bc -l)
	printf '%s_dup_gbps: %.3f\n' "$p" "$r"
	[ "$(echo "$r > $best" | bc -l)" = 1 ] && best=$r
done
[ "$(echo "$best > 0" | bc -l)" = 1 ] && printf 'ingest_vs_best_peer: %.2f\n' "$(echo "$dup / $best" | bc -l)"
rbest=0
for p in restic borg casync; do
	s=$(sed -n "s/^${p}_restore_seconds: //p" "$work/peers.out")
	[ -n "$s" ] || continue
	r=$(echo "$size5 / $s / 1000000000" | bc -l)
	printf '%s_restore_gbps: %.3f\n' "$p" "$r"
	[ "$(echo "$r > $rbest" | bc -l)" = 1 ] && rbest=$r
done
[ "$(echo "$rbest > 0" | bc -l)" = 1 ] &&
	printf 'restore_vs_best_peer: %.2f\n' "$(echo "$restore_file / $rbest" | bc -l)"
cb=$(sed -n 's/^casync_bytes: //p' "$work/peers.out")
[ -n "$cb" ] && printf 'stored_vs_casync: %.3f\nstored_vs_casync_after_gc: %.3f\n' \
	"$(echo "$phys_nogc / $cb" | bc -l)" "$(echo "$phys / $cb" | bc -l)"
