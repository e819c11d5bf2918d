/*
 * maint.c - Maintenance, Auth and grpc.health.v1 methods: what the
 * member can already do is served, the rest is Unimplemented (dispatch.c).
 *
 *   Status      the node's status; version "3.4.0" so that clientv3 enables
 *               the 3.4 features etcfs has (RequestProgress, fragment...)
 *   Alarm       GET lists no alarm (etcfs raises none: a full backend fails
 *               writes with "database space exceeded" instead); ACTIVATE and
 *               DEACTIVATE answer the same empty list, as etcd does for an
 *               alarm that is not raised
 *   Defragment  LMDB reuses freed pages in place, so there is nothing to
 *               compact: answered with a header, like etcd after a defrag
 *   Hash(KV)    CRC32C of the key-values visible at a revision (hash_at)
 *   Auth        as etcd 3.4 with auth disabled: Authenticate fails with
 *               "authentication is not enabled", AuthDisable succeeds, the
 *               user and role lists are empty
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grpc_int.h"
#include "../wal.h"

#define UNPACK(call, T, desc) ((T *)gcall_decode((call), &(desc)))

void gmaint_status(struct gcall *c)
{
	ef_msg req = {.type = EF_MSG_STATUS}, resp;
	Etcdserverpb__StatusResponse o = ETCDSERVERPB__STATUS_RESPONSE__INIT;
	Etcdserverpb__ResponseHeader h;
	const ef_status_resp *s;
	char version[64], errbuf[256], *errs[1] = {errbuf};

	if (!UNPACK(c, Etcdserverpb__StatusRequest, etcdserverpb__status_request__descriptor))
		return;
	if (gcall_node(c, &req, &resp))
		return;
	s = &resp.u.status_resp;
	gconv_header(&h, &resp.hdr);
	o.header = &h;
	snprintf(version, sizeof(version), "%.*s", (int)s->version.n, (const char *)s->version.p);
	o.version = version;
	o.dbsize = s->db_size;
	o.dbsizeinuse = s->db_size_in_use;
	o.leader = s->leader;
	o.raftindex = s->raft_index;
	o.raftterm = s->raft_term;
	o.raftappliedindex = s->raft_applied_index;
	o.islearner = s->is_learner;
	if (s->errors.n) {
		snprintf(errbuf, sizeof(errbuf), "%.*s", (int)s->errors.n,
			 (const char *)s->errors.p);
		o.errors = errs;
		o.n_errors = 1;
	}
	gcall_reply(c, &o.base);
}

void gmaint_alarm(struct gcall *c)
{
	Etcdserverpb__AlarmResponse o = ETCDSERVERPB__ALARM_RESPONSE__INIT;
	Etcdserverpb__ResponseHeader h;

	if (!UNPACK(c, Etcdserverpb__AlarmRequest, etcdserverpb__alarm_request__descriptor))
		return;
	gconv_status_header(&h);
	o.header = &h;
	gcall_reply(c, &o.base);
}

void gmaint_defrag(struct gcall *c)
{
	Etcdserverpb__DefragmentResponse o = ETCDSERVERPB__DEFRAGMENT_RESPONSE__INIT;
	Etcdserverpb__ResponseHeader h;

	if (!UNPACK(c, Etcdserverpb__DefragmentRequest,
		    etcdserverpb__defragment_request__descriptor))
		return;
	gconv_status_header(&h);
	o.header = &h;
	gcall_reply(c, &o.base);
}

void gmaint_move_leader(struct gcall *c)
{
	Etcdserverpb__MoveLeaderRequest *r = UNPACK(c, Etcdserverpb__MoveLeaderRequest,
						    etcdserverpb__move_leader_request__descriptor);
	ef_msg req = {.type = EF_MSG_MOVE_LEADER}, resp;
	Etcdserverpb__MoveLeaderResponse o = ETCDSERVERPB__MOVE_LEADER_RESPONSE__INIT;
	Etcdserverpb__ResponseHeader h;

	if (!r)
		return;
	req.u.move_leader.target_id = r->targetid;
	if (gcall_node(c, &req, &resp))
		return;
	gconv_header(&h, &resp.hdr);
	o.header = &h;
	gcall_reply(c, &o.base);
}

void gauth_authenticate(struct gcall *c)
{
	if (!UNPACK(c, Etcdserverpb__AuthenticateRequest,
		    etcdserverpb__authenticate_request__descriptor))
		return;
	gcall_fail(c, GS_FAILED_PRECONDITION, "etcdserver: authentication is not enabled");
}

void gauth_disable(struct gcall *c)
{
	Etcdserverpb__AuthDisableResponse o = ETCDSERVERPB__AUTH_DISABLE_RESPONSE__INIT;
	Etcdserverpb__ResponseHeader h;

	if (!UNPACK(c, Etcdserverpb__AuthDisableRequest,
		    etcdserverpb__auth_disable_request__descriptor))
		return;
	gconv_status_header(&h);
	o.header = &h;
	gcall_reply(c, &o.base);
}

void gauth_user_list(struct gcall *c)
{
	Etcdserverpb__AuthUserListResponse o = ETCDSERVERPB__AUTH_USER_LIST_RESPONSE__INIT;
	Etcdserverpb__ResponseHeader h;

	if (!UNPACK(c, Etcdserverpb__AuthUserListRequest,
		    etcdserverpb__auth_user_list_request__descriptor))
		return;
	gconv_status_header(&h);
	o.header = &h;
	gcall_reply(c, &o.base);
}

void gauth_role_list(struct gcall *c)
{
	Etcdserverpb__AuthRoleListResponse o = ETCDSERVERPB__AUTH_ROLE_LIST_RESPONSE__INIT;
	Etcdserverpb__ResponseHeader h;

	if (!UNPACK(c, Etcdserverpb__AuthRoleListRequest,
		    etcdserverpb__auth_role_list_request__descriptor))
		return;
	gconv_status_header(&h);
	o.header = &h;
	gcall_reply(c, &o.base);
}

void ghealth_check(struct gcall *c)
{
	Grpc__Health__V1__HealthCheckResponse o = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;

	if (!UNPACK(c, Grpc__Health__V1__HealthCheckRequest,
		    grpc__health__v1__health_check_request__descriptor))
		return;
	o.status = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
	gcall_reply(c, &o.base);
}

/* ------------------------------------------------------------------ */
/* Hash, HashKV                                                         */

/* CRC32C of every key-value (key, value, revisions, version, lease) at
 * revision rev (0: current), in key order.  etcd hashes its bolt rows of
 * every revision since the compaction; etcfs hashes the visible state at
 * the revision, which serves the same purpose (members whose hashes at
 * one revision differ have diverged) but gives other numbers than etcd. */
static int hash_at(struct gcall *c, int64_t rev, uint32_t *hash, ef_msg *resp)
{
	static const uint8_t zero = 0;
	ef_msg req = {.type = EF_MSG_RANGE};
	uint32_t h = 0;

	req.u.range.key.p = &zero;
	req.u.range.key.n = 1;
	req.u.range.range_end.p = &zero;
	req.u.range.range_end.n = 1;
	req.u.range.revision = rev;
	req.u.range.serializable = 1;
	if (gcall_node(c, &req, resp))
		return -1;
	for (uint32_t i = 0; i < resp->u.range_resp.n_kvs; i++) {
		const ef_kv *kv = &resp->u.range_resp.kvs[i];
		uint8_t num[32];

		h = ef_crc32c(h, kv->key.p, kv->key.n);
		h = ef_crc32c(h, kv->value.p, kv->value.n);
		ef_be64(num, (uint64_t)kv->create_revision);
		ef_be64(num + 8, (uint64_t)kv->mod_revision);
		ef_be64(num + 16, (uint64_t)kv->version);
		ef_be64(num + 24, (uint64_t)kv->lease);
		h = ef_crc32c(h, num, sizeof(num));
	}
	*hash = h;
	return 0;
}

void gmaint_hashkv(struct gcall *c)
{
	Etcdserverpb__HashKVRequest *r =
		UNPACK(c, Etcdserverpb__HashKVRequest, etcdserverpb__hash_kvrequest__descriptor);
	Etcdserverpb__HashKVResponse o = ETCDSERVERPB__HASH_KVRESPONSE__INIT;
	Etcdserverpb__ResponseHeader h;
	node_status st;
	ef_msg resp;

	if (!r || hash_at(c, r->revision, &o.hash, &resp))
		return;
	node_get_status(grpcsrv.n, &st);
	gconv_header(&h, &resp.hdr);
	o.header = &h;
	o.compact_revision = st.compact_revision ? st.compact_revision : -1; /* as etcd */
	gcall_reply(c, &o.base);
}

void gmaint_hash(struct gcall *c)
{
	Etcdserverpb__HashResponse o = ETCDSERVERPB__HASH_RESPONSE__INIT;
	Etcdserverpb__ResponseHeader h;
	ef_msg resp;

	if (!UNPACK(c, Etcdserverpb__HashRequest, etcdserverpb__hash_request__descriptor) ||
	    hash_at(c, 0, &o.hash, &resp))
		return;
	gconv_header(&h, &resp.hdr);
	o.header = &h;
	gcall_reply(c, &o.base);
}
