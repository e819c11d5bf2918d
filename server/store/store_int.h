/*
 * store/store_int.h - private state of the MVCC store, shared by the files
 * of server/store/.  Nothing here is visible outside the folder: ../store.h
 * is the module's whole contract.  Functions shared between the files carry
 * the store_ prefix like the public ones (as raft_int.h does); only those
 * declared in ../store.h are the contract.
 *
 * One file per concern:
 *   env.c       the LMDB environment: open/close, the read-transaction pool,
 *               sync, sizes and the quota, committed revision/applied index
 *   meta.c      the meta database: the state record (revision, compact
 *               revision, applied index) and store_meta_get/put
 *   codec.c     record decoding (live, hist), zstd values, LMDB error codes,
 *               copying records out into a caller's arena
 *   range.c     the range iterator (current or historical) and store_range
 *   events.c    store_events_since: the history as watch events
 *   apply.c     the batch: store_begin, store_apply (dispatch, the
 *               check-before-first-write rule), store_commit/abort
 *   write.c     put and delete (live, hist and keyrev records written)
 *   txn.c       txn: op checks, compares, the precheck, running a branch
 *   compact.c   compaction of hist/keyrev
 *   lease.c     lease grant/revoke, the leasekeys index, lease reads
 *   snapshot.c  store_snapshot_write / store_snapshot_install
 *
 * LMDB caveats (lmdb.h, "Caveats") that every file here lives by:
 *   - one write transaction at a time: the batch (s->wtxn) of the apply
 *     thread; MDB_WRITEMAP forbids nested ones (see apply.c);
 *   - read transactions are short: a long one pins the pages it sees and
 *     makes the file grow; readers take one from the pool (env.c), copy out
 *     and end it;
 *   - an MDB_val returned by a get or a cursor points into the map and is
 *     valid only until the transaction ends, and in a write transaction
 *     only until its next write: copy it out first (into the caller's
 *     arena, or a stack/scratch buffer before a write);
 *   - no fork() after the environment is open.
 *
 * Layout: one LMDB environment (dir/data.mdb) with six named databases.
 * All integers are big-endian so the file is portable and keys sort right.
 *
 *   live       user key -> current record of the key (absent = not live):
 *                u8 flags | i64 create | i64 mod | i64 version | i64 lease |
 *                i64 mod_time_ns | value
 *              Latest reads (the common case) touch only this database.
 *   hist       (u64 rev, u32 sub) -> one event of revision rev:
 *                u8 type | u8 flags | u16 keylen | i64 create | i64 version |
 *                i64 lease | i64 time_ns | key | value
 *              type 0 = put, 1 = delete (create/version/lease/value empty).
 *              sub numbers the events of one revision (a txn) from 0.
 *   keyrev     user key -> (u64 rev, u32 sub) for every hist entry of the
 *              key (MDB_DUPSORT|MDB_DUPFIXED, so oldest first): historical
 *              reads find the newest entry <= R, compaction drops old ones.
 *   lease      id (u64, sign bit flipped so signed ids sort) -> i64 ttl
 *   leasekeys  id -> user key (MDB_DUPSORT): keys attached to a lease.
 *   meta       "s/state" -> i64 rev | i64 compact_rev | u64 applied_index,
 *              written by store_commit in the batch transaction;
 *              "u/<name>" -> store_meta_put values.
 *
 * flags bit 0 (STORE_F_ZSTD): the value is a zstd frame; values over 4 KiB
 * are compressed when that makes them smaller.
 *
 * Compaction at C keeps, per key, the newest hist entry <= C when it is a
 * put and drops everything else <= C.  Invariant (after a compaction at C):
 * every key has at most one hist entry <= C and it is a put, so the next
 * compaction only needs to look at the entries in (old C, new C].
 *
 * Transactions: the apply thread owns one batch write transaction
 * (store_begin .. store_commit) and runs every request directly in it.  The
 * environment uses MDB_WRITEMAP (a commit then costs no write syscalls),
 * which forbids nested transactions, so a request-level error must leave
 * nothing to undo: every request checks all it can fail on (keys, leases,
 * ignore_* flags, txn ops, revisions, the quota) before its first write.
 * The map is the quota plus a headroom, so the quota check makes
 * MDB_MAP_FULL (which would lose the batch) practically unreachable.
 * Readers open their own short read-only transactions (MDB_NOTLS) and copy
 * everything they return into the caller's arena before ending them.
 * env_lock (a rwlock) is held shared by every user of the environment and
 * exclusively only by store_snapshot_install, which closes and reopens it.
 */
#ifndef EF_STORE_INT_H
#define EF_STORE_INT_H

#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <zstd.h>

#include "../store.h"

#define STORE_F_ZSTD 1u
#define STORE_ZSTD_MIN 4096u
#define STORE_ZSTD_LEVEL 1
#define STORE_MAX_LEASE_TTL 9000000000LL /* etcd's MaxLeaseTTL */
#define LIVE_HDR 41
#define HIST_HDR 36
#define REVKEY_LEN 12
#define LMDB_KEY_MAX 511
#define STORE_MIN_HEADROOM (64ull << 20)
#define STORE_POOL_MAX 64

enum {
	HIST_PUT = 0,
	HIST_DEL = 1
};

struct store {
	MDB_env *env; /* NULL only transiently inside store_snapshot_install */
	MDB_dbi live, hist, keyrev, lease, leasekeys, meta;
	char *dir;
	uint64_t map_size; /* quota_bytes + headroom for deletes and compaction */
	uint64_t quota_bytes;
	uint32_t max_txn_ops;
	pthread_rwlock_t env_lock;     /* shared: any env user; exclusive: install */
	pthread_mutex_t pool_lock;     /* guards pool, pool_n */
	MDB_txn *pool[STORE_POOL_MAX]; /* reset read txns of env, ready to renew */
	uint32_t pool_n;
	uint64_t env_gen;   /* bumped when env is reopened */
	size_t inuse_txnid; /* store_db_size_in_use cache (pool_lock) */
	uint64_t inuse_gen;
	int64_t inuse_bytes;

	/* Writer state, apply thread only.  Outside a batch rev/compact_rev/
	 * applied equal the committed values below. */
	MDB_txn *wtxn; /* the batch, NULL outside store_begin..commit/abort */
	int64_t rev, compact_rev;
	uint64_t applied;
	uint64_t batch_pages; /* estimate of pages the open batch may have allocated */
	uint64_t psize;       /* LMDB page size */
	uint64_t quota_pages; /* --quota-backend-bytes in pages; map is larger */
	int64_t free_pages;   /* pages on the committed freelist; -1 = not counted this batch */
	uint8_t *scratch;     /* writer scratch buffer (values being rewritten) */
	size_t scratch_cap;
	uint8_t *zbuf; /* writer compression buffer */
	size_t zbuf_cap;
	ZSTD_CCtx *cctx;

	/* Committed state, readable from any thread. */
	_Atomic int64_t c_rev, c_compact;
	_Atomic uint64_t c_applied;
};

/* A decoded live or hist record; pointers are into LMDB memory (valid only
 * until the transaction writes or ends) or into a caller buffer. */
struct rec {
	uint8_t type, flags;
	int64_t create, mod, version, lease, time_ns;
	const uint8_t *key; /* hist records only */
	uint32_t key_n;
	const uint8_t *val; /* raw: compressed when flags & STORE_F_ZSTD */
	uint32_t val_n;
};

/* One write request being applied in txn, the batch transaction (there is
 * no child transaction: MDB_WRITEMAP forbids them, see apply.c). */
struct wctx {
	store *s;
	MDB_txn *txn;
	int64_t rev;  /* revision this request writes at (s->rev + 1) */
	uint32_t sub; /* events written so far; > 0 means the request changed something */
	int dirty;    /* something was written: an error now cannot be undone */
	int64_t time_ns;
	ef_arena *a; /* response arena */
	store_events *ev;
};

/* ---- helpers every file uses ---- */

static inline int64_t get_i64(const uint8_t *p)
{
	return (int64_t)ef_get_be64(p);
}

static inline void put_i64(uint8_t *p, int64_t v)
{
	ef_be64(p, (uint64_t)v);
}

static inline void lease_key(uint8_t out[8], int64_t id)
{
	ef_be64(out, (uint64_t)id ^ 0x8000000000000000ull);
}

static inline int64_t lease_id_of(const uint8_t *p)
{
	return (int64_t)(ef_get_be64(p) ^ 0x8000000000000000ull);
}

static inline void revkey(uint8_t out[REVKEY_LEN], int64_t rev, uint32_t sub)
{
	ef_be64(out, (uint64_t)rev);
	ef_be32(out + 8, sub);
}

static inline int key_cmp(const void *a, size_t an, const void *b, size_t bn)
{
	int c = memcmp(a, b, an < bn ? an : bn);

	if (c)
		return c;
	return an < bn ? -1 : an > bn;
}

static inline int check_key(ef_buf k)
{
	if (k.n == 0)
		return EF_E_EMPTY_KEY;
	if (k.n > EF_MAX_KEY_BYTES)
		return EF_E_KEY_TOO_LONG;
	return 0;
}

enum {
	RANGE_ONE,
	RANGE_FROM,
	RANGE_TO
};

static inline int range_mode(ef_buf end)
{
	if (end.n == 0)
		return RANGE_ONE;
	if (end.n == 1 && end.p[0] == 0)
		return RANGE_FROM;
	return RANGE_TO;
}

struct rit {
	store *s;
	MDB_txn *txn;
	MDB_cursor *c;
	int hist; /* 1: read the state as of revision at from history */
	int64_t at;
	ef_buf key, end;
	int mode, started, done;
	/* current element: k and r point into LMDB memory, valid until the
	 * next store_rit_next or the end of txn (copy out with store_kv_fill) */
	MDB_val k;
	struct rec r;
};

/* ---- codec.c ---- */
int store_live_decode(const MDB_val *v, struct rec *r);
/* rev is the revision the hist entry is filed under (its mod revision). */
int store_hist_decode(const MDB_val *v, int64_t rev, struct rec *r);
/* LMDB return code -> EF_E_*.  MDB_MAP_FULL is the only request-level one. */
int store_lmdb_code(int rc);
/* The plain value of r, copied into a. */
int store_value_copy(ef_arena *a, const struct rec *r, ef_buf *out);
/* Fill kv from r (key given separately); key and value copied into a. */
int store_kv_fill(ef_arena *a, ef_kv *kv, const void *key, uint32_t key_n, const struct rec *r,
		  int keys_only);
ef_kv *store_kv_new(ef_arena *a, const void *key, uint32_t key_n, const struct rec *r, int *err);
/* Grow an arena array of elements of size sz to hold need elements. */
int store_arr_grow(ef_arena *a, void **arr, uint32_t *cap, uint32_t n, uint32_t need, size_t sz);
ef_event *store_ev_push(store_events *ev); /* NULL when out of memory */

/* ---- range.c ---- */
int store_rit_open(struct rit *it, store *s, MDB_txn *txn, int hist, int64_t at, ef_buf key,
		   ef_buf end);
void store_rit_close(struct rit *it);
/* Advance to the next key in range that exists at the iterator's revision.
 * 0 = positioned (it->k, it->r), MDB_NOTFOUND = end, else EF_E_* code. */
int store_rit_next(struct rit *it);
/* Range in txn whose current revision is cur and compact revision compact. */
int store_range_txn(store *s, MDB_txn *txn, int64_t cur, int64_t compact, const ef_range_req *q,
		    ef_range_resp *out, ef_arena *a);

/* ---- env.c ---- */
/* A pooled read transaction, with env_lock held shared until
 * store_rtxn_end.  Keep it short; copy out before ending it. */
int store_rtxn_begin(store *s, MDB_txn **txn);
void store_rtxn_end(store *s, MDB_txn *txn);
/* Before the environment closes (no reader active). */
void store_pool_drain(store *s);
/* Open s->env on s->dir and load the committed state (s->env NULL on error). */
int store_env_open(store *s, char *err, size_t errlen);
/* etcd's quota: EF_E_NO_SPACE for a request that adds data past the quota. */
int store_quota_check(store *s, const ef_msg *req);

/* ---- meta.c ---- */
/* The state record as of txn; applied may be NULL. */
int store_state_read(store *s, MDB_txn *txn, int64_t *rev, int64_t *compact, uint64_t *applied);
/* Write s->rev, s->compact_rev, s->applied as the state record in txn. */
int store_state_write(store *s, MDB_txn *txn);

/* ---- write.c, txn.c, compact.c, lease.c: requests run by apply.c ---- */
/* The current record of key in the request's txn. 1 found, 0 not, <0 -code. */
int store_live_get(struct wctx *c, const void *key, uint32_t kn, struct rec *r);
/* Delete the live key at the position of cursor lc (record r decoded from
 * it).  unlink_lease: also remove it from its lease's key list. */
int store_kill_key(struct wctx *c, MDB_cursor *lc, const MDB_val *key, const struct rec *r,
		   int unlink_lease, ef_kv *prev);
int store_do_put(struct wctx *c, const ef_put_req *q, ef_put_resp *out);
int store_do_delete(struct wctx *c, const ef_delete_req *q, ef_delete_resp *out);
int store_do_txn(struct wctx *c, const ef_txn_req *t, ef_txn_resp *out);
int store_do_compact(struct wctx *c, int64_t to);
int store_do_lease_grant(struct wctx *c, const ef_lease_req *q, ef_lease_resp *out);
int store_do_lease_revoke(struct wctx *c, int64_t id);
/* 1 the lease exists (*ttl set when ttl), 0 it does not, <0 -code. */
int store_lease_exists(struct wctx *c, int64_t id, int64_t *ttl);
int store_leasekey_put(struct wctx *c, int64_t id, const void *key, uint32_t kn);
int store_leasekey_del(struct wctx *c, int64_t id, const void *key, uint32_t kn);

#endif
