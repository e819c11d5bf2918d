/*
 * test_wire.c - unit tests of the wire codec (proto/wire*.c): arena, buffers,
 * round trips of every message type with binary data, the exact bytes of a
 * frame, and the decoder's refusals (truncation at every length, trailing
 * bytes, bit flips, bad header fields, hostile counts, non-0/1 booleans),
 * and the field tables against the C structs they describe.
 *
 * With WIRE_WRITE_CORPUS=dir set, every sample frame is also written to dir
 * (that is how tests/fuzz/corpus/ was seeded).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <time.h>

#include "../../proto/wire.h"
#include "../../proto/wire_int.h"
#include "test.h"

#define WIRE_FUZZ_NO_MAIN
#include "../fuzz/fuzz_wire.c"

#define BIN(s) ((ef_buf){(const uint8_t *)(s), sizeof(s) - 1})

static const uint8_t all_types[] = {
	EF_MSG_RANGE,
	EF_MSG_PUT,
	EF_MSG_DELETE,
	EF_MSG_TXN,
	EF_MSG_COMPACT,
	EF_MSG_STATUS,
	EF_MSG_LEASE_GRANT,
	EF_MSG_LEASE_REVOKE,
	EF_MSG_LEASE_KEEPALIVE,
	EF_MSG_LEASE_TTL,
	EF_MSG_LEASE_LIST,
	EF_MSG_WATCH_CREATE,
	EF_MSG_WATCH_CANCEL,
	EF_MSG_WATCH_PROGRESS,
	EF_MSG_MEMBER_LIST,
	EF_MSG_MOVE_LEADER,
	EF_MSG_MEMBER_ADD,
	EF_MSG_MEMBER_REMOVE,
	EF_MSG_MEMBER_UPDATE,
	EF_MSG_MEMBER_PROMOTE,
	EF_MSG_RANGE_RESP,
	EF_MSG_PUT_RESP,
	EF_MSG_DELETE_RESP,
	EF_MSG_TXN_RESP,
	EF_MSG_COMPACT_RESP,
	EF_MSG_STATUS_RESP,
	EF_MSG_LEASE_GRANT_RESP,
	EF_MSG_LEASE_REVOKE_RESP,
	EF_MSG_LEASE_KEEPALIVE_RESP,
	EF_MSG_LEASE_TTL_RESP,
	EF_MSG_LEASE_LIST_RESP,
	EF_MSG_WATCH_RESP,
	EF_MSG_MEMBER_LIST_RESP,
	EF_MSG_MOVE_LEADER_RESP,
	EF_MSG_MEMBER_ADD_RESP,
	EF_MSG_MEMBER_REMOVE_RESP,
	EF_MSG_MEMBER_UPDATE_RESP,
	EF_MSG_MEMBER_PROMOTE_RESP,
	EF_MSG_ERROR,
};
#define N_TYPES (sizeof(all_types) / sizeof(all_types[0]))

/* ------------------------------------------------------------------ */
/* Sample messages: every field set, binary keys and values.           */

static ef_kv sample_kv(int i)
{
	ef_kv kv;

	memset(&kv, 0, sizeof(kv));
	kv.key = i & 1 ? BIN("\x00k\xff\x00") : BIN("/dir/\xff\xfe");
	kv.value = i & 2 ? BIN("") : BIN("v\x00\x01\xff value");
	kv.create_revision = 1000 + i;
	kv.mod_revision = INT64_MAX - i;
	kv.version = -1 - i;
	kv.lease = 0x0102030405060708LL + i;
	kv.mod_time_ns = 1700000000123456789LL;
	return kv;
}

static ef_kv *kvs_new(ef_arena *a, uint32_t n)
{
	ef_kv *v = ef_arena_alloc(a, n * sizeof(*v));

	for (uint32_t i = 0; i < n; i++)
		v[i] = sample_kv((int)i);
	return v;
}

static ef_range_req sample_range(void)
{
	ef_range_req r = {
		.key = BIN("\x00\x01\xff"),
		.range_end = BIN("\x00\x02"),
		.limit = 7,
		.revision = -9,
		.sort_order = EF_SORT_DESCEND,
		.sort_target = EF_SORT_VALUE,
		.serializable = 1,
		.keys_only = 0,
		.count_only = 1,
		.min_mod_revision = 11,
		.max_mod_revision = 12,
		.min_create_revision = 13,
		.max_create_revision = INT64_MIN,
	};
	return r;
}

static ef_put_req sample_put(void)
{
	ef_put_req p = {
		.key = BIN("k\x00\xff"),
		.value = BIN("\xff\xff\x00value"),
		.lease = 0x7fLL << 56,
		.prev_kv = 1,
		.ignore_value = 0,
		.ignore_lease = 1,
	};
	return p;
}

static ef_delete_req sample_delete(void)
{
	ef_delete_req d = {.key = BIN("a"), .range_end = BIN("\x00"), .prev_kv = 1};
	return d;
}

static void make_msg(ef_arena *a, uint8_t type, ef_msg *m)
{
	memset(m, 0, sizeof(*m));
	m->type = type;
	m->id = 0x1122334455667788ULL ^ type;
	if (type >= EF_MSG_RESP && type != EF_MSG_ERROR) {
		m->hdr.cluster_id = 0xdeadbeefcafef00dULL;
		m->hdr.member_id = 42;
		m->hdr.revision = 123456789;
		m->hdr.raft_term = UINT64_MAX;
	}
	switch (type) {
	case EF_MSG_RANGE:
		m->u.range = sample_range();
		break;
	case EF_MSG_PUT:
		m->u.put = sample_put();
		break;
	case EF_MSG_DELETE:
		m->u.del = sample_delete();
		break;
	case EF_MSG_TXN: {
		ef_txn_req *t = &m->u.txn;
		ef_compare *c = ef_arena_alloc(a, 2 * sizeof(*c));
		ef_op *s = ef_arena_alloc(a, 3 * sizeof(*s));
		ef_op *f = ef_arena_alloc(a, 1 * sizeof(*f));

		c[0].result = EF_CMP_NOT_EQUAL;
		c[0].target = EF_CMP_VALUE;
		c[0].key = BIN("\x00"
			       "cmp");
		c[0].value = BIN("\xff\x00");
		c[1].result = EF_CMP_LESS;
		c[1].target = EF_CMP_LEASE;
		c[1].key = BIN("pre");
		c[1].range_end = BIN("prf");
		c[1].number = -5;
		s[0].type = EF_OP_RANGE;
		s[0].u.range = sample_range();
		s[1].type = EF_OP_PUT;
		s[1].u.put = sample_put();
		s[2].type = EF_OP_DELETE;
		s[2].u.del = sample_delete();
		f[0].type = EF_OP_PUT;
		f[0].u.put.key = BIN("\xff");
		t->cmp = c;
		t->n_cmp = 2;
		t->success = s;
		t->n_success = 3;
		t->failure = f;
		t->n_failure = 1;
		break;
	}
	case EF_MSG_COMPACT:
		m->u.compact.revision = 77;
		m->u.compact.physical = 1;
		break;
	case EF_MSG_LEASE_GRANT:
	case EF_MSG_LEASE_REVOKE:
	case EF_MSG_LEASE_KEEPALIVE:
	case EF_MSG_LEASE_TTL:
		m->u.lease.id = 0x694d77aa21f5e10bLL;
		m->u.lease.ttl = 60;
		m->u.lease.keys = 1;
		break;
	case EF_MSG_WATCH_CREATE:
		m->u.watch_create.key = BIN("\x00w");
		m->u.watch_create.range_end = BIN("\x00x");
		m->u.watch_create.start_revision = 5;
		m->u.watch_create.watch_id = -1;
		m->u.watch_create.progress_notify = 1;
		m->u.watch_create.prev_kv = 1;
		m->u.watch_create.no_put = 0;
		m->u.watch_create.no_delete = 1;
		m->u.watch_create.fragment = 1;
		break;
	case EF_MSG_WATCH_CANCEL:
		m->u.watch_cancel.watch_id = 31337;
		break;
	case EF_MSG_MOVE_LEADER:
		m->u.move_leader.target_id = 0x8000000000000001ULL;
		break;
	case EF_MSG_MEMBER_ADD:
	case EF_MSG_MEMBER_REMOVE:
	case EF_MSG_MEMBER_UPDATE:
	case EF_MSG_MEMBER_PROMOTE: {
		ef_buf *u = ef_arena_alloc(a, 2 * sizeof(*u));

		u[0] = BIN("http://10.0.0.4:2380");
		u[1] = BIN("http://[::1]:2380");
		m->u.member.id = 0x8ce119dbebed7c42ULL;
		m->u.member.name = BIN("m4");
		m->u.member.peer_urls = u;
		m->u.member.n_peer_urls = 2;
		m->u.member.is_learner = 1;
		break;
	}
	case EF_MSG_MEMBER_ADD_RESP:
	case EF_MSG_MEMBER_REMOVE_RESP:
	case EF_MSG_MEMBER_UPDATE_RESP:
	case EF_MSG_MEMBER_PROMOTE_RESP: {
		ef_member *ms = ef_arena_alloc(a, 2 * sizeof(*ms));
		ef_buf *u = ef_arena_alloc(a, sizeof(*u));

		memset(ms, 0, 2 * sizeof(*ms));
		u[0] = BIN("http://10.0.0.4:2380");
		ms[0].id = 7;
		ms[0].peer_urls = u;
		ms[0].n_peer_urls = 1;
		ms[0].is_learner = 1;
		ms[1].id = 0xb3b3ee478a1b199fULL;
		ms[1].name = BIN("e1");
		m->u.member_resp.member = ms;
		m->u.member_resp.n_member = 1;
		m->u.member_resp.members = ms;
		m->u.member_resp.n_members = 2;
		break;
	}
	case EF_MSG_RANGE_RESP:
		m->u.range_resp.kvs = kvs_new(a, 3);
		m->u.range_resp.n_kvs = 3;
		m->u.range_resp.more = 1;
		m->u.range_resp.count = 99;
		break;
	case EF_MSG_PUT_RESP:
		m->u.put_resp.prev_kv = kvs_new(a, 1);
		break;
	case EF_MSG_DELETE_RESP:
		m->u.del_resp.deleted = 2;
		m->u.del_resp.prev_kvs = kvs_new(a, 2);
		m->u.del_resp.n_prev_kvs = 2;
		break;
	case EF_MSG_TXN_RESP: {
		ef_op_resp *r = ef_arena_alloc(a, 4 * sizeof(*r));

		r[0].type = EF_OP_RANGE;
		r[0].u.range.kvs = kvs_new(a, 2);
		r[0].u.range.n_kvs = 2;
		r[0].u.range.count = 2;
		r[1].type = EF_OP_PUT;
		r[1].u.put.prev_kv = kvs_new(a, 1);
		r[2].type = EF_OP_PUT; /* no prev_kv */
		r[3].type = EF_OP_DELETE;
		r[3].u.del.deleted = 1;
		r[3].u.del.prev_kvs = kvs_new(a, 1);
		r[3].u.del.n_prev_kvs = 1;
		m->u.txn_resp.succeeded = 1;
		m->u.txn_resp.responses = r;
		m->u.txn_resp.n_responses = 4;
		break;
	}
	case EF_MSG_STATUS_RESP:
		m->u.status_resp.version = BIN("3.4.0-etcfs0.1");
		m->u.status_resp.db_size = 1 << 20;
		m->u.status_resp.db_size_in_use = 1 << 19;
		m->u.status_resp.leader = 3;
		m->u.status_resp.raft_index = 100;
		m->u.status_resp.raft_term = 4;
		m->u.status_resp.raft_applied_index = 99;
		m->u.status_resp.is_learner = 1;
		m->u.status_resp.errors = BIN("etcdserver: no leader");
		break;
	case EF_MSG_LEASE_GRANT_RESP:
	case EF_MSG_LEASE_REVOKE_RESP:
	case EF_MSG_LEASE_KEEPALIVE_RESP:
	case EF_MSG_LEASE_TTL_RESP: {
		ef_buf *k = ef_arena_alloc(a, 3 * sizeof(*k));

		k[0] = BIN("\x00key");
		k[1] = BIN("");
		k[2] = BIN("\xff\xff");
		m->u.lease_resp.id = 12;
		m->u.lease_resp.ttl = -1;
		m->u.lease_resp.granted_ttl = 30;
		m->u.lease_resp.keys = k;
		m->u.lease_resp.n_keys = 3;
		break;
	}
	case EF_MSG_LEASE_LIST_RESP: {
		int64_t *ids = ef_arena_alloc(a, 3 * sizeof(*ids));

		ids[0] = 1;
		ids[1] = INT64_MIN;
		ids[2] = INT64_MAX;
		m->u.lease_list_resp.ids = ids;
		m->u.lease_list_resp.n_ids = 3;
		break;
	}
	case EF_MSG_WATCH_RESP: {
		ef_event *ev = ef_arena_alloc(a, 2 * sizeof(*ev));

		ev[0].type = EF_EVENT_PUT;
		ev[0].kv = sample_kv(0);
		ev[0].prev_kv = kvs_new(a, 1);
		ev[1].type = EF_EVENT_DELETE;
		ev[1].kv.key = BIN("\x00gone");
		ev[1].kv.mod_revision = 8;
		m->u.watch_resp.watch_id = 3;
		m->u.watch_resp.created = 1;
		m->u.watch_resp.canceled = 1;
		m->u.watch_resp.compact_revision = 4;
		m->u.watch_resp.cancel_reason = BIN("compacted");
		m->u.watch_resp.events = ev;
		m->u.watch_resp.n_events = 2;
		break;
	}
	case EF_MSG_MEMBER_LIST_RESP: {
		ef_member *mb = ef_arena_alloc(a, 2 * sizeof(*mb));
		ef_buf *urls = ef_arena_alloc(a, 2 * sizeof(*urls));

		urls[0] = ef_str("tcp://127.0.0.1:2380");
		urls[1] = ef_str("tcp://127.0.0.1:2381");
		mb[0].id = 1;
		mb[0].name = ef_str("one");
		mb[0].peer_urls = urls;
		mb[0].n_peer_urls = 2;
		mb[0].client_urls = urls + 1;
		mb[0].n_client_urls = 1;
		mb[1].id = UINT64_MAX;
		mb[1].name = BIN("");
		mb[1].is_learner = 1;
		m->u.member_list_resp.members = mb;
		m->u.member_list_resp.n_members = 2;
		break;
	}
	case EF_MSG_ERROR:
		m->u.error.code = EF_E_COMPACTED;
		m->u.error.message = ef_str(ef_strerror(EF_E_COMPACTED));
		break;
	default: /* empty body, or header only */
		break;
	}
}

/* Encode the sample of type into w (reset first). */
static int encode_sample(uint8_t type, ef_arena *a, ef_wbuf *w, ef_msg *m)
{
	make_msg(a, type, m);
	ef_wbuf_reset(w);
	return ef_encode(m, w);
}

/* ------------------------------------------------------------------ */

TEST(arena_alignment_zero_and_reset)
{
	ef_arena *a = ef_arena_new();
	int ok = 1;

	CHECK(a != NULL);
	for (size_t n = 0; n < 3000; n++) {
		uint8_t *p = ef_arena_alloc(a, n % 97 + (n % 500 == 0 ? 100000 : 0));
		size_t len = n % 97 + (n % 500 == 0 ? 100000 : 0);

		if (!p || ((uintptr_t)p & 15) != 0) {
			ok = 0;
			break;
		}
		for (size_t i = 0; i < len; i++)
			if (p[i] != 0)
				ok = 0;
		memset(p, 0xff, len);
	}
	CHECK(ok);
	ef_arena_reset(a);
	for (int n = 0; n < 200 && ok; n++) {
		uint8_t *p = ef_arena_alloc(a, 64);

		CHECK(p != NULL && ((uintptr_t)p & 15) == 0);
		for (int i = 0; i < 64; i++)
			if (p[i] != 0)
				ok = 0;
		memset(p, 0xff, 64);
	}
	CHECK(ok); /* memory reused after reset comes back zeroed */
	{
		char *d = ef_arena_dup(a, "a\0b", 3);

		CHECK(d != NULL && memcmp(d, "a\0b", 3) == 0);
	}
	CHECK(ef_arena_alloc(a, SIZE_MAX - 8) == NULL); /* overflow is refused, not wrapped */
	ef_arena_free(a);
	ef_arena_free(NULL);
}

TEST(wbuf_and_rbuf)
{
	ef_wbuf w;
	ef_rbuf r;
	uint8_t u8 = 0;
	uint32_t u32 = 0;
	uint64_t u64 = 0;
	int64_t i64 = 0;
	static const uint8_t want[] = {0xab, 0x01, 0x02, 0x03, 0x04, 0x80, 0,    0,    0,    0,
				       0,    0,    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
				       0xfe, 0,    0,    0,    3,    'x',  0,    'y'};

	ef_wbuf_init(&w);
	ef_wbuf_u8(&w, 0xab);
	ef_wbuf_u32(&w, 0x01020304);
	ef_wbuf_u64(&w, 0x80000000000000ffULL);
	ef_wbuf_u64(&w, (uint64_t)-2);
	ef_wbuf_bytes(&w, "x\0y", 3);
	ef_wbuf_put(&w, NULL, 0);
	CHECK_EQ(w.err, 0);
	CHECK_EQ(w.len, sizeof(want));
	CHECK(memcmp(w.p, want, sizeof(want)) == 0);

	r.p = w.p;
	r.end = w.p + w.len;
	CHECK_EQ(ef_rbuf_u8(&r, &u8), 0);
	CHECK_EQ(u8, 0xab);
	CHECK_EQ(ef_rbuf_u32(&r, &u32), 0);
	CHECK_EQ(u32, 0x01020304);
	CHECK_EQ(ef_rbuf_u64(&r, &u64), 0);
	CHECK(u64 == 0x80000000000000ffULL);
	CHECK_EQ(ef_rbuf_i64(&r, &i64), 0);
	CHECK_EQ(i64, -2);
	CHECK_EQ(ef_rbuf_u32(&r, &u32), 0);
	CHECK_EQ(u32, 3);
	/* 3 bytes left: the 4- and 8-byte getters refuse without moving. */
	CHECK_EQ(ef_rbuf_u32(&r, &u32), EF_E_TRUNCATED);
	CHECK_EQ(ef_rbuf_u64(&r, &u64), EF_E_TRUNCATED);
	CHECK_EQ(ef_rbuf_i64(&r, &i64), EF_E_TRUNCATED);
	CHECK_EQ(r.end - r.p, 3);
	CHECK_EQ(ef_rbuf_u8(&r, &u8), 0);
	CHECK_EQ(ef_rbuf_u8(&r, &u8), 0);
	CHECK_EQ(ef_rbuf_u8(&r, &u8), 0);
	CHECK_EQ(u8, 'y');
	CHECK_EQ(ef_rbuf_u8(&r, &u8), EF_E_TRUNCATED);

	/* Growth across many appends, then reset keeps the memory. */
	for (int i = 0; i < 100000; i++)
		ef_wbuf_u32(&w, (uint32_t)i);
	CHECK_EQ(w.len, sizeof(want) + 400000);
	CHECK_EQ(ef_get_be32(w.p + sizeof(want) + 4 * 99999), 99999);
	{
		size_t cap = w.cap;
		uint8_t *p = w.p;

		ef_wbuf_reset(&w);
		CHECK_EQ(w.len, 0);
		CHECK(w.cap == cap && w.p == p);
	}
	ef_wbuf_free(&w);
	CHECK(w.p == NULL && w.len == 0 && w.cap == 0);
}

/* The exact bytes of one frame, written by hand from the layout in wire_table.c. */
TEST(golden_put_frame)
{
	static const uint8_t want[] = {
		'E',  'T',        'C',  'F',
		1,    EF_MSG_PUT, 0,    0, /* magic, version, type, flags */
		0,    0,          0,    0,
		0,    0,          0x01, 0x02,                  /* request id */
		0,    0,          0,    4 + 2 + 4 + 1 + 8 + 3, /* body length */
		0,    0,          0,    2,
		'k',  0, /* key */
		0,    0,          0,    1,
		0xff, /* value */
		0xff, 0xff,       0xff, 0xff,
		0xff, 0xff,       0xff, 0xfe, /* lease -2 */
		1,    0,          1,          /* prev_kv, ignore_value, ignore_lease */
	};
	ef_msg m, d;
	ef_wbuf w;
	ef_frame_hdr h;

	memset(&m, 0, sizeof(m));
	m.type = EF_MSG_PUT;
	m.id = 0x102;
	m.u.put.key = BIN("k\0");
	m.u.put.value = BIN("\xff");
	m.u.put.lease = -2;
	m.u.put.prev_kv = 1;
	m.u.put.ignore_lease = 1;
	ef_wbuf_init(&w);
	CHECK_EQ(ef_encode(&m, &w), 0);
	CHECK_EQ(w.len, sizeof(want));
	CHECK(w.len == sizeof(want) && memcmp(w.p, want, sizeof(want)) == 0);

	CHECK_EQ(ef_decode_header(want, sizeof(want), 1000, &h), 0);
	CHECK_EQ(h.version, 1);
	CHECK_EQ(h.type, EF_MSG_PUT);
	CHECK_EQ(h.flags, 0);
	CHECK_EQ(h.id, 0x102);
	CHECK_EQ(h.body_len, sizeof(want) - EF_WIRE_HDR_LEN);

	/* Zero copy: decoded strings point into the input; no arena needed
	 * for a message without arrays. */
	CHECK_EQ(ef_decode(want, sizeof(want), 1000, NULL, &d), 0);
	CHECK(d.u.put.key.p == want + 24);
	CHECK(d.u.put.value.p == want + 30);
	CHECK(wire_msg_eq(&m, &d));

	/* Body-only encoding is the frame minus its header. */
	ef_wbuf_reset(&w);
	CHECK_EQ(ef_encode_body(&m, &w), 0);
	CHECK(w.len == sizeof(want) - 20 && memcmp(w.p, want + 20, w.len) == 0);
	ef_wbuf_free(&w);
}

TEST(roundtrip_every_type)
{
	ef_arena *a = ef_arena_new(), *b = ef_arena_new();
	ef_wbuf w, w2;
	ef_msg m, d;

	ef_wbuf_init(&w);
	ef_wbuf_init(&w2);
	for (size_t i = 0; i < N_TYPES; i++) {
		uint8_t t = all_types[i];
		ef_frame_hdr h;
		int eq;

		ef_arena_reset(b);
		CHECK_EQ(encode_sample(t, a, &w, &m), 0);
		CHECK_EQ(ef_decode_header(w.p, w.len, w.len, &h), 0);
		CHECK_EQ(h.type, t);
		CHECK(h.id == m.id);
		CHECK_EQ(h.body_len, w.len - EF_WIRE_HDR_LEN);
		CHECK_EQ(ef_decode(w.p, w.len, w.len, b, &d), 0);
		eq = wire_msg_eq(&m, &d);
		if (!eq)
			fprintf(stderr, "  %s: decoded message differs\n", ef_msg_type_name(t));
		CHECK(eq);
		/* Encoding the decoded message gives the same bytes. */
		ef_wbuf_reset(&w2);
		CHECK_EQ(ef_encode(&d, &w2), 0);
		CHECK(w2.len == w.len && memcmp(w2.p, w.p, w.len) == 0);
		/* Body-only path agrees with the frame. */
		ef_wbuf_reset(&w2);
		CHECK_EQ(ef_encode_body(&m, &w2), 0);
		CHECK(w2.len == w.len - 20 && memcmp(w2.p, w.p + 20, w2.len) == 0);
		CHECK_EQ(ef_decode_body(t, w2.p, w2.len, b, &d), 0);
		d.id = m.id;
		CHECK(wire_msg_eq(&m, &d));
		/* The fuzz target's full property check passes on every sample. */
		CHECK_EQ(wire_check_input(w.p, w.len), 0);
		CHECK(strcmp(ef_msg_type_name(t), "UNKNOWN") != 0);
		if (getenv("WIRE_WRITE_CORPUS")) {
			char path[512];
			FILE *f;

			snprintf(path, sizeof(path), "%s/%s", getenv("WIRE_WRITE_CORPUS"),
				 ef_msg_type_name(t));
			f = fopen(path, "wb");
			if (f) {
				fwrite(w.p, 1, w.len, f);
				fclose(f);
			}
			snprintf(path, sizeof(path), "%s/body_%s", getenv("WIRE_WRITE_CORPUS"),
				 ef_msg_type_name(t));
			f = fopen(path, "wb");
			if (f) {
				fputc(t, f);
				fwrite(w.p + 20, 1, w.len - 20, f);
				fclose(f);
			}
		}
	}
	/* Several frames back to back in one buffer: each decodes alone. */
	ef_wbuf_reset(&w);
	make_msg(a, EF_MSG_PUT, &m);
	CHECK_EQ(ef_encode(&m, &w), 0);
	{
		size_t first = w.len;

		make_msg(a, EF_MSG_ERROR, &m);
		CHECK_EQ(ef_encode(&m, &w), 0);
		CHECK_EQ(ef_decode(w.p + first, w.len - first, 1 << 20, b, &d), 0);
		CHECK(wire_msg_eq(&m, &d));
		CHECK_EQ(ef_decode(w.p, first, 1 << 20, b, &d), 0);
		CHECK_EQ(d.type, EF_MSG_PUT);
	}
	ef_wbuf_free(&w);
	ef_wbuf_free(&w2);
	ef_arena_free(a);
	ef_arena_free(b);
}

TEST(empty_and_edge_values_roundtrip)
{
	ef_arena *a = ef_arena_new();
	ef_wbuf w;
	ef_msg m, d;

	ef_wbuf_init(&w);
	/* All-zero messages of every type (empty strings, NULL arrays). */
	for (size_t i = 0; i < N_TYPES; i++) {
		memset(&m, 0, sizeof(m));
		m.type = all_types[i];
		ef_wbuf_reset(&w);
		CHECK_EQ(ef_encode(&m, &w), 0);
		CHECK_EQ(ef_decode(w.p, w.len, w.len, a, &d), 0);
		CHECK(wire_msg_eq(&m, &d));
	}
	/* A 1 MiB value of every byte value. */
	{
		size_t n = 1 << 20;
		uint8_t *big = malloc(n);

		for (size_t i = 0; i < n; i++)
			big[i] = (uint8_t)(i * 7);
		memset(&m, 0, sizeof(m));
		m.type = EF_MSG_PUT;
		m.u.put.key = BIN("\xff\xff\xff");
		m.u.put.value.p = big;
		m.u.put.value.n = (uint32_t)n;
		ef_wbuf_reset(&w);
		CHECK_EQ(ef_encode(&m, &w), 0);
		CHECK_EQ(ef_decode(w.p, w.len, w.len - 20 - 1, a, &d), EF_E_TOO_LARGE);
		CHECK_EQ(ef_decode(w.p, w.len, w.len - 20, a, &d), 0);
		CHECK(wire_msg_eq(&m, &d));
		CHECK_EQ(ef_request_size(&d), n + 3);
		free(big);
	}
	/* An empty body still leaves the buffer pointing at memory, and a NULL
	 * body of length 0 decodes. */
	{
		ef_wbuf e;

		ef_wbuf_init(&e);
		memset(&m, 0, sizeof(m));
		m.type = EF_MSG_STATUS;
		CHECK_EQ(ef_encode_body(&m, &e), 0);
		CHECK(e.p != NULL && e.len == 0);
		CHECK_EQ(ef_decode_body(EF_MSG_STATUS, NULL, 0, a, &d), 0);
		CHECK_EQ(ef_decode_body(EF_MSG_STATUS, NULL, 1, a, &d), EF_E_INVALID);
		CHECK_EQ(ef_decode_body(EF_MSG_PUT, NULL, 0, a, &d), EF_E_TRUNCATED);
		ef_wbuf_free(&e);
	}
	/* Booleans other than 0/1 are sent as 1. */
	memset(&m, 0, sizeof(m));
	m.type = EF_MSG_PUT;
	m.u.put.prev_kv = 7;
	ef_wbuf_reset(&w);
	CHECK_EQ(ef_encode(&m, &w), 0);
	CHECK_EQ(ef_decode(w.p, w.len, w.len, a, &d), 0);
	CHECK_EQ(d.u.put.prev_kv, 1);
	ef_wbuf_free(&w);
	ef_arena_free(a);
}

TEST(every_truncation_fails)
{
	ef_arena *a = ef_arena_new(), *b = ef_arena_new();
	ef_wbuf w;
	ef_msg m, d;
	int bad = 0;

	ef_wbuf_init(&w);
	for (size_t i = 0; i < N_TYPES; i++) {
		uint8_t t = all_types[i];
		uint8_t *copy;

		CHECK_EQ(encode_sample(t, a, &w, &m), 0);
		for (size_t n = 0; n < w.len; n++) {
			/* A fresh allocation of exactly n bytes, so ASan sees any
			 * read past the end. */
			copy = malloc(n ? n : 1);
			memcpy(copy, w.p, n);
			ef_arena_reset(b);
			if (ef_decode(copy, n, 1 << 20, b, &d) != EF_E_TRUNCATED)
				bad++;
			if (n >= 20 &&
			    ef_decode_body(t, copy + 20, n - 20, b, &d) != EF_E_TRUNCATED)
				bad++;
			free(copy);
		}
	}
	CHECK_EQ(bad, 0);
	ef_wbuf_free(&w);
	ef_arena_free(a);
	ef_arena_free(b);
}

TEST(trailing_bytes_rejected)
{
	ef_arena *a = ef_arena_new();
	ef_wbuf w;
	ef_msg m, d;

	ef_wbuf_init(&w);
	for (size_t i = 0; i < N_TYPES; i++) {
		uint8_t t = all_types[i];

		CHECK_EQ(encode_sample(t, a, &w, &m), 0);
		/* A byte after the frame. */
		ef_wbuf_u8(&w, 0);
		CHECK_EQ(ef_decode(w.p, w.len, 1 << 20, a, &d), EF_E_MALFORMED);
		/* The same byte counted in the body length: trailing inside the body. */
		ef_be32(w.p + 16, (uint32_t)(w.len - 20));
		CHECK_EQ(ef_decode(w.p, w.len, 1 << 20, a, &d), EF_E_MALFORMED);
		CHECK_EQ(ef_decode_body(t, w.p + 20, w.len - 20, a, &d), EF_E_MALFORMED);
	}
	ef_wbuf_free(&w);
	ef_arena_free(a);
}

TEST(bit_flips_never_crash)
{
	ef_arena *a = ef_arena_new();
	ef_wbuf w;
	ef_msg m;
	long accepted = 0, rejected = 0, broken = 0;

	ef_wbuf_init(&w);
	for (size_t i = 0; i < N_TYPES; i++) {
		CHECK_EQ(encode_sample(all_types[i], a, &w, &m), 0);
		for (size_t bit = 0; bit < w.len * 8; bit++) {
			uint8_t *copy = malloc(w.len);
			ef_arena *b = ef_arena_new();
			ef_msg d;
			int rc;

			memcpy(copy, w.p, w.len);
			copy[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			rc = ef_decode(copy, w.len, 1 << 20, b, &d);
			if (rc == 0)
				accepted++;
			else
				rejected++;
			/* Either way the fuzz properties hold: a valid code on
			 * failure, an exact round trip on success. */
			if (wire_check_input(copy, w.len))
				broken++;
			/* Header fields map to their own codes. */
			if (bit / 8 < 4 && rc != EF_E_BAD_MAGIC)
				broken++;
			if (bit / 8 == 4 && rc != EF_E_VERSION)
				broken++;
			if ((bit / 8 == 6 || bit / 8 == 7) && rc != EF_E_MALFORMED)
				broken++;
			if (bit / 8 >= 8 && bit / 8 < 16 && rc != 0)
				broken++; /* the request id is opaque */
			ef_arena_free(b);
			free(copy);
		}
	}
	CHECK_EQ(broken, 0);
	CHECK(accepted > 0 && rejected > 0);
	ef_wbuf_free(&w);
	ef_arena_free(a);
}

TEST(header_errors)
{
	ef_arena *a = ef_arena_new();
	ef_wbuf w;
	ef_msg m, d;
	ef_frame_hdr h;
	static const uint8_t unknown[] = {0, 21, 0x7f, 0x80, 0x8d, 0x8e, 0x95, 0xfe};

	ef_wbuf_init(&w);
	CHECK_EQ(encode_sample(EF_MSG_RANGE, a, &w, &m), 0);
	CHECK_EQ(ef_decode_header(w.p, 19, 1 << 20, &h), EF_E_TRUNCATED);
	CHECK_EQ(ef_decode_header(NULL, 0, 1 << 20, &h), EF_E_TRUNCATED);
	CHECK_EQ(ef_decode(NULL, 0, 1 << 20, a, &d), EF_E_TRUNCATED);

	w.p[4] = 2;
	CHECK_EQ(ef_decode(w.p, w.len, 1 << 20, a, &d), EF_E_VERSION);
	w.p[4] = 0;
	CHECK_EQ(ef_decode(w.p, w.len, 1 << 20, a, &d), EF_E_VERSION);
	w.p[4] = 1;
	for (size_t i = 0; i < sizeof(unknown); i++) {
		w.p[5] = unknown[i];
		CHECK_EQ(ef_decode(w.p, w.len, 1 << 20, a, &d), EF_E_UNKNOWN_TYPE);
		CHECK_EQ(ef_decode_body(unknown[i], w.p + 20, w.len - 20, a, &d),
			 EF_E_UNKNOWN_TYPE);
		CHECK(strcmp(ef_msg_type_name(unknown[i]), "UNKNOWN") == 0);
	}
	w.p[5] = EF_MSG_RANGE;
	w.p[7] = 1;
	CHECK_EQ(ef_decode(w.p, w.len, 1 << 20, a, &d), EF_E_MALFORMED);
	w.p[7] = 0;
	w.p[0] = 'e';
	CHECK_EQ(ef_decode(w.p, w.len, 1 << 20, a, &d), EF_E_BAD_MAGIC);
	w.p[0] = 'E';
	/* Body limit: exactly at the limit passes, one under fails. */
	CHECK_EQ(ef_decode(w.p, w.len, w.len - 20, a, &d), 0);
	CHECK_EQ(ef_decode(w.p, w.len, w.len - 21, a, &d), EF_E_TOO_LARGE);
	CHECK_EQ(ef_decode_header(w.p, 20, w.len - 21, &h), EF_E_TOO_LARGE);
	/* A header announcing 4 GiB fails on the limit before anything else. */
	ef_be32(w.p + 16, UINT32_MAX);
	CHECK_EQ(ef_decode(w.p, w.len, EF_DEFAULT_MAX_REQUEST_BYTES, a, &d), EF_E_TOO_LARGE);
	CHECK_EQ(ef_decode(w.p, w.len, SIZE_MAX, a, &d), EF_E_TRUNCATED);

	/* Encoding an unknown type appends nothing. */
	ef_wbuf_reset(&w);
	memset(&m, 0, sizeof(m));
	for (size_t i = 0; i < sizeof(unknown); i++) {
		m.type = unknown[i];
		CHECK_EQ(ef_encode(&m, &w), EF_E_UNKNOWN_TYPE);
		CHECK_EQ(ef_encode_body(&m, &w), EF_E_UNKNOWN_TYPE);
	}
	CHECK_EQ(w.len, 0);
	ef_wbuf_free(&w);
	ef_arena_free(a);
}

/* Build a frame of type t around body bytes. */
static void frame(ef_wbuf *w, uint8_t t, const uint8_t *body, size_t n)
{
	ef_wbuf_reset(w);
	ef_wbuf_u32(w, EF_WIRE_MAGIC);
	ef_wbuf_u8(w, 1);
	ef_wbuf_u8(w, t);
	ef_wbuf_u8(w, 0);
	ef_wbuf_u8(w, 0);
	ef_wbuf_u64(w, 9);
	ef_wbuf_u32(w, (uint32_t)n);
	ef_wbuf_put(w, body, n);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

TEST(huge_counts_fail_fast)
{
	ef_arena *a = ef_arena_new();
	ef_wbuf w, body;
	ef_msg d;
	double t0 = now_s();
	static const uint8_t types[] = {
		EF_MSG_TXN,        EF_MSG_RANGE_RESP,      EF_MSG_DELETE_RESP,
		EF_MSG_TXN_RESP,   EF_MSG_LEASE_TTL_RESP,  EF_MSG_LEASE_LIST_RESP,
		EF_MSG_WATCH_RESP, EF_MSG_MEMBER_LIST_RESP};

	ef_wbuf_init(&w);
	ef_wbuf_init(&body);
	for (size_t i = 0; i < sizeof(types); i++) {
		uint8_t t = types[i];
		uint32_t counts[] = {UINT32_MAX, 0x80000000u, 1000000, 3};

		for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
			ef_wbuf_reset(&body);
			if (t != EF_MSG_TXN) /* responses: the header first */
				ef_wbuf_put(&body, (const uint8_t[32]){0}, 32);
			switch (t) {
			case EF_MSG_DELETE_RESP:
				ef_wbuf_u64(&body, 1); /* deleted */
				break;
			case EF_MSG_TXN_RESP:
				ef_wbuf_u8(&body, 1); /* succeeded */
				break;
			case EF_MSG_LEASE_TTL_RESP:
				ef_wbuf_put(&body, (const uint8_t[24]){0}, 24);
				break;
			case EF_MSG_WATCH_RESP:
				ef_wbuf_put(&body, (const uint8_t[18]){0}, 18);
				ef_wbuf_u32(&body, 0); /* cancel_reason */
				break;
			}
			ef_wbuf_u32(&body, counts[c]);
			ef_wbuf_put(&body, (const uint8_t[10]){0}, 10); /* a few stray bytes */
			frame(&w, t, body.p, body.len);
			ef_arena_reset(a);
			if (counts[c] > 3) /* refused by the count check itself */
				CHECK_EQ(ef_decode(w.p, w.len, 1 << 20, a, &d), EF_E_TRUNCATED);
			else /* 3 small elements may fit; zero bytes still are no valid elements */
				CHECK(ef_decode(w.p, w.len, 1 << 20, a, &d) != 0);
		}
	}
	/* A count that is exactly backed by bytes is accepted. */
	ef_wbuf_reset(&body);
	ef_wbuf_put(&body, (const uint8_t[32]){0}, 32);
	ef_wbuf_u32(&body, 2);
	ef_wbuf_u64(&body, 5);
	ef_wbuf_u64(&body, (uint64_t)-5);
	frame(&w, EF_MSG_LEASE_LIST_RESP, body.p, body.len);
	CHECK_EQ(ef_decode(w.p, w.len, 1 << 20, a, &d), 0);
	CHECK_EQ(d.u.lease_list_resp.n_ids, 2);
	CHECK_EQ(d.u.lease_list_resp.ids[1], -5);
	/* ... and needs an arena: without one it is out of memory. */
	CHECK_EQ(ef_decode(w.p, w.len, 1 << 20, NULL, &d), EF_E_NOMEM);
	CHECK(now_s() - t0 < 1.0);
	ef_wbuf_free(&w);
	ef_wbuf_free(&body);
	ef_arena_free(a);
}

/* Patch one byte of a valid body and expect code. */
static int patched(uint8_t t, const ef_wbuf *body, size_t off, uint8_t v, ef_arena *a)
{
	uint8_t *copy = malloc(body->len);
	ef_msg d;
	int rc;

	memcpy(copy, body->p, body->len);
	copy[off] = v;
	rc = ef_decode_body(t, copy, body->len, a, &d);
	free(copy);
	return rc;
}

TEST(booleans_enums_and_op_types)
{
	ef_arena *a = ef_arena_new();
	ef_wbuf b;
	ef_msg m;

	ef_wbuf_init(&b);
	/* PUT: booleans are the last three bytes. */
	make_msg(a, EF_MSG_PUT, &m);
	CHECK_EQ(ef_encode_body(&m, &b), 0);
	CHECK_EQ(patched(EF_MSG_PUT, &b, b.len - 1, 0, a), 0);
	CHECK_EQ(patched(EF_MSG_PUT, &b, b.len - 1, 2, a), EF_E_MALFORMED);
	CHECK_EQ(patched(EF_MSG_PUT, &b, b.len - 3, 0xff, a), EF_E_MALFORMED);

	/* RANGE: sort_order at 4+3+4+2+16 = 29, sort_target 30. */
	ef_wbuf_reset(&b);
	make_msg(a, EF_MSG_RANGE, &m);
	CHECK_EQ(ef_encode_body(&m, &b), 0);
	CHECK_EQ(patched(EF_MSG_RANGE, &b, 29, EF_SORT_ASCEND, a), 0);
	CHECK_EQ(patched(EF_MSG_RANGE, &b, 29, 3, a), EF_E_MALFORMED);
	CHECK_EQ(patched(EF_MSG_RANGE, &b, 30, EF_SORT_KEY, a), 0);
	CHECK_EQ(patched(EF_MSG_RANGE, &b, 30, 5, a), EF_E_MALFORMED);
	CHECK_EQ(patched(EF_MSG_RANGE, &b, 31, 2, a), EF_E_MALFORMED);

	/* PUT_RESP: the presence flag of prev_kv follows the 32-byte header. */
	ef_wbuf_reset(&b);
	make_msg(a, EF_MSG_PUT_RESP, &m);
	CHECK_EQ(ef_encode_body(&m, &b), 0);
	CHECK_EQ(patched(EF_MSG_PUT_RESP, &b, 32, 2, a), EF_E_MALFORMED);
	CHECK_EQ(patched(EF_MSG_PUT_RESP, &b, 32, 0, a), EF_E_MALFORMED); /* kv bytes now trail */

	/* TXN: the first success op's type byte; nested txn (4) is not an op. */
	{
		ef_txn_req one;
		ef_op op;

		memset(&m, 0, sizeof(m));
		memset(&op, 0, sizeof(op));
		op.type = EF_OP_DELETE;
		op.u.del.key = BIN("k");
		memset(&one, 0, sizeof(one));
		one.success = &op;
		one.n_success = 1;
		m.type = EF_MSG_TXN;
		m.u.txn = one;
		ef_wbuf_reset(&b);
		CHECK_EQ(ef_encode_body(&m, &b), 0);
		/* u32 n_cmp=0, u32 n_success=1, then the op type at 8. */
		CHECK_EQ(b.p[8], EF_OP_DELETE);
		CHECK_EQ(patched(EF_MSG_TXN, &b, 8, 0, a), EF_E_MALFORMED);
		CHECK_EQ(patched(EF_MSG_TXN, &b, 8, 4, a), EF_E_MALFORMED);
		CHECK_EQ(patched(EF_MSG_TXN, &b, 8, 0xff, a), EF_E_MALFORMED);
		/* Encoding refuses an op it could not decode back. */
		op.type = 4;
		ef_wbuf_reset(&b);
		CHECK_EQ(ef_encode_body(&m, &b), EF_E_INVALID);
		CHECK_EQ(b.len, 0);
	}
	/* Compare result/target and event types are range-checked. */
	{
		ef_compare c;
		ef_txn_req t;

		memset(&c, 0, sizeof(c));
		memset(&t, 0, sizeof(t));
		c.result = EF_CMP_NOT_EQUAL;
		c.target = EF_CMP_LEASE;
		t.cmp = &c;
		t.n_cmp = 1;
		memset(&m, 0, sizeof(m));
		m.type = EF_MSG_TXN;
		m.u.txn = t;
		ef_wbuf_reset(&b);
		CHECK_EQ(ef_encode_body(&m, &b), 0);
		CHECK_EQ(patched(EF_MSG_TXN, &b, 4, 4, a), EF_E_MALFORMED);
		CHECK_EQ(patched(EF_MSG_TXN, &b, 5, 5, a), EF_E_MALFORMED);
		c.target = 9;
		ef_wbuf_reset(&b);
		CHECK_EQ(ef_encode_body(&m, &b), EF_E_INVALID);
	}
	ef_wbuf_free(&b);
	ef_arena_free(a);
}

TEST(encode_rejects_inconsistent_messages)
{
	ef_wbuf w;
	ef_msg m;

	ef_wbuf_init(&w);
	ef_wbuf_u32(&w, 0xabcdef01); /* something already in the buffer stays */
	memset(&m, 0, sizeof(m));
	m.type = EF_MSG_PUT;
	m.u.put.key.n = 3; /* length without bytes */
	CHECK_EQ(ef_encode(&m, &w), EF_E_INVALID);
	CHECK_EQ(w.len, 4);
	memset(&m, 0, sizeof(m));
	m.type = EF_MSG_RANGE_RESP;
	m.u.range_resp.n_kvs = 2; /* count without array */
	CHECK_EQ(ef_encode(&m, &w), EF_E_INVALID);
	CHECK_EQ(w.len, 4);
	CHECK_EQ(w.err, 0);
	CHECK_EQ(ef_get_be32(w.p), 0xabcdef01);
	ef_wbuf_free(&w);
}

static int buf_is(ef_buf b, const char *s, size_t n)
{
	return b.p && b.n == n && memcmp(b.p, s, n) == 0;
}

TEST(prefix_end_cases)
{
	ef_arena *a = ef_arena_new();

	CHECK(buf_is(ef_prefix_end(a, BIN("abc")), "abd", 3));
	CHECK(buf_is(ef_prefix_end(a, BIN("/dir/")), "/dir0", 5));
	CHECK(buf_is(ef_prefix_end(a, BIN("a\xff")), "b", 1));
	CHECK(buf_is(ef_prefix_end(a, BIN("a\xff\xff\xff")), "b", 1));
	CHECK(buf_is(ef_prefix_end(a, BIN("\x01\xfe\xff")), "\x01\xff", 2));
	CHECK(buf_is(ef_prefix_end(a, BIN("a\x00")), "a\x01", 2));
	CHECK(buf_is(ef_prefix_end(a, BIN("\x00")), "\x01", 1));
	CHECK(buf_is(ef_prefix_end(a, BIN("\xff")), "\0", 1));
	CHECK(buf_is(ef_prefix_end(a, BIN("\xff\xff")), "\0", 1));
	CHECK(buf_is(ef_prefix_end(a, BIN("")), "\0", 1));
	{
		ef_buf empty = {NULL, 0};

		CHECK(buf_is(ef_prefix_end(a, empty), "\0", 1));
	}
	/* The input is not modified (the result is a copy). */
	{
		uint8_t k[] = {'x', 'y'};
		ef_buf in = {k, 2};
		ef_buf out = ef_prefix_end(a, in);

		CHECK(k[1] == 'y' && out.p != k && buf_is(out, "xz", 2));
	}
	ef_arena_free(a);
}

TEST(request_size_counts_user_bytes)
{
	ef_arena *a = ef_arena_new();
	ef_msg m;

	make_msg(a, EF_MSG_PUT, &m);
	CHECK_EQ(ef_request_size(&m), 3 + 8);
	make_msg(a, EF_MSG_RANGE, &m);
	CHECK_EQ(ef_request_size(&m), 3 + 2);
	make_msg(a, EF_MSG_DELETE, &m);
	CHECK_EQ(ef_request_size(&m), 1 + 1);
	make_msg(a, EF_MSG_WATCH_CREATE, &m);
	CHECK_EQ(ef_request_size(&m), 2 + 2);
	/* TXN: compares (4+0+2, 3+3+0) + success (5 + 11 + 2) + failure (1). */
	make_msg(a, EF_MSG_TXN, &m);
	CHECK_EQ(ef_request_size(&m), 6 + 6 + 5 + 11 + 2 + 1);
	make_msg(a, EF_MSG_LEASE_GRANT, &m);
	CHECK_EQ(ef_request_size(&m), 0);
	make_msg(a, EF_MSG_RANGE_RESP, &m);
	CHECK_EQ(ef_request_size(&m), 0);
	ef_arena_free(a);
}

TEST(msg_copy_outlives_input)
{
	ef_arena *a = ef_arena_new();
	ef_wbuf w;
	ef_msg m;

	ef_wbuf_init(&w);
	for (size_t i = 0; i < N_TYPES; i++) {
		uint8_t t = all_types[i];
		ef_arena *dec = ef_arena_new(), *cp = ef_arena_new();
		uint8_t *in;
		ef_msg d, c;
		size_t n;

		CHECK_EQ(encode_sample(t, a, &w, &m), 0);
		n = w.len;
		in = malloc(n);
		memcpy(in, w.p, n);
		CHECK_EQ(ef_decode(in, n, n, dec, &d), 0);
		CHECK_EQ(ef_msg_copy(cp, &c, &d), 0);
		/* Destroy everything the decoded message pointed at. */
		memset(in, 0xa5, n);
		free(in);
		ef_arena_free(dec);
		CHECK(wire_msg_eq(&m, &c));
		ef_arena_free(cp);
	}
	ef_wbuf_free(&w);
	ef_arena_free(a);
}

TEST(type_names)
{
	CHECK(strcmp(ef_msg_type_name(EF_MSG_RANGE), "RANGE") == 0);
	CHECK(strcmp(ef_msg_type_name(EF_MSG_PUT_RESP), "PUT_RESP") == 0);
	CHECK(strcmp(ef_msg_type_name(EF_MSG_WATCH_RESP), "WATCH_RESP") == 0);
	CHECK(strcmp(ef_msg_type_name(EF_MSG_ERROR), "ERROR") == 0);
	CHECK(strcmp(ef_msg_type_name(0), "UNKNOWN") == 0);
	CHECK(strcmp(ef_msg_type_name(EF_MSG_RESP), "UNKNOWN") == 0);
}

/* ------------------------------------------------------------------ */
/* The field tables (proto/wire_table.c) against the C structs.         */

struct span {
	size_t start, len, align;
	const char *name;
};

static int span_cmp(const void *x, const void *y)
{
	const struct span *a = x, *b = y;

	return (a->start > b->start) - (a->start < b->start);
}

/* Bytes of the C member a field of kind k occupies (0 when unknown). */
static size_t kind_width(uint8_t k, const struct wire_field *f)
{
	switch (k) {
	case WK_BOOL:
	case WK_ENUM:
		return 1;
	case WK_U32:
		return 4;
	case WK_U64:
	case WK_I64:
	case WK_OPT:
	case WK_ARRAY:
		return 8;
	case WK_BYTES:
		return sizeof(ef_buf);
	case WK_STRUCT:
		return f->sub->size;
	}
	return 0;
}

/* Every member of every struct has a table line: the fields, sorted by
 * offset, tile the struct with nothing between them but the padding C puts
 * there.  (A member small enough to hide in padding is not seen, but every
 * new member of ef_kv, which has none, is.) */
TEST(tables_cover_every_member)
{
	int bad = 0, structs = 0;

	for (const struct wire_struct *const *sp = wire_structs; *sp; sp++) {
		const struct wire_struct *s = *sp;
		struct span v[64];
		size_t n = 0, cur = 0, maxalign = 1;

		structs++;
		for (uint32_t i = 0; i < s->n_fields && n + 2 <= 64; i++) {
			const struct wire_field *f = &s->fields[i];

			if (f->kind == WK_UNION) {
				size_t body = 0;

				v[n++] = (struct span){f->off, 1, 1, f->name};
				for (unsigned t = 0; t <= f->max; t++)
					if (f->variants[t] && f->variants[t]->size > body)
						body = f->variants[t]->size;
				v[n++] = (struct span){f->aux, body, 8, "union"};
				continue;
			}
			v[n] = (struct span){f->off, kind_width(f->kind, f), 8, f->name};
			if (v[n].len < 8)
				v[n].align = v[n].len;
			if (v[n].len == 0) {
				fprintf(stderr, "  %s.%s: unknown kind %d\n", s->name, f->name,
					f->kind);
				bad++;
			}
			n++;
			if (f->kind == WK_ARRAY)
				v[n++] = (struct span){f->aux, 4, 4, "count"};
		}
		qsort(v, n, sizeof(v[0]), span_cmp);
		for (size_t i = 0; i < n; i++) {
			size_t pad = (v[i].align - cur % v[i].align) % v[i].align;

			if (v[i].start != cur + pad) {
				fprintf(stderr, "  %s: %zu bytes before %s not in the table\n",
					s->name, v[i].start > cur ? v[i].start - cur : 0,
					v[i].name);
				bad++;
			}
			cur = v[i].start + v[i].len;
			if (v[i].align > maxalign)
				maxalign = v[i].align;
		}
		if (s->size != cur + (maxalign - cur % maxalign) % maxalign) {
			fprintf(stderr, "  %s: %zu bytes at the end not in the table\n", s->name,
				s->size - cur);
			bad++;
		}
	}
	CHECK(structs >= 20);
	CHECK_EQ(bad, 0);
	/* Every known type has a body table; the response header exactly for
	 * responses other than ERROR. */
	for (size_t i = 0; i < N_TYPES; i++) {
		const struct wire_msg *t = &wire_msgs[all_types[i]];

		CHECK(t->name != NULL && t->body != NULL);
		CHECK_EQ(t->hdr, all_types[i] >= EF_MSG_RESP && all_types[i] != EF_MSG_ERROR);
	}
}

/* Every file of the fuzz corpus (seeds and inputs the fuzzer once found
 * interesting or crashing) still satisfies the fuzz properties. */
TEST(fuzz_corpus_replay)
{
	const char *root = getenv("ETCFS_ROOT");
	char dir[1024], path[2048];
	DIR *dp;
	struct dirent *de;
	int files = 0, broken = 0;

	snprintf(dir, sizeof(dir), "%s/tests/fuzz/corpus/wire", root ? root : ".");
	dp = opendir(dir);
	if (!dp) {
		fprintf(stderr, "  no corpus at %s (run from the checkout or set ETCFS_ROOT)\n",
			dir);
		CHECK(dp != NULL);
		return;
	}
	while ((de = readdir(dp))) {
		FILE *f;
		uint8_t *buf;
		long n;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		f = fopen(path, "rb");
		if (!f)
			continue;
		fseek(f, 0, SEEK_END);
		n = ftell(f);
		fseek(f, 0, SEEK_SET);
		buf = malloc(n > 0 ? (size_t)n : 1);
		if (fread(buf, 1, (size_t)n, f) == (size_t)n) {
			files++;
			if (wire_check_input(buf, (size_t)n)) {
				fprintf(stderr, "  corpus file %s breaks a property\n", de->d_name);
				broken++;
			}
		}
		free(buf);
		fclose(f);
	}
	closedir(dp);
	CHECK(files >= (int)N_TYPES); /* at least the seeds */
	CHECK_EQ(broken, 0);
}

int main(void)
{
	RUN(arena_alignment_zero_and_reset);
	RUN(wbuf_and_rbuf);
	RUN(golden_put_frame);
	RUN(roundtrip_every_type);
	RUN(empty_and_edge_values_roundtrip);
	RUN(every_truncation_fails);
	RUN(trailing_bytes_rejected);
	RUN(bit_flips_never_crash);
	RUN(header_errors);
	RUN(huge_counts_fail_fast);
	RUN(booleans_enums_and_op_types);
	RUN(encode_rejects_inconsistent_messages);
	RUN(prefix_end_cases);
	RUN(request_size_counts_user_bytes);
	RUN(msg_copy_outlives_input);
	RUN(type_names);
	RUN(tables_cover_every_member);
	RUN(fuzz_corpus_replay);
	TEST_EXIT();
}
