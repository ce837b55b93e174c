#!/bin/sh
# test-web-browser: the dashboard in a real browser (headless Chromium driven by
# playwright-core, tests/web-browser.mjs) against bkstord --demo: log in (a wrong
# password shows an error), the NFS card lists the client that wrote over NFS and the
# export's bytes, 8 member tiles and a spare, fail slot 3 from its tile and
# watch the spare rebuild on the progress bar until the array is ONLINE again, start a
# scrub, no Content-Security-Policy violations, no horizontal scrolling at 375 px.
# The data written before the failure reads back intact afterwards.
#
# Needs Debian's chromium (installed with apt-get when running as root) and node ≥ 18;
# playwright-core is installed with npm into $BKS_NPM_CACHE (/var/tmp/bkstor-npm).
# Exit 77 (skip) when either cannot be had. Screenshots go to $BKS_ARTIFACTS.
. "${top_srcdir:-.}/tests/daemon-lib.sh"

CHROMIUM=${BKS_CHROMIUM:-/usr/bin/chromium}
NPM_DIR=${BKS_NPM_CACHE:-/var/tmp/bkstor-npm}
ARTIFACTS=${BKS_ARTIFACTS:-$T/artifacts}
PASSWORD="dashboard test $$"
start_s=$(date +%s)

if [ ! -x "$CHROMIUM" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
	echo "# installing chromium with apt-get"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >"$T/apt.log" 2>&1 ||
		{ apt-get update -q >>"$T/apt.log" 2>&1 &&
		  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >>"$T/apt.log" 2>&1; }
fi
[ -x "$CHROMIUM" ] || { echo "SKIP: no chromium at $CHROMIUM (apt-get install chromium as root)"; exit 77; }
command -v node >/dev/null 2>&1 || { echo "SKIP: node missing (apt-get install nodejs npm)"; exit 77; }
[ "$(node -e 'console.log(process.versions.node.split(".")[0] >= 18 ? 1 : 0)')" = 1 ] ||
	{ echo "SKIP: node $(node --version) is older than 18"; exit 77; }
if [ ! -f "$NPM_DIR/node_modules/playwright-core/package.json" ]; then
	command -v npm >/dev/null 2>&1 || { echo "SKIP: npm missing, cannot install playwright-core"; exit 77; }
	echo "# installing playwright-core into $NPM_DIR"
	mkdir -p "$NPM_DIR" && (cd "$NPM_DIR" && npm install --no-save --no-audit --no-fund \
		--prefix "$NPM_DIR" playwright-core) >"$T/npm.log" 2>&1 ||
		{ echo "SKIP: npm could not install playwright-core:"; tail -5 "$T/npm.log"; exit 77; }
fi

# A first start makes the demo directory; then slow background work down so that a
# rebuild takes seconds (the page's progress bar can be watched), and start for real.
d_start || exit 1
d_stop || bad "first stop"
sed -i '/^\[array\]/a bg_max_rate = 8M\nbg_min_rate = 4M' "$DEMO/bkstord.conf"
d_start || exit 1
WEB=$(awk '/^\[/ { s = $0 } s == "[web]" && $1 == "listen" { print $3 }' "$DEMO/bkstord.conf")
[ -n "$WEB" ] || { bad "no [web] listen in $DEMO/bkstord.conf"; d_finish; }
make_base "$T/base" 150
check "put 150 MB" 0 ctl put -p "$T/base" /b/x
# An NFS client writes a file (the overview's NFS card lists it), when libnfs-utils is here.
BKS_NFS_CLIENT=""
if command -v nfs-cp >/dev/null 2>&1; then
	head -c 3000000 /dev/urandom >"$T/nfs.in"
	check "nfs-cp 3 MB into /b" 0 nfs-cp "$T/nfs.in" \
		"nfs://127.0.0.1/b/nfs.in?version=3&nfsport=$((PORT + 2))&mountport=$((PORT + 3))"
	[ "$got" = 0 ] && BKS_NFS_CLIENT=127.0.0.1
fi
printf '%s\n' "$PASSWORD" | ctl passwd --stdin >"$T/out" 2>&1 && ok "bkstorctl passwd --stdin" ||
	{ bad "passwd: $(cat "$T/out")"; d_finish; }

# A disk with an ext4 signature, for the add-spare confirmation.
truncate -s "$(stat -c %s "$DEMO/disks/disk0.img")" "$T/dirty.img"
printf '\123\357' | dd of="$T/dirty.img" bs=1 seek=1080 conv=notrunc 2>/dev/null
mkdir -p "$ARTIFACTS"
BKS_URL="http://$WEB/" BKS_PASSWORD="$PASSWORD" BKS_ARTIFACTS="$ARTIFACTS" BKS_DIRTY_DISK="$T/dirty.img" \
	BKS_NFS_CLIENT="$BKS_NFS_CLIENT" \
	BKS_NPM_DIR="$NPM_DIR" BKS_CHROMIUM="$CHROMIUM" \
	node "${top_srcdir:-.}/tests/web-browser.mjs"
rc=$?
[ "$rc" = 0 ] && ok "browser checks (exit 0)" || bad "browser checks: exit $rc (the FAIL lines above)"

# What the page did, seen from the CLI.
ctl status --json >"$T/st.json" 2>/dev/null || bad "status after the browser test"
[ "$(jget "$T/st.json" 'd["health"]')" = ONLINE ] && ok "the array is ONLINE after the rebuild" ||
	bad "health $(jget "$T/st.json" 'd["health"], d["action"]')"
[ "$(jget "$T/st.json" '[x["path"].rsplit("/", 1)[-1] for x in d["array"]["disks"] if x["slot"] == 3]')" = "['spare0.img']" ] &&
	ok "slot 3 is now the former spare" || bad "slot 3: $(jget "$T/st.json" '[x for x in d["array"]["disks"] if x["slot"] == 3]')"
check "get after the rebuild and scrub" 0 ctl get /b/x "$T/back"
cmp -s "$T/back" "$T/base" && ok "data intact" || bad "data differs after the rebuild"
d_stop && ok "clean stop" || bad "stop"
echo "# screenshots: $ARTIFACTS$([ -z "${BKS_ARTIFACTS:-}" ] && [ -z "${BKS_KEEP:-}" ] &&
	echo " (removed at exit; set BKS_ARTIFACTS=DIR or BKS_KEEP=1 to keep them)")"
echo "# took $(($(date +%s) - start_s)) s"
d_finish
