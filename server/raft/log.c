/*
 * log.c - the in-memory Raft log with a compaction offset.
 *
 * The log holds the entries after `offset` (the last index covered by a
 * snapshot or dropped by raft_compact) in one array; entry i sits at
 * ents[i - offset - 1].  The term of the entry at offset is remembered so
 * that the AppendEntries consistency check (thesis 3.5) still works right
 * after a compaction.  `stable` splits the log into what the host has made
 * durable and what the next ready must hand it; `committed` and `applied`
 * are the commit and apply cursors.
 *
 * Entry payloads are reference-counted (rdata_*) so that truncating the log
 * never frees bytes that a ready or a queued message still shows the host.
 * This file does no I/O; the host persists what raft_get_ready returns.
 */
#include "raft_int.h"

struct rdata_hdr {
	uint32_t refs;
	uint32_t len;
	uint64_t pad; /* keeps the payload 16-byte aligned */
};

uint8_t *rdata_new(const void *p, uint32_t len)
{
	struct rdata_hdr *h;

	if (len == 0)
		return NULL;
	h = malloc(sizeof(*h) + len);
	if (h == NULL)
		return NULL;
	h->refs = 1;
	h->len = len;
	memcpy(h + 1, p, len);
	return (uint8_t *)(h + 1);
}

void rdata_ref(uint8_t *d)
{
	if (d != NULL)
		((struct rdata_hdr *)d - 1)->refs++;
}

void rdata_unref(uint8_t *d)
{
	struct rdata_hdr *h;

	if (d == NULL)
		return;
	h = (struct rdata_hdr *)d - 1;
	if (--h->refs == 0)
		free(h);
}

void rlog_init(raft_log *l, uint64_t offset, uint64_t offset_term)
{
	memset(l, 0, sizeof(*l));
	l->offset = offset;
	l->offset_term = offset_term;
	l->stable = offset;
	l->committed = offset;
	l->applied = offset;
}

void rlog_free(raft_log *l)
{
	for (size_t i = 0; i < l->n; i++)
		rdata_unref(l->ents[i].data);
	free(l->ents);
	l->ents = NULL;
	l->n = l->cap = 0;
}

uint64_t rlog_first_index(const raft_log *l)
{
	return l->offset + 1;
}

uint64_t rlog_last_index(const raft_log *l)
{
	return l->offset + l->n;
}

uint64_t rlog_last_term(const raft_log *l)
{
	return l->n ? l->ents[l->n - 1].term : l->offset_term;
}

uint64_t rlog_term(const raft_log *l, uint64_t i)
{
	if (i == l->offset)
		return l->offset_term;
	if (i < l->offset || i > rlog_last_index(l))
		return 0;
	return l->ents[i - l->offset - 1].term;
}

bool rlog_match_term(const raft_log *l, uint64_t i, uint64_t term)
{
	if (i < l->offset || i > rlog_last_index(l))
		return false;
	return rlog_term(l, i) == term;
}

raft_entry *rlog_entry(const raft_log *l, uint64_t i)
{
	if (i <= l->offset || i > rlog_last_index(l))
		return NULL;
	return &l->ents[i - l->offset - 1];
}

static int rlog_reserve(raft_log *l, size_t n)
{
	raft_entry *p;
	size_t cap;

	if (n <= l->cap)
		return 0;
	cap = l->cap ? l->cap * 2 : 64;
	while (cap < n)
		cap *= 2;
	p = realloc(l->ents, cap * sizeof(*p));
	if (p == NULL)
		return RAFT_E_NOMEM;
	l->ents = p;
	l->cap = cap;
	return 0;
}

/* Append with an already reference-counted payload (the log takes a ref). */
static int rlog_append_shared(raft_log *l, uint64_t term, uint8_t type, uint8_t *data, uint32_t len)
{
	raft_entry *e;

	if (rlog_reserve(l, l->n + 1))
		return RAFT_E_NOMEM;
	e = &l->ents[l->n++];
	e->term = term;
	e->index = l->offset + l->n;
	e->type = type;
	e->len = data ? len : 0;
	e->data = data;
	rdata_ref(data);
	return 0;
}

int rlog_append(raft_log *l, uint64_t term, uint8_t type, const uint8_t *data, uint32_t len)
{
	uint8_t *d = NULL;
	int rc;

	if (len) {
		d = rdata_new(data, len);
		if (d == NULL)
			return RAFT_E_NOMEM;
	}
	rc = rlog_append_shared(l, term, type, d, len);
	rdata_unref(d); /* the log holds its own reference now */
	return rc;
}

void rlog_truncate_from(raft_log *l, uint64_t i)
{
	uint64_t last = rlog_last_index(l);

	if (i <= l->offset)
		i = l->offset + 1;
	if (i <= l->committed)
		abort(); /* a committed entry is never overwritten (thesis 3.5) */
	for (uint64_t k = i; k <= last; k++)
		rdata_unref(l->ents[k - l->offset - 1].data);
	l->n = i - l->offset - 1;
	if (l->stable > i - 1)
		l->stable = i - 1;
}

void rlog_commit_to(raft_log *l, uint64_t i)
{
	if (i > rlog_last_index(l))
		i = rlog_last_index(l);
	if (i > l->committed)
		l->committed = i;
}

int rlog_maybe_append(raft_log *l, uint64_t prev, uint64_t prev_term, uint64_t commit,
		      const raft_entry *ents, size_t n, uint64_t *last_new)
{
	size_t k;
	uint64_t lastnew = prev + n;

	if (!rlog_match_term(l, prev, prev_term))
		return 0;
	/* Find the first entry that conflicts or is new (rule 3: delete the
	 * existing entry and all that follow it; rule 4: append new ones). */
	for (k = 0; k < n; k++) {
		uint64_t idx = prev + 1 + k;
		if (idx <= l->offset)
			continue; /* covered by our snapshot: matches by definition */
		if (!rlog_match_term(l, idx, ents[k].term))
			break;
	}
	if (k < n) {
		uint64_t idx = prev + 1 + k;
		if (idx <= rlog_last_index(l))
			rlog_truncate_from(l, idx);
		for (; k < n; k++) {
			uint8_t *d = NULL;
			if (ents[k].len) {
				d = rdata_new(ents[k].data, ents[k].len);
				if (d == NULL)
					return -1;
			}
			int rc = rlog_append_shared(l, ents[k].term, ents[k].type, d, ents[k].len);
			rdata_unref(d);
			if (rc)
				return -1;
		}
	}
	/* Rule 5: commit = min(leaderCommit, index of last new entry). */
	rlog_commit_to(l, commit < lastnew ? commit : lastnew);
	*last_new = lastnew;
	return 1;
}

bool rlog_is_up_to_date(const raft_log *l, uint64_t index, uint64_t term)
{
	uint64_t lt = rlog_last_term(l);
	return term > lt || (term == lt && index >= rlog_last_index(l));
}

uint64_t rlog_find_conflict_by_term(const raft_log *l, uint64_t index, uint64_t term)
{
	if (index > rlog_last_index(l))
		index = rlog_last_index(l);
	while (index > l->offset) {
		if (rlog_term(l, index) <= term)
			return index;
		index--;
	}
	return index;
}

void rlog_compact(raft_log *l, uint64_t index)
{
	uint64_t drop, t;

	if (index <= l->offset)
		return;
	if (index > l->stable)
		index = l->stable;
	if (index <= l->offset)
		return;
	t = rlog_term(l, index);
	drop = index - l->offset;
	for (uint64_t k = 0; k < drop; k++)
		rdata_unref(l->ents[k].data);
	memmove(l->ents, l->ents + drop, (l->n - drop) * sizeof(*l->ents));
	l->n -= drop;
	l->offset = index;
	l->offset_term = t;
}

void rlog_restore(raft_log *l, uint64_t index, uint64_t term)
{
	for (size_t i = 0; i < l->n; i++)
		rdata_unref(l->ents[i].data);
	l->n = 0;
	l->offset = index;
	l->offset_term = term;
	l->stable = index;
	l->committed = index;
	l->applied = index;
}
