/*
 * test_store_snap.c - the store's side of snapshots without stalls:
 * store_sync_durable names an index that was committed before the sync,
 * store_snapshot_write copies a consistent store while writes go on, and
 * gives up (EF_E_NO_SPACE) when the data file grows past its bound while
 * the copy's read transaction pins its pages.
 */
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "../../server/store.h"
#include "test.h"

static ef_arena *A;
static char DIR_[256];
static uint64_t IDX;

static store *open_at(const char *dir, uint64_t quota)
{
	store_opts o = {dir, quota, 4};
	char err[256] = "";
	store *s = NULL;

	if (store_open(&o, &s, err, sizeof(err)))
		fprintf(stderr, "store_open(%s): %s\n", dir, err);
	return s;
}

static void rm_rf(const char *dir)
{
	char cmd[1024];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s.other' '%s.snap'", dir, dir, dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup of %s failed\n", dir);
}

static store *fresh(uint64_t quota)
{
	snprintf(DIR_, sizeof(DIR_), "/tmp/test_store_snap.XXXXXX");
	if (!mkdtemp(DIR_))
		abort();
	IDX = 0;
	if (!A)
		A = ef_arena_new();
	return open_at(DIR_, quota);
}

/* One batch of n puts of key prefix-i with len bytes of random data each. */
static int put_batch(store *s, const char *prefix, int n, size_t len)
{
	static uint8_t *val;
	char key[64];
	int rc = store_begin(s);

	if (!val && !(val = malloc(1 << 20)))
		return -1;
	for (int i = 0; i < n && !rc; i++) {
		ef_msg m, r;

		if (getrandom(val, len, 0) != (ssize_t)len)
			return -1;
		snprintf(key, sizeof(key), "%s-%d", prefix, i);
		memset(&m, 0, sizeof(m));
		m.type = EF_MSG_PUT;
		m.u.put.key = ef_str(key);
		m.u.put.value = (ef_buf){val, (uint32_t)len};
		rc = store_apply(s, 1, &m, &r, A, NULL);
		ef_arena_reset(A);
	}
	return rc ? rc : store_commit(s, ++IDX);
}

TEST(sync_durable_names_a_committed_index)
{
	store *s = fresh(64u << 20);
	uint64_t applied = 99;

	CHECK_EQ(put_batch(s, "a", 3, 100), 0);
	CHECK_EQ(put_batch(s, "b", 3, 100), 0);
	CHECK_EQ(store_sync_durable(s, &applied), 0);
	CHECK_EQ(applied, 2);
	/* a reopened store holds at least that index */
	store_close(s);
	s = open_at(DIR_, 64u << 20);
	CHECK(s != NULL);
	if (s) {
		CHECK(store_applied_index(s) >= 2);
		store_close(s);
	}
	rm_rf(DIR_);
}

struct copy_job {
	store *s;
	int fd, rc;
};

static void *copy_main(void *arg)
{
	struct copy_job *j = arg;

	j->rc = store_snapshot_write(j->s, j->fd);
	close(j->fd);
	return NULL;
}

TEST(copy_gives_up_when_pinned_pages_grow_the_file)
{
	store *s = fresh(256u << 20);
	int p[2];
	pthread_t t;
	struct copy_job j = {.s = s};
	char buf[1 << 16];
	struct pollfd pf;

	CHECK_EQ(put_batch(s, "seed", 50, 1000), 0);
	CHECK_EQ(pipe(p), 0);
	j.fd = p[1];
	CHECK_EQ(pthread_create(&t, NULL, copy_main, &j), 0);
	/* The copy has its read transaction once its first bytes arrive; we
	 * stop reading, so it stays pinned while we write 80 MB. */
	pf.fd = p[0];
	pf.events = POLLIN;
	CHECK_EQ(poll(&pf, 1, 10000), 1);
	for (int b = 0; b < 40; b++)
		CHECK_EQ(put_batch(s, "big", 20, 100000), 0);
	for (;;) {
		ssize_t n = read(p[0], buf, sizeof(buf));

		if (n <= 0)
			break;
	}
	pthread_join(t, NULL);
	close(p[0]);
	CHECK_EQ(j.rc, EF_E_NO_SPACE);

	/* Without writes meanwhile a copy completes and installs. */
	char snap[300], other[300];
	snprintf(snap, sizeof(snap), "%s.snap", DIR_);
	snprintf(other, sizeof(other), "%s.other", DIR_);
	int fd = open(snap, O_CREAT | O_TRUNC | O_WRONLY, 0600);
	CHECK(fd >= 0);
	CHECK_EQ(store_snapshot_write(s, fd), 0);
	close(fd);
	store *o = open_at(other, 256u << 20);
	CHECK(o != NULL);
	if (o) {
		CHECK_EQ(store_snapshot_install(o, snap), 0);
		CHECK_EQ(store_applied_index(o), IDX);
		CHECK_EQ(store_key_count(o), store_key_count(s));
		store_close(o);
	}
	store_close(s);
	rm_rf(DIR_);
}

TEST(copy_while_writes_go_on_is_consistent)
{
	store *s = fresh(256u << 20);
	int p[2];
	pthread_t t;
	struct copy_job j = {.s = s};
	char snap[300], other[300];

	CHECK_EQ(put_batch(s, "seed", 200, 1000), 0);
	uint64_t at = IDX;
	int64_t keys = store_key_count(s);
	snprintf(snap, sizeof(snap), "%s.snap", DIR_);
	snprintf(other, sizeof(other), "%s.other", DIR_);
	CHECK_EQ(pipe(p), 0);
	j.fd = p[1];
	CHECK_EQ(pthread_create(&t, NULL, copy_main, &j), 0);
	/* Read one chunk (the copy holds its transaction), then write more,
	 * then let the copy finish into a file. */
	char buf[1 << 16];
	int out = open(snap, O_CREAT | O_TRUNC | O_WRONLY, 0600);
	CHECK(out >= 0);
	ssize_t n = read(p[0], buf, sizeof(buf));
	CHECK(n > 0);
	CHECK_EQ(write(out, buf, (size_t)n), n);
	CHECK_EQ(put_batch(s, "later", 10, 1000), 0);
	while ((n = read(p[0], buf, sizeof(buf))) > 0)
		CHECK_EQ(write(out, buf, (size_t)n), n);
	close(out);
	pthread_join(t, NULL);
	close(p[0]);
	CHECK_EQ(j.rc, 0);
	store *o = open_at(other, 256u << 20);
	CHECK(o != NULL);
	if (o) {
		CHECK_EQ(store_snapshot_install(o, snap), 0);
		/* the state of one transaction: before the later writes */
		CHECK_EQ(store_applied_index(o), at);
		CHECK_EQ(store_key_count(o), keys);
		store_close(o);
	}
	store_close(s);
	rm_rf(DIR_);
}

int main(void)
{
	RUN(sync_durable_names_a_committed_index);
	RUN(copy_gives_up_when_pinned_pages_grow_the_file);
	RUN(copy_while_writes_go_on_is_consistent);
	ef_arena_free(A);
	TEST_EXIT();
}
