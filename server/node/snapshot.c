/*
 * snapshot.c - snapshot files: taking, sending, receiving, installing.
 *
 * Every --snapshot-count applied entries the loop copies the store into a
 * snapshot file (snapfile_write), marks it in the WAL and compacts the Raft
 * log, keeping some entries for slow followers.  When Raft asks for a
 * snapshot to be sent (MSG_SNAP), a detached sender thread streams the file
 * in 1 MiB chunks over the peer transport and then the MSG_SNAP itself; one
 * sender per peer at a time, and the outcome goes back to the loop's inbox
 * for raft_report_snapshot.  The receiver writes chunks in order on the peer
 * receive thread and renames the file into place when complete; the loop
 * installs it when Raft's ready names it.  Nothing here blocks the loop but
 * taking a snapshot (a copy of the store).
 */
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../log.h"
#include "node_int.h"

/* ------------------------------------------------------------------ */
/* Snapshots.                                                           */

static void snap_dir(node *n, char *out, size_t len)
{
	snprintf(out, len, "%s/snap", n->member_dir);
}

int node_snapshot_take(node *n, uint64_t index)
{
	char sdir[1100], tmp[1200], outp[1200];
	snap_dir(n, sdir, sizeof sdir);
	snprintf(tmp, sizeof tmp, "%s/db.copy.tmp", sdir);
	store_sync(n->st);
	int fd = open(tmp, O_CREAT | O_TRUNC | O_WRONLY, 0600);
	if (fd < 0)
		return EF_E_IO;
	int rv = store_snapshot_write(n->st, fd);
	close(fd);
	if (rv != 0) {
		unlink(tmp);
		return rv;
	}
	/* The configuration as of index (voters and learners), as the core
	 * computed it for its own snapshot meta. */
	raft_snapshot_meta m;
	raft_conf_at(n->r, index, &m);
	m.term = raft_term_at(n->r, index);
	rv = snapfile_write(n->member_dir, &m, tmp, outp, sizeof outp);
	unlink(tmp);
	if (rv != 0)
		return rv;
	if ((rv = wal_mark_snapshot(n->w, &m)) != 0 || (rv = wal_sync(n->w)) != 0)
		return rv;
	uint64_t keep = n->cfg.snapshot_count / 2;
	if (keep > 5000)
		keep = 5000;
	raft_compact(n->r, index, keep);
	wal_release_to(n->w, index > keep ? index - keep : 0);
	n->last_snap_index = index;
	log_info("snapshot at index %" PRIu64 " written to %s", index, outp);
	return 0;
}

struct snap_send {
	node *n;
	uint64_t to;
	raft_msg msg;
	int slot;
};

static void *snap_send_main(void *arg)
{
	struct snap_send *s = arg;
	node *n = s->n;
	char path[1200];
	raft_snapshot_meta m;
	int failed = 1;
	if (snapfile_latest(n->member_dir, path, sizeof path, &m) == 0 && path[0] &&
	    m.index == s->msg.snapshot.index) {
		int fd = open(path, O_RDONLY);
		if (fd >= 0) {
			struct stat st;
			fstat(fd, &st);
			uint64_t total = (uint64_t)st.st_size, off = 0;
			uint8_t *buf = malloc(SNAP_CHUNK + 41);
			failed = buf == NULL;
			while (!failed) {
				ssize_t k = pread(fd, buf + 41, SNAP_CHUNK, (off_t)off);
				if (k < 0) {
					failed = 1;
					break;
				}
				ef_be64(buf, m.index);
				ef_be64(buf + 8, m.term);
				ef_be64(buf + 16, off);
				ef_be64(buf + 24, total);
				ef_be64(buf + 32, (uint64_t)k);
				buf[40] = off + (uint64_t)k >= total;
				if (peer_send_wait(n->peers, s->to, PEER_SNAP_CHUNK, buf,
						   41 + (size_t)k, 5000) != 0) {
					failed = 1;
					break;
				}
				off += (uint64_t)k;
				if (off >= total)
					break;
			}
			free(buf);
			close(fd);
		}
	}
	if (!failed) {
		ef_wbuf b;
		ef_wbuf_init(&b);
		if (raft_msg_encode(&s->msg, &b) == 0 && !b.err)
			failed = peer_send_wait(n->peers, s->to, PEER_RAFT, b.p, b.len, 5000) != 0;
		else
			failed = 1;
		ef_wbuf_free(&b);
	}
	if (!failed)
		metrics_inc(n->m_snap_sent);
	log_info("snapshot %" PRIu64 " to member %016" PRIx64 ": %s", s->msg.snapshot.index, s->to,
		 failed ? "failed" : "sent");
	struct ev *e = calloc(1, sizeof *e);
	if (e) {
		e->kind = EV_SNAP_STATUS;
		e->peer = s->to;
		e->failed = failed;
		node_post(n, e);
	}
	__atomic_store_n(&n->snap_sending[s->slot], 0, __ATOMIC_RELEASE);
	free(s);
	return NULL;
}

void node_snapshot_send(node *n, const raft_msg *m)
{
	int slot = -1;
	for (int i = 0; i < n->n_members; i++)
		if (n->members[i].id == m->to)
			slot = i;
	if (slot < 0)
		return;
	if (__atomic_exchange_n(&n->snap_sending[slot], 1, __ATOMIC_ACQ_REL))
		return; /* one at a time; Raft asks again */
	struct snap_send *s = calloc(1, sizeof *s);
	s->n = n;
	s->to = m->to;
	s->msg = *m;
	s->msg.entries = NULL;
	s->msg.n_entries = 0;
	s->msg.context = NULL;
	s->msg.context_len = 0;
	s->slot = slot;
	pthread_t t;
	if (pthread_create(&t, NULL, snap_send_main, s) != 0) {
		free(s);
		__atomic_store_n(&n->snap_sending[slot], 0, __ATOMIC_RELEASE);
		return;
	}
	pthread_detach(t);
}

/* Receive side: chunks of the leader's snapshot file, written in order to
 * snap/recv.tmp and renamed into place when complete.  Only the receive
 * thread touches this. */
static struct {
	int fd;
	uint64_t index, off;
} recv_snap = {-1, 0, 0};

void node_snapshot_chunk(node *n, const uint8_t *p, size_t len)
{
	if (len < 41)
		return;
	uint64_t index = ef_get_be64(p), term = ef_get_be64(p + 8), off = ef_get_be64(p + 16),
		 total = ef_get_be64(p + 24), k = ef_get_be64(p + 32);
	int last = p[40];
	if (k != len - 41 || off + k > total)
		return;
	char sdir[1100], tmp[1200], fin[1200];
	snap_dir(n, sdir, sizeof sdir);
	snprintf(tmp, sizeof tmp, "%s/recv.tmp", sdir);
	if (off == 0) {
		if (recv_snap.fd >= 0)
			close(recv_snap.fd);
		recv_snap.fd = open(tmp, O_CREAT | O_TRUNC | O_WRONLY, 0600);
		recv_snap.index = index;
		recv_snap.off = 0;
	}
	if (recv_snap.fd < 0 || recv_snap.index != index || recv_snap.off != off)
		return; /* out of order: wait for the leader to start again */
	if (pwrite(recv_snap.fd, p + 41, k, (off_t)off) != (ssize_t)k) {
		close(recv_snap.fd);
		recv_snap.fd = -1;
		return;
	}
	recv_snap.off += k;
	if (last && recv_snap.off == total) {
		fsync(recv_snap.fd);
		close(recv_snap.fd);
		recv_snap.fd = -1;
		snprintf(fin, sizeof fin, "%s/%016" PRIx64 "-%016" PRIx64 ".snap", sdir, term,
			 index);
		rename(tmp, fin);
		int dfd = open(sdir, O_RDONLY | O_DIRECTORY);
		if (dfd >= 0) {
			fsync(dfd);
			close(dfd);
		}
		metrics_inc(n->m_snap_recv);
		log_info("received snapshot %" PRIu64 " (%" PRIu64 " bytes)", index, total);
	}
}

int node_snapshot_install(node *n, const raft_snapshot_meta *m)
{
	char path[1200], dst[1200];
	raft_snapshot_meta have;
	if (snapfile_latest(n->member_dir, path, sizeof path, &have) != 0 || !path[0] ||
	    have.index != m->index) {
		log_error("asked to install snapshot %" PRIu64 " but it is not on disk", m->index);
		return EF_E_IO;
	}
	snprintf(dst, sizeof dst, "%s/snap/install.mdb", n->member_dir);
	int rv = snapfile_read(path, dst, &have);
	if (rv == 0)
		rv = store_snapshot_install(n->st, dst);
	unlink(dst);
	if (rv != 0) {
		log_error("installing snapshot %" PRIu64 " failed: %s", m->index, ef_strerror(rv));
		return rv;
	}
	wal_mark_snapshot(n->w, m);
	n->last_snap_index = m->index;
	node_members_load_attrs(n);
	watchhub_resync(n->hub);
	log_info("installed snapshot at index %" PRIu64, m->index);
	return 0;
}
