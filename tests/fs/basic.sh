#!/bin/bash
# tests/fs/basic.sh - one etcfs mount on a 3-member cluster, exercised with
# real tools: the key <-> path mapping, attributes, buffered one-put writes,
# O_TRUNC/O_APPEND/offsets/truncate/EFBIG, O_EXCL, mkdir/rmdir/rename,
# escaping, xattrs and TTL, and editors (vim ex mode, sed -i, cp, mv, rsync,
# tar x, install -m, python temp+rename) leaving no junk keys.
source "$(dirname "$0")/fslib.bash"

cluster_start 3
fs_mount A 1
A=$T_DIR/A

# ---- mapping and attributes ----
echo hello >"$A/greeting"
expect_eq "write lands as key" "$(kv_get greeting)" "hello"
ctl put "${PREFIX}x/y/z" deep >/dev/null
expect_eq "nested key is a nested file" "$(cat "$A/x/y/z")" "deep"
check "implied directory" test -d "$A/x/y"
expect_eq "size is the value length" "$(stat -c %s "$A/x/y/z")" 4
expect_eq "nlink of a file" "$(stat -c %h "$A/greeting")" 1
ino1=$(stat -c %i "$A/greeting")
ctl put "${PREFIX}greeting" "updated elsewhere" >/dev/null
ino2=$(stat -c %i "$A/greeting")
expect_eq "inode number survives updates" "$ino2" "$ino1"
expect_eq "new value read after remote update" "$(cat "$A/greeting")" "updated elsewhere"
now=$(date +%s)
mt=$(stat -c %Y "$A/greeting")
check "mtime is the time of the mod revision" test $((now - mt)) -le 5 -a $((now - mt)) -ge -5
expect_eq "listing shows next components only" "$(ls "$A" | tr '\n' ' ')" "greeting x "

# ---- writes: one put per close ----
rev0=$(kv_rev greeting)
python3 - "$A/greeting" <<'EOF'
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_TRUNC)
for i in range(50):
    os.write(fd, b"chunk%02d\n" % i)
os.close(fd)
EOF
rev1=$(kv_rev greeting)
expect_eq "50 writes then close are one put" "$((rev1 - rev0))" 1
expect_eq "value after many writes" "$(kv_get greeting | wc -l)" 50

: >"$A/greeting"
wait_for 10 "empty value stored" bash -c "[ \"\$($ETCFSCTL --endpoints $(endpoints) get -w json ${PREFIX}greeting | python3 -c 'import json,sys; print(len(json.load(sys.stdin)[\"kvs\"][0].get(\"value\",\"\")))')\" = 0 ]"
check "O_TRUNC with no write stores an empty value" kv_exists greeting
expect_eq "empty file size" "$(stat -c %s "$A/greeting")" 0

echo one >"$A/app"
echo two >>"$A/app"
expect_eq "O_APPEND appends" "$(kv_get app | tr '\n' ,)" "one,two,"
printf 'XY' | dd of="$A/app" bs=1 seek=1 conv=notrunc status=none
expect_eq "write at an offset" "$(kv_get app | head -1)" "oXY"
truncate -s 2 "$A/app"
expect_eq "truncate(1)" "$(kv_get app)" "oX"
head -c 2000000 /dev/zero >"$A/big" 2>/dev/null
rc=$?
check "value over the size limit fails at write/close (EFBIG)" test "$rc" != 0
check "no partial value stored for the oversized file" bash -c "! $ETCFSCTL --endpoints $(endpoints) get --keys-only ${PREFIX}big | grep -q big"
rm -f "$A/big" 2>/dev/null

# ---- O_EXCL / noclobber ----
echo first >"$A/lock"
( set -o noclobber; echo second >"$A/lock" ) 2>/dev/null
check "noclobber refuses an existing file" test $? != 0
expect_eq "noclobber left the value alone" "$(kv_get lock)" "first"
( set -o noclobber; echo mine >"$A/newlock" ) 2>/dev/null
check "noclobber creates a new file" test $? = 0
expect_eq "O_EXCL file value" "$(kv_get newlock)" "mine"

# ---- optimistic concurrency ----
echo v1 >"$A/occ"
setfattr -n user.etcfs.occ -v 1 "$A/occ"
res=$(python3 - "$A/occ" "$ETCFSCTL" "$(endpoints)" "${PREFIX}occ" <<'EOF'
import errno, os, subprocess, sys
path, ctl, eps, key = sys.argv[1:]
fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
# (a child closing its copy of fd flushes it: change the key before writing)
subprocess.run([ctl, "--endpoints", eps, "put", key, "theirs"], check=True, stdout=subprocess.DEVNULL)
os.write(fd, b"mine\n")
try:
    os.close(fd)
    print("closed")
except OSError as e:
    print(errno.errorcode[e.errno])
EOF
)
expect_eq "user.etcfs.occ: close fails with ESTALE when the key changed since open" "$res" "ESTALE"
expect_eq "... and the other writer's value is kept" "$(kv_get occ)" "theirs"
echo v2 >"$A/occ"
expect_eq "occ close succeeds when the key did not change" "$(kv_get occ)" "v2"

# ---- directories ----
mkdir "$A/emptydir"
check "mkdir persists as a marker key" kv_exists emptydir/
expect_eq "marker is invisible in listings" "$(ls -A "$A/emptydir" | wc -l)" 0
mkdir "$A/full"
echo f >"$A/full/f"
rmdir "$A/full" 2>/dev/null
check "rmdir of a non-empty directory fails" test $? != 0
msg=$(rmdir "$A/full" 2>&1)
check "... with ENOTEMPTY" grep -q "not empty" <<<"$msg"
rmdir "$A/emptydir"
check "rmdir of an empty directory" bash -c "! $ETCFSCTL --endpoints $(endpoints) get --keys-only ${PREFIX}emptydir/ | grep -q emptydir"
rm "$A/full/f"
check "unlink deletes the key" bash -c "! $ETCFSCTL --endpoints $(endpoints) get --keys-only ${PREFIX}full/f | grep -q full"

echo moveme >"$A/src"
r0=$(cluster_rev)
mv "$A/src" "$A/dst"
r1=$(cluster_rev)
expect_eq "rename is one txn" "$((r1 - r0))" 1
expect_eq "renamed value" "$(kv_get dst)" "moveme"
check "rename removed the source" bash -c "! $ETCFSCTL --endpoints $(endpoints) get --keys-only ${PREFIX}src | grep -q src"
mkdir -p "$A/tree/sub"
echo 1 >"$A/tree/a"
echo 2 >"$A/tree/sub/b"
r0=$(cluster_rev)
mv "$A/tree" "$A/tree2"
r1=$(cluster_rev)
expect_eq "directory rename is one txn" "$((r1 - r0))" 1
expect_eq "directory rename moved every key" "$(kv_keys | grep '^tree' | sort | tr '\n' ' ')" "tree2/ tree2/a tree2/sub/ tree2/sub/b "
expect_eq "files readable after directory rename" "$(cat "$A/tree2/sub/b")" 2

# ---- escaping ----
ctl put "${PREFIX}esc/k" file-k >/dev/null
ctl put "${PREFIX}esc/k/sub" sub >/dev/null
ctl put "${PREFIX}esc/a//b" emptyseg >/dev/null
ctl put "${PREFIX}esc/." dot >/dev/null
ctl put "${PREFIX}esc/.." dotdot >/dev/null
ctl put "${PREFIX}esc/%x" pct >/dev/null
long=$(printf 'L%.0s' $(seq 1 300))
ctl put "${PREFIX}esc/$long" long >/dev/null
expect_eq "key that is also a prefix: file as %=name" "$(cat "$A/esc/%=k")" "file-k"
expect_eq "... and the directory as name" "$(cat "$A/esc/k/sub")" "sub"
expect_eq "empty segment as %" "$(cat "$A/esc/a/%/b")" "emptyseg"
expect_eq "key '.' as %." "$(cat "$A/esc/%.")" "dot"
expect_eq "key '..' as %.." "$(cat "$A/esc/%..")" "dotdot"
expect_eq "leading % as %%25" "$(cat "$A/esc/%%25x")" "pct"
expect_eq "segment over NAME_MAX split by %+ chunk" "$(cat "$A"/esc/%+L*/L*)" "long"
expect_eq "escaped names listed" "$(ls -A "$A/esc" | grep -c '^%')" 5
echo viaesc >"$A/esc/%%25new"
expect_eq "creating through an escaped name" "$(kv_get esc/%new)" "viaesc"

# ---- xattrs ----
echo x >"$A/xa"
xr=$(getfattr --only-values -n user.etcfs.revision "$A/xa" 2>/dev/null)
expect_eq "user.etcfs.revision is the mod revision" "$xr" "$(kv_rev xa)"
check "getfattr -d lists the etcfs attributes" bash -c "getfattr -d '$A/xa' | grep -q user.etcfs.create_revision"
expect_eq "user.etcfs.version" "$(getfattr --only-values -n user.etcfs.version "$A/xa")" 1
check "user.etcfs.cluster_revision on the root" test "$(getfattr --only-values -n user.etcfs.cluster_revision "$A")" -ge "$xr"
lease=$(ctl lease grant 60 | awk '{print $2}')
setfattr -n user.etcfs.lease -v "$lease" "$A/xa"
expect_eq "user.etcfs.lease attaches a lease" "$(getfattr --only-values -n user.etcfs.lease "$A/xa")" "$(printf '%x' $((16#$lease)))"
expect_eq "value kept when attaching a lease" "$(kv_get xa)" "x"
setfattr -n user.etcfs.lease -v 0 "$A/xa"
expect_eq "lease 0 detaches" "$(getfattr --only-values -n user.etcfs.lease "$A/xa")" 0
setfattr -n user.other -v 1 "$A/xa" 2>/dev/null
check "other user.* names are refused" test $? != 0
out=$(setfattr -n user.etcfs.revision -v 1 "$A/xa" 2>&1)
check "user.etcfs.revision is read-only: ENOTSUP ($out)" grep -q "Operation not supported" <<<"$out"
echo ephemeral >"$A/ttl"
setfattr -n user.etcfs.ttl -v 2 "$A/ttl"
check "ttl file exists first" test -f "$A/ttl"
wait_for 15 "ttl file vanishes" bash -c "! test -e '$A/ttl'"
check "file with a TTL disappears" bash -c "! test -e '$A/ttl'"

# ---- editors and tools ----
mkdir "$A/ed"
printf 'line1\nline2\n' >"$A/ed/conf"
before=$(kv_keys | sort)
vim -u NONE -i NONE -N -e -s -c '%s/line1/LINE1/' -c 'wq' "$A/ed/conf" </dev/null
expect_eq "vim (ex mode) edit" "$(kv_get ed/conf | head -1)" "LINE1"
sed -i 's/line2/LINE2/' "$A/ed/conf"
expect_eq "sed -i" "$(kv_get ed/conf | tail -1)" "LINE2"
expect_eq "editors leave no temporary keys" "$(kv_keys | sort)" "$before"
cp "$A/ed/conf" "$A/ed/copy"
expect_eq "cp" "$(kv_get ed/copy | head -1)" "LINE1"
mv "$A/ed/copy" "$A/ed/moved"
expect_eq "mv" "$(kv_get ed/moved | tail -1)" "LINE2"
src=$T_DIR/src
mkdir -p "$src/d"
echo r1 >"$src/r1"
echo r2 >"$src/d/r2"
rsync -a "$src/" "$A/rs/" 2>"$T_DIR/rsync.err"
check "rsync -a" test "$(kv_get rs/d/r2)" = r2
tar -C "$src" -cf "$T_DIR/t.tar" .
mkdir "$A/tx"
tar -C "$A/tx" -xf "$T_DIR/t.tar" 2>"$T_DIR/tar.err"
expect_eq "tar x" "$(kv_get tx/r1)" "r1"
install -m 600 "$src/r1" "$A/inst"
expect_eq "install -m" "$(kv_get inst)" "r1"
python3 - "$A/ed" <<'EOF'
import os, sys, tempfile
d = sys.argv[1]
fd, tmp = tempfile.mkstemp(dir=d, prefix=".conf.")
os.write(fd, b"atomic\n")
os.fsync(fd)
os.close(fd)
os.rename(tmp, os.path.join(d, "conf"))
EOF
expect_eq "temp file + rename over the target" "$(kv_get ed/conf)" "atomic"
expect_eq "no junk keys after tools" "$(kv_keys | grep -c -E '(~|\.swp|4913|/sed|\.conf\.)')" 0

# ---- -o occ ----
fs_mount O 3 -o occ
echo base >"$T_DIR/O/occ2"
res=$(python3 - "$T_DIR/O/occ2" "$ETCFSCTL" "$(endpoints)" "${PREFIX}occ2" <<'EOF'
import errno, os, subprocess, sys
path, ctl, eps, key = sys.argv[1:]
fd = os.open(path, os.O_WRONLY | os.O_APPEND)
subprocess.run([ctl, "--endpoints", eps, "put", key, "changed"], check=True, stdout=subprocess.DEVNULL)
os.write(fd, b"more\n")
try:
    os.fsync(fd)
    print("synced")
except OSError as e:
    print(errno.errorcode[e.errno])
EOF
)
expect_eq "-o occ: fsync fails with ESTALE when the key changed since open" "$res" "ESTALE"
expect_eq "... nothing of the stale writer stored" "$(kv_get occ2)" "changed"
fusermount3 -u "$T_DIR/O"

# ---- read-only mount and mount(8) ----
fs_mount R 2 -o ro
echo nope >"$T_DIR/R/greeting" 2>/dev/null
check "ro mount refuses writes" test $? != 0
expect_eq "ro mount reads" "$(cat "$T_DIR/R/dst")" "moveme"
fusermount3 -u "$T_DIR/R"
check "fusermount3 -u unmounts" bash -c "! mountpoint -q '$T_DIR/R'"

helper=""
if [ ! -e /sbin/mount.etcfs ] && [ -w /sbin ]; then
	ln -s "$ETCFS" /sbin/mount.etcfs && helper=/sbin/mount.etcfs
	# removed even if the test dies below (tests/fs/mount_helper.sh covers
	# mount(8) without touching /sbin)
	trap '[ -n "$helper" ] && rm -f "$helper"; t_cleanup' EXIT
fi
if [ -e /sbin/mount.etcfs ]; then
	mkdir -p "$T_DIR/M"
	T_MOUNTS+=("$T_DIR/M")
	mount -t etcfs "tcp://127.0.0.1:${M_CPORT[3]}" "$T_DIR/M" -o "prefix=$PREFIX,allow_other"
	expect_eq "mount -t etcfs" "$(cat "$T_DIR/M/dst" 2>/dev/null)" "moveme"
	umount "$T_DIR/M"
	check "umount" bash -c "! mountpoint -q '$T_DIR/M'"
fi
[ -n "$helper" ] && rm -f "$helper"

t_finish
