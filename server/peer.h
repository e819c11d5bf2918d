/*
 * peer.h - the member-to-member transport (prefix peer_): nng push sockets
 * towards each peer and one pull socket to receive, over tcp://.
 *
 * Every message is framed as
 *     u32 magic "ETCP" | u8 version | u8 kind | u64 cluster id | u64 from | payload
 * and a message whose cluster id is not ours is dropped (and logged once in
 * a while), so a member of another cluster can never join our votes.
 *
 * Sends never block the Raft loop: peer_send is non-blocking, each peer has a
 * bounded queue (NNG_OPT_SENDBUF) and a message that doesn't fit is dropped
 * (Raft retransmits).  nng's dialer reconnects with backoff.  Snapshot data
 * uses peer_send_wait from a separate thread.
 */
#ifndef EF_PEER_H
#define EF_PEER_H

#include <stddef.h>
#include <stdint.h>

enum peer_kind {
	PEER_RAFT = 1,
	PEER_SNAP_CHUNK = 2
};

typedef struct peer_tr peer_tr;
/* Called on the receive thread; p is valid during the call only. */
typedef void (*peer_recv_fn)(void *ud, uint8_t kind, uint64_t from, const uint8_t *p, size_t n);

int peer_start(const char *listen_urls, uint64_t cluster_id, uint64_t self_id, size_t max_msg,
	       peer_recv_fn fn, void *ud, peer_tr **out, char *err, size_t errlen);
int peer_add(peer_tr *t, uint64_t id, const char *url);
/* Stop sending to a removed member (its socket is closed). */
void peer_remove(peer_tr *t, uint64_t id);
/* Started with cluster id 0 (a member joining a running cluster): the id
 * adopted from the first peer message; 0 until one came. */
uint64_t peer_cluster_id(peer_tr *t);
/* 0, or EF_E_UNAVAILABLE when the peer's queue is full / unknown peer. */
int peer_send(peer_tr *t, uint64_t to, uint8_t kind, const void *p, size_t n);
/* Blocking up to timeout_ms. */
int peer_send_wait(peer_tr *t, uint64_t to, uint8_t kind, const void *p, size_t n, int timeout_ms);
uint64_t peer_dropped(peer_tr *t);
void peer_stop(peer_tr *t);

#endif
