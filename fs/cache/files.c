/*
 * files.c - the files in DIR: naming, the record format, atomic writes,
 * DIR/state and DIR/lock, and opening DIR at mount (loading the index).
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

#include "cache_int.h"

static const char magic[8] = "ETCFSC1\n";

void cache_file_name(const uint8_t *key, uint32_t klen, char out[NAME_LEN])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	EVP_Digest(key, klen, md, &mdlen, EVP_sha256(), NULL);
	out[0] = 'k';
	for (unsigned i = 0; i < 32; i++)
		snprintf(out + 1 + 2 * i, 3, "%02x", md[i]);
	out[NAME_LEN - 1] = 0;
}

/* ------------------------------------------------------------------ */
/* files                                                                */

int cache_parse(uint8_t *b, size_t n, struct rec *r)
{
	if (n < HDR_LEN + 8 || memcmp(b, magic, 8) != 0)
		return -1;
	uint64_t sum;
	memcpy(&sum, b + n - 8, 8);
	if (cache_fnv(b, n - 8, 1469598103934665603ull) != sum)
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
uint8_t *cache_slurp(int dfd, const char *name, size_t *n)
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
int cache_write_atomic(int dfd, const char *name, const uint8_t *buf, size_t n)
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

uint8_t *cache_encode(const struct centry *e, const uint8_t *val, size_t *n)
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
	uint64_t sum = cache_fnv(b, *n - 8, 1469598103934665603ull);
	memcpy(b + *n - 8, &sum, 8);
	return b;
}

void cache_save_state(struct fs_cache *c, int64_t rev)
{
	char b[64];
	int n = snprintf(b, sizeof b, "rev %" PRId64 "\n", rev);
	if (cache_write_atomic(c->dfd, "state", (const uint8_t *)b, (size_t)n) == 0 &&
	    fsync(c->dfd) == 0)
		c->state_rev = rev;
}

static int64_t load_state(int dfd)
{
	size_t n = 0;
	uint8_t *b = cache_slurp(dfd, "state", &n);
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
		uint8_t *b = cache_slurp(dfd, de->d_name, &n);
		struct rec r;
		char want[NAME_LEN];
		if (b && cache_parse(b, n, &r) == 0)
			cache_file_name(r.key, r.klen, want);
		if (!b || cache_parse(b, n, &r) != 0 || strcmp(want, de->d_name) != 0) {
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
		struct centry *e = cache_find(c, r.key, r.klen);
		if (!e)
			e = cache_add(c, r.key, r.klen);
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
			cache_entry_free(e);
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
