/*
 * loop.c - the gRPC server's threads: one event loop, a small worker pool.
 *
 * The loop thread waits in epoll on every adopted connection and on one
 * eventfd.  The eventfd says "something for you": a connection handed over
 * by the gateway's accept path (adopt list), or streams whose gout got new
 * bytes or a final status from a worker or from the watch hub (wake list).
 * Every nghttp2 call happens on this thread, so the sessions need no lock.
 *
 * node_call() blocks until Raft commits, so unary calls run on WORKERS
 * threads that take gcalls from a queue; a watch or keep-alive stream costs
 * a stream struct and a gout, never a thread.  The pool bounds how many
 * requests of all gRPC clients are inside node_call at once: more wait in
 * the queue, in order.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "grpc_int.h"
#include "../log.h"

#define DEFAULT_WORKERS 48
#define MAX_WORKERS 256

struct grpc_global grpcsrv;

struct adopt {
	struct adopt *next;
	int fd;
	size_t n;
	uint8_t pre[];
};

static struct {
	int running, stopping;
	int epfd, evfd;
	pthread_t loop;
	pthread_t workers[MAX_WORKERS];
	int nworkers;
	pthread_mutex_t mu; /* adopt list, wake list */
	struct adopt *adopts;
	struct gout *wakes;
	pthread_mutex_t qmu; /* call queue */
	pthread_cond_t qcv;
	struct gcall **q;
	size_t qhead, qlen, qcap;
	struct gconn *conns; /* loop thread only */
} L = {.mu = PTHREAD_MUTEX_INITIALIZER,
       .qmu = PTHREAD_MUTEX_INITIALIZER,
       .qcv = PTHREAD_COND_INITIALIZER};

static void kick(void)
{
	uint64_t one = 1;

	(void)!write(L.evfd, &one, sizeof(one));
}

void gloop_wake(struct gout *o)
{
	int k = 0;

	pthread_mutex_lock(&L.mu);
	pthread_mutex_lock(&o->mu);
	if (!o->woken && !o->gone) {
		o->woken = 1;
		o->refs++;
		o->wake_next = L.wakes;
		L.wakes = o;
		k = 1;
	}
	pthread_mutex_unlock(&o->mu);
	pthread_mutex_unlock(&L.mu);
	if (k)
		kick();
}

int gloop_submit(struct gcall *call)
{
	pthread_mutex_lock(&L.qmu);
	if (L.stopping) {
		pthread_mutex_unlock(&L.qmu);
		return -1;
	}
	if (L.qlen == L.qcap) {
		size_t cap = L.qcap ? 2 * L.qcap : 256;
		struct gcall **q = malloc(cap * sizeof(*q));

		if (!q) {
			pthread_mutex_unlock(&L.qmu);
			return -1;
		}
		for (size_t i = 0; i < L.qlen; i++)
			q[i] = L.q[(L.qhead + i) % L.qcap];
		free(L.q);
		L.q = q;
		L.qcap = cap;
		L.qhead = 0;
	}
	L.q[(L.qhead + L.qlen) % L.qcap] = call;
	L.qlen++;
	pthread_cond_signal(&L.qcv);
	pthread_mutex_unlock(&L.qmu);
	return 0;
}

static void call_free(struct gcall *call)
{
	gout_unref(call->out);
	ef_arena_free(call->arena);
	free(call->body);
	free(call);
}

static void *worker_main(void *arg)
{
	for (;;) {
		struct gcall *call;

		pthread_mutex_lock(&L.qmu);
		while (!L.qlen && !L.stopping)
			pthread_cond_wait(&L.qcv, &L.qmu);
		if (!L.qlen) {
			pthread_mutex_unlock(&L.qmu);
			return NULL;
		}
		call = L.q[L.qhead];
		L.qhead = (L.qhead + 1) % L.qcap;
		L.qlen--;
		pthread_mutex_unlock(&L.qmu);
		call->m->unary(call);
		call_free(call);
	}
}

void gloop_conn_dirty(struct gconn *c)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};

	gconn_flush(c);
	if (c->dead)
		return;
	ev.events = EPOLLIN | (c->want_out ? EPOLLOUT : 0);
	epoll_ctl(L.epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static void conn_close(struct gconn *c)
{
	epoll_ctl(L.epfd, EPOLL_CTL_DEL, c->fd, NULL);
	if (c->prev)
		c->prev->next = c->next;
	else
		L.conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	gconn_free(c);
}

static void take_adopts(void)
{
	struct adopt *a;

	pthread_mutex_lock(&L.mu);
	a = L.adopts;
	L.adopts = NULL;
	pthread_mutex_unlock(&L.mu);
	while (a) {
		struct adopt *next = a->next;
		struct gconn *c = gconn_new(a->fd, a->pre, a->n);

		if (c) {
			struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};

			c->next = L.conns;
			if (L.conns)
				L.conns->prev = c;
			L.conns = c;
			if (epoll_ctl(L.epfd, EPOLL_CTL_ADD, c->fd, &ev) || c->dead)
				conn_close(c);
			else
				gloop_conn_dirty(c);
		}
		free(a);
		a = next;
	}
}

static void take_wakes(void)
{
	struct gout *o;

	pthread_mutex_lock(&L.mu);
	o = L.wakes;
	L.wakes = NULL;
	pthread_mutex_unlock(&L.mu);
	while (o) {
		struct gout *next = o->wake_next;
		struct gstream *s;

		pthread_mutex_lock(&o->mu);
		o->woken = 0;
		s = o->gone ? NULL : o->s;
		pthread_mutex_unlock(&o->mu);
		if (s) {
			struct gconn *c = s->c;

			gstream_wake(s);
			gloop_conn_dirty(c);
		}
		gout_unref(o);
		o = next;
	}
}

static void *loop_main(void *arg)
{
	struct epoll_event evs[64];

	while (!L.stopping) {
		int k = epoll_wait(L.epfd, evs, 64, 1000);

		for (int i = 0; i < k; i++) {
			struct gconn *c = evs[i].data.ptr;

			if (!c) {
				uint64_t v;

				(void)!read(L.evfd, &v, sizeof(v));
				take_adopts();
				take_wakes();
				continue;
			}
			if (c->dead)
				continue;
			if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
				if (gconn_on_read(c))
					c->dead = 1;
			if (!c->dead && (evs[i].events & EPOLLOUT))
				if (gconn_on_write(c))
					c->dead = 1;
			if (!c->dead)
				gloop_conn_dirty(c);
		}
		/* Close after the batch: a wake later in it may name a stream of c. */
		for (struct gconn *c = L.conns, *next; c; c = next) {
			next = c->next;
			if (c->dead)
				conn_close(c);
		}
	}
	while (L.conns)
		conn_close(L.conns);
	return NULL;
}

int grpcsrv_adopt(int fd, const void *pre, size_t n)
{
	struct adopt *a;

	if (!L.running || L.stopping || !(a = malloc(sizeof(*a) + n))) {
		close(fd);
		return -1;
	}
	a->fd = fd;
	a->n = n;
	if (n)
		memcpy(a->pre, pre, n);
	pthread_mutex_lock(&L.mu);
	a->next = L.adopts;
	L.adopts = a;
	pthread_mutex_unlock(&L.mu);
	kick();
	return 0;
}

int grpcsrv_preface(const void *p, size_t n)
{
	static const char pri[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
	size_t k = n < sizeof(pri) - 1 ? n : sizeof(pri) - 1;

	if (memcmp(p, pri, k))
		return 0;
	return k == sizeof(pri) - 1 ? 1 : -1;
}

int grpcsrv_running(void)
{
	return L.running && !L.stopping;
}

int grpcsrv_start(node *n, const grpcsrv_opts *o, char *err, size_t errlen)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
	int w = o->workers > 0 ? o->workers : DEFAULT_WORKERS;

	if (L.running)
		return 0;
	grpcsrv.n = n;
	grpcsrv.max_msg =
		(o->max_request_bytes ? o->max_request_bytes : EF_DEFAULT_MAX_REQUEST_BYTES) +
		512 * 1024;
	snprintf(grpcsrv.adv_urls, sizeof(grpcsrv.adv_urls), "%s",
		 o->advertise_client_urls ? o->advertise_client_urls : "");
	L.epfd = epoll_create1(EPOLL_CLOEXEC);
	L.evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (L.epfd < 0 || L.evfd < 0 || epoll_ctl(L.epfd, EPOLL_CTL_ADD, L.evfd, &ev)) {
		snprintf(err, errlen, "grpc: epoll/eventfd: %s", strerror(errno));
		return EF_E_IO;
	}
	L.stopping = 0;
	if (w > MAX_WORKERS)
		w = MAX_WORKERS;
	for (L.nworkers = 0; L.nworkers < w; L.nworkers++)
		if (pthread_create(&L.workers[L.nworkers], NULL, worker_main, NULL))
			break;
	if (!L.nworkers || pthread_create(&L.loop, NULL, loop_main, NULL)) {
		snprintf(err, errlen, "grpc: cannot start threads");
		return EF_E_NOMEM;
	}
	L.running = 1;
	log_info("grpc: serving etcdserverpb with %d workers", L.nworkers);
	return 0;
}

void grpcsrv_stop(void)
{
	if (!L.running)
		return;
	pthread_mutex_lock(&L.qmu);
	L.stopping = 1;
	pthread_cond_broadcast(&L.qcv);
	pthread_mutex_unlock(&L.qmu);
	kick();
	pthread_join(L.loop, NULL);
	for (int i = 0; i < L.nworkers; i++)
		pthread_join(L.workers[i], NULL);
	L.running = 0;
}
