#!/bin/bash
# tests/fs/mount_opts.sh - the mount options that shape access: uid=, gid=,
# umask= (what ls -ln shows, what the kernel enforces for other users), ro
# (every change fails with EROFS, at open for writing already; reads and
# remote changes still work) and allow_other (other users can read at all).
source "$(dirname "$0")/fslib.bash"

cluster_start 3
chmod 711 "$T_DIR" # other users must reach the mount points below it
NOBODY=(setpriv --reuid=65534 --regid=65534 --clear-groups)
ctl put "${PREFIX}f" hello >/dev/null
ctl put "${PREFIX}d/g" inner >/dev/null

# errno name of one system call, from python: errno_of OP PATH [PATH2]
errno_of() {
	python3 - "$@" <<'EOF'
import errno, os, sys
op, p = sys.argv[1], sys.argv[2]
try:
    if op == "open_w":
        os.close(os.open(p, os.O_WRONLY))
    elif op == "open_rw":
        os.close(os.open(p, os.O_RDWR))
    elif op == "open_trunc":
        os.close(os.open(p, os.O_WRONLY | os.O_TRUNC))
    elif op == "create":
        os.close(os.open(p, os.O_WRONLY | os.O_CREAT, 0o644))
    elif op == "mkdir":
        os.mkdir(p)
    elif op == "unlink":
        os.unlink(p)
    elif op == "rmdir":
        os.rmdir(p)
    elif op == "rename":
        os.rename(p, sys.argv[3])
    elif op == "truncate":
        os.truncate(p, 1)
    elif op == "setxattr":
        os.setxattr(p, "user.etcfs.ttl", b"30")
    elif op == "read":
        open(p).read()
    print("OK")
except OSError as e:
    print(errno.errorcode[e.errno])
EOF
}

# ---- uid=, gid=, umask= ----
fs_mount U 1 -o uid=1234,gid=2345,umask=027
U=$T_DIR/U
expect_eq "uid/gid of a file (ls -ln)" "$(ls -ln "$U" | awk '$NF == "f" {print $3, $4}')" "1234 2345"
expect_eq "uid/gid of a directory (ls -ln)" "$(ls -ln "$U" | awk '$NF == "d" {print $3, $4}')" "1234 2345"
expect_eq "file mode is 0666 & ~umask" "$(stat -c %a "$U/f")" "640"
expect_eq "directory mode is 0777 & ~umask" "$(stat -c %a "$U/d")" "750"
expect_eq "root directory too" "$(stat -c '%u %g %a' "$U")" "1234 2345 750"
echo "by root" >"$U/f"
expect_eq "root still writes" "$(kv_get f)" "by root"
echo new >"$U/d/new"
expect_eq "root still creates" "$(kv_get d/new)" "new"
expect_eq "a new file gets the same owner" "$(stat -c '%u %g %a' "$U/d/new")" "1234 2345 640"
fusermount3 -u "$U"

# ---- ro ----
fs_mount R 2 -o ro
R=$T_DIR/R
expect_eq "ro: read" "$(cat "$R/f")" "by root"
expect_eq "ro: open O_WRONLY fails at open" "$(errno_of open_w "$R/f")" EROFS
expect_eq "ro: open O_RDWR fails at open" "$(errno_of open_rw "$R/f")" EROFS
expect_eq "ro: open O_TRUNC fails at open" "$(errno_of open_trunc "$R/f")" EROFS
expect_eq "ro: create fails" "$(errno_of create "$R/d/other")" EROFS
expect_eq "ro: mkdir fails" "$(errno_of mkdir "$R/newdir")" EROFS
expect_eq "ro: unlink fails" "$(errno_of unlink "$R/f")" EROFS
expect_eq "ro: rmdir fails" "$(errno_of rmdir "$R/d")" EROFS
expect_eq "ro: rename fails" "$(errno_of rename "$R/f" "$R/f2")" EROFS
expect_eq "ro: truncate fails" "$(errno_of truncate "$R/f")" EROFS
expect_eq "ro: setxattr fails" "$(errno_of setxattr "$R/f")" EROFS
rm -f "$R/f" 2>"$T_DIR/rm.err"
check "ro: rm reports a read-only file system" grep -q "Read-only file system" "$T_DIR/rm.err"
expect_eq "ro: nothing changed in the cluster" "$(kv_keys | sort | tr '\n' ' ')" "d/g d/new f "
expect_eq "ro: value intact" "$(kv_get f)" "by root"
ctl put "${PREFIX}f" remote >/dev/null
wait_for 20 "ro: remote change visible" bash -c "[ \"\$(cat '$R/f')\" = remote ]"
expect_eq "ro: remote changes still show" "$(cat "$R/f")" "remote"
expect_eq "ro: read of a nested file" "$(cat "$R/d/g")" "inner"
fusermount3 -u "$R"

# ---- without allow_other, other users are refused by the kernel ----
fs_mount P 3
out=$("${NOBODY[@]}" cat "$T_DIR/P/f" 2>&1)
check "no allow_other: nobody cannot read ($out)" grep -q "Permission denied" <<<"$out"
fusermount3 -u "$T_DIR/P"

# ---- allow_other ----
fs_mount O 3 -o allow_other
O=$T_DIR/O
check "allow_other: mounted" mountpoint -q "$O"
expect_eq "allow_other: nobody reads" "$("${NOBODY[@]}" cat "$O/f")" "remote"
expect_eq "allow_other: nobody lists" "$("${NOBODY[@]}" ls "$O/d" | tr '\n' ' ')" "g new "
expect_eq "allow_other: su nobody reads" "$(su -s /bin/sh nobody -c "cat '$O/d/g'")" "inner"
"${NOBODY[@]}" sh -c "echo theirs >'$O/f'" 2>/dev/null
check "allow_other: nobody cannot write a root-owned 0644 file" test $? != 0
expect_eq "... value unchanged" "$(kv_get f)" "remote"
fusermount3 -u "$O"

# ---- allow_other with uid= of the other user: that user may write ----
fs_mount W 1 -o allow_other,uid=65534,gid=65534
W=$T_DIR/W
"${NOBODY[@]}" sh -c "echo theirs >'$W/f'"
check "uid=65534: nobody writes its file" test $? = 0
expect_eq "... stored" "$(kv_get f)" "theirs"
"${NOBODY[@]}" sh -c "echo made >'$W/d/bynobody'"
expect_eq "uid=65534: nobody creates files" "$(kv_get d/bynobody)" "made"
fusermount3 -u "$W"

t_finish
