/*
 * forward.c - requests only the leader can answer, asked of the leader.
 *
 * Lease keep-alive, time-to-live and leader transfer need the leader's
 * in-memory state (lease deadlines) or its Raft role.  A follower asks the
 * leader over the client protocol, at the client URLs every member publishes
 * through Raft at start-up; one client per member, made on first use.  The
 * forwarded requests are idempotent, so a leader that died mid-call costs
 * one try (bounded by two election timeouts) and the next leader is asked,
 * or this member answers itself if it became the leader.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../common/clock.h"
#include "node_int.h"

/* Ask the leader (over the client protocol) to execute req: for the
 * requests only the leader can answer (lease keep-alive and time-to-live,
 * leader transfer), all idempotent.  Each try is bounded by two election
 * timeouts, so a leader that died mid-call costs one try, after which the
 * new leader (or this member, if it became the leader) is asked. */
int node_forward(node *n, const ef_msg *req, ef_msg *resp, ef_arena *a, int64_t deadline,
		 int (*local)(node *, const ef_msg *, ef_msg *, ef_arena *))
{
	int rv = EF_E_NO_LEADER;
	for (;;) {
		pthread_mutex_lock(&n->mu);
		uint64_t leader = n->leader;
		int here = n->role == RAFT_LEADER;
		int idx = -1;
		char urls[512] = "";
		for (int i = 0; i < n->n_members; i++)
			if (n->members[i].id == leader) {
				idx = i;
				snprintf(urls, sizeof urls, "%s", n->members[i].client_urls);
			}
		pthread_mutex_unlock(&n->mu);
		if (here)
			return local(n, req, resp, a);
		if (idx >= 0 && urls[0]) {
			pthread_mutex_lock(&n->fwd_mu);
			if (!n->fwd[idx]) {
				efc_opts o = {.endpoints = urls,
					      .dial_timeout_ms = n->cfg.election_ms,
					      .command_timeout_ms = 2 * n->cfg.election_ms};
				if (efc_open(&o, &n->fwd[idx], NULL, 0) != 0)
					n->fwd[idx] = NULL;
			}
			efc_client *c = n->fwd[idx];
			pthread_mutex_unlock(&n->fwd_mu);
			if (c) {
				rv = efc_call(c, req, resp, a);
				if (rv == 0)
					return 0;
				if (resp->type == EF_MSG_ERROR && rv != EF_E_NO_LEADER &&
				    rv != EF_E_STOPPING && rv != EF_E_TIMEOUT &&
				    rv != EF_E_NOT_LEADER)
					return rv; /* the leader's definitive answer */
			}
		}
		if (clock_mono_ms() + 50 >= deadline)
			break;
		struct timespec ts = {0, 50 * 1000000L};
		nanosleep(&ts, NULL);
	}
	if (rv == EF_E_OUTCOME_UNKNOWN || rv == EF_E_UNAVAILABLE)
		rv = EF_E_TIMEOUT;
	return node_set_error(resp, a, rv ? rv : EF_E_NO_LEADER, NULL);
}

int node_move_leader(node *n, const ef_msg *req, ef_msg *resp, ef_arena *a)
{
	int64_t deadline = clock_mono_ms() + n->cfg.request_timeout_ms;
	uint64_t target = req->u.move_leader.target_id;
	if (!node_member_by_id(n, target))
		return node_set_error(resp, a, EF_E_BAD_LEADER_TRANSFEREE, NULL);
	struct ev *e = calloc(1, sizeof *e);
	if (!e)
		return node_set_error(resp, a, EF_E_NOMEM, NULL);
	e->kind = EV_TRANSFER;
	e->peer = target;
	node_post(n, e);
	while (clock_mono_ms() < deadline) {
		pthread_mutex_lock(&n->mu);
		uint64_t l = n->leader;
		pthread_mutex_unlock(&n->mu);
		if (l == target) {
			memset(resp, 0, sizeof *resp);
			resp->type = EF_MSG_MOVE_LEADER_RESP;
			node_fill_hdr(n, &resp->hdr);
			return 0;
		}
		struct timespec ts = {0, 10 * 1000000};
		nanosleep(&ts, NULL);
	}
	return node_set_error(resp, a, EF_E_TIMEOUT, "etcdserver: leadership transfer timed out");
}
