/*
 * wire.h - the etcfs wire format, version 1.
 *
 * Every message on a client connection, every Raft log entry payload and the
 * native peer transport use this one codec.  A frame is
 *
 *     offset size field
 *          0    4 magic        0x45544346 ("ETCF"), big-endian
 *          4    1 version      EF_WIRE_VERSION
 *          5    1 type         enum ef_msg_type
 *          6    2 flags        0 (reserved, must be 0)
 *          8    8 request id   chosen by the requester, echoed in the response
 *         16    4 body length  bytes that follow the header
 *         20    - body
 *
 * All integers are big-endian.  Inside the body, scalars are fixed width,
 * byte strings are a u32 length followed by the bytes, arrays are a u32 count
 * followed by the elements, and optional sub-messages are a u8 presence flag
 * followed by the element.  The exact body layout of each type is its
 * field table in wire_table.c (one line per field, in wire order).
 *
 * Decoding never reads or writes outside the input, never aborts, and rejects
 * truncated input, trailing bytes, bodies over the caller's limit, unknown
 * versions and unknown types with an EF_E_* code.  Decoded byte strings point
 * into the input buffer (zero copy); arrays are allocated from an ef_arena,
 * so one ef_arena_free() releases a whole decoded message.  The caller keeps
 * the input buffer alive as long as the decoded message is used.
 */
#ifndef EF_WIRE_H
#define EF_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "errors.h"

#define EF_WIRE_MAGIC 0x45544346u
#define EF_WIRE_VERSION 1
#define EF_WIRE_HDR_LEN 20

/* Default limits, as etcd's. */
#define EF_DEFAULT_MAX_REQUEST_BYTES (1536u * 1024u) /* --max-request-bytes */
#define EF_DEFAULT_MAX_TXN_OPS 128
#define EF_MAX_KEY_BYTES 500 /* LMDB keeps keys below 511 bytes */
#define EF_MAX_RESPONSE_BYTES (512u * 1024u * 1024u)

/* ------------------------------------------------------------------ */
/* Arena: a bump allocator owning everything a decode allocates.       */

typedef struct ef_arena ef_arena;
ef_arena *ef_arena_new(void);
/* Zeroed memory, 16-byte aligned; NULL when out of memory. */
void *ef_arena_alloc(ef_arena *a, size_t n);
/* Copy n bytes into the arena (for building messages from short-lived data). */
void *ef_arena_dup(ef_arena *a, const void *p, size_t n);
void ef_arena_reset(ef_arena *a);
void ef_arena_free(ef_arena *a);

/* ------------------------------------------------------------------ */
/* Growable output buffer.                                              */

typedef struct ef_wbuf {
	uint8_t *p;
	size_t len, cap;
	int err; /* sticky: EF_E_NOMEM once any append failed */
} ef_wbuf;
void ef_wbuf_init(ef_wbuf *b);
void ef_wbuf_free(ef_wbuf *b);
void ef_wbuf_reset(ef_wbuf *b); /* len = 0, keeps memory */
void ef_wbuf_put(ef_wbuf *b, const void *p, size_t n);
void ef_wbuf_u8(ef_wbuf *b, uint8_t v);
void ef_wbuf_u32(ef_wbuf *b, uint32_t v);
void ef_wbuf_u64(ef_wbuf *b, uint64_t v);
void ef_wbuf_bytes(ef_wbuf *b, const void *p, uint32_t n); /* u32 length + bytes */

/* Bounds-checked reader (used by wire.c and by the other codecs of the project:
 * WAL records, Raft messages, store records).  Every getter returns 0 or
 * EF_E_TRUNCATED and never reads past end. */
typedef struct ef_rbuf {
	const uint8_t *p, *end;
} ef_rbuf;
int ef_rbuf_u8(ef_rbuf *r, uint8_t *v);
int ef_rbuf_u32(ef_rbuf *r, uint32_t *v);
int ef_rbuf_u64(ef_rbuf *r, uint64_t *v);
int ef_rbuf_i64(ef_rbuf *r, int64_t *v);

/* Big-endian helpers. */
static inline void ef_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}
static inline void ef_be64(uint8_t *p, uint64_t v)
{
	ef_be32(p, (uint32_t)(v >> 32));
	ef_be32(p + 4, (uint32_t)v);
}
static inline uint32_t ef_get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline uint64_t ef_get_be64(const uint8_t *p)
{
	return (uint64_t)ef_get_be32(p) << 32 | ef_get_be32(p + 4);
}

/* ------------------------------------------------------------------ */
/* Message bodies.                                                      */

/* A binary-safe byte string.  After decode it points into the input. */
typedef struct ef_buf {
	const uint8_t *p;
	uint32_t n;
} ef_buf;

typedef struct ef_kv {
	ef_buf key, value;
	int64_t create_revision, mod_revision, version, lease;
	int64_t mod_time_ns; /* wall clock (ns since epoch) when mod_revision was proposed */
} ef_kv;

enum ef_sort_order {
	EF_SORT_NONE = 0,
	EF_SORT_ASCEND = 1,
	EF_SORT_DESCEND = 2
};
enum ef_sort_target {
	EF_SORT_KEY = 0,
	EF_SORT_VERSION = 1,
	EF_SORT_CREATE = 2,
	EF_SORT_MOD = 3,
	EF_SORT_VALUE = 4
};

/* Range semantics as etcd's: range_end empty = the single key; range_end
 * "\0" (one zero byte) = every key >= key (from-key); otherwise [key, range_end).
 * A prefix is expressed by the caller as range_end = prefix with its last
 * byte incremented (ef_prefix_end()). */
typedef struct ef_range_req {
	ef_buf key, range_end;
	int64_t limit;    /* 0 = no limit */
	int64_t revision; /* 0 = current */
	uint8_t sort_order, sort_target;
	uint8_t serializable, keys_only, count_only;
	int64_t min_mod_revision, max_mod_revision, min_create_revision, max_create_revision;
} ef_range_req;

typedef struct ef_range_resp {
	ef_kv *kvs;
	uint32_t n_kvs;
	uint8_t more;
	int64_t count;
} ef_range_resp;

typedef struct ef_put_req {
	ef_buf key, value;
	int64_t lease;
	uint8_t prev_kv, ignore_value, ignore_lease;
} ef_put_req;

typedef struct ef_put_resp {
	ef_kv *prev_kv; /* NULL when not asked for or the key did not exist */
} ef_put_resp;

typedef struct ef_delete_req {
	ef_buf key, range_end;
	uint8_t prev_kv;
} ef_delete_req;

typedef struct ef_delete_resp {
	int64_t deleted;
	ef_kv *prev_kvs;
	uint32_t n_prev_kvs;
} ef_delete_resp;

enum ef_cmp_result {
	EF_CMP_EQUAL = 0,
	EF_CMP_GREATER = 1,
	EF_CMP_LESS = 2,
	EF_CMP_NOT_EQUAL = 3
};
enum ef_cmp_target {
	EF_CMP_VERSION = 0,
	EF_CMP_CREATE = 1,
	EF_CMP_MOD = 2,
	EF_CMP_VALUE = 3,
	EF_CMP_LEASE = 4
};

typedef struct ef_compare {
	uint8_t result, target;
	ef_buf key,
		range_end; /* range_end as in ef_range_req: every key in range must satisfy it */
	int64_t number;    /* for VERSION, CREATE, MOD, LEASE */
	ef_buf value;      /* for VALUE */
} ef_compare;

enum ef_op_type {
	EF_OP_RANGE = 1,
	EF_OP_PUT = 2,
	EF_OP_DELETE = 3
};

typedef struct ef_op {
	uint8_t type; /* enum ef_op_type */
	union {
		ef_range_req range;
		ef_put_req put;
		ef_delete_req del;
	} u;
} ef_op;

typedef struct ef_op_resp {
	uint8_t type; /* enum ef_op_type */
	union {
		ef_range_resp range;
		ef_put_resp put;
		ef_delete_resp del;
	} u;
} ef_op_resp;

typedef struct ef_txn_req {
	ef_compare *cmp;
	uint32_t n_cmp;
	ef_op *success;
	uint32_t n_success;
	ef_op *failure;
	uint32_t n_failure;
} ef_txn_req;

typedef struct ef_txn_resp {
	uint8_t succeeded;
	ef_op_resp *responses;
	uint32_t n_responses;
} ef_txn_resp;

typedef struct ef_compact_req {
	int64_t revision;
	uint8_t physical;
} ef_compact_req;

typedef struct ef_status_resp {
	ef_buf version; /* e.g. "3.4.0-etcfs0.1" style; etcfs version string */
	int64_t db_size, db_size_in_use;
	uint64_t leader;
	uint64_t raft_index, raft_term, raft_applied_index;
	uint8_t is_learner;
	ef_buf errors;       /* "" when healthy, else a reason such as "etcdserver: no leader" */
	int64_t keys;        /* keys in the store (statfs of a mount: files) */
	int64_t quota_bytes; /* --quota-backend-bytes, 0 = none (statfs: size) */
} ef_status_resp;

typedef struct ef_lease_req { /* GRANT, REVOKE, KEEPALIVE, TTL */
	int64_t id;           /* 0 in GRANT = let the server choose */
	int64_t ttl;          /* GRANT only, seconds */
	uint8_t keys;         /* TTL only: also return the attached keys */
} ef_lease_req;

typedef struct ef_lease_resp {
	int64_t id, ttl, granted_ttl;
	ef_buf *keys; /* TTL with keys */
	uint32_t n_keys;
} ef_lease_resp;

typedef struct ef_lease_list_resp {
	int64_t *ids;
	uint32_t n_ids;
} ef_lease_list_resp;

typedef struct ef_watch_create_req {
	ef_buf key, range_end;
	int64_t start_revision; /* 0 = from the next revision */
	int64_t watch_id;       /* 0 = server assigns */
	uint8_t progress_notify, prev_kv, no_put, no_delete, fragment;
} ef_watch_create_req;

typedef struct ef_watch_cancel_req {
	int64_t watch_id;
} ef_watch_cancel_req;

enum ef_event_type {
	EF_EVENT_PUT = 0,
	EF_EVENT_DELETE = 1
};

typedef struct ef_event {
	uint8_t type;   /* enum ef_event_type */
	ef_kv kv;       /* for DELETE: key, mod_revision = deletion revision, the rest 0 */
	ef_kv *prev_kv; /* NULL unless prev_kv was asked for and existed */
} ef_event;

/* One message on a watch stream (server -> client, type EF_MSG_WATCH_RESP).
 * Its request id is the id of the WATCH_CREATE request that opened the
 * stream.  created/canceled announce the state change; a response with no
 * events and neither flag is a progress notification (header.revision says
 * how far the watcher is). */
typedef struct ef_watch_resp {
	int64_t watch_id;
	uint8_t created, canceled;
	int64_t compact_revision; /* set with canceled when start_revision was compacted */
	ef_buf cancel_reason;
	ef_event *events;
	uint32_t n_events;
} ef_watch_resp;

typedef struct ef_member {
	uint64_t id;
	ef_buf name;
	ef_buf *peer_urls;
	uint32_t n_peer_urls;
	ef_buf *client_urls;
	uint32_t n_client_urls;
	uint8_t is_learner;
} ef_member;

typedef struct ef_member_list_resp {
	ef_member *members;
	uint32_t n_members;
} ef_member_list_resp;

/* MEMBER_ADD (name, peer_urls, is_learner), MEMBER_REMOVE (id),
 * MEMBER_UPDATE (id, peer_urls), MEMBER_PROMOTE (id): etcd's Cluster service. */
typedef struct ef_member_req {
	uint64_t id;
	ef_buf name;
	ef_buf *peer_urls;
	uint32_t n_peer_urls;
	uint8_t is_learner;
} ef_member_req;

/* Their responses: the member added (ADD only, n_member 1) and the members
 * after the change. */
typedef struct ef_member_resp {
	ef_member *member;
	uint32_t n_member;
	ef_member *members;
	uint32_t n_members;
} ef_member_resp;

typedef struct ef_move_leader_req {
	uint64_t target_id;
} ef_move_leader_req;

typedef struct ef_error_resp {
	uint32_t code; /* EF_E_* */
	ef_buf message;
} ef_error_resp;

/* Response header, carried by every response (as etcd's ResponseHeader). */
typedef struct ef_resp_header {
	uint64_t cluster_id, member_id;
	int64_t revision;
	uint64_t raft_term;
} ef_resp_header;

/* Message types.  Responses are request | 0x80. */
enum ef_msg_type {
	EF_MSG_RANGE = 1,
	EF_MSG_PUT = 2,
	EF_MSG_DELETE = 3,
	EF_MSG_TXN = 4,
	EF_MSG_COMPACT = 5,
	EF_MSG_STATUS = 6,
	EF_MSG_LEASE_GRANT = 7,
	EF_MSG_LEASE_REVOKE = 8,
	EF_MSG_LEASE_KEEPALIVE = 9,
	EF_MSG_LEASE_TTL = 10,
	EF_MSG_LEASE_LIST = 11,
	EF_MSG_WATCH_CREATE = 12,
	EF_MSG_WATCH_CANCEL = 13,
	EF_MSG_WATCH_PROGRESS =
		14, /* ask for a progress notification on every watch of the connection */
	EF_MSG_MEMBER_LIST = 15,
	EF_MSG_MOVE_LEADER = 16,
	EF_MSG_MEMBER_ADD = 17,
	EF_MSG_MEMBER_REMOVE = 18,
	EF_MSG_MEMBER_UPDATE = 19,
	EF_MSG_MEMBER_PROMOTE = 20,
	EF_MSG__LAST_REQ = 20,

	EF_MSG_RESP = 0x80,
	EF_MSG_RANGE_RESP = 0x81,
	EF_MSG_PUT_RESP = 0x82,
	EF_MSG_DELETE_RESP = 0x83,
	EF_MSG_TXN_RESP = 0x84,
	EF_MSG_COMPACT_RESP = 0x85,
	EF_MSG_STATUS_RESP = 0x86,
	EF_MSG_LEASE_GRANT_RESP = 0x87,
	EF_MSG_LEASE_REVOKE_RESP = 0x88,
	EF_MSG_LEASE_KEEPALIVE_RESP = 0x89,
	EF_MSG_LEASE_TTL_RESP = 0x8a,
	EF_MSG_LEASE_LIST_RESP = 0x8b,
	EF_MSG_WATCH_RESP = 0x8c, /* answers CREATE, CANCEL, PROGRESS and carries events */
	EF_MSG_MEMBER_LIST_RESP = 0x8f,
	EF_MSG_MOVE_LEADER_RESP = 0x90,
	EF_MSG_MEMBER_ADD_RESP = 0x91,
	EF_MSG_MEMBER_REMOVE_RESP = 0x92,
	EF_MSG_MEMBER_UPDATE_RESP = 0x93,
	EF_MSG_MEMBER_PROMOTE_RESP = 0x94,
	EF_MSG_ERROR = 0xff
};

typedef struct ef_msg {
	uint8_t type;       /* enum ef_msg_type */
	uint64_t id;        /* request id */
	ef_resp_header hdr; /* responses only (encoded for every type >= 0x80 but ERROR) */
	union {
		ef_range_req range;
		ef_range_resp range_resp;
		ef_put_req put;
		ef_put_resp put_resp;
		ef_delete_req del;
		ef_delete_resp del_resp;
		ef_txn_req txn;
		ef_txn_resp txn_resp;
		ef_compact_req compact;
		ef_status_resp status_resp;
		ef_lease_req lease;
		ef_lease_resp lease_resp;
		ef_lease_list_resp lease_list_resp;
		ef_watch_create_req watch_create;
		ef_watch_cancel_req watch_cancel;
		ef_watch_resp watch_resp;
		ef_member_list_resp member_list_resp;
		ef_move_leader_req move_leader;
		ef_member_req member;
		ef_member_resp member_resp;
		ef_error_resp error;
	} u;
} ef_msg;

/* Frame header, as decoded. */
typedef struct ef_frame_hdr {
	uint8_t version, type;
	uint16_t flags;
	uint64_t id;
	uint32_t body_len;
} ef_frame_hdr;

/* Append the whole frame (header and body) of m to out.  Returns 0 or an
 * EF_E_* code (EF_E_NOMEM, EF_E_UNKNOWN_TYPE, EF_E_TOO_LARGE past 4 GiB). */
int ef_encode(const ef_msg *m, ef_wbuf *out);

/* Validate the 20-byte header at p (n >= EF_WIRE_HDR_LEN, else EF_E_TRUNCATED):
 * magic, version, known type, flags 0, body_len <= max_body. */
int ef_decode_header(const uint8_t *p, size_t n, size_t max_body, ef_frame_hdr *h);

/* Decode a whole frame of exactly n bytes.  On success *m is filled, strings
 * point into p, arrays live in a.  On failure returns the code and *m is
 * unspecified (arena memory is released with the arena). */
int ef_decode(const uint8_t *p, size_t n, size_t max_body, ef_arena *a, ef_msg *m);

/* Decode only a body of the given type (used for Raft entry payloads, whose
 * framing is the log's).  Same guarantees as ef_decode. */
int ef_decode_body(uint8_t type, const uint8_t *p, size_t n, ef_arena *a, ef_msg *m);
/* Encode only the body of m (no frame header). */
int ef_encode_body(const ef_msg *m, ef_wbuf *out);

/* Helpers. */
static inline ef_buf ef_str(const char *s);
/* range_end for "every key starting with prefix": prefix with the last byte
 * that is not 0xff incremented and what follows dropped; "\0" when prefix is
 * all 0xff or empty.  Written into the arena. */
ef_buf ef_prefix_end(ef_arena *a, ef_buf prefix);
/* Total size of the user data a request carries (keys and values), checked
 * against --max-request-bytes. */
size_t ef_request_size(const ef_msg *m);
/* Deep copy of a message into arena a (strings and arrays copied), so it can
 * outlive the buffer it was decoded from. 0 or EF_E_NOMEM. */
int ef_msg_copy(ef_arena *a, ef_msg *dst, const ef_msg *src);
/* Name of a message type ("RANGE", "PUT_RESP", ...), "UNKNOWN" otherwise. */
const char *ef_msg_type_name(uint8_t type);

#include <string.h>
static inline ef_buf ef_str(const char *s)
{
	ef_buf b = {(const uint8_t *)s, (uint32_t)strlen(s)};
	return b;
}

#endif
