/*
 * wire_table.c - the body layout of every etcfs message, written once.
 *
 * Each C struct of wire.h that travels has one table here, one line per
 * member in wire order; wire_msgs[] maps every message type to the struct
 * its body is.  The encoder, the decoder, the deep copy and ef_request_size()
 * in wire.c all walk these tables, so a new field is one line here (and the
 * member in wire.h), and the wire layout can be read off this file alone:
 * the kinds and their encodings are listed in wire_int.h.
 *
 * The order of the lines IS the wire format: moving, inserting or removing
 * a line changes the bytes every member and client exchange, which the
 * golden frame test in tests/unit/test_wire.c and the fuzz corpus replay
 * notice.  A field is appended at the end of its struct, and only together
 * with a new EF_WIRE_VERSION (the decoder refuses every other version, so a
 * mixed-version cluster must be planned, not stumbled into).
 */
#include <stddef.h>
#include <stdint.h>

#include "wire_int.h"

/* One line per member: the layout of a table is its content. */
/* clang-format off */
/* The empty body (STATUS, LEASE_LIST, WATCH_PROGRESS, MEMBER_LIST requests;
 * COMPACT_RESP and MOVE_LEADER_RESP carry only the response header). */
static const struct wire_struct wire_empty = {"empty", 0, NULL, 0};

/* ef_resp_header (32 bytes), first in every response but ERROR. */
static const struct wire_field wire_resp_header_fields[] = {
	W_U64(ef_resp_header, cluster_id),
	W_U64(ef_resp_header, member_id),
	W_I64(ef_resp_header, revision),
	W_U64(ef_resp_header, raft_term),
};
const struct wire_struct wire_resp_header = {
	"ef_resp_header", sizeof(ef_resp_header), wire_resp_header_fields,
	sizeof(wire_resp_header_fields) / sizeof(wire_resp_header_fields[0])};

/* ef_kv (>= 48 bytes) */
static const struct wire_field wire_kv_fields[] = {
	W_BYTES(ef_kv, key),
	W_BYTES(ef_kv, value),
	W_I64(ef_kv, create_revision),
	W_I64(ef_kv, mod_revision),
	W_I64(ef_kv, version),
	W_I64(ef_kv, lease),
	W_I64(ef_kv, mod_time_ns),
};
W_TABLE(wire_kv, ef_kv);

/* RANGE (>= 61 bytes) */
static const struct wire_field wire_range_req_fields[] = {
	W_BYTES(ef_range_req, key),
	W_BYTES(ef_range_req, range_end),
	W_I64(ef_range_req, limit),
	W_I64(ef_range_req, revision),
	W_ENUM(ef_range_req, sort_order, EF_SORT_DESCEND),
	W_ENUM(ef_range_req, sort_target, EF_SORT_VALUE),
	W_BOOL(ef_range_req, serializable),
	W_BOOL(ef_range_req, keys_only),
	W_BOOL(ef_range_req, count_only),
	W_I64(ef_range_req, min_mod_revision),
	W_I64(ef_range_req, max_mod_revision),
	W_I64(ef_range_req, min_create_revision),
	W_I64(ef_range_req, max_create_revision),
};
W_TABLE(wire_range_req, ef_range_req);

/* RANGE_RESP after the header, and a txn RANGE op response (>= 13 bytes) */
static const struct wire_field wire_range_resp_fields[] = {
	W_ARRAY_OF(ef_range_resp, kvs, n_kvs, ef_kv, wire_kv),
	W_BOOL(ef_range_resp, more),
	W_I64(ef_range_resp, count),
};
W_TABLE(wire_range_resp, ef_range_resp);

/* PUT (>= 19 bytes) */
static const struct wire_field wire_put_req_fields[] = {
	W_BYTES(ef_put_req, key),
	W_BYTES(ef_put_req, value),
	W_I64(ef_put_req, lease),
	W_BOOL(ef_put_req, prev_kv),
	W_BOOL(ef_put_req, ignore_value),
	W_BOOL(ef_put_req, ignore_lease),
};
W_TABLE(wire_put_req, ef_put_req);

/* PUT_RESP after the header, and a txn PUT op response (>= 1 byte) */
static const struct wire_field wire_put_resp_fields[] = {
	W_OPT(ef_put_resp, prev_kv, ef_kv, wire_kv),
};
W_TABLE(wire_put_resp, ef_put_resp);

/* DELETE (>= 9 bytes) */
static const struct wire_field wire_delete_req_fields[] = {
	W_BYTES(ef_delete_req, key),
	W_BYTES(ef_delete_req, range_end),
	W_BOOL(ef_delete_req, prev_kv),
};
W_TABLE(wire_delete_req, ef_delete_req);

/* DELETE_RESP after the header, and a txn DELETE op response (>= 12 bytes) */
static const struct wire_field wire_delete_resp_fields[] = {
	W_I64(ef_delete_resp, deleted),
	W_ARRAY_OF(ef_delete_resp, prev_kvs, n_prev_kvs, ef_kv, wire_kv),
};
W_TABLE(wire_delete_resp, ef_delete_resp);

/* ef_compare (>= 22 bytes) */
static const struct wire_field wire_compare_fields[] = {
	W_ENUM(ef_compare, result, EF_CMP_NOT_EQUAL),
	W_ENUM(ef_compare, target, EF_CMP_LEASE),
	W_BYTES(ef_compare, key),
	W_BYTES(ef_compare, range_end),
	W_I64(ef_compare, number),
	W_BYTES(ef_compare, value),
};
W_TABLE(wire_compare, ef_compare);

/* ef_op (>= 10 bytes): u8 type, then that request's body.  Tag 4 (a nested
 * txn) has no variant: it cannot be expressed. */
static const struct wire_struct *const wire_op_variants[] = {
	[EF_OP_RANGE] = &wire_range_req,
	[EF_OP_PUT] = &wire_put_req,
	[EF_OP_DELETE] = &wire_delete_req,
};
static const struct wire_field wire_op_fields[] = {
	W_UNION(ef_op, type, u, EF_OP_DELETE, wire_op_variants),
};
W_TABLE(wire_op, ef_op);

/* ef_op_resp (>= 2 bytes): u8 type, then that response's body WITHOUT a
 * header (the txn response carries the one header). */
static const struct wire_struct *const wire_op_resp_variants[] = {
	[EF_OP_RANGE] = &wire_range_resp,
	[EF_OP_PUT] = &wire_put_resp,
	[EF_OP_DELETE] = &wire_delete_resp,
};
static const struct wire_field wire_op_resp_fields[] = {
	W_UNION(ef_op_resp, type, u, EF_OP_DELETE, wire_op_resp_variants),
};
W_TABLE(wire_op_resp, ef_op_resp);

/* TXN (>= 12 bytes) */
static const struct wire_field wire_txn_req_fields[] = {
	W_ARRAY_OF(ef_txn_req, cmp, n_cmp, ef_compare, wire_compare),
	W_ARRAY_OF(ef_txn_req, success, n_success, ef_op, wire_op),
	W_ARRAY_OF(ef_txn_req, failure, n_failure, ef_op, wire_op),
};
W_TABLE(wire_txn_req, ef_txn_req);

/* TXN_RESP after the header */
static const struct wire_field wire_txn_resp_fields[] = {
	W_BOOL(ef_txn_resp, succeeded),
	W_ARRAY_OF(ef_txn_resp, responses, n_responses, ef_op_resp, wire_op_resp),
};
W_TABLE(wire_txn_resp, ef_txn_resp);

/* COMPACT */
static const struct wire_field wire_compact_req_fields[] = {
	W_I64(ef_compact_req, revision),
	W_BOOL(ef_compact_req, physical),
};
W_TABLE(wire_compact_req, ef_compact_req);

/* STATUS_RESP after the header */
static const struct wire_field wire_status_resp_fields[] = {
	W_BYTES(ef_status_resp, version),
	W_I64(ef_status_resp, db_size),
	W_I64(ef_status_resp, db_size_in_use),
	W_U64(ef_status_resp, leader),
	W_U64(ef_status_resp, raft_index),
	W_U64(ef_status_resp, raft_term),
	W_U64(ef_status_resp, raft_applied_index),
	W_BOOL(ef_status_resp, is_learner),
	W_BYTES(ef_status_resp, errors),
	W_I64(ef_status_resp, keys),
	W_I64(ef_status_resp, quota_bytes),
};
W_TABLE(wire_status_resp, ef_status_resp);

/* LEASE_GRANT, LEASE_REVOKE, LEASE_KEEPALIVE, LEASE_TTL */
static const struct wire_field wire_lease_req_fields[] = {
	W_I64(ef_lease_req, id),
	W_I64(ef_lease_req, ttl),
	W_BOOL(ef_lease_req, keys),
};
W_TABLE(wire_lease_req, ef_lease_req);

/* LEASE_{GRANT,REVOKE,KEEPALIVE,TTL}_RESP after the header */
static const struct wire_field wire_lease_resp_fields[] = {
	W_I64(ef_lease_resp, id),
	W_I64(ef_lease_resp, ttl),
	W_I64(ef_lease_resp, granted_ttl),
	W_ARRAY(ef_lease_resp, keys, n_keys, WK_BYTES, ef_buf),
};
W_TABLE(wire_lease_resp, ef_lease_resp);

/* LEASE_LIST_RESP after the header */
static const struct wire_field wire_lease_list_resp_fields[] = {
	W_ARRAY(ef_lease_list_resp, ids, n_ids, WK_I64, int64_t),
};
W_TABLE(wire_lease_list_resp, ef_lease_list_resp);

/* WATCH_CREATE */
static const struct wire_field wire_watch_create_req_fields[] = {
	W_BYTES(ef_watch_create_req, key),
	W_BYTES(ef_watch_create_req, range_end),
	W_I64(ef_watch_create_req, start_revision),
	W_I64(ef_watch_create_req, watch_id),
	W_BOOL(ef_watch_create_req, progress_notify),
	W_BOOL(ef_watch_create_req, prev_kv),
	W_BOOL(ef_watch_create_req, no_put),
	W_BOOL(ef_watch_create_req, no_delete),
	W_BOOL(ef_watch_create_req, fragment),
};
W_TABLE(wire_watch_create_req, ef_watch_create_req);

/* WATCH_CANCEL */
static const struct wire_field wire_watch_cancel_req_fields[] = {
	W_I64(ef_watch_cancel_req, watch_id),
};
W_TABLE(wire_watch_cancel_req, ef_watch_cancel_req);

/* ef_event (>= 50 bytes) */
static const struct wire_field wire_event_fields[] = {
	W_ENUM(ef_event, type, EF_EVENT_DELETE),
	W_STRUCT(ef_event, kv, ef_kv, wire_kv),
	W_OPT(ef_event, prev_kv, ef_kv, wire_kv),
};
W_TABLE(wire_event, ef_event);

/* WATCH_RESP after the header */
static const struct wire_field wire_watch_resp_fields[] = {
	W_I64(ef_watch_resp, watch_id),
	W_BOOL(ef_watch_resp, created),
	W_BOOL(ef_watch_resp, canceled),
	W_I64(ef_watch_resp, compact_revision),
	W_BYTES(ef_watch_resp, cancel_reason),
	W_ARRAY_OF(ef_watch_resp, events, n_events, ef_event, wire_event),
};
W_TABLE(wire_watch_resp, ef_watch_resp);

/* ef_member (>= 21 bytes) */
static const struct wire_field wire_member_fields[] = {
	W_U64(ef_member, id),
	W_BYTES(ef_member, name),
	W_ARRAY(ef_member, peer_urls, n_peer_urls, WK_BYTES, ef_buf),
	W_ARRAY(ef_member, client_urls, n_client_urls, WK_BYTES, ef_buf),
	W_BOOL(ef_member, is_learner),
};
W_TABLE(wire_member, ef_member);

/* MEMBER_LIST_RESP after the header */
static const struct wire_field wire_member_list_resp_fields[] = {
	W_ARRAY_OF(ef_member_list_resp, members, n_members, ef_member, wire_member),
};
W_TABLE(wire_member_list_resp, ef_member_list_resp);

/* MOVE_LEADER */
static const struct wire_field wire_move_leader_req_fields[] = {
	W_U64(ef_move_leader_req, target_id),
};
W_TABLE(wire_move_leader_req, ef_move_leader_req);

/* MEMBER_ADD, MEMBER_REMOVE, MEMBER_UPDATE, MEMBER_PROMOTE */
static const struct wire_field wire_member_req_fields[] = {
	W_U64(ef_member_req, id),
	W_BYTES(ef_member_req, name),
	W_ARRAY(ef_member_req, peer_urls, n_peer_urls, WK_BYTES, ef_buf),
	W_BOOL(ef_member_req, is_learner),
};
W_TABLE(wire_member_req, ef_member_req);

/* their responses after the header */
static const struct wire_field wire_member_resp_fields[] = {
	W_ARRAY_OF(ef_member_resp, member, n_member, ef_member, wire_member),
	W_ARRAY_OF(ef_member_resp, members, n_members, ef_member, wire_member),
};
W_TABLE(wire_member_resp, ef_member_resp);

/* ERROR (no header) */
static const struct wire_field wire_error_resp_fields[] = {
	W_U32(ef_error_resp, code),
	W_BYTES(ef_error_resp, message),
};
W_TABLE(wire_error_resp, ef_error_resp);
/* clang-format on */

/* ================================================================== */
/* Message types: name, body, and whether the response header comes first. */

#define REQ(n, body)          \
	{                     \
		n, &(body), 0 \
	}
#define RESP(n, body)         \
	{                     \
		n, &(body), 1 \
	}

const struct wire_msg wire_msgs[256] = {
	[EF_MSG_RANGE] = REQ("RANGE", wire_range_req),
	[EF_MSG_PUT] = REQ("PUT", wire_put_req),
	[EF_MSG_DELETE] = REQ("DELETE", wire_delete_req),
	[EF_MSG_TXN] = REQ("TXN", wire_txn_req),
	[EF_MSG_COMPACT] = REQ("COMPACT", wire_compact_req),
	[EF_MSG_STATUS] = REQ("STATUS", wire_empty),
	[EF_MSG_LEASE_GRANT] = REQ("LEASE_GRANT", wire_lease_req),
	[EF_MSG_LEASE_REVOKE] = REQ("LEASE_REVOKE", wire_lease_req),
	[EF_MSG_LEASE_KEEPALIVE] = REQ("LEASE_KEEPALIVE", wire_lease_req),
	[EF_MSG_LEASE_TTL] = REQ("LEASE_TTL", wire_lease_req),
	[EF_MSG_LEASE_LIST] = REQ("LEASE_LIST", wire_empty),
	[EF_MSG_WATCH_CREATE] = REQ("WATCH_CREATE", wire_watch_create_req),
	[EF_MSG_WATCH_CANCEL] = REQ("WATCH_CANCEL", wire_watch_cancel_req),
	[EF_MSG_WATCH_PROGRESS] = REQ("WATCH_PROGRESS", wire_empty),
	[EF_MSG_MEMBER_LIST] = REQ("MEMBER_LIST", wire_empty),
	[EF_MSG_MOVE_LEADER] = REQ("MOVE_LEADER", wire_move_leader_req),
	[EF_MSG_MEMBER_ADD] = REQ("MEMBER_ADD", wire_member_req),
	[EF_MSG_MEMBER_REMOVE] = REQ("MEMBER_REMOVE", wire_member_req),
	[EF_MSG_MEMBER_UPDATE] = REQ("MEMBER_UPDATE", wire_member_req),
	[EF_MSG_MEMBER_PROMOTE] = REQ("MEMBER_PROMOTE", wire_member_req),

	[EF_MSG_RANGE_RESP] = RESP("RANGE_RESP", wire_range_resp),
	[EF_MSG_PUT_RESP] = RESP("PUT_RESP", wire_put_resp),
	[EF_MSG_DELETE_RESP] = RESP("DELETE_RESP", wire_delete_resp),
	[EF_MSG_TXN_RESP] = RESP("TXN_RESP", wire_txn_resp),
	[EF_MSG_COMPACT_RESP] = RESP("COMPACT_RESP", wire_empty),
	[EF_MSG_STATUS_RESP] = RESP("STATUS_RESP", wire_status_resp),
	[EF_MSG_LEASE_GRANT_RESP] = RESP("LEASE_GRANT_RESP", wire_lease_resp),
	[EF_MSG_LEASE_REVOKE_RESP] = RESP("LEASE_REVOKE_RESP", wire_lease_resp),
	[EF_MSG_LEASE_KEEPALIVE_RESP] = RESP("LEASE_KEEPALIVE_RESP", wire_lease_resp),
	[EF_MSG_LEASE_TTL_RESP] = RESP("LEASE_TTL_RESP", wire_lease_resp),
	[EF_MSG_LEASE_LIST_RESP] = RESP("LEASE_LIST_RESP", wire_lease_list_resp),
	[EF_MSG_WATCH_RESP] = RESP("WATCH_RESP", wire_watch_resp),
	[EF_MSG_MEMBER_LIST_RESP] = RESP("MEMBER_LIST_RESP", wire_member_list_resp),
	[EF_MSG_MOVE_LEADER_RESP] = RESP("MOVE_LEADER_RESP", wire_empty),
	[EF_MSG_MEMBER_ADD_RESP] = RESP("MEMBER_ADD_RESP", wire_member_resp),
	[EF_MSG_MEMBER_REMOVE_RESP] = RESP("MEMBER_REMOVE_RESP", wire_member_resp),
	[EF_MSG_MEMBER_UPDATE_RESP] = RESP("MEMBER_UPDATE_RESP", wire_member_resp),
	[EF_MSG_MEMBER_PROMOTE_RESP] = RESP("MEMBER_PROMOTE_RESP", wire_member_resp),
	[EF_MSG_ERROR] = REQ("ERROR", wire_error_resp), /* the one response without header */
};

const struct wire_struct *const wire_structs[] = {
	&wire_resp_header,
	&wire_kv,
	&wire_range_req,
	&wire_range_resp,
	&wire_put_req,
	&wire_put_resp,
	&wire_delete_req,
	&wire_delete_resp,
	&wire_compare,
	&wire_op,
	&wire_op_resp,
	&wire_txn_req,
	&wire_txn_resp,
	&wire_compact_req,
	&wire_status_resp,
	&wire_lease_req,
	&wire_lease_resp,
	&wire_lease_list_resp,
	&wire_watch_create_req,
	&wire_watch_cancel_req,
	&wire_event,
	&wire_watch_resp,
	&wire_member,
	&wire_member_list_resp,
	&wire_move_leader_req,
	&wire_member_req,
	&wire_member_resp,
	&wire_error_resp,
	NULL,
};
