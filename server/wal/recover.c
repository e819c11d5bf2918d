/*
 * wal.c - the write-ahead log: Raft entries, hard state and snapshot
 * markers in CRC-protected records, spread over numbered segment files.
 *
 * Why it is built this way:
 *   - Group commit.  wal_append / wal_set_hard_state / wal_mark_snapshot only
 *     encode records into an in-memory buffer; wal_sync writes the whole
 *     buffer with one pwrite and makes it durable with one fdatasync.  The
 *     host calls wal_sync once per Raft ready, so one fsync covers every
 *     proposal that arrived meanwhile.
 *   - Preallocation.  A new segment is fallocate'd to its full size (64 MiB
 *     by default) before use, so appending never changes the file size and
 *     fdatasync only has to flush data, not the inode.  The unused tail reads
 *     as zeros, hence a zero length field ends the records of a segment.
 *   - Crash safety of file creation.  A segment is created as NAME.tmp,
 *     preallocated, given its header record, fdatasync'ed, renamed to NAME,
 *     and the directory is fsync'ed.  A segment under its final name
 *     therefore always has a complete header.  A segment being left for the
 *     next one is first truncated to its used length and synced.
 *   - Every segment header repeats the cluster and member ids, the latest
 *     durable hard state and snapshot marker, so older segments can be
 *     deleted once a snapshot covers their entries (wal_release_to).
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
 * The wal is used by one thread (the host loop); only the statistics are
 * read with atomics from elsewhere.  The data directory's wal/ folder is
 * flock'ed while open (EF_E_LOCKED for a second opener).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../../common/clock.h"
#include "../../proto/errors.h"
#include "../../proto/wire.h"
#include "../wal.h"

/* ------------------------------------------------------------------ */
/* Record format                                                        */

#define WAL_MAGIC 0x4546574cu /* "EFWL" */
#define WAL_VERSION 1u
#define REC_HDR 9u /* u32 len | u32 crc | u8 type */
#define REC_MAX_PAYLOAD (1u << 30)

enum wal_rec_type {
	REC_HEADER = 1,     /* magic, version, cluster, member, seq, first index, hs, snap */
	REC_ENTRY = 2,      /* term, index, entry type, data... */
	REC_HARD_STATE = 3, /* term, vote, commit */
	REC_SNAPSHOT = 4    /* index, term, n_voters, voters[n] */
};

struct wal_seg {
	uint64_t seq;
	uint64_t first_index; /* from the name: the next index when it was created */
	uint64_t max_index;   /* highest entry index stored in it, 0 when none */
};

struct wal {
	char *dir; /* DIR/wal */
	int dirfd; /* open on dir, flock'ed */
	uint64_t cluster_id, member_id;
	uint64_t seg_bytes; /* roll-over size and preallocation of new segments */

	struct wal_seg *segs; /* oldest first, consecutive seqs; segs[n_segs-1] is open in fd */
	size_t n_segs, cap_segs;
	int fd;
	uint64_t off; /* next write offset in the newest segment; records end here */

	uint8_t *buf; /* encoded records not yet written */
	size_t len, cap;
	uint64_t pending_max;   /* highest entry index in buf, 0 when none */
	uint64_t pending_first; /* index of the first entry in buf, 0 when none */
	uint64_t hdr_end;       /* size of the newest segment's header record */

	raft_hard_state hs, synced_hs;        /* latest appended / latest durable */
	raft_snapshot_meta snap, synced_snap; /* same for the snapshot marker */
	uint64_t last_index;                  /* last appended entry, or snap.index if higher */
	int err;                              /* sticky EF_E_IO after a failed write or sync */

	uint64_t st_fsyncs, st_fsync_ns, st_fsync_last_ns, st_bytes; /* atomics */
	void (*observer)(void *ud, double seconds);
	void *observer_ud;
};

/* ------------------------------------------------------------------ */
/* Fault-injection table                                                */

static long fs_real_pwrite(void *ud, int fd, const void *p, size_t n, int64_t off)
{
	return (long)pwrite(fd, p, n, (off_t)off);
}

static int fs_real_fdatasync(void *ud, int fd)
{
	return fdatasync(fd);
}

static uint64_t default_seg_bytes = WAL_SEGMENT_BYTES_DEFAULT;

static const wal_fs fs_real = {fs_real_pwrite, fs_real_fdatasync, NULL};
static const wal_fs *fs_cur = &fs_real;

void wal_set_fs(const wal_fs *fs)
{
	fs_cur = fs ? fs : &fs_real;
}

/* Write all of p at off; 0 or -1 with errno. */
static int write_full(int fd, const uint8_t *p, size_t n, uint64_t off)
{
	while (n) {
		long r = fs_cur->pwrite(fs_cur->ud, fd, p, n, (int64_t)off);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0) {
			errno = EIO;
			return -1;
		}
		p += r;
		n -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Helpers                                                              */

static void seterr(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
	if (!err || !errlen)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static int buf_reserve(uint8_t **p, size_t *cap, size_t need)
{
	if (need <= *cap)
		return 0;
	size_t nc = *cap ? *cap : 4096;
	while (nc < need)
		nc *= 2;
	uint8_t *np = realloc(*p, nc);
	if (!np)
		return EF_E_NOMEM;
	*p = np;
	*cap = nc;
	return 0;
}

static void seg_name(char *out, size_t n, const char *dir, uint64_t seq, uint64_t first,
		     const char *suffix)
{
	snprintf(out, n, "%s/%016" PRIx64 "-%016" PRIx64 ".wal%s", dir, seq, first, suffix);
}

static int fsync_dir(int dirfd)
{
	return fsync(dirfd) == 0 || errno == EINVAL ? 0 : -1;
}

/* Encode the snapshot meta (index, term, n_voters, voters) at p; returns bytes. */
static size_t put_snap(uint8_t *p, const raft_snapshot_meta *m)
{
	uint32_t nv = m->n_voters > RAFT_MAX_VOTERS ? RAFT_MAX_VOTERS : m->n_voters;
	ef_be64(p, m->index);
	ef_be64(p + 8, m->term);
	ef_be32(p + 16, nv);
	for (uint32_t i = 0; i < nv; i++)
		ef_be64(p + 20 + 8 * i, m->voters[i]);
	return 20 + 8 * (size_t)nv;
}

static int get_snap(const uint8_t *p, size_t n, raft_snapshot_meta *m)
{
	if (n < 20)
		return EF_E_TRUNCATED;
	memset(m, 0, sizeof(*m));
	m->index = ef_get_be64(p);
	m->term = ef_get_be64(p + 8);
	m->n_voters = ef_get_be32(p + 16);
	if (m->n_voters > RAFT_MAX_VOTERS || n != 20 + 8 * (size_t)m->n_voters)
		return EF_E_MALFORMED;
	for (uint32_t i = 0; i < m->n_voters; i++)
		m->voters[i] = ef_get_be64(p + 20 + 8 * i);
	return 0;
}

/* Frame a record around payload p (already at dst + REC_HDR) and return its size. */
static size_t frame(uint8_t *dst, uint8_t type, size_t payload_len)
{
	dst[8] = type;
	ef_be32(dst, (uint32_t)payload_len);
	ef_be32(dst + 4, ef_crc32c(0, dst + 8, payload_len + 1));
	return REC_HDR + payload_len;
}

/* Append a record with the given payload to the pending buffer. */
static int pend(wal *w, uint8_t type, const uint8_t *hdr, size_t hlen, const uint8_t *data,
		size_t dlen)
{
	size_t plen = hlen + dlen;
	if (plen > REC_MAX_PAYLOAD)
		return EF_E_TOO_LARGE;
	int rc = buf_reserve(&w->buf, &w->cap, w->len + REC_HDR + plen);
	if (rc)
		return rc;
	uint8_t *r = w->buf + w->len;
	memcpy(r + REC_HDR, hdr, hlen);
	if (dlen)
		memcpy(r + REC_HDR + hlen, data, dlen);
	w->len += frame(r, type, plen);
	return 0;
}

static size_t header_payload(uint8_t *p, const wal *w, uint64_t seq, uint64_t first)
{
	ef_be32(p, WAL_MAGIC);
	ef_be32(p + 4, WAL_VERSION);
	ef_be64(p + 8, w->cluster_id);
	ef_be64(p + 16, w->member_id);
	ef_be64(p + 24, seq);
	ef_be64(p + 32, first);
	ef_be64(p + 40, w->synced_hs.term);
	ef_be64(p + 48, w->synced_hs.vote);
	ef_be64(p + 56, w->synced_hs.commit);
	return 64 + put_snap(p + 64, &w->synced_snap);
}

static int segs_push(wal *w, uint64_t seq, uint64_t first, uint64_t max_index)
{
	if (w->n_segs == w->cap_segs) {
		size_t nc = w->cap_segs ? 2 * w->cap_segs : 16;
		struct wal_seg *ns = realloc(w->segs, nc * sizeof(*ns));
		if (!ns)
			return EF_E_NOMEM;
		w->segs = ns;
		w->cap_segs = nc;
	}
	w->segs[w->n_segs++] = (struct wal_seg){seq, first, max_index};
	return 0;
}

/* Preallocate [0, size) of fd; sparse extension when fallocate is unsupported. */
static int prealloc(int fd, uint64_t size)
{
	if (fallocate(fd, 0, 0, (off_t)size) == 0)
		return 0;
	if (errno != EOPNOTSUPP && errno != ENOSYS)
		return -1;
	struct stat st;
	if (fstat(fd, &st) != 0)
		return -1;
	if ((uint64_t)st.st_size >= size)
		return 0;
	return ftruncate(fd, (off_t)size);
}

/* Create segment seq with a header record (temp name, sync, rename, sync
 * dir), make it the open one.  The previous open segment, if any, must have
 * been sealed and closed by the caller. */
static int seg_create(wal *w, uint64_t seq, uint64_t first, char *err, size_t errlen)
{
	char tmp[4096], fin[4096];
	seg_name(tmp, sizeof(tmp), w->dir, seq, first, ".tmp");
	seg_name(fin, sizeof(fin), w->dir, seq, first, "");
	uint8_t rec[REC_HDR + 64 + 20 + 8 * RAFT_MAX_VOTERS];
	size_t n = frame(rec, REC_HEADER, header_payload(rec + REC_HDR, w, seq, first));

	int fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		seterr(err, errlen, "%s: %s", tmp, strerror(errno));
		return EF_E_IO;
	}
	uint64_t size = w->seg_bytes > n ? w->seg_bytes : n;
	if (prealloc(fd, size) != 0 || write_full(fd, rec, n, 0) != 0 ||
	    fs_cur->fdatasync(fs_cur->ud, fd) != 0 || rename(tmp, fin) != 0 ||
	    fsync_dir(w->dirfd) != 0) {
		seterr(err, errlen, "creating %s: %s", fin, strerror(errno));
		close(fd);
		unlink(tmp);
		return EF_E_IO;
	}
	int rc = segs_push(w, seq, first, 0);
	if (rc) {
		close(fd);
		return rc;
	}
	w->fd = fd;
	w->off = n;
	w->hdr_end = n;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Recovery                                                             */

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
			seterr(err, errlen, "%s: unsupported WAL version %u", path,
			       ef_get_be32(p + 4));
			return EF_E_CORRUPT;
		}
		uint64_t cid = ef_get_be64(p + 8), mid = ef_get_be64(p + 16);
		uint64_t seq = ef_get_be64(p + 24);
		raft_snapshot_meta sm;
		if (get_snap(p + 64, n - 64, &sm) != 0)
			return EF_E_MALFORMED;
		if (seq != seg->seq) {
			seterr(err, errlen, "%s: header says sequence %" PRIu64, path, seq);
			return EF_E_CORRUPT;
		}
		if ((w->cluster_id && cid != w->cluster_id) ||
		    (w->member_id && mid != w->member_id)) {
			seterr(err, errlen,
			       "%s: written by cluster %016" PRIx64 " member %016" PRIx64
			       ", expected cluster %016" PRIx64 " member %016" PRIx64,
			       path, cid, mid, w->cluster_id, w->member_id);
			return EF_E_CLUSTER_MISMATCH;
		}
		if (st->have_ids && (cid != st->cluster_id || mid != st->member_id)) {
			seterr(err, errlen, "%s: cluster/member id differs from older segments",
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
				seterr(err, errlen,
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
		if (get_snap(p, n, &sm) != 0)
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
		seterr(err, errlen, "%s: %s", path, strerror(errno));
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
			seterr(err, errlen, "%s: offset %zu: malformed record of type %u", path,
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
		seterr(err, errlen, "%s: offset 0: bad segment header (%s)", path,
		       why ? why : "empty file");
		rc = EF_E_CORRUPT;
		goto out;
	}
	if (!why || all_zero(buf + off, n - off))
		goto out; /* clean end (preallocated zeros) */
	if (!is_last || valid_record_after(buf, n, off + 1)) {
		seterr(err, errlen, "%s: offset %zu: %s%s", path, off, why,
		       is_last ? ", followed by valid records" : " in a sealed segment");
		rc = EF_E_CORRUPT;
		goto out;
	}
	*torn = 1;
out:
	free(buf);
	return rc;
}

static int seg_cmp(const void *a, const void *b)
{
	const struct wal_seg *x = a, *y = b;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* List DIR/wal's segments into w->segs (sorted), removing leftover .tmp files. */
static int list_segments(wal *w, char *err, size_t errlen)
{
	DIR *d = opendir(w->dir);
	if (!d) {
		seterr(err, errlen, "%s: %s", w->dir, strerror(errno));
		return EF_E_IO;
	}
	struct dirent *de;
	int rc = 0;
	while ((de = readdir(d))) {
		uint64_t seq, first;
		char tail[16];
		int used = 0;
		if (sscanf(de->d_name, "%16" SCNx64 "-%16" SCNx64 "%n", &seq, &first, &used) != 2 ||
		    used != 33)
			continue;
		snprintf(tail, sizeof(tail), "%s", de->d_name + used);
		if (strcmp(tail, ".wal.tmp") == 0) {
			unlinkat(w->dirfd, de->d_name, 0); /* creation interrupted by a crash */
			continue;
		}
		if (strcmp(tail, ".wal") != 0)
			continue;
		if ((rc = segs_push(w, seq, first, 0)))
			break;
	}
	closedir(d);
	if (!rc && w->n_segs)
		qsort(w->segs, w->n_segs, sizeof(*w->segs), seg_cmp);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Open / close                                                         */

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
	w->seg_bytes = __atomic_load_n(&default_seg_bytes, __ATOMIC_RELAXED);
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
		seterr(err, errlen, "%s: %s", w->dir, strerror(errno));
		rc = EF_E_IO;
		goto fail;
	}
	w->dirfd = open(w->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (w->dirfd < 0) {
		seterr(err, errlen, "%s: %s", w->dir, strerror(errno));
		rc = EF_E_IO;
		goto fail;
	}
	if (flock(w->dirfd, LOCK_EX | LOCK_NB) != 0) {
		seterr(err, errlen, "%s: %s", w->dir,
		       errno == EWOULDBLOCK ? "locked by another process" : strerror(errno));
		rc = errno == EWOULDBLOCK ? EF_E_LOCKED : EF_E_IO;
		goto fail;
	}
	if ((rc = list_segments(w, err, errlen)))
		goto fail;

	if (w->n_segs == 0) {
		if ((rc = seg_create(w, 1, 1, err, errlen)))
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
		seg_name(path, sizeof(path), w->dir, s->seq, s->first_index, "");
		if (i && s->seq != w->segs[i - 1].seq + 1) {
			seterr(err, errlen, "%s: segment %016" PRIx64 " is missing before it", path,
			       w->segs[i - 1].seq + 1);
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
		seterr(err, errlen,
		       "%s: entries start at %" PRIu64 " but the snapshot marker is at %" PRIu64
		       " (index gap)",
		       w->dir, l->e[0].index, st.snap.index);
		rc = EF_E_CORRUPT;
		goto fail;
	}

	/* Open the newest segment for appending; cut a torn tail. */
	w->fd = open(path, O_RDWR | O_CLOEXEC);
	if (w->fd < 0) {
		seterr(err, errlen, "%s: %s", path, strerror(errno));
		rc = EF_E_IO;
		goto fail;
	}
	w->off = end;
	w->hdr_end = hdr_end;
	struct stat fst;
	if (fstat(w->fd, &fst) != 0) {
		seterr(err, errlen, "%s: %s", path, strerror(errno));
		rc = EF_E_IO;
		goto fail;
	}
	if (torn || (uint64_t)fst.st_size < w->seg_bytes) {
		/* Cut the damage and restore the preallocated zero tail (also
		 * when the file was left short of it). */
		uint64_t size = w->seg_bytes > end ? w->seg_bytes : end;
		if ((torn && ftruncate(w->fd, (off_t)end) != 0) || prealloc(w->fd, size) != 0 ||
		    fsync(w->fd) != 0) {
			seterr(err, errlen, "%s: cutting torn tail at %" PRIu64 ": %s", path, end,
			       strerror(errno));
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

/* ------------------------------------------------------------------ */
/* Appending                                                            */

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
		int rc = pend(w, REC_ENTRY, h, sizeof(h), e[i].data, e[i].len);
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
	int rc = pend(w, REC_HARD_STATE, h, sizeof(h), NULL, 0);
	if (!rc)
		w->hs = *hs;
	return rc;
}

int wal_mark_snapshot(wal *w, const raft_snapshot_meta *m)
{
	if (w->err)
		return w->err;
	if (m->n_voters > RAFT_MAX_VOTERS)
		return EF_E_INVALID;
	uint8_t h[20 + 8 * RAFT_MAX_VOTERS];
	int rc = pend(w, REC_SNAPSHOT, h, put_snap(h, m), NULL, 0);
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
	if (ftruncate(w->fd, (off_t)w->off) != 0 || fs_cur->fdatasync(fs_cur->ud, w->fd) != 0)
		return EF_E_IO;
	close(w->fd);
	w->fd = -1;
	uint64_t seq = cur->seq + 1;
	return seg_create(w, seq, w->pending_first ? w->pending_first : w->last_index + 1, NULL, 0);
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
	if (write_full(w->fd, w->buf, w->len, w->off) != 0) {
		w->err = EF_E_IO;
		return EF_E_IO;
	}
	uint64_t t0 = (uint64_t)clock_mono_ns();
	if (fs_cur->fdatasync(fs_cur->ud, w->fd) != 0) {
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
		seg_name(path, sizeof(path), w->dir, s->seq, s->first_index, "");
		/* Oldest first, so a crash midway leaves a consecutive sequence. */
		if (unlink(path) != 0 && errno != ENOENT) {
			rc = EF_E_IO;
			break;
		}
	}
	memmove(w->segs, w->segs + done, (w->n_segs - done) * sizeof(*w->segs));
	w->n_segs -= done;
	if (fsync_dir(w->dirfd) != 0 && !rc)
		rc = EF_E_IO;
	return rc;
}

/* ------------------------------------------------------------------ */
/* Accessors                                                            */

void wal_set_segment_bytes(wal *w, uint64_t bytes)
{
	w->seg_bytes = bytes < 4096 ? 4096 : bytes;
}

void wal_set_default_segment_bytes(uint64_t bytes)
{
	if (!bytes)
		bytes = WAL_SEGMENT_BYTES_DEFAULT;
	__atomic_store_n(&default_seg_bytes, bytes < 4096 ? 4096 : bytes, __ATOMIC_RELAXED);
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
