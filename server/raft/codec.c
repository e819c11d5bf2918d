/*
 * codec.c - the wire form of raft_msg, for the peer transport.
 *
 * Layout (big-endian, proto/wire.h conventions):
 *   u8 version (1), u8 type, u64 from, to, term, rlog_term, index, commit,
 *   u8 reject, u64 reject_hint,
 *   u32 n_entries, then per entry: u64 term, u64 index, u8 type, u32 len, bytes
 *   u32 context_len, bytes
 *   u8 has_snapshot (MSG_SNAP; MSG_APP with a configuration), then:
 *     u64 index, u64 term, u32 n_voters, u64 voters[n],
 *     u32 n_learners, u64 learners[n]
 * (The learners and the configuration on MSG_APP came without a version
 * bump: an older peer rejects the longer snapshot section as malformed.)
 *
 * Decoding reads only inside [p, p+n) through ef_rbuf, checks every count
 * against the bytes that remain before allocating (so a forged count cannot
 * make it allocate gigabytes), rejects unknown types and versions, entry
 * types other than NORMAL/EMPTY/CONF, more than RAFT_MAX_VOTERS voters, and
 * trailing bytes.  Bytes come from the network: nothing here trusts them.
 */
#include "raft_int.h"

#include "../../proto/wire.h"

#define CODEC_VERSION 1
#define ENTRY_HDR_BYTES (8 + 8 + 1 + 4)

int raft_msg_encode(const raft_msg *m, struct ef_wbuf *out)
{
	ef_wbuf_u8(out, CODEC_VERSION);
	ef_wbuf_u8(out, m->type);
	ef_wbuf_u64(out, m->from);
	ef_wbuf_u64(out, m->to);
	ef_wbuf_u64(out, m->term);
	ef_wbuf_u64(out, m->log_term);
	ef_wbuf_u64(out, m->index);
	ef_wbuf_u64(out, m->commit);
	ef_wbuf_u8(out, m->reject);
	ef_wbuf_u64(out, m->reject_hint);
	ef_wbuf_u32(out, m->n_entries);
	for (uint32_t i = 0; i < m->n_entries; i++) {
		const raft_entry *e = &m->entries[i];
		ef_wbuf_u64(out, e->term);
		ef_wbuf_u64(out, e->index);
		ef_wbuf_u8(out, e->type);
		ef_wbuf_bytes(out, e->data, e->len);
	}
	ef_wbuf_bytes(out, m->context, m->context_len);
	bool has_snap =
		m->type == RAFT_MSG_SNAP || (m->type == RAFT_MSG_APP && m->snapshot.n_voters > 0);
	ef_wbuf_u8(out, has_snap);
	if (has_snap) {
		uint32_t nv = m->snapshot.n_voters, nl = m->snapshot.n_learners;
		if (nv > RAFT_MAX_VOTERS || nl > RAFT_MAX_VOTERS - nv)
			return EF_E_INVALID;
		ef_wbuf_u64(out, m->snapshot.index);
		ef_wbuf_u64(out, m->snapshot.term);
		ef_wbuf_u32(out, nv);
		for (uint32_t i = 0; i < nv; i++)
			ef_wbuf_u64(out, m->snapshot.voters[i]);
		ef_wbuf_u32(out, nl);
		for (uint32_t i = 0; i < nl; i++)
			ef_wbuf_u64(out, m->snapshot.learners[i]);
	}
	return out->err;
}

static size_t remaining(const ef_rbuf *r)
{
	return (size_t)(r->end - r->p);
}

/* A u32 length followed by that many bytes, copied into a fresh malloc. */
static int get_bytes(ef_rbuf *r, uint8_t **out, uint32_t *len)
{
	uint32_t n;
	int rc = ef_rbuf_u32(r, &n);

	*out = NULL;
	*len = 0;
	if (rc)
		return rc;
	if (n > remaining(r))
		return EF_E_TRUNCATED;
	if (n) {
		*out = malloc(n);
		if (*out == NULL)
			return EF_E_NOMEM;
		memcpy(*out, r->p, n);
		r->p += n;
	}
	*len = n;
	return 0;
}

void raft_msg_free_decoded(raft_msg *m)
{
	if (m == NULL)
		return;
	if (m->entries) {
		for (uint32_t i = 0; i < m->n_entries; i++)
			free(m->entries[i].data);
		free(m->entries);
	}
	free(m->context);
	m->entries = NULL;
	m->n_entries = 0;
	m->context = NULL;
	m->context_len = 0;
}

int raft_msg_decode(const uint8_t *p, size_t n, raft_msg *m)
{
	ef_rbuf r = {p, p + n};
	uint8_t ver, has_snap;
	uint32_t ne;
	int rc;

	memset(m, 0, sizeof(*m));
	if (p == NULL)
		return EF_E_TRUNCATED;
	if ((rc = ef_rbuf_u8(&r, &ver)))
		return rc;
	if (ver != CODEC_VERSION)
		return EF_E_VERSION;
	if ((rc = ef_rbuf_u8(&r, &m->type)) || (rc = ef_rbuf_u64(&r, &m->from)) ||
	    (rc = ef_rbuf_u64(&r, &m->to)) || (rc = ef_rbuf_u64(&r, &m->term)) ||
	    (rc = ef_rbuf_u64(&r, &m->log_term)) || (rc = ef_rbuf_u64(&r, &m->index)) ||
	    (rc = ef_rbuf_u64(&r, &m->commit)) || (rc = ef_rbuf_u8(&r, &m->reject)) ||
	    (rc = ef_rbuf_u64(&r, &m->reject_hint)) || (rc = ef_rbuf_u32(&r, &ne)))
		return rc;
	if (m->type < RAFT_MSG_APP || m->type > RAFT_MSG_TRANSFER_LEADER)
		return EF_E_UNKNOWN_TYPE;
	if (m->reject > 1)
		return EF_E_MALFORMED;
	if (ne > remaining(&r) / ENTRY_HDR_BYTES)
		return EF_E_TRUNCATED;
	if (ne) {
		m->entries = calloc(ne, sizeof(raft_entry));
		if (m->entries == NULL)
			return EF_E_NOMEM;
	}
	for (uint32_t i = 0; i < ne; i++) {
		raft_entry *e = &m->entries[i];
		m->n_entries = i + 1; /* so free_decoded releases what we took */
		if ((rc = ef_rbuf_u64(&r, &e->term)) || (rc = ef_rbuf_u64(&r, &e->index)) ||
		    (rc = ef_rbuf_u8(&r, &e->type)) || (rc = get_bytes(&r, &e->data, &e->len)))
			goto fail;
		if (e->type > RAFT_ENTRY_CONF) {
			rc = EF_E_MALFORMED;
			goto fail;
		}
	}
	if ((rc = get_bytes(&r, &m->context, &m->context_len)) || (rc = ef_rbuf_u8(&r, &has_snap)))
		goto fail;
	if (has_snap > 1 || (m->type == RAFT_MSG_SNAP && !has_snap) ||
	    (has_snap && m->type != RAFT_MSG_SNAP && m->type != RAFT_MSG_APP)) {
		rc = EF_E_MALFORMED;
		goto fail;
	}
	if (has_snap) {
		raft_snapshot_meta *s = &m->snapshot;
		if ((rc = ef_rbuf_u64(&r, &s->index)) || (rc = ef_rbuf_u64(&r, &s->term)) ||
		    (rc = ef_rbuf_u32(&r, &s->n_voters)))
			goto fail;
		if (s->n_voters > RAFT_MAX_VOTERS) {
			rc = EF_E_MALFORMED;
			goto fail;
		}
		for (uint32_t i = 0; i < s->n_voters; i++)
			if ((rc = ef_rbuf_u64(&r, &s->voters[i])))
				goto fail;
		if ((rc = ef_rbuf_u32(&r, &s->n_learners)))
			goto fail;
		if (s->n_learners > RAFT_MAX_VOTERS - s->n_voters) {
			rc = EF_E_MALFORMED;
			goto fail;
		}
		for (uint32_t i = 0; i < s->n_learners; i++)
			if ((rc = ef_rbuf_u64(&r, &s->learners[i])))
				goto fail;
	}
	if (r.p != r.end) {
		rc = EF_E_MALFORMED;
		goto fail;
	}
	return 0;
fail:
	raft_msg_free_decoded(m);
	return rc;
}
