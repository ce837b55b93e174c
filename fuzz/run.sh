#!/bin/sh
# Build every fuzz target with clang's libFuzzer (+ASan/UBSan: configure
# --enable-fuzzing, in build-fuzz/ beside the sources) and run each for SECONDS
# (default 30), starting from its seed corpus fuzz/corpus/NAME/ (read only) and the
# inputs earlier runs kept in $FUZZ_DIR/corpus-NAME. Exit 1 if a target finds a crash. Needs clang and
# libclang-rt-14-dev (contrib/install-deps.sh installs them).
# (make check replays the seed corpora in every build, without libFuzzer.)
set -eu
secs=${1:-30}
top=$(cd "$(dirname "$0")/.." && pwd)
out=${FUZZ_DIR:-/var/tmp/bkstor-fuzz}
CC=${FUZZ_CC:-clang}
if ! command -v "$CC" >/dev/null 2>&1; then echo "fuzz: $CC not found, skipped"; exit 0; fi
build=${FUZZ_BUILD:-$top/build-fuzz}
mkdir -p "$out" "$build"
[ -x "$top/configure" ] || (cd "$top" && autoreconf -fi)
cd "$build"
if [ ! -f Makefile ]; then
	"$top/configure" -q --enable-fuzzing CC="$CC" CFLAGS="-g -O1"
fi
make -j"${FUZZ_JOBS:-2}" -s fuzz
status=0
for t in label segment wire jsonp http config ini nfs dir scsi iscsi repl lunmeta; do
	bin="$build/fuzz/fuzz-$t"
	corpus="$out/corpus-$t"
	mkdir -p "$corpus"
	echo "fuzz: $t for ${secs}s"
	# New inputs go to the first directory ($corpus); the seeds are only read.
	if ! "$bin" -max_total_time="$secs" -max_len=20000 -print_final_stats=1 \
		-artifact_prefix="$out/" "$corpus" "$top/fuzz/corpus/$t" >"$out/fuzz-$t.log" 2>&1; then
		echo "fuzz: $t FAILED"; tail -40 "$out/fuzz-$t.log"; status=1
	else
		grep -E "stat::number_of_executed_units|Done" "$out/fuzz-$t.log" | tail -2
	fi
done
exit $status
