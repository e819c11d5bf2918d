/*
 * watchhub_fixture.h - what test_watchhub.c and test_watchhub_scale.c share:
 * a store and hub in a temp dir, recorders that copy every message, waits
 * and event checks.  Each test file uses some of them.
 */
#pragma GCC diagnostic ignored "-Wunused-function"

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

/* With an argument, runs only the test of that name. */
#define RUN_IF(name)                                     \
	do {                                             \
		if (argc < 2 || !strcmp(argv[1], #name)) \
			RUN(name);                       \
	} while (0)
