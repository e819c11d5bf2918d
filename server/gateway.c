/*
 * gateway.c - the etcd v3.4-compatible HTTP/JSON gateway of etcfsd.
 *
 * Tools that speak etcd's grpc-gateway JSON API (curl scripts, etcd3gw,
 * load generators such as wrk) talk to etcfsd through this file.  It has
 * two halves:
 *
 *   1. Translation.  gw_decode_request() turns a JSON body into an ef_msg
 *      (jansson parses; base64 is decoded straight into the request arena),
 *      gw_encode_response() writes etcd's JSON for a response straight into
 *      an ef_wbuf with no intermediate tree, following jsonpb's rules as
 *      etcd configures them: proto field names, proto field order, int64 and
 *      uint64 as decimal strings, bytes as padded standard base64, enums by
 *      name, and every field equal to its default value left out.  Enum
 *      fields are accepted as names or numbers and integers as JSON numbers
 *      or strings, as jsonpb accepts them.
 *
 *   2. A small HTTP/1.1 server on plain sockets, one thread per connection.
 *      node_call() blocks until Raft has committed (or a ReadIndex round is
 *      done), so a request needs a thread for its whole life anyway; giving
 *      each connection its own thread keeps the request path a straight
 *      line (read, parse, node_call, write) with per-connection buffers that
 *      are reused, so a keep-alive connection allocates almost nothing per
 *      request.  nng's HTTP server was the first choice, but in nng 1.5.2 it
 *      has no read timeout (a client that sends half a header holds a
 *      connection forever), no connection cap, answers oversize bodies with
 *      an HTML 400, and runs handlers on nng's shared task threads, where a
 *      blocking node_call would stall the native listener and the peer
 *      transport that run on the same threads.
 *
 * Robustness rules (each enforced below, each tested by tests/e2e/gw_curl.sh):
 *   - at most max_conns connections; one more gets a canned 503 and is closed;
 *   - a request head must arrive within HEAD_TIMEOUT_MS of its first byte
 *     and fit in MAX_HEAD_BYTES, its body within BODY_TIMEOUT_MS; an idle
 *     keep-alive connection is closed after IDLE_TIMEOUT_MS; a write that
 *     makes no progress for WRITE_TIMEOUT_MS closes the connection;
 *   - bodies above max_body get 413 without being read; chunked request
 *     bodies get 411; malformed JSON, wrong types and bad base64 get 400;
 *     unknown paths 404, wrong methods 405; every error body is etcd-shaped.
 *   - a watch stream whose client reads too slowly pushes back on the node
 *     once WATCH_MAX_QUEUED bytes wait for it (the callback refuses; the
 *     watch hub retries, then cancels the watches, as node.h says), and a
 *     client that takes no bytes for WRITE_TIMEOUT_MS is disconnected.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "gateway.h"
#include "grpc.h"
#include "../common/b64.h"
#include "../common/clock.h"
#include "../common/metrics.h"

/* ================================================================== */
/* Output helpers                                                       */

/* Pointer to n writable bytes at the end of b (len advanced), or NULL once
 * b->err is set.  Same growth policy and allocator as wire.c's wbuf. */
static uint8_t *room(ef_wbuf *b, size_t n)
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

static void put_lit(ef_wbuf *b, const char *s)
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

static size_t fmt_i64(char *out, int64_t v)
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
	d = room(b, n + 3);
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
	d = room(b, n + 2);
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
		jw_quoted_num(b, k, num, fmt_i64(num, v));
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
	put_lit(b, "true");
}

/* A quoted base64 string of p[0..n). */
static void jw_b64val(ef_wbuf *b, const uint8_t *p, uint32_t n)
{
	size_t out = b64_encoded_len(n);
	uint8_t *d = room(b, out + 3);

	if (!d)
		return;
	*d = '"';
	b64_encode(p, n, (char *)d + 1);
	d[out + 1] = '"';
	/* room() reserved out + 3 bytes; the NUL b64_encode wrote is not kept. */
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
static void jw_strval(ef_wbuf *b, const uint8_t *p, size_t n)
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
			put_lit(b, "\\n");
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
	jw_strval(b, v.p, v.n);
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
		jw_strval(b, v[i].p, v[i].n);
	}
	ef_wbuf_u8(b, ']');
}

void gw_encode_response(int method, const ef_msg *m, ef_wbuf *b)
{
	ef_wbuf_u8(b, '{');
	if (method == GW_LEASE_KEEPALIVE)
		put_lit(b, "\"result\":{");
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

	put_lit(b, "{\"result\":{");
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
				put_lit(b, "\"DELETE\"");
			}
			enc_kv(b, "kv", &e->kv);
			if (e->prev_kv)
				enc_kv(b, "prev_kv", e->prev_kv);
			ef_wbuf_u8(b, '}');
		}
		ef_wbuf_u8(b, ']');
	}
	put_lit(b, "}}");
}

int gw_http_status(int grpc_code)
{
	switch (grpc_code) {
	case 0:
		return 200;
	case 1: /* Canceled */
		return 408;
	case 3:  /* InvalidArgument */
	case 11: /* OutOfRange */
		return 400;
	case 4: /* DeadlineExceeded */
		return 504;
	case 5: /* NotFound */
		return 404;
	case 6:  /* AlreadyExists */
	case 10: /* Aborted */
		return 409;
	case 7: /* PermissionDenied */
		return 403;
	case 8: /* ResourceExhausted */
		return 429;
	case 9: /* FailedPrecondition */
		return 412;
	case 12: /* Unimplemented */
		return 501;
	case 14: /* Unavailable */
		return 503;
	case 16: /* Unauthenticated */
		return 401;
	default: /* Unknown, Internal, DataLoss */
		return 500;
	}
}

int gw_encode_error(int grpc_code, const char *msg, ef_wbuf *b)
{
	char num[24];
	size_t n = strlen(msg);

	put_lit(b, "{\"error\":");
	jw_strval(b, (const uint8_t *)msg, n);
	put_lit(b, ",\"message\":");
	jw_strval(b, (const uint8_t *)msg, n);
	put_lit(b, ",\"code\":");
	ef_wbuf_put(b, num, fmt_i64(num, grpc_code));
	ef_wbuf_u8(b, '}');
	return gw_http_status(grpc_code);
}

/* ================================================================== */
/* Request decoding                                                     */

struct dctx {
	ef_arena *a;
	char *err;
	size_t errlen;
};

__attribute__((format(printf, 2, 3))) static int fail(struct dctx *d, const char *fmt, ...)
{
	va_list ap;

	if (d->errlen) {
		va_start(ap, fmt);
		vsnprintf(d->err, d->errlen, fmt, ap);
		va_end(ap);
	}
	return EF_E_INVALID;
}

/* Go's name for a JSON value kind, for encoding/json-style messages. */
static const char *jkind(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "object";
	case JSON_ARRAY:
		return "array";
	case JSON_STRING:
		return "string";
	case JSON_INTEGER:
	case JSON_REAL:
		return "number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "bool";
	default:
		return "null";
	}
}

/* Standard base64 (padding optional, CR/LF ignored as Go does) into the arena. */
static int b64_decode_arena(struct dctx *d, const char *s, size_t n, ef_buf *out)
{
	uint8_t *dst;
	size_t len, bad;

	if (n > UINT32_MAX)
		return fail(d, "value too large");
	dst = ef_arena_alloc(d->a, b64_decoded_max(n));
	if (!dst)
		return EF_E_NOMEM;
	if (b64_decode(s, n, dst, &len, &bad) != 0)
		return fail(d, "illegal base64 data at input byte %zu", bad);
	out->p = dst;
	out->n = (uint32_t)len;
	return 0;
}

static json_t *field(json_t *o, const char *name)
{
	json_t *v = json_object_get(o, name);

	return v && !json_is_null(v) ? v : NULL;
}

static int get_bytes(struct dctx *d, json_t *o, const char *name, ef_buf *out)
{
	json_t *v = field(o, name);

	if (!v)
		return 0;
	if (!json_is_string(v))
		return fail(d, "json: cannot unmarshal %s into Go value of type []uint8", jkind(v));
	return b64_decode_arena(d, json_string_value(v), json_string_length(v), out);
}

/* int64 from a JSON integer, an integral real, or a decimal string. */
static int get_i64(struct dctx *d, json_t *o, const char *name, int64_t *out)
{
	json_t *v = field(o, name);

	if (!v)
		return 0;
	if (json_is_integer(v)) {
		*out = json_integer_value(v);
		return 0;
	}
	if (json_is_real(v)) {
		double x = json_real_value(v);

		if (x != (double)(int64_t)x || x >= 9.3e18 || x <= -9.3e18)
			return fail(d,
				    "json: cannot unmarshal number %g into Go value of type int64",
				    x);
		*out = (int64_t)x;
		return 0;
	}
	if (json_is_string(v)) {
		const char *s = json_string_value(v);
		char *end;
		long long x;

		errno = 0;
		x = strtoll(s, &end, 10);
		if (!*s || *end || errno || s[0] == ' ' || s[0] == '+')
			return fail(d, "invalid character '%c' looking for beginning of value",
				    *s ? *s : '"');
		*out = x;
		return 0;
	}
	return fail(d, "json: cannot unmarshal %s into Go value of type int64", jkind(v));
}

static int get_bool(struct dctx *d, json_t *o, const char *name, uint8_t *out)
{
	json_t *v = field(o, name);

	if (!v)
		return 0;
	if (!json_is_boolean(v))
		return fail(d, "json: cannot unmarshal %s into Go value of type bool", jkind(v));
	*out = json_is_true(v) ? 1 : 0;
	return 0;
}

/* An enum by name or number (numbers must name a known value: the wire
 * carries them in a byte). */
static int get_enum(struct dctx *d, json_t *o, const char *name, const char *const *names, int n,
		    const char *type, uint8_t *out)
{
	json_t *v = field(o, name);

	if (!v)
		return 0;
	if (json_is_string(v)) {
		for (int i = 0; i < n; i++)
			if (strcmp(json_string_value(v), names[i]) == 0) {
				*out = (uint8_t)i;
				return 0;
			}
		return fail(d, "unknown value \"%s\" for enum %s", json_string_value(v), type);
	}
	if (json_is_integer(v)) {
		json_int_t x = json_integer_value(v);

		if (x < 0 || x >= n)
			return fail(d, "unknown value %" JSON_INTEGER_FORMAT " for enum %s", x,
				    type);
		*out = (uint8_t)x;
		return 0;
	}
	return fail(d, "json: cannot unmarshal %s into Go value of type %s", jkind(v), type);
}

static int get_obj(struct dctx *d, json_t *o, const char *name, const char *type, json_t **out)
{
	json_t *v = field(o, name);

	*out = NULL;
	if (!v)
		return 0;
	if (!json_is_object(v))
		return fail(d, "json: cannot unmarshal %s into Go value of type %s", jkind(v),
			    type);
	*out = v;
	return 0;
}

/* An array field: *out NULL and *n 0 when absent.  Bounded so a body of
 * tiny elements cannot make us allocate a huge op table. */
#define MAX_ARRAY 10000
static int get_array(struct dctx *d, json_t *o, const char *name, const char *type, json_t **out,
		     size_t *n)
{
	json_t *v = field(o, name);

	*out = NULL;
	*n = 0;
	if (!v)
		return 0;
	if (!json_is_array(v))
		return fail(d, "json: cannot unmarshal %s into Go value of type %s", jkind(v),
			    type);
	if (json_array_size(v) > MAX_ARRAY)
		return fail(d, "%s", ef_strerror(EF_E_TOO_MANY_OPS));
	*out = v;
	*n = json_array_size(v);
	return 0;
}

static const char *const sort_order_names[] = {"NONE", "ASCEND", "DESCEND"};
static const char *const sort_target_names[] = {"KEY", "VERSION", "CREATE", "MOD", "VALUE"};
static const char *const cmp_result_names[] = {"EQUAL", "GREATER", "LESS", "NOT_EQUAL"};
static const char *const cmp_target_names[] = {"VERSION", "CREATE", "MOD", "VALUE", "LEASE"};
static const char *const filter_names[] = {"NOPUT", "NODELETE"};

static int dec_range(struct dctx *d, json_t *o, ef_range_req *r)
{
	int rc;

	if ((rc = get_bytes(d, o, "key", &r->key)) ||
	    (rc = get_bytes(d, o, "range_end", &r->range_end)) ||
	    (rc = get_i64(d, o, "limit", &r->limit)) ||
	    (rc = get_i64(d, o, "revision", &r->revision)) ||
	    (rc = get_enum(d, o, "sort_order", sort_order_names, 3,
			   "etcdserverpb.RangeRequest_SortOrder", &r->sort_order)) ||
	    (rc = get_enum(d, o, "sort_target", sort_target_names, 5,
			   "etcdserverpb.RangeRequest_SortTarget", &r->sort_target)) ||
	    (rc = get_bool(d, o, "serializable", &r->serializable)) ||
	    (rc = get_bool(d, o, "keys_only", &r->keys_only)) ||
	    (rc = get_bool(d, o, "count_only", &r->count_only)) ||
	    (rc = get_i64(d, o, "min_mod_revision", &r->min_mod_revision)) ||
	    (rc = get_i64(d, o, "max_mod_revision", &r->max_mod_revision)) ||
	    (rc = get_i64(d, o, "min_create_revision", &r->min_create_revision)) ||
	    (rc = get_i64(d, o, "max_create_revision", &r->max_create_revision)))
		return rc;
	return 0;
}

static int dec_put(struct dctx *d, json_t *o, ef_put_req *r)
{
	int rc;

	if ((rc = get_bytes(d, o, "key", &r->key)) || (rc = get_bytes(d, o, "value", &r->value)) ||
	    (rc = get_i64(d, o, "lease", &r->lease)) ||
	    (rc = get_bool(d, o, "prev_kv", &r->prev_kv)) ||
	    (rc = get_bool(d, o, "ignore_value", &r->ignore_value)) ||
	    (rc = get_bool(d, o, "ignore_lease", &r->ignore_lease)))
		return rc;
	return 0;
}

static int dec_delete(struct dctx *d, json_t *o, ef_delete_req *r)
{
	int rc;

	if ((rc = get_bytes(d, o, "key", &r->key)) ||
	    (rc = get_bytes(d, o, "range_end", &r->range_end)) ||
	    (rc = get_bool(d, o, "prev_kv", &r->prev_kv)))
		return rc;
	return 0;
}

static int dec_compare(struct dctx *d, json_t *o, ef_compare *c)
{
	int rc;

	if (!json_is_object(o))
		return fail(d,
			    "json: cannot unmarshal %s into Go value of type etcdserverpb.Compare",
			    jkind(o));
	if ((rc = get_enum(d, o, "result", cmp_result_names, 4,
			   "etcdserverpb.Compare_CompareResult", &c->result)) ||
	    (rc = get_enum(d, o, "target", cmp_target_names, 5,
			   "etcdserverpb.Compare_CompareTarget", &c->target)) ||
	    (rc = get_bytes(d, o, "key", &c->key)) ||
	    (rc = get_bytes(d, o, "range_end", &c->range_end)))
		return rc;
	switch (c->target) {
	case EF_CMP_VERSION:
		return get_i64(d, o, "version", &c->number);
	case EF_CMP_CREATE:
		return get_i64(d, o, "create_revision", &c->number);
	case EF_CMP_MOD:
		return get_i64(d, o, "mod_revision", &c->number);
	case EF_CMP_VALUE:
		return get_bytes(d, o, "value", &c->value);
	default:
		return get_i64(d, o, "lease", &c->number);
	}
}

static int dec_op(struct dctx *d, json_t *o, ef_op *op)
{
	json_t *v;
	int rc;

	if (!json_is_object(o))
		return fail(
			d, "json: cannot unmarshal %s into Go value of type etcdserverpb.RequestOp",
			jkind(o));
	if ((rc = get_obj(d, o, "request_range", "etcdserverpb.RangeRequest", &v)))
		return rc;
	if (v) {
		op->type = EF_OP_RANGE;
		return dec_range(d, v, &op->u.range);
	}
	if ((rc = get_obj(d, o, "request_put", "etcdserverpb.PutRequest", &v)))
		return rc;
	if (v) {
		op->type = EF_OP_PUT;
		return dec_put(d, v, &op->u.put);
	}
	if ((rc = get_obj(d, o, "request_delete_range", "etcdserverpb.DeleteRangeRequest", &v)))
		return rc;
	if (v) {
		op->type = EF_OP_DELETE;
		return dec_delete(d, v, &op->u.del);
	}
	if (field(o, "request_txn"))
		return fail(d, "%s", ef_strerror(EF_E_NESTED_TXN));
	return fail(d, "etcdserver: request op is empty");
}

static int dec_ops(struct dctx *d, json_t *o, const char *name, ef_op **out, uint32_t *n_out)
{
	json_t *arr;
	size_t n;
	int rc;

	if ((rc = get_array(d, o, name, "[]*etcdserverpb.RequestOp", &arr, &n)) || !n)
		return rc;
	*out = ef_arena_alloc(d->a, n * sizeof(ef_op));
	if (!*out)
		return EF_E_NOMEM;
	for (size_t i = 0; i < n; i++)
		if ((rc = dec_op(d, json_array_get(arr, i), &(*out)[i])))
			return rc;
	*n_out = (uint32_t)n;
	return 0;
}

static int dec_txn(struct dctx *d, json_t *o, ef_txn_req *t)
{
	json_t *arr;
	size_t n;
	int rc;

	if ((rc = get_array(d, o, "compare", "[]*etcdserverpb.Compare", &arr, &n)))
		return rc;
	if (n) {
		t->cmp = ef_arena_alloc(d->a, n * sizeof(ef_compare));
		if (!t->cmp)
			return EF_E_NOMEM;
		for (size_t i = 0; i < n; i++)
			if ((rc = dec_compare(d, json_array_get(arr, i), &t->cmp[i])))
				return rc;
		t->n_cmp = (uint32_t)n;
	}
	if ((rc = dec_ops(d, o, "success", &t->success, &t->n_success)) ||
	    (rc = dec_ops(d, o, "failure", &t->failure, &t->n_failure)))
		return rc;
	return 0;
}

static int dec_watch_create(struct dctx *d, json_t *o, ef_watch_create_req *w)
{
	json_t *arr;
	size_t n;
	int rc;

	if ((rc = get_bytes(d, o, "key", &w->key)) ||
	    (rc = get_bytes(d, o, "range_end", &w->range_end)) ||
	    (rc = get_i64(d, o, "start_revision", &w->start_revision)) ||
	    (rc = get_bool(d, o, "progress_notify", &w->progress_notify)) ||
	    (rc = get_bool(d, o, "prev_kv", &w->prev_kv)) ||
	    (rc = get_i64(d, o, "watch_id", &w->watch_id)) ||
	    (rc = get_bool(d, o, "fragment", &w->fragment)) ||
	    (rc = get_array(d, o, "filters", "[]etcdserverpb.WatchCreateRequest_FilterType", &arr,
			    &n)))
		return rc;
	for (size_t i = 0; i < n; i++) {
		json_t *wrap = json_pack("{sO}", "f", json_array_get(arr, i));
		uint8_t f = 0;

		if (!wrap)
			return EF_E_NOMEM;
		rc = get_enum(d, wrap, "f", filter_names, 2,
			      "etcdserverpb.WatchCreateRequest_FilterType", &f);
		json_decref(wrap);
		if (rc)
			return rc;
		if (f == 0)
			w->no_put = 1;
		else
			w->no_delete = 1;
	}
	return 0;
}

static const char *const method_types[GW__COUNT] = {
	[GW_RANGE] = "etcdserverpb.RangeRequest",
	[GW_PUT] = "etcdserverpb.PutRequest",
	[GW_DELETE] = "etcdserverpb.DeleteRangeRequest",
	[GW_TXN] = "etcdserverpb.TxnRequest",
	[GW_COMPACT] = "etcdserverpb.CompactionRequest",
	[GW_LEASE_GRANT] = "etcdserverpb.LeaseGrantRequest",
	[GW_LEASE_REVOKE] = "etcdserverpb.LeaseRevokeRequest",
	[GW_LEASE_KEEPALIVE] = "etcdserverpb.LeaseKeepAliveRequest",
	[GW_LEASE_TTL] = "etcdserverpb.LeaseTimeToLiveRequest",
	[GW_LEASE_LEASES] = "etcdserverpb.LeaseLeasesRequest",
	[GW_STATUS] = "etcdserverpb.StatusRequest",
	[GW_MEMBER_LIST] = "etcdserverpb.MemberListRequest",
	[GW_WATCH] = "etcdserverpb.WatchRequest",
};

static const uint8_t method_msg[GW__COUNT] = {
	[GW_RANGE] = EF_MSG_RANGE,
	[GW_PUT] = EF_MSG_PUT,
	[GW_DELETE] = EF_MSG_DELETE,
	[GW_TXN] = EF_MSG_TXN,
	[GW_COMPACT] = EF_MSG_COMPACT,
	[GW_LEASE_GRANT] = EF_MSG_LEASE_GRANT,
	[GW_LEASE_REVOKE] = EF_MSG_LEASE_REVOKE,
	[GW_LEASE_KEEPALIVE] = EF_MSG_LEASE_KEEPALIVE,
	[GW_LEASE_TTL] = EF_MSG_LEASE_TTL,
	[GW_LEASE_LEASES] = EF_MSG_LEASE_LIST,
	[GW_STATUS] = EF_MSG_STATUS,
	[GW_MEMBER_LIST] = EF_MSG_MEMBER_LIST,
	[GW_WATCH] = EF_MSG_WATCH_CREATE,
};

static int only_space(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r' && p[i] != '\n')
			return 0;
	return 1;
}

/* Parse one JSON object from p[0..n); *used = bytes consumed. */
static int parse_object(struct dctx *d, const char *p, size_t n, const char *type, size_t flags,
			json_t **out, size_t *used)
{
	json_error_t je;
	json_t *root;
	int rc;

	root = json_loadb(p, n, flags | JSON_REJECT_DUPLICATES, &je);
	if (!root) {
		if (je.position >= (int)n)
			return fail(d, "unexpected EOF");
		return fail(d, "%s", je.text);
	}
	if (!json_is_object(root)) {
		rc = fail(d, "json: cannot unmarshal %s into Go value of type %s", jkind(root),
			  type);
		json_decref(root);
		return rc;
	}
	if (used)
		*used = (size_t)je.position;
	*out = root;
	return 0;
}

int gw_decode_request(int method, const void *body, size_t len, ef_arena *a, ef_msg *req, char *err,
		      size_t errlen)
{
	struct dctx d = {a, err, errlen};
	json_t *o = NULL;
	int rc = 0;

	if (errlen)
		err[0] = 0;
	if (method < 0 || method >= GW__COUNT || method == GW_WATCH)
		return fail(&d, "unknown method");
	memset(req, 0, sizeof(*req));
	req->type = method_msg[method];
	if (only_space(body, len))
		return 0;
	if ((rc = parse_object(&d, body, len, method_types[method], 0, &o, NULL)))
		return rc;
	switch (method) {
	case GW_RANGE:
		rc = dec_range(&d, o, &req->u.range);
		break;
	case GW_PUT:
		rc = dec_put(&d, o, &req->u.put);
		break;
	case GW_DELETE:
		rc = dec_delete(&d, o, &req->u.del);
		break;
	case GW_TXN:
		rc = dec_txn(&d, o, &req->u.txn);
		break;
	case GW_COMPACT:
		if (!(rc = get_i64(&d, o, "revision", &req->u.compact.revision)))
			rc = get_bool(&d, o, "physical", &req->u.compact.physical);
		break;
	case GW_LEASE_GRANT:
		if (!(rc = get_i64(&d, o, "TTL", &req->u.lease.ttl)))
			rc = get_i64(&d, o, "ID", &req->u.lease.id);
		break;
	case GW_LEASE_REVOKE:
	case GW_LEASE_KEEPALIVE:
		rc = get_i64(&d, o, "ID", &req->u.lease.id);
		break;
	case GW_LEASE_TTL:
		if (!(rc = get_i64(&d, o, "ID", &req->u.lease.id)))
			rc = get_bool(&d, o, "keys", &req->u.lease.keys);
		break;
	default: /* leases, status, member list: no fields */
		break;
	}
	json_decref(o);
	return rc;
}

int gw_decode_watch_request(const void *body, size_t len, size_t *used, ef_arena *a, ef_msg *req,
			    char *err, size_t errlen)
{
	struct dctx d = {a, err, errlen};
	const char *p = body;
	json_t *o = NULL, *v;
	size_t n = 0;
	int rc;

	if (errlen)
		err[0] = 0;
	memset(req, 0, sizeof(*req));
	*used = len;
	if (only_space(body, len))
		return fail(&d, "unexpected EOF");
	if ((rc = parse_object(&d, body, len, "etcdserverpb.WatchRequest", JSON_DISABLE_EOF_CHECK,
			       &o, &n)))
		return rc;
	while (n < len && (p[n] == ' ' || p[n] == '\t' || p[n] == '\r' || p[n] == '\n'))
		n++;
	*used = n;
	if ((rc = get_obj(&d, o, "create_request", "etcdserverpb.WatchCreateRequest", &v)))
		goto out;
	if (v) {
		req->type = EF_MSG_WATCH_CREATE;
		rc = dec_watch_create(&d, v, &req->u.watch_create);
		goto out;
	}
	if ((rc = get_obj(&d, o, "cancel_request", "etcdserverpb.WatchCancelRequest", &v)))
		goto out;
	if (v) {
		req->type = EF_MSG_WATCH_CANCEL;
		rc = get_i64(&d, v, "watch_id", &req->u.watch_cancel.watch_id);
		goto out;
	}
	if ((rc = get_obj(&d, o, "progress_request", "etcdserverpb.WatchProgressRequest", &v)))
		goto out;
	if (v) {
		req->type = EF_MSG_WATCH_PROGRESS;
		goto out;
	}
	rc = fail(&d, "watch request has no create_request, cancel_request or progress_request");
out:
	json_decref(o);
	return rc;
}

/* ================================================================== */
/* Routing                                                              */

struct route {
	const char *path; /* after "/v3" */
	int method;
};

static const struct route routes[] = {
	{"/kv/range", GW_RANGE},
	{"/kv/put", GW_PUT},
	{"/kv/deleterange", GW_DELETE},
	{"/kv/txn", GW_TXN},
	{"/kv/compaction", GW_COMPACT},
	{"/watch", GW_WATCH},
	{"/lease/grant", GW_LEASE_GRANT},
	{"/lease/revoke", GW_LEASE_REVOKE},
	{"/kv/lease/revoke", GW_LEASE_REVOKE},
	{"/lease/keepalive", GW_LEASE_KEEPALIVE},
	{"/lease/timetolive", GW_LEASE_TTL},
	{"/kv/lease/timetolive", GW_LEASE_TTL},
	{"/lease/leases", GW_LEASE_LEASES},
	{"/kv/lease/leases", GW_LEASE_LEASES},
	{"/maintenance/status", GW_STATUS},
	{"/cluster/member/list", GW_MEMBER_LIST},
};

int gw_route(const char *path)
{
	if (strncmp(path, "/v3/", 4) == 0)
		path += 3;
	else if (strncmp(path, "/v3beta/", 8) == 0)
		path += 7;
	else if (strncmp(path, "/v3alpha/", 9) == 0)
		path += 8;
	else
		return -1;
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		if (strcmp(path, routes[i].path) == 0)
			return routes[i].method;
	return -1;
}

/* ================================================================== */
/* HTTP server                                                          */

#define MAX_LISTENERS 8
#define MAX_HEAD_BYTES (64u * 1024u)
#define HEAD_TIMEOUT_MS 10000
#define BODY_TIMEOUT_MS 30000
#define IDLE_TIMEOUT_MS 300000
#define WRITE_TIMEOUT_MS 30000
#define WATCH_MAX_QUEUED (16u << 20)
#define WATCH_MAX_REQUESTS 64
#define CONN_BUF_INIT (16u * 1024u)
#define CONN_STACK_BYTES (1024u * 1024u) /* virtual; touched pages only */

/* One client connection, owned by its thread. */
struct conn {
	int fd;
	struct conn *prev, *next; /* in gw.conns; guarded by gw.mu */
	char *buf;                /* received bytes not yet consumed: buf[0..len) */
	size_t len, cap;          /* invariant: len <= cap */
	ef_arena *arena;          /* request and response of the current request */
	ef_wbuf out;              /* response body of the current request */
	uint64_t next_id;         /* request ids for node_call */
};

/* A parsed request head.  Method and path are NUL-terminated strings inside
 * conn.buf, kept as offsets because reading the body may move the buffer. */
struct http_req {
	size_t method, path;
	size_t head_len, body_len;
	int close;
};

/* Labels of the request metrics: the GW_* methods, then these. */
enum {
	L_HEALTH = GW__COUNT,
	L_READYZ,
	L_LIVEZ,
	L_METRICS,
	L_OTHER,
	L__COUNT
};
static const char *const label_names[L__COUNT] = {
	[GW_RANGE] = "range",
	[GW_PUT] = "put",
	[GW_DELETE] = "deleterange",
	[GW_TXN] = "txn",
	[GW_COMPACT] = "compaction",
	[GW_LEASE_GRANT] = "lease_grant",
	[GW_LEASE_REVOKE] = "lease_revoke",
	[GW_LEASE_KEEPALIVE] = "lease_keepalive",
	[GW_LEASE_TTL] = "lease_timetolive",
	[GW_LEASE_LEASES] = "lease_leases",
	[GW_STATUS] = "status",
	[GW_MEMBER_LIST] = "member_list",
	[GW_WATCH] = "watch",
	[L_HEALTH] = "health",
	[L_READYZ] = "readyz",
	[L_LIVEZ] = "livez",
	[L_METRICS] = "metrics",
	[L_OTHER] = "other",
};
static const int status_codes[] = {200, 400, 403, 404, 405, 408, 409, 411, 412,
				   413, 429, 431, 500, 501, 503, 504, 505};
#define N_STATUS (sizeof(status_codes) / sizeof(status_codes[0]))

static struct {
	node *n;
	int nl; /* listeners */
	int lfd[MAX_LISTENERS], lport[MAX_LISTENERS];
	pthread_t acc[MAX_LISTENERS];
	pthread_mutex_t mu;
	pthread_cond_t cv;  /* signalled when nconns drops */
	struct conn *conns; /* guarded by mu */
	int nconns;         /* guarded by mu; invariant: <= max_conns */
	atomic_int stopping;
	int running;
	size_t max_request_bytes;
	size_t max_body; /* 2 * max_request_bytes + 64 KiB */
	int max_conns;
	metric *m_dur[L__COUNT];
	_Atomic(metric *) m_req[L__COUNT][N_STATUS];
	metric *m_conns, *m_rejected, *m_timeouts, *m_watch_streams, *m_watch_events;
	atomic_int n_watch_streams;
} gw = {
	.mu = PTHREAD_MUTEX_INITIALIZER,
	.cv = PTHREAD_COND_INITIALIZER,
	.max_request_bytes = EF_DEFAULT_MAX_REQUEST_BYTES,
	.max_conns = 4096,
};


static void count_request(int label, int status, double seconds)
{
	size_t k;
	metric *m;

	if (label < 0 || label >= L__COUNT)
		label = L_OTHER;
	metrics_observe(gw.m_dur[label], seconds);
	for (k = 0; k < N_STATUS; k++)
		if (status_codes[k] == status)
			break;
	if (k == N_STATUS)
		k = 12; /* 500 */
	m = atomic_load_explicit(&gw.m_req[label][k], memory_order_acquire);
	if (!m) {
		char labels[96];

		/* metrics_counter() returns the existing series on a race. */
		snprintf(labels, sizeof(labels), "method=\"%s\",code=\"%d\"", label_names[label],
			 status_codes[k]);
		m = metrics_counter("etcfs_http_requests_total",
				    "HTTP/JSON gateway requests by method and HTTP status.",
				    labels);
		atomic_store_explicit(&gw.m_req[label][k], m, memory_order_release);
	}
	metrics_inc(m);
}

static const char *reason(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 408:
		return "Request Timeout";
	case 409:
		return "Conflict";
	case 411:
		return "Length Required";
	case 412:
		return "Precondition Failed";
	case 413:
		return "Request Entity Too Large";
	case 429:
		return "Too Many Requests";
	case 431:
		return "Request Header Fields Too Large";
	case 501:
		return "Not Implemented";
	case 503:
		return "Service Unavailable";
	case 504:
		return "Gateway Timeout";
	case 505:
		return "HTTP Version Not Supported";
	default:
		return "Internal Server Error";
	}
}

/* Send every byte of the iovecs; 0 or -1 (peer gone, or no progress for
 * WRITE_TIMEOUT_MS: SO_SNDTIMEO is set on the socket). */
static int send_all(int fd, struct iovec *iov, int n)
{
	while (n > 0) {
		struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n};
		ssize_t k = sendmsg(fd, &mh, MSG_NOSIGNAL);

		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		while (n > 0 && (size_t)k >= iov->iov_len) {
			k -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (char *)iov->iov_base + k;
			iov->iov_len -= (size_t)k;
		}
	}
	return 0;
}

static int send_response(struct conn *c, int status, const char *ctype, const void *body,
			 size_t len, int close)
{
	char h[256];
	int hl;
	struct iovec iov[2];

	hl = snprintf(h, sizeof(h),
		      "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s\r\n", status,
		      reason(status), ctype, len, close ? "Connection: close\r\n" : "");
	iov[0].iov_base = h;
	iov[0].iov_len = (size_t)hl;
	iov[1].iov_base = (void *)body;
	iov[1].iov_len = len;
	return send_all(c->fd, iov, len ? 2 : 1);
}

/* etcd-shaped error; returns the HTTP status sent. */
static int send_error(struct conn *c, int grpc_code, int status, const char *msg, int close)
{
	int st;

	ef_wbuf_reset(&c->out);
	st = gw_encode_error(grpc_code, msg, &c->out);
	if (status)
		st = status;
	if (c->out.err)
		send_response(c, 500, "application/json", "{}", 2, 1);
	else
		send_response(c, st, "application/json", c->out.p, c->out.len, close);
	return st;
}

/* Read more bytes into c->buf (room must exist) until deadline.
 * Returns 1 (bytes read), 0 (peer closed), -1 (timeout, error, stopping). */
static int conn_fill(struct conn *c, int64_t deadline)
{
	for (;;) {
		int64_t left = deadline - clock_mono_ms();
		struct pollfd p = {c->fd, POLLIN, 0};
		ssize_t k;
		int r;

		if (atomic_load(&gw.stopping))
			return -1;
		if (left <= 0) {
			metrics_inc(gw.m_timeouts);
			return -1;
		}
		r = poll(&p, 1, left > 1000 ? 1000 : (int)left);
		if (r < 0 && errno != EINTR)
			return -1;
		if (r <= 0)
			continue;
		k = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
		if (k > 0) {
			c->len += (size_t)k;
			return 1;
		}
		if (k == 0)
			return 0;
		if (errno != EINTR && errno != EAGAIN)
			return -1;
	}
}

static int conn_reserve(struct conn *c, size_t need)
{
	char *p;
	size_t cap = c->cap;

	if (need <= c->cap)
		return 0;
	while (cap < need)
		cap *= 2;
	p = realloc(c->buf, cap);
	if (!p)
		return -1;
	c->buf = p;
	c->cap = cap;
	return 0;
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
		*--e = 0;
	return s;
}

/* Read and parse one request (head and body) into r.
 * Returns 0, or -1 when the connection must be closed (an error response,
 * if any was due, has been sent). */
static int read_request(struct conn *c, struct http_req *r)
{
	int64_t deadline = clock_mono_ms() + IDLE_TIMEOUT_MS;
	size_t scanned = 0, clen = 0;
	char *end = NULL, *line, *next, *version, *path;
	int have_clen = 0, rc, expect100 = 0;

	memset(r, 0, sizeof(*r));
	/* Skip the empty lines some clients send between requests. */
	for (;;) {
		while (c->len >= 2 && c->buf[0] == '\r' && c->buf[1] == '\n') {
			memmove(c->buf, c->buf + 2, c->len - 2);
			c->len -= 2;
		}
		if (c->len >= 4) {
			end = memmem(c->buf + scanned, c->len - scanned, "\r\n\r\n", 4);
			if (end)
				break;
			scanned = c->len - 3;
		}
		if (c->len >= MAX_HEAD_BYTES) {
			send_error(c, 3, 431, "request header too large", 1);
			return -1;
		}
		if (c->len == c->cap && conn_reserve(c, c->cap * 2))
			return -1;
		if (c->len > 0 && deadline > clock_mono_ms() + HEAD_TIMEOUT_MS)
			deadline = clock_mono_ms() + HEAD_TIMEOUT_MS;
		rc = conn_fill(c, deadline);
		if (rc <= 0) {
			if (rc < 0 && c->len > 0 && !atomic_load(&gw.stopping))
				send_error(c, 4, 408, "request head timed out", 1);
			return -1;
		}
		if (c->len > 0 && deadline > clock_mono_ms() + HEAD_TIMEOUT_MS)
			deadline = clock_mono_ms() + HEAD_TIMEOUT_MS;
	}
	r->head_len = (size_t)(end - c->buf) + 4;
	if (memchr(c->buf, 0, r->head_len)) {
		send_error(c, 3, 400, "malformed request: NUL byte in the head", 1);
		return -1;
	}
	end[2] = 0; /* the head is now one string of CRLF-separated lines */

	/* Request line. */
	line = c->buf;
	next = strstr(line, "\r\n"); /* found: the head ends with CRLF CRLF */
	if (!next) {
		send_error(c, 3, 400, "malformed request line", 1);
		return -1;
	}
	*next = 0;
	next += 2;
	r->method = 0;
	path = strchr(line, ' ');
	if (!path) {
		send_error(c, 3, 400, "malformed request line", 1);
		return -1;
	}
	*path++ = 0;
	r->path = (size_t)(path - c->buf);
	version = strchr(path, ' ');
	if (!version) {
		send_error(c, 3, 400, "malformed request line", 1);
		return -1;
	}
	*version++ = 0;
	if (strncmp(version, "HTTP/1.", 7) != 0) {
		send_error(c, 3, 505, "unsupported HTTP version", 1);
		return -1;
	}
	if (strcmp(version, "HTTP/1.1") != 0)
		r->close = 1; /* HTTP/1.0 unless it asks for keep-alive */

	/* Headers. */
	for (line = next; *line; line = next) {
		char *colon, *val;

		next = strstr(line, "\r\n");
		if (next) {
			*next = 0;
			next += 2;
		} else {
			next = line + strlen(line);
		}
		colon = strchr(line, ':');
		if (!colon) {
			send_error(c, 3, 400, "malformed header line", 1);
			return -1;
		}
		*colon = 0;
		val = trim(colon + 1);
		if (strcasecmp(line, "Content-Length") == 0) {
			char *e;
			unsigned long long v;

			errno = 0;
			v = strtoull(val, &e, 10);
			if (!*val || *e || errno || *val == '-' || (have_clen && v != clen)) {
				send_error(c, 3, 400, "invalid Content-Length", 1);
				return -1;
			}
			if (v > gw.max_body) {
				send_error(c, 3, 413, ef_strerror(EF_E_REQUEST_TOO_LARGE), 1);
				return -1;
			}
			clen = (size_t)v;
			have_clen = 1;
		} else if (strcasecmp(line, "Transfer-Encoding") == 0) {
			if (strcasecmp(val, "identity") != 0) {
				send_error(
					c, 3, 411,
					"chunked request bodies are not supported: send Content-Length",
					1);
				return -1;
			}
		} else if (strcasecmp(line, "Connection") == 0) {
			if (strcasestr(val, "close"))
				r->close = 1;
			else if (strcasestr(val, "keep-alive"))
				r->close = 0;
		} else if (strcasecmp(line, "Expect") == 0) {
			expect100 = strcasecmp(val, "100-continue") == 0;
		}
	}

	/* Body. */
	r->body_len = clen;
	if (c->len < r->head_len + clen) {
		if (conn_reserve(c, r->head_len + clen)) {
			send_error(c, 8, 413, "out of memory for request body", 1);
			return -1;
		}
		if (expect100) {
			struct iovec iov = {"HTTP/1.1 100 Continue\r\n\r\n", 25};

			if (send_all(c->fd, &iov, 1))
				return -1;
		}
		deadline = clock_mono_ms() + BODY_TIMEOUT_MS;
		while (c->len < r->head_len + clen) {
			rc = conn_fill(c, deadline);
			if (rc <= 0) {
				if (rc < 0 && !atomic_load(&gw.stopping))
					send_error(c, 4, 408, "request body timed out", 1);
				return -1;
			}
		}
	}
	return 0;
}

static void consume(struct conn *c, size_t n)
{
	memmove(c->buf, c->buf + n, c->len - n);
	c->len -= n;
	/* Give back the memory of a large body. */
	if (c->cap > 4 * CONN_BUF_INIT && c->len <= CONN_BUF_INIT) {
		char *p = realloc(c->buf, CONN_BUF_INIT);

		if (p) {
			c->buf = p;
			c->cap = CONN_BUF_INIT;
		}
	}
}

static void status_header(ef_resp_header *h)
{
	node_status st;

	node_get_status(gw.n, &st);
	h->cluster_id = st.cluster_id;
	h->member_id = st.member_id;
	h->revision = st.revision;
	h->raft_term = st.term;
}

static int handle_unary(struct conn *c, int method, const char *body, size_t len, int close)
{
	ef_msg req, resp;
	char err[512];
	int rc;

	ef_arena_reset(c->arena);
	rc = gw_decode_request(method, body, len, c->arena, &req, err, sizeof(err));
	if (rc)
		return send_error(c, ef_grpc_code(rc), 0, err[0] ? err : ef_strerror(rc), close);
	req.id = ++c->next_id;
	memset(&resp, 0, sizeof(resp));
	rc = node_call(gw.n, &req, &resp, c->arena);
	if (rc == EF_E_LEASE_NOT_FOUND &&
	    (method == GW_LEASE_KEEPALIVE || method == GW_LEASE_TTL)) {
		/* etcd answers these with a response, not an error: keepalive
		 * leaves TTL out, timetolive says TTL -1. */
		int64_t id = req.u.lease.id;

		memset(&resp, 0, sizeof(resp));
		status_header(&resp.hdr);
		resp.u.lease_resp.id = id;
		resp.u.lease_resp.ttl = method == GW_LEASE_TTL ? -1 : 0;
		rc = 0;
	}
	if (rc) {
		if (resp.type == EF_MSG_ERROR && resp.u.error.message.n) {
			snprintf(err, sizeof(err), "%.*s", (int)resp.u.error.message.n,
				 (const char *)resp.u.error.message.p);
			return send_error(c, ef_grpc_code(rc), 0, err, close);
		}
		return send_error(c, ef_grpc_code(rc), 0, ef_strerror(rc), close);
	}
	ef_wbuf_reset(&c->out);
	gw_encode_response(method, &resp, &c->out);
	if (c->out.err)
		return send_error(c, 8, 0, ef_strerror(EF_E_NOMEM), 1);
	send_response(c, 200, "application/json", c->out.p, c->out.len, close);
	return 200;
}

static int handle_health(struct conn *c, int ready, int close)
{
	node_status st;
	char body[256];
	int n;

	node_get_status(gw.n, &st);
	if (!ready) {
		if (st.has_leader)
			n = snprintf(body, sizeof(body), "{\"health\":\"true\"}");
		else
			n = snprintf(body, sizeof(body),
				     "{\"health\":\"false\",\"reason\":\"RAFT NO LEADER\"}");
		send_response(c, st.has_leader ? 200 : 503, "text/plain; charset=utf-8", body,
			      (size_t)n, close);
		return st.has_leader ? 200 : 503;
	}
	if (!st.has_leader)
		n = snprintf(body, sizeof(body), "{\"ready\":\"false\",\"reason\":\"no leader\"}");
	else if (st.catching_up)
		n = snprintf(body, sizeof(body),
			     "{\"ready\":\"false\",\"reason\":\"catching up: applied %" PRIu64
			     " of %" PRIu64 "\"}",
			     st.applied_index, st.commit_index);
	else
		n = snprintf(body, sizeof(body), "{\"ready\":\"true\"}");
	ready = st.has_leader && !st.catching_up;
	send_response(c, ready ? 200 : 503, "application/json", body, (size_t)n, close);
	return ready ? 200 : 503;
}

static int handle_metrics(struct conn *c, int close)
{
	ef_wbuf_reset(&c->out);
	metrics_render(&c->out);
	if (c->out.err)
		return send_error(c, 8, 0, ef_strerror(EF_E_NOMEM), 1);
	send_response(c, 200, "text/plain; version=0.0.4; charset=utf-8", c->out.p, c->out.len,
		      close);
	return 200;
}

/* ------------------------------------------------------------------ */
/* Watch streams                                                        */

/* One HTTP chunk ready to send: mem[off..off+len). */
struct witem {
	struct witem *next;
	uint8_t *mem;
	size_t off, len;
};

struct wqueue {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct witem *head, *tail; /* guarded by mu */
	size_t bytes;              /* guarded by mu; queued bytes */
};

#define CHUNK_PREFIX 12 /* room for "%zx\r\n" in front of the JSON */

/* Runs on a node thread: render the chunk here, queue it, never block on the
 * socket. */
static int watch_cb(void *ud, const ef_msg *m)
{
	struct wqueue *q = ud;
	struct witem *it;
	ef_wbuf b;
	char hx[16];
	int hl;

	ef_wbuf_init(&b);
	room(&b, CHUNK_PREFIX);
	gw_encode_watch(m, &b);
	put_lit(&b, "\n\r\n");
	it = malloc(sizeof(*it));
	if (b.err || !it) {
		/* Out of memory: refuse; the hub keeps the message and retries. */
		free(it);
		ef_wbuf_free(&b);
		return 1;
	}
	hl = snprintf(hx, sizeof(hx), "%zx\r\n", b.len - CHUNK_PREFIX - 2);
	it->next = NULL;
	it->mem = b.p;
	it->off = CHUNK_PREFIX - (size_t)hl;
	it->len = b.len - it->off;
	memcpy(b.p + it->off, hx, (size_t)hl);
	pthread_mutex_lock(&q->mu);
	if (q->bytes + it->len > WATCH_MAX_QUEUED && q->head) {
		/* The client reads slower than events come: push back.  The hub
		 * keeps the message, retries, catches the stream up from the
		 * store, and cancels it after many refusals (node.h). */
		pthread_cond_signal(&q->cv);
		pthread_mutex_unlock(&q->mu);
		free(it->mem);
		free(it);
		return 1;
	}
	if (q->tail)
		q->tail->next = it;
	else
		q->head = it;
	q->tail = it;
	q->bytes += it->len;
	pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mu);
	metrics_inc(gw.m_watch_events);
	return 0;
}

static void free_items(struct witem *it)
{
	while (it) {
		struct witem *next = it->next;

		free(it->mem);
		free(it);
		it = next;
	}
}

/* 1 when the client has gone (EOF, reset); extra bytes it sends are dropped. */
static int client_gone(int fd)
{
	struct pollfd p = {fd, POLLIN | POLLRDHUP, 0};
	char scratch[4096];

	if (poll(&p, 1, 0) <= 0)
		return 0;
	if (p.revents & (POLLERR | POLLHUP | POLLRDHUP | POLLNVAL))
		return 1;
	if (p.revents & POLLIN) {
		ssize_t k = recv(fd, scratch, sizeof(scratch), MSG_DONTWAIT);

		return k == 0 || (k < 0 && errno != EAGAIN && errno != EINTR);
	}
	return 0;
}

static int handle_watch(struct conn *c, const char *body, size_t len)
{
	static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
				   "Transfer-Encoding: chunked\r\n\r\n";
	ef_msg reqs[WATCH_MAX_REQUESTS];
	int nreq = 0, rc, ok = 1;
	char err[512];
	size_t off = 0, used;
	struct wqueue q;
	pthread_condattr_t ca;
	node_wstream *ws = NULL;
	struct iovec iov;

	ef_arena_reset(c->arena);
	while (off < len && !only_space(body + off, len - off)) {
		if (nreq == WATCH_MAX_REQUESTS)
			return send_error(c, 3, 0, "too many requests in one watch body", 1);
		rc = gw_decode_watch_request(body + off, len - off, &used, c->arena, &reqs[nreq],
					     err, sizeof(err));
		if (rc)
			return send_error(c, ef_grpc_code(rc), 0, err[0] ? err : ef_strerror(rc),
					  1);
		off += used;
		nreq++;
	}
	if (!nreq)
		return send_error(c, 3, 0, "unexpected EOF", 1);

	memset(&q, 0, sizeof(q));
	pthread_mutex_init(&q.mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&q.cv, &ca);
	pthread_condattr_destroy(&ca);

	rc = node_wstream_open(gw.n, watch_cb, &q, &ws);
	for (int i = 0; !rc && i < nreq; i++) {
		reqs[i].id = ++c->next_id;
		rc = node_wstream_request(ws, &reqs[i]);
		if (rc && i > 0)
			rc = 0; /* the stream is open; later failures are per watch */
	}
	if (rc) {
		if (ws)
			node_wstream_close(ws);
		free_items(q.head);
		pthread_cond_destroy(&q.cv);
		pthread_mutex_destroy(&q.mu);
		return send_error(c, ef_grpc_code(rc), 0, ef_strerror(rc), 1);
	}

	{
		/* An idle stream would never notice a peer that vanished without
		 * a FIN: let TCP keepalive find it (about 2 minutes). */
		int one = 1, idle = 60, intvl = 10, cnt = 6;

		setsockopt(c->fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
		setsockopt(c->fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
		setsockopt(c->fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
		setsockopt(c->fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
	}
	iov.iov_base = (void *)head;
	iov.iov_len = sizeof(head) - 1;
	if (send_all(c->fd, &iov, 1))
		ok = 0;
	metrics_set(gw.m_watch_streams, atomic_fetch_add(&gw.n_watch_streams, 1) + 1);
	while (ok && !atomic_load(&gw.stopping)) {
		struct witem *batch, *it;
		struct iovec v[64];
		int nv = 0;

		pthread_mutex_lock(&q.mu);
		if (!q.head) {
			struct timespec ts = clock_after_ms(CLOCK_MONOTONIC, 500);

			pthread_cond_timedwait(&q.cv, &q.mu, &ts);
		}
		batch = q.head;
		q.head = q.tail = NULL;
		q.bytes = 0;
		pthread_mutex_unlock(&q.mu);

		for (it = batch; it && ok; it = it->next) {
			v[nv].iov_base = it->mem + it->off;
			v[nv].iov_len = it->len;
			if (++nv == 64 || !it->next) {
				if (send_all(c->fd, v, nv))
					ok = 0;
				nv = 0;
			}
		}
		free_items(batch);
		if (client_gone(c->fd))
			ok = 0;
	}
	node_wstream_close(ws);
	metrics_set(gw.m_watch_streams, atomic_fetch_sub(&gw.n_watch_streams, 1) - 1);
	free_items(q.head);
	pthread_cond_destroy(&q.cv);
	pthread_mutex_destroy(&q.mu);
	if (ok) {
		iov.iov_base = "0\r\n\r\n";
		iov.iov_len = 5;
		send_all(c->fd, &iov, 1);
	}
	return 200;
}

/* ------------------------------------------------------------------ */
/* Connections                                                          */

static int is_get_path(const char *path)
{
	return strcmp(path, "/health") == 0 || strcmp(path, "/readyz") == 0 ||
	       strcmp(path, "/livez") == 0 || strcmp(path, "/metrics") == 0;
}

/* Serve one request; returns 1 when the connection must close afterwards. */
static int serve(struct conn *c, struct http_req *r)
{
	double t0 = (clock_mono_ns() / 1e9);
	const char *body = c->buf + r->head_len, *verb = c->buf + r->method;
	char *path = c->buf + r->path, *q = strchr(path, '?');
	int label = L_OTHER, status, close = r->close, method;

	if (q)
		*q = 0;
	if (strcmp(verb, "GET") == 0) {
		if (strcmp(path, "/health") == 0) {
			label = L_HEALTH;
			status = handle_health(c, 0, close);
		} else if (strcmp(path, "/readyz") == 0) {
			label = L_READYZ;
			status = handle_health(c, 1, close);
		} else if (strcmp(path, "/livez") == 0) {
			label = L_LIVEZ;
			status = 200;
			send_response(c, 200, "application/json", "{\"live\":\"true\"}", 15, close);
		} else if (strcmp(path, "/metrics") == 0) {
			label = L_METRICS;
			status = handle_metrics(c, close);
		} else if (gw_route(path) >= 0) {
			status = send_error(c, 12, 405, "Method Not Allowed", close);
		} else {
			status = send_error(c, 5, 404, "Not Found", close);
		}
	} else if (strcmp(verb, "POST") == 0) {
		method = gw_route(path);
		if (method == GW_WATCH) {
			label = method;
			status = handle_watch(c, body, r->body_len);
			close = 1;
		} else if (method >= 0) {
			label = method;
			status = handle_unary(c, method, body, r->body_len, close);
		} else if (is_get_path(path)) {
			status = send_error(c, 12, 405, "Method Not Allowed", close);
		} else {
			status = send_error(c, 5, 404, "Not Found", close);
		}
	} else {
		status = send_error(c, 12, 405, "Method Not Allowed", close);
	}
	count_request(label, status, (clock_mono_ns() / 1e9) - t0);
	return close;
}

static void conn_free(struct conn *c)
{
	pthread_mutex_lock(&gw.mu);
	if (c->prev)
		c->prev->next = c->next;
	else if (gw.conns == c)
		gw.conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	gw.nconns--;
	metrics_set(gw.m_conns, gw.nconns);
	pthread_cond_broadcast(&gw.cv);
	pthread_mutex_unlock(&gw.mu);
	/* Closed only after leaving the list, so gateway_stop() never shuts
	 * down a descriptor number that has been reused. */
	close(c->fd);
	free(c->buf);
	ef_arena_free(c->arena);
	ef_wbuf_free(&c->out);
	free(c);
}

static void *conn_main(void *arg)
{
	struct conn *c = arg;
	struct http_req r;

	/* gRPC shares the port: a connection opening with the HTTP/2 preface
	 * goes to server/grpc/ with the bytes read so far. */
	while (grpcsrv_running()) {
		int h2 = grpcsrv_preface(c->buf, c->len);

		if (h2 == 0)
			break;
		if (h2 > 0) {
			grpcsrv_adopt(c->fd, c->buf, c->len);
			c->fd = -1;
			conn_free(c);
			return NULL;
		}
		if (conn_fill(c, clock_mono_ms() + IDLE_TIMEOUT_MS) <= 0) {
			conn_free(c);
			return NULL;
		}
	}
	while (!atomic_load(&gw.stopping)) {
		if (read_request(c, &r))
			break;
		if (serve(c, &r))
			break;
		consume(c, r.head_len + r.body_len);
	}
	conn_free(c);
	return NULL;
}

static void reject(int fd)
{
	static const char body[] =
		"{\"error\":\"too many connections to this member\","
		"\"message\":\"too many connections to this member\",\"code\":14}";
	char msg[512];
	int n;

	n = snprintf(msg, sizeof(msg),
		     "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
		     "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
		     sizeof(body) - 1, body);
	(void)!send(fd, msg, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
	close(fd);
}

static void *accept_main(void *arg)
{
	int lfd = gw.lfd[(intptr_t)arg];
	pthread_attr_t attr;

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, CONN_STACK_BYTES);
	while (!atomic_load(&gw.stopping)) {
		struct timeval tv = {WRITE_TIMEOUT_MS / 1000, 0};
		int one = 1, fd;
		struct conn *c;
		pthread_t t;

		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (atomic_load(&gw.stopping))
				break;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM)
				usleep(10000);
			continue;
		}
		pthread_mutex_lock(&gw.mu);
		if (atomic_load(&gw.stopping) || gw.nconns >= gw.max_conns) {
			pthread_mutex_unlock(&gw.mu);
			metrics_inc(gw.m_rejected);
			reject(fd);
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (c) {
			c->buf = malloc(CONN_BUF_INIT);
			c->arena = ef_arena_new();
		}
		if (!c || !c->buf || !c->arena) {
			pthread_mutex_unlock(&gw.mu);
			if (c) {
				free(c->buf);
				ef_arena_free(c->arena);
				free(c);
			}
			reject(fd);
			continue;
		}
		c->fd = fd;
		c->cap = CONN_BUF_INIT;
		ef_wbuf_init(&c->out);
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		c->next = gw.conns;
		if (gw.conns)
			gw.conns->prev = c;
		gw.conns = c;
		gw.nconns++;
		metrics_set(gw.m_conns, gw.nconns);
		pthread_mutex_unlock(&gw.mu);
		if (pthread_create(&t, &attr, conn_main, c)) {
			shutdown(fd, SHUT_RDWR);
			conn_free(c);
		}
	}
	pthread_attr_destroy(&attr);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Start and stop                                                       */

void gateway_set_limits(size_t max_request_bytes, int max_connections)
{
	if (max_request_bytes)
		gw.max_request_bytes = max_request_bytes;
	if (max_connections > 0)
		gw.max_conns = max_connections;
}

int gateway_port(int i)
{
	return i >= 0 && i < gw.nl ? gw.lport[i] : -1;
}

/* Bind and listen on one "http://HOST:PORT" URL. */
static int listen_url(const char *url, size_t n, int *fd_out, int *port_out, char *err,
		      size_t errlen)
{
	char hostport[256], *host, *port;
	struct addrinfo hints, *res = NULL, *ai;
	int fd = -1, one = 1, rc;

	if (n > 7 && strncmp(url, "http://", 7) == 0) {
		url += 7;
		n -= 7;
	} else {
		snprintf(err, errlen, "listen-http-urls: %.*s: only http://HOST:PORT is supported",
			 (int)n, url);
		return EF_E_INVALID;
	}
	while (n && url[n - 1] == '/')
		n--;
	if (n == 0 || n >= sizeof(hostport)) {
		snprintf(err, errlen, "listen-http-urls: bad address");
		return EF_E_INVALID;
	}
	memcpy(hostport, url, n);
	hostport[n] = 0;
	port = strrchr(hostport, ':');
	if (!port || (hostport[0] == '[' && port < strchr(hostport, ']'))) {
		snprintf(err, errlen, "listen-http-urls: %s: missing port", hostport);
		return EF_E_INVALID;
	}
	*port++ = 0;
	host = hostport;
	if (host[0] == '[') {
		host++;
		if (host[strlen(host) - 1] == ']')
			host[strlen(host) - 1] = 0;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	rc = getaddrinfo(*host ? host : NULL, port, &hints, &res);
	if (rc) {
		snprintf(err, errlen, "listen-http-urls: %s:%s: %s", host, port, gai_strerror(rc));
		return EF_E_INVALID;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 1024) == 0)
			break;
		close(fd);
		fd = -1;
	}
	if (fd < 0) {
		snprintf(err, errlen, "listen-http-urls: cannot listen on %s:%s: %s", host, port,
			 strerror(errno));
		freeaddrinfo(res);
		return EF_E_IO;
	}
	freeaddrinfo(res);
	{
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);

		*port_out = -1;
		if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
			if (ss.ss_family == AF_INET)
				*port_out = ntohs(((struct sockaddr_in *)&ss)->sin_port);
			else if (ss.ss_family == AF_INET6)
				*port_out = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
		}
	}
	*fd_out = fd;
	return 0;
}

static void register_metrics(void)
{
	static int done;

	if (done)
		return;
	done = 1;
	for (int i = 0; i < L__COUNT; i++) {
		char labels[64];

		snprintf(labels, sizeof(labels), "method=\"%s\"", label_names[i]);
		gw.m_dur[i] = metrics_histogram("etcfs_http_request_duration_seconds",
						"HTTP/JSON gateway request latency by method.",
						labels, 0.0001, 2, 18);
	}
	gw.m_conns = metrics_gauge("etcfs_http_connections", "Open HTTP gateway connections.", "");
	gw.m_rejected =
		metrics_counter("etcfs_http_connections_rejected_total",
				"HTTP connections refused because the cap was reached.", "");
	gw.m_timeouts = metrics_counter("etcfs_http_timeouts_total",
					"HTTP connections closed because a read timed out.", "");
	gw.m_watch_streams =
		metrics_gauge("etcfs_http_watch_streams", "Open /v3/watch streams.", "");
	gw.m_watch_events = metrics_counter("etcfs_http_watch_messages_total",
					    "Watch responses queued to /v3/watch streams.", "");
}

int gateway_start(node *n, const char *urls, char *err, size_t errlen)
{
	const char *p = urls, *comma;
	int rc;

	if (gw.running) {
		snprintf(err, errlen, "gateway already running");
		return EF_E_INVALID;
	}
	gw.n = n;
	gw.nl = 0;
	atomic_store(&gw.stopping, 0);
	gw.max_body = 2 * gw.max_request_bytes + 64 * 1024;
	register_metrics();
	while (p && *p) {
		size_t len;

		comma = strchr(p, ',');
		len = comma ? (size_t)(comma - p) : strlen(p);
		if (len) {
			if (gw.nl == MAX_LISTENERS) {
				snprintf(err, errlen, "listen-http-urls: at most %d URLs",
					 MAX_LISTENERS);
				rc = EF_E_INVALID;
				goto fail;
			}
			rc = listen_url(p, len, &gw.lfd[gw.nl], &gw.lport[gw.nl], err, errlen);
			if (rc)
				goto fail;
			gw.nl++;
		}
		p = comma ? comma + 1 : NULL;
	}
	if (!gw.nl) {
		snprintf(err, errlen, "listen-http-urls: no URL given");
		return EF_E_INVALID;
	}
	for (int i = 0; i < gw.nl; i++) {
		if (pthread_create(&gw.acc[i], NULL, accept_main, (void *)(intptr_t)i)) {
			snprintf(err, errlen, "cannot start the HTTP accept thread");
			atomic_store(&gw.stopping, 1);
			for (int j = 0; j < gw.nl; j++)
				shutdown(gw.lfd[j], SHUT_RDWR);
			for (int j = 0; j < i; j++)
				pthread_join(gw.acc[j], NULL);
			rc = EF_E_NOMEM;
			goto fail;
		}
	}
	gw.running = 1;
	return 0;
fail:
	for (int i = 0; i < gw.nl; i++)
		close(gw.lfd[i]);
	gw.nl = 0;
	return rc;
}

void gateway_stop(void)
{
	int64_t deadline;

	if (!gw.running)
		return;
	atomic_store(&gw.stopping, 1);
	for (int i = 0; i < gw.nl; i++)
		shutdown(gw.lfd[i], SHUT_RDWR);
	for (int i = 0; i < gw.nl; i++) {
		pthread_join(gw.acc[i], NULL);
		close(gw.lfd[i]);
	}
	/* Wake every connection thread; each frees itself.  A thread inside
	 * node_call() returns when the node answers or times out. */
	deadline = clock_mono_ms() + 60000;
	pthread_mutex_lock(&gw.mu);
	for (struct conn *c = gw.conns; c; c = c->next)
		shutdown(c->fd, SHUT_RDWR);
	while (gw.nconns > 0 && clock_mono_ms() < deadline) {
		struct timespec ts = clock_after_ms(CLOCK_REALTIME, 100);

		pthread_cond_timedwait(&gw.cv, &gw.mu, &ts);
	}
	pthread_mutex_unlock(&gw.mu);
	gw.nl = 0;
	gw.running = 0;
}
