#!/bin/bash
# tests/fs/editors.sh - editors and file tools that basic.sh does not drive,
# each saving into an existing file or a new one: nano (through a pty), ex
# reading a script, vim with backupcopy=no/yes and a kept backup, install -m
# 0644 (new, over an existing file, -D), rsync replacing a file (temporary +
# rename), --inplace and --delete, cp -p / cp -a over existing files, mv
# over a file and across directories, tar x over existing files.  Every
# result is read back from the cluster, through a second mount, and no tool
# leaves a temporary key behind.  On the second mount, vim (both backupcopy
# settings), sed -i and emacs's #name# / .#name make one complete-value
# event per save and no event for a temporary name.
source "$(dirname "$0")/fslib.bash"

cluster_start 3
fs_mount A 1
fs_mount B 2
A=$T_DIR/A
B=$T_DIR/B
mkdir "$A/ed"
printf 'alpha\nbeta\n' >"$A/ed/conf"
absent() { ! kv_exists "$1"; }
# B sees a value once the change was replayed there
seen_in_b() { wait_for 20 "B sees $1" bash -c "[ \"\$(cat '$B/$1' 2>/dev/null)\" = \"\$(printf '%b' \"$2\")\" ]"; }

# ---- nano ----
if command -v nano >/dev/null; then
	res=$(python3 - "$A/ed/conf" <<'EOF'
import os, pty, select, sys, time
path = sys.argv[1]
pid, fd = pty.fork()
if pid == 0:
    os.environ["TERM"] = "xterm"
    os.execvp("nano", ["nano", "--ignorercfiles", path])
buf = b""
def wait(pat, secs=30):
    global buf
    end = time.time() + secs
    while pat not in buf and time.time() < end:
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try:
                buf += os.read(fd, 65536)
            except OSError:
                break
    return pat in buf
ok = wait(b"GNU nano")
os.write(fd, b"NANO ")          # typed at the start of the first line
os.write(fd, b"\x0f")           # ^O: write out
ok = ok and wait(b"File Name to Write")
os.write(fd, b"\r")
ok = ok and wait(b"Wrote")
os.write(fd, b"\x18")           # ^X: exit
end = time.time() + 30
while time.time() < end:
    p, status = os.waitpid(pid, os.WNOHANG)
    if p:
        break
    try:
        os.read(fd, 65536)
    except OSError:
        pass
    time.sleep(0.1)
else:
    os.kill(pid, 9)
    ok = False
print("ok" if ok else "nano did not save: " + repr(buf[-300:]))
EOF
)
	expect_eq "nano: saved through a pty" "$res" "ok"
	expect_eq "nano: value in the cluster" "$(kv_get ed/conf | head -1)" "NANO alpha"
	seen_in_b ed/conf 'NANO alpha\nbeta'
	expect_eq "nano: value through another mount" "$(head -1 "$B/ed/conf")" "NANO alpha"
else
	echo "SKIP nano: the nano binary is not installed (contrib/install-deps.sh installs it)"
fi
printf 'alpha\nbeta\n' >"$A/ed/conf"

# ---- a file's mtime does not move after a local write ----
# (vim and ex refuse to save a file whose mtime changed since they read it)
printf 'alpha\nbeta\n' >"$A/ed/conf"
mt1=$(stat -c %y "$A/ed/conf")
ctl put "${PREFIX}ed/marker" m >/dev/null # events are replayed in order:
wait_for 20 "later event replayed" test -f "$A/ed/marker"
expect_eq "mtime of a locally written file is stable once its own event arrives" "$(stat -c %y "$A/ed/conf")" "$mt1"
rm "$A/ed/marker"

# ---- ex with a script on stdin, right after a write ----
printf 'alpha\nbeta\n' >"$A/ed/conf"
printf '%%s/beta/BETA/\nwq\n' | ex -u NONE -i NONE -N -s "$A/ed/conf"
expect_eq "ex -s: script from stdin" "$(kv_get ed/conf | tail -1)" "BETA"

# ---- vim: the two ways of saving, and a kept backup ----
vim -u NONE -i NONE -N -e -s -c 'set backupcopy=no' -c '%s/alpha/ALPHA/' -c 'wq' "$A/ed/conf" </dev/null
expect_eq "vim backupcopy=no (rename the original away, write a new file)" "$(kv_get ed/conf | head -1)" "ALPHA"
vim -u NONE -i NONE -N -e -s -c 'set backupcopy=yes' -c '%s/ALPHA/alpha2/' -c 'wq' "$A/ed/conf" </dev/null
expect_eq "vim backupcopy=yes (copy, overwrite in place)" "$(kv_get ed/conf | head -1)" "alpha2"
vim -u NONE -i NONE -N -e -s -c 'set backup' -c '%s/alpha2/alpha3/' -c 'wq' "$A/ed/conf" </dev/null
expect_eq "vim with 'backup' set" "$(kv_get ed/conf | head -1)" "alpha3"
check "... no backup key stored" absent 'ed/conf~'
seen_in_b ed/conf 'alpha3\nBETA'
expect_eq "vim: value through another mount" "$(cat "$B/ed/conf" | tr '\n' ,)" "alpha3,BETA,"

# ---- one event per save on another mount, no temporaries seen there ----
# (vim probes .name.swpx / .name.swx before making its swap file; each
# probe reached the cluster and made CREATE/CLOSE_WRITE/DELETE everywhere)
inotifywait -m -q --format '%e %f' "$B/ed" >"$T_DIR/evB" 2>/dev/null &
T_PIDS+=("$!")
sleep 1 # no ready signal in -q mode
vim -u NONE -i NONE -N -e -s -c 'set backupcopy=no' -c '%s/alpha3/v1/' -c 'wq' "$A/ed/conf" </dev/null
seen_in_b ed/conf 'v1\nBETA'
vim -u NONE -i NONE -N -e -s -c 'set backupcopy=yes' -c '%s/v1/v2/' -c 'wq' "$A/ed/conf" </dev/null
seen_in_b ed/conf 'v2\nBETA'
sed -i 's/v2/v3/' "$A/ed/conf"
seen_in_b ed/conf 'v3\nBETA'
echo emacs >"$A/ed/#conf#"
echo lock >"$A/ed/.#conf"
rm "$A/ed/#conf#" "$A/ed/.#conf"
ctl put "${PREFIX}ed/marker2" m >/dev/null # events are replayed in order
wait_for 20 "marker2 on B" grep -q 'marker2' "$T_DIR/evB"
expect_eq "vim (backupcopy=no, yes), sed -i, emacs files: no temporary name on the other mount" \
	"$(grep -vE ' (conf|marker2)$' "$T_DIR/evB" | sort -u | tr '\n' ';')" ""
expect_eq "... one complete new value per save there (three saves)" \
	"$(grep -cE '^(CLOSE_WRITE,CLOSE|MOVED_TO) conf$' "$T_DIR/evB")" 3
rm "$A/ed/marker2"
printf 'alpha3\nBETA\n' >"$A/ed/conf"

# ---- install ----
src=$T_DIR/src
mkdir -p "$src/tree/sub"
echo one >"$src/one"
echo two >"$src/two"
echo t1 >"$src/tree/t1"
echo s1 >"$src/tree/sub/s1"
install -m 0644 "$src/one" "$A/ed/inst"
expect_eq "install -m 0644 (new file)" "$(kv_get ed/inst)" "one"
expect_eq "... mode as the mount reports it" "$(stat -c %a "$A/ed/inst")" "644"
install -m 0644 "$src/two" "$A/ed/inst"
expect_eq "install -m 0644 over an existing file" "$(kv_get ed/inst)" "two"
install -D -m 0644 "$src/one" "$A/ed/deep/er/inst"
expect_eq "install -D creates the directories" "$(kv_get ed/deep/er/inst)" "one"

# ---- rsync ----
if command -v rsync >/dev/null; then
	echo replaced >"$src/conf"
	rsync "$src/conf" "$A/ed/conf"
	expect_eq "rsync over an existing file (temporary + rename)" "$(kv_get ed/conf)" "replaced"
	echo inplace >"$src/conf"
	rsync --inplace "$src/conf" "$A/ed/conf"
	expect_eq "rsync --inplace" "$(kv_get ed/conf)" "inplace"
	rsync -a "$src/tree/" "$A/rs/"
	echo extra >"$A/rs/extra"
	echo s1-changed >"$src/tree/sub/s1"
	rsync -a --delete "$src/tree/" "$A/rs/"
	expect_eq "rsync -a --delete: changed file" "$(kv_get rs/sub/s1)" "s1-changed"
	check "rsync -a --delete: extra file deleted" absent rs/extra
else
	echo "SKIP rsync: not installed"
fi

# ---- cp, mv ----
echo fresh >"$src/fresh"
cp -p "$src/fresh" "$A/ed/inst"
expect_eq "cp -p over an existing file (chmod/chown/utimes accepted)" "$(kv_get ed/inst)" "fresh"
cp -a "$src/tree" "$A/cpa"
expect_eq "cp -a of a directory tree" "$(kv_get cpa/sub/s1)" "s1-changed"
echo other >"$A/ed/other"
mv "$A/ed/other" "$A/ed/inst"
expect_eq "mv over an existing file" "$(kv_get ed/inst)" "other"
check "... source key gone" absent ed/other
mv "$A/ed/inst" "$A/cpa/sub/"
expect_eq "mv into another directory" "$(kv_get cpa/sub/inst)" "other"

# ---- tar x over existing files ----
echo t1-new >"$src/tree/t1"
tar -C "$src/tree" -cf "$T_DIR/t.tar" .
tar -C "$A/cpa" -xf "$T_DIR/t.tar"
expect_eq "tar x over an existing file" "$(kv_get cpa/t1)" "t1-new"
seen_in_b cpa/t1 't1-new'

# ---- no temporaries left ----
expect_eq "no temporary keys left by any tool" "$(kv_keys | sort | tr '\n' ' ')" \
	"cpa/ cpa/sub/ cpa/sub/inst cpa/sub/s1 cpa/t1 ed/ ed/conf ed/deep/ ed/deep/er/ ed/deep/er/inst rs/ rs/sub/ rs/sub/s1 rs/t1 "

t_finish
