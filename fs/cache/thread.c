/*
 * thread.c - the cache thread: writes what the FUSE requests noted (so no
 * request waits for an fsync), probes the cluster while offline, catches
 * up every cached key when the cluster answers again or the watch lost
 * history, and records DIR/state.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache_int.h"

/* One job of the cache thread: a copy of what to write, made under c->mu. */
struct job {
	uint8_t *buf; /* the whole file, or NULL: remove */
	size_t n;
	char name[NAME_LEN];
	struct centry *e;
	uint64_t wgen;
	int err;
};

/* ------------------------------------------------------------------ */
/* the cache thread                                                     */

/* Write (or remove) every dirty entry, then fsync DIR once.  c->mu held;
 * dropped during the I/O.  Returns the number of failures: those entries
 * stay dirty (their values in memory, still served) for a later retry. */
static int flush_dirty(struct fs_cache *c)
{
	size_t nj = 0, cap = c->ndirty;
	struct job *jobs = calloc(cap ? cap : 1, sizeof *jobs);
	if (!jobs)
		return 1;
	for (size_t i = 0; i < c->hcap && nj < cap; i++)
		for (struct centry *e = c->hash[i]; e && nj < cap; e = e->hnext) {
			if (!e->dirty)
				continue;
			struct job *j = &jobs[nj];
			cache_file_name(e->key, e->klen, j->name);
			j->e = e;
			j->wgen = e->wgen;
			if (!e->gone) {
				j->buf = cache_encode(e, e->pend, &j->n);
				if (!j->buf)
					continue; /* stays dirty */
			}
			e->dirty = 0;
			c->ndirty--;
			nj++;
		}
	int failing = c->failing;
	pthread_mutex_unlock(&c->mu);
	int nerr = nj < cap; /* an entry that could not be encoded */
	int first = 0;       /* errno of the first failure */
	for (size_t i = 0; i < nj; i++) {
		int err = jobs[i].buf
				  ? cache_write_atomic(c->dfd, jobs[i].name, jobs[i].buf, jobs[i].n)
				  : (unlinkat(c->dfd, jobs[i].name, 0) && errno != ENOENT ? errno
											  : 0);
		jobs[i].err = err;
		if (err && !first)
			first = err;
	}
	if (nj && fsync(c->dfd) != 0) {
		if (!first)
			first = errno;
		for (size_t i = 0; i < nj; i++)
			jobs[i].err = jobs[i].err ? jobs[i].err : EIO; /* not durable: again */
	}
	for (size_t i = 0; i < nj; i++)
		nerr += jobs[i].err != 0;
	if (first && !failing)
		fprintf(stderr,
			"etcfs: cache_dir %s: cannot write: %s (values kept in memory; "
			"retrying)\n",
			c->dir, strerror(first));
	else if (!nerr && failing)
		fprintf(stderr, "etcfs: cache_dir %s: writing again\n", c->dir);
	pthread_mutex_lock(&c->mu);
	c->failing = nerr != 0;
	for (size_t i = 0; i < nj; i++) {
		struct centry *e = jobs[i].e;
		free(jobs[i].buf);
		if (e->wgen != jobs[i].wgen)
			continue;  /* changed meanwhile: written again */
		if (jobs[i].err) { /* failed: try again later */
			cache_mark_dirty(c, e);
			continue;
		}
		if (e->gone)
			cache_unlink_entry(c, e);
		else {
			free(e->pend);
			e->pend = NULL;
		}
	}
	free(jobs);
	return nerr;
}

/* One read of the mount's consistency; on-line when it is answered. */
static int probe(struct fs_mount *m)
{
	ef_arena *a = ef_arena_new();
	if (!a)
		return EF_E_NOMEM;
	ef_msg req = {.type = EF_MSG_RANGE}, resp;
	req.u.range.key = (ef_buf){m->prefix, m->plen};
	req.u.range.keys_only = 1; /* one key: cheap whatever the prefix holds */
	req.u.range.limit = 1;
	req.u.range.serializable = m->o.consistency != FS_LINEARIZABLE;
	int rv = fs_call(m, &req, &resp, a);
	ef_arena_free(a);
	return rv;
}

/* Read every cached key again; 0, or the cluster's error (try again). */
static int catch_up(struct fs_mount *m)
{
	struct fs_cache *c = m->cache;
	ef_arena *a = ef_arena_new();
	if (!a)
		return EF_E_NOMEM;
	ef_msg req = {.type = EF_MSG_RANGE}, resp;
	int serial = m->o.consistency != FS_LINEARIZABLE; /* the mount's reads */
	req.u.range.key = (ef_buf){m->prefix, m->plen};
	req.u.range.keys_only = 1; /* one key: cheap whatever the prefix holds */
	req.u.range.limit = 1;
	req.u.range.serializable = (uint8_t)serial;
	int rv = fs_call(m, &req, &resp, a);
	int64_t rev = rv ? 0 : resp.hdr.revision;
	ef_arena_free(a);
	if (rv)
		return rv;
	pthread_mutex_lock(&c->mu);
	size_t n = 0;
	struct centry *ks = calloc(c->n + 1, sizeof *ks);
	for (size_t i = 0; ks && i < c->hcap; i++)
		for (struct centry *e = c->hash[i]; e; e = e->hnext)
			if (!e->gone && (ks[n].key = malloc(e->klen + 1))) {
				fs_memcpy(ks[n].key, e->key, e->klen);
				ks[n++].klen = e->klen;
			}
	pthread_mutex_unlock(&c->mu);
	if (!ks)
		return EF_E_NOMEM;
	for (size_t i = 0; i < n && !rv; i++) {
		struct kv_val v;
		rv = kv_get(m, ks[i].key, ks[i].klen, serial, &v);
		if (rv)
			break;
		pthread_mutex_lock(&c->mu);
		struct centry *e = cache_find(c, ks[i].key, ks[i].klen);
		if (v.exists) {
			cache_keep(c, ks[i].key, ks[i].klen, &v.kv, v.val, v.vlen, clock_wall_ns());
		} else if (e && !e->gone && e->kv.mod_revision <= rev) {
			e->gone = 1;
			free(e->pend);
			e->pend = NULL;
			cache_mark_dirty(c, e);
		}
		pthread_mutex_unlock(&c->mu);
		free(v.val);
	}
	for (size_t i = 0; i < n; i++)
		free(ks[i].key);
	free(ks);
	if (rv == 0) {
		pthread_mutex_lock(&c->mu);
		if (!c->ndirty || (flush_dirty(c) == 0 && !c->ndirty))
			cache_save_state(c, rev); /* only once every value is on disk */
		pthread_mutex_unlock(&c->mu);
	}
	return rv;
}

static void *cache_main(void *arg)
{
	struct fs_mount *m = arg;
	struct fs_cache *c = m->cache;
	int64_t last_state = 0, retry_at = 0;
	pthread_mutex_lock(&c->mu);
	c->tid = gettid();
	while (!c->stop) {
		if (c->ndirty && clock_mono_ms() >= retry_at) {
			if (flush_dirty(c))
				retry_at = clock_mono_ms() + RETRY_MS;
			continue;
		}
		if (c->offline_ns || c->catchup) {
			int was_offline = c->offline_ns != 0;
			pthread_mutex_unlock(&c->mu);
			int rv = was_offline ? probe(m) : 0;
			if (rv == 0)
				cache_result(m, 0);
			if (rv == 0)
				rv = catch_up(m);
			pthread_mutex_lock(&c->mu);
			if (rv == 0) {
				c->catchup = 0;
			} else {
				if (cache_unreachable(rv) && !c->offline_ns) {
					pthread_mutex_unlock(&c->mu);
					cache_result(m, rv);
					pthread_mutex_lock(&c->mu);
				}
				struct timespec dl = clock_after_ms(CLOCK_REALTIME, PROBE_MS);
				pthread_cond_timedwait(&c->cv, &c->mu, &dl);
			}
			continue;
		}
		/* on-line and caught up: the watch keeps every cached key current
		 * up to m->watch_rev (cache_event); remember it for a restart */
		if (clock_mono_ms() - last_state >= STATE_EVERY_MS) {
			pthread_mutex_unlock(&c->mu);
			pthread_mutex_lock(&m->mu);
			int64_t w = m->watch_rev;
			/* the watch lost history (resync.c replays it without
			 * watch events): the cache missed those changes */
			uint64_t rs = __atomic_load_n(&m->ctr.resyncs, __ATOMIC_RELAXED);
			int lost = m->need_resync || rs != c->resyncs;
			pthread_mutex_unlock(&m->mu);
			pthread_mutex_lock(&c->mu);
			last_state = clock_mono_ms();
			c->resyncs = rs;
			if (lost)
				c->catchup = 1;
			else if (w > c->state_rev && !c->ndirty && !c->offline_ns && !c->catchup)
				cache_save_state(c, w);
			continue;
		}
		int64_t wait = STATE_EVERY_MS;
		if (c->ndirty && retry_at - clock_mono_ms() < wait)
			wait = retry_at - clock_mono_ms() > 0 ? retry_at - clock_mono_ms() : 1;
		struct timespec dl = clock_after_ms(CLOCK_REALTIME, wait);
		pthread_cond_timedwait(&c->cv, &c->mu, &dl);
	}
	if (c->ndirty)
		flush_dirty(c);
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

int cache_start(struct fs_mount *m)
{
	struct fs_cache *c = m->cache;
	if (!c)
		return 0;
	c->resyncs = __atomic_load_n(&m->ctr.resyncs, __ATOMIC_RELAXED);
	if (pthread_create(&c->thread, NULL, cache_main, m) != 0)
		return EAGAIN;
	c->started = 1;
	return 0;
}

void cache_stop(struct fs_mount *m)
{
	struct fs_cache *c = m->cache;
	if (!c || !c->started)
		return;
	pthread_mutex_lock(&c->mu);
	c->stop = 1;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
	pthread_join(c->thread, NULL);
	c->started = 0;
}
