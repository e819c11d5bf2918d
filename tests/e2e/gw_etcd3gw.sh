#!/bin/bash
# etcd3gw (Debian's python3-etcd3gw, a client of etcd's JSON gateway) against
# etcfsd's HTTP gateway, and, when etcd is installed, the very same checks
# against a throwaway etcd 3.4 on loopback: both must answer alike.
source "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)

PY=""
for p in /usr/bin/python3 python3; do
	if command -v "$p" >/dev/null && "$p" -c 'import etcd3gw' 2>/dev/null; then PY=$p; break; fi
done
if [ -z "$PY" ]; then
	echo "SKIP gw_etcd3gw: python3-etcd3gw is not installed (apt-get install python3-etcd3gw)"
	exit 0
fi

cluster_start 1
E="http://127.0.0.1:${M_HPORT[1]}"
wait_for 30 "HTTP gateway answers" curl -sf -o /dev/null "$E/health"
timeout 300 "$PY" "$HERE/gw_etcd3gw.py" --endpoint "$E" --label etcfsd || T_FAILED=$((T_FAILED + 1))

if command -v etcd >/dev/null; then
	cport=$(free_port)
	pport=$(free_port)
	etcd --name gwref --data-dir "$T_DIR/etcd" \
		--listen-client-urls "http://127.0.0.1:$cport" --advertise-client-urls "http://127.0.0.1:$cport" \
		--listen-peer-urls "http://127.0.0.1:$pport" --initial-advertise-peer-urls "http://127.0.0.1:$pport" \
		--initial-cluster "gwref=http://127.0.0.1:$pport" </dev/null >"$T_DIR/etcd.log" 2>&1 &
	T_PIDS+=("$!")
	if wait_for 60 "etcd answers /health" curl -sf -o /dev/null "http://127.0.0.1:$cport/health"; then
		timeout 300 "$PY" "$HERE/gw_etcd3gw.py" --endpoint "http://127.0.0.1:$cport" --label etcd ||
			T_FAILED=$((T_FAILED + 1))
	else
		fail "etcd reference server started" "$(tail -5 "$T_DIR/etcd.log")"
	fi
else
	echo "SKIP etcd reference run: etcd is not installed"
fi
t_finish
