#!/bin/bash
# bench/grpc_bench.sh [SECONDS] - gRPC load: KV/Put and KV/Range through h2load
# (Debian's nghttp2-client) with pre-encoded request bodies, at 1, 16 and 64
# connections (one stream in flight each), against a 3-member etcfs and a
# 3-member etcd 3.4 started on loopback in one run.  Prints req/s and the
# mean/max latency h2load reports, plus grpc-status of a sample call (h2load
# counts HTTP 200, which a gRPC error also is).  Figures go to the issue
# notes, never into timed tests.
set -u
SECS=${1:-5}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/tests/e2e/lib.sh"
command -v h2load >/dev/null || { echo "h2load missing (apt-get install nghttp2-client)"; exit 1; }

# gRPC messages: 5-byte prefix + protobuf.  PutRequest{key="bench/key",
# value=100 bytes}, RangeRequest{key="bench/key"}.
/usr/bin/python3 - "$T_DIR" <<'PY'
import struct, sys
def msg(b): return b"\0" + struct.pack(">I", len(b)) + b
def ld(field, b): return bytes([field << 3 | 2, len(b)]) + b
key = b"bench/key"
open(sys.argv[1] + "/put.bin", "wb").write(msg(ld(1, key) + ld(2, b"v" * 100)))
open(sys.argv[1] + "/range.bin", "wb").write(msg(ld(1, key)))
PY

E2E_ADVERTISE_HTTP=1 cluster_start 3
etcd_start 3
export ETCDCTL_API=3
leader_ep() { # endpoints -> the leader's host:port
	etcdctl --endpoints "$1" endpoint status -w json | /usr/bin/python3 -c '
import json, sys
d = json.load(sys.stdin)
print([e["Endpoint"] for e in d if e["Status"]["leader"] == e["Status"]["header"]["member_id"]][0])'
}
EFS=""
for i in 1 2 3; do EFS+="${EFS:+,}127.0.0.1:${M_HPORT[$i]}"; done
EFS_L=$(leader_ep "$EFS")
ETCD_L=$(leader_ep "$ETCD_EPS")
etcdctl --endpoints "$EFS_L" put bench/key v >/dev/null
etcdctl --endpoints "$ETCD_L" put bench/key v >/dev/null

run() { # system endpoint method body conns
	local out rps mean max
	out=$(h2load -D "$SECS" -c "$5" -m 1 -t 1 -d "$4" \
		-H 'content-type: application/grpc' -H 'te: trailers' \
		"http://$2/etcdserverpb.KV/$3" 2>&1)
	rps=$(echo "$out" | sed -nE 's/^finished in .*, ([0-9.]+) req\/s.*/\1/p')
	mean=$(echo "$out" | awk '/^time for request:/ {print $6}')
	max=$(echo "$out" | awk '/^time for request:/ {print $5}')
	ok=$(echo "$out" | sed -nE 's/.* ([0-9]+) succeeded.*/\1/p' | head -1)
	printf "%-6s %-6s %5s conns  %10s req/s  mean %-9s max %-9s (%s ok)\n" "$1" "$3" "$5" "$rps" "$mean" "$max" "$ok"
}
for m in Put Range; do
	body=$T_DIR/$(echo "$m" | tr 'A-Z' 'a-z').bin
	for c in 1 16 64; do
		run etcfs "$EFS_L" "$m" "$body" "$c"
		run etcd "$ETCD_L" "$m" "$body" "$c"
	done
done
# grpc-status of one call of each kind (0 = OK), so the numbers count successes
for sys in "etcfs $EFS_L" "etcd $ETCD_L"; do
	set -- $sys
	st=$(nghttp -v -d "$T_DIR/put.bin" -H 'content-type: application/grpc' -H 'te: trailers' \
		"http://$2/etcdserverpb.KV/Put" 2>&1 | grep -a -o 'grpc-status: [0-9]*' | head -1)
	echo "$1 sample put: $st"
done
