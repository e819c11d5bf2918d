/*
 * wire.c - the etcfs wire codec (format described in wire.h).
 *
 * This file holds the encoder/decoder of every client message; the arena,
 * the output buffer and the reader it builds on are in wire_buf.c.
 *
 * It sits on the hot path of every request, so:
 *   - encoding writes straight into the caller's ef_wbuf, one capacity check
 *     per field and no intermediate copies;
 *   - decoding is zero copy: byte strings point into the input, and only
 *     arrays are allocated, from an arena (bump pointer, no per-field malloc);
 *   - decoding is strict: every byte of an accepted frame is accounted for, so
 *     encode(decode(x)) == x for every accepted x (the fuzzer checks this).
 *
 * Decoding never trusts a count: before an array is allocated its count is
 * checked against the bytes that remain, using the smallest encoded size of
 * one element, so a hostile count cannot make us allocate more than a small
 * constant times the body length.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire_int.h"

/* ================================================================== */
/* Message types                                                       */

static const char *const type_names[256] = {
	[EF_MSG_RANGE] = "RANGE",
	[EF_MSG_PUT] = "PUT",
	[EF_MSG_DELETE] = "DELETE",
	[EF_MSG_TXN] = "TXN",
	[EF_MSG_COMPACT] = "COMPACT",
	[EF_MSG_STATUS] = "STATUS",
	[EF_MSG_LEASE_GRANT] = "LEASE_GRANT",
	[EF_MSG_LEASE_REVOKE] = "LEASE_REVOKE",
	[EF_MSG_LEASE_KEEPALIVE] = "LEASE_KEEPALIVE",
	[EF_MSG_LEASE_TTL] = "LEASE_TTL",
	[EF_MSG_LEASE_LIST] = "LEASE_LIST",
	[EF_MSG_WATCH_CREATE] = "WATCH_CREATE",
	[EF_MSG_WATCH_CANCEL] = "WATCH_CANCEL",
	[EF_MSG_WATCH_PROGRESS] = "WATCH_PROGRESS",
	[EF_MSG_MEMBER_LIST] = "MEMBER_LIST",
	[EF_MSG_MOVE_LEADER] = "MOVE_LEADER",
	[EF_MSG_RANGE_RESP] = "RANGE_RESP",
	[EF_MSG_PUT_RESP] = "PUT_RESP",
	[EF_MSG_DELETE_RESP] = "DELETE_RESP",
	[EF_MSG_TXN_RESP] = "TXN_RESP",
	[EF_MSG_COMPACT_RESP] = "COMPACT_RESP",
	[EF_MSG_STATUS_RESP] = "STATUS_RESP",
	[EF_MSG_LEASE_GRANT_RESP] = "LEASE_GRANT_RESP",
	[EF_MSG_LEASE_REVOKE_RESP] = "LEASE_REVOKE_RESP",
	[EF_MSG_LEASE_KEEPALIVE_RESP] = "LEASE_KEEPALIVE_RESP",
	[EF_MSG_LEASE_TTL_RESP] = "LEASE_TTL_RESP",
	[EF_MSG_LEASE_LIST_RESP] = "LEASE_LIST_RESP",
	[EF_MSG_WATCH_RESP] = "WATCH_RESP",
	[EF_MSG_MEMBER_LIST_RESP] = "MEMBER_LIST_RESP",
	[EF_MSG_MOVE_LEADER_RESP] = "MOVE_LEADER_RESP",
	[EF_MSG_ERROR] = "ERROR",
};

const char *ef_msg_type_name(uint8_t type)
{
	return type_names[type] ? type_names[type] : "UNKNOWN";
}

/* The set of known types is exactly the named ones. */
static inline int type_known(uint8_t type)
{
	return type_names[type] != NULL;
}

/* Every response type but ERROR starts its body with an ef_resp_header. */
static inline int type_has_hdr(uint8_t type)
{
	return type >= EF_MSG_RESP && type != EF_MSG_ERROR;
}

/* ================================================================== */
/* Encoder                                                             */

/* Encoding state: the first error sticks and later writes are skipped. */
struct enc {
	ef_wbuf *b;
	int err; /* 0 or EF_E_INVALID for a message that cannot be encoded */
};

static inline void e_u8(struct enc *e, uint8_t v)
{
	ef_wbuf_u8(e->b, v);
}

static inline void e_bool(struct enc *e, uint8_t v)
{
	ef_wbuf_u8(e->b, v ? 1 : 0);
}

/* An enum field, rejected when out of range so decode will accept it. */
static inline void e_enum(struct enc *e, uint8_t v, uint8_t max)
{
	if (v > max && !e->err)
		e->err = EF_E_INVALID;
	ef_wbuf_u8(e->b, v);
}

static inline void e_u32(struct enc *e, uint32_t v)
{
	ef_wbuf_u32(e->b, v);
}

static inline void e_u64(struct enc *e, uint64_t v)
{
	ef_wbuf_u64(e->b, v);
}

static inline void e_i64(struct enc *e, int64_t v)
{
	ef_wbuf_u64(e->b, (uint64_t)v);
}

static inline void e_buf(struct enc *e, ef_buf s)
{
	if (s.n && !s.p) {
		if (!e->err)
			e->err = EF_E_INVALID;
		return;
	}
	ef_wbuf_bytes(e->b, s.p, s.n);
}

/* Array count; an array with elements but no storage is a caller bug. */
static inline int e_count(struct enc *e, uint32_t n, const void *arr)
{
	if (n && !arr) {
		if (!e->err)
			e->err = EF_E_INVALID;
		return 0;
	}
	ef_wbuf_u32(e->b, n);
	return 1;
}

/* ef_resp_header (32 bytes):
 *   u64 cluster_id, u64 member_id, i64 revision, u64 raft_term */
static void e_hdr(struct enc *e, const ef_resp_header *h)
{
	e_u64(e, h->cluster_id);
	e_u64(e, h->member_id);
	e_i64(e, h->revision);
	e_u64(e, h->raft_term);
}

/* ef_kv (>= 48 bytes):
 *   bytes key, bytes value, i64 create_revision, i64 mod_revision,
 *   i64 version, i64 lease, i64 mod_time_ns */
static void e_kv(struct enc *e, const ef_kv *kv)
{
	e_buf(e, kv->key);
	e_buf(e, kv->value);
	e_i64(e, kv->create_revision);
	e_i64(e, kv->mod_revision);
	e_i64(e, kv->version);
	e_i64(e, kv->lease);
	e_i64(e, kv->mod_time_ns);
}

/* optional ef_kv: u8 present (0/1), then the kv when 1 */
static void e_opt_kv(struct enc *e, const ef_kv *kv)
{
	e_u8(e, kv != NULL);
	if (kv)
		e_kv(e, kv);
}

/* ef_kv[]: u32 count, count * ef_kv */
static void e_kvs(struct enc *e, const ef_kv *kvs, uint32_t n)
{
	if (!e_count(e, n, kvs))
		return;
	for (uint32_t i = 0; i < n; i++)
		e_kv(e, &kvs[i]);
}

/* ef_buf[]: u32 count, count * bytes */
static void e_bufs(struct enc *e, const ef_buf *v, uint32_t n)
{
	if (!e_count(e, n, v))
		return;
	for (uint32_t i = 0; i < n; i++)
		e_buf(e, v[i]);
}

/* RANGE (>= 61 bytes):
 *   bytes key, bytes range_end, i64 limit, i64 revision,
 *   u8 sort_order (0..2), u8 sort_target (0..4),
 *   u8 serializable, u8 keys_only, u8 count_only (booleans),
 *   i64 min_mod_revision, i64 max_mod_revision,
 *   i64 min_create_revision, i64 max_create_revision */
static void e_range_req(struct enc *e, const ef_range_req *r)
{
	e_buf(e, r->key);
	e_buf(e, r->range_end);
	e_i64(e, r->limit);
	e_i64(e, r->revision);
	e_enum(e, r->sort_order, EF_SORT_DESCEND);
	e_enum(e, r->sort_target, EF_SORT_VALUE);
	e_bool(e, r->serializable);
	e_bool(e, r->keys_only);
	e_bool(e, r->count_only);
	e_i64(e, r->min_mod_revision);
	e_i64(e, r->max_mod_revision);
	e_i64(e, r->min_create_revision);
	e_i64(e, r->max_create_revision);
}

/* RANGE_RESP body after the header (also a txn RANGE op response, >= 13):
 *   ef_kv[] kvs, u8 more (bool), i64 count */
static void e_range_resp(struct enc *e, const ef_range_resp *r)
{
	e_kvs(e, r->kvs, r->n_kvs);
	e_bool(e, r->more);
	e_i64(e, r->count);
}

/* PUT (>= 19 bytes):
 *   bytes key, bytes value, i64 lease,
 *   u8 prev_kv, u8 ignore_value, u8 ignore_lease (booleans) */
static void e_put_req(struct enc *e, const ef_put_req *r)
{
	e_buf(e, r->key);
	e_buf(e, r->value);
	e_i64(e, r->lease);
	e_bool(e, r->prev_kv);
	e_bool(e, r->ignore_value);
	e_bool(e, r->ignore_lease);
}

/* PUT_RESP body after the header (also a txn PUT op response, >= 1):
 *   optional ef_kv prev_kv */
static void e_put_resp(struct enc *e, const ef_put_resp *r)
{
	e_opt_kv(e, r->prev_kv);
}

/* DELETE (>= 9 bytes):
 *   bytes key, bytes range_end, u8 prev_kv (bool) */
static void e_delete_req(struct enc *e, const ef_delete_req *r)
{
	e_buf(e, r->key);
	e_buf(e, r->range_end);
	e_bool(e, r->prev_kv);
}

/* DELETE_RESP body after the header (also a txn DELETE op response, >= 12):
 *   i64 deleted, ef_kv[] prev_kvs */
static void e_delete_resp(struct enc *e, const ef_delete_resp *r)
{
	e_i64(e, r->deleted);
	e_kvs(e, r->prev_kvs, r->n_prev_kvs);
}

/* ef_compare (>= 22 bytes):
 *   u8 result (0..3), u8 target (0..4), bytes key, bytes range_end,
 *   i64 number, bytes value */
static void e_compare(struct enc *e, const ef_compare *c)
{
	e_enum(e, c->result, EF_CMP_NOT_EQUAL);
	e_enum(e, c->target, EF_CMP_LEASE);
	e_buf(e, c->key);
	e_buf(e, c->range_end);
	e_i64(e, c->number);
	e_buf(e, c->value);
}

/* ef_op (>= 10 bytes): u8 type (1 RANGE, 2 PUT, 3 DELETE), then the body of
 * that request as above.  Nested txns cannot be expressed. */
static void e_op(struct enc *e, const ef_op *op)
{
	e_u8(e, op->type);
	switch (op->type) {
	case EF_OP_RANGE:
		e_range_req(e, &op->u.range);
		break;
	case EF_OP_PUT:
		e_put_req(e, &op->u.put);
		break;
	case EF_OP_DELETE:
		e_delete_req(e, &op->u.del);
		break;
	default:
		if (!e->err)
			e->err = EF_E_INVALID;
	}
}

/* ef_op_resp (>= 2 bytes): u8 type, then the response body of that type
 * WITHOUT a header (the txn response carries the one header). */
static void e_op_resp(struct enc *e, const ef_op_resp *op)
{
	e_u8(e, op->type);
	switch (op->type) {
	case EF_OP_RANGE:
		e_range_resp(e, &op->u.range);
		break;
	case EF_OP_PUT:
		e_put_resp(e, &op->u.put);
		break;
	case EF_OP_DELETE:
		e_delete_resp(e, &op->u.del);
		break;
	default:
		if (!e->err)
			e->err = EF_E_INVALID;
	}
}

static void e_ops(struct enc *e, const ef_op *ops, uint32_t n)
{
	if (!e_count(e, n, ops))
		return;
	for (uint32_t i = 0; i < n; i++)
		e_op(e, &ops[i]);
}

/* TXN (>= 12 bytes):
 *   u32 n_cmp, n_cmp * ef_compare,
 *   u32 n_success, n_success * ef_op,
 *   u32 n_failure, n_failure * ef_op */
static void e_txn_req(struct enc *e, const ef_txn_req *t)
{
	if (e_count(e, t->n_cmp, t->cmp))
		for (uint32_t i = 0; i < t->n_cmp; i++)
			e_compare(e, &t->cmp[i]);
	e_ops(e, t->success, t->n_success);
	e_ops(e, t->failure, t->n_failure);
}

/* TXN_RESP body after the header:
 *   u8 succeeded (bool), u32 n_responses, n_responses * ef_op_resp */
static void e_txn_resp(struct enc *e, const ef_txn_resp *t)
{
	e_bool(e, t->succeeded);
	if (e_count(e, t->n_responses, t->responses))
		for (uint32_t i = 0; i < t->n_responses; i++)
			e_op_resp(e, &t->responses[i]);
}

/* STATUS_RESP body after the header:
 *   bytes version, i64 db_size, i64 db_size_in_use, u64 leader,
 *   u64 raft_index, u64 raft_term, u64 raft_applied_index,
 *   u8 is_learner (bool), bytes errors */
static void e_status_resp(struct enc *e, const ef_status_resp *s)
{
	e_buf(e, s->version);
	e_i64(e, s->db_size);
	e_i64(e, s->db_size_in_use);
	e_u64(e, s->leader);
	e_u64(e, s->raft_index);
	e_u64(e, s->raft_term);
	e_u64(e, s->raft_applied_index);
	e_bool(e, s->is_learner);
	e_buf(e, s->errors);
}

/* ef_event (>= 50 bytes): u8 type (0 PUT, 1 DELETE), ef_kv kv, optional ef_kv prev_kv */
static void e_event(struct enc *e, const ef_event *ev)
{
	e_enum(e, ev->type, EF_EVENT_DELETE);
	e_kv(e, &ev->kv);
	e_opt_kv(e, ev->prev_kv);
}

/* WATCH_RESP body after the header:
 *   i64 watch_id, u8 created, u8 canceled (booleans), i64 compact_revision,
 *   bytes cancel_reason, u32 n_events, n_events * ef_event */
static void e_watch_resp(struct enc *e, const ef_watch_resp *w)
{
	e_i64(e, w->watch_id);
	e_bool(e, w->created);
	e_bool(e, w->canceled);
	e_i64(e, w->compact_revision);
	e_buf(e, w->cancel_reason);
	if (e_count(e, w->n_events, w->events))
		for (uint32_t i = 0; i < w->n_events; i++)
			e_event(e, &w->events[i]);
}

/* ef_member (>= 21 bytes):
 *   u64 id, bytes name, ef_buf[] peer_urls, ef_buf[] client_urls, u8 is_learner (bool) */
static void e_member(struct enc *e, const ef_member *mb)
{
	e_u64(e, mb->id);
	e_buf(e, mb->name);
	e_bufs(e, mb->peer_urls, mb->n_peer_urls);
	e_bufs(e, mb->client_urls, mb->n_client_urls);
	e_bool(e, mb->is_learner);
}

/*
 * Bodies by message type (the header, when there is one, comes first):
 *
 *   RANGE              e_range_req
 *   PUT                e_put_req
 *   DELETE             e_delete_req
 *   TXN                e_txn_req
 *   COMPACT            i64 revision, u8 physical (bool)
 *   STATUS             empty
 *   LEASE_GRANT, LEASE_REVOKE, LEASE_KEEPALIVE, LEASE_TTL
 *                      i64 id, i64 ttl, u8 keys (bool)
 *   LEASE_LIST         empty
 *   WATCH_CREATE       bytes key, bytes range_end, i64 start_revision,
 *                      i64 watch_id, u8 progress_notify, u8 prev_kv,
 *                      u8 no_put, u8 no_delete, u8 fragment (booleans)
 *   WATCH_CANCEL       i64 watch_id
 *   WATCH_PROGRESS     empty
 *   MEMBER_LIST        empty
 *   MOVE_LEADER        u64 target_id
 *
 *   RANGE_RESP         hdr, e_range_resp
 *   PUT_RESP           hdr, e_put_resp
 *   DELETE_RESP        hdr, e_delete_resp
 *   TXN_RESP           hdr, e_txn_resp
 *   COMPACT_RESP       hdr
 *   STATUS_RESP        hdr, e_status_resp
 *   LEASE_{GRANT,REVOKE,KEEPALIVE,TTL}_RESP
 *                      hdr, i64 id, i64 ttl, i64 granted_ttl, ef_buf[] keys
 *   LEASE_LIST_RESP    hdr, u32 n_ids, n_ids * i64
 *   WATCH_RESP         hdr, e_watch_resp
 *   MEMBER_LIST_RESP   hdr, u32 n_members, n_members * ef_member
 *   MOVE_LEADER_RESP   hdr
 *   ERROR              u32 code, bytes message   (no header)
 */
static void e_body(struct enc *e, const ef_msg *m)
{
	const ef_lease_req *lq = &m->u.lease;
	const ef_lease_resp *lr = &m->u.lease_resp;
	const ef_watch_create_req *wc = &m->u.watch_create;

	if (type_has_hdr(m->type))
		e_hdr(e, &m->hdr);
	switch (m->type) {
	case EF_MSG_RANGE:
		e_range_req(e, &m->u.range);
		break;
	case EF_MSG_PUT:
		e_put_req(e, &m->u.put);
		break;
	case EF_MSG_DELETE:
		e_delete_req(e, &m->u.del);
		break;
	case EF_MSG_TXN:
		e_txn_req(e, &m->u.txn);
		break;
	case EF_MSG_COMPACT:
		e_i64(e, m->u.compact.revision);
		e_bool(e, m->u.compact.physical);
		break;
	case EF_MSG_LEASE_GRANT:
	case EF_MSG_LEASE_REVOKE:
	case EF_MSG_LEASE_KEEPALIVE:
	case EF_MSG_LEASE_TTL:
		e_i64(e, lq->id);
		e_i64(e, lq->ttl);
		e_bool(e, lq->keys);
		break;
	case EF_MSG_WATCH_CREATE:
		e_buf(e, wc->key);
		e_buf(e, wc->range_end);
		e_i64(e, wc->start_revision);
		e_i64(e, wc->watch_id);
		e_bool(e, wc->progress_notify);
		e_bool(e, wc->prev_kv);
		e_bool(e, wc->no_put);
		e_bool(e, wc->no_delete);
		e_bool(e, wc->fragment);
		break;
	case EF_MSG_WATCH_CANCEL:
		e_i64(e, m->u.watch_cancel.watch_id);
		break;
	case EF_MSG_MOVE_LEADER:
		e_u64(e, m->u.move_leader.target_id);
		break;
	case EF_MSG_STATUS:
	case EF_MSG_LEASE_LIST:
	case EF_MSG_WATCH_PROGRESS:
	case EF_MSG_MEMBER_LIST:
	case EF_MSG_COMPACT_RESP:
	case EF_MSG_MOVE_LEADER_RESP:
		break;
	case EF_MSG_RANGE_RESP:
		e_range_resp(e, &m->u.range_resp);
		break;
	case EF_MSG_PUT_RESP:
		e_put_resp(e, &m->u.put_resp);
		break;
	case EF_MSG_DELETE_RESP:
		e_delete_resp(e, &m->u.del_resp);
		break;
	case EF_MSG_TXN_RESP:
		e_txn_resp(e, &m->u.txn_resp);
		break;
	case EF_MSG_STATUS_RESP:
		e_status_resp(e, &m->u.status_resp);
		break;
	case EF_MSG_LEASE_GRANT_RESP:
	case EF_MSG_LEASE_REVOKE_RESP:
	case EF_MSG_LEASE_KEEPALIVE_RESP:
	case EF_MSG_LEASE_TTL_RESP:
		e_i64(e, lr->id);
		e_i64(e, lr->ttl);
		e_i64(e, lr->granted_ttl);
		e_bufs(e, lr->keys, lr->n_keys);
		break;
	case EF_MSG_LEASE_LIST_RESP:
		if (e_count(e, m->u.lease_list_resp.n_ids, m->u.lease_list_resp.ids))
			for (uint32_t i = 0; i < m->u.lease_list_resp.n_ids; i++)
				e_i64(e, m->u.lease_list_resp.ids[i]);
		break;
	case EF_MSG_WATCH_RESP:
		e_watch_resp(e, &m->u.watch_resp);
		break;
	case EF_MSG_MEMBER_LIST_RESP:
		if (e_count(e, m->u.member_list_resp.n_members, m->u.member_list_resp.members))
			for (uint32_t i = 0; i < m->u.member_list_resp.n_members; i++)
				e_member(e, &m->u.member_list_resp.members[i]);
		break;
	case EF_MSG_ERROR:
		e_u32(e, m->u.error.code);
		e_buf(e, m->u.error.message);
		break;
	}
}

/* Encode the body at the end of out; on failure out->len is restored. */
static int encode_body_at(const ef_msg *m, ef_wbuf *out, size_t start)
{
	struct enc e = {out, 0};

	e_body(&e, m);
	if (e.err || out->err) {
		out->len = start;
		return e.err ? e.err : out->err;
	}
	return 0;
}

/* Even an empty body leaves out->p pointing at memory, so callers may pass
 * out->p to memcpy and friends without a NULL check. */
int ef_encode_body(const ef_msg *m, ef_wbuf *out)
{
	if (out->err)
		return out->err;
	if (!type_known(m->type))
		return EF_E_UNKNOWN_TYPE;
	if (!out->p && wire_wbuf_grow(out, 1))
		return out->err;
	return encode_body_at(m, out, out->len);
}

int ef_encode(const ef_msg *m, ef_wbuf *out)
{
	size_t start = out->len, body_len;
	uint8_t *h;
	int rc;

	if (out->err)
		return out->err;
	if (!type_known(m->type))
		return EF_E_UNKNOWN_TYPE;
	if (!wire_wbuf_room(out, EF_WIRE_HDR_LEN))
		return out->err;
	rc = encode_body_at(m, out, start);
	if (rc)
		return rc;
	body_len = out->len - start - EF_WIRE_HDR_LEN;
	if (body_len > UINT32_MAX) {
		out->len = start;
		return EF_E_TOO_LARGE;
	}
	h = out->p + start;
	ef_be32(h, EF_WIRE_MAGIC);
	h[4] = EF_WIRE_VERSION;
	h[5] = m->type;
	h[6] = h[7] = 0;
	ef_be64(h + 8, m->id);
	ef_be32(h + 16, (uint32_t)body_len);
	return 0;
}

/* ================================================================== */
/* Decoder                                                             */

/* Smallest encoded size of one array element, used to bound counts. */
enum {
	MIN_BUF = 4,
	MIN_I64 = 8,
	MIN_KV = 4 + 4 + 5 * 8,
	MIN_CMP = 1 + 1 + 4 + 4 + 8 + 4,
	MIN_OP = 1 + (4 + 4 + 1), /* type + smallest request (DELETE) */
	MIN_OP_RESP = 1 + 1,      /* type + PUT response without prev_kv */
	MIN_EVENT = 1 + MIN_KV + 1,
	MIN_MEMBER = 8 + 4 + 4 + 4 + 1,
};

/* Decoding state: the first error sticks; after it every read yields 0 and
 * no more memory is allocated, so callers check d->err once at the end (and
 * inside loops, to stop early). */
struct dec {
	const uint8_t *p, *end; /* invariant: p <= end */
	ef_arena *a;            /* NULL: arrays cannot be decoded (EF_E_NOMEM) */
	int err;
};

static inline void d_fail(struct dec *d, int err)
{
	if (!d->err)
		d->err = err;
	d->p = d->end;
}

static inline size_t d_left(const struct dec *d)
{
	return (size_t)(d->end - d->p);
}

static inline uint8_t d_u8(struct dec *d)
{
	if (d_left(d) < 1) {
		d_fail(d, EF_E_TRUNCATED);
		return 0;
	}
	return *d->p++;
}

static inline uint8_t d_bool(struct dec *d)
{
	uint8_t v = d_u8(d);

	if (v > 1) {
		d_fail(d, EF_E_MALFORMED);
		return 0;
	}
	return v;
}

static inline uint8_t d_enum(struct dec *d, uint8_t max)
{
	uint8_t v = d_u8(d);

	if (v > max) {
		d_fail(d, EF_E_MALFORMED);
		return 0;
	}
	return v;
}

static inline uint32_t d_u32(struct dec *d)
{
	uint32_t v;

	if (d_left(d) < 4) {
		d_fail(d, EF_E_TRUNCATED);
		return 0;
	}
	v = ef_get_be32(d->p);
	d->p += 4;
	return v;
}

static inline uint64_t d_u64(struct dec *d)
{
	uint64_t v;

	if (d_left(d) < 8) {
		d_fail(d, EF_E_TRUNCATED);
		return 0;
	}
	v = ef_get_be64(d->p);
	d->p += 8;
	return v;
}

static inline int64_t d_i64(struct dec *d)
{
	return (int64_t)d_u64(d);
}

/* Byte string, pointing into the input (never NULL after a success). */
static inline ef_buf d_buf(struct dec *d)
{
	ef_buf b = {d->p, 0};
	uint32_t n = d_u32(d);

	if (n > d_left(d)) {
		d_fail(d, EF_E_TRUNCATED);
		return b;
	}
	b.p = d->p;
	b.n = n;
	d->p += n;
	return b;
}

/* Array count and storage: the count is checked against what is left before
 * anything is allocated.  Returns NULL for an empty array or an error. */
static void *d_array(struct dec *d, uint32_t *count, size_t min_elem, size_t size)
{
	uint32_t n = d_u32(d);
	void *arr;

	*count = 0;
	if (d->err || n == 0)
		return NULL;
	if ((uint64_t)n * min_elem > d_left(d)) {
		d_fail(d, EF_E_TRUNCATED);
		return NULL;
	}
	arr = d->a ? ef_arena_alloc(d->a, (size_t)n * size) : NULL;
	if (!arr) {
		d_fail(d, EF_E_NOMEM);
		return NULL;
	}
	*count = n;
	return arr;
}

static void d_hdr(struct dec *d, ef_resp_header *h)
{
	h->cluster_id = d_u64(d);
	h->member_id = d_u64(d);
	h->revision = d_i64(d);
	h->raft_term = d_u64(d);
}

static void d_kv(struct dec *d, ef_kv *kv)
{
	kv->key = d_buf(d);
	kv->value = d_buf(d);
	kv->create_revision = d_i64(d);
	kv->mod_revision = d_i64(d);
	kv->version = d_i64(d);
	kv->lease = d_i64(d);
	kv->mod_time_ns = d_i64(d);
}

static ef_kv *d_opt_kv(struct dec *d)
{
	ef_kv *kv;

	if (!d_bool(d))
		return NULL;
	if (d_left(d) < MIN_KV) {
		d_fail(d, EF_E_TRUNCATED);
		return NULL;
	}
	kv = d->a ? ef_arena_alloc(d->a, sizeof(*kv)) : NULL;
	if (!kv) {
		d_fail(d, EF_E_NOMEM);
		return NULL;
	}
	d_kv(d, kv);
	return kv;
}

static void d_kvs(struct dec *d, ef_kv **kvs, uint32_t *n)
{
	ef_kv *v = d_array(d, n, MIN_KV, sizeof(*v));

	*kvs = v;
	for (uint32_t i = 0; i < *n && !d->err; i++)
		d_kv(d, &v[i]);
}

static void d_bufs(struct dec *d, ef_buf **bufs, uint32_t *n)
{
	ef_buf *v = d_array(d, n, MIN_BUF, sizeof(*v));

	*bufs = v;
	for (uint32_t i = 0; i < *n && !d->err; i++)
		v[i] = d_buf(d);
}

static void d_range_req(struct dec *d, ef_range_req *r)
{
	r->key = d_buf(d);
	r->range_end = d_buf(d);
	r->limit = d_i64(d);
	r->revision = d_i64(d);
	r->sort_order = d_enum(d, EF_SORT_DESCEND);
	r->sort_target = d_enum(d, EF_SORT_VALUE);
	r->serializable = d_bool(d);
	r->keys_only = d_bool(d);
	r->count_only = d_bool(d);
	r->min_mod_revision = d_i64(d);
	r->max_mod_revision = d_i64(d);
	r->min_create_revision = d_i64(d);
	r->max_create_revision = d_i64(d);
}

static void d_range_resp(struct dec *d, ef_range_resp *r)
{
	d_kvs(d, &r->kvs, &r->n_kvs);
	r->more = d_bool(d);
	r->count = d_i64(d);
}

static void d_put_req(struct dec *d, ef_put_req *r)
{
	r->key = d_buf(d);
	r->value = d_buf(d);
	r->lease = d_i64(d);
	r->prev_kv = d_bool(d);
	r->ignore_value = d_bool(d);
	r->ignore_lease = d_bool(d);
}

static void d_delete_req(struct dec *d, ef_delete_req *r)
{
	r->key = d_buf(d);
	r->range_end = d_buf(d);
	r->prev_kv = d_bool(d);
}

static void d_delete_resp(struct dec *d, ef_delete_resp *r)
{
	r->deleted = d_i64(d);
	d_kvs(d, &r->prev_kvs, &r->n_prev_kvs);
}

static void d_compare(struct dec *d, ef_compare *c)
{
	c->result = d_enum(d, EF_CMP_NOT_EQUAL);
	c->target = d_enum(d, EF_CMP_LEASE);
	c->key = d_buf(d);
	c->range_end = d_buf(d);
	c->number = d_i64(d);
	c->value = d_buf(d);
}

static void d_op(struct dec *d, ef_op *op)
{
	op->type = d_u8(d);
	switch (op->type) {
	case EF_OP_RANGE:
		d_range_req(d, &op->u.range);
		break;
	case EF_OP_PUT:
		d_put_req(d, &op->u.put);
		break;
	case EF_OP_DELETE:
		d_delete_req(d, &op->u.del);
		break;
	default:
		d_fail(d, EF_E_MALFORMED);
	}
}

static void d_op_resp(struct dec *d, ef_op_resp *op)
{
	op->type = d_u8(d);
	switch (op->type) {
	case EF_OP_RANGE:
		d_range_resp(d, &op->u.range);
		break;
	case EF_OP_PUT:
		op->u.put.prev_kv = d_opt_kv(d);
		break;
	case EF_OP_DELETE:
		d_delete_resp(d, &op->u.del);
		break;
	default:
		d_fail(d, EF_E_MALFORMED);
	}
}

static void d_ops(struct dec *d, ef_op **ops, uint32_t *n)
{
	ef_op *v = d_array(d, n, MIN_OP, sizeof(*v));

	*ops = v;
	for (uint32_t i = 0; i < *n && !d->err; i++)
		d_op(d, &v[i]);
}

static void d_txn_req(struct dec *d, ef_txn_req *t)
{
	ef_compare *c = d_array(d, &t->n_cmp, MIN_CMP, sizeof(*c));

	t->cmp = c;
	for (uint32_t i = 0; i < t->n_cmp && !d->err; i++)
		d_compare(d, &c[i]);
	d_ops(d, &t->success, &t->n_success);
	d_ops(d, &t->failure, &t->n_failure);
}

static void d_txn_resp(struct dec *d, ef_txn_resp *t)
{
	ef_op_resp *v;

	t->succeeded = d_bool(d);
	v = d_array(d, &t->n_responses, MIN_OP_RESP, sizeof(*v));
	t->responses = v;
	for (uint32_t i = 0; i < t->n_responses && !d->err; i++)
		d_op_resp(d, &v[i]);
}

static void d_status_resp(struct dec *d, ef_status_resp *s)
{
	s->version = d_buf(d);
	s->db_size = d_i64(d);
	s->db_size_in_use = d_i64(d);
	s->leader = d_u64(d);
	s->raft_index = d_u64(d);
	s->raft_term = d_u64(d);
	s->raft_applied_index = d_u64(d);
	s->is_learner = d_bool(d);
	s->errors = d_buf(d);
}

static void d_watch_resp(struct dec *d, ef_watch_resp *w)
{
	ef_event *v;

	w->watch_id = d_i64(d);
	w->created = d_bool(d);
	w->canceled = d_bool(d);
	w->compact_revision = d_i64(d);
	w->cancel_reason = d_buf(d);
	v = d_array(d, &w->n_events, MIN_EVENT, sizeof(*v));
	w->events = v;
	for (uint32_t i = 0; i < w->n_events && !d->err; i++) {
		v[i].type = d_enum(d, EF_EVENT_DELETE);
		d_kv(d, &v[i].kv);
		v[i].prev_kv = d_opt_kv(d);
	}
}

static void d_member_list_resp(struct dec *d, ef_member_list_resp *r)
{
	ef_member *v = d_array(d, &r->n_members, MIN_MEMBER, sizeof(*v));

	r->members = v;
	for (uint32_t i = 0; i < r->n_members && !d->err; i++) {
		v[i].id = d_u64(d);
		v[i].name = d_buf(d);
		d_bufs(d, &v[i].peer_urls, &v[i].n_peer_urls);
		d_bufs(d, &v[i].client_urls, &v[i].n_client_urls);
		v[i].is_learner = d_bool(d);
	}
}

/* Mirror of e_body: see the layout table above it. */
static void d_body(struct dec *d, ef_msg *m)
{
	ef_lease_req *lq = &m->u.lease;
	ef_lease_resp *lr = &m->u.lease_resp;
	ef_watch_create_req *wc = &m->u.watch_create;

	if (type_has_hdr(m->type))
		d_hdr(d, &m->hdr);
	switch (m->type) {
	case EF_MSG_RANGE:
		d_range_req(d, &m->u.range);
		break;
	case EF_MSG_PUT:
		d_put_req(d, &m->u.put);
		break;
	case EF_MSG_DELETE:
		d_delete_req(d, &m->u.del);
		break;
	case EF_MSG_TXN:
		d_txn_req(d, &m->u.txn);
		break;
	case EF_MSG_COMPACT:
		m->u.compact.revision = d_i64(d);
		m->u.compact.physical = d_bool(d);
		break;
	case EF_MSG_LEASE_GRANT:
	case EF_MSG_LEASE_REVOKE:
	case EF_MSG_LEASE_KEEPALIVE:
	case EF_MSG_LEASE_TTL:
		lq->id = d_i64(d);
		lq->ttl = d_i64(d);
		lq->keys = d_bool(d);
		break;
	case EF_MSG_WATCH_CREATE:
		wc->key = d_buf(d);
		wc->range_end = d_buf(d);
		wc->start_revision = d_i64(d);
		wc->watch_id = d_i64(d);
		wc->progress_notify = d_bool(d);
		wc->prev_kv = d_bool(d);
		wc->no_put = d_bool(d);
		wc->no_delete = d_bool(d);
		wc->fragment = d_bool(d);
		break;
	case EF_MSG_WATCH_CANCEL:
		m->u.watch_cancel.watch_id = d_i64(d);
		break;
	case EF_MSG_MOVE_LEADER:
		m->u.move_leader.target_id = d_u64(d);
		break;
	case EF_MSG_STATUS:
	case EF_MSG_LEASE_LIST:
	case EF_MSG_WATCH_PROGRESS:
	case EF_MSG_MEMBER_LIST:
	case EF_MSG_COMPACT_RESP:
	case EF_MSG_MOVE_LEADER_RESP:
		break;
	case EF_MSG_RANGE_RESP:
		d_range_resp(d, &m->u.range_resp);
		break;
	case EF_MSG_PUT_RESP:
		m->u.put_resp.prev_kv = d_opt_kv(d);
		break;
	case EF_MSG_DELETE_RESP:
		d_delete_resp(d, &m->u.del_resp);
		break;
	case EF_MSG_TXN_RESP:
		d_txn_resp(d, &m->u.txn_resp);
		break;
	case EF_MSG_STATUS_RESP:
		d_status_resp(d, &m->u.status_resp);
		break;
	case EF_MSG_LEASE_GRANT_RESP:
	case EF_MSG_LEASE_REVOKE_RESP:
	case EF_MSG_LEASE_KEEPALIVE_RESP:
	case EF_MSG_LEASE_TTL_RESP:
		lr->id = d_i64(d);
		lr->ttl = d_i64(d);
		lr->granted_ttl = d_i64(d);
		d_bufs(d, &lr->keys, &lr->n_keys);
		break;
	case EF_MSG_LEASE_LIST_RESP: {
		ef_lease_list_resp *ll = &m->u.lease_list_resp;
		int64_t *ids = d_array(d, &ll->n_ids, MIN_I64, sizeof(*ids));

		ll->ids = ids;
		for (uint32_t i = 0; i < ll->n_ids; i++)
			ids[i] = d_i64(d);
		break;
	}
	case EF_MSG_WATCH_RESP:
		d_watch_resp(d, &m->u.watch_resp);
		break;
	case EF_MSG_MEMBER_LIST_RESP:
		d_member_list_resp(d, &m->u.member_list_resp);
		break;
	case EF_MSG_ERROR:
		m->u.error.code = d_u32(d);
		m->u.error.message = d_buf(d);
		break;
	default:
		d_fail(d, EF_E_UNKNOWN_TYPE);
	}
}

int ef_decode_body(uint8_t type, const uint8_t *p, size_t n, ef_arena *a, ef_msg *m)
{
	struct dec d;

	memset(m, 0, sizeof(*m));
	m->type = type;
	if (!type_known(type))
		return EF_E_UNKNOWN_TYPE;
	if (!p) {
		if (n)
			return EF_E_INVALID;
		p = (const uint8_t *)""; /* an empty body: strings point at something real */
	}
	d.p = p;
	d.end = p + n;
	d.a = a;
	d.err = 0;
	d_body(&d, m);
	if (d.err)
		return d.err;
	if (d.p != d.end)
		return EF_E_MALFORMED; /* trailing bytes */
	return 0;
}

int ef_decode_header(const uint8_t *p, size_t n, size_t max_body, ef_frame_hdr *h)
{
	memset(h, 0, sizeof(*h));
	if (n < EF_WIRE_HDR_LEN || !p)
		return EF_E_TRUNCATED;
	h->version = p[4];
	h->type = p[5];
	h->flags = (uint16_t)(p[6] << 8 | p[7]);
	h->id = ef_get_be64(p + 8);
	h->body_len = ef_get_be32(p + 16);
	if (ef_get_be32(p) != EF_WIRE_MAGIC)
		return EF_E_BAD_MAGIC;
	if (h->version != EF_WIRE_VERSION)
		return EF_E_VERSION;
	if (!type_known(h->type))
		return EF_E_UNKNOWN_TYPE;
	if (h->flags != 0)
		return EF_E_MALFORMED;
	if (h->body_len > max_body)
		return EF_E_TOO_LARGE;
	return 0;
}

int ef_decode(const uint8_t *p, size_t n, size_t max_body, ef_arena *a, ef_msg *m)
{
	ef_frame_hdr h;
	int rc = ef_decode_header(p, n, max_body, &h);

	if (rc) {
		memset(m, 0, sizeof(*m));
		return rc;
	}
	if (n - EF_WIRE_HDR_LEN < h.body_len)
		rc = EF_E_TRUNCATED;
	else if (n - EF_WIRE_HDR_LEN > h.body_len)
		rc = EF_E_MALFORMED;
	else
		rc = ef_decode_body(h.type, p + EF_WIRE_HDR_LEN, h.body_len, a, m);
	m->id = h.id;
	return rc;
}

/* ================================================================== */
/* Helpers                                                             */

/* Returns {NULL, 0} when the arena is out of memory (the all-0xff and empty
 * cases need no memory and always succeed). */
ef_buf ef_prefix_end(ef_arena *a, ef_buf prefix)
{
	static const uint8_t zero[1] = {0};
	ef_buf r = {zero, 1};
	uint32_t i = prefix.n;
	uint8_t *q;

	while (i > 0 && prefix.p[i - 1] == 0xff)
		i--;
	if (i == 0)
		return r;
	q = ef_arena_alloc(a, i);
	if (!q) {
		r.p = NULL;
		r.n = 0;
		return r;
	}
	memcpy(q, prefix.p, i);
	q[i - 1]++;
	r.p = q;
	r.n = i;
	return r;
}

static size_t range_req_size(const ef_range_req *r)
{
	return (size_t)r->key.n + r->range_end.n;
}

static size_t put_req_size(const ef_put_req *r)
{
	return (size_t)r->key.n + r->value.n;
}

static size_t delete_req_size(const ef_delete_req *r)
{
	return (size_t)r->key.n + r->range_end.n;
}

static size_t ops_size(const ef_op *ops, uint32_t n)
{
	size_t s = 0;

	for (uint32_t i = 0; i < n; i++) {
		switch (ops[i].type) {
		case EF_OP_RANGE:
			s += range_req_size(&ops[i].u.range);
			break;
		case EF_OP_PUT:
			s += put_req_size(&ops[i].u.put);
			break;
		case EF_OP_DELETE:
			s += delete_req_size(&ops[i].u.del);
			break;
		}
	}
	return s;
}

size_t ef_request_size(const ef_msg *m)
{
	const ef_txn_req *t = &m->u.txn;
	size_t s = 0;

	switch (m->type) {
	case EF_MSG_RANGE:
		return range_req_size(&m->u.range);
	case EF_MSG_PUT:
		return put_req_size(&m->u.put);
	case EF_MSG_DELETE:
		return delete_req_size(&m->u.del);
	case EF_MSG_WATCH_CREATE:
		return (size_t)m->u.watch_create.key.n + m->u.watch_create.range_end.n;
	case EF_MSG_TXN:
		for (uint32_t i = 0; i < t->n_cmp; i++)
			s += (size_t)t->cmp[i].key.n + t->cmp[i].range_end.n + t->cmp[i].value.n;
		return s + ops_size(t->success, t->n_success) + ops_size(t->failure, t->n_failure);
	default:
		return 0;
	}
}

/* ------------------------------------------------------------------ */
/* Deep copy.  Every copier starts from a shallow copy already in place
 * and replaces the pointers it finds with arena copies. */

static const uint8_t empty_str[1];

static int c_buf(ef_arena *a, ef_buf *b)
{
	void *p;

	if (b->n == 0) {
		b->p = empty_str;
		return 0;
	}
	p = ef_arena_dup(a, b->p, b->n);
	if (!p)
		return EF_E_NOMEM;
	b->p = p;
	return 0;
}

/* An arena copy of an array (NULL when empty); *bad set when out of memory. */
static void *dup_arr(ef_arena *a, const void *src, uint32_t n, size_t size, int *bad)
{
	void *p;

	if (n == 0 || !src)
		return NULL;
	p = ef_arena_dup(a, src, (size_t)n * size);
	if (!p)
		*bad = 1;
	return p;
}

/* Replace array pointer arr (n elements) by an arena copy; true when out of memory. */
#define C_ARRAY(a, arr, n)                                               \
	({                                                               \
		int bad_ = 0;                                            \
		(arr) = dup_arr((a), (arr), (n), sizeof(*(arr)), &bad_); \
		bad_;                                                    \
	})

static int c_kv(ef_arena *a, ef_kv *kv)
{
	return c_buf(a, &kv->key) || c_buf(a, &kv->value) ? EF_E_NOMEM : 0;
}

static int c_opt_kv(ef_arena *a, ef_kv **kv)
{
	if (!*kv)
		return 0;
	return C_ARRAY(a, *kv, 1) || c_kv(a, *kv) ? EF_E_NOMEM : 0;
}

static int c_kvs(ef_arena *a, ef_kv **kvs, uint32_t n)
{
	if (C_ARRAY(a, *kvs, n))
		return EF_E_NOMEM;
	for (uint32_t i = 0; i < n && *kvs; i++)
		if (c_kv(a, &(*kvs)[i]))
			return EF_E_NOMEM;
	return 0;
}

static int c_bufs(ef_arena *a, ef_buf **v, uint32_t n)
{
	if (C_ARRAY(a, *v, n))
		return EF_E_NOMEM;
	for (uint32_t i = 0; i < n && *v; i++)
		if (c_buf(a, &(*v)[i]))
			return EF_E_NOMEM;
	return 0;
}

static int c_ops(ef_arena *a, ef_op **ops, uint32_t n)
{
	if (C_ARRAY(a, *ops, n))
		return EF_E_NOMEM;
	for (uint32_t i = 0; i < n && *ops; i++) {
		ef_op *op = &(*ops)[i];
		int bad = 0;

		switch (op->type) {
		case EF_OP_RANGE:
			bad = c_buf(a, &op->u.range.key) || c_buf(a, &op->u.range.range_end);
			break;
		case EF_OP_PUT:
			bad = c_buf(a, &op->u.put.key) || c_buf(a, &op->u.put.value);
			break;
		case EF_OP_DELETE:
			bad = c_buf(a, &op->u.del.key) || c_buf(a, &op->u.del.range_end);
			break;
		}
		if (bad)
			return EF_E_NOMEM;
	}
	return 0;
}

static int c_op_resps(ef_arena *a, ef_op_resp **ops, uint32_t n)
{
	if (C_ARRAY(a, *ops, n))
		return EF_E_NOMEM;
	for (uint32_t i = 0; i < n && *ops; i++) {
		ef_op_resp *op = &(*ops)[i];
		int bad = 0;

		switch (op->type) {
		case EF_OP_RANGE:
			bad = c_kvs(a, &op->u.range.kvs, op->u.range.n_kvs);
			break;
		case EF_OP_PUT:
			bad = c_opt_kv(a, &op->u.put.prev_kv);
			break;
		case EF_OP_DELETE:
			bad = c_kvs(a, &op->u.del.prev_kvs, op->u.del.n_prev_kvs);
			break;
		}
		if (bad)
			return EF_E_NOMEM;
	}
	return 0;
}

static int copy_body(ef_arena *a, ef_msg *m)
{
	switch (m->type) {
	case EF_MSG_RANGE:
		return c_buf(a, &m->u.range.key) || c_buf(a, &m->u.range.range_end);
	case EF_MSG_PUT:
		return c_buf(a, &m->u.put.key) || c_buf(a, &m->u.put.value);
	case EF_MSG_DELETE:
		return c_buf(a, &m->u.del.key) || c_buf(a, &m->u.del.range_end);
	case EF_MSG_TXN: {
		ef_txn_req *t = &m->u.txn;

		if (C_ARRAY(a, t->cmp, t->n_cmp))
			return 1;
		for (uint32_t i = 0; i < t->n_cmp && t->cmp; i++)
			if (c_buf(a, &t->cmp[i].key) || c_buf(a, &t->cmp[i].range_end) ||
			    c_buf(a, &t->cmp[i].value))
				return 1;
		return c_ops(a, &t->success, t->n_success) || c_ops(a, &t->failure, t->n_failure);
	}
	case EF_MSG_WATCH_CREATE:
		return c_buf(a, &m->u.watch_create.key) || c_buf(a, &m->u.watch_create.range_end);
	case EF_MSG_RANGE_RESP:
		return c_kvs(a, &m->u.range_resp.kvs, m->u.range_resp.n_kvs);
	case EF_MSG_PUT_RESP:
		return c_opt_kv(a, &m->u.put_resp.prev_kv);
	case EF_MSG_DELETE_RESP:
		return c_kvs(a, &m->u.del_resp.prev_kvs, m->u.del_resp.n_prev_kvs);
	case EF_MSG_TXN_RESP:
		return c_op_resps(a, &m->u.txn_resp.responses, m->u.txn_resp.n_responses);
	case EF_MSG_STATUS_RESP:
		return c_buf(a, &m->u.status_resp.version) || c_buf(a, &m->u.status_resp.errors);
	case EF_MSG_LEASE_GRANT_RESP:
	case EF_MSG_LEASE_REVOKE_RESP:
	case EF_MSG_LEASE_KEEPALIVE_RESP:
	case EF_MSG_LEASE_TTL_RESP:
		return c_bufs(a, &m->u.lease_resp.keys, m->u.lease_resp.n_keys);
	case EF_MSG_LEASE_LIST_RESP:
		return C_ARRAY(a, m->u.lease_list_resp.ids, m->u.lease_list_resp.n_ids);
	case EF_MSG_WATCH_RESP: {
		ef_watch_resp *w = &m->u.watch_resp;

		if (c_buf(a, &w->cancel_reason) || C_ARRAY(a, w->events, w->n_events))
			return 1;
		for (uint32_t i = 0; i < w->n_events && w->events; i++)
			if (c_kv(a, &w->events[i].kv) || c_opt_kv(a, &w->events[i].prev_kv))
				return 1;
		return 0;
	}
	case EF_MSG_MEMBER_LIST_RESP: {
		ef_member_list_resp *r = &m->u.member_list_resp;

		if (C_ARRAY(a, r->members, r->n_members))
			return 1;
		for (uint32_t i = 0; i < r->n_members && r->members; i++) {
			ef_member *mb = &r->members[i];

			if (c_buf(a, &mb->name) || c_bufs(a, &mb->peer_urls, mb->n_peer_urls) ||
			    c_bufs(a, &mb->client_urls, mb->n_client_urls))
				return 1;
		}
		return 0;
	}
	case EF_MSG_ERROR:
		return c_buf(a, &m->u.error.message);
	default:
		return 0;
	}
}

int ef_msg_copy(ef_arena *a, ef_msg *dst, const ef_msg *src)
{
	if (dst != src)
		*dst = *src;
	return copy_body(a, dst) ? EF_E_NOMEM : 0;
}
