/*
 * conn.c - one HTTP/2 connection: an nghttp2 server session fed by the loop.
 *
 * nghttp2 does the HTTP/2 framing, HPACK, flow control, PING answers and
 * the protocol checks; this file does gRPC on top: it cuts each stream's
 * DATA into length-prefixed messages (5-byte prefix, no compression),
 * enforces the receive limit (max request bytes + 512 KiB, as etcd's
 * MaxCallRecvMsgSize), picks the method from :path and answers
 *
 *   HEADERS :status 200, content-type application/grpc
 *   DATA    the queued response messages, as the stream's window allows
 *   HEADERS grpc-status, grpc-message (trailers, END_STREAM)
 *
 * or, for a call that fails before any message, one trailers-only HEADERS.
 * Each stream has its own data provider reading from its own gout, so a
 * watcher that reads slowly only fills its own window and queue: nghttp2
 * keeps sending the other streams' frames.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "grpc_int.h"
#include "../log.h"

#define MAX_CONCURRENT_STREAMS 100000
#define READ_CHUNK 65536

/* ------------------------------------------------------------------ */
/* gout                                                                 */

struct gout *gout_new(void)
{
	struct gout *o = calloc(1, sizeof(*o));

	if (!o)
		return NULL;
	pthread_mutex_init(&o->mu, NULL);
	o->refs = 1;
	return o;
}

void gout_ref(struct gout *o)
{
	pthread_mutex_lock(&o->mu);
	o->refs++;
	pthread_mutex_unlock(&o->mu);
}

void gout_unref(struct gout *o)
{
	int last;

	pthread_mutex_lock(&o->mu);
	last = --o->refs == 0;
	pthread_mutex_unlock(&o->mu);
	if (!last)
		return;
	while (o->head) {
		struct gbuf *b = o->head;

		o->head = b->next;
		free(b);
	}
	pthread_mutex_destroy(&o->mu);
	free(o);
}

int gout_push_msg(struct gout *o, const ProtobufCMessage *m, size_t limit)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	struct gbuf *b;

	pthread_mutex_lock(&o->mu);
	if (o->gone || o->ended || (limit && o->bytes > limit)) {
		pthread_mutex_unlock(&o->mu);
		return -1;
	}
	pthread_mutex_unlock(&o->mu);
	b = malloc(sizeof(*b) + GRPC_MSG_PREFIX + n);
	if (!b)
		return -1;
	b->next = NULL;
	b->off = 0;
	b->len = GRPC_MSG_PREFIX + n;
	b->data[0] = 0;
	ef_be32(b->data + 1, (uint32_t)n);
	protobuf_c_message_pack(m, b->data + GRPC_MSG_PREFIX);
	pthread_mutex_lock(&o->mu);
	if (o->gone || o->ended) {
		pthread_mutex_unlock(&o->mu);
		free(b);
		return -1;
	}
	if (o->tail)
		o->tail->next = b;
	else
		o->head = b;
	o->tail = b;
	o->bytes += b->len;
	pthread_mutex_unlock(&o->mu);
	gloop_wake(o);
	return 0;
}

void gout_end(struct gout *o, int status, const char *msg)
{
	pthread_mutex_lock(&o->mu);
	if (!o->ended) {
		o->ended = 1;
		o->status = status;
		snprintf(o->message, sizeof(o->message), "%s", msg ? msg : "");
	}
	pthread_mutex_unlock(&o->mu);
	gloop_wake(o);
}

/* ------------------------------------------------------------------ */
/* Responses                                                            */

#define NV(n, v)                                                          \
	{                                                                 \
		(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), \
			NGHTTP2_NV_FLAG_NO_COPY_NAME                      \
	}

/* grpc-message is percent-encoded (gRPC over HTTP/2, "Percent-Encoded"). */
static void pct_encode(char *out, size_t cap, const char *in)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t k = 0;

	for (; *in && k + 4 < cap; in++) {
		unsigned char ch = (unsigned char)*in;

		if (ch >= 0x20 && ch <= 0x7e && ch != '%') {
			out[k++] = (char)ch;
		} else {
			out[k++] = '%';
			out[k++] = hex[ch >> 4];
			out[k++] = hex[ch & 15];
		}
	}
	out[k] = 0;
}

static void submit_trailers(struct gstream *s, int status, const char *msg)
{
	char code[16], enc[800];

	snprintf(code, sizeof(code), "%d", status);
	pct_encode(enc, sizeof(enc), msg);
	nghttp2_nv nv[2] = {NV("grpc-status", code), NV("grpc-message", enc)};
	nghttp2_submit_trailer(s->c->sess, s->id, nv, msg && *msg ? 2 : 1);
	s->done = 1;
}

void gstream_fail(struct gstream *s, int code, const char *msg)
{
	char c[16], enc[800];

	if (s->done || s->headers_sent)
		return;
	snprintf(c, sizeof(c), "%d", code);
	pct_encode(enc, sizeof(enc), msg ? msg : "");
	nghttp2_nv nv[4] = {NV(":status", "200"), NV("content-type", "application/grpc"),
			    NV("grpc-status", c), NV("grpc-message", enc)};
	nghttp2_submit_headers(s->c->sess, NGHTTP2_FLAG_END_STREAM, s->id, NULL, nv,
			       msg && *msg ? 4 : 3, NULL);
	s->done = 1;
	pthread_mutex_lock(&s->out->mu);
	s->out->ended = 1;
	pthread_mutex_unlock(&s->out->mu);
	/* The client may still be sending: once the status is on the wire
	 * (nghttp2 would send an RST_STREAM before queued HEADERS), on_frame_send
	 * tells it to stop. */
	s->rst_after = 1;
}

static ssize_t data_read(nghttp2_session *sess, int32_t id, uint8_t *buf, size_t len,
			 uint32_t *flags, nghttp2_data_source *src, void *ud)
{
	struct gstream *s = src->ptr;
	struct gout *o = s->out;
	size_t k = 0;
	int ended, status;
	char msg[256];

	pthread_mutex_lock(&o->mu);
	while (o->head && k < len) {
		struct gbuf *b = o->head;
		size_t t = b->len - b->off;

		if (t > len - k)
			t = len - k;
		memcpy(buf + k, b->data + b->off, t);
		b->off += t;
		k += t;
		o->bytes -= t;
		if (b->off == b->len) {
			o->head = b->next;
			if (!o->head)
				o->tail = NULL;
			free(b);
		}
	}
	ended = o->ended && !o->head;
	status = o->status;
	memcpy(msg, o->message, sizeof(msg));
	pthread_mutex_unlock(&o->mu);
	if (ended) {
		*flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
		submit_trailers(s, status, msg);
		return (ssize_t)k;
	}
	if (!k) {
		s->deferred = 1;
		return NGHTTP2_ERR_DEFERRED;
	}
	return (ssize_t)k;
}

/* The loop saw a wake for s: start the response, or resume its data. */
void gstream_wake(struct gstream *s)
{
	int has, ended, status;
	char msg[256];

	if (s->done)
		return;
	pthread_mutex_lock(&s->out->mu);
	has = s->out->head != NULL;
	ended = s->out->ended;
	status = s->out->status;
	memcpy(msg, s->out->message, sizeof(msg));
	pthread_mutex_unlock(&s->out->mu);
	if (!s->headers_sent) {
		nghttp2_nv nv[2] = {NV(":status", "200"), NV("content-type", "application/grpc")};
		nghttp2_data_provider dp = {.source.ptr = s, .read_callback = data_read};

		if (!has && !ended)
			return;
		if (!has && ended && status != GS_OK) {
			gstream_fail(s, status, msg);
			return;
		}
		s->headers_sent = 1;
		nghttp2_submit_response(s->c->sess, s->id, nv, 2, &dp);
		return;
	}
	if (s->deferred) {
		s->deferred = 0;
		nghttp2_session_resume_data(s->c->sess, s->id);
	}
}

/* ------------------------------------------------------------------ */
/* Requests                                                             */

static void dispatch_msg(struct gstream *s, const uint8_t *p, size_t n)
{
	s->msgs++;
	if (s->m->client_stream) {
		s->m->msg(s, p, n);
		return;
	}
	if (s->msgs > 1) {
		gstream_fail(s, GS_UNIMPLEMENTED,
			     "grpc: more than one request message for a unary call");
		return;
	}
	{
		struct gcall *call = calloc(1, sizeof(*call));

		if (!call || !(call->body = malloc(n ? n : 1)) || !(call->arena = ef_arena_new())) {
			if (call) {
				free(call->body);
				free(call);
			}
			gstream_fail(s, GS_RESOURCE_EXHAUSTED, "etcfs: out of memory");
			return;
		}
		memcpy(call->body, p, n);
		call->len = n;
		call->m = s->m;
		call->out = s->out;
		gout_ref(s->out);
		if (gloop_submit(call)) {
			gout_unref(call->out);
			ef_arena_free(call->arena);
			free(call->body);
			free(call);
			gstream_fail(s, GS_UNAVAILABLE, "etcdserver: server stopped");
		}
	}
}

/* Cut s->in into messages. */
static void take_messages(struct gstream *s)
{
	size_t off = 0;

	while (!s->done && s->in_len - off >= GRPC_MSG_PREFIX) {
		const uint8_t *p = s->in + off;
		uint32_t n = ef_get_be32(p + 1);
		char m[160];

		if (p[0] != 0) {
			gstream_fail(s, GS_UNIMPLEMENTED,
				     "grpc: compressed messages are not supported by etcfs");
			break;
		}
		if (n > grpcsrv.max_msg) {
			snprintf(m, sizeof(m),
				 "grpc: received message larger than max (%u vs. %zu)", n,
				 grpcsrv.max_msg);
			gstream_fail(s, GS_RESOURCE_EXHAUSTED, m);
			break;
		}
		if (s->in_len - off < GRPC_MSG_PREFIX + (size_t)n)
			break;
		dispatch_msg(s, p + GRPC_MSG_PREFIX, n);
		off += GRPC_MSG_PREFIX + n;
	}
	if (s->done) {
		s->in_len = 0;
		return;
	}
	memmove(s->in, s->in + off, s->in_len - off);
	s->in_len -= off;
}

static int on_begin_headers(nghttp2_session *sess, const nghttp2_frame *f, void *ud)
{
	struct gconn *c = ud;
	struct gstream *s;

	if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	s = calloc(1, sizeof(*s));
	if (!s || !(s->out = gout_new())) {
		free(s);
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	}
	s->c = c;
	s->id = f->hd.stream_id;
	s->out->s = s;
	s->next = c->streams;
	if (c->streams)
		c->streams->prev = s;
	c->streams = s;
	nghttp2_session_set_stream_user_data(sess, s->id, s);
	return 0;
}

static int on_header(nghttp2_session *sess, const nghttp2_frame *f, const uint8_t *name,
		     size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
	struct gstream *s = nghttp2_session_get_stream_user_data(sess, f->hd.stream_id);

	if (!s || f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	if (nlen == 5 && memcmp(name, ":path", 5) == 0)
		snprintf(s->path, sizeof(s->path), "%.*s", (int)vlen, (const char *)value);
	else if (nlen == 9 && memcmp(name, "hasleader", 9) == 0)
		s->hasleader = vlen == 4 && memcmp(value, "true", 4) == 0;
	else if (nlen == 13 && memcmp(name, "grpc-encoding", 13) == 0)
		s->bad_encoding = !(vlen == 8 && memcmp(value, "identity", 8) == 0);
	return 0;
}

static void request_headers_done(struct gstream *s)
{
	int unknown_service = 0;
	char m[200];

	s->m = gmethod_find(s->path, &unknown_service);
	if (!s->m) {
		const char *slash = strrchr(s->path, '/');
		int svc_len = slash && slash > s->path ? (int)(slash - s->path - 1) : 0;

		if (unknown_service || !slash)
			snprintf(m, sizeof(m), "unknown service %.*s", svc_len,
				 s->path[0] ? s->path + 1 : "");
		else
			snprintf(m, sizeof(m), "unknown method %s for service %.*s", slash + 1,
				 svc_len, s->path + 1);
		gstream_fail(s, GS_UNIMPLEMENTED, m);
		return;
	}
	if (s->bad_encoding) {
		gstream_fail(s, GS_UNIMPLEMENTED,
			     "grpc: Decompressor is not installed for grpc-encoding");
		return;
	}
	if (s->hasleader) {
		node_status st;

		node_get_status(grpcsrv.n, &st);
		if (!st.has_leader) {
			gstream_fail(s, GS_UNAVAILABLE, ef_strerror(EF_E_NO_LEADER));
			return;
		}
	}
	if (s->m->open && s->m->open(s))
		return;
}

static int on_frame_recv(nghttp2_session *sess, const nghttp2_frame *f, void *ud)
{
	struct gstream *s = nghttp2_session_get_stream_user_data(sess, f->hd.stream_id);

	if (!s)
		return 0;
	if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST)
		request_headers_done(s);
	if ((f->hd.type == NGHTTP2_HEADERS || f->hd.type == NGHTTP2_DATA) &&
	    (f->hd.flags & NGHTTP2_FLAG_END_STREAM) && !s->done && s->m) {
		if (s->in_len)
			gstream_fail(s, GS_INTERNAL, "grpc: truncated request message");
		else if (!s->m->client_stream && !s->msgs)
			gstream_fail(s, GS_INTERNAL, "grpc: no request message for a unary call");
		else if (s->m->half_close)
			s->m->half_close(s);
	}
	return 0;
}

static int on_data_chunk(nghttp2_session *sess, uint8_t flags, int32_t id, const uint8_t *data,
			 size_t len, void *ud)
{
	struct gstream *s = nghttp2_session_get_stream_user_data(sess, id);

	if (!s || s->done || !s->m)
		return 0;
	if (s->in_len + len > s->in_cap) {
		size_t cap = s->in_cap ? s->in_cap : 4096;
		uint8_t *p;

		while (cap < s->in_len + len)
			cap *= 2;
		if (cap > grpcsrv.max_msg + GRPC_MSG_PREFIX + READ_CHUNK)
			cap = grpcsrv.max_msg + GRPC_MSG_PREFIX + READ_CHUNK;
		if (cap < s->in_len + len || !(p = realloc(s->in, cap))) {
			gstream_fail(s, GS_RESOURCE_EXHAUSTED, "etcfs: request buffer");
			return 0;
		}
		s->in = p;
		s->in_cap = cap;
	}
	memcpy(s->in + s->in_len, data, len);
	s->in_len += len;
	take_messages(s);
	return 0;
}

static void stream_free(struct gstream *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		s->c->streams = s->next;
	if (s->next)
		s->next->prev = s->prev;
	if (s->m && s->m->close)
		s->m->close(s);
	pthread_mutex_lock(&s->out->mu);
	s->out->gone = 1;
	s->out->s = NULL;
	pthread_mutex_unlock(&s->out->mu);
	gout_unref(s->out);
	free(s->in);
	free(s);
}

static int on_stream_close(nghttp2_session *sess, int32_t id, uint32_t err, void *ud)
{
	struct gstream *s = nghttp2_session_get_stream_user_data(sess, id);

	if (!s)
		return 0;
	nghttp2_session_set_stream_user_data(sess, id, NULL);
	stream_free(s);
	return 0;
}

static int on_frame_send(nghttp2_session *sess, const nghttp2_frame *f, void *ud)
{
	struct gstream *s = nghttp2_session_get_stream_user_data(sess, f->hd.stream_id);

	if (s && s->rst_after && f->hd.type == NGHTTP2_HEADERS &&
	    (f->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
		s->rst_after = 0;
		if (!nghttp2_session_get_stream_remote_close(sess, s->id))
			nghttp2_submit_rst_stream(sess, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_NO_ERROR);
	}
	return 0;
}

static ssize_t on_send(nghttp2_session *sess, const uint8_t *data, size_t len, int flags, void *ud)
{
	struct gconn *c = ud;
	ssize_t k = send(c->fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);

	if (k < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
			c->want_out = 1;
			return NGHTTP2_ERR_WOULDBLOCK;
		}
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	}
	return k;
}

/* ------------------------------------------------------------------ */
/* Connection                                                           */

struct gconn *gconn_new(int fd, const void *pre, size_t n)
{
	nghttp2_session_callbacks *cb;
	struct gconn *c = calloc(1, sizeof(*c));
	nghttp2_settings_entry iv[] = {
		{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, MAX_CONCURRENT_STREAMS},
		{NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, 64 * 1024},
	};

	if (!c) {
		close(fd);
		return NULL;
	}
	c->fd = fd;
	if (nghttp2_session_callbacks_new(&cb)) {
		close(fd);
		free(c);
		return NULL;
	}
	nghttp2_session_callbacks_set_send_callback(cb, on_send);
	nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
	nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
	if (nghttp2_session_server_new(&c->sess, cb, c)) {
		nghttp2_session_callbacks_del(cb);
		close(fd);
		free(c);
		return NULL;
	}
	nghttp2_session_callbacks_del(cb);
	nghttp2_submit_settings(c->sess, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0]));
	if (n && nghttp2_session_mem_recv(c->sess, pre, n) < 0)
		c->dead = 1;
	return c;
}

int gconn_on_read(struct gconn *c)
{
	uint8_t buf[READ_CHUNK];

	for (;;) {
		ssize_t k = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);

		if (k == 0)
			return -1;
		if (k < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -1;
		if (nghttp2_session_mem_recv(c->sess, buf, (size_t)k) < 0) {
			/* nghttp2 queued a GOAWAY for a protocol error: try to send it. */
			nghttp2_session_send(c->sess);
			return -1;
		}
		if ((size_t)k < sizeof(buf))
			return 0;
	}
}

int gconn_on_write(struct gconn *c)
{
	c->want_out = 0;
	return nghttp2_session_send(c->sess) ? -1 : 0;
}

void gconn_flush(struct gconn *c)
{
	if (c->dead)
		return;
	c->want_out = 0;
	if (nghttp2_session_send(c->sess))
		c->dead = 1;
	else if (!nghttp2_session_want_read(c->sess) && !nghttp2_session_want_write(c->sess))
		c->dead = 1;
}

void gconn_free(struct gconn *c)
{
	while (c->streams)
		stream_free(c->streams);
	nghttp2_session_del(c->sess);
	close(c->fd);
	free(c);
}
