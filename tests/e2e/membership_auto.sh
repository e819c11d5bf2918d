#!/bin/bash
# --experimental-auto-promote-learners (beyond etcd): a learner added to a
# cluster whose members run with it is promoted by the leader once it is in
# sync, with no "member promote"; without the flag it stays a learner.
source "$(dirname "$0")/lib.sh"
# wait_for, counted: a PASS or FAIL line either way
await() { if wait_for "$@"; then pass "$2"; else fail "$2"; fi; }

is_learner() { ctl member list | awk -F', ' -v p=":$1" 'index($4, p) { print $6 }'; }
learner_is() { [ "$(is_learner "$1")" = "$2" ]; }

cluster_start 3 --experimental-auto-promote-learners
for k in $(seq 1 200); do ctl put "pre/$k" "v$k" >/dev/null || break; done
M_CPORT[4]=$(free_port)
M_PPORT[4]=$(free_port)
M_HPORT[4]=$(free_port)
out=$(ctl member add m4 --peer-urls "tcp://127.0.0.1:${M_PPORT[4]}" --learner) || fail "member add" "$out"
cluster=$(echo "$out" | sed -n 's/^ETCD_INITIAL_CLUSTER="\(.*\)"$/\1/p')
check "a learner not started yet is not promoted" learner_is "${M_PPORT[4]}" true
joiner_start 4 "$cluster" --experimental-auto-promote-learners
M_N=4
await 60 "the learner is promoted once caught up" learner_is "${M_PPORT[4]}" false
await 30 "the promoted member serves a linearizable read" ctl_on 4 --command-timeout 2s get pre/200
t_finish
