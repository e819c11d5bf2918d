/*
 * encode.c - etcd's JSON for a response, written straight into an ef_wbuf.
 *
 * No intermediate tree: the encoders append jsonpb's output as etcd
 * configures it (proto field names in proto field order, int64 and uint64 as
 * decimal strings, bytes as padded standard base64, enums by name, every
 * field equal to its default value left out).  The small writers (jw_*) keep
 * track of commas from the last byte written, so an encoder is a plain list
 * of fields.  gw_room, gw_put_lit, gw_fmt_i64 and gw_jw_strval are shared
 * with error.c and watch.c.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/b64.h"
#include "gateway_int.h"

/* ================================================================== */
/* Output helpers                                                       */

/* Pointer to n writable bytes at the end of b (len advanced), or NULL once
 * b->err is set.  Same growth policy and allocator as wire.c's wbuf. */
uint8_t *gw_room(ef_wbuf *b, size_t n)
{
	uint8_t *p;

	if (b->err)
		return NULL;
	if (b->cap - b->len < n) {
		size_t cap = b->cap ? b->cap : 512;

		if (n > SIZE_MAX / 4 - b->len) {
			b->err = EF_E_NOMEM;
			return NULL;
		}
		while (cap < b->len + n)
			cap *= 2;
		p = realloc(b->p, cap);
		if (!p) {
			b->err = EF_E_NOMEM;
			return NULL;
		}
		b->p = p;
		b->cap = cap;
	}
	p = b->p + b->len;
	b->len += n;
	return p;
}

void gw_put_lit(ef_wbuf *b, const char *s)
{
	ef_wbuf_put(b, s, strlen(s));
}

static size_t fmt_u64(char *out, uint64_t v)
{
	char tmp[24];
	size_t n = 0, i;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	for (i = 0; i < n; i++)
		out[i] = tmp[n - 1 - i];
	return n;
}

size_t gw_fmt_i64(char *out, int64_t v)
{
	if (v < 0) {
		out[0] = '-';
		return 1 + fmt_u64(out + 1, (uint64_t)0 - (uint64_t)v);
	}
	return fmt_u64(out, (uint64_t)v);
}

/* A comma unless the previous byte opens an object or array. */
static void jw_sep(ef_wbuf *b)
{
	if (b->len && !b->err && b->p[b->len - 1] != '{' && b->p[b->len - 1] != '[')
		ef_wbuf_u8(b, ',');
}

static void jw_key(ef_wbuf *b, const char *k)
{
	size_t n = strlen(k);
	uint8_t *d;

	jw_sep(b);
	d = gw_room(b, n + 3);
	if (!d)
		return;
	d[0] = '"';
	memcpy(d + 1, k, n);
	d[n + 1] = '"';
	d[n + 2] = ':';
}

static void jw_open(ef_wbuf *b, const char *k)
{
	jw_key(b, k);
	ef_wbuf_u8(b, '{');
}

static void jw_close(ef_wbuf *b)
{
	ef_wbuf_u8(b, '}');
}

/* "k":"123": jsonpb writes 64-bit integers as strings. */
static void jw_quoted_num(ef_wbuf *b, const char *k, const char *num, size_t n)
{
	uint8_t *d;

	jw_key(b, k);
	d = gw_room(b, n + 2);
	if (!d)
		return;
	d[0] = '"';
	memcpy(d + 1, num, n);
	d[n + 1] = '"';
}

/* ... and omits default (zero) values. */
static void jw_i64(ef_wbuf *b, const char *k, int64_t v)
{
	char num[24];

	if (v)
		jw_quoted_num(b, k, num, gw_fmt_i64(num, v));
}

static void jw_u64(ef_wbuf *b, const char *k, uint64_t v)
{
	char num[24];

	if (v)
		jw_quoted_num(b, k, num, fmt_u64(num, v));
}

static void jw_true(ef_wbuf *b, const char *k, int v)
{
	if (!v)
		return;
	jw_key(b, k);
	gw_put_lit(b, "true");
}

/* A quoted base64 string of p[0..n). */
static void jw_b64val(ef_wbuf *b, const uint8_t *p, uint32_t n)
{
	size_t out = b64_encoded_len(n);
	uint8_t *d = gw_room(b, out + 3);

	if (!d)
		return;
	*d = '"';
	b64_encode(p, n, (char *)d + 1);
	d[out + 1] = '"';
	/* gw_room() reserved out + 3 bytes; the NUL b64_encode wrote is not kept. */
	b->len -= 1;
}

static void jw_b64(ef_wbuf *b, const char *k, ef_buf v)
{
	if (!v.n)
		return;
	jw_key(b, k);
	jw_b64val(b, v.p, v.n);
}

/* A quoted JSON string with the escapes JSON requires. */
void gw_jw_strval(ef_wbuf *b, const uint8_t *p, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t i, run = 0;

	ef_wbuf_u8(b, '"');
	for (i = 0; i < n; i++) {
		uint8_t c = p[i];

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		ef_wbuf_put(b, p + run, i - run);
		run = i + 1;
		if (c == '"' || c == '\\') {
			uint8_t e[2] = {'\\', c};

			ef_wbuf_put(b, e, 2);
		} else if (c == '\n') {
			gw_put_lit(b, "\\n");
		} else {
			uint8_t e[6] = {
				'\\', 'u', '0', '0', (uint8_t)hex[c >> 4], (uint8_t)hex[c & 15]};

			ef_wbuf_put(b, e, 6);
		}
	}
	ef_wbuf_put(b, p + run, n - run);
	ef_wbuf_u8(b, '"');
}

static void jw_str(ef_wbuf *b, const char *k, ef_buf v)
{
	if (!v.n)
		return;
	jw_key(b, k);
	gw_jw_strval(b, v.p, v.n);
}

/* ================================================================== */
/* Response encoding                                                    */

static void enc_header(ef_wbuf *b, const ef_resp_header *h)
{
	jw_open(b, "header");
	jw_u64(b, "cluster_id", h->cluster_id);
	jw_u64(b, "member_id", h->member_id);
	jw_i64(b, "revision", h->revision);
	jw_u64(b, "raft_term", h->raft_term);
	jw_close(b);
}

/* Inner responses of a txn carry a header with only the revision, as etcd's. */
static void enc_rev_header(ef_wbuf *b, int64_t rev)
{
	jw_open(b, "header");
	jw_i64(b, "revision", rev);
	jw_close(b);
}

static void enc_kv_body(ef_wbuf *b, const ef_kv *kv)
{
	jw_b64(b, "key", kv->key);
	jw_i64(b, "create_revision", kv->create_revision);
	jw_i64(b, "mod_revision", kv->mod_revision);
	jw_i64(b, "version", kv->version);
	jw_b64(b, "value", kv->value);
	jw_i64(b, "lease", kv->lease);
}

static void enc_kv(ef_wbuf *b, const char *k, const ef_kv *kv)
{
	jw_open(b, k);
	enc_kv_body(b, kv);
	jw_close(b);
}

static void enc_kv_array(ef_wbuf *b, const char *k, const ef_kv *kvs, uint32_t n)
{
	if (!n)
		return;
	jw_key(b, k);
	ef_wbuf_u8(b, '[');
	for (uint32_t i = 0; i < n; i++) {
		jw_sep(b);
		ef_wbuf_u8(b, '{');
		enc_kv_body(b, &kvs[i]);
		ef_wbuf_u8(b, '}');
	}
	ef_wbuf_u8(b, ']');
}

static void enc_range_body(ef_wbuf *b, const ef_range_resp *r)
{
	enc_kv_array(b, "kvs", r->kvs, r->n_kvs);
	jw_true(b, "more", r->more);
	jw_i64(b, "count", r->count);
}

static void enc_put_body(ef_wbuf *b, const ef_put_resp *r)
{
	if (r->prev_kv)
		enc_kv(b, "prev_kv", r->prev_kv);
}

static void enc_delete_body(ef_wbuf *b, const ef_delete_resp *r)
{
	jw_i64(b, "deleted", r->deleted);
	enc_kv_array(b, "prev_kvs", r->prev_kvs, r->n_prev_kvs);
}

static void enc_txn_body(ef_wbuf *b, const ef_txn_resp *r, int64_t rev)
{
	jw_true(b, "succeeded", r->succeeded);
	if (!r->n_responses)
		return;
	jw_key(b, "responses");
	ef_wbuf_u8(b, '[');
	for (uint32_t i = 0; i < r->n_responses; i++) {
		const ef_op_resp *o = &r->responses[i];

		jw_sep(b);
		ef_wbuf_u8(b, '{');
		switch (o->type) {
		case EF_OP_RANGE:
			jw_open(b, "response_range");
			enc_rev_header(b, rev);
			enc_range_body(b, &o->u.range);
			jw_close(b);
			break;
		case EF_OP_PUT:
			jw_open(b, "response_put");
			enc_rev_header(b, rev);
			enc_put_body(b, &o->u.put);
			jw_close(b);
			break;
		case EF_OP_DELETE:
			jw_open(b, "response_delete_range");
			enc_rev_header(b, rev);
			enc_delete_body(b, &o->u.del);
			jw_close(b);
			break;
		default:
			break;
		}
		ef_wbuf_u8(b, '}');
	}
	ef_wbuf_u8(b, ']');
}

static void enc_str_array(ef_wbuf *b, const char *k, const ef_buf *v, uint32_t n)
{
	if (!n)
		return;
	jw_key(b, k);
	ef_wbuf_u8(b, '[');
	for (uint32_t i = 0; i < n; i++) {
		jw_sep(b);
		gw_jw_strval(b, v[i].p, v[i].n);
	}
	ef_wbuf_u8(b, ']');
}

void gw_encode_response(int method, const ef_msg *m, ef_wbuf *b)
{
	ef_wbuf_u8(b, '{');
	if (method == GW_LEASE_KEEPALIVE)
		gw_put_lit(b, "\"result\":{");
	enc_header(b, &m->hdr);
	switch (method) {
	case GW_RANGE:
		enc_range_body(b, &m->u.range_resp);
		break;
	case GW_PUT:
		enc_put_body(b, &m->u.put_resp);
		break;
	case GW_DELETE:
		enc_delete_body(b, &m->u.del_resp);
		break;
	case GW_TXN:
		enc_txn_body(b, &m->u.txn_resp, m->hdr.revision);
		break;
	case GW_LEASE_GRANT:
	case GW_LEASE_KEEPALIVE:
		jw_i64(b, "ID", m->u.lease_resp.id);
		jw_i64(b, "TTL", m->u.lease_resp.ttl);
		break;
	case GW_LEASE_TTL:
		jw_i64(b, "ID", m->u.lease_resp.id);
		jw_i64(b, "TTL", m->u.lease_resp.ttl);
		jw_i64(b, "grantedTTL", m->u.lease_resp.granted_ttl);
		if (m->u.lease_resp.n_keys) {
			jw_key(b, "keys");
			ef_wbuf_u8(b, '[');
			for (uint32_t i = 0; i < m->u.lease_resp.n_keys; i++) {
				jw_sep(b);
				jw_b64val(b, m->u.lease_resp.keys[i].p, m->u.lease_resp.keys[i].n);
			}
			ef_wbuf_u8(b, ']');
		}
		break;
	case GW_LEASE_LEASES:
		if (m->u.lease_list_resp.n_ids) {
			jw_key(b, "leases");
			ef_wbuf_u8(b, '[');
			for (uint32_t i = 0; i < m->u.lease_list_resp.n_ids; i++) {
				jw_sep(b);
				ef_wbuf_u8(b, '{');
				jw_i64(b, "ID", m->u.lease_list_resp.ids[i]);
				ef_wbuf_u8(b, '}');
			}
			ef_wbuf_u8(b, ']');
		}
		break;
	case GW_STATUS: {
		const ef_status_resp *s = &m->u.status_resp;

		jw_str(b, "version", s->version);
		jw_i64(b, "dbSize", s->db_size);
		jw_u64(b, "leader", s->leader);
		jw_u64(b, "raftIndex", s->raft_index);
		jw_u64(b, "raftTerm", s->raft_term);
		jw_u64(b, "raftAppliedIndex", s->raft_applied_index);
		enc_str_array(b, "errors", &s->errors, s->errors.n ? 1 : 0);
		jw_i64(b, "dbSizeInUse", s->db_size_in_use);
		jw_true(b, "isLearner", s->is_learner);
		break;
	}
	case GW_MEMBER_LIST:
		if (m->u.member_list_resp.n_members) {
			jw_key(b, "members");
			ef_wbuf_u8(b, '[');
			for (uint32_t i = 0; i < m->u.member_list_resp.n_members; i++) {
				const ef_member *mb = &m->u.member_list_resp.members[i];

				jw_sep(b);
				ef_wbuf_u8(b, '{');
				jw_u64(b, "ID", mb->id);
				jw_str(b, "name", mb->name);
				enc_str_array(b, "peerURLs", mb->peer_urls, mb->n_peer_urls);
				enc_str_array(b, "clientURLs", mb->client_urls, mb->n_client_urls);
				jw_true(b, "isLearner", mb->is_learner);
				ef_wbuf_u8(b, '}');
			}
			ef_wbuf_u8(b, ']');
		}
		break;
	default: /* compaction, revoke: header only */
		break;
	}
	if (method == GW_LEASE_KEEPALIVE)
		ef_wbuf_u8(b, '}');
	ef_wbuf_u8(b, '}');
}

void gw_encode_watch(const ef_msg *m, ef_wbuf *b)
{
	const ef_watch_resp *w = &m->u.watch_resp;

	gw_put_lit(b, "{\"result\":{");
	enc_header(b, &m->hdr);
	jw_i64(b, "watch_id", w->watch_id);
	jw_true(b, "created", w->created);
	jw_true(b, "canceled", w->canceled);
	jw_i64(b, "compact_revision", w->compact_revision);
	jw_str(b, "cancel_reason", w->cancel_reason);
	if (w->n_events) {
		jw_key(b, "events");
		ef_wbuf_u8(b, '[');
		for (uint32_t i = 0; i < w->n_events; i++) {
			const ef_event *e = &w->events[i];

			jw_sep(b);
			ef_wbuf_u8(b, '{');
			if (e->type == EF_EVENT_DELETE) {
				jw_key(b, "type");
				gw_put_lit(b, "\"DELETE\"");
			}
			enc_kv(b, "kv", &e->kv);
			if (e->prev_kv)
				enc_kv(b, "prev_kv", e->prev_kv);
			ef_wbuf_u8(b, '}');
		}
		ef_wbuf_u8(b, ']');
	}
	gw_put_lit(b, "}}");
}
