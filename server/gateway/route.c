/*
 * route.c - routing: API paths to GW_* methods (gw_route, with etcd's
 * /v3beta/, /v3alpha/ and /v3/kv/lease/ aliases), and gw_serve, which sends
 * one parsed request to its handler by verb and path and counts it.
 */
#include <string.h>

#include "../../common/clock.h"
#include "gateway_int.h"

struct route {
	const char *path; /* after "/v3" */
	int method;
};

static const struct route routes[] = {
	{"/kv/range", GW_RANGE},
	{"/kv/put", GW_PUT},
	{"/kv/deleterange", GW_DELETE},
	{"/kv/txn", GW_TXN},
	{"/kv/compaction", GW_COMPACT},
	{"/watch", GW_WATCH},
	{"/lease/grant", GW_LEASE_GRANT},
	{"/lease/revoke", GW_LEASE_REVOKE},
	{"/kv/lease/revoke", GW_LEASE_REVOKE},
	{"/lease/keepalive", GW_LEASE_KEEPALIVE},
	{"/lease/timetolive", GW_LEASE_TTL},
	{"/kv/lease/timetolive", GW_LEASE_TTL},
	{"/lease/leases", GW_LEASE_LEASES},
	{"/kv/lease/leases", GW_LEASE_LEASES},
	{"/maintenance/status", GW_STATUS},
	{"/cluster/member/list", GW_MEMBER_LIST},
};

int gw_route(const char *path)
{
	if (strncmp(path, "/v3/", 4) == 0)
		path += 3;
	else if (strncmp(path, "/v3beta/", 8) == 0)
		path += 7;
	else if (strncmp(path, "/v3alpha/", 9) == 0)
		path += 8;
	else
		return -1;
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		if (strcmp(path, routes[i].path) == 0)
			return routes[i].method;
	return -1;
}

/* ------------------------------------------------------------------ */
/* Serving one request                                                  */

static int is_get_path(const char *path)
{
	return strcmp(path, "/health") == 0 || strcmp(path, "/readyz") == 0 ||
	       strcmp(path, "/livez") == 0 || strcmp(path, "/metrics") == 0;
}

/* Serve one request; returns 1 when the connection must close afterwards. */
int gw_serve(struct conn *c, struct http_req *r)
{
	double t0 = (clock_mono_ns() / 1e9);
	const char *body = c->buf + r->head_len, *verb = c->buf + r->method;
	char *path = c->buf + r->path, *q = strchr(path, '?');
	int label = L_OTHER, status, close = r->close, method;

	if (q)
		*q = 0;
	if (strcmp(verb, "GET") == 0) {
		if (strcmp(path, "/health") == 0) {
			label = L_HEALTH;
			status = gw_handle_health(c, 0, close);
		} else if (strcmp(path, "/readyz") == 0) {
			label = L_READYZ;
			status = gw_handle_health(c, 1, close);
		} else if (strcmp(path, "/livez") == 0) {
			label = L_LIVEZ;
			status = 200;
			gw_send_response(c, 200, "application/json", "{\"live\":\"true\"}", 15,
					 close);
		} else if (strcmp(path, "/metrics") == 0) {
			label = L_METRICS;
			status = gw_handle_metrics(c, close);
		} else if (gw_route(path) >= 0) {
			status = gw_send_error(c, 12, 405, "Method Not Allowed", close);
		} else {
			status = gw_send_error(c, 5, 404, "Not Found", close);
		}
	} else if (strcmp(verb, "POST") == 0) {
		method = gw_route(path);
		if (method == GW_WATCH) {
			label = method;
			status = gw_handle_watch(c, body, r->body_len);
			close = 1;
		} else if (method >= 0) {
			label = method;
			status = gw_handle_unary(c, method, body, r->body_len, close);
		} else if (is_get_path(path)) {
			status = gw_send_error(c, 12, 405, "Method Not Allowed", close);
		} else {
			status = gw_send_error(c, 5, 404, "Not Found", close);
		}
	} else {
		status = gw_send_error(c, 12, 405, "Method Not Allowed", close);
	}
	gw_count_request(label, status, (clock_mono_ns() / 1e9) - t0);
	return close;
}
