/*
 * cluster.c - etcd's Cluster service: MemberList, MemberAdd, MemberRemove,
 * MemberUpdate and MemberPromote, each one node_call (the member forwards a
 * change to the leader, which proposes it as a configuration entry; see
 * server/node/members.c).
 *
 *   client URLs  the http(s):// ones a member advertises (what a gRPC client
 *                can dial); its native tcp:// ones when it has none
 *   order        members by id, as etcd lists them
 *   header       no revision: etcd's cluster service fills none
 */
#include <stdlib.h>
#include <string.h>

#include "grpc_int.h"

#define UNPACK(call, T, desc) ((T *)gcall_decode((call), &(desc)))

static int is_http(ef_buf u)
{
	return (u.n > 7 && memcmp(u.p, "http://", 7) == 0) ||
	       (u.n > 8 && memcmp(u.p, "https://", 8) == 0);
}

static char *cstr(ef_arena *a, ef_buf b)
{
	char *s = ef_arena_alloc(a, b.n + 1);

	if (s)
		memcpy(s, b.p, b.n);
	return s;
}

static int by_id(const void *a, const void *b)
{
	uint64_t x = (*(Etcdserverpb__Member *const *)a)->id;
	uint64_t y = (*(Etcdserverpb__Member *const *)b)->id;

	return x < y ? -1 : x > y;
}

/* One member in etcd's form, in the call's arena; NULL when out of memory. */
static Etcdserverpb__Member *member_conv(ef_arena *a, const ef_member *m)
{
	Etcdserverpb__Member *d = ef_arena_alloc(a, sizeof(*d));
	int http = 0;

	if (!d)
		return NULL;
	etcdserverpb__member__init(d);
	d->id = m->id;
	d->name = cstr(a, m->name);
	d->peerurls = ef_arena_alloc(a, (m->n_peer_urls + 1) * sizeof(char *));
	d->clienturls = ef_arena_alloc(a, (m->n_client_urls + 1) * sizeof(char *));
	if (!d->name || !d->peerurls || !d->clienturls)
		return NULL;
	for (uint32_t k = 0; k < m->n_peer_urls; k++)
		if (!(d->peerurls[d->n_peerurls++] = cstr(a, m->peer_urls[k])))
			return NULL;
	for (uint32_t k = 0; k < m->n_client_urls; k++)
		http |= is_http(m->client_urls[k]);
	for (uint32_t k = 0; k < m->n_client_urls; k++)
		if (!http || is_http(m->client_urls[k]))
			if (!(d->clienturls[d->n_clienturls++] = cstr(a, m->client_urls[k])))
				return NULL;
	d->islearner = m->is_learner;
	return d;
}

/* The member list of a response: *out and *n_out set; 0, or -1 when out of
 * memory. */
static int members_conv(ef_arena *a, const ef_member *ms, uint32_t n, Etcdserverpb__Member ***out,
			size_t *n_out)
{
	Etcdserverpb__Member **v = ef_arena_alloc(a, (n ? n : 1) * sizeof(void *));

	if (!v)
		return -1;
	for (uint32_t i = 0; i < n; i++)
		if (!(v[i] = member_conv(a, &ms[i])))
			return -1;
	qsort(v, n, sizeof(*v), by_id);
	*out = v;
	*n_out = n;
	return 0;
}

static void header_conv(Etcdserverpb__ResponseHeader *h, const ef_msg *resp)
{
	gconv_header(h, &resp->hdr);
	h->revision = 0;
}

void gcluster_member_list(struct gcall *c)
{
	ef_msg req = {.type = EF_MSG_MEMBER_LIST}, resp;
	Etcdserverpb__MemberListResponse o = ETCDSERVERPB__MEMBER_LIST_RESPONSE__INIT;
	Etcdserverpb__ResponseHeader h;
	const ef_member_list_resp *l;

	if (!UNPACK(c, Etcdserverpb__MemberListRequest,
		    etcdserverpb__member_list_request__descriptor))
		return;
	if (gcall_node(c, &req, &resp))
		return;
	l = &resp.u.member_list_resp;
	header_conv(&h, &resp);
	o.header = &h;
	if (members_conv(c->arena, l->members, l->n_members, &o.members, &o.n_members) != 0) {
		gcall_reply(c, NULL);
		return;
	}
	gcall_reply(c, &o.base);
}

/* peer URLs of a request into req->u.member; 0, or -1 when out of memory. */
static int peer_urls(struct gcall *c, ef_msg *req, char **urls, size_t n)
{
	ef_member_req *q = &req->u.member;

	q->peer_urls = ef_arena_alloc(c->arena, (n ? n : 1) * sizeof(ef_buf));
	if (!q->peer_urls)
		return -1;
	for (size_t i = 0; i < n; i++)
		q->peer_urls[i] = (ef_buf){(const uint8_t *)urls[i], (uint32_t)strlen(urls[i])};
	q->n_peer_urls = (uint32_t)n;
	return 0;
}

void gcluster_member_add(struct gcall *c)
{
	Etcdserverpb__MemberAddRequest *in;
	Etcdserverpb__MemberAddResponse o = ETCDSERVERPB__MEMBER_ADD_RESPONSE__INIT;
	Etcdserverpb__ResponseHeader h;
	ef_msg req = {.type = EF_MSG_MEMBER_ADD}, resp;
	const ef_member_resp *r;

	if (!(in = UNPACK(c, Etcdserverpb__MemberAddRequest,
			  etcdserverpb__member_add_request__descriptor)))
		return;
	if (peer_urls(c, &req, in->peerurls, in->n_peerurls) != 0) {
		gcall_reply(c, NULL);
		return;
	}
	req.u.member.is_learner = in->islearner ? 1 : 0;
	if (gcall_node(c, &req, &resp))
		return;
	r = &resp.u.member_resp;
	header_conv(&h, &resp);
	o.header = &h;
	if ((r->n_member && !(o.member = member_conv(c->arena, &r->member[0]))) ||
	    members_conv(c->arena, r->members, r->n_members, &o.members, &o.n_members) != 0) {
		gcall_reply(c, NULL);
		return;
	}
	gcall_reply(c, &o.base);
}

/* Remove, update and promote answer a header and the members after the
 * change; their response messages share that layout. */
#define MEMBER_CHANGE_REPLY(c, resp, T, INIT)                                                    \
	do {                                                                                     \
		T o = INIT;                                                                      \
		Etcdserverpb__ResponseHeader h;                                                  \
		header_conv(&h, &(resp));                                                        \
		o.header = &h;                                                                   \
		if (members_conv((c)->arena, (resp).u.member_resp.members,                       \
				 (resp).u.member_resp.n_members, &o.members, &o.n_members) != 0) \
			gcall_reply((c), NULL);                                                  \
		else                                                                             \
			gcall_reply((c), &o.base);                                               \
	} while (0)

void gcluster_member_remove(struct gcall *c)
{
	Etcdserverpb__MemberRemoveRequest *in;
	ef_msg req = {.type = EF_MSG_MEMBER_REMOVE}, resp;

	if (!(in = UNPACK(c, Etcdserverpb__MemberRemoveRequest,
			  etcdserverpb__member_remove_request__descriptor)))
		return;
	req.u.member.id = in->id;
	if (gcall_node(c, &req, &resp))
		return;
	MEMBER_CHANGE_REPLY(c, resp, Etcdserverpb__MemberRemoveResponse,
			    ETCDSERVERPB__MEMBER_REMOVE_RESPONSE__INIT);
}

void gcluster_member_update(struct gcall *c)
{
	Etcdserverpb__MemberUpdateRequest *in;
	ef_msg req = {.type = EF_MSG_MEMBER_UPDATE}, resp;

	if (!(in = UNPACK(c, Etcdserverpb__MemberUpdateRequest,
			  etcdserverpb__member_update_request__descriptor)))
		return;
	req.u.member.id = in->id;
	if (peer_urls(c, &req, in->peerurls, in->n_peerurls) != 0) {
		gcall_reply(c, NULL);
		return;
	}
	if (gcall_node(c, &req, &resp))
		return;
	MEMBER_CHANGE_REPLY(c, resp, Etcdserverpb__MemberUpdateResponse,
			    ETCDSERVERPB__MEMBER_UPDATE_RESPONSE__INIT);
}

void gcluster_member_promote(struct gcall *c)
{
	Etcdserverpb__MemberPromoteRequest *in;
	ef_msg req = {.type = EF_MSG_MEMBER_PROMOTE}, resp;

	if (!(in = UNPACK(c, Etcdserverpb__MemberPromoteRequest,
			  etcdserverpb__member_promote_request__descriptor)))
		return;
	req.u.member.id = in->id;
	if (gcall_node(c, &req, &resp))
		return;
	MEMBER_CHANGE_REPLY(c, resp, Etcdserverpb__MemberPromoteResponse,
			    ETCDSERVERPB__MEMBER_PROMOTE_RESPONSE__INIT);
}
