#!/bin/bash
# grpc_badinput.sh - malformed protobuf, unknown services and methods,
# oversize messages, header floods, HTTP/2 protocol garbage, PINGs and many
# streams on etcfsd's gRPC port (grpc_badinput.py): each gets a clear status
# or a closed connection and the member keeps serving.  Then `hasleader`:
# with the majority stopped, a call carrying it gets Unavailable
# "etcdserver: no leader".
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
if ! "$PY" -c 'import grpc, etcd3' 2>/dev/null; then
	echo "SKIP grpc_badinput: python3-grpcio/python3-etcd3 missing (make deps installs them)"
	exit 0
fi
cluster_start 3
"$PY" "$(dirname "$0")/grpc_badinput.py" "${M_HPORT[1]}" || T_FAILED=$((T_FAILED + 1))
check "member 1 alive after bad input" kill -0 "${M_PID[1]}"

# Keep one follower and stop the other two members: the follower loses its
# leader after an election timeout and cannot elect a new one.
L=$(leader_index)
K=1
[ "$L" = 1 ] && K=2
for i in 1 2 3; do [ "$i" != "$K" ] && member_stop "$i"; done
no_leader() {
	"$PY" - "${M_HPORT[$K]}" <<'PY'
import sys, grpc
from etcd3.etcdrpc import rpc_pb2
ch = grpc.insecure_channel("127.0.0.1:" + sys.argv[1])
try:
    ch.unary_unary("/etcdserverpb.KV/Range")(rpc_pb2.RangeRequest(key=b"a").SerializeToString(),
                                             timeout=5, metadata=(("hasleader", "true"),))
    sys.exit(1)
except grpc.RpcError as e:
    sys.exit(0 if e.code() == grpc.StatusCode.UNAVAILABLE and e.details() == "etcdserver: no leader" else 1)
PY
}
if wait_for 30 "hasleader answered with Unavailable" no_leader; then
	pass "hasleader without a leader -> Unavailable etcdserver: no leader"
else
	fail "hasleader without a leader -> Unavailable etcdserver: no leader"
fi
for i in 1 2 3; do [ "$i" != "$K" ] && member_cont "$i"; done
t_finish
