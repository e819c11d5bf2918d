#!/bin/sh
# contrib/critical-section.sh - what a program run under a cluster lock
# looks like (README tour):
#
#   bin/etcfsctl lock my-lock -- contrib/critical-section.sh
#
# etcfsctl lock runs it once the lock is held, with the lock's key and
# revision in ETCD_LOCK_KEY and ETCD_LOCK_REV (as etcdctl does), and
# releases the lock when it exits.  Here the critical section is a
# read-modify-write of the key app/counter that two holders at once would
# get wrong: run it from two shells and the count never loses a step.
set -eu
CTL=$(dirname "$0")/../bin/etcfsctl
[ -x "$CTL" ] || CTL=etcfsctl
echo "holding ${ETCD_LOCK_KEY:-?} (revision ${ETCD_LOCK_REV:-?})"
n=$("$CTL" get --print-value-only app/counter)
n=$(( ${n:-0} + 1 ))
"$CTL" put app/counter "$n" >/dev/null
echo "app/counter is now $n"
