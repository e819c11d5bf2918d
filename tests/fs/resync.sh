#!/bin/bash
# tests/fs/resync.sh - a mount that loses its watch reports the changes made
# meanwhile as the inotify events a local change would make: CREATE for keys
# created (CREATE,ISDIR for new directories), DELETE for keys deleted
# (DELETE,ISDIR for directories left empty), MODIFY/CLOSE_WRITE for changed
# keys, and nothing twice.
#   A: the member behind the mount dies; the watch resumes on another member
#      from the next revision (no history lost).
#   B: the mount's only member is down while the revision the watch would
#      resume from is compacted: the watch is canceled and the mount re-reads
#      the prefix (fs/resync.c).
source "$(dirname "$0")/fslib.bash"

cluster_start 3
PA=${PREFIX}a/
PB=${PREFIX}b/

count() { grep -c -x -- "$2" "$1" 2>/dev/null; } # count FILE LINE
has() { grep -q -x -- "$2" "$1"; }              # has FILE LINE
# evwatch OUTFILE DIR...: inotifywait on DIRs, one "%e %f" line per event
# ("Watches established" is printed on stderr once the watches are in place)
evwatch() {
	local out=$1; shift
	inotifywait -m --format '%e %f' "$@" >"$out" 2>"$out.err" &
	T_PIDS+=("$!")
	wait_for 10 "inotifywait ready" grep -q "Watches established" "$out.err"
}

# ---------------- A: failover, the watch resumes ----------------
ctl put "${PA}f" old >/dev/null
ctl put "${PA}g" gone >/dev/null
ctl put "${PA}sub/keep" keep >/dev/null
fs_mount A 1 -o prefix=$PA
A=$T_DIR/A
expect_eq "A: f known to the mount" "$(cat "$A/f")" "old"
expect_eq "A: g known to the mount" "$(cat "$A/g")" "gone"
check "A: sub known to the mount" test -f "$A/sub/keep"
evwatch "$T_DIR/evA" "$A"
evwatch "$T_DIR/evAs" "$A/sub"

member_kill 1
wait_for 30 "put through member 2" ctl_on 2 put "${PA}f" new
wait_for 30 "delete through member 2" ctl_on 2 del "${PA}g"
ctl_on 2 put "${PA}n1" created >/dev/null
ctl_on 2 put "${PA}nd/x" inside >/dev/null
ctl_on 2 put "${PA}sub/s1" s1 >/dev/null

wait_for 40 "A: new key reported" has "$T_DIR/evA" "CREATE n1"
check "A: key created while the member was down: CREATE" has "$T_DIR/evA" "CREATE n1"
wait_for 10 "A: changed" has "$T_DIR/evA" "CLOSE_WRITE,CLOSE f"
check "A: key changed: CLOSE_WRITE" has "$T_DIR/evA" "CLOSE_WRITE,CLOSE f"
wait_for 10 "A: deleted" has "$T_DIR/evA" "DELETE g"
check "A: key deleted: DELETE" has "$T_DIR/evA" "DELETE g"
wait_for 10 "A: new dir" has "$T_DIR/evA" "CREATE,ISDIR nd"
check "A: new directory: CREATE,ISDIR" has "$T_DIR/evA" "CREATE,ISDIR nd"
wait_for 10 "A: new key in a watched subdirectory" has "$T_DIR/evAs" "CREATE s1"
check "A: key created in a watched subdirectory: CREATE" has "$T_DIR/evAs" "CREATE s1"
expect_eq "A: new file readable" "$(cat "$A/n1")" "created"
expect_eq "A: file in new directory readable" "$(cat "$A/nd/x")" "inside"
member_restart 1
wait_for 60 "member 1 back" bash -c "$ETCFSCTL --endpoints tcp://127.0.0.1:${M_CPORT[1]} --command-timeout 2s get x >/dev/null"
fusermount3 -u "$A"

# ---------------- B: compaction, the mount resyncs ----------------
ctl put "${PB}f" old >/dev/null
ctl put "${PB}g" gone >/dev/null
ctl put "${PB}sub/keep" keep >/dev/null
ctl put "${PB}olddir/k" k >/dev/null
ctl put "${PB}pre" before >/dev/null # never looked up by the mount
mkdir -p "$T_DIR/B"
# B talks to member 1 only, so it cannot fail over while member 1 is down.
setsid "$ETCFS" --endpoints "tcp://127.0.0.1:${M_CPORT[1]}" --prefix "$PB" "$T_DIR/B" -f \
	-o timeout=2000,dial_timeout=500 </dev/null >>"$T_DIR/B.log" 2>&1 &
PID_B=$!
T_PIDS+=("$PID_B")
T_MOUNTS+=("$T_DIR/B")
wait_for 10 "mount B" mountpoint -q "$T_DIR/B"
B=$T_DIR/B
expect_eq "B: f known to the mount" "$(cat "$B/f")" "old"
expect_eq "B: g known to the mount" "$(cat "$B/g")" "gone"
expect_eq "B: olddir/k known to the mount" "$(cat "$B/olddir/k")" "k"
check "B: sub known to the mount" test -f "$B/sub/keep"
evwatch "$T_DIR/evB" "$B"
evwatch "$T_DIR/evBs" "$B/sub"
# the watch is current: a remote change before the gap is reported
ctl put "${PB}sync" 1 >/dev/null
wait_for 20 "B: watch live" has "$T_DIR/evB" "CLOSE_WRITE,CLOSE sync"
nb=$(wc -l <"$T_DIR/evB")

# Freeze B so it cannot re-create its watch before member 1 has applied the
# compaction (a member that restarts behind would replay the history itself).
kill -STOP "$PID_B"
member_kill 1
rev0=$(ctl_on 2 get -w json "${PB}sync" | python3 -c 'import json,sys; print(json.load(sys.stdin)["header"]["revision"])')
wait_for 30 "put through member 2" ctl_on 2 put "${PB}f" new
wait_for 30 "delete through member 2" ctl_on 2 del "${PB}g"
ctl_on 2 put "${PB}n1" created >/dev/null
ctl_on 2 put "${PB}nd/deep/x" inside >/dev/null
ctl_on 2 put "${PB}nd/y" inside-too >/dev/null
ctl_on 2 put "${PB}sub/s1" s1 >/dev/null
ctl_on 2 del "${PB}olddir/k" >/dev/null
ctl_on 2 put "${PB}pre" after >/dev/null
for t in 0 1; do # 200 keys in a new directory, two txns of 100
	{ echo; for i in $(seq $((t * 100)) $((t * 100 + 99))); do echo "put ${PB}bulk/k$i v$i"; done; echo; } |
		ctl_on 2 txn >/dev/null
done
for i in $(seq 1 5); do ctl_on 2 put "${PREFIX}churn" "$i" >/dev/null; done
rev=$(ctl_on 2 get -w json "${PREFIX}churn" | python3 -c 'import json,sys; print(json.load(sys.stdin)["header"]["revision"])')
wait_for 30 "compaction" ctl_on 2 compaction "$rev"
member_restart 1
wait_for 60 "member 1 applied the compaction" bash -c \
	"$ETCFSCTL --endpoints tcp://127.0.0.1:${M_CPORT[1]} --command-timeout 2s get --rev=$rev0 ${PB}f 2>&1 | grep -q compacted"
kill -CONT "$PID_B"

wait_for 40 "B: resync" grep -q "re-reading the prefix" "$T_DIR/B.log"
gapB() { tail -n "+$((nb + 1))" "$T_DIR/evB"; } # B's events since the gap
check "B: the watch was lost for good and the mount resynced" grep -q "re-reading the prefix" "$T_DIR/B.log"
wait_for 20 "B: new key reported" has "$T_DIR/evB" "CREATE n1"
check "B: key created during the gap: CREATE" has "$T_DIR/evB" "CREATE n1"
wait_for 10 "B: new dir" has "$T_DIR/evB" "CREATE,ISDIR nd"
check "B: directory created during the gap: CREATE,ISDIR" has "$T_DIR/evB" "CREATE,ISDIR nd"
expect_eq "B: ... reported once" "$(count "$T_DIR/evB" "CREATE,ISDIR nd")" 1
check "B: value changed during the gap: MODIFY" has "$T_DIR/evB" "MODIFY f"
check "B: ... and CLOSE_WRITE" has "$T_DIR/evB" "CLOSE_WRITE,CLOSE f"
check "B: key deleted during the gap: DELETE" has "$T_DIR/evB" "DELETE g"
expect_eq "B: ... reported once" "$(count "$T_DIR/evB" "DELETE g")" 1
wait_for 10 "B: old dir removed" has "$T_DIR/evB" "DELETE,ISDIR olddir"
check "B: directory emptied during the gap: DELETE,ISDIR" has "$T_DIR/evB" "DELETE,ISDIR olddir"
check "B: key never looked up, changed during the gap: CLOSE_WRITE" has "$T_DIR/evB" "CLOSE_WRITE,CLOSE pre"
check "B: key created in a watched subdirectory: CREATE" has "$T_DIR/evBs" "CREATE s1"
sleep 1 # (let a wrong duplicate show up before counting)
expect_eq "B: unchanged keys make no event" "$(gapB | grep -c -E ' (sync|sub)$')" 0
expect_eq "B: no CREATE for keys that existed" "$(gapB | grep -c -E '^CREATE (f|pre|sub|sync)$')" 0
expect_eq "B: new value read after resync" "$(cat "$B/f")" "new"
expect_eq "B: new file readable" "$(cat "$B/n1")" "created"
expect_eq "B: nested new file readable" "$(cat "$B/nd/deep/x")" "inside"
check "B: deleted file gone" bash -c "! test -e '$B/g'"
check "B: emptied directory gone" bash -c "! test -e '$B/olddir'"
expect_eq "B: listing after resync" "$(ls "$B" | tr '\n' ' ')" "bulk f n1 nd pre sub sync "
expect_eq "B: 200 keys of a new directory: one CREATE,ISDIR" "$(count "$T_DIR/evB" "CREATE,ISDIR bulk")" 1
expect_eq "B: ... all readable" "$(ls "$B/bulk" | wc -l) $(cat "$B/bulk/k199")" "200 v199"

# the re-created watch delivers later changes, from the revision read
ctl put "${PB}f" newer >/dev/null
ctl put "${PB}n2" later >/dev/null
wait_for 20 "events after resync" has "$T_DIR/evB" "CREATE n2"
check "B: the re-created watch reports later creations" has "$T_DIR/evB" "CREATE n2"
wait_for 10 "B: later change" bash -c "[ \$(grep -c -x 'CLOSE_WRITE,CLOSE f' '$T_DIR/evB') -ge 2 ]"
check "B: the re-created watch reports later changes" test "$(count "$T_DIR/evB" "CLOSE_WRITE,CLOSE f")" -ge 2

t_finish
