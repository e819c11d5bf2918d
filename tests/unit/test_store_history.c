/*
 * test_store_history.c - the store across reopen, snapshot and history:
 * persistence, snapshots, binary and large values, the space quota, a
 * random model check over many revisions, concurrent readers.
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
