/*
 * test_watchhub.c - the watch hub against a real store in a temp dir:
 * revisions are made with store_begin/store_apply/store_commit and the
 * events the store produced are published, as the apply loop does.
 * Consumers are recorders that copy every message they get (optionally
 * refusing or blocking to play a slow consumer).
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../server/store.h"
#include "../../server/watchhub.h"
#include "test.h"
#include "watchhub_fixture.h"

TEST(key_prefix_range)
{
	struct env e;
	struct rec r;
	hub_stream *s;

	CHECK(env_open(&e) == 0);
	rec_init(&r);
	CHECK(watchhub_stream_open(e.h, rec_cb, &r, &s) == 0);
	int64_t base = put(&e, "zz-before", "x");
	CHECK(wcreate(s, 100, "a", NULL, 0, 0) == 0);      /* key */
	CHECK(wcreate(s, 101, "dir/", "dir0", 0, 0) == 0); /* prefix */
	CHECK(wcreate(s, 102, "m", "p", 0, 0) == 0);       /* range */
	CHECK(wcreate(s, 103, "x", "", 0, 0) == 0);        /* from-key ("\0") */
	CHECK(rec_wait_msgs(&r, 4));
	CHECK_EQ(created_id(&r, 100), 0); /* etcd's first watch id is 0 */
	CHECK_EQ(created_id(&r, 101), 1);
	CHECK_EQ(created_id(&r, 102), 2);
	CHECK_EQ(created_id(&r, 103), 3);
	CHECK_EQ(r.m[0].hdr_rev, base);
	CHECK_EQ(r.m[0].cluster_id, 11);
	CHECK_EQ(watchhub_watchers(e.h), 4);

	const char *keys[] = {"a", "ab", "dir/1", "dir", "dir/x/y", "m", "o", "p", "x", "zzz", "b"};
	int64_t last = 0;
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
		last = put(&e, keys[i], "v");
	CHECK(rec_wait_rev(&r, 3, last - 1)); /* "zzz" */
	del(&e, "a");
	int64_t lastdel = put(&e, "a", "again");
	CHECK(rec_wait_rev(&r, 0, lastdel));
	usleep(50000);

	size_t n;
	struct rev_ev *v = rec_events(&r, 0, &n);
	CHECK_EQ(n, 3);
	if (n == 3) {
		CHECK(!strcmp(v[0].key, "a") && v[0].type == EF_EVENT_PUT && v[0].rev == base + 1);
		CHECK(v[1].type == EF_EVENT_DELETE);
		CHECK(!strcmp(v[2].val, "again") && v[2].rev == lastdel);
	}
	free(v);
	v = rec_events(&r, 1, &n);
	CHECK_EQ(n, 2);
	if (n == 2)
		CHECK(!strcmp(v[0].key, "dir/1") && !strcmp(v[1].key, "dir/x/y"));
	free(v);
	v = rec_events(&r, 2, &n);
	CHECK_EQ(n, 2);
	if (n == 2)
		CHECK(!strcmp(v[0].key, "m") && !strcmp(v[1].key, "o"));
	free(v);
	v = rec_events(&r, 3, &n);
	CHECK_EQ(n, 2);
	if (n == 2)
		CHECK(!strcmp(v[0].key, "x") && !strcmp(v[1].key, "zzz"));
	free(v);
	/* every event message carries the create request id */
	for (size_t i = 0; i < r.n; i++)
		if (r.m[i].n)
			CHECK_EQ(r.m[i].id, 100 + (uint64_t)r.m[i].watch_id);
	watchhub_stream_close(s);
	CHECK_EQ(watchhub_watchers(e.h), 0);
	rec_free(&r);
	env_close(&e);
}


TEST(history_then_live)
{
	enum {
		NWATCH = 40
	};
	struct env e;
	struct rec r;
	hub_stream *s;
	char k[32];
	int64_t past[NWATCH], now[NWATCH];

	CHECK(env_open(&e) == 0);
	rec_init(&r);
	CHECK(watchhub_stream_open(e.h, rec_cb, &r, &s) == 0);
	int64_t first = 0;
	for (int i = 0; i < 3000; i++) {
		snprintf(k, sizeof k, "h/old%d", i % 100);
		int64_t rv = put(&e, k, "old");
		if (!first)
			first = rv;
		if (i % 10 == 0)
			put(&e, "other", "noise");
	}
	/* While a writer keeps going: watches from past revisions (their switch
	 * from the store to live events races the publishes) and watches from
	 * "now" (created while batches wait in the hub queue). */
	struct writer w = {&e, 6000, 0};
	pthread_t t;
	pthread_create(&t, NULL, writer_main, &w);
	for (int i = 0; i < NWATCH; i++) {
		past[i] = first + 5 + i * 77;
		CHECK(wcreate(s, (uint64_t)(100 + i), "h/", "h0", past[i], 0) == 0);
		usleep(1500);
		CHECK(wcreate(s, (uint64_t)(200 + i), "h/", "h0", 0, 0) == 0);
		usleep(1500);
	}
	pthread_join(t, NULL);
	for (int i = 0; i < NWATCH; i++) {
		CHECK_EQ(wait_created(&r, (uint64_t)(100 + i)), 2 * i);
		CHECK_EQ(wait_created(&r, (uint64_t)(200 + i)), 2 * i + 1);
		now[i] = -1;
	}
	pthread_mutex_lock(&r.mu);
	for (size_t i = 0; i < r.n; i++)
		if (r.m[i].created && r.m[i].id >= 200 && r.m[i].id < 200 + NWATCH)
			now[r.m[i].id - 200] = r.m[i].hdr_rev + 1;
	pthread_mutex_unlock(&r.mu);
	ef_arena *a = ef_arena_new();
	for (int i = 0; i < NWATCH; i++) {
		CHECK(rec_wait_rev(&r, 2 * i, w.last));
		CHECK(now[i] > 0);
		if (now[i] <= w.last)
			CHECK(rec_wait_rev(&r, 2 * i + 1, w.last));
	}
	usleep(50000);
	for (int i = 0; i < NWATCH; i++) {
		CHECK(check_h_events(&e, &r, 2 * i, past[i], w.last, a));
		CHECK(check_h_events(&e, &r, 2 * i + 1, now[i], w.last, a));
	}
	ef_arena_free(a);
	printf("  history_then_live: %d + %d watches, revisions %lld..%lld\n", NWATCH, NWATCH,
	       (long long)first, (long long)w.last);
	watchhub_stream_close(s);
	rec_free(&r);
	env_close(&e);
}

TEST(txn_one_message_filters_prev_kv)
{
	struct env e;
	struct rec r;
	hub_stream *s;

	CHECK(env_open(&e) == 0);
	rec_init(&r);
	CHECK(watchhub_stream_open(e.h, rec_cb, &r, &s) == 0);
	put(&e, "t/a", "a0");
	CHECK(wcreate_opts(s, 1, "t/", "t0", 0, 0, 0, 0, 0) == 0); /* id 0: plain */
	CHECK(wcreate_opts(s, 2, "t/", "t0", 0, 1, 0, 0, 0) == 0); /* id 1: prev_kv */
	CHECK(wcreate_opts(s, 3, "t/", "t0", 0, 0, 1, 0, 0) == 0); /* id 2: no_put */
	CHECK(wcreate_opts(s, 4, "t/", "t0", 0, 0, 0, 1, 0) == 0); /* id 3: no_delete */
	CHECK(rec_wait_msgs(&r, 4));

	ef_msg m = {.type = EF_MSG_TXN, .id = 9};
	ef_op ops[3];
	memset(ops, 0, sizeof ops);
	ops[0].type = EF_OP_PUT;
	ops[0].u.put.key = ef_str("t/a");
	ops[0].u.put.value = ef_str("a1");
	ops[1].type = EF_OP_PUT;
	ops[1].u.put.key = ef_str("t/b");
	ops[1].u.put.value = ef_str("b1");
	ops[2].type = EF_OP_PUT;
	ops[2].u.put.key = ef_str("t/c");
	ops[2].u.put.value = ef_str("c1");
	m.u.txn.success = ops;
	m.u.txn.n_success = 3;
	int64_t trev = apply1(&e, &m);
	int64_t drev = del(&e, "t/b");
	CHECK(rec_wait_rev(&r, 2, drev));
	CHECK(rec_wait_rev(&r, 1, drev));
	usleep(50000);

	/* the txn: one message, three events, one revision */
	int found = 0;
	pthread_mutex_lock(&r.mu);
	for (size_t i = 0; i < r.n; i++)
		if (r.m[i].watch_id == 0 && r.m[i].n && r.m[i].ev[0].rev == trev) {
			found = 1;
			CHECK_EQ(r.m[i].n, 3);
			for (uint32_t j = 0; j < r.m[i].n; j++) {
				CHECK_EQ(r.m[i].ev[j].rev, trev);
				CHECK(!r.m[i].ev[j].has_prev); /* not asked for */
			}
		}
	pthread_mutex_unlock(&r.mu);
	CHECK(found);
	size_t n;
	struct rev_ev *v = rec_events(&r, 1, &n);
	CHECK_EQ(n, 4);
	if (n == 4) {
		CHECK(v[0].has_prev && !strcmp(v[0].prev, "a0") && !strcmp(v[0].val, "a1"));
		CHECK(!v[1].has_prev); /* t/b was new */
		CHECK(v[3].type == EF_EVENT_DELETE && v[3].has_prev && !strcmp(v[3].prev, "b1"));
	}
	free(v);
	v = rec_events(&r, 2, &n);
	CHECK_EQ(n, 1);
	if (n == 1)
		CHECK(v[0].type == EF_EVENT_DELETE && !strcmp(v[0].key, "t/b") && v[0].rev == drev);
	free(v);
	v = rec_events(&r, 3, &n);
	CHECK_EQ(n, 3);
	for (size_t i = 0; i < n; i++)
		CHECK(v[i].type == EF_EVENT_PUT);
	free(v);
	watchhub_stream_close(s);
	rec_free(&r);
	env_close(&e);
}

TEST(cancel_dup_id_compacted)
{
	struct env e;
	struct rec r;
	hub_stream *s;

	CHECK(env_open(&e) == 0);
	rec_init(&r);
	CHECK(watchhub_stream_open(e.h, rec_cb, &r, &s) == 0);
	CHECK(wcreate(s, 1, "c", NULL, 0, 7) == 0);
	CHECK(wcreate(s, 2, "c", NULL, 0, 7) == 0); /* duplicate explicit id */
	CHECK(rec_wait_msgs(&r, 2));
	CHECK(r.m[0].created && !r.m[0].canceled && r.m[0].watch_id == 7);
	CHECK(r.m[1].created && r.m[1].canceled && r.m[1].id == 2 && r.m[1].reason[0]);
	CHECK(wcreate(s, 3, "c", NULL, 0, 0) == 0); /* auto: 0 */
	CHECK(rec_wait_msgs(&r, 3));
	CHECK_EQ(created_id(&r, 3), 0);
	int64_t r1 = put(&e, "c", "1");
	CHECK(rec_wait_rev(&r, 7, r1));
	CHECK(rec_wait_rev(&r, 0, r1));
	size_t before = r.n;
	ef_msg m = {.type = EF_MSG_WATCH_CANCEL, .id = 50};
	m.u.watch_cancel.watch_id = 7;
	CHECK(watchhub_stream_request(s, &m) == 0);
	CHECK(rec_wait_msgs(&r, before + 1));
	CHECK(r.m[before].canceled && r.m[before].watch_id == 7 && r.m[before].id == 1);
	CHECK_EQ(watchhub_watchers(e.h), 1);
	int64_t r2 = put(&e, "c", "2");
	CHECK(rec_wait_rev(&r, 0, r2));
	usleep(30000);
	size_t n;
	struct rev_ev *v = rec_events(&r, 7, &n);
	CHECK_EQ(n, 1); /* nothing after the cancel */
	free(v);
	m.u.watch_cancel.watch_id = 99; /* unknown */
	before = r.n;
	CHECK(watchhub_stream_request(s, &m) == 0);
	CHECK(rec_wait_msgs(&r, before + 1));
	CHECK(r.m[before].canceled && r.m[before].reason[0]);

	/* compaction */
	for (int i = 0; i < 10; i++)
		put(&e, "k", "v");
	int64_t cur = store_revision(e.st);
	compact(&e, cur - 3);
	CHECK_EQ(store_compact_revision(e.st), cur - 3);
	before = r.n;
	CHECK(wcreate(s, 60, "k", NULL, cur - 5, 0) == 0);
	CHECK(rec_wait_msgs(&r, before + 2));
	CHECK(r.m[before].created && r.m[before].id == 60);
	CHECK(r.m[before + 1].canceled && r.m[before + 1].compact == cur - 3 &&
	      r.m[before + 1].id == 60);
	CHECK(!strcmp(r.m[before + 1].reason,
		      "etcdserver: mvcc: required revision has been compacted"));
	/* just after the compaction point works: history from there */
	before = r.n;
	CHECK(wcreate(s, 61, "k", NULL, cur - 2, 0) == 0);
	int64_t wid = -1;
	CHECK(rec_wait_msgs(&r, before + 1));
	wid = created_id(&r, 61);
	CHECK(rec_wait_rev(&r, wid, cur));
	v = rec_events(&r, wid, &n);
	CHECK_EQ(n, 3);
	if (n == 3)
		CHECK(v[0].rev == cur - 2 && v[2].rev == cur);
	free(v);
	/* at the compact revision itself: allowed, as in etcd */
	before = r.n;
	CHECK(wcreate(s, 62, "k", NULL, cur - 3, 0) == 0);
	CHECK(rec_wait_msgs(&r, before + 1));
	wid = created_id(&r, 62);
	CHECK(rec_wait_rev(&r, wid, cur));
	v = rec_events(&r, wid, &n);
	CHECK_EQ(n, 4);
	if (n == 4)
		CHECK(v[0].rev == cur - 3 && v[3].rev == cur);
	free(v);
	watchhub_stream_close(s);
	rec_free(&r);
	env_close(&e);
}


TEST(slow_consumer)
{
	struct env e;
	struct rec fast, refusing, blocking;
	hub_stream *sf, *sr, *sb;

	CHECK(env_open(&e) == 0);
	watchhub_set_slow_consumer(e.h, 16, 1000);
	rec_init(&fast);
	rec_init(&refusing);
	rec_init(&blocking);
	CHECK(watchhub_stream_open(e.h, rec_cb, &fast, &sf) == 0);
	CHECK(watchhub_stream_open(e.h, rec_cb, &refusing, &sr) == 0);
	CHECK(watchhub_stream_open(e.h, rec_cb, &blocking, &sb) == 0);
	CHECK(wcreate(sf, 1, "s/", "s0", 0, 0) == 0);
	CHECK(wcreate(sr, 1, "s/", "s0", 0, 0) == 0);
	CHECK(wcreate(sb, 1, "s/", "s0", 0, 0) == 0);
	CHECK(rec_wait_msgs(&fast, 1) && rec_wait_msgs(&refusing, 1) &&
	      rec_wait_msgs(&blocking, 1));
	int64_t first = store_revision(e.st) + 1;
	pthread_mutex_lock(&refusing.mu);
	refusing.refuse = -1;
	pthread_mutex_unlock(&refusing.mu);
	pthread_mutex_lock(&blocking.mu);
	blocking.block = 1;
	pthread_mutex_unlock(&blocking.mu);

	char k[32];
	int64_t last = 0;
	worst_publish_us = 0;
	/* one consumer refuses, one is blocked inside its callback: publish
	 * must neither wait for them (this loop would hang) nor slow down */
	for (int i = 0; i < 600; i++) {
		snprintf(k, sizeof k, "s/%d", i % 20);
		last = put(&e, k, "v");
	}
	/* the fast stream is served while the others refuse / block */
	CHECK(rec_wait_rev(&fast, 0, last));
	CHECK(check_all(&fast, 0, first, last, 1));
	pthread_mutex_lock(&blocking.mu);
	CHECK(blocking.block && blocking.n == 1);
	pthread_mutex_unlock(&blocking.mu);
	pthread_mutex_lock(&refusing.mu);
	CHECK(refusing.refused > 0 && refusing.n == 1);
	pthread_mutex_unlock(&refusing.mu);
	printf("  slow_consumer: worst publish %lld us\n", (long long)worst_publish_us);

	/* both recover and catch up without loss */
	pthread_mutex_lock(&refusing.mu);
	refusing.refuse = 0;
	pthread_mutex_unlock(&refusing.mu);
	pthread_mutex_lock(&blocking.mu);
	blocking.block = 0;
	pthread_cond_broadcast(&blocking.cv);
	pthread_mutex_unlock(&blocking.mu);
	CHECK(rec_wait_rev(&refusing, 0, last));
	CHECK(rec_wait_rev(&blocking, 0, last));
	CHECK(check_all(&refusing, 0, first, last, 1));
	CHECK(check_all(&blocking, 0, first, last, 1));

	/* a consumer that never recovers: cancelled as too slow */
	watchhub_set_slow_consumer(e.h, 16, 3);
	pthread_mutex_lock(&refusing.mu);
	refusing.refuse = -1;
	pthread_mutex_unlock(&refusing.mu);
	last = put(&e, "s/x", "v");
	int64_t end = ms_now() + 10000;
	while (watchhub_watchers(e.h) != 2 && ms_now() < end)
		usleep(5000);
	CHECK_EQ(watchhub_watchers(e.h), 2);
	pthread_mutex_lock(&refusing.mu);
	refusing.refuse = 0;
	pthread_mutex_unlock(&refusing.mu);
	CHECK(rec_wait_msgs(&refusing, refusing.n + 1));
	pthread_mutex_lock(&refusing.mu);
	struct rmsg *lm = &refusing.m[refusing.n - 1];
	CHECK(lm->canceled && !strcmp(lm->reason, "etcfs: watcher too slow"));
	pthread_mutex_unlock(&refusing.mu);

	watchhub_stream_close(sf);
	watchhub_stream_close(sr);
	watchhub_stream_close(sb);
	rec_free(&fast);
	rec_free(&refusing);
	rec_free(&blocking);
	env_close(&e);
}

/* stream_close while the callback blocks returns only after it returned,
 * and no call happens afterwards. */
struct closer {
	hub_stream *s;
	int done;
};

static void *closer_main(void *arg)
{
	struct closer *c = arg;
	watchhub_stream_close(c->s);
	__atomic_store_n(&c->done, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

TEST(close_waits_for_callback)
{
	struct env e;
	struct rec r;
	hub_stream *s;

	CHECK(env_open(&e) == 0);
	rec_init(&r);
	CHECK(watchhub_stream_open(e.h, rec_cb, &r, &s) == 0);
	CHECK(wcreate(s, 1, "q", NULL, 0, 0) == 0);
	CHECK(rec_wait_msgs(&r, 1));
	pthread_mutex_lock(&r.mu);
	r.block = 1;
	pthread_mutex_unlock(&r.mu);
	put(&e, "q", "1");
	int64_t end = ms_now() + 5000;
	for (;;) {
		pthread_mutex_lock(&r.mu);
		uint64_t calls = r.calls;
		pthread_mutex_unlock(&r.mu);
		if (calls >= 2 || ms_now() > end)
			break;
		usleep(1000);
	}
	struct closer c = {s, 0};
	pthread_t t;
	pthread_create(&t, NULL, closer_main, &c);
	usleep(100000);
	CHECK(!__atomic_load_n(&c.done, __ATOMIC_SEQ_CST)); /* waits for the callback */
	pthread_mutex_lock(&r.mu);
	r.block = 0;
	pthread_cond_broadcast(&r.cv);
	pthread_mutex_unlock(&r.mu);
	pthread_join(t, NULL);
	CHECK(c.done);
	pthread_mutex_lock(&r.mu);
	uint64_t calls = r.calls;
	pthread_mutex_unlock(&r.mu);
	put(&e, "q", "2");
	usleep(100000);
	pthread_mutex_lock(&r.mu);
	CHECK_EQ(r.calls, calls);
	pthread_mutex_unlock(&r.mu);
	rec_free(&r);
	env_close(&e);
}

/* A consumer that closes its own stream from inside the callback. */
struct self_closer {
	hub_stream *s;
	int calls, events_seen;
};

static int self_close_cb(void *ud, const ef_msg *m)
{
	struct self_closer *c = ud;
	__atomic_add_fetch(&c->calls, 1, __ATOMIC_SEQ_CST);
	if (m->u.watch_resp.n_events) {
		__atomic_add_fetch(&c->events_seen, 1, __ATOMIC_SEQ_CST);
		watchhub_stream_close(c->s);
	}
	return 0;
}

TEST(close_from_callback)
{
	struct env e;
	struct self_closer c = {0};

	CHECK(env_open(&e) == 0);
	CHECK(watchhub_stream_open(e.h, self_close_cb, &c, &c.s) == 0);
	CHECK(wcreate(c.s, 1, "sc", NULL, 0, 0) == 0);
	put(&e, "sc", "1");
	int64_t end = ms_now() + 5000;
	while (!__atomic_load_n(&c.events_seen, __ATOMIC_SEQ_CST) && ms_now() < end)
		usleep(1000);
	CHECK_EQ(__atomic_load_n(&c.events_seen, __ATOMIC_SEQ_CST), 1);
	CHECK_EQ(watchhub_watchers(e.h), 0);
	int calls = __atomic_load_n(&c.calls, __ATOMIC_SEQ_CST);
	put(&e, "sc", "2");
	usleep(100000);
	CHECK_EQ(__atomic_load_n(&c.calls, __ATOMIC_SEQ_CST), calls);
	env_close(&e);
}

int main(int argc, char **argv)
{
	RUN_IF(key_prefix_range);
	RUN_IF(history_then_live);
	RUN_IF(txn_one_message_filters_prev_kv);
	RUN_IF(cancel_dup_id_compacted);
	RUN_IF(slow_consumer);
	RUN_IF(close_waits_for_callback);
	RUN_IF(close_from_callback);
	TEST_EXIT();
}
