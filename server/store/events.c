/*
 * store/events.c - store_events_since: the history (hist, keyrev) read
 * back as watch events, oldest first, whole revisions at a time, for the
 * watch hub catching up a watcher that fell behind or started in the past.
 *
 * The scan walks hist from from_rev and filters on the key range: history
 * is filed by revision, not by key.  It runs in one short pooled read
 * transaction and stops after max events, so a slow watcher never pins
 * pages for long; every event is copied into out->a before the
 * transaction ends (MDB_val data does not outlive it).
 */
#include <string.h>

#include "store_int.h"

int store_events_since(store *s, ef_buf key, ef_buf range_end, int64_t from_rev, uint32_t max,
		       int want_prev, store_events *out, int64_t *next_rev)
{
	MDB_txn *txn;
	MDB_cursor *hc = NULL, *kc = NULL;
	int64_t cur, compact, last_rev = 0;
	uint32_t rev_start = 0, n0 = out->n;
	uint8_t pos[REVKEY_LEN];
	int mode = range_mode(range_end), err = 0;
	MDB_val k, v;
	int rc = store_rtxn_begin(s, &txn);

	if (rc)
		return rc;
	if ((rc = store_state_read(s, txn, &cur, &compact, NULL)))
		goto out;
	if (from_rev < 1)
		from_rev = 1;
	if (compact > 0 && from_rev < compact) {
		rc = EF_E_COMPACTED;
		goto out;
	}
	*next_rev = cur + 1;
	if (from_rev > cur)
		goto out;
	if ((rc = store_lmdb_code(mdb_cursor_open(txn, s->hist, &hc))) ||
	    (rc = store_lmdb_code(mdb_cursor_open(txn, s->keyrev, &kc))))
		goto out;
	revkey(pos, from_rev, 0);
	k.mv_size = REVKEY_LEN;
	k.mv_data = pos;
	for (rc = mdb_cursor_get(hc, &k, &v, MDB_SET_RANGE); rc == 0 && !err;
	     rc = mdb_cursor_get(hc, &k, &v, MDB_NEXT)) {
		struct rec r;
		int64_t rev;
		ef_event *e;

		if (k.mv_size != REVKEY_LEN) {
			err = EF_E_CORRUPT;
			break;
		}
		rev = get_i64(k.mv_data);
		if ((err = store_hist_decode(&v, rev, &r)))
			break;
		if (mode == RANGE_ONE) {
			if (key_cmp(r.key, r.key_n, key.p, key.n) != 0)
				continue;
		} else if (key_cmp(r.key, r.key_n, key.p, key.n) < 0 ||
			   (mode == RANGE_TO &&
			    key_cmp(r.key, r.key_n, range_end.p, range_end.n) >= 0)) {
			continue;
		}
		if (rev != last_rev) {
			if (max > 0 && out->n - n0 >= max) {
				*next_rev = rev;
				break;
			}
			last_rev = rev;
			rev_start = out->n;
		} else if (max > 0 && out->n - n0 >= max && rev_start > n0) {
			/* this revision does not fit whole: leave it for next time */
			out->n = rev_start;
			*next_rev = rev;
			break;
		}
		e = store_ev_push(out);
		if (!e) {
			err = EF_E_NOMEM;
			break;
		}
		e->type = r.type == HIST_PUT ? EF_EVENT_PUT : EF_EVENT_DELETE;
		if (r.type == HIST_PUT) {
			err = store_kv_fill(out->a, &e->kv, r.key, r.key_n, &r, 0);
		} else {
			e->kv.key.p = ef_arena_dup(out->a, r.key, r.key_n ? r.key_n : 1);
			e->kv.key.n = r.key_n;
			e->kv.mod_revision = rev;
			err = e->kv.key.p ? 0 : EF_E_NOMEM;
		}
		if (err || !want_prev)
			continue;
		{
			MDB_val kk = {r.key_n, (void *)r.key}, kd = k, hv;
			struct rec pr;
			int prc;

			prc = mdb_cursor_get(kc, &kk, &kd, MDB_GET_BOTH);
			if (prc == 0)
				prc = mdb_cursor_get(kc, &kk, &kd, MDB_PREV_DUP);
			if (prc == MDB_NOTFOUND)
				continue;
			if (prc == 0)
				prc = mdb_get(txn, s->hist, &kd, &hv);
			if (prc) {
				err = prc == MDB_NOTFOUND ? EF_E_CORRUPT : store_lmdb_code(prc);
				break;
			}
			err = store_hist_decode(&hv, get_i64(kd.mv_data), &pr);
			if (!err && pr.type == HIST_PUT)
				e->prev_kv = store_kv_new(out->a, pr.key, pr.key_n, &pr, &err);
		}
	}
	if (!err && rc && rc != MDB_NOTFOUND)
		err = store_lmdb_code(rc);
	rc = err;
	if (rc)
		out->n = n0;
out:
	if (hc)
		mdb_cursor_close(hc);
	if (kc)
		mdb_cursor_close(kc);
	store_rtxn_end(s, txn);
	return rc;
}
