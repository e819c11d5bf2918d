/*
 * record.c - the WAL's record format.
 *
 * A segment is a sequence of records
 *
 *     u32 length of payload | u32 CRC32C of (type byte + payload) | u8 type | payload
 *
 * (big-endian).  Types: the segment header (magic, version, cluster id,
 * member id, sequence, first index, then the latest durable hard state and
 * snapshot marker, so older segments can be deleted once a snapshot covers
 * their entries), ENTRY (term, index, entry type, data), HARD_STATE (term,
 * vote, commit) and SNAPSHOT (index, term, voters).  The checksum covers the
 * type byte, so a record cannot change type without failing it.
 *
 * Group commit starts here: wal_append and friends only frame records into
 * the wal's pending buffer (wal_pend); wal_sync writes it in one go.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../proto/errors.h"
#include "../../proto/wire.h"
#include "wal_int.h"

void wal_seterr(char *err, size_t errlen, const char *fmt, ...)
{
	if (!err || !errlen)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static int buf_reserve(uint8_t **p, size_t *cap, size_t need)
{
	if (need <= *cap)
		return 0;
	size_t nc = *cap ? *cap : 4096;
	while (nc < need)
		nc *= 2;
	uint8_t *np = realloc(*p, nc);
	if (!np)
		return EF_E_NOMEM;
	*p = np;
	*cap = nc;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Encoding                                                           */

/* Encode the snapshot meta (index, term, n_voters, voters, and only when
 * there are learners: n_learners, learners) at p; returns bytes (at most
 * WAL_SNAP_MAX).  Without learners the record is what it always was. */
size_t wal_put_snap(uint8_t *p, const raft_snapshot_meta *m)
{
	uint32_t nv = m->n_voters > RAFT_MAX_VOTERS ? RAFT_MAX_VOTERS : m->n_voters;
	uint32_t nl = m->n_learners > RAFT_MAX_VOTERS - nv ? RAFT_MAX_VOTERS - nv : m->n_learners;
	ef_be64(p, m->index);
	ef_be64(p + 8, m->term);
	ef_be32(p + 16, nv);
	for (uint32_t i = 0; i < nv; i++)
		ef_be64(p + 20 + 8 * i, m->voters[i]);
	if (nl == 0)
		return 20 + 8 * (size_t)nv;
	uint8_t *q = p + 20 + 8 * (size_t)nv;
	ef_be32(q, nl);
	for (uint32_t i = 0; i < nl; i++)
		ef_be64(q + 4 + 8 * i, m->learners[i]);
	return 24 + 8 * (size_t)(nv + nl);
}

int wal_get_snap(const uint8_t *p, size_t n, raft_snapshot_meta *m)
{
	if (n < 20)
		return EF_E_TRUNCATED;
	memset(m, 0, sizeof(*m));
	m->index = ef_get_be64(p);
	m->term = ef_get_be64(p + 8);
	m->n_voters = ef_get_be32(p + 16);
	if (m->n_voters > RAFT_MAX_VOTERS || n < 20 + 8 * (size_t)m->n_voters)
		return EF_E_MALFORMED;
	for (uint32_t i = 0; i < m->n_voters; i++)
		m->voters[i] = ef_get_be64(p + 20 + 8 * i);
	size_t off = 20 + 8 * (size_t)m->n_voters;
	if (n == off)
		return 0;
	if (n < off + 4)
		return EF_E_MALFORMED;
	m->n_learners = ef_get_be32(p + off);
	if (m->n_learners == 0 || m->n_learners > RAFT_MAX_VOTERS - m->n_voters ||
	    n != off + 4 + 8 * (size_t)m->n_learners)
		return EF_E_MALFORMED;
	for (uint32_t i = 0; i < m->n_learners; i++)
		m->learners[i] = ef_get_be64(p + off + 4 + 8 * i);
	return 0;
}

/* Frame a record around payload p (already at dst + REC_HDR) and return its size. */
size_t wal_frame(uint8_t *dst, uint8_t type, size_t payload_len)
{
	dst[8] = type;
	ef_be32(dst, (uint32_t)payload_len);
	ef_be32(dst + 4, ef_crc32c(0, dst + 8, payload_len + 1));
	return REC_HDR + payload_len;
}

/* Append a record with the given payload to the pending buffer. */
int wal_pend(wal *w, uint8_t type, const uint8_t *hdr, size_t hlen, const uint8_t *data,
	     size_t dlen)
{
	size_t plen = hlen + dlen;
	if (plen > REC_MAX_PAYLOAD)
		return EF_E_TOO_LARGE;
	int rc = buf_reserve(&w->buf, &w->cap, w->len + REC_HDR + plen);
	if (rc)
		return rc;
	uint8_t *r = w->buf + w->len;
	memcpy(r + REC_HDR, hdr, hlen);
	if (dlen)
		memcpy(r + REC_HDR + hlen, data, dlen);
	w->len += wal_frame(r, type, plen);
	return 0;
}

size_t wal_header_payload(uint8_t *p, const wal *w, uint64_t seq, uint64_t first)
{
	ef_be32(p, WAL_MAGIC);
	ef_be32(p + 4, WAL_VERSION);
	ef_be64(p + 8, w->cluster_id);
	ef_be64(p + 16, w->member_id);
	ef_be64(p + 24, seq);
	ef_be64(p + 32, first);
	ef_be64(p + 40, w->synced_hs.term);
	ef_be64(p + 48, w->synced_hs.vote);
	ef_be64(p + 56, w->synced_hs.commit);
	return 64 + wal_put_snap(p + 64, &w->synced_snap);
}
