#!/bin/bash
# grpc_etcd3py.sh - python3-etcd3 (Debian's, over gRPC) against a 3-member
# etcfsd: KV, txn, watch, watch_prefix, leases, locks (grpc_etcd3py.py).
# /usr/bin/python3 explicitly: the python3 first on PATH may lack the module.
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
if ! "$PY" -c 'import etcd3' 2>/dev/null; then
	echo "SKIP grpc_etcd3py: python3-etcd3 missing (make deps installs it)"
	exit 0
fi
E2E_ADVERTISE_HTTP=1 cluster_start 3
"$PY" "$(dirname "$0")/grpc_etcd3py.py" "${M_HPORT[1]}" "${M_HPORT[2]}" "${M_HPORT[3]}" || T_FAILED=$((T_FAILED + 1))
t_finish
