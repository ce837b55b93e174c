#!/bin/sh
# tests/test-repl-resume.sh: replication survives cuts (issue 12). A sends to B
# through a TCP proxy that cuts each of its first connections after a random amount
# (256 KiB .. 3 MiB; TLS passes through it untouched), and B is killed with -9 twice
# during the transfer and started again. Everything converges: every file on B is
# byte-identical, B verifies clean, and no chunk crossed more than once per cut
# (A logs each chunk it sends at debug level: sends per fingerprint <= 1 + cuts).
# Then B is frozen (SIGSTOP) mid-transfer: A still stops within seconds.
. "${top_srcdir:-.}/tests/repl-lib.sh"

r_make a "$PA" "$RA" 168h && r_make b "$PB" "$RB" 168h || exit 1
printf 'peer = 127.0.0.1:%s\nbwlimit = 12M\n' "$PX" >>"$T/a/bkstord.conf"
sed -i 's/^level = info$/level = debug/' "$T/a/bkstord.conf"
r_start a && r_start b || exit 1
check "pair A with B" 0 r_pair

# The proxy: forwards 127.0.0.1:PX to B's listener; the first CUTS connections are
# closed after a random number of bytes from A. Writes the cuts it made to a file.
CUTS=5
python3 - "$PX" "$RB" "$CUTS" "$T/cuts" <<'PY' &
import random, socket, sys, threading
px, rb, cuts, out = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
rnd = random.Random(12)
lock = threading.Lock()
made = [0]
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", px))
ls.listen(16)
def pipe(src, dst, budget, pair):
    try:
        while True:
            b = src.recv(65536)
            if not b:
                break
            if budget is not None:
                budget[0] -= len(b)
                if budget[0] <= 0:
                    with lock:
                        made[0] += 1
                        open(out, "w").write("%d\n" % made[0])
                    break
            dst.sendall(b)
    except OSError:
        pass
    for s in pair:
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        s.close()
while True:
    c, _ = ls.accept()
    try:
        b = socket.create_connection(("127.0.0.1", rb))
    except OSError:
        c.close()
        continue
    with lock:
        cut = made[0] < cuts
    budget = [rnd.randint(256 << 10, 3 << 20)] if cut else None
    threading.Thread(target=pipe, args=(c, b, budget, (c, b)), daemon=True).start()
    threading.Thread(target=pipe, args=(b, c, None, (c, b)), daemon=True).start()
PY
PXPID=$!
trap 'kill -9 $PXPID 2>/dev/null; rcleanup' EXIT

# 4 files: 3 of random bytes (every chunk new) and a copy of the first (no chunk).
for i in 1 2 3; do head -c $((12 << 20)) /dev/urandom >"$T/f$i"; done
cp "$T/f1" "$T/f4"
for i in 1 2 3 4; do ca put "$T/f$i" "/r/f$i" -p >/dev/null || bad "put f$i"; done
ca commit >/dev/null
# Kill B twice while the files cross.
kills=0
for delay in 1.5 2; do
	sleep "$delay"
	r_kill9 b
	kills=$((kills + 1))
	sleep 0.5
	r_start b || exit 1
done
if r_synced 90; then ok "converged after the cuts ($(rj a "d['cycles']") cycles)"
else bad "no lag 0 after 90 s: $(rj a "d['state'], d['last_error'], d['lag']")"; fi
pcuts=$(cat "$T/cuts" 2>/dev/null || echo 0)
echo "# cuts: $pcuts by the proxy, $kills kill -9 of B"
[ "$pcuts" -ge 1 ] && ok "the proxy cut $pcuts connections" || bad "the proxy cut nothing"
for i in 1 2 3 4; do
	cb get "/r/f$i" - 2>/dev/null | cmp -s - "$T/f$i" && ok "B: f$i byte-identical" ||
		bad "B: f$i differs or is missing"
done
check "B: verify --wait is clean" 0 cb verify --wait
ncuts=$((pcuts + kills))
grep -o 'sent chunk [0-9a-f]*' "$T/a.log" | sort | uniq -c | sort -rn >"$T/sends"
maxs=$(awk 'NR == 1 {print $1}' "$T/sends")
uniq=$(wc -l <"$T/sends")
total=$(awk '{s += $1} END {print s}' "$T/sends")
echo "# chunks: $uniq distinct, $total sends, at most $maxs sends of one"
[ "$uniq" -gt 0 ] && [ "$maxs" -le $((1 + ncuts)) ] &&
	ok "no chunk sent more than 1 + $ncuts times (max $maxs; $((total - uniq)) resends)" ||
	bad "a chunk was sent $maxs times with $ncuts cuts"
# A copy of f1 (f4): none of its chunks crossed on their own: f1's were enough.
[ "$uniq" -le $((3 * (12 << 20) / 4096)) ] && ok "distinct chunks sent bounded by 3 files" ||
	bad "$uniq distinct chunks"
# A twin that stops reading (SIGSTOP) mid-transfer must not hold the source's
# shutdown for its 60 s send timeout.
head -c $((24 << 20)) /dev/urandom >"$T/f5"
ca put "$T/f5" /r/f5 >/dev/null || bad "put f5"
ca commit >/dev/null
sleep 1
kill -STOP "$PIDb"
sleep 1
t0=$(date +%s)
r_stop a
took=$(($(date +%s) - t0))
kill -CONT "$PIDb"
[ "$took" -lt 10 ] && ok "A stopped in ${took} s while its twin was frozen mid-transfer" ||
	bad "A took ${took} s to stop while its twin was frozen"
kill -9 $PXPID 2>/dev/null
r_finish
