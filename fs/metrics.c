/*
 * metrics.c - `-o metrics=HOST:PORT`: the mount's own counters as
 * Prometheus series, served by a tiny HTTP listener of the mount.
 *
 * The counters of struct fs_counters are registered in the process-wide
 * registry of server/metrics.c (the same code etcfsd renders) once, before
 * the FUSE session starts; CTR_INC then bumps the struct field and its
 * series together, so the hot path stays a pair of relaxed atomic adds and
 * the struct keeps working for code that reads it.  The client library's
 * failover count lives in the library, so a scrape adds what it grew by
 * since the last scrape to a counter (under mx_mu, so two scrapes cannot
 * add the same failovers twice).  Registration happens even without
 * -o metrics: it is cheap and keeps CTR_INC free of conditions.
 *
 * The listener is one thread with plain blocking sockets, deliberately
 * small: it accepts one connection at a time, reads one request whose
 * header must fit in MX_HDR_MAX bytes and arrive within MX_IO_MS, answers
 * `GET /metrics` (text format 0.0.4), 404 for any other path, 405 for
 * other methods, and closes.  A stalled or slow client therefore costs at
 * most MX_IO_MS of other scrapers' time and never touches a FUSE thread.
 * The socket is bound before daemonizing (so a bad address or a port in
 * use fails the mount visibly) and the thread starts after the fork; at
 * unmount a byte on a pipe wakes the thread's poll, and it is joined.
 *
 * Must not: take m->mu or any FUSE-side lock while serving (a scrape must
 * work even when the mount is wedged), or serve more than one request per
 * connection.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "etcfs.h"

#define MX_HDR_MAX 8192 /* request line + headers */
#define MX_IO_MS 2000   /* whole request read, and whole response write */

/* Label values of etcfs_fuse_requests_total{op=...}, by enum fs_op. */
static const char *const op_names[OP__COUNT] = {
	[OP_LOOKUP] = "lookup",
	[OP_FORGET] = "forget",
	[OP_GETATTR] = "getattr",
	[OP_SETATTR] = "setattr",
	[OP_MKNOD] = "mknod",
	[OP_MKDIR] = "mkdir",
	[OP_UNLINK] = "unlink",
	[OP_RMDIR] = "rmdir",
	[OP_RENAME] = "rename",
	[OP_OPEN] = "open",
	[OP_READ] = "read",
	[OP_WRITE] = "write",
	[OP_FLUSH] = "flush",
	[OP_RELEASE] = "release",
	[OP_FSYNC] = "fsync",
	[OP_OPENDIR] = "opendir",
	[OP_READDIR] = "readdir",
	[OP_RELEASEDIR] = "releasedir",
	[OP_STATFS] = "statfs",
	[OP_SETXATTR] = "setxattr",
	[OP_GETXATTR] = "getxattr",
	[OP_LISTXATTR] = "listxattr",
	[OP_REMOVEXATTR] = "removexattr",
	[OP_CREATE] = "create",
};

static const char *const refl_names[REFL__COUNT] = {
	[REFL_CREATE] = "create", [REFL_MODIFY] = "modify", [REFL_DELETE] = "delete",
	[REFL_MKDIR] = "mkdir",   [REFL_RMDIR] = "rmdir",   [REFL_RENAME] = "rename",
};

static const char *const errc_names[ERRC__COUNT] = {
	[ERRC_ENOENT] = "enoent",   [ERRC_EEXIST] = "eexist",   [ERRC_PERMISSION] = "permission",
	[ERRC_XATTR] = "xattr",     [ERRC_IO] = "io",           [ERRC_CONFLICT] = "conflict",
	[ERRC_INVALID] = "invalid", [ERRC_NOSPACE] = "nospace", [ERRC_OTHER] = "other",
};

static int err_class(int err)
{
	switch (err) {
	case ENOENT:
		return ERRC_ENOENT;
	case EEXIST:
		return ERRC_EEXIST;
	case EACCES:
	case EPERM:
	case EROFS:
		return ERRC_PERMISSION;
	case ENODATA:
	case ENOTSUP:
	case ERANGE:
		return ERRC_XATTR;
	case EIO:
	case ETIMEDOUT:
	case EAGAIN:
	case ENOTCONN:
	case ECONNREFUSED:
	case EHOSTUNREACH:
		return ERRC_IO;
	case ESTALE:
		return ERRC_CONFLICT;
	case EINVAL:
	case ENAMETOOLONG:
	case EFBIG:
	case ENOTDIR:
	case EISDIR:
	case ENOTEMPTY:
	case EXDEV:
	case EBADF:
		return ERRC_INVALID;
	case ENOSPC:
		return ERRC_NOSPACE;
	default:
		return ERRC_OTHER;
	}
}

void fsmetrics_error(struct fs_mount *m, int err)
{
	CTR_INC(m, errors[err_class(err)]);
}

static int64_t gauge_inodes(void *ud)
{
	struct fs_mount *m = ud;
	return (int64_t)__atomic_load_n(&m->nino, __ATOMIC_RELAXED);
}

static int64_t gauge_watch_ok(void *ud)
{
	struct fs_mount *m = ud;
	return __atomic_load_n(&m->watch_ok, __ATOMIC_RELAXED) ? 1 : 0;
}

static void register_all(struct fs_mount *m)
{
	char lab[64];
	struct fs_ctr_metrics *c = &m->ctm;

	for (int i = 0; i < OP__COUNT; i++) {
		snprintf(lab, sizeof lab, "op=\"%s\"", op_names[i]);
		c->ops[i] = metrics_counter("etcfs_fuse_requests_total",
					    "FUSE requests received, by operation.", lab);
	}
	for (int i = 0; i < ERRC__COUNT; i++) {
		snprintf(lab, sizeof lab, "class=\"%s\"", errc_names[i]);
		c->errors[i] = metrics_counter(
			"etcfs_fuse_errors_total",
			"FUSE requests answered with an error, by errno class.", lab);
	}
	c->cache_hits = metrics_counter("etcfs_cache_hits_total",
					"Lookups, attributes and opens answered from the mount's "
					"cache without asking the cluster.",
					"");
	c->cache_misses = metrics_counter("etcfs_cache_misses_total",
					  "Attributes and opens that fetched the key from the "
					  "cluster.",
					  "");
	for (int i = 0; i < REFL__COUNT; i++) {
		snprintf(lab, sizeof lab, "kind=\"%s\"", refl_names[i]);
		c->reflected_kind[i] =
			metrics_counter("etcfs_inotify_events_reflected_total",
					"Remote changes replayed through the mount point so "
					"the kernel makes their inotify events, by kind.",
					lab);
	}
	c->own_events = metrics_counter("etcfs_watch_own_events_total",
					"Watch events recognised as this mount's own writes "
					"(not replayed).",
					"");
	c->resyncs = metrics_counter("etcfs_watch_resyncs_total",
				     "Times the watch was lost (compaction) and the prefix "
				     "was re-read and compared.",
				     "");
	c->commits = metrics_counter("etcfs_puts_committed_total",
				     "Puts committed when a written file was closed, flushed "
				     "or fsynced.",
				     "");
	c->requests = metrics_counter("etcfs_cluster_requests_total",
				      "Requests sent to the cluster, each one round trip (the "
				      "watch stream not counted).",
				      "");
	m->mx_failovers_m = metrics_counter("etcfs_client_failovers_total",
					    "Times the client library switched to another "
					    "endpoint.",
					    "");
	metrics_gauge_fn("etcfs_inodes", "Inodes the mount has numbered.", "", gauge_inodes, m);
	metrics_gauge_fn("etcfs_watch_up", "1 while the cluster watch is live.", "", gauge_watch_ok,
			 m);
}

/* HOST:PORT or [HOST]:PORT, numeric host. */
static int bind_listener(const char *spec, int *out)
{
	char host[256];
	const char *colon = strrchr(spec, ':');
	size_t hl;
	if (!colon || !colon[1])
		return EINVAL;
	hl = (size_t)(colon - spec);
	if (hl >= 2 && spec[0] == '[' && spec[hl - 1] == ']') {
		spec++;
		hl -= 2;
	}
	if (hl >= sizeof host)
		return EINVAL;
	fs_memcpy(host, spec, hl);
	host[hl] = 0;

	struct addrinfo hints = {.ai_family = AF_UNSPEC,
				 .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE};
	struct addrinfo *ai = NULL;
	if (getaddrinfo(hl ? host : NULL, colon + 1, &hints, &ai) != 0 || !ai)
		return EINVAL;
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int err = 0, one = 1;
	if (fd < 0)
		err = errno;
	else if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
		 bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, 16))
		err = errno;
	freeaddrinfo(ai);
	if (err) {
		if (fd >= 0)
			close(fd);
		return err;
	}
	*out = fd;
	return 0;
}

int fsmetrics_init(struct fs_mount *m)
{
	m->mx_fd = -1;
	m->mx_wake[0] = m->mx_wake[1] = -1;
	pthread_mutex_init(&m->mx_mu, NULL);
	register_all(m);
	if (!m->o.metrics)
		return 0;
	int err = bind_listener(m->o.metrics, &m->mx_fd);
	if (err) {
		fprintf(stderr, "etcfs: metrics=%s: %s\n", m->o.metrics, strerror(err));
		return err;
	}
	return 0;
}

/* Wait for fd to be ready for ev until deadline (ms, CLOCK_MONOTONIC).
 * 0 ready, ETIMEDOUT, or an errno. */
static int wait_fd(int fd, short ev, int64_t deadline)
{
	for (;;) {
		int64_t left = deadline - clock_mono_ms();
		if (left <= 0)
			return ETIMEDOUT;
		struct pollfd p = {.fd = fd, .events = ev};
		int n = poll(&p, 1, (int)left);
		if (n > 0)
			return 0;
		if (n == 0)
			return ETIMEDOUT;
		if (errno != EINTR)
			return errno;
	}
}

static void send_all(int fd, const char *p, size_t n, int64_t deadline)
{
	while (n > 0) {
		if (wait_fd(fd, POLLOUT, deadline))
			return;
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

static void respond(int fd, int64_t deadline, const char *status, const char *ctype,
		    const char *body, size_t blen)
{
	char hdr[256];
	int hl = snprintf(hdr, sizeof hdr,
			  "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
			  "Connection: close\r\n\r\n",
			  status, ctype, blen);
	send_all(fd, hdr, (size_t)hl, deadline);
	send_all(fd, body, blen, deadline);
}

static void render(struct fs_mount *m, ef_wbuf *out)
{
	pthread_mutex_lock(&m->mx_mu);
	if (m->c) {
		uint64_t f = efc_failovers(m->c);
		if (f > m->mx_failovers) {
			metrics_add(m->mx_failovers_m, f - m->mx_failovers);
			m->mx_failovers = f;
		}
	}
	metrics_render(out);
	pthread_mutex_unlock(&m->mx_mu);
}

/* Read one request (header only) and answer it. */
static void serve_one(struct fs_mount *m, int fd)
{
	static const char text[] = "text/plain; charset=utf-8";
	char buf[MX_HDR_MAX + 1];
	size_t len = 0;
	int64_t deadline = clock_mono_ms() + MX_IO_MS;

	while (!memmem(buf, len, "\r\n\r\n", 4) && !memmem(buf, len, "\n\n", 2)) {
		if (len == MX_HDR_MAX) {
			static const char b[] = "request header too large\n";
			respond(fd, deadline, "431 Request Header Fields Too Large", text, b,
				sizeof b - 1);
			return;
		}
		if (wait_fd(fd, POLLIN, deadline))
			return; /* stalled client: drop it */
		ssize_t r = recv(fd, buf + len, MX_HDR_MAX - len, MSG_DONTWAIT);
		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (r <= 0)
			return;
		len += (size_t)r;
	}
	buf[len] = 0;

	/* Request line: METHOD SP TARGET SP VERSION */
	char *sp1 = strchr(buf, ' ');
	char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
	char *eol = strpbrk(buf, "\r\n");
	if (!sp1 || !sp2 || !eol || sp2 > eol) {
		static const char b[] = "bad request\n";
		respond(fd, deadline, "400 Bad Request", text, b, sizeof b - 1);
		return;
	}
	*sp1 = *sp2 = 0;
	char *target = sp1 + 1;
	char *q = strchr(target, '?');
	if (q)
		*q = 0;
	int get = strcmp(buf, "GET") == 0, head = strcmp(buf, "HEAD") == 0;
	if (strcmp(target, "/metrics") != 0) {
		static const char b[] = "not found: try /metrics\n";
		respond(fd, deadline, "404 Not Found", text, b, sizeof b - 1);
	} else if (!get && !head) {
		static const char b[] = "method not allowed\n";
		respond(fd, deadline, "405 Method Not Allowed", text, b, sizeof b - 1);
	} else {
		ef_wbuf out;
		ef_wbuf_init(&out);
		render(m, &out);
		if (out.err) {
			static const char b[] = "out of memory\n";
			respond(fd, deadline, "500 Internal Server Error", text, b, sizeof b - 1);
		} else {
			char hdr[256];
			int hl = snprintf(hdr, sizeof hdr,
					  "HTTP/1.1 200 OK\r\nContent-Type: text/plain; "
					  "version=0.0.4; charset=utf-8\r\nContent-Length: %zu\r\n"
					  "Connection: close\r\n\r\n",
					  out.len);
			send_all(fd, hdr, (size_t)hl, deadline);
			if (get)
				send_all(fd, (const char *)out.p, out.len, deadline);
		}
		ef_wbuf_free(&out);
	}
}

static void *listener_main(void *arg)
{
	struct fs_mount *m = arg;
	for (;;) {
		struct pollfd p[2] = {{.fd = m->mx_fd, .events = POLLIN},
				      {.fd = m->mx_wake[0], .events = POLLIN}};
		int n = poll(p, 2, -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || p[1].revents)
			break;
		if (!(p[0].revents & POLLIN))
			continue;
		int fd = accept4(m->mx_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue; /* ECONNABORTED, EMFILE, ...: try again */
		serve_one(m, fd);
		shutdown(fd, SHUT_WR);
		close(fd);
	}
	return NULL;
}

int fsmetrics_start(struct fs_mount *m)
{
	if (m->mx_fd < 0)
		return 0;
	if (pipe2(m->mx_wake, O_CLOEXEC))
		return errno;
	int err = pthread_create(&m->mx_thread, NULL, listener_main, m);
	if (err) {
		close(m->mx_wake[0]);
		close(m->mx_wake[1]);
		m->mx_wake[0] = m->mx_wake[1] = -1;
		return err;
	}
	m->mx_started = 1;
	return 0;
}

void fsmetrics_stop(struct fs_mount *m)
{
	if (m->mx_started) {
		ssize_t w;
		do
			w = write(m->mx_wake[1], "x", 1);
		while (w < 0 && errno == EINTR);
		pthread_join(m->mx_thread, NULL);
		m->mx_started = 0;
	}
	if (m->mx_wake[0] >= 0) {
		close(m->mx_wake[0]);
		close(m->mx_wake[1]);
		m->mx_wake[0] = m->mx_wake[1] = -1;
	}
	if (m->mx_fd >= 0) {
		close(m->mx_fd);
		m->mx_fd = -1;
	}
}
