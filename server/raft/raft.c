/*
 * raft.c - the node: lifecycle, the single entry point for messages
 * (raft_step), role changes, ticks, proposals and the ready/advance cycle.
 *
 * raft_step compares terms once (thesis 3.3: a higher term turns any role
 * into a follower; a lower-term message is stale) and then dispatches to the
 * step function of the current role, so role code never re-checks terms.
 * PreVote (thesis 9.6) and the leader lease of CheckQuorum (thesis 6.2,
 * 4.2.3) change that comparison: pre-votes never bump a term, and a follower
 * that heard from its leader within an election timeout ignores (pre)vote
 * requests altogether, so a rejoining partitioned node cannot disrupt a
 * healthy leader.
 *
 * Everything the world must do accumulates in the node (messages to send,
 * entries to persist, entries to apply, read states) until the host takes it
 * with raft_get_ready; raft_advance then marks it done.  The node owns no
 * clock, socket, file or thread, and its only randomness is a splitmix64
 * generator seeded from the config, so a simulation replays exactly.
 */
#include "raft_int.h"

#define MAX_COMMITTED_BYTES (4u << 20) /* committed entries per ready */

/* ------------------------------------------------------------------ */
/* Helpers                                                              */

static uint64_t rng_next(raft *r)
{
	uint64_t z = (r->rng += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

void raft_reset_randomized_timeout(raft *r)
{
	int et = r->cfg.election_tick;
	r->randomized_timeout = et + (int)(rng_next(r) % (uint64_t)et);
}

int raft_voter_pos(const raft *r, uint64_t id)
{
	for (uint32_t i = 0; i < r->n_prs; i++)
		if (r->prs[i].id == id)
			return (int)i;
	return -1;
}

progress *raft_progress(raft *r, uint64_t id)
{
	int i = raft_voter_pos(r, id);
	return i < 0 ? NULL : &r->prs[i];
}

/* A majority of the voters: learners never count (thesis 4.2.1). */
uint32_t raft_quorum(const raft *r)
{
	return conf_n_voters(r) / 2 + 1;
}

raft_msg *raft_send(raft *r, uint8_t type, uint64_t to)
{
	raft_msg *m;

	if (r->n_msgs == r->cap_msgs) {
		size_t cap = r->cap_msgs ? r->cap_msgs * 2 : 16;
		raft_msg *p = realloc(r->msgs, cap * sizeof(*p));
		if (p == NULL)
			return NULL;
		r->msgs = p;
		r->cap_msgs = cap;
	}
	m = &r->msgs[r->n_msgs++];
	memset(m, 0, sizeof(*m));
	m->type = type;
	m->from = r->id;
	m->to = to;
	m->term = r->term;
	return m;
}

static void free_msg(raft_msg *m)
{
	for (uint32_t i = 0; i < m->n_entries; i++)
		rdata_unref(m->entries[i].data);
	free(m->entries);
	free(m->context);
}

static void push_read_state(raft_read_state **v, size_t *n, size_t *cap, uint64_t index,
			    const uint8_t *ctx, uint32_t len)
{
	raft_read_state *rs;

	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 8;
		raft_read_state *p = realloc(*v, c * sizeof(*p));
		if (p == NULL)
			return;
		*v = p;
		*cap = c;
	}
	rs = &(*v)[(*n)++];
	rs->index = index;
	rs->context_len = len;
	rs->context = NULL;
	if (len) {
		rs->context = malloc(len);
		if (rs->context == NULL) {
			rs->context_len = 0;
			return;
		}
		memcpy(rs->context, ctx, len);
	}
}

void raft_push_read(raft *r, uint64_t index, const uint8_t *ctx, uint32_t len)
{
	push_read_state(&r->reads, &r->n_reads, &r->cap_reads, index, ctx, len);
}

void raft_push_failed_read(raft *r, const uint8_t *ctx, uint32_t len)
{
	push_read_state(&r->failed, &r->n_failed, &r->cap_failed, 0, ctx, len);
}

/* ------------------------------------------------------------------ */
/* Lifecycle                                                            */

raft *raft_new(const raft_config *cfg, const raft_hard_state *hs, const raft_snapshot_meta *snap,
	       const raft_entry *entries, size_t n_entries)
{
	raft *r;
	uint64_t all[2 * RAFT_MAX_VOTERS];
	uint32_t n_all;

	if (cfg == NULL || cfg->id == RAFT_NONE || cfg->n_voters > RAFT_MAX_VOTERS ||
	    cfg->n_learners > RAFT_MAX_VOTERS - cfg->n_voters || cfg->election_tick < 1 ||
	    cfg->heartbeat_tick < 1 || (cfg->n_voters == 0 && cfg->n_learners))
		return NULL;
	n_all = cfg->n_voters + cfg->n_learners;
	memcpy(all, cfg->voters, cfg->n_voters * sizeof(uint64_t));
	memcpy(all + cfg->n_voters, cfg->learners, cfg->n_learners * sizeof(uint64_t));
	bool self_found = false;
	for (uint32_t i = 0; i < n_all; i++) {
		if (all[i] == RAFT_NONE)
			return NULL;
		for (uint32_t j = 0; j < i; j++)
			if (all[j] == all[i])
				return NULL;
		self_found |= all[i] == cfg->id;
	}
	if (!self_found && !cfg->joining)
		return NULL;
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return NULL;
	r->prop_msg = SIZE_MAX;
	r->cfg = *cfg;
	if (r->cfg.max_inflight == 0)
		r->cfg.max_inflight = 256;
	if (r->cfg.max_msg_bytes == 0)
		r->cfg.max_msg_bytes = 1u << 20;
	r->id = cfg->id;
	r->rng = cfg->seed ^ (cfg->id * 0x2545f4914f6cdd1dull);
	if (snap && snap->index) {
		r->snap = *snap;
		rlog_init(&r->log, snap->index, snap->term);
	} else {
		rlog_init(&r->log, 0, 0);
		r->snap.n_voters = cfg->n_voters;
		memcpy(r->snap.voters, cfg->voters, sizeof(cfg->voters));
		r->snap.n_learners = cfg->n_learners;
		memcpy(r->snap.learners, cfg->learners, sizeof(cfg->learners));
	}
	if (r->snap.n_voters > RAFT_MAX_VOTERS ||
	    r->snap.n_learners > RAFT_MAX_VOTERS - r->snap.n_voters)
		goto fail;
	/* The configuration at the snapshot (or index 0); the committed
	 * changes after it are applied below, once commit is restored. */
	if (conf_set(r, &r->snap))
		goto fail;
	r->conf_unknown = r->snap.n_voters == 0;
	r->conf_scanned = r->snap.index;
	for (size_t i = 0; i < n_entries; i++) {
		if (entries[i].index != rlog_last_index(&r->log) + 1 ||
		    entries[i].term < rlog_last_term(&r->log))
			goto fail;
		if (rlog_append(&r->log, entries[i].term, entries[i].type, entries[i].data,
				entries[i].len))
			goto fail;
	}
	r->log.stable = rlog_last_index(&r->log);
	if (hs) {
		r->term = hs->term;
		r->vote = hs->vote;
		rlog_commit_to(&r->log, hs->commit);
	}
	conf_on_commit(r);
	/* A bootstrap member absent from its own snapshot was removed. */
	if (!cfg->joining && !r->conf_unknown && raft_voter_pos(r, r->id) < 0)
		r->removed = true;
	r->prev_hs.term = r->term;
	r->prev_hs.vote = r->vote;
	r->prev_hs.commit = r->log.committed;
	raft_become_follower(r, r->term, RAFT_NONE);
	r->prev_lead = RAFT_NONE;
	r->prev_role = RAFT_FOLLOWER;
	return r;
fail:
	raft_free(r);
	return NULL;
}

static void release_ready_buffers(raft *r)
{
	free(r->rd_entries);
	r->rd_entries = NULL;
	free(r->rd_committed);
	r->rd_committed = NULL;
	r->rd_committed_hi = 0;
	for (size_t i = 0; i < r->rd_n_msgs; i++)
		free_msg(&r->rd_msgs[i]);
	free(r->rd_msgs);
	r->rd_msgs = NULL;
	r->rd_n_msgs = 0;
	for (size_t i = 0; i < r->rd_n_reads; i++)
		free(r->rd_reads[i].context);
	free(r->rd_reads);
	r->rd_reads = NULL;
	r->rd_n_reads = 0;
	for (size_t i = 0; i < r->rd_n_failed; i++)
		free(r->rd_failed[i].context);
	free(r->rd_failed);
	r->rd_failed = NULL;
	r->rd_n_failed = 0;
}

void raft_free(raft *r)
{
	if (r == NULL)
		return;
	release_ready_buffers(r);
	for (size_t i = 0; i < r->n_msgs; i++)
		free_msg(&r->msgs[i]);
	free(r->msgs);
	for (size_t i = 0; i < r->n_reads; i++)
		free(r->reads[i].context);
	free(r->reads);
	for (size_t i = 0; i < r->n_failed; i++)
		free(r->failed[i].context);
	free(r->failed);
	readindex_free(r);
	for (uint32_t i = 0; i < r->n_prs; i++)
		inflights_free(&r->prs[i].ins);
	rlog_free(&r->log);
	free(r);
}

/* ------------------------------------------------------------------ */
/* Role changes (thesis Figure 3.3)                                     */

static void reset(raft *r, uint64_t term)
{
	if (r->term != term) {
		r->term = term;
		r->vote = RAFT_NONE;
	}
	r->lead = RAFT_NONE;
	r->election_elapsed = 0;
	r->heartbeat_elapsed = 0;
	raft_reset_randomized_timeout(r);
	r->lead_transferee = RAFT_NONE;
	for (uint32_t i = 0; i < r->n_prs; i++) {
		progress *pr = &r->prs[i];
		pr->match = 0;
		pr->next = rlog_last_index(&r->log) + 1;
		pr->state = PR_PROBE;
		pr->probe_sent = false;
		pr->pending_snapshot = 0;
		pr->recent_active = false;
		inflights_reset(&pr->ins);
		if (pr->id == r->id)
			pr->match = r->log.stable; /* only what is on our disk counts */
		pr->vote = -1;
	}
}

void raft_become_follower(raft *r, uint64_t term, uint64_t lead)
{
	bool was_leader = r->role == RAFT_LEADER;

	reset(r, term);
	r->leaving_index = 0;
	if (was_leader)
		readindex_fail_all(r); /* after reset: failures carry the new term */
	r->role = RAFT_FOLLOWER;
	r->step = raft_step_follower;
	r->lead = lead;
}

void raft_become_pre_candidate(raft *r)
{
	/* PreVote (thesis 9.6): no term change, no vote, but the node stops
	 * following, so a leader heard from now is recognised again. */
	if (r->role == RAFT_LEADER)
		readindex_fail_all(r);
	r->role = RAFT_PRE_CANDIDATE;
	r->step = election_step_candidate;
	for (uint32_t i = 0; i < r->n_prs; i++)
		r->prs[i].vote = -1;
	r->lead = RAFT_NONE;
	r->election_elapsed = 0;
	raft_reset_randomized_timeout(r);
}

void raft_become_candidate(raft *r)
{
	bool was_leader = r->role == RAFT_LEADER;

	reset(r, r->term + 1);
	if (was_leader)
		readindex_fail_all(r);
	r->vote = r->id;
	r->role = RAFT_CANDIDATE;
	r->step = election_step_candidate;
}

void raft_become_leader(raft *r)
{
	reset(r, r->term);
	r->role = RAFT_LEADER;
	r->step = raft_step_leader;
	r->lead = r->id;
	for (uint32_t i = 0; i < r->n_prs; i++) {
		/* A leader starts by assuming every follower is reachable. */
		r->prs[i].recent_active = true;
		if (r->prs[i].id == r->id)
			pr_become_replicate(&r->prs[i]);
	}
	/* Thesis 3.6.2 / 6.4: a new leader commits a no-op entry of its own
	 * term, which also commits everything before it. */
	raft_append_local(r, RAFT_ENTRY_EMPTY, NULL, 0);
	/* No membership change until everything before (and this no-op) is
	 * committed: an uncommitted change of an earlier term could otherwise
	 * overlap ours (thesis 4.2.1 and its erratum). */
	r->pending_conf_index = rlog_last_index(&r->log);
}

/* Leader: append to the own log and replicate at once.  The leader counts
 * itself towards the commit quorum only once the host has persisted the
 * entry (raft_advance), so its appends can go out before its own fsync
 * (thesis 10.2.1) without an entry ever counting as committed while it is
 * durable on fewer than a majority. */
int raft_append_local(raft *r, uint8_t type, const uint8_t *data, uint32_t len)
{
	int rc = rlog_append(&r->log, r->term, type, data, len);

	if (rc)
		return rc;
	r->bcast_pending = true; /* sent at the next ready, with its neighbours */
	return 0;
}

/* ------------------------------------------------------------------ */
/* Ticks                                                                */

/* Only a voter campaigns: never a learner, a removed node, or a joining
 * node that does not know the configuration yet. */
static bool promotable(const raft *r)
{
	return !r->conf_unknown && conf_is_voter(r, r->id);
}

static void tick_election(raft *r)
{
	r->election_elapsed++;
	if (promotable(r) && r->election_elapsed >= r->randomized_timeout) {
		r->election_elapsed = 0;
		election_campaign(r, r->cfg.pre_vote != 0, false);
	}
}

static bool quorum_active(raft *r)
{
	uint32_t n = 0;
	for (uint32_t i = 0; i < r->n_prs; i++) {
		if (!r->prs[i].learner && (r->prs[i].id == r->id || r->prs[i].recent_active))
			n++;
		if (r->prs[i].id != r->id)
			r->prs[i].recent_active = false;
	}
	return n >= raft_quorum(r);
}

static void tick_heartbeat(raft *r)
{
	r->heartbeat_elapsed++;
	r->election_elapsed++;
	if (r->election_elapsed >= r->cfg.election_tick) {
		r->election_elapsed = 0;
		/* CheckQuorum (thesis 6.2): step down when a quorum has not been
		 * heard from within an election timeout. */
		if (r->cfg.check_quorum && !quorum_active(r)) {
			raft_become_follower(r, r->term, RAFT_NONE);
			return;
		}
		/* Thesis 3.10: abort a transfer that did not finish within an
		 * election timeout. */
		r->lead_transferee = RAFT_NONE;
	}
	conf_auto_promote(r);
	if (r->heartbeat_elapsed >= r->cfg.heartbeat_tick) {
		r->heartbeat_elapsed = 0;
		repl_bcast_heartbeat(r, readindex_last_seq(r));
	}
}

void raft_tick(raft *r)
{
	if (r->role == RAFT_LEADER)
		tick_heartbeat(r);
	else
		tick_election(r);
}

/* ------------------------------------------------------------------ */
/* Step                                                                 */

static bool msg_valid(const raft *r, const raft_msg *m)
{
	if (m->type < RAFT_MSG_APP || m->type > RAFT_MSG_TRANSFER_LEADER)
		return false;
	if (m->to != r->id || m->from == r->id || m->from == RAFT_NONE)
		return false;
	/* A leader or candidate outside our configuration is one of a newer
	 * configuration we have not applied yet (or are joining): its appends
	 * teach it, and its election may need our vote (a voter added with an
	 * empty log grants it like any voter: only candidates that count us
	 * as a voter ask). */
	if (raft_voter_pos(r, m->from) < 0 && m->type != RAFT_MSG_APP && m->type != RAFT_MSG_SNAP &&
	    m->type != RAFT_MSG_VOTE && m->type != RAFT_MSG_PREVOTE)
		return false;
	if (m->term == 0 && m->type != RAFT_MSG_PROP && m->type != RAFT_MSG_READINDEX &&
	    m->type != RAFT_MSG_TRANSFER_LEADER)
		return false;
	if (m->n_entries && m->entries == NULL)
		return false;
	if (m->context_len && m->context == NULL)
		return false;
	if (m->type == RAFT_MSG_SNAP &&
	    (m->snapshot.index == 0 || m->snapshot.term == 0 || m->snapshot.term > m->term ||
	     m->snapshot.n_voters > RAFT_MAX_VOTERS))
		return false;
	if (m->snapshot.n_voters > RAFT_MAX_VOTERS ||
	    m->snapshot.n_learners > RAFT_MAX_VOTERS - m->snapshot.n_voters)
		return false;
	for (uint32_t i = 0; i < m->n_entries; i++) {
		if (m->entries[i].len && m->entries[i].data == NULL)
			return false;
		if (m->type == RAFT_MSG_APP &&
		    (m->entries[i].index != m->index + 1 + i || m->entries[i].term > m->term ||
		     m->entries[i].term < (i ? m->entries[i - 1].term : m->log_term)))
			return false;
	}
	return true;
}

int raft_step(raft *r, const raft_msg *m)
{
	if (m == NULL || !msg_valid(r, m))
		return RAFT_E_INVALID;

	if (m->term == 0) {
		/* Forwarded requests (PROP, READINDEX, TRANSFER_LEADER) carry
		 * no term: whoever leads now may serve them. */
	} else if (m->term > r->term) {
		if (m->type == RAFT_MSG_VOTE || m->type == RAFT_MSG_PREVOTE) {
			bool force = election_msg_is_transfer(m);
			bool in_lease = r->cfg.check_quorum && r->lead != RAFT_NONE &&
					r->election_elapsed < r->cfg.election_tick;
			if (!force && in_lease)
				return 0; /* leader lease: ignore (thesis 4.2.3) */
		}
		if (m->type == RAFT_MSG_PREVOTE) {
			/* Never change the term for a pre-vote request. */
		} else if (m->type == RAFT_MSG_PREVOTE_RESP && !m->reject) {
			/* A granted pre-vote carries the future term we asked for. */
		} else if (m->type == RAFT_MSG_APP || m->type == RAFT_MSG_HEARTBEAT ||
			   m->type == RAFT_MSG_SNAP) {
			raft_become_follower(r, m->term, m->from);
		} else {
			raft_become_follower(r, m->term, RAFT_NONE);
		}
	} else if (m->term < r->term) {
		if ((r->cfg.check_quorum || r->cfg.pre_vote) &&
		    (m->type == RAFT_MSG_HEARTBEAT || m->type == RAFT_MSG_APP)) {
			/* A stale leader (e.g. after a partition healed, or whose
			 * own term was overtaken while we ignored its candidates
			 * under the lease) learns our term from this response. */
			raft_send(r, RAFT_MSG_APP_RESP, m->from);
		} else if (m->type == RAFT_MSG_PREVOTE || m->type == RAFT_MSG_VOTE) {
			raft_msg *o = raft_send(r,
						m->type == RAFT_MSG_PREVOTE ? RAFT_MSG_PREVOTE_RESP
									    : RAFT_MSG_VOTE_RESP,
						m->from);
			if (o)
				o->reject = 1;
		}
		return 0;
	}

	if (m->type == RAFT_MSG_VOTE || m->type == RAFT_MSG_PREVOTE) {
		election_handle_vote(r, m);
		return 0;
	}
	return r->step(r, m);
}

int raft_step_follower(raft *r, const raft_msg *m)
{
	raft_msg *o;

	switch (m->type) {
	case RAFT_MSG_PROP:
		if (r->lead == RAFT_NONE)
			return RAFT_E_NOT_LEADER;
		/* Forwarded proposals are not forwarded twice (no loops). */
		return RAFT_E_NOT_LEADER;
	case RAFT_MSG_APP:
		r->election_elapsed = 0;
		r->lead = m->from;
		repl_handle_append(r, m);
		break;
	case RAFT_MSG_HEARTBEAT:
		r->election_elapsed = 0;
		r->lead = m->from;
		repl_handle_heartbeat(r, m);
		break;
	case RAFT_MSG_SNAP:
		r->election_elapsed = 0;
		r->lead = m->from;
		repl_handle_snapshot(r, m);
		break;
	case RAFT_MSG_TRANSFER_LEADER:
		if (r->lead == RAFT_NONE)
			return RAFT_E_NOT_LEADER;
		o = raft_send(r, RAFT_MSG_TRANSFER_LEADER, r->lead);
		if (o) {
			o->index = m->index ? m->index : m->from;
			o->term = 0;
		}
		break;
	case RAFT_MSG_TIMEOUT_NOW:
		/* Thesis 3.10: the leader asks us to start an election now,
		 * skipping PreVote; voters ignore their lease for it. */
		if (promotable(r))
			election_campaign(r, false, true);
		break;
	case RAFT_MSG_READINDEX_RESP:
		if (m->reject)
			raft_push_failed_read(r, m->context, m->context_len);
		else
			raft_push_read(r, m->index, m->context, m->context_len);
		break;
	case RAFT_MSG_READINDEX:
		/* Only leaders serve forwarded reads; tell the requester. */
		o = raft_send(r, RAFT_MSG_READINDEX_RESP, m->from);
		if (o) {
			o->reject = 1;
			if (m->context_len && (o->context = malloc(m->context_len)) != NULL) {
				memcpy(o->context, m->context, m->context_len);
				o->context_len = m->context_len;
			}
		}
		break;
	default:
		break;
	}
	return 0;
}

int raft_step_leader(raft *r, const raft_msg *m)
{
	progress *pr = raft_progress(r, m->from);

	if (pr == NULL && m->type != RAFT_MSG_PROP)
		return 0; /* not a member (any more): nothing to track */
	switch (m->type) {
	case RAFT_MSG_PROP:
		if (r->leaving_index)
			return RAFT_E_NOT_LEADER;
		if (r->lead_transferee != RAFT_NONE)
			return RAFT_E_BUSY;
		for (uint32_t i = 0; i < m->n_entries; i++) {
			int rc = raft_append_local(r, RAFT_ENTRY_NORMAL, m->entries[i].data,
						   m->entries[i].len);
			if (rc)
				return rc;
		}
		return 0;
	case RAFT_MSG_READINDEX:
		if (r->leaving_index)
			return RAFT_E_NOT_LEADER;
		return readindex_request(r, m->from, m->context, m->context_len);
	case RAFT_MSG_APP_RESP:
		pr->recent_active = true;
		repl_handle_append_resp(r, m);
		break;
	case RAFT_MSG_HEARTBEAT_RESP:
		pr->recent_active = true;
		repl_handle_heartbeat_resp(r, m);
		break;
	case RAFT_MSG_TRANSFER_LEADER:
		repl_handle_transfer(r, m->index ? m->index : m->from);
		break;
	default:
		break;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Requests from the host                                               */

/* Follower: queue a proposal for the leader, in the MSG_PROP already
 * queued for it if there is one (one message per ready, not per proposal). */
static int forward_proposal(raft *r, const void *data, uint32_t len)
{
	raft_msg *o = NULL;
	raft_entry *v, e = {.type = RAFT_ENTRY_NORMAL};
	bool fresh = false;
	uint32_t n;

	if (r->prop_msg < r->n_msgs && r->msgs[r->prop_msg].type == RAFT_MSG_PROP &&
	    r->msgs[r->prop_msg].to == r->lead && r->prop_bytes + len + 32 <= r->cfg.max_msg_bytes)
		o = &r->msgs[r->prop_msg];
	if (len) {
		e.data = rdata_new(data, len);
		if (e.data == NULL)
			return RAFT_E_NOMEM;
		e.len = len;
	}
	if (o == NULL) { /* none yet this ready, or full: start another */
		o = raft_send(r, RAFT_MSG_PROP, r->lead);
		if (o == NULL) {
			rdata_unref(e.data);
			return RAFT_E_NOMEM;
		}
		o->term = 0; /* proposals are term-less: any leader may take them */
		fresh = true;
	}
	/* entries grow by doubling: capacity is the next power of two */
	n = o->n_entries;
	if ((n & (n - 1)) == 0) {
		v = realloc(o->entries, (n ? 2 * (size_t)n : 1) * sizeof(*v));
		if (v == NULL) {
			rdata_unref(e.data);
			if (fresh)
				r->n_msgs--;
			return RAFT_E_NOMEM;
		}
		o->entries = v;
	}
	o->entries[o->n_entries++] = e;
	if (fresh) {
		r->prop_msg = (size_t)(o - r->msgs);
		r->prop_bytes = 0;
	}
	r->prop_bytes += len + 32;
	return 0;
}

int raft_propose(raft *r, const void *data, uint32_t len, uint64_t *index_out)
{
	int rc;

	if (index_out)
		*index_out = 0;
	if (r->role == RAFT_LEADER) {
		if (r->leaving_index)
			return RAFT_E_NOT_LEADER;
		if (r->lead_transferee != RAFT_NONE)
			return RAFT_E_BUSY;
		rc = raft_append_local(r, RAFT_ENTRY_NORMAL, data, len);
		if (rc == 0 && index_out)
			*index_out = rlog_last_index(&r->log);
		return rc;
	}
	if (r->lead == RAFT_NONE)
		return RAFT_E_NOT_LEADER;
	return forward_proposal(r, data, len);
}

int raft_read_index(raft *r, const void *ctx, uint32_t len)
{
	raft_msg *o;

	if (r->role == RAFT_LEADER && r->leaving_index)
		return RAFT_E_NOT_LEADER;
	if (r->role == RAFT_LEADER)
		return readindex_request(r, r->id, ctx, len);
	if (r->lead == RAFT_NONE)
		return RAFT_E_NOT_LEADER;
	o = raft_send(r, RAFT_MSG_READINDEX, r->lead);
	if (o == NULL)
		return RAFT_E_NOMEM;
	o->term = 0;
	if (len) {
		o->context = malloc(len);
		if (o->context == NULL) {
			r->n_msgs--;
			return RAFT_E_NOMEM;
		}
		memcpy(o->context, ctx, len);
		o->context_len = len;
	}
	return 0;
}

int raft_transfer_leader(raft *r, uint64_t target)
{
	raft_msg *o;

	if (!conf_is_voter(r, target))
		return RAFT_E_INVALID;
	if (r->role == RAFT_LEADER) {
		repl_handle_transfer(r, target);
		return 0;
	}
	if (r->lead == RAFT_NONE)
		return RAFT_E_NOT_LEADER;
	o = raft_send(r, RAFT_MSG_TRANSFER_LEADER, r->lead);
	if (o == NULL)
		return RAFT_E_NOMEM;
	o->term = 0;
	o->index = target;
	return 0;
}

void raft_campaign(raft *r)
{
	if (r->role == RAFT_LEADER || !promotable(r))
		return;
	election_campaign(r, r->cfg.pre_vote != 0, false);
}

/* ------------------------------------------------------------------ */
/* Ready / advance                                                      */

static raft_hard_state hard_state(const raft *r)
{
	raft_hard_state hs = {r->term, r->vote, r->log.committed};
	return hs;
}

static bool hs_equal(const raft_hard_state *a, const raft_hard_state *b)
{
	return a->term == b->term && a->vote == b->vote && a->commit == b->commit;
}

/* A removed leader whose leaving entry committed: time to step down. */
static bool leaving_done(const raft *r)
{
	return r->role == RAFT_LEADER && r->leaving_index && r->log.committed >= r->leaving_index;
}

int raft_has_ready(raft *r)
{
	raft_hard_state hs = hard_state(r);

	return r->bcast_pending || r->lead != r->prev_lead || r->role != r->prev_role ||
	       !hs_equal(&hs, &r->prev_hs) || r->pending_snap ||
	       rlog_last_index(&r->log) > r->log.stable || r->n_msgs || r->conf_base_pending ||
	       r->log.committed > r->log.applied || r->n_reads || r->n_failed || leaving_done(r);
}

static raft_entry *copy_entries(const raft_log *l, uint64_t lo, uint64_t hi, size_t *n)
{
	raft_entry *v;

	*n = 0;
	if (hi < lo)
		return NULL;
	v = malloc((size_t)(hi - lo + 1) * sizeof(*v));
	if (v == NULL)
		return NULL;
	for (uint64_t i = lo; i <= hi; i++)
		v[(*n)++] = *rlog_entry(l, i);
	return v;
}

/* Messages that claim nothing about the sender's disk: a leader's appends
 * and heartbeats (the receiver persists what it acknowledges; the leader's
 * own copy is counted only once persisted), a ReadIndex answer, and what a
 * follower forwards to its leader.  Votes and append responses do claim it. */
static bool msg_needs_no_persist(const raft_msg *m)
{
	switch (m->type) {
	case RAFT_MSG_APP:
	case RAFT_MSG_HEARTBEAT:
	case RAFT_MSG_READINDEX_RESP:
	case RAFT_MSG_PROP:
	case RAFT_MSG_READINDEX:
		return true;
	default:
		return false;
	}
}

/* Stable partition of v: those that may be sent before persisting first
 * (order within each class kept, so a peer's appends stay in order).
 * Returns how many come first; 0 (all wait for the fsync, which is always
 * safe) if no scratch memory is available. */
static size_t partition_early(raft_msg *v, size_t n)
{
	size_t early = 0, late = 0, i;
	raft_msg *tmp;

	for (i = 0; i < n; i++)
		early += msg_needs_no_persist(&v[i]);
	if (early == 0 || early == n)
		return early;
	tmp = malloc(n * sizeof(*tmp));
	if (tmp == NULL)
		return 0;
	for (i = 0; i < n; i++) {
		if (msg_needs_no_persist(&v[i]))
			tmp[late++] = v[i];
	}
	for (i = 0; i < n; i++) {
		if (!msg_needs_no_persist(&v[i]))
			tmp[late++] = v[i];
	}
	memcpy(v, tmp, n * sizeof(*v));
	free(tmp);
	return early;
}

void raft_get_ready(raft *r, raft_ready *rd)
{
	uint64_t lo, hi, bytes = 0;

	memset(rd, 0, sizeof(*rd));
	release_ready_buffers(r); /* a ready not advanced is superseded */
	if (leaving_done(r))
		raft_become_follower(r, r->term, RAFT_NONE);
	repl_flush_bcast(r);

	rd->leader = r->lead;
	rd->role = r->role;
	rd->soft_changed = r->lead != r->prev_lead || r->role != r->prev_role;
	r->prev_lead = r->lead;
	r->prev_role = r->role;

	rd->hs = hard_state(r);
	rd->hs_changed = !hs_equal(&rd->hs, &r->prev_hs);
	/* Term and vote as the previous ready left them: on disk by now. */
	bool term_durable = rd->hs.term == r->prev_hs.term && rd->hs.vote == r->prev_hs.vote;
	r->prev_hs = rd->hs;

	if (r->pending_snap) {
		r->rd_snap = r->pending_snap_meta;
		rd->snapshot = &r->rd_snap;
	}
	if (r->conf_base_pending) {
		r->conf_base_pending = false;
		rd->conf_base = &r->rd_conf_base;
	}

	r->rd_entries =
		copy_entries(&r->log, r->log.stable + 1, rlog_last_index(&r->log), &rd->n_entries);
	rd->entries = r->rd_entries;

	/* Committed entries to apply, bounded per ready. */
	lo = r->log.applied + 1;
	if (lo <= r->log.offset)
		lo = r->log.offset + 1;
	for (hi = lo; hi <= r->log.committed; hi++) {
		bytes += rlog_entry(&r->log, hi)->len;
		if (bytes > MAX_COMMITTED_BYTES && hi > lo)
			break;
	}
	r->rd_committed = copy_entries(&r->log, lo, hi - 1, &rd->n_committed);
	r->rd_committed_hi = rd->n_committed ? hi - 1 : 0;
	rd->committed = r->rd_committed;

	rd->n_msgs_early = term_durable ? partition_early(r->msgs, r->n_msgs) : 0;
	r->prop_msg = SIZE_MAX; /* the messages go to the host */
	r->rd_msgs = r->msgs;
	r->rd_n_msgs = r->n_msgs;
	rd->msgs = r->msgs;
	rd->n_msgs = r->n_msgs;
	r->msgs = NULL;
	r->n_msgs = r->cap_msgs = 0;

	r->rd_reads = r->reads;
	r->rd_n_reads = r->n_reads;
	rd->reads = r->reads;
	rd->n_reads = r->n_reads;
	r->reads = NULL;
	r->n_reads = r->cap_reads = 0;

	r->rd_failed = r->failed;
	r->rd_n_failed = r->n_failed;
	rd->failed_reads = r->failed;
	rd->n_failed_reads = r->n_failed;
	r->failed = NULL;
	r->n_failed = r->cap_failed = 0;
}

void raft_advance(raft *r, const raft_ready *rd)
{
	if (rd->snapshot && r->pending_snap && rd->snapshot->index == r->pending_snap_meta.index)
		r->pending_snap = false;
	if (rd->n_entries) {
		const raft_entry *e = &rd->entries[rd->n_entries - 1];
		/* Only if the log still holds what was persisted (a conflicting
		 * append may have replaced it since). */
		if (e->index > r->log.stable && rlog_match_term(&r->log, e->index, e->term))
			r->log.stable = e->index;
		/* The leader's own copy now counts towards the quorum. */
		progress *self = raft_progress(r, r->id); /* NULL: removed, leaving */
		if (r->role == RAFT_LEADER && self && pr_maybe_update(self, r->log.stable) &&
		    repl_maybe_commit(r))
			r->bcast_pending = true;
	}
	if (rd->n_committed) {
		uint64_t a = rd->committed[rd->n_committed - 1].index;
		if (a > r->log.applied)
			r->log.applied = a;
	}
	release_ready_buffers(r);
}

/* ------------------------------------------------------------------ */
/* Compaction and reports                                               */

int raft_compact(raft *r, uint64_t index, uint64_t keep)
{
	uint64_t t;

	/* The host may compact right after applying, before raft_advance:
	 * what it was handed counts as applied (the ready holds its own
	 * references to those entries). */
	uint64_t applied = r->log.applied;
	if (r->rd_committed_hi > applied)
		applied = r->rd_committed_hi;
	if (index > applied || index > rlog_last_index(&r->log))
		return RAFT_E_INVALID;
	if (index <= r->snap.index)
		return index < r->log.offset ? RAFT_E_COMPACTED : 0;
	t = rlog_term(&r->log, index);
	if (t == 0)
		return RAFT_E_COMPACTED;
	/* The snapshot carries the configuration as of its index. */
	raft_snapshot_meta at;
	conf_at(r, index, &at);
	r->snap = at;
	r->snap.index = index;
	r->snap.term = t;
	if (index > keep)
		rlog_compact(&r->log, index - keep);
	return 0;
}

void raft_report_snapshot(raft *r, uint64_t to, int failed)
{
	progress *pr;

	if (r->role != RAFT_LEADER || (pr = raft_progress(r, to)) == NULL ||
	    pr->state != PR_SNAPSHOT)
		return;
	/* Success: wait in PROBE for the follower's APP_RESP (sent once it
	 * installed the snapshot).  Failure: probe again from scratch. */
	if (failed)
		pr->pending_snapshot = 0;
	pr_become_probe(pr);
	pr->probe_sent = true; /* resume after the next heartbeat response */
}

void raft_report_unreachable(raft *r, uint64_t to)
{
	progress *pr;

	if (r->role != RAFT_LEADER || (pr = raft_progress(r, to)) == NULL)
		return;
	if (pr->state == PR_REPLICATE)
		pr_become_probe(pr);
}

/* ------------------------------------------------------------------ */
/* Accessors                                                            */

uint64_t raft_id(const raft *r)
{
	return r->id;
}
uint64_t raft_leader(const raft *r)
{
	return r->lead;
}
int raft_role(const raft *r)
{
	return r->role;
}
uint64_t raft_term(const raft *r)
{
	return r->term;
}
uint64_t raft_commit_index(const raft *r)
{
	return r->log.committed;
}
uint64_t raft_last_index(const raft *r)
{
	return rlog_last_index(&r->log);
}
uint64_t raft_first_index(const raft *r)
{
	return rlog_first_index(&r->log);
}
uint64_t raft_term_at(const raft *r, uint64_t i)
{
	return rlog_term(&r->log, i);
}
