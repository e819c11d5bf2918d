/*
 * store_fixture.h - what test_store.c and test_store_history.c share: a
 * store in a temp dir, one-line put/delete/range/compare helpers.  Each test
 * file uses some of them.
 */
#pragma GCC diagnostic ignored "-Wunused-function"

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
