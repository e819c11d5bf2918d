#!/bin/bash
# tests/fs/resync.sh - a mount that loses its watch for good (its only member
# was down while the revision it would resume from was compacted) re-reads
# what it knows and reports the changes made meanwhile as inotify events,
# rather than missing them.
source "$(dirname "$0")/fslib.bash"

cluster_start 3
mkdir -p "$T_DIR/A"
# A talks to member 1 only, so it cannot fail over while member 1 is down.
setsid "$ETCFS" --endpoints "tcp://127.0.0.1:${M_CPORT[1]}" --prefix "$PREFIX" "$T_DIR/A" -f \
	-o timeout=2000,dial_timeout=500 </dev/null >>"$T_DIR/A.log" 2>&1 &
T_PIDS+=("$!")
T_MOUNTS+=("$T_DIR/A")
wait_for 10 "mount A" mountpoint -q "$T_DIR/A"
A=$T_DIR/A

echo old >"$A/f"
echo gone >"$A/g"
expect_eq "f known to the mount" "$(cat "$A/f")" "old"
expect_eq "g known to the mount" "$(cat "$A/g")" "gone"
inotifywait -m -q --format '%e %f' "$A" >"$T_DIR/evA" 2>/dev/null &
T_PIDS+=("$!")
sleep 1

member_kill 1
# (member 1 may have been the leader: retry until the new leader answers)
wait_for 30 "put through member 2" ctl_on 2 put "${PREFIX}f" new
wait_for 30 "delete through member 2" ctl_on 2 del "${PREFIX}g"
for i in $(seq 1 5); do ctl_on 2 put "${PREFIX}churn" "$i" >/dev/null; done
rev=$(ctl_on 2 get -w json "${PREFIX}churn" | python3 -c 'import json,sys; print(json.load(sys.stdin)["header"]["revision"])')
wait_for 30 "compaction" ctl_on 2 compaction "$rev"
member_restart 1
wait_for 60 "member 1 back" bash -c "$ETCFSCTL --endpoints tcp://127.0.0.1:${M_CPORT[1]} --command-timeout 2s get x >/dev/null"

wait_for 40 "resync reported the new value" grep -q '^CLOSE_WRITE,CLOSE f$' "$T_DIR/evA"
grep -q "re-reading known files" "$T_DIR/A.log" && echo "(the mount resynced after compaction)" ||
	echo "(the watch resumed from member history; no resync needed)"
check "value changed while the watch was lost: CLOSE_WRITE reported" grep -q '^CLOSE_WRITE,CLOSE f$' "$T_DIR/evA"
wait_for 10 "resync reported the delete" grep -q '^DELETE g$' "$T_DIR/evA"
check "key deleted while the watch was lost: DELETE reported" grep -q '^DELETE g$' "$T_DIR/evA"
expect_eq "new value read after resync" "$(cat "$A/f")" "new"
check "deleted file gone after resync" bash -c "! test -e '$A/g'"
# the new watch works
ctl put "${PREFIX}f" newer >/dev/null
wait_for 20 "events after resync" bash -c "[ \$(grep -c '^CLOSE_WRITE,CLOSE f\$' '$T_DIR/evA') -ge 2 ]"
check "the re-created watch delivers later changes" test "$(grep -c '^CLOSE_WRITE,CLOSE f$' "$T_DIR/evA")" -ge 2

t_finish
