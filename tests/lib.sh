# tests/lib.sh: the shell tests' one harness (sourced; tests/daemon-lib.sh builds the
# daemon helpers on it). It gives
#   T                     a fresh directory for the test's files, removed at exit
#                         (BKS_KEEP=1 keeps it)
#   need TOOL...          skip the test (exit 77) unless every TOOL is installed
#   ok DESC / bad DESC    record a result: one "ok   - DESC" / "FAIL - DESC" line
#   check DESC WANT CMD...  run CMD (stdout in $T/out, stderr in $T/err) and compare
#                         its exit code with WANT; a failure shows its stderr
#   jget FILE EXPR        a value from a JSON file (a python expression on d)
#   free_ports N          the first of N adjacent TCP ports nobody listens on now on
#                         127.0.0.1, tried from a point picked by pid and time (tests
#                         run in parallel: a guessed port was sometimes taken)
#   finish                exit 0 when every check passed, else 1
set -u
need() {
	for tool in "$@"; do
		command -v "$tool" >/dev/null 2>&1 || { echo "SKIP: $tool not installed"; exit 77; }
	done
}
need python3
T=$(mktemp -d "${BKS_TEST_DIR:-/var/tmp}/bks-$(basename "$0" .sh)-XXXXXX") ||
	{ echo "FAIL - mktemp"; exit 1; }
fails=0
cleanup() { [ "${BKS_KEEP:-}" ] || rm -rf "$T"; }
trap cleanup EXIT
trap 'exit 1' HUP INT TERM
ok() { echo "ok   - $1"; }
bad() { echo "FAIL - $1"; fails=$((fails + 1)); }
check() { # description, expected exit, command...
	what=$1; want=$2; shift 2
	"$@" >"$T/out" 2>"$T/err"; got=$?
	if [ "$got" = "$want" ]; then ok "$what (exit $got)"
	else bad "$what: exit $got, wanted $want"; sed 's/^/    /' "$T/err" | head -20; fi
}
jget() { # FILE EXPR: print a value from a JSON file (python expression on d)
	python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}
free_ports() {
	python3 - "$$" "$1" <<'PYEOF'
import socket, sys, time
n = int(sys.argv[2])
start = 20000 + (int(sys.argv[1]) * 7919 + time.time_ns() // 1000 + 17) % 40000
def free(p):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
        return True
    except OSError:
        return False
    finally:
        s.close()
for i in range(2000):
    p = 20000 + (start - 20000 + i * n) % 40000
    if p + n < 65536 and all(free(p + k) for k in range(n)):
        print(p)
        break
PYEOF
}
finish() {
	[ "$fails" = 0 ] && { echo "all checks passed"; exit 0; }
	echo "$fails check(s) failed"; exit 1
}
