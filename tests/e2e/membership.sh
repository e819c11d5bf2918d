#!/bin/bash
# Membership changes with real processes, under a put load: grow 3 -> 5
# (each new member added as a learner, started with --initial-cluster-state
# existing, promoted once caught up; a promotion before that gets etcd's
# error), remove the leader (it stops, saying so, and refuses to restart on
# its old data), replace a member whose data was wiped (remove + add anew);
# no acknowledged write lost and every member lists the same members.
source "$(dirname "$0")/lib.sh"
# wait_for, counted: a PASS or FAIL line either way
await() { if wait_for "$@"; then pass "$2"; else fail "$2"; fi; }
# the process exited (a zombie until reaped counts: kill -0 still finds it)
gone() { [ ! -e "/proc/$1" ] || grep -q '^[0-9]* (.*) [ZX] ' "/proc/$1/stat"; }

writer() {
	local out=$1 i=0
	while [ ! -f "$T_DIR/stop-writer" ]; do
		i=$((i + 1))
		if ctl --command-timeout 4s put "load/$i" "v$i" >/dev/null 2>&1; then echo "$i" >>"$out"; fi
	done
}
all_acked_present() {
	local i
	ctl get load/ --prefix --keys-only >"$T_DIR/keys" || return 1
	while read -r i; do grep -qx -- "load/$i" "$T_DIR/keys" || { echo "lost load/$i" >&2; return 1; }; done <"$T_DIR/acked"
}
member_id() { # member_id NAME-or-PEER-PORT: hex id from member list
	ctl member list | awk -F', ' -v k="$1" '$3 == k || index($4, ":" k) { print $1 }'
}
# "ID learner" lines of member I's list, sorted: the member table it holds
table_of() { ctl_on "$1" --command-timeout 2s member list | awk -F', ' '{ print $1, $6 }' | sort; }
tables_agree() {
	local i ref=""
	for i in $(seq 1 "$M_N"); do
		[ -n "${M_DOWN[$i]:-}" ] && continue
		t=$(table_of "$i") || return 1
		[ -n "$t" ] || return 1
		if [ -z "$ref" ]; then ref=$t; elif [ "$t" != "$ref" ]; then return 1; fi
	done
	[ "$(echo "$ref" | wc -l)" = "$1" ]
}
promote_when_ready() { ctl member promote "$1" >"$T_DIR/promote.out" 2>&1; }
grow() { # grow I: add member I as a learner, start it, promote it once caught up
	local i=$1 out cluster id
	M_CPORT[$i]=$(free_port)
	M_PPORT[$i]=$(free_port)
	M_HPORT[$i]=$(free_port)
	out=$(ctl member add "m$i" --peer-urls "tcp://127.0.0.1:${M_PPORT[$i]}" --learner) ||
		{ fail "member add m$i --learner" "$out"; return 1; }
	echo "$out" | grep -q '^Member [0-9a-f ]\{16\} added to cluster [0-9a-f ]\{16\}$' &&
		echo "$out" | grep -qx 'ETCD_INITIAL_CLUSTER_STATE="existing"' &&
		echo "$out" | grep -qx "ETCD_NAME=\"m$i\"" &&
		pass "member add m$i --learner prints etcdctl's lines" ||
		fail "member add m$i output" "$out"
	cluster=$(echo "$out" | sed -n 's/^ETCD_INITIAL_CLUSTER="\(.*\)"$/\1/p')
	J_CLUSTER[$i]=$cluster
	id=$(member_id "${M_PPORT[$i]}")
	if [ "$i" = 4 ]; then
		# not started: nothing replicated yet
		out=$(ctl member promote "$id" 2>&1)
		expect_eq "promote before caught up gives etcd's error" "$out" \
			"Error: etcdserver: can only promote a learner member which is in sync with leader"
	fi
	joiner_start "$i" "$cluster"
	M_N=$i
	await 60 "learner m$i caught up and promoted" promote_when_ready "$id"
	grep -q "^Member [0-9a-f ]\{16\} promoted in cluster" "$T_DIR/promote.out" ||
		fail "promote output" "$(cat "$T_DIR/promote.out")"
}

declare -A J_CLUSTER
# a small --snapshot-count: the later members catch up from a snapshot
cluster_start 3 --snapshot-count 100
writer "$T_DIR/acked" &
WRITER=$!
await 60 "put load running" test -s "$T_DIR/acked"

grow 4
grow 5
await 30 "every member lists the same 5 voters" tables_agree 5

# a member that joined restarts on its data (cluster id and first
# configuration from member/joined and member/conf_base)
member_kill 4
joiner_start 4 "${J_CLUSTER[4]}"
await 60 "the joined member restarts and serves a linearizable read" ctl_on 4 --command-timeout 2s get probe-restart
await 30 "every member lists the same 5 voters after its restart" tables_agree 5

# remove the leader
L=$(leader_index) || fail "a leader before the removal"
LID=$(member_id "m$L")
out=$(ctl member remove "$LID" 2>&1)
expect_eq "member remove of the leader" "$out" "Member $(printf '%16s' "$LID") removed from cluster $(ctl member list -w json | python3 -c 'import json,sys; print("%16x" % json.load(sys.stdin)["header"]["cluster_id"])')"
await 30 "the removed leader stops" gone "${M_PID[$L]}"
wait "${M_PID[$L]}" 2>/dev/null
M_DOWN[$L]=1
check "the removed member logs why it stopped" grep -q "the member has been permanently removed from the cluster" "$T_DIR/m$L.log"
await 30 "a write succeeds after the leader's removal" ctl --command-timeout 2s put probe x
await 30 "every member lists the same 4 members" tables_agree 4

# the removed member does not come back on its old data
member_start "$L"
await 30 "the removed member refuses to start" gone "${M_PID[$L]}"
check "it says why it refuses" grep -q "permanently removed from the cluster; its data" "$T_DIR/m$L.log"
M_DOWN[$L]=1

# replace a member whose data was wiped: remove it, add a new one
R=2
[ "$R" = "$L" ] && R=3
RID=$(member_id "m$R")
member_kill "$R"
rm -rf "${T_DIR:?}/m$R"
check "member remove of the wiped member" ctl member remove "$RID"
M_N=6
grow 6
await 30 "every member lists the same 4 members after the replacement" tables_agree 4

# the JSON gateway: etcd's /v3/cluster/member/{add,promote,update,remove}
gw() { curl -s -X POST "http://127.0.0.1:${M_HPORT[$1]}/v3/cluster/member/$2" -d "$3"; }
G=$(for i in $(seq 1 "$M_N"); do [ -z "${M_DOWN[$i]:-}" ] && { echo "$i"; break; }; done)
P7=$(free_port)
out=$(gw "$G" add "{\"peerURLs\":[\"tcp://127.0.0.1:$P7\"],\"isLearner\":true}")
GID=$(echo "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); m=d["member"]; assert m["isLearner"] and m["peerURLs"]==["tcp://127.0.0.1:'"$P7"'"]; assert any(x["ID"]==m["ID"] for x in d["members"]); print(m["ID"])') &&
	pass "gateway member/add of a learner" || fail "gateway member/add" "$out"
out=$(gw "$G" promote "{\"ID\":\"$GID\"}")
echo "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["error"]==d["message"]=="etcdserver: can only promote a learner member which is in sync with leader" and d["code"]==9' &&
	pass "gateway member/promote before caught up: etcd's error" || fail "gateway member/promote" "$out"
out=$(gw "$G" update "{\"ID\":\"$GID\",\"peerURLs\":[\"tcp://127.0.0.1:$((P7 + 1))\"]}")
echo "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); assert [m for m in d["members"] if m["ID"]=="'"$GID"'"][0]["peerURLs"]==["tcp://127.0.0.1:'"$((P7 + 1))"'"]' &&
	pass "gateway member/update" || fail "gateway member/update" "$out"
out=$(gw "$G" remove "{\"ID\":\"$GID\"}")
echo "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); assert all(m["ID"]!="'"$GID"'" for m in d["members"]) and len(d["members"])==4' &&
	pass "gateway member/remove" || fail "gateway member/remove" "$out"

touch "$T_DIR/stop-writer"
wait "$WRITER"
check "every acknowledged write is read back ($(wc -l <"$T_DIR/acked") puts)" all_acked_present
t_finish
