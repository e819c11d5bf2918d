/*
 * sim.c - deterministic whole-cluster simulation of the Raft core.
 *
 * One seed drives everything (in the spirit of TigerBeetle's VOPR and
 * SQLite's crash tests): a splitmix64 generator picks, step by step, which
 * node ticks, which queued message is delivered next (so messages are
 * reordered), which are dropped, duplicated or delayed, when partitions
 * (symmetric and one-way) come and go, when nodes crash and restart, when
 * clients propose commands or ask for linearizable reads, when a node takes
 * a snapshot and compacts its log, and when a leader transfer is asked for.
 * In membership seeds (half of them) the cluster has two spare slots and the
 * leader is asked, at random and under the same faults, to add a member (as
 * a learner or a voter, started empty as a joining node), to remove one
 * (the removed node is stopped and its data wiped, and its slot may come back
 * later as a new member with a new id: a replaced disk) or to promote a
 * learner.
 *
 * Each node has a simulated disk holding what the host fsync'd: hard state,
 * log and snapshot.  The host loop follows raft.h's contract exactly
 * (install snapshot, persist, send, apply, advance); a crash loses whatever
 * was not persisted and may tear the tail of the entries being written.
 * Every message goes through raft_msg_encode / raft_msg_decode.
 *
 * Invariants checked after every step: election safety, log matching,
 * leader completeness, state machine safety, monotonic commit, read
 * linearizability; with membership: only voters lead, a removed node is
 * never leader, every committed entry is on the disks of a majority of the
 * voters (of the configuration before or after the latest change: learners
 * never count), and the member table of every member agrees at the end;
 * after the faults heal, liveness.  A failure prints the
 * seed and the command line that replays it with a trace.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../proto/wire.h"
#include "../../server/raft/raft.h"

#define MAXN 7 /* 5 members + 2 spare slots for membership changes */
#define DEFAULT_STEPS 20000L

/* ------------------------------------------------------------------ */
/* Randomness and failure reporting                                     */

static uint64_t g_rng;
static bool g_verbose;
static uint64_t g_seed;
static long g_step;
static int g_nodes; /* slots (members, spare or removed) */
static int g_init;  /* bootstrap voters: slots 0 .. g_init-1 */
static bool g_membership;
static char g_fail[512];

static uint64_t rnd(void)
{
	uint64_t z = (g_rng += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}
static uint64_t rn(uint64_t n)
{
	return n ? rnd() % n : 0;
}
static bool chance(unsigned per_mille)
{
	return rn(1000) < per_mille;
}

static void trace(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void trace(const char *fmt, ...)
{
	va_list ap;
	if (!g_verbose)
		return;
	printf("[%6ld] ", g_step);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
	va_list ap;
	if (g_fail[0])
		return;
	va_start(ap, fmt);
	vsnprintf(g_fail, sizeof(g_fail), fmt, ap);
	va_end(ap);
	trace("FAILURE: %s", g_fail);
}

static uint64_t fnv(const void *p, size_t n, uint64_t h)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

/* ------------------------------------------------------------------ */
/* Global history for the invariants                                    */

typedef struct {
	uint64_t *v;
	size_t n;
} u64vec;

static void vec_set(u64vec *a, uint64_t i, uint64_t x)
{
	if (i >= a->n) {
		size_t n = a->n ? a->n : 64;
		while (n <= i)
			n *= 2;
		a->v = realloc(a->v, n * sizeof(uint64_t));
		memset(a->v + a->n, 0, (n - a->n) * sizeof(uint64_t));
		a->n = n;
	}
	a->v[i] = x;
}
static uint64_t vec_get(const u64vec *a, uint64_t i)
{
	return i < a->n ? a->v[i] : 0;
}

static u64vec g_leader_of_term;  /* term -> leader id */
static u64vec g_sm_hash;         /* index -> state machine hash after applying it (0: unknown) */
static u64vec g_committed_term;  /* index -> term of the committed entry */
static uint64_t g_max_committed; /* highest index known committed */
static uint64_t g_acked;         /* highest index applied anywhere (a client got its answer) */

/* (index, term) -> (data hash, previous term): log matching by induction. */
typedef struct {
	uint64_t index, term, hash, prev_term;
} lm_slot;
static lm_slot *g_lm;
static size_t g_lm_cap, g_lm_n;

static lm_slot *lm_find(uint64_t index, uint64_t term, bool insert)
{
	size_t i;
	if (insert && (g_lm_n + 1) * 2 > g_lm_cap) {
		lm_slot *old = g_lm;
		size_t oc = g_lm_cap;
		g_lm_cap = oc ? oc * 2 : 4096;
		g_lm = calloc(g_lm_cap, sizeof(lm_slot));
		g_lm_n = 0;
		for (size_t k = 0; k < oc; k++)
			if (old[k].index) {
				lm_slot *s = lm_find(old[k].index, old[k].term, true);
				*s = old[k];
			}
		free(old);
	}
	if (g_lm_cap == 0)
		return NULL;
	i = (size_t)((index * 0x9e3779b97f4a7c15ull) ^ (term * 0xc2b2ae3d27d4eb4full)) &
	    (g_lm_cap - 1);
	for (;;) {
		if (g_lm[i].index == index && g_lm[i].term == term)
			return &g_lm[i];
		if (g_lm[i].index == 0) {
			if (!insert)
				return NULL;
			g_lm[i].index = index;
			g_lm[i].term = term;
			g_lm_n++;
			return &g_lm[i];
		}
		i = (i + 1) & (g_lm_cap - 1);
	}
}

/* ------------------------------------------------------------------ */
/* Nodes, disks, network                                                */

typedef struct {
	uint64_t term, index, hash;
	uint8_t type;
	uint32_t len;
	uint8_t *data;
} dent;

typedef struct {
	raft_hard_state hs;
	raft_snapshot_meta snap;
	bool has_base; /* a joining node learned the configuration at index 0 */
	raft_snapshot_meta base;
	uint64_t snap_hash;
	dent *ents; /* contiguous, ents[0].index == first */
	size_t n, cap;
} disk;

typedef struct {
	uint64_t id, index_at_issue;
	int node;
} pending_read;

typedef struct {
	raft *r;
	uint64_t id;                  /* 0: free slot; a replaced member gets a new id */
	bool joining;                 /* started with --initial-cluster-state existing */
	bool removing;                /* a change removed it: stop and wipe after the checks */
	raft_snapshot_meta prev_conf; /* configuration after the previous settle */
	bool up;
	int restarts;
	disk d;
	uint64_t sm_applied, sm_hash; /* the state machine: a hash chain */
	uint64_t commit_seen;
	uint64_t last_term_seen_leader;
} node;

typedef struct {
	int from, to;
	uint64_t to_id; /* the slot may have been reused since */
	long deliver_at;
	uint8_t *buf;
	size_t len;
	bool is_snap;
	uint64_t snap_index;
} packet;

static node g_n[MAXN];
static packet *g_net;
static size_t g_net_n, g_net_cap;
static bool g_cut[MAXN][MAXN];       /* g_cut[a][b]: a cannot reach b */
static unsigned g_drop_pm, g_dup_pm; /* per mille */
static int g_max_delay;
static unsigned g_fault_pm; /* crash and partition rate */
static bool g_healed;       /* liveness phase: no more faults */
static uint64_t g_cmd_seq, g_read_seq;
static pending_read *g_reads;
static size_t g_reads_n, g_reads_cap;
static long g_stat_commits, g_stat_reads, g_stat_snaps, g_stat_crashes, g_stat_elections;
static long g_stat_confs, g_stat_conf_props;
static uint64_t g_next_gen;

static int slot_of(uint64_t id)
{
	int s = id ? (int)((id - 1) % 16) : -1;
	return s >= 0 && s < g_nodes && g_n[s].id == id ? s : -1;
}

static raft_config node_config(int i)
{
	raft_config c;
	memset(&c, 0, sizeof(c));
	c.id = g_n[i].id;
	if (g_n[i].joining) {
		c.joining = 1;
		if (g_n[i].d.has_base) {
			const raft_snapshot_meta *b = &g_n[i].d.base;
			c.n_voters = b->n_voters;
			memcpy(c.voters, b->voters, sizeof(c.voters));
			c.n_learners = b->n_learners;
			memcpy(c.learners, b->learners, sizeof(c.learners));
		}
	} else {
		c.n_voters = (uint32_t)g_init;
		for (int k = 0; k < g_init; k++)
			c.voters[k] = (uint64_t)k + 1;
	}
	c.election_tick = 10;
	c.heartbeat_tick = 1;
	c.max_inflight = 4 + (uint32_t)(g_seed % 8);
	c.max_msg_bytes = 64 + (uint32_t)(g_seed % 5) * 200;
	c.pre_vote = 1;
	c.check_quorum = 1;
	/* a quarter of the membership seeds let leaders promote on their own */
	c.auto_promote = g_membership && g_seed % 8 == 7;
	c.seed = g_seed * 1000003u + (uint64_t)g_n[i].restarts * 7919u;
	return c;
}

static void disk_truncate(disk *d, uint64_t from_index)
{
	while (d->n && d->ents[d->n - 1].index >= from_index) {
		free(d->ents[d->n - 1].data);
		d->n--;
	}
}

static void disk_append(int ni, const raft_entry *e)
{
	disk *d = &g_n[ni].d;
	uint64_t prev_term;
	dent *x;
	lm_slot *s;

	disk_truncate(d, e->index);
	if (d->n && d->ents[d->n - 1].index + 1 != e->index) {
		fail("host: non-contiguous entry %llu after %llu on node %d",
		     (unsigned long long)e->index, (unsigned long long)d->ents[d->n - 1].index,
		     ni + 1);
		return;
	}
	if (d->n == 0 && e->index != d->snap.index + 1) {
		fail("host: entry %llu does not follow snapshot %llu on node %d",
		     (unsigned long long)e->index, (unsigned long long)d->snap.index, ni + 1);
		return;
	}
	prev_term = d->n ? d->ents[d->n - 1].term : d->snap.term;
	if (d->n == d->cap) {
		d->cap = d->cap ? d->cap * 2 : 64;
		d->ents = realloc(d->ents, d->cap * sizeof(dent));
	}
	x = &d->ents[d->n++];
	x->term = e->term;
	x->index = e->index;
	x->type = e->type;
	x->len = e->len;
	x->data = NULL;
	if (e->len) {
		x->data = malloc(e->len);
		memcpy(x->data, e->data, e->len);
	}
	x->hash = fnv(e->data, e->len, 0xcbf29ce484222325ull ^ e->type);
	/* Log matching: one (index, term) names one entry, with one
	 * predecessor term (so, by induction, one whole prefix). */
	s = lm_find(e->index, e->term, true);
	if (s->hash == 0 && s->prev_term == 0) {
		s->hash = x->hash;
		s->prev_term = prev_term;
	} else if (s->hash != x->hash || (prev_term && s->prev_term && s->prev_term != prev_term)) {
		fail("log matching: entry %llu term %llu differs on node %d",
		     (unsigned long long)e->index, (unsigned long long)e->term, ni + 1);
	}
}

static void disk_compact(disk *d, uint64_t upto)
{
	size_t k = 0;
	while (k < d->n && d->ents[k].index <= upto) {
		free(d->ents[k].data);
		k++;
	}
	memmove(d->ents, d->ents + k, (d->n - k) * sizeof(dent));
	d->n -= k;
}

static void net_push(int from, int to, const raft_msg *m)
{
	ef_wbuf b;
	packet *p;

	ef_wbuf_init(&b);
	if (raft_msg_encode(m, &b)) {
		fail("codec: encode failed");
		ef_wbuf_free(&b);
		return;
	}
	if (g_net_n == g_net_cap) {
		g_net_cap = g_net_cap ? g_net_cap * 2 : 256;
		g_net = realloc(g_net, g_net_cap * sizeof(packet));
	}
	p = &g_net[g_net_n++];
	p->from = from;
	p->to = to;
	p->to_id = m->to;
	p->deliver_at = g_step + (g_max_delay ? (long)rn((uint64_t)g_max_delay + 1) : 0);
	p->buf = b.p;
	p->len = b.len;
	p->is_snap = m->type == RAFT_MSG_SNAP;
	p->snap_index = m->snapshot.index;
}

static void net_remove(size_t i)
{
	free(g_net[i].buf);
	g_net[i] = g_net[--g_net_n];
}

/* ------------------------------------------------------------------ */
/* The host loop                                                        */

static void crash(int i);

static bool disk_holds(int slot, uint64_t index, uint64_t term)
{
	const disk *d = &g_n[slot].d;
	if (index <= d->snap.index)
		return true;
	if (d->n == 0 || index < d->ents[0].index || index > d->ents[d->n - 1].index)
		return false;
	return d->ents[index - d->ents[0].index].term == term;
}

static uint32_t durable_voters(const raft_snapshot_meta *c, uint64_t index, uint64_t term)
{
	uint32_t n = 0;
	for (uint32_t v = 0; v < c->n_voters; v++) {
		int s = slot_of(c->voters[v]);
		if (s >= 0 && disk_holds(s, index, term))
			n++;
	}
	return n;
}

/* A leader's commit of index: on the disks of a majority of the voters of
 * its configuration, before or after the latest change (single-server
 * steps: either majority intersects every other).  Learners never count. */
static void check_durable(int i, uint64_t index)
{
	raft_snapshot_meta now;
	const raft_snapshot_meta *before = &g_n[i].prev_conf;
	uint64_t term = raft_term_at(g_n[i].r, index);

	if (term == 0)
		return;
	raft_conf(g_n[i].r, &now);
	if (durable_voters(&now, index, term) < now.n_voters / 2 + 1 &&
	    (before->n_voters == 0 ||
	     durable_voters(before, index, term) < before->n_voters / 2 + 1))
		fail("commit durability: leader %llu committed %llu, on too few voters' disks",
		     (unsigned long long)g_n[i].id, (unsigned long long)index);
}

static void record_commit(int i)
{
	node *nd = &g_n[i];
	uint64_t c = raft_commit_index(nd->r);

	if (c < nd->commit_seen)
		fail("commit decreased on node %d: %llu -> %llu", i + 1,
		     (unsigned long long)nd->commit_seen, (unsigned long long)c);
	for (uint64_t k = nd->commit_seen + 1; k <= c; k++) {
		uint64_t t = raft_term_at(nd->r, k), gt = vec_get(&g_committed_term, k);
		if (t == 0)
			continue; /* compacted: covered by a snapshot */
		if (gt == 0)
			vec_set(&g_committed_term, k, t);
		else if (gt != t)
			fail("state machine safety: index %llu committed with term %llu and %llu",
			     (unsigned long long)k, (unsigned long long)gt, (unsigned long long)t);
	}
	if (c > g_max_committed)
		g_max_committed = c;
	if (g_membership && raft_role(nd->r) == RAFT_LEADER)
		for (uint64_t k = nd->commit_seen + 1; k <= c; k++)
			check_durable(i, k);
	nd->commit_seen = c;
}

static void check_leader(int i)
{
	node *nd = &g_n[i];
	uint64_t term = raft_term(nd->r), prev;

	/* Only a voter leads; a leader its removal made a non-voter steps
	 * down as soon as its last (leaving) entry is committed. */
	if (raft_role(nd->r) == RAFT_LEADER && !raft_is_voter(nd->r, nd->id) &&
	    !raft_removed(nd->r))
		fail("node %llu leads term %llu without being a voter", (unsigned long long)nd->id,
		     (unsigned long long)term);
	if (raft_role(nd->r) == RAFT_LEADER && raft_removed(nd->r) &&
	    raft_commit_index(nd->r) >= raft_last_index(nd->r))
		fail("removed node %llu still leads", (unsigned long long)nd->id);
	if (raft_role(nd->r) != RAFT_LEADER || nd->last_term_seen_leader == term)
		return;
	nd->last_term_seen_leader = term;
	prev = vec_get(&g_leader_of_term, term);
	if (prev && prev != nd->id) {
		fail("election safety: term %llu has leaders %llu and %llu",
		     (unsigned long long)term, (unsigned long long)prev,
		     (unsigned long long)nd->id);
		return;
	}
	vec_set(&g_leader_of_term, term, nd->id);
	g_stat_elections++;
	trace("node %d leader of term %llu", i + 1, (unsigned long long)term);
	/* Leader completeness: every entry known committed is in its log. */
	for (uint64_t k = raft_first_index(nd->r); k <= g_max_committed; k++) {
		uint64_t gt = vec_get(&g_committed_term, k);
		if (gt && raft_term_at(nd->r, k) != gt) {
			fail("leader completeness: new leader %d of term %llu lacks committed "
			     "entry %llu (term %llu, has %llu)",
			     i + 1, (unsigned long long)term, (unsigned long long)k,
			     (unsigned long long)gt, (unsigned long long)raft_term_at(nd->r, k));
			return;
		}
	}
}

static void wipe(int s);

/* The host's side of an applied change: the removed member is stopped
 * (its peers refuse it, as etcd's do) and its data wiped. */
static void note_conf(int i, const raft_entry *e)
{
	raft_conf_change cc;
	int s;

	if (raft_conf_decode(e->data, e->len, &cc)) {
		fail("node %d applied an undecodable conf entry %llu", i + 1,
		     (unsigned long long)e->index);
		return;
	}
	trace("node %d applies conf op %u id %llu at %llu", i + 1, cc.op, (unsigned long long)cc.id,
	      (unsigned long long)e->index);
	if (cc.op == RAFT_CONF_REMOVE && (s = slot_of(cc.id)) >= 0 && s != i)
		g_n[s].removing = true; /* stopped and wiped once the step's checks ran */
}

static void apply_entry(int i, const raft_entry *e)
{
	node *nd = &g_n[i];
	uint64_t h, gh;

	if (e->index != nd->sm_applied + 1) {
		fail("apply order: node %d applies %llu after %llu", i + 1,
		     (unsigned long long)e->index, (unsigned long long)nd->sm_applied);
		return;
	}
	h = fnv(e->data, e->len, nd->sm_hash ^ ((uint64_t)e->type << 56) ^ 0x5bd1e995);
	if (h == 0)
		h = 1;
	gh = vec_get(&g_sm_hash, e->index);
	if (gh == 0)
		vec_set(&g_sm_hash, e->index, h);
	else if (gh != h)
		fail("state machine safety: node %d applied a different command at %llu", i + 1,
		     (unsigned long long)e->index);
	nd->sm_hash = h;
	nd->sm_applied = e->index;
	if (e->index > g_acked)
		g_acked = e->index;
	if (e->type == RAFT_ENTRY_NORMAL)
		g_stat_commits++;
	if (e->type == RAFT_ENTRY_CONF)
		note_conf(i, e);
}

static void answer_read(int i, const raft_read_state *rs, bool ok)
{
	uint64_t id;

	if (rs->context_len != 8) {
		fail("read: bad context length %u", rs->context_len);
		return;
	}
	memcpy(&id, rs->context, 8);
	for (size_t k = 0; k < g_reads_n; k++) {
		if (g_reads[k].id != id)
			continue;
		if (g_reads[k].node != i)
			fail("read %llu answered on node %d, asked on %d", (unsigned long long)id,
			     i + 1, g_reads[k].node + 1);
		else if (ok && rs->index < g_reads[k].index_at_issue)
			fail("read linearizability: read %llu got index %llu < %llu acknowledged "
			     "before it was issued",
			     (unsigned long long)id, (unsigned long long)rs->index,
			     (unsigned long long)g_reads[k].index_at_issue);
		if (ok)
			g_stat_reads++;
		g_reads[k] = g_reads[--g_reads_n];
		return;
	}
	/* Unknown id: a duplicate answer of a duplicated request; harmless. */
}

static void host_send(int i, const raft_msg *msgs, size_t lo, size_t hi)
{
	for (size_t j = lo; j < hi; j++) {
		int to = msgs[j].to ? (int)((msgs[j].to - 1) % 16) : -1;
		if (to < 0 || to >= g_nodes || msgs[j].from != g_n[i].id) {
			fail("message with bad address from node %d", i + 1);
			continue;
		}
		net_push(i, to, &msgs[j]);
	}
}

/* Run the host contract once. Returns false if the node crashed. */
static bool host_ready(int i, bool allow_torn_crash)
{
	node *nd = &g_n[i];
	raft_ready rd;

	raft_get_ready(nd->r, &rd);
	/* 2. snapshot */
	if (rd.snapshot) {
		uint64_t h = vec_get(&g_sm_hash, rd.snapshot->index);
		if (h == 0) {
			fail("snapshot %llu installed on node %d has no known state",
			     (unsigned long long)rd.snapshot->index, i + 1);
			return false;
		}
		disk_truncate(&nd->d, 0);
		nd->d.snap = *rd.snapshot;
		nd->d.has_base = false; /* the snapshot carries the configuration */
		nd->d.snap_hash = h;
		nd->sm_applied = rd.snapshot->index;
		nd->sm_hash = h;
		trace("node %d installs snapshot %llu", i + 1,
		      (unsigned long long)rd.snapshot->index);
	}
	/* 3. send what needs no persistence: it is out even if we crash next. */
	host_send(i, rd.msgs, 0, rd.n_msgs_early);
	/* 4. persist; a crash here may tear the tail. */
	if (allow_torn_crash && rd.n_entries && chance(20)) {
		size_t k = rn(rd.n_entries);
		for (size_t j = 0; j < k; j++)
			disk_append(i, &rd.entries[j]);
		trace("node %d crashes while persisting (%zu of %zu entries)", i + 1, k,
		      rd.n_entries);
		crash(i);
		return false;
	}
	if (rd.conf_base) {
		nd->d.base = *rd.conf_base;
		nd->d.has_base = true;
	}
	for (size_t j = 0; j < rd.n_entries; j++)
		disk_append(i, &rd.entries[j]);
	if (rd.hs_changed) {
		if (rd.hs.term < nd->d.hs.term)
			fail("hard state term went back on node %d", i + 1);
		nd->d.hs = rd.hs;
	}
	/* 5. send the rest */
	host_send(i, rd.msgs, rd.n_msgs_early, rd.n_msgs);
	/* 6. apply, answer reads */
	for (size_t j = 0; j < rd.n_committed; j++)
		apply_entry(i, &rd.committed[j]);
	for (size_t j = 0; j < rd.n_reads; j++)
		answer_read(i, &rd.reads[j], true);
	for (size_t j = 0; j < rd.n_failed_reads; j++)
		answer_read(i, &rd.failed_reads[j], false);
	/* 7. */
	raft_advance(nd->r, &rd);
	return true;
}

static void settle(int i, bool allow_crash)
{
	int guard = 0;
	while (g_n[i].up && raft_has_ready(g_n[i].r) && !g_fail[0]) {
		if (!host_ready(i, allow_crash && !g_healed))
			return;
		if (++guard > 1000) {
			fail("node %d never runs out of readies", i + 1);
			return;
		}
	}
	if (g_n[i].up) {
		record_commit(i);
		check_leader(i);
		raft_conf(g_n[i].r, &g_n[i].prev_conf);
	}
	/* Stop and wipe the members a change removed. */
	for (int s = 0; s < g_nodes; s++)
		if (g_n[s].removing && (!g_n[s].up || raft_role(g_n[s].r) != RAFT_LEADER)) {
			g_n[s].id = 0;
			wipe(s);
		}
	if (g_n[i].up && raft_removed(g_n[i].r) && raft_role(g_n[i].r) != RAFT_LEADER) {
		trace("node %d learned it was removed: stops", i + 1);
		g_n[i].id = 0;
		wipe(i);
	}
}

/* ------------------------------------------------------------------ */
/* Crashes                                                              */

static void crash(int i)
{
	node *nd = &g_n[i];
	raft_free(nd->r);
	nd->r = NULL;
	nd->up = false;
	g_stat_crashes++;
}

/* A removed member: stopped, its disk gone; the slot is free for a new
 * member with a new id. */
static void wipe(int s)
{
	node *nd = &g_n[s];
	if (nd->up)
		crash(s);
	disk_truncate(&nd->d, 0);
	free(nd->d.ents);
	memset(&nd->d, 0, sizeof(nd->d));
	nd->joining = false;
	nd->removing = false;
	memset(&nd->prev_conf, 0, sizeof(nd->prev_conf));
	trace("slot %d wiped", s + 1);
}

static void restart(int i)
{
	node *nd = &g_n[i];
	raft_config c;
	raft_entry *es;
	disk *d = &nd->d;

	if (nd->id == 0)
		return; /* a free slot */
	nd->restarts++;
	c = node_config(i);
	es = calloc(d->n + 1, sizeof(raft_entry));
	for (size_t k = 0; k < d->n; k++) {
		es[k].term = d->ents[k].term;
		es[k].index = d->ents[k].index;
		es[k].type = d->ents[k].type;
		es[k].len = d->ents[k].len;
		es[k].data = d->ents[k].data;
	}
	nd->r = raft_new(&c, &d->hs, d->snap.index ? &d->snap : NULL, es, d->n);
	free(es);
	if (nd->r == NULL) {
		fail("raft_new failed on restart of node %d", i + 1);
		return;
	}
	nd->up = true;
	nd->sm_applied = d->snap.index;
	nd->sm_hash = d->snap.index ? d->snap_hash : 0;
	nd->commit_seen = raft_commit_index(nd->r);
	if (nd->commit_seen < d->hs.commit)
		fail("restart lost commit on node %d", i + 1);
	nd->last_term_seen_leader = 0;
	trace("node %d restarts (term %llu, log %llu..%llu, commit %llu)", i + 1,
	      (unsigned long long)raft_term(nd->r), (unsigned long long)raft_first_index(nd->r),
	      (unsigned long long)raft_last_index(nd->r), (unsigned long long)nd->commit_seen);
}

/* ------------------------------------------------------------------ */
/* Actions                                                              */

static const char *msg_name(uint8_t t)
{
	static const char *n[] = {"?",       "APP",     "APP_RESP",  "VOTE",        "VOTE_RESP",
				  "PREVOTE", "PV_RESP", "HB",        "HB_RESP",     "SNAP",
				  "PROP",    "READIDX", "READIDX_R", "TIMEOUT_NOW", "TRANSFER"};
	return t < sizeof(n) / sizeof(n[0]) ? n[t] : "?";
}

static void deliver(size_t pi, bool keep_copy)
{
	packet p = g_net[pi];
	raft_msg m;
	int rc;
	uint64_t from_id = g_n[p.from].id;

	if (keep_copy) {
		p.buf = malloc(p.len);
		memcpy(p.buf, g_net[pi].buf, p.len);
	} else {
		g_net[pi] = g_net[--g_net_n];
	}
	rc = raft_msg_decode(p.buf, p.len, &m);
	if (rc) {
		fail("codec: decode of an encoded message failed (%d)", rc);
		free(p.buf);
		return;
	}
	if (!g_n[p.to].up || g_n[p.to].id != p.to_id) {
		if (p.is_snap && g_n[p.from].up && m.from == from_id)
			raft_report_snapshot(g_n[p.from].r, p.to_id, 1);
		goto out;
	}
	trace("deliver %s %d->%d t%llu idx %llu lt %llu c %llu n %u%s", msg_name(m.type),
	      p.from + 1, p.to + 1, (unsigned long long)m.term, (unsigned long long)m.index,
	      (unsigned long long)m.log_term, (unsigned long long)m.commit, m.n_entries,
	      m.reject ? " REJECT" : "");
	raft_step(g_n[p.to].r, &m);
	settle(p.to, true);
	if (p.is_snap && g_n[p.from].up && m.from == g_n[p.from].id) {
		/* The data went out of band, instantly; tell the sender. */
		raft_report_snapshot(g_n[p.from].r, p.to_id, 0);
		settle(p.from, true);
	}
out:
	raft_msg_free_decoded(&m);
	free(p.buf);
}

static void drop(size_t pi)
{
	packet *p = &g_net[pi];
	int from = p->from;

	if (p->is_snap && g_n[from].up) {
		raft_report_snapshot(g_n[from].r, p->to_id, 1);
		trace("drop SNAP %d->%d", from + 1, p->to + 1);
		net_remove(pi);
		settle(from, true);
		return;
	}
	net_remove(pi);
}

static uint64_t g_net_last_to_id;

static void act_deliver(void)
{
	size_t pi;
	int from, to;

	if (g_net_n == 0)
		return;
	pi = rn(g_net_n);
	if (g_net[pi].deliver_at > g_step)
		return;
	from = g_net[pi].from;
	to = g_net[pi].to;
	g_net_last_to_id = g_net[pi].to_id;
	if (g_cut[from][to] || chance(g_drop_pm)) {
		trace("drop %d->%d", from + 1, to + 1);
		drop(pi);
		if (g_cut[from][to] && g_n[from].up && chance(300)) {
			/* The transport noticed: back to probing. */
			raft_report_unreachable(g_n[from].r, g_net_last_to_id);
			settle(from, true);
		}
		return;
	}
	deliver(pi, chance(g_dup_pm));
}

static int find_leader(void)
{
	int best = -1;
	for (int i = 0; i < g_nodes; i++)
		if (g_n[i].up && raft_role(g_n[i].r) == RAFT_LEADER &&
		    (best < 0 || raft_term(g_n[i].r) > raft_term(g_n[best].r)))
			best = i;
	return best;
}

static void act_propose(int i)
{
	char buf[64];
	int len;
	uint64_t idx;
	int rc;

	len = snprintf(buf, sizeof(buf), "cmd-%llu-%llu", (unsigned long long)g_seed,
		       (unsigned long long)++g_cmd_seq);
	len += (int)rn(20); /* variable payload sizes */
	rc = raft_propose(g_n[i].r, buf, (uint32_t)len, &idx);
	trace("propose on node %d: rc %d index %llu", i + 1, rc, (unsigned long long)idx);
	settle(i, true);
}

static void act_read(int i)
{
	uint64_t id = ++g_read_seq;
	int rc;

	rc = raft_read_index(g_n[i].r, &id, 8);
	trace("read %llu on node %d: rc %d (acked %llu)", (unsigned long long)id, i + 1, rc,
	      (unsigned long long)g_acked);
	if (rc == 0) {
		if (g_reads_n == g_reads_cap) {
			g_reads_cap = g_reads_cap ? g_reads_cap * 2 : 64;
			g_reads = realloc(g_reads, g_reads_cap * sizeof(pending_read));
		}
		g_reads[g_reads_n].id = id;
		g_reads[g_reads_n].node = i;
		g_reads[g_reads_n].index_at_issue = g_acked;
		g_reads_n++;
	}
	settle(i, true);
}

static void act_snapshot(int i)
{
	node *nd = &g_n[i];
	uint64_t idx = nd->sm_applied, keep = rn(5);

	if (idx <= nd->d.snap.index || idx == 0)
		return;
	if (raft_compact(nd->r, idx, keep) != 0) {
		fail("raft_compact(%llu) failed on node %d", (unsigned long long)idx, i + 1);
		return;
	}
	nd->d.snap.index = idx;
	nd->d.snap.term = raft_term_at(nd->r, idx) ? raft_term_at(nd->r, idx) : nd->d.snap.term;
	{
		/* The configuration as of the snapshot, as the core computed it. */
		raft_snapshot_meta c;
		raft_snapshot_conf(nd->r, &c);
		memcpy(nd->d.snap.voters, c.voters, sizeof(c.voters));
		nd->d.snap.n_voters = c.n_voters;
		memcpy(nd->d.snap.learners, c.learners, sizeof(c.learners));
		nd->d.snap.n_learners = c.n_learners;
		nd->d.has_base = false;
	}
	nd->d.snap_hash = nd->sm_hash;
	disk_compact(&nd->d, idx);
	g_stat_snaps++;
	trace("node %d snapshots at %llu (keep %llu)", i + 1, (unsigned long long)idx,
	      (unsigned long long)keep);
}

static const char *const conf_op_name[] = {"?", "add-voter", "add-learner", "remove", "promote"};

/* Ask the leader for a random membership change. */
static void act_member(void)
{
	int l = find_leader(), free_slot = -1, n_free = 0;
	raft_snapshot_meta c;
	uint8_t op;
	uint64_t id, idx;
	int rc;

	if (l < 0)
		return;
	raft_conf(g_n[l].r, &c);
	for (int s = 0; s < g_nodes; s++)
		if (g_n[s].id == 0 && !g_n[s].up && rn((uint64_t)++n_free) == 0)
			free_slot = s;
	switch (rn(3)) {
	case 0: /* grow: a new, empty member */
		if (free_slot < 0 || c.n_voters + c.n_learners >= 5)
			return;
		op = chance(700) ? RAFT_CONF_ADD_LEARNER : RAFT_CONF_ADD_VOTER;
		id = (++g_next_gen) * 16 + (uint64_t)free_slot + 1;
		break;
	case 1: /* shrink, the leader included */
		if (c.n_voters + c.n_learners <= 3)
			return;
		op = RAFT_CONF_REMOVE;
		id = rn(c.n_voters + c.n_learners);
		id = id < c.n_voters ? c.voters[id] : c.learners[id - c.n_voters];
		break;
	default:
		if (c.n_learners == 0)
			return;
		op = RAFT_CONF_PROMOTE;
		id = c.learners[rn(c.n_learners)];
		break;
	}
	rc = raft_propose_conf(g_n[l].r, op, id, "peer-urls", 9, &idx);
	g_stat_conf_props++;
	trace("leader %d proposes %s %llu: rc %d index %llu", l + 1, conf_op_name[op],
	      (unsigned long long)id, rc, (unsigned long long)idx);
	if (rc == 0)
		g_stat_confs++;
	if (rc == 0 && op <= RAFT_CONF_ADD_LEARNER) {
		/* The operator starts the new member, empty, right away. */
		g_n[free_slot].id = id;
		g_n[free_slot].joining = true;
		restart(free_slot);
	}
	settle(l, true);
}

static void act_partition(void)
{
	int kind = (int)rn(4);

	memset(g_cut, 0, sizeof(g_cut));
	if (kind == 0) {
		trace("partitions heal");
		return;
	}
	if (kind == 1) { /* isolate one node, symmetric */
		int a = (int)rn((uint64_t)g_nodes);
		for (int k = 0; k < g_nodes; k++)
			g_cut[a][k] = g_cut[k][a] = k != a;
		trace("node %d isolated", a + 1);
	} else if (kind == 2) { /* one-way cuts */
		for (int k = 0; k < g_nodes; k++)
			for (int j = 0; j < g_nodes; j++)
				if (k != j && chance(250))
					g_cut[k][j] = true;
		trace("random one-way cuts");
	} else { /* split into two sides */
		bool side[MAXN];
		for (int k = 0; k < g_nodes; k++)
			side[k] = chance(500);
		for (int k = 0; k < g_nodes; k++)
			for (int j = 0; j < g_nodes; j++)
				g_cut[k][j] = side[k] != side[j];
		trace("network split");
	}
}

/* ------------------------------------------------------------------ */
/* One seed                                                             */

static void reset_world(void)
{
	for (int i = 0; i < MAXN; i++) {
		if (g_n[i].r)
			raft_free(g_n[i].r);
		disk_truncate(&g_n[i].d, 0);
		free(g_n[i].d.ents);
		memset(&g_n[i], 0, sizeof(node));
	}
	while (g_net_n)
		net_remove(g_net_n - 1);
	free(g_leader_of_term.v);
	free(g_sm_hash.v);
	free(g_committed_term.v);
	memset(&g_leader_of_term, 0, sizeof(u64vec));
	memset(&g_sm_hash, 0, sizeof(u64vec));
	memset(&g_committed_term, 0, sizeof(u64vec));
	free(g_lm);
	g_lm = NULL;
	g_lm_cap = g_lm_n = 0;
	g_max_committed = g_acked = 0;
	g_reads_n = 0;
	g_cmd_seq = g_read_seq = 0;
	memset(g_cut, 0, sizeof(g_cut));
	g_fail[0] = 0;
	g_step = 0;
	g_healed = false;
	g_next_gen = 0;
}

/* Every member of the leader's configuration applied idx. */
static bool all_applied(int l, uint64_t idx)
{
	raft_snapshot_meta c;

	raft_conf(g_n[l].r, &c);
	for (uint32_t k = 0; k < c.n_voters + c.n_learners; k++) {
		int s = slot_of(k < c.n_voters ? c.voters[k] : c.learners[k - c.n_voters]);
		if (s < 0 || !g_n[s].up || g_n[s].sm_applied < idx)
			return false;
	}
	return true;
}

static bool same_members(const raft_snapshot_meta *a, const raft_snapshot_meta *b)
{
	if (a->n_voters != b->n_voters || a->n_learners != b->n_learners)
		return false;
	for (uint32_t k = 0; k < a->n_voters; k++) {
		uint32_t j = 0;
		while (j < b->n_voters && b->voters[j] != a->voters[k])
			j++;
		if (j == b->n_voters)
			return false;
	}
	for (uint32_t k = 0; k < a->n_learners; k++) {
		uint32_t j = 0;
		while (j < b->n_learners && b->learners[j] != a->learners[k])
			j++;
		if (j == b->n_learners)
			return false;
	}
	return true;
}

/* After the liveness commit: every member lists the same members. */
static void check_member_tables(int l)
{
	raft_snapshot_meta c, o;

	raft_conf(g_n[l].r, &c);
	for (uint32_t k = 0; k < c.n_voters + c.n_learners; k++) {
		int s = slot_of(k < c.n_voters ? c.voters[k] : c.learners[k - c.n_voters]);
		if (s < 0 || !g_n[s].up)
			continue;
		raft_conf(g_n[s].r, &o);
		if (!same_members(&c, &o))
			fail("member tables differ: leader %llu has %u voters %u learners, "
			     "member %llu %u voters %u learners",
			     (unsigned long long)g_n[l].id, c.n_voters, c.n_learners,
			     (unsigned long long)g_n[s].id, o.n_voters, o.n_learners);
	}
}

/* Heal everything and require progress within a bound. */
static void liveness(void)
{
	uint64_t target = 0, target_term = 0;
	long rounds;

	memset(g_cut, 0, sizeof(g_cut));
	g_drop_pm = g_dup_pm = 0;
	g_healed = true;
	for (int i = 0; i < g_nodes; i++)
		if (!g_n[i].up)
			restart(i);
	trace("liveness phase: all healed");
	for (rounds = 0; rounds < 400 && !g_fail[0]; rounds++) {
		g_step++;
		for (int i = 0; i < g_nodes; i++) {
			if (!g_n[i].up)
				continue;
			raft_tick(g_n[i].r);
			settle(i, false);
		}
		/* Deliver everything in flight, in order, a few times over. */
		for (int pass = 0; pass < 4 && g_net_n; pass++) {
			size_t n = g_net_n;
			for (size_t k = 0; k < n && g_net_n; k++) {
				g_net[0].deliver_at = 0;
				deliver(0, false);
			}
		}
		int l = find_leader();
		/* A proposal overwritten by a later leader is retried there. */
		if (target && l >= 0 && raft_term(g_n[l].r) != target_term &&
		    raft_term_at(g_n[l].r, target) != target_term)
			target = 0;
		if (target == 0) {
			if (l >= 0 && raft_propose(g_n[l].r, "liveness", 8, &target) == 0) {
				target_term = raft_term(g_n[l].r);
				trace("liveness: proposed at %llu on leader %d",
				      (unsigned long long)target, l + 1);
				settle(l, false);
			} else {
				target = 0;
			}
		} else if (l >= 0 && all_applied(l, target)) {
			check_member_tables(l);
			return;
		}
	}
	if (!g_fail[0])
		fail("liveness: no commit on every node within 400 ticks after healing "
		     "(leader %d, target %llu)",
		     find_leader() + 1, (unsigned long long)target);
}

static bool run_seed(uint64_t seed, int nodes, long steps)
{
	g_seed = seed;
	g_rng = seed * 0x2545f4914f6cdd1dull + 1;
	reset_world();
	/* Half the seeds change the membership: two spare slots. */
	g_membership = (seed / 2) % 2 == 1;
	g_init = nodes;
	g_nodes = g_membership ? nodes + 2 : nodes;
	for (int i = 0; i < g_init; i++)
		g_n[i].id = (uint64_t)i + 1;
	/* Each seed draws its own fault profile, from calm to hostile. */
	g_drop_pm = (unsigned)rn(200);
	g_dup_pm = (unsigned)rn(50);
	g_max_delay = (int)rn(30);
	g_fault_pm = (unsigned)rn(8);
	for (int i = 0; i < g_nodes; i++)
		restart(i);
	trace("seed %llu: %d nodes%s, drop %u/1000, dup %u/1000, delay <= %d",
	      (unsigned long long)seed, nodes, g_membership ? " (+2 spare, membership)" : "",
	      g_drop_pm, g_dup_pm, g_max_delay);
	for (g_step = 1; g_step <= steps && !g_fail[0]; g_step++) {
		unsigned a = (unsigned)rn(1000);
		int i = (int)rn((uint64_t)g_nodes);

		if (a < 550) {
			act_deliver();
		} else if (a < 800) {
			if (g_n[i].up) {
				raft_tick(g_n[i].r);
				settle(i, true);
			}
		} else if (a < 900) {
			if (g_n[i].up)
				act_propose(i);
		} else if (a < 950) {
			if (g_n[i].up)
				act_read(i);
		} else if (a < 965) {
			if (g_n[i].up)
				act_snapshot(i);
		} else if (g_membership && ((a >= 965 && a < 968 && chance(500)) ||
					    (a >= 968 + 2 * g_fault_pm && chance(30)))) {
			act_member();
		} else if (a < 968) {
			/* Asked of the leader, or of a follower that forwards it. */
			int l = chance(500) ? find_leader() : i;
			if (l >= 0 && g_n[l].up) {
				uint64_t t = g_n[rn((uint64_t)g_nodes)].id;
				int rc = raft_transfer_leader(g_n[l].r, t);
				trace("transfer leadership asked on %d -> %llu: rc %d", l + 1,
				      (unsigned long long)t, rc);
				settle(l, true);
			}
		} else if (a < 968 + g_fault_pm) {
			act_partition();
		} else if (a < 968 + 2 * g_fault_pm) {
			if (g_n[i].up) {
				trace("node %d crashes", i + 1);
				crash(i);
			} else {
				restart(i);
				if (g_n[i].up)
					settle(i, true);
			}
		} else {
			/* a node comes back if down, else a plain tick */
			if (!g_n[i].up && chance(300)) {
				restart(i);
				if (g_n[i].up)
					settle(i, true);
			} else if (g_n[i].up) {
				raft_tick(g_n[i].r);
				settle(i, true);
			}
		}
	}
	if (!g_fail[0])
		liveness();
	return g_fail[0] == 0;
}

/* ------------------------------------------------------------------ */
/* CLI                                                                  */

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int nodes_for(uint64_t seed, int fixed)
{
	return fixed ? fixed : (seed % 2 ? 5 : 3);
}

static void usage(void)
{
	fprintf(stderr, "usage: raft_sim [--seeds N] [--start S] [--nodes 3|5] [--steps K]\n"
			"                [--soak SECONDS] [--seed S [-v]]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	uint64_t seeds = 200, start = 1, one = 0;
	bool have_one = false;
	int fixed_nodes = 0;
	long steps = DEFAULT_STEPS;
	double soak = 0, t0 = now_s();

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "-v")) {
			g_verbose = true;
		} else if (!strcmp(a, "--seeds") && v) {
			seeds = strtoull(v, NULL, 10), i++;
		} else if (!strcmp(a, "--start") && v) {
			start = strtoull(v, NULL, 10), i++;
		} else if (!strcmp(a, "--seed") && v) {
			one = strtoull(v, NULL, 10), have_one = true, i++;
		} else if (!strcmp(a, "--nodes") && v) {
			fixed_nodes = atoi(v), i++;
			if (fixed_nodes != 3 && fixed_nodes != 5)
				usage();
		} else if (!strcmp(a, "--steps") && v) {
			steps = atol(v), i++;
		} else if (!strcmp(a, "--soak") && v) {
			soak = atof(v), i++;
		} else {
			usage();
		}
	}
	if (have_one) {
		seeds = 1;
		start = one;
	}
	if (soak > 0) {
		start = (uint64_t)time(NULL) * 1000003u;
		seeds = UINT64_MAX;
	}
	uint64_t s, done = 0;
	for (s = start; done < seeds; s++, done++) {
		int nodes = nodes_for(s, fixed_nodes);
		if (soak > 0 && now_s() - t0 > soak)
			break;
		if (!run_seed(s, nodes, steps)) {
			char extra[64] = "";
			if (steps != DEFAULT_STEPS)
				snprintf(extra, sizeof(extra), " --steps %ld", steps);
			printf("FAIL raft_sim seed %llu: %s (step %ld, %d nodes)\n",
			       (unsigned long long)s, g_fail, g_step, nodes);
			printf("replay: bin/tests/raft_sim --seed %llu%s%s -v\n",
			       (unsigned long long)s,
			       fixed_nodes ? (fixed_nodes == 3 ? " --nodes 3" : " --nodes 5") : "",
			       extra);
			reset_world();
			return 1;
		}
	}
	printf("PASS raft_sim seeds %llu..%llu (%llu seeds, %.1f s)\n", (unsigned long long)start,
	       (unsigned long long)(start + done - 1), (unsigned long long)done, now_s() - t0);
	printf("  totals: %ld commands applied, %ld reads served, %ld elections, %ld snapshots, "
	       "%ld crashes, %ld membership changes proposed (%ld accepted)\n",
	       g_stat_commits, g_stat_reads, g_stat_elections, g_stat_snaps, g_stat_crashes,
	       g_stat_conf_props, g_stat_confs);
	reset_world();
	return 0;
}
