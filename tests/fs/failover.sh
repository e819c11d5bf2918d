#!/bin/bash
# tests/fs/failover.sh - killing the member under a mount does not break it
# (reads, writes and the watch move to another member), and with the whole
# cluster unreachable reads fail with EIO after the command timeout (or are
# served from cache with -o cache_fallback), writes fail at close with EIO,
# nothing hangs and umount works.
source "$(dirname "$0")/fslib.bash"

cluster_start 3
fs_mount A 1 -o timeout=2000,dial_timeout=500
fs_mount C 1 -o timeout=2000,dial_timeout=500,cache_fallback
A=$T_DIR/A
C=$T_DIR/C

echo before >"$A/f"
expect_eq "C reads through member 1" "$(cat "$C/f")" "before"
inotifywait -m -q --format '%e %f' "$A" >"$T_DIR/evA" 2>/dev/null &
T_PIDS+=("$!")
sleep 1

member_kill 1
wait_for 30 "write after the member died" bash -c "echo after >'$A/f'"
expect_eq "write through the mount after its member died" "$(kv_get f)" "after"
expect_eq "read through the mount after its member died" "$(cat "$A/f")" "after"
ctl_on 2 put "${PREFIX}g" remote >/dev/null
wait_for 20 "remote put seen by the failed-over watch" grep -q '^CLOSE_WRITE,CLOSE g$' "$T_DIR/evA"
check "the watch failed over: remote change produced inotify events" grep -q '^CLOSE_WRITE,CLOSE g$' "$T_DIR/evA"
expect_eq "remote value after failover" "$(cat "$A/g")" "remote"
cat "$C/g" >/dev/null

# ---- whole cluster unreachable ----
member_stop 2
member_stop 3
start=$SECONDS
out=$(timeout 30 cat "$A/f" 2>&1)
rc=$?
el=$((SECONDS - start))
check "read with the cluster down fails (no hang)" test "$rc" != 0 -a "$rc" != 124
check "... with EIO" grep -q "Input/output error" <<<"$out"
check "... within a few command timeouts (${el}s)" test "$el" -le 15
expect_eq "-o cache_fallback serves the cached value" "$(timeout 30 cat "$C/g" 2>/dev/null)" "remote"
start=$SECONDS
out=$(timeout 30 bash -c "echo lost >'$A/g'" 2>&1)
rc=$?
check "write with the cluster down fails at close (no hang, rc=$rc)" test "$rc" != 0 -a "$rc" != 124
check "... with EIO" grep -q "Input/output error" <<<"$out"
start=$SECONDS
timeout 20 fusermount3 -u "$A"
check "umount works with the cluster down" test $? = 0
check "... and the mount is gone" bash -c "! mountpoint -q '$A'"
timeout 20 umount "$C"
check "umount(8) works with the cluster down" bash -c "! mountpoint -q '$C'"
member_cont 2
member_cont 3
wait_for 20 "daemon A exited" bash -c "! kill -0 $PID_A 2>/dev/null"
check "the daemon exits after umount" bash -c "! kill -0 $PID_A 2>/dev/null"
expect_eq "the failed write did not reach the cluster" "$(kv_get g)" "remote"

t_finish
