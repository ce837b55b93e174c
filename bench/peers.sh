#!/bin/sh
# bench/peers.sh DIR: run restic, borg and casync (Debian packages; install with
# contrib/install-deps.sh --bench) on the generations DIR/gen01.img .. genNN.img
# (made by bench/gen_generations.py), one backup per generation, and
# print, per tool: total seconds, the median seconds of generations 2..N, the
# bytes its repository takes, and the seconds to restore the last generation
# (restic restore, borg extract, casync extract; into a file on the same file
# system, made durable with sync FILE as bkstorctl get fsyncs what it writes, then
# compared with the original). Every tool runs single-threaded where it can
# choose, with its default chunking and compression, on the same files, in one run.
set -eu
dir=${1:?usage: peers.sh DIR-with-genNN.img}
work=$(mktemp -d "${TMPDIR:-/var/tmp}/bkstor-peers-XXXXXX")
trap 'rm -rf "$work"' EXIT
gens=$(ls "$dir"/gen[0-9][0-9].img | sort)
now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
run_tool() { # name, init, backup template ({F} file, {G} generation), restore of the
	# last generation ({G}; into $work/$name.out, where it leaves the file at {R})
	name=$1; init=$2; cmd=$3; rcmd=$4
	if ! command -v "$name" >/dev/null 2>&1; then echo "${name}_skipped: not installed"; return; fi
	sh -c "$init" >/dev/null 2>&1
	total=0; : > "$work/$name.times"; g=0
	for f in $gens; do
		g=$((g + 1))
		t0=$(now)
		sh -c "$(echo "$cmd" | sed "s|{F}|$f|g; s|{G}|$g|g")" >/dev/null 2>&1
		t1=$(now)
		dt=$(echo "$t1 - $t0" | bc -l)
		total=$(echo "$total + $dt" | bc -l)
		[ "$g" -gt 1 ] && echo "$dt" >> "$work/$name.times"
	done
	echo "${name}_seconds: $total"
	echo "${name}_dup_median_seconds: $(median < "$work/$name.times")"
	echo "${name}_bytes: $(du -sb "$work/$name.repo" | cut -f1)"
	rm -rf "$work/$name.out"; mkdir -p "$work/$name.out"
	t0=$(now)
	(cd "$work/$name.out" && sh -c "$(echo "$rcmd" | sed "s|{G}|$g|g")") >/dev/null 2>&1 || true
	find "$work/$name.out" -type f -exec sync {} + # durable, as bkstorctl get makes it
	t1=$(now)
	back=$(find "$work/$name.out" -type f | head -n 1)
	if [ -n "$back" ] && cmp -s "$back" "$f"; then
		echo "${name}_restore_seconds: $(echo "$t1 - $t0" | bc -l)"
	else
		echo "${name}_restore: FAILED (no identical file restored)"
	fi
	rm -rf "$work/$name.out"
}
export RESTIC_PASSWORD=bench BORG_PASSPHRASE="" BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes
run_tool restic "restic init --repo $work/restic.repo" \
	"restic --repo $work/restic.repo backup --quiet {F}" \
	"restic --repo $work/restic.repo restore latest --quiet --target ."
run_tool borg "borg init --encryption=none $work/borg.repo" \
	"borg create $work/borg.repo::g{G} {F}" \
	"borg extract $work/borg.repo::g{G}"
run_tool casync "mkdir -p $work/casync.repo" \
	"casync make --store=$work/casync.repo $work/g{G}.caibx {F}" \
	"casync extract --store=$work/casync.repo $work/g{G}.caibx restored.img"
