/*
 * ops.c - the FUSE low-level handlers of the etcfs mount.
 *
 * Shape (as libfuse's passthrough_ll): each operation's work is a function
 * returning 0 or an errno (`do_*`), and a thin `op_*` wrapper replies exactly
 * once.  Cluster errors (EF_E_*) become errnos only through ef_errno().
 *
 * Semantics worth knowing before changing anything here:
 *  - open reads the whole value once (linearizable by default) into the
 *    handle; reads are served from that snapshot, so a reader never sees a
 *    mix of two revisions.  The kernel page cache is kept (keep_cache) only
 *    when the revision is the one the kernel already holds.
 *  - writes go to the handle's buffer; flush (every close) and fsync commit
 *    the buffer with ONE put (a txn when optimistic concurrency is asked),
 *    and only then return, so close() reports EIO/EFBIG/EACCES/EROFS/ESTALE.
 *  - O_CREAT|O_EXCL is a put-if-absent txn at create; a plain create stays
 *    local (FS_PENDING) until its first commit; editor temporaries stay local
 *    for good (FS_TEMP) unless -o tmpfiles=cluster.
 *  - requests made by the reflector thread (reflect.c) replay a change that
 *    already happened in the cluster: they are answered from what the mount
 *    knows and never write to the cluster.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "etcfs.h"

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

#define ATTR_TIMEOUT 0.0  /* sizes change remotely: the kernel asks, we answer from cache */
#define ENTRY_TIMEOUT 1.0 /* remote creates/deletes invalidate names explicitly */
/* consistency=cached: attributes are those of the watch, and every remote
 * change is replayed through the mount and invalidated (reflect.c), so the
 * kernel may keep them; an open that hands out another revision than the
 * kernel's invalidates them itself (do_open). */
#define CACHED_ATTR_TIMEOUT 10.0
/* A directory's attributes are the mount's (mode, owner, nlink 2, size 0):
 * only its marker's time changes.  Kept by the kernel, or with
 * default_permissions every path walk asks for each directory's again. */
#define DIR_ATTR_TIMEOUT 1.0

static struct fs_mount *M(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* Every errno reply goes through here so errors are counted by class. */
static void reply_err(fuse_req_t req, int err)
{
	if (err)
		fsmetrics_error(M(req), err);
	fuse_reply_err(req, err);
}

static int serial(struct fs_mount *m)
{
	return m->o.consistency != FS_LINEARIZABLE;
}

/* Copy an inode's key (and type) out under the lock. */
static int inode_key(struct fs_mount *m, fuse_ino_t ino, uint8_t **key, uint32_t *klen, int *type)
{
	pthread_mutex_lock(&m->mu);
	struct fs_inode *in = inode_by_ino(m, ino);
	if (!in) {
		pthread_mutex_unlock(&m->mu);
		return ESTALE;
	}
	*key = malloc(in->klen + 1);
	if (*key) {
		fs_memcpy(*key, in->key, in->klen);
		*klen = in->klen;
		if (type)
			*type = in->type;
	}
	pthread_mutex_unlock(&m->mu);
	return *key ? 0 : ENOMEM;
}

static uint8_t *cat(const uint8_t *a, uint32_t an, const uint8_t *b, uint32_t bn, const char *c,
		    uint32_t *outn)
{
	uint32_t cn = c ? (uint32_t)strlen(c) : 0;
	uint8_t *p = malloc((size_t)an + bn + cn + 1);
	if (!p)
		return NULL;
	fs_memcpy(p, a, an);
	fs_memcpy(p + an, b, bn);
	fs_memcpy(p + an + bn, c ? c : "", cn);
	*outn = an + bn + cn;
	return p;
}

/* The key(s) a name in directory `parent` stands for. */
struct target {
	int kind;    /* enum fs_name_kind */
	uint8_t *fk; /* file key */
	uint32_t fklen;
	uint8_t *dk; /* directory prefix: fk + "/" (NAME_CHUNK: fk itself) */
	uint32_t dklen;
	uint8_t *seg;
	uint32_t slen;
};

static void target_free(struct target *t)
{
	free(t->fk);
	free(t->dk);
	free(t->seg);
}

static int target_make(struct fs_mount *m, fuse_ino_t parent, const char *name, struct target *t)
{
	memset(t, 0, sizeof *t);
	uint8_t *pk;
	uint32_t pklen;
	int ptype;
	int err = inode_key(m, parent, &pk, &pklen, &ptype);
	if (err)
		return err;
	if (ptype != FS_DIR) {
		free(pk);
		return ENOTDIR;
	}
	err = names_decode(name, &t->kind, &t->seg, &t->slen);
	if (err) {
		free(pk);
		return err == EINVAL ? ENOENT : err;
	}
	t->fk = cat(pk, pklen, t->seg, t->slen, NULL, &t->fklen);
	t->dk = cat(pk, pklen, t->seg, t->slen, t->kind == NAME_CHUNK ? NULL : "/", &t->dklen);
	free(pk);
	if (!t->fk || !t->dk) {
		target_free(t);
		return ENOMEM;
	}
	if (t->fklen > EF_MAX_KEY_BYTES) {
		target_free(t);
		return ENAMETOOLONG;
	}
	return 0;
}

/* How long the kernel may keep the attributes of in; m->mu held.  Files
 * being written here change size under the kernel: never cached. */
static double attr_timeout(struct fs_mount *m, struct fs_inode *in)
{
	if (in->type == FS_DIR)
		return m->o.consistency == FS_CACHED ? CACHED_ATTR_TIMEOUT : DIR_ATTR_TIMEOUT;
	if (m->o.consistency != FS_CACHED || !m->watch_ok)
		return ATTR_TIMEOUT;
	if (in->type == FS_FILE && (in->local || in->nwriters || in->ndirty || in->nlate))
		return ATTR_TIMEOUT;
	return CACHED_ATTR_TIMEOUT;
}

static void fill_entry(struct fs_mount *m, struct fs_inode *in, struct fuse_entry_param *e)
{
	/* m->mu held */
	memset(e, 0, sizeof *e);
	e->ino = in->ino;
	e->generation = 1;
	inode_stat(m, in, &e->attr);
	e->attr_timeout = attr_timeout(m, in);
	e->entry_timeout = ENTRY_TIMEOUT;
	in->nlookup++;
}

static void cache_value(struct fs_mount *m, struct fs_inode *in, const struct kv_val *v)
{
	/* m->mu held; keep the value when reads may be served from it */
	if (m->o.consistency != FS_CACHED && !m->o.cache_fallback)
		return;
	if (!v->exists || in->mod_rev != v->kv.mod_revision || in->cval_rev == v->kv.mod_revision)
		return;
	uint8_t *c = malloc(v->vlen ? v->vlen : 1);
	if (!c)
		return;
	fs_memcpy(c, v->val, v->vlen);
	free(in->cval);
	in->cval = c;
	in->cval_rev = v->kv.mod_revision;
}

/* ------------------------------------------------------------------ */
/* lookup                                                               */

static int is_io_error(int rv)
{
	return rv == EF_E_UNAVAILABLE || rv == EF_E_TIMEOUT || rv == EF_E_OUTCOME_UNKNOWN ||
	       rv == EF_E_NO_LEADER || rv == EF_E_STOPPING;
}

/* -o cache_fallback: the cluster is unreachable; answer from what is known. */
static int lookup_cached(struct fs_mount *m, struct target *t, struct fuse_entry_param *e)
{
	pthread_mutex_lock(&m->mu);
	struct fs_inode *in = NULL;
	if (t->kind != NAME_FILE) {
		in = inode_find(m, FS_DIR, t->dk, t->dklen);
		if (in && !in->nlookup)
			in = NULL;
	}
	if (!in && t->kind != NAME_CHUNK) {
		in = inode_find(m, FS_FILE, t->fk, t->fklen);
		if (in && !(in->known && in->exists))
			in = NULL;
	}
	if (in)
		fill_entry(m, in, e);
	pthread_mutex_unlock(&m->mu);
	return in ? 0 : ENOENT;
}

/* An implied directory vanishes with its last key.  One this mount emptied
 * itself (unlink, rename away, rmdir below it) stays reachable by name
 * while the kernel holds it, as on a local file system, until it is
 * rmdir'ed: rm -r and mv's copy-and-remove fallback end with that rmdir,
 * often after the entry timeout made the kernel look the name up again. */
static void linger_mark(struct fs_mount *m, fuse_ino_t parent)
{
	pthread_mutex_lock(&m->mu);
	struct fs_inode *p = inode_by_ino(m, parent);
	if (p && p->type == FS_DIR && parent != FUSE_ROOT_ID)
		p->linger = 1;
	pthread_mutex_unlock(&m->mu);
}

/* t's directory was removed (rmdir): no longer found without keys. */
static void linger_clear(struct fs_mount *m, struct target *t)
{
	pthread_mutex_lock(&m->mu);
	struct fs_inode *in = inode_find(m, FS_DIR, t->dk, t->dklen);
	if (in)
		in->linger = 0;
	pthread_mutex_unlock(&m->mu);
}

/* do_lookup found no key for t: is it such a directory?  1 when e is set. */
static int lookup_lingering(struct fs_mount *m, struct target *t, struct fuse_entry_param *e)
{
	pthread_mutex_lock(&m->mu);
	struct fs_inode *in = inode_find(m, FS_DIR, t->dk, t->dklen);
	int ok = in && in->linger && in->hashed && in->nlookup > 0;
	if (ok)
		fill_entry(m, in, e);
	else if (in)
		in->linger = 0;
	pthread_mutex_unlock(&m->mu);
	return ok;
}

/* The reflector's own lookups: answered from the view of the change being
 * replayed.  Returns 1 when the key is in the view. */
static int view_find(struct fs_mount *m, int type, const uint8_t *k, uint32_t n, int *exists,
		     ef_kv *kv, uint64_t *size)
{
	for (int i = 0; i < m->view.n; i++)
		if (m->view.k[i].type == type && m->view.k[i].klen == n &&
		    memcmp(m->view.k[i].key, k, n) == 0) {
			*exists = m->view.k[i].exists;
			if (kv)
				*kv = m->view.k[i].kv;
			if (size)
				*size = m->view.k[i].size;
			return 1;
		}
	return 0;
}

static int do_lookup(struct fs_mount *m, fuse_ino_t parent, const char *name, int reflector,
		     struct fuse_entry_param *e)
{
	struct target t;
	int err = target_make(m, parent, name, &t);
	if (err)
		return err;
	struct fs_inode *in;
	int rv = 0, found = 0;
	if (reflector) {
		int ex;
		ef_kv kv;
		uint64_t size;
		pthread_mutex_lock(&m->mu);
		int inview = t.kind != NAME_CHUNK &&
			     view_find(m, FS_FILE, t.fk, t.fklen, &ex, &kv, &size);
		int dex = 0;
		int dinview = view_find(m, FS_DIR, t.dk, t.dklen, &dex, NULL, NULL);
		int64_t rrev = m->refl_rev; /* answer as of the revision before it */
		const uint8_t *skip = NULL;
		uint32_t skiplen = 0;
		uint8_t *skipbuf = NULL;
		for (int i = 0; i < m->view.n; i++)
			if (!m->view.k[i].exists && m->view.k[i].type == FS_FILE) {
				skiplen = m->view.k[i].klen;
				skipbuf = malloc(skiplen + 1);
				if (skipbuf)
					fs_memcpy(skipbuf, m->view.k[i].key, skiplen);
				skip = skipbuf;
			}
		if (inview && ex) {
			in = inode_get(m, FS_FILE, t.fk, t.fklen);
			if (in) {
				inode_set_kv(in, &kv, size);
				fill_entry(m, in, e);
				found = 1;
			}
		}
		int under = 0; /* an ancestor of a key that exists in the view */
		for (int i = 0; i < m->view.n; i++)
			if (m->view.k[i].exists && m->view.k[i].klen >= t.dklen &&
			    memcmp(m->view.k[i].key, t.dk, t.dklen) == 0)
				under = 1;
		if (!found && ((dinview && dex) || (!inview && !dinview && under))) {
			in = inode_get(m, FS_DIR, t.dk, t.dklen);
			if (in) {
				fill_entry(m, in, e);
				found = 1;
			}
		}
		pthread_mutex_unlock(&m->mu);
		if (!inview && !dinview && !under) {
			int ne = 0;
			rv = rrev > 1 ? kv_prefix_nonempty_at(m, t.dk, t.dklen, rrev - 1, skip,
							      skiplen, &ne)
				      : kv_prefix_nonempty(m, t.dk, t.dklen, 1, skip, skiplen, &ne);
			if (rv == 0 && ne) {
				pthread_mutex_lock(&m->mu);
				in = inode_get(m, FS_DIR, t.dk, t.dklen);
				if (in) {
					fill_entry(m, in, e);
					found = 1;
				}
				pthread_mutex_unlock(&m->mu);
			}
		}
		free(skipbuf);
		target_free(&t);
		e->attr_timeout = ATTR_TIMEOUT; /* the view may be the state before the change */
		return rv ? ef_errno(rv) : found ? 0 : ENOENT;
	}
	/* files that exist only in this mount */
	if (t.kind != NAME_CHUNK) {
		pthread_mutex_lock(&m->mu);
		in = inode_find(m, FS_FILE, t.fk, t.fklen);
		if (in && in->local && in->hashed) {
			fill_entry(m, in, e);
			found = 1;
		}
		pthread_mutex_unlock(&m->mu);
		if (found) {
			target_free(&t);
			return 0;
		}
	}
	/* A plain name: the file and the directory in one round trip, mostly */
	struct kv_val fv = {0};
	int isdir = -1;
	if (t.kind == NAME_ANY) {
		rv = kv_lookup(m, t.fk, t.fklen, t.dk, t.dklen, serial(m), &isdir, &fv);
		if (rv == 0 && isdir == 0 && !fv.exists) {
			/* a directory this mount emptied stays until rmdir */
			found = lookup_lingering(m, &t, e);
			target_free(&t);
			return found ? 0 : ENOENT;
		}
	}
	if (rv == 0 && t.kind != NAME_FILE) {
		int ne = isdir > 0;
		if (isdir < 0)
			rv = kv_prefix_nonempty(m, t.dk, t.dklen, serial(m),
						t.kind == NAME_CHUNK ? t.fk : NULL, t.fklen, &ne);
		if (rv == 0 && ne) {
			pthread_mutex_lock(&m->mu);
			in = inode_get(m, FS_DIR, t.dk, t.dklen);
			if (in) {
				fill_entry(m, in, e);
				found = 1;
			}
			pthread_mutex_unlock(&m->mu);
		}
	}
	if (rv == 0 && !found && t.kind != NAME_CHUNK) {
		struct kv_val v = fv;
		fv.val = NULL;
		if (t.kind != NAME_ANY)
			rv = kv_get(m, t.fk, t.fklen, serial(m), &v);
		if (rv == 0 && v.exists) {
			pthread_mutex_lock(&m->mu);
			in = inode_get(m, FS_FILE, t.fk, t.fklen);
			if (in) {
				inode_set_kv(in, &v.kv, v.vlen);
				cache_value(m, in, &v);
				fill_entry(m, in, e);
				found = 1;
			}
			pthread_mutex_unlock(&m->mu);
		}
		free(v.val);
	}
	free(fv.val);
	if (rv == 0 && !found && t.kind != NAME_FILE)
		found = lookup_lingering(m, &t, e);
	if (rv && is_io_error(rv) && m->o.cache_fallback && lookup_cached(m, &t, e) == 0) {
		CTR_INC(m, cache_hits);
		rv = 0;
		found = 1;
	}
	target_free(&t);
	if (rv)
		return ef_errno(rv);
	return found ? 0 : ENOENT;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs_mount *m = M(req);
	CTR_INC(m, ops[OP_LOOKUP]);
	struct fuse_entry_param e;
	int err = do_lookup(m, parent, name, reflect_is_me(m, req), &e);
	if (err)
		reply_err(req, err);
	else
		fuse_reply_entry(req, &e);
}

static void forget_one(struct fs_mount *m, fuse_ino_t ino, uint64_t n)
{
	pthread_mutex_lock(&m->mu);
	struct fs_inode *in = inode_by_ino(m, ino);
	if (in) {
		in->nlookup = in->nlookup > n ? in->nlookup - n : 0;
		if (in->nlookup == 0 && !in->local) {
			free(in->cval); /* nobody will read it through the kernel soon */
			in->cval = NULL;
			in->cval_rev = 0;
		}
	}
	pthread_mutex_unlock(&m->mu);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	CTR_INC(M(req), ops[OP_FORGET]);
	forget_one(M(req), ino, nlookup);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *f)
{
	CTR_INC(M(req), ops[OP_FORGET]);
	for (size_t i = 0; i < count; i++)
		forget_one(M(req), f[i].ino, f[i].nlookup);
	fuse_reply_none(req);
}

/* ------------------------------------------------------------------ */
/* attributes                                                           */

static int refresh_file(struct fs_mount *m, fuse_ino_t ino)
{
	uint8_t *key;
	uint32_t klen;
	int type;
	int err = inode_key(m, ino, &key, &klen, &type);
	if (err)
		return err;
	struct kv_val v;
	int rv = kv_get(m, key, klen, serial(m), &v);
	free(key);
	if (rv && is_io_error(rv) && m->o.cache_fallback) {
		pthread_mutex_lock(&m->mu);
		struct fs_inode *in = inode_by_ino(m, ino);
		int known = in && in->known;
		pthread_mutex_unlock(&m->mu);
		if (known)
			return 0;
	}
	if (rv)
		return ef_errno(rv);
	pthread_mutex_lock(&m->mu);
	struct fs_inode *in = inode_by_ino(m, ino);
	if (in && !in->local) {
		if (v.exists) {
			inode_set_kv(in, &v.kv, v.vlen);
			cache_value(m, in, &v);
		} else {
			inode_set_absent(in);
		}
	}
	pthread_mutex_unlock(&m->mu);
	free(v.val);
	return 0;
}

static int do_getattr(struct fs_mount *m, fuse_ino_t ino, int reflector, struct stat *st,
		      double *tmo)
{
	pthread_mutex_lock(&m->mu);
	struct fs_inode *in = inode_by_ino(m, ino);
	if (!in) {
		pthread_mutex_unlock(&m->mu);
		return ESTALE;
	}
	int fetch = in->type == FS_FILE && !in->local && !reflector && (!in->known || !m->watch_ok);
	pthread_mutex_unlock(&m->mu);
	if (fetch) {
		CTR_INC(m, cache_misses);
		int err = refresh_file(m, ino);
		if (err)
			return err;
	} else {
		CTR_INC(m, cache_hits);
	}
	pthread_mutex_lock(&m->mu);
	in = inode_by_ino(m, ino);
	inode_stat(m, in, st);
	*tmo = reflector ? ATTR_TIMEOUT : attr_timeout(m, in);
	pthread_mutex_unlock(&m->mu);
	return 0;
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs_mount *m = M(req);
	CTR_INC(m, ops[OP_GETATTR]);
	struct stat st;
	double tmo = ATTR_TIMEOUT;
	int err = do_getattr(m, ino, reflect_is_me(m, req), &st, &tmo);
	if (err)
		reply_err(req, err);
	else
		fuse_reply_attr(req, &st, tmo);
}

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

static void mark_dirty(struct fs_mount *m, struct fs_handle *h)
{
	/* h->mu held */
	pthread_mutex_lock(&m->mu);
	if (!h->dirty)
		h->in->ndirty++;
	pthread_mutex_unlock(&m->mu);
	h->dirty = 1;
}

static void clear_dirty(struct fs_mount *m, struct fs_handle *h)
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

/* Write the handle's buffer back as one put.  h->mu held.  Returns an errno. */
static int commit(struct fs_mount *m, struct fs_handle *h)
{
	if (h->err)
		return h->err; /* never store a prefix of what the writer meant */
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
		clear_dirty(m, h);
		return 0;
	}
	pthread_mutex_unlock(&m->mu);
	if (!key)
		return ENOMEM;
	if (stale) {
		/* unlinked or replaced since open: like a write to an unlinked file */
		free(key);
		clear_dirty(m, h);
		return 0;
	}
	if (m->o.ro) {
		free(key);
		return EROFS;
	}
	if (h->len > FS_VALUE_MAX(klen)) {
		free(key);
		return EFBIG;
	}
	int64_t rev = 0;
	int rv = kv_put(m, key, klen, h->data, (uint32_t)h->len, occ ? h->rev : -1, 0, h->lease,
			&rev);
	if (rv == EF_E_LEASE_NOT_FOUND && h->lease) {
		h->lease = 0; /* the lease expired meanwhile: store without it */
		rv = kv_put(m, key, klen, h->data, (uint32_t)h->len, occ ? h->rev : -1, 0, 0, &rev);
	}
	free(key);
	if (rv == EF_E_EXISTS)
		rv = EF_E_TXN_FAILED; /* created by someone else since open */
	if (rv)
		return ef_errno(rv);
	pthread_mutex_lock(&m->mu);
	int was_new = !in->known || !in->exists || in->local;
	in->local = FS_REMOTE;
	ef_kv kv = {.mod_revision = rev,
		    .create_revision = was_new ? rev : in->create_rev,
		    .version = was_new ? 1 : in->version + 1,
		    .lease = h->lease,
		    .mod_time_ns = clock_wall_ns()};
	/* the watch (its own connection) may already have brought this
	 * revision, with its value, or a later one: never step back */
	if (was_new || !in->known || in->mod_rev < rev)
		inode_set_kv(in, &kv, h->len);
	pthread_mutex_unlock(&m->mu);
	h->rev = rev;
	clear_dirty(m, h);
	CTR_INC(m, commits);
	return 0;
}

static struct fs_handle *handle_new(struct fs_inode *in)
{
	struct fs_handle *h = calloc(1, sizeof *h);
	if (!h)
		return NULL;
	pthread_mutex_init(&h->mu, NULL);
	h->in = in;
	h->gen = in->gen;
	return h;
}

static void handle_free(struct fs_handle *h)
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
	struct fs_handle *h = handle_new(in);
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
		handle_free(h);
		return EROFS;
	}
	if (in->local) {
		if (!trunc && in->local == FS_TEMP && in->llen) {
			if (buf_resize(h, in->llen)) {
				pthread_mutex_unlock(&m->mu);
				handle_free(h);
				return ENOMEM;
			}
			fs_memcpy(h->data, in->ldata, in->llen);
		}
		pthread_mutex_unlock(&m->mu);
		if (trunc)
			mark_dirty(m, h);
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
		handle_free(h);
		return ENOMEM;
	}
	int rv = 0;
	if (hit) {
		CTR_INC(m, cache_hits);
	} else {
		CTR_INC(m, cache_misses);
		rv = kv_get(m, key, klen, serial(m), &v);
		if (rv && is_io_error(rv) && m->o.cache_fallback) {
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
		handle_free(h);
		return ef_errno(rv);
	}
	if (!v.exists && !(fi->flags & O_CREAT)) {
		pthread_mutex_lock(&m->mu);
		inode_set_absent(in);
		pthread_mutex_unlock(&m->mu);
		handle_free(h);
		return ENOENT;
	}
	h->rev = v.exists ? v.kv.mod_revision : 0;
	h->lease = v.exists ? v.kv.lease : 0;
	int inval_attr = 0;
	pthread_mutex_lock(&m->mu);
	if (v.exists) {
		inode_set_kv(in, &v.kv, v.vlen);
		cache_value(m, in, &v);
	}
	if (!trunc && v.exists) {
		h->data = v.val;
		h->len = h->cap = v.vlen;
		v.val = NULL;
	}
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
		else if (attr_timeout(m, in) != ATTR_TIMEOUT)
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
		mark_dirty(m, h); /* O_TRUNC with no write stores an empty value */
		pthread_mutex_unlock(&h->mu);
	}
	fi->fh = (uint64_t)(uintptr_t)h;
	return 0;
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs_mount *m = M(req);
	CTR_INC(m, ops[OP_OPEN]);
	int err = do_open(m, req, ino, fi);
	if (err)
		reply_err(req, err);
	else if (fuse_reply_open(req, fi) == -ENOENT)
		handle_free((struct fs_handle *)(uintptr_t)fi->fh); /* interrupted */
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct fs_mount *m = M(req);
	CTR_INC(m, ops[OP_READ]);
	struct fs_handle *h = (struct fs_handle *)(uintptr_t)fi->fh;
	pthread_mutex_lock(&h->mu);
	if ((uint64_t)off >= h->len)
		fuse_reply_buf(req, NULL, 0);
	else
		fuse_reply_buf(req, (const char *)h->data + off,
			       size < h->len - (size_t)off ? size : h->len - (size_t)off);
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
		mark_dirty(m, h);
		h->written = 1;
	}
	pthread_mutex_unlock(&h->mu);
	return err;
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
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

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs_mount *m = M(req);
	CTR_INC(m, ops[OP_FLUSH]);
	struct fs_handle *h = (struct fs_handle *)(uintptr_t)fi->fh;
	unfresh(m, h);
	pthread_mutex_lock(&h->mu);
	/* A shell's `> file` closes a dup of the descriptor before writing: an
	 * O_TRUNC with nothing written yet is stored at release (or fsync), so a
	 * reader never sees the empty value between the old and the new one. */
	int err = h->written || h->err ? commit(m, h) : 0;
	if (h->dirty && !h->written && !h->late) {
		pthread_mutex_lock(&m->mu);
		h->in->nlate++; /* opens of this file wait for the release */
		h->late = 1;
		pthread_mutex_unlock(&m->mu);
	}
	pthread_mutex_unlock(&h->mu);
	reply_err(req, err);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct fs_mount *m = M(req);
	CTR_INC(m, ops[OP_FSYNC]);
	struct fs_handle *h = (struct fs_handle *)(uintptr_t)fi->fh;
	pthread_mutex_lock(&h->mu);
	int err = commit(m, h);
	pthread_mutex_unlock(&h->mu);
	reply_err(req, err);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs_mount *m = M(req);
	CTR_INC(m, ops[OP_RELEASE]);
	struct fs_handle *h = (struct fs_handle *)(uintptr_t)fi->fh;
	pthread_mutex_lock(&h->mu);
	if (h->dirty && commit(m, h) != 0)
		fprintf(stderr, "etcfs: write-back at release failed: %s\n", efc_errmsg());
	clear_dirty(m, h);
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
	handle_free(h);
	reply_err(req, 0);
}

/* ------------------------------------------------------------------ */
/* setattr                                                              */

static int truncate_key(struct fs_mount *m, fuse_ino_t ino, uint64_t size)
{
	uint8_t *key;
	uint32_t klen;
	int type;
	int err = inode_key(m, ino, &key, &klen, &type);
	if (err)
		return err;
	if (size > FS_VALUE_MAX(klen)) {
		free(key);
		return EFBIG;
	}
	int rv = EF_E_TXN_FAILED;
	for (int attempt = 0; attempt < 5 && rv == EF_E_TXN_FAILED; attempt++) {
		struct kv_val v;
		rv = kv_get(m, key, klen, 0, &v);
		if (rv)
			break;
		if (!v.exists) {
			rv = EF_E_NOT_FOUND;
			break;
		}
		uint8_t *nv = calloc(1, size ? size : 1);
		if (!nv) {
			free(v.val);
			rv = EF_E_NOMEM;
			break;
		}
		fs_memcpy(nv, v.val, v.vlen < size ? v.vlen : size);
		int64_t rev;
		rv = kv_put(m, key, klen, nv, (uint32_t)size, v.kv.mod_revision, 0, v.kv.lease,
			    &rev);
		if (rv == 0) {
			pthread_mutex_lock(&m->mu);
			struct fs_inode *in = inode_by_ino(m, ino);
			ef_kv kv = v.kv;
			kv.mod_revision = rev;
			kv.version++;
			kv.mod_time_ns = clock_wall_ns();
			if (in)
				inode_set_kv(in, &kv, size);
			pthread_mutex_unlock(&m->mu);
		}
		free(nv);
		free(v.val);
	}
	free(key);
	return rv ? ef_errno(rv) : 0;
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
				mark_dirty(m, h);
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

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
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

/* ------------------------------------------------------------------ */
/* create, mknod, mkdir                                                 */

/* Create the file (parent, name).  excl: put-if-absent in the cluster now. */
static int do_create(struct fs_mount *m, fuse_req_t req, fuse_ino_t parent, const char *name,
		     int excl, struct fuse_entry_param *e, struct fs_handle **hout)
{
	struct target t;
	int err = target_make(m, parent, name, &t);
	if (err)
		return err;
	if (t.kind == NAME_CHUNK) {
		target_free(&t);
		return EINVAL;
	}
	int reflector = reflect_is_me(m, req);
	int temp = !reflector && !m->o.tmp_cluster && names_is_temp(name);
	if (!temp && !reflector && m->o.ro) {
		target_free(&t);
		return EROFS;
	}
	int64_t rev = 0;
	if (excl && !temp && !reflector) {
		int rv = kv_put(m, t.fk, t.fklen, (const uint8_t *)"", 0, 0, 0, 0, &rev);
		if (rv) {
			target_free(&t);
			return ef_errno(rv);
		}
	}
	pthread_mutex_lock(&m->mu);
	struct fs_inode *in = inode_get(m, FS_FILE, t.fk, t.fklen);
	if (!in) {
		pthread_mutex_unlock(&m->mu);
		target_free(&t);
		return ENOMEM;
	}
	if (reflector) {
		int ex;
		ef_kv kv;
		uint64_t size;
		if (view_find(m, FS_FILE, t.fk, t.fklen, &ex, &kv, &size))
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
		h = handle_new(in);
		if (!h) {
			pthread_mutex_unlock(&m->mu);
			target_free(&t);
			return ENOMEM;
		}
		h->writable = 1;
		h->rev = rev;
		h->reflect = reflector;
		in->nwriters++;
		h->wcounted = 1;
	}
	fill_entry(m, in, e);
	if (reflector)
		e->attr_timeout = ATTR_TIMEOUT;
	int pending = !reflector && !rev;
	pthread_mutex_unlock(&m->mu);
	if (h && pending) {
		pthread_mutex_lock(&h->mu);
		mark_dirty(m, h); /* created and closed with no write: stores an empty value */
		pthread_mutex_unlock(&h->mu);
	}
	if (hout)
		*hout = h;
	target_free(&t);
	return 0;
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      struct fuse_file_info *fi)
{
	struct fs_mount *m = M(req);
	CTR_INC(m, ops[OP_CREATE]);
	struct fuse_entry_param e;
	struct fs_handle *h = NULL;
	int err = do_create(m, req, parent, name, (fi->flags & O_EXCL) != 0, &e, &h);
	if (err) {
		reply_err(req, err);
		return;
	}
	h->append = (fi->flags & O_APPEND) != 0;
	fi->fh = (uint64_t)(uintptr_t)h;
	fi->direct_io = 1;
	if (fuse_reply_create(req, &e, fi) == -ENOENT)
		handle_free(h);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	struct fs_mount *m = M(req);
	CTR_INC(m, ops[OP_MKNOD]);
	if (!S_ISREG(mode)) {
		reply_err(req, EPERM);
		return;
	}
	struct fuse_entry_param e;
	/* mknod(2) of a regular file: an empty key, put-if-absent */
	int err = do_create(m, req, parent, name, 1, &e, NULL);
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
		struct fs_handle *h = handle_new(in);
		if (h) {
			h->writable = 1;
			pthread_mutex_lock(&h->mu);
			mark_dirty(m, h);
			err = commit(m, h);
			clear_dirty(m, h);
			pthread_mutex_unlock(&h->mu);
			handle_free(h);
		}
	}
	fuse_reply_entry(req, &e);
}

static int do_mkdir(struct fs_mount *m, fuse_req_t req, fuse_ino_t parent, const char *name,
		    struct fuse_entry_param *e)
{
	struct target t;
	int err = target_make(m, parent, name, &t);
	if (err)
		return err;
	if (t.kind != NAME_ANY) {
		target_free(&t);
		return EINVAL;
	}
	if (!reflect_is_me(m, req)) {
		if (m->o.ro) {
			target_free(&t);
			return EROFS;
		}
		/* the directory marker: the prefix key itself, empty value */
		int rv = kv_put(m, t.dk, t.dklen, (const uint8_t *)"", 0, -1, 0, 0, NULL);
		if (rv) {
			target_free(&t);
			return ef_errno(rv);
		}
	}
	pthread_mutex_lock(&m->mu);
	struct fs_inode *in = inode_get(m, FS_DIR, t.dk, t.dklen);
	if (in)
		fill_entry(m, in, e);
	pthread_mutex_unlock(&m->mu);
	target_free(&t);
	return in ? 0 : ENOMEM;
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
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

static int do_unlink(struct fs_mount *m, fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct target t;
	int err = target_make(m, parent, name, &t);
	if (err)
		return err;
	int reflector = reflect_is_me(m, req);
	pthread_mutex_lock(&m->mu);
	struct fs_inode *in = inode_find(m, FS_FILE, t.fk, t.fklen);
	int local = in && in->local;
	if (reflector || local) {
		if (in) {
			in->local = FS_REMOTE;
			free(in->ldata);
			in->ldata = NULL;
			in->llen = 0;
			inode_set_absent(in);
			in->gen++;
		}
		pthread_mutex_unlock(&m->mu);
		target_free(&t);
		return 0;
	}
	pthread_mutex_unlock(&m->mu);
	if (m->o.ro) {
		target_free(&t);
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
	target_free(&t);
	if (rv)
		return ef_errno(rv);
	if (deleted)
		linger_mark(m, parent);
	return deleted ? 0 : ENOENT;
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	CTR_INC(M(req), ops[OP_UNLINK]);
	reply_err(req, do_unlink(M(req), req, parent, name));
}

static int do_rmdir(struct fs_mount *m, fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct target t;
	int err = target_make(m, parent, name, &t);
	if (err)
		return err;
	if (reflect_is_me(m, req)) {
		linger_clear(m, &t);
		target_free(&t);
		return 0;
	}
	if (m->o.ro) {
		target_free(&t);
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
		linger_clear(m, &t);
		linger_mark(m, parent);
	}
	target_free(&t);
	return rv ? ef_errno(rv) : err;
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
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
	int err = target_make(m, parent, name, &s);
	if (err)
		return err;
	err = target_make(m, newparent, newname, &d);
	if (err) {
		target_free(&s);
		return err;
	}
	if (s.kind == NAME_CHUNK || d.kind == NAME_CHUNK) {
		err = EINVAL;
		goto out;
	}
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
		linger_mark(m, parent);
out:
	target_free(&s);
	target_free(&d);
	return err;
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		      const char *newname, unsigned int flags)
{
	CTR_INC(M(req), ops[OP_RENAME]);
	reply_err(req, do_rename(M(req), req, parent, name, newparent, newname, flags));
}

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

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct fs_mount *m = M(req);
	CTR_INC(m, ops[OP_STATFS]);
	struct statvfs sv = {0};
	sv.f_bsize = 4096;
	sv.f_frsize = 4096;
	sv.f_blocks = 1u << 20;
	sv.f_bfree = 1u << 19;
	sv.f_bavail = 1u << 19;
	sv.f_files = 1u << 24;
	sv.f_ffree = 1u << 23;
	sv.f_favail = 1u << 23;
	sv.f_namemax = NAME_MAX;
	if (m->o.ro)
		sv.f_flag |= ST_RDONLY;
	fuse_reply_statfs(req, &sv);
}

/* ------------------------------------------------------------------ */
/* extended attributes                                                  */

/* What listxattr names must be exactly what getxattr returns a value for
 * (getfattr -d prints an error for every other name): user.etcfs.ttl only
 * while a lease is attached, nothing for a file that lives only here. */
static const char file_xattrs[] = "user.etcfs.revision\0user.etcfs.create_revision\0"
				  "user.etcfs.version\0user.etcfs.lease\0user.etcfs.occ\0";
static const char ttl_xattr[] = "user.etcfs.ttl\0";
static const char root_xattrs[] = "user.etcfs.cluster_revision\0";

static void reply_xattr_value(fuse_req_t req, const char *v, size_t size)
{
	size_t n = strlen(v);
	if (size == 0)
		fuse_reply_xattr(req, n);
	else if (size < n)
		reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, v, n);
}

/* The attribute names of ino into out (sizeof file_xattrs + sizeof
 * ttl_xattr bytes); returns their length or -errno. */
static long xattr_names(struct fs_mount *m, fuse_ino_t ino, char *out)
{
	if (ino == FUSE_ROOT_ID) {
		memcpy(out, root_xattrs, sizeof root_xattrs - 1);
		return sizeof root_xattrs - 1;
	}
	pthread_mutex_lock(&m->mu);
	struct fs_inode *in = inode_by_ino(m, ino);
	int type = in ? in->type : 0, local = in ? in->local : 0;
	int fetch = in && (!in->known || !m->watch_ok);
	pthread_mutex_unlock(&m->mu);
	if (type != FS_FILE || local)
		return 0;
	if (fetch) {
		int err = refresh_file(m, ino);
		if (err)
			return -err;
	}
	pthread_mutex_lock(&m->mu);
	int exists = in->exists, lease = in->lease != 0;
	pthread_mutex_unlock(&m->mu);
	if (!exists)
		return -ENOENT;
	size_t n = sizeof file_xattrs - 1;
	memcpy(out, file_xattrs, n);
	if (lease) {
		memcpy(out + n, ttl_xattr, sizeof ttl_xattr - 1);
		n += sizeof ttl_xattr - 1;
	}
	return (long)n;
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct fs_mount *m = M(req);
	CTR_INC(m, ops[OP_LISTXATTR]);
	char l[sizeof file_xattrs + sizeof ttl_xattr];
	long n = xattr_names(m, ino, l);
	if (n < 0)
		reply_err(req, (int)-n);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)n);
	else if (size < (size_t)n)
		reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, l, (size_t)n);
}

static int cluster_revision(struct fs_mount *m, int64_t *rev)
{
	ef_arena *a = ef_arena_new();
	if (!a)
		return EF_E_NOMEM;
	ef_msg req = {.type = EF_MSG_RANGE}, resp;
	req.u.range.key = (ef_buf){m->prefix, m->plen};
	req.u.range.count_only = 1;
	req.u.range.serializable = (uint8_t)serial(m);
	int rv = fs_call(m, &req, &resp, a);
	if (rv == 0)
		*rev = resp.hdr.revision;
	ef_arena_free(a);
	return rv;
}

static int lease_ttl(struct fs_mount *m, int64_t id, int64_t *ttl)
{
	ef_arena *a = ef_arena_new();
	if (!a)
		return EF_E_NOMEM;
	ef_msg req = {.type = EF_MSG_LEASE_TTL}, resp;
	req.u.lease.id = id;
	int rv = fs_call(m, &req, &resp, a);
	if (rv == 0)
		*ttl = resp.u.lease_resp.ttl;
	ef_arena_free(a);
	return rv;
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct fs_mount *m = M(req);
	CTR_INC(m, ops[OP_GETXATTR]);
	char v[64];
	if (strncmp(name, "user.etcfs.", 11) != 0) {
		reply_err(req, ENODATA);
		return;
	}
	const char *a = name + 11;
	if (ino == FUSE_ROOT_ID && strcmp(a, "cluster_revision") == 0) {
		int64_t rev = 0;
		int rv = cluster_revision(m, &rev);
		if (rv) {
			reply_err(req, ef_errno(rv));
			return;
		}
		snprintf(v, sizeof v, "%" PRId64, rev);
		reply_xattr_value(req, v, size);
		return;
	}
	pthread_mutex_lock(&m->mu);
	struct fs_inode *in = inode_by_ino(m, ino);
	int type = in ? in->type : 0, local = in ? in->local : 0;
	pthread_mutex_unlock(&m->mu);
	if (type != FS_FILE || local) {
		reply_err(req, ENODATA);
		return;
	}
	if (strcmp(a, "occ") != 0) {
		int err = refresh_file(m, ino);
		if (err) {
			reply_err(req, err);
			return;
		}
	}
	pthread_mutex_lock(&m->mu);
	int64_t val = 0;
	int ok = in->exists, is_ttl = 0;
	if (strcmp(a, "revision") == 0)
		val = in->mod_rev;
	else if (strcmp(a, "create_revision") == 0)
		val = in->create_rev;
	else if (strcmp(a, "version") == 0)
		val = in->version;
	else if (strcmp(a, "lease") == 0)
		val = in->lease;
	else if (strcmp(a, "ttl") == 0)
		val = in->lease, is_ttl = 1;
	else if (strcmp(a, "occ") == 0)
		val = in->occ, ok = 1;
	else
		ok = -1;
	pthread_mutex_unlock(&m->mu);
	if (ok <= 0) {
		reply_err(req, ok < 0 ? ENODATA : ENOENT);
		return;
	}
	if (is_ttl) {
		if (!val) {
			reply_err(req, ENODATA); /* no lease: no TTL */
			return;
		}
		int64_t ttl = 0;
		int rv = lease_ttl(m, val, &ttl);
		if (rv) {
			reply_err(req, ef_errno(rv));
			return;
		}
		val = ttl;
	}
	if (strcmp(a, "lease") == 0)
		snprintf(v, sizeof v, "%" PRIx64, (uint64_t)val);
	else
		snprintf(v, sizeof v, "%" PRId64, val);
	reply_xattr_value(req, v, size);
}

/* Attach lease id (0 detaches) to the key of ino, keeping its value. */
static int attach_lease(struct fs_mount *m, fuse_ino_t ino, int64_t id)
{
	uint8_t *key;
	uint32_t klen;
	int type;
	int err = inode_key(m, ino, &key, &klen, &type);
	if (err)
		return err;
	int rv = EF_E_TXN_FAILED;
	for (int attempt = 0; attempt < 5 && rv == EF_E_TXN_FAILED; attempt++) {
		struct kv_val v;
		rv = kv_get(m, key, klen, 0, &v);
		if (rv)
			break;
		if (!v.exists) {
			rv = EF_E_NOT_FOUND;
			break;
		}
		int64_t rev;
		rv = kv_put(m, key, klen, v.val, v.vlen, v.kv.mod_revision, 0, id, &rev);
		if (rv == 0) {
			pthread_mutex_lock(&m->mu);
			struct fs_inode *in = inode_by_ino(m, ino);
			ef_kv kv = v.kv;
			kv.mod_revision = rev;
			kv.version++;
			kv.lease = id;
			kv.mod_time_ns = clock_wall_ns();
			if (in)
				inode_set_kv(in, &kv, v.vlen);
			pthread_mutex_unlock(&m->mu);
		}
		free(v.val);
	}
	free(key);
	return rv ? ef_errno(rv) : 0;
}

static int parse_i64(const char *v, size_t n, int hex_ok, int64_t *out)
{
	char buf[32];
	if (n == 0 || n >= sizeof buf)
		return EINVAL;
	fs_memcpy(buf, v, n);
	buf[n] = 0;
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = 0;
	char *end;
	int all_digits = 1;
	for (size_t i = 0; i < n; i++)
		if (buf[i] < '0' || buf[i] > '9')
			all_digits = 0;
	errno = 0;
	if (all_digits)
		*out = strtoll(buf, &end, 10);
	else if (hex_ok)
		*out = (int64_t)strtoull(buf, &end, 16); /* etcdctl prints lease IDs in hex */
	else
		return EINVAL;
	return errno || *end || end == buf ? EINVAL : 0;
}

static int do_setxattr(struct fs_mount *m, fuse_req_t req, fuse_ino_t ino, const char *name,
		       const char *value, size_t size)
{
	if (strncmp(name, "user.etcfs.", 11) != 0)
		return ENOTSUP; /* other names are not stored: see etcfs(1) */
	const char *a = name + 11;
	pthread_mutex_lock(&m->mu);
	struct fs_inode *in = inode_by_ino(m, ino);
	int type = in ? in->type : 0, local = in ? in->local : 0;
	pthread_mutex_unlock(&m->mu);
	if (type != FS_FILE)
		return ENOTSUP;
	int64_t v;
	int err = parse_i64(value, size, strcmp(a, "lease") == 0, &v);
	if (err)
		return err;
	if (strcmp(a, "occ") == 0) {
		pthread_mutex_lock(&m->mu);
		in->occ = v != 0;
		pthread_mutex_unlock(&m->mu);
		return 0;
	}
	if (local)
		return EAGAIN; /* not in the cluster yet: close it first */
	if (m->o.ro)
		return EROFS;
	if (strcmp(a, "lease") == 0)
		return attach_lease(m, ino, v);
	if (strcmp(a, "ttl") == 0) {
		if (v <= 0)
			return EINVAL;
		ef_arena *ar = ef_arena_new();
		if (!ar)
			return ENOMEM;
		ef_msg rq = {.type = EF_MSG_LEASE_GRANT}, resp;
		rq.u.lease.ttl = v;
		int rv = fs_call(m, &rq, &resp, ar);
		int64_t id = rv == 0 ? resp.u.lease_resp.id : 0;
		ef_arena_free(ar);
		if (rv)
			return ef_errno(rv);
		return attach_lease(m, ino, id);
	}
	/* revision, version...: read-only.  ENOTSUP, as for names etcfs does
	 * not know, so cp -a, mv between filesystems and rsync -X copy a
	 * file's attributes without an error per file. */
	return ENOTSUP;
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			size_t size, int flags)
{
	CTR_INC(M(req), ops[OP_SETXATTR]);
	reply_err(req, do_setxattr(M(req), req, ino, name, value, size));
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct fs_mount *m = M(req);
	CTR_INC(m, ops[OP_REMOVEXATTR]);
	if (strcmp(name, "user.etcfs.lease") == 0 || strcmp(name, "user.etcfs.ttl") == 0)
		reply_err(req, m->o.ro ? EROFS : attach_lease(m, ino, 0));
	else if (strncmp(name, "user.", 5) == 0)
		reply_err(req, ENODATA);
	else
		reply_err(req, ENOTSUP);
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
