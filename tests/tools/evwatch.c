/*
 * evwatch.c - a second inotify watcher for the mount tests, written against
 * the inotify syscalls directly (not inotify-tools), so a test does not
 * depend on one tool's way of reading events.
 *
 *   evwatch [-r] DIR...
 *
 * Prints one line per event, "EVENTS PATH", with the event names and the
 * order inotifywait uses (CREATE,ISDIR; CLOSE_WRITE,CLOSE) and PATH the
 * watched directory as given (plus the name, when the event has one), and
 * flushes each line.  "ready" goes to stderr once every watch is in place.
 * With -r every directory found below DIR at start is watched too, and a
 * directory that appears later (CREATE or MOVED_TO with ISDIR) gets a watch
 * when its event is read, as inotifywait -r does: nothing is made up for
 * what it already holds, so a file created in it before the watch exists is
 * never reported.  A watched directory that is moved keeps its watches under
 * the new name (inotifywait does the same).  Runs until killed.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAXW 4096

static char *wpath[MAXW]; /* path by watch descriptor */
static int recursive;
static int ifd;

static void add(const char *path)
{
	int wd = inotify_add_watch(ifd, path, IN_ALL_EVENTS);
	if (wd < 0) {
		fprintf(stderr, "evwatch: %s: %s\n", path, strerror(errno));
		return;
	}
	if (wd >= MAXW)
		return;
	free(wpath[wd]);
	wpath[wd] = strdup(path);
	if (!recursive)
		return;
	DIR *d = opendir(path);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		char sub[PATH_MAX];
		struct stat st;
		snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
		if (lstat(sub, &st) == 0 && S_ISDIR(st.st_mode))
			add(sub);
	}
	closedir(d);
}

/* Watches at or below from are now below to. */
static void rename_watches(const char *from, const char *to)
{
	size_t fl = strlen(from);
	for (int wd = 0; wd < MAXW; wd++) {
		char *p = wpath[wd];
		if (!p || strncmp(p, from, fl) != 0 || (p[fl] && p[fl] != '/'))
			continue;
		char np[PATH_MAX];
		snprintf(np, sizeof np, "%s%s", to, p + fl);
		free(wpath[wd]);
		wpath[wd] = strdup(np);
	}
}

static void names(uint32_t mask, char *out, size_t n)
{
	static const struct {
		uint32_t bit;
		const char *name;
	} t[] = {
		{IN_ACCESS, "ACCESS"},
		{IN_MODIFY, "MODIFY"},
		{IN_ATTRIB, "ATTRIB"},
		{IN_CLOSE_WRITE, "CLOSE_WRITE"},
		{IN_CLOSE_NOWRITE, "CLOSE_NOWRITE"},
		{IN_OPEN, "OPEN"},
		{IN_MOVED_FROM, "MOVED_FROM"},
		{IN_MOVED_TO, "MOVED_TO"},
		{IN_CREATE, "CREATE"},
		{IN_DELETE, "DELETE"},
		{IN_DELETE_SELF, "DELETE_SELF"},
		{IN_MOVE_SELF, "MOVE_SELF"},
		{IN_UNMOUNT, "UNMOUNT"},
		{IN_Q_OVERFLOW, "Q_OVERFLOW"},
		{IN_IGNORED, "IGNORED"},
	};
	out[0] = 0;
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		if (!(mask & t[i].bit))
			continue;
		if (out[0])
			strncat(out, ",", n - strlen(out) - 1);
		strncat(out, t[i].name, n - strlen(out) - 1);
		if (t[i].bit & IN_CLOSE)
			strncat(out, ",CLOSE", n - strlen(out) - 1);
	}
	if (mask & IN_ISDIR)
		strncat(out, ",ISDIR", n - strlen(out) - 1);
}

int main(int argc, char **argv)
{
	int i = 1;
	if (i < argc && !strcmp(argv[i], "-r")) {
		recursive = 1;
		i++;
	}
	if (i >= argc) {
		fprintf(stderr, "usage: evwatch [-r] DIR...\n");
		return 2;
	}
	ifd = inotify_init1(IN_CLOEXEC);
	if (ifd < 0) {
		perror("inotify_init1");
		return 1;
	}
	for (; i < argc; i++)
		add(argv[i]);
	fprintf(stderr, "ready\n");
	char moved[PATH_MAX] = "";
	uint32_t cookie = 0;
	char buf[65536] __attribute__((aligned(__alignof__(struct inotify_event))));
	for (;;) {
		ssize_t n = read(ifd, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return 1;
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *ev = (struct inotify_event *)p;
			p += sizeof *ev + ev->len;
			const char *dir =
				ev->wd >= 0 && ev->wd < MAXW && wpath[ev->wd] ? wpath[ev->wd] : "?";
			char ev_names[256];
			names(ev->mask, ev_names, sizeof ev_names);
			if (ev->len)
				printf("%s %s/%s\n", ev_names, dir, ev->name);
			else
				printf("%s %s\n", ev_names, dir);
			fflush(stdout);
			if (ev->len && (ev->mask & IN_ISDIR) && (ev->mask & IN_MOVED_FROM)) {
				snprintf(moved, sizeof moved, "%s/%s", dir, ev->name);
				cookie = ev->cookie;
			} else if (ev->len && (ev->mask & IN_ISDIR) && (ev->mask & IN_MOVED_TO) &&
				   cookie == ev->cookie && moved[0]) {
				/* a watched directory moved: its watches keep going under
				 * the new name, as inotifywait renames them */
				char to[PATH_MAX];
				snprintf(to, sizeof to, "%s/%s", dir, ev->name);
				rename_watches(moved, to);
				moved[0] = 0;
				continue;
			}
			if (recursive && ev->len && (ev->mask & IN_ISDIR) &&
			    (ev->mask & (IN_CREATE | IN_MOVED_TO))) {
				char sub[PATH_MAX];
				snprintf(sub, sizeof sub, "%s/%s", dir, ev->name);
				add(sub);
			}
		}
	}
}
