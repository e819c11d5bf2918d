/*
 * etcfs.h - internal interface of the etcfs FUSE mount (fs/).
 *
 * The mount is one `struct fs_mount` (reached through fuse_req_userdata), an
 * inode table keyed by (type, key bytes), per-open-file handles that buffer
 * a whole value, and a reflector thread that replays remote changes through
 * the mount point so that the kernel produces the inotify events a local
 * change would.  The files are:
 *
 *   names.c    key <-> file name escaping (see man/etcfs.1, ESCAPING)
 *   inode.c    the inode table
 *   kv.c       small cluster helpers over efc_call (get, probe, put, txn,
 *              the read-modify-write kv_update)
 *   ops/       the FUSE low-level handlers, one file per concern (lookup,
 *              file, namespace, xattr, table; ops/ops_int.h)
 *   dir.c      readdir paging
 *   reflect.c  the watch and the reflector thread
 *   replay.c   one revision of remote changes replayed as local syscalls
 *   watchers.c waiting for recursive inotify watchers to watch a new directory
 *   resync.c   re-reading the prefix when the watch was lost for good
 *   metrics.c  -o metrics: counters as Prometheus series and their HTTP listener
 *   cache/     -o cache_dir: last-known-good values on disk (contract: cache.h)
 *   main.c     option parsing, mount, the session loop, unmount
 */
#ifndef EF_FS_ETCFS_H
#define EF_FS_ETCFS_H

#define FUSE_USE_VERSION 34

#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>

#include "../proto/client.h"
#include "../proto/errors.h"
#include "../proto/wire.h"
#include "../common/clock.h"
#include "../common/metrics.h"

enum {
	FS_DIR = 1,
	FS_FILE = 2
};

/* Directory renames are one txn: a put per key plus one delete-range. */
#define FS_RENAME_DIR_MAX_KEYS (EF_DEFAULT_MAX_TXN_OPS - 1)
/* Largest value a file may hold: what fits in one request with its key. */
#define FS_VALUE_MAX(klen) ((size_t)EF_DEFAULT_MAX_REQUEST_BYTES - (klen)-64)
/* Keys per RANGE page in readdir. */
#define FS_PAGE_KEYS 1000

enum fs_local {
	FS_REMOTE = 0,  /* an ordinary key (or a directory implied by keys) */
	FS_PENDING = 1, /* created here, first committed at close/fsync */
	FS_TEMP = 2     /* an editor temporary: lives only in this mount */
};

/* One file or directory this mount has named to the kernel (or listed).
 * Entries are never freed while the mount lives, so a key keeps its inode
 * number across updates, deletions and re-creations. */
struct fs_inode {
	uint64_t ino;           /* FUSE inode number, 1 = root; immutable */
	uint8_t type;           /* FS_DIR or FS_FILE; immutable */
	uint8_t *key;           /* FILE: full key; DIR: prefix of the keys below it */
	uint32_t klen;          /* everything below: under m->mu */
	uint64_t nlookup;       /* kernel references (lookup/create/mknod/mkdir minus forget) */
	struct fs_inode *hnext; /* hash chain of m->hash; unhashed when replaced by rename */
	int hashed;
	/* Last known state of the key (FILE), valid when known != 0. */
	int known, exists;
	int64_t mod_rev, create_rev, version, lease, mod_time_ns;
	uint64_t size;
	int64_t cache_rev; /* revision of the data the kernel page cache holds (0 none) */
	uint8_t *cval;     /* cached value at mod_rev (consistency=cached), malloc'ed or NULL */
	int64_t cval_rev;
	int local;      /* enum fs_local */
	uint8_t *ldata; /* FS_TEMP content */
	size_t llen;
	int64_t ltime_ns; /* local files: mtime */
	uint8_t *xkey;    /* FS_PENDING from an O_EXCL create: its reservation key
			     (kv_excl_reserve), malloc'ed, and token; NULL/0 when none */
	uint32_t xklen;
	uint64_t xtok;
	int occ;      /* xattr user.etcfs.occ: commits compare the open revision */
	uint64_t gen; /* bumped when the key is unlinked or replaced: handles
				    opened before must not write it back */
	int ndirty;   /* open handles with uncommitted data */
	/* Page cache policy (ops/file.c, do_open): readers share the kernel page cache
	 * only while every such reader has the same revision (cache_rev) and no
	 * local writer is open; anyone else does direct I/O from its own
	 * snapshot, so no read can mix two revisions. */
	int nlate;               /* handles closed with an unstored O_TRUNC, awaiting release */
	struct fs_handle *fresh; /* writable handles just opened, nothing written yet (list
				    by fnext): the kernel's O_TRUNC SETATTR, which carries no
				    handle, applies to the one its thread opened */
	int npc;                 /* open handles using the page cache */
	int nwriters;            /* open writable handles (always direct I/O) */
	uint64_t cache_size;     /* size of the value at cache_rev: st_size while npc > 0 */
	int linger;              /* DIR: this mount removed keys below it; once empty it is
				    still found by name while the kernel holds it (nlookup >
				    0), until rmdir: rm -r and mv's copy fallback rmdir it
				    after the entry timeout (ops/lookup.c, lookup_lingering) */
};

/* One open file.  The value is read once at open (one revision) and
 * written back once per flush/fsync when dirty. */
struct fs_handle {
	pthread_mutex_t mu;
	struct fs_inode *in;
	uint8_t *data; /* snapshot (read) or buffer (write) */
	size_t len, cap;
	int64_t rev; /* mod revision the buffer is based on, 0 = key absent */
	int64_t lease;
	uint64_t gen; /* in->gen at open */
	int writable, dirty, append, reflect;
	int written;             /* write(2) or ftruncate since open: flush commits only then */
	int err;                 /* sticky: a write failed (EFBIG), nothing is committed */
	int pc;                  /* counted in in->npc */
	int late;                /* counted in in->nlate */
	pid_t tid;               /* thread that opened it */
	struct fs_handle *fnext; /* in->fresh list, under m->mu */
	int wcounted;            /* counted in in->nwriters */
	/* What the buffer keeps of its base (the value at rev): a commit that
	 * keeps base bytes may not replace a newer value (ESTALE), a whole
	 * rewrite may (ops/file.c, ops_commit). */
	size_t basekeep; /* bytes of the base not cut by a truncate */
	size_t wcover;   /* bytes from offset 0 written contiguously */
	size_t blen;     /* base length: O_APPEND writes are data[blen..len) */
	int notappend;   /* truncated (or not O_APPEND): not a pure append */
	int eof_seen;    /* read-only: a read returned end of file */
	uint64_t xtok;   /* created with O_EXCL: the reservation's token */
};

enum fs_op {
	OP_LOOKUP,
	OP_FORGET,
	OP_GETATTR,
	OP_SETATTR,
	OP_MKNOD,
	OP_MKDIR,
	OP_UNLINK,
	OP_RMDIR,
	OP_RENAME,
	OP_OPEN,
	OP_READ,
	OP_WRITE,
	OP_FLUSH,
	OP_RELEASE,
	OP_FSYNC,
	OP_OPENDIR,
	OP_READDIR,
	OP_RELEASEDIR,
	OP_STATFS,
	OP_SETXATTR,
	OP_GETXATTR,
	OP_LISTXATTR,
	OP_REMOVEXATTR,
	OP_CREATE,
	OP__COUNT
};

/* What a replayed remote change did through the mount point (the inotify
 * events it made): label kind= of etcfs_inotify_events_reflected_total. */
enum fs_refl_kind {
	REFL_CREATE, /* mknod of a new file (IN_CREATE) */
	REFL_MODIFY, /* open + ftruncate + close of a file (IN_MODIFY, IN_CLOSE_WRITE) */
	REFL_DELETE, /* unlink (IN_DELETE) */
	REFL_MKDIR,  /* mkdir (IN_CREATE|IN_ISDIR) */
	REFL_RMDIR,  /* rmdir (IN_DELETE|IN_ISDIR) */
	REFL_RENAME, /* rename of a file or directory (IN_MOVED_FROM/TO) */
	REFL__COUNT
};

/* Error replies by errno class: label class= of etcfs_fuse_errors_total. */
enum fs_err_class {
	ERRC_ENOENT,
	ERRC_EEXIST,
	ERRC_PERMISSION,
	ERRC_XATTR,
	ERRC_IO,
	ERRC_CONFLICT,
	ERRC_INVALID,
	ERRC_NOSPACE,
	ERRC_OTHER,
	ERRC__COUNT
};

/* Every field only grows; updated with CTR_INC (atomic, relaxed). */
struct fs_counters {
	uint64_t ops[48];      /* requests by FUSE opcode index (enum fs_op) */
	uint64_t cache_hits;   /* opens/reads/attrs answered from the cache without a fetch */
	uint64_t cache_misses; /* the same, fetched from the cluster */
	uint64_t reflected;    /* remote events replayed through the mount (sum of below) */
	uint64_t reflected_kind[REFL__COUNT];
	uint64_t own_events; /* watch events recognised as this mount's own writes */
	uint64_t resyncs;    /* times the watch was lost and state re-read */
	uint64_t commits;    /* puts committed by close/flush/fsync of a written file */
	uint64_t requests;   /* requests sent to the cluster (round trips), watch excluded */
	uint64_t errors[ERRC__COUNT]; /* error replies by class (enum fs_err_class) */
};

/* The Prometheus series behind fs_counters (metrics.c): the same field
 * names, so CTR_INC updates both.  Set by fsmetrics_register before the
 * session starts and never changed after; NULL entries are ignored by
 * metrics_inc. */
struct fs_ctr_metrics {
	metric *ops[48];
	metric *cache_hits, *cache_misses;
	metric *reflected_kind[REFL__COUNT];
	metric *own_events, *resyncs, *commits, *requests;
	metric *errors[ERRC__COUNT];
};

enum fs_consistency {
	FS_LINEARIZABLE = 0,
	FS_SERIALIZABLE = 1,
	FS_CACHED = 2
};

struct fs_opts {
	char *endpoints;
	char *prefix;
	int consistency;    /* enum fs_consistency */
	int cache_fallback; /* serve reads from the cache when the cluster is unreachable */
	int occ;            /* every writable open commits only if the key is unchanged */
	int tmp_cluster;    /* editor temporaries become ordinary keys */
	int ro;             /* enforced by the daemon, so the reflector can still replay */
	int timeout_ms, dial_timeout_ms;
	int have_uid, have_gid, have_umask;
	unsigned uid, gid, umask;
	char *metrics;   /* HOST:PORT of the /metrics listener, or NULL */
	char *cache_dir; /* -o cache_dir: last-known-good values on disk (cache/) */
	int foreground, debug;
};

/* The reflector's view of the revision being replayed: what its own lookups
 * must answer for the names the replay touches (the state before it touched
 * one, then after).  A directory's entry lives until the whole revision is
 * replayed (replay.c, reflect_view_reset), so a later step finds the
 * directories an earlier step made or removed; a file's only while its own
 * syscalls run.  Other names are asked of the cluster as of the revision
 * before. */
struct fs_view_ent {
	int type; /* FS_FILE: key is the file key; FS_DIR: key is the dir prefix */
	uint8_t *key;
	uint32_t klen;
	int exists;
	ef_kv kv; /* key/value unset */
	uint64_t size;
};
struct fs_view {
	int n, cap;
	struct fs_view_ent *k;
};

struct fs_mount {
	struct fs_opts o;
	efc_client *c;  /* requests (lookups, reads, writes) */
	efc_client *wc; /* the watch alone, on its own connection: watch
					events never queue on the server's side of the
					request connection (reflect.c, watch_begin) */
	struct fuse_session *se;
	char *mountpoint;
	dev_t dev; /* st_dev of the mounted root (0 until the reflector saw it) */
	uint8_t *prefix;
	uint32_t plen;
	int64_t mount_time_ns;
	uid_t uid;
	gid_t gid;

	pthread_mutex_t mu;      /* inode table, inode fields, own-write tracking */
	struct fs_inode **byino; /* byino[ino] (index 0 unused) */
	uint64_t nino, capino;
	struct fs_inode **hash;
	size_t hcap, hcount;

	/* Own writes: a watch event at one of these revisions was caused by this
	 * mount and is not replayed (the local syscall already made its events). */
	uint64_t wseq_started; /* writes begun */
	uint64_t *inflight;    /* seq numbers of writes in flight */
	size_t n_inflight, cap_inflight;
	int64_t own_revs[1024]; /* ring of committed revisions */
	unsigned own_pos;
	pthread_cond_t own_cv;

	/* Watch and reflector (reflect.c). */
	efc_watch *watch;
	int watch_ok;      /* the watch is live: cached metadata is current */
	int64_t watch_rev; /* every change up to this revision was delivered
					with its events (0 before the first watch) */
	pthread_mutex_t rq_mu;
	pthread_cond_t rq_cv;
	struct reflect_ev *rq_head, *rq_tail;
	int need_resync, stopping;
	pthread_t reflector;
	int reflector_started;
	pid_t reflector_tid;
	struct fs_view view; /* under mu */
	/* Revision of the change the reflector is replaying (0: none, answer
	 * from the current state).  Its lookups answer from the cluster as of
	 * the revision before it, its own checks as of the revision itself, so
	 * a replay that runs behind never sees later changes.  Under mu. */
	int64_t refl_rev;

	struct fs_cache *cache; /* -o cache_dir (cache/), or NULL */

	struct fs_counters ctr;    /* updated with __atomic builtins */
	struct fs_ctr_metrics ctm; /* the same counters as registered metrics */

	/* -o metrics listener (metrics.c). */
	int mx_fd;      /* listening socket, -1 when none */
	int mx_wake[2]; /* pipe: a byte on [1] stops the thread */
	pthread_t mx_thread;
	int mx_started;
	pthread_mutex_t mx_mu; /* serialises scrapes (failover delta below) */
	uint64_t mx_failovers; /* efc_failovers() already added to the counter */
	metric *mx_failovers_m;
};

#define CTR_INC(m, field)                                                 \
	do {                                                              \
		__atomic_fetch_add(&(m)->ctr.field, 1, __ATOMIC_RELAXED); \
		metrics_inc((m)->ctm.field);                              \
	} while (0)
/* One replayed remote change of kind k (enum fs_refl_kind). */
#define CTR_REFLECT(m, k)                                                     \
	do {                                                                  \
		__atomic_fetch_add(&(m)->ctr.reflected, 1, __ATOMIC_RELAXED); \
		CTR_INC(m, reflected_kind[k]);                                \
	} while (0)

/* ---- names.c ---- */
/* Decoded form of one file name. */
enum fs_name_kind {
	NAME_ANY = 0,  /* plain or "%..." : a directory if one exists, else the file */
	NAME_FILE = 1, /* "%=...": only the file (a key that is also a directory) */
	NAME_CHUNK = 2 /* "%+...": first part of a segment too long for NAME_MAX */
};
/* Decode name into seg (malloc'ed, *slen bytes).  0 or EINVAL. */
int names_decode(const char *name, int *kind, uint8_t **seg, uint32_t *slen);
/* Encode one key segment as a name into out (NAME_MAX + 1 bytes).  kind is
 * NAME_ANY or NAME_FILE.  Returns the number of segment bytes consumed: slen
 * when it fits, fewer when a "%+" chunk name was written (a directory). */
uint32_t names_encode(const uint8_t *seg, uint32_t slen, int kind, char *out);
/* 1 when name is an editor/tool temporary kept local by default. */
int names_is_temp(const char *name);
/* Path (relative to the mount, malloc'ed) that names key (under the prefix);
 * NULL if the key is not below the prefix or ENOMEM. */
char *names_key_to_path(struct fs_mount *m, const uint8_t *key, uint32_t klen);

/* ---- inode.c ---- */
int inode_table_init(struct fs_mount *m);
void inode_table_free(struct fs_mount *m);
/* Find or create the inode for (type, key); m->mu held.  NULL on ENOMEM. */
struct fs_inode *inode_get(struct fs_mount *m, int type, const uint8_t *key, uint32_t klen);
/* Lookup without creating; m->mu held. */
struct fs_inode *inode_find(struct fs_mount *m, int type, const uint8_t *key, uint32_t klen);
/* By number; m->mu held.  NULL if unknown. */
struct fs_inode *inode_by_ino(struct fs_mount *m, uint64_t ino);
/* Change the key of in (rename); an inode already holding that key is
 * unhashed (the kernel drops it).  m->mu held.  0 or ENOMEM. */
int inode_rekey(struct fs_mount *m, struct fs_inode *in, const uint8_t *key, uint32_t klen);
/* Rekey every inode whose key starts with from (renamed directory). */
int inode_rekey_prefix(struct fs_mount *m, const uint8_t *from, uint32_t flen, const uint8_t *to,
		       uint32_t tlen);
/* Apply a kv (or absence) to a file inode's cached state; m->mu held. */
void inode_set_kv(struct fs_inode *in, const ef_kv *kv, uint64_t size);
void inode_set_absent(struct fs_inode *in);
/* stat of an inode; m->mu held. */
void inode_stat(struct fs_mount *m, struct fs_inode *in, struct stat *st);

/* ---- kv.c ---- */
/* Result of kv_get: a malloc'ed value copy and its metadata. */
struct kv_val {
	int exists;
	ef_kv kv;     /* key/value fields unset */
	uint8_t *val; /* malloc'ed (NULL when !exists) */
	uint32_t vlen;
};
/* efc_call on the mount's request client, counted (etcfs_cluster_requests_total). */
int fs_call(struct fs_mount *m, const ef_msg *req, ef_msg *resp, ef_arena *a);
int kv_get(struct fs_mount *m, const uint8_t *key, uint32_t klen, int serializable,
	   struct kv_val *out);
/* A name's file key fk and directory prefix dk (fk + "/") in one RANGE from
 * fk to the end of dk, limit 1: *file gets the file when it exists; *dir is
 * 1 (keys below dk), 0 (none) or -1 (not known from that one key: the
 * caller asks kv_prefix_nonempty). */
int kv_lookup(struct fs_mount *m, const uint8_t *fk, uint32_t fklen, const uint8_t *dk,
	      uint32_t dklen, int serializable, int *dir, struct kv_val *file);
/* Is there any key with this prefix other than skip1/skip2 (may be NULL)?
 * *first_is_marker tells if the prefix key itself exists. */
int kv_prefix_nonempty(struct fs_mount *m, const uint8_t *pfx, uint32_t plen, int serializable,
		       const uint8_t *skip, uint32_t skiplen, int *nonempty);
/* Number of keys with this prefix (linearizable). */
int kv_prefix_count(struct fs_mount *m, const uint8_t *pfx, uint32_t plen, int64_t *count);
/* The same two questions about the cluster as of revision rev (0: now; a
 * compacted rev is answered from the current state). */
int kv_prefix_nonempty_at(struct fs_mount *m, const uint8_t *pfx, uint32_t plen, int64_t rev,
			  const uint8_t *skip, uint32_t skiplen, int *nonempty);
int kv_prefix_count_at(struct fs_mount *m, const uint8_t *pfx, uint32_t plen, int64_t rev,
		       int64_t *count);
/* Own-write bracket: kv_own_begin before sending, kv_own_end with the
 * committed revision (0 when it failed). */
uint64_t kv_own_begin(struct fs_mount *m);
void kv_own_end(struct fs_mount *m, uint64_t seq, int64_t rev);
int kv_is_own(struct fs_mount *m, int64_t rev);
/* efc_call with the own-write bracket; returns 0/EF_E_*; *rev = header revision. */
int kv_write(struct fs_mount *m, const ef_msg *req, ef_msg *resp, ef_arena *a);
/* Put key=val.  expect_rev: -1 no compare, 0 must be absent, >0 mod revision must equal.
 * keep_lease: 1 keeps the key's lease (ignore_lease), else lease is set. */
int kv_put(struct fs_mount *m, const uint8_t *key, uint32_t klen, const uint8_t *val, uint32_t vlen,
	   int64_t expect_rev, int keep_lease, int64_t lease, int64_t *rev_out);
int kv_delete(struct fs_mount *m, const uint8_t *key, uint32_t klen, int64_t *deleted);
/* What a kv_update callback makes of the key's current value: kv_update
 * fills it with that value and lease (none when absent) before the call, so
 * a callback sets only what it changes. */
struct kv_change {
	const uint8_t *val; /* the new value: the current one or the callback's */
	uint32_t vlen;
	int64_t lease; /* the key's lease after the put (0: none) */
	void *to_free; /* freed by kv_update after the attempt (NULL: nothing) */
};
/* Called once per attempt with the key's current value (cur->exists 0 when
 * absent); 0 to put *out, or an errno that ends kv_update with it. */
typedef int (*kv_update_fn)(const struct kv_val *cur, struct kv_change *out, void *arg);
/* Read-modify-write of key: read it (linearizable), let fn compute the new
 * value, put it only if the key is unchanged since the read (mod_revision,
 * or still absent), and start again from a new read when it changed, a few
 * times.  Returns 0 or an errno (ESTALE: it kept changing).  On success
 * *res (when not NULL) is the key's metadata after the put (mod_revision,
 * version, lease, mod_time) and *res_size the new value's length. */
int kv_update(struct fs_mount *m, const uint8_t *key, uint32_t klen, kv_update_fn fn, void *arg,
	      ef_kv *res, uint64_t *res_size);

/* O_CREAT|O_EXCL (kv.c, "O_EXCL creates"): the name is reserved under
 * FS_EXCL_PREFIX + key, on a lease of FS_EXCL_TTL_S seconds, until the
 * commit at close puts the key with its content. */
#define FS_EXCL_PREFIX "\0etcfs-excl/"
#define FS_EXCL_PLEN (sizeof FS_EXCL_PREFIX - 1)
#define FS_EXCL_TTL_S 60
/* 1 when key is such a reservation: never listed nor replayed. */
int kv_reserved(const uint8_t *key, uint32_t klen);
/* Reserve key if it is absent and unreserved: 0 (*xkey malloc'ed, *tok
 * ours), EF_E_EXISTS, or another EF_E_* code. */
int kv_excl_reserve(struct fs_mount *m, const uint8_t *key, uint32_t klen, uint8_t **xkey,
		    uint32_t *xklen, uint64_t *tok);
/* Put key=val and drop the reservation, if key is still absent and the
 * reservation still ours: 0, EF_E_EXISTS, or another EF_E_* code. */
int kv_excl_commit(struct fs_mount *m, const uint8_t *key, uint32_t klen, const uint8_t *xkey,
		   uint32_t xklen, uint64_t tok, const uint8_t *val, uint32_t vlen, int64_t lease,
		   int64_t *rev_out);
/* Drop the reservation if it is still ours (best effort). */
void kv_excl_release(struct fs_mount *m, const uint8_t *xkey, uint32_t xklen, uint64_t tok);

/* ---- dir.c ---- */
struct fs_dirh;
int dir_open(struct fs_mount *m, struct fs_inode *dir, struct fs_dirh **out);
int dir_read(struct fs_mount *m, fuse_req_t req, struct fs_dirh *d, size_t size, off_t off);
void dir_close(struct fs_dirh *d);

/* ---- ops/ ---- */
extern const struct fuse_lowlevel_ops fs_ops;

/* ---- metrics.c ---- */
/* Register every counter (always; cheap) and, with -o metrics, bind the
 * listener: called before daemonizing so a bad address fails the mount.
 * 0 or an errno. */
int fsmetrics_init(struct fs_mount *m);
/* Start / stop the listener thread (after the fork; before unmount).
 * Both are no-ops without -o metrics. */
int fsmetrics_start(struct fs_mount *m);
void fsmetrics_stop(struct fs_mount *m);
/* Count an error reply: err is an errno (0 is not counted). */
void fsmetrics_error(struct fs_mount *m, int err);

/* ---- reflect.c ---- */
int reflect_start(struct fs_mount *m);
void reflect_stop(struct fs_mount *m);
int reflect_is_me(struct fs_mount *m, fuse_req_t req);

/* One change to replay (from the watch, or made up by resync.c). */
struct reflect_ev {
	uint8_t type; /* EF_EVENT_PUT / EF_EVENT_DELETE */
	uint8_t *key; /* malloc'ed */
	uint32_t klen;
	ef_kv kv; /* key/value unset */
	uint64_t size, vhash;
	int prev_exists;
	ef_kv prev; /* key/value unset */
	uint64_t prev_size, prev_vhash;
	uint64_t seq_hi; /* m->wseq_started when the event arrived */
	struct reflect_ev *next;
};
/* The replay steps resync.c reuses; reflector thread only. */
void reflect_ev_free(struct reflect_ev *e);
/* A put of e->key (CREATE when !e->prev_exists, then MODIFY, CLOSE_WRITE). */
void reflect_put(struct fs_mount *m, struct reflect_ev *e);
/* unlink of the file e->key (DELETE), leaving its directories alone. */
void reflect_unlink(struct fs_mount *m, struct reflect_ev *e);
/* mkdir / rmdir of the directory whose key prefix is dk (ends with '/'),
 * answered as absent / present by the reflector's lookups.  1 when the
 * syscall succeeded (an event was made). */
int reflect_mkdir(struct fs_mount *m, const uint8_t *dk, uint32_t dklen);
int reflect_rmdir(struct fs_mount *m, const uint8_t *dk, uint32_t dklen);
/* Watch the prefix from start_rev (0: from now). */
int reflect_watch_begin(struct fs_mount *m, int64_t start_rev);
/* ---- replay.c ---- */
/* Replay one whole revision (v[0..n-1], all at one mod revision). */
void replay_batch(struct fs_mount *m, struct reflect_ev **v, int n);
/* Forget the view: between revisions, and around a resync. */
void reflect_view_reset(struct fs_mount *m);
/* The mount point is still ours (learns its st_dev the first time). */
int reflect_still_mounted(struct fs_mount *m);

/* ---- watchers.c ---- */
/* The reflector just made directory `dir` in `parent` (paths through the
 * mount): wait until every inotify instance watching parent has either put
 * a watch on dir (a recursive watcher) or read the CREATE and gone back to
 * waiting without one, so files made inside dir next are seen by the
 * recursive ones.  Bounded; returns at once when nobody watches parent. */
void watchers_settle(struct fs_mount *m, const char *parent, const char *dir);
/* The list of inotify instances is read again at the next settle (a batch
 * starts: a watcher started since is waited for too).  Reflector thread. */
void watchers_forget(void);

/* ---- resync.c ---- */
/* The watch was lost for good: re-read the prefix, replay what changed
 * since m->watch_rev and watch again from the revision read.  Reflector
 * thread only.  0, or an EF_E_* code when the cluster could not be read
 * (m->need_resync stays set: call again later). */
int resync_run(struct fs_mount *m);

/* memcpy that accepts an empty source given as NULL (an empty value or
 * buffer has no storage here): memcpy(d, NULL, 0) is undefined behaviour. */
#include <string.h>
static inline void *fs_memcpy(void *d, const void *s, size_t n)
{
	return n ? memcpy(d, s, n) : d;
}

#endif
