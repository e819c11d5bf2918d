#!/bin/bash
# Raft with real processes: leader SIGKILL under write load, restart and
# catch-up by log and by snapshot, SIGSTOP of the leader with linearizable
# reads afterwards, a 5-member cluster with two members down.
source "$(dirname "$0")/lib.sh"
ELECTION_MS=1000

writer() {
	local tag=$1 out=$2 i=0
	while [ ! -f "$T_DIR/stop-$tag" ]; do
		i=$((i + 1))
		if ctl --command-timeout 4s put "$tag/$i" "v$i" >/dev/null 2>&1; then echo "$i" >>"$out"; fi
	done
}
count_prefix() { # count_prefix MEMBER PREFIX (serializable: what that member has applied)
	ctl_on "$1" get "$2" --prefix --keys-only --consistency=s 2>/dev/null | grep -c .
}
all_acked_present() {
	local tag=$1 file=$2 i
	ctl get "$tag/" --prefix --keys-only >"$T_DIR/keys-$tag" || return 1
	while read -r i; do grep -qx -- "$tag/$i" "$T_DIR/keys-$tag" || { echo "lost $tag/$i" >&2; return 1; }; done <"$file"
}

cluster_start 3 --snapshot-count 300 --election-timeout $ELECTION_MS
L=$(leader_index) || { fail "a leader is elected"; exit 1; }
pass "a leader is elected (member $L)"

writer w1 "$T_DIR/acked-w1" &
W1=$!
writer w2 "$T_DIR/acked-w2" &
W2=$!
wait_for 60 "write load running" test -s "$T_DIR/acked-w2"
sleep 1
t0=$(date +%s%N)
member_kill "$L"
wait_for 30 "a write succeeds after the leader was killed" ctl --command-timeout 2s put probe x
t1=$(date +%s%N)
ms=$(((t1 - t0) / 1000000))
echo "new leader serving writes ${ms} ms after SIGKILL of the leader"
check "a new leader serves within three election timeouts (${ms} ms)" test "$ms" -le $((3 * ELECTION_MS + 1000))
sleep 1
touch "$T_DIR/stop-w1" "$T_DIR/stop-w2"
wait "$W1" "$W2"
check "every acknowledged write survives the leader's SIGKILL" all_acked_present w1 "$T_DIR/acked-w1"
check "every acknowledged write survives the leader's SIGKILL (writer 2)" all_acked_present w2 "$T_DIR/acked-w2"

# catch up by snapshot: write far more than the kept log while it is down
for i in $(seq 1 40); do
	ctl txn >/dev/null <<TXN || true

put snap/$i-a a
put snap/$i-b b
put snap/$i-c c
put snap/$i-d d
put snap/$i-e e
put snap/$i-f f
put snap/$i-g g
put snap/$i-h h
put snap/$i-i i
put snap/$i-j j

TXN
done
for i in $(seq 1 350); do ctl put "many/$i" x >/dev/null 2>&1 || true; done
want=$(count_prefix $([ "$L" = 1 ] && echo 2 || echo 1) many/)
member_restart "$L"
caught_up() { [ "$(count_prefix "$L" many/)" = "$want" ]; }
wait_for 90 "restarted member catches up (snapshot)" caught_up
check "restarted old leader caught up ($want keys, via snapshot)" test "$(count_prefix "$L" many/)" = "$want"
check "restarted member received a snapshot" grep -q "installed snapshot" "$T_DIR/m$L.log"
check "restarted member has the txn keys" test "$(count_prefix "$L" snap/)" = 400

# SIGSTOP the leader past the election timeout
wait_for 30 "cluster ready" cluster_ready
L=$(leader_index) || { fail "leader after restart"; exit 1; }
ctl put stale-check old >/dev/null
member_stop "$L"
O=$(( L % 3 + 1 ))
wait_for 30 "the others elect a leader and take a write" ctl_on "$O" --command-timeout 2s put stale-check new
member_cont "$L"
v=$(ctl_on "$L" --command-timeout 10s get stale-check --print-value-only 2>&1)
expect_eq "linearizable read on the resumed old leader is not stale" "$v" "new"
check "nothing lost after SIGSTOP/SIGCONT" all_acked_present w1 "$T_DIR/acked-w1"

# move-leader: leadership goes where it is sent, and the cluster keeps serving
wait_for 30 "cluster ready" cluster_ready
L=$(leader_index) || { fail "leader before move-leader"; exit 1; }
T=$(( L % 3 + 1 ))
member_hex() { ctl_on "$1" --command-timeout 2s endpoint status -w table | awk -F'|' 'NR==4 {gsub(/ /,"",$3); print $3}'; }
TID=$(member_hex "$T")
out=$(ctl move-leader "$TID" 2>&1)
check "move-leader to member $T ($TID) reports the transfer ($out)" grep -q "Leadership transferred from .* to $TID" <<<"$out"
leader_is_target() { [ "$(leader_index)" = "$T" ]; }
check "move-leader: member $T leads" wait_for 30 "member $T leads" leader_is_target
check "move-leader: a write after the transfer" ctl put moved yes
out=$(ctl move-leader ffffffffffffffff 2>&1)
check "move-leader to a non-member fails ($out)" grep -q "bad leader transferee" <<<"$out"
t_finish
