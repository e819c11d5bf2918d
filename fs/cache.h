/*
 * cache.h - -o cache_dir=DIR: the last-known-good copy of every value the
 * mount has seen, on disk, served when the cluster cannot answer
 * (fs/cache/cache_int.h has the design; man/etcfs.1, CACHE DIRECTORY, the contract).
 *
 * Lock order: m->mu before the cache's own lock.  Functions marked "m->mu
 * held" are called from the handlers with it; the others take what they
 * need.  Every function is a no-op (or answers "not cached") without
 * -o cache_dir.
 */
#ifndef EF_FS_CACHE_H
#define EF_FS_CACHE_H

#include <stdint.h>

#include "etcfs.h"

/* Open (creating it 0700) and load DIR; before daemonizing, so errors reach
 * the caller.  0 or an errno (message printed). */
int cache_open(struct fs_mount *m, const char *dir);
/* Start / stop the cache thread (writes, probe, catch-up): after the fork. */
int cache_start(struct fs_mount *m);
void cache_stop(struct fs_mount *m);
void cache_close(struct fs_mount *m);

/* ---- the read gate (kv.c) ---- */
/* 1: the cluster did not answer the last read and has not answered a probe
 * since, so a read is answered from the cache at once instead of waiting
 * for another timeout.  The reflector and the cache thread always ask. */
int cache_skip_read(struct fs_mount *m);
/* The calling thread serves the reflector (on) or no longer (off): a
 * replay follows a change the cluster just delivered, so its questions
 * always go to the cluster, even while the mount is still offline. */
void cache_always_ask(int on);
/* After a cluster request: a failure of the "cannot answer" kind
 * (cache_unreachable) makes the mount offline; a success on-line again. */
void cache_result(struct fs_mount *m, int rv);
/* rv says the cluster cannot answer: no member reachable, no leader, or no
 * answer within the command timeout, each after the client's retries. */
int cache_unreachable(int rv);

/* ---- serving (ops/, dir.c) ---- */
/* rv is such a failure and there is a cache to answer from. */
int cache_serves(struct fs_mount *m, int rv);
/* The inode a name stands for in the cache (a directory when cached keys
 * lie below dk, else the file fk), its state set from the cache; NULL when
 * the cache has neither.  kind is enum fs_name_kind.  m->mu held. */
struct fs_inode *cache_lookup_locked(struct fs_mount *m, const uint8_t *fk, uint32_t fklen,
				     const uint8_t *dk, uint32_t dklen, int kind);
/* Set in's state from the cache; 1 when in is then known.  m->mu held. */
int cache_refresh_locked(struct fs_mount *m, struct fs_inode *in);
/* The cached value of key (out->val malloc'ed).  0, or ENOENT when not cached. */
int cache_read(struct fs_mount *m, const uint8_t *key, uint32_t klen, struct kv_val *out);
/* One entry of a directory listed from the cache (dir.c). */
typedef int (*cache_dirent_fn)(void *arg, const char *name, int type, const uint8_t *key,
			       uint32_t klen);
/* List the directory whose keys start with pfx from the cache, in key
 * order.  0, or the first error fn returned. */
int cache_list(struct fs_mount *m, const uint8_t *pfx, uint32_t plen, cache_dirent_fn fn,
	       void *arg);
/* user.etcfs.stale of the file ino: seconds since the cluster last
 * confirmed the value the mount serves, or -1 when the mount is on-line
 * (fresh) or the file is not in the cache. */
int64_t cache_age(struct fs_mount *m, uint64_t ino);

/* ---- learning (lookup.c, reflect.c) ---- */
/* The cluster gave v for key (read path): keep it.  Writes a file only when
 * the revision is new to the cache.  m->mu held. */
void cache_note(struct fs_mount *m, const uint8_t *key, uint32_t klen, const struct kv_val *v);
/* A watch event: update or drop a key the cache holds.  m->mu held. */
void cache_event(struct fs_mount *m, const ef_event *ev);

#endif
