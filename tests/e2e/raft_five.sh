#!/bin/bash
# A 5-member cluster keeps serving reads and writes with two members down.
source "$(dirname "$0")/lib.sh"
cluster_start 5
check "5 members: write" ctl put five 1
member_kill 1
member_kill 2
check "5 members, 2 down: write" ctl --command-timeout 10s put five 2
v=$(ctl --command-timeout 10s get five --print-value-only)
expect_eq "5 members, 2 down: linearizable read" "$v" 2
member_kill 3
check "5 members, 3 down: write fails (no quorum)" bash -c "! $ETCFSCTL --endpoints tcp://127.0.0.1:${M_CPORT[4]} --command-timeout 3s put five 3"
t_finish
