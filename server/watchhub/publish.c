/*
 * publish.c - events in: the apply thread queues each committed batch, the
 * hub thread matches it against the index of synced watches.
 *
 * watchhub_publish must return quickly: it copies the batch (events,
 * prev_kvs, bytes) into one malloc block and appends it to the hub queue
 * under qmu.  If the queue grows past its limit (64 MiB,
 * watchhub_set_queue_bytes; the hub thread cannot keep up), publish drops
 * the queue and leaves a marker: every synced watch becomes unsynced and is
 * served from the store, so memory stays bounded.  watchhub_resync queues
 * the same marker.
 *
 * Matching (hub thread, mu held) collects, per watch, the indexes of the
 * batch's events it wants (skipping those below its next_rev and filtered
 * types), then builds one message per (watch, batch).  A watch whose outbox
 * is full, or for which memory ran out, drops to the unsynced group at the
 * first revision it missed.  deliv_rev moves to the batch's revision.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/clock.h"
#include "../log.h"
#include "watchhub_int.h"

/* ================================================================== */
/* Matching (hub thread, mu held)                                     */

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
			return; /* hub_match_batch sends w to the store instead */
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
		if (!hub_end_above(h->rmax[mid], k, kn))
			return; /* no range of this subtree reaches k */
		range_stab(h, lo, mid, e, i);
		struct hub_watch *w = h->rarr[mid];
		if (hub_keycmp(w->key, w->klen, k, kn) > 0)
			return; /* mid and its right subtree start above k */
		if (hub_end_above(w, k, kn))
			consider(h, w, e, i);
		lo = mid + 1;
	}
}

void hub_match_batch(watchhub *h, const struct qitem *q)
{
	if (h->ranges_dirty && hub_ranges_rebuild(h) != 0) {
		/* Cannot index ranges: every range watch is caught up from the
		 * store instead (correct, just slower). */
		while (h->ranges)
			hub_make_unsynced(h, h->ranges, hub_resume_rev(h, h->ranges));
		h->ranges_dirty = 0;
	}
	h->gen++;
	h->touched = NULL;
	for (uint32_t i = 0; i < q->n; i++) {
		const ef_event *e = &q->ev[i];
		if (h->nentries) {
			struct kentry *ke = hub_ktable_find(h, e->kv.key.p, e->kv.key.n,
							    hub_key_hash(e->kv.key.p, e->kv.key.n));
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
			hub_make_unsynced(h, w, r < w->pend_lost_rev ? r : w->pend_lost_rev);
			continue;
		}
		if (!w->pend_n)
			continue;
		int64_t first = q->ev[w->pend[0]].kv.mod_revision;
		struct omsg *m = NULL;
		if (!(s->out_events > 0 && s->out_events + w->pend_n > h->outbox_max))
			m = hub_omsg_events(w, q->ev, w->pend, w->pend_n, q->revision);
		if (!m) {
			/* Outbox full (or no memory): lagging, served from the store. */
			hub_make_unsynced(h, w, first);
			continue;
		}
		w->next_rev = q->ev[w->pend[w->pend_n - 1]].kv.mod_revision + 1;
		w->sent_since_tick = 1;
		hub_out_push(s, m);
	}
	h->touched = NULL;
	if (q->revision > h->deliv_rev)
		h->deliv_rev = q->revision;
}

/* Queue overflow or resync: every synced watch goes to the store. */
void hub_apply_marker(watchhub *h, const struct qitem *q)
{
	for (hub_stream *s = h->streams; s; s = s->next)
		for (struct hub_watch *w = s->watches; w; w = w->snext)
			if (w->state == W_SYNCED)
				hub_make_unsynced(h, w, hub_resume_rev(h, w));
	if (q->revision > h->deliv_rev)
		h->deliv_rev = q->revision;
}

/* ================================================================== */
/* Publishing (apply thread) and resync                               */

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
			hub_put_buf(&p, &q->ev[i].kv.key);
			hub_put_buf(&p, &q->ev[i].kv.value);
			if (ev->ev[i].prev_kv) {
				*pk = *ev->ev[i].prev_kv;
				hub_put_buf(&p, &pk->key);
				hub_put_buf(&p, &pk->value);
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
