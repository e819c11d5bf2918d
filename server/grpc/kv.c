/*
 * kv.c - the KV service: Range, Put, DeleteRange, Txn, Compact.  Each runs
 * on a worker: unpack, convert, node_call, convert back, queue.
 */
#include <string.h>

#include "grpc_int.h"

#define UNPACK(call, T, desc) ((T *)gcall_decode((call), &(desc)))

void gkv_range(struct gcall *c)
{
	Etcdserverpb__RangeRequest *r =
		UNPACK(c, Etcdserverpb__RangeRequest, etcdserverpb__range_request__descriptor);
	ef_msg req = {.type = EF_MSG_RANGE}, resp;

	if (!r)
		return;
	if (gconv_range_req(r, &req.u.range)) {
		gcall_fail(c, GS_INVALID_ARGUMENT, "etcdserver: invalid sort option");
		return;
	}
	if (gcall_node(c, &req, &resp))
		return;
	gcall_reply(c, (ProtobufCMessage *)gconv_range_resp(c->arena, &resp, &resp.u.range_resp));
}

void gkv_put(struct gcall *c)
{
	Etcdserverpb__PutRequest *r =
		UNPACK(c, Etcdserverpb__PutRequest, etcdserverpb__put_request__descriptor);
	ef_msg req = {.type = EF_MSG_PUT}, resp;

	if (!r)
		return;
	gconv_put_req(r, &req.u.put);
	if (gcall_node(c, &req, &resp))
		return;
	gcall_reply(c, (ProtobufCMessage *)gconv_put_resp(c->arena, &resp, &resp.u.put_resp));
}

void gkv_delete(struct gcall *c)
{
	Etcdserverpb__DeleteRangeRequest *r =
		UNPACK(c, Etcdserverpb__DeleteRangeRequest,
		       etcdserverpb__delete_range_request__descriptor);
	ef_msg req = {.type = EF_MSG_DELETE}, resp;

	if (!r)
		return;
	gconv_delete_req(r, &req.u.del);
	if (gcall_node(c, &req, &resp))
		return;
	gcall_reply(c, (ProtobufCMessage *)gconv_delete_resp(c->arena, &resp, &resp.u.del_resp));
}

void gkv_txn(struct gcall *c)
{
	Etcdserverpb__TxnRequest *r =
		UNPACK(c, Etcdserverpb__TxnRequest, etcdserverpb__txn_request__descriptor);
	ef_msg req = {.type = EF_MSG_TXN}, resp;
	int rc;

	if (!r)
		return;
	rc = gconv_txn_req(c->arena, r, &req.u.txn);
	if (rc) {
		gcall_fail_code(c, rc, NULL);
		return;
	}
	if (gcall_node(c, &req, &resp))
		return;
	gcall_reply(c, (ProtobufCMessage *)gconv_txn_resp(c->arena, &resp));
}

void gkv_compact(struct gcall *c)
{
	Etcdserverpb__CompactionRequest *r = UNPACK(c, Etcdserverpb__CompactionRequest,
						    etcdserverpb__compaction_request__descriptor);
	ef_msg req = {.type = EF_MSG_COMPACT}, resp;
	Etcdserverpb__CompactionResponse o = ETCDSERVERPB__COMPACTION_RESPONSE__INIT;
	Etcdserverpb__ResponseHeader h;

	if (!r)
		return;
	req.u.compact.revision = r->revision;
	req.u.compact.physical = r->physical;
	if (gcall_node(c, &req, &resp))
		return;
	gconv_header(&h, &resp.hdr);
	o.header = &h;
	gcall_reply(c, &o.base);
}
