/*
 * election.c - leader election (thesis 3.4), PreVote (thesis 9.6) and the
 * candidate roles.
 *
 * A follower whose randomised election timeout expires first runs a
 * pre-election when PreVote is on: it asks every voter whether it *would*
 * vote for it in term+1, without changing any term.  Only with a majority of
 * yeses does it become a real candidate, bump its term and ask for votes.
 * A node cut off from the majority therefore never inflates its term, and
 * when it rejoins it cannot force the healthy leader to step down.
 *
 * Voters grant a (pre)vote only to a candidate whose log is at least as up
 * to date as their own (thesis 3.6.1, the election restriction); a real vote
 * is also limited to one candidate per term and is persisted (hs.vote) before
 * the response leaves the node, per the host contract.
 *
 * A campaign started by MSG_TIMEOUT_NOW (leader transfer, thesis 3.10) skips
 * PreVote and marks its vote requests with the context "T" so voters ignore
 * their leader lease for it.
 */
#include "raft_int.h"

static const uint8_t transfer_ctx[1] = {'T'};

bool election_msg_is_transfer(const raft_msg *m)
{
	return m->type == RAFT_MSG_VOTE && m->context_len == 1 && m->context[0] == 'T';
}

/* Record a (pre)vote; returns granted count and sets *rejected.  Only
 * voters count: a learner's answer (it may not know it is one) is ignored. */
static uint32_t tally(raft *r, uint64_t from, bool granted, uint32_t *rejected)
{
	progress *pr = raft_progress(r, from);
	uint32_t g = 0;

	if (pr && pr->vote < 0)
		pr->vote = granted ? 1 : 0;
	*rejected = 0;
	for (uint32_t i = 0; i < r->n_prs; i++) {
		if (r->prs[i].learner)
			continue;
		if (r->prs[i].vote == 1)
			g++;
		else if (r->prs[i].vote == 0)
			(*rejected)++;
	}
	return g;
}

void election_campaign(raft *r, bool pre_vote, bool transfer)
{
	uint64_t term;
	uint8_t type;
	uint32_t rej;

	if (pre_vote) {
		raft_become_pre_candidate(r);
		term = r->term + 1;
		type = RAFT_MSG_PREVOTE;
	} else {
		raft_become_candidate(r);
		term = r->term;
		type = RAFT_MSG_VOTE;
	}
	/* Our own vote. */
	if (tally(r, r->id, true, &rej) >= raft_quorum(r)) {
		/* Single-member cluster: won already. */
		if (pre_vote)
			election_campaign(r, false, transfer);
		else
			raft_become_leader(r);
		return;
	}
	for (uint32_t i = 0; i < r->n_prs; i++) {
		raft_msg *m;
		if (r->prs[i].id == r->id || r->prs[i].learner)
			continue;
		m = raft_send(r, type, r->prs[i].id);
		if (m == NULL)
			continue;
		m->term = term;
		m->index = rlog_last_index(&r->log);
		m->log_term = rlog_last_term(&r->log);
		if (transfer && (m->context = malloc(1)) != NULL) {
			memcpy(m->context, transfer_ctx, 1);
			m->context_len = 1;
		}
	}
}

void election_handle_vote(raft *r, const raft_msg *m)
{
	bool pre = m->type == RAFT_MSG_PREVOTE;
	/* We can vote for m->from if we already did in this term, or have
	 * voted for nobody and follow no leader, or (PreVote) the request is
	 * for a future term, where our vote is still free. */
	bool can_vote = r->vote == m->from || (r->vote == RAFT_NONE && r->lead == RAFT_NONE) ||
			(pre && m->term > r->term);
	raft_msg *o;

	if (can_vote && rlog_is_up_to_date(&r->log, m->index, m->log_term)) {
		o = raft_send(r, pre ? RAFT_MSG_PREVOTE_RESP : RAFT_MSG_VOTE_RESP, m->from);
		if (o)
			o->term = m->term; /* pre-vote: the future term asked about */
		if (!pre) {
			r->election_elapsed = 0;
			r->vote = m->from;
		}
	} else {
		o = raft_send(r, pre ? RAFT_MSG_PREVOTE_RESP : RAFT_MSG_VOTE_RESP, m->from);
		if (o)
			o->reject = 1;
	}
}

int election_step_candidate(raft *r, const raft_msg *m)
{
	uint8_t resp = r->role == RAFT_PRE_CANDIDATE ? RAFT_MSG_PREVOTE_RESP : RAFT_MSG_VOTE_RESP;
	uint32_t granted, rejected;

	switch (m->type) {
	case RAFT_MSG_PROP:
		return RAFT_E_NOT_LEADER;
	case RAFT_MSG_APP:
	case RAFT_MSG_HEARTBEAT:
	case RAFT_MSG_SNAP:
		/* A leader of our term exists (thesis 3.4): follow it. */
		raft_become_follower(r, m->term, m->from);
		return raft_step_follower(r, m);
	case RAFT_MSG_TIMEOUT_NOW:
		return 0; /* already campaigning */
	case RAFT_MSG_READINDEX:
	case RAFT_MSG_READINDEX_RESP:
	case RAFT_MSG_TRANSFER_LEADER:
		return raft_step_follower(r, m);
	default:
		break;
	}
	if (m->type != resp)
		return 0;
	granted = tally(r, m->from, !m->reject, &rejected);
	if (granted >= raft_quorum(r)) {
		if (r->role == RAFT_PRE_CANDIDATE)
			election_campaign(r, false, false);
		else
			raft_become_leader(r);
	} else if (rejected >= raft_quorum(r)) {
		/* Lost: go back to following whoever wins (thesis 3.4). */
		raft_become_follower(r, r->term, RAFT_NONE);
	}
	return 0;
}
