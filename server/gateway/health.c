/*
 * health.c - GET /health (etcd 3.4's answer: healthy when the member knows a
 * leader) and GET /readyz (also not catching up: applied index behind the
 * commit index).  /livez is answered in route.c.
 */
#include <inttypes.h>
#include <stdio.h>

#include "gateway_int.h"

int gw_handle_health(struct conn *c, int ready, int close)
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
		gw_send_response(c, st.has_leader ? 200 : 503, "text/plain; charset=utf-8", body,
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
	gw_send_response(c, ready ? 200 : 503, "application/json", body, (size_t)n, close);
	return ready ? 200 : 503;
}
