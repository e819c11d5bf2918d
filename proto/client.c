/*
 * client.c - the etcfs client library: one multiplexed nng byte stream to
 * one member at a time, failover between endpoints, watches that resume.
 *
 * Threads.  Callers of efc_call() encode their request, register a
 * `pending` slot on the current connection, write the frame under the
 * connection's write lock and sleep on the slot's condition variable.  Each
 * connection has one receive thread that reads frames and hands each
 * response to its slot, or, for watch responses, queues it for the client's
 * watch-delivery thread, which runs the user callbacks (so a callback may
 * itself call efc_call() on the same client).  When a connection breaks, the
 * receive thread fails every slot on it and wakes the keeper thread, which
 * reconnects (to the next endpoint) and re-creates every watch from the
 * revision after the last one it delivered.
 *
 * Why a byte stream and not nng's REQ/REP: REQ silently resends a request on
 * another pipe after a disconnect, which would apply a put twice.  Here the
 * library knows whether a frame was written, and says so (see client.h).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>

#include "../common/clock.h"
#include "client.h"
#include "streamio.h"

static __thread char errbuf[512];

static void set_err(int code, const char *detail)
{
	if (detail && *detail)
		snprintf(errbuf, sizeof errbuf, "%s", detail);
	else
		snprintf(errbuf, sizeof errbuf, "%s", ef_strerror(code));
}

const char *efc_errmsg(void)
{
	return errbuf[0] ? errbuf : "no error";
}

static void deadline_ts(int64_t deadline, struct timespec *ts)
{
	/* condvars below use CLOCK_MONOTONIC */
	ts->tv_sec = deadline / 1000;
	ts->tv_nsec = (deadline % 1000) * 1000000;
}

static void cond_init_mono(pthread_cond_t *cv)
{
	pthread_condattr_t a;
	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(cv, &a);
	pthread_condattr_destroy(&a);
}

/* ------------------------------------------------------------------ */

struct conn;

struct pending {
	uint64_t id;
	struct conn *conn;
	int done;       /* 1 = answered, 2 = connection lost */
	uint8_t *frame; /* malloc'ed response frame */
	size_t len;
	pthread_cond_t cv;
	struct pending *next;
};

/* A queued watch message for the delivery thread. */
struct wmsg {
	uint8_t *frame;
	size_t len;
	struct wmsg *next;
};

struct efc_watch {
	efc_client *c;
	ef_watch_create_req req; /* key/range_end point into `keybuf` */
	uint8_t *keybuf;
	efc_watch_cb cb;
	void *ud;
	int64_t next_rev;  /* first revision not yet delivered (0 = unknown yet) */
	uint64_t req_id;   /* id of the create request on the current connection */
	int64_t server_id; /* watch id the server assigned */
	struct conn *conn; /* connection the watch is registered on, NULL = needs (re)creating */
	int canceled;      /* the server cancelled it (compaction...): not resumed */
	struct efc_watch *next;
};

struct conn {
	efc_client *c;
	nng_stream *s;
	pthread_mutex_t wmu; /* serialises frame writes */
	pthread_t rx;
	nng_aio *rx_aio; /* the receive thread's; conn_fail aborts it */
	int ep;          /* index of the endpoint it is connected to */
	int dead;        /* under c->mu (read racily by rx, which re-checks every second) */
	int refs;        /* under c->mu: client + rx thread + callers in flight */
};

struct efc_client {
	char **eps;
	int n_eps;
	int cur; /* index of the endpoint to use / in use */
	int dial_ms, cmd_ms;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* connection state changes, keeper wake-ups */
	struct conn *conn; /* current live connection or NULL */
	int connecting;
	uint64_t next_id;
	struct pending *pend; /* every in-flight request */
	struct efc_watch *watches;
	uint64_t failovers;
	int closing;
	int n_rx; /* live receive threads (efc_close waits for 0) */
	pthread_t keeper;
	/* watch delivery */
	pthread_mutex_t dmu;
	pthread_cond_t dcv;
	struct wmsg *dq_head, *dq_tail;
	pthread_mutex_t cbmu; /* held while a callback runs */
	pthread_t deliver;
};

static void conn_unref(efc_client *c, struct conn *k)
{
	/* c->mu held */
	if (--k->refs == 0) {
		nng_stream_free(k->s);
		nng_aio_free(k->rx_aio);
		pthread_mutex_destroy(&k->wmu);
		free(k);
	}
}


/* ------------------------------------------------------------------ */

/* The receive thread's read: nng 1.5's nng_stream_close() does not always
 * wake a receive already waiting on the stream, so conn_fail() also aborts
 * the receive aio, and the receive wakes up every second to look at `dead`
 * (closing the window between its check and its next receive). */
static int rx_read(struct conn *k, void *buf, size_t len)
{
	uint8_t *p = buf;
	while (len > 0) {
		if (__atomic_load_n(&k->dead, __ATOMIC_ACQUIRE))
			return NNG_ECLOSED;
		nng_iov iov = {.iov_buf = p, .iov_len = len};
		nng_aio_set_iov(k->rx_aio, 1, &iov);
		nng_aio_set_timeout(k->rx_aio, 1000);
		nng_stream_recv(k->s, k->rx_aio);
		nng_aio_wait(k->rx_aio);
		int rv = nng_aio_result(k->rx_aio);
		size_t n = nng_aio_count(k->rx_aio);
		if (rv == NNG_ETIMEDOUT && n == 0)
			continue;
		if (rv != 0 && n == 0)
			return rv;
		if (n == 0)
			return NNG_ECLOSED;
		p += n;
		len -= n;
	}
	return 0;
}

static void conn_fail(efc_client *c, struct conn *k)
{
	/* c->mu held: mark dead, fail its requests, detach its watches. */
	if (k->dead)
		return;
	__atomic_store_n(&k->dead, 1, __ATOMIC_RELEASE);
	nng_stream_close(k->s);
	nng_aio_abort(k->rx_aio, NNG_ECLOSED);
	if (c->conn == k) {
		c->conn = NULL;
		conn_unref(c, k);
	}
	for (struct pending *p = c->pend; p; p = p->next)
		if (p->conn == k && !p->done) {
			p->done = 2;
			pthread_cond_signal(&p->cv);
		}
	for (struct efc_watch *w = c->watches; w; w = w->next)
		if (w->conn == k)
			w->conn = NULL;
	pthread_cond_broadcast(&c->cv);
}

static void *rx_main(void *arg)
{
	struct conn *k = arg;
	efc_client *c = k->c;
	uint8_t hdr[EF_WIRE_HDR_LEN];
	for (;;) {
		if (rx_read(k, hdr, sizeof hdr) != 0)
			break;
		ef_frame_hdr h;
		if (ef_decode_header(hdr, sizeof hdr, EF_MAX_RESPONSE_BYTES, &h) != 0)
			break; /* a peer that speaks garbage: drop the connection */
		uint8_t *frame = malloc(EF_WIRE_HDR_LEN + (size_t)h.body_len);
		if (!frame)
			break;
		memcpy(frame, hdr, sizeof hdr);
		if (h.body_len && rx_read(k, frame + EF_WIRE_HDR_LEN, h.body_len) != 0) {
			free(frame);
			break;
		}
		size_t len = EF_WIRE_HDR_LEN + (size_t)h.body_len;
		pthread_mutex_lock(&c->mu);
		struct pending *p;
		for (p = c->pend; p; p = p->next)
			if (p->id == h.id && p->conn == k && !p->done)
				break;
		if (p) {
			p->frame = frame;
			p->len = len;
			p->done = 1;
			pthread_cond_signal(&p->cv);
			pthread_mutex_unlock(&c->mu);
			continue;
		}
		pthread_mutex_unlock(&c->mu);
		if (h.type == EF_MSG_WATCH_RESP) {
			struct wmsg *m = malloc(sizeof *m);
			if (!m) {
				free(frame);
				break;
			}
			m->frame = frame;
			m->len = len;
			m->next = NULL;
			pthread_mutex_lock(&c->dmu);
			if (c->dq_tail)
				c->dq_tail->next = m;
			else
				c->dq_head = m;
			c->dq_tail = m;
			pthread_cond_signal(&c->dcv);
			pthread_mutex_unlock(&c->dmu);
		} else {
			free(frame); /* answer to a request that gave up waiting */
		}
	}
	pthread_mutex_lock(&c->mu);
	conn_fail(c, k);
	conn_unref(c, k);
	c->n_rx--;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

static int dial(const char *url, int timeout_ms, nng_stream **out)
{
	nng_stream_dialer *d;
	int rv = nng_stream_dialer_alloc(&d, url);
	if (rv != 0)
		return rv;
	nng_aio *aio;
	if ((rv = nng_aio_alloc(&aio, NULL, NULL)) != 0) {
		nng_stream_dialer_free(d);
		return rv;
	}
	/* nng 1.5 streams default to Nagle: a small request written behind
	 * another would wait for the peer's delayed ACK (40 ms). */
	nng_stream_dialer_set_bool(d, NNG_OPT_TCP_NODELAY, true);
	nng_aio_set_timeout(aio, timeout_ms > 0 ? timeout_ms : 2000);
	nng_stream_dialer_dial(d, aio);
	nng_aio_wait(aio);
	rv = nng_aio_result(aio);
	if (rv == 0)
		*out = nng_aio_get_output(aio, 0);
	nng_aio_free(aio);
	nng_stream_dialer_free(d);
	return rv;
}

/* Return a referenced live connection, connecting if needed, trying every
 * endpoint in turn until the deadline.  NULL when none is reachable. */
static struct conn *get_conn(efc_client *c, int64_t deadline)
{
	pthread_mutex_lock(&c->mu);
	for (;;) {
		if (c->closing) {
			pthread_mutex_unlock(&c->mu);
			return NULL;
		}
		if (c->conn) {
			struct conn *k = c->conn;
			k->refs++;
			pthread_mutex_unlock(&c->mu);
			return k;
		}
		if (clock_mono_ms() >= deadline) {
			pthread_mutex_unlock(&c->mu);
			return NULL;
		}
		if (c->connecting) {
			struct timespec ts;
			deadline_ts(deadline, &ts);
			pthread_cond_timedwait(&c->cv, &c->mu, &ts);
			continue;
		}
		c->connecting = 1;
		int idx = c->cur;
		pthread_mutex_unlock(&c->mu);

		int64_t left = deadline - clock_mono_ms();
		int tmo = c->dial_ms;
		if (left < tmo)
			tmo = (int)(left > 50 ? left : 50);
		nng_stream *s = NULL;
		int rv = dial(c->eps[idx], tmo, &s);

		pthread_mutex_lock(&c->mu);
		c->connecting = 0;
		pthread_cond_broadcast(&c->cv);
		if (rv != 0) {
			c->cur = (idx + 1) % c->n_eps;
			c->failovers++;
			if (c->cur == 0 || c->n_eps == 1) {
				/* a full round failed: back off a little */
				pthread_mutex_unlock(&c->mu);
				struct timespec ts = {0, 50 * 1000000};
				nanosleep(&ts, NULL);
				pthread_mutex_lock(&c->mu);
			}
			continue;
		}
		struct conn *k = calloc(1, sizeof *k);
		if (!k) {
			nng_stream_free(s);
			continue;
		}
		k->c = c;
		k->s = s;
		k->ep = idx;
		if (nng_aio_alloc(&k->rx_aio, NULL, NULL) != 0) {
			nng_stream_free(s);
			free(k);
			continue;
		}
		pthread_mutex_init(&k->wmu, NULL);
		k->refs = 2; /* client + rx thread */
		if (pthread_create(&k->rx, NULL, rx_main, k) != 0) {
			nng_stream_free(s);
			nng_aio_free(k->rx_aio);
			free(k);
			continue;
		}
		pthread_detach(k->rx);
		c->n_rx++;
		c->conn = k;
		pthread_cond_broadcast(&c->cv); /* the keeper re-creates watches */
	}
}

/* Move on to the next endpoint (the member behind this one misbehaves). */
static void failover(efc_client *c, struct conn *k)
{
	pthread_mutex_lock(&c->mu);
	if (c->cur == k->ep) {
		c->cur = (c->cur + 1) % c->n_eps;
		c->failovers++;
	}
	conn_fail(c, k);
	pthread_mutex_unlock(&c->mu);
}

static void conn_release(efc_client *c, struct conn *k)
{
	pthread_mutex_lock(&c->mu);
	conn_unref(c, k);
	pthread_mutex_unlock(&c->mu);
}

static int send_frame(struct conn *k, const uint8_t *p, size_t n)
{
	pthread_mutex_lock(&k->wmu);
	int rv = ef_stream_io(k->s, (void *)p, n, 1);
	pthread_mutex_unlock(&k->wmu);
	return rv;
}

static int is_read_only(uint8_t type)
{
	switch (type) {
	case EF_MSG_RANGE:
	case EF_MSG_STATUS:
	case EF_MSG_LEASE_TTL:
	case EF_MSG_LEASE_LIST:
	case EF_MSG_MEMBER_LIST:
		return 1;
	default:
		return 0;
	}
}

static int retryable_server_error(int code)
{
	return code == EF_E_NO_LEADER || code == EF_E_STOPPING || code == EF_E_NOT_LEADER ||
	       code == EF_E_LEADER_CHANGED;
}

int efc_call(efc_client *c, const ef_msg *req, ef_msg *resp, ef_arena *a)
{
	int64_t deadline = clock_mono_ms() + c->cmd_ms;
	int ro = is_read_only(req->type);
	ef_wbuf wb;
	ef_wbuf_init(&wb);
	ef_msg m = *req;
	pthread_mutex_lock(&c->mu);
	m.id = ++c->next_id;
	pthread_mutex_unlock(&c->mu);
	int rv = ef_encode(&m, &wb);
	if (rv != 0) {
		ef_wbuf_free(&wb);
		set_err(rv, NULL);
		return rv;
	}
	errbuf[0] = 0;
	int last_server_err = 0;
	for (int attempt = 0;; attempt++) {
		struct conn *k = get_conn(c, deadline);
		if (!k) {
			ef_wbuf_free(&wb);
			if (last_server_err) {
				set_err(last_server_err, NULL);
				return last_server_err;
			}
			char msg[300];
			snprintf(msg, sizeof msg, "%s (endpoints: %s%s)",
				 ef_strerror(EF_E_UNAVAILABLE), c->eps[0],
				 c->n_eps > 1 ? ", ..." : "");
			set_err(EF_E_UNAVAILABLE, msg);
			return EF_E_UNAVAILABLE;
		}
		struct pending p = {.id = m.id, .conn = k};
		cond_init_mono(&p.cv);
		pthread_mutex_lock(&c->mu);
		p.next = c->pend;
		c->pend = &p;
		if (k->dead)
			p.done = 2;
		pthread_mutex_unlock(&c->mu);

		int sent = 0;
		if (!p.done) {
			if (send_frame(k, wb.p, wb.len) == 0)
				sent = 1;
		}
		pthread_mutex_lock(&c->mu);
		if (!sent && !p.done) {
			p.done = 2;
			conn_fail(c, k);
		}
		while (!p.done) {
			struct timespec ts;
			deadline_ts(deadline, &ts);
			if (pthread_cond_timedwait(&p.cv, &c->mu, &ts) == ETIMEDOUT)
				break;
		}
		/* unlink */
		for (struct pending **pp = &c->pend; *pp; pp = &(*pp)->next)
			if (*pp == &p) {
				*pp = p.next;
				break;
			}
		int done = p.done;
		pthread_mutex_unlock(&c->mu);
		/* k stays referenced until the end of this attempt (failover uses it) */
		pthread_cond_destroy(&p.cv);

		if (done == 1) {
			uint8_t *copy = ef_arena_dup(a, p.frame, p.len);
			free(p.frame);
			if (!copy) {
				ef_wbuf_free(&wb);
				set_err(EF_E_NOMEM, NULL);
				conn_release(c, k);
				return EF_E_NOMEM;
			}
			rv = ef_decode(copy, p.len, EF_MAX_RESPONSE_BYTES, a, resp);
			if (rv != 0) {
				ef_wbuf_free(&wb);
				set_err(rv, "malformed response from server");
				conn_release(c, k);
				return rv;
			}
			if (resp->type != EF_MSG_ERROR) {
				ef_wbuf_free(&wb);
				conn_release(c, k);
				return 0;
			}
			int code = (int)resp->u.error.code;
			if (code <= 0 || code >= EF_E__COUNT)
				code = EF_E_IO;
			if (retryable_server_error(code) && clock_mono_ms() + 100 < deadline) {
				last_server_err = code;
				struct timespec ts = {0, (attempt < 5 ? 20 : 100) * 1000000L};
				nanosleep(&ts, NULL);
				if (attempt % 3 == 2)
					failover(c, k);
				conn_release(c, k);
				continue;
			}
			ef_wbuf_free(&wb);
			char msg[400];
			snprintf(msg, sizeof msg, "%.*s", (int)resp->u.error.message.n,
				 (const char *)resp->u.error.message.p);
			if (code == EF_E_TIMEOUT && !ro) {
				/* the member proposed it and gave up waiting: it may
				 * still commit */
				snprintf(msg, sizeof msg, "%s (outcome unknown)",
					 ef_strerror(code));
				code = EF_E_OUTCOME_UNKNOWN;
			}
			set_err(code, msg);
			conn_release(c, k);
			return code;
		}
		if (done == 2 && (!sent || ro)) {
			/* not written, or safe to repeat: try the next endpoint */
			failover(c, k);
			conn_release(c, k);
			continue;
		}
		ef_wbuf_free(&wb);
		if (done == 0 && !sent) {
			set_err(EF_E_UNAVAILABLE, NULL);
			conn_release(c, k);
			return EF_E_UNAVAILABLE;
		}
		if (ro) {
			set_err(EF_E_TIMEOUT, NULL);
			conn_release(c, k);
			return EF_E_TIMEOUT;
		}
		set_err(EF_E_OUTCOME_UNKNOWN,
			done == 2 ? "request sent but the connection broke before "
				    "the reply: outcome unknown"
				  : "request sent but no reply within the command "
				    "timeout: outcome unknown");
		conn_release(c, k);
		return EF_E_OUTCOME_UNKNOWN;
	}
}

/* ------------------------------------------------------------------ */
/* Watches.                                                             */

static int watch_send_create(efc_client *c, struct efc_watch *w, struct conn *k)
{
	/* c->mu NOT held. */
	ef_msg m = {.type = EF_MSG_WATCH_CREATE};
	m.u.watch_create = w->req;
	m.u.watch_create.watch_id = 0;
	if (w->next_rev > 0)
		m.u.watch_create.start_revision = w->next_rev;
	pthread_mutex_lock(&c->mu);
	m.id = ++c->next_id;
	w->req_id = m.id;
	w->conn = k;
	pthread_mutex_unlock(&c->mu);
	ef_wbuf wb;
	ef_wbuf_init(&wb);
	int rv = ef_encode(&m, &wb);
	if (rv == 0 && send_frame(k, wb.p, wb.len) != 0)
		rv = EF_E_UNAVAILABLE;
	ef_wbuf_free(&wb);
	return rv;
}

/* Keeper: after a reconnect (or a break), re-create watches that lost
 * their connection. */
static void *keeper_main(void *arg)
{
	efc_client *c = arg;
	pthread_mutex_lock(&c->mu);
	while (!c->closing) {
		struct efc_watch *need = NULL;
		for (struct efc_watch *w = c->watches; w; w = w->next)
			if (!w->conn && !w->canceled) {
				need = w;
				break;
			}
		if (!need) {
			pthread_cond_wait(&c->cv, &c->mu);
			continue;
		}
		pthread_mutex_unlock(&c->mu);
		struct conn *k = get_conn(c, clock_mono_ms() + 1000);
		pthread_mutex_lock(&c->mu);
		if (!k)
			continue; /* get_conn backs off; try again */
		/* re-create every orphaned watch on k */
		for (;;) {
			struct efc_watch *w;
			for (w = c->watches; w; w = w->next)
				if (!w->conn && !w->canceled)
					break;
			if (!w || k->dead)
				break;
			w->conn = k; /* claim */
			pthread_mutex_unlock(&c->mu);
			int rv = watch_send_create(c, w, k);
			pthread_mutex_lock(&c->mu);
			if (rv != 0) {
				conn_fail(c, k);
				break;
			}
		}
		conn_unref(c, k);
	}
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

static void deliver_one(efc_client *c, struct wmsg *q)
{
	ef_arena *a = ef_arena_new();
	ef_msg m;
	if (!a || ef_decode(q->frame, q->len, EF_MAX_RESPONSE_BYTES, a, &m) != 0 ||
	    m.type != EF_MSG_WATCH_RESP) {
		ef_arena_free(a);
		return;
	}
	pthread_mutex_lock(&c->cbmu);
	pthread_mutex_lock(&c->mu);
	struct efc_watch *w;
	for (w = c->watches; w; w = w->next)
		if (w->req_id == m.id)
			break;
	ef_watch_resp *pr = &m.u.watch_resp;
	if (!w && pr->watch_id == -1 && !pr->n_events && !pr->created && !pr->canceled) {
		/* answer to efc_watch_progress(): every watch of the client has
		 * seen everything up to hdr.revision */
		struct efc_watch *todo[256];
		int k = 0;
		for (w = c->watches; w && k < 256; w = w->next)
			if (!w->canceled && w->next_rev > 0) {
				if (m.hdr.revision >= w->next_rev)
					w->next_rev = m.hdr.revision + 1;
				todo[k++] = w;
			}
		pthread_mutex_unlock(&c->mu);
		for (int i = 0; i < k; i++)
			todo[i]->cb(todo[i]->ud, pr, &m.hdr);
		pthread_mutex_unlock(&c->cbmu);
		ef_arena_free(a);
		return;
	}
	if (!w || w->canceled) {
		pthread_mutex_unlock(&c->mu);
		pthread_mutex_unlock(&c->cbmu);
		ef_arena_free(a);
		return;
	}
	ef_watch_resp *r = &m.u.watch_resp;
	int is_resume = w->next_rev > 0;
	if (r->created) {
		w->server_id = r->watch_id;
		if (w->next_rev == 0)
			w->next_rev = m.hdr.revision + 1;
	}
	if (r->n_events > 0) {
		int64_t last = r->events[r->n_events - 1].kv.mod_revision;
		if (last >= w->next_rev)
			w->next_rev = last + 1;
	} else if (!r->created && !r->canceled && m.hdr.revision >= w->next_rev) {
		w->next_rev = m.hdr.revision + 1; /* progress notification */
	}
	if (r->canceled)
		w->canceled = 1;
	pthread_mutex_unlock(&c->mu);
	/* A re-created watch's "created" is internal: the user saw one already. */
	if (!(r->created && is_resume && r->n_events == 0))
		w->cb(w->ud, r, &m.hdr);
	pthread_mutex_unlock(&c->cbmu);
	ef_arena_free(a);
}

static void *deliver_main(void *arg)
{
	efc_client *c = arg;
	pthread_mutex_lock(&c->dmu);
	for (;;) {
		while (!c->dq_head && !c->closing)
			pthread_cond_wait(&c->dcv, &c->dmu);
		if (!c->dq_head && c->closing)
			break;
		struct wmsg *q = c->dq_head;
		c->dq_head = q->next;
		if (!c->dq_head)
			c->dq_tail = NULL;
		pthread_mutex_unlock(&c->dmu);
		deliver_one(c, q);
		free(q->frame);
		free(q);
		pthread_mutex_lock(&c->dmu);
	}
	pthread_mutex_unlock(&c->dmu);
	return NULL;
}

int efc_watch_start(efc_client *c, const ef_watch_create_req *req, efc_watch_cb cb, void *ud,
		    efc_watch **out)
{
	struct efc_watch *w = calloc(1, sizeof *w);
	if (!w)
		return EF_E_NOMEM;
	w->keybuf = malloc((size_t)req->key.n + req->range_end.n + 1);
	if (!w->keybuf) {
		free(w);
		return EF_E_NOMEM;
	}
	if (req->key.n)
		memcpy(w->keybuf, req->key.p, req->key.n);
	if (req->range_end.n) /* an empty ef_buf may carry a NULL pointer */
		memcpy(w->keybuf + req->key.n, req->range_end.p, req->range_end.n);
	w->req = *req;
	w->req.key.p = w->keybuf;
	w->req.range_end.p = w->keybuf + req->key.n;
	w->next_rev = req->start_revision > 0 ? req->start_revision : 0;
	w->c = c;
	w->cb = cb;
	w->ud = ud;
	struct conn *k = get_conn(c, clock_mono_ms() + c->cmd_ms);
	if (!k) {
		free(w->keybuf);
		free(w);
		set_err(EF_E_UNAVAILABLE, NULL);
		return EF_E_UNAVAILABLE;
	}
	pthread_mutex_lock(&c->mu);
	w->next = c->watches;
	c->watches = w;
	w->conn = k;
	pthread_mutex_unlock(&c->mu);
	if (watch_send_create(c, w, k) != 0) {
		pthread_mutex_lock(&c->mu);
		conn_fail(c, k); /* the keeper re-creates it elsewhere */
		pthread_mutex_unlock(&c->mu);
	}
	pthread_mutex_lock(&c->mu);
	conn_unref(c, k);
	pthread_mutex_unlock(&c->mu);
	*out = w;
	return 0;
}

int efc_watch_progress(efc_client *c)
{
	struct conn *k = get_conn(c, clock_mono_ms() + c->cmd_ms);
	if (!k)
		return EF_E_UNAVAILABLE;
	ef_msg m = {.type = EF_MSG_WATCH_PROGRESS};
	pthread_mutex_lock(&c->mu);
	m.id = ++c->next_id;
	pthread_mutex_unlock(&c->mu);
	ef_wbuf wb;
	ef_wbuf_init(&wb);
	int rv = ef_encode(&m, &wb);
	if (rv == 0 && send_frame(k, wb.p, wb.len) != 0)
		rv = EF_E_UNAVAILABLE;
	ef_wbuf_free(&wb);
	pthread_mutex_lock(&c->mu);
	conn_unref(c, k);
	pthread_mutex_unlock(&c->mu);
	return rv;
}

void efc_watch_stop(efc_watch *w)
{
	efc_client *c = w->c;
	pthread_mutex_lock(&c->cbmu); /* no callback of w runs after this */
	pthread_mutex_lock(&c->mu);
	for (struct efc_watch **pp = &c->watches; *pp; pp = &(*pp)->next)
		if (*pp == w) {
			*pp = w->next;
			break;
		}
	struct conn *k = w->conn;
	int64_t sid = w->server_id;
	int known = w->req_id && !w->canceled;
	if (k && !k->dead)
		k->refs++;
	else
		k = NULL;
	pthread_mutex_unlock(&c->mu);
	pthread_mutex_unlock(&c->cbmu);
	if (k && known) {
		ef_msg m = {.type = EF_MSG_WATCH_CANCEL};
		m.u.watch_cancel.watch_id = sid;
		pthread_mutex_lock(&c->mu);
		m.id = ++c->next_id;
		pthread_mutex_unlock(&c->mu);
		ef_wbuf wb;
		ef_wbuf_init(&wb);
		if (ef_encode(&m, &wb) == 0)
			send_frame(k, wb.p, wb.len); /* best effort */
		ef_wbuf_free(&wb);
	}
	if (k) {
		pthread_mutex_lock(&c->mu);
		conn_unref(c, k);
		pthread_mutex_unlock(&c->mu);
	}
	free(w->keybuf);
	free(w);
}

/* ------------------------------------------------------------------ */

/* Accept "tcp://h:p", "tls+tcp://h:p", "h:p", "http://h:p" (mapped to tcp). */
static char *normalize_endpoint(const char *s, size_t n)
{
	char tmp[512];
	if (n == 0 || n >= 400)
		return NULL;
	const char *p = s;
	size_t len = n;
	if (len > 7 && strncmp(p, "http://", 7) == 0) {
		p += 7;
		len -= 7;
	} else if (len > 8 && strncmp(p, "https://", 8) == 0) {
		snprintf(tmp, sizeof tmp, "tls+tcp://%.*s", (int)(len - 8), p + 8);
		return strdup(tmp);
	} else if (memmem(p, len, "://", 3)) {
		snprintf(tmp, sizeof tmp, "%.*s", (int)len, p);
		return strdup(tmp);
	}
	if (!memchr(p, ':', len))
		return NULL;
	snprintf(tmp, sizeof tmp, "tcp://%.*s", (int)len, p);
	return strdup(tmp);
}

int efc_open(const efc_opts *o, efc_client **out, char *err, size_t errlen)
{
	const char *eps = o->endpoints && *o->endpoints ? o->endpoints : "tcp://127.0.0.1:2378";
	efc_client *c = calloc(1, sizeof *c);
	if (!c)
		return EF_E_NOMEM;
	const char *p = eps;
	while (*p) {
		const char *e = strchr(p, ',');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		while (n && (*p == ' ')) {
			p++;
			n--;
		}
		if (n) {
			char *u = normalize_endpoint(p, n);
			if (!u) {
				if (err)
					snprintf(
						err, errlen,
						"invalid endpoint '%.*s' (expected tcp://HOST:PORT)",
						(int)n, p);
				for (int i = 0; i < c->n_eps; i++)
					free(c->eps[i]);
				free(c->eps);
				free(c);
				return EF_E_INVALID;
			}
			char **ne = realloc(c->eps, sizeof(char *) * (size_t)(c->n_eps + 1));
			if (!ne) {
				free(u);
				break;
			}
			c->eps = ne;
			c->eps[c->n_eps++] = u;
		}
		if (!e)
			break;
		p = e + 1;
	}
	if (c->n_eps == 0) {
		if (err)
			snprintf(err, errlen, "no endpoints given");
		free(c->eps);
		free(c);
		return EF_E_INVALID;
	}
	c->dial_ms = o->dial_timeout_ms > 0 ? o->dial_timeout_ms : 2000;
	c->cmd_ms = o->command_timeout_ms > 0 ? o->command_timeout_ms : 5000;
	pthread_mutex_init(&c->mu, NULL);
	cond_init_mono(&c->cv);
	pthread_mutex_init(&c->dmu, NULL);
	pthread_cond_init(&c->dcv, NULL);
	pthread_mutex_init(&c->cbmu, NULL);
	pthread_create(&c->keeper, NULL, keeper_main, c);
	pthread_create(&c->deliver, NULL, deliver_main, c);
	*out = c;
	return 0;
}

void efc_close(efc_client *c)
{
	if (!c)
		return;
	while (c->watches)
		efc_watch_stop(c->watches);
	pthread_mutex_lock(&c->mu);
	c->closing = 1;
	pthread_cond_broadcast(&c->cv);
	if (c->conn)
		conn_fail(c, c->conn);
	pthread_mutex_unlock(&c->mu);
	pthread_mutex_lock(&c->dmu);
	pthread_cond_broadcast(&c->dcv);
	pthread_mutex_unlock(&c->dmu);
	pthread_join(c->keeper, NULL);
	pthread_join(c->deliver, NULL);
	/* every request has given up (closing), every rx thread has seen its
	 * stream closed: wait for them to let go of c */
	pthread_mutex_lock(&c->mu);
	while (c->n_rx > 0 || c->pend)
		pthread_cond_wait(&c->cv, &c->mu);
	pthread_mutex_unlock(&c->mu);
	while (c->dq_head) {
		struct wmsg *q = c->dq_head;
		c->dq_head = q->next;
		free(q->frame);
		free(q);
	}
	for (int i = 0; i < c->n_eps; i++)
		free(c->eps[i]);
	free(c->eps);
	pthread_mutex_destroy(&c->cbmu);
	free(c);
}

const char *efc_current_endpoint(efc_client *c)
{
	return c->eps[c->cur];
}

uint64_t efc_failovers(efc_client *c)
{
	return c->failovers;
}

/* ------------------------------------------------------------------ */

int efc_put(efc_client *c, const void *key, uint32_t klen, const void *val, uint32_t vlen,
	    int64_t lease, int64_t *revision_out)
{
	ef_arena *a = ef_arena_new();
	if (!a)
		return EF_E_NOMEM;
	ef_msg req = {.type = EF_MSG_PUT}, resp;
	req.u.put.key = (ef_buf){key, klen};
	req.u.put.value = (ef_buf){val, vlen};
	req.u.put.lease = lease;
	int rv = efc_call(c, &req, &resp, a);
	if (rv == 0 && revision_out)
		*revision_out = resp.hdr.revision;
	ef_arena_free(a);
	return rv;
}

int efc_get(efc_client *c, const void *key, uint32_t klen, int serializable, uint8_t **val,
	    uint32_t *vlen, ef_kv *kv_out)
{
	ef_arena *a = ef_arena_new();
	if (!a)
		return EF_E_NOMEM;
	ef_msg req = {.type = EF_MSG_RANGE}, resp;
	req.u.range.key = (ef_buf){key, klen};
	req.u.range.serializable = (uint8_t)serializable;
	int rv = efc_call(c, &req, &resp, a);
	if (rv == 0 && resp.u.range_resp.n_kvs == 0)
		rv = EF_E_NOT_FOUND;
	if (rv == 0) {
		ef_kv *kv = &resp.u.range_resp.kvs[0];
		if (val) {
			*val = malloc(kv->value.n ? kv->value.n : 1);
			if (!*val) {
				ef_arena_free(a);
				return EF_E_NOMEM;
			}
			memcpy(*val, kv->value.p, kv->value.n);
			*vlen = kv->value.n;
		}
		if (kv_out) {
			*kv_out = *kv;
			kv_out->key = (ef_buf){NULL, 0};
			kv_out->value = (ef_buf){NULL, 0};
		}
	}
	ef_arena_free(a);
	return rv;
}

int efc_delete(efc_client *c, const void *key, uint32_t klen, const void *range_end, uint32_t rlen,
	       int64_t *deleted)
{
	ef_arena *a = ef_arena_new();
	if (!a)
		return EF_E_NOMEM;
	ef_msg req = {.type = EF_MSG_DELETE}, resp;
	req.u.del.key = (ef_buf){key, klen};
	req.u.del.range_end = (ef_buf){range_end, rlen};
	int rv = efc_call(c, &req, &resp, a);
	if (rv == 0 && deleted)
		*deleted = resp.u.del_resp.deleted;
	ef_arena_free(a);
	return rv;
}
