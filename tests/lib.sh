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
#                         127.0.0.1 and no running test reserved (/tmp/bks-ports),
#                         tried from a point picked by pid and time (tests run in
#                         parallel and restart daemons: a port let go for a moment was
#                         sometimes taken by another test)
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
import os, socket, sys, time
# A range is free when nothing listens on it now and no live test reserved it: a
# test that restarts its daemons leaves their ports unbound for a moment, and
# another test must not take them then. Reservations are files
# /tmp/bks-ports/FIRST-COUNT holding the test's pid, dropped when that pid is gone.
pid, n = int(sys.argv[1]), int(sys.argv[2])
d = "/tmp/bks-ports"
os.makedirs(d, exist_ok=True)
taken = []
for name in os.listdir(d):
    try:
        first, count = (int(x) for x in name.split("-"))
        owner = int(open(os.path.join(d, name)).read().strip() or 0)
        os.kill(owner, 0)
        taken.append((first, first + count))
    except (ValueError, OSError):
        try:
            os.unlink(os.path.join(d, name))
        except OSError:
            pass
start = 20000 + (pid * 7919 + time.time_ns() // 1000 + 17) % 40000
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
    if p + n >= 65536 or any(a < p + n and p < b for a, b in taken):
        continue
    if all(free(p + k) for k in range(n)):
        try:
            fd = os.open(os.path.join(d, "%d-%d" % (p, n)), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            continue
        os.write(fd, b"%d\n" % pid)
        os.close(fd)
        print(p)
        break
PYEOF
}
finish() {
	[ "$fails" = 0 ] && { echo "all checks passed"; exit 0; }
	echo "$fails check(s) failed"; exit 1
}
