#!/bin/bash
# A 5-member cluster keeps serving reads and writes with two members down.
source "$(dirname "$0")/lib.sh"
cluster_start 5
check "5 members: write" ctl put five 1
L=$(leader_index)
O=$((L % 5 + 1))
t0=$(date +%s%N)
member_kill "$L" # the leader and one more
member_kill "$O"
# A write forwarded to the dead leader before the others noticed is
# "outcome unknown" once its command timeout passes; a client retries (a
# put is idempotent) until the new leader serves it.  Short tries, so the
# time measured is the election's, not one lost try's timeout.
check "5 members, leader and one more down: a write is served again" \
	wait_for 60 "a write with two members down" ctl --command-timeout 2s put five 2
ms=$((($(date +%s%N) - t0) / 1000000))
echo "write acknowledged $ms ms after the kills"
# Default --election-timeout is 1000 ms: three of them, plus one try.
check "5 members, 2 down: a new leader serves within three election timeouts (${ms} ms)" \
	test "$ms" -le 5000
for i in 1 2 3 4 5; do [ -z "${M_DOWN[$i]:-}" ] && { UP1=$i; break; }; done
v=$(ctl --command-timeout 10s get five --print-value-only)
expect_eq "5 members, 2 down: linearizable read" "$v" 2
member_kill "$UP1"
for i in 1 2 3 4 5; do [ -z "${M_DOWN[$i]:-}" ] && UP2=$i; done
check "5 members, 3 down: write fails (no quorum)" bash -c "! $ETCFSCTL --endpoints tcp://127.0.0.1:${M_CPORT[$UP2]} --command-timeout 3s put five 3"
t_finish
