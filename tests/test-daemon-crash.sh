#!/bin/sh
# test-daemon-crash: kill -9 the daemon during a put, many times at random moments.
# After each restart every put that completed is intact, the interrupted one is
# absent (or, if the daemon had finished it before dying, whole and correct: never
# partial), and at the end verify is clean.
. "${top_srcdir:-.}/tests/daemon-lib.sh"
ROUNDS=${BKS_CRASH_ROUNDS:-15}

make_base "$T/base" 40
gens "$T/base" "$T/gens" 3
d_start || exit 1
ctl mkdir /b >/dev/null 2>&1
done_list=""
cut=0
for i in $(seq 1 "$ROUNDS"); do
	src="$T/gens/gen0$(( (i % 3) + 1 )).img"
	ctl put "$src" "/b/f$i" >"$T/put.out" 2>&1 &
	cpid=$!
	# A random moment within the put (which takes a fraction of a second).
	sleep "0.$(printf %02d $(( $(od -An -N2 -tu2 /dev/urandom) % 40 )))"
	d_kill9
	wait "$cpid"; prc=$?
	if [ $prc = 0 ]; then done_list="$done_list $i:$src"; else cut=$((cut + 1)); fi
	d_start || { bad "restart after kill $i"; d_finish; }
	# Every completed put intact.
	bad_n=0
	for e in $done_list; do
		n=${e%%:*}; s=${e#*:}
		ctl get "/b/f$n" "$T/chk" >/dev/null 2>&1 && cmp -s "$T/chk" "$s" || bad_n=$((bad_n + 1))
	done
	[ $bad_n = 0 ] && ok "kill $i: every completed put intact" || bad "kill $i: $bad_n completed puts damaged"
	if [ $prc != 0 ]; then
		if ctl stat "/b/f$i" >/dev/null 2>&1; then
			ctl get "/b/f$i" "$T/chk" >/dev/null 2>&1 && cmp -s "$T/chk" "$src" &&
				ok "kill $i: the interrupted put had finished: whole" ||
				bad "kill $i: the interrupted put is visible and partial"
		else
			ok "kill $i: the interrupted put is absent"
		fi
	fi
done
echo "# $cut of $ROUNDS kills landed inside a put"
[ "$cut" -gt 0 ] && ok "some kills interrupted a put ($cut)" || bad "no kill landed inside a put"
check "verify after $ROUNDS kills" 0 ctl verify --wait
d_stop && ok "clean stop" || bad "stop"
d_finish
