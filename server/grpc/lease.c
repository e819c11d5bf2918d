/*
 * lease.c - the Lease service.  Grant, Revoke, TimeToLive and Leases are
 * unary; LeaseKeepAlive is a bidirectional stream whose every request becomes
 * one worker call answering on the same stream, so a client's keep-alives
 * for many leases share one stream and cost no thread while idle.
 *
 * As etcd: a keep-alive or time-to-live of an unknown lease is an answer,
 * not an error (TTL 0 for keep-alive, TTL -1 for time-to-live).
 */
#include <stdlib.h>
#include <string.h>

#include "grpc_int.h"

#define UNPACK(call, T, desc) ((T *)gcall_decode((call), &(desc)))

void glease_grant(struct gcall *c)
{
	Etcdserverpb__LeaseGrantRequest *r = UNPACK(c, Etcdserverpb__LeaseGrantRequest,
						    etcdserverpb__lease_grant_request__descriptor);
	ef_msg req = {.type = EF_MSG_LEASE_GRANT}, resp;
	Etcdserverpb__LeaseGrantResponse o = ETCDSERVERPB__LEASE_GRANT_RESPONSE__INIT;
	Etcdserverpb__ResponseHeader h;

	if (!r)
		return;
	req.u.lease.id = r->id;
	req.u.lease.ttl = r->ttl;
	if (gcall_node(c, &req, &resp))
		return;
	gconv_header(&h, &resp.hdr);
	o.header = &h;
	o.id = resp.u.lease_resp.id;
	o.ttl = resp.u.lease_resp.ttl;
	gcall_reply(c, &o.base);
}

void glease_revoke(struct gcall *c)
{
	Etcdserverpb__LeaseRevokeRequest *r =
		UNPACK(c, Etcdserverpb__LeaseRevokeRequest,
		       etcdserverpb__lease_revoke_request__descriptor);
	ef_msg req = {.type = EF_MSG_LEASE_REVOKE}, resp;
	Etcdserverpb__LeaseRevokeResponse o = ETCDSERVERPB__LEASE_REVOKE_RESPONSE__INIT;
	Etcdserverpb__ResponseHeader h;

	if (!r)
		return;
	req.u.lease.id = r->id;
	if (gcall_node(c, &req, &resp))
		return;
	gconv_header(&h, &resp.hdr);
	o.header = &h;
	gcall_reply(c, &o.base);
}

void glease_ttl(struct gcall *c)
{
	Etcdserverpb__LeaseTimeToLiveRequest *r =
		UNPACK(c, Etcdserverpb__LeaseTimeToLiveRequest,
		       etcdserverpb__lease_time_to_live_request__descriptor);
	ef_msg req = {.type = EF_MSG_LEASE_TTL}, resp;
	Etcdserverpb__LeaseTimeToLiveResponse o = ETCDSERVERPB__LEASE_TIME_TO_LIVE_RESPONSE__INIT;
	Etcdserverpb__ResponseHeader h;
	int rc;

	if (!r)
		return;
	req.u.lease.id = r->id;
	req.u.lease.keys = r->keys;
	memset(&resp, 0, sizeof(resp));
	rc = node_call(grpcsrv.n, &req, &resp, c->arena);
	if (rc == EF_E_LEASE_NOT_FOUND) {
		gconv_status_header(&h);
		o.header = &h;
		o.id = r->id;
		o.ttl = -1;
		gcall_reply(c, &o.base);
		return;
	}
	if (rc) {
		gcall_fail_code(c, rc, &resp);
		return;
	}
	gconv_header(&h, &resp.hdr);
	o.header = &h;
	o.id = resp.u.lease_resp.id;
	o.ttl = resp.u.lease_resp.ttl;
	o.grantedttl = resp.u.lease_resp.granted_ttl;
	o.n_keys = resp.u.lease_resp.n_keys;
	o.keys = ef_arena_alloc(c->arena, (o.n_keys ? o.n_keys : 1) * sizeof(*o.keys));
	if (!o.keys) {
		gcall_reply(c, NULL);
		return;
	}
	for (size_t i = 0; i < o.n_keys; i++) {
		o.keys[i].len = resp.u.lease_resp.keys[i].n;
		o.keys[i].data = (uint8_t *)resp.u.lease_resp.keys[i].p;
	}
	gcall_reply(c, &o.base);
}

void glease_leases(struct gcall *c)
{
	ef_msg req = {.type = EF_MSG_LEASE_LIST}, resp;
	Etcdserverpb__LeaseLeasesResponse o = ETCDSERVERPB__LEASE_LEASES_RESPONSE__INIT;
	Etcdserverpb__ResponseHeader h;
	const ef_lease_list_resp *l;

	if (!UNPACK(c, Etcdserverpb__LeaseLeasesRequest,
		    etcdserverpb__lease_leases_request__descriptor))
		return;
	if (gcall_node(c, &req, &resp))
		return;
	l = &resp.u.lease_list_resp;
	gconv_header(&h, &resp.hdr);
	o.header = &h;
	o.n_leases = l->n_ids;
	o.leases = ef_arena_alloc(c->arena, (l->n_ids ? l->n_ids : 1) * sizeof(*o.leases));
	if (!o.leases) {
		gcall_reply(c, NULL);
		return;
	}
	for (uint32_t i = 0; i < l->n_ids; i++) {
		Etcdserverpb__LeaseStatus *s = ef_arena_alloc(c->arena, sizeof(*s));

		if (!s) {
			gcall_reply(c, NULL);
			return;
		}
		etcdserverpb__lease_status__init(s);
		s->id = l->ids[i];
		o.leases[i] = s;
	}
	gcall_reply(c, &o.base);
}

/* ------------------------------------------------------------------ */
/* KeepAlive stream                                                     */

/* One keep-alive request on a worker; answers on the stream, never ends it. */
static void ka_call(struct gcall *c)
{
	Etcdserverpb__LeaseKeepAliveRequest *r =
		UNPACK(c, Etcdserverpb__LeaseKeepAliveRequest,
		       etcdserverpb__lease_keep_alive_request__descriptor);
	ef_msg req = {.type = EF_MSG_LEASE_KEEPALIVE}, resp;
	Etcdserverpb__LeaseKeepAliveResponse o = ETCDSERVERPB__LEASE_KEEP_ALIVE_RESPONSE__INIT;
	Etcdserverpb__ResponseHeader h;
	int rc;

	if (!r)
		return; /* gcall_decode ended the stream with a status */
	req.u.lease.id = r->id;
	memset(&resp, 0, sizeof(resp));
	rc = node_call(grpcsrv.n, &req, &resp, c->arena);
	if (rc == EF_E_LEASE_NOT_FOUND) {
		gconv_status_header(&h);
		o.id = r->id;
	} else if (rc) {
		gcall_fail_code(c, rc, &resp);
		return;
	} else {
		gconv_header(&h, &resp.hdr);
		o.id = resp.u.lease_resp.id;
		o.ttl = resp.u.lease_resp.ttl;
	}
	o.header = &h;
	gout_push_msg(c->out, &o.base, 0);
}

/* A keep-alive call is done (answered or not): end the stream when the
 * client has ended its side and nothing else is pending. */
static void ka_done(struct gout *o)
{
	int end;

	pthread_mutex_lock(&o->mu);
	end = --o->pending == 0 && o->half_closed;
	pthread_mutex_unlock(&o->mu);
	if (end)
		gout_end(o, GS_OK, NULL);
}

static void ka_call_done(struct gcall *c)
{
	ka_call(c);
	ka_done(c->out);
}

static const struct gmethod ka_method = {.path = "/etcdserverpb.Lease/LeaseKeepAlive",
					 .unary = ka_call_done};

int glease_ka_open(struct gstream *s)
{
	return 0;
}

void glease_ka_msg(struct gstream *s, const uint8_t *p, size_t n)
{
	struct gcall *call = calloc(1, sizeof(*call));

	if (!call || !(call->body = malloc(n ? n : 1)) || !(call->arena = ef_arena_new())) {
		if (call)
			free(call->body);
		free(call);
		gout_end(s->out, GS_RESOURCE_EXHAUSTED, ef_strerror(EF_E_NOMEM));
		return;
	}
	memcpy(call->body, p, n);
	call->len = n;
	call->m = &ka_method;
	call->out = s->out;
	gout_ref(s->out);
	pthread_mutex_lock(&s->out->mu);
	s->out->pending++;
	pthread_mutex_unlock(&s->out->mu);
	if (gloop_submit(call)) {
		ka_done(s->out);
		gout_unref(s->out);
		ef_arena_free(call->arena);
		free(call->body);
		free(call);
		gout_end(s->out, GS_UNAVAILABLE, ef_strerror(EF_E_STOPPING));
	}
}

void glease_ka_close(struct gstream *s)
{
}

void glease_ka_half_close(struct gstream *s)
{
	int end;

	pthread_mutex_lock(&s->out->mu);
	s->out->half_closed = 1;
	end = s->out->pending == 0;
	pthread_mutex_unlock(&s->out->mu);
	if (end)
		gout_end(s->out, GS_OK, NULL);
}
