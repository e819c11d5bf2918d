/*
 * request.c - the request path every front end shares: node_call().
 *
 * A front end (native nng listener, HTTP/JSON gateway, gRPC) decodes a
 * request into an ef_msg and calls node_call() on its own thread.  Here the
 * request is validated once for all of them (empty key, size limits, txn op
 * count), checked against the quota, and then:
 *   - a write is encoded into an entry payload (origin member, waiter id,
 *     proposal wall-clock time, request), a waiter is registered and the
 *     payload posted to the loop's inbox; the caller sleeps until the loop
 *     applied the entry and wrote the response into the caller's arena;
 *   - a linearizable read joins the next ReadIndex round (reads that arrive
 *     while a round is in flight share the next one, as etcd's read loop
 *     does) and, once released, reads the store itself, in parallel with
 *     the other readers; a serializable read goes straight to the store;
 *   - what only the leader can answer goes through forward.c.
 * Followers propose too: Raft forwards their entries to the leader, and the
 * member that received the request answers its client when it applies the
 * entry (matched by origin).  node_call() counts the callers inside so that
 * node_stop() can wait for them before it closes the store under them.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "../../common/clock.h"
#include "../log.h"
#include "node_int.h"

void node_fill_hdr(node *n, ef_resp_header *h)
{
	h->cluster_id = n->cluster_id;
	h->member_id = n->id;
	pthread_mutex_lock(&n->mu);
	h->raft_term = n->term;
	pthread_mutex_unlock(&n->mu);
	if (!h->revision)
		h->revision = store_revision(n->st);
}

int node_set_error(ef_msg *resp, ef_arena *a, int code, const char *detail)
{
	memset(resp, 0, sizeof *resp);
	resp->type = EF_MSG_ERROR;
	resp->u.error.code = (uint32_t)code;
	const char *msg = detail ? detail : ef_strerror(code);
	resp->u.error.message.p = ef_arena_dup(a, msg, strlen(msg));
	resp->u.error.message.n = resp->u.error.message.p ? (uint32_t)strlen(msg) : 0;
	return code;
}

/* ------------------------------------------------------------------ */
/* Entry payloads.                                                      */

uint8_t *node_payload_make(node *n, int kind, uint64_t waiter, const ef_msg *req, uint32_t *len)
{
	ef_wbuf b;
	ef_wbuf_init(&b);
	ef_wbuf_u8(&b, (uint8_t)kind);
	ef_wbuf_u64(&b, n->id);
	ef_wbuf_u64(&b, waiter);
	ef_wbuf_u64(&b, (uint64_t)clock_wall_ns());
	if (kind == PAYLOAD_REQUEST || kind == PAYLOAD_MEMBER) {
		ef_wbuf_u8(&b, req->type);
		if (ef_encode_body(req, &b) != 0)
			b.err = EF_E_NOMEM;
	} else {
		struct member *m = node_member_by_id(n, n->id);
		ef_wbuf_bytes(&b, n->cfg.advertise_client_urls,
			      (uint32_t)strlen(n->cfg.advertise_client_urls));
		/* then the name (older members stop reading before it) */
		ef_wbuf_bytes(&b, n->cfg.name, (uint32_t)strlen(n->cfg.name));
		(void)m;
	}
	if (b.err) {
		ef_wbuf_free(&b);
		return NULL;
	}
	*len = (uint32_t)b.len;
	return b.p;
}

void node_propose_internal(node *n, const ef_msg *req)
{
	uint32_t len;
	uint8_t *p = node_payload_make(n, PAYLOAD_REQUEST, 0, req, &len);
	if (!p)
		return;
	struct ev *e = calloc(1, sizeof *e);
	if (!e) {
		free(p);
		return;
	}
	e->kind = EV_PROPOSE;
	e->data = p;
	e->len = len;
	/* called on the loop thread: queue directly */
	node_hold(n, e);
}

/* ------------------------------------------------------------------ */
/* Requests.                                                            */

static int validate_kv_key(ef_buf k)
{
	if (k.n == 0)
		return EF_E_EMPTY_KEY;
	if (k.n > EF_MAX_KEY_BYTES)
		return EF_E_KEY_TOO_LONG;
	return 0;
}

static int validate_ops(node *n, const ef_op *ops, uint32_t cnt)
{
	if (cnt > n->cfg.max_txn_ops)
		return EF_E_TOO_MANY_OPS;
	for (uint32_t i = 0; i < cnt; i++) {
		const ef_op *o = &ops[i];
		ef_buf k = o->type == EF_OP_RANGE ? o->u.range.key
			   : o->type == EF_OP_PUT ? o->u.put.key
						  : o->u.del.key;
		int rv = validate_kv_key(k);
		if (rv)
			return rv;
	}
	return 0;
}

static int validate(node *n, const ef_msg *req)
{
	int rv = 0;
	switch (req->type) {
	case EF_MSG_RANGE:
		rv = validate_kv_key(req->u.range.key);
		break;
	case EF_MSG_PUT:
		rv = validate_kv_key(req->u.put.key);
		break;
	case EF_MSG_DELETE:
		rv = validate_kv_key(req->u.del.key);
		break;
	case EF_MSG_TXN:
		if (req->u.txn.n_cmp > n->cfg.max_txn_ops)
			return EF_E_TOO_MANY_OPS;
		for (uint32_t i = 0; i < req->u.txn.n_cmp && !rv; i++)
			rv = validate_kv_key(req->u.txn.cmp[i].key);
		if (!rv)
			rv = validate_ops(n, req->u.txn.success, req->u.txn.n_success);
		if (!rv)
			rv = validate_ops(n, req->u.txn.failure, req->u.txn.n_failure);
		break;
	default:
		break;
	}
	if (!rv && ef_request_size(req) > n->cfg.max_request_bytes)
		rv = EF_E_REQUEST_TOO_LARGE;
	return rv;
}

/* Does req need space (etcd's quota cost > 0)?  Puts, txns with a put and
 * lease grants do; deletes and compactions don't, so an operator past the
 * quota can still free space. */
static int costs_space(const ef_msg *req)
{
	const ef_txn_req *t = &req->u.txn;

	if (req->type == EF_MSG_PUT || req->type == EF_MSG_LEASE_GRANT)
		return 1;
	if (req->type != EF_MSG_TXN)
		return 0;
	for (uint32_t i = 0; i < t->n_success; i++)
		if (t->success[i].type == EF_OP_PUT)
			return 1;
	for (uint32_t i = 0; i < t->n_failure; i++)
		if (t->failure[i].type == EF_OP_PUT)
			return 1;
	return 0;
}

static int wait_read_index(node *n, int64_t deadline)
{
	struct waiter w = {0};
	node_cond_init_mono(&w.cv);
	pthread_mutex_lock(&n->mu);
	node_waiter_add(n, &w);
	if (n->next.n == n->next.cap) {
		size_t cap = n->next.cap ? n->next.cap * 2 : 64;
		uint64_t *nw = realloc(n->next.waiters, cap * sizeof *nw);
		if (!nw) {
			node_waiter_del(n, &w);
			pthread_mutex_unlock(&n->mu);
			return EF_E_NOMEM;
		}
		n->next.waiters = nw;
		n->next.cap = cap;
	}
	n->next.waiters[n->next.n++] = w.id;
	pthread_cond_signal(&n->cv);
	int rv = node_waiter_wait(n, &w, deadline);
	int no_leader = n->leader == RAFT_NONE;
	pthread_mutex_unlock(&n->mu);
	pthread_cond_destroy(&w.cv);
	if (rv == EF_E_TIMEOUT && no_leader)
		return EF_E_NO_LEADER;
	return rv ? rv : w.err;
}

#define QUOTA_RECHECK_MS 50

/* Is the store past --quota-backend-bytes?  Like etcd's, the check is a
 * little approximate: a burst of writes within QUOTA_RECHECK_MS of the
 * last measurement may go past the quota before it is noticed. */
static int over_quota(node *n)
{
	if (!n->cfg.quota_bytes)
		return 0;
	int64_t now = clock_mono_ms();
	if (now - atomic_load(&n->quota_ms) >= QUOTA_RECHECK_MS) {
		atomic_store(&n->quota_inuse, store_db_size_in_use(n->st));
		atomic_store(&n->quota_ms, now);
	}
	return (uint64_t)atomic_load(&n->quota_inuse) > n->cfg.quota_bytes;
}

static int do_propose(node *n, const ef_msg *req, ef_msg *resp, ef_arena *a, int64_t deadline)
{
	struct waiter w = {0};
	node_cond_init_mono(&w.cv);
	w.resp = resp;
	w.a = a;
	pthread_mutex_lock(&n->mu);
	node_waiter_add(n, &w);
	pthread_mutex_unlock(&n->mu);
	uint32_t len;
	uint8_t *p = node_payload_make(n, PAYLOAD_REQUEST, w.id, req, &len);
	struct ev *e = calloc(1, sizeof *e);
	if (!p || !e) {
		free(p);
		free(e);
		pthread_mutex_lock(&n->mu);
		node_waiter_del(n, &w);
		pthread_mutex_unlock(&n->mu);
		return node_set_error(resp, a, EF_E_NOMEM, NULL);
	}
	e->kind = EV_PROPOSE;
	e->data = p;
	e->len = len;
	e->waiter = w.id;
	w.t0_ns = clock_mono_ns();
	node_post(n, e);
	pthread_mutex_lock(&n->mu);
	int rv = node_waiter_wait(n, &w, deadline);
	int proposed = w.proposed;
	pthread_mutex_unlock(&n->mu);
	pthread_cond_destroy(&w.cv);
	if (rv == EF_E_TIMEOUT)
		/* never proposed (no leader all along): certainly not applied,
		 * and the loop drops it; else the outcome is unknown */
		return node_set_error(resp, a, proposed ? EF_E_TIMEOUT : EF_E_NO_LEADER, NULL);
	if (resp->type == EF_MSG_ERROR)
		return (int)resp->u.error.code;
	node_fill_hdr(n, &resp->hdr);
	return 0;
}

static int local_status(node *n, ef_msg *resp, ef_arena *a)
{
	node_status st;
	node_get_status(n, &st);
	memset(resp, 0, sizeof *resp);
	resp->type = EF_MSG_STATUS_RESP;
	ef_status_resp *s = &resp->u.status_resp;
	s->version = ef_str(ETCFS_VERSION);
	s->db_size = st.db_size;
	s->db_size_in_use = st.db_size_in_use;
	s->keys = st.keys;
	s->quota_bytes = (int64_t)n->cfg.quota_bytes;
	s->leader = st.leader;
	s->raft_index = st.commit_index;
	s->raft_term = st.term;
	s->raft_applied_index = st.applied_index;
	if (!st.has_leader)
		s->errors = ef_str(ef_strerror(EF_E_NO_LEADER));
	node_fill_hdr(n, &resp->hdr);
	(void)a;
	return 0;
}

static int node_call_inner(node *n, const ef_msg *req, ef_msg *resp, ef_arena *a)
{
	int64_t deadline = clock_mono_ms() + n->cfg.request_timeout_ms;
	int rv = validate(n, req);
	if (rv)
		return node_set_error(resp, a, rv, NULL);
	switch (req->type) {
	case EF_MSG_RANGE: {
		if (!req->u.range.serializable) {
			rv = wait_read_index(n, deadline);
			if (rv)
				return node_set_error(resp, a, rv, NULL);
		}
		memset(resp, 0, sizeof *resp);
		resp->type = EF_MSG_RANGE_RESP;
		int64_t hrev = 0;
		rv = store_range(n->st, &req->u.range, &resp->u.range_resp, &hrev, a);
		if (rv) {
			char msg[200];
			if (rv == EF_E_COMPACTED)
				snprintf(msg, sizeof msg, "%s (compacted at revision %" PRId64 ")",
					 ef_strerror(rv), store_compact_revision(n->st));
			return node_set_error(resp, a, rv, rv == EF_E_COMPACTED ? msg : NULL);
		}
		resp->hdr.revision = hrev;
		node_fill_hdr(n, &resp->hdr);
		return 0;
	}
	case EF_MSG_PUT:
	case EF_MSG_DELETE:
	case EF_MSG_TXN:
	case EF_MSG_COMPACT:
	case EF_MSG_LEASE_REVOKE:
		if (costs_space(req) && over_quota(n))
			return node_set_error(resp, a, EF_E_NO_SPACE, NULL);
		return do_propose(n, req, resp, a, deadline);
	case EF_MSG_LEASE_GRANT: {
		ef_msg g = *req;
		int64_t min_ttl = (3 * (int64_t)n->cfg.election_ms / 2 + 999) / 1000;
		if (g.u.lease.ttl < min_ttl)
			g.u.lease.ttl = min_ttl;
		if (g.u.lease.ttl > 9000000000LL)
			return node_set_error(resp, a, EF_E_LEASE_TTL_TOO_LARGE, NULL);
		if (over_quota(n))
			return node_set_error(resp, a, EF_E_NO_SPACE, NULL);
		if (!g.u.lease.id) {
			uint64_t r = 0;
			while ((int64_t)r <= 0) {
				if (getrandom(&r, sizeof r, 0) != sizeof r)
					r = (uint64_t)clock_wall_ns();
				r &= 0x7fffffffffffffffULL;
			}
			g.u.lease.id = (int64_t)r;
		}
		rv = do_propose(n, &g, resp, a, deadline);
		if (rv == 0) {
			resp->u.lease_resp.id = g.u.lease.id;
			resp->u.lease_resp.ttl = g.u.lease.ttl;
		}
		return rv;
	}
	case EF_MSG_LEASE_KEEPALIVE:
		return node_forward(n, req, resp, a, deadline, node_lease_keepalive);
	case EF_MSG_LEASE_TTL:
		return node_forward(n, req, resp, a, deadline, node_lease_ttl);
	case EF_MSG_LEASE_LIST: {
		store_lease *ls = NULL;
		uint32_t cnt = 0;
		if ((rv = store_lease_list(n->st, &ls, &cnt)) != 0)
			return node_set_error(resp, a, rv, NULL);
		memset(resp, 0, sizeof *resp);
		resp->type = EF_MSG_LEASE_LIST_RESP;
		resp->u.lease_list_resp.ids = ef_arena_alloc(a, sizeof(int64_t) * (cnt ? cnt : 1));
		if (resp->u.lease_list_resp.ids) {
			for (uint32_t i = 0; i < cnt; i++)
				resp->u.lease_list_resp.ids[i] = ls[i].id;
			resp->u.lease_list_resp.n_ids = cnt;
		}
		free(ls);
		node_fill_hdr(n, &resp->hdr);
		return 0;
	}
	case EF_MSG_STATUS:
		return local_status(n, resp, a);
	case EF_MSG_MEMBER_LIST:
		return node_member_list(n, resp, a);
	case EF_MSG_MOVE_LEADER:
		return node_forward(n, req, resp, a, deadline, node_move_leader);
	case EF_MSG_MEMBER_ADD:
	case EF_MSG_MEMBER_REMOVE:
	case EF_MSG_MEMBER_UPDATE:
	case EF_MSG_MEMBER_PROMOTE:
		return node_forward(n, req, resp, a, deadline, node_member_change);
	default:
		return node_set_error(resp, a, EF_E_UNKNOWN_TYPE, NULL);
	}
}

/* Every call is counted so that node_stop() can wait for the callers still
 * inside before it closes the store under them. */
int node_call(node *n, const ef_msg *req, ef_msg *resp, ef_arena *a)
{
	pthread_mutex_lock(&n->mu);
	if (n->stopping) {
		pthread_mutex_unlock(&n->mu);
		return node_set_error(resp, a, EF_E_STOPPING, NULL);
	}
	n->inflight++;
	pthread_mutex_unlock(&n->mu);
	int rv = node_call_inner(n, req, resp, a);
	pthread_mutex_lock(&n->mu);
	if (--n->inflight == 0 && n->stopping)
		pthread_cond_broadcast(&n->cv);
	pthread_mutex_unlock(&n->mu);
	return rv;
}

/* ------------------------------------------------------------------ */
/* Watch streams: thin layer over the hub.                              */

int node_wstream_open(node *n, node_watch_cb cb, void *ud, node_wstream **out)
{
	return watchhub_stream_open(n->hub, cb, ud, (hub_stream **)out);
}

int node_wstream_request(node_wstream *w, const ef_msg *req)
{
	return watchhub_stream_request((hub_stream *)w, req);
}

void node_wstream_close(node_wstream *w)
{
	watchhub_stream_close((hub_stream *)w);
}
