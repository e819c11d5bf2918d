#!/bin/bash
# bench/fs-bench.sh - figures of the FUSE mount, reproducibly: starts a
# 3-member cluster on loopback (tests/e2e/lib.sh, torn down on exit), mounts
# it, and prints
#   (a) put on member 2 -> IN_CLOSE_WRITE on a mount of member 1, p50/p99
#   (b) ls and ls -l of a DIR_KEYS-key directory, cold (fresh mount) and warm
#   (c) the cat loop (open, read, close of a 1 KiB file) on tmpfs and on the
#       mount in both consistency modes, and the ratio to tmpfs
#   (d) `echo v > file` on the mount, p50/p99 (bash's own echo, and fs-write)
#   plus the cluster's own floor: etcfs-bench range/put at one connection.
#
#   bench/fs-bench.sh                       # everything from ./bin
#   MOUNT_BIN=/other/etcfs bench/fs-bench.sh  # measure another etcfs binary
#   N_PUTS=300 N_ECHO=200 DIR_KEYS=10000 SECS=5 bench/fs-bench.sh
#   PARTS="c d" bench/fs-bench.sh           # only some parts (floor a b c d)
#
# Timings are medians of REPEAT runs where a run is short; on a shared
# machine run it twice and compare.  Not a test: nothing is asserted.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/tests/fs/fslib.bash"
[ -n "${MOUNT_BIN:-}" ] && ETCFS=$MOUNT_BIN
BENCH="$ETCFS_BIN/etcfs-bench"
N_PUTS=${N_PUTS:-300}
N_ECHO=${N_ECHO:-200}
DIR_KEYS=${DIR_KEYS:-10000}
SECS=${SECS:-3}
REPEAT=${REPEAT:-3}
PARTS=${PARTS:-floor a b c d}
part() { [[ " $PARTS " == *" $1 "* ]]; }

# p50/p99 in ms of the numbers (microseconds) on stdin
pct() {
	python3 -c 'import sys
v = sorted(float(x) for x in sys.stdin if x.strip())
p = lambda q: v[min(len(v) - 1, int(q * len(v)))] / 1000
print("n=%d p50=%.3fms p99=%.3fms" % (len(v), p(0.50), p(0.99)))'
}
# mean microseconds per op of an etcfs-bench summary line
us_per_op() { sed -n 's/.*ops\/s=\([0-9.]*\).*/\1/p' | awk '{ printf "%.1f", 1e6 / $1 }'; }
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

cluster_start 3
echo "# machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); mount: $ETCFS"
leader=$(leader_index)
echo "# leader: member $leader; mounts A (linearizable) and C (cached) on member 1"
fs_mount A 1
fs_mount C 1 -o cached

if part floor; then
echo "== cluster floor, 1 connection, member 1"
"$BENCH" --endpoints "tcp://127.0.0.1:${M_CPORT[1]}" --duration "$SECS" range
"$BENCH" --endpoints "tcp://127.0.0.1:${M_CPORT[1]}" --duration "$SECS" range-serial
"$BENCH" --endpoints "tcp://127.0.0.1:${M_CPORT[1]}" --duration "$SECS" put
fi

SHM=$(mktemp -d /dev/shm/etcfs-bench.XXXXXX)
trap 'rm -rf "$SHM"; t_cleanup' EXIT
if part c; then
echo "== (c) cat loop of a 1 KiB file"
head -c 768 /dev/urandom | base64 -w0 | head -c 1024 >"$SHM/f1k"
ctl put "${PREFIX}f1k" "$(cat "$SHM/f1k")" >/dev/null
declare -A CAT
for where in tmpfs A C; do
	case $where in tmpfs) p=$SHM/f1k ;; *) p=$T_DIR/$where/f1k ;; esac
	cat "$p" >/dev/null # lookup and first fetch outside the timing
	runs=()
	for _ in $(seq 1 "$REPEAT"); do
		line=$("$BENCH" --path "$p" --duration "$SECS" fs-cat)
		echo "  $where: $line"
		runs+=("$(echo "$line" | us_per_op)")
	done
	CAT[$where]=$(printf '%s\n' "${runs[@]}" | median)
done
for where in A C; do
	printf '  %-12s %8.1f us/op  %5.1fx tmpfs (%s us/op)\n' \
		"$([ $where = A ] && echo linearizable || echo cached)" "${CAT[$where]}" \
		"$(awk -v a="${CAT[$where]}" -v b="${CAT[tmpfs]}" 'BEGIN { print a / b }')" "${CAT[tmpfs]}"
done

fi

if part d; then
echo "== (d) echo v > file"
for where in A C; do
	f=$T_DIR/$where/echo-$where
	echo warm >"$f"
	for i in $(seq 1 "$N_ECHO"); do
		t0=${EPOCHREALTIME/./}
		echo "value $i" >"$f"
		t1=${EPOCHREALTIME/./}
		echo $((t1 - t0))
	done | pct | sed "s/^/  bash echo on $where: /"
	got=$(ctl get --print-value-only "${PREFIX}echo-$where")
	[ "$got" = "value $N_ECHO" ] || echo "  WARNING: last value in the cluster is [$got]"
	echo "  $where: $("$BENCH" --path "$f" --total "$N_ECHO" fs-write)"
done

fi

if part a; then
echo "== (a) put on member 2 -> IN_CLOSE_WRITE on a mount of member 1"
ctl put "${PREFIX}wl/k" init >/dev/null
wait_for 10 "wl/k on A" test -f "$T_DIR/A/wl/k"
wait_for 10 "wl/k on C" test -f "$T_DIR/C/wl/k"
for where in A C; do
	echo "  $where: $("$BENCH" --endpoints "tcp://127.0.0.1:${M_CPORT[2]}" \
		--key "${PREFIX}wl/k" --path "$T_DIR/$where/wl/k" --total "$N_PUTS" watch-latency)"
done

fi

part b || exit 0
echo "== (b) ls of a $DIR_KEYS-key directory"
load() { # load FIRST LAST: 128 puts per txn
	local i j body line
	for ((i = $1; i < $2; i += 128)); do
		body=$'\n'
		for ((j = i; j < i + 128 && j < $2; j++)); do
			printf -v line 'put %sbig/k%06d v%d' "$PREFIX" "$j" "$j"
			body+=$line$'\n'
		done
		printf '%s\n\n' "$body" | ctl txn >/dev/null 2>&1 ||
			printf '%s\n\n' "$body" | ctl txn >/dev/null
	done
}
per=$(((DIR_KEYS + 3) / 4))
loaders=()
for p in 0 1 2 3; do
	s=$((p * per)); e=$(((p + 1) * per)); [ $e -gt "$DIR_KEYS" ] && e=$DIR_KEYS
	load $s $e &
	loaders+=("$!")
done
wait "${loaders[@]}" # not a bare wait: the members are children too
echo "  keys: $(ctl get --prefix --count-only "${PREFIX}big/" -w json |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["count"])')"
mstime() { # mstime cmd... : wall milliseconds of one run (output discarded)
	local t0 t1
	t0=${EPOCHREALTIME/./}
	"$@" >/dev/null 2>&1
	t1=${EPOCHREALTIME/./}
	echo "$(((t1 - t0) / 1000))"
}
for mode in linearizable cached; do
	for cmd in ls "ls -l"; do
		name=D$RANDOM
		fs_mount "$name" 1 -o "consistency=$mode"
		d=$T_DIR/$name/big
		c=$(mstime $cmd "$d")
		w1=$(mstime $cmd "$d")
		w2=$(mstime $cmd "$d")
		printf '  %-12s %-5s cold %6s ms  warm %6s ms, %6s ms  (%s entries)\n' "$mode" "$cmd" \
			"$c" "$w1" "$w2" "$(ls "$d" | wc -l)"
	done
done
