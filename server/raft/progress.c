/*
 * progress.c - the leader's flow control for one follower (as etcd-raft's
 * tracker): PROBE sends one append per heartbeat interval until the
 * follower's match is found; REPLICATE pipelines appends optimistically
 * (next runs ahead of match), at most max_inflight at a time, tracked in a
 * ring of each append's last index and freed as acknowledgements arrive;
 * SNAPSHOT sends nothing until the snapshot transfer is reported.
 */
#include "raft_int.h"

int inflights_init(inflights *in, uint32_t size)
{
	in->size = size ? size : 1;
	in->start = in->count = 0;
	in->buf = malloc(sizeof(uint64_t) * in->size);
	return in->buf ? 0 : RAFT_E_NOMEM;
}

void inflights_free(inflights *in)
{
	free(in->buf);
	in->buf = NULL;
}

bool inflights_full(const inflights *in)
{
	return in->count == in->size;
}

void inflights_add(inflights *in, uint64_t last)
{
	if (inflights_full(in))
		return; /* callers check pr_is_paused first */
	in->buf[(in->start + in->count) % in->size] = last;
	in->count++;
}

void inflights_free_le(inflights *in, uint64_t index)
{
	while (in->count > 0 && in->buf[in->start] <= index) {
		in->start = (in->start + 1) % in->size;
		in->count--;
	}
	if (in->count == 0)
		in->start = 0;
}

void inflights_free_first(inflights *in)
{
	if (in->count > 0)
		inflights_free_le(in, in->buf[in->start]);
}

void inflights_reset(inflights *in)
{
	in->start = in->count = 0;
}

static void pr_reset_state(progress *pr, int state)
{
	pr->probe_sent = false;
	pr->pending_snapshot = 0;
	pr->state = state;
	inflights_reset(&pr->ins);
}

void pr_become_probe(progress *pr)
{
	/* After a snapshot, probe from just past it (the follower has it, or
	 * will tell us otherwise). */
	if (pr->state == PR_SNAPSHOT) {
		uint64_t ps = pr->pending_snapshot;
		pr_reset_state(pr, PR_PROBE);
		pr->next = (pr->match + 1 > ps + 1) ? pr->match + 1 : ps + 1;
	} else {
		pr_reset_state(pr, PR_PROBE);
		pr->next = pr->match + 1;
	}
}

void pr_become_replicate(progress *pr)
{
	pr_reset_state(pr, PR_REPLICATE);
	pr->next = pr->match + 1;
}

void pr_become_snapshot(progress *pr, uint64_t snap_index)
{
	pr_reset_state(pr, PR_SNAPSHOT);
	pr->pending_snapshot = snap_index;
}

/* An acknowledgement of index n: returns whether match advanced. */
bool pr_maybe_update(progress *pr, uint64_t n)
{
	bool updated = false;

	if (pr->match < n) {
		pr->match = n;
		updated = true;
		pr->probe_sent = false;
	}
	if (pr->next < n + 1)
		pr->next = n + 1;
	return updated;
}

/* A rejection of the append whose previous index was `rejected`; hint is the
 * follower's guess of the last index that may match.  Returns false when the
 * rejection is stale (an older append's) and must be ignored. */
bool pr_maybe_decr_to(progress *pr, uint64_t rejected, uint64_t hint)
{
	if (pr->state == PR_REPLICATE) {
		if (rejected <= pr->match)
			return false;
		pr->next = pr->match + 1;
		return true;
	}
	if (pr->next - 1 != rejected)
		return false;
	pr->next = rejected < hint + 1 ? rejected : hint + 1;
	if (pr->next < pr->match + 1)
		pr->next = pr->match + 1;
	if (pr->next < 1)
		pr->next = 1;
	pr->probe_sent = false;
	return true;
}

bool pr_is_paused(const progress *pr)
{
	switch (pr->state) {
	case PR_PROBE:
		return pr->probe_sent;
	case PR_REPLICATE:
		return inflights_full(&pr->ins);
	default:
		return true;
	}
}
