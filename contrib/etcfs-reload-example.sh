#!/bin/bash
# contrib/etcfs-reload-example.sh - reload a service whenever its
# configuration, kept in etcfs and mounted with etcfs(1), changes anywhere
# in the cluster.
#
#   etcfs-reload-example.sh /mnt/app/nginx.conf 'nginx -s reload'
#
# etcfs replays every remote change through the mount, so inotifywait sees
# CLOSE_WRITE (a new value, written whole) and MOVED_TO (a file renamed over
# it) exactly as for a local file.  Those two are the only events that mean
# "a complete new value is there": CREATE comes before the content is
# written (cp, editors), so reloading on it could load an empty or partial
# file.  DELETE is logged and keeps the running configuration.
# Watch the directory, not the file: editors and `mv` replace the file.
set -u
FILE=${1:?usage: $0 FILE COMMAND}
CMD=${2:?usage: $0 FILE COMMAND}
DIR=$(dirname "$FILE")
NAME=$(basename "$FILE")

inotifywait -m -q -e close_write -e moved_to -e delete --format '%e %f' "$DIR" |
while read -r events name; do
	[ "$name" = "$NAME" ] || continue
	case $events in
	*DELETE*) echo "$(date -Is) $FILE deleted; keeping the running configuration" ;;
	*)
		echo "$(date -Is) $FILE changed ($events), revision $(getfattr --only-values -n user.etcfs.revision "$FILE" 2>/dev/null)"
		sh -c "$CMD" || echo "$(date -Is) reload command failed: $CMD"
		;;
	esac
done
