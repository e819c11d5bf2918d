/*
 * metrics.c - the gateway's own Prometheus series (request latency and
 * count by method and status, connections, rejections, timeouts, watch
 * streams), and GET /metrics, which renders the whole process registry.
 * The per-(method, status) counters are created on first use, so a scrape
 * lists only the pairs that happened.
 */
#include <stdatomic.h>
#include <stdio.h>

#include "gateway_int.h"

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
_Static_assert(sizeof(status_codes) / sizeof(status_codes[0]) == N_STATUS,
	       "N_STATUS (gateway_int.h) counts status_codes");

void gw_count_request(int label, int status, double seconds)
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

int gw_handle_metrics(struct conn *c, int close)
{
	ef_wbuf_reset(&c->out);
	metrics_render(&c->out);
	if (c->out.err)
		return gw_send_error(c, 8, 0, ef_strerror(EF_E_NOMEM), 1);
	gw_send_response(c, 200, "text/plain; version=0.0.4; charset=utf-8", c->out.p, c->out.len,
			 close);
	return 200;
}

void gw_register_metrics(void)
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
