/*
 * start.c - listeners, accept threads and connection threads:
 * gateway_start() binds every URL and starts one accept thread each;
 * accept_main() caps the connections (one more gets a canned 503), sets up
 * a struct conn and starts its thread; conn_main() reads and serves requests
 * until the connection closes; gateway_stop() shuts everything down and
 * waits for the connection threads.  Defines `gw`, the gateway's state.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "../../common/clock.h"
#include "gateway_int.h"
#include "../grpc.h"

/* ------------------------------------------------------------------ */
/* Connections                                                          */

struct gw_state gw = {
	.mu = PTHREAD_MUTEX_INITIALIZER,
	.cv = PTHREAD_COND_INITIALIZER,
	.max_request_bytes = EF_DEFAULT_MAX_REQUEST_BYTES,
	.max_conns = 4096,
};

static void conn_free(struct conn *c)
{
	pthread_mutex_lock(&gw.mu);
	if (c->prev)
		c->prev->next = c->next;
	else if (gw.conns == c)
		gw.conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	gw.nconns--;
	metrics_set(gw.m_conns, gw.nconns);
	pthread_cond_broadcast(&gw.cv);
	pthread_mutex_unlock(&gw.mu);
	/* Closed only after leaving the list, so gateway_stop() never shuts
	 * down a descriptor number that has been reused. */
	close(c->fd);
	free(c->buf);
	ef_arena_free(c->arena);
	ef_wbuf_free(&c->out);
	free(c);
}

static void *conn_main(void *arg)
{
	struct conn *c = arg;
	struct http_req r;

	/* gRPC shares the port: a connection opening with the HTTP/2 preface
	 * goes to server/grpc/ with the bytes read so far. */
	while (grpcsrv_running()) {
		int h2 = grpcsrv_preface(c->buf, c->len);

		if (h2 == 0)
			break;
		if (h2 > 0) {
			grpcsrv_adopt(c->fd, c->buf, c->len);
			c->fd = -1;
			conn_free(c);
			return NULL;
		}
		if (gw_conn_fill(c, clock_mono_ms() + IDLE_TIMEOUT_MS) <= 0) {
			conn_free(c);
			return NULL;
		}
	}
	while (!atomic_load(&gw.stopping)) {
		if (gw_read_request(c, &r))
			break;
		if (gw_serve(c, &r))
			break;
		gw_consume(c, r.head_len + r.body_len);
	}
	conn_free(c);
	return NULL;
}

static void reject(int fd)
{
	static const char body[] =
		"{\"error\":\"too many connections to this member\","
		"\"message\":\"too many connections to this member\",\"code\":14}";
	char msg[512];
	int n;

	n = snprintf(msg, sizeof(msg),
		     "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
		     "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
		     sizeof(body) - 1, body);
	(void)!send(fd, msg, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
	close(fd);
}

static void *accept_main(void *arg)
{
	int lfd = gw.lfd[(intptr_t)arg];
	pthread_attr_t attr;

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, CONN_STACK_BYTES);
	while (!atomic_load(&gw.stopping)) {
		struct timeval tv = {WRITE_TIMEOUT_MS / 1000, 0};
		int one = 1, fd;
		struct conn *c;
		pthread_t t;

		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (atomic_load(&gw.stopping))
				break;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM)
				usleep(10000);
			continue;
		}
		pthread_mutex_lock(&gw.mu);
		if (atomic_load(&gw.stopping) || gw.nconns >= gw.max_conns) {
			pthread_mutex_unlock(&gw.mu);
			metrics_inc(gw.m_rejected);
			reject(fd);
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (c) {
			c->buf = malloc(CONN_BUF_INIT);
			c->arena = ef_arena_new();
		}
		if (!c || !c->buf || !c->arena) {
			pthread_mutex_unlock(&gw.mu);
			if (c) {
				free(c->buf);
				ef_arena_free(c->arena);
				free(c);
			}
			reject(fd);
			continue;
		}
		c->fd = fd;
		c->cap = CONN_BUF_INIT;
		ef_wbuf_init(&c->out);
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		c->next = gw.conns;
		if (gw.conns)
			gw.conns->prev = c;
		gw.conns = c;
		gw.nconns++;
		metrics_set(gw.m_conns, gw.nconns);
		pthread_mutex_unlock(&gw.mu);
		if (pthread_create(&t, &attr, conn_main, c)) {
			shutdown(fd, SHUT_RDWR);
			conn_free(c);
		}
	}
	pthread_attr_destroy(&attr);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Start and stop                                                       */

void gateway_set_limits(size_t max_request_bytes, int max_connections)
{
	if (max_request_bytes)
		gw.max_request_bytes = max_request_bytes;
	if (max_connections > 0)
		gw.max_conns = max_connections;
}

int gateway_port(int i)
{
	return i >= 0 && i < gw.nl ? gw.lport[i] : -1;
}

/* Bind and listen on one "http://HOST:PORT" URL. */
static int listen_url(const char *url, size_t n, int *fd_out, int *port_out, char *err,
		      size_t errlen)
{
	char hostport[256], *host, *port;
	struct addrinfo hints, *res = NULL, *ai;
	int fd = -1, one = 1, rc;

	if (n > 7 && strncmp(url, "http://", 7) == 0) {
		url += 7;
		n -= 7;
	} else {
		snprintf(err, errlen, "listen-http-urls: %.*s: only http://HOST:PORT is supported",
			 (int)n, url);
		return EF_E_INVALID;
	}
	while (n && url[n - 1] == '/')
		n--;
	if (n == 0 || n >= sizeof(hostport)) {
		snprintf(err, errlen, "listen-http-urls: bad address");
		return EF_E_INVALID;
	}
	memcpy(hostport, url, n);
	hostport[n] = 0;
	port = strrchr(hostport, ':');
	if (!port || (hostport[0] == '[' && port < strchr(hostport, ']'))) {
		snprintf(err, errlen, "listen-http-urls: %s: missing port", hostport);
		return EF_E_INVALID;
	}
	*port++ = 0;
	host = hostport;
	if (host[0] == '[') {
		host++;
		if (host[strlen(host) - 1] == ']')
			host[strlen(host) - 1] = 0;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	rc = getaddrinfo(*host ? host : NULL, port, &hints, &res);
	if (rc) {
		snprintf(err, errlen, "listen-http-urls: %s:%s: %s", host, port, gai_strerror(rc));
		return EF_E_INVALID;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 1024) == 0)
			break;
		close(fd);
		fd = -1;
	}
	if (fd < 0) {
		snprintf(err, errlen, "listen-http-urls: cannot listen on %s:%s: %s", host, port,
			 strerror(errno));
		freeaddrinfo(res);
		return EF_E_IO;
	}
	freeaddrinfo(res);
	{
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);

		*port_out = -1;
		if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
			if (ss.ss_family == AF_INET)
				*port_out = ntohs(((struct sockaddr_in *)&ss)->sin_port);
			else if (ss.ss_family == AF_INET6)
				*port_out = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
		}
	}
	*fd_out = fd;
	return 0;
}

int gateway_start(node *n, const char *urls, char *err, size_t errlen)
{
	const char *p = urls, *comma;
	int rc;

	if (gw.running) {
		snprintf(err, errlen, "gateway already running");
		return EF_E_INVALID;
	}
	gw.n = n;
	gw.nl = 0;
	atomic_store(&gw.stopping, 0);
	gw.max_body = 2 * gw.max_request_bytes + 64 * 1024;
	gw_register_metrics();
	while (p && *p) {
		size_t len;

		comma = strchr(p, ',');
		len = comma ? (size_t)(comma - p) : strlen(p);
		if (len) {
			if (gw.nl == MAX_LISTENERS) {
				snprintf(err, errlen, "listen-http-urls: at most %d URLs",
					 MAX_LISTENERS);
				rc = EF_E_INVALID;
				goto fail;
			}
			rc = listen_url(p, len, &gw.lfd[gw.nl], &gw.lport[gw.nl], err, errlen);
			if (rc)
				goto fail;
			gw.nl++;
		}
		p = comma ? comma + 1 : NULL;
	}
	if (!gw.nl) {
		snprintf(err, errlen, "listen-http-urls: no URL given");
		return EF_E_INVALID;
	}
	for (int i = 0; i < gw.nl; i++) {
		if (pthread_create(&gw.acc[i], NULL, accept_main, (void *)(intptr_t)i)) {
			snprintf(err, errlen, "cannot start the HTTP accept thread");
			atomic_store(&gw.stopping, 1);
			for (int j = 0; j < gw.nl; j++)
				shutdown(gw.lfd[j], SHUT_RDWR);
			for (int j = 0; j < i; j++)
				pthread_join(gw.acc[j], NULL);
			rc = EF_E_NOMEM;
			goto fail;
		}
	}
	gw.running = 1;
	return 0;
fail:
	for (int i = 0; i < gw.nl; i++)
		close(gw.lfd[i]);
	gw.nl = 0;
	return rc;
}

void gateway_stop(void)
{
	int64_t deadline;

	if (!gw.running)
		return;
	atomic_store(&gw.stopping, 1);
	for (int i = 0; i < gw.nl; i++)
		shutdown(gw.lfd[i], SHUT_RDWR);
	for (int i = 0; i < gw.nl; i++) {
		pthread_join(gw.acc[i], NULL);
		close(gw.lfd[i]);
	}
	/* Wake every connection thread; each frees itself.  A thread inside
	 * node_call() returns when the node answers or times out. */
	deadline = clock_mono_ms() + 60000;
	pthread_mutex_lock(&gw.mu);
	for (struct conn *c = gw.conns; c; c = c->next)
		shutdown(c->fd, SHUT_RDWR);
	while (gw.nconns > 0 && clock_mono_ms() < deadline) {
		struct timespec ts = clock_after_ms(CLOCK_REALTIME, 100);

		pthread_cond_timedwait(&gw.cv, &gw.mu, &ts);
	}
	pthread_mutex_unlock(&gw.mu);
	gw.nl = 0;
	gw.running = 0;
}
