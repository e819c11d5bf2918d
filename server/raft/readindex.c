/*
 * readindex.c - linearizable reads without writing to the log (thesis 6.4).
 *
 * The leader answers a read with its commit index once it has
 *   1. committed an entry of its own term (so its commit index is at least
 *      that of any earlier leader: requests arriving before that wait in
 *      reads_wait_commit), and
 *   2. confirmed, after the request arrived, that it is still the leader:
 *      a heartbeat round whose context is a leader-local sequence number is
 *      acknowledged by a majority.  An acknowledgement of sequence s also
 *      confirms every request with a smaller sequence.
 * Then the read state (index, client context) goes to the host, or back to
 * the follower that forwarded the request as MSG_READINDEX_RESP.  A
 * single-member cluster skips the round.  When the leader loses its role,
 * every queued request fails so clients can retry elsewhere.
 */
#include "raft_int.h"

static int queue_push(read_queue *q, const read_req *rq)
{
	if (q->n == q->cap) {
		size_t c = q->cap ? q->cap * 2 : 8;
		read_req *p = realloc(q->v, c * sizeof(*p));
		if (p == NULL)
			return RAFT_E_NOMEM;
		q->v = p;
		q->cap = c;
	}
	q->v[q->n++] = *rq;
	return 0;
}

/* Deliver a confirmed read: locally or to the follower that asked. */
static void respond(raft *r, read_req *rq, bool ok)
{
	if (rq->from == r->id) {
		if (ok)
			raft_push_read(r, rq->index, rq->ctx, rq->ctx_len);
		else
			raft_push_failed_read(r, rq->ctx, rq->ctx_len);
		free(rq->ctx);
	} else {
		raft_msg *m = raft_send(r, RAFT_MSG_READINDEX_RESP, rq->from);
		if (m) {
			m->index = rq->index;
			m->reject = !ok;
			m->context = rq->ctx; /* ownership moves to the message */
			m->context_len = rq->ctx_len;
		} else {
			free(rq->ctx);
		}
	}
	rq->ctx = NULL;
}

static bool committed_in_term(const raft *r)
{
	return rlog_term(&r->log, r->log.committed) == r->term;
}

/* Start the confirmation round for one request. */
static int start(raft *r, read_req *rq)
{
	int pos = raft_voter_pos(r, r->id);

	rq->index = r->log.committed;
	if (conf_n_voters(r) == 1) {
		respond(r, rq, true);
		return 0;
	}
	rq->seq = ++r->read_seq;
	rq->acks = 1u << pos;
	if (queue_push(&r->reads_pending, rq)) {
		free(rq->ctx);
		return RAFT_E_NOMEM;
	}
	repl_bcast_heartbeat(r, rq->seq);
	return 0;
}

int readindex_request(raft *r, uint64_t from, const uint8_t *ctx, uint32_t len)
{
	read_req rq;

	memset(&rq, 0, sizeof(rq));
	rq.from = from;
	rq.ctx_len = len;
	if (len) {
		rq.ctx = malloc(len);
		if (rq.ctx == NULL)
			return RAFT_E_NOMEM;
		memcpy(rq.ctx, ctx, len);
	}
	if (conf_n_voters(r) > 1 && !committed_in_term(r)) {
		if (queue_push(&r->reads_wait_commit, &rq)) {
			free(rq.ctx);
			return RAFT_E_NOMEM;
		}
		return 0;
	}
	return start(r, &rq);
}

void readindex_on_commit(raft *r)
{
	read_queue q;

	if (r->role != RAFT_LEADER || r->reads_wait_commit.n == 0 || !committed_in_term(r))
		return;
	q = r->reads_wait_commit;
	memset(&r->reads_wait_commit, 0, sizeof(q));
	for (size_t i = 0; i < q.n; i++)
		start(r, &q.v[i]);
	free(q.v);
}

void readindex_on_heartbeat_resp(raft *r, uint64_t from, const uint8_t *ctx, uint32_t len)
{
	read_queue *q = &r->reads_pending;
	int pos = raft_voter_pos(r, from);
	uint64_t seq, done = 0;
	size_t k;

	if (len != 8 || pos < 0 || r->prs[pos].learner)
		return;
	memcpy(&seq, ctx, 8);
	for (size_t i = 0; i < q->n; i++) {
		uint32_t acks;
		if (q->v[i].seq > seq)
			break;
		acks = q->v[i].acks |= 1u << pos;
		if ((uint32_t)__builtin_popcount(acks) >= raft_quorum(r))
			done = q->v[i].seq;
	}
	if (done == 0)
		return;
	for (k = 0; k < q->n && q->v[k].seq <= done; k++)
		respond(r, &q->v[k], true);
	memmove(q->v, q->v + k, (q->n - k) * sizeof(*q->v));
	q->n -= k;
}

uint64_t readindex_last_seq(const raft *r)
{
	return r->reads_pending.n ? r->reads_pending.v[r->reads_pending.n - 1].seq : 0;
}

void readindex_fail_all(raft *r)
{
	for (size_t i = 0; i < r->reads_pending.n; i++)
		respond(r, &r->reads_pending.v[i], false);
	for (size_t i = 0; i < r->reads_wait_commit.n; i++)
		respond(r, &r->reads_wait_commit.v[i], false);
	r->reads_pending.n = 0;
	r->reads_wait_commit.n = 0;
}

void readindex_free(raft *r)
{
	for (size_t i = 0; i < r->reads_pending.n; i++)
		free(r->reads_pending.v[i].ctx);
	for (size_t i = 0; i < r->reads_wait_commit.n; i++)
		free(r->reads_wait_commit.v[i].ctx);
	free(r->reads_pending.v);
	free(r->reads_wait_commit.v);
	memset(&r->reads_pending, 0, sizeof(r->reads_pending));
	memset(&r->reads_wait_commit, 0, sizeof(r->reads_wait_commit));
}

/* Positions in prs moved: keep only our own ack and ask every voter again
 * with the newest sequence (an answer to it confirms all older requests). */
void readindex_on_conf_change(raft *r)
{
	read_queue *q = &r->reads_pending;
	int pos = raft_voter_pos(r, r->id);

	if (q->n == 0 || pos < 0)
		return;
	for (size_t i = 0; i < q->n; i++)
		q->v[i].acks = 1u << pos;
	repl_bcast_heartbeat(r, readindex_last_seq(r));
}
