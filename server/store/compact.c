/*
 * store/compact.c - compaction: drop the history that no read at or after
 * the compact revision can see.
 *
 * Compaction at C keeps, per key, the newest hist entry <= C when it is a
 * put and drops everything else <= C.  Invariant (after a compaction at
 * C): every key has at most one hist entry <= C and it is a put, so the
 * next compaction only walks the entries in (old C, new C].  Runs in the
 * apply batch; every cursor is re-positioned after a delete (LMDB data
 * seen before a write is not trusted after it).
 */
#include <string.h>

#include "store_int.h"

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
