#!/bin/bash
# tests/fs/events.sh - every revision made elsewhere gives the watchers of a
# mount exactly the inotify events a local sequence of the same changes
# would, in revision order, once each (man/etcfs.1, EVENTS): a new directory
# is one CREATE,ISDIR and then CREATE, MODIFY, CLOSE_WRITE per file, seen
# whole by recursive watchers; a prefix delete is one DELETE per file and
# then the directory's DELETE_SELF and DELETE,ISDIR, deepest first; a rename
# is MOVED_FROM/MOVED_TO.  Changes come from etcfsctl (another member),
# another mount and the JSON gateway, then again after the mount's member
# died.  Two recursive watchers watch mount A: inotifywait -r and evwatch -r
# (tests/tools/evwatch.c, on the inotify syscalls directly).  Each case ends
# with a "sentinel" put: once both watchers report it, every event of the
# case has been delivered (one watch, revision order), so the comparison
# also catches duplicates without sleeping.
source "$(dirname "$0")/fslib.bash"
EVW="$ETCFS_BIN/tests/evwatch"
PY=$(command -v /usr/bin/python3 || command -v python3)

cluster_start 3
fs_mount A 1
fs_mount B 2
A=$T_DIR/A
B=$T_DIR/B
E="http://127.0.0.1:${M_HPORT[3]}"
wait_for 30 "HTTP gateway answers" curl -sf -o /dev/null "$E/health"

inotifywait -m -r --format '%e %w%f' "$A" >"$T_DIR/iw" 2>"$T_DIR/iw.err" &
T_PIDS+=("$!")
wait_for 10 "inotifywait ready" grep -q "Watches established" "$T_DIR/iw.err"
"$EVW" -r "$A" >"$T_DIR/ew" 2>"$T_DIR/ew.err" &
T_PIDS+=("$!")
wait_for 10 "evwatch ready" grep -q "^ready" "$T_DIR/ew.err"

# The events that tell what happened, paths relative to A (inotifywait
# writes a watched directory with a trailing slash).
norm() {
	grep -E '^(CREATE|DELETE|MOVED_FROM|MOVED_TO|MOVE_SELF|MODIFY|CLOSE_WRITE)' "$1" |
		sed -e "s| $A/| |" -e 's|/$||' | grep -v ' sentinel$'
}
declare -A MARK
mark() { local w; for w in iw ew; do MARK[$w]=$(norm "$T_DIR/$w" | wc -l); done; }
SEQ=0
sentinel_seen() { [ "$(grep -c "^CLOSE_WRITE,CLOSE $A/sentinel\$" "$T_DIR/$1")" -ge "$SEQ" ]; }
# expect_events NAME WANT: both watchers reported exactly WANT since mark
expect_events() {
	SEQ=$((SEQ + 1))
	ctl put "${PREFIX}sentinel" "s$SEQ" >/dev/null
	wait_for 60 "inotifywait caught up ($SEQ)" sentinel_seen iw
	wait_for 60 "evwatch caught up ($SEQ)" sentinel_seen ew
	expect_eq "$1 (inotifywait -r)" "$(norm "$T_DIR/iw" | tail -n +$((MARK[iw] + 1)))" "$2"
	expect_eq "$1 (evwatch -r)" "$(norm "$T_DIR/ew" | tail -n +$((MARK[ew] + 1)))" "$2"
	mark
}
b64() { printf '%s' "$1" | base64 -w0; }
gw() { curl -sf -m 20 -X POST "$E$1" --data-binary "$2" >/dev/null; }
gw_put_ops() { # gw_put_ops KEY... -> JSON success ops putting "v-KEY" at each
	local k sep="" out=""
	for k in "$@"; do
		out+="$sep{\"request_put\":{\"key\":\"$(b64 "$PREFIX$k")\",\"value\":\"$(b64 "v-$k")\"}}"
		sep=","
	done
	printf '%s' "$out"
}
created() { # created PATH... -> the events of a new file, each
	local p
	for p in "$@"; do printf 'CREATE %s\nMODIFY %s\nCLOSE_WRITE,CLOSE %s\n' "$p" "$p" "$p"; done
}
deleted() { local p; for p in "$@"; do echo "DELETE $p"; done; }
rmdir_ev() { printf 'DELETE_SELF %s\nDELETE,ISDIR %s\n' "$1" "$1"; }
txn_puts() { # txn_puts KEY... through etcfsctl on member $ON
	{ echo; for k in "$@"; do echo "put $PREFIX$k v-$k"; done; echo; } | ctl_on "$ON" txn >/dev/null
}

mark
run_cases() { # run_cases TAG: every case, with changes made through member $ON
	local t=$1
	# ---- a new directory of N files in one txn (etcfsctl) ----
	txn_puts "$t-new/a" "$t-new/b" "$t-new/c"
	expect_events "$t: txn of 3 keys in a new directory: one CREATE,ISDIR, then each file" \
		"CREATE,ISDIR $t-new
$(created "$t-new/a" "$t-new/b" "$t-new/c")"
	check "$t: values readable" test "$(cat "$A/$t-new/c")" = "v-$t-new/c"

	# ---- prefix delete (etcfsctl) ----
	ctl_on "$ON" del "$PREFIX$t-new/" --prefix >/dev/null
	expect_events "$t: prefix delete of 3 keys: DELETE each, then the directory" \
		"$(deleted "$t-new/a" "$t-new/b" "$t-new/c")
$(rmdir_ev "$t-new")"
	check "$t: directory gone" bash -c "! test -e '$A/$t-new'"

	# ---- empty values: a new empty key is written with no byte ----
	ctl_on "$ON" put "$PREFIX$t-empty" "" >/dev/null
	expect_events "$t: new empty key: CREATE, CLOSE_WRITE (no MODIFY, as a local ': > f')" \
		"CREATE $t-empty
CLOSE_WRITE,CLOSE $t-empty"
	ctl_on "$ON" put "$PREFIX$t-empty" "" >/dev/null
	expect_events "$t: empty value put again: MODIFY, CLOSE_WRITE (as O_TRUNC of a file)" \
		"MODIFY $t-empty
CLOSE_WRITE,CLOSE $t-empty"
	ctl_on "$ON" del "$PREFIX$t-empty" >/dev/null
	expect_events "$t: key deleted: DELETE" "DELETE $t-empty"

	# ---- a bigger new subtree, nested (JSON gateway) ----
	local keys=() k i
	for i in $(seq -w 1 12); do keys+=("$t-big/k$i"); done
	keys+=("$t-big/sub/deep/x" "$t-big/sub/y")
	gw /v3/kv/txn "{\"success\":[$(gw_put_ops "${keys[@]}")]}"
	local want="CREATE,ISDIR $t-big"
	for i in $(seq -w 1 12); do want+=$'\n'$(created "$t-big/k$i"); done
	want+="
CREATE,ISDIR $t-big/sub
CREATE,ISDIR $t-big/sub/deep
$(created "$t-big/sub/deep/x" "$t-big/sub/y")"
	expect_events "$t: gateway txn of a nested new subtree: recursive watchers see every file" "$want"

	# ---- nested prefix delete (JSON gateway) ----
	gw /v3/kv/deleterange "{\"key\":\"$(b64 "$PREFIX$t-big/")\",\"range_end\":\"$(b64 "$PREFIX$t-big0")\"}"
	want=""
	for i in $(seq -w 1 12); do want+="DELETE $t-big/k$i"$'\n'; done
	want+="DELETE $t-big/sub/deep/x
$(rmdir_ev "$t-big/sub/deep")
DELETE $t-big/sub/y
$(rmdir_ev "$t-big/sub")
$(rmdir_ev "$t-big")"
	expect_events "$t: gateway delete-range of a nested tree: files, then directories deepest first" "$want"

	# ---- renames (another mount) ----
	mkdir "$B/$t-r"
	echo one >"$B/$t-r/f"
	expect_events "$t: mkdir and a new file on another mount" \
		"CREATE,ISDIR $t-r
$(created "$t-r/f")"
	mv "$B/$t-r/f" "$B/$t-r/g"
	expect_events "$t: file renamed on another mount: MOVED_FROM/MOVED_TO" \
		"MOVED_FROM $t-r/f
MOVED_TO $t-r/g"
	mv "$B/$t-r" "$B/$t-r2"
	expect_events "$t: directory renamed on another mount: one move of the directory" \
		"MOVED_FROM,ISDIR $t-r
MOVED_TO,ISDIR $t-r2
MOVE_SELF $t-r2"
	check "$t: renamed file readable" test "$(cat "$A/$t-r2/g")" = one
	echo two >"$B/$t-r2/h"
	rm -r "$B/$t-r2"
	expect_events "$t: rm -r on another mount: the same events as a local rm -r" \
		"$(created "$t-r2/h")
DELETE $t-r2/g
DELETE $t-r2/h
$(rmdir_ev "$t-r2")"

	# ---- moves between directories (etcfsctl txns) ----
	txn_puts "$t-m1/f" "$t-m1/g"
	expect_events "$t: two keys in a new directory" "CREATE,ISDIR $t-m1
$(created "$t-m1/f" "$t-m1/g")"
	printf '\ndel %s\nput %s v-%s\n\n' "$PREFIX$t-m1/f" "$PREFIX$t-m2/f" "$t-m1/f" | ctl_on "$ON" txn >/dev/null
	expect_events "$t: txn moving a file into a new directory: mkdir, then the rename" \
		"CREATE,ISDIR $t-m2
MOVED_FROM $t-m1/f
MOVED_TO $t-m2/f"
	printf '\ndel %s\nput %s v-%s\n\n' "$PREFIX$t-m1/g" "$PREFIX$t-m2/g" "$t-m1/g" | ctl_on "$ON" txn >/dev/null
	expect_events "$t: txn moving the last file of a directory: the rename, then rmdir" \
		"MOVED_FROM $t-m1/g
MOVED_TO $t-m2/g
$(rmdir_ev "$t-m1")"
	gw /v3/kv/txn "{\"success\":[{\"request_delete_range\":{\"key\":\"$(b64 "$PREFIX$t-m2/")\",\"range_end\":\"$(b64 "$PREFIX$t-m20")\"}},{\"request_put\":{\"key\":\"$(b64 "$PREFIX$t-m3/f")\",\"value\":\"$(b64 "v-$t-m1/f")\"}},{\"request_put\":{\"key\":\"$(b64 "$PREFIX$t-m3/g")\",\"value\":\"$(b64 "v-$t-m1/g")\"}}]}"
	expect_events "$t: gateway txn moving every key of a directory: one move of the directory" \
		"MOVED_FROM,ISDIR $t-m2
MOVED_TO,ISDIR $t-m3
MOVE_SELF $t-m3"
	check "$t: moved files readable" test "$(cat "$A/$t-m3/g")" = "v-$t-m1/g"

	# ---- lease expiry of several keys ----
	local lease
	lease=$(ctl_on "$ON" lease grant 2 | awk '{print $2}')
	for k in a b c; do ctl_on "$ON" put --lease="$lease" "$PREFIX$t-ttl/$k" "$k" >/dev/null; done
	wait_for 30 "$t: leased keys expired" bash -c "[ -z \"\$($ETCFSCTL --endpoints tcp://127.0.0.1:${M_CPORT[$ON]} get --prefix --keys-only $PREFIX$t-ttl/)\" ]"
	expect_events "$t: lease expiry of 3 keys: created one by one, deleted together" \
		"CREATE,ISDIR $t-ttl
$(created "$t-ttl/a" "$t-ttl/b" "$t-ttl/c")
$(deleted "$t-ttl/a" "$t-ttl/b" "$t-ttl/c")
$(rmdir_ev "$t-ttl")"
}

ON=2
run_cases live

# ---- one revision of more events than any fixed batch: 300 keys deleted ----
want="CREATE,ISDIR many"
for t in 0 1 2; do
	keys=()
	for i in $(seq $((t * 100 + 100)) $((t * 100 + 199))); do
		keys+=("many/k$i")
		want+=$'\n'$(created "many/k$i")
	done
	txn_puts "${keys[@]}"
done
expect_events "300 keys put in three txns: one CREATE,ISDIR, then each file" "$want"
ctl_on 2 del "${PREFIX}many/" --prefix >/dev/null
want=""
for i in $(seq 100 399); do want+="DELETE many/k$i"$'\n'; done
want+=$(rmdir_ev many)
expect_events "prefix delete of 300 keys (one revision): DELETE each, then the directory" "$want"

# ---- the same after the mount's member died (the watch fails over) ----
# Puts keep coming through member 3 while member 1, the one under mount A,
# is killed in the middle: every revision is reported once, in order.  (A
# put whose outcome was unknown during the election is retried as a
# put-if-absent, so it never applies twice.)
(for i in $(seq 10 49); do
	for try in 1 2 3 4 5 6 7 8 9 10; do
		printf 'create("%s") = "0"\n\nput %s v%s\n\n' "${PREFIX}flow/k$i" "${PREFIX}flow/k$i" "$i" |
			"$ETCFSCTL" --endpoints "tcp://127.0.0.1:${M_CPORT[3]}" txn >/dev/null 2>&1 && break
		sleep 0.5
	done
done) &
writer=$!
wait_for 30 "half of the puts made" kv_exists flow/k25
member_kill 1
wait "$writer"
want="CREATE,ISDIR flow"
for i in $(seq 10 49); do want+=$'\n'$(created "flow/k$i"); done
expect_events "failover in the middle of a stream of puts: every revision once, in order" "$want"
ON=3
run_cases failover

t_finish
