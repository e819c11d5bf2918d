/*
 * start.c - a member's start-up (recovery) and shutdown.
 *
 * node_start() turns etcfsd's configuration into a running member, in the
 * order recovery needs: parse the member table, lock the data dir (one
 * etcfsd per dir: the pid goes into the lock file for the error message of
 * a second one), open the store, open the WAL (which truncates a torn tail
 * left by a crash mid-write), install the WAL's snapshot if the store is
 * older than it, rebuild the Raft core from the recovered hard state and
 * entries (committed entries the store already holds are skipped when they
 * come back for applying), start the peer transport, then the loop thread.
 * node_stop() stops the loop, answers every waiter, waits (bounded) for the
 * callers still inside and makes everything durable; memory is left to the
 * process exit that follows.  node_alloc() and node_raft_new() are the
 * pieces a test needs to build a loop-only member.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../../common/clock.h"
#include "../log.h"
#include "node_int.h"

static void hub_hdr(void *ud, ef_resp_header *h)
{
	node *n = ud;
	h->cluster_id = n->cluster_id;
	h->member_id = n->id;
	h->raft_term = __atomic_load_n(&n->term, __ATOMIC_RELAXED);
}

/* ------------------------------------------------------------------ */
/* Start and stop.                                                      */

static int mkdirs(const char *path)
{
	char tmp[1100];
	snprintf(tmp, sizeof tmp, "%s", path);
	for (char *p = tmp + 1; *p; p++)
		if (*p == '/') {
			*p = 0;
			if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
				return -1;
			*p = '/';
		}
	if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
		return -1;
	return 0;
}

node *node_alloc(const node_config *cfg)
{
	node *n = calloc(1, sizeof *n);
	if (!n)
		return NULL;
	n->cfg = *cfg;
	n->io = &node_io_default;
	n->lock_fd = -1;
	if (!n->cfg.heartbeat_ms)
		n->cfg.heartbeat_ms = 100;
	if (!n->cfg.election_ms)
		n->cfg.election_ms = 1000;
	if (!n->cfg.request_timeout_ms)
		n->cfg.request_timeout_ms = 5000;
	if (!n->cfg.max_txn_ops)
		n->cfg.max_txn_ops = EF_DEFAULT_MAX_TXN_OPS;
	if (!n->cfg.max_request_bytes)
		n->cfg.max_request_bytes = EF_DEFAULT_MAX_REQUEST_BYTES;
	if (!n->cfg.initial_cluster_token)
		n->cfg.initial_cluster_token = "etcd-cluster";
	if (!n->cfg.advertise_client_urls)
		n->cfg.advertise_client_urls = "";
	pthread_mutex_init(&n->mu, NULL);
	node_cond_init_mono(&n->cv);
	pthread_mutex_init(&n->lease_mu, NULL);
	pthread_mutex_init(&n->fwd_mu, NULL);
	pthread_mutex_init(&n->snap_build_mu, NULL);
	node_cond_init_mono(&n->syncer_cv);
	return n;
}

raft *node_raft_new(node *n, const wal_recovered *rec)
{
	raft_config rc = {.id = n->id,
			  .election_tick = n->cfg.election_ms / n->cfg.heartbeat_ms,
			  .heartbeat_tick = 1,
			  .max_inflight = 256,
			  .max_msg_bytes = 1u << 20,
			  .pre_vote = 1,
			  .check_quorum = 1,
			  .auto_promote = n->cfg.auto_promote};
	if (rc.election_tick < 2)
		rc.election_tick = 2;
	getrandom(&rc.seed, sizeof rc.seed, 0);
	if (n->joining) { /* members.c: what the leader taught it, if anything yet */
		rc.joining = 1;
		node_members_base_load(n, &rc);
	} else { /* the bootstrap configuration (--initial-cluster) */
		rc.n_voters = (uint32_t)n->n_base;
		for (int i = 0; i < n->n_base; i++)
			rc.voters[i] = n->base_ids[i];
	}
	return raft_new(&rc, &rec->hs, rec->snap.index ? &rec->snap : NULL, rec->entries,
			rec->n_entries);
}

int node_start(const node_config *cfg, node **out, char *err, size_t errlen)
{
	node *n = node_alloc(cfg);
	if (!n)
		return EF_E_NOMEM;

	int rv = node_members_parse(n, n->cfg.initial_cluster, err, errlen);
	if (rv)
		goto fail;
	snprintf(n->member_dir, sizeof n->member_dir, "%s/member", cfg->data_dir);
	char path[1200];
	/* --initial-cluster-state existing on an empty data dir: a member added
	 * at runtime ("member add").  It learns the cluster id from its first
	 * peer message (its --initial-cluster lists today's members, not the
	 * bootstrap ones the id hashes) and keeps it in member/joined. */
	snprintf(path, sizeof path, "%s/joined", n->member_dir);
	FILE *jf = fopen(path, "r");
	if (jf) {
		n->joining = 1;
		if (fscanf(jf, "%" SCNx64, &n->cluster_id) != 1)
			n->cluster_id = 0;
		fclose(jf);
	} else {
		snprintf(path, sizeof path, "%s/wal", n->member_dir);
		if (!cfg->cluster_state_new && access(path, F_OK) != 0) {
			n->joining = 1;
			n->cluster_id = 0;
		}
	}
	snprintf(path, sizeof path, "%s/snap", n->member_dir);
	if (mkdirs(path) != 0) {
		snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
		rv = EF_E_IO;
		goto fail;
	}
	snprintf(path, sizeof path, "%s/etcfsd.lock", cfg->data_dir);
	n->lock_fd = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
	if (n->lock_fd < 0 || flock(n->lock_fd, LOCK_EX | LOCK_NB) != 0) {
		char pid[32] = "?";
		if (n->lock_fd >= 0) {
			ssize_t k = pread(n->lock_fd, pid, sizeof pid - 1, 0);
			pid[k > 0 ? k : 0] = 0;
			pid[strcspn(pid, "\n")] = 0;
		}
		snprintf(err, errlen, "data dir %s is in use by another etcfsd (pid %s)",
			 cfg->data_dir, pid);
		rv = EF_E_LOCKED;
		goto fail;
	}
	char pidbuf[32];
	int pl = snprintf(pidbuf, sizeof pidbuf, "%d\n", (int)getpid());
	if (ftruncate(n->lock_fd, 0) != 0 || pwrite(n->lock_fd, pidbuf, (size_t)pl, 0) != pl)
		log_warn("cannot write pid into lock file");

	snprintf(path, sizeof path, "%s/db", n->member_dir);
	if (mkdirs(path) != 0) {
		snprintf(err, errlen, "cannot create %s", path);
		rv = EF_E_IO;
		goto fail;
	}
	store_opts so = {.dir = path,
			 .quota_bytes = cfg->quota_bytes ? cfg->quota_bytes * 2 : 0,
			 .max_txn_ops = n->cfg.max_txn_ops};
	if (so.quota_bytes && so.quota_bytes < (64ull << 20))
		so.quota_bytes = 64ull << 20;
	if ((rv = store_open(&so, &n->st, err, errlen)) != 0)
		goto fail;

	wal_recovered rec;
	memset(&rec, 0, sizeof rec);
	if ((rv = wal_open(n->member_dir, n->joining ? 0 : n->cluster_id, n->id, &n->w, &rec, err,
			   errlen)) != 0)
		goto fail;
	/* The store must node_hold at least the snapshot the WAL starts from. */
	if (rec.snap.index > store_applied_index(n->st)) {
		log_info("store is at index %" PRIu64 ", WAL starts after snapshot %" PRIu64
			 ": installing it",
			 store_applied_index(n->st), rec.snap.index);
		n->hub = watchhub_new(n->st, hub_hdr, n);
		if ((rv = node_snapshot_install(n, &rec.snap)) != 0) {
			snprintf(err, errlen, "cannot install snapshot %" PRIu64 " from %s/snap",
				 rec.snap.index, n->member_dir);
			wal_recovered_free(&rec);
			goto fail;
		}
	}
	n->last_snap_index = rec.snap.index;
	if (n->joining && rec.hs.term == 0 && rec.n_entries == 0 && rec.snap.index == 0)
		log_info("--initial-cluster-state existing with an empty data dir: joining the "
			 "running cluster as member %016" PRIx64,
			 n->id);
	node_members_load(n); /* the table as of the store's applied index */

	n->synced_hs = rec.hs;
	n->r = node_raft_new(n, &rec);
	wal_recovered_free(&rec);
	if (!n->r) {
		snprintf(err, errlen, "cannot start raft");
		rv = EF_E_NOMEM;
		goto fail;
	}
	if (raft_removed(n->r)) {
		/* Its log holds its own removal: rejoining on this data would
		 * bring back a member the cluster forgot (etcd refuses too). */
		snprintf(err, errlen,
			 "the member has been permanently removed from the cluster; its data in %s "
			 "cannot rejoin: add it again with 'member add' and start it on an empty "
			 "--data-dir with --initial-cluster-state existing",
			 cfg->data_dir);
		rv = EF_E_INVALID;
		goto fail;
	}
	pthread_mutex_lock(&n->mu);
	n->applied_index = store_applied_index(n->st);
	n->term = raft_term(n->r);
	pthread_mutex_unlock(&n->mu);
	if (!n->hub)
		n->hub = watchhub_new(n->st, hub_hdr, n);
	if (n->hub && cfg->watch_progress_notify_interval_ms)
		watchhub_set_progress_interval_ms(n->hub, cfg->watch_progress_notify_interval_ms);
	node_members_load_attrs(n);
	n->scratch = ef_arena_new();
	node_metrics_register(n);

	if (n->n_members > 1 || cfg->listen_peer_urls || n->joining) {
		struct member *self = node_member_by_id(n, n->id);
		const char *listen = cfg->listen_peer_urls ? cfg->listen_peer_urls : self->peer_url;
		char lbuf[600];
		if (strncmp(listen, "http://", 7) == 0) {
			snprintf(lbuf, sizeof lbuf, "tcp://%s", listen + 7);
			listen = lbuf;
		}
		if ((rv = peer_start(listen, n->cluster_id, n->id,
				     n->cfg.max_request_bytes + (4u << 20), node_on_peer, n,
				     &n->peers, err, errlen)) != 0) {
			rv = EF_E_INVALID;
			goto fail;
		}
		for (int i = 0; i < n->n_members; i++)
			if (n->members[i].id != n->id && !n->members[i].gone)
				peer_add(n->peers, n->members[i].id, n->members[i].peer_url);
	}
	if (n->n_members == 1 && !n->joining)
		raft_campaign(n->r);
	if (node_syncer_start(n) != 0 || pthread_create(&n->loop, NULL, node_loop_main, n) != 0) {
		node_syncer_stop(n);
		rv = EF_E_NOMEM;
		goto fail;
	}
	log_info("member %016" PRIx64 " (%s) of cluster %016" PRIx64
		 " started, %d member(s), applied index %" PRIu64,
		 n->id, n->cfg.name, n->cluster_id, n->n_members, store_applied_index(n->st));
	*out = n;
	return 0;
fail:
	if (n->peers)
		peer_stop(n->peers);
	if (n->w)
		wal_close(n->w);
	if (n->st)
		store_close(n->st);
	if (n->lock_fd >= 0)
		close(n->lock_fd);
	free(n);
	return rv ? rv : EF_E_INVALID;
}

void node_stop(node *n)
{
	pthread_mutex_lock(&n->mu);
	n->stopping = 1;
	pthread_cond_broadcast(&n->cv);
	pthread_mutex_unlock(&n->mu);
	pthread_join(n->loop, NULL);
	node_syncer_stop(n);
	/* The loop is gone: answer every waiter it will never wake, then wait
	 * (bounded) for the callers to leave. */
	pthread_mutex_lock(&n->mu);
	for (int b = 0; b < 1024; b++) {
		for (struct waiter *w = n->wt[b]; w; w = w->next) {
			if (w->resp)
				node_set_error(w->resp, w->a, EF_E_STOPPING, NULL);
			w->err = EF_E_STOPPING;
			w->state = W_DONE;
			pthread_cond_signal(&w->cv);
		}
		n->wt[b] = NULL;
	}
	int64_t until = clock_mono_ms() + 3000;
	while (n->inflight > 0 && clock_mono_ms() < until) {
		struct timespec ts = {until / 1000, (until % 1000) * 1000000};
		pthread_cond_timedwait(&n->cv, &n->mu, &ts);
	}
	int stuck = n->inflight;
	pthread_mutex_unlock(&n->mu);
	if (stuck)
		log_warn("%d request(s) still running at shutdown", stuck);
	/* Make everything durable.  The objects stay allocated: connection
	 * threads may still node_hold watch streams and the process exits next, so
	 * nothing is freed under them (the store needs no close to be
	 * consistent; the WAL is synced). */
	if (n->peers)
		peer_stop(n->peers);
	store_sync(n->st);
	wal_sync(n->w);
	close(n->lock_fd);
}
