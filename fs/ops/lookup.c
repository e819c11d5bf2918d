/*
 * lookup.c - names, entries and attributes: lookup, forget, getattr.
 *
 * A name in a directory stands for up to two keys (struct target): the
 * file key and the directory prefix below it, so one lookup asks the
 * cluster about both in one RANGE, mostly.  Directories are implied by the
 * keys below them; one this mount emptied itself lingers until rmdir
 * (ops_linger_mark).  The helpers every handler needs to turn an
 * inode or a name into keys, and an inode into an entry, live here too.
 *
 * Requests made by the reflector thread (reflect.c) replay a change that
 * already happened in the cluster: they are answered from the reflector's
 * view of that change (m->view) and the cluster as of the revision before
 * it, never from later state.  With -o cache_fallback an unreachable
 * cluster is answered from what the mount last knew.
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

/* Copy an inode's key (and type) out under the lock. */
int ops_inode_key(struct fs_mount *m, fuse_ino_t ino, uint8_t **key, uint32_t *klen, int *type)
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

void ops_target_free(struct target *t)
{
	free(t->fk);
	free(t->dk);
	free(t->seg);
}

int ops_target_make(struct fs_mount *m, fuse_ino_t parent, const char *name, struct target *t)
{
	memset(t, 0, sizeof *t);
	uint8_t *pk;
	uint32_t pklen;
	int ptype;
	int err = ops_inode_key(m, parent, &pk, &pklen, &ptype);
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
		ops_target_free(t);
		return ENOMEM;
	}
	if (t->fklen > EF_MAX_KEY_BYTES) {
		ops_target_free(t);
		return ENAMETOOLONG;
	}
	return 0;
}

/* How long the kernel may keep the attributes of in; m->mu held.  Files
 * being written here change size under the kernel: never cached. */
double ops_attr_timeout(struct fs_mount *m, struct fs_inode *in)
{
	if (in->type == FS_DIR)
		return m->o.consistency == FS_CACHED ? CACHED_ATTR_TIMEOUT : DIR_ATTR_TIMEOUT;
	if (m->o.consistency != FS_CACHED || !m->watch_ok)
		return ATTR_TIMEOUT;
	if (in->type == FS_FILE && (in->local || in->nwriters || in->ndirty || in->nlate))
		return ATTR_TIMEOUT;
	return CACHED_ATTR_TIMEOUT;
}

void ops_fill_entry(struct fs_mount *m, struct fs_inode *in, struct fuse_entry_param *e)
{
	/* m->mu held */
	memset(e, 0, sizeof *e);
	e->ino = in->ino;
	e->generation = 1;
	inode_stat(m, in, &e->attr);
	e->attr_timeout = ops_attr_timeout(m, in);
	e->entry_timeout = ENTRY_TIMEOUT;
	in->nlookup++;
}

void ops_cache_value(struct fs_mount *m, struct fs_inode *in, const struct kv_val *v)
{
	/* m->mu held; keep the value when reads may be served from it */
	cache_note(m, in->key, in->klen, v); /* -o cache_dir: on disk */
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
		ops_fill_entry(m, in, e);
	pthread_mutex_unlock(&m->mu);
	return in ? 0 : ENOENT;
}


/* An implied directory vanishes with its last key.  One this mount emptied
 * itself (unlink, rename away, rmdir below it) stays reachable by name
 * while the kernel holds it, as on a local file system, until it is
 * rmdir'ed: rm -r and mv's copy-and-remove fallback end with that rmdir,
 * often after the entry timeout made the kernel look the name up again. */
void ops_linger_mark(struct fs_mount *m, fuse_ino_t parent)
{
	pthread_mutex_lock(&m->mu);
	struct fs_inode *p = inode_by_ino(m, parent);
	if (p && p->type == FS_DIR && parent != FUSE_ROOT_ID)
		p->linger = 1;
	pthread_mutex_unlock(&m->mu);
}

/* t's directory was removed (rmdir): no longer found without keys. */
void ops_linger_clear(struct fs_mount *m, struct target *t)
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
		ops_fill_entry(m, in, e);
	else if (in)
		in->linger = 0;
	pthread_mutex_unlock(&m->mu);
	return ok;
}

/* The reflector's own lookups: answered from the view of the change being
 * replayed.  Returns 1 when the key is in the view. */
int ops_view_find(struct fs_mount *m, int type, const uint8_t *k, uint32_t n, int *exists,
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

/* Fill e with the directory inode of t (m->mu held).  1 when e is set. */
static int entry_dir_locked(struct fs_mount *m, struct target *t, struct fuse_entry_param *e)
{
	struct fs_inode *in = inode_get(m, FS_DIR, t->dk, t->dklen);
	if (in)
		ops_fill_entry(m, in, e);
	return in != NULL;
}

/* entry_dir_locked, taking m->mu. */
static int entry_dir(struct fs_mount *m, struct target *t, struct fuse_entry_param *e)
{
	pthread_mutex_lock(&m->mu);
	int ok = entry_dir_locked(m, t, e);
	pthread_mutex_unlock(&m->mu);
	return ok;
}

static int do_lookup(struct fs_mount *m, fuse_ino_t parent, const char *name, int reflector,
		     struct fuse_entry_param *e)
{
	struct target t;
	int err = ops_target_make(m, parent, name, &t);
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
			     ops_view_find(m, FS_FILE, t.fk, t.fklen, &ex, &kv, &size);
		int dex = 0;
		int dinview = ops_view_find(m, FS_DIR, t.dk, t.dklen, &dex, NULL, NULL);
		int64_t rrev = m->refl_rev; /* answer as of the revision before it */
		const uint8_t *skip = NULL;
		uint32_t skiplen = 0;
		uint8_t *skipbuf = NULL;
		for (int i = 0; i < m->view.n && !skip; i++)
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
				ops_fill_entry(m, in, e);
				found = 1;
			}
		}
		int under = 0; /* an ancestor of a key that exists in the view */
		for (int i = 0; i < m->view.n; i++)
			if (m->view.k[i].exists && m->view.k[i].klen >= t.dklen &&
			    memcmp(m->view.k[i].key, t.dk, t.dklen) == 0)
				under = 1;
		if (!found && ((dinview && dex) || (!inview && !dinview && under)))
			found = entry_dir_locked(m, &t, e);
		pthread_mutex_unlock(&m->mu);
		if (!inview && !dinview && !under) {
			int ne = 0;
			rv = rrev > 1 ? kv_prefix_nonempty_at(m, t.dk, t.dklen, rrev - 1, skip,
							      skiplen, &ne)
				      : kv_prefix_nonempty(m, t.dk, t.dklen, 1, skip, skiplen, &ne);
			if (rv == 0 && ne)
				found = entry_dir(m, &t, e);
		}
		free(skipbuf);
		ops_target_free(&t);
		e->attr_timeout = ATTR_TIMEOUT; /* the view may be the state before the change */
		return rv ? ef_errno(rv) : found ? 0 : ENOENT;
	}
	/* files that exist only in this mount */
	if (t.kind != NAME_CHUNK) {
		pthread_mutex_lock(&m->mu);
		in = inode_find(m, FS_FILE, t.fk, t.fklen);
		if (in && in->local && in->hashed) {
			ops_fill_entry(m, in, e);
			found = 1;
		}
		pthread_mutex_unlock(&m->mu);
		if (found) {
			ops_target_free(&t);
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
			ops_target_free(&t);
			return found ? 0 : ENOENT;
		}
	}
	if (rv == 0 && t.kind != NAME_FILE) {
		int ne = isdir > 0;
		if (isdir < 0)
			rv = kv_prefix_nonempty(m, t.dk, t.dklen, serial(m),
						t.kind == NAME_CHUNK ? t.fk : NULL, t.fklen, &ne);
		if (rv == 0 && ne)
			found = entry_dir(m, &t, e);
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
				ops_cache_value(m, in, &v);
				ops_fill_entry(m, in, e);
				found = 1;
			}
			pthread_mutex_unlock(&m->mu);
		}
		free(v.val);
	}
	free(fv.val);
	if (rv == 0 && !found && t.kind != NAME_FILE)
		found = lookup_lingering(m, &t, e);
	if (rv && cache_serves(m, rv)) { /* -o cache_dir */
		pthread_mutex_lock(&m->mu);
		in = cache_lookup_locked(m, t.fk, t.fklen, t.dk, t.dklen, t.kind);
		if (in) {
			ops_fill_entry(m, in, e);
			rv = 0;
			found = 1;
		}
		pthread_mutex_unlock(&m->mu);
	}
	if (rv && is_io_error(rv) && m->o.cache_fallback && lookup_cached(m, &t, e) == 0) {
		CTR_INC(m, cache_hits);
		rv = 0;
		found = 1;
	}
	ops_target_free(&t);
	if (rv)
		return ef_errno(rv);
	return found ? 0 : ENOENT;
}

void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs_mount *m = M(req);
	CTR_INC(m, ops[OP_LOOKUP]);
	struct fuse_entry_param e;
	int refl = reflect_is_me(m, req);
	cache_always_ask(refl); /* -o cache_dir: a replay asks the cluster */
	int err = do_lookup(m, parent, name, refl, &e);
	cache_always_ask(0);
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

void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	CTR_INC(M(req), ops[OP_FORGET]);
	forget_one(M(req), ino, nlookup);
	fuse_reply_none(req);
}

void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *f)
{
	CTR_INC(M(req), ops[OP_FORGET]);
	for (size_t i = 0; i < count; i++)
		forget_one(M(req), f[i].ino, f[i].nlookup);
	fuse_reply_none(req);
}

/* ------------------------------------------------------------------ */
/* attributes                                                           */

int ops_refresh_file(struct fs_mount *m, fuse_ino_t ino)
{
	uint8_t *key;
	uint32_t klen;
	int err = ops_inode_key(m, ino, &key, &klen, NULL);
	if (err)
		return err;
	struct kv_val v;
	int rv = kv_get(m, key, klen, serial(m), &v);
	free(key);
	if (rv && is_io_error(rv) && m->o.cache_fallback) {
		pthread_mutex_lock(&m->mu);
		struct fs_inode *in = inode_by_ino(m, ino);
		int known =
			(cache_serves(m, rv) && cache_refresh_locked(m, in)) || (in && in->known);
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
			ops_cache_value(m, in, &v);
		} else {
			inode_set_absent(in);
		}
	}
	pthread_mutex_unlock(&m->mu);
	free(v.val);
	return 0;
}

void ops_note_kv(struct fs_mount *m, fuse_ino_t ino, const ef_kv *kv, uint64_t size)
{
	pthread_mutex_lock(&m->mu);
	struct fs_inode *in = inode_by_ino(m, ino);
	if (in)
		inode_set_kv(in, kv, size);
	pthread_mutex_unlock(&m->mu);
}

int ops_inode_update(struct fs_mount *m, fuse_ino_t ino, uint64_t max_size, kv_update_fn fn,
		     void *arg)
{
	uint8_t *key;
	uint32_t klen;
	int err = ops_inode_key(m, ino, &key, &klen, NULL);
	if (err)
		return err;
	if (max_size > FS_VALUE_MAX(klen)) {
		free(key);
		return EFBIG;
	}
	ef_kv kv;
	uint64_t vlen;
	err = kv_update(m, key, klen, fn, arg, &kv, &vlen);
	free(key);
	if (!err)
		ops_note_kv(m, ino, &kv, vlen);
	return err;
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
		int err = ops_refresh_file(m, ino);
		if (err)
			return err;
	} else {
		CTR_INC(m, cache_hits);
	}
	pthread_mutex_lock(&m->mu);
	in = inode_by_ino(m, ino);
	inode_stat(m, in, st);
	*tmo = reflector ? ATTR_TIMEOUT : ops_attr_timeout(m, in);
	pthread_mutex_unlock(&m->mu);
	return 0;
}

void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
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
