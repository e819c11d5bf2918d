/*
 * index.c - the cache's index in memory: one entry per key the cache holds
 * (its metadata, and its value until the cache thread has written it), in
 * a hash table under c->mu.  Values live on disk (files.c).
 */
#include <stdlib.h>
#include <string.h>

#include "cache_int.h"

uint64_t cache_fnv(const uint8_t *p, size_t n, uint64_t h)
{
	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 1099511628211ull;
	}
	return h;
}

static size_t hslot(struct fs_cache *c, const uint8_t *k, uint32_t n)
{
	return cache_fnv(k, n, 1469598103934665603ull) & (c->hcap - 1);
}

struct centry *cache_find(struct fs_cache *c, const uint8_t *k, uint32_t n)
{
	for (struct centry *e = c->hash[hslot(c, k, n)]; e; e = e->hnext)
		if (e->klen == n && memcmp(e->key, k, n) == 0)
			return e;
	return NULL;
}

struct centry *cache_add(struct fs_cache *c, const uint8_t *k, uint32_t n)
{
	if (c->n + 1 > c->hcap / 2) {
		size_t nc = c->hcap * 2;
		struct centry **nh = calloc(nc, sizeof *nh);
		if (!nh)
			return NULL;
		for (size_t i = 0; i < c->hcap; i++)
			for (struct centry *e = c->hash[i], *nx; e; e = nx) {
				nx = e->hnext;
				size_t s = cache_fnv(e->key, e->klen, 1469598103934665603ull) &
					   (nc - 1);
				e->hnext = nh[s];
				nh[s] = e;
			}
		free(c->hash);
		c->hash = nh;
		c->hcap = nc;
	}
	struct centry *e = calloc(1, sizeof *e);
	if (!e)
		return NULL;
	e->key = malloc(n + 1);
	if (!e->key) {
		free(e);
		return NULL;
	}
	fs_memcpy(e->key, k, n);
	e->klen = n;
	size_t s = hslot(c, k, n);
	e->hnext = c->hash[s];
	c->hash[s] = e;
	c->n++;
	return e;
}

void cache_entry_free(struct centry *e)
{
	free(e->key);
	free(e->pend);
	free(e);
}

void cache_unlink_entry(struct fs_cache *c, struct centry *x)
{
	for (struct centry **pp = &c->hash[hslot(c, x->key, x->klen)]; *pp; pp = &(*pp)->hnext)
		if (*pp == x) {
			*pp = x->hnext;
			c->n--;
			cache_entry_free(x);
			return;
		}
}

void cache_mark_dirty(struct fs_cache *c, struct centry *e)
{
	e->wgen++;
	if (!e->dirty) {
		e->dirty = 1;
		c->ndirty++;
	}
	pthread_cond_broadcast(&c->cv);
}


/* ------------------------------------------------------------------ */
/* learning                                                             */

/* Keep value val (vlen bytes) with metadata kv for key; c->mu held. */
void cache_keep(struct fs_cache *c, const uint8_t *key, uint32_t klen, const ef_kv *kv,
		const uint8_t *val, uint32_t vlen, int64_t seen_ns)
{
	struct centry *e = cache_find(c, key, klen);
	if (e && !e->gone && e->kv.mod_revision == kv->mod_revision) {
		if (seen_ns > e->seen_ns)
			e->seen_ns = seen_ns; /* memory only: no write for a value known */
		return;
	}
	if (e && !e->gone && e->kv.mod_revision > kv->mod_revision)
		return; /* never step back */
	uint8_t *p = malloc(vlen ? vlen : 1);
	if (!p)
		return;
	if (!e)
		e = cache_add(c, key, klen);
	if (!e) {
		free(p);
		return;
	}
	fs_memcpy(p, val, vlen);
	free(e->pend);
	e->pend = p;
	e->kv = *kv;
	e->kv.key = e->kv.value = (ef_buf){NULL, 0};
	e->size = vlen;
	e->seen_ns = seen_ns;
	e->gone = 0;
	cache_mark_dirty(c, e);
}
