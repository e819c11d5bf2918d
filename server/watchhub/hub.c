/*
 * hub.c - lifecycle of the watch hub, the hub thread's loop and the tuning
 * knobs.
 *
 * Three kinds of threads meet in the hub:
 *
 *   - the apply thread calls watchhub_publish() after each store_commit.  It
 *     only copies the batch into one malloc block and appends it to the
 *     hub queue under `qmu` (a lock nobody holds for long), so the apply
 *     loop never waits for matching, for the store or for a consumer;
 *   - the hub thread (hub_main, here) takes queue items, matches their
 *     events against the index of *synced* watches and appends one message
 *     per (watch, batch) to the stream's outbox; between batches it catches
 *     *unsynced* watches up from the store (store_events_since, in chunks of
 *     whole revisions), sends progress notifications and wakes streams whose
 *     back-off ended;
 *   - a few sender threads pop messages from stream outboxes and call the
 *     stream callbacks with no lock held.  One stream is served by at most
 *     one sender at a time (messages of a stream keep their order), so a
 *     callback that blocks holds one sender and that stream only.
 *
 * The loop drains the whole queue under qmu in one go, then does its work
 * under mu, so the apply thread only ever waits for a pointer swap.  It
 * sleeps on qcv (CLOCK_MONOTONIC) until something is queued, a kick arrives
 * or the next progress tick / back-off deadline passes.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "../../common/clock.h"
#include "../log.h"
#include "watchhub_int.h"

/* ================================================================== */
/* Waking the hub thread                                              */

void hub_kick_locked_q(watchhub *h)
{
	pthread_mutex_lock(&h->qmu);
	h->kick = 1;
	pthread_cond_signal(&h->qcv);
	pthread_mutex_unlock(&h->qmu);
}

/* ================================================================== */
/* The hub thread                                                     */

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
				hub_match_batch(h, q);
			else
				hub_apply_marker(h, q);
			free(q);
			q = next;
		}
		more = h->unsynced ? hub_catchup_pass(h, a) : 0;
		int64_t now = clock_mono_ms();
		if (now >= h->next_tick_ms) {
			hub_progress_tick(h);
			h->next_tick_ms = now + h->progress_ms;
		}
		wake_at = h->next_tick_ms;
		int64_t b = hub_backoff_expire(h, now);
		if (b && b < wake_at)
			wake_at = b;
		pthread_mutex_unlock(&h->mu);
	}
	ef_arena_free(a);
	return NULL;
}

/* ================================================================== */
/* Lifecycle                                                          */

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
		if (pthread_create(&h->senders[i], NULL, hub_sender_main, h) != 0)
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
			hub_watch_remove(h, s->watches);
		h->streams = s->next;
		hub_stream_free(s);
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

/* ================================================================== */
/* Watcher count and tuning                                           */

uint64_t watchhub_watchers(watchhub *h)
{
	pthread_mutex_lock(&h->mu);
	uint64_t n = h->n_watchers;
	pthread_mutex_unlock(&h->mu);
	return n;
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
