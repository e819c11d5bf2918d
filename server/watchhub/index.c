/*
 * index.c - the matching index of the synced watches and the membership of
 * the synced and unsynced groups (etcd's watcher groups).
 *
 * Matching index (cost per published event with key length k and m
 * matching watches):
 *   - single-key watches: a chained hash table keyed by the key, O(k + m);
 *   - every range (prefix, [key, end), from-key): an array sorted by range
 *     start, seen as an implicit balanced binary tree whose nodes carry the
 *     largest range end of their subtree (an augmented interval tree, as
 *     cgranges does); a stabbing query costs O(log R + m log R) for R range
 *     watches.  Creating or removing a range watch only marks the array
 *     dirty; the hub thread rebuilds it in O(R log R) before the next match.
 *
 * A synced watch is in the index: matching feeds it.  An unsynced watch is
 * on the hub's FIFO list instead and is served from the store (catchup.c)
 * until it has caught up with deliv_rev.  A watch is in exactly one of the
 * two (or in neither once GONE).  Everything here runs with mu held.
 */
#include <stdlib.h>
#include <string.h>

#include "watchhub_int.h"

/* ================================================================== */
/* Key order and hash                                                 */

int hub_keycmp(const uint8_t *a, uint32_t an, const uint8_t *b, uint32_t bn)
{
	uint32_t n = an < bn ? an : bn;
	int c = n ? memcmp(a, b, n) : 0;

	if (c)
		return c;
	return an < bn ? -1 : an > bn;
}

/* Does range watch w's end lie strictly above key k (k < end)? */
int hub_end_above(const struct hub_watch *w, const uint8_t *k, uint32_t kn)
{
	return w->end_inf || hub_keycmp(k, kn, w->end, w->elen) < 0;
}

static int end_cmp(const struct hub_watch *a, const struct hub_watch *b)
{
	if (a->end_inf || b->end_inf)
		return a->end_inf - b->end_inf;
	return hub_keycmp(a->end, a->elen, b->end, b->elen);
}

uint64_t hub_key_hash(const uint8_t *p, uint32_t n)
{
	uint64_t h = 1469598103934665603ull;

	for (uint32_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 1099511628211ull;
	}
	return h ^ (h >> 29);
}

/* ================================================================== */
/* Exact-key hash table                                               */

static int ktable_grow(watchhub *h)
{
	size_t nb = h->nbuckets ? h->nbuckets * 2 : 256;
	struct kentry **b = calloc(nb, sizeof(*b));

	if (!b)
		return EF_E_NOMEM;
	for (size_t i = 0; i < h->nbuckets; i++) {
		struct kentry *e, *next;
		for (e = h->buckets[i]; e; e = next) {
			next = e->next;
			size_t j = e->hash & (nb - 1);
			e->next = b[j];
			b[j] = e;
		}
	}
	free(h->buckets);
	h->buckets = b;
	h->nbuckets = nb;
	return 0;
}

struct kentry *hub_ktable_find(watchhub *h, const uint8_t *k, uint32_t kn, uint64_t hash)
{
	if (!h->nbuckets)
		return NULL;
	for (struct kentry *e = h->buckets[hash & (h->nbuckets - 1)]; e; e = e->next)
		if (e->hash == hash && e->klen == kn && (kn == 0 || memcmp(e->key, k, kn) == 0))
			return e;
	return NULL;
}

/* ================================================================== */
/* Synced and unsynced groups                                         */

/* Unsynced list and index membership. */
void hub_unsynced_add(watchhub *h, struct hub_watch *w)
{
	w->state = W_UNSYNCED;
	w->next = NULL;
	w->prev = h->unsynced_tail;
	if (h->unsynced_tail)
		h->unsynced_tail->next = w;
	else
		h->unsynced = w;
	h->unsynced_tail = w;
	w->s->n_unsynced++;
}

void hub_unsynced_del(watchhub *h, struct hub_watch *w)
{
	if (w->prev)
		w->prev->next = w->next;
	else
		h->unsynced = w->next;
	if (w->next)
		w->next->prev = w->prev;
	else
		h->unsynced_tail = w->prev;
	w->prev = w->next = NULL;
	w->s->n_unsynced--;
}

int hub_synced_add(watchhub *h, struct hub_watch *w)
{
	if (w->is_range) {
		w->prev = NULL;
		w->next = h->ranges;
		if (h->ranges)
			h->ranges->prev = w;
		h->ranges = w;
		h->n_ranges++;
		h->ranges_dirty = 1;
		w->state = W_SYNCED;
		return 0;
	}
	uint64_t hash = hub_key_hash(w->key, w->klen);
	struct kentry *e = hub_ktable_find(h, w->key, w->klen, hash);
	if (!e) {
		if (h->nentries + 1 > h->nbuckets && ktable_grow(h) != 0)
			return EF_E_NOMEM;
		e = malloc(sizeof(*e) + w->klen);
		if (!e)
			return EF_E_NOMEM;
		e->hash = hash;
		e->klen = w->klen;
		e->head = NULL;
		if (w->klen)
			memcpy(e->key, w->key, w->klen);
		size_t j = hash & (h->nbuckets - 1);
		e->next = h->buckets[j];
		h->buckets[j] = e;
		h->nentries++;
	}
	w->ke = e;
	w->prev = NULL;
	w->next = e->head;
	if (e->head)
		e->head->prev = w;
	e->head = w;
	w->state = W_SYNCED;
	return 0;
}

static void synced_del(watchhub *h, struct hub_watch *w)
{
	if (w->is_range) {
		if (w->prev)
			w->prev->next = w->next;
		else
			h->ranges = w->next;
		if (w->next)
			w->next->prev = w->prev;
		h->n_ranges--;
		h->ranges_dirty = 1;
	} else {
		struct kentry *e = w->ke;
		if (w->prev)
			w->prev->next = w->next;
		else
			e->head = w->next;
		if (w->next)
			w->next->prev = w->prev;
		if (!e->head) {
			struct kentry **pp = &h->buckets[e->hash & (h->nbuckets - 1)];
			while (*pp != e)
				pp = &(*pp)->next;
			*pp = e->next;
			free(e);
			h->nentries--;
		}
		w->ke = NULL;
	}
	w->prev = w->next = NULL;
}

/* Leave whatever group w is in (state is then undefined until set). */
void hub_group_leave(watchhub *h, struct hub_watch *w)
{
	if (w->state == W_SYNCED)
		synced_del(h, w);
	else if (w->state == W_UNSYNCED)
		hub_unsynced_del(h, w);
}

/* Where a synced watch resumes from the store: it has every event up to
 * deliv_rev, and never anything before its own start. */
int64_t hub_resume_rev(const watchhub *h, const struct hub_watch *w)
{
	return w->next_rev > h->deliv_rev + 1 ? w->next_rev : h->deliv_rev + 1;
}

/* Move a synced watch to the unsynced group, to be served from rev. */
void hub_make_unsynced(watchhub *h, struct hub_watch *w, int64_t rev)
{
	hub_group_leave(h, w);
	w->next_rev = rev;
	hub_unsynced_add(h, w);
}

void hub_make_synced(watchhub *h, struct hub_watch *w)
{
	hub_unsynced_del(h, w);
	if (hub_synced_add(h, w) != 0) {
		/* Out of memory for the index: stay unsynced, retried later. */
		hub_unsynced_add(h, w);
	}
}

/* ================================================================== */
/* Range interval tree                                                */

static int cmp_range_start(const void *a, const void *b)
{
	const struct hub_watch *x = *(struct hub_watch *const *)a,
			       *y = *(struct hub_watch *const *)b;

	return hub_keycmp(x->key, x->klen, y->key, y->klen);
}

/* rmax[mid] = the watch with the largest end in the subtree [lo, hi) whose
 * root is mid = (lo + hi) / 2. */
static struct hub_watch *rmax_build(watchhub *h, size_t lo, size_t hi)
{
	if (lo >= hi)
		return NULL;
	size_t mid = lo + (hi - lo) / 2;
	struct hub_watch *best = h->rarr[mid];
	struct hub_watch *l = rmax_build(h, lo, mid), *r = rmax_build(h, mid + 1, hi);
	if (l && end_cmp(l, best) > 0)
		best = l;
	if (r && end_cmp(r, best) > 0)
		best = r;
	h->rmax[mid] = best;
	return best;
}

int hub_ranges_rebuild(watchhub *h)
{
	if (h->n_ranges > h->rcap) {
		size_t cap = h->n_ranges * 2;
		struct hub_watch **a = realloc(h->rarr, cap * sizeof(*a));
		if (!a)
			return EF_E_NOMEM;
		h->rarr = a;
		a = realloc(h->rmax, cap * sizeof(*a));
		if (!a)
			return EF_E_NOMEM;
		h->rmax = a;
		h->rcap = cap;
	}
	size_t n = 0;
	for (struct hub_watch *w = h->ranges; w; w = w->next)
		h->rarr[n++] = w;
	if (n > 1)
		qsort(h->rarr, n, sizeof(*h->rarr), cmp_range_start);
	rmax_build(h, 0, n);
	h->ranges_dirty = 0;
	return 0;
}
