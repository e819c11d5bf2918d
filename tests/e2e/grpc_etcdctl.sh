#!/bin/bash
# grpc_etcdctl.sh - Debian's etcdctl 3.4 (unmodified, ETCDCTL_API=3) runs the
# same scripted session against a 3-member etcfsd cluster (gRPC on the
# members' http:// port, shared with the JSON gateway) and against a
# throwaway 3-member etcd 3.4; the outputs must be identical byte for byte
# once what must differ is masked: member, lease and cluster ids, ports,
# raft terms and indexes, database sizes, the server version, latencies,
# hashes and the peer URL scheme (etcfs peers speak tcp://).  Both run
# with --experimental-watch-progress-notify-interval 1s.
source "$(dirname "$0")/lib.sh"
export ETCDCTL_API=3
CTL=/usr/bin/etcdctl
for b in "$CTL" /usr/bin/etcd; do
	[ -x "$b" ] || { echo "SKIP grpc_etcdctl: $b missing (make deps installs etcd-client, etcd-server)"; exit 0; }
done

# progress notifications every second on both (Kubernetes runs etcd with 5s)
E2E_ADVERTISE_HTTP=1 cluster_start 3 --experimental-watch-progress-notify-interval 1s
etcd_start 3 --experimental-watch-progress-notify-interval 1s
EFS_EPS=""
for i in 1 2 3; do EFS_EPS+="${EFS_EPS:+,}127.0.0.1:${M_HPORT[$i]}"; done

# Mask what legitimately differs between the two clusters.
mask() {
	sed -E \
		-e '/^\{"level":"(warn|info)"/d' \
		-e 's/127\.0\.0\.1:[0-9]+/127.0.0.1:PORT/g' \
		-e 's#tcp://127#http://127#g' \
		-e 's/\b[0-9]{12,}\b/ID/g' \
		-e 's/\b[0-9a-f]{12,16}\b/ID/g' \
		-e 's/"RaftTerm" : [0-9]+/"RaftTerm" : N/' \
		-e 's/remaining\((99|100)s\)/remaining(~100s)/' \
		-e 's/"(cluster_id|member_id|leader|ID|raft_term|raftTerm|raftIndex|raftAppliedIndex|dbSize|dbSizeInUse|hash)":[0-9]+/"\1":N/g' \
		-e 's/"version":"[0-9.]+"/"version":"V"/g' \
		-e 's/took = [0-9.]+[µm]?s/took = T/g' \
		-e 's/\b3\.4\.[0-9]+\b/V/g' \
		-e 's/[0-9.]+ (kB|MB|B)\b/SIZE/g' \
		-e 's/^(\| [^|]*\| [^|]*\| [^|]*\| [^|]*\|[^|]*\|[^|]*\|) *[0-9]+ *\| *[0-9]+ *\| *[0-9]+ *\|/\1 N | N | N |/' \
		-e 's/^(\| [^|]*\|) *[0-9]+ *\|$/\1 HASH |/' \
		-e 's/ +/ /g' -e 's/-+/-/g'
}

by_name() { # member list -w json with the members sorted by name
	python3 -c '
import json, sys
for line in sys.stdin:
    try:
        d = json.loads(line)
        d["members"].sort(key=lambda m: m["name"])
        print(json.dumps(d, separators=(",", ":")))
    except (ValueError, KeyError, TypeError):
        print(line, end="")'
}

BIG=$T_DIR/big.value
head -c 2000000 /dev/zero | tr '\0' x >"$BIG"

# One session: $1 = all endpoints, output on stdout.
session() {
	local eps=$1 ep1=${1%%,*}
	local c="$CTL --endpoints $ep1 --command-timeout 5s"
	local call="$CTL --endpoints $eps --command-timeout 5s"
	run() { echo "### $*"; "$@" 2>&1; echo "rc=$?"; }
	run $c put k1 v1
	run $c put k2 v2 --prev-kv
	run $c put k1 v1b --prev-kv
	run $c put k3 v3
	run $c get k1
	run $c get k --prefix
	run $c get k1 --print-value-only
	run $c get k --prefix --keys-only
	run $c get k --prefix --limit 1 -w json
	run $c get k --prefix --sort-by=MODIFY --order=DESCEND
	run $c get k --prefix --sort-by=VALUE --order=ASCEND -w simple
	run $c get k1 --rev 2
	run $c get k1 -w json
	run $c get k2 --from-key
	run $c get k1 --consistency=s
	run $c get k --prefix -w fields
	run $c put k3 --ignore-value
	run $c put nokey --ignore-value
	run $c put k9 v9 --ignore-lease
	run $c del k2 --prev-kv
	run $c del nokey
	printf 'value("k1") = "v1b"\n\nput k4 yes\nget k1\n\nput k4 no\n\n' | run $c txn
	printf 'value("k1") = "nope"\n\nput k4 yes\n\nput k4 no\nget k4\n\n' | run $c txn -w json
	printf 'mod("k1") > "0"\nversion("k3") = "1"\n\ndel k4\n\n\n' | run $c txn -i
	printf 'create("k1") < "1"\n\n\nget k1\n\n' | run $c txn -w fields
	run timeout 3 $c watch --rev 1 --prefix k
	run timeout 3 $c watch --rev 2 k1 --prev-kv
	run timeout 3 $c watch --rev 1 k1 -- sh -c 'echo "exec $ETCD_WATCH_EVENT_TYPE $ETCD_WATCH_KEY $ETCD_WATCH_VALUE"'
	(printf 'watch --rev 1 k3\n'; sleep 2) | run timeout 3 $c watch -i
	run timeout 3 $c watch --rev 3 k1 -w json
	run timeout 3.5 $c watch --progress-notify k1 | uniq # one line per second
	local lid
	lid=$($c lease grant 100 | awk '{print $2}')
	run $c lease timetolive "$lid"
	run $c put lk lv --lease "$lid"
	run $c lease timetolive "$lid" --keys
	run $c lease list
	run $c lease keep-alive --once "$lid"
	run timeout 2 $c lease keep-alive "$lid"
	run $c lease revoke "$lid"
	run $c lease timetolive "$lid"
	run $c get lk
	run $c lease revoke 1234
	run $c lease keep-alive --once 1234
	run $c lease grant 10 -w json
	run $c lock mylock -- echo in the lock
	run timeout 3 $c elect myelection alice
	run $c get myelection --prefix --keys-only
	run $call endpoint health
	run $call endpoint status -w table | mask | sort # which row is the leader differs
	run $call endpoint status -w json
	run $call endpoint hashkv -w table
	run $call endpoint hashkv -w json
	# members come sorted by their (random) ids: compare them sorted by name
	run $c member list | mask | sort
	run $c member list -w table | mask | sort
	run $c member list -w json | by_name
	run $c alarm list
	run $c defrag
	run $c compaction 3
	run $c get k1 --rev 2
	run $c compaction 2
	run timeout 3 $c watch --rev 1 k1
	run $c get k1 --rev 99
	run $c get ""
	run $c put "" v
	run $c put big <"$BIG"
	run $c put k1 v --lease 99
	run $call move-leader 1234
	run $c del k --prefix
	run $c get "" --from-key --keys-only
}

# The leader's and one follower's hex ids of a cluster, from endpoint status.
move_leader_check() { # $1 endpoints
	local st from to
	st=$($CTL --endpoints "$1" endpoint status -w json) || return 1
	read -r from to < <(echo "$st" | python3 -c '
import json, sys
d = json.load(sys.stdin)
ld = d[0]["Status"]["leader"]
ids = [e["Status"]["header"]["member_id"] for e in d]
print("%x %x" % (ld, [i for i in ids if i != ld][0]))')
	local out
	out=$($CTL --endpoints "$1" move-leader "$to" 2>&1)
	echo "$out" | sed -E "s/\b$from\b/FROM/; s/\b$to\b/TO/"
}

session "$EFS_EPS" | mask >"$T_DIR/etcfs.out"
session "$ETCD_EPS" | mask >"$T_DIR/etcd.out"
if diff -u "$T_DIR/etcd.out" "$T_DIR/etcfs.out" >"$T_DIR/session.diff"; then
	pass "etcdctl session: etcfs output equals etcd 3.4's ($(grep -c '^###' "$T_DIR/etcd.out") commands)"
else
	fail "etcdctl session differs from etcd 3.4 (- etcd, + etcfs)"
	cat "$T_DIR/session.diff"
fi
expect_eq "move-leader output as etcd's" "$(move_leader_check "$EFS_EPS")" "$(move_leader_check "$ETCD_EPS")"
expect_eq "move-leader moved etcfs leadership" "$($CTL --endpoints "$EFS_EPS" endpoint status -w json | python3 -c '
import json,sys; d=json.load(sys.stdin); print(len({e["Status"]["leader"] for e in d}))')" "1"
t_finish
