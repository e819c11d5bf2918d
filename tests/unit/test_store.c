/*
 * test_store.c - unit tests of the MVCC store (server/store.c): etcd's
 * revision/version rules, range options, history, txn compares and limits,
 * compaction, leases and events, each checked against the values etcd
 * itself would return (persistence, snapshots and the model check are in
 * test_store_history.c).
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../../server/store.h"
#include "test.h"
#include "store_fixture.h"

TEST(put_get_versions)
{
	store *s = fresh();
	ef_msg r;
	ef_kv kv;
	int64_t t1;

	CHECK_EQ(store_revision(s), 1); /* empty store: revision 1, as etcd */
	r = put(s, "a", "1");
	t1 = NOW;
	CHECK_EQ(r.type, EF_MSG_PUT_RESP);
	CHECK_EQ(r.hdr.revision, 2);
	CHECK(r.u.put_resp.prev_kv == NULL);
	CHECK_EQ(get_at(s, "a", 0, &kv), 1);
	CHECK_KV(kv, "a", "1");
	CHECK_EQ(kv.create_revision, 2);
	CHECK_EQ(kv.mod_revision, 2);
	CHECK_EQ(kv.version, 1);
	CHECK_EQ(kv.lease, 0);
	CHECK_EQ(kv.mod_time_ns, t1);

	r = put(s, "b", "x");
	CHECK_EQ(r.hdr.revision, 3);
	r = put(s, "a", "22");
	CHECK_EQ(r.hdr.revision, 4);
	CHECK_EQ(get_at(s, "a", 0, &kv), 1);
	CHECK_KV(kv, "a", "22");
	CHECK_EQ(kv.create_revision, 2);
	CHECK_EQ(kv.mod_revision, 4);
	CHECK_EQ(kv.version, 2);
	CHECK_EQ(kv.mod_time_ns, NOW);
	CHECK_EQ(store_revision(s), 4);
	CHECK_EQ(store_key_count(s), 2);
	CHECK_EQ(get_at(s, "zz", 0, NULL), 0);
	/* put of the same value still makes a new revision */
	r = put(s, "a", "22");
	CHECK_EQ(r.hdr.revision, 5);
	CHECK_EQ(get_at(s, "a", 0, &kv), 1);
	CHECK_EQ(kv.version, 3);
	done(s);
}

TEST(prev_kv_and_ignore_flags)
{
	store *s = fresh();
	ef_msg r;
	ef_kv kv;

	r = put_full(s, B("k"), B("v1"), 0, 1, 0, 0);
	CHECK(r.u.put_resp.prev_kv == NULL);
	r = put_full(s, B("k"), B("v2"), 0, 1, 0, 0);
	CHECK(r.u.put_resp.prev_kv != NULL);
	if (r.u.put_resp.prev_kv) {
		CHECK_KV(*r.u.put_resp.prev_kv, "k", "v1");
		CHECK_EQ(r.u.put_resp.prev_kv->mod_revision, 2);
		CHECK_EQ(r.u.put_resp.prev_kv->version, 1);
	}
	/* without prev_kv asked: none */
	r = put_full(s, B("k"), B("v3"), 0, 0, 0, 0);
	CHECK(r.u.put_resp.prev_kv == NULL);
	CHECK_EQ(store_revision(s), 4);

	/* ignore_value on a missing key */
	r = put_full(s, B("nope"), B(""), 0, 0, 1, 0);
	CHECK_EQ(err_of(&r), EF_E_NOT_FOUND);
	CHECK_EQ(r.hdr.revision, 4);
	/* ignore_value with a value */
	r = put_full(s, B("k"), B("x"), 0, 0, 1, 0);
	CHECK_EQ(err_of(&r), EF_E_VALUE_PROVIDED);
	/* lease not found */
	r = put_full(s, B("k"), B("x"), 77, 0, 0, 0);
	CHECK_EQ(err_of(&r), EF_E_LEASE_NOT_FOUND);
	CHECK_EQ(store_revision(s), 4);

	CHECK_EQ(lease_grant(s, 77, 60), 0);
	/* ignore_value keeps the value and attaches the lease */
	r = put_full(s, B("k"), B(""), 77, 1, 1, 0);
	CHECK_EQ(err_of(&r), 0);
	CHECK_EQ(r.hdr.revision, 5);
	CHECK_EQ(get_at(s, "k", 0, &kv), 1);
	CHECK_KV(kv, "k", "v3");
	CHECK_EQ(kv.lease, 77);
	CHECK_EQ(kv.version, 4);
	/* ignore_lease keeps the lease */
	r = put_full(s, B("k"), B("v5"), 0, 0, 0, 1);
	CHECK_EQ(err_of(&r), 0);
	CHECK_EQ(get_at(s, "k", 0, &kv), 1);
	CHECK_KV(kv, "k", "v5");
	CHECK_EQ(kv.lease, 77);
	/* ignore_lease with a lease */
	r = put_full(s, B("k"), B("v6"), 77, 0, 0, 1);
	CHECK_EQ(err_of(&r), EF_E_LEASE_PROVIDED);
	r = put_full(s, B("missing"), B("v6"), 0, 0, 0, 1);
	CHECK_EQ(err_of(&r), EF_E_NOT_FOUND);
	/* both: only the revision moves */
	r = put_full(s, B("k"), B(""), 0, 0, 1, 1);
	CHECK_EQ(err_of(&r), 0);
	CHECK_EQ(get_at(s, "k", 0, &kv), 1);
	CHECK_KV(kv, "k", "v5");
	CHECK_EQ(kv.lease, 77);
	CHECK_EQ(kv.mod_revision, store_revision(s));
	/* a put without lease detaches it */
	put(s, "k", "v7");
	{
		store_lease l;
		ef_buf *keys;
		uint32_t n;

		CHECK_EQ(store_lease_get(s, 77, &l, &keys, &n, A), 0);
		CHECK_EQ(n, 0);
	}
	done(s);
}


TEST(range_variants)
{
	store *s = fresh();
	ef_range_req q;
	ef_range_resp r;
	ef_arena *pa = ef_arena_new();

	put_abcde(s);
	/* [a, c) */
	q = rq("a", B("c"));
	CHECK_EQ(range(s, &q, &r), 0);
	CHECK_EQ(r.n_kvs, 3);
	CHECK_EQ(r.count, 3);
	CHECK_EQ(r.more, 0);
	if (r.n_kvs == 3) {
		CHECK_KV(r.kvs[0], "a", "5");
		CHECK_KV(r.kvs[1], "ab", "ab");
		CHECK_KV(r.kvs[2], "b", "444");
	}
	/* prefix "a" */
	q = rq("a", ef_prefix_end(pa, B("a")));
	CHECK_EQ(range(s, &q, &r), 0);
	CHECK_EQ(r.n_kvs, 2);
	/* from-key "c" */
	q = rq("c", (ef_buf){(const uint8_t *)"", 1});
	CHECK_EQ(range(s, &q, &r), 0);
	CHECK_EQ(r.n_kvs, 3);
	if (r.n_kvs == 3)
		CHECK_KV(r.kvs[2], "e", "1");
	/* all keys: "\0" .. "\0" */
	q = rq("", (ef_buf){(const uint8_t *)"", 1});
	q.key = (ef_buf){(const uint8_t *)"", 1};
	CHECK_EQ(range(s, &q, &r), 0);
	CHECK_EQ(r.count, 6);
	/* range_end <= key: empty */
	q = rq("c", B("b"));
	CHECK_EQ(range(s, &q, &r), 0);
	CHECK_EQ(r.count, 0);
	/* empty key rejected */
	q = rq("", B(""));
	CHECK_EQ(range(s, &q, &r), EF_E_EMPTY_KEY);

	/* limit: more and count as etcd */
	q = rq("a", (ef_buf){(const uint8_t *)"", 1});
	q.limit = 2;
	CHECK_EQ(range(s, &q, &r), 0);
	CHECK_EQ(r.n_kvs, 2);
	CHECK_EQ(r.more, 1);
	CHECK_EQ(r.count, 6);
	q.limit = 6;
	CHECK_EQ(range(s, &q, &r), 0);
	CHECK_EQ(r.n_kvs, 6);
	CHECK_EQ(r.more, 0);

	/* keys_only, count_only */
	q.limit = 0;
	q.keys_only = 1;
	CHECK_EQ(range(s, &q, &r), 0);
	CHECK_EQ(r.n_kvs, 6);
	if (r.n_kvs == 6) {
		CHECK_EQ(r.kvs[1].value.n, 0);
		CHECK_MEM(r.kvs[1].key.p, r.kvs[1].key.n, "ab");
		CHECK_EQ(r.kvs[1].mod_revision, 8);
	}
	q.keys_only = 0;
	q.count_only = 1;
	CHECK_EQ(range(s, &q, &r), 0);
	CHECK_EQ(r.n_kvs, 0);
	CHECK_EQ(r.count, 6);
	q.count_only = 0;

	/* sorts */
	q.sort_target = EF_SORT_KEY;
	q.sort_order = EF_SORT_DESCEND;
	CHECK_EQ(range(s, &q, &r), 0);
	CHECK_EQ(r.n_kvs, 6);
	if (r.n_kvs == 6) {
		CHECK_KV(r.kvs[0], "e", "1");
		CHECK_KV(r.kvs[5], "a", "5");
	}
	q.sort_target = EF_SORT_VALUE;
	q.sort_order = EF_SORT_ASCEND;
	CHECK_EQ(range(s, &q, &r), 0);
	if (r.n_kvs == 6) {
		CHECK_KV(r.kvs[0], "e", "1");
		CHECK_KV(r.kvs[1], "d", "2");
		CHECK_KV(r.kvs[2], "c", "33");
		CHECK_KV(r.kvs[3], "b", "444");
		CHECK_KV(r.kvs[5], "ab", "ab");
	}
	/* non-key target with order NONE sorts ascending (etcd) */
	q.sort_target = EF_SORT_MOD;
	q.sort_order = EF_SORT_NONE;
	CHECK_EQ(range(s, &q, &r), 0);
	if (r.n_kvs == 6) {
		CHECK_MEM(r.kvs[0].key.p, r.kvs[0].key.n, "a");
		CHECK_MEM(r.kvs[1].key.p, r.kvs[1].key.n, "d");
		CHECK_MEM(r.kvs[5].key.p, r.kvs[5].key.n, "b");
	}
	q.sort_target = EF_SORT_VERSION;
	q.sort_order = EF_SORT_DESCEND;
	q.limit = 2;
	CHECK_EQ(range(s, &q, &r), 0);
	CHECK_EQ(r.n_kvs, 2);
	CHECK_EQ(r.more, 1);
	CHECK_EQ(r.count, 6);
	if (r.n_kvs == 2) {
		CHECK_MEM(r.kvs[0].key.p, r.kvs[0].key.n, "b");
		CHECK_EQ(r.kvs[0].version, 3);
		CHECK_MEM(r.kvs[1].key.p, r.kvs[1].key.n, "c");
	}
	q.sort_target = EF_SORT_CREATE;
	q.sort_order = EF_SORT_DESCEND;
	q.limit = 1;
	CHECK_EQ(range(s, &q, &r), 0);
	if (r.n_kvs == 1)
		CHECK_MEM(r.kvs[0].key.p, r.kvs[0].key.n, "ab");

	/* min/max filters: count stays the number of keys in range */
	q = rq("a", (ef_buf){(const uint8_t *)"", 1});
	q.min_mod_revision = 7;
	CHECK_EQ(range(s, &q, &r), 0);
	CHECK_EQ(r.n_kvs, 3); /* ab(8) b(10) c(7) */
	CHECK_EQ(r.count, 6);
	q.min_mod_revision = 0;
	q.max_mod_revision = 5;
	CHECK_EQ(range(s, &q, &r), 0);
	CHECK_EQ(r.n_kvs, 2); /* a(2) d(5) */
	q.max_mod_revision = 0;
	q.min_create_revision = 4;
	q.max_create_revision = 6;
	CHECK_EQ(range(s, &q, &r), 0);
	CHECK_EQ(r.n_kvs, 3); /* c d e */
	q.limit = 2;
	CHECK_EQ(range(s, &q, &r), 0);
	CHECK_EQ(r.n_kvs, 2);
	CHECK_EQ(r.more, 1);

	/* future revision */
	q = rq("a", B(""));
	q.revision = 100;
	CHECK_EQ(range(s, &q, &r), EF_E_FUTURE_REV);
	ef_arena_free(pa);
	done(s);
}

TEST(historical_reads)
{
	store *s = fresh();
	ef_kv kv;
	ef_range_req q;
	ef_range_resp r;
	int64_t t2;

	put(s, "a", "1"); /* 2 */
	put(s, "a", "2"); /* 3 */
	t2 = NOW;
	put(s, "b", "b");      /* 4 */
	del(s, "a", B(""), 0); /* 5 */
	put(s, "a", "3");      /* 6 */

	/* revision 1 is the empty store (etcd answers it with no keys) */
	CHECK_EQ(get_at(s, "a", 1, NULL), 0);
	CHECK_EQ(get_at(s, "a", 2, &kv), 1);
	CHECK_KV(kv, "a", "1");
	CHECK_EQ(kv.version, 1);
	CHECK_EQ(get_at(s, "a", 3, &kv), 1);
	CHECK_KV(kv, "a", "2");
	CHECK_EQ(kv.version, 2);
	CHECK_EQ(kv.mod_revision, 3);
	CHECK_EQ(kv.create_revision, 2);
	CHECK_EQ(kv.mod_time_ns, t2);
	CHECK_EQ(get_at(s, "a", 4, &kv), 1);
	CHECK_KV(kv, "a", "2");
	CHECK_EQ(get_at(s, "a", 5, NULL), 0);
	CHECK_EQ(get_at(s, "a", 6, &kv), 1);
	CHECK_KV(kv, "a", "3");
	CHECK_EQ(kv.version, 1); /* re-created: version restarts */
	CHECK_EQ(kv.create_revision, 6);
	CHECK_EQ(get_at(s, "b", 3, NULL), 0);

	/* a historical range */
	q = rq("a", B("z"));
	q.revision = 4;
	CHECK_EQ(range(s, &q, &r), 0);
	CHECK_EQ(r.count, 2);
	if (r.n_kvs == 2) {
		CHECK_KV(r.kvs[0], "a", "2");
		CHECK_KV(r.kvs[1], "b", "b");
	}
	q.revision = 5;
	CHECK_EQ(range(s, &q, &r), 0);
	CHECK_EQ(r.count, 1);
	q.revision = 1;
	CHECK_EQ(range(s, &q, &r), 0);
	CHECK_EQ(r.count, 0);
	q.revision = 5;
	q.limit = 1;
	q.sort_order = EF_SORT_DESCEND;
	CHECK_EQ(range(s, &q, &r), 0);
	CHECK_EQ(r.n_kvs, 1);
	done(s);
}

TEST(delete_variants)
{
	store *s = fresh();
	ef_msg r;
	ef_kv kv;

	put_abcde(s); /* rev 10 */
	/* delete of nothing: no new revision */
	r = del(s, "zz", B(""), 0);
	CHECK_EQ(r.type, EF_MSG_DELETE_RESP);
	CHECK_EQ(r.u.del_resp.deleted, 0);
	CHECK_EQ(r.hdr.revision, 10);
	CHECK_EQ(store_revision(s), 10);
	/* single with prev_kv */
	r = del(s, "d", B(""), 1);
	CHECK_EQ(r.u.del_resp.deleted, 1);
	CHECK_EQ(r.u.del_resp.n_prev_kvs, 1);
	if (r.u.del_resp.n_prev_kvs == 1)
		CHECK_KV(r.u.del_resp.prev_kvs[0], "d", "2");
	CHECK_EQ(r.hdr.revision, 11);
	CHECK_EQ(get_at(s, "d", 0, NULL), 0);
	/* range [a, b): a and ab, one revision */
	r = del(s, "a", B("b"), 1);
	CHECK_EQ(r.u.del_resp.deleted, 2);
	CHECK_EQ(r.u.del_resp.n_prev_kvs, 2);
	if (r.u.del_resp.n_prev_kvs == 2) {
		CHECK_KV(r.u.del_resp.prev_kvs[0], "a", "5");
		CHECK_KV(r.u.del_resp.prev_kvs[1], "ab", "ab");
	}
	CHECK_EQ(r.hdr.revision, 12);
	CHECK_EQ(get_at(s, "b", 0, &kv), 1);
	/* from-key "c": c and e */
	r = del(s, "c", (ef_buf){(const uint8_t *)"", 1}, 0);
	CHECK_EQ(r.u.del_resp.deleted, 2);
	CHECK_EQ(r.u.del_resp.n_prev_kvs, 0);
	CHECK_EQ(r.hdr.revision, 13);
	CHECK_EQ(store_key_count(s), 1);
	/* the old state is still readable */
	CHECK_EQ(get_at(s, "e", 12, &kv), 1);
	CHECK_KV(kv, "e", "1");
	/* empty key */
	r = del(s, "", B(""), 0);
	CHECK_EQ(err_of(&r), EF_E_EMPTY_KEY);
	done(s);
}


TEST(txn_compares)
{
	store *s = fresh();
	ef_kv kv;

	CHECK_EQ(lease_grant(s, 5, 10), 0);
	put(s, "k", "m");                        /* 2: create 2 */
	put(s, "k", "m");                        /* 3: version 2, mod 3 */
	put_full(s, B("l"), B("v"), 5, 0, 0, 0); /* 4 */

	/* version */
	CHECK_EQ(txn_cmp(s, cmpn("k", EF_CMP_VERSION, EF_CMP_EQUAL, 2)), 1);
	CHECK_EQ(get_at(s, "res", 0, &kv), 1);
	CHECK_KV(kv, "res", "ok");
	CHECK_EQ(txn_cmp(s, cmpn("k", EF_CMP_VERSION, EF_CMP_EQUAL, 3)), 0);
	CHECK_EQ(get_at(s, "res", 0, &kv), 1);
	CHECK_KV(kv, "res", "ko");
	CHECK_EQ(txn_cmp(s, cmpn("k", EF_CMP_VERSION, EF_CMP_NOT_EQUAL, 3)), 1);
	CHECK_EQ(txn_cmp(s, cmpn("k", EF_CMP_VERSION, EF_CMP_NOT_EQUAL, 2)), 0);
	CHECK_EQ(txn_cmp(s, cmpn("k", EF_CMP_VERSION, EF_CMP_GREATER, 1)), 1);
	CHECK_EQ(txn_cmp(s, cmpn("k", EF_CMP_VERSION, EF_CMP_GREATER, 2)), 0);
	CHECK_EQ(txn_cmp(s, cmpn("k", EF_CMP_VERSION, EF_CMP_LESS, 3)), 1);
	CHECK_EQ(txn_cmp(s, cmpn("k", EF_CMP_VERSION, EF_CMP_LESS, 2)), 0);
	/* create */
	CHECK_EQ(txn_cmp(s, cmpn("k", EF_CMP_CREATE, EF_CMP_EQUAL, 2)), 1);
	CHECK_EQ(txn_cmp(s, cmpn("k", EF_CMP_CREATE, EF_CMP_GREATER, 2)), 0);
	CHECK_EQ(txn_cmp(s, cmpn("k", EF_CMP_CREATE, EF_CMP_LESS, 3)), 1);
	CHECK_EQ(txn_cmp(s, cmpn("k", EF_CMP_CREATE, EF_CMP_NOT_EQUAL, 2)), 0);
	/* mod */
	CHECK_EQ(txn_cmp(s, cmpn("k", EF_CMP_MOD, EF_CMP_EQUAL, 3)), 1);
	CHECK_EQ(txn_cmp(s, cmpn("k", EF_CMP_MOD, EF_CMP_LESS, 3)), 0);
	CHECK_EQ(txn_cmp(s, cmpn("k", EF_CMP_MOD, EF_CMP_GREATER, 2)), 1);
	CHECK_EQ(txn_cmp(s, cmpn("k", EF_CMP_MOD, EF_CMP_NOT_EQUAL, 3)), 0);
	/* lease */
	CHECK_EQ(txn_cmp(s, cmpn("l", EF_CMP_LEASE, EF_CMP_EQUAL, 5)), 1);
	CHECK_EQ(txn_cmp(s, cmpn("k", EF_CMP_LEASE, EF_CMP_EQUAL, 0)), 1);
	CHECK_EQ(txn_cmp(s, cmpn("l", EF_CMP_LEASE, EF_CMP_GREATER, 5)), 0);
	CHECK_EQ(txn_cmp(s, cmpn("l", EF_CMP_LEASE, EF_CMP_LESS, 6)), 1);
	CHECK_EQ(txn_cmp(s, cmpn("l", EF_CMP_LEASE, EF_CMP_NOT_EQUAL, 5)), 0);
	/* value */
	CHECK_EQ(txn_cmp(s, cmpv("k", EF_CMP_EQUAL, "m")), 1);
	CHECK_EQ(txn_cmp(s, cmpv("k", EF_CMP_EQUAL, "n")), 0);
	CHECK_EQ(txn_cmp(s, cmpv("k", EF_CMP_NOT_EQUAL, "n")), 1);
	CHECK_EQ(txn_cmp(s, cmpv("k", EF_CMP_GREATER, "l")), 1);
	CHECK_EQ(txn_cmp(s, cmpv("k", EF_CMP_GREATER, "m")), 0);
	CHECK_EQ(txn_cmp(s, cmpv("k", EF_CMP_LESS, "mm")), 1);
	CHECK_EQ(txn_cmp(s, cmpv("k", EF_CMP_LESS, "m")), 0);
	/* missing key: numbers are 0, value compares fail */
	CHECK_EQ(txn_cmp(s, cmpn("nokey", EF_CMP_VERSION, EF_CMP_EQUAL, 0)), 1);
	CHECK_EQ(txn_cmp(s, cmpn("nokey", EF_CMP_CREATE, EF_CMP_EQUAL, 0)), 1);
	CHECK_EQ(txn_cmp(s, cmpn("nokey", EF_CMP_MOD, EF_CMP_LESS, 1)), 1);
	CHECK_EQ(txn_cmp(s, cmpv("nokey", EF_CMP_EQUAL, "")), 0);
	CHECK_EQ(txn_cmp(s, cmpv("nokey", EF_CMP_NOT_EQUAL, "x")), 0);
	/* range compare: every key in [k, m) must match */
	{
		ef_compare c = cmpn("k", EF_CMP_CREATE, EF_CMP_GREATER, 0);

		c.range_end = B("m");
		CHECK_EQ(txn_cmp(s, c), 1);
		c = cmpn("k", EF_CMP_LEASE, EF_CMP_EQUAL, 5);
		c.range_end = B("m");
		CHECK_EQ(txn_cmp(s, c), 0); /* k has no lease */
		c.key = B("l");
		CHECK_EQ(txn_cmp(s, c), 1);
	}
	done(s);
}

TEST(txn_ops_one_revision)
{
	store *s = fresh();
	ef_op ops[4];
	ef_msg m, r;
	store_events ev = {A, NULL, 0, 0};
	ef_kv kv;

	put(s, "x", "old"); /* 2 */
	memset(ops, 0, sizeof(ops));
	ops[0].type = EF_OP_PUT;
	ops[0].u.put.key = B("a");
	ops[0].u.put.value = B("1");
	ops[1].type = EF_OP_RANGE;
	ops[1].u.range.key = B("a");
	ops[1].u.range.range_end = B("z");
	ops[2].type = EF_OP_DELETE;
	ops[2].u.del.key = B("x");
	ops[2].u.del.prev_kv = 1;
	ops[3].type = EF_OP_RANGE;
	ops[3].u.range.key = B("a");
	ops[3].u.range.range_end = B("z");
	memset(&m, 0, sizeof(m));
	m.type = EF_MSG_TXN;
	m.u.txn.success = ops;
	m.u.txn.n_success = 4;
	r = apply_ev(s, &m, &ev);
	CHECK_EQ(r.type, EF_MSG_TXN_RESP);
	CHECK_EQ(r.u.txn_resp.succeeded, 1);
	CHECK_EQ(r.hdr.revision, 3);
	CHECK_EQ(store_revision(s), 3);
	CHECK_EQ(r.u.txn_resp.n_responses, 4);
	if (r.u.txn_resp.n_responses == 4) {
		ef_range_resp *r1 = &r.u.txn_resp.responses[1].u.range;
		ef_range_resp *r3 = &r.u.txn_resp.responses[3].u.range;

		CHECK_EQ(r.u.txn_resp.responses[1].type, EF_OP_RANGE);
		CHECK_EQ(r1->count, 2); /* sees the txn's own put */
		if (r1->n_kvs == 2) {
			CHECK_KV(r1->kvs[0], "a", "1");
			CHECK_EQ(r1->kvs[0].mod_revision, 3);
		}
		CHECK_EQ(r.u.txn_resp.responses[2].u.del.deleted, 1);
		CHECK_EQ(r3->count, 1); /* and its own delete */
	}
	/* events: put a, delete x, both at revision 3 */
	CHECK_EQ(ev.n, 2);
	if (ev.n == 2) {
		CHECK_EQ(ev.ev[0].type, EF_EVENT_PUT);
		CHECK_EQ(ev.ev[0].kv.mod_revision, 3);
		CHECK_EQ(ev.ev[1].type, EF_EVENT_DELETE);
		CHECK_EQ(ev.ev[1].kv.mod_revision, 3);
		CHECK(ev.ev[1].prev_kv != NULL);
	}
	CHECK_EQ(get_at(s, "a", 0, &kv), 1);
	CHECK_EQ(get_at(s, "x", 2, &kv), 1);
	CHECK_EQ(get_at(s, "x", 3, NULL), 0);

	/* a txn that changes nothing does not bump the revision */
	m.u.txn.success = &ops[1];
	m.u.txn.n_success = 1;
	r = apply(s, &m);
	CHECK_EQ(r.type, EF_MSG_TXN_RESP);
	CHECK_EQ(r.hdr.revision, 3);
	m.u.txn.n_success = 0;
	r = apply(s, &m);
	CHECK_EQ(r.hdr.revision, 3);
	CHECK_EQ(store_revision(s), 3);
	done(s);
}

TEST(limits)
{
	store *s = fresh(); /* max_txn_ops = 4 */
	ef_op ops[5];
	ef_msg m, r;
	char longkey[EF_MAX_KEY_BYTES + 2];
	int i;

	put(s, "a", "1");
	memset(ops, 0, sizeof(ops));
	for (i = 0; i < 5; i++) {
		ops[i].type = EF_OP_RANGE;
		ops[i].u.range.key = B("a");
	}
	memset(&m, 0, sizeof(m));
	m.type = EF_MSG_TXN;
	m.u.txn.success = ops;
	m.u.txn.n_success = 5;
	r = apply(s, &m);
	CHECK_EQ(err_of(&r), EF_E_TOO_MANY_OPS);
	m.u.txn.n_success = 4;
	r = apply(s, &m);
	CHECK_EQ(err_of(&r), 0);
	m.u.txn.n_success = 0;
	m.u.txn.failure = ops;
	m.u.txn.n_failure = 5;
	r = apply(s, &m);
	CHECK_EQ(err_of(&r), EF_E_TOO_MANY_OPS);

	/* duplicate puts in one branch, and a delete covering a put */
	ops[0].type = ops[1].type = EF_OP_PUT;
	ops[0].u.put.key = B("p");
	ops[1].u.put.key = B("p");
	m.u.txn.failure = NULL;
	m.u.txn.n_failure = 0;
	m.u.txn.success = ops;
	m.u.txn.n_success = 2;
	r = apply(s, &m);
	CHECK_EQ(err_of(&r), EF_E_DUPLICATE_KEY);
	ops[1].u.put.key = B("q");
	r = apply(s, &m);
	CHECK_EQ(err_of(&r), 0);
	CHECK_EQ(store_revision(s), 3);
	ops[1].type = EF_OP_DELETE;
	memset(&ops[1].u, 0, sizeof(ops[1].u));
	ops[1].u.del.key = B("a");
	ops[1].u.del.range_end = B("z");
	r = apply(s, &m);
	CHECK_EQ(err_of(&r), EF_E_DUPLICATE_KEY);
	ops[1].u.del.key = B("p");
	ops[1].u.del.range_end = B("");
	r = apply(s, &m);
	CHECK_EQ(err_of(&r), EF_E_DUPLICATE_KEY);
	ops[1].u.del.key = B("p0");
	ops[1].u.del.range_end = B("z");
	r = apply(s, &m);
	CHECK_EQ(err_of(&r), 0); /* [p0, z) does not cover p */
	/* two overlapping deletes are fine */
	ops[0] = ops[1];
	ops[0].u.del.key = B("a");
	r = apply(s, &m);
	CHECK_EQ(err_of(&r), 0);

	/* empty key: put, compare, op */
	r = put(s, "", "x");
	CHECK_EQ(err_of(&r), EF_E_EMPTY_KEY);
	{
		ef_compare c = cmpn("", EF_CMP_VERSION, EF_CMP_EQUAL, 0);

		CHECK_EQ(txn_cmp(s, c), -EF_E_EMPTY_KEY);
	}
	ops[0].type = EF_OP_RANGE;
	memset(&ops[0].u, 0, sizeof(ops[0].u));
	m.u.txn.n_success = 1;
	r = apply(s, &m);
	CHECK_EQ(err_of(&r), EF_E_EMPTY_KEY);

	/* long key */
	memset(longkey, 'k', sizeof(longkey) - 1);
	longkey[sizeof(longkey) - 1] = 0;
	r = put(s, longkey, "x");
	CHECK_EQ(err_of(&r), EF_E_KEY_TOO_LONG);
	longkey[EF_MAX_KEY_BYTES] = 0;
	r = put(s, longkey, "x");
	CHECK_EQ(err_of(&r), 0);
	CHECK_EQ(get_at(s, longkey, 0, NULL), 1);
	CHECK(strcmp(ef_strerror(EF_E_KEY_TOO_LONG), "etcdserver: key is too long") == 0);
	done(s);
}

/* Failed requests inside a batch leave no trace; the batch goes on. */
TEST(request_error_rolls_back)
{
	store *s = fresh();
	ef_op ops[2];
	ef_msg m, r;
	store_events ev = {A, NULL, 0, 0};

	memset(ops, 0, sizeof(ops));
	ops[0].type = EF_OP_PUT;
	ops[0].u.put.key = B("a");
	ops[0].u.put.value = B("1");
	ops[1].type = EF_OP_PUT;
	ops[1].u.put.key = B("b");
	ops[1].u.put.lease = 99; /* not found: after a was written */
	memset(&m, 0, sizeof(m));
	m.type = EF_MSG_TXN;
	m.u.txn.success = ops;
	m.u.txn.n_success = 2;
	CHECK_EQ(store_begin(s), 0);
	CHECK_EQ(store_apply(s, 1, &m, &r, A, &ev), 0);
	CHECK_EQ(r.type, EF_MSG_ERROR);
	CHECK_EQ(r.u.error.code, EF_E_LEASE_NOT_FOUND);
	CHECK_MEM(r.u.error.message.p, r.u.error.message.n,
		  "etcdserver: requested lease not found");
	CHECK_EQ(r.hdr.revision, 1);
	CHECK_EQ(ev.n, 0);
	ops[1].u.put.lease = 0;
	CHECK_EQ(store_apply(s, 2, &m, &r, A, &ev), 0);
	CHECK_EQ(r.type, EF_MSG_TXN_RESP);
	CHECK_EQ(r.hdr.revision, 2);
	CHECK_EQ(ev.n, 2);
	/* not visible to readers before commit */
	CHECK_EQ(get_at(s, "a", 0, NULL), 0);
	CHECK_EQ(store_commit(s, 7), 0);
	CHECK_EQ(get_at(s, "a", 0, NULL), 1);
	CHECK_EQ(store_applied_index(s), 7);
	/* store_abort throws a batch away */
	CHECK_EQ(store_begin(s), 0);
	m.u.txn.n_success = 1;
	ops[0].u.put.value = B("2");
	CHECK_EQ(store_apply(s, 3, &m, &r, A, NULL), 0);
	CHECK_EQ(r.hdr.revision, 3);
	store_abort(s);
	CHECK_EQ(store_revision(s), 2);
	CHECK_EQ(store_applied_index(s), 7);
	r = put(s, "a", "3");
	CHECK_EQ(r.hdr.revision, 3);
	done(s);
}


TEST(compaction)
{
	store *s = fresh();
	ef_kv kv;
	store_events ev = {A, NULL, 0, 0};
	int64_t next;
	ef_range_req q;
	ef_range_resp r;

	put(s, "a", "1");      /* 2 */
	put(s, "a", "2");      /* 3 */
	put(s, "b", "1");      /* 4 */
	del(s, "b", B(""), 0); /* 5 */
	put(s, "c", "1");      /* 6 */
	put(s, "a", "3");      /* 7 */
	del(s, "c", B(""), 0); /* 8 */
	put(s, "d", "1");      /* 9 */

	CHECK_EQ(compact(s, 10), EF_E_FUTURE_REV);
	CHECK_EQ(compact(s, 6), 0);
	CHECK_EQ(store_compact_revision(s), 6);
	CHECK_EQ(store_revision(s), 9); /* compaction makes no revision */
	CHECK_EQ(compact(s, 6), EF_E_COMPACTED);
	CHECK_EQ(compact(s, 5), EF_E_COMPACTED);
	CHECK_EQ(compact(s, 1), EF_E_COMPACTED);

	CHECK_EQ(get_at(s, "a", 5, NULL), -EF_E_COMPACTED);
	CHECK_EQ(get_at(s, "a", 2, NULL), -EF_E_COMPACTED);
	CHECK_EQ(get_at(s, "a", 1, NULL), -EF_E_COMPACTED);
	/* at the compact revision: the state as of 6 */
	CHECK_EQ(get_at(s, "a", 6, &kv), 1);
	CHECK_KV(kv, "a", "2");
	CHECK_EQ(kv.version, 2);
	CHECK_EQ(kv.create_revision, 2);
	CHECK_EQ(get_at(s, "b", 6, NULL), 0);
	CHECK_EQ(get_at(s, "c", 6, &kv), 1);
	CHECK_EQ(get_at(s, "c", 7, &kv), 1);
	CHECK_EQ(get_at(s, "c", 8, NULL), 0);
	CHECK_EQ(get_at(s, "a", 7, &kv), 1);
	CHECK_KV(kv, "a", "3");
	q = rq("a", (ef_buf){(const uint8_t *)"", 1});
	q.revision = 6;
	CHECK_EQ(range(s, &q, &r), 0);
	CHECK_EQ(r.count, 2); /* a, c */

	/* history below is gone: events since 5 fail; since the compact
	 * revision itself work, as in etcd (what it kept at 6: the put of c) */
	CHECK_EQ(store_events_since(s, B("a"), (ef_buf){(const uint8_t *)"", 1}, 5, 100, 1, &ev,
				    &next),
		 EF_E_COMPACTED);
	CHECK_EQ(store_events_since(s, B("a"), (ef_buf){(const uint8_t *)"", 1}, 6, 100, 1, &ev,
				    &next),
		 0);
	CHECK_EQ(ev.n, 4);
	if (ev.n == 4)
		CHECK(ev.ev[0].kv.mod_revision == 6 && ev.ev[0].kv.key.n == 1 &&
		      ev.ev[0].kv.key.p[0] == 'c');
	ev.n = 0;
	CHECK_EQ(store_events_since(s, B("a"), (ef_buf){(const uint8_t *)"", 1}, 7, 100, 1, &ev,
				    &next),
		 0);
	CHECK_EQ(ev.n, 3);
	CHECK_EQ(next, 10);
	if (ev.n == 3) {
		/* prev of a@7 is the kept a@3 */
		CHECK(ev.ev[0].prev_kv != NULL);
		if (ev.ev[0].prev_kv)
			CHECK_EQ(ev.ev[0].prev_kv->mod_revision, 3);
	}
	/* second compaction drops what the first kept */
	CHECK_EQ(compact(s, 9), 0);
	CHECK_EQ(get_at(s, "a", 8, NULL), -EF_E_COMPACTED);
	CHECK_EQ(get_at(s, "a", 9, &kv), 1);
	CHECK_KV(kv, "a", "3");
	CHECK_EQ(get_at(s, "c", 9, NULL), 0);
	q.revision = 9;
	CHECK_EQ(range(s, &q, &r), 0);
	CHECK_EQ(r.count, 2); /* a, d */
	ev.n = 0;
	CHECK_EQ(store_events_since(s, B("a"), (ef_buf){(const uint8_t *)"", 1}, 10, 100, 1, &ev,
				    &next),
		 0);
	CHECK_EQ(ev.n, 0);
	CHECK_EQ(next, 10);
	/* writing after compaction still keeps versions right */
	put(s, "a", "4");
	CHECK_EQ(get_at(s, "a", 0, &kv), 1);
	CHECK_EQ(kv.version, 4);
	CHECK_EQ(get_at(s, "a", 9, &kv), 1);
	CHECK_KV(kv, "a", "3");
	done(s);
}

TEST(compaction_reclaims_space)
{
	store *s = fresh();
	char val[3000];
	int i, round;
	int64_t size1 = 0, size2;

	memset(val, 'v', sizeof(val));
	val[sizeof(val) - 1] = 0;
	for (round = 0; round < 6; round++) {
		for (i = 0; i < 300; i++) {
			char k[32];

			snprintf(k, sizeof(k), "key%04d", i);
			val[0] = (char)('a' +
					round); /* varies so the 3 KB stay uncompressed-sized */
			put(s, k, val);
		}
		CHECK_EQ(compact(s, store_revision(s)), 0);
		if (round == 1)
			size1 = store_db_size(s);
	}
	size2 = store_db_size(s);
	/* 4 more rounds of 900 KB each must reuse freed pages */
	CHECK(size2 < size1 + (size1 / 2));
	CHECK(store_db_size_in_use(s) <= size2);
	CHECK(store_db_size_in_use(s) > 0);
	CHECK_EQ(store_key_count(s), 300);
	done(s);
}

TEST(leases)
{
	store *s = fresh();
	store_events ev = {A, NULL, 0, 0};
	store_lease l, *list;
	uint32_t n;
	ef_buf *keys;
	ef_msg m, r;
	int64_t rev;

	CHECK_EQ(lease_grant(s, 10, 30), 0);
	CHECK_EQ(lease_grant(s, 10, 30), EF_E_LEASE_EXISTS);
	CHECK_EQ(lease_grant(s, 0, 30), EF_E_INVALID);
	CHECK_EQ(lease_grant(s, 3, 5), 0);
	CHECK_EQ(lease_grant(s, 3000000000000LL, 5), 0);
	CHECK_EQ(lease_grant(s, 4, 9000000001LL), EF_E_LEASE_TTL_TOO_LARGE);
	CHECK_EQ(store_revision(s), 1); /* leases make no revision */
	CHECK_EQ(store_lease_list(s, &list, &n), 0);
	CHECK_EQ(n, 3);
	if (n == 3) {
		CHECK_EQ(list[0].id, 3);
		CHECK_EQ(list[0].ttl, 5);
		CHECK_EQ(list[1].id, 10);
		CHECK_EQ(list[1].ttl, 30);
		CHECK_EQ(list[2].id, 3000000000000LL);
	}
	free(list);

	put_full(s, B("x"), B("1"), 10, 0, 0, 0);
	put_full(s, B("y"), B("2"), 10, 0, 0, 0);
	put_full(s, B("z"), B("3"), 3, 0, 0, 0);
	put(s, "w", "4");
	CHECK_EQ(store_lease_get(s, 10, &l, &keys, &n, A), 0);
	CHECK_EQ(l.ttl, 30);
	CHECK_EQ(n, 2);
	if (n == 2) {
		CHECK_MEM(keys[0].p, keys[0].n, "x");
		CHECK_MEM(keys[1].p, keys[1].n, "y");
	}
	/* move z from lease 3 to lease 10 */
	put_full(s, B("z"), B("3"), 10, 0, 0, 0);
	CHECK_EQ(store_lease_get(s, 3, &l, &keys, &n, A), 0);
	CHECK_EQ(n, 0);
	CHECK_EQ(store_lease_get(s, 10, &l, NULL, NULL, A), 0);
	rev = store_revision(s);

	memset(&m, 0, sizeof(m));
	m.type = EF_MSG_LEASE_REVOKE;
	m.u.lease.id = 10;
	r = apply_ev(s, &m, &ev);
	CHECK_EQ(r.type, EF_MSG_LEASE_REVOKE_RESP);
	CHECK_EQ(r.hdr.revision, rev + 1); /* one revision for all three keys */
	CHECK_EQ(ev.n, 3);
	if (ev.n == 3) {
		CHECK_EQ(ev.ev[0].type, EF_EVENT_DELETE);
		CHECK_EQ(ev.ev[2].kv.mod_revision, rev + 1);
		CHECK(ev.ev[0].prev_kv && ev.ev[0].prev_kv->lease == 10);
	}
	CHECK_EQ(get_at(s, "x", 0, NULL), 0);
	CHECK_EQ(get_at(s, "y", 0, NULL), 0);
	CHECK_EQ(get_at(s, "z", 0, NULL), 0);
	CHECK_EQ(get_at(s, "w", 0, NULL), 1);
	CHECK_EQ(store_lease_get(s, 10, &l, &keys, &n, A), EF_E_LEASE_NOT_FOUND);
	r = apply(s, &m);
	CHECK_EQ(err_of(&r), EF_E_LEASE_NOT_FOUND);
	r = put_full(s, B("x"), B("1"), 10, 0, 0, 0);
	CHECK_EQ(err_of(&r), EF_E_LEASE_NOT_FOUND);
	/* revoking a lease without keys makes no revision */
	m.u.lease.id = 3;
	r = apply(s, &m);
	CHECK_EQ(r.type, EF_MSG_LEASE_REVOKE_RESP);
	CHECK_EQ(r.hdr.revision, rev + 1);
	/* a deleted key leaves its lease's key list */
	CHECK_EQ(lease_grant(s, 11, 30), 0);
	put_full(s, B("q"), B("1"), 11, 0, 0, 0);
	del(s, "q", B(""), 0);
	CHECK_EQ(store_lease_get(s, 11, &l, &keys, &n, A), 0);
	CHECK_EQ(n, 0);
	done(s);
}

TEST(apply_events)
{
	store *s = fresh();
	store_events ev = {A, NULL, 0, 0};
	ef_msg m;
	int i;

	memset(&m, 0, sizeof(m));
	m.type = EF_MSG_PUT;
	m.u.put.key = B("k");
	m.u.put.value = B("v1");
	apply_ev(s, &m, &ev);
	m.u.put.value = B("v2");
	apply_ev(s, &m, &ev);
	memset(&m, 0, sizeof(m));
	m.type = EF_MSG_DELETE;
	m.u.del.key = B("k");
	apply_ev(s, &m, &ev);
	CHECK_EQ(ev.n, 3);
	if (ev.n == 3) {
		CHECK_EQ(ev.ev[0].type, EF_EVENT_PUT);
		CHECK_KV(ev.ev[0].kv, "k", "v1");
		CHECK_EQ(ev.ev[0].kv.version, 1);
		CHECK(ev.ev[0].prev_kv == NULL);
		CHECK_EQ(ev.ev[1].kv.mod_revision, 3);
		CHECK_EQ(ev.ev[1].kv.create_revision, 2);
		CHECK(ev.ev[1].prev_kv != NULL);
		if (ev.ev[1].prev_kv)
			CHECK_KV(*ev.ev[1].prev_kv, "k", "v1");
		CHECK_EQ(ev.ev[2].type, EF_EVENT_DELETE);
		CHECK_MEM(ev.ev[2].kv.key.p, ev.ev[2].kv.key.n, "k");
		CHECK_EQ(ev.ev[2].kv.mod_revision, 4);
		CHECK_EQ(ev.ev[2].kv.version, 0);
		CHECK(ev.ev[2].prev_kv != NULL);
		if (ev.ev[2].prev_kv)
			CHECK_KV(*ev.ev[2].prev_kv, "k", "v2");
	}
	/* many events grow the array */
	ev.n = 0;
	for (i = 0; i < 100; i++) {
		char k[16];

		memset(&m, 0, sizeof(m));
		snprintf(k, sizeof(k), "m%03d", i);
		m.type = EF_MSG_PUT;
		m.u.put.key = B(k);
		m.u.put.value = B("v");
		apply_ev(s, &m, &ev);
	}
	CHECK_EQ(ev.n, 100);
	if (ev.n == 100)
		CHECK_MEM(ev.ev[99].kv.key.p, ev.ev[99].kv.key.n, "m099");
	done(s);
}

TEST(events_since)
{
	store *s = fresh();
	store_events ev = {A, NULL, 0, 0};
	int64_t next;
	ef_op ops[3];
	ef_msg m;
	ef_buf all = {(const uint8_t *)"", 1};

	put(s, "a", "1"); /* 2 */
	put(s, "b", "1"); /* 3 */
	memset(ops, 0, sizeof(ops));
	ops[0].type = ops[1].type = ops[2].type = EF_OP_PUT;
	ops[0].u.put.key = B("a");
	ops[1].u.put.key = B("b");
	ops[2].u.put.key = B("c");
	memset(&m, 0, sizeof(m));
	m.type = EF_MSG_TXN;
	m.u.txn.success = ops;
	m.u.txn.n_success = 3;
	apply(s, &m);          /* 4: a, b, c */
	del(s, "a", B(""), 0); /* 5 */
	put(s, "zz", "1");     /* 6 */

	CHECK_EQ(store_events_since(s, B("a"), all, 2, 0, 0, &ev, &next), 0);
	CHECK_EQ(ev.n, 7);
	CHECK_EQ(next, 7);
	if (ev.n == 7) {
		CHECK_EQ(ev.ev[5].type, EF_EVENT_DELETE);
		CHECK_EQ(ev.ev[5].kv.mod_revision, 5);
		CHECK(ev.ev[5].prev_kv == NULL); /* not asked */
	}
	/* revision 1 (the empty store) has no events: since 1 is since 2 */
	ev.n = 0;
	CHECK_EQ(store_events_since(s, B("a"), all, 1, 0, 0, &ev, &next), 0);
	CHECK_EQ(ev.n, 7);
	CHECK_EQ(next, 7);
	if (ev.n == 7)
		CHECK_EQ(ev.ev[0].kv.mod_revision, 2);
	/* only key a, with prev */
	ev.n = 0;
	CHECK_EQ(store_events_since(s, B("a"), B(""), 3, 0, 1, &ev, &next), 0);
	CHECK_EQ(ev.n, 2);
	if (ev.n == 2) {
		CHECK_EQ(ev.ev[0].kv.mod_revision, 4);
		CHECK(ev.ev[0].prev_kv && ev.ev[0].prev_kv->mod_revision == 2);
		CHECK(ev.ev[1].prev_kv && ev.ev[1].prev_kv->mod_revision == 4);
	}
	/* range [b, c] */
	ev.n = 0;
	CHECK_EQ(store_events_since(s, B("b"), B("d"), 2, 0, 0, &ev, &next), 0);
	CHECK_EQ(ev.n, 3);
	/* max: whole revisions only */
	ev.n = 0;
	CHECK_EQ(store_events_since(s, B("a"), all, 2, 3, 0, &ev, &next), 0);
	CHECK_EQ(ev.n, 2); /* revs 2, 3; revision 4 (3 events) does not fit */
	CHECK_EQ(next, 4);
	ev.n = 0;
	CHECK_EQ(store_events_since(s, B("a"), all, 4, 2, 0, &ev, &next), 0);
	CHECK_EQ(ev.n, 3); /* one revision alone bigger than max: whole */
	CHECK_EQ(next, 5);
	ev.n = 0;
	CHECK_EQ(store_events_since(s, B("a"), all, 5, 1, 0, &ev, &next), 0);
	CHECK_EQ(ev.n, 1);
	CHECK_EQ(next, 6);
	ev.n = 0;
	CHECK_EQ(store_events_since(s, B("a"), all, 7, 10, 0, &ev, &next), 0);
	CHECK_EQ(ev.n, 0);
	CHECK_EQ(next, 7);
	done(s);
}

int main(void)
{
	RUN(put_get_versions);
	RUN(prev_kv_and_ignore_flags);
	RUN(range_variants);
	RUN(historical_reads);
	RUN(delete_variants);
	RUN(txn_compares);
	RUN(txn_ops_one_revision);
	RUN(limits);
	RUN(request_error_rolls_back);
	RUN(compaction);
	RUN(compaction_reclaims_space);
	RUN(leases);
	RUN(apply_events);
	RUN(events_since);
	ef_arena_free(A);
	TEST_EXIT();
}
