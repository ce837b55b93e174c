#!/bin/sh
# Install every Debian package bkstor's build and tests need; with --bench also the
# peer tools the benchmarks compare against (casync, restic, borg, fio, nfs-ganesha).
# Idempotent: packages already present are left alone. Debian 12.
set -eu
PKGS="build-essential autoconf automake libtool pkg-config
libaio-dev libisal-dev libzstd-dev libxxhash-dev libmicrohttpd-dev libssl-dev
clang libclang-rt-14-dev util-linux python3 curl bc chromium openssl
libnfs-utils libnfs-dev libiscsi-bin libiscsi-dev tgt"
# The dashboard's browser test drives chromium with playwright-core (npm); take
# Debian's node only when there is none (another node may already be installed).
if ! command -v npm >/dev/null 2>&1; then PKGS="$PKGS nodejs npm"; fi
if [ "${1:-}" = "--bench" ]; then PKGS="$PKGS fio casync restic borgbackup wrk nfs-ganesha nfs-ganesha-vfs rpcbind"; fi

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done
if [ -z "$missing" ]; then
	echo "install-deps: all packages present"
	exit 0
fi
echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
