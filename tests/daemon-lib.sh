# tests/daemon-lib.sh: shared by the test-daemon-*.sh tests (sourced).
# Starts bkstord --demo in a temporary directory on a free port, and gives
#   ctl ARGS...          bkstorctl with the demo's client configuration
#   d_start / d_stop / d_kill9 / d_wait_api
#   check DESC WANT CMD...   run CMD, compare its exit code with WANT
#   ok DESC / bad DESC   record a result
# Output: one "ok"/"FAIL" line per check; d_finish exits 0 only when all passed.
set -u
ctl_bin="${top_builddir:-.}/cli/bkstorctl"
bkstord="${top_builddir:-.}/daemon/bkstord"
[ -x "$ctl_bin" ] && [ -x "$bkstord" ] || { echo "SKIP: bkstorctl/bkstord not built"; exit 77; }
command -v python3 >/dev/null 2>&1 || { echo "SKIP: python3 missing"; exit 77; }
T=$(mktemp -d "${BKS_TEST_DIR:-/var/tmp}/bks-$(basename "$0" .sh)-XXXXXX")
DEMO="$T/demo"
# A port per test run (the demo also takes PORT+1 for the dashboard, PORT+2 and +3
# for NFS and MOUNT, PORT+4 for iSCSI): five adjacent ports nobody listens on now, tried from a point picked by pid and time, because
# tests run in parallel and a guessed port was sometimes taken.
PORT=$(python3 - "$$" <<'PYEOF'
import socket, sys, time
start = 20000 + (int(sys.argv[1]) * 7919 + time.time_ns() // 1000) % 40000
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
    p = 20000 + (start - 20000 + i * 5) % 40000
    if all(free(p + k) for k in range(5)):
        print(p)
        break
PYEOF
)
export BKSTOR_CLIENT="$DEMO/client.conf"
fails=0
DPID=""
cleanup() {
	[ -n "$DPID" ] && kill -9 "$DPID" 2>/dev/null
	[ "${BKS_KEEP:-}" ] || rm -rf "$T"
}
trap cleanup EXIT
ok() { echo "ok   - $1"; }
bad() { echo "FAIL - $1"; fails=$((fails + 1)); }
check() { # description, expected exit, command...
	what=$1; want=$2; shift 2
	"$@" >"$T/out" 2>"$T/err"; got=$?
	if [ "$got" = "$want" ]; then ok "$what (exit $got)"
	else bad "$what: exit $got, wanted $want"; sed 's/^/    /' "$T/err" | head -20; fi
}
ctl() { "$ctl_bin" "$@"; }
d_wait_api() { # wait until the control API answers (or the daemon died)
	for _ in $(seq 1 300); do
		[ -S "$DEMO/api.sock" ] && "$ctl_bin" status >/dev/null 2>&1 && return 0
		kill -0 "$DPID" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}
d_start() { # [extra args]
	if [ -f "$DEMO/bkstord.conf" ]; then
		"$bkstord" --config "$DEMO/bkstord.conf" "$@" >>"$T/daemon.log" 2>&1 &
	else
		"$bkstord" --demo "$DEMO" --port "$PORT" "$@" >>"$T/daemon.log" 2>&1 &
	fi
	DPID=$!
	d_wait_api || { echo "daemon did not come up:"; tail -20 "$T/daemon.log"; return 1; }
}
d_stop() { # SIGTERM; returns the daemon's exit code
	kill -TERM "$DPID"; wait "$DPID"; rc=$?; DPID=""; return $rc
}
d_kill9() { kill -9 "$DPID" 2>/dev/null; wait "$DPID" 2>/dev/null; DPID=""; }
jget() { # FILE EXPR: print a value from a JSON file (python expression on d)
	python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}
# A base file from real files (text, binaries: what backups hold), MB megabytes.
make_base() { # OUT MB
	{ for d in /usr/share/perl* /usr/lib/python3* /usr/share/doc /usr/bin; do
		[ -d "$d" ] && tar cf - "$d" 2>/dev/null; done; } | head -c "$(($2 << 20))" >"$1"
	[ "$(stat -c %s "$1")" -ge $(($2 << 20)) ] || head -c "$(($2 << 20))" /dev/urandom >"$1"
}
gens() { # BASE OUTDIR N: N generations (gen01.img ...) with 2% change per generation
	for g in "${top_srcdir:-.}/../shared/bench/gen_generations.py" \
		"${top_srcdir:-.}/../../shared/bench/gen_generations.py"; do
		[ -f "$g" ] && { python3 "$g" "$1" "$2" "$3" 0.02 7; return; }
	done
	# Without the shared generator (a bare clone): the same kind of drift.
	python3 - "$1" "$2" "$3" <<'PY'
import os, random, sys
base, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
rnd = random.Random(7); os.makedirs(out, exist_ok=True)
data = bytearray(open(base, 'rb').read())
for g in range(1, n + 1):
    if g > 1:
        budget = len(data) // 50
        while budget > 0:
            size = min(budget, rnd.choice([64, 512, 4096, 32768]))
            pos = rnd.randrange(0, max(1, len(data) - size))
            k = rnd.random()
            if k < 0.5: data[pos:pos + size] = rnd.randbytes(size)
            elif k < 0.8: data[pos:pos] = rnd.randbytes(size)
            else: del data[pos:pos + size]
            budget -= size
    open(os.path.join(out, 'gen%02d.img' % g), 'wb').write(data)
PY
}
d_finish() {
	[ "$fails" = 0 ] && { echo "all checks passed"; exit 0; }
	echo "$fails check(s) failed; daemon log:"; tail -30 "$T/daemon.log"; exit 1
}
