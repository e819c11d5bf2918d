/*
 * registry.c - watch streams and their watches: open, create, cancel,
 * progress requests and close, with etcd's answers.
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
 * A new watch starting after the last matched revision joins the synced
 * index directly; any other goes to the unsynced group and the hub thread
 * is kicked to catch it up.  A watch removed while the hub thread reads the
 * store for it (`catching`) is only marked GONE; the hub thread frees it.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "watchhub_int.h"

/* ================================================================== */
/* Watches (mu held)                                                  */

void hub_watch_free(struct hub_watch *w)
{
	free(w->key);
	free(w->end);
	free(w->pend);
	free(w);
}

/* Remove w from its stream, its group and the outbox; freed now, or by the
 * hub thread when a catch-up read is in flight. */
void hub_watch_remove(watchhub *h, struct hub_watch *w)
{
	hub_stream *s = w->s;

	hub_group_leave(h, w);
	w->state = W_GONE;
	hub_out_purge(s, w);
	if (w->sprev)
		w->sprev->snext = w->snext;
	else
		s->watches = w->snext;
	if (w->snext)
		w->snext->sprev = w->sprev;
	w->s = NULL;
	h->n_watchers--;
	if (!w->catching)
		hub_watch_free(w);
}

struct hub_watch *hub_stream_find(hub_stream *s, int64_t id)
{
	for (struct hub_watch *w = s->watches; w; w = w->snext)
		if (w->id == id)
			return w;
	return NULL;
}

/* Cancel with a message (compacted, too slow, store error). */
void hub_watch_cancel(watchhub *h, struct hub_watch *w, int64_t compact_rev, const char *reason)
{
	hub_stream *s = w->s;
	struct omsg *m =
		hub_omsg_ctl(NULL, w->req_id, w->id, 0, 1, compact_rev, reason, h->deliv_rev);

	hub_watch_remove(h, w);
	hub_out_push(s, m);
}

/* ================================================================== */
/* Streams and their requests                                         */

void hub_stream_free(hub_stream *s)
{
	hub_out_purge(s, NULL);
	free(s);
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
		hub_out_push(
			s, hub_omsg_ctl(NULL, req->id, c->watch_id, 1, 1, 0, REASON_TOO_SLOW, cur));
		return 0;
	}
	if (c->watch_id < 0) {
		hub_out_push(s, hub_omsg_ctl(NULL, req->id, c->watch_id, 1, 1, 0,
					     "etcfs: invalid watch id", cur));
		return 0;
	}
	if (c->watch_id != 0) {
		if (hub_stream_find(s, c->watch_id)) {
			hub_out_push(s, hub_omsg_ctl(NULL, req->id, c->watch_id, 1, 1, 0,
						     REASON_DUP_ID, cur));
			return 0;
		}
		id = c->watch_id;
	} else {
		while (hub_stream_find(s, s->next_auto_id))
			s->next_auto_id++;
		id = s->next_auto_id++;
	}
	int from_key = c->range_end.n == 1 && c->range_end.p[0] == 0;
	if (c->range_end.n && !from_key &&
	    hub_keycmp(c->key.p, c->key.n, c->range_end.p, c->range_end.n) >= 0) {
		hub_out_push(s, hub_omsg_ctl(NULL, req->id, id, 1, 1, 0, REASON_EMPTY_RANGE, cur));
		return 0;
	}
	struct hub_watch *w = calloc(1, sizeof(*w));
	if (!w)
		return EF_E_NOMEM;
	w->key = malloc(c->key.n + 1);
	w->end = malloc(c->range_end.n + 1);
	if (!w->key || !w->end) {
		hub_watch_free(w);
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

	struct omsg *created = hub_omsg_ctl(NULL, req->id, id, 1, 0, 0, NULL, cur);
	if (!created) {
		hub_watch_free(w);
		return EF_E_NOMEM;
	}
	hub_out_push(s, created);
	int64_t compact = store_compact_revision(h->st);
	if (c->start_revision > 0 && c->start_revision < compact) {
		hub_out_push(s,
			     hub_omsg_ctl(NULL, req->id, id, 0, 1, compact, REASON_COMPACTED, cur));
		hub_watch_free(w);
		return 0;
	}
	w->sprev = NULL;
	w->snext = s->watches;
	if (s->watches)
		s->watches->sprev = w;
	s->watches = w;
	h->n_watchers++;
	w->next_rev = c->start_revision > 0 ? c->start_revision : cur + 1;
	if (w->next_rev > h->deliv_rev && hub_synced_add(h, w) == 0)
		return 0;
	hub_unsynced_add(h, w);
	hub_kick_locked_q(h);
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
		struct hub_watch *w = hub_stream_find(s, id);
		if (w) {
			uint64_t rid = w->req_id;
			hub_watch_remove(h, w);
			hub_out_push(s, hub_omsg_ctl(NULL, rid, id, 0, 1, 0, NULL, h->deliv_rev));
		} else {
			hub_out_push(s, hub_omsg_ctl(NULL, req->id, id, 0, 1, 0, REASON_NOT_EXIST,
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
		hub_out_push(s, hub_omsg_ctl(NULL, req->id, -1, 0, 0, 0, NULL, rev));
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
		hub_watch_remove(h, s->watches);
	hub_out_purge(s, NULL);
	hub_ready_remove(h, s);
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
	hub_stream_free(s);
}
