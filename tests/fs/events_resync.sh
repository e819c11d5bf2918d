#!/bin/bash
# tests/fs/events_resync.sh - after a forced resync (the mount's watch was
# lost while its revision was compacted: fs/resync.c), recursive watchers
# get exactly the events of a local sequence that makes the same changes,
# once each: a new directory is one CREATE,ISDIR and then CREATE, MODIFY,
# CLOSE_WRITE per file (every file seen by inotifywait -r), a directory
# whose keys were all deleted is one DELETE per file and then its
# DELETE_SELF and DELETE,ISDIR, nested new directories are made outermost
# first.  Watchers: inotifywait -r and evwatch -r (tests/tools/evwatch.c).
source "$(dirname "$0")/fslib.bash"
EVW="$ETCFS_BIN/tests/evwatch"

cluster_start 3
ctl put "${PREFIX}old/a" 1 >/dev/null
ctl put "${PREFIX}old/b" 2 >/dev/null
ctl put "${PREFIX}old/c" 3 >/dev/null
ctl put "${PREFIX}keep" k >/dev/null
# The mount talks to member 1 only, so it cannot fail over while member 1
# is down and its watch must be re-created from a compacted revision.
mkdir -p "$T_DIR/A"
setsid "$ETCFS" --endpoints "tcp://127.0.0.1:${M_CPORT[1]}" --prefix "$PREFIX" "$T_DIR/A" -f \
	-o timeout=2000,dial_timeout=500 </dev/null >>"$T_DIR/A.log" 2>&1 &
PID_A=$!
T_PIDS+=("$PID_A")
T_MOUNTS+=("$T_DIR/A")
wait_for 10 "mount A" mountpoint -q "$T_DIR/A"
A=$T_DIR/A
expect_eq "the mount knows old/a b c" "$(cat "$A/old/a" "$A/old/b" "$A/old/c" | tr -d '\n')" "123"

inotifywait -m -r --format '%e %w%f' "$A" >"$T_DIR/iw" 2>"$T_DIR/iw.err" &
T_PIDS+=("$!")
wait_for 10 "inotifywait ready" grep -q "Watches established" "$T_DIR/iw.err"
"$EVW" -r "$A" >"$T_DIR/ew" 2>"$T_DIR/ew.err" &
T_PIDS+=("$!")
wait_for 10 "evwatch ready" grep -q "^ready" "$T_DIR/ew.err"

norm() {
	grep -E '^(CREATE|DELETE|MOVED_FROM|MOVED_TO|MOVE_SELF|MODIFY|CLOSE_WRITE)' "$1" |
		sed -e "s| $A/| |" -e 's|/$||' | grep -v ' sentinel$'
}
SEQ=0
sentinel_seen() { [ "$(grep -c "^CLOSE_WRITE,CLOSE $A/sentinel\$" "$T_DIR/$1")" -ge "$SEQ" ]; }
sync_watchers() {
	SEQ=$((SEQ + 1))
	ctl put "${PREFIX}sentinel" "s$SEQ" >/dev/null
	wait_for 60 "inotifywait caught up ($SEQ)" sentinel_seen iw
	wait_for 60 "evwatch caught up ($SEQ)" sentinel_seen ew
}
sync_watchers
created() { local p; for p in "$@"; do printf 'CREATE %s\nMODIFY %s\nCLOSE_WRITE,CLOSE %s\n' "$p" "$p" "$p"; done; }

# ---- the gap: mount frozen, its member down, history compacted ----
kill -STOP "$PID_A"
member_kill 1
wait_for 30 "txn through member 2" bash -c "printf '\nput ${PREFIX}new/a v-a\nput ${PREFIX}new/b v-b\nput ${PREFIX}new/c v-c\n\n' | $ETCFSCTL --endpoints tcp://127.0.0.1:${M_CPORT[2]} txn"
ctl_on 2 del "${PREFIX}old/" --prefix >/dev/null
ctl_on 2 put "${PREFIX}deep/sub/x" v-x >/dev/null
ctl_on 2 put "${PREFIX}deep/y" v-y >/dev/null
for i in 1 2 3; do ctl_on 2 put "${PREFIX}churn" "$i" >/dev/null; done
rev=$(ctl_on 2 get -w json "${PREFIX}churn" | python3 -c 'import json,sys; print(json.load(sys.stdin)["header"]["revision"])')
wait_for 30 "compaction" ctl_on 2 compaction "$rev"
member_restart 1
wait_for 60 "member 1 applied the compaction" bash -c \
	"$ETCFSCTL --endpoints tcp://127.0.0.1:${M_CPORT[1]} --command-timeout 2s get --rev=2 ${PREFIX}keep 2>&1 | grep -q compacted"
nl_iw=$(norm "$T_DIR/iw" | wc -l)
nl_ew=$(norm "$T_DIR/ew" | wc -l)
kill -CONT "$PID_A"
wait_for 60 "resync" grep -q "re-reading the prefix" "$T_DIR/A.log"
check "the watch was lost for good and the mount resynced" grep -q "re-reading the prefix" "$T_DIR/A.log"
sync_watchers

# events since the gap, for one subtree
sub() { norm "$T_DIR/$1" | tail -n +$(($2 + 1)) | grep -E " $3(/|\$)"; }
for w in iw ew; do
	if [ $w = iw ]; then n=$nl_iw name="inotifywait -r"; else n=$nl_ew name="evwatch -r"; fi
	expect_eq "resync: new directory of 3 keys: one CREATE,ISDIR, then each file ($name)" \
		"$(sub $w "$n" new)" "CREATE,ISDIR new
$(created new/a new/b new/c)"
	expect_eq "resync: directory whose keys were deleted: DELETE each, then the directory ($name)" \
		"$(sub $w "$n" old)" "DELETE old/a
DELETE old/b
DELETE old/c
DELETE_SELF old
DELETE,ISDIR old"
	expect_eq "resync: nested new directories outermost first, every file seen ($name)" \
		"$(sub $w "$n" deep)" "CREATE,ISDIR deep
CREATE,ISDIR deep/sub
$(created deep/sub/x deep/y)"
	expect_eq "resync: nothing about unchanged keys ($name)" "$(sub $w "$n" keep)" ""
done
expect_eq "values readable after resync" "$(cat "$A/new/c") $(cat "$A/deep/sub/x")" "v-c v-x"

t_finish
