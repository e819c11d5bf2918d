/*
 * recover.c - opening a WAL: reading every segment back into the hard
 * state, snapshot marker and entries the host restarts from.
 *
 * Recovery (wal_open) reads segments in sequence order.  The only damage a
 * crash can cause is in the newest segment, after its last fsync: a record
 * that was being written when power went away.  So a bad record (short,
 * checksum mismatch, unknown type) that is followed only by zeros or junk
 * in the LAST segment is a torn tail: the file is cut there (and
 * re-preallocated) and recovery succeeds.  A bad record anywhere else, or one
 * followed by a record that checks out, a missing sequence number, or a gap
 * in entry indexes is corruption (EF_E_CORRUPT with file and offset in err).
 * One known ambiguity: if the disk persisted the pages of a single unsynced
 * write out of order, a later record of that torn write may survive behind a
 * lost one; that is reported as corruption too (etcd does the same), because
 * it cannot be told apart from damage to acknowledged data.
 *
 * The data directory's wal/ folder is flock'ed while open (EF_E_LOCKED for
 * a second opener); wal_close releases it without syncing, exactly as a
 * crash would.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../proto/errors.h"
#include "../../proto/wire.h"
#include "wal_int.h"

/* ------------------------------------------------------------------ */
/* Recovery                                                           */

/* Recovered entry list: contiguous indexes from e[0].index. */
struct rlist {
	raft_entry *e;
	size_t n, cap;
};

static void rlist_truncate(struct rlist *l, size_t keep)
{
	for (size_t i = keep; i < l->n; i++)
		free(l->e[i].data);
	if (keep < l->n)
		l->n = keep;
}

/* Drop the first k entries. */
static void rlist_drop_front(struct rlist *l, size_t k)
{
	if (k > l->n)
		k = l->n;
	for (size_t i = 0; i < k; i++)
		free(l->e[i].data);
	memmove(l->e, l->e + k, (l->n - k) * sizeof(*l->e));
	l->n -= k;
}

/* A snapshot marker (index, term) applies to the recovered list: entries up
 * to the index are covered; if the entry at the index has another term, the
 * log after it belongs to a different history and goes too (Raft paper,
 * Figure 13, InstallSnapshot steps 6-7). */
static void rlist_apply_snap(struct rlist *l, const raft_snapshot_meta *s)
{
	if (!l->n || s->index < l->e[0].index)
		return;
	uint64_t last = l->e[l->n - 1].index;
	if (last < s->index) {
		rlist_truncate(l, 0);
		return;
	}
	size_t at = (size_t)(s->index - l->e[0].index);
	if (l->e[at].term != s->term) {
		rlist_truncate(l, 0);
		return;
	}
	rlist_drop_front(l, at + 1);
}

/* Everything recovery accumulates across segments. */
struct rstate {
	struct rlist list;
	raft_hard_state hs;
	raft_snapshot_meta snap;
	uint64_t cluster_id, member_id;
	int have_ids;
};

/* Is there a record that checks out anywhere in buf[from, n)? */
static int valid_record_after(const uint8_t *buf, size_t n, size_t from)
{
	for (size_t p = from; p + REC_HDR <= n; p++) {
		uint32_t len = ef_get_be32(buf + p);
		if (len == 0 || len > n - p - REC_HDR)
			continue;
		uint8_t t = buf[p + 8];
		if (t < REC_HEADER || t > REC_SNAPSHOT)
			continue;
		if (ef_crc32c(0, buf + p + 8, (size_t)len + 1) == ef_get_be32(buf + p + 4))
			return 1;
	}
	return 0;
}

static int all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

/* Apply one checked record to the state.  Returns 0, EF_E_MALFORMED for a
 * payload that does not decode (treated as a bad record), or EF_E_CORRUPT /
 * EF_E_CLUSTER_MISMATCH / EF_E_NOMEM with err set. */
static int apply_record(struct rstate *st, wal *w, struct wal_seg *seg, const char *path,
			uint64_t off, uint8_t type, const uint8_t *p, size_t n, char *err,
			size_t errlen)
{
	switch (type) {
	case REC_HEADER: {
		if (off != 0)
			return EF_E_MALFORMED;
		if (n < 64 || ef_get_be32(p) != WAL_MAGIC)
			return EF_E_MALFORMED;
		if (ef_get_be32(p + 4) != WAL_VERSION) {
			wal_seterr(err, errlen, "%s: unsupported WAL version %u", path,
				   ef_get_be32(p + 4));
			return EF_E_CORRUPT;
		}
		uint64_t cid = ef_get_be64(p + 8), mid = ef_get_be64(p + 16);
		uint64_t seq = ef_get_be64(p + 24);
		raft_snapshot_meta sm;
		if (wal_get_snap(p + 64, n - 64, &sm) != 0)
			return EF_E_MALFORMED;
		if (seq != seg->seq) {
			wal_seterr(err, errlen, "%s: header says sequence %" PRIu64, path, seq);
			return EF_E_CORRUPT;
		}
		if ((w->cluster_id && cid != w->cluster_id) ||
		    (w->member_id && mid != w->member_id)) {
			wal_seterr(err, errlen,
				   "%s: written by cluster %016" PRIx64 " member %016" PRIx64
				   ", expected cluster %016" PRIx64 " member %016" PRIx64,
				   path, cid, mid, w->cluster_id, w->member_id);
			return EF_E_CLUSTER_MISMATCH;
		}
		if (st->have_ids && (cid != st->cluster_id || mid != st->member_id)) {
			wal_seterr(err, errlen, "%s: cluster/member id differs from older segments",
				   path);
			return EF_E_CLUSTER_MISMATCH;
		}
		st->cluster_id = cid;
		st->member_id = mid;
		st->have_ids = 1;
		st->hs.term = ef_get_be64(p + 40);
		st->hs.vote = ef_get_be64(p + 48);
		st->hs.commit = ef_get_be64(p + 56);
		st->snap = sm;
		rlist_apply_snap(&st->list, &sm);
		return 0;
	}
	case REC_ENTRY: {
		if (n < 17)
			return EF_E_MALFORMED;
		raft_entry e = {.term = ef_get_be64(p), .index = ef_get_be64(p + 8), .type = p[16]};
		e.len = (uint32_t)(n - 17);
		if (e.index == 0)
			return EF_E_MALFORMED;
		struct rlist *l = &st->list;
		if (l->n) {
			uint64_t first = l->e[0].index, last = l->e[l->n - 1].index;
			if (e.index > last + 1) {
				wal_seterr(err, errlen,
					   "%s: offset %" PRIu64 ": entry %" PRIu64
					   " follows entry %" PRIu64 " (index gap)",
					   path, off, e.index, last);
				return EF_E_CORRUPT;
			}
			/* An index already seen overwrites it and what follows. */
			rlist_truncate(l, e.index >= first ? (size_t)(e.index - first) : 0);
		}
		if (e.len) {
			e.data = malloc(e.len);
			if (!e.data)
				return EF_E_NOMEM;
			memcpy(e.data, p + 17, e.len);
		}
		if (l->n == l->cap) {
			size_t nc = l->cap ? 2 * l->cap : 256;
			raft_entry *ne = realloc(l->e, nc * sizeof(*ne));
			if (!ne) {
				free(e.data);
				return EF_E_NOMEM;
			}
			l->e = ne;
			l->cap = nc;
		}
		l->e[l->n++] = e;
		if (e.index > seg->max_index)
			seg->max_index = e.index;
		return 0;
	}
	case REC_HARD_STATE:
		if (n != 24)
			return EF_E_MALFORMED;
		st->hs.term = ef_get_be64(p);
		st->hs.vote = ef_get_be64(p + 8);
		st->hs.commit = ef_get_be64(p + 16);
		return 0;
	case REC_SNAPSHOT: {
		raft_snapshot_meta sm;
		if (wal_get_snap(p, n, &sm) != 0)
			return EF_E_MALFORMED;
		st->snap = sm;
		rlist_apply_snap(&st->list, &sm);
		return 0;
	}
	default:
		return EF_E_MALFORMED;
	}
}

static int read_file(const char *path, uint8_t **out, size_t *n)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	struct stat st;
	if (fstat(fd, &st) != 0) {
		close(fd);
		return -1;
	}
	size_t size = (size_t)st.st_size;
	uint8_t *b = malloc(size ? size : 1);
	if (!b) {
		close(fd);
		errno = ENOMEM;
		return -1;
	}
	size_t got = 0;
	while (got < size) {
		ssize_t r = pread(fd, b + got, size - got, (off_t)got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	*out = b;
	*n = got;
	return 0;
}

/* Read one segment.  *end receives the offset after its last good record;
 * *torn is set when bad bytes follow it (only allowed in the last segment). */
static int read_segment(struct rstate *st, wal *w, struct wal_seg *seg, const char *path,
			int is_last, uint64_t *end, uint64_t *hdr_end, int *torn, char *err,
			size_t errlen)
{
	uint8_t *buf;
	size_t n;
	if (read_file(path, &buf, &n) != 0) {
		wal_seterr(err, errlen, "%s: %s", path, strerror(errno));
		return EF_E_IO;
	}
	size_t off = 0;
	int rc = 0;
	const char *why = NULL;
	for (;;) {
		if (off + REC_HDR > n) {
			why = off == n ? NULL : "short record header";
			break;
		}
		uint32_t len = ef_get_be32(buf + off);
		if (len == 0) {
			why = "zero length";
			break;
		}
		if (len > n - off - REC_HDR) {
			why = "record runs past the end of the file";
			break;
		}
		if (ef_crc32c(0, buf + off + 8, (size_t)len + 1) != ef_get_be32(buf + off + 4)) {
			why = "checksum mismatch";
			break;
		}
		uint8_t type = buf[off + 8];
		if (off == 0 && type != REC_HEADER) {
			why = "missing segment header";
			break;
		}
		rc = apply_record(st, w, seg, path, off, type, buf + off + REC_HDR, len, err,
				  errlen);
		if (rc == EF_E_MALFORMED) {
			/* Checksum good, content not: not a torn write. */
			wal_seterr(err, errlen, "%s: offset %zu: malformed record of type %u", path,
				   off, type);
			rc = EF_E_CORRUPT;
		}
		if (rc)
			goto out;
		if (off == 0)
			*hdr_end = REC_HDR + len;
		off += REC_HDR + len;
	}
	*end = off;
	*torn = 0;
	if (off == 0) {
		wal_seterr(err, errlen, "%s: offset 0: bad segment header (%s)", path,
			   why ? why : "empty file");
		rc = EF_E_CORRUPT;
		goto out;
	}
	if (!why || all_zero(buf + off, n - off))
		goto out; /* clean end (preallocated zeros) */
	if (!is_last || valid_record_after(buf, n, off + 1)) {
		wal_seterr(err, errlen, "%s: offset %zu: %s%s", path, off, why,
			   is_last ? ", followed by valid records" : " in a sealed segment");
		rc = EF_E_CORRUPT;
		goto out;
	}
	*torn = 1;
out:
	free(buf);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Open / close                                                       */

static int mkdir_p1(const char *path)
{
	return mkdir(path, 0755) == 0 || errno == EEXIST ? 0 : -1;
}

int wal_open(const char *dir, uint64_t cluster_id, uint64_t member_id, wal **out,
	     wal_recovered *rec, char *err, size_t errlen)
{
	*out = NULL;
	memset(rec, 0, sizeof(*rec));
	if (err && errlen)
		err[0] = 0;
	wal *w = calloc(1, sizeof(*w));
	if (!w)
		return EF_E_NOMEM;
	w->fd = -1;
	w->dirfd = -1;
	w->cluster_id = cluster_id;
	w->member_id = member_id;
	w->seg_bytes = __atomic_load_n(&wal_default_seg_bytes, __ATOMIC_RELAXED);
	struct rstate st;
	memset(&st, 0, sizeof(st));
	int rc = 0;
	size_t dl = strlen(dir) + 5;
	w->dir = malloc(dl);
	if (!w->dir) {
		rc = EF_E_NOMEM;
		goto fail;
	}
	snprintf(w->dir, dl, "%s/wal", dir);
	if (mkdir_p1(dir) != 0 || mkdir_p1(w->dir) != 0) {
		wal_seterr(err, errlen, "%s: %s", w->dir, strerror(errno));
		rc = EF_E_IO;
		goto fail;
	}
	w->dirfd = open(w->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (w->dirfd < 0) {
		wal_seterr(err, errlen, "%s: %s", w->dir, strerror(errno));
		rc = EF_E_IO;
		goto fail;
	}
	if (flock(w->dirfd, LOCK_EX | LOCK_NB) != 0) {
		wal_seterr(err, errlen, "%s: %s", w->dir,
			   errno == EWOULDBLOCK ? "locked by another process" : strerror(errno));
		rc = errno == EWOULDBLOCK ? EF_E_LOCKED : EF_E_IO;
		goto fail;
	}
	if ((rc = wal_list_segments(w, err, errlen)))
		goto fail;

	if (w->n_segs == 0) {
		if ((rc = wal_seg_create(w, 1, 1, err, errlen)))
			goto fail;
		rec->cluster_id = cluster_id;
		rec->member_id = member_id;
		*out = w;
		return 0;
	}

	char path[4096];
	uint64_t end = 0, hdr_end = 0;
	int torn = 0;
	for (size_t i = 0; i < w->n_segs; i++) {
		struct wal_seg *s = &w->segs[i];
		wal_seg_name(path, sizeof(path), w->dir, s->seq, s->first_index, "");
		if (i && s->seq != w->segs[i - 1].seq + 1) {
			wal_seterr(err, errlen, "%s: segment %016" PRIx64 " is missing before it",
				   path, w->segs[i - 1].seq + 1);
			rc = EF_E_CORRUPT;
			goto fail;
		}
		rc = read_segment(&st, w, s, path, i + 1 == w->n_segs, &end, &hdr_end, &torn, err,
				  errlen);
		if (rc)
			goto fail;
	}
	/* The log must continue right after the snapshot. */
	struct rlist *l = &st.list;
	size_t covered = 0;
	while (covered < l->n && l->e[covered].index <= st.snap.index)
		covered++;
	if (covered)
		rlist_drop_front(l, covered);
	if (l->n && l->e[0].index != st.snap.index + 1) {
		wal_seterr(err, errlen,
			   "%s: entries start at %" PRIu64 " but the snapshot marker is at %" PRIu64
			   " (index gap)",
			   w->dir, l->e[0].index, st.snap.index);
		rc = EF_E_CORRUPT;
		goto fail;
	}

	/* Open the newest segment for appending; cut a torn tail. */
	w->fd = open(path, O_RDWR | O_CLOEXEC);
	if (w->fd < 0) {
		wal_seterr(err, errlen, "%s: %s", path, strerror(errno));
		rc = EF_E_IO;
		goto fail;
	}
	w->off = end;
	w->hdr_end = hdr_end;
	struct stat fst;
	if (fstat(w->fd, &fst) != 0) {
		wal_seterr(err, errlen, "%s: %s", path, strerror(errno));
		rc = EF_E_IO;
		goto fail;
	}
	if (torn || (uint64_t)fst.st_size < w->seg_bytes) {
		/* Cut the damage and restore the preallocated zero tail (also
		 * when the file was left short of it). */
		uint64_t size = w->seg_bytes > end ? w->seg_bytes : end;
		if ((torn && ftruncate(w->fd, (off_t)end) != 0) || wal_prealloc(w->fd, size) != 0 ||
		    fsync(w->fd) != 0) {
			wal_seterr(err, errlen, "%s: cutting torn tail at %" PRIu64 ": %s", path,
				   end, strerror(errno));
			rc = EF_E_IO;
			goto fail;
		}
	}

	w->hs = w->synced_hs = st.hs;
	w->snap = w->synced_snap = st.snap;
	w->last_index = l->n ? l->e[l->n - 1].index : 0;
	if (st.snap.index > w->last_index)
		w->last_index = st.snap.index;
	if (!w->cluster_id)
		w->cluster_id = st.cluster_id;
	if (!w->member_id)
		w->member_id = st.member_id;
	rec->hs = st.hs;
	rec->snap = st.snap;
	rec->entries = l->e;
	rec->n_entries = l->n;
	rec->cluster_id = st.cluster_id;
	rec->member_id = st.member_id;
	*out = w;
	return 0;
fail:
	rlist_truncate(&st.list, 0);
	free(st.list.e);
	wal_close(w);
	return rc;
}

void wal_recovered_free(wal_recovered *rec)
{
	if (!rec)
		return;
	for (size_t i = 0; i < rec->n_entries; i++)
		free(rec->entries[i].data);
	free(rec->entries);
	rec->entries = NULL;
	rec->n_entries = 0;
}

void wal_close(wal *w)
{
	if (!w)
		return;
	if (w->fd >= 0)
		close(w->fd);
	if (w->dirfd >= 0)
		close(w->dirfd); /* releases the flock */
	free(w->segs);
	free(w->buf);
	free(w->dir);
	free(w);
}
