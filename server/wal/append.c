/*
 * append.c - writing the WAL: buffering records, group commit, roll-over,
 * releasing old segments, and the tuning and statistics accessors.
 *
 * Group commit.  wal_append / wal_set_hard_state / wal_mark_snapshot only
 * encode records into an in-memory buffer; wal_sync writes the whole buffer
 * with one pwrite and makes it durable with one fdatasync.  The host calls
 * wal_sync once per Raft ready, so one fsync covers every proposal that
 * arrived meanwhile.  A segment being left for the next one is first
 * truncated to its used length and synced.  Every segment header repeats
 * the cluster and member ids, the latest durable hard state and snapshot
 * marker, so older segments can be deleted once a snapshot covers their
 * entries (wal_release_to).  After a failed write or fsync the wal is
 * sticky in EF_E_IO: the page cache state is unknown, never retry.
 *
 * The statistics are updated with atomics so the metrics endpoint can read
 * them from another thread.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../../common/clock.h"
#include "../../proto/errors.h"
#include "../../proto/wire.h"
#include "wal_int.h"

uint64_t wal_default_seg_bytes = WAL_SEGMENT_BYTES_DEFAULT;

/* ------------------------------------------------------------------ */
/* Appending                                                          */

int wal_append(wal *w, const raft_entry *e, size_t n)
{
	if (w->err)
		return w->err;
	uint64_t last = w->last_index;
	for (size_t i = 0; i < n; i++) {
		if (e[i].index == 0 || e[i].index > last + 1 || (e[i].len && !e[i].data))
			return EF_E_INVALID;
		last = e[i].index;
	}
	size_t mark = w->len;
	for (size_t i = 0; i < n; i++) {
		uint8_t h[17];
		ef_be64(h, e[i].term);
		ef_be64(h + 8, e[i].index);
		h[16] = e[i].type;
		int rc = wal_pend(w, REC_ENTRY, h, sizeof(h), e[i].data, e[i].len);
		if (rc) {
			w->len = mark; /* all or nothing */
			return rc;
		}
	}
	for (size_t i = 0; i < n; i++)
		if (e[i].index > w->pending_max)
			w->pending_max = e[i].index;
	if (n && !w->pending_first)
		w->pending_first = e[0].index;
	if (n)
		w->last_index = last;
	return 0;
}

int wal_set_hard_state(wal *w, const raft_hard_state *hs)
{
	if (w->err)
		return w->err;
	uint8_t h[24];
	ef_be64(h, hs->term);
	ef_be64(h + 8, hs->vote);
	ef_be64(h + 16, hs->commit);
	int rc = wal_pend(w, REC_HARD_STATE, h, sizeof(h), NULL, 0);
	if (!rc)
		w->hs = *hs;
	return rc;
}

int wal_mark_snapshot(wal *w, const raft_snapshot_meta *m)
{
	if (w->err)
		return w->err;
	if (m->n_voters > RAFT_MAX_VOTERS || m->n_learners > RAFT_MAX_VOTERS - m->n_voters)
		return EF_E_INVALID;
	uint8_t h[WAL_SNAP_MAX];
	int rc = wal_pend(w, REC_SNAPSHOT, h, wal_put_snap(h, m), NULL, 0);
	if (rc)
		return rc;
	w->snap = *m;
	if (m->index > w->last_index)
		w->last_index = m->index;
	return 0;
}

/* Seal the open segment (cut the preallocated tail, sync) and start the next. */
static int wal_roll(wal *w)
{
	struct wal_seg *cur = &w->segs[w->n_segs - 1];
	if (ftruncate(w->fd, (off_t)w->off) != 0 ||
	    wal_fs_cur->fdatasync(wal_fs_cur->ud, w->fd) != 0)
		return EF_E_IO;
	close(w->fd);
	w->fd = -1;
	uint64_t seq = cur->seq + 1;
	return wal_seg_create(w, seq, w->pending_first ? w->pending_first : w->last_index + 1, NULL,
			      0);
}

int wal_sync(wal *w)
{
	if (w->err)
		return w->err;
	if (w->len == 0)
		return 0;
	int rc;
	if (w->off + w->len > w->seg_bytes && w->off > w->hdr_end) {
		if ((rc = wal_roll(w))) {
			w->err = EF_E_IO;
			return rc;
		}
	}
	if (wal_write_full(w->fd, w->buf, w->len, w->off) != 0) {
		w->err = EF_E_IO;
		return EF_E_IO;
	}
	uint64_t t0 = (uint64_t)clock_mono_ns();
	if (wal_fs_cur->fdatasync(wal_fs_cur->ud, w->fd) != 0) {
		/* After a failed fsync the page cache state is unknown (the
		 * kernel may have dropped the dirty pages): never retry. */
		w->err = EF_E_IO;
		return EF_E_IO;
	}
	uint64_t dt = (uint64_t)clock_mono_ns() - t0;
	__atomic_add_fetch(&w->st_fsyncs, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&w->st_fsync_ns, dt, __ATOMIC_RELAXED);
	__atomic_store_n(&w->st_fsync_last_ns, dt, __ATOMIC_RELAXED);
	__atomic_add_fetch(&w->st_bytes, (uint64_t)w->len, __ATOMIC_RELAXED);
	if (w->observer)
		w->observer(w->observer_ud, (double)dt / 1e9);

	w->off += w->len;
	w->len = 0;
	struct wal_seg *cur = &w->segs[w->n_segs - 1];
	if (w->pending_max > cur->max_index)
		cur->max_index = w->pending_max;
	w->pending_max = 0;
	w->pending_first = 0;
	w->synced_hs = w->hs;
	w->synced_snap = w->snap;
	return 0;
}

int wal_release_to(wal *w, uint64_t index)
{
	if (w->err)
		return w->err;
	/* Only entries a durable snapshot marker covers may go. */
	if (index > w->synced_snap.index)
		index = w->synced_snap.index;
	size_t k = 0;
	while (k + 1 < w->n_segs && w->segs[k].max_index <= index)
		k++;
	if (!k)
		return 0;
	char path[4096];
	int rc = 0;
	size_t done = 0;
	for (; done < k; done++) {
		struct wal_seg *s = &w->segs[done];
		wal_seg_name(path, sizeof(path), w->dir, s->seq, s->first_index, "");
		/* Oldest first, so a crash midway leaves a consecutive sequence. */
		if (unlink(path) != 0 && errno != ENOENT) {
			rc = EF_E_IO;
			break;
		}
	}
	memmove(w->segs, w->segs + done, (w->n_segs - done) * sizeof(*w->segs));
	w->n_segs -= done;
	if (wal_fsync_dir(w->dirfd) != 0 && !rc)
		rc = EF_E_IO;
	return rc;
}

/* ------------------------------------------------------------------ */
/* Accessors                                                          */

void wal_set_segment_bytes(wal *w, uint64_t bytes)
{
	w->seg_bytes = bytes < 4096 ? 4096 : bytes;
}

void wal_set_default_segment_bytes(uint64_t bytes)
{
	if (!bytes)
		bytes = WAL_SEGMENT_BYTES_DEFAULT;
	__atomic_store_n(&wal_default_seg_bytes, bytes < 4096 ? 4096 : bytes, __ATOMIC_RELAXED);
}

uint64_t wal_fsyncs(wal *w)
{
	return __atomic_load_n(&w->st_fsyncs, __ATOMIC_RELAXED);
}

uint64_t wal_fsync_ns_total(wal *w)
{
	return __atomic_load_n(&w->st_fsync_ns, __ATOMIC_RELAXED);
}

uint64_t wal_fsync_ns_last(wal *w)
{
	return __atomic_load_n(&w->st_fsync_last_ns, __ATOMIC_RELAXED);
}

uint64_t wal_bytes_written(wal *w)
{
	return __atomic_load_n(&w->st_bytes, __ATOMIC_RELAXED);
}

void wal_set_fsync_observer(wal *w, void (*fn)(void *ud, double seconds), void *ud)
{
	w->observer = fn;
	w->observer_ud = ud;
}

uint64_t wal_last_index(wal *w)
{
	return w->last_index;
}

uint64_t wal_write_offset(wal *w)
{
	return w->off;
}

size_t wal_segment_count(wal *w)
{
	return w->n_segs;
}
