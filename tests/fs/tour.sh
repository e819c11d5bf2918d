#!/bin/bash
# tests/fs/tour.sh - the README's "A short tour" runs as written on what
# `make run` makes (a 3-member cluster, a mount without --prefix at ./mnt):
# every line of the tour's sh block is run from a directory laid out like
# the repository (bin/, contrib/, mnt/), with only the fixed ports of
# `make run` replaced by this test's random ones.  Commands that run until
# Ctrl-C (watch) are stopped after a while; inotifywait must have reported
# the tour's remote put.  Also checks that contrib/etcfs-reload-example.sh
# reloads on CLOSE_WRITE and MOVED_TO only.
source "$(dirname "$0")/fslib.bash"
ROOT=${ETCFS_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}

cluster_start 3
PREFIX=
fs_mount mnt 1
W=$T_DIR/tour
mkdir -p "$W"
ln -s "$ETCFS_BIN" "$W/bin"
ln -s "$ROOT/contrib" "$W/contrib"
ln -s "$T_DIR/mnt" "$W/mnt"
export ETCFSCTL_ENDPOINTS="tcp://127.0.0.1:${M_CPORT[1]}" # etcfsctl's default, as on make run

sed -n '/^## A short tour/,/^## /p' "$ROOT/README.md" | sed -n '/^```sh$/,/^```$/p' | sed '1d;$d' |
	sed -e "s/127\.0\.0\.1:22379/127.0.0.1:${M_CPORT[2]}/g" \
		-e "s/127\.0\.0\.1:2379/127.0.0.1:${M_CPORT[1]}/g" \
		-e "s/127\.0\.0\.1:2378/127.0.0.1:${M_HPORT[1]}/g" >"$T_DIR/tour.lines"
check "the tour has its commands" test "$(grep -c . "$T_DIR/tour.lines")" -ge 10
n=0
while IFS= read -r line; do
	[ -n "$line" ] || continue
	n=$((n + 1))
	cmd=${line%%#*}
	cmd=${cmd%"${cmd##*[![:space:]]}"}
	if [[ "$cmd" == *'&' ]]; then
		(cd "$W" && exec bash -c "exec ${cmd%&}") >"$T_DIR/bg.$n" 2>&1 </dev/null &
		T_PIDS+=("$!")
		sleep 1 # inotifywait -m has no ready signal
		check "tour line $n runs in the background: $cmd" kill -0 "$!"
		continue
	fi
	rc=0
	(cd "$W" && timeout 5 bash -c "$cmd") >"$T_DIR/out.$n" 2>&1 </dev/null || rc=$?
	if [[ "$cmd" == *' watch '* ]]; then
		expect_eq "tour line $n watches until stopped: $cmd" "$rc" 124
	else
		expect_eq "tour line $n succeeds: $cmd" "$rc" 0
		[ "$rc" = 0 ] || sed 's/^/    /' "$T_DIR/out.$n"
	fi
done <"$T_DIR/tour.lines"
expect_eq "the tour's put is read back" "$(cat "$W/mnt/app/config")" "listen 9090"
check "inotifywait of the tour saw the remote put" \
	wait_for 20 "CLOSE_WRITE config" grep -q 'CLOSE_WRITE,CLOSE config' "$T_DIR"/bg.*
check "the lock script ran" grep -q 'app/counter is now 1' "$T_DIR"/out.*
check "the gateway read returns the value" grep -q "$(printf 'listen 9090' | base64)" "$T_DIR"/out.*

# ---- the reload script reacts to whole new values only ----
mkdir -p "$W/mnt/svc"
echo v1 >"$W/mnt/svc/conf"
# in a process group of its own: its inotifywait goes with it at the end
setsid bash "$ROOT/contrib/etcfs-reload-example.sh" "$W/mnt/svc/conf" \
	"echo RELOAD >>'$T_DIR/reloads'" >"$T_DIR/reload.log" 2>&1 &
RPID=$!
trap 'kill -- -$RPID 2>/dev/null; t_cleanup' EXIT
sleep 1
echo v2 >"$W/mnt/svc/conf.new" # CREATE + CLOSE_WRITE of another name: no reload
ctl put svc/conf v3 >/dev/null # remote: CLOSE_WRITE
wait_for 20 "one reload" test -s "$T_DIR/reloads"
mv "$W/mnt/svc/conf.new" "$W/mnt/svc/conf" # MOVED_TO
wait_for 20 "two reloads" test "$(wc -l <"$T_DIR/reloads")" -ge 2
rm "$W/mnt/svc/conf" # DELETE: logged, no reload
wait_for 20 "delete logged" grep -q deleted "$T_DIR/reload.log"
expect_eq "reload script: one reload per CLOSE_WRITE / MOVED_TO, none for CREATE or DELETE" \
	"$(wc -l <"$T_DIR/reloads")" 2
check "reload script listens for close_write and moved_to (and delete, logged) only" \
	grep -q "inotifywait -m -q -e close_write -e moved_to -e delete" "$ROOT/contrib/etcfs-reload-example.sh"

t_finish
