#!/bin/bash
# tests/fs/content.sh - no reader anywhere ever sees a value nobody wrote
# (issue 12, item 2), on two mounts of a 3-member cluster with changes made
# from the other mount, from etcfsctl and through the JSON gateway (curl):
#  - cp, install and O_EXCL creates publish ONE put, with the content: a
#    watch on the cluster sees no empty value, inotifywait on the other
#    mount reads the whole content at every event;
#  - O_EXCL has one winner: EEXIST at open when the key exists, at close
#    when someone put it meanwhile (and nothing of the loser is stored);
#  - a failed write (cp / cat > of an oversize value) leaves nothing: no
#    key, no file on either mount;
#  - O_APPEND appends to the value current at close; a partial overwrite
#    of a value that changed since open fails with ESTALE and changes
#    nothing; a whole rewrite (O_TRUNC) wins;
#  - a descriptor opened before a remote put reads the old value or the
#    new one, whole (it read `AA`: the old bytes cut to the new length);
#    tail -F follows a file as on a local disk.
source "$(dirname "$0")/fslib.bash"

cluster_start 3
fs_mount A 1
fs_mount B 2
A=$T_DIR/A
B=$T_DIR/B
b64() { printf '%s' "$1" | base64 -w0; }
absent() { ! kv_exists "$1"; }
# keys of O_EXCL reservations (fs/kv.c: "\0etcfs-excl/" + key), through the gateway
reservations() {
	python3 - "${M_HPORT[1]}" <<'PY'
import base64, json, sys, urllib.request
b = lambda s: base64.b64encode(s).decode()
req = urllib.request.Request("http://127.0.0.1:%s/v3/kv/range" % sys.argv[1],
    data=json.dumps({"key": b(b"\0etcfs-excl/"), "range_end": b(b"\0etcfs-excl0"),
                     "keys_only": True}).encode())
print(len(json.loads(urllib.request.urlopen(req).read()).get("kvs") or []))
PY
}
gw_put() { # gw_put KEY VALUE: a put through member 3's JSON gateway
	curl -sf -X POST "http://127.0.0.1:${M_HPORT[3]}/v3/kv/put" \
		-d "{\"key\":\"$(b64 "$PREFIX$1")\",\"value\":\"$(b64 "$2")\"}" >/dev/null
}
# every PUT value of KEY seen by the cluster watch, one python repr a line
puts_of() {
	python3 - "$T_DIR/watch" "$PREFIX$1" <<'PY'
import base64, json, sys
key = sys.argv[2].encode()
for line in open(sys.argv[1]):
    try:
        d = json.loads(line)
    except ValueError:
        continue
    for e in d.get("Events") or []:
        kv = e["kv"]
        if base64.b64decode(kv["key"]) == key and e.get("type", "PUT") != "DELETE":
            print(repr(base64.b64decode(kv.get("value", ""))))
PY
}

mkdir "$A/c"
wait_for 20 "c on B" test -d "$B/c"
"$ETCFSCTL" --endpoints "$(endpoints)" watch --prefix "$PREFIX" -w json >"$T_DIR/watch" 2>/dev/null &
T_PIDS+=("$!")
# on B: at every event of c/, read the file and log what a reloader would
# load (a process group of its own, so that inotifywait goes with it)
setsid bash -c 'inotifywait -m -q -e create -e close_write -e moved_to --format "%e %f" "$1" 2>/dev/null |
	while read -r ev f; do
		printf "%s %s [%s]\n" "$ev" "$f" "$(cat "$1/$f" 2>&1 | tr "\n" "|")"
	done' reader "$B/c" >"$T_DIR/readsB" &
RPID=$!
trap 'kill -- -$RPID 2>/dev/null; t_cleanup' EXIT
sleep 1 # neither has a ready signal

# ---- cp, install, O_EXCL: one put with the content ----
src=$T_DIR/src
mkdir -p "$src"
printf 'listen 8080\n' >"$src/new.conf"
cp "$src/new.conf" "$A/c/"
expect_eq "cp of a new file: one put, with the content" "$(puts_of c/new.conf)" "b'listen 8080\\n'"
install -m 0644 "$src/new.conf" "$A/c/inst.conf"
expect_eq "install of a new file: one put, with the content" "$(puts_of c/inst.conf)" "b'listen 8080\\n'"
python3 - "$A/c/excl" <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_EXCL)
os.write(fd, b"mine\n")
os.close(fd)
PY
expect_eq "O_CREAT|O_EXCL: one put, with the content" "$(puts_of c/excl)" "b'mine\\n'"
res=$(python3 - "$A/c/excl" <<'PY'
import os, sys
try:
    os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    print("opened")
except OSError as e:
    print(os.strerror(e.errno))
PY
)
expect_eq "O_EXCL on an existing key: EEXIST at open" "$res" "File exists"
# the key is put elsewhere between the O_EXCL open and the close: the loser
# learns it at close, and its content is not stored
# (through the gateway, from this process: a fork would close a copy of the
# descriptor, and every close flushes, as on any FUSE file system)
res=$(python3 - "$A/c/late" "${M_HPORT[3]}" "$PREFIX" <<'PY'
import base64, json, os, sys, urllib.request
path, port, prefix = sys.argv[1:]
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
os.write(fd, b"loser\n")
b = lambda s: base64.b64encode(s.encode()).decode()
req = urllib.request.Request("http://127.0.0.1:%s/v3/kv/put" % port,
    data=json.dumps({"key": b(prefix + "c/late"), "value": b("winner")}).encode())
urllib.request.urlopen(req).read()
try:
    os.close(fd)
    print("closed")
except OSError as e:
    print(os.strerror(e.errno))
PY
)
expect_eq "O_EXCL whose key was put meanwhile: EEXIST at close" "$res" "File exists"
expect_eq "... the winner's value stays" "$(kv_get c/late)" "winner"
wait_for 20 "late on A" bash -c "[ \"\$(cat '$A/c/late' 2>/dev/null)\" = winner ]"
expect_eq "... and the loser's mount reads it" "$(cat "$A/c/late")" "winner"
# O_EXCL from both mounts at once: exactly one open succeeds
res=$(python3 - "$A/c/race" "$B/c/race" <<'PY'
import os, sys, threading
wins = []
def go(p, i):
    try:
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    except OSError:
        return
    os.write(fd, b"racer %d\n" % i)
    try:
        os.close(fd)
        wins.append(i)
    except OSError:
        pass
ts = [threading.Thread(target=go, args=(sys.argv[1 + i % 2], i)) for i in range(8)]
for t in ts: t.start()
for t in ts: t.join()
print(len(wins), wins[0] if wins else -1)
PY
)
expect_eq "O_EXCL racing on two mounts: one winner" "${res% *}" 1
expect_eq "... whose value is stored" "$(kv_get c/race)" "racer ${res#* }"
expect_eq "... in one put" "$(puts_of c/race | wc -l)" 1
expect_eq "no O_EXCL reservation is left in the cluster" "$(reservations)" 0

# ---- a failed write leaves nothing behind ----
head -c 2000000 /dev/zero | tr '\0' x >"$src/big"
check "cp of an oversize file fails" bash -c "! cp '$src/big' '$A/c/big' 2>/dev/null"
check "... no key" absent c/big
check "... no file on the writing mount" bash -c "! test -e '$A/c/big'"
check "... nor listed there" bash -c "! ls '$A/c' | grep -qx big"
check "... no file on the other mount" bash -c "! test -e '$B/c/big'"
check "cat > of an oversize value fails" bash -c "! cat '$src/big' >'$A/c/big2' 2>/dev/null"
check "... no key" absent c/big2
check "... no 0-byte file on the writing mount" bash -c "! test -e '$A/c/big2'"
check "... nor on the other mount" bash -c "! test -e '$B/c/big2'"
expect_eq "the failed writes put nothing" "$(puts_of c/big; puts_of c/big2)" ""

# ---- writes apply to the current value ----
printf 'a\n' >"$A/c/app"
python3 - "$A/c/app" "$PREFIX" "$ETCFSCTL" "$(endpoints)" <<'PY'
import os, subprocess, sys
path, prefix, ctl, eps = sys.argv[1:]
fd = os.open(path, os.O_WRONLY | os.O_APPEND)
subprocess.run([ctl, "--endpoints", eps, "put", prefix + "c/app", "b\n"], check=True,
               stdout=subprocess.DEVNULL)
os.write(fd, b"c\n")
os.close(fd)
PY
expect_eq "O_APPEND appends to the value current at close (put by etcfsctl meanwhile)" \
	"$(kv_get c/app | tr '\n' ,)" "b,c,"
printf 'AAAA\n' >"$A/c/rw"
res=$(python3 - "$A/c/rw" "$B/c/rw" <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
with open(sys.argv[2], "w") as f:  # another mount replaces the value
    f.write("remote\n")
os.pwrite(fd, b"l", 0)  # keeps "AAA\n" of a base that is gone
try:
    os.close(fd)
    print("closed")
except OSError as e:
    print(os.strerror(e.errno))
PY
)
expect_eq "a partial overwrite of a value changed since open: ESTALE at close" "$res" \
	"Stale file handle"
expect_eq "... and nothing changes" "$(kv_get c/rw)" "remote"
res=$(python3 - "$A/c/rw" "${M_HPORT[3]}" "$PREFIX" <<'PY'
import base64, json, os, sys, urllib.request
path, port, prefix = sys.argv[1:]
fd = os.open(path, os.O_RDWR)
b = lambda s: base64.b64encode(s.encode()).decode()
req = urllib.request.Request("http://127.0.0.1:%s/v3/kv/put" % port,
    data=json.dumps({"key": b(prefix + "c/rw"), "value": b("gw\n")}).encode())
urllib.request.urlopen(req).read()
os.ftruncate(fd, 0)
os.write(fd, b"whole\n")
os.close(fd)
print("closed")
PY
)
expect_eq "a whole rewrite after a gateway put: last writer wins" "$res $(kv_get c/rw)" "closed whole"
printf 'one\n' >"$A/c/rw"
(printf 'two\n' >"$A/c/rw") && ok=1 || ok=0
expect_eq "O_TRUNC rewrite is last-writer-wins" "$ok $(kv_get c/rw)" "1 two"

# ---- a descriptor reads whole revisions ----
printf 'AAAAAAAAAA\n' >"$A/c/fd"
wait_for 20 "fd on B" test -f "$B/c/fd"
res=$(python3 - "$A/c/fd" "$B/c/fd" "$PREFIX" "$ETCFSCTL" "$(endpoints)" <<'PY'
import os, subprocess, sys, time
pa, pb, prefix, ctl, eps = sys.argv[1:]
out = []
for path, how in ((pa, "ctl"), (pb, "ctl")):
    subprocess.run([ctl, "--endpoints", eps, "put", prefix + "c/fd", "AAAAAAAAAA\n"], check=True,
                   stdout=subprocess.DEVNULL)
    end = time.time() + 20
    while open(path, "rb").read() != b"AAAAAAAAAA\n" and time.time() < end:
        time.sleep(0.1)
    fd = os.open(path, os.O_RDONLY)
    first = os.pread(fd, 100, 0)
    subprocess.run([ctl, "--endpoints", eps, "put", prefix + "c/fd", "BB"], check=True,
                   stdout=subprocess.DEVNULL)
    end = time.time() + 20
    while open(path, "rb").read() != b"BB" and time.time() < end:
        time.sleep(0.1)
    again = os.pread(fd, 100, 0)
    os.close(fd)
    out.append("%r %r" % (first, again))
print("\n".join(out))
PY
)
for l in 1 2; do
	line=$(sed -n "${l}p" <<<"$res")
	case "$line" in
	"b'AAAAAAAAAA\\n' b'AAAAAAAAAA\\n'" | "b'AAAAAAAAAA\\n' b'BB'") pass "old descriptor after a remote put reads a whole revision ($l): $line" ;;
	*) fail "old descriptor after a remote put reads a whole revision ($l)" "$line" ;;
	esac
done
printf 'one\n' >"$A/c/tail"
wait_for 20 "tail on B" test -f "$B/c/tail"
tail -F -n +1 "$B/c/tail" >"$T_DIR/tail.out" 2>"$T_DIR/tail.err" &
T_PIDS+=("$!")
wait_for 20 "tail printed one" grep -qx one "$T_DIR/tail.out"
printf 'one\ntwo\n' >"$A/c/tail"
wait_for 20 "tail printed two" grep -qx two "$T_DIR/tail.out"
gw_put c/tail $'three\n'
wait_for 20 "tail printed three" grep -qx three "$T_DIR/tail.out"
expect_eq "tail -F follows appends and rewrites (changes from another mount and the gateway)" \
	"$(tr '\n' , <"$T_DIR/tail.out")" "one,two,three,"

# ---- what the other mount's reloader loaded ----
sleep 1
check "B's reader never loaded an empty or partial value" \
	bash -c "! grep -E '\\[\\]|\\[cat:' '$T_DIR/readsB' | grep -vE ' (big|big2) '"
check "B's reader saw cp's file whole" grep -q 'new.conf \[listen 8080|\]' "$T_DIR/readsB"
check "no empty value was ever put by a create" bash -c "! grep -q '\"value\":\"\"' '$T_DIR/watch'"
t_finish
