#!/bin/bash
# tests/fs/root.sh - the root of a mount without --prefix (what `make run`
# mounts) is a directory like any other: ls, find, stat, getfattr, df and
# inotifywait work on it (the cluster refuses a range that starts at the
# empty key: listing the root failed with EINVAL), and keys that are not
# valid paths stay reachable through their escaped names (etcfs(1),
# ESCAPING).
source "$(dirname "$0")/fslib.bash"

cluster_start 3
PREFIX=
fs_mount R 1
fs_mount S 2
R=$T_DIR/R
S=$T_DIR/S

mkdir "$R/app"
echo 'listen 8080' >"$R/app/config"
ctl put top v >/dev/null
ctl put 'weird//key' w >/dev/null
ctl put /abs a >/dev/null
ctl put '%pct' p >/dev/null

out=$(ls "$R" 2>&1)
expect_eq "ls of the root" "$(echo "$out" | tr '\n' ' ')" "% %%25pct app top weird "
expect_eq "ls -a of the root lists . and .." "$(ls -a "$R" | grep -c '^\.\.\?$')" 2
out=$(cd "$R" && find . 2>&1 | sort)
expect_eq "find from the root" "$(echo "$out" | tr '\n' ' ')" \
	". ./% ./%%25pct ./%/abs ./app ./app/config ./top ./weird ./weird/% ./weird/%/key "
check "find exits 0" bash -c "find '$R' >/dev/null"
expect_eq "stat of the root" "$(stat -c '%F %i' "$R")" "directory 1"
rev=$(getfattr --only-values -n user.etcfs.cluster_revision "$R/" 2>/dev/null)
expect_eq "getfattr of the root: cluster revision" "$rev" "$(ctl get -w json top | python3 -c 'import json,sys; print(json.load(sys.stdin)["header"]["revision"])')"
check "getfattr -d of the root exits 0 and names the attribute" \
	bash -c "getfattr -d '$R/' 2>&1 | grep -q user.etcfs.cluster_revision && getfattr -d '$R/' >/dev/null 2>&1"
check "df of the root" bash -c "df '$R' >/dev/null"
expect_eq "escaped key //: read through its path" "$(cat "$R/weird/%/key")" "w"
expect_eq "escaped key /abs: read through its path" "$(cat "$R/%/abs")" "a"
expect_eq "escaped key %pct: read through its path" "$(cat "$R/%%25pct")" "p"
echo new >"$R/%/abs"
expect_eq "escaped key written through its path" "$(ctl get --print-value-only /abs)" "new"

# inotifywait on the root of another mount sees changes from everywhere
inotifywait -m -q --format '%e %f' "$S" >"$T_DIR/ev" 2>/dev/null &
T_PIDS+=("$!")
sleep 1 # inotifywait has no "ready" signal in -q mode
echo one >"$R/rootfile"
ctl put fromctl x >/dev/null
mkdir "$R/newdir"
rm "$R/rootfile"
wait_for 20 "events on the root" grep -q '^DELETE rootfile$' "$T_DIR/ev"
got=$(grep -E '^(CREATE|CLOSE_WRITE|DELETE)' "$T_DIR/ev")
want="CREATE rootfile
CLOSE_WRITE,CLOSE rootfile
CREATE fromctl
CLOSE_WRITE,CLOSE fromctl
CREATE,ISDIR newdir
DELETE rootfile"
expect_eq "inotifywait on the root of another mount" "$got" "$want"
check "the root lists what others made" bash -c "ls '$S' | grep -qx fromctl && ls '$S' | grep -qx newdir"

t_finish
