/*
 * node.h - one etcfsd member: the Raft host loop and the request path that
 * every front end (native nng listener, HTTP/JSON gateway) shares.
 *
 * A front end decodes a request into an ef_msg and calls node_call(); the
 * node proposes writes through Raft (forwarding from followers happens inside
 * Raft), answers linearizable reads after a ReadIndex round, serves
 * serializable reads locally, and blocks the calling thread until the answer
 * is ready or the request timeout passes.  Watch streams are opened with
 * node_watch_stream_open() and receive EF_MSG_WATCH_RESP messages through a
 * callback, exactly as the native protocol sends them.
 */
#ifndef EF_NODE_H
#define EF_NODE_H

#include <stdint.h>

#include "../proto/wire.h"

typedef struct node node;

/* What etcfsd's flags configure (see main.c and man/etcfsd.8). */
typedef struct node_config {
	const char *name, *data_dir;
	const char *listen_peer_urls, *initial_advertise_peer_urls;
	const char *advertise_client_urls;
	const char *initial_cluster; /* name=url,name=url ... */
	const char *initial_cluster_token;
	int cluster_state_new; /* --initial-cluster-state new|existing */
	int auto_promote;      /* --experimental-auto-promote-learners */
	int heartbeat_ms, election_ms;
	uint64_t snapshot_count;
	uint64_t quota_bytes;
	uint32_t max_request_bytes, max_txn_ops;
	int request_timeout_ms; /* how long node_call waits (default 5000) */
	/* idle watches created with progress_notify hear from the hub this
	 * often (0: the hub's default, 10 minutes as etcd's) */
	uint32_t watch_progress_notify_interval_ms;
} node_config;

int node_start(const node_config *cfg, node **out, char *err, size_t errlen);
/* Stop the loop, answer every waiting request with EF_E_STOPPING, wait (3 s at
 * most) for the callers to leave, sync the WAL and the store.  Meant to be
 * followed by process exit: the member's memory is not released. */
void node_stop(node *n);

/* Execute one client request (any request type of wire.h but the WATCH_*
 * ones).  Blocks.  Returns 0 with *resp filled (type = req->type | 0x80, hdr
 * set), or an EF_E_* code with *resp an EF_MSG_ERROR carrying the message.
 * Request-level validation (empty key, size limits, txn op count) happens
 * here too, so every front end gets the same errors. */
int node_call(node *n, const ef_msg *req, ef_msg *resp, ef_arena *a);

/* A watch stream: a set of watches sharing one delivery callback, as one
 * gRPC Watch stream in etcd.  The callback runs on a node thread; it must not
 * block for long (copy or queue the message; m and its memory are valid only
 * during the call).  Return non-zero from the callback when the consumer can't
 * take the message now: the hub keeps it, backs off and retries; a stream
 * that keeps refusing falls behind and is caught up from the store, and is
 * cancelled ("etcfs: watcher too slow") after many refusals in a row. */
typedef int (*node_watch_cb)(void *ud, const ef_msg *m);
typedef struct node_wstream node_wstream;
int node_wstream_open(node *n, node_watch_cb cb, void *ud, node_wstream **out);
/* Handle a WATCH_CREATE / WATCH_CANCEL / WATCH_PROGRESS request on the
 * stream; answers (created, canceled, events) arrive through the callback
 * with message id = req->id. */
int node_wstream_request(node_wstream *w, const ef_msg *req);
/* Cancels every watch of the stream; after return the callback is not called. */
void node_wstream_close(node_wstream *w);

/* Member state for /health, /metrics and endpoint status. */
typedef struct node_status {
	uint64_t cluster_id, member_id, leader, term;
	uint64_t commit_index, applied_index;
	int64_t revision, compact_revision;
	int64_t db_size, db_size_in_use, keys;
	int is_leader, has_leader, catching_up;
	uint64_t leader_changes;
	uint64_t watchers, leases;
} node_status;
void node_get_status(node *n, node_status *st);

#endif
