#!/bin/bash
# tests/fs/statfs_admin.sh - what the mount says about the cluster and about
# itself (issue 12, item 6):
#  - statfs (df) comes from the cluster: size from --quota-backend-bytes,
#    used from the database size in use, files in use from the key count
#    (it said 4.0G, 50% used, whatever the cluster held);
#  - setting user.etcfs.lease to a lease that does not exist is EINVAL,
#    with a log line naming the lease (it was ENOENT, as if the file was
#    missing);
#  - mounting over a dead mount of ours (daemon killed: "Transport
#    endpoint is not connected") is refused with the fusermount3 -u hint
#    (it stacked a second mount silently).
source "$(dirname "$0")/fslib.bash"

QUOTA=$((256 * 1024 * 1024))
cluster_start 3 --quota-backend-bytes "$QUOTA"
fs_mount A 1
A=$T_DIR/A

mkdir "$A/s"
for i in 1 2 3 4 5; do echo "v$i" >"$A/s/k$i"; done
status() { # status FIELD: member 1's endpoint status field (JSON)
	ctl_on 1 endpoint status -w json | python3 -c '
import json, sys
d = json.load(sys.stdin)
d = d[0] if isinstance(d, list) else d
s = d.get("Status", d)
print(s[sys.argv[1]])' "$1"
}
read -r size used <<<"$(df -B1 --output=size,used "$A" | tail -1)"
expect_eq "df size is the quota" "$size" "$QUOTA"
inuse=$(status dbSizeInUse)
check "df used is the database size in use ($used vs $inuse)" \
	test "$((used / 4096))" = "$((inuse / 4096))"
check "df used is not the old constant" test "$used" != $((QUOTA / 2))
keys=$(ctl get --prefix --keys-only '' | grep -c .)
iused=$(df --output=iused "$A" | tail -1 | tr -d ' ')
expect_eq "df -i: files in use are the cluster's keys" "$iused" "$keys"
for i in 6 7 8; do echo "v$i" >"$A/s/k$i"; done
iused=$(df --output=iused "$A" | tail -1 | tr -d ' ')
expect_eq "df -i follows new keys" "$iused" "$((keys + 3))"

# ---- a lease that does not exist ----
out=$(setfattr -n user.etcfs.lease -v 123456789 "$A/s/k1" 2>&1)
rc=$?
check "setfattr of a lease that does not exist fails" test "$rc" != 0
check "... with EINVAL ($out)" grep -q "Invalid argument" <<<"$out"
check "... and a log line naming the lease" grep -q "lease 75bcd15 (123456789) does not exist" "$T_DIR/A.log"
expect_eq "... the key is untouched" "$(kv_get s/k1)" "v1"
id=$(ctl lease grant 60 | awk '{print $2}')
setfattr -n user.etcfs.lease -v "$id" "$A/s/k1"
expect_eq "a lease that exists is attached" "$((16#$(getfattr --only-values -n user.etcfs.lease "$A/s/k1")))" "$((16#$id))"

# ---- mounting over a dead mount of ours ----
fs_mount C 1
C=$T_DIR/C
kill -KILL "$PID_C"
wait_for 10 "C is dead" bash -c "stat '$C' 2>&1 | grep -q 'not connected'"
check "the killed mount answers ENOTCONN" bash -c "stat '$C' 2>&1 | grep -q 'not connected'"
# (a timeout: were it not refused, it would mount and serve in the foreground)
out=$(timeout 20 "$ETCFS" --endpoints "tcp://127.0.0.1:${M_CPORT[1]}" --prefix "$PREFIX" "$C" -f 2>&1)
rc=$?
check "mounting over a dead mount is refused at once (rc $rc)" test "$rc" = 1
check "... with the fusermount3 -u hint ($out)" grep -q "fusermount3 -u $C" <<<"$out"
check "... naming it as ours" grep -q "dead etcfs mount" <<<"$out"
expect_eq "... and nothing was stacked" "$(grep -c " $C " /proc/mounts)" 1
check "... the dead mount is still the one there" bash -c "stat '$C' 2>&1 | grep -q 'not connected'"
fusermount3 -u -z "$C"
fs_mount C 1
check "after fusermount3 -u the mount works again" test "$(cat "$C/s/k2")" = v2

t_finish
