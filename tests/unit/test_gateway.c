/*
 * test_gateway.c - the HTTP/JSON gateway: JSON <-> ef_msg translation
 * against bytes captured from a real etcd 3.4, and the HTTP server itself
 * in-process on a loopback port with a fake node (this file defines the
 * node_* functions the gateway calls, so no Raft member is needed).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../server/gateway.h"
#include "../../common/metrics.h"
#include "test.h"

/* ------------------------------------------------------------------ */
/* Fake node: one key, a counter revision, watch streams on demand.     */

struct node {
	int dummy;
};
static struct node fake;
static uint8_t fkey[64], fval[64];
static uint32_t fkey_n, fval_n;
static int64_t frev = 1;
static pthread_mutex_t fmu = PTHREAD_MUTEX_INITIALIZER;

struct node_wstream {
	node_watch_cb cb;
	void *ud;
};
static node_wstream *last_ws;
static int ws_closed;

static void fill_hdr(ef_msg *m)
{
	m->hdr.cluster_id = 7801232528081817440ull;
	m->hdr.member_id = 13458989633860879742ull;
	m->hdr.revision = frev;
	m->hdr.raft_term = 2;
}

int node_call(node *n, const ef_msg *req, ef_msg *resp, ef_arena *a)
{
	memset(resp, 0, sizeof(*resp));
	pthread_mutex_lock(&fmu);
	resp->type = req->type | 0x80;
	switch (req->type) {
	case EF_MSG_PUT:
		if (!req->u.put.key.n || req->u.put.key.n > sizeof(fkey) ||
		    req->u.put.value.n > sizeof(fval))
			goto invalid;
		memcpy(fkey, req->u.put.key.p, req->u.put.key.n);
		fkey_n = req->u.put.key.n;
		memcpy(fval, req->u.put.value.p, req->u.put.value.n);
		fval_n = req->u.put.value.n;
		frev++;
		break;
	case EF_MSG_RANGE:
		if (!req->u.range.key.n)
			goto invalid;
		if (fkey_n && req->u.range.key.n == fkey_n &&
		    memcmp(req->u.range.key.p, fkey, fkey_n) == 0) {
			ef_kv *kv = ef_arena_alloc(a, sizeof(*kv));

			kv->key.p = ef_arena_dup(a, fkey, fkey_n);
			kv->key.n = fkey_n;
			kv->value.p = ef_arena_dup(a, fval, fval_n);
			kv->value.n = fval_n;
			kv->create_revision = kv->mod_revision = frev;
			kv->version = 1;
			resp->u.range_resp.kvs = kv;
			resp->u.range_resp.n_kvs = 1;
			resp->u.range_resp.count = 1;
		}
		break;
	case EF_MSG_LEASE_KEEPALIVE:
		pthread_mutex_unlock(&fmu);
		resp->type = EF_MSG_ERROR;
		return EF_E_LEASE_NOT_FOUND;
	default:
		break;
	}
	fill_hdr(resp);
	pthread_mutex_unlock(&fmu);
	return 0;
invalid:
	pthread_mutex_unlock(&fmu);
	resp->type = EF_MSG_ERROR;
	resp->u.error.code = EF_E_EMPTY_KEY;
	resp->u.error.message = ef_str(ef_strerror(EF_E_EMPTY_KEY));
	return EF_E_EMPTY_KEY;
}

int node_wstream_open(node *n, node_watch_cb cb, void *ud, node_wstream **out)
{
	node_wstream *w = calloc(1, sizeof(*w));

	w->cb = cb;
	w->ud = ud;
	*out = w;
	return 0;
}

int node_wstream_request(node_wstream *w, const ef_msg *req)
{
	ef_msg m;

	if (req->type != EF_MSG_WATCH_CREATE)
		return EF_E_INVALID;
	memset(&m, 0, sizeof(m));
	m.type = EF_MSG_WATCH_RESP;
	m.id = req->id;
	fill_hdr(&m);
	m.u.watch_resp.created = 1;
	w->cb(w->ud, &m);
	__atomic_store_n(&last_ws, w, __ATOMIC_RELEASE);
	return 0;
}

void node_wstream_close(node_wstream *w)
{
	__atomic_store_n(&last_ws, NULL, __ATOMIC_RELEASE);
	__atomic_store_n(&ws_closed, 1, __ATOMIC_RELEASE);
	free(w);
}

void node_get_status(node *n, node_status *st)
{
	memset(st, 0, sizeof(*st));
	st->cluster_id = 1;
	st->member_id = 2;
	st->has_leader = 1;
	st->revision = frev;
	st->term = 2;
}

/* ------------------------------------------------------------------ */
/* Translation                                                          */

static int decode(int method, const char *json, ef_arena *a, ef_msg *m, char *err)
{
	return gw_decode_request(method, json, strlen(json), a, m, err, 256);
}

static char *encode(int method, const ef_msg *m)
{
	ef_wbuf b;
	char *s;

	ef_wbuf_init(&b);
	gw_encode_response(method, m, &b);
	s = strndup((char *)b.p, b.len);
	ef_wbuf_free(&b);
	return s;
}

TEST(decode_range_all_fields)
{
	ef_arena *a = ef_arena_new();
	ef_msg m;
	char err[256];

	CHECK_EQ(decode(GW_RANGE,
			"{\"key\":\"Zm9v\",\"range_end\":\"AA==\",\"limit\":\"2\",\"revision\":7,"
			"\"sort_order\":\"DESCEND\",\"sort_target\":2,\"serializable\":true,"
			"\"keys_only\":false,\"count_only\":true,\"min_mod_revision\":\"3\","
			"\"unknown\":[1,2]}",
			a, &m, err),
		 0);
	CHECK_EQ(m.type, EF_MSG_RANGE);
	CHECK_MEM(m.u.range.key.p, m.u.range.key.n, "foo");
	CHECK_EQ(m.u.range.range_end.n, 1);
	CHECK_EQ(m.u.range.range_end.p[0], 0);
	CHECK_EQ(m.u.range.limit, 2);
	CHECK_EQ(m.u.range.revision, 7);
	CHECK_EQ(m.u.range.sort_order, EF_SORT_DESCEND);
	CHECK_EQ(m.u.range.sort_target, EF_SORT_CREATE);
	CHECK_EQ(m.u.range.serializable, 1);
	CHECK_EQ(m.u.range.keys_only, 0);
	CHECK_EQ(m.u.range.count_only, 1);
	CHECK_EQ(m.u.range.min_mod_revision, 3);
	/* Empty body = empty request, as etcd. */
	CHECK_EQ(decode(GW_RANGE, "", a, &m, err), 0);
	CHECK_EQ(m.u.range.key.n, 0);
	/* Unpadded base64 is accepted too. */
	CHECK_EQ(decode(GW_PUT, "{\"key\":\"YQ\",\"value\":\"YWI\",\"lease\":\"-5\"}", a, &m, err),
		 0);
	CHECK_MEM(m.u.put.key.p, m.u.put.key.n, "a");
	CHECK_MEM(m.u.put.value.p, m.u.put.value.n, "ab");
	CHECK_EQ(m.u.put.lease, -5);
	ef_arena_free(a);
}

TEST(decode_rejects_bad_input)
{
	ef_arena *a = ef_arena_new();
	ef_msg m;
	char err[256];

	CHECK_EQ(decode(GW_RANGE, "{\"key\":\"Zm9v!\"}", a, &m, err), EF_E_INVALID);
	CHECK(strcmp(err, "illegal base64 data at input byte 4") == 0);
	CHECK_EQ(decode(GW_RANGE, "{\"key\":5}", a, &m, err), EF_E_INVALID);
	CHECK(strstr(err, "cannot unmarshal number") != NULL);
	CHECK_EQ(decode(GW_RANGE, "{\"key\":\"Zm9v\",\"sort_order\":\"BOGUS\"}", a, &m, err),
		 EF_E_INVALID);
	CHECK(strcmp(err, "unknown value \"BOGUS\" for enum etcdserverpb.RangeRequest_SortOrder") ==
	      0);
	CHECK_EQ(decode(GW_RANGE, "{\"key\":\"Zm9v\",\"sort_order\":9}", a, &m, err), EF_E_INVALID);
	CHECK_EQ(decode(GW_RANGE, "{\"limit\":\"x\"}", a, &m, err), EF_E_INVALID);
	CHECK_EQ(decode(GW_RANGE, "{\"limit\":1.5}", a, &m, err), EF_E_INVALID);
	CHECK_EQ(decode(GW_RANGE, "{\"serializable\":\"yes\"}", a, &m, err), EF_E_INVALID);
	CHECK_EQ(decode(GW_RANGE, "{bad", a, &m, err), EF_E_INVALID);
	CHECK(err[0] != 0);
	CHECK_EQ(decode(GW_RANGE, "[]", a, &m, err), EF_E_INVALID);
	CHECK(strstr(err, "cannot unmarshal array") != NULL);
	CHECK_EQ(decode(GW_PUT, "{\"key\":\"=\"}", a, &m, err), EF_E_INVALID);
	CHECK_EQ(decode(GW_PUT, "{\"key\":\"YQ==YQ==\"}", a, &m, err), EF_E_INVALID);
	CHECK_EQ(decode(GW_TXN, "{\"compare\":{}}", a, &m, err), EF_E_INVALID);
	CHECK_EQ(decode(GW_TXN, "{\"success\":[{}]}", a, &m, err), EF_E_INVALID);
	CHECK_EQ(decode(GW_TXN, "{\"success\":[{\"request_txn\":{}}]}", a, &m, err), EF_E_INVALID);
	CHECK_EQ(decode(GW_RANGE, "{\"key\":\"YQ==\"} trailing", a, &m, err), EF_E_INVALID);
	ef_arena_free(a);
}

TEST(decode_txn)
{
	ef_arena *a = ef_arena_new();
	ef_msg m;
	char err[256];

	CHECK_EQ(decode(GW_TXN,
			"{\"compare\":[{\"key\":\"YQ==\",\"result\":\"EQUAL\",\"target\":\"VALUE\","
			"\"value\":\"MQ==\"},{\"key\":\"Yg==\",\"result\":3,\"target\":\"MOD\","
			"\"mod_revision\":\"9\"}],\"success\":[{\"request_put\":{\"key\":\"Yg==\","
			"\"value\":\"Mg==\"}},{\"request_range\":{\"key\":\"YQ==\"}},"
			"{\"request_delete_range\":{\"key\":\"Yw==\",\"prev_kv\":true}}],"
			"\"failure\":[]}",
			a, &m, err),
		 0);
	CHECK_EQ(m.type, EF_MSG_TXN);
	CHECK_EQ(m.u.txn.n_cmp, 2);
	CHECK_EQ(m.u.txn.cmp[0].target, EF_CMP_VALUE);
	CHECK_MEM(m.u.txn.cmp[0].value.p, m.u.txn.cmp[0].value.n, "1");
	CHECK_EQ(m.u.txn.cmp[1].result, EF_CMP_NOT_EQUAL);
	CHECK_EQ(m.u.txn.cmp[1].target, EF_CMP_MOD);
	CHECK_EQ(m.u.txn.cmp[1].number, 9);
	CHECK_EQ(m.u.txn.n_success, 3);
	CHECK_EQ(m.u.txn.success[0].type, EF_OP_PUT);
	CHECK_MEM(m.u.txn.success[0].u.put.value.p, m.u.txn.success[0].u.put.value.n, "2");
	CHECK_EQ(m.u.txn.success[1].type, EF_OP_RANGE);
	CHECK_EQ(m.u.txn.success[2].type, EF_OP_DELETE);
	CHECK_EQ(m.u.txn.success[2].u.del.prev_kv, 1);
	CHECK_EQ(m.u.txn.n_failure, 0);
	ef_arena_free(a);
}

TEST(decode_lease_and_watch)
{
	ef_arena *a = ef_arena_new();
	ef_msg m;
	char err[256];
	const char *body = "{\"create_request\":{\"key\":\"dw==\",\"prev_kv\":true,"
			   "\"filters\":[\"NODELETE\"],\"start_revision\":\"4\"}}\n"
			   "{\"cancel_request\":{\"watch_id\":\"3\"}} ";
	size_t used;

	CHECK_EQ(decode(GW_LEASE_GRANT, "{\"TTL\":\"30\",\"ID\":1234}", a, &m, err), 0);
	CHECK_EQ(m.type, EF_MSG_LEASE_GRANT);
	CHECK_EQ(m.u.lease.ttl, 30);
	CHECK_EQ(m.u.lease.id, 1234);
	CHECK_EQ(decode(GW_LEASE_TTL, "{\"ID\":\"7\",\"keys\":true}", a, &m, err), 0);
	CHECK_EQ(m.type, EF_MSG_LEASE_TTL);
	CHECK_EQ(m.u.lease.keys, 1);

	CHECK_EQ(gw_decode_watch_request(body, strlen(body), &used, a, &m, err, sizeof(err)), 0);
	CHECK_EQ(m.type, EF_MSG_WATCH_CREATE);
	CHECK_MEM(m.u.watch_create.key.p, m.u.watch_create.key.n, "w");
	CHECK_EQ(m.u.watch_create.prev_kv, 1);
	CHECK_EQ(m.u.watch_create.no_delete, 1);
	CHECK_EQ(m.u.watch_create.no_put, 0);
	CHECK_EQ(m.u.watch_create.start_revision, 4);
	CHECK(used > 0 && body[used] == '{');
	CHECK_EQ(gw_decode_watch_request(body + used, strlen(body) - used, &used, a, &m, err,
					 sizeof(err)),
		 0);
	CHECK_EQ(m.type, EF_MSG_WATCH_CANCEL);
	CHECK_EQ(m.u.watch_cancel.watch_id, 3);
	CHECK_EQ(gw_decode_watch_request("{}", 2, &used, a, &m, err, sizeof(err)), EF_E_INVALID);
	ef_arena_free(a);
}

TEST(encode_matches_etcd)
{
	ef_msg m;
	ef_kv kv, prev;
	ef_op_resp ops[2];
	char *s;

	memset(&m, 0, sizeof(m));
	fill_hdr(&m);
	m.hdr.revision = 3;
	memset(&kv, 0, sizeof(kv));
	kv.key = ef_str("foo");
	kv.value = ef_str("baz");
	kv.create_revision = 2;
	kv.mod_revision = 3;
	kv.version = 2;
	m.u.range_resp.kvs = &kv;
	m.u.range_resp.n_kvs = 1;
	m.u.range_resp.count = 1;
	s = encode(GW_RANGE, &m);
	CHECK(strcmp(s, "{\"header\":{\"cluster_id\":\"7801232528081817440\",\"member_id\":"
			"\"13458989633860879742\",\"revision\":\"3\",\"raft_term\":\"2\"},\"kvs\":"
			"[{\"key\":\"Zm9v\",\"create_revision\":\"2\",\"mod_revision\":\"3\","
			"\"version\":\"2\",\"value\":\"YmF6\"}],\"count\":\"1\"}") == 0);
	free(s);

	/* Empty range: no kvs, no count. */
	m.u.range_resp.n_kvs = 0;
	m.u.range_resp.count = 0;
	s = encode(GW_RANGE, &m);
	CHECK(strcmp(s, "{\"header\":{\"cluster_id\":\"7801232528081817440\",\"member_id\":"
			"\"13458989633860879742\",\"revision\":\"3\",\"raft_term\":\"2\"}}") == 0);
	free(s);

	/* Txn: inner headers carry only the revision. */
	memset(&m.u, 0, sizeof(m.u));
	m.hdr.revision = 6;
	memset(ops, 0, sizeof(ops));
	ops[0].type = EF_OP_PUT;
	ops[1].type = EF_OP_RANGE;
	ops[1].u.range.kvs = &kv;
	ops[1].u.range.n_kvs = 1;
	ops[1].u.range.count = 1;
	m.u.txn_resp.succeeded = 1;
	m.u.txn_resp.responses = ops;
	m.u.txn_resp.n_responses = 2;
	s = encode(GW_TXN, &m);
	CHECK(strstr(s,
		     "\"succeeded\":true,\"responses\":[{\"response_put\":{\"header\":{"
		     "\"revision\":\"6\"}}},{\"response_range\":{\"header\":{\"revision\":\"6\"},"
		     "\"kvs\":[{\"key\":\"Zm9v\",") != NULL);
	free(s);

	/* Lease keepalive is wrapped in "result"; TTL names as etcd. */
	memset(&m.u, 0, sizeof(m.u));
	m.u.lease_resp.id = 1234;
	m.u.lease_resp.ttl = 30;
	s = encode(GW_LEASE_KEEPALIVE, &m);
	CHECK(strncmp(s, "{\"result\":{\"header\":{", 21) == 0);
	CHECK(strstr(s, "},\"ID\":\"1234\",\"TTL\":\"30\"}}") != NULL);
	free(s);

	/* Put with prev_kv. */
	memset(&m.u, 0, sizeof(m.u));
	memset(&prev, 0, sizeof(prev));
	prev.key = ef_str("foo");
	prev.value = ef_str("bar");
	prev.create_revision = prev.mod_revision = 2;
	prev.version = 1;
	m.u.put_resp.prev_kv = &prev;
	s = encode(GW_PUT, &m);
	CHECK(strstr(s,
		     "},\"prev_kv\":{\"key\":\"Zm9v\",\"create_revision\":\"2\",\"mod_revision\":"
		     "\"2\",\"version\":\"1\",\"value\":\"YmFy\"}}") != NULL);
	free(s);
}

TEST(encode_watch_and_errors)
{
	ef_msg m;
	ef_event ev;
	ef_kv prev;
	ef_wbuf b;
	int st;

	memset(&m, 0, sizeof(m));
	fill_hdr(&m);
	m.hdr.revision = 11;
	memset(&ev, 0, sizeof(ev));
	memset(&prev, 0, sizeof(prev));
	ev.type = EF_EVENT_DELETE;
	ev.kv.key = ef_str("w");
	ev.kv.mod_revision = 11;
	prev.key = ef_str("w");
	prev.value = ef_str("2");
	prev.create_revision = 9;
	prev.mod_revision = 10;
	prev.version = 2;
	ev.prev_kv = &prev;
	m.u.watch_resp.events = &ev;
	m.u.watch_resp.n_events = 1;
	ef_wbuf_init(&b);
	gw_encode_watch(&m, &b);
	ef_wbuf_u8(&b, 0);
	CHECK(strcmp((char *)b.p,
		     "{\"result\":{\"header\":{\"cluster_id\":\"7801232528081817440\",\"member_id\":"
		     "\"13458989633860879742\",\"revision\":\"11\",\"raft_term\":\"2\"},\"events\":"
		     "[{\"type\":\"DELETE\",\"kv\":{\"key\":\"dw==\",\"mod_revision\":\"11\"},"
		     "\"prev_kv\":{\"key\":\"dw==\",\"create_revision\":\"9\",\"mod_revision\":"
		     "\"10\",\"version\":\"2\",\"value\":\"Mg==\"}}]}}") == 0);
	ef_wbuf_reset(&b);
	st = gw_encode_error(ef_grpc_code(EF_E_LEASE_NOT_FOUND), ef_strerror(EF_E_LEASE_NOT_FOUND),
			     &b);
	ef_wbuf_u8(&b, 0);
	CHECK_EQ(st, 404);
	CHECK(strcmp((char *)b.p,
		     "{\"error\":\"etcdserver: requested lease not found\",\"message\":"
		     "\"etcdserver: requested lease not found\",\"code\":5}") == 0);
	ef_wbuf_reset(&b);
	gw_encode_error(3, "a\"b\\c\n\x01", &b);
	ef_wbuf_u8(&b, 0);
	CHECK(strstr((char *)b.p, "\"a\\\"b\\\\c\\n\\u0001\"") != NULL);
	ef_wbuf_free(&b);
	CHECK_EQ(gw_http_status(3), 400);
	CHECK_EQ(gw_http_status(11), 400);
	CHECK_EQ(gw_http_status(14), 503);
	CHECK_EQ(gw_http_status(8), 429);
	CHECK_EQ(gw_http_status(9), 412);
	CHECK_EQ(gw_http_status(13), 500);
	CHECK_EQ(gw_route("/v3/kv/put"), GW_PUT);
	CHECK_EQ(gw_route("/v3beta/kv/lease/timetolive"), GW_LEASE_TTL);
	CHECK_EQ(gw_route("/v3/kv/nope"), -1);
	CHECK_EQ(gw_route("/v2/keys"), -1);
}

TEST(metrics_render_format)
{
	metric *c = metrics_counter("test_gw_total", "A test counter.", "kind=\"a\"");
	metric *c2 = metrics_counter("test_gw_total", "A test counter.", "kind=\"b\"");
	metric *h = metrics_histogram("test_gw_seconds", "A test histogram.", "", 0.001, 2, 3);
	ef_wbuf b;
	char *s;

	CHECK(c == metrics_counter("test_gw_total", "again", "kind=\"a\""));
	metrics_inc(c);
	metrics_add(c2, 5);
	metrics_observe(h, 0.0005);
	metrics_observe(h, 0.003);
	metrics_observe(h, 10);
	ef_wbuf_init(&b);
	metrics_render(&b);
	ef_wbuf_u8(&b, 0);
	s = (char *)b.p;
	CHECK(strstr(s, "# HELP test_gw_total A test counter.\n# TYPE test_gw_total counter\n"
			"test_gw_total{kind=\"a\"} 1\ntest_gw_total{kind=\"b\"} 5\n") != NULL);
	CHECK(strstr(s, "# TYPE test_gw_seconds histogram\n"
			"test_gw_seconds_bucket{le=\"0.001\"} 1\n"
			"test_gw_seconds_bucket{le=\"0.002\"} 1\n"
			"test_gw_seconds_bucket{le=\"0.004\"} 2\n"
			"test_gw_seconds_bucket{le=\"+Inf\"} 3\n"
			"test_gw_seconds_sum 10.0035\n"
			"test_gw_seconds_count 3\n") != NULL);
	ef_wbuf_free(&b);
}

/* ------------------------------------------------------------------ */
/* HTTP server, in-process                                              */

static int port;

static int dial(void)
{
	struct sockaddr_in sa;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Read until the peer closes, `until` appears, or 5 s pass. */
static size_t read_some(int fd, char *out, size_t cap, const char *until)
{
	size_t n = 0;

	out[0] = 0;
	while (n + 1 < cap) {
		struct pollfd p = {fd, POLLIN, 0};
		ssize_t k;

		if (poll(&p, 1, 30000) <= 0)
			break;
		k = recv(fd, out + n, cap - 1 - n, 0);
		if (k <= 0)
			break;
		n += (size_t)k;
		out[n] = 0;
		if (until && strstr(out, until))
			break;
	}
	return n;
}

/* One request on a new connection (Connection: close); response in out. */
static void roundtrip(const char *method, const char *path, const char *body, char *out, size_t cap)
{
	char req[4096];
	int fd = dial();

	snprintf(req, sizeof(req),
		 "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %zu\r\n\r\n%s",
		 method, path, strlen(body), body);
	out[0] = 0;
	if (fd < 0)
		return;
	(void)!write(fd, req, strlen(req));
	read_some(fd, out, cap, NULL);
	close(fd);
}

TEST(http_put_range_errors)
{
	static char out[256 * 1024];

	roundtrip("POST", "/v3/kv/put", "{\"key\":\"Zm9v\",\"value\":\"YmFy\"}", out, sizeof(out));
	CHECK(strncmp(out, "HTTP/1.1 200 OK\r\n", 17) == 0);
	CHECK(strstr(out, "\r\n\r\n{\"header\":{\"cluster_id\":\"7801232528081817440\"") != NULL);
	roundtrip("POST", "/v3/kv/range", "{\"key\":\"Zm9v\"}", out, sizeof(out));
	CHECK(strstr(out, "\"kvs\":[{\"key\":\"Zm9v\",") != NULL);
	CHECK(strstr(out, "\"value\":\"YmFy\"}],\"count\":\"1\"}") != NULL);
	roundtrip("POST", "/v3/kv/range", "{\"key\":\"Zm9v!\"}", out, sizeof(out));
	CHECK(strncmp(out, "HTTP/1.1 400 ", 13) == 0);
	CHECK(strstr(out, "{\"error\":\"illegal base64 data at input byte 4\"") != NULL);
	roundtrip("POST", "/v3/kv/put", "{}", out, sizeof(out));
	CHECK(strncmp(out, "HTTP/1.1 400 ", 13) == 0);
	CHECK(strstr(out, "\"etcdserver: key is not provided\",\"code\":3}") != NULL);
	roundtrip("POST", "/v3/kv/nope", "{}", out, sizeof(out));
	CHECK(strncmp(out, "HTTP/1.1 404 ", 13) == 0);
	CHECK(strstr(out, "\"code\":5}") != NULL);
	roundtrip("GET", "/v3/kv/range", "", out, sizeof(out));
	CHECK(strncmp(out, "HTTP/1.1 405 ", 13) == 0);
	roundtrip("POST", "/v3/lease/keepalive", "{\"ID\":\"999\"}", out, sizeof(out));
	CHECK(strncmp(out, "HTTP/1.1 200 ", 13) == 0);
	CHECK(strstr(out, "{\"result\":{\"header\":") != NULL);
	CHECK(strstr(out, "\"ID\":\"999\"}}") != NULL);
	roundtrip("GET", "/health", "", out, sizeof(out));
	CHECK(strstr(out, "\r\n\r\n{\"health\":\"true\"}") != NULL);
	roundtrip("GET", "/readyz", "", out, sizeof(out));
	CHECK(strncmp(out, "HTTP/1.1 200 ", 13) == 0);
	roundtrip("GET", "/metrics", "", out, sizeof(out));
	CHECK(strstr(out, "etcfs_http_requests_total{method=\"put\",code=\"200\"} 1") != NULL);
	CHECK(strstr(out, "etcfs_http_request_duration_seconds_bucket{method=\"range\",le=") !=
	      NULL);
}

TEST(http_keepalive_pipelining_and_limits)
{
	char out[16384], *big;
	const char *two = "POST /v3/kv/range HTTP/1.1\r\nHost: x\r\nContent-Length: 14\r\n\r\n"
			  "{\"key\":\"Zm9v\"}"
			  "POST /v3/kv/range HTTP/1.1\r\nHost: x\r\nContent-Length: 14\r\n\r\n"
			  "{\"key\":\"Zm9v\"}";
	int fd = dial(), n = 0;
	size_t len;
	char *p;

	(void)!write(fd, two, strlen(two));
	read_some(fd, out, sizeof(out), "\"count\":\"1\"}HTTP");
	len = strlen(out);
	while (len < sizeof(out) - 1 && n < 50) {
		/* wait for the second response */
		p = strstr(out, "\"count\":\"1\"}");
		if (p && strstr(p + 1, "\"count\":\"1\"}"))
			break;
		len += read_some(fd, out + len, sizeof(out) - len, "}");
		n++;
	}
	p = strstr(out, "\"count\":\"1\"}");
	CHECK(p && strstr(p + 1, "\"count\":\"1\"}"));
	close(fd);

	/* Oversize body: 413 without reading it. */
	fd = dial();
	big = "POST /v3/kv/put HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n{";
	(void)!write(fd, big, strlen(big));
	read_some(fd, out, sizeof(out), NULL);
	CHECK(strncmp(out, "HTTP/1.1 413 ", 13) == 0);
	CHECK(strstr(out, "\"etcdserver: request is too large\"") != NULL);
	close(fd);

	/* Chunked request body: 411. */
	fd = dial();
	big = "POST /v3/kv/put HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n";
	(void)!write(fd, big, strlen(big));
	read_some(fd, out, sizeof(out), NULL);
	CHECK(strncmp(out, "HTTP/1.1 411 ", 13) == 0);
	close(fd);

	/* Garbage request line. */
	fd = dial();
	(void)!write(fd, "garbage\r\n\r\n", 11);
	read_some(fd, out, sizeof(out), NULL);
	CHECK(strncmp(out, "HTTP/1.1 400 ", 13) == 0);
	close(fd);

	/* Deeply nested JSON does not crash the connection thread. */
	big = malloc(300000);
	memset(big, '[', 200000);
	big[200000] = 0;
	fd = dial();
	snprintf(out, sizeof(out),
		 "POST /v3/kv/range HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n",
		 strlen(big));
	(void)!write(fd, out, strlen(out));
	(void)!write(fd, big, strlen(big));
	read_some(fd, out, sizeof(out), NULL);
	CHECK(strncmp(out, "HTTP/1.1 400 ", 13) == 0);
	CHECK(strstr(out, "maximum parsing depth") != NULL);
	close(fd);
	free(big);
}

/* Poll /metrics until the gateway counts n open connections (30 s at most:
 * under load the accept thread can be slow to see a connect or a close). */
static int wait_http_connections(int n)
{
	char want[64];

	snprintf(want, sizeof want, "\netcfs_http_connections %d\n", n);
	for (int i = 0; i < 3000; i++) {
		ef_wbuf b;
		int seen;

		ef_wbuf_init(&b);
		metrics_render(&b);
		ef_wbuf_u8(&b, 0);
		seen = strstr((char *)b.p, want) != NULL;
		ef_wbuf_free(&b);
		if (seen)
			return 1;
		usleep(10000);
	}
	return 0;
}

TEST(http_connection_cap)
{
	int fds[3], fd;
	char out[1024];

	/* The server was started with a cap of 4: hold 4, the 5th is refused. */
	for (int i = 0; i < 3; i++)
		fds[i] = dial();
	fd = dial();
	CHECK(wait_http_connections(4));
	{
		int extra = dial();

		read_some(extra, out, sizeof(out), NULL);
		CHECK(strncmp(out, "HTTP/1.1 503 ", 13) == 0);
		CHECK(strstr(out, "too many connections") != NULL);
		{
			/* Content-Length matches the body. */
			char *cl = strstr(out, "Content-Length: "), *bd = strstr(out, "\r\n\r\n");

			CHECK(cl && bd && strtoul(cl + 16, NULL, 10) == strlen(bd + 4));
		}
		close(extra);
	}
	for (int i = 0; i < 3; i++)
		close(fds[i]);
	close(fd);
	/* Once the four are gone a new connection is served again. */
	CHECK(wait_http_connections(0));
	roundtrip("GET", "/livez", "", out, sizeof(out));
	CHECK(strncmp(out, "HTTP/1.1 200 ", 13) == 0);
}

TEST(http_watch_stream)
{
	const char *req = "POST /v3/watch HTTP/1.1\r\nHost: x\r\nContent-Length: 36\r\n\r\n"
			  "{\"create_request\":{\"key\":\"dw==\"}}\n  ";
	char out[8192];
	int fd = dial();
	node_wstream *w = NULL;
	ef_msg m;
	ef_event ev;

	__atomic_store_n(&ws_closed, 0, __ATOMIC_RELEASE);
	(void)!write(fd, req, strlen(req));
	read_some(fd, out, sizeof(out), "\"created\":true}}\n\r\n");
	CHECK(strstr(out, "Transfer-Encoding: chunked\r\n") != NULL);
	{
		/* One JSON line per chunk: the chunk size is the line's length. */
		char *body = strstr(out, "\r\n\r\n"), *json, *nl;

		CHECK(body != NULL);
		if (body) {
			unsigned long sz = strtoul(body + 4, &json, 16);

			CHECK(strncmp(json, "\r\n{\"result\":{\"header\":{\"cluster_id\":", 36) ==
			      0);
			nl = strchr(json + 2, '\n');
			CHECK(nl && (unsigned long)(nl + 1 - (json + 2)) == sz);
		}
	}
	for (int i = 0; i < 100 && !(w = __atomic_load_n(&last_ws, __ATOMIC_ACQUIRE)); i++)
		usleep(10000);
	CHECK(w != NULL);
	if (w) {
		memset(&m, 0, sizeof(m));
		memset(&ev, 0, sizeof(ev));
		m.type = EF_MSG_WATCH_RESP;
		fill_hdr(&m);
		ev.kv.key = ef_str("w");
		ev.kv.value = ef_str("1");
		ev.kv.mod_revision = 9;
		m.u.watch_resp.events = &ev;
		m.u.watch_resp.n_events = 1;
		CHECK_EQ(w->cb(w->ud, &m), 0);
		read_some(fd, out, sizeof(out), "}}]}}\n\r\n");
		CHECK(strstr(out, "\"events\":[{\"kv\":{\"key\":\"dw==\",\"mod_revision\":\"9\","
				  "\"value\":\"MQ==\"}}]}}\n\r\n") != NULL);
	}
	close(fd);
	/* The stream is closed once the client goes. */
	for (int i = 0; i < 300 && !__atomic_load_n(&ws_closed, __ATOMIC_ACQUIRE); i++)
		usleep(10000);
	CHECK(__atomic_load_n(&ws_closed, __ATOMIC_ACQUIRE));
}

TEST(http_watch_backpressure)
{
	const char *req = "POST /v3/watch HTTP/1.1\r\nHost: x\r\nContent-Length: 33\r\n\r\n"
			  "{\"create_request\":{\"key\":\"dw==\"}}";
	char out[4096];
	int fd = dial(), refused = 0, i;
	node_wstream *w = NULL;
	static uint8_t big[48 * 1024];
	ef_msg m;
	ef_event ev;

	__atomic_store_n(&ws_closed, 0, __ATOMIC_RELEASE);
	(void)!write(fd, req, strlen(req));
	read_some(fd, out, sizeof(out), "\"created\":true}}\n\r\n");
	for (i = 0; i < 100 && !(w = __atomic_load_n(&last_ws, __ATOMIC_ACQUIRE)); i++)
		usleep(10000);
	CHECK(w != NULL);
	if (!w) {
		close(fd);
		return;
	}
	memset(&m, 0, sizeof(m));
	memset(&ev, 0, sizeof(ev));
	m.type = EF_MSG_WATCH_RESP;
	fill_hdr(&m);
	ev.kv.key = ef_str("w");
	ev.kv.value.p = big;
	ev.kv.value.n = sizeof(big);
	m.u.watch_resp.events = &ev;
	m.u.watch_resp.n_events = 1;
	/* The client reads nothing: once the socket buffers and the 16 MiB
	 * queue are full, the callback refuses (the hub would retry). */
	for (i = 0; i < 5000 && !refused; i++)
		refused = w->cb(w->ud, &m) != 0;
	CHECK(refused);
	/* The stream is still open: a refused message is not the end. */
	CHECK(!__atomic_load_n(&ws_closed, __ATOMIC_ACQUIRE));
	close(fd);
	for (i = 0; i < 1000 && !__atomic_load_n(&ws_closed, __ATOMIC_ACQUIRE); i++)
		usleep(10000);
	CHECK(__atomic_load_n(&ws_closed, __ATOMIC_ACQUIRE));
}

int main(void)
{
	char err[256];

	RUN(decode_range_all_fields);
	RUN(decode_rejects_bad_input);
	RUN(decode_txn);
	RUN(decode_lease_and_watch);
	RUN(encode_matches_etcd);
	RUN(encode_watch_and_errors);
	RUN(metrics_render_format);

	gateway_set_limits(0, 4);
	if (gateway_start(&fake, "http://127.0.0.1:0", err, sizeof(err))) {
		printf("FAIL gateway_start: %s\n", err);
		return 1;
	}
	port = gateway_port(0);
	RUN(http_put_range_errors);
	RUN(http_keepalive_pipelining_and_limits);
	RUN(http_connection_cap);
	RUN(http_watch_stream);
	RUN(http_watch_backpressure);
	gateway_stop();
	TEST_EXIT();
}
