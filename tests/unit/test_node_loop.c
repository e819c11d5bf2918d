/*
 * test_node_loop.c - the member's Raft host loop (server/node/loop.c) on a
 * fake disk and network.
 *
 * The loop reaches the WAL, the store and the peers only through a node_io
 * table (server/node/node_int.h).  Here that table records every call in one
 * event log, so the tests can check the contract of server/raft/raft.h as the
 * production code runs it: persist -> send -> apply -> acknowledge, with the
 * one documented exception that a leader sends its appends before its own
 * fsync (rd.n_msgs_early) while votes and append responses wait for it; that
 * a failed fsync stops the member (io->fatal) instead of acknowledging
 * anything; and, with the real WAL in a temporary directory, that a record
 * torn by a crash in mid-write is dropped on restart and the member carries
 * on from the last whole record.  Raft runs for real (one member driven by
 * hand, its peers answered by the test), no thread, socket or timer.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../server/node/node_int.h"
#include "test.h"

/* ------------------------------------------------------------------ */
/* The event log.                                                       */

enum ev_type {
	E_APPEND = 1, /* index */
	E_HS,         /* commit in index, term, vote in to */
	E_SYNC,
	E_SEND,   /* msg type, to, index = last entry index carried (or m->index) */
	E_APPLY,  /* index = the request's key as a number */
	E_COMMIT, /* index = applied index */
	E_FATAL
};

struct tev {
	int type;
	uint64_t index;
	int msg;
	uint64_t to, term;
	uint8_t reject;
};

#define MAX_EV 4096
static struct tev evs[MAX_EV];
static int n_evs;

static void ev_add(int type, uint64_t index, int msg, uint64_t to, uint64_t term, uint8_t reject)
{
	if (n_evs < MAX_EV)
		evs[n_evs++] = (struct tev){type, index, msg, to, term, reject};
}

/* ------------------------------------------------------------------ */
/* The fake disk and network.                                           */

/* The store: only what the loop asks of it.  Durable across a simulated
 * restart (it is a separate file in etcfsd). */
static struct {
	uint64_t applied;
	int in_txn;
	int64_t rev;
	uint64_t keys[256]; /* applied requests' keys, in order */
	int n_keys;
} fst;

static int sync_fail;          /* wal_sync returns an error */
static int n_fatal;            /* io->fatal calls */
static struct waiter *watched; /* must not be acknowledged before its apply */
static int acked_early;        /* watched was DONE during an apply or commit */

static int f_wal_append(wal *w, const raft_entry *e, size_t n)
{
	for (size_t i = 0; i < n; i++)
		ev_add(E_APPEND, e[i].index, 0, 0, e[i].term, 0);
	return 0;
}

static int f_wal_set_hard_state(wal *w, const raft_hard_state *hs)
{
	ev_add(E_HS, hs->commit, 0, hs->vote, hs->term, 0);
	return 0;
}

static int f_wal_sync(wal *w)
{
	ev_add(E_SYNC, 0, 0, 0, 0, 0);
	return sync_fail ? EF_E_IO : 0;
}

/* The real WAL underneath, the same events on top. */
static int r_wal_append(wal *w, const raft_entry *e, size_t n)
{
	f_wal_append(w, e, n);
	return wal_append(w, e, n);
}

static int r_wal_set_hard_state(wal *w, const raft_hard_state *hs)
{
	f_wal_set_hard_state(w, hs);
	return wal_set_hard_state(w, hs);
}

static int r_wal_sync(wal *w)
{
	ev_add(E_SYNC, 0, 0, 0, 0, 0);
	return wal_sync(w);
}

static uint64_t f_applied_index(store *s)
{
	return fst.applied;
}

static int f_begin(store *s)
{
	fst.in_txn = 1;
	return 0;
}

static int f_apply(store *s, int64_t time_ns, const ef_msg *req, ef_msg *resp, ef_arena *a,
		   store_events *ev)
{
	uint64_t key = 0;
	if (req->type == EF_MSG_PUT)
		for (uint32_t i = 0; i < req->u.put.key.n; i++)
			key = key * 10 + (uint64_t)(req->u.put.key.p[i] - '0');
	ev_add(E_APPLY, key, 0, 0, 0, 0);
	if (fst.n_keys < 256)
		fst.keys[fst.n_keys++] = key;
	if (watched && watched->state == W_DONE)
		acked_early++;
	memset(resp, 0, sizeof *resp);
	resp->type = (uint8_t)(req->type | 0x80);
	return 0;
}

static int f_commit(store *s, uint64_t applied)
{
	ev_add(E_COMMIT, applied, 0, 0, 0, 0);
	if (watched && watched->state == W_DONE)
		acked_early++;
	fst.applied = applied;
	fst.in_txn = 0;
	fst.rev++;
	return 0;
}

static int64_t f_revision(store *s)
{
	return fst.rev;
}

static int f_meta_put(store *s, const char *name, const void *val, uint32_t len)
{
	return 0;
}

static int f_lease_list(store *s, store_lease **out, uint32_t *n)
{
	*out = NULL;
	*n = 0;
	return 0;
}

static void f_send(node *n, raft_msg *msgs, size_t lo, size_t hi)
{
	for (size_t i = lo; i < hi; i++) {
		raft_msg *m = &msgs[i];
		uint64_t idx = m->n_entries ? m->entries[m->n_entries - 1].index : m->index;
		ev_add(E_SEND, idx, m->type, m->to, m->term, m->reject);
	}
}

static void f_fatal(node *n, const char *why)
{
	ev_add(E_FATAL, 0, 0, 0, 0, 0);
	n_fatal++;
}

static const node_io fake_io = {
	.wal_append = f_wal_append,
	.wal_set_hard_state = f_wal_set_hard_state,
	.wal_sync = f_wal_sync,
	.store_applied_index = f_applied_index,
	.store_begin = f_begin,
	.store_apply = f_apply,
	.store_commit = f_commit,
	.store_revision = f_revision,
	.store_meta_put = f_meta_put,
	.store_lease_list = f_lease_list,
	.send = f_send,
	.fatal = f_fatal,
};

/* fake_io with the real WAL (the restart test). */
static node_io real_wal_io(void)
{
	node_io io = fake_io;
	io.wal_append = r_wal_append;
	io.wal_set_hard_state = r_wal_set_hard_state;
	io.wal_sync = r_wal_sync;
	return io;
}

static void reset(void)
{
	memset(&fst, 0, sizeof fst);
	n_evs = 0;
	sync_fail = 0;
	n_fatal = 0;
	watched = NULL;
	acked_early = 0;
}

/* ------------------------------------------------------------------ */
/* Helpers.                                                             */

#define CLUSTER3 "a=tcp://127.0.0.1:1,b=tcp://127.0.0.1:2,c=tcp://127.0.0.1:3"

/* A loop-only member: no store, WAL, peers or thread; the caller sets
 * n->io (and n->w for the real WAL). */
static node *member_new(const char *cluster, const node_io *io, const wal_recovered *rec)
{
	node_config cfg = {.name = "a", .initial_cluster = cluster};
	node *n = node_alloc(&cfg);
	char err[200];
	CHECK(n != NULL);
	CHECK_EQ(node_members_parse(n, cluster, err, sizeof err), 0);
	n->io = io;
	n->scratch = ef_arena_new();
	wal_recovered none;
	memset(&none, 0, sizeof none);
	if (!rec)
		rec = &none;
	n->synced_hs = rec->hs;
	n->r = node_raft_new(n, rec);
	CHECK(n->r != NULL);
	return n;
}

static void member_free(node *n)
{
	raft_free(n->r);
	ef_arena_free(n->scratch);
	while (n->held_head) {
		struct ev *e = n->held_head;
		n->held_head = e->next;
		free(e->data);
		free(e);
	}
	free(n->cur.waiters);
	free(n->next.waiters);
	free(n);
}

/* Every ready through the production loop; the first error stops. */
static int drain(node *n)
{
	while (raft_has_ready(n->r)) {
		int rv = node_loop_ready(n);
		if (rv)
			return rv;
	}
	return 0;
}

static uint64_t id_of(node *n, const char *name)
{
	for (int i = 0; i < n->n_members; i++)
		if (strcmp(n->members[i].name, name) == 0)
			return n->members[i].id;
	return 0;
}

static void step(node *n, raft_msg m)
{
	m.to = n->id;
	raft_step(n->r, &m);
}

/* Answer every vote request and append sent since event `from` as a
 * willing, up-to-date peer would. */
static void answer(node *n, int from)
{
	int upto = n_evs;
	for (int i = from; i < upto; i++) {
		struct tev *e = &evs[i];
		if (e->type != E_SEND)
			continue;
		raft_msg r = {.from = e->to, .term = e->term};
		if (e->msg == RAFT_MSG_PREVOTE)
			r.type = RAFT_MSG_PREVOTE_RESP;
		else if (e->msg == RAFT_MSG_VOTE)
			r.type = RAFT_MSG_VOTE_RESP;
		else if (e->msg == RAFT_MSG_APP) {
			r.type = RAFT_MSG_APP_RESP;
			r.index = e->index;
		} else
			continue;
		step(n, r);
	}
}

/* Make n (member a of CLUSTER3) the leader with its first entry committed. */
static void elect(node *n)
{
	raft_campaign(n->r);
	for (int round = 0; round < 6; round++) {
		int mark = n_evs;
		CHECK_EQ(drain(n), 0);
		answer(n, mark);
	}
	CHECK_EQ(drain(n), 0);
	CHECK_EQ(raft_role(n->r), RAFT_LEADER);
	CHECK_EQ(fst.applied, raft_last_index(n->r));
}

/* A client's put of key "<k>", proposed as node_call() would: the payload
 * names this member and the waiter. */
static uint8_t *put_payload(node *n, uint64_t waiter, int k, uint32_t *len)
{
	char key[24];
	snprintf(key, sizeof key, "%d", k);
	ef_msg req = {.type = EF_MSG_PUT};
	req.u.put.key = (ef_buf){(uint8_t *)key, (uint32_t)strlen(key)};
	req.u.put.value = (ef_buf){(uint8_t *)"v", 1};
	return node_payload_make(n, PAYLOAD_REQUEST, waiter, &req, len);
}

struct client {
	struct waiter w;
	ef_msg resp;
	ef_arena *a;
};

static void client_add(node *n, struct client *c)
{
	memset(c, 0, sizeof *c);
	c->a = ef_arena_new();
	node_cond_init_mono(&c->w.cv);
	c->w.resp = &c->resp;
	c->w.a = c->a;
	pthread_mutex_lock(&n->mu);
	node_waiter_add(n, &c->w);
	pthread_mutex_unlock(&n->mu);
}

static void client_free(node *n, struct client *c)
{
	pthread_mutex_lock(&n->mu);
	if (c->w.state != W_DONE)
		node_waiter_del(n, &c->w);
	pthread_mutex_unlock(&n->mu);
	pthread_cond_destroy(&c->w.cv);
	ef_arena_free(c->a);
}

static int find(int from, int type, uint64_t index)
{
	for (int i = from; i < n_evs; i++)
		if (evs[i].type == type && evs[i].index == index)
			return i;
	return -1;
}

static int find_msg(int from, int msg)
{
	for (int i = from; i < n_evs; i++)
		if (evs[i].type == E_SEND && evs[i].msg == msg)
			return i;
	return -1;
}

/* The contract over the whole log: an entry is applied only once an fsync
 * followed its append; a vote or an append response is sent only when
 * everything appended before it was fsync'd (a leader's appends may go
 * before: n_msgs_early), and a changed term or vote counts as appended.
 * Returns the number of violations. */
static int check_contract(void)
{
	uint64_t appended = 0, synced = 0, term = 0, vote = 0, synced_term = 0, synced_vote = 0;
	int dirty = 0, bad = 0;
	for (int i = 0; i < n_evs; i++) {
		struct tev *e = &evs[i];
		switch (e->type) {
		case E_APPEND:
			appended = e->index; /* a rewrite truncates: the last one counts */
			dirty = 1;
			break;
		case E_HS:
			/* a commit index alone need not be fsync'd (etcd's MustSync) */
			term = e->term;
			vote = e->to;
			dirty |= term != synced_term || vote != synced_vote;
			break;
		case E_SYNC:
			synced = appended;
			synced_term = term;
			synced_vote = vote;
			dirty = 0;
			break;
		case E_SEND:
			if (dirty &&
			    (e->msg == RAFT_MSG_VOTE_RESP || e->msg == RAFT_MSG_APP_RESP)) {
				fprintf(stderr, "  event %d: response %d sent before the fsync\n",
					i, e->msg);
				bad++;
			}
			break;
		case E_COMMIT:
			if (e->index > synced) {
				fprintf(stderr,
					"  event %d: applied %" PRIu64 ", fsync'd %" PRIu64 "\n", i,
					e->index, synced);
				bad++;
			}
			break;
		default:
			break;
		}
	}
	return bad;
}

/* ------------------------------------------------------------------ */
/* Tests.                                                               */

/* Leader: appends go out before the fsync, the entry is applied only after
 * it was persisted and a quorum has it, the client is answered last. */
TEST(test_leader_order)
{
	reset();
	node *n = member_new(CLUSTER3, &fake_io, NULL);
	elect(n);
	struct client c;
	client_add(n, &c);
	watched = &c.w;
	uint32_t len;
	uint8_t *p = put_payload(n, c.w.id, 7, &len);
	uint64_t idx = 0;
	CHECK_EQ(raft_propose(n->r, p, len, &idx), 0);
	free(p);
	int mark = n_evs;
	CHECK_EQ(drain(n), 0);
	int app = find_msg(mark, RAFT_MSG_APP), append = find(mark, E_APPEND, idx),
	    sync = find(mark, E_SYNC, 0);
	CHECK(app >= 0 && append >= 0 && sync >= 0);
	CHECK(app < sync);    /* the early send: followers write while we do */
	CHECK(append < sync); /* persisted by this ready's one fsync */
	CHECK_EQ(evs[app].index, idx);
	CHECK_EQ(find(mark, E_APPLY, 7), -1); /* not committed yet */
	CHECK_EQ(c.w.state, W_WAITING);

	/* One follower has it: committed; applied, then acknowledged. */
	int mark2 = n_evs;
	step(n, (raft_msg){.type = RAFT_MSG_APP_RESP,
			   .from = id_of(n, "b"),
			   .term = raft_term(n->r),
			   .index = idx});
	CHECK_EQ(drain(n), 0);
	int apply = find(mark2, E_APPLY, 7), commit = find(mark2, E_COMMIT, idx);
	CHECK(apply > sync && commit > apply);
	CHECK_EQ(c.w.state, W_DONE);
	CHECK_EQ(c.resp.type, EF_MSG_PUT_RESP);
	CHECK_EQ(acked_early, 0);
	CHECK_EQ(fst.applied, idx);
	CHECK_EQ(check_contract(), 0);
	client_free(n, &c);
	member_free(n);
}

/* Leader, group commit: entries an earlier ready made durable are applied
 * (and their clients answered) before this ready's fsync, never entries
 * of this ready. */
TEST(test_leader_applies_durable_before_fsync)
{
	reset();
	node *n = member_new(CLUSTER3, &fake_io, NULL);
	elect(n);
	uint32_t len;
	uint64_t x = 0, y = 0;
	uint8_t *p = put_payload(n, 0, 11, &len);
	CHECK_EQ(raft_propose(n->r, p, len, &x), 0);
	free(p);
	CHECK_EQ(drain(n), 0); /* x persisted and sent */

	/* A follower acknowledges x while y arrives: one ready holds y to
	 * persist and x to apply. */
	int mark = n_evs;
	step(n, (raft_msg){.type = RAFT_MSG_APP_RESP,
			   .from = id_of(n, "c"),
			   .term = raft_term(n->r),
			   .index = x});
	p = put_payload(n, 0, 12, &len);
	CHECK_EQ(raft_propose(n->r, p, len, &y), 0);
	free(p);
	CHECK_EQ(drain(n), 0);
	int apply_x = find(mark, E_APPLY, 11), append_y = find(mark, E_APPEND, y),
	    sync_y = find(mark, E_SYNC, 0);
	CHECK(apply_x >= 0 && append_y >= 0 && sync_y > append_y);
	CHECK(apply_x < sync_y);               /* x's client need not wait for y's fsync */
	CHECK_EQ(find(mark, E_APPLY, 12), -1); /* y: not committed, not applied */
	CHECK_EQ(fst.applied, x);
	CHECK_EQ(check_contract(), 0);
	member_free(n);
}

/* Follower: a vote and an append response leave only after the fsync; the
 * entry it persisted is applied once the leader says it is committed, and
 * this member's own client (the origin) is answered after the apply. */
TEST(test_follower_order)
{
	reset();
	node *n = member_new(CLUSTER3, &fake_io, NULL);
	uint64_t b = id_of(n, "b");
	step(n, (raft_msg){.type = RAFT_MSG_VOTE, .from = b, .term = 2});
	CHECK_EQ(drain(n), 0);
	int hs = find(0, E_HS, 0), sync = find(0, E_SYNC, 0),
	    vote = find_msg(0, RAFT_MSG_VOTE_RESP);
	CHECK(hs >= 0 && sync > hs && vote > sync);
	CHECK(vote >= 0 && !evs[vote].reject);

	struct client c;
	client_add(n, &c);
	watched = &c.w;
	uint32_t len;
	uint8_t *p = put_payload(n, c.w.id, 9, &len);
	raft_entry ents[2] = {
		{.term = 2, .index = 1, .type = RAFT_ENTRY_EMPTY},
		{.term = 2, .index = 2, .type = RAFT_ENTRY_NORMAL, .len = len, .data = p}};
	int mark = n_evs;
	step(n,
	     (raft_msg){
		     .type = RAFT_MSG_APP, .from = b, .term = 2, .entries = ents, .n_entries = 2});
	CHECK_EQ(drain(n), 0);
	int append = find(mark, E_APPEND, 2), sync2 = find(mark, E_SYNC, 0),
	    resp = find_msg(mark, RAFT_MSG_APP_RESP);
	CHECK(append >= 0 && sync2 > append && resp > sync2);
	CHECK_EQ(evs[resp].index, 2);
	CHECK_EQ(find(mark, E_APPLY, 9), -1);
	CHECK_EQ(c.w.state, W_WAITING);

	int mark2 = n_evs;
	step(n, (raft_msg){.type = RAFT_MSG_APP,
			   .from = b,
			   .term = 2,
			   .index = 2,
			   .log_term = 2,
			   .commit = 2});
	CHECK_EQ(drain(n), 0);
	int apply = find(mark2, E_APPLY, 9), commit = find(mark2, E_COMMIT, 2);
	CHECK(apply >= 0 && commit > apply);
	CHECK_EQ(c.w.state, W_DONE);
	CHECK_EQ(acked_early, 0);
	CHECK_EQ(check_contract(), 0);
	client_free(n, &c);
	free(p);
	member_free(n);
}

/* A failed fsync stops the member: io->fatal is called, and nothing of the
 * ready is sent, applied or acknowledged after it. */
TEST(test_fsync_failure_stops)
{
	reset();
	node *n = member_new(CLUSTER3, &fake_io, NULL);
	uint64_t b = id_of(n, "b");
	raft_entry e1 = {.term = 2, .index = 1, .type = RAFT_ENTRY_EMPTY};
	step(n,
	     (raft_msg){
		     .type = RAFT_MSG_APP, .from = b, .term = 2, .entries = &e1, .n_entries = 1});
	CHECK_EQ(drain(n), 0);

	struct client c;
	client_add(n, &c);
	watched = &c.w;
	uint32_t len;
	uint8_t *p = put_payload(n, c.w.id, 5, &len);
	raft_entry e2 = {.term = 2, .index = 2, .type = RAFT_ENTRY_NORMAL, .len = len, .data = p};
	sync_fail = 1;
	int mark = n_evs;
	/* The others have it already: the leader says it is committed. */
	step(n, (raft_msg){.type = RAFT_MSG_APP,
			   .from = b,
			   .term = 2,
			   .index = 1,
			   .log_term = 2,
			   .commit = 2,
			   .entries = &e2,
			   .n_entries = 1});
	CHECK_EQ(drain(n), EF_E_IO);
	CHECK_EQ(n_fatal, 1);
	CHECK_EQ(n->failed, 1);
	int sync = find(mark, E_SYNC, 0), fatal = find(mark, E_FATAL, 0);
	CHECK(sync >= 0 && fatal > sync);
	for (int i = sync + 1; i < n_evs; i++)
		CHECK(evs[i].type == E_FATAL); /* nothing sent, applied or committed */
	CHECK_EQ(find_msg(mark, RAFT_MSG_APP_RESP), -1);
	CHECK_EQ(find(mark, E_APPLY, 5), -1);
	CHECK(fst.applied < 2);
	CHECK_EQ(c.w.state, W_WAITING);
	client_free(n, &c);
	free(p);
	member_free(n);
}

/* The real WAL, torn by a crash in the middle of the last write. */
static char base[256];

static long tear_pwrite(void *ud, int fd, const void *p, size_t n, int64_t off)
{
	/* a few bytes of the batch reach the disk, then the machine dies */
	if (pwrite(fd, p, n < 12 ? n : 12, off) < 0)
		return -1;
	errno = EIO;
	return -1;
}

static int real_fdatasync(void *ud, int fd)
{
	return fdatasync(fd);
}

/* Are the 12 bytes at off of the (only) segment file all zero?  Segments are
 * preallocated, so bytes past the last record read as zeros. */
static int wal_zero_at(const char *dir, uint64_t off)
{
	char path[512];
	snprintf(path, sizeof path, "%s/wal", dir);
	DIR *d = opendir(path);
	struct dirent *de;
	int zero = -1;
	while (d && (de = readdir(d)) != NULL) {
		size_t l = strlen(de->d_name);
		if (l > 4 && strcmp(de->d_name + l - 4, ".wal") == 0) {
			char f[1024];
			uint8_t b[12];
			snprintf(f, sizeof f, "%s/%s", path, de->d_name);
			int fd = open(f, O_RDONLY);
			if (fd >= 0 && pread(fd, b, sizeof b, (off_t)off) == (ssize_t)sizeof b) {
				zero = 1;
				for (size_t i = 0; i < sizeof b; i++)
					zero &= b[i] == 0;
			}
			if (fd >= 0)
				close(fd);
		}
	}
	if (d)
		closedir(d);
	return zero;
}

TEST(test_torn_tail_restart)
{
	reset();
	const node_io io = real_wal_io();
	char dir[300], err[300];
	snprintf(dir, sizeof dir, "%s/torn", base);
	CHECK_EQ(mkdir(dir, 0700), 0);
	wal *w = NULL;
	wal_recovered rec;
	memset(&rec, 0, sizeof rec);
	CHECK_EQ(wal_open(dir, 0, 0, &w, &rec, err, sizeof err), 0);
	node *n = member_new("a=tcp://127.0.0.1:1", &io, &rec);
	wal_recovered_free(&rec);
	n->w = w;
	raft_campaign(n->r);
	CHECK_EQ(drain(n), 0);
	CHECK_EQ(raft_role(n->r), RAFT_LEADER);
	for (int k = 1; k <= 5; k++) {
		uint32_t len;
		uint8_t *p = put_payload(n, 0, k, &len);
		CHECK_EQ(raft_propose(n->r, p, len, NULL), 0);
		free(p);
		CHECK_EQ(drain(n), 0);
	}
	uint64_t last = raft_last_index(n->r);
	CHECK_EQ(fst.applied, last);
	CHECK_EQ(fst.n_keys, 5);
	CHECK_EQ(wal_segment_count(w), 1);
	uint64_t whole = wal_write_offset(w);
	CHECK_EQ(wal_zero_at(dir, whole), 1);

	/* Key 6: the write of its record is torn, the fsync never happens. */
	struct client c;
	client_add(n, &c);
	watched = &c.w;
	wal_fs tear = {.pwrite = tear_pwrite, .fdatasync = real_fdatasync};
	wal_set_fs(&tear);
	uint32_t len;
	uint8_t *p = put_payload(n, c.w.id, 6, &len);
	CHECK_EQ(raft_propose(n->r, p, len, NULL), 0);
	free(p);
	CHECK_EQ(drain(n), EF_E_IO);
	wal_set_fs(NULL);
	CHECK_EQ(n_fatal, 1);
	CHECK_EQ(c.w.state, W_WAITING);
	CHECK_EQ(fst.applied, last);
	CHECK_EQ(fst.n_keys, 5);
	client_free(n, &c);
	member_free(n);
	wal_close(w);
	CHECK_EQ(wal_zero_at(dir, whole), 0); /* the torn bytes are on disk */

	/* Restart: the torn record is gone, the log ends at the last whole one,
	 * and the member goes on from there. */
	memset(&rec, 0, sizeof rec);
	CHECK_EQ(wal_open(dir, 0, 0, &w, &rec, err, sizeof err), 0);
	CHECK(rec.n_entries > 0);
	if (rec.n_entries)
		CHECK_EQ(rec.entries[rec.n_entries - 1].index, last);
	CHECK_EQ(wal_write_offset(w), whole); /* truncated to the last whole record */
	CHECK_EQ(wal_zero_at(dir, whole), 1);
	n = member_new("a=tcp://127.0.0.1:1", &io, &rec);
	wal_recovered_free(&rec);
	n->w = w;
	n_evs = 0;
	raft_campaign(n->r);
	CHECK_EQ(drain(n), 0);
	CHECK_EQ(raft_role(n->r), RAFT_LEADER);
	p = put_payload(n, 0, 7, &len);
	uint64_t idx = 0;
	CHECK_EQ(raft_propose(n->r, p, len, &idx), 0);
	free(p);
	CHECK_EQ(drain(n), 0);
	CHECK_EQ(idx, last + 2); /* after the new leader's empty entry */
	CHECK_EQ(fst.applied, idx);
	CHECK_EQ(fst.n_keys, 6); /* 1..5 once each, then 7; never 6 */
	CHECK_EQ(fst.keys[5], 7);
	CHECK_EQ(check_contract(), 0);
	member_free(n);
	wal_close(w);
}

int main(void)
{
	snprintf(base, sizeof base, "/tmp/test_node_loop.XXXXXX");
	if (!mkdtemp(base)) {
		perror("mkdtemp");
		return 1;
	}
	RUN(test_leader_order);
	RUN(test_leader_applies_durable_before_fsync);
	RUN(test_follower_order);
	RUN(test_fsync_failure_stops);
	RUN(test_torn_tail_restart);
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", base);
	TEST_EXIT();
}
