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

/* ------------------------------------------------------------------ */
/* Environment: store + hub.                                            */

struct env {
	char dir[64];
	store *st;
	watchhub *h;
	uint64_t index;
};

static void hdr_fn(void *ud, ef_resp_header *hd)
{
	hd->cluster_id = 11;
	hd->member_id = 22;
	hd->raft_term = 3;
}

static int env_open(struct env *e)
{
	char err[256] = "";

	memset(e, 0, sizeof(*e));
	snprintf(e->dir, sizeof e->dir, "/tmp/test_watchhub.XXXXXX");
	if (!mkdtemp(e->dir))
		return -1;
	store_opts o = {.dir = e->dir, .quota_bytes = 256u << 20, .max_txn_ops = 128};
	if (store_open(&o, &e->st, err, sizeof err) != 0) {
		fprintf(stderr, "  store_open: %s\n", err);
		return -1;
	}
	e->h = watchhub_new(e->st, hdr_fn, e);
	return e->h ? 0 : -1;
}

static void env_close(struct env *e)
{
	char cmd[128];

	watchhub_free(e->h);
	store_close(e->st);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", e->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "  could not remove %s\n", e->dir);
}

static int64_t worst_publish_us; /* longest watchhub_publish call */

/* Apply one request as one batch and publish its events; returns the
 * store revision after it. */
static int64_t apply1(struct env *e, const ef_msg *req)
{
	ef_arena *a = ef_arena_new();
	store_events ev = {.a = a};
	ef_msg resp;
	struct timespec t0, t1;

	CHECK(store_begin(e->st) == 0);
	CHECK(store_apply(e->st, 1, req, &resp, a, &ev) == 0);
	CHECK(store_commit(e->st, ++e->index) == 0);
	int64_t rev = store_revision(e->st);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	watchhub_publish(e->h, &ev, rev);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	int64_t us = (t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000;
	if (us > worst_publish_us)
		worst_publish_us = us;
	ef_arena_free(a);
	return rev;
}

static int64_t put(struct env *e, const char *k, const char *v)
{
	ef_msg m = {.type = EF_MSG_PUT, .id = 1};
	m.u.put.key = ef_str(k);
	m.u.put.value = ef_str(v);
	return apply1(e, &m);
}

static int64_t del(struct env *e, const char *k)
{
	ef_msg m = {.type = EF_MSG_DELETE, .id = 1};
	m.u.del.key = ef_str(k);
	return apply1(e, &m);
}

static void compact(struct env *e, int64_t rev)
{
	ef_msg m = {.type = EF_MSG_COMPACT, .id = 1};
	m.u.compact.revision = rev;
	apply1(e, &m);
}

/* ------------------------------------------------------------------ */
/* Recorder: a consumer that copies every message.                      */

struct rev_ev {
	int type;
	char key[48], val[48], prev[48];
	int has_prev;
	int64_t rev;
};

struct rmsg {
	uint64_t id;
	int64_t watch_id, compact, hdr_rev;
	int created, canceled;
	char reason[96];
	uint32_t n;
	struct rev_ev *ev;
	uint64_t cluster_id;
};

struct rec {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct rmsg *m;
	size_t n, cap;
	int refuse; /* > 0: refuse that many calls; < 0: refuse until reset */
	int block;  /* block inside the callback while set */
	uint64_t calls, refused, events;
};

static void rec_init(struct rec *r)
{
	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->cv, NULL);
}

static void rec_free(struct rec *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->m[i].ev);
	free(r->m);
	pthread_mutex_destroy(&r->mu);
	pthread_cond_destroy(&r->cv);
}

static void cpy(char *dst, size_t cap, ef_buf b)
{
	size_t n = b.n < cap - 1 ? b.n : cap - 1;
	if (n)
		memcpy(dst, b.p, n);
	dst[n] = 0;
}

static int rec_cb(void *ud, const ef_msg *m)
{
	struct rec *r = ud;

	pthread_mutex_lock(&r->mu);
	r->calls++;
	while (r->block)
		pthread_cond_wait(&r->cv, &r->mu);
	if (r->refuse) {
		if (r->refuse > 0)
			r->refuse--;
		r->refused++;
		pthread_mutex_unlock(&r->mu);
		return 1;
	}
	if (r->n == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 64;
		r->m = realloc(r->m, r->cap * sizeof(*r->m));
	}
	struct rmsg *x = &r->m[r->n];
	const ef_watch_resp *w = &m->u.watch_resp;
	memset(x, 0, sizeof(*x));
	x->id = m->id;
	x->watch_id = w->watch_id;
	x->compact = w->compact_revision;
	x->hdr_rev = m->hdr.revision;
	x->cluster_id = m->hdr.cluster_id;
	x->created = w->created;
	x->canceled = w->canceled;
	cpy(x->reason, sizeof x->reason, w->cancel_reason);
	x->n = w->n_events;
	x->ev = calloc(w->n_events + 1, sizeof(*x->ev));
	for (uint32_t i = 0; i < w->n_events; i++) {
		const ef_event *e = &w->events[i];
		x->ev[i].type = e->type;
		x->ev[i].rev = e->kv.mod_revision;
		cpy(x->ev[i].key, sizeof x->ev[i].key, e->kv.key);
		cpy(x->ev[i].val, sizeof x->ev[i].val, e->kv.value);
		if (e->prev_kv) {
			x->ev[i].has_prev = 1;
			cpy(x->ev[i].prev, sizeof x->ev[i].prev, e->prev_kv->value);
		}
	}
	r->events += w->n_events;
	r->n++;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
	return 0;
}

static int64_t ms_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait (up to 10 s) until the recorder holds at least n messages. */
static int rec_wait_msgs(struct rec *r, size_t n)
{
	int64_t end = ms_now() + 10000;
	pthread_mutex_lock(&r->mu);
	while (r->n < n && ms_now() < end) {
		pthread_mutex_unlock(&r->mu);
		usleep(2000);
		pthread_mutex_lock(&r->mu);
	}
	int ok = r->n >= n;
	pthread_mutex_unlock(&r->mu);
	return ok;
}

/* Wait until watch wid got an event with revision >= rev. */
static int rec_wait_rev(struct rec *r, int64_t wid, int64_t rev)
{
	int64_t end = ms_now() + 15000;
	for (;;) {
		pthread_mutex_lock(&r->mu);
		for (size_t i = 0; i < r->n; i++)
			if (r->m[i].watch_id == wid && r->m[i].n &&
			    r->m[i].ev[r->m[i].n - 1].rev >= rev) {
				pthread_mutex_unlock(&r->mu);
				return 1;
			}
		pthread_mutex_unlock(&r->mu);
		if (ms_now() > end)
			return 0;
		usleep(2000);
	}
}

/* Events of watch wid, flattened (caller frees). */
static struct rev_ev *rec_events(struct rec *r, int64_t wid, size_t *n)
{
	size_t k = 0;
	pthread_mutex_lock(&r->mu);
	for (size_t i = 0; i < r->n; i++)
		if (r->m[i].watch_id == wid)
			k += r->m[i].n;
	struct rev_ev *v = calloc(k + 1, sizeof(*v));
	k = 0;
	for (size_t i = 0; i < r->n; i++)
		if (r->m[i].watch_id == wid)
			for (uint32_t j = 0; j < r->m[i].n; j++)
				v[k++] = r->m[i].ev[j];
	pthread_mutex_unlock(&r->mu);
	*n = k;
	return v;
}

static int64_t wcreate(hub_stream *s, uint64_t req_id, const char *key, const char *end,
		       int64_t start, int64_t id)
{
	ef_msg m = {.type = EF_MSG_WATCH_CREATE, .id = req_id};
	m.u.watch_create.key = ef_str(key);
	if (end)
		m.u.watch_create.range_end.p = (const uint8_t *)end,
		m.u.watch_create.range_end.n = end[0] ? (uint32_t)strlen(end) : 1;
	m.u.watch_create.start_revision = start;
	m.u.watch_create.watch_id = id;
	return watchhub_stream_request(s, &m);
}

static int wcreate_opts(hub_stream *s, uint64_t req_id, const char *key, const char *end,
			int64_t start, int prev_kv, int no_put, int no_delete, int progress)
{
	ef_msg m = {.type = EF_MSG_WATCH_CREATE, .id = req_id};
	m.u.watch_create.key = ef_str(key);
	if (end)
		m.u.watch_create.range_end.p = (const uint8_t *)end,
		m.u.watch_create.range_end.n = end[0] ? (uint32_t)strlen(end) : 1;
	m.u.watch_create.start_revision = start;
	m.u.watch_create.prev_kv = (uint8_t)prev_kv;
	m.u.watch_create.no_put = (uint8_t)no_put;
	m.u.watch_create.no_delete = (uint8_t)no_delete;
	m.u.watch_create.progress_notify = (uint8_t)progress;
	return watchhub_stream_request(s, &m);
}

/* Find the created message for request id; returns its watch id or -100. */
static int64_t created_id(struct rec *r, uint64_t req_id)
{
	int64_t id = -100;
	pthread_mutex_lock(&r->mu);
	for (size_t i = 0; i < r->n; i++)
		if (r->m[i].id == req_id && r->m[i].created) {
			id = r->m[i].watch_id;
			break;
		}
	pthread_mutex_unlock(&r->mu);
	return id;
}

/* created_id, waiting up to 10 s for the answer. */
static int64_t wait_created(struct rec *r, uint64_t req_id)
{
	int64_t end = ms_now() + 10000, id;
	while ((id = created_id(r, req_id)) == -100 && ms_now() < end)
		usleep(2000);
	return id;
}

/* ------------------------------------------------------------------ */

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

struct writer {
	struct env *e;
	int count;
	int64_t last;
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	char k[32], v[32];
	for (int i = 0; i < w->count; i++) {
		snprintf(k, sizeof k, "h/k%d", i % 37);
		snprintf(v, sizeof v, "live%d", i);
		w->last = put(w->e, k, v);
		if (i % 50 == 0)
			usleep(1000);
	}
	return NULL;
}

/* History then live with writes racing the catch-up: every revision from
 * start to the end exactly once, in order. */
/* Check watch wid got exactly the h/ events of [from, to] the store holds. */
static int check_h_events(struct env *e, struct rec *r, int64_t wid, int64_t from, int64_t to,
			  ef_arena *a)
{
	size_t n;
	struct rev_ev *v = rec_events(r, wid, &n);
	int ok = 1;
	int64_t prev = from - 1;
	for (size_t i = 0; i < n && ok; i++) {
		if (v[i].rev <= prev || v[i].rev > to || strncmp(v[i].key, "h/", 2) != 0) {
			ok = 0;
			fprintf(stderr, "  watch %lld event %zu: rev %lld after %lld key %s\n",
				(long long)wid, i, (long long)v[i].rev, (long long)prev, v[i].key);
		}
		prev = v[i].rev;
	}
	size_t expect = 0;
	int64_t at = from, nxt = 0;
	for (;;) {
		ef_arena_reset(a);
		store_events se = {.a = a};
		if (store_events_since(e->st, ef_str("h/"), ef_str("h0"), at, 1000, 0, &se, &nxt) !=
		    0) {
			ok = 0;
			break;
		}
		for (uint32_t i = 0; i < se.n; i++)
			if (se.ev[i].kv.mod_revision <= to)
				expect++;
		if (se.n == 0)
			break;
		at = nxt;
	}
	if (n != expect) {
		fprintf(stderr, "  watch %lld: %zu events, the store has %zu\n", (long long)wid, n,
			expect);
		ok = 0;
	}
	free(v);
	return ok;
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

static int check_all(struct rec *r, int64_t wid, int64_t from, int64_t to, int every_rev)
{
	size_t n;
	struct rev_ev *v = rec_events(r, wid, &n);
	int ok = 1;
	int64_t prev = from - 1;
	for (size_t i = 0; i < n; i++) {
		if (v[i].rev <= prev || (every_rev && v[i].rev != prev + 1)) {
			fprintf(stderr, "  watch %lld: event %zu rev %lld after %lld\n",
				(long long)wid, i, (long long)v[i].rev, (long long)prev);
			ok = 0;
			break;
		}
		prev = v[i].rev;
	}
	if (ok && prev != to) {
		fprintf(stderr, "  watch %lld: last rev %lld, expected %lld\n", (long long)wid,
			(long long)prev, (long long)to);
		ok = 0;
	}
	free(v);
	return ok;
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

/* With an argument, runs only the test of that name. */
#define RUN_IF(name)                                     \
	do {                                             \
		if (argc < 2 || !strcmp(argv[1], #name)) \
			RUN(name);                       \
	} while (0)

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
	RUN_IF(key_prefix_range);
	RUN_IF(history_then_live);
	RUN_IF(txn_one_message_filters_prev_kv);
	RUN_IF(cancel_dup_id_compacted);
	RUN_IF(slow_consumer);
	RUN_IF(close_waits_for_callback);
	RUN_IF(close_from_callback);
	RUN_IF(many_watchers);
	RUN_IF(random_ranges);
	RUN_IF(progress);
	RUN_IF(resync);
	RUN_IF(queue_overflow);
	TEST_EXIT();
}
