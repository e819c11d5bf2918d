/*
 * test_store.c - unit tests of the MVCC store (server/store.c): etcd's
 * revision/version rules, range options, history, txn compares and limits,
 * compaction, leases, events, persistence and snapshots, each checked
 * against the values etcd itself would return.
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

static ef_arena *A;
static uint64_t IDX;
static int64_t NOW = 1000000;
static char DIR_[256];

static void rm_rf(const char *dir)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup of %s failed\n", dir);
}

static store *open_at(const char *dir, uint64_t quota)
{
	store_opts o = {dir, quota, 4};
	char err[256] = "";
	store *s = NULL;
	int rc = store_open(&o, &s, err, sizeof(err));

	if (rc)
		fprintf(stderr, "store_open(%s): %s %s\n", dir, ef_error_name(rc), err);
	return s;
}

static store *fresh(void)
{
	snprintf(DIR_, sizeof(DIR_), "/tmp/test_store.XXXXXX");
	if (!mkdtemp(DIR_))
		abort();
	IDX = 0;
	if (!A)
		A = ef_arena_new();
	return open_at(DIR_, 64u << 20);
}

static void done(store *s)
{
	store_close(s);
	rm_rf(DIR_);
	ef_arena_reset(A);
}

/* Apply one request in its own batch. */
static ef_msg apply_ev(store *s, const ef_msg *req, store_events *ev)
{
	ef_msg resp;
	int rc;

	memset(&resp, 0, sizeof(resp));
	rc = store_begin(s);
	if (rc) {
		fprintf(stderr, "store_begin: %s\n", ef_error_name(rc));
		resp.type = 0;
		return resp;
	}
	NOW += 1000;
	rc = store_apply(s, NOW, req, &resp, A, ev);
	if (rc) {
		fprintf(stderr, "store_apply: %s\n", ef_error_name(rc));
		resp.type = 0;
		return resp;
	}
	rc = store_commit(s, ++IDX);
	if (rc)
		fprintf(stderr, "store_commit: %s\n", ef_error_name(rc));
	return resp;
}

static ef_msg apply(store *s, const ef_msg *req)
{
	return apply_ev(s, req, NULL);
}

static ef_buf B(const char *s)
{
	return ef_str(s);
}

static ef_msg put_full(store *s, ef_buf k, ef_buf v, int64_t lease, int prev, int iv, int il)
{
	ef_msg m;

	memset(&m, 0, sizeof(m));
	m.type = EF_MSG_PUT;
	m.u.put.key = k;
	m.u.put.value = v;
	m.u.put.lease = lease;
	m.u.put.prev_kv = (uint8_t)prev;
	m.u.put.ignore_value = (uint8_t)iv;
	m.u.put.ignore_lease = (uint8_t)il;
	return apply(s, &m);
}

static ef_msg put(store *s, const char *k, const char *v)
{
	return put_full(s, B(k), B(v), 0, 0, 0, 0);
}

static ef_msg del(store *s, const char *k, ef_buf end, int prev)
{
	ef_msg m;

	memset(&m, 0, sizeof(m));
	m.type = EF_MSG_DELETE;
	m.u.del.key = B(k);
	m.u.del.range_end = end;
	m.u.del.prev_kv = (uint8_t)prev;
	return apply(s, &m);
}

static ef_range_req rq(const char *k, ef_buf end)
{
	ef_range_req q;

	memset(&q, 0, sizeof(q));
	q.key = B(k);
	q.range_end = end;
	return q;
}

static int range(store *s, const ef_range_req *q, ef_range_resp *r)
{
	int64_t hrev;

	return store_range(s, q, r, &hrev, A);
}

/* Value of key at revision rev (0 = now) or NULL; *kv filled when found. */
static int get_at(store *s, const char *k, int64_t rev, ef_kv *kv)
{
	ef_range_req q = rq(k, B(""));
	ef_range_resp r;
	int rc;

	q.revision = rev;
	rc = range(s, &q, &r);
	if (rc)
		return -rc;
	if (r.n_kvs == 1 && kv)
		*kv = r.kvs[0];
	return (int)r.n_kvs;
}

static int lease_grant(store *s, int64_t id, int64_t ttl)
{
	ef_msg m, r;

	memset(&m, 0, sizeof(m));
	m.type = EF_MSG_LEASE_GRANT;
	m.u.lease.id = id;
	m.u.lease.ttl = ttl;
	r = apply(s, &m);
	return r.type == EF_MSG_ERROR ? (int)r.u.error.code : 0;
}

static int err_of(const ef_msg *r)
{
	return r->type == EF_MSG_ERROR ? (int)r->u.error.code : 0;
}

#define CHECK_KV(kv, k, v)                                \
	do {                                              \
		CHECK_MEM((kv).key.p, (kv).key.n, k);     \
		CHECK_MEM((kv).value.p, (kv).value.n, v); \
	} while (0)

/* ------------------------------------------------------------------ */

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

static void put_abcde(store *s)
{
	put(s, "a", "5");   /* rev 2 */
	put(s, "b", "4");   /* rev 3 */
	put(s, "c", "3");   /* rev 4 */
	put(s, "d", "2");   /* rev 5 */
	put(s, "e", "1");   /* rev 6 */
	put(s, "c", "33");  /* rev 7: c version 2 */
	put(s, "ab", "ab"); /* rev 8 */
	put(s, "b", "44");  /* rev 9 */
	put(s, "b", "444"); /* rev 10: b version 3 */
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

static ef_compare cmpn(const char *k, uint8_t target, uint8_t result, int64_t n)
{
	ef_compare c;

	memset(&c, 0, sizeof(c));
	c.key = B(k);
	c.target = target;
	c.result = result;
	c.number = n;
	return c;
}

static ef_compare cmpv(const char *k, uint8_t result, const char *v)
{
	ef_compare c = cmpn(k, EF_CMP_VALUE, result, 0);

	c.value = B(v);
	return c;
}

/* Run a txn whose only success op is a put of "ok" and failure op a put of
 * "ko" (on key "res"); returns succeeded or -error. */
static int txn_cmp(store *s, ef_compare c)
{
	ef_op succ, fail;
	ef_msg m, r;

	memset(&succ, 0, sizeof(succ));
	memset(&fail, 0, sizeof(fail));
	succ.type = fail.type = EF_OP_PUT;
	succ.u.put.key = fail.u.put.key = B("res");
	succ.u.put.value = B("ok");
	fail.u.put.value = B("ko");
	memset(&m, 0, sizeof(m));
	m.type = EF_MSG_TXN;
	m.u.txn.cmp = &c;
	m.u.txn.n_cmp = 1;
	m.u.txn.success = &succ;
	m.u.txn.n_success = 1;
	m.u.txn.failure = &fail;
	m.u.txn.n_failure = 1;
	r = apply(s, &m);
	if (r.type == EF_MSG_ERROR)
		return -(int)r.u.error.code;
	return r.u.txn_resp.succeeded;
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

static int compact(store *s, int64_t rev)
{
	ef_msg m, r;

	memset(&m, 0, sizeof(m));
	m.type = EF_MSG_COMPACT;
	m.u.compact.revision = rev;
	r = apply(s, &m);
	if (r.type == EF_MSG_ERROR)
		return (int)r.u.error.code;
	return r.type == EF_MSG_COMPACT_RESP ? 0 : -1;
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

TEST(persist_reopen)
{
	store *s = fresh();
	ef_buf v;
	ef_kv kv;

	put(s, "a", "1");
	put(s, "b", "2");
	CHECK_EQ(compact(s, 2), 0);
	CHECK_EQ(store_begin(s), 0);
	CHECK_EQ(store_meta_put(s, "members", "m1,m2", 5), 0);
	CHECK_EQ(store_meta_get(s, "members", &v, A), 0); /* the batch sees its own write */
	CHECK_EQ(store_commit(s, 42), 0);
	CHECK_EQ(store_sync(s), 0);
	CHECK_EQ(store_applied_index(s), 42);
	store_close(s);

	s = open_at(DIR_, 64u << 20);
	CHECK(s != NULL);
	if (!s)
		return;
	CHECK_EQ(store_applied_index(s), 42);
	CHECK_EQ(store_revision(s), 3);
	CHECK_EQ(store_compact_revision(s), 2);
	CHECK_EQ(get_at(s, "b", 0, &kv), 1);
	CHECK_KV(kv, "b", "2");
	CHECK_EQ(store_meta_get(s, "members", &v, A), 0);
	CHECK_MEM(v.p, v.n, "m1,m2");
	CHECK_EQ(store_meta_get(s, "nothing", &v, A), EF_E_NOT_FOUND);
	done(s);
}

TEST(snapshot_round_trip)
{
	store *s = fresh(), *t;
	char other[300], snap[300];
	int fd;
	ef_kv kv;
	store_lease l;
	char src[256];

	CHECK_EQ(lease_grant(s, 9, 60), 0);
	put(s, "a", "1");
	put_full(s, B("b"), B("2"), 9, 0, 0, 0);
	put(s, "a", "3");
	CHECK_EQ(store_begin(s), 0);
	CHECK_EQ(store_commit(s, 100), 0);

	snprintf(snap, sizeof(snap), "%s.snap", DIR_);
	fd = open(snap, O_CREAT | O_TRUNC | O_WRONLY, 0600);
	CHECK(fd >= 0);
	CHECK_EQ(store_snapshot_write(s, fd), 0);
	close(fd);

	/* install into a second store with different contents */
	snprintf(src, sizeof(src), "%s", DIR_);
	snprintf(other, sizeof(other), "%s.other", DIR_);
	t = open_at(other, 64u << 20);
	CHECK(t != NULL);
	if (t) {
		CHECK_EQ(store_begin(t), 0);
		{
			ef_msg m, r;

			memset(&m, 0, sizeof(m));
			m.type = EF_MSG_PUT;
			m.u.put.key = B("zzz");
			m.u.put.value = B("old");
			CHECK_EQ(store_apply(t, 1, &m, &r, A, NULL), 0);
		}
		CHECK_EQ(store_commit(t, 5), 0);
		CHECK_EQ(store_snapshot_install(t, snap), 0);
		CHECK_EQ(store_applied_index(t), 100);
		CHECK_EQ(store_revision(t), 4);
		CHECK_EQ(get_at(t, "zzz", 0, NULL), 0);
		CHECK_EQ(get_at(t, "a", 0, &kv), 1);
		CHECK_KV(kv, "a", "3");
		CHECK_EQ(get_at(t, "a", 2, &kv), 1);
		CHECK_KV(kv, "a", "1");
		CHECK_EQ(store_lease_get(t, 9, &l, NULL, NULL, A), 0);
		CHECK_EQ(l.ttl, 60);
		/* and it keeps working */
		put(t, "c", "4");
		CHECK_EQ(store_revision(t), 5);
		store_close(t);
	}
	unlink(snap);
	rm_rf(other);
	snprintf(DIR_, sizeof(DIR_), "%s", src);
	done(s);
}

TEST(binary_keys_values)
{
	store *s = fresh();
	static const uint8_t k1[] = {'a', 0, 'b'}, k2[] = {'a', 0}, k3[] = {'a', 0, 0xff};
	static const uint8_t v1[] = {0, 1, 0, 2, 0};
	ef_range_req q;
	ef_range_resp r;
	ef_msg m;

	put_full(s, (ef_buf){k1, 3}, (ef_buf){v1, 5}, 0, 0, 0, 0);
	put_full(s, (ef_buf){k2, 2}, (ef_buf){v1, 1}, 0, 0, 0, 0);
	put_full(s, (ef_buf){k3, 3}, (ef_buf){v1, 0}, 0, 0, 0, 0);
	put(s, "a", "plain");
	memset(&q, 0, sizeof(q));
	q.key = (ef_buf){k2, 2};
	q.range_end = (ef_buf){(const uint8_t *)"a\001", 2};
	CHECK_EQ(range(s, &q, &r), 0);
	CHECK_EQ(r.n_kvs, 3);
	if (r.n_kvs == 3) {
		CHECK(r.kvs[0].key.n == 2 && memcmp(r.kvs[0].key.p, k2, 2) == 0);
		CHECK(r.kvs[1].key.n == 3 && memcmp(r.kvs[1].key.p, k1, 3) == 0);
		CHECK(r.kvs[1].value.n == 5 && memcmp(r.kvs[1].value.p, v1, 5) == 0);
		CHECK_EQ(r.kvs[2].value.n, 0);
	}
	memset(&m, 0, sizeof(m));
	m.type = EF_MSG_DELETE;
	m.u.del.key = (ef_buf){k1, 3};
	m.u.del.prev_kv = 1;
	m = apply(s, &m);
	CHECK_EQ(m.u.del_resp.deleted, 1);
	CHECK(m.u.del_resp.n_prev_kvs == 1 && m.u.del_resp.prev_kvs[0].value.n == 5 &&
	      memcmp(m.u.del_resp.prev_kvs[0].value.p, v1, 5) == 0);
	done(s);
}

TEST(large_values_compressed)
{
	store *s = fresh();
	size_t n = 200000, i;
	char *big = malloc(n + 1);
	ef_kv kv;
	ef_compare c;

	for (i = 0; i < n; i++)
		big[i] = (char)('a' + (i / 7) % 5);
	big[n] = 0;
	put(s, "big", big);
	put(s, "big2", big);
	CHECK_EQ(get_at(s, "big", 0, &kv), 1);
	CHECK(kv.value.n == n && memcmp(kv.value.p, big, n) == 0);
	put(s, "big", "small");
	CHECK_EQ(get_at(s, "big", 2, &kv), 1);
	CHECK(kv.value.n == n && memcmp(kv.value.p, big, n) == 0);
	/* compressed values compare on their plain bytes */
	c = cmpv("big2", EF_CMP_EQUAL, big);
	CHECK_EQ(txn_cmp(s, c), 1);
	/* ignore_value keeps a compressed value */
	put_full(s, B("big2"), B(""), 0, 0, 1, 0);
	CHECK_EQ(get_at(s, "big2", 0, &kv), 1);
	CHECK(kv.value.n == n && memcmp(kv.value.p, big, n) == 0);
	CHECK(store_db_size_in_use(s) < 200000); /* three 200 KB versions stored compressed */
	free(big);
	done(s);
}

TEST(no_space)
{
	store *s;
	char *val = malloc(100000);
	int i, got = 0;
	ef_msg r;
	ef_kv kv;

	snprintf(DIR_, sizeof(DIR_), "/tmp/test_store.XXXXXX");
	if (!mkdtemp(DIR_))
		abort();
	s = open_at(DIR_, 1u << 20);
	CHECK(s != NULL);
	if (!s)
		return;
	srand(1);
	for (i = 0; i < 100000; i++)
		val[i] = (char)(1 + rand() % 255); /* incompressible */
	val[99999] = 0;
	put(s, "first", "1");
	for (i = 0; i < 40 && !got; i++) {
		char k[16];

		snprintf(k, sizeof(k), "k%d", i);
		r = put(s, k, val);
		if (r.type == EF_MSG_ERROR) {
			CHECK_EQ(r.u.error.code, EF_E_NO_SPACE);
			got = 1;
		}
	}
	CHECK(got);
	/* the store stays usable and unchanged by the failed request */
	CHECK_EQ(get_at(s, "first", 0, &kv), 1);
	CHECK_EQ(store_revision(s), i + 1); /* 1 (empty store) + i successful puts */
	r = del(s, "k", (ef_buf){(const uint8_t *)"", 1}, 0);
	CHECK_EQ(err_of(&r), 0);
	CHECK(r.u.del_resp.deleted >= 1);
	/* once the history is compacted the freed pages count again */
	CHECK_EQ(compact(s, store_revision(s)), 0);
	put(s, "again", "1"); /* a commit in between lets the freelist be reused */
	r = put(s, "k0", val);
	CHECK_EQ(err_of(&r), 0);
	free(val);
	done(s);
}

/* ------------------------------------------------------------------ */
/* Randomized comparison with a tiny in-memory model of etcd's MVCC.   */

#define M_KEYS 6
#define M_REVS 400

struct mkv {
	int live;
	int64_t create, mod, version;
	char val[8];
};

static struct mkv model[M_REVS + 1][M_KEYS]; /* state as of each revision */

static void mkey(int i, char *k)
{
	k[0] = 'k';
	k[1] = (char)('0' + i);
	k[2] = 0;
}

TEST(model_random)
{
	store *s = fresh();
	int64_t rev = 1, compact_rev = 0; /* a fresh store is at revision 1 (etcd) */
	int step, i;
	unsigned seed = 12345;

	memset(model, 0, sizeof(model));
	for (step = 0; step < 1500 && rev < M_REVS - 2; step++) {
		int op = rand_r(&seed) % 10, k = rand_r(&seed) % M_KEYS;
		char key[4], val[8];
		struct mkv next[M_KEYS];
		int changed = 0;
		ef_msg r;

		memcpy(next, model[rev], sizeof(next));
		mkey(k, key);
		snprintf(val, sizeof(val), "v%d", rand_r(&seed) % 100);
		if (op < 5) {
			r = put(s, key, val);
			CHECK_EQ(err_of(&r), 0);
			if (!next[k].live) {
				next[k].live = 1;
				next[k].create = rev + 1;
				next[k].version = 0;
			}
			next[k].version++;
			next[k].mod = rev + 1;
			snprintf(next[k].val, sizeof(next[k].val), "%s", val);
			changed = 1;
		} else if (op < 7) {
			int k2 = k + rand_r(&seed) % 3;
			char end[4];

			mkey(k2, end);
			r = del(s, key, k2 == k ? B("") : B(end), 0);
			CHECK_EQ(err_of(&r), 0);
			for (i = k; i <= (k2 == k ? k : k2 - 1) && i < M_KEYS; i++)
				if (next[i].live) {
					next[i].live = 0;
					changed = 1;
				}
		} else if (op < 9) {
			/* txn: if version(key) == model then put key2 and delete key3 */
			ef_compare c = cmpn(key, EF_CMP_VERSION, EF_CMP_EQUAL,
					    next[k].live ? next[k].version : 0);
			ef_op ops[2];
			ef_msg m;
			int k2 = rand_r(&seed) % M_KEYS, k3 = (k2 + 1) % M_KEYS;
			char key2[4], key3[4];

			if (rand_r(&seed) % 3 == 0)
				c.number++; /* make it fail: failure branch is empty */
			mkey(k2, key2);
			mkey(k3, key3);
			memset(ops, 0, sizeof(ops));
			ops[0].type = EF_OP_PUT;
			ops[0].u.put.key = B(key2);
			ops[0].u.put.value = B(val);
			ops[1].type = EF_OP_DELETE;
			ops[1].u.del.key = B(key3);
			memset(&m, 0, sizeof(m));
			m.type = EF_MSG_TXN;
			m.u.txn.cmp = &c;
			m.u.txn.n_cmp = 1;
			m.u.txn.success = ops;
			m.u.txn.n_success = 2;
			r = apply(s, &m);
			CHECK_EQ(err_of(&r), 0);
			if (r.u.txn_resp.succeeded) {
				if (!next[k2].live) {
					next[k2].live = 1;
					next[k2].create = rev + 1;
					next[k2].version = 0;
				}
				next[k2].version++;
				next[k2].mod = rev + 1;
				snprintf(next[k2].val, sizeof(next[k2].val), "%s", val);
				next[k3].live = 0;
				changed = 1;
			}
		} else if (rev > compact_rev) {
			int64_t to = compact_rev + 1 + rand_r(&seed) % (rev - compact_rev);

			CHECK_EQ(compact(s, to), 0);
			compact_rev = to;
		}
		if (changed) {
			rev++;
			memcpy(model[rev], next, sizeof(next));
		}
		CHECK_EQ(store_revision(s), rev);
		/* check a few reads at random revisions */
		for (i = 0; i < 3 && rev > 0; i++) {
			int64_t at = compact_rev + rand_r(&seed) % (rev - compact_rev + 1);
			int kk = rand_r(&seed) % M_KEYS, n;
			char kn[4];
			ef_kv kv;

			if (at == 0)
				at = rev;
			mkey(kk, kn);
			n = get_at(s, kn, at, &kv);
			if (at < compact_rev) {
				CHECK_EQ(n, -EF_E_COMPACTED);
				continue;
			}
			CHECK_EQ(n, model[at][kk].live);
			if (n == 1 && model[at][kk].live) {
				CHECK_MEM(kv.value.p, kv.value.n, model[at][kk].val);
				CHECK_EQ(kv.create_revision, model[at][kk].create);
				CHECK_EQ(kv.mod_revision, model[at][kk].mod);
				CHECK_EQ(kv.version, model[at][kk].version);
			}
		}
		if (t_failed_) {
			fprintf(stderr,
				"  model_random: diverged at step %d rev %lld compact %lld\n", step,
				(long long)rev, (long long)compact_rev);
			break;
		}
	}
	/* a full range at every revision still readable */
	for (i = (int)(compact_rev ? compact_rev : 1); i <= rev && !t_failed_; i++) {
		ef_range_req q = rq("k", B("l"));
		ef_range_resp r;
		int live = 0, j;

		q.revision = i;
		CHECK_EQ(range(s, &q, &r), 0);
		for (j = 0; j < M_KEYS; j++)
			live += model[i][j].live;
		CHECK_EQ(r.count, live);
	}
	/* events since compact+1 replay exactly the model's changes */
	{
		store_events ev = {A, NULL, 0, 0};
		int64_t next;
		struct mkv cur[M_KEYS];
		uint32_t e;

		CHECK_EQ(store_events_since(s, B("k"), B("l"), compact_rev + 1, 0, 1, &ev, &next),
			 0);
		CHECK_EQ(next, rev + 1);
		memcpy(cur, model[compact_rev], sizeof(cur));
		for (e = 0; e < ev.n; e++) {
			int kk = ev.ev[e].kv.key.p[1] - '0';

			if (ev.ev[e].type == EF_EVENT_PUT) {
				cur[kk].live = 1;
				cur[kk].mod = ev.ev[e].kv.mod_revision;
				cur[kk].version = ev.ev[e].kv.version;
			} else {
				cur[kk].live = 0;
			}
		}
		for (i = 0; i < M_KEYS; i++) {
			CHECK_EQ(cur[i].live, model[rev][i].live);
			if (cur[i].live)
				CHECK_EQ(cur[i].version, model[rev][i].version);
		}
	}
	done(s);
}

struct reader_arg {
	store *s;
	volatile int failures, reads;
	volatile int *stop;
};

static void *reader(void *p)
{
	struct reader_arg *ra = p;
	ef_arena *a = ef_arena_new();

	while (!*ra->stop) {
		ef_range_req q = rq("k", B("l"));
		ef_range_resp r;
		int64_t hrev;
		uint32_t i;

		if (store_range(ra->s, &q, &r, &hrev, a)) {
			ra->failures++;
			continue;
		}
		/* every key of one revision holds the same value */
		for (i = 1; i < r.n_kvs; i++)
			if (r.kvs[i].value.n != r.kvs[0].value.n ||
			    memcmp(r.kvs[i].value.p, r.kvs[0].value.p, r.kvs[0].value.n))
				ra->failures++;
		ra->reads++;
		ef_arena_reset(a);
	}
	ef_arena_free(a);
	return NULL;
}

static void write_round(store *s, int i)
{
	char v[16];
	int j;

	snprintf(v, sizeof(v), "v%d", i);
	CHECK_EQ(store_begin(s), 0);
	for (j = 0; j < 5; j++) {
		char k[8];
		ef_msg m, r;

		snprintf(k, sizeof(k), "k%d", j);
		memset(&m, 0, sizeof(m));
		m.type = EF_MSG_PUT;
		m.u.put.key = B(k);
		m.u.put.value = B(v);
		store_apply(s, i, &m, &r, A, NULL);
	}
	CHECK_EQ(store_commit(s, (uint64_t)i + 1), 0);
}

/* Readers on other threads while the writer commits and while a snapshot
 * is installed under them. */
TEST(concurrent_readers)
{
	store *s = fresh();
	pthread_t th[4];
	struct reader_arg ra[4];
	volatile int stop = 0;
	char snap[300];
	int i, fd, all;
	time_t deadline;

	for (i = 0; i < 4; i++) {
		ra[i] = (struct reader_arg){s, 0, 0, &stop};
		pthread_create(&th[i], NULL, reader, &ra[i]);
	}
	for (i = 0; i < 200; i++)
		write_round(s, i);
	snprintf(snap, sizeof(snap), "%s.snap", DIR_);
	fd = open(snap, O_CREAT | O_TRUNC | O_WRONLY, 0600);
	CHECK(fd >= 0);
	CHECK_EQ(store_snapshot_write(s, fd), 0);
	close(fd);
	CHECK_EQ(store_snapshot_install(s, snap), 0);
	for (; i < 300; i++)
		write_round(s, i);
	/* let every reader get some reads in (generous deadline) */
	deadline = time(NULL) + 30;
	do {
		all = 1;
		for (i = 0; i < 4; i++)
			all &= ra[i].reads > 10;
		if (!all)
			usleep(1000);
	} while (!all && time(NULL) < deadline);
	stop = 1;
	for (i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		CHECK_EQ(ra[i].failures, 0);
		CHECK(ra[i].reads > 10);
	}
	CHECK_EQ(store_revision(s), 1501); /* 1 (empty) + 300 rounds of 5 puts */
	unlink(snap);
	done(s);
}

/* A range at the revision the txn itself creates works only after a write. */
TEST(txn_future_range)
{
	store *s = fresh();
	ef_op ops[2];
	ef_msg m, r;

	put(s, "a", "1"); /* 2 */
	memset(ops, 0, sizeof(ops));
	ops[0].type = EF_OP_PUT;
	ops[0].u.put.key = B("b");
	ops[0].u.put.value = B("2");
	ops[1].type = EF_OP_RANGE;
	ops[1].u.range.key = B("a");
	ops[1].u.range.range_end = B("z");
	ops[1].u.range.revision = 3;
	memset(&m, 0, sizeof(m));
	m.type = EF_MSG_TXN;
	m.u.txn.success = ops;
	m.u.txn.n_success = 2;
	r = apply(s, &m);
	CHECK_EQ(err_of(&r), 0);
	CHECK_EQ(r.hdr.revision, 3);
	if (r.type == EF_MSG_TXN_RESP && r.u.txn_resp.n_responses == 2)
		CHECK_EQ(r.u.txn_resp.responses[1].u.range.count, 2);
	/* range first: revision 4 does not exist yet */
	ops[0] = ops[1];
	ops[0].u.range.revision = 4;
	ops[1].type = EF_OP_PUT;
	memset(&ops[1].u, 0, sizeof(ops[1].u));
	ops[1].u.put.key = B("c");
	r = apply(s, &m);
	CHECK_EQ(err_of(&r), EF_E_FUTURE_REV);
	CHECK_EQ(store_revision(s), 3);
	CHECK_EQ(get_at(s, "c", 0, NULL), 0);
	/* a delete that deletes nothing creates no revision to read ... */
	ops[0].type = EF_OP_DELETE;
	memset(&ops[0].u, 0, sizeof(ops[0].u));
	ops[0].u.del.key = B("nothing");
	ops[1].type = EF_OP_RANGE;
	memset(&ops[1].u, 0, sizeof(ops[1].u));
	ops[1].u.range.key = B("a");
	ops[1].u.range.revision = 4;
	r = apply(s, &m);
	CHECK_EQ(err_of(&r), EF_E_FUTURE_REV);
	/* ... one that deletes does */
	ops[0].u.del.key = B("b");
	r = apply(s, &m);
	CHECK_EQ(err_of(&r), 0);
	CHECK_EQ(r.hdr.revision, 4);
	/* ignore_value on a missing key after a put: nothing of the txn stays */
	ops[0].type = EF_OP_PUT;
	memset(&ops[0].u, 0, sizeof(ops[0].u));
	ops[0].u.put.key = B("x");
	ops[0].u.put.value = B("x");
	ops[1].type = EF_OP_PUT;
	memset(&ops[1].u, 0, sizeof(ops[1].u));
	ops[1].u.put.key = B("y");
	ops[1].u.put.ignore_value = 1;
	r = apply(s, &m);
	CHECK_EQ(err_of(&r), EF_E_NOT_FOUND);
	CHECK_EQ(store_revision(s), 4);
	CHECK_EQ(get_at(s, "x", 0, NULL), 0);
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
	RUN(persist_reopen);
	RUN(snapshot_round_trip);
	RUN(binary_keys_values);
	RUN(large_values_compressed);
	RUN(no_space);
	RUN(model_random);
	RUN(concurrent_readers);
	RUN(txn_future_range);
	ef_arena_free(A);
	TEST_EXIT();
}
