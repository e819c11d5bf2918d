/*
 * ops_int.h - what the files of fs/ops/ share: the FUSE handlers of the
 * mount, cut by concern (lookup.c names, entries and attributes; file.c
 * open files and their one commit; namespace.c create, remove and rename;
 * xattr.c the user.etcfs.* attributes; table.c the fuse_lowlevel_ops table
 * and the handlers that only forward).  The module's whole public contract
 * is `fs_ops` in ../etcfs.h.
 *
 * Shape (as libfuse's passthrough_ll): each operation's work is a function
 * returning 0 or an errno (`do_*`), and a thin `op_*` wrapper replies exactly
 * once.  Cluster errors (EF_E_*) become errnos only through ef_errno().
 */
#ifndef EF_FS_OPS_INT_H
#define EF_FS_OPS_INT_H

#include "../etcfs.h"

#define ATTR_TIMEOUT 0.0  /* sizes change remotely: the kernel asks, we answer from cache */
#define ENTRY_TIMEOUT 1.0 /* remote creates/deletes invalidate names explicitly */
/* consistency=cached: attributes are those of the watch, and every remote
 * change is replayed through the mount and invalidated (reflect.c), so the
 * kernel may keep them; an open that hands out another revision than the
 * kernel's invalidates them itself (file.c, do_open). */
#define CACHED_ATTR_TIMEOUT 10.0
/* A directory's attributes are the mount's (mode, owner, nlink 2, size 0):
 * only its marker's time changes.  Kept by the kernel, or with
 * default_permissions every path walk asks for each directory's again. */
#define DIR_ATTR_TIMEOUT 1.0

static inline struct fs_mount *M(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* Every errno reply goes through here so errors are counted by class. */
static inline void reply_err(fuse_req_t req, int err)
{
	if (err)
		fsmetrics_error(M(req), err);
	fuse_reply_err(req, err);
}

/* Reads may be served by any member (consistency other than linearizable). */
static inline int serial(struct fs_mount *m)
{
	return m->o.consistency != FS_LINEARIZABLE;
}

/* The cluster could not be reached: -o cache_fallback may answer instead. */
static inline int is_io_error(int rv)
{
	return rv == EF_E_UNAVAILABLE || rv == EF_E_TIMEOUT || rv == EF_E_OUTCOME_UNKNOWN ||
	       rv == EF_E_NO_LEADER || rv == EF_E_STOPPING;
}

/* The key(s) a name in directory `parent` stands for. */
struct target {
	int kind;    /* enum fs_name_kind */
	uint8_t *fk; /* file key */
	uint32_t fklen;
	uint8_t *dk; /* directory prefix: fk + "/" (NAME_CHUNK: fk itself) */
	uint32_t dklen;
	uint8_t *seg;
	uint32_t slen;
};

/* ---- lookup.c: names, entries and attributes ---- */
/* Copy an inode's key (and type, when not NULL) out under the lock: 0,
 * ESTALE or ENOMEM; *key is malloc'ed. */
int ops_inode_key(struct fs_mount *m, fuse_ino_t ino, uint8_t **key, uint32_t *klen, int *type);
/* Decode name in directory parent into t (ops_target_free it after a 0). */
int ops_target_make(struct fs_mount *m, fuse_ino_t parent, const char *name, struct target *t);
void ops_target_free(struct target *t);
/* How long the kernel may keep the attributes of in; m->mu held. */
double ops_attr_timeout(struct fs_mount *m, struct fs_inode *in);
/* Fill e for in and count the kernel's new reference; m->mu held. */
void ops_fill_entry(struct fs_mount *m, struct fs_inode *in, struct fuse_entry_param *e);
/* Keep v as in's cached value when reads may be served from it; m->mu held. */
void ops_cache_value(struct fs_mount *m, struct fs_inode *in, const struct kv_val *v);
/* The reflector's view of (type, key): 1 when the key is in it; m->mu held. */
int ops_view_find(struct fs_mount *m, int type, const uint8_t *k, uint32_t n, int *exists,
		  ef_kv *kv, uint64_t *size);
/* Re-read the key of file ino into its inode.  0 or an errno. */
int ops_refresh_file(struct fs_mount *m, fuse_ino_t ino);
/* This mount wrote kv (a value of size bytes) to the key of ino: record it. */
void ops_note_kv(struct fs_mount *m, fuse_ino_t ino, const ef_kv *kv, uint64_t size);
/* kv_update of the key of ino with (fn, arg), then ops_note_kv of the
 * result.  max_size: the largest value fn may write, checked against the
 * key's FS_VALUE_MAX before the cluster is asked (EFBIG); 0 when fn keeps
 * the value.  0 or an errno. */
int ops_inode_update(struct fs_mount *m, fuse_ino_t ino, uint64_t max_size, kv_update_fn fn,
		     void *arg);
/* A directory this mount emptied stays reachable by name until rmdir:
 * ops_linger_mark after removing a name from parent, ops_linger_clear when
 * t's directory itself was removed (lookup.c, lookup_lingering). */
void ops_linger_mark(struct fs_mount *m, fuse_ino_t parent);
void ops_linger_clear(struct fs_mount *m, struct target *t);

void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name);
void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup);
void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *f);
void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);

/* ---- file.c: open files, their commit, setattr ---- */
/* A handle on in (m->mu held: in->gen is read); NULL on ENOMEM. */
struct fs_handle *ops_handle_new(struct fs_inode *in);
void ops_handle_free(struct fs_handle *h);
/* The handle holds data to commit / no longer does (counted in in->ndirty).
 * h->mu held. */
void ops_mark_dirty(struct fs_mount *m, struct fs_handle *h);
void ops_clear_dirty(struct fs_mount *m, struct fs_handle *h);
/* Write the handle's buffer back as one put.  h->mu held.  Returns an errno. */
int ops_commit(struct fs_mount *m, struct fs_handle *h);

void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi);
void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
	      struct fuse_file_info *fi);
void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi);
void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		struct fuse_file_info *fi);

/* ---- namespace.c: create, mknod, mkdir, unlink, rmdir, rename ---- */
void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
	       struct fuse_file_info *fi);
void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev);
void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode);
void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name);
void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name);
void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
	       const char *newname, unsigned int flags);

/* ---- xattr.c: user.etcfs.* ---- */
void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size);
void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size);
void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size,
		 int flags);
void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name);

#endif
