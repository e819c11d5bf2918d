/*
 * gateway.h - etcd v3.4-compatible HTTP/JSON gateway of etcfsd (prefix
 * gateway_ for the server, gw_ for the JSON <-> ef_msg translation that the
 * unit tests call directly).
 *
 * Endpoints (POST, JSON bodies as etcd's grpc-gateway: snake_case proto
 * names, base64 bytes, 64-bit integers as strings, default values omitted):
 *   /v3/kv/range /v3/kv/put /v3/kv/deleterange /v3/kv/txn /v3/kv/compaction
 *   /v3/watch (chunked stream of {"result":{...}} lines)
 *   /v3/lease/grant /v3/lease/revoke /v3/lease/keepalive /v3/lease/timetolive
 *   /v3/lease/leases (and the /v3/kv/lease/... aliases etcd has)
 *   /v3/maintenance/status /v3/cluster/member/list
 * /v3beta/ and /v3alpha/ are accepted as aliases of /v3/.
 * GET /health  {"health":"true"} 200 with a leader, else {"health":"false",
 *              "reason":...} 503 (as etcd 3.4).
 * GET /readyz  {"ready":"true"} 200 when the member has a leader and is not
 *              catching up (applied index behind commit index), else 503.
 * GET /livez   always 200 while the process serves HTTP.
 * GET /metrics Prometheus text format 0.0.4 (metrics.h registry).
 */
#ifndef EF_GATEWAY_H
#define EF_GATEWAY_H

#include <stddef.h>

#include "../proto/wire.h"
#include "node.h"

/* Start serving on every URL of the comma-separated list ("http://HOST:PORT";
 * PORT 0 picks a free port, see gateway_port()).  Returns 0, or an EF_E_*
 * code with a message in err. */
int gateway_start(node *n, const char *urls, char *err, size_t errlen);
/* Stop listening, close every connection and wait for the handler threads. */
void gateway_stop(void);
/* Optional, before gateway_start: --max-request-bytes (default
 * EF_DEFAULT_MAX_REQUEST_BYTES; bodies above 2x this + 64 KiB get 413) and
 * the connection cap (default 4096; extra connections get a 503 and close). */
void gateway_set_limits(size_t max_request_bytes, int max_connections);
/* Port actually bound by the i-th URL (useful with port 0), or -1. */
int gateway_port(int i);

/* ------------------------------------------------------------------ */
/* JSON <-> ef_msg translation (exported for tests/unit/test_gateway.c). */

enum gw_method {
	GW_RANGE,
	GW_PUT,
	GW_DELETE,
	GW_TXN,
	GW_COMPACT,
	GW_LEASE_GRANT,
	GW_LEASE_REVOKE,
	GW_LEASE_KEEPALIVE,
	GW_LEASE_TTL,
	GW_LEASE_LEASES,
	GW_STATUS,
	GW_MEMBER_LIST,
	GW_MEMBER_ADD,
	GW_MEMBER_REMOVE,
	GW_MEMBER_UPDATE,
	GW_MEMBER_PROMOTE,
	GW_WATCH,
	GW__COUNT
};

/* Method for a path such as "/v3/kv/put" (query string already removed);
 * -1 when the path is not an API path. */
int gw_route(const char *path);
/* Decode a request body (any GW_* but GW_WATCH) into *req; strings and
 * arrays are allocated in a.  An empty body is an empty request, as in etcd.
 * Returns 0, or EF_E_INVALID with a message (etcd's wording where cheap) in
 * err.  Request-level validation (empty key, ...) is left to node_call(). */
int gw_decode_request(int method, const void *body, size_t len, ef_arena *a, ef_msg *req, char *err,
		      size_t errlen);
/* Decode the first of the concatenated JSON objects of a /v3/watch body:
 * {"create_request":{...}}, {"cancel_request":{"watch_id":N}} or
 * {"progress_request":{}}.  *used = bytes consumed (trailing whitespace
 * included).  Returns 0, or EF_E_INVALID with a message in err. */
int gw_decode_watch_request(const void *body, size_t len, size_t *used, ef_arena *a, ef_msg *req,
			    char *err, size_t errlen);
/* Append the JSON body etcd would send for a successful response. */
void gw_encode_response(int method, const ef_msg *resp, ef_wbuf *out);
/* Append {"result":{...}} for one EF_MSG_WATCH_RESP (no newline). */
void gw_encode_watch(const ef_msg *m, ef_wbuf *out);
/* Append {"error":msg,"code":grpc,"message":msg} and return the HTTP status
 * grpc-gateway uses for grpc (runtime.HTTPStatusFromCode of v1). */
int gw_encode_error(int grpc_code, const char *msg, ef_wbuf *out);
int gw_http_status(int grpc_code);

#endif
