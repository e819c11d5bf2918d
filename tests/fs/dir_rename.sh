#!/bin/bash
# tests/fs/dir_rename.sh - a directory rename moves every key below it in
# one txn, up to 127 keys (the txn limit of 128 operations minus the delete
# of the old range; a mkdir'ed directory's marker key counts).  Beyond that,
# or when the values do not fit in one request, rename(2) fails with EXDEV
# and moves nothing, and mv(1) falls back to copy and remove.  A directory
# emptied by this mount stays reachable by name until rmdir, so mv's final
# rmdir (and rm -r's) works even after the entry timeout.
source "$(dirname "$0")/fslib.bash"

cluster_start 3
fs_mount A 1
A=$T_DIR/A

# fill DIR N [BYTES]: keys DIR/k000.. (first one via etcfsctl, so DIR has
# no marker key; the rest written through the mount)
fill() {
	ctl put "${PREFIX}$1/k000" v000 >/dev/null
	wait_for 20 "$1 visible" test -d "$A/$1"
	python3 - "$A/$1" "$2" "${3:-0}" <<'EOF'
import os, sys
d, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(1, n):
    with open(os.path.join(d, "k%03d" % i), "wb") as f:
        f.write((b"v%03d" % i) + b"x" * size)
EOF
}
count() { kv_keys | grep -c "^$1/"; }
rename_errno() {
	python3 -c 'import errno, os, sys
try:
    os.rename(sys.argv[1], sys.argv[2]); print("OK")
except OSError as e:
    print(errno.errorcode[e.errno])' "$1" "$2"
}

# ---- at the limit: 127 keys, one txn ----
fill at 127
expect_eq "127 keys in place" "$(count at)" 127
r0=$(cluster_rev)
expect_eq "rename(2) of a directory of 127 keys" "$(rename_errno "$A/at" "$A/at2")" OK
r1=$(cluster_rev)
expect_eq "... is one txn" "$((r1 - r0))" 1
expect_eq "... every key moved" "$(count at2)" 127
expect_eq "... none left" "$(count at)" 0
expect_eq "... values kept" "$(kv_get at2/k126)" "v126"
expect_eq "... readable through the mount" "$(cat "$A/at2/k064")" "v064"

# ---- a mkdir'ed directory: its marker is one of the 127 ----
mkdir "$A/mk"
python3 -c 'import os, sys
for i in range(126):
    open(os.path.join(sys.argv[1], "k%03d" % i), "w").write("m%03d" % i)' "$A/mk"
expect_eq "mkdir + 126 files = 127 keys" "$(count mk)" 127
expect_eq "rename(2) of it" "$(rename_errno "$A/mk" "$A/mk2")" OK
expect_eq "... marker and files moved" "$(count mk2)" 127
echo one-more >"$A/mk2/k126"
expect_eq "with one more file (128 keys) rename(2) fails with EXDEV" "$(rename_errno "$A/mk2" "$A/mk3")" EXDEV
expect_eq "... nothing moved" "$(count mk2) $(count mk3)" "128 0"

# ---- over the limit: 128 keys ----
fill over 128
expect_eq "128 keys in place" "$(count over)" 128
r0=$(cluster_rev)
expect_eq "rename(2) of a directory of 128 keys fails with EXDEV" "$(rename_errno "$A/over" "$A/over2")" EXDEV
r1=$(cluster_rev)
expect_eq "... no write at all" "$((r1 - r0))" 0
expect_eq "... source intact" "$(count over)" 128
expect_eq "... nothing at the destination" "$(count over2)" 0
check "... destination does not exist" test ! -e "$A/over2"
mv "$A/over" "$A/over2" 2>"$T_DIR/mv.err"
check "mv falls back to copy and remove, and succeeds" test $? = 0
expect_eq "... without an error message" "$(grep -v "setting attribute 'user.etcfs" "$T_DIR/mv.err")" ""
# (mv's copy mkdirs the destination: its marker key is the 129th)
expect_eq "... every key at the destination" "$(count over2)" 129
check "... the destination's marker" kv_exists over2/
expect_eq "... none left at the source" "$(count over)" 0
expect_eq "... values kept" "$(kv_get over2/k127)" "v127"

# ---- values too big for one request (10 x 200 KiB > 1.5 MiB) ----
fill fat 10 204800
expect_eq "10 big keys in place" "$(count fat)" 10
expect_eq "rename(2) whose txn would exceed the request size fails with EXDEV" \
	"$(rename_errno "$A/fat" "$A/fat2")" EXDEV
expect_eq "... nothing moved" "$(count fat) $(count fat2)" "10 0"
out=$(mv "$A/fat" "$A/fat2" 2>&1)
check "mv falls back, and succeeds ($out)" test $? = 0
expect_eq "... without an error message (read-only attributes are not copied)" "$out" ""
expect_eq "... every key moved (and the new marker)" "$(count fat2) $(count fat)" "11 0"
expect_eq "... value intact" "$(kv_get fat2/k009 | wc -c)" 204805

# ---- rm -r / rmdir of an implied directory emptied by this mount ----
for i in 1 2 3; do ctl put "${PREFIX}gone/k$i" v >/dev/null; done
wait_for 20 "gone visible" test -f "$A/gone/k3"
res=$(python3 - "$A/gone" <<'EOF'
import errno, os, sys, time
d = sys.argv[1]
for n in sorted(os.listdir(d)):
    os.unlink(os.path.join(d, n))
time.sleep(1.5)  # past the kernel's entry timeout: the name is looked up again
try:
    os.rmdir(d); print("OK")
except OSError as e:
    print(errno.errorcode[e.errno])
EOF
)
expect_eq "rmdir of a directory this mount emptied, after the entry timeout" "$res" OK
check "... gone from the mount" test ! -e "$A/gone"
expect_eq "... no key left" "$(count gone)" 0

t_finish
