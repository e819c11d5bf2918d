/*
 * wal.h - the write-ahead log of Raft entries and hard state (prefix wal_),
 * and the snapshot files next to it (prefix snapfile_).
 *
 * Layout: DIR/wal/0000000000000001-0000000000000001.wal ... segment files
 * named <sequence>-<first index>, each a sequence of records
 *
 *     u32 length of payload | u32 CRC32C of (type byte + payload) | u8 type | payload
 *
 * record types: ENTRY (term, index, entry type, data), HARD_STATE (term,
 * vote, commit), SNAPSHOT (index, term: entries up to here live in a
 * snapshot), and a segment header (magic, version, cluster id, member id).
 * Segments roll over at a size (64 MiB default); each segment header repeats
 * the latest hard state and snapshot marker so that older segments can be
 * deleted.
 *
 * Durability: wal_append() only buffers; wal_sync() writes and fsyncs (and
 * fsyncs the directory after creating a segment).  The host calls wal_sync
 * once per Raft ready (group commit) before sending anything.
 *
 * Recovery (wal_open): reads every segment in order; a torn or
 * checksum-failing record at the very end of the last segment (a crash in
 * mid-write) is truncated away; a bad record followed by valid data, or a
 * gap in indexes, is corruption: wal_open fails with EF_E_CORRUPT and a
 * message naming the file and offset.
 *
 * Storage goes through a small table of functions (wal_fs) so tests can use
 * a simulated disk that loses everything not fsync'd.
 */
#ifndef EF_WAL_H
#define EF_WAL_H

#include <stddef.h>
#include <stdint.h>

#include "raft/raft.h"

typedef struct wal wal;

typedef struct wal_recovered {
	raft_hard_state hs;
	raft_snapshot_meta snap; /* index 0 when none */
	raft_entry *entries;     /* after snap.index, contiguous; malloc'ed, data malloc'ed */
	size_t n_entries;
	uint64_t cluster_id, member_id;
} wal_recovered;

/* Open (creating if absent) the WAL under dir.  cluster_id/member_id are
 * written into new segments and checked against existing ones
 * (EF_E_CLUSTER_MISMATCH); 0 means "not checked" (rec reports what is
 * stored).  DIR/wal is flock'ed while open: EF_E_LOCKED for a second opener.
 * Errors: EF_E_CORRUPT, EF_E_CLUSTER_MISMATCH, EF_E_LOCKED, EF_E_IO,
 * EF_E_NOMEM, with a message naming the file (and offset) in err. */
int wal_open(const char *dir, uint64_t cluster_id, uint64_t member_id, wal **out,
	     wal_recovered *rec, char *err, size_t errlen);
void wal_recovered_free(wal_recovered *rec);
/* Close without syncing: anything appended since the last wal_sync is
 * dropped, exactly as in a crash. */
void wal_close(wal *w);

/* Buffer entries (an entry whose index <= the last one truncates the log
 * there first) and/or a hard state.  An index past wal_last_index()+1 is
 * EF_E_INVALID (nothing of the call is buffered). */
int wal_append(wal *w, const raft_entry *e, size_t n);
int wal_set_hard_state(wal *w, const raft_hard_state *hs);
/* Record that a snapshot at (index, term) exists, so recovery starts there.
 * Recovery keeps the entries after it when the log's entry at index has the
 * same term, and drops the whole log otherwise (Raft paper, Figure 13). */
int wal_mark_snapshot(wal *w, const raft_snapshot_meta *m);
/* Write and fsync everything buffered (one pwrite, one fdatasync).  After a
 * failed write or fsync every call returns EF_E_IO: close and reopen. */
int wal_sync(wal *w);
/* Delete whole segments whose entries are all <= index (after a snapshot).
 * index is capped at the latest snapshot marker made durable by wal_sync,
 * and the newest segment is never deleted. */
int wal_release_to(wal *w, uint64_t index);

/* ---- snapshot files: DIR/snap/<term>-<index>.snap ----
 * zstd-compressed LMDB environment copy with a header (magic, index, term,
 * voters, uncompressed size, SHA-256 of the compressed payload). */
/* Compress the file at src_path into a snapshot named after m; returns its path in out. */
int snapfile_write(const char *dir, const raft_snapshot_meta *m, const char *src_path,
		   char *out_path, size_t out_len);
/* Check the checksum and decompress into dst_path; fill m. EF_E_CORRUPT. */
int snapfile_read(const char *snap_path, const char *dst_path, raft_snapshot_meta *m);
/* Path of the newest valid snapshot in dir (empty string when none). */
int snapfile_latest(const char *dir, char *out_path, size_t out_len, raft_snapshot_meta *m);

/* Keep the newest `keep` snapshot files in DIR/snap (by index, then term) and
 * delete the older ones and leftover *.tmp files.  snapfile_write calls it
 * with SNAPFILE_KEEP after each new snapshot.  One writer at a time. */
#define SNAPFILE_KEEP 2
int snapfile_prune(const char *dir, int keep);
/* Check header and checksum of a snapshot file without decompressing it;
 * fill m (may be NULL).  EF_E_CORRUPT, EF_E_NOT_FOUND, EF_E_IO. */
int snapfile_verify(const char *snap_path, raft_snapshot_meta *m);

/* CRC32C (Castagnoli), exposed for tests and other records.  Uses the SSE4.2
 * instruction when the CPU has it; ef_crc32c_sw is the table version (tests
 * compare the two). */
uint32_t ef_crc32c(uint32_t crc, const void *p, size_t n);
uint32_t ef_crc32c_sw(uint32_t crc, const void *p, size_t n);

/* ---- additions: tuning, metrics, fault injection ---- */

#define WAL_SEGMENT_BYTES_DEFAULT (64u * 1024u * 1024u)
/* Size at which the next wal_sync starts a new segment (also how much a new
 * segment preallocates).  Default WAL_SEGMENT_BYTES_DEFAULT; tests use a few
 * KiB to exercise roll-over. */
void wal_set_segment_bytes(wal *w, uint64_t bytes);
/* Process-wide value of the same for wals opened afterwards (0 restores the
 * default); lets tests keep even the first segment small. */
void wal_set_default_segment_bytes(uint64_t bytes);

/* Statistics for the metrics endpoint; safe to read from another thread. */
uint64_t wal_fsyncs(wal *w);         /* fdatasync calls made by wal_sync */
uint64_t wal_fsync_ns_total(wal *w); /* their summed latency */
uint64_t wal_fsync_ns_last(wal *w);  /* latency of the latest one */
uint64_t wal_bytes_written(wal *w);  /* record bytes written since open */
/* Called after every fdatasync of wal_sync with its latency in seconds (e.g.
 * metrics_observe on etcd_disk_wal_fsync_duration_seconds).  Runs on the
 * thread calling wal_sync. */
void wal_set_fsync_observer(wal *w, void (*fn)(void *ud, double seconds), void *ud);

/* Index of the last entry appended (buffered or not), or of the snapshot
 * marker when that is higher; 0 for an empty log. */
uint64_t wal_last_index(wal *w);
/* Byte offset in the newest segment where the next record will be written
 * (tests use it to tear records at exact offsets). */
uint64_t wal_write_offset(wal *w);
/* Number of segment files currently held. */
size_t wal_segment_count(wal *w);

/* Fault injection: every write and data sync of segment files goes through
 * this table (process-wide; NULL restores the real pwrite/fdatasync).  A test
 * can write only part of a buffer and fail, or fail an fsync, to simulate a
 * crash in mid-write; after a failed write or sync the wal refuses further
 * work (EF_E_IO) and must be closed and reopened, as after a real crash. */
typedef struct wal_fs {
	long (*pwrite)(void *ud, int fd, const void *p, size_t n, int64_t off);
	int (*fdatasync)(void *ud, int fd);
	void *ud;
} wal_fs;
void wal_set_fs(const wal_fs *fs);

#endif
