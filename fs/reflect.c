/*
 * reflect.c - one watch per mount, and the reflector thread that turns
 * remote changes into the inotify events a local change would make.
 *
 * inotify events come from the VFS only for syscalls that go through it
 * (shared/NOTES-fuse.md): invalidating a cached inode produces none.  So for
 * every change another client made, the reflector thread performs the same
 * operation through the mount point (open+ftruncate+close for a new value,
 * mknod for a new key, unlink, rename, mkdir/rmdir for directories).  The
 * FUSE handlers recognise the reflector by the caller's thread id and answer
 * from the state of the change being replayed (`m->view`), never writing to
 * the cluster.  The mount runs the multi-threaded session loop, so a worker
 * thread serves these requests while the reflector sits in its syscall.
 *
 * Ordering: the watch callback (client delivery thread) only updates cached
 * metadata and queues events; the reflector replays them one whole revision
 * at a time, in revision order (replay.c says how one revision becomes
 * syscalls).  Events caused by this mount's own writes are recognised by
 * revision (kv.c) and not replayed: the local syscall already produced
 * their events.
 *
 * Losing the watch for good (the revision to resume from was compacted)
 * makes the reflector re-read the prefix and replay what differs
 * (resync.c), then watch again from the revision it read.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "etcfs.h"

static uint64_t vhash(const ef_buf *b)
{
	uint64_t h = 1469598103934665603ull;
	for (uint32_t i = 0; i < b->n; i++) {
		h ^= b->p[i];
		h *= 1099511628211ull;
	}
	return h ^ b->n;
}

int reflect_is_me(struct fs_mount *m, fuse_req_t req)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	return m->reflector_tid && ctx && ctx->pid == m->reflector_tid;
}

void reflect_ev_free(struct reflect_ev *e)
{
	free(e->key);
	free(e);
}

/* Update cached metadata for one event; m->mu held. */
static void apply_cached(struct fs_mount *m, const ef_event *ev)
{
	const ef_kv *kv = &ev->kv;
	struct fs_inode *in = inode_find(m, FS_FILE, kv->key.p, kv->key.n);
	if (!in || in->local)
		return;
	if (ev->type == EF_EVENT_PUT) {
		if (kv->mod_revision >= in->mod_rev) {
			/* consistency=cached: the event carries the value, so the
			 * next open of a file this mount is using needs no fetch */
			int keep = m->o.consistency == FS_CACHED && (in->cval || in->nlookup);
			inode_set_kv(in, kv, kv->value.n);
			if (keep && in->cval_rev != kv->mod_revision) {
				uint8_t *c = malloc(kv->value.n ? kv->value.n : 1);
				if (c) {
					fs_memcpy(c, kv->value.p, kv->value.n);
					free(in->cval);
					in->cval = c;
					in->cval_rev = kv->mod_revision;
				}
			}
		}
	} else if (kv->mod_revision >= in->mod_rev) {
		inode_set_absent(in);
		in->mod_rev = kv->mod_revision;
	}
}

static void on_watch(void *ud, const ef_watch_resp *w, const ef_resp_header *hdr)
{
	struct fs_mount *m = ud;
	struct reflect_ev *head = NULL, **tail = &head;
	pthread_mutex_lock(&m->mu);
	if (w->canceled) {
		m->watch_ok = 0;
		m->need_resync = 1;
	} else {
		m->watch_ok = 1;
	}
	uint64_t seq_hi = m->wseq_started;
	for (uint32_t i = 0; i < w->n_events; i++) {
		const ef_event *ev = &w->events[i];
		if (kv_reserved(ev->kv.key.p, ev->kv.key.n))
			continue; /* an O_EXCL create's reservation (kv.c): no file */
		apply_cached(m, ev);
		cache_event(m, ev); /* -o cache_dir */
		struct reflect_ev *e = calloc(1, sizeof *e);
		if (!e)
			continue;
		e->key = malloc(ev->kv.key.n + 1);
		if (!e->key) {
			free(e);
			continue;
		}
		fs_memcpy(e->key, ev->kv.key.p, ev->kv.key.n);
		e->klen = ev->kv.key.n;
		e->type = ev->type;
		e->kv = ev->kv;
		e->kv.key = e->kv.value = (ef_buf){NULL, 0};
		e->size = ev->kv.value.n;
		e->vhash = vhash(&ev->kv.value);
		if (ev->prev_kv) {
			e->prev_exists = 1;
			e->prev = *ev->prev_kv;
			e->prev.key = e->prev.value = (ef_buf){NULL, 0};
			e->prev_size = ev->prev_kv->value.n;
			e->prev_vhash = vhash(&ev->prev_kv->value);
		}
		e->seq_hi = seq_hi;
		*tail = e;
		tail = &e->next;
	}
	/* How far the mount has every change: the last event, or a progress
	 * notification.  Not a "created" (the events from the start revision
	 * to its header revision are still to come), except for the first
	 * watch, started from "now", nor a "canceled". */
	int64_t upto = 0;
	if (w->n_events)
		upto = w->events[w->n_events - 1].kv.mod_revision;
	else if (!w->canceled && (!w->created || m->watch_rev == 0))
		upto = hdr->revision;
	if (upto > m->watch_rev)
		m->watch_rev = upto;
	pthread_mutex_unlock(&m->mu);
	pthread_mutex_lock(&m->rq_mu);
	if (head) {
		if (m->rq_tail)
			m->rq_tail->next = head;
		else
			m->rq_head = head;
		struct reflect_ev *t = head;
		while (t->next)
			t = t->next;
		m->rq_tail = t;
	}
	pthread_cond_broadcast(&m->rq_cv);
	pthread_mutex_unlock(&m->rq_mu);
}

int reflect_watch_begin(struct fs_mount *m, int64_t start_rev)
{
	ef_arena *a = ef_arena_new();
	if (!a)
		return EF_E_NOMEM;
	ef_watch_create_req wr = {0};
	wr.key = (ef_buf){m->prefix, m->plen};
	wr.range_end = m->plen ? ef_prefix_end(a, wr.key) : (ef_buf){(const uint8_t *)"", 1};
	wr.start_revision = start_rev;
	wr.prev_kv = 1;
	wr.progress_notify = 1;
	efc_watch *w = NULL;
	int rv = efc_watch_start(m->wc, &wr, on_watch, m, &w);
	ef_arena_free(a);
	if (rv == 0)
		m->watch = w;
	return rv;
}

static void *reflector_main(void *arg)
{
	struct fs_mount *m = arg;
	pthread_mutex_lock(&m->rq_mu);
	m->reflector_tid = gettid();
	pthread_cond_broadcast(&m->rq_cv);
	pthread_mutex_unlock(&m->rq_mu);
	reflect_still_mounted(m); /* learn the mount's st_dev */
	pthread_mutex_lock(&m->rq_mu);
	for (;;) {
		if (m->stopping)
			break;
		/* (events queued before the watch was lost are replayed first:
		 * resync compares with the state they leave) */
		if (!m->watch || (m->need_resync && !m->rq_head)) {
			int resyncing = m->need_resync;
			pthread_mutex_unlock(&m->rq_mu);
			pthread_mutex_lock(&m->mu);
			int64_t from = m->watch_rev ? m->watch_rev + 1 : 0;
			pthread_mutex_unlock(&m->mu);
			if (resyncing ? resync_run(m) != 0 : reflect_watch_begin(m, from) != 0)
				usleep(500 * 1000);
			pthread_mutex_lock(&m->rq_mu);
			continue;
		}
		if (!m->rq_head) {
			struct timespec dl = clock_after_ms(CLOCK_REALTIME, 1000);
			pthread_cond_timedwait(&m->rq_cv, &m->rq_mu, &dl);
			continue;
		}
		/* one revision at a time, whole (a watch message always carries
		 * whole revisions, so they are all queued) */
		size_t n = 0, cap = 0;
		struct reflect_ev **batch = NULL;
		int64_t rev = m->rq_head->kv.mod_revision;
		while (m->rq_head && m->rq_head->kv.mod_revision == rev) {
			if (n == cap) {
				size_t nc = cap ? cap * 2 : 64;
				struct reflect_ev **nb = realloc(batch, nc * sizeof *nb);
				if (!nb)
					break; /* the rest is the next batch */
				batch = nb;
				cap = nc;
			}
			batch[n++] = m->rq_head;
			m->rq_head = m->rq_head->next;
		}
		if (!m->rq_head)
			m->rq_tail = NULL;
		pthread_mutex_unlock(&m->rq_mu);
		if (n)
			replay_batch(m, batch, (int)n);
		else
			usleep(100 * 1000); /* out of memory: try again */
		for (size_t i = 0; i < n; i++)
			reflect_ev_free(batch[i]);
		free(batch);
		pthread_mutex_lock(&m->rq_mu);
	}
	pthread_mutex_unlock(&m->rq_mu);
	return NULL;
}

int reflect_start(struct fs_mount *m)
{
	pthread_mutex_init(&m->rq_mu, NULL);
	pthread_cond_init(&m->rq_cv, NULL);
	/* first attempt here, so changes right after mount are seen */
	reflect_watch_begin(m, 0);
	if (pthread_create(&m->reflector, NULL, reflector_main, m) != 0)
		return EAGAIN;
	m->reflector_started = 1;
	pthread_mutex_lock(&m->rq_mu);
	while (!m->reflector_tid)
		pthread_cond_wait(&m->rq_cv, &m->rq_mu);
	pthread_mutex_unlock(&m->rq_mu);
	return 0;
}

void reflect_stop(struct fs_mount *m)
{
	pthread_mutex_lock(&m->rq_mu);
	m->stopping = 1;
	pthread_cond_broadcast(&m->rq_cv);
	pthread_mutex_unlock(&m->rq_mu);
	pthread_mutex_lock(&m->mu);
	pthread_cond_broadcast(&m->own_cv);
	pthread_mutex_unlock(&m->mu);
	if (m->reflector_started)
		pthread_join(m->reflector, NULL);
	m->reflector_started = 0;
	if (m->watch)
		efc_watch_stop(m->watch);
	m->watch = NULL;
	pthread_mutex_lock(&m->rq_mu);
	while (m->rq_head) {
		struct reflect_ev *e = m->rq_head;
		m->rq_head = e->next;
		reflect_ev_free(e);
	}
	m->rq_tail = NULL;
	pthread_mutex_unlock(&m->rq_mu);
	reflect_view_reset(m);
}
