/*
 * dispatch.c - the method table: every method of etcd 3.4's services and of
 * grpc.health.v1, by :path.  A method etcfs cannot serve yet answers
 * Unimplemented with grpc-go's text for a registered method that has no
 * implementation; an unknown service or method gets grpc-go's "unknown
 * service" / "unknown method" texts (conn.c).
 */
#include <stdio.h>
#include <string.h>

#include "grpc_int.h"

/* grpc-go's text for a registered method the server does not serve (yet):
 * clients show it as is.  Snapshot and the Auth methods beyond the
 * auth-disabled answers get it until their issues land. */
static void unimplemented_text(const char *path, char *m, size_t cap)
{
	const char *slash = strrchr(path, '/');

	snprintf(m, cap, "method %s not implemented", slash ? slash + 1 : path);
}

static void unimplemented(struct gcall *c)
{
	char m[160];

	unimplemented_text(c->m->path, m, sizeof m);
	gcall_fail(c, GS_UNIMPLEMENTED, m);
}

static int unimplemented_stream(struct gstream *s)
{
	char m[160];

	unimplemented_text(s->m->path, m, sizeof m);
	gstream_fail(s, GS_UNIMPLEMENTED, m);
	return -1;
}

#define U(p, fn)                       \
	{                              \
		.path = p, .unary = fn \
	}
#define BIDI(p, pre)                                                                   \
	{                                                                              \
		.path = p, .server_stream = 1, .client_stream = 1, .open = pre##_open, \
		.msg = pre##_msg, .close = pre##_close                                 \
	}

static const struct gmethod methods[] = {
	U("/etcdserverpb.KV/Range", gkv_range),
	U("/etcdserverpb.KV/Put", gkv_put),
	U("/etcdserverpb.KV/DeleteRange", gkv_delete),
	U("/etcdserverpb.KV/Txn", gkv_txn),
	U("/etcdserverpb.KV/Compact", gkv_compact),
	BIDI("/etcdserverpb.Watch/Watch", gwatch),
	U("/etcdserverpb.Lease/LeaseGrant", glease_grant),
	U("/etcdserverpb.Lease/LeaseRevoke", glease_revoke),
	/* as etcd: the keep-alive stream ends when the client ends its side,
	 * a watch stream stays open */
	{"/etcdserverpb.Lease/LeaseKeepAlive", 1, 1, NULL, glease_ka_open, glease_ka_msg,
	 glease_ka_close, glease_ka_half_close},
	U("/etcdserverpb.Lease/LeaseTimeToLive", glease_ttl),
	U("/etcdserverpb.Lease/LeaseLeases", glease_leases),
	U("/etcdserverpb.Cluster/MemberAdd", gcluster_member_add),
	U("/etcdserverpb.Cluster/MemberRemove", gcluster_member_remove),
	U("/etcdserverpb.Cluster/MemberUpdate", gcluster_member_update),
	U("/etcdserverpb.Cluster/MemberList", gcluster_member_list),
	U("/etcdserverpb.Cluster/MemberPromote", gcluster_member_promote),
	U("/etcdserverpb.Maintenance/Alarm", gmaint_alarm),
	U("/etcdserverpb.Maintenance/Status", gmaint_status),
	U("/etcdserverpb.Maintenance/Defragment", gmaint_defrag),
	U("/etcdserverpb.Maintenance/Hash", gmaint_hash),
	U("/etcdserverpb.Maintenance/HashKV", gmaint_hashkv),
	{"/etcdserverpb.Maintenance/Snapshot", 1, 0, NULL, unimplemented_stream, NULL, NULL, NULL},
	U("/etcdserverpb.Maintenance/MoveLeader", gmaint_move_leader),
	U("/etcdserverpb.Auth/AuthEnable", unimplemented),
	U("/etcdserverpb.Auth/AuthDisable", gauth_disable),
	U("/etcdserverpb.Auth/Authenticate", gauth_authenticate),
	U("/etcdserverpb.Auth/UserAdd", unimplemented),
	U("/etcdserverpb.Auth/UserGet", unimplemented),
	U("/etcdserverpb.Auth/UserList", gauth_user_list),
	U("/etcdserverpb.Auth/UserDelete", unimplemented),
	U("/etcdserverpb.Auth/UserChangePassword", unimplemented),
	U("/etcdserverpb.Auth/UserGrantRole", unimplemented),
	U("/etcdserverpb.Auth/UserRevokeRole", unimplemented),
	U("/etcdserverpb.Auth/RoleAdd", unimplemented),
	U("/etcdserverpb.Auth/RoleGet", unimplemented),
	U("/etcdserverpb.Auth/RoleList", gauth_role_list),
	U("/etcdserverpb.Auth/RoleDelete", unimplemented),
	U("/etcdserverpb.Auth/RoleGrantPermission", unimplemented),
	U("/etcdserverpb.Auth/RoleRevokePermission", unimplemented),
	U("/grpc.health.v1.Health/Check", ghealth_check),
	{"/grpc.health.v1.Health/Watch", 1, 0, NULL, unimplemented_stream, NULL, NULL, NULL},
};

const struct gmethod *gmethod_find(const char *path, int *unknown_service)
{
	const char *slash = strrchr(path, '/');
	size_t svc = slash ? (size_t)(slash - path) + 1 : 0;

	*unknown_service = 1;
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
		if (strcmp(methods[i].path, path) == 0)
			return &methods[i];
		if (svc && strncmp(methods[i].path, path, svc) == 0)
			*unknown_service = 0;
	}
	return NULL;
}
