#!/bin/sh
# tests/test-iscsi-conformance.sh: libiscsi's conformance suite (iscsi-test-cu) against
# a thin 1 GiB LUN of the demo daemon, each suite of the ALL family on its own with
# -d -v (and the URL given twice, so MultipathIO runs over two sessions), and the same suites against tgt 1.0.85 (tgtd, Debian's tgt) on a sparse
# file LUN of the same size, in the same run.
#
# CUnit counts a skipped test as passed, so results are read from the verbose
# output: a test is FAIL when CUnit says FAILED, SKIP when it printed [SKIPPED] (or
# "not implemented") and passed, PASS otherwise. Prints iscsi_cu_pass,
# iscsi_cu_fail, iscsi_cu_skip for bkstor and tgt_cu_pass, tgt_cu_fail,
# tgt_cu_skip, then the names of the failing tests of each.
# The gate: 0 FAIL for bkstor (exit 1 otherwise). ISCSI_CU_SUITES (a blank-separated
# list of ALL.* suites) narrows the run; tgt is skipped (not the test) when tgtd is
# missing; ISCSI_CU_TGT=no skips it on purpose.
. "${top_srcdir:-.}/tests/daemon-lib.sh"

command -v iscsi-test-cu >/dev/null 2>&1 || { echo "SKIP: iscsi-test-cu missing (libiscsi-bin)"; exit 77; }

IPORT=$((PORT + 4))
# Suites: every ALL.<suite> of this iscsi-test-cu.
SUITES=${ISCSI_CU_SUITES:-$(iscsi-test-cu --list 2>/dev/null | grep -E '^ALL\.[A-Za-z0-9_-]+$')}
[ -n "$SUITES" ] || { bad "iscsi-test-cu --list gave no suites"; d_finish; }

d_start || exit 1
PFX=$(sed -n 's/.*targets \(iqn[^ ]*\):<lun>.*/\1/p' "$T/daemon.log" | tail -1)
check "lun create cu 1G" 0 ctl lun create cu 1G
BURL="iscsi://127.0.0.1:$IPORT/$PFX:cu/0"

# run_suites NAME URL: every suite on its own; per-test results into $T/NAME.res
run_suites() {
	: >"$T/$1.res"
	for s in $SUITES; do
		# The URL twice: the MultipathIO suite then runs over two sessions.
		timeout 300 iscsi-test-cu -d -v "$2" "$2" -t "$s" >"$T/$1.out" 2>&1
		python3 - "$s" "$T/$1.out" >>"$T/$1.res" <<'PY'
import re, sys
suite, path = sys.argv[1], sys.argv[2]
cur, res, order = None, {}, []
for ln in open(path, errors="replace"):
    for m in re.finditer(r"Test: (\S+) \.\.\.", ln):
        cur = m.group(1)
        res[cur] = "PASS"
        order.append(cur)
    if cur is None:
        continue
    if "[SKIPPED]" in ln or "not implemented" in ln.lower():
        if res[cur] == "PASS":
            res[cur] = "SKIP"
    if re.search(r"(^|\.\.\.|\s)FAILED\s*$", ln):
        res[cur] = "FAIL"
if not order:
    print("FAIL %s (no test ran)" % suite)
for t in order:
    print("%s %s.%s" % (res[t], suite, t))
PY
	done
}

t0=$(date +%s)
run_suites bkstor "$BURL"
t1=$(date +%s)
bp=$(grep -c '^PASS' "$T/bkstor.res"); bf=$(grep -c '^FAIL' "$T/bkstor.res")
bs=$(grep -c '^SKIP' "$T/bkstor.res")
printf 'iscsi_cu_pass %s\niscsi_cu_fail %s\niscsi_cu_skip %s\n' "$bp" "$bf" "$bs"
echo "bkstor: $(echo $SUITES | wc -w) suites in $((t1 - t0)) s"
grep '^FAIL' "$T/bkstor.res" | sed 's/^/  bkstor /'
[ "$bf" = 0 ] && ok "bkstor: no FAIL in iscsi-test-cu" || bad "bkstor: $bf tests FAIL"
d_stop || bad "stop"

# tgt on a sparse file of the same size, another port, its own control channel.
if [ "${ISCSI_CU_TGT:-yes}" != no ] && command -v tgtd >/dev/null 2>&1 &&
   command -v tgtadm >/dev/null 2>&1; then
	TPORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	CPORT=$((100 + $$ % 30000)) # tgtadm takes at most 32767
	truncate -s 1G "$T/tgt.img"
	tgtd -f -C "$CPORT" --iscsi "portal=127.0.0.1:$TPORT" >"$T/tgtd.log" 2>&1 &
	TPID=$!
	trap '[ -n "$TPID" ] && kill -9 "$TPID" 2>/dev/null; cleanup' EXIT
	for _ in $(seq 50); do
		tgtadm -C "$CPORT" --lld iscsi --op show --mode target >/dev/null 2>&1 && break
		sleep 0.1
	done
	TIQN=iqn.2026-12.org.debian.tgt:cu
	if tgtadm -C "$CPORT" --lld iscsi --op new --mode target --tid 1 -T "$TIQN" &&
	   tgtadm -C "$CPORT" --lld iscsi --op new --mode logicalunit --tid 1 --lun 1 \
	          -b "$T/tgt.img" &&
	   tgtadm -C "$CPORT" --lld iscsi --op bind --mode target --tid 1 -I ALL; then
		t0=$(date +%s)
		run_suites tgt "iscsi://127.0.0.1:$TPORT/$TIQN/1"
		t1=$(date +%s)
		tp=$(grep -c '^PASS' "$T/tgt.res"); tf=$(grep -c '^FAIL' "$T/tgt.res")
		ts=$(grep -c '^SKIP' "$T/tgt.res")
		printf 'tgt_cu_pass %s\ntgt_cu_fail %s\ntgt_cu_skip %s\n' "$tp" "$tf" "$ts"
		echo "tgt: $(echo $SUITES | wc -w) suites in $((t1 - t0)) s"
		grep '^FAIL' "$T/tgt.res" | sed 's/^/  tgt /'
	else
		echo "tgt: could not set up a target (tgtd log below); not compared"
		tail -5 "$T/tgtd.log"
	fi
	# tgtd ignores SIGTERM while it has targets: delete them, shut it down.
	tgtadm -C "$CPORT" --op delete --mode target --tid 1 --force >/dev/null 2>&1
	tgtadm -C "$CPORT" --op delete --mode system >/dev/null 2>&1
	for _ in $(seq 20); do kill -0 "$TPID" 2>/dev/null || break; sleep 0.1; done
	kill -9 "$TPID" 2>/dev/null
	wait "$TPID" 2>/dev/null
	TPID=""
else
	echo "tgt: not compared (tgtd missing or ISCSI_CU_TGT=no)"
fi
d_finish
