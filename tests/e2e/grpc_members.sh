#!/bin/bash
# grpc_members.sh - etcd's Cluster service over gRPC: etcdctl 3.4 (a gRPC
# client) adds a learner, lists it, is refused its promotion while it has not
# caught up (it never started), updates its peer URL and removes it; every
# member's list agrees after each step.
source "$(dirname "$0")/lib.sh"
if ! command -v etcdctl >/dev/null; then
	echo "SKIP grpc_members: etcdctl missing (make deps installs etcd-client)"
	exit 0
fi
E2E_ADVERTISE_HTTP=1 cluster_start 3
EP="127.0.0.1:${M_HPORT[1]}"
ectl() { ETCDCTL_API=3 etcdctl --endpoints "$EP" --command-timeout=20s "$@"; }
lists_agree() { # every member lists the same ids
	local want=$1 i got
	for i in 1 2 3; do
		got=$(ETCDCTL_API=3 etcdctl --endpoints "127.0.0.1:${M_HPORT[$i]}" member list 2>/dev/null |
			cut -d, -f1 | sort | tr '\n' ' ')
		[ "$got" == "$want" ] || return 1
	done
}
P1=$(free_port)
P2=$(free_port)
out=$(ectl member add extra --peer-urls "http://127.0.0.1:$P1" --learner 2>&1)
id=$(sed -n 's/^Member \([0-9a-f]*\) added to cluster.*/\1/p' <<<"$out")
check "member add --learner over gRPC prints etcdctl's line" test -n "$id"
# Peer URLs are listed in the native transport's normalised form (tcp://),
# as for the members started with --initial-cluster: compare host:port.
expect_eq "the new member is an unstarted learner" \
	"$(ectl member list | grep "^$id," | cut -d, -f2,3,4 | tr -d ' ' | sed 's|,[a-z]*://|,|')" \
	"unstarted,,127.0.0.1:$P1"
check "member list -w json marks it isLearner" bash -c "ETCDCTL_API=3 etcdctl --endpoints $EP member list -w json | grep -q '\"isLearner\":true'"
all=$(ectl member list | cut -d, -f1 | sort | tr '\n' ' ')
wait_for 30 "every member lists the learner" lists_agree "$all"
check "every member lists the learner" lists_agree "$all"
out=$(ectl member promote "$id" 2>&1)
check "promoting a learner that is not in sync fails with etcd's text" \
	grep -q "can only promote a learner member which is in sync with leader" <<<"$out"
out=$(ectl member update "$id" --peer-urls "http://127.0.0.1:$P2" 2>&1)
check "member update over gRPC" grep -q "^Member $id updated in cluster" <<<"$out"
expect_eq "the update shows in the list" \
	"$(ectl member list | grep "^$id," | cut -d, -f4 | tr -d ' ' | sed 's|^[a-z]*://||')" "127.0.0.1:$P2"
out=$(ectl member remove "$id" 2>&1)
check "member remove over gRPC" grep -q "^Member $id removed from cluster" <<<"$out"
all=$(ectl member list | cut -d, -f1 | sort | tr '\n' ' ')
check "three members remain" test "$(wc -w <<<"$all")" = 3
wait_for 30 "every member dropped it" lists_agree "$all"
check "every member dropped it" lists_agree "$all"
out=$(ectl member remove "$id" 2>&1)
check "removing it again fails with etcd's text" grep -q "member not found" <<<"$out"
check "the cluster still takes writes" ectl put after-members ok
t_finish
