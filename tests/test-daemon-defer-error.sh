#!/bin/sh
# test-daemon-defer-error: the deferred compression pass under a persistent error
# backs off (daemon/appl.c, defer_job). BKS_TEST_DEFER_ERROR=5 makes every step fail
# with EIO, as a row the pass cannot write or an index block it cannot read would;
# the pass is pending after every open of a store (its first cycle looks for
# segments an earlier run left flagged), so after a restart it meets the error at once. In 4 s the daemon must
# report it once (one WARN event) and try at most 3 times (1 s, then 2 s of waiting):
# the old code restarted the cycle and added an event every 100 ms tick, about 40 of
# each. The status compress job says "waiting" for "error", with the message and a
# retry time, and bkstorctl status prints it.
. "${top_srcdir:-.}/tests/daemon-lib.sh"

d_start || exit 1 # (makes the demo: a new store, nothing pending)
d_stop
export BKS_TEST_DEFER_ERROR=5
d_start || exit 1
sleep 4
check "events" 0 ctl events
n=$(grep -c "deferred compression: Input/output error" "$T/out")
[ "$n" = 1 ] && ok "one event for the error in 4 s" || bad "$n events for the error in 4 s"
sleep 0.3
ctl status --json >"$T/st.json" || bad "status"
job() {
	jget "$T/st.json" '[j for j in d["jobs"] if j["kind"] == "compress"][0]["'"$1"'"]'
}
st=$(job state) wf=$(job waiting_for) msg=$(job error) tries=$(job errors) at=$(job retry_ns)
echo "# compress job: $st, waiting for $wf ($msg), $tries failed tries, retry at $at"
[ "$st" = waiting ] && [ "$wf" = error ] && [ "$msg" = "Input/output error" ] &&
	ok "compress job: $st for $wf ($msg)" || bad "compress job: state $st, waiting_for $wf, error $msg"
[ "$tries" -ge 2 ] && [ "$tries" -le 3 ] && ok "$tries tries in 4 s (backing off)" ||
	bad "$tries tries in 4 s"
[ "$(python3 -c "import time; print(int($at > time.time_ns() - 2 * 10**9))")" = 1 ] &&
	ok "a retry time is given" || bad "retry_ns $at"
check "bkstorctl status" 0 ctl status
grep -q "compress waiting: Input/output error" "$T/out" &&
	ok "bkstorctl: $(grep -o "compress waiting.*" "$T/out")" || bad "bkstorctl status: $(cat "$T/out")"
d_stop
d_finish
