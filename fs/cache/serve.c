/*
 * serve.c - on-line or offline (the read gate kv.c calls), answering
 * lookups, getattr, opens, listings and user.etcfs.stale from the cache,
 * and learning the values the mount sees (reads, watch events).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache_int.h"

/* ------------------------------------------------------------------ */
/* on-line / offline                                                    */

int cache_unreachable(int rv)
{
	return rv == EF_E_UNAVAILABLE || rv == EF_E_TIMEOUT || rv == EF_E_NO_LEADER ||
	       rv == EF_E_STOPPING || rv == EF_E_OUTCOME_UNKNOWN;
}

static __thread int always_ask;

void cache_always_ask(int on)
{
	always_ask = on;
}

int cache_skip_read(struct fs_mount *m)
{
	struct fs_cache *c = m->cache;
	if (!c || always_ask || !__atomic_load_n(&c->offline_ns, __ATOMIC_RELAXED))
		return 0;
	pid_t me = gettid();
	return me != c->tid && me != m->reflector_tid;
}

void cache_result(struct fs_mount *m, int rv)
{
	struct fs_cache *c = m->cache;
	if (!c || (rv && !cache_unreachable(rv)))
		return;
	int64_t off = __atomic_load_n(&c->offline_ns, __ATOMIC_RELAXED);
	if ((rv == 0) == (off == 0))
		return;
	pthread_mutex_lock(&c->mu);
	if (rv && !c->offline_ns) {
		__atomic_store_n(&c->offline_ns, clock_wall_ns(), __ATOMIC_RELAXED);
		fprintf(stderr,
			"etcfs: the cluster does not answer (%s): serving reads from "
			"cache_dir %s\n",
			ef_strerror(rv), c->dir);
	} else if (!rv && c->offline_ns) {
		__atomic_store_n(&c->offline_ns, 0, __ATOMIC_RELAXED);
		c->catchup = 1;
		fprintf(stderr, "etcfs: the cluster answers again: catching up cache_dir\n");
	}
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

int cache_serves(struct fs_mount *m, int rv)
{
	if (!m->cache || !cache_unreachable(rv))
		return 0;
	cache_result(m, rv);
	return 1;
}

/* ------------------------------------------------------------------ */
/* serving                                                              */

static int has_below(struct fs_cache *c, const uint8_t *dk, uint32_t dklen)
{
	for (size_t i = 0; i < c->hcap; i++)
		for (struct centry *e = c->hash[i]; e; e = e->hnext)
			if (!e->gone && e->klen > dklen && memcmp(e->key, dk, dklen) == 0)
				return 1;
	return 0;
}

/* in takes e's state unless it knows a newer revision.  Both locks held. */
static void set_inode(struct fs_inode *in, const struct centry *e)
{
	if (in->local || (in->known && in->exists && in->mod_rev > e->kv.mod_revision))
		return;
	inode_set_kv(in, &e->kv, e->size);
}

struct fs_inode *cache_lookup_locked(struct fs_mount *m, const uint8_t *fk, uint32_t fklen,
				     const uint8_t *dk, uint32_t dklen, int kind)
{
	struct fs_cache *c = m->cache;
	if (!c)
		return NULL;
	struct fs_inode *in = NULL;
	pthread_mutex_lock(&c->mu);
	if (kind != NAME_FILE && has_below(c, dk, dklen)) {
		in = inode_get(m, FS_DIR, dk, dklen);
	} else if (kind != NAME_CHUNK) {
		struct centry *e = cache_find(c, fk, fklen);
		if (e && !e->gone) {
			in = inode_get(m, FS_FILE, fk, fklen);
			if (in)
				set_inode(in, e);
		}
	}
	/* a mount restarted while the cluster is down resumes its watch from
	 * the cache's revision: what changed meanwhile is replayed with its
	 * events when the cluster returns (reflect.c; resync.c if compacted) */
	if (in && m->watch_rev == 0)
		m->watch_rev = c->state_rev;
	pthread_mutex_unlock(&c->mu);
	if (in)
		CTR_INC(m, cache_hits);
	return in;
}

int cache_refresh_locked(struct fs_mount *m, struct fs_inode *in)
{
	struct fs_cache *c = m->cache;
	if (!c || !in || in->type != FS_FILE)
		return 0;
	pthread_mutex_lock(&c->mu);
	struct centry *e = cache_find(c, in->key, in->klen);
	int ok = e && !e->gone;
	if (ok)
		set_inode(in, e);
	pthread_mutex_unlock(&c->mu);
	return ok;
}

int cache_read(struct fs_mount *m, const uint8_t *key, uint32_t klen, struct kv_val *out)
{
	struct fs_cache *c = m->cache;
	memset(out, 0, sizeof *out);
	if (!c)
		return ENOENT;
	pthread_mutex_lock(&c->mu);
	struct centry *e = cache_find(c, key, klen);
	if (!e || e->gone) {
		pthread_mutex_unlock(&c->mu);
		return ENOENT;
	}
	if (e->pend) { /* not on disk yet */
		out->val = malloc(e->size ? e->size : 1);
		if (!out->val) {
			pthread_mutex_unlock(&c->mu);
			return ENOMEM;
		}
		fs_memcpy(out->val, e->pend, e->size);
		out->vlen = (uint32_t)e->size;
		out->kv = e->kv;
		out->exists = 1;
		pthread_mutex_unlock(&c->mu);
		CTR_INC(m, cache_hits);
		return 0;
	}
	pthread_mutex_unlock(&c->mu);
	char name[NAME_LEN];
	cache_file_name(key, klen, name);
	size_t n = 0;
	uint8_t *b = cache_slurp(c->dfd, name, &n);
	struct rec r;
	if (!b || cache_parse(b, n, &r) != 0 || r.klen != klen || memcmp(r.key, key, klen) != 0) {
		free(b);
		return ENOENT;
	}
	out->val = malloc(r.vlen ? r.vlen : 1);
	if (!out->val) {
		free(b);
		return ENOMEM;
	}
	fs_memcpy(out->val, r.val, r.vlen);
	out->vlen = r.vlen;
	out->kv = r.kv;
	out->exists = 1;
	free(b);
	CTR_INC(m, cache_hits);
	return 0;
}

static int key_cmp(const void *x, const void *y)
{
	const struct centry *a = *(struct centry *const *)x, *b = *(struct centry *const *)y;
	int r = memcmp(a->key, b->key, a->klen < b->klen ? a->klen : b->klen);
	return r ? r : (a->klen > b->klen) - (a->klen < b->klen);
}

int cache_list(struct fs_mount *m, const uint8_t *pfx, uint32_t plen, cache_dirent_fn fn, void *arg)
{
	struct fs_cache *c = m->cache;
	if (!c)
		return EIO;
	/* copy the keys below pfx, sorted, then name them as dir.c does */
	pthread_mutex_lock(&c->mu);
	size_t n = 0;
	struct centry **v = malloc((c->n + 1) * sizeof *v);
	if (v)
		for (size_t i = 0; i < c->hcap; i++)
			for (struct centry *e = c->hash[i]; e; e = e->hnext)
				if (!e->gone && e->klen > plen && memcmp(e->key, pfx, plen) == 0) {
					struct centry *cp = calloc(1, sizeof *cp);
					if (cp)
						cp->key = malloc(e->klen);
					if (!cp || !cp->key) {
						free(cp);
						continue;
					}
					memcpy(cp->key, e->key, e->klen);
					cp->klen = e->klen;
					v[n++] = cp;
				}
	pthread_mutex_unlock(&c->mu);
	if (!v)
		return ENOMEM;
	qsort(v, n, sizeof *v, key_cmp);
	char name[NAME_MAX + 1];
	const uint8_t *skip = NULL; /* prefix of the sub-directory last listed */
	uint32_t skiplen = 0;
	int err = 0;
	for (size_t i = 0; i < n && !err; i++) {
		const uint8_t *k = v[i]->key;
		uint32_t kn = v[i]->klen;
		if (skip && kn >= skiplen && memcmp(k, skip, skiplen) == 0)
			continue;
		const uint8_t *rest = k + plen;
		uint32_t rn = kn - plen;
		const uint8_t *sl = memchr(rest, '/', rn);
		uint32_t seglen = sl ? (uint32_t)(sl - rest) : rn;
		uint32_t used = names_encode(rest, seglen, NAME_ANY, name);
		if (used < seglen || sl) {
			skiplen = plen + used + (used < seglen ? 0 : 1);
			skip = k;
			err = fn(arg, name, FS_DIR, k, skiplen);
			continue;
		}
		/* a file; also a directory when a later key continues it with '/' */
		int collide = 0;
		for (size_t j = i + 1; j < n && !collide; j++) {
			if (v[j]->klen <= kn || memcmp(v[j]->key, k, kn) != 0)
				break;
			collide = v[j]->key[kn] == '/';
		}
		if (collide)
			names_encode(rest, seglen, NAME_FILE, name);
		err = fn(arg, name, FS_FILE, k, kn);
	}
	for (size_t i = 0; i < n; i++) {
		free(v[i]->key);
		free(v[i]);
	}
	free(v);
	return err;
}

int64_t cache_age(struct fs_mount *m, uint64_t ino)
{
	struct fs_cache *c = m->cache;
	if (!c || !__atomic_load_n(&c->offline_ns, __ATOMIC_RELAXED))
		return -1;
	int64_t age = -1;
	pthread_mutex_lock(&m->mu);
	struct fs_inode *in = inode_by_ino(m, ino);
	if (in && in->type == FS_FILE) {
		pthread_mutex_lock(&c->mu);
		struct centry *e = cache_find(c, in->key, in->klen);
		if (e && !e->gone && c->offline_ns) {
			age = (clock_wall_ns() - e->seen_ns) / 1000000000;
			if (age < 0)
				age = 0;
		}
		pthread_mutex_unlock(&c->mu);
	}
	pthread_mutex_unlock(&m->mu);
	return age;
}

/* ------------------------------------------------------------------ */
/* learning                                                             */

void cache_note(struct fs_mount *m, const uint8_t *key, uint32_t klen, const struct kv_val *v)
{
	struct fs_cache *c = m->cache;
	if (!c || !v->exists)
		return;
	pthread_mutex_lock(&c->mu);
	/* offline, v is what the mount already had (its memory or this
	 * cache): it confirms nothing, and is kept only if newer */
	int64_t off = c->offline_ns;
	struct centry *e = cache_find(c, key, klen);
	if (!off || !e || e->gone || e->kv.mod_revision < v->kv.mod_revision)
		cache_keep(c, key, klen, &v->kv, v->val, v->vlen, off ? off : clock_wall_ns());
	pthread_mutex_unlock(&c->mu);
}

void cache_event(struct fs_mount *m, const ef_event *ev)
{
	struct fs_cache *c = m->cache;
	if (!c)
		return;
	pthread_mutex_lock(&c->mu);
	struct centry *e = cache_find(c, ev->kv.key.p, ev->kv.key.n);
	if (e && !e->gone && ev->kv.mod_revision > e->kv.mod_revision) {
		if (ev->type == EF_EVENT_PUT) {
			cache_keep(c, ev->kv.key.p, ev->kv.key.n, &ev->kv, ev->kv.value.p,
				   ev->kv.value.n, clock_wall_ns());
		} else {
			e->gone = 1;
			e->kv.mod_revision = ev->kv.mod_revision;
			free(e->pend);
			e->pend = NULL;
			cache_mark_dirty(c, e);
		}
	}
	pthread_mutex_unlock(&c->mu);
}
