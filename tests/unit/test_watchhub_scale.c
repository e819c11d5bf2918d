/*
 * test_watchhub_scale.c - the watch hub at scale and under stress: many
 * watchers, random ranges, progress notifications, resync, and a queue that
 * overflows on every publish (watches then served from the store).
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

TEST(many_watchers)
{
	struct env e;
	struct rec r;
	hub_stream *s[20];
	char k[32], k2[32];

	CHECK(env_open(&e) == 0);
	rec_init(&r);
	for (int i = 0; i < 20; i++)
		CHECK(watchhub_stream_open(e.h, rec_cb, &r, &s[i]) == 0);
	/* 2000 single-key watches and 200 prefix watches over 20 streams */
	for (int i = 0; i < 2000; i++) {
		snprintf(k, sizeof k, "m/%04d", i);
		CHECK(wcreate(s[i % 20], (uint64_t)(1000 + i), k, NULL, 0, 0) == 0);
	}
	for (int i = 0; i < 200; i++) {
		snprintf(k, sizeof k, "m/%02d", i % 100);
		snprintf(k2, sizeof k2, "m/%02d", i % 100);
		k2[strlen(k2) - 1]++;
		CHECK(wcreate(s[i % 20], (uint64_t)(5000 + i), k, k2, 0, 0) == 0);
	}
	CHECK(rec_wait_msgs(&r, 2200));
	CHECK_EQ(watchhub_watchers(e.h), 2200);

	/* 1000 events, 10 per batch */
	int64_t pub_ns = 0;
	int64_t t0 = ms_now();
	for (int b = 0; b < 100; b++) {
		ef_arena *a = ef_arena_new();
		store_events ev = {.a = a};
		ef_msg resp;
		CHECK(store_begin(e.st) == 0);
		for (int j = 0; j < 10; j++) {
			ef_msg m = {.type = EF_MSG_PUT, .id = 1};
			snprintf(k, sizeof k, "m/%04d", b * 10 + j);
			m.u.put.key = ef_str(k);
			m.u.put.value = ef_str("value");
			CHECK(store_apply(e.st, 1, &m, &resp, a, &ev) == 0);
		}
		CHECK(store_commit(e.st, ++e.index) == 0);
		struct timespec p0, p1;
		clock_gettime(CLOCK_MONOTONIC, &p0);
		watchhub_publish(e.h, &ev, store_revision(e.st));
		clock_gettime(CLOCK_MONOTONIC, &p1);
		pub_ns += (p1.tv_sec - p0.tv_sec) * 1000000000LL + (p1.tv_nsec - p0.tv_nsec);
		ef_arena_free(a);
	}
	/* 1000 single-key events + each event matches 2 prefix watches */
	int64_t end = ms_now() + 15000;
	while (ms_now() < end) {
		pthread_mutex_lock(&r.mu);
		uint64_t got = r.events;
		pthread_mutex_unlock(&r.mu);
		if (got >= 3000)
			break;
		usleep(1000);
	}
	int64_t t1 = ms_now();
	pthread_mutex_lock(&r.mu);
	CHECK_EQ(r.events, 3000);
	/* each single-key watch got its own key only */
	int wrong = 0;
	for (size_t i = 0; i < r.n; i++)
		if (r.m[i].n && r.m[i].id >= 1000 && r.m[i].id < 3000) {
			snprintf(k, sizeof k, "m/%04d", (int)(r.m[i].id - 1000));
			if (r.m[i].n != 1 || strcmp(r.m[i].ev[0].key, k))
				wrong++;
		}
	pthread_mutex_unlock(&r.mu);
	CHECK_EQ(wrong, 0);
	printf("  many_watchers: 2200 watches, 1000 events: publish total %.3f ms, all delivered in "
	       "%lld ms\n",
	       pub_ns / 1e6, (long long)(t1 - t0));
	for (int i = 0; i < 20; i++)
		watchhub_stream_close(s[i]);
	rec_free(&r);
	env_close(&e);
}

/* The interval index against brute force: random ranges, prefixes and
 * from-key watches over a small alphabet. */
TEST(random_ranges)
{
	struct env e;
	struct rec r;
	hub_stream *s;
	enum {
		NW = 300,
		NK = 400
	};
	static char wk[NW][8], we[NW][8], keys[NK][8];
	unsigned seed = 12345;

	CHECK(env_open(&e) == 0);
	rec_init(&r);
	CHECK(watchhub_stream_open(e.h, rec_cb, &r, &s) == 0);
	for (int i = 0; i < NW; i++) {
		int kl = 1 + (int)(rand_r(&seed) % 3), el = 1 + (int)(rand_r(&seed) % 3);
		for (int j = 0; j < kl; j++)
			wk[i][j] = (char)('a' + rand_r(&seed) % 4);
		for (int j = 0; j < el; j++)
			we[i][j] = (char)('a' + rand_r(&seed) % 4);
		int kind = (int)(rand_r(&seed) % 10);
		if (kind == 0) {
			CHECK(wcreate(s, (uint64_t)i + 1, wk[i], "", 0, 0) == 0); /* from-key */
			we[i][0] = 0;
		} else if (kind < 4) { /* prefix */
			strcpy(we[i], wk[i]);
			we[i][strlen(we[i]) - 1]++;
			CHECK(wcreate(s, (uint64_t)i + 1, wk[i], we[i], 0, 0) == 0);
		} else if (strcmp(wk[i], we[i]) < 0) {
			CHECK(wcreate(s, (uint64_t)i + 1, wk[i], we[i], 0, 0) == 0);
		} else { /* empty range: refused */
			CHECK(wcreate(s, (uint64_t)i + 1, wk[i], we[i], 0, 0) == 0);
			we[i][0] = '!';
		}
	}
	CHECK(rec_wait_msgs(&r, NW));
	for (int i = 0; i < NK; i++) {
		int kl = 1 + (int)(rand_r(&seed) % 4);
		for (int j = 0; j < kl; j++)
			keys[i][j] = (char)('a' + rand_r(&seed) % 5);
	}
	int64_t last = 0;
	for (int i = 0; i < NK; i++)
		last = put(&e, keys[i], "v");
	/* expected number of events over all watches */
	uint64_t expect = 0;
	int64_t *want = calloc(NW, sizeof(*want));
	for (int i = 0; i < NW; i++) {
		if (we[i][0] == '!')
			continue;
		for (int k = 0; k < NK; k++)
			if (strcmp(keys[k], wk[i]) >= 0 &&
			    (!we[i][0] || strcmp(keys[k], we[i]) < 0))
				want[i]++;
		expect += (uint64_t)want[i];
	}
	int64_t end = ms_now() + 10000;
	for (;;) {
		pthread_mutex_lock(&r.mu);
		uint64_t got = r.events;
		pthread_mutex_unlock(&r.mu);
		if (got >= expect || ms_now() > end)
			break;
		usleep(2000);
	}
	usleep(50000);
	int bad = 0;
	for (int i = 0; i < NW; i++) {
		int64_t wid = created_id(&r, (uint64_t)i + 1);
		if (we[i][0] == '!') {
			CHECK(wid >= 0); /* created, then canceled in the same message */
			continue;
		}
		size_t n;
		struct rev_ev *v = rec_events(&r, wid, &n);
		if ((int64_t)n != want[i])
			bad++;
		for (size_t j = 0; j < n; j++)
			if (strcmp(v[j].key, wk[i]) < 0 ||
			    (we[i][0] && strcmp(v[j].key, we[i]) >= 0))
				bad++;
		free(v);
	}
	CHECK_EQ(bad, 0);
	pthread_mutex_lock(&r.mu);
	CHECK_EQ(r.events, expect);
	pthread_mutex_unlock(&r.mu);
	(void)last;
	free(want);
	watchhub_stream_close(s);
	rec_free(&r);
	env_close(&e);
}

TEST(progress)
{
	struct env e;
	struct rec r;
	hub_stream *s;

	CHECK(env_open(&e) == 0);
	rec_init(&r);
	watchhub_set_progress_interval_ms(e.h, 200);
	CHECK(watchhub_stream_open(e.h, rec_cb, &r, &s) == 0);
	int64_t rev = put(&e, "p", "1");
	CHECK(wcreate_opts(s, 5, "p", NULL, 0, 0, 0, 0, 1) == 0);
	CHECK(wcreate_opts(s, 6, "other", NULL, 0, 0, 0, 0, 0) == 0); /* no progress_notify */
	CHECK(rec_wait_msgs(&r, 3));
	pthread_mutex_lock(&r.mu);
	int seen = 0;
	for (size_t i = 0; i < r.n; i++)
		if (!r.m[i].created && !r.m[i].canceled && !r.m[i].n) {
			seen++;
			CHECK_EQ(r.m[i].watch_id, 0);
			CHECK_EQ(r.m[i].id, 5);
			CHECK_EQ(r.m[i].hdr_rev, rev);
		}
	pthread_mutex_unlock(&r.mu);
	CHECK(seen >= 1);

	/* explicit progress request: watch_id -1, answered with its own id */
	rev = put(&e, "x", "1");
	usleep(50000);
	size_t before = r.n;
	ef_msg m = {.type = EF_MSG_WATCH_PROGRESS, .id = 77};
	CHECK(watchhub_stream_request(s, &m) == 0);
	int64_t end = ms_now() + 5000;
	int found = 0;
	while (!found && ms_now() < end) {
		pthread_mutex_lock(&r.mu);
		for (size_t i = before; i < r.n; i++)
			if (r.m[i].id == 77) {
				found = 1;
				CHECK_EQ(r.m[i].watch_id, -1);
				CHECK_EQ(r.m[i].hdr_rev, rev);
				CHECK_EQ(r.m[i].n, 0);
			}
		pthread_mutex_unlock(&r.mu);
		usleep(2000);
	}
	CHECK(found);
	watchhub_stream_close(s);
	rec_free(&r);
	env_close(&e);
}

TEST(resync)
{
	struct env e;
	struct rec r;
	hub_stream *s;

	CHECK(env_open(&e) == 0);
	rec_init(&r);
	CHECK(watchhub_stream_open(e.h, rec_cb, &r, &s) == 0);
	int64_t first = store_revision(e.st) + 1;
	CHECK(wcreate(s, 1, "r/", "r0", 0, 0) == 0);
	CHECK(rec_wait_msgs(&r, 1));
	int64_t last = 0;
	for (int i = 0; i < 50; i++) {
		last = put(&e, "r/a", "v");
		if (i == 20)
			watchhub_resync(e.h);
	}
	CHECK(rec_wait_rev(&r, 0, last));
	usleep(50000);
	CHECK(check_all(&r, 0, first, last, 1));
	watchhub_stream_close(s);
	rec_free(&r);
	env_close(&e);
}


/* The hub queue overflows on every publish: watches are served from the
 * store and still get every event exactly once. */
TEST(queue_overflow)
{
	struct env e;
	struct rec r;
	hub_stream *s;

	CHECK(env_open(&e) == 0);
	rec_init(&r);
	watchhub_set_queue_bytes(e.h, 1);
	CHECK(watchhub_stream_open(e.h, rec_cb, &r, &s) == 0);
	int64_t first = store_revision(e.st) + 1;
	CHECK(wcreate(s, 1, "o/", "o0", 0, 0) == 0);
	CHECK(wcreate(s, 2, "o/k3", NULL, 0, 0) == 0);
	CHECK(rec_wait_msgs(&r, 2));
	char k[16];
	int64_t last = 0, last3 = 0;
	for (int i = 0; i < 500; i++) {
		snprintf(k, sizeof k, "o/k%d", i % 7);
		last = put(&e, k, "v");
		if (i % 7 == 3)
			last3 = last;
	}
	CHECK(rec_wait_rev(&r, 0, last));
	CHECK(rec_wait_rev(&r, 1, last3));
	usleep(50000);
	CHECK(check_all(&r, 0, first, last, 1));
	size_t n;
	struct rev_ev *v = rec_events(&r, 1, &n);
	CHECK_EQ(n, 500 / 7 + (500 % 7 > 3));
	for (size_t i = 0; i < n; i++)
		CHECK(!strcmp(v[i].key, "o/k3"));
	free(v);
	watchhub_stream_close(s);
	rec_free(&r);
	env_close(&e);
}

int main(int argc, char **argv)
{
	RUN_IF(many_watchers);
	RUN_IF(random_ranges);
	RUN_IF(progress);
	RUN_IF(resync);
	RUN_IF(queue_overflow);
	TEST_EXIT();
}
