/*
 * dir.c - listing a directory without fetching values.
 *
 * A directory is a key prefix.  readdir pages through the keys below it with
 * RANGE keys_only + limit, all pages at the revision of the first one (one
 * consistent snapshot even across pages), and keeps only the next path
 * component of each key: once a key shows a sub-directory, every other key
 * below it is skipped, and the next page starts after that sub-directory's
 * prefix.  So listing a directory of 100,000 keys reads 100 pages of names,
 * and a directory holding one sub-directory of 100,000 keys reads a page.
 *
 * The entries fetched so far stay in the open directory handle, so readdir
 * offsets are plain indexes and a listing continued by the kernel or
 * rewound by seekdir resumes exactly.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cache.h"
#include "etcfs.h"

struct fs_dirent {
	char *name;
	uint8_t type;
	uint64_t ino;
};

struct fs_dirh {
	pthread_mutex_t mu;
	uint64_t ino; /* the directory's inode */
	uint8_t *cp;  /* key prefix of the directory */
	uint32_t cplen;
	struct fs_dirent *ents; /* fetched so far, in key order */
	size_t n, cap;
	uint8_t *next; /* key to start the next page at */
	uint32_t nlen;
	int done;    /* no more pages */
	int64_t rev; /* revision of the first page (0 before it) */
};

int dir_open(struct fs_mount *m, struct fs_inode *dir, struct fs_dirh **out)
{
	struct fs_dirh *d = calloc(1, sizeof *d);
	if (!d)
		return ENOMEM;
	pthread_mutex_init(&d->mu, NULL);
	pthread_mutex_lock(&m->mu);
	d->ino = dir->ino;
	d->cplen = dir->klen;
	d->cp = malloc(dir->klen + 1);
	d->next = malloc(dir->klen + 1);
	if (d->cp && d->next) {
		fs_memcpy(d->cp, dir->key, dir->klen);
		fs_memcpy(d->next, dir->key, dir->klen);
	}
	pthread_mutex_unlock(&m->mu);
	d->nlen = d->cplen;
	if (!d->cp || !d->next) {
		dir_close(d);
		return ENOMEM;
	}
	*out = d;
	return 0;
}

void dir_close(struct fs_dirh *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->n; i++)
		free(d->ents[i].name);
	free(d->ents);
	free(d->cp);
	free(d->next);
	pthread_mutex_destroy(&d->mu);
	free(d);
}

static int add_ent(struct fs_mount *m, struct fs_dirh *d, const char *name, int type,
		   const uint8_t *key, uint32_t klen)
{
	if (d->n == d->cap) {
		size_t nc = d->cap ? d->cap * 2 : 256;
		struct fs_dirent *ne = realloc(d->ents, nc * sizeof *ne);
		if (!ne)
			return ENOMEM;
		d->ents = ne;
		d->cap = nc;
	}
	char *nm = strdup(name);
	if (!nm)
		return ENOMEM;
	pthread_mutex_lock(&m->mu);
	struct fs_inode *in = inode_get(m, type, key, klen);
	uint64_t ino = in ? in->ino : 0;
	pthread_mutex_unlock(&m->mu);
	if (!in) {
		free(nm);
		return ENOMEM;
	}
	d->ents[d->n++] = (struct fs_dirent){nm, (uint8_t)type, ino};
	return 0;
}

static int starts_with(const ef_buf *k, const uint8_t *p, uint32_t n)
{
	return k->n >= n && memcmp(k->p, p, n) == 0;
}

/* Set d->next to the given bytes. */
static int set_next(struct fs_dirh *d, const uint8_t *p, uint32_t n, int plus_zero)
{
	uint8_t *nx = malloc(n + 1);
	if (!nx)
		return ENOMEM;
	fs_memcpy(nx, p, n);
	if (plus_zero)
		nx[n++] = 0;
	free(d->next);
	d->next = nx;
	d->nlen = n;
	return 0;
}

struct dir_arg {
	struct fs_mount *m;
	struct fs_dirh *d;
};
static int from_cache(void *arg, const char *name, int type, const uint8_t *key, uint32_t klen)
{
	struct dir_arg *x = arg;
	return add_ent(x->m, x->d, name, type, key, klen);
}

static int fetch_page(struct fs_mount *m, struct fs_dirh *d)
{
	ef_arena *a = ef_arena_new();
	if (!a)
		return ENOMEM;
	ef_msg req = {.type = EF_MSG_RANGE}, resp;
	req.u.range.key = (ef_buf){d->next, d->nlen};
	req.u.range.range_end = ef_prefix_end(a, (ef_buf){d->cp, d->cplen});
	req.u.range.keys_only = 1;
	req.u.range.limit = FS_PAGE_KEYS;
	req.u.range.revision = d->rev;
	req.u.range.serializable = m->o.consistency != FS_LINEARIZABLE;
	int rv = fs_call(m, &req, &resp, a);
	if (rv && d->n == 0 && cache_serves(m, rv) &&
	    cache_list(m, d->cp, d->cplen, from_cache, &(struct dir_arg){m, d}) == 0) {
		d->done = 1; /* -o cache_dir: the keys it holds */
		ef_arena_free(a);
		return 0;
	}
	if (rv == EF_E_COMPACTED && d->rev) {
		d->rev = 0; /* the snapshot is gone: continue at the current revision */
		req.u.range.revision = 0;
		rv = fs_call(m, &req, &resp, a);
	}
	if (rv) {
		ef_arena_free(a);
		return ef_errno(rv);
	}
	if (!d->rev)
		d->rev = resp.hdr.revision;
	ef_range_resp *r = &resp.u.range_resp;
	uint8_t *skip = NULL; /* prefix of the sub-directory being skipped */
	uint32_t skiplen = 0;
	char name[NAME_MAX + 1];
	int err = 0;
	for (uint32_t i = 0; i < r->n_kvs && !err; i++) {
		ef_buf *k = &r->kvs[i].key;
		if (!starts_with(k, d->cp, d->cplen) || k->n == d->cplen)
			continue; /* the directory's own marker */
		if (kv_reserved(k->p, k->n))
			continue; /* an O_EXCL create's reservation (kv.c) */
		if (skip && starts_with(k, skip, skiplen))
			continue;
		const uint8_t *rest = k->p + d->cplen;
		uint32_t rn = k->n - d->cplen;
		const uint8_t *sl = memchr(rest, '/', rn);
		uint32_t seglen = sl ? (uint32_t)(sl - rest) : rn;
		uint32_t used = names_encode(rest, seglen, NAME_ANY, name);
		if (used < seglen || sl) {
			/* a sub-directory: "seg/" or the first chunk "%+..." of a long segment */
			skiplen = d->cplen + used + (used < seglen ? 0 : 1);
			skip = ef_arena_dup(a, k->p, skiplen);
			if (!skip) {
				err = ENOMEM;
				break;
			}
			err = add_ent(m, d, name, FS_DIR, skip, skiplen);
			continue;
		}
		/* A file.  Is the same segment also a directory ("seg/..." keys)?  Keys
		 * "seg" + c with c < '/' sort between "seg" and "seg/", so look ahead. */
		int collide = 0, unsure = 0;
		if (i + 1 < r->n_kvs) {
			ef_buf *nk = &r->kvs[i + 1].key;
			if (starts_with(nk, k->p, k->n) && nk->n > k->n) {
				uint8_t c = nk->p[k->n];
				if (c == '/')
					collide = 1;
				else if (c < '/')
					unsure = 1;
			}
		} else if (r->more) {
			unsure = 1;
		}
		if (unsure) {
			uint8_t *dk = ef_arena_alloc(a, k->n + 1);
			if (!dk) {
				err = ENOMEM;
				break;
			}
			fs_memcpy(dk, k->p, k->n);
			dk[k->n] = '/';
			int ne = 0;
			int rv2 = kv_prefix_nonempty(m, dk, k->n + 1, 1, NULL, 0, &ne);
			if (rv2) {
				err = ef_errno(rv2);
				break;
			}
			collide = ne;
		}
		if (collide)
			names_encode(rest, seglen, NAME_FILE, name);
		err = add_ent(m, d, name, FS_FILE, k->p, k->n);
	}
	if (!err) {
		if (!r->more || r->n_kvs == 0) {
			d->done = 1;
		} else {
			ef_buf *last = &r->kvs[r->n_kvs - 1].key;
			if (skip && starts_with(last, skip, skiplen)) {
				ef_buf e = ef_prefix_end(a, (ef_buf){skip, skiplen});
				err = set_next(d, e.p, e.n, 0);
			} else {
				err = set_next(d, last->p, last->n, 1);
			}
		}
	}
	ef_arena_free(a);
	return err;
}

int dir_read(struct fs_mount *m, fuse_req_t req, struct fs_dirh *d, size_t size, off_t off)
{
	char *buf = malloc(size ? size : 1);
	if (!buf)
		return ENOMEM;
	size_t pos = 0;
	int err = 0;
	pthread_mutex_lock(&d->mu);
	for (off_t i = off;; i++) {
		struct stat st = {0};
		const char *name;
		if (i < 2) {
			name = i == 0 ? "." : "..";
			st.st_ino = d->ino;
			st.st_mode = S_IFDIR;
		} else {
			size_t e = (size_t)(i - 2);
			while (e >= d->n && !d->done && !err)
				err = fetch_page(m, d);
			if (err || e >= d->n)
				break;
			name = d->ents[e].name;
			st.st_ino = d->ents[e].ino;
			st.st_mode = d->ents[e].type == FS_DIR ? S_IFDIR : S_IFREG;
		}
		size_t need = fuse_add_direntry(req, buf + pos, size - pos, name, &st, i + 1);
		if (need > size - pos)
			break;
		pos += need;
	}
	pthread_mutex_unlock(&d->mu);
	if (err && pos == 0) {
		free(buf);
		return err;
	}
	fuse_reply_buf(req, buf, pos);
	free(buf);
	return 0;
}
