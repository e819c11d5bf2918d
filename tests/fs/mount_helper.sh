#!/bin/bash
# tests/fs/mount_helper.sh - `make install` puts mount.etcfs where mount(8)
# looks for helpers (/sbin), and `mount -t etcfs`, fstab(5) lines, the
# helper called directly as mount(8) calls it, `mount -f`, `umount` and
# `fusermount3 -u` all work.
#
# Nothing on the machine is touched: `make install DESTDIR=$T_DIR/dest`, and
# the mounts run in a private mount namespace (unshare -m) in which the
# installed tree is bind-mounted over /usr/local/bin and a directory holding
# only the installed mount.etcfs over /sbin, so mount(8) finds exactly what
# `make install` would have put there.
source "$(dirname "$0")/fslib.bash"
ROOT=${ETCFS_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
had_helper=0
[ -e /sbin/mount.etcfs ] && had_helper=1

cluster_start 3
ctl put "${PREFIX}hello" world >/dev/null
ctl put "${PREFIX}d/x" inner >/dev/null

# ---- make install ----
DEST=$T_DIR/dest
oldflags=()
for p in etcfsd etcfsctl etcfs etcfs-bench; do oldflags+=(-o "$ETCFS_BIN/$p"); done
make -s -C "$ROOT" install DESTDIR="$DEST" BIN="$ETCFS_BIN" "${oldflags[@]}" >"$T_DIR/install.log" 2>&1
check "make install DESTDIR=... succeeds" test $? = 0
check "etcfs installed in PREFIX/bin" test -x "$DEST/usr/local/bin/etcfs"
check "mount.etcfs installed in /sbin, where mount(8) looks" test -L "$DEST/sbin/mount.etcfs"
expect_eq "mount.etcfs links to the installed etcfs" "$(readlink "$DEST/sbin/mount.etcfs")" "/usr/local/bin/etcfs"
check "etcfs(1) installed" test -f "$DEST/usr/local/share/man/man1/etcfs.1"
check "fstab example installed" test -f "$DEST/usr/local/share/etcfs/fstab.example"

# ---- in a private mount namespace ----
mkdir -p "$T_DIR/sbin" "$T_DIR/M1" "$T_DIR/M2" "$T_DIR/M3" "$T_DIR/M4" "$T_DIR/M5"
cp -P "$DEST/sbin/mount.etcfs" "$T_DIR/sbin/"
EPS=$(endpoints)
cat >"$T_DIR/fstab" <<EOF
# fstab(5) lines as in contrib/fstab.example
$EPS $T_DIR/M2 etcfs prefix=$PREFIX,ro,consistency=serializable,_netdev,nofail,x-systemd.device-timeout=10 0 0
etcfs $T_DIR/M3 etcfs endpoints=${EPS//,/|},prefix=${PREFIX}d/,uid=1000,gid=1000,umask=027,defaults,noauto 0 0
EOF
cat >"$T_DIR/ns.sh" <<'EOF'
# runs inside `unshare -m`; prints PASS/FAIL lines
set -u
export PATH=/usr/bin:/bin:/usr/sbin:/sbin
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1${2:+: $2}"; }
check() { local n=$1; shift; if "$@"; then pass "$n"; else fail "$n"; fi; }
expect_eq() { if [ "$2" == "$3" ]; then pass "$1"; else fail "$1" "got [$2] want [$3]"; fi; }
cleanup() { for d in "$T_DIR"/M?; do umount -l "$d" 2>/dev/null; done; }
trap cleanup EXIT
# the daemon of the mount at $1 (its command line names the mount point)
daemon_of() {
	local p c
	for p in /proc/[0-9]*; do
		c=$(tr '\0' '\n' <"$p/cmdline" 2>/dev/null) || continue
		[ "$(head -n 1 <<<"$c")" = /sbin/mount.etcfs ] && grep -q -x -- "$1" <<<"$c" &&
			{ echo "${p#/proc/}"; return; }
	done
}
gone() { for _ in $(seq 1 100); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done; return 1; }
record() { local p; p=$(daemon_of "$1"); [ -n "$p" ] && echo "$p" >>"$T_DIR/ns.pids"; echo "$p"; }

mount --make-rprivate / && mount --bind "$DEST/usr/local/bin" /usr/local/bin &&
	mount --bind "$T_DIR/sbin" /usr/sbin
check "namespace set up (installed tree in place)" test -x /sbin/mount.etcfs

# mount -t etcfs, then umount
mount -t etcfs "$EPS" "$T_DIR/M1" -o "prefix=$PREFIX,allow_other,_netdev,nofail"
check "mount -t etcfs succeeds" test $? = 0
check "... is a mount point" mountpoint -q "$T_DIR/M1"
expect_eq "... type in /proc/mounts" "$(awk -v d="$T_DIR/M1" '$2 == d {print $1, $3}' /proc/mounts)" "etcfs fuse.etcfs"
expect_eq "... reads" "$(cat "$T_DIR/M1/hello")" "world"
echo viamount >"$T_DIR/M1/written"
check "... writes" test "$(cat "$T_DIR/M1/written")" = viamount
pid=$(record "$T_DIR/M1")
check "... the daemon runs in the background" test -n "$pid"
umount "$T_DIR/M1"
check "umount unmounts" bash -c "! mountpoint -q '$T_DIR/M1'"
check "... and the daemon exits" gone "$pid"

# an fstab line with the endpoint list as source: mount -T FSTAB DIR
mount -T "$T_DIR/fstab" "$T_DIR/M2"
check "fstab line (endpoint list, ro, mount(8)-only options) mounts" mountpoint -q "$T_DIR/M2"
expect_eq "... reads" "$(cat "$T_DIR/M2/d/x")" "inner"
echo no 2>/dev/null >"$T_DIR/M2/hello"
check "... ro refuses writes" test $? != 0
pid=$(record "$T_DIR/M2")
fusermount3 -u "$T_DIR/M2"
check "fusermount3 -u unmounts" bash -c "! mountpoint -q '$T_DIR/M2'"
check "... and the daemon exits" gone "$pid"

# an fstab line with source "etcfs" and endpoints=A|B in the options
mount -T "$T_DIR/fstab" "$T_DIR/M3"
check "fstab line (source etcfs, endpoints=A|B, prefix, uid/gid/umask) mounts" mountpoint -q "$T_DIR/M3"
expect_eq "... prefix applies" "$(cat "$T_DIR/M3/x")" "inner"
expect_eq "... owner and mode" "$(stat -c '%u %g %a' "$T_DIR/M3/x")" "1000 1000 640"
pid=$(record "$T_DIR/M3")
umount "$T_DIR/M3"
check "... umount" bash -c "! mountpoint -q '$T_DIR/M3'"
check "... and the daemon exits" gone "$pid"

# the helper called directly, as mount(8) calls it
/sbin/mount.etcfs "$EPS" "$T_DIR/M4" -o "prefix=$PREFIX,rw"
check "mount.etcfs SOURCE DIR -o OPTS mounts" mountpoint -q "$T_DIR/M4"
expect_eq "... reads" "$(cat "$T_DIR/M4/hello")" "world"
record "$T_DIR/M4" >/dev/null
fusermount3 -u "$T_DIR/M4"
check "... fusermount3 -u" bash -c "! mountpoint -q '$T_DIR/M4'"

# mount -f (fake): mount(8) passes -f to the helper, which must not mount
mount -f -t etcfs "$EPS" "$T_DIR/M5" -o "prefix=$PREFIX"
check "mount -f -t etcfs succeeds" test $? = 0
check "... and mounts nothing" bash -c "! mountpoint -q '$T_DIR/M5'"
mount -t etcfs "not-an-endpoint" "$T_DIR/M5" -o "prefix=$PREFIX" 2>"$T_DIR/bad.err"
check "a malformed endpoint list fails the mount (error reaches mount(8))" test $? != 0
check "... nothing mounted" bash -c "! mountpoint -q '$T_DIR/M5'"
EOF

trap 'for p in $(cat "$T_DIR/ns.pids" 2>/dev/null); do T_PIDS+=("$p"); done; t_cleanup' EXIT
T_DIR=$T_DIR DEST=$DEST EPS=$EPS PREFIX=$PREFIX unshare -m --propagation private \
	bash "$T_DIR/ns.sh" >"$T_DIR/ns.out" 2>"$T_DIR/ns.err"
cat "$T_DIR/ns.out"
nfail=$(grep -c '^FAIL' "$T_DIR/ns.out")
npass=$(grep -c '^PASS' "$T_DIR/ns.out")
T_FAILED=$((T_FAILED + nfail))
[ "$npass" -ge 20 ] || { cat "$T_DIR/ns.err"; fail "namespace part ran to the end ($npass checks passed)"; }

# ---- nothing leaked to the machine ----
if [ "$had_helper" = 0 ]; then
	check "no /sbin/mount.etcfs left on the machine" test ! -e /sbin/mount.etcfs
fi
check "no mount of this test visible outside the namespace" bash -c "! grep -q '$T_DIR' /proc/mounts"
for p in $(cat "$T_DIR/ns.pids" 2>/dev/null); do
	wait_for 10 "daemon $p gone" bash -c "! kill -0 $p 2>/dev/null"
done
check "every mount daemon of the namespace exited" bash -c \
	"for p in \$(cat '$T_DIR/ns.pids' 2>/dev/null); do ! kill -0 \$p 2>/dev/null || exit 1; done"

t_finish
