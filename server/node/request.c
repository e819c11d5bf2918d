/*
 * node.c - one etcfsd member: the Raft host loop and the request path.
 *
 * The data path of a write:
 *   front end thread: node_call() validates, encodes the request into an
 *     entry payload (origin member, waiter id, proposal wall-clock time,
 *     request), registers a waiter and posts EV_PROPOSE to the inbox;
 *   loop thread (the only thread that touches the Raft core, the WAL and the
 *     store's write side), once per iteration:
 *       1. drains the inbox: proposals (many per iteration: the batch),
 *          received peer messages, ReadIndex batches, snapshot outcomes;
 *       2. ticks Raft when a heartbeat interval passed; on the leader,
 *          proposes revocation of expired leases;
 *       3. for every Raft ready, the etcd-raft contract in order:
 *          install a received snapshot, append entries + hard state to the
 *          WAL and fsync ONCE (group commit), send messages, apply the
 *          committed entries to LMDB in one write transaction that also
 *          records the applied index, wake the waiters whose entries were
 *          applied, publish the events to the watch hub, release reads;
 *       4. takes a snapshot every --snapshot-count applied entries.
 *   front end thread: wakes up with the response already written into its
 *     arena by the loop.
 * Followers do the same: Raft forwards their proposals to the leader, and
 * every member applies every entry, so the member that received the request
 * answers its own client when it applies the entry (matched by origin).
 *
 * Linearizable reads are batched as etcd's read loop does: all reads that
 * arrive while a ReadIndex round is in flight share the next round; once the
 * applied index reaches the round's index the client threads read the store
 * themselves, in parallel.  Serializable reads go straight to the store.
 *
 * Leases: the leader keeps every lease's deadline in memory (a new leader
 * restarts every deadline at its full TTL, as etcd does, so leader changes
 * never expire leases early), answers keep-alives and time-to-live, and
 * proposes a LEASE_REVOKE when a deadline passes.  Followers forward those
 * requests to the leader's client URL, which every member publishes through
 * Raft at start-up.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../../common/clock.h"
#include "../../proto/client.h"
#include "../log.h"
#include "../../common/metrics.h"
#include "../node.h"
#include "../peer.h"
#include "../raft/raft.h"
#include "../store.h"
#include "../wal.h"
#include "../watchhub.h"

#define ETCFS_VERSION "3.4.0"
#define SNAP_CHUNK (1u << 20)
#define MAX_MEMBERS RAFT_MAX_VOTERS

enum payload_kind {
	PAYLOAD_REQUEST = 1,
	PAYLOAD_MEMBER_ATTR = 2
};
#define PAYLOAD_HDR 25 /* kind u8, origin u64, waiter u64, time_ns i64 */

/* ------------------------------------------------------------------ */

struct member {
	uint64_t id;
	char name[64];
	char peer_url[320];
	char client_urls[512]; /* published through Raft; "" until then */
};

enum waiter_state {
	W_WAITING = 0,
	W_CLAIMED,
	W_DONE
};

/* A client request waiting for the loop.  Lives on the caller's stack;
 * registered in the waiter table under n->mu.  Once the loop CLAIMS it
 * (under n->mu), the loop writes into resp/a without the lock and the
 * caller must wait for DONE even past its deadline (apply is short). */
struct waiter {
	uint64_t id;
	int state;
	int err;      /* for reads: 0 = go ahead and read; else EF_E_* */
	int proposed; /* writes: handed to Raft (else still held: not applied) */
	ef_msg *resp;
	ef_arena *a;
	pthread_cond_t cv;
	struct waiter *next;
};

enum ev_kind {
	EV_PROPOSE = 1,
	EV_READ,
	EV_PEER,
	EV_SNAP_STATUS,
	EV_TRANSFER
};

struct ev {
	int kind;
	uint8_t *data; /* EV_PROPOSE payload (malloc) */
	uint32_t len;
	uint64_t waiter;
	raft_msg msg; /* EV_PEER (decoded, owned) */
	uint64_t peer;
	int failed;
	struct ev *next;
};

struct read_batch {
	uint64_t ctx;   /* 0 = none in flight */
	uint64_t index; /* 0 until raft answered */
	int64_t issued_ms;
	uint64_t *waiters;
	size_t n, cap;
};

struct lease_ent {
	int64_t id, ttl;
	int64_t deadline_ms;
	int64_t revoke_sent_ms; /* 0 = no revoke proposed yet */
};

struct node {
	node_config cfg;
	char member_dir[1024];
	int lock_fd;
	uint64_t id, cluster_id;
	struct member members[MAX_MEMBERS];
	int n_members;

	store *st;
	wal *w;
	raft *r;
	peer_tr *peers;
	watchhub *hub;

	pthread_t loop;
	pthread_mutex_t mu; /* inbox, waiters, read batches, status fields */
	pthread_cond_t cv;
	struct ev *in_head, *in_tail;
	int stopping;
	int inflight; /* node_call()s running */

	struct waiter *wt[1024]; /* waiter hash table */
	uint64_t next_waiter;

	struct read_batch cur, next; /* reads: in flight, gathering */
	uint64_t next_ctx;

	/* Proposals that could not be handed to Raft yet (no leader). */
	struct ev *held_head, *held_tail;

	/* status (written by the loop under mu) */
	uint64_t leader, term, commit_index, applied_index;
	int role;
	uint64_t leader_changes;
	uint64_t last_snap_index;
	int attr_published;
	int64_t attr_sent_ms;
	raft_hard_state synced_hs; /* term and vote as last fsync'd (loop thread) */
	/* Quota check: bytes in use as of quota_ms (atomics, read by every
	 * writing client thread; recomputed at most every QUOTA_RECHECK_MS, as
	 * the size scan walks LMDB's free list). */
	_Atomic int64_t quota_inuse, quota_ms;

	/* leases: leader's deadlines */
	pthread_mutex_t lease_mu;
	struct lease_ent *leases;
	size_t n_leases, cap_leases;
	int64_t lease_reconciled_ms; /* loop thread */

	/* forwarding to the leader: one client per member, made on first use
	 * (under fwd_mu), closed at stop; efc_call is thread-safe */
	pthread_mutex_t fwd_mu;
	efc_client *fwd[MAX_MEMBERS];

	/* snapshot sending: one sender thread per peer at a time */
	uint64_t snap_sending[MAX_MEMBERS];

	ef_arena *scratch; /* loop-owned */

	/* metrics */
	metric *m_proposals_committed, *m_proposals_applied, *m_proposals_failed,
		*m_proposals_pending, *m_leader_changes, *m_has_leader, *m_is_leader, *m_term,
		*m_wal_fsync, *m_backend_commit, *m_snap_sent, *m_snap_recv, *m_apply_batch;
};

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

static void fill_hdr(node *n, ef_resp_header *h)
{
	h->cluster_id = n->cluster_id;
	h->member_id = n->id;
	pthread_mutex_lock(&n->mu);
	h->raft_term = n->term;
	pthread_mutex_unlock(&n->mu);
	if (!h->revision)
		h->revision = store_revision(n->st);
}

static void hub_hdr(void *ud, ef_resp_header *h)
{
	node *n = ud;
	h->cluster_id = n->cluster_id;
	h->member_id = n->id;
	h->raft_term = __atomic_load_n(&n->term, __ATOMIC_RELAXED);
}

static int set_error(ef_msg *resp, ef_arena *a, int code, const char *detail)
{
	memset(resp, 0, sizeof *resp);
	resp->type = EF_MSG_ERROR;
	resp->u.error.code = (uint32_t)code;
	const char *msg = detail ? detail : ef_strerror(code);
	resp->u.error.message.p = ef_arena_dup(a, msg, strlen(msg));
	resp->u.error.message.n = resp->u.error.message.p ? (uint32_t)strlen(msg) : 0;
	return code;
}

/* ------------------------------------------------------------------ */
/* Inbox and waiters (n->mu held where noted).                          */

static void post(node *n, struct ev *e)
{
	pthread_mutex_lock(&n->mu);
	e->next = NULL;
	if (n->in_tail)
		n->in_tail->next = e;
	else
		n->in_head = e;
	n->in_tail = e;
	pthread_cond_signal(&n->cv);
	pthread_mutex_unlock(&n->mu);
}

static void waiter_add(node *n, struct waiter *w) /* mu held */
{
	w->id = ++n->next_waiter;
	size_t b = w->id % 1024;
	w->next = n->wt[b];
	n->wt[b] = w;
}

static void waiter_del(node *n, struct waiter *w) /* mu held */
{
	for (struct waiter **pp = &n->wt[w->id % 1024]; *pp; pp = &(*pp)->next)
		if (*pp == w) {
			*pp = w->next;
			return;
		}
}

static struct waiter *waiter_find(node *n, uint64_t id) /* mu held */
{
	for (struct waiter *w = n->wt[id % 1024]; w; w = w->next)
		if (w->id == id)
			return w;
	return NULL;
}

/* Wait for the loop to finish with w.  Returns 0 when DONE, EF_E_TIMEOUT
 * when the deadline passed first (w is then unregistered). mu held. */
static int waiter_wait(node *n, struct waiter *w, int64_t deadline_ms)
{
	while (w->state != W_DONE) {
		if (w->state == W_WAITING && clock_mono_ms() >= deadline_ms) {
			waiter_del(n, w);
			return EF_E_TIMEOUT;
		}
		struct timespec ts;
		int64_t d = w->state == W_CLAIMED ? clock_mono_ms() + 1000 : deadline_ms;
		ts.tv_sec = d / 1000;
		ts.tv_nsec = (d % 1000) * 1000000;
		pthread_cond_timedwait(&w->cv, &n->mu, &ts);
	}
	return 0;
}

static void cond_init_mono(pthread_cond_t *cv)
{
	pthread_condattr_t at;
	pthread_condattr_init(&at);
	pthread_condattr_setclock(&at, CLOCK_MONOTONIC);
	pthread_cond_init(cv, &at);
	pthread_condattr_destroy(&at);
}

/* ------------------------------------------------------------------ */
/* Members.                                                             */

static struct member *member_by_id(node *n, uint64_t id)
{
	for (int i = 0; i < n->n_members; i++)
		if (n->members[i].id == id)
			return &n->members[i];
	return NULL;
}

static int parse_cluster(node *n, const char *spec, char *err, size_t errlen)
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
static void load_member_attrs(node *n)
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

/* ------------------------------------------------------------------ */
/* Leases (leader side).                                                */

static struct lease_ent *lease_find(node *n, int64_t id) /* lease_mu held */
{
	for (size_t i = 0; i < n->n_leases; i++)
		if (n->leases[i].id == id)
			return &n->leases[i];
	return NULL;
}

static void lease_set(node *n, int64_t id, int64_t ttl, int64_t now)
{
	pthread_mutex_lock(&n->lease_mu);
	struct lease_ent *l = lease_find(n, id);
	if (!l) {
		if (n->n_leases == n->cap_leases) {
			size_t cap = n->cap_leases ? n->cap_leases * 2 : 64;
			struct lease_ent *nl = realloc(n->leases, cap * sizeof *nl);
			if (!nl) {
				pthread_mutex_unlock(&n->lease_mu);
				return;
			}
			n->leases = nl;
			n->cap_leases = cap;
		}
		l = &n->leases[n->n_leases++];
	}
	l->id = id;
	l->ttl = ttl;
	l->deadline_ms = now + ttl * 1000;
	l->revoke_sent_ms = 0;
	pthread_mutex_unlock(&n->lease_mu);
}

static void lease_del(node *n, int64_t id)
{
	pthread_mutex_lock(&n->lease_mu);
	for (size_t i = 0; i < n->n_leases; i++)
		if (n->leases[i].id == id) {
			n->leases[i] = n->leases[--n->n_leases];
			break;
		}
	pthread_mutex_unlock(&n->lease_mu);
}

/* A new leader: every lease gets its full TTL again (etcd's "promote"). */
static void leases_promote(node *n)
{
	store_lease *ls = NULL;
	uint32_t cnt = 0;
	pthread_mutex_lock(&n->lease_mu);
	n->n_leases = 0;
	pthread_mutex_unlock(&n->lease_mu);
	if (store_lease_list(n->st, &ls, &cnt) != 0)
		return;
	int64_t now = clock_mono_ms();
	/* extend by an election timeout, like etcd's lessor Promote(extend) */
	for (uint32_t i = 0; i < cnt; i++)
		lease_set(n, ls[i].id, ls[i].ttl, now + n->cfg.election_ms);
	free(ls);
}

static uint8_t *make_payload(node *n, int kind, uint64_t waiter, const ef_msg *req, uint32_t *len);

static void propose_internal(node *n, const ef_msg *req);

/* The leader's table against the store, once a second: a lease the table
 * lacks (granted while this member caught up, say) gets its full TTL from
 * now; an entry whose lease is gone from the store is dropped.  The table is
 * then right whatever path a lease took to get here. */
static void leases_reconcile(node *n, int64_t now)
{
	store_lease *ls = NULL;
	uint32_t cnt = 0;
	if (store_lease_list(n->st, &ls, &cnt) != 0)
		return;
	pthread_mutex_lock(&n->lease_mu);
	for (size_t i = 0; i < n->n_leases;) {
		uint32_t j;
		for (j = 0; j < cnt && ls[j].id != n->leases[i].id; j++)
			;
		if (j == cnt)
			n->leases[i] = n->leases[--n->n_leases];
		else
			i++;
	}
	pthread_mutex_unlock(&n->lease_mu);
	for (uint32_t j = 0; j < cnt; j++) {
		pthread_mutex_lock(&n->lease_mu);
		int have = lease_find(n, ls[j].id) != NULL;
		pthread_mutex_unlock(&n->lease_mu);
		if (!have) {
			log_debug("lease %016" PRIx64 " was not tracked: tracking it",
				  (uint64_t)ls[j].id);
			lease_set(n, ls[j].id, ls[j].ttl, now);
		}
	}
	free(ls);
}

static void leases_expire(node *n)
{
	int64_t now = clock_mono_ms();
	if (now - n->lease_reconciled_ms >= 1000) {
		n->lease_reconciled_ms = now;
		leases_reconcile(n, now);
	}
	int64_t ids[64];
	int k = 0;
	pthread_mutex_lock(&n->lease_mu);
	for (size_t i = 0; i < n->n_leases && k < 64; i++) {
		struct lease_ent *l = &n->leases[i];
		if (l->deadline_ms <= now &&
		    (!l->revoke_sent_ms || now - l->revoke_sent_ms > 3 * n->cfg.election_ms)) {
			l->revoke_sent_ms = now;
			ids[k++] = l->id;
		}
	}
	pthread_mutex_unlock(&n->lease_mu);
	for (int i = 0; i < k; i++) {
		ef_msg req = {.type = EF_MSG_LEASE_REVOKE};
		req.u.lease.id = ids[i];
		log_debug("lease %016" PRIx64 " expired: revoking", (uint64_t)ids[i]);
		propose_internal(n, &req);
	}
}

/* ------------------------------------------------------------------ */
/* Entry payloads.                                                      */

static uint8_t *make_payload(node *n, int kind, uint64_t waiter, const ef_msg *req, uint32_t *len)
{
	ef_wbuf b;
	ef_wbuf_init(&b);
	ef_wbuf_u8(&b, (uint8_t)kind);
	ef_wbuf_u64(&b, n->id);
	ef_wbuf_u64(&b, waiter);
	ef_wbuf_u64(&b, (uint64_t)clock_wall_ns());
	if (kind == PAYLOAD_REQUEST) {
		ef_wbuf_u8(&b, req->type);
		if (ef_encode_body(req, &b) != 0)
			b.err = EF_E_NOMEM;
	} else {
		struct member *m = member_by_id(n, n->id);
		ef_wbuf_bytes(&b, n->cfg.advertise_client_urls,
			      (uint32_t)strlen(n->cfg.advertise_client_urls));
		(void)m;
	}
	if (b.err) {
		ef_wbuf_free(&b);
		return NULL;
	}
	*len = (uint32_t)b.len;
	return b.p;
}

static void propose_internal(node *n, const ef_msg *req)
{
	uint32_t len;
	uint8_t *p = make_payload(n, PAYLOAD_REQUEST, 0, req, &len);
	if (!p)
		return;
	struct ev *e = calloc(1, sizeof *e);
	if (!e) {
		free(p);
		return;
	}
	e->kind = EV_PROPOSE;
	e->data = p;
	e->len = len;
	/* called on the loop thread: queue directly */
	e->next = NULL;
	if (n->held_tail)
		n->held_tail->next = e;
	else
		n->held_head = e;
	n->held_tail = e;
}

/* ------------------------------------------------------------------ */
/* Snapshots.                                                           */

static void snap_dir(node *n, char *out, size_t len)
{
	snprintf(out, len, "%s/snap", n->member_dir);
}

static int take_snapshot(node *n, uint64_t index)
{
	char sdir[1100], tmp[1200], outp[1200];
	snap_dir(n, sdir, sizeof sdir);
	snprintf(tmp, sizeof tmp, "%s/db.copy.tmp", sdir);
	store_sync(n->st);
	int fd = open(tmp, O_CREAT | O_TRUNC | O_WRONLY, 0600);
	if (fd < 0)
		return EF_E_IO;
	int rv = store_snapshot_write(n->st, fd);
	close(fd);
	if (rv != 0) {
		unlink(tmp);
		return rv;
	}
	raft_snapshot_meta m = {.index = index, .term = raft_term_at(n->r, index)};
	m.n_voters = (uint32_t)n->n_members;
	for (int i = 0; i < n->n_members; i++)
		m.voters[i] = n->members[i].id;
	rv = snapfile_write(n->member_dir, &m, tmp, outp, sizeof outp);
	unlink(tmp);
	if (rv != 0)
		return rv;
	if ((rv = wal_mark_snapshot(n->w, &m)) != 0 || (rv = wal_sync(n->w)) != 0)
		return rv;
	uint64_t keep = n->cfg.snapshot_count / 2;
	if (keep > 5000)
		keep = 5000;
	raft_compact(n->r, index, keep);
	wal_release_to(n->w, index > keep ? index - keep : 0);
	n->last_snap_index = index;
	log_info("snapshot at index %" PRIu64 " written to %s", index, outp);
	return 0;
}

struct snap_send {
	node *n;
	uint64_t to;
	raft_msg msg;
	int slot;
};

static void *snap_send_main(void *arg)
{
	struct snap_send *s = arg;
	node *n = s->n;
	char path[1200];
	raft_snapshot_meta m;
	int failed = 1;
	if (snapfile_latest(n->member_dir, path, sizeof path, &m) == 0 && path[0] &&
	    m.index == s->msg.snapshot.index) {
		int fd = open(path, O_RDONLY);
		if (fd >= 0) {
			struct stat st;
			fstat(fd, &st);
			uint64_t total = (uint64_t)st.st_size, off = 0;
			uint8_t *buf = malloc(SNAP_CHUNK + 41);
			failed = buf == NULL;
			while (!failed) {
				ssize_t k = pread(fd, buf + 41, SNAP_CHUNK, (off_t)off);
				if (k < 0) {
					failed = 1;
					break;
				}
				ef_be64(buf, m.index);
				ef_be64(buf + 8, m.term);
				ef_be64(buf + 16, off);
				ef_be64(buf + 24, total);
				ef_be64(buf + 32, (uint64_t)k);
				buf[40] = off + (uint64_t)k >= total;
				if (peer_send_wait(n->peers, s->to, PEER_SNAP_CHUNK, buf,
						   41 + (size_t)k, 5000) != 0) {
					failed = 1;
					break;
				}
				off += (uint64_t)k;
				if (off >= total)
					break;
			}
			free(buf);
			close(fd);
		}
	}
	if (!failed) {
		ef_wbuf b;
		ef_wbuf_init(&b);
		if (raft_msg_encode(&s->msg, &b) == 0 && !b.err)
			failed = peer_send_wait(n->peers, s->to, PEER_RAFT, b.p, b.len, 5000) != 0;
		else
			failed = 1;
		ef_wbuf_free(&b);
	}
	if (!failed)
		metrics_inc(n->m_snap_sent);
	log_info("snapshot %" PRIu64 " to member %016" PRIx64 ": %s", s->msg.snapshot.index, s->to,
		 failed ? "failed" : "sent");
	struct ev *e = calloc(1, sizeof *e);
	if (e) {
		e->kind = EV_SNAP_STATUS;
		e->peer = s->to;
		e->failed = failed;
		post(n, e);
	}
	__atomic_store_n(&n->snap_sending[s->slot], 0, __ATOMIC_RELEASE);
	free(s);
	return NULL;
}

static void send_snapshot(node *n, const raft_msg *m)
{
	int slot = -1;
	for (int i = 0; i < n->n_members; i++)
		if (n->members[i].id == m->to)
			slot = i;
	if (slot < 0)
		return;
	if (__atomic_exchange_n(&n->snap_sending[slot], 1, __ATOMIC_ACQ_REL))
		return; /* one at a time; Raft asks again */
	struct snap_send *s = calloc(1, sizeof *s);
	s->n = n;
	s->to = m->to;
	s->msg = *m;
	s->msg.entries = NULL;
	s->msg.n_entries = 0;
	s->msg.context = NULL;
	s->msg.context_len = 0;
	s->slot = slot;
	pthread_t t;
	if (pthread_create(&t, NULL, snap_send_main, s) != 0) {
		free(s);
		__atomic_store_n(&n->snap_sending[slot], 0, __ATOMIC_RELEASE);
		return;
	}
	pthread_detach(t);
}

/* Receive side: chunks of the leader's snapshot file, written in order to
 * snap/recv.tmp and renamed into place when complete.  Only the receive
 * thread touches this. */
static struct {
	int fd;
	uint64_t index, off;
} recv_snap = {-1, 0, 0};

static void snap_chunk(node *n, const uint8_t *p, size_t len)
{
	if (len < 41)
		return;
	uint64_t index = ef_get_be64(p), term = ef_get_be64(p + 8), off = ef_get_be64(p + 16),
		 total = ef_get_be64(p + 24), k = ef_get_be64(p + 32);
	int last = p[40];
	if (k != len - 41 || off + k > total)
		return;
	char sdir[1100], tmp[1200], fin[1200];
	snap_dir(n, sdir, sizeof sdir);
	snprintf(tmp, sizeof tmp, "%s/recv.tmp", sdir);
	if (off == 0) {
		if (recv_snap.fd >= 0)
			close(recv_snap.fd);
		recv_snap.fd = open(tmp, O_CREAT | O_TRUNC | O_WRONLY, 0600);
		recv_snap.index = index;
		recv_snap.off = 0;
	}
	if (recv_snap.fd < 0 || recv_snap.index != index || recv_snap.off != off)
		return; /* out of order: wait for the leader to start again */
	if (pwrite(recv_snap.fd, p + 41, k, (off_t)off) != (ssize_t)k) {
		close(recv_snap.fd);
		recv_snap.fd = -1;
		return;
	}
	recv_snap.off += k;
	if (last && recv_snap.off == total) {
		fsync(recv_snap.fd);
		close(recv_snap.fd);
		recv_snap.fd = -1;
		snprintf(fin, sizeof fin, "%s/%016" PRIx64 "-%016" PRIx64 ".snap", sdir, term,
			 index);
		rename(tmp, fin);
		int dfd = open(sdir, O_RDONLY | O_DIRECTORY);
		if (dfd >= 0) {
			fsync(dfd);
			close(dfd);
		}
		metrics_inc(n->m_snap_recv);
		log_info("received snapshot %" PRIu64 " (%" PRIu64 " bytes)", index, total);
	}
}

static int install_snapshot(node *n, const raft_snapshot_meta *m)
{
	char path[1200], dst[1200];
	raft_snapshot_meta have;
	if (snapfile_latest(n->member_dir, path, sizeof path, &have) != 0 || !path[0] ||
	    have.index != m->index) {
		log_error("asked to install snapshot %" PRIu64 " but it is not on disk", m->index);
		return EF_E_IO;
	}
	snprintf(dst, sizeof dst, "%s/snap/install.mdb", n->member_dir);
	int rv = snapfile_read(path, dst, &have);
	if (rv == 0)
		rv = store_snapshot_install(n->st, dst);
	unlink(dst);
	if (rv != 0) {
		log_error("installing snapshot %" PRIu64 " failed: %s", m->index, ef_strerror(rv));
		return rv;
	}
	wal_mark_snapshot(n->w, m);
	n->last_snap_index = m->index;
	load_member_attrs(n);
	watchhub_resync(n->hub);
	log_info("installed snapshot at index %" PRIu64, m->index);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Peer receive.                                                        */

static void on_peer(void *ud, uint8_t kind, uint64_t from, const uint8_t *p, size_t len)
{
	node *n = ud;
	if (kind == PEER_SNAP_CHUNK) {
		snap_chunk(n, p, len);
		return;
	}
	if (kind != PEER_RAFT)
		return;
	struct ev *e = calloc(1, sizeof *e);
	if (!e)
		return;
	if (raft_msg_decode(p, len, &e->msg) != 0 || e->msg.from != from) {
		free(e);
		return;
	}
	e->kind = EV_PEER;
	post(n, e);
}

/* ------------------------------------------------------------------ */
/* The loop.                                                            */

static void release_reads(node *n) /* mu held */
{
	struct read_batch *b = &n->cur;
	if (!b->ctx || !b->index || n->applied_index < b->index)
		return;
	for (size_t i = 0; i < b->n; i++) {
		struct waiter *w = waiter_find(n, b->waiters[i]);
		if (w) {
			waiter_del(n, w);
			w->state = W_DONE;
			w->err = 0;
			pthread_cond_signal(&w->cv);
		}
	}
	b->n = 0;
	b->ctx = 0;
	b->index = 0;
}

static void issue_reads(node *n) /* mu held, loop thread */
{
	int64_t now = clock_mono_ms();
	if (n->cur.ctx && now - n->cur.issued_ms > n->cfg.election_ms) {
		/* lost (leader change): merge into the next round */
		for (size_t i = 0; i < n->cur.n; i++) {
			if (n->next.n == n->next.cap) {
				size_t cap = n->next.cap ? n->next.cap * 2 : 64;
				uint64_t *nw = realloc(n->next.waiters, cap * sizeof *nw);
				if (!nw)
					break;
				n->next.waiters = nw;
				n->next.cap = cap;
			}
			n->next.waiters[n->next.n++] = n->cur.waiters[i];
		}
		n->cur.n = 0;
		n->cur.ctx = 0;
	}
	if (n->cur.ctx || n->next.n == 0 || n->leader == RAFT_NONE)
		return;
	struct read_batch t = n->cur;
	n->cur = n->next;
	n->next = t;
	n->next.n = 0;
	n->cur.ctx = ++n->next_ctx;
	n->cur.index = 0;
	n->cur.issued_ms = now;
	uint8_t ctx[8];
	ef_be64(ctx, n->cur.ctx);
	raft_read_index(n->r, ctx, 8);
}

static void apply_committed(node *n, raft_entry *ents, size_t cnt)
{
	uint64_t applied = store_applied_index(n->st);
	int64_t t0 = clock_mono_ns();
	ef_arena_reset(n->scratch);
	store_events ev = {.a = n->scratch};
	struct waiter *done[512];
	size_t n_done = 0;
	uint64_t last = 0;
	int began = 0;
	for (size_t i = 0; i < cnt; i++) {
		raft_entry *e = &ents[i];
		if (e->index <= applied)
			continue;
		last = e->index;
		if (!began) {
			if (store_begin(n->st) != 0) {
				log_error("store_begin failed: stopping");
				abort();
			}
			began = 1;
		}
		if (e->type != RAFT_ENTRY_NORMAL || e->len < PAYLOAD_HDR)
			continue;
		const uint8_t *p = e->data;
		uint8_t kind = p[0];
		uint64_t origin = ef_get_be64(p + 1), wid = ef_get_be64(p + 9);
		int64_t tns = (int64_t)ef_get_be64(p + 17);
		if (kind == PAYLOAD_MEMBER_ATTR) {
			ef_rbuf rb = {p + PAYLOAD_HDR, p + e->len};
			uint32_t l;
			if (ef_rbuf_u32(&rb, &l) == 0 && (size_t)(rb.end - rb.p) >= l) {
				char key[64];
				snprintf(key, sizeof key, "member/%016" PRIx64, origin);
				store_meta_put(n->st, key, rb.p, l);
				struct member *m = member_by_id(n, origin);
				if (m) {
					size_t k = l < sizeof m->client_urls - 1
							   ? l
							   : sizeof m->client_urls - 1;
					pthread_mutex_lock(&n->mu);
					memcpy(m->client_urls, rb.p, k);
					m->client_urls[k] = 0;
					if (origin == n->id)
						n->attr_published = 1;
					pthread_mutex_unlock(&n->mu);
				}
			}
			continue;
		}
		if (kind != PAYLOAD_REQUEST || e->len < PAYLOAD_HDR + 1)
			continue;
		struct waiter *w = NULL;
		if (origin == n->id && wid) {
			pthread_mutex_lock(&n->mu);
			w = waiter_find(n, wid);
			if (w) {
				waiter_del(n, w);
				w->state = W_CLAIMED;
			}
			pthread_mutex_unlock(&n->mu);
		}
		ef_arena *a = w ? w->a : n->scratch;
		ef_msg req, scratch_resp;
		ef_msg *resp = w ? w->resp : &scratch_resp;
		int rv = ef_decode_body(p[PAYLOAD_HDR], p + PAYLOAD_HDR + 1,
					e->len - PAYLOAD_HDR - 1, n->scratch, &req);
		if (rv != 0) {
			set_error(resp, a, EF_E_CORRUPT, "undecodable log entry");
		} else {
			rv = store_apply(n->st, tns, &req, resp, a, &ev);
			if (rv != 0) {
				log_error("store_apply failed at index %" PRIu64 ": %s: stopping",
					  e->index, ef_strerror(rv));
				abort();
			}
			if (resp->type == EF_MSG_LEASE_GRANT_RESP && n->role == RAFT_LEADER)
				lease_set(n, req.u.lease.id, req.u.lease.ttl, clock_mono_ms());
			if (req.type == EF_MSG_LEASE_REVOKE)
				lease_del(n, req.u.lease.id);
			if (resp->type == EF_MSG_ERROR) {
				metrics_inc(n->m_proposals_failed);
				if (!wid)
					log_warn("internal %s at index %" PRIu64 " failed: %.*s",
						 ef_msg_type_name(req.type), e->index,
						 (int)resp->u.error.message.n,
						 (const char *)resp->u.error.message.p);
			}
		}
		metrics_inc(n->m_proposals_applied);
		if (w) {
			if (n_done == 512) {
				/* flush early: keep the array bounded */
				store_commit(n->st, e->index);
				store_begin(n->st);
				pthread_mutex_lock(&n->mu);
				for (size_t j = 0; j < n_done; j++) {
					done[j]->state = W_DONE;
					pthread_cond_signal(&done[j]->cv);
				}
				pthread_mutex_unlock(&n->mu);
				n_done = 0;
			}
			done[n_done++] = w;
		}
	}
	if (!began)
		return;
	if (store_commit(n->st, last) != 0) {
		log_error("store commit failed at index %" PRIu64 ": stopping", last);
		abort();
	}
	metrics_observe(n->m_backend_commit, (double)(clock_mono_ns() - t0) / 1e9);
	int64_t rev = store_revision(n->st);
	pthread_mutex_lock(&n->mu);
	n->applied_index = last;
	for (size_t j = 0; j < n_done; j++) {
		if (done[j]->resp->type != EF_MSG_ERROR || !done[j]->resp->hdr.revision)
			done[j]->resp->hdr.revision =
				done[j]->resp->hdr.revision ? done[j]->resp->hdr.revision : rev;
		done[j]->state = W_DONE;
		pthread_cond_signal(&done[j]->cv);
	}
	release_reads(n);
	pthread_mutex_unlock(&n->mu);
	if (ev.n)
		watchhub_publish(n->hub, &ev, rev);
}

static void send_msgs(node *n, raft_msg *msgs, size_t lo, size_t hi)
{
	ef_wbuf b;
	ef_wbuf_init(&b);
	for (size_t i = lo; i < hi; i++) {
		raft_msg *m = &msgs[i];
		if (m->type == RAFT_MSG_SNAP) {
			send_snapshot(n, m);
			continue;
		}
		ef_wbuf_reset(&b);
		if (raft_msg_encode(m, &b) != 0 || b.err)
			continue;
		if (peer_send(n->peers, m->to, PEER_RAFT, b.p, b.len) != 0)
			raft_report_unreachable(n->r, m->to);
	}
	ef_wbuf_free(&b);
}

static void handle_ready(node *n)
{
	raft_ready rd;
	raft_get_ready(n->r, &rd);
	if (rd.soft_changed) {
		pthread_mutex_lock(&n->mu);
		int became_leader = rd.role == RAFT_LEADER && n->role != RAFT_LEADER;
		if (rd.leader != n->leader) {
			n->leader_changes += rd.leader != RAFT_NONE;
			if (rd.leader != RAFT_NONE)
				metrics_inc(n->m_leader_changes);
			log_info("leader is now %016" PRIx64 " (term %" PRIu64 ")", rd.leader,
				 raft_term(n->r));
		}
		n->leader = rd.leader;
		n->role = rd.role;
		pthread_mutex_unlock(&n->mu);
		metrics_set(n->m_has_leader, rd.leader != RAFT_NONE);
		metrics_set(n->m_is_leader, rd.role == RAFT_LEADER);
		if (became_leader)
			leases_promote(n);
	}
	if (rd.snapshot)
		if (install_snapshot(n, rd.snapshot) != 0)
			abort(); /* cannot continue with a log that points past our state */
	/* The leader's appends go out before its own fsync (thesis 10.2.1):
	 * followers write their logs while we write ours. */
	send_msgs(n, rd.msgs, 0, rd.n_msgs_early);
	/* Committed entries below this ready's new entries are on our disk
	 * already (and, being committed, on a quorum's): apply them and answer
	 * their clients now rather than after the next batch's fsync.  Not when
	 * messages wait for the fsync (a follower's append responses): the
	 * leader's commit, and so every client, waits for those. */
	size_t pre = 0;
	if (rd.n_committed && !rd.snapshot && rd.n_msgs_early == rd.n_msgs) {
		uint64_t first_new = rd.n_entries ? rd.entries[0].index : UINT64_MAX;
		while (pre < rd.n_committed && rd.committed[pre].index < first_new)
			pre++;
		if (pre) {
			metrics_add(n->m_proposals_committed, pre);
			apply_committed(n, rd.committed, pre);
		}
	}
	int need_sync = 0;
	if (rd.n_entries) {
		if (wal_append(n->w, rd.entries, rd.n_entries) != 0)
			abort();
		need_sync = 1;
	}
	if (rd.hs_changed) {
		if (wal_set_hard_state(n->w, &rd.hs) != 0)
			abort();
		/* Term and vote must be durable before anything is sent; a
		 * commit index alone need not be (etcd's MustSync): it is
		 * written with the next fsync, and one lost to a crash is
		 * learned again from the leader. */
		if (rd.hs.term != n->synced_hs.term || rd.hs.vote != n->synced_hs.vote)
			need_sync = 1;
	}
	if (need_sync) {
		int64_t t0 = clock_mono_ns();
		if (wal_sync(n->w) != 0) {
			log_error(
				"WAL fsync failed: stopping (acknowledging anything now could lose it)");
			abort();
		}
		metrics_observe(n->m_wal_fsync, (double)(clock_mono_ns() - t0) / 1e9);
		n->synced_hs = rd.hs;
	}
	send_msgs(n, rd.msgs, rd.n_msgs_early, rd.n_msgs);
	if (rd.n_committed > pre) {
		metrics_add(n->m_proposals_committed, rd.n_committed - pre);
		apply_committed(n, rd.committed + pre, rd.n_committed - pre);
	}
	pthread_mutex_lock(&n->mu);
	for (size_t i = 0; i < rd.n_reads; i++) {
		if (rd.reads[i].context_len == 8 && ef_get_be64(rd.reads[i].context) == n->cur.ctx)
			n->cur.index = rd.reads[i].index ? rd.reads[i].index : 1;
	}
	for (size_t i = 0; i < rd.n_failed_reads; i++) {
		if (rd.failed_reads[i].context_len == 8 &&
		    ef_get_be64(rd.failed_reads[i].context) == n->cur.ctx)
			n->cur.issued_ms = 0; /* re-issue at once when a leader exists */
	}
	n->term = raft_term(n->r);
	n->commit_index = raft_commit_index(n->r);
	release_reads(n);
	pthread_mutex_unlock(&n->mu);
	metrics_set(n->m_term, (int64_t)raft_term(n->r));
	raft_advance(n->r, &rd);
}

static void hold(node *n, struct ev *e)
{
	e->next = NULL;
	if (n->held_tail)
		n->held_tail->next = e;
	else
		n->held_head = e;
	n->held_tail = e;
}

/* Hand held proposals to Raft once a leader is known.  A proposal whose
 * client gave up while it was held is dropped here: it was never proposed,
 * so its client was told "no leader" (not applied), and it must stay so. */
static void try_held(node *n)
{
	if (raft_leader(n->r) == RAFT_NONE || !n->held_head)
		return;
	struct ev *list = n->held_head;
	n->held_head = n->held_tail = NULL;
	pthread_mutex_lock(&n->mu);
	while (list) {
		struct ev *e = list;
		list = e->next;
		struct waiter *w = e->waiter ? waiter_find(n, e->waiter) : NULL;
		if (e->waiter && !w) {
			free(e->data);
			free(e);
			continue;
		}
		int rv = raft_propose(n->r, e->data, e->len, NULL);
		if (rv == RAFT_E_NOT_LEADER || rv == RAFT_E_BUSY) {
			hold(n, e);
			continue;
		}
		if (w)
			w->proposed = 1;
		free(e->data);
		free(e);
	}
	pthread_mutex_unlock(&n->mu);
}

static void *loop_main(void *arg)
{
	node *n = arg;
	int64_t next_tick = clock_mono_ms() + n->cfg.heartbeat_ms;
	for (;;) {
		pthread_mutex_lock(&n->mu);
		while (!n->in_head && !n->stopping && clock_mono_ms() < next_tick &&
		       !raft_has_ready(n->r) && !(n->next.n && !n->cur.ctx)) {
			struct timespec ts = {next_tick / 1000, (next_tick % 1000) * 1000000};
			pthread_cond_timedwait(&n->cv, &n->mu, &ts);
		}
		if (n->stopping) {
			pthread_mutex_unlock(&n->mu);
			break;
		}
		struct ev *list = n->in_head;
		n->in_head = n->in_tail = NULL;
		pthread_mutex_unlock(&n->mu);

		size_t props = 0;
		while (list) {
			struct ev *e = list;
			list = e->next;
			switch (e->kind) {
			case EV_PROPOSE:
				hold(n, e);
				props++;
				continue;
			case EV_PEER:
				raft_step(n->r, &e->msg);
				raft_msg_free_decoded(&e->msg);
				break;
			case EV_SNAP_STATUS:
				raft_report_snapshot(n->r, e->peer, e->failed);
				break;
			case EV_TRANSFER:
				raft_transfer_leader(n->r, e->peer);
				break;
			default:
				break;
			}
			free(e);
		}
		metrics_set(n->m_proposals_pending, (int64_t)props);
		int64_t now = clock_mono_ms();
		if (now >= next_tick) {
			raft_tick(n->r);
			next_tick = now + n->cfg.heartbeat_ms;
			if (raft_role(n->r) == RAFT_LEADER)
				leases_expire(n);
			if (!n->attr_published && raft_leader(n->r) != RAFT_NONE &&
			    now - n->attr_sent_ms > 2000) {
				uint32_t len;
				uint8_t *p = make_payload(n, PAYLOAD_MEMBER_ATTR, 0, NULL, &len);
				if (p && raft_propose(n->r, p, len, NULL) == 0)
					n->attr_sent_ms = now;
				free(p);
			}
		}
		try_held(n);
		pthread_mutex_lock(&n->mu);
		issue_reads(n);
		pthread_mutex_unlock(&n->mu);
		while (raft_has_ready(n->r))
			handle_ready(n);
		uint64_t applied = store_applied_index(n->st);
		/* (After a restart the store can be ahead of the commit index the
		 * WAL recorded until the leader tells us more: wait for that.) */
		if (n->cfg.snapshot_count &&
		    applied >= n->last_snap_index + n->cfg.snapshot_count &&
		    applied <= raft_commit_index(n->r))
			if (take_snapshot(n, applied) != 0)
				log_warn("snapshot at %" PRIu64 " failed", applied);
	}
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Requests.                                                            */

static int validate_kv_key(ef_buf k)
{
	if (k.n == 0)
		return EF_E_EMPTY_KEY;
	if (k.n > EF_MAX_KEY_BYTES)
		return EF_E_KEY_TOO_LONG;
	return 0;
}

static int validate_ops(node *n, const ef_op *ops, uint32_t cnt)
{
	if (cnt > n->cfg.max_txn_ops)
		return EF_E_TOO_MANY_OPS;
	for (uint32_t i = 0; i < cnt; i++) {
		const ef_op *o = &ops[i];
		ef_buf k = o->type == EF_OP_RANGE ? o->u.range.key
			   : o->type == EF_OP_PUT ? o->u.put.key
						  : o->u.del.key;
		int rv = validate_kv_key(k);
		if (rv)
			return rv;
	}
	return 0;
}

static int validate(node *n, const ef_msg *req)
{
	int rv = 0;
	switch (req->type) {
	case EF_MSG_RANGE:
		rv = validate_kv_key(req->u.range.key);
		break;
	case EF_MSG_PUT:
		rv = validate_kv_key(req->u.put.key);
		break;
	case EF_MSG_DELETE:
		rv = validate_kv_key(req->u.del.key);
		break;
	case EF_MSG_TXN:
		if (req->u.txn.n_cmp > n->cfg.max_txn_ops)
			return EF_E_TOO_MANY_OPS;
		for (uint32_t i = 0; i < req->u.txn.n_cmp && !rv; i++)
			rv = validate_kv_key(req->u.txn.cmp[i].key);
		if (!rv)
			rv = validate_ops(n, req->u.txn.success, req->u.txn.n_success);
		if (!rv)
			rv = validate_ops(n, req->u.txn.failure, req->u.txn.n_failure);
		break;
	default:
		break;
	}
	if (!rv && ef_request_size(req) > n->cfg.max_request_bytes)
		rv = EF_E_REQUEST_TOO_LARGE;
	return rv;
}

/* Does req need space (etcd's quota cost > 0)?  Puts, txns with a put and
 * lease grants do; deletes and compactions don't, so an operator past the
 * quota can still free space. */
static int costs_space(const ef_msg *req)
{
	const ef_txn_req *t = &req->u.txn;

	if (req->type == EF_MSG_PUT || req->type == EF_MSG_LEASE_GRANT)
		return 1;
	if (req->type != EF_MSG_TXN)
		return 0;
	for (uint32_t i = 0; i < t->n_success; i++)
		if (t->success[i].type == EF_OP_PUT)
			return 1;
	for (uint32_t i = 0; i < t->n_failure; i++)
		if (t->failure[i].type == EF_OP_PUT)
			return 1;
	return 0;
}

static int wait_read_index(node *n, int64_t deadline)
{
	struct waiter w = {0};
	cond_init_mono(&w.cv);
	pthread_mutex_lock(&n->mu);
	waiter_add(n, &w);
	if (n->next.n == n->next.cap) {
		size_t cap = n->next.cap ? n->next.cap * 2 : 64;
		uint64_t *nw = realloc(n->next.waiters, cap * sizeof *nw);
		if (!nw) {
			waiter_del(n, &w);
			pthread_mutex_unlock(&n->mu);
			return EF_E_NOMEM;
		}
		n->next.waiters = nw;
		n->next.cap = cap;
	}
	n->next.waiters[n->next.n++] = w.id;
	pthread_cond_signal(&n->cv);
	int rv = waiter_wait(n, &w, deadline);
	int no_leader = n->leader == RAFT_NONE;
	pthread_mutex_unlock(&n->mu);
	pthread_cond_destroy(&w.cv);
	if (rv == EF_E_TIMEOUT && no_leader)
		return EF_E_NO_LEADER;
	return rv ? rv : w.err;
}

#define QUOTA_RECHECK_MS 50

/* Is the store past --quota-backend-bytes?  Like etcd's, the check is a
 * little approximate: a burst of writes within QUOTA_RECHECK_MS of the
 * last measurement may go past the quota before it is noticed. */
static int over_quota(node *n)
{
	if (!n->cfg.quota_bytes)
		return 0;
	int64_t now = clock_mono_ms();
	if (now - atomic_load(&n->quota_ms) >= QUOTA_RECHECK_MS) {
		atomic_store(&n->quota_inuse, store_db_size_in_use(n->st));
		atomic_store(&n->quota_ms, now);
	}
	return (uint64_t)atomic_load(&n->quota_inuse) > n->cfg.quota_bytes;
}

static int do_propose(node *n, const ef_msg *req, ef_msg *resp, ef_arena *a, int64_t deadline)
{
	struct waiter w = {0};
	cond_init_mono(&w.cv);
	w.resp = resp;
	w.a = a;
	pthread_mutex_lock(&n->mu);
	waiter_add(n, &w);
	pthread_mutex_unlock(&n->mu);
	uint32_t len;
	uint8_t *p = make_payload(n, PAYLOAD_REQUEST, w.id, req, &len);
	struct ev *e = calloc(1, sizeof *e);
	if (!p || !e) {
		free(p);
		free(e);
		pthread_mutex_lock(&n->mu);
		waiter_del(n, &w);
		pthread_mutex_unlock(&n->mu);
		return set_error(resp, a, EF_E_NOMEM, NULL);
	}
	e->kind = EV_PROPOSE;
	e->data = p;
	e->len = len;
	e->waiter = w.id;
	post(n, e);
	pthread_mutex_lock(&n->mu);
	int rv = waiter_wait(n, &w, deadline);
	int proposed = w.proposed;
	pthread_mutex_unlock(&n->mu);
	pthread_cond_destroy(&w.cv);
	if (rv == EF_E_TIMEOUT)
		/* never proposed (no leader all along): certainly not applied,
		 * and the loop drops it; else the outcome is unknown */
		return set_error(resp, a, proposed ? EF_E_TIMEOUT : EF_E_NO_LEADER, NULL);
	if (resp->type == EF_MSG_ERROR)
		return (int)resp->u.error.code;
	fill_hdr(n, &resp->hdr);
	return 0;
}

/* Ask the leader (over the client protocol) to execute req: for the
 * requests only the leader can answer (lease keep-alive and time-to-live,
 * leader transfer), all idempotent.  Each try is bounded by two election
 * timeouts, so a leader that died mid-call costs one try, after which the
 * new leader (or this member, if it became the leader) is asked. */
static int forward(node *n, const ef_msg *req, ef_msg *resp, ef_arena *a, int64_t deadline,
		   int (*local)(node *, const ef_msg *, ef_msg *, ef_arena *))
{
	int rv = EF_E_NO_LEADER;
	for (;;) {
		pthread_mutex_lock(&n->mu);
		uint64_t leader = n->leader;
		int here = n->role == RAFT_LEADER;
		int idx = -1;
		char urls[512] = "";
		for (int i = 0; i < n->n_members; i++)
			if (n->members[i].id == leader) {
				idx = i;
				snprintf(urls, sizeof urls, "%s", n->members[i].client_urls);
			}
		pthread_mutex_unlock(&n->mu);
		if (here)
			return local(n, req, resp, a);
		if (idx >= 0 && urls[0]) {
			pthread_mutex_lock(&n->fwd_mu);
			if (!n->fwd[idx]) {
				efc_opts o = {.endpoints = urls,
					      .dial_timeout_ms = n->cfg.election_ms,
					      .command_timeout_ms = 2 * n->cfg.election_ms};
				if (efc_open(&o, &n->fwd[idx], NULL, 0) != 0)
					n->fwd[idx] = NULL;
			}
			efc_client *c = n->fwd[idx];
			pthread_mutex_unlock(&n->fwd_mu);
			if (c) {
				rv = efc_call(c, req, resp, a);
				if (rv == 0)
					return 0;
				if (resp->type == EF_MSG_ERROR && rv != EF_E_NO_LEADER &&
				    rv != EF_E_STOPPING && rv != EF_E_TIMEOUT &&
				    rv != EF_E_NOT_LEADER)
					return rv; /* the leader's definitive answer */
			}
		}
		if (clock_mono_ms() + 50 >= deadline)
			break;
		struct timespec ts = {0, 50 * 1000000L};
		nanosleep(&ts, NULL);
	}
	if (rv == EF_E_OUTCOME_UNKNOWN || rv == EF_E_UNAVAILABLE)
		rv = EF_E_TIMEOUT;
	return set_error(resp, a, rv ? rv : EF_E_NO_LEADER, NULL);
}

static int lease_keepalive(node *n, const ef_msg *req, ef_msg *resp, ef_arena *a)
{
	pthread_mutex_lock(&n->lease_mu);
	struct lease_ent *l = lease_find(n, req->u.lease.id);
	int64_t ttl = 0;
	if (l && l->deadline_ms > clock_mono_ms()) {
		l->deadline_ms = clock_mono_ms() + l->ttl * 1000;
		ttl = l->ttl;
	}
	pthread_mutex_unlock(&n->lease_mu);
	memset(resp, 0, sizeof *resp);
	resp->type = EF_MSG_LEASE_KEEPALIVE_RESP;
	resp->u.lease_resp.id = req->u.lease.id;
	resp->u.lease_resp.ttl = ttl;
	if (!ttl)
		return set_error(resp, a, EF_E_LEASE_NOT_FOUND, NULL);
	fill_hdr(n, &resp->hdr);
	return 0;
}

static int lease_ttl(node *n, const ef_msg *req, ef_msg *resp, ef_arena *a)
{
	store_lease sl;
	ef_buf *keys = NULL;
	uint32_t nk = 0;
	int rv = store_lease_get(n->st, req->u.lease.id, &sl, req->u.lease.keys ? &keys : NULL, &nk,
				 a);
	memset(resp, 0, sizeof *resp);
	resp->type = EF_MSG_LEASE_TTL_RESP;
	resp->u.lease_resp.id = req->u.lease.id;
	if (rv == EF_E_LEASE_NOT_FOUND) {
		resp->u.lease_resp.ttl = -1; /* as etcd: "already expired" */
		fill_hdr(n, &resp->hdr);
		return 0;
	}
	if (rv)
		return set_error(resp, a, rv, NULL);
	pthread_mutex_lock(&n->lease_mu);
	struct lease_ent *l = lease_find(n, req->u.lease.id);
	int64_t left = l ? (l->deadline_ms - clock_mono_ms() + 999) / 1000 : sl.ttl;
	pthread_mutex_unlock(&n->lease_mu);
	resp->u.lease_resp.ttl = left > 0 ? left : 0;
	resp->u.lease_resp.granted_ttl = sl.ttl;
	resp->u.lease_resp.keys = keys;
	resp->u.lease_resp.n_keys = nk;
	fill_hdr(n, &resp->hdr);
	return 0;
}

static int local_status(node *n, ef_msg *resp, ef_arena *a)
{
	node_status st;
	node_get_status(n, &st);
	memset(resp, 0, sizeof *resp);
	resp->type = EF_MSG_STATUS_RESP;
	ef_status_resp *s = &resp->u.status_resp;
	s->version = ef_str(ETCFS_VERSION);
	s->db_size = st.db_size;
	s->db_size_in_use = st.db_size_in_use;
	s->leader = st.leader;
	s->raft_index = st.commit_index;
	s->raft_term = st.term;
	s->raft_applied_index = st.applied_index;
	if (!st.has_leader)
		s->errors = ef_str(ef_strerror(EF_E_NO_LEADER));
	fill_hdr(n, &resp->hdr);
	(void)a;
	return 0;
}

static int member_list(node *n, ef_msg *resp, ef_arena *a)
{
	memset(resp, 0, sizeof *resp);
	resp->type = EF_MSG_MEMBER_LIST_RESP;
	ef_member *ms = ef_arena_alloc(a, sizeof(ef_member) * (size_t)n->n_members);
	if (!ms)
		return set_error(resp, a, EF_E_NOMEM, NULL);
	pthread_mutex_lock(&n->mu);
	for (int i = 0; i < n->n_members; i++) {
		struct member *m = &n->members[i];
		ms[i].id = m->id;
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
	pthread_mutex_unlock(&n->mu);
	resp->u.member_list_resp.members = ms;
	resp->u.member_list_resp.n_members = (uint32_t)n->n_members;
	fill_hdr(n, &resp->hdr);
	return 0;
}

static int move_leader(node *n, const ef_msg *req, ef_msg *resp, ef_arena *a)
{
	int64_t deadline = clock_mono_ms() + n->cfg.request_timeout_ms;
	uint64_t target = req->u.move_leader.target_id;
	if (!member_by_id(n, target))
		return set_error(resp, a, EF_E_BAD_LEADER_TRANSFEREE, NULL);
	struct ev *e = calloc(1, sizeof *e);
	if (!e)
		return set_error(resp, a, EF_E_NOMEM, NULL);
	e->kind = EV_TRANSFER;
	e->peer = target;
	post(n, e);
	while (clock_mono_ms() < deadline) {
		pthread_mutex_lock(&n->mu);
		uint64_t l = n->leader;
		pthread_mutex_unlock(&n->mu);
		if (l == target) {
			memset(resp, 0, sizeof *resp);
			resp->type = EF_MSG_MOVE_LEADER_RESP;
			fill_hdr(n, &resp->hdr);
			return 0;
		}
		struct timespec ts = {0, 10 * 1000000};
		nanosleep(&ts, NULL);
	}
	return set_error(resp, a, EF_E_TIMEOUT, "etcdserver: leadership transfer timed out");
}

static int node_call_inner(node *n, const ef_msg *req, ef_msg *resp, ef_arena *a)
{
	int64_t deadline = clock_mono_ms() + n->cfg.request_timeout_ms;
	int rv = validate(n, req);
	if (rv)
		return set_error(resp, a, rv, NULL);
	switch (req->type) {
	case EF_MSG_RANGE: {
		if (!req->u.range.serializable) {
			rv = wait_read_index(n, deadline);
			if (rv)
				return set_error(resp, a, rv, NULL);
		}
		memset(resp, 0, sizeof *resp);
		resp->type = EF_MSG_RANGE_RESP;
		int64_t hrev = 0;
		rv = store_range(n->st, &req->u.range, &resp->u.range_resp, &hrev, a);
		if (rv) {
			char msg[200];
			if (rv == EF_E_COMPACTED)
				snprintf(msg, sizeof msg, "%s (compacted at revision %" PRId64 ")",
					 ef_strerror(rv), store_compact_revision(n->st));
			return set_error(resp, a, rv, rv == EF_E_COMPACTED ? msg : NULL);
		}
		resp->hdr.revision = hrev;
		fill_hdr(n, &resp->hdr);
		return 0;
	}
	case EF_MSG_PUT:
	case EF_MSG_DELETE:
	case EF_MSG_TXN:
	case EF_MSG_COMPACT:
	case EF_MSG_LEASE_REVOKE:
		if (costs_space(req) && over_quota(n))
			return set_error(resp, a, EF_E_NO_SPACE, NULL);
		return do_propose(n, req, resp, a, deadline);
	case EF_MSG_LEASE_GRANT: {
		ef_msg g = *req;
		int64_t min_ttl = (3 * (int64_t)n->cfg.election_ms / 2 + 999) / 1000;
		if (g.u.lease.ttl < min_ttl)
			g.u.lease.ttl = min_ttl;
		if (g.u.lease.ttl > 9000000000LL)
			return set_error(resp, a, EF_E_LEASE_TTL_TOO_LARGE, NULL);
		if (over_quota(n))
			return set_error(resp, a, EF_E_NO_SPACE, NULL);
		if (!g.u.lease.id) {
			uint64_t r = 0;
			while ((int64_t)r <= 0) {
				if (getrandom(&r, sizeof r, 0) != sizeof r)
					r = (uint64_t)clock_wall_ns();
				r &= 0x7fffffffffffffffULL;
			}
			g.u.lease.id = (int64_t)r;
		}
		rv = do_propose(n, &g, resp, a, deadline);
		if (rv == 0) {
			resp->u.lease_resp.id = g.u.lease.id;
			resp->u.lease_resp.ttl = g.u.lease.ttl;
		}
		return rv;
	}
	case EF_MSG_LEASE_KEEPALIVE:
		return forward(n, req, resp, a, deadline, lease_keepalive);
	case EF_MSG_LEASE_TTL:
		return forward(n, req, resp, a, deadline, lease_ttl);
	case EF_MSG_LEASE_LIST: {
		store_lease *ls = NULL;
		uint32_t cnt = 0;
		if ((rv = store_lease_list(n->st, &ls, &cnt)) != 0)
			return set_error(resp, a, rv, NULL);
		memset(resp, 0, sizeof *resp);
		resp->type = EF_MSG_LEASE_LIST_RESP;
		resp->u.lease_list_resp.ids = ef_arena_alloc(a, sizeof(int64_t) * (cnt ? cnt : 1));
		if (resp->u.lease_list_resp.ids) {
			for (uint32_t i = 0; i < cnt; i++)
				resp->u.lease_list_resp.ids[i] = ls[i].id;
			resp->u.lease_list_resp.n_ids = cnt;
		}
		free(ls);
		fill_hdr(n, &resp->hdr);
		return 0;
	}
	case EF_MSG_STATUS:
		return local_status(n, resp, a);
	case EF_MSG_MEMBER_LIST:
		return member_list(n, resp, a);
	case EF_MSG_MOVE_LEADER:
		return forward(n, req, resp, a, deadline, move_leader);
	default:
		return set_error(resp, a, EF_E_UNKNOWN_TYPE, NULL);
	}
}

/* Every call is counted so that node_stop() can wait for the callers still
 * inside before it closes the store under them. */
int node_call(node *n, const ef_msg *req, ef_msg *resp, ef_arena *a)
{
	pthread_mutex_lock(&n->mu);
	if (n->stopping) {
		pthread_mutex_unlock(&n->mu);
		return set_error(resp, a, EF_E_STOPPING, NULL);
	}
	n->inflight++;
	pthread_mutex_unlock(&n->mu);
	int rv = node_call_inner(n, req, resp, a);
	pthread_mutex_lock(&n->mu);
	if (--n->inflight == 0 && n->stopping)
		pthread_cond_broadcast(&n->cv);
	pthread_mutex_unlock(&n->mu);
	return rv;
}

/* ------------------------------------------------------------------ */
/* Watch streams: thin layer over the hub.                              */

int node_wstream_open(node *n, node_watch_cb cb, void *ud, node_wstream **out)
{
	return watchhub_stream_open(n->hub, cb, ud, (hub_stream **)out);
}

int node_wstream_request(node_wstream *w, const ef_msg *req)
{
	return watchhub_stream_request((hub_stream *)w, req);
}

void node_wstream_close(node_wstream *w)
{
	watchhub_stream_close((hub_stream *)w);
}

void node_get_status(node *n, node_status *st)
{
	memset(st, 0, sizeof *st);
	st->cluster_id = n->cluster_id;
	st->member_id = n->id;
	pthread_mutex_lock(&n->mu);
	st->leader = n->leader;
	st->term = n->term;
	st->commit_index = n->commit_index;
	st->applied_index = n->applied_index;
	st->is_leader = n->role == RAFT_LEADER;
	st->has_leader = n->leader != RAFT_NONE;
	st->leader_changes = n->leader_changes;
	st->catching_up = n->commit_index > n->applied_index + 1000;
	pthread_mutex_unlock(&n->mu);
	st->revision = store_revision(n->st);
	st->compact_revision = store_compact_revision(n->st);
	st->db_size = store_db_size(n->st);
	st->db_size_in_use = store_db_size_in_use(n->st);
	st->keys = store_key_count(n->st);
	st->watchers = watchhub_watchers(n->hub);
	pthread_mutex_lock(&n->lease_mu);
	st->leases = n->n_leases;
	pthread_mutex_unlock(&n->lease_mu);
}

/* ------------------------------------------------------------------ */
/* Start and stop.                                                      */

static int mkdirs(const char *path)
{
	char tmp[1100];
	snprintf(tmp, sizeof tmp, "%s", path);
	for (char *p = tmp + 1; *p; p++)
		if (*p == '/') {
			*p = 0;
			if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
				return -1;
			*p = '/';
		}
	if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
		return -1;
	return 0;
}

static int64_t m_db_size(void *ud)
{
	return store_db_size(((node *)ud)->st);
}
static int64_t m_keys(void *ud)
{
	return store_key_count(((node *)ud)->st);
}
static int64_t m_watchers(void *ud)
{
	return (int64_t)watchhub_watchers(((node *)ud)->hub);
}
static int64_t m_leases(void *ud)
{
	node *n = ud;
	pthread_mutex_lock(&n->lease_mu);
	int64_t v = (int64_t)n->n_leases;
	pthread_mutex_unlock(&n->lease_mu);
	return v;
}
static int64_t m_applied(void *ud)
{
	return (int64_t)store_applied_index(((node *)ud)->st);
}
static int64_t m_revision(void *ud)
{
	return store_revision(((node *)ud)->st);
}

static void register_metrics(node *n)
{
	n->m_proposals_committed =
		metrics_counter("etcd_server_proposals_committed_total",
				"The total number of consensus proposals committed.", "");
	n->m_proposals_applied =
		metrics_counter("etcd_server_proposals_applied_total",
				"The total number of consensus proposals applied.", "");
	n->m_proposals_failed = metrics_counter("etcd_server_proposals_failed_total",
						"The total number of failed proposals seen.", "");
	n->m_proposals_pending =
		metrics_gauge("etcd_server_proposals_pending",
			      "The current number of pending proposals to commit.", "");
	n->m_leader_changes = metrics_counter("etcd_server_leader_changes_seen_total",
					      "The number of leader changes seen.", "");
	n->m_has_leader =
		metrics_gauge("etcd_server_has_leader",
			      "Whether or not a leader exists. 1 is existence, 0 is not.", "");
	n->m_is_leader =
		metrics_gauge("etcd_server_is_leader",
			      "Whether or not this member is a leader. 1 if is, 0 otherwise.", "");
	n->m_term = metrics_gauge("etcfs_server_raft_term", "The current Raft term.", "");
	n->m_wal_fsync = metrics_histogram("etcd_disk_wal_fsync_duration_seconds",
					   "The latency distributions of fsync called by WAL.", "",
					   0.001, 2, 14);
	n->m_backend_commit = metrics_histogram(
		"etcd_disk_backend_commit_duration_seconds",
		"The latency distributions of commit called by backend.", "", 0.001, 2, 14);
	n->m_snap_sent = metrics_counter("etcd_network_snapshot_send_success",
					 "Total number of successful snapshot sends", "");
	n->m_snap_recv = metrics_counter("etcd_network_snapshot_receive_success",
					 "Total number of successful snapshot receives", "");
	metrics_gauge_fn("etcd_mvcc_db_total_size_in_bytes",
			 "Total size of the underlying database in bytes.", "", m_db_size, n);
	metrics_gauge_fn("etcd_debugging_mvcc_keys_total", "Total number of keys.", "", m_keys, n);
	metrics_gauge_fn("etcd_debugging_mvcc_watcher_total", "Total number of watchers.", "",
			 m_watchers, n);
	metrics_gauge_fn("etcfs_server_leases", "Number of leases the leader tracks.", "", m_leases,
			 n);
	metrics_gauge_fn("etcfs_server_applied_index", "The applied Raft index.", "", m_applied, n);
	metrics_gauge_fn("etcd_debugging_mvcc_current_revision", "The current revision of store.",
			 "", m_revision, n);
}

int node_start(const node_config *cfg, node **out, char *err, size_t errlen)
{
	node *n = calloc(1, sizeof *n);
	if (!n)
		return EF_E_NOMEM;
	n->cfg = *cfg;
	n->lock_fd = -1;
	if (!n->cfg.heartbeat_ms)
		n->cfg.heartbeat_ms = 100;
	if (!n->cfg.election_ms)
		n->cfg.election_ms = 1000;
	if (!n->cfg.request_timeout_ms)
		n->cfg.request_timeout_ms = 5000;
	if (!n->cfg.max_txn_ops)
		n->cfg.max_txn_ops = EF_DEFAULT_MAX_TXN_OPS;
	if (!n->cfg.max_request_bytes)
		n->cfg.max_request_bytes = EF_DEFAULT_MAX_REQUEST_BYTES;
	if (!n->cfg.initial_cluster_token)
		n->cfg.initial_cluster_token = "etcd-cluster";
	if (!n->cfg.advertise_client_urls)
		n->cfg.advertise_client_urls = "";
	pthread_mutex_init(&n->mu, NULL);
	cond_init_mono(&n->cv);
	pthread_mutex_init(&n->lease_mu, NULL);
	pthread_mutex_init(&n->fwd_mu, NULL);

	int rv = parse_cluster(n, n->cfg.initial_cluster, err, errlen);
	if (rv)
		goto fail;
	snprintf(n->member_dir, sizeof n->member_dir, "%s/member", cfg->data_dir);
	char path[1200];
	snprintf(path, sizeof path, "%s/snap", n->member_dir);
	if (mkdirs(path) != 0) {
		snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
		rv = EF_E_IO;
		goto fail;
	}
	snprintf(path, sizeof path, "%s/etcfsd.lock", cfg->data_dir);
	n->lock_fd = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
	if (n->lock_fd < 0 || flock(n->lock_fd, LOCK_EX | LOCK_NB) != 0) {
		char pid[32] = "?";
		if (n->lock_fd >= 0) {
			ssize_t k = pread(n->lock_fd, pid, sizeof pid - 1, 0);
			pid[k > 0 ? k : 0] = 0;
			pid[strcspn(pid, "\n")] = 0;
		}
		snprintf(err, errlen, "data dir %s is in use by another etcfsd (pid %s)",
			 cfg->data_dir, pid);
		rv = EF_E_LOCKED;
		goto fail;
	}
	char pidbuf[32];
	int pl = snprintf(pidbuf, sizeof pidbuf, "%d\n", (int)getpid());
	if (ftruncate(n->lock_fd, 0) != 0 || pwrite(n->lock_fd, pidbuf, (size_t)pl, 0) != pl)
		log_warn("cannot write pid into lock file");

	snprintf(path, sizeof path, "%s/db", n->member_dir);
	if (mkdirs(path) != 0) {
		snprintf(err, errlen, "cannot create %s", path);
		rv = EF_E_IO;
		goto fail;
	}
	store_opts so = {.dir = path,
			 .quota_bytes = cfg->quota_bytes ? cfg->quota_bytes * 2 : 0,
			 .max_txn_ops = n->cfg.max_txn_ops};
	if (so.quota_bytes && so.quota_bytes < (64ull << 20))
		so.quota_bytes = 64ull << 20;
	if ((rv = store_open(&so, &n->st, err, errlen)) != 0)
		goto fail;

	wal_recovered rec;
	memset(&rec, 0, sizeof rec);
	if ((rv = wal_open(n->member_dir, n->cluster_id, n->id, &n->w, &rec, err, errlen)) != 0)
		goto fail;
	/* The store must hold at least the snapshot the WAL starts from. */
	if (rec.snap.index > store_applied_index(n->st)) {
		log_info("store is at index %" PRIu64 ", WAL starts after snapshot %" PRIu64
			 ": installing it",
			 store_applied_index(n->st), rec.snap.index);
		n->hub = watchhub_new(n->st, hub_hdr, n);
		if ((rv = install_snapshot(n, &rec.snap)) != 0) {
			snprintf(err, errlen, "cannot install snapshot %" PRIu64 " from %s/snap",
				 rec.snap.index, n->member_dir);
			wal_recovered_free(&rec);
			goto fail;
		}
	}
	n->last_snap_index = rec.snap.index;
	if (!cfg->cluster_state_new && rec.hs.term == 0 && rec.n_entries == 0 &&
	    rec.snap.index == 0)
		log_warn(
			"--initial-cluster-state existing with an empty data dir: joining as a new member "
			"of the configured cluster");

	raft_config rc = {.id = n->id,
			  .election_tick = n->cfg.election_ms / n->cfg.heartbeat_ms,
			  .heartbeat_tick = 1,
			  .max_inflight = 256,
			  .max_msg_bytes = 1u << 20,
			  .pre_vote = 1,
			  .check_quorum = 1};
	if (rc.election_tick < 2)
		rc.election_tick = 2;
	getrandom(&rc.seed, sizeof rc.seed, 0);
	rc.n_voters = (uint32_t)n->n_members;
	for (int i = 0; i < n->n_members; i++)
		rc.voters[i] = n->members[i].id;
	n->synced_hs = rec.hs;
	n->r = raft_new(&rc, &rec.hs, rec.snap.index ? &rec.snap : NULL, rec.entries,
			rec.n_entries);
	wal_recovered_free(&rec);
	if (!n->r) {
		snprintf(err, errlen, "cannot start raft");
		rv = EF_E_NOMEM;
		goto fail;
	}
	pthread_mutex_lock(&n->mu);
	n->applied_index = store_applied_index(n->st);
	n->term = raft_term(n->r);
	pthread_mutex_unlock(&n->mu);
	if (!n->hub)
		n->hub = watchhub_new(n->st, hub_hdr, n);
	load_member_attrs(n);
	n->scratch = ef_arena_new();
	register_metrics(n);

	if (n->n_members > 1 || cfg->listen_peer_urls) {
		struct member *self = member_by_id(n, n->id);
		const char *listen = cfg->listen_peer_urls ? cfg->listen_peer_urls : self->peer_url;
		char lbuf[600];
		if (strncmp(listen, "http://", 7) == 0) {
			snprintf(lbuf, sizeof lbuf, "tcp://%s", listen + 7);
			listen = lbuf;
		}
		if ((rv = peer_start(listen, n->cluster_id, n->id,
				     n->cfg.max_request_bytes + (4u << 20), on_peer, n, &n->peers,
				     err, errlen)) != 0) {
			rv = EF_E_INVALID;
			goto fail;
		}
		for (int i = 0; i < n->n_members; i++)
			if (n->members[i].id != n->id)
				peer_add(n->peers, n->members[i].id, n->members[i].peer_url);
	}
	if (n->n_members == 1)
		raft_campaign(n->r);
	if (pthread_create(&n->loop, NULL, loop_main, n) != 0) {
		rv = EF_E_NOMEM;
		goto fail;
	}
	log_info("member %016" PRIx64 " (%s) of cluster %016" PRIx64
		 " started, %d member(s), applied index %" PRIu64,
		 n->id, n->cfg.name, n->cluster_id, n->n_members, store_applied_index(n->st));
	*out = n;
	return 0;
fail:
	if (n->peers)
		peer_stop(n->peers);
	if (n->w)
		wal_close(n->w);
	if (n->st)
		store_close(n->st);
	if (n->lock_fd >= 0)
		close(n->lock_fd);
	free(n);
	return rv ? rv : EF_E_INVALID;
}

void node_stop(node *n)
{
	pthread_mutex_lock(&n->mu);
	n->stopping = 1;
	pthread_cond_broadcast(&n->cv);
	pthread_mutex_unlock(&n->mu);
	pthread_join(n->loop, NULL);
	/* The loop is gone: answer every waiter it will never wake, then wait
	 * (bounded) for the callers to leave. */
	pthread_mutex_lock(&n->mu);
	for (int b = 0; b < 1024; b++) {
		for (struct waiter *w = n->wt[b]; w; w = w->next) {
			if (w->resp)
				set_error(w->resp, w->a, EF_E_STOPPING, NULL);
			w->err = EF_E_STOPPING;
			w->state = W_DONE;
			pthread_cond_signal(&w->cv);
		}
		n->wt[b] = NULL;
	}
	int64_t until = clock_mono_ms() + 3000;
	while (n->inflight > 0 && clock_mono_ms() < until) {
		struct timespec ts = {until / 1000, (until % 1000) * 1000000};
		pthread_cond_timedwait(&n->cv, &n->mu, &ts);
	}
	int stuck = n->inflight;
	pthread_mutex_unlock(&n->mu);
	if (stuck)
		log_warn("%d request(s) still running at shutdown", stuck);
	/* Make everything durable.  The objects stay allocated: connection
	 * threads may still hold watch streams and the process exits next, so
	 * nothing is freed under them (the store needs no close to be
	 * consistent; the WAL is synced). */
	if (n->peers)
		peer_stop(n->peers);
	store_sync(n->st);
	wal_sync(n->w);
	close(n->lock_fd);
}
