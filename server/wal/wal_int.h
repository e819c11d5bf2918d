/*
 * wal_int.h - private state of the write-ahead log, shared by the files of
 * server/wal/.  Nothing here is visible to the host; wal.h is the contract.
 *
 * One file per concern:
 *   record.c   the record format: framing, CRC, the pending buffer, the
 *              segment header and snapshot marker payloads
 *   segment.c  segment files: names, creation (tmp, preallocate, header,
 *              sync, rename, sync dir), listing, and the fault-injection
 *              table every segment write and data sync goes through
 *   recover.c  wal_open: reading every segment back, torn tails versus
 *              corruption, and wal_close
 *   append.c   wal_append / wal_set_hard_state / wal_mark_snapshot (buffer
 *              only), wal_sync (one write, one fdatasync, roll-over),
 *              wal_release_to, tuning and statistics
 *
 * Threads: a wal is used by one thread (the host loop); only the st_*
 * statistics are read with atomics from elsewhere.  wal_fs_cur and
 * wal_default_seg_bytes are process-wide.
 */
#ifndef EF_WAL_INT_H
#define EF_WAL_INT_H

#include <stddef.h>
#include <stdint.h>

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
/* record.c                                                             */

/* printf into err (nothing when err is NULL or errlen 0). */
void wal_seterr(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Encode the snapshot meta (index, term, n_voters, voters) at p; returns bytes. */
#define WAL_SNAP_MAX (24 + 8 * RAFT_MAX_VOTERS)
size_t wal_put_snap(uint8_t *p, const raft_snapshot_meta *m);
/* Decode it: EF_E_TRUNCATED, EF_E_MALFORMED. */
int wal_get_snap(const uint8_t *p, size_t n, raft_snapshot_meta *m);
/* Frame a record around payload p (already at dst + REC_HDR) and return its size. */
size_t wal_frame(uint8_t *dst, uint8_t type, size_t payload_len);
/* Append a record with the given payload to the pending buffer. */
int wal_pend(wal *w, uint8_t type, const uint8_t *hdr, size_t hlen, const uint8_t *data,
	     size_t dlen);
/* Payload of a segment header record (ids, seq, first index, the durable
 * hard state and snapshot marker) at p; returns bytes. */
size_t wal_header_payload(uint8_t *p, const wal *w, uint64_t seq, uint64_t first);

/* ------------------------------------------------------------------ */
/* segment.c                                                            */

/* The fault-injection table in force (wal_set_fs). */
extern const wal_fs *wal_fs_cur;
/* Write all of p at off; 0 or -1 with errno. */
int wal_write_full(int fd, const uint8_t *p, size_t n, uint64_t off);
void wal_seg_name(char *out, size_t n, const char *dir, uint64_t seq, uint64_t first,
		  const char *suffix);
int wal_fsync_dir(int dirfd);
int wal_segs_push(wal *w, uint64_t seq, uint64_t first, uint64_t max_index);
/* Preallocate [0, size) of fd; sparse extension when fallocate is unsupported. */
int wal_prealloc(int fd, uint64_t size);
/* Create segment seq with a header record (temp name, sync, rename, sync
 * dir), make it the open one.  The previous open segment, if any, must have
 * been sealed and closed by the caller. */
int wal_seg_create(wal *w, uint64_t seq, uint64_t first, char *err, size_t errlen);
/* List DIR/wal's segments into w->segs (sorted), removing leftover .tmp files. */
int wal_list_segments(wal *w, char *err, size_t errlen);

/* ------------------------------------------------------------------ */
/* append.c                                                             */

/* Segment size of wals opened from now on (atomic). */
extern uint64_t wal_default_seg_bytes;

#endif
