/*
 * store/meta.c - the meta database: the state record "s/state" (revision,
 * compact revision, applied Raft index) that store_commit writes in the
 * same transaction as the batch it describes, so after a crash the store
 * says exactly which entries it holds; and the "u/<name>" cluster metadata
 * of store_meta_get/put, kept in the store so that it travels in
 * snapshots.
 *
 * store_meta_get copies the value into the caller's arena before its read
 * transaction ends (MDB_val data is valid only inside it).
 */
#include <string.h>

#include "store_int.h"

int store_state_read(store *s, MDB_txn *txn, int64_t *rev, int64_t *compact, uint64_t *applied)
{
	MDB_val k = {7, (void *)"s/state"}, v;
	int rc = mdb_get(txn, s->meta, &k, &v);

	if (rc == MDB_NOTFOUND) {
		/* as etcd: an empty store is at revision 1, the first write makes 2 */
		*rev = 1;
		*compact = 0;
		if (applied)
			*applied = 0;
		return 0;
	}
	if (rc)
		return store_lmdb_code(rc);
	if (v.mv_size != 24)
		return EF_E_CORRUPT;
	*rev = get_i64(v.mv_data);
	*compact = get_i64((uint8_t *)v.mv_data + 8);
	if (applied)
		*applied = ef_get_be64((uint8_t *)v.mv_data + 16);
	return 0;
}

int store_state_write(store *s, MDB_txn *txn)
{
	uint8_t b[24];
	MDB_val k = {7, (void *)"s/state"}, v = {24, b};

	put_i64(b, s->rev);
	put_i64(b + 8, s->compact_rev);
	ef_be64(b + 16, s->applied);
	return store_lmdb_code(mdb_put(txn, s->meta, &k, &v, 0));
}

static int meta_name(const char *name, uint8_t *buf, MDB_val *k)
{
	size_t n = strlen(name);

	if (n == 0 || n + 2 > LMDB_KEY_MAX)
		return EF_E_INVALID;
	buf[0] = 'u';
	buf[1] = '/';
	memcpy(buf + 2, name, n);
	k->mv_data = buf;
	k->mv_size = n + 2;
	return 0;
}

int store_meta_get(store *s, const char *name, ef_buf *val, ef_arena *a)
{
	uint8_t kb[LMDB_KEY_MAX + 1];
	MDB_val k, v;
	MDB_txn *txn;
	int rc = meta_name(name, kb, &k);

	if (rc)
		return rc;
	if (s->wtxn) {
		/* the apply thread sees its own uncommitted batch */
		txn = s->wtxn;
		rc = mdb_get(txn, s->meta, &k, &v);
	} else {
		if ((rc = store_rtxn_begin(s, &txn)))
			return rc;
		rc = mdb_get(txn, s->meta, &k, &v);
	}
	if (rc == MDB_NOTFOUND) {
		rc = EF_E_NOT_FOUND;
	} else if (rc) {
		rc = store_lmdb_code(rc);
	} else {
		val->n = (uint32_t)v.mv_size;
		val->p = ef_arena_dup(a, v.mv_data, v.mv_size ? v.mv_size : 1);
		rc = val->p ? 0 : EF_E_NOMEM;
	}
	if (txn != s->wtxn)
		store_rtxn_end(s, txn);
	return rc;
}

int store_meta_put(store *s, const char *name, const void *val, uint32_t len)
{
	uint8_t kb[LMDB_KEY_MAX + 1];
	MDB_val k, v = {len, (void *)val};
	int rc = meta_name(name, kb, &k);

	if (rc)
		return rc;
	if (!s->wtxn)
		return EF_E_INVALID;
	return store_lmdb_code(mdb_put(s->wtxn, s->meta, &k, &v, 0));
}
