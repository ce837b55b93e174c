# tests/daemon-lib.sh: shared by the tests that run bkstord (sourced): tests/lib.sh
# (T, need, ok, bad, check, jget, finish) and a bkstord --demo in $T/demo on a free
# port, with
#   ctl ARGS...          bkstorctl with the demo's client configuration
#   d_start / d_stop / d_kill9 / d_wait_api
#   make_base / gens     backup-like data and its generations
#   d_finish             finish, with the daemon log's tail when a check failed
set -u
ctl_bin="${top_builddir:-.}/cli/bkstorctl"
bkstord="${top_builddir:-.}/daemon/bkstord"
[ -x "$ctl_bin" ] && [ -x "$bkstord" ] || { echo "SKIP: bkstorctl/bkstord not built"; exit 77; }
. "${top_srcdir:-.}/tests/lib.sh"
DEMO="$T/demo"
# A port per test run: the demo also takes PORT+1 for the dashboard, PORT+2 and +3
# for NFS and MOUNT, PORT+4 for iSCSI.
PORT=$(free_ports 5)
export BKSTOR_CLIENT="$DEMO/client.conf"
DPID=""
cleanup() { # (replaces lib.sh's: the daemon goes too)
	[ -n "$DPID" ] && kill -9 "$DPID" 2>/dev/null
	[ "${BKS_KEEP:-}" ] || rm -rf "$T"
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
	# The API answers before NFS and iSCSI listen: "bkstord running" is logged once
	# every listener is up (a test that connects at once must not find one missing).
	_runs=$(grep -c "bkstord running" "$T/daemon.log" 2>/dev/null) || _runs=0
	if [ -f "$DEMO/bkstord.conf" ]; then
		"$bkstord" --config "$DEMO/bkstord.conf" "$@" >>"$T/daemon.log" 2>&1 &
	else
		"$bkstord" --demo "$DEMO" --port "$PORT" "$@" >>"$T/daemon.log" 2>&1 &
	fi
	DPID=$!
	d_wait_api || { echo "daemon did not come up:"; tail -20 "$T/daemon.log"; return 1; }
	for _ in $(seq 1 100); do
		[ "$(grep -c "bkstord running" "$T/daemon.log" 2>/dev/null)" -gt "$_runs" ] && return 0
		kill -0 "$DPID" 2>/dev/null || return 1
		sleep 0.1
	done
}
d_stop() { # SIGTERM; returns the daemon's exit code
	kill -TERM "$DPID"; wait "$DPID"; rc=$?; DPID=""; return $rc
}
d_kill9() { kill -9 "$DPID" 2>/dev/null; wait "$DPID" 2>/dev/null; DPID=""; }
# A base file from real files (text, binaries: what backups hold), MB megabytes.
make_base() { # OUT MB
	{ for d in /usr/share/perl* /usr/lib/python3* /usr/share/doc /usr/bin; do
		[ -d "$d" ] && tar cf - "$d" 2>/dev/null; done; } | head -c "$(($2 << 20))" >"$1"
	[ "$(stat -c %s "$1")" -ge $(($2 << 20)) ] || head -c "$(($2 << 20))" /dev/urandom >"$1"
}
gens() { # BASE OUTDIR N: N generations (gen01.img ...) with 2% change per generation
	python3 "${top_srcdir:-.}/bench/gen_generations.py" "$1" "$2" "$3" 0.02 7
}
d_finish() {
	[ "$fails" = 0 ] && { echo "all checks passed"; exit 0; }
	echo "$fails check(s) failed; daemon log:"; tail -30 "$T/daemon.log"; exit 1
}
