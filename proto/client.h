/*
 * client.h - the etcfs client library (prefix efc_).  etcfsctl, the FUSE
 * mount, the benchmark tool and the tests all talk to etcfsd through it.
 *
 * Transport: one nng byte stream (tcp:// or tls+tcp://) per client to one
 * member at a time, carrying wire.h frames in both directions.  Requests are
 * multiplexed by request id, so any number of threads may call efc_call()
 * concurrently on one client, and watch streams share the same connection.
 *
 * Failure semantics (the important part):
 *   - A request that could not be sent (no endpoint reachable, connect
 *     refused) is retried on the next endpoint until the command timeout; if
 *     none works it fails with EF_E_UNAVAILABLE: certainly NOT applied.
 *   - A server answer EF_E_NO_LEADER / EF_E_STOPPING / EF_E_NOT_LEADER means
 *     the server did not propose the request: retried (other endpoint, small
 *     backoff) until the command timeout, then returned as is.
 *   - A request that was written to a connection but got no answer (the
 *     connection broke, or the command timeout passed) fails with
 *     EF_E_OUTCOME_UNKNOWN: it may or may not have been applied.  Read-only
 *     requests (RANGE, STATUS, LEASE_TTL, LEASE_LIST, MEMBER_LIST) are safe to
 *     repeat and are retried on another endpoint instead.
 *
 * Watches survive failover: the library remembers the last revision each
 * watch delivered and, when the connection breaks, re-creates the watch on
 * the next reachable member from that revision + 1, so the callback sees no
 * gap and no duplicate.
 */
#ifndef EF_CLIENT_H
#define EF_CLIENT_H

#include <stdint.h>

#include "wire.h"

typedef struct efc_client efc_client;

typedef struct efc_opts {
	const char *endpoints;  /* comma-separated: "tcp://127.0.0.1:2379,tcp://..." */
	int dial_timeout_ms;    /* per connection attempt; default 2000 */
	int command_timeout_ms; /* whole request incl. retries; default 5000 */
} efc_opts;

/* Connects lazily: efc_open only validates the endpoint list (EF_E_INVALID
 * with a message in err).  err may be NULL. */
int efc_open(const efc_opts *o, efc_client **out, char *err, size_t errlen);
void efc_close(efc_client *c);

/* Send req (its id is assigned by the library) and wait for the response.
 * On success *resp is the decoded response (type == req->type | 0x80) living
 * in arena a.  If the server answered EF_MSG_ERROR, the code is returned and
 * *resp holds the error (message in resp->u.error.message).  Otherwise 0 or
 * an EF_E_* code as described above. */
int efc_call(efc_client *c, const ef_msg *req, ef_msg *resp, ef_arena *a);

/* The message of the last failure seen by this thread on any client
 * (server text when there was one, else ef_strerror). */
const char *efc_errmsg(void);

/* Endpoint currently connected (or about to be tried). */
const char *efc_current_endpoint(efc_client *c);
/* Number of times the client moved to another endpoint (for metrics). */
uint64_t efc_failovers(efc_client *c);

/* ------------------------------------------------------------------ */
/* Watches.                                                             */

/* Called on the client's watch-delivery thread (one per client, so callbacks
 * of one client never run concurrently) for every watch response of the
 * watch (created, events, progress, canceled).  The message is only valid
 * during the call.  The callback may call efc_call() on the same client; it
 * must not call efc_watch_stop() (deadlock).  After a failover the watch is
 * re-created from the revision after the last delivered one; the second
 * "created" is not passed on.  canceled=1 with compact_revision set means
 * the revision to resume from was compacted: the watch is over, resync. */
typedef void (*efc_watch_cb)(void *ud, const ef_watch_resp *w, const ef_resp_header *hdr);

typedef struct efc_watch efc_watch;
/* Start a watch.  The callback first receives created=1 (or canceled=1 with
 * a reason, e.g. compact_revision set when start_revision was compacted).
 * Returns 0 or an EF_E_* code. */
int efc_watch_start(efc_client *c, const ef_watch_create_req *req, efc_watch_cb cb, void *ud,
		    efc_watch **out);
/* Ask the server for a progress notification on every watch of this client. */
int efc_watch_progress(efc_client *c);
/* Cancel and free; after return the callback is not called again. */
void efc_watch_stop(efc_watch *w);

/* ------------------------------------------------------------------ */
/* Small synchronous helpers over efc_call (all return 0 or EF_E_*).     */

int efc_put(efc_client *c, const void *key, uint32_t klen, const void *val, uint32_t vlen,
	    int64_t lease, int64_t *revision_out);
/* value/len/mod_revision of one key; EF_E_NOT_FOUND when absent.  The value
 * is malloc'ed (caller frees); *kv_out may be NULL. */
int efc_get(efc_client *c, const void *key, uint32_t klen, int serializable, uint8_t **val,
	    uint32_t *vlen, ef_kv *kv_out);
int efc_delete(efc_client *c, const void *key, uint32_t klen, const void *range_end, uint32_t rlen,
	       int64_t *deleted);

#endif
