/*
 * cache_int.h - what the files of fs/cache/ share: the index of the cache
 * directory (struct fs_cache), the record format, and the design of
 * -o cache_dir=DIR, last-known-good values on disk.  The module's whole
 * public contract is ../cache.h.  The files: index.c (the in-memory
 * index), files.c (the files in DIR, open and close), serve.c (on-line or
 * offline, answering from the cache, learning values), thread.c (the
 * cache thread: writes, probe, catch-up).
 *
 *
 * A daemon that reads its configuration from the mount must keep working
 * through a cluster outage.  So every value the mount sees (a lookup, a
 * getattr, an open, a watch event for a key it already keeps) is written to
 * DIR, one file per key, and when the cluster cannot answer, reads are
 * answered from those files: lookups, getattr, opens for reading and
 * directory listings (of the keys the cache holds), with the extended
 * attribute user.etcfs.stale giving the age of what is served.  Writes are
 * never answered here: they go to the cluster and fail with EIO.
 *
 * "Cannot answer" (cache_unreachable): a read fails with no member
 * reachable (connection refused, dial timeout), no leader, or no answer,
 * each after the client library's own retries and failovers, i.e. after at
 * most the mount's command timeout (-o timeout).  The mount is then
 * offline: later reads skip the cluster and are served from the cache at
 * once (cache_skip_read), so a reader waits one timeout, not one per
 * request.  The reflector's replays (its own thread, and the lookups
 * made for it) always ask: they follow a change the cluster has just
 * delivered.  The cache thread probes the cluster every PROBE_MS with a read
 * of the mount's consistency (a linearizable mount on a member without
 * quorum is offline; a serializable one is not); any cluster request that
 * succeeds also ends it.  While the cluster answers, nothing is served from
 * here.
 *
 * On the way back (and once at start) the cache thread catches up: every
 * cached key is read again, changed values rewritten, deleted keys dropped;
 * the inotify events for what changed come from the reflector, as for any
 * remote change (the watch resumes, or resync.c re-reads the prefix).
 *
 * On disk: DIR is made 0700 and the files 0600.  A key can hold any bytes,
 * so a file is named by the SHA-256 of its key ("k" + 64 hex digits) and
 * holds the key itself, which is compared on every read: no key can name a
 * path outside DIR.  A file is written as temp file + fsync + rename, then
 * DIR is fsync'd once per batch, so a crash leaves the old or the new value,
 * never a mix.  Layout (host byte order): "ETCFSC1\n", u32 key length, u32
 * value length, i64 mod revision, create revision, version, lease, mod time
 * (ns), seen time (ns, wall clock: when the cluster last confirmed it), the
 * key, the value, and a u64 FNV-1a checksum of all that.  A file that fails
 * to parse, or holds another key than its name says, is removed at mount.
 * DIR/state holds the watch revision up to which every cached key had every
 * change: a mount restarted while the cluster is down resumes its watch
 * from there, so the changes made meanwhile still come out as inotify
 * events once the cluster returns.  DIR/lock is flock'ed by the one mount
 * using DIR.
 *
 * Read path cost: noting a value the cache already has at that revision
 * changes a time in memory only; a file is written (and fsync'd, by the
 * cache thread, never by the FUSE request) only when a value is new or
 * changed.  Values live on disk; memory holds the index (key, metadata)
 * and values not yet written.
 */
#ifndef EF_FS_CACHE_INT_H
#define EF_FS_CACHE_INT_H

#include "../cache.h"

#define PROBE_MS 500
#define STATE_EVERY_MS 2000
#define RETRY_MS 1000 /* after a failed write (disk full, I/O error) */
#define NAME_LEN 66   /* "k" + 64 hex + NUL */

struct centry {
	uint8_t *key;
	uint32_t klen;
	ef_kv kv; /* key/value unset */
	uint64_t size;
	int64_t seen_ns; /* wall clock: the cluster last confirmed this value */
	uint8_t *pend;   /* value not yet on disk (malloc'ed), or NULL */
	uint64_t wgen;   /* bumped by every change to write */
	int dirty;       /* the file must be (re)written, or removed when gone */
	int gone;        /* deleted in the cluster: absent, file to remove */
	struct centry *hnext;
};

struct fs_cache {
	int dfd;
	int lockfd; /* DIR/lock, flock'ed: one mount per DIR */
	char *dir;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct centry **hash;
	size_t hcap, n;
	size_t ndirty;
	int64_t offline_ns; /* wall clock when the cluster stopped answering, 0 on-line */
	int catchup;        /* read every cached key again when on-line */
	int64_t state_rev;  /* revision in DIR/state */
	int stop;
	pthread_t thread;
	int started;
	pid_t tid;
	uint64_t resyncs; /* m->ctr.resyncs when last looked at */
	int failing;      /* the last flush failed (logged once until one works) */
};

struct rec {
	ef_kv kv;
	int64_t seen_ns;
	uint8_t *key, *val; /* point into the file buffer */
	uint32_t klen, vlen;
};

#define HDR_LEN (8 + 4 + 4 + 6 * 8)

/* ---- index.c (c->mu held) ---- */
uint64_t cache_fnv(const uint8_t *p, size_t n, uint64_t h);
struct centry *cache_find(struct fs_cache *c, const uint8_t *k, uint32_t n);
/* A new entry for key k (NULL on ENOMEM); the caller fills it. */
struct centry *cache_add(struct fs_cache *c, const uint8_t *k, uint32_t n);
void cache_entry_free(struct centry *e);
/* Take x out of the index and free it. */
void cache_unlink_entry(struct fs_cache *c, struct centry *x);
/* e must be written (or removed when gone) by the cache thread. */
void cache_mark_dirty(struct fs_cache *c, struct centry *e);
/* Keep value val (vlen bytes) with metadata kv for key, seen current at
 * seen_ns: a new file only when the revision is new to the cache. */
void cache_keep(struct fs_cache *c, const uint8_t *key, uint32_t klen, const ef_kv *kv,
		const uint8_t *val, uint32_t vlen, int64_t seen_ns);

/* ---- files.c ---- */
/* The file name of key: "k" + hex SHA-256. */
void cache_file_name(const uint8_t *key, uint32_t klen, char out[NAME_LEN]);
/* Parse a whole file b (n bytes) into r (pointing into b): 0 or -1. */
int cache_parse(uint8_t *b, size_t n, struct rec *r);
/* Whole file into a malloc'ed buffer; NULL when missing or unreadable. */
uint8_t *cache_slurp(int dfd, const char *name, size_t *n);
/* temp file + fsync + rename; the caller fsyncs the directory.  0 or errno. */
int cache_write_atomic(int dfd, const char *name, const uint8_t *buf, size_t n);
/* The file of e holding val (e->size bytes), malloc'ed; NULL on ENOMEM. */
uint8_t *cache_encode(const struct centry *e, const uint8_t *val, size_t *n);
/* DIR/state := rev, durably (c->mu held). */
void cache_save_state(struct fs_cache *c, int64_t rev);

#endif
