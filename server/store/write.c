/*
 * store/write.c - put and delete: the live record of a key replaced or
 * removed, one hist entry and its keyrev index appended per change (at the
 * request's revision, numbered by sub within it), the lease's key list
 * kept in step, and the events for the watch hub.
 *
 * Runs in the apply batch (apply.c): checks first, then writes (c->dirty).
 * LMDB: a record read in a write transaction points into a page the next
 * write may move, so old values and keys are copied out (s->scratch, kb[])
 * before anything is written.
 */
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

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

/* ================================================================== */
/* Put                                                                 */

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

/* ================================================================== */
/* Delete                                                              */

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
