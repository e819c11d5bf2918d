/*
 * convert.c - etcdserverpb messages <-> ef_msg, and the call helpers every
 * unary handler uses.
 *
 * Requests are unpacked by protobuf-c into the call's arena (an allocator
 * over ef_arena, so one ef_arena_free releases everything) and their bytes
 * fields are pointed at, not copied, by the ef_msg.  Responses are built in
 * the same arena and packed straight into the stream's queue.  Errors keep
 * etcd's gRPC code and text: ef_grpc_code() of the one error table, and the
 * node's message when it has one (node_call writes etcd's wording).
 */
#include <stdio.h>
#include <string.h>

#include "grpc_int.h"

/* ------------------------------------------------------------------ */
/* Headers and key-values                                               */

void gconv_header(Etcdserverpb__ResponseHeader *h, const ef_resp_header *r)
{
	etcdserverpb__response_header__init(h);
	h->cluster_id = r->cluster_id;
	h->member_id = r->member_id;
	h->revision = r->revision;
	h->raft_term = r->raft_term;
}

void gconv_status_header(Etcdserverpb__ResponseHeader *h)
{
	node_status st;
	ef_resp_header r;

	node_get_status(grpcsrv.n, &st);
	r.cluster_id = st.cluster_id;
	r.member_id = st.member_id;
	r.revision = st.revision;
	r.raft_term = st.term;
	gconv_header(h, &r);
}

static ProtobufCBinaryData pbytes(ef_buf b)
{
	ProtobufCBinaryData d = {b.n, (uint8_t *)b.p};

	return d;
}

ef_buf gconv_bytes(ProtobufCBinaryData b)
{
	ef_buf r = {b.data, (uint32_t)b.len};

	return r;
}

Mvccpb__KeyValue *gconv_kv(ef_arena *a, const ef_kv *kv)
{
	Mvccpb__KeyValue *o = ef_arena_alloc(a, sizeof(*o));

	if (!o)
		return NULL;
	mvccpb__key_value__init(o);
	o->key = pbytes(kv->key);
	o->value = pbytes(kv->value);
	o->create_revision = kv->create_revision;
	o->mod_revision = kv->mod_revision;
	o->version = kv->version;
	o->lease = kv->lease;
	return o;
}

Mvccpb__KeyValue **gconv_kvs(ef_arena *a, const ef_kv *kvs, uint32_t n)
{
	Mvccpb__KeyValue **v = ef_arena_alloc(a, (n ? n : 1) * sizeof(*v));

	if (!v)
		return NULL;
	for (uint32_t i = 0; i < n; i++)
		if (!(v[i] = gconv_kv(a, &kvs[i])))
			return NULL;
	return v;
}

/* ------------------------------------------------------------------ */
/* Requests                                                             */

int gconv_range_req(const Etcdserverpb__RangeRequest *r, ef_range_req *o)
{
	memset(o, 0, sizeof(*o));
	o->key = gconv_bytes(r->key);
	o->range_end = gconv_bytes(r->range_end);
	o->limit = r->limit;
	o->revision = r->revision;
	if ((unsigned)r->sort_order > EF_SORT_DESCEND || (unsigned)r->sort_target > EF_SORT_VALUE)
		return EF_E_INVALID;
	o->sort_order = (uint8_t)r->sort_order;
	o->sort_target = (uint8_t)r->sort_target;
	o->serializable = r->serializable;
	o->keys_only = r->keys_only;
	o->count_only = r->count_only;
	o->min_mod_revision = r->min_mod_revision;
	o->max_mod_revision = r->max_mod_revision;
	o->min_create_revision = r->min_create_revision;
	o->max_create_revision = r->max_create_revision;
	return 0;
}

void gconv_put_req(const Etcdserverpb__PutRequest *r, ef_put_req *o)
{
	memset(o, 0, sizeof(*o));
	o->key = gconv_bytes(r->key);
	o->value = gconv_bytes(r->value);
	o->lease = r->lease;
	o->prev_kv = r->prev_kv;
	o->ignore_value = r->ignore_value;
	o->ignore_lease = r->ignore_lease;
}

void gconv_delete_req(const Etcdserverpb__DeleteRangeRequest *r, ef_delete_req *o)
{
	memset(o, 0, sizeof(*o));
	o->key = gconv_bytes(r->key);
	o->range_end = gconv_bytes(r->range_end);
	o->prev_kv = r->prev_kv;
}

static int conv_ops(ef_arena *a, Etcdserverpb__RequestOp **in, size_t n, ef_op **out,
		    uint32_t *n_out)
{
	ef_op *ops = ef_arena_alloc(a, (n ? n : 1) * sizeof(*ops));

	if (!ops)
		return EF_E_NOMEM;
	for (size_t i = 0; i < n; i++) {
		switch (in[i]->request_case) {
		case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE:
			ops[i].type = EF_OP_RANGE;
			if (gconv_range_req(in[i]->request_range, &ops[i].u.range))
				return EF_E_INVALID;
			break;
		case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT:
			ops[i].type = EF_OP_PUT;
			gconv_put_req(in[i]->request_put, &ops[i].u.put);
			break;
		case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE:
			ops[i].type = EF_OP_DELETE;
			gconv_delete_req(in[i]->request_delete_range, &ops[i].u.del);
			break;
		case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_TXN:
			/* the store has no nested transactions yet */
			return EF_E_NESTED_TXN;
		default:
			/* etcd: an empty RequestOp is an empty range of key "" */
			ops[i].type = EF_OP_RANGE;
			memset(&ops[i].u.range, 0, sizeof(ops[i].u.range));
			break;
		}
	}
	*out = ops;
	*n_out = (uint32_t)n;
	return 0;
}

int gconv_txn_req(ef_arena *a, const Etcdserverpb__TxnRequest *r, ef_txn_req *o)
{
	int rc;

	memset(o, 0, sizeof(*o));
	o->cmp = ef_arena_alloc(a, (r->n_compare ? r->n_compare : 1) * sizeof(*o->cmp));
	if (!o->cmp)
		return EF_E_NOMEM;
	for (size_t i = 0; i < r->n_compare; i++) {
		const Etcdserverpb__Compare *c = r->compare[i];
		ef_compare *d = &o->cmp[i];

		if ((unsigned)c->result > EF_CMP_NOT_EQUAL || (unsigned)c->target > EF_CMP_LEASE)
			return EF_E_INVALID;
		d->result = (uint8_t)c->result;
		d->target = (uint8_t)c->target;
		d->key = gconv_bytes(c->key);
		d->range_end = gconv_bytes(c->range_end);
		switch (c->target_union_case) {
		case ETCDSERVERPB__COMPARE__TARGET_UNION_VERSION:
			d->number = c->version;
			break;
		case ETCDSERVERPB__COMPARE__TARGET_UNION_CREATE_REVISION:
			d->number = c->create_revision;
			break;
		case ETCDSERVERPB__COMPARE__TARGET_UNION_MOD_REVISION:
			d->number = c->mod_revision;
			break;
		case ETCDSERVERPB__COMPARE__TARGET_UNION_LEASE:
			d->number = c->lease;
			break;
		case ETCDSERVERPB__COMPARE__TARGET_UNION_VALUE:
			d->value = gconv_bytes(c->value);
			break;
		default:
			break;
		}
	}
	o->n_cmp = (uint32_t)r->n_compare;
	rc = conv_ops(a, r->success, r->n_success, &o->success, &o->n_success);
	if (!rc)
		rc = conv_ops(a, r->failure, r->n_failure, &o->failure, &o->n_failure);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Responses                                                            */

#define NEW(a, T, init)                                 \
	({                                              \
		T *p_ = ef_arena_alloc((a), sizeof(T)); \
		if (p_)                                 \
			init(p_);                       \
		p_;                                     \
	})

static Etcdserverpb__ResponseHeader *hdr(ef_arena *a, const ef_msg *m)
{
	Etcdserverpb__ResponseHeader *h = ef_arena_alloc(a, sizeof(*h));

	if (h)
		gconv_header(h, &m->hdr);
	return h;
}

Etcdserverpb__RangeResponse *gconv_range_resp(ef_arena *a, const ef_msg *m, const ef_range_resp *r)
{
	Etcdserverpb__RangeResponse *o =
		NEW(a, Etcdserverpb__RangeResponse, etcdserverpb__range_response__init);

	if (!o)
		return NULL;
	o->header = hdr(a, m);
	o->kvs = gconv_kvs(a, r->kvs, r->n_kvs);
	o->n_kvs = r->n_kvs;
	o->more = r->more;
	o->count = r->count;
	return o;
}

Etcdserverpb__PutResponse *gconv_put_resp(ef_arena *a, const ef_msg *m, const ef_put_resp *r)
{
	Etcdserverpb__PutResponse *o =
		NEW(a, Etcdserverpb__PutResponse, etcdserverpb__put_response__init);

	if (!o)
		return NULL;
	o->header = hdr(a, m);
	if (r->prev_kv)
		o->prev_kv = gconv_kv(a, r->prev_kv);
	return o;
}

Etcdserverpb__DeleteRangeResponse *gconv_delete_resp(ef_arena *a, const ef_msg *m,
						     const ef_delete_resp *r)
{
	Etcdserverpb__DeleteRangeResponse *o = NEW(a, Etcdserverpb__DeleteRangeResponse,
						   etcdserverpb__delete_range_response__init);

	if (!o)
		return NULL;
	o->header = hdr(a, m);
	o->deleted = r->deleted;
	o->prev_kvs = gconv_kvs(a, r->prev_kvs, r->n_prev_kvs);
	o->n_prev_kvs = r->n_prev_kvs;
	return o;
}

Etcdserverpb__TxnResponse *gconv_txn_resp(ef_arena *a, const ef_msg *m)
{
	const ef_txn_resp *t = &m->u.txn_resp;
	Etcdserverpb__TxnResponse *o =
		NEW(a, Etcdserverpb__TxnResponse, etcdserverpb__txn_response__init);
	ef_msg sub = *m;

	if (!o)
		return NULL;
	o->header = hdr(a, m);
	o->succeeded = t->succeeded;
	o->responses = ef_arena_alloc(a, (t->n_responses ? t->n_responses : 1) * sizeof(void *));
	if (!o->responses)
		return NULL;
	o->n_responses = t->n_responses;
	for (uint32_t i = 0; i < t->n_responses; i++) {
		const ef_op_resp *r = &t->responses[i];
		Etcdserverpb__ResponseOp *op =
			NEW(a, Etcdserverpb__ResponseOp, etcdserverpb__response_op__init);

		if (!op)
			return NULL;
		/* etcd fills an inner response's header with the txn's revision only */
		memset(&sub.hdr, 0, sizeof(sub.hdr));
		sub.hdr.revision = m->hdr.revision;
		switch (r->type) {
		case EF_OP_RANGE:
			op->response_case = ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_RANGE;
			op->response_range = gconv_range_resp(a, &sub, &r->u.range);
			break;
		case EF_OP_PUT:
			op->response_case = ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_PUT;
			op->response_put = gconv_put_resp(a, &sub, &r->u.put);
			break;
		default:
			op->response_case =
				ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_DELETE_RANGE;
			op->response_delete_range = gconv_delete_resp(a, &sub, &r->u.del);
			break;
		}
		o->responses[i] = op;
	}
	return o;
}

Etcdserverpb__WatchResponse *gconv_watch_resp(ef_arena *a, const ef_msg *m)
{
	const ef_watch_resp *w = &m->u.watch_resp;
	Etcdserverpb__WatchResponse *o =
		NEW(a, Etcdserverpb__WatchResponse, etcdserverpb__watch_response__init);

	if (!o)
		return NULL;
	o->header = hdr(a, m);
	o->watch_id = w->watch_id;
	o->created = w->created;
	o->canceled = w->canceled;
	o->compact_revision = w->compact_revision;
	if (w->cancel_reason.n) {
		char *s = ef_arena_alloc(a, w->cancel_reason.n + 1);

		if (s)
			memcpy(s, w->cancel_reason.p, w->cancel_reason.n);
		o->cancel_reason = s;
	}
	o->events = ef_arena_alloc(a, (w->n_events ? w->n_events : 1) * sizeof(void *));
	if (!o->events)
		return NULL;
	o->n_events = w->n_events;
	for (uint32_t i = 0; i < w->n_events; i++) {
		Mvccpb__Event *e = NEW(a, Mvccpb__Event, mvccpb__event__init);

		if (!e)
			return NULL;
		e->type = w->events[i].type == EF_EVENT_DELETE ? MVCCPB__EVENT__EVENT_TYPE__DELETE
							       : MVCCPB__EVENT__EVENT_TYPE__PUT;
		e->kv = gconv_kv(a, &w->events[i].kv);
		if (w->events[i].prev_kv)
			e->prev_kv = gconv_kv(a, w->events[i].prev_kv);
		o->events[i] = e;
	}
	return o;
}

/* ------------------------------------------------------------------ */
/* Calls                                                                */

static void *arena_alloc(void *ud, size_t n)
{
	return ef_arena_alloc(ud, n);
}

static void arena_free(void *ud, void *p)
{
}

void *gcall_decode(struct gcall *call, const ProtobufCMessageDescriptor *d)
{
	void *m;

	call->alloc.alloc = arena_alloc;
	call->alloc.free = arena_free;
	call->alloc.allocator_data = call->arena;
	m = protobuf_c_message_unpack(d, &call->alloc, call->len, call->body);
	if (!m) {
		char msg[200];

		snprintf(msg, sizeof(msg),
			 "grpc: error unmarshalling request: malformed %s message", d->name);
		gcall_fail(call, GS_INTERNAL, msg);
	}
	return m;
}

void gcall_reply(struct gcall *call, const ProtobufCMessage *m)
{
	if (!m) {
		gcall_fail(call, GS_RESOURCE_EXHAUSTED, ef_strerror(EF_E_NOMEM));
		return;
	}
	gout_push_msg(call->out, m, 0);
	gout_end(call->out, GS_OK, NULL);
}

void gcall_fail(struct gcall *call, int status, const char *msg)
{
	gout_end(call->out, status, msg);
}

void gcall_fail_code(struct gcall *call, int rc, const ef_msg *resp)
{
	char msg[256];
	const char *text = ef_strerror(rc);

	if (rc == EF_E_NOT_FOUND) {
		/* etcd's ErrGRPCKeyNotFound (put with ignore_value/ignore_lease) */
		gcall_fail(call, GS_INVALID_ARGUMENT, "etcdserver: key not found");
		return;
	}
	/* clientv3 recognises etcd's errors by their exact text: an error that
	 * has one is sent with it, not with the node's detailed message. */
	if (strncmp(text, "etcdserver: ", 12) == 0)
		snprintf(msg, sizeof(msg), "%s", text);
	else if (resp && resp->type == EF_MSG_ERROR && resp->u.error.message.n)
		snprintf(msg, sizeof(msg), "%.*s", (int)resp->u.error.message.n,
			 (const char *)resp->u.error.message.p);
	else
		snprintf(msg, sizeof(msg), "%s", ef_strerror(rc));
	gcall_fail(call, ef_grpc_code(rc), msg);
}

int gcall_node(struct gcall *call, const ef_msg *req, ef_msg *resp)
{
	int rc;

	memset(resp, 0, sizeof(*resp));
	rc = node_call(grpcsrv.n, req, resp, call->arena);
	if (rc)
		gcall_fail_code(call, rc, resp);
	return rc;
}
