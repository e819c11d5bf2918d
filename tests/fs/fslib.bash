# tests/fs/fslib.bash - helpers for the mount tests (sourced; not a test itself).
#
#   source "$(dirname "$0")/fslib.bash"
#   cluster_start 3
#   fs_mount A 1 [-o opts]      # mount $T_DIR/A through member 1 (others as failover)
#   kv_get KEY                  # value of PREFIX+KEY via etcfsctl (empty if absent)
#   kv_keys                     # every key under PREFIX, one per line, prefix removed
#
# Everything is torn down by tests/e2e/lib.sh's EXIT trap (mounts included).
source "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"
PREFIX=/fst/

fs_mount() { # fs_mount NAME MEMBER_INDEX [extra etcfs args...]
	local name=$1 idx=$2; shift 2
	local dir="$T_DIR/$name" eps i
	eps="tcp://127.0.0.1:${M_CPORT[$idx]}"
	for i in $(seq 1 "$M_N"); do
		[ "$i" = "$idx" ] || eps+=",tcp://127.0.0.1:${M_CPORT[$i]}"
	done
	mkdir -p "$dir"
	# PREFIX= mounts the whole keyspace with no --prefix at all (as make run)
	setsid "$ETCFS" --endpoints "$eps" ${PREFIX:+--prefix "$PREFIX"} "$dir" -f "$@" \
		</dev/null >>"$T_DIR/$name.log" 2>&1 &
	T_PIDS+=("$!")
	T_MOUNTS+=("$dir")
	eval "PID_$name=$!"
	wait_for 10 "mount $name" mountpoint -q "$dir"
}

kv_get() { printf '%s\n' "$(ctl get --print-value-only "$PREFIX$1" 2>/dev/null)"; }
kv_exists() { [ -n "$(ctl get --keys-only "$PREFIX$1" 2>/dev/null)" ]; }
kv_keys() { ctl get --prefix --keys-only "$PREFIX" 2>/dev/null | grep -v '^$' | sed "s|^$PREFIX||"; }
kv_rev() { # mod revision of a key
	ctl get -w json "$PREFIX$1" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["kvs"][0]["mod_revision"] if d.get("kvs") else 0)'
}
cluster_rev() {
	ctl get -w json "$PREFIX" | python3 -c 'import json,sys; print(json.load(sys.stdin)["header"]["revision"])'
}
