/*
 * compact.c - the store made durable off the loop, and the Raft log and WAL
 * compacted against it, etcd's way: the store is the state, so compacting
 * the log copies nothing.
 *
 * The store commits without fsync (MDB_NOSYNC: the WAL is the durable
 * record).  A sync thread calls store_sync_durable every SYNC_INTERVAL_MS
 * while entries are being applied; that call reads the applied index the
 * store last committed (recorded in the same LMDB transaction as the data)
 * and then msyncs the whole map, so when it returns that index is on disk,
 * and the thread publishes it in n->durable_index.  Why a second and not
 * etcd's 100 ms: the map is written in place (MDB_WRITEMAP), and every page
 * an msync cleans faults again on its next write, which the apply pays for;
 * at 100 ms apply batches took 2-3x longer under a 64-connection put load,
 * at one second the cost is small and the WAL is kept one second longer.
 *
 * Every --snapshot-count entries the loop compacts up to the durable index
 * D (node_log_compact): it buffers a snapshot marker (D, term) in the WAL,
 * tells Raft to drop its entries up to D, keeping `keep` of them for slow
 * followers, and the WAL segments below D - keep go after the next WAL
 * fsync has made the marker durable (wal_release_to refuses to pass a
 * marker that is not).  Nothing here writes or syncs on the loop thread.
 *
 * Why this is safe after a crash or power loss: the WAL then starts at the
 * marker D, and the store on disk holds every entry up to D (D was synced
 * before it was ever named), so the member replays the WAL from the store's
 * applied index, which is >= D, and nothing in between is missing.  A
 * follower behind D - keep gets a snapshot file, built from the store when
 * it is needed (snapshot.c), never here.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "../../common/clock.h"
#include "../log.h"
#include "node_int.h"

#define SYNC_INTERVAL_MS 1000

static void *syncer_main(void *arg)
{
	node *n = arg;
	uint64_t last = store_applied_index(n->st);

	atomic_store(&n->durable_index, last);
	pthread_mutex_lock(&n->mu);
	while (!n->syncer_stop) {
		int64_t until = clock_mono_ms() + SYNC_INTERVAL_MS;
		struct timespec ts = {until / 1000, (until % 1000) * 1000000};
		pthread_cond_timedwait(&n->syncer_cv, &n->mu, &ts);
		if (n->syncer_stop)
			break;
		pthread_mutex_unlock(&n->mu);
		if (store_applied_index(n->st) != last) {
			uint64_t applied;
			int64_t t0 = clock_mono_ns();
			if (store_sync_durable(n->st, &applied) == 0) {
				metrics_observe(n->m_store_sync,
						(double)(clock_mono_ns() - t0) / 1e9);
				atomic_store(&n->durable_index, applied);
				last = applied;
			} else {
				log_warn("store sync failed: the WAL is kept until one succeeds");
			}
		}
		pthread_mutex_lock(&n->mu);
	}
	pthread_mutex_unlock(&n->mu);
	return NULL;
}

int node_syncer_start(node *n)
{
	n->syncer_stop = 0;
	if (pthread_create(&n->syncer, NULL, syncer_main, n) != 0)
		return EF_E_NOMEM;
	n->syncer_running = 1;
	return 0;
}

void node_syncer_stop(node *n)
{
	if (!n->syncer_running)
		return;
	pthread_mutex_lock(&n->mu);
	n->syncer_stop = 1;
	pthread_cond_broadcast(&n->syncer_cv);
	pthread_mutex_unlock(&n->mu);
	pthread_join(n->syncer, NULL);
	n->syncer_running = 0;
}

void node_log_compact(node *n)
{
	uint64_t d = atomic_load(&n->durable_index);

	if (!n->cfg.snapshot_count || d < n->last_snap_index + n->cfg.snapshot_count)
		return;
	/* Raft may drop only what it handed out as committed; after a restart
	 * or a snapshot install the store can be ahead of that. */
	uint64_t idx = d < raft_commit_index(n->r) ? d : raft_commit_index(n->r);
	uint64_t term = raft_term_at(n->r, idx);
	if (idx <= n->last_snap_index || term == 0)
		return;
	int64_t t0 = clock_mono_ns();
	/* The configuration as of idx (voters and learners), as the core
	 * computed it for its own snapshot meta. */
	raft_snapshot_meta m;
	raft_conf_at(n->r, idx, &m);
	m.term = term;
	if (wal_mark_snapshot(n->w, &m) != 0) {
		log_warn("cannot mark snapshot %" PRIu64 " in the WAL", idx);
		return;
	}
	uint64_t keep = n->cfg.snapshot_count / 2;
	if (keep > 5000)
		keep = 5000;
	raft_compact(n->r, idx, keep);
	n->wal_release_at = idx > keep ? idx - keep : 0;
	n->last_snap_index = idx;
	metrics_observe(n->m_compaction, (double)(clock_mono_ns() - t0) / 1e9);
	log_info("compacted the log to durable index %" PRIu64 " (term %" PRIu64 ")", idx, term);
}
