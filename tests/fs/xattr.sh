#!/bin/bash
# tests/fs/xattr.sh - listxattr names exactly the attributes getxattr can
# return, so `getfattr --absolute-names -d` prints no "No such attribute" noise: no
# user.etcfs.ttl without a lease, ttl with one, nothing for a file that
# exists only in the mount, cluster_revision on the root.
source "$(dirname "$0")/fslib.bash"

cluster_start 3
fs_mount A 1
A=$T_DIR/A

# getfattr --absolute-names -d FILE: stdout and stderr, one attribute name per line
names() { getfattr --absolute-names -d "$1" 2>&1 | grep -v -e '^# file:' -e '^$' | sed 's/=.*//'; }
errors() { getfattr --absolute-names -d "$1" 2>&1 >/dev/null; }

echo v >"$A/plain"
expect_eq "getfattr -d without a lease: no error lines" "$(errors "$A/plain")" ""
expect_eq "getfattr -d without a lease: the attributes" "$(names "$A/plain" | sort | tr '\n' ' ')" \
	"user.etcfs.create_revision user.etcfs.lease user.etcfs.occ user.etcfs.revision user.etcfs.version "
expect_eq "... revision value" "$(getfattr --absolute-names -d "$A/plain" 2>/dev/null | grep '^user.etcfs.revision=' | tr -d '"' | cut -d= -f2)" "$(kv_rev plain)"
expect_eq "... lease is 0" "$(getfattr --absolute-names -d "$A/plain" 2>/dev/null | grep '^user.etcfs.lease=' | tr -d '"' | cut -d= -f2)" "0"
getfattr --only-values -n user.etcfs.ttl "$A/plain" >/dev/null 2>&1
check "getxattr user.etcfs.ttl without a lease still fails (ENODATA)" test $? != 0

# a key given a lease by another client: the mount's cached metadata follows
lease=$(ctl lease grant 300 | awk '{print $2}')
ctl put --lease="$lease" "${PREFIX}leased" v >/dev/null
wait_for 20 "leased key visible" test -f "$A/leased"
wait_for 10 "lease seen" bash -c "getfattr --absolute-names -d '$A/leased' 2>/dev/null | grep -q user.etcfs.ttl"
expect_eq "getfattr -d with a lease: no error lines" "$(errors "$A/leased")" ""
expect_eq "getfattr -d with a lease: ttl listed too" "$(names "$A/leased" | sort | tr '\n' ' ')" \
	"user.etcfs.create_revision user.etcfs.lease user.etcfs.occ user.etcfs.revision user.etcfs.ttl user.etcfs.version "
ttl=$(getfattr --absolute-names -d "$A/leased" 2>/dev/null | grep '^user.etcfs.ttl=' | tr -d '"' | cut -d= -f2)
check "ttl value is the lease's remaining time ($ttl)" test "$ttl" -gt 200 -a "$ttl" -le 300

# attaching and detaching through the mount
setfattr -n user.etcfs.ttl -v 100 "$A/plain"
expect_eq "after setfattr ttl: no error lines" "$(errors "$A/plain")" ""
check "after setfattr ttl: ttl listed" bash -c "getfattr --absolute-names -d '$A/plain' 2>/dev/null | grep -q '^user.etcfs.ttl='"
setfattr -x user.etcfs.ttl "$A/plain"
expect_eq "after removing the lease: no error lines" "$(errors "$A/plain")" ""
check "after removing the lease: ttl not listed" bash -c "! getfattr --absolute-names -d '$A/plain' 2>/dev/null | grep -q user.etcfs.ttl"

# the root, a directory, a file not yet in the cluster
expect_eq "root: no error lines" "$(errors "$A")" ""
expect_eq "root: cluster_revision" "$(names "$A" | tr '\n' ' ')" "user.etcfs.cluster_revision "
mkdir "$A/d"
expect_eq "directory: nothing listed, no error" "$(getfattr --absolute-names -d "$A/d" 2>&1)" ""
# (a forked getfattr would flush the file on exec: list from the same process)
res=$(python3 - "$A/pending" <<'EOF'
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o644)   # not committed before close
os.write(fd, b"x")
out = []
for n in os.listxattr(sys.argv[1]):
    try:
        os.getxattr(sys.argv[1], n)
        out.append(n)
    except OSError as e:
        out.append(n + ":" + os.strerror(e.errno))
os.close(fd)
print(" ".join(out) or "empty")
EOF
)
expect_eq "file not yet committed: nothing listed" "$res" "empty"
echo tmp >"$A/.x.swp" # an editor temporary: lives only in the mount
expect_eq "editor temporary: nothing listed, no error" "$(getfattr --absolute-names -d "$A/.x.swp" 2>&1)" ""

t_finish
