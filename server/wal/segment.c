/*
 * segment.c - the WAL's segment files.
 *
 * Segments are named <sequence>-<first index>.wal (hex) in DIR/wal.
 *   - Preallocation.  A new segment is fallocate'd to its full size (64 MiB
 *     by default) before use, so appending never changes the file size and
 *     fdatasync only has to flush data, not the inode.  The unused tail reads
 *     as zeros, hence a zero length field ends the records of a segment.
 *   - Crash safety of file creation.  A segment is created as NAME.tmp,
 *     preallocated, given its header record, fdatasync'ed, renamed to NAME,
 *     and the directory is fsync'ed.  A segment under its final name
 *     therefore always has a complete header; a NAME.tmp left by a crash is
 *     deleted when the segments are listed.
 *   - Fault injection.  Every write and data sync of a segment goes through
 *     the wal_fs table (wal_set_fs), so tests can tear writes and fail
 *     syncs the way a crash would.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../proto/errors.h"
#include "wal_int.h"

/* ------------------------------------------------------------------ */
/* Fault-injection table                                              */

static long fs_real_pwrite(void *ud, int fd, const void *p, size_t n, int64_t off)
{
	return (long)pwrite(fd, p, n, (off_t)off);
}

static int fs_real_fdatasync(void *ud, int fd)
{
	return fdatasync(fd);
}

static const wal_fs fs_real = {fs_real_pwrite, fs_real_fdatasync, NULL};
const wal_fs *wal_fs_cur = &fs_real;

void wal_set_fs(const wal_fs *fs)
{
	wal_fs_cur = fs ? fs : &fs_real;
}

/* Write all of p at off; 0 or -1 with errno. */
int wal_write_full(int fd, const uint8_t *p, size_t n, uint64_t off)
{
	while (n) {
		long r = wal_fs_cur->pwrite(wal_fs_cur->ud, fd, p, n, (int64_t)off);
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
/* Segment files                                                      */

void wal_seg_name(char *out, size_t n, const char *dir, uint64_t seq, uint64_t first,
		  const char *suffix)
{
	snprintf(out, n, "%s/%016" PRIx64 "-%016" PRIx64 ".wal%s", dir, seq, first, suffix);
}

int wal_fsync_dir(int dirfd)
{
	return fsync(dirfd) == 0 || errno == EINVAL ? 0 : -1;
}

int wal_segs_push(wal *w, uint64_t seq, uint64_t first, uint64_t max_index)
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
int wal_prealloc(int fd, uint64_t size)
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
int wal_seg_create(wal *w, uint64_t seq, uint64_t first, char *err, size_t errlen)
{
	char tmp[4096], fin[4096];
	wal_seg_name(tmp, sizeof(tmp), w->dir, seq, first, ".tmp");
	wal_seg_name(fin, sizeof(fin), w->dir, seq, first, "");
	uint8_t rec[REC_HDR + 64 + WAL_SNAP_MAX];
	size_t n = wal_frame(rec, REC_HEADER, wal_header_payload(rec + REC_HDR, w, seq, first));

	int fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		wal_seterr(err, errlen, "%s: %s", tmp, strerror(errno));
		return EF_E_IO;
	}
	uint64_t size = w->seg_bytes > n ? w->seg_bytes : n;
	if (wal_prealloc(fd, size) != 0 || wal_write_full(fd, rec, n, 0) != 0 ||
	    wal_fs_cur->fdatasync(wal_fs_cur->ud, fd) != 0 || rename(tmp, fin) != 0 ||
	    wal_fsync_dir(w->dirfd) != 0) {
		wal_seterr(err, errlen, "creating %s: %s", fin, strerror(errno));
		close(fd);
		unlink(tmp);
		return EF_E_IO;
	}
	int rc = wal_segs_push(w, seq, first, 0);
	if (rc) {
		close(fd);
		return rc;
	}
	w->fd = fd;
	w->off = n;
	w->hdr_end = n;
	return 0;
}

static int seg_cmp(const void *a, const void *b)
{
	const struct wal_seg *x = a, *y = b;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* List DIR/wal's segments into w->segs (sorted), removing leftover .tmp files. */
int wal_list_segments(wal *w, char *err, size_t errlen)
{
	DIR *d = opendir(w->dir);
	if (!d) {
		wal_seterr(err, errlen, "%s: %s", w->dir, strerror(errno));
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
		if ((rc = wal_segs_push(w, seq, first, 0)))
			break;
	}
	closedir(d);
	if (!rc && w->n_segs)
		qsort(w->segs, w->n_segs, sizeof(*w->segs), seg_cmp);
	return rc;
}
