/*
 * fsload.c - the file-system workloads of etcfs-bench (fs-cat, fs-write,
 * fs-list, watch-latency).
 *
 * The first three are one syscall sequence each, timed by bench.c's closed
 * loop like a cluster request, so the same summary line compares a mount
 * with tmpfs.  fs-write copies what bash does for `echo v > file` (open,
 * dup the descriptor, close the original, write, close the dup): the order
 * matters to the mount, which commits at the close that follows a write.
 *
 * watch-latency measures how long a change made elsewhere takes to reach a
 * program watching the file: a put through the client library (to another
 * member than the mount's, normally), then wait for the IN_CLOSE_WRITE the
 * mount's reflector produces for it.  One put at a time, each with a new
 * value, so every event belongs to the put just made.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

#include "../common/clock.h"
#include "fsload.h"

static int fail(int e, char *err, size_t errlen, const char *what, const char *path)
{
	snprintf(err, errlen, "%s %s: %s", what, path, strerror(e));
	return e;
}

static int op_cat(const char *path, char *err, size_t errlen)
{
	char buf[65536];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fail(errno, err, errlen, "open", path);
	ssize_t r;
	while ((r = read(fd, buf, sizeof buf)) > 0)
		;
	int e = r < 0 ? errno : 0;
	close(fd);
	return e ? fail(e, err, errlen, "read", path) : 0;
}

static int op_write(const char *path, const char *val, size_t vlen, char *err, size_t errlen)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
	if (fd < 0)
		return fail(errno, err, errlen, "open", path);
	int fd2 = dup(fd);
	if (fd2 < 0) {
		int e = errno;
		close(fd);
		return fail(e, err, errlen, "dup", path);
	}
	if (close(fd) != 0) {
		int e = errno;
		close(fd2);
		return fail(e, err, errlen, "close", path);
	}
	ssize_t w = write(fd2, val, vlen);
	int e = w < 0 ? errno : (size_t)w != vlen ? EIO : 0;
	if (close(fd2) != 0 && !e)
		e = errno;
	return e ? fail(e, err, errlen, "write", path) : 0;
}

static int op_list(const char *path, char *err, size_t errlen)
{
	DIR *d = opendir(path);
	if (!d)
		return fail(errno, err, errlen, "opendir", path);
	errno = 0;
	while (readdir(d))
		;
	int e = errno;
	closedir(d);
	return e ? fail(e, err, errlen, "readdir", path) : 0;
}

int fsload_op(int op, const char *path, const char *val, size_t vlen, char *err, size_t errlen)
{
	switch (op) {
	case FSL_CAT:
		return op_cat(path, err, errlen);
	case FSL_WRITE:
		return op_write(path, val, vlen, err, errlen);
	case FSL_LIST:
		return op_list(path, err, errlen);
	default:
		return EINVAL;
	}
}

/* Wait for IN_CLOSE_WRITE of name in the inotify fd until deadline (ns). */
static int wait_close_write(int ifd, const char *name, int64_t deadline)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	for (;;) {
		int64_t left = deadline - clock_mono_ns();
		if (left <= 0)
			return ETIMEDOUT;
		struct pollfd p = {.fd = ifd, .events = POLLIN};
		int pr = poll(&p, 1, (int)(left / 1000000) + 1);
		if (pr < 0 && errno != EINTR)
			return errno;
		if (pr <= 0)
			continue;
		ssize_t r = read(ifd, buf, sizeof buf);
		if (r < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return errno;
		}
		for (char *q = buf; q < buf + r;) {
			struct inotify_event *ev = (struct inotify_event *)q;
			if ((ev->mask & IN_CLOSE_WRITE) && ev->len && strcmp(ev->name, name) == 0)
				return 0;
			q += sizeof *ev + ev->len;
		}
	}
}

int fsload_watch_latency(efc_client *c, const char *path, const char *key, size_t vlen,
			 long long total, int64_t deadline_ns, int timeout_ms, uint32_t **lat,
			 size_t *n, long long *errors, char *err, size_t errlen)
{
	/* watch the directory (the file may not exist yet; a watch on the
	 * directory names the file in each event) */
	char dir[PATH_MAX];
	snprintf(dir, sizeof dir, "%s", path);
	char *slash = strrchr(dir, '/');
	const char *name = slash ? path + (slash - dir) + 1 : path;
	if (slash == dir)
		dir[1] = 0;
	else if (slash)
		*slash = 0;
	else
		snprintf(dir, sizeof dir, ".");
	int ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (ifd < 0)
		return fail(errno, err, errlen, "inotify_init1", path);
	if (inotify_add_watch(ifd, dir, IN_CLOSE_WRITE) < 0) {
		int e = errno;
		close(ifd);
		return fail(e, err, errlen, "inotify_add_watch", dir);
	}
	char *val = malloc(vlen + 32);
	if (!val) {
		close(ifd);
		return ENOMEM;
	}
	size_t cap = 0;
	for (long long i = 0; (total <= 0 || i < total) && clock_mono_ns() < deadline_ns; i++) {
		/* a new value every time: "NNNNNNNN" then padding to vlen */
		int hl = snprintf(val, vlen + 32, "%08lld", i);
		size_t len = vlen > (size_t)hl ? vlen : (size_t)hl;
		memset(val + hl, 'v', len - (size_t)hl);
		int64_t t0 = clock_mono_ns();
		int rv = efc_put(c, key, (uint32_t)strlen(key), val, (uint32_t)len, 0, NULL);
		if (rv) {
			if (!*errors)
				snprintf(err, errlen, "put: %s", efc_errmsg());
			(*errors)++;
			continue;
		}
		rv = wait_close_write(ifd, name, t0 + (int64_t)timeout_ms * 1000000);
		if (rv) {
			if (!*errors)
				snprintf(err, errlen, "no IN_CLOSE_WRITE for %s within %d ms", path,
					 timeout_ms);
			(*errors)++;
			continue;
		}
		int64_t us = (clock_mono_ns() - t0) / 1000;
		if (*n == cap || !*lat) {
			size_t nc = cap ? cap * 2 : 1024;
			uint32_t *nl = realloc(*lat, nc * sizeof *nl);
			if (!nl)
				break;
			*lat = nl;
			cap = nc;
		}
		(*lat)[(*n)++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
	}
	free(val);
	close(ifd);
	return 0;
}
