#!/bin/bash
# tests/fs/metrics.sh - `etcfs -o metrics=127.0.0.1:PORT`: the mount serves
# its own counters at GET /metrics in the Prometheus text format.  Checks
# that file operations move the per-op counters, a put made by etcfsctl
# moves the reflected-events counter, the exposition is well formed (one
# HELP/TYPE per family, valid sample lines), other paths get 404, a stalled
# or oversized request does not wedge the listener, and unmount stops it.
source "$(dirname "$0")/fslib.bash"

command -v curl >/dev/null || { echo "FAIL curl is required"; exit 1; }

cluster_start 1
MPORT=$(free_port)
URL="http://127.0.0.1:$MPORT/metrics"
fs_mount A 1 -o "metrics=127.0.0.1:$MPORT"
A=$T_DIR/A

scrape() { curl -sS --max-time 10 "$URL"; }
# value NAME [LABELS]: the sample NAME{LABELS} of the last scrape ($T_DIR/s), 0 if absent
value() {
	local series=$1${2:+\{$2\}}
	awk -v s="$series" '$1 == s { print $2; found = 1 } END { if (!found) print 0 }' "$T_DIR/s"
}
# sum of every series of a family
family_sum() { awk -v n="$1" '$1 == n || index($1, n "{") == 1 { t += $2 } END { print t + 0 }' "$T_DIR/s"; }

wait_for 10 "metrics listener answers" curl -sf --max-time 2 -o /dev/null "$URL"
scrape >"$T_DIR/s"
check "GET /metrics answers" test -s "$T_DIR/s"
lookup0=$(value etcfs_fuse_requests_total 'op="lookup"')
write0=$(value etcfs_fuse_requests_total 'op="write"')
read0=$(value etcfs_fuse_requests_total 'op="read"')
readdir0=$(value etcfs_fuse_requests_total 'op="readdir"')
commits0=$(value etcfs_puts_committed_total)
enoent0=$(value etcfs_fuse_errors_total 'class="enoent"')

# ---- file operations move the op counters ----
echo hello >"$A/greeting"
expect_eq "write through the mount" "$(cat "$A/greeting")" "hello"
ls "$A" >/dev/null
cat "$A/no-such-file" 2>/dev/null
scrape >"$T_DIR/s"
check "lookup counter grew" test "$(value etcfs_fuse_requests_total 'op="lookup"')" -gt "$lookup0"
check "write counter grew" test "$(value etcfs_fuse_requests_total 'op="write"')" -gt "$write0"
check "read counter grew" test "$(value etcfs_fuse_requests_total 'op="read"')" -gt "$read0"
check "readdir counter grew" test "$(value etcfs_fuse_requests_total 'op="readdir"')" -gt "$readdir0"
check "open and release counted" test "$(value etcfs_fuse_requests_total 'op="open"')" -gt 0 -a \
	"$(value etcfs_fuse_requests_total 'op="release"')" -gt 0
check "close committed a put" test "$(value etcfs_puts_committed_total)" -gt "$commits0"
check "ENOENT counted by class" test "$(value etcfs_fuse_errors_total 'class="enoent"')" -gt "$enoent0"
check "cache hits+misses counted" test $(($(value etcfs_cache_hits_total) + $(value etcfs_cache_misses_total))) -gt 0
check "failover counter exposed" grep -q '^etcfs_client_failovers_total ' "$T_DIR/s"
check "watch-up gauge is 1" test "$(value etcfs_watch_up)" = 1

# ---- exposition format ----
check "HELP line for the op counter" grep -q '^# HELP etcfs_fuse_requests_total ' "$T_DIR/s"
check "TYPE counter line for the op counter" grep -qx '# TYPE etcfs_fuse_requests_total counter' "$T_DIR/s"
check "text format is valid" python3 - "$T_DIR/s" <<'EOF'
import re, sys
sample = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*",?)*\})? (-?[0-9.eE+-]+|[+-]Inf|NaN)$')
typed, helped, seen, cur = {}, set(), set(), None
for line in open(sys.argv[1]).read().splitlines():
    if line.startswith('# HELP '):
        name = line.split(' ')[2]
        assert name not in helped, 'two HELP lines for ' + name
        helped.add(name)
    elif line.startswith('# TYPE '):
        _, _, name, kind = line.split(' ')
        assert name not in typed, 'two TYPE lines for ' + name
        assert kind in ('counter', 'gauge', 'histogram', 'summary', 'untyped'), line
        typed[name] = kind
        cur = name
    elif line.startswith('#') or not line:
        continue
    else:
        m = sample.match(line)
        assert m, 'bad sample line: ' + line
        name = m.group(1)
        base = re.sub(r'_(bucket|sum|count)$', '', name) if name not in typed else name
        assert base == cur, 'sample %s outside its family block' % name
        seen.add(base)
assert seen and set(typed) == helped, 'families without HELP'
for name, kind in typed.items():
    if kind == 'counter':
        assert name.endswith('_total'), 'counter without _total: ' + name
EOF
ctype=$(curl -sS --max-time 10 -o /dev/null -w '%{content_type}' "$URL")
expect_eq "content type names format 0.0.4" "$ctype" "text/plain; version=0.0.4; charset=utf-8"

# ---- a remote put is reflected and counted ----
refl0=$(family_sum etcfs_inotify_events_reflected_total)
create0=$(value etcfs_inotify_events_reflected_total 'kind="create"')
ctl put "${PREFIX}remote" "from etcfsctl" >/dev/null
wait_for 15 "remote put visible in the mount" test -f "$A/remote"
reflected_grew() {
	scrape >"$T_DIR/s" && test "$(family_sum etcfs_inotify_events_reflected_total)" -gt "$refl0"
}
check "remote put increments the reflected-events counter" wait_for 15 "reflected counter" reflected_grew
scrape >"$T_DIR/s"
check "reflected new key counted as kind=create" \
	test "$(value etcfs_inotify_events_reflected_total 'kind="create"')" -gt "$create0"
expect_eq "remote value readable" "$(cat "$A/remote")" "from etcfsctl"

# ---- other paths, methods, bad clients ----
expect_eq "unknown path is 404" "$(curl -s --max-time 10 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$MPORT/nope")" 404
expect_eq "root path is 404" "$(curl -s --max-time 10 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$MPORT/")" 404
expect_eq "POST is 405" "$(curl -s --max-time 10 -o /dev/null -w '%{http_code}' -X POST "$URL")" 405
expect_eq "query string ignored" "$(curl -s --max-time 10 -o /dev/null -w '%{http_code}' "$URL?x=1")" 200
big=$(python3 - "$MPORT" <<'EOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
try:
    s.sendall(b"GET /metrics HTTP/1.1\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n")
except OSError:
    pass
try:
    print(s.recv(100).split(b"\r\n")[0].decode())
except OSError as e:
    print("error", e)
EOF
)
expect_eq "oversized header refused with 431" "$big" "HTTP/1.1 431 Request Header Fields Too Large"
# a client that connects and sends nothing must not block later scrapes
exec 5<>"/dev/tcp/127.0.0.1/$MPORT"
start=$SECONDS
code=$(curl -s --max-time 15 -o /dev/null -w '%{http_code}' "$URL")
expect_eq "scrape works while another client stalls" "$code" 200
check "stalled client dropped within the read timeout" test $((SECONDS - start)) -le 6
exec 5<&- 5>&-

# ---- unmount stops the listener ----
fusermount3 -u "$A"
check "unmounted" bash -c "! mountpoint -q '$A'"
gone() { ! kill -0 "$PID_A" 2>/dev/null; }
check "etcfs exits after unmount" wait_for 15 "etcfs exit" gone
check "listener closed after unmount" bash -c "! curl -s --max-time 2 -o /dev/null '$URL'"

# ---- a port in use fails the mount visibly ----
mkdir -p "$T_DIR/B"
python3 -c '
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(1); time.sleep(30)' "$MPORT" &
T_PIDS+=("$!")
holder=$!
wait_for 10 "port holder listening" bash -c "exec 3<>/dev/tcp/127.0.0.1/$MPORT"
timeout 20 "$ETCFS" --endpoints "$(endpoints)" --prefix "$PREFIX" "$T_DIR/B" -f \
	-o "metrics=127.0.0.1:$MPORT" >"$T_DIR/B.log" 2>&1
rc=$?
check "metrics port in use fails the mount" test "$rc" != 0 -a "$rc" != 124
check "error names the metrics address" grep -q "metrics=127.0.0.1:$MPORT" "$T_DIR/B.log"
check "nothing left mounted" bash -c "! mountpoint -q '$T_DIR/B'"
kill "$holder" 2>/dev/null

t_finish
