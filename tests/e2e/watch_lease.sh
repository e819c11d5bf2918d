#!/bin/bash
# Watches, leases, locks and elections on a real 3-member cluster:
#  - a watcher keeps every event, once, in order, across a SIGKILL of the
#    member it is connected to;
#  - a slow watcher under a write flood neither slows writers nor loses events;
#  - a lease expires within TTL + election timeout, keep-alive carries it
#    across a leader kill, leases survive a restart of the whole cluster;
#  - lock: mutual exclusion among contending processes, one SIGKILLed while
#    holding; election: a killed leader is replaced.
source "$(dirname "$0")/lib.sh"
ELECTION_MS=1000
cluster_start 3 --election-timeout $ELECTION_MS

# ---------------------------------------------------------------- watch failover
L=$(leader_index) || { fail "leader"; exit 1; }
others=""
for i in 1 2 3; do [ "$i" != "$L" ] && others+=",tcp://127.0.0.1:${M_CPORT[$i]}"; done
# the watcher talks to the leader first, the others after it
"$ETCFSCTL" --endpoints "tcp://127.0.0.1:${M_CPORT[$L]}$others" watch wf/ --prefix >"$T_DIR/watch.out" 2>"$T_DIR/watch.err" &
WATCHER=$!
T_PIDS+=("$WATCHER")
sleep 1
N=60
for i in $(seq 1 $N); do
	if [ "$i" = 25 ]; then member_kill "$L"; fi
	until ctl --command-timeout 3s put "wf/$(printf %03d "$i")" "v$i" >/dev/null 2>&1; do sleep 0.2; done
done
got_all() { [ "$(grep -c '^wf/' "$T_DIR/watch.out")" -ge $N ]; }
wait_for 60 "the watcher has all $N events" got_all
keys=$(grep '^wf/' "$T_DIR/watch.out" | tr '\n' ' ')
want=$(for i in $(seq 1 $N); do printf 'wf/%03d ' "$i"; done)
expect_eq "watch across a SIGKILL of its member: every event once, in order" "$keys" "$want"
kill "$WATCHER" 2>/dev/null
member_restart "$L"
wait_for 60 "cluster back" cluster_ready

# ---------------------------------------------------------------- slow watcher
# The watcher's output goes into a pipe nobody reads for a while.
mkfifo "$T_DIR/slow.fifo"
"$ETCFSCTL" --endpoints "$(endpoints)" watch flood/ --prefix >"$T_DIR/slow.fifo" 2>/dev/null &
SLOW=$!
T_PIDS+=("$SLOW")
exec 7<"$T_DIR/slow.fifo"   # open the read end, but don't read yet
sleep 0.5
t0=$(date +%s%N)
big=$(printf 'x%.0s' $(seq 1 512))
for b in $(seq 1 20); do
	{
		echo
		for i in $(seq 1 50); do echo "put flood/$b-$i $big"; done
		echo
	} >"$T_DIR/txn.in"
	ctl txn <"$T_DIR/txn.in" >/dev/null || fail "flood txn $b"
done
t1=$(date +%s%N)
echo "1000 puts in 20 txns with a stalled watcher: $(((t1 - t0) / 1000000)) ms"
check "writes are not blocked by a stalled watcher" test $(((t1 - t0) / 1000000)) -lt 60000
timeout 60 cat <&7 >"$T_DIR/slow.out" &
CAT=$!
flood_done() { [ "$(grep -c '^flood/' "$T_DIR/slow.out")" -ge 1000 ]; }
wait_for 60 "the slow watcher catches up" flood_done
check "the slow watcher gets all 1000 events" flood_done
check "...each exactly once" test "$(grep '^flood/' "$T_DIR/slow.out" | sort | uniq -d | wc -l)" = 0
kill "$SLOW" "$CAT" 2>/dev/null
exec 7<&-

# ---------------------------------------------------------------- leases
lease_id() { awk '/^lease/ {print $2}'; }
ID=$(ctl lease grant 3 | lease_id)
check "lease grant prints an id" test -n "$ID"
ctl put --lease "$ID" leased v >/dev/null
check "a key put with the lease exists" test "$(ctl get leased --print-value-only)" = v
t0=$(date +%s)
gone() { [ -z "$(ctl get leased --print-value-only 2>/dev/null)" ] && ctl get leased >/dev/null 2>&1; }
wait_for 20 "the leased key is deleted" gone
t1=$(date +%s)
check "lease expiry deletes the key within TTL + election timeout (+2s slack): $((t1 - t0))s" test $((t1 - t0)) -le $((3 + 1 + 2))
check "an expired lease is gone from lease list" bash -c "! $ETCFSCTL --endpoints $(endpoints) lease list | grep -qi '$ID'"

ID=$(ctl lease grant 4 | lease_id)
ctl put --lease "$ID" kept v >/dev/null
"$ETCFSCTL" --endpoints "$(endpoints)" lease keep-alive "$ID" >/dev/null 2>&1 &
KA=$! # the process itself (ctl is a function: ctl & would be a subshell)
T_PIDS+=("$KA")
sleep 1
L=$(leader_index)
member_kill "$L"
sleep 9 # more than twice the TTL
check "keep-alive carries a lease across a leader kill" test "$(ctl --command-timeout 10s get kept --print-value-only)" = v
kill "$KA"
t0=$(date +%s)
kept_gone() { [ -z "$(ctl get kept --print-value-only 2>/dev/null)" ] && ctl get kept >/dev/null 2>&1; }
wait_for 30 "the key goes once keep-alives stop" kept_gone ||
	{ ps -o pid,stat,cmd -p "$KA"; ctl lease timetolive "$ID"; ctl endpoint status --cluster -w table; }
t1=$(date +%s)
check "after keep-alive stops the key goes within TTL + election timeout (+3s slack): $((t1 - t0))s" test $((t1 - t0)) -le $((4 + 1 + 3))
member_restart "$L"
wait_for 60 "cluster back" cluster_ready

ID=$(ctl lease grant 300 | lease_id)
ctl put --lease "$ID" durable-lease v >/dev/null
for i in 1 2 3; do member_term "$i"; done
for i in 1 2 3; do member_restart "$i"; done
wait_for 60 "cluster back after a full restart" cluster_ready
ttl=$(ctl lease timetolive "$ID")
check "a lease survives a restart of the whole cluster ($ttl)" bash -c "echo '$ttl' | grep -q 'remaining'"
check "its key is still there" test "$(ctl get durable-lease --print-value-only)" = v
check "lease revoke deletes its key" bash -c "$ETCFSCTL --endpoints $(endpoints) lease revoke $ID >/dev/null && [ -z \"\$($ETCFSCTL --endpoints $(endpoints) get durable-lease)\" ]"

# ---------------------------------------------------------------- lock
cat >"$T_DIR/critical.sh" <<'EOS'
#!/bin/bash
# inside the lock: nobody else may be inside
if ! mkdir "$1/inside" 2>/dev/null; then echo overlap >>"$1/violations"; fi
echo "$$" >>"$1/entered"
sleep 0.3
rmdir "$1/inside"
EOS
chmod +x "$T_DIR/critical.sh"
# a holder that will be SIGKILLed while holding
"$ETCFSCTL" --endpoints "$(endpoints)" lock --ttl 2 mylock sleep 1000 >"$T_DIR/holder.out" 2>&1 &
HOLDER=$!
T_PIDS+=("$HOLDER")
held() { [ -n "$(ctl get mylock/ --prefix --keys-only)" ]; }
wait_for 20 "the first holder has the lock" held
CONT=()
for i in 1 2 3 4; do
	"$ETCFSCTL" --endpoints "$(endpoints)" lock --ttl 2 mylock "$T_DIR/critical.sh" "$T_DIR" >/dev/null 2>&1 &
	CONT+=("$!")
	T_PIDS+=("$!")
done
sleep 1
check "contenders wait while the lock is held" test ! -s "$T_DIR/entered"
kill -KILL "$HOLDER"
all_entered() { [ "$(wc -l <"$T_DIR/entered" 2>/dev/null || echo 0)" -ge 4 ]; }
wait_for 60 "every contender got the lock after the holder was SIGKILLed" all_entered
check "every contender got the lock after the holder's lease expired" all_entered
check "no two holders were ever inside at once" test ! -e "$T_DIR/violations"
for p in "${CONT[@]}"; do wait "$p" 2>/dev/null; done

# ---------------------------------------------------------------- election
"$ETCFSCTL" --endpoints "$(endpoints)" elect --ttl 2 myelection p1 >"$T_DIR/e1.out" 2>&1 &
E1=$!
T_PIDS+=("$E1")
wait_for 20 "p1 is elected" grep -q p1 "$T_DIR/e1.out"
"$ETCFSCTL" --endpoints "$(endpoints)" elect --ttl 2 myelection p2 >"$T_DIR/e2.out" 2>&1 &
E2=$!
T_PIDS+=("$E2")
"$ETCFSCTL" --endpoints "$(endpoints)" elect -l myelection >"$T_DIR/obs.out" 2>&1 &
OBS=$!
T_PIDS+=("$OBS")
sleep 1
check "p2 waits while p1 leads" bash -c "! grep -q p2 '$T_DIR/e2.out'"
kill -KILL "$E1"
wait_for 30 "p2 takes over after p1 is killed" grep -q p2 "$T_DIR/e2.out"
check "p2 becomes leader after p1 is SIGKILLed" grep -q p2 "$T_DIR/e2.out"
wait_for 10 "the observer sees p2" grep -q p2 "$T_DIR/obs.out"
check "an observer sees the new leader" grep -q p2 "$T_DIR/obs.out"
kill "$E2" "$OBS" 2>/dev/null
t_finish
