/*
 * unary.c - one JSON request, one node_call(), one JSON response: every API
 * path but /v3/watch.  Keepalive and timetolive of an unknown lease are
 * answered as etcd answers them (a response, not an error).
 */
#include <stdio.h>
#include <string.h>

#include "gateway_int.h"

static void status_header(ef_resp_header *h)
{
	node_status st;

	node_get_status(gw.n, &st);
	h->cluster_id = st.cluster_id;
	h->member_id = st.member_id;
	h->revision = st.revision;
	h->raft_term = st.term;
}

int gw_handle_unary(struct conn *c, int method, const char *body, size_t len, int close)
{
	ef_msg req, resp;
	char err[512];
	int rc;

	ef_arena_reset(c->arena);
	rc = gw_decode_request(method, body, len, c->arena, &req, err, sizeof(err));
	if (rc)
		return gw_send_error(c, ef_grpc_code(rc), 0, err[0] ? err : ef_strerror(rc), close);
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
			return gw_send_error(c, ef_grpc_code(rc), 0, err, close);
		}
		return gw_send_error(c, ef_grpc_code(rc), 0, ef_strerror(rc), close);
	}
	ef_wbuf_reset(&c->out);
	gw_encode_response(method, &resp, &c->out);
	if (c->out.err)
		return gw_send_error(c, 8, 0, ef_strerror(EF_E_NOMEM), 1);
	gw_send_response(c, 200, "application/json", c->out.p, c->out.len, close);
	return 200;
}
