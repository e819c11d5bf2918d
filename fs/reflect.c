/*
 * reflect.c - one watch per mount, and the reflector thread that turns
 * remote changes into the inotify events a local change would make.
 *
 * inotify events come from the VFS only for syscalls that go through it
 * (shared/NOTES-fuse.md): invalidating a cached inode produces none.  So for
 * every change another client made, the reflector thread performs the same
 * operation through the mount point (open+ftruncate+close for a new value,
 * mknod for a new key, unlink, rename, mkdir/rmdir for directories).  The
 * FUSE handlers recognise the reflector by the caller's thread id and answer
 * from the state of the change being replayed (`m->view`), never writing to
 * the cluster.  The mount runs the multi-threaded session loop, so a worker
 * thread serves these requests while the reflector sits in its syscall.
 *
 * Ordering: the watch callback (client delivery thread) only updates cached
 * metadata and queues events; the reflector replays them one revision at a
 * time, in revision order.  Events caused by this mount's own writes are
 * recognised by revision (kv.c) and not replayed: the local syscall already
 * produced their events.  A put and a delete of the same value at one
 * revision are a rename and are replayed as rename(2), which makes
 * MOVED_FROM/MOVED_TO.
 *
 * Losing the watch for good (the revision to resume from was compacted)
 * makes the reflector re-read the prefix and replay what differs
 * (resync.c), then watch again from the revision it read.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "etcfs.h"

static uint64_t vhash(const ef_buf *b)
{
	uint64_t h = 1469598103934665603ull;
	for (uint32_t i = 0; i < b->n; i++) {
		h ^= b->p[i];
		h *= 1099511628211ull;
	}
	return h ^ b->n;
}

int reflect_is_me(struct fs_mount *m, fuse_req_t req)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	return m->reflector_tid && ctx && ctx->pid == m->reflector_tid;
}

void reflect_ev_free(struct reflect_ev *e)
{
	free(e->key);
	free(e);
}

/* Update cached metadata for one event; m->mu held. */
static void apply_cached(struct fs_mount *m, const ef_event *ev)
{
	const ef_kv *kv = &ev->kv;
	struct fs_inode *in = inode_find(m, FS_FILE, kv->key.p, kv->key.n);
	if (!in || in->local)
		return;
	if (ev->type == EF_EVENT_PUT) {
		if (kv->mod_revision >= in->mod_rev) {
			/* consistency=cached: the event carries the value, so the
			 * next open of a file this mount is using needs no fetch */
			int keep = m->o.consistency == FS_CACHED && (in->cval || in->nlookup);
			inode_set_kv(in, kv, kv->value.n);
			if (keep && in->cval_rev != kv->mod_revision) {
				uint8_t *c = malloc(kv->value.n ? kv->value.n : 1);
				if (c) {
					fs_memcpy(c, kv->value.p, kv->value.n);
					free(in->cval);
					in->cval = c;
					in->cval_rev = kv->mod_revision;
				}
			}
		}
	} else if (kv->mod_revision >= in->mod_rev) {
		inode_set_absent(in);
		in->mod_rev = kv->mod_revision;
	}
}

static void on_watch(void *ud, const ef_watch_resp *w, const ef_resp_header *hdr)
{
	struct fs_mount *m = ud;
	struct reflect_ev *head = NULL, **tail = &head;
	pthread_mutex_lock(&m->mu);
	if (w->canceled) {
		m->watch_ok = 0;
		m->need_resync = 1;
	} else {
		m->watch_ok = 1;
	}
	uint64_t seq_hi = m->wseq_started;
	for (uint32_t i = 0; i < w->n_events; i++) {
		const ef_event *ev = &w->events[i];
		apply_cached(m, ev);
		cache_event(m, ev); /* -o cache_dir */
		struct reflect_ev *e = calloc(1, sizeof *e);
		if (!e)
			continue;
		e->key = malloc(ev->kv.key.n + 1);
		if (!e->key) {
			free(e);
			continue;
		}
		fs_memcpy(e->key, ev->kv.key.p, ev->kv.key.n);
		e->klen = ev->kv.key.n;
		e->type = ev->type;
		e->kv = ev->kv;
		e->kv.key = e->kv.value = (ef_buf){NULL, 0};
		e->size = ev->kv.value.n;
		e->vhash = vhash(&ev->kv.value);
		if (ev->prev_kv) {
			e->prev_exists = 1;
			e->prev = *ev->prev_kv;
			e->prev.key = e->prev.value = (ef_buf){NULL, 0};
			e->prev_size = ev->prev_kv->value.n;
			e->prev_vhash = vhash(&ev->prev_kv->value);
		}
		e->seq_hi = seq_hi;
		*tail = e;
		tail = &e->next;
	}
	/* How far the mount has every change: the last event, or a progress
	 * notification.  Not a "created" (the events from the start revision
	 * to its header revision are still to come), except for the first
	 * watch, started from "now", nor a "canceled". */
	int64_t upto = 0;
	if (w->n_events)
		upto = w->events[w->n_events - 1].kv.mod_revision;
	else if (!w->canceled && (!w->created || m->watch_rev == 0))
		upto = hdr->revision;
	if (upto > m->watch_rev)
		m->watch_rev = upto;
	pthread_mutex_unlock(&m->mu);
	pthread_mutex_lock(&m->rq_mu);
	if (head) {
		if (m->rq_tail)
			m->rq_tail->next = head;
		else
			m->rq_head = head;
		struct reflect_ev *t = head;
		while (t->next)
			t = t->next;
		m->rq_tail = t;
	}
	pthread_cond_broadcast(&m->rq_cv);
	pthread_mutex_unlock(&m->rq_mu);
}

int reflect_watch_begin(struct fs_mount *m, int64_t start_rev)
{
	ef_arena *a = ef_arena_new();
	if (!a)
		return EF_E_NOMEM;
	ef_watch_create_req wr = {0};
	wr.key = (ef_buf){m->prefix, m->plen};
	wr.range_end = m->plen ? ef_prefix_end(a, wr.key) : (ef_buf){(const uint8_t *)"", 1};
	wr.start_revision = start_rev;
	wr.prev_kv = 1;
	wr.progress_notify = 1;
	efc_watch *w = NULL;
	int rv = efc_watch_start(m->wc, &wr, on_watch, m, &w);
	ef_arena_free(a);
	if (rv == 0)
		m->watch = w;
	return rv;
}

/* ------------------------------------------------------------------ */
/* replaying                                                            */

/* The reflector works through path names: never on the directory under
 * the mount once it is unmounted. */
static int still_mounted(struct fs_mount *m)
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
	if (!still_mounted(m))
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

static void view_set(struct fs_mount *m, int i, int type, const uint8_t *key, uint32_t klen,
		     int exists, const ef_kv *kv, uint64_t size)
{
	pthread_mutex_lock(&m->mu);
	free(m->view.k[i].key);
	m->view.k[i].key = NULL;
	if (key) {
		m->view.k[i].key = malloc(klen + 1);
		if (m->view.k[i].key)
			fs_memcpy(m->view.k[i].key, key, klen);
	}
	m->view.k[i].type = type;
	m->view.k[i].klen = klen;
	m->view.k[i].exists = exists;
	if (kv)
		m->view.k[i].kv = *kv;
	else
		memset(&m->view.k[i].kv, 0, sizeof m->view.k[i].kv);
	m->view.k[i].size = size;
	if (m->view.n < i + 1)
		m->view.n = i + 1;
	pthread_mutex_unlock(&m->mu);
}

static void view_exists(struct fs_mount *m, int i, int exists)
{
	pthread_mutex_lock(&m->mu);
	m->view.k[i].exists = exists;
	pthread_mutex_unlock(&m->mu);
}

static void view_clear(struct fs_mount *m)
{
	pthread_mutex_lock(&m->mu);
	for (int i = 0; i < 2; i++) {
		free(m->view.k[i].key);
		m->view.k[i].key = NULL;
		m->view.k[i].klen = 0;
	}
	m->view.n = 0;
	pthread_mutex_unlock(&m->mu);
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

/* mkdir every ancestor directory of path that the kernel does not have
 * (the reflector's lookups tell, from the cluster minus the new key). */
static void make_ancestors(struct fs_mount *m, const char *path)
{
	size_t base = strlen(m->mountpoint) + 1;
	char *p = strdup(path);
	if (!p)
		return;
	for (char *s = p + base; (s = strchr(s, '/')); s++) {
		*s = 0;
		if (mkdir(p, 0755) == 0)
			CTR_REFLECT(m, REFL_MKDIR);
		*s = '/';
	}
	free(p);
}

/* rmdir the ancestors of key that no longer hold anything (implied
 * directories vanish with their last key). */
static void remove_empty_ancestors(struct fs_mount *m, const uint8_t *key, uint32_t klen)
{
	for (uint32_t n = klen; n > m->plen; n--) {
		if (key[n - 1] != '/' || n == klen)
			continue;
		int ne = 1;
		if (kv_prefix_nonempty_at(m, key, n, replay_rev(m), NULL, 0, &ne) || ne)
			return;
		char *p = mpath(m, key, n);
		if (!p)
			return;
		view_set(m, 0, FS_DIR, key, n, 1, NULL, 0);
		if (rmdir(p) == 0)
			CTR_REFLECT(m, REFL_RMDIR);
		free(p);
		view_clear(m);
	}
}

static int is_marker(const struct reflect_ev *e, struct fs_mount *m)
{
	return e->klen > m->plen && e->key[e->klen - 1] == '/';
}

void reflect_put(struct fs_mount *m, struct reflect_ev *e)
{
	char *p = mpath(m, e->key, e->klen);
	if (!p)
		return;
	if (is_marker(e, m)) {
		if (!e->prev_exists) {
			/* "a/d/" names directory a/d: drop the trailing slash, or
			 * make_ancestors would mkdir d itself and the mkdir below
			 * could report a second CREATE */
			size_t pl = strlen(p);
			if (pl > 1 && p[pl - 1] == '/')
				p[pl - 1] = 0;
			view_set(m, 0, FS_DIR, e->key, e->klen, 0, NULL, 0);
			make_ancestors(m, p);
			if (mkdir(p, 0755) == 0)
				CTR_REFLECT(m, REFL_MKDIR);
			view_clear(m);
		}
		free(p);
		return;
	}
	if (!e->prev_exists) {
		view_set(m, 0, FS_FILE, e->key, e->klen, 0, &e->kv, e->size);
		make_ancestors(m, p);
		if (mknod(p, S_IFREG | 0644, 0) == 0)
			CTR_REFLECT(m, REFL_CREATE);
		else if (errno != EEXIST)
			fprintf(stderr, "etcfs: reflect mknod %s: %s\n", p, strerror(errno));
		view_exists(m, 0, 1);
	} else {
		view_set(m, 0, FS_FILE, e->key, e->klen, 1, &e->kv, e->size);
	}
	int fd = open(p, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0) {
		if (ftruncate(fd, (off_t)e->size) != 0)
			fprintf(stderr, "etcfs: reflect ftruncate %s: %s\n", p, strerror(errno));
		close(fd);
		CTR_REFLECT(m, REFL_MODIFY);
	}
	view_clear(m);
	inval_file(m, e->key, e->klen);
	free(p);
}

static void replay_delete(struct fs_mount *m, struct reflect_ev *e)
{
	char *p = mpath(m, e->key, e->klen);
	if (!p)
		return;
	if (is_marker(e, m)) {
		int ne = 1;
		if (kv_prefix_nonempty_at(m, e->key, e->klen, replay_rev(m), NULL, 0, &ne) == 0 &&
		    !ne) {
			view_set(m, 0, FS_DIR, e->key, e->klen, 1, NULL, 0);
			if (rmdir(p) == 0)
				CTR_REFLECT(m, REFL_RMDIR);
			view_clear(m);
		}
	} else {
		reflect_unlink(m, e);
	}
	remove_empty_ancestors(m, e->key, e->klen);
	free(p);
}

void reflect_unlink(struct fs_mount *m, struct reflect_ev *e)
{
	char *p = mpath(m, e->key, e->klen);
	if (!p)
		return;
	view_set(m, 0, FS_FILE, e->key, e->klen, 1, &e->prev, e->prev_size);
	if (unlink(p) == 0)
		CTR_REFLECT(m, REFL_DELETE);
	view_clear(m);
	inval_file(m, e->key, e->klen);
	free(p);
}

/* mkdir(2) or rmdir(2) of directory dk while the view says it is absent
 * (mkdir) or present (rmdir). */
static int reflect_dir(struct fs_mount *m, const uint8_t *dk, uint32_t dklen, int make)
{
	char *p = mpath(m, dk, dklen);
	if (!p)
		return 0;
	size_t pl = strlen(p);
	if (pl > 1 && p[pl - 1] == '/')
		p[pl - 1] = 0;
	view_set(m, 0, FS_DIR, dk, dklen, !make, NULL, 0);
	int ok = (make ? mkdir(p, 0755) : rmdir(p)) == 0;
	if (ok)
		CTR_REFLECT(m, make ? REFL_MKDIR : REFL_RMDIR);
	view_clear(m);
	free(p);
	return ok;
}

int reflect_mkdir(struct fs_mount *m, const uint8_t *dk, uint32_t dklen)
{
	return reflect_dir(m, dk, dklen, 1);
}

int reflect_rmdir(struct fs_mount *m, const uint8_t *dk, uint32_t dklen)
{
	return reflect_dir(m, dk, dklen, 0);
}

static void replay_rename(struct fs_mount *m, struct reflect_ev *del, struct reflect_ev *put)
{
	char *from = mpath(m, del->key, del->klen), *to = mpath(m, put->key, put->klen);
	if (from && to) {
		view_set(m, 0, FS_FILE, del->key, del->klen, 1, &del->prev, del->prev_size);
		view_set(m, 1, FS_FILE, put->key, put->klen, put->prev_exists,
			 put->prev_exists ? &put->prev : &put->kv,
			 put->prev_exists ? put->prev_size : put->size);
		make_ancestors(m, to);
		if (rename(from, to) == 0)
			CTR_REFLECT(m, REFL_RENAME);
		else
			fprintf(stderr, "etcfs: reflect rename %s: %s\n", from, strerror(errno));
		view_clear(m);
		pthread_mutex_lock(&m->mu);
		struct fs_inode *in = inode_find(m, FS_FILE, put->key, put->klen);
		if (in && !in->local)
			inode_set_kv(in, &put->kv, put->size);
		pthread_mutex_unlock(&m->mu);
		inval_file(m, put->key, put->klen);
		remove_empty_ancestors(m, del->key, del->klen);
	}
	free(from);
	free(to);
}

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
		view_set(m, 0, FS_DIR, d0->key, al, 1, NULL, 0);
		view_set(m, 1, FS_DIR, p0->key, bl, 0, NULL, 0);
		make_ancestors(m, to);
		if (rename(from, to) == 0)
			CTR_REFLECT(m, REFL_RENAME);
		else
			fprintf(stderr, "etcfs: reflect rename %s: %s\n", from, strerror(errno));
		view_clear(m);
		remove_empty_ancestors(m, d0->key, al);
	}
	free(from);
	free(to);
	return from && to;
}

static void replay_batch(struct fs_mount *m, struct reflect_ev **v, int n)
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
	if (n >= 2 && replay_dir_rename(m, v, n)) {
		set_replay_rev(m, 0);
		return;
	}
	/* pair deletes with puts of the same value: a rename */
	for (int i = 0; i < n; i++) {
		if (!v[i] || v[i]->type != EF_EVENT_DELETE || !v[i]->prev_exists ||
		    is_marker(v[i], m))
			continue;
		for (int j = 0; j < n; j++) {
			if (!v[j] || v[j]->type != EF_EVENT_PUT || is_marker(v[j], m) ||
			    v[j]->vhash != v[i]->prev_vhash || v[j]->size != v[i]->prev_size)
				continue;
			replay_rename(m, v[i], v[j]);
			reflect_ev_free(v[i]);
			reflect_ev_free(v[j]);
			v[i] = v[j] = NULL;
			break;
		}
	}
	for (int i = 0; i < n; i++) {
		if (!v[i])
			continue;
		if (v[i]->type == EF_EVENT_PUT)
			reflect_put(m, v[i]);
		else
			replay_delete(m, v[i]);
	}
	set_replay_rev(m, 0);
}

static void *reflector_main(void *arg)
{
	struct fs_mount *m = arg;
	pthread_mutex_lock(&m->rq_mu);
	m->reflector_tid = gettid();
	pthread_cond_broadcast(&m->rq_cv);
	pthread_mutex_unlock(&m->rq_mu);
	still_mounted(m); /* learn the mount's st_dev */
	pthread_mutex_lock(&m->rq_mu);
	for (;;) {
		if (m->stopping)
			break;
		/* (events queued before the watch was lost are replayed first:
		 * resync compares with the state they leave) */
		if (!m->watch || (m->need_resync && !m->rq_head)) {
			int resyncing = m->need_resync;
			pthread_mutex_unlock(&m->rq_mu);
			pthread_mutex_lock(&m->mu);
			int64_t from = m->watch_rev ? m->watch_rev + 1 : 0;
			pthread_mutex_unlock(&m->mu);
			if (resyncing ? resync_run(m) != 0 : reflect_watch_begin(m, from) != 0)
				usleep(500 * 1000);
			pthread_mutex_lock(&m->rq_mu);
			continue;
		}
		if (!m->rq_head) {
			struct timespec dl = clock_after_ms(CLOCK_REALTIME, 1000);
			pthread_cond_timedwait(&m->rq_cv, &m->rq_mu, &dl);
			continue;
		}
		/* one revision at a time */
		struct reflect_ev *batch[256];
		int n = 0;
		int64_t rev = m->rq_head->kv.mod_revision;
		while (m->rq_head && m->rq_head->kv.mod_revision == rev && n < 256) {
			batch[n++] = m->rq_head;
			m->rq_head = m->rq_head->next;
		}
		if (!m->rq_head)
			m->rq_tail = NULL;
		pthread_mutex_unlock(&m->rq_mu);
		replay_batch(m, batch, n);
		for (int i = 0; i < n; i++)
			if (batch[i])
				reflect_ev_free(batch[i]);
		pthread_mutex_lock(&m->rq_mu);
	}
	pthread_mutex_unlock(&m->rq_mu);
	return NULL;
}

int reflect_start(struct fs_mount *m)
{
	pthread_mutex_init(&m->rq_mu, NULL);
	pthread_cond_init(&m->rq_cv, NULL);
	/* first attempt here, so changes right after mount are seen */
	reflect_watch_begin(m, 0);
	if (pthread_create(&m->reflector, NULL, reflector_main, m) != 0)
		return EAGAIN;
	m->reflector_started = 1;
	pthread_mutex_lock(&m->rq_mu);
	while (!m->reflector_tid)
		pthread_cond_wait(&m->rq_cv, &m->rq_mu);
	pthread_mutex_unlock(&m->rq_mu);
	return 0;
}

void reflect_stop(struct fs_mount *m)
{
	pthread_mutex_lock(&m->rq_mu);
	m->stopping = 1;
	pthread_cond_broadcast(&m->rq_cv);
	pthread_mutex_unlock(&m->rq_mu);
	pthread_mutex_lock(&m->mu);
	pthread_cond_broadcast(&m->own_cv);
	pthread_mutex_unlock(&m->mu);
	if (m->reflector_started)
		pthread_join(m->reflector, NULL);
	m->reflector_started = 0;
	if (m->watch)
		efc_watch_stop(m->watch);
	m->watch = NULL;
	pthread_mutex_lock(&m->rq_mu);
	while (m->rq_head) {
		struct reflect_ev *e = m->rq_head;
		m->rq_head = e->next;
		reflect_ev_free(e);
	}
	m->rq_tail = NULL;
	pthread_mutex_unlock(&m->rq_mu);
	view_clear(m);
}
