/*
 * store/apply.c - the apply batch: store_begin opens the one LMDB write
 * transaction, store_apply runs one committed request in it (dispatch to
 * write.c, txn.c, compact.c, lease.c), store_commit records the applied
 * index in that same transaction and publishes the new committed state.
 *
 * Requests run in the batch transaction itself: the environment uses
 * MDB_WRITEMAP, which rules out nested transactions, so a request that
 * fails must have written nothing.  Every request checks everything it can
 * fail on before its first write (struct wctx.dirty); a request-level
 * error before that leaves the store unchanged, anything after it loses
 * the batch and is returned to the host, which must stop.
 */
#include <stdatomic.h>
#include <string.h>

#include "store_int.h"

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
