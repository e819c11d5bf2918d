/*
 * grpc_int.h - what the files of server/grpc/ share (private).
 *
 *   loop.c     the event-loop thread: epoll, the eventfd, adopted sockets,
 *              the worker pool and the wake list
 *   conn.c     one nghttp2 server session per connection: callbacks,
 *              gRPC message framing, response headers and trailers
 *   dispatch.c the method table (path -> handler), Unimplemented
 *   convert.c  ef_msg <-> etcdserverpb conversions, response headers
 *   kv.c       KV service          lease.c   Lease service (+ KeepAlive)
 *   watch.c    Watch service       maint.c   Cluster, Maintenance, Auth, Health
 *
 * Threads: the loop thread owns every nghttp2 session, connection and
 * stream.  Other threads (workers, the watch hub's delivery thread) touch
 * only a stream's gout: they queue encoded gRPC messages and the final
 * status on it under its mutex and put it on the wake list; the loop then
 * resumes the stream's data provider.  A gout outlives its stream while
 * any thread holds a reference.
 */
#ifndef EF_GRPC_INT_H
#define EF_GRPC_INT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <nghttp2/nghttp2.h>
#include <protobuf-c/protobuf-c.h>

#include "../grpc.h"
#include "rpc.pb-c.h"
#include "health.pb-c.h"

/* gRPC status codes (grpc/codes). */
enum {
	GS_OK = 0,
	GS_CANCELLED = 1,
	GS_UNKNOWN = 2,
	GS_INVALID_ARGUMENT = 3,
	GS_NOT_FOUND = 5,
	GS_FAILED_PRECONDITION = 9,
	GS_OUT_OF_RANGE = 11,
	GS_RESOURCE_EXHAUSTED = 8,
	GS_UNIMPLEMENTED = 12,
	GS_INTERNAL = 13,
	GS_UNAVAILABLE = 14
};

#define GRPC_MSG_PREFIX 5                 /* compressed flag + u32 length */
#define GRPC_STREAM_MAX_QUEUED (4u << 20) /* a watch stream refuses events past this */

/* One queued chunk of response bytes (whole gRPC messages). */
struct gbuf {
	struct gbuf *next;
	size_t len, off;
	uint8_t data[];
};

struct gstream;

/* The part of a stream other threads may touch. */
struct gout {
	pthread_mutex_t mu;
	int refs;  /* loop's stream + every job / watch stream holding it */
	int gone;  /* the HTTP/2 stream closed: pushes are dropped */
	int woken; /* on the wake list already */
	struct gout *wake_next;
	struct gbuf *head, *tail;
	size_t bytes;    /* queued, not yet taken by nghttp2 */
	int ended;       /* status below is final; trailers follow the queue */
	int pending;     /* keep-alive calls queued or running */
	int half_closed; /* the client ended its side (END_STREAM) */
	int status;
	char message[256];
	struct gstream *s; /* loop thread only; NULL once gone */
};

struct gconn;
struct gmethod;

struct gstream {
	struct gconn *c;
	int32_t id;
	const struct gmethod *m;
	char path[128];
	int hasleader, bad_encoding;
	int rst_after; /* reset the stream once the trailers-only status is sent */
	uint8_t *in;   /* received bytes not yet cut into messages */
	size_t in_len, in_cap;
	int headers_sent; /* response HEADERS submitted (data provider set up) */
	int deferred;     /* data provider returned DEFERRED */
	int done;         /* trailers submitted or trailers-only sent */
	int msgs;         /* request messages received */
	struct gout *out;
	void *svc;                   /* service state (watch stream, keepalive) */
	struct gstream *next, *prev; /* the connection's streams */
};

struct gconn {
	int fd;
	nghttp2_session *sess;
	int want_out; /* EPOLLOUT armed */
	int dead;
	struct gstream *streams; /* nghttp2_session_del calls no close callback */
	struct gconn *next, *prev;
};

/* A call handed to a worker. */
struct gcall {
	struct gout *out;
	const struct gmethod *m;
	uint8_t *body;
	size_t len;
	void *svc;
	ProtobufCAllocator alloc; /* allocates in arena */
	ef_arena *arena;
};

typedef void (*gunary_fn)(struct gcall *call);

struct gmethod {
	const char *path;
	int server_stream, client_stream;
	gunary_fn unary;                /* worker thread */
	int (*open)(struct gstream *s); /* loop thread; 0 or sends a status */
	void (*msg)(struct gstream *s, const uint8_t *p, size_t n); /* loop thread */
	void (*close)(struct gstream *s);                           /* loop thread */
	void (*half_close)(struct gstream *s);                      /* loop thread, optional */
};

/* loop.c */
extern struct grpc_global {
	node *n;
	size_t max_msg;
	char adv_urls[1024];
} grpcsrv;
void gloop_wake(struct gout *o);
int gloop_submit(struct gcall *call); /* queue for a worker; 0 or -1 */
void gloop_conn_dirty(struct gconn *c);

/* conn.c */
struct gconn *gconn_new(int fd, const void *pre, size_t n);
int gconn_on_read(struct gconn *c);  /* -1: close */
int gconn_on_write(struct gconn *c); /* -1: close */
void gconn_free(struct gconn *c);
void gconn_flush(struct gconn *c);
void gstream_wake(struct gstream *s);
/* Answer a stream that has sent nothing yet with a trailers-only status. */
void gstream_fail(struct gstream *s, int code, const char *msg);

/* gout: any thread. */
struct gout *gout_new(void);
void gout_ref(struct gout *o);
void gout_unref(struct gout *o);
/* Queue one message (the prefix is added); 0, -1 when gone or (limit > 0)
 * more than limit bytes already wait. */
int gout_push_msg(struct gout *o, const ProtobufCMessage *m, size_t limit);
void gout_end(struct gout *o, int status, const char *msg);

/* dispatch.c */
const struct gmethod *gmethod_find(const char *path, int *unknown_service);

/* convert.c */
void gconv_header(Etcdserverpb__ResponseHeader *h, const ef_resp_header *r);
void gconv_status_header(Etcdserverpb__ResponseHeader *h);
Mvccpb__KeyValue *gconv_kv(ef_arena *a, const ef_kv *kv);
Mvccpb__KeyValue **gconv_kvs(ef_arena *a, const ef_kv *kvs, uint32_t n);
ef_buf gconv_bytes(ProtobufCBinaryData b);
int gconv_range_req(const Etcdserverpb__RangeRequest *r, ef_range_req *o);
void gconv_put_req(const Etcdserverpb__PutRequest *r, ef_put_req *o);
void gconv_delete_req(const Etcdserverpb__DeleteRangeRequest *r, ef_delete_req *o);
int gconv_txn_req(ef_arena *a, const Etcdserverpb__TxnRequest *r, ef_txn_req *o);
Etcdserverpb__RangeResponse *gconv_range_resp(ef_arena *a, const ef_msg *m, const ef_range_resp *r);
Etcdserverpb__PutResponse *gconv_put_resp(ef_arena *a, const ef_msg *m, const ef_put_resp *r);
Etcdserverpb__DeleteRangeResponse *gconv_delete_resp(ef_arena *a, const ef_msg *m,
						     const ef_delete_resp *r);
Etcdserverpb__TxnResponse *gconv_txn_resp(ef_arena *a, const ef_msg *m);
Etcdserverpb__WatchResponse *gconv_watch_resp(ef_arena *a, const ef_msg *m);

/* Calls (worker thread): decode the request, run it, answer. */
void *gcall_decode(struct gcall *call, const ProtobufCMessageDescriptor *d);
void gcall_reply(struct gcall *call, const ProtobufCMessage *m);
void gcall_fail(struct gcall *call, int status, const char *msg);
/* node_call with etcd's error mapping; 0 or the call was answered. */
int gcall_node(struct gcall *call, const ef_msg *req, ef_msg *resp);
void gcall_fail_code(struct gcall *call, int ef_code, const ef_msg *resp);

/* Services (method handlers). */
void gkv_range(struct gcall *c);
void gkv_put(struct gcall *c);
void gkv_delete(struct gcall *c);
void gkv_txn(struct gcall *c);
void gkv_compact(struct gcall *c);
void glease_grant(struct gcall *c);
void glease_revoke(struct gcall *c);
void glease_ttl(struct gcall *c);
void glease_leases(struct gcall *c);
int glease_ka_open(struct gstream *s);
void glease_ka_msg(struct gstream *s, const uint8_t *p, size_t n);
void glease_ka_close(struct gstream *s);
void glease_ka_half_close(struct gstream *s);
int gwatch_open(struct gstream *s);
void gwatch_msg(struct gstream *s, const uint8_t *p, size_t n);
void gwatch_close(struct gstream *s);
void gmaint_status(struct gcall *c);
void gmaint_alarm(struct gcall *c);
void gmaint_defrag(struct gcall *c);
void gmaint_hash(struct gcall *c);
void gmaint_hashkv(struct gcall *c);
void gmaint_move_leader(struct gcall *c);
void gcluster_member_list(struct gcall *c);
void gcluster_member_add(struct gcall *c);
void gcluster_member_remove(struct gcall *c);
void gcluster_member_update(struct gcall *c);
void gcluster_member_promote(struct gcall *c);
void gauth_authenticate(struct gcall *c);
void gauth_disable(struct gcall *c);
void gauth_user_list(struct gcall *c);
void gauth_role_list(struct gcall *c);
void ghealth_check(struct gcall *c);

#endif
