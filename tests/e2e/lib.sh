# tests/e2e/lib.sh - shared helpers for the end-to-end tests (sourced, bash).
#
#   source "$(dirname "$0")/lib.sh"
#   cluster_start 3 [extra etcfsd flags...]    # members m1..m3 on random loopback ports
#   ctl put a b                                # etcfsctl against every member
#   ctl_on 2 get a                             # etcfsctl against member 2 only
#   wait_for 20 "description" command args...  # poll until the command succeeds
#   check "name" command args...               # PASS/FAIL line from the exit status
#   member_kill 1 / member_stop 1 / member_cont 1 / member_restart 1
#
# Everything a test starts is recorded and torn down by the EXIT trap, even
# when the test fails or is interrupted: processes (by pid, never by name)
# and FUSE mounts.
set -u
ETCFS_BIN=${ETCFS_BIN:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/bin}
ETCFSD="$ETCFS_BIN/etcfsd"
ETCFSCTL="$ETCFS_BIN/etcfsctl"
ETCFS="$ETCFS_BIN/etcfs"
T_DIR=$(mktemp -d /tmp/etcfs-e2e.XXXXXX)
T_PIDS=()
T_MOUNTS=()
T_FAILED=0
declare -A M_PID M_CPORT M_PPORT M_HPORT M_FLAGS
M_N=0

t_cleanup() {
	local m p
	for m in "${T_MOUNTS[@]}"; do
		fusermount3 -u -z "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
	done
	for p in "${T_PIDS[@]}"; do kill -CONT "$p" 2>/dev/null; kill -TERM "$p" 2>/dev/null; done
	for p in "${T_PIDS[@]}"; do
		for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null
	done
	for p in "${M_PID[@]}"; do kill -KILL "$p" 2>/dev/null; done
	wait 2>/dev/null
	if [ "${KEEP_TEST_DIR:-0}" = 1 ] || [ "$T_FAILED" != 0 ]; then
		echo "test dir kept: $T_DIR"
		# show member logs of a failed test
		if [ "$T_FAILED" != 0 ]; then
			for f in "$T_DIR"/m*.log; do [ -f "$f" ] && { echo "== $f"; tail -n 30 "$f"; }; done
		fi
	else
		rm -rf "$T_DIR"
	fi
}
trap t_cleanup EXIT
trap 'exit 130' INT TERM

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1${2:+: $2}"; T_FAILED=$((T_FAILED + 1)); }
check() { # check NAME cmd...
	local name=$1; shift
	if "$@"; then pass "$name"; else fail "$name"; fi
}
expect_eq() { # expect_eq NAME got want
	if [ "$2" == "$3" ]; then pass "$1"; else
		fail "$1" "got [$2] want [$3]"
	fi
}

free_port() {
	local p
	while :; do
		# below the ephemeral range (32768+), so no outgoing connection can take
		# a port a restarted member needs again
		p=$((10000 + RANDOM % 22000))
		(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && continue
		grep -q ":$(printf '%04X' "$p") " /proc/net/tcp 2>/dev/null && continue
		echo "$p"
		return
	done
}

wait_for() { # wait_for SECONDS DESCRIPTION cmd...
	local secs=$1 what=$2; shift 2
	local end=$((SECONDS + secs))
	while [ $SECONDS -lt $end ]; do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "timed out after ${secs}s waiting for: $what" >&2
	return 1
}

endpoints() { # all members' client URLs
	local i s=""
	for i in $(seq 1 "$M_N"); do s+="${s:+,}tcp://127.0.0.1:${M_CPORT[$i]}"; done
	echo "$s"
}
ctl() { "$ETCFSCTL" --endpoints "$(endpoints)" "$@"; }
ctl_on() { local i=$1; shift; "$ETCFSCTL" --endpoints "tcp://127.0.0.1:${M_CPORT[$i]}" "$@"; }

member_start() { # member_start I (uses M_FLAGS, cluster spec in T_CLUSTER)
	local i=$1
	local adv="tcp://127.0.0.1:${M_CPORT[$i]}" # after i is set: local expands every word first
	# gRPC tests: members also advertise their gRPC/JSON URL (member list)
	[ "${E2E_ADVERTISE_HTTP:-0}" = 1 ] && adv+=",http://127.0.0.1:${M_HPORT[$i]}"
	setsid "$ETCFSD" --name "m$i" --data-dir "$T_DIR/m$i" \
		--listen-client-urls "tcp://127.0.0.1:${M_CPORT[$i]}" \
		--advertise-client-urls "$adv" \
		--listen-peer-urls "tcp://127.0.0.1:${M_PPORT[$i]}" \
		--initial-advertise-peer-urls "tcp://127.0.0.1:${M_PPORT[$i]}" \
		--listen-http-urls "http://127.0.0.1:${M_HPORT[$i]}" \
		--initial-cluster "$T_CLUSTER" --initial-cluster-state new \
		--initial-cluster-token "e2e-$$" ${M_FLAGS[$i]} ${ETCFSD_FLAGS:-} \
		</dev/null >>"$T_DIR/m$i.log" 2>&1 &
	M_PID[$i]=$!
	T_PIDS+=("$!")
}

# Start member I as a member added at runtime, with the --initial-cluster
# that "member add" printed.
joiner_start() { # joiner_start I CLUSTER [flags...]
	local extra
	local i=$1 cluster=$2
	shift 2
	extra="$*"
	setsid "$ETCFSD" --name "m$i" --data-dir "$T_DIR/m$i" \
		--listen-client-urls "tcp://127.0.0.1:${M_CPORT[$i]}" \
		--advertise-client-urls "tcp://127.0.0.1:${M_CPORT[$i]}" \
		--listen-peer-urls "tcp://127.0.0.1:${M_PPORT[$i]}" \
		--initial-advertise-peer-urls "tcp://127.0.0.1:${M_PPORT[$i]}" \
		--listen-http-urls "http://127.0.0.1:${M_HPORT[$i]}" \
		--initial-cluster "$cluster" --initial-cluster-state existing \
		--initial-cluster-token "e2e-$$" $extra ${ETCFSD_FLAGS:-} \
		</dev/null >>"$T_DIR/m$i.log" 2>&1 &
	M_PID[$i]=$!
	T_PIDS+=("$!")
	unset "M_DOWN[$i]"
}

cluster_start() { # cluster_start N [flags...]
	local n=$1; shift
	local i
	M_N=$n
	T_CLUSTER=""
	for i in $(seq 1 "$n"); do
		M_CPORT[$i]=$(free_port)
		M_PPORT[$i]=$(free_port)
		M_HPORT[$i]=$(free_port)
		M_FLAGS[$i]="$*"
		T_CLUSTER+="${T_CLUSTER:+,}m$i=tcp://127.0.0.1:${M_PPORT[$i]}"
	done
	for i in $(seq 1 "$n"); do member_start "$i"; done
	wait_for 60 "a leader and a linearizable read on every member" cluster_ready
}

cluster_ready() {
	local i
	for i in $(seq 1 "$M_N"); do
		[ -n "${M_DOWN[$i]:-}" ] && continue
		"$ETCFSCTL" --endpoints "tcp://127.0.0.1:${M_CPORT[$i]}" --command-timeout 2s \
			get readiness-probe >/dev/null 2>&1 || return 1
	done
}
declare -A M_DOWN

member_kill() { kill -KILL "${M_PID[$1]}" 2>/dev/null; wait "${M_PID[$1]}" 2>/dev/null; M_DOWN[$1]=1; }
member_term() { kill -TERM "${M_PID[$1]}" 2>/dev/null; wait "${M_PID[$1]}" 2>/dev/null; M_DOWN[$1]=1; }
member_stop() { kill -STOP "${M_PID[$1]}"; }
member_cont() { kill -CONT "${M_PID[$1]}"; }
member_restart() { member_start "$1"; unset "M_DOWN[$1]"; }

# Member index (1..N) of the current leader, from endpoint status.
leader_index() {
	local i lid
	for i in $(seq 1 "$M_N"); do
		[ -n "${M_DOWN[$i]:-}" ] && continue
		lid=$(ctl_on "$i" --command-timeout 2s endpoint status -w json 2>/dev/null |
			python3 -c 'import json,sys; d=json.load(sys.stdin); d=d[0] if isinstance(d,list) else d; s=d.get("Status",d); print(s["header"]["member_id"] if s.get("leader")==s["header"]["member_id"] else "")' 2>/dev/null)
		if [ -n "$lid" ]; then echo "$i"; return 0; fi
	done
	return 1
}

# etcd 3.4 (Debian's etcd-server) for comparisons: etcd_start N starts
# members e1..eN on random loopback ports (data in T_DIR, killed by the
# trap); ETCD_EPS is their client URLs.  Extra arguments go to every member.
ETCD_EPS=""
etcd_start() { # etcd_start N [extra etcd flags...]
	local n=$1 i cl="" cp pp
	shift
	local -a cps pps
	for i in $(seq 1 "$n"); do
		cps[$i]=$(free_port); pps[$i]=$(free_port)
		cl+="${cl:+,}m$i=http://127.0.0.1:${pps[$i]}"
	done
	ETCD_EPS=""
	for i in $(seq 1 "$n"); do
		cp=${cps[$i]}; pp=${pps[$i]}
		setsid /usr/bin/etcd --name "m$i" --data-dir "$T_DIR/etcd$i" \
			--listen-client-urls "http://127.0.0.1:$cp" --advertise-client-urls "http://127.0.0.1:$cp" \
			--listen-peer-urls "http://127.0.0.1:$pp" --initial-advertise-peer-urls "http://127.0.0.1:$pp" \
			--initial-cluster "$cl" --initial-cluster-state new --initial-cluster-token "etcd-e2e-$$" \
			--logger zap --log-outputs stderr "$@" </dev/null >>"$T_DIR/etcd$i.log" 2>&1 &
		T_PIDS+=("$!")
		ETCD_EPS+="${ETCD_EPS:+,}127.0.0.1:$cp"
	done
	wait_for 60 "etcd cluster healthy" env ETCDCTL_API=3 etcdctl --endpoints "$ETCD_EPS" \
		--command-timeout 2s endpoint health
}

t_finish() { # exit status for run.sh
	[ "$T_FAILED" = 0 ]
}
