/*
 * inode.c - the mount's inode table.
 *
 * Every file or directory the mount has named to the kernel (lookup,
 * create, readdir) has one `struct fs_inode`, found by number (byino[]) or by
 * (type, key) through a hash table.  Entries are never freed while the mount
 * lives: that is what keeps a key's inode number stable across updates, so a
 * file bind-mounted into a container keeps seeing new values.  The lookup
 * count is still kept exactly (forget), and an inode the kernel has
 * forgotten drops its cached value.  All functions here run with m->mu held.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "etcfs.h"

static uint64_t hash_key(int type, const uint8_t *k, uint32_t n)
{
	uint64_t h = 1469598103934665603ull ^ (uint64_t)type;
	for (uint32_t i = 0; i < n; i++) {
		h ^= k[i];
		h *= 1099511628211ull;
	}
	return h;
}

static int grow_hash(struct fs_mount *m)
{
	size_t ncap = m->hcap ? m->hcap * 2 : 1024;
	struct fs_inode **nh = calloc(ncap, sizeof *nh);
	if (!nh)
		return ENOMEM;
	for (size_t i = 0; i < m->hcap; i++) {
		struct fs_inode *in = m->hash[i], *next;
		for (; in; in = next) {
			next = in->hnext;
			size_t b = hash_key(in->type, in->key, in->klen) & (ncap - 1);
			in->hnext = nh[b];
			nh[b] = in;
		}
	}
	free(m->hash);
	m->hash = nh;
	m->hcap = ncap;
	return 0;
}

static void hash_insert(struct fs_mount *m, struct fs_inode *in)
{
	size_t b = hash_key(in->type, in->key, in->klen) & (m->hcap - 1);
	in->hnext = m->hash[b];
	m->hash[b] = in;
	in->hashed = 1;
	m->hcount++;
}

static void hash_remove(struct fs_mount *m, struct fs_inode *in)
{
	if (!in->hashed)
		return;
	size_t b = hash_key(in->type, in->key, in->klen) & (m->hcap - 1);
	for (struct fs_inode **pp = &m->hash[b]; *pp; pp = &(*pp)->hnext)
		if (*pp == in) {
			*pp = in->hnext;
			break;
		}
	in->hashed = 0;
	in->hnext = NULL;
	m->hcount--;
}

struct fs_inode *inode_find(struct fs_mount *m, int type, const uint8_t *key, uint32_t klen)
{
	if (!m->hcap)
		return NULL;
	size_t b = hash_key(type, key, klen) & (m->hcap - 1);
	for (struct fs_inode *in = m->hash[b]; in; in = in->hnext)
		if (in->type == type && in->klen == klen && memcmp(in->key, key, klen) == 0)
			return in;
	return NULL;
}

struct fs_inode *inode_get(struct fs_mount *m, int type, const uint8_t *key, uint32_t klen)
{
	struct fs_inode *in = inode_find(m, type, key, klen);
	if (in)
		return in;
	if (m->hcount * 2 >= m->hcap && grow_hash(m))
		return NULL;
	if (m->nino + 1 >= m->capino) {
		uint64_t ncap = m->capino ? m->capino * 2 : 1024;
		struct fs_inode **nb = realloc(m->byino, ncap * sizeof *nb);
		if (!nb)
			return NULL;
		memset(nb + m->capino, 0, (ncap - m->capino) * sizeof *nb);
		m->byino = nb;
		m->capino = ncap;
	}
	in = calloc(1, sizeof *in);
	if (!in)
		return NULL;
	in->key = malloc(klen ? klen : 1);
	if (!in->key) {
		free(in);
		return NULL;
	}
	fs_memcpy(in->key, key, klen);
	in->klen = klen;
	in->type = (uint8_t)type;
	in->ino = ++m->nino;
	m->byino[in->ino] = in;
	hash_insert(m, in);
	return in;
}

struct fs_inode *inode_by_ino(struct fs_mount *m, uint64_t ino)
{
	if (ino == 0 || ino > m->nino)
		return NULL;
	return m->byino[ino];
}

int inode_table_init(struct fs_mount *m)
{
	if (grow_hash(m))
		return ENOMEM;
	struct fs_inode *root = inode_get(m, FS_DIR, m->prefix, m->plen);
	return root && root->ino == FUSE_ROOT_ID ? 0 : ENOMEM;
}

void inode_table_free(struct fs_mount *m)
{
	for (uint64_t i = 1; i <= m->nino; i++) {
		struct fs_inode *in = m->byino[i];
		if (!in)
			continue;
		free(in->key);
		free(in->cval);
		free(in->ldata);
		free(in);
	}
	free(m->byino);
	free(m->hash);
	m->byino = NULL;
	m->hash = NULL;
	m->nino = m->capino = 0;
	m->hcap = m->hcount = 0;
}

int inode_rekey(struct fs_mount *m, struct fs_inode *in, const uint8_t *key, uint32_t klen)
{
	uint8_t *nk = malloc(klen ? klen : 1);
	if (!nk)
		return ENOMEM;
	fs_memcpy(nk, key, klen);
	struct fs_inode *old = inode_find(m, in->type, key, klen);
	if (old && old != in) {
		hash_remove(m, old);
		old->known = 1;
		old->exists = 0;
		old->gen++;
	}
	hash_remove(m, in);
	free(in->key);
	in->key = nk;
	in->klen = klen;
	hash_insert(m, in);
	return 0;
}

int inode_rekey_prefix(struct fs_mount *m, const uint8_t *from, uint32_t flen, const uint8_t *to,
		       uint32_t tlen)
{
	for (uint64_t i = 2; i <= m->nino; i++) {
		struct fs_inode *in = m->byino[i];
		if (!in || !in->hashed || in->klen < flen || memcmp(in->key, from, flen) != 0)
			continue;
		uint32_t nl = tlen + (in->klen - flen);
		uint8_t *nk = malloc(nl ? nl : 1);
		if (!nk)
			return ENOMEM;
		fs_memcpy(nk, to, tlen);
		fs_memcpy(nk + tlen, in->key + flen, in->klen - flen);
		int rv = inode_rekey(m, in, nk, nl);
		free(nk);
		if (rv)
			return rv;
	}
	return 0;
}

void inode_set_kv(struct fs_inode *in, const ef_kv *kv, uint64_t size)
{
	int same_rev = in->known && in->exists && kv->mod_revision == in->mod_rev;
	in->known = 1;
	in->exists = 1;
	if (kv->mod_revision != in->mod_rev) {
		free(in->cval);
		in->cval = NULL;
		in->cval_rev = 0;
	}
	in->mod_rev = kv->mod_revision;
	in->create_rev = kv->create_revision;
	in->version = kv->version;
	in->lease = kv->lease;
	/* A revision's mtime, once reported, never changes: a commit from this
	 * mount stamps its own clock (the put reply carries no time), and the
	 * watch event of the same revision later brings the leader's.  Taking
	 * that one would move mtime under an editor that just read the file
	 * (vim: "The file has been changed since reading it", and `ex -s`
	 * silently does not write). */
	if (!(same_rev && in->mod_time_ns))
		in->mod_time_ns = kv->mod_time_ns;
	in->size = size;
}

void inode_set_absent(struct fs_inode *in)
{
	in->known = 1;
	in->exists = 0;
	free(in->cval);
	in->cval = NULL;
	in->cval_rev = 0;
	in->size = 0;
}

static void ns_to_ts(int64_t ns, struct timespec *ts)
{
	ts->tv_sec = ns / 1000000000;
	ts->tv_nsec = ns % 1000000000;
}

void inode_stat(struct fs_mount *m, struct fs_inode *in, struct stat *st)
{
	memset(st, 0, sizeof *st);
	st->st_ino = in->ino;
	st->st_uid = m->uid;
	st->st_gid = m->gid;
	st->st_blksize = 4096;
	int64_t t = m->mount_time_ns;
	if (in->type == FS_DIR) {
		st->st_mode = S_IFDIR | (0777 & ~m->o.umask);
		st->st_nlink = 2;
		st->st_size = 0;
		if (in->known && in->exists && in->mod_time_ns)
			t = in->mod_time_ns; /* explicit directory marker */
	} else {
		st->st_mode = S_IFREG | (0666 & ~m->o.umask);
		st->st_nlink = in->local || (in->known && in->exists) ? 1 : 0;
		st->st_size = (off_t)(in->local == FS_TEMP           ? in->llen
				      : in->npc > 0 && in->cache_rev ? in->cache_size
								     : in->size);
		if (in->local)
			t = in->ltime_ns;
		else if (in->mod_time_ns)
			t = in->mod_time_ns;
	}
	if (m->o.ro)
		st->st_mode &= ~(mode_t)0222;
	st->st_blocks = (st->st_size + 511) / 512;
	ns_to_ts(t, &st->st_mtim);
	ns_to_ts(t, &st->st_ctim);
	ns_to_ts(t, &st->st_atim);
}
