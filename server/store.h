/*
 * store.h - the MVCC key-value store on LMDB (prefix store_).
 *
 * etcd's data model: one global revision, increased by every write request
 * that changes something (a txn counts once: all its events share the
 * revision); each key has create_revision, mod_revision, version and lease;
 * history is kept until compaction.  Every revision also records the wall
 * clock time (ns) at which its request was proposed.
 *
 * The store is fed only through the apply path, one batch of committed Raft
 * entries per LMDB write transaction, and the applied Raft index is written
 * in that same transaction (store_commit), so after a crash the store says
 * exactly which entries it holds and the host replays the WAL from there.
 * Apply is deterministic: the same entries give the same state on every
 * member (no clock, no random, no member-local config inside apply except
 * the limits every member shares).
 *
 * Threads: one writer (the Raft loop); any number of readers (client
 * threads) through store_range / store_events / store_lease_* which open
 * their own short LMDB read transactions.
 */
#ifndef EF_STORE_H
#define EF_STORE_H

#include <stdint.h>

#include "../proto/wire.h"

typedef struct store store;

typedef struct store_opts {
	const char *dir;      /* directory holding the LMDB environment */
	uint64_t quota_bytes; /* --quota-backend-bytes (also the map size); default 2 GiB */
	uint32_t max_txn_ops; /* default 128 */
} store_opts;

/* Events produced by one apply batch, for the watch hub. Arrays live in `a`. */
typedef struct store_events {
	ef_arena *a;
	ef_event *ev; /* ev[i].prev_kv always filled when the key existed before */
	uint32_t n, cap;
} store_events;

int store_open(const store_opts *o, store **out, char *err, size_t errlen);
void store_close(store *s);

/* ---- apply path (Raft loop thread only) ---- */
/* Start a batch (one LMDB write txn). */
int store_begin(store *s);
/* Apply one committed request: PUT, DELETE, TXN, COMPACT, LEASE_GRANT,
 * LEASE_REVOKE (also used for expiry), LEASE_KEEPALIVE is not applied (the
 * host keeps TTLs in memory).  time_ns is the proposal time carried in the
 * entry.  Fills resp (type = req->type|0x80, or EF_MSG_ERROR with the code
 * for a request-level error such as EF_E_LEASE_NOT_FOUND, EF_E_COMPACTED,
 * EF_E_NO_SPACE: those do not abort the batch and leave the store unchanged:
 * each request checks everything before its first write).
 * resp->hdr.revision is set.  Events are appended to ev (may be NULL).
 * Returns 0, or an EF_E_* code for a storage failure that aborted the
 * batch (the host must stop). */
int store_apply(store *s, int64_t time_ns, const ef_msg *req, ef_msg *resp, ef_arena *a,
		store_events *ev);
/* Commit the batch, recording applied_index in the same transaction. */
int store_commit(store *s, uint64_t applied_index);
void store_abort(store *s);
/* Flush to disk (the environment is opened without per-commit fsync: the WAL
 * is the durable record; the host syncs before it drops WAL segments). */
int store_sync(store *s);
/* store_sync, reporting in *applied an applied index whose batch is on disk
 * once the call returns 0 (the index committed when the sync began; any
 * thread, concurrent with the apply path).  The host may cut its WAL up to
 * *applied and no further. */
int store_sync_durable(store *s, uint64_t *applied);

/* ---- reads (any thread) ---- */
/* Range as etcd's (limit, revision, sort, keys_only, count_only, min/max
 * filters). EF_E_COMPACTED if revision < compact revision (message names it),
 * EF_E_FUTURE_REV if revision > current. resp arrays live in a. */
int store_range(store *s, const ef_range_req *req, ef_range_resp *resp, int64_t *header_rev,
		ef_arena *a);
/* Events with revision in [from_rev, current] on [key, range_end) (range_end
 * rules as ef_range_req), oldest first, at most max events; whole revisions
 * only (a txn's events are never split) unless one revision alone exceeds
 * max.  *next_rev = the revision to ask from next time.  prev_kv is filled
 * when want_prev.  EF_E_COMPACTED if from_rev < compact revision (as etcd:
 * a watch may start at the compact revision itself). */
int store_events_since(store *s, ef_buf key, ef_buf range_end, int64_t from_rev, uint32_t max,
		       int want_prev, store_events *out, int64_t *next_rev);

int64_t store_revision(store *s);         /* current revision */
int64_t store_compact_revision(store *s); /* 0 if never compacted */
uint64_t store_applied_index(store *s);
int64_t store_db_size(store *s);        /* bytes of the data file */
int64_t store_db_size_in_use(store *s); /* bytes of pages in use */
int64_t store_key_count(store *s);

/* Leases (the host keeps deadlines in memory; the store keeps the truth). */
typedef struct store_lease {
	int64_t id, ttl; /* granted TTL, seconds */
} store_lease;
/* All leases, in id order; *out malloc'ed. */
int store_lease_list(store *s, store_lease **out, uint32_t *n);
/* One lease; EF_E_LEASE_NOT_FOUND. keys (may be NULL) listed into a. */
int store_lease_get(store *s, int64_t id, store_lease *l, ef_buf **keys, uint32_t *n_keys,
		    ef_arena *a);

/* Cluster metadata kept in the store so that it travels in snapshots. */
int store_meta_get(store *s, const char *name, ef_buf *val, ef_arena *a);      /* EF_E_NOT_FOUND */
int store_meta_put(store *s, const char *name, const void *val, uint32_t len); /* inside a batch */

/* ---- snapshots ---- */
/* Write a compacted copy of the environment to fd (consistent, taken in one
 * read txn while the apply path goes on; any thread but the apply one).
 * EF_E_NO_SPACE when the data file grew past a bound while the copy pinned
 * its pages: the copy was abandoned, try again later. */
int store_snapshot_write(store *s, int fd);
/* Replace the whole store with the environment file at path (a snapshot
 * received from the leader, already decompressed and checked). */
int store_snapshot_install(store *s, const char *path);

#endif
