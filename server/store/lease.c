/*
 * store/lease.c - leases in the store: grant and revoke (which deletes the
 * keys attached), the leasekeys index that put and delete keep in step,
 * and the reads store_lease_list / store_lease_get.  The host keeps TTL
 * deadlines in memory; the store keeps which leases exist and their keys.
 *
 * Revoke re-seeks its cursors on every pass instead of walking them,
 * since no cursor position survives a write; the readers copy ids and keys
 * out before their short read transaction ends.
 */
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

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

/* ================================================================== */
/* Grant and revoke (apply batch)                                      */

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

/* ================================================================== */
/* Reads (any thread)                                                  */

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
