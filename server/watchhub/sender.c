/*
 * sender.c - the sender threads: they run the stream callbacks, with no lock
 * held, and deal with consumers that do not keep up.
 *
 * A sender takes the first stream of the ready list, pops the head of its
 * outbox, fills the response header (fill_hdr) and calls the callback.  The
 * stream is off the ready list while a sender is inside its callback, so
 * one stream is served by at most one sender at a time and its messages keep
 * their order; a callback that blocks holds one sender and that stream only.
 * A callback may call watchhub_stream_request or watchhub_stream_close on
 * its own stream (close from inside it leaves the freeing to the sender).
 *
 * Slow consumers.  A callback returning non-zero leaves its message at the
 * head of the outbox and the stream backs off (10 ms doubling to 1 s); while
 * it cannot drain, new events pile up in the outbox up to `outbox_max`
 * events, past which the watch is dropped to the unsynced group at the
 * revision it missed and is caught up from the store once the outbox has
 * room again.  After `max_failures` consecutive failures the stream's
 * watches are cancelled ("etcfs: watcher too slow").  The hub thread wakes
 * streams whose back-off ended (hub_backoff_expire).
 */
#include <pthread.h>
#include <stdlib.h>

#include "../../common/clock.h"
#include "../log.h"
#include "watchhub_int.h"

/* ================================================================== */
/* Sender threads                                                     */

static void give_up(watchhub *h, hub_stream *s)
{
	log_warn("watch hub: a watch stream refused %u messages in a row: cancelling its watches",
		 s->failures);
	hub_out_purge(s, NULL);
	s->dead = 1;
	while (s->watches) {
		struct hub_watch *w = s->watches;
		hub_watch_cancel(h, w, 0, REASON_TOO_SLOW);
	}
}

void *hub_sender_main(void *arg)
{
	watchhub *h = arg;

	pthread_mutex_lock(&h->mu);
	for (;;) {
		while (!h->stopping && !h->ready_head)
			pthread_cond_wait(&h->send_cv, &h->mu);
		if (h->stopping)
			break;
		hub_stream *s = h->ready_head;
		hub_ready_remove(h, s);
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
				hub_stream_free(s);
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
			hub_kick_locked_q(h);
			continue;
		}
		if (rc == 0) {
			s->failures = 0;
			if (s->dead && !s->out_head)
				s->dead = 0; /* the consumer recovered: new watches are welcome */
		}
		free(m);
		hub_ready_push(h, s);
		if (s->n_unsynced && s->out_events < h->outbox_max / 2 + 1)
			hub_kick_locked_q(h);
	}
	pthread_mutex_unlock(&h->mu);
	return NULL;
}

/* ================================================================== */
/* End of back-off (hub thread, mu held)                              */

/* Wake streams whose back-off ended; returns the next deadline (0: none). */
int64_t hub_backoff_expire(watchhub *h, int64_t now)
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
			hub_ready_push(h, s);
		} else if (!next || s->retry_at_ms < next) {
			next = s->retry_at_ms;
		}
	}
	return next;
}
