/*
 * watchhub.c - the watch hub of one member: etcd v3 watch semantics over
 * the store's history.
 *
 * Three kinds of threads meet here:
 *
 *   - the apply thread calls watchhub_publish() after each store_commit.  It
 *     only copies the batch into one malloc block and appends it to the
 *     hub queue under `qmu` (a lock nobody holds for long), so the apply
 *     loop never waits for matching, for the store or for a consumer;
 *   - the hub thread takes queue items, matches their events against the
 *     index of *synced* watches and appends one message per (watch, batch)
 *     to the stream's outbox; between batches it catches *unsynced* watches
 *     up from the store (store_events_since, in chunks of whole revisions),
 *     sends progress notifications and wakes streams whose back-off ended;
 *   - a few sender threads pop messages from stream outboxes and call the
 *     stream callbacks with no lock held.  One stream is served by at most
 *     one sender at a time (messages of a stream keep their order), so a
 *     callback that blocks holds one sender and that stream only.
 *
 * Synced and unsynced (etcd's watcher groups).  `deliv_rev` is the last
 * revision the hub thread has matched; only the hub thread moves it.  Each
 * watch has `next_rev`, the first revision it has not been given yet.  A
 * watch is synced when next_rev > deliv_rev: everything it still needs is in
 * the queue or not published yet, so matching feeds it; it skips events
 * below next_rev (they were given by the catch-up or precede its start).
 * Otherwise it is unsynced: the hub thread reads the store from next_rev,
 * without the hub lock, until a read returns nothing; because the store's
 * revision at that moment (C) is >= every published revision (publish comes
 * after commit), next_rev becomes C + 1 > deliv_rev and the watch joins the
 * synced index with no gap (revisions <= C came from the store) and no
 * duplicate (revisions <= C in the queue are skipped).  Only the hub thread
 * moves watches between the groups and changes deliv_rev, so there is no
 * race between a catch-up and a concurrent publish.
 *
 * Slow consumers.  A callback returning non-zero leaves its message at the
 * head of the outbox and the stream backs off (10 ms doubling to 1 s); while
 * it cannot drain, new events pile up in the outbox up to `outbox_max`
 * events, past which the watch is dropped to the unsynced group at the
 * revision it missed and is caught up from the store once the outbox has
 * room again.  After `max_failures` consecutive failures the stream's
 * watches are cancelled ("etcfs: watcher too slow").  If the hub queue
 * itself grows past its limit (64 MiB, watchhub_set_queue_bytes; the hub
 * thread cannot keep up), publish drops the queue and leaves a marker: every
 * synced watch becomes unsynced and is served from the store, so memory
 * stays bounded.  watchhub_resync queues the same marker.
 *
 * Answers (EF_MSG_WATCH_RESP).  Message id = the WATCH_CREATE request's id
 * for everything about that watch (created, events, cancel, per-watch
 * progress); watch ids are assigned per stream from 0 as etcd does (an
 * explicit id in use: created+canceled with etcd's reason).  A start
 * revision below the compact revision gives created, then canceled with
 * compact_revision.  WATCH_PROGRESS is answered with the progress request's
 * id, watch_id -1 (etcd 3.4) and header.revision = the revision up to which
 * every watch of the stream has been given its events.  `fragment` is
 * ignored: a message always carries whole revisions.  A callback may call
 * watchhub_stream_request or watchhub_stream_close on its own stream.
 *
 * Matching index (cost per published event with key length k and m
 * matching watches):
 *   - single-key watches: a chained hash table keyed by the key, O(k + m);
 *   - every range (prefix, [key, end), from-key): an array sorted by range
 *     start, seen as an implicit balanced binary tree whose nodes carry the
 *     largest range end of their subtree (an augmented interval tree, as
 *     cgranges does); a stabbing query costs O(log R + m log R) for R range
 *     watches.  Creating or removing a range watch only marks the array
 *     dirty; the hub thread rebuilds it in O(R log R) before the next match.
 *
 * Locks: `mu` guards streams, watches, the index and outboxes; `qmu` guards
 * the queue.  Order: mu before qmu.  Callbacks and store reads run with
 * neither.  fill_hdr is called by the senders with no lock held.
 */
#include "../../common/clock.h"
#include "../watchhub.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../log.h"

#define HUB_SENDERS 4
#define HUB_CATCHUP_CHUNK 512   /* events per store read */
#define HUB_CATCHUP_PER_PASS 64 /* watches served between two queue drains */
#define HUB_QUEUE_MAX_BYTES (64u << 20)
#define HUB_DEFAULT_PROGRESS_MS (10u * 60u * 1000u)
#define HUB_DEFAULT_OUTBOX 4096u
#define HUB_DEFAULT_MAX_FAILURES 20u
#define HUB_BACKOFF_MIN_MS 10
#define HUB_BACKOFF_MAX_MS 1000

#define REASON_COMPACTED "etcdserver: mvcc: required revision has been compacted"
#define REASON_TOO_SLOW "etcfs: watcher too slow"
#define REASON_DUP_ID "mvcc: duplicate watch ID provided on the WatchStream"
#define REASON_EMPTY_RANGE "mvcc: watcher range is empty"
#define REASON_NOT_EXIST "mvcc: watcher does not exist"

enum wstate {
	W_SYNCED = 1,
	W_UNSYNCED = 2,
	W_GONE = 3
};

struct kentry;

struct hub_watch {
	hub_stream *s; /* NULL once GONE */
	int64_t id;
	uint64_t req_id; /* id of the WATCH_CREATE request: every answer carries it */
	uint8_t *key, *end;
	uint32_t klen, elen;       /* elen 0: single key */
	uint8_t is_range, end_inf; /* end_inf: range_end "\0" (every key >= key) */
	uint8_t prev_kv, no_put, no_delete, progress_notify;
	/* First revision not given yet.  SYNCED implies next_rev > deliv_rev
	 * at the time it joined; matching skips events below it. */
	int64_t next_rev;
	int state;           /* enum wstate */
	int catching;        /* the hub thread reads the store for it, unlocked: do not free */
	int sent_since_tick; /* events queued since the last progress tick */
	struct hub_watch *sprev, *snext; /* stream's watches */
	/* SYNCED: exact-key chain of `ke`, or the range list.  UNSYNCED: hub's
	 * unsynced list. */
	struct hub_watch *prev, *next;
	struct kentry *ke;
	/* matching scratch (hub thread) */
	uint64_t touch_gen;
	uint32_t *pend, pend_n, pend_cap;
	int64_t pend_lost_rev; /* first event that did not fit in pend (no memory), 0 none */
	struct hub_watch *tnext;
};

/* One message waiting in an outbox: header, then the events, prev_kvs and
 * bytes in the same block. */
struct omsg {
	struct omsg *next;
	struct hub_watch *w; /* the watch it belongs to (purge on cancel); NULL: stream-wide */
	uint32_t n_events;
	ef_msg m; /* hdr.revision set; the rest of hdr is filled at send time */
};

struct hub_stream {
	watchhub *h;
	node_watch_cb cb;
	void *ud;
	struct hub_watch *watches;
	uint32_t n_unsynced;
	int64_t next_auto_id; /* etcd's first watch id is 0 */
	struct omsg *out_head, *out_tail;
	uint64_t out_events; /* sum of n_events in the outbox (not the one in flight) */
	int busy;            /* a sender is inside cb */
	pthread_t busy_thread;
	int in_ready;
	struct hub_stream *rprev, *rnext; /* ready list */
	int closing, free_on_return;
	int dead;            /* watches cancelled as too slow; cleared once the outbox drains */
	uint32_t failures;   /* consecutive callback failures */
	int64_t retry_at_ms; /* 0: not backing off */
	struct hub_stream *prev, *next; /* hub's streams */
};

struct kentry {
	struct kentry *next;
	uint64_t hash;
	struct hub_watch *head;
	uint32_t klen;
	uint8_t key[];
};

enum qkind {
	Q_BATCH = 1,
	Q_MARKER = 2
};

struct qitem {
	struct qitem *next;
	int kind;
	int64_t revision;
	uint32_t n;
	ef_event *ev;
	size_t bytes;
};

struct watchhub {
	store *st;
	watchhub_hdr_fn fill_hdr;
	void *ud;

	pthread_mutex_t mu;
	pthread_cond_t send_cv;  /* senders wait for ready streams */
	pthread_cond_t close_cv; /* stream_close waits for the sender to leave cb */
	int stopping;
	struct hub_stream *streams;
	struct hub_stream *ready_head, *ready_tail;
	uint32_t n_backoff;
	struct hub_watch *unsynced, *unsynced_tail; /* FIFO: catch-up serves it round-robin */
	int64_t deliv_rev; /* last revision matched (hub thread only writes) */
	uint64_t n_watchers;
	uint32_t progress_ms;
	int64_t next_tick_ms;
	uint32_t outbox_max, max_failures;

	/* exact-key index */
	struct kentry **buckets;
	size_t nbuckets, nentries;
	/* range index */
	struct hub_watch *ranges; /* synced range watches (list) */
	size_t n_ranges;
	int ranges_dirty;
	struct hub_watch **rarr, **rmax;
	size_t rcap;
	/* matching scratch */
	uint64_t gen;
	struct hub_watch *touched;

	pthread_mutex_t qmu;
	pthread_cond_t qcv; /* CLOCK_MONOTONIC */
	struct qitem *qhead, *qtail;
	size_t qbytes, qmax; /* bytes queued; past qmax publish drops the queue */
	uint64_t overflows;  /* since the last log line about them */
	int64_t overflow_log_ms;
	int kick, qstop;

	pthread_t hub_thread;
	pthread_t senders[HUB_SENDERS];
	int n_senders, hub_started;
};

/* ================================================================== */
/* Small helpers                                                        */

static int keycmp(const uint8_t *a, uint32_t an, const uint8_t *b, uint32_t bn)
{
	uint32_t n = an < bn ? an : bn;
	int c = n ? memcmp(a, b, n) : 0;

	if (c)
		return c;
	return an < bn ? -1 : an > bn;
}

/* Does range watch w's end lie strictly above key k (k < end)? */
static int end_above(const struct hub_watch *w, const uint8_t *k, uint32_t kn)
{
	return w->end_inf || keycmp(k, kn, w->end, w->elen) < 0;
}

static int end_cmp(const struct hub_watch *a, const struct hub_watch *b)
{
	if (a->end_inf || b->end_inf)
		return a->end_inf - b->end_inf;
	return keycmp(a->end, a->elen, b->end, b->elen);
}

static uint64_t key_hash(const uint8_t *p, uint32_t n)
{
	uint64_t h = 1469598103934665603ull;

	for (uint32_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 1099511628211ull;
	}
	return h ^ (h >> 29);
}

static void kick_locked_q(watchhub *h)
{
	pthread_mutex_lock(&h->qmu);
	h->kick = 1;
	pthread_cond_signal(&h->qcv);
	pthread_mutex_unlock(&h->qmu);
}

/* ================================================================== */
/* Messages                                                             */

#define ALIGN8(x) (((x) + 7) & ~(size_t)7)

static void put_buf(uint8_t **p, ef_buf *b)
{
	if (b->n)
		memcpy(*p, b->p, b->n);
	b->p = *p;
	*p += b->n;
}

/* A message with the events base[idx[i]] (or base[i] when idx is NULL) for
 * watch w; prev_kv kept only when w asked for it. */
static struct omsg *omsg_events(struct hub_watch *w, const ef_event *base, const uint32_t *idx,
				uint32_t n, int64_t hdr_rev)
{
	size_t bytes = 0, nprev = 0;

	for (uint32_t i = 0; i < n; i++) {
		const ef_event *e = &base[idx ? idx[i] : i];
		bytes += (size_t)e->kv.key.n + e->kv.value.n;
		if (w->prev_kv && e->prev_kv) {
			nprev++;
			bytes += (size_t)e->prev_kv->key.n + e->prev_kv->value.n;
		}
	}
	size_t head = ALIGN8(sizeof(struct omsg));
	struct omsg *m = malloc(head + n * sizeof(ef_event) + nprev * sizeof(ef_kv) + bytes);
	if (!m)
		return NULL;
	memset(m, 0, sizeof(*m));
	ef_event *evs = (ef_event *)((uint8_t *)m + head);
	ef_kv *pk = (ef_kv *)(evs + n);
	uint8_t *p = (uint8_t *)(pk + nprev);
	for (uint32_t i = 0; i < n; i++) {
		const ef_event *e = &base[idx ? idx[i] : i];
		evs[i] = *e;
		put_buf(&p, &evs[i].kv.key);
		put_buf(&p, &evs[i].kv.value);
		evs[i].prev_kv = NULL;
		if (w->prev_kv && e->prev_kv) {
			*pk = *e->prev_kv;
			put_buf(&p, &pk->key);
			put_buf(&p, &pk->value);
			evs[i].prev_kv = pk++;
		}
	}
	m->w = w;
	m->n_events = n;
	m->m.type = EF_MSG_WATCH_RESP;
	m->m.id = w->req_id;
	m->m.hdr.revision = hdr_rev;
	m->m.u.watch_resp.watch_id = w->id;
	m->m.u.watch_resp.events = evs;
	m->m.u.watch_resp.n_events = n;
	return m;
}

/* created / canceled / progress message. */
static struct omsg *omsg_ctl(struct hub_watch *w, uint64_t req_id, int64_t watch_id, int created,
			     int canceled, int64_t compact_rev, const char *reason, int64_t hdr_rev)
{
	size_t rl = reason ? strlen(reason) : 0;
	size_t head = ALIGN8(sizeof(struct omsg));
	struct omsg *m = calloc(1, head + rl + 1);

	if (!m)
		return NULL;
	m->w = w;
	m->m.type = EF_MSG_WATCH_RESP;
	m->m.id = req_id;
	m->m.hdr.revision = hdr_rev;
	ef_watch_resp *r = &m->m.u.watch_resp;
	r->watch_id = watch_id;
	r->created = (uint8_t)created;
	r->canceled = (uint8_t)canceled;
	r->compact_revision = compact_rev;
	if (rl) {
		uint8_t *p = (uint8_t *)m + head;
		memcpy(p, reason, rl);
		r->cancel_reason.p = p;
		r->cancel_reason.n = (uint32_t)rl;
	}
	return m;
}

/* ================================================================== */
/* Outboxes and the ready list (mu held)                                */

static void ready_push(watchhub *h, hub_stream *s)
{
	if (s->in_ready || s->busy || s->closing || s->retry_at_ms || !s->out_head)
		return;
	s->in_ready = 1;
	s->rnext = NULL;
	s->rprev = h->ready_tail;
	if (h->ready_tail)
		h->ready_tail->rnext = s;
	else
		h->ready_head = s;
	h->ready_tail = s;
	pthread_cond_signal(&h->send_cv);
}

static void ready_remove(watchhub *h, hub_stream *s)
{
	if (!s->in_ready)
		return;
	if (s->rprev)
		s->rprev->rnext = s->rnext;
	else
		h->ready_head = s->rnext;
	if (s->rnext)
		s->rnext->rprev = s->rprev;
	else
		h->ready_tail = s->rprev;
	s->in_ready = 0;
	s->rprev = s->rnext = NULL;
}

/* Takes ownership of m (NULL: out of memory, logged and dropped). */
static void out_push(hub_stream *s, struct omsg *m)
{
	if (!m) {
		log_error("watch hub: out of memory building a watch response: dropped");
		return;
	}
	m->next = NULL;
	if (s->out_tail)
		s->out_tail->next = m;
	else
		s->out_head = m;
	s->out_tail = m;
	s->out_events += m->n_events;
	ready_push(s->h, s);
}

/* Drop queued messages of watch w (every message when w is NULL). */
static void out_purge(hub_stream *s, struct hub_watch *w)
{
	struct omsg **pp = &s->out_head, *m;

	s->out_tail = NULL;
	while ((m = *pp)) {
		if (!w || m->w == w) {
			*pp = m->next;
			s->out_events -= m->n_events;
			free(m);
		} else {
			s->out_tail = m;
			pp = &m->next;
		}
	}
}

/* ================================================================== */
/* Index (mu held)                                                      */

static int ktable_grow(watchhub *h)
{
	size_t nb = h->nbuckets ? h->nbuckets * 2 : 256;
	struct kentry **b = calloc(nb, sizeof(*b));

	if (!b)
		return EF_E_NOMEM;
	for (size_t i = 0; i < h->nbuckets; i++) {
		struct kentry *e, *next;
		for (e = h->buckets[i]; e; e = next) {
			next = e->next;
			size_t j = e->hash & (nb - 1);
			e->next = b[j];
			b[j] = e;
		}
	}
	free(h->buckets);
	h->buckets = b;
	h->nbuckets = nb;
	return 0;
}

static struct kentry *ktable_find(watchhub *h, const uint8_t *k, uint32_t kn, uint64_t hash)
{
	if (!h->nbuckets)
		return NULL;
	for (struct kentry *e = h->buckets[hash & (h->nbuckets - 1)]; e; e = e->next)
		if (e->hash == hash && e->klen == kn && (kn == 0 || memcmp(e->key, k, kn) == 0))
			return e;
	return NULL;
}

/* Unsynced list and index membership. */
static void unsynced_add(watchhub *h, struct hub_watch *w)
{
	w->state = W_UNSYNCED;
	w->next = NULL;
	w->prev = h->unsynced_tail;
	if (h->unsynced_tail)
		h->unsynced_tail->next = w;
	else
		h->unsynced = w;
	h->unsynced_tail = w;
	w->s->n_unsynced++;
}

static void unsynced_del(watchhub *h, struct hub_watch *w)
{
	if (w->prev)
		w->prev->next = w->next;
	else
		h->unsynced = w->next;
	if (w->next)
		w->next->prev = w->prev;
	else
		h->unsynced_tail = w->prev;
	w->prev = w->next = NULL;
	w->s->n_unsynced--;
}

static int synced_add(watchhub *h, struct hub_watch *w)
{
	if (w->is_range) {
		w->prev = NULL;
		w->next = h->ranges;
		if (h->ranges)
			h->ranges->prev = w;
		h->ranges = w;
		h->n_ranges++;
		h->ranges_dirty = 1;
		w->state = W_SYNCED;
		return 0;
	}
	uint64_t hash = key_hash(w->key, w->klen);
	struct kentry *e = ktable_find(h, w->key, w->klen, hash);
	if (!e) {
		if (h->nentries + 1 > h->nbuckets && ktable_grow(h) != 0)
			return EF_E_NOMEM;
		e = malloc(sizeof(*e) + w->klen);
		if (!e)
			return EF_E_NOMEM;
		e->hash = hash;
		e->klen = w->klen;
		e->head = NULL;
		if (w->klen)
			memcpy(e->key, w->key, w->klen);
		size_t j = hash & (h->nbuckets - 1);
		e->next = h->buckets[j];
		h->buckets[j] = e;
		h->nentries++;
	}
	w->ke = e;
	w->prev = NULL;
	w->next = e->head;
	if (e->head)
		e->head->prev = w;
	e->head = w;
	w->state = W_SYNCED;
	return 0;
}

static void synced_del(watchhub *h, struct hub_watch *w)
{
	if (w->is_range) {
		if (w->prev)
			w->prev->next = w->next;
		else
			h->ranges = w->next;
		if (w->next)
			w->next->prev = w->prev;
		h->n_ranges--;
		h->ranges_dirty = 1;
	} else {
		struct kentry *e = w->ke;
		if (w->prev)
			w->prev->next = w->next;
		else
			e->head = w->next;
		if (w->next)
			w->next->prev = w->prev;
		if (!e->head) {
			struct kentry **pp = &h->buckets[e->hash & (h->nbuckets - 1)];
			while (*pp != e)
				pp = &(*pp)->next;
			*pp = e->next;
			free(e);
			h->nentries--;
		}
		w->ke = NULL;
	}
	w->prev = w->next = NULL;
}

/* Leave whatever group w is in (state is then undefined until set). */
static void group_leave(watchhub *h, struct hub_watch *w)
{
	if (w->state == W_SYNCED)
		synced_del(h, w);
	else if (w->state == W_UNSYNCED)
		unsynced_del(h, w);
}

/* Where a synced watch resumes from the store: it has every event up to
 * deliv_rev, and never anything before its own start. */
static int64_t resume_rev(const watchhub *h, const struct hub_watch *w)
{
	return w->next_rev > h->deliv_rev + 1 ? w->next_rev : h->deliv_rev + 1;
}

/* Move a synced watch to the unsynced group, to be served from rev. */
static void make_unsynced(watchhub *h, struct hub_watch *w, int64_t rev)
{
	group_leave(h, w);
	w->next_rev = rev;
	unsynced_add(h, w);
}

static void make_synced(watchhub *h, struct hub_watch *w)
{
	unsynced_del(h, w);
	if (synced_add(h, w) != 0) {
		/* Out of memory for the index: stay unsynced, retried later. */
		unsynced_add(h, w);
	}
}

static int cmp_range_start(const void *a, const void *b)
{
	const struct hub_watch *x = *(struct hub_watch *const *)a,
			       *y = *(struct hub_watch *const *)b;

	return keycmp(x->key, x->klen, y->key, y->klen);
}

/* rmax[mid] = the watch with the largest end in the subtree [lo, hi) whose
 * root is mid = (lo + hi) / 2. */
static struct hub_watch *rmax_build(watchhub *h, size_t lo, size_t hi)
{
	if (lo >= hi)
		return NULL;
	size_t mid = lo + (hi - lo) / 2;
	struct hub_watch *best = h->rarr[mid];
	struct hub_watch *l = rmax_build(h, lo, mid), *r = rmax_build(h, mid + 1, hi);
	if (l && end_cmp(l, best) > 0)
		best = l;
	if (r && end_cmp(r, best) > 0)
		best = r;
	h->rmax[mid] = best;
	return best;
}

static int ranges_rebuild(watchhub *h)
{
	if (h->n_ranges > h->rcap) {
		size_t cap = h->n_ranges * 2;
		struct hub_watch **a = realloc(h->rarr, cap * sizeof(*a));
		if (!a)
			return EF_E_NOMEM;
		h->rarr = a;
		a = realloc(h->rmax, cap * sizeof(*a));
		if (!a)
			return EF_E_NOMEM;
		h->rmax = a;
		h->rcap = cap;
	}
	size_t n = 0;
	for (struct hub_watch *w = h->ranges; w; w = w->next)
		h->rarr[n++] = w;
	if (n > 1)
		qsort(h->rarr, n, sizeof(*h->rarr), cmp_range_start);
	rmax_build(h, 0, n);
	h->ranges_dirty = 0;
	return 0;
}

/* ================================================================== */
/* Watches (mu held)                                                    */

static void watch_free(struct hub_watch *w)
{
	free(w->key);
	free(w->end);
	free(w->pend);
	free(w);
}

/* Remove w from its stream, its group and the outbox; freed now, or by the
 * hub thread when a catch-up read is in flight. */
static void watch_remove(watchhub *h, struct hub_watch *w)
{
	hub_stream *s = w->s;

	group_leave(h, w);
	w->state = W_GONE;
	out_purge(s, w);
	if (w->sprev)
		w->sprev->snext = w->snext;
	else
		s->watches = w->snext;
	if (w->snext)
		w->snext->sprev = w->sprev;
	w->s = NULL;
	h->n_watchers--;
	if (!w->catching)
		watch_free(w);
}

static struct hub_watch *stream_find(hub_stream *s, int64_t id)
{
	for (struct hub_watch *w = s->watches; w; w = w->snext)
		if (w->id == id)
			return w;
	return NULL;
}

/* Cancel with a message (compacted, too slow, store error). */
static void watch_cancel(watchhub *h, struct hub_watch *w, int64_t compact_rev, const char *reason)
{
	hub_stream *s = w->s;
	struct omsg *m = omsg_ctl(NULL, w->req_id, w->id, 0, 1, compact_rev, reason, h->deliv_rev);

	watch_remove(h, w);
	out_push(s, m);
}

/* ================================================================== */
/* Matching (hub thread, mu held)                                       */

static void consider(watchhub *h, struct hub_watch *w, const ef_event *e, uint32_t i)
{
	if (e->kv.mod_revision < w->next_rev)
		return;
	if ((e->type == EF_EVENT_PUT && w->no_put) || (e->type == EF_EVENT_DELETE && w->no_delete))
		return;
	if (w->touch_gen != h->gen) {
		w->touch_gen = h->gen;
		w->pend_n = 0;
		w->pend_lost_rev = 0;
		w->tnext = h->touched;
		h->touched = w;
	}
	if (w->pend_n == w->pend_cap) {
		uint32_t cap = w->pend_cap ? w->pend_cap * 2 : 8;
		uint32_t *p = realloc(w->pend, cap * sizeof(*p));
		if (!p) {
			if (!w->pend_lost_rev)
				w->pend_lost_rev = e->kv.mod_revision;
			return; /* match_batch sends w to the store instead */
		}
		w->pend = p;
		w->pend_cap = cap;
	}
	w->pend[w->pend_n++] = i;
}

static void range_stab(watchhub *h, size_t lo, size_t hi, const ef_event *e, uint32_t i)
{
	const uint8_t *k = e->kv.key.p;
	uint32_t kn = e->kv.key.n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (!end_above(h->rmax[mid], k, kn))
			return; /* no range of this subtree reaches k */
		range_stab(h, lo, mid, e, i);
		struct hub_watch *w = h->rarr[mid];
		if (keycmp(w->key, w->klen, k, kn) > 0)
			return; /* mid and its right subtree start above k */
		if (end_above(w, k, kn))
			consider(h, w, e, i);
		lo = mid + 1;
	}
}

static void match_batch(watchhub *h, const struct qitem *q)
{
	if (h->ranges_dirty && ranges_rebuild(h) != 0) {
		/* Cannot index ranges: every range watch is caught up from the
		 * store instead (correct, just slower). */
		while (h->ranges)
			make_unsynced(h, h->ranges, resume_rev(h, h->ranges));
		h->ranges_dirty = 0;
	}
	h->gen++;
	h->touched = NULL;
	for (uint32_t i = 0; i < q->n; i++) {
		const ef_event *e = &q->ev[i];
		if (h->nentries) {
			struct kentry *ke = ktable_find(h, e->kv.key.p, e->kv.key.n,
							key_hash(e->kv.key.p, e->kv.key.n));
			for (struct hub_watch *w = ke ? ke->head : NULL; w; w = w->next)
				consider(h, w, e, i);
		}
		if (h->n_ranges)
			range_stab(h, 0, h->n_ranges, e, i);
	}
	for (struct hub_watch *w = h->touched; w; w = w->tnext) {
		hub_stream *s = w->s;
		if (w->pend_lost_rev) {
			int64_t r =
				w->pend_n ? q->ev[w->pend[0]].kv.mod_revision : w->pend_lost_rev;
			make_unsynced(h, w, r < w->pend_lost_rev ? r : w->pend_lost_rev);
			continue;
		}
		if (!w->pend_n)
			continue;
		int64_t first = q->ev[w->pend[0]].kv.mod_revision;
		struct omsg *m = NULL;
		if (!(s->out_events > 0 && s->out_events + w->pend_n > h->outbox_max))
			m = omsg_events(w, q->ev, w->pend, w->pend_n, q->revision);
		if (!m) {
			/* Outbox full (or no memory): lagging, served from the store. */
			make_unsynced(h, w, first);
			continue;
		}
		w->next_rev = q->ev[w->pend[w->pend_n - 1]].kv.mod_revision + 1;
		w->sent_since_tick = 1;
		out_push(s, m);
	}
	h->touched = NULL;
	if (q->revision > h->deliv_rev)
		h->deliv_rev = q->revision;
}

/* Queue overflow or resync: every synced watch goes to the store. */
static void apply_marker(watchhub *h, const struct qitem *q)
{
	for (hub_stream *s = h->streams; s; s = s->next)
		for (struct hub_watch *w = s->watches; w; w = w->snext)
			if (w->state == W_SYNCED)
				make_unsynced(h, w, resume_rev(h, w));
	if (q->revision > h->deliv_rev)
		h->deliv_rev = q->revision;
}

/* ================================================================== */
/* Catch-up (hub thread)                                                */

static int catchup_eligible(watchhub *h, struct hub_watch *w)
{
	hub_stream *s = w->s;

	return !w->catching && !s->closing && !s->dead && !s->retry_at_ms &&
	       s->out_events < h->outbox_max / 2 + 1;
}

/* One pass: one store read for up to HUB_CATCHUP_PER_PASS unsynced
 * watches.  Returns non-zero if it made progress (call again). mu held on
 * entry and exit; dropped around the store reads. */
static int catchup_pass(watchhub *h, ef_arena *a)
{
	struct hub_watch *pin[HUB_CATCHUP_PER_PASS];
	int n = 0, progress = 0;

	for (struct hub_watch *w = h->unsynced; w && n < HUB_CATCHUP_PER_PASS; w = w->next)
		if (catchup_eligible(h, w)) {
			w->catching = 1;
			pin[n++] = w;
		}
	for (int i = 0; i < n; i++) {
		struct hub_watch *w = pin[i];
		if (w->state == W_GONE) { /* cancelled while an earlier one was read */
			watch_free(w);
			continue;
		}
		int64_t from = w->next_rev;
		ef_buf key = {w->key, w->klen}, end = {w->end, w->elen};
		uint32_t max =
			h->outbox_max < HUB_CATCHUP_CHUNK ? h->outbox_max : HUB_CATCHUP_CHUNK;
		int want_prev = w->prev_kv;
		pthread_mutex_unlock(&h->mu);

		/* The key bytes stay valid: a pinned watch is not freed. */
		ef_arena_reset(a);
		store_events se = {.a = a};
		int64_t nxt = 0;
		int64_t c0 = store_revision(h->st);
		int rc = store_events_since(h->st, key, end, from, max ? max : 1, want_prev, &se,
					    &nxt);
		int64_t compact = rc == EF_E_COMPACTED ? store_compact_revision(h->st) : 0;

		pthread_mutex_lock(&h->mu);
		w->catching = 0;
		if (w->state == W_GONE) {
			watch_free(w);
			continue;
		}
		if (w->state != W_UNSYNCED || w->next_rev != from)
			continue;
		progress = 1;
		if (rc == EF_E_COMPACTED) {
			watch_cancel(h, w, compact, REASON_COMPACTED);
			continue;
		}
		if (rc != 0) {
			log_warn("watch hub: reading history for watch %lld failed: %s",
				 (long long)w->id, ef_strerror(rc));
			watch_cancel(h, w, 0, ef_strerror(rc));
			continue;
		}
		/* Filter into the watch's scratch index list. */
		uint32_t k = 0;
		if (se.n > w->pend_cap) {
			uint32_t *p = realloc(w->pend, se.n * sizeof(*p));
			if (!p)
				continue; /* retried next pass */
			w->pend = p;
			w->pend_cap = se.n;
		}
		int64_t last = 0;
		for (uint32_t j = 0; j < se.n; j++) {
			const ef_event *e = &se.ev[j];
			if (e->kv.mod_revision > last)
				last = e->kv.mod_revision;
			if (e->kv.mod_revision < from)
				continue;
			if ((e->type == EF_EVENT_PUT && w->no_put) ||
			    (e->type == EF_EVENT_DELETE && w->no_delete))
				continue;
			w->pend[k++] = j;
		}
		if (k) {
			struct omsg *m = omsg_events(w, se.ev, w->pend, k, c0 > last ? c0 : last);
			if (!m)
				continue; /* retried next pass */
			w->sent_since_tick = 1;
			out_push(w->s, m);
		}
		int64_t next = w->next_rev;
		if (nxt > next)
			next = nxt;
		if (last + 1 > next)
			next = last + 1;
		if (se.n == 0 && c0 + 1 > next)
			next = c0 + 1; /* nothing in (from, c0]: the read saw at least c0 */
		w->next_rev = next;
		if (se.n == 0 && w->next_rev > h->deliv_rev) {
			make_synced(h, w);
		} else {
			unsynced_del(h, w); /* to the tail: the others get their turn */
			unsynced_add(h, w);
		}
	}
	return progress;
}

/* ================================================================== */
/* Progress notifications and back-off (hub thread, mu held)            */

static void progress_tick(watchhub *h)
{
	for (hub_stream *s = h->streams; s; s = s->next) {
		if (s->closing || s->dead)
			continue;
		for (struct hub_watch *w = s->watches; w; w = w->snext) {
			if (!w->progress_notify)
				continue;
			if (w->state == W_SYNCED && !w->sent_since_tick &&
			    s->out_events < h->outbox_max)
				out_push(s, omsg_ctl(w, w->req_id, w->id, 0, 0, 0, NULL,
						     h->deliv_rev));
			w->sent_since_tick = 0;
		}
	}
}

/* Wake streams whose back-off ended; returns the next deadline (0: none). */
static int64_t backoff_expire(watchhub *h, int64_t now)
{
	int64_t next = 0;

	if (!h->n_backoff)
		return 0;
	for (hub_stream *s = h->streams; s; s = s->next) {
		if (!s->retry_at_ms)
			continue;
		if (s->retry_at_ms <= now) {
			s->retry_at_ms = 0;
			h->n_backoff--;
			ready_push(h, s);
		} else if (!next || s->retry_at_ms < next) {
			next = s->retry_at_ms;
		}
	}
	return next;
}

/* ================================================================== */
/* Threads                                                              */

static void *hub_main(void *arg)
{
	watchhub *h = arg;
	ef_arena *a = ef_arena_new();
	int more = 0;
	int64_t wake_at = 0;

	if (!a) {
		log_error("watch hub: out of memory: watches will not be served");
		return NULL;
	}
	for (;;) {
		pthread_mutex_lock(&h->qmu);
		while (!h->qhead && !h->kick && !h->qstop && !more) {
			if (wake_at) {
				struct timespec ts = {wake_at / 1000, (wake_at % 1000) * 1000000};
				if (pthread_cond_timedwait(&h->qcv, &h->qmu, &ts) == ETIMEDOUT)
					break;
			} else {
				pthread_cond_wait(&h->qcv, &h->qmu);
			}
		}
		if (h->qstop) {
			pthread_mutex_unlock(&h->qmu);
			break;
		}
		struct qitem *q = h->qhead;
		h->qhead = h->qtail = NULL;
		h->qbytes = 0;
		h->kick = 0;
		pthread_mutex_unlock(&h->qmu);

		pthread_mutex_lock(&h->mu);
		while (q) {
			struct qitem *next = q->next;
			if (q->kind == Q_BATCH)
				match_batch(h, q);
			else
				apply_marker(h, q);
			free(q);
			q = next;
		}
		more = h->unsynced ? catchup_pass(h, a) : 0;
		int64_t now = clock_mono_ms();
		if (now >= h->next_tick_ms) {
			progress_tick(h);
			h->next_tick_ms = now + h->progress_ms;
		}
		wake_at = h->next_tick_ms;
		int64_t b = backoff_expire(h, now);
		if (b && b < wake_at)
			wake_at = b;
		pthread_mutex_unlock(&h->mu);
	}
	ef_arena_free(a);
	return NULL;
}

static void stream_free(hub_stream *s)
{
	out_purge(s, NULL);
	free(s);
}

static void give_up(watchhub *h, hub_stream *s)
{
	log_warn("watch hub: a watch stream refused %u messages in a row: cancelling its watches",
		 s->failures);
	out_purge(s, NULL);
	s->dead = 1;
	while (s->watches) {
		struct hub_watch *w = s->watches;
		watch_cancel(h, w, 0, REASON_TOO_SLOW);
	}
}

static void *sender_main(void *arg)
{
	watchhub *h = arg;

	pthread_mutex_lock(&h->mu);
	for (;;) {
		while (!h->stopping && !h->ready_head)
			pthread_cond_wait(&h->send_cv, &h->mu);
		if (h->stopping)
			break;
		hub_stream *s = h->ready_head;
		ready_remove(h, s);
		struct omsg *m = s->out_head;
		if (!m || s->retry_at_ms)
			continue;
		s->out_head = m->next;
		if (!s->out_head)
			s->out_tail = NULL;
		s->out_events -= m->n_events;
		s->busy = 1;
		s->busy_thread = pthread_self();
		pthread_mutex_unlock(&h->mu);

		int64_t rev = m->m.hdr.revision;
		if (h->fill_hdr)
			h->fill_hdr(h->ud, &m->m.hdr);
		m->m.hdr.revision = rev;
		int rc = s->cb(s->ud, &m->m);

		pthread_mutex_lock(&h->mu);
		s->busy = 0;
		if (s->closing) {
			free(m);
			if (s->free_on_return)
				stream_free(s);
			else
				pthread_cond_broadcast(&h->close_cv);
			continue;
		}
		if (rc != 0) {
			/* Not taken: keep it first in line and back off.  Once
			 * the stream gave up (dead) only the cancellations are
			 * left, retried until the consumer takes them or closes. */
			m->next = s->out_head;
			s->out_head = m;
			if (!s->out_tail)
				s->out_tail = m;
			s->out_events += m->n_events;
			s->failures++;
			uint32_t sh = s->failures - 1 < 10 ? s->failures - 1 : 10;
			int64_t d = (int64_t)HUB_BACKOFF_MIN_MS << sh;
			if (d > HUB_BACKOFF_MAX_MS)
				d = HUB_BACKOFF_MAX_MS;
			s->retry_at_ms = clock_mono_ms() + d;
			h->n_backoff++;
			if (!s->dead && s->failures >= h->max_failures)
				give_up(h, s);
			kick_locked_q(h);
			continue;
		}
		if (rc == 0) {
			s->failures = 0;
			if (s->dead && !s->out_head)
				s->dead = 0; /* the consumer recovered: new watches are welcome */
		}
		free(m);
		ready_push(h, s);
		if (s->n_unsynced && s->out_events < h->outbox_max / 2 + 1)
			kick_locked_q(h);
	}
	pthread_mutex_unlock(&h->mu);
	return NULL;
}

/* ================================================================== */
/* Public API                                                           */

watchhub *watchhub_new(store *st, watchhub_hdr_fn fill_hdr, void *ud)
{
	watchhub *h = calloc(1, sizeof(*h));
	pthread_condattr_t ca;

	if (!h)
		return NULL;
	h->st = st;
	h->fill_hdr = fill_hdr;
	h->ud = ud;
	h->progress_ms = HUB_DEFAULT_PROGRESS_MS;
	h->next_tick_ms = clock_mono_ms() + h->progress_ms;
	h->outbox_max = HUB_DEFAULT_OUTBOX;
	h->max_failures = HUB_DEFAULT_MAX_FAILURES;
	h->qmax = HUB_QUEUE_MAX_BYTES;
	h->overflow_log_ms = -100000;
	h->deliv_rev = st ? store_revision(st) : 0;
	pthread_mutex_init(&h->mu, NULL);
	pthread_cond_init(&h->send_cv, NULL);
	pthread_cond_init(&h->close_cv, NULL);
	pthread_mutex_init(&h->qmu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&h->qcv, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&h->hub_thread, NULL, hub_main, h) != 0) {
		watchhub_free(h);
		return NULL;
	}
	h->hub_started = 1;
	for (int i = 0; i < HUB_SENDERS; i++) {
		if (pthread_create(&h->senders[i], NULL, sender_main, h) != 0)
			break;
		h->n_senders++;
	}
	if (!h->n_senders) {
		watchhub_free(h);
		return NULL;
	}
	return h;
}

void watchhub_free(watchhub *h)
{
	if (!h)
		return;
	pthread_mutex_lock(&h->mu);
	h->stopping = 1;
	pthread_cond_broadcast(&h->send_cv);
	pthread_mutex_unlock(&h->mu);
	pthread_mutex_lock(&h->qmu);
	h->qstop = 1;
	pthread_cond_signal(&h->qcv);
	pthread_mutex_unlock(&h->qmu);
	if (h->hub_started)
		pthread_join(h->hub_thread, NULL);
	for (int i = 0; i < h->n_senders; i++)
		pthread_join(h->senders[i], NULL);

	/* No thread left: free everything (streams the owner did not close too). */
	while (h->streams) {
		hub_stream *s = h->streams;
		while (s->watches)
			watch_remove(h, s->watches);
		h->streams = s->next;
		stream_free(s);
	}
	while (h->qhead) {
		struct qitem *q = h->qhead;
		h->qhead = q->next;
		free(q);
	}
	free(h->buckets);
	free(h->rarr);
	free(h->rmax);
	pthread_mutex_destroy(&h->mu);
	pthread_cond_destroy(&h->send_cv);
	pthread_cond_destroy(&h->close_cv);
	pthread_mutex_destroy(&h->qmu);
	pthread_cond_destroy(&h->qcv);
	free(h);
}

int watchhub_stream_open(watchhub *h, node_watch_cb cb, void *ud, hub_stream **out)
{
	hub_stream *s = calloc(1, sizeof(*s));

	*out = NULL;
	if (!s)
		return EF_E_NOMEM;
	if (!cb) {
		free(s);
		return EF_E_INVALID;
	}
	s->h = h;
	s->cb = cb;
	s->ud = ud;
	pthread_mutex_lock(&h->mu);
	s->next = h->streams;
	if (h->streams)
		h->streams->prev = s;
	h->streams = s;
	pthread_mutex_unlock(&h->mu);
	*out = s;
	return 0;
}

static int watch_create(watchhub *h, hub_stream *s, const ef_msg *req)
{
	const ef_watch_create_req *c = &req->u.watch_create;
	int64_t cur = store_revision(h->st);
	int64_t id;

	if (s->dead) {
		/* Its watches were just cancelled as too slow: refuse new ones
		 * until the consumer takes messages again. */
		out_push(s, omsg_ctl(NULL, req->id, c->watch_id, 1, 1, 0, REASON_TOO_SLOW, cur));
		return 0;
	}
	if (c->watch_id < 0) {
		out_push(s, omsg_ctl(NULL, req->id, c->watch_id, 1, 1, 0, "etcfs: invalid watch id",
				     cur));
		return 0;
	}
	if (c->watch_id != 0) {
		if (stream_find(s, c->watch_id)) {
			out_push(s,
				 omsg_ctl(NULL, req->id, c->watch_id, 1, 1, 0, REASON_DUP_ID, cur));
			return 0;
		}
		id = c->watch_id;
	} else {
		while (stream_find(s, s->next_auto_id))
			s->next_auto_id++;
		id = s->next_auto_id++;
	}
	int from_key = c->range_end.n == 1 && c->range_end.p[0] == 0;
	if (c->range_end.n && !from_key &&
	    keycmp(c->key.p, c->key.n, c->range_end.p, c->range_end.n) >= 0) {
		out_push(s, omsg_ctl(NULL, req->id, id, 1, 1, 0, REASON_EMPTY_RANGE, cur));
		return 0;
	}
	struct hub_watch *w = calloc(1, sizeof(*w));
	if (!w)
		return EF_E_NOMEM;
	w->key = malloc(c->key.n + 1);
	w->end = malloc(c->range_end.n + 1);
	if (!w->key || !w->end) {
		watch_free(w);
		return EF_E_NOMEM;
	}
	if (c->key.n)
		memcpy(w->key, c->key.p, c->key.n);
	if (c->range_end.n)
		memcpy(w->end, c->range_end.p, c->range_end.n);
	w->klen = c->key.n;
	w->elen = c->range_end.n;
	w->is_range = c->range_end.n > 0;
	w->end_inf = (uint8_t)from_key;
	w->id = id;
	w->req_id = req->id;
	w->prev_kv = c->prev_kv;
	w->no_put = c->no_put;
	w->no_delete = c->no_delete;
	w->progress_notify = c->progress_notify;
	w->s = s;

	struct omsg *created = omsg_ctl(NULL, req->id, id, 1, 0, 0, NULL, cur);
	if (!created) {
		watch_free(w);
		return EF_E_NOMEM;
	}
	out_push(s, created);
	int64_t compact = store_compact_revision(h->st);
	if (c->start_revision > 0 && c->start_revision < compact) {
		out_push(s, omsg_ctl(NULL, req->id, id, 0, 1, compact, REASON_COMPACTED, cur));
		watch_free(w);
		return 0;
	}
	w->sprev = NULL;
	w->snext = s->watches;
	if (s->watches)
		s->watches->sprev = w;
	s->watches = w;
	h->n_watchers++;
	w->next_rev = c->start_revision > 0 ? c->start_revision : cur + 1;
	if (w->next_rev > h->deliv_rev && synced_add(h, w) == 0)
		return 0;
	unsynced_add(h, w);
	kick_locked_q(h);
	return 0;
}

int watchhub_stream_request(hub_stream *s, const ef_msg *req)
{
	watchhub *h = s->h;
	int rv = 0;

	pthread_mutex_lock(&h->mu);
	if (s->closing) {
		pthread_mutex_unlock(&h->mu);
		return EF_E_INVALID;
	}
	switch (req->type) {
	case EF_MSG_WATCH_CREATE:
		rv = watch_create(h, s, req);
		break;
	case EF_MSG_WATCH_CANCEL: {
		int64_t id = req->u.watch_cancel.watch_id;
		struct hub_watch *w = stream_find(s, id);
		if (w) {
			uint64_t rid = w->req_id;
			watch_remove(h, w);
			out_push(s, omsg_ctl(NULL, rid, id, 0, 1, 0, NULL, h->deliv_rev));
		} else {
			out_push(s, omsg_ctl(NULL, req->id, id, 0, 1, 0, REASON_NOT_EXIST,
					     h->deliv_rev));
		}
		break;
	}
	case EF_MSG_WATCH_PROGRESS: {
		/* The revision every watch of the stream has been given all
		 * events up to (messages before this one in the outbox). */
		int64_t rev = h->deliv_rev;
		for (struct hub_watch *w = s->watches; w; w = w->snext)
			if (w->state == W_UNSYNCED && w->next_rev - 1 < rev)
				rev = w->next_rev - 1;
		out_push(s, omsg_ctl(NULL, req->id, -1, 0, 0, 0, NULL, rev));
		break;
	}
	default:
		rv = EF_E_INVALID;
	}
	pthread_mutex_unlock(&h->mu);
	return rv;
}

void watchhub_stream_close(hub_stream *s)
{
	if (!s)
		return;
	watchhub *h = s->h;

	pthread_mutex_lock(&h->mu);
	s->closing = 1;
	while (s->watches)
		watch_remove(h, s->watches);
	out_purge(s, NULL);
	ready_remove(h, s);
	if (s->retry_at_ms) {
		s->retry_at_ms = 0;
		h->n_backoff--;
	}
	if (s->prev)
		s->prev->next = s->next;
	else
		h->streams = s->next;
	if (s->next)
		s->next->prev = s->prev;
	if (s->busy && pthread_equal(s->busy_thread, pthread_self())) {
		/* Closed from inside its own callback: the sender frees it. */
		s->free_on_return = 1;
		pthread_mutex_unlock(&h->mu);
		return;
	}
	while (s->busy)
		pthread_cond_wait(&h->close_cv, &h->mu);
	pthread_mutex_unlock(&h->mu);
	stream_free(s);
}

void watchhub_publish(watchhub *h, const store_events *ev, int64_t revision)
{
	size_t bytes = 0, nprev = 0;
	uint32_t n = ev ? ev->n : 0;

	for (uint32_t i = 0; i < n; i++) {
		const ef_event *e = &ev->ev[i];
		bytes += (size_t)e->kv.key.n + e->kv.value.n;
		if (e->prev_kv) {
			nprev++;
			bytes += (size_t)e->prev_kv->key.n + e->prev_kv->value.n;
		}
	}
	size_t head = ALIGN8(sizeof(struct qitem));
	size_t total = head + n * sizeof(ef_event) + nprev * sizeof(ef_kv) + bytes;
	struct qitem *q = malloc(total);
	if (q) {
		q->next = NULL;
		q->kind = Q_BATCH;
		q->revision = revision;
		q->n = n;
		q->bytes = total;
		q->ev = (ef_event *)((uint8_t *)q + head);
		ef_kv *pk = (ef_kv *)(q->ev + n);
		uint8_t *p = (uint8_t *)(pk + nprev);
		for (uint32_t i = 0; i < n; i++) {
			q->ev[i] = ev->ev[i];
			put_buf(&p, &q->ev[i].kv.key);
			put_buf(&p, &q->ev[i].kv.value);
			if (ev->ev[i].prev_kv) {
				*pk = *ev->ev[i].prev_kv;
				put_buf(&p, &pk->key);
				put_buf(&p, &pk->value);
				q->ev[i].prev_kv = pk++;
			}
		}
	}
	pthread_mutex_lock(&h->qmu);
	if (!q || h->qbytes + total > h->qmax) {
		/* The hub thread is far behind (or no memory): drop the queue
		 * and let every watch catch up from the store. */
		struct qitem *d = h->qhead, *next;
		for (; d; d = next) {
			next = d->next;
			free(d);
		}
		h->qhead = h->qtail = NULL;
		h->qbytes = 0;
		free(q);
		q = calloc(1, sizeof(*q));
		if (!q) {
			/* Cannot even queue a marker: the next publish retries. */
			pthread_mutex_unlock(&h->qmu);
			log_error("watch hub: out of memory queueing events");
			return;
		}
		q->kind = Q_MARKER;
		q->revision = revision;
		h->overflows++;
		int64_t now = clock_mono_ms();
		if (now - h->overflow_log_ms >= 10000) { /* at most one line per 10 s */
			log_warn(
				"watch hub: event queue overflow (%llu times) up to revision %lld: "
				"watches catch up from the store",
				(unsigned long long)h->overflows, (long long)revision);
			h->overflow_log_ms = now;
			h->overflows = 0;
		}
	}
	if (h->qtail)
		h->qtail->next = q;
	else
		h->qhead = q;
	h->qtail = q;
	h->qbytes += q->bytes;
	pthread_cond_signal(&h->qcv);
	pthread_mutex_unlock(&h->qmu);
}

void watchhub_resync(watchhub *h)
{
	struct qitem *q = calloc(1, sizeof(*q));

	if (!q) {
		log_error("watch hub: out of memory queueing a resync");
		return;
	}
	q->kind = Q_MARKER;
	q->revision = 0;
	pthread_mutex_lock(&h->qmu);
	if (h->qtail)
		h->qtail->next = q;
	else
		h->qhead = q;
	h->qtail = q;
	pthread_cond_signal(&h->qcv);
	pthread_mutex_unlock(&h->qmu);
}

uint64_t watchhub_watchers(watchhub *h)
{
	pthread_mutex_lock(&h->mu);
	uint64_t n = h->n_watchers;
	pthread_mutex_unlock(&h->mu);
	return n;
}

void watchhub_set_progress_interval_ms(watchhub *h, uint32_t ms)
{
	if (!ms)
		ms = HUB_DEFAULT_PROGRESS_MS;
	pthread_mutex_lock(&h->mu);
	h->progress_ms = ms;
	h->next_tick_ms = clock_mono_ms() + ms;
	kick_locked_q(h);
	pthread_mutex_unlock(&h->mu);
}

void watchhub_set_slow_consumer(watchhub *h, uint32_t outbox_events, uint32_t max_failures)
{
	pthread_mutex_lock(&h->mu);
	if (outbox_events)
		h->outbox_max = outbox_events;
	if (max_failures)
		h->max_failures = max_failures;
	pthread_mutex_unlock(&h->mu);
}

void watchhub_set_queue_bytes(watchhub *h, size_t bytes)
{
	pthread_mutex_lock(&h->qmu);
	h->qmax = bytes ? bytes : HUB_QUEUE_MAX_BYTES;
	pthread_mutex_unlock(&h->qmu);
}
