/*
 * metrics.c - the member's status and its Prometheus metrics.
 *
 * node_get_status() is what /health, /metrics and endpoint status read: the
 * loop's status fields under n->mu, the store's sizes and revisions.  The
 * metrics keep etcd's names so dashboards built for etcd work; counters the
 * loop bumps are lock-free (common/metrics.h), gauges that need a store
 * read are computed at scrape time.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "node_int.h"

void node_get_status(node *n, node_status *st)
{
	memset(st, 0, sizeof *st);
	st->cluster_id = n->cluster_id;
	st->member_id = n->id;
	pthread_mutex_lock(&n->mu);
	st->leader = n->leader;
	st->term = n->term;
	st->commit_index = n->commit_index;
	st->applied_index = n->applied_index;
	st->is_leader = n->role == RAFT_LEADER;
	st->has_leader = n->leader != RAFT_NONE;
	st->leader_changes = n->leader_changes;
	st->catching_up = n->commit_index > n->applied_index + 1000;
	pthread_mutex_unlock(&n->mu);
	st->revision = store_revision(n->st);
	st->compact_revision = store_compact_revision(n->st);
	st->db_size = store_db_size(n->st);
	st->db_size_in_use = store_db_size_in_use(n->st);
	st->keys = store_key_count(n->st);
	st->watchers = watchhub_watchers(n->hub);
	pthread_mutex_lock(&n->lease_mu);
	st->leases = n->n_leases;
	pthread_mutex_unlock(&n->lease_mu);
}

static int64_t m_db_size(void *ud)
{
	return store_db_size(((node *)ud)->st);
}
static int64_t m_keys(void *ud)
{
	return store_key_count(((node *)ud)->st);
}
static int64_t m_watchers(void *ud)
{
	return (int64_t)watchhub_watchers(((node *)ud)->hub);
}
static int64_t m_leases(void *ud)
{
	node *n = ud;
	pthread_mutex_lock(&n->lease_mu);
	int64_t v = (int64_t)n->n_leases;
	pthread_mutex_unlock(&n->lease_mu);
	return v;
}
static int64_t m_applied(void *ud)
{
	return (int64_t)store_applied_index(((node *)ud)->st);
}
static int64_t m_revision(void *ud)
{
	return store_revision(((node *)ud)->st);
}

static int64_t m_durable(void *ud)
{
	return (int64_t)atomic_load(&((node *)ud)->durable_index);
}

void node_metrics_register(node *n)
{
	n->m_proposals_committed =
		metrics_counter("etcd_server_proposals_committed_total",
				"The total number of consensus proposals committed.", "");
	n->m_proposals_applied =
		metrics_counter("etcd_server_proposals_applied_total",
				"The total number of consensus proposals applied.", "");
	n->m_proposals_failed = metrics_counter("etcd_server_proposals_failed_total",
						"The total number of failed proposals seen.", "");
	n->m_proposals_pending =
		metrics_gauge("etcd_server_proposals_pending",
			      "The current number of pending proposals to commit.", "");
	n->m_leader_changes = metrics_counter("etcd_server_leader_changes_seen_total",
					      "The number of leader changes seen.", "");
	n->m_has_leader =
		metrics_gauge("etcd_server_has_leader",
			      "Whether or not a leader exists. 1 is existence, 0 is not.", "");
	n->m_is_leader =
		metrics_gauge("etcd_server_is_leader",
			      "Whether or not this member is a leader. 1 if is, 0 otherwise.", "");
	n->m_term = metrics_gauge("etcfs_server_raft_term", "The current Raft term.", "");
	n->m_wal_fsync = metrics_histogram("etcd_disk_wal_fsync_duration_seconds",
					   "The latency distributions of fsync called by WAL.", "",
					   0.001, 2, 14);
	n->m_backend_commit = metrics_histogram(
		"etcd_disk_backend_commit_duration_seconds",
		"The latency distributions of commit called by backend.", "", 0.001, 2, 14);
	n->m_apply = metrics_histogram(
		"etcfs_server_apply_batch_duration_seconds",
		"The latency distributions of applying one batch of committed entries to the "
		"store (its commit included).",
		"", 0.0001, 2, 18);
	n->m_commit_latency = metrics_histogram(
		"etcfs_server_proposal_commit_duration_seconds",
		"The latency distributions from a client's proposal reaching this member to its "
		"entry being committed and handed to apply.",
		"", 0.0001, 2, 18);
	n->m_inbox_wait = metrics_histogram(
		"etcfs_server_inbox_wait_duration_seconds",
		"The latency distributions of the time an event (proposal, peer message) waits "
		"in the Raft loop's inbox.",
		"", 0.0001, 2, 18);
	n->m_store_sync = metrics_histogram(
		"etcfs_disk_backend_sync_duration_seconds",
		"The latency distributions of syncing the store to disk (sync thread).", "", 0.001,
		2, 14);
	n->m_compaction = metrics_histogram(
		"etcfs_server_log_compaction_duration_seconds",
		"The latency distributions of compacting the Raft log and WAL (loop thread).", "",
		0.0001, 2, 18);
	n->m_snap_build = metrics_histogram(
		"etcd_disk_backend_snapshot_duration_seconds",
		"The latency distribution of backend snapshots (built for a follower).", "", 0.01,
		2, 17);
	n->m_snap_build_failed =
		metrics_counter("etcfs_server_snapshot_build_failures_total",
				"Snapshot builds given up (copy pinned too much, or I/O).", "");
	metrics_gauge_fn("etcfs_server_durable_applied_index",
			 "The applied index the store has on disk (the WAL is cut up to it).", "",
			 m_durable, n);
	n->m_snap_sent = metrics_counter("etcd_network_snapshot_send_success",
					 "Total number of successful snapshot sends", "");
	n->m_snap_recv = metrics_counter("etcd_network_snapshot_receive_success",
					 "Total number of successful snapshot receives", "");
	metrics_gauge_fn("etcd_mvcc_db_total_size_in_bytes",
			 "Total size of the underlying database in bytes.", "", m_db_size, n);
	metrics_gauge_fn("etcd_debugging_mvcc_keys_total", "Total number of keys.", "", m_keys, n);
	metrics_gauge_fn("etcd_debugging_mvcc_watcher_total", "Total number of watchers.", "",
			 m_watchers, n);
	metrics_gauge_fn("etcfs_server_leases", "Number of leases the leader tracks.", "", m_leases,
			 n);
	metrics_gauge_fn("etcfs_server_applied_index", "The applied Raft index.", "", m_applied, n);
	metrics_gauge_fn("etcd_debugging_mvcc_current_revision", "The current revision of store.",
			 "", m_revision, n);
}
