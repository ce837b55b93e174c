# tests/repl-lib.sh: two appliances on this machine for the test-repl-*.sh tests
# (sourced). Each is a demo daemon (its own file-backed disks under $T) with a
# [repl] section; A is the source, B the twin. Uses tests/daemon-lib.sh for the
# checks (ok, bad, check, jget, gens, make_base) and its temporary directory.
#   r_make NAME PORT REPLPORT DELAY   make the demo in $T/NAME, add [repl], don't start
#   r_start NAME / r_stop NAME / r_kill9 NAME
#   r_pair                            B issues a token, A pairs with --yes
#   r_synced SECONDS                  commit on A, wait until B has all of it
#   ca ARGS / cb ARGS                 bkstorctl against A / B
#   r_vaults MB                       A (vault-a) and B (vault-b) made, started and
#                                     paired; 3 generations of an MB base put on A
#   wait_role NAME ROLE SECONDS       until NAME's repl status says role ROLE
#   wait_writable NAME SECONDS        until NAME takes client writes
#   same NAME PATH FILE               NAME serves PATH with FILE's bytes
. "${top_srcdir:-.}/tests/daemon-lib.sh"
# Fifteen adjacent free ports: A's demo ports, B's (six each: the demo takes four
# today, five with iSCSI), A's and B's replication listeners, a spare for a proxy.
RP=$(free_ports 15)
PA=$RP PB=$((RP + 6)) RA=$((RP + 12)) RB=$((RP + 13)) PX=$((RP + 14))
PIDa="" PIDb=""
rcleanup() {
	[ -n "$PIDa" ] && kill -9 "$PIDa" 2>/dev/null
	[ -n "$PIDb" ] && kill -9 "$PIDb" 2>/dev/null
	[ "${BKS_KEEP:-}" ] || rm -rf "$T"
}
trap rcleanup EXIT
ca() { BKSTOR_CLIENT="$T/a/client.conf" "$ctl_bin" "$@"; }
cb() { BKSTOR_CLIENT="$T/b/client.conf" "$ctl_bin" "$@"; }
r_up() { # DIR PID: the control API answers
	for _ in $(seq 1 300); do
		[ -S "$1/api.sock" ] && BKSTOR_CLIENT="$1/client.conf" "$ctl_bin" status >/dev/null 2>&1 &&
			return 0
		kill -0 "$2" 2>/dev/null || return 1
		for p in $PIDa $PIDb; do
			kill -0 "$p" 2>/dev/null || { echo "# daemon $p died"; return 1; }
		done
		sleep 0.1
	done
	return 1
}
# At the end: on failure, the tails of both daemons' logs (d_finish shows daemon.log).
r_finish() {
	[ "$fails" = 0 ] && { echo "all checks passed"; exit 0; }
	echo "$fails check(s) failed"
	for n in a b; do echo "--- $n.log"; grep -v "sent chunk" "$T/$n.log" | tail -25; done
	exit 1
}
r_make() { # NAME PORT REPLPORT DELAY
	"$bkstord" --demo "$T/$1" --port "$2" >>"$T/$1.log" 2>&1 &
	mp=$! # not p: r_up's loop sets it (and a test may make a demo while others run)
	r_up "$T/$1" $mp || { echo "demo $1 did not come up"; tail -20 "$T/$1.log"; return 1; }
	kill -TERM $mp
	wait $mp
	printf '\n[repl]\nenable = yes\nlisten = 127.0.0.1:%s\ndelete_delay = %s\n' "$3" "$4" \
		>>"$T/$1/bkstord.conf"
}
r_start() { # NAME
	"$bkstord" --config "$T/$1/bkstord.conf" >>"$T/$1.log" 2>&1 &
	eval "PID$1=$!"
	r_up "$T/$1" $! || { echo "daemon $1 did not come up"; tail -20 "$T/$1.log"; return 1; }
}
r_stop() { eval "p=\$PID$1"; kill -TERM "$p"; wait "$p"; rc=$?; eval "PID$1=''"; return $rc; }
r_kill9() { eval "p=\$PID$1"; kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; eval "PID$1=''"; }
rj() { # NAME EXPR: a value of NAME's repl status (python expression on d)
	BKSTOR_CLIENT="$T/$1/client.conf" "$ctl_bin" --json repl status >"$T/rj.json" 2>/dev/null &&
		jget "$T/rj.json" "$2"
}
r_pair() {
	cb --json repl token >"$T/token.json" || return 1
	tok=$(jget "$T/token.json" "d['token']")
	fpb=$(jget "$T/token.json" "d['fingerprint']")
	ca repl pair "127.0.0.1:$RB" --token "$tok" --yes "$fpb"
}
r_synced() { # SECONDS: commit on A, then wait until its sender has replicated that commit
	ca commit >/dev/null || return 1
	want=$(rj a "d['commits']")
	end=$(($(date +%s) + $1))
	while [ "$(date +%s)" -lt "$end" ]; do
		if [ "$(rj a "int(d['replicated_commit'] >= $want and d['lag']['files'] == 0)")" = 1 ]; then
			return 0
		fi
		sleep 0.1
	done
	return 1
}
wait_role() { # NAME ROLE SECONDS
	end=$(($(date +%s) + $3))
	while [ "$(date +%s)" -lt "$end" ]; do
		[ "$(rj "$1" "d['role']")" = "$2" ] && return 0
		sleep 0.2
	done
	return 1
}
wait_writable() { # NAME SECONDS
	end=$(($(date +%s) + $2))
	while [ "$(date +%s)" -lt "$end" ]; do
		[ "$(rj "$1" "d['writable']")" = True ] && return 0
		sleep 0.1
	done
	return 1
}
same() { # NAME PATH FILE: NAME serves PATH with FILE's bytes
	BKSTOR_CLIENT="$T/$1/client.conf" "$ctl_bin" get "$2" - 2>/dev/null | cmp -s - "$3"
}
r_vaults() {
	r_make a "$PA" "$RA" 168h && r_make b "$PB" "$RB" 168h || exit 1
	echo vault-a >"$T/a/appliance.name"
	echo vault-b >"$T/b/appliance.name"
	r_start a && r_start b || exit 1
	check "pair A with B" 0 r_pair
	make_base "$T/base" "$1"
	gens "$T/base" "$T/gens" 5 >/dev/null
	for g in 1 2 3; do
		ca put "$T/gens/gen0$g.img" "/backup/host1/gen0$g.img" -p >/dev/null ||
			bad "put gen0$g on A"
	done
}
