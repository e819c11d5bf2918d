/*
 * watch.c - /v3/watch: the body's requests open one node watch stream, and
 * its responses go back as a chunked stream of {"result":{...}} lines.
 *
 * The node's callback runs on a node thread and must never block on the
 * socket: it renders each response as a ready HTTP chunk and queues it; the
 * connection thread sends what is queued.  A client that reads too slowly is
 * pushed back on once WATCH_MAX_QUEUED bytes wait (the callback refuses and
 * the watch hub retries, catches up from the store, and finally cancels),
 * and one that vanished is found by TCP keepalive or a failed send.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>

#include "../../common/clock.h"
#include "gateway_int.h"

/* One HTTP chunk ready to send: mem[off..off+len). */
struct witem {
	struct witem *next;
	uint8_t *mem;
	size_t off, len;
};

struct wqueue {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct witem *head, *tail; /* guarded by mu */
	size_t bytes;              /* guarded by mu; queued bytes */
};

#define CHUNK_PREFIX 12 /* room for "%zx\r\n" in front of the JSON */

/* Runs on a node thread: render the chunk here, queue it, never block on the
 * socket. */
static int watch_cb(void *ud, const ef_msg *m)
{
	struct wqueue *q = ud;
	struct witem *it;
	ef_wbuf b;
	char hx[16];
	int hl;

	ef_wbuf_init(&b);
	gw_room(&b, CHUNK_PREFIX);
	gw_encode_watch(m, &b);
	gw_put_lit(&b, "\n\r\n");
	it = malloc(sizeof(*it));
	if (b.err || !it) {
		/* Out of memory: refuse; the hub keeps the message and retries. */
		free(it);
		ef_wbuf_free(&b);
		return 1;
	}
	hl = snprintf(hx, sizeof(hx), "%zx\r\n", b.len - CHUNK_PREFIX - 2);
	it->next = NULL;
	it->mem = b.p;
	it->off = CHUNK_PREFIX - (size_t)hl;
	it->len = b.len - it->off;
	memcpy(b.p + it->off, hx, (size_t)hl);
	pthread_mutex_lock(&q->mu);
	if (q->bytes + it->len > WATCH_MAX_QUEUED && q->head) {
		/* The client reads slower than events come: push back.  The hub
		 * keeps the message, retries, catches the stream up from the
		 * store, and cancels it after many refusals (node.h). */
		pthread_cond_signal(&q->cv);
		pthread_mutex_unlock(&q->mu);
		free(it->mem);
		free(it);
		return 1;
	}
	if (q->tail)
		q->tail->next = it;
	else
		q->head = it;
	q->tail = it;
	q->bytes += it->len;
	pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mu);
	metrics_inc(gw.m_watch_events);
	return 0;
}

static void free_items(struct witem *it)
{
	while (it) {
		struct witem *next = it->next;

		free(it->mem);
		free(it);
		it = next;
	}
}

/* 1 when the client has gone (EOF, reset); extra bytes it sends are dropped. */
static int client_gone(int fd)
{
	struct pollfd p = {fd, POLLIN | POLLRDHUP, 0};
	char scratch[4096];

	if (poll(&p, 1, 0) <= 0)
		return 0;
	if (p.revents & (POLLERR | POLLHUP | POLLRDHUP | POLLNVAL))
		return 1;
	if (p.revents & POLLIN) {
		ssize_t k = recv(fd, scratch, sizeof(scratch), MSG_DONTWAIT);

		return k == 0 || (k < 0 && errno != EAGAIN && errno != EINTR);
	}
	return 0;
}

int gw_handle_watch(struct conn *c, const char *body, size_t len)
{
	static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
				   "Transfer-Encoding: chunked\r\n\r\n";
	ef_msg reqs[WATCH_MAX_REQUESTS];
	int nreq = 0, rc, ok = 1;
	char err[512];
	size_t off = 0, used;
	struct wqueue q;
	pthread_condattr_t ca;
	node_wstream *ws = NULL;
	struct iovec iov;

	ef_arena_reset(c->arena);
	while (off < len && !gw_only_space(body + off, len - off)) {
		if (nreq == WATCH_MAX_REQUESTS)
			return gw_send_error(c, 3, 0, "too many requests in one watch body", 1);
		rc = gw_decode_watch_request(body + off, len - off, &used, c->arena, &reqs[nreq],
					     err, sizeof(err));
		if (rc)
			return gw_send_error(c, ef_grpc_code(rc), 0, err[0] ? err : ef_strerror(rc),
					     1);
		off += used;
		nreq++;
	}
	if (!nreq)
		return gw_send_error(c, 3, 0, "unexpected EOF", 1);

	memset(&q, 0, sizeof(q));
	pthread_mutex_init(&q.mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&q.cv, &ca);
	pthread_condattr_destroy(&ca);

	rc = node_wstream_open(gw.n, watch_cb, &q, &ws);
	for (int i = 0; !rc && i < nreq; i++) {
		reqs[i].id = ++c->next_id;
		rc = node_wstream_request(ws, &reqs[i]);
		if (rc && i > 0)
			rc = 0; /* the stream is open; later failures are per watch */
	}
	if (rc) {
		if (ws)
			node_wstream_close(ws);
		free_items(q.head);
		pthread_cond_destroy(&q.cv);
		pthread_mutex_destroy(&q.mu);
		return gw_send_error(c, ef_grpc_code(rc), 0, ef_strerror(rc), 1);
	}

	{
		/* An idle stream would never notice a peer that vanished without
		 * a FIN: let TCP keepalive find it (about 2 minutes). */
		int one = 1, idle = 60, intvl = 10, cnt = 6;

		setsockopt(c->fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
		setsockopt(c->fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
		setsockopt(c->fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
		setsockopt(c->fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
	}
	iov.iov_base = (void *)head;
	iov.iov_len = sizeof(head) - 1;
	if (gw_send_all(c->fd, &iov, 1))
		ok = 0;
	metrics_set(gw.m_watch_streams, atomic_fetch_add(&gw.n_watch_streams, 1) + 1);
	while (ok && !atomic_load(&gw.stopping)) {
		struct witem *batch, *it;
		struct iovec v[64];
		int nv = 0;

		pthread_mutex_lock(&q.mu);
		if (!q.head) {
			struct timespec ts = clock_after_ms(CLOCK_MONOTONIC, 500);

			pthread_cond_timedwait(&q.cv, &q.mu, &ts);
		}
		batch = q.head;
		q.head = q.tail = NULL;
		q.bytes = 0;
		pthread_mutex_unlock(&q.mu);

		for (it = batch; it && ok; it = it->next) {
			v[nv].iov_base = it->mem + it->off;
			v[nv].iov_len = it->len;
			if (++nv == 64 || !it->next) {
				if (gw_send_all(c->fd, v, nv))
					ok = 0;
				nv = 0;
			}
		}
		free_items(batch);
		if (client_gone(c->fd))
			ok = 0;
	}
	node_wstream_close(ws);
	metrics_set(gw.m_watch_streams, atomic_fetch_sub(&gw.n_watch_streams, 1) - 1);
	free_items(q.head);
	pthread_cond_destroy(&q.cv);
	pthread_mutex_destroy(&q.mu);
	if (ok) {
		iov.iov_base = "0\r\n\r\n";
		iov.iov_len = 5;
		gw_send_all(c->fd, &iov, 1);
	}
	return 200;
}
