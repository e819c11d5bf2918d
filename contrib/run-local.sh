#!/bin/bash
# contrib/run-local.sh - what `make run` does: a 3-member etcfs cluster on
# loopback (data under ./run/), mounted at ./mnt, until Ctrl-C.
#   member  native client        HTTP/JSON gateway       peer
#   m1      tcp://127.0.0.1:2379  http://127.0.0.1:2378  tcp://127.0.0.1:2380
#   m2      tcp://127.0.0.1:22379 http://127.0.0.1:22378 tcp://127.0.0.1:22380
#   m3      tcp://127.0.0.1:32379 http://127.0.0.1:32378 tcp://127.0.0.1:32380
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=$ROOT/bin
RUN=$ROOT/run
MNT=$ROOT/mnt
mkdir -p "$RUN" "$MNT"
PIDS=()
cleanup() {
	echo
	echo "stopping..."
	if mountpoint -q "$MNT" 2>/dev/null; then fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -u -z "$MNT"; fi
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
	wait 2>/dev/null
	echo "stopped (data kept in $RUN; rm -rf run to start afresh)"
}
trap cleanup EXIT
trap 'exit 0' INT TERM
if mountpoint -q "$MNT" 2>/dev/null; then fusermount3 -u -z "$MNT" 2>/dev/null; fi
CLUSTER="m1=tcp://127.0.0.1:2380,m2=tcp://127.0.0.1:22380,m3=tcp://127.0.0.1:32380"
for i in 1 2 3; do
	case $i in 1) P=2379 ;; 2) P=22379 ;; 3) P=32379 ;; esac
	"$BIN/etcfsd" --name "m$i" --data-dir "$RUN/m$i" \
		--listen-client-urls "tcp://127.0.0.1:$P" --advertise-client-urls "tcp://127.0.0.1:$P" \
		--listen-http-urls "http://127.0.0.1:$((P - 1))" \
		--listen-peer-urls "tcp://127.0.0.1:$((P + 1))" --initial-advertise-peer-urls "tcp://127.0.0.1:$((P + 1))" \
		--initial-cluster "$CLUSTER" --initial-cluster-token etcfs-local --log-level warn \
		>>"$RUN/m$i.log" 2>&1 &
	PIDS+=("$!")
done
EPS=tcp://127.0.0.1:2379,tcp://127.0.0.1:22379,tcp://127.0.0.1:32379
echo -n "waiting for the cluster"
for _ in $(seq 1 300); do
	"$BIN/etcfsctl" --endpoints "$EPS" --command-timeout 1s endpoint health >/dev/null 2>&1 && break
	echo -n .
	sleep 0.2
done
echo
"$BIN/etcfsctl" --endpoints "$EPS" endpoint status --cluster -w table 2>/dev/null || true
if [ -x "$BIN/etcfs" ]; then
	"$BIN/etcfs" --endpoints "$EPS" "$MNT" -o fsname=etcfs >>"$RUN/mount.log" 2>&1 &
	for _ in $(seq 1 100); do mountpoint -q "$MNT" && break; sleep 0.1; done
fi
cat <<TIPS

etcfs is running: 3 members, logs in run/m*.log, mounted at ./mnt (log: run/mount.log).
Try, in another shell:
  echo hello > mnt/greeting && cat mnt/greeting
  inotifywait -m mnt &  bin/etcfsctl --endpoints $EPS put greeting again
  getfattr -d mnt/greeting
  bin/etcfsctl --endpoints $EPS get --prefix ''
  curl -s -X POST http://127.0.0.1:2378/v3/kv/range -d '{"key":"Z3JlZXRpbmc="}'
Ctrl-C stops everything.
TIPS
wait "${PIDS[0]}"
