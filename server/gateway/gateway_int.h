/*
 * gateway_int.h - private state of the etcd v3.4-compatible HTTP/JSON
 * gateway, shared by the files of server/gateway/.  Nothing here is visible
 * to etcfsd's other modules or to the tests; gateway.h is the contract.
 *
 * Tools that speak etcd's grpc-gateway JSON API (curl scripts, etcd3gw,
 * load generators such as wrk) talk to etcfsd through this module.  It has
 * two halves:
 *
 *   1. Translation.  gw_decode_request() turns a JSON body into an ef_msg
 *      (jansson parses; base64 is decoded straight into the request arena),
 *      gw_encode_response() writes etcd's JSON for a response straight into
 *      an ef_wbuf with no intermediate tree, following jsonpb's rules as
 *      etcd configures them: proto field names, proto field order, int64 and
 *      uint64 as decimal strings, bytes as padded standard base64, enums by
 *      name, and every field equal to its default value left out.  Enum
 *      fields are accepted as names or numbers and integers as JSON numbers
 *      or strings, as jsonpb accepts them.
 *
 *   2. A small HTTP/1.1 server on plain sockets, one thread per connection.
 *      node_call() blocks until Raft has committed (or a ReadIndex round is
 *      done), so a request needs a thread for its whole life anyway; giving
 *      each connection its own thread keeps the request path a straight
 *      line (read, parse, node_call, write) with per-connection buffers that
 *      are reused, so a keep-alive connection allocates almost nothing per
 *      request.  nng's HTTP server was the first choice, but in nng 1.5.2 it
 *      has no read timeout (a client that sends half a header holds a
 *      connection forever), no connection cap, answers oversize bodies with
 *      an HTML 400, and runs handlers on nng's shared task threads, where a
 *      blocking node_call would stall the native listener and the peer
 *      transport that run on the same threads.
 *
 * One file per concern:
 *   encode.c   JSON output helpers and the response encoders
 *              (gw_encode_response, gw_encode_watch)
 *   error.c    gRPC code -> HTTP status, etcd-shaped error bodies
 *   decode.c   JSON request decoding, one decoder per request kind
 *              (gw_decode_request, gw_decode_watch_request)
 *   route.c    API paths -> GW_* methods (gw_route), and serving one request:
 *              verb and path to its handler
 *   http.c     the connection's HTTP/1.1 reader (request head and body,
 *              timeouts, limits) and writer (responses, errors)
 *   unary.c    one JSON request -> node_call() -> one JSON response
 *   watch.c    /v3/watch: a chunked stream fed by the node's watch callback
 *   health.c   GET /health and /readyz
 *   metrics.c  the gateway's own Prometheus series and GET /metrics
 *   start.c    listeners, the accept threads, the connection threads,
 *              gateway_start/gateway_stop; defines `gw`
 *
 * Robustness rules (each enforced in http.c, watch.c or start.c, each tested
 * by tests/e2e/gw_curl.sh):
 *   - at most max_conns connections; one more gets a canned 503 and is closed;
 *   - a request head must arrive within HEAD_TIMEOUT_MS of its first byte
 *     and fit in MAX_HEAD_BYTES, its body within BODY_TIMEOUT_MS; an idle
 *     keep-alive connection is closed after IDLE_TIMEOUT_MS; a write that
 *     makes no progress for WRITE_TIMEOUT_MS closes the connection;
 *   - bodies above max_body get 413 without being read; chunked request
 *     bodies get 411; malformed JSON, wrong types and bad base64 get 400;
 *     unknown paths 404, wrong methods 405; every error body is etcd-shaped.
 *   - a watch stream whose client reads too slowly pushes back on the node
 *     once WATCH_MAX_QUEUED bytes wait for it (the callback refuses; the
 *     watch hub retries, then cancels the watches, as node.h says), and a
 *     client that takes no bytes for WRITE_TIMEOUT_MS is disconnected.
 *
 * Threads: one accept thread per listener, one thread per connection (which
 * owns its struct conn), and the node's watch threads, which only ever touch
 * a stream's queue (watch.c).  `gw` is written by gateway_start/stop and the
 * setters before any thread runs, except the fields marked below.
 */
#ifndef EF_GATEWAY_INT_H
#define EF_GATEWAY_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "../../common/metrics.h"
#include "../gateway.h"

#define MAX_LISTENERS 8
#define MAX_HEAD_BYTES (64u * 1024u)
#define HEAD_TIMEOUT_MS 10000
#define BODY_TIMEOUT_MS 30000
#define IDLE_TIMEOUT_MS 300000
#define WRITE_TIMEOUT_MS 30000
#define WATCH_MAX_QUEUED (16u << 20)
#define WATCH_MAX_REQUESTS 64
#define CONN_BUF_INIT (16u * 1024u)
#define CONN_STACK_BYTES (1024u * 1024u) /* virtual; touched pages only */

/* One client connection, owned by its thread. */
struct conn {
	int fd;
	struct conn *prev, *next; /* in gw.conns; guarded by gw.mu */
	char *buf;                /* received bytes not yet consumed: buf[0..len) */
	size_t len, cap;          /* invariant: len <= cap */
	ef_arena *arena;          /* request and response of the current request */
	ef_wbuf out;              /* response body of the current request */
	uint64_t next_id;         /* request ids for node_call */
};

/* A parsed request head.  Method and path are NUL-terminated strings inside
 * conn.buf, kept as offsets because reading the body may move the buffer. */
struct http_req {
	size_t method, path;
	size_t head_len, body_len;
	int close;
};

/* Labels of the request metrics: the GW_* methods, then these. */
enum {
	L_HEALTH = GW__COUNT,
	L_READYZ,
	L_LIVEZ,
	L_METRICS,
	L_OTHER,
	L__COUNT
};
/* HTTP statuses counted per label (metrics.c: status_codes[]). */
#define N_STATUS 17

struct gw_state {
	node *n;
	int nl; /* listeners */
	int lfd[MAX_LISTENERS], lport[MAX_LISTENERS];
	pthread_t acc[MAX_LISTENERS];
	pthread_mutex_t mu;
	pthread_cond_t cv;  /* signalled when nconns drops */
	struct conn *conns; /* guarded by mu */
	int nconns;         /* guarded by mu; invariant: <= max_conns */
	atomic_int stopping;
	int running;
	size_t max_request_bytes;
	size_t max_body; /* 2 * max_request_bytes + 64 KiB */
	int max_conns;
	metric *m_dur[L__COUNT];
	_Atomic(metric *) m_req[L__COUNT][N_STATUS];
	metric *m_conns, *m_rejected, *m_timeouts, *m_watch_streams, *m_watch_events;
	atomic_int n_watch_streams;
};
/* The one gateway of the process (start.c). */
extern struct gw_state gw;

/* ------------------------------------------------------------------ */
/* encode.c                                                             */

/* Pointer to n writable bytes at the end of b (len advanced), or NULL once
 * b->err is set.  Same growth policy and allocator as wire.c's wbuf. */
uint8_t *gw_room(ef_wbuf *b, size_t n);
void gw_put_lit(ef_wbuf *b, const char *s);
/* Decimal digits of v into out (room for 20 digits and a sign); returns the
 * length, no NUL. */
size_t gw_fmt_i64(char *out, int64_t v);
/* A JSON string literal of p[0..n), escaped. */
void gw_jw_strval(ef_wbuf *b, const uint8_t *p, size_t n);

/* ------------------------------------------------------------------ */
/* decode.c                                                             */

/* 1 when p[0..n) is only JSON white space (or empty). */
int gw_only_space(const char *p, size_t n);

/* ------------------------------------------------------------------ */
/* route.c                                                              */

/* Serve one request; returns 1 when the connection must close afterwards. */
int gw_serve(struct conn *c, struct http_req *r);

/* ------------------------------------------------------------------ */
/* http.c: the handlers' writer and the connection thread's reader      */

/* Send every byte of the iovecs; 0 or -1 (peer gone, or no progress for
 * WRITE_TIMEOUT_MS: SO_SNDTIMEO is set on the socket). */
int gw_send_all(int fd, struct iovec *iov, int n);
int gw_send_response(struct conn *c, int status, const char *ctype, const void *body, size_t len,
		     int close);
/* etcd-shaped error; returns the HTTP status sent (status, or the one
 * grpc_code maps to when status is 0). */
int gw_send_error(struct conn *c, int grpc_code, int status, const char *msg, int close);
/* Read more bytes into c->buf (room must exist) until deadline (clock_mono_ms).
 * Returns 1 (bytes read), 0 (peer closed), -1 (timeout, error, stopping).
 * Shared so the connection thread can look at a connection's first bytes
 * before the HTTP/1.1 parser does. */
int gw_conn_fill(struct conn *c, int64_t deadline);
/* Read and parse one request (head and body) into r.
 * Returns 0, or -1 when the connection must be closed (an error response,
 * if any was due, has been sent). */
int gw_read_request(struct conn *c, struct http_req *r);
/* Drop the first n bytes of c->buf (the request just served). */
void gw_consume(struct conn *c, size_t n);

/* ------------------------------------------------------------------ */
/* Handlers: each sends one response and returns the HTTP status sent.  */

int gw_handle_unary(struct conn *c, int method, const char *body, size_t len,
		    int close);                                    /* unary.c */
int gw_handle_watch(struct conn *c, const char *body, size_t len); /* watch.c; closes after */
int gw_handle_health(struct conn *c, int ready, int close);        /* health.c; ready: /readyz */
int gw_handle_metrics(struct conn *c, int close);                  /* metrics.c */

/* ------------------------------------------------------------------ */
/* metrics.c                                                            */

/* Register the gateway's series (once per process). */
void gw_register_metrics(void);
/* One request served: label is a GW_* method or an L_* label. */
void gw_count_request(int label, int status, double seconds);

#endif
