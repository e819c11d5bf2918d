/*
 * store/txn.c - etcd's txn: compares evaluated against the current state,
 * then the success or failure branch run as one revision.  Because there
 * is no nested transaction to undo a failed op (apply.c), every check an
 * op could fail on (keys, ignore_* flags, duplicate keys, leases, range
 * revisions) runs on the whole branch before its first op writes.
 */
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

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
