/*
 * errors.c - lookups into the error table of errors.h.  Nothing else in the
 * project turns an EF_E_* code into text, a gRPC code or an errno.
 */
#include <errno.h>

#include "errors.h"

struct ef_error_info {
	const char *name;
	int grpc;
	int errn;
	const char *msg;
};

static const struct ef_error_info table[EF_E__COUNT] = {[EF_OK] = {"EF_OK", 0, 0, "success"},
#define EF_X_INFO(name, grpc, errn, msg) [name] = {#name, grpc, errn, msg},
							EF_ERROR_TABLE(EF_X_INFO)
#undef EF_X_INFO
};

static const struct ef_error_info *lookup(int code)
{
	if (code < 0 || code >= EF_E__COUNT)
		return 0;
	return &table[code];
}

const char *ef_strerror(int code)
{
	const struct ef_error_info *e = lookup(code);
	return e ? e->msg : "unknown error";
}

int ef_grpc_code(int code)
{
	const struct ef_error_info *e = lookup(code);
	return e ? e->grpc : 2;
}

int ef_errno(int code)
{
	const struct ef_error_info *e = lookup(code);
	return e ? e->errn : EIO;
}

const char *ef_error_name(int code)
{
	const struct ef_error_info *e = lookup(code);
	return e ? e->name : "EF_E_UNKNOWN";
}
