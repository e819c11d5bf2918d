#!/bin/sh
# Installs (apt) whatever etcfs needs to build and test that is missing
# (the tests drive real tools on the mount: vim in ex mode, nano, rsync...).
# Called by `make check`, `make run`, `make asan`; safe to run repeatedly.
set -e
PKGS="build-essential pkg-config clang clang-format libfuse3-dev fuse3 libnng-dev liblmdb-dev libzstd-dev
libssl-dev libjansson-dev inotify-tools attr curl python3 python3-etcd3gw vim nano procps
psmisc git rsync tar coreutils util-linux
libnghttp2-dev libprotobuf-c-dev protobuf-c-compiler libmicrohttpd-dev nghttp2-client
etcd-server etcd-client python3-etcd3"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "etcfs: missing packages:$missing (run as root, or: sudo apt-get install$missing)" >&2
	exit 1
fi
echo "etcfs: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
