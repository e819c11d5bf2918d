/*
 * file.c - open files: open, read, write, flush, fsync, release, and
 * setattr (truncate), with the one commit of a buffered file.
 *
 *  - open reads the whole value once (linearizable by default) into the
 *    handle; reads are served from that snapshot, or from a newer whole
 *    revision at the few points where a reader cannot mix them (read_follow),
 *    so a reader never sees a mix of two revisions.  The kernel page cache
 *    is kept (keep_cache) only when the revision is the one the kernel
 *    already holds.
 *  - a commit replaces the key's value only as the writer meant it: whole
 *    rewrites win, appends go after the current value, writes that keep
 *    bytes of a value changed since open fail with ESTALE (ops_commit); a
 *    file created here and never committed vanishes when its commit fails.
 *  - writes go to the handle's buffer; flush (every close) and fsync commit
 *    the buffer with ONE put (a txn when optimistic concurrency is asked),
 *    and only then return, so close() reports EIO/EFBIG/EACCES/EROFS/ESTALE.
 *    Readers that reload on CLOSE_WRITE thus never see a half-written value
 *    (../shared/NOTES-fuse.md, "Consequences worth designing for").
 *  - a truncate with no open handle is a read-modify-write of the key
 *    (kv_update, kv.c).
 *  - the reflector's opens and writes (reflect.c) only make the kernel's
 *    events: its handles never commit.
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

#include "../cache.h"
#include "ops_int.h"

/* ------------------------------------------------------------------ */
/* handles and commits                                                  */

static int buf_resize(struct fs_handle *h, size_t n)
{
	if (n > h->cap) {
		size_t nc = h->cap ? h->cap : 4096;
		while (nc < n)
			nc *= 2;
		uint8_t *p = realloc(h->data, nc);
		if (!p)
			return ENOMEM;
		h->data = p;
		h->cap = nc;
	}
	if (n > h->len)
		memset(h->data + h->len, 0, n - h->len);
	h->len = n;
	return 0;
}

static void unfresh_locked(struct fs_handle *h)
{
	for (struct fs_handle **pp = &h->in->fresh; *pp; pp = &(*pp)->fnext)
		if (*pp == h) {
			*pp = h->fnext;
			h->fnext = NULL;
			return;
		}
}

static void unfresh(struct fs_mount *m, struct fs_handle *h)
{
	pthread_mutex_lock(&m->mu);
	unfresh_locked(h);
	pthread_mutex_unlock(&m->mu);
}

void ops_mark_dirty(struct fs_mount *m, struct fs_handle *h)
{
	/* h->mu held */
	pthread_mutex_lock(&m->mu);
	if (!h->dirty)
		h->in->ndirty++;
	pthread_mutex_unlock(&m->mu);
	h->dirty = 1;
}

void ops_clear_dirty(struct fs_mount *m, struct fs_handle *h)
{
	/* h->mu held */
	if (!h->dirty)
		return;
	pthread_mutex_lock(&m->mu);
	if (h->in->ndirty > 0)
		h->in->ndirty--;
	pthread_mutex_unlock(&m->mu);
	h->dirty = 0;
}

struct inval_job {
	struct fuse_session *se;
	uint64_t parent;
	char name[NAME_MAX + 1];
};

static void *inval_thread(void *arg)
{
	struct inval_job *j = arg;
	fuse_lowlevel_notify_inval_entry(j->se, j->parent, j->name, strlen(j->name));
	free(j);
	return NULL;
}

/* Make the kernel forget parent/name, from a thread of its own: the
 * kernel takes the directory's lock for it, which a request being answered
 * (or a process waiting for its answer) may hold, so a handler must not
 * wait for it (libfuse: fuse_lowlevel_notify_inval_entry). */
static void inval_entry_async(struct fs_mount *m, uint64_t parent, const char *name)
{
	struct inval_job *j = calloc(1, sizeof *j);
	if (!j)
		return; /* the entry times out by itself (ENTRY_TIMEOUT) */
	j->se = m->se;
	j->parent = parent;
	snprintf(j->name, sizeof j->name, "%s", name);
	pthread_t t;
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &at, inval_thread, j))
		free(j);
	pthread_attr_destroy(&at);
}

/* A file created here failed its first commit: it never reached the
 * cluster, so it vanishes from this mount too (a failed cp or `cat >`
 * leaves nothing behind), its O_EXCL reservation is dropped and the
 * kernel forgets the name. */
static void pending_drop(struct fs_mount *m, struct fs_handle *h)
{
	struct fs_inode *in = h->in;
	char name[NAME_MAX + 1] = "";
	pthread_mutex_lock(&m->mu);
	if (in->gen != h->gen || in->local != FS_PENDING) {
		pthread_mutex_unlock(&m->mu);
		return;
	}
	uint8_t *xkey = in->xkey;
	uint32_t xklen = in->xklen;
	uint64_t xtok = in->xtok;
	in->xkey = NULL;
	in->xtok = 0;
	in->local = FS_REMOTE;
	inode_set_absent(in);
	in->gen++;
	uint32_t s = in->klen;
	while (s > m->plen && in->key[s - 1] != '/')
		s--;
	struct fs_inode *p =
		s == m->plen ? inode_by_ino(m, FUSE_ROOT_ID) : inode_find(m, FS_DIR, in->key, s);
	uint64_t pino = p ? p->ino : 0;
	if (names_encode(in->key + s, in->klen - s, NAME_ANY, name) != in->klen - s)
		pino = 0; /* a "%+" chunk: the entry times out by itself */
	pthread_mutex_unlock(&m->mu);
	if (xkey)
		kv_excl_release(m, xkey, xklen, xtok);
	free(xkey);
	if (pino)
		inval_entry_async(m, pino, name);
}

/* kv_update callback of an O_APPEND commit: the value current now, then
 * the bytes this handle appended. */
struct append_arg {
	const uint8_t *tail;
	size_t tlen, max;
	int64_t base_rev; /* the key existed at open (>0): gone now is ESTALE */
	uint8_t *result;  /* the value put by the last attempt (ours) */
	size_t rlen;
};

static int append_value(const struct kv_val *cur, struct kv_change *out, void *arg)
{
	struct append_arg *a = arg;
	if (!cur->exists && a->base_rev > 0)
		return ESTALE; /* deleted since open */
	size_t clen = cur->exists ? cur->vlen : 0;
	if (clen + a->tlen > a->max)
		return EFBIG;
	uint8_t *nv = malloc(clen + a->tlen + 1);
	if (!nv)
		return ENOMEM;
	fs_memcpy(nv, cur->val, clen);
	fs_memcpy(nv + clen, a->tail, a->tlen);
	free(a->result);
	a->result = nv;
	a->rlen = clen + a->tlen;
	out->val = nv;
	out->vlen = (uint32_t)a->rlen;
	return 0;
}

/* Write the handle's buffer back as one put.  h->mu held.  Returns an errno.
 *
 * Which value the put may replace depends on what the buffer keeps of its
 * base, the value at h->rev:
 *  - nothing (O_TRUNC, a truncate to 0, or writes from offset 0 covering
 *    every base byte left): a whole rewrite, last writer wins;
 *  - only appends (O_APPEND, no truncate): the appended bytes go after the
 *    value current at commit (kv_update: compare-and-swap, retried);
 *  - anything else keeps base bytes: put only if the key is still at
 *    h->rev, else ESTALE and nothing changes (a mix of the old value and
 *    this writer's bytes would be a value nobody wrote);
 *  - with -o occ or user.etcfs.occ every commit compares h->rev. */
int ops_commit(struct fs_mount *m, struct fs_handle *h)
{
	if (h->err) {
		pending_drop(m, h); /* a file created here and never committed */
		return h->err;      /* never store a prefix of what the writer meant */
	}
	if (!h->dirty || h->reflect)
		return 0;
	struct fs_inode *in = h->in;
	pthread_mutex_lock(&m->mu);
	int local = in->local, occ = m->o.occ || in->occ;
	int stale = in->gen != h->gen;
	uint32_t klen = in->klen;
	uint8_t *key = malloc(klen + 1);
	if (key)
		fs_memcpy(key, in->key, klen);
	uint8_t *xkey = NULL;
	uint32_t xklen = in->xklen;
	uint64_t xtok = in->xtok;
	if (!stale && local == FS_PENDING && in->xkey) {
		xkey = malloc(xklen + 1);
		if (xkey)
			fs_memcpy(xkey, in->xkey, xklen);
	}
	if (!stale && local == FS_TEMP && key) {
		uint8_t *d = malloc(h->len ? h->len : 1);
		if (d) {
			fs_memcpy(d, h->data, h->len);
			free(in->ldata);
			in->ldata = d;
			in->llen = h->len;
			in->ltime_ns = clock_wall_ns();
		}
		pthread_mutex_unlock(&m->mu);
		free(key);
		if (!d)
			return ENOMEM;
		ops_clear_dirty(m, h);
		return 0;
	}
	pthread_mutex_unlock(&m->mu);
	int err = 0;
	if (!key || (local == FS_PENDING && xtok && !xkey))
		err = ENOMEM;
	else if (stale)
		ops_clear_dirty(m, h); /* unlinked or replaced since open: like a write
					  to an unlinked file */
	else if (m->o.ro)
		err = EROFS;
	else if (h->len > FS_VALUE_MAX(klen))
		err = EFBIG;
	if (stale && h->xtok) {
		/* created here with O_EXCL and replaced by a remote put of the
		 * name before this first commit: the create lost (had the
		 * user unlinked it, the reservation would be gone) */
		pthread_mutex_lock(&m->mu);
		int lost = in->xtok == h->xtok;
		uint8_t *xk = lost ? in->xkey : NULL;
		uint32_t xkl = in->xklen;
		if (lost) {
			in->xkey = NULL;
			in->xtok = 0;
		}
		pthread_mutex_unlock(&m->mu);
		if (xk)
			kv_excl_release(m, xk, xkl, h->xtok);
		free(xk);
		h->xtok = 0;
		if (lost)
			err = EEXIST;
	}
	if (err || stale) {
		free(key);
		free(xkey);
		return err;
	}
	int whole = h->wcover >= h->basekeep;
	int appending = !occ && !whole && local == FS_REMOTE && h->append && !h->notappend &&
			h->len >= h->blen;
	int64_t rev = 0, expect = occ || !whole ? h->rev : -1;
	int rv = 0;
	ef_kv akv;
	uint64_t asize = 0;
	struct append_arg aa = {.max = FS_VALUE_MAX(klen), .base_rev = h->rev};
	if (xkey) {
		rv = kv_excl_commit(m, key, klen, xkey, xklen, xtok, h->data, (uint32_t)h->len,
				    h->lease, &rev);
	} else if (appending) {
		aa.tail = h->data + h->blen;
		aa.tlen = h->len - h->blen;
		err = kv_update(m, key, klen, append_value, &aa, &akv, &asize);
		if (!err) {
			free(h->data); /* the buffer becomes the value put */
			h->data = aa.result;
			h->len = h->cap = aa.rlen;
			aa.result = NULL;
			rev = akv.mod_revision;
			h->lease = akv.lease;
		}
		free(aa.result);
	} else {
		rv = kv_put(m, key, klen, h->data, (uint32_t)h->len, expect, 0, h->lease, &rev);
		if (rv == EF_E_LEASE_NOT_FOUND && h->lease) {
			h->lease = 0; /* the lease expired meanwhile: store without it */
			rv = kv_put(m, key, klen, h->data, (uint32_t)h->len, expect, 0, 0, &rev);
		}
		if (rv == EF_E_EXISTS)
			rv = EF_E_TXN_FAILED; /* created by someone else since open */
	}
	free(key);
	free(xkey);
	if (rv)
		err = ef_errno(rv);
	if (err) {
		if (local == FS_PENDING)
			pending_drop(m, h);
		return err;
	}
	pthread_mutex_lock(&m->mu);
	int was_new = !in->known || !in->exists || in->local;
	in->local = FS_REMOTE;
	free(in->xkey);
	in->xkey = NULL;
	in->xtok = 0;
	ef_kv kv = {.mod_revision = rev,
		    .create_revision = was_new ? rev : in->create_rev,
		    .version = was_new ? 1 : in->version + 1,
		    .lease = h->lease,
		    .mod_time_ns = clock_wall_ns()};
	if (appending)
		kv = akv;
	/* the watch (its own connection) may already have brought this
	 * revision, with its value, or a later one: never step back */
	if (was_new || !in->known || in->mod_rev < rev)
		inode_set_kv(in, &kv, h->len);
	pthread_mutex_unlock(&m->mu);
	h->rev = rev;
	h->basekeep = h->blen = h->len; /* the buffer is now the value at h->rev */
	h->wcover = 0;
	h->notappend = !h->append;
	h->xtok = 0;
	ops_clear_dirty(m, h);
	CTR_INC(m, commits);
	return 0;
}

struct fs_handle *ops_handle_new(struct fs_inode *in)
{
	struct fs_handle *h = calloc(1, sizeof *h);
	if (!h)
		return NULL;
	pthread_mutex_init(&h->mu, NULL);
	h->in = in;
	h->gen = in->gen;
	return h;
}

void ops_handle_free(struct fs_handle *h)
{
	pthread_mutex_destroy(&h->mu);
	free(h->data);
	free(h);
}

static int do_open(struct fs_mount *m, fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	int acc = fi->flags & O_ACCMODE;
	int writable = acc == O_WRONLY || acc == O_RDWR;
	int trunc = writable && (fi->flags & O_TRUNC);
	pthread_mutex_lock(&m->mu);
	struct fs_inode *in = inode_by_ino(m, ino);
	if (!in || in->type != FS_FILE) {
		pthread_mutex_unlock(&m->mu);
		return in ? EISDIR : ESTALE;
	}
	if (in->nlate && !reflect_is_me(m, req)) {
		/* `: > file` was closed and its empty value is stored at release,
		 * which the kernel sends right after: read after it */
		struct timespec dl = clock_after_ms(CLOCK_REALTIME, 2000);
		while (in->nlate && pthread_cond_timedwait(&m->own_cv, &m->mu, &dl) != ETIMEDOUT)
			;
	}
	struct fs_handle *h = ops_handle_new(in);
	if (!h) {
		pthread_mutex_unlock(&m->mu);
		return ENOMEM;
	}
	h->writable = writable;
	h->append = (fi->flags & O_APPEND) != 0;
	if (reflect_is_me(m, req)) {
		h->reflect = 1;
		pthread_mutex_unlock(&m->mu);
		fi->fh = (uint64_t)(uintptr_t)h;
		fi->direct_io = 1;
		return 0;
	}
	if (writable && m->o.ro && !in->local) {
		pthread_mutex_unlock(&m->mu);
		ops_handle_free(h);
		return EROFS;
	}
	if (in->local) {
		if (!trunc && in->local == FS_TEMP && in->llen) {
			if (buf_resize(h, in->llen)) {
				pthread_mutex_unlock(&m->mu);
				ops_handle_free(h);
				return ENOMEM;
			}
			fs_memcpy(h->data, in->ldata, in->llen);
			h->basekeep = h->blen = in->llen;
		}
		h->notappend = !h->append;
		pthread_mutex_unlock(&m->mu);
		if (trunc)
			ops_mark_dirty(m, h);
		fi->fh = (uint64_t)(uintptr_t)h;
		fi->direct_io = 1; /* local content changes under the kernel: no page cache */
		return 0;
	}
	uint32_t klen = in->klen;
	uint8_t *key = malloc(klen + 1);
	if (key)
		fs_memcpy(key, in->key, klen);
	/* consistency=cached: the watch keeps the cached value current */
	int hit = m->o.consistency == FS_CACHED && m->watch_ok && in->cval && in->known &&
		  in->exists && in->cval_rev == in->mod_rev && !trunc;
	struct kv_val v = {0};
	if (hit) {
		v.exists = 1;
		v.vlen = (uint32_t)in->size;
		v.val = malloc(v.vlen ? v.vlen : 1);
		if (v.val)
			fs_memcpy(v.val, in->cval, v.vlen);
		v.kv.mod_revision = in->mod_rev;
		v.kv.create_revision = in->create_rev;
		v.kv.version = in->version;
		v.kv.lease = in->lease;
		v.kv.mod_time_ns = in->mod_time_ns;
		hit = v.val != NULL;
	}
	pthread_mutex_unlock(&m->mu);
	if (!key) {
		ops_handle_free(h);
		return ENOMEM;
	}
	int rv = 0;
	if (hit) {
		CTR_INC(m, cache_hits);
	} else {
		CTR_INC(m, cache_misses);
		rv = kv_get(m, key, klen, serial(m), &v);
		if (rv && !writable && cache_serves(m, rv) && cache_read(m, key, klen, &v) == 0)
			rv = 0; /* -o cache_dir */
		if (rv && is_io_error(rv) && m->o.cache_fallback && !(writable && m->cache)) {
			pthread_mutex_lock(&m->mu);
			if (in->cval && in->cval_rev == in->mod_rev) {
				v.exists = 1;
				v.vlen = (uint32_t)in->size;
				v.val = malloc(v.vlen ? v.vlen : 1);
				if (v.val) {
					fs_memcpy(v.val, in->cval, v.vlen);
					v.kv.mod_revision = in->mod_rev;
					v.kv.lease = in->lease;
					rv = 0;
					CTR_INC(m, cache_hits);
				}
			}
			pthread_mutex_unlock(&m->mu);
		}
	}
	free(key);
	if (rv) {
		ops_handle_free(h);
		return ef_errno(rv);
	}
	if (!v.exists && !(fi->flags & O_CREAT)) {
		pthread_mutex_lock(&m->mu);
		inode_set_absent(in);
		pthread_mutex_unlock(&m->mu);
		ops_handle_free(h);
		return ENOENT;
	}
	h->rev = v.exists ? v.kv.mod_revision : 0;
	h->lease = v.exists ? v.kv.lease : 0;
	int inval_attr = 0;
	pthread_mutex_lock(&m->mu);
	if (v.exists) {
		inode_set_kv(in, &v.kv, v.vlen);
		ops_cache_value(m, in, &v);
	}
	if (!trunc && v.exists) {
		h->data = v.val;
		h->len = h->cap = v.vlen;
		h->basekeep = h->blen = v.vlen;
		v.val = NULL;
	}
	h->notappend = !h->append;
	if (writable) {
		fi->direct_io = 1;
		in->nwriters++;
		h->wcounted = 1;
		h->tid = fuse_req_ctx(req)->pid;
		h->fnext = in->fresh;
		in->fresh = h;
	} else if (v.exists && in->nwriters == 0 &&
		   (in->npc == 0 || in->cache_rev == v.kv.mod_revision)) {
		fi->keep_cache = in->cache_rev == v.kv.mod_revision;
		if (fi->keep_cache)
			CTR_INC(m, cache_hits);
		else if (ops_attr_timeout(m, in) != ATTR_TIMEOUT)
			inval_attr = 1; /* the kernel may hold another revision's size */
		in->cache_rev = v.kv.mod_revision;
		in->cache_size = v.vlen;
		in->npc++;
		h->pc = 1;
	} else {
		fi->direct_io = 1; /* another revision is in the page cache */
	}
	pthread_mutex_unlock(&m->mu);
	free(v.val);
	if (inval_attr)
		fuse_lowlevel_notify_inval_inode(m->se, ino, -1, 0);
	if (!writable)
		fi->noflush = 1; /* nothing to commit at close: spare the FLUSH request */
	if (trunc) {
		pthread_mutex_lock(&h->mu);
		ops_mark_dirty(m, h); /* O_TRUNC with no write stores an empty value */
		pthread_mutex_unlock(&h->mu);
	}
	fi->fh = (uint64_t)(uintptr_t)h;
	return 0;
}

void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs_mount *m = M(req);
	CTR_INC(m, ops[OP_OPEN]);
	int err = do_open(m, req, ino, fi);
	if (err)
		reply_err(req, err);
	else if (fuse_reply_open(req, fi) == -ENOENT)
		ops_handle_free((struct fs_handle *)(uintptr_t)fi->fh); /* interrupted */
}

/* A read-only handle moves to the newest whole revision of its key, never
 * to a mix: when the kernel reads through the page cache (after a remote
 * change dropped it, with the new size: serving the old snapshot cut to
 * that size was a value nobody wrote), on a read from offset 0 (a daemon
 * re-reading its config through the same descriptor), and on a read at
 * the end after one that already returned end of file (tail -F, as on a
 * local disk).  Any other read stays on the handle's revision, so a
 * sequential reader reads one revision to its end.  h->mu held. */
static void read_follow(struct fs_mount *m, struct fs_handle *h, off_t off)
{
	if (h->writable || h->reflect)
		return;
	pthread_mutex_lock(&m->mu);
	struct fs_inode *in = h->in;
	int newer =
		in->gen == h->gen && !in->local && in->known && in->exists && in->mod_rev > h->rev;
	int want = newer && (h->pc || off == 0 || ((size_t)off >= h->len && h->eof_seen));
	uint32_t klen = in->klen;
	uint8_t *key = want ? malloc(klen + 1) : NULL;
	if (key)
		fs_memcpy(key, in->key, klen);
	pthread_mutex_unlock(&m->mu);
	if (!key)
		return;
	struct kv_val v;
	int rv = kv_get(m, key, klen, serial(m), &v);
	free(key);
	if (rv || !v.exists || v.kv.mod_revision <= h->rev) {
		free(v.val);
		return; /* keep the snapshot: still a whole revision */
	}
	free(h->data);
	h->data = v.val;
	h->len = h->cap = v.vlen;
	h->rev = v.kv.mod_revision;
	h->eof_seen = 0;
	pthread_mutex_lock(&m->mu);
	if (in->mod_rev <= v.kv.mod_revision)
		inode_set_kv(in, &v.kv, v.vlen);
	if (h->pc) {
		in->cache_rev = v.kv.mod_revision; /* what the kernel's pages now hold */
		in->cache_size = v.vlen;
	}
	pthread_mutex_unlock(&m->mu);
}

void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct fs_mount *m = M(req);
	CTR_INC(m, ops[OP_READ]);
	struct fs_handle *h = (struct fs_handle *)(uintptr_t)fi->fh;
	pthread_mutex_lock(&h->mu);
	read_follow(m, h, off);
	if ((uint64_t)off >= h->len) {
		h->eof_seen = 1;
		fuse_reply_buf(req, NULL, 0);
	} else {
		fuse_reply_buf(req, (const char *)h->data + off,
			       size < h->len - (size_t)off ? size : h->len - (size_t)off);
	}
	pthread_mutex_unlock(&h->mu);
}

static int do_write(struct fs_mount *m, struct fs_handle *h, const char *buf, size_t size,
		    off_t off)
{
	if (h->reflect)
		return 0;
	if (!h->writable)
		return EBADF;
	unfresh(m, h);
	pthread_mutex_lock(&h->mu);
	if (h->append)
		off = (off_t)h->len;
	size_t end = (size_t)off + size;
	pthread_mutex_lock(&m->mu);
	uint32_t klen = h->in->klen;
	pthread_mutex_unlock(&m->mu);
	int err = 0;
	if (end > FS_VALUE_MAX(klen))
		err = h->err = EFBIG;
	else if (end > h->len)
		err = buf_resize(h, end);
	if (!err) {
		fs_memcpy(h->data + off, buf, size);
		ops_mark_dirty(m, h);
		h->written = 1;
		if ((size_t)off <= h->wcover && end > h->wcover)
			h->wcover = end; /* written from 0 without a gap */
	}
	pthread_mutex_unlock(&h->mu);
	return err;
}

void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
	      struct fuse_file_info *fi)
{
	struct fs_mount *m = M(req);
	CTR_INC(m, ops[OP_WRITE]);
	int err = do_write(m, (struct fs_handle *)(uintptr_t)fi->fh, buf, size, off);
	if (err)
		reply_err(req, err);
	else
		fuse_reply_write(req, size);
}

void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs_mount *m = M(req);
	CTR_INC(m, ops[OP_FLUSH]);
	struct fs_handle *h = (struct fs_handle *)(uintptr_t)fi->fh;
	unfresh(m, h);
	pthread_mutex_lock(&h->mu);
	/* A shell's `> file` closes a dup of the descriptor before writing: an
	 * O_TRUNC with nothing written yet is stored at release (or fsync), so a
	 * reader never sees the empty value between the old and the new one. */
	int err = h->written || h->err ? ops_commit(m, h) : 0;
	if (h->dirty && !h->written && !h->late) {
		pthread_mutex_lock(&m->mu);
		h->in->nlate++; /* opens of this file wait for the release */
		h->late = 1;
		pthread_mutex_unlock(&m->mu);
	}
	pthread_mutex_unlock(&h->mu);
	reply_err(req, err);
}

void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct fs_mount *m = M(req);
	CTR_INC(m, ops[OP_FSYNC]);
	struct fs_handle *h = (struct fs_handle *)(uintptr_t)fi->fh;
	pthread_mutex_lock(&h->mu);
	int err = ops_commit(m, h);
	pthread_mutex_unlock(&h->mu);
	reply_err(req, err);
}

void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs_mount *m = M(req);
	CTR_INC(m, ops[OP_RELEASE]);
	struct fs_handle *h = (struct fs_handle *)(uintptr_t)fi->fh;
	pthread_mutex_lock(&h->mu);
	if (h->dirty && ops_commit(m, h) != 0)
		fprintf(stderr, "etcfs: write-back at release failed: %s\n", efc_errmsg());
	ops_clear_dirty(m, h);
	pthread_mutex_unlock(&h->mu);
	pthread_mutex_lock(&m->mu);
	if (h->pc && h->in->npc > 0)
		h->in->npc--;
	if (h->wcounted && h->in->nwriters > 0)
		h->in->nwriters--;
	unfresh_locked(h);
	if (h->late && h->in->nlate > 0) {
		h->in->nlate--;
		pthread_cond_broadcast(&m->own_cv);
	}
	pthread_mutex_unlock(&m->mu);
	ops_handle_free(h);
	reply_err(req, 0);
}

/* ------------------------------------------------------------------ */
/* setattr                                                              */

/* kv_update callback of truncate_key: the value cut or zero-extended to
 * *(uint64_t *)arg bytes, lease kept. */
static int truncate_value(const struct kv_val *cur, struct kv_change *out, void *arg)
{
	uint64_t size = *(const uint64_t *)arg;
	if (!cur->exists)
		return ENOENT;
	uint8_t *nv = calloc(1, size ? size : 1);
	if (!nv)
		return ENOMEM;
	fs_memcpy(nv, cur->val, cur->vlen < size ? cur->vlen : size);
	out->val = nv;
	out->vlen = (uint32_t)size;
	out->to_free = nv;
	return 0;
}

/* truncate(2) of a file nobody here has open: one read-modify-write. */
static int truncate_key(struct fs_mount *m, fuse_ino_t ino, uint64_t size)
{
	return ops_inode_update(m, ino, size, truncate_value, &size);
}

static int do_setattr(struct fs_mount *m, fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		      int to_set, struct fuse_file_info *fi, struct stat *out)
{
	int reflector = reflect_is_me(m, req);
	if ((to_set & FUSE_SET_ATTR_SIZE) && !reflector) {
		struct fs_handle *h = fi ? (struct fs_handle *)(uintptr_t)fi->fh : NULL;
		pthread_mutex_lock(&m->mu);
		struct fs_inode *in = inode_by_ino(m, ino);
		if (!h && in && attr->st_size == 0) {
			/* open(O_TRUNC): the kernel truncates right after OPEN, with
			 * no handle; it belongs to the handle this thread just opened */
			for (struct fs_handle *f = in->fresh; f && !h; f = f->fnext)
				if (f->tid == fuse_req_ctx(req)->pid)
					h = f;
		}
		int local = in ? in->local : 0;
		if (in && in->type == FS_DIR) {
			pthread_mutex_unlock(&m->mu);
			return EISDIR;
		}
		if (!h && local == FS_TEMP && in) {
			size_t n = (size_t)attr->st_size;
			uint8_t *d = realloc(in->ldata, n ? n : 1);
			if (!d) {
				pthread_mutex_unlock(&m->mu);
				return ENOMEM;
			}
			if (n > in->llen)
				memset(d + in->llen, 0, n - in->llen);
			in->ldata = d;
			in->llen = n;
		}
		pthread_mutex_unlock(&m->mu);
		if (!in)
			return ESTALE;
		if (h && !h->reflect) {
			if (!h->writable)
				return EBADF;
			pthread_mutex_lock(&m->mu);
			uint32_t klen = in->klen;
			pthread_mutex_unlock(&m->mu);
			if ((uint64_t)attr->st_size > FS_VALUE_MAX(klen)) {
				h->err = EFBIG;
				return EFBIG;
			}
			pthread_mutex_lock(&h->mu);
			int err = buf_resize(h, (size_t)attr->st_size);
			if (!err) {
				if ((size_t)attr->st_size < h->basekeep)
					h->basekeep = (size_t)attr->st_size;
				h->notappend = 1;
				ops_mark_dirty(m, h);
				/* size 0 before any write is O_TRUNC (or alike): stored
				 * at release, see op_flush */
				if (attr->st_size != 0 || h->written)
					h->written = 1;
			}
			pthread_mutex_unlock(&h->mu);
			if (err)
				return err;
		} else if (!h && !local) {
			if (m->o.ro)
				return EROFS;
			int err = truncate_key(m, ino, (uint64_t)attr->st_size);
			if (err)
				return err;
		}
	}
	/* mode, owner and times are the mount's (uid=, gid=, umask=): accepted, not stored */
	pthread_mutex_lock(&m->mu);
	struct fs_inode *in = inode_by_ino(m, ino);
	if (in)
		inode_stat(m, in, out);
	pthread_mutex_unlock(&m->mu);
	return in ? 0 : ESTALE;
}

void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		struct fuse_file_info *fi)
{
	struct fs_mount *m = M(req);
	CTR_INC(m, ops[OP_SETATTR]);
	struct stat st;
	int err = do_setattr(m, req, ino, attr, to_set, fi, &st);
	if (err)
		reply_err(req, err);
	else
		fuse_reply_attr(req, &st, ATTR_TIMEOUT);
}
