/*
 * store/codec.c - the store's records and values: decoding the live and
 * hist records (layouts in store_int.h), zstd values (compressed on write
 * by write.c when that makes them smaller, decompressed here with one
 * context per thread), LMDB return codes mapped to EF_E_*, and copying a
 * record out into a caller's arena as an ef_kv or a watch event.
 *
 * A decoded struct rec points into LMDB memory: it is valid only inside
 * the transaction that read it (and in a write transaction only until the
 * next write), so everything handed to a caller goes through
 * store_value_copy / store_kv_fill, which copy into the caller's arena.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "store_int.h"

int store_live_decode(const MDB_val *v, struct rec *r)
{
	const uint8_t *p = v->mv_data;

	if (v->mv_size < LIVE_HDR)
		return EF_E_CORRUPT;
	r->type = HIST_PUT;
	r->flags = p[0];
	r->create = get_i64(p + 1);
	r->mod = get_i64(p + 9);
	r->version = get_i64(p + 17);
	r->lease = get_i64(p + 25);
	r->time_ns = get_i64(p + 33);
	r->key = NULL;
	r->key_n = 0;
	r->val = p + LIVE_HDR;
	r->val_n = (uint32_t)(v->mv_size - LIVE_HDR);
	return 0;
}

/* rev is the revision the hist entry is filed under (its mod revision). */
int store_hist_decode(const MDB_val *v, int64_t rev, struct rec *r)
{
	const uint8_t *p = v->mv_data;
	uint32_t kn;

	if (v->mv_size < HIST_HDR)
		return EF_E_CORRUPT;
	kn = (uint32_t)p[2] << 8 | p[3];
	if (v->mv_size < HIST_HDR + (size_t)kn || p[0] > HIST_DEL)
		return EF_E_CORRUPT;
	r->type = p[0];
	r->flags = p[1];
	r->create = get_i64(p + 4);
	r->version = get_i64(p + 12);
	r->lease = get_i64(p + 20);
	r->time_ns = get_i64(p + 28);
	r->mod = rev;
	r->key = p + HIST_HDR;
	r->key_n = kn;
	r->val = p + HIST_HDR + kn;
	r->val_n = (uint32_t)(v->mv_size - HIST_HDR - kn);
	return 0;
}

/* LMDB return code -> EF_E_*.  MDB_MAP_FULL is the only request-level one. */
int store_lmdb_code(int rc)
{
	switch (rc) {
	case 0:
		return 0;
	case MDB_MAP_FULL:
		return EF_E_NO_SPACE;
	case MDB_TXN_FULL:
		return EF_E_TOO_LARGE;
	case ENOMEM:
		return EF_E_NOMEM;
	case MDB_CORRUPTED:
	case MDB_PAGE_NOTFOUND:
	case MDB_INVALID:
	case MDB_VERSION_MISMATCH:
		return EF_E_CORRUPT;
	default:
		return EF_E_IO;
	}
}

/* ---- zstd ---- */

static pthread_once_t dctx_once = PTHREAD_ONCE_INIT;
static pthread_key_t dctx_key;

static void dctx_free(void *p)
{
	ZSTD_freeDCtx(p);
}

static void dctx_init(void)
{
	pthread_key_create(&dctx_key, dctx_free);
}

static ZSTD_DCtx *thread_dctx(void)
{
	ZSTD_DCtx *d;

	pthread_once(&dctx_once, dctx_init);
	d = pthread_getspecific(dctx_key);
	if (!d) {
		d = ZSTD_createDCtx();
		if (d)
			pthread_setspecific(dctx_key, d);
	}
	return d;
}

/* The plain value of r, copied into a. */
int store_value_copy(ef_arena *a, const struct rec *r, ef_buf *out)
{
	if (r->flags & STORE_F_ZSTD) {
		unsigned long long n = ZSTD_getFrameContentSize(r->val, r->val_n);
		ZSTD_DCtx *d = thread_dctx();
		uint8_t *p;
		size_t got;

		if (n == ZSTD_CONTENTSIZE_ERROR || n == ZSTD_CONTENTSIZE_UNKNOWN || n > UINT32_MAX)
			return EF_E_CORRUPT;
		if (!d)
			return EF_E_NOMEM;
		p = ef_arena_alloc(a, (size_t)n);
		if (!p)
			return EF_E_NOMEM;
		got = ZSTD_decompressDCtx(d, p, (size_t)n, r->val, r->val_n);
		if (ZSTD_isError(got) || got != n)
			return EF_E_CORRUPT;
		out->p = p;
		out->n = (uint32_t)n;
		return 0;
	}
	out->n = r->val_n;
	out->p = r->val_n ? ef_arena_dup(a, r->val, r->val_n) : (const uint8_t *)"";
	return out->p ? 0 : EF_E_NOMEM;
}

/* ================================================================== */
/* Copying records out                                                 */

/* Fill kv from r (key given separately); key and value copied into a. */
int store_kv_fill(ef_arena *a, ef_kv *kv, const void *key, uint32_t key_n, const struct rec *r,
		  int keys_only)
{
	memset(kv, 0, sizeof(*kv));
	kv->key.p = ef_arena_dup(a, key, key_n ? key_n : 1);
	if (!kv->key.p)
		return EF_E_NOMEM;
	kv->key.n = key_n;
	kv->create_revision = r->create;
	kv->mod_revision = r->mod;
	kv->version = r->version;
	kv->lease = r->lease;
	kv->mod_time_ns = r->time_ns;
	if (keys_only) {
		kv->value.p = (const uint8_t *)"";
		return 0;
	}
	return store_value_copy(a, r, &kv->value);
}

ef_kv *store_kv_new(ef_arena *a, const void *key, uint32_t key_n, const struct rec *r, int *err)
{
	ef_kv *kv = ef_arena_alloc(a, sizeof(*kv));

	if (!kv) {
		*err = EF_E_NOMEM;
		return NULL;
	}
	*err = store_kv_fill(a, kv, key, key_n, r, 0);
	return *err ? NULL : kv;
}

/* Grow an arena array of elements of size sz to hold need elements. */
int store_arr_grow(ef_arena *a, void **arr, uint32_t *cap, uint32_t n, uint32_t need, size_t sz)
{
	uint32_t nc;
	void *p;

	if (need <= *cap)
		return 0;
	nc = *cap ? *cap * 2 : 16;
	while (nc < need)
		nc *= 2;
	p = ef_arena_alloc(a, (size_t)nc * sz);
	if (!p)
		return EF_E_NOMEM;
	if (n)
		memcpy(p, *arr, (size_t)n * sz);
	*arr = p;
	*cap = nc;
	return 0;
}

ef_event *store_ev_push(store_events *ev)
{
	ef_event *e;

	if (store_arr_grow(ev->a, (void **)&ev->ev, &ev->cap, ev->n, ev->n + 1, sizeof(ef_event)))
		return NULL;
	e = &ev->ev[ev->n++];
	memset(e, 0, sizeof(*e));
	return e;
}
