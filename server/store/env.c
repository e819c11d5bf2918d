/*
 * store/env.c - the LMDB environment of the MVCC store: open and close, the
 * pool of read transactions every reader takes its snapshot from, sync,
 * size accounting and etcd's quota check, and the committed revision,
 * compact revision and applied index readable from any thread.
 *
 * Built this way because the environment is the one thing every other
 * file shares: it is opened with MDB_NOSYNC (the WAL is the durable record;
 * the host's sync thread calls store_sync_durable and cuts the WAL only up
 * to the applied index that call reports on disk), MDB_NOTLS (read
 * transactions are pooled and may be renewed on any thread) and
 * MDB_WRITEMAP (commits cost no write syscalls), with a map larger than
 * the quota by a headroom so deletes and compaction always fit.  env_lock
 * is held shared by every user of the environment and exclusively only by
 * store_snapshot_install (snapshot.c), which closes and reopens it.
 *
 * LMDB: read transactions are short and come from a pool (store_rtxn_begin
 * .. store_rtxn_end); whatever a reader returns is copied out before the
 * transaction ends.  No fork() once the environment is open.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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
	uint64_t applied;

	return store_sync_durable(s, &applied);
}

/* The applied index is read before the sync starts: store_commit publishes
 * c_applied only after mdb_txn_commit returned, so the transaction that
 * recorded it is in the map before msync(MS_SYNC) of the whole map begins,
 * and is on disk when it returns.  (MDB_WRITEMAP: mdb_env_sync(env, 1) is
 * that msync; MDB_NOSYNC only stops commits from doing it themselves.) */
int store_sync_durable(store *s, uint64_t *applied)
{
	int rc;

	*applied = atomic_load(&s->c_applied);
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
