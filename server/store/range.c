/*
 * store/range.c - range reads: the iterator over the live database (the
 * state at the current revision) or over keyrev+hist (the state as of an
 * older revision), etcd's range semantics on top of it (limit, sort,
 * revision filters, keys_only, count_only), and store_range.
 *
 * The iterator runs inside a transaction it does not own: a reader's
 * short pooled read transaction (store_range) or the apply batch (txn.c's
 * compares and range ops).  it->k and it->r point into LMDB memory and
 * are valid only until the iterator moves or the transaction ends: every
 * result is copied into the caller's arena (store_kv_fill) before that.
 */
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

/* ================================================================== */
/* Iteration over live (current) or keyrev+hist (historical)           */

int store_rit_open(struct rit *it, store *s, MDB_txn *txn, int hist, int64_t at, ef_buf key,
		   ef_buf end)
{
	int rc;

	memset(it, 0, sizeof(*it));
	it->s = s;
	it->txn = txn;
	it->hist = hist;
	it->at = at;
	it->key = key;
	it->end = end;
	it->mode = range_mode(end);
	if (it->mode == RANGE_TO && key_cmp(end.p, end.n, key.p, key.n) <= 0)
		it->done = 1;
	if (it->mode == RANGE_ONE && key.n > LMDB_KEY_MAX)
		it->done = 1;
	rc = mdb_cursor_open(txn, hist ? s->keyrev : s->live, &it->c);
	return store_lmdb_code(rc);
}

void store_rit_close(struct rit *it)
{
	if (it->c)
		mdb_cursor_close(it->c);
	it->c = NULL;
}

/* For a historical iterator positioned on key it->k: load the newest entry
 * of that key at or before it->at.  1 = found a live put, 0 = none. */
static int rit_hist_load(struct rit *it, int *err)
{
	uint8_t want[REVKEY_LEN];
	MDB_val k = it->k, d, hv;
	int rc;

	*err = 0;
	rc = mdb_cursor_get(it->c, &k, &d, MDB_LAST_DUP);
	if (rc == 0 && d.mv_size == REVKEY_LEN && get_i64(d.mv_data) > it->at) {
		revkey(want, it->at + 1, 0);
		d.mv_data = want;
		d.mv_size = REVKEY_LEN;
		k = it->k;
		rc = mdb_cursor_get(it->c, &k, &d, MDB_GET_BOTH_RANGE);
		if (rc == 0)
			rc = mdb_cursor_get(it->c, &k, &d, MDB_PREV_DUP);
		if (rc == MDB_NOTFOUND) {
			/* nothing <= at; leave the cursor on the key's last dup */
			k = it->k;
			rc = mdb_cursor_get(it->c, &k, &d, MDB_SET);
			if (rc == 0)
				rc = mdb_cursor_get(it->c, &k, &d, MDB_LAST_DUP);
			if (rc) {
				*err = store_lmdb_code(rc);
				return 0;
			}
			return 0;
		}
	}
	if (rc) {
		*err = store_lmdb_code(rc);
		return 0;
	}
	if (d.mv_size != REVKEY_LEN) {
		*err = EF_E_CORRUPT;
		return 0;
	}
	rc = mdb_get(it->txn, it->s->hist, &d, &hv);
	if (rc) {
		*err = rc == MDB_NOTFOUND ? EF_E_CORRUPT : store_lmdb_code(rc);
		return 0;
	}
	*err = store_hist_decode(&hv, get_i64(d.mv_data), &it->r);
	if (*err)
		return 0;
	return it->r.type == HIST_PUT;
}

/* Advance to the next key in range that exists at the iterator's revision.
 * 0 = positioned (it->k, it->r), MDB_NOTFOUND = end, else EF_E_* code. */
int store_rit_next(struct rit *it)
{
	MDB_val d;
	int rc, err;

	for (;;) {
		if (it->done)
			return MDB_NOTFOUND;
		if (!it->started) {
			it->started = 1;
			it->k.mv_data = (void *)it->key.p;
			it->k.mv_size = it->key.n > LMDB_KEY_MAX ? LMDB_KEY_MAX : it->key.n;
			rc = mdb_cursor_get(it->c, &it->k, &d,
					    it->mode == RANGE_ONE ? MDB_SET_KEY : MDB_SET_RANGE);
		} else {
			if (it->mode == RANGE_ONE) {
				it->done = 1;
				return MDB_NOTFOUND;
			}
			rc = mdb_cursor_get(it->c, &it->k, &d,
					    it->hist ? MDB_NEXT_NODUP : MDB_NEXT);
		}
		if (rc == MDB_NOTFOUND) {
			it->done = 1;
			return MDB_NOTFOUND;
		}
		if (rc)
			return store_lmdb_code(rc);
		if (key_cmp(it->k.mv_data, it->k.mv_size, it->key.p, it->key.n) < 0)
			continue; /* only when the start key is longer than LMDB allows */
		if (it->mode == RANGE_TO &&
		    key_cmp(it->k.mv_data, it->k.mv_size, it->end.p, it->end.n) >= 0) {
			it->done = 1;
			return MDB_NOTFOUND;
		}
		if (!it->hist) {
			rc = store_live_decode(&d, &it->r);
			return rc;
		}
		if (rit_hist_load(it, &err))
			return 0;
		if (err)
			return err;
	}
}

/* ================================================================== */
/* Range                                                               */

struct sort_ctx {
	uint8_t target, desc;
};

static int kv_sort_cmp(const void *x, const void *y, void *arg)
{
	const ef_kv *a = x, *b = y;
	const struct sort_ctx *sc = arg;
	int c = 0;

	switch (sc->target) {
	case EF_SORT_VERSION:
		c = (a->version > b->version) - (a->version < b->version);
		break;
	case EF_SORT_CREATE:
		c = (a->create_revision > b->create_revision) -
		    (a->create_revision < b->create_revision);
		break;
	case EF_SORT_MOD:
		c = (a->mod_revision > b->mod_revision) - (a->mod_revision < b->mod_revision);
		break;
	case EF_SORT_VALUE:
		c = key_cmp(a->value.p, a->value.n, b->value.p, b->value.n);
		break;
	default:
		break;
	}
	if (sc->desc)
		c = -c;
	if (c == 0) {
		c = key_cmp(a->key.p, a->key.n, b->key.p, b->key.n);
		if (sc->desc && sc->target == EF_SORT_KEY)
			c = -c;
	}
	return c;
}

static int pass_filters(const ef_range_req *q, const struct rec *r)
{
	if (q->min_mod_revision > 0 && r->mod < q->min_mod_revision)
		return 0;
	if (q->max_mod_revision > 0 && r->mod > q->max_mod_revision)
		return 0;
	if (q->min_create_revision > 0 && r->create < q->min_create_revision)
		return 0;
	if (q->max_create_revision > 0 && r->create > q->max_create_revision)
		return 0;
	return 1;
}

/* Range in txn whose current revision is cur and compact revision compact. */
int store_range_txn(store *s, MDB_txn *txn, int64_t cur, int64_t compact, const ef_range_req *q,
		    ef_range_resp *out, ef_arena *a)
{
	struct rit it;
	int64_t at = q->revision > 0 ? q->revision : cur;
	int filters = q->min_mod_revision > 0 || q->max_mod_revision > 0 ||
		      q->min_create_revision > 0 || q->max_create_revision > 0;
	uint8_t order = q->sort_order;
	int64_t limit = q->limit > 0 ? q->limit : 0;
	int need_all, rc;
	uint32_t cap = 0;

	memset(out, 0, sizeof(*out));
	if (q->key.n == 0)
		return EF_E_EMPTY_KEY;
	if (q->revision > 0 && q->revision < compact)
		return EF_E_COMPACTED;
	if (q->revision > cur)
		return EF_E_FUTURE_REV;
	/* etcd: a non-key target with order NONE sorts ascending; key ascending
	 * is the natural order. */
	if (q->sort_target != EF_SORT_KEY && order == EF_SORT_NONE)
		order = EF_SORT_ASCEND;
	else if (q->sort_target == EF_SORT_KEY && order == EF_SORT_ASCEND)
		order = EF_SORT_NONE;
	need_all = filters || order != EF_SORT_NONE;

	rc = store_rit_open(&it, s, txn, at < cur, at, q->key, q->range_end);
	if (rc)
		return rc;
	while ((rc = store_rit_next(&it)) == 0) {
		ef_kv *kv;

		out->count++;
		if (q->count_only)
			continue;
		if (!need_all && limit && out->n_kvs >= limit) {
			out->more = 1;
			continue;
		}
		if (filters && !pass_filters(q, &it.r))
			continue;
		rc = store_arr_grow(a, (void **)&out->kvs, &cap, out->n_kvs, out->n_kvs + 1,
				    sizeof(ef_kv));
		if (rc)
			break;
		kv = &out->kvs[out->n_kvs];
		rc = store_kv_fill(a, kv, it.k.mv_data, (uint32_t)it.k.mv_size, &it.r,
				   q->keys_only);
		if (rc)
			break;
		out->n_kvs++;
	}
	store_rit_close(&it);
	if (rc != MDB_NOTFOUND)
		return rc;
	if (need_all && out->n_kvs > 1 && order != EF_SORT_NONE) {
		struct sort_ctx sc = {q->sort_target, order == EF_SORT_DESCEND};

		if (q->sort_target > EF_SORT_VALUE)
			sc.target = EF_SORT_KEY;
		qsort_r(out->kvs, out->n_kvs, sizeof(ef_kv), kv_sort_cmp, &sc);
	}
	if (need_all && limit && out->n_kvs > limit) {
		out->n_kvs = (uint32_t)limit;
		out->more = 1;
	}
	return 0;
}

int store_range(store *s, const ef_range_req *req, ef_range_resp *resp, int64_t *header_rev,
		ef_arena *a)
{
	MDB_txn *txn;
	int64_t rev, compact;
	int rc = store_rtxn_begin(s, &txn);

	if (rc)
		return rc;
	rc = store_state_read(s, txn, &rev, &compact, NULL);
	if (!rc)
		rc = store_range_txn(s, txn, rev, compact, req, resp, a);
	if (header_rev)
		*header_rev = rev;
	store_rtxn_end(s, txn);
	return rc;
}
