#!/bin/bash
# tests/fs/cached.sh - `-o consistency=cached`: reading an unchanged file
# asks the cluster nothing and reuses the kernel page cache, yet a change
# made elsewhere (etcfsctl through another member) is seen through the mount
# within a deadline, with the new length (longer and shorter), and still
# produces inotify events; a write through the mount is read back at once.
# Also: a linearizable mount answers a lookup of a plain file with one
# cluster request.  Behaviour, not timings: the counters come from -o metrics.
source "$(dirname "$0")/fslib.bash"

command -v curl >/dev/null || { echo "FAIL curl is required"; exit 1; }

cluster_start 3
CPORT=$(free_port)
LPORT=$(free_port)
fs_mount C 1 -o "cached,metrics=127.0.0.1:$CPORT"
fs_mount L 1 -o "metrics=127.0.0.1:$LPORT"
C=$T_DIR/C
L=$T_DIR/L
wait_for 10 "metrics of C" curl -sf --max-time 2 -o /dev/null "http://127.0.0.1:$CPORT/metrics"
wait_for 10 "metrics of L" curl -sf --max-time 2 -o /dev/null "http://127.0.0.1:$LPORT/metrics"

# value PORT SERIES: one sample of a mount's /metrics (0 if absent)
value() {
	curl -sS --max-time 10 "http://127.0.0.1:$1/metrics" |
		awk -v s="$2" '$1 == s { print $2; found = 1 } END { if (!found) print 0 }'
}
member2() { ctl_on 2 "$@"; }
reads() { [ "$(cat "$1" 2>/dev/null)" = "$2" ]; } # reads FILE VALUE

member2 put "${PREFIX}d/conf" "first value" >/dev/null
wait_for 10 "conf appears on C" test -f "$C/d/conf"
expect_eq "cached mount reads the value" "$(cat "$C/d/conf")" "first value"

# ---- an unchanged file: no fetch, no READ (page cache kept) ----
cat "$C/d/conf" >/dev/null
miss0=$(value "$CPORT" etcfs_cache_misses_total)
req0=$(value "$CPORT" etcfs_cluster_requests_total)
read0=$(value "$CPORT" 'etcfs_fuse_requests_total{op="read"}')
open0=$(value "$CPORT" 'etcfs_fuse_requests_total{op="open"}')
ok=1
for i in $(seq 1 20); do
	[ "$(cat "$C/d/conf")" = "first value" ] || ok=0
done
check "20 reads of an unchanged file return its value" test $ok = 1
expect_eq "... with no fetch from the cluster" "$(value "$CPORT" etcfs_cache_misses_total)" "$miss0"
expect_eq "... and no request at all" "$(value "$CPORT" etcfs_cluster_requests_total)" "$req0"
expect_eq "... and no READ request (kernel page cache reused)" \
	"$(value "$CPORT" 'etcfs_fuse_requests_total{op="read"}')" "$read0"
check "... while every open still reached the mount" \
	test "$(value "$CPORT" 'etcfs_fuse_requests_total{op="open"}')" -ge $((open0 + 20))

# ---- remote changes are seen, with their length, and make events ----
inotifywait -m -q --format '%e %f' "$C/d" >"$T_DIR/ev" 2>/dev/null &
T_PIDS+=("$!")
sleep 1 # inotifywait has no "ready" signal on stdout in -q mode
long="a much longer second value, longer than the first one by far"
member2 put "${PREFIX}d/conf" "$long" >/dev/null
check "C reads the remote change" wait_for 10 "C reads the remote change" reads "$C/d/conf" "$long"
expect_eq "remote longer value read whole" "$(cat "$C/d/conf")" "$long"
expect_eq "stat size follows the remote change" "$(stat -c %s "$C/d/conf")" "${#long}"
check "inotify event of the remote change" wait_for 10 "inotify event of the remote change" grep -q '^CLOSE_WRITE,CLOSE conf$' "$T_DIR/ev"
member2 put "${PREFIX}d/conf" "short" >/dev/null
check "C reads the shorter value" wait_for 10 "C reads the shorter value" reads "$C/d/conf" short
expect_eq "remote shorter value has no stale tail" "$(cat "$C/d/conf" | od -c | head -1)" \
	"$(printf short | od -c | head -1)"
expect_eq "stat size of the shorter value" "$(stat -c %s "$C/d/conf")" 5
# the next opens are hits again: the watch brought the value
cat "$C/d/conf" >/dev/null
miss1=$(value "$CPORT" etcfs_cache_misses_total)
for i in 1 2 3 4 5; do cat "$C/d/conf" >/dev/null; done
expect_eq "after a remote change, reads need no fetch" \
	"$(value "$CPORT" etcfs_cache_misses_total)" "$miss1"

# ---- a file read in a loop while it changes remotely: never torn ----
python3 - "$C/d/conf" >"$T_DIR/torn" 2>&1 <<'EOF' &
import sys, time
ok = {b"short"} | {(b"%d" % i) * 200 for i in range(10)}
bad = 0
end = time.time() + 4
while time.time() < end:
    with open(sys.argv[1], "rb") as f:
        v = f.read()
    if v not in ok:
        bad += 1
print(bad)
EOF
reader=$!
for i in $(seq 0 9); do
	member2 put "${PREFIX}d/conf" "$(printf "$i%.0s" $(seq 1 200))" >/dev/null
done
wait $reader
expect_eq "reads during remote changes return one whole revision each" "$(cat "$T_DIR/torn")" 0

# ---- a local write is read back at once, with its size ----
echo "written here" >"$C/d/conf"
expect_eq "write through the cached mount read back" "$(cat "$C/d/conf")" "written here"
expect_eq "... its size" "$(stat -c %s "$C/d/conf")" 13
expect_eq "... and stored" "$(kv_get d/conf)" "written here"
echo "written on L" >"$L/d/conf"
check "C reads what L wrote" wait_for 10 "C reads what L wrote" reads "$C/d/conf" "written on L"

# ---- linearizable: a lookup is one request, an open is one request ----
member2 put "${PREFIX}d/fresh" v >/dev/null
wait_for 10 "fresh on L" test -f "$L/d/fresh"
sleep 1.5 # let L's name cache of d/ entries expire (1 s)
req0=$(value "$LPORT" etcfs_cluster_requests_total)
lk0=$(value "$LPORT" 'etcfs_fuse_requests_total{op="lookup"}')
expect_eq "linearizable read of a file" "$(cat "$L/d/fresh")" v
lk1=$(value "$LPORT" 'etcfs_fuse_requests_total{op="lookup"}')
req1=$(value "$LPORT" etcfs_cluster_requests_total)
expect_eq "... its lookups and open cost one request each" "$((req1 - req0))" "$((lk1 - lk0 + 1))"
expect_eq "linearizable read again" "$(cat "$L/d/fresh")" v
req2=$(value "$LPORT" etcfs_cluster_requests_total)
lk2=$(value "$LPORT" 'etcfs_fuse_requests_total{op="lookup"}')
expect_eq "... the open is one request (attributes come from the watch)" \
	"$((req2 - req1))" "$((lk2 - lk1 + 1))"
# (a lookup of a name that is both a file and a directory still works)
member2 put "${PREFIX}d/both" file >/dev/null
member2 put "${PREFIX}d/both/x" inner >/dev/null
member2 put "${PREFIX}d/both.txt" sibling >/dev/null
wait_for 10 "both/x on L" reads "$L/d/both/x" inner
check "name of a key that is also a directory lists as a directory" test -d "$L/d/both"
expect_eq "its file is reached by %=" "$(cat "$L/d/%=both")" file
expect_eq "a longer sibling name" "$(cat "$L/d/both.txt")" sibling
check "a missing name is ENOENT" test ! -e "$L/d/nothing"
member2 put "${PREFIX}d/only.a" a >/dev/null
check "a name with only longer siblings is ENOENT" test ! -e "$L/d/only"

t_finish
