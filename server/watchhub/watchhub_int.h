/*
 * watchhub_int.h - private state of the watch hub, shared by the files of
 * server/watchhub/.  Nothing here is visible to the hub's users (node,
 * gateway, net, the gRPC server); watchhub.h is the contract.
 *
 * One file per concern:
 *   hub.c       lifecycle (watchhub_new/free), the hub thread's loop, tuning
 *               setters, the watcher count
 *   index.c     the matching index of synced watches (exact-key hash table,
 *               range interval tree) and the synced/unsynced groups
 *   outbox.c    watch responses as single malloc blocks, per-stream outboxes
 *               and the ready list the senders take streams from
 *   sender.c    the sender threads that run the stream callbacks, back-off
 *               and giving up on slow consumers
 *   registry.c  streams and watches: open, create, cancel, progress
 *               requests, close
 *   publish.c   the apply thread's side (publish, resync) and the hub
 *               thread's matching of queued batches
 *   catchup.c   unsynced watches served from the store's history
 *   progress.c  periodic progress notifications
 *
 * Three kinds of threads meet here: the apply thread (publish/resync, qmu
 * only), the hub thread (matching, catch-up, progress, back-off expiry) and
 * HUB_SENDERS sender threads (callbacks).  Plus any caller of the public
 * API (stream requests, close, tuning).
 *
 * Locks: `mu` guards streams, watches, the index and outboxes; `qmu` guards
 * the queue.  Order: mu before qmu (hub_kick_locked_q takes qmu with mu
 * held).  Callbacks and store reads run with neither.  fill_hdr is called by
 * the senders with no lock held.  Every field below says which lock guards
 * it; "immutable" fields are set before the object is shared and never
 * change.  Functions declared here say what they expect of the locks.
 */
#ifndef EF_WATCHHUB_INT_H
#define EF_WATCHHUB_INT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "../watchhub.h"

#define HUB_SENDERS 4
#define HUB_CATCHUP_CHUNK 512   /* events per store read */
#define HUB_CATCHUP_PER_PASS 64 /* watches served between two queue drains */
#define HUB_QUEUE_MAX_BYTES (64u << 20)
#define HUB_DEFAULT_PROGRESS_MS (10u * 60u * 1000u)
#define HUB_DEFAULT_OUTBOX 4096u
#define HUB_DEFAULT_MAX_FAILURES 20u
#define HUB_BACKOFF_MIN_MS 10
#define HUB_BACKOFF_MAX_MS 1000

#define REASON_COMPACTED "etcdserver: mvcc: required revision has been compacted"
#define REASON_TOO_SLOW "etcfs: watcher too slow"
#define REASON_DUP_ID "mvcc: duplicate watch ID provided on the WatchStream"
#define REASON_EMPTY_RANGE "mvcc: watcher range is empty"
#define REASON_NOT_EXIST "mvcc: watcher does not exist"

#define ALIGN8(x) (((x) + 7) & ~(size_t)7)

enum wstate {
	W_SYNCED = 1,
	W_UNSYNCED = 2,
	W_GONE = 3
};

struct kentry;

/* One watch.  Guarded by mu unless said otherwise. */
struct hub_watch {
	hub_stream *s; /* NULL once GONE */
	/* id, req_id, key, end, klen, elen and the flags up to progress_notify
	 * are immutable after watch_create: the catch-up reads them without mu
	 * while the watch is pinned by `catching`. */
	int64_t id;
	uint64_t req_id; /* id of the WATCH_CREATE request: every answer carries it */
	uint8_t *key, *end;
	uint32_t klen, elen;       /* elen 0: single key */
	uint8_t is_range, end_inf; /* end_inf: range_end "\0" (every key >= key) */
	uint8_t prev_kv, no_put, no_delete, progress_notify;
	/* First revision not given yet.  SYNCED implies next_rev > deliv_rev
	 * at the time it joined; matching skips events below it. */
	int64_t next_rev;
	int state;           /* enum wstate */
	int catching;        /* the hub thread reads the store for it, unlocked: do not free */
	int sent_since_tick; /* events queued since the last progress tick */
	struct hub_watch *sprev, *snext; /* stream's watches */
	/* SYNCED: exact-key chain of `ke`, or the range list.  UNSYNCED: hub's
	 * unsynced list. */
	struct hub_watch *prev, *next;
	struct kentry *ke;
	/* matching scratch (hub thread only, mu held) */
	uint64_t touch_gen;
	uint32_t *pend, pend_n, pend_cap;
	int64_t pend_lost_rev; /* first event that did not fit in pend (no memory), 0 none */
	struct hub_watch *tnext;
};

/* One message waiting in an outbox: header, then the events, prev_kvs and
 * bytes in the same block.  While queued it belongs to its stream's outbox
 * (mu); a sender that pops it owns it, without a lock, until it frees it or
 * puts it back at the head under mu. */
struct omsg {
	struct omsg *next;
	struct hub_watch *w; /* the watch it belongs to (purge on cancel); NULL: stream-wide */
	uint32_t n_events;
	ef_msg m; /* hdr.revision set; the rest of hdr is filled at send time */
};

/* One watch stream.  h, cb and ud are immutable; everything else is
 * guarded by mu. */
struct hub_stream {
	watchhub *h;
	node_watch_cb cb;
	void *ud;
	struct hub_watch *watches;
	uint32_t n_unsynced;
	int64_t next_auto_id; /* etcd's first watch id is 0 */
	struct omsg *out_head, *out_tail;
	uint64_t out_events;   /* sum of n_events in the outbox (not the one in flight) */
	int busy;              /* a sender is inside cb */
	pthread_t busy_thread; /* meaningful while busy */
	int in_ready;
	struct hub_stream *rprev, *rnext; /* ready list */
	int closing, free_on_return;
	int dead;            /* watches cancelled as too slow; cleared once the outbox drains */
	uint32_t failures;   /* consecutive callback failures */
	int64_t retry_at_ms; /* 0: not backing off */
	struct hub_stream *prev, *next; /* hub's streams */
};

/* A key of the exact-key index and the synced single-key watches on it
 * (mu; key, klen and hash immutable). */
struct kentry {
	struct kentry *next;
	uint64_t hash;
	struct hub_watch *head;
	uint32_t klen;
	uint8_t key[];
};

enum qkind {
	Q_BATCH = 1,
	Q_MARKER = 2
};

/* One published batch (or a marker: every synced watch to the store).
 * Immutable once queued; `next` is guarded by qmu while it is queued, and
 * the hub thread owns the items it took off the queue. */
struct qitem {
	struct qitem *next;
	int kind;
	int64_t revision;
	uint32_t n;
	ef_event *ev;
	size_t bytes;
};

struct watchhub {
	/* immutable after watchhub_new */
	store *st;
	watchhub_hdr_fn fill_hdr;
	void *ud;

	/* ---- guarded by mu ---- */
	pthread_mutex_t mu;
	pthread_cond_t send_cv;  /* senders wait for ready streams */
	pthread_cond_t close_cv; /* stream_close waits for the sender to leave cb */
	int stopping;
	struct hub_stream *streams;
	struct hub_stream *ready_head, *ready_tail;
	uint32_t n_backoff;                         /* streams with retry_at_ms set */
	struct hub_watch *unsynced, *unsynced_tail; /* FIFO: catch-up serves it round-robin */
	int64_t deliv_rev; /* last revision matched (only the hub thread writes it) */
	uint64_t n_watchers;
	uint32_t progress_ms;
	int64_t next_tick_ms;
	uint32_t outbox_max, max_failures;

	/* exact-key index (mu) */
	struct kentry **buckets;
	size_t nbuckets, nentries;
	/* range index (mu; rarr/rmax rebuilt by the hub thread only) */
	struct hub_watch *ranges; /* synced range watches (list) */
	size_t n_ranges;
	int ranges_dirty;
	struct hub_watch **rarr, **rmax;
	size_t rcap;
	/* matching scratch (hub thread only, mu held) */
	uint64_t gen;
	struct hub_watch *touched;

	/* ---- guarded by qmu ---- */
	pthread_mutex_t qmu;
	pthread_cond_t qcv; /* CLOCK_MONOTONIC */
	struct qitem *qhead, *qtail;
	size_t qbytes, qmax; /* bytes queued; past qmax publish drops the queue */
	uint64_t overflows;  /* since the last log line about them */
	int64_t overflow_log_ms;
	int kick, qstop;

	/* threads: written by watchhub_new before anything else runs, read by
	 * watchhub_free after every thread stopped; no lock */
	pthread_t hub_thread;
	pthread_t senders[HUB_SENDERS];
	int n_senders, hub_started;
};

/* ------------------------------------------------------------------ */
/* hub.c                                                                */

/* Wake the hub thread (catch-up to do, tuning changed).  Takes qmu: call
 * it with mu held or with no lock. */
void hub_kick_locked_q(watchhub *h);

/* ------------------------------------------------------------------ */
/* index.c (mu held)                                                    */

int hub_keycmp(const uint8_t *a, uint32_t an, const uint8_t *b, uint32_t bn);
/* Does range watch w's end lie strictly above key k (k < end)? */
int hub_end_above(const struct hub_watch *w, const uint8_t *k, uint32_t kn);
uint64_t hub_key_hash(const uint8_t *p, uint32_t n);
struct kentry *hub_ktable_find(watchhub *h, const uint8_t *k, uint32_t kn, uint64_t hash);
/* Unsynced list and index membership. */
void hub_unsynced_add(watchhub *h, struct hub_watch *w);
void hub_unsynced_del(watchhub *h, struct hub_watch *w);
int hub_synced_add(watchhub *h, struct hub_watch *w); /* EF_E_NOMEM */
/* Leave whatever group w is in (state is then undefined until set). */
void hub_group_leave(watchhub *h, struct hub_watch *w);
/* Where a synced watch resumes from the store. */
int64_t hub_resume_rev(const watchhub *h, const struct hub_watch *w);
/* Move a synced watch to the unsynced group, to be served from rev. */
void hub_make_unsynced(watchhub *h, struct hub_watch *w, int64_t rev);
/* Unsynced to synced (stays unsynced when the index has no memory). */
void hub_make_synced(watchhub *h, struct hub_watch *w);
/* Sort the range watches into the interval tree (hub thread). */
int hub_ranges_rebuild(watchhub *h);

/* ------------------------------------------------------------------ */
/* outbox.c (mu held, except the two message builders)                  */

void hub_put_buf(uint8_t **p, ef_buf *b);
/* A message with the events base[idx[i]] (or base[i] when idx is NULL) for
 * watch w; prev_kv kept only when w asked for it.  NULL: out of memory. */
struct omsg *hub_omsg_events(struct hub_watch *w, const ef_event *base, const uint32_t *idx,
			     uint32_t n, int64_t hdr_rev);
/* created / canceled / progress message.  NULL: out of memory. */
struct omsg *hub_omsg_ctl(struct hub_watch *w, uint64_t req_id, int64_t watch_id, int created,
			  int canceled, int64_t compact_rev, const char *reason, int64_t hdr_rev);
void hub_ready_push(watchhub *h, hub_stream *s);
void hub_ready_remove(watchhub *h, hub_stream *s);
/* Takes ownership of m (NULL: out of memory, logged and dropped). */
void hub_out_push(hub_stream *s, struct omsg *m);
/* Drop queued messages of watch w (every message when w is NULL). */
void hub_out_purge(hub_stream *s, struct hub_watch *w);

/* ------------------------------------------------------------------ */
/* sender.c                                                             */

/* Body of a sender thread (arg: the hub). */
void *hub_sender_main(void *arg);
/* Wake streams whose back-off ended; returns the next deadline (0: none).
 * Hub thread, mu held. */
int64_t hub_backoff_expire(watchhub *h, int64_t now);

/* ------------------------------------------------------------------ */
/* registry.c (mu held)                                                 */

void hub_watch_free(struct hub_watch *w);
/* Remove w from its stream, its group and the outbox; freed now, or by the
 * hub thread when a catch-up read is in flight. */
void hub_watch_remove(watchhub *h, struct hub_watch *w);
struct hub_watch *hub_stream_find(hub_stream *s, int64_t id);
/* Cancel with a message (compacted, too slow, store error). */
void hub_watch_cancel(watchhub *h, struct hub_watch *w, int64_t compact_rev, const char *reason);
/* Free a stream no thread uses any more (outbox included). */
void hub_stream_free(hub_stream *s);

/* ------------------------------------------------------------------ */
/* publish.c (hub thread, mu held)                                      */

void hub_match_batch(watchhub *h, const struct qitem *q);
/* Queue overflow or resync: every synced watch goes to the store. */
void hub_apply_marker(watchhub *h, const struct qitem *q);

/* ------------------------------------------------------------------ */
/* catchup.c (hub thread; mu held on entry and exit)                    */

/* One pass: one store read for up to HUB_CATCHUP_PER_PASS unsynced
 * watches.  Returns non-zero if it made progress (call again). */
int hub_catchup_pass(watchhub *h, ef_arena *a);

/* ------------------------------------------------------------------ */
/* progress.c (hub thread, mu held)                                     */

void hub_progress_tick(watchhub *h);

#endif
