/*
 * replication.c - log replication (thesis 3.5), the commit rule (thesis
 * 3.6.2), snapshots to lagging followers (thesis 5.3) and leader transfer
 * (thesis 3.10).
 *
 * Leader side: for each follower, repl_send_append builds one MSG_APP from
 * progress->next (at most max_msg_bytes of entries), or a MSG_SNAP when the
 * entries it needs were compacted away.  The progress state machine
 * (progress.c) decides whether another append may go out now.  A follower's
 * APP_RESP moves match forward; the leader commits the largest index a
 * majority has matched, but only if that entry is of the leader's own term
 * (Figure 3.7: counting replicas of an older term's entry is unsafe).
 *
 * Follower side: MSG_APP is checked against the entry before it (the log
 * matching property), conflicting suffixes are truncated, and the reply
 * carries either the last matched index or a rejection with a hint (the
 * last index whose term is <= the leader's prev term) so the leader can skip
 * a whole term per round trip instead of one entry.
 */
#include "raft_int.h"

static raft_entry *share_entries(raft *r, uint64_t lo, uint64_t max_bytes, uint32_t *n_out)
{
	uint64_t last = rlog_last_index(&r->log), bytes = 0, hi;
	raft_entry *v;
	uint32_t n = 0;

	*n_out = 0;
	if (lo > last)
		return NULL;
	for (hi = lo; hi <= last; hi++) {
		bytes += rlog_entry(&r->log, hi)->len + 32;
		if (bytes > max_bytes && hi > lo)
			break;
	}
	v = malloc((size_t)(hi - lo) * sizeof(*v));
	if (v == NULL)
		return NULL;
	for (uint64_t i = lo; i < hi; i++) {
		v[n] = *rlog_entry(&r->log, i);
		rdata_ref(v[n].data);
		n++;
	}
	*n_out = n;
	return v;
}

static void send_snapshot(raft *r, progress *pr)
{
	raft_msg *m = raft_send(r, RAFT_MSG_SNAP, pr->id);

	if (m == NULL)
		return;
	m->snapshot = r->snap;
	pr_become_snapshot(pr, r->snap.index);
}

/* Send one append (or snapshot) to `to` if its flow control allows.
 * Returns whether a message was queued. */
bool repl_send_append(raft *r, uint64_t to, bool send_if_empty)
{
	progress *pr = raft_progress(r, to);
	uint64_t prev, prev_term;
	raft_msg *m;

	if (pr == NULL || to == r->id || pr_is_paused(pr))
		return false;
	prev = pr->next - 1;
	prev_term = rlog_term(&r->log, prev);
	if (prev < r->log.offset || (prev_term == 0 && prev > 0)) {
		/* The entries it needs are compacted: thesis 5.3. */
		send_snapshot(r, pr);
		return true;
	}
	if (!send_if_empty && pr->next > rlog_last_index(&r->log))
		return false;
	m = raft_send(r, RAFT_MSG_APP, to);
	if (m == NULL)
		return false;
	m->index = prev;
	m->log_term = prev_term;
	m->commit = r->log.committed;
	if (prev == 0 && r->snap.index == 0)
		m->snapshot = r->snap; /* the configuration at index 0, for a joiner */
	m->entries = share_entries(r, pr->next, r->cfg.max_msg_bytes, &m->n_entries);
	if (m->n_entries) {
		uint64_t last = m->entries[m->n_entries - 1].index;
		if (pr->state == PR_REPLICATE) {
			/* Pipelining: optimistically assume delivery. */
			pr->next = last + 1;
			inflights_add(&pr->ins, last);
		} else {
			pr->probe_sent = true;
		}
	} else if (pr->state == PR_PROBE) {
		pr->probe_sent = true;
	}
	return true;
}

void repl_bcast_append(raft *r)
{
	for (uint32_t i = 0; i < r->n_prs; i++)
		if (r->prs[i].id != r->id)
			repl_send_append(r, r->prs[i].id, true);
}

/* Send what appends and commits left pending: to each follower the entries
 * it lacks, or, when it lacks none and no append to it is queued, an empty
 * append carrying the commit index.  Appends already queued this round get
 * the current commit index, which only grows. */
void repl_flush_bcast(raft *r)
{
	if (!r->bcast_pending)
		return;
	r->bcast_pending = false;
	if (r->role != RAFT_LEADER)
		return;
	for (uint32_t i = 0; i < r->n_prs; i++) {
		uint64_t id = r->prs[i].id;
		bool queued = false;
		if (id == r->id)
			continue;
		for (size_t j = 0; j < r->n_msgs; j++) {
			raft_msg *m = &r->msgs[j];
			if (m->type == RAFT_MSG_APP && m->to == id && m->term == r->term) {
				m->commit = r->log.committed;
				queued = true;
			}
		}
		if (!repl_send_append(r, id, false) && !queued)
			repl_send_append(r, id, true);
	}
}

void repl_bcast_heartbeat(raft *r, uint64_t ctx_seq)
{
	for (uint32_t i = 0; i < r->n_prs; i++) {
		progress *pr = &r->prs[i];
		raft_msg *m;
		if (pr->id == r->id)
			continue;
		m = raft_send(r, RAFT_MSG_HEARTBEAT, pr->id);
		if (m == NULL)
			continue;
		/* Never tell a follower to commit past what it is known to
		 * hold: it may not have those entries yet. */
		m->commit = pr->match < r->log.committed ? pr->match : r->log.committed;
		if (ctx_seq && (m->context = malloc(8)) != NULL) {
			memcpy(m->context, &ctx_seq, 8);
			m->context_len = 8;
		}
		/* A member silent since the last CheckQuorum round may not
		 * know us yet (its configuration lags ours, or it is joining):
		 * it drops our heartbeats but accepts appends, so probe again. */
		if (pr->state == PR_PROBE && pr->probe_sent && !pr->recent_active) {
			pr->probe_sent = false;
			repl_send_append(r, pr->id, true);
		}
	}
}

bool repl_maybe_commit(raft *r)
{
	uint64_t m[RAFT_MAX_VOTERS], q;
	uint32_t n = 0;

	if (conf_n_voters(r) == 0)
		return false;
	/* Sort the voters' matches descending; the quorum-th largest is
	 * replicated on a majority (learners do not count). */
	for (uint32_t i = 0; i < r->n_prs; i++)
		if (!r->prs[i].learner)
			m[n++] = r->prs[i].match;
	for (uint32_t i = 1; i < n; i++)
		for (uint32_t j = i; j > 0 && m[j - 1] < m[j]; j--) {
			uint64_t t = m[j];
			m[j] = m[j - 1];
			m[j - 1] = t;
		}
	q = m[raft_quorum(r) - 1];
	/* Thesis 3.6.2: only an entry of the current term is committed by
	 * counting replicas; earlier ones follow by the log matching property. */
	if (q > r->log.committed && rlog_term(&r->log, q) == r->term) {
		rlog_commit_to(&r->log, q);
		readindex_on_commit(r);
		conf_on_commit(r);
		return true;
	}
	return false;
}

void repl_send_timeout_now(raft *r, uint64_t to)
{
	raft_send(r, RAFT_MSG_TIMEOUT_NOW, to);
}

void repl_handle_transfer(raft *r, uint64_t target)
{
	progress *pr = raft_progress(r, target);

	if (pr == NULL || target == r->id || pr->learner)
		return;
	if (r->lead_transferee == target)
		return; /* already running */
	r->lead_transferee = target;
	r->election_elapsed = 0; /* abort after one election timeout */
	if (pr->match == rlog_last_index(&r->log))
		repl_send_timeout_now(r, target);
	else
		repl_send_append(r, target, true);
}

/* ------------------------------------------------------------------ */
/* Leader: responses                                                    */

void repl_handle_append_resp(raft *r, const raft_msg *m)
{
	progress *pr = raft_progress(r, m->from);

	if (pr == NULL)
		return;
	if (m->reject) {
		uint64_t hint = m->reject_hint;
		/* Skip, on our side too, every entry whose term is above the
		 * follower's term at hint (etcd's findConflictByTerm). */
		if (m->log_term > 0)
			hint = rlog_find_conflict_by_term(&r->log, hint, m->log_term);
		if (pr_maybe_decr_to(pr, m->index, hint)) {
			if (pr->state == PR_REPLICATE)
				pr_become_probe(pr);
			repl_send_append(r, m->from, true);
		}
		return;
	}
	bool was_paused = pr_is_paused(pr);

	if (m->index > rlog_last_index(&r->log))
		return; /* acknowledges what we never sent: ignore */

	if (!pr_maybe_update(pr, m->index))
		return;
	switch (pr->state) {
	case PR_PROBE:
		pr_become_replicate(pr);
		break;
	case PR_SNAPSHOT:
		if (pr->match + 1 >= rlog_first_index(&r->log)) {
			pr_become_probe(pr);
			pr_become_replicate(pr);
		}
		break;
	case PR_REPLICATE:
		inflights_free_le(&pr->ins, m->index);
		break;
	}
	if (repl_maybe_commit(r)) {
		/* Tell everyone the new commit index (once per ready). */
		r->bcast_pending = true;
	} else if (was_paused) {
		/* It may have missed the commit index while paused. */
		repl_send_append(r, m->from, true);
	}
	while (repl_send_append(r, m->from, false))
		;
	if (m->from == r->lead_transferee && pr->match == rlog_last_index(&r->log))
		repl_send_timeout_now(r, m->from);
}

void repl_handle_heartbeat_resp(raft *r, const raft_msg *m)
{
	progress *pr = raft_progress(r, m->from);

	if (pr == NULL)
		return;
	pr->probe_sent = false;
	if (pr->state == PR_REPLICATE && inflights_full(&pr->ins))
		inflights_free_first(&pr->ins);
	if (pr->match < rlog_last_index(&r->log))
		repl_send_append(r, m->from, true);
	if (m->context_len)
		readindex_on_heartbeat_resp(r, m->from, m->context, m->context_len);
}

/* ------------------------------------------------------------------ */
/* Follower: requests                                                   */

void repl_handle_append(raft *r, const raft_msg *m)
{
	raft_msg *o;
	uint64_t last_new;
	int rc;

	if (r->conf_unknown) {
		/* Joining: only an append from the start of the log, which
		 * carries the configuration at index 0, or a snapshot, tells
		 * us who the members are. */
		if (m->index != 0 || m->snapshot.n_voters == 0) {
			o = raft_send(r, RAFT_MSG_APP_RESP, m->from);
			if (o) {
				o->index = m->index;
				o->reject = 1;
			}
			return;
		}
		if (conf_set(r, &m->snapshot))
			return;
		r->snap.n_voters = r->conf.n_voters;
		memcpy(r->snap.voters, r->conf.voters, sizeof(r->snap.voters));
		r->snap.n_learners = r->conf.n_learners;
		memcpy(r->snap.learners, r->conf.learners, sizeof(r->snap.learners));
		r->rd_conf_base = r->snap;
		r->conf_base_pending = true;
		r->conf_scanned = r->snap.index; /* replay our log's changes */
	}
	if (m->index < r->log.committed) {
		/* Everything up to our commit index already matches. */
		o = raft_send(r, RAFT_MSG_APP_RESP, m->from);
		if (o)
			o->index = r->log.committed;
		return;
	}
	rc = rlog_maybe_append(&r->log, m->index, m->log_term, m->commit, m->entries, m->n_entries,
			       &last_new);
	if (rc < 0)
		return; /* out of memory: the leader will retry */
	conf_on_commit(r);
	o = raft_send(r, RAFT_MSG_APP_RESP, m->from);
	if (o == NULL)
		return;
	if (rc > 0) {
		o->index = last_new;
		return;
	}
	/* Rejection with a hint: the largest index <= min(prev, last) whose
	 * term is <= the leader's prev term can be the match point. */
	o->index = m->index;
	o->reject = 1;
	o->reject_hint = rlog_find_conflict_by_term(&r->log, m->index, m->log_term);
	o->log_term = rlog_term(&r->log, o->reject_hint);
}

void repl_handle_heartbeat(raft *r, const raft_msg *m)
{
	raft_msg *o;

	rlog_commit_to(&r->log, m->commit);
	conf_on_commit(r);
	o = raft_send(r, RAFT_MSG_HEARTBEAT_RESP, m->from);
	if (o && m->context_len && (o->context = malloc(m->context_len)) != NULL) {
		memcpy(o->context, m->context, m->context_len);
		o->context_len = m->context_len;
	}
}

void repl_handle_snapshot(raft *r, const raft_msg *m)
{
	const raft_snapshot_meta *s = &m->snapshot;
	raft_msg *o;

	if (s->index <= r->log.committed) {
		o = raft_send(r, RAFT_MSG_APP_RESP, m->from);
		if (o)
			o->index = r->log.committed;
		return;
	}
	if (rlog_match_term(&r->log, s->index, s->term)) {
		/* We hold the snapshot's last entry: just fast-forward commit. */
		rlog_commit_to(&r->log, s->index);
		conf_on_commit(r);
		o = raft_send(r, RAFT_MSG_APP_RESP, m->from);
		if (o)
			o->index = s->index;
		return;
	}
	/* Thesis 5.3: discard the whole log, the snapshot replaces it. */
	rlog_restore(&r->log, s->index, s->term);
	r->snap = *s;
	if (r->snap.n_voters > RAFT_MAX_VOTERS)
		r->snap.n_voters = RAFT_MAX_VOTERS;
	/* The snapshot's configuration replaces ours (thesis 5.3). */
	conf_set(r, &r->snap);
	r->conf_scanned = s->index;
	r->pending_snap = true;
	r->pending_snap_meta = r->snap;
	o = raft_send(r, RAFT_MSG_APP_RESP, m->from);
	if (o)
		o->index = s->index;
}
