#!/bin/bash
# --quota-backend-bytes: puts and lease grants past the quota are refused
# with etcd's "database space exceeded"; reads, deletes and compaction keep
# working (so space can be reclaimed), nothing acknowledged is lost, and
# writes are accepted again once space is reclaimed.
source "$(dirname "$0")/lib.sh"
cluster_start 3 --quota-backend-bytes 2097152
# Random bytes (values over 4 KiB are stored compressed), as base64 text.
head -c 150000 /dev/urandom | base64 -w0 >"$T_DIR/big"
n_ok=0 refused=""
for i in $(seq 1 100); do
	if out=$(ctl put "q/$i" <"$T_DIR/big" 2>&1); then
		n_ok=$i
	else
		refused=$out
		break
	fi
done
check "writes are accepted below the quota ($n_ok values of 200 KB)" test "$n_ok" -ge 3
expect_eq "a write past the quota is refused with etcd's error" "$refused" \
	"Error: etcdserver: mvcc: database space exceeded"
v=$(ctl get q/1 --print-value-only | wc -c)
expect_eq "reads work past the quota" "$v" $(($(wc -c <"$T_DIR/big") + 1))
cnt=$(ctl get q/ --prefix --count-only -w fields | awk '/"Count"/ {print $3}')
expect_eq "every acknowledged write is there" "$cnt" "$n_ok"
v=$(ctl lease grant 60 2>&1)
expect_eq "a lease grant past the quota is refused" "$v" "Error: failed to grant lease (etcdserver: mvcc: database space exceeded)"
check "a delete is allowed past the quota" ctl del q/ --prefix
rev=$(ctl get q/1 -w fields | awk '/"Revision"/ {print $3}')
check "a compaction is allowed past the quota" ctl compact "$rev"
# The freed pages count once the compaction is applied on this member.
check "writes are accepted again once space is reclaimed" \
	wait_for 30 "a write after compaction" ctl put q/again small
t_finish
