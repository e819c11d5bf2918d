/*
 * store/snapshot.c - Raft snapshots of the store: the whole LMDB
 * environment copied (compacted) to a file descriptor, and a received copy
 * installed in place of the current one.
 *
 * store_snapshot_write runs mdb_env_copyfd2 under env_lock held shared:
 * one read transaction for the whole copy, which pins the pages it sees
 * for as long as the copy takes (the file may grow meanwhile).
 * store_snapshot_install takes env_lock exclusively, drains the read pool,
 * closes the environment, renames the new data file over the old one and
 * reopens it; the rename is the commit point.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

#include "store_int.h"

int store_snapshot_write(store *s, int fd)
{
	int rc;

	pthread_rwlock_rdlock(&s->env_lock);
	rc = mdb_env_copyfd2(s->env, fd, MDB_CP_COMPACT);
	pthread_rwlock_unlock(&s->env_lock);
	return rc ? (rc == ENOMEM ? EF_E_NOMEM : EF_E_IO) : 0;
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
	if (store_env_open(s, err, sizeof(err)) && !rc)
		rc = EF_E_IO;
	pthread_rwlock_unlock(&s->env_lock);
	return rc;
}
