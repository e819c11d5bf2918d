/*
 * node_int.h - what the files of server/node/ share: struct node and the
 * records hanging off it, the storage table the loop drives, and the
 * functions one file offers the others.  Not a contract for anybody outside
 * server/node/ (that is ../node.h) except tests/unit/test_node_loop.c, which
 * builds a member around a fake node_io to check the loop's ordering.
 *
 * Threads: the loop thread (loop.c) is the only one that touches the Raft
 * core, the WAL and the store's write side; client threads (request.c,
 * forward.c, lease.c's keep-alive/ttl) and peer receive threads (inbox.c)
 * talk to it through the inbox under n->mu.
 */
#ifndef EF_NODE_INT_H
#define EF_NODE_INT_H

#include <pthread.h>
#include <stdint.h>

#include "../../common/metrics.h"
#include "../../proto/client.h"
#include "../node.h"
#include "../peer.h"
#include "../raft/raft.h"
#include "../store.h"
#include "../wal.h"
#include "../watchhub.h"

#define ETCFS_VERSION "3.4.0"
#define SNAP_CHUNK (1u << 20)
#define MAX_MEMBERS RAFT_MAX_VOTERS

enum payload_kind {
	PAYLOAD_REQUEST = 1,
	PAYLOAD_MEMBER_ATTR = 2,
	PAYLOAD_MEMBER = 3 /* a MEMBER_* request: the context of a RAFT_ENTRY_CONF entry, or
			    * (MEMBER_UPDATE) a normal entry */
};
#define PAYLOAD_HDR 25 /* kind u8, origin u64, waiter u64, time_ns i64 */

struct member {
	uint64_t id;
	char name[64];
	char peer_url[320];
	char client_urls[512]; /* published through Raft; "" until then */
	int is_learner;
	int gone; /* removed: the slot stays (fwd[] and snap_sending[] index it) */
};

enum waiter_state {
	W_WAITING = 0,
	W_CLAIMED,
	W_DONE
};

/* A client request waiting for the loop.  Lives on the caller's stack;
 * registered in the waiter table under n->mu.  Once the loop CLAIMS it
 * (under n->mu), the loop writes into resp/a without the lock and the
 * caller must wait for DONE even past its deadline (apply is short). */
struct waiter {
	uint64_t id;
	int state;
	int err;       /* for reads: 0 = go ahead and read; else EF_E_* */
	int proposed;  /* writes: handed to Raft (else still held: not applied) */
	int64_t t0_ns; /* writes: clock_mono_ns() when posted (proposal-to-commit) */
	ef_msg *resp;
	ef_arena *a;
	pthread_cond_t cv;
	struct waiter *next;
};

enum ev_kind {
	EV_PROPOSE = 1,
	EV_READ,
	EV_PEER,
	EV_SNAP_STATUS,
	EV_TRANSFER,
	EV_MEMBER /* a MEMBER_* payload for raft_propose_conf (leader) */
};

struct ev {
	int kind;
	uint8_t *data; /* EV_PROPOSE payload (malloc) */
	uint32_t len;
	uint64_t waiter;
	raft_msg msg; /* EV_PEER (decoded, owned) */
	uint64_t peer;
	int failed;
	int64_t posted_ns; /* clock_mono_ns() at node_post (inbox wait) */
	struct ev *next;
};

struct read_batch {
	uint64_t ctx;   /* 0 = none in flight */
	uint64_t index; /* 0 until raft answered */
	int64_t issued_ms;
	uint64_t *waiters;
	size_t n, cap;
};

struct lease_ent {
	int64_t id, ttl;
	int64_t deadline_ms;
	int64_t revoke_sent_ms; /* 0 = no revoke proposed yet */
};

struct node {
	node_config cfg;
	char member_dir[1024];
	int lock_fd;
	uint64_t id, cluster_id;
	struct member members[MAX_MEMBERS];
	int n_members;
	/* Raft's configuration at index 0: the --initial-cluster ids of a
	 * bootstrap member, or what a joining member learned (rd.conf_base,
	 * kept in member/conf_base). */
	uint64_t base_ids[MAX_MEMBERS];
	int n_base;
	int joining; /* started with --initial-cluster-state existing on an empty dir */
	int removed; /* applied its own removal: stops (main.c), never restarts */

	/* Storage and transport the loop drives: &node_io_default in etcfsd,
	 * a fake in tests/unit/test_node_loop.c.  Never NULL. */
	const struct node_io *io;
	store *st;
	wal *w;
	raft *r;
	peer_tr *peers;
	watchhub *hub;

	pthread_t loop;
	pthread_mutex_t mu; /* inbox, waiters, read batches, status fields */
	pthread_cond_t cv;
	struct ev *in_head, *in_tail;
	int stopping;
	int failed;   /* io->fatal returned: the loop has stopped (tests only) */
	int inflight; /* node_call()s running */

	struct waiter *wt[1024]; /* waiter hash table */
	uint64_t next_waiter;

	struct read_batch cur, next; /* reads: in flight, gathering */
	uint64_t next_ctx;

	/* Proposals that could not be handed to Raft yet (no leader). */
	struct ev *held_head, *held_tail;

	/* status (written by the loop under mu) */
	uint64_t leader, term, commit_index, applied_index;
	int role;
	uint64_t leader_changes;
	uint64_t last_snap_index;
	int attr_published;
	int64_t attr_sent_ms;
	raft_hard_state synced_hs; /* term and vote as last fsync'd (loop thread) */
	/* Quota check: bytes in use as of quota_ms (atomics, read by every
	 * writing client thread; recomputed at most every QUOTA_RECHECK_MS, as
	 * the size scan walks LMDB's free list). */
	_Atomic int64_t quota_inuse, quota_ms;

	/* leases: leader's deadlines */
	pthread_mutex_t lease_mu;
	struct lease_ent *leases;
	size_t n_leases, cap_leases;
	int64_t lease_reconciled_ms; /* loop thread */

	/* forwarding to the leader: one client per member, made on first use
	 * (under fwd_mu), closed at stop; efc_call is thread-safe */
	pthread_mutex_t fwd_mu;
	efc_client *fwd[MAX_MEMBERS];

	/* snapshot sending: one sender thread per peer at a time; the file is
	 * built on demand under snap_build_mu (one build at a time, a second
	 * sender for the same index reuses it) */
	uint64_t snap_sending[MAX_MEMBERS];
	pthread_mutex_t snap_build_mu;

	/* Durability of the store (compact.c): the sync thread makes the store
	 * durable every SYNC_INTERVAL_MS and publishes in durable_index an
	 * applied index whose batch is on disk; the loop compacts the Raft log
	 * and WAL up to it and no further.  wal_release_at (loop thread): WAL
	 * segments up to here go once the snapshot marker is fsync'd. */
	_Atomic uint64_t durable_index;
	uint64_t wal_release_at;
	pthread_t syncer;
	int syncer_running;       /* syncer was started (node_start) */
	int syncer_stop;          /* under mu */
	pthread_cond_t syncer_cv; /* with mu: node_stop wakes the syncer */

	ef_arena *scratch; /* loop-owned */

	/* metrics */
	metric *m_proposals_committed, *m_proposals_applied, *m_proposals_failed,
		*m_proposals_pending, *m_leader_changes, *m_has_leader, *m_is_leader, *m_term,
		*m_wal_fsync, *m_backend_commit, *m_snap_sent, *m_snap_recv, *m_apply_batch,
		*m_commit_latency, *m_apply, *m_inbox_wait, *m_store_sync, *m_compaction,
		*m_snap_build, *m_snap_build_failed;
};

/* The WAL, store and transport operations of the loop's hot path, behind a
 * table so a test can run the loop on a simulated disk and network (STYLE.md:
 * storage behind a small table of functions).  node_io_default calls the
 * real wal_*, store_* and peer transport; each member holds a pointer to its
 * table (n->io), so the cost on the loop is one indirect call per
 * operation.  Signatures are those of wal.h and store.h. */
typedef struct node_io {
	int (*wal_append)(wal *w, const raft_entry *e, size_t n);
	int (*wal_set_hard_state)(wal *w, const raft_hard_state *hs);
	int (*wal_sync)(wal *w);
	uint64_t (*store_applied_index)(store *s);
	int (*store_begin)(store *s);
	int (*store_apply)(store *s, int64_t time_ns, const ef_msg *req, ef_msg *resp, ef_arena *a,
			   store_events *ev);
	int (*store_commit)(store *s, uint64_t applied_index);
	int64_t (*store_revision)(store *s);
	int (*store_meta_put)(store *s, const char *name, const void *val, uint32_t len);
	int (*store_lease_list)(store *s, store_lease **out, uint32_t *n);
	/* Send msgs[lo, hi) to their peers (snapshots through snapshot.c's
	 * sender threads); reports unreachable peers to Raft. */
	void (*send)(node *n, raft_msg *msgs, size_t lo, size_t hi);
	/* The member cannot go on (WAL fsync or store failure: acknowledging
	 * anything now could lose it).  The default logs and abort()s; if it
	 * returns, the ready is abandoned (nothing more sent, applied or
	 * acknowledged), n->failed is set and the loop thread stops. */
	void (*fatal)(node *n, const char *why);
} node_io;
extern const node_io node_io_default;

/* io.c: the default send (encode, peer_send; MSG_SNAP to a sender thread). */
void node_io_send(node *n, raft_msg *msgs, size_t lo, size_t hi);

/* inbox.c: the loop's inbox, the waiter table (n->mu held where noted) and
 * peer receive. */
void node_post(node *n, struct ev *e);
void node_waiter_add(node *n, struct waiter *w);       /* mu held */
void node_waiter_del(node *n, struct waiter *w);       /* mu held */
struct waiter *node_waiter_find(node *n, uint64_t id); /* mu held */
/* Wait for the loop to finish with w: 0 when DONE, EF_E_TIMEOUT when the
 * deadline passed first (w is then unregistered).  mu held. */
int node_waiter_wait(node *n, struct waiter *w, int64_t deadline_ms);
void node_cond_init_mono(pthread_cond_t *cv);
void node_on_peer(void *ud, uint8_t kind, uint64_t from, const uint8_t *p, size_t len);

/* loop.c: the Raft host loop (loop thread only). */
void *node_loop_main(void *arg);
/* One raft ready through the contract of raft.h, in order: install a
 * snapshot, send the early messages, apply what an earlier ready made
 * durable, persist + fsync once, send the rest, apply, acknowledge, advance.
 * 0, or EF_E_IO after io->fatal returned (the ready is abandoned). */
int node_loop_ready(node *n);
/* Queue a proposal until Raft has a leader to take it (loop thread). */
void node_hold(node *n, struct ev *e);

/* request.c: payloads and the answers every request path shares. */
uint8_t *node_payload_make(node *n, int kind, uint64_t waiter, const ef_msg *req, uint32_t *len);
void node_propose_internal(node *n, const ef_msg *req); /* loop thread */
void node_fill_hdr(node *n, ef_resp_header *h);
int node_set_error(ef_msg *resp, ef_arena *a, int code, const char *detail);

/* members.c: the fixed member table. */
struct member *node_member_by_id(node *n, uint64_t id);
/* --initial-cluster into members[], cluster id and own id. */
int node_members_parse(node *n, const char *spec, char *err, size_t errlen);
void node_members_load_attrs(node *n);
int node_member_list(node *n, ef_msg *resp, ef_arena *a);
/* MEMBER_ADD/REMOVE/UPDATE/PROMOTE on the leader (node_forward's local). */
int node_member_change(node *n, const ef_msg *req, ef_msg *resp, ef_arena *a);
/* Loop thread: propose an EV_MEMBER (answers its waiter on refusal). */
void node_member_propose(node *n, struct ev *e);
/* Loop thread, inside the apply batch: a committed RAFT_ENTRY_CONF entry or
 * PAYLOAD_MEMBER normal entry changes the member table (persisted in the
 * store's meta table, "members", atomically with the applied index), the
 * peer transport follows; returns the waiter to wake (resp filled) or NULL. */
struct waiter *node_member_apply(node *n, const raft_entry *e);
/* The member table the store holds (after a restart or a snapshot). */
void node_members_load(node *n);
/* Joining members: member/joined holds the cluster id learned from the
 * first peer message, member/conf_base the configuration at index 0. */
void node_members_base_save(node *n, const raft_snapshot_meta *m);
int node_members_base_load(node *n, raft_config *rc);
/* Loop thread, every tick: adopt the learned cluster id; stop a removed
 * member once it no longer leads. */
void node_members_tick(node *n);

/* lease.c: the leader's lease deadlines. */
struct lease_ent *node_lease_find(node *n, int64_t id); /* lease_mu held */
void node_lease_set(node *n, int64_t id, int64_t ttl, int64_t now);
void node_lease_del(node *n, int64_t id);
void node_leases_promote(node *n); /* loop thread, on becoming leader */
void node_leases_expire(node *n);  /* loop thread, leader, every tick */
int node_lease_keepalive(node *n, const ef_msg *req, ef_msg *resp, ef_arena *a);
int node_lease_ttl(node *n, const ef_msg *req, ef_msg *resp, ef_arena *a);

/* forward.c: requests only the leader can answer. */
int node_forward(node *n, const ef_msg *req, ef_msg *resp, ef_arena *a, int64_t deadline,
		 int (*local)(node *, const ef_msg *, ef_msg *, ef_arena *));
int node_move_leader(node *n, const ef_msg *req, ef_msg *resp, ef_arena *a);

/* compact.c: the sync thread and log compaction. */
int node_syncer_start(node *n);
void node_syncer_stop(node *n);
/* Compact the Raft log and the WAL up to the store's durable applied index
 * when --snapshot-count entries passed since the last time (loop thread;
 * no disk I/O but buffering the WAL's snapshot marker). */
void node_log_compact(node *n);

/* snapshot.c: sending (the file built on demand), receiving, installing. */
void node_snapshot_send(node *n, const raft_msg *m);
void node_snapshot_chunk(node *n, const uint8_t *p, size_t len); /* receive thread */
int node_snapshot_install(node *n, const raft_snapshot_meta *m);

/* metrics.c */
void node_metrics_register(node *n);

/* start.c: a member's memory with config defaults and locks, no I/O yet
 * (node_start's first step; tests build a loop-only member from it). */
node *node_alloc(const node_config *cfg);
/* The Raft core from what the WAL recovered (members[] parsed). */
raft *node_raft_new(node *n, const wal_recovered *rec);

#endif
