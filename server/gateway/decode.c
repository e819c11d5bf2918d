/*
 * decode.c - etcd's JSON request bodies into ef_msg, one decoder per request
 * kind.
 *
 * jansson parses (duplicate keys rejected); bytes fields are standard base64
 * decoded straight into the request arena; enum fields are accepted as names
 * or numbers and integers as JSON numbers or strings, as jsonpb accepts
 * them; a JSON null is an absent field.  Error messages follow Go's
 * encoding/json wording where it is cheap, since clients match on them.
 * Request-level validation (empty key, limits) is node_call()'s.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "../../common/b64.h"
#include "gateway_int.h"

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

int gw_only_space(const char *p, size_t n)
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
	if (gw_only_space(body, len))
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
	if (gw_only_space(body, len))
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
