/*
 * test_raft.c - scripted tests of the Raft core: a 3-member cluster in one
 * process with manual message delivery (every message goes through the
 * codec), in the spirit of etcd-raft's interaction tests.  Each test sets up
 * a situation from the thesis and checks the exact outcome.
 */
#include "test.h"

#include "../../proto/wire.h"
#include "../../server/raft/raft.h"

#define N 3

typedef struct {
	int from, to;
	uint8_t *buf;
	size_t len;
} pkt;

typedef struct {
	raft *r[N];
	pkt q[4096];
	int nq;
	int cut[N][N];
	int applied[N]; /* normal entries applied */
	uint64_t applied_index[N];
	uint64_t read_index[N]; /* last read state */
	char read_ctx[N][16];
	int n_reads[N], n_failed[N];
	int snaps[N];
	uint64_t snap_index[N];
} cluster;

static raft_config cfg_for(int i, int pre_vote, int check_quorum)
{
	raft_config c;
	memset(&c, 0, sizeof(c));
	c.id = (uint64_t)i + 1;
	c.n_voters = N;
	for (int k = 0; k < N; k++)
		c.voters[k] = (uint64_t)k + 1;
	c.election_tick = 10;
	c.heartbeat_tick = 1;
	c.max_inflight = 8;
	c.max_msg_bytes = 1024;
	c.pre_vote = pre_vote;
	c.check_quorum = check_quorum;
	c.seed = 42;
	return c;
}

static void cl_init(cluster *c, int pre_vote, int check_quorum)
{
	memset(c, 0, sizeof(*c));
	for (int i = 0; i < N; i++) {
		raft_config cf = cfg_for(i, pre_vote, check_quorum);
		c->r[i] = raft_new(&cf, NULL, NULL, NULL, 0);
	}
}

static void cl_free(cluster *c)
{
	for (int i = 0; i < N; i++)
		raft_free(c->r[i]);
	for (int k = 0; k < c->nq; k++)
		free(c->q[k].buf);
}

/* The host contract for node i, without a disk. */
static void cl_ready(cluster *c, int i)
{
	while (raft_has_ready(c->r[i])) {
		raft_ready rd;
		raft_get_ready(c->r[i], &rd);
		if (rd.snapshot) {
			c->snaps[i]++;
			c->snap_index[i] = rd.snapshot->index;
			c->applied_index[i] = rd.snapshot->index;
		}
		for (size_t k = 0; k < rd.n_msgs; k++) {
			ef_wbuf b;
			ef_wbuf_init(&b);
			/* Members outside the 3 simulated nodes are not running. */
			if (rd.msgs[k].to < 1 || rd.msgs[k].to > N) {
				ef_wbuf_free(&b);
				continue;
			}
			if (raft_msg_encode(&rd.msgs[k], &b) == 0 && c->nq < 4096) {
				c->q[c->nq].from = i;
				c->q[c->nq].to = (int)rd.msgs[k].to - 1;
				c->q[c->nq].buf = b.p;
				c->q[c->nq].len = b.len;
				c->nq++;
			} else {
				ef_wbuf_free(&b);
			}
		}
		for (size_t k = 0; k < rd.n_committed; k++) {
			c->applied_index[i] = rd.committed[k].index;
			if (rd.committed[k].type == RAFT_ENTRY_NORMAL)
				c->applied[i]++;
		}
		for (size_t k = 0; k < rd.n_reads; k++) {
			c->n_reads[i]++;
			c->read_index[i] = rd.reads[k].index;
			memset(c->read_ctx[i], 0, 16);
			memcpy(c->read_ctx[i], rd.reads[k].context,
			       rd.reads[k].context_len < 15 ? rd.reads[k].context_len : 15);
		}
		c->n_failed[i] += (int)rd.n_failed_reads;
		raft_advance(c->r[i], &rd);
	}
}

static void cl_ready_all(cluster *c)
{
	for (int i = 0; i < N; i++)
		cl_ready(c, i);
}

/* Deliver queued messages in order until none is left (cut links drop). */
static int cl_deliver(cluster *c)
{
	int delivered = 0;
	cl_ready_all(c);
	while (c->nq > 0) {
		pkt p = c->q[0];
		raft_msg m;
		memmove(c->q, c->q + 1, (size_t)(c->nq - 1) * sizeof(pkt));
		c->nq--;
		if (!c->cut[p.from][p.to] && raft_msg_decode(p.buf, p.len, &m) == 0) {
			raft_step(c->r[p.to], &m);
			if (m.type == RAFT_MSG_SNAP)
				raft_report_snapshot(c->r[p.from], (uint64_t)p.to + 1, 0);
			raft_msg_free_decoded(&m);
			delivered++;
		}
		free(p.buf);
		cl_ready_all(c);
	}
	return delivered;
}

static void cl_drop_all(cluster *c)
{
	cl_ready_all(c);
	for (int k = 0; k < c->nq; k++)
		free(c->q[k].buf);
	c->nq = 0;
}

static void cl_tick(cluster *c, int i, int n)
{
	for (int k = 0; k < n; k++) {
		raft_tick(c->r[i]);
		cl_deliver(c);
	}
}

static void isolate(cluster *c, int i, int on)
{
	for (int k = 0; k < N; k++)
		if (k != i)
			c->cut[i][k] = c->cut[k][i] = on;
}

static void elect(cluster *c, int i)
{
	raft_campaign(c->r[i]);
	cl_deliver(c);
}

/* ------------------------------------------------------------------ */

TEST(election_and_empty_entry)
{
	cluster c;
	cl_init(&c, 1, 1);
	elect(&c, 0);
	CHECK_EQ(raft_role(c.r[0]), RAFT_LEADER);
	CHECK_EQ(raft_term(c.r[0]), 1);
	for (int i = 0; i < N; i++) {
		CHECK_EQ(raft_leader(c.r[i]), 1);
		CHECK_EQ(raft_term(c.r[i]), 1);
		/* The new leader's empty entry is committed everywhere. */
		CHECK_EQ(raft_commit_index(c.r[i]), 1);
		CHECK_EQ(raft_term_at(c.r[i], 1), 1);
	}
	/* Proposals on a follower are forwarded to the leader. */
	uint64_t idx = 99;
	CHECK_EQ(raft_propose(c.r[2], "x", 1, &idx), 0);
	CHECK_EQ(idx, 0);
	cl_deliver(&c);
	cl_tick(&c, 0, 1); /* heartbeat carries the new commit */
	for (int i = 0; i < N; i++) {
		CHECK_EQ(raft_commit_index(c.r[i]), 2);
		CHECK_EQ(c.applied[i], 1);
	}
	cl_free(&c);
}

TEST(election_by_timeout)
{
	cluster c;
	cl_init(&c, 1, 1);
	/* Randomised timeouts are in [10, 20): someone wins within 20 ticks. */
	for (int t = 0; t < 20; t++)
		for (int i = 0; i < N; i++)
			cl_tick(&c, i, 1);
	int leaders = 0;
	for (int i = 0; i < N; i++)
		leaders += raft_role(c.r[i]) == RAFT_LEADER;
	CHECK_EQ(leaders, 1);
	cl_free(&c);
}

TEST(propose_without_leader)
{
	cluster c;
	cl_init(&c, 1, 1);
	CHECK_EQ(raft_propose(c.r[1], "x", 1, NULL), RAFT_E_NOT_LEADER);
	CHECK_EQ(raft_read_index(c.r[1], "r", 1), RAFT_E_NOT_LEADER);
	cl_free(&c);
}

TEST(prevote_blocks_rejoining_node)
{
	cluster c;
	cl_init(&c, 1, 1);
	elect(&c, 0);
	isolate(&c, 2, 1);
	/* Node 3 times out over and over while cut off; with PreVote its term
	 * never moves. */
	for (int k = 0; k < 100; k++) {
		raft_tick(c.r[2]);
		cl_tick(&c, 0, 1);
	}
	CHECK_EQ(raft_term(c.r[2]), 1);
	CHECK(raft_role(c.r[2]) != RAFT_LEADER);
	isolate(&c, 2, 0);
	/* On rejoining it campaigns again: the others are in their lease. */
	raft_campaign(c.r[2]);
	cl_deliver(&c);
	CHECK_EQ(raft_role(c.r[0]), RAFT_LEADER);
	CHECK_EQ(raft_term(c.r[0]), 1);
	cl_tick(&c, 0, 2);
	CHECK_EQ(raft_leader(c.r[2]), 1);
	CHECK_EQ(raft_term(c.r[2]), 1);
	cl_free(&c);
}

TEST(without_prevote_rejoin_disrupts)
{
	/* The control experiment: without PreVote or CheckQuorum the isolated
	 * node inflates its term and deposes the leader when it returns. */
	cluster c;
	cl_init(&c, 0, 0);
	elect(&c, 0);
	isolate(&c, 2, 1);
	for (int k = 0; k < 100; k++)
		raft_tick(c.r[2]);
	cl_drop_all(&c);
	CHECK(raft_term(c.r[2]) > 1);
	isolate(&c, 2, 0);
	/* The leader ignores its stale-term responses... */
	cl_tick(&c, 0, 1);
	CHECK_EQ(raft_term(c.r[0]), 1);
	/* ...but its next vote request deposes the leader. */
	for (int k = 0; k < 30 && raft_term(c.r[0]) == 1; k++) {
		raft_tick(c.r[2]);
		cl_deliver(&c);
	}
	CHECK(raft_term(c.r[0]) > 1);
	cl_free(&c);
}

TEST(check_quorum_step_down)
{
	cluster c;
	cl_init(&c, 1, 1);
	elect(&c, 0);
	isolate(&c, 0, 1);
	/* Heartbeats go unanswered for an election timeout (maybe two: the
	 * round that was running when the cut happened still counts). */
	for (int k = 0; k < 20 && raft_role(c.r[0]) == RAFT_LEADER; k++)
		cl_tick(&c, 0, 1);
	CHECK_EQ(raft_role(c.r[0]), RAFT_FOLLOWER);
	CHECK_EQ(raft_leader(c.r[0]), RAFT_NONE);
	CHECK_EQ(raft_propose(c.r[0], "x", 1, NULL), RAFT_E_NOT_LEADER);
	cl_free(&c);
}

TEST(leader_lease_ignores_votes)
{
	cluster c;
	cl_init(&c, 1, 1);
	elect(&c, 0);
	/* A vote request for a higher term to a follower that just heard from
	 * its leader is ignored: no response, no term change. */
	raft_msg m;
	memset(&m, 0, sizeof(m));
	m.type = RAFT_MSG_VOTE;
	m.from = 3;
	m.to = 2;
	m.term = 5;
	m.index = 100;
	m.log_term = 5;
	CHECK_EQ(raft_step(c.r[1], &m), 0);
	CHECK_EQ(raft_term(c.r[1]), 1);
	CHECK_EQ(raft_leader(c.r[1]), 1);
	cl_free(&c);
}

TEST(stale_vote_gets_reject)
{
	/* A node at term 5 answers a vote request for term 2 with a rejection
	 * carrying its own term, so the stale candidate catches up. */
	raft_config cf = cfg_for(1, 1, 1);
	raft_hard_state hs5 = {5, 0, 0};
	raft *r = raft_new(&cf, &hs5, NULL, NULL, 0);
	raft_msg m;
	raft_ready rd;

	memset(&m, 0, sizeof(m));
	m.type = RAFT_MSG_VOTE;
	m.from = 3;
	m.to = 2;
	m.term = 2;
	CHECK_EQ(raft_step(r, &m), 0);
	raft_get_ready(r, &rd);
	CHECK_EQ(rd.n_msgs, 1);
	if (rd.n_msgs == 1) {
		CHECK_EQ(rd.msgs[0].type, RAFT_MSG_VOTE_RESP);
		CHECK_EQ(rd.msgs[0].reject, 1);
		CHECK_EQ(rd.msgs[0].term, 5);
		CHECK_EQ(rd.msgs[0].to, 3);
	}
	raft_advance(r, &rd);
	/* Term 0 is only for forwarded requests: a vote with it is invalid. */
	m.term = 0;
	CHECK_EQ(raft_step(r, &m), RAFT_E_INVALID);
	raft_free(r);
}

/* Thesis 3.6.2, Figure 3.7: a leader must not commit an entry of an earlier
 * term by counting replicas, only through an entry of its own term. */
TEST(commit_only_current_term)
{
	cluster c;
	memset(&c, 0, sizeof(c));
	raft_entry e[2] = {{1, 1, RAFT_ENTRY_EMPTY, 0, NULL},
			   {2, 2, RAFT_ENTRY_NORMAL, 1, (uint8_t *)"a"}};
	raft_hard_state hs = {3, 0, 1};
	raft_config c0 = cfg_for(0, 1, 1), c1 = cfg_for(1, 1, 1), c2 = cfg_for(2, 1, 1);
	c.r[0] = raft_new(&c0, &hs, NULL, e, 2); /* has the term-2 entry */
	c.r[1] = raft_new(&c1, &hs, NULL, e, 2); /* so does node 2 */
	c.r[2] = raft_new(&c2, &hs, NULL, e, 1);
	CHECK(c.r[0] && c.r[1] && c.r[2]);
	raft_campaign(c.r[0]);
	/* Deliver only the election, drop the leader's appends. */
	for (int round = 0; round < 4; round++) {
		cl_ready_all(&c);
		int n = c.nq;
		for (int k = 0; k < n; k++) {
			raft_msg m;
			if (raft_msg_decode(c.q[k].buf, c.q[k].len, &m) == 0) {
				if (m.type != RAFT_MSG_APP && m.type != RAFT_MSG_HEARTBEAT)
					raft_step(c.r[c.q[k].to], &m);
				raft_msg_free_decoded(&m);
			}
			free(c.q[k].buf);
		}
		memmove(c.q, c.q + n, (size_t)(c.nq - n) * sizeof(pkt));
		c.nq -= n;
	}
	cl_drop_all(&c);
	CHECK_EQ(raft_role(c.r[0]), RAFT_LEADER);
	CHECK_EQ(raft_term(c.r[0]), 4);
	CHECK_EQ(raft_last_index(c.r[0]), 3); /* the empty entry of term 4 */
	/* Node 2 acknowledges index 2 (term 2): a majority holds it, yet it
	 * must stay uncommitted. */
	raft_msg ack;
	memset(&ack, 0, sizeof(ack));
	ack.type = RAFT_MSG_APP_RESP;
	ack.from = 2;
	ack.to = 1;
	ack.term = 4;
	ack.index = 2;
	raft_step(c.r[0], &ack);
	CHECK_EQ(raft_commit_index(c.r[0]), 1);
	cl_drop_all(&c);
	/* Once the term-4 entry is on a majority, both commit, and the whole
	 * cluster converges. */
	cl_tick(&c, 0, 3);
	for (int i = 0; i < N; i++) {
		CHECK_EQ(raft_commit_index(c.r[i]), 3);
		CHECK_EQ(raft_term_at(c.r[i], 2), 2);
	}
	cl_free(&c);
}

TEST(read_index)
{
	cluster c;
	cl_init(&c, 1, 1);
	elect(&c, 0);
	CHECK_EQ(raft_propose(c.r[0], "v", 1, NULL), 0);
	cl_deliver(&c);
	uint64_t commit = raft_commit_index(c.r[0]);
	CHECK_EQ(commit, 2);
	/* Leader: no answer before a heartbeat round confirms leadership. */
	CHECK_EQ(raft_read_index(c.r[0], "r1", 2), 0);
	cl_ready(&c, 0);
	CHECK_EQ(c.n_reads[0], 0);
	cl_deliver(&c);
	CHECK_EQ(c.n_reads[0], 1);
	CHECK_EQ(c.read_index[0], commit);
	CHECK(strcmp(c.read_ctx[0], "r1") == 0);
	/* Follower: forwarded, answered through MSG_READINDEX_RESP. */
	CHECK_EQ(raft_read_index(c.r[2], "r2", 2), 0);
	cl_deliver(&c);
	CHECK_EQ(c.n_reads[2], 1);
	CHECK_EQ(c.read_index[2], commit);
	CHECK(strcmp(c.read_ctx[2], "r2") == 0);
	/* A leader cut off from the majority never confirms; when it steps
	 * down the read fails. */
	isolate(&c, 0, 1);
	CHECK_EQ(raft_read_index(c.r[0], "r3", 2), 0);
	for (int k = 0; k < 25 && raft_role(c.r[0]) == RAFT_LEADER; k++)
		cl_tick(&c, 0, 1);
	CHECK_EQ(c.n_reads[0], 1);
	CHECK_EQ(c.n_failed[0], 1);
	cl_free(&c);
}

TEST(read_index_waits_for_term_commit)
{
	cluster c;
	cl_init(&c, 1, 1);
	raft_campaign(c.r[0]);
	/* Deliver the election only: the leader's empty entry is not yet
	 * committed, so a read must wait for it (thesis 6.4 step 1). */
	for (int round = 0; round < 6; round++) {
		cl_ready_all(&c);
		int n = c.nq;
		for (int k = 0; k < n; k++) {
			raft_msg m;
			if (raft_msg_decode(c.q[k].buf, c.q[k].len, &m) == 0) {
				if (m.type != RAFT_MSG_APP)
					raft_step(c.r[c.q[k].to], &m);
				raft_msg_free_decoded(&m);
			}
			free(c.q[k].buf);
		}
		memmove(c.q, c.q + n, (size_t)(c.nq - n) * sizeof(pkt));
		c.nq -= n;
	}
	CHECK_EQ(raft_role(c.r[0]), RAFT_LEADER);
	CHECK_EQ(raft_commit_index(c.r[0]), 0);
	CHECK_EQ(raft_read_index(c.r[0], "w", 1), 0);
	cl_tick(&c, 0, 1); /* heartbeats answered, but nothing committed yet... */
	/* ...the heartbeat responses trigger the appends, the entry commits,
	 * and only then is the read released. */
	CHECK_EQ(c.n_reads[0], 1);
	CHECK_EQ(c.read_index[0], 1);
	CHECK(raft_commit_index(c.r[0]) >= 1);
	cl_free(&c);
}

TEST(leader_transfer)
{
	cluster c;
	cl_init(&c, 1, 1);
	elect(&c, 0);
	/* Target lags behind: it is caught up first. */
	isolate(&c, 2, 1);
	for (int k = 0; k < 5; k++)
		CHECK_EQ(raft_propose(c.r[0], "p", 1, NULL), 0);
	cl_deliver(&c);
	isolate(&c, 2, 0);
	CHECK(raft_last_index(c.r[2]) < raft_last_index(c.r[0]));
	CHECK_EQ(raft_transfer_leader(c.r[0], 3), 0);
	CHECK_EQ(raft_propose(c.r[0], "q", 1, NULL), RAFT_E_BUSY);
	for (int k = 0; k < 5 && raft_role(c.r[2]) != RAFT_LEADER; k++)
		cl_tick(&c, 0, 1);
	CHECK_EQ(raft_role(c.r[2]), RAFT_LEADER);
	CHECK_EQ(raft_term(c.r[2]), 2);
	CHECK_EQ(raft_role(c.r[0]), RAFT_FOLLOWER);
	CHECK_EQ(raft_leader(c.r[0]), 3);
	/* Transfer to an unreachable node is aborted after an election timeout. */
	isolate(&c, 1, 1);
	CHECK_EQ(raft_transfer_leader(c.r[2], 2), 0);
	CHECK_EQ(raft_propose(c.r[2], "q", 1, NULL), RAFT_E_BUSY);
	cl_tick(&c, 2, 10);
	CHECK_EQ(raft_role(c.r[2]), RAFT_LEADER);
	CHECK_EQ(raft_propose(c.r[2], "q", 1, NULL), 0);
	cl_free(&c);
}

TEST(snapshot_to_lagging_follower)
{
	cluster c;
	cl_init(&c, 1, 1);
	elect(&c, 0);
	isolate(&c, 2, 1);
	for (int k = 0; k < 20; k++)
		CHECK_EQ(raft_propose(c.r[0], "entry", 5, NULL), 0);
	cl_deliver(&c);
	cl_tick(&c, 0, 1);
	CHECK_EQ(raft_commit_index(c.r[0]), 21);
	CHECK_EQ(c.applied_index[0], 21);
	/* The host snapshots at 21 and drops everything up to 21 - 2. */
	CHECK_EQ(raft_compact(c.r[0], 21, 2), 0);
	CHECK_EQ(raft_first_index(c.r[0]), 20);
	CHECK_EQ(raft_compact(c.r[0], 30, 0), RAFT_E_INVALID); /* beyond applied */
	isolate(&c, 2, 0);
	for (int k = 0; k < 4; k++)
		cl_tick(&c, 0, 1);
	CHECK_EQ(c.snaps[2], 1);
	CHECK_EQ(c.snap_index[2], 21);
	CHECK_EQ(raft_first_index(c.r[2]), 22);
	CHECK_EQ(raft_commit_index(c.r[2]), 21);
	/* Replication resumes after the snapshot. */
	CHECK_EQ(raft_propose(c.r[0], "after", 5, NULL), 0);
	cl_deliver(&c);
	cl_tick(&c, 0, 1);
	CHECK_EQ(raft_commit_index(c.r[2]), 22);
	CHECK_EQ(c.applied_index[2], 22);
	cl_free(&c);
}

TEST(restart_from_disk_state)
{
	raft_entry e[3] = {{1, 1, RAFT_ENTRY_EMPTY, 0, NULL},
			   {1, 2, RAFT_ENTRY_NORMAL, 1, (uint8_t *)"a"},
			   {2, 3, RAFT_ENTRY_NORMAL, 1, (uint8_t *)"b"}};
	raft_hard_state hs = {2, 1, 2};
	raft_config cf = cfg_for(0, 1, 1);
	raft *r = raft_new(&cf, &hs, NULL, e, 3);
	CHECK(r != NULL);
	CHECK_EQ(raft_term(r), 2);
	CHECK_EQ(raft_last_index(r), 3);
	CHECK_EQ(raft_commit_index(r), 2);
	/* Committed entries are handed out again (applied starts at the
	 * snapshot, here 0). */
	raft_ready rd;
	raft_get_ready(r, &rd);
	CHECK_EQ(rd.n_entries, 0);
	CHECK_EQ(rd.n_committed, 2);
	raft_advance(r, &rd);
	raft_free(r);
	/* Inconsistent input is refused. */
	e[2].index = 5;
	CHECK(raft_new(&cf, &hs, NULL, e, 3) == NULL);
	cf.id = 9;
	CHECK(raft_new(&cf, &hs, NULL, NULL, 0) == NULL);
}

/* ------------------------------------------------------------------ */
/* Codec                                                                */

static uint64_t xs = 88172645463325252ull;
static uint64_t xr(void)
{
	xs ^= xs << 13;
	xs ^= xs >> 7;
	xs ^= xs << 17;
	return xs;
}

/* Hand one message of a ready to its receiver, through the codec. */
static void pass_msg(cluster *c, const raft_msg *m)
{
	ef_wbuf b;
	raft_msg d;
	ef_wbuf_init(&b);
	if (raft_msg_encode(m, &b) == 0 && raft_msg_decode(b.p, b.len, &d) == 0) {
		raft_step(c->r[m->to - 1], &d);
		raft_msg_free_decoded(&d);
	}
	ef_wbuf_free(&b);
}

/* Hand a ready's messages (only those to `to`, unless 0) to their receivers. */
static void pass_ready(cluster *c, const raft_ready *rd, uint64_t to)
{
	for (size_t k = 0; k < rd->n_msgs; k++)
		if (!to || rd->msgs[k].to == to)
			pass_msg(c, &rd->msgs[k]);
}

static int count_type(const raft_ready *rd, int type, uint64_t to, uint32_t *entries)
{
	int n = 0;
	for (size_t k = 0; k < rd->n_msgs; k++)
		if (rd->msgs[k].type == type && (!to || rd->msgs[k].to == to)) {
			n++;
			if (entries)
				*entries = rd->msgs[k].n_entries;
		}
	return n;
}

TEST(one_append_per_follower_per_ready)
{
	cluster c;
	cl_init(&c, 1, 1);
	elect(&c, 0);
	for (int k = 0; k < 10; k++)
		CHECK_EQ(raft_propose(c.r[0], "v", 1, NULL), 0);
	raft_ready rd;
	raft_get_ready(c.r[0], &rd);
	CHECK_EQ(rd.n_entries, 10);
	uint32_t ne = 0;
	for (uint64_t f = 2; f <= 3; f++) {
		CHECK_EQ(count_type(&rd, RAFT_MSG_APP, f, &ne), 1);
		CHECK_EQ(ne, 10);
	}
	/* a leader's appends need not wait for its own fsync */
	CHECK_EQ(rd.n_msgs_early, rd.n_msgs);
	pass_ready(&c, &rd, 0);
	raft_advance(c.r[0], &rd);
	cl_deliver(&c);
	CHECK_EQ(raft_commit_index(c.r[0]), 11);
	cl_free(&c);
}

TEST(leader_counts_itself_only_when_persisted)
{
	cluster c;
	cl_init(&c, 1, 1);
	elect(&c, 0);
	CHECK_EQ(raft_propose(c.r[0], "x", 1, NULL), 0);
	raft_ready lr;
	raft_get_ready(c.r[0], &lr); /* the leader has not persisted entry 2 yet */
	CHECK_EQ(lr.n_entries, 1);
	pass_ready(&c, &lr, 2);
	/* follower 2 persists and answers: its answer waits for its fsync */
	raft_ready fr;
	raft_get_ready(c.r[1], &fr);
	CHECK_EQ(fr.n_entries, 1);
	CHECK_EQ(count_type(&fr, RAFT_MSG_APP_RESP, 1, NULL), 1);
	CHECK_EQ(fr.n_msgs_early, 0);
	pass_ready(&c, &fr, 0);
	raft_advance(c.r[1], &fr);
	/* one follower's disk and a leader that has not written: no quorum */
	CHECK_EQ(raft_commit_index(c.r[0]), 1);
	raft_advance(c.r[0], &lr); /* now the leader's fsync is done */
	CHECK_EQ(raft_commit_index(c.r[0]), 2);
	/* the new commit index goes out with the next ready */
	raft_get_ready(c.r[0], &lr);
	CHECK(count_type(&lr, RAFT_MSG_APP, 2, NULL) == 1 &&
	      count_type(&lr, RAFT_MSG_APP, 3, NULL) == 1);
	raft_advance(c.r[0], &lr);
	cl_drop_all(&c);
	cl_free(&c);
}

TEST(follower_packs_forwarded_proposals)
{
	cluster c;
	cl_init(&c, 1, 1);
	elect(&c, 0);
	for (int k = 0; k < 5; k++)
		CHECK_EQ(raft_propose(c.r[2], "p", 1, NULL), 0);
	raft_ready rd;
	raft_get_ready(c.r[2], &rd);
	uint32_t ne = 0;
	CHECK_EQ(count_type(&rd, RAFT_MSG_PROP, 1, &ne), 1);
	CHECK_EQ(ne, 5);
	CHECK_EQ(rd.n_msgs_early, rd.n_msgs);
	pass_ready(&c, &rd, 0);
	raft_advance(c.r[2], &rd);
	cl_deliver(&c);
	cl_tick(&c, 0, 1);
	for (int i = 0; i < N; i++)
		CHECK_EQ(c.applied[i], 5);
	cl_free(&c);
}

TEST(votes_wait_for_the_fsync)
{
	cluster c;
	cl_init(&c, 0, 0);
	raft_campaign(c.r[0]);
	raft_ready rd;
	raft_get_ready(c.r[0], &rd);
	CHECK(rd.hs_changed && rd.hs.vote == 1);
	CHECK_EQ(count_type(&rd, RAFT_MSG_VOTE, 0, NULL), 2);
	CHECK_EQ(rd.n_msgs_early, 0);
	pass_ready(&c, &rd, 0);
	raft_advance(c.r[0], &rd);
	cl_deliver(&c);
	CHECK_EQ(raft_role(c.r[0]), RAFT_LEADER);
	cl_free(&c);
}

TEST(codec_round_trip)
{
	raft_entry ents[2] = {{3, 11, RAFT_ENTRY_NORMAL, 5, (uint8_t *)"hello"},
			      {3, 12, RAFT_ENTRY_EMPTY, 0, NULL}};
	raft_msg m, d;
	ef_wbuf b;

	memset(&m, 0, sizeof(m));
	m.type = RAFT_MSG_APP;
	m.from = 1;
	m.to = 2;
	m.term = 3;
	m.log_term = 2;
	m.index = 10;
	m.commit = 9;
	m.reject_hint = 0xdeadbeefcafeull;
	m.entries = ents;
	m.n_entries = 2;
	m.context = (uint8_t *)"ctx";
	m.context_len = 3;
	ef_wbuf_init(&b);
	CHECK_EQ(raft_msg_encode(&m, &b), 0);
	CHECK_EQ(raft_msg_decode(b.p, b.len, &d), 0);
	CHECK_EQ(d.type, RAFT_MSG_APP);
	CHECK_EQ(d.from, 1);
	CHECK_EQ(d.to, 2);
	CHECK_EQ(d.term, 3);
	CHECK_EQ(d.log_term, 2);
	CHECK_EQ(d.index, 10);
	CHECK_EQ(d.commit, 9);
	CHECK_EQ(d.reject_hint, 0xdeadbeefcafeull);
	CHECK_EQ(d.n_entries, 2);
	if (d.n_entries == 2) {
		CHECK_MEM(d.entries[0].data, d.entries[0].len, "hello");
		CHECK_EQ(d.entries[0].index, 11);
		CHECK_EQ(d.entries[1].type, RAFT_ENTRY_EMPTY);
		CHECK_EQ(d.entries[1].len, 0);
	}
	CHECK_MEM(d.context, d.context_len, "ctx");
	raft_msg_free_decoded(&d);
	/* Every truncation is rejected; so is a trailing byte. */
	for (size_t n = 0; n < b.len; n++)
		CHECK(raft_msg_decode(b.p, n, &d) != 0);
	ef_wbuf_u8(&b, 0);
	CHECK(raft_msg_decode(b.p, b.len, &d) != 0);
	ef_wbuf_free(&b);

	/* Snapshot metadata. */
	memset(&m, 0, sizeof(m));
	m.type = RAFT_MSG_SNAP;
	m.from = 3;
	m.to = 1;
	m.term = 7;
	m.snapshot.index = 1000;
	m.snapshot.term = 6;
	m.snapshot.n_voters = 3;
	m.snapshot.voters[0] = 1;
	m.snapshot.voters[1] = 2;
	m.snapshot.voters[2] = 3;
	ef_wbuf_init(&b);
	CHECK_EQ(raft_msg_encode(&m, &b), 0);
	CHECK_EQ(raft_msg_decode(b.p, b.len, &d), 0);
	CHECK_EQ(d.snapshot.index, 1000);
	CHECK_EQ(d.snapshot.term, 6);
	CHECK_EQ(d.snapshot.n_voters, 3);
	CHECK_EQ(d.snapshot.voters[2], 3);
	raft_msg_free_decoded(&d);
	ef_wbuf_free(&b);
}

TEST(codec_rejects_garbage)
{
	raft_entry ent = {1, 2, RAFT_ENTRY_NORMAL, 4, (uint8_t *)"data"};
	raft_msg m, d;
	ef_wbuf b;
	uint8_t buf[256];
	int accepted = 0;

	/* A forged entry count far beyond the input is refused before any
	 * allocation of that size. */
	memset(&m, 0, sizeof(m));
	m.type = RAFT_MSG_APP;
	m.from = 1;
	m.to = 2;
	m.term = 1;
	m.entries = &ent;
	m.n_entries = 1;
	ef_wbuf_init(&b);
	CHECK_EQ(raft_msg_encode(&m, &b), 0);
	size_t count_off = 1 + 1 + 8 * 6 + 1 + 8;
	uint8_t save[4];
	memcpy(save, b.p + count_off, 4);
	memset(b.p + count_off, 0xff, 4);
	CHECK(raft_msg_decode(b.p, b.len, &d) != 0);
	memcpy(b.p + count_off, save, 4);
	/* Unknown type and version. */
	b.p[1] = 99;
	CHECK(raft_msg_decode(b.p, b.len, &d) != 0);
	b.p[1] = RAFT_MSG_APP;
	b.p[0] = 2;
	CHECK(raft_msg_decode(b.p, b.len, &d) != 0);
	b.p[0] = 1;
	CHECK_EQ(raft_msg_decode(b.p, b.len, &d), 0);
	raft_msg_free_decoded(&d);
	/* Bit flips of a valid message and random bytes: never a crash,
	 * and whatever is accepted is internally consistent. */
	for (int k = 0; k < 20000; k++) {
		size_t n;
		if (k % 2) {
			n = b.len;
			memcpy(buf, b.p, n);
			buf[xr() % n] ^= (uint8_t)(1u << (xr() % 8));
		} else {
			n = xr() % sizeof(buf);
			for (size_t j = 0; j < n; j++)
				buf[j] = (uint8_t)xr();
			if (n > 1) {
				buf[0] = 1;
				buf[1] = (uint8_t)(1 + xr() % 14);
			}
		}
		if (raft_msg_decode(buf, n, &d) == 0) {
			accepted++;
			CHECK(d.type >= RAFT_MSG_APP && d.type <= RAFT_MSG_TRANSFER_LEADER);
			CHECK(d.n_entries == 0 || d.entries != NULL);
			CHECK(d.snapshot.n_voters <= RAFT_MAX_VOTERS);
			raft_msg_free_decoded(&d);
		}
	}
	CHECK(accepted > 0); /* some flips land in payload bytes */
	ef_wbuf_free(&b);
}

TEST(step_rejects_bad_messages)
{
	cluster c;
	raft_msg m;
	cl_init(&c, 1, 1);
	memset(&m, 0, sizeof(m));
	m.type = RAFT_MSG_HEARTBEAT;
	m.from = 9; /* unknown member */
	m.to = 1;
	m.term = 1;
	CHECK_EQ(raft_step(c.r[0], &m), RAFT_E_INVALID);
	m.from = 2;
	m.to = 3; /* not for us */
	CHECK_EQ(raft_step(c.r[0], &m), RAFT_E_INVALID);
	m.to = 1;
	m.type = 77;
	CHECK_EQ(raft_step(c.r[0], &m), RAFT_E_INVALID);
	cl_free(&c);
}

/* ------------------------------------------------------------------ */
/* Membership                                                           */

/* Voters 1 and 2, node 3 a learner. */
static void cl_init_learner(cluster *c)
{
	memset(c, 0, sizeof(*c));
	for (int i = 0; i < N; i++) {
		raft_config cf = cfg_for(i, 1, 1);
		cf.n_voters = 2;
		cf.n_learners = 1;
		cf.learners[0] = 3;
		c->r[i] = raft_new(&cf, NULL, NULL, NULL, 0);
	}
}

TEST(learner_never_votes_nor_counts)
{
	cluster c;
	cl_init_learner(&c);
	CHECK(raft_is_learner(c.r[0], 3));
	CHECK(!raft_is_voter(c.r[0], 3));
	/* A learner never campaigns, however long it waits. */
	cl_tick(&c, 2, 100);
	CHECK_EQ(raft_role(c.r[2]), RAFT_FOLLOWER);
	CHECK_EQ(raft_term(c.r[2]), 0);
	raft_campaign(c.r[2]);
	cl_deliver(&c);
	CHECK_EQ(raft_term(c.r[2]), 0);
	elect(&c, 0);
	CHECK_EQ(raft_role(c.r[0]), RAFT_LEADER);
	CHECK_EQ(raft_commit_index(c.r[2]), 1); /* replicated to */
	/* With voter 2 cut off, the learner's acknowledgement does not make
	 * a majority: nothing commits. */
	isolate(&c, 1, 1);
	CHECK_EQ(raft_propose(c.r[0], "x", 1, NULL), 0);
	cl_deliver(&c);
	CHECK_EQ(raft_last_index(c.r[2]), 2);
	CHECK_EQ(raft_commit_index(c.r[0]), 1);
	isolate(&c, 1, 0);
	cl_tick(&c, 0, 1);
	CHECK_EQ(raft_commit_index(c.r[0]), 2);
	/* Leadership cannot go to a learner. */
	CHECK_EQ(raft_transfer_leader(c.r[0], 3), RAFT_E_INVALID);
	cl_free(&c);
}

TEST(promote_only_when_caught_up)
{
	cluster c;
	cl_init_learner(&c);
	elect(&c, 0);
	isolate(&c, 2, 1);
	for (int k = 0; k < 20; k++)
		CHECK_EQ(raft_propose(c.r[0], "abc", 3, NULL), 0);
	cl_deliver(&c);
	CHECK_EQ(raft_propose_conf(c.r[0], RAFT_CONF_PROMOTE, 3, NULL, 0, NULL),
		 RAFT_E_NOT_CAUGHT_UP);
	/* A voter cannot be promoted, a stranger neither. */
	CHECK_EQ(raft_propose_conf(c.r[0], RAFT_CONF_PROMOTE, 2, NULL, 0, NULL), RAFT_E_INVALID);
	CHECK_EQ(raft_propose_conf(c.r[0], RAFT_CONF_PROMOTE, 9, NULL, 0, NULL), RAFT_E_INVALID);
	isolate(&c, 2, 0);
	cl_tick(&c, 0, 3);
	uint64_t idx = 0;
	CHECK_EQ(raft_propose_conf(c.r[0], RAFT_CONF_PROMOTE, 3, "u", 1, &idx), 0);
	CHECK(idx > 0);
	/* One change at a time. */
	CHECK_EQ(raft_propose_conf(c.r[0], RAFT_CONF_ADD_LEARNER, 4, NULL, 0, NULL),
		 RAFT_E_CONF_PENDING);
	cl_deliver(&c);
	cl_tick(&c, 0, 1);
	for (int i = 0; i < N; i++) {
		CHECK(raft_is_voter(c.r[i], 3));
		CHECK(!raft_is_learner(c.r[i], 3));
	}
	/* Now a voter: with voter 1 cut off, 2 and 3 make the majority. */
	isolate(&c, 1, 1);
	CHECK_EQ(raft_propose(c.r[0], "y", 1, NULL), 0);
	cl_deliver(&c);
	CHECK_EQ(raft_commit_index(c.r[0]), raft_last_index(c.r[0]));
	cl_free(&c);
}

TEST(conf_change_waits_for_new_leaders_commit)
{
	cluster c;
	/* A fresh leader whose no-op is still in flight refuses changes
	 * (thesis 4.2.1's erratum: an uncommitted change of an earlier term
	 * could otherwise overlap ours). */
	cl_init(&c, 1, 1);
	raft_campaign(c.r[0]);
	cl_ready_all(&c);
	/* deliver the votes only */
	while (raft_role(c.r[0]) != RAFT_LEADER && c.nq) {
		pkt p = c.q[0];
		raft_msg m;
		memmove(c.q, c.q + 1, (size_t)(c.nq - 1) * sizeof(pkt));
		c.nq--;
		if (raft_msg_decode(p.buf, p.len, &m) == 0) {
			raft_step(c.r[p.to], &m);
			raft_msg_free_decoded(&m);
		}
		free(p.buf);
		cl_ready(&c, p.to);
		cl_ready(&c, 0);
	}
	CHECK_EQ(raft_role(c.r[0]), RAFT_LEADER);
	CHECK(raft_commit_index(c.r[0]) < raft_last_index(c.r[0]));
	CHECK_EQ(raft_propose_conf(c.r[0], RAFT_CONF_ADD_LEARNER, 4, NULL, 0, NULL),
		 RAFT_E_CONF_PENDING);
	cl_deliver(&c);
	CHECK_EQ(raft_propose_conf(c.r[0], RAFT_CONF_ADD_LEARNER, 4, NULL, 0, NULL), 0);
	/* Followers cannot propose changes; the host forwards the request. */
	CHECK_EQ(raft_propose_conf(c.r[1], RAFT_CONF_REMOVE, 3, NULL, 0, NULL), RAFT_E_NOT_LEADER);
	cl_free(&c);
}

TEST(removed_leader_steps_down)
{
	cluster c;
	raft_snapshot_meta m;
	cl_init(&c, 1, 1);
	elect(&c, 0);
	CHECK_EQ(raft_propose_conf(c.r[0], RAFT_CONF_REMOVE, 1, NULL, 0, NULL), 0);
	cl_deliver(&c);
	cl_tick(&c, 0, 2);
	CHECK(raft_removed(c.r[0]));
	CHECK(raft_role(c.r[0]) != RAFT_LEADER);
	/* The others know the change is committed, and elect among them. */
	for (int i = 1; i < N; i++) {
		raft_conf(c.r[i], &m);
		CHECK_EQ(m.n_voters, 2);
		CHECK(!raft_is_voter(c.r[i], 1));
	}
	isolate(&c, 0, 1);
	for (int t = 0; t < 40; t++) {
		cl_tick(&c, 1, 1);
		cl_tick(&c, 2, 1);
	}
	CHECK(raft_role(c.r[1]) == RAFT_LEADER || raft_role(c.r[2]) == RAFT_LEADER);
	/* The removed node never campaigns again. */
	uint64_t term = raft_term(c.r[0]);
	cl_tick(&c, 0, 100);
	CHECK_EQ(raft_term(c.r[0]), term);
	/* The last voter cannot be removed. */
	int l = raft_role(c.r[1]) == RAFT_LEADER ? 1 : 2;
	isolate(&c, 0, 0);
	CHECK_EQ(raft_propose_conf(c.r[l], RAFT_CONF_REMOVE, (uint64_t)(3 - l) + 1, NULL, 0, NULL),
		 0);
	cl_deliver(&c);
	cl_tick(&c, l, 2);
	CHECK_EQ(raft_propose_conf(c.r[l], RAFT_CONF_REMOVE, (uint64_t)l + 1, NULL, 0, NULL),
		 RAFT_E_INVALID);
	cl_free(&c);
}

TEST(snapshot_carries_configuration)
{
	cluster c;
	raft_snapshot_meta m;
	raft_conf_change cc;
	cl_init(&c, 1, 1);
	elect(&c, 0);
	CHECK_EQ(raft_propose_conf(c.r[0], RAFT_CONF_ADD_LEARNER, 7, "http://x", 8, NULL), 0);
	cl_deliver(&c);
	cl_tick(&c, 0, 1);
	raft_conf(c.r[1], &m);
	CHECK_EQ(m.n_learners, 1);
	CHECK_EQ(m.learners[0], 7);
	CHECK_EQ(raft_compact(c.r[0], raft_commit_index(c.r[0]), 0), 0);
	raft_snapshot_conf(c.r[0], &m);
	CHECK_EQ(m.n_voters, 3);
	CHECK_EQ(m.n_learners, 1);
	CHECK_EQ(m.learners[0], 7);
	/* And through the codec, on MSG_SNAP. */
	raft_msg s, d;
	ef_wbuf b;
	memset(&s, 0, sizeof(s));
	s.type = RAFT_MSG_SNAP;
	s.from = 1;
	s.to = 2;
	s.term = 1;
	s.snapshot = m;
	ef_wbuf_init(&b);
	CHECK_EQ(raft_msg_encode(&s, &b), 0);
	CHECK_EQ(raft_msg_decode(b.p, b.len, &d), 0);
	CHECK_EQ(d.snapshot.n_learners, 1);
	CHECK_EQ(d.snapshot.learners[0], 7);
	raft_msg_free_decoded(&d);
	ef_wbuf_free(&b);
	/* A conf entry decodes back into op, id and context. */
	uint8_t ent[9 + 3] = {RAFT_CONF_REMOVE, 0, 0, 0, 0, 0, 0, 0, 42, 'a', 'b', 'c'};
	CHECK_EQ(raft_conf_decode(ent, sizeof(ent), &cc), 0);
	CHECK_EQ(cc.op, RAFT_CONF_REMOVE);
	CHECK_EQ(cc.id, 42);
	CHECK_MEM(cc.context, cc.context_len, "abc");
	CHECK(raft_conf_decode(ent, 8, &cc) != 0);
	ent[0] = 9;
	CHECK(raft_conf_decode(ent, sizeof(ent), &cc) != 0);
	cl_free(&c);
}

TEST(joining_node_learns_configuration)
{
	cluster c;
	raft_snapshot_meta m;
	cl_init(&c, 1, 1);
	/* Node 3 is replaced by a joining node: two voters know of it only
	 * once its addition commits. */
	raft_free(c.r[2]);
	for (int i = 0; i < 2; i++) {
		raft_free(c.r[i]);
		raft_config cf = cfg_for(i, 1, 1);
		cf.n_voters = 2;
		c.r[i] = raft_new(&cf, NULL, NULL, NULL, 0);
	}
	raft_config j = cfg_for(2, 1, 1);
	j.n_voters = 0;
	CHECK(raft_new(&j, NULL, NULL, NULL, 0) == NULL); /* not joining: refused */
	j.joining = 1;
	c.r[2] = raft_new(&j, NULL, NULL, NULL, 0);
	CHECK(c.r[2] != NULL);
	elect(&c, 0);
	for (int k = 0; k < 5; k++)
		raft_propose(c.r[0], "kv", 2, NULL);
	cl_deliver(&c);
	CHECK_EQ(raft_propose_conf(c.r[0], RAFT_CONF_ADD_LEARNER, 3, NULL, 0, NULL), 0);
	cl_deliver(&c);
	cl_tick(&c, 0, 3);
	raft_conf(c.r[2], &m);
	CHECK_EQ(m.n_voters, 2);
	CHECK_EQ(m.n_learners, 1);
	CHECK_EQ(raft_commit_index(c.r[2]), raft_commit_index(c.r[0]));
	CHECK_EQ(c.applied[2], 5);
	cl_free(&c);
}

int main(void)
{
	RUN(election_and_empty_entry);
	RUN(election_by_timeout);
	RUN(propose_without_leader);
	RUN(prevote_blocks_rejoining_node);
	RUN(without_prevote_rejoin_disrupts);
	RUN(check_quorum_step_down);
	RUN(leader_lease_ignores_votes);
	RUN(stale_vote_gets_reject);
	RUN(commit_only_current_term);
	RUN(read_index);
	RUN(read_index_waits_for_term_commit);
	RUN(leader_transfer);
	RUN(snapshot_to_lagging_follower);
	RUN(restart_from_disk_state);
	RUN(one_append_per_follower_per_ready);
	RUN(leader_counts_itself_only_when_persisted);
	RUN(follower_packs_forwarded_proposals);
	RUN(votes_wait_for_the_fsync);
	RUN(codec_round_trip);
	RUN(codec_rejects_garbage);
	RUN(step_rejects_bad_messages);
	RUN(learner_never_votes_nor_counts);
	RUN(promote_only_when_caught_up);
	RUN(conf_change_waits_for_new_leaders_commit);
	RUN(removed_leader_steps_down);
	RUN(snapshot_carries_configuration);
	RUN(joining_node_learns_configuration);
	TEST_EXIT();
}
