/*
 * concurrency.c - "etcfsctl lock" and "etcfsctl elect": etcd's concurrency
 * recipes (clientv3/concurrency Mutex and Election), client side only, over
 * the plain client library.
 *
 * A session is a lease (--ttl seconds) kept alive by a thread every TTL/3.
 * To queue, a client writes NAME/<lease hex> with one transaction
 * "if create_revision(key) == 0 then put key (with the lease) else get key",
 * which also reads the current owner (the key of NAME/ with the lowest
 * create_revision).  If we are not the owner we wait only for our direct
 * predecessor (the key with the highest create_revision below ours) to be
 * deleted, then look again: each release wakes exactly one waiter, never the
 * whole queue (no thundering herd).  Keys live on the session lease, so a
 * crashed holder releases when its lease expires.  Unlocking deletes the
 * key; leaving (SIGINT/SIGTERM or normal exit) revokes the lease.
 *
 * Signals are blocked in every thread and taken by a dedicated thread that
 * sets `g_interrupted`; every wait below polls it, so Ctrl-C while queued
 * or while holding releases cleanly.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../common/clock.h"
#include "ctl.h"

static volatile sig_atomic_t g_interrupted;
static volatile int g_session_lost;
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;

struct session {
	int64_t lease;
	int64_t ttl;
	pthread_t ka;
	int stop; /* under g_mu */
};

static void wake(void)
{
	pthread_mutex_lock(&g_mu);
	pthread_cond_broadcast(&g_cv);
	pthread_mutex_unlock(&g_mu);
}

static void *signal_thread(void *arg)
{
	sigset_t *set = arg;
	int sig;
	if (sigwait(set, &sig) == 0) {
		g_interrupted = 1;
		wake();
	}
	return NULL;
}

static void setup_signals(void)
{
	static sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	pthread_t t;
	pthread_create(&t, NULL, signal_thread, &set);
	pthread_detach(t);
}

/* Wait on g_cv for up to ms (called with g_mu held). */
static void timed_wait(int ms)
{
	struct timespec ts = clock_after_ms(CLOCK_REALTIME, ms);
	pthread_cond_timedwait(&g_cv, &g_mu, &ts);
}

static void *keepalive_thread(void *arg)
{
	struct session *s = arg;
	int64_t period_ms = s->ttl * 1000 / 3;
	if (period_ms < 300)
		period_ms = 300;
	pthread_mutex_lock(&g_mu);
	while (!s->stop) {
		timed_wait((int)period_ms);
		if (s->stop)
			break;
		pthread_mutex_unlock(&g_mu);
		ef_arena *ar = ctl_arena();
		ef_msg req = {.type = EF_MSG_LEASE_KEEPALIVE}, resp;
		req.u.lease.id = s->lease;
		int rv = efc_call(ctl_client(), &req, &resp, ar);
		if (rv == EF_E_LEASE_NOT_FOUND || (rv == 0 && resp.u.lease_resp.ttl <= 0)) {
			g_session_lost = 1;
			wake();
		}
		ef_arena_free(ar);
		pthread_mutex_lock(&g_mu);
	}
	pthread_mutex_unlock(&g_mu);
	return NULL;
}

static void session_open(struct session *s, int64_t ttl)
{
	ef_arena *ar = ctl_arena();
	ef_msg req = {.type = EF_MSG_LEASE_GRANT}, resp;
	req.u.lease.ttl = ttl;
	ctl_call(&req, &resp, ar);
	s->lease = resp.u.lease_resp.id;
	s->ttl = resp.u.lease_resp.ttl > 0 ? resp.u.lease_resp.ttl : ttl;
	s->stop = 0;
	ef_arena_free(ar);
	pthread_create(&s->ka, NULL, keepalive_thread, s);
}

/* Stop the keep-alive and revoke the lease (deletes every key on it). */
static void session_close(struct session *s)
{
	pthread_mutex_lock(&g_mu);
	s->stop = 1;
	pthread_cond_broadcast(&g_cv);
	pthread_mutex_unlock(&g_mu);
	pthread_join(s->ka, NULL);
	ef_arena *ar = ctl_arena();
	ef_msg req = {.type = EF_MSG_LEASE_REVOKE}, resp;
	req.u.lease.id = s->lease;
	efc_call(ctl_client(), &req, &resp, ar); /* best effort: it expires anyway */
	ef_arena_free(ar);
}

static volatile int g_deleted;

static void delete_cb(void *ud, const ef_watch_resp *w, const ef_resp_header *h)
{
	for (uint32_t i = 0; i < w->n_events; i++)
		if (w->events[i].type == EF_EVENT_DELETE)
			g_deleted = 1;
	if (w->canceled)
		g_deleted = 1; /* look again */
	if (g_deleted)
		wake();
}

/* Block until no key under pfx has create_revision <= max_rev (etcd's
 * waitDeletes).  Returns 0, or -1 when interrupted or the session is gone. */
static int wait_deletes(const char *pfx, int64_t max_rev)
{
	for (;;) {
		ef_arena *ar = ctl_arena();
		ef_msg req = {.type = EF_MSG_RANGE}, resp;
		req.u.range.key = ef_str(pfx);
		req.u.range.range_end = ef_prefix_end(ar, req.u.range.key);
		req.u.range.max_create_revision = max_rev;
		req.u.range.sort_order = EF_SORT_DESCEND;
		req.u.range.sort_target = EF_SORT_CREATE;
		req.u.range.limit = 1;
		ctl_call(&req, &resp, ar);
		if (resp.u.range_resp.n_kvs == 0) {
			ef_arena_free(ar);
			return 0;
		}
		/* Watch only the predecessor, from just after what we read. */
		ef_watch_create_req wr = {0};
		wr.key = resp.u.range_resp.kvs[0].key;
		wr.start_revision = resp.hdr.revision + 1;
		wr.no_put = 1;
		g_deleted = 0;
		efc_watch *w;
		if (efc_watch_start(ctl_client(), &wr, delete_cb, NULL, &w) != 0)
			ctl_die_rv(EF_E_UNAVAILABLE);
		ef_arena_free(ar);
		pthread_mutex_lock(&g_mu);
		while (!g_deleted && !g_interrupted && !g_session_lost)
			timed_wait(200);
		pthread_mutex_unlock(&g_mu);
		efc_watch_stop(w);
		if (g_interrupted || g_session_lost)
			return -1;
	}
}

/* Queue under pfx with value val; on return *key_out is our key and
 * *rev_out its create revision.  Returns 0 once we are the owner, -1 when
 * interrupted. */
static int acquire(struct session *s, const char *name, const char *val, char **key_out,
		   int64_t *rev_out, ef_resp_header *hdr_out)
{
	char *pfx, *key;
	if (asprintf(&pfx, "%s/", name) < 0 ||
	    asprintf(&key, "%s%llx", pfx, (unsigned long long)s->lease) < 0)
		ctl_die(CTL_EXIT_ERROR, "out of memory");
	ef_arena *ar = ctl_arena();
	ef_msg req = {.type = EF_MSG_TXN}, resp;
	ef_compare cmp = {.result = EF_CMP_EQUAL, .target = EF_CMP_CREATE, .key = ef_str(key)};
	ef_op put = {.type = EF_OP_PUT};
	put.u.put.key = ef_str(key);
	put.u.put.value = ef_str(val);
	put.u.put.lease = s->lease;
	ef_op get_mine = {.type = EF_OP_RANGE};
	get_mine.u.range.key = ef_str(key);
	ef_op get_owner = {.type = EF_OP_RANGE};
	get_owner.u.range.key = ef_str(pfx);
	get_owner.u.range.range_end = ef_prefix_end(ar, get_owner.u.range.key);
	get_owner.u.range.sort_order = EF_SORT_ASCEND;
	get_owner.u.range.sort_target = EF_SORT_CREATE;
	get_owner.u.range.limit = 1;
	ef_op succ[2] = {put, get_owner}, fail[2] = {get_mine, get_owner};
	req.u.txn.cmp = &cmp;
	req.u.txn.n_cmp = 1;
	req.u.txn.success = succ;
	req.u.txn.n_success = 2;
	req.u.txn.failure = fail;
	req.u.txn.n_failure = 2;
	ctl_call(&req, &resp, ar);
	const ef_txn_resp *t = &resp.u.txn_resp;
	int64_t my_rev = resp.hdr.revision;
	if (!t->succeeded && t->n_responses > 0 && t->responses[0].u.range.n_kvs > 0)
		my_rev = t->responses[0].u.range.kvs[0].create_revision;
	int64_t owner_rev = 0;
	if (t->n_responses > 1 && t->responses[1].u.range.n_kvs > 0)
		owner_rev = t->responses[1].u.range.kvs[0].create_revision;
	*hdr_out = resp.hdr;
	ef_arena_free(ar);
	int rv = 0;
	if (owner_rev != my_rev)
		rv = wait_deletes(pfx, my_rev - 1);
	free(pfx);
	*key_out = key;
	*rev_out = my_rev;
	return rv;
}

static void delete_key(const char *key)
{
	ef_arena *ar = ctl_arena();
	ef_msg req = {.type = EF_MSG_DELETE}, resp;
	req.u.del.key = ef_str(key);
	efc_call(ctl_client(), &req, &resp, ar);
	ef_arena_free(ar);
}

/* Run argv with extra environment; returns its exit status (128+sig when
 * killed).  SIGINT/SIGTERM received meanwhile are forwarded to it. */
static int run_command(char **argv, char **env, int nenv)
{
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0)
		ctl_die(CTL_EXIT_ERROR, "fork: %s", strerror(errno));
	if (pid == 0) {
		for (int i = 0; i < nenv; i++)
			putenv(env[i]);
		sigset_t none;
		sigemptyset(&none);
		pthread_sigmask(SIG_SETMASK, &none, NULL);
		execvp(argv[0], argv);
		fprintf(stderr, "Error: exec: \"%s\": %s\n", argv[0], strerror(errno));
		_exit(CTL_EXIT_ERROR);
	}
	int st, forwarded = 0;
	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			break;
		if ((g_interrupted || g_session_lost) && !forwarded) {
			kill(pid, SIGTERM);
			forwarded = 1;
		}
		pthread_mutex_lock(&g_mu);
		timed_wait(50);
		pthread_mutex_unlock(&g_mu);
	}
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	return 128 + WTERMSIG(st);
}

static void wait_interrupt(void)
{
	pthread_mutex_lock(&g_mu);
	while (!g_interrupted && !g_session_lost)
		timed_wait(500);
	pthread_mutex_unlock(&g_mu);
}

int cmd_lock(int argc, char **argv)
{
	int64_t ttl = 60;
	const struct ctl_flag flags[] = {{"ttl", 0, F_INT, &ttl}, {NULL, 0, 0, NULL}};
	struct ctl_args a;
	ctl_parse(argc, argv, flags, &a);
	/* lock NAME CMD ARGS... and lock NAME -- CMD ARGS... both work */
	char **cmd = NULL;
	int ncmd = 0;
	if (a.npos > 1) {
		cmd = &a.pos[1];
		ncmd = a.npos - 1;
		for (int i = 0; i < a.nexec; i++)
			cmd[ncmd++] = a.exec[i];
	} else if (a.nexec) {
		cmd = a.exec;
		ncmd = a.nexec;
	}
	if (a.npos < 1)
		ctl_die(CTL_EXIT_BAD_ARGS,
			"lock takes a lock name argument and an optional command to execute");
	if (cmd)
		cmd[ncmd] = NULL;
	if (ttl <= 0)
		ctl_die(CTL_EXIT_BAD_ARGS, "--ttl must be positive");
	setup_signals();
	struct session s;
	session_open(&s, ttl);
	char *key;
	int64_t rev;
	ef_resp_header hdr;
	int rc = 0;
	if (acquire(&s, a.pos[0], "", &key, &rev, &hdr) != 0) {
		session_close(&s);
		if (g_session_lost)
			ctl_die(CTL_EXIT_ERROR, "session expired while waiting for the lock");
		return 0;
	}
	if (cmd) {
		char *env[2];
		if (asprintf(&env[0], "ETCD_LOCK_KEY=%s", key) < 0 ||
		    asprintf(&env[1], "ETCD_LOCK_REV=%lld", (long long)rev) < 0)
			ctl_die(CTL_EXIT_ERROR, "out of memory");
		rc = run_command(cmd, env, 2);
	} else {
		puts(key);
		fflush(stdout);
		wait_interrupt();
	}
	delete_key(key);
	session_close(&s);
	if (g_session_lost && !g_interrupted)
		ctl_die(CTL_EXIT_ERROR, "session expired: the lock was lost");
	free(key);
	free(a.pos);
	return rc;
}

/* elect -l: print the leader's key and value each time it changes. */
static volatile int g_changed;
static void change_cb(void *ud, const ef_watch_resp *w, const ef_resp_header *h)
{
	if (w->n_events || w->canceled) {
		g_changed = 1;
		wake();
	}
}

static int observe(const char *name)
{
	char *pfx;
	if (asprintf(&pfx, "%s/", name) < 0)
		ctl_die(CTL_EXIT_ERROR, "out of memory");
	ef_watch_create_req wr = {0};
	ef_arena *war = ctl_arena();
	wr.key = ef_str(pfx);
	wr.range_end = ef_prefix_end(war, wr.key);
	efc_watch *w;
	if (efc_watch_start(ctl_client(), &wr, change_cb, NULL, &w) != 0)
		ctl_die(CTL_EXIT_ERROR, "%s", efc_errmsg());
	char *last = NULL;
	size_t last_len = 0;
	int64_t last_mod = -1;
	while (!g_interrupted) {
		g_changed = 0;
		ef_arena *ar = ctl_arena();
		ef_msg req = {.type = EF_MSG_RANGE}, resp;
		req.u.range.key = ef_str(pfx);
		req.u.range.range_end = ef_prefix_end(ar, req.u.range.key);
		req.u.range.sort_order = EF_SORT_ASCEND;
		req.u.range.sort_target = EF_SORT_CREATE;
		req.u.range.limit = 1;
		int rv = efc_call(ctl_client(), &req, &resp, ar);
		if (rv == 0 && resp.u.range_resp.n_kvs) {
			const ef_kv *kv = &resp.u.range_resp.kvs[0];
			if (kv->mod_revision != last_mod || kv->key.n != last_len ||
			    (last && memcmp(last, kv->key.p, last_len) != 0)) {
				ctl_print_kv(kv, 0);
				fflush(stdout);
				free(last);
				last = malloc(kv->key.n + 1);
				memcpy(last, kv->key.p, kv->key.n);
				last_len = kv->key.n;
				last_mod = kv->mod_revision;
			}
		}
		ef_arena_free(ar);
		pthread_mutex_lock(&g_mu);
		while (!g_changed && !g_interrupted)
			timed_wait(500);
		pthread_mutex_unlock(&g_mu);
	}
	efc_watch_stop(w);
	ef_arena_free(war);
	free(last);
	free(pfx);
	return 0;
}

int cmd_elect(int argc, char **argv)
{
	int64_t ttl = 60;
	int listen = 0;
	const struct ctl_flag flags[] = {
		{"ttl", 0, F_INT, &ttl}, {"listen", 'l', F_BOOL, &listen}, {NULL, 0, 0, NULL}};
	struct ctl_args a;
	ctl_parse(argc, argv, flags, &a);
	if (a.npos != 1 && a.npos != 2)
		ctl_die(CTL_EXIT_BAD_ARGS,
			"elect takes one election name argument and an optional proposal argument");
	if (!listen && a.npos != 2)
		ctl_die(CTL_EXIT_BAD_ARGS, "no proposal argument but -l not set");
	setup_signals();
	if (listen)
		return observe(a.pos[0]);
	if (ttl <= 0)
		ctl_die(CTL_EXIT_BAD_ARGS, "--ttl must be positive");
	struct session s;
	session_open(&s, ttl);
	char *key;
	int64_t rev;
	ef_resp_header hdr;
	if (acquire(&s, a.pos[0], a.pos[1], &key, &rev, &hdr) != 0) {
		session_close(&s);
		if (g_session_lost)
			ctl_die(CTL_EXIT_ERROR, "session expired while campaigning");
		return 0;
	}
	/* Our key may pre-date this campaign with another value: proclaim. */
	ef_arena *ar = ctl_arena();
	ef_msg req = {.type = EF_MSG_PUT}, resp;
	req.u.put.key = ef_str(key);
	req.u.put.value = ef_str(a.pos[1]);
	req.u.put.lease = s.lease;
	ctl_call(&req, &resp, ar);
	ef_arena_free(ar);
	puts(key);
	puts(a.pos[1]);
	fflush(stdout);
	wait_interrupt();
	delete_key(key); /* resign */
	session_close(&s);
	int lost = g_session_lost && !g_interrupted;
	free(key);
	free(a.pos);
	if (lost)
		ctl_die(CTL_EXIT_ERROR, "session expired: leadership lost");
	return 0;
}
