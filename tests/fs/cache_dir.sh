#!/bin/bash
# tests/fs/cache_dir.sh - -o cache_dir=DIR keeps the last-known-good value of
# every key the mount has seen on disk and serves reads from it when the
# cluster cannot answer:
#   1. healthy: DIR is 0700, files 0600 named by hash (keys with any bytes,
#      "..", "%", tab, newline, never a path outside DIR); a remote change is
#      read from the cluster, not the cache; user.etcfs.stale is absent;
#   2. every member the mount knows is down: cat, ls, stat answered from the
#      cache in about one command timeout, user.etcfs.stale grows, writes
#      fail with EIO and nothing hangs; a value changed by another client
#      just before the outage is the one served;
#   3. the mount restarted while its cluster is down still serves;
#   4. the cluster back: changes made meanwhile (a value, a deletion, a new
#      key) are read, reported with their inotify events, and the cache
#      catches up (the deleted key leaves DIR, the new value replaces the old);
#   5. lost quorum (2 of 3 members down) on a linearizable mount: the same;
#      a serializable mount keeps reading its member instead;
#   6. the watch lost for good (compaction while the mount was cut off): the
#      cache catches up although nobody reads through the mount;
#   7. a full disk: the value is kept in memory, the failure logged once,
#      retried without spinning, reads unaffected.
source "$(dirname "$0")/fslib.bash"

cluster_start 3
CD=$T_DIR/cache
A=$T_DIR/A
OPTS=timeout=2000,dial_timeout=500,cache_dir=$CD

# A talks to member 1 only: killing it makes the whole cluster unreachable
# for A while the others still take changes.
mount_A() {
	mkdir -p "$A"
	setsid "$ETCFS" --endpoints "tcp://127.0.0.1:${M_CPORT[1]}" --prefix "$PREFIX" "$A" -f \
		-o "$OPTS" </dev/null >>"$T_DIR/A.log" 2>&1 &
	PID_A=$!
	T_PIDS+=("$PID_A")
	T_MOUNTS+=("$A")
	wait_for 10 "mount A" mountpoint -q "$A"
}
stale() { getfattr --absolute-names --only-values -n user.etcfs.stale "$1" 2>/dev/null; }
has() { grep -q -x -- "$2" "$1"; }
cache_has() { grep -l -a -F -- "$1" "$CD"/k* >/dev/null 2>&1; } # some cache file holds these bytes

ctl put "${PREFIX}app/conf" conf-one >/dev/null
ctl put "${PREFIX}app/gone" doomed >/dev/null
ctl put "${PREFIX}app/sub/deep" deep >/dev/null
ctl put "${PREFIX}odd/.." dots >/dev/null
ctl put "${PREFIX}odd/%x" pct >/dev/null
ctl put "${PREFIX}odd/../../../esc" escape >/dev/null
ctl put "${PREFIX}odd/tab$(printf '\t')nl
end" ctl-bytes >/dev/null
mount_A

# ---------------- 1. healthy ----------------
expect_eq "1: read through the mount" "$(cat "$A/app/conf")" "conf-one"
cat "$A/app/gone" "$A/app/sub/deep" >/dev/null
expect_eq "1: key '..', also a directory (%=..)" "$(cat "$A/odd/%=..")" "dots"
expect_eq "1: key '%x' (%%25x)" "$(cat "$A/odd/%%25x")" "pct"
expect_eq "1: key '../../../esc'" "$(cat "$A/odd/%../%../%../esc")" "escape"
expect_eq "1: key with tab and newline" "$(cat "$A/odd/tab$(printf '\t')nl
end")" "ctl-bytes"
wait_for 10 "values written to the cache" cache_has ctl-bytes
expect_eq "1: cache dir is private (0700)" "$(stat -c %a "$CD")" "700"
expect_eq "1: cache files are 0600" "$(find "$CD" -type f ! -perm 600 | wc -l)" "0"
expect_eq "1: one file per key seen, named by hash (+ state, lock)" \
	"$(find "$CD" -mindepth 1 | grep -v -c -E "^$CD/(k[0-9a-f]{64}|state|lock)$")" "0"
mkdir -p "$T_DIR/B"
T_MOUNTS+=("$T_DIR/B") # (unmounted by the trap should it mount after all)
out=$(timeout 20 "$ETCFS" --endpoints "tcp://127.0.0.1:${M_CPORT[1]}" --prefix "$PREFIX" "$T_DIR/B" -f \
	-o "$OPTS" 2>&1)
rc=$?
check "1: a second mount on the same cache dir is refused (rc=$rc)" test "$rc" != 0 -a "$rc" != 124
check "... saying why" grep -q "in use by another mount" <<<"$out"
check "... and mounts nothing" bash -c "! mountpoint -q '$T_DIR/B'"
expect_eq "1: ... 7 keys" "$(find "$CD" -name 'k*' | wc -l)" "7"
check "1: no file escaped the cache dir" bash -c "! find '$T_DIR' -path '$A' -prune -o -name esc -print | grep -q . && ! test -e /esc -o -e /tmp/esc"
check "1: user.etcfs.stale absent while fresh" bash -c "! getfattr -n user.etcfs.stale '$A/app/conf' 2>/dev/null"
check "1: ... and not listed" bash -c "! getfattr -d -m - '$A/app/conf' 2>/dev/null | grep -q stale"
ctl put "${PREFIX}app/conf" conf-two >/dev/null
expect_eq "1: a remote change is read from the cluster, not the cache" "$(cat "$A/app/conf")" "conf-two"
wait_for 10 "the cache follows" cache_has conf-two
f=$(grep -l -a -F conf-two "$CD"/k*)
ino=$(stat -c %i "$f")
for _ in 1 2 3 4 5; do cat "$A/app/conf" >/dev/null; done
sleep 0.5
expect_eq "1: reading an unchanged value rewrites nothing" "$(stat -c %i "$f" 2>&1)" "$ino"
ctl put "${PREFIX}app/conf" conf-three >/dev/null # just before the outage, not read here
wait_for 10 "the watch brings the change to the cache" cache_has conf-three
check "1: a change made by another client reaches the cache through the watch" cache_has conf-three

inotifywait -m --format '%e %f' "$A/app" >"$T_DIR/ev1" 2>"$T_DIR/ev1.err" &
IW1=$!
T_PIDS+=("$IW1")
wait_for 10 "inotifywait ready" grep -q "Watches established" "$T_DIR/ev1.err"

# ---------------- 2. every member down ----------------
member_kill 1
start=$SECONDS
out=$(timeout 30 cat "$A/app/conf" 2>&1)
el=$((SECONDS - start))
expect_eq "2: with the cluster unreachable, cat gives the last value seen" "$out" "conf-three"
check "2: ... within about the command timeout (${el}s)" test "$el" -le 6
start=$SECONDS
expect_eq "2: ls from the cache" "$(timeout 20 ls "$A/app" | tr '\n' ' ')" "conf gone sub "
expect_eq "2: ls of the root from the cache" "$(timeout 20 ls "$A" | tr '\n' ' ')" "app odd "
expect_eq "2: stat from the cache (size)" "$(timeout 20 stat -c %s "$A/app/conf")" "10"
expect_eq "2: nested file" "$(timeout 20 cat "$A/app/sub/deep")" "deep"
expect_eq "2: odd key '..', also a directory" "$(timeout 20 cat "$A/odd/%=..")" "dots"
expect_eq "2: ... listed as both" "$(LC_ALL=C timeout 20 ls -A "$A/odd" | head -n 3 | tr '\n' ' ')" "%%25x %.. %=.. "
expect_eq "2: odd key '../../../esc'" "$(timeout 20 cat "$A/odd/%../%../%../esc")" "escape"
expect_eq "2: odd key with tab and newline" "$(timeout 20 cat "$A/odd/tab$(printf '\t')nl
end")" "ctl-bytes"
el=$((SECONDS - start))
check "2: once offline, reads are answered at once (${el}s for 7 reads)" test "$el" -le 3
s1=$(stale "$A/app/conf")
check "2: user.etcfs.stale is a number of seconds ($s1)" grep -q -E '^[0-9]+$' <<<"$s1"
sleep 2.2
s2=$(stale "$A/app/conf")
check "2: user.etcfs.stale grows ($s1 -> $s2)" test "${s2:-0}" -ge $((${s1:-0} + 2))
check "2: ... and listed (getfattr -d)" bash -c "getfattr -d -m - '$A/app/conf' 2>/dev/null | grep -q '^user.etcfs.stale='"
start=$SECONDS
out=$(timeout 30 bash -c "echo lost >'$A/app/conf'" 2>&1)
rc=$?
check "2: a write fails (rc=$rc, no hang)" test "$rc" != 0 -a "$rc" != 124
check "2: ... with EIO" grep -q "Input/output error" <<<"$out"
out=$(timeout 30 bash -c "echo new >'$A/app/created'" 2>&1)
rc=$?
check "2: creating a file fails with EIO (rc=$rc)" grep -q "Input/output error" <<<"$out"
check "2: writes took a bounded time ($((SECONDS - start))s)" test $((SECONDS - start)) -le 15
expect_eq "2: the failed write changed nothing" "$(timeout 20 cat "$A/app/conf")" "conf-three"
# meanwhile, other clients change the cluster
ctl_on 2 put "${PREFIX}app/conf" conf-four >/dev/null
ctl_on 2 del "${PREFIX}app/gone" >/dev/null
ctl_on 2 put "${PREFIX}app/new" fresh >/dev/null
expect_eq "2: still the last value the mount saw" "$(timeout 20 cat "$A/app/conf")" "conf-three"

# ---------------- 3. mount restarted while the cluster is down ----------------
kill "$IW1" 2>/dev/null
timeout 20 fusermount3 -u "$A"
wait_for 20 "daemon A exited" bash -c "! kill -0 $PID_A 2>/dev/null"
check "3: the cache survives the mount" cache_has conf-three
# damaged files: garbage, and a whole file under another key's name
printf 'garbage' >"$CD/k$(printf '0%.0s' $(seq 64))"
cp "$(grep -l -a -F conf-three "$CD"/k*)" "$CD/k$(printf 'f%.0s' $(seq 64))"
mount_A
check "3: damaged cache files are removed at mount" bash -c "! test -e '$CD/k$(printf '0%.0s' $(seq 64))' && ! test -e '$CD/k$(printf 'f%.0s' $(seq 64))'"
expect_eq "3: a restarted mount serves from the cache" "$(timeout 30 cat "$A/app/conf")" "conf-three"
expect_eq "3: ... ls" "$(timeout 20 ls "$A/app" | tr '\n' ' ')" "conf gone sub "
expect_eq "3: ... the deleted key, as last seen" "$(timeout 20 cat "$A/app/gone")" "doomed"
check "3: ... user.etcfs.stale" grep -q -E '^[0-9]+$' <<<"$(stale "$A/app/conf")"
inotifywait -m --format '%e %f' "$A/app" >"$T_DIR/ev3" 2>"$T_DIR/ev3.err" &
T_PIDS+=("$!")
wait_for 10 "inotifywait ready" grep -q "Watches established" "$T_DIR/ev3.err"

# ---------------- 4. the cluster is back ----------------
member_restart 1
wait_for 60 "member 1 back" bash -c "$ETCFSCTL --endpoints tcp://127.0.0.1:${M_CPORT[1]} --command-timeout 2s get x >/dev/null"
wait_for 30 "the mount reads the cluster again" bash -c "[ \"\$(cat '$A/app/conf' 2>/dev/null)\" = conf-four ]"
expect_eq "4: the value changed meanwhile is read" "$(cat "$A/app/conf")" "conf-four"
wait_for 20 "events for what changed" has "$T_DIR/ev3" "DELETE gone"
check "4: the changed value is reported (CLOSE_WRITE conf)" has "$T_DIR/ev3" "CLOSE_WRITE,CLOSE conf"
check "4: the deletion is reported (DELETE gone)" has "$T_DIR/ev3" "DELETE gone"
check "4: the new key is reported (CREATE new)" has "$T_DIR/ev3" "CREATE new"
check "4: the deleted key is gone" bash -c "! test -e '$A/app/gone'"
expect_eq "4: listing" "$(ls "$A/app" | tr '\n' ' ')" "conf new sub "
check "4: user.etcfs.stale absent again" bash -c "! getfattr -n user.etcfs.stale '$A/app/conf' 2>/dev/null"
wait_for 20 "the cache catches up" bash -c "! grep -l -a -F doomed '$CD'/k* >/dev/null 2>&1"
check "4: the deleted key left the cache" bash -c "! grep -l -a -F doomed '$CD'/k* >/dev/null 2>&1"
check "4: the new value replaced the old one" bash -c "grep -q -a -F conf-four '$CD'/k* && ! grep -q -a -F conf-three '$CD'/k*"
fusermount3 -u "$A"

# ---------------- 5. lost quorum ----------------
fs_mount Q 1 -o timeout=2000,dial_timeout=500,cache_dir=$T_DIR/cacheQ
Q=$T_DIR/Q
fs_mount S 1 -o serializable,timeout=2000,dial_timeout=500,cache_dir=$T_DIR/cacheS
S=$T_DIR/S
expect_eq "5: read while healthy" "$(cat "$Q/app/conf")" "conf-four"
expect_eq "5: read while healthy (serializable mount)" "$(cat "$S/app/conf")" "conf-four"
wait_for 10 "cached" bash -c "grep -q -a -F conf-four '$T_DIR/cacheQ'/k*"
member_kill 2
member_kill 3
start=$SECONDS
expect_eq "5: lost quorum: the cached value is served" "$(timeout 30 cat "$Q/app/conf" 2>&1)" "conf-four"
check "5: ... within about the command timeout ($((SECONDS - start))s)" test $((SECONDS - start)) -le 6
check "5: ... marked stale" grep -q -E '^[0-9]+$' <<<"$(stale "$Q/app/conf")"
out=$(timeout 30 bash -c "echo lost >'$Q/app/conf'" 2>&1)
check "5: a write fails with EIO" grep -q "Input/output error" <<<"$out"
expect_eq "5: a serializable mount still reads its member" "$(timeout 30 cat "$S/app/conf" 2>&1)" "conf-four"
sleep 3 # (the cache thread's catch-up, linearizable, must not make it offline)
check "5: ... not from the cache (no user.etcfs.stale)" bash -c "! getfattr -n user.etcfs.stale '$S/app/conf' 2>/dev/null"
check "5: ... and never went offline" bash -c "! grep -q 'does not answer' '$T_DIR/S.log'"
member_restart 2
wait_for 60 "quorum back" bash -c "$ETCFSCTL --endpoints tcp://127.0.0.1:${M_CPORT[1]} --command-timeout 2s get x >/dev/null"
ctl put "${PREFIX}app/conf" conf-five >/dev/null
wait_for 20 "fresh again" bash -c "[ \"\$(cat '$Q/app/conf' 2>/dev/null)\" = conf-five ]"
expect_eq "5: quorum back: the cluster's value is read" "$(cat "$Q/app/conf")" "conf-five"
check "5: ... not stale" bash -c "! getfattr -n user.etcfs.stale '$Q/app/conf' 2>/dev/null"

# ---------------- 6. the watch lost for good ----------------
# The mount's member is down while the revision its watch would resume from
# is compacted: the mount re-reads the prefix (resync.c, no watch events),
# and the cache must catch up too, without anyone reading through the mount.
member_restart 3
wait_for 60 "member 3 back" cluster_ready
mount_A
expect_eq "6: read" "$(cat "$A/app/conf")" "conf-five"
wait_for 10 "cached" cache_has conf-five
kill -STOP "$PID_A" # (so it cannot resume its watch before the compaction)
member_kill 1
rev0=$(ctl_on 2 get -w json "${PREFIX}app/conf" | python3 -c 'import json,sys; print(json.load(sys.stdin)["header"]["revision"])')
wait_for 30 "put through member 2" ctl_on 2 put "${PREFIX}app/conf" conf-six
for i in 1 2 3; do ctl_on 2 put "${PREFIX}churn" "$i" >/dev/null; done
rev=$(ctl_on 2 get -w json "${PREFIX}churn" | python3 -c 'import json,sys; print(json.load(sys.stdin)["header"]["revision"])')
wait_for 30 "compaction" ctl_on 2 compaction "$rev"
member_restart 1
wait_for 60 "member 1 applied the compaction" bash -c \
	"$ETCFSCTL --endpoints tcp://127.0.0.1:${M_CPORT[1]} --command-timeout 2s get --rev=$rev0 ${PREFIX}app/conf 2>&1 | grep -q compacted"
kill -CONT "$PID_A"
wait_for 40 "resync" grep -q "re-reading the prefix" "$T_DIR/A.log"
check "6: the mount resynced" grep -q "re-reading the prefix" "$T_DIR/A.log"
wait_for 20 "the cache catches up" cache_has conf-six
check "6: the cache caught up after the resync (nobody read the file)" cache_has conf-six
expect_eq "6: and the mount reads the new value" "$(cat "$A/app/conf")" "conf-six"

# ---------------- 7. a full disk ----------------
# A value the cache cannot write is kept in memory and retried, reported
# once, and never gets in the way of reads.
mkdir -p "$T_DIR/small"
mount -t tmpfs -o size=64k tmpfs "$T_DIR/small"
T_MOUNTS+=("$T_DIR/small")
ctl put "${PREFIX}big" "$(head -c 100000 /dev/zero | tr '\0' x)" >/dev/null
ctl put "${PREFIX}small" tiny >/dev/null
fs_mount F 2 -o timeout=2000,dial_timeout=500,cache_dir=$T_DIR/small/cache
F=$T_DIR/F
expect_eq "7: a value too big for the cache dir is read" "$(wc -c <"$F/big")" "100000"
expect_eq "7: ... and a small one" "$(cat "$F/small")" "tiny"
wait_for 10 "the small value is cached" bash -c "grep -q -a -F tiny '$T_DIR/small/cache'/k*"
check "7: the small value is cached" bash -c "grep -q -a -F tiny '$T_DIR/small/cache'/k*"
wait_for 10 "the failure is logged" grep -q "cannot write" "$T_DIR/F.log"
t0=$(awk '{print $14 + $15}' "/proc/$PID_F/stat")
sleep 3
t1=$(awk '{print $14 + $15}' "/proc/$PID_F/stat")
expect_eq "7: the failure is logged once, not per retry" "$(grep -c "cannot write" "$T_DIR/F.log")" "1"
check "7: retries do not spin ($((t1 - t0)) ticks of CPU in 3s)" test $((t1 - t0)) -le 30
check "7: no temp file left behind" bash -c "! ls -A '$T_DIR/small/cache' | grep -q '^\.tmp'"
expect_eq "7: reads still answered" "$(cat "$F/small")" "tiny"

t_finish
