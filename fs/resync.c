/*
 * resync.c - catching up after the watch was lost for good.
 *
 * The client library resumes a watch on another member after a failover,
 * so a dead member costs no event.  What it cannot do is resume from a
 * revision that was compacted meanwhile: the watch is then canceled and the
 * changes between m->watch_rev (the last revision whose events the mount
 * has) and now are gone from history.  This file rebuilds them from the
 * current state, so inotify watchers still get the events a local change
 * would have made:
 *
 *   1. Read every key below the prefix (keys only, paged, all pages at the
 *      revision R of the first one).
 *   2. Files the mount knows (looked up, listed, or seen in events): a key
 *      that vanished is unlinked (DELETE); one whose mod revision differs is
 *      rewritten (MODIFY, CLOSE_WRITE); one that came back is created.
 *   3. Keys the mount does not know: created after m->watch_rev (create
 *      revision above it) they are created, with mkdir first for each
 *      directory that is new too (CREATE, CREATE|ISDIR); older but modified
 *      after m->watch_rev they are rewritten (a watcher of their directory
 *      gets MODIFY).
 *   4. Directories the kernel holds, and the directories of deleted files,
 *      that no longer have any key below them are removed, deepest first
 *      (DELETE|ISDIR).
 *   5. Watch again from R + 1: nothing between the read and the new watch
 *      is missed.
 *
 * Deletions of keys the mount never named cannot be told apart from keys
 * that never existed (history is gone): they make no event.  Everything
 * here runs on the reflector thread, through the same replay steps as the
 * watch (reflect.c), so the FUSE handlers answer the reflector's own
 * syscalls from its view and nothing is written to the cluster.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etcfs.h"

/* One key of the prefix at revision R. */
struct rs_key {
	uint8_t *key;
	uint32_t klen;
	int64_t mod_rev, create_rev;
	int seen; /* matched a file the mount knows (step 2) */
};

struct rs_scan {
	struct rs_key *k; /* sorted by key bytes */
	size_t n, cap;
	int64_t rev; /* R */
};

/* Keys of deleted files (step 2), whose directories step 4 checks and
 * step 3 must not report as new. */
struct rs_list {
	uint8_t **key;
	uint32_t *klen;
	size_t n, cap;
};

static int key_cmp(const uint8_t *a, uint32_t an, const uint8_t *b, uint32_t bn)
{
	int c = memcmp(a, b, an < bn ? an : bn);
	if (c)
		return c;
	return an < bn ? -1 : an > bn;
}

static int rs_key_cmp(const void *x, const void *y)
{
	const struct rs_key *a = x, *b = y;
	return key_cmp(a->key, a->klen, b->key, b->klen);
}

static void scan_free(struct rs_scan *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->k[i].key);
	free(s->k);
	memset(s, 0, sizeof *s);
}

static int scan_add(struct rs_scan *s, const ef_kv *kv)
{
	if (s->n == s->cap) {
		size_t nc = s->cap ? s->cap * 2 : 1024;
		struct rs_key *nk = realloc(s->k, nc * sizeof *nk);
		if (!nk)
			return EF_E_NOMEM;
		s->k = nk;
		s->cap = nc;
	}
	uint8_t *k = malloc(kv->key.n + 1);
	if (!k)
		return EF_E_NOMEM;
	fs_memcpy(k, kv->key.p, kv->key.n);
	s->k[s->n++] = (struct rs_key){k, kv->key.n, kv->mod_revision, kv->create_revision, 0};
	return 0;
}

/* Step 1: every key of the prefix, at one revision. */
static int scan_prefix(struct fs_mount *m, struct rs_scan *s)
{
	static const uint8_t zero = 0;
	ef_buf from = m->plen ? (ef_buf){m->prefix, m->plen} : (ef_buf){&zero, 1};
	uint8_t *next = malloc(from.n + 1);
	if (!next)
		return EF_E_NOMEM;
	fs_memcpy(next, from.p, from.n);
	uint32_t nlen = from.n;
	int rv = 0;
	for (;;) {
		ef_arena *a = ef_arena_new();
		if (!a) {
			rv = EF_E_NOMEM;
			break;
		}
		ef_msg req = {.type = EF_MSG_RANGE}, resp;
		req.u.range.key = (ef_buf){next, nlen};
		req.u.range.range_end = m->plen ? ef_prefix_end(a, (ef_buf){m->prefix, m->plen})
						: (ef_buf){&zero, 1};
		req.u.range.keys_only = 1;
		req.u.range.limit = FS_PAGE_KEYS;
		req.u.range.revision = s->rev;
		rv = efc_call(m->c, &req, &resp, a);
		if (rv == 0 && !s->rev)
			s->rev = resp.hdr.revision;
		ef_range_resp *r = &resp.u.range_resp;
		for (uint32_t i = 0; rv == 0 && i < r->n_kvs; i++)
			if (!kv_reserved(r->kvs[i].key.p, r->kvs[i].key.n)) /* O_EXCL, kv.c */
				rv = scan_add(s, &r->kvs[i]);
		int more = rv == 0 && r->more && r->n_kvs > 0;
		if (more) {
			/* next page starts just after the last key */
			const ef_kv *last = &r->kvs[r->n_kvs - 1];
			uint8_t *nx = malloc(last->key.n + 1);
			if (!nx) {
				rv = EF_E_NOMEM;
				more = 0;
			} else {
				fs_memcpy(nx, last->key.p, last->key.n);
				nx[last->key.n] = 0;
				free(next);
				next = nx;
				nlen = last->key.n + 1;
			}
		}
		ef_arena_free(a);
		if (!more)
			break;
	}
	free(next);
	if (rv == 0 && s->n > 1)
		qsort(s->k, s->n, sizeof *s->k, rs_key_cmp);
	return rv;
}

static struct rs_key *scan_find(struct rs_scan *s, const uint8_t *key, uint32_t klen)
{
	struct rs_key probe = {(uint8_t *)key, klen, 0, 0, 0};
	return bsearch(&probe, s->k, s->n, sizeof *s->k, rs_key_cmp);
}

/* Index of the first key >= key. */
static size_t scan_lower(const struct rs_scan *s, const uint8_t *key, uint32_t klen)
{
	size_t lo = 0, hi = s->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (key_cmp(s->k[mid].key, s->k[mid].klen, key, klen) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int has_prefix(const uint8_t *k, uint32_t kn, const uint8_t *p, uint32_t pn)
{
	return kn >= pn && memcmp(k, p, pn) == 0;
}

/* Is any key at R below directory dk? */
static int scan_any_below(const struct rs_scan *s, const uint8_t *dk, uint32_t dklen)
{
	size_t i = scan_lower(s, dk, dklen);
	return i < s->n && has_prefix(s->k[i].key, s->k[i].klen, dk, dklen);
}

/* Did directory dk exist before the gap, as far as can be told: a key below
 * it is older than the gap, a deleted file was below it, or the kernel
 * holds it. */
static int dir_existed(struct fs_mount *m, const struct rs_scan *s, const struct rs_list *del,
		       int64_t gap, const uint8_t *dk, uint32_t dklen)
{
	for (size_t i = scan_lower(s, dk, dklen);
	     i < s->n && has_prefix(s->k[i].key, s->k[i].klen, dk, dklen); i++)
		if (s->k[i].create_rev <= gap)
			return 1;
	for (size_t i = 0; i < del->n; i++)
		if (has_prefix(del->key[i], del->klen[i], dk, dklen))
			return 1;
	pthread_mutex_lock(&m->mu);
	struct fs_inode *in = inode_find(m, FS_DIR, dk, dklen);
	int held = in && in->hashed && in->nlookup > 0;
	pthread_mutex_unlock(&m->mu);
	return held;
}

static int list_add(struct rs_list *l, const uint8_t *key, uint32_t klen)
{
	if (l->n == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 64;
		uint8_t **nk = realloc(l->key, nc * sizeof *nk);
		if (!nk)
			return EF_E_NOMEM;
		l->key = nk;
		uint32_t *nl = realloc(l->klen, nc * sizeof *nl);
		if (!nl)
			return EF_E_NOMEM;
		l->klen = nl;
		l->cap = nc;
	}
	uint8_t *k = malloc(klen + 1);
	if (!k)
		return EF_E_NOMEM;
	fs_memcpy(k, key, klen);
	l->key[l->n] = k;
	l->klen[l->n++] = klen;
	return 0;
}

static void list_free(struct rs_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->key[i]);
	free(l->key);
	free(l->klen);
	memset(l, 0, sizeof *l);
}

/* Metadata and value size of key at revision rev (or now, if rev was
 * compacted meanwhile).  *exists = 0 when absent. */
static int get_at(struct fs_mount *m, const uint8_t *key, uint32_t klen, int64_t rev, int *exists,
		  ef_kv *kv, uint64_t *size)
{
	for (int attempt = 0; attempt < 2; attempt++) {
		ef_arena *a = ef_arena_new();
		if (!a)
			return EF_E_NOMEM;
		ef_msg req = {.type = EF_MSG_RANGE}, resp;
		req.u.range.key = (ef_buf){key, klen};
		req.u.range.revision = attempt ? 0 : rev;
		int rv = efc_call(m->c, &req, &resp, a);
		if (rv == 0) {
			*exists = resp.u.range_resp.n_kvs > 0;
			if (*exists) {
				*kv = resp.u.range_resp.kvs[0];
				*size = kv->value.n;
				kv->key = kv->value = (ef_buf){NULL, 0};
			}
		}
		ef_arena_free(a);
		if (rv != EF_E_COMPACTED)
			return rv;
	}
	return EF_E_COMPACTED;
}

/* Replay a put of key as it is at R: created (prev_exists 0) or changed. */
static void put_key(struct fs_mount *m, const uint8_t *key, uint32_t klen, int64_t rev,
		    int prev_exists, const ef_kv *prev, uint64_t prev_size)
{
	struct reflect_ev e = {.type = EF_EVENT_PUT, .klen = klen, .prev_exists = prev_exists};
	int exists = 0;
	if (get_at(m, key, klen, rev, &exists, &e.kv, &e.size) || !exists)
		return;
	e.key = malloc(klen + 1);
	if (!e.key)
		return;
	fs_memcpy(e.key, key, klen);
	if (prev) {
		e.prev = *prev;
		e.prev_size = prev_size;
	}
	pthread_mutex_lock(&m->mu);
	struct fs_inode *in = inode_find(m, FS_FILE, key, klen);
	if (in && !in->local)
		inode_set_kv(in, &e.kv, e.size);
	pthread_mutex_unlock(&m->mu);
	reflect_put(m, &e);
	free(e.key);
}

static void delete_key(struct fs_mount *m, const uint8_t *key, uint32_t klen, const ef_kv *prev,
		       uint64_t prev_size)
{
	struct reflect_ev e = {.type = EF_EVENT_DELETE, .klen = klen, .prev_exists = 1};
	e.key = malloc(klen + 1);
	if (!e.key)
		return;
	fs_memcpy(e.key, key, klen);
	e.prev = *prev;
	e.prev_size = prev_size;
	pthread_mutex_lock(&m->mu);
	struct fs_inode *in = inode_find(m, FS_FILE, key, klen);
	if (in && !in->local)
		inode_set_absent(in);
	pthread_mutex_unlock(&m->mu);
	reflect_unlink(m, &e);
	free(e.key);
}

/* Step 2: the files of the inode table. */
static int resync_known(struct fs_mount *m, struct rs_scan *s, int64_t gap, struct rs_list *del)
{
	pthread_mutex_lock(&m->mu);
	uint64_t n = m->nino;
	pthread_mutex_unlock(&m->mu);
	for (uint64_t i = 2; i <= n && !m->stopping; i++) {
		pthread_mutex_lock(&m->mu);
		struct fs_inode *in = inode_by_ino(m, i);
		if (!in || in->type != FS_FILE || in->local || !in->hashed) {
			pthread_mutex_unlock(&m->mu);
			continue;
		}
		/* an inode never updated since a listing named it: it existed then */
		int known = in->known, existed = in->known ? in->exists : 1;
		ef_kv prev = {.mod_revision = in->mod_rev,
			      .create_revision = in->create_rev,
			      .version = in->version,
			      .lease = in->lease,
			      .mod_time_ns = in->mod_time_ns};
		uint64_t prev_size = in->size;
		uint32_t klen = in->klen;
		uint8_t *key = malloc(klen + 1);
		if (key)
			fs_memcpy(key, in->key, klen);
		pthread_mutex_unlock(&m->mu);
		if (!key)
			return EF_E_NOMEM;
		struct rs_key *k = scan_find(s, key, klen);
		if (k) {
			k->seen = 1;
			int changed = known ? k->mod_rev != prev.mod_revision : k->mod_rev > gap;
			if (!existed || changed)
				put_key(m, key, klen, s->rev, existed, existed ? &prev : NULL,
					prev_size);
		} else if (existed) {
			if (list_add(del, key, klen)) {
				free(key);
				return EF_E_NOMEM;
			}
			delete_key(m, key, klen, &prev, prev_size);
		}
		free(key);
	}
	return 0;
}

/* Step 3: keys the mount did not know. */
static void resync_unknown(struct fs_mount *m, struct rs_scan *s, int64_t gap,
			   const struct rs_list *del)
{
	const struct rs_key *prev = NULL; /* the last new key: its directories are done */
	struct rs_list made = {0};        /* directories made here */
	for (size_t i = 0; i < s->n && !m->stopping; i++) {
		struct rs_key *k = &s->k[i];
		if (k->seen || k->klen <= m->plen)
			continue;
		if (k->create_rev <= gap) {
			if (k->mod_rev > gap && k->key[k->klen - 1] != '/')
				put_key(m, k->key, k->klen, s->rev, 1, NULL, 0);
			continue;
		}
		/* new directories on the way, outermost first (keys are sorted, so
		 * a directory shared with the previous new key was handled then) */
		for (uint32_t l = m->plen + 1; l < k->klen; l++) {
			if (k->key[l - 1] != '/')
				continue;
			if (prev && prev->klen >= l && !memcmp(prev->key, k->key, l))
				continue;
			/* below a directory made here, nothing existed (the kernel may
			 * hold it already: a recursive watcher looked it up while the
			 * replay waited for it, watchers.c) */
			int fresh = 0;
			for (size_t j = 0; j < made.n && !fresh; j++)
				fresh = has_prefix(k->key, l, made.key[j], made.klen[j]);
			if (fresh || !dir_existed(m, s, del, gap, k->key, l)) {
				reflect_mkdir(m, k->key, l);
				list_add(&made, k->key, l);
			}
		}
		prev = k;
		put_key(m, k->key, k->klen, s->rev, 0, NULL, 0);
	}
	list_free(&made);
}

static int dklen_desc(const void *x, const void *y)
{
	const struct rs_key *a = x, *b = y;
	return a->klen < b->klen ? 1 : a->klen > b->klen ? -1 : 0;
}

/* Step 4: directories left without keys. */
static int resync_dirs(struct fs_mount *m, struct rs_scan *s, const struct rs_list *del)
{
	struct rs_scan c = {0}; /* candidate directory prefixes (klen only used) */
	int rv = 0;
	pthread_mutex_lock(&m->mu);
	for (uint64_t i = 2; i <= m->nino && !rv; i++) {
		struct fs_inode *in = m->byino[i];
		if (in && in->type == FS_DIR && in->hashed && in->nlookup > 0 && in->klen > m->plen)
			rv = scan_add(&c, &(ef_kv){.key = {in->key, in->klen}});
	}
	pthread_mutex_unlock(&m->mu);
	for (size_t i = 0; i < del->n && !rv; i++)
		for (uint32_t l = m->plen + 1; l < del->klen[i] && !rv; l++)
			if (del->key[i][l - 1] == '/')
				rv = scan_add(&c, &(ef_kv){.key = {del->key[i], l}});
	if (rv == 0 && c.n > 1)
		qsort(c.k, c.n, sizeof *c.k, dklen_desc);
	for (size_t i = 0; i < c.n && rv == 0 && !m->stopping; i++) {
		int dup = 0;
		for (size_t j = 0; j < i && !dup; j++)
			dup = c.k[j].klen == c.k[i].klen &&
			      !memcmp(c.k[j].key, c.k[i].key, c.k[i].klen);
		if (dup || scan_any_below(s, c.k[i].key, c.k[i].klen))
			continue;
		/* files that live only in this mount keep it */
		int local = 0;
		pthread_mutex_lock(&m->mu);
		for (uint64_t j = 2; j <= m->nino && !local; j++) {
			struct fs_inode *in = m->byino[j];
			local = in && in->hashed && in->local &&
				has_prefix(in->key, in->klen, c.k[i].key, c.k[i].klen);
		}
		pthread_mutex_unlock(&m->mu);
		if (!local)
			reflect_rmdir(m, c.k[i].key, c.k[i].klen);
	}
	scan_free(&c);
	return rv;
}

int resync_run(struct fs_mount *m)
{
	if (m->watch) {
		efc_watch_stop(m->watch);
		m->watch = NULL;
	}
	pthread_mutex_lock(&m->mu);
	int64_t gap = m->watch_rev;
	pthread_mutex_unlock(&m->mu);
	struct rs_scan s = {0};
	int rv = scan_prefix(m, &s);
	for (int attempt = 0; rv == EF_E_COMPACTED && attempt < 3; attempt++) {
		scan_free(&s);
		rv = scan_prefix(m, &s); /* R was compacted while paging */
	}
	if (rv) {
		scan_free(&s);
		fprintf(stderr, "etcfs: resync: cannot read the prefix: %s (retrying)\n",
			ef_strerror(rv));
		return rv;
	}
	CTR_INC(m, resyncs);
	fprintf(stderr,
		"etcfs: watch lost (its revision was compacted): re-reading the prefix, "
		"changes after revision %lld replayed\n",
		(long long)gap);
	pthread_mutex_lock(&m->mu);
	m->need_resync = 0;
	pthread_mutex_unlock(&m->mu);
	struct rs_list del = {0};
	/* one view for the whole replay, as for one revision (replay.c) */
	reflect_view_reset(m);
	rv = resync_known(m, &s, gap, &del);
	if (rv == 0)
		resync_unknown(m, &s, gap, &del);
	if (rv == 0)
		rv = resync_dirs(m, &s, &del);
	reflect_view_reset(m);
	if (rv)
		fprintf(stderr, "etcfs: resync: %s\n", ef_strerror(rv));
	pthread_mutex_lock(&m->mu);
	if (s.rev > m->watch_rev)
		m->watch_rev = s.rev;
	pthread_mutex_unlock(&m->mu);
	int64_t from = s.rev + 1;
	list_free(&del);
	scan_free(&s);
	/* a failure leaves m->watch NULL: the reflector retries from watch_rev + 1 */
	return reflect_watch_begin(m, from) ? EF_E_UNAVAILABLE : 0;
}
