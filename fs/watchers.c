/*
 * watchers.c - letting recursive inotify watchers see the inside of a
 * directory the reflector has just made.
 *
 * inotify has no recursive watch: `inotifywait -r` and every library like
 * it learn of a new directory from its CREATE,ISDIR event and only then add
 * a watch on it (inotify-tools' inotifytools_watch_recursively: stat,
 * opendir/readdir for subdirectories, inotify_add_watch; no event is made
 * up for what the directory already holds).  A file created in the new
 * directory before that watch exists makes no event for such a watcher.  A
 * local `mkdir d; echo > d/f` has the same race, but a revision that brings
 * a whole new subtree must reach every watcher whole, so the reflector
 * waits, after its mkdir and before it fills the directory, until each
 * inotify instance that watches the parent has either
 *
 *   - a watch on the new directory (a recursive watcher caught up), or
 *   - nothing left to read on its inotify descriptor while every thread of
 *     its process waits in a blocking syscall (it read the CREATE and went
 *     back to waiting without adding a watch: not a recursive watcher),
 *
 * or a deadline passed (a stopped or very slow watcher cannot hold the
 * mount back for long).  Nobody watching the parent costs one scan.
 *
 * Everything comes from procfs, as root: /proc/PID/fd/N links named
 * "anon_inode:inotify" are the inotify instances, /proc/PID/fdinfo/N lists
 * their watches (inode number and device in hex, the kernel's dev_t), the
 * queue length is FIONREAD on a copy of the descriptor (pidfd_getfd), and
 * /proc/PID/task/TID/syscall tells which syscall each thread waits in
 * ("running" when it is on a CPU or runnable, as a thread woken by the
 * event is until it runs).  A process whose /proc/PID/fd we may not read
 * (another user's, when the daemon is not root) is not seen at all; one
 * whose queue we may not read is judged by its threads alone.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "etcfs.h"

/* Longest wait for one directory. */
#define SETTLE_MAX_MS 2000
/* The list of inotify instances is re-read at most this often. */
#define SCAN_TTL_MS 1000

struct instance {
	pid_t pid;
	int fd;
};

/* Inotify instances of every process but this one, cached for one batch
 * (watchers_forget) and at most SCAN_TTL_MS (reflector thread only). */
static struct instance *inst;
static size_t ninst, capinst;
static int64_t inst_time_ms;

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int all_digits(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return 0;
	return 1;
}

static void scan_instances(void)
{
	ninst = 0;
	inst_time_ms = now_ms();
	DIR *proc = opendir("/proc");
	if (!proc)
		return;
	pid_t self = getpid();
	struct dirent *pe;
	while ((pe = readdir(proc))) {
		if (!all_digits(pe->d_name))
			continue;
		pid_t pid = (pid_t)atoi(pe->d_name);
		if (pid == self)
			continue;
		char path[64];
		snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
		DIR *fds = opendir(path);
		if (!fds)
			continue;
		struct dirent *fe;
		while ((fe = readdir(fds))) {
			if (!all_digits(fe->d_name))
				continue;
			char link[64];
			ssize_t n = readlinkat(dirfd(fds), fe->d_name, link, sizeof link - 1);
			if (n <= 0)
				continue;
			link[n] = 0;
			if (strcmp(link, "anon_inode:inotify") != 0)
				continue;
			if (ninst == capinst) {
				size_t nc = capinst ? capinst * 2 : 16;
				struct instance *ni = realloc(inst, nc * sizeof *ni);
				if (!ni)
					break;
				inst = ni;
				capinst = nc;
			}
			inst[ninst++] = (struct instance){pid, atoi(fe->d_name)};
		}
		closedir(fds);
	}
	closedir(proc);
}

/* Does instance i watch inode ino of device kdev?  1 yes, 0 no, -1 the
 * instance is gone. */
static int instance_watches(const struct instance *i, unsigned long kdev, unsigned long ino)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/fdinfo/%d", (int)i->pid, i->fd);
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	char line[512];
	int found = 0;
	while (!found && fgets(line, sizeof line, f)) {
		unsigned long wino, wdev;
		const char *p = strstr(line, "inotify wd:");
		if (!p)
			continue;
		const char *pi = strstr(p, " ino:"), *pd = strstr(p, " sdev:");
		if (pi && pd && sscanf(pi, " ino:%lx", &wino) == 1 &&
		    sscanf(pd, " sdev:%lx", &wdev) == 1 && wino == ino && wdev == kdev)
			found = 1;
	}
	fclose(f);
	return found;
}

/* A syscall a thread sits in while it waits for something to happen. */
static int waiting_syscall(long nr)
{
	static const long waits[] = {
		SYS_read,         SYS_readv,    SYS_ppoll,           SYS_pselect6,
		SYS_epoll_pwait,  SYS_futex,    SYS_clock_nanosleep, SYS_nanosleep,
		SYS_wait4,        SYS_waitid,   SYS_rt_sigtimedwait, SYS_rt_sigsuspend,
		SYS_accept4,      SYS_recvfrom, SYS_recvmsg,
#ifdef SYS_poll
		SYS_poll,
#endif
#ifdef SYS_select
		SYS_select,
#endif
#ifdef SYS_epoll_wait
		SYS_epoll_wait,
#endif
#ifdef SYS_epoll_pwait2
		SYS_epoll_pwait2,
#endif
#ifdef SYS_pause
		SYS_pause,
#endif
#ifdef SYS_accept
		SYS_accept,
#endif
	};
	for (size_t k = 0; k < sizeof waits / sizeof waits[0]; k++)
		if (waits[k] == nr)
			return 1;
	return 0;
}

/* Every thread of pid waits in a blocking syscall. */
static int process_waiting(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
	DIR *d = opendir(path);
	if (!d)
		return 0;
	int all = 1, any = 0;
	struct dirent *te;
	while (all && (te = readdir(d))) {
		if (!all_digits(te->d_name))
			continue;
		char sp[300], buf[256];
		snprintf(sp, sizeof sp, "/proc/%d/task/%s/syscall", (int)pid, te->d_name);
		int fd = open(sp, O_RDONLY | O_CLOEXEC);
		ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
		if (fd >= 0)
			close(fd);
		if (n <= 0) {
			all = 0;
			break;
		}
		buf[n] = 0;
		char *end;
		long nr = strtol(buf, &end, 10);
		any = 1;
		if (end == buf || nr < 0 || !waiting_syscall(nr))
			all = 0; /* "running", stopped (-1) or busy in a syscall */
	}
	closedir(d);
	return all && any;
}

/* Bytes queued on instance i (FIONREAD on a copy of its descriptor), or -1
 * when it cannot be told. */
static long instance_queued(const struct instance *i)
{
#if defined(SYS_pidfd_open) && defined(SYS_pidfd_getfd)
	int pfd = (int)syscall(SYS_pidfd_open, i->pid, 0);
	if (pfd < 0)
		return -1;
	int fd = (int)syscall(SYS_pidfd_getfd, pfd, i->fd, 0);
	close(pfd);
	if (fd < 0)
		return -1;
	int q = 0;
	long rv = ioctl(fd, FIONREAD, &q) == 0 ? q : -1;
	close(fd);
	return rv;
#else
	(void)i;
	return -1;
#endif
}

static unsigned long kernel_dev(dev_t d)
{
	/* fdinfo prints the kernel's dev_t: major << 20 | minor */
	return ((unsigned long)major(d) << 20) | minor(d);
}

void watchers_forget(void)
{
	inst_time_ms = 0;
}

void watchers_settle(struct fs_mount *m, const char *parent, const char *dir)
{
	struct stat ps, ds;
	if (stat(parent, &ps) != 0 || stat(dir, &ds) != 0)
		return;
	unsigned long kdev = kernel_dev(ps.st_dev);
	if (!inst_time_ms || now_ms() - inst_time_ms > SCAN_TTL_MS)
		scan_instances();
	/* the instances watching the parent: the ones to wait for */
	struct instance *todo = NULL;
	size_t n = 0;
	for (size_t k = 0; k < ninst; k++) {
		if (instance_watches(&inst[k], kdev, (unsigned long)ps.st_ino) != 1)
			continue;
		struct instance *nt = realloc(todo, (n + 1) * sizeof *nt);
		if (!nt)
			break;
		todo = nt;
		todo[n++] = inst[k];
	}
	int64_t deadline = now_ms() + SETTLE_MAX_MS;
	while (n > 0 && !m->stopping && now_ms() < deadline) {
		for (size_t k = 0; k < n;) {
			int w = instance_watches(&todo[k], kdev, (unsigned long)ds.st_ino);
			int done = w != 0; /* watches it, or gone */
			/* (-1: the queue cannot be read; a thread woken by the
			 * event is "running" until it has read it anyway) */
			if (!done && instance_queued(&todo[k]) <= 0 && process_waiting(todo[k].pid))
				done = instance_queued(&todo[k]) <= 0; /* still nothing new */
			if (done)
				todo[k] = todo[--n];
			else
				k++;
		}
		if (n > 0)
			usleep(2000);
	}
	free(todo);
}
