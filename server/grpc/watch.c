/*
 * watch.c - the Watch service: one bidirectional stream carrying any number
 * of watches, backed by one node watch stream (node_wstream_*).
 *
 * Requests (create with its filters, cancel, progress) are decoded on the
 * loop thread and handed to the hub, which answers through watch_cb on its
 * own thread: the answer is encoded there and queued on the stream's gout.
 * When more than GRPC_STREAM_MAX_QUEUED bytes wait because the client reads
 * slowly (its HTTP/2 window is full), watch_cb refuses and the hub keeps
 * the events, backs off, and catches the watches up from the store later:
 * a slow watcher costs its own queue, never the loop or other streams.
 */
#include <stdlib.h>
#include <string.h>

#include "grpc_int.h"

struct wstate {
	node_wstream *ws;
	struct gout *out;
	uint64_t next_id;
};

static int watch_cb(void *ud, const ef_msg *m)
{
	struct wstate *w = ud;
	ef_arena *a = ef_arena_new();
	Etcdserverpb__WatchResponse *r;
	int rc = 0;

	if (!a)
		return -1;
	r = gconv_watch_resp(a, m);
	if (!r) {
		rc = -1;
	} else if (gout_push_msg(w->out, &r->base, GRPC_STREAM_MAX_QUEUED)) {
		int gone;

		pthread_mutex_lock(&w->out->mu);
		gone = w->out->gone || w->out->ended;
		pthread_mutex_unlock(&w->out->mu);
		rc = gone ? 0 : -1; /* a closed stream takes (drops) everything */
	}
	ef_arena_free(a);
	return rc;
}

int gwatch_open(struct gstream *s)
{
	struct wstate *w = calloc(1, sizeof(*w));

	if (!w || node_wstream_open(grpcsrv.n, watch_cb, w, &w->ws)) {
		free(w);
		gstream_fail(s, GS_UNAVAILABLE, ef_strerror(EF_E_STOPPING));
		return -1;
	}
	w->out = s->out;
	gout_ref(s->out);
	s->svc = w;
	return 0;
}

void gwatch_msg(struct gstream *s, const uint8_t *p, size_t n)
{
	struct wstate *w = s->svc;
	Etcdserverpb__WatchRequest *r;
	ef_msg req;
	int rc;

	if (!w)
		return;
	r = etcdserverpb__watch_request__unpack(NULL, n, p);
	if (!r) {
		gout_end(s->out, GS_INTERNAL,
			 "grpc: error unmarshalling request: malformed etcdserverpb.WatchRequest "
			 "message");
		return;
	}
	memset(&req, 0, sizeof(req));
	req.id = ++w->next_id;
	switch (r->request_union_case) {
	case ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_CREATE_REQUEST: {
		const Etcdserverpb__WatchCreateRequest *c = r->create_request;
		ef_watch_create_req *d = &req.u.watch_create;

		req.type = EF_MSG_WATCH_CREATE;
		d->key = gconv_bytes(c->key);
		d->range_end = gconv_bytes(c->range_end);
		d->start_revision = c->start_revision;
		d->watch_id = c->watch_id;
		d->progress_notify = c->progress_notify;
		d->prev_kv = c->prev_kv;
		d->fragment = c->fragment;
		for (size_t i = 0; i < c->n_filters; i++) {
			if (c->filters[i] == ETCDSERVERPB__WATCH_CREATE_REQUEST__FILTER_TYPE__NOPUT)
				d->no_put = 1;
			else if (c->filters[i] ==
				 ETCDSERVERPB__WATCH_CREATE_REQUEST__FILTER_TYPE__NODELETE)
				d->no_delete = 1;
		}
		break;
	}
	case ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_CANCEL_REQUEST:
		req.type = EF_MSG_WATCH_CANCEL;
		req.u.watch_cancel.watch_id = r->cancel_request->watch_id;
		break;
	case ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_PROGRESS_REQUEST:
		req.type = EF_MSG_WATCH_PROGRESS;
		break;
	default:
		/* etcd ignores an empty WatchRequest */
		etcdserverpb__watch_request__free_unpacked(r, NULL);
		return;
	}
	rc = node_wstream_request(w->ws, &req);
	etcdserverpb__watch_request__free_unpacked(r, NULL);
	if (rc)
		gout_end(s->out, ef_grpc_code(rc), ef_strerror(rc));
}

void gwatch_close(struct gstream *s)
{
	struct wstate *w = s->svc;

	if (!w)
		return;
	node_wstream_close(w->ws);
	gout_unref(w->out);
	free(w);
	s->svc = NULL;
}
