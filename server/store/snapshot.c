/*
 * store/snapshot.c - Raft snapshots of the store: a consistent compacted
 * copy of the LMDB environment streamed to a file descriptor while writes
 * go on, and a received copy installed in place of the current one.
 *
 * store_snapshot_write is called only when a follower needs a snapshot, on
 * the sender's thread, never on the Raft loop.  A copier thread runs
 * mdb_env_copyfd2(MDB_CP_COMPACT) into a pipe under env_lock held shared:
 * one read transaction for the whole copy, which pins every page it sees,
 * so while it runs LMDB cannot reuse freed pages and the data file grows
 * with the writes that go on meanwhile.  The calling thread pumps the pipe
 * into fd and watches that growth: past the bound (a quarter of the file
 * at the start, at least 64 MiB, never into the quota's last half of what
 * is left) it closes its end of the pipe, the copier's next write fails,
 * its read transaction ends and the call fails with EF_E_NO_SPACE; the sender
 * tries again later.  A slow reader therefore never grows the file without
 * limit, and the writer never waits for it.
 *
 * store_snapshot_install takes env_lock exclusively, drains the read pool,
 * closes the environment, renames the new data file over the old one (and
 * fsyncs the directory: the rename is the commit point) and reopens it.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "store_int.h"

struct copier {
	store *s;
	int fd; /* write end of the pipe; closed by the copier */
	int rc;
};

static void *copier_main(void *arg)
{
	struct copier *c = arg;
	sigset_t set;

	/* A write into the pipe after the reader gave up must fail with EPIPE,
	 * not kill the process; LMDB's own writer thread inherits this mask. */
	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	pthread_rwlock_rdlock(&c->s->env_lock);
	c->rc = mdb_env_copyfd2(c->s->env, c->fd, MDB_CP_COMPACT);
	pthread_rwlock_unlock(&c->s->env_lock);
	close(c->fd);
	return NULL;
}

/* How far the data file may grow while the copy's read transaction pins
 * its pages. */
static int64_t growth_bound(store *s, int64_t start)
{
	int64_t b = start / 4, left = (int64_t)s->quota_bytes - start;

	if (b < (64 << 20))
		b = 64 << 20;
	if (left > 0 && b > left / 2)
		b = left / 2;
	return b;
}

int store_snapshot_write(store *s, int fd)
{
	struct copier c = {.s = s, .rc = 0};
	pthread_t t;
	int p[2], rc = 0;
	int64_t start = store_db_size(s), bound = growth_bound(s, start);
	char *buf;

	if (!(buf = malloc(1 << 16)))
		return EF_E_NOMEM;
	if (pipe2(p, O_CLOEXEC)) {
		free(buf);
		return EF_E_IO;
	}
	c.fd = p[1];
	if (pthread_create(&t, NULL, copier_main, &c)) {
		close(p[0]);
		close(p[1]);
		free(buf);
		return EF_E_NOMEM;
	}
	for (;;) {
		ssize_t n = read(p[0], buf, 1 << 16), off = 0;

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n < 0 ? EF_E_IO : 0;
			break;
		}
		while (off < n && !rc) {
			ssize_t w = write(fd, buf + off, (size_t)(n - off));

			if (w < 0 && errno != EINTR)
				rc = EF_E_IO;
			off += w > 0 ? w : 0;
		}
		if (!rc && store_db_size(s) - start > bound)
			rc = EF_E_NO_SPACE;
		if (rc)
			break;
	}
	close(p[0]); /* the copier's next write fails: its read txn ends */
	pthread_join(t, NULL);
	free(buf);
	if (rc)
		return rc;
	return c.rc ? (c.rc == ENOMEM ? EF_E_NOMEM : EF_E_IO) : 0;
}

/* Copy src to dst (dst created/truncated) and fsync it. */
static int copy_file(const char *src, const char *dst)
{
	char buf[1 << 16];
	int in = open(src, O_RDONLY | O_CLOEXEC), out, rc = 0;
	ssize_t n;

	if (in < 0)
		return EF_E_IO;
	out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (out < 0) {
		close(in);
		return EF_E_IO;
	}
	while ((n = read(in, buf, sizeof(buf))) > 0) {
		ssize_t off = 0;

		while (off < n) {
			ssize_t w = write(out, buf + off, (size_t)(n - off));

			if (w < 0) {
				if (errno == EINTR)
					continue;
				rc = EF_E_IO;
				goto done;
			}
			off += w;
		}
	}
	if (n < 0 || fsync(out))
		rc = EF_E_IO;
done:
	close(in);
	if (close(out))
		rc = EF_E_IO;
	return rc;
}

/* Make a rename in dir durable. */
static void store_fsync_dir(const char *dir)
{
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
}

int store_snapshot_install(store *s, const char *path)
{
	char data[4096], tmp[4096], err[256];
	int rc = 0;

	if (snprintf(data, sizeof(data), "%s/data.mdb", s->dir) >= (int)sizeof(data) ||
	    snprintf(tmp, sizeof(tmp), "%s/data.mdb.install", s->dir) >= (int)sizeof(tmp))
		return EF_E_INVALID;
	/* Bring the snapshot next to the data file first, so that the final
	 * step is one rename on the same file system. */
	if (rename(path, tmp)) {
		if (errno != EXDEV)
			return EF_E_IO;
		if ((rc = copy_file(path, tmp)))
			return rc;
	}
	pthread_rwlock_wrlock(&s->env_lock);
	if (s->wtxn) {
		mdb_txn_abort(s->wtxn);
		s->wtxn = NULL;
	}
	store_pool_drain(s);
	mdb_env_close(s->env);
	s->env = NULL;
	s->env_gen++;
	if (rename(tmp, data))
		rc = EF_E_IO;
	else
		store_fsync_dir(s->dir);
	if (store_env_open(s, err, sizeof(err)) && !rc)
		rc = EF_E_IO;
	pthread_rwlock_unlock(&s->env_lock);
	return rc;
}
