/*
 * progress.c - periodic progress notifications (etcd's progress_notify).
 *
 * Every progress interval (10 minutes by default, as etcd's) the hub thread
 * sends a watch created with progress_notify an empty response carrying
 * the last matched revision, when the watch is synced, got no events since
 * the previous tick and its stream's outbox has room.  A lagging watch gets
 * none: it is not up to date, and its catch-up messages carry revisions.
 */
#include "../../common/clock.h"
#include "watchhub_int.h"

void hub_progress_tick(watchhub *h)
{
	for (hub_stream *s = h->streams; s; s = s->next) {
		if (s->closing || s->dead)
			continue;
		for (struct hub_watch *w = s->watches; w; w = w->snext) {
			if (!w->progress_notify)
				continue;
			if (w->state == W_SYNCED && !w->sent_since_tick &&
			    s->out_events < h->outbox_max)
				hub_out_push(s, hub_omsg_ctl(w, w->req_id, w->id, 0, 0, 0, NULL,
							     h->deliv_rev));
			w->sent_since_tick = 0;
		}
	}
}

void watchhub_set_progress_interval_ms(watchhub *h, uint32_t ms)
{
	if (!ms)
		ms = HUB_DEFAULT_PROGRESS_MS;
	pthread_mutex_lock(&h->mu);
	h->progress_ms = ms;
	h->next_tick_ms = clock_mono_ms() + ms;
	hub_kick_locked_q(h);
	pthread_mutex_unlock(&h->mu);
}
