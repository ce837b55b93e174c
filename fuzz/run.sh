#!/bin/sh
# Build every fuzz target with clang's libFuzzer (+ASan/UBSan) and run each for
# SECONDS (default 30). Exit 1 if a target finds a crash. Needs clang and
# libclang-rt-14-dev (contrib/install-deps.sh installs them).
set -eu
secs=${1:-30}
top=$(cd "$(dirname "$0")/.." && pwd)
out=${FUZZ_DIR:-/var/tmp/bkstor-fuzz}
mkdir -p "$out"
CC=${FUZZ_CC:-clang}
if ! command -v "$CC" >/dev/null 2>&1; then echo "fuzz: $CC not found, skipped"; exit 0; fi
CFLAGS="-std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined -I$top -D_GNU_SOURCE"
common="$top/common/bks.c"
status=0
for t in label segment wire jsonp http config nfs dir repl; do
	bin="$out/fuzz-$t"
	case $t in
	label) srcs="$top/fuzz/fuzz-label.c $top/storage/label.c $common" ;;
	segment) srcs="$top/fuzz/fuzz-segment.c $top/dedup/*.c $top/storage/*.c $top/raid/raid.c $top/common/json.c $common -laio -lisal -lzstd -lcrypto -lpthread" ;;
	wire) srcs="$top/fuzz/fuzz-wire.c $top/proto/wire.c $common" ;;
	repl) srcs="$top/fuzz/fuzz-repl.c $top/proto/repl.c $top/proto/wire.c $common" ;;
	jsonp) srcs="$top/fuzz/fuzz-jsonp.c $top/common/jsonp.c $common" ;;
	config) srcs="$top/fuzz/fuzz-config.c $top/daemon/config.c $common" ;;
	http) srcs="$top/fuzz/fuzz-http.c $top/cli/http.c $common" ;;
	dir) srcs="$top/fuzz/fuzz-dir.c $top/dedup/*.c $top/storage/*.c $top/raid/raid.c $top/common/json.c $common -laio -lisal -lzstd -lcrypto -lpthread" ;;
	nfs) srcs="$top/fuzz/fuzz-nfs.c $top/proto/xdr.c $top/proto/rpc.c $top/proto/nfs3.c $common -lcrypto" ;;
	esac
	# shellcheck disable=SC2086
	$CC $CFLAGS $srcs -lxxhash -o "$bin"
	corpus="$out/corpus-$t"
	mkdir -p "$corpus"
	# Seeds: valid structures written by the unit tests' seed modes.
	for b in "$top/build-ci" "$top/build"; do
		seeder="$b/tests/test-$t"
		[ "$t" = repl ] && seeder="$b/tests/test-repl-proto"
		if [ -x "$seeder" ]; then "$seeder" --seeds "$corpus" || true; break; fi
	done
	echo "fuzz: $t for ${secs}s"
	if ! "$bin" -max_total_time="$secs" -max_len=20000 -print_final_stats=1 "$corpus" \
		>"$out/fuzz-$t.log" 2>&1; then
		echo "fuzz: $t FAILED"; tail -40 "$out/fuzz-$t.log"; status=1
	else
		grep -E "stat::number_of_executed_units|Done" "$out/fuzz-$t.log" | tail -2
	fi
done
exit $status
