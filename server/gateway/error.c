/*
 * error.c - error mapping: the HTTP status grpc-gateway gives each gRPC code
 * (runtime.HTTPStatusFromCode of v1), and the etcd-shaped JSON error body
 * every failed request gets.  The EF_E_* -> gRPC code step is
 * ef_grpc_code() in proto/errors.h.
 */
#include <stdint.h>
#include <string.h>

#include "gateway_int.h"

int gw_http_status(int grpc_code)
{
	switch (grpc_code) {
	case 0:
		return 200;
	case 1: /* Canceled */
		return 408;
	case 3:  /* InvalidArgument */
	case 11: /* OutOfRange */
		return 400;
	case 4: /* DeadlineExceeded */
		return 504;
	case 5: /* NotFound */
		return 404;
	case 6:  /* AlreadyExists */
	case 10: /* Aborted */
		return 409;
	case 7: /* PermissionDenied */
		return 403;
	case 8: /* ResourceExhausted */
		return 429;
	case 9: /* FailedPrecondition */
		return 412;
	case 12: /* Unimplemented */
		return 501;
	case 14: /* Unavailable */
		return 503;
	case 16: /* Unauthenticated */
		return 401;
	default: /* Unknown, Internal, DataLoss */
		return 500;
	}
}

int gw_encode_error(int grpc_code, const char *msg, ef_wbuf *b)
{
	char num[24];
	size_t n = strlen(msg);

	gw_put_lit(b, "{\"error\":");
	gw_jw_strval(b, (const uint8_t *)msg, n);
	gw_put_lit(b, ",\"message\":");
	gw_jw_strval(b, (const uint8_t *)msg, n);
	gw_put_lit(b, ",\"code\":");
	ef_wbuf_put(b, num, gw_fmt_i64(num, grpc_code));
	ef_wbuf_u8(b, '}');
	return gw_http_status(grpc_code);
}
