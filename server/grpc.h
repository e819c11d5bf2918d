/*
 * grpc.h - etcd's gRPC API (etcdserverpb, grpc.health.v1) served by etcfsd
 * (prefix grpcsrv_).
 *
 * One event-loop thread runs an nghttp2 server session per connection; a
 * small pool of worker threads runs the blocking node_call()s and hands the
 * encoded answers back to the loop through an eventfd.  Connections arrive
 * through grpcsrv_adopt(): the JSON gateway's accept path peeks at the first
 * bytes of every connection and passes those that open with the HTTP/2
 * preface here, so gRPC and the JSON API share one port as in etcd.  A TLS
 * listener (https://, ALPN "h2") would adopt its connections the same way
 * once the handshake is done; the seam is grpcsrv_adopt's `pre` bytes.
 */
#ifndef EF_GRPC_H
#define EF_GRPC_H

#include <stddef.h>

#include "node.h"

typedef struct grpcsrv_opts {
	size_t max_request_bytes; /* --max-request-bytes; a message may be 512 KiB more */
	int workers;              /* threads running node_call (0: default) */
	const char *advertise_client_urls;
} grpcsrv_opts;

/* Start the loop and the workers.  0 or an EF_E_* code with err set. */
int grpcsrv_start(node *n, const grpcsrv_opts *o, char *err, size_t errlen);
/* Close every connection, stop the loop and the workers. */
void grpcsrv_stop(void);
/* Take over a connected socket whose first n bytes (already read from it,
 * the HTTP/2 client preface or part of it) are pre.  The server owns fd
 * from now on, even on failure.  Returns 0, or -1 when the server is not
 * running (fd is closed). */
int grpcsrv_adopt(int fd, const void *pre, size_t n);
/* 1 when the n bytes at p open with the HTTP/2 client preface, 0 when
 * they cannot, -1 when more bytes are needed to tell. */
int grpcsrv_preface(const void *p, size_t n);
/* Non-zero when the server runs (the gateway hands connections over then). */
int grpcsrv_running(void);

#endif
