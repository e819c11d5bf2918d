/*
 * outbox.c - watch responses and the per-stream queues they wait in.
 *
 * A response is one malloc block: the struct omsg header, then the events,
 * their prev_kvs and every key and value byte, so queueing, purging and
 * freeing a message is one pointer operation each, and a message built from
 * a queued batch or from a store read no longer refers to either.
 *
 * Each stream has an outbox (FIFO of messages; out_events counts their
 * events, the measure of a slow consumer).  A stream with messages, no
 * sender inside its callback, no back-off and not closing sits on the hub's
 * ready list, from which the sender threads take it (sender.c).  The builders
 * need no lock; the queue functions run with mu held.
 */
#include <stdlib.h>
#include <string.h>

#include "../log.h"
#include "watchhub_int.h"

/* ================================================================== */
/* Messages                                                           */

void hub_put_buf(uint8_t **p, ef_buf *b)
{
	if (b->n)
		memcpy(*p, b->p, b->n);
	b->p = *p;
	*p += b->n;
}

/* A message with the events base[idx[i]] (or base[i] when idx is NULL) for
 * watch w; prev_kv kept only when w asked for it. */
struct omsg *hub_omsg_events(struct hub_watch *w, const ef_event *base, const uint32_t *idx,
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
		hub_put_buf(&p, &evs[i].kv.key);
		hub_put_buf(&p, &evs[i].kv.value);
		evs[i].prev_kv = NULL;
		if (w->prev_kv && e->prev_kv) {
			*pk = *e->prev_kv;
			hub_put_buf(&p, &pk->key);
			hub_put_buf(&p, &pk->value);
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
struct omsg *hub_omsg_ctl(struct hub_watch *w, uint64_t req_id, int64_t watch_id, int created,
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
/* Outboxes and the ready list (mu held)                              */

void hub_ready_push(watchhub *h, hub_stream *s)
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

void hub_ready_remove(watchhub *h, hub_stream *s)
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
void hub_out_push(hub_stream *s, struct omsg *m)
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
	hub_ready_push(s->h, s);
}

/* Drop queued messages of watch w (every message when w is NULL). */
void hub_out_purge(hub_stream *s, struct hub_watch *w)
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
