#!/bin/bash
# tests/fs/two_mounts.sh - two etcfs mounts on different members of a
# 3-member cluster: a write on one is read on the other, inotifywait on the
# other sees the local-looking events in revision order (and the writer's own
# mount sees no duplicates), concurrent writers on both mounts never produce
# a torn value, O_EXCL has exactly one winner across mounts, and a file with
# a TTL vanishes from both.
source "$(dirname "$0")/fslib.bash"

cluster_start 3
fs_mount A 1
fs_mount B 2
A=$T_DIR/A
B=$T_DIR/B

echo "from A" >"$A/shared"
expect_eq "write on A read on B" "$(cat "$B/shared")" "from A"
echo "from B" >"$B/shared"
expect_eq "write on B read on A" "$(cat "$A/shared")" "from B"

# ---- inotify ----
mkdir "$A/w"
wait_for 10 "w visible on B" test -d "$B/w"
inotifywait -m -q --format '%e %f' "$B/w" >"$T_DIR/evB" 2>/dev/null &
T_PIDS+=("$!")
inotifywait -m -q --format '%e %f' "$A/w" >"$T_DIR/evA" 2>/dev/null &
T_PIDS+=("$!")
sleep 1 # inotifywait has no "ready" signal on stdout in -q mode
echo 1 >"$A/w/f"
echo 2 >"$A/w/f"
mv "$A/w/f" "$A/w/g"
rm "$A/w/g"
ctl put "${PREFIX}w/h" x >/dev/null
ctl del "${PREFIX}w/h" >/dev/null
printf '\nput %sw/t1 a\nput %sw/t2 b\n\n' "$PREFIX" "$PREFIX" | ctl txn >/dev/null
mkdir "$A/w/d"
echo z >"$A/w/d/z"
mv "$A/w/d" "$A/w/d2"
wait_for 20 "last event on B" grep -q "MOVED_TO,ISDIR d2" "$T_DIR/evB"
sleep 0.5
want="CREATE f
MODIFY f
CLOSE_WRITE,CLOSE f
MODIFY f
CLOSE_WRITE,CLOSE f
MOVED_FROM f
MOVED_TO g
DELETE g
CREATE h
MODIFY h
CLOSE_WRITE,CLOSE h
DELETE h
CREATE t1
MODIFY t1
CLOSE_WRITE,CLOSE t1
CREATE t2
MODIFY t2
CLOSE_WRITE,CLOSE t2
CREATE,ISDIR d
MOVED_FROM,ISDIR d
MOVED_TO,ISDIR d2"
got=$(grep -E '^(CREATE|MODIFY|CLOSE_WRITE|DELETE|MOVED_FROM|MOVED_TO)' "$T_DIR/evB")
expect_eq "inotify on B: events of changes made on A and by etcfsctl, in order" "$got" "$want"
expect_eq "A sees its own create once" "$(grep -c '^CREATE f$' "$T_DIR/evA")" 1
expect_eq "A sees its own CLOSE_WRITEs once each" "$(grep -c '^CLOSE_WRITE,CLOSE f$' "$T_DIR/evA")" 2
check "A sees the remote put" grep -q '^CREATE h$' "$T_DIR/evA"
check "A sees the remote delete" grep -q '^DELETE h$' "$T_DIR/evA"
expect_eq "directory renamed on A is one rename on B" "$(ls "$B/w/d2")" "z"

# ---- concurrent writers never tear ----
python3 -c 'import sys; sys.stdout.write("z"*100000)' >"$A/w/race"
writer() { # writer MOUNT LETTERS
	python3 - "$1/w/race" "$2" <<'EOF'
import os, sys
path, letters = sys.argv[1], sys.argv[2]
for i in range(15):
    c = letters[i % len(letters)].encode()
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    for _ in range(25):
        os.write(fd, c * 4000)
    os.close(fd)
EOF
}
reader() { # reader MOUNT -> prints BAD lines
	python3 - "$1/w/race" <<'EOF'
import sys, time
end = time.time() + 6
n = 0
while time.time() < end:
    try:
        d = open(sys.argv[1], "rb").read()
    except OSError as e:
        print("BAD error", e); continue
    n += 1
    if len(d) != 100000 or d.count(d[:1]) != len(d):
        print("BAD torn len=%d kinds=%d" % (len(d), len(set(d))))
print("reads", n)
EOF
}
writer "$A" abc & w1=$!
writer "$B" def & w2=$!
writer "$A" ghi & w3=$!
writer "$B" jkl & w4=$!
reader "$A" >"$T_DIR/readA" & r1=$!
reader "$B" >"$T_DIR/readB" & r2=$!
wait $w1 $w2 $w3 $w4 $r1 $r2
expect_eq "no torn or interleaved value read on either mount" "$(cat "$T_DIR/readA" "$T_DIR/readB" | grep -c BAD)" 0
check "readers really read concurrently" test "$(awk '/^reads/ {s += $2} END {print s+0}' "$T_DIR/readA" "$T_DIR/readB")" -ge 20
final=$(kv_get w/race)
expect_eq "final value is one writer's whole value" "$(printf '%s' "$final" | fold -w1 | sort -u | wc -l) ${#final}" "1 100000"

# ---- O_EXCL: one winner across mounts ----
racers=()
for i in $(seq 1 10); do
	if [ $((i % 2)) = 0 ]; then mnt=$A; else mnt=$B; fi
	( set -o noclobber; echo "$i" >"$mnt/w/excl" ) 2>/dev/null && echo won >"$T_DIR/won.$i" &
	racers+=("$!")
done
wait "${racers[@]}"
expect_eq "exactly one O_EXCL winner among racing processes" "$(ls "$T_DIR" | grep -c '^won\.')" 1
winner=$(ls "$T_DIR" | grep '^won\.' | cut -d. -f2)
expect_eq "the winner's value is stored" "$(kv_get w/excl)" "$winner"

# ---- TTL vanishes everywhere ----
echo temp >"$A/w/ttlf"
wait_for 10 "ttlf on B" test -f "$B/w/ttlf"
setfattr -n user.etcfs.ttl -v 2 "$A/w/ttlf"
check "ttl readable" test "$(getfattr --only-values -n user.etcfs.ttl "$A/w/ttlf" 2>/dev/null)" -le 2
wait_for 20 "ttlf gone on B" bash -c "! test -e '$B/w/ttlf'"
check "TTL file disappears on the other mount" bash -c "! test -e '$B/w/ttlf'"
wait_for 10 "DELETE ttlf on B" grep -q '^DELETE ttlf$' "$T_DIR/evB"
check "lease expiry produces DELETE on the other mount" grep -q '^DELETE ttlf$' "$T_DIR/evB"

t_finish
