/*
 * peer.c - member-to-member transport over nng push/pull (see peer.h).
 *
 * One push socket per peer, each with one dialer: nng keeps reconnecting
 * with backoff by itself, and a full send buffer gives NNG_EAGAIN at once
 * with NNG_FLAG_NONBLOCK, which is exactly the "drop, Raft will resend"
 * behaviour the Raft loop needs.  One pull socket listens on every
 * --listen-peer-urls and one thread receives from it.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/pipeline0/pull.h>
#include <nng/protocol/pipeline0/push.h>

#include "../proto/wire.h"
#include "log.h"
#include "peer.h"

#define PEER_MAGIC 0x45544350u /* "ETCP" */
#define PEER_VERSION 1
#define PEER_HDR 22
#define PEER_MAX 16

struct peer {
	uint64_t id;
	nng_socket sock;
};

struct peer_tr {
	uint64_t cluster_id, self_id;
	nng_socket pull;
	pthread_t rx;
	peer_recv_fn fn;
	void *ud;
	pthread_mutex_t mu; /* peers[]: added and removed at runtime (membership) */
	struct peer peers[PEER_MAX];
	int n_peers;
	int stopping;
	uint64_t dropped, foreign;
};

static void *rx_main(void *arg)
{
	peer_tr *t = arg;
	for (;;) {
		nng_msg *m;
		int rv = nng_recvmsg(t->pull, &m, 0);
		if (rv == NNG_ECLOSED)
			break;
		if (rv != 0)
			continue;
		const uint8_t *p = nng_msg_body(m);
		size_t n = nng_msg_len(m);
		if (n < PEER_HDR || ef_get_be32(p) != PEER_MAGIC || p[4] != PEER_VERSION) {
			nng_msg_free(m);
			continue;
		}
		uint64_t cid = ef_get_be64(p + 6), from = ef_get_be64(p + 14);
		uint64_t zero = 0;
		/* A joining member learns the cluster id from its first peer. */
		if (cid && __atomic_compare_exchange_n(&t->cluster_id, &zero, cid, 0,
						       __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
			log_info("joined cluster %016llx", (unsigned long long)cid);
		if (cid != __atomic_load_n(&t->cluster_id, __ATOMIC_ACQUIRE)) {
			if (t->foreign++ % 100 == 0)
				log_warn(
					"dropped a peer message from member %016llx of another cluster "
					"(cluster id %016llx, ours %016llx)",
					(unsigned long long)from, (unsigned long long)cid,
					(unsigned long long)t->cluster_id);
			nng_msg_free(m);
			continue;
		}
		t->fn(t->ud, p[5], from, p + PEER_HDR, n - PEER_HDR);
		nng_msg_free(m);
	}
	return NULL;
}

int peer_start(const char *listen_urls, uint64_t cluster_id, uint64_t self_id, size_t max_msg,
	       peer_recv_fn fn, void *ud, peer_tr **out, char *err, size_t errlen)
{
	peer_tr *t = calloc(1, sizeof *t);
	if (!t)
		return 1;
	t->cluster_id = cluster_id;
	t->self_id = self_id;
	pthread_mutex_init(&t->mu, NULL);
	t->fn = fn;
	t->ud = ud;
	int rv = nng_pull0_open(&t->pull);
	if (rv != 0) {
		snprintf(err, errlen, "peer socket: %s", nng_strerror(rv));
		free(t);
		return 1;
	}
	nng_socket_set_size(t->pull, NNG_OPT_RECVMAXSZ, max_msg + PEER_HDR);
	nng_socket_set_int(t->pull, NNG_OPT_RECVBUF, 1024);
	char *urls = strdup(listen_urls), *save = NULL;
	for (char *u = strtok_r(urls, ",", &save); u; u = strtok_r(NULL, ",", &save)) {
		if ((rv = nng_listen(t->pull, u, NULL, 0)) != 0) {
			snprintf(err, errlen, "cannot listen on peer url %s: %s", u,
				 nng_strerror(rv));
			free(urls);
			nng_close(t->pull);
			free(t);
			return 1;
		}
	}
	free(urls);
	pthread_create(&t->rx, NULL, rx_main, t);
	*out = t;
	return 0;
}

int peer_add(peer_tr *t, uint64_t id, const char *url)
{
	pthread_mutex_lock(&t->mu);
	int rv = t->n_peers >= PEER_MAX;
	for (int i = 0; i < t->n_peers; i++)
		rv |= t->peers[i].id == id;
	if (rv) {
		pthread_mutex_unlock(&t->mu);
		return 1;
	}
	struct peer *p = &t->peers[t->n_peers];
	if (nng_push0_open(&p->sock) != 0) {
		pthread_mutex_unlock(&t->mu);
		return 1;
	}
	nng_socket_set_int(p->sock, NNG_OPT_SENDBUF, 4096);
	nng_socket_set_ms(p->sock, NNG_OPT_RECONNMINT, 50);
	nng_socket_set_ms(p->sock, NNG_OPT_RECONNMAXT, 1000);
	nng_socket_set_ms(p->sock, NNG_OPT_SENDTIMEO, 0);
	rv = nng_dial(p->sock, url, NULL, NNG_FLAG_NONBLOCK);
	if (rv != 0) {
		log_error("peer %016llx: bad url %s: %s", (unsigned long long)id, url,
			  nng_strerror(rv));
		nng_close(p->sock);
		pthread_mutex_unlock(&t->mu);
		return 1;
	}
	p->id = id;
	t->n_peers++;
	pthread_mutex_unlock(&t->mu);
	return 0;
}

void peer_remove(peer_tr *t, uint64_t id)
{
	pthread_mutex_lock(&t->mu);
	for (int i = 0; i < t->n_peers; i++)
		if (t->peers[i].id == id) {
			nng_close(t->peers[i].sock);
			t->peers[i] = t->peers[--t->n_peers];
			break;
		}
	pthread_mutex_unlock(&t->mu);
}

uint64_t peer_cluster_id(peer_tr *t)
{
	return __atomic_load_n(&t->cluster_id, __ATOMIC_ACQUIRE);
}

static int send_common(peer_tr *t, uint64_t to, uint8_t kind, const void *data, size_t n, int flags,
		       int timeout_ms)
{
	struct peer pc, *p = NULL;
	pthread_mutex_lock(&t->mu);
	for (int i = 0; i < t->n_peers; i++)
		if (t->peers[i].id == to)
			p = &t->peers[i];
	if (p) {
		pc = *p; /* the socket by value: a removal meanwhile makes sends fail */
		p = &pc;
	}
	pthread_mutex_unlock(&t->mu);
	if (!p)
		return EF_E_MEMBER_NOT_FOUND;
	nng_msg *m;
	if (nng_msg_alloc(&m, PEER_HDR + n) != 0)
		return EF_E_NOMEM;
	uint8_t *b = nng_msg_body(m);
	ef_be32(b, PEER_MAGIC);
	b[4] = PEER_VERSION;
	b[5] = kind;
	ef_be64(b + 6, __atomic_load_n(&t->cluster_id, __ATOMIC_ACQUIRE));
	ef_be64(b + 14, t->self_id);
	if (n)
		memcpy(b + PEER_HDR, data, n);
	if (!flags) {
		nng_aio *aio;
		if (nng_aio_alloc(&aio, NULL, NULL) != 0) {
			nng_msg_free(m);
			return EF_E_NOMEM;
		}
		nng_aio_set_msg(aio, m);
		nng_aio_set_timeout(aio, timeout_ms);
		nng_send_aio(p->sock, aio);
		nng_aio_wait(aio);
		int rv = nng_aio_result(aio);
		if (rv != 0)
			nng_msg_free(m);
		nng_aio_free(aio);
		return rv ? EF_E_UNAVAILABLE : 0;
	}
	if (nng_sendmsg(p->sock, m, flags) != 0) {
		nng_msg_free(m);
		__atomic_add_fetch(&t->dropped, 1, __ATOMIC_RELAXED);
		return EF_E_UNAVAILABLE;
	}
	return 0;
}

int peer_send(peer_tr *t, uint64_t to, uint8_t kind, const void *p, size_t n)
{
	return send_common(t, to, kind, p, n, NNG_FLAG_NONBLOCK, 0);
}

int peer_send_wait(peer_tr *t, uint64_t to, uint8_t kind, const void *p, size_t n, int timeout_ms)
{
	return send_common(t, to, kind, p, n, 0, timeout_ms);
}

uint64_t peer_dropped(peer_tr *t)
{
	return __atomic_load_n(&t->dropped, __ATOMIC_RELAXED);
}

void peer_stop(peer_tr *t)
{
	if (!t)
		return;
	nng_close(t->pull);
	pthread_join(t->rx, NULL);
	for (int i = 0; i < t->n_peers; i++)
		nng_close(t->peers[i].sock);
	free(t);
}
