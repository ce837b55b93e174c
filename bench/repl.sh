#!/bin/sh
# bench/repl.sh [MB]: replication A -> B between two bkstord on this machine (issue 12),
# in one run. Makes a base of MB megabytes (default 600) from real files and 5
# generations (2% change each, bench/gen_generations.py, as bench/ingest.sh does),
# starts two demo appliances with a [repl] section (tests/repl-lib.sh: A the source,
# B the twin), and:
#   - puts the 5 generations into A with bkstorctl over loopback, A not paired yet:
#     the native put rate of the same files on the same machine in the same run
#     (native_put_gbps: their bytes / the puts' seconds);
#   - pairs A with B and times until B has all of it (A's sender reports the commit
#     replicated and lag 0; the end is the cycle's end as A's status records it,
#     last_sync_wall_ns, not the poll that saw it): repl_gbps (the 5 generations'
#     bytes / those seconds), repl_vs_put (repl_gbps / native_put_gbps, target >= 0.8);
#     every generation read back from B and compared;
#   - repl_wire_vs_stored: the bytes A's sender put on the wire (TLS payload: frames)
#     / the stored bytes the 5 puts added to A (target <= 1.1);
#   - restic (Debian's 0.14): the same 5 generations backed up into repository 1
#     (not timed), repository 2 made with repository 1's chunker parameters, then
#     `restic -r R2 copy --from-repo R1` timed: repl_vs_restic_copy = restic copy's
#     seconds / replication's seconds (both move the same 5 generations, so this is
#     also the ratio of the rates; target >= 4).
# PERF=DIR: perf record (call graphs) of both daemons while replication runs, into
# DIR/a.data and DIR/b.data (perf report -i DIR/a.data); with STRACE=1 a syscall
# summary (strace -c -w) into DIR/a.strace and DIR/b.strace instead.
# KEEPLOG=DIR: both daemons' logs are copied there (a.log, b.log).
# RESTIC=0 skips restic.
# REPL_CONNS=N sets A's [repl] connections (files in flight); unset: the default.
# Client, both daemons and restic share the machine (2 cores here).
top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$top/build}
mb=${1:-600}
top_srcdir=$top
top_builddir=$build
BKS_TEST_DIR=${TMPDIR:-/var/tmp}
. "$top/tests/repl-lib.sh"
command -v restic >/dev/null 2>&1 || echo "repl.sh: restic not installed: its copy is skipped" >&2
now() { date +%s.%N; }
die() { echo "repl.sh: $*" >&2; exit 1; }
div() { echo "($1) / ($2)" | bc -l; }
echo "repl_bench_mb: $mb"

# The base: real files (binaries, libraries, text), as backups hold.
{ for d in /usr/lib /usr/share /usr/bin; do tar cf - "$d" 2>/dev/null; done; } |
	head -c "$((mb << 20))" >"$T/base"
python3 "$top/bench/gen_generations.py" "$T/base" "$T/gens" 5 0.02 1 || die "generations"
rm -f "$T/base"
total=0
for g in 1 2 3 4 5; do total=$((total + $(stat -c %s "$T/gens/gen0$g.img"))); done

r_make a "$PA" "$RA" 168h && r_make b "$PB" "$RB" 168h || die "demo appliances"
[ -n "${REPL_CONNS:-}" ] && printf 'connections = %s\n' "$REPL_CONNS" >>"$T/a/bkstord.conf"
r_start a && r_start b || die "daemons"

# --- native put into A (not paired yet: nothing replicates)
ca --json status >"$T/s0.json"
stored0=$(jget "$T/s0.json" "d['capacity']['stored_bytes']")
psum=0
for g in 1 2 3 4 5; do
	f="$T/gens/gen0$g.img"
	cat "$f" >/dev/null # page cache: measure the appliance, not the source disk
	t0=$(now); ca put "$f" "/bench/g$g" -p >/dev/null || die "put gen $g"; t1=$(now)
	dt=$(echo "$t1 - $t0" | bc -l); psum=$(echo "$psum + $dt" | bc -l)
	printf 'native_put_gen%d_gbps: %.3f\n' "$g" "$(div "$(stat -c %s "$f")" "$dt * 1000000000")"
done
ca commit >/dev/null || die "commit on A"
ca --json status >"$T/s1.json"
stored1=$(jget "$T/s1.json" "d['capacity']['stored_bytes']")
want=$(rj a "d['commits']")

# --- replication: pair, then wait for lag 0 with that commit replicated
ppids=""
if [ -n "${PERF:-}" ]; then
	mkdir -p "$PERF"
	for n in a b; do
		eval "p=\$PID$n"
		if [ -n "${STRACE:-}" ]; then
			strace -f -c -w -p "$p" -o "$PERF/$n.strace" >/dev/null 2>&1 &
		else
			perf record -q -F 499 -g -p "$p" -o "$PERF/$n.data" >/dev/null 2>&1 &
		fi
		ppids="$ppids $!"
	done
	sleep 1
fi
t0ns=$(date +%s%N)
r_pair >/dev/null || die "pair"
end=$(($(date +%s) + 3600))
while :; do
	[ "$(rj a "int(d['replicated_commit'] >= $want and d['lag']['files'] == 0 and d['state'] == 'idle')")" = 1 ] && break
	[ "$(date +%s)" -lt "$end" ] || die "no lag 0 after an hour: $(rj a "d['state'], d['last_error']")"
	sleep 0.2
done
t1ns=$(rj a "d['last_sync_wall_ns']")
for p in $ppids; do kill -INT "$p"; wait "$p"; done
rsec=$(echo "($t1ns - $t0ns) / 1000000000" | bc -l)
wire=$(rj a "d['sent']['wire_bytes']")
chunks=$(rj a "d['sent']['chunks']")
had=$(rj a "d['sent']['chunks_twin_had']")
for g in 1 2 3 4 5; do
	cb get "/bench/g$g" - 2>/dev/null | cmp -s - "$T/gens/gen0$g.img" ||
		echo "repl_gen${g}: MISMATCH (B's copy differs)"
done
added=$((stored1 - stored0))
printf 'repl_bytes: %d\nrepl_seconds: %.3f\n' "$total" "$rsec"
printf 'repl_chunks_sent: %s\nrepl_chunks_twin_had: %s\n' "$chunks" "$had"
native=$(div "$total" "$psum * 1000000000")
repl=$(div "$total" "$rsec * 1000000000")
printf 'native_put_seconds: %.3f\nnative_put_gbps: %.3f\nrepl_gbps: %.3f\nrepl_vs_put: %.2f\n' \
	"$psum" "$native" "$repl" "$(div "$repl" "$native")"
printf 'repl_wire_bytes: %s\nstored_bytes_added: %s\nrepl_wire_vs_stored: %.3f\n' \
	"$wire" "$added" "$(div "$wire" "$added")"
r_stop a; r_stop b
[ -n "${KEEPLOG:-}" ] && cp "$T/a.log" "$T/b.log" "$KEEPLOG/"
rm -rf "$T/a" "$T/b"

# --- restic copy of the same generations between two repositories
[ "${RESTIC:-1}" = 0 ] && exit 0
command -v restic >/dev/null 2>&1 || exit 0
echo bench >"$T/pw"
R1="$T/restic1" R2="$T/restic2"
restic -r "$R1" --password-file "$T/pw" init >/dev/null 2>&1 || die "restic init"
for g in 1 2 3 4 5; do
	restic -r "$R1" --password-file "$T/pw" backup --quiet "$T/gens/gen0$g.img" >/dev/null 2>&1 ||
		die "restic backup gen $g"
done
restic -r "$R2" --password-file "$T/pw" init --from-repo "$R1" --from-password-file "$T/pw" \
	--copy-chunker-params >/dev/null 2>&1 || die "restic init R2"
sync
t0=$(now)
restic -r "$R2" --password-file "$T/pw" copy --from-repo "$R1" --from-password-file "$T/pw" \
	>/dev/null 2>&1 || die "restic copy"
t1=$(now)
csec=$(echo "$t1 - $t0" | bc -l)
n=$(restic -r "$R2" --password-file "$T/pw" snapshots --json 2>/dev/null |
	python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
[ "$n" = 5 ] || echo "restic_copy: $n snapshots in repository 2, not 5"
printf 'restic_copy_seconds: %.3f\nrestic_copy_gbps: %.3f\nrestic_repo_bytes: %s\n' \
	"$csec" "$(div "$total" "$csec * 1000000000")" "$(du -sb "$R2" | cut -f1)"
printf 'repl_vs_restic_copy: %.2f\n' "$(div "$csec" "$rsec")"
