/*
 * namespace.c - names that appear, vanish and move: create, mknod, mkdir,
 * unlink, rmdir, rename.
 *
 *  - mknod is a put-if-absent txn of the empty file; O_CREAT|O_EXCL reserves
 *    the name in the cluster (kv_excl_reserve: exactly one winner, at open)
 *    and, like a plain create, stays local (FS_PENDING) until its first
 *    commit (file.c) puts the content: no reader anywhere sees an empty
 *    value nobody wrote (cp opens with O_EXCL); editor
 *    temporaries stay local for good (FS_TEMP) unless -o tmpfiles=cluster,
 *    so editors' save-by-rename flows leave no junk keys in the cluster.
 *  - mkdir puts the directory's marker key (the prefix itself, empty).
 *  - a file rename is one txn (delete the source at the revision read, put
 *    the destination); a directory rename is one txn over every key below
 *    it, or EXDEV past one request's limits so mv copies instead.
 *  - the reflector's requests (reflect.c) replay what already happened:
 *    they update the inode table and never write to the cluster.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ops_int.h"

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

/* ------------------------------------------------------------------ */
/* create, mknod, mkdir                                                 */

/* Create the file (parent, name).  excl: put-if-absent in the cluster now. */
static int do_create(struct fs_mount *m, fuse_req_t req, fuse_ino_t parent, const char *name,
		     int excl, int mknod, struct fuse_entry_param *e, struct fs_handle **hout)
{
	struct target t;
	int err = ops_target_make(m, parent, name, &t);
	if (err)
		return err;
	if (t.kind == NAME_CHUNK) {
		ops_target_free(&t);
		return EINVAL;
	}
	int reflector = reflect_is_me(m, req);
	int temp = !reflector && !m->o.tmp_cluster && names_is_temp(name);
	if (!temp && !reflector && m->o.ro) {
		ops_target_free(&t);
		return EROFS;
	}
	int64_t rev = 0;
	uint8_t *xkey = NULL;
	uint32_t xklen = 0;
	uint64_t xtok = 0;
	if (excl && !temp && !reflector && mknod) {
		/* mknod(2) makes an empty file: the empty value is what was written */
		int rv = kv_put(m, t.fk, t.fklen, (const uint8_t *)"", 0, 0, 0, 0, &rev);
		if (rv) {
			ops_target_free(&t);
			return ef_errno(rv);
		}
	} else if (excl && !temp && !reflector) {
		/* O_EXCL: one winner now, the content published at close (kv.c) */
		int rv = kv_excl_reserve(m, t.fk, t.fklen, &xkey, &xklen, &xtok);
		if (rv) {
			ops_target_free(&t);
			return ef_errno(rv);
		}
	}
	pthread_mutex_lock(&m->mu);
	struct fs_inode *in = inode_get(m, FS_FILE, t.fk, t.fklen);
	if (!in) {
		pthread_mutex_unlock(&m->mu);
		if (xkey)
			kv_excl_release(m, xkey, xklen, xtok);
		free(xkey);
		ops_target_free(&t);
		return ENOMEM;
	}
	if (!reflector) {
		free(in->xkey); /* an older reservation of this name is forgotten: its
				   lease frees it */
		in->xkey = xkey;
		in->xklen = xklen;
		in->xtok = xtok;
	}
	if (reflector) {
		int ex;
		ef_kv kv;
		uint64_t size;
		if (ops_view_find(m, FS_FILE, t.fk, t.fklen, &ex, &kv, &size))
			inode_set_kv(in, &kv, size);
	} else if (rev) {
		ef_kv kv = {.mod_revision = rev,
			    .create_revision = rev,
			    .version = 1,
			    .mod_time_ns = clock_wall_ns()};
		inode_set_kv(in, &kv, 0);
		in->local = FS_REMOTE;
	} else {
		in->gen++; /* a new file: whatever was open under this name is another one */
		free(in->ldata);
		in->ldata = NULL;
		in->llen = 0;
		in->local = temp ? FS_TEMP : FS_PENDING;
		in->ltime_ns = clock_wall_ns();
		inode_set_absent(in);
	}
	struct fs_handle *h = NULL;
	if (hout) {
		h = ops_handle_new(in);
		if (!h) {
			pthread_mutex_unlock(&m->mu);
			ops_target_free(&t);
			return ENOMEM;
		}
		h->writable = 1;
		h->rev = rev;
		h->reflect = reflector;
		h->xtok = reflector ? 0 : xtok;
		in->nwriters++;
		h->wcounted = 1;
	}
	ops_fill_entry(m, in, e);
	if (reflector)
		e->attr_timeout = ATTR_TIMEOUT;
	int pending = !reflector && !rev;
	pthread_mutex_unlock(&m->mu);
	if (h && pending) {
		pthread_mutex_lock(&h->mu);
		ops_mark_dirty(m, h); /* created and closed with no write: stores an empty value */
		pthread_mutex_unlock(&h->mu);
	}
	if (hout)
		*hout = h;
	ops_target_free(&t);
	return 0;
}

void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
	       struct fuse_file_info *fi)
{
	struct fs_mount *m = M(req);
	CTR_INC(m, ops[OP_CREATE]);
	struct fuse_entry_param e;
	struct fs_handle *h = NULL;
	int err = do_create(m, req, parent, name, (fi->flags & O_EXCL) != 0, 0, &e, &h);
	if (err) {
		reply_err(req, err);
		return;
	}
	h->append = (fi->flags & O_APPEND) != 0;
	h->notappend = !h->append;
	fi->fh = (uint64_t)(uintptr_t)h;
	fi->direct_io = 1;
	if (fuse_reply_create(req, &e, fi) == -ENOENT)
		ops_handle_free(h);
}

void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	struct fs_mount *m = M(req);
	CTR_INC(m, ops[OP_MKNOD]);
	if (!S_ISREG(mode)) {
		reply_err(req, EPERM);
		return;
	}
	struct fuse_entry_param e;
	/* mknod(2) of a regular file: an empty key, put-if-absent */
	int err = do_create(m, req, parent, name, 1, 1, &e, NULL);
	if (err) {
		reply_err(req, err);
		return;
	}
	/* a pending (local) mknod is committed at once: nothing will close it */
	pthread_mutex_lock(&m->mu);
	struct fs_inode *in = inode_by_ino(m, e.ino);
	int pending = in && in->local == FS_PENDING;
	pthread_mutex_unlock(&m->mu);
	if (pending) {
		struct fs_handle *h = ops_handle_new(in);
		if (h) {
			h->writable = 1;
			pthread_mutex_lock(&h->mu);
			ops_mark_dirty(m, h);
			err = ops_commit(m, h);
			ops_clear_dirty(m, h);
			pthread_mutex_unlock(&h->mu);
			ops_handle_free(h);
		}
	}
	fuse_reply_entry(req, &e);
}

static int do_mkdir(struct fs_mount *m, fuse_req_t req, fuse_ino_t parent, const char *name,
		    struct fuse_entry_param *e)
{
	struct target t;
	int err = ops_target_make(m, parent, name, &t);
	if (err)
		return err;
	if (t.kind != NAME_ANY) {
		ops_target_free(&t);
		return EINVAL;
	}
	if (!reflect_is_me(m, req)) {
		if (m->o.ro) {
			ops_target_free(&t);
			return EROFS;
		}
		/* the directory marker: the prefix key itself, empty value */
		int rv = kv_put(m, t.dk, t.dklen, (const uint8_t *)"", 0, -1, 0, 0, NULL);
		if (rv) {
			ops_target_free(&t);
			return ef_errno(rv);
		}
	}
	pthread_mutex_lock(&m->mu);
	struct fs_inode *in = inode_get(m, FS_DIR, t.dk, t.dklen);
	if (in)
		ops_fill_entry(m, in, e);
	pthread_mutex_unlock(&m->mu);
	ops_target_free(&t);
	return in ? 0 : ENOMEM;
}

void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct fs_mount *m = M(req);
	CTR_INC(m, ops[OP_MKDIR]);
	struct fuse_entry_param e;
	int err = do_mkdir(m, req, parent, name, &e);
	if (err)
		reply_err(req, err);
	else
		fuse_reply_entry(req, &e);
}

/* ------------------------------------------------------------------ */
/* unlink, rmdir                                                        */

/* A file closed with its value still to store at release (created or
 * O_TRUNC'ed, nothing written: ops/file.c, op_flush) is committed by the
 * RELEASE the kernel sends after close returns, possibly after the next
 * syscall on the name: unlink and rename wait for it, or the commit could
 * land after them (create, close, unlink left the key behind). */
static void wait_late(struct fs_mount *m, fuse_req_t req, const uint8_t *fk, uint32_t fklen)
{
	if (reflect_is_me(m, req))
		return;
	pthread_mutex_lock(&m->mu);
	struct fs_inode *in = inode_find(m, FS_FILE, fk, fklen);
	struct timespec dl = clock_after_ms(CLOCK_REALTIME, 2000);
	while (in && in->nlate && pthread_cond_timedwait(&m->own_cv, &m->mu, &dl) != ETIMEDOUT)
		;
	pthread_mutex_unlock(&m->mu);
}

static int do_unlink(struct fs_mount *m, fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct target t;
	int err = ops_target_make(m, parent, name, &t);
	if (err)
		return err;
	int reflector = reflect_is_me(m, req);
	wait_late(m, req, t.fk, t.fklen);
	pthread_mutex_lock(&m->mu);
	struct fs_inode *in = inode_find(m, FS_FILE, t.fk, t.fklen);
	int local = in && in->local;
	if (reflector || local) {
		uint8_t *xkey = NULL;
		uint32_t xklen = 0;
		uint64_t xtok = 0;
		if (in && !reflector) {
			/* a file created with O_EXCL and removed before its close */
			xkey = in->xkey;
			xklen = in->xklen;
			xtok = in->xtok;
			in->xkey = NULL;
			in->xtok = 0;
		}
		if (in) {
			in->local = FS_REMOTE;
			free(in->ldata);
			in->ldata = NULL;
			in->llen = 0;
			inode_set_absent(in);
			in->gen++;
		}
		pthread_mutex_unlock(&m->mu);
		if (xkey)
			kv_excl_release(m, xkey, xklen, xtok);
		free(xkey);
		ops_target_free(&t);
		return 0;
	}
	pthread_mutex_unlock(&m->mu);
	if (m->o.ro) {
		ops_target_free(&t);
		return EROFS;
	}
	int64_t deleted = 0;
	int rv = kv_delete(m, t.fk, t.fklen, &deleted);
	if (rv == 0) {
		pthread_mutex_lock(&m->mu);
		in = inode_find(m, FS_FILE, t.fk, t.fklen);
		if (in) {
			inode_set_absent(in);
			in->gen++;
		}
		pthread_mutex_unlock(&m->mu);
	}
	ops_target_free(&t);
	if (rv)
		return ef_errno(rv);
	if (deleted)
		ops_linger_mark(m, parent);
	return deleted ? 0 : ENOENT;
}

void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	CTR_INC(M(req), ops[OP_UNLINK]);
	reply_err(req, do_unlink(M(req), req, parent, name));
}

static int do_rmdir(struct fs_mount *m, fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct target t;
	int err = ops_target_make(m, parent, name, &t);
	if (err)
		return err;
	if (reflect_is_me(m, req)) {
		ops_linger_clear(m, &t);
		ops_target_free(&t);
		return 0;
	}
	if (m->o.ro) {
		ops_target_free(&t);
		return EROFS;
	}
	int ne = 0;
	int rv = kv_prefix_nonempty(m, t.dk, t.dklen, 0, t.dk, t.dklen, &ne);
	if (rv == 0 && !ne) {
		/* local files below it count too */
		pthread_mutex_lock(&m->mu);
		for (uint64_t i = 2; i <= m->nino && !ne; i++) {
			struct fs_inode *in = m->byino[i];
			if (in && in->hashed && in->local && in->klen > t.dklen &&
			    memcmp(in->key, t.dk, t.dklen) == 0)
				ne = 1;
		}
		pthread_mutex_unlock(&m->mu);
	}
	if (rv == 0 && ne)
		err = ENOTEMPTY;
	else if (rv == 0)
		rv = kv_delete(m, t.dk, t.dklen, NULL);
	if (rv == 0 && !err) {
		ops_linger_clear(m, &t);
		ops_linger_mark(m, parent);
	}
	ops_target_free(&t);
	return rv ? ef_errno(rv) : err;
}

void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	CTR_INC(M(req), ops[OP_RMDIR]);
	reply_err(req, do_rmdir(M(req), req, parent, name));
}

/* ------------------------------------------------------------------ */
/* rename                                                               */

static int txn_run(struct fs_mount *m, ef_compare *cmp, uint32_t ncmp, ef_op *ops, uint32_t nops,
		   int64_t *rev, int *succeeded)
{
	ef_arena *a = ef_arena_new();
	if (!a)
		return EF_E_NOMEM;
	ef_msg req = {.type = EF_MSG_TXN}, resp;
	req.u.txn.cmp = cmp;
	req.u.txn.n_cmp = ncmp;
	req.u.txn.success = ops;
	req.u.txn.n_success = nops;
	int rv = kv_write(m, &req, &resp, a);
	if (rv == 0) {
		*rev = resp.hdr.revision;
		*succeeded = resp.u.txn_resp.succeeded;
	}
	ef_arena_free(a);
	return rv;
}

static int rename_file(struct fs_mount *m, struct target *s, struct target *d, const char *newname,
		       unsigned flags)
{
	int dest_temp = !m->o.tmp_cluster && names_is_temp(newname);
	for (int attempt = 0; attempt < 5; attempt++) {
		pthread_mutex_lock(&m->mu);
		struct fs_inode *in = inode_find(m, FS_FILE, s->fk, s->fklen);
		int local = in && in->hashed ? in->local : 0;
		uint8_t *ldata = NULL;
		size_t llen = 0;
		if (local == FS_TEMP) {
			llen = in->llen;
			ldata = malloc(llen ? llen : 1);
			if (ldata)
				fs_memcpy(ldata, in->ldata, llen);
		}
		pthread_mutex_unlock(&m->mu);
		if (local == FS_TEMP && !ldata)
			return ENOMEM;
		struct kv_val v = {0};
		if (!local) {
			int rv = kv_get(m, s->fk, s->fklen, 0, &v);
			if (rv)
				return ef_errno(rv);
			if (!v.exists)
				return ENOENT;
		} else if (local == FS_TEMP) {
			v.val = ldata;
			v.vlen = (uint32_t)llen;
		}
		ef_compare cmp[2] = {{0}};
		ef_op ops[2] = {{0}};
		uint32_t nc = 0, no = 0;
		if (!local) {
			cmp[nc++] = (ef_compare){.result = EF_CMP_EQUAL,
						 .target = EF_CMP_MOD,
						 .key = {s->fk, s->fklen},
						 .number = v.kv.mod_revision};
			ops[no].type = EF_OP_DELETE;
			ops[no++].u.del.key = (ef_buf){s->fk, s->fklen};
		}
		if (!dest_temp && local != FS_PENDING) {
			ops[no].type = EF_OP_PUT;
			ops[no].u.put.key = (ef_buf){d->fk, d->fklen};
			ops[no].u.put.value = (ef_buf){v.val, v.vlen};
			ops[no++].u.put.lease = v.kv.lease;
			if (flags & RENAME_NOREPLACE)
				cmp[nc++] = (ef_compare){.result = EF_CMP_EQUAL,
							 .target = EF_CMP_CREATE,
							 .key = {d->fk, d->fklen},
							 .number = 0};
		} else if (!m->o.ro) {
			/* the name leaves the cluster (it may have been a key) */
			ops[no].type = EF_OP_DELETE;
			ops[no++].u.del.key = (ef_buf){d->fk, d->fklen};
		}
		int64_t rev = 0;
		int ok = 1;
		if (no && (local != FS_TEMP || !dest_temp)) {
			if (m->o.ro) {
				free(v.val);
				return EROFS;
			}
			int rv = txn_run(m, cmp, nc, ops, no, &rev, &ok);
			if (rv) {
				free(v.val);
				return ef_errno(rv);
			}
		}
		if (!ok) {
			free(v.val);
			if (flags & RENAME_NOREPLACE) {
				struct kv_val dv;
				if (kv_get(m, d->fk, d->fklen, 0, &dv) == 0 && dv.exists) {
					free(dv.val);
					return EEXIST;
				}
				free(dv.val);
			}
			continue; /* the source changed under us: read it again */
		}
		pthread_mutex_lock(&m->mu);
		in = inode_get(m, FS_FILE, s->fk, s->fklen);
		int err = in ? inode_rekey(m, in, d->fk, d->fklen) : ENOMEM;
		if (!err) {
			if (dest_temp) {
				in->local = FS_TEMP;
				free(in->ldata);
				in->ldata = v.val;
				in->llen = v.vlen;
				v.val = NULL;
				in->ltime_ns =
					v.kv.mod_time_ns ? v.kv.mod_time_ns : clock_wall_ns();
			} else if (local != FS_PENDING) {
				in->local = FS_REMOTE;
				free(in->ldata);
				in->ldata = NULL;
				ef_kv kv = {.mod_revision = rev,
					    .create_revision = rev,
					    .version = 1,
					    .lease = v.kv.lease,
					    .mod_time_ns = clock_wall_ns()};
				inode_set_kv(in, &kv, v.vlen);
			}
		}
		pthread_mutex_unlock(&m->mu);
		free(v.val);
		return err;
	}
	return EBUSY;
}

static int rename_dir(struct fs_mount *m, struct target *s, struct target *d, unsigned flags)
{
	if (d->dklen >= s->dklen && memcmp(d->dk, s->dk, s->dklen) == 0)
		return EINVAL; /* into itself */
	for (int attempt = 0; attempt < 5; attempt++) {
		int ne = 0;
		int rv = kv_prefix_nonempty(m, d->dk, d->dklen, 0, d->dk, d->dklen, &ne);
		if (rv)
			return ef_errno(rv);
		if (ne)
			return (flags & RENAME_NOREPLACE) ? EEXIST : ENOTEMPTY;
		ef_arena *a = ef_arena_new();
		if (!a)
			return ENOMEM;
		ef_msg req = {.type = EF_MSG_RANGE}, resp;
		req.u.range.key = (ef_buf){s->dk, s->dklen};
		req.u.range.range_end = ef_prefix_end(a, req.u.range.key);
		req.u.range.limit = FS_RENAME_DIR_MAX_KEYS + 1;
		rv = fs_call(m, &req, &resp, a);
		if (rv) {
			ef_arena_free(a);
			return ef_errno(rv);
		}
		ef_range_resp *r = &resp.u.range_resp;
		if (r->n_kvs > FS_RENAME_DIR_MAX_KEYS) {
			ef_arena_free(a);
			return EXDEV; /* mv falls back to copy and remove */
		}
		uint32_t n = r->n_kvs;
		ef_compare *cmp = ef_arena_alloc(a, sizeof *cmp * (n + 1));
		ef_op *ops = ef_arena_alloc(a, sizeof *ops * (n + 1));
		if (!cmp || !ops) {
			ef_arena_free(a);
			return ENOMEM;
		}
		int err = 0;
		for (uint32_t i = 0; i < n && !err; i++) {
			ef_kv *kv = &r->kvs[i];
			cmp[i] = (ef_compare){.result = EF_CMP_EQUAL,
					      .target = EF_CMP_MOD,
					      .key = kv->key,
					      .number = kv->mod_revision};
			uint32_t nl = d->dklen + kv->key.n - s->dklen;
			uint8_t *nk = ef_arena_alloc(a, nl + 1);
			if (!nk) {
				err = ENOMEM;
				break;
			}
			fs_memcpy(nk, d->dk, d->dklen);
			fs_memcpy(nk + d->dklen, kv->key.p + s->dklen, kv->key.n - s->dklen);
			ops[i].type = EF_OP_PUT;
			ops[i].u.put.key = (ef_buf){nk, nl};
			ops[i].u.put.value = kv->value;
			ops[i].u.put.lease = kv->lease;
		}
		if (err) {
			ef_arena_free(a);
			return err;
		}
		ops[n].type = EF_OP_DELETE;
		ops[n].u.del.key = (ef_buf){s->dk, s->dklen};
		ops[n].u.del.range_end = ef_prefix_end(a, ops[n].u.del.key);
		int64_t rev;
		int ok = 0;
		rv = n ? txn_run(m, cmp, n, ops, n + 1, &rev, &ok) : 0;
		ef_arena_free(a);
		if (rv == EF_E_TOO_MANY_OPS || rv == EF_E_REQUEST_TOO_LARGE || rv == EF_E_TOO_LARGE)
			return EXDEV; /* over a server limit (values too big for one request,
					 or a smaller --max-txn-ops): nothing moved, mv copies */
		if (rv)
			return ef_errno(rv);
		if (n && !ok)
			continue;
		pthread_mutex_lock(&m->mu);
		err = inode_rekey_prefix(m, s->dk, s->dklen, d->dk, d->dklen);
		pthread_mutex_unlock(&m->mu);
		return err;
	}
	return EBUSY;
}

static int do_rename(struct fs_mount *m, fuse_req_t req, fuse_ino_t parent, const char *name,
		     fuse_ino_t newparent, const char *newname, unsigned flags)
{
	if (flags & RENAME_EXCHANGE)
		return EINVAL;
	struct target s, d;
	int err = ops_target_make(m, parent, name, &s);
	if (err)
		return err;
	err = ops_target_make(m, newparent, newname, &d);
	if (err) {
		ops_target_free(&s);
		return err;
	}
	if (s.kind == NAME_CHUNK || d.kind == NAME_CHUNK) {
		err = EINVAL;
		goto out;
	}
	wait_late(m, req, s.fk, s.fklen);
	/* Is the source a directory?  The kernel looked it up just before. */
	pthread_mutex_lock(&m->mu);
	struct fs_inode *fin = inode_find(m, FS_FILE, s.fk, s.fklen);
	struct fs_inode *din = inode_find(m, FS_DIR, s.dk, s.dklen);
	int is_dir = s.kind != NAME_FILE && din && din->nlookup > 0 &&
		     !(fin && fin->local && fin->hashed);
	if (reflect_is_me(m, req)) {
		if (is_dir)
			err = inode_rekey_prefix(m, s.dk, s.dklen, d.dk, d.dklen);
		else if (fin)
			err = inode_rekey(m, fin, d.fk, d.fklen);
		pthread_mutex_unlock(&m->mu);
		goto out;
	}
	pthread_mutex_unlock(&m->mu);
	if (is_dir)
		err = m->o.ro ? EROFS : rename_dir(m, &s, &d, flags);
	else
		err = rename_file(m, &s, &d, newname, flags);
	if (!err)
		ops_linger_mark(m, parent);
out:
	ops_target_free(&s);
	ops_target_free(&d);
	return err;
}

void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
	       const char *newname, unsigned int flags)
{
	CTR_INC(M(req), ops[OP_RENAME]);
	reply_err(req, do_rename(M(req), req, parent, name, newparent, newname, flags));
}
