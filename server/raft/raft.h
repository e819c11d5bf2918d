/*
 * raft.h - Raft consensus as a pure state machine (prefix raft_).
 *
 * The core owns no socket, clock, file or thread and calls no random
 * function of the libc: time arrives as raft_tick() calls, randomness from
 * the seed in the config, messages through raft_step(), and everything the
 * world must do comes back as a raft_ready.  A test can therefore run a whole
 * cluster in one process and replay it exactly from a seed (tests/sim/).
 *
 * The contract with the host, in order, for every ready (as etcd-raft's):
 *   1. raft_get_ready(r, &rd) when raft_has_ready(r).
 *   2. If rd.snapshot: install the snapshot data it names into the state
 *      machine (the data came out of band, see MSG_SNAP below).
 *   3. Send rd.msgs[0 .. rd.n_msgs_early): they claim nothing about this
 *      ready's persistence (a leader's appends and heartbeats, forwarded
 *      proposals), so the leader writes its log in parallel with its
 *      followers (thesis 10.2.1); it counts itself in the commit quorum only
 *      for entries already persisted (raft_advance reports them).
 *   4. Persist rd.entries (appending; an entry whose index is already in the
 *      log replaces it and everything after it) and rd.hs if rd.hs_changed,
 *      and fsync them.  Nothing else of this ready (votes, append
 *      responses) may be sent before the fsync.
 *   5. Send rd.msgs[rd.n_msgs_early .. rd.n_msgs).
 *   6. Apply rd.committed in order; answer rd.reads once the applied index
 *      reaches each read's index.  (Committed entries below rd.entries[0]
 *      were persisted by an earlier ready: the host may apply those before
 *      step 4, so their clients need not wait for this ready's fsync.)
 *   7. raft_advance(r, &rd).  rd's pointers are valid until this call.
 * Every raft_get_ready must be followed by its raft_advance before the next
 * raft_get_ready (a second get_ready discards the unsent messages of the
 * first).  Other calls (raft_step, raft_tick, raft_propose, raft_compact...)
 * are allowed between the two: the ready holds its own references.
 *
 * After a restart (raft_new from disk) the applied index starts at the
 * snapshot's index: committed entries after it come back in rd.committed and
 * the host skips those its state machine already holds.
 *
 * Features: leader election with randomised timeouts in
 * [election_tick, 2*election_tick), PreVote (thesis 9.6) and CheckQuorum
 * (thesis 6.2), pipelined replication with batching (many entries per
 * MSG_APP, bounded by max_msg_bytes), per-follower flow control (probe /
 * replicate / snapshot states, at most max_inflight appends in flight),
 * commit of current-term entries only (thesis 3.6.2, Figure 3.7), leader
 * transfer (thesis 3.10), ReadIndex (thesis 6.4), forwarding of proposals
 * and ReadIndex requests from followers to the leader, log compaction and
 * snapshots (thesis chapter 5).
 *
 * Membership changes (thesis 4.1 and 4.2.1, one server at a time): the
 * leader appends a RAFT_ENTRY_CONF entry (raft_propose_conf) adding a voter
 * or a learner, removing a member or promoting a learner; every node applies
 * it to its configuration when the entry is COMMITTED (as etcd-raft does),
 * and the leader accepts no other change until it is.  A new leader accepts
 * none until its whole log is committed, so two changes are never in
 * flight, even across elections.  Learners (non-voting members) are
 * replicated to but never vote, campaign or count towards any quorum (commit,
 * ReadIndex, CheckQuorum); they are promoted only when caught up
 * (RAFT_E_NOT_CAUGHT_UP otherwise), or automatically with
 * cfg.auto_promote.  A leader that applies its own removal steps down; a
 * removed node never campaigns again.  The configuration travels in
 * snapshots (raft_snapshot_meta) and, for a joining node that starts with
 * none (cfg.n_voters == 0), in the leader's first append (prev index 0):
 * the ready then hands it to the host in rd.conf_base to persist and pass
 * back in the raft_config after a restart.
 */
#ifndef EF_RAFT_H
#define EF_RAFT_H

#include <stddef.h>
#include <stdint.h>

#define RAFT_NONE 0 /* no node / no vote / no leader */

enum raft_role {
	RAFT_FOLLOWER = 0,
	RAFT_PRE_CANDIDATE,
	RAFT_CANDIDATE,
	RAFT_LEADER
};

enum raft_entry_type {
	RAFT_ENTRY_NORMAL = 0, /* data is the host's command */
	RAFT_ENTRY_EMPTY = 1,  /* appended by a new leader; the host skips it */
	RAFT_ENTRY_CONF = 2    /* a membership change (raft_conf_decode); the core applies it
				* at commit, the host updates its member table */
};

/* Membership change operations (RAFT_ENTRY_CONF). */
enum raft_conf_op {
	RAFT_CONF_ADD_VOTER = 1,
	RAFT_CONF_ADD_LEARNER = 2,
	RAFT_CONF_REMOVE = 3,
	RAFT_CONF_PROMOTE = 4 /* learner -> voter */
};

typedef struct raft_conf_change {
	uint8_t op;
	uint64_t id;
	const uint8_t *context; /* the host's bytes (peer URLs...), inside the entry data */
	uint32_t context_len;
} raft_conf_change;

typedef struct raft_entry {
	uint64_t term, index;
	uint8_t type;
	uint32_t len;
	uint8_t *data; /* owned by the core */
} raft_entry;

typedef struct raft_hard_state {
	uint64_t term, vote, commit;
} raft_hard_state;

#define RAFT_MAX_VOTERS 16 /* members (voters + learners) */
/* The configuration as of `index`: voters and learners (disjoint). */
typedef struct raft_snapshot_meta {
	uint64_t index, term;
	uint32_t n_voters;
	uint64_t voters[RAFT_MAX_VOTERS];
	uint32_t n_learners;
	uint64_t learners[RAFT_MAX_VOTERS];
} raft_snapshot_meta;

enum raft_msg_type {
	RAFT_MSG_APP = 1,   /* index,log_term = the entry before entries[0]; commit;
			     * index 0: snapshot = the configuration at index 0 */
	RAFT_MSG_APP_RESP,  /* index = last matching index; reject + reject_hint */
	RAFT_MSG_VOTE,      /* index,log_term = candidate's last entry; context "T" = leader
				  * transfer (voters ignore their leader lease for it) */
	RAFT_MSG_VOTE_RESP, /* reject */
	RAFT_MSG_PREVOTE,   /* term = the term the sender would campaign in */
	RAFT_MSG_PREVOTE_RESP,
	RAFT_MSG_HEARTBEAT,      /* commit (min of follower match and leader commit); context */
	RAFT_MSG_HEARTBEAT_RESP, /* context echoed (ReadIndex confirmation) */
	RAFT_MSG_SNAP,           /* snapshot meta; the data is sent by the host out of band */
	RAFT_MSG_PROP,           /* follower -> leader: forwarded proposal entries */
	RAFT_MSG_READINDEX,      /* follower -> leader: context identifies the request */
	RAFT_MSG_READINDEX_RESP, /* leader -> follower: index, context; reject if it can't serve */
	RAFT_MSG_TIMEOUT_NOW,    /* leader transfer: campaign now, skipping PreVote */
	RAFT_MSG_TRANSFER_LEADER /* follower -> leader: please transfer to index (0: to from) */
};

typedef struct raft_msg {
	uint8_t type;
	uint64_t from, to, term;
	uint64_t log_term, index, commit;
	uint8_t reject;
	uint64_t reject_hint;
	raft_entry *entries;
	uint32_t n_entries;
	uint8_t *context; /* ReadIndex / heartbeat context, owned by whoever owns the msg */
	uint32_t context_len;
	raft_snapshot_meta snapshot; /* MSG_SNAP; MSG_APP from index 0 (n_voters > 0) */
} raft_msg;

typedef struct raft_read_state {
	uint64_t index; /* answer once applied >= index */
	uint8_t *context;
	uint32_t context_len;
} raft_read_state;

typedef struct raft_ready {
	int soft_changed; /* leader or role changed since the last ready */
	uint64_t leader;
	int role;

	int hs_changed;
	raft_hard_state hs;

	raft_snapshot_meta *snapshot; /* non-NULL: install before the entries */
	/* non-NULL: a joining node learned the cluster's configuration at index
	 * 0 from its leader; persist it with this ready's entries and pass it
	 * as cfg.voters/learners after a restart. */
	raft_snapshot_meta *conf_base;

	raft_entry *entries; /* to persist */
	size_t n_entries;

	raft_msg *msgs; /* the first n_msgs_early may go before persisting */
	size_t n_msgs, n_msgs_early;

	raft_entry *committed; /* to apply */
	size_t n_committed;

	raft_read_state *reads;
	size_t n_reads;
	/* ReadIndex requests this node could not serve (no leader, leader
	 * stepped down): answer their clients with an error. */
	raft_read_state *failed_reads;
	size_t n_failed_reads;
} raft_ready;

typedef struct raft_config {
	uint64_t id;
	/* The configuration at index 0 (or at the snapshot, which overrides
	 * it): the bootstrap members, or what rd.conf_base reported.  n_voters
	 * 0: a node joining a running cluster, which learns it from its
	 * leader.  id must be listed unless joining is set. */
	uint64_t voters[RAFT_MAX_VOTERS];
	uint32_t n_voters;
	uint64_t learners[RAFT_MAX_VOTERS];
	uint32_t n_learners;
	int auto_promote; /* leader promotes a learner once caught up (beyond etcd) */
	/* Added at runtime (--initial-cluster-state existing): not in the
	 * configuration at index 0; it learns its own addition from the log. */
	int joining;
	int election_tick;          /* e.g. 10 */
	int heartbeat_tick;         /* e.g. 1 */
	uint32_t max_inflight;      /* appends in flight per follower, e.g. 256 */
	uint32_t max_msg_bytes;     /* entry bytes per MSG_APP, e.g. 1 MiB */
	int pre_vote, check_quorum; /* both on in etcfsd */
	uint64_t seed;              /* randomness for election timeouts */
} raft_config;

typedef struct raft raft;

/* Errors (0 on success). */
enum raft_err {
	RAFT_OK = 0,
	RAFT_E_NOMEM = 1,
	RAFT_E_NOT_LEADER = 2, /* proposal dropped: no leader known */
	RAFT_E_BUSY = 3,       /* leader transfer in progress */
	RAFT_E_INVALID = 4,
	RAFT_E_COMPACTED = 5,
	RAFT_E_NOT_CAUGHT_UP = 6, /* promote: the learner is not in sync with the leader */
	RAFT_E_CONF_PENDING = 7   /* a membership change is not committed yet */
};

/* Create a node.  hs, snap and entries are what the host recovered from disk
 * (zeros / NULL / 0 for a brand-new member); entries follow snap->index
 * contiguously.  The core copies what it needs. */
raft *raft_new(const raft_config *cfg, const raft_hard_state *hs, const raft_snapshot_meta *snap,
	       const raft_entry *entries, size_t n_entries);
void raft_free(raft *r);

void raft_tick(raft *r);
/* Feed a received message. Messages with bad fields, and messages from nodes
 * outside the configuration, are dropped (return RAFT_E_INVALID); except a
 * leader's MSG_APP and MSG_SNAP and a candidate's (PRE)VOTE, which any node
 * accepts: a node whose configuration lags (or a joining one) learns the
 * newer one from them, and a candidate of it may need its vote. */
int raft_step(raft *r, const raft_msg *m);
/* Propose a command. On a follower it is forwarded to the leader (MSG_PROP);
 * RAFT_E_NOT_LEADER when no leader is known, RAFT_E_BUSY during a transfer.
 * *index_out (may be NULL) receives the index on a leader, 0 when forwarded. */
int raft_propose(raft *r, const void *data, uint32_t len, uint64_t *index_out);
/* Linearizable read: ctx identifies the request (copied).  The index comes
 * back in a later ready's reads (or failed_reads).  RAFT_E_NOT_LEADER when
 * no leader is known (nothing will come back). */
int raft_read_index(raft *r, const void *ctx, uint32_t len);
/* Leader transfer to target (thesis 3.10). On a follower it is forwarded. */
int raft_transfer_leader(raft *r, uint64_t target);
/* Membership change (leader only; RAFT_E_NOT_LEADER elsewhere): appends a
 * RAFT_ENTRY_CONF entry carrying op, id and ctx (the host's, copied).
 * RAFT_E_CONF_PENDING while an earlier change (or, on a new leader, any
 * entry of an earlier term) is not committed; RAFT_E_INVALID for an add of
 * a member, a remove or promote of a non-member, a promote of a voter, the
 * removal of the last voter; RAFT_E_NOT_CAUGHT_UP for the promotion of a
 * learner whose match is below 90% of the leader's log (etcd's rule). */
int raft_propose_conf(raft *r, uint8_t op, uint64_t id, const void *ctx, uint32_t len,
		      uint64_t *index_out);
/* Decode a RAFT_ENTRY_CONF entry's data (cc->context points into data). */
int raft_conf_decode(const uint8_t *data, uint32_t len, raft_conf_change *cc);
/* The configuration applied so far (index = the last change's, or the
 * snapshot's), and the configuration of the host's last snapshot. */
void raft_conf(const raft *r, raft_snapshot_meta *out);
void raft_snapshot_conf(const raft *r, raft_snapshot_meta *out);
/* The configuration as of index (between the last snapshot and the commit
 * index; what raft_compact(index) will record), index filled, term 0. */
void raft_conf_at(const raft *r, uint64_t index, raft_snapshot_meta *out);
/* Is id a voter / a learner of the applied configuration? */
int raft_is_voter(const raft *r, uint64_t id);
int raft_is_learner(const raft *r, uint64_t id);
/* The node applied a change that removed it (or restarted on a log that
 * holds one): it never campaigns again; the host should stop it. */
int raft_removed(const raft *r);
/* Leader: the match index of member id (0 if unknown or not leader). */
uint64_t raft_match(const raft *r, uint64_t id);

/* Start an election now (tests, and a member alone in its cluster). */
void raft_campaign(raft *r);

int raft_has_ready(raft *r);
void raft_get_ready(raft *r, raft_ready *rd);
void raft_advance(raft *r, const raft_ready *rd);

/* The host took a snapshot of its state machine at applied index `index`:
 * entries up to index may be dropped, keeping `keep` entries before it for
 * slow followers.  index may be anything handed out in rd.committed, even
 * before raft_advance; RAFT_E_INVALID beyond that.  Later MSG_SNAPs name
 * this snapshot. */
int raft_compact(raft *r, uint64_t index, uint64_t keep);
/* Snapshot transfer outcome for a follower (the host streamed the data). */
void raft_report_snapshot(raft *r, uint64_t to, int failed);
/* The host could not deliver a message to `to` (peer unreachable). */
void raft_report_unreachable(raft *r, uint64_t to);

/* Read-only state. */
uint64_t raft_id(const raft *r);
uint64_t raft_leader(const raft *r);
int raft_role(const raft *r);
uint64_t raft_term(const raft *r);
uint64_t raft_commit_index(const raft *r);
uint64_t raft_last_index(const raft *r);
uint64_t raft_first_index(const raft *r);
/* Term of entry i, 0 if unknown/compacted. */
uint64_t raft_term_at(const raft *r, uint64_t i);

/* Wire codec for raft messages (uses proto/wire.h's ef_wbuf/ef_rbuf; pure).
 * decode allocates entries/context with malloc; raft_msg_free_decoded()
 * releases them. */
struct ef_wbuf;
int raft_msg_encode(const raft_msg *m, struct ef_wbuf *out);
int raft_msg_decode(const uint8_t *p, size_t n, raft_msg *m);
void raft_msg_free_decoded(raft_msg *m);

#endif
