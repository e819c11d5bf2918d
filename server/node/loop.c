/*
 * loop.c - the Raft host loop: the one thread that touches the Raft core,
 * the WAL and the store's write side.
 *
 * Once per iteration the loop
 *   1. drains the inbox: proposals (many per iteration: the batch), received
 *      peer messages, snapshot outcomes, leader transfers;
 *   2. ticks Raft when a heartbeat interval passed; on the leader, proposes
 *      revocation of expired leases; publishes this member's client URLs;
 *   3. hands held proposals to Raft once there is a leader, starts the next
 *      ReadIndex round;
 *   4. runs every Raft ready through the contract of raft.h, in order
 *      (node_loop_ready): install a received snapshot; send the messages
 *      that claim nothing about this ready's persistence (the leader's
 *      appends go out before its own fsync, thesis 10.2.1); apply what an
 *      earlier ready already made durable; append entries + hard state to the
 *      WAL and fsync ONCE (group commit); send the rest (votes, append
 *      responses); apply the committed entries to the store in one write
 *      transaction that also records the applied index; acknowledge their
 *      waiters, publish the events to the watch hub, release reads; advance;
 *   5. every --snapshot-count entries, compacts the Raft log and the WAL up
 *      to the index the sync thread made durable in the store (compact.c):
 *      no copy, no fsync here; snapshot files are built only when a
 *      follower needs one, on its sender thread (snapshot.c).
 * The WAL, store and transport calls go through n->io (node_int.h), so
 * tests/unit/test_node_loop.c runs this very code against a fake disk and
 * checks the order; a failure the member cannot survive goes to io->fatal
 * (abort() in etcfsd) and nothing after it is sent, applied or acknowledged.
 * This file must not grow request handling: it is the contract and nothing
 * else.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../common/clock.h"
#include "../log.h"
#include "node_int.h"

/* ------------------------------------------------------------------ */
/* The loop.                                                            */

static void release_reads(node *n) /* mu held */
{
	struct read_batch *b = &n->cur;
	if (!b->ctx || !b->index || n->applied_index < b->index)
		return;
	for (size_t i = 0; i < b->n; i++) {
		struct waiter *w = node_waiter_find(n, b->waiters[i]);
		if (w) {
			node_waiter_del(n, w);
			w->state = W_DONE;
			w->err = 0;
			pthread_cond_signal(&w->cv);
		}
	}
	b->n = 0;
	b->ctx = 0;
	b->index = 0;
}

static void issue_reads(node *n) /* mu held, loop thread */
{
	int64_t now = clock_mono_ms();
	if (n->cur.ctx && now - n->cur.issued_ms > n->cfg.election_ms) {
		/* lost (leader change): merge into the next round */
		for (size_t i = 0; i < n->cur.n; i++) {
			if (n->next.n == n->next.cap) {
				size_t cap = n->next.cap ? n->next.cap * 2 : 64;
				uint64_t *nw = realloc(n->next.waiters, cap * sizeof *nw);
				if (!nw)
					break;
				n->next.waiters = nw;
				n->next.cap = cap;
			}
			n->next.waiters[n->next.n++] = n->cur.waiters[i];
		}
		n->cur.n = 0;
		n->cur.ctx = 0;
	}
	if (n->cur.ctx || n->next.n == 0 || n->leader == RAFT_NONE)
		return;
	struct read_batch t = n->cur;
	n->cur = n->next;
	n->next = t;
	n->next.n = 0;
	n->cur.ctx = ++n->next_ctx;
	n->cur.index = 0;
	n->cur.issued_ms = now;
	uint8_t ctx[8];
	ef_be64(ctx, n->cur.ctx);
	raft_read_index(n->r, ctx, 8);
}

/* The member cannot go on: io->fatal (abort() in etcfsd); if it returns,
 * the loop stops before anything else of the ready is done. */
static int stop(node *n, const char *why)
{
	n->io->fatal(n, why);
	n->failed = 1;
	return EF_E_IO;
}

/* Apply ents (committed, persisted) to the store in one write transaction
 * that records the applied index, then acknowledge their waiters and
 * publish the events.  0, or EF_E_IO after io->fatal returned. */
static int apply_committed(node *n, raft_entry *ents, size_t cnt)
{
	const node_io *io = n->io;
	uint64_t applied = io->store_applied_index(n->st);
	int64_t t0 = clock_mono_ns();
	ef_arena_reset(n->scratch);
	store_events ev = {.a = n->scratch};
	struct waiter *done[512];
	size_t n_done = 0;
	uint64_t last = 0;
	int began = 0;
	int64_t t_commit = 0;
	for (size_t i = 0; i < cnt; i++) {
		raft_entry *e = &ents[i];
		if (e->index <= applied)
			continue;
		last = e->index;
		if (!began) {
			if (io->store_begin(n->st) != 0) {
				return stop(n, "store_begin failed: stopping");
			}
			began = 1;
		}
		if (e->type == RAFT_ENTRY_CONF ||
		    (e->type == RAFT_ENTRY_NORMAL && e->len > 0 && e->data[0] == PAYLOAD_MEMBER)) {
			struct waiter *mw = node_member_apply(n, e); /* members.c */
			if (mw && n_done < 512)
				done[n_done++] = mw;
			continue;
		}
		if (e->type != RAFT_ENTRY_NORMAL || e->len < PAYLOAD_HDR)
			continue;
		const uint8_t *p = e->data;
		uint8_t kind = p[0];
		uint64_t origin = ef_get_be64(p + 1), wid = ef_get_be64(p + 9);
		int64_t tns = (int64_t)ef_get_be64(p + 17);
		if (kind == PAYLOAD_MEMBER_ATTR) {
			ef_rbuf rb = {p + PAYLOAD_HDR, p + e->len};
			uint32_t l;
			if (ef_rbuf_u32(&rb, &l) == 0 && (size_t)(rb.end - rb.p) >= l) {
				char key[64];
				snprintf(key, sizeof key, "member/%016" PRIx64, origin);
				io->store_meta_put(n->st, key, rb.p, l);
				struct member *m = node_member_by_id(n, origin);
				if (m) {
					size_t k = l < sizeof m->client_urls - 1
							   ? l
							   : sizeof m->client_urls - 1;
					pthread_mutex_lock(&n->mu);
					memcpy(m->client_urls, rb.p, k);
					m->client_urls[k] = 0;
					rb.p += l;
					if (ef_rbuf_u32(&rb, &l) == 0 &&
					    (size_t)(rb.end - rb.p) >= l)
						snprintf(m->name, sizeof m->name, "%.*s", (int)l,
							 (const char *)rb.p);
					if (origin == n->id)
						n->attr_published = 1;
					pthread_mutex_unlock(&n->mu);
				}
			}
			continue;
		}
		if (kind != PAYLOAD_REQUEST || e->len < PAYLOAD_HDR + 1)
			continue;
		struct waiter *w = NULL;
		if (origin == n->id && wid) {
			pthread_mutex_lock(&n->mu);
			w = node_waiter_find(n, wid);
			if (w) {
				node_waiter_del(n, w);
				w->state = W_CLAIMED;
			}
			pthread_mutex_unlock(&n->mu);
			if (w)
				metrics_observe(n->m_commit_latency, (double)(t0 - w->t0_ns) / 1e9);
		}
		ef_arena *a = w ? w->a : n->scratch;
		ef_msg req, scratch_resp;
		ef_msg *resp = w ? w->resp : &scratch_resp;
		int rv = ef_decode_body(p[PAYLOAD_HDR], p + PAYLOAD_HDR + 1,
					e->len - PAYLOAD_HDR - 1, n->scratch, &req);
		if (rv != 0) {
			node_set_error(resp, a, EF_E_CORRUPT, "undecodable log entry");
		} else {
			rv = io->store_apply(n->st, tns, &req, resp, a, &ev);
			if (rv != 0) {
				char why[160];
				snprintf(why, sizeof why,
					 "store_apply failed at index %" PRIu64 ": %s: stopping",
					 e->index, ef_strerror(rv));
				return stop(n, why);
			}
			if (resp->type == EF_MSG_LEASE_GRANT_RESP && n->role == RAFT_LEADER)
				node_lease_set(n, req.u.lease.id, req.u.lease.ttl, clock_mono_ms());
			if (req.type == EF_MSG_LEASE_REVOKE)
				node_lease_del(n, req.u.lease.id);
			if (resp->type == EF_MSG_ERROR) {
				metrics_inc(n->m_proposals_failed);
				if (!wid)
					log_warn("internal %s at index %" PRIu64 " failed: %.*s",
						 ef_msg_type_name(req.type), e->index,
						 (int)resp->u.error.message.n,
						 (const char *)resp->u.error.message.p);
			}
		}
		metrics_inc(n->m_proposals_applied);
		if (w) {
			if (n_done == 512) {
				/* flush early: keep the array bounded */
				io->store_commit(n->st, e->index);
				io->store_begin(n->st);
				pthread_mutex_lock(&n->mu);
				for (size_t j = 0; j < n_done; j++) {
					done[j]->state = W_DONE;
					pthread_cond_signal(&done[j]->cv);
				}
				pthread_mutex_unlock(&n->mu);
				n_done = 0;
			}
			done[n_done++] = w;
		}
	}
	if (!began)
		return 0;
	t_commit = clock_mono_ns();
	if (io->store_commit(n->st, last) != 0) {
		char why[120];
		snprintf(why, sizeof why, "store commit failed at index %" PRIu64 ": stopping",
			 last);
		return stop(n, why);
	}
	int64_t t_end = clock_mono_ns();
	metrics_observe(n->m_backend_commit, (double)(t_end - t_commit) / 1e9);
	metrics_observe(n->m_apply, (double)(t_end - t0) / 1e9);
	int64_t rev = io->store_revision(n->st);
	pthread_mutex_lock(&n->mu);
	n->applied_index = last;
	for (size_t j = 0; j < n_done; j++) {
		if (done[j]->resp->type != EF_MSG_ERROR || !done[j]->resp->hdr.revision)
			done[j]->resp->hdr.revision =
				done[j]->resp->hdr.revision ? done[j]->resp->hdr.revision : rev;
		done[j]->state = W_DONE;
		pthread_cond_signal(&done[j]->cv);
	}
	release_reads(n);
	pthread_mutex_unlock(&n->mu);
	if (ev.n)
		watchhub_publish(n->hub, &ev, rev);
	return 0;
}

int node_loop_ready(node *n)
{
	const node_io *io = n->io;
	raft_ready rd;
	raft_get_ready(n->r, &rd);
	if (rd.soft_changed) {
		pthread_mutex_lock(&n->mu);
		int became_leader = rd.role == RAFT_LEADER && n->role != RAFT_LEADER;
		if (rd.leader != n->leader) {
			n->leader_changes += rd.leader != RAFT_NONE;
			if (rd.leader != RAFT_NONE)
				metrics_inc(n->m_leader_changes);
			log_info("leader is now %016" PRIx64 " (term %" PRIu64 ")", rd.leader,
				 raft_term(n->r));
		}
		n->leader = rd.leader;
		n->role = rd.role;
		pthread_mutex_unlock(&n->mu);
		metrics_set(n->m_has_leader, rd.leader != RAFT_NONE);
		metrics_set(n->m_is_leader, rd.role == RAFT_LEADER);
		if (became_leader)
			node_leases_promote(n);
	}
	/* A snapshot that cannot be installed leaves a log that points past our
	 * state: the member cannot continue. */
	if (rd.snapshot && node_snapshot_install(n, rd.snapshot) != 0)
		return stop(n, "cannot install the leader's snapshot: stopping");
	if (rd.snapshot)
		node_members_load(n); /* the table the snapshot's store holds */
	if (rd.conf_base) /* a joining member learned the cluster's first configuration */
		node_members_base_save(n, rd.conf_base);
	/* The leader's appends go out before its own fsync (thesis 10.2.1):
	 * followers write their logs while we write ours. */
	io->send(n, rd.msgs, 0, rd.n_msgs_early);
	/* Committed entries below this ready's new entries are on our disk
	 * already (and, being committed, on a quorum's): apply them and answer
	 * their clients now rather than after the next batch's fsync.  Not when
	 * messages wait for the fsync (a follower's append responses): the
	 * leader's commit, and so every client, waits for those. */
	size_t pre = 0;
	if (rd.n_committed && !rd.snapshot && rd.n_msgs_early == rd.n_msgs) {
		uint64_t first_new = rd.n_entries ? rd.entries[0].index : UINT64_MAX;
		while (pre < rd.n_committed && rd.committed[pre].index < first_new)
			pre++;
		if (pre) {
			metrics_add(n->m_proposals_committed, pre);
			if (apply_committed(n, rd.committed, pre) != 0)
				return EF_E_IO;
		}
	}
	int need_sync = 0;
	if (rd.n_entries) {
		if (io->wal_append(n->w, rd.entries, rd.n_entries) != 0)
			return stop(n, "WAL append failed: stopping");
		need_sync = 1;
	}
	if (rd.hs_changed) {
		if (io->wal_set_hard_state(n->w, &rd.hs) != 0)
			return stop(n, "WAL hard state failed: stopping");
		/* Term and vote must be durable before anything is sent; a
		 * commit index alone need not be (etcd's MustSync): it is
		 * written with the next fsync, and one lost to a crash is
		 * learned again from the leader. */
		if (rd.hs.term != n->synced_hs.term || rd.hs.vote != n->synced_hs.vote)
			need_sync = 1;
	}
	if (need_sync) {
		int64_t t0 = clock_mono_ns();
		if (io->wal_sync(n->w) != 0)
			return stop(n, "WAL fsync failed: stopping (acknowledging anything now "
				       "could lose it)");
		metrics_observe(n->m_wal_fsync, (double)(clock_mono_ns() - t0) / 1e9);
		n->synced_hs = rd.hs;
		/* A compaction's snapshot marker is durable now: the segments
		 * below it may go. */
		if (n->wal_release_at) {
			wal_release_to(n->w, n->wal_release_at);
			n->wal_release_at = 0;
		}
	}
	io->send(n, rd.msgs, rd.n_msgs_early, rd.n_msgs);
	if (rd.n_committed > pre) {
		metrics_add(n->m_proposals_committed, rd.n_committed - pre);
		if (apply_committed(n, rd.committed + pre, rd.n_committed - pre) != 0)
			return EF_E_IO;
	}
	pthread_mutex_lock(&n->mu);
	for (size_t i = 0; i < rd.n_reads; i++) {
		if (rd.reads[i].context_len == 8 && ef_get_be64(rd.reads[i].context) == n->cur.ctx)
			n->cur.index = rd.reads[i].index ? rd.reads[i].index : 1;
	}
	for (size_t i = 0; i < rd.n_failed_reads; i++) {
		if (rd.failed_reads[i].context_len == 8 &&
		    ef_get_be64(rd.failed_reads[i].context) == n->cur.ctx)
			n->cur.issued_ms = 0; /* re-issue at once when a leader exists */
	}
	n->term = raft_term(n->r);
	n->commit_index = raft_commit_index(n->r);
	release_reads(n);
	pthread_mutex_unlock(&n->mu);
	metrics_set(n->m_term, (int64_t)raft_term(n->r));
	raft_advance(n->r, &rd);
	return 0;
}

void node_hold(node *n, struct ev *e)
{
	e->next = NULL;
	if (n->held_tail)
		n->held_tail->next = e;
	else
		n->held_head = e;
	n->held_tail = e;
}

/* Hand held proposals to Raft once a leader is known.  A proposal whose
 * client gave up while it was held is dropped here: it was never proposed,
 * so its client was told "no leader" (not applied), and it must stay so. */
static void try_held(node *n)
{
	if (raft_leader(n->r) == RAFT_NONE || !n->held_head)
		return;
	struct ev *list = n->held_head;
	n->held_head = n->held_tail = NULL;
	pthread_mutex_lock(&n->mu);
	while (list) {
		struct ev *e = list;
		list = e->next;
		struct waiter *w = e->waiter ? node_waiter_find(n, e->waiter) : NULL;
		if (e->waiter && !w) {
			free(e->data);
			free(e);
			continue;
		}
		int rv = raft_propose(n->r, e->data, e->len, NULL);
		if (rv == RAFT_E_NOT_LEADER || rv == RAFT_E_BUSY) {
			node_hold(n, e);
			continue;
		}
		if (w)
			w->proposed = 1;
		free(e->data);
		free(e);
	}
	pthread_mutex_unlock(&n->mu);
}

void *node_loop_main(void *arg)
{
	node *n = arg;
	int64_t next_tick = clock_mono_ms() + n->cfg.heartbeat_ms;
	for (;;) {
		pthread_mutex_lock(&n->mu);
		while (!n->in_head && !n->stopping && clock_mono_ms() < next_tick &&
		       !raft_has_ready(n->r) && !(n->next.n && !n->cur.ctx)) {
			struct timespec ts = {next_tick / 1000, (next_tick % 1000) * 1000000};
			pthread_cond_timedwait(&n->cv, &n->mu, &ts);
		}
		if (n->stopping) {
			pthread_mutex_unlock(&n->mu);
			break;
		}
		struct ev *list = n->in_head;
		n->in_head = n->in_tail = NULL;
		pthread_mutex_unlock(&n->mu);

		size_t props = 0;
		int64_t now_ns = list ? clock_mono_ns() : 0;
		while (list) {
			struct ev *e = list;
			list = e->next;
			metrics_observe(n->m_inbox_wait, (double)(now_ns - e->posted_ns) / 1e9);
			switch (e->kind) {
			case EV_PROPOSE:
				node_hold(n, e);
				props++;
				continue;
			case EV_PEER:
				raft_step(n->r, &e->msg);
				raft_msg_free_decoded(&e->msg);
				break;
			case EV_SNAP_STATUS:
				raft_report_snapshot(n->r, e->peer, e->failed);
				break;
			case EV_TRANSFER:
				raft_transfer_leader(n->r, e->peer);
				break;
			case EV_MEMBER:
				node_member_propose(n, e); /* members.c; frees e */
				continue;
			default:
				break;
			}
			free(e);
		}
		metrics_set(n->m_proposals_pending, (int64_t)props);
		int64_t now = clock_mono_ms();
		if (now >= next_tick) {
			raft_tick(n->r);
			next_tick = now + n->cfg.heartbeat_ms;
			if (raft_role(n->r) == RAFT_LEADER)
				node_leases_expire(n);
			node_members_tick(n); /* joining: cluster id; removed: stop */
			if (!n->attr_published && raft_leader(n->r) != RAFT_NONE &&
			    now - n->attr_sent_ms > 2000) {
				uint32_t len;
				uint8_t *p =
					node_payload_make(n, PAYLOAD_MEMBER_ATTR, 0, NULL, &len);
				if (p && raft_propose(n->r, p, len, NULL) == 0)
					n->attr_sent_ms = now;
				free(p);
			}
		}
		try_held(n);
		pthread_mutex_lock(&n->mu);
		issue_reads(n);
		pthread_mutex_unlock(&n->mu);
		while (raft_has_ready(n->r) && !n->failed)
			node_loop_ready(n);
		if (n->failed)
			break; /* io->fatal returned (tests): the member stops here */
		node_log_compact(n);
	}
	return NULL;
}
