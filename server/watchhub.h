/*
 * watchhub.h - the watch hub of one member (prefix watchhub_): matches the
 * events of every applied revision against all watches of all streams and
 * delivers them, and catches new or lagging watches up from the store's
 * history.
 *
 * Guarantees (as etcd's): per watch, events in revision order, no duplicate,
 * no gap; all events of one revision in one message; a watch whose start
 * revision is compacted is cancelled with compact_revision set; a slow
 * stream never blocks the apply loop or other streams: its events are
 * buffered up to a bound, past it the watch is marked lagging and caught up
 * from the store later (or cancelled with a reason if even that fails).
 * Matching uses an index on keys and ranges, not a scan of every watch.
 */
#ifndef EF_WATCHHUB_H
#define EF_WATCHHUB_H

#include <stddef.h>
#include <stdint.h>

#include "node.h"
#include "store.h"

typedef struct watchhub watchhub;
typedef struct hub_stream hub_stream;

/* fill_hdr fills cluster_id, member_id, raft_term (revision is the hub's). */
typedef void (*watchhub_hdr_fn)(void *ud, ef_resp_header *h);

watchhub *watchhub_new(store *s, watchhub_hdr_fn fill_hdr, void *ud);
void watchhub_free(watchhub *h);

/* Streams (node_wstream_* forward here). */
int watchhub_stream_open(watchhub *h, node_watch_cb cb, void *ud, hub_stream **out);
int watchhub_stream_request(hub_stream *s, const ef_msg *req);
void watchhub_stream_close(hub_stream *s);

/* Called by the apply loop after store_commit of a batch: the events (with
 * prev_kv filled) and the store revision after the batch.  Must return
 * quickly: it copies/queues and the hub's own thread delivers. */
void watchhub_publish(watchhub *h, const store_events *ev, int64_t revision);

/* The store was replaced (snapshot installed): every watch is caught up
 * from the store again from its next revision. */
void watchhub_resync(watchhub *h);

uint64_t watchhub_watchers(watchhub *h);

/* Tuning (any thread, any time).  Interval of the progress notifications
 * sent to idle synced watches created with progress_notify (default 10
 * minutes, as etcd's). */
void watchhub_set_progress_interval_ms(watchhub *h, uint32_t ms);
/* Slow consumers: a stream buffers at most outbox_events events (default
 * 4096; a single message larger than that is still accepted into an empty
 * outbox); past it the watch is lagging and caught up from the store.  A
 * callback that keeps returning non-zero is retried with back-off (10 ms
 * doubling to 1 s); after max_failures consecutive failures every watch of
 * the stream is cancelled with reason "etcfs: watcher too slow" (default 20).
 * 0 keeps the current value. */
void watchhub_set_slow_consumer(watchhub *h, uint32_t outbox_events, uint32_t max_failures);
/* Bytes of published events the hub may hold before its thread matched them
 * (default 64 MiB).  Past it publish drops the queue and every watch is
 * caught up from the store instead.  0 restores the default. */
void watchhub_set_queue_bytes(watchhub *h, size_t bytes);

#endif
