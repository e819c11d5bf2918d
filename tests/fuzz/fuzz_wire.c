/*
 * fuzz_wire.c - libFuzzer target for the wire codec (proto/wire.c).
 *
 * Two decoders are driven from every input:
 *   - the whole input as a frame (ef_decode);
 *   - byte 0 as a message type and the rest as a body (ef_decode_body),
 *     which lets the fuzzer reach every body decoder without first having
 *     to guess the magic, version and body length of a header.
 * Whenever decoding succeeds the message is re-encoded and decoded again, and
 * the three must agree: the re-encoded bytes are exactly the input (the
 * decoder is strict, so an accepted encoding is the only one), the second
 * decode is field-by-field equal to the first, and a deep copy is equal too.
 * Whenever it fails, the code must be one of the codec's EF_E_* codes.
 *
 * tests/unit/test_wire.c includes this file to reuse wire_msg_eq() and
 * wire_check_input() (so the bit-flip test checks the same properties); it
 * defines WIRE_FUZZ_NO_MAIN so that LLVMFuzzerTestOneInput is left out.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../proto/wire.h"

/* memcmp that accepts NULL for zero lengths. */
static int wire_mem_eq(const void *a, const void *b, size_t n)
{
	return n == 0 || memcmp(a, b, n) == 0;
}

static int wire_buf_eq(ef_buf a, ef_buf b)
{
	return a.n == b.n && wire_mem_eq(a.p, b.p, a.n);
}

static int wire_kv_eq(const ef_kv *a, const ef_kv *b)
{
	return wire_buf_eq(a->key, b->key) && wire_buf_eq(a->value, b->value) &&
	       a->create_revision == b->create_revision && a->mod_revision == b->mod_revision &&
	       a->version == b->version && a->lease == b->lease && a->mod_time_ns == b->mod_time_ns;
}

static int wire_opt_kv_eq(const ef_kv *a, const ef_kv *b)
{
	if (!a || !b)
		return a == b;
	return wire_kv_eq(a, b);
}

static int wire_kvs_eq(const ef_kv *a, uint32_t na, const ef_kv *b, uint32_t nb)
{
	if (na != nb)
		return 0;
	for (uint32_t i = 0; i < na; i++)
		if (!wire_kv_eq(&a[i], &b[i]))
			return 0;
	return 1;
}

static int wire_bufs_eq(const ef_buf *a, uint32_t na, const ef_buf *b, uint32_t nb)
{
	if (na != nb)
		return 0;
	for (uint32_t i = 0; i < na; i++)
		if (!wire_buf_eq(a[i], b[i]))
			return 0;
	return 1;
}

static int wire_range_req_eq(const ef_range_req *a, const ef_range_req *b)
{
	return wire_buf_eq(a->key, b->key) && wire_buf_eq(a->range_end, b->range_end) &&
	       a->limit == b->limit && a->revision == b->revision &&
	       a->sort_order == b->sort_order && a->sort_target == b->sort_target &&
	       a->serializable == b->serializable && a->keys_only == b->keys_only &&
	       a->count_only == b->count_only && a->min_mod_revision == b->min_mod_revision &&
	       a->max_mod_revision == b->max_mod_revision &&
	       a->min_create_revision == b->min_create_revision &&
	       a->max_create_revision == b->max_create_revision;
}

static int wire_range_resp_eq(const ef_range_resp *a, const ef_range_resp *b)
{
	return wire_kvs_eq(a->kvs, a->n_kvs, b->kvs, b->n_kvs) && a->more == b->more &&
	       a->count == b->count;
}

static int wire_put_req_eq(const ef_put_req *a, const ef_put_req *b)
{
	return wire_buf_eq(a->key, b->key) && wire_buf_eq(a->value, b->value) &&
	       a->lease == b->lease && a->prev_kv == b->prev_kv &&
	       a->ignore_value == b->ignore_value && a->ignore_lease == b->ignore_lease;
}

static int wire_delete_req_eq(const ef_delete_req *a, const ef_delete_req *b)
{
	return wire_buf_eq(a->key, b->key) && wire_buf_eq(a->range_end, b->range_end) &&
	       a->prev_kv == b->prev_kv;
}

static int wire_delete_resp_eq(const ef_delete_resp *a, const ef_delete_resp *b)
{
	return a->deleted == b->deleted &&
	       wire_kvs_eq(a->prev_kvs, a->n_prev_kvs, b->prev_kvs, b->n_prev_kvs);
}

static int wire_op_eq(const ef_op *a, const ef_op *b)
{
	if (a->type != b->type)
		return 0;
	switch (a->type) {
	case EF_OP_RANGE:
		return wire_range_req_eq(&a->u.range, &b->u.range);
	case EF_OP_PUT:
		return wire_put_req_eq(&a->u.put, &b->u.put);
	case EF_OP_DELETE:
		return wire_delete_req_eq(&a->u.del, &b->u.del);
	}
	return 0;
}

static int wire_ops_eq(const ef_op *a, uint32_t na, const ef_op *b, uint32_t nb)
{
	if (na != nb)
		return 0;
	for (uint32_t i = 0; i < na; i++)
		if (!wire_op_eq(&a[i], &b[i]))
			return 0;
	return 1;
}

static int wire_op_resp_eq(const ef_op_resp *a, const ef_op_resp *b)
{
	if (a->type != b->type)
		return 0;
	switch (a->type) {
	case EF_OP_RANGE:
		return wire_range_resp_eq(&a->u.range, &b->u.range);
	case EF_OP_PUT:
		return wire_opt_kv_eq(a->u.put.prev_kv, b->u.put.prev_kv);
	case EF_OP_DELETE:
		return wire_delete_resp_eq(&a->u.del, &b->u.del);
	}
	return 0;
}

static int wire_txn_req_eq(const ef_txn_req *a, const ef_txn_req *b)
{
	if (a->n_cmp != b->n_cmp)
		return 0;
	for (uint32_t i = 0; i < a->n_cmp; i++) {
		const ef_compare *x = &a->cmp[i], *y = &b->cmp[i];

		if (x->result != y->result || x->target != y->target ||
		    !wire_buf_eq(x->key, y->key) || !wire_buf_eq(x->range_end, y->range_end) ||
		    x->number != y->number || !wire_buf_eq(x->value, y->value))
			return 0;
	}
	return wire_ops_eq(a->success, a->n_success, b->success, b->n_success) &&
	       wire_ops_eq(a->failure, a->n_failure, b->failure, b->n_failure);
}

static int wire_txn_resp_eq(const ef_txn_resp *a, const ef_txn_resp *b)
{
	if (a->succeeded != b->succeeded || a->n_responses != b->n_responses)
		return 0;
	for (uint32_t i = 0; i < a->n_responses; i++)
		if (!wire_op_resp_eq(&a->responses[i], &b->responses[i]))
			return 0;
	return 1;
}

static int wire_watch_resp_eq(const ef_watch_resp *a, const ef_watch_resp *b)
{
	if (a->watch_id != b->watch_id || a->created != b->created || a->canceled != b->canceled ||
	    a->compact_revision != b->compact_revision ||
	    !wire_buf_eq(a->cancel_reason, b->cancel_reason) || a->n_events != b->n_events)
		return 0;
	for (uint32_t i = 0; i < a->n_events; i++) {
		const ef_event *x = &a->events[i], *y = &b->events[i];

		if (x->type != y->type || !wire_kv_eq(&x->kv, &y->kv) ||
		    !wire_opt_kv_eq(x->prev_kv, y->prev_kv))
			return 0;
	}
	return 1;
}

static int wire_members_eq(const ef_member_list_resp *a, const ef_member_list_resp *b)
{
	if (a->n_members != b->n_members)
		return 0;
	for (uint32_t i = 0; i < a->n_members; i++) {
		const ef_member *x = &a->members[i], *y = &b->members[i];

		if (x->id != y->id || !wire_buf_eq(x->name, y->name) ||
		    !wire_bufs_eq(x->peer_urls, x->n_peer_urls, y->peer_urls, y->n_peer_urls) ||
		    !wire_bufs_eq(x->client_urls, x->n_client_urls, y->client_urls,
				  y->n_client_urls) ||
		    x->is_learner != y->is_learner)
			return 0;
	}
	return 1;
}

/* Field-by-field equality of everything the wire carries for a's type (the
 * response header is compared only for types that carry one). */
static int wire_msg_eq(const ef_msg *a, const ef_msg *b)
{
	const ef_status_resp *s = &a->u.status_resp, *t = &b->u.status_resp;
	const ef_lease_resp *l = &a->u.lease_resp, *k = &b->u.lease_resp;
	const ef_watch_create_req *w = &a->u.watch_create, *v = &b->u.watch_create;

	if (a->type != b->type || a->id != b->id)
		return 0;
	if (a->type >= EF_MSG_RESP && a->type != EF_MSG_ERROR &&
	    (a->hdr.cluster_id != b->hdr.cluster_id || a->hdr.member_id != b->hdr.member_id ||
	     a->hdr.revision != b->hdr.revision || a->hdr.raft_term != b->hdr.raft_term))
		return 0;
	switch (a->type) {
	case EF_MSG_RANGE:
		return wire_range_req_eq(&a->u.range, &b->u.range);
	case EF_MSG_PUT:
		return wire_put_req_eq(&a->u.put, &b->u.put);
	case EF_MSG_DELETE:
		return wire_delete_req_eq(&a->u.del, &b->u.del);
	case EF_MSG_TXN:
		return wire_txn_req_eq(&a->u.txn, &b->u.txn);
	case EF_MSG_COMPACT:
		return a->u.compact.revision == b->u.compact.revision &&
		       a->u.compact.physical == b->u.compact.physical;
	case EF_MSG_LEASE_GRANT:
	case EF_MSG_LEASE_REVOKE:
	case EF_MSG_LEASE_KEEPALIVE:
	case EF_MSG_LEASE_TTL:
		return a->u.lease.id == b->u.lease.id && a->u.lease.ttl == b->u.lease.ttl &&
		       a->u.lease.keys == b->u.lease.keys;
	case EF_MSG_WATCH_CREATE:
		return wire_buf_eq(w->key, v->key) && wire_buf_eq(w->range_end, v->range_end) &&
		       w->start_revision == v->start_revision && w->watch_id == v->watch_id &&
		       w->progress_notify == v->progress_notify && w->prev_kv == v->prev_kv &&
		       w->no_put == v->no_put && w->no_delete == v->no_delete &&
		       w->fragment == v->fragment;
	case EF_MSG_WATCH_CANCEL:
		return a->u.watch_cancel.watch_id == b->u.watch_cancel.watch_id;
	case EF_MSG_MOVE_LEADER:
		return a->u.move_leader.target_id == b->u.move_leader.target_id;
	case EF_MSG_RANGE_RESP:
		return wire_range_resp_eq(&a->u.range_resp, &b->u.range_resp);
	case EF_MSG_PUT_RESP:
		return wire_opt_kv_eq(a->u.put_resp.prev_kv, b->u.put_resp.prev_kv);
	case EF_MSG_DELETE_RESP:
		return wire_delete_resp_eq(&a->u.del_resp, &b->u.del_resp);
	case EF_MSG_TXN_RESP:
		return wire_txn_resp_eq(&a->u.txn_resp, &b->u.txn_resp);
	case EF_MSG_STATUS_RESP:
		return wire_buf_eq(s->version, t->version) && s->db_size == t->db_size &&
		       s->db_size_in_use == t->db_size_in_use && s->leader == t->leader &&
		       s->raft_index == t->raft_index && s->raft_term == t->raft_term &&
		       s->raft_applied_index == t->raft_applied_index &&
		       s->is_learner == t->is_learner && wire_buf_eq(s->errors, t->errors);
	case EF_MSG_LEASE_GRANT_RESP:
	case EF_MSG_LEASE_REVOKE_RESP:
	case EF_MSG_LEASE_KEEPALIVE_RESP:
	case EF_MSG_LEASE_TTL_RESP:
		return l->id == k->id && l->ttl == k->ttl && l->granted_ttl == k->granted_ttl &&
		       wire_bufs_eq(l->keys, l->n_keys, k->keys, k->n_keys);
	case EF_MSG_LEASE_LIST_RESP:
		return a->u.lease_list_resp.n_ids == b->u.lease_list_resp.n_ids &&
		       (a->u.lease_list_resp.n_ids == 0 ||
			memcmp(a->u.lease_list_resp.ids, b->u.lease_list_resp.ids,
			       a->u.lease_list_resp.n_ids * sizeof(int64_t)) == 0);
	case EF_MSG_WATCH_RESP:
		return wire_watch_resp_eq(&a->u.watch_resp, &b->u.watch_resp);
	case EF_MSG_MEMBER_LIST_RESP:
		return wire_members_eq(&a->u.member_list_resp, &b->u.member_list_resp);
	case EF_MSG_ERROR:
		return a->u.error.code == b->u.error.code &&
		       wire_buf_eq(a->u.error.message, b->u.error.message);
	default: /* types with an empty body (or only the header) */
		return 1;
	}
}

/* The failure codes the decoder may return. */
static int wire_decode_code_ok(int rc)
{
	return rc == EF_E_TRUNCATED || rc == EF_E_BAD_MAGIC || rc == EF_E_VERSION ||
	       rc == EF_E_UNKNOWN_TYPE || rc == EF_E_TOO_LARGE || rc == EF_E_MALFORMED ||
	       rc == EF_E_NOMEM;
}

/* After m was decoded from bytes p[0..n) (a frame when is_frame, else a body
 * of m->type): re-encode, decode again and compare.  0 or -1 with a message. */
static int wire_check_decoded(const ef_msg *m, const uint8_t *p, size_t n, int is_frame)
{
	ef_arena *a2 = ef_arena_new(), *a3 = ef_arena_new();
	ef_wbuf w, w3;
	ef_msg m2, m3;
	int rc, ret = -1;

	ef_wbuf_init(&w);
	ef_wbuf_init(&w3);
	if (!a2 || !a3)
		goto out;
	rc = is_frame ? ef_encode(m, &w) : ef_encode_body(m, &w);
	if (rc) {
		fprintf(stderr, "re-encode of a decoded %s failed: %s\n", ef_msg_type_name(m->type),
			ef_error_name(rc));
		goto out;
	}
	if (w.len != n || !wire_mem_eq(w.p, p, n)) {
		fprintf(stderr, "re-encoded %s differs from the accepted input\n",
			ef_msg_type_name(m->type));
		goto out;
	}
	rc = is_frame ? ef_decode(w.p, w.len, w.len, a2, &m2)
		      : ef_decode_body(m->type, w.p, w.len, a2, &m2);
	if (rc || !wire_msg_eq(m, &m2)) {
		fprintf(stderr, "second decode of %s: %s, %s\n", ef_msg_type_name(m->type),
			ef_error_name(rc), rc ? "failed" : "not equal");
		goto out;
	}
	if (ef_request_size(m) != ef_request_size(&m2)) {
		fprintf(stderr, "ef_request_size differs after a round trip\n");
		goto out;
	}
	rc = ef_msg_copy(a3, &m3, m);
	if (rc || !wire_msg_eq(m, &m3)) {
		fprintf(stderr, "ef_msg_copy of %s: %s\n", ef_msg_type_name(m->type),
			rc ? "failed" : "not equal");
		goto out;
	}
	rc = is_frame ? ef_encode(&m3, &w3) : ef_encode_body(&m3, &w3);
	if (rc || w3.len != n || !wire_mem_eq(w3.p, p, n)) {
		fprintf(stderr, "encoding of the copy of %s differs\n", ef_msg_type_name(m->type));
		goto out;
	}
	ret = 0;
out:
	ef_wbuf_free(&w);
	ef_wbuf_free(&w3);
	ef_arena_free(a2);
	ef_arena_free(a3);
	return ret;
}

/* Check every property on one arbitrary input.  0 or -1 with a message. */
static int wire_check_input(const uint8_t *data, size_t size)
{
	ef_arena *a = ef_arena_new();
	ef_msg m;
	int rc, ret = -1;

	if (!a)
		return -1;
	rc = ef_decode(data, size, EF_MAX_RESPONSE_BYTES, a, &m);
	if (rc == 0) {
		if (wire_check_decoded(&m, data, size, 1))
			goto out;
	} else if (!wire_decode_code_ok(rc)) {
		fprintf(stderr, "ef_decode returned %d (%s)\n", rc, ef_error_name(rc));
		goto out;
	}
	if (size >= 1) {
		ef_arena_reset(a);
		rc = ef_decode_body(data[0], data + 1, size - 1, a, &m);
		if (rc == 0) {
			if (wire_check_decoded(&m, data + 1, size - 1, 0))
				goto out;
		} else if (!wire_decode_code_ok(rc)) {
			fprintf(stderr, "ef_decode_body returned %d (%s)\n", rc, ef_error_name(rc));
			goto out;
		}
	}
	ret = 0;
out:
	ef_arena_free(a);
	return ret;
}

#ifndef WIRE_FUZZ_NO_MAIN
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
const char *__ubsan_default_options(void);

/* The fuzz build lets UBSan recover; undefined behaviour is a finding too. */
const char *__ubsan_default_options(void)
{
	return "halt_on_error=1:print_stacktrace=1";
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (wire_check_input(data, size))
		abort();
	return 0;
}
#endif
