/*
 * store/env.c - the LMDB environment of the MVCC store: open and close, the
 * pool of read transactions every reader takes its snapshot from, sync,
 * size accounting and etcd's quota check, and the committed revision,
 * compact revision and applied index readable from any thread.
 *
 * Built this way because the environment is the one thing every other
 * file shares: it is opened with MDB_NOSYNC (the WAL is the durable record,
 * the host calls store_sync before dropping WAL segments), MDB_NOTLS (read
 * transactions are pooled and may be renewed on any thread) and
 * MDB_WRITEMAP (commits cost no write syscalls), with a map larger than
 * the quota by a headroom so deletes and compaction always fit.  env_lock
 * is held shared by every user of the environment and exclusively only by
 * store_snapshot_install (snapshot.c), which closes and reopens it.
 *
 * LMDB: read transactions are short and come from a pool (store_rtxn_begin
 * .. store_rtxn_end); whatever a reader returns is copied out before the
 * transaction ends.  No fork() once the environment is open.
 *
 * Until the split is finished this file also holds the write path and
 * snapshots (moving to apply.c, write.c, txn.c, compact.c, lease.c and
 * snapshot.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "store_int.h"

/* ================================================================== */
/* Read transactions                                                   */

/* Read transactions come from a pool of reset handles: mdb_txn_renew
 * keeps the reader slot and allocation of the handle, where mdb_txn_begin
 * would malloc and scan the reader table under its process-shared mutex. */
int store_rtxn_begin(store *s, MDB_txn **txn)
{
	MDB_txn *t = NULL;
	int rc;

	pthread_rwlock_rdlock(&s->env_lock);
	pthread_mutex_lock(&s->pool_lock);
	if (s->pool_n)
		t = s->pool[--s->pool_n];
	pthread_mutex_unlock(&s->pool_lock);
	if (t) {
		rc = mdb_txn_renew(t);
		if (rc)
			mdb_txn_abort(t);
	} else {
		rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &t);
	}
	if (rc) {
		pthread_rwlock_unlock(&s->env_lock);
		return store_lmdb_code(rc);
	}
	*txn = t;
	return 0;
}

void store_rtxn_end(store *s, MDB_txn *txn)
{
	mdb_txn_reset(txn);
	pthread_mutex_lock(&s->pool_lock);
	if (s->pool_n < STORE_POOL_MAX) {
		s->pool[s->pool_n++] = txn;
		txn = NULL;
	}
	pthread_mutex_unlock(&s->pool_lock);
	if (txn)
		mdb_txn_abort(txn);
	pthread_rwlock_unlock(&s->env_lock);
}

/* Before the environment closes (no reader active). */
void store_pool_drain(store *s)
{
	pthread_mutex_lock(&s->pool_lock);
	while (s->pool_n)
		mdb_txn_abort(s->pool[--s->pool_n]);
	pthread_mutex_unlock(&s->pool_lock);
}

/* ================================================================== */
/* Committed state and sizes                                           */

int64_t store_revision(store *s)
{
	return atomic_load(&s->c_rev);
}

int64_t store_compact_revision(store *s)
{
	return atomic_load(&s->c_compact);
}

uint64_t store_applied_index(store *s)
{
	return atomic_load(&s->c_applied);
}

int64_t store_db_size(store *s)
{
	MDB_envinfo ei;
	MDB_stat st;
	int64_t n;

	pthread_rwlock_rdlock(&s->env_lock);
	mdb_env_info(s->env, &ei);
	mdb_env_stat(s->env, &st);
	n = (int64_t)(ei.me_last_pgno + 1) * st.ms_psize;
	pthread_rwlock_unlock(&s->env_lock);
	return n;
}

/* The freelist is scanned once per committed transaction at most: the
 * host asks before every write request (etcd's quota check). */
int64_t store_db_size_in_use(store *s)
{
	MDB_txn *txn;
	MDB_cursor *c;
	MDB_envinfo ei;
	MDB_val k, v;
	int64_t pages, free_pages = 0, res;
	size_t id;

	if (store_rtxn_begin(s, &txn))
		return 0;
	id = mdb_txn_id(txn);
	pthread_mutex_lock(&s->pool_lock);
	res = s->inuse_txnid == id && s->inuse_gen == s->env_gen ? s->inuse_bytes : -1;
	pthread_mutex_unlock(&s->pool_lock);
	if (res >= 0) {
		store_rtxn_end(s, txn);
		return res;
	}
	mdb_env_info(s->env, &ei);
	pages = (int64_t)ei.me_last_pgno + 1;
	if (mdb_cursor_open(txn, 0, &c) == 0) {
		while (mdb_cursor_get(c, &k, &v, MDB_NEXT) == 0)
			if (v.mv_size >= sizeof(size_t))
				free_pages += (int64_t) * (size_t *)v.mv_data;
		mdb_cursor_close(c);
	}
	if (free_pages > pages)
		free_pages = pages;
	res = (pages - free_pages) * (int64_t)s->psize;
	pthread_mutex_lock(&s->pool_lock);
	s->inuse_txnid = id;
	s->inuse_gen = s->env_gen;
	s->inuse_bytes = res;
	pthread_mutex_unlock(&s->pool_lock);
	store_rtxn_end(s, txn);
	return res;
}

int64_t store_key_count(store *s)
{
	MDB_txn *txn;
	MDB_stat st;
	int64_t n = 0;

	if (store_rtxn_begin(s, &txn))
		return 0;
	if (mdb_stat(txn, s->live, &st) == 0)
		n = (int64_t)st.ms_entries;
	store_rtxn_end(s, txn);
	return n;
}

int store_sync(store *s)
{
	int rc;

	pthread_rwlock_rdlock(&s->env_lock);
	rc = mdb_env_sync(s->env, 1);
	pthread_rwlock_unlock(&s->env_lock);
	return rc ? EF_E_IO : 0;
}

/* ================================================================== */
/* Quota                                                               */

/* Pages the committed freelist holds (reusable unless old readers pin
 * them).  Counted at most once per batch, only when the quota is near. */
static int64_t free_page_count(store *s)
{
	MDB_txn *txn;
	MDB_cursor *c;
	MDB_val k, v;
	int64_t n = 0;

	if (s->free_pages >= 0)
		return s->free_pages;
	if (mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn))
		return 0;
	if (mdb_cursor_open(txn, 0, &c) == 0) {
		while (mdb_cursor_get(c, &k, &v, MDB_NEXT) == 0)
			if (v.mv_size >= sizeof(size_t))
				n += (int64_t) * (size_t *)v.mv_data;
		mdb_cursor_close(c);
	}
	mdb_txn_abort(txn);
	s->free_pages = n;
	return n;
}

/* etcd's quota: a request that adds data (put, txn, lease grant) fails with
 * EF_E_NO_SPACE, before writing anything, when the pages in use plus what
 * the batch and this request may allocate would pass the quota.  Deletes,
 * compaction and revokes always run: the map is larger than the quota by a
 * headroom they can use. */
int store_quota_check(store *s, const ef_msg *req)
{
	MDB_envinfo ei;
	uint64_t est, used;

	switch (req->type) {
	case EF_MSG_PUT:
	case EF_MSG_TXN:
	case EF_MSG_LEASE_GRANT:
		break;
	default:
		return 0;
	}
	/* each key written may split a path of every tree it touches, and its
	 * value lands in live and hist */
	est = 2 * ef_request_size(req) / s->psize + 16;
	if (req->type == EF_MSG_TXN)
		est += 16 * ((uint64_t)req->u.txn.n_success + req->u.txn.n_failure);
	mdb_env_info(s->env, &ei);
	used = (uint64_t)ei.me_last_pgno + 1 + s->batch_pages + est;
	if (used > s->quota_pages) {
		int64_t fr = free_page_count(s);

		if (used - (uint64_t)fr > s->quota_pages)
			return EF_E_NO_SPACE;
	}
	s->batch_pages += est;
	return 0;
}

/* ================================================================== */
/* Open, close                                                         */

int store_env_open(store *s, char *err, size_t errlen)
{
	MDB_txn *txn;
	int rc;

	if ((rc = mdb_env_create(&s->env))) {
		snprintf(err, errlen, "mdb_env_create: %s", mdb_strerror(rc));
		s->env = NULL;
		return EF_E_NOMEM;
	}
	mdb_env_set_maxdbs(s->env, 8);
	mdb_env_set_maxreaders(s->env, 1024);
	mdb_env_set_mapsize(s->env, (size_t)s->map_size);
	rc = mdb_env_open(s->env, s->dir, MDB_NOSYNC | MDB_NOTLS | MDB_WRITEMAP, 0600);
	if (rc) {
		snprintf(err, errlen, "open %s: %s", s->dir, mdb_strerror(rc));
		goto fail;
	}
	if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn))) {
		snprintf(err, errlen, "begin: %s", mdb_strerror(rc));
		goto fail;
	}
	if ((rc = mdb_dbi_open(txn, "live", MDB_CREATE, &s->live)) ||
	    (rc = mdb_dbi_open(txn, "hist", MDB_CREATE, &s->hist)) ||
	    (rc = mdb_dbi_open(txn, "keyrev", MDB_CREATE | MDB_DUPSORT | MDB_DUPFIXED,
			       &s->keyrev)) ||
	    (rc = mdb_dbi_open(txn, "lease", MDB_CREATE, &s->lease)) ||
	    (rc = mdb_dbi_open(txn, "leasekeys", MDB_CREATE | MDB_DUPSORT, &s->leasekeys)) ||
	    (rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &s->meta))) {
		snprintf(err, errlen, "open databases: %s", mdb_strerror(rc));
		mdb_txn_abort(txn);
		goto fail;
	}
	rc = store_state_read(s, txn, &s->rev, &s->compact_rev, &s->applied);
	if (rc) {
		snprintf(err, errlen, "read state: %s", ef_strerror(rc));
		mdb_txn_abort(txn);
		mdb_env_close(s->env);
		s->env = NULL;
		return rc;
	}
	if ((rc = mdb_txn_commit(txn))) {
		snprintf(err, errlen, "commit: %s", mdb_strerror(rc));
		goto fail;
	}
	{
		MDB_stat st;

		mdb_env_stat(s->env, &st);
		s->psize = st.ms_psize ? st.ms_psize : 4096;
		s->quota_pages = s->quota_bytes / s->psize;
	}
	atomic_store(&s->c_rev, s->rev);
	atomic_store(&s->c_compact, s->compact_rev);
	atomic_store(&s->c_applied, s->applied);
	return 0;
fail:
	mdb_env_close(s->env);
	s->env = NULL;
	return rc == MDB_MAP_FULL ? EF_E_NO_SPACE : EF_E_IO;
}

int store_open(const store_opts *o, store **out, char *err, size_t errlen)
{
	store *s;
	int rc;

	*out = NULL;
	if (!o || !o->dir) {
		snprintf(err, errlen, "no data directory");
		return EF_E_INVALID;
	}
	if (mkdir(o->dir, 0700) && errno != EEXIST) {
		snprintf(err, errlen, "mkdir %s: %s", o->dir, strerror(errno));
		return EF_E_IO;
	}
	s = calloc(1, sizeof(*s));
	if (!s || !(s->dir = strdup(o->dir))) {
		free(s);
		snprintf(err, errlen, "out of memory");
		return EF_E_NOMEM;
	}
	{
		uint64_t q = o->quota_bytes ? o->quota_bytes : 2ull << 30;
		uint64_t head = q / 8 > STORE_MIN_HEADROOM ? q / 8 : STORE_MIN_HEADROOM;

		s->quota_bytes = q;
		s->map_size = q + head;
	}
	s->max_txn_ops = o->max_txn_ops ? o->max_txn_ops : EF_DEFAULT_MAX_TXN_OPS;
	s->cctx = ZSTD_createCCtx();
	{
		/* writer preference: a snapshot install must not starve behind
		 * a stream of readers (no reader ever takes env_lock twice) */
		pthread_rwlockattr_t ra;

		pthread_rwlockattr_init(&ra);
		pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
		pthread_rwlock_init(&s->env_lock, &ra);
		pthread_rwlockattr_destroy(&ra);
	}
	pthread_mutex_init(&s->pool_lock, NULL);
	rc = store_env_open(s, err, errlen);
	if (rc) {
		pthread_mutex_destroy(&s->pool_lock);
		pthread_rwlock_destroy(&s->env_lock);
		ZSTD_freeCCtx(s->cctx);
		free(s->dir);
		free(s);
		return rc;
	}
	*out = s;
	return 0;
}

void store_close(store *s)
{
	if (!s)
		return;
	if (s->wtxn)
		mdb_txn_abort(s->wtxn);
	store_pool_drain(s);
	if (s->env)
		mdb_env_close(s->env);
	pthread_mutex_destroy(&s->pool_lock);
	pthread_rwlock_destroy(&s->env_lock);
	ZSTD_freeCCtx(s->cctx);
	free(s->scratch);
	free(s->zbuf);
	free(s->dir);
	free(s);
}

/* ================================================================== */
/* Not yet in their own files                                          */

/* Errors a client request can cause; they fail that request only. */
static int request_level(int code)
{
	switch (code) {
	case EF_E_NO_SPACE:
	case EF_E_EMPTY_KEY:
	case EF_E_KEY_TOO_LONG:
	case EF_E_TOO_MANY_OPS:
	case EF_E_DUPLICATE_KEY:
	case EF_E_COMPACTED:
	case EF_E_FUTURE_REV:
	case EF_E_LEASE_NOT_FOUND:
	case EF_E_LEASE_EXISTS:
	case EF_E_LEASE_TTL_TOO_LARGE:
	case EF_E_LEASE_PROVIDED:
	case EF_E_VALUE_PROVIDED:
	case EF_E_NOT_FOUND:
	case EF_E_INVALID:
	case EF_E_UNKNOWN_TYPE:
		return 1;
	default:
		return 0;
	}
}

static int grow(uint8_t **p, size_t *cap, size_t need)
{
	size_t n = *cap ? *cap : 4096;
	uint8_t *q;

	if (need <= *cap)
		return 0;
	while (n < need)
		n *= 2;
	q = realloc(*p, n);
	if (!q)
		return EF_E_NOMEM;
	*p = q;
	*cap = n;
	return 0;
}

int store_lease_exists(struct wctx *c, int64_t id, int64_t *ttl)
{
	uint8_t lk[8];
	MDB_val k = {8, lk}, v;
	int rc;

	lease_key(lk, id);
	rc = mdb_get(c->txn, c->s->lease, &k, &v);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc)
		return -store_lmdb_code(rc);
	if (ttl && v.mv_size == 8)
		*ttl = get_i64(v.mv_data);
	return 1;
}

int store_leasekey_put(struct wctx *c, int64_t id, const void *key, uint32_t kn)
{
	uint8_t lk[8];
	MDB_val k = {8, lk}, v = {kn, (void *)key};

	lease_key(lk, id);
	c->dirty = 1;
	return store_lmdb_code(mdb_put(c->txn, c->s->leasekeys, &k, &v, 0));
}

int store_leasekey_del(struct wctx *c, int64_t id, const void *key, uint32_t kn)
{
	uint8_t lk[8];
	MDB_val k = {8, lk}, v = {kn, (void *)key};
	int rc;

	lease_key(lk, id);
	c->dirty = 1;
	rc = mdb_del(c->txn, c->s->leasekeys, &k, &v);
	return rc == MDB_NOTFOUND ? 0 : store_lmdb_code(rc);
}

/* Append a hist entry (and its keyrev index) for the current request. */
static int hist_put(struct wctx *c, uint8_t type, uint8_t flags, const void *key, uint32_t kn,
		    int64_t create, int64_t version, int64_t lease, const void *val, uint32_t vn)
{
	store *s = c->s;
	uint8_t rk[REVKEY_LEN];
	MDB_val k = {REVKEY_LEN, rk}, v = {HIST_HDR + (size_t)kn + vn, NULL};
	uint8_t *p;
	int rc;

	revkey(rk, c->rev, c->sub);
	c->dirty = 1;
	rc = mdb_put(c->txn, s->hist, &k, &v, MDB_RESERVE | MDB_APPEND);
	if (rc)
		return store_lmdb_code(rc);
	p = v.mv_data;
	p[0] = type;
	p[1] = flags;
	p[2] = (uint8_t)(kn >> 8);
	p[3] = (uint8_t)kn;
	put_i64(p + 4, create);
	put_i64(p + 12, version);
	put_i64(p + 20, lease);
	put_i64(p + 28, c->time_ns);
	memcpy(p + HIST_HDR, key, kn);
	if (vn)
		memcpy(p + HIST_HDR + kn, val, vn);

	k.mv_size = kn;
	k.mv_data = (void *)key;
	v.mv_size = REVKEY_LEN;
	v.mv_data = rk;
	rc = mdb_put(c->txn, s->keyrev, &k, &v, MDB_APPENDDUP);
	if (rc == MDB_KEYEXIST)
		rc = mdb_put(c->txn, s->keyrev, &k, &v, 0);
	if (rc)
		return store_lmdb_code(rc);
	c->sub++;
	return 0;
}

/* The current record of key in the request's txn. 1 found, 0 not, <0 -code. */
int store_live_get(struct wctx *c, const void *key, uint32_t kn, struct rec *r)
{
	MDB_val k = {kn, (void *)key}, v;
	int rc;

	if (kn > LMDB_KEY_MAX)
		return 0;
	rc = mdb_get(c->txn, c->s->live, &k, &v);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc)
		return -store_lmdb_code(rc);
	rc = store_live_decode(&v, r);
	return rc ? -rc : 1;
}

int store_do_put(struct wctx *c, const ef_put_req *q, ef_put_resp *out)
{
	store *s = c->s;
	struct rec cur = {0};
	int have, rc;
	int64_t lease, create, version;
	const uint8_t *val;
	uint32_t vn;
	uint8_t flags = 0;
	MDB_val k, v;
	uint8_t *p;

	if ((rc = check_key(q->key)))
		return rc;
	if (q->ignore_value && q->value.n)
		return EF_E_VALUE_PROVIDED;
	if (q->ignore_lease && q->lease)
		return EF_E_LEASE_PROVIDED;
	have = store_live_get(c, q->key.p, q->key.n, &cur);
	if (have < 0)
		return -have;
	if ((q->ignore_value || q->ignore_lease) && !have)
		return EF_E_NOT_FOUND;
	lease = q->ignore_lease ? cur.lease : q->lease;
	if (!q->ignore_lease && lease) {
		rc = store_lease_exists(c, lease, NULL);
		if (rc < 0)
			return -rc;
		if (!rc)
			return EF_E_LEASE_NOT_FOUND;
	}
	if (have && q->prev_kv && out) {
		out->prev_kv = store_kv_new(c->a, q->key.p, q->key.n, &cur, &rc);
		if (!out->prev_kv)
			return rc;
	}
	if (c->ev) {
		ef_event *e = store_ev_push(c->ev);

		if (!e)
			return EF_E_NOMEM;
		e->type = EF_EVENT_PUT;
		if (have) {
			e->prev_kv = store_kv_new(c->ev->a, q->key.p, q->key.n, &cur, &rc);
			if (!e->prev_kv)
				return rc;
		}
		/* kv filled below, once the new record is known */
	}
	create = have ? cur.create : c->rev;
	version = have ? cur.version + 1 : 1;

	if (q->ignore_value) {
		/* the old value lives in a page this txn may rewrite: copy it */
		if ((rc = grow(&s->scratch, &s->scratch_cap, cur.val_n)))
			return rc;
		memcpy(s->scratch, cur.val, cur.val_n);
		val = s->scratch;
		vn = cur.val_n;
		flags = cur.flags;
	} else {
		val = q->value.p;
		vn = q->value.n;
		if (vn > STORE_ZSTD_MIN && s->cctx) {
			size_t bound = ZSTD_compressBound(vn), z;

			if ((rc = grow(&s->zbuf, &s->zbuf_cap, bound)))
				return rc;
			z = ZSTD_compressCCtx(s->cctx, s->zbuf, bound, val, vn, STORE_ZSTD_LEVEL);
			if (!ZSTD_isError(z) && z < vn) {
				val = s->zbuf;
				vn = (uint32_t)z;
				flags = STORE_F_ZSTD;
			}
		}
	}
	if (have && cur.lease != lease && cur.lease) {
		if ((rc = store_leasekey_del(c, cur.lease, q->key.p, q->key.n)))
			return rc;
	}
	if (lease && (!have || cur.lease != lease)) {
		if ((rc = store_leasekey_put(c, lease, q->key.p, q->key.n)))
			return rc;
	}
	k.mv_size = q->key.n;
	k.mv_data = (void *)q->key.p;
	v.mv_size = LIVE_HDR + (size_t)vn;
	c->dirty = 1;
	rc = mdb_put(c->txn, s->live, &k, &v, MDB_RESERVE);
	if (rc)
		return store_lmdb_code(rc);
	p = v.mv_data;
	p[0] = flags;
	put_i64(p + 1, create);
	put_i64(p + 9, c->rev);
	put_i64(p + 17, version);
	put_i64(p + 25, lease);
	put_i64(p + 33, c->time_ns);
	if (vn)
		memcpy(p + LIVE_HDR, val, vn);
	rc = hist_put(c, HIST_PUT, flags, q->key.p, q->key.n, create, version, lease, val, vn);
	if (rc)
		return rc;
	if (c->ev) {
		ef_event *e = &c->ev->ev[c->ev->n - 1];
		struct rec nr = {HIST_PUT,   flags, create, c->rev, version, lease,
				 c->time_ns, NULL,  0,      val,    vn};

		rc = store_kv_fill(c->ev->a, &e->kv, q->key.p, q->key.n, &nr, 0);
		if (rc)
			return rc;
	}
	return 0;
}

/* Delete the live key at the position of cursor lc (record r decoded from
 * it).  unlink_lease: also remove it from its lease's key list. */
int store_kill_key(struct wctx *c, MDB_cursor *lc, const MDB_val *key, const struct rec *r,
		   int unlink_lease, ef_kv *prev)
{
	uint8_t kb[LMDB_KEY_MAX + 1];
	uint32_t kn = (uint32_t)key->mv_size;
	int64_t lease = r->lease;
	int rc;

	if (kn > LMDB_KEY_MAX)
		return EF_E_CORRUPT;
	memcpy(kb, key->mv_data, kn);
	if (prev && (rc = store_kv_fill(c->a, prev, kb, kn, r, 0)))
		return rc;
	if (c->ev) {
		ef_event *e = store_ev_push(c->ev);

		if (!e)
			return EF_E_NOMEM;
		e->type = EF_EVENT_DELETE;
		e->prev_kv = store_kv_new(c->ev->a, kb, kn, r, &rc);
		if (!e->prev_kv)
			return rc;
		e->kv.key.p = ef_arena_dup(c->ev->a, kb, kn);
		if (!e->kv.key.p)
			return EF_E_NOMEM;
		e->kv.key.n = kn;
		e->kv.mod_revision = c->rev;
	}
	c->dirty = 1;
	rc = mdb_cursor_del(lc, 0);
	if (rc)
		return store_lmdb_code(rc);
	if (unlink_lease && lease && (rc = store_leasekey_del(c, lease, kb, kn)))
		return rc;
	return hist_put(c, HIST_DEL, 0, kb, kn, 0, 0, 0, NULL, 0);
}

int store_do_delete(struct wctx *c, const ef_delete_req *q, ef_delete_resp *out)
{
	store *s = c->s;
	MDB_cursor *lc;
	MDB_val k, v;
	struct rec r;
	int mode = range_mode(q->range_end), rc;
	uint32_t cap = 0;
	uint8_t kb[LMDB_KEY_MAX + 1];

	if ((rc = check_key(q->key)))
		return rc;
	if (out)
		memset(out, 0, sizeof(*out));
	if (mode == RANGE_TO && key_cmp(q->range_end.p, q->range_end.n, q->key.p, q->key.n) <= 0)
		return 0;
	rc = mdb_cursor_open(c->txn, s->live, &lc);
	if (rc)
		return store_lmdb_code(rc);
	memcpy(kb, q->key.p, q->key.n);
	k.mv_size = q->key.n;
	for (;;) {
		/* (re-)seek: after a delete, kb names the deleted key and
		 * SET_RANGE lands on its successor */
		k.mv_data = kb;
		rc = mdb_cursor_get(lc, &k, &v, mode == RANGE_ONE ? MDB_SET_KEY : MDB_SET_RANGE);
		if (rc) {
			rc = rc == MDB_NOTFOUND ? 0 : store_lmdb_code(rc);
			break;
		}
		if (mode == RANGE_TO &&
		    key_cmp(k.mv_data, k.mv_size, q->range_end.p, q->range_end.n) >= 0)
			break;
		if ((rc = store_live_decode(&v, &r)))
			break;
		if (out && q->prev_kv) {
			rc = store_arr_grow(c->a, (void **)&out->prev_kvs, &cap, out->n_prev_kvs,
					    out->n_prev_kvs + 1, sizeof(ef_kv));
			if (rc)
				break;
		}
		memcpy(kb, k.mv_data, k.mv_size);
		rc = store_kill_key(c, lc, &k, &r, 1,
				    out && q->prev_kv ? &out->prev_kvs[out->n_prev_kvs] : NULL);
		if (rc)
			break;
		if (out) {
			out->deleted++;
			if (q->prev_kv)
				out->n_prev_kvs++;
		}
		if (mode == RANGE_ONE)
			break;
	}
	mdb_cursor_close(lc);
	return rc;
}

static int buf_cmp(const void *x, const void *y)
{
	const ef_buf *a = x, *b = y;

	return key_cmp(a->p, a->n, b->p, b->n);
}

static int check_op(const ef_op *op)
{
	switch (op->type) {
	case EF_OP_RANGE:
		return op->u.range.key.n ? 0 : EF_E_EMPTY_KEY;
	case EF_OP_PUT:
		if (op->u.put.ignore_value && op->u.put.value.n)
			return EF_E_VALUE_PROVIDED;
		if (op->u.put.ignore_lease && op->u.put.lease)
			return EF_E_LEASE_PROVIDED;
		return check_key(op->u.put.key);
	case EF_OP_DELETE:
		return check_key(op->u.del.key);
	default:
		return EF_E_INVALID;
	}
}

/* etcd's checkIntervals: puts must be on distinct keys and no delete range
 * may cover a put. */
static int check_dups(ef_arena *a, const ef_op *ops, uint32_t n)
{
	ef_buf *puts;
	uint32_t np = 0, i;

	for (i = 0; i < n; i++)
		np += ops[i].type == EF_OP_PUT;
	if (np == 0)
		return 0;
	puts = ef_arena_alloc(a, np * sizeof(*puts));
	if (!puts)
		return EF_E_NOMEM;
	np = 0;
	for (i = 0; i < n; i++)
		if (ops[i].type == EF_OP_PUT)
			puts[np++] = ops[i].u.put.key;
	qsort(puts, np, sizeof(*puts), buf_cmp);
	for (i = 1; i < np; i++)
		if (buf_cmp(&puts[i - 1], &puts[i]) == 0)
			return EF_E_DUPLICATE_KEY;
	for (i = 0; i < n; i++) {
		const ef_delete_req *d = &ops[i].u.del;
		uint32_t lo = 0, hi = np;
		int mode;

		if (ops[i].type != EF_OP_DELETE)
			continue;
		mode = range_mode(d->range_end);
		while (lo < hi) { /* first put key >= d->key */
			uint32_t mid = lo + (hi - lo) / 2;

			if (key_cmp(puts[mid].p, puts[mid].n, d->key.p, d->key.n) < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo == np)
			continue;
		if (mode == RANGE_ONE) {
			if (key_cmp(puts[lo].p, puts[lo].n, d->key.p, d->key.n) == 0)
				return EF_E_DUPLICATE_KEY;
		} else if (mode == RANGE_FROM ||
			   key_cmp(puts[lo].p, puts[lo].n, d->range_end.p, d->range_end.n) < 0) {
			return EF_E_DUPLICATE_KEY;
		}
	}
	return 0;
}

static int cmp_one(struct wctx *c, const ef_compare *q, const struct rec *r, int *ok)
{
	int64_t have;
	int res;

	if (q->target == EF_CMP_VALUE) {
		ef_buf v;
		int rc;

		if (!r) {
			*ok = 0;
			return 0;
		}
		if (r->flags & STORE_F_ZSTD) {
			if ((rc = store_value_copy(c->a, r, &v)))
				return rc;
		} else {
			v.p = r->val;
			v.n = r->val_n;
		}
		res = key_cmp(v.p, v.n, q->value.p, q->value.n);
	} else {
		switch (q->target) {
		case EF_CMP_VERSION:
			have = r ? r->version : 0;
			break;
		case EF_CMP_CREATE:
			have = r ? r->create : 0;
			break;
		case EF_CMP_MOD:
			have = r ? r->mod : 0;
			break;
		case EF_CMP_LEASE:
			have = r ? r->lease : 0;
			break;
		default:
			return EF_E_INVALID;
		}
		res = (have > q->number) - (have < q->number);
	}
	switch (q->result) {
	case EF_CMP_EQUAL:
		*ok = res == 0;
		break;
	case EF_CMP_NOT_EQUAL:
		*ok = res != 0;
		break;
	case EF_CMP_GREATER:
		*ok = res > 0;
		break;
	case EF_CMP_LESS:
		*ok = res < 0;
		break;
	default:
		return EF_E_INVALID;
	}
	return 0;
}

static int eval_compare(struct wctx *c, const ef_compare *q, int *ok)
{
	struct rit it;
	int rc, any = 0;

	*ok = 1;
	rc = store_rit_open(&it, c->s, c->txn, 0, 0, q->key, q->range_end);
	if (rc)
		return rc;
	while (*ok && (rc = store_rit_next(&it)) == 0) {
		any = 1;
		rc = cmp_one(c, q, &it.r, ok);
		if (rc)
			break;
	}
	store_rit_close(&it);
	if (rc && rc != MDB_NOTFOUND)
		return rc;
	if (!any)
		return cmp_one(c, q, NULL, ok);
	return 0;
}

/* Every request must fail before its first write (there is no nested
 * transaction to undo it, see store_apply).  A txn's ops can only fail on
 * what this checks, and the duplicate-key rule means no op of the branch
 * changes what another op's check looks at, so checking them all up front
 * gives exactly the first error running them in order would give.  A range
 * may read the revision the txn itself creates once an earlier op changed
 * something: a put always does, a delete when its range holds a key. */
static int txn_precheck(struct wctx *c, const ef_op *ops, uint32_t n)
{
	struct rec r;
	uint32_t i;
	int rc, changed = 0;

	for (i = 0; i < n; i++) {
		const ef_range_req *rq = &ops[i].u.range;
		const ef_put_req *pq = &ops[i].u.put;

		switch (ops[i].type) {
		case EF_OP_RANGE:
			if (rq->revision > 0 && rq->revision < c->s->compact_rev)
				return EF_E_COMPACTED;
			if (rq->revision > c->s->rev + changed)
				return EF_E_FUTURE_REV;
			break;
		case EF_OP_PUT:
			if (pq->ignore_value || pq->ignore_lease) {
				rc = store_live_get(c, pq->key.p, pq->key.n, &r);
				if (rc < 0)
					return -rc;
				if (!rc)
					return EF_E_NOT_FOUND;
			}
			if (!pq->ignore_lease && pq->lease) {
				rc = store_lease_exists(c, pq->lease, NULL);
				if (rc < 0)
					return -rc;
				if (!rc)
					return EF_E_LEASE_NOT_FOUND;
			}
			changed = 1;
			break;
		case EF_OP_DELETE:
			if (!changed) {
				struct rit it;

				rc = store_rit_open(&it, c->s, c->txn, 0, 0, ops[i].u.del.key,
						    ops[i].u.del.range_end);
				if (rc)
					return rc;
				rc = store_rit_next(&it);
				store_rit_close(&it);
				if (rc == 0)
					changed = 1;
				else if (rc != MDB_NOTFOUND)
					return rc;
			}
			break;
		default:
			break;
		}
	}
	return 0;
}

int store_do_txn(struct wctx *c, const ef_txn_req *t, ef_txn_resp *out)
{
	store *s = c->s;
	uint32_t i, n;
	const ef_op *ops;
	int rc, ok = 1;

	memset(out, 0, sizeof(*out));
	if (t->n_cmp > s->max_txn_ops || t->n_success > s->max_txn_ops ||
	    t->n_failure > s->max_txn_ops)
		return EF_E_TOO_MANY_OPS;
	for (i = 0; i < t->n_cmp; i++)
		if ((rc = check_key(t->cmp[i].key)))
			return rc;
	for (i = 0; i < t->n_success; i++)
		if ((rc = check_op(&t->success[i])))
			return rc;
	for (i = 0; i < t->n_failure; i++)
		if ((rc = check_op(&t->failure[i])))
			return rc;
	if ((rc = check_dups(c->a, t->success, t->n_success)))
		return rc;
	if ((rc = check_dups(c->a, t->failure, t->n_failure)))
		return rc;
	for (i = 0; i < t->n_cmp && ok; i++)
		if ((rc = eval_compare(c, &t->cmp[i], &ok)))
			return rc;
	out->succeeded = (uint8_t)ok;
	ops = ok ? t->success : t->failure;
	n = ok ? t->n_success : t->n_failure;
	if (n == 0)
		return 0;
	if ((rc = txn_precheck(c, ops, n)))
		return rc;
	out->responses = ef_arena_alloc(c->a, n * sizeof(ef_op_resp));
	if (!out->responses)
		return EF_E_NOMEM;
	out->n_responses = n;
	for (i = 0; i < n; i++) {
		ef_op_resp *r = &out->responses[i];

		r->type = ops[i].type;
		switch (ops[i].type) {
		case EF_OP_RANGE:
			rc = store_range_txn(s, c->txn, c->sub ? c->rev : c->rev - 1,
					     s->compact_rev, &ops[i].u.range, &r->u.range, c->a);
			break;
		case EF_OP_PUT:
			rc = store_do_put(c, &ops[i].u.put, &r->u.put);
			break;
		case EF_OP_DELETE:
			rc = store_do_delete(c, &ops[i].u.del, &r->u.del);
			break;
		default:
			rc = EF_E_INVALID;
		}
		if (rc)
			return rc;
	}
	return 0;
}

/* Drop every keyrev/hist entry of key kb older than hk. */
static int compact_older(struct wctx *c, MDB_cursor *kc, const uint8_t *kb, uint32_t kn,
			 const uint8_t *hk)
{
	MDB_val kk, kd;
	int rc;

	for (;;) {
		uint8_t old[REVKEY_LEN];
		MDB_val ok = {REVKEY_LEN, old};

		kk.mv_size = kn;
		kk.mv_data = (void *)kb;
		rc = mdb_cursor_get(kc, &kk, &kd, MDB_SET_KEY);
		if (rc == MDB_NOTFOUND)
			return EF_E_CORRUPT; /* hist entry without its keyrev index */
		if (rc)
			return store_lmdb_code(rc);
		if (kd.mv_size != REVKEY_LEN)
			return EF_E_CORRUPT;
		if (memcmp(kd.mv_data, hk, REVKEY_LEN) >= 0)
			return 0;
		memcpy(old, kd.mv_data, REVKEY_LEN);
		if ((rc = mdb_cursor_del(kc, 0)))
			return store_lmdb_code(rc);
		rc = mdb_del(c->txn, c->s->hist, &ok, NULL);
		if (rc && rc != MDB_NOTFOUND)
			return store_lmdb_code(rc);
	}
}

int store_do_compact(struct wctx *c, int64_t to)
{
	store *s = c->s;
	MDB_cursor *hc = NULL, *kc = NULL;
	uint8_t pos[REVKEY_LEN], hk[REVKEY_LEN], kb[LMDB_KEY_MAX + 1];
	MDB_val k, v, kk, kd;
	struct rec r;
	int rc;

	if (to <= s->compact_rev)
		return EF_E_COMPACTED;
	if (to > s->rev)
		return EF_E_FUTURE_REV;
	if ((rc = mdb_cursor_open(c->txn, s->hist, &hc)) ||
	    (rc = mdb_cursor_open(c->txn, s->keyrev, &kc))) {
		rc = store_lmdb_code(rc);
		goto out;
	}
	revkey(pos, s->compact_rev + 1, 0);
	for (;;) {
		uint32_t kn, sub;
		int newest;
		uint8_t type;

		k.mv_size = REVKEY_LEN;
		k.mv_data = pos;
		rc = mdb_cursor_get(hc, &k, &v, MDB_SET_RANGE);
		if (rc) {
			rc = rc == MDB_NOTFOUND ? 0 : store_lmdb_code(rc);
			break;
		}
		if (k.mv_size != REVKEY_LEN) {
			rc = EF_E_CORRUPT;
			break;
		}
		memcpy(hk, k.mv_data, REVKEY_LEN);
		if (get_i64(hk) > to)
			break;
		if ((rc = store_hist_decode(&v, get_i64(hk), &r)))
			break;
		type = r.type;
		kn = r.key_n;
		if (kn > LMDB_KEY_MAX) {
			rc = EF_E_CORRUPT;
			break;
		}
		memcpy(kb, r.key, kn);
		/* every older entry of this key is superseded by hk */
		if ((rc = compact_older(c, kc, kb, kn, hk)))
			break;
		/* the cursor is on hk; is hk the newest entry <= to? */
		rc = mdb_cursor_get(kc, &kk, &kd, MDB_NEXT_DUP);
		if (rc == MDB_NOTFOUND)
			newest = 1;
		else if (rc) {
			rc = store_lmdb_code(rc);
			break;
		} else
			newest = kd.mv_size == REVKEY_LEN && get_i64(kd.mv_data) > to;
		if (newest && type == HIST_DEL) {
			MDB_val hv = {REVKEY_LEN, hk};

			kk.mv_size = kn;
			kk.mv_data = kb;
			kd = hv;
			if ((rc = mdb_cursor_get(kc, &kk, &kd, MDB_GET_BOTH)) ||
			    (rc = mdb_cursor_del(kc, 0)) ||
			    (rc = mdb_del(c->txn, s->hist, &hv, NULL))) {
				rc = store_lmdb_code(rc);
				break;
			}
		}
		sub = ef_get_be32(hk + 8);
		if (sub == UINT32_MAX)
			revkey(pos, get_i64(hk) + 1, 0);
		else
			revkey(pos, get_i64(hk), sub + 1);
	}
out:
	if (hc)
		mdb_cursor_close(hc);
	if (kc)
		mdb_cursor_close(kc);
	if (!rc)
		s->compact_rev = to;
	return rc;
}

int store_do_lease_grant(struct wctx *c, const ef_lease_req *q, ef_lease_resp *out)
{
	uint8_t lk[8], tv[8];
	MDB_val k = {8, lk}, v = {8, tv};
	int rc;

	if (q->id == 0)
		return EF_E_INVALID;
	if (q->ttl > STORE_MAX_LEASE_TTL)
		return EF_E_LEASE_TTL_TOO_LARGE;
	rc = store_lease_exists(c, q->id, NULL);
	if (rc < 0)
		return -rc;
	if (rc)
		return EF_E_LEASE_EXISTS;
	lease_key(lk, q->id);
	put_i64(tv, q->ttl);
	c->dirty = 1;
	rc = mdb_put(c->txn, c->s->lease, &k, &v, MDB_NOOVERWRITE);
	if (rc == MDB_KEYEXIST)
		return EF_E_LEASE_EXISTS;
	if (rc)
		return store_lmdb_code(rc);
	out->id = q->id;
	out->ttl = q->ttl;
	out->granted_ttl = q->ttl;
	return 0;
}

int store_do_lease_revoke(struct wctx *c, int64_t id)
{
	store *s = c->s;
	uint8_t lk[8];
	MDB_val k = {8, lk};
	MDB_cursor *kc = NULL, *lc = NULL;
	uint8_t kb[LMDB_KEY_MAX + 1];
	int rc;

	rc = store_lease_exists(c, id, NULL);
	if (rc < 0)
		return -rc;
	if (!rc)
		return EF_E_LEASE_NOT_FOUND;
	lease_key(lk, id);
	if ((rc = mdb_cursor_open(c->txn, s->leasekeys, &kc)) ||
	    (rc = mdb_cursor_open(c->txn, s->live, &lc))) {
		rc = store_lmdb_code(rc);
		goto out;
	}
	/* Take the first attached key, unlink and delete it, repeat: every
	 * pass re-seeks, so no cursor position survives a write. */
	for (;;) {
		MDB_val lkv = {8, lk}, kv, lv;
		struct rec r;
		uint32_t kn;

		rc = mdb_cursor_get(kc, &lkv, &kv, MDB_SET_KEY);
		if (rc == MDB_NOTFOUND)
			break;
		if (rc) {
			rc = store_lmdb_code(rc);
			goto out;
		}
		kn = (uint32_t)kv.mv_size;
		if (kn > LMDB_KEY_MAX) {
			rc = EF_E_CORRUPT;
			goto out;
		}
		memcpy(kb, kv.mv_data, kn);
		if ((rc = mdb_cursor_del(kc, 0))) {
			rc = store_lmdb_code(rc);
			goto out;
		}
		kv.mv_data = kb;
		kv.mv_size = kn;
		rc = mdb_cursor_get(lc, &kv, &lv, MDB_SET_KEY);
		if (rc == MDB_NOTFOUND)
			continue; /* stale index entry */
		if (rc) {
			rc = store_lmdb_code(rc);
			goto out;
		}
		if ((rc = store_live_decode(&lv, &r)))
			goto out;
		if (r.lease != id)
			continue;
		if ((rc = store_kill_key(c, lc, &kv, &r, 0, NULL)))
			goto out;
	}
	rc = store_lmdb_code(mdb_del(c->txn, s->lease, &k, NULL));
out:
	if (kc)
		mdb_cursor_close(kc);
	if (lc)
		mdb_cursor_close(lc);
	return rc;
}

int store_begin(store *s)
{
	int rc;

	if (s->wtxn)
		return EF_E_INVALID;
	rc = mdb_txn_begin(s->env, NULL, 0, &s->wtxn);
	if (rc) {
		s->wtxn = NULL;
		return store_lmdb_code(rc);
	}
	s->batch_pages = 0;
	s->free_pages = -1;
	return 0;
}

static int apply_one(struct wctx *c, const ef_msg *req, ef_msg *resp)
{
	switch (req->type) {
	case EF_MSG_PUT:
		return store_do_put(c, &req->u.put, &resp->u.put_resp);
	case EF_MSG_DELETE:
		return store_do_delete(c, &req->u.del, &resp->u.del_resp);
	case EF_MSG_TXN:
		return store_do_txn(c, &req->u.txn, &resp->u.txn_resp);
	case EF_MSG_COMPACT:
		return store_do_compact(c, req->u.compact.revision);
	case EF_MSG_LEASE_GRANT:
		return store_do_lease_grant(c, &req->u.lease, &resp->u.lease_resp);
	case EF_MSG_LEASE_REVOKE:
		return store_do_lease_revoke(c, req->u.lease.id);
	case EF_MSG_LEASE_KEEPALIVE: {
		int64_t ttl = 0;
		int rc = store_lease_exists(c, req->u.lease.id, &ttl);

		if (rc < 0)
			return -rc;
		if (!rc)
			return EF_E_LEASE_NOT_FOUND;
		resp->u.lease_resp.id = req->u.lease.id;
		resp->u.lease_resp.ttl = ttl;
		resp->u.lease_resp.granted_ttl = ttl;
		return 0;
	}
	case EF_MSG_RANGE:
		return store_range_txn(c->s, c->txn, c->s->rev, c->s->compact_rev, &req->u.range,
				       &resp->u.range_resp, c->a);
	default:
		return EF_E_UNKNOWN_TYPE;
	}
}

/* Leave the batch after a failure that cannot be undone. */
static void batch_fail(store *s)
{
	mdb_txn_abort(s->wtxn);
	s->wtxn = NULL;
	s->rev = atomic_load(&s->c_rev);
	s->compact_rev = atomic_load(&s->c_compact);
	s->applied = atomic_load(&s->c_applied);
}

/* Requests run in the batch transaction itself: the environment uses
 * MDB_WRITEMAP (commits write no pages through syscalls: 4-9x the put rate
 * of the default mode), which rules out nested transactions.  Instead every
 * request checks everything that can make it fail before its first write
 * (c.dirty); an error after that (an MDB_MAP_FULL the quota estimate did
 * not foresee, I/O, out of memory) loses the batch and is returned to the
 * host. */
int store_apply(store *s, int64_t time_ns, const ef_msg *req, ef_msg *resp, ef_arena *a,
		store_events *ev)
{
	struct wctx c;
	uint32_t ev_n0 = ev ? ev->n : 0;
	int64_t compact0 = s->compact_rev;
	int rc;

	memset(resp, 0, sizeof(*resp));
	resp->id = req->id;
	if (!s->wtxn)
		return EF_E_INVALID;
	memset(&c, 0, sizeof(c));
	c.s = s;
	c.txn = s->wtxn;
	c.rev = s->rev + 1;
	c.time_ns = time_ns;
	c.a = a;
	c.ev = ev;
	rc = store_quota_check(s, req);
	if (!rc)
		rc = apply_one(&c, req, resp);
	if (rc && (c.dirty || !request_level(rc))) {
		if (ev)
			ev->n = ev_n0;
		batch_fail(s);
		return rc;
	}
	if (rc) {
		s->compact_rev = compact0;
		if (ev)
			ev->n = ev_n0;
		memset(&resp->u, 0, sizeof(resp->u));
		resp->type = EF_MSG_ERROR;
		resp->u.error.code = (uint32_t)rc;
		resp->u.error.message = ef_str(ef_strerror(rc));
		resp->hdr.revision = s->rev;
		return 0;
	}
	if (c.sub)
		s->rev = c.rev;
	resp->type = (uint8_t)(req->type | 0x80);
	resp->hdr.revision = s->rev;
	return 0;
}

int store_commit(store *s, uint64_t applied_index)
{
	int rc;

	if (!s->wtxn)
		return EF_E_INVALID;
	s->applied = applied_index;
	rc = store_state_write(s, s->wtxn);
	if (rc) {
		store_abort(s);
		return rc;
	}
	rc = mdb_txn_commit(s->wtxn);
	s->wtxn = NULL;
	if (rc) {
		s->rev = atomic_load(&s->c_rev);
		s->compact_rev = atomic_load(&s->c_compact);
		s->applied = atomic_load(&s->c_applied);
		return store_lmdb_code(rc);
	}
	atomic_store(&s->c_rev, s->rev);
	atomic_store(&s->c_compact, s->compact_rev);
	atomic_store(&s->c_applied, s->applied);
	return 0;
}

void store_abort(store *s)
{
	if (s->wtxn)
		mdb_txn_abort(s->wtxn);
	s->wtxn = NULL;
	s->rev = atomic_load(&s->c_rev);
	s->compact_rev = atomic_load(&s->c_compact);
	s->applied = atomic_load(&s->c_applied);
}

int store_lease_list(store *s, store_lease **out, uint32_t *n)
{
	MDB_txn *txn;
	MDB_cursor *c;
	MDB_stat st;
	MDB_val k, v;
	store_lease *l = NULL;
	uint32_t i = 0, cap;
	int rc = store_rtxn_begin(s, &txn);

	*out = NULL;
	*n = 0;
	if (rc)
		return rc;
	rc = store_lmdb_code(mdb_stat(txn, s->lease, &st));
	if (rc)
		goto out;
	cap = (uint32_t)st.ms_entries;
	l = malloc((cap ? cap : 1) * sizeof(*l));
	if (!l) {
		rc = EF_E_NOMEM;
		goto out;
	}
	rc = store_lmdb_code(mdb_cursor_open(txn, s->lease, &c));
	if (rc)
		goto out;
	while (i < cap && mdb_cursor_get(c, &k, &v, MDB_NEXT) == 0) {
		if (k.mv_size != 8 || v.mv_size != 8)
			continue;
		l[i].id = lease_id_of(k.mv_data);
		l[i].ttl = get_i64(v.mv_data);
		i++;
	}
	mdb_cursor_close(c);
	*out = l;
	*n = i;
	l = NULL;
out:
	free(l);
	store_rtxn_end(s, txn);
	return rc;
}

int store_lease_get(store *s, int64_t id, store_lease *l, ef_buf **keys, uint32_t *n_keys,
		    ef_arena *a)
{
	MDB_txn *txn;
	MDB_cursor *c;
	uint8_t lk[8];
	MDB_val k = {8, lk}, v;
	uint32_t cap = 0;
	int rc = store_rtxn_begin(s, &txn), err = 0;

	if (n_keys)
		*n_keys = 0;
	if (keys)
		*keys = NULL;
	if (rc)
		return rc;
	lease_key(lk, id);
	rc = mdb_get(txn, s->lease, &k, &v);
	if (rc == MDB_NOTFOUND) {
		rc = EF_E_LEASE_NOT_FOUND;
		goto out;
	}
	if (rc || v.mv_size != 8) {
		rc = rc ? store_lmdb_code(rc) : EF_E_CORRUPT;
		goto out;
	}
	l->id = id;
	l->ttl = get_i64(v.mv_data);
	if (!keys || !n_keys)
		goto out;
	rc = store_lmdb_code(mdb_cursor_open(txn, s->leasekeys, &c));
	if (rc)
		goto out;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_KEY); rc == 0 && !err;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT_DUP)) {
		ef_buf *b;

		if ((err = store_arr_grow(a, (void **)keys, &cap, *n_keys, *n_keys + 1,
					  sizeof(ef_buf))))
			break;
		b = &(*keys)[*n_keys];
		b->p = ef_arena_dup(a, v.mv_data, v.mv_size ? v.mv_size : 1);
		b->n = (uint32_t)v.mv_size;
		if (!b->p) {
			err = EF_E_NOMEM;
			break;
		}
		(*n_keys)++;
	}
	mdb_cursor_close(c);
	if (!err && rc && rc != MDB_NOTFOUND)
		err = store_lmdb_code(rc);
	rc = err;
out:
	store_rtxn_end(s, txn);
	return rc;
}

int store_snapshot_write(store *s, int fd)
{
	int rc;

	pthread_rwlock_rdlock(&s->env_lock);
	rc = mdb_env_copyfd2(s->env, fd, MDB_CP_COMPACT);
	pthread_rwlock_unlock(&s->env_lock);
	return rc ? (rc == ENOMEM ? EF_E_NOMEM : EF_E_IO) : 0;
}

/* Copy src to dst (dst created/truncated) and fsync it. */
static int copy_file(const char *src, const char *dst)
{
	char buf[1 << 16];
	int in = open(src, O_RDONLY | O_CLOEXEC), out, rc = 0;
	ssize_t n;

	if (in < 0)
		return EF_E_IO;
	out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (out < 0) {
		close(in);
		return EF_E_IO;
	}
	while ((n = read(in, buf, sizeof(buf))) > 0) {
		ssize_t off = 0;

		while (off < n) {
			ssize_t w = write(out, buf + off, (size_t)(n - off));

			if (w < 0) {
				if (errno == EINTR)
					continue;
				rc = EF_E_IO;
				goto done;
			}
			off += w;
		}
	}
	if (n < 0 || fsync(out))
		rc = EF_E_IO;
done:
	close(in);
	if (close(out))
		rc = EF_E_IO;
	return rc;
}

int store_snapshot_install(store *s, const char *path)
{
	char data[4096], tmp[4096], err[256];
	int rc = 0;

	if (snprintf(data, sizeof(data), "%s/data.mdb", s->dir) >= (int)sizeof(data) ||
	    snprintf(tmp, sizeof(tmp), "%s/data.mdb.install", s->dir) >= (int)sizeof(tmp))
		return EF_E_INVALID;
	/* Bring the snapshot next to the data file first, so that the final
	 * step is one rename on the same file system. */
	if (rename(path, tmp)) {
		if (errno != EXDEV)
			return EF_E_IO;
		if ((rc = copy_file(path, tmp)))
			return rc;
	}
	pthread_rwlock_wrlock(&s->env_lock);
	if (s->wtxn) {
		mdb_txn_abort(s->wtxn);
		s->wtxn = NULL;
	}
	store_pool_drain(s);
	mdb_env_close(s->env);
	s->env = NULL;
	s->env_gen++;
	if (rename(tmp, data))
		rc = EF_E_IO;
	if (store_env_open(s, err, sizeof(err)) && !rc)
		rc = EF_E_IO;
	pthread_rwlock_unlock(&s->env_lock);
	return rc;
}
