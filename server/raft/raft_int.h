/*
 * raft_int.h - private state of the Raft core, shared by the files of
 * server/raft/.  Nothing here is visible to the host; raft.h is the contract.
 *
 * Split by concern, as canonical/raft does:
 *   raft.c        node lifecycle, term handling in raft_step, role changes,
 *                 ticks, ready/advance, accessors
 *   log.c         the in-memory log with its compaction offset
 *   progress.c    per-follower flow control and the inflight ring
 *   election.c    campaigns, PreVote, vote granting, the candidate role
 *   replication.c leader and follower sides of MSG_APP / HEARTBEAT / SNAP,
 *                 commit rule, leader transfer
 *   readindex.c   ReadIndex (thesis 6.4)
 *   membership.c  configuration changes applied at commit, learners
 *   codec.c       raft_msg_encode / raft_msg_decode
 */
#ifndef EF_RAFT_INT_H
#define EF_RAFT_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "raft.h"

/* ------------------------------------------------------------------ */
/* Reference-counted entry payloads.                                    */
/* Entry data lives in a buffer with a hidden reference count, so the log,
 * the ready handed to the host and queued messages can share one copy;
 * a truncation or compaction never frees data a pending ready still shows. */
uint8_t *rdata_new(const void *p, uint32_t len); /* NULL when len == 0 or OOM */
void rdata_ref(uint8_t *d);
void rdata_unref(uint8_t *d);

/* ------------------------------------------------------------------ */
/* log.c                                                                */

typedef struct raft_log {
	/* ents[i].index == offset + 1 + i, terms non-decreasing. */
	raft_entry *ents;
	size_t n, cap;
	/* Last index dropped by compaction (or of the snapshot installed) and
	 * its term: the log answers term_at(offset) but holds no entry there. */
	uint64_t offset, offset_term;
	/* Entries <= stable are on the host's disk.  offset <= stable <= last. */
	uint64_t stable;
	/* committed <= last (never decreases); applied <= committed. */
	uint64_t committed, applied;
} raft_log;

void rlog_init(raft_log *l, uint64_t offset, uint64_t offset_term);
void rlog_free(raft_log *l);
uint64_t rlog_last_index(const raft_log *l);
uint64_t rlog_last_term(const raft_log *l);
uint64_t rlog_first_index(const raft_log *l); /* offset + 1 */
/* Term of entry i; offset_term at offset; 0 when unknown (compacted / beyond). */
uint64_t rlog_term(const raft_log *l, uint64_t i);
bool rlog_match_term(const raft_log *l, uint64_t i, uint64_t term);
raft_entry *rlog_entry(const raft_log *l, uint64_t i); /* NULL when not held */
/* Append one entry (copying data into a refcounted buffer unless share). */
int rlog_append(raft_log *l, uint64_t term, uint8_t type, const uint8_t *data, uint32_t len);
/* Drop entries >= i (i > committed). */
void rlog_truncate_from(raft_log *l, uint64_t i);
/* Follower side of AppendEntries (thesis 3.5, Figure 3.1 receiver rules 2-5):
 * returns the last new index, or 0 when prev does not match. */
int rlog_maybe_append(raft_log *l, uint64_t prev, uint64_t prev_term, uint64_t commit,
		      const raft_entry *ents, size_t n, uint64_t *last_new);
void rlog_commit_to(raft_log *l, uint64_t i);
/* Is (term, index) at least as up to date as our log (thesis 3.6.1)? */
bool rlog_is_up_to_date(const raft_log *l, uint64_t index, uint64_t term);
/* Largest index <= index whose term <= term (fast back-off hint). */
uint64_t rlog_find_conflict_by_term(const raft_log *l, uint64_t index, uint64_t term);
/* Drop entries <= index (never past stable; the caller checks applied). */
void rlog_compact(raft_log *l, uint64_t index);
/* Replace the whole log by a snapshot at (index, term). */
void rlog_restore(raft_log *l, uint64_t index, uint64_t term);

/* ------------------------------------------------------------------ */
/* progress.c: the leader's view of one follower (etcd tracker design).  */

enum pr_state {
	PR_PROBE = 0,
	PR_REPLICATE,
	PR_SNAPSHOT
};

typedef struct inflights {
	/* Ring of the last indexes of the MSG_APPs in flight, oldest first. */
	uint64_t *buf;
	uint32_t start, count, size;
} inflights;

typedef struct progress {
	uint64_t id;
	/* 0 <= match < next.  In PROBE at most one append is outstanding
	 * (probe_sent); in REPLICATE appends are pipelined, next running ahead
	 * of match, bounded by ins; in SNAPSHOT nothing is sent until the
	 * snapshot at pending_snapshot is reported or acknowledged. */
	uint64_t match, next;
	int state;
	bool probe_sent;
	uint64_t pending_snapshot;
	/* Heard from since the last CheckQuorum round (thesis 6.2). */
	bool recent_active;
	/* A learner is replicated to but never counted in a quorum. */
	bool learner;
	int8_t vote; /* this campaign: -1 unknown, 0 rejected, 1 granted */
	inflights ins;
} progress;

int inflights_init(inflights *in, uint32_t size);
void inflights_free(inflights *in);
bool inflights_full(const inflights *in);
void inflights_add(inflights *in, uint64_t last);
void inflights_free_le(inflights *in, uint64_t index);
void inflights_free_first(inflights *in);
void inflights_reset(inflights *in);

void pr_become_probe(progress *pr);
void pr_become_replicate(progress *pr);
void pr_become_snapshot(progress *pr, uint64_t snap_index);
bool pr_maybe_update(progress *pr, uint64_t n);
bool pr_maybe_decr_to(progress *pr, uint64_t rejected, uint64_t hint);
bool pr_is_paused(const progress *pr);

/* ------------------------------------------------------------------ */
/* readindex.c                                                          */

typedef struct read_req {
	uint64_t seq;   /* leader-local sequence, carried as heartbeat context */
	uint64_t index; /* commit index when the request arrived */
	uint64_t from;  /* requesting node (self for local) */
	uint32_t acks;  /* bitmask over prs positions (reset on a conf change) */
	uint8_t *ctx;   /* client context (malloc'ed) */
	uint32_t ctx_len;
} read_req;

typedef struct read_queue {
	read_req *v;
	size_t n, cap;
} read_queue;

/* ------------------------------------------------------------------ */
/* The node.                                                            */

typedef int (*step_fn)(raft *r, const raft_msg *m);

struct raft {
	raft_config cfg;
	uint64_t id;

	/* Persistent state (thesis Figure 3.1); commit lives in log. */
	uint64_t term, vote;

	int role;
	uint64_t lead;
	step_fn step;

	raft_log log;
	/* The host's latest snapshot (what MSG_SNAP names); index 0 when none. */
	raft_snapshot_meta snap;
	/* A snapshot received from the leader, not yet handed to the host. */
	bool pending_snap;
	raft_snapshot_meta pending_snap_meta;

	/* One per member (voters and learners) of the applied configuration,
	 * self included when a member.  conf mirrors it as id lists, as of
	 * conf.index (the last change applied, or the snapshot). */
	progress prs[RAFT_MAX_VOTERS];
	uint32_t n_prs;
	raft_snapshot_meta conf;
	/* A joining node that has not learned the configuration yet. */
	bool conf_unknown;
	/* A committed change removed this node. */
	bool removed;
	/* Leader removed by a committed change: the index of the empty entry
	 * it appended then.  It keeps replicating (not counting itself) until
	 * that entry commits, so a majority of the remaining voters know the
	 * removal is committed before it steps down (0: not leaving). */
	uint64_t leaving_index;
	/* Conf entries are applied up to conf_scanned (== log.committed
	 * after every commit advance); conf_scanning guards re-entry. */
	uint64_t conf_scanned;
	bool conf_scanning;
	/* Leader: index of the last conf entry appended (or, on election,
	 * the last index): no new change until it is committed. */
	uint64_t pending_conf_index;
	/* The configuration at index 0 learned from the leader, for the next
	 * ready (rd.conf_base). */
	bool conf_base_pending;
	raft_snapshot_meta rd_conf_base;

	/* Ticks since the last election timeout reset (followers: since the
	 * leader was last heard from; leaders: since the last CheckQuorum). */
	int election_elapsed, heartbeat_elapsed;
	int randomized_timeout; /* in [election_tick, 2*election_tick) */

	uint64_t lead_transferee; /* RAFT_NONE unless a transfer is running */

	/* Leader: new entries or a new commit index still to be sent.  Set by
	 * appends and commits, flushed once per ready (repl_flush_bcast), so a
	 * burst of proposals makes one MSG_APP per follower, not one each. */
	bool bcast_pending;

	/* Follower: msgs[prop_msg] is the MSG_PROP this ready's proposals are
	 * packed into, holding prop_bytes (SIZE_MAX: none yet). */
	size_t prop_msg;
	uint64_t prop_bytes;

	/* ReadIndex state (leader): confirmed-by-heartbeat queue and the
	 * requests waiting for the first commit of the term. */
	read_queue reads_pending, reads_wait_commit;
	uint64_t read_seq;

	uint64_t rng;

	/* Output accumulated until raft_get_ready. */
	raft_msg *msgs;
	size_t n_msgs, cap_msgs;
	raft_read_state *reads, *failed;
	size_t n_reads, cap_reads, n_failed, cap_failed;

	/* What the last ready reported, to detect changes. */
	raft_hard_state prev_hs;
	uint64_t prev_lead;
	int prev_role;

	/* Buffers handed out by raft_get_ready, released by raft_advance. */
	raft_entry *rd_entries, *rd_committed;
	uint64_t rd_committed_hi; /* last index in rd_committed, 0 if none */
	raft_msg *rd_msgs;
	size_t rd_n_msgs;
	raft_read_state *rd_reads, *rd_failed;
	size_t rd_n_reads, rd_n_failed;
	raft_snapshot_meta rd_snap;
};

/* raft.c */
progress *raft_progress(raft *r, uint64_t id);
int raft_voter_pos(const raft *r, uint64_t id);
uint32_t raft_quorum(const raft *r);
raft_msg *raft_send(raft *r, uint8_t type, uint64_t to); /* queued, term filled */
void raft_become_follower(raft *r, uint64_t term, uint64_t lead);
void raft_become_pre_candidate(raft *r);
void raft_become_candidate(raft *r);
void raft_become_leader(raft *r);
void raft_reset_randomized_timeout(raft *r);
int raft_append_local(raft *r, uint8_t type, const uint8_t *data, uint32_t len);
void raft_push_read(raft *r, uint64_t index, const uint8_t *ctx, uint32_t len);
void raft_push_failed_read(raft *r, const uint8_t *ctx, uint32_t len);
int raft_step_follower(raft *r, const raft_msg *m);
int raft_step_leader(raft *r, const raft_msg *m);

/* election.c */
void election_campaign(raft *r, bool pre_vote, bool transfer);
void election_handle_vote(raft *r, const raft_msg *m);
int election_step_candidate(raft *r, const raft_msg *m);
bool election_msg_is_transfer(const raft_msg *m);

/* replication.c */
bool repl_send_append(raft *r, uint64_t to, bool send_if_empty);
void repl_bcast_append(raft *r);
void repl_flush_bcast(raft *r);
void repl_bcast_heartbeat(raft *r, uint64_t ctx_seq);
bool repl_maybe_commit(raft *r);
void repl_handle_append(raft *r, const raft_msg *m);
void repl_handle_heartbeat(raft *r, const raft_msg *m);
void repl_handle_snapshot(raft *r, const raft_msg *m);
void repl_handle_append_resp(raft *r, const raft_msg *m);
void repl_handle_heartbeat_resp(raft *r, const raft_msg *m);
void repl_handle_transfer(raft *r, uint64_t target);
void repl_send_timeout_now(raft *r, uint64_t to);

/* membership.c */
uint32_t conf_n_voters(const raft *r);
bool conf_is_voter(const raft *r, uint64_t id);
/* Replace the configuration (raft_new, snapshot install, base learned). */
int conf_set(raft *r, const raft_snapshot_meta *m);
/* Apply the conf entries committed since the last call (call after every
 * commit index advance). */
void conf_on_commit(raft *r);
/* The configuration as of index (snap.index <= index <= committed). */
void conf_at(const raft *r, uint64_t index, raft_snapshot_meta *out);
/* Leader, each heartbeat: promote caught-up learners (cfg.auto_promote). */
void conf_auto_promote(raft *r);
bool conf_learner_in_sync(const raft *r, const progress *pr);

/* readindex.c */
int readindex_request(raft *r, uint64_t from, const uint8_t *ctx, uint32_t len);
void readindex_on_heartbeat_resp(raft *r, uint64_t from, const uint8_t *ctx, uint32_t len);
void readindex_on_commit(raft *r);
uint64_t readindex_last_seq(const raft *r);
void readindex_fail_all(raft *r);
void readindex_free(raft *r);
/* The configuration changed: acks by position are void, ask again. */
void readindex_on_conf_change(raft *r);

#endif
