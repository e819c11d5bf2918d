/*
 * membership.c - configuration changes and learners (thesis chapter 4).
 *
 * One server at a time (thesis 4.2.1), not joint consensus: adding or
 * removing a single voter changes the majority by one, so any majority of
 * the old configuration and any majority of the new one overlap, and no two
 * leaders can be elected in one term across the change.  It suffices for
 * every operation etcd's `member` command offers (each adds, removes or
 * promotes exactly one member) and needs no second quorum in the commit
 * rule or elections.  Joint consensus would buy atomic multi-member
 * replacement, which etcd 3.4 does not expose either.
 *
 * A change is a RAFT_ENTRY_CONF entry: u8 op, u64 id (big-endian), then the
 * host's context.  Like etcd-raft (and unlike the thesis, which switches at
 * append), a node applies a change when the entry is committed, so an entry
 * that is later truncated never changed anything and needs no rollback.
 * The safety of commit-time application with single-server steps rests on
 * two rules enforced here: the leader proposes no change while an earlier
 * one is uncommitted (pending_conf_index), and a new leader proposes none
 * until its whole log, including its own no-op of the new term, is
 * committed (the fix of thesis 4.2.1's bug, as in etcd-raft and the
 * LogCabin erratum).
 *
 * Learners (thesis 4.2.1 "catching up new servers", etcd's learners) sit in
 * the progress table with `learner` set: the leader replicates to them, but
 * they are skipped by every count: commit, votes, ReadIndex, CheckQuorum.
 */
#include "raft_int.h"

#define CONF_HDR 9 /* u8 op, u64 id */

static void put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

static uint64_t get_be64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

int raft_conf_decode(const uint8_t *data, uint32_t len, raft_conf_change *cc)
{
	memset(cc, 0, sizeof(*cc));
	if (data == NULL || len < CONF_HDR || data[0] < RAFT_CONF_ADD_VOTER ||
	    data[0] > RAFT_CONF_PROMOTE)
		return RAFT_E_INVALID;
	cc->op = data[0];
	cc->id = get_be64(data + 1);
	if (cc->id == RAFT_NONE)
		return RAFT_E_INVALID;
	cc->context = len > CONF_HDR ? data + CONF_HDR : NULL;
	cc->context_len = len - CONF_HDR;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Configurations as id lists                                           */

static int list_find(const uint64_t *v, uint32_t n, uint64_t id)
{
	for (uint32_t i = 0; i < n; i++)
		if (v[i] == id)
			return (int)i;
	return -1;
}

static void list_del(uint64_t *v, uint32_t *n, uint64_t id)
{
	int i = list_find(v, *n, id);
	if (i < 0)
		return;
	memmove(v + i, v + i + 1, (*n - (uint32_t)i - 1) * sizeof(*v));
	(*n)--;
}

static bool list_add(uint64_t *v, uint32_t *n, uint32_t total, uint64_t id)
{
	if (list_find(v, *n, id) >= 0)
		return true;
	if (total >= RAFT_MAX_VOTERS)
		return false;
	v[(*n)++] = id;
	return true;
}

/* Apply cc to the lists in m; false when it changes nothing. */
static bool meta_apply(raft_snapshot_meta *m, const raft_conf_change *cc)
{
	bool voter = list_find(m->voters, m->n_voters, cc->id) >= 0;
	bool learner = list_find(m->learners, m->n_learners, cc->id) >= 0;
	uint32_t total = m->n_voters + m->n_learners;

	switch (cc->op) {
	case RAFT_CONF_ADD_VOTER:
	case RAFT_CONF_PROMOTE:
		if (voter || (cc->op == RAFT_CONF_PROMOTE && !learner))
			return false;
		list_del(m->learners, &m->n_learners, cc->id);
		return list_add(m->voters, &m->n_voters, total - learner, cc->id);
	case RAFT_CONF_ADD_LEARNER:
		if (voter || learner)
			return false;
		return list_add(m->learners, &m->n_learners, total, cc->id);
	case RAFT_CONF_REMOVE:
		if (!voter && !learner)
			return false;
		list_del(m->voters, &m->n_voters, cc->id);
		list_del(m->learners, &m->n_learners, cc->id);
		return true;
	default:
		return false;
	}
}

uint32_t conf_n_voters(const raft *r)
{
	return r->conf.n_voters;
}

bool conf_is_voter(const raft *r, uint64_t id)
{
	return list_find(r->conf.voters, r->conf.n_voters, id) >= 0;
}

/* ------------------------------------------------------------------ */
/* The progress table follows the configuration                         */

static void init_progress(raft *r, progress *pr, uint64_t id)
{
	memset(pr, 0, sizeof(*pr));
	pr->id = id;
	pr->next = rlog_last_index(&r->log) + 1;
	pr->vote = -1;
	/* A member the leader just added gets a grace period before the
	 * next CheckQuorum round counts it. */
	pr->recent_active = true;
	if (id == r->id)
		pr->match = r->log.stable;
}

/* Make prs hold exactly the members of r->conf, keeping the progress of
 * those that stay. */
static int sync_progress(raft *r)
{
	progress old[RAFT_MAX_VOTERS];
	uint32_t n_old = r->n_prs, n = 0;
	const raft_snapshot_meta *c = &r->conf;

	memcpy(old, r->prs, sizeof(old));
	for (uint32_t k = 0; k < c->n_voters + c->n_learners; k++) {
		bool learner = k >= c->n_voters;
		uint64_t id = learner ? c->learners[k - c->n_voters] : c->voters[k];
		progress *pr = &r->prs[n];
		uint32_t j;

		for (j = 0; j < n_old; j++)
			if (old[j].id == id)
				break;
		if (j < n_old) {
			*pr = old[j];
			old[j].id = RAFT_NONE; /* moved */
		} else {
			init_progress(r, pr, id);
			if (inflights_init(&pr->ins, r->cfg.max_inflight)) {
				r->n_prs = n;
				return RAFT_E_NOMEM;
			}
		}
		pr->learner = learner;
		n++;
	}
	for (uint32_t j = 0; j < n_old; j++)
		if (old[j].id != RAFT_NONE)
			inflights_free(&old[j].ins);
	r->n_prs = n;
	return 0;
}

int conf_set(raft *r, const raft_snapshot_meta *m)
{
	r->conf.n_voters = m->n_voters > RAFT_MAX_VOTERS ? RAFT_MAX_VOTERS : m->n_voters;
	memcpy(r->conf.voters, m->voters, sizeof(m->voters));
	r->conf.n_learners = m->n_learners;
	if (r->conf.n_voters + r->conf.n_learners > RAFT_MAX_VOTERS)
		r->conf.n_learners = RAFT_MAX_VOTERS - r->conf.n_voters;
	memcpy(r->conf.learners, m->learners, sizeof(m->learners));
	r->conf.index = m->index;
	r->conf_unknown = false;
	return sync_progress(r);
}

/* ------------------------------------------------------------------ */
/* Applying committed changes                                           */

static void apply_change(raft *r, uint64_t index, const raft_conf_change *cc)
{
	bool was_leader = r->role == RAFT_LEADER;

	r->conf.index = index;
	if (!meta_apply(&r->conf, cc))
		return;
	if (sync_progress(r))
		return; /* out of memory: the table lags; the next change resyncs */
	if (cc->op == RAFT_CONF_REMOVE && cc->id == r->id)
		r->removed = true;
	if (!was_leader)
		return;
	if (!conf_is_voter(r, r->id) && r->leaving_index == 0) {
		/* Thesis 4.2.2: a leader that is no longer a voter steps
		 * down.  Not at once: the others may not know yet that the
		 * change is committed, and without that knowledge they still
		 * need our vote.  An empty entry appended now is sent with a
		 * commit index covering the change; once a majority of the
		 * new voters hold it (it commits), they know, and we step
		 * down (raft_get_ready).  Meanwhile we take no proposal. */
		raft_append_local(r, RAFT_ENTRY_EMPTY, NULL, 0);
		r->leaving_index = rlog_last_index(&r->log);
	}
	if (r->lead_transferee != RAFT_NONE && !conf_is_voter(r, r->lead_transferee))
		r->lead_transferee = RAFT_NONE;
	readindex_on_conf_change(r);
	/* The quorum changed: what is committed may have changed too (a
	 * removal shrinks it); new members need their first append. */
	repl_maybe_commit(r);
	r->bcast_pending = true;
}

void conf_on_commit(raft *r)
{
	if (r->conf_scanning || r->conf_unknown)
		return; /* unknown: replayed once the base is learned */
	r->conf_scanning = true;
	if (r->conf_scanned < r->log.offset)
		r->conf_scanned = r->log.offset; /* a snapshot carried it */
	while (r->conf_scanned < r->log.committed) {
		uint64_t i = ++r->conf_scanned;
		raft_entry *e = rlog_entry(&r->log, i);
		raft_conf_change cc;

		if (e && e->type == RAFT_ENTRY_CONF && raft_conf_decode(e->data, e->len, &cc) == 0)
			apply_change(r, i, &cc);
	}
	r->conf_scanning = false;
}

void conf_at(const raft *r, uint64_t index, raft_snapshot_meta *out)
{
	*out = r->snap;
	for (uint64_t i = r->snap.index + 1; i <= index; i++) {
		raft_entry *e = rlog_entry(&r->log, i);
		raft_conf_change cc;
		if (e && e->type == RAFT_ENTRY_CONF && raft_conf_decode(e->data, e->len, &cc) == 0)
			meta_apply(out, &cc);
	}
	out->index = index;
}

/* ------------------------------------------------------------------ */
/* Proposing                                                            */

/* etcd's isLearnerReady: the learner's match is at least 90% of the
 * leader's (etcdserver readyPercent 0.9), and it answers. */
bool conf_learner_in_sync(const raft *r, const progress *pr)
{
	uint64_t lead_match = rlog_last_index(&r->log);
	return pr->match > 0 && pr->recent_active && pr->match * 10 >= lead_match * 9;
}

int raft_propose_conf(raft *r, uint8_t op, uint64_t id, const void *ctx, uint32_t len,
		      uint64_t *index_out)
{
	raft_snapshot_meta next = r->conf;
	raft_conf_change cc = {.op = op, .id = id};
	uint8_t *buf;
	progress *pr;
	int rc;

	if (index_out)
		*index_out = 0;
	if (r->role != RAFT_LEADER || r->leaving_index)
		return RAFT_E_NOT_LEADER;
	if (id == RAFT_NONE || op < RAFT_CONF_ADD_VOTER || op > RAFT_CONF_PROMOTE ||
	    len > UINT32_MAX - CONF_HDR)
		return RAFT_E_INVALID;
	if (r->lead_transferee != RAFT_NONE)
		return RAFT_E_BUSY;
	if (r->pending_conf_index > r->log.committed)
		return RAFT_E_CONF_PENDING;
	if (!meta_apply(&next, &cc) || next.n_voters == 0)
		return RAFT_E_INVALID;
	if (op == RAFT_CONF_PROMOTE) {
		pr = raft_progress(r, id);
		if (pr == NULL || !conf_learner_in_sync(r, pr))
			return RAFT_E_NOT_CAUGHT_UP;
	}
	buf = malloc(CONF_HDR + (size_t)len);
	if (buf == NULL)
		return RAFT_E_NOMEM;
	buf[0] = op;
	put_be64(buf + 1, id);
	if (len)
		memcpy(buf + CONF_HDR, ctx, len);
	rc = raft_append_local(r, RAFT_ENTRY_CONF, buf, CONF_HDR + len);
	free(buf);
	if (rc)
		return rc;
	r->pending_conf_index = rlog_last_index(&r->log);
	if (index_out)
		*index_out = r->pending_conf_index;
	return 0;
}

void conf_auto_promote(raft *r)
{
	if (!r->cfg.auto_promote || r->role != RAFT_LEADER ||
	    r->pending_conf_index > r->log.committed)
		return;
	for (uint32_t i = 0; i < r->n_prs; i++)
		if (r->prs[i].learner && conf_learner_in_sync(r, &r->prs[i])) {
			raft_propose_conf(r, RAFT_CONF_PROMOTE, r->prs[i].id, NULL, 0, NULL);
			return; /* one at a time */
		}
}

/* ------------------------------------------------------------------ */
/* Accessors                                                            */

void raft_conf(const raft *r, raft_snapshot_meta *out)
{
	*out = r->conf;
	out->term = rlog_term(&r->log, r->conf.index);
}

void raft_snapshot_conf(const raft *r, raft_snapshot_meta *out)
{
	*out = r->snap;
}

void raft_conf_at(const raft *r, uint64_t index, raft_snapshot_meta *out)
{
	conf_at(r, index, out);
	out->term = 0;
}

int raft_is_voter(const raft *r, uint64_t id)
{
	return conf_is_voter(r, id);
}

int raft_is_learner(const raft *r, uint64_t id)
{
	return list_find(r->conf.learners, r->conf.n_learners, id) >= 0;
}

int raft_removed(const raft *r)
{
	return r->removed;
}

uint64_t raft_match(const raft *r, uint64_t id)
{
	for (uint32_t i = 0; i < r->n_prs; i++)
		if (r->prs[i].id == id)
			return r->role == RAFT_LEADER ? r->prs[i].match : 0;
	return 0;
}
