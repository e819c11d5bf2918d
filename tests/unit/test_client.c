/*
 * test_client.c - the client library against fake members that misbehave on
 * purpose: failover past a dead endpoint, "outcome unknown" for a write whose
 * connection broke or whose answer never came, retry of reads on another
 * endpoint, retry after "no leader", "not sent" when nothing is reachable,
 * bad endpoint lists.  The fake members speak the real wire format on real
 * loopback sockets.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>

#include "../../proto/client.h"
#include "../../proto/streamio.h"
#include "test.h"

enum mode {
	M_OK,
	M_CLOSE_AFTER_READ,
	M_SILENT,
	M_NOLEADER_ONCE
};

struct fake {
	nng_stream_listener *l;
	int port;
	int mode;
	atomic_int stop;
	atomic_int requests; /* frames read */
	atomic_int noleader_sent;
	pthread_t t;
};

static void answer(nng_stream *s, const ef_msg *req, struct fake *f)
{
	ef_arena *a = ef_arena_new();
	ef_msg r = {.type = (uint8_t)(req->type | 0x80), .id = req->id};
	r.hdr.revision = 42;
	r.hdr.member_id = (uint64_t)f->port;
	if (f->mode == M_NOLEADER_ONCE && atomic_fetch_add(&f->noleader_sent, 1) == 0) {
		r.type = EF_MSG_ERROR;
		r.u.error.code = EF_E_NO_LEADER;
		r.u.error.message = ef_str(ef_strerror(EF_E_NO_LEADER));
	} else if (req->type == EF_MSG_RANGE) {
		ef_kv *kv = ef_arena_alloc(a, sizeof *kv);
		kv->key = req->u.range.key;
		kv->value = ef_str("fake-value");
		kv->mod_revision = 42;
		r.u.range_resp.kvs = kv;
		r.u.range_resp.n_kvs = 1;
		r.u.range_resp.count = 1;
	}
	ef_wbuf b;
	ef_wbuf_init(&b);
	ef_encode(&r, &b);
	ef_stream_io_timeout(s, b.p, b.len, 1, 2000);
	ef_wbuf_free(&b);
	ef_arena_free(a);
}

static void serve_conn(struct fake *f, nng_stream *s)
{
	while (!atomic_load(&f->stop)) {
		uint8_t hdr[EF_WIRE_HDR_LEN];
		int rv = ef_stream_io_timeout(s, hdr, sizeof hdr, 0, 200);
		if (rv == NNG_ETIMEDOUT)
			continue;
		if (rv != 0)
			return;
		ef_frame_hdr h;
		if (ef_decode_header(hdr, sizeof hdr, 1 << 24, &h) != 0)
			return;
		uint8_t *frame = malloc(EF_WIRE_HDR_LEN + h.body_len);
		memcpy(frame, hdr, sizeof hdr);
		if (h.body_len &&
		    ef_stream_io_timeout(s, frame + EF_WIRE_HDR_LEN, h.body_len, 0, 2000) != 0) {
			free(frame);
			return;
		}
		atomic_fetch_add(&f->requests, 1);
		ef_arena *a = ef_arena_new();
		ef_msg req;
		int ok = ef_decode(frame, EF_WIRE_HDR_LEN + h.body_len, 1 << 24, a, &req) == 0;
		if (ok && f->mode == M_CLOSE_AFTER_READ) {
			free(frame);
			ef_arena_free(a);
			return;
		}
		if (ok && f->mode != M_SILENT)
			answer(s, &req, f);
		free(frame);
		ef_arena_free(a);
	}
}

static void *fake_main(void *arg)
{
	struct fake *f = arg;
	nng_aio *aio;
	nng_aio_alloc(&aio, NULL, NULL);
	while (!atomic_load(&f->stop)) {
		nng_aio_set_timeout(aio, 100);
		nng_stream_listener_accept(f->l, aio);
		nng_aio_wait(aio);
		if (nng_aio_result(aio) != 0)
			continue;
		nng_stream *s = nng_aio_get_output(aio, 0);
		serve_conn(f, s);
		nng_stream_close(s);
		nng_stream_free(s);
	}
	nng_aio_free(aio);
	return NULL;
}

static struct fake *fake_start(int mode)
{
	struct fake *f = calloc(1, sizeof *f);
	f->mode = mode;
	if (nng_stream_listener_alloc(&f->l, "tcp://127.0.0.1:0") != 0 ||
	    nng_stream_listener_listen(f->l) != 0) {
		free(f);
		return NULL;
	}
	nng_stream_listener_get_int(f->l, NNG_OPT_TCP_BOUND_PORT, &f->port);
	pthread_create(&f->t, NULL, fake_main, f);
	return f;
}

static void fake_stop(struct fake *f)
{
	atomic_store(&f->stop, 1);
	pthread_join(f->t, NULL);
	nng_stream_listener_close(f->l);
	nng_stream_listener_free(f->l);
	free(f);
}

/* A port nothing listens on: bind one and close it again. */
static int dead_port(void)
{
	struct fake *f = fake_start(M_OK);
	int p = f->port;
	fake_stop(f);
	return p;
}

static efc_client *open_eps(const char *eps, int cmd_ms)
{
	efc_opts o = {.endpoints = eps, .dial_timeout_ms = 500, .command_timeout_ms = cmd_ms};
	efc_client *c = NULL;
	if (efc_open(&o, &c, NULL, 0) != 0)
		return NULL;
	return c;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

TEST(failover_past_dead_endpoint)
{
	struct fake *ok = fake_start(M_OK);
	char eps[200];
	snprintf(eps, sizeof eps, "tcp://127.0.0.1:%d,127.0.0.1:%d", dead_port(), ok->port);
	efc_client *c = open_eps(eps, 3000);
	CHECK(c != NULL);
	int64_t rev = 0;
	CHECK_EQ(efc_put(c, "k", 1, "v", 1, 0, &rev), 0);
	CHECK_EQ(rev, 42);
	CHECK(efc_failovers(c) >= 1);
	CHECK_EQ(atomic_load(&ok->requests), 1);
	efc_close(c);
	fake_stop(ok);
}

TEST(write_on_broken_connection_is_outcome_unknown)
{
	struct fake *bad = fake_start(M_CLOSE_AFTER_READ);
	struct fake *ok = fake_start(M_OK);
	char eps[200];
	snprintf(eps, sizeof eps, "tcp://127.0.0.1:%d,tcp://127.0.0.1:%d", bad->port, ok->port);
	efc_client *c = open_eps(eps, 3000);
	int rv = efc_put(c, "k", 1, "v", 1, 0, NULL);
	CHECK_EQ(rv, EF_E_OUTCOME_UNKNOWN);
	CHECK(strstr(efc_errmsg(), "outcome unknown") != NULL);
	/* the put reached the member once and was NOT repeated elsewhere */
	CHECK_EQ(atomic_load(&bad->requests), 1);
	CHECK_EQ(atomic_load(&ok->requests), 0);
	efc_close(c);
	fake_stop(bad);
	fake_stop(ok);
}

TEST(read_on_broken_connection_retries_elsewhere)
{
	struct fake *bad = fake_start(M_CLOSE_AFTER_READ);
	struct fake *ok = fake_start(M_OK);
	char eps[200];
	snprintf(eps, sizeof eps, "tcp://127.0.0.1:%d,tcp://127.0.0.1:%d", bad->port, ok->port);
	efc_client *c = open_eps(eps, 3000);
	uint8_t *v = NULL;
	uint32_t vl = 0;
	CHECK_EQ(efc_get(c, "k", 1, 0, &v, &vl, NULL), 0);
	CHECK(v && vl == 10 && memcmp(v, "fake-value", 10) == 0);
	free(v);
	CHECK_EQ(atomic_load(&bad->requests), 1);
	CHECK_EQ(atomic_load(&ok->requests), 1);
	efc_close(c);
	fake_stop(bad);
	fake_stop(ok);
}

TEST(silent_member_write_times_out_unknown)
{
	struct fake *f = fake_start(M_SILENT);
	char eps[100];
	snprintf(eps, sizeof eps, "tcp://127.0.0.1:%d", f->port);
	efc_client *c = open_eps(eps, 600);
	int64_t t0 = now_ms();
	CHECK_EQ(efc_put(c, "k", 1, "v", 1, 0, NULL), EF_E_OUTCOME_UNKNOWN);
	int64_t took = now_ms() - t0;
	CHECK(took >= 550 && took < 3000); /* the command timeout bounds it */
	efc_close(c);
	fake_stop(f);
}

TEST(nothing_reachable_is_not_sent)
{
	char eps[100];
	snprintf(eps, sizeof eps, "tcp://127.0.0.1:%d,tcp://127.0.0.1:%d", dead_port(),
		 dead_port());
	efc_client *c = open_eps(eps, 800);
	int64_t t0 = now_ms();
	CHECK_EQ(efc_put(c, "k", 1, "v", 1, 0, NULL), EF_E_UNAVAILABLE);
	CHECK(now_ms() - t0 < 4000);
	CHECK(strstr(efc_errmsg(), "not sent") != NULL);
	efc_close(c);
}

TEST(no_leader_is_retried)
{
	struct fake *f = fake_start(M_NOLEADER_ONCE);
	char eps[100];
	snprintf(eps, sizeof eps, "tcp://127.0.0.1:%d", f->port);
	efc_client *c = open_eps(eps, 3000);
	int64_t rev = 0;
	CHECK_EQ(efc_put(c, "k", 1, "v", 1, 0, &rev), 0);
	CHECK_EQ(rev, 42);
	CHECK_EQ(atomic_load(&f->requests), 2);
	efc_close(c);
	fake_stop(f);
}

TEST(bad_endpoints_rejected)
{
	efc_client *c = NULL;
	char err[200] = "";
	efc_opts o = {.endpoints = "no-port-here"};
	CHECK_EQ(efc_open(&o, &c, err, sizeof err), EF_E_INVALID);
	CHECK(strstr(err, "no-port-here") != NULL);
	efc_opts o2 = {.endpoints = ","};
	CHECK_EQ(efc_open(&o2, &c, err, sizeof err), EF_E_INVALID);
}

static efc_client *shared_client;
static atomic_int thread_errors;

static void *hammer(void *arg)
{
	(void)arg;
	for (int i = 0; i < 200; i++) {
		int64_t rev = 0;
		if (efc_put(shared_client, "k", 1, "v", 1, 0, &rev) != 0 || rev != 42)
			atomic_fetch_add(&thread_errors, 1);
	}
	return NULL;
}

/* Requests of many threads share one connection and each gets its own answer. */
TEST(many_threads_one_client)
{
	struct fake *f = fake_start(M_OK);
	char eps[100];
	snprintf(eps, sizeof eps, "tcp://127.0.0.1:%d", f->port);
	shared_client = open_eps(eps, 5000);
	pthread_t th[8];
	for (int i = 0; i < 8; i++)
		pthread_create(&th[i], NULL, hammer, NULL);
	for (int i = 0; i < 8; i++)
		pthread_join(th[i], NULL);
	CHECK_EQ(atomic_load(&thread_errors), 0);
	CHECK_EQ(atomic_load(&f->requests), 1600);
	efc_close(shared_client);
	fake_stop(f);
}

int main(void)
{
	RUN(failover_past_dead_endpoint);
	RUN(write_on_broken_connection_is_outcome_unknown);
	RUN(read_on_broken_connection_retries_elsewhere);
	RUN(silent_member_write_times_out_unknown);
	RUN(nothing_reachable_is_not_sent);
	RUN(no_leader_is_retried);
	RUN(bad_endpoints_rejected);
	RUN(many_threads_one_client);
	TEST_EXIT();
}
