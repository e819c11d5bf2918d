/*
 * xattr.c - the user.etcfs.* extended attributes: a key's revisions,
 * version and lease read as attributes, user.etcfs.lease / .ttl attach a
 * lease (a read-modify-write of the key: kv_update, kv.c), user.etcfs.occ
 * turns on optimistic concurrency for the file's commits.  The root has
 * user.etcfs.cluster_revision.  Other names are refused with ENOTSUP, so
 * tools that copy attributes (cp -a, rsync -X) carry on without them.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../cache.h"
#include "ops_int.h"

/* ------------------------------------------------------------------ */
/* extended attributes                                                  */

/* What listxattr names must be exactly what getxattr returns a value for
 * (getfattr -d prints an error for every other name): user.etcfs.ttl only
 * while a lease is attached, nothing for a file that lives only here. */
static const char file_xattrs[] = "user.etcfs.revision\0user.etcfs.create_revision\0"
				  "user.etcfs.version\0user.etcfs.lease\0user.etcfs.occ\0";
static const char ttl_xattr[] = "user.etcfs.ttl\0";
static const char stale_xattr[] = "user.etcfs.stale\0"; /* served from -o cache_dir */
static const char root_xattrs[] = "user.etcfs.cluster_revision\0";

static void reply_xattr_value(fuse_req_t req, const char *v, size_t size)
{
	size_t n = strlen(v);
	if (size == 0)
		fuse_reply_xattr(req, n);
	else if (size < n)
		reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, v, n);
}

/* The attribute names of ino into out (sizeof file_xattrs + sizeof
 * ttl_xattr + sizeof stale_xattr bytes); returns their length or -errno. */
static long xattr_names(struct fs_mount *m, fuse_ino_t ino, char *out)
{
	if (ino == FUSE_ROOT_ID) {
		memcpy(out, root_xattrs, sizeof root_xattrs - 1);
		return sizeof root_xattrs - 1;
	}
	pthread_mutex_lock(&m->mu);
	struct fs_inode *in = inode_by_ino(m, ino);
	int type = in ? in->type : 0, local = in ? in->local : 0;
	int fetch = in && (!in->known || !m->watch_ok);
	pthread_mutex_unlock(&m->mu);
	if (type != FS_FILE || local)
		return 0;
	if (fetch) {
		int err = ops_refresh_file(m, ino);
		if (err)
			return -err;
	}
	pthread_mutex_lock(&m->mu);
	int exists = in->exists, lease = in->lease != 0;
	pthread_mutex_unlock(&m->mu);
	if (!exists)
		return -ENOENT;
	size_t n = sizeof file_xattrs - 1;
	memcpy(out, file_xattrs, n);
	if (lease) {
		memcpy(out + n, ttl_xattr, sizeof ttl_xattr - 1);
		n += sizeof ttl_xattr - 1;
	}
	if (cache_age(m, ino) >= 0) {
		memcpy(out + n, stale_xattr, sizeof stale_xattr - 1);
		n += sizeof stale_xattr - 1;
	}
	return (long)n;
}

void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct fs_mount *m = M(req);
	CTR_INC(m, ops[OP_LISTXATTR]);
	char l[sizeof file_xattrs + sizeof ttl_xattr + sizeof stale_xattr];
	long n = xattr_names(m, ino, l);
	if (n < 0)
		reply_err(req, (int)-n);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)n);
	else if (size < (size_t)n)
		reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, l, (size_t)n);
}

static int cluster_revision(struct fs_mount *m, int64_t *rev)
{
	ef_arena *a = ef_arena_new();
	if (!a)
		return EF_E_NOMEM;
	ef_msg req = {.type = EF_MSG_RANGE}, resp;
	/* any one key will do: only the header's revision is used (the empty
	 * prefix of a mount without --prefix is no key: ask for "\0") */
	static const uint8_t zero[1] = {0};
	req.u.range.key = m->plen ? (ef_buf){m->prefix, m->plen} : (ef_buf){zero, 1};
	req.u.range.count_only = 1;
	req.u.range.serializable = (uint8_t)serial(m);
	int rv = fs_call(m, &req, &resp, a);
	if (rv == 0)
		*rev = resp.hdr.revision;
	ef_arena_free(a);
	return rv;
}

static int lease_ttl(struct fs_mount *m, int64_t id, int64_t *ttl)
{
	ef_arena *a = ef_arena_new();
	if (!a)
		return EF_E_NOMEM;
	ef_msg req = {.type = EF_MSG_LEASE_TTL}, resp;
	req.u.lease.id = id;
	int rv = fs_call(m, &req, &resp, a);
	if (rv == 0)
		*ttl = resp.u.lease_resp.ttl;
	ef_arena_free(a);
	return rv;
}

void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct fs_mount *m = M(req);
	CTR_INC(m, ops[OP_GETXATTR]);
	char v[64];
	if (strncmp(name, "user.etcfs.", 11) != 0) {
		reply_err(req, ENODATA);
		return;
	}
	const char *a = name + 11;
	if (ino == FUSE_ROOT_ID && strcmp(a, "cluster_revision") == 0) {
		int64_t rev = 0;
		int rv = cluster_revision(m, &rev);
		if (rv) {
			reply_err(req, ef_errno(rv));
			return;
		}
		snprintf(v, sizeof v, "%" PRId64, rev);
		reply_xattr_value(req, v, size);
		return;
	}
	pthread_mutex_lock(&m->mu);
	struct fs_inode *in = inode_by_ino(m, ino);
	int type = in ? in->type : 0, local = in ? in->local : 0;
	pthread_mutex_unlock(&m->mu);
	if (type != FS_FILE || local) {
		reply_err(req, ENODATA);
		return;
	}
	if (strcmp(a, "stale") == 0) { /* -o cache_dir: absent while fresh */
		int err = ops_refresh_file(m, ino);
		int64_t age = err ? -1 : cache_age(m, ino);
		if (err || age < 0)
			reply_err(req, err ? err : ENODATA);
		else
			reply_xattr_value(req, (snprintf(v, sizeof v, "%" PRId64, age), v), size);
		return;
	}
	if (strcmp(a, "occ") != 0) {
		int err = ops_refresh_file(m, ino);
		if (err) {
			reply_err(req, err);
			return;
		}
	}
	pthread_mutex_lock(&m->mu);
	int64_t val = 0;
	int ok = in->exists, is_ttl = 0;
	if (strcmp(a, "revision") == 0)
		val = in->mod_rev;
	else if (strcmp(a, "create_revision") == 0)
		val = in->create_rev;
	else if (strcmp(a, "version") == 0)
		val = in->version;
	else if (strcmp(a, "lease") == 0)
		val = in->lease;
	else if (strcmp(a, "ttl") == 0)
		val = in->lease, is_ttl = 1;
	else if (strcmp(a, "occ") == 0)
		val = in->occ, ok = 1;
	else
		ok = -1;
	pthread_mutex_unlock(&m->mu);
	if (ok <= 0) {
		reply_err(req, ok < 0 ? ENODATA : ENOENT);
		return;
	}
	if (is_ttl) {
		if (!val) {
			reply_err(req, ENODATA); /* no lease: no TTL */
			return;
		}
		int64_t ttl = 0;
		int rv = lease_ttl(m, val, &ttl);
		if (rv) {
			reply_err(req, ef_errno(rv));
			return;
		}
		val = ttl;
	}
	if (strcmp(a, "lease") == 0)
		snprintf(v, sizeof v, "%" PRIx64, (uint64_t)val);
	else
		snprintf(v, sizeof v, "%" PRId64, val);
	reply_xattr_value(req, v, size);
}

/* kv_update callback of attach_lease: the value kept, the lease
 * *(int64_t *)arg. */
static int lease_value(const struct kv_val *cur, struct kv_change *out, void *arg)
{
	if (!cur->exists)
		return ENOENT;
	out->lease = *(const int64_t *)arg;
	return 0;
}

/* Attach lease id (0 detaches) to the key of ino, keeping its value. */
static int attach_lease(struct fs_mount *m, fuse_ino_t ino, int64_t id)
{
	return ops_inode_update(m, ino, 0, lease_value, &id);
}

static int parse_i64(const char *v, size_t n, int hex_ok, int64_t *out)
{
	char buf[32];
	if (n == 0 || n >= sizeof buf)
		return EINVAL;
	fs_memcpy(buf, v, n);
	buf[n] = 0;
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = 0;
	char *end;
	int all_digits = 1;
	for (size_t i = 0; i < n; i++)
		if (buf[i] < '0' || buf[i] > '9')
			all_digits = 0;
	errno = 0;
	if (all_digits)
		*out = strtoll(buf, &end, 10);
	else if (hex_ok)
		*out = (int64_t)strtoull(buf, &end, 16); /* etcdctl prints lease IDs in hex */
	else
		return EINVAL;
	return errno || *end || end == buf ? EINVAL : 0;
}

static int do_setxattr(struct fs_mount *m, fuse_req_t req, fuse_ino_t ino, const char *name,
		       const char *value, size_t size)
{
	if (strncmp(name, "user.etcfs.", 11) != 0)
		return ENOTSUP; /* other names are not stored: see etcfs(1) */
	const char *a = name + 11;
	pthread_mutex_lock(&m->mu);
	struct fs_inode *in = inode_by_ino(m, ino);
	int type = in ? in->type : 0, local = in ? in->local : 0;
	pthread_mutex_unlock(&m->mu);
	if (type != FS_FILE)
		return ENOTSUP;
	int64_t v;
	int err = parse_i64(value, size, strcmp(a, "lease") == 0, &v);
	if (err)
		return err;
	if (strcmp(a, "occ") == 0) {
		pthread_mutex_lock(&m->mu);
		in->occ = v != 0;
		pthread_mutex_unlock(&m->mu);
		return 0;
	}
	if (local)
		return EAGAIN; /* not in the cluster yet: close it first */
	if (m->o.ro)
		return EROFS;
	if (strcmp(a, "lease") == 0) {
		int64_t ttl = 0;
		int rv = v ? lease_ttl(m, v, &ttl) : 0;
		if (rv == EF_E_LEASE_NOT_FOUND || (rv == 0 && v && ttl < 0)) {
			/* an argument that names nothing: EINVAL (ENOENT would say
			 * the file is missing), and say which lease */
			char *path = NULL;
			pthread_mutex_lock(&m->mu);
			in = inode_by_ino(m, ino);
			if (in)
				path = names_key_to_path(m, in->key, in->klen);
			pthread_mutex_unlock(&m->mu);
			fprintf(stderr,
				"etcfs: setxattr user.etcfs.lease on %s: lease %" PRIx64
				" (%" PRId64 ") does not exist\n",
				path ? path : "?", (uint64_t)v, v);
			free(path);
			return EINVAL;
		}
		if (rv)
			return ef_errno(rv);
		return attach_lease(m, ino, v);
	}
	if (strcmp(a, "ttl") == 0) {
		if (v <= 0)
			return EINVAL;
		ef_arena *ar = ef_arena_new();
		if (!ar)
			return ENOMEM;
		ef_msg rq = {.type = EF_MSG_LEASE_GRANT}, resp;
		rq.u.lease.ttl = v;
		int rv = fs_call(m, &rq, &resp, ar);
		int64_t id = rv == 0 ? resp.u.lease_resp.id : 0;
		ef_arena_free(ar);
		if (rv)
			return ef_errno(rv);
		return attach_lease(m, ino, id);
	}
	/* revision, version...: read-only.  ENOTSUP, as for names etcfs does
	 * not know, so cp -a, mv between filesystems and rsync -X copy a
	 * file's attributes without an error per file. */
	return ENOTSUP;
}

void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size,
		 int flags)
{
	CTR_INC(M(req), ops[OP_SETXATTR]);
	reply_err(req, do_setxattr(M(req), req, ino, name, value, size));
}

void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct fs_mount *m = M(req);
	CTR_INC(m, ops[OP_REMOVEXATTR]);
	if (strcmp(name, "user.etcfs.lease") == 0 || strcmp(name, "user.etcfs.ttl") == 0)
		reply_err(req, m->o.ro ? EROFS : attach_lease(m, ino, 0));
	else if (strncmp(name, "user.", 5) == 0)
		reply_err(req, ENODATA);
	else
		reply_err(req, ENOTSUP);
}
