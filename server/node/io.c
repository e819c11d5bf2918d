/*
 * io.c - the default node_io: the real WAL, store and peer transport.
 *
 * The loop calls storage and the network only through n->io (node_int.h),
 * so a test can substitute a simulated disk and network and check the order
 * of the host contract; etcfsd runs this table, whose entries are the wal_*
 * and store_* functions themselves (no wrapper on the hot path) plus the
 * peer send below and a fatal handler that aborts: a member whose WAL fsync
 * failed must not acknowledge anything, and restarting from disk is the
 * only safe way on.
 */
#include <stdlib.h>

#include "../log.h"
#include "node_int.h"

void node_io_send(node *n, raft_msg *msgs, size_t lo, size_t hi)
{
	ef_wbuf b;
	ef_wbuf_init(&b);
	for (size_t i = lo; i < hi; i++) {
		raft_msg *m = &msgs[i];
		if (m->type == RAFT_MSG_SNAP) {
			node_snapshot_send(n, m);
			continue;
		}
		ef_wbuf_reset(&b);
		if (raft_msg_encode(m, &b) != 0 || b.err)
			continue;
		if (peer_send(n->peers, m->to, PEER_RAFT, b.p, b.len) != 0)
			raft_report_unreachable(n->r, m->to);
	}
	ef_wbuf_free(&b);
}

static void io_fatal(node *n, const char *why)
{
	(void)n;
	log_error("%s", why);
	abort();
}

const node_io node_io_default = {
	.wal_append = wal_append,
	.wal_set_hard_state = wal_set_hard_state,
	.wal_sync = wal_sync,
	.store_applied_index = store_applied_index,
	.store_begin = store_begin,
	.store_apply = store_apply,
	.store_commit = store_commit,
	.store_revision = store_revision,
	.store_meta_put = store_meta_put,
	.store_lease_list = store_lease_list,
	.send = node_io_send,
	.fatal = io_fatal,
};
