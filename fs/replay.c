/*
 * replay.c - one revision of remote changes, replayed through the mount
 * point as the local syscalls that would have made it, so that every
 * inotify watcher gets the events of that local sequence, once each, in
 * revision order (the mapping is published in man/etcfs.1, EVENTS).
 *
 * A revision is one batch of watch events (a put, a delete, a txn, a
 * delete-range, a lease expiry).  Within it, the events are replayed in
 * their order, and:
 *
 *   - a new directory is made once, before the first thing inside it
 *     (mkdir: CREATE,ISDIR), and the replay waits for recursive watchers to
 *     watch it before filling it (watchers.c);
 *   - a new file is mknod + open/ftruncate/close (CREATE, MODIFY,
 *     CLOSE_WRITE; a new empty one no MODIFY), a changed one
 *     open/ftruncate/close;
 *   - a deleted file is unlinked (DELETE), and a directory left without
 *     keys is removed as soon as nothing more of the batch is below it
 *     (rmdir: DELETE,ISDIR in its parent, DELETE_SELF for its own
 *     watchers, after the DELETE of each of its files), deepest first, as
 *     `rm -r` does;
 *   - a delete and a put of the same value are one rename(2) (MOVED_FROM,
 *     MOVED_TO), and a txn that moves every key of a directory is one
 *     rename of the directory.
 *
 * The FUSE handlers recognise the reflector's syscalls by thread id and
 * answer them from m->view and otherwise from the cluster as of the
 * revision before the batch (lookup.c).  The view holds every directory
 * the batch has made or removed until the batch ends, so a later step sees
 * what an earlier one did (without that, the kernel's forced lookup of
 * mkdir's target, LOOKUP_EXCL, answered "absent" for a directory made a
 * moment before, and every file of a new directory made its own
 * CREATE,ISDIR), and the file being replayed while its syscalls run.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "etcfs.h"

/* ------------------------------------------------------------------ */
/* paths and the view                                                   */

/* The reflector works through path names: never on the directory under
 * the mount once it is unmounted. */
int reflect_still_mounted(struct fs_mount *m)
{
	struct stat st;
	if (m->stopping || stat(m->mountpoint, &st) != 0)
		return 0;
	if (!m->dev)
		m->dev = st.st_dev;
	return st.st_dev == m->dev;
}

static char *mpath(struct fs_mount *m, const uint8_t *key, uint32_t klen)
{
	if (!reflect_still_mounted(m))
		return NULL;
	char *rel = names_key_to_path(m, key, klen);
	if (!rel)
		return NULL;
	size_t n = strlen(m->mountpoint) + strlen(rel) + 2;
	char *p = malloc(n);
	if (p)
		snprintf(p, n, "%s/%s", m->mountpoint, rel);
	free(rel);
	return p;
}

/* The entry for (type, key); m->mu held.  NULL when absent. */
static struct fs_view_ent *view_find(struct fs_mount *m, int type, const uint8_t *key,
				     uint32_t klen)
{
	for (int i = 0; i < m->view.n; i++)
		if (m->view.k[i].type == type && m->view.k[i].klen == klen &&
		    memcmp(m->view.k[i].key, key, klen) == 0)
			return &m->view.k[i];
	return NULL;
}

/* Record that (type, key) exists or not from now on in this batch, with
 * kv/size for a file (kv NULL: keep what the entry had). */
static void view_put(struct fs_mount *m, int type, const uint8_t *key, uint32_t klen, int exists,
		     const ef_kv *kv, uint64_t size)
{
	pthread_mutex_lock(&m->mu);
	struct fs_view_ent *e = view_find(m, type, key, klen);
	if (!e) {
		if (m->view.n == m->view.cap) {
			int nc = m->view.cap ? m->view.cap * 2 : 16;
			struct fs_view_ent *nk = realloc(m->view.k, nc * sizeof *nk);
			if (!nk) {
				pthread_mutex_unlock(&m->mu);
				return;
			}
			m->view.k = nk;
			m->view.cap = nc;
		}
		uint8_t *k = malloc(klen + 1);
		if (!k) {
			pthread_mutex_unlock(&m->mu);
			return;
		}
		fs_memcpy(k, key, klen);
		e = &m->view.k[m->view.n++];
		memset(e, 0, sizeof *e);
		e->type = type;
		e->key = k;
		e->klen = klen;
	}
	e->exists = exists;
	if (kv) {
		e->kv = *kv;
		e->kv.key = e->kv.value = (ef_buf){NULL, 0};
		e->size = size;
	}
	pthread_mutex_unlock(&m->mu);
}

/* A file's entry is needed only while its own syscalls run: drop it after,
 * so the view holds the batch's directories and one or two files (a batch
 * may delete 100,000 keys; every reflector lookup walks the view). */
static void view_drop(struct fs_mount *m, int type, const uint8_t *key, uint32_t klen)
{
	pthread_mutex_lock(&m->mu);
	struct fs_view_ent *e = view_find(m, type, key, klen);
	if (e) {
		free(e->key);
		*e = m->view.k[--m->view.n];
	}
	pthread_mutex_unlock(&m->mu);
}

static int view_dir_state(struct fs_mount *m, const uint8_t *dk, uint32_t dklen)
{
	pthread_mutex_lock(&m->mu);
	struct fs_view_ent *e = view_find(m, FS_DIR, dk, dklen);
	int st = e ? e->exists : -1;
	pthread_mutex_unlock(&m->mu);
	return st; /* 1 made / present, 0 removed, -1 not touched */
}

void reflect_view_reset(struct fs_mount *m)
{
	pthread_mutex_lock(&m->mu);
	for (int i = 0; i < m->view.n; i++)
		free(m->view.k[i].key);
	free(m->view.k);
	m->view.k = NULL;
	m->view.n = m->view.cap = 0;
	pthread_mutex_unlock(&m->mu);
	watchers_forget();
}

static void inval_file(struct fs_mount *m, const uint8_t *key, uint32_t klen)
{
	pthread_mutex_lock(&m->mu);
	struct fs_inode *in = inode_find(m, FS_FILE, key, klen);
	uint64_t ino = in ? in->ino : 0;
	if (in)
		in->cache_rev = 0;
	pthread_mutex_unlock(&m->mu);
	if (ino)
		fuse_lowlevel_notify_inval_inode(m->se, ino, 0, 0);
}

/* The revision being replayed (0: none); its own checks ask about the
 * cluster as of that revision, not as of now. */
static int64_t replay_rev(struct fs_mount *m)
{
	pthread_mutex_lock(&m->mu);
	int64_t r = m->refl_rev;
	pthread_mutex_unlock(&m->mu);
	return r;
}

static void set_replay_rev(struct fs_mount *m, int64_t rev)
{
	pthread_mutex_lock(&m->mu);
	m->refl_rev = rev;
	pthread_mutex_unlock(&m->mu);
}

static int is_marker_key(struct fs_mount *m, const uint8_t *key, uint32_t klen)
{
	return klen > m->plen && key[klen - 1] == '/';
}

/* ------------------------------------------------------------------ */
/* directories                                                          */

/* mkdir(2) of path, the directory dk, unless this batch already made it
 * or found it.  1 when a directory was made (CREATE,ISDIR). */
static int dir_make(struct fs_mount *m, char *path, const uint8_t *dk, uint32_t dklen)
{
	if (dk && view_dir_state(m, dk, dklen) == 1)
		return 0;
	int made = mkdir(path, 0755) == 0;
	if (made)
		CTR_REFLECT(m, REFL_MKDIR);
	if (dk && (made || errno == EEXIST))
		view_put(m, FS_DIR, dk, dklen, 1, NULL, 0);
	if (made) {
		/* recursive watchers must watch it before anything goes in */
		char *sl = strrchr(path, '/');
		if (sl && sl > path) {
			*sl = 0;
			char *parent = strdup(path);
			*sl = '/';
			if (parent)
				watchers_settle(m, parent, path);
			free(parent);
		}
	}
	return made;
}

/* The length of the directory prefix of key whose path is `path`, or 0
 * (a chunk directory of a long name, which has no key of its own). */
static uint32_t dir_key_of(struct fs_mount *m, const uint8_t *key, uint32_t klen, const char *path)
{
	for (uint32_t l = m->plen + 1; l < klen; l++) {
		if (key[l - 1] != '/')
			continue;
		char *p = mpath(m, key, l);
		int same = p && strcmp(p, path) == 0;
		free(p);
		if (same)
			return l;
	}
	return 0;
}

/* Make every missing ancestor directory of key, outermost first (the
 * reflector's lookups tell which exist: the view, else the cluster before
 * the batch). */
static void make_ancestors(struct fs_mount *m, const uint8_t *key, uint32_t klen)
{
	char *p = mpath(m, key, klen);
	if (!p)
		return;
	size_t base = strlen(m->mountpoint) + 1;
	for (char *s = p + base; (s = strchr(s, '/')); s++) {
		*s = 0;
		uint32_t dl = dir_key_of(m, key, klen, p);
		dir_make(m, p, dl ? key : NULL, dl);
		*s = '/';
	}
	free(p);
}

/* rmdir(2) of the directory dk (the view says it is there until then).
 * 1 when removed (DELETE,ISDIR). */
static int dir_remove(struct fs_mount *m, const uint8_t *dk, uint32_t dklen)
{
	char *p = mpath(m, dk, dklen);
	if (!p)
		return 0;
	view_put(m, FS_DIR, dk, dklen, 1, NULL, 0);
	int ok = rmdir(p) == 0;
	if (ok)
		CTR_REFLECT(m, REFL_RMDIR);
	view_put(m, FS_DIR, dk, dklen, 0, NULL, 0);
	free(p);
	return ok;
}

/* Files that live only in this mount keep their directory. */
static int local_below(struct fs_mount *m, const uint8_t *dk, uint32_t dklen)
{
	int local = 0;
	pthread_mutex_lock(&m->mu);
	for (uint64_t j = 2; j <= m->nino && !local; j++) {
		struct fs_inode *in = m->byino[j];
		local = in && in->hashed && in->local && in->klen > dklen &&
			memcmp(in->key, dk, dklen) == 0;
	}
	pthread_mutex_unlock(&m->mu);
	return local;
}

/* For each directory above a deleted key of the batch, the index of the
 * batch's last delete below it (sorted by key, for bsearch). */
struct last_del {
	const uint8_t *key; /* points into an event's key */
	uint32_t len;
	int last;
};

static int last_del_cmp(const void *x, const void *y)
{
	const struct last_del *a = x, *b = y;
	int c = memcmp(a->key, b->key, a->len < b->len ? a->len : b->len);
	return c ? c : (a->len > b->len) - (a->len < b->len);
}

struct last_dels {
	struct last_del *d;
	size_t n;
};

/* Index the deletes of v[0..n-1].  0 or ENOMEM (then every directory is
 * checked after each delete, as if it had no later one). */
static int last_dels_build(struct fs_mount *m, struct reflect_ev **v, int n, struct last_dels *ld)
{
	size_t cap = 0;
	ld->d = NULL;
	ld->n = 0;
	for (int i = 0; i < n; i++) {
		if (v[i]->type != EF_EVENT_DELETE)
			continue;
		uint32_t top =
			is_marker_key(m, v[i]->key, v[i]->klen) ? v[i]->klen : v[i]->klen - 1;
		for (uint32_t l = m->plen + 1; l <= top; l++) {
			if (v[i]->key[l - 1] != '/')
				continue;
			if (ld->n == cap) {
				size_t nc = cap ? cap * 2 : 64;
				struct last_del *nd = realloc(ld->d, nc * sizeof *nd);
				if (!nd) {
					free(ld->d);
					ld->d = NULL;
					ld->n = 0;
					return ENOMEM;
				}
				ld->d = nd;
				cap = nc;
			}
			ld->d[ld->n++] = (struct last_del){v[i]->key, l, i};
		}
	}
	if (ld->n > 1)
		qsort(ld->d, ld->n, sizeof *ld->d, last_del_cmp);
	size_t w = 0; /* one entry per directory, with the greatest index */
	for (size_t r = 0; r < ld->n; r++) {
		if (w && last_del_cmp(&ld->d[w - 1], &ld->d[r]) == 0) {
			if (ld->d[r].last > ld->d[w - 1].last)
				ld->d[w - 1].last = ld->d[r].last;
		} else {
			ld->d[w++] = ld->d[r];
		}
	}
	ld->n = w;
	return 0;
}

/* Does a delete after index i fall below directory dk? */
static int later_delete_below(const struct last_dels *ld, const uint8_t *dk, uint32_t dklen, int i)
{
	if (!ld)
		return 0;
	struct last_del probe = {dk, dklen, 0};
	const struct last_del *f = bsearch(&probe, ld->d, ld->n, sizeof *ld->d, last_del_cmp);
	return f && f->last > i;
}

/* After a key left (deleted or moved away) at index i of the batch: remove
 * the directories above it that hold no key any more, deepest first,
 * stopping at the first that still holds one or that a later delete of the
 * batch (ld, NULL when none) will empty: that one goes after its last
 * file, as `rm -r` removes a directory after its content.  self: key is a
 * directory prefix that may go too (a deleted marker). */
static void remove_empty_dirs(struct fs_mount *m, const uint8_t *key, uint32_t klen, int self,
			      const struct last_dels *ld, int i)
{
	for (uint32_t n = self ? klen : klen - 1; n > m->plen; n--) {
		if (key[n - 1] != '/')
			continue;
		if (view_dir_state(m, key, n) == 0)
			continue; /* removed (or moved away) already */
		if (later_delete_below(ld, key, n, i))
			return;
		int ne = 1;
		if (kv_prefix_nonempty_at(m, key, n, replay_rev(m), NULL, 0, &ne) || ne)
			return;
		if (local_below(m, key, n))
			return;
		dir_remove(m, key, n);
	}
}

/* Make directory dk and its missing ancestors.  absent: the caller knows
 * dk did not exist (resync.c, whose lookups would otherwise answer from the
 * cluster as it is now, with dk in it); else the reflector's lookups tell. */
static int make_dir(struct fs_mount *m, const uint8_t *dk, uint32_t dklen, int absent)
{
	char *p = mpath(m, dk, dklen);
	if (!p)
		return 0;
	make_ancestors(m, dk, dklen);
	if (absent && view_dir_state(m, dk, dklen) < 0)
		view_put(m, FS_DIR, dk, dklen, 0, NULL, 0);
	int ok = dir_make(m, p, dk, dklen);
	free(p);
	return ok;
}

int reflect_mkdir(struct fs_mount *m, const uint8_t *dk, uint32_t dklen)
{
	return make_dir(m, dk, dklen, 1);
}

int reflect_rmdir(struct fs_mount *m, const uint8_t *dk, uint32_t dklen)
{
	return dir_remove(m, dk, dklen);
}

/* ------------------------------------------------------------------ */
/* files                                                                */

void reflect_put(struct fs_mount *m, struct reflect_ev *e)
{
	if (is_marker_key(m, e->key, e->klen)) {
		if (!e->prev_exists)
			make_dir(m, e->key, e->klen, 0);
		return;
	}
	char *p = mpath(m, e->key, e->klen);
	if (!p)
		return;
	if (!e->prev_exists) {
		view_put(m, FS_FILE, e->key, e->klen, 0, &e->kv, e->size);
		make_ancestors(m, e->key, e->klen);
		if (mknod(p, S_IFREG | 0644, 0) == 0)
			CTR_REFLECT(m, REFL_CREATE);
		else if (errno != EEXIST)
			fprintf(stderr, "etcfs: reflect mknod %s: %s\n", p, strerror(errno));
	}
	view_put(m, FS_FILE, e->key, e->klen, 1, &e->kv, e->size);
	int fd = open(p, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0) {
		/* a new empty file is written with no byte: a local `: > f` of a
		 * new name makes no MODIFY (O_TRUNC of a file just created
		 * truncates nothing); any other put rewrites the file (MODIFY) */
		if ((e->prev_exists || e->size) && ftruncate(fd, (off_t)e->size) != 0)
			fprintf(stderr, "etcfs: reflect ftruncate %s: %s\n", p, strerror(errno));
		close(fd);
		CTR_REFLECT(m, REFL_MODIFY);
	}
	view_drop(m, FS_FILE, e->key, e->klen);
	inval_file(m, e->key, e->klen);
	free(p);
}

void reflect_unlink(struct fs_mount *m, struct reflect_ev *e)
{
	char *p = mpath(m, e->key, e->klen);
	if (!p)
		return;
	view_put(m, FS_FILE, e->key, e->klen, 1, &e->prev, e->prev_size);
	if (unlink(p) == 0)
		CTR_REFLECT(m, REFL_DELETE);
	view_drop(m, FS_FILE, e->key, e->klen);
	inval_file(m, e->key, e->klen);
	free(p);
}

static void replay_rename(struct fs_mount *m, struct reflect_ev *del, struct reflect_ev *put)
{
	char *from = mpath(m, del->key, del->klen), *to = mpath(m, put->key, put->klen);
	if (from && to) {
		view_put(m, FS_FILE, del->key, del->klen, 1, &del->prev, del->prev_size);
		view_put(m, FS_FILE, put->key, put->klen, put->prev_exists,
			 put->prev_exists ? &put->prev : &put->kv,
			 put->prev_exists ? put->prev_size : put->size);
		make_ancestors(m, put->key, put->klen);
		if (rename(from, to) == 0)
			CTR_REFLECT(m, REFL_RENAME);
		else
			fprintf(stderr, "etcfs: reflect rename %s: %s\n", from, strerror(errno));
		view_drop(m, FS_FILE, del->key, del->klen);
		view_drop(m, FS_FILE, put->key, put->klen);
		pthread_mutex_lock(&m->mu);
		struct fs_inode *in = inode_find(m, FS_FILE, put->key, put->klen);
		if (in && !in->local)
			inode_set_kv(in, &put->kv, put->size);
		pthread_mutex_unlock(&m->mu);
		inval_file(m, put->key, put->klen);
	}
	free(from);
	free(to);
}

/* ------------------------------------------------------------------ */
/* one revision                                                         */

/* Wait until every write that was in flight when the event arrived has
 * finished, so kv_is_own() can tell. */
static void wait_own(struct fs_mount *m, uint64_t seq_hi)
{
	struct timespec dl = clock_after_ms(CLOCK_REALTIME, m->o.timeout_ms + 2000);
	pthread_mutex_lock(&m->mu);
	for (;;) {
		int waiting = 0;
		for (size_t i = 0; i < m->n_inflight; i++)
			if (m->inflight[i] <= seq_hi)
				waiting = 1;
		if (!waiting || m->stopping)
			break;
		if (pthread_cond_timedwait(&m->own_cv, &m->mu, &dl) == ETIMEDOUT)
			break;
	}
	pthread_mutex_unlock(&m->mu);
}

/* A txn that deletes every key below A/ and puts each one's value under B/
 * (what a directory rename through a mount does) is replayed as one
 * rename(2) of the directory: MOVED_FROM/MOVED_TO with IN_ISDIR, as a local
 * `mv A B`.  Returns 1 when the batch was such a rename and was replayed. */
static int replay_dir_rename(struct fs_mount *m, struct reflect_ev **v, int n)
{
	struct reflect_ev *d0 = NULL, *p0 = NULL;
	int nd = 0, np = 0;
	for (int i = 0; i < n; i++) {
		if (v[i]->type == EF_EVENT_DELETE) {
			if (!v[i]->prev_exists)
				return 0;
			nd++;
			if (!d0 || v[i]->klen < d0->klen)
				d0 = v[i];
		} else {
			if (v[i]->prev_exists)
				return 0;
			np++;
			if (!p0 || v[i]->klen < p0->klen)
				p0 = v[i];
		}
	}
	if (nd == 0 || nd != np)
		return 0;
	/* A = common directory prefix of the deleted keys, B likewise */
	uint32_t al = d0->klen, bl = p0->klen;
	for (int i = 0; i < n; i++) {
		struct reflect_ev *r = v[i]->type == EF_EVENT_DELETE ? d0 : p0;
		uint32_t *l = v[i]->type == EF_EVENT_DELETE ? &al : &bl;
		uint32_t k = 0;
		while (k < *l && k < v[i]->klen && r->key[k] == v[i]->key[k])
			k++;
		*l = k;
	}
	while (al > 0 && d0->key[al - 1] != '/')
		al--;
	while (bl > 0 && p0->key[bl - 1] != '/')
		bl--;
	if (al <= m->plen || bl <= m->plen || (al == bl && !memcmp(d0->key, p0->key, al)))
		return 0;
	/* every deleted A+S has a put B+S of the same value */
	for (int i = 0; i < n; i++) {
		if (v[i]->type != EF_EVENT_DELETE)
			continue;
		int found = 0;
		for (int j = 0; j < n && !found; j++)
			found = v[j]->type == EF_EVENT_PUT && v[j]->klen - bl == v[i]->klen - al &&
				!memcmp(v[j]->key + bl, v[i]->key + al, v[i]->klen - al) &&
				v[j]->vhash == v[i]->prev_vhash;
		if (!found)
			return 0;
	}
	int ne = 1;
	if (kv_prefix_nonempty_at(m, d0->key, al, replay_rev(m), NULL, 0, &ne) || ne)
		return 0; /* keys left below A: not a whole-directory move */
	int64_t nb = 0;
	if (kv_prefix_count_at(m, p0->key, bl, replay_rev(m), &nb) || nb != np)
		return 0; /* B held other keys: files moved into an existing directory */
	char *from = mpath(m, d0->key, al), *to = mpath(m, p0->key, bl);
	if (from && to) {
		view_put(m, FS_DIR, d0->key, al, 1, NULL, 0);
		view_put(m, FS_DIR, p0->key, bl, 0, NULL, 0);
		make_ancestors(m, p0->key, bl);
		if (rename(from, to) == 0)
			CTR_REFLECT(m, REFL_RENAME);
		else
			fprintf(stderr, "etcfs: reflect rename %s: %s\n", from, strerror(errno));
		view_put(m, FS_DIR, d0->key, al, 0, NULL, 0);
		view_put(m, FS_DIR, p0->key, bl, 1, NULL, 0);
		remove_empty_dirs(m, d0->key, al, 0, NULL, 0);
	}
	free(from);
	free(to);
	return from && to;
}

/* Is e a delete whose key a put of pv (same value) can be paired with? */
static int rename_pair(struct fs_mount *m, const struct reflect_ev *d, const struct reflect_ev *p)
{
	return d->type == EF_EVENT_DELETE && d->prev_exists && !is_marker_key(m, d->key, d->klen) &&
	       p->type == EF_EVENT_PUT && !is_marker_key(m, p->key, p->klen) &&
	       p->vhash == d->prev_vhash && p->size == d->prev_size;
}

void replay_batch(struct fs_mount *m, struct reflect_ev **v, int n)
{
	wait_own(m, v[n - 1]->seq_hi);
	pthread_mutex_lock(&m->mu);
	int own = kv_is_own(m, v[0]->kv.mod_revision);
	pthread_mutex_unlock(&m->mu);
	if (own) {
		for (int i = 0; i < n; i++) {
			CTR_INC(m, own_events);
			/* another handle of this mount may hold older pages */
			pthread_mutex_lock(&m->mu);
			struct fs_inode *in = inode_find(m, FS_FILE, v[i]->key, v[i]->klen);
			int stale = in && in->cache_rev && in->cache_rev != v[i]->kv.mod_revision;
			pthread_mutex_unlock(&m->mu);
			if (stale)
				inval_file(m, v[i]->key, v[i]->klen);
		}
		return;
	}
	set_replay_rev(m, v[0]->kv.mod_revision);
	if (n >= 2 && replay_dir_rename(m, v, n))
		goto done;
	/* pair deletes with puts of the same value: renames */
	int *partner = malloc(n * sizeof *partner);
	if (!partner)
		goto done;
	int nputs = 0;
	for (int i = 0; i < n; i++) {
		partner[i] = -1;
		nputs += v[i]->type == EF_EVENT_PUT;
	}
	/* (only when the batch has puts: a delete-range of many keys has none,
	 * and this is quadratic) */
	for (int i = 0; i < n && nputs > 0; i++) {
		if (partner[i] >= 0 || v[i]->type != EF_EVENT_DELETE)
			continue;
		for (int j = 0; j < n; j++)
			if (partner[j] < 0 && rename_pair(m, v[i], v[j])) {
				partner[i] = j;
				partner[j] = i;
				nputs--;
				break;
			}
	}
	struct last_dels ld;
	int have_ld = last_dels_build(m, v, n, &ld) == 0;
	/* in event order; a rename at the place of its delete, so that every
	 * delete is replayed at its own index (last_dels) */
	for (int i = 0; i < n; i++) {
		struct reflect_ev *e = v[i];
		if (partner[i] >= 0) {
			if (e->type != EF_EVENT_DELETE)
				continue; /* replayed with its delete */
			replay_rename(m, e, v[partner[i]]);
			remove_empty_dirs(m, e->key, e->klen, 0, have_ld ? &ld : NULL, i);
		} else if (e->type == EF_EVENT_PUT) {
			reflect_put(m, e);
		} else {
			int marker = is_marker_key(m, e->key, e->klen);
			if (!marker)
				reflect_unlink(m, e);
			remove_empty_dirs(m, e->key, e->klen, marker, have_ld ? &ld : NULL, i);
		}
	}
	free(partner);
	if (have_ld)
		free(ld.d);
done:
	set_replay_rev(m, 0);
	reflect_view_reset(m);
}
