/*
 * catchup.c - unsynced watches served from the store's history (hub thread).
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
 * A pass pins up to HUB_CATCHUP_PER_PASS eligible watches (`catching`: not
 * freed while pinned), reads at most HUB_CATCHUP_CHUNK events of whole
 * revisions for each with mu dropped, and puts a watch that is not done
 * yet at the tail of the list so every unsynced watch gets its turn.  A
 * watch whose stream backs off or whose outbox is half full waits.
 */
#include <pthread.h>
#include <stdlib.h>

#include "../log.h"
#include "watchhub_int.h"

static int catchup_eligible(watchhub *h, struct hub_watch *w)
{
	hub_stream *s = w->s;

	return !w->catching && !s->closing && !s->dead && !s->retry_at_ms &&
	       s->out_events < h->outbox_max / 2 + 1;
}

/* One pass: one store read for up to HUB_CATCHUP_PER_PASS unsynced
 * watches.  Returns non-zero if it made progress (call again). mu held on
 * entry and exit; dropped around the store reads. */
int hub_catchup_pass(watchhub *h, ef_arena *a)
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
			hub_watch_free(w);
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
			hub_watch_free(w);
			continue;
		}
		if (w->state != W_UNSYNCED || w->next_rev != from)
			continue;
		progress = 1;
		if (rc == EF_E_COMPACTED) {
			hub_watch_cancel(h, w, compact, REASON_COMPACTED);
			continue;
		}
		if (rc != 0) {
			log_warn("watch hub: reading history for watch %lld failed: %s",
				 (long long)w->id, ef_strerror(rc));
			hub_watch_cancel(h, w, 0, ef_strerror(rc));
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
			struct omsg *m =
				hub_omsg_events(w, se.ev, w->pend, k, c0 > last ? c0 : last);
			if (!m)
				continue; /* retried next pass */
			w->sent_since_tick = 1;
			hub_out_push(w->s, m);
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
			hub_make_synced(h, w);
		} else {
			hub_unsynced_del(h, w); /* to the tail: the others get their turn */
			hub_unsynced_add(h, w);
		}
	}
	return progress;
}
