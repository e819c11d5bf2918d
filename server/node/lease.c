/*
 * lease.c - leader leases: the leader's in-memory deadline for every lease.
 *
 * Lease state (id, TTL, attached keys) lives in the store and travels
 * through Raft; deadlines do not.  The leader keeps them in memory: a new
 * leader restarts every deadline at its full TTL plus an election timeout
 * (etcd's lessor Promote), so leader changes never expire leases early;
 * keep-alives and time-to-live are answered here on the leader (followers
 * forward them, forward.c); once a second the table is reconciled with the
 * store, and on every tick an expired lease gets a LEASE_REVOKE proposal
 * (again after three election timeouts if it did not take).  lease_mu guards
 * the table: keep-alives run on client threads.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/clock.h"
#include "../log.h"
#include "node_int.h"

/* ------------------------------------------------------------------ */
/* Leases (leader side).                                                */

struct lease_ent *node_lease_find(node *n, int64_t id) /* lease_mu held */
{
	for (size_t i = 0; i < n->n_leases; i++)
		if (n->leases[i].id == id)
			return &n->leases[i];
	return NULL;
}

void node_lease_set(node *n, int64_t id, int64_t ttl, int64_t now)
{
	pthread_mutex_lock(&n->lease_mu);
	struct lease_ent *l = node_lease_find(n, id);
	if (!l) {
		if (n->n_leases == n->cap_leases) {
			size_t cap = n->cap_leases ? n->cap_leases * 2 : 64;
			struct lease_ent *nl = realloc(n->leases, cap * sizeof *nl);
			if (!nl) {
				pthread_mutex_unlock(&n->lease_mu);
				return;
			}
			n->leases = nl;
			n->cap_leases = cap;
		}
		l = &n->leases[n->n_leases++];
	}
	l->id = id;
	l->ttl = ttl;
	l->deadline_ms = now + ttl * 1000;
	l->revoke_sent_ms = 0;
	pthread_mutex_unlock(&n->lease_mu);
}

void node_lease_del(node *n, int64_t id)
{
	pthread_mutex_lock(&n->lease_mu);
	for (size_t i = 0; i < n->n_leases; i++)
		if (n->leases[i].id == id) {
			n->leases[i] = n->leases[--n->n_leases];
			break;
		}
	pthread_mutex_unlock(&n->lease_mu);
}

/* A new leader: every lease gets its full TTL again (etcd's "promote"). */
void node_leases_promote(node *n)
{
	store_lease *ls = NULL;
	uint32_t cnt = 0;
	pthread_mutex_lock(&n->lease_mu);
	n->n_leases = 0;
	pthread_mutex_unlock(&n->lease_mu);
	if (n->io->store_lease_list(n->st, &ls, &cnt) != 0)
		return;
	int64_t now = clock_mono_ms();
	/* extend by an election timeout, like etcd's lessor Promote(extend) */
	for (uint32_t i = 0; i < cnt; i++)
		node_lease_set(n, ls[i].id, ls[i].ttl, now + n->cfg.election_ms);
	free(ls);
}


/* The leader's table against the store, once a second: a lease the table
 * lacks (granted while this member caught up, say) gets its full TTL from
 * now; an entry whose lease is gone from the store is dropped.  The table is
 * then right whatever path a lease took to get here. */
static void leases_reconcile(node *n, int64_t now)
{
	store_lease *ls = NULL;
	uint32_t cnt = 0;
	if (n->io->store_lease_list(n->st, &ls, &cnt) != 0)
		return;
	pthread_mutex_lock(&n->lease_mu);
	for (size_t i = 0; i < n->n_leases;) {
		uint32_t j;
		for (j = 0; j < cnt && ls[j].id != n->leases[i].id; j++)
			;
		if (j == cnt)
			n->leases[i] = n->leases[--n->n_leases];
		else
			i++;
	}
	pthread_mutex_unlock(&n->lease_mu);
	for (uint32_t j = 0; j < cnt; j++) {
		pthread_mutex_lock(&n->lease_mu);
		int have = node_lease_find(n, ls[j].id) != NULL;
		pthread_mutex_unlock(&n->lease_mu);
		if (!have) {
			log_debug("lease %016" PRIx64 " was not tracked: tracking it",
				  (uint64_t)ls[j].id);
			node_lease_set(n, ls[j].id, ls[j].ttl, now);
		}
	}
	free(ls);
}

void node_leases_expire(node *n)
{
	int64_t now = clock_mono_ms();
	if (now - n->lease_reconciled_ms >= 1000) {
		n->lease_reconciled_ms = now;
		leases_reconcile(n, now);
	}
	int64_t ids[64];
	int k = 0;
	pthread_mutex_lock(&n->lease_mu);
	for (size_t i = 0; i < n->n_leases && k < 64; i++) {
		struct lease_ent *l = &n->leases[i];
		if (l->deadline_ms <= now &&
		    (!l->revoke_sent_ms || now - l->revoke_sent_ms > 3 * n->cfg.election_ms)) {
			l->revoke_sent_ms = now;
			ids[k++] = l->id;
		}
	}
	pthread_mutex_unlock(&n->lease_mu);
	for (int i = 0; i < k; i++) {
		ef_msg req = {.type = EF_MSG_LEASE_REVOKE};
		req.u.lease.id = ids[i];
		log_debug("lease %016" PRIx64 " expired: revoking", (uint64_t)ids[i]);
		node_propose_internal(n, &req);
	}
}

int node_lease_keepalive(node *n, const ef_msg *req, ef_msg *resp, ef_arena *a)
{
	pthread_mutex_lock(&n->lease_mu);
	struct lease_ent *l = node_lease_find(n, req->u.lease.id);
	int64_t ttl = 0;
	if (l && l->deadline_ms > clock_mono_ms()) {
		l->deadline_ms = clock_mono_ms() + l->ttl * 1000;
		ttl = l->ttl;
	}
	pthread_mutex_unlock(&n->lease_mu);
	memset(resp, 0, sizeof *resp);
	resp->type = EF_MSG_LEASE_KEEPALIVE_RESP;
	resp->u.lease_resp.id = req->u.lease.id;
	resp->u.lease_resp.ttl = ttl;
	if (!ttl)
		return node_set_error(resp, a, EF_E_LEASE_NOT_FOUND, NULL);
	node_fill_hdr(n, &resp->hdr);
	return 0;
}

int node_lease_ttl(node *n, const ef_msg *req, ef_msg *resp, ef_arena *a)
{
	store_lease sl;
	ef_buf *keys = NULL;
	uint32_t nk = 0;
	int rv = store_lease_get(n->st, req->u.lease.id, &sl, req->u.lease.keys ? &keys : NULL, &nk,
				 a);
	memset(resp, 0, sizeof *resp);
	resp->type = EF_MSG_LEASE_TTL_RESP;
	resp->u.lease_resp.id = req->u.lease.id;
	if (rv == EF_E_LEASE_NOT_FOUND) {
		resp->u.lease_resp.ttl = -1; /* as etcd: "already expired" */
		node_fill_hdr(n, &resp->hdr);
		return 0;
	}
	if (rv)
		return node_set_error(resp, a, rv, NULL);
	pthread_mutex_lock(&n->lease_mu);
	struct lease_ent *l = node_lease_find(n, req->u.lease.id);
	int64_t left = l ? (l->deadline_ms - clock_mono_ms() + 999) / 1000 : sl.ttl;
	pthread_mutex_unlock(&n->lease_mu);
	resp->u.lease_resp.ttl = left > 0 ? left : 0;
	resp->u.lease_resp.granted_ttl = sl.ttl;
	resp->u.lease_resp.keys = keys;
	resp->u.lease_resp.n_keys = nk;
	node_fill_hdr(n, &resp->hdr);
	return 0;
}
