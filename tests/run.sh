#!/bin/bash
# tests/run.sh BIN_DIR - runs every test of etcfs and ends with "N passed, N failed".
#   unit tests:  BIN_DIR/tests/test_*   (one "PASS name"/"FAIL name" line per test)
#   simulation:  BIN_DIR/tests/raft_sim (seeded whole-cluster Raft simulation)
#   end to end:  tests/e2e/*.sh and tests/fs/*.sh (real etcfsd processes, real mounts)
# Every test prints PASS/FAIL lines (SKIP with a reason for one that cannot run,
# counted as skipped in the summary); a test program that exits non-zero without
# printing FAIL counts as one failure (a crash is never silent).
# ONLY=pattern runs only the tests whose file name matches.
set -u
BIN=${1:-bin}
BIN=$(cd "$BIN" && pwd)
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export ETCFS_BIN="$BIN" ETCFS_ROOT="$ROOT"
LOGDIR=${TEST_LOGDIR:-$(mktemp -d /tmp/etcfs-test.XXXXXX)}
pass=0
fail=0
skip=0
failed_names=()

run_one() { # name command...
	local name=$1; shift
	local log="$LOGDIR/$(basename "$name").log"
	local start=$SECONDS
	"$@" >"$log" 2>&1
	local rc=$?
	local p f
	p=$(grep -c '^PASS ' "$log")
	f=$(grep -c '^FAIL ' "$log")
	s=$(grep -c '^SKIP ' "$log")
	grep -E '^(PASS|FAIL|SKIP) ' "$log" | sed "s|^|[$(basename "$name")] |"
	if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
		echo "FAIL $(basename "$name") exited with status $rc"
		f=1
	fi
	if [ "$f" != 0 ]; then
		failed_names+=("$name")
		echo "---- log of $(basename "$name") (last 60 lines) ----"
		tail -n 60 "$log"
		echo "----"
	fi
	echo "  ($(basename "$name"): $((SECONDS - start))s)"
	pass=$((pass + p))
	fail=$((fail + f))
	skip=$((skip + s))
}

match() { [ -z "${ONLY:-}" ] || [[ "$1" == *${ONLY}* ]]; }

for t in "$BIN"/tests/test_*; do
	[ -x "$t" ] || continue
	match "$t" && run_one "$t" "$t"
done
if [ -x "$BIN/tests/raft_sim" ] && match raft_sim; then
	run_one raft_sim "$BIN/tests/raft_sim" --seeds "${SIM_SEEDS:-2000}"
fi
for t in "$ROOT"/tests/lint/*.sh "$ROOT"/tests/e2e/*.sh "$ROOT"/tests/fs/*.sh; do
	[ -f "$t" ] || continue
	case "$t" in */lib.sh) continue ;; esac
	match "$t" && run_one "$t" bash "$t"
done
echo "logs: $LOGDIR"
if [ ${#failed_names[@]} -gt 0 ]; then echo "failed: ${failed_names[*]}"; fi
if [ "$skip" = 0 ]; then
	echo "$pass passed, $fail failed"
else
	echo "$pass passed, $fail failed, $skip skipped"
fi
[ "$fail" = 0 ]
