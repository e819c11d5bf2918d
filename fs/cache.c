/*
 * cache.c - -o cache_dir=DIR: last-known-good values on disk.
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
 * to parse, or holds another key than its name says, is removed at mount.  DIR/state holds the watch revision up
 * to which every cached key had every change: a mount restarted while the
 * cluster is down resumes its watch from there, so the changes made
 * meanwhile still come out as inotify events once the cluster returns.
 *
 * Read path cost: noting a value the cache already has at that revision
 * changes a time in memory only; a file is written (and fsync'd, by the
 * cache thread, never by the FUSE request) only when a value is new or
 * changed.  Values live on disk; memory holds the index (key, metadata)
 * and values not yet written.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache.h"

#define PROBE_MS 500
#define STATE_EVERY_MS 2000
#define RETRY_MS 1000 /* after a failed write (disk full, I/O error) */
#define NAME_LEN 66   /* "k" + 64 hex + NUL */
static const char magic[8] = "ETCFSC1\n";

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

static uint64_t fnv(const uint8_t *p, size_t n, uint64_t h)
{
	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 1099511628211ull;
	}
	return h;
}

static size_t hslot(struct fs_cache *c, const uint8_t *k, uint32_t n)
{
	return fnv(k, n, 1469598103934665603ull) & (c->hcap - 1);
}

static struct centry *find(struct fs_cache *c, const uint8_t *k, uint32_t n)
{
	for (struct centry *e = c->hash[hslot(c, k, n)]; e; e = e->hnext)
		if (e->klen == n && memcmp(e->key, k, n) == 0)
			return e;
	return NULL;
}

static struct centry *add(struct fs_cache *c, const uint8_t *k, uint32_t n)
{
	if (c->n + 1 > c->hcap / 2) {
		size_t nc = c->hcap * 2;
		struct centry **nh = calloc(nc, sizeof *nh);
		if (!nh)
			return NULL;
		for (size_t i = 0; i < c->hcap; i++)
			for (struct centry *e = c->hash[i], *nx; e; e = nx) {
				nx = e->hnext;
				size_t s = fnv(e->key, e->klen, 1469598103934665603ull) & (nc - 1);
				e->hnext = nh[s];
				nh[s] = e;
			}
		free(c->hash);
		c->hash = nh;
		c->hcap = nc;
	}
	struct centry *e = calloc(1, sizeof *e);
	if (!e)
		return NULL;
	e->key = malloc(n + 1);
	if (!e->key) {
		free(e);
		return NULL;
	}
	fs_memcpy(e->key, k, n);
	e->klen = n;
	size_t s = hslot(c, k, n);
	e->hnext = c->hash[s];
	c->hash[s] = e;
	c->n++;
	return e;
}

static void entry_free(struct centry *e)
{
	free(e->key);
	free(e->pend);
	free(e);
}

static void unlink_entry(struct fs_cache *c, struct centry *x)
{
	for (struct centry **pp = &c->hash[hslot(c, x->key, x->klen)]; *pp; pp = &(*pp)->hnext)
		if (*pp == x) {
			*pp = x->hnext;
			c->n--;
			entry_free(x);
			return;
		}
}

static void file_name(const uint8_t *key, uint32_t klen, char out[NAME_LEN])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	EVP_Digest(key, klen, md, &mdlen, EVP_sha256(), NULL);
	out[0] = 'k';
	for (unsigned i = 0; i < 32; i++)
		snprintf(out + 1 + 2 * i, 3, "%02x", md[i]);
	out[NAME_LEN - 1] = 0;
}

static void mark_dirty(struct fs_cache *c, struct centry *e)
{
	e->wgen++;
	if (!e->dirty) {
		e->dirty = 1;
		c->ndirty++;
	}
	pthread_cond_broadcast(&c->cv);
}

/* ------------------------------------------------------------------ */
/* files                                                                */

struct rec {
	ef_kv kv;
	int64_t seen_ns;
	uint8_t *key, *val; /* point into the file buffer */
	uint32_t klen, vlen;
};

#define HDR_LEN (8 + 4 + 4 + 6 * 8)

static int parse(uint8_t *b, size_t n, struct rec *r)
{
	if (n < HDR_LEN + 8 || memcmp(b, magic, 8) != 0)
		return -1;
	uint64_t sum;
	memcpy(&sum, b + n - 8, 8);
	if (fnv(b, n - 8, 1469598103934665603ull) != sum)
		return -1;
	memcpy(&r->klen, b + 8, 4);
	memcpy(&r->vlen, b + 12, 4);
	if ((uint64_t)HDR_LEN + r->klen + r->vlen + 8 != n)
		return -1;
	int64_t f[6];
	memcpy(f, b + 16, sizeof f);
	r->kv = (ef_kv){.mod_revision = f[0],
			.create_revision = f[1],
			.version = f[2],
			.lease = f[3],
			.mod_time_ns = f[4]};
	r->seen_ns = f[5];
	r->key = b + HDR_LEN;
	r->val = b + HDR_LEN + r->klen;
	return 0;
}

/* Whole file into a malloc'ed buffer; NULL when missing or unreadable. */
static uint8_t *slurp(int dfd, const char *name, size_t *n)
{
	int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	struct stat st;
	uint8_t *b = NULL;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size < (64 << 20)) {
		b = malloc((size_t)st.st_size + 1);
		size_t got = 0;
		while (b && got < (size_t)st.st_size) {
			ssize_t r = read(fd, b + got, (size_t)st.st_size - got);
			if (r <= 0)
				break;
			got += (size_t)r;
		}
		if (b && got != (size_t)st.st_size) {
			free(b);
			b = NULL;
		}
		*n = got;
	}
	close(fd);
	return b;
}

static int write_all(int fd, const void *p, size_t n)
{
	const uint8_t *q = p;
	while (n) {
		ssize_t w = write(fd, q, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return errno ? errno : EIO;
		q += w;
		n -= (size_t)w;
	}
	return 0;
}

/* temp file + fsync + rename; the caller fsyncs the directory. */
static int write_atomic(int dfd, const char *name, const uint8_t *buf, size_t n)
{
	char tmp[NAME_LEN + 32];
	snprintf(tmp, sizeof tmp, ".tmp.%d.%s", (int)getpid(), name);
	unlinkat(dfd, tmp, 0);
	int fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return errno;
	int err = write_all(fd, buf, n);
	if (!err && fsync(fd) != 0)
		err = errno;
	close(fd);
	if (!err && renameat(dfd, tmp, dfd, name) != 0)
		err = errno;
	if (err)
		unlinkat(dfd, tmp, 0);
	return err;
}

/* One job of the cache thread: a copy of what to write, made under c->mu. */
struct job {
	uint8_t *buf; /* the whole file, or NULL: remove */
	size_t n;
	char name[NAME_LEN];
	struct centry *e;
	uint64_t wgen;
	int err;
};

static uint8_t *encode(const struct centry *e, const uint8_t *val, size_t *n)
{
	uint32_t vlen = (uint32_t)e->size;
	*n = HDR_LEN + e->klen + vlen + 8;
	uint8_t *b = malloc(*n);
	if (!b)
		return NULL;
	memcpy(b, magic, 8);
	memcpy(b + 8, &e->klen, 4);
	memcpy(b + 12, &vlen, 4);
	int64_t f[6] = {e->kv.mod_revision, e->kv.create_revision, e->kv.version,
			e->kv.lease,        e->kv.mod_time_ns,     e->seen_ns};
	memcpy(b + 16, f, sizeof f);
	fs_memcpy(b + HDR_LEN, e->key, e->klen);
	fs_memcpy(b + HDR_LEN + e->klen, val, vlen);
	uint64_t sum = fnv(b, *n - 8, 1469598103934665603ull);
	memcpy(b + *n - 8, &sum, 8);
	return b;
}

static void save_state(struct fs_cache *c, int64_t rev)
{
	char b[64];
	int n = snprintf(b, sizeof b, "rev %" PRId64 "\n", rev);
	if (write_atomic(c->dfd, "state", (const uint8_t *)b, (size_t)n) == 0 && fsync(c->dfd) == 0)
		c->state_rev = rev;
}

static int64_t load_state(int dfd)
{
	size_t n = 0;
	uint8_t *b = slurp(dfd, "state", &n);
	int64_t rev = 0;
	if (b) {
		b[n] = 0;
		if (sscanf((char *)b, "rev %" SCNd64, &rev) != 1)
			rev = 0;
		free(b);
	}
	return rev;
}

/* ------------------------------------------------------------------ */
/* open, load, close                                                    */

int cache_open(struct fs_mount *m, const char *dir)
{
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		fprintf(stderr, "etcfs: cache_dir %s: %s\n", dir, strerror(errno));
		return errno;
	}
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0) {
		int err = errno;
		fprintf(stderr, "etcfs: cache_dir %s: %s\n", dir, strerror(err));
		return err;
	}
	/* private: values may be secrets the mount's users may not list */
	if (fchmod(dfd, 0700) != 0) {
		int err = errno;
		fprintf(stderr, "etcfs: cache_dir %s: chmod 0700: %s\n", dir, strerror(err));
		close(dfd);
		return err;
	}
	/* one mount per DIR: another one's temp files are not debris, and two
	 * writers of one key would race (the lock lives as long as the open
	 * file, so it passes to the daemon through fuse_daemonize's fork) */
	int lockfd = openat(dfd, "lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (lockfd < 0 || flock(lockfd, LOCK_EX | LOCK_NB) != 0) {
		int err = errno;
		fprintf(stderr, "etcfs: cache_dir %s: %s\n", dir,
			err == EWOULDBLOCK ? "in use by another mount" : strerror(err));
		if (lockfd >= 0)
			close(lockfd);
		close(dfd);
		return err;
	}
	struct fs_cache *c = calloc(1, sizeof *c);
	if (!c) {
		close(lockfd);
		close(dfd);
		return ENOMEM;
	}
	c->dfd = dfd;
	c->lockfd = lockfd;
	c->dir = strdup(dir);
	c->hcap = 64;
	c->hash = calloc(c->hcap, sizeof *c->hash);
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	c->catchup = 1;
	c->state_rev = load_state(dfd);
	int dfd2 = dup(dfd);
	DIR *d = dfd2 >= 0 ? fdopendir(dfd2) : NULL;
	struct dirent *de;
	while (d && (de = readdir(d))) {
		if (strncmp(de->d_name, ".tmp.", 5) == 0) {
			unlinkat(dfd, de->d_name, 0); /* a write cut short */
			continue;
		}
		if (de->d_name[0] != 'k' || strlen(de->d_name) != NAME_LEN - 1)
			continue;
		size_t n = 0;
		uint8_t *b = slurp(dfd, de->d_name, &n);
		struct rec r;
		char want[NAME_LEN];
		if (b && parse(b, n, &r) == 0)
			file_name(r.key, r.klen, want);
		if (!b || parse(b, n, &r) != 0 || strcmp(want, de->d_name) != 0) {
			free(b); /* damaged, or not the file its name says */
			fprintf(stderr, "etcfs: cache_dir %s: %s is damaged: removed\n", dir,
				de->d_name);
			unlinkat(dfd, de->d_name, 0);
			continue;
		}
		if (r.klen < m->plen || memcmp(r.key, m->prefix, m->plen) != 0) {
			free(b); /* kept under another prefix: not ours to serve */
			continue;
		}
		struct centry *e = find(c, r.key, r.klen);
		if (!e)
			e = add(c, r.key, r.klen);
		if (e) {
			e->kv = r.kv;
			e->size = r.vlen;
			e->seen_ns = r.seen_ns;
		}
		free(b);
	}
	if (d)
		closedir(d);
	else if (dfd2 >= 0)
		close(dfd2);
	m->cache = c;
	return 0;
}

void cache_close(struct fs_mount *m)
{
	struct fs_cache *c = m->cache;
	if (!c)
		return;
	for (size_t i = 0; i < c->hcap; i++)
		for (struct centry *e = c->hash[i], *nx; e; e = nx) {
			nx = e->hnext;
			entry_free(e);
		}
	free(c->hash);
	close(c->dfd);
	close(c->lockfd);
	free(c->dir);
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->cv);
	free(c);
	m->cache = NULL;
}

/* ------------------------------------------------------------------ */
/* on-line / offline                                                    */

int cache_unreachable(int rv)
{
	return rv == EF_E_UNAVAILABLE || rv == EF_E_TIMEOUT || rv == EF_E_NO_LEADER ||
	       rv == EF_E_STOPPING || rv == EF_E_OUTCOME_UNKNOWN;
}

static __thread int always_ask;

void cache_always_ask(int on)
{
	always_ask = on;
}

int cache_skip_read(struct fs_mount *m)
{
	struct fs_cache *c = m->cache;
	if (!c || always_ask || !__atomic_load_n(&c->offline_ns, __ATOMIC_RELAXED))
		return 0;
	pid_t me = gettid();
	return me != c->tid && me != m->reflector_tid;
}

void cache_result(struct fs_mount *m, int rv)
{
	struct fs_cache *c = m->cache;
	if (!c || (rv && !cache_unreachable(rv)))
		return;
	int64_t off = __atomic_load_n(&c->offline_ns, __ATOMIC_RELAXED);
	if ((rv == 0) == (off == 0))
		return;
	pthread_mutex_lock(&c->mu);
	if (rv && !c->offline_ns) {
		__atomic_store_n(&c->offline_ns, clock_wall_ns(), __ATOMIC_RELAXED);
		fprintf(stderr,
			"etcfs: the cluster does not answer (%s): serving reads from "
			"cache_dir %s\n",
			ef_strerror(rv), c->dir);
	} else if (!rv && c->offline_ns) {
		__atomic_store_n(&c->offline_ns, 0, __ATOMIC_RELAXED);
		c->catchup = 1;
		fprintf(stderr, "etcfs: the cluster answers again: catching up cache_dir\n");
	}
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

int cache_serves(struct fs_mount *m, int rv)
{
	if (!m->cache || !cache_unreachable(rv))
		return 0;
	cache_result(m, rv);
	return 1;
}

/* ------------------------------------------------------------------ */
/* serving                                                              */

static int has_below(struct fs_cache *c, const uint8_t *dk, uint32_t dklen)
{
	for (size_t i = 0; i < c->hcap; i++)
		for (struct centry *e = c->hash[i]; e; e = e->hnext)
			if (!e->gone && e->klen > dklen && memcmp(e->key, dk, dklen) == 0)
				return 1;
	return 0;
}

/* in takes e's state unless it knows a newer revision.  Both locks held. */
static void set_inode(struct fs_inode *in, const struct centry *e)
{
	if (in->local || (in->known && in->exists && in->mod_rev > e->kv.mod_revision))
		return;
	inode_set_kv(in, &e->kv, e->size);
}

struct fs_inode *cache_lookup_locked(struct fs_mount *m, const uint8_t *fk, uint32_t fklen,
				     const uint8_t *dk, uint32_t dklen, int kind)
{
	struct fs_cache *c = m->cache;
	if (!c)
		return NULL;
	struct fs_inode *in = NULL;
	pthread_mutex_lock(&c->mu);
	if (kind != NAME_FILE && has_below(c, dk, dklen)) {
		in = inode_get(m, FS_DIR, dk, dklen);
	} else if (kind != NAME_CHUNK) {
		struct centry *e = find(c, fk, fklen);
		if (e && !e->gone) {
			in = inode_get(m, FS_FILE, fk, fklen);
			if (in)
				set_inode(in, e);
		}
	}
	/* a mount restarted while the cluster is down resumes its watch from
	 * the cache's revision: what changed meanwhile is replayed with its
	 * events when the cluster returns (reflect.c; resync.c if compacted) */
	if (in && m->watch_rev == 0)
		m->watch_rev = c->state_rev;
	pthread_mutex_unlock(&c->mu);
	if (in)
		CTR_INC(m, cache_hits);
	return in;
}

int cache_refresh_locked(struct fs_mount *m, struct fs_inode *in)
{
	struct fs_cache *c = m->cache;
	if (!c || !in || in->type != FS_FILE)
		return 0;
	pthread_mutex_lock(&c->mu);
	struct centry *e = find(c, in->key, in->klen);
	int ok = e && !e->gone;
	if (ok)
		set_inode(in, e);
	pthread_mutex_unlock(&c->mu);
	return ok;
}

int cache_read(struct fs_mount *m, const uint8_t *key, uint32_t klen, struct kv_val *out)
{
	struct fs_cache *c = m->cache;
	memset(out, 0, sizeof *out);
	if (!c)
		return ENOENT;
	pthread_mutex_lock(&c->mu);
	struct centry *e = find(c, key, klen);
	if (!e || e->gone) {
		pthread_mutex_unlock(&c->mu);
		return ENOENT;
	}
	if (e->pend) { /* not on disk yet */
		out->val = malloc(e->size ? e->size : 1);
		if (!out->val) {
			pthread_mutex_unlock(&c->mu);
			return ENOMEM;
		}
		fs_memcpy(out->val, e->pend, e->size);
		out->vlen = (uint32_t)e->size;
		out->kv = e->kv;
		out->exists = 1;
		pthread_mutex_unlock(&c->mu);
		CTR_INC(m, cache_hits);
		return 0;
	}
	pthread_mutex_unlock(&c->mu);
	char name[NAME_LEN];
	file_name(key, klen, name);
	size_t n = 0;
	uint8_t *b = slurp(c->dfd, name, &n);
	struct rec r;
	if (!b || parse(b, n, &r) != 0 || r.klen != klen || memcmp(r.key, key, klen) != 0) {
		free(b);
		return ENOENT;
	}
	out->val = malloc(r.vlen ? r.vlen : 1);
	if (!out->val) {
		free(b);
		return ENOMEM;
	}
	fs_memcpy(out->val, r.val, r.vlen);
	out->vlen = r.vlen;
	out->kv = r.kv;
	out->exists = 1;
	free(b);
	CTR_INC(m, cache_hits);
	return 0;
}

static int key_cmp(const void *x, const void *y)
{
	const struct centry *a = *(struct centry *const *)x, *b = *(struct centry *const *)y;
	int r = memcmp(a->key, b->key, a->klen < b->klen ? a->klen : b->klen);
	return r ? r : (a->klen > b->klen) - (a->klen < b->klen);
}

int cache_list(struct fs_mount *m, const uint8_t *pfx, uint32_t plen, cache_dirent_fn fn, void *arg)
{
	struct fs_cache *c = m->cache;
	if (!c)
		return EIO;
	/* copy the keys below pfx, sorted, then name them as dir.c does */
	pthread_mutex_lock(&c->mu);
	size_t n = 0;
	struct centry **v = malloc((c->n + 1) * sizeof *v);
	if (v)
		for (size_t i = 0; i < c->hcap; i++)
			for (struct centry *e = c->hash[i]; e; e = e->hnext)
				if (!e->gone && e->klen > plen && memcmp(e->key, pfx, plen) == 0) {
					struct centry *cp = calloc(1, sizeof *cp);
					if (cp)
						cp->key = malloc(e->klen);
					if (!cp || !cp->key) {
						free(cp);
						continue;
					}
					memcpy(cp->key, e->key, e->klen);
					cp->klen = e->klen;
					v[n++] = cp;
				}
	pthread_mutex_unlock(&c->mu);
	if (!v)
		return ENOMEM;
	qsort(v, n, sizeof *v, key_cmp);
	char name[NAME_MAX + 1];
	const uint8_t *skip = NULL; /* prefix of the sub-directory last listed */
	uint32_t skiplen = 0;
	int err = 0;
	for (size_t i = 0; i < n && !err; i++) {
		const uint8_t *k = v[i]->key;
		uint32_t kn = v[i]->klen;
		if (skip && kn >= skiplen && memcmp(k, skip, skiplen) == 0)
			continue;
		const uint8_t *rest = k + plen;
		uint32_t rn = kn - plen;
		const uint8_t *sl = memchr(rest, '/', rn);
		uint32_t seglen = sl ? (uint32_t)(sl - rest) : rn;
		uint32_t used = names_encode(rest, seglen, NAME_ANY, name);
		if (used < seglen || sl) {
			skiplen = plen + used + (used < seglen ? 0 : 1);
			skip = k;
			err = fn(arg, name, FS_DIR, k, skiplen);
			continue;
		}
		/* a file; also a directory when a later key continues it with '/' */
		int collide = 0;
		for (size_t j = i + 1; j < n && !collide; j++) {
			if (v[j]->klen <= kn || memcmp(v[j]->key, k, kn) != 0)
				break;
			collide = v[j]->key[kn] == '/';
		}
		if (collide)
			names_encode(rest, seglen, NAME_FILE, name);
		err = fn(arg, name, FS_FILE, k, kn);
	}
	for (size_t i = 0; i < n; i++) {
		free(v[i]->key);
		free(v[i]);
	}
	free(v);
	return err;
}

int64_t cache_age(struct fs_mount *m, uint64_t ino)
{
	struct fs_cache *c = m->cache;
	if (!c || !__atomic_load_n(&c->offline_ns, __ATOMIC_RELAXED))
		return -1;
	int64_t age = -1;
	pthread_mutex_lock(&m->mu);
	struct fs_inode *in = inode_by_ino(m, ino);
	if (in && in->type == FS_FILE) {
		pthread_mutex_lock(&c->mu);
		struct centry *e = find(c, in->key, in->klen);
		if (e && !e->gone && c->offline_ns) {
			age = (clock_wall_ns() - e->seen_ns) / 1000000000;
			if (age < 0)
				age = 0;
		}
		pthread_mutex_unlock(&c->mu);
	}
	pthread_mutex_unlock(&m->mu);
	return age;
}

/* ------------------------------------------------------------------ */
/* learning                                                             */

/* Keep value val (vlen bytes) with metadata kv for key; c->mu held. */
static void keep(struct fs_cache *c, const uint8_t *key, uint32_t klen, const ef_kv *kv,
		 const uint8_t *val, uint32_t vlen, int64_t seen_ns)
{
	struct centry *e = find(c, key, klen);
	if (e && !e->gone && e->kv.mod_revision == kv->mod_revision) {
		if (seen_ns > e->seen_ns)
			e->seen_ns = seen_ns; /* memory only: no write for a value known */
		return;
	}
	if (e && !e->gone && e->kv.mod_revision > kv->mod_revision)
		return; /* never step back */
	uint8_t *p = malloc(vlen ? vlen : 1);
	if (!p)
		return;
	if (!e)
		e = add(c, key, klen);
	if (!e) {
		free(p);
		return;
	}
	fs_memcpy(p, val, vlen);
	free(e->pend);
	e->pend = p;
	e->kv = *kv;
	e->kv.key = e->kv.value = (ef_buf){NULL, 0};
	e->size = vlen;
	e->seen_ns = seen_ns;
	e->gone = 0;
	mark_dirty(c, e);
}

void cache_note(struct fs_mount *m, const uint8_t *key, uint32_t klen, const struct kv_val *v)
{
	struct fs_cache *c = m->cache;
	if (!c || !v->exists)
		return;
	pthread_mutex_lock(&c->mu);
	/* offline, v is what the mount already had (its memory or this
	 * cache): it confirms nothing, and is kept only if newer */
	int64_t off = c->offline_ns;
	struct centry *e = find(c, key, klen);
	if (!off || !e || e->gone || e->kv.mod_revision < v->kv.mod_revision)
		keep(c, key, klen, &v->kv, v->val, v->vlen, off ? off : clock_wall_ns());
	pthread_mutex_unlock(&c->mu);
}

void cache_event(struct fs_mount *m, const ef_event *ev)
{
	struct fs_cache *c = m->cache;
	if (!c)
		return;
	pthread_mutex_lock(&c->mu);
	struct centry *e = find(c, ev->kv.key.p, ev->kv.key.n);
	if (e && !e->gone && ev->kv.mod_revision > e->kv.mod_revision) {
		if (ev->type == EF_EVENT_PUT) {
			keep(c, ev->kv.key.p, ev->kv.key.n, &ev->kv, ev->kv.value.p, ev->kv.value.n,
			     clock_wall_ns());
		} else {
			e->gone = 1;
			e->kv.mod_revision = ev->kv.mod_revision;
			free(e->pend);
			e->pend = NULL;
			mark_dirty(c, e);
		}
	}
	pthread_mutex_unlock(&c->mu);
}

/* ------------------------------------------------------------------ */
/* the cache thread                                                     */

/* Write (or remove) every dirty entry, then fsync DIR once.  c->mu held;
 * dropped during the I/O.  Returns the number of failures: those entries
 * stay dirty (their values in memory, still served) for a later retry. */
static int flush_dirty(struct fs_cache *c)
{
	size_t nj = 0, cap = c->ndirty;
	struct job *jobs = calloc(cap ? cap : 1, sizeof *jobs);
	if (!jobs)
		return 1;
	for (size_t i = 0; i < c->hcap && nj < cap; i++)
		for (struct centry *e = c->hash[i]; e && nj < cap; e = e->hnext) {
			if (!e->dirty)
				continue;
			struct job *j = &jobs[nj];
			file_name(e->key, e->klen, j->name);
			j->e = e;
			j->wgen = e->wgen;
			if (!e->gone) {
				j->buf = encode(e, e->pend, &j->n);
				if (!j->buf)
					continue; /* stays dirty */
			}
			e->dirty = 0;
			c->ndirty--;
			nj++;
		}
	int failing = c->failing;
	pthread_mutex_unlock(&c->mu);
	int nerr = nj < cap; /* an entry that could not be encoded */
	int first = 0;       /* errno of the first failure */
	for (size_t i = 0; i < nj; i++) {
		int err = jobs[i].buf
				  ? write_atomic(c->dfd, jobs[i].name, jobs[i].buf, jobs[i].n)
				  : (unlinkat(c->dfd, jobs[i].name, 0) && errno != ENOENT ? errno
											  : 0);
		jobs[i].err = err;
		if (err && !first)
			first = err;
	}
	if (nj && fsync(c->dfd) != 0) {
		if (!first)
			first = errno;
		for (size_t i = 0; i < nj; i++)
			jobs[i].err = jobs[i].err ? jobs[i].err : EIO; /* not durable: again */
	}
	for (size_t i = 0; i < nj; i++)
		nerr += jobs[i].err != 0;
	if (first && !failing)
		fprintf(stderr,
			"etcfs: cache_dir %s: cannot write: %s (values kept in memory; "
			"retrying)\n",
			c->dir, strerror(first));
	else if (!nerr && failing)
		fprintf(stderr, "etcfs: cache_dir %s: writing again\n", c->dir);
	pthread_mutex_lock(&c->mu);
	c->failing = nerr != 0;
	for (size_t i = 0; i < nj; i++) {
		struct centry *e = jobs[i].e;
		free(jobs[i].buf);
		if (e->wgen != jobs[i].wgen)
			continue;  /* changed meanwhile: written again */
		if (jobs[i].err) { /* failed: try again later */
			mark_dirty(c, e);
			continue;
		}
		if (e->gone)
			unlink_entry(c, e);
		else {
			free(e->pend);
			e->pend = NULL;
		}
	}
	free(jobs);
	return nerr;
}

/* One read of the mount's consistency; on-line when it is answered. */
static int probe(struct fs_mount *m)
{
	ef_arena *a = ef_arena_new();
	if (!a)
		return EF_E_NOMEM;
	ef_msg req = {.type = EF_MSG_RANGE}, resp;
	req.u.range.key = (ef_buf){m->prefix, m->plen};
	req.u.range.keys_only = 1; /* one key: cheap whatever the prefix holds */
	req.u.range.limit = 1;
	req.u.range.serializable = m->o.consistency != FS_LINEARIZABLE;
	int rv = fs_call(m, &req, &resp, a);
	ef_arena_free(a);
	return rv;
}

/* Read every cached key again; 0, or the cluster's error (try again). */
static int catch_up(struct fs_mount *m)
{
	struct fs_cache *c = m->cache;
	ef_arena *a = ef_arena_new();
	if (!a)
		return EF_E_NOMEM;
	ef_msg req = {.type = EF_MSG_RANGE}, resp;
	int serial = m->o.consistency != FS_LINEARIZABLE; /* the mount's reads */
	req.u.range.key = (ef_buf){m->prefix, m->plen};
	req.u.range.keys_only = 1; /* one key: cheap whatever the prefix holds */
	req.u.range.limit = 1;
	req.u.range.serializable = (uint8_t)serial;
	int rv = fs_call(m, &req, &resp, a);
	int64_t rev = rv ? 0 : resp.hdr.revision;
	ef_arena_free(a);
	if (rv)
		return rv;
	pthread_mutex_lock(&c->mu);
	size_t n = 0;
	struct centry *ks = calloc(c->n + 1, sizeof *ks);
	for (size_t i = 0; ks && i < c->hcap; i++)
		for (struct centry *e = c->hash[i]; e; e = e->hnext)
			if (!e->gone && (ks[n].key = malloc(e->klen + 1))) {
				fs_memcpy(ks[n].key, e->key, e->klen);
				ks[n++].klen = e->klen;
			}
	pthread_mutex_unlock(&c->mu);
	if (!ks)
		return EF_E_NOMEM;
	for (size_t i = 0; i < n && !rv; i++) {
		struct kv_val v;
		rv = kv_get(m, ks[i].key, ks[i].klen, serial, &v);
		if (rv)
			break;
		pthread_mutex_lock(&c->mu);
		struct centry *e = find(c, ks[i].key, ks[i].klen);
		if (v.exists) {
			keep(c, ks[i].key, ks[i].klen, &v.kv, v.val, v.vlen, clock_wall_ns());
		} else if (e && !e->gone && e->kv.mod_revision <= rev) {
			e->gone = 1;
			free(e->pend);
			e->pend = NULL;
			mark_dirty(c, e);
		}
		pthread_mutex_unlock(&c->mu);
		free(v.val);
	}
	for (size_t i = 0; i < n; i++)
		free(ks[i].key);
	free(ks);
	if (rv == 0) {
		pthread_mutex_lock(&c->mu);
		if (!c->ndirty || (flush_dirty(c) == 0 && !c->ndirty))
			save_state(c, rev); /* only once every value is on disk */
		pthread_mutex_unlock(&c->mu);
	}
	return rv;
}

static void *cache_main(void *arg)
{
	struct fs_mount *m = arg;
	struct fs_cache *c = m->cache;
	int64_t last_state = 0, retry_at = 0;
	pthread_mutex_lock(&c->mu);
	c->tid = gettid();
	while (!c->stop) {
		if (c->ndirty && clock_mono_ms() >= retry_at) {
			if (flush_dirty(c))
				retry_at = clock_mono_ms() + RETRY_MS;
			continue;
		}
		if (c->offline_ns || c->catchup) {
			int was_offline = c->offline_ns != 0;
			pthread_mutex_unlock(&c->mu);
			int rv = was_offline ? probe(m) : 0;
			if (rv == 0)
				cache_result(m, 0);
			if (rv == 0)
				rv = catch_up(m);
			pthread_mutex_lock(&c->mu);
			if (rv == 0) {
				c->catchup = 0;
			} else {
				if (cache_unreachable(rv) && !c->offline_ns) {
					pthread_mutex_unlock(&c->mu);
					cache_result(m, rv);
					pthread_mutex_lock(&c->mu);
				}
				struct timespec dl = clock_after_ms(CLOCK_REALTIME, PROBE_MS);
				pthread_cond_timedwait(&c->cv, &c->mu, &dl);
			}
			continue;
		}
		/* on-line and caught up: the watch keeps every cached key current
		 * up to m->watch_rev (cache_event); remember it for a restart */
		if (clock_mono_ms() - last_state >= STATE_EVERY_MS) {
			pthread_mutex_unlock(&c->mu);
			pthread_mutex_lock(&m->mu);
			int64_t w = m->watch_rev;
			/* the watch lost history (resync.c replays it without
			 * watch events): the cache missed those changes */
			uint64_t rs = __atomic_load_n(&m->ctr.resyncs, __ATOMIC_RELAXED);
			int lost = m->need_resync || rs != c->resyncs;
			pthread_mutex_unlock(&m->mu);
			pthread_mutex_lock(&c->mu);
			last_state = clock_mono_ms();
			c->resyncs = rs;
			if (lost)
				c->catchup = 1;
			else if (w > c->state_rev && !c->ndirty && !c->offline_ns && !c->catchup)
				save_state(c, w);
			continue;
		}
		int64_t wait = STATE_EVERY_MS;
		if (c->ndirty && retry_at - clock_mono_ms() < wait)
			wait = retry_at - clock_mono_ms() > 0 ? retry_at - clock_mono_ms() : 1;
		struct timespec dl = clock_after_ms(CLOCK_REALTIME, wait);
		pthread_cond_timedwait(&c->cv, &c->mu, &dl);
	}
	if (c->ndirty)
		flush_dirty(c);
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

int cache_start(struct fs_mount *m)
{
	struct fs_cache *c = m->cache;
	if (!c)
		return 0;
	c->resyncs = __atomic_load_n(&m->ctr.resyncs, __ATOMIC_RELAXED);
	if (pthread_create(&c->thread, NULL, cache_main, m) != 0)
		return EAGAIN;
	c->started = 1;
	return 0;
}

void cache_stop(struct fs_mount *m)
{
	struct fs_cache *c = m->cache;
	if (!c || !c->started)
		return;
	pthread_mutex_lock(&c->mu);
	c->stop = 1;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
	pthread_join(c->thread, NULL);
	c->started = 0;
}
