/*
 * wire_fixture.h - what test_wire.c and test_wire_tables.c share: one
 * sample message of every type (make_msg, encode_sample) and the fuzz
 * target's entry point.  Each test file uses some of them.
 */
#pragma GCC diagnostic ignored "-Wunused-function"

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
