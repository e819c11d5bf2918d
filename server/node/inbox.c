/*
 * inbox.c - how other threads talk to the loop: the inbox, the waiter table
 * and peer receive.
 *
 * Client threads post events (proposals, leader transfers) and register a
 * waiter on their own stack; peer receive threads decode Raft messages
 * before posting them, so the loop never parses bytes.  A waiter the loop
 * CLAIMS (under n->mu) is written without the lock and must be waited for
 * even past the caller's deadline: applying one entry is short.  Snapshot
 * chunks bypass the loop (snapshot.c writes them on the receive thread).
 */
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "../../common/clock.h"
#include "node_int.h"

/* ------------------------------------------------------------------ */
/* Inbox and waiters (n->mu held where noted).                          */

void node_post(node *n, struct ev *e)
{
	e->posted_ns = clock_mono_ns();
	pthread_mutex_lock(&n->mu);
	e->next = NULL;
	if (n->in_tail)
		n->in_tail->next = e;
	else
		n->in_head = e;
	n->in_tail = e;
	pthread_cond_signal(&n->cv);
	pthread_mutex_unlock(&n->mu);
}

void node_waiter_add(node *n, struct waiter *w) /* mu held */
{
	w->id = ++n->next_waiter;
	size_t b = w->id % 1024;
	w->next = n->wt[b];
	n->wt[b] = w;
}

void node_waiter_del(node *n, struct waiter *w) /* mu held */
{
	for (struct waiter **pp = &n->wt[w->id % 1024]; *pp; pp = &(*pp)->next)
		if (*pp == w) {
			*pp = w->next;
			return;
		}
}

struct waiter *node_waiter_find(node *n, uint64_t id) /* mu held */
{
	for (struct waiter *w = n->wt[id % 1024]; w; w = w->next)
		if (w->id == id)
			return w;
	return NULL;
}

/* Wait for the loop to finish with w.  Returns 0 when DONE, EF_E_TIMEOUT
 * when the deadline passed first (w is then unregistered). mu held. */
int node_waiter_wait(node *n, struct waiter *w, int64_t deadline_ms)
{
	while (w->state != W_DONE) {
		if (w->state == W_WAITING && clock_mono_ms() >= deadline_ms) {
			node_waiter_del(n, w);
			return EF_E_TIMEOUT;
		}
		struct timespec ts;
		int64_t d = w->state == W_CLAIMED ? clock_mono_ms() + 1000 : deadline_ms;
		ts.tv_sec = d / 1000;
		ts.tv_nsec = (d % 1000) * 1000000;
		pthread_cond_timedwait(&w->cv, &n->mu, &ts);
	}
	return 0;
}

void node_cond_init_mono(pthread_cond_t *cv)
{
	pthread_condattr_t at;
	pthread_condattr_init(&at);
	pthread_condattr_setclock(&at, CLOCK_MONOTONIC);
	pthread_cond_init(cv, &at);
	pthread_condattr_destroy(&at);
}

/* ------------------------------------------------------------------ */
/* Peer receive.                                                        */

void node_on_peer(void *ud, uint8_t kind, uint64_t from, const uint8_t *p, size_t len)
{
	node *n = ud;
	if (kind == PEER_SNAP_CHUNK) {
		node_snapshot_chunk(n, p, len);
		return;
	}
	if (kind != PEER_RAFT)
		return;
	struct ev *e = calloc(1, sizeof *e);
	if (!e)
		return;
	if (raft_msg_decode(p, len, &e->msg) != 0 || e->msg.from != from) {
		free(e);
		return;
	}
	e->kind = EV_PEER;
	node_post(n, e);
}
