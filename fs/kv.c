/*
 * kv.c - the mount's few cluster operations, over efc_call.
 *
 * Besides building requests, this file tracks the mount's own writes: every
 * write is bracketed by kv_own_begin/kv_own_end, and the revision it
 * committed is remembered, so the reflector can tell a watch event caused by
 * this mount (already seen by local inotify watchers through the syscall
 * that made it) from a remote one (to be replayed).  A watch event may
 * arrive before the write's reply: the reflector waits for the writes that
 * were in flight when the event arrived before deciding (reflect.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "etcfs.h"

/* The smallest key: where a range over the whole keyspace starts. */
static const uint8_t key_zero[1] = {0};

/* Reads are the requests -o cache_dir answers when the cluster cannot
 * (cache/): while the mount is offline they are not sent at all. */
int fs_call(struct fs_mount *m, const ef_msg *req, ef_msg *resp, ef_arena *a)
{
	int rd = req->type == EF_MSG_RANGE;
	if (rd && cache_skip_read(m))
		return EF_E_UNAVAILABLE;
	CTR_INC(m, requests);
	ef_msg r;
	if (rd && req->u.range.key.n == 0 && req->u.range.range_end.n) {
		/* A mount without --prefix: the root's prefix is the empty key,
		 * which the cluster refuses as a range start (EF_E_EMPTY_KEY,
		 * EINVAL: ls of the root failed).  Every key is at least "\0". */
		r = *req;
		r.u.range.key = (ef_buf){key_zero, 1};
		req = &r;
	}
	int rv = efc_call(m->c, req, resp, a);
	if (rd || rv == 0)
		cache_result(m, rv);
	return rv;
}

int kv_get(struct fs_mount *m, const uint8_t *key, uint32_t klen, int serializable,
	   struct kv_val *out)
{
	memset(out, 0, sizeof *out);
	if (cache_skip_read(m))
		return EF_E_UNAVAILABLE;
	CTR_INC(m, requests);
	int rv = efc_get(m->c, key, klen, serializable, &out->val, &out->vlen, &out->kv);
	cache_result(m, rv == EF_E_NOT_FOUND ? 0 : rv);
	if (rv == EF_E_NOT_FOUND)
		return 0;
	if (rv)
		return rv;
	out->exists = 1;
	return 0;
}

int kv_lookup(struct fs_mount *m, const uint8_t *fk, uint32_t fklen, const uint8_t *dk,
	      uint32_t dklen, int serializable, int *dir, struct kv_val *file)
{
	memset(file, 0, sizeof *file);
	*dir = -1;
	ef_arena *a = ef_arena_new();
	if (!a)
		return EF_E_NOMEM;
	ef_msg req = {.type = EF_MSG_RANGE}, resp;
	req.u.range.key = (ef_buf){fk, fklen};
	req.u.range.range_end = ef_prefix_end(a, (ef_buf){dk, dklen});
	req.u.range.limit = 1;
	req.u.range.serializable = (uint8_t)serializable;
	int rv = fs_call(m, &req, &resp, a);
	if (rv) {
		ef_arena_free(a);
		return rv;
	}
	ef_range_resp *r = &resp.u.range_resp;
	if (r->n_kvs == 0) {
		*dir = 0;
	} else {
		ef_kv *kv = &r->kvs[0];
		if (kv->key.n == fklen && memcmp(kv->key.p, fk, fklen) == 0) {
			file->val = malloc(kv->value.n ? kv->value.n : 1);
			if (!file->val) {
				ef_arena_free(a);
				return EF_E_NOMEM;
			}
			fs_memcpy(file->val, kv->value.p, kv->value.n);
			file->vlen = kv->value.n;
			file->kv = *kv;
			file->kv.key = file->kv.value = (ef_buf){NULL, 0};
			file->exists = 1;
			if (!r->more)
				*dir = 0; /* nothing after the file: no directory */
		} else if (kv->key.n >= dklen && memcmp(kv->key.p, dk, dklen) == 0) {
			*dir = 1;
		} else if (!r->more) {
			*dir = 0; /* a longer name ("a.txt" for "a"), and nothing after it */
		}
	}
	ef_arena_free(a);
	return 0;
}


static int prefix_range(struct fs_mount *m, const uint8_t *pfx, uint32_t plen, int serializable,
			int64_t rev, int count_only, ef_arena *a, ef_msg *resp)
{
	ef_msg req = {.type = EF_MSG_RANGE};
	req.u.range.key = (ef_buf){pfx, plen};
	req.u.range.range_end = ef_prefix_end(a, (ef_buf){pfx, plen});
	req.u.range.keys_only = 1;
	req.u.range.count_only = (uint8_t)count_only;
	req.u.range.limit = count_only ? 0 : 3;
	req.u.range.serializable = (uint8_t)serializable;
	req.u.range.revision = rev;
	int rv = fs_call(m, &req, resp, a);
	if (rv == EF_E_COMPACTED && rev) {
		req.u.range.revision = 0;
		rv = fs_call(m, &req, resp, a);
	}
	return rv;
}

static int nonempty_impl(struct fs_mount *m, const uint8_t *pfx, uint32_t plen, int serializable,
			 int64_t rev, const uint8_t *skip, uint32_t skiplen, int *nonempty)
{
	ef_arena *a = ef_arena_new();
	if (!a)
		return EF_E_NOMEM;
	ef_msg resp;
	int rv = prefix_range(m, pfx, plen, serializable, rev, 0, a, &resp);
	*nonempty = 0;
	if (rv == 0)
		for (uint32_t i = 0; i < resp.u.range_resp.n_kvs; i++) {
			ef_kv *kv = &resp.u.range_resp.kvs[i];
			if (skip && kv->key.n == skiplen && memcmp(kv->key.p, skip, skiplen) == 0)
				continue;
			*nonempty = 1;
		}
	ef_arena_free(a);
	return rv;
}

int kv_prefix_nonempty(struct fs_mount *m, const uint8_t *pfx, uint32_t plen, int serializable,
		       const uint8_t *skip, uint32_t skiplen, int *nonempty)
{
	return nonempty_impl(m, pfx, plen, serializable, 0, skip, skiplen, nonempty);
}

/* Historical reads are linearizable: the member must have applied rev. */
int kv_prefix_nonempty_at(struct fs_mount *m, const uint8_t *pfx, uint32_t plen, int64_t rev,
			  const uint8_t *skip, uint32_t skiplen, int *nonempty)
{
	return nonempty_impl(m, pfx, plen, 0, rev, skip, skiplen, nonempty);
}

int kv_prefix_count_at(struct fs_mount *m, const uint8_t *pfx, uint32_t plen, int64_t rev,
		       int64_t *count)
{
	ef_arena *a = ef_arena_new();
	if (!a)
		return EF_E_NOMEM;
	ef_msg resp;
	int rv = prefix_range(m, pfx, plen, 0, rev, 1, a, &resp);
	if (rv == 0)
		*count = resp.u.range_resp.count;
	ef_arena_free(a);
	return rv;
}

int kv_prefix_count(struct fs_mount *m, const uint8_t *pfx, uint32_t plen, int64_t *count)
{
	return kv_prefix_count_at(m, pfx, plen, 0, count);
}

uint64_t kv_own_begin(struct fs_mount *m)
{
	pthread_mutex_lock(&m->mu);
	uint64_t seq = ++m->wseq_started;
	if (m->n_inflight == m->cap_inflight) {
		size_t nc = m->cap_inflight ? m->cap_inflight * 2 : 64;
		uint64_t *n = realloc(m->inflight, nc * sizeof *n);
		if (n) {
			m->inflight = n;
			m->cap_inflight = nc;
		}
	}
	if (m->n_inflight < m->cap_inflight)
		m->inflight[m->n_inflight++] = seq;
	pthread_mutex_unlock(&m->mu);
	return seq;
}

void kv_own_end(struct fs_mount *m, uint64_t seq, int64_t rev)
{
	pthread_mutex_lock(&m->mu);
	for (size_t i = 0; i < m->n_inflight; i++)
		if (m->inflight[i] == seq) {
			m->inflight[i] = m->inflight[--m->n_inflight];
			break;
		}
	if (rev > 0) {
		m->own_revs[m->own_pos % 1024] = rev;
		m->own_pos++;
	}
	pthread_cond_broadcast(&m->own_cv);
	pthread_mutex_unlock(&m->mu);
}

int kv_is_own(struct fs_mount *m, int64_t rev)
{
	/* m->mu held */
	for (unsigned i = 0; i < 1024; i++)
		if (m->own_revs[i] == rev)
			return 1;
	return 0;
}

/* Did this response change the store? (Then its header revision is ours.) */
static int changed(const ef_msg *resp)
{
	switch (resp->type) {
	case EF_MSG_PUT_RESP:
		return 1;
	case EF_MSG_DELETE_RESP:
		return resp->u.del_resp.deleted > 0;
	case EF_MSG_TXN_RESP:
		return 1; /* a failed txn changes nothing, but its revision has no event of ours
			     either; see kv_write */
	default:
		return 0;
	}
}

int kv_write(struct fs_mount *m, const ef_msg *req, ef_msg *resp, ef_arena *a)
{
	uint64_t seq = kv_own_begin(m);
	int rv = fs_call(m, req, resp, a);
	int64_t rev = 0;
	if (rv == 0 && changed(resp)) {
		if (resp->type != EF_MSG_TXN_RESP || resp->u.txn_resp.succeeded) {
			int writes = resp->type != EF_MSG_TXN_RESP;
			if (!writes)
				for (uint32_t i = 0; i < req->u.txn.n_success; i++)
					if (req->u.txn.success[i].type != EF_OP_RANGE)
						writes = 1;
			if (writes)
				rev = resp->hdr.revision;
		}
	}
	kv_own_end(m, seq, rev);
	return rv;
}

int kv_put(struct fs_mount *m, const uint8_t *key, uint32_t klen, const uint8_t *val, uint32_t vlen,
	   int64_t expect_rev, int keep_lease, int64_t lease, int64_t *rev_out)
{
	ef_arena *a = ef_arena_new();
	if (!a)
		return EF_E_NOMEM;
	ef_msg req = {0}, resp;
	ef_put_req put = {0};
	put.key = (ef_buf){key, klen};
	put.value = (ef_buf){val, vlen};
	put.lease = keep_lease ? 0 : lease;
	put.ignore_lease = (uint8_t)(keep_lease != 0);
	ef_compare cmp = {0};
	ef_op op = {.type = EF_OP_PUT};
	if (expect_rev < 0) {
		req.type = EF_MSG_PUT;
		req.u.put = put;
	} else {
		req.type = EF_MSG_TXN;
		cmp.result = EF_CMP_EQUAL;
		cmp.key = put.key;
		cmp.target = expect_rev == 0 ? EF_CMP_CREATE : EF_CMP_MOD;
		cmp.number = expect_rev;
		op.u.put = put;
		req.u.txn.cmp = &cmp;
		req.u.txn.n_cmp = 1;
		req.u.txn.success = &op;
		req.u.txn.n_success = 1;
	}
	int rv = kv_write(m, &req, &resp, a);
	if (rv == 0 && req.type == EF_MSG_TXN && !resp.u.txn_resp.succeeded)
		rv = expect_rev == 0 ? EF_E_EXISTS : EF_E_TXN_FAILED;
	if (rv == 0 && rev_out)
		*rev_out = resp.hdr.revision;
	ef_arena_free(a);
	return rv;
}

int kv_delete(struct fs_mount *m, const uint8_t *key, uint32_t klen, int64_t *deleted)
{
	ef_arena *a = ef_arena_new();
	if (!a)
		return EF_E_NOMEM;
	ef_msg req = {.type = EF_MSG_DELETE}, resp;
	req.u.del.key = (ef_buf){key, klen};
	int rv = kv_write(m, &req, &resp, a);
	if (rv == 0 && deleted)
		*deleted = resp.u.del_resp.deleted;
	ef_arena_free(a);
	return rv;
}

/* Read-modify-compare-and-swap: the one loop every read-modify-write of a
 * key goes through.  Each attempt reads the key linearizably with its
 * mod_revision, lets fn compute the new value and lease, and puts them in a
 * txn that compares the revision read (or the key's absence), so a change
 * made meanwhile by anyone is never overwritten: the attempt is redone on
 * the new value instead, up to KV_UPDATE_TRIES times. */
#define KV_UPDATE_TRIES 5

int kv_update(struct fs_mount *m, const uint8_t *key, uint32_t klen, kv_update_fn fn, void *arg,
	      ef_kv *res, uint64_t *res_size)
{
	int rv = EF_E_TXN_FAILED;
	for (int attempt = 0; attempt < KV_UPDATE_TRIES && rv == EF_E_TXN_FAILED; attempt++) {
		struct kv_val cur;
		rv = kv_get(m, key, klen, 0, &cur);
		if (rv)
			break;
		struct kv_change ch = {
			.val = cur.val, .vlen = cur.vlen, .lease = cur.exists ? cur.kv.lease : 0};
		int err = fn(&cur, &ch, arg);
		if (err) {
			free(ch.to_free);
			free(cur.val);
			return err;
		}
		int64_t rev;
		rv = kv_put(m, key, klen, ch.val, ch.vlen, cur.exists ? cur.kv.mod_revision : 0, 0,
			    ch.lease, &rev);
		if (rv == EF_E_EXISTS)
			rv = EF_E_TXN_FAILED; /* created meanwhile: read it again */
		if (rv == 0) {
			ef_kv kv = cur.kv;
			if (!cur.exists) {
				kv.create_revision = rev;
				kv.version = 0;
			}
			kv.mod_revision = rev;
			kv.version++;
			kv.lease = ch.lease;
			kv.mod_time_ns = clock_wall_ns();
			if (res)
				*res = kv;
			if (res_size)
				*res_size = ch.vlen;
		}
		free(ch.to_free);
		free(cur.val);
	}
	return rv ? ef_errno(rv) : 0;
}

/* ------------------------------------------------------------------ */
/* O_EXCL creates: a reservation instead of an empty value              */

/* A create with O_CREAT|O_EXCL must have exactly one winner across the
 * cluster, at open, yet must not publish the file before its content (cp
 * opens with O_EXCL: an empty put first was a value nobody wrote, which
 * reload scripts on other hosts loaded).  So the create reserves the name
 * under FS_EXCL_PREFIX + key, in a txn that also checks the key is absent,
 * on a lease of its own (a mount that dies frees the name after
 * FS_EXCL_TTL_S seconds); the commit at close is one txn that puts the key
 * only if it is still absent and the reservation still ours, and deletes
 * the reservation.  Reservation keys start with a NUL byte: below no
 * prefix a mount can be given but the empty one, where kv_reserved hides
 * them from listings and events. */

int kv_reserved(const uint8_t *key, uint32_t klen)
{
	return klen >= FS_EXCL_PLEN && memcmp(key, FS_EXCL_PREFIX, FS_EXCL_PLEN) == 0;
}

static int excl_key(const uint8_t *key, uint32_t klen, uint8_t **xkey, uint32_t *xklen)
{
	*xkey = malloc(FS_EXCL_PLEN + klen + 1);
	if (!*xkey)
		return EF_E_NOMEM;
	memcpy(*xkey, FS_EXCL_PREFIX, FS_EXCL_PLEN);
	fs_memcpy(*xkey + FS_EXCL_PLEN, key, klen);
	*xklen = FS_EXCL_PLEN + klen;
	return 0;
}

int kv_excl_reserve(struct fs_mount *m, const uint8_t *key, uint32_t klen, uint8_t **xkey,
		    uint32_t *xklen, uint64_t *tok)
{
	int rv = excl_key(key, klen, xkey, xklen);
	if (rv)
		return rv;
	if (getrandom(tok, sizeof *tok, 0) != sizeof *tok)
		*tok = (uint64_t)clock_wall_ns() ^ ((uint64_t)getpid() << 32);
	*tok |= 1; /* never 0: 0 means "no reservation" */
	ef_arena *a = ef_arena_new();
	if (!a) {
		rv = EF_E_NOMEM;
		goto fail;
	}
	ef_msg req = {.type = EF_MSG_LEASE_GRANT}, resp;
	req.u.lease.ttl = FS_EXCL_TTL_S;
	rv = fs_call(m, &req, &resp, a);
	int64_t lease = rv == 0 ? resp.u.lease_resp.id : 0;
	if (rv == 0) {
		ef_compare cmp[2] = {
			{.result = EF_CMP_EQUAL, .target = EF_CMP_CREATE, .key = {key, klen}},
			{.result = EF_CMP_EQUAL, .target = EF_CMP_CREATE, .key = {*xkey, *xklen}}};
		ef_op op = {.type = EF_OP_PUT};
		op.u.put.key = (ef_buf){*xkey, *xklen};
		op.u.put.value = (ef_buf){(const uint8_t *)tok, sizeof *tok};
		op.u.put.lease = lease;
		req = (ef_msg){.type = EF_MSG_TXN};
		req.u.txn.cmp = cmp;
		req.u.txn.n_cmp = 2;
		req.u.txn.success = &op;
		req.u.txn.n_success = 1;
		rv = kv_write(m, &req, &resp, a);
		if (rv == 0 && !resp.u.txn_resp.succeeded)
			rv = EF_E_EXISTS;
	}
	ef_arena_free(a);
	if (rv == 0)
		return 0;
fail:
	free(*xkey);
	*xkey = NULL;
	return rv;
}

int kv_excl_commit(struct fs_mount *m, const uint8_t *key, uint32_t klen, const uint8_t *xkey,
		   uint32_t xklen, uint64_t tok, const uint8_t *val, uint32_t vlen, int64_t lease,
		   int64_t *rev_out)
{
	ef_arena *a = ef_arena_new();
	if (!a)
		return EF_E_NOMEM;
	ef_compare cmp[2] = {{.result = EF_CMP_EQUAL, .target = EF_CMP_CREATE, .key = {key, klen}},
			     {.result = EF_CMP_EQUAL,
			      .target = EF_CMP_VALUE,
			      .key = {xkey, xklen},
			      .value = {(const uint8_t *)&tok, sizeof tok}}};
	ef_op ops[2] = {{.type = EF_OP_PUT}, {.type = EF_OP_DELETE}};
	ops[0].u.put.key = (ef_buf){key, klen};
	ops[0].u.put.value = (ef_buf){val, vlen};
	ops[0].u.put.lease = lease;
	ops[1].u.del.key = (ef_buf){xkey, xklen};
	ef_msg req = {.type = EF_MSG_TXN}, resp;
	req.u.txn.cmp = cmp;
	req.u.txn.n_cmp = 2;
	req.u.txn.success = ops;
	req.u.txn.n_success = 2;
	int rv = kv_write(m, &req, &resp, a);
	if (rv == 0 && !resp.u.txn_resp.succeeded)
		rv = EF_E_EXISTS; /* put by someone else meanwhile, or the reservation expired */
	if (rv == 0 && rev_out)
		*rev_out = resp.hdr.revision;
	ef_arena_free(a);
	return rv;
}

void kv_excl_release(struct fs_mount *m, const uint8_t *xkey, uint32_t xklen, uint64_t tok)
{
	ef_arena *a = ef_arena_new();
	if (!a)
		return;
	ef_compare cmp = {.result = EF_CMP_EQUAL,
			  .target = EF_CMP_VALUE,
			  .key = {xkey, xklen},
			  .value = {(const uint8_t *)&tok, sizeof tok}};
	ef_op op = {.type = EF_OP_DELETE};
	op.u.del.key = (ef_buf){xkey, xklen};
	ef_msg req = {.type = EF_MSG_TXN}, resp;
	req.u.txn.cmp = &cmp;
	req.u.txn.n_cmp = 1;
	req.u.txn.success = &op;
	req.u.txn.n_success = 1;
	(void)kv_write(m, &req, &resp, a); /* else the lease frees it */
	ef_arena_free(a);
}
