/*
 * members.c - the member table, fixed at bootstrap.
 *
 * --initial-cluster names every member; a member's id hashes its name, peer
 * URL and the cluster token, and the cluster id hashes every id (sorted) and
 * the token, so every member computes the same ids without talking.  Client
 * URLs are not configured per peer: each member proposes its own through
 * Raft (a MEMBER_ATTR entry) and they are kept in the store's meta table
 * ("member/<id hex>"), so they travel with snapshots.
 *
 * Membership changes (etcd's member add/remove/update/promote): the leader
 * checks the request against its table (node_member_change), the loop
 * proposes it (node_member_propose: a RAFT_ENTRY_CONF entry whose context
 * is the request, or a normal entry for an update, which changes no vote),
 * and every member applies it when committed (node_member_apply): the table
 * changes, the peer transport dials the new member or drops the removed one,
 * and the table is written to the store's meta table ("members") in the
 * apply transaction, so it is as durable as the applied index and travels
 * in snapshots.  A removed slot is marked gone, never reused while the
 * table has room: fwd[] and snap_sending[] are indexed by slot.
 */
#include <inttypes.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <signal.h>
#include <time.h>
#include <unistd.h>

#include "../../common/clock.h"
#include "../log.h"
#include "node_int.h"

static uint64_t hash64(const char *a, const char *b, const char *c)
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned int dl;
	EVP_MD_CTX *s = EVP_MD_CTX_new();
	EVP_DigestInit_ex(s, EVP_sha256(), NULL);
	EVP_DigestUpdate(s, a, strlen(a) + 1);
	EVP_DigestUpdate(s, b, strlen(b) + 1);
	EVP_DigestUpdate(s, c, strlen(c) + 1);
	EVP_DigestFinal_ex(s, d, &dl);
	EVP_MD_CTX_free(s);
	uint64_t v = ef_get_be64(d);
	return v ? v : 1;
}

/* ------------------------------------------------------------------ */
/* Members.                                                             */

struct member *node_member_by_id(node *n, uint64_t id)
{
	for (int i = 0; i < n->n_members; i++)
		if (n->members[i].id == id && !n->members[i].gone)
			return &n->members[i];
	return NULL;
}

int node_members_parse(node *n, const char *spec, char *err, size_t errlen)
{
	char *copy = strdup(spec), *save = NULL;
	for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(item, '=');
		if (!eq || eq == item || !eq[1]) {
			snprintf(err, errlen, "--initial-cluster: '%s' is not name=url", item);
			free(copy);
			return EF_E_INVALID;
		}
		*eq = 0;
		const char *url = eq + 1;
		char norm[300];
		if (strncmp(url, "http://", 7) == 0)
			snprintf(norm, sizeof norm, "tcp://%s", url + 7);
		else
			snprintf(norm, sizeof norm, "%s", url);
		if (n->n_members >= MAX_MEMBERS) {
			snprintf(err, errlen, "--initial-cluster: at most %d members", MAX_MEMBERS);
			free(copy);
			return EF_E_INVALID;
		}
		struct member *m = &n->members[n->n_members++];
		snprintf(m->name, sizeof m->name, "%s", item);
		snprintf(m->peer_url, sizeof m->peer_url, "%s", norm);
		m->id = hash64(m->name, m->peer_url, n->cfg.initial_cluster_token);
	}
	free(copy);
	if (n->n_members == 0) {
		snprintf(err, errlen, "--initial-cluster is empty");
		return EF_E_INVALID;
	}
	/* cluster id: every member's id and the token, order-independent */
	uint64_t ids[MAX_MEMBERS];
	for (int i = 0; i < n->n_members; i++)
		ids[i] = n->members[i].id;
	for (int i = 0; i < n->n_members; i++)
		for (int j = i + 1; j < n->n_members; j++)
			if (ids[j] < ids[i]) {
				uint64_t t = ids[i];
				ids[i] = ids[j];
				ids[j] = t;
			}
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned int dl;
	EVP_MD_CTX *s = EVP_MD_CTX_new();
	EVP_DigestInit_ex(s, EVP_sha256(), NULL);
	EVP_DigestUpdate(s, ids, sizeof(uint64_t) * (size_t)n->n_members);
	EVP_DigestUpdate(s, n->cfg.initial_cluster_token, strlen(n->cfg.initial_cluster_token));
	EVP_DigestFinal_ex(s, d, &dl);
	EVP_MD_CTX_free(s);
	n->cluster_id = ef_get_be64(d);
	/* Raft's configuration at index 0 (a bootstrap member's). */
	n->n_base = n->n_members;
	for (int i = 0; i < n->n_members; i++)
		n->base_ids[i] = n->members[i].id;
	n->id = 0;
	for (int i = 0; i < n->n_members; i++)
		if (strcmp(n->members[i].name, n->cfg.name) == 0)
			n->id = n->members[i].id;
	if (!n->id) {
		snprintf(err, errlen, "--initial-cluster has no member named '%s' (--name)",
			 n->cfg.name);
		return EF_E_INVALID;
	}
	return 0;
}

/* Published client URLs are kept in the store ("member/<id hex>"), so
 * they travel with snapshots; reload them into members[]. */
void node_members_load_attrs(node *n)
{
	ef_arena *a = ef_arena_new();
	for (int i = 0; i < n->n_members; i++) {
		char key[64];
		snprintf(key, sizeof key, "member/%016" PRIx64, n->members[i].id);
		ef_buf v;
		if (store_meta_get(n->st, key, &v, a) == 0) {
			size_t len = v.n < sizeof n->members[i].client_urls - 1
					     ? v.n
					     : sizeof n->members[i].client_urls - 1;
			pthread_mutex_lock(&n->mu);
			memcpy(n->members[i].client_urls, v.p, len);
			n->members[i].client_urls[len] = 0;
			pthread_mutex_unlock(&n->mu);
		}
	}
	ef_arena_free(a);
}

/* The table as ef_members in a (mu held); returns the count. */
static uint32_t members_fill(node *n, ef_member *ms, ef_arena *a)
{
	uint32_t k = 0;
	for (int jm = 0; jm < n->n_members; jm++) {
		struct member *m = &n->members[jm];
		if (m->gone)
			continue;
		uint32_t i = k++;
		memset(&ms[i], 0, sizeof ms[i]);
		ms[i].id = m->id;
		ms[i].is_learner = (uint8_t)m->is_learner;
		ms[i].name = (ef_buf){ef_arena_dup(a, m->name, strlen(m->name)),
				      (uint32_t)strlen(m->name)};
		ms[i].peer_urls = ef_arena_alloc(a, sizeof(ef_buf));
		if (ms[i].peer_urls) {
			ms[i].peer_urls[0] =
				(ef_buf){ef_arena_dup(a, m->peer_url, strlen(m->peer_url)),
					 (uint32_t)strlen(m->peer_url)};
			ms[i].n_peer_urls = 1;
		}
		/* client urls: comma list -> array */
		char *cu = m->client_urls;
		uint32_t cnt = 0;
		if (*cu) {
			cnt = 1;
			for (char *q = cu; *q; q++)
				cnt += *q == ',';
		}
		ms[i].client_urls = cnt ? ef_arena_alloc(a, sizeof(ef_buf) * cnt) : NULL;
		if (ms[i].client_urls) {
			const char *s = cu;
			for (uint32_t j = 0; j < cnt; j++) {
				const char *e = strchr(s, ',');
				size_t len = e ? (size_t)(e - s) : strlen(s);
				ms[i].client_urls[j] =
					(ef_buf){ef_arena_dup(a, s, len), (uint32_t)len};
				s = e ? e + 1 : s + len;
			}
			ms[i].n_client_urls = cnt;
		}
	}
	return k;
}

int node_member_list(node *n, ef_msg *resp, ef_arena *a)
{
	memset(resp, 0, sizeof *resp);
	resp->type = EF_MSG_MEMBER_LIST_RESP;
	ef_member *ms = ef_arena_alloc(a, sizeof(ef_member) * MAX_MEMBERS);
	if (!ms)
		return node_set_error(resp, a, EF_E_NOMEM, NULL);
	pthread_mutex_lock(&n->mu);
	uint32_t k = members_fill(n, ms, a);
	pthread_mutex_unlock(&n->mu);
	resp->u.member_list_resp.members = ms;
	resp->u.member_list_resp.n_members = k;
	node_fill_hdr(n, &resp->hdr);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Membership changes.                                                  */

static void norm_url(const ef_buf *u, char *out, size_t len)
{
	char tmp[320];
	snprintf(tmp, sizeof tmp, "%.*s", (int)u->n, (const char *)u->p);
	if (strncmp(tmp, "http://", 7) == 0)
		snprintf(out, len, "tcp://%s", tmp + 7);
	else
		snprintf(out, len, "%s", tmp);
}

static int url_valid(const char *u)
{
	const char *s = strstr(u, "://");
	return s && s != u && strchr(s + 3, ':') && s[3] != ':';
}

/* The leader checks a change against its table, then has the loop propose
 * it; a change refused for one still in flight is retried until the
 * request's deadline. */
int node_member_change(node *n, const ef_msg *req, ef_msg *resp, ef_arena *a)
{
	int64_t deadline = clock_mono_ms() + n->cfg.request_timeout_ms;
	ef_msg r = *req;
	const ef_member_req *q = &req->u.member;
	char url[320] = "", name[64];
	int code = 0;

	if (req->type == EF_MSG_MEMBER_ADD || req->type == EF_MSG_MEMBER_UPDATE) {
		if (q->n_peer_urls == 0)
			return node_set_error(resp, a, EF_E_BAD_URLS, NULL);
		for (uint32_t i = 0; i < q->n_peer_urls; i++) {
			norm_url(&q->peer_urls[i], url, sizeof url);
			if (!url_valid(url))
				return node_set_error(resp, a, EF_E_BAD_URLS, NULL);
		}
		norm_url(&q->peer_urls[0], url, sizeof url);
	}
	snprintf(name, sizeof name, "%.*s", (int)q->name.n, (const char *)q->name.p);
	pthread_mutex_lock(&n->mu);
	struct member *m = req->type == EF_MSG_MEMBER_ADD ? NULL : node_member_by_id(n, q->id);
	for (int i = 0; url[0] && i < n->n_members; i++)
		if (!n->members[i].gone && strcmp(n->members[i].peer_url, url) == 0 &&
		    (req->type == EF_MSG_MEMBER_ADD || n->members[i].id != q->id))
			code = EF_E_PEER_URL_EXISTS;
	if (req->type == EF_MSG_MEMBER_ADD) {
		r.u.member.id = hash64(name, url, n->cfg.initial_cluster_token);
		if (!code && node_member_by_id(n, r.u.member.id))
			code = EF_E_MEMBER_EXISTS;
	} else if (!m) {
		code = EF_E_MEMBER_NOT_FOUND;
	} else if (req->type == EF_MSG_MEMBER_PROMOTE && !m->is_learner) {
		code = EF_E_MEMBER_NOT_LEARNER;
	}
	pthread_mutex_unlock(&n->mu);
	if (code)
		return node_set_error(resp, a, code, NULL);
	for (;;) {
		struct waiter w = {0};
		node_cond_init_mono(&w.cv);
		w.resp = resp;
		w.a = a;
		pthread_mutex_lock(&n->mu);
		node_waiter_add(n, &w);
		pthread_mutex_unlock(&n->mu);
		uint32_t len;
		uint8_t *p = node_payload_make(n, PAYLOAD_MEMBER, w.id, &r, &len);
		struct ev *e = calloc(1, sizeof *e);
		if (!p || !e) {
			free(p);
			free(e);
			pthread_mutex_lock(&n->mu);
			node_waiter_del(n, &w);
			pthread_mutex_unlock(&n->mu);
			pthread_cond_destroy(&w.cv);
			return node_set_error(resp, a, EF_E_NOMEM, NULL);
		}
		e->kind = EV_MEMBER;
		e->data = p;
		e->len = len;
		e->waiter = w.id;
		node_post(n, e);
		pthread_mutex_lock(&n->mu);
		int rv = node_waiter_wait(n, &w, deadline);
		pthread_mutex_unlock(&n->mu);
		pthread_cond_destroy(&w.cv);
		if (rv == EF_E_TIMEOUT)
			return node_set_error(resp, a, EF_E_TIMEOUT, NULL);
		if (resp->type != EF_MSG_ERROR) {
			node_fill_hdr(n, &resp->hdr);
			return 0;
		}
		if (resp->u.error.code != EF_E_CONF_PENDING || clock_mono_ms() + 100 >= deadline)
			return (int)resp->u.error.code;
		struct timespec ts = {0, 100 * 1000000L};
		nanosleep(&ts, NULL);
	}
}

static int payload_request(const uint8_t *p, uint32_t len, ef_arena *a, ef_msg *req)
{
	if (len < PAYLOAD_HDR + 1 || p[0] != PAYLOAD_MEMBER)
		return EF_E_MALFORMED;
	return ef_decode_body(p[PAYLOAD_HDR], p + PAYLOAD_HDR + 1, len - PAYLOAD_HDR - 1, a, req);
}

static void answer(node *n, uint64_t wid, int code)
{
	pthread_mutex_lock(&n->mu);
	struct waiter *w = wid ? node_waiter_find(n, wid) : NULL;
	if (w) {
		node_waiter_del(n, w);
		node_set_error(w->resp, w->a, code, NULL);
		w->state = W_DONE;
		pthread_cond_signal(&w->cv);
	}
	pthread_mutex_unlock(&n->mu);
}

void node_member_propose(node *n, struct ev *e)
{
	ef_arena *a = ef_arena_new();
	ef_msg req;
	int rc = RAFT_E_INVALID;

	if (a && payload_request(e->data, e->len, a, &req) == 0) {
		const ef_member_req *q = &req.u.member;
		switch (req.type) {
		case EF_MSG_MEMBER_ADD:
			rc = raft_propose_conf(
				n->r, q->is_learner ? RAFT_CONF_ADD_LEARNER : RAFT_CONF_ADD_VOTER,
				q->id, e->data, e->len, NULL);
			break;
		case EF_MSG_MEMBER_REMOVE:
			rc = raft_propose_conf(n->r, RAFT_CONF_REMOVE, q->id, e->data, e->len,
					       NULL);
			break;
		case EF_MSG_MEMBER_PROMOTE:
			rc = raft_propose_conf(n->r, RAFT_CONF_PROMOTE, q->id, e->data, e->len,
					       NULL);
			break;
		case EF_MSG_MEMBER_UPDATE:
			rc = raft_role(n->r) == RAFT_LEADER
				     ? raft_propose(n->r, e->data, e->len, NULL)
				     : RAFT_E_NOT_LEADER;
			break;
		}
	}
	ef_arena_free(a);
	if (rc == 0) {
		pthread_mutex_lock(&n->mu);
		struct waiter *w = node_waiter_find(n, e->waiter);
		if (w)
			w->proposed = 1;
		pthread_mutex_unlock(&n->mu);
	} else {
		int code = rc == RAFT_E_NOT_LEADER                          ? EF_E_NOT_LEADER
			   : rc == RAFT_E_NOT_CAUGHT_UP                     ? EF_E_LEARNER_NOT_READY
			   : rc == RAFT_E_CONF_PENDING || rc == RAFT_E_BUSY ? EF_E_CONF_PENDING
			   : rc == RAFT_E_NOMEM                             ? EF_E_NOMEM
									    : EF_E_INVALID;
		answer(n, e->waiter, code);
	}
	free(e->data);
	free(e);
}

/* "members" in the store's meta table: one line per member,
 * id hex, learner, gone, peer url, name. */
static void members_save(node *n)
{
	char *buf = malloc(MAX_MEMBERS * 512);
	size_t off = 0;
	if (!buf)
		return;
	pthread_mutex_lock(&n->mu);
	for (int i = 0; i < n->n_members; i++) {
		struct member *m = &n->members[i];
		off += (size_t)snprintf(buf + off, 512, "%016" PRIx64 " %d %d %s %s\n", m->id,
					m->is_learner, m->gone, m->peer_url, m->name);
	}
	pthread_mutex_unlock(&n->mu);
	n->io->store_meta_put(n->st, "members", buf, (uint32_t)off);
	free(buf);
}

void node_members_load(node *n)
{
	ef_arena *a = ef_arena_new();
	ef_buf v;
	if (!a || store_meta_get(n->st, "members", &v, a) != 0) {
		ef_arena_free(a);
		return;
	}
	char *s = strndup((const char *)v.p, v.n), *save = NULL;
	struct member ms[MAX_MEMBERS];
	int k = 0;
	for (char *line = strtok_r(s, "\n", &save); line && k < MAX_MEMBERS;
	     line = strtok_r(NULL, "\n", &save)) {
		struct member *m = &ms[k];
		char url[320] = "", name[64] = "";
		memset(m, 0, sizeof *m);
		if (sscanf(line, "%" SCNx64 " %d %d %319s %63s", &m->id, &m->is_learner, &m->gone,
			   url, name) < 4)
			continue;
		snprintf(m->peer_url, sizeof m->peer_url, "%s", url);
		snprintf(m->name, sizeof m->name, "%s", name);
		for (int i = 0; i < n->n_members; i++)
			if (n->members[i].id == m->id)
				snprintf(m->client_urls, sizeof m->client_urls, "%s",
					 n->members[i].client_urls);
		k++;
	}
	free(s);
	ef_arena_free(a);
	if (k == 0)
		return;
	pthread_mutex_lock(&n->mu);
	memcpy(n->members, ms, sizeof(struct member) * (size_t)k);
	n->n_members = k;
	pthread_mutex_unlock(&n->mu);
}

struct waiter *node_member_apply(node *n, const raft_entry *e)
{
	const uint8_t *p = e->data;
	uint32_t len = e->len;
	raft_conf_change cc = {0};
	ef_msg req;

	uint64_t origin = 0, wid = 0;
	if (e->type == RAFT_ENTRY_CONF) {
		if (raft_conf_decode(e->data, e->len, &cc) != 0)
			return NULL;
		p = cc.context;
		len = cc.context_len;
	}
	if (payload_request(p, len, n->scratch, &req) == 0) {
		origin = ef_get_be64(p + 1);
		wid = ef_get_be64(p + 9);
	} else if (e->type == RAFT_ENTRY_CONF && cc.op == RAFT_CONF_PROMOTE) {
		/* the core's own proposal (--experimental-auto-promote-learners) */
		memset(&req, 0, sizeof req);
		req.type = EF_MSG_MEMBER_PROMOTE;
		req.u.member.id = cc.id;
	} else {
		return NULL;
	}
	const ef_member_req *q = &req.u.member;
	char url[320] = "";
	if (q->n_peer_urls)
		norm_url(&q->peer_urls[0], url, sizeof url);
	int dial = 0, drop = 0;
	pthread_mutex_lock(&n->mu);
	struct member *m = node_member_by_id(n, q->id);
	switch (req.type) {
	case EF_MSG_MEMBER_ADD:
		if (!m) {
			int slot = n->n_members < MAX_MEMBERS ? n->n_members++ : -1;
			for (int i = 0; slot < 0 && i < n->n_members; i++)
				if (n->members[i].gone)
					slot = i;
			if (slot < 0)
				break;
			m = &n->members[slot];
			memset(m, 0, sizeof *m);
			m->id = q->id;
			snprintf(m->peer_url, sizeof m->peer_url, "%s", url);
			dial = m->id != n->id;
		}
		/* the name shows once the member publishes it (etcd's "unstarted") */
		m->is_learner = q->is_learner;
		break;
	case EF_MSG_MEMBER_REMOVE:
		if (m) {
			m->gone = 1;
			drop = m->id != n->id;
		}
		break;
	case EF_MSG_MEMBER_PROMOTE:
		if (m)
			m->is_learner = 0;
		break;
	case EF_MSG_MEMBER_UPDATE:
		if (m) {
			snprintf(m->peer_url, sizeof m->peer_url, "%s", url);
			drop = dial = m->id != n->id;
		}
		break;
	}
	if (req.type == EF_MSG_MEMBER_REMOVE && q->id == n->id)
		n->removed = 1;
	pthread_mutex_unlock(&n->mu);
	if (n->peers && drop)
		peer_remove(n->peers, q->id);
	if (n->peers && dial)
		peer_add(n->peers, q->id, url);
	members_save(n);
	log_info("member %016" PRIx64 " %s (index %" PRIu64 ")", q->id,
		 req.type == EF_MSG_MEMBER_ADD ? (q->is_learner ? "added as a learner" : "added")
		 : req.type == EF_MSG_MEMBER_REMOVE ? "removed"
		 : req.type == EF_MSG_MEMBER_UPDATE ? "updated"
						    : "promoted",
		 e->index);
	if (origin != n->id || !wid)
		return NULL;
	pthread_mutex_lock(&n->mu);
	struct waiter *w = node_waiter_find(n, wid);
	if (w) {
		node_waiter_del(n, w);
		w->state = W_CLAIMED;
		memset(w->resp, 0, sizeof *w->resp);
		w->resp->type = (uint8_t)(req.type | EF_MSG_RESP);
		ef_member *ms = ef_arena_alloc(w->a, sizeof(ef_member) * MAX_MEMBERS);
		if (ms) {
			uint32_t k = members_fill(n, ms, w->a);
			w->resp->u.member_resp.members = ms;
			w->resp->u.member_resp.n_members = k;
			for (uint32_t i = 0; req.type == EF_MSG_MEMBER_ADD && i < k; i++)
				if (ms[i].id == q->id) {
					w->resp->u.member_resp.member = &ms[i];
					w->resp->u.member_resp.n_member = 1;
				}
		}
	}
	pthread_mutex_unlock(&n->mu);
	return w;
}

/* ------------------------------------------------------------------ */
/* Joining and leaving.                                                 */

static int write_file(const char *path, const char *text)
{
	char tmp[1300];
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	if (!f)
		return EF_E_IO;
	int bad = fputs(text, f) < 0 || fflush(f) != 0 || fsync(fileno(f)) != 0;
	bad |= fclose(f) != 0;
	if (bad || rename(tmp, path) != 0) {
		unlink(tmp);
		return EF_E_IO;
	}
	return 0;
}

void node_members_base_save(node *n, const raft_snapshot_meta *m)
{
	char path[1200], text[MAX_MEMBERS * 40 + 16];
	size_t off = 0;
	for (uint32_t i = 0; i < m->n_voters; i++)
		off += (size_t)snprintf(text + off, sizeof text - off, "v %016" PRIx64 "\n",
					m->voters[i]);
	for (uint32_t i = 0; i < m->n_learners; i++)
		off += (size_t)snprintf(text + off, sizeof text - off, "l %016" PRIx64 "\n",
					m->learners[i]);
	snprintf(path, sizeof path, "%s/conf_base", n->member_dir);
	if (write_file(path, text) != 0)
		log_error("cannot write %s: a restart will wait for the leader again", path);
}

int node_members_base_load(node *n, raft_config *rc)
{
	char path[1200], line[64];
	snprintf(path, sizeof path, "%s/conf_base", n->member_dir);
	FILE *f = fopen(path, "r");
	rc->n_voters = rc->n_learners = 0;
	if (!f)
		return 0;
	while (fgets(line, sizeof line, f)) {
		uint64_t id;
		char k;
		if (sscanf(line, "%c %" SCNx64, &k, &id) != 2)
			continue;
		if (k == 'v' && rc->n_voters + rc->n_learners < RAFT_MAX_VOTERS)
			rc->voters[rc->n_voters++] = id;
		else if (k == 'l' && rc->n_voters + rc->n_learners < RAFT_MAX_VOTERS)
			rc->learners[rc->n_learners++] = id;
	}
	fclose(f);
	if (rc->n_voters == 0)
		rc->n_learners = 0;
	return 0;
}

void node_members_tick(node *n)
{
	static int stopping;
	if (n->joining && n->cluster_id == 0 && n->peers && peer_cluster_id(n->peers)) {
		char path[1200], text[32];
		pthread_mutex_lock(&n->mu);
		n->cluster_id = peer_cluster_id(n->peers);
		pthread_mutex_unlock(&n->mu);
		snprintf(path, sizeof path, "%s/joined", n->member_dir);
		snprintf(text, sizeof text, "%016" PRIx64 "\n", n->cluster_id);
		if (write_file(path, text) != 0)
			log_error("cannot write %s", path);
	}
	/* etcd stops a removed member (after the change is applied, so the
	 * others know it is committed); a removed leader first hands over. */
	if ((n->removed || raft_removed(n->r)) && raft_role(n->r) != RAFT_LEADER && !stopping) {
		stopping = 1;
		log_error("the member has been permanently removed from the cluster");
		kill(getpid(), SIGTERM);
	}
}
