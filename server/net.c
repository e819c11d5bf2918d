/*
 * net.c - the native client listener of etcfsd (see net.h).
 *
 * Per connection: a reader thread decodes frames and hands every request to
 * the worker pool (requests of one connection run concurrently: the FUSE
 * mount multiplexes all its threads on one connection); a writer thread
 * drains the connection's send queue, so a worker or the watch hub never
 * blocks on a slow socket.  Watch messages respect a byte bound on that
 * queue (a slow watcher is reported to the hub, which catches it up from the
 * store later); answers to requests are always queued.
 *
 * A malformed frame gets one EF_MSG_ERROR answer and the connection is
 * closed: after a framing error the byte stream can't be trusted.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/supplemental/util/platform.h>

#include "log.h"
#include "../proto/streamio.h"
#include "net.h"

#define WATCH_QUEUE_BYTES (8u << 20)
#define POOL_MAX 512

struct outq {
	uint8_t *p;
	size_t n;
	struct outq *next;
};

struct conn {
	nng_stream *s;
	node *n;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct outq *head, *tail;
	size_t queued;
	int closed;
	int refs; /* reader + writer + jobs in flight + watch stream */
	node_wstream *ws;
	pthread_mutex_t wsmu; /* creation of ws */
};

struct job {
	struct conn *c;
	uint8_t *frame;
	size_t len;
	struct job *next;
};

static struct {
	node *n;
	size_t max_req;
	nng_stream_listener *ls[8];
	int n_ls;
	pthread_t acc[8];
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct job *head, *tail;
	int threads, idle;
	int stopping;
} G;

static void conn_unref(struct conn *c)
{
	pthread_mutex_lock(&c->mu);
	int left = --c->refs;
	pthread_mutex_unlock(&c->mu);
	if (left)
		return;
	while (c->head) {
		struct outq *q = c->head;
		c->head = q->next;
		free(q->p);
		free(q);
	}
	nng_stream_free(c->s);
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->wsmu);
	free(c);
}

static void conn_close(struct conn *c)
{
	pthread_mutex_lock(&c->mu);
	if (!c->closed) {
		c->closed = 1;
		nng_stream_close(c->s);
		pthread_cond_broadcast(&c->cv);
	}
	pthread_mutex_unlock(&c->mu);
}

/* Queue an encoded frame (takes ownership of buf).  bound: refuse past the
 * watch queue limit (returns 1).  */
static int conn_enqueue(struct conn *c, uint8_t *buf, size_t n, int bound)
{
	struct outq *q = malloc(sizeof *q);
	if (!q) {
		free(buf);
		return 1;
	}
	q->p = buf;
	q->n = n;
	q->next = NULL;
	pthread_mutex_lock(&c->mu);
	if (c->closed || (bound && c->queued > WATCH_QUEUE_BYTES)) {
		pthread_mutex_unlock(&c->mu);
		free(buf);
		free(q);
		return 1;
	}
	if (c->tail)
		c->tail->next = q;
	else
		c->head = q;
	c->tail = q;
	c->queued += n;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
	return 0;
}

static int conn_send_msg(struct conn *c, const ef_msg *m, int bound)
{
	ef_wbuf wb;
	ef_wbuf_init(&wb);
	if (ef_encode(m, &wb) != 0) {
		ef_wbuf_free(&wb);
		return 1;
	}
	return conn_enqueue(c, wb.p, wb.len, bound); /* wbuf memory handed over */
}


static void *writer_main(void *arg)
{
	struct conn *c = arg;
	pthread_mutex_lock(&c->mu);
	for (;;) {
		while (!c->head && !c->closed)
			pthread_cond_wait(&c->cv, &c->mu);
		if (c->closed)
			break;
		/* take the whole queue and write it in one go */
		struct outq *q = c->head;
		c->head = c->tail = NULL;
		pthread_mutex_unlock(&c->mu);
		size_t total = 0;
		int nq = 0;
		for (struct outq *x = q; x; x = x->next) {
			total += x->n;
			nq++;
		}
		int rv = 0;
		if (nq == 1) {
			rv = ef_stream_io(c->s, q->p, q->n, 1);
		} else {
			uint8_t *big = malloc(total);
			if (big) {
				size_t off = 0;
				for (struct outq *x = q; x; x = x->next) {
					memcpy(big + off, x->p, x->n);
					off += x->n;
				}
				rv = ef_stream_io(c->s, big, total, 1);
				free(big);
			} else {
				for (struct outq *x = q; x && rv == 0; x = x->next)
					rv = ef_stream_io(c->s, x->p, x->n, 1);
			}
		}
		while (q) {
			struct outq *x = q->next;
			free(q->p);
			free(q);
			q = x;
		}
		pthread_mutex_lock(&c->mu);
		c->queued -= total;
		if (rv != 0)
			break;
	}
	pthread_mutex_unlock(&c->mu);
	conn_close(c);
	conn_unref(c);
	return NULL;
}

static int watch_cb(void *ud, const ef_msg *m)
{
	struct conn *c = ud;
	return conn_send_msg(c, m, 1);
}

static void reply_error(struct conn *c, uint64_t id, int code, const char *msg)
{
	ef_msg r = {.type = EF_MSG_ERROR, .id = id};
	r.u.error.code = (uint32_t)code;
	r.u.error.message = ef_str(msg ? msg : ef_strerror(code));
	conn_send_msg(c, &r, 0);
}

static void handle(struct conn *c, uint8_t *frame, size_t len)
{
	ef_arena *a = ef_arena_new();
	ef_msg req, resp;
	if (!a)
		return;
	int rv = ef_decode(frame, len, G.max_req + 64 * 1024, a, &req);
	if (rv != 0) {
		reply_error(c, ef_get_be64(frame + 8), rv, NULL);
		ef_arena_free(a);
		return;
	}
	if (req.type == EF_MSG_WATCH_CREATE || req.type == EF_MSG_WATCH_CANCEL ||
	    req.type == EF_MSG_WATCH_PROGRESS) {
		pthread_mutex_lock(&c->wsmu);
		if (!c->ws) {
			pthread_mutex_lock(&c->mu);
			c->refs++;
			pthread_mutex_unlock(&c->mu);
			if ((rv = node_wstream_open(c->n, watch_cb, c, &c->ws)) != 0) {
				c->ws = NULL;
				pthread_mutex_unlock(&c->wsmu);
				conn_unref(c);
				reply_error(c, req.id, rv, NULL);
				ef_arena_free(a);
				return;
			}
		}
		node_wstream *ws = c->ws;
		pthread_mutex_unlock(&c->wsmu);
		rv = node_wstream_request(ws, &req);
		if (rv != 0)
			reply_error(c, req.id, rv, NULL);
		ef_arena_free(a);
		return;
	}
	node_call(c->n, &req, &resp, a);
	resp.id = req.id;
	conn_send_msg(c, &resp, 0);
	ef_arena_free(a);
}

static void *worker_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&G.mu);
	for (;;) {
		while (!G.head && !G.stopping) {
			G.idle++;
			pthread_cond_wait(&G.cv, &G.mu);
			G.idle--;
		}
		if (!G.head)
			break;
		struct job *j = G.head;
		G.head = j->next;
		if (!G.head)
			G.tail = NULL;
		pthread_mutex_unlock(&G.mu);
		handle(j->c, j->frame, j->len);
		free(j->frame);
		conn_unref(j->c);
		free(j);
		pthread_mutex_lock(&G.mu);
	}
	G.threads--;
	pthread_mutex_unlock(&G.mu);
	return NULL;
}

static void submit(struct conn *c, uint8_t *frame, size_t len)
{
	struct job *j = malloc(sizeof *j);
	if (!j) {
		free(frame);
		return;
	}
	j->c = c;
	j->frame = frame;
	j->len = len;
	j->next = NULL;
	pthread_mutex_lock(&c->mu);
	c->refs++;
	pthread_mutex_unlock(&c->mu);
	pthread_mutex_lock(&G.mu);
	if (G.tail)
		G.tail->next = j;
	else
		G.head = j;
	G.tail = j;
	if (G.idle == 0 && G.threads < POOL_MAX) {
		pthread_t t;
		if (pthread_create(&t, NULL, worker_main, NULL) == 0) {
			pthread_detach(t);
			G.threads++;
		}
	}
	pthread_cond_signal(&G.cv);
	pthread_mutex_unlock(&G.mu);
}

/* Largest oversize body the reader skips to keep a connection; past it the
 * connection is closed after the error.  Skipping is bounded in time too. */
#define DISCARD_MAX (256u << 20)
#define DISCARD_TIMEOUT_MS 30000

/* Read and drop len bytes of the stream.  0, or -1 (peer gone or too slow). */
static int discard_body(struct conn *c, uint32_t len)
{
	uint8_t buf[16384];

	while (len > 0) {
		uint32_t k = len < sizeof buf ? len : (uint32_t)sizeof buf;

		if (ef_stream_io_timeout(c->s, buf, k, 0, DISCARD_TIMEOUT_MS) != 0)
			return -1;
		len -= k;
	}
	return 0;
}

static void *reader_main(void *arg)
{
	struct conn *c = arg;
	uint8_t hdr[EF_WIRE_HDR_LEN];
	size_t max_body = G.max_req + 64 * 1024;
	for (;;) {
		if (ef_stream_io(c->s, hdr, sizeof hdr, 0) != 0)
			break;
		ef_frame_hdr h;
		int rv = ef_decode_header(hdr, sizeof hdr, max_body, &h);
		if (rv == EF_E_TOO_LARGE && h.body_len <= DISCARD_MAX) {
			/* A well-formed frame that is only too big: answer, skip
			 * its body and keep serving, as etcd's gRPC server does.
			 * Closing at once would make the client fail its write
			 * of the body and lose the answer in the socket buffer
			 * (it then reports an I/O error instead of "request is
			 * too large"). */
			reply_error(c, h.id, EF_E_REQUEST_TOO_LARGE,
				    ef_strerror(EF_E_REQUEST_TOO_LARGE));
			if (discard_body(c, h.body_len) != 0)
				break;
			continue;
		}
		if (rv != 0) {
			char msg[160];
			snprintf(msg, sizeof msg, "%s (closing connection)", ef_strerror(rv));
			reply_error(c, ef_get_be64(hdr + 8),
				    rv == EF_E_TOO_LARGE ? EF_E_REQUEST_TOO_LARGE : rv, msg);
			/* let the writer flush the error before closing */
			for (int i = 0; i < 100; i++) {
				pthread_mutex_lock(&c->mu);
				int empty = c->head == NULL;
				pthread_mutex_unlock(&c->mu);
				if (empty)
					break;
				nng_msleep(10);
			}
			break;
		}
		uint8_t *frame = malloc(EF_WIRE_HDR_LEN + (size_t)h.body_len);
		if (!frame)
			break;
		memcpy(frame, hdr, sizeof hdr);
		if (h.body_len && ef_stream_io(c->s, frame + EF_WIRE_HDR_LEN, h.body_len, 0) != 0) {
			free(frame);
			break;
		}
		submit(c, frame, EF_WIRE_HDR_LEN + (size_t)h.body_len);
	}
	conn_close(c);
	pthread_mutex_lock(&c->wsmu);
	node_wstream *ws = c->ws;
	c->ws = NULL;
	pthread_mutex_unlock(&c->wsmu);
	if (ws) {
		node_wstream_close(ws);
		conn_unref(c);
	}
	conn_unref(c);
	return NULL;
}

static void *accept_main(void *arg)
{
	nng_stream_listener *l = arg;
	nng_aio *aio;
	if (nng_aio_alloc(&aio, NULL, NULL) != 0)
		return NULL;
	for (;;) {
		nng_stream_listener_accept(l, aio);
		nng_aio_wait(aio);
		int rv = nng_aio_result(aio);
		if (rv == NNG_ECLOSED || G.stopping)
			break;
		if (rv != 0) {
			nng_msleep(10);
			continue;
		}
		nng_stream *s = nng_aio_get_output(aio, 0);
		struct conn *c = calloc(1, sizeof *c);
		if (!c) {
			nng_stream_free(s);
			continue;
		}
		c->s = s;
		c->n = G.n;
		c->refs = 2;
		pthread_mutex_init(&c->mu, NULL);
		pthread_cond_init(&c->cv, NULL);
		pthread_mutex_init(&c->wsmu, NULL);
		pthread_t t1, t2;
		pthread_create(&t1, NULL, reader_main, c);
		pthread_create(&t2, NULL, writer_main, c);
		pthread_detach(t1);
		pthread_detach(t2);
	}
	nng_aio_free(aio);
	return NULL;
}

int net_start(node *n, const char *urls, size_t max_request_bytes, char *err, size_t errlen)
{
	G.n = n;
	G.max_req = max_request_bytes;
	pthread_mutex_init(&G.mu, NULL);
	pthread_cond_init(&G.cv, NULL);
	char *copy = strdup(urls), *save = NULL;
	for (char *u = strtok_r(copy, ",", &save); u; u = strtok_r(NULL, ",", &save)) {
		if (G.n_ls >= 8)
			break;
		char url[512];
		if (strstr(u, "://") == NULL)
			snprintf(url, sizeof url, "tcp://%s", u);
		else if (strncmp(u, "http://", 7) == 0)
			snprintf(url, sizeof url, "tcp://%s", u + 7);
		else
			snprintf(url, sizeof url, "%s", u);
		nng_stream_listener *l;
		int rv = nng_stream_listener_alloc(&l, url);
		if (rv ==
		    0) /* nng streams default to Nagle: answers would wait 40 ms behind a watch event */
			nng_stream_listener_set_bool(l, NNG_OPT_TCP_NODELAY, true);
		if (rv == 0)
			rv = nng_stream_listener_listen(l);
		if (rv != 0) {
			snprintf(err, errlen, "cannot listen on client url %s: %s", url,
				 nng_strerror(rv));
			free(copy);
			return EF_E_INVALID;
		}
		G.ls[G.n_ls] = l;
		pthread_create(&G.acc[G.n_ls], NULL, accept_main, l);
		G.n_ls++;
	}
	free(copy);
	return 0;
}

void net_stop(void)
{
	G.stopping = 1;
	for (int i = 0; i < G.n_ls; i++) {
		nng_stream_listener_close(G.ls[i]);
		pthread_join(G.acc[i], NULL);
		nng_stream_listener_free(G.ls[i]);
	}
	pthread_mutex_lock(&G.mu);
	pthread_cond_broadcast(&G.cv);
	pthread_mutex_unlock(&G.mu);
}
