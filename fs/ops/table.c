/*
 * table.c - the mount's `struct fuse_lowlevel_ops` table (fs_ops, which
 * main.c hands to fuse_session_new), the connection's options at init, and
 * the handlers that only forward: directory handles to dir.c, statfs.
 * Every other handler lives in the file of its concern (ops_int.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "ops_int.h"

/* ------------------------------------------------------------------ */
/* directories                                                          */

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs_mount *m = M(req);
	CTR_INC(m, ops[OP_OPENDIR]);
	pthread_mutex_lock(&m->mu);
	struct fs_inode *in = inode_by_ino(m, ino);
	int type = in ? in->type : 0;
	pthread_mutex_unlock(&m->mu);
	if (type != FS_DIR) {
		reply_err(req, in ? ENOTDIR : ESTALE);
		return;
	}
	struct fs_dirh *d;
	int err = dir_open(m, in, &d);
	if (err) {
		reply_err(req, err);
		return;
	}
	fi->fh = (uint64_t)(uintptr_t)d;
	if (fuse_reply_open(req, fi) == -ENOENT)
		dir_close(d);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	struct fs_mount *m = M(req);
	CTR_INC(m, ops[OP_READDIR]);
	int err = dir_read(m, req, (struct fs_dirh *)(uintptr_t)fi->fh, size, off);
	if (err)
		reply_err(req, err);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	CTR_INC(M(req), ops[OP_RELEASEDIR]);
	dir_close((struct fs_dirh *)(uintptr_t)fi->fh);
	reply_err(req, 0);
}

static void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	reply_err(req, 0); /* every change is committed before its syscall returns */
}

/* statfs from the member the mount talks to: the size is the cluster's
 * quota (--quota-backend-bytes; 2 GiB, etcd's default, when there is
 * none), used is the database size in use (what the quota is checked
 * against), files in use are the store's keys.  When the member cannot be
 * asked, the last answer is given again (df must not fail while reads are
 * served from a cache); EIO before any answer. */
#define STATFS_BSIZE 4096
#define STATFS_DEFAULT_QUOTA (2ll << 30)

static int do_statfs(struct fs_mount *m, struct statvfs *sv)
{
	static struct statvfs last;
	static int have_last;
	ef_arena *a = ef_arena_new();
	if (!a)
		return ENOMEM;
	ef_msg rq = {.type = EF_MSG_STATUS}, resp;
	int rv = fs_call(m, &rq, &resp, a);
	struct statvfs n = {0};
	if (rv == 0) {
		const ef_status_resp *s = &resp.u.status_resp;
		int64_t quota = s->quota_bytes > 0 ? s->quota_bytes : STATFS_DEFAULT_QUOTA;
		int64_t used = s->db_size_in_use > 0 ? s->db_size_in_use : s->db_size;
		int64_t avail = quota > used ? quota - used : 0;
		n.f_bsize = n.f_frsize = STATFS_BSIZE;
		n.f_blocks = (fsblkcnt_t)(quota / STATFS_BSIZE);
		n.f_bfree = n.f_bavail = (fsblkcnt_t)(avail / STATFS_BSIZE);
		/* no limit on keys but space: as many more as free blocks */
		n.f_ffree = n.f_favail = n.f_bfree;
		n.f_files = (fsfilcnt_t)(s->keys > 0 ? s->keys : 0) + n.f_ffree;
		n.f_namemax = NAME_MAX;
	}
	ef_arena_free(a);
	pthread_mutex_lock(&m->mu);
	if (rv == 0) {
		last = n;
		have_last = 1;
	} else if (have_last) {
		n = last;
		rv = 0;
	}
	pthread_mutex_unlock(&m->mu);
	if (rv)
		return ef_errno(rv);
	if (m->o.ro)
		n.f_flag |= ST_RDONLY;
	*sv = n;
	return 0;
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct fs_mount *m = M(req);
	CTR_INC(m, ops[OP_STATFS]);
	struct statvfs sv;
	int err = do_statfs(m, &sv);
	if (err)
		reply_err(req, err);
	else
		fuse_reply_statfs(req, &sv);
}

/* ------------------------------------------------------------------ */

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	/* No atomic O_TRUNC: with it the kernel sets i_size to 0 at open, under
	 * the feet of readers sharing the page cache.  Without it O_TRUNC comes
	 * as a SETATTR(size 0) on the new handle, answered with the size those
	 * readers need, and the truncation is part of the one put at close. */
	conn->want &= ~FUSE_CAP_ATOMIC_O_TRUNC;
	/* writes go straight to the handle's buffer (no writeback cache) */
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	if (conn->capable & FUSE_CAP_AUTO_INVAL_DATA)
		conn->want |= FUSE_CAP_AUTO_INVAL_DATA;
}

const struct fuse_lowlevel_ops fs_ops = {
	.init = op_init,
	.lookup = op_lookup,
	.forget = op_forget,
	.forget_multi = op_forget_multi,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.mknod = op_mknod,
	.mkdir = op_mkdir,
	.unlink = op_unlink,
	.rmdir = op_rmdir,
	.rename = op_rename,
	.open = op_open,
	.read = op_read,
	.write = op_write,
	.flush = op_flush,
	.release = op_release,
	.fsync = op_fsync,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.releasedir = op_releasedir,
	.fsyncdir = op_fsyncdir,
	.statfs = op_statfs,
	.setxattr = op_setxattr,
	.getxattr = op_getxattr,
	.listxattr = op_listxattr,
	.removexattr = op_removexattr,
	.create = op_create,
};
