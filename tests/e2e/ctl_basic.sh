#!/bin/bash
# tests/e2e/ctl_basic.sh - etcfsctl against a real single-member etcfsd.
#
# Every command is checked against the output etcdctl prints for the same
# data (literal expectations, taken from etcdctl 3.4).  When etcd and
# etcdctl are installed, a throwaway etcd is started as well and each
# command's normalised output and exit status are diffed against etcdctl's
# side by side.  Revisions, ids and timings are normalised away: etcfs and
# etcd number revisions differently and ids are random.
source "$(dirname "$0")/lib.sh"

cluster_start 1 || { fail "cluster_start"; exit 1; }
EP=$(endpoints)
C() { "$ETCFSCTL" --endpoints "$EP" "$@"; }

# ---- optional etcd side by side ------------------------------------------
HAVE_ETCD=0
if command -v etcd >/dev/null && command -v etcdctl >/dev/null && [ "${NO_ETCD:-0}" != 1 ]; then
	EC_PORT=$(free_port)
	EP_PORT=$(free_port)
	etcd --name ref --data-dir "$T_DIR/etcd" \
		--listen-client-urls "http://127.0.0.1:$EC_PORT" \
		--advertise-client-urls "http://127.0.0.1:$EC_PORT" \
		--listen-peer-urls "http://127.0.0.1:$EP_PORT" \
		--initial-advertise-peer-urls "http://127.0.0.1:$EP_PORT" \
		--initial-cluster "ref=http://127.0.0.1:$EP_PORT" >"$T_DIR/etcd.log" 2>&1 &
	T_PIDS+=("$!")
	E() { # etcdctl without its JSON log lines on stderr
		local o r
		o=$(ETCDCTL_API=3 etcdctl --endpoints "127.0.0.1:$EC_PORT" "$@" 2>&1; echo "rc=$?")
		r=${o##*rc=}; o=${o%rc=*}
		printf '%s' "$o" | grep -v '^{"level"'
		return "$r"
	}
	if wait_for 20 "etcd ready" E get probe; then HAVE_ETCD=1; else echo "etcd did not start; comparing with literals only"; fi
fi

# Normalise: drop revision/id/term fields of JSON, revision lines of -w fields.
norm() {
	python3 -c '
import json, re, sys
data = sys.stdin.read()
out = []
for line in data.split("\n"):
    s = line.strip()
    if s.startswith("{") or s.startswith("["):
        try:
            j = json.loads(s)
        except Exception:
            out.append(line); continue
        def walk(o):
            if isinstance(o, dict):
                return {k: walk(v) for k, v in o.items()
                        if k not in ("header", "Header", "create_revision", "mod_revision",
                                     "cluster_id", "member_id", "revision", "raft_term", "lease", "ID", "id")}
            if isinstance(o, list):
                return [walk(v) for v in o]
            return o
        out.append(json.dumps(walk(j), sort_keys=True))
    elif re.match(r"^\"(ClusterID|MemberID|Revision|RaftTerm|CreateRevision|ModRevision|PrevCreateRevision|PrevModRevision)\" : ", s):
        continue
    else:
        out.append(line)
print("\n".join(out))
'
}

# run_cap VAR_OUT VAR_RC IN cmd...: output with trailing newlines kept
run_cap() {
	local __vo=$1 __vr=$2 __o __r __in=$3; shift 3
	__o=$("$@" <"$__in" 2>&1; echo "rc=$?")
	__r=${__o##*rc=}
	__o=${__o%rc=*}
	__o=${__o%$'\n'}
	printf -v "$__vo" '%s' "$__o"
	printf -v "$__vr" '%s' "$__r"
}

# etcd_cmp NAME GOT GRC IN ARGS...: same command on etcd, normalised diff
etcd_cmp() {
	local name=$1 got=$2 grc=$3 in=$4; shift 4
	[ "$HAVE_ETCD" = 1 ] || return 0
	local want wrc
	run_cap want wrc "$in" E "$@"
	got=$(printf '%s\n' "$got" | norm); want=$(printf '%s\n' "$want" | norm)
	if [ "$got" == "$want" ] && [ "$grc" == "$wrc" ]; then pass "etcd-diff $name"; else
		fail "etcd-diff $name" "etcfsctl (rc=$grc):
$got
etcdctl (rc=$wrc):
$want"
	fi
}

# expect NAME WANT_RC WANT_OUTPUT [STDIN_FILE] -- ARGS: literal etcdctl output,
# and the same command diffed against etcd when it runs.  expect_local skips
# the etcd diff (ids, revisions or features that differ on purpose).
ETCD_CMP=1
expect() {
	local name=$1 wrc=$2 want=$3; shift 3
	local in=/dev/null
	if [ "$1" != "--" ]; then in=$1; shift; fi
	shift
	local got grc
	run_cap got grc "$in" C "$@"
	if [ "$got" == "$want" ] && [ "$grc" == "$wrc" ]; then pass "$name"; else
		fail "$name" "rc=$grc (want $wrc) got:
$got
want:
$want"
	fi
	[ "$ETCD_CMP" = 1 ] && etcd_cmp "$name" "$got" "$grc" "$in" "$@"
	return 0
}
expect_local() { ETCD_CMP=0 expect "$@"; }

# ---- kv ----------------------------------------------------------------------
expect put 0 "OK" -- put foo bar
expect put-prev-kv 0 "OK
foo
bar" -- put foo bar2 --prev-kv
expect put-a 0 "OK" -- put a 1
expect put-b 0 "OK" -- put b 2
expect put-space 0 "OK" -- put "k sp" "v with space"
printf 'from stdin\n' >"$T_DIR/stdin.txt"
expect put-stdin 0 "OK" "$T_DIR/stdin.txt" -- put sk
expect get-stdin-keeps-newline 0 "from stdin
" -- get sk --print-value-only
expect put-dashes 0 "OK" -- put -- -k -v
expect get-dashes 0 "-k
-v" -- get -- -k
expect get 0 "foo
bar2" -- get foo
expect get-range 0 "a
1
b
2" -- get a c
expect get-prefix-keys-only 0 "a
" -- get a --prefix --keys-only
expect get-value-only 0 "1" -- get a --print-value-only
expect get-from-key 0 "b
2
foo
bar2
k sp
v with space
sk
from stdin
" -- get --from-key b
expect get-limit-sort 0 "sk
from stdin

k sp
v with space" -- get "" --prefix --sort-by=KEY --order=DESCEND --limit 2
expect get-missing 0 "" -- get nokey
got=$(C get foo -w json | norm)
expect_eq get-json-normalised "$got" '{"count": 1, "kvs": [{"key": "Zm9v", "value": "YmFyMg==", "version": 2}]}'
got=$(C get foo -w fields | norm)
expect_eq get-fields "$got" '"Key" : "foo"
"Version" : 2
"Value" : "bar2"
"Lease" : 0
"More" : false
"Count" : 1'
got=$(C get "" --prefix --limit 1 -w json | norm)
expect_eq get-json-more "$got" '{"count": 6, "kvs": [{"key": "LWs=", "value": "LXY=", "version": 1}], "more": true}'
expect del-prev-kv 0 "1
a
1" -- del a --prev-kv
expect del-none 0 "0" -- del nope
got=$(C del b -w json | norm)
expect_eq del-json "$got" '{"deleted": 1}'
expect_local count-only 0 "4" -- get "" --prefix --count-only

# ---- errors, exit codes ----------------------------------------------------------
expect err-put-args 128 "Error: put command needs 1 argument and input from stdin or 2 arguments" -- put
expect err-get-args 128 "Error: get command needs one argument as key and an optional argument as range_end" -- get
expect err-table 4 "Error: table not supported as output format" -- get foo -w table
expect err-prefix-fromkey 128 'Error: `--prefix` and `--from-key` cannot be set at the same time, choose one' -- get a --prefix --from-key
expect err-sort 4 "Error: bad sort target FOO" -- get a --sort-by=FOO
expect err-lease-id 128 'Error: bad lease ID (strconv.ParseInt: parsing "zzz": invalid syntax), expecting ID in Hex' -- put k v --lease=zzz
expect err-compact-arg 1 'Error: strconv.ParseInt: parsing "abc": invalid syntax' -- compact abc
got=$("$ETCFSCTL" --endpoints tcp://127.0.0.1:1 --dial-timeout 200ms --command-timeout 1s put x y 2>&1); rc=$?
if [ $rc = 1 ] && [[ "$got" == "Error: "*"not sent"* ]]; then pass err-unreachable; else fail err-unreachable "rc=$rc $got"; fi
got=$(ETCFSCTL_ENDPOINTS="$EP" "$ETCFSCTL" get foo --print-value-only 2>&1)
expect_eq env-endpoints "$got" "bar2"
got=$("$ETCFSCTL" get foo --print-value-only --endpoints="${EP#tcp://}" --command-timeout=3s 2>&1)
expect_eq flags-after-verb-etcd-style-endpoint "$got" "bar2"

# ---- txn ----------------------------------------------------------------------------
printf 'mod("foo") > "0"\nvalue("foo") = "bar2"\n\nput foo "new val" --prev-kv\nget foo\ndel key2\n\nput key2 x\n\n' >"$T_DIR/txn1"
expect txn-success 0 'SUCCESS

OK
foo
bar2

foo
new val

0' "$T_DIR/txn1" -- txn
printf 'value("foo") = "nope"\n\nput foo x\n\nput key2 x\nget key2 --prefix\n\n' >"$T_DIR/txn2"
expect txn-failure 0 'FAILURE

OK

key2
x' "$T_DIR/txn2" -- txn
printf 'version("nokey") = "0"\ncreate("foo") != "0"\n\nget foo\n\n\n' >"$T_DIR/txn3"
got=$(C txn -w json <"$T_DIR/txn3" | norm)
expect_eq txn-json "$got" '{"responses": [{"Response": {"ResponseRange": {"count": 1, "kvs": [{"key": "Zm9v", "value": "bmV3IHZhbA==", "version": 3}]}}}], "succeeded": true}'
printf 'mod("foo") > "0"\n\nput ti v\n\n\n' >"$T_DIR/txn4"
expect txn-interactive 0 'compares:
success requests (get, put, del):
failure requests (get, put, del):
SUCCESS

OK' "$T_DIR/txn4" -- txn -i
printf 'bogus\n\n\n' >"$T_DIR/txn5"
expect txn-malformed 3 'Error: malformed comparison: bogus' "$T_DIR/txn5" -- txn

# ---- compact ----------------------------------------------------------------------------
rev=$(C get foo -w json | python3 -c 'import json,sys; print(json.load(sys.stdin)["header"]["revision"])')
expect_local compact 0 "compacted revision $((rev - 1))" -- compact $((rev - 1))
got=$(C compact $((rev - 1)) 2>&1); rc=$?
expect_eq compact-again "$rc $got" "1 Error: etcdserver: mvcc: required revision has been compacted"

# ---- lease ----------------------------------------------------------------------------------
out=$(C lease grant 60)
if [[ "$out" =~ ^lease\ ([0-9a-f]{16})\ granted\ with\ TTL\(60s\)$ ]]; then pass lease-grant; L=${BASH_REMATCH[1]}; else fail lease-grant "$out"; L=0; fi
expect_local lease-put 0 "OK" -- put lk lv --lease "$L"
out=$(C lease timetolive "$L" --keys)
[[ "$out" =~ ^lease\ $L\ granted\ with\ TTL\(60s\),\ remaining\([0-9]+s\),\ attached\ keys\(\[lk\]\)$ ]] && pass lease-ttl-keys || fail lease-ttl-keys "$out"
out=$(C lease list)
[[ "$out" == *"$L"* && "$out" == "found "*" leases"* ]] && pass lease-list || fail lease-list "$out"
expect_local lease-keepalive-once 0 "lease $L keepalived with TTL(60)" -- lease keep-alive --once "$L"
expect_local lease-revoke 0 "lease $L revoked" -- lease revoke "$L"
expect lease-key-gone 0 "" -- get lk
expect_local lease-expired 0 "lease $L already expired" -- lease timetolive "$L"
expect_local lease-revoke-missing 1 "Error: failed to revoke lease (etcdserver: requested lease not found)" -- lease revoke "$L"
expect_local lease-keepalive-missing 2 "Error: etcdserver: requested lease not found" -- lease keep-alive --once "$L"

# ---- watch -------------------------------------------------------------------------------------
"$ETCFSCTL" --endpoints "$EP" watch w --prefix --prev-kv >"$T_DIR/w1.out" 2>&1 &
W1=$!; T_PIDS+=("$W1")
"$ETCFSCTL" --endpoints "$EP" watch w1 -- sh -c 'echo "env $ETCD_WATCH_EVENT_TYPE $ETCD_WATCH_KEY $ETCD_WATCH_VALUE | $ETCFS_WATCH_EVENT_TYPE $ETCFS_WATCH_KEY $ETCFS_WATCH_VALUE"' >"$T_DIR/w2.out" 2>&1 &
W2=$!; T_PIDS+=("$W2")
# the watches exist once a probe put is seen by both
wait_for 20 "watchers ready" sh -c "'$ETCFSCTL' --endpoints '$EP' put w1 probe >/dev/null && grep -q probe '$T_DIR/w1.out' && grep -q probe '$T_DIR/w2.out'"
C put w1 a >/dev/null; C put w1 b >/dev/null; C del w1 >/dev/null; C put w2 "x y" >/dev/null
wait_for 20 "events delivered" sh -c "grep -q 'x y' '$T_DIR/w1.out' && grep -q '^env \"DELETE' '$T_DIR/w2.out'"
kill -TERM $W1 $W2; wait $W1 $W2 2>/dev/null
got=$(tail -n 18 "$T_DIR/w1.out")
expect_eq watch-prefix-prev-kv "$got" 'PUT
w1
probe
w1
a
PUT
w1
a
w1
b
DELETE
w1
b
w1

PUT
w2
x y'
got=$(tail -n 12 "$T_DIR/w2.out")
expect_eq watch-exec-env "$got" 'PUT
w1
a
env "PUT" "w1" "a" | PUT w1 a
PUT
w1
b
env "PUT" "w1" "b" | PUT w1 b
DELETE
w1

env "DELETE" "w1" "" | DELETE w1 '
# watch from a compacted revision is cancelled by the server: exit 5
got=$(timeout 10 "$ETCFSCTL" --endpoints "$EP" watch foo --rev 1 2>&1); rc=$?
expect_eq watch-compacted "$rc|$got" "5|watch was canceled (etcdserver: mvcc: required revision has been compacted)
Error: watch is canceled by the server"

# ---- lock: mutual exclusion, exit status, ETCD_LOCK_KEY -----------------------------------------
: >"$T_DIR/lock.log"
for i in 1 2 3; do
	C lock L1 -- sh -c "echo start $i >>'$T_DIR/lock.log'; sleep 0.5; echo end $i >>'$T_DIR/lock.log'" &
	T_PIDS+=("$!")
done
wait_for 30 "three lock holders done" sh -c "[ \$(grep -c ^end '$T_DIR/lock.log') = 3 ]"
ok=1; prev=""
while read -r what who; do
	if [ "$what" = start ]; then [ -z "$prev" ] || ok=0; prev=$who
	else [ "$prev" = "$who" ] || ok=0; prev=""; fi
done <"$T_DIR/lock.log"
[ $ok = 1 ] && pass lock-mutual-exclusion || fail lock-mutual-exclusion "$(cat "$T_DIR/lock.log")"
C lock L2 -- sh -c 'exit 3'; expect_eq lock-exit-status "$?" 3
got=$(C lock L2 -- sh -c 'echo $ETCD_LOCK_KEY')
[[ "$got" =~ ^L2/[0-9a-f]+$ ]] && pass lock-env-key || fail lock-env-key "$got"
expect lock-released 0 "" -- get L2 --prefix
# a holder killed by SIGTERM releases (revokes its session lease)
"$ETCFSCTL" --endpoints "$EP" lock L3 >"$T_DIR/l3.out" 2>&1 &
LP=$!; T_PIDS+=("$LP")
wait_for 20 "lock L3 held" grep -q '^L3/' "$T_DIR/l3.out"
[ -n "$(C get L3 --prefix --keys-only)" ] && pass lock-key-present || fail lock-key-present
kill -TERM $LP; wait $LP 2>/dev/null
expect lock-released-on-term 0 "" -- get L3 --prefix

# ---- elect --------------------------------------------------------------------------------------
"$ETCFSCTL" --endpoints "$EP" elect E1 prop1 >"$T_DIR/e1.out" 2>&1 &
EL=$!; T_PIDS+=("$EL")
wait_for 20 "leader elected" grep -q '^prop1$' "$T_DIR/e1.out"
"$ETCFSCTL" --endpoints "$EP" elect -l E1 >"$T_DIR/e2.out" 2>&1 &
OB=$!; T_PIDS+=("$OB")
wait_for 20 "observer sees leader" grep -q '^prop1$' "$T_DIR/e2.out" && pass elect-observe || fail elect-observe "$(cat "$T_DIR/e2.out")"
"$ETCFSCTL" --endpoints "$EP" elect E1 prop2 >"$T_DIR/e3.out" 2>&1 &
E2=$!; T_PIDS+=("$E2")
sleep 0.5
grep -q prop2 "$T_DIR/e3.out" && fail elect-second-waits || pass elect-second-waits
kill -TERM $EL; wait $EL 2>/dev/null
wait_for 20 "second candidate leads" grep -q '^prop2$' "$T_DIR/e3.out" && pass elect-failover || fail elect-failover
wait_for 20 "observer sees new leader" grep -q '^prop2$' "$T_DIR/e2.out" && pass elect-observe-change || fail elect-observe-change "$(cat "$T_DIR/e2.out")"
kill -TERM $E2 $OB; wait $E2 $OB 2>/dev/null

# ---- cluster verbs ------------------------------------------------------------------------------
out=$(C endpoint health 2>&1)
[[ "$out" =~ ^$EP\ is\ healthy:\ successfully\ committed\ proposal:\ took\ =\ [0-9.]+(µs|ms|s)$ ]] && pass endpoint-health || fail endpoint-health "$out"
out=$(C endpoint status -w table)
hdr=$(sed -n 2p <<<"$out")
[[ "$hdr" == *"ENDPOINT"*"ID"*"VERSION"*"DB SIZE"*"IS LEADER"*"IS LEARNER"*"RAFT TERM"*"RAFT INDEX"*"RAFT APPLIED INDEX"*"ERRORS"* ]] && [[ "$(sed -n 4p <<<"$out")" == "| $EP |"*"|      true |      false |"* ]] && pass endpoint-status-table || fail endpoint-status-table "$out"
out=$(C endpoint status --cluster)
[[ "$out" == "$EP, "*", true, false, "* ]] && pass endpoint-status-cluster || fail endpoint-status-cluster "$out"
out=$(C member list)
[[ "$out" =~ ^[0-9a-f]+,\ started,\ m1,\ tcp://127.0.0.1:[0-9]+,\ $EP,\ false$ ]] && pass member-list || fail member-list "$out"
out=$(C member list -w json | python3 -c 'import json,sys; m=json.load(sys.stdin)["members"]; print(len(m), m[0]["name"], m[0]["clientURLs"][0])')
expect_eq member-list-json "$out" "1 m1 $EP"
expect_local version 0 "etcfsctl version: 0.1.0
API version: 3.4" -- version

# ---- bench ----------------------------------------------------------------------------------------
if [ -x "$ETCFS_BIN/etcfs-bench" ]; then
	out=$("$ETCFS_BIN/etcfs-bench" --endpoints "$EP" --conns 2 --clients 4 --total 200 put 2>&1); rc=$?
	[[ $rc = 0 && "$out" =~ ^put\ conns=2\ clients=4\ ops=200\ .*errors=0$ ]] && pass bench-put || fail bench-put "$out"
	out=$("$ETCFS_BIN/etcfs-bench" --endpoints "$EP" --conns 1 --duration 1 range-serial 2>&1); rc=$?
	[[ $rc = 0 && "$out" =~ ^range-serial\ conns=1\ clients=1\ ops=[1-9][0-9]*\ .*p999=.*errors=0$ ]] && pass bench-range || fail bench-range "$out"
	out=$("$ETCFS_BIN/etcfs-bench" --endpoints tcp://127.0.0.1:1 --command-timeout 300 --total 2 txn 2>/dev/null); rc=$?
	[[ $rc = 1 && "$out" == *"errors=2" ]] && pass bench-errors-exit || fail bench-errors-exit "rc=$rc $out"
fi

t_finish
