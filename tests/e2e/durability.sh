#!/bin/bash
# Every acknowledged put survives a SIGKILL of the member in the middle of a
# write load (single member, then the whole 3-member cluster at once).
source "$(dirname "$0")/lib.sh"

writer() { # writer TAG FILE: puts TAG/i until told to stop; records acknowledged i
	local tag=$1 out=$2 i=0
	while [ ! -f "$T_DIR/stop-$tag" ]; do
		i=$((i + 1))
		if ctl --command-timeout 3s put "$tag/$i" "value-$i" >/dev/null 2>&1; then echo "$i" >>"$out"; fi
	done
}

verify_acked() { # verify_acked TAG FILE -> 0 when every acked key is present with its value
	local tag=$1 file=$2 missing=0 i
	ctl get "$tag/" --prefix >"$T_DIR/dump-$tag" || return 1
	while read -r i; do
		grep -qx -- "$tag/$i" "$T_DIR/dump-$tag" || { missing=$((missing + 1)); echo "missing $tag/$i" >&2; }
	done <"$file"
	[ "$missing" = 0 ]
}

cluster_start 1
WP=()
for w in 1 2 3; do writer single$w "$T_DIR/acked-single$w" & WP+=("$!"); done
acked_count() { cat "$T_DIR"/acked-single* 2>/dev/null | wc -l; }
enough_acked() { [ "$(acked_count)" -ge 50 ]; }
wait_for 120 "50 writes acknowledged" enough_acked
member_kill 1
touch "$T_DIR/stop-single1" "$T_DIR/stop-single2" "$T_DIR/stop-single3"
wait "${WP[@]}"
member_restart 1
wait_for 60 "restarted member serves" cluster_ready
acked=$(cat "$T_DIR"/acked-single* | wc -l)
check "single member: all $acked acknowledged puts survive SIGKILL" \
	bash -c "$(declare -f verify_acked ctl endpoints); $(declare -p M_CPORT M_N T_DIR ETCFSCTL); verify_acked single1 $T_DIR/acked-single1 && verify_acked single2 $T_DIR/acked-single2 && verify_acked single3 $T_DIR/acked-single3"
check "single member: revision keeps increasing after restart" ctl put after-restart yes
t_finish
